"""What the Kubernetes backend puts in a cluster and how it talks to the API server: the
labels and annotations it owns, the demo service's pod template (code from a ConfigMap, on
the public Python image or on an image the cluster's nodes already hold), and calls retried through conflicts, throttling, server errors and dropped
connections (``retrying``)."""

from __future__ import annotations

import json
import math
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
DEMO_PORT = 8080
PROMETHEUS_CLIENT = "prometheus-client==0.21.1"
# The cluster tells which demo image its nodes hold (scripts/kube-cluster.sh writes it):
# a ConfigMap with key `image` in this namespace. Without it, the public image is used.
IMAGE_CONFIGMAP = ("kube-public", "rolloutlab-demo-image")

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


@dataclass(frozen=True)
class DemoImage:
    """The image the demo service's pods run on. The public one (kind, any cluster with a
    registry) lacks prometheus-client, so an init container pip-installs it into a shared
    volume; a preloaded one (``scripts/kube-cluster.sh`` builds it from a Debian rootfs with
    python3-prometheus-client) needs no init container and is never pulled."""

    ref: str = "python:3.12-slim"
    python: str = "python"
    pip_install: bool = True
    pull_policy: str = "IfNotPresent"

    @classmethod
    def preloaded(cls, ref: str) -> "DemoImage":
        return cls(ref=ref, python="python3", pip_install=False, pull_policy="Never")


PUBLIC_IMAGE = DemoImage()


# --------------------------------------------------------------------------- probes in whole seconds


def kube_seconds(seconds: float, minimum: int = 1) -> int:
    """``seconds`` as the whole seconds a pod spec takes: rounded up, so a probe period,
    timeout or grace period is never made shorter than asked, and at least ``minimum``
    (``periodSeconds`` and ``timeoutSeconds`` must be >= 1; ``initialDelaySeconds`` may be
    0). Float noise from a division (3.0000000000000004) is not a second more."""
    if not (math.isfinite(seconds) and seconds >= 0):
        raise ValueError(f"seconds must be a finite number >= 0, got {seconds}")
    return max(minimum, math.ceil(round(seconds, 6)))


@dataclass(frozen=True)
class KubeProbe:
    """One kubelet HTTP probe's timing, in the whole seconds the API takes (``kube_seconds``).

    Kubernetes cannot probe faster than once a second nor time a probe out sooner than a
    second, so a scenario's probe compressed by a live run's time scale is rounded up to
    1 s: the flaky-health-check scenario's 5 s period and 250 ms timeout at time scale 20
    (0.25 s and 12.5 ms of wall time) become ``periodSeconds: 1, timeoutSeconds: 1``. The
    cluster then probes up to ``time_scale`` times less often, in scenario time, than the
    scenario says (readiness is noticed up to a whole second of wall time late), and a
    timeout that was meant to be too tight is not; the local backend, whose kubelet is
    ours, keeps the compressed times (``live.local_pods.Probe.from_readiness``)."""

    period_s: int = 10
    timeout_s: int = 1
    success_threshold: int = 1
    failure_threshold: int = 3
    initial_delay_s: int = 0

    def __post_init__(self) -> None:
        for name in ("period_s", "timeout_s", "success_threshold", "failure_threshold", "initial_delay_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be a whole number, got {value!r} (see kube_seconds)")
            if value < (0 if name == "initial_delay_s" else 1):
                raise ValueError(f"{name} must be >= {0 if name == 'initial_delay_s' else 1}, got {value}")

    @classmethod
    def from_readiness(cls, readiness: Any, time_scale: float = 1.0) -> KubeProbe:
        """A scenario's ``ReadinessProbe`` (scenarios.schema), its times divided by the time
        scale and rounded up to whole seconds (at least 1; the thresholds unchanged)."""
        if not time_scale > 0:
            raise ValueError(f"time_scale must be > 0, got {time_scale}")
        return cls(
            period_s=kube_seconds(readiness.period / time_scale),
            timeout_s=kube_seconds(readiness.timeout / time_scale),
            success_threshold=readiness.success_threshold,
            failure_threshold=readiness.failure_threshold,
            initial_delay_s=kube_seconds(readiness.initial_delay / time_scale, minimum=0),
        )

    def spec(self, path: str) -> dict[str, Any]:
        """The container's probe object: an HTTP GET of ``path`` on the demo port."""
        return {"httpGet": {"path": path, "port": DEMO_PORT}, "initialDelaySeconds": self.initial_delay_s,
                "periodSeconds": self.period_s, "timeoutSeconds": self.timeout_s,
                "successThreshold": self.success_threshold, "failureThreshold": self.failure_threshold}


# The pod template's probes when nobody says otherwise (timeout and success threshold are
# the API's defaults).
DEFAULT_READINESS = KubeProbe(period_s=2, failure_threshold=2)
DEFAULT_LIVENESS = KubeProbe(period_s=5, failure_threshold=3)
DEFAULT_TERMINATION_GRACE_S = 30


