"""The local live backend: each pod a real process of ``demo_service.py`` on 127.0.0.1,
HAProxy in front as the traffic router. ``live.runner.Backend`` with source ``live-local``.

What plays Kubernetes' part here:

    ReplicaSet        ``ScaleVersion`` sets a version's wanted pods; missing pods are
                      created, extra ones deleted (not ready before ready, newest first).
                      A terminating pod no longer counts in ``replicas``.
    kubelet           one supervisor thread: starts each pod's process (``python
                      demo_service.py`` with the version's env plus DEMO_VERSION,
                      DEMO_HOST=127.0.0.1, DEMO_PORT=0: the pod picks a free port and its
                      start line says which), probes ``/healthz/ready`` (``Probe``),
                      restarts a process that exits with a CrashLoopBackOff-like delay
                      (``Backoff``: base * 2^(restarts-1), capped), and stops pods with
                      SIGTERM, then SIGKILL after the grace period.
    endpoints + proxy HAProxy (``live.haproxy``): a pod's server slot gets its address when
                      the process listens and enters the rotation once the pod first
                      passed readiness; from then HAProxy's own health check (mirroring
                      the probe: same period, timeout, rise/fall) takes a stopped or
                      draining pod out and puts it back. A deleted pod's slot is put in
                      maintenance *before* SIGTERM, and an exited pod's as soon as the
                      supervisor sees the exit (``endpoint_lag_s`` = 0: ideal endpoints).
                      ``endpoint_lag_s`` > 0 reproduces the endpoints controller's and
                      kube-proxy's lag: the slot leaves only that long after the SIGTERM or
                      the exit, so until then HAProxy's health check and retries are what
                      keep users away from the pod.
    the cluster's     ``backend.json`` in the state directory: what the backend applied
    objects           (scale per version, canary weight, active/preview, stable version).

Persisted files (the state directory, given by the caller; it outlives the backend):

    state.json        the runner's state (``load_state``/``save_state``), written atomically
    backend.json      the backend's record of applied actions (atomically, at each change)
    commands          commands a person leaves: one per line, ``<id> <command>``, e.g.
                      ``3 abort`` or ``4 promote`` (ids only grow; the controller applies an
                      id once; ``#`` starts a comment). ``leave_command`` appends one.

Resume. The processes die with the backend (``close``, or the Python process ending), so a
local resume *restarts the pods*: a new ``LocalBackend`` on the same state directory
rebuilds, in ``ensure``, HAProxy and every version at the scale ``backend.json`` recorded
(or, without it, the scale the runner's persisted status implies), with the recorded
weight and active/preview routes. Users see the restart as a short outage; the runner
then continues from its persisted status.

Nothing is left running: ``close()`` (also ``with LocalBackend(...)``) kills the pods and
HAProxy and removes the run directory; an ``atexit`` hook closes every backend still open;
and every child is started with ``PR_SET_PDEATHSIG`` = SIGKILL from the backend's
long-lived supervisor thread, so the kernel kills them if the Python process dies without
running any cleanup (SIGKILL, an unhandled SIGTERM).
"""

from __future__ import annotations

import atexit
import ctypes
import http.client
import json
import logging
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from rolloutlab.errors import LocalBackendError, RouterError, StateError
from rolloutlab.live.haproxy import (
    HAPROXY,
    NO_BACKEND,
    HAProxyProcess,
    HealthCheck,
    Layout,
    RouterFiles,
    RouterLayout,
    RouterSettings,
    RouterStats,
    slot_name,
)
from rolloutlab.live.runner import LiveVersion, ReleasePlan, RunnerState, parse_command
from rolloutlab.strategies import (
    Action,
    Command,
    CommandRequest,
    Promote,
    Role,
    RolloutStatus,
    ScaleVersion,
    SetCanaryWeight,
    StrategySpec,
    SwitchActive,
    SwitchPreview,
    VersionObservation,
)
from rolloutlab.strategies.cycle import ceil_share
from rolloutlab.strategies.spec import StrategyKind, TrafficRouting

log = logging.getLogger(__name__)

DEMO_SERVICE = Path(__file__).with_name("demo_service.py")
STATE_FILE = "state.json"
RECORD_FILE = "backend.json"
COMMANDS_FILE = "commands"
RECORD_VERSION = 1
_LISTENING = re.compile(rb"listening=\S*?:(\d+)")


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class Probe:
    """The readiness probe the backend runs against each pod (the kubelet's), also used
    for HAProxy's health check unless the backend is given another.

    ``period_s`` is also the resolution of the measured start-to-ready times."""

    period_s: float = 0.1
    timeout_s: float = 0.25
    success_threshold: int = 1
    failure_threshold: int = 2
    path: str = "/healthz/ready"

    def __post_init__(self) -> None:
        if not (self.period_s > 0 and self.timeout_s > 0 and self.success_threshold >= 1 and self.failure_threshold >= 1):
            raise ValueError(f"impossible probe {self}")

    @classmethod
    def from_readiness(cls, readiness: Any, time_scale: float = 1.0, min_period_s: float = 0.05) -> "Probe":
        """A scenario's ``ReadinessProbe`` (scenarios.schema), its times divided by the
        run's time scale (a 10 s period at scale 20 probes every 0.5 s)."""
        return cls(
            period_s=max(min_period_s, readiness.period / time_scale),
            timeout_s=max(min_period_s, readiness.timeout / time_scale),
            success_threshold=readiness.success_threshold,
            failure_threshold=readiness.failure_threshold,
        )

    def health_check(self) -> HealthCheck:
        """HAProxy's check mirroring this probe (HAProxy checks at most every 100 ms here:
        its checks are cheap, but not free for a few dozen slots)."""
        return HealthCheck(interval_s=max(0.1, self.period_s), timeout_s=self.timeout_s,
                           rise=self.success_threshold, fall=self.failure_threshold, path=self.path)


