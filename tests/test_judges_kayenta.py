"""The Mann-Whitney judge classifies and scores as Kayenta's NetflixACAJudge, case for case.

Each group of cases comes from a test suite of Kayenta (spinnaker/kayenta, vendored as
``kayenta/`` in spinnaker/spinnaker), named above the group; its data arrays are in
``tests/fixtures/kayenta/`` as that suite wrote them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from rolloutlab.strategies.analysis_spec import (
    Direction,
    EffectSize,
    MannWhitneyJudge,
    NanStrategy,
    Outliers,
    ScoredSignal,
    ScoreThresholds,
    Signal,
    Significance,
)
from rolloutlab.strategies.judges import MeasurementPhase, judge_measurement
from rolloutlab.strategies.judges.kayenta_stats import (
    compute_cles,
    compute_kayenta_interval,
    compute_mean_ratio,
    compute_outliers,
    compute_wilcoxon_diff,
    compute_zeroin,
    round_score,
)
from rolloutlab.strategies.judges.mann_whitney import (
    SignalClass,
    SignalResult,
    classify_signal,
    compute_score,
    prepare_series,
)
from rolloutlab.strategies.observation import LATENCY_BUCKETS_MS, MeasurementWindow, WindowStats
from rolloutlab.strategies.spec import JudgeChoice, Metric

FIXTURES = Path(__file__).parent / "fixtures" / "kayenta"
LARGE = json.loads((FIXTURES / "mannwhitney_large_input.json").read_text())
CS = json.loads((FIXTURES / "classifier_suite.json").read_text())
STATS = json.loads((FIXTURES / "statistic_suite.json").read_text())
E, I, D = Direction.EITHER, Direction.INCREASE, Direction.DECREASE
PASS, HIGH, LOW, NODATA = SignalClass.PASS, SignalClass.HIGH, SignalClass.LOW, SignalClass.NODATA


# ------------------------------------------------ kayenta-mannwhitney: MannWhitneySuite.scala


def test_interval_matches_r_to_the_last_digits():
    """The statistic at the data range's ends, both interval ends and the estimate equal R's
    wilcox.test values MannWhitneySuite asserts ("Intermediate Values / Variables", 1e-6
    there; our Brent steps are R's, so they agree to 1e-12 here)."""
    x, y = np.array(LARGE["x"]), np.array(LARGE["y"])
    mu_min, mu_max = x.min() - y.max(), x.max() - y.min()
    assert (mu_min, mu_max) == pytest.approx((LARGE["r_mu_min"], LARGE["r_mu_max"]), abs=1e-12)
    z = -stats.norm.ppf(0.025)
    assert z == pytest.approx(LARGE["r_zq_lower"], abs=1e-12)
    ends = [compute_wilcoxon_diff(mu, zq, x, y) for zq in (z, -z) for mu in (mu_min, mu_max)]
    assert ends == pytest.approx([LARGE[k] for k in ("r_f_lower_1", "r_f_upper_1", "r_f_lower_2", "r_f_upper_2")],
                                 abs=1e-9)

    def root(zq):
        return compute_zeroin(lambda mu: compute_wilcoxon_diff(mu, zq, x, y), mu_min, mu_max,
                              compute_wilcoxon_diff(mu_min, zq, x, y), compute_wilcoxon_diff(mu_max, zq, x, y))

    assert (root(z), root(-z), root(0.0)) == pytest.approx(
        (LARGE["r_ci_lower"], LARGE["r_ci_upper"], LARGE["r_estimate"]), abs=1e-12)


def test_interval_and_estimate_of_separated_samples():
    """Canary 10, 20, 30, 40 against baseline 1, 2, 3, 4 at 95%: interval [6, 39], estimate 22.5
    ("Mann-Whitney Confidence Interval & Estimate")."""
    result = compute_kayenta_interval([10.0, 20.0, 30.0, 40.0], [1.0, 2.0, 3.0, 4.0], 0.95)
    assert (result.lower, result.upper, result.estimate) == pytest.approx((6.0, 39.0, 22.5), abs=1e-6)


def test_z_quantile_at_98_percent():
    """The 98% interval uses z = -2.326348 ("Test zQuant")."""
    assert stats.norm.ppf(0.02 / 2) == pytest.approx(-2.326348, abs=1e-6)


def test_two_constant_samples_give_the_exact_difference():
    """Two constant samples are where Kayenta adds noise 1e-5 × the value; without noise the
    interval and the estimate are the difference itself."""
    result = compute_kayenta_interval([10.0] * 5, [1.0] * 5, 0.98)
    assert (result.lower, result.upper, result.estimate, result.degenerate) == (9.0, 9.0, 9.0, True)


# ------------------------------------------------ kayenta-judge: ClassifierSuite.scala

SMALL_HIGH, SMALL_LOW = [20.0, 22.0, 21.0, 25.0, 30.0], [1.0, 2.2, 1.1, 2.5, 3.0]
ZEROS, FIFTY_FIVE = [0.0] * 5, [54.9, 54.5, 55.1, 55.6, 57.4]
CLES = {"measure": "cles"}

# (name, canary, baseline, direction, tolerance, confidence, effect size, critical, nan strategy,
#  expected classification, expected critical, expected ratio: None = NaN, "any" = not asserted)
CLASSIFIER_CASES = [
    ("Pass Metric", CS["around_10"], CS["control_around_10"], E, 0.10, 0.95, {}, False, "remove", PASS, False, "any"),
    ("High Metric", CS["around_20"], CS["control_around_10"], E, 0.10, 0.95, {}, False, "remove", HIGH, False, "any"),
    ("Low Metric", CS["around_10"], CS["control_around_20"], E, 0.10, 0.95, {}, False, "remove", LOW, False, "any"),
    ("Directional: Increase", CS["around_10"], CS["control_around_20"], I, 0.10, 0.95, {}, False, "remove", PASS,
     False, "any"),
    ("Directional: Decrease", CS["around_20"], CS["control_around_10"], D, 0.10, 0.95, {}, False, "remove", PASS,
     False, "any"),
    ("Directional: High Metric", CS["around_20"], CS["control_around_10"], I, 0.10, 0.95, {}, False, "remove", HIGH,
     False, "any"),
    ("Directional: Low Metric", CS["around_10"], CS["control_around_20"], D, 0.10, 0.95, {}, False, "remove", LOW,
     False, "any"),
    ("High Metric (Large Input)", LARGE["x"], LARGE["y"], E, 0.10, 0.95, {}, False, "remove", HIGH, False, "any"),
    ("Mean Ratio Effect Size: High", SMALL_HIGH, SMALL_LOW, E, 0.10, 0.95,
     {"allowedDecrease": 0.8, "allowedIncrease": 1.2}, False, "remove", HIGH, False, "any"),
    ("Mean Ratio Effect Size: Low", CS["around_10"], CS["control_around_20"], D, 0.10, 0.95,
     {"allowedDecrease": 0.8, "allowedIncrease": 1.2}, False, "remove", LOW, False, "any"),
    ("Mean Ratio Effect Size: Pass", [10.0, 12.2, 10.1, 12.5, 23.0], SMALL_HIGH, E, 0.10, 0.95,
     {"allowedDecrease": 0.5, "allowedIncrease": 1.0}, False, "remove", PASS, False, "any"),
    ("Mean Ratio Effect Size: Pass (Large Input)", LARGE["x"], LARGE["y"], E, 0.10, 0.95,
     {"allowedDecrease": 1.0, "allowedIncrease": 5.0}, False, "remove", PASS, False, "any"),
    ("CLES Effect Size: Pass", CS["cles_pass_experiment"], CS["cles_pass_control"], E, 0.20, 0.98,
     {**CLES, "allowedDecrease": 0.5, "allowedIncrease": 0.8}, False, "remove", PASS, False, "any"),
    ("CLES Effect Size: High", CS["cles_high_experiment"], CS["cles_high_control"], E, 0.20, 0.98,
     {**CLES, "allowedDecrease": 0.2, "allowedIncrease": 0.8}, False, "remove", HIGH, False, "any"),
    ("CLES Effect Size: Low", CS["cles_low_experiment"], CS["cles_low_control"], E, 0.20, 0.98,
     {**CLES, "allowedDecrease": 0.2, "allowedIncrease": 0.8}, False, "remove", LOW, False, "any"),
    ("Critical Effect Size: Critical High", SMALL_HIGH, SMALL_LOW, E, 0.10, 0.95,
     {"criticalDecrease": 1.0, "criticalIncrease": 1.2}, True, "remove", HIGH, True, "any"),
    ("Critical Effect Size: Critical Low", [2.0, 2.0, 2.0, 2.0, 3.0], [10.0, 20.2, 10.1, 20.5, 30.0], E, 0.10, 0.95,
     {"criticalDecrease": 1.2, "criticalIncrease": 1.0}, True, "remove", LOW, True, "any"),
    ("Critical Effect Size: High", SMALL_HIGH, SMALL_LOW, E, 0.10, 0.95,
     {"allowedDecrease": 1.0, "allowedIncrease": 5.0, "criticalDecrease": 1.0, "criticalIncrease": 13.0}, True,
     "remove", HIGH, False, "any"),
    ("Critical Effect Size: Pass", SMALL_HIGH, SMALL_LOW, E, 0.10, 0.95,
     {"allowedDecrease": 1.0, "allowedIncrease": 13.0, "criticalDecrease": 1.0, "criticalIncrease": 15.0}, True,
     "remove", PASS, False, "any"),
    ("Critical Effect Size: Critical High (Default Thresholds)", SMALL_HIGH, SMALL_LOW, E, 0.10, 0.95, {}, True,
     "remove", HIGH, True, "any"),
    ("Tied Observations", [1.0, 1.0, 1.0], [1.0, 1.0], D, 0.10, 0.95, {}, False, "remove", PASS, False, "any"),
    ("Identical Populations", [1.0, 2.0, 3.0, 4.0, 5.0], [5.0, 4.0, 3.0, 2.0, 1.0], D, 0.10, 0.95, {}, False,
     "remove", PASS, False, 1.0),
    ("Leading Zero Identical Population", [0.0, 1.0, 1.0, 1.0, 1.0], [1.0] * 5, D, 0.10, 0.95, {}, False, "remove",
     PASS, False, "any"),
    ("Missing Experiment Data", [], [1.0, 2.0, 3.0, 4.0, 5.0], D, 0.10, 0.95, {}, False, "remove", NODATA, False,
     "any"),
    ("Missing Experiment Data: Critical Metric", [], [1.0, 2.0, 3.0, 4.0, 5.0], D, 0.10, 0.95, {}, True, "remove",
     NODATA, True, "any"),
    ("Missing Experiment Data with NaN Replacement", [], [1.0, 2.0, 3.0, 4.0, 5.0], D, 0.10, 0.95, {}, False,
     "replace", PASS, False, "any"),
    ("Majority Tied Observations", [1.0, 1.0, 1.0, 1.0, 10.0], [1.0] * 5, E, 0.10, 0.95, {}, False, "remove", PASS,
     False, "any"),
    ("Tied Ranks", [10.0] * 5, [1.0] * 5, E, 0.10, 0.95, {}, False, "remove", HIGH, False, 10.0),
    ("Tied Ranks With Zeros", [10.0] * 5, ZEROS, E, 0.10, 0.95, {}, False, "remove", HIGH, False, None),
    ("Zero Mean: High Metric with Effect Size", FIFTY_FIVE, ZEROS, E, 0.10, 0.95,
     {"allowedDecrease": 0.8, "allowedIncrease": 1.2}, False, "remove", HIGH, False, None),
    ("Zero Mean: Low Metric with Effect Size", ZEROS, FIFTY_FIVE, E, 0.10, 0.95,
     {"allowedDecrease": 0.8, "allowedIncrease": 1.2}, False, "remove", LOW, False, None),
    ("Zero Mean: Critical Metric", CS["zero_mean_critical_experiment"], [0.0] * 10, E, 0.10, 0.95,
     {"criticalDecrease": 0.8, "criticalIncrease": 1.2}, True, "replace", HIGH, True, None),
    ("Zero Mean: Pass Metric", ZEROS, ZEROS, E, 0.10, 0.95, {"allowedDecrease": 0.8, "allowedIncrease": 1.2}, False,
     "remove", PASS, False, 1.0),
]


@pytest.mark.parametrize(
    "canary, baseline, direction, tolerance, confidence, effect, critical, nan, classification, is_critical, ratio",
    [c[1:] for c in CLASSIFIER_CASES], ids=[c[0] for c in CLASSIFIER_CASES])
def test_classifier_suite(canary, baseline, direction, tolerance, confidence, effect, critical, nan, classification,
                          is_critical, ratio):
    """Each Mann-Whitney case of Kayenta's ClassifierSuite gets Kayenta's classification,
    critical flag and (where the suite asserts it) deviation, with the suite's tolerance and
    confidence (NetflixACAJudge itself runs 0.25 and 0.98)."""
    signal = ScoredSignal(signal=Signal.ERROR_RATE, direction=direction, critical=critical, nan_strategy=nan,
                          effect_size=EffectSize.model_validate(effect))
    result = classify_signal("metric", canary, baseline, signal, confidence, significance=Significance.INTERVAL,
                             tolerance=tolerance)
    assert (result.classification, result.critical) == (classification, is_critical), result.describe()
    if ratio != "any":
        assert result.ratio == ratio


def test_missing_data_has_a_reason():
    """A Nodata result says which side had no data ("Missing Data: Reason String")."""
    signal = ScoredSignal(signal=Signal.ERROR_RATE, direction=D, critical=True)
    result = classify_signal("m", [], [], signal, 0.95, significance=Significance.INTERVAL, tolerance=0.1)
    assert result.reason == "no data on canary and baseline"


@pytest.mark.parametrize("critical, must_have_data, classification, is_critical", [
    (False, False, NODATA, False),
    (True, False, NODATA, True),
    (False, True, SignalClass.NODATA_FAIL, False),
    (True, True, NODATA, True),
], ids=["Nodata", "critical: Nodata, critical", "mustHaveData: NodataFailMetric", "both: Nodata, critical"])
def test_missing_data_classification(critical, must_have_data, classification, is_critical):
    """No data on a side with nanStrategy remove: MannWhitneyClassifier.classify's first branch."""
    signal = ScoredSignal(signal=Signal.ERROR_RATE, critical=critical, must_have_data=must_have_data)
    result = classify_signal("m", [None, None], [0.1, 0.2], signal, 0.98, significance=Significance.INTERVAL)
    assert (result.classification, result.critical) == (classification, is_critical)


# ------------------------------------------------ kayenta-judge: StatisticSuite.scala


@pytest.mark.parametrize("canary, baseline, ratio", [
    ([1.0] * 5, [1.0] * 5, 1.0), ([10.0] * 5, [1.0] * 5, 10.0), ([10.0] * 5, [100.0] * 5, 0.1),
    ([10.0] * 5, [0.0] * 5, math.nan),
], ids=["No Effect", "High", "Low", "Zero Mean"])
def test_mean_ratio(canary, baseline, ratio):
    """meanRatio is mean(canary) / mean(baseline), NaN when a mean is 0 ("Effect Size: Mean Ratio")."""
    assert compute_mean_ratio(canary, baseline) == pytest.approx(ratio, nan_ok=True)


@pytest.mark.parametrize("case", ["cles_no_overlap", "cles_high", "cles_low"])
def test_cles(case):
    """CLES of the suite's samples ("CLES Effect Size: Different (No Overlap)", "High Metric", "Low Metric")."""
    data = STATS[case]
    assert compute_cles(data["experiment"], data["control"]) == pytest.approx(data["cles"],
                                                                              abs=data.get("tolerance", 0.0))


def test_cles_of_identical_samples_is_one_half():
    """"CLES Effect Size: Identical": 0.5."""
    assert compute_cles([1.0, 2.0, 3.0, 4.0, 5.0], [1.0, 2.0, 3.0, 4.0, 5.0]) == 0.5


def test_percentiles_interpolate_linearly():
    """Kayenta's percentiles interpolate between order statistics ("Basic Percentile": the 5th
    of 0, 0.5, … 3.5 is 0.175; NIST's 90th is 95.19568), numpy's default that the outlier
    fences use."""
    assert np.percentile([0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5], 5) == pytest.approx(0.175)
    nist = [95.1772, 95.1567, 95.1937, 95.1959, 95.1442, 95.0610, 95.1591, 95.1195, 95.1772, 95.0925, 95.1990, 95.1682]
    assert np.percentile(nist, 90) == pytest.approx(95.19568)


# ------------------------------------------------ kayenta-judge: DetectorSuite.scala, TransformSuite.scala

NIST = [30, 171, 184, 201, 212, 250, 265, 270, 272, 289, 305, 306, 322, 322, 336, 346, 351, 370, 390, 404, 409, 411,
        436, 437, 439, 441, 444, 448, 451, 453, 470, 480, 482, 487, 494, 495, 499, 503, 514, 521, 522, 527, 548, 550,
        559, 560, 570, 572, 574, 578, 585, 592, 592, 607, 616, 618, 621, 629, 637, 638, 640, 656, 668, 707, 709, 719,
        737, 739, 752, 758, 766, 792, 792, 794, 802, 818, 830, 832, 843, 858, 860, 869, 918, 925, 953, 991, 1000, 1005,
        1068, 1441]


@pytest.mark.parametrize("data, flagged", [
    ([21.0, 23.0, 24.0, 25.0, 50.0, 29.0, 23.0, 21.0], [4]),
    ([1.0, 1.0, 1.0, 5.0, -1.0, -1.0, -1.0, -5.0], [3, 7]),
    ([], []),
    (NIST, [len(NIST) - 1]),
], ids=["IQR Detection", "IQR Detect Two Sided", "IQR Empty Data", "IQR NIST Test"])
def test_iqr_detector(data, flagged):
    """Tukey's fences at 1.5 IQR flag exactly the suite's outliers."""
    assert list(np.flatnonzero(compute_outliers(data, 1.5, reduce_sensitivity=False))) == flagged


@pytest.mark.parametrize("values, scored, expected", [
    ([0.0, 1.0, None, 1.0, 0.0], {}, [0.0, 1.0, 1.0, 0.0]),
    ([None, None, None], {}, []),
    ([None, 10.10, 20.20, 30.30, None, 40.40], {"nanStrategy": "replace"}, [0.0, 10.10, 20.20, 30.30, 0.0, 40.40]),
    ([21.0, 23.0, 24.0, 25.0, 50.0, 29.0, 23.0, 21.0], {"outliers": {"strategy": "remove", "outlierFactor": 1.5}},
     [21.0, 23.0, 24.0, 25.0, 29.0, 23.0, 21.0]),
], ids=["Remove Single NaN", "Remove Multiple NaN", "Replace NANs", "IQR Outlier Removal"])
def test_series_transforms(values, scored, expected):
    """NaN removal and replacement, and IQR outlier removal, give TransformSuite's series (the
    judge's fences, widened to the 1st/99th percentiles, drop the same single 50 here)."""
    signal = ScoredSignal.model_validate({"signal": "errorRate", **scored})
    assert list(prepare_series(values, signal)) == pytest.approx(expected)


def test_reduced_sensitivity_keeps_what_plain_tukey_drops():
    """With reduced sensitivity (IQRDetector's, as NetflixACAJudge runs it) the fences reach at
    least the 1st/99th percentiles: of two far values in 100 the lower stays, below the 99th."""
    data = [10 + 0.01 * i for i in range(98)] + [30.0, 31.0]
    assert list(np.flatnonzero(compute_outliers(data, 1.5, reduce_sensitivity=False))) == [98, 99]
    assert list(np.flatnonzero(compute_outliers(data, 1.5, reduce_sensitivity=True))) == [99]


# ------------------------------------------------ kayenta-judge: ScorerSuite.scala


def scored(groups: tuple[str, ...]) -> ScoredSignal:
    return ScoredSignal(signal=Signal.ERROR_RATE, groups=groups)


# (name, [(classification, critical, groups)], group weights, summary score)
SCORER_CASES = [
    ("Single Metric Pass", [(PASS, False, ("test-group",))], {}, 100.0),
    ("Single Metric Fail", [(HIGH, False, ("test-group",))], {}, 0.0),
    ("Single group Nodata", [(NODATA, False, ("test-group-nodata",))], {}, 0.0),
    ("Two Groups, one Pass, one Nodata", [(PASS, False, ("pass",)), (PASS, False, ("pass",)),
                                          (NODATA, False, ("nodata",))], {}, 100.0),
    ("One Group, Two Metrics", [(PASS, False, ("g",)), (HIGH, False, ("g",))], {}, 50.0),
    ("One Group, Three Metrics", [(PASS, False, ("g",)), (HIGH, False, ("g",)), (LOW, False, ("g",))], {}, 33.33),
    ("Two Groups, Three Metrics", [(PASS, False, ("group-1",)), (PASS, False, ("group-1",)),
                                   (HIGH, False, ("group-2",))], {"group-1": 75.0, "group-2": 25.0}, 75.0),
    ("Two Groups, Three Metrics (Equal Weight)", [(PASS, False, ("group-1",)), (HIGH, False, ("group-1",)),
                                                  (HIGH, False, ("group-2",))], {"group-1": 50.0, "group-2": 50.0},
     25.0),
    ("Two Groups, Three Metrics (Equal Weight), one NoData", [(PASS, False, ("group-1",)), (NODATA, False, ("group-1",)),
                                                              (HIGH, False, ("group-2",))],
     {"group-1": 50.0, "group-2": 50.0}, 50.0),
    ("Two Metrics, one good (normal), one fail (critical)", [(PASS, False, ("g",)), (HIGH, True, ("g",))], {}, 0.0),
    ("Two Metrics, one low (normal), one good (critical)", [(LOW, False, ("g",)), (PASS, True, ("g",))], {}, 50.0),
    ("Two Metrics, one good (normal), one nodata (critical)", [(PASS, False, ("g",)), (NODATA, True, ("g",))], {}, 0.0),
    ("Two Groups (Unequal Weight), Four Metrics", [(HIGH, False, ("group1",)), (LOW, False, ("group1",)),
                                                   (PASS, False, ("group1",)), (HIGH, False, ("group2",))],
     {"group1": 15.0, "group2": 85.0}, 5.0),
]


@pytest.mark.parametrize("metrics, weights, score", [c[1:] for c in SCORER_CASES], ids=[c[0] for c in SCORER_CASES])
def test_scorer_suite(metrics, weights, score):
    """WeightedSumScorer's summary score for each ScorerSuite case."""
    results = [SignalResult(f"m{i}", c, c is PASS, 5, critical=crit) for i, (c, crit, _) in enumerate(metrics)]
    signals = [scored(groups) for _, _, groups in metrics]
    assert compute_score(results, signals, weights).score == score


def test_nodata_group_scores_zero_but_counts_as_full():
    """A group of Nodata only reports 0 and counts as 100 in the summary ("Two Groups, one Pass, one Nodata")."""
    results = [SignalResult("a", PASS, True, 5), SignalResult("b", NODATA, True, 5), SignalResult("c", PASS, True, 5)]
    signals = [scored(("pass",)), scored(("nodata",)), scored(("pass",))]
    assert sorted(v for _, v in compute_score(results, signals).groups) == [0.0, 100.0]


def test_muted_signals_are_left_out_of_the_score():
    """A muted failing signal does not lower the score (ScoringHelper filters muted results)."""
    results = [SignalResult("a", PASS, True, 5), SignalResult("b", HIGH, False, 5, critical=True)]
    signals = [scored(("g",)), ScoredSignal(signal=Signal.ERROR_RATE, groups=("g",), muted=True)]
    assert compute_score(results, signals).score == 100.0


def test_unweighted_groups_share_what_is_left_of_100():
    """Groups without a weight share (100 - the configured weights) equally (calculateSummaryScore)."""
    results = [SignalResult("a", HIGH, False, 5), SignalResult("b", PASS, True, 5), SignalResult("c", HIGH, False, 5)]
    signals = [scored(("w",)), scored(("u1",)), scored(("u2",))]
    assert compute_score(results, signals, {"w": 40.0}).score == 30.0


@pytest.mark.parametrize("value, rounded", [(33.333333, 33.33), (0.125, 0.13), (66.665, 66.67), (12.3449, 12.34)])
def test_score_rounds_half_up(value, rounded):
    """Precision.round(score, 2) rounds half up on the printed digits (Python's round would give 0.12)."""
    assert round_score(value) == rounded


# ------------------------------------------------ NetflixACAJudge on windows


def stats_with(rate: float | None, latency_bucket: int | None = None, requests: int = 100_000) -> WindowStats:
    """A window with the given error rate (None: no requests) and every latency in one bucket."""
    if rate is None:
        return WindowStats(60.0, 0, 0)
    buckets: tuple[int, ...] = ()
    if latency_bucket is not None:
        buckets = tuple(requests if j == latency_bucket else 0 for j in range(len(LATENCY_BUCKETS_MS)))
    return WindowStats(60.0, requests, round(rate * requests), buckets)


def windows_of(canary_rates, baseline_rates, canary_bucket=None, baseline_bucket=None) -> list[MeasurementWindow]:
    return [MeasurementWindow(60.0 * (k + 1), stats_with(c, canary_bucket), stats_with(b, baseline_bucket))
            for k, (c, b) in enumerate(zip(canary_rates, baseline_rates))]


def judge_of(signals, **judge) -> Metric:
    return Metric(name="kayenta", judge=JudgeChoice(mann_whitney=MannWhitneyJudge(signals=tuple(signals), **judge)))


BAD = [0.030, 0.031, 0.029, 0.032, 0.030, 0.031]
GOOD = [0.010, 0.011, 0.009, 0.012, 0.010, 0.011]
ERRORS = ScoredSignal(signal=Signal.ERROR_RATE, name="errors", groups=("errors",))
LATENCY = ScoredSignal(signal=Signal.LATENCY, quantile=0.99, name="latency", groups=("latency",))


def test_group_weights_decide_the_score():
    """Errors High in a group of weight 70, latency equal in a group of weight 30: score 30, Failed."""
    metric = judge_of([ERRORS, LATENCY], group_weights={"errors": 70, "latency": 30})
    judgement = judge_measurement(metric, windows_of(BAD, GOOD, 4, 4))
    assert (judgement.phase, judgement.value) == (MeasurementPhase.FAILED, 30.0)
    assert "groups errors 0, latency 100" in judgement.message


def test_the_judge_compares_canary_with_baseline_not_the_other_way():
    """The same two series with canary and baseline swapped turn High into Low: the window's
    ``canary`` is Kayenta's experiment, its ``baseline`` the control."""
    either = ScoredSignal(signal=Signal.ERROR_RATE, direction=E)
    metric = judge_of([either], thresholds=ScoreThresholds(**{"pass": 95, "marginal": 75}))
    assert "errorRate High" in judge_measurement(metric, windows_of(BAD, GOOD)).message
    assert "errorRate Low" in judge_measurement(metric, windows_of(GOOD, BAD)).message


def test_half_the_signals_without_data_score_zero():
    """Latency without any histogram is Nodata; 1 of 2 signals is 50%: Kayenta's Nodata rule scores 0."""
    judgement = judge_measurement(judge_of([ERRORS, LATENCY]), windows_of(GOOD, GOOD))
    assert (judgement.phase, judgement.value) == (MeasurementPhase.FAILED, 0.0)
    assert "50% or more of the signals have no data" in judgement.message


def test_must_have_data_fails_the_signal_only():
    """mustHaveData turns the latency's Nodata into NodataFailMetric: its group scores 0, the errors group 100."""
    latency = LATENCY.model_copy(update={"must_have_data": True})
    judgement = judge_measurement(judge_of([ERRORS, latency]), windows_of(GOOD, GOOD))
    assert judgement.value == 50.0
    assert "latency NodataFailMetric" in judgement.message


def test_a_critical_failure_overrides_the_weights():
    """A critical High in a group of weight 1 scores 0 however well the rest does."""
    errors = ERRORS.model_copy(update={"critical": True})
    metric = judge_of([errors, LATENCY], group_weights={"errors": 1, "latency": 99})
    judgement = judge_measurement(metric, windows_of(BAD, GOOD, 4, 4))
    assert judgement.value == 0.0 and "critical signal failed: errors" in judgement.message


@pytest.mark.parametrize("inclusive, phase", [(True, MeasurementPhase.INCONCLUSIVE), (False, MeasurementPhase.FAILED)],
                         ids=["Kayenta's classifier: marginal", "Spinnaker's stage: fails at marginal"])
def test_a_score_equal_to_marginal(inclusive, phase):
    """Score 50 with marginal 50: Marginal for Kayenta's ThresholdScoreClassifier, a failure for
    orca's MonitorKayentaCanaryTask (canaryScore <= marginal)."""
    thresholds = ScoreThresholds(**{"pass": 75, "marginal": 50, "marginalInclusive": inclusive})
    metric = judge_of([ERRORS, LATENCY], thresholds=thresholds)
    assert judge_measurement(metric, windows_of(BAD, GOOD, 4, 4)).phase is phase


def test_judges_every_nth_window_only():
    """With judgeEvery 3 the windows between judgements are Pending (Kayenta judges once per analysis interval)."""
    metric = judge_of([ERRORS], judge_every=3, min_points=2)
    phases = [judge_measurement(metric, windows_of(BAD[:k], GOOD[:k])).phase for k in range(1, 7)]
    assert phases == [MeasurementPhase.PENDING, MeasurementPhase.PENDING, MeasurementPhase.FAILED,
                      MeasurementPhase.PENDING, MeasurementPhase.PENDING, MeasurementPhase.FAILED]


def test_lookback_judges_the_latest_windows_only():
    """A bad start outside a lookback of 6 windows does not count (Kayenta's lookbackMins)."""
    windows = windows_of(BAD * 3 + GOOD, GOOD * 4)
    assert judge_measurement(judge_of([ERRORS]), windows).phase is MeasurementPhase.FAILED
    assert judge_measurement(judge_of([ERRORS], lookback=6), windows).phase is MeasurementPhase.SUCCESSFUL


def test_nan_replace_counts_an_empty_window_as_zero():
    """With nanStrategy replace a baseline window without requests is an error rate of 0."""
    signal = ScoredSignal(signal=Signal.ERROR_RATE, nan_strategy=NanStrategy.REPLACE, direction=D)
    metric = judge_of([signal])
    windows = windows_of([0.0] * 6, [0.0, None, 0.0, None, 0.0, 0.0])
    judgement = judge_measurement(metric, windows)
    assert judgement.phase is MeasurementPhase.SUCCESSFUL and "identical series, 6 canary / 6 baseline" in judgement.message


def test_outlier_removal_per_signal():
    """outliers.strategy remove drops the canary's one spike from its series before comparing:
    7 canary points, mean ratio about 1; kept, the spike doubles the ratio."""
    canary = [0.010, 0.011, 0.009, 0.012, 0.010, 0.011, 0.010, 0.100]
    baseline = [0.010, 0.011, 0.010, 0.012, 0.009, 0.011, 0.010, 0.011]
    kept = ScoredSignal(signal=Signal.ERROR_RATE)
    removed = kept.model_copy(update={"outliers": Outliers(strategy="remove")})
    with_spike = judge_measurement(judge_of([kept]), windows_of(canary, baseline)).message
    without = judge_measurement(judge_of([removed]), windows_of(canary, baseline)).message
    assert "ratio 2.0" in with_spike and "8 canary / 8 baseline" in with_spike
    assert "ratio 0.99" in without and "7 canary / 8 baseline" in without


# ------------------------------------------------ the spec


@pytest.mark.parametrize("judge, message", [
    ({"signals": [{"signal": "errorRate", "groups": ["a"]}, {"signal": "latency"}]}, "give every signal a group"),
    ({"signals": [{"signal": "errorRate", "groups": ["a"], "weight": 2}]}, "weight is for signals without groups"),
    ({"signals": [{"signal": "errorRate", "groups": ["a"]}], "groupWeights": {"b": 10}}, "no signal is in group 'b'"),
    ({"signals": [{"signal": "errorRate", "groups": ["a"]}, {"signal": "latency", "groups": ["b"]}],
      "groupWeights": {"a": 60, "b": 60}}, "above 100"),
    ({"signals": [{"signal": "errorRate", "effectSize": {"measure": "cles", "allowedIncrease": 1.2}}]},
     "a cles bound is a probability"),
    ({"signals": [{"signal": "errorRate", "allowedDecrease": 1.1}]}, "moved to effectSize.allowedDecrease"),
    ({"minPoints": 5, "lookback": 3}, "lookback 3 is below minPoints 5"),
], ids=["grouped and ungrouped", "weight with groups", "unknown group", "weights above 100", "cles bound",
        "the old flat allowedDecrease", "lookback too short"])
def test_spec_refuses(judge, message):
    """Judge settings that cannot be scored as Kayenta scores are refused with a reason."""
    with pytest.raises(ValueError, match=message):
        Metric.model_validate({"name": "m", "judge": {"mannWhitney": judge}})
