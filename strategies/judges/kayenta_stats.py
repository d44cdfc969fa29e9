"""The statistics of Kayenta's NetflixACAJudge, computed the way Kayenta computes them.

Sources (spinnaker/kayenta, vendored as ``kayenta/`` in spinnaker/spinnaker):

- ``kayenta-mannwhitney/src/main/scala/com/netflix/kayenta/mannwhitney/MannWhitney.scala``:
  the confidence interval and estimate of the shift canary − baseline, a port of R's
  ``wilcox.test(x, y, conf.int = TRUE, exact = FALSE, correct = TRUE)``. The interval ends
  are the roots of ``wilcoxonDiff(mu) - z`` (the continuity- and tie-corrected normal
  statistic of the samples ``x - mu`` and ``y``), found by Brent's method as R's
  ``uniroot(..., tol = 1e-4)`` finds them; an end clamps to the data range
  (``mumin = min(x) - max(y)``, ``mumax = max(x) - min(y)``) when the statistic never
  crosses ``z`` inside it. :func:`compute_zeroin` ports R's ``R_zeroin2`` (``src/library/
  stats/src/zeroin.c``) step for step, so the interval and the estimate land on the same
  floating-point numbers as R's and Kayenta's (their ``MannWhitneySuite.scala`` checks R's
  values to 1e-6; ``tests/test_judges_kayenta.py`` checks ours against the same values).
- ``kayenta-judge/.../judge/stats/EffectSizes.scala``: ``meanRatio`` (NaN when either mean
  is 0) and ``cles`` (the common-language effect size, P(canary > baseline) + ½P(tie)).
- ``kayenta-judge/.../judge/detectors/IQRDetector.scala`` and ``DescriptiveStatistics``:
  Tukey fences at ``factor`` × IQR, widened to the 1st/99th percentiles
  (``reduceSensitivity``, what NetflixACAJudge uses); percentiles interpolate linearly
  between order statistics (``StatisticSuite.scala``: the 5th percentile of 0, 0.5 … 3.5 is
  0.175), which is numpy's default.

Everything here is deterministic: no random numbers (Kayenta's Gaussian noise for two
constant samples is replaced by its zero-noise limit, in :func:`compute_kayenta_interval`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
from scipy import stats

ROOT_TOLERANCE = 1e-4
"""R's ``wilcox.test`` finds the interval ends and the estimate with ``uniroot(tol = 1e-4)``."""
ROOT_MAX_ITERATIONS = 1000
"""R's ``uniroot`` default ``maxiter``."""
_DBL_EPSILON = 2.220446049250313e-16


class AllTied(ValueError):
    """Every value of both samples is the same: the rank statistic has no spread."""


def compute_wilcoxon_diff(mu: float, zq: float, x: np.ndarray, y: np.ndarray) -> float:
    """Kayenta's ``wilcoxonDiff``: the normal statistic of ranks of ``x - mu`` among ``y``, minus ``zq``.

    ``dz`` is the rank sum of ``x - mu`` less its null mean, corrected by ½ toward zero
    (continuity) and divided by the tie-corrected standard deviation.
    """
    m, n = float(x.size), float(y.size)
    ranks = stats.rankdata(np.concatenate([x - mu, y]))  # average ranks for ties, as NaturalRanking(AVERAGE)
    _, ties = np.unique(ranks, return_counts=True)
    dz = float(ranks[: x.size].sum()) - m * (m + 1) / 2 - m * n / 2
    correction = math.copysign(0.5, dz) if dz != 0 else 0.0
    tie_sum = float(np.sum(ties.astype(float) ** 3 - ties))
    sigma = math.sqrt((m * n / 12) * ((m + n + 1) - tie_sum / ((m + n) * (m + n - 1))))
    if sigma == 0:
        raise AllTied("cannot compute confidence interval when all observations are tied")
    return (dz - correction) / sigma - zq


def compute_zeroin(f: Callable[[float], float], ax: float, bx: float, fa: float, fb: float,
                   tol: float = ROOT_TOLERANCE, maxit: int = ROOT_MAX_ITERATIONS) -> float:
    """A root of ``f`` in [ax, bx] by Brent's method: R's ``R_zeroin2`` (zeroin.c), line for line.

    ``fa`` and ``fb`` are ``f(ax)`` and ``f(bx)``, of opposite signs. The answer is within
    about ``tol`` of a sign change; on a step function (a rank statistic) that is within
    ``tol`` of the step, and on a flat stretch at exactly zero it is the first point tried
    there, which is why the path of iterates matters and is kept as R's.
    """
    a, b = ax, bx
    c, fc = a, fa
    if fa == 0.0:
        return a
    if fb == 0.0:
        return b
    for _ in range(maxit + 1):
        prev_step = b - a
        if abs(fc) < abs(fb):  # b is the best approximation so far
            a, b, c = b, c, b
            fa, fb, fc = fb, fc, fb
        tol_act = 2 * _DBL_EPSILON * abs(b) + tol / 2
        new_step = (c - b) / 2
        if abs(new_step) <= tol_act or fb == 0.0:
            return b
        if abs(prev_step) >= tol_act and abs(fa) > abs(fb):  # interpolation may be tried
            cb = c - b
            if a == c:  # linear interpolation
                t1 = fb / fa
                p = cb * t1
                q = 1.0 - t1
            else:  # inverse quadratic interpolation
                q = fa / fc
                t1 = fb / fc
                t2 = fb / fa
                p = t2 * (cb * q * (q - t1) - (b - a) * (t1 - 1.0))
                q = (q - 1.0) * (t1 - 1.0) * (t2 - 1.0)
            if p > 0:
                q = -q
            else:
                p = -p
            if p < (0.75 * cb * q - abs(tol_act * q) / 2) and p < abs(prev_step * q / 2):
                new_step = p / q
        if abs(new_step) < tol_act:
            new_step = tol_act if new_step > 0 else -tol_act
        a, fa = b, fb
        b += new_step
        fb = f(b)
        if (fb > 0 and fc > 0) or (fb < 0 and fc < 0):
            c, fc = a, fa
    return b  # R gives up here too (and warns); Kayenta's solver takes the last iterate


