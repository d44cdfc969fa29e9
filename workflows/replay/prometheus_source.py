"""Recorded traffic from a Prometheus server: range queries over the release's time range.

The raw counter series are asked for as they are stored (``demo_requests_total`` every
``step`` seconds, no ``rate()``): the replay takes its own differences between the moments
its measurements fall on, with Prometheus' reset rule (recorded.py), so a window is exactly
what the strategy would have measured. A range query answers each step with the latest
sample within Prometheus' lookback (5 minutes), as an instant query at that moment would.
Range query API: https://prometheus.io/docs/prometheus/latest/querying/api/#range-queries
"""

from __future__ import annotations

from datetime import datetime, timezone

from rolloutlab.errors import PrometheusQueryError
from rolloutlab.live.prometheus import PrometheusClient, Series
from rolloutlab.workflows.replay.recorded import RecordedHistory, build_history
from rolloutlab.workflows.replay.selection import RawSample, SeriesSelection, classify_samples, render_selector

MAX_POINTS = 11_000
"""Prometheus refuses a range query of more than 11,000 points per series; say so first."""


def format_utc(t: float) -> str:
    return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _selectors(metric: str, selection: SeriesSelection) -> list[str]:
    if selection.by_selector:
        return [f"{metric}{{{render_selector(m)}}}" for m in (selection.canary_selector, selection.stable_selector)]
    return [metric]


def _samples(name: str, series: list[Series]) -> list[RawSample]:
    out = []
    for s in series:
        labels = tuple(sorted((k, v) for k, v in s.labels.items() if k != "__name__"))
        out += [RawSample(name, labels, float(t), float(v)) for t, v in zip(s.times, s.values)]
    return out


def read_history_prometheus(client: PrometheusClient, selection: SeriesSelection, start: float, end: float,
                            step: float) -> RecordedHistory:
    """The recorded history between ``start`` and ``end`` (Unix seconds), every ``step``."""
    points = (end - start) / step if step > 0 else 0
    if points > MAX_POINTS:
        raise PrometheusQueryError(f"{points:.0f} points per series between {format_utc(start)} and "
                                   f"{format_utc(end)} at --step {step:g}s; Prometheus answers at most {MAX_POINTS}: "
                                   "use a larger --step or a shorter range")
    where = f"Prometheus at {client.url}"
    tried = []
    for metric in selection.request_metrics():
        queries = _selectors(metric, selection)
        tried += queries
        samples = [s for q in queries for s in _samples(metric, client.query_range(q, start, end, step))]
        if not samples:
            continue
        histogram = selection.histogram_for(metric)
        if histogram:
            bucket = f"{histogram}_bucket"
            for q in _selectors(bucket, selection):
                samples += _samples(bucket, client.query_range(q, start, end, step))
        series = classify_samples(samples, selection, metric)
        canary, stable = selection.roles()
        return build_history(series, canary, stable, f"{where}: {metric}, {format_utc(start)}..{format_utc(end)}")
    raise PrometheusQueryError(
        f"{where}: {' and '.join(repr(q) for q in tried)} returned no series between {format_utc(start)} and "
        f"{format_utc(end)}: check the metric name (--requests-metric), the labels and the time range")
