"""A dry run of a strategy in an ideal, deterministic world, for ``rolloutlab plan`` and
for controller tests.

Pods become ready a fixed time after they are asked for, traffic arrives at a constant
rate and splits by the effective weight, and each version fails a fixed fraction of its
requests. There is no randomness and no fault: this is not the simulator. It answers
"what does this strategy do, step by step, when everything goes to plan?" and gives
tests a world that obeys the controller's actions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rolloutlab.strategies.actions import Event, Promote, ScaleVersion
from rolloutlab.strategies.observation import (
    LATENCY_BUCKETS_MS,
    Command,
    CommandRequest,
    Counters,
    Observation,
    Role,
    VersionObservation,
)
from rolloutlab.strategies.reconcile import compute_declared_weight, compute_effective_weight, reconcile
from rolloutlab.strategies.spec import StrategySpec
from rolloutlab.strategies.status import RolloutStatus


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


@dataclass
class IdealWorld:
    spec: StrategySpec
    start_delay: float = 10.0
    rps: float = 100.0
    preview_rps: float = 5.0  # blue-green: smoke-test traffic the preview Service gets before the switch
    error_rate: dict[Role, float] = field(default_factory=lambda: {Role.STABLE: 0.0, Role.CANARY: 0.0})
    now: float = 0.0
    status: RolloutStatus = field(default_factory=RolloutStatus)
    pods: dict[Role, VersionPods] = field(default_factory=dict)
    commands: list[CommandRequest] = field(default_factory=list)
    log: list[Decision] = field(default_factory=list)  # every reconcile call, in order
    promoted: int = 0

    def __post_init__(self) -> None:
        replicas = self.spec.require_replicas()
        self.pods = {Role.STABLE: VersionPods(ready_at=[-1.0] * replicas), Role.CANARY: VersionPods()}

    def observe(self) -> Observation:
        return Observation(self.now, self.pods[Role.STABLE].observe(self.now),
                           self.pods[Role.CANARY].observe(self.now), tuple(self.commands))

    def command(self, command: Command) -> None:
        self.commands.append(CommandRequest(len(self.commands) + 1, command))

    def step(self) -> None:
        """One reconcile call and the application of its actions."""
        obs = self.observe()
        self.status, actions = reconcile(self.spec, self.status, obs)
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
            elif isinstance(action, Promote):
                self.promoted += 1

    def advance(self, dt: float) -> None:
        obs = self.observe()
        weight = compute_effective_weight(self.spec, self.status, obs) / 100
        preview = 0.0
        if self.spec.strategy.blue_green and weight == 0 and obs.canary.available:
            preview = self.preview_rps * dt
        for role, share in ((Role.CANARY, weight), (Role.STABLE, 1 - weight)):
            requests = self.rps * dt * share + (preview if role is Role.CANARY else 0.0)
            self.pods[role].requests += requests
            self.pods[role].errors += requests * self.error_rate[role]
        self.now += dt

    def run(self, until: float, tick: float = 5.0) -> RolloutStatus:
        """Reconcile every ``tick`` seconds (or earlier when the controller asks) until
        the rollout is promoted or rolled back, or ``until`` passes."""
        while self.now <= until:
            self.step()
            if self.status.completed and self.pods[Role.STABLE].observe(self.now).replicas == 0:
                break
            if self.status.restored_at is not None and self.pods[Role.CANARY].observe(self.now).replicas == 0:
                break
            nxt = self.now + tick
            if self.status.requeue_at is not None:
                nxt = min(nxt, max(self.status.requeue_at, self.now + 1e-3))
            self.advance(nxt - self.now)
        return self.status

    def events(self) -> list[Event]:
        return [a for d in self.log for a in d.actions if isinstance(a, Event)]
