"""The Kubernetes backend on a real cluster: real pods (the demo service in containers
under containerd + runc, started by real kubelets, probed for readiness and liveness), the
real deployment, ReplicaSet, endpoints, node-lifecycle and garbage-collector controllers,
the real scheduler, and real traffic: a load generator sends requests through the entry
Service's NodePort on 127.0.0.1 (kube-proxy's iptables rules), and the analysis reads the
versions that answered. See tests/kube_cluster.py and scripts/kube-cluster.sh.

``.ci/run`` starts the cluster and sets ROLLOUTLAB_REQUIRE_KUBE=1, so there these tests
fail instead of skipping when it cannot start.
"""

from __future__ import annotations

import itertools
import time
import uuid
from dataclasses import dataclass, field

import pytest
from kubernetes import client

from rolloutlab.errors import KubeError, StateError
from rolloutlab.live.kube import (
    COMMAND_ANNOTATION,
    STABLE_ANNOTATION,
    STATE_ANNOTATION,
    KubeBackend,
    RetryPolicy,
    parse_command_annotation,
)
from rolloutlab.live.loadgen import LoadGenerator
from rolloutlab.live.request_results import Target
from rolloutlab.live.runner import LiveVersion, ReleasePlan, Runner, RunnerState
from rolloutlab.strategies import Command, CommandRequest, Role, StrategySpec, load_strategy
from tests.kube_cluster import NodeCluster, run_demo_session, settle

REPLICAS = 4
SCALE = 60.0  # scenario seconds per wall second: a 2-minute pause takes 2 s
RPS = 60.0  # real requests per second through the NodePort (blue-green's preview gets a quarter more)
_ports = itertools.count(30100, 2)  # NodePorts are cluster-wide: this module's range is 30100-30399


@pytest.fixture(scope="module")
def cluster(node_cluster):
    return node_cluster


@dataclass
class Kube:
    """One test's view of the cluster: its own namespace, a NodePort per app, and its load
    generators (stopped at the end of the test, when the namespace is deleted too)."""

    plane: NodeCluster
    api: client.ApiClient
    ns: str
    ports: dict[str, int] = field(default_factory=dict)
    loads: list[LoadGenerator] = field(default_factory=list)

    def port(self, app: str) -> int:
        """A NodePort pair (entry, preview) no Service of the cluster holds: namespaces of
        an earlier session may still be terminating with theirs."""
        if app not in self.ports:
            services = client.CoreV1Api(self.api).list_service_for_all_namespaces().items
            taken = {p.node_port for s in services for p in (s.spec.ports or []) if p.node_port}
            port = next(_ports)
            while {port, port + 1} & taken:
                port = next(_ports)
            self.ports[app] = port
        return self.ports[app]

    def runner(self, spec: StrategySpec, release: ReleasePlan, *, backend: KubeBackend | None = None,
               seed: int = 1, scale: float = SCALE, rps: float = RPS, **kwargs) -> tuple[Runner, KubeBackend]:
        port = self.port(release.app)
        backend = backend or KubeBackend(self.api, self.ns, retry=RetryPolicy(attempts=10, base_s=0.05, cap_s=0.5))
        backend.node_port = port
        targets = [Target("user", f"http://127.0.0.1:{port}/", rps)]
        if spec.strategy.blue_green:
            targets.append(Target("preview", f"http://127.0.0.1:{port + 1}/", rps / 4))
        load = LoadGenerator(targets, seed=seed, timeout_s=2.0, max_requests=int(rps * 1.25 * 240) + 100,
                             max_duration_s=240.0, max_keepalive=0).start()  # see KubeBackend.balances_connections
        self.loads.append(load)
        return Runner(spec, release, backend, load, time_scale=scale, tick_s=0.1, **kwargs), backend

    def close(self) -> None:
        for load in self.loads:
            load.stop(2.0)
        client.CoreV1Api(self.api).delete_namespace(self.ns, grace_period_seconds=0)


