"""The local live backend: each pod a real process of ``demo_service.py`` on 127.0.0.1,
HAProxy in front as the traffic router. ``live.runner.Backend`` with source ``live-local``.

What plays Kubernetes' part here:

    ReplicaSet        ``ScaleVersion`` sets a version's wanted pods; missing pods are
                      created, extra ones deleted (not ready before ready, newest first).
                      A terminating pod no longer counts in ``replicas``.
                      A canary's baseline deployment (``live.baseline``) is a third set,
                      of the stable's version, with its own pod names and router slots,
                      which ``follow`` keeps beside the canary while the rollout runs.
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
    objects           (scale per version, canary weight, active/preview, stable version,
                      the managed routes in force).
    a mirroring       nginx (``live.nginx``) in front of HAProxy when the canary may
    ingress           mirror (a ``setMirrorRoute`` step): users enter through it, it
                      copies each request to HAProxy's fe_shadow. Header and mirror
                      routes live in HAProxy's maps (``live.haproxy_routes``).

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
weight, active/preview and managed routes. Users see the restart as a short outage; the
runner then continues from its persisted status.

Where things are: this module holds ``LocalBackend`` (the ``Backend`` protocol, closing);
``live.local_router`` its traffic path (HAProxy, nginx, server slots, switches, routes);
``live.local_kubelet`` the ReplicaSet and kubelet part (pods, processes, chaos);
``live.local_pods`` a pod's settings and small process pieces; ``live.local_chaos`` nodes,
zones, whole-service faults and the full-load defect; ``live.local_dependencies`` the
services the release calls (each a demo process of its own); ``live.local_state`` the
state directory's files; ``live.calibration`` what the backend measures. The public names
of all of them are importable from here.

Nothing is left running: ``close()`` (also ``with LocalBackend(...)``) kills the pods,
HAProxy and nginx and removes the run directory; an ``atexit`` hook closes every backend
still open; and every child is started with ``PR_SET_PDEATHSIG`` = SIGKILL from the backend's
long-lived supervisor thread, so the kernel kills them if the Python process dies without
running any cleanup (SIGKILL, an unhandled SIGTERM).
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from rolloutlab.errors import LocalBackendError, StateError
from rolloutlab.live.baseline import BASELINE, compute_baseline_replicas, compute_baseline_weight, has_baseline
from rolloutlab.live.calibration import Calibration, PodStart, SwitchTiming
from rolloutlab.live.flag_file import FlagFileWriter
from rolloutlab.live.haproxy import HAPROXY, HAProxyProcess, Layout, RouterLayout, RouterSettings
from rolloutlab.live.haproxy_routes import RouteAction, compute_route_table
from rolloutlab.live.local_chaos import NodeChaos
from rolloutlab.live.local_dependencies import DependencyServices
from rolloutlab.live.local_kubelet import PodSupervisor
from rolloutlab.live.local_pods import (
    BackendEvent,
    Backoff,
    LocalPod,
    PodInfo,
    PodPhase,
    Probe,
    Topology,
    send_signal,
)
from rolloutlab.live.local_router import ROUTE_ACTIONS, RouterFront, dump_routes, load_routes, routes_from_status
from rolloutlab.live.local_state import (
    COMMANDS_FILE,
    RECORD_FILE,
    STATE_FILE,
    Record,
    parse_commands,
    record_from_status,
    write_atomically,
)
from rolloutlab.live.nginx import NGINX, MirrorSettings, NginxProcess
from rolloutlab.live.runner import ReleasePlan, RunnerState
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
from rolloutlab.strategies.actions import SetFlagExposure
from rolloutlab.strategies.spec import StrategyKind, TrafficRouting

log = logging.getLogger(__name__)
FLAG_FILE = "flags.json"  # in the state directory: a feature flag's exposure survives the runner

DEMO_SERVICE = Path(__file__).with_name("demo_service.py")



_OPEN: "weakref.WeakSet[LocalBackend]" = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for backend in list(_OPEN):
        try:
            backend.close()
        except Exception:  # noqa: BLE001 - best effort at interpreter exit
            log.exception("closing a local backend at exit failed")


# --------------------------------------------------------------------------- the backend


class LocalBackend(RouterFront, PodSupervisor, NodeChaos, DependencyServices):
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
        nginx: str = NGINX,
        mirror: MirrorSettings | None = None,
        seed: int | None = None,
        measure_switches: bool = True,
        keep_run_dir: bool = False,
        tick_s: float = 0.05,
        log: Callable[[str], None] | None = None,
        topology: Topology = Topology(),
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
        self.nginx_binary = nginx
        self.mirror_settings = mirror or MirrorSettings(timeouts=self.router_settings.timeouts)
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
        self._mirror: NginxProcess | None = None  # nginx, when the canary may mirror
        self._routes: dict[str, RouteAction] = {}  # managed routes in force (recorded with the record)
        self.flag_file: Path | None = None  # feature flag: the flagd file the new version's pods read
        self._flags: FlagFileWriter | None = None
        self._applied_maps: dict[str, list[tuple[str, str]]] = {}  # route maps as HAProxy holds them
        self._pods: list[LocalPod] = []
        self._pod_counter = {Role.STABLE.value: 0, Role.CANARY.value: 0, BASELINE: 0}  # per pod group
        self._free_slots: dict[str, list[int]] = {}  # pod group -> its free router slots
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
        # POST /fault needs it: every process this backend starts gets this one (over any in
        # the plan's env), so only this backend can change their faults
        self.fault_token = secrets.token_urlsafe(24)
        self._init_chaos(topology)  # live.local_chaos
        self._init_dependencies()  # live.local_dependencies
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
                self._scale_all()
                return
            record, routes = self._load_record()
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
                routes = routes_from_status(spec, status)
                self.resumed = status is not None
            else:
                self.resumed = True
            layout = self._layout_for(plan, spec)
            self.plan, self.spec, self.record, self.layout, self._routes = plan, spec, record, layout, routes
            self._open_flag_file(spec)
            self._free_slots = {group: list(range(n)) for group, n in self.layout.slots.items()}
            # the stats socket's path must fit a unix socket address (108 bytes)
            short = "/tmp" if len(tempfile.gettempdir()) > 60 and os.path.isdir("/tmp") else None
            self.run_dir = Path(tempfile.mkdtemp(prefix="rolloutlab-local-", dir=short))
            (self.run_dir / "pods").mkdir()
            self._start_supervisor()
        try:
            self._call_in_supervisor(self._start_router)
        except BaseException:
            with self._lock:  # nothing half-built stays: a later ensure starts afresh
                for process in (self._mirror, self._router):
                    if process is not None:
                        process.stop()
                self._mirror = self._router = None
                self.plan = self.spec = self.record = self.layout = None
                self._routes = {}
                shutil.rmtree(self.run_dir, ignore_errors=True)
                self.run_dir = None
            raise
        with self._lock:
            self._event("router", None, f"users enter at {self.urls()['user']} (HAProxy {self._router.ports}), "
                                        f"layout {self.layout.layout.value}, routes {sorted(self._routes)}")
            if self.resumed:
                self._event("resume", None, f"restarting pods: {record.desired}")
            self._scale_all()
            self._save_record()

    @property
    def flag_writes(self) -> tuple:
        """Every rewrite of the flag file by this backend (``live.flag_file.FlagWrite``)."""
        return tuple(self._flags.writes) if self._flags is not None else ()

    def _open_flag_file(self, spec: StrategySpec) -> None:
        """A feature-flag release: the flag file lives in the state directory, so a resumed
        run finds the exposure it left (the file is that state); a first run starts off."""
        ff = spec.strategy.feature_flag
        if ff is None:
            return
        self.flag_file = self.state_dir / FLAG_FILE
        self._flags = FlagFileWriter(self.flag_file, ff.flags, ff.flag_key, ff.on_variant, ff.off_variant)
        if not self.flag_file.exists():
            self._flags.apply(SetFlagExposure(ff.flag_key, 0))

    def _layout_for(self, plan: ReleasePlan, spec: StrategySpec) -> RouterLayout:
        kind = spec.strategy.kind
        routed = kind is StrategyKind.BLUE_GREEN or (
            kind is StrategyKind.CANARY and spec.strategy.canary.traffic_routing is TrafficRouting.ROUTER)
        slots = self.slots_per_version or 3 * plan.replicas + 2
        routes = compute_route_table(spec.strategy.canary) if routed and kind is StrategyKind.CANARY else None
        groups = ("stable", "canary", BASELINE) if has_baseline(spec) else ("stable", "canary")
        return RouterLayout(Layout.ROUTED if routed else Layout.SHARED, {g: slots for g in groups}, routes)

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
                ready = sum(1 for p in self._pods if p.role is role and not p.baseline
                            and p.phase is not PodPhase.TERMINATING and p.ready)
                out.append(VersionObservation(self.record.desired[role.value], ready, ready))
            return out[0], out[1]

    def follow(self, status: RolloutStatus) -> None:
        """After each runner cycle: a canary's baseline deployment follows the canary (the
        rule is ``live.baseline``'s: the canary's desired pods while the rollout runs, the
        same traffic weight taken from the stable), and goes when the rollout ends."""
        if not has_baseline(self.spec):
            return
        with self._lock:
            self._check_ensured()
            wanted = compute_baseline_replicas(status, self.record.desired[Role.CANARY.value])
            if wanted == self.record.desired.get(BASELINE, 0):
                return
            self.record.desired[BASELINE] = wanted
            self._scale(Role.STABLE, wanted, baseline=True)
            self._sync_baseline_weight()
            self._save_record()

    def observe_baseline(self) -> VersionObservation:
        """A canary's baseline pods: wanted and ready (no counters: ``live.baseline.BaselineScrape``)."""
        with self._lock:
            self._check_ensured()
            ready = sum(1 for p in self._pods if p.baseline and p.phase is not PodPhase.TERMINATING and p.ready)
            return VersionObservation(self.record.desired.get(BASELINE, 0), ready, ready)

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
                self._sync_baseline_weight()  # a baseline's weight goes with the canary's
            elif isinstance(action, SwitchActive):
                self._require_routed(action)
                self.record.active = action.role.value
                measure = self._switch("active", f"be_{action.role.value}", self.plan.version(action.role).name, "user")
            elif isinstance(action, SwitchPreview):
                self._require_routed(action)
                self.record.preview = None if action.role is None else action.role.value
                target = None if action.role is None else self.plan.version(action.role).name
                measure = self._switch("preview", self._preview_backend(self.record.preview), target, "preview")
            elif isinstance(action, ROUTE_ACTIONS):
                self._apply_route(action)  # recorded with the record, re-applied on a resume
            elif isinstance(action, SetFlagExposure) and self._flags is not None:
                written = self._flags.apply(action)  # the pods' flagd provider reads it within ~0.5 s
                self._event("flag", None, f"{action.flag_key}: {written.percentage}% + {len(written.match)} cohort(s)")
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
        write_atomically(self.state_dir / STATE_FILE, state)

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
            record = self.record or self._load_record()[0]
            return None if record is None else record.stable_version

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
            mirror, self._mirror = self._mirror, None
        for pod in pods:  # SIGKILL first, all at once; then reap
            if pod.process is not None and pod.process.poll() is None:
                send_signal(pod.process, signal.SIGKILL)
        for pod in pods:
            if pod.process is not None:
                try:
                    pod.process.wait(5)
                except subprocess.TimeoutExpired:
                    log.error("pod %s (pid %s) did not die after SIGKILL", pod.name, pod.process.pid)
        for process in (mirror, router):
            if process is not None:
                process.stop()
        self._cancel_timers()
        self._stop_dependencies()
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

    # ----------------------------------------------------------------- internals: bookkeeping

    def _scale_all(self) -> None:
        """Every pod group to the recorded scale (a canary's baseline as the record holds it)."""
        for role in Role:
            self._scale(role, self.record.desired[role.value])
        if has_baseline(self.spec):
            self._scale(Role.STABLE, self.record.desired.get(BASELINE, 0), baseline=True)

    def _baseline_weight(self) -> int:
        """The baseline's weight the record implies (0 without a baseline pod wanted)."""
        return compute_baseline_weight(self.record.canary_weight, self.record.desired.get(BASELINE, 0))

    def _sync_baseline_weight(self) -> None:
        """Put the baseline's weight the record implies into HAProxy (a router per version only)."""
        if not has_baseline(self.spec) or self.layout.layout is not Layout.ROUTED:
            return
        weight = self._baseline_weight()
        self._router.api.set_map(self._router.files.weights_map, BASELINE, weight)
        self._event("router", None, f"baseline: {self.record.desired.get(BASELINE, 0)} pod(s), weight {weight}")

    def _notify(self) -> None:
        with self._changed:
            self._generation += 1
            self._changed.notify_all()

    def _event(self, kind: str, pod: str | None, detail: str = "") -> None:
        self.events.append(BackendEvent(time.monotonic(), kind, pod, detail))
        if self._log_fn is not None:
            self._log_fn(f"{kind} {pod or ''} {detail}".strip())

    def _load_record(self) -> tuple[Record | None, dict[str, RouteAction]]:
        """The record and the managed routes in force it holds (none: ``(None, {})``)."""
        try:
            data = json.loads((self.state_dir / RECORD_FILE).read_text())
            routes = load_routes(data.pop("routes", {}))
            return Record.load(json.dumps(data)), routes
        except FileNotFoundError:
            return None, {}
        except (ValueError, TypeError, KeyError) as error:
            raise StateError(f"{self.state_dir / RECORD_FILE} is unreadable: {error}") from None

    def _save_record(self) -> None:
        # the routes ride in the record's file beside the weight they share a router with
        data = {**json.loads(self.record.dump()), "routes": dump_routes(self._routes)}
        write_atomically(self.state_dir / RECORD_FILE, json.dumps(data, indent=1, sort_keys=True))

    def _check_open(self) -> None:
        if self._closed:
            raise LocalBackendError("this local backend was closed; start a new one (same state directory to resume)")

    def _check_ensured(self) -> None:
        self._check_open()
        if self.plan is None:
            raise LocalBackendError("call ensure(plan, spec) first")


__all__ = ["BackendEvent", "Backoff", "Calibration", "DEMO_SERVICE", "LocalBackend", "PodInfo", "PodPhase", "PodStart",
           "Probe", "Record", "SwitchTiming", "Topology", "parse_commands", "record_from_status"]
