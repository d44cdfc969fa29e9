"""Analysis data from a real Prometheus: ``--metrics prometheus`` on the local backend.

``PrometheusMetrics`` is a ``live.runner.MetricsSource``. It starts Debian's Prometheus
(``live.prometheus.PrometheusServer``) with one scrape job, ``demo``, fed by file-based
service discovery: a thread rewrites the job's targets file from the backend's pods
(``backend.pods()``: each pod's port, labelled ``pod=<name>``) whenever a pod comes or goes,
so Prometheus scrapes every demo-service pod's ``GET /metrics`` (``live/demo_service.py``,
"Metrics"). Everything the controller then reads comes from PromQL answered by that server:

- ``counters()``: one instant query, ``{__name__=~"demo_requests_total|demo_request_
  duration_seconds_bucket", job="demo"}``, read in one piece (so the request counter and
  the histogram come from the same scrape), folded per pod into cumulative per-version
  counters. A pod's series that Prometheus stops returning (the pod went, its target with
  it) keep their last values, and a counter that fell is a restarted container, folded in
  as ``rate()`` reads a reset (``live.kube_metrics.fold_scrape``): every judge, the
  counter-based ones (Mann-Whitney, sequential) included, reads what Prometheus answered.
- ``queried(status, now)``: for each threshold metric due now
  (``strategies.analysis.measurements_due``), its own ``query`` filled in
  (``strategies.promql.render_query``: the metric's ``args``, ``{{ target }}`` = the app,
  ``{{ namespace }}``, ``{{ interval }}`` = the metric's interval on the wall clock) or,
  for a metric without one, the default PromQL for its signal over the demo service's
  metric names (``default_query``); the answer goes into ``Observation.queried`` and
  analysis judges it. Every query and answer is kept in ``records``.

Time. The controller's clock runs ``time_scale`` times faster than Prometheus': a metric
interval of 30 scenario seconds at 10x is a ``[3s]`` range. The scrape interval is a tenth
of the shortest metric interval on the wall clock, between 100 ms and 1 s, so each window
holds several samples. Staleness this adds: a value is up to one scrape interval old when
queried, and a new pod is scraped only once Prometheus' discovery manager passes its target
on, about 5 wall seconds after the file changes (``live.prometheus``): requests a new pod
served before then arrive in its first scrape, all in one window.

Feature-flag releases, mirrors and baseline deployments read counters Prometheus does not
split here (per flag answer, shadow copies, baseline pods): they are refused, said plainly.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rolloutlab.errors import LiveUnsupported, PrometheusQueryError
from rolloutlab.live.kube_metrics import counters_from_totals, fold_scrape, sum_counters
from rolloutlab.live.prometheus import PROMETHEUS, PrometheusClient, PrometheusServer
from rolloutlab.live.runner import ReleasePlan
from rolloutlab.strategies import Counters, RolloutStatus, StrategySpec
from rolloutlab.strategies.analysis import measurements_due
from rolloutlab.strategies.analysis_spec import Metric, Signal
from rolloutlab.strategies.promql import QueryContext, QueryTemplateError, go_duration, render_query

JOB = "demo"
REQUESTS = "demo_requests_total"
LATENCY_BUCKETS = "demo_request_duration_seconds_bucket"
COUNTERS_QUERY = f'{{__name__=~"{REQUESTS}|{LATENCY_BUCKETS}", job="{JOB}"}}'
"""The one query ``counters()`` runs: every request counter and latency bucket of every pod."""

MIN_SCRAPE_S, MAX_SCRAPE_S = 0.1, 1.0


@dataclass(frozen=True)
class QueryRecord:
    """One analysis query as it ran: when (scenario seconds), for which metric, the PromQL
    sent and Prometheus' answer (None: no series)."""

    at: float
    metric: str
    promql: str
    answer: float | None


def default_query(metric: Metric, version: str, window: str, time_scale: float) -> str:
    """The PromQL for a metric without a query of its own, in its signal's unit, over the
    demo service's metrics of ``version`` in the last ``window`` (a Prometheus range).

    errorRate: 5xx / all requests (``or vector(0)``: no 5xx series yet is no error, not no
    data; no requests at all is still no series); latency: ``histogram_quantile`` in
    milliseconds; throughput: requests per scenario second (the wall rate / time scale)."""
    selector = f'job="{JOB}", version="{version}"'
    if metric.signal is Signal.ERROR_RATE:
        return (f'(sum(rate({REQUESTS}{{{selector}, code=~"5.."}}[{window}])) or vector(0))'
                f' / sum(rate({REQUESTS}{{{selector}}}[{window}]))')
    if metric.signal is Signal.LATENCY:
        return (f"histogram_quantile({metric.quantile:g}, sum by (le) "
                f"(rate({LATENCY_BUCKETS}{{{selector}}}[{window}]))) * 1000")
    if metric.signal is Signal.THROUGHPUT:
        return f"sum(rate({REQUESTS}{{{selector}}}[{window}])) / {time_scale:g}"
    raise LiveUnsupported(f"metric {metric.name!r}: no default PromQL for signal {metric.signal.value}")


