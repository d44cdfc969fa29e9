"""Random times drawn from the scenario's distributions (pod start, human response, repairs).

A scenario describes uncertain durations as a :data:`scenarios.schema.Distribution`
(``fixed``, ``uniform``, ``lognormal``, ``exponential``, all in seconds). This module
turns one into numbers, using only the numpy ``Generator`` it is handed, so a run is
reproducible from its seed: the same generator state gives the same draws.

How each kind is drawn:

- fixed: always ``value``;
- uniform: ``low + (high - low)·U`` with U uniform on [0, 1);
- lognormal: ``median·exp(σ·Z)`` with Z standard normal, so ``median`` is the 50th
  percentile and ``median·exp(z_q·σ)`` the q-th (z_0.99 = 2.3263). σ is
  :attr:`LognormalDistribution.sigma_value`, whichever of ``sigma``, ``p90`` or ``p99``
  the scenario gave: the schema owns that conversion, this module does not repeat it;
- exponential: ``mean·E`` with E standard exponential (memoryless waiting).
"""

from __future__ import annotations

import math

import numpy as np

from rolloutlab.scenarios.schema import (
    ExponentialDistribution,
    FixedDistribution,
    LognormalDistribution,
    UniformDistribution,
)

__all__ = ["sample", "sample_many"]

AnyDistribution = (
    FixedDistribution | UniformDistribution | LognormalDistribution | ExponentialDistribution
)


def sample(dist: AnyDistribution, rng: np.random.Generator) -> float:
    """One time, in seconds, drawn from ``dist``."""
    if isinstance(dist, FixedDistribution):
        return float(dist.value)
    if isinstance(dist, UniformDistribution):
        return float(rng.uniform(dist.low, dist.high))
    if isinstance(dist, LognormalDistribution):
        return float(rng.lognormal(math.log(dist.median), dist.sigma_value))
    if isinstance(dist, ExponentialDistribution):
        return float(rng.exponential(dist.mean))
    raise TypeError(f"cannot sample from {type(dist).__name__}: not a scenario distribution")


def sample_many(dist: AnyDistribution, rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` independent times, in seconds, drawn from ``dist`` (a float64 array)."""
    if n < 0:
        raise ValueError(f"cannot draw {n} samples: n must be >= 0")
    if isinstance(dist, FixedDistribution):
        return np.full(n, float(dist.value))
    if isinstance(dist, UniformDistribution):
        return rng.uniform(dist.low, dist.high, size=n)
    if isinstance(dist, LognormalDistribution):
        return rng.lognormal(math.log(dist.median), dist.sigma_value, size=n)
    if isinstance(dist, ExponentialDistribution):
        return rng.exponential(dist.mean, size=n)
    raise TypeError(f"cannot sample from {type(dist).__name__}: not a scenario distribution")
