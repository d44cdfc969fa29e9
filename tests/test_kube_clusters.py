"""Two clusters of scripts/kube-cluster.sh side by side, as two regions: cluster 1 (the
tests' usual one, in the machine's own network namespace) and cluster 2 (in a network
namespace of its own, reached at 127.0.0.2). Each has its own control plane, nodes, pods
and kube-proxy; one kubeconfig holds a context per region, as a runner of region waves gets
it (``scripts/kube-cluster.sh kubeconfig --clusters 1,2 --contexts us-east,eu-west``).

The demo pods run in both clusters at once, in a namespace of the same name, behind a
NodePort of the same number: each answers on its own cluster's address with its own
version (named after its region). ``.ci/run`` starts both clusters and sets
ROLLOUTLAB_REQUIRE_KUBE=1, so there these fail rather than skip. NodePorts of this module:
30500-30599.
"""

from __future__ import annotations

import itertools
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from rolloutlab.live.kube_objects import (
    DEMO_PORT,
    PUBLIC_IMAGE,
    DemoImage,
    demo_configmap_name,
    demo_pod_template,
    demo_service_files,
    pod_ready,
)
from rolloutlab.live.runner import LiveVersion
from tests.kube_cluster import NodeCluster, node_cluster_or_skip, region_kubeconfig, settle

REGIONS = {1: "us-east", 2: "eu-west"}
APP = "regional"
_ports = itertools.count(30500)


@pytest.fixture(scope="module")
def clusters(node_cluster) -> dict[int, NodeCluster]:
    """Cluster 1 (the session's) and cluster 2 (started here if it is not up, and then
    stopped at the end of the module)."""
    second = node_cluster_or_skip(2)
    try:
        yield {1: node_cluster, 2: second}
    finally:
        second.stop()


@pytest.fixture(scope="module")
def regions(clusters, tmp_path_factory) -> dict[str, client.ApiClient]:
    """An API client per region, each from its context of the one regions' kubeconfig."""
    # admin: these tests check the clusters themselves with bare pods (the runner's own
    # region waves run as its ServiceAccount: tests/test_kube_regions.py)
    path = region_kubeconfig(REGIONS, tmp_path_factory.mktemp("regions") / "kubeconfig", admin=True)
    return {name: config.new_client_from_config(str(path), context=name) for name in REGIONS.values()}


def http_version(address: str, port: int) -> str | None:
    """The ``X-Version`` of one GET / on a NodePort, or None when nothing answered."""
    try:
        with urllib.request.urlopen(f"http://{address}:{port}/", timeout=2) as answer:
            return answer.headers.get("X-Version")
    except (OSError, urllib.error.URLError):
        return None


@dataclass
class RegionalApp:
    """The demo service in one region: a pod named after the region, running the version
    named after it, behind a NodePort Service."""

    cluster: NodeCluster
    region: str
    api: client.ApiClient
    ns: str

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    @property
    def pod_name(self) -> str:
        return f"demo-{self.region}"

    def start(self, node_port: int) -> None:
        ref = self.cluster.env.get("DEMO_IMAGE")
        image = DemoImage.preloaded(ref) if ref else PUBLIC_IMAGE
        template = demo_pod_template(APP, LiveVersion(self.region), image=image)
        self.core.create_namespace({"metadata": {"name": self.ns}})
        self.core.create_namespaced_config_map(self.ns, {
            "metadata": {"name": demo_configmap_name(APP)}, "data": demo_service_files()})
        self.core.create_namespaced_pod(self.ns, {"metadata": {"name": self.pod_name, **template["metadata"]},
                                                  "spec": template["spec"]})
        self.expose(APP, node_port)

    def expose(self, name: str, node_port: int) -> None:
        self.core.create_namespaced_service(self.ns, {"metadata": {"name": name}, "spec": {
            "type": "NodePort", "selector": {"app": APP},
            "ports": [{"port": 80, "targetPort": DEMO_PORT, "nodePort": node_port}]}})

    def ready(self) -> bool:
        try:
            return pod_ready(self.core.read_namespaced_pod(self.pod_name, self.ns))
        except ApiException as error:
            if error.status == 404:
                return False
            raise

    def node_ports_taken(self) -> set[int]:
        services = self.core.list_service_for_all_namespaces().items
        return {p.node_port for s in services for p in (s.spec.ports or []) if p.node_port}

    def close(self) -> None:
        try:
            self.core.delete_namespace(self.ns, grace_period_seconds=0)
        except ApiException as error:
            if error.status != 404:
                raise


