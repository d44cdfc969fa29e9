"""The Mann-Whitney judge: Kayenta's NetflixACAJudge, comparing canary and baseline series.

Sources followed (spinnaker/kayenta, also vendored as ``kayenta/`` in spinnaker/spinnaker):
``kayenta-judge/src/main/scala/com/netflix/kayenta/judge/NetflixACAJudge.scala`` (per-metric
direction, ``critical``, ``nanStrategy``, ``effectSize.allowedIncrease/allowedDecrease``),
``.../judge/classifiers/metric/MannWhitneyClassifier.scala`` (High/Low/Pass),
``.../judge/stats/EffectSizes.scala`` (``meanRatio``), ``.../judge/scorers/WeightedSumScorer.scala``
(score, critical failure → 0), ``.../judge/classifiers/score/ThresholdScoreClassifier.scala``
(pass/marginal) and ``kayenta-mannwhitney/.../mannwhitney/MannWhitney.scala`` (the interval).

Decision rule. Each scored signal (``metric.judge.mann_whitney.signals``; empty means one
signal: the metric's own signal and quantile, direction increase, weight 1) gives two series,
the signal's value per window for the canary and for the baseline, over ``windows`` (every
window of this analysis run so far). A window where either side has no data is dropped
from both series (Kayenta's ``nanStrategy: remove``, applied pairwise because both sides
come from the same window).

* Fewer than ``min_points`` points on any signal → **Pending** for the measurement.
* The latest window has no canary requests → **Error** (the canary is not being measured:
  Argo's consecutiveErrorLimit should see it), whatever the older windows say.
* Per signal: identical series (as multisets) or a single distinct value → Pass, as
  Kayenta. Otherwise ``scipy.stats.mannwhitneyu`` two-sided; *significant* when
  ``p < 1 - confidence``. The shift canary − baseline is estimated by Hodges–Lehmann (median
  of the pairwise differences) with its distribution-free interval (``compute_shift``).
  The effect is Kayenta's ``meanRatio`` = mean(canary) / mean(baseline).

  - **High**: significant, estimate > 0 and ratio > ``allowed_increase``
    (``allowed_increase: 1.1`` lets the canary be up to 10% higher).
  - **Low**: significant, estimate < 0 and ratio < 1 / ``allowed_decrease``
    (``allowed_decrease: 1.1`` lets it fall to baseline/1.1). Kayenta writes this bound as a
    ratio ≤ 1 (``allowedDecrease: 0.9``); the spec keeps both factors ≥ 1, so we divide.
  - Baseline mean 0: the ratio is +inf when the canary mean is above 0 (Kayenta's
    ``meanRatio`` gives NaN there and skips the effect gate: the same verdict).
  - A High fails a signal whose direction is ``increase`` or ``either``; a Low fails one
    whose direction is ``decrease`` or ``either``; anything else passes.

* Score = 100 × Σ weight(passing) / Σ weight(all), rounded to 2 decimals as Kayenta's
  ``WeightedSumScorer``; a failing ``critical`` signal makes it 0.
* Phase (``ThresholdScoreClassifier``): score ≥ ``pass`` → **Successful**; ≥ ``marginal`` →
  **Inconclusive**; else **Failed**. Never ``final``: each measurement re-judges the run's
  whole series, and the caller's limits decide.

Where we differ from Kayenta: Kayenta calls a metric High only when the whole interval lies
above ±0.25·|estimate| (its ``tolerance`` band); we use the test's p-value for significance
and leave practical significance to ``allowed_increase``/``allowed_decrease``. Kayenta also
adds tiny Gaussian noise to all-tied data and removes IQR outliers on request; we do neither
(no RNG in ``strategies/``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache

import numpy as np
from scipy import stats

from rolloutlab.strategies.judges.judgement import (
    Judgement,
    MeasurementPhase,
    describe_signal,
    signal_value,
)
from rolloutlab.strategies.observation import MeasurementWindow
from rolloutlab.strategies.spec import Direction, MannWhitneyJudge, Metric, ScoredSignal

EXACT_MAX_SAMPLE = 50
"""Largest sample size (per side) for which the interval uses the exact null distribution
of U; above it the normal approximation is within a fraction of a rank."""


class SignalClass(str, Enum):
    """Kayenta's metric classifications."""

    PASS = "Pass"
    HIGH = "High"
    LOW = "Low"


@dataclass(frozen=True, slots=True)
class ShiftEstimate:
    """The location shift canary − baseline with its distribution-free confidence interval.

    ``coverage`` is the interval's true confidence under the null distribution of U, at
    least the nominal level (exact method) or approximately it (normal method); an interval
    of ±inf means the samples are too small for the level asked.
    """

    estimate: float
    lower: float
    upper: float
    coverage: float
    method: str  # "exact" or "normal"


