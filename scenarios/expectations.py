"""Judging a scenario's expectations on simulated deployments, each with its confidence interval.

An expectation such as ``mttr.p90 <= 300s`` is a claim about the strategy, not about the
few hundred runs that were simulated: the runs are a sample, and a figure computed from
a sample is uncertain. So an expectation *holds* only when its figure's whole confidence
interval is on the right side of the limit -- the upper end for ``<`` and ``<=``, the
lower end for ``>`` and ``>=``, both ends for ``==``. A figure whose estimate meets the
limit while its interval crosses it is *unproven*: more runs may show it holds, but these
runs do not, and the check fails. A figure whose estimate itself breaks the limit is
*violated*. Too few values for the method is *no data*, which fails too.

What each metric is, per strategy, over the rows (deployments) of one scenario:

================================  =======================  =================================
metric                            over                     value
================================  =======================  =================================
``change_failure_rate``           all deployments          share with ``change_failed``
``false_rollback_rate``           healthy releases         share rolled back (``false_rollback``)
``mttr``                          deployments that hurt    ``time_to_restore``
                                  users (change_failed)
``failed_requests``               all deployments          ``failed_requests``
``release_failed_requests``       all deployments          ``release_failed_requests`` (the
                                                           failures the release caused)
``failed_request_fraction``       all deployments          ``failed_requests / requests``
``detected_within``               defective releases      ``detected_at - started_at``
``rollout_duration``              all deployments          ``rollout_duration``
``cost``                          all deployments          ``replica_seconds``
``blast_radius``                  defective releases       ``blast_radius`` (regions only)
================================  =======================  =================================

A time that did not end in the window is censored at the window's end, the one rule of
every table (``results.statistics``). An incident still going on when the run's
observation ended (``ended_at``), a defective release nothing detected, a rollout that
never finished: each is known to have lasted at least until the window closed, and
counts so. Quantiles of ``mttr``, ``detected_within`` and ``rollout_duration`` are
Kaplan-Meier estimates (``compute_censored_quantile``); when too many never ended for the
quantile to be reached, it is "> window": ``mttr.p90 <= 5m`` is then violated if the
window is longer than 5 minutes, and undecided (unproven: a longer window may show it)
if it is shorter -- a check fails either way. A mean or a maximum over values some of
which never ended is unbounded.

Intervals come from ``results.statistics``, the project's one implementation: the Wilson
score interval for rates; the Kaplan-Meier quantile interval for the times above;
distribution-free order-statistic intervals for the median and the p90/p95/p99 of
amounts; a BCa bootstrap for means of skewed values (failed requests, times), a Student t
interval for the mean cost (roughly symmetric per run). ``max`` is the largest value the
runs produced, judged as observed: no finite sample bounds a maximum.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import Enum
from functools import lru_cache

import numpy as np
import pandas as pd

from rolloutlab.results.formatting import format_duration, format_quantity
from rolloutlab.results.statistics import (
    CONFIDENCE,
    Figure,
    censored_times,
    compute_censored_quantile,
    compute_mean_bootstrap_interval,
    compute_mean_t_interval,
    compute_order_statistic_ranks,
    compute_quantile_interval,
    compute_wilson_interval,
)
from rolloutlab.results.table import NO_DEFECT, Outcome
from rolloutlab.scenarios.schema import METRICS, Assertion, Expectation

__all__ = [
    "DEFAULT_CONFIDENCE",
    "ExpectationResult",
    "ExpectationVerdict",
    "MetricSample",
    "compute_expectation_figure",
    "compute_metric_sample",
    "format_metric_value",
    "judge_assertion",
    "judge_expectations",
]

DEFAULT_CONFIDENCE = CONFIDENCE
"""Confidence level of the intervals expectations are judged with (95%)."""

QUANTILES = {"median": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}

CENSORED_METHOD = "Kaplan-Meier interval, censored at the window's end"
"""The method named in a message about a quantile of a time that may not end in the window."""


class ExpectationVerdict(str, Enum):
    """How an expectation came out for one strategy."""

    HOLDS = "holds"
    """The whole confidence interval is on the right side of the limit."""
    VIOLATED = "violated"
    """The estimate itself breaks the limit."""
    UNPROVEN = "unproven"
    """The estimate meets the limit but the interval crosses it (more runs may show it), or
    the estimate lies beyond the window and the window is too short to tell."""
    NO_DATA = "no data"
    """Too few values for the figure (no healthy release, a p99 of 50 values...)."""


@dataclass(frozen=True)
class MetricSample:
    """The values one metric is computed from, for one strategy."""

    metric: str
    population: str
    """What the values are counted over, in words ("healthy releases")."""
    values: np.ndarray
    """One value per counted deployment; ``inf`` for a time that had not ended when the
    window closed (not restored, not detected, not finished). For a rate, 1.0 or 0.0."""
    censored: int
    """How many values are ``inf``: times censored at the window's end."""
    followed: np.ndarray | None = None
    """For a time that may not end in the window: how long each deployment was observed
    (window end - its start), where a value that is ``inf`` is censored; else None."""
    runs: np.ndarray | None = None
    """The ``run`` of each value's deployment, when the rows carry runs: what pairs two
    strategies' values run by run (common random numbers), whatever the population."""

    @property
    def n(self) -> int:
        return int(self.values.size)