@dataclass(frozen=True)
class Backoff:
    """CrashLoopBackOff: the n-th restart in a row waits ``min(cap, base * 2^(n-1))``; a
    process that ran ``reset_after_s`` (default twice the cap, as the kubelet's 10 min for
    a 5 min cap) before exiting starts the count again."""

    base_s: float = 1.0
    cap_s: float = 10.0
    reset_after_s: float | None = None

    def delay(self, restarts: int) -> float:
        return min(self.cap_s, self.base_s * 2 ** max(0, restarts - 1))

    @property
    def reset_s(self) -> float:
        return 2 * self.cap_s if self.reset_after_s is None else self.reset_after_s


class PodPhase(str, Enum):
    PENDING = "Pending"  # waiting for a free router slot (the local "unschedulable")
    RUNNING = "Running"  # the process runs (ready or not)
    BACKOFF = "CrashLoopBackOff"  # the process exited; restarting after the backoff
    TERMINATING = "Terminating"  # deleted: SIGTERM sent, SIGKILL at the grace deadline


# --------------------------------------------------------------------------- what callers read


@dataclass(frozen=True)
class PodInfo:
    """One pod as the backend sees it now."""

    name: str
    role: Role
    version: str
    phase: PodPhase
    ready: bool
    routed: bool  # its router slot was put in rotation for this container
    paused: bool
    pid: int | None
    port: int | None
    slot: str | None
    restarts: int


@dataclass(frozen=True)
class PodStart:
    """One container start: when its process was spawned and when the probe first passed."""

    pod: str
    role: Role
    version: str
    container: int  # 0 for the first start, then one per restart
    started_at: float  # time.monotonic()
    ready_at: float | None

    @property
    def start_to_ready_s(self) -> float | None:
        return None if self.ready_at is None else self.ready_at - self.started_at


@dataclass(frozen=True)
class SwitchTiming:
    """One router switch: the runtime API round trip, and the time from sending the command
    to the first answer from the new version through the switched frontend."""

    action: str
    target: str  # version name
    at: float  # time.monotonic() when the command was sent
    command_s: float
    first_response_s: float | None  # None: no answer from the target within the probe budget
    probes: int  # requests it took (the first answering from the target included)


@dataclass(frozen=True)
class Calibration:
    """Measured figures of this backend, for ``rolloutlab validate`` to record."""

    router_start_s: float | None
    probe_period_s: float  # resolution of the start-to-ready times
    pod_starts: tuple[PodStart, ...]
    switches: tuple[SwitchTiming, ...]

    @property
    def start_to_ready_s(self) -> list[float]:
        return [p.start_to_ready_s for p in self.pod_starts if p.start_to_ready_s is not None]

    @property
    def switch_delays_s(self) -> list[float]:
        return [s.first_response_s for s in self.switches if s.first_response_s is not None]

    def summary(self) -> dict[str, float | int | None]:
        ready, switch = sorted(self.start_to_ready_s), sorted(self.switch_delays_s)
        return {
            "router_start_s": self.router_start_s,
            "probe_period_s": self.probe_period_s,
            "pod_starts": len(ready),
            "pod_start_to_ready_median_s": _quantile(ready, 0.5),
            "pod_start_to_ready_p90_s": _quantile(ready, 0.9),
            "pod_start_to_ready_max_s": ready[-1] if ready else None,
            "switches": len(switch),
            "switch_delay_median_s": _quantile(switch, 0.5),
            "switch_delay_max_s": switch[-1] if switch else None,
        }


def _quantile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))]


@dataclass(frozen=True)
class BackendEvent:
    at: float  # time.monotonic()
    kind: str  # started, ready, unready, exited, restarting, deleted, killed, paused, resumed, routed, router...
    pod: str | None
    detail: str = ""


# --------------------------------------------------------------------------- the record


@dataclass
class Record:
    """What the backend applied: the local analogue of the cluster's objects."""

    app: str
    release: str
    strategy: str
    desired: dict[str, int]  # role value -> pods wanted
    canary_weight: int = 0
    active: str = Role.STABLE.value
    preview: str | None = None
    stable_version: str = ""
    promoted: bool = False

    def dump(self) -> str:
        return json.dumps({"v": RECORD_VERSION, **asdict(self)}, indent=1, sort_keys=True)

    @classmethod
    def load(cls, text: str) -> "Record":
        data = json.loads(text)
        version = data.pop("v", None)
        if version != RECORD_VERSION:
            raise StateError(f"backend record format {version!r}, this backend reads {RECORD_VERSION}")
        return cls(**data)


def record_from_status(plan: ReleasePlan, spec: StrategySpec, status: RolloutStatus | None) -> Record:
    """The scale and routes a persisted controller status implies, for a state directory
    that has the runner's state but no backend record. The controller is level-triggered,
    so an approximate scale is corrected by its next cycle; what matters is that users keep
    a serving version: the stable at full scale unless the canary was promoted."""
    kind = spec.strategy.kind
    replicas = plan.replicas
    record = Record(plan.app, plan.release, kind.value, {"stable": replicas, "canary": 0},
                    stable_version=plan.stable.name)
    if status is None or status.started_at is None:
        return record
    if status.completed:
        record.desired = {"stable": 0 if status.scale_down_at is None else replicas, "canary": replicas}
        record.canary_weight, record.active = 100, Role.CANARY.value
        record.stable_version, record.promoted = plan.canary.name, True
        return record
    if status.aborted:
        keep = status.scale_down_at is not None or status.restored_at is None
        record.desired["canary"] = _canary_scale(spec, status, replicas) if keep else 0
        return record  # weight 0, active stable
    record.canary_weight = status.applied_weight
    record.active = status.active.value
    record.desired["canary"] = _canary_scale(spec, status, replicas)
    if kind is StrategyKind.BLUE_GREEN and status.step_index >= 1 and spec.strategy.blue_green.preview_service:
        record.preview = Role.CANARY.value
    return record


def _canary_scale(spec: StrategySpec, status: RolloutStatus, replicas: int) -> int:
    kind = spec.strategy.kind
    if kind is StrategyKind.BLUE_GREEN:
        bg = spec.strategy.blue_green
        return min(bg.preview_replica_count or replicas, replicas) if status.step_index >= 1 else 0
    if kind is StrategyKind.CANARY:
        return ceil_share(status.applied_weight, replicas) if status.applied_weight else 0
    return 0


# --------------------------------------------------------------------------- pods (internal)