@dataclass(frozen=True, slots=True)
class KayentaInterval:
    """Kayenta's Mann-Whitney result: the shift canary − baseline and its confidence interval."""

    estimate: float
    lower: float
    upper: float
    degenerate: bool = False  # both samples constant: the interval is the exact difference


def compute_kayenta_interval(canary: Sequence[float], baseline: Sequence[float], confidence: float) -> KayentaInterval:
    """``MannWhitney.mannWhitneyUTest(experiment = canary, control = baseline, confidence)``.

    Both samples constant (one distinct value each, different from each other): Kayenta adds
    Gaussian noise of standard deviation 1e-5 × the value to each sample
    (``MannWhitneyClassifier.addGaussianNoise``) so that the ranks are not all tied at the
    data range's single point. As the noise shrinks, its interval and estimate shrink onto
    the exact difference ``c - b`` (the data range ``[min(x) - max(y), max(x) - min(y)]``
    is that point ± the noise); we return that limit, without random numbers.
    """
    x = np.asarray(canary, dtype=float)
    y = np.asarray(baseline, dtype=float)
    if x.size == 0 or y.size == 0:
        raise ValueError("a Mann-Whitney interval needs at least one value on each side")
    if np.unique(x).size == 1 and np.unique(y).size == 1:
        d = float(x[0] - y[0])
        return KayentaInterval(d, d, d, degenerate=True)
    mu_min = float(x.min() - y.max())
    mu_max = float(x.max() - y.min())
    z = float(stats.norm.ppf((1.0 - confidence) / 2))  # negative: qnorm(alpha / 2)

    def root(zq: float) -> float:
        f_lower = compute_wilcoxon_diff(mu_min, zq, x, y)
        f_upper = compute_wilcoxon_diff(mu_max, zq, x, y)
        if f_lower <= 0:
            return mu_min
        if f_upper >= 0:
            return mu_max
        return compute_zeroin(lambda mu: compute_wilcoxon_diff(mu, zq, x, y), mu_min, mu_max, f_lower, f_upper)

    lower, upper = root(-z), root(z)
    estimate = compute_zeroin(lambda mu: compute_wilcoxon_diff(mu, 0.0, x, y), mu_min, mu_max,
                              compute_wilcoxon_diff(mu_min, 0.0, x, y), compute_wilcoxon_diff(mu_max, 0.0, x, y))
    return KayentaInterval(estimate, lower, upper)


def compute_mean_ratio(canary: Sequence[float], baseline: Sequence[float]) -> float:
    """``EffectSizes.meanRatio``: mean(canary) / mean(baseline); NaN when either mean is 0."""
    mc, mb = float(np.mean(canary)), float(np.mean(baseline))
    return math.nan if mb == 0.0 or mc == 0.0 else mc / mb


def compute_cles(canary: Sequence[float], baseline: Sequence[float]) -> float:
    """``EffectSizes.cles``: the share of (canary, baseline) pairs where the canary is higher,
    ties counting half (Vargha & Delaney's A, from the canary's rank sum)."""
    x = np.asarray(canary, dtype=float)
    y = np.asarray(baseline, dtype=float)
    m, n = x.size, y.size
    r1 = float(stats.rankdata(np.concatenate([x, y]))[:m].sum())
    return (2 * r1 - m * (m + 1)) / (2 * n * m)


def compute_outliers(values: Sequence[float], factor: float, reduce_sensitivity: bool = True) -> np.ndarray:
    """``IQRDetector.detect``: which values lie outside the Tukey fences ``Q1 - factor·IQR``,
    ``Q3 + factor·IQR``; with ``reduce_sensitivity`` the fences widen to at least the 1st
    and 99th percentiles, as NetflixACAJudge runs it."""
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        return np.zeros(0, dtype=bool)
    p25, p75 = np.percentile(data, [25, 75])
    low, high = p25 - factor * (p75 - p25), p75 + factor * (p75 - p25)
    if reduce_sensitivity:
        p01, p99 = np.percentile(data, [1, 99])
        low, high = min(p01, low), max(p99, high)
    return (data > high) | (data < low)


def round_score(score: float) -> float:
    """Commons Math's ``Precision.round(score, 2)``: half up on the decimal digits the number prints."""
    return float(Decimal(repr(score)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))