@dataclass(frozen=True)
class ExpectationResult:
    """One expectation judged for one strategy of one scenario."""

    strategy: str
    assertion: Assertion
    figure: Figure
    method: str
    confidence: float
    verdict: ExpectationVerdict
    sample: MetricSample
    message: str
    """One sentence: what was measured, which bound decided, and by how much it held or
    missed."""
    index: int = 0
    """Position of the expectation in the scenario's ``expect`` list."""

    @property
    def passed(self) -> bool:
        return self.verdict is ExpectationVerdict.HOLDS

    @property
    def measured(self) -> str:
        """The figure as "value [low, high]" in the metric's unit."""
        return format_figure_cell(self.figure, self.assertion.metric)


# ------------------------------------------------------------------------- the samples


def compute_metric_sample(rows: pd.DataFrame, metric: str) -> MetricSample:
    """The values of ``metric`` over one strategy's results rows (see the module table)."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r} (known: {', '.join(METRICS)})")
    healthy = (rows["defect"] == NO_DEFECT).to_numpy()
    changed = rows["change_failed"].to_numpy(dtype=bool)
    runs = rows["run"].to_numpy() if "run" in rows.columns else None
    sample = _population_sample(rows, metric, healthy, changed)
    if runs is None:
        return sample
    counted = {"false_rollback_rate": healthy, "mttr": changed, "detected_within": ~healthy,
               "blast_radius": ~healthy}.get(metric)  # the populations the branches below count
    return replace(sample, runs=runs if counted is None else runs[counted])


def _population_sample(rows: pd.DataFrame, metric: str, healthy: np.ndarray, changed: np.ndarray) -> MetricSample:
    if metric == "change_failure_rate":
        return _sample(metric, "deployments", changed.astype(float))
    if metric == "false_rollback_rate":
        rolled_back = (rows["outcome"] == Outcome.FALSE_ROLLBACK.value).to_numpy()
        return _sample(metric, "healthy releases", rolled_back[healthy].astype(float))
    if metric == "mttr":
        return _censored_sample(metric, "deployments that hurt users", *censored_times(rows, "time_to_restore"))
    if metric == "failed_requests":
        return _sample(metric, "deployments", rows["failed_requests"].to_numpy(dtype=float))
    if metric == "release_failed_requests":
        return _sample(metric, "deployments", rows["release_failed_requests"].to_numpy(dtype=float))
    if metric == "failed_request_fraction":
        requests = rows["requests"].to_numpy(dtype=float)
        failed = rows["failed_requests"].to_numpy(dtype=float)
        fraction = np.divide(failed, requests, out=np.zeros_like(failed), where=requests > 0)
        return _sample(metric, "deployments", fraction)
    if metric == "detected_within":
        return _censored_sample(metric, "defective releases", *censored_times(rows, "detection"))
    if metric == "rollout_duration":
        return _censored_sample(metric, "deployments", *censored_times(rows, "rollout_duration"))
    if metric in ("users_affected", "duplicated_writes", "blast_radius"):
        if metric not in rows:
            raise ValueError(f"{metric} needs results that count it (the simulator's); these rows have no such column")
        if metric == "blast_radius":  # what matters is how far a bad release got before anyone saw it
            values = rows.loc[~healthy, metric].to_numpy(dtype=float)
            if np.isnan(values).any():
                raise ValueError("blast_radius is measured on scenarios with regions only; this scenario has none")
            return _sample(metric, "defective releases", values)
        return _sample(metric, "deployments", rows[metric].to_numpy(dtype=float))
    return _sample(metric, "deployments", rows["replica_seconds"].to_numpy(dtype=float))  # cost


def _censored_sample(metric: str, population: str, durations: np.ndarray, followed: np.ndarray) -> MetricSample:
    """A time that had not ended (NaN) is carried as infinity, with how long it was followed."""
    values = np.where(np.isnan(durations), np.inf, durations)
    return MetricSample(metric, population, values, int(np.isinf(values).sum()), np.asarray(followed, dtype=float))


def _sample(metric: str, population: str, values: np.ndarray) -> MetricSample:
    values = np.asarray(values, dtype=float)
    return MetricSample(metric, population, values, int(np.isinf(values).sum()))


# ------------------------------------------------------------------------- the figures


def compute_expectation_figure(
    sample: MetricSample, stat: str | None, confidence: float = DEFAULT_CONFIDENCE
) -> tuple[Figure, str]:
    """The figure an expectation is judged on, with the name of its interval method."""
    x = sample.values
    if stat is None:  # a rate
        return compute_wilson_interval(int(x.sum()), x.size, confidence), "Wilson score interval"
    if stat == "max":
        if x.size == 0:
            return Figure.unavailable(0), "largest value observed, no interval"
        return Figure(float(x.max()), None, None, x.size), "largest value observed, no interval"
    if stat == "mean":
        if sample.censored:  # some value never ended in the window: no mean bounds it
            return Figure(math.inf, math.inf, math.inf, x.size), "mean, unbounded: some never happened"
        if sample.metric == "cost":
            return compute_mean_t_interval(x, confidence), "Student t interval"
        return compute_mean_bootstrap_interval(x, confidence), "BCa bootstrap"
    q = QUANTILES[stat]
    if sample.followed is not None:  # a time: some may not have ended in the window
        return compute_censored_quantile(x, sample.followed, q, confidence), CENSORED_METHOD
    return compute_quantile_interval(x, q, confidence), "order-statistic interval"


@lru_cache(maxsize=64)
def minimum_values(q: float, confidence: float) -> int | None:
    """Fewest values for which quantile ``q`` has an order-statistic interval."""
    for n in range(1, 100_000):
        if compute_order_statistic_ranks(n, q, confidence) is not None:
            return n
    return None


# ------------------------------------------------------------------------- judging


def judge_assertion(
    assertion: Assertion, sample: MetricSample, confidence: float = DEFAULT_CONFIDENCE,
    strategy: str = "", index: int = 0,
) -> ExpectationResult:
    """Judge one expectation on one strategy's sample (see the module docstring)."""
    figure, method = compute_expectation_figure(sample, assertion.stat, confidence)
    observed_only = assertion.stat == "max"
    if figure.value is None or (not observed_only and (figure.low is None or figure.high is None)):
        verdict = ExpectationVerdict.NO_DATA
    elif figure.exceeds_window and figure.beyond is not None:
        verdict = _judge_beyond(assertion, figure)
    elif not assertion.holds(figure.value):
        verdict = ExpectationVerdict.VIOLATED
    elif observed_only or all(assertion.holds(b) for b in _deciding_bounds(assertion.op, figure)):
        verdict = ExpectationVerdict.HOLDS
    else:
        verdict = ExpectationVerdict.UNPROVEN
    message = _explain(assertion, sample, figure, method, confidence, verdict)
    return ExpectationResult(strategy, assertion, figure, method, confidence, verdict, sample, message, index)


