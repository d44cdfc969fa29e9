"""The simulator's prediction for one metric, and a live value checked against it (pure).

Prediction interval (distribution-free, from order statistics). If the simulator is right,
a live value Y and the n simulated values X are draws of one distribution, and for
continuous values P(X(j) <= Y <= X(n+1-j)) = (n+1-2j)/(n+1) exactly (X(j) the j-th
smallest). We take the largest j with that coverage >= ``level`` (95%: j = 12 for n = 500,
coverage 95.2%), inclusive at both ends, which keeps at least that coverage for values
with ties (durations on an analysis grid). Fewer than 2/(1-level) - 1 simulated values (39
at 95%) give no interval: *no prediction*.

Censored times (``metrics.Censored``: did not end in the window) sort above every time that
ended, so the ranks stay valid: an interval whose upper rank falls on a censored value
ends at "> window", and a censored live value is inside exactly when it does. A prediction
says how many of its simulated values were censored.

n/a and categories. The simulator's share of n/a runs is a prediction too: the live run's
kind (n/a or a value) must be in the ``level`` prediction set (the most frequent kinds
covering >= level of the runs), and a value must also fall inside the interval of the runs
that had one. ``outcome`` is judged the same way, as a category.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np
import pandas as pd

from rolloutlab.workflows.validate.metrics import (
    BASE_METRICS,
    SWITCH_FAILURES,
    WEIGHT_PREFIX,
    Censored,
    Kind,
    ValidatedMetric,
    Value,
    compute_metric_values,
    is_held,
    plain_value,
    show_value,
    weight_metric,
)

LEVEL = 0.95


def compute_prediction_ranks(n: int, level: float = LEVEL) -> tuple[int, int, float] | None:
    """1-based ranks (j, n+1-j) of the sorted sample bounding a ``level`` prediction
    interval for one more draw, and its exact coverage (n+1-2j)/(n+1); None when even
    (min, max) covers less than ``level`` (n < 2/(1-level) - 1)."""
    if n < 1:
        return None
    j = math.floor((n + 1) * (1 - level) / 2 + 1e-9)
    if j < 1:
        return None
    return j, n + 1 - j, (n + 1 - 2 * j) / (n + 1)


def compute_prediction_set(shares: Mapping[str, float], level: float = LEVEL) -> tuple[str, ...]:
    """The most frequent categories whose shares add up to at least ``level`` (ties by name)."""
    chosen, total = [], 0.0
    for name, share in sorted(shares.items(), key=lambda kv: (-kv[1], kv[0])):
        if total >= level - 1e-12:
            break
        chosen.append(name)
        total += share
    return tuple(chosen)


@dataclass(frozen=True)
class Prediction:
    """What the simulator predicts for one metric, over its ``runs`` runs."""

    metric: str
    kind: Kind
    runs: int
    level: float
    shares: dict[str, float]  # numbers: {"value": share, "n/a": share}; categories: {category: share}
    predicted: tuple[str, ...]  # the prediction set of kinds / categories
    values: int = 0  # runs with a value (censored ones included)
    median: float | Censored | None = None
    low: float | Censored | None = None
    high: float | Censored | None = None
    coverage: float | None = None  # exact coverage of [low, high]; None: no interval
    censored: int = 0  # of the ``values``, times that did not end in the window

    def as_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "kind": self.kind.value, "runs": self.runs, "level": self.level,
                "shares": self.shares, "predicted": list(self.predicted), "values": self.values,
                "censored": self.censored, "median": plain_value(self.median), "low": plain_value(self.low),
                "high": plain_value(self.high), "coverage": self.coverage}


def compute_prediction(metric: ValidatedMetric, values: Sequence[Value], level: float = LEVEL) -> Prediction:
    """The simulator's prediction for ``metric`` from one value per simulated run."""
    runs = len(values)
    if metric.kind is Kind.CATEGORY:
        counts = pd.Series([str(v) for v in values], dtype=object).value_counts()
        shares = {str(k): int(c) / runs for k, c in counts.items()} if runs else {}
        return Prediction(metric.name, metric.kind, runs, level, shares, compute_prediction_set(shares, level))
    present = [v for v in values if v is not None]
    keys = np.sort(np.array([float(v) for v in present], dtype=float))  # a censored time sorts as +inf
    censored = [v.after for v in present if isinstance(v, Censored)]
    # every censored value is known to exceed the shortest time any of them was followed
    above = Censored(min(censored)) if censored else None
    shares = {}
    if runs:
        shares = {"value": keys.size / runs, "n/a": (runs - keys.size) / runs}
        shares = {k: s for k, s in shares.items() if s > 0}
    predicted = compute_prediction_set(shares, level)
    if keys.size == 0:
        return Prediction(metric.name, metric.kind, runs, level, shares, predicted)

    def at(x: float) -> float | Censored:
        return above if math.isinf(x) else float(x)

    middle = keys.size // 2
    median = at(keys[middle]) if keys.size % 2 else at(keys[middle - 1] / 2 + keys[middle] / 2)
    ranks = compute_prediction_ranks(keys.size, level)
    if ranks is None:
        return Prediction(metric.name, metric.kind, runs, level, shares, predicted, int(keys.size), median,
                          censored=len(censored))
    j, k, coverage = ranks
    return Prediction(metric.name, metric.kind, runs, level, shares, predicted, int(keys.size), median,
                      at(keys[j - 1]), at(keys[k - 1]), coverage, len(censored))


def compute_fixed_prediction(metric: ValidatedMetric, value: float) -> Prediction:
    """A prediction the simulator makes by construction (a lossless switch: 0)."""
    return Prediction(metric.name, metric.kind, 0, 1.0, {"value": 1.0}, ("value",), 0, value, value, value, 1.0)


