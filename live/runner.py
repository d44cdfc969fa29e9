"""The real-time runner: the simulator's ``reconcile``, driven by a wall clock.

One loop, the same for every backend (kopf's split: deciding is ``reconcile``'s, doing is
the backend's)::

    observe    the backend's pods (spec / ready replicas per version) + the metrics
               source's cumulative counters per version
    decide     reconcile(spec, status, observation) -> (status, actions)
    apply      each action through the backend (idempotent, level-style)
    persist    the status, *after* applying: a runner killed between the two re-decides
               from the old status and re-applies the same (harmless) actions, while the
               other order could remember a change the cluster never saw
    wait       until the status' requeue time, a short tick, or a fault that is due

Time. The controller reads scenario seconds: ``(wall - origin) * time_scale``. The origin
is persisted with the status, so a restarted runner continues the same clock. A time
scale above 1 compresses a scenario (a 5-minute pause takes 30 s at scale 10); the results
record the factor.

A status that says ``completed`` or ``restored`` is final: a restarted runner reports it
and applies nothing more, so a rollout is never promoted twice.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from rolloutlab.errors import StateError
from rolloutlab.live.baseline import has_baseline
from rolloutlab.results.timeline import TimelineEvent
from rolloutlab.strategies import (
    Action,
    AnalysisPhase,
    Command,
    CommandRequest,
    Counters,
    Event,
    Observation,
    Promote,
    Role,
    RolloutStatus,
    ScaleVersion,
    SetCanaryWeight,
    StrategySpec,
    SwitchActive,
    SwitchPreview,
    VersionObservation,
    compute_declared_weight,
    dump_status,
    load_status,
    reconcile,
)

# --------------------------------------------------------------------------- what runs


@dataclass(frozen=True)
class LiveVersion:
    """One version of the demo service: its name (the ``X-Version`` header, the pods'
    ``version`` label) and the environment that sets its behaviour (demo_service.py)."""

    name: str
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ReleasePlan:
    """What one live rollout moves: ``stable`` running at ``replicas``, ``canary`` the new
    version. ``release`` identifies the rollout in persisted state: a runner that finds
    state of another release refuses to touch it."""

    app: str
    release: str
    replicas: int
    stable: LiveVersion
    canary: LiveVersion
    defect: str = "none"  # the scenario's defect kind the canary carries, or "none"

    def version(self, role: Role) -> LiveVersion:
        return self.stable if role is Role.STABLE else self.canary


# --------------------------------------------------------------------------- the two seams


class Backend(Protocol):
    """Where pods run and traffic is routed (Kubernetes API, or processes + HAProxy).

    Every method that changes something is idempotent: applying the same action twice,
    or ``ensure`` on a half-built setup, converges to the same state."""

    source: str  # results-table ``source``: "live-kube" or "live-local"

    def attach(self, plan: ReleasePlan, spec: StrategySpec) -> None:
        """Say which rollout this backend serves; no I/O. Called first, before
        ``load_state`` (which must know where the app's state lives)."""

    def ensure(self, plan: ReleasePlan, spec: StrategySpec) -> None:
        """Create what is missing: the stable version at full scale and serving, the
        canary version defined at the scale the persisted state implies (0 on a first
        run), the services / router. Never deletes user traffic's path."""

    def observe(self) -> tuple[VersionObservation, VersionObservation]:
        """(stable, canary) spec/ready/available replicas; counters left empty."""

    def apply(self, action: Action) -> None:
        """Apply one non-Event action."""

    def load_state(self) -> str | None:
        """The persisted runner state (JSON) or None."""

    def save_state(self, state: str) -> None:
        """Persist the runner state (JSON)."""

    # optional: follow(status) — called after each persisted cycle with the new status, for
    # backends whose platform runs part of the strategy itself (Kubernetes' rolling update).
    # optional: observe_baseline() -> VersionObservation — a canary's baseline pods (the local
    # backend runs them, ``live.baseline``), for the timeline.

    def commands(self) -> tuple[CommandRequest, ...]:
        """Commands a person left for this rollout (promote, abort, ...)."""

    def wait(self, seconds: float) -> None:
        """Block up to ``seconds`` or until the backend sees a change (a watch event)."""


class MetricsSource(Protocol):
    """Cumulative per-version traffic counters (requests, errors, latency histogram).

    A source for feature-flag releases also has ``flag_counters() -> FlagCounters``: the
    same counters split by the flag's answer (a source without it gives a flag's analysis
    no data, which errors the analysis). A source for a canary with a baseline deployment
    has ``baseline_counters() -> Counters``: its baseline pods' (``live.baseline``; again,
    none means no data). A source that measures metrics with their queries (Prometheus,
    ``live.prometheus_metrics``) has ``queried(status, now) -> tuple[(metric name, answer),
    ...]``: what each metric due at scenario second ``now`` answers, which the observation
    carries (``Observation.queried``) for analysis to judge instead of the counters."""

    def counters(self) -> Mapping[str | None, Counters]:
        """Keyed by version name; None collects answers that carried no version."""


class NoMetrics:
    """For runs whose analysis reads no traffic (a rolling update, or a control plane
    without a data path): every version reports zero requests."""

    def counters(self) -> Mapping[str | None, Counters]:
        return {}


# --------------------------------------------------------------------------- persisted state

STATE_VERSION = 1


@dataclass(frozen=True)
class RunnerState:
    """Everything a restarted runner needs: which release, the clock, the controller's status."""

    release: str
    origin_wall: float  # wall time of scenario second 0
    time_scale: float
    status: RolloutStatus
    next_command_id: int = 1  # ids this runner gives the commands it is asked to send itself

    def dump(self) -> str:
        return json.dumps({
            "v": STATE_VERSION, "release": self.release, "origin_wall": self.origin_wall,
            "time_scale": self.time_scale, "next_command_id": self.next_command_id,
            "status": json.loads(dump_status(self.status)),
        }, separators=(",", ":"))

    @classmethod
    def load(cls, text: str) -> "RunnerState":
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError(f"expected a JSON object, got {type(data).__name__}")
        if data.get("v") != STATE_VERSION:
            raise StateError(f"runner state version {data.get('v')!r}, this runner reads {STATE_VERSION}")
        return cls(data["release"], float(data["origin_wall"]), float(data["time_scale"]),
                   load_status(json.dumps(data["status"])), int(data.get("next_command_id", 1)))


def parse_command(text: str) -> CommandRequest:
    """One command a person leaves for a rollout: ``"<id> <verb>"`` (``"3 abort"``).
    Raises ValueError saying what is wrong: a command must never be guessed."""
    parts = text.split()
    if len(parts) != 2 or not parts[0].isdigit():
        raise ValueError(f"{text.strip()!r}: expected '<id> <command>', e.g. '3 abort'")
    try:
        command = Command(parts[1])
    except ValueError:
        raise ValueError(f"unknown command {parts[1]!r}; one of {', '.join(c.value for c in Command)}") from None
    return CommandRequest(int(parts[0]), command)


# --------------------------------------------------------------------------- the runner


class Clock(Protocol):
    def __call__(self) -> float: ...


@dataclass(frozen=True)
class Waiting:
    """What a live run is waiting for now, for a progress display: said on every cycle of
    the runner and every second of any other long wait (nothing here prints)."""

    what: str  # "rollout: step 2 paused (CanaryPauseStep)", "the end of the scenario's window (...)", ...
    now: float | None  # scenario seconds; None before the rollout's clock starts
    until: float | None = None  # scenario seconds at which this wait ends, when known


Progress = Callable[[Waiting], None]


def describe_wait(status: RolloutStatus) -> str:
    """What the rollout with this status waits for, in a few words (for progress displays)."""
    if status.completed:
        return "promoted: the old version's scale-down"
    if status.aborted:
        if status.restored_at is None:
            return "rolling back: the stable version to serve every user again"
        return "rolled back: the new version's scale-down"
    if status.started_at is None:
        return "rollout: starting"
    if status.pause_reason is not None:
        return f"rollout: step {status.step_index + 1} paused ({status.pause_reason.value})"
    running = [a.key for a in status.analyses if a.phase is AnalysisPhase.RUNNING]
    if running:
        return f"rollout: step {status.step_index + 1}, analysis {', '.join(running)} running"
    return f"rollout: step {status.step_index + 1}, the new pods to be ready"


@dataclass
class TimelineEntry:
    at: float  # scenario seconds
    stable_ready: int
    canary_ready: int
    stable_replicas: int
    canary_replicas: int
    declared_weight: float
    events: tuple[TimelineEvent, ...] = ()
    baseline_ready: int = 0  # a canary's baseline deployment (backends with observe_baseline())
    baseline_replicas: int = 0
    baseline_requests: int | None = None  # its cumulative requests as reported to the controller


@dataclass
class RunSummary:
    """What a live run ended with: the final status and the timeline it went through."""

    status: RolloutStatus
    state: RunnerState
    timeline: list[TimelineEntry]
    applied: list[tuple[float, str]]  # (scenario time, action) in the order applied
    resumed: bool
    ended_at: float  # scenario seconds

    @property
    def finished(self) -> bool:
        return is_final(self.status)


def is_final(status: RolloutStatus) -> bool:
    """Promoted, or rolled back with the stable fully serving again."""
    return status.completed or (status.aborted and status.restored_at is not None)


def describe(action: Action) -> str:
    """A short, stable text for logs and the timeline."""
    if isinstance(action, ScaleVersion):
        return f"scale {action.role.value} to {action.replicas}"
    if isinstance(action, SetCanaryWeight):
        return f"weight {action.weight}"
    if isinstance(action, SwitchActive):
        return f"active -> {action.role.value}"
    if isinstance(action, SwitchPreview):
        return f"preview -> {action.role.value if action.role else 'none'}"
    if isinstance(action, Promote):
        return "promote"
    if isinstance(action, Event):
        return f"{action.reason.value}: {action.message}"
    return repr(action)


@dataclass
class Runner:
    """Drives one release on one backend until it is final or ``max_wall_s`` passes.

    ``faults``: (scenario second, callable) pairs fired once when the clock passes them
    (the chaos of a live scenario). ``on_cycle`` is called after every persisted cycle
    with the cycle number; tests use it to kill the runner at a chosen point. ``progress``
    is told after every cycle what the rollout now waits for (``Waiting``)."""

    spec: StrategySpec
    plan: ReleasePlan
    backend: Backend
    metrics: MetricsSource = field(default_factory=NoMetrics)
    time_scale: float = 1.0
    tick_s: float = 0.5  # wall seconds between observations when nothing is due sooner
    clock: Callable[[], float] = time.time
    faults: list[tuple[float, Callable[[], None]]] = field(default_factory=list)
    on_cycle: Callable[[int], None] | None = None
    log: Callable[[str], None] | None = None
    progress: Progress | None = None  # told, each cycle, what the rollout waits for

    def __post_init__(self) -> None:
        if not self.time_scale > 0 or not math.isfinite(self.time_scale):
            raise ValueError(f"time_scale must be a positive number, got {self.time_scale}")
        if self.spec.replicas is None:
            self.spec = self.spec.with_replicas(self.plan.replicas)
        self._pending_commands: list[CommandRequest] = []
        self._prepared: tuple[RunnerState, bool] | None = None
        self.timeline: list[TimelineEntry] = []
        self.applied: list[tuple[float, str]] = []

    # ----------------------------------------------------------------- state

    def _initial_state(self) -> tuple[RunnerState, bool]:
        text = self.backend.load_state()
        if text is None:
            return RunnerState(self.plan.release, self.clock(), self.time_scale, RolloutStatus()), False
        try:
            state = RunnerState.load(text)
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise StateError(f"the persisted runner state is unreadable: {error}") from None
        if state.release != self.plan.release:
            raise StateError(
                f"the cluster holds the rollout of release {state.release!r}; this run is {self.plan.release!r}. "
                "Finish or roll back that one first (or delete its objects)."
            )
        if state.time_scale != self.time_scale:
            # the status' times are on the saved clock; a second clock would mix the two
            raise StateError(f"the rollout being resumed runs at time scale {state.time_scale:g}, "
                             f"not {self.time_scale:g}: resume it with the same --time-scale")
        return state, True

    def now(self, state: RunnerState) -> float:
        return (self.clock() - state.origin_wall) * state.time_scale

    def request(self, command: Command) -> None:
        """Send the controller a command (promote, abort, ...) on the next cycle."""
        self._pending_commands.append(CommandRequest(0, command))  # id assigned in run()

    # ----------------------------------------------------------------- the loop

    def prepare(self) -> tuple[RunnerState, bool]:
        """Attach, load (and check) the persisted state, create what is missing. ``run``
        does it itself; a caller that must wait for the setup (to start traffic once the
        stable version serves) calls it first."""
        self.backend.attach(self.plan, self.spec)
        state, resumed = self._initial_state()
        if not is_final(state.status):
            # A final rollout may already have removed its losing version: recreating
            # it "because it is missing" would undo the end (and scale it down again).
            self.backend.ensure(self.plan, self.spec)
        self._prepared = (state, resumed)
        return state, resumed

    def wait_until_stable_serves(self, timeout_s: float) -> None:
        """Block until the stable version has all its replicas ready (a fresh setup) or,
        on a resume, at least one ready pod of either version; raise on timeout."""
        deadline = time.monotonic() + timeout_s
        while True:
            stable, canary = self.backend.observe()
            if stable.ready >= self.plan.replicas or (stable.ready + canary.ready > 0 and self._prepared[1]):
                return
            if self.progress is not None:
                self.progress(Waiting(f"the stable version {self.plan.stable.name} to serve: {stable.ready} of "
                                      f"{self.plan.replicas} pods ready", None))
            if time.monotonic() >= deadline:
                raise TimeoutError(f"the stable version {self.plan.stable.name} has {stable.ready} of "
                                   f"{self.plan.replicas} pods ready after {timeout_s:.0f}s")
            self.backend.wait(0.1)

    def run(self, max_wall_s: float, *, max_cycles: int | None = None) -> RunSummary:
        state, resumed = self._prepared if self._prepared is not None else self.prepare()
        self._prepared = None
        if not resumed:
            # scenario second 0 is when the rollout starts, not when its setup began
            state = RunnerState(state.release, self.clock(), state.time_scale, state.status, state.next_command_id)
        deadline = time.monotonic() + max_wall_s
        faults = sorted(self.faults, key=lambda f: f[0])
        fired = 0
        if resumed:
            # A fault whose time passed before this restart was injected by the runner that
            # died (or fell in its downtime): never inject one twice.
            while fired < len(faults) and faults[fired][0] <= self.now(state):
                fired += 1
        cycle = 0
        status = state.status
        while True:
            now = self.now(state)
            while fired < len(faults) and faults[fired][0] <= now:
                self._log(f"t={now:.1f}s fault")
                faults[fired][1]()
                fired += 1
            if is_final(status):
                # Final: nothing more to decide, but the losing version may still be
                # waiting for its scale-down delay; keep reconciling until it is gone.
                if not self._cleanup_pending(status, now):
                    self._follow(status)  # a runner killed before its last follow-up finishes it here
                    break
            state, status = self._cycle(state, now)
            cycle += 1
            if self.on_cycle is not None:
                self.on_cycle(cycle)
            if self.progress is not None:
                self.progress(Waiting(describe_wait(status), now))
            if max_cycles is not None and cycle >= max_cycles:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self.backend.wait(min(self._wait_s(state, status, faults[fired:]), remaining))
        return RunSummary(status, state, self.timeline, self.applied, resumed, self.now(state))

    def _cycle(self, state: RunnerState, now: float) -> tuple[RunnerState, RolloutStatus]:
        stable, canary = self.backend.observe()
        based = has_baseline(self.spec)  # a canary's baseline deployment (live.baseline)
        pods = self.backend.observe_baseline() if based and hasattr(self.backend, "observe_baseline") else None
        counters = self.metrics.counters()
        stable = _with_counters(stable, counters.get(self.plan.stable.name))
        canary = _with_counters(canary, counters.get(self.plan.canary.name))
        commands = self.backend.commands()
        next_id = max(state.next_command_id, state.status.last_command_id + 1)
        own = []
        for request in self._pending_commands:
            own.append(CommandRequest(next_id, request.command))
            next_id += 1
        self._pending_commands.clear()
        # a feature flag's analysis compares users by the flag's answer (flag-on vs flag-off)
        flag = self.metrics.flag_counters() if self.spec.strategy.feature_flag and hasattr(
            self.metrics, "flag_counters") else None
        # a canary with a baseline deployment: its analysis compares against those pods' counters
        baseline = self.metrics.baseline_counters() if based and hasattr(self.metrics, "baseline_counters") else None
        # a source that answers metrics' own queries: what each metric due now measures
        queried = self.metrics.queried(state.status, now) if hasattr(self.metrics, "queried") else ()
        observation = Observation(now, stable, canary, tuple(commands) + tuple(own), flag, baseline, queried)
        decided = reconcile(self.spec, state.status, observation)
        events = []
        for action in decided.actions:
            if isinstance(action, Event):
                events.append(TimelineEvent(action.reason.value, action.message, action.metric, action.phase))
                self._log(f"t={now:.1f}s {action.reason.value}: {action.message}")
                continue
            self.backend.apply(action)
            self.applied.append((now, describe(action)))
            self._log(f"t={now:.1f}s {describe(action)}")
        new_state = RunnerState(state.release, state.origin_wall, state.time_scale, decided.status, next_id)
        self.backend.save_state(new_state.dump())
        self._follow(decided.status)
        self.timeline.append(TimelineEntry(
            now, stable.ready, canary.ready, stable.replicas, canary.replicas,
            float(compute_declared_weight(self.spec, decided.status, observation)), tuple(events),
            pods.ready if pods else 0, pods.replicas if pods else 0, None if baseline is None else baseline.requests,
        ))
        return new_state, decided.status

    def _follow(self, status: RolloutStatus) -> None:
        follow = getattr(self.backend, "follow", None)
        if follow is not None:
            follow(status)  # backends whose platform runs part of the strategy itself

    def _cleanup_pending(self, status: RolloutStatus, now: float) -> bool:
        """After the end: does the losing version still have replicas to scale down?"""
        stable, canary = self.backend.observe()
        loser = canary if status.aborted else stable
        if loser.replicas == 0:
            return False
        choice = self.spec.strategy.canary or self.spec.strategy.blue_green
        if status.aborted and choice is not None and choice.abort_scale_down_delay_seconds == 0:
            return False  # Argo keeps an aborted canary / preview running when the delay is 0
        return True

    def _wait_s(self, state: RunnerState, status: RolloutStatus, faults) -> float:
        wait = self.tick_s
        now = self.now(state)
        for due in ([status.requeue_at] if status.requeue_at is not None else []) + [f[0] for f in faults[:1]]:
            wait = min(wait, max(0.0, (due - now) / state.time_scale))
        return max(wait, 0.01)

    def _log(self, text: str) -> None:
        if self.log is not None:
            self.log(text)


def _with_counters(version: VersionObservation, counters: Counters | None) -> VersionObservation:
    if counters is None:
        return version
    return VersionObservation(version.replicas, version.ready, version.available, counters)


def timeline_points(timeline: Iterable[TimelineEntry]) -> list[dict[str, Any]]:
    return [asdict(t) for t in timeline]