def _judge_beyond(assertion: Assertion, figure: Figure) -> ExpectationVerdict:
    """An estimate known only to exceed ``figure.beyond`` (the window): violated when every
    such value breaks the limit, judged by its lower bound when every such value meets
    it, undecided (unproven) when the window is too short to tell."""
    assert figure.beyond is not None and figure.low is not None
    reaches = figure.beyond >= assertion.value  # everything beyond the window is past the limit
    if assertion.op in ("<", "<=", "=="):
        return ExpectationVerdict.VIOLATED if reaches else ExpectationVerdict.UNPROVEN
    if reaches and assertion.holds(figure.low):
        return ExpectationVerdict.HOLDS
    return ExpectationVerdict.UNPROVEN


def _deciding_bounds(op: str, figure: Figure) -> list[float]:
    assert figure.low is not None and figure.high is not None
    if op in ("<", "<="):
        return [figure.high]
    if op in (">", ">="):
        return [figure.low]
    return [figure.low, figure.high]


def judge_expectations(
    results: pd.DataFrame, expectations: Sequence[Expectation], confidence: float = DEFAULT_CONFIDENCE
) -> list[ExpectationResult]:
    """Every expectation for every strategy it applies to, strategy by strategy in the
    order of the results table, expectations in the order written."""
    judgements = []
    for strategy, rows in results.groupby("strategy", sort=False):
        samples: dict[str, MetricSample] = {}
        for index, expectation in enumerate(expectations):
            if not expectation.applies_to(str(strategy)):
                continue
            metric = expectation.assertion.metric
            if metric not in samples:
                samples[metric] = compute_metric_sample(rows, metric)
            judgements.append(
                judge_assertion(expectation.assertion, samples[metric], confidence, str(strategy), index)
            )
    return judgements


