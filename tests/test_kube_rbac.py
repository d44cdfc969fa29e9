"""The Kubernetes runner's least privilege (live/rbac.yaml, live/kube_rbac.py), checked by
the real API server with its RBAC authorizer on (scripts/kube-cluster.sh:
``--authorization-mode=Node,RBAC``): what the rules leave out is refused with a 403, and a
whole live run needs nothing more than the namespaced part.

Two identities: the suite's runner ServiceAccount (every part of the manifest: the kube
tests run ``validate``, a namespace per run), and one made here in a fresh namespace from
the default parts (``runner``, ``demo-image``, ``node-loss``), what a platform team grants.
NodePorts of this module: 30700-30709.
"""

from __future__ import annotations

import uuid

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from rolloutlab.errors import KubeError
from rolloutlab.live.kube import KubeBackend
from rolloutlab.live.kube_rbac import (
    DEFAULT_PARTS,
    MANIFEST,
    SERVICE_ACCOUNT,
    RbacPart,
    apply_rbac,
    load_manifest,
    main,
    render_rbac,
)
from tests.kube_cluster import NodeCluster, run_demo_session, settle

RBAC_GROUP = "rbac.authorization.k8s.io"


def rules_of(objects) -> list[tuple[str, str, str, tuple[str, ...]]]:
    """(role name, apiGroup, resource, verb, resourceNames): one per verb of each rule of the objects."""
    out = []
    for doc in objects:
        for rule in doc.get("rules", []):
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    for verb in rule["verbs"]:
                        out.append((doc["metadata"]["name"], group, resource, verb, tuple(rule.get("resourceNames", ()))))
    return out


# --------------------------------------------------------------------------- the manifest


def test_no_rule_holds_a_wildcard_secrets_rbac_objects_or_escalation_verbs():
    """Every rule names its group, resource and verb; nothing reads Secrets, execs into pods,
    writes RBAC objects, impersonates, binds or escalates."""
    rules = rules_of(load_manifest())
    assert rules
    for _, group, resource, verb, _ in rules:
        assert "*" not in (group, resource, verb)
        assert resource not in ("secrets", "pods/exec", "pods/attach", "serviceaccounts/token")
        assert group != RBAC_GROUP
        assert verb not in ("bind", "escalate", "impersonate")


def test_rendering_puts_the_runner_and_its_bindings_in_the_namespace_given():
    """The ServiceAccount, its RoleBinding and every binding's subject move to the namespace;
    bindings outside it are named after it (several namespaces' runners side by side)."""
    objects = render_rbac("team-a")
    kinds = {(d["kind"], d["metadata"]["name"], d["metadata"].get("namespace")) for d in objects}
    assert ("ServiceAccount", SERVICE_ACCOUNT, "team-a") in kinds
    assert ("RoleBinding", "rolloutlab-runner", "team-a") in kinds
    assert ("RoleBinding", "rolloutlab-demo-image-team-a", "kube-public") in kinds
    assert ("ClusterRoleBinding", "rolloutlab-node-loss-team-a", None) in kinds
    for doc in objects:
        for subject in doc.get("subjects", []):
            assert subject == {"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": "team-a"}


def test_the_namespace_per_run_part_is_left_out_unless_asked_for():
    """The broad part (create and delete any namespace) is never in the default rendering."""
    assert RbacPart.NAMESPACE_PER_RUN not in DEFAULT_PARTS
    default = {d["metadata"]["labels"]["rolloutlab.io/rbac-part"] for d in render_rbac("team-a")}
    assert default == {"runner", "demo-image", "node-loss"}
    only = render_rbac("team-a", [RbacPart.RUNNER])
    assert {d["kind"] for d in only} == {"ServiceAccount", "ClusterRole", "RoleBinding"}
    assert not [r for r in rules_of(only) if r[2] in ("nodes", "namespaces")]  # nothing cluster-scoped


def test_the_cluster_script_reads_each_document_as_yaml_does():
    """scripts/kube-cluster.sh applies the manifest with curl, finding each document's kind,
    name and namespace by their lines (``kind:``, ``  name:``, ``  namespace:``): the first
    such lines must be the object's own, and every kind one the script knows."""
    script = (MANIFEST.parents[1] / "scripts" / "kube-cluster.sh").read_text()
    texts = [t for t in MANIFEST.read_text().split("\n---\n")[1:] if t.strip()]
    assert len(texts) == len(load_manifest())
    for text, doc in zip(texts, load_manifest()):
        first = {key: next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith(key)), None)
                 for key in ("kind:", "  name:", "  namespace:")}
        assert first == {"kind:": doc["kind"], "  name:": doc["metadata"]["name"],
                         "  namespace:": doc["metadata"].get("namespace")}
        assert f"        {doc['kind']}) echo" in script