@pytest.fixture
def kube(cluster):
    api = cluster.api_client()
    ns = f"t-{uuid.uuid4().hex[:6]}"
    client.CoreV1Api(api).create_namespace({"metadata": {"name": ns}})
    view = Kube(cluster, api, ns)
    yield view
    view.close()


def fast(spec: StrategySpec, **changes) -> StrategySpec:
    """The bundled strategy with short delays after the end (so tests see the cleanup)."""
    data = spec.model_dump(by_alias=True, exclude_none=True)
    strategy = data["strategy"]
    for kind in ("canary", "blueGreen"):
        if kind in strategy:
            strategy[kind]["scaleDownDelaySeconds"] = 30
            strategy[kind]["abortScaleDownDelaySeconds"] = 30
            strategy[kind].update(changes.pop(kind, {}))
    data.update(changes)
    return StrategySpec.model_validate(data)


def plan(app: str = "demo", canary_error: float = 0.0, replicas: int = REPLICAS, **canary_env: str) -> ReleasePlan:
    return ReleasePlan(
        app=app, release=f"{app}-v2", replicas=replicas,
        stable=LiveVersion("v1", {"DEMO_ERROR_RATE": "0.001"}),
        canary=LiveVersion("v2", {"DEMO_ERROR_RATE": str(canary_error), **canary_env}),
        defect="error_rate" if canary_error > 0.01 else "none",
    )


def endpoint_versions(api, ns, service="demo") -> set[str]:
    core = client.CoreV1Api(api)
    endpoints = core.read_namespaced_endpoints(service, ns)
    pods = {p.metadata.name: p for p in core.list_namespaced_pod(ns).items}
    names = [a.target_ref.name for s in (endpoints.subsets or []) for a in (s.addresses or [])]
    return {pods[n].metadata.labels["version"] for n in names if n in pods}


def service_annotations(api, ns, name="demo"):
    return client.CoreV1Api(api).read_namespaced_service(name, ns).metadata.annotations or {}


# --------------------------------------------------------------------------- the three flows


def test_canary_good_release_is_promoted_and_old_version_removed(kube):
    api, ns = kube.api, kube.ns
    runner, backend = kube.runner(fast(load_strategy("canary")), plan())
    summary = runner.run(max_wall_s=90)
    assert summary.status.completed and not summary.status.aborted, summary.status.message
    assert any(text.startswith("weight 25") or text == "scale canary to 1" for _, text in summary.applied)
    objects = backend.objects()
    assert objects["Deployment"] == ["demo-v2"], objects  # the old stable went after its scale-down delay
    assert service_annotations(api, ns)[STABLE_ANNOTATION] == "v2"
    assert settle(lambda: endpoint_versions(api, ns) == {"v2"})
    d = client.AppsV1Api(api).read_namespaced_deployment("demo-v2", ns)
    assert d.spec.replicas == REPLICAS and d.status.ready_replicas == REPLICAS
    # the canary's share grew step by step: the timeline saw both versions ready at once
    assert any(t.stable_ready and t.canary_ready for t in summary.timeline)


def test_canary_bad_release_is_rolled_back_by_analysis(kube):
    api, ns = kube.api, kube.ns
    runner, backend = kube.runner(fast(load_strategy("canary")), plan(canary_error=0.3))
    summary = runner.run(max_wall_s=90)
    status = summary.status
    assert status.aborted and status.restored_at is not None, status.message
    assert "error-rate" in status.abort_reason or "analysis" in status.abort_reason.lower(), status.abort_reason
    assert backend.objects()["Deployment"] == ["demo-v1"]
    assert service_annotations(api, ns)[STABLE_ANNOTATION] == "v1"
    assert settle(lambda: endpoint_versions(api, ns) == {"v1"})
    # detected by the second failed measurement (failureLimit 1, interval 30 s) after the
    # analysis started at step 1; wall-clock jitter at 60x adds a few scenario seconds
    assert status.aborted_at - status.step_started_at <= 120, (status.step_started_at, status.aborted_at)