# ------------------------------------------------------------------------- words


def format_metric_value(value: float | None, metric: str, beyond: float | None = None) -> str:
    """A value of ``metric`` as a person reads it: 4.1%, 2m05s, 1.2k; a time beyond the
    window ">28m20s" (``beyond``, the longest time observed); an unbounded amount "unbounded"."""
    if value is None:
        return "n/a"
    kind = METRICS[metric]
    if abs(value) < 1e-12:
        value = 0.0  # floating-point dust, such as the lower end of a Wilson interval at 0
    if math.isinf(value):
        if beyond is not None:
            return f">{format_metric_value(beyond, metric)}"
        return "unbounded"
    if kind in ("rate", "fraction"):
        return f"{format_quantity(100 * value)}%"
    if kind == "duration":
        return format_duration(value)
    if kind == "replica_seconds":
        return f"{format_quantity(value)} replica·s"
    return format_quantity(value)


def format_figure_cell(figure: Figure, metric: str) -> str:
    """ "value [low, high]", "value (observed)", ">28m20s [25m00s, >28m20s] (3 cens.)" or "n/a";
    a figure of times says how many had not ended in the window (censored)."""
    if figure.value is None:
        return "n/a"
    head = format_metric_value(figure.value, metric, figure.beyond)
    censored = f" ({figure.censored} cens.)" if figure.censored else ""
    if figure.low is None or figure.high is None:
        return head + censored
    low = format_metric_value(figure.low, metric, figure.beyond)
    high = format_metric_value(figure.high, metric, figure.beyond)
    return f"{head} [{low}, {high}]{censored}"


def _difference(amount: float, metric: str) -> str:
    kind = METRICS[metric]
    if math.isinf(amount):
        return "an unbounded amount"
    if kind in ("rate", "fraction"):
        return f"{format_quantity(100 * amount)} percentage points"
    return format_metric_value(amount, metric)


_CENSORED_WORDS = {
    "mttr": "not restored when the window ended",
    "detected_within": "not detected when the window ended",
    "rollout_duration": "not finished when the window ended",
}


