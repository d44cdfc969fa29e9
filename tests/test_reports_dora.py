"""DORA metrics and tiers over results tables (reports.dora)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from rolloutlab.reports.dora import (
    DEFINITIONS,
    NO_RELEASE_COLUMNS,
    compute_dora,
    compute_quantile_minimum,
    dora_frame,
)
from rolloutlab.reports.tiers import DAY, HOUR, TIERS, WEEK, Tier, classify
from rolloutlab.results.table import to_frame

E, H, M, L = Tier.ELITE, Tier.HIGH, Tier.MEDIUM, Tier.LOW

TIER_CASES = [
    # deployments per day: elite is *multiple* per day
    ("deployment_frequency", 3.0, E, "freq-3-per-day"),
    ("deployment_frequency", 1.0001, E, "freq-just-over-daily"),
    ("deployment_frequency", 1.0, H, "freq-exactly-daily-is-high"),
    ("deployment_frequency", 1 / 7, H, "freq-exactly-weekly-is-high"),
    ("deployment_frequency", 1 / 7 - 1e-9, M, "freq-just-under-weekly"),
    ("deployment_frequency", 1 / 30, M, "freq-exactly-monthly-is-medium"),
    ("deployment_frequency", 1 / 30 - 1e-9, L, "freq-just-under-monthly"),
    ("deployment_frequency", 1 / 365, L, "freq-yearly-is-low"),
    # lead time (s): elite is less than one day
    ("change_lead_time", DAY - 1, E, "lead-just-under-a-day"),
    ("change_lead_time", DAY, H, "lead-exactly-a-day-is-high"),
    ("change_lead_time", WEEK, H, "lead-exactly-a-week-is-high"),
    ("change_lead_time", WEEK + 1, M, "lead-just-over-a-week"),
    ("change_lead_time", 30 * DAY, M, "lead-exactly-a-month-is-medium"),
    ("change_lead_time", 30 * DAY + 1, L, "lead-just-over-a-month"),
    ("change_lead_time", 400 * DAY, L, "lead-over-six-months-is-low"),
    # change failure rate: at most the cluster's rate
    ("change_failure_rate", 0.0, E, "cfr-zero"),
    ("change_failure_rate", 0.05, E, "cfr-exactly-5pc-is-elite"),
    ("change_failure_rate", 0.0501, H, "cfr-just-over-5pc"),
    ("change_failure_rate", 0.10, H, "cfr-exactly-10pc-is-high"),
    ("change_failure_rate", 0.1001, M, "cfr-just-over-10pc"),
    ("change_failure_rate", 0.15, M, "cfr-exactly-15pc-is-medium"),
    ("change_failure_rate", 0.1501, L, "cfr-just-over-15pc"),
    ("change_failure_rate", 0.64, L, "cfr-64pc"),
    # recovery time (s)
    ("failed_deployment_recovery_time", HOUR - 1, E, "restore-just-under-an-hour"),
    ("failed_deployment_recovery_time", HOUR, H, "restore-exactly-an-hour-is-high"),
    ("failed_deployment_recovery_time", DAY - 1, H, "restore-just-under-a-day"),
    ("failed_deployment_recovery_time", DAY, M, "restore-exactly-a-day-is-medium"),
    ("failed_deployment_recovery_time", WEEK, M, "restore-exactly-a-week-is-medium"),
    ("failed_deployment_recovery_time", WEEK + 1, L, "restore-over-a-week-is-low"),
    # no tiers
    ("deployment_rework_rate", 0.01, None, "rework-has-no-tiers"),
    ("change_failure_rate", None, None, "none-has-no-tier"),
    ("change_lead_time", float("nan"), None, "nan-has-no-tier"),
]


@pytest.mark.parametrize("metric, value, expected", [c[:3] for c in TIER_CASES], ids=[c[3] for c in TIER_CASES])
def test_classify_boundaries(metric, value, expected):
    """A value at or around a tier boundary lands in the tier the report's wording gives it."""
    assert classify(metric, value) == expected