@dataclass(eq=False)
class _Pod:
    name: str
    role: Role
    version: LiveVersion
    seed: int | None
    phase: PodPhase = PodPhase.PENDING
    slot: int | None = None
    process: subprocess.Popen | None = None
    container: int = -1  # index of the current (or last) container
    started_at: float = 0.0
    log_path: Path | None = None
    port: int | None = None
    addressed: bool = False  # the slot has this container's address
    routed: bool = False  # the slot is in rotation for this container
    ready: bool = False
    ever_ready: bool = False  # in this container
    successes: int = 0
    failures: int = 0
    restarts: int = 0  # consecutive, for the backoff
    total_restarts: int = 0
    backoff_until: float = 0.0
    kill_at: float = 0.0
    unroute_at: float | None = None
    killed: bool = False
    paused: bool = False
    resume_at: float | None = None
    probe: Future | None = None
    next_probe_at: float = 0.0
    faults: dict[str, Any] | None = None  # to POST before the next probe (sticky faults)

    def info(self, layout: RouterLayout | None) -> PodInfo:
        slot = None if self.slot is None or layout is None else slot_name(self.role.value, self.slot)
        alive = self.process is not None and self.process.poll() is None
        return PodInfo(self.name, self.role, self.version.name, self.phase, self.ready, self.routed, self.paused,
                       self.process.pid if alive else None, self.port, slot, self.total_restarts)


@dataclass(frozen=True)
class _ProbeResult:
    answered: bool  # the process answered HTTP (any status)
    ready: bool
    fault_error: str | None = None


def _probe(port: int, probe: Probe, faults: Mapping[str, Any] | None) -> _ProbeResult:
    fault_error = None
    if faults:
        try:
            status, body = _http("POST", port, "/fault", probe.timeout_s * 4, json.dumps(faults).encode())
            if status != 200:
                fault_error = f"POST /fault answered {status}: {body[:200]!r}"
        except OSError as error:
            return _ProbeResult(False, False, f"POST /fault failed: {error}")
    try:
        status, _ = _http("GET", port, probe.path, probe.timeout_s)
    except OSError:
        return _ProbeResult(False, False, fault_error)
    return _ProbeResult(True, status == 200, fault_error)


def _http(method: str, port: int, path: str, timeout_s: float, body: bytes | None = None,
          host: str = "127.0.0.1") -> tuple[int, bytes]:
    connection = http.client.HTTPConnection(host, port, timeout=timeout_s)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    except (http.client.HTTPException, ValueError) as error:
        raise OSError(str(error)) from None
    finally:
        connection.close()


# --------------------------------------------------------------------------- children die with us


_PR_SET_PDEATHSIG = 1
try:
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux: atexit and close() only
    _prctl = None


def _die_with_parent(parent_pid: int) -> Callable[[], None] | None:
    if _prctl is None:
        return None

    def preexec() -> None:  # runs in the child between fork and exec
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


_OPEN: "weakref.WeakSet[LocalBackend]" = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for backend in list(_OPEN):
        try:
            backend.close()
        except Exception:  # noqa: BLE001 - best effort at interpreter exit
            log.exception("closing a local backend at exit failed")


# --------------------------------------------------------------------------- the backend


