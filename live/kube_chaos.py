"""Chaos on a Kubernetes app, as a scenario's faults ask for it: pods killed (``kubectl
delete pod``), nodes drained through the Eviction API and given back later, a version's
build changed under it.

``KubeChaos`` is a part of ``live.kube.KubeBackend`` kept in its own file (a mixin): it
uses the backend's API clients (``core``, ``apps``), namespace, retry policy and plan.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from kubernetes.client.exceptions import ApiException

from rolloutlab.live.kube_objects import VERSION_LABEL, api_message, release_answer, retrying
from rolloutlab.live.runner import LiveVersion
from rolloutlab.strategies import Role


class KubeChaos:
    """Pod kills, node losses and env changes on the backend's app (see the module docstring)."""

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
                    release_answer(self.core.create_namespaced_pod_eviction(name, self.namespace, body,
                                                                      _preload_content=False))
                    return
                except ApiException as error:
                    if error.status == 404 and "not found" in api_message(error).lower() and "pod" in api_message(error).lower():
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
        template = self.pod_template(merged)
        retrying(lambda: self.apps.patch_namespaced_deployment(name, self.namespace, {"spec": {"template": template}}),
                 self.retry, f"set env of Deployment {name}")


__all__ = ["KubeChaos"]
