"""The Mann-Whitney judge: Kayenta's NetflixACAJudge, comparing the canary's series with the baseline's.

Sources followed (spinnaker/kayenta, vendored as ``kayenta/`` in spinnaker/spinnaker; file
paths below ``kayenta-judge/src/main/scala/com/netflix/kayenta/judge/``):
``NetflixACAJudge.scala`` (per metric: ``direction`` default either, ``nanStrategy`` default
remove, ``outliers``, ``critical``, ``mustHaveData``, ``muted``, ``effectSize``; the
classifier built with tolerance 0.25 and confidence 0.98),
``classifiers/metric/MannWhitneyClassifier.scala`` (Nodata / Pass / High / Low and critical),
``classifiers/metric/BaseMetricClassifier.scala`` (the labels and the parsers' defaults),
``stats/EffectSizes.scala``, ``detectors/IQRDetector.scala``, ``scorers/ScoringHelper.scala``
(muted metrics left out), ``scorers/WeightedSumScorer.scala`` (group scores, group weights,
critical failures, the 50% Nodata rule, rounding) and
``classifiers/score/ThresholdScoreClassifier.scala``; the interval itself is
``kayenta-mannwhitney/.../MannWhitney.scala`` (see :mod:`kayenta_stats`).

What the judge compares. Each scored signal (``judge.mannWhitney.signals``; none given: the
metric's own signal, direction increase) gives two series over the run's windows (the
latest ``lookback`` of them when set): the signal's value per window for the **canary** and
for the **baseline**, the two sides of each :class:`MeasurementWindow`. Kayenta's baseline
is a fresh deployment of the old version the size of the canary: a canary with
``baseline: true`` judges against exactly that (``Cycle.analysis_observation``); without it
the long-running stable is the baseline. A
window where a side has no data gives that side NaN.

Per signal, as Kayenta's classifier does:

1. NaN strategy per side: ``remove`` drops the NaNs, ``replace`` makes them 0.
2. Outliers per side (``outliers.strategy: remove``): values outside the IQR fences.
3. A side with no values left: **Nodata** (critical if the signal is); with
   ``mustHaveData`` and not critical: **NodataFailMetric**, which scores as a failure.
4. Identical series (as multisets), or one distinct value across both: **Pass**.
5. Otherwise the shift canary − baseline and its interval: with ``significance: interval``
   (Kayenta's rule, the default) **High** when the interval's lower end is above
   ``tolerance``·|estimate|, **Low** when its upper end is below −``tolerance``·|estimate|;
   with ``significance: pValue`` (rolloutlab's earlier rule) High/Low when the two-sided
   test's p < 1 − confidence and the Hodges–Lehmann estimate is above/below 0, with an
   exact interval for small samples (:mod:`exact_shift`).
   A High counts only when the direction is increase or either and the effect
   (meanRatio or cles of the canary over the baseline) is at least
   ``effectSize.allowedIncrease``; a Low only when the direction is decrease or either and
   the effect is at most ``allowedDecrease``. An effect that cannot be computed (a mean of 0)
   is not checked. Anything else is Pass.
6. A critical signal that is High with effect ≥ ``criticalIncrease`` (or Low with effect
   ≤ ``criticalDecrease``, or an effect that cannot be computed) fails critically.

Score (``WeightedSumScorer``): 0 when any unmuted signal failed critically, or when half or
more of the unmuted signals are Nodata; else Σ over groups of weight/100 × group score,
rounded half up to 2 decimals. A group's score is 100 × Pass / (Pass + High + Low +
NodataFailMetric); a group of Nodata only counts as 100. Groups without a weight share
what the weights leave of 100. Signals without groups are each their own group with
weight ∝ ``weight``. Phase (``ThresholdScoreClassifier``): score ≥ ``pass`` →
**Successful**; ≥ ``marginal`` → **Inconclusive**; else **Failed**. Never ``final``.

rolloutlab's additions: the latest window without canary requests is an **Error** (the
canary is not being measured; Argo's consecutiveErrorLimit should see it); nothing is
judged before ``minPoints`` windows (**Pending**), and with ``judgeEvery: n`` only every
n-th window is judged (Kayenta judges once per analysis interval). Where Kayenta adds
random noise to two constant samples, we take the noise-free limit (the interval is the
exact difference): the same verdicts, without a random number.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

import numpy as np
from scipy import stats

from rolloutlab.strategies.analysis_spec import (
    EffectMeasure,
    NanStrategy,
    OutlierStrategy,
    Significance,
)
from rolloutlab.strategies.judges.exact_shift import (  # noqa: F401 - judges' public names, one import away
    EXACT_MAX_SAMPLE,
    ShiftEstimate,
    compute_shift,
    compute_u_distribution,
)
from rolloutlab.strategies.judges.judgement import (
    Judgement,
    MeasurementPhase,
    describe_signal,
    signal_value,
)
from rolloutlab.strategies.judges.kayenta_stats import (
    compute_cles,
    compute_kayenta_interval,
    compute_mean_ratio,
    compute_outliers,
    round_score,
)
from rolloutlab.strategies.observation import MeasurementWindow
from rolloutlab.strategies.spec import Direction, MannWhitneyJudge, Metric, ScoredSignal, ScoreThresholds

NODATA_SHARE = 50.0
"""``WeightedSumScorer.NODATA_THRESHOLD``: this share (%) or more of Nodata signals scores 0."""


class SignalClass(str, Enum):
    """Kayenta's metric classifications (``BaseMetricClassifier.scala``)."""

    PASS = "Pass"
    HIGH = "High"
    LOW = "Low"
    NODATA = "Nodata"  # no data on a side: left out of its group's score
    NODATA_FAIL = "NodataFailMetric"  # no data and mustHaveData: scored as a failure
    ERROR = "Error"  # the comparison could not be computed (a non-finite value)


