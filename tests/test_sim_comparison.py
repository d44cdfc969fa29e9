"""Specification of results.statistics: the figures per strategy and their intervals, censored
times included; and of results.formatting: how a figure is written."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from rolloutlab.results.formatting import format_duration, format_figure, format_quantity
from rolloutlab.results.statistics import (
    FIGURE_KINDS,
    FIGURE_METHODS,
    Figure,
    compute_censored_quantile,
    compute_mean_bootstrap_interval,
    compute_mean_t_interval,
    compute_order_statistic_ranks,
    compute_quantile_interval,
    compute_wilson_interval,
    paired_difference,
    summarize,
)
from rolloutlab.results.table import to_frame

# --------------------------------------------------------------------------- Wilson

# Newcombe (1998), "Two-sided confidence intervals for the single proportion", Statistics in
# Medicine 17:857-872, Table I, method 3 (Wilson score interval without continuity correction).
NEWCOMBE = [
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0000, 0.1611),
    (1, 29, 0.0061, 0.1718),
]


@pytest.mark.parametrize(("k", "n", "low", "high"), NEWCOMBE, ids=[f"{k}/{n}" for k, n, *_ in NEWCOMBE])
def test_wilson_interval_matches_the_textbook(k: int, n: int, low: float, high: float) -> None:
    """The Wilson score interval reproduces Newcombe's published values to four decimals."""
    figure = compute_wilson_interval(k, n)
    assert figure.value == pytest.approx(k / n)
    assert (round(figure.low, 4), round(figure.high, 4)) == (low, high)
    assert figure.n == n


def test_wilson_interval_of_nothing_is_unavailable() -> None:
    """A proportion of zero runs is n/a, not 0%."""
    assert compute_wilson_interval(0, 0) == Figure(None, None, None, 0)


# --------------------------------------------------------------------------- order statistics

COVERAGE = [
    ("exponential", 25, 0.5, "median of 25 exponential"),
    ("lognormal", 60, 0.5, "median of 60 lognormal repair times"),
    ("lognormal", 120, 0.9, "p90 of 120 lognormal repair times"),
    ("exponential", 400, 0.99, "p99 of 400 exponential"),
]


@pytest.mark.parametrize(("family", "n", "q"), [r[:3] for r in COVERAGE], ids=[r[3] for r in COVERAGE])
def test_order_statistic_interval_covers_the_true_quantile(family: str, n: int, q: float) -> None:
    """Over 2000 seeded samples the order-statistic interval covers the true quantile ~95% of the time or more."""
    rng = np.random.default_rng(7)
    if family == "exponential":
        samples, truth = rng.exponential(1.0, (2000, n)), -math.log(1 - q)
    else:
        samples, truth = rng.lognormal(4.0, 0.8, (2000, n)), math.exp(4.0 + 0.8 * stats.norm.ppf(q))
    lo, hi = compute_order_statistic_ranks(n, q)
    ordered = np.sort(samples, axis=1)
    coverage = np.mean((ordered[:, lo] <= truth) & (truth <= ordered[:, hi]))
    assert coverage >= 0.94
    one = compute_quantile_interval(samples[0], q)  # the figure uses exactly these ranks
    assert (one.low, one.high) == (ordered[0, lo], ordered[0, hi])


TOO_FEW = [
    (0.5, 5, 6, "median needs 6"),
    (0.9, 35, 36, "p90 needs 36"),
    (0.99, 367, 368, "p99 needs 368"),
]


@pytest.mark.parametrize(("q", "short", "enough"), [r[:3] for r in TOO_FEW], ids=[r[3] for r in TOO_FEW])
def test_quantile_is_na_until_its_interval_exists(q: float, short: int, enough: int) -> None:
    """A quantile is n/a, value included, until the sample is large enough to bracket it at 95%."""
    values = np.arange(enough, dtype=float)
    assert compute_quantile_interval(values[:short], q) == Figure(None, None, None, short)
    assert compute_quantile_interval(values, q).value is not None


