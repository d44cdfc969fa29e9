"""Analysis data without Prometheus: every demo-service pod's ``/metrics`` scraped through the
API server's pod proxy, folded into cumulative per-version counters (``PodMetrics``, a
``live.runner.MetricsSource``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import urllib3
from kubernetes.client.exceptions import ApiException

from rolloutlab.live.kube_objects import DEMO_PORT, pod_ready, retrying
from rolloutlab.strategies import LATENCY_BUCKETS_MS, Counters

if TYPE_CHECKING:
    from rolloutlab.live.kube import KubeBackend


def counters_from_exposition(text: str, family: str = "demo") -> dict[str, Counters]:
    """Per-version cumulative counters from one demo-service pod's ``/metrics`` text:
    ``demo_requests_total{version,code}`` (5xx are errors) and the latency histogram
    ``demo_request_duration_seconds`` (its buckets are LATENCY_BUCKETS_MS in seconds).
    ``family="demo_shadow"`` reads the mirrored copies' own pair of metrics instead."""
    from prometheus_client.parser import text_string_to_metric_families

    requests: dict[str, int] = {}
    errors: dict[str, int] = {}
    cumulative: dict[str, dict[float, float]] = {}
    for metric in text_string_to_metric_families(text):
        for sample in metric.samples:
            version = sample.labels.get("version")
            if version is None:
                continue
            if sample.name == f"{family}_requests_total":
                n = int(sample.value)
                requests[version] = requests.get(version, 0) + n
                if sample.labels.get("code", "").startswith("5"):
                    errors[version] = errors.get(version, 0) + n
            elif sample.name == f"{family}_request_duration_seconds_bucket":
                le = float(sample.labels["le"])
                cumulative.setdefault(version, {})[le] = sample.value
    return counters_from_totals(requests, errors, cumulative)


def counters_from_totals(requests: dict, errors: dict, cumulative: dict) -> dict:
    """Counters per key (a version) from its request and error totals and its cumulative
    latency histogram ``{le in seconds: count}`` (Prometheus' ``_bucket`` series), turned
    into the per-bucket counts of LATENCY_BUCKETS_MS."""
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
            if not pod_ready(pod):
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


__all__ = ["PodMetrics", "counters_from_exposition", "counters_from_totals", "fold_scrape", "sum_counters"]