def test_blue_green_good_release_switches_the_active_service(kube):
    api, ns = kube.api, kube.ns
    runner, backend = kube.runner(fast(load_strategy("blue-green")), plan())
    summary = runner.run(max_wall_s=90)
    assert summary.status.completed, summary.status.message
    core = client.CoreV1Api(api)
    assert core.read_namespaced_service("demo", ns).spec.selector["version"] == "v2"
    assert settle(lambda: endpoint_versions(api, ns) == {"v2"})
    assert backend.objects()["Deployment"] == ["demo-v2"]
    switched = [at for at, text in summary.applied if text == "active -> canary"]
    assert len(switched) == 1


def test_blue_green_bad_release_never_reaches_the_active_service(kube):
    api, ns = kube.api, kube.ns
    # every request fails: the preview gets a quarter of the users' rate, and under CI's load
    # a window of two or three requests passed a 30%, then a 60% defect by chance (P = 0.4^n);
    # this test is about the mechanism (users never meet a release the preview fails), not
    # about the judge's power, so no window with data can pass and one without errors
    runner, backend = kube.runner(fast(load_strategy("blue-green")), plan(canary_error=1.0))
    seen = set()
    runner.on_cycle = lambda n: seen.update(endpoint_versions(api, ns))
    summary = runner.run(max_wall_s=90)
    assert summary.status.aborted and summary.status.restored_at is not None
    assert seen == {"v1"}, [text for _, text in summary.applied]  # users never met the bad version: the preview analysis failed it
    assert "active -> canary" not in [text for _, text in summary.applied]
    assert backend.objects()["Deployment"] == ["demo-v1"]
    assert client.CoreV1Api(api).read_namespaced_service("demo-preview", ns).spec.selector["version"] != "v2" or \
        settle(lambda: endpoint_versions(api, ns, "demo-preview") == set())


def test_rolling_update_is_run_by_the_clusters_deployment_controller(kube):
    api, ns = kube.api, kube.ns
    spec = load_strategy("rolling")
    runner, backend = kube.runner(spec, plan())
    # the v1 ReplicaSet must exist before the template moves to v2: with two clusters on
    # two cores, the deployment controller once synced after the patch and made v2 only
    runner.prepare()
    runner.wait_until_stable_serves(timeout_s=60)
    both_seen = []
    runner.on_cycle = lambda n: both_seen.append(endpoint_versions(api, ns))
    summary = runner.run(max_wall_s=90)
    assert summary.status.completed, summary.status.message
    apps = client.AppsV1Api(api)
    d = apps.read_namespaced_deployment("demo", ns)
    assert d.spec.template.metadata.labels["version"] == "v2"
    assert d.spec.strategy.rolling_update.max_surge == spec.strategy.rolling.max_surge
    sets = apps.list_namespaced_replica_set(ns).items
    by_version = {rs.spec.template.metadata.labels["version"]: rs.spec.replicas for rs in sets}
    assert by_version == {"v1": 0, "v2": REPLICAS}  # ReplicaSets made by the real controller
    assert {"v1", "v2"} in both_seen  # pod by pod: for a while both versions served


def test_rolling_abort_command_rolls_back_like_rollout_undo(kube):
    api, ns = kube.api, kube.ns
    release = plan(DEMO_START_DELAY_S="1.5")  # new pods take a while: time to abort mid-way
    runner, backend = kube.runner(load_strategy("rolling"), release)
    runner.run(max_wall_s=30, max_cycles=3)
    assert backend.stable_version() == "v1"
    backend.leave_command(CommandRequest(1, Command.ABORT))  # what `rolloutlab live --abort` does
    resumed, _ = kube.runner(load_strategy("rolling"), release)
    summary = resumed.run(max_wall_s=60)
    assert summary.resumed and summary.status.aborted and summary.status.restored_at is not None
    d = client.AppsV1Api(api).read_namespaced_deployment("demo", ns)
    assert d.spec.template.metadata.labels["version"] == "v1"
    assert settle(lambda: endpoint_versions(api, ns) == {"v1"})