def test_quantile_ignores_missing_values() -> None:
    """NaN (did not happen) values are left out of a quantile and of its n."""
    figure = compute_quantile_interval([1.0, np.nan, 2.0, 3.0, 4.0, 5.0, 6.0, np.nan], 0.5)
    assert (figure.value, figure.low, figure.high, figure.n) == (3.5, 1.0, 6.0, 6)


# --------------------------------------------------------------------------- censored times


@pytest.mark.parametrize(("q", "n"), [(0.5, 60), (0.9, 200)], ids=["median of 60", "p90 of 200"])
def test_censored_quantile_interval_covers_the_true_quantile(q: float, n: int) -> None:
    """Over 1000 seeded samples of exponential times, a third censored at random follow-up
    times, the Kaplan-Meier interval covers the true quantile ~95% of the time."""
    rng = np.random.default_rng(5)
    truth = -math.log(1 - q)
    covered = 0
    for _ in range(1000):
        times = rng.exponential(1.0, n)
        followed = rng.exponential(4.0, n)  # about one time in five is still going on when followed up
        durations = np.where(times <= followed, times, np.nan)
        figure = compute_censored_quantile(durations, followed, q)
        covered += figure.low <= truth <= figure.high
    assert 0.93 <= covered / 1000 <= 0.98


def test_censored_quantile_without_censoring_is_the_empirical_quantile() -> None:
    """With every time ended, the estimate is the smallest value with a share q at or below it."""
    x = np.arange(1.0, 101.0)
    assert compute_censored_quantile(x, 1000.0, 0.5).value == 50.0
    assert compute_censored_quantile(x, 1000.0, 0.9).value == 90.0
    assert compute_censored_quantile(x, 1000.0, 0.9).censored == 0


@pytest.mark.parametrize(("n", "q"), [(6, 0.5), (37, 0.9), (400, 0.99)], ids=["median of 6", "p90 of 37", "p99 of 400"])
def test_without_censoring_the_interval_is_the_order_statistic_one(n: int, q: float) -> None:
    """With every time ended, the censoring-aware interval is exactly the distribution-free
    order-statistic interval (exact binomial band), so the two methods never disagree."""
    x = np.random.default_rng(n).lognormal(4.0, 0.8, n)
    figure, reference = compute_censored_quantile(x, 1e9, q), compute_quantile_interval(x, q)
    assert (figure.low, figure.high, figure.n, figure.censored) == (reference.low, reference.high, n, 0)


def test_a_median_beyond_the_window_is_beyond_it_not_dropped() -> None:
    """When more than half never ended, the median is "beyond the window": infinite, with
    the window as what it exceeds and the censored count; not the median of those that ended."""
    figure = compute_censored_quantile([60.0] * 10 + [np.nan] * 11, 1800.0, 0.5)
    assert math.isinf(figure.value) and figure.exceeds_window
    assert (figure.beyond, figure.censored, figure.n) == (1800.0, 11, 21)
    assert format_figure(figure, "duration").startswith(">30m00s")


def test_censoring_uses_each_items_own_follow_up() -> None:
    """A time that did not end counts as at least as long as its own window: followed
    long, it pushes the median up; followed 0 s, it says nothing."""
    ended = [10.0, 20.0, 30.0, 40.0]
    assert compute_censored_quantile(ended + [np.nan] * 3, 1000.0, 0.5).value == 40.0
    assert compute_censored_quantile(ended + [np.nan] * 3, [100.0] * 4 + [0.0] * 3, 0.5).value == 20.0


def test_equal_times_have_an_exact_interval() -> None:
    """Ten equal times have a median of exactly that time, with a zero-width interval."""
    assert compute_censored_quantile([5.0] * 10, 100.0, 0.5) == Figure(5.0, 5.0, 5.0, 10)


def test_a_censored_time_needs_its_follow_up() -> None:
    """A time that did not end without a finite follow-up cannot be placed: refused."""
    with pytest.raises(ValueError, match="followed time"):
        compute_censored_quantile([1.0, np.nan], [10.0, np.nan], 0.5)


