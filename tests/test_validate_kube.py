"""``rolloutlab validate --backend kube``: the simulator's prediction against live runs on a
real Kubernetes cluster (tests/kube_cluster.py: real kubelets, containers, kube-proxy).

The validation runs for real on the bundled standard scenario with a bad canary release at
small settings (60 simulated runs, one live run, 2 replicas, 40 rps through a NodePort on
127.0.0.1, x30 as the local validate tests), in a namespace of its own that is gone
afterwards. The pod watch that times pod starts is checked on real pods too: through a
proxy that cuts its watch streams every 0.3 s, and through a forwarder that leaves it
blind for 3 s while the pods are created. Bad option combinations are refused with exit 2
before anything runs. NodePorts of this module: 30400-30499 (only the validation uses one).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest
from kubernetes import client
from rich.console import Console

from rolloutlab.errors import ValidateError
from rolloutlab.live.kube import KubeBackend, RetryPolicy
from rolloutlab.live.runner import LiveVersion, ReleasePlan
from rolloutlab.scenarios.schema import bundled_scenario, load_scenario
from rolloutlab.strategies import load_strategy
from rolloutlab.workflows.validate import (
    Settings,
    compute_created_to_ready,
    render_validation,
    summary_table,
    validation_json,
)
from rolloutlab.workflows.validate.running import run_validation
from tests.kube_cluster import settle

ROOT = Path(__file__).resolve().parent.parent
NODE_PORT = 30400  # this module's NodePorts: 30400-30499 (cluster-wide)
PREFIX = "validate-kube-t"  # namespaces this module makes


def rolloutlab(*args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rolloutlab.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def namespaces_named(api, prefix: str) -> list[str]:
    return [n.metadata.name for n in client.CoreV1Api(api).list_namespace().items
            if n.metadata.name.startswith(prefix)]


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(("changes", "message"), [
    (dict(context="rolloutlab"), "--context applies only to --backend kube"),
    (dict(node_port=30400, namespace_prefix="x"), "--node-port, --namespace-prefix apply only to --backend kube"),
    (dict(backend="kind"), "--backend must be one of local, kube"),
    (dict(backend="kube", node_port=8080), "--node-port must be a NodePort"),
    (dict(backend="kube", namespace_prefix="Validate_Runs"), "--namespace-prefix must be"),
], ids=["context without kube", "kube options without kube", "unknown backend", "not a NodePort",
        "not a namespace name"])
def test_bad_backend_settings_are_refused(changes, message):
    with pytest.raises(ValidateError, match=message.replace("-", r"\-")):
        Settings(**changes).check()


@pytest.mark.parametrize(("args", "env", "message"), [
    (["--context", "rolloutlab"], {}, "--context applies only to --backend kube"),
    (["--backend", "kube", "--node-port", "32767", "-s", "blue-green"], {}, "at most 32766"),
    (["--backend", "kube"], {"KUBECONFIG": "/nonexistent/kubeconfig"}, "cannot open the cluster from the kubeconfig"),
], ids=["--context on local", "blue-green's preview port past the range", "no kubeconfig"])
def test_bad_combinations_exit_2_before_running_anything(args, env, message, tmp_path):
    result = rolloutlab("validate", "standard", "-s", "canary", "--runs", "40", "--out", str(tmp_path), *args, env=env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "validation.json").exists()


def test_created_to_ready_leaves_out_late_moments():
    """A pod whose creation or readiness was seen just after a blind spot of the watch is not timed (it may have
    been seen as late as the whole spot); a ready that is not the pod's first is not a start."""
    e = SimpleNamespace
    events = [e(at=10.0, kind="created", pod="a", detail=""), e(at=11.0, kind="created", pod="b", detail="late"),
              e(at=12.0, kind="created", pod="c", detail=""), e(at=13.5, kind="ready", pod="a", detail=""),
              e(at=14.0, kind="ready", pod="b", detail=""), e(at=15.0, kind="ready", pod="c", detail="late"),
              e(at=16.0, kind="ready", pod="a", detail="again")]
    assert compute_created_to_ready(events) == [3.5]


# --------------------------------------------------------------------------- the pod watch on real pods