def test_crash_looping_canary_hits_the_progress_deadline_and_aborts(kube):
    api, ns = kube.api, kube.ns
    spec = fast(load_strategy("canary"), progressDeadlineSeconds=60, progressDeadlineAbort=True)
    runner, backend = kube.runner(spec, plan(DEMO_CRASH_ON_START="1"))
    summary = runner.run(max_wall_s=60)
    assert summary.status.aborted and "progress deadline" in summary.status.abort_reason, summary.status
    assert summary.status.restored_at is not None
    assert any(e.reason == "ProgressDeadlineExceeded" for t in summary.timeline for e in t.events)
    pods = client.CoreV1Api(api).list_namespaced_pod(ns, label_selector="version=v2").items
    assert pods == [] or all(p.metadata.deletion_timestamp for p in pods)


# --------------------------------------------------------------------------- crash and resume


KILL_SCALE = 150.0  # many runs in this test: the 2-minute pauses take under a second


def _kill_after(backend: KubeBackend, n: int):
    """The backend, but the process "dies" right after its n-th applied action — after
    the cluster changed and before the runner persisted its status."""
    original = backend.apply
    count = [0]

    class Killed(BaseException):
        pass

    def apply(action):
        original(action)
        count[0] += 1
        if count[0] == n:
            raise Killed()

    backend.apply = apply
    return Killed


@pytest.mark.parametrize("strategy", ["canary", "blue-green"])
def test_killed_at_every_action_resumes_to_the_same_end(kube, strategy):
    # Without analysis: at x150 an analysis interval is 0.2 s of real traffic, too few
    # requests to judge (analysis and its aborts are tested above at x60); what is tested
    # here is the actions and the resume. Two replicas per app (the kill points are the same
    # as with four), each app deleted once checked: a dozen apps of real pods would only
    # load the machine.
    no_analysis = {"canary": {"analysis": None}} if strategy == "canary" else \
        {"blueGreen": {"prePromotionAnalysis": None, "postPromotionAnalysis": None}}
    spec = fast(load_strategy(strategy), **no_analysis)
    reference, _ = kube.runner(spec, plan(app="ref", replicas=2), scale=KILL_SCALE)
    expected = reference.run(max_wall_s=90)
    assert expected.status.completed
    actions = [text for _, text in expected.applied]
    assert len(actions) >= 4
    reached = []
    for n in range(1, len(actions) + 1):
        app = f"k{n}"
        runner, backend = kube.runner(spec, plan(app=app, replicas=2), scale=KILL_SCALE)
        killed = _kill_after(backend, n)
        try:
            unkilled = runner.run(max_wall_s=90)
        except killed:
            reached.append(n)
        else:
            # Real pods take their own time: a run can merge two scale steps the reference
            # made apart (a pod ready before the next cycle), so it may end short of n.
            assert unkilled.status.completed and len(unkilled.applied) < n, (n, unkilled.applied)
        resumed, backend = kube.runner(spec, plan(app=app, replicas=2), scale=KILL_SCALE)
        summary = resumed.run(max_wall_s=90)
        assert summary.resumed == bool(runner.timeline), n  # resumed iff a cycle was persisted before the kill
        assert summary.status.completed and not summary.status.aborted, (n, summary.status.message)
        assert [t for _, t in summary.applied].count("promote") <= 1, n
        assert backend.objects()["Deployment"] == [f"{app}-v2"], n
        # a third runner finds a final rollout and changes nothing
        again, _ = kube.runner(spec, plan(app=app, replicas=2), scale=KILL_SCALE)
        assert again.run(max_wall_s=10).applied == [], n
        backend.delete_app()
    assert len(reached) >= len(actions) - 1, (reached, actions)  # every kill point but at most the last


def test_killed_runner_can_roll_back_instead_of_resuming(kube):
    api, ns = kube.api, kube.ns
    spec = fast(load_strategy("canary"))
    runner, backend = kube.runner(spec, plan())
    runner.run(max_wall_s=30, max_cycles=12)
    stable, canary = backend.observe()
    assert canary.replicas > 0  # mid-rollout
    resumed, backend = kube.runner(spec, plan())
    resumed.request(Command.ABORT)  # `rolloutlab live --rollback`
    summary = resumed.run(max_wall_s=60)
    assert summary.status.aborted and summary.status.restored_at is not None
    assert backend.objects()["Deployment"] == ["demo-v1"]
    assert settle(lambda: endpoint_versions(api, ns) == {"v1"})