def test_tiers_cite_a_source_and_cover_every_dora_metric():
    """Every DORA metric has a tier table citing its source; rework says why it has none."""
    assert set(TIERS) == {"deployment_frequency", "change_lead_time", "change_failure_rate",
                          "failed_deployment_recovery_time", "deployment_rework_rate"}
    assert all("2023" in t.source or "2024" in t.source for t in TIERS.values())
    assert not TIERS["deployment_rework_rate"].bands and "2024" in TIERS["deployment_rework_rate"].note
    assert set(TIERS) < set(DEFINITIONS) and {"failed_requests", "users_affected_share", "cost"} <= set(DEFINITIONS)


def test_classify_unknown_metric_raises():
    """Asking for the tier of a metric DORA does not define is a programming error."""
    with pytest.raises(KeyError):
        classify("uptime", 0.5)


def synthetic(n: int = 40, strategy: str = "canary", scenario: str = "s") -> pd.DataFrame:
    """n history deployments one every 6 hours, every 4th failed, with known columns."""
    i = np.arange(n)
    failed = i % 4 == 0
    return to_frame({
        "source": "sim", "scenario": scenario, "strategy": strategy, "run": 0, "seed": 1,
        "release": f"r{k}", "defect": "none", "outcome": "promoted",
        "started_at": k * 6 * HOUR, "finished_at": k * 6 * HOUR + 600.0, "detected_at": float("nan"),
        "restored_at": float("nan"), "requests": 1000, "failed_requests": 10 * k,
        "peak_error_rate": 0.0, "replica_seconds": 100.0 + k,
        "change_failed": bool(failed[k]), "time_to_restore": 1800.0 + k if failed[k] else float("nan"),
        "rollout_duration": 600.0 + k, "exposed_requests": 2 * k, "lead_time": 3600.0 * (k + 1),
        "rework": k % 10 == 0,
    } for k in i)


def test_metrics_on_a_synthetic_table():
    """Each metric equals its known value on a table built to have it."""
    [s] = compute_dora(synthetic())
    assert (s.source, s.scenario, s.strategy, s.deployments) == ("sim", "s", "canary", 40)
    assert s.deployment_frequency.value == pytest.approx(4.0)  # 39 gaps over 39 x 6 h
    assert s.deployment_frequency.low < 4.0 < s.deployment_frequency.high
    assert s.deployment_frequency.tier is Tier.ELITE
    assert s.lead_time_median.value == pytest.approx(20.5 * 3600)
    assert s.lead_time_median.tier is Tier.ELITE and s.lead_time_median.low <= s.lead_time_median.value
    assert s.lead_time_p90.value == pytest.approx(np.quantile(3600.0 * (np.arange(40) + 1), 0.9))
    assert s.lead_time_p90.tier is None
    assert s.change_failure_rate.value == pytest.approx(0.25) and s.change_failure_rate.n == 40
    assert s.change_failure_rate.tier is Tier.LOW
    assert s.recovery_time_median.value == pytest.approx(1800.0 + np.median(np.arange(0, 40, 4)))
    assert s.recovery_time_median.tier is Tier.ELITE and s.recovery_time_median.n == 10
    assert "restored incidents only" in s.recovery_time_median.note  # no ended_at: cannot censor
    assert s.rework_rate.value == pytest.approx(0.1) and s.rework_rate.tier is None
    assert s.failed_requests_mean.value == pytest.approx(195.0)
    assert s.failed_requests_p99.value is None and "too few" in s.failed_requests_p99.note
    assert s.users_affected_mean.value == pytest.approx(np.mean(2 * np.arange(40) / 1000))
    assert s.rollout_duration_median.value == pytest.approx(619.5)
    assert s.cost_mean.value == pytest.approx(119.5) and s.cost_mean.low < 119.5 < s.cost_mean.high


def test_non_history_rows_have_no_frequency_or_lead_time():
    """Simulated runs all starting at 0 give frequency and lead time None, each with a reason."""
    df = synthetic(10).drop(columns=["lead_time", "rework"])
    df["started_at"] = 0.0
    df["finished_at"] = 600.0
    df["run"] = np.arange(10)
    [s] = compute_dora(df)
    assert s.deployment_frequency.value is None and "history" in s.deployment_frequency.note
    assert s.lead_time_median.value is None and "commit" in s.lead_time_median.note
    assert s.rework_rate.value is None and s.rework_rate.note