def _explain(
    assertion: Assertion, sample: MetricSample, figure: Figure, method: str, confidence: float,
    verdict: ExpectationVerdict,
) -> str:
    metric, limit = assertion.metric, assertion.value
    level = f"{confidence * 100:g}%"
    shown_limit = format_metric_value(limit, metric)
    counted = f"n={sample.n} {sample.population}"
    censored = (f"; {sample.censored} of {sample.n} {_CENSORED_WORDS[metric]} (censored there)"
                if sample.censored and metric in _CENSORED_WORDS else "")
    if verdict is ExpectationVerdict.NO_DATA:
        return _why_no_data(assertion, sample, confidence)
    with_interval = figure.low is not None and figure.high is not None and "unbounded" not in method
    how = f"{level} {method}" if with_interval else method
    measured = f"measured {format_figure_cell(figure, metric)} ({how}, {counted}{censored})"
    assert figure.value is not None
    if assertion.stat == "max":
        if verdict is ExpectationVerdict.HOLDS:
            return f"{measured}: the largest value meets {assertion.op} {shown_limit}"
        return (
            f"{measured}: the largest value breaks {assertion.op} {shown_limit} "
            f"by {_difference(abs(figure.value - limit), metric)}"
        )
    if figure.exceeds_window and figure.beyond is not None:
        return _explain_beyond(assertion, figure, measured, verdict, level)
    bounds = _deciding_bounds(assertion.op, figure)
    side = {"<": "upper", "<=": "upper", ">": "lower", ">=": "lower"}.get(assertion.op, "both")
    if verdict is ExpectationVerdict.HOLDS:
        slack = min(abs(b - limit) for b in bounds)
        where = f"the {side} bound meets" if side != "both" else "both bounds meet"
        return f"{measured}: {where} {assertion.op} {shown_limit} (margin {_difference(slack, metric)})"
    if verdict is ExpectationVerdict.VIOLATED:
        return (
            f"{measured}: the estimate breaks {assertion.op} {shown_limit} "
            f"by {_difference(abs(figure.value - limit), metric)}"
        )
    worst = max(bounds, key=lambda b: abs(b - limit) if not assertion.holds(b) else -1.0)
    if math.isinf(worst) and figure.beyond is not None:
        return (
            f"{measured}: the estimate meets {assertion.op} {shown_limit}, but the {level} {side} bound lies "
            f"beyond the longest time observed ({format_metric_value(figure.beyond, metric)}): not shown at "
            f"{level} (more runs, or a longer window, may show it)"
        )
    return (
        f"{measured}: the estimate meets {assertion.op} {shown_limit}, but the {level} "
        f"{side if side != 'both' else 'interval'} bound {format_metric_value(worst, metric)} breaks it "
        f"by {_difference(abs(worst - limit), metric)}: not shown at {level} (more runs may show it)"
    )


def _explain_beyond(
    assertion: Assertion, figure: Figure, measured: str, verdict: ExpectationVerdict, level: str
) -> str:
    metric = assertion.metric
    assert figure.beyond is not None
    window = format_metric_value(figure.beyond, metric)
    shown_limit = format_metric_value(assertion.value, metric)
    head = f"{measured}: too many never ended for the {assertion.stat} to be reached, so it is beyond {window}"
    if verdict is ExpectationVerdict.VIOLATED:
        return f"{head}, which breaks {assertion.op} {shown_limit} by more than " \
               f"{_difference(abs(figure.beyond - assertion.value), metric)}"
    if verdict is ExpectationVerdict.HOLDS:
        return f"{head}, and the {level} lower bound meets {assertion.op} {shown_limit}"
    return (f"{head}: the window is too short to tell whether it meets {assertion.op} {shown_limit} "
            "(undecided; a longer window or more runs may show it)")


def _why_no_data(assertion: Assertion, sample: MetricSample, confidence: float) -> str:
    if sample.n == 0:
        return f"no {sample.population} in these runs, so {assertion.metric} cannot be measured"
    if assertion.stat in QUANTILES:
        needed = minimum_values(QUANTILES[assertion.stat], confidence)
        return (
            f"a {assertion.stat} needs at least {needed} values for a {confidence * 100:g}% interval, "
            f"these runs gave {sample.n} {sample.population} (raise --runs)"
        )
    return f"{sample.n} value(s) of {sample.population} are too few for an interval (raise --runs)"
