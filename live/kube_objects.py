"""What the Kubernetes backend puts in a cluster and how it talks to the API server: the
labels and annotations it owns, the demo service's pod template (public image, code from a
ConfigMap), and calls retried through conflicts, throttling, server errors and dropped
connections (``retrying``)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import urllib3
from kubernetes.client.exceptions import ApiException

from rolloutlab.errors import KubeError
from rolloutlab.live.runner import LiveVersion

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
                raise KubeError(f"{what}: {error.status} {error.reason}: {api_message(error)}") from None
            last = error
        except (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError, OSError) as error:
            last = error
        if delay is None:
            break
        sleep(delay)
    raise KubeError(f"{what}: still failing after {policy.attempts} attempts: {last}")


def api_message(error: ApiException) -> str:
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
    """The demo service's code, for the ConfigMap its pods run it from."""
    return (Path(__file__).with_name("demo_service.py")).read_text()


def release_answer(answer) -> None:
    """Read a raw (``_preload_content=False``) answer and give its connection back."""
    if hasattr(answer, "release_conn"):
        answer.read()
        answer.release_conn()


def pod_ready(pod) -> bool:
    if pod.metadata.deletion_timestamp is not None:
        return False
    for condition in (pod.status.conditions or []) if pod.status else []:
        if condition.type == "Ready":
            return condition.status == "True"
    return False


__all__ = [
    "APP_LABEL", "COMMAND_ANNOTATION", "DEMO_IMAGE", "DEMO_PORT", "GATEWAY_GROUP", "MANAGED_BY", "NO_VERSION",
    "PROMETHEUS_CLIENT", "RETRYABLE_STATUS", "RetryPolicy", "STABLE_ANNOTATION", "STATE_ANNOTATION", "VERSION_LABEL",
    "api_message", "demo_configmap_name", "demo_pod_template", "demo_service_source", "pod_ready", "release_answer",
    "retrying",
]
