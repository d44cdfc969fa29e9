"""The pods of the local backend: their settings (the readiness ``Probe``, the restart
``Backoff``), what a caller reads about one (``PodInfo``, ``BackendEvent``), the
supervisor's record of one (``LocalPod``), and the small process and HTTP pieces the
supervisor uses (probing, signalling, reading the port a pod listens on, children that
die with their parent). The supervisor itself is ``live.local_kubelet``.
"""

from __future__ import annotations

import http.client
import json
import re
import subprocess
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from rolloutlab.live.baseline import BASELINE
from rolloutlab.live.child_processes import die_with_parent
from rolloutlab.live.haproxy import HealthCheck, RouterLayout, slot_name
from rolloutlab.live.runner import LiveVersion
from rolloutlab.strategies import Role

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


@dataclass(frozen=True)
class Topology:
    """The nodes the local pods are spread over and their zones, as the simulator has them
    (``sim.pods.Cluster``): node n is in zone ``zones[n % len(zones)]``, and a new pod goes
    to the healthy node with the fewest pods (ties: the lowest index). The processes all
    run on this machine; a node is the set of pods a node loss takes together."""

    nodes: int = 1
    zones: tuple[str, ...] = ("local",)

    def __post_init__(self) -> None:
        if self.nodes < 1 or not self.zones or self.nodes < len(self.zones):
            raise ValueError(f"impossible topology {self}: at least one node per zone")

    @classmethod
    def of_service(cls, service: Any) -> "Topology":
        """A scenario service's ``nodes`` and ``zones`` (scenarios.schema.Service)."""
        return cls(service.nodes or len(service.zones), tuple(service.zones))

    def zone_of(self, node: int) -> str:
        return self.zones[node % len(self.zones)]

    def nodes_in_zone(self, zone: str) -> list[int]:
        return [n for n in range(self.nodes) if self.zone_of(n) == zone]


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
    baseline: bool = False  # one of a canary's baseline pods (the old version, apart from the stable's)
    node: int = 0
    lost: bool = False  # on a lost node (``LocalBackend.lose_nodes``)


@dataclass(frozen=True)
class BackendEvent:
    at: float  # time.monotonic()
    kind: str  # started, ready, unready, exited, restarting, deleted, killed, paused, resumed, routed, router...
    pod: str | None
    detail: str = ""


# --------------------------------------------------------------------------- one pod, as the supervisor sees it


@dataclass(eq=False)
class LocalPod:
    name: str
    role: Role
    version: LiveVersion
    seed: int | None
    baseline: bool = False  # a canary's baseline pod: the old version, its own slots and backend
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
    node: int = 0  # the node it runs on (``Topology``): a lost node takes its pods with it
    lost: bool = False  # its node is lost: stopped (SIGSTOP), out of the endpoints, not probed

    @property
    def group(self) -> str:
        """The pods it is scaled with and whose router slots it takes: its role's, or the
        baseline's (``live.baseline``)."""
        return BASELINE if self.baseline else self.role.value

    def info(self, layout: RouterLayout | None) -> PodInfo:
        slot = None if self.slot is None or layout is None else slot_name(self.group, self.slot)
        alive = self.process is not None and self.process.poll() is None
        return PodInfo(self.name, self.role, self.version.name, self.phase, self.ready, self.routed, self.paused,
                       self.process.pid if alive else None, self.port, slot, self.total_restarts, self.baseline,
                       self.node, self.lost)


@dataclass(frozen=True)
class ProbeResult:
    answered: bool  # the process answered HTTP (any status)
    ready: bool
    fault_error: str | None = None


def probe_pod(port: int, probe: Probe, faults: Mapping[str, Any] | None, token: str | None = None) -> ProbeResult:
    """One readiness probe, after POSTing ``faults`` (with the run's fault ``token``) if any."""
    fault_error = None
    if faults:
        try:
            status, body = http_request("POST", port, "/fault", probe.timeout_s * 4, json.dumps(faults).encode(),
                                        token=token)
            if status != 200:
                fault_error = f"POST /fault answered {status}: {body[:200]!r}"
        except OSError as error:
            return ProbeResult(False, False, f"POST /fault failed: {error}")
    try:
        status, _ = http_request("GET", port, probe.path, probe.timeout_s)
    except OSError:
        return ProbeResult(False, False, fault_error)
    return ProbeResult(True, status == 200, fault_error)


def http_request(method: str, port: int, path: str, timeout_s: float, body: bytes | None = None,
                 host: str = "127.0.0.1", token: str | None = None) -> tuple[int, bytes]:
    """One HTTP request to a pod; ``token``: the run's fault token, as ``POST /fault`` needs it."""
    connection = http.client.HTTPConnection(host, port, timeout=timeout_s)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    except (http.client.HTTPException, ValueError) as error:
        raise OSError(str(error)) from None
    finally:
        connection.close()


# --------------------------------------------------------------------------- reading a pod


def listening_port(path: Path | None) -> int | None:
    """The port in a pod's start line (``listening=127.0.0.1:PORT``) from its log, if written yet."""
    if path is None:
        return None
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except FileNotFoundError:
        return None
    match = _LISTENING.search(head)
    return int(match.group(1)) if match else None


def send_signal(process: subprocess.Popen, sig: int) -> None:
    try:
        process.send_signal(sig)
    except ProcessLookupError:
        pass


def version_answering(port: int) -> str | None:
    """The ``X-Version`` of one answer through a router port (a switch's measurement)."""
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


__all__ = ["BackendEvent", "Backoff", "LocalPod", "PodInfo", "PodPhase", "Probe", "ProbeResult", "Topology",
           "die_with_parent",
           "http_request", "listening_port", "probe_pod", "send_signal", "version_answering"]
