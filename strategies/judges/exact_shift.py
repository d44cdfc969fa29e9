"""The exact rank interval for the shift canary − baseline, used by the Mann-Whitney judge's
``significance: pValue`` rule (rolloutlab's own; Kayenta's rule is in :mod:`kayenta_stats`).

The Hodges–Lehmann estimate is the median of the pairwise differences canary_i − baseline_j,
and its distribution-free interval takes order statistics of those differences whose ranks
come from the null distribution of U: exact for up to ``EXACT_MAX_SAMPLE`` points per side
(Bauer 1972), normal with continuity correction above.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import stats

EXACT_MAX_SAMPLE = 50
"""Largest sample size (per side) for which the interval uses the exact null distribution
of U; above it the normal approximation is within a fraction of a rank."""


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
    method: str  # "exact" or "normal" (this module); "asymptotic" or "exact difference" (Kayenta's interval)


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