def scrape_interval_for(spec: StrategySpec, time_scale: float) -> float:
    """A tenth of the shortest metric interval on the wall clock, within 100 ms .. 1 s."""
    intervals = [m.interval / time_scale for t in spec.analysis_templates for m in t.metrics]
    shortest = min(intervals, default=10.0)
    return round(min(MAX_SCRAPE_S, max(MIN_SCRAPE_S, shortest / 10.0)), 3)


def check_supported(spec: StrategySpec) -> None:
    """LiveUnsupported for what this source cannot measure yet."""
    strategy = spec.strategy
    canary = strategy.canary
    if strategy.feature_flag is not None:
        raise LiveUnsupported("--metrics prometheus: a feature flag's analysis compares users by the flag's answer, "
                              "which the demo service's metrics do not carry; use --metrics loadgen")
    if canary is not None and canary.baseline:
        raise LiveUnsupported("--metrics prometheus: a canary with a baseline deployment is not measured through "
                              "Prometheus yet; use --metrics loadgen")
    if canary is not None and any(step.set_mirror_route is not None for step in canary.steps):
        raise LiveUnsupported("--metrics prometheus: mirrored copies are not measured through Prometheus yet; "
                              "use --metrics loadgen")


class PrometheusMetrics:
    """Counters and metric answers from a Prometheus this source starts (module docstring).

    ``backend``: anything with ``pods()`` listing ``PodInfo`` (name, port): the local
    backend. Use as a context manager, or ``start()`` / ``close()``."""

    def __init__(self, backend: Any, spec: StrategySpec, plan: ReleasePlan, time_scale: float, *,
                 namespace: str = "default", scrape_interval: float | None = None, binary: str = PROMETHEUS,
                 refresh_s: float = 0.2) -> None:
        check_supported(spec)
        self.backend, self.spec, self.plan, self.time_scale = backend, spec, plan, time_scale
        self.namespace = namespace
        self.metrics = _metrics_by_name(spec)
        self.server = PrometheusServer(jobs=(JOB,), binary=binary,
                                       scrape_interval=scrape_interval or scrape_interval_for(spec, time_scale))
        self.refresh_s = refresh_s
        self.records: list[QueryRecord] = []
        self.counter_queries = 0
        self._targets: list[tuple[str, dict[str, str]]] | None = None
        self._base: dict[str, dict] = {}
        self._last: dict[str, dict] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sync_error: BaseException | None = None

    # ----------------------------------------------------------------- lifecycle

    def __enter__(self) -> "PrometheusMetrics":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(self) -> "PrometheusMetrics":
        self.server.start()
        self.sync_targets()
        self._thread = threading.Thread(target=self._follow_pods, name="prometheus-targets", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.server.close()

    @property
    def client(self) -> PrometheusClient:
        return self.server.client

    def install(self, runner: Any, timeout_s: float = 30.0) -> None:
        """Make this the runner's metrics source once Prometheus scrapes the stable
        version's pods (a ``run_live`` ``before_run`` hook): the rollout starts with data."""
        self.wait_for_version(self.plan.stable.name, timeout_s)
        runner.metrics = self

    # ----------------------------------------------------------------- targets (file SD)

    def sync_targets(self) -> bool:
        """Rewrite the targets file if the pods changed; whether it was rewritten."""
        targets = sorted((f"127.0.0.1:{p.port}", {"pod": p.name}) for p in self.backend.pods() if p.port)
        if targets == self._targets:
            return False
        self.server.write_targets(JOB, targets)
        self._targets = targets
        return True

    def _follow_pods(self) -> None:
        while not self._stop.wait(self.refresh_s):
            try:
                self.sync_targets()
            except Exception as error:  # noqa: BLE001 - said on the next counters() call, never lost
                self._sync_error = error
                return

    def wait_for_version(self, version: str, timeout_s: float) -> None:
        """Block until Prometheus answers request counters of ``version``; raise if it never does."""
        deadline = time.monotonic() + timeout_s
        query = f'count({REQUESTS}{{job="{JOB}", version="{version}"}})'
        while not self.client.query(query):
            if time.monotonic() >= deadline:
                raise PrometheusQueryError(
                    f"Prometheus at {self.server.url} scraped no pod of version {version} within {timeout_s:g}s "
                    f"(query {query!r} returned no series; its targets: {self._target_health()})")
            time.sleep(0.2)

    def _target_health(self) -> str:
        targets = self.server.active_targets()
        return ", ".join(f"{t['labels'].get('pod', '?')}={t['health']}" for t in targets) or "none"

    # ----------------------------------------------------------------- the MetricsSource

    def counters(self) -> Mapping[str | None, Counters]:
        if self._sync_error is not None:
            raise RuntimeError(f"following the pods for Prometheus' targets failed: {self._sync_error}")
        samples = self.client.query(COUNTERS_QUERY)
        self.counter_queries += 1
        per_pod: dict[str, tuple[dict, dict, dict]] = {}
        for s in samples:
            pod, version = s.labels.get("pod"), s.labels.get("version")
            if pod is None or version is None or not math.isfinite(s.value):
                continue
            requests, errors, cumulative = per_pod.setdefault(pod, ({}, {}, {}))
            if s.labels.get("__name__") == REQUESTS:
                n = int(s.value)
                requests[version] = requests.get(version, 0) + n
                if s.labels.get("code", "").startswith("5"):
                    errors[version] = errors.get(version, 0) + n
            else:
                le = float(s.labels.get("le", "nan"))
                histogram = cumulative.setdefault(version, {})
                histogram[le] = histogram.get(le, 0.0) + s.value
        for pod, totals in per_pod.items():
            self._base[pod], self._last[pod] = fold_scrape(self._base.get(pod, {}), self._last.get(pod, {}),
                                                           counters_from_totals(*totals))
        return sum_counters([*self._base.values(), *self._last.values()])

    def queried(self, status: RolloutStatus, now: float) -> tuple[tuple[str, float | None], ...]:
        """Each due threshold metric's query and Prometheus' answer (``Observation.queried``)."""
        out: dict[str, float | None] = {}
        for run in status.analyses:
            for name in measurements_due(run, now):
                metric = self.metrics.get(name)
                if name in out or metric is None or metric.judge.kind != "threshold":
                    continue  # counter-based judges read counters(); answered already this cycle
                promql = self.promql(metric)
                answer = self.client.value(promql)
                self.records.append(QueryRecord(now, name, promql, answer))
                out[name] = answer
        return tuple(out.items())

    def promql(self, metric: Metric) -> str:
        """The PromQL a measurement of ``metric`` sends: its own query filled in, or the default."""
        window = go_duration(metric.interval / self.time_scale)
        if metric.query is None:
            return default_query(metric, self.plan.canary.name, window, self.time_scale)
        context = QueryContext(target=self.plan.app, namespace=self.namespace, name=self.plan.app,
                               service=self.plan.app, interval=window)
        try:
            return render_query(metric.query, metric.args, context)
        except QueryTemplateError as error:
            raise PrometheusQueryError(f"metric {metric.name!r}: {error}") from None

    # ----------------------------------------------------------------- after the run

    @property
    def answered(self) -> int:
        """PromQL queries Prometheus answered in this run (counters and analysis)."""
        return self.counter_queries + len(self.records)

    def check_answered(self) -> None:
        """PrometheusQueryError for a metric whose query returned no series in the whole run."""
        check_answered(self.records, f" (the demo service's metrics: {REQUESTS}, {LATENCY_BUCKETS}; labels "
                                     "version, code, le, pod)")

    def summary(self) -> dict[str, Any]:
        """What the run's timeline records about Prometheus: the query count and every analysis query."""
        return {"prometheus_queries": self.answered, "promql": [
            {"at": r.at, "metric": r.metric, "query": r.promql, "answer": _json_number(r.answer)}
            for r in self.records]}


def check_answered(records: Sequence[QueryRecord], where: str = "") -> None:
    """PrometheusQueryError for a metric whose query returned no series at any of its
    measurements: a query that does not fit the server (a wrong metric name or label),
    not a release that errored; ``where`` adds what the server holds, for the message."""
    by_metric: dict[str, list[QueryRecord]] = {}
    for record in records:
        by_metric.setdefault(record.metric, []).append(record)
    for name, taken in by_metric.items():
        if all(r.answer is None for r in taken):
            raise PrometheusQueryError(
                f"metric {name!r}: the query {' '.join(taken[-1].promql.split())!r} returned no series at any of "
                f"its {len(taken)} measurements{where}: check its metric names and labels")


def _metrics_by_name(spec: StrategySpec) -> dict[str, Metric]:
    """Every metric of the strategy by name. Answers are keyed by metric name
    (``Observation.queried``), so two metrics of one name must measure the same thing."""
    out: dict[str, Metric] = {}
    for template in spec.analysis_templates:
        for metric in template.metrics:
            known = out.setdefault(metric.name, metric)
            if _measures(known) != _measures(metric):
                raise LiveUnsupported(f"--metrics prometheus: two metrics are named {metric.name!r} and measure "
                                      "different things; their answers are told apart by name: rename one")
    return out


def _measures(metric: Metric) -> tuple:
    return (metric.query, metric.query_unit, tuple(sorted(metric.args.items())), metric.signal, metric.quantile,
            metric.interval)


def _json_number(value: float | None) -> float | str | None:
    return value if value is None or math.isfinite(value) else str(value)


__all__ = ["COUNTERS_QUERY", "JOB", "PrometheusMetrics", "QueryRecord", "check_answered", "check_supported",
           "default_query",
           "scrape_interval_for"]