def test_state_of_another_release_is_not_touched(kube):
    api, ns = kube.api, kube.ns
    runner, backend = kube.runner(fast(load_strategy("canary")), plan())
    runner.run(max_wall_s=10, max_cycles=2)
    other = ReleasePlan("demo", "demo-v3", REPLICAS, LiveVersion("v1"), LiveVersion("v3"))
    intruder, _ = kube.runner(fast(load_strategy("canary")), other)
    with pytest.raises(StateError, match="demo-v2"):
        intruder.run(max_wall_s=5)
    state = RunnerState.load(service_annotations(api, ns)[STATE_ANNOTATION])
    assert state.release == "demo-v2"


def test_a_foreign_service_with_the_apps_name_is_refused(kube):
    api, ns = kube.api, kube.ns
    client.CoreV1Api(api).create_namespaced_service(ns, {
        "metadata": {"name": "demo"}, "spec": {"selector": {"app": "x"}, "ports": [{"port": 80}]}})
    runner, _ = kube.runner(fast(load_strategy("canary")), plan())
    with pytest.raises(KubeError, match="not managed by rolloutlab"):
        runner.run(max_wall_s=5)


def test_deleting_the_entry_service_garbage_collects_the_app(kube):
    api, ns = kube.api, kube.ns
    runner, backend = kube.runner(fast(load_strategy("blue-green")), plan())
    runner.run(max_wall_s=10, max_cycles=5)
    assert backend.objects()["Deployment"] == ["demo-v1", "demo-v2"]
    backend.delete_app()
    # Foreground deletion: the Service goes last, once every pod is gone, and a real kubelet
    # confirms each pod's end some seconds after its process exited (10-20 s measured).
    assert settle(lambda: backend.objects() == {"Service": [], "Deployment": [], "ConfigMap": []}, timeout=90)
    assert settle(lambda: client.CoreV1Api(api).list_namespaced_pod(ns).items == [], timeout=30)


# --------------------------------------------------------------------------- commands


@pytest.mark.parametrize("text, expected", [
    ("1 abort", (CommandRequest(1, Command.ABORT),)),
    ("12 promoteFull", (CommandRequest(12, Command.PROMOTE_FULL),)),
])
def test_command_annotation_parses(text, expected):
    assert parse_command_annotation(text) == expected


@pytest.mark.parametrize("text", ["abort", "x abort", "1 explode", "1 abort now"])
def test_malformed_command_annotation_is_refused_loudly(text):
    with pytest.raises(KubeError, match=COMMAND_ANNOTATION):
        parse_command_annotation(text)


def test_promote_command_from_the_annotation_passes_an_indefinite_pause(kube):
    spec = fast(load_strategy("canary"), canary={"steps": [{"setWeight": 25}, {"pause": {}}, {"setWeight": 50}]})
    runner, backend = kube.runner(spec, plan())
    # until the indefinite pause: real pods start in seconds, so no fixed cycle count fits
    deadline = time.monotonic() + 60
    while True:
        runner.run(max_wall_s=5, max_cycles=20)
        state = RunnerState.load(backend.load_state())
        if state.status.phase.value == "Paused" or time.monotonic() > deadline:
            break
    assert state.status.phase.value == "Paused", state.status
    backend.leave_command(CommandRequest(1, Command.PROMOTE))
    resumed, _ = kube.runner(spec, plan())
    summary = resumed.run(max_wall_s=60)
    assert summary.status.completed


# --------------------------------------------------------------------------- a flaky API server


