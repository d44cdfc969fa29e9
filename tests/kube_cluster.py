"""A real Kubernetes cluster for tests: the one ``scripts/kube-cluster.sh`` starts from
Debian parts (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, and per node
a kubelet with its own containerd + runc and CNI bridge; one kube-proxy in iptables mode).
Pods are real containers running the demo service; traffic reaches them through NodePorts
on 127.0.0.1.

``.ci/run`` starts the cluster before the tests and stops it after; a developer's run
starts it on first use (it needs root) and stops it at the end of the session. Tests
share it and isolate themselves by namespace.

The script runs several clusters side by side, one per region (``--cluster N``; cluster 1
is the default one, cluster N >= 2 runs in a network namespace of its own and the host
reaches its API server and NodePorts at 127.0.0.N). The functions below take the cluster's
number; without one they mean the script's default (``ROLLOUTLAB_KUBE_CLUSTER``, else 1).

Who the tests are: the runner's ServiceAccount of ``live/rbac.yaml`` (the script applies it
and writes a token for it), with the API server's RBAC authorizer on, so every call a test
makes through ``api_client()`` (the backend's included) is allowed only by the shipped rules
plus, for reads only, the test cluster's ``rolloutlab-test-reader`` role (endpoints, events,
nodes, ...: what tests read to check the runner's work). ``admin_client()`` (system:masters)
is for writes a platform team does and the runner never does (bare pods, CRDs, POSTs to
pods); a test using it says so. docs/security.md has the whole account.
"""

from __future__ import annotations

import os
import ssl
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client

ROOT = Path(__file__).resolve().parents[1]
CLUSTER_SCRIPT = ROOT / "scripts" / "kube-cluster.sh"
BUILD_SCRIPT = ROOT / "scripts" / "kube-control-plane.sh"
REQUIRE_KUBE = os.environ.get("ROLLOUTLAB_REQUIRE_KUBE") == "1"


@dataclass
class NodeCluster:
    """The running cluster, as its env file describes it (``scripts/kube-cluster.sh env``)."""

    env: dict[str, str]
    started_here: bool
    cluster: int | None = None  # the script's --cluster; None: its default

    @property
    def api_url(self) -> str:
        return self.env["API_URL"]

    @property
    def ca_file(self) -> Path:
        return Path(self.env["CA_FILE"])

    @property
    def kubeconfig(self) -> Path:
        return Path(self.env["KUBECONFIG"])

    @property
    def nodes(self) -> list[str]:
        return self.env["NODES"].split()

    @property
    def node_port_address(self) -> str:
        """Where the host reaches this cluster's NodePorts (127.0.0.N for cluster N)."""
        return self.env.get("NODE_PORT_ADDRESS", "127.0.0.1")

    def api_client(self, url: str | None = None) -> client.ApiClient:
        """A client as the runner's ServiceAccount (only live/rbac.yaml's rules)."""
        return self._client(self._env_value("TOKEN"), url)

    def admin_client(self, url: str | None = None) -> client.ApiClient:
        """A client as the cluster's admin (system:masters): setup the runner never does."""
        return self._client(self._env_value("ADMIN_TOKEN"), url)

    def _env_value(self, key: str) -> str:
        if key not in self.env:
            raise RuntimeError(f"the cluster's env file has no {key}: it was started by an older "
                               "scripts/kube-cluster.sh; run scripts/kube-cluster.sh up again")
        return self.env[key]

    def _client(self, token: str, url: str | None) -> client.ApiClient:
        configuration = client.Configuration()
        configuration.host = url or self.api_url
        configuration.api_key = {"authorization": f"Bearer {token}"}
        configuration.ssl_ca_cert = str(self.ca_file)
        return client.ApiClient(configuration)

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def stop(self) -> None:
        if self.started_here:
            down = _script("down", timeout=300, cluster=self.cluster)
            if down.returncode != 0:
                raise RuntimeError(f"scripts/kube-cluster.sh down failed:\n{down.stderr[-3000:]}")