def test_groups_by_source_scenario_and_strategy():
    """A table mixing scenarios and strategies gives one summary per (source, scenario, strategy)."""
    df = pd.concat([synthetic(8, "canary", "a"), synthetic(8, "rolling", "a"), synthetic(8, "canary", "b")])
    keys = [(s.source, s.scenario, s.strategy) for s in compute_dora(df)]
    assert keys == [("sim", "a", "canary"), ("sim", "a", "rolling"), ("sim", "b", "canary")]


def test_dora_frame_is_tidy():
    """The summary has one row per strategy x metric with value, interval, n, unit and tier."""
    frame = dora_frame(synthetic())
    assert list(frame.columns[:10]) == ["source", "scenario", "strategy", "metric", "value", "low", "high",
                                        "n", "unit", "tier"]
    assert len(frame) == 15 and frame["metric"].is_unique
    row = frame.set_index("metric").loc["change_failure_rate"]
    assert row["value"] == pytest.approx(0.25) and row["tier"] == "low" and row["unit"] == "fraction"
    assert math.isnan(frame.set_index("metric").loc["failed_requests_p99", "value"])


def test_history_run_frequency_matches_deploys_per_day():
    """A 30-day simulated history of canary deployments (no failures, so no rework adds
    deployments) gives a frequency whose interval covers deploys_per_day."""
    from rolloutlab.scenarios.schema import Scenario
    from rolloutlab.sim.history import simulate_history
    from rolloutlab.strategies import load_strategy

    scenario = Scenario.model_validate({
        "name": "h", "duration": "10m", "services": [{"name": "web", "replicas": 4}],
        "traffic": {"rps": 20}, "history": {"days": 30, "deploys_per_day": 2, "defect_probability": 0.0},
    })
    rows = simulate_history(scenario, load_strategy("canary"), 0, np.random.SeedSequence(7), root_seed=7)
    [s] = compute_dora(to_frame(rows))
    freq = s.deployment_frequency
    assert freq.value is not None and math.isfinite(freq.value)
    assert freq.low <= 2.0 <= freq.high and freq.value == pytest.approx(2.0, rel=0.35)
    assert s.lead_time_median.value is not None and s.change_failure_rate.n == len(rows)


# --------------------------------------------------------------------------- censoring


def incidents(restored: list[float], unrestored: int, window: float = 1800.0, impact_at: float = 60.0,
              strategy: str = "rolling") -> pd.DataFrame:
    """Simulated runs of one strategy, each a change failure whose impact starts at ``impact_at``:
    restored after the given seconds, or (``unrestored`` of them) not by the window's end."""
    times = [*restored, *([math.nan] * unrestored)]
    return to_frame({
        "source": "sim", "scenario": "s", "strategy": strategy, "run": k, "seed": 1, "release": f"s#{k}",
        "defect": "error_rate", "outcome": "rolled_back_manual" if math.isfinite(t) else "failed_undetected",
        "started_at": 0.0, "finished_at": 300.0, "detected_at": 120.0, "detected_by": "alert",
        "restored_at": impact_at + t if math.isfinite(t) else math.nan, "requests": 1000, "failed_requests": 50,
        "peak_error_rate": 0.05, "replica_seconds": 100.0, "change_failed": True, "impact_started_at": impact_at,
        "time_to_restore": t, "ended_at": window, "rollout_duration": 300.0,
    } for k, t in enumerate(times))


def test_a_strategy_that_never_restores_half_its_incidents_gets_no_good_tier():
    """Four restored in 5 minutes and six never restored: the median is beyond the window, tiered low, six censored."""
    [s] = compute_dora(incidents([300.0] * 4, unrestored=6))
    median = s.recovery_time_median
    assert median.exceeds_window and median.beyond == pytest.approx(1800.0 - 60.0)
    assert median.tier is Tier.LOW  # dropping the six would give 5 minutes: elite
    assert (median.n, median.censored) == (10, 6)
    assert "beyond the window" in median.note
    assert s.recovery_time_p90.exceeds_window and s.recovery_time_p90.tier is None


