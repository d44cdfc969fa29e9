"""Recorded traffic from a file: a CSV table or an OpenMetrics text export.

CSV: one row per version and sample time, with a header naming at least ``time``,
``version``, ``requests`` and ``errors`` (cumulative counters, as a Prometheus counter
holds them; ``time`` in Unix seconds or ISO 8601), and optionally latency buckets as
columns ``le_<ms>`` (cumulative counts of requests at most that many ms, ``le_inf`` last),
e.g. ``le_100,le_250,le_inf``.

OpenMetrics (https://prometheus.io/docs/specs/om/open_metrics_spec/): the text format
``promtool tsdb create-blocks-from openmetrics`` reads, every sample with its timestamp
and the file ending in ``# EOF``; the same series a Prometheus server would hold (the
request counter with a code label, optionally its latency histogram; selection.py), read
with ``prometheus_client.openmetrics.parser``.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from rolloutlab.errors import InputError
from rolloutlab.workflows.replay.recorded import CounterSeries, RecordedHistory, build_history
from rolloutlab.workflows.replay.selection import RawSample, SeriesSelection, classify_samples

CSV_COLUMNS = ("time", "version", "requests", "errors")


def read_history_file(path: Path, selection: SeriesSelection, start: float | None, end: float | None) -> RecordedHistory:
    """The recorded history in ``path`` (CSV by its ``.csv`` suffix, else OpenMetrics),
    kept to samples between ``start`` and ``end`` (None: unbounded)."""
    where = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(where, f"cannot read this file: {getattr(error, 'strerror', None) or error}") from None
    if path.suffix.lower() == ".csv":
        if selection.by_selector:
            raise InputError(where, "a CSV names its versions in the version column; use --canary/--stable, "
                                    "not selectors")
        series = _csv_series(text, where)
    else:
        series = _openmetrics_series(text, selection, where)
    series = [_within(s, start, end) for s in series]
    canary, stable = selection.roles()
    history = build_history(series, canary, stable, where)
    return history


def _within(series: CounterSeries, start: float | None, end: float | None) -> CounterSeries:
    keep = [i for i, t in enumerate(series.times)
            if (start is None or t >= start) and (end is None or t <= end)]
    return CounterSeries(series.version, series.kind, tuple(series.times[i] for i in keep),
                         tuple(series.values[i] for i in keep), series.le_ms)


def parse_time(value: object, where: str, line: int | None = None, field: str | None = None) -> float:
    """Unix seconds from a number or an ISO 8601 text (a time without zone is UTC)."""
    text = str(value).strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise InputError(where, f"{text!r} is not a time: give Unix seconds or ISO 8601 "
                                    "(2026-12-01T14:00:00Z)", line, field) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        seconds = moment.timestamp()
    if not math.isfinite(seconds):
        raise InputError(where, f"{text!r} is not a finite time", line, field)
    return seconds


def _csv_series(text: str, where: str) -> list[CounterSeries]:
    try:
        table = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise InputError(where, f"not a CSV table: {error}") from None
    columns = [c.strip() for c in table.columns]
    table.columns = columns
    missing = [c for c in CSV_COLUMNS if c not in columns]
    if missing:
        raise InputError(where, f"the header lacks {', '.join(missing)} (needs {', '.join(CSV_COLUMNS)})", 1)
    buckets = []
    for column in columns:
        if column.startswith("le_"):
            bound = column[3:]
            try:
                buckets.append((column, math.inf if bound.lower() in ("inf", "+inf") else float(bound)))
            except ValueError:
                raise InputError(where, f"{column!r} is not a bucket column like le_250 (ms) or le_inf", 1) from None
    grouped: dict[tuple[str, str, float | None], tuple[list[float], list[float]]] = {}
    for i, row in enumerate(table.itertuples(index=False), start=2):
        values = dict(zip(columns, row))
        version = values["version"].strip()
        if not version:
            raise InputError(where, "empty version", i, "version")
        at = parse_time(values["time"], where, i, "time")
        counts = {c: _count(values[c], where, i, c) for c in ("requests", "errors")}
        if counts["errors"] > counts["requests"]:
            raise InputError(where, f"{counts['errors']:g} errors in {counts['requests']:g} requests", i, "errors")
        for kind in ("requests", "errors"):
            _add(grouped, (version, kind, None), at, counts[kind])
        for column, bound in buckets:
            _add(grouped, (version, "bucket", bound), at, _count(values[column], where, i, column))
    if not grouped:
        raise InputError(where, "the table has no rows")
    return [CounterSeries(v, kind, tuple(t), tuple(x), le) for (v, kind, le), (t, x) in grouped.items()]


def _count(text: str, where: str, line: int, field: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InputError(where, f"{text!r} is not a number", line, field) from None
    if not math.isfinite(value) or value < 0:
        raise InputError(where, f"a counter is a finite number at least 0, got {text!r}", line, field)
    return value


def _add(grouped: dict, key: tuple, at: float, value: float) -> None:
    times, values = grouped.setdefault(key, ([], []))
    times.append(at)
    values.append(value)


def _openmetrics_series(text: str, selection: SeriesSelection, where: str) -> list[CounterSeries]:
    samples = list(_openmetrics_samples(text, where))
    names = {s.name for s in samples}
    for metric in selection.request_metrics():
        if metric in names:
            return classify_samples(samples, selection, metric)
    raise InputError(where, f"no request counter series: looked for {', '.join(selection.request_metrics())} "
                            f"(name yours with --requests-metric); the file holds {', '.join(sorted(names)) or 'none'}")


def _series_by_series(text: str) -> str:
    """The samples of ``text``, untyped and regrouped one series after another (file order
    kept within each series), for prometheus_client's parser.

    An export may list a histogram point by point (every bucket at one time, then every
    bucket at the next), which OpenMetrics allows and promtool reads; prometheus_client
    0.26's parser then takes the second point's buckets for duplicates of the first's and
    fails ("+Inf bucket missing"). Untyped, every series is its own group, which the parser
    wants contiguous; the replay reads sample names, labels, values and times only, so the
    types lose nothing here."""
    order: dict[str, list[str]] = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        closing = line.rfind("}")
        key = line[: closing + 1] if "{" in line and closing > 0 else line.split(" ", 1)[0]
        order.setdefault(key, []).append(line)
    return "\n".join(line for lines in order.values() for line in lines) + "\n# EOF\n"


def _openmetrics_samples(text: str, where: str) -> Iterator[RawSample]:
    try:
        families = list(text_string_to_metric_families(_series_by_series(text)))
    except ValueError as error:
        raise InputError(where, f"not OpenMetrics text: {error}") from None
    for family in families:
        for sample in family.samples:
            if sample.timestamp is None:
                raise InputError(where, f"sample {sample.name} has no timestamp: a recorded history needs one on "
                                        "every sample")
            at = float(sample.timestamp.sec) + sample.timestamp.nsec / 1e9 if hasattr(sample.timestamp, "sec") \
                else float(sample.timestamp)
            yield RawSample(sample.name, tuple(sorted(sample.labels.items())), at, float(sample.value))
