"""The Kubernetes backend: the shared controller's actions applied to Deployments and Services.

The one I/O boundary to a cluster (httpx's habit: everything that talks to the API server
is here, behind ``KubeBackend``; the runner and the controller never see the client).

Objects, for an app ``A`` in a namespace (all labelled ``app.kubernetes.io/managed-by:
rolloutlab`` and ``rolloutlab.io/app: A``):

    Service A            the user-facing entry in every strategy; carries the runner's
                         state (annotation ``rolloutlab.io/state``), commands a person
                         leaves (``rolloutlab.io/command: "<id> <verb>"``) and the stable
                         version (``rolloutlab.io/stable-version``). It owns the rest
                         (ownerReferences), so deleting it lets the garbage collector
                         remove every object of the app.
    canary               Deployment A-<version> per version; Service A selects both, so
                         the canary's share is its share of ready pods (Argo Rollouts'
                         mode without a traffic router). With the Gateway API present and
                         ``trafficRouting: router``: Services A-stable / A-canary and an
                         HTTPRoute A with exact backend weights.
    blue-green           Deployment A-<version> per version; Service A (active) and
                         A-preview select one version each; switching is a selector patch.
    rolling              one Deployment A whose pod template is the target version; the
                         cluster's own deployment controller rolls it (maxSurge,
                         maxUnavailable) and the runner watches its ReplicaSets.

Every write retries conflicts (409: re-read, re-apply), throttling (429), server errors
(5xx) and connection failures with exponential backoff; ``wait`` watches pods and
reconnects (a dropped watch only ends one wait early: the runner is level-triggered).
"""

from __future__ import annotations

import copy
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import urllib3
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from rolloutlab.errors import KubeError, StateError
from rolloutlab.live.runner import LiveVersion, ReleasePlan, is_final, parse_command
from rolloutlab.strategies import (
    LATENCY_BUCKETS_MS,
    Action,
    CommandRequest,
    Counters,
    Promote,
    Role,
    RolloutStatus,
    ScaleVersion,
    SetCanaryWeight,
    StrategySpec,
    SwitchActive,
    SwitchPreview,
    VersionObservation,
)
from rolloutlab.strategies.observation import Command
from rolloutlab.strategies.spec import StrategyKind, TrafficRouting

MANAGED_BY = {"app.kubernetes.io/managed-by": "rolloutlab"}
STATE_ANNOTATION = "rolloutlab.io/state"
COMMAND_ANNOTATION = "rolloutlab.io/command"
STABLE_ANNOTATION = "rolloutlab.io/stable-version"
APP_LABEL = "rolloutlab.io/app"
VERSION_LABEL = "version"
NO_VERSION = "rolloutlab-none"  # a selector value no pod has: a Service with no endpoints
GATEWAY_GROUP = "gateway.networking.k8s.io"
DEMO_IMAGE = "python:3.12-slim"
DEMO_PORT = 8080
PROMETHEUS_CLIENT = "prometheus-client==0.21.1"

T = TypeVar("T")
log = logging.getLogger("rolloutlab.live.kube")


# --------------------------------------------------------------------------- retries


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 8
    base_s: float = 0.1
    cap_s: float = 5.0

    def delays(self):
        delay = self.base_s
        for _ in range(self.attempts - 1):
            yield delay
            delay = min(self.cap_s, delay * 2)


RETRYABLE_STATUS = {409, 429, 500, 502, 503, 504}


def retrying(call: Callable[[], T], policy: RetryPolicy, what: str, sleep: Callable[[float], None] = time.sleep) -> T:
    """Run ``call``; on a retryable failure wait and run it again (the call re-reads what
    it needs, so a 409 conflict is resolved by the next attempt's fresh read)."""
    last: Exception | None = None
    for delay in [*policy.delays(), None]:
        try:
            return call()
        except ApiException as error:
            if error.status not in RETRYABLE_STATUS:
                raise KubeError(f"{what}: {error.status} {error.reason}: {_api_message(error)}") from None
            last = error
        except (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError, OSError) as error:
            last = error
        if delay is None:
            break
        sleep(delay)
    raise KubeError(f"{what}: still failing after {policy.attempts} attempts: {last}")


def _api_message(error: ApiException) -> str:
    try:
        return json.loads(error.body).get("message", "")
    except (TypeError, ValueError):
        return str(error.body or "")[:200]


# --------------------------------------------------------------------------- the demo service


def demo_configmap_name(app: str) -> str:
    return f"{app}-demo-service"


