"""Times drawn from scenario distributions follow those distributions, reproducibly."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rolloutlab.scenarios.schema import (
    ExponentialDistribution,
    FixedDistribution,
    LognormalDistribution,
    UniformDistribution,
)
from rolloutlab.sim.sampling import sample, sample_many

N = 100_000


def lognormal_quantile(median: float, sigma: float, q: float) -> float:
    return median * math.exp(sigma * NormalDist().inv_cdf(q))


# (distribution, theoretical mean, theoretical quantile function), each computed here
# from the parameters, not from the code under test.
CASES = [
    (UniformDistribution(low=5, high=15), 10.0, lambda q: 5 + 10 * q),
    (UniformDistribution(high=2), 1.0, lambda q: 2 * q),
    (
        LognormalDistribution(median=10, p99=40),
        10 * math.exp((math.log(4) / NormalDist().inv_cdf(0.99)) ** 2 / 2),
        lambda q: lognormal_quantile(10, math.log(4) / NormalDist().inv_cdf(0.99), q),
    ),
    (
        LognormalDistribution(median=120, p90=300),
        120 * math.exp((math.log(2.5) / NormalDist().inv_cdf(0.9)) ** 2 / 2),
        lambda q: lognormal_quantile(120, math.log(2.5) / NormalDist().inv_cdf(0.9), q),
    ),
    (
        LognormalDistribution(median=2, sigma=0.5),
        2 * math.exp(0.125),
        lambda q: lognormal_quantile(2, 0.5, q),
    ),
    (ExponentialDistribution(mean=7), 7.0, lambda q: -7 * math.log1p(-q)),
]
IDS = [
    "uniform 5..15 s",
    "uniform 0..2 s",
    "lognormal median 10 s, p99 40 s",
    "lognormal median 120 s, p90 300 s",
    "lognormal median 2 s, sigma 0.5",
    "exponential mean 7 s",
]
QUANTILES = (0.01, 0.1, 0.5, 0.9, 0.99)


@pytest.mark.parametrize(("dist", "mean", "quantile"), CASES, ids=IDS)
def test_sample_many_matches_mean_and_quantiles(dist, mean, quantile) -> None:
    """A seeded 100k sample has the distribution's mean and puts a share q below its q-quantile."""
    draws = sample_many(dist, np.random.default_rng(11), N)
    assert draws.shape == (N,)
    standard_error = draws.std() / math.sqrt(N)
    assert abs(draws.mean() - mean) < 4 * standard_error
    assert mean == pytest.approx(dist.expected(), rel=1e-12)
    for q in QUANTILES:
        share_below = np.mean(draws <= quantile(q))
        assert abs(share_below - q) < 4 * math.sqrt(q * (1 - q) / N), q


@pytest.mark.parametrize(("dist", "mean", "quantile"), CASES, ids=IDS)
def test_scalar_sample_matches_mean_and_median(dist, mean, quantile) -> None:
    """Scalar draws have the distribution's mean and median too."""
    rng = np.random.default_rng(12)
    n = 20_000
    draws = np.array([sample(dist, rng) for _ in range(n)])
    assert abs(draws.mean() - mean) < 4 * draws.std() / math.sqrt(n)
    assert abs(np.mean(draws <= quantile(0.5)) - 0.5) < 4 * math.sqrt(0.25 / n)


def test_fixed_distribution_always_gives_its_value() -> None:
    """A fixed distribution returns its value, as a scalar and as an array."""
    dist = FixedDistribution(value=3.5)
    rng = np.random.default_rng(0)
    assert sample(dist, rng) == 3.5
    assert sample_many(dist, rng, 4).tolist() == [3.5] * 4


@pytest.mark.parametrize(("dist", "mean", "quantile"), CASES, ids=IDS)
def test_same_seed_gives_same_draws(dist, mean, quantile) -> None:
    """Two generators with the same seed produce the same scalar and array draws."""
    first, second = np.random.default_rng(99), np.random.default_rng(99)
    assert [sample(dist, first) for _ in range(5)] == [sample(dist, second) for _ in range(5)]
    assert np.array_equal(sample_many(dist, first, 50), sample_many(dist, second, 50))


def test_sample_many_rejects_negative_count_and_allows_zero() -> None:
    """Zero draws give an empty array; a negative count is an error."""
    rng = np.random.default_rng(0)
    assert sample_many(ExponentialDistribution(mean=1), rng, 0).shape == (0,)
    with pytest.raises(ValueError, match="n must be >= 0"):
        sample_many(ExponentialDistribution(mean=1), rng, -1)


def test_sample_rejects_non_distributions() -> None:
    """Anything but a scenario distribution is a TypeError naming its type."""
    with pytest.raises(TypeError, match="dict"):
        sample({"kind": "fixed"}, np.random.default_rng(0))  # type: ignore[arg-type]


@settings(max_examples=50, deadline=None)
@given(
    low=st.floats(0, 1e4),
    width=st.floats(0, 1e4),
    seed=st.integers(0, 2**32 - 1),
)
def test_uniform_draws_stay_inside_bounds(low: float, width: float, seed: int) -> None:
    """Uniform draws never leave [low, high]."""
    dist = UniformDistribution(low=low, high=low + width)
    draws = sample_many(dist, np.random.default_rng(seed), 100)
    assert np.all((draws >= dist.low) & (draws <= dist.high))
    assert dist.low <= sample(dist, np.random.default_rng(seed)) <= dist.high
