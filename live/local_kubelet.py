"""The local backend's ReplicaSet and kubelet: pods created and deleted to a wanted scale,
each pod's process started, probed, restarted with a backoff and stopped with a grace
period, all from one long-lived supervisor thread; what callers read about the pods
(``pods``, ``calibration``, waiting until they serve); and the chaos done to pods (kill,
pause, faults).

``PodSupervisor`` is a part of ``live.local.LocalBackend`` kept in its own file (a mixin):
it reads and changes the backend's pods (``_pods``, ``_free_slots``) under the backend's
lock, and calls back into the backend for the router (``_address``, ``_route``,
``_unroute``, ``_start_router``) and its bookkeeping (``_event``, ``_notify``).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import Any

from rolloutlab.errors import LocalBackendError
from rolloutlab.live.baseline import BASELINE
from rolloutlab.live.calibration import Calibration, PodStart
from rolloutlab.live.local_pods import (
    LocalPod,
    PodInfo,
    PodPhase,
    ProbeResult,
    die_with_parent,
    http_request,
    listening_port,
    probe_pod,
    send_signal,
)
from rolloutlab.strategies import Role

log = logging.getLogger("rolloutlab.live.local")


class PodSupervisor:
    """Pods to a wanted scale and their processes' lives (see the module docstring)."""

    # ----------------------------------------------------------------- what callers read

    def pods(self, role: Role | None = None) -> list[PodInfo]:
        """Every pod (a canary's baseline pods included, ``PodInfo.baseline``), or one
        role's own pods (never the baseline's, though they run the stable's version)."""
        with self._lock:
            return [p.info(self.layout) for p in self._pods if role is None or (p.role is role and not p.baseline)]

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

    def child_pids(self) -> list[int]:
        """Processes this backend runs now (pods and HAProxy); for tests and cleanup checks."""
        with self._lock:
            procs = [p.process for p in self._pods if p.process is not None]
            if self._router is not None and self._router.process is not None:
                procs.append(self._router.process)
            procs += [d.process for d in self._dependencies.values()]
            return [p.pid for p in procs if p.poll() is None]

    # ----------------------------------------------------------------- chaos

    def kill_pods(self, role: Role | None = None, count: int = 1, sig: int = signal.SIGKILL) -> list[str]:
        """Signal ``count`` running pods (of a version, or any; never a baseline pod, which the
        simulator's faults cannot hit either), ready ones first, chosen at random (seeded): a SIGKILL is a crash; the pod restarts after the backoff as a
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
            targets = [(p.name, p.port) for p in self._pods  # the rollout's own pods, not a baseline's
                       if p.role is role and not p.baseline and p.phase is PodPhase.RUNNING and p.port is not None]
        body = json.dumps(settings).encode()
        out = {}
        for name, port in targets:
            try:
                status, text = http_request("POST", port, "/fault", 1.0, body, token=self.fault_token)
            except OSError:
                out[name] = False
                continue
            if status in (400, 401, 403):
                raise LocalBackendError(f"pod {name} refused the fault {settings} ({status}): "
                                        f"{text.decode(errors='replace')}")
            out[name] = status == 200
        with self._lock:
            for pod in self._pods:  # those that could not take it now get it before their next probe
                if pod.name in out and not out[pod.name]:
                    pod.faults = dict(self._sticky_faults[role])
            self._event("fault", None, f"{role.value}: {settings} -> {out}")
        return out

    def _pick(self, role: Role | None, count: int, exclude_paused: bool = False) -> list[LocalPod]:
        candidates = [p for p in self._pods if p.phase is PodPhase.RUNNING and p.process is not None
                      and p.process.poll() is None and (role is None or p.role is role)
                      and not p.baseline and not p.lost and not (exclude_paused and p.paused)]
        self._rng.shuffle(candidates)
        candidates.sort(key=lambda p: not p.ready)  # stable sort: ready ones first, random among them
        return candidates[:max(0, count)]

    # ----------------------------------------------------------------- internals: scale

    def _scale(self, role: Role, replicas: int, baseline: bool = False) -> None:
        """A role's pods (``baseline``: a canary's baseline pods, of the stable's version) to ``replicas``."""
        live = [p for p in self._pods if p.role is role and p.baseline == baseline and p.phase is not PodPhase.TERMINATING]
        for _ in range(replicas - len(live)):
            self._pods.append(self._new_pod(role, baseline))
        if len(live) > replicas:
            # the ReplicaSet's order: pods without a process, then not ready, then newest
            order = sorted(live, key=lambda p: (p.phase is PodPhase.RUNNING, p.ready, -p.started_at, -self._pods.index(p)))
            for pod in order[: len(live) - replicas]:
                self._terminate(pod)
        self._wake.set()

    def _new_pod(self, role: Role, baseline: bool = False) -> LocalPod:
        version = self.plan.version(role)
        group = BASELINE if baseline else role.value
        index = self._pod_counter[group]
        self._pod_counter[group] += 1
        seed = None if self._seed is None else self._seed * 1000 + 500 * (role is Role.CANARY) + 250 * baseline + index
        name = f"{self.plan.app}-{version.name}-{BASELINE}-{index}" if baseline else f"{self.plan.app}-{version.name}-{index}"
        pod = LocalPod(name, role, version, seed, baseline, node=self._place())
        pod.faults = None if baseline else dict(self._sticky_faults[role]) or None
        self._event("created", pod.name, f"{group} on node {pod.node}")
        return pod

    def _terminate(self, pod: LocalPod) -> None:
        now = time.monotonic()
        alive = pod.process is not None and pod.process.poll() is None
        was_ready = pod.ready
        pod.phase, pod.ready = PodPhase.TERMINATING, False
        if not alive:
            self._remove(pod, "deleted before it ran")
            return
        if pod.lost:  # its node is gone: nothing to drain, the pod object goes (sim.pods deletes it too)
            pod.killed = True
            self._signal(pod, signal.SIGKILL)
            self._event("deleted", pod.name, "on a lost node: SIGKILL")
            self._notify()
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

    def _remove(self, pod: LocalPod, why: str) -> None:
        self._unroute(pod)
        if pod.slot is not None:
            self._free_slots[pod.group].append(pod.slot)
            self._free_slots[pod.group].sort()
            pod.slot = None
        if pod in self._pods:
            self._pods.remove(pod)
        self._event("gone", pod.name, why)
        self._notify()

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
        return subprocess.Popen(args, preexec_fn=die_with_parent(os.getpid()), start_new_session=True,
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
        self._watch_share()

    def _restart_router(self) -> None:
        self._start_router()
        for pod in self._pods:
            pod.addressed = pod.routed = False
            if pod.phase is PodPhase.RUNNING and pod.port is not None:
                self._address(pod)
                if pod.ready:
                    self._route(pod)

    def _tick_pod(self, pod: LocalPod, now: float) -> None:
        if pod.lost and pod.phase is not PodPhase.TERMINATING:
            return  # on a lost node: not started, restarted nor probed until the node returns or it is evicted
        if pod.phase is PodPhase.PENDING:
            free = self._free_slots[pod.group]
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
            pod.port = listening_port(pod.log_path)
        if pod.port is None:
            return
        if not pod.addressed:
            self._address(pod)
        self._tick_probe(pod, now)

    def _tick_probe(self, pod: LocalPod, now: float) -> None:
        if pod.probe is not None:
            if not pod.probe.done():
                return
            future, pod.probe = pod.probe, None
            if future.cancelled():
                return
            result: ProbeResult = future.result()
            if result.fault_error is not None:
                self._event("fault", pod.name, result.fault_error)
            if result.answered and pod.faults is not None and result.fault_error is None:
                pod.faults = None
            self._judge(pod, result.ready, now)
        if now >= pod.next_probe_at:
            pod.next_probe_at = now + self.probe.period_s
            faults = pod.faults
            pod.probe = self._probes.submit(probe_pod, pod.port, self.probe, faults, self.fault_token)

    def _judge(self, pod: LocalPod, passed: bool, now: float) -> None:
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
                if not pod.routed:  # back from a lost node: its endpoint returns
                    self._route(pod)
            self._notify()
        elif pod.ready and not passed and pod.failures >= self.probe.failure_threshold:
            pod.ready = False
            self._event("unready", pod.name, f"{pod.failures} failed probes")
            self._notify()

    def _start_container(self, pod: LocalPod, now: float) -> None:
        if pod.unroute_at is not None:
            self._unroute(pod)  # the slot is re-addressed from maintenance only
        pod.container += 1
        pod.log_path = self.run_dir / "pods" / f"{pod.name}.{pod.container}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("DEMO_")}
        env.update(pod.version.env)
        env.update({"DEMO_VERSION": pod.version.name, "DEMO_HOST": "127.0.0.1", "DEMO_PORT": "0",
                    "PYTHONUNBUFFERED": "1", "DEMO_FAULT_TOKEN": self.fault_token})
        env.update(self.dependency_env())  # the services it calls (``live.local_dependencies``)
        if "DEMO_FLAG_KEY" in pod.version.env and getattr(self, "flag_file", None) is not None:
            env["DEMO_FLAG_FILE"] = str(self.flag_file)  # only a version with the flagged path reads it
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
        if self._sticky_faults[pod.role] and not pod.baseline:
            pod.faults = dict(self._sticky_faults[pod.role])
        self._event("started", pod.name, f"container {pod.container}, pid {pod.process.pid}")

    def _exited(self, pod: LocalPod, code: int, now: float) -> None:
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

    def _signal(self, pod: LocalPod, sig: int) -> None:
        if pod.process is not None and pod.process.poll() is None:
            send_signal(pod.process, sig)

    def _resume(self, pod: LocalPod) -> None:
        self._signal(pod, signal.SIGCONT)
        pod.paused, pod.resume_at = False, None
        self._event("resumed", pod.name, "SIGCONT")


__all__ = ["PodSupervisor"]
