"""Live runs on a real kind cluster, with real pods and real traffic.

Opt-in: they need a kind cluster made from live/kind-config.yaml (its NodePort 30080 is
mapped to 127.0.0.1:30080) and its context named in ROLLOUTLAB_KIND_CONTEXT, e.g.

    kind create cluster --name rolloutlab --config live/kind-config.yaml
    ROLLOUTLAB_KIND_CONTEXT=kind-rolloutlab pytest tests/test_kind.py

CI has no container engine, so kind cannot run there; the same sessions run in CI on a
cluster of Debian parts with real pods (scripts/kube-cluster.sh; tests/test_kube_backend.py,
test_live_session_on_real_pods).
"""

from __future__ import annotations

import os
import uuid

import pytest

CONTEXT = os.environ.get("ROLLOUTLAB_KIND_CONTEXT")
pytestmark = pytest.mark.skipif(
    not CONTEXT,
    reason="needs a kind cluster: set ROLLOUTLAB_KIND_CONTEXT to its kubeconfig context "
           "(kind create cluster --config live/kind-config.yaml); CI runs these sessions on "
           "the cluster of scripts/kube-cluster.sh instead",
)


@pytest.fixture
def namespace():
    from kubernetes import client, config

    api = config.new_client_from_config(context=CONTEXT)
    name = f"rolloutlab-{uuid.uuid4().hex[:6]}"
    client.CoreV1Api(api).create_namespace({"metadata": {"name": name}})
    yield name
    client.CoreV1Api(api).delete_namespace(name)


@pytest.mark.parametrize("strategy, release, outcome, metrics", [
    ("canary", "bad", "rolled_back", "loadgen"),
    ("canary", "bad", "rolled_back", "scrape"),  # analysis from the pods' /metrics via the API server
    ("canary", "good", "promoted", "loadgen"),
    ("blue-green", "bad", "rolled_back", "loadgen"),
    ("rolling", "good", "promoted", "loadgen"),
])
def test_live_rollout_on_kind(namespace, strategy, release, outcome, metrics):
    from rolloutlab.live.kube import KubeBackend
    from tests.kube_cluster import run_demo_session

    backend = KubeBackend.from_kubeconfig(CONTEXT, namespace, node_port=30080)
    result = run_demo_session(backend, 30080, strategy, release, metrics, time_scale=10.0, max_wall_s=600)
    assert result.row["source"] == "live-kube"
    assert result.row["outcome"] == outcome
    assert result.row["requests"] > 0
