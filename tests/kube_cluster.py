"""A real Kubernetes control plane for tests, without a container engine.

etcd (Debian's ``etcd-server``), kube-apiserver and kube-controller-manager (built from
Debian's ``kubernetes`` source package by ``scripts/kube-control-plane.sh``) run as
processes on 127.0.0.1. There is no scheduler and no kubelet: ``FakeKubelet`` plays both
(binds pods to fake nodes, marks them Running and Ready, gives them IPs), the way envtest
and kwok test controllers. Everything else is the real thing: the deployment and
ReplicaSet controllers create and delete pods, the endpoints controller fills Services'
endpoints from ready pods, the garbage collector follows ownerReferences.

The API server serves HTTPS with a self-signed certificate it makes itself (``--cert-dir``)
and accepts one static bearer token (a member of ``system:masters``), the way a kubeconfig
for kind carries a credential; the tests' clients trust that certificate.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from kubernetes import client

ROOT = Path(__file__).resolve().parents[1]
BUILD_SCRIPT = ROOT / "scripts" / "kube-control-plane.sh"
CONTROLLERS = "deployment,replicaset,endpoint,endpointslice,garbagecollector,namespace"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def control_plane_bin() -> Path | None:
    """The cached build, or None when it was never built on this machine."""
    result = subprocess.run([str(BUILD_SCRIPT), "path"], capture_output=True, text=True)
    return Path(result.stdout.strip()) if result.returncode == 0 else None


TOKEN = "rolloutlab-test-token"
KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{{name: test, cluster: {{server: "{server}", certificate-authority: "{ca}"}}}}]
users: [{{name: admin, user: {{token: "{token}"}}}}]
contexts: [{{name: test, context: {{cluster: test, user: admin}}}}]
current-context: test
"""


def _wait_http(url: str, timeout: float, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + timeout
    insecure = ssl.create_default_context()
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE  # only a health probe of our own process before its cert is read
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}; its log:\n{log.read_text()[-3000:]}")
        try:
            request = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})
            with urllib.request.urlopen(request, timeout=1, context=insecure) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} not healthy after {timeout:.0f}s; log:\n{log.read_text()[-3000:]}")


@dataclass
class ControlPlane:
    bin_dir: Path
    workdir: Path
    procs: list[subprocess.Popen] = field(default_factory=list)
    api_url: str = ""
    started_in: float = 0.0
    kubeconfig: Path | None = None

    def start(self) -> "ControlPlane":
        t0 = time.monotonic()
        etcd_port, peer_port, api_port = free_port(), free_port(), free_port()
        self.workdir.mkdir(parents=True, exist_ok=True)
        key = self.workdir / "sa.key"
        subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
        etcd = shutil.which("etcd") or "/usr/bin/etcd"
        self._spawn("etcd", [
            etcd, "--data-dir", str(self.workdir / "etcd"), "--name", "rolloutlab-test",
            "--listen-client-urls", f"http://127.0.0.1:{etcd_port}", "--advertise-client-urls", f"http://127.0.0.1:{etcd_port}",
            "--listen-peer-urls", f"http://127.0.0.1:{peer_port}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer_port}",
            "--initial-cluster", f"rolloutlab-test=http://127.0.0.1:{peer_port}",
            "--unsafe-no-fsync",  # test data: durability is not the point, speed is
        ])
        _wait_http(f"http://127.0.0.1:{etcd_port}/health", 30, self.procs[-1], self.workdir / "etcd.log")
        self.api_url = f"https://127.0.0.1:{api_port}"
        (self.workdir / "tokens.csv").write_text(f"{TOKEN},admin,admin,system:masters\n")
        self._spawn("kube-apiserver", [
            str(self.bin_dir / "kube-apiserver"),
            f"--etcd-servers=http://127.0.0.1:{etcd_port}",
            "--bind-address=127.0.0.1", f"--secure-port={api_port}", f"--cert-dir={self.workdir / 'certs'}",
            f"--token-auth-file={self.workdir / 'tokens.csv'}", "--anonymous-auth=false",
            "--service-cluster-ip-range=10.96.0.0/16", "--authorization-mode=AlwaysAllow",
            f"--service-account-key-file={key}", f"--service-account-signing-key-file={key}",
            "--service-account-issuer=https://kubernetes.default.svc",
            "--disable-admission-plugins=ServiceAccount", "--enable-priority-and-fairness=false",
            "--service-node-port-range=30000-32767", "--watch-cache=true", "--v=0",
        ])
        _wait_http(f"{self.api_url}/readyz", 60, self.procs[-1], self.workdir / "kube-apiserver.log")
        self.kubeconfig = self.workdir / "kubeconfig"
        self.kubeconfig.write_text(KUBECONFIG.format(server=self.api_url, ca=self.ca_file, token=TOKEN))
        self._spawn("kube-controller-manager", [
            str(self.bin_dir / "kube-controller-manager"),
            f"--kubeconfig={self.kubeconfig}", f"--controllers={CONTROLLERS}", "--leader-elect=false",
            "--port=0", "--secure-port=0", "--concurrent-deployment-syncs=5", "--concurrent-replicaset-syncs=5",
            "--use-service-account-credentials=false", "--v=0",
        ])
        self.started_in = time.monotonic() - t0
        return self

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = open(self.workdir / f"{name}.log", "wb")
        self.procs.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))

    @property
    def ca_file(self) -> Path:
        return self.workdir / "certs" / "apiserver.crt"

    def api_client(self, url: str | None = None) -> client.ApiClient:
        configuration = client.Configuration()
        configuration.host = url or self.api_url
        configuration.api_key = {"authorization": f"Bearer {TOKEN}"}
        configuration.ssl_ca_cert = str(self.ca_file)
        return client.ApiClient(configuration)

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=2)  # disposable test data: no need for a graceful shutdown
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        self.procs.clear()

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.procs)