@pytest.mark.parametrize("strategy", ["canary", "blue-green", "rolling"])
def test_flows_finish_through_injected_api_errors_and_dropped_watches(kube, strategy):
    from tests.api_fault_proxy import FaultPlan, FaultProxy

    plane, api, ns = kube.plane, kube.api, kube.ns
    faults = FaultPlan(every=3, watch_cut_s=0.2)
    with FaultProxy(plane.api_url, faults, plane.ssl_context()) as proxy:
        flaky = plane.api_client(proxy.url)
        backend = KubeBackend(flaky, ns, retry=RetryPolicy(attempts=12, base_s=0.02, cap_s=0.3))
        spec = fast(load_strategy(strategy))
        runner, backend = kube.runner(spec, plan(), backend=backend)
        summary = runner.run(max_wall_s=120)
    assert summary.status.completed, summary.status.message
    assert [t for _, t in summary.applied].count("promote") <= 1
    assert sum(faults.injected.values()) >= 4 and len(faults.injected) >= 4, faults.injected
    assert faults.watches_cut >= 1
    assert settle(lambda: endpoint_versions(api, ns) == {"v2"})


def test_an_api_error_that_does_not_heal_fails_loudly(kube):
    from tests.api_fault_proxy import FaultPlan, FaultProxy

    plane, ns = kube.plane, kube.ns
    with FaultProxy(plane.api_url, FaultPlan(every=1, faults=("500",)), plane.ssl_context()) as proxy:
        backend = KubeBackend(plane.api_client(proxy.url), ns, retry=RetryPolicy(attempts=3, base_s=0.01))
        runner, _ = kube.runner(fast(load_strategy("canary")), plan(), backend=backend)
        with pytest.raises(KubeError, match="still failing after 3 attempts"):
            runner.run(max_wall_s=10)


# --------------------------------------------------------------------------- Gateway API


HTTPROUTE_CRD = {
    # Only what the backend reads and writes; the real CRD (gateway-api's standard
    # install) validates much more. Installing it lets the API server serve the group.
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "httproutes.gateway.networking.k8s.io",
                 # k8s.io groups need this; gateway-api's own CRDs carry the same annotation
                 "annotations": {"api-approved.kubernetes.io": "https://github.com/kubernetes-sigs/gateway-api/pull/1538"}},
    "spec": {
        "group": "gateway.networking.k8s.io", "scope": "Namespaced",
        "names": {"plural": "httproutes", "singular": "httproute", "kind": "HTTPRoute", "listKind": "HTTPRouteList"},
        "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
            "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}],
    },
}


def test_router_canary_without_the_gateway_api_is_refused_with_a_reason(kube):
    api, ns = kube.api, kube.ns
    spec = fast(load_strategy("canary"), canary={"trafficRouting": "router"})
    runner, _ = kube.runner(spec, plan(), backend=KubeBackend(api, ns, use_gateway=False))
    with pytest.raises(KubeError, match="Gateway API"):
        runner.run(max_wall_s=5)


def test_router_canary_sets_exact_weights_on_an_httproute(kube):
    api, ns = kube.api, kube.ns
    extensions = client.ApiextensionsV1Api(kube.plane.admin_client())  # admin: installing a CRD is the platform's
    try:
        extensions.create_custom_resource_definition(HTTPROUTE_CRD)
    except client.ApiException as error:
        if error.status != 409:
            raise
    custom = client.CustomObjectsApi(api)

    def route_weights():
        try:
            route = custom.get_namespaced_custom_object("gateway.networking.k8s.io", "v1", ns, "httproutes", "demo")
        except client.ApiException:
            return None
        return {r["name"]: r["weight"] for r in route["spec"]["rules"][0]["backendRefs"]}

    assert settle(lambda: KubeBackend(api, ns)._has_gateway_api(), timeout=20)
    spec = fast(load_strategy("canary"), canary={"trafficRouting": "router"})
    runner, backend = kube.runner(spec, plan())
    seen = []
    runner.on_cycle = lambda n: seen.append(route_weights()["demo-canary"])
    summary = runner.run(max_wall_s=90)
    assert summary.status.completed, summary.status.message
    steps = [w for i, w in enumerate(seen) if i == 0 or w != seen[i - 1]]
    assert steps == [0, 10, 25, 50, 100], seen  # exactly the declared weights, in order
    assert route_weights() == {"demo-stable": 0, "demo-canary": 100}
    core = client.CoreV1Api(api)
    assert core.read_namespaced_service("demo-canary", ns).spec.selector["version"] == "v2"