_FAILING = (SignalClass.HIGH, SignalClass.LOW, SignalClass.NODATA_FAIL)
_COUNTED = (SignalClass.PASS, *_FAILING)


@dataclass(frozen=True, slots=True)
class SignalResult:
    """One scored signal's comparison: canary series vs baseline series.

    ``ratio`` is Kayenta's reported deviation, mean(canary)/mean(baseline) (None when a
    mean is 0); ``effect`` is the measure the effect-size bounds were checked against;
    ``critical`` marks a critical failure (the whole score becomes 0).
    """

    name: str
    classification: SignalClass
    passed: bool
    points: int
    p_value: float | None = None
    ratio: float | None = None
    shift: ShiftEstimate | None = None
    effect: float | None = None
    critical: bool = False
    reason: str = ""
    measure: EffectMeasure = EffectMeasure.MEAN_RATIO

    def describe(self) -> str:
        label = self.classification.value + (" (critical)" if self.critical else "")
        if self.shift is None:
            return f"{self.name} {label} ({self.reason or f'{self.points} points'})"
        s = self.shift
        p = "" if self.p_value is None else f", p={self.p_value:.3g}"
        effect = "" if self.measure is EffectMeasure.MEAN_RATIO else f", cles {_fmt(self.effect)}"
        return (
            f"{self.name} {label}: shift {s.estimate:.4g} [{s.lower:.4g}, {s.upper:.4g}] "
            f"({s.coverage:.1%} {s.method}), ratio {_fmt(self.ratio)}{effect}{p}, {self.reason}"
        )


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def prepare_series(values: Sequence[float | None], scored: ScoredSignal) -> np.ndarray:
    """One side's series after Kayenta's transforms: the NaN strategy, then outlier removal."""
    data = np.array([math.nan if v is None else v for v in values], dtype=float)
    nan = np.isnan(data)
    data = data[~nan] if scored.nan_strategy is NanStrategy.REMOVE else np.where(nan, 0.0, data)
    if scored.outliers.strategy is OutlierStrategy.REMOVE:
        data = data[~compute_outliers(data, scored.outliers.outlier_factor)]
    return data


def _effect(measure: EffectMeasure, canary: np.ndarray, baseline: np.ndarray) -> float:
    if measure is EffectMeasure.CLES:
        return compute_cles(canary, baseline)
    return compute_mean_ratio(canary, baseline)