def test_summaries_censor_what_was_never_restored() -> None:
    """A strategy that restores 10 incidents in a minute and never restores 11 more has a
    time-to-restore median beyond the window (not one minute), and says 11 were censored."""
    table = synthetic_table()
    canary = table["strategy"] == "canary"
    never = canary & table["run"].between(10, 20)  # 11 more incidents, still going on at the window's end
    table.loc[never, "change_failed"] = True
    table.loc[never, "impact_started_at"] = 10.0
    table.loc[canary & (table["run"] < 10), "time_to_restore"] = 60.0
    summary = summarize(table)[0]
    assert summary.mttr_median.exceeds_window and summary.mttr_median.censored == 11
    assert summary.mttr_median.beyond == 1800.0  # ended_at - impact_started_at
    assert format_figure(summary.mttr_median, "duration") == ">30m00s [1m00s, >30m00s] (11 cens.)"


# --------------------------------------------------------------------------- means


def test_t_interval_matches_scipy() -> None:
    """The mean's t interval is scipy's t.interval around the sample mean."""
    x = np.array([98.0, 101.5, 103.0, 99.0, 100.5, 97.0])
    low, high = stats.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
    figure = compute_mean_t_interval(x)
    assert (figure.value, figure.low, figure.high, figure.n) == pytest.approx((x.mean(), low, high, 6))


def test_bootstrap_interval_is_reproducible_and_skewed_like_the_data() -> None:
    """The BCa interval of zero-inflated counts is the same each time and longer on the heavy side."""
    rng = np.random.default_rng(3)
    x = rng.binomial(1, 0.1, 500) * rng.lognormal(6, 1.0, 500)
    first, second = compute_mean_bootstrap_interval(x), compute_mean_bootstrap_interval(x)
    assert first == second
    assert first.low < first.value < first.high
    assert first.high - first.value > first.value - first.low


MEAN_EDGES = [
    ([], Figure(None, None, None, 0), "no values"),
    ([7.0], Figure(7.0, None, None, 1), "one value"),
    ([7.0, 7.0, 7.0], Figure(7.0, 7.0, 7.0, 3), "all equal"),
]


@pytest.mark.parametrize(("values", "expected"), [r[:2] for r in MEAN_EDGES], ids=[r[2] for r in MEAN_EDGES])
@pytest.mark.parametrize(
    "compute", [compute_mean_t_interval, compute_mean_bootstrap_interval], ids=["t", "bca"]
)
def test_means_of_degenerate_samples(values: list[float], expected: Figure, compute) -> None:
    """No values is n/a, one value has no interval, equal values have a zero-width interval."""
    assert compute(values) == expected


# --------------------------------------------------------------------------- summaries


def synthetic_table() -> pd.DataFrame:
    """Two strategies over 200 paired runs with figures chosen to be known in advance."""
    rows = []
    for strategy, failures, false_rollbacks, failed in (("canary", 10, 3, 7), ("rolling", 40, 0, 40)):
        for run in range(200):
            defective = run < 50
            changed = run < failures
            rolled_back_healthy = 50 <= run < 50 + false_rollbacks
            outcome = "rolled_back" if defective else "false_rollback" if rolled_back_healthy else "promoted"
            rows.append({
                "source": "sim", "scenario": "checkout", "strategy": strategy, "run": run, "seed": 1,
                "release": "v2", "defect": "errorRate" if defective else "none", "outcome": outcome,
                "started_at": 10.0, "finished_at": 310.0,
                "detected_at": 40.0 if defective else np.nan, "restored_at": 70.0 if changed else np.nan,
                "requests": 10_000, "failed_requests": failed if changed else 0,
                "peak_error_rate": 0.01 if changed else 0.0, "replica_seconds": 1000.0 + (run % 4) * 10,
                "change_failed": changed, "time_to_restore": 60.0 + run if changed else np.nan,
                "rollout_duration": 300.0, "impact_started_at": 10.0 if changed else np.nan, "ended_at": 1810.0,
                "release_failed_requests": (failed - 3.0) if changed else -3.0,
            })
    return to_frame(rows)