def test_header_and_mirror_routes_are_rules_of_the_httproute(kube):
    """setHeaderRoute and setMirrorRoute become HTTPRoute rules before the weighted one (a
    canary-only rule; a RequestMirror filter with the route's percent), in managedRoutes
    order, and every managed rule is gone at promotion, as Argo's Gateway API plugin does."""
    api, ns = kube.api, kube.ns
    extensions = client.ApiextensionsV1Api(kube.plane.admin_client())  # admin: installing a CRD is the platform's
    try:
        extensions.create_custom_resource_definition(HTTPROUTE_CRD)
    except client.ApiException as error:
        if error.status != 409:
            raise
    assert settle(lambda: KubeBackend(api, ns)._has_gateway_api(), timeout=20)
    custom = client.CustomObjectsApi(api)
    spec = StrategySpec.model_validate({"name": "routes", "strategy": {"canary": {
        "trafficRouting": "router", "managedRoutes": [{"name": "staff"}, {"name": "shadow"}],
        "scaleDownDelaySeconds": 0, "steps": [
            {"setCanaryScale": {"replicas": 1}},
            {"setMirrorRoute": {"name": "shadow", "percentage": 40, "match": [{"method": {"exact": "GET"}}]}},
            {"setHeaderRoute": {"name": "staff", "match": [
                {"headerName": "x-user-group", "headerValue": {"prefix": "intern"}}]}},
            {"pause": {"duration": "20s"}},
            {"setWeight": 50},
            {"pause": {"duration": "20s"}}]}}})
    seen = []

    def rules():
        route = custom.get_namespaced_custom_object("gateway.networking.k8s.io", "v1", ns, "httproutes", "demo")
        return route["spec"]["rules"]

    runner, _ = kube.runner(spec, plan())
    runner.on_cycle = lambda n: seen.append(rules())
    summary = runner.run(max_wall_s=120)
    assert summary.status.completed, summary.status.message
    both = next(r for r in seen if len(r) == 3)
    staff, shadow, default = both
    assert staff["name"] == "staff" and shadow["name"] == "shadow"  # managedRoutes order, not step order
    assert staff["backendRefs"] == [{"name": "demo-canary", "port": 80, "weight": 100}]
    assert staff["matches"] == [{"headers": [{"name": "x-user-group", "type": "RegularExpression",
                                              "value": "^intern.*"}]}]
    assert shadow["matches"] == [{"method": "GET"}]
    assert shadow["filters"] == [{"type": "RequestMirror", "requestMirror": {
        "backendRef": {"name": "demo-canary", "port": 80}, "percent": 40}}]
    assert {r["name"]: r["weight"] for r in default["backendRefs"]} == {"demo-stable": 100, "demo-canary": 0}
    weights = [{b["name"]: b["weight"] for b in r[1]["backendRefs"]} for r in seen if len(r) == 3]
    assert {"demo-stable": 50, "demo-canary": 50} in weights  # the mirror rule follows the weight too
    assert rules() == [{"backendRefs": [{"name": "demo-stable", "port": 80, "weight": 0},
                                        {"name": "demo-canary", "port": 80, "weight": 100}]}]


# --------------------------------------------------------------------------- chaos


def test_killed_pods_are_replaced_by_the_replicaset_controller(kube):
    api, ns = kube.api, kube.ns
    runner, backend = kube.runner(fast(load_strategy("canary")), plan())
    runner.prepare()
    runner.wait_until_stable_serves(timeout_s=20)
    core = client.CoreV1Api(api)
    before = {p.metadata.name for p in core.list_namespaced_pod(ns).items}
    killed = backend.kill_pods(Role.STABLE, 2)
    assert len(killed) == 2 and set(killed) <= before
    assert settle(lambda: backend.observe()[0].ready == REPLICAS and not set(killed) & {
        p.metadata.name for p in core.list_namespaced_pod(ns).items})