@pytest.mark.parametrize("namespace", ["Team-A", "a_b", "", "x" * 64], ids=["capitals", "underscore", "empty", "too long"])
def test_a_namespace_kubernetes_would_refuse_is_refused_by_name(namespace):
    with pytest.raises(KubeError, match="not a Kubernetes namespace name"):
        render_rbac(namespace)


def test_the_command_prints_yaml_and_exits_2_on_a_bad_namespace(capsys):
    assert main(["--namespace", "team-b", "--part", "runner"]) == 0
    printed = list(yaml.safe_load_all(capsys.readouterr().out))
    assert printed == render_rbac("team-b", ["runner"])
    assert main(["--namespace", "Bad"]) == 2
    assert "not a Kubernetes namespace name" in capsys.readouterr().err


# --------------------------------------------------------------------------- the real API server


@pytest.fixture(scope="module")
def cluster(node_cluster) -> NodeCluster:
    return node_cluster


def forbidden(call) -> ApiException:
    """The API server's refusal of ``call`` (the test fails if it was allowed)."""
    with pytest.raises(ApiException) as refused:
        call()
    return refused.value


def allowed(api: client.ApiClient, namespace: str | None, group: str, resource: str, verb: str,
            name: str | None = None) -> bool:
    """The API server's own answer (SelfSubjectAccessReview) to: may I?"""
    sub = resource.split("/", 1)
    attributes = client.V1ResourceAttributes(namespace=namespace, group=group, resource=sub[0], verb=verb,
                                             subresource=sub[1] if len(sub) > 1 else None, name=name)
    review = client.V1SelfSubjectAccessReview(spec=client.V1SelfSubjectAccessReviewSpec(resource_attributes=attributes))
    return client.AuthorizationV1Api(api).create_self_subject_access_review(review).status.allowed


@pytest.mark.parametrize("what, call", [
    ("list Secrets in kube-system", lambda core, rbac, ns: core.list_namespaced_secret("kube-system")),
    ("read a Secret in its own namespace", lambda core, rbac, ns: core.read_namespaced_secret("x", ns)),
    ("delete a Secret", lambda core, rbac, ns: core.delete_namespaced_secret("x", ns)),
    ("create a ClusterRole", lambda core, rbac, ns: rbac.create_cluster_role(
        {"metadata": {"name": f"rolloutlab-escalate-{ns}"}, "rules": [
            {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]})),
    ("bind itself to cluster-admin", lambda core, rbac, ns: rbac.create_namespaced_role_binding(ns, {
        "metadata": {"name": "escalate"}, "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": "rolloutlab"}]})),
    ("delete a node", lambda core, rbac, ns: core.delete_node("rolloutlab-node-2")),
    ("create a bare pod", lambda core, rbac, ns: core.create_namespaced_pod(ns, {
        "metadata": {"name": "bare"}, "spec": {"containers": [{"name": "c", "image": "x"}]}})),
], ids=lambda v: v if isinstance(v, str) else "")
def test_the_suites_runner_is_refused_what_the_manifest_leaves_out(cluster, what, call):
    """The identity every kube test runs as (every part of the manifest) gets a real 403 for
    a verb outside it, from the API server, with the RBAC authorizer's reason."""
    admin = client.CoreV1Api(cluster.admin_client())
    ns = f"rbac-{uuid.uuid4().hex[:6]}"
    admin.create_namespace({"metadata": {"name": ns}})
    try:
        admin.create_namespaced_secret(ns, {"metadata": {"name": "x"}, "stringData": {"password": "hunter2"}})
        api = cluster.api_client()
        refused = forbidden(lambda: call(client.CoreV1Api(api), client.RbacAuthorizationV1Api(api), ns))
        assert refused.status == 403, what
        assert "system:serviceaccount:rolloutlab:rolloutlab-runner" in refused.body
        assert admin.read_namespaced_secret("x", ns).metadata.name == "x"  # still there
    finally:
        admin.delete_namespace(ns, grace_period_seconds=0)


@pytest.fixture
def namespaced(cluster):
    """A namespace with a runner of its own holding the default parts (runner, demo-image,
    node-loss), as a platform team grants it; an API client as that runner."""
    admin_api = cluster.admin_client()
    admin = client.CoreV1Api(admin_api)
    ns = f"rbac-{uuid.uuid4().hex[:6]}"
    admin.create_namespace({"metadata": {"name": ns}})
    objects = render_rbac(ns)  # the default parts: runner, demo-image, node-loss
    try:
        apply_rbac(admin_api, objects)
        token = admin.create_namespaced_service_account_token(
            SERVICE_ACCOUNT, ns, {"spec": {"expirationSeconds": 3600}}).status.token
        configuration = client.Configuration()
        configuration.host = cluster.api_url
        configuration.api_key = {"authorization": f"Bearer {token}"}
        configuration.ssl_ca_cert = str(cluster.ca_file)
        yield ns, client.ApiClient(configuration)
    finally:
        rbac = client.RbacAuthorizationV1Api(admin_api)
        for doc in objects:  # the namespace takes its own; these live elsewhere
            try:
                if doc["kind"] == "RoleBinding" and doc["metadata"]["namespace"] != ns:
                    rbac.delete_namespaced_role_binding(doc["metadata"]["name"], doc["metadata"]["namespace"])
            except ApiException as error:
                if error.status != 404:
                    raise
        admin.delete_namespace(ns, grace_period_seconds=0)