def test_summaries_of_a_table_with_known_figures() -> None:
    """Each figure of a synthetic table equals its known value, with the method's interval."""
    canary, rolling = summarize(synthetic_table())
    assert (canary.strategy, canary.runs, rolling.strategy) == ("canary", 200, "rolling")
    assert canary.change_failure_rate == compute_wilson_interval(10, 200)
    assert rolling.change_failure_rate.value == pytest.approx(0.2)
    assert canary.false_rollback_rate == compute_wilson_interval(3, 150)
    assert rolling.false_rollback_rate.value == 0.0
    assert canary.mttr_median == compute_censored_quantile(60.0 + np.arange(10), 1800.0, 0.5)
    assert canary.mttr_median.value == 64.0  # the smallest time with half the incidents restored
    assert canary.mttr_p90.value == 68.0 and math.isinf(canary.mttr_p90.high)  # 10 values cannot bound a p90
    assert canary.mttr_p90.beyond == 69.0
    assert rolling.mttr_p90 == compute_censored_quantile(60.0 + np.arange(40), 1800.0, 0.9)
    assert rolling.mttr_p90.value == 60.0 + 35
    assert canary.failed_requests_mean == compute_mean_bootstrap_interval([7] * 10 + [0] * 190)
    assert canary.failed_requests_mean.value == pytest.approx(0.35)
    assert canary.release_failed_requests_mean.value == pytest.approx(0.35 - 3.0)
    assert canary.failed_requests_p99 == Figure(None, None, None, 200)
    assert canary.rollout_duration_median == Figure(300.0, 300.0, 300.0, 200)
    assert canary.detection_time_median == Figure(30.0, 30.0, 30.0, 50)
    low, high = stats.t.interval(0.95, 199, loc=1015.0, scale=stats.sem(1000.0 + (np.arange(200) % 4) * 10))
    cost = canary.cost_mean
    assert (cost.value, cost.low, cost.high) == pytest.approx((1015.0, low, high))


def test_summaries_need_the_simulator_columns() -> None:
    """A table without the simulator's extra columns is refused, naming what is missing."""
    expected = "lacks column\\(s\\) the comparison needs: change_failed, time_to_restore, ended_at"
    with pytest.raises(ValueError, match=expected):
        summarize(synthetic_table().drop(columns=["change_failed", "time_to_restore", "ended_at"]))


def test_summaries_refuse_to_mix_scenarios() -> None:
    """Strategies are compared within one scenario; a table of two must be filtered first."""
    table = synthetic_table()
    table.loc[table["run"] == 0, "scenario"] = "search"
    with pytest.raises(ValueError, match="within one scenario"):
        summarize(table)


def test_every_figure_has_a_named_method_and_a_format() -> None:
    """Each summary figure has its method in FIGURE_METHODS and its format in FIGURE_KINDS."""
    names = list(summarize(synthetic_table())[0].figures())
    assert names == list(FIGURE_METHODS) == list(FIGURE_KINDS)


# --------------------------------------------------------------------------- presentation

DURATIONS = [
    (4.2, "4.2s"), (45.0, "45s"), (59.6, "1m00s"), (125.0, "2m05s"), (3725.0, "1h02m05s"),
    (86400.0 + 3600, "25h00m00s"), (3 * 86400 + 4 * 3600 + 100, "3d04h"), (None, "n/a"),
]


@pytest.mark.parametrize(("seconds", "text"), DURATIONS, ids=[t for _, t in DURATIONS])
def test_durations_read_like_a_clock(seconds: float | None, text: str) -> None:
    """Durations print as seconds, minutes and hours ("2m05s"), never as a bare number of seconds."""
    assert format_duration(seconds) == text


QUANTITIES = [
    (0.0, "0"), (0.35, "0.35"), (12.34, "12.3"), (-12.34, "-12.3"), (999.4, "999"), (999.6, "1k"),
    (12_345.0, "12.3k"), (4_560_000.0, "4.56M"), (0.00012, "1.2e-04"),
]


@pytest.mark.parametrize(("x", "text"), QUANTITIES, ids=[t for _, t in QUANTITIES])
def test_quantities_have_three_significant_figures(x: float, text: str) -> None:
    """Counts print with three significant figures and a k/M suffix, so brackets stay unambiguous."""
    assert format_quantity(x) == text