def test_pod_watch_times_real_pods_through_cut_watch_streams(node_cluster):
    """Watch streams cut every 0.3 s: the watch resumes, sees every pod and its readiness, and times a pod only
    from moments it saw live; each timed span agrees with the API's 1 s timestamps (it can only be longer: the
    watch sees readiness when the API server stores it, the condition's timestamp is the kubelet's)."""
    from tests.api_fault_proxy import FaultPlan, FaultProxy

    api = node_cluster.api_client()
    ns = f"{PREFIX}-watch-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": ns}})
    try:
        faults = FaultPlan(every=10**9, watch_cut_s=0.3)  # no write faults: only cut watches
        with FaultProxy(node_cluster.api_url, faults, node_cluster.ssl_context()) as proxy:
            flaky = node_cluster.api_client(proxy.url)
            backend = KubeBackend(api, ns, retry=RetryPolicy(attempts=10, base_s=0.05, cap_s=0.5))
            plan = ReleasePlan(app="watched", release="watched-v2", replicas=3,
                               stable=LiveVersion("v1", {}), canary=LiveVersion("v2", {}), defect="none")
            backend.attach(plan, load_strategy("canary").with_replicas(3))
            watch = KubeBackend(flaky, ns).watch_pods("watched").start()
            try:
                backend.ensure(plan, load_strategy("canary").with_replicas(3))
                assert settle(lambda: sum(p.ready_at is not None for p in watch.pods()) == 3, timeout=90), \
                    watch.summary()
            finally:
                watch.stop()
        assert faults.watches_cut >= 1
        summary = watch.summary()
        assert summary["ended_early"] >= 1 and summary["pods"] == 3 and summary["listed"] == 0, summary
        pods = watch.pods()
        nodes = set(node_cluster.nodes)
        for pod in pods:
            assert pod.node in nodes and (pod.container_id or "").startswith("containerd://"), pod
            if pod.late:
                assert pod.created_to_ready_s is None  # seen after a blind spot: not timed, never guessed
            else:
                assert pod.created_to_ready_s > 0
                assert pod.created_to_ready_s >= pod.api_created_to_ready_s - 1.0, pod
        timed = compute_created_to_ready(watch.seen())
        assert sorted(timed) == sorted(p.created_to_ready_s for p in pods if p.created_to_ready_s is not None)
    finally:
        core.delete_namespace(ns, grace_period_seconds=0)


