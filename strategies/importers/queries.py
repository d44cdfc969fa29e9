"""Guessing what a metric query measures, so an imported metric judges the same thing.

rolloutlab measures each version itself (requests, failed requests, a latency histogram)
and judges one of a few signals; an Argo AnalysisTemplate or a Flagger MetricTemplate
instead carries a query for some metrics backend. The query has to be *read*: this module
recognises the two shapes the Argo and Flagger documentation use throughout

- a ratio of requests selected by their status code: ``5xx / all`` is an error rate,
  ``non-5xx / all`` a success rate (also gRPC's ``grpc_code!="OK"``), possibly times 100
  (a percentage) or subtracted from 1 or 100 (the complement);
- ``histogram_quantile(q, ...)``: the q-quantile of latency, in seconds when the series
  is a ``*_seconds_bucket`` (Prometheus' base unit), in ms for ``*_ms_bucket`` /
  ``*_milliseconds_bucket``.

Anything else returns ``None``: the importer skips such a metric and says so, rather than
judging a signal the query never measured. Every successful reading is still a guess, and
the importer warns with the reading it made.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rolloutlab.strategies.durations import parse_duration
from rolloutlab.strategies.importers.conditions import (
    ERROR_PERCENT,
    IDENTITY,
    SECONDS_TO_MS,
    SUCCESS_FRACTION,
    SUCCESS_PERCENT,
    Conversion,
)
from rolloutlab.strategies.spec import Signal

_QUANTILE = re.compile(r"histogram_quantile\s*\(\s*([-+]?(?:\d+\.?\d*|\.\d+))")
_MATCHER = re.compile(
    r"([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(?:\"([^\"\n]*)\"|'([^'\n]*)'|([A-Za-z0-9_.*|\\^$]+))"
)
_STATUS_LABELS = frozenset({
    "response_code", "code", "status", "status_code", "statuscode", "http_status", "http_status_code",
    "http_code", "response_status", "response_code_class", "status_class",
})
_PERCENT = re.compile(r"\*\s*100(?:\.0+)?\b|\b100(?:\.0+)?\s*\*|asPercent\s*\(")
_COMPLEMENT = re.compile(r"^\s*\(?\s*(?:100|1)(?:\.0+)?\s*-")
_RANGE = re.compile(r"\[\s*(\d+(?:ms|s|m|h|d))\s*\]")
_MS_UNIT = re.compile(r"(?:_ms(?:_|\b)|millisecond)", re.IGNORECASE)


@dataclass(frozen=True)
class QueryReading:
    """What a query was read as: the signal, and how its result converts to our value."""

    signal: Signal
    conversion: Conversion
    meaning: str
    quantile: float | None = None
    percent: bool = False


def _is_5xx(value: str) -> bool:
    return any(alt.strip().lstrip("^").startswith("5") for alt in value.split("|"))


def _status_direction(query: str) -> str | None:
    """``"error"`` when the query selects failed requests, ``"success"`` for good ones."""
    selects_errors = selects_success = False
    for match in _MATCHER.finditer(query):
        label, op = match.group(1).lower(), match.group(2)
        value = next(g for g in match.groups()[2:] if g is not None)
        positive = op in ("=", "=~")
        if label == "grpc_code":
            is_ok = value.strip() == "OK"
            if is_ok == positive:
                selects_success = True
            else:
                selects_errors = True
        elif label in _STATUS_LABELS and _is_5xx(value):
            if positive:
                selects_errors = True
            else:
                selects_success = True
    if selects_errors == selects_success:
        return None
    return "error" if selects_errors else "success"


def read_query(query: str, hint: str = "") -> QueryReading | None:
    """The signal a query measures, or None when it is none that rolloutlab judges.

    ``hint`` is the metric's name, used only when the status matchers are inconclusive.
    """
    match = _QUANTILE.search(query)
    if match:
        quantile = float(match.group(1))
        if not 0 < quantile < 1:
            return None
        label = f"p{quantile * 100:g} latency"
        if re.search(r"\*\s*1000\b", query) or _MS_UNIT.search(query):
            return QueryReading(Signal.LATENCY, IDENTITY, f"the {label} in milliseconds", quantile)
        unit = "seconds" if "second" in query.lower() else "seconds (Prometheus' base unit; assumed)"
        return QueryReading(Signal.LATENCY, SECONDS_TO_MS, f"the {label} in {unit}", quantile)
    if "/" not in query and "asPercent" not in query:
        return None  # a count or a per-second rate of errors: not a share of requests
    direction = _status_direction(query)
    if direction is None:
        text = f"{query} {hint}".lower()
        if "success" in text:
            direction = "success"
        elif any(word in text for word in ("error", "5xx", "fail")):
            direction = "error"
        else:
            return None
    if _COMPLEMENT.match(query):
        direction = "success" if direction == "error" else "error"
    percent = bool(_PERCENT.search(query))
    return make_reading(direction, percent)


def make_reading(direction: str, percent: bool) -> QueryReading:
    """A success- or error-rate reading, as a fraction or a percentage."""
    scale = "percentage" if percent else "rate"
    if direction == "success":
        conversion = SUCCESS_PERCENT if percent else SUCCESS_FRACTION
        meaning = f"the success {scale} (non-5xx / all requests)"
    else:
        conversion = ERROR_PERCENT if percent else IDENTITY
        meaning = f"the error {scale} (5xx / all requests)"
    return QueryReading(Signal.ERROR_RATE, conversion, meaning, None, percent)


def query_range_seconds(query: str) -> float | None:
    """The longest range selector in a query (``[5m]`` -> 300), the window it looks back over."""
    seconds = []
    for text in _RANGE.findall(query):
        try:
            seconds.append(parse_duration(text))
        except ValueError:
            continue
    seconds = [s for s in seconds if s > 0]
    return max(seconds) if seconds else None