def test_a_few_censored_incidents_keep_the_median_and_are_counted():
    """Nine restored within minutes and one never: the median is a time, tiered by it, with one censored."""
    [s] = compute_dora(incidents([60.0 * k for k in range(1, 10)], unrestored=1))
    median = s.recovery_time_median
    assert median.value == pytest.approx(300.0) and median.tier is Tier.ELITE
    assert (median.n, median.censored) == (10, 1) and not median.exceeds_window


def test_censored_counts_reach_the_summary():
    """summary.csv carries how many values were censored and, beyond the window, the time exceeded."""
    frame = dora_frame(incidents([300.0] * 4, unrestored=6)).set_index("metric")
    row = frame.loc["recovery_time_median"]
    assert row["censored"] == 6 and math.isinf(row["value"]) and row["beyond"] == pytest.approx(1740.0)
    assert row["tier"] == "low"


# --------------------------------------------------------------------------- release-caused failures


def test_release_caused_failures_are_the_headline_beside_the_total():
    """With release columns, the release's mean is reported beside the total's."""
    df = incidents([300.0] * 10, unrestored=0)
    df["baseline_failed_requests"] = 1.0
    df["release_failed_requests"] = df["failed_requests"] - 1.0
    [s] = compute_dora(df)
    assert s.release_failed_requests_mean.value == pytest.approx(49.0)
    assert s.failed_requests_mean.value == pytest.approx(50.0)


def test_a_table_without_release_columns_says_why_and_keeps_the_total():
    """An older table has no release-caused figure (with the reason) and still the total."""
    [s] = compute_dora(incidents([300.0] * 10, unrestored=0))
    assert s.release_failed_requests_mean.value is None
    assert s.release_failed_requests_mean.note == NO_RELEASE_COLUMNS
    assert s.failed_requests_mean.value == pytest.approx(50.0)


@pytest.mark.parametrize(("q", "expected"), [(0.5, 6), (0.9, 36), (0.99, 368)], ids=["median", "p90", "p99"])
def test_the_fewest_values_for_a_quantile_interval(q, expected):
    """A quantile's note names the fewest values its order-statistic interval needs."""
    assert compute_quantile_minimum(q) == expected


def test_only_a_stuck_rollout_is_censored_an_unknown_duration_is_left_out():
    """A stuck rollout counts as lasting past the window; a duration nobody recorded is not counted at all."""
    stuck = incidents([300.0] * 10, unrestored=0)
    stuck.loc[:5, "rollout_duration"] = math.nan
    stuck.loc[:5, "outcome"] = "stuck"
    [s] = compute_dora(stuck)
    assert s.rollout_duration_median.exceeds_window and s.rollout_duration_median.censored == 6
    unknown = incidents([300.0] * 20, unrestored=0)
    unknown.loc[:5, "rollout_duration"] = math.nan
    [u] = compute_dora(unknown)
    assert u.rollout_duration_median.value == pytest.approx(300.0) and u.rollout_duration_median.n == 14


def test_rework_is_not_claimed_for_rows_that_do_not_record_it():
    """Single-release rows beside a history's rows (one table) carry no rework flag: their
    rework rate is n/a, not 0%."""
    import numpy as np

    from rolloutlab.reports.dora import compute_dora
    from rolloutlab.results.table import to_frame
    from rolloutlab.scenarios.schema import bundled_scenario, load_scenario
    from rolloutlab.strategies import load_strategy
    from rolloutlab.workflows.compare import simulate_many

    single = simulate_many(load_scenario(bundled_scenario("standard")), [load_strategy("rolling")], runs=5,
                           seed=2, executor="serial")
    month = single.assign(scenario="with-history", rework=np.r_[[False, True], [False] * (len(single) - 2)])
    both = to_frame(pd.concat([single, month], ignore_index=True))
    by_scenario = {d.scenario: d for d in compute_dora(both)}
    assert by_scenario["standard"].rework_rate.value is None
    assert by_scenario["with-history"].rework_rate.value == pytest.approx(1 / len(single))