CELLS = [
    (Figure(0.041, 0.029, 0.056, 500), "percent", "4.1% [2.9, 5.6]"),
    (Figure(125.0, 110.0, 140.0, 80), "duration", "2m05s [1m50s, 2m20s]"),
    (Figure(7.0, None, None, 1), "quantity", "7 [n/a]"),
    (Figure(None, None, None, 3), "duration", "n/a"),
    (Figure(math.inf, 300.0, math.inf, 21, 11, 1800.0), "duration", ">30m00s [5m00s, >30m00s] (11 cens.)"),
    (Figure(math.inf, math.inf, math.inf, 4, 4, 1800.0), "duration", ">30m00s (4 cens.)"),
    (Figure(125.0, 110.0, math.inf, 9, 0, 140.0), "duration", "2m05s [1m50s, >2m20s]"),
]


@pytest.mark.parametrize(("figure", "kind", "text"), CELLS, ids=[t for *_, t in CELLS])
def test_cells_show_value_and_interval(figure: Figure, kind: str, text: str) -> None:
    """A cell is "value [low, high]", or says n/a when the figure or its interval does not exist."""
    assert format_figure(figure, kind) == text


# --------------------------------------------------------------------------- paired differences


def paired_table(n: int = 300) -> pd.DataFrame:
    """Canary fails 5 fewer requests than rolling in every run, on top of large shared per-run luck."""
    rng = np.random.default_rng(11)
    luck = rng.lognormal(5, 1, n).round()
    noise = rng.integers(-2, 3, n)
    rows = []
    for strategy, failed in (("rolling", luck + 5), ("canary", luck + noise)):
        for run in range(n):
            rows.append({
                "source": "sim", "scenario": "checkout", "strategy": strategy, "run": run, "seed": 3,
                "release": "v2", "defect": "none", "outcome": "promoted", "started_at": 0.0,
                "finished_at": 1.0, "detected_at": np.nan, "restored_at": np.nan, "requests": 100_000,
                "failed_requests": int(failed[run]), "peak_error_rate": 0.0, "replica_seconds": 1.0,
                "change_failed": False,
            })
    return to_frame(rows)


def test_paired_difference_sees_through_shared_luck() -> None:
    """Pairing by run recovers a 5-request difference that unpaired intervals could not resolve."""
    table = paired_table()
    result = paired_difference(table, "failed_requests", "canary", "rolling")
    assert result.difference.n == 300
    assert result.difference.low < -5 < result.difference.high
    assert result.difference.high - result.difference.low < 1.0
    separate = [
        compute_mean_t_interval(table.loc[table["strategy"] == s, "failed_requests"]) for s in ("canary", "rolling")
    ]
    assert separate[0].high > separate[1].low  # unpaired, the two intervals overlap
    assert result.describe().startswith("canary - rolling in failed_requests: -")


BAD_PAIRS = [
    ("failed_requests", "canary", "bluegreen", "strategy 'bluegreen' is not in the table", "unknown strategy"),
    ("failed_requests", "canary", "canary", "two different strategies", "same strategy"),
    ("outcome", "canary", "rolling", "not numeric", "text metric"),
    ("latency", "canary", "rolling", "lacks column\\(s\\) the comparison needs: latency", "absent metric"),
]


@pytest.mark.parametrize(
    ("metric", "a", "b", "message"), [r[:4] for r in BAD_PAIRS], ids=[r[4] for r in BAD_PAIRS]
)
def test_paired_difference_refuses_what_it_cannot_pair(metric: str, a: str, b: str, message: str) -> None:
    """Comparisons that cannot be made are refused saying why."""
    with pytest.raises(ValueError, match=message):
        paired_difference(paired_table(20), metric, a, b)


def test_paired_difference_needs_common_runs() -> None:
    """Strategies run with different seeds share no runs to pair, and that is an error."""
    table = paired_table(20)
    table.loc[table["strategy"] == "canary", "seed"] = 4
    with pytest.raises(ValueError, match="share \\(source, scenario, seed, run\\)"):
        paired_difference(table, "failed_requests", "canary", "rolling")