def classify_signal(
    name: str,
    canary: Sequence[float | None],
    baseline: Sequence[float | None],
    scored: ScoredSignal,
    confidence: float,
    *,
    significance: Significance = Significance.P_VALUE,
    tolerance: float = 0.25,
) -> SignalResult:
    """Kayenta's MannWhitneyClassifier on one signal's canary and baseline series (None: no data).

    The function's default ``significance`` is the p-value rule, for callers that pass a
    confidence alone; the judge passes its own (Kayenta's interval rule by default).
    """
    x, y = prepare_series(canary, scored), prepare_series(baseline, scored)
    points = int(min(x.size, y.size))
    counts = f"{x.size} canary / {y.size} baseline points"
    if x.size == 0 or y.size == 0:
        side = " and ".join(n for n, v in (("canary", x), ("baseline", y)) if v.size == 0)
        if scored.nan_strategy is NanStrategy.REPLACE:  # Kayenta: replace never reports Nodata
            return SignalResult(name, SignalClass.PASS, True, points, reason=f"no data on {side}, nanStrategy replace")
        if scored.must_have_data and not scored.critical:
            return SignalResult(name, SignalClass.NODATA_FAIL, False, points, reason=f"no data on {side}, mustHaveData")
        return SignalResult(name, SignalClass.NODATA, True, points, critical=scored.critical,
                            reason=f"no data on {side}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        return SignalResult(name, SignalClass.ERROR, True, points, reason="a value is not finite")
    if np.array_equal(np.sort(x), np.sort(y)):
        return SignalResult(name, SignalClass.PASS, True, points, ratio=1.0, reason=f"identical series, {counts}")
    if np.unique(np.concatenate([x, y])).size == 1:
        return SignalResult(name, SignalClass.PASS, True, points, ratio=1.0, reason=f"one value on both sides, {counts}")

    p_value: float | None = None
    if significance is Significance.INTERVAL:
        interval = compute_kayenta_interval(x, y, confidence)
        method = "exact difference" if interval.degenerate else "asymptotic"
        shift = ShiftEstimate(interval.estimate, interval.lower, interval.upper, confidence, method)
        band = tolerance * abs(shift.estimate)
        higher, lower = shift.lower > band, shift.upper < -band
    else:
        p_value = float(stats.mannwhitneyu(x, y, alternative="two-sided").pvalue)
        shift = compute_shift(x, y, confidence)
        significant = p_value < 1.0 - confidence
        higher, lower = significant and shift.estimate > 0, significant and shift.estimate < 0

    es = scored.effect_size
    effect = _effect(es.measure, x, y)
    unknown = math.isnan(effect)  # Kayenta skips the effect-size check then
    increase_hurts = scored.direction in (Direction.INCREASE, Direction.EITHER)
    decrease_hurts = scored.direction in (Direction.DECREASE, Direction.EITHER)
    classification = SignalClass.PASS
    if increase_hurts and higher and (unknown or effect >= es.bound("allowed_increase")):
        classification = SignalClass.HIGH
    elif decrease_hurts and lower and (unknown or effect <= es.bound("allowed_decrease")):
        classification = SignalClass.LOW
    critical = scored.critical and (
        (classification is SignalClass.HIGH and (unknown or effect >= es.bound("critical_increase")))
        or (classification is SignalClass.LOW and (unknown or effect <= es.bound("critical_decrease")))
    )
    ratio = compute_mean_ratio(x, y)
    return SignalResult(
        name, classification, classification is SignalClass.PASS, points, p_value,
        None if math.isnan(ratio) else ratio, shift, None if unknown else effect, critical, counts, es.measure,
    )


def scored_signals(metric: Metric, judge: MannWhitneyJudge) -> tuple[ScoredSignal, ...]:
    """The judge's signals; none given means the metric's own signal, direction increase."""
    if judge.signals:
        return judge.signals
    return (ScoredSignal(signal=metric.signal, quantile=metric.quantile),)


def signal_name(scored: ScoredSignal) -> str:
    return scored.name or describe_signal(scored.signal, scored.quantile)


@dataclass(frozen=True, slots=True)
class ScoreResult:
    """``WeightedSumScorer``'s answer: the summary score, each group's score (grouped signals
    only), and why the score was forced to 0 (None when it was not)."""

    score: float
    groups: tuple[tuple[str, float], ...]
    reason: str | None = None


def compute_score(
    results: Sequence[SignalResult], signals: Sequence[ScoredSignal], group_weights: dict[str, float] | None = None
) -> ScoreResult:
    """Kayenta's weighted score 0..100 over the unmuted signals (``ScoringHelper`` + ``WeightedSumScorer``)."""
    active = [(i, r, s) for i, (r, s) in enumerate(zip(results, signals)) if not s.muted]
    grouped = any(s.groups for s in signals)
    members: dict[str, list[SignalClass]] = {}
    if grouped:
        weights = dict(group_weights or {})
        for _, r, s in active:
            for group in s.groups:
                members.setdefault(group, []).append(r.classification)
    else:  # each signal its own group, weights in proportion to `weight`
        total = sum(s.weight for _, _, s in active)
        weights = {f"#{i}": 100.0 * s.weight / total for i, _, s in active}
        members = {f"#{i}": [r.classification] for i, r, _ in active}
    group_scores: dict[str, float | None] = {}
    for group, labels in members.items():
        counted = [c for c in labels if c in _COUNTED]
        group_scores[group] = 100.0 * counted.count(SignalClass.PASS) / len(counted) if counted else None
    shown = tuple((g, 0.0 if v is None else v) for g, v in group_scores.items()) if grouped else ()

    failures = [r for _, r, _ in active if r.critical and r.classification is not SignalClass.PASS]
    if failures:
        return ScoreResult(0.0, shown, f"critical signal failed: {', '.join(r.name for r in failures)}")
    nodata = sum(r.classification is SignalClass.NODATA for _, r, _ in active)
    if active and 100.0 * nodata / len(active) >= NODATA_SHARE:
        return ScoreResult(0.0, shown, f"{NODATA_SHARE:g}% or more of the signals have no data")
    unweighted = [g for g in group_scores if g not in weights]
    shared = (100.0 - sum(weights.values())) / len(unweighted) if unweighted else 0.0
    summary = sum((100.0 if v is None else v) * weights.get(g, shared) / 100.0 for g, v in group_scores.items())
    return ScoreResult(round_score(summary), shown, None if active else "every signal is muted")


def classify_score(score: float, thresholds: ScoreThresholds) -> MeasurementPhase:
    """``ThresholdScoreClassifier``: pass, marginal (inconclusive) or fail."""
    if score >= thresholds.pass_:
        return MeasurementPhase.SUCCESSFUL
    if score > thresholds.marginal or (thresholds.marginal_inclusive and score == thresholds.marginal):
        return MeasurementPhase.INCONCLUSIVE
    return MeasurementPhase.FAILED


def judge_mann_whitney(metric: Metric, windows: Sequence[MeasurementWindow]) -> Judgement:
    """Judge the run so far: classify each scored signal (canary vs baseline), score, classify the score."""
    judge = metric.judge.mann_whitney
    if judge is None:
        raise ValueError(f"metric {metric.name!r} does not use the Mann-Whitney judge")
    if not windows:
        raise ValueError(f"metric {metric.name!r}: a measurement needs at least one window")
    if windows[-1].canary.requests == 0:
        return Judgement(MeasurementPhase.ERROR, None, None, "no canary requests in the window")
    series = windows[-judge.lookback:] if judge.lookback else windows
    if len(series) < judge.min_points:
        return Judgement(MeasurementPhase.PENDING, None, None,
                         f"waiting for {judge.min_points} windows: {len(series)}/{judge.min_points}")
    if len(windows) % judge.judge_every:
        due = (len(windows) // judge.judge_every + 1) * judge.judge_every
        return Judgement(MeasurementPhase.PENDING, None, None,
                         f"judged every {judge.judge_every} windows: window {len(windows)}, next judgement at {due}")
    signals = scored_signals(metric, judge)
    results = [
        classify_signal(
            signal_name(s),
            [signal_value(w.canary, s.signal, s.quantile) for w in series],
            [signal_value(w.baseline, s.signal, s.quantile) for w in series],
            s,
            judge.confidence,
            significance=judge.significance,
            tolerance=judge.tolerance,
        )
        for s in signals
    ]
    scored = compute_score(results, signals, judge.group_weights)
    t = judge.thresholds
    head = f"score {scored.score:g} (pass {t.pass_:g}, marginal {t.marginal:g})"
    if scored.reason:
        head += f", {scored.reason}"
    if scored.groups:
        head += ", groups " + ", ".join(f"{g} {v:.4g}" for g, v in scored.groups)
    described = [r.describe() + (" [muted]" if s.muted else "") for r, s in zip(results, signals)]
    return Judgement(classify_score(scored.score, t), scored.score, None, f"{head}; " + "; ".join(described))
