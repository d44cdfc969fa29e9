"""A dry run of a strategy in an ideal, deterministic world, for ``rolloutlab plan`` and
for controller tests.

Pods become ready a fixed time after they are asked for, traffic arrives at a constant
rate and splits by the effective weight, and each version fails a fixed fraction of its
requests. There is no randomness and no fault: this is not the simulator. It answers
"what does this strategy do, step by step, when everything goes to plan?" and gives
tests a world that obeys the controller's actions.

Time moves from event to event, never on a grid: the world reconciles when the controller
asked to be called (``status.requeue_at``: a pause ending, a measurement due, a deadline),
when one of its own pods becomes ready, right after it applied a change of pod counts (a
runner's watch event), and when its operator (if it has one) passes a gate. Between two events nothing the controller reads changes except the traffic counters,
which grow at a constant rate, so every time the dry run reports is exact.

Routes and flags: every request of the ideal world is a ``GET /``. A fixed share of
them (``segment_share``, 5%) comes from "the segment": users whose headers match every
header match a route or a flag's cohort names (staff, testers with a cookie); the rest
carry no header. A header route sends the segment's requests to the canary; a mirror
route copies its share of the requests it matches to the canary (served and counted
there, seen by no user); a flag's exposure turns it on for the segment (a cohort match)
and for its percentage of everyone, splitting the new pods' requests into flag-on and
flag-off ones, with ``error_rate[CANARY]`` the defect behind the flag. The simulator has
real segments (the scenario's); this is the plan's stand-in for them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from rolloutlab.strategies.actions import Event, Promote, ScaleVersion, SetFlagExposure
from rolloutlab.strategies.observation import (
    LATENCY_BUCKETS_MS,
    Command,
    CommandRequest,
    Counters,
    FlagCounters,
    Observation,
    Role,
    VersionObservation,
)
from rolloutlab.strategies.reconcile import compute_declared_weight, compute_effective_weight, reconcile
from rolloutlab.strategies.routes import HeaderRoute, RequestTraits, Routing
from rolloutlab.strategies.spec import StrategySpec
from rolloutlab.strategies.status import PauseReason, RolloutStatus
from rolloutlab.strategies.wave_spec import Waves
from rolloutlab.strategies.waves import RegionObservation, StartRegion, WavesStatus, reconcile_waves

_CALLS_PER_INSTANT = 100  # a controller that scales this often without time passing has a bug


@dataclass(frozen=True)
class Decision:
    """One reconcile call as the dry run saw it: when, the weights and pods, and the actions."""

    at: float
    declared_weight: float
    effective_weight: float
    stable_ready: int
    canary_ready: int
    stable_replicas: int  # spec replicas before this decision's actions
    canary_replicas: int
    status: RolloutStatus
    actions: tuple


@dataclass
class VersionPods:
    ready_at: list[float] = field(default_factory=list)  # one entry per pod
    requests: float = 0.0
    errors: float = 0.0
    latency_bucket: int = 3

    def observe(self, now: float) -> VersionObservation:
        ready = sum(1 for t in self.ready_at if t <= now)
        buckets = [0] * len(LATENCY_BUCKETS_MS)
        buckets[self.latency_bucket] = int(self.requests)
        return VersionObservation(
            replicas=len(self.ready_at), ready=ready, available=ready,
            counters=Counters(int(self.requests), int(self.errors), tuple(buckets)),
        )


def waits_for_a_person(spec: StrategySpec, status: RolloutStatus) -> bool:
    """Whether the rollout is paused at a gate only a person passes: a pause step without a
    duration, blue-green's gate with ``autoPromotionEnabled: false``, or an inconclusive
    analysis (Argo waits for ``promote`` or ``resume`` there)."""
    if status.completed or status.aborted or status.pause_reason is None:
        return False
    if status.pause_reason is PauseReason.INCONCLUSIVE_ANALYSIS:
        return True
    if status.pause_reason is PauseReason.BLUE_GREEN_PAUSE:
        return not spec.strategy.blue_green.auto_promotion_enabled
    stepped = spec.strategy.canary or spec.strategy.feature_flag
    if stepped is None:
        return False
    steps = stepped.steps
    if status.step_index >= len(steps):
        return False
    pause = steps[status.step_index].pause
    return pause is not None and pause.duration is None


def _ideal_routing(routes, segment: bool) -> Routing:
    """Where a ``GET /`` goes: from the segment it satisfies every header match, from
    anyone else none; the first route it satisfies decides (as ``route_request``)."""
    for route in routes:
        if isinstance(route, HeaderRoute):
            if segment:
                return Routing(True, 0.0)
        elif any(_ideal_holds(m, segment) for m in route.match):
            return Routing(False, route.percentage / 100.0)
    return Routing(False, 0.0)


def _ideal_holds(match, segment: bool) -> bool:
    get = RequestTraits()
    if match.method is not None and not match.method.matches(get.method):
        return False
    if match.path is not None and not match.path.matches(get.path):
        return False
    return segment or not match.headers


@dataclass
class IdealWorld:
    spec: StrategySpec
    start_delay: float = 10.0
    rps: float = 100.0
    preview_rps: float = 5.0  # blue-green: smoke-test traffic the preview Service gets before the switch
    error_rate: dict[Role, float] = field(default_factory=lambda: {Role.STABLE: 0.0, Role.CANARY: 0.0})
    gate_seconds: float | None = None  # an operator passes every gate this long after it is reached (None: nobody)
    now: float = 0.0
    status: RolloutStatus = field(default_factory=RolloutStatus)
    pods: dict[Role, VersionPods] = field(default_factory=dict)
    commands: list[CommandRequest] = field(default_factory=list)
    log: list[Decision] = field(default_factory=list)  # every reconcile call, in order
    promoted: int = 0
    gates_passed: int = 0  # promote commands the operator gave
    _reconciled_at: float | None = None  # the time of the last call, while nothing changed since
    _gate_passed: float | None = None  # the gate the operator passed last (a gate is passed once)
    segment_share: float = 0.05  # requests (and users) from the segment routes and cohorts match
    flag_share: float = 0.0  # feature flag: share of users with the flag on
    flag_requests: dict[bool, float] = field(default_factory=lambda: {True: 0.0, False: 0.0})
    flag_errors: dict[bool, float] = field(default_factory=lambda: {True: 0.0, False: 0.0})

    def __post_init__(self) -> None:
        replicas = self.spec.require_replicas()
        self.pods = {Role.STABLE: VersionPods(ready_at=[-1.0] * replicas), Role.CANARY: VersionPods()}

    def observe(self) -> Observation:
        flag = None
        if self.spec.strategy.feature_flag is not None:
            flag = FlagCounters(*(Counters(int(self.flag_requests[on]), int(self.flag_errors[on])) for on in (True, False)))
        return Observation(self.now, self.pods[Role.STABLE].observe(self.now),
                           self.pods[Role.CANARY].observe(self.now), tuple(self.commands), flag)

    def command(self, command: Command) -> None:
        self.commands.append(CommandRequest(len(self.commands) + 1, command))
        self._reconciled_at = None

    def step(self) -> None:
        """One reconcile call and the application of its actions."""
        obs = self.observe()
        self.status, actions = reconcile(self.spec, self.status, obs)
        self._reconciled_at = self.now
        self.log.append(Decision(
            self.now, compute_declared_weight(self.spec, self.status, obs),
            compute_effective_weight(self.spec, self.status, obs), obs.stable.ready, obs.canary.ready,
            obs.stable.replicas, obs.canary.replicas,
            self.status, actions,
        ))
        for action in actions:
            if isinstance(action, ScaleVersion):
                pods = self.pods[action.role].ready_at
                while len(pods) < action.replicas:
                    pods.append(self.now + self.start_delay)
                del pods[action.replicas:]
                self._reconciled_at = None  # the controller sees the new pod count at once (a watch event)
            elif isinstance(action, Promote):
                self.promoted += 1
            elif isinstance(action, SetFlagExposure):
                pct = action.percentage / 100
                self.flag_share = self.segment_share + (1 - self.segment_share) * pct if action.match else pct

    def advance(self, dt: float) -> None:
        """Let ``dt`` seconds of traffic flow with the weights of now (nothing is reconciled)."""
        obs = self.observe()
        weight = compute_effective_weight(self.spec, self.status, obs) / 100
        preview = 0.0
        if self.spec.strategy.blue_green and weight == 0 and obs.canary.available:
            preview = self.preview_rps * dt
        cs = self.spec.strategy.canary
        if cs is not None and self.status.routes and obs.canary.available:
            routes = cs.routes_in_order(dict(self.status.routes))
            to_canary = mirrored = 0.0
            for segment, share in ((True, self.segment_share), (False, 1 - self.segment_share)):
                routing = _ideal_routing(routes, segment)
                to_canary += share * (1.0 if routing.to_canary else weight)
                mirrored += share * routing.mirror
            weight = to_canary
            self.pods[Role.CANARY].requests += self.rps * dt * mirrored
            self.pods[Role.CANARY].errors += self.rps * dt * mirrored * self.error_rate[Role.CANARY]
        flagged = self.spec.strategy.feature_flag is not None
        for role, share in ((Role.CANARY, weight), (Role.STABLE, 1 - weight)):
            requests = self.rps * dt * share + (preview if role is Role.CANARY else 0.0)
            self.pods[role].requests += requests
            if not flagged:
                self.pods[role].errors += requests * self.error_rate[role]
                continue
            on = requests * self.flag_share if role is Role.CANARY else 0.0  # the old code has no flagged path
            on_errors = on * self.error_rate[role]
            off_errors = (requests - on) * self.error_rate[Role.STABLE]
            self.pods[role].errors += on_errors + off_errors
            self.flag_requests[True] += on
            self.flag_errors[True] += on_errors
            self.flag_requests[False] += requests - on
            self.flag_errors[False] += off_errors
        self.now += dt
        if dt > 0:
            self._reconciled_at = None

    def gate_passed_at(self) -> float | None:
        """When the operator passes the gate the rollout waits at (None: no gate, or no operator)."""
        if self.gate_seconds is None or not waits_for_a_person(self.spec, self.status):
            return None
        started = self.status.pause_started_at
        at = (self.now if started is None else started) + self.gate_seconds
        return None if at == self._gate_passed else at

    def next_event_at(self) -> float | None:
        """The next time something the controller reads changes by itself, or it asked to be called."""
        times = [t for pods in self.pods.values() for t in pods.ready_at if t > self.now]
        if self.status.requeue_at is not None:
            times.append(self.status.requeue_at)
        gate = self.gate_passed_at()
        if gate is not None:
            times.append(gate)
        later = [t for t in times if t > self.now]
        return min(later) if later else None

    def finished(self) -> bool:
        """Promoted with the old version gone, or rolled back with the new version gone
        (a feature flag turned off after its dark deploy keeps the new pods)."""
        if self.spec.strategy.feature_flag is not None and self.status.deployed_at is not None:
            if self.status.aborted:
                return self.status.restored_at is not None
        if self.status.completed:
            return self.pods[Role.STABLE].observe(self.now).replicas == 0
        return self.status.restored_at is not None and self.pods[Role.CANARY].observe(self.now).replicas == 0

    def run(self, until: float, tick: float | None = None) -> RolloutStatus:
        """Reconcile at every event until the rollout is finished, nothing can happen any
        more without a command (a gate and no operator), or the next event is after
        ``until``. ``tick`` also reconciles at least that often, as a polling runner would;
        the times of what happens do not depend on it."""
        while self.now <= until:
            gate = self.gate_passed_at()
            if gate is not None and gate <= self.now:
                self.command(Command.PROMOTE)  # the operator passes the gate
                self.gates_passed += 1
                self._gate_passed = gate
            for _ in range(_CALLS_PER_INSTANT):
                if self._reconciled_at == self.now:
                    break
                self.step()
            else:
                raise RuntimeError(f"the controller keeps scaling at t={self.now:g}s without converging")
            if self.finished():
                break
            nxt = self.next_event_at()
            if tick is not None:
                nxt = min(math.inf if nxt is None else nxt, self.now + tick)
            if nxt is None or nxt > until:
                break
            self.advance(nxt - self.now)
        return self.status

    def events(self) -> list[Event]:
        return [a for d in self.log for a in d.actions if isinstance(a, Event)]


@dataclass(frozen=True)
class WavePlan:
    """When one wave goes out in the ideal world: every region takes the same time."""

    wave: int
    regions: tuple[str, ...]
    starts_at: float
    promoted_at: float
    next_wave_at: float | None  # after the bake (None after the last wave)


def plan_waves(waves: Waves, region_duration: float, *, limit: int = 10_000) -> list[WavePlan]:
    """The waves' schedule when each region's rollout is promoted ``region_duration``
    after it starts: ``reconcile_waves`` itself is driven, so the plan is the supervisor's."""
    status, now, started = WavesStatus(), 0.0, {}
    plans: list[WavePlan] = []
    for _ in range(limit):
        seen = {r: RegionObservation(RolloutStatus(started_at=t, completed=now >= t + region_duration,
                                                   completed_at=t + region_duration if now >= t + region_duration else None))
                for r, t in started.items()}
        status, actions = reconcile_waves(waves, status, now, seen)
        starting = [a.region for a in actions if isinstance(a, StartRegion)]
        if starting:
            if plans:
                plans[-1] = replace(plans[-1], next_wave_at=now)
            plans.append(WavePlan(len(plans), tuple(starting), now, now + region_duration, None))
            started.update({r: now for r in starting})
        if status.completed:
            return plans
        now = status.requeue_at if status.requeue_at is not None else max(t for t in started.values()) + region_duration
    raise RuntimeError("the waves did not complete in the plan (a bug: report it)")