def settle(check, timeout: float = 20.0, step: float = 0.1) -> bool:
    """Wait for an eventually-true condition about the cluster (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(step)
    return check()


def run_demo_session(backend, node_port: int, strategy: str, release: str, metrics: str, *, time_scale: float,
                     max_wall_s: float):
    """One ``rolloutlab live --backend kube`` session of the standard scenario (3 replicas,
    50 rps) on ``backend``, users and preview reached on the NodePorts at 127.0.0.1; the
    real-pods tests and the opt-in kind tests run the same one.

    Two changes to ``standard`` make the outcome a property of the strategy rather than of
    luck. Its preview traffic (1% of the users' rate) is a quarter of it here: capped at
    50 rps and run at 30x, 1% left about half a request per 30 s analysis window, so a
    blue-green pre-promotion analysis of empty windows ended inconclusive (stuck) in CI. And
    the bad release fails 30% of requests, not 5%: with about 10 preview requests per window
    a 5% defect passes a window more often than not (0.95^10 = 0.6), and whether two of four
    windows fail was a coin toss; at 30% a window passes with chance 0.7^10 = 0.03."""
    from rolloutlab.live.session import make_plan, run_live
    from rolloutlab.scenarios.schema import bundled_scenario, load_scenario
    from rolloutlab.strategies import load_strategy

    scenario = load_scenario(bundled_scenario("standard"))
    defect = scenario.release.defects[0].model_copy(update={"error_rate": 0.3})
    scenario = scenario.model_copy(update={
        "traffic": scenario.traffic.model_copy(update={"preview_rps": scenario.traffic.rps / 4}),
        "release": scenario.release.model_copy(update={"defects": [defect, *scenario.release.defects[1:]]}),
    })
    spec = load_strategy(strategy).with_replicas(3)
    plan = make_plan(scenario, spec, release=release, seed=1, time_scale=time_scale)
    urls = {"user": f"http://127.0.0.1:{node_port}/", "preview": f"http://127.0.0.1:{node_port + 1}/"}
    return run_live(scenario, spec, backend, plan, time_scale=time_scale, seed=1, max_rps=50, max_wall_s=max_wall_s,
                    metrics=metrics, urls=urls)


def _script(*args: str, timeout: float, cluster: int | None = None) -> subprocess.CompletedProcess:
    chosen = [] if cluster is None else ["--cluster", str(cluster)]
    return subprocess.run([str(CLUSTER_SCRIPT), *args, *chosen], capture_output=True, text=True, timeout=timeout)


def _read_env(cluster: int | None = None) -> dict[str, str]:
    text = _script("env", timeout=30, cluster=cluster).stdout
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line)
    return {key: value.strip('"') for key, value in pairs}


def why_no_cluster(cluster: int | None = None) -> str | None:
    """Why this machine cannot start the cluster, or None when it can (or one is up)."""
    if _script("status", timeout=60, cluster=cluster).returncode == 0:
        return None
    if os.geteuid() != 0:
        return "starting the Kubernetes node needs root (containers, network namespaces, iptables)"
    if subprocess.run([str(BUILD_SCRIPT), "path"], capture_output=True).returncode != 0:
        return "Kubernetes is not built here: run scripts/kube-control-plane.sh build (needs root; .ci/run does it)"
    if subprocess.run(["sh", "-c", "command -v containerd && command -v runc"], capture_output=True).returncode != 0:
        return "containerd and runc are not installed (Debian: apt-get install containerd runc containernetworking-plugins)"
    return None


def start_node_cluster(cluster: int | None = None) -> NodeCluster:
    """The running cluster, started now if it is not up (stopped by ``stop()`` then). A
    running one is brought up to date too (``up`` re-applies live/rbac.yaml, renews the
    runner's token): the tests check the rules as they are in this tree."""
    started = _script("status", timeout=60, cluster=cluster).returncode != 0
    if not started and os.geteuid() != 0:  # up needs root; the running cluster as it is
        return NodeCluster(_read_env(cluster), started_here=False, cluster=cluster)
    up = _script("up", timeout=900, cluster=cluster)
    if up.returncode != 0:
        raise RuntimeError(f"scripts/kube-cluster.sh up failed (exit {up.returncode}):\n{up.stderr[-4000:]}")
    return NodeCluster(_read_env(cluster), started_here=started, cluster=cluster)


def node_cluster_or_skip(cluster: int | None = None) -> NodeCluster:
    """For a session fixture: the cluster; a skip saying why when it cannot start here,
    a failure instead where ROLLOUTLAB_REQUIRE_KUBE=1 (CI)."""
    reason = why_no_cluster(cluster)
    if reason is not None:
        if REQUIRE_KUBE:
            raise RuntimeError(f"ROLLOUTLAB_REQUIRE_KUBE=1 but {reason}")
        pytest.skip(reason)
    return start_node_cluster(cluster)


def region_kubeconfig(regions: dict[int, str], path: Path, *, admin: bool = False) -> Path:
    """One kubeconfig for the running clusters ``regions`` names (cluster number -> region),
    a context per region: what a runner of region waves is given (as each cluster's runner
    ServiceAccount; ``admin``: as each cluster's admin)."""
    numbers = list(regions)
    made = _script("kubeconfig", "--clusters", ",".join(map(str, numbers)),
                   "--contexts", ",".join(regions[n] for n in numbers), "--output", str(path),
                   *(["--admin"] if admin else []), timeout=30)
    if made.returncode != 0:
        raise RuntimeError(f"scripts/kube-cluster.sh kubeconfig failed (exit {made.returncode}):\n{made.stderr[-2000:]}")
    return path


__all__ = ["NodeCluster", "node_cluster_or_skip", "region_kubeconfig", "run_demo_session", "settle", "start_node_cluster",
           "why_no_cluster"]