def free_port(apps: list[RegionalApp]) -> int:
    """A NodePort number free in every cluster (namespaces of an earlier session may still
    be terminating with theirs)."""
    taken = set().union(*(app.node_ports_taken() for app in apps))
    port = next(_ports)
    while port in taken:
        port = next(_ports)
    return port


@pytest.fixture(scope="module")
def apps(clusters, regions):
    """The demo service running in both regions at once, same namespace name, same NodePort."""
    ns = f"regions-{uuid.uuid4().hex[:6]}"
    running = [RegionalApp(clusters[n], REGIONS[n], regions[REGIONS[n]], ns) for n in REGIONS]
    try:
        port = free_port(running)
        for app in running:
            app.start(port)
        assert settle(lambda: all(app.ready() for app in running), timeout=120, step=0.5), \
            {app.region: app.ready() for app in running}
        yield running, port
    finally:
        for app in running:
            app.close()


def test_each_regions_context_reaches_its_own_cluster_and_nodes(clusters, regions):
    """A context per region: each reaches the API server of its own cluster, which has its
    own nodes, none shared."""
    seen = {}
    for number, region in REGIONS.items():
        nodes = {n.metadata.name for n in client.CoreV1Api(regions[region]).list_node().items}
        assert nodes == set(clusters[number].nodes)
        seen[region] = nodes
    assert not seen["us-east"] & seen["eu-west"]
    assert regions["eu-west"].configuration.host == clusters[2].env["API_URL"]
    assert clusters[2].env["API_URL"].startswith("https://127.0.0.2:")


def test_a_pod_runs_in_each_cluster_at_once_and_each_cluster_lists_only_its_own(apps):
    """Both regions' pods are Ready at the same moment; in the same namespace, each cluster
    lists its own pod only."""
    running, _ = apps
    assert all(app.ready() for app in running)
    for app in running:
        listed = {p.metadata.name for p in app.core.list_namespaced_pod(app.ns).items}
        assert listed == {app.pod_name}


def test_each_clusters_node_port_answers_on_its_own_address_with_its_own_pod(apps):
    """The same NodePort number answers on 127.0.0.1 from cluster 1's pod and on 127.0.0.2
    from cluster 2's: two kube-proxies, each in its own network namespace."""
    running, port = apps
    for app in running:
        address = app.cluster.node_port_address
        assert settle(lambda a=address, r=app.region: http_version(a, port) == r, timeout=30, step=0.5), \
            f"{address}:{port} answered {http_version(address, port)!r}, not {app.region!r}"
    assert {app.cluster.node_port_address for app in running} == {"127.0.0.1", "127.0.0.2"}


def test_a_service_change_in_one_cluster_leaves_the_others_node_port_answering(apps):
    """kube-proxy rewrites its whole rule set on every change: a new Service in cluster 2
    (answering once its kube-proxy has synced) must not take cluster 1's NodePort away, and
    the other way round."""
    running, port = apps
    for changed in running:
        extra = free_port(running)
        changed.expose(f"{APP}-extra-{extra}", extra)
        address = changed.cluster.node_port_address
        assert settle(lambda a=address, p=extra, r=changed.region: http_version(a, p) == r, timeout=30, step=0.5)
        for app in running:
            assert http_version(app.cluster.node_port_address, port) == app.region