def demo_pod_template(app: str, version: LiveVersion, extra_labels: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The demo service on the public Python image, code from a ConfigMap, prometheus-client
    installed by an init container into a shared volume (no image build needed)."""
    env = {"DEMO_VERSION": version.name, "DEMO_PORT": str(DEMO_PORT), **version.env}
    labels = {"app": app, APP_LABEL: app, VERSION_LABEL: version.name, **(extra_labels or {})}
    return {
        "metadata": {"labels": labels},
        "spec": {
            "terminationGracePeriodSeconds": 30,
            "initContainers": [{
                "name": "deps",
                "image": DEMO_IMAGE,
                "command": ["pip", "install", "--no-cache-dir", "--target", "/deps", PROMETHEUS_CLIENT],
                "volumeMounts": [{"name": "deps", "mountPath": "/deps"}],
            }],
            "containers": [{
                "name": "demo",
                "image": DEMO_IMAGE,
                "command": ["python", "/app/demo_service.py"],
                "env": [{"name": k, "value": str(v)} for k, v in sorted(env.items())]
                + [{"name": "PYTHONPATH", "value": "/deps"}],
                "ports": [{"name": "http", "containerPort": DEMO_PORT}],
                "readinessProbe": {"httpGet": {"path": "/healthz/ready", "port": DEMO_PORT},
                                   "periodSeconds": 2, "failureThreshold": 2},
                "livenessProbe": {"httpGet": {"path": "/healthz/live", "port": DEMO_PORT},
                                  "periodSeconds": 5, "failureThreshold": 3},
                "volumeMounts": [{"name": "code", "mountPath": "/app"}, {"name": "deps", "mountPath": "/deps"}],
            }],
            "volumes": [
                {"name": "code", "configMap": {"name": demo_configmap_name(app)}},
                {"name": "deps", "emptyDir": {}},
            ],
        },
    }


def demo_service_source() -> str:
    from pathlib import Path

    return (Path(__file__).with_name("demo_service.py")).read_text()


# --------------------------------------------------------------------------- the backend


class KubeBackend:
    """``live.runner.Backend`` on a Kubernetes cluster through the official client."""

    source = "live-kube"

    def __init__(
        self, api_client: client.ApiClient, namespace: str = "default", *,
        retry: RetryPolicy = RetryPolicy(), node_port: int | None = None, use_gateway: bool | None = None,
    ) -> None:
        self.api = api_client
        self.core = client.CoreV1Api(api_client)
        self.apps = client.AppsV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)
        self.namespace = namespace
        self.retry = retry
        self.node_port = node_port
        self._use_gateway = use_gateway
        self.plan: ReleasePlan | None = None
        self.spec: StrategySpec | None = None
        self._resource_version: str | None = None
        self._state_seen: str | None = None  # the state annotation as this runner last read or wrote it
        self._bad_command_seen: str | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_kubeconfig(cls, context: str | None = None, namespace: str = "default", **kwargs) -> "KubeBackend":
        return cls(config.new_client_from_config(context=context), namespace, **kwargs)

    # ----------------------------------------------------------------- naming

    @property
    def app(self) -> str:
        assert self.plan is not None, "ensure() first"
        return self.plan.app

    @property
    def kind(self) -> StrategyKind:
        assert self.spec is not None
        return self.spec.strategy.kind

    def deployment_name(self, role: Role) -> str:
        if self.kind is StrategyKind.ROLLING:
            return self.app
        assert self.plan is not None
        return f"{self.app}-{self.plan.version(role).name}"

    @property
    def routed(self) -> bool:
        """Canary with exact weights through a Gateway API HTTPRoute."""
        if self.kind is not StrategyKind.CANARY:
            return False
        canary = self.spec.strategy.canary
        if canary is None or canary.traffic_routing is not TrafficRouting.ROUTER:
            return False
        if self._use_gateway is None:
            self._use_gateway = self._has_gateway_api()
        if not self._use_gateway:
            raise KubeError(
                "the strategy asks for trafficRouting: router, which on Kubernetes needs the Gateway API "
                f"(group {GATEWAY_GROUP}, HTTPRoute); this cluster does not serve it. Install the Gateway API "
                "CRDs or use a canary without trafficRouting (weights follow replica counts)."
            )
        return True

    def _has_gateway_api(self) -> bool:
        groups = retrying(lambda: client.ApisApi(self.api).get_api_versions(), self.retry, "list API groups")
        return any(g.name == GATEWAY_GROUP for g in groups.groups or [])

    # ----------------------------------------------------------------- ensure

    def attach(self, plan: ReleasePlan, spec: StrategySpec) -> None:
        self.plan, self.spec = plan, spec

    def ensure(self, plan: ReleasePlan, spec: StrategySpec) -> None:
        self.attach(plan, spec)
        owner = self._ensure_entry_service()
        self._ensure_configmap(owner)
        if self.kind is StrategyKind.ROLLING:
            self._ensure_deployment(self.app, plan.stable, plan.replicas, owner, rolling=True)
        else:
            self._ensure_deployment(self.deployment_name(Role.STABLE), plan.stable, plan.replicas, owner)
            # The canary Deployment exists from the start at 0 replicas (its scale is the
            # controller's to set); on a resume its current scale is kept.
            self._ensure_deployment(self.deployment_name(Role.CANARY), plan.canary, 0, owner)
        if self.kind is StrategyKind.BLUE_GREEN:
            preview_port = None if self.node_port is None else self.node_port + 1
            self._ensure_service(f"{self.app}-preview", {VERSION_LABEL: NO_VERSION}, owner, node_port=preview_port)
        if self.routed:
            for role in Role:
                self._ensure_service(f"{self.app}-{role.value}", {VERSION_LABEL: plan.version(role).name}, owner)
            self._ensure_route(owner)

    def _meta(self, name: str, owner: dict | None = None, annotations: dict | None = None) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": name, "namespace": self.namespace,
                                "labels": {**MANAGED_BY, APP_LABEL: self.app}}
        if owner is not None:
            meta["ownerReferences"] = [owner]
        if annotations:
            meta["annotations"] = annotations
        return meta

    def _ensure_entry_service(self) -> dict[str, Any]:
        assert self.plan is not None
        if self.kind is StrategyKind.BLUE_GREEN:
            selector = {"app": self.app, VERSION_LABEL: self.plan.stable.name}
        else:
            selector = {"app": self.app}
        service = self._read(lambda: self.core.read_namespaced_service(self.app, self.namespace), f"read Service {self.app}")
        if service is None:
            body = self._service_body(self.app, selector, None, {STABLE_ANNOTATION: self.plan.stable.name})
            if self.node_port is not None:
                body["spec"]["type"] = "NodePort"
                body["spec"]["ports"][0]["nodePort"] = self.node_port
            service = self._create(lambda: self.core.create_namespaced_service(self.namespace, body), f"create Service {self.app}")
            if service is None:  # created meanwhile by another runner
                service = retrying(lambda: self.core.read_namespaced_service(self.app, self.namespace), self.retry, "read Service")
        else:
            if service.metadata.deletion_timestamp is not None:
                raise KubeError(f"Service {self.namespace}/{self.app} is being deleted (with everything it owns); "
                                "run again once it is gone")
            labels = service.metadata.labels or {}
            if labels.get("app.kubernetes.io/managed-by") != "rolloutlab":
                raise KubeError(f"Service {self.namespace}/{self.app} exists and is not managed by rolloutlab; "
                                "choose another app name")
        return {"apiVersion": "v1", "kind": "Service", "name": self.app, "uid": service.metadata.uid,
                "blockOwnerDeletion": False}

    def _service_body(self, name: str, selector: dict, owner: dict | None, annotations: dict | None = None) -> dict:
        return {
            "apiVersion": "v1", "kind": "Service", "metadata": self._meta(name, owner, annotations),
            "spec": {"selector": selector, "ports": [{"name": "http", "port": 80, "targetPort": DEMO_PORT}]},
        }

    def _ensure_service(self, name: str, selector: dict, owner: dict, node_port: int | None = None) -> None:
        """Create a Service if missing; an existing one keeps its selector (it may have
        been switched by the controller before a restart)."""
        existing = self._read(lambda: self.core.read_namespaced_service(name, self.namespace), f"read Service {name}")
        if existing is None:
            body = self._service_body(name, {"app": self.app, **selector}, owner)
            if node_port is not None:
                body["spec"]["type"] = "NodePort"
                body["spec"]["ports"][0]["nodePort"] = node_port
            self._create(lambda: self.core.create_namespaced_service(self.namespace, body), f"create Service {name}")

    def _ensure_configmap(self, owner: dict) -> None:
        name = demo_configmap_name(self.app)
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": self._meta(name, owner),
                "data": {"demo_service.py": demo_service_source()}}
        existing = self._read(lambda: self.core.read_namespaced_config_map(name, self.namespace), f"read ConfigMap {name}")
        if existing is None:
            self._create(lambda: self.core.create_namespaced_config_map(self.namespace, body), f"create ConfigMap {name}")
        elif (existing.data or {}).get("demo_service.py") != body["data"]["demo_service.py"]:
            retrying(lambda: self.core.patch_namespaced_config_map(name, self.namespace, {"data": body["data"]}),
                     self.retry, f"update ConfigMap {name}")

    def _ensure_deployment(self, name: str, version: LiveVersion, replicas: int, owner: dict, *,
                           rolling: bool = False) -> None:
        existing = self._read(lambda: self.apps.read_namespaced_deployment(name, self.namespace), f"read Deployment {name}")
        if existing is not None:
            return  # its scale and template are the controller's (or the rollout's) by now
        template = demo_pod_template(self.app, version)
        spec: dict[str, Any] = {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": self.app, APP_LABEL: self.app}
                         if rolling else {"app": self.app, VERSION_LABEL: version.name}},
            "template": template,
            "revisionHistoryLimit": 2,
        }
        if rolling:
            rs = self.spec.strategy.rolling
            spec["strategy"] = {"type": "RollingUpdate",
                                "rollingUpdate": {"maxSurge": rs.max_surge, "maxUnavailable": rs.max_unavailable}}
            spec["progressDeadlineSeconds"] = int(max(1, self.spec.progress_deadline_seconds))
        body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": self._meta(name, owner), "spec": spec}
        self._create(lambda: self.apps.create_namespaced_deployment(self.namespace, body), f"create Deployment {name}")

    def _ensure_route(self, owner: dict) -> None:
        body = {
            "apiVersion": f"{GATEWAY_GROUP}/v1", "kind": "HTTPRoute", "metadata": self._meta(self.app, owner),
            "spec": {"rules": [{"backendRefs": [
                {"name": f"{self.app}-stable", "port": 80, "weight": 100},
                {"name": f"{self.app}-canary", "port": 80, "weight": 0},
            ]}]},
        }
        existing = self._read(lambda: self._get_route(), f"read HTTPRoute {self.app}")
        if existing is None:
            self._create(lambda: self.custom.create_namespaced_custom_object(
                GATEWAY_GROUP, "v1", self.namespace, "httproutes", body), f"create HTTPRoute {self.app}")

    def _get_route(self) -> dict:
        return self.custom.get_namespaced_custom_object(GATEWAY_GROUP, "v1", self.namespace, "httproutes", self.app)

    def _read(self, call: Callable[[], T], what: str) -> T | None:
        def attempt():
            try:
                return call()
            except ApiException as error:
                if error.status == 404:
                    return None
                raise
        return retrying(attempt, self.retry, what)

    def _create(self, call: Callable[[], T], what: str) -> T | None:
        def attempt():
            try:
                return call()
            except ApiException as error:
                message = _api_message(error)
                if error.status == 409 and "being deleted" in message:
                    raise KubeError(f"{what}: {message}; run again once it is gone") from None
                if error.status == 409 and "already exists" in message:
                    return None  # an earlier attempt (or a previous runner) created it
                raise
        return retrying(attempt, self.retry, what)

    # ----------------------------------------------------------------- observe

    def observe(self) -> tuple[VersionObservation, VersionObservation]:
        if self.kind is StrategyKind.ROLLING:
            return self._observe_rolling()
        return tuple(self._observe_deployment(self.deployment_name(role)) for role in (Role.STABLE, Role.CANARY))

    def _observe_deployment(self, name: str) -> VersionObservation:
        d = self._read(lambda: self.apps.read_namespaced_deployment(name, self.namespace), f"read Deployment {name}")
        if d is None:
            return VersionObservation()
        # Ready counted from pods, not from the Deployment's status: the status lags the
        # pods by one controller sync, and a terminating pod must not count as serving.
        ready = self._ready_pods({VERSION_LABEL: self._version_of(d)})
        return VersionObservation(d.spec.replicas or 0, ready, ready)

    def _version_of(self, deployment) -> str:
        return deployment.spec.template.metadata.labels[VERSION_LABEL]

    def _ready_pods(self, labels: Mapping[str, str]) -> int:
        selector = ",".join(f"{k}={v}" for k, v in {"app": self.app, **labels}.items())
        pods = retrying(lambda: self.core.list_namespaced_pod(self.namespace, label_selector=selector),
                        self.retry, "list pods")
        return sum(1 for p in pods.items if _pod_ready(p))

    def _observe_rolling(self) -> tuple[VersionObservation, VersionObservation]:
        assert self.plan is not None
        selector = f"app={self.app},{APP_LABEL}={self.app}"
        sets = retrying(lambda: self.apps.list_namespaced_replica_set(self.namespace, label_selector=selector),
                        self.retry, "list ReplicaSets")
        counts = {Role.STABLE: [0, 0, 0], Role.CANARY: [0, 0, 0]}
        for rs in sets.items:
            version = (rs.spec.template.metadata.labels or {}).get(VERSION_LABEL)
            role = {self.plan.stable.name: Role.STABLE, self.plan.canary.name: Role.CANARY}.get(version)
            if role is None:
                continue
            c = counts[role]
            c[0] += rs.spec.replicas or 0
            c[1] += rs.status.ready_replicas or 0
            c[2] += rs.status.available_replicas or 0
        return (VersionObservation(*counts[Role.STABLE]), VersionObservation(*counts[Role.CANARY]))

    # ----------------------------------------------------------------- apply

    def apply(self, action: Action) -> None:
        assert self.plan is not None
        if isinstance(action, ScaleVersion):
            if self.kind is not StrategyKind.ROLLING:
                self._scale(self.deployment_name(action.role), action.replicas)
            # rolling: the cluster scales the ReplicaSets itself; see follow()
        elif isinstance(action, SetCanaryWeight):
            if self.routed:
                self._set_route_weight(action.weight)
            # without a router the weight follows the replica ratio: nothing to set
        elif isinstance(action, SwitchActive):
            self._select(self.app, self.plan.version(action.role).name)
        elif isinstance(action, SwitchPreview):
            self._select(f"{self.app}-preview", self.plan.version(action.role).name if action.role else NO_VERSION)
        elif isinstance(action, Promote):
            self._annotate({STABLE_ANNOTATION: self.plan.canary.name})
        else:
            raise TypeError(f"the Kubernetes backend cannot apply {action!r}")

    def _scale(self, name: str, replicas: int) -> None:
        retrying(lambda: self.apps.patch_namespaced_deployment_scale(name, self.namespace, {"spec": {"replicas": replicas}}),
                 self.retry, f"scale Deployment {name} to {replicas}")

    def _roll_to(self, role: Role) -> None:
        """Point the rolling Deployment's template at a version (no-op if it already is):
        the cluster's deployment controller does the rolling update itself."""
        assert self.plan is not None
        target = self.plan.version(role)
        d = self._read(lambda: self.apps.read_namespaced_deployment(self.app, self.namespace), f"read Deployment {self.app}")
        if d is None or self._version_of(d) == target.name:
            return
        template = demo_pod_template(self.app, target)
        retrying(lambda: self.apps.patch_namespaced_deployment(self.app, self.namespace, {"spec": {"template": template}}),
                 self.retry, f"set Deployment {self.app} to version {target.name}")

    def _set_route_weight(self, weight: int) -> None:
        def attempt():
            route = self._get_route()
            refs = route["spec"]["rules"][0]["backendRefs"]
            for ref in refs:
                ref["weight"] = weight if ref["name"].endswith("-canary") else 100 - weight
            self.custom.replace_namespaced_custom_object(GATEWAY_GROUP, "v1", self.namespace, "httproutes", self.app, route)
        retrying(attempt, self.retry, f"set HTTPRoute {self.app} canary weight {weight}")

    def _select(self, service: str, version: str) -> None:
        retrying(lambda: self.core.patch_namespaced_service(
            service, self.namespace, {"spec": {"selector": {"app": self.app, VERSION_LABEL: version}}}),
            self.retry, f"point Service {service} at {version}")

    def _annotate(self, annotations: Mapping[str, str | None]) -> None:
        retrying(lambda: self.core.patch_namespaced_service(
            self.app, self.namespace, {"metadata": {"annotations": dict(annotations)}}),
            self.retry, f"annotate Service {self.app}")

    # ----------------------------------------------------------------- after a cycle

    def follow(self, status: RolloutStatus) -> None:
        """Called by the runner after each persisted cycle with the controller's status.

        Rolling: the goal version is the canary, or the stable once aborted (``kubectl
        rollout undo``); the cluster's deployment controller moves the pods. Canary and
        blue-green: once the rollout is final and the losing version has no pods left,
        its Deployment goes (no orphaned objects)."""
        if self.kind is StrategyKind.ROLLING:
            if status.started_at is not None and not status.completed:
                self._roll_to(Role.STABLE if status.aborted else Role.CANARY)
            return
        if not is_final(status):
            return
        loser = Role.CANARY if status.aborted else Role.STABLE
        name = self.deployment_name(loser)
        d = self._read(lambda: self.apps.read_namespaced_deployment(name, self.namespace), f"read Deployment {name}")
        if d is not None and (d.spec.replicas or 0) == 0:
            self._delete(lambda: self.apps.delete_namespaced_deployment(name, self.namespace, _preload_content=False),
                         f"delete Deployment {name}")

    def _delete(self, call: Callable[[], Any], what: str) -> None:
        """Run a call made with ``_preload_content=False`` (its answer, a Status, is not a
        model the client can read); 404 is fine. The raw answer is read and its connection
        handed back to the pool."""
        def attempt():
            try:
                _release(call())
            except ApiException as error:
                if error.status != 404:
                    raise
        retrying(attempt, self.retry, what)

    # ----------------------------------------------------------------- state and commands

    def load_state(self) -> str | None:
        service = self._read(lambda: self.core.read_namespaced_service(self.app, self.namespace), f"read Service {self.app}")
        if service is None:
            return None
        self._state_seen = (service.metadata.annotations or {}).get(STATE_ANNOTATION)
        return self._state_seen

    def save_state(self, state: str) -> None:
        """Write the runner state, but only over the state this runner last read or wrote:
        a second runner on the same rollout must not move it backwards (a compare-and-swap
        on the Service's resourceVersion; a concurrent write by a person, e.g. a command
        annotation, is retried)."""
        def attempt():
            service = self.core.read_namespaced_service(self.app, self.namespace)
            current = (service.metadata.annotations or {}).get(STATE_ANNOTATION)
            if current == state:
                return  # an earlier attempt wrote it and its answer was lost
            if current != self._state_seen:
                raise StateError("another runner is driving this rollout (its state changed under this one); "
                                 "stop one of them")
            body = {"metadata": {"resourceVersion": service.metadata.resource_version,
                                 "annotations": {STATE_ANNOTATION: state}}}
            self.core.patch_namespaced_service(self.app, self.namespace, body)
        retrying(attempt, self.retry, f"save the rollout state on Service {self.app}")
        self._state_seen = state

    def commands(self) -> tuple[CommandRequest, ...]:
        service = self._read(lambda: self.core.read_namespaced_service(self.app, self.namespace), f"read Service {self.app}")
        if service is None:
            return ()
        annotations = service.metadata.annotations or {}
        if annotations.get(STATE_ANNOTATION) != self._state_seen:
            # read every cycle before deciding: a runner whose state is stale stops before
            # it acts on it, not only when it saves (save_state checks again)
            raise StateError("another runner is driving this rollout (its state changed under this one); "
                             "stop one of them")
        text = annotations.get(COMMAND_ANNOTATION)
        if not text:
            return ()
        try:
            return parse_command_annotation(text)
        except KubeError as error:
            # A typo must not stop the rollout (or every restart of it): say it, apply nothing.
            if text != self._bad_command_seen:
                self._bad_command_seen = text
                log.warning("ignored: %s", error)
            return ()

    def leave_command(self, request: CommandRequest) -> None:
        """What ``rolloutlab live --abort`` (or ``kubectl annotate``) does."""
        self._annotate({COMMAND_ANNOTATION: f"{request.id} {request.command.value}"})

    def stable_version(self) -> str | None:
        service = self._read(lambda: self.core.read_namespaced_service(self.app, self.namespace), f"read Service {self.app}")
        return None if service is None else (service.metadata.annotations or {}).get(STABLE_ANNOTATION)

    # ----------------------------------------------------------------- waiting

    def wait(self, seconds: float) -> None:
        """Return after ``seconds`` or at the first change to the app's pods. A dropped or
        expired watch just ends the wait: the next cycle re-reads everything."""
        if seconds <= 0:
            return
        w = watch.Watch()
        # The server ends a watch after whole seconds only; the read timeout ends it on time.
        kwargs: dict[str, Any] = {"label_selector": f"app={self.app}", "timeout_seconds": max(1, int(seconds + 0.999)),
                                  "_request_timeout": (5.0, seconds)}
        if self._resource_version:
            kwargs["resource_version"] = self._resource_version
        try:
            for event in w.stream(self.core.list_namespaced_pod, self.namespace, **kwargs):
                if not isinstance(event, dict):
                    continue  # a blank or undecodable line of the stream
                obj = event.get("object")
                if event.get("type") == "ERROR":
                    self._resource_version = None  # 410 Gone: start again from a fresh list
                    break
                rv = getattr(getattr(obj, "metadata", None), "resource_version", None)
                if rv:
                    self._resource_version = rv
                break  # something changed: observe now
        except urllib3.exceptions.ReadTimeoutError:
            pass  # nothing happened within ``seconds``: the normal end of a wait
        except ApiException as error:
            if error.status == 410:
                self._resource_version = None
            time.sleep(min(seconds, 0.2))
        except (urllib3.exceptions.HTTPError, ConnectionError, OSError, ValueError):
            time.sleep(min(seconds, 0.2))  # dropped watch; the next wait reconnects
        finally:
            w.stop()

    # ----------------------------------------------------------------- chaos

    def kill_pods(self, role: Role | None, count: int) -> list[str]:
        """Kill pods (``kubectl delete pod``): of one version, or of any when role is None."""
        assert self.plan is not None
        labels = {} if role is None else {VERSION_LABEL: self.plan.version(role).name}
        selector = ",".join(f"{k}={v}" for k, v in {"app": self.app, **labels}.items())
        pods = retrying(lambda: self.core.list_namespaced_pod(self.namespace, label_selector=selector), self.retry, "list pods")
        victims = sorted((p for p in pods.items if p.metadata.deletion_timestamp is None), key=lambda p: p.metadata.name)[:count]
        for pod in victims:
            self._delete(lambda p=pod: self.core.delete_namespaced_pod(
                p.metadata.name, self.namespace, grace_period_seconds=0, _preload_content=False),
                f"delete pod {pod.metadata.name}")
        return [p.metadata.name for p in victims]

    def evict_node(self, node: str) -> list[str]:
        """Drain a node: cordon it and evict the app's pods on it through the Eviction API
        (policy/v1, or policy/v1beta1 on clusters older than 1.22)."""
        retrying(lambda: self.core.patch_node(node, {"spec": {"unschedulable": True}}), self.retry, f"cordon node {node}")
        pods = retrying(lambda: self.core.list_namespaced_pod(
            self.namespace, label_selector=f"app={self.app}", field_selector=f"spec.nodeName={node}"),
            self.retry, "list pods on node")
        evicted = []
        for pod in pods.items:
            if pod.metadata.deletion_timestamp is None:
                self._evict(pod.metadata.name)
                evicted.append(pod.metadata.name)
        return evicted

    def _evict(self, name: str) -> None:
        def attempt():
            for version in ("policy/v1", "policy/v1beta1"):
                body = {"apiVersion": version, "kind": "Eviction",
                        "metadata": {"name": name, "namespace": self.namespace}}
                try:
                    _release(self.core.create_namespaced_pod_eviction(name, self.namespace, body,
                                                                      _preload_content=False))
                    return
                except ApiException as error:
                    if error.status == 404 and "not found" in _api_message(error).lower() and "pod" in _api_message(error).lower():
                        return  # already gone
                    if error.status not in (400, 404, 422) or version == "policy/v1beta1":
                        raise
        retrying(attempt, self.retry, f"evict pod {name}")

    def lose_node(self, count: int, duration_s: float | None) -> list[str]:
        """A node loss as the scenario says it: the ``count`` nodes running most of the
        app's pods are drained (cordoned, pods evicted and rescheduled elsewhere) and come
        back ``duration_s`` wall seconds later (never, if None)."""
        pods = retrying(lambda: self.core.list_namespaced_pod(self.namespace, label_selector=f"app={self.app}"),
                        self.retry, "list pods")
        load: dict[str, int] = {}
        for pod in pods.items:
            if pod.spec.node_name:
                load[pod.spec.node_name] = load.get(pod.spec.node_name, 0) + 1
        nodes = sorted(load, key=lambda n: (-load[n], n))[:count]
        for node in nodes:
            self.evict_node(node)
        if duration_s is not None and nodes:
            timer = threading.Timer(duration_s, lambda: [self.uncordon(n) for n in nodes])
            timer.daemon = True
            timer.start()
        return nodes

    def uncordon(self, node: str) -> None:
        retrying(lambda: self.core.patch_node(node, {"spec": {"unschedulable": False}}), self.retry, f"uncordon node {node}")

    def set_version_env(self, role: Role, env: Mapping[str, str]) -> None:
        """Roll out a faulty (or fixed) build of a version: patch its pod template's env."""
        assert self.plan is not None
        name = self.deployment_name(role)
        version = self.plan.version(role)
        merged = LiveVersion(version.name, {**version.env, **env})
        template = demo_pod_template(self.app, merged)
        retrying(lambda: self.apps.patch_namespaced_deployment(name, self.namespace, {"spec": {"template": template}}),
                 self.retry, f"set env of Deployment {name}")

    def metrics_source(self) -> "PodMetrics":
        """Analysis data scraped from the pods through the API server (no Prometheus)."""
        return PodMetrics(self)

    # ----------------------------------------------------------------- cleanup

    def objects(self) -> dict[str, list[str]]:
        """Every object of the app by kind (for tests and `rolloutlab live --status`)."""
        selector = f"{APP_LABEL}={self.app}"
        out = {
            "Service": [s.metadata.name for s in self.core.list_namespaced_service(self.namespace, label_selector=selector).items],
            "Deployment": [d.metadata.name for d in self.apps.list_namespaced_deployment(self.namespace, label_selector=selector).items],
            "ConfigMap": [c.metadata.name for c in self.core.list_namespaced_config_map(self.namespace, label_selector=selector).items],
        }
        return {k: sorted(v) for k, v in out.items()}

    def delete_app(self) -> None:
        """Delete the entry Service; the garbage collector removes what it owns."""
        self._delete(lambda: self.core.delete_namespaced_service(
            self.app, self.namespace, propagation_policy="Foreground", _preload_content=False), f"delete Service {self.app}")


def _release(answer) -> None:
    """Read a raw (``_preload_content=False``) answer and give its connection back."""
    if hasattr(answer, "release_conn"):
        answer.read()
        answer.release_conn()


def _pod_ready(pod) -> bool:
    if pod.metadata.deletion_timestamp is not None:
        return False
    for condition in (pod.status.conditions or []) if pod.status else []:
        if condition.type == "Ready":
            return condition.status == "True"
    return False


def parse_command_annotation(text: str) -> tuple[CommandRequest, ...]:
    """The command annotation's value, ``"<id> <verb>"``; anything else raises KubeError."""
    try:
        return (parse_command(text),)
    except ValueError as error:
        raise KubeError(f"annotation {COMMAND_ANNOTATION}: {error}") from None


# --------------------------------------------------------------------------- metrics without Prometheus


def counters_from_exposition(text: str) -> dict[str, Counters]:
    """Per-version cumulative counters from one demo-service pod's ``/metrics`` text:
    ``demo_requests_total{version,code}`` (5xx are errors) and the latency histogram
    ``demo_request_duration_seconds`` (its buckets are LATENCY_BUCKETS_MS in seconds)."""
    from prometheus_client.parser import text_string_to_metric_families

    requests: dict[str, int] = {}
    errors: dict[str, int] = {}
    cumulative: dict[str, dict[float, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            version = sample.labels.get("version")
            if version is None:
                continue
            if sample.name == "demo_requests_total":
                n = int(sample.value)
                requests[version] = requests.get(version, 0) + n
                if sample.labels.get("code", "").startswith("5"):
                    errors[version] = errors.get(version, 0) + n
            elif sample.name == "demo_request_duration_seconds_bucket":
                le = float(sample.labels["le"])
                cumulative.setdefault(version, {})[le] = sample.value
    out = {}
    for version, n in requests.items():
        buckets: tuple[int, ...] = ()
        series = cumulative.get(version)
        if series:
            bounds = [b / 1000.0 for b in LATENCY_BUCKETS_MS]
            running = [int(series.get(b, series.get(float("inf"), 0))) for b in bounds]
            buckets = tuple(running[0:1] + [b - a for a, b in zip(running, running[1:])])
            if min(buckets) < 0 or sum(buckets) != n:
                buckets = ()  # a histogram that does not match the counter is not used
        out[version] = Counters(n, errors.get(version, 0), buckets)
    return out


class PodMetrics:
    """A ``live.runner.MetricsSource`` that scrapes every pod of the app through the API
    server's pod proxy (``/api/v1/namespaces/NS/pods/NAME:8080/proxy/metrics``), so
    analysis works without Prometheus. Counters of pods that went away are kept (a
    version's counter only grows, as Prometheus' ``rate()`` assumes across restarts)."""

    def __init__(self, backend: KubeBackend) -> None:
        self.backend = backend
        self._last: dict[str, dict[str, Counters]] = {}  # pod uid -> its last scrape
        self._base: dict[str, dict[str, Counters]] = {}  # pod uid -> counts of its earlier container lives

    def counters(self) -> dict[str | None, Counters]:
        b = self.backend
        pods = retrying(lambda: b.core.list_namespaced_pod(b.namespace, label_selector=f"app={b.app}"),
                        b.retry, "list pods")
        for pod in pods.items:
            if not _pod_ready(pod):
                continue
            try:
                text = b.core.connect_get_namespaced_pod_proxy_with_path(
                    f"{pod.metadata.name}:{DEMO_PORT}", b.namespace, "metrics", _request_timeout=2)
            except (ApiException, urllib3.exceptions.HTTPError, OSError):
                continue  # this scrape missed; the pod's last counters stand
            uid = pod.metadata.uid
            self._base[uid], self._last[uid] = fold_scrape(
                self._base.get(uid, {}), self._last.get(uid, {}), counters_from_exposition(text))
        return sum_counters([*self._base.values(), *self._last.values()])


def fold_scrape(base: dict, last: dict, scrape: dict) -> tuple[dict, dict]:
    """(base, last) after a new scrape of one pod. A counter that fell means the container
    restarted (same pod, counters from zero): what it had counted moves into ``base``, so
    the pod's total only grows, as Prometheus' ``rate()`` reads a reset."""
    if any(scrape.get(v, Counters()).requests < c.requests for v, c in last.items()):
        base = sum_counters([base, last])
    return base, scrape


def sum_counters(scrapes) -> dict[str | None, Counters]:
    total: dict[str | None, list] = {}
    for scrape in scrapes:
        for version, c in scrape.items():
            t = total.setdefault(version, [0, 0, None])
            t[0] += c.requests
            t[1] += c.errors
            if c.latency_buckets:
                t[2] = c.latency_buckets if t[2] is None else tuple(a + b for a, b in zip(t[2], c.latency_buckets))
    return {v: Counters(r, e, b or ()) for v, (r, e, b) in total.items()}
