"""What ``rolloutlab tune`` minimises and what it must respect, in the words of a
scenario's expectations (``scenarios.expectations``): objectives are ``metric[.stat]``
(``failed_requests.mean``, ``rollout_duration.p90``), constraints are expectations
(``false_rollback_rate <= 2%``, ``mttr.p90 <= 5m``). Every metric there is better lower,
so every objective is minimised. Figures and their intervals come from the one
implementation checks use, so a tuned strategy is judged as `check` would judge it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rolloutlab.errors import InputError
from rolloutlab.results.statistics import Figure
from rolloutlab.scenarios.expectations import (
    ExpectationVerdict,
    MetricSample,
    compute_expectation_figure,
    compute_metric_sample,
    format_figure_cell,
    judge_assertion,
)
from rolloutlab.scenarios.schema import METRICS, STATS, Assertion
from rolloutlab.scenarios.schema.expectations import parse_assertion

DEFAULT_OBJECTIVES = ("failed_requests.mean", "rollout_duration.mean")
DEFAULT_CONSTRAINTS = ("false_rollback_rate <= 2%",)

_OBJECTIVE = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)(?:\.([A-Za-z0-9_]+))?\s*")


@dataclass(frozen=True)
class Objective:
    metric: str
    stat: str | None  # None for a rate

    @property
    def name(self) -> str:
        return self.metric if self.stat is None else f"{self.metric}.{self.stat}"

    def figure(self, rows: pd.DataFrame) -> Figure:
        return compute_expectation_figure(compute_metric_sample(rows, self.metric), self.stat)[0]

    def cell(self, figure: Figure) -> str:
        return format_figure_cell(figure, self.metric)


def parse_objective(text: str) -> Objective:
    match = _OBJECTIVE.fullmatch(text)
    if not match:
        raise InputError("--objective", f"{text!r} is not metric[.stat] (e.g. failed_requests.mean)")
    metric, stat = match.group(1), match.group(2)
    kind = METRICS.get(metric)
    if kind is None:
        raise InputError("--objective", f"unknown metric {metric!r} (known: {', '.join(METRICS)})")
    if kind == "rate":
        if stat is not None:
            raise InputError("--objective", f"{metric} is one rate over all deployments and takes no statistic")
        return Objective(metric, None)
    stat = {"p50": "median"}.get(stat or "mean", stat or "mean")
    if stat not in STATS:
        raise InputError("--objective", f"unknown statistic {stat!r} (known: {', '.join(STATS)})")
    return Objective(metric, stat)


def parse_constraint(text: str) -> Assertion:
    try:
        return parse_assertion(text)
    except ValueError as error:
        raise InputError("--constraint", str(error)) from None


def per_run_values(objective: Objective, sample: MetricSample) -> pd.Series | None:
    """A mean's or a rate's values by run (``sample.runs``), what pairs two strategies on
    common random numbers; None for a quantile, a time that never ended, or rows without runs."""
    if objective.stat not in ("mean", None) or sample.runs is None or not np.isfinite(sample.values).all():
        return None
    return pd.Series(sample.values, index=sample.runs)


def paired_differences(theirs: pd.Series, mine: pd.Series) -> np.ndarray:
    """``theirs - mine`` on the runs both counted: the same releases under common random
    numbers (a population such as "deployments that hurt users" differs by strategy)."""
    both = theirs.index.intersection(mine.index)
    return theirs.loc[both].to_numpy() - mine.loc[both].to_numpy()


def objective_value(figure: Figure) -> float:
    """What the sampler minimises: the estimate; a figure without one (no data, or a time
    that never ended) is worst, ``inf``."""
    value = figure.value
    return math.inf if value is None or not math.isfinite(value) else float(value)


def constraint_excess(assertion: Assertion, rows: pd.DataFrame) -> float:
    """How far the estimate is on the wrong side of the limit (<= 0: met), as Optuna's
    constraints want it; no estimate counts as far beyond."""
    figure = compute_expectation_figure(compute_metric_sample(rows, assertion.metric), assertion.stat)[0]
    if figure.value is None or not math.isfinite(figure.value):
        return math.inf if assertion.op in ("<", "<=", "==") or figure.value is None else -math.inf
    if assertion.op in ("<", "<="):
        return float(figure.value - assertion.value)
    if assertion.op in (">", ">="):
        return float(assertion.value - figure.value)
    return abs(float(figure.value - assertion.value))


def clearly_broken(assertion: Assertion, rows: pd.DataFrame) -> str | None:
    """The reason, when the whole interval breaks the constraint (more runs cannot save the
    candidate); None while it may still hold."""
    result = judge_assertion(assertion, compute_metric_sample(rows, assertion.metric))
    figure = result.figure
    if result.verdict is not ExpectationVerdict.VIOLATED:
        return None
    bound = figure.low if assertion.op in ("<", "<=") else figure.high
    if assertion.op == "==" or bound is None or not assertion.holds(bound):
        return f"{assertion.text}: {result.measured}"
    return None
