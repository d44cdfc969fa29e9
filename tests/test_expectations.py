"""Expectations judged with their confidence intervals: what each metric counts, which
bound decides, and what the message says."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from rolloutlab.results.statistics import (
    compute_censored_quantile,
    compute_mean_bootstrap_interval,
    compute_mean_t_interval,
    compute_quantile_interval,
    compute_wilson_interval,
)
from rolloutlab.scenarios.expectations import (
    ExpectationVerdict,
    MetricSample,
    compute_metric_sample,
    judge_assertion,
    judge_expectations,
    minimum_values,
)
from rolloutlab.scenarios.schema import Scenario, parse_assertion

INF = math.inf
NAN = math.nan

# Five deployments of one strategy, one of each kind a metric treats differently.
ROWS = pd.DataFrame({
    "strategy": ["s"] * 5,
    "defect": ["none", "none", "error_rate", "error_rate", "crash_on_start"],
    "outcome": ["promoted", "false_rollback", "rolled_back", "failed_undetected", "stuck"],
    "change_failed": [False, False, True, True, False],
    "time_to_restore": [NAN, NAN, 50.0, NAN, NAN],  # the undetected failure was never restored
    "failed_requests": [10, 20, 100, 500, 0],
    "release_failed_requests": [0.0, 9.0, 90.0, 490.0, 0.0],  # the total minus the old version's own
    "requests": [1000, 1000, 1000, 1000, 0],
    "started_at": [0.0] * 5,
    "detected_at": [NAN, 30.0, 40.0, NAN, NAN],
    "rollout_duration": [100.0, 60.0, 90.0, 100.0, NAN],  # the stuck one never finished
    "replica_seconds": [50.0, 40.0, 45.0, 50.0, 30.0],
    "impact_started_at": [NAN, NAN, 10.0, 20.0, NAN],
    "ended_at": [1800.0, 1800.0, 1800.0, 1800.0, 1800.0],  # the window every run was observed for
})

SAMPLES = [
    ("change_failure_rate", "deployments", [0, 0, 1, 1, 0]),
    ("false_rollback_rate", "healthy releases", [0, 1]),
    ("mttr", "deployments that hurt users", [50, INF]),
    ("failed_requests", "deployments", [10, 20, 100, 500, 0]),
    ("release_failed_requests", "deployments", [0, 9, 90, 490, 0]),
    ("failed_request_fraction", "deployments", [0.01, 0.02, 0.1, 0.5, 0.0]),
    ("detected_within", "defective releases", [40, INF, INF]),
    ("rollout_duration", "deployments", [100, 60, 90, 100, INF]),
    ("cost", "deployments", [50, 40, 45, 50, 30]),
]


@pytest.mark.parametrize(("metric", "population", "values"), SAMPLES, ids=[row[0] for row in SAMPLES])
def test_each_metric_counts_the_documented_deployments(metric, population, values):
    """A metric's values come from the deployments its definition names; a time that had
    not ended when the window closed (not restored, not detected, not finished) is
    carried as infinity and counted as censored."""
    sample = compute_metric_sample(ROWS, metric)
    assert sample.population == population
    assert sample.values.tolist() == pytest.approx(values)
    assert sample.censored == sum(1 for v in values if v == INF)


FOLLOWED = [
    ("mttr", [1790.0, 1780.0]),  # window end - impact start
    ("detected_within", [1800.0] * 3),  # window end - rollout start
    ("rollout_duration", [1800.0] * 5),
    ("failed_requests", None),  # an amount, never censored
]


@pytest.mark.parametrize(("metric", "followed"), FOLLOWED, ids=[row[0] for row in FOLLOWED])
def test_times_know_how_long_each_deployment_was_followed(metric, followed):
    """A time that may not end in the window carries, per deployment, how long it was
    observed: where one that never ended is censored."""
    sample = compute_metric_sample(ROWS, metric)
    if followed is None:
        assert sample.followed is None
    else:
        assert sample.followed.tolist() == pytest.approx(followed)


WINDOW = 1800.0


def sample(metric: str, values, window: float = WINDOW) -> MetricSample:
    """A sample over deployments each observed for ``window`` seconds (times: censored there)."""
    array = np.asarray(values, dtype=float)
    timed = metric in ("mttr", "detected_within", "rollout_duration")
    return MetricSample(metric, "deployments", array, int(np.isinf(array).sum()),
                        np.full(array.shape, window) if timed else None)


UPTO_98 = list(range(1, 99))
VERDICTS = [
    # name, expectation, values, verdict
    ("rate-upper-bound-within", "change_failure_rate <= 1%", [0] * 400, ExpectationVerdict.HOLDS),  # Wilson upper 0.95%
    ("rate-too-few-runs-to-show-it", "change_failure_rate <= 1%", [0] * 300, ExpectationVerdict.UNPROVEN),  # upper 1.26%
    ("rate-estimate-breaks-it", "change_failure_rate <= 5%", [1] * 10 + [0] * 90, ExpectationVerdict.VIOLATED),
    ("lower-bound-decides-at-least", "change_failure_rate >= 90%", [1] * 95 + [0] * 5, ExpectationVerdict.UNPROVEN),  # lower 88.8%
    ("lower-bound-within", "change_failure_rate >= 95%", [1] * 100, ExpectationVerdict.HOLDS),  # lower 96.3%
    ("p90-with-a-few-censored", "mttr.p90 <= 200s", UPTO_98 + [INF] * 2, ExpectationVerdict.HOLDS),  # KM [84, 96]
    ("p90-upper-bound-just-above", "mttr.p90 <= 95s", UPTO_98 + [INF] * 2, ExpectationVerdict.UNPROVEN),
    ("p90-beyond-a-long-window", "mttr.p90 <= 10m", list(range(1, 81)) + [INF] * 20, ExpectationVerdict.VIOLATED),
    ("p90-beyond-a-short-window-is-undecided", "mttr.p90 <= 1h", list(range(1, 81)) + [INF] * 20,
     ExpectationVerdict.UNPROVEN),
    ("median-censored-half-the-time", "mttr.median <= 10m", [60] * 10 + [INF] * 11, ExpectationVerdict.VIOLATED),
    ("at-least-beyond-the-window", "detected_within.median >= 10m", [INF] * 40, ExpectationVerdict.HOLDS),
    ("mean-with-a-never-is-unbounded", "mttr.mean <= 1h", [1, 2, INF], ExpectationVerdict.VIOLATED),
    ("equality-needs-both-bounds", "detected_within.median == 5s", [5] * 10, ExpectationVerdict.HOLDS),
    ("equality-with-a-wide-interval", "detected_within.median == 5s", list(range(1, 11)), ExpectationVerdict.UNPROVEN),
    ("max-is-judged-as-observed", "failed_requests.max <= 3", [1, 2, 3], ExpectationVerdict.HOLDS),
    ("max-strictly-below", "failed_requests.max < 3", [1, 2, 3], ExpectationVerdict.VIOLATED),
    ("p90-of-too-few-values", "failed_requests.p90 <= 1000", [1] * 20, ExpectationVerdict.NO_DATA),
    ("p90-of-few-times-is-unbounded-above", "mttr.p90 <= 1h", list(range(1, 21)), ExpectationVerdict.UNPROVEN),
    ("mean-of-one-value", "mttr.mean <= 1h", [1], ExpectationVerdict.NO_DATA),
    ("rate-over-nothing", "false_rollback_rate <= 1%", [], ExpectationVerdict.NO_DATA),
]


@pytest.mark.parametrize(("text", "values", "verdict"), [row[1:] for row in VERDICTS], ids=[row[0] for row in VERDICTS])
def test_the_bound_on_the_wrong_side_decides(text, values, verdict):
    """An expectation holds only when its interval's bound on the wrong side meets it;
    an estimate that meets it with a crossing interval is unproven, one that does not is
    violated, and a figure with too few values is no data."""
    assertion = parse_assertion(text)
    judgement = judge_assertion(assertion, sample(assertion.metric, values))
    assert judgement.verdict is verdict, judgement.message
    assert judgement.passed is (verdict is ExpectationVerdict.HOLDS)


FIGURES = [
    ("rate-is-wilson", "change_failure_rate <= 5%", [1] * 3 + [0] * 37,
     lambda x: compute_wilson_interval(3, 40), "Wilson score interval"),
    ("amount-quantile-is-order-statistics", "failed_requests.median <= 100", list(range(40)),
     lambda x: compute_quantile_interval(x, 0.5), "order-statistic interval"),
    ("time-quantile-is-kaplan-meier", "rollout_duration.median <= 1h", list(range(40)) + [INF] * 5,
     lambda x: compute_censored_quantile(x, WINDOW, 0.5), "Kaplan-Meier interval, censored at the window's end"),
    ("mean-count-is-bootstrap", "failed_requests.mean <= 100", [0, 0, 3, 50, 7, 0, 1, 90],
     compute_mean_bootstrap_interval, "BCa bootstrap"),
    ("mean-cost-is-student-t", "cost.mean <= 1h", [50, 60, 70, 80], compute_mean_t_interval, "Student t interval"),
]


@pytest.mark.parametrize(("text", "values", "reference", "method"), [row[1:] for row in FIGURES],
                         ids=[row[0] for row in FIGURES])
def test_figures_are_the_comparisons_own(text, values, reference, method):
    """The figure an expectation is judged on is the one results.statistics computes for the
    same values (one implementation of the statistics), and its method is named."""
    assertion = parse_assertion(text)
    judgement = judge_assertion(assertion, sample(assertion.metric, values))
    assert judgement.figure == reference(np.asarray(values, dtype=float))
    assert judgement.method == method
    assert method in judgement.message


MESSAGES = [
    ("violated-says-by-how-much", "change_failure_rate <= 5%", [1] * 10 + [0] * 90,
     ["measured 10% [5.52%, 17.4%]", "n=100 deployments", "breaks <= 5% by 5 percentage points"]),
    ("unproven-names-the-bound", "change_failure_rate >= 90%", [1] * 95 + [0] * 5,
     ["lower bound 88.8% breaks it by 1.18 percentage points", "more runs may show it"]),
    ("holds-gives-the-margin", "mttr.p90 <= 200s", UPTO_98 + [INF] * 2,
     ["the upper bound meets <= 3m20s (margin 1m44s)", "2 of 100 not restored when the window ended"]),
    ("mean-with-a-censored-time-is-unbounded", "mttr.mean <= 1h", [1, 2, INF],
     ["measured unbounded", "by an unbounded amount"]),
    ("no-data-says-how-many-are-needed", "failed_requests.p90 <= 1000", [1] * 20,
     ["needs at least 36 values", "raise --runs"]),
    ("beyond-the-window-is-shown-so", "mttr.median <= 10m", [60] * 10 + [INF] * 11,
     ["measured >30m00s [1m00s, >30m00s] (11 cens.)", "11 of 21 not restored", "beyond 30m00s, which breaks <= 10m00s"]),
    ("undecided-says-the-window-is-too-short", "mttr.p90 <= 1h", list(range(1, 81)) + [INF] * 20,
     ["beyond 30m00s", "the window is too short to tell", "undecided"]),
]


@pytest.mark.parametrize(("text", "values", "fragments"), [row[1:] for row in MESSAGES], ids=[row[0] for row in MESSAGES])
def test_messages_say_what_was_measured_and_by_how_much(text, values, fragments):
    """The message gives the measured value with its interval, the deciding bound and
    the distance to the limit, in the metric's unit."""
    assertion = parse_assertion(text)
    message = judge_assertion(assertion, sample(assertion.metric, values)).message
    for fragment in fragments:
        assert fragment in message, message


