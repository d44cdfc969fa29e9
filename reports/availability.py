"""Availability beside DORA, as teams report against an SLO: per strategy, the share of
requests that succeeded over a deployment's window, and the share of the SLO's error
budget one deployment burns.

Definitions (each figure is a mean over deployments, with a 95% BCa bootstrap interval
from ``rolloutlab.results.statistics``, deployments being the independent units):

- **availability over the window** of one deployment: ``1 - failed_requests / requests``,
  every failure counted (baseline errors included: it is what users saw).
- **error budget burned** by one deployment, when the scenario states an SLO
  (``slo_objective``, e.g. 0.999, over ``slo_window`` seconds, e.g. 30 days):
  ``release_failed_requests / ((1 - slo_objective) * requests_per_slo_window)``, where
  ``requests_per_slo_window = requests / window * slo_window`` scales the deployment's
  traffic up to the SLO's period. The numerator is the failures the release caused, beyond
  what the old version would have failed anyway: the baseline is the service's steady
  state and is budgeted for separately. 0.05 means one such deployment spends 5% of the
  budget of a whole SLO window; a negative burn (fewer failures than the baseline by
  chance) is kept, so the mean is unbiased.
- **deployments the budget allows** per SLO window: ``1 / burn`` (mean), with the interval
  inverted; infinite when the release caused no failures on average.

``window`` is the length, in seconds, of the period ``requests`` were counted over: the
table's ``window`` column when it has one, else the shortest observation
(``ended_at - started_at``) among the strategy's deployments, which is the scenario's
duration for the simulator (a run is only watched longer while a paged person still acts).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd

from rolloutlab.reports.dora import GROUP_KEYS, NO_RELEASE_COLUMNS, DoraMetric, metrics_frame
from rolloutlab.results.statistics import Figure, compute_mean_bootstrap_interval, compute_quantile_interval

NO_SLO = "the scenario states no SLO (slo: objective and window), so there is no error budget to burn"
NO_REQUESTS = "no request counts (a deployment log does not record them)"

DEFINITIONS: dict[str, str] = {
    "availability": (
        "Availability over the window: per deployment, 1 - failed_requests / requests over the "
        "deployment's observation window (every failure counted, baseline errors included), averaged "
        "over deployments, with a 95% BCa bootstrap interval."
    ),
    "error_budget_burn": (
        "Error budget burned per deployment: release_failed_requests / ((1 - SLO objective) x requests "
        "per SLO window), where requests per SLO window = requests / window length x SLO window "
        "(e.g. 30 days). Only failures the release caused count (those beyond what the old version "
        "would have failed anyway); the baseline is budgeted for separately. Mean and 90th percentile "
        "over deployments, with 95% intervals (BCa bootstrap; order statistics). 5% means one such "
        "deployment spends a twentieth of the whole window's budget."
    ),
    "deployments_per_budget": (
        "Deployments the budget allows per SLO window: 1 / mean error budget burned, the interval "
        "inverted; how many such releases fit in one SLO window before the budget is gone."
    ),
}
"""One paragraph per figure, written into the report."""


@dataclass(frozen=True)
class StrategyAvailability:
    """A strategy's availability and error-budget figures over its rows of one source and scenario.

    ``objective`` and ``slo_window`` (seconds) are the scenario's SLO, None without one.
    """

    source: str
    scenario: str
    strategy: str
    deployments: int
    objective: float | None
    slo_window: float | None
    availability: DoraMetric
    error_budget_burn_mean: DoraMetric
    error_budget_burn_p90: DoraMetric
    deployments_per_budget: DoraMetric

    def metrics(self) -> dict[str, DoraMetric]:
        """The figures by field name, in report order."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.type in ("DoraMetric", DoraMetric)}


def compute_availability(df: pd.DataFrame) -> list[StrategyAvailability]:
    """Availability and error-budget figures per (source, scenario, strategy), sorted."""
    if len(df) == 0:
        return []
    return [_compute_group(keys, rows) for keys, rows in df.groupby(list(GROUP_KEYS), sort=True, dropna=False)]