@dataclass(frozen=True, slots=True)
class SignalResult:
    """One scored signal's comparison over the run's windows."""

    name: str
    classification: SignalClass
    passed: bool
    points: int
    p_value: float | None = None
    ratio: float | None = None
    shift: ShiftEstimate | None = None

    def describe(self) -> str:
        if self.shift is None:
            return f"{self.name} {self.classification.value} (identical series, {self.points} points)"
        s = self.shift
        verdict = self.classification.value
        if not self.passed:
            verdict += " → fails"
        elif self.classification is not SignalClass.PASS:
            verdict += " (allowed by direction)"
        return (
            f"{self.name} {verdict}: shift {s.estimate:.4g} [{s.lower:.4g}, {s.upper:.4g}] "
            f"({s.coverage:.1%} {s.method}), ratio {_fmt_ratio(self.ratio)}, p={self.p_value:.3g}, "
            f"{self.points} points"
        )


def _fmt_ratio(ratio: float | None) -> str:
    if ratio is None:
        return "n/a"
    return "inf" if math.isinf(ratio) else f"{ratio:.3f}"


@lru_cache(maxsize=256)
def compute_u_distribution(m: int, n: int) -> np.ndarray:
    """P(U = u) for u = 0..m·n under H0 (no ties): U counts pairs where the first sample wins.

    Counts follow the recurrence c(m, n, u) = c(m−1, n, u−n) + c(m, n−1, u) (Mann & Whitney
    1947), the coefficients of the Gaussian binomial [m+n choose m]_q.
    """
    if m < 0 or n < 0:
        raise ValueError(f"sample sizes must not be negative, got {m} and {n}")
    # rows[j] holds the counts for (i, j) with the current i; start at i = 0: one way, U = 0.
    rows = [np.ones(1) for _ in range(n + 1)]
    for i in range(1, m + 1):
        new = [np.ones(1)]
        for j in range(1, n + 1):
            counts = np.zeros(i * j + 1)
            prev = rows[j]  # (i-1, j): the largest value is in the first sample, beats all j
            counts[j : j + prev.size] += prev
            left = new[j - 1]  # (i, j-1): the largest value is in the second sample
            counts[: left.size] += left
            new.append(counts)
        rows = new
    probabilities = rows[n] / rows[n].sum()
    probabilities.setflags(write=False)  # cached: shared between callers
    return probabilities


def compute_shift(canary: Sequence[float], baseline: Sequence[float], confidence: float) -> ShiftEstimate:
    """Hodges–Lehmann shift canary − baseline and its confidence interval (Bauer 1972).

    With D(1) ≤ … ≤ D(mn) the sorted pairwise differences canary_i − baseline_j, the
    interval is [D(k), D(mn+1−k)] for the largest k with P(U ≤ k−1) ≤ (1−confidence)/2:
    the true shift lies below D(k) exactly when at most k−1 shifted differences are
    negative, an event of probability P(U ≤ k−1). U's distribution is exact for samples up
    to ``EXACT_MAX_SAMPLE`` per side, normal with continuity correction above. Kayenta's
    ``MannWhitney.scala`` inverts the normal-approximation test by root finding; ordering
    the differences gives the same interval without iteration and is exact for small n.
    """
    x = np.asarray(canary, dtype=float)
    y = np.asarray(baseline, dtype=float)
    m, n = x.size, y.size
    if m == 0 or n == 0:
        raise ValueError("a shift needs at least one value on each side")
    diffs = np.sort((x[:, None] - y[None, :]).ravel())
    estimate = float(np.median(diffs))
    half_alpha = (1.0 - confidence) / 2.0
    if max(m, n) <= EXACT_MAX_SAMPLE:
        cdf = np.cumsum(compute_u_distribution(m, n))
        k = int(np.searchsorted(cdf, half_alpha * (1 + 1e-12), side="right"))  # number of u with P(U<=u) <= a/2
        tail = float(cdf[k - 1]) if k > 0 else 0.0
        method = "exact"
    else:
        mean, sd = m * n / 2.0, math.sqrt(m * n * (m + n + 1) / 12.0)
        c = math.floor(mean - 0.5 + sd * stats.norm.ppf(half_alpha))  # largest c with P(U<=c) <= a/2
        k = max(c + 1, 0)
        tail = float(stats.norm.cdf((c + 0.5 - mean) / sd)) if k > 0 else 0.0
        method = "normal"
    if k == 0:
        return ShiftEstimate(estimate, -math.inf, math.inf, 1.0, method)
    return ShiftEstimate(estimate, float(diffs[k - 1]), float(diffs[m * n - k]), 1.0 - 2.0 * tail, method)


