"""An in-memory backend: the runner's test double, as httpx ships ``MockTransport``.

``MemoryBackend`` implements ``live.runner.Backend`` with no process, no router and no
cluster: pods are numbers that become ready ``ready_after_s`` wall seconds after they are
asked for (at once by default), the persisted state is a string, commands are a list a
test appends to. With ``MemoryClock`` as both the runner's clock and the backend's sleep,
a rollout's pauses and analysis windows pass in no real time, so the runner's own rules
(resume, persistence, commands, faults) are tested in milliseconds::

    from rolloutlab.live.memory import MemoryBackend, MemoryClock
    from rolloutlab.live.runner import LiveVersion, ReleasePlan, Runner

    clock = MemoryClock()
    backend = MemoryBackend(clock=clock)
    plan = ReleasePlan("demo", "demo-v2", 4, LiveVersion("v1"), LiveVersion("v2"))
    summary = Runner(spec, plan, backend, clock=clock).run(max_wall_s=5)

The backend object plays the *cluster*: a runner that dies (``on_cycle`` raising, in a
test) is restarted by building a new ``Runner`` on the same backend, which still holds
the state, the pods and the routes the first one applied. ``applied`` lists every action
in the order the backend received it, so a test can say "nothing was applied twice".

Counters for analysis come from a ``live.runner.MetricsSource`` the test gives the runner
(``MemoryMetrics`` here: a fixed error rate per version, requests proportional to ready
pods and time), never from this backend.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from rolloutlab.errors import StateError
from rolloutlab.live.runner import ReleasePlan
from rolloutlab.strategies import (
    Action,
    Command,
    CommandRequest,
    Counters,
    Promote,
    Role,
    ScaleVersion,
    SetCanaryWeight,
    StrategySpec,
    SwitchActive,
    SwitchPreview,
    VersionObservation,
)


class MemoryClock:
    """A wall clock that moves only when told: ``sleep`` advances it, and every reading
    advances it by ``step_s`` (so a loop that only reads the clock still progresses)."""

    def __init__(self, start: float = 1000.0, step_s: float = 0.0) -> None:
        self.t = float(start)
        self.step_s = float(step_s)

    def __call__(self) -> float:
        self.t += self.step_s
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += max(0.0, float(seconds))


@dataclass
class _Pod:
    asked_at: float  # wall time (the backend's clock) the pod was asked for


@dataclass
class MemoryBackend:
    """``live.runner.Backend`` in memory (see the module docstring).

    ``clock``: the wall clock pod readiness is measured on and ``wait`` sleeps on; a
    ``MemoryClock`` makes waits instant, ``time.time`` (with ``sleep=time.sleep``) makes
    them real. ``ready_after_s``: wall seconds from asking for a pod to its readiness.
    ``state``: the persisted runner state to start from (JSON text), e.g. another
    backend's."""

    clock: Callable[[], float] | MemoryClock = field(default_factory=MemoryClock)
    sleep: Callable[[float], None] | None = None  # default: the MemoryClock's, else time.sleep
    ready_after_s: float = 0.0
    state: str | None = None
    source: str = "memory"

    def __post_init__(self) -> None:
        if self.sleep is None:
            self.sleep = self.clock.sleep if isinstance(self.clock, MemoryClock) else time.sleep
        self.plan: ReleasePlan | None = None
        self.pods: dict[Role, list[_Pod]] = {Role.STABLE: [], Role.CANARY: []}
        self.canary_weight = 0
        self.active: Role = Role.STABLE
        self.preview: Role | None = None
        self.promoted = False
        self.applied: list[Action] = []  # every action received, in order
        self.saved: list[str] = []  # every state written, in order
        self.left_commands: list[CommandRequest] = []
        self.ensured = 0  # how many times ensure() ran
        self.waited_s = 0.0  # wall seconds spent in wait()
        self._generation = 0  # counts changes to the pods (asked for, removed)
        self._observed = -1  # the generation the last observe() saw

    # ----------------------------------------------------------------- the Backend protocol

    def attach(self, plan: ReleasePlan, spec: StrategySpec) -> None:
        if self.plan is not None and self.plan.release != plan.release:
            raise StateError(f"this memory backend runs release {self.plan.release!r}, not {plan.release!r}")
        self.plan = plan

    def ensure(self, plan: ReleasePlan, spec: StrategySpec) -> None:
        """A first run gets the stable version at full scale; a resumed one keeps what the
        earlier runner left (the cluster outlived it)."""
        self.ensured += 1
        if self.state is None and not self.pods[Role.STABLE] and not self.pods[Role.CANARY]:
            self._scale(Role.STABLE, plan.replicas)

    def observe(self) -> tuple[VersionObservation, VersionObservation]:
        self._observed = self._generation
        now = self.clock()
        out = []
        for role in (Role.STABLE, Role.CANARY):
            pods = self.pods[role]
            ready = sum(1 for p in pods if now - p.asked_at >= self.ready_after_s)
            out.append(VersionObservation(len(pods), ready, ready))
        return out[0], out[1]

    def apply(self, action: Action) -> None:
        self.applied.append(action)
        if isinstance(action, ScaleVersion):
            self._scale(action.role, action.replicas)
        elif isinstance(action, SetCanaryWeight):
            self.canary_weight = action.weight
        elif isinstance(action, SwitchActive):
            self.active = action.role
        elif isinstance(action, SwitchPreview):
            self.preview = action.role
        elif isinstance(action, Promote):
            self.promoted = True
        else:
            raise ValueError(f"the memory backend cannot apply {action!r}")

    def load_state(self) -> str | None:
        return self.state

    def save_state(self, state: str) -> None:
        self.state = state
        self.saved.append(state)

    def commands(self) -> tuple[CommandRequest, ...]:
        return tuple(self.left_commands)

    def wait(self, seconds: float) -> None:
        """Sleep ``seconds``, or less, as a watch would: not at all when the pods changed
        since the last ``observe``, and only until the next pod becomes ready."""
        if self._generation != self._observed:
            return
        now = self.clock()
        starting = [p.asked_at + self.ready_after_s - now for pods in self.pods.values() for p in pods
                    if now - p.asked_at < self.ready_after_s]
        seconds = min([seconds, *starting])
        if seconds > 0:
            self.waited_s += seconds
            self.sleep(seconds)

    # ----------------------------------------------------------------- for tests

    def leave_command(self, command: Command | str, id: int | None = None) -> CommandRequest:  # noqa: A002
        """A command a person leaves (``3 abort``); without ``id``, one above every id used."""
        if id is None:
            id = max([c.id for c in self.left_commands] + [0]) + 1  # noqa: A001
        request = CommandRequest(id, Command(command))
        self.left_commands.append(request)
        return request

    def kill_pods(self, role: Role | None = None, count: int = 1) -> list[str]:
        """A crash: ``count`` pods (of a version, or any) start again from not ready."""
        now, hit = self.clock(), []
        for r in (Role.STABLE, Role.CANARY) if role is None else (role,):
            for i, pod in enumerate(self.pods[r]):
                if len(hit) < count:
                    pod.asked_at = now
                    hit.append(f"{r.value}-{i}")
        self._generation += 1
        return hit

    def urls(self) -> dict[str, str | None]:
        """No router: nothing listens. A run with traffic passes its own URLs."""
        return {"user": "http://127.0.0.1:9/", "preview": None}

    def _scale(self, role: Role, replicas: int) -> None:
        pods = self.pods[role]
        now = self.clock()
        if len(pods) != replicas:
            self._generation += 1
        while len(pods) < replicas:
            pods.append(_Pod(now))
        del pods[replicas:]


