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

Where things are: this module holds ``KubeBackend`` (objects, observe, apply, state,
commands, waiting); ``live.kube_objects`` the names, the demo pod template and retries;
``live.kube_chaos`` pod kills and node losses; ``live.kube_metrics`` the pods' own
counters scraped without Prometheus.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import urllib3
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from rolloutlab.errors import KubeError, StateError
from rolloutlab.live import kube_routes
from rolloutlab.live.kube_chaos import KubeChaos
from rolloutlab.live.kube_metrics import PodMetrics
from rolloutlab.live.kube_objects import (
    APP_LABEL,
    COMMAND_ANNOTATION,
    DEMO_PORT,
    GATEWAY_GROUP,
    IMAGE_CONFIGMAP,
    MANAGED_BY,
    NO_VERSION,
    PUBLIC_IMAGE,
    STABLE_ANNOTATION,
    STATE_ANNOTATION,
    VERSION_LABEL,
    DemoImage,
    RetryPolicy,
    api_message,
    demo_configmap_name,
    demo_pod_template,
    demo_service_files,
    pod_ready,
    release_answer,
    retrying,
)
from rolloutlab.live.runner import LiveVersion, ReleasePlan, is_final, parse_command
from rolloutlab.strategies import (
    Action,
    CommandRequest,
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
from rolloutlab.strategies.actions import RemoveRoute, SetHeaderRoute, SetMirrorRoute
from rolloutlab.strategies.spec import StrategyKind, TrafficRouting

T = TypeVar("T")
log = logging.getLogger("rolloutlab.live.kube")


# --------------------------------------------------------------------------- the backend


class KubeBackend(KubeChaos):
    """``live.runner.Backend`` on a Kubernetes cluster through the official client."""

    source = "live-kube"
    # Service traffic goes through kube-proxy's iptables rules: a pod is chosen per TCP
    # connection, not per request (live.session opens one connection per request).
    balances_connections = True

    def __init__(
        self, api_client: client.ApiClient, namespace: str = "default", *,
        retry: RetryPolicy = RetryPolicy(), node_port: int | None = None, use_gateway: bool | None = None,
        image: DemoImage | None = None, pod_settings: Mapping[str, Any] | None = None,
    ) -> None:
        self.api = api_client
        self.core = client.CoreV1Api(api_client)
        self.apps = client.AppsV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)
        self.namespace = namespace
        self.retry = retry
        self.node_port = node_port
        self._use_gateway = use_gateway
        self._image = image
        self.pod_settings = dict(pod_settings or {})  # probes, grace: kube_objects.scenario_pod_settings
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

    @property
    def image(self) -> DemoImage:
        """The demo image: as given, else the one the cluster says its nodes hold
        (ConfigMap ``IMAGE_CONFIGMAP``), else the public image."""
        if self._image is None:
            namespace, name = IMAGE_CONFIGMAP
            found = self._read(lambda: self.core.read_namespaced_config_map(name, namespace), f"read ConfigMap {name}")
            ref = (found.data or {}).get("image") if found is not None else None
            self._image = DemoImage.preloaded(ref) if ref else PUBLIC_IMAGE
        return self._image

    def pod_template(self, version: LiveVersion) -> dict[str, Any]:
        """The one place a version's pod template is made (create, rolling update, env
        change): every path gets the same image and probes."""
        return demo_pod_template(self.app, version, image=self.image, **self.pod_settings)

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
                "data": demo_service_files()}
        existing = self._read(lambda: self.core.read_namespaced_config_map(name, self.namespace), f"read ConfigMap {name}")
        if existing is None:
            self._create(lambda: self.core.create_namespaced_config_map(self.namespace, body), f"create ConfigMap {name}")
        elif any((existing.data or {}).get(name) != text for name, text in body["data"].items()):
            retrying(lambda: self.core.patch_namespaced_config_map(name, self.namespace, {"data": body["data"]}),
                     self.retry, f"update ConfigMap {name}")

    def _ensure_deployment(self, name: str, version: LiveVersion, replicas: int, owner: dict, *,
                           rolling: bool = False) -> None:
        existing = self._read(lambda: self.apps.read_namespaced_deployment(name, self.namespace), f"read Deployment {name}")
        if existing is not None:
            return  # its scale and template are the controller's (or the rollout's) by now
        template = self.pod_template(version)
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
        body = {"apiVersion": f"{GATEWAY_GROUP}/v1", "kind": "HTTPRoute", "metadata": self._meta(self.app, owner),
                "spec": {"rules": [{"backendRefs": kube_routes.weighted_backends(self.app, 0)}]}}
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
                message = api_message(error)
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
        return sum(1 for p in pods.items if pod_ready(p))

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
                self._change_route(lambda rules: kube_routes.set_weight(rules, self.app, action.weight),
                                   f"set canary weight {action.weight}")
            # without a router the weight follows the replica ratio: nothing to set
        elif isinstance(action, SetHeaderRoute | SetMirrorRoute | RemoveRoute) and self.routed:
            order = [r.name for r in self.spec.strategy.canary.managed_routes]
            self._change_route(lambda rules: kube_routes.apply_route(rules, self.app, action, order),
                               f"{type(action).__name__} {action.name}")
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
        template = self.pod_template(target)
        retrying(lambda: self.apps.patch_namespaced_deployment(self.app, self.namespace, {"spec": {"template": template}}),
                 self.retry, f"set Deployment {self.app} to version {target.name}")

    def _change_route(self, change: Callable[[list], list], what: str) -> None:
        """Read the HTTPRoute, change its rules (``live.kube_routes``), write it back."""
        def attempt():
            route = self._get_route()
            route["spec"]["rules"] = change(route["spec"]["rules"])
            self.custom.replace_namespaced_custom_object(GATEWAY_GROUP, "v1", self.namespace, "httproutes", self.app, route)
        retrying(attempt, self.retry, f"{what} on HTTPRoute {self.app}")

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
                release_answer(call())
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

    # ----------------------------------------------------------------- metrics

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

    def watch_pods(self, app: str | None = None, **kwargs):
        """A watch timing the app's pod starts (``live.kube_events.PodWatch``); start it before ``ensure``."""
        from rolloutlab.live.kube_events import PodWatch
        return PodWatch(self.core, self.namespace, app or self.app, **kwargs)


def parse_command_annotation(text: str) -> tuple[CommandRequest, ...]:
    """The command annotation's value, ``"<id> <verb>"``; anything else raises KubeError."""
    try:
        return (parse_command(text),)
    except ValueError as error:
        raise KubeError(f"annotation {COMMAND_ANNOTATION}: {error}") from None


__all__ = [
    "COMMAND_ANNOTATION", "KubeBackend", "PodMetrics", "RetryPolicy", "STABLE_ANNOTATION", "STATE_ANNOTATION",
    "parse_command_annotation",
]