def _mean_ratio(canary: np.ndarray, baseline: np.ndarray) -> float:
    mc, mb = float(canary.mean()), float(baseline.mean())
    if mb == 0.0:
        return 1.0 if mc == 0.0 else math.inf
    return mc / mb


def _fails(classification: SignalClass, direction: Direction) -> bool:
    if classification is SignalClass.HIGH:
        return direction in (Direction.INCREASE, Direction.EITHER)
    if classification is SignalClass.LOW:
        return direction in (Direction.DECREASE, Direction.EITHER)
    return False


def classify_signal(
    name: str, canary: Sequence[float], baseline: Sequence[float], scored: ScoredSignal, confidence: float
) -> SignalResult:
    """Kayenta's MannWhitneyClassifier on two equally long series of one signal."""
    x = np.asarray(canary, dtype=float)
    y = np.asarray(baseline, dtype=float)
    points = int(min(x.size, y.size))
    if np.array_equal(np.sort(x), np.sort(y)) or np.unique(np.concatenate([x, y])).size == 1:
        return SignalResult(name, SignalClass.PASS, True, points, p_value=1.0, ratio=1.0)
    p_value = float(stats.mannwhitneyu(x, y, alternative="two-sided").pvalue)
    shift = compute_shift(x, y, confidence)
    ratio = _mean_ratio(x, y)
    significant = p_value < 1.0 - confidence
    classification = SignalClass.PASS
    if significant and shift.estimate > 0 and ratio > scored.allowed_increase:
        classification = SignalClass.HIGH
    elif significant and shift.estimate < 0 and ratio < 1.0 / scored.allowed_decrease:
        classification = SignalClass.LOW
    passed = not _fails(classification, scored.direction)
    return SignalResult(name, classification, passed, points, p_value, ratio, shift)


def scored_signals(metric: Metric, judge: MannWhitneyJudge) -> tuple[ScoredSignal, ...]:
    """The judge's signals; none given means the metric's own signal, direction increase."""
    if judge.signals:
        return judge.signals
    return (ScoredSignal(signal=metric.signal, quantile=metric.quantile),)


def compute_score(results: Sequence[SignalResult], signals: Sequence[ScoredSignal]) -> float:
    """Kayenta's weighted score 0..100: passing weight over all weight; a critical failure is 0."""
    if any(not r.passed and s.critical for r, s in zip(results, signals)):
        return 0.0
    total = sum(s.weight for s in signals)
    passing = sum(s.weight for r, s in zip(results, signals) if r.passed)
    return round(100.0 * passing / total, 2)


def judge_mann_whitney(metric: Metric, windows: Sequence[MeasurementWindow]) -> Judgement:
    """Judge the run so far: classify each scored signal, score them, classify the score."""
    judge = metric.judge.mann_whitney
    if judge is None:
        raise ValueError(f"metric {metric.name!r} does not use the Mann-Whitney judge")
    if not windows:
        raise ValueError(f"metric {metric.name!r}: a measurement needs at least one window")
    if windows[-1].canary.requests == 0:
        return Judgement(MeasurementPhase.ERROR, None, None, "no canary requests in the window")
    signals = scored_signals(metric, judge)
    series: list[tuple[str, list[float], list[float]]] = []
    for s in signals:
        name = describe_signal(s.signal, s.quantile)
        canary, baseline = [], []
        for w in windows:
            c, b = signal_value(w.canary, s.signal, s.quantile), signal_value(w.baseline, s.signal, s.quantile)
            if c is not None and b is not None:
                canary.append(c)
                baseline.append(b)
        series.append((name, canary, baseline))
    short = [f"{name} {len(c)}/{judge.min_points}" for name, c, _ in series if len(c) < judge.min_points]
    if short:
        return Judgement(
            MeasurementPhase.PENDING,
            None,
            None,
            f"waiting for {judge.min_points} windows with data on both versions: {', '.join(short)}",
        )
    results = [classify_signal(name, c, b, s, judge.confidence) for (name, c, b), s in zip(series, signals)]
    score = compute_score(results, signals)
    t = judge.thresholds
    if score >= t.pass_:
        phase = MeasurementPhase.SUCCESSFUL
    elif score >= t.marginal:
        phase = MeasurementPhase.INCONCLUSIVE
    else:
        phase = MeasurementPhase.FAILED
    critical = [r.name for r, s in zip(results, signals) if s.critical and not r.passed]
    head = f"score {score:g} (pass {t.pass_:g}, marginal {t.marginal:g})"
    if critical:
        head += f", critical signal failed: {', '.join(critical)}"
    return Judgement(phase, score, None, f"{head}; " + "; ".join(r.describe() for r in results))