def scenario_pod_settings(pod_timing: Any, time_scale: float = 1.0) -> dict[str, Any]:
    """``demo_pod_template``'s keyword arguments for a scenario's ``PodTiming``: its readiness
    probe and termination grace divided by the time scale, rounded up to whole seconds
    (``KubeProbe``). Scenarios have no liveness probe: the default one stays."""
    return {"readiness": KubeProbe.from_readiness(pod_timing.readiness, time_scale),
            "termination_grace_s": kube_seconds(pod_timing.termination_grace / time_scale)}


def demo_pod_template(app: str, version: LiveVersion, extra_labels: Mapping[str, str] | None = None,
                      image: DemoImage = PUBLIC_IMAGE, *, readiness: KubeProbe = DEFAULT_READINESS,
                      liveness: KubeProbe = DEFAULT_LIVENESS,
                      termination_grace_s: int = DEFAULT_TERMINATION_GRACE_S) -> dict[str, Any]:
    """The demo service's pod: code from a ConfigMap, HTTP readiness and liveness probes on
    the service's own health endpoints (``/healthz/ready``, ``/healthz/live``) with the
    given timing (whole seconds: ``KubeProbe``, ``scenario_pod_settings``), SIGKILL
    ``termination_grace_s`` seconds after the SIGTERM that starts the service's drain."""
    if liveness.success_threshold != 1:
        raise ValueError("a liveness probe's success threshold must be 1 (the API refuses others)")
    if isinstance(termination_grace_s, bool) or not isinstance(termination_grace_s, int):
        raise TypeError(f"termination_grace_s must be a whole number, got {termination_grace_s!r}")
    if termination_grace_s < 0:
        raise ValueError(f"termination_grace_s must be >= 0, got {termination_grace_s}")
    env = {"DEMO_VERSION": version.name, "DEMO_PORT": str(DEMO_PORT), **version.env}
    labels = {"app": app, APP_LABEL: app, VERSION_LABEL: version.name, **(extra_labels or {})}
    container: dict[str, Any] = {
        "name": "demo",
        "image": image.ref,
        "imagePullPolicy": image.pull_policy,
        "command": [image.python, "/app/demo_service.py"],
        "env": [{"name": k, "value": str(v)} for k, v in sorted(env.items())],
        "ports": [{"name": "http", "containerPort": DEMO_PORT}],
        "readinessProbe": readiness.spec("/healthz/ready"),
        "livenessProbe": liveness.spec("/healthz/live"),
        "volumeMounts": [{"name": "code", "mountPath": "/app"}],
    }
    spec: dict[str, Any] = {
        "terminationGracePeriodSeconds": termination_grace_s,
        "containers": [container],
        "volumes": [{"name": "code", "configMap": {"name": demo_configmap_name(app)}}],
    }
    if image.pip_install:
        spec["initContainers"] = [{
            "name": "deps",
            "image": image.ref,
            "imagePullPolicy": image.pull_policy,
            "command": ["pip", "install", "--no-cache-dir", "--target", "/deps", PROMETHEUS_CLIENT],
            "volumeMounts": [{"name": "deps", "mountPath": "/deps"}],
        }]
        container["env"].append({"name": "PYTHONPATH", "value": "/deps"})
        container["volumeMounts"].append({"name": "deps", "mountPath": "/deps"})
        spec["volumes"].append({"name": "deps", "emptyDir": {}})
    return {"metadata": {"labels": labels}, "spec": spec}


DEMO_FILES = ("demo_service.py", "demo_faults.py")  # the demo service and the sibling it imports


def demo_service_files() -> dict[str, str]:
    """The demo service's code, file name -> text, for the ConfigMap its pods run it from
    (``python /app/demo_service.py`` imports its siblings from /app)."""
    return {name: Path(__file__).with_name(name).read_text() for name in DEMO_FILES}


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
    "APP_LABEL", "COMMAND_ANNOTATION", "DEFAULT_LIVENESS", "DEFAULT_READINESS", "DEFAULT_TERMINATION_GRACE_S",
    "DEMO_PORT", "DemoImage", "KubeProbe", "IMAGE_CONFIGMAP", "PUBLIC_IMAGE", "GATEWAY_GROUP", "MANAGED_BY", "NO_VERSION",
    "PROMETHEUS_CLIENT", "RETRYABLE_STATUS", "RetryPolicy", "STABLE_ANNOTATION", "STATE_ANNOTATION", "VERSION_LABEL",
    "DEMO_FILES", "api_message", "demo_configmap_name", "demo_pod_template", "demo_service_files", "pod_ready", "release_answer",
    "kube_seconds", "retrying", "scenario_pod_settings",
]