class LocalBackend:
    """``live.runner.Backend`` on local processes behind HAProxy (see the module docstring).

    ``state_dir`` holds what must survive the backend (state, record, commands); the run's
    own files (HAProxy config and socket, pod logs) go to a temporary directory removed
    by ``close`` (``keep_run_dir`` keeps it for debugging). Time settings are wall seconds:
    a time-compressed run passes a faster ``probe`` and shorter ``backoff``/grace."""

    source = "live-local"

    def __init__(
        self,
        state_dir: str | os.PathLike,
        *,
        probe: Probe = Probe(),
        router: RouterSettings | None = None,
        backoff: Backoff = Backoff(),
        termination_grace_s: float = 5.0,
        endpoint_lag_s: float = 0.0,
        slots_per_version: int | None = None,
        demo_service: str | os.PathLike = DEMO_SERVICE,
        python: str = sys.executable,
        haproxy: str = HAPROXY,
        seed: int | None = None,
        measure_switches: bool = True,
        keep_run_dir: bool = False,
        tick_s: float = 0.05,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.probe = probe
        self.router_settings = router or RouterSettings(check=probe.health_check())
        self.backoff = backoff
        self.termination_grace_s = termination_grace_s
        self.endpoint_lag_s = endpoint_lag_s
        self.slots_per_version = slots_per_version
        self.demo_service = Path(demo_service)
        self.python = python
        self.haproxy_binary = haproxy
        self.measure_switches = measure_switches
        self.keep_run_dir = keep_run_dir
        self._tick_s = tick_s
        self._log_fn = log
        self._rng = random.Random(seed)
        self._seed = seed

        self.plan: ReleasePlan | None = None
        self.spec: StrategySpec | None = None
        self.layout: RouterLayout | None = None
        self.record: Record | None = None
        self.resumed = False
        self.run_dir: Path | None = None
        self._router: HAProxyProcess | None = None
        self._pods: list[_Pod] = []
        self._pod_counter = {Role.STABLE: 0, Role.CANARY: 0}
        self._free_slots: dict[Role, list[int]] = {}
        self._sticky_faults: dict[Role, dict[str, Any]] = {Role.STABLE: {}, Role.CANARY: {}}
        self._pod_starts: list[PodStart] = []
        self._switches: list[SwitchTiming] = []
        self.events: deque[BackendEvent] = deque(maxlen=20000)

        self._lock = threading.RLock()
        self._changed = threading.Condition(threading.Lock())
        self._generation = 0
        self._observed_generation = 0  # the generation the last observe() saw
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._calls: deque[tuple[Callable[[], Any], Future]] = deque()
        self._supervisor: threading.Thread | None = None
        self._probes = ThreadPoolExecutor(max_workers=16, thread_name_prefix="local-probe")
        self.supervisor_error: BaseException | None = None
        self._closed = False
        _OPEN.add(self)

    # ----------------------------------------------------------------- context manager

    def __enter__(self) -> "LocalBackend":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ----------------------------------------------------------------- ensure

    def attach(self, plan: ReleasePlan, spec: StrategySpec) -> None:
        """Which rollout this backend serves. Nothing to do before ``ensure`` here: the
        state directory, given at construction, already says where the state lives."""
        with self._lock:
            self._check_open()
            if self.plan is not None and self.plan.release != plan.release:
                raise LocalBackendError(f"this backend runs release {self.plan.release!r}, not {plan.release!r}")

    def ensure(self, plan: ReleasePlan, spec: StrategySpec) -> None:
        """Start HAProxy and the pods the state implies; on a live backend, only re-assert
        the recorded scale (idempotent). A first run: the stable at full scale, no canary."""
        if plan.replicas < 1:
            raise LocalBackendError(f"a release needs at least one replica, got {plan.replicas}")
        with self._lock:
            self._check_open()
            if self.plan is not None:
                if (self.plan.release, self.plan.stable, self.plan.canary) != (plan.release, plan.stable, plan.canary) \
                        or self.spec.strategy.kind is not spec.strategy.kind:
                    raise LocalBackendError(
                        f"this backend runs release {self.plan.release!r} ({self.spec.strategy.kind.value}); "
                        f"start another LocalBackend for {plan.release!r}")
                for role in Role:
                    self._scale(role, self.record.desired[role.value])
                return
            record = self._load_record()
            if record is not None and record.release != plan.release:
                raise StateError(
                    f"{self.state_dir / RECORD_FILE} belongs to release {record.release!r}; this run is "
                    f"{plan.release!r}. Use another state directory (or delete this one).")
            if record is not None and record.strategy != spec.strategy.kind.value:
                raise StateError(f"{self.state_dir / RECORD_FILE} was rolled out with {record.strategy}; this run "
                                 f"uses {spec.strategy.kind.value}")
            if record is None:
                text = self.load_state()
                status = None
                if text is not None:
                    state = RunnerState.load(text)
                    if state.release == plan.release:
                        status = state.status
                record = record_from_status(plan, spec, status)
                self.resumed = status is not None
            else:
                self.resumed = True
            self.plan, self.spec, self.record = plan, spec, record
            self.layout = self._layout_for(plan, spec)
            self._free_slots = {role: list(range(self.layout.slots[role.value])) for role in Role}
            # the stats socket's path must fit a unix socket address (108 bytes)
            short = "/tmp" if len(tempfile.gettempdir()) > 60 and os.path.isdir("/tmp") else None
            self.run_dir = Path(tempfile.mkdtemp(prefix="rolloutlab-local-", dir=short))
            (self.run_dir / "pods").mkdir()
            self._start_supervisor()
        try:
            self._call_in_supervisor(self._start_router)
        except BaseException:
            with self._lock:  # nothing half-built stays: a later ensure starts afresh
                self.plan = self.spec = self.record = self.layout = None
                shutil.rmtree(self.run_dir, ignore_errors=True)
                self.run_dir = None
            raise
        with self._lock:
            self._event("router", None, f"HAProxy on {self.urls()['user']} (preview {self._router.preview_port}), "
                                        f"layout {self.layout.layout.value}")
            if self.resumed:
                self._event("resume", None, f"restarting pods: {record.desired}")
            for role in Role:
                self._scale(role, record.desired[role.value])
            self._save_record()

    def _layout_for(self, plan: ReleasePlan, spec: StrategySpec) -> RouterLayout:
        kind = spec.strategy.kind
        routed = kind is StrategyKind.BLUE_GREEN or (
            kind is StrategyKind.CANARY and spec.strategy.canary.traffic_routing is TrafficRouting.ROUTER)
        slots = self.slots_per_version or 3 * plan.replicas + 2
        return RouterLayout(Layout.ROUTED if routed else Layout.SHARED, {"stable": slots, "canary": slots})

    def _start_router(self) -> None:
        assert self.record is not None and self.layout is not None and self.run_dir is not None
        routes = {"active": f"be_{self.record.active}", "preview": self._preview_backend(self.record.preview)}
        router = HAProxyProcess(RouterFiles(self.run_dir), self.layout, self.router_settings, routes,
                                {"canary": self.record.canary_weight}, binary=self.haproxy_binary, spawn=self._spawn)
        previous = self._router
        router.start(ports=None if previous is None else (previous.user_port, previous.preview_port))
        self._router = router

    @staticmethod
    def _preview_backend(role: str | None) -> str:
        return NO_BACKEND if role is None else f"be_{role}"

    # ----------------------------------------------------------------- the Backend protocol

    def observe(self) -> tuple[VersionObservation, VersionObservation]:
        with self._changed:
            # what this observation has seen: wait() wakes for any change after it, even
            # one made while the runner was still applying actions
            self._observed_generation = self._generation
        with self._lock:
            self._check_ensured()
            out = []
            for role in Role:
                ready = sum(1 for p in self._pods if p.role is role and p.phase is not PodPhase.TERMINATING and p.ready)
                out.append(VersionObservation(self.record.desired[role.value], ready, ready))
            return out[0], out[1]

    def apply(self, action: Action) -> None:
        measure: Callable[[], None] | None = None
        with self._lock:
            self._check_ensured()
            if isinstance(action, ScaleVersion):
                self.record.desired[action.role.value] = action.replicas
                self._scale(action.role, action.replicas)
            elif isinstance(action, SetCanaryWeight):
                if self.layout.layout is Layout.ROUTED:
                    self._router.api.set_map(self._router.files.weights_map, "canary", action.weight)
                    self._event("router", None, f"canary weight {action.weight}")
                self.record.canary_weight = action.weight  # shared layout: weight follows pods
            elif isinstance(action, SwitchActive):
                self._require_routed(action)
                self.record.active = action.role.value
                measure = self._switch("active", f"be_{action.role.value}", self.plan.version(action.role).name, "user")
            elif isinstance(action, SwitchPreview):
                self._require_routed(action)
                self.record.preview = None if action.role is None else action.role.value
                target = None if action.role is None else self.plan.version(action.role).name
                measure = self._switch("preview", self._preview_backend(self.record.preview), target, "preview")
            elif isinstance(action, Promote):
                self.record.stable_version, self.record.promoted = self.plan.canary.name, True
                self._event("promote", None, f"stable version is now {self.plan.canary.name}")
            else:
                raise LocalBackendError(f"the local backend cannot apply {action!r}")
            self._save_record()
        if measure is not None:  # outside the lock: the supervisor keeps probing meanwhile
            measure()

    def load_state(self) -> str | None:
        try:
            return (self.state_dir / STATE_FILE).read_text()
        except FileNotFoundError:
            return None

    def save_state(self, state: str) -> None:
        _write_atomically(self.state_dir / STATE_FILE, state)

    def commands(self) -> tuple[CommandRequest, ...]:
        """Every command in the commands file (the controller skips ids it applied)."""
        try:
            text = (self.state_dir / COMMANDS_FILE).read_text()
        except FileNotFoundError:
            return ()
        return parse_commands(text, self.state_dir / COMMANDS_FILE)

    def wait(self, seconds: float) -> None:
        """Sleep up to ``seconds``; wake early when a pod's readiness changed, a process
        exited or a pod went away."""
        if seconds <= 0:
            return
        with self._changed:
            generation = self._observed_generation
            self._changed.wait_for(lambda: self._generation != generation, timeout=seconds)

    # ----------------------------------------------------------------- more than the protocol

    def leave_command(self, command: Command, id: int | None = None) -> CommandRequest:  # noqa: A002
        """Append a command to the commands file, as a person would (``echo "3 abort" >>``).
        Without ``id``: one above every id in the file and every id the runner used."""
        if id is None:
            used = [r.id for r in self.commands()]
            text = self.load_state()
            if text is not None:
                state = RunnerState.load(text)
                used += [state.next_command_id - 1, state.status.last_command_id]
            id = max(used, default=0) + 1  # noqa: A001
        request = CommandRequest(id, Command(command))
        with open(self.state_dir / COMMANDS_FILE, "a") as f:
            f.write(f"{request.id} {request.command.value}\n")
        return request

    def stable_version(self) -> str | None:
        """The version the last ``Promote`` made stable (the plan's stable before that)."""
        with self._lock:
            record = self.record or self._load_record()
            return None if record is None else record.stable_version

    def urls(self) -> dict[str, str | None]:
        """Where the load generator sends users (and blue-green's preview traffic)."""
        with self._lock:
            self._check_ensured()
            user = f"http://127.0.0.1:{self._router.user_port}/"
            preview = None
            bg = self.spec.strategy.blue_green
            if bg is not None and bg.preview_service:
                preview = f"http://127.0.0.1:{self._router.preview_port}/"
            return {"user": user, "preview": preview}

    def router_stats(self) -> RouterStats:
        """Per-frontend/backend/server counters from HAProxy's ``show stat``."""
        with self._lock:
            self._check_ensured()
            router = self._router
        return router.stats()

    def pods(self, role: Role | None = None) -> list[PodInfo]:
        with self._lock:
            return [p.info(self.layout) for p in self._pods if role is None or p.role is role]

    def calibration(self) -> Calibration:
        with self._lock:
            starts = list(self._pod_starts)
            for pod in self._pods:  # containers not ready (yet)
                if pod.process is not None and not pod.ever_ready and pod.phase is PodPhase.RUNNING:
                    starts.append(PodStart(pod.name, pod.role, pod.version.name, pod.container, pod.started_at, None))
            return Calibration(None if self._router is None else self._router.started_s, self.probe.period_s,
                               tuple(starts), tuple(self._switches))

    def wait_until(self, predicate: Callable[[], bool], timeout_s: float) -> bool:
        """Wait (bounded) until ``predicate()`` holds, re-checking at every change and at
        least every 50 ms; True if it held."""
        deadline = time.monotonic() + timeout_s
        while True:
            if predicate():
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.wait(min(left, 0.05))

    def wait_until_serving(self, timeout_s: float = 15.0) -> None:
        """Block until every wanted pod is ready and in the router's rotation."""
        def serving() -> bool:
            with self._lock:
                live = [p for p in self._pods if p.phase is not PodPhase.TERMINATING]
                return len(live) == sum(self.record.desired.values()) and all(p.ready and p.routed for p in live)
        if not self.wait_until(serving, timeout_s):
            raise TimeoutError(f"pods not all serving after {timeout_s:g}s: {self.pods()}")

    # ----------------------------------------------------------------- chaos

    def kill_pods(self, role: Role | None = None, count: int = 1, sig: int = signal.SIGKILL) -> list[str]:
        """Signal ``count`` running pods (of a version, or any), ready ones first, chosen at
        random (seeded): a SIGKILL is a crash; the pod restarts after the backoff as a
        kubelet restarts a container (a SIGTERM makes it drain and exit, then restart)."""
        with self._lock:
            victims = self._pick(role, count)
            for pod in victims:
                pod.killed = sig == signal.SIGKILL
                self._signal(pod, sig)
                if pod.paused and sig != signal.SIGKILL:
                    self._signal(pod, signal.SIGCONT)
                    pod.paused, pod.resume_at = False, None
                self._event("killed", pod.name, f"signal {signal.Signals(sig).name}")
            self._wake.set()
            return [p.name for p in victims]

    def pause_pods(self, role: Role | None = None, count: int = 1, duration_s: float | None = None) -> list[str]:
        """SIGSTOP ``count`` running pods (a hung process: it accepts connections and never
        answers), SIGCONT after ``duration_s`` (None: until ``resume_pods``)."""
        with self._lock:
            victims = [p for p in self._pick(role, count, exclude_paused=True)]
            now = time.monotonic()
            for pod in victims:
                self._signal(pod, signal.SIGSTOP)
                pod.paused = True
                pod.resume_at = None if duration_s is None else now + duration_s
                self._event("paused", pod.name, "SIGSTOP" + ("" if duration_s is None else f" for {duration_s:g}s"))
            return [p.name for p in victims]

    def resume_pods(self, names: Iterable[str] | None = None) -> list[str]:
        with self._lock:
            wanted = None if names is None else set(names)
            resumed = []
            for pod in self._pods:
                if pod.paused and (wanted is None or pod.name in wanted):
                    self._resume(pod)
                    resumed.append(pod.name)
            return resumed

    def set_fault(self, role: Role, **settings: Any) -> dict[str, bool]:
        """POST ``settings`` to ``/fault`` of every running pod of a version (demo_service
        fields: error_rate, latency_ms, ready, ...). The settings stay with the version:
        pods started later (restarts, scale-ups) get them before their first probe.
        Returns pod -> whether it took them (a stopped pod cannot answer)."""
        with self._lock:
            self._sticky_faults[role].update(settings)
            targets = [(p.name, p.port) for p in self._pods
                       if p.role is role and p.phase is PodPhase.RUNNING and p.port is not None]
        body = json.dumps(settings).encode()
        out = {}
        for name, port in targets:
            try:
                status, text = _http("POST", port, "/fault", 1.0, body)
            except OSError:
                out[name] = False
                continue
            if status == 400:
                raise LocalBackendError(f"pod {name} refused the fault {settings}: {text.decode(errors='replace')}")
            out[name] = status == 200
        with self._lock:
            for pod in self._pods:  # those that could not take it now get it before their next probe
                if pod.name in out and not out[pod.name]:
                    pod.faults = dict(self._sticky_faults[role])
            self._event("fault", None, f"{role.value}: {settings} -> {out}")
        return out

    def _pick(self, role: Role | None, count: int, exclude_paused: bool = False) -> list[_Pod]:
        candidates = [p for p in self._pods if p.phase is PodPhase.RUNNING and p.process is not None
                      and p.process.poll() is None and (role is None or p.role is role)
                      and not (exclude_paused and p.paused)]
        self._rng.shuffle(candidates)
        candidates.sort(key=lambda p: not p.ready)  # stable sort: ready ones first, random among them
        return candidates[:max(0, count)]

    # ----------------------------------------------------------------- close

    def close(self) -> None:
        """Kill every pod and HAProxy, remove the run directory. Idempotent."""
        if self._closed:
            return
        self._closed = True
        _OPEN.discard(self)
        with self._lock:
            pods, self._pods = list(self._pods), []
            router, self._router = self._router, None
        for pod in pods:  # SIGKILL first, all at once; then reap
            if pod.process is not None and pod.process.poll() is None:
                _send(pod.process, signal.SIGKILL)
        for pod in pods:
            if pod.process is not None:
                try:
                    pod.process.wait(5)
                except subprocess.TimeoutExpired:
                    log.error("pod %s (pid %s) did not die after SIGKILL", pod.name, pod.process.pid)
        if router is not None:
            router.stop()
        self._stopping.set()
        self._wake.set()
        if self._supervisor is not None and self._supervisor is not threading.current_thread():
            self._supervisor.join(5)
        self._probes.shutdown(wait=False, cancel_futures=True)
        while self._calls:
            _, future = self._calls.popleft()
            future.set_exception(LocalBackendError("the backend was closed"))
        if self.run_dir is not None and not self.keep_run_dir:
            shutil.rmtree(self.run_dir, ignore_errors=True)
        self._notify()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def router_pid(self) -> int | None:
        with self._lock:
            router = self._router
            return None if router is None or not router.running else router.process.pid

    def child_pids(self) -> list[int]:
        """Processes this backend runs now (pods and HAProxy); for tests and cleanup checks."""
        with self._lock:
            procs = [p.process for p in self._pods if p.process is not None]
            if self._router is not None and self._router.process is not None:
                procs.append(self._router.process)
            return [p.pid for p in procs if p.poll() is None]

    # ----------------------------------------------------------------- internals: scale

    def _scale(self, role: Role, replicas: int) -> None:
        live = [p for p in self._pods if p.role is role and p.phase is not PodPhase.TERMINATING]
        for _ in range(replicas - len(live)):
            self._pods.append(self._new_pod(role))
        if len(live) > replicas:
            # the ReplicaSet's order: pods without a process, then not ready, then newest
            order = sorted(live, key=lambda p: (p.phase is PodPhase.RUNNING, p.ready, -p.started_at, -self._pods.index(p)))
            for pod in order[: len(live) - replicas]:
                self._terminate(pod)
        self._wake.set()

    def _new_pod(self, role: Role) -> _Pod:
        version = self.plan.version(role)
        index = self._pod_counter[role]
        self._pod_counter[role] += 1
        seed = None if self._seed is None else self._seed * 1000 + 500 * (role is Role.CANARY) + index
        pod = _Pod(f"{self.plan.app}-{version.name}-{index}", role, version, seed)
        pod.faults = dict(self._sticky_faults[role]) or None
        self._event("created", pod.name, role.value)
        return pod

    def _terminate(self, pod: _Pod) -> None:
        now = time.monotonic()
        alive = pod.process is not None and pod.process.poll() is None
        was_ready = pod.ready
        pod.phase, pod.ready = PodPhase.TERMINATING, False
        if not alive:
            self._remove(pod, "deleted before it ran")
            return
        if self.endpoint_lag_s <= 0:
            self._unroute(pod)
        else:
            pod.unroute_at = now + self.endpoint_lag_s
        self._signal(pod, signal.SIGTERM)
        if pod.paused:
            self._resume(pod)
        pod.kill_at = now + self.termination_grace_s
        self._event("deleted", pod.name, f"SIGTERM (was {'ready' if was_ready else 'not ready'})")
        self._notify()

    def _remove(self, pod: _Pod, why: str) -> None:
        self._unroute(pod)
        if pod.slot is not None:
            self._free_slots[pod.role].append(pod.slot)
            self._free_slots[pod.role].sort()
            pod.slot = None
        if pod in self._pods:
            self._pods.remove(pod)
        self._event("gone", pod.name, why)
        self._notify()

    # ----------------------------------------------------------------- internals: router

    def _server(self, pod: _Pod) -> tuple[str, str]:
        return self.layout.backend_of(pod.role.value), slot_name(pod.role.value, pod.slot)

    def _unroute(self, pod: _Pod) -> None:
        pod.unroute_at = None
        if pod.slot is None or self._router is None or not (pod.routed or pod.addressed):
            pod.routed = pod.addressed = False
            return
        try:
            self._router.api.set_server_state(*self._server(pod), "maint")
        except RouterError as error:
            log.warning("taking %s out of the router failed: %s", pod.name, error)
        if pod.routed:
            self._event("unrouted", pod.name, "/".join(self._server(pod)))
        pod.routed = pod.addressed = False

    def _address(self, pod: _Pod) -> None:
        self._router.api.set_server_addr(*self._server(pod), pod.port)  # the slot is in maintenance
        pod.addressed = True

    def _route(self, pod: _Pod) -> None:
        self._router.api.set_server_state(*self._server(pod), "ready")
        pod.routed = True
        self._event("routed", pod.name, "/".join(self._server(pod)))

    def _require_routed(self, action: Action) -> None:
        if self.layout.layout is not Layout.ROUTED:
            raise LocalBackendError(f"{action!r} needs a router per version (blue-green, or canary with "
                                    f"trafficRouting: router); this run's {self.spec.strategy.kind.value} "
                                    "sends traffic to every ready pod")

    def _switch(self, key: str, backend: str, target: str | None, frontend: str) -> Callable[[], None] | None:
        """Point a frontend at a backend: one map entry, so the switch is atomic for new
        requests, and requests in flight finish on the servers they were sent to (which
        stay up). Returns the measurement of the delay until the frontend answers from the
        target version (run it without holding the lock), or None."""
        router = self._router
        current = router.api.show_map(router.files.routes_map).get(key)
        at = time.monotonic()
        begun = time.perf_counter()
        router.api.set_map(router.files.routes_map, key, backend)
        command_s = time.perf_counter() - begun
        self._event("router", None, f"{key} -> {backend}")
        if not self.measure_switches or target is None or current == backend:
            return None
        port = router.user_port if frontend == "user" else router.preview_port

        def measure() -> None:
            first, probes = None, 0
            while time.perf_counter() < begun + 0.5:
                probes += 1
                try:
                    version = _version_answering(port)
                except OSError:
                    version = None
                if version == target:
                    first = time.perf_counter() - begun
                    break
            with self._lock:
                self._switches.append(SwitchTiming(f"{key} -> {backend}", target, at, command_s, first, probes))

        return measure

    # ----------------------------------------------------------------- internals: supervisor

    def _start_supervisor(self) -> None:
        if self._supervisor is None:
            self._supervisor = threading.Thread(target=self._supervise, name="local-backend-supervisor", daemon=True)
            self._supervisor.start()

    def _call_in_supervisor(self, fn: Callable[[], Any], timeout_s: float = 30.0) -> Any:
        """Run ``fn`` on the supervisor thread: children must be spawned from the thread
        that lives as long as the backend (PR_SET_PDEATHSIG follows the spawning thread)."""
        future: Future = Future()
        self._calls.append((fn, future))
        self._wake.set()
        return future.result(timeout_s)

    def _spawn(self, args: list[str], **kwargs: Any) -> subprocess.Popen:
        if threading.current_thread() is not self._supervisor:
            raise LocalBackendError("processes are spawned on the supervisor thread only")
        return subprocess.Popen(args, preexec_fn=_die_with_parent(os.getpid()), start_new_session=True,
                                close_fds=True, **kwargs)

    def _supervise(self) -> None:
        while not self._stopping.is_set():
            while self._calls:
                fn, future = self._calls.popleft()
                try:
                    future.set_result(fn())
                except BaseException as error:  # noqa: BLE001 - handed to the caller
                    future.set_exception(error)
            try:
                with self._lock:
                    if not self._closed and self.plan is not None:
                        self._tick(time.monotonic())
            except Exception as error:  # noqa: BLE001 - a supervisor that dies would orphan nothing but stop healing
                self.supervisor_error = error
                log.exception("local backend supervisor")
                self._event("error", None, repr(error))
            self._wake.wait(self._tick_s)
            self._wake.clear()

    def _tick(self, now: float) -> None:
        router = self._router
        if router is not None and not router.running and not self._closed:
            self._event("error", None, "HAProxy exited; restarting it")
            self._restart_router()
        for pod in list(self._pods):
            self._tick_pod(pod, now)

    def _restart_router(self) -> None:
        self._start_router()
        for pod in self._pods:
            pod.addressed = pod.routed = False
            if pod.phase is PodPhase.RUNNING and pod.port is not None:
                self._address(pod)
                if pod.ready:
                    self._route(pod)

    def _tick_pod(self, pod: _Pod, now: float) -> None:
        if pod.phase is PodPhase.PENDING:
            free = self._free_slots[pod.role]
            if not free:
                return
            pod.slot = free.pop(0)
            self._start_container(pod, now)
            return
        process = pod.process
        if process is not None and process.poll() is not None:
            self._exited(pod, process.returncode, now)
            return
        if pod.phase is PodPhase.BACKOFF:
            if pod.unroute_at is not None and now >= pod.unroute_at:
                self._unroute(pod)
            if now >= pod.backoff_until:
                self._start_container(pod, now)
            return
        if pod.phase is PodPhase.TERMINATING:
            if pod.unroute_at is not None and now >= pod.unroute_at:
                self._unroute(pod)
            if not pod.killed and now >= pod.kill_at:
                pod.killed = True
                self._signal(pod, signal.SIGKILL)
                self._event("killed", pod.name, f"grace period {self.termination_grace_s:g}s over: SIGKILL")
            return
        if pod.paused and pod.resume_at is not None and now >= pod.resume_at:
            self._resume(pod)
        if pod.port is None:
            pod.port = _listening_port(pod.log_path)
        if pod.port is None:
            return
        if not pod.addressed:
            self._address(pod)
        self._tick_probe(pod, now)

    def _tick_probe(self, pod: _Pod, now: float) -> None:
        if pod.probe is not None:
            if not pod.probe.done():
                return
            future, pod.probe = pod.probe, None
            if future.cancelled():
                return
            result: _ProbeResult = future.result()
            if result.fault_error is not None:
                self._event("fault", pod.name, result.fault_error)
            if result.answered and pod.faults is not None and result.fault_error is None:
                pod.faults = None
            self._judge(pod, result.ready, now)
        if now >= pod.next_probe_at:
            pod.next_probe_at = now + self.probe.period_s
            faults = pod.faults
            pod.probe = self._probes.submit(_probe, pod.port, self.probe, faults)

    def _judge(self, pod: _Pod, passed: bool, now: float) -> None:
        if passed:
            pod.successes, pod.failures = pod.successes + 1, 0
        else:
            pod.successes, pod.failures = 0, pod.failures + 1
        if not pod.ready and passed and pod.successes >= self.probe.success_threshold:
            pod.ready = True
            if not pod.ever_ready:
                pod.ever_ready = True
                self._pod_starts.append(PodStart(pod.name, pod.role, pod.version.name, pod.container,
                                                 pod.started_at, now))
                self._event("ready", pod.name, f"{now - pod.started_at:.3f}s after start")
                self._route(pod)  # from now on HAProxy's check decides
            else:
                self._event("ready", pod.name, "again")
            self._notify()
        elif pod.ready and not passed and pod.failures >= self.probe.failure_threshold:
            pod.ready = False
            self._event("unready", pod.name, f"{pod.failures} failed probes")
            self._notify()

    def _start_container(self, pod: _Pod, now: float) -> None:
        if pod.unroute_at is not None:
            self._unroute(pod)  # the slot is re-addressed from maintenance only
        pod.container += 1
        pod.log_path = self.run_dir / "pods" / f"{pod.name}.{pod.container}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("DEMO_")}
        env.update(pod.version.env)
        env.update({"DEMO_VERSION": pod.version.name, "DEMO_HOST": "127.0.0.1", "DEMO_PORT": "0",
                    "PYTHONUNBUFFERED": "1"})
        if pod.seed is not None and "DEMO_SEED" not in pod.version.env:
            env["DEMO_SEED"] = str(pod.seed + 100_000 * pod.container)
        with open(pod.log_path, "wb") as out:
            pod.process = self._spawn([self.python, str(self.demo_service)], env=env, stdout=out,
                                      stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        pod.phase = PodPhase.RUNNING
        pod.started_at = now
        pod.port = None
        pod.addressed = pod.routed = pod.ready = pod.ever_ready = pod.killed = pod.paused = False
        pod.resume_at = None
        pod.successes = pod.failures = 0
        pod.next_probe_at = now
        if self._sticky_faults[pod.role]:
            pod.faults = dict(self._sticky_faults[pod.role])
        self._event("started", pod.name, f"container {pod.container}, pid {pod.process.pid}")

    def _exited(self, pod: _Pod, code: int, now: float) -> None:
        if pod.probe is not None:
            pod.probe.cancel()
            pod.probe = None
        was_ready = pod.ready
        pod.ready = False
        pod.process = None  # reaped by poll()
        if pod.phase is PodPhase.TERMINATING:
            self._remove(pod, f"exited {code}")
            return
        if self.endpoint_lag_s > 0 and pod.routed:
            pod.unroute_at = now + self.endpoint_lag_s  # meanwhile HAProxy's check sees it refuse
        else:
            self._unroute(pod)
        ran = now - pod.started_at
        if ran >= self.backoff.reset_s:
            pod.restarts = 0
        pod.restarts += 1
        pod.total_restarts += 1
        delay = self.backoff.delay(pod.restarts)
        pod.phase, pod.backoff_until = PodPhase.BACKOFF, now + delay
        pod.port, pod.paused, pod.resume_at = None, False, None
        self._event("exited", pod.name, f"code {code} after {ran:.2f}s{' (was ready)' if was_ready else ''}; "
                                        f"restart {pod.total_restarts} in {delay:g}s")
        self._notify()

    def _signal(self, pod: _Pod, sig: int) -> None:
        if pod.process is not None and pod.process.poll() is None:
            _send(pod.process, sig)

    def _resume(self, pod: _Pod) -> None:
        self._signal(pod, signal.SIGCONT)
        pod.paused, pod.resume_at = False, None
        self._event("resumed", pod.name, "SIGCONT")

    # ----------------------------------------------------------------- internals: bookkeeping

    def _notify(self) -> None:
        with self._changed:
            self._generation += 1
            self._changed.notify_all()

    def _event(self, kind: str, pod: str | None, detail: str = "") -> None:
        self.events.append(BackendEvent(time.monotonic(), kind, pod, detail))
        if self._log_fn is not None:
            self._log_fn(f"{kind} {pod or ''} {detail}".strip())

    def _load_record(self) -> Record | None:
        try:
            return Record.load((self.state_dir / RECORD_FILE).read_text())
        except FileNotFoundError:
            return None
        except (ValueError, TypeError) as error:
            raise StateError(f"{self.state_dir / RECORD_FILE} is unreadable: {error}") from None

    def _save_record(self) -> None:
        _write_atomically(self.state_dir / RECORD_FILE, self.record.dump())

    def _check_open(self) -> None:
        if self._closed:
            raise LocalBackendError("this local backend was closed; start a new one (same state directory to resume)")

    def _check_ensured(self) -> None:
        self._check_open()
        if self.plan is None:
            raise LocalBackendError("call ensure(plan, spec) first")


# --------------------------------------------------------------------------- small pieces


def parse_commands(text: str, where: os.PathLike | str = COMMANDS_FILE) -> tuple[CommandRequest, ...]:
    """``<id> <command>`` per line (``3 abort``); blank lines and ``#`` comments skipped.
    A malformed line raises, naming the file and line: a command must never be guessed."""
    out = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            out.append(parse_command(line))
        except ValueError as error:
            raise LocalBackendError(f"{where}:{number}: {error}") from None
    return tuple(out)


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _listening_port(path: Path | None) -> int | None:
    if path is None:
        return None
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except FileNotFoundError:
        return None
    match = _LISTENING.search(head)
    return int(match.group(1)) if match else None


def _send(process: subprocess.Popen, sig: int) -> None:
    try:
        process.send_signal(sig)
    except ProcessLookupError:
        pass


def _version_answering(port: int) -> str | None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=0.5)
    try:
        connection.request("GET", "/", headers={"X-Rolloutlab-Probe": "switch"})
        response = connection.getresponse()
        response.read()
        return response.getheader("X-Version")
    except (http.client.HTTPException, ValueError) as error:
        raise OSError(str(error)) from None
    finally:
        connection.close()
