"""A release region by region on two Kubernetes clusters (live.regions): eu-west on cluster 2
(its own network namespace, reached at 127.0.0.2), us-east on cluster 1, each region a
context of one kubeconfig (``scripts/kube-cluster.sh kubeconfig --clusters 1,2 --contexts
us-east,eu-west``). Each region's runner drives its own cluster's Deployments and Services;
the waves' supervisor starts, stops and rolls regions back. Real pods, real traffic through
each cluster's NodePorts, time compressed x60, 40 requests per second over both regions.

``.ci/run`` starts both clusters and sets ROLLOUTLAB_REQUIRE_KUBE=1, so there these fail
rather than skip; a second cluster that cannot be had fails them too (a kubeconfig
without the regions' contexts is an error, never a skip). NodePorts of this module:
30600-30699.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from rolloutlab.live.kube import KubeBackend, RetryPolicy
from rolloutlab.live.kube_objects import scenario_pod_settings
from rolloutlab.live.regions import run_live_waves
from rolloutlab.results.table import read_results
from rolloutlab.scenarios.regions import region_scenario
from rolloutlab.scenarios.schema import Scenario
from rolloutlab.strategies import StrategySpec
from tests.kube_cluster import NodeCluster, node_cluster_or_skip, region_kubeconfig, settle

CLUSTERS = {1: "us-east", 2: "eu-west"}  # cluster number -> the region it stands for
WAVES = ("eu-west", "us-east")  # the order they roll out in
SCALE = 60.0  # a 1-minute pause takes a wall second
RPS = 40.0  # over both regions: 16 to eu-west, 24 to us-east
_ports = itertools.count(30600, 4)  # region k's entry is BASE + 2k (preview +1): four ports per run


SCENARIO = {
    "name": "two-regions-kube", "duration": "30m",
    "services": [{"name": "web", "replicas": 2, "capacity_rps": 200, "baseline_error_rate": 0.0,
                  "latency": {"median_ms": 5, "p99_ms": 50},
                  "pod_timing": {"schedule_delay": 0, "start_delay": 5, "readiness": {"period": 5}}}],
    "regions": [{"name": "eu-west", "traffic_share": 0.4, "replicas": 2},
                {"name": "us-east", "traffic_share": 0.6, "replicas": 2}],
    "traffic": {"rps": 1000, "users": 40},
    "release": {"defect_probability": 1.0, "defects": [{"kind": "error_rate", "error_rate": 0.5}]},
    "monitoring": {"alerts": []},
}


def strategy(bake: str) -> dict:
    """A canary per region (half the pods, a minute, judged every 30 s); eu-west first."""
    return {
        "name": "canary-two-clusters",
        "progressDeadlineSeconds": "10m",
        "analysisTemplates": [{"name": "error-rate", "metrics": [{
            "name": "error-rate", "signal": "errorRate", "interval": "30s", "successCondition": "result < 0.1",
            "failureLimit": 0, "consecutiveErrorLimit": 4}]}],
        "strategy": {"canary": {
            "scaleDownDelaySeconds": 30, "abortScaleDownDelaySeconds": 30,
            "analysis": {"templates": [{"templateName": "error-rate"}], "startingStep": 1},
            "steps": [{"setWeight": 50}, {"pause": {"duration": "1m"}}]}},
        "waves": {"stopTheLine": True, "steps": [{"regions": ["eu-west"], "bakeTime": bake},
                                                 {"regions": ["us-east"]}]},
    }


class Interrupted(Exception):
    """Ends a supervisor from its ``on_cycle``, as a Ctrl-C or a killed process would."""


@pytest.fixture(scope="module")
def clusters(node_cluster) -> dict[int, NodeCluster]:
    """Cluster 1 (the session's) and cluster 2 (started here if it is not up, and stopped
    at the end of the module then)."""
    second = node_cluster_or_skip(2)
    try:
        yield {1: node_cluster, 2: second}
    finally:
        second.stop()


@pytest.fixture(scope="module")
def kubeconfig(clusters, tmp_path_factory) -> Path:
    """One kubeconfig, a context per region; it must hold both (a failure otherwise)."""
    path = region_kubeconfig(CLUSTERS, tmp_path_factory.mktemp("regions") / "kubeconfig")
    contexts = {c["name"] for c in config.list_kube_config_contexts(str(path))[0]}
    assert set(CLUSTERS.values()) <= contexts, f"{path} has contexts {sorted(contexts)}, not one per region"
    return path


@dataclass
class Region:
    """One region's cluster as this test sees it: its API client, its namespace, its address."""

    name: str
    cluster: NodeCluster
    api: client.ApiClient
    ns: str

    @property
    def address(self) -> str:
        return self.cluster.node_port_address

    def deployments(self) -> dict[str, int]:
        """The app's Deployments and their wanted replicas."""
        items = client.AppsV1Api(self.api).list_namespaced_deployment(self.ns).items
        return {d.metadata.name: d.spec.replicas or 0 for d in items}

    def endpoint_versions(self) -> set[str]:
        core = client.CoreV1Api(self.api)
        endpoints = core.read_namespaced_endpoints("demo", self.ns)
        pods = {p.metadata.name: p for p in core.list_namespaced_pod(self.ns).items}
        names = [a.target_ref.name for s in (endpoints.subsets or []) for a in (s.addresses or [])]
        return {pods[n].metadata.labels["version"] for n in names if n in pods}

    def node_ports_taken(self) -> set[int]:
        services = client.CoreV1Api(self.api).list_service_for_all_namespaces().items
        return {p.node_port for s in services for p in (s.spec.ports or []) if p.node_port}