def _compute_group(keys: tuple[Any, ...], rows: pd.DataFrame) -> StrategyAvailability:
    source, scenario, strategy = (str(k) for k in keys)
    objective, slo_window = compute_slo(rows)
    requests = _floats(rows, "requests")
    served = requests is not None and np.isfinite(requests) & (requests > 0)
    if requests is None or not np.any(served):
        na = DoraMetric(None, None, None, 0, "fraction", None, NO_REQUESTS)
        return StrategyAvailability(source, scenario, strategy, len(rows), objective, slo_window, na, na, na,
                                    DoraMetric(None, None, None, 0, "deployments", None, NO_REQUESTS))
    failed = _floats(rows, "failed_requests")
    availability = _mean(1.0 - failed[served] / requests[served], "fraction")
    burn = compute_budget_burn(rows, objective, slo_window)
    if isinstance(burn, str):
        na = DoraMetric(None, None, None, 0, "fraction", None, burn)
        return StrategyAvailability(source, scenario, strategy, len(rows), objective, slo_window, availability,
                                    na, na, DoraMetric(None, None, None, 0, "deployments", None, burn))
    mean = _mean(burn, "fraction")
    p90 = compute_quantile_interval(burn, 0.9)
    p90_metric = (DoraMetric(p90.value, p90.low, p90.high, p90.n, "fraction") if p90.value is not None else
                  DoraMetric(None, None, None, p90.n, "fraction", None,
                             "too few deployments for a 90th percentile with its 95% interval (it needs at least 36)"))
    return StrategyAvailability(source, scenario, strategy, len(rows), objective, slo_window, availability,
                                mean, p90_metric, _inverse(mean))


def compute_slo(rows: pd.DataFrame) -> tuple[float | None, float | None]:
    """(objective, window seconds) of the rows' SLO: the first row that states one, None
    without. Rows of one scenario share one SLO."""
    if "slo_objective" not in rows or "slo_window" not in rows:
        return None, None
    objective = pd.to_numeric(rows["slo_objective"], errors="coerce").to_numpy(dtype=float)
    window = pd.to_numeric(rows["slo_window"], errors="coerce").to_numpy(dtype=float)
    stated = np.flatnonzero(np.isfinite(objective) & np.isfinite(window) & (window > 0) & (objective < 1))
    if not stated.size:
        return None, None
    return float(objective[stated[0]]), float(window[stated[0]])


def compute_budget_burn(rows: pd.DataFrame, objective: float | None, slo_window: float | None) -> np.ndarray | str:
    """Each served deployment's share of the SLO window's error budget (see the module
    docstring), or the reason there is none."""
    if objective is None or slo_window is None:
        return NO_SLO
    release = _floats(rows, "release_failed_requests")
    if release is None:
        return NO_RELEASE_COLUMNS
    requests = _floats(rows, "requests")
    window = compute_window(rows)
    if window is None:
        return "the table has no window column and no ended_at to tell how long requests were counted"
    served = np.isfinite(requests) & (requests > 0) & np.isfinite(release) & np.isfinite(window) & (window > 0)
    per_slo_window = requests[served] / window[served] * slo_window
    return release[served] / ((1.0 - objective) * per_slo_window)


def compute_window(rows: pd.DataFrame) -> np.ndarray | None:
    """Seconds each row's requests were counted over: the ``window`` column, else the
    shortest ``ended_at - started_at`` of the rows (the scenario's duration for the
    simulator, which watches a run longer only while a paged person still acts)."""
    if "window" in rows:
        return _floats(rows, "window")
    if "ended_at" not in rows or "started_at" not in rows:
        return None
    observed = _floats(rows, "ended_at") - _floats(rows, "started_at")
    observed = observed[np.isfinite(observed) & (observed > 0)]
    if not observed.size:
        return None
    return np.full(len(rows), float(observed.min()))


def _inverse(burn: DoraMetric) -> DoraMetric:
    """Deployments per SLO window that the mean burn allows: 1/burn, the interval inverted."""
    if burn.value is None:
        return DoraMetric(None, None, None, burn.n, "deployments", None, burn.note)

    def one_over(x: float | None) -> float | None:
        return None if x is None else (math.inf if x <= 0 else 1.0 / x)

    low, high = one_over(burn.high), one_over(burn.low)
    return DoraMetric(one_over(burn.value), low, high, burn.n, "deployments")


def _mean(values: np.ndarray, unit: str) -> DoraMetric:
    figure: Figure = compute_mean_bootstrap_interval(values)
    if figure.value is None:
        return DoraMetric(None, None, None, figure.n, unit, None, "no deployments with requests")
    return DoraMetric(figure.value, figure.low, figure.high, figure.n, unit)


def _floats(rows: pd.DataFrame, name: str) -> np.ndarray | None:
    if name not in rows:
        return None
    return pd.to_numeric(rows[name], errors="coerce").to_numpy(dtype=float)


def availability_frame(results: pd.DataFrame) -> pd.DataFrame:
    """The availability figures as summary.csv rows (the columns of ``dora.dora_frame``)."""
    return metrics_frame(compute_availability(results))