def test_the_namespaced_runner_may_do_each_rule_in_its_namespace_and_nothing_elsewhere(namespaced):
    """Every (resource, verb) of the runner's rules is allowed in its namespace and refused in
    another one; of cluster-scoped things only node-loss's patch of nodes (the API server's
    own access reviews)."""
    ns, api = namespaced
    runner_rules = [r for r in rules_of(render_rbac(ns, [RbacPart.RUNNER]))]
    assert runner_rules
    for _, group, resource, verb, _ in runner_rules:
        assert allowed(api, ns, group, resource, verb), (group, resource, verb)
        assert not allowed(api, "default", group, resource, verb), (group, resource, verb)
    for group, resource, verb in [("", "nodes", "get"), ("", "nodes", "delete"), ("", "namespaces", "create"),
                                  ("", "namespaces", "delete"), ("", "namespaces", "list")]:
        assert not allowed(api, None, group, resource, verb), (resource, verb)
    assert allowed(api, None, "", "nodes", "patch")  # node-loss: cordon, uncordon
    # the demo image's ConfigMap, by name, and no other one of kube-public
    assert allowed(api, "kube-public", "", "configmaps", "get", "rolloutlab-demo-image")
    assert not allowed(api, "kube-public", "", "configmaps", "get", "cluster-info")
    assert not allowed(api, "kube-public", "", "configmaps", "list")


def test_the_namespaced_runner_is_refused_outside_its_namespace_for_real(namespaced):
    """Real calls, real 403s: a Service in another namespace, a namespace of its own, a node deleted."""
    ns, api = namespaced
    core = client.CoreV1Api(api)
    service = {"metadata": {"name": "probe"}, "spec": {"ports": [{"port": 80}]}}
    assert forbidden(lambda: core.create_namespaced_service("default", service)).status == 403
    assert forbidden(lambda: core.create_namespace({"metadata": {"name": f"{ns}-more"}})).status == 403
    assert forbidden(lambda: core.delete_node("rolloutlab-node-1")).status == 403
    created = core.create_namespaced_service(ns, service)  # while in its own it may
    assert created.metadata.namespace == ns


def free_node_port(cluster: NodeCluster) -> int:
    """An (entry, preview) NodePort pair of this module's range no Service holds (namespaces
    of an earlier, interrupted session may still hold theirs)."""
    services = client.CoreV1Api(cluster.admin_client()).list_service_for_all_namespaces().items
    taken = {p.node_port for s in services for p in (s.spec.ports or []) if p.node_port}
    return next(port for port in range(30700, 30710, 2) if not {port, port + 1} & taken)


@pytest.mark.parametrize("strategy, release, outcome, metrics", [
    ("canary", "bad", "rolled_back", "scrape"),  # analysis scraped through pods/proxy
    ("blue-green", "bad", "rolled_back", "loadgen"),  # Service selector switches
    ("rolling", "good", "promoted", "loadgen"),  # the Deployment's template patched, ReplicaSets listed
])
def test_a_whole_live_run_needs_nothing_beyond_the_default_parts(cluster, namespaced, strategy, release, outcome,
                                                                     metrics):
    """Every strategy's live run, its pods watched (``live.kube_events``), then chaos (a pod
    killed, a node drained and given back) and the app deleted, by a runner holding the
    default parts only (the suite's own identity also reads what tests check: this is the
    run that proves the manifest is enough)."""
    ns, api = namespaced
    port = free_node_port(cluster)
    backend = KubeBackend(api, ns, node_port=port)
    watch = backend.watch_pods("demo").start()
    try:
        result = run_demo_session(backend, port, strategy, release, metrics, time_scale=30.0, max_wall_s=300)
    finally:
        watch.stop()
    assert result.row["outcome"] == outcome, result.summary.status.abort_reason or result.summary.status.message
    assert watch.pods(), "the pod watch saw no pod"
    assert backend.image.pull_policy == "Never"  # it read the demo image's ConfigMap in kube-public
    assert len(backend.kill_pods(None, 1)) == 1  # pods: delete
    drained = backend.lose_node(1, None)  # nodes: patch (cordon); pods/eviction: create
    try:
        assert len(drained) == 1
    finally:
        for node in drained:
            backend.uncordon(node)
    backend.delete_app()  # foreground: the Service goes last, once a real kubelet confirmed every pod's end
    gone = {"Service": [], "Deployment": [], "ConfigMap": []}
    assert settle(lambda: backend.objects() == gone, timeout=120), backend.objects()