@pytest.mark.parametrize(("q", "needed"), [(0.5, 6), (0.9, 36), (0.99, 368)], ids=["median", "p90", "p99"])
def test_minimum_values_for_a_quantile_interval(q, needed):
    """The fewest values for which a quantile has a 95% order-statistic interval are the
    ones results.statistics documents (6 for a median, 36 for a p90, 368 for a p99)."""
    assert minimum_values(q, 0.95) == needed


def test_expectations_apply_to_the_strategies_they_name():
    """judge_expectations judges each expectation for every strategy its `for` names, in
    table order, and records which expectation each judgement belongs to."""
    scenario = Scenario.model_validate({
        "name": "x",
        "expect": ["change_failure_rate <= 50%", {"for": "b", "assert": "cost.mean <= 1h"},
                   {"for": ["a", "b"], "assert": "failed_requests.max <= 1000"}],
    })
    table = pd.concat([ROWS.assign(strategy="a"), ROWS.assign(strategy="b")], ignore_index=True)
    judged = [(j.strategy, j.index) for j in judge_expectations(table, scenario.expect)]
    assert judged == [("a", 0), ("a", 2), ("b", 0), ("b", 1), ("b", 2)]


def test_names_mean_one_thing():
    """An expectation's verdict and result have names of their own (`Verdict` and
    `Judgement` mean other things in validate and the judges), as does a checked scenario."""
    from rolloutlab.scenarios import expectations
    from rolloutlab.workflows import check

    assert {"ExpectationVerdict", "ExpectationResult"} <= set(expectations.__all__)
    assert not {"Verdict", "Judgement"} & set(dir(expectations))
    assert hasattr(check, "ScenarioCheck") and not hasattr(check, "ScenarioOutcome")