class PredictionVerdict(str, Enum):
    """Where one live value falls against the simulator's prediction."""

    INSIDE = "inside"
    OUTSIDE = "outside"
    NO_PREDICTION = "no prediction"  # too few simulated values for an interval


@dataclass(frozen=True)
class PredictionCheck:
    """One live value of one metric checked against the simulator's prediction."""

    metric: str
    run: int
    value: Value
    verdict: PredictionVerdict
    reason: str
    held: bool = False
    basis: str = "scenario"  # which prediction: "scenario" or "calibrated"

    def as_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "run": self.run, "value": plain_value(self.value), "verdict": self.verdict.value,
                "reason": self.reason, "held": self.held, "basis": self.basis}


def judge_value(prediction: Prediction, value: Value, run: int = 0, *, held: bool = False,
                basis: str = "scenario", resolution: float = 0.0) -> PredictionCheck:
    """Is one live value inside the simulator's prediction? A duration may miss the
    interval by ``resolution`` (the live clock's, in scenario seconds): the simulator puts
    probes and analysis ticks exactly on their grid, a live process a few milliseconds
    later, which a time scale magnifies (the reason then says so)."""
    def check(v: PredictionVerdict, reason: str) -> PredictionCheck:
        return PredictionCheck(prediction.metric, run, value, v, reason, held, basis)

    if prediction.kind is Kind.CATEGORY:
        share = prediction.shares.get(str(value), 0.0)
        if str(value) in prediction.predicted:
            return check(PredictionVerdict.INSIDE, f"{value} in {share:.1%} of simulated runs")
        return check(PredictionVerdict.OUTSIDE, f"{value} in only {share:.1%} of simulated runs")
    kind = "n/a" if value is None else "value"
    if kind not in prediction.predicted:
        share = prediction.shares.get(kind, 0.0)
        what = "does not apply" if value is None else "has a value"
        return check(PredictionVerdict.OUTSIDE, f"{prediction.metric} {what} in only {share:.1%} of simulated runs")
    if value is None:
        return check(PredictionVerdict.INSIDE, f"n/a, as in {prediction.shares.get('n/a', 0.0):.1%} of simulated runs")
    if prediction.low is None or prediction.high is None:
        return check(PredictionVerdict.NO_PREDICTION, f"only {prediction.values} simulated values: too few for a "
                                                      f"{prediction.level:.0%} prediction interval")
    x, low, high = float(value), float(prediction.low), float(prediction.high)  # censored: +inf
    if low <= x <= high:
        return check(PredictionVerdict.INSIDE, "within the prediction interval")
    slack = resolution if prediction.kind is Kind.DURATION and math.isfinite(x) else 0.0
    if low - slack <= x <= high + slack:
        return check(PredictionVerdict.INSIDE,
                     f"within the prediction interval widened by the live timing resolution ({slack:g}s): "
                     f"{show_value(x, Kind.DURATION)} vs [{show_value(prediction.low, Kind.DURATION)}, "
                     f"{show_value(prediction.high, Kind.DURATION)}]")
    side = "below" if x < low else "above"
    return check(PredictionVerdict.OUTSIDE,
                 f"{side} the prediction interval [{show_value(prediction.low)}, {show_value(prediction.high)}]")


def compute_exit_code(checks: Iterable[PredictionCheck]) -> int:
    """1 when a held metric's live value is outside its prediction or has none; else 0."""
    return int(any(c.held and c.verdict is not PredictionVerdict.INSIDE for c in checks))


def compute_predictions(df: pd.DataFrame, level: float) -> dict[str, Prediction]:
    """Every metric's prediction from a simulated table (one row per run)."""
    per_run = [compute_metric_values(row) for row in df.to_dict("records")]
    names = [m.name for m in BASE_METRICS] + sorted({k for v in per_run for k in v if k.startswith(WEIGHT_PREFIX)},
                                                     key=lambda m: float(m[len(WEIGHT_PREFIX):]))
    out = {}
    for name in names:
        metric = next((m for m in BASE_METRICS if m.name == name), None) or weight_metric(float(name[len(WEIGHT_PREFIX):]))
        out[name] = compute_prediction(metric, [v.get(name) for v in per_run], level)
    out[SWITCH_FAILURES.name] = compute_fixed_prediction(SWITCH_FAILURES, 0.0)
    return out


def judge_live(predictions: Mapping[str, Prediction], live: Sequence[Any], metrics: Sequence[str],
               hold: Sequence[str], level: float, runs: int, basis: str,
               resolution: float = 0.0) -> list[PredictionCheck]:
    """Every live run's value of every metric checked against ``predictions`` (``live``:
    ``running.LiveResult``s)."""
    out = []
    for result in live:
        values = dict(result.values)
        values[SWITCH_FAILURES.name] = float(result.switch_failures.switch)
        for name in metrics:
            prediction = predictions.get(name)
            if prediction is None:  # a weight step no simulated run reached
                metric = weight_metric(float(name[len(WEIGHT_PREFIX):]))
                prediction = Prediction(metric.name, metric.kind, runs, level, {"n/a": 1.0}, ("n/a",))
            out.append(judge_value(prediction, values.get(name), result.run, held=is_held(name, hold), basis=basis,
                                   resolution=resolution))
    return out


__all__ = [
    "LEVEL", "Prediction", "PredictionCheck", "PredictionVerdict", "compute_exit_code", "compute_fixed_prediction",
    "compute_prediction", "compute_prediction_ranks", "compute_prediction_set", "compute_predictions",
    "judge_live", "judge_value",
]