def test_node_loss_evicts_its_pods_onto_the_other_nodes_and_the_node_comes_back(kube):
    api, ns = kube.api, kube.ns
    runner, backend = kube.runner(fast(load_strategy("canary")), plan())
    runner.prepare()
    runner.wait_until_stable_serves(timeout_s=20)
    core = client.CoreV1Api(api)
    lost = backend.lose_node(1, duration_s=2.0)
    assert len(lost) == 1
    node = lost[0]
    assert core.read_node(node).spec.unschedulable

    def moved():
        pods = [p for p in core.list_namespaced_pod(ns).items if p.metadata.deletion_timestamp is None]
        elsewhere = all(p.spec.node_name != node for p in pods)
        return len(pods) == REPLICAS and elsewhere and backend.observe()[0].ready == REPLICAS

    assert settle(moved)
    assert settle(lambda: not core.read_node(node).spec.unschedulable, timeout=10)


def backend_state(api, ns):
    return service_annotations(api, ns)[STATE_ANNOTATION]


def test_a_second_runner_on_the_same_rollout_is_stopped_before_it_moves_it_backwards(kube):
    api, ns = kube.api, kube.ns
    spec = fast(load_strategy("canary"))
    first, _ = kube.runner(spec, plan())
    first.run(max_wall_s=10, max_cycles=3)
    second, _ = kube.runner(spec, plan())
    second.prepare()  # reads the state as it is now
    first.request(Command.ABORT)  # the first one goes on and surely writes a different state
    first.run(max_wall_s=10, max_cycles=3)
    assert RunnerState.load(backend_state(api, ns)).status.aborted
    with pytest.raises(StateError, match="another runner"):
        second.run(max_wall_s=10, max_cycles=3)


def test_a_malformed_command_annotation_is_ignored_not_fatal(kube):
    api, ns = kube.api, kube.ns
    runner, backend = kube.runner(fast(load_strategy("canary")), plan())
    runner.run(max_wall_s=10, max_cycles=2)
    client.CoreV1Api(api).patch_namespaced_service("demo", ns, {"metadata": {"annotations": {COMMAND_ANNOTATION: "abort"}}})
    assert backend.commands() == ()
    summary, _ = kube.runner(fast(load_strategy("canary")), plan())
    assert summary.run(max_wall_s=60).status.completed


# --------------------------------------------------------------------------- a whole live session


def why(result) -> str:
    """What a failed outcome assertion shows: the abort's reason and the errors the load met."""
    status, records = result.summary.status, result.records
    counts = records["result"].value_counts().to_dict() if "result" in records else {}
    return f"{result.row['outcome']}: {status.abort_reason or status.message}; answers {counts}"


@pytest.mark.parametrize("strategy, release, outcome, metrics", [
    ("canary", "bad", "rolled_back", "scrape"),  # analysis from the pods' own /metrics via the API server
    ("canary", "good", "promoted", "loadgen"),
    ("blue-green", "bad", "rolled_back", "loadgen"),
    ("rolling", "good", "promoted", "loadgen"),
])
def test_live_session_on_real_pods(kube, strategy, release, outcome, metrics):
    """What `rolloutlab live --backend kube` runs (tests/test_kind.py runs the same on kind)."""
    port = kube.port("demo")
    backend = KubeBackend(kube.api, kube.ns, node_port=port)
    # the scenario's 30-minute window in a minute
    result = run_demo_session(backend, port, strategy, release, metrics, time_scale=30.0, max_wall_s=300)
    assert result.row["source"] == "live-kube"
    assert result.row["outcome"] == outcome, why(result)
    assert result.row["requests"] > 0
    assert backend.image.pull_policy == "Never"  # the node's own image: nothing was pulled
    pods = client.CoreV1Api(kube.api).list_namespaced_pod(kube.ns).items
    assert pods and all(p.status.container_statuses[0].image.startswith("rolloutlab.local/") for p in pods
                        if p.status.container_statuses)