@pytest.fixture
def regions(clusters, kubeconfig):
    """Both regions, through their contexts, each with a fresh namespace of the same name."""
    ns = f"waves-{uuid.uuid4().hex[:6]}"
    made = {}
    try:
        for number, name in CLUSTERS.items():
            api = config.new_client_from_config(str(kubeconfig), context=name)
            client.CoreV1Api(api).create_namespace({"metadata": {"name": ns}})
            made[name] = Region(name, clusters[number], api, ns)
        yield made
    finally:
        for region in made.values():
            try:
                client.CoreV1Api(region.api).delete_namespace(ns, grace_period_seconds=0)
            except ApiException as error:
                if error.status != 404:
                    raise


def free_base_port(regions: dict[str, Region]) -> int:
    """A base NodePort whose four ports (two regions, entry + preview) are free in both clusters."""
    taken = set().union(*(r.node_ports_taken() for r in regions.values()))
    port = next(_ports)
    while set(range(port, port + 4)) & taken:
        port = next(_ports)
    return port


def test_a_good_release_goes_out_cluster_by_cluster_in_wave_order(regions, kubeconfig, tmp_path):
    """``rolloutlab live --backend kube`` with a kubeconfig whose contexts are the regions:
    eu-west's cluster is promoted first, us-east's starts only after eu-west baked, and each
    cluster ends with the new version alone; one row for both regions."""
    port = free_base_port(regions)
    (tmp_path / "scenario.yaml").write_text(yaml.safe_dump(SCENARIO))
    (tmp_path / "strategy.yaml").write_text(yaml.safe_dump(strategy(bake="30s")))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "rolloutlab.cli", "live", str(tmp_path / "scenario.yaml"),
               "-s", str(tmp_path / "strategy.yaml"), "--backend", "kube", "--namespace", regions["us-east"].ns,
               "--node-port", str(port), "--time-scale", f"{SCALE:g}", "--max-rps", f"{RPS:g}", "--release", "good",
               "--max-minutes", "5", "--out", str(out), "--no-report"]
    run = subprocess.run(command, env={**os.environ, "KUBECONFIG": str(kubeconfig)}, capture_output=True,
                         text=True, timeout=420)
    assert run.returncode == 0, run.stderr[-4000:]
    row = read_results(out / "results.csv").iloc[0]
    assert (row["source"], row["outcome"], row["regions_reached"]) == ("live-kube", "promoted", 2), run.stderr[-3000:]
    timeline = json.loads((out / "timelines.json").read_text())[0]
    waves = timeline["waves"]
    assert waves["started"] == list(WAVES) and waves["completed"]
    promoted = {name: min(p["at"] for p in points if any(e["reason"] == "Promoted" for e in p["events"]))
                for name, points in timeline["regions"].items()}
    assert waves["wave_started_at"][1] >= promoted["eu-west"] + 30.0
    assert promoted["us-east"] > waves["wave_started_at"][1]
    for region in regions.values():  # each cluster: the new version alone, the old one's Deployment gone
        assert settle(lambda r=region: r.deployments() == {"demo-v2": 2}, timeout=60), region.deployments()
        assert settle(lambda r=region: r.endpoint_versions() == {"v2"}, timeout=30)


