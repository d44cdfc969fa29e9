"""The figures ``validate`` judges, and their values in one results row.

A row (simulated or live: both share the results table's columns) gives one value per
metric. A value is a number, a category (``outcome``), ``None`` when the metric does not
apply to the run (time to restore when no user was harmed; a canary step never reached),
or :class:`Censored` when it is a time that did not end within the run's window (a
defect never detected, a rollout never finished, an incident never restored): then only
"more than the time followed" is known, the same rule as every table of the project
(``results.statistics.censored_times``: the window of a row ends at ``ended_at``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np
import pandas as pd

from rolloutlab.errors import ValidateError


class Kind(str, Enum):
    DURATION = "duration"  # scenario seconds; may be Censored
    FRACTION = "fraction"  # 0..1
    PERCENT = "percent"  # 0..100 (traffic weights)
    COUNT = "count"
    CATEGORY = "category"


@dataclass(frozen=True)
class ValidatedMetric:
    """One figure validate judges: its name (a ``--hold`` name), kind and meaning."""

    name: str
    kind: Kind
    meaning: str


@dataclass(frozen=True)
class Censored:
    """A time that did not end within the window: right-censored, known only to be more than
    ``after`` scenario seconds (the time the run was followed). It sorts above every time that
    ended: order statistics and interval checks treat it as later than any of them."""

    after: float

    def __float__(self) -> float:
        return math.inf  # the sort key: later than every time that ended


Value = float | Censored | str | None
"""A number, a censored time, a category, or None: does not apply."""

BASE_METRICS: tuple[ValidatedMetric, ...] = (
    ValidatedMetric("detection_time", Kind.DURATION, "detected_at - started_at (censored: not detected in the window)"),
    ValidatedMetric("time_to_restore", Kind.DURATION,
                    "first harmed answer to restored (n/a: no user was harmed; censored: not restored in the window)"),
    ValidatedMetric("failed_fraction", Kind.FRACTION, "failed_requests / requests over the scenario's window"),
    ValidatedMetric("users_affected", Kind.FRACTION,
                    "share of users who got at least one bad answer from the release (n/a: not counted)"),
    ValidatedMetric("rollout_duration", Kind.DURATION, "start to promoted or rolled back (censored: stuck)"),
    ValidatedMetric("outcome", Kind.CATEGORY, "promoted, rolled_back, failed_undetected, ..."),
)
WEIGHT_PREFIX = "effective_weight@"
SWITCH_FAILURES = ValidatedMetric(
    "switch_failures", Kind.COUNT, "user requests failed by a routing change itself (the simulator's switch is lossless: 0)")
HOLDABLE = tuple(m.name for m in BASE_METRICS) + ("effective_weight", SWITCH_FAILURES.name)
"""Names ``--hold`` accepts; ``effective_weight`` holds every step, ``effective_weight@W`` one step."""


def weight_metric(declared: float) -> ValidatedMetric:
    return ValidatedMetric(f"{WEIGHT_PREFIX}{declared:g}", Kind.PERCENT,
                           f"the canary's share of user traffic (%) while the declared weight is {declared:g}%")


def metric_kind(name: str) -> Kind:
    if name.startswith(WEIGHT_PREFIX):
        return Kind.PERCENT
    if name == SWITCH_FAILURES.name:
        return Kind.COUNT
    return next(m.kind for m in BASE_METRICS if m.name == name)


def check_hold(names: Iterable[str]) -> tuple[str, ...]:
    """The ``--hold`` names, checked; ValidateError names an unknown one."""
    out = []
    for name in names:
        if name in HOLDABLE or re.fullmatch(re.escape(WEIGHT_PREFIX) + r"\d+(\.\d+)?", name):
            out.append(name)
        else:
            raise ValidateError(f"--hold {name!r}: unknown metric; one of {', '.join(HOLDABLE)} "
                                f"(or {WEIGHT_PREFIX}W for the step declaring W%)")
    return tuple(out)


def is_held(metric: str, hold: Sequence[str]) -> bool:
    if metric in hold:
        return True
    if metric.startswith(WEIGHT_PREFIX):
        return "effective_weight" in hold or any(
            h.startswith(WEIGHT_PREFIX) and float(h[len(WEIGHT_PREFIX):]) == float(metric[len(WEIGHT_PREFIX):])
            for h in hold)
    return False


def _number(x: Any) -> float:
    return math.nan if x is None else float(x)


def _time_or_censored(value: float, followed: float) -> float | Censored:
    """A duration that ended, or one censored at ``followed`` (NaN or inf: did not end)."""
    if math.isfinite(value):
        return value
    return Censored(followed if math.isfinite(followed) else math.nan)


def compute_metric_values(row: Mapping[str, Any]) -> dict[str, Value]:
    """The judged metrics of one results row (simulated or live; both share the columns)."""
    started = _number(row.get("started_at"))
    ended = _number(row.get("ended_at"))
    detected = _number(row.get("detected_at")) - started
    duration = _number(row.get("rollout_duration"))
    restore = _number(row.get("time_to_restore"))
    harmed = bool(row.get("change_failed"))
    requests = int(row.get("requests") or 0)
    values: dict[str, Value] = {
        "detection_time": _time_or_censored(detected, ended - started),
        "time_to_restore": (_time_or_censored(restore, ended - _number(row.get("impact_started_at")))
                            if harmed else None),
        "failed_fraction": (int(row["failed_requests"]) / requests) if requests > 0 else None,
        "users_affected": None if math.isnan(affected := _number(row.get("users_affected"))) else affected,
        "rollout_duration": _time_or_censored(duration, ended - started),
        "outcome": str(row["outcome"]),
    }
    for key, value in row.items():
        if isinstance(key, str) and key.startswith(WEIGHT_PREFIX):
            values[key] = None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)
    return values


def show_value(x: Value, kind: Kind | None = None) -> str:
    """A value as a table cell: "2m05s", "0.3%", "> 30m00s" (censored), "n/a"."""
    from rolloutlab.results.formatting import format_beyond, format_duration

    if x is None:
        return "n/a"
    if isinstance(x, str):
        return x
    if isinstance(x, Censored):
        return format_beyond(x.after)
    if kind is Kind.FRACTION:
        return f"{100 * x:.3g}%"
    if kind is Kind.PERCENT:
        return f"{x:.1f}%"
    if kind is Kind.COUNT:
        return f"{x:g}"
    if kind is Kind.DURATION:
        return format_duration(x)
    return f"{x:.4g}"


def plain_value(x: Any) -> Any:
    """JSON-safe: a censored time as ``{"censored_at": seconds}``, NaN as None, numpy
    scalars as Python ones."""
    if isinstance(x, Censored):
        return {"censored_at": None if math.isnan(x.after) else float(x.after)}
    if isinstance(x, (float, np.floating)):
        x = float(x)
        if not math.isfinite(x):
            return None
    if isinstance(x, np.integer):
        return int(x)
    return x


# --------------------------------------------------------------------------- effective weights


def compute_weight_segments(points: Sequence[tuple[float, float]], end: float) -> dict[float, list[tuple[float, float]]]:
    """Declared weight -> the intervals [t0, t1) it was declared, from timeline points
    ``(at, declared)`` in time order (a point's declared weight holds until the next point;
    the last until ``end``). Weight 0 and empty intervals are left out."""
    out: dict[float, list[tuple[float, float]]] = {}
    for i, (at, declared) in enumerate(points):
        t1 = min(points[i + 1][0] if i + 1 < len(points) else end, end)
        if declared <= 0 or t1 <= at:
            continue
        spans = out.setdefault(float(declared), [])
        if spans and spans[-1][1] == at:
            spans[-1] = (spans[-1][0], t1)  # the same step continued
        else:
            spans.append((at, t1))
    return out


def compute_sim_step_weights(points: Sequence[Mapping[str, Any]], end: float, *, rps: float | None = None,
                             rng: np.random.Generator | None = None) -> dict[str, float]:
    """Per declared weight, the time-weighted mean effective weight (%) of a simulated
    timeline: the simulator's effective weight is the share *at* each point, which holds
    until the next point. With ``rps`` and ``rng``, the share a run would *observe*: the
    step's requests (Poisson, rps x its length) each reach the canary with that mean
    chance, as the live measure counts requests (a router's weight is a probability per
    request, so a live share scatters around it; predicting the mean alone would call
    every live value outside a zero-width interval)."""
    marks = [(float(p["at"]), float(p["declared_weight"])) for p in points]
    effective = [(float(p["at"]), float(p["effective_weight"])) for p in points]
    out = {}
    for declared, spans in compute_weight_segments(marks, end).items():
        total = weighted = 0.0
        for t0, t1 in spans:
            for i, (at, value) in enumerate(effective):
                nxt = effective[i + 1][0] if i + 1 < len(effective) else math.inf
                overlap = min(nxt, t1) - max(at, t0)
                if overlap > 0:
                    weighted += value * overlap
                    total += overlap
        if total > 0:
            share = weighted / total
            if rps is not None and rng is not None:
                n = int(rng.poisson(rps * total))
                if n == 0:
                    continue  # no request was sent in this step: nothing observed (as live)
                share = 100.0 * rng.binomial(n, min(1.0, max(0.0, share / 100.0))) / n
            out[weight_metric(declared).name] = share
    return out


def compute_live_step_weights(points: Sequence[Mapping[str, Any]], records: pd.DataFrame, canary: str,
                              end: float, time_scale: float) -> dict[str, float]:
    """Per declared weight, the canary's measured share (%) of the user requests answered
    by a version that were *sent* while that weight was declared (the router picks the
    version when a request arrives; ``at`` is when the answer came, in scenario seconds)."""
    marks = [(float(p["at"]), float(p["declared_weight"])) for p in points]
    user = records[(records["target"] == "user") & records["version"].notna()]
    sent = user["at"].to_numpy(dtype=float) - np.nan_to_num(user["latency_ms"].to_numpy(dtype=float)) / 1000 * time_scale
    on_canary = (user["version"] == canary).to_numpy(dtype=bool)
    out = {}
    for declared, spans in compute_weight_segments(marks, end).items():
        inside = np.zeros(len(user), dtype=bool)
        for t0, t1 in spans:
            inside |= (sent >= t0) & (sent < t1)
        if inside.any():
            out[weight_metric(declared).name] = 100.0 * float(on_canary[inside].mean())
    return out


def rollout_end(row: Mapping[str, Any]) -> float:
    """When the rollout of a row ended (finished, else the end of its observation)."""
    for column in ("finished_at", "ended_at"):
        value = _number(row.get(column))
        if not math.isnan(value):
            return value
    return math.inf


__all__ = [
    "BASE_METRICS", "Censored", "HOLDABLE", "Kind", "SWITCH_FAILURES", "Value", "ValidatedMetric", "WEIGHT_PREFIX",
    "check_hold", "compute_live_step_weights", "compute_metric_values", "compute_sim_step_weights",
    "compute_weight_segments", "is_held", "metric_kind", "plain_value", "rollout_end", "show_value", "weight_metric",
]