# --------------------------------------------------------------------------- kubelet + scheduler


@dataclass
class FakeKubelet:
    """Plays scheduler and kubelet for every pod of the cluster: binds new pods to a node
    (round robin over ``nodes``), then marks them Running with an IP and Ready once their
    ``DEMO_START_DELAY_S`` passed. Pods whose env says ``DEMO_CRASH_ON_START`` never get
    Ready and show a CrashLoopBackOff with a growing restart count. ``hold`` makes it stop
    marking (a node that stopped reporting)."""

    api: client.ApiClient
    nodes: tuple[str, ...] = ("node-a", "node-b", "node-c")
    period: float = 0.05
    hold: bool = False
    bound: dict = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _next_ip: int = 2

    def start(self) -> "FakeKubelet":
        core = client.CoreV1Api(self.api)
        for name in self.nodes:
            body = {"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name,
                                                          "topology.kubernetes.io/zone": name[-1]}},
                    "status": {"conditions": [{"type": "Ready", "status": "True"}]}}
            try:
                core.create_node(body)
            except client.ApiException as error:
                if error.status != 409:
                    raise
        self._thread = threading.Thread(target=self._loop, name="fake-kubelet", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        core = client.CoreV1Api(self.api)
        turn = 0
        while not self._stop.wait(self.period):
            if self.hold:
                continue
            try:
                pods = core.list_pod_for_all_namespaces().items
            except Exception:  # the API server may be restarting in a test; try again next tick
                continue
            for pod in pods:
                try:
                    turn = self._tend(core, pod, turn)
                except client.ApiException:
                    continue  # conflict or gone: the next tick sees the fresh pod

    def _tend(self, core: client.CoreV1Api, pod, turn: int) -> int:
        name, namespace = pod.metadata.name, pod.metadata.namespace
        if pod.metadata.deletion_timestamp is not None:
            # The kubelet confirms the kill: the pod object goes (grace already counted by the API).
            core.delete_namespaced_pod(name, namespace, grace_period_seconds=0)
            return turn
        if not pod.spec.node_name:
            nodes = [n for n in self.nodes if not self._cordoned(core, n)]
            if not nodes:
                return turn
            node = nodes[turn % len(nodes)]
            body = client.V1Binding(metadata=client.V1ObjectMeta(name=name),
                                    target=client.V1ObjectReference(kind="Node", name=node, api_version="v1"))
            core.create_namespaced_pod_binding(name, namespace, body, _preload_content=False)
            self.bound[(namespace, name)] = time.monotonic()
            return turn + 1
        env = {e.name: e.value for c in pod.spec.containers for e in (c.env or [])}
        since = self.bound.setdefault((namespace, name), time.monotonic())
        crash = env.get("DEMO_CRASH_ON_START", "").lower() in ("1", "true", "yes")
        ready = not crash and time.monotonic() - since >= float(env.get("DEMO_START_DELAY_S", "0") or 0)
        phase = pod.status.phase if pod.status else None
        current = next((c.status for c in (pod.status.conditions or []) if c.type == "Ready"), None) if pod.status else None
        want = "True" if ready else "False"
        if phase == "Running" and current == want and not crash:
            return turn
        restarts = int((time.monotonic() - since) // 1) if crash else 0
        if phase == "Running" and current == want and crash and restarts == self._restarts(pod):
            return turn
        ip = pod.status.pod_ip if pod.status and pod.status.pod_ip else self._ip()
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        state = ({"waiting": {"reason": "CrashLoopBackOff"}} if crash else {"running": {"startedAt": now}})
        status = {"status": {
            "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": "10.0.0.1",
            "conditions": [
                {"type": "PodScheduled", "status": "True"},
                {"type": "Initialized", "status": "True"},
                {"type": "ContainersReady", "status": want},
                {"type": "Ready", "status": want, "lastTransitionTime": now},
            ],
            "containerStatuses": [{"name": c.name, "ready": ready, "restartCount": restarts, "image": c.image,
                                   "imageID": "", "state": state} for c in pod.spec.containers],
        }}
        core.patch_namespaced_pod_status(name, namespace, status)
        return turn

    @staticmethod
    def _restarts(pod) -> int:
        statuses = (pod.status.container_statuses or []) if pod.status else []
        return statuses[0].restart_count if statuses else -1

    def _cordoned(self, core: client.CoreV1Api, node: str) -> bool:
        return bool(core.read_node(node).spec.unschedulable)

    def _ip(self) -> str:
        self._next_ip += 1
        return f"10.244.{self._next_ip // 250}.{self._next_ip % 250 + 1}"


def has_control_plane() -> bool:
    return control_plane_bin() is not None and shutil.which("etcd") is not None and shutil.which("openssl") is not None


def start_control_plane(workdir: Path) -> ControlPlane:
    bin_dir = control_plane_bin()
    if bin_dir is None:
        raise RuntimeError(f"the control plane is not built: run {BUILD_SCRIPT} build")
    return ControlPlane(bin_dir, workdir).start()


__all__ = ["ControlPlane", "FakeKubelet", "free_port", "has_control_plane", "start_control_plane"]


# --------------------------------------------------------------------------- traffic without a data path


@dataclass
class EndpointTraffic:
    """A ``live.runner.MetricsSource`` for a control plane without a data path: no pod
    really serves, so requests are *modelled* — Poisson arrivals at ``rps`` (and
    ``preview_rps`` to the preview Service) split over the ready endpoints that the real
    endpoints controller put into the Services, each failing with its pod's
    ``DEMO_ERROR_RATE``. Routing, readiness and the controller's reaction are real; the
    request counts are a model (the local backend sends real requests)."""

    api: client.ApiClient
    namespace: str
    services: dict[str, float]  # Service name -> requests per second sent to it
    rng: object = None
    clock: object = time.monotonic
    totals: dict = field(default_factory=dict)  # version -> [requests, errors]
    _last: float | None = None

    def __post_init__(self) -> None:
        import numpy as np

        if self.rng is None:
            self.rng = np.random.default_rng(np.random.SeedSequence(0))

    def counters(self):
        from rolloutlab.strategies import Counters

        now = self.clock()
        if self._last is not None:
            self._advance(now - self._last)
        self._last = now
        return {v: Counters(r, e) for v, (r, e) in self.totals.items()}

    def _advance(self, dt: float) -> None:
        core = client.CoreV1Api(self.api)
        pods = {p.metadata.name: p for p in core.list_namespaced_pod(self.namespace).items}
        for service, rps in self.services.items():
            try:
                endpoints = core.read_namespaced_endpoints(service, self.namespace)
            except client.ApiException:
                continue
            names = [a.target_ref.name for s in (endpoints.subsets or []) for a in (s.addresses or []) if a.target_ref]
            serving = [pods[n] for n in names if n in pods]
            if not serving:
                continue
            for pod in serving:
                version = pod.metadata.labels.get("version")
                env = {e.name: e.value for c in pod.spec.containers for e in (c.env or [])}
                p = float(env.get("DEMO_ERROR_RATE", "0") or 0)
                n = int(self.rng.poisson(rps * dt / len(serving)))
                errors = int(self.rng.binomial(n, min(1.0, max(0.0, p))))
                total = self.totals.setdefault(version, [0, 0])
                total[0] += n
                total[1] += errors