def test_a_promoted_cluster_gets_its_old_version_back_when_the_line_stops(regions, tmp_path):
    """Interrupted while eu-west bakes (promoted, its old Deployment already removed), the
    waves are rolled back: eu-west's cluster gets the old version's Deployment again, its
    pods ready before traffic returns to them, the new version scaled to 0; us-east's
    cluster never ran the new version."""
    port = free_base_port(regions)
    scenario = Scenario.model_validate(SCENARIO)
    spec = StrategySpec.model_validate(strategy(bake="5m"))  # long enough to see the old Deployment go
    urls = {r.name: {"user": f"http://{regions[r.name].address}:{port + 2 * k}/", "preview": None}
            for k, r in enumerate(scenario.regions)}
    eu = regions["eu-west"]

    def backends() -> dict[str, KubeBackend]:  # a restarted runner's: nothing remembered in between
        out = {}
        for k, region in enumerate(scenario.regions):
            here = regions[region.name]
            timing = region_scenario(scenario, region).service_under_test.pod_timing
            out[region.name] = KubeBackend(here.api, here.ns, node_port=port + 2 * k,
                                           pod_settings=scenario_pod_settings(timing, SCALE),
                                           retry=RetryPolicy(attempts=10, base_s=0.05, cap_s=0.5))
        return out

    def interrupt_once_the_old_version_is_gone(status):
        if status.requeue_at is not None and status.wave == 0 and "demo-v1" not in eu.deployments():
            raise Interrupted

    def live(**kwargs):
        return run_live_waves(scenario, spec, backends(), state_file=tmp_path / "waves.json", urls=urls,
                              release="good", seed=5, time_scale=SCALE, max_rps=RPS, max_wall_s=240, **kwargs)

    with pytest.raises(Interrupted):
        live(on_cycle=interrupt_once_the_old_version_is_gone)
    assert eu.deployments() == {"demo-v2": 2}
    result = live(rollback=True)
    row = result.row
    assert row["outcome"] == "false_rollback" and row["regions_reached"] == 1 and row["resumed"], row
    assert result.status.rolling_back == ("eu-west",) and result.regions["eu-west"].rolled_back_at is not None
    assert [what for _, what in result.regions["eu-west"].summary.applied] == \
        ["scale stable to 2", "weight 0", "scale canary to 0"]
    assert eu.deployments() == {"demo-v1": 2, "demo-v2": 0}
    assert settle(lambda: eu.endpoint_versions() == {"v1"}, timeout=30)
    answered = result.regions["eu-west"].records.dropna(subset=["version"])
    back = answered[answered["at"] > result.regions["eu-west"].rolled_back_at + 120.0]  # kube-proxy's sync
    assert len(back) > 20 and (back["version"] == "v1").all()
    us = result.regions["us-east"]
    assert us.summary.status.started_at is None and not (us.records["version"] == "v2").any()
    assert regions["us-east"].deployments() == {"demo-v1": 2, "demo-v2": 0}