class PausingForwarder:
    """A TCP forwarder to the API server that can cut every open connection and refuse new
    ones for a while: the pod watch goes blind for that long, as on a real network outage."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.paused = threading.Event()
        self.open: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return  # closed
            if self.paused.is_set():
                conn.close()
                continue
            up = socket.create_connection(self.upstream, timeout=5)
            with self.lock:
                self.open += [conn, up]
            for a, b in ((conn, up), (up, conn)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.close()
                except OSError:
                    pass

    def cut_and_pause(self) -> None:
        self.paused.set()
        with self.lock:
            for s in self.open:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self.open.clear()

    def close(self) -> None:
        self.server.close()
        self.cut_and_pause()


def test_pod_starts_seen_after_a_blind_spot_are_not_timed(node_cluster):
    """The watch's connection is cut and the API server unreachable for 3 s while the pods are created: the
    watch resumes, still sees every pod turn ready, and marks the moments replayed after the blind spot late,
    so no pod is timed from them (their creation was seen up to 3 s after it happened)."""
    api = node_cluster.api_client()
    ns = f"{PREFIX}-blind-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": ns}})
    url = urlsplit(node_cluster.api_url)
    forwarder = PausingForwarder((url.hostname, url.port))
    try:
        backend = KubeBackend(api, ns, retry=RetryPolicy(attempts=10, base_s=0.05, cap_s=0.5))
        plan = ReleasePlan(app="blind", release="blind-v2", replicas=2,
                           stable=LiveVersion("v1", {}), canary=LiveVersion("v2", {}), defect="none")
        spec = load_strategy("canary").with_replicas(2)
        backend.attach(plan, spec)
        watch = KubeBackend(node_cluster.api_client(f"https://127.0.0.1:{forwarder.port}"), ns).watch_pods(
            "blind").start()
        try:
            forwarder.cut_and_pause()
            backend.ensure(plan, spec)  # the pods are created while the watch is blind
            time.sleep(3.0)
            forwarder.paused.clear()
            assert settle(lambda: sum(p.ready_at is not None for p in watch.pods()) == 2, timeout=90), \
                watch.summary()
        finally:
            watch.stop()
        summary = watch.summary()
        assert summary["pods"] == 2 and summary["max_blind_s"] >= 2.5, summary
        assert summary["late"] >= 1, summary  # replayed after the blind spot: not timed
        pods = watch.pods()
        assert all(p.created_to_ready_s is None for p in pods if p.late)
        assert [e for e in watch.seen() if e.kind == "created" and e.detail == "late"]
        assert len(compute_created_to_ready(watch.seen())) == sum(not p.late for p in pods)
    finally:
        forwarder.close()
        core.delete_namespace(ns, grace_period_seconds=0)


# --------------------------------------------------------------------------- validate on kube, for real


def test_validate_a_bad_canary_release_on_kube(node_cluster):
    """The standard scenario, a bad canary release: simulated, then live on real pods through a NodePort; the
    table has a row per metric, pod start-up is measured on the real containers (every pod of both versions,
    each timed span > 0), what kube cannot measure says so (never 0), and the run's namespace is gone after."""
    api = node_cluster.api_client()
    scenario = load_scenario(bundled_scenario("standard"))
    prefix = f"{PREFIX}-{uuid.uuid4().hex[:4]}"
    settings = Settings(sim_runs=60, live_runs=1, time_scale=30.0, max_rps=40.0, replicas=2, release="bad",
                        backend="kube", node_port=NODE_PORT, namespace_prefix=prefix, max_minutes=5.0)
    validation = run_validation(scenario, load_strategy("canary"), settings, kube_api=api)

    (live,) = validation.live
    assert live.row["source"] == "live-kube" and validation.world.backend == "kube"
    assert validation.world.probe_period_s >= 1  # the pods' own probe, in whole seconds
    columns, rows = summary_table(validation)
    assert columns[:2] == ["metric", "sim median [95% PI]"] and columns[2] == "live 0"
    assert [r[0] for r in rows] == validation.metrics
    assert {"detection_time", "failed_fraction", "outcome", "switch_failures"} <= {r[0] for r in rows}
    assert live.row["defect"] == "error_rate" and live.row["requests"] > 0
    assert live.row["exposed_requests"] > 0  # users reached the new version's pods through kube-proxy

    # pod start-up, measured on real containers by the pod watch
    figures = live.calibration
    pods = figures["pods"]
    nodes = set(node_cluster.nodes)
    assert {p["version"] for p in pods} >= {"v1", "v2"}  # the stable's pods and the canary's
    assert all(p["node"] in nodes and p["container_id"].startswith("containerd://") for p in pods), pods
    timed = [p for p in pods if p["created_to_ready_s"] is not None]
    assert len(timed) >= settings.replicas + 1 and all(p["created_to_ready_s"] > 0 for p in timed), pods
    assert sorted(live.created_to_ready_s) == pytest.approx(
        sorted(p["created_to_ready_s"] * settings.time_scale for p in timed))
    assert all(s > 0 for s in live.created_to_ready_s)

    # what kube cannot measure is said, never shown as 0
    assert live.switch_delays_s is None and live.switch_failures.router is None
    saved = validation_json(validation)
    assert saved["backend"] == "kube" and saved["calibration"]["switch_delay_s"] is None
    assert saved["calibration"]["measured_pod_ready_s"]["n"] == len(timed)
    console = Console(record=True, width=200)
    render_validation(validation, console)
    text = console.export_text()
    assert "live on kube" in text and "live 0" in text and "detection_time" in text
    assert "router switch delay: not measured on kube" in text and "router counters: not measured" in text
    assert "periodSeconds" in text and "HAProxy:" not in text

    # the run's namespace was deleted (the run waits up to a minute for it to be gone)
    assert settle(lambda: not namespaces_named(api, prefix), timeout=90), namespaces_named(api, prefix)
