"""Availability over the window and the error budget one deployment burns (reports.availability)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from rolloutlab.reports.availability import NO_SLO, availability_frame, compute_availability
from rolloutlab.reports.dora import NO_RELEASE_COLUMNS
from rolloutlab.results.table import to_frame

THIRTY_DAYS = 30 * 86400.0


def runs(n: int = 50, failed: int = 10, caused: float = 5.0, objective: float = 0.999,
         slo_window: float = THIRTY_DAYS, window: float = 1800.0, release_columns: bool = True) -> pd.DataFrame:
    """n deployments of 1000 requests over a ``window``-second window, ``failed`` of them failing
    on average (5 fewer or more, alternately), ``caused`` of those because of the release; the
    scenario's SLO as given (NaN: none)."""
    rows = []
    for k in range(n):
        here = failed + (5 if k % 2 else -5)
        row = {
            "source": "sim", "scenario": "s", "strategy": "canary", "run": k, "seed": 1, "release": f"s#{k}",
            "defect": "none", "outcome": "promoted", "started_at": 0.0, "finished_at": 300.0,
            "detected_at": math.nan, "detected_by": "", "restored_at": math.nan, "requests": 1000,
            "failed_requests": here, "peak_error_rate": 0.01, "replica_seconds": 100.0, "ended_at": window,
            "slo_objective": objective, "slo_window": slo_window,
        }
        if release_columns:
            row |= {"baseline_failed_requests": here - caused, "release_failed_requests": caused}
        rows.append(row)
    return to_frame(rows)


def test_availability_is_the_share_of_requests_that_succeeded():
    """Ten failures in a thousand requests per window is 99% availability, with an interval around it."""
    [a] = compute_availability(runs())
    assert a.availability.value == pytest.approx(0.99)
    assert a.availability.low <= 0.99 <= a.availability.high and a.availability.n == 50


def test_budget_burn_scales_the_window_up_to_the_slo_period():
    """5 release-caused failures against 0.1% of the 30-day traffic (1000 requests per 30 min) is 5/1440 of the budget."""
    [a] = compute_availability(runs())
    budget = (1 - 0.999) * 1000 / 1800.0 * THIRTY_DAYS  # 1440 failed requests allowed in 30 days
    assert a.error_budget_burn_mean.value == pytest.approx(5.0 / budget)
    assert a.deployments_per_budget.value == pytest.approx(budget / 5.0)
    assert (a.objective, a.slo_window) == (0.999, THIRTY_DAYS)


def test_only_failures_the_release_caused_burn_the_budget():
    """Baseline failures do not burn the budget: with none caused by the release, nothing is burned."""
    [a] = compute_availability(runs(caused=0.0))
    assert a.error_budget_burn_mean.value == 0.0
    assert math.isinf(a.deployments_per_budget.value)


@pytest.mark.parametrize(
    ("table", "reason"),
    [(runs(objective=math.nan, slo_window=math.nan), NO_SLO), (runs(release_columns=False), NO_RELEASE_COLUMNS)],
    ids=["no SLO", "no release columns"],
)
def test_no_budget_figure_without_an_slo_or_release_columns(table, reason):
    """Without an SLO, or without the release's failures, the burn is n/a with the reason; availability stays."""
    [a] = compute_availability(table)
    assert a.error_budget_burn_mean.value is None and a.error_budget_burn_mean.note == reason
    assert a.deployments_per_budget.value is None
    assert a.availability.value == pytest.approx(0.99)


def test_availability_rows_reach_the_summary():
    """summary.csv gets one row per strategy and availability figure, in the DORA summary's columns."""
    frame = availability_frame(runs()).set_index("metric")
    assert list(frame.index) == ["availability", "error_budget_burn_mean", "error_budget_burn_p90",
                                 "deployments_per_budget"]
    assert frame.loc["availability", "value"] == pytest.approx(0.99) and frame.loc["availability", "unit"] == "fraction"