@dataclass
class MemoryMetrics:
    """A ``live.runner.MetricsSource`` for the memory backend: each ready pod answers
    ``rps_per_pod`` requests per wall second of ``clock``, failing ``error_rate[version]``
    of them (deterministically: errors = floor(requests x rate))."""

    backend: MemoryBackend
    error_rate: Mapping[str, float] = field(default_factory=dict)
    rps_per_pod: float = 50.0

    def __post_init__(self) -> None:
        self._requests: dict[str, float] = {}
        self._last: float | None = None

    def counters(self) -> dict[str | None, Counters]:
        plan = self.backend.plan
        if plan is None:
            return {}
        now = self.backend.clock()
        elapsed = 0.0 if self._last is None else max(0.0, now - self._last)
        self._last = now
        stable, canary = self.backend.observe()
        for version, ready in ((plan.stable.name, stable.ready), (plan.canary.name, canary.ready)):
            self._requests[version] = self._requests.get(version, 0.0) + ready * self.rps_per_pod * elapsed
        out: dict[str | None, Counters] = {}
        for version, requests in self._requests.items():
            n = int(requests)
            out[version] = Counters(n, int(n * self.error_rate.get(version, 0.0)))
        return out


__all__ = ["MemoryBackend", "MemoryClock", "MemoryMetrics"]
