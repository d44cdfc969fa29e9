"""The estimators ``rolloutlab fit`` uses, each a pure function of numbers with its interval.

- **A rate of events** (deployments per day) from the gaps between them: in a Poisson
  process the ``k`` gaps are independent exponentials, their sum ``S`` is Gamma(k, rate), so
  ``2·rate·S`` is chi-square with ``2k`` degrees of freedom and the interval is exact
  (``compute_gap_rate``; the chi-square form of Garwood's interval, Garwood 1936).
- **A share** (change failures among deployments): the Wilson score interval,
  ``results.statistics.compute_wilson_interval`` (one place for it).
- **A lognormal time** (lead time, time to detect, time to restore): fitted in log space.
  With every time observed, the maximum-likelihood median is the geometric mean and the
  intervals are exact: the log-median by Student's t, the log-spread by chi-square. With
  some times right-censored (an incident not restored when the log ends), the fit is
  maximum likelihood with censoring (``fit_censored_normal``: the likelihood scipy's fit
  maximises on ``scipy.stats.CensoredData``) and the intervals come from a
  parametric bootstrap: times drawn from the fitted lognormal, censored where the real
  ones could have been (each item's own limit), refitted; percentile intervals. Its
  random numbers derive from a ``numpy.random.SeedSequence``: same input, same interval.

Each returns ``results.statistics.Figure`` values (value, low, high, n), so the command's
table and the scenario's comments format them the way every other table does.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special, stats

from rolloutlab.results.statistics import CONFIDENCE, Figure

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
BOOTSTRAP_FITS = 400
"""Refits of the parametric bootstrap (censored times only): the 2.5% and 97.5% points of
400 fits move by a few percent of the interval's width between seeds."""


@dataclass(frozen=True)
class LognormalFit:
    """A lognormal time as the scenario schema states it: the median and ``sigma`` (the
    standard deviation of the log), each with its interval."""

    median: Figure
    sigma: Figure
    n: int
    """Times the fit saw, censored ones included."""
    censored: int
    """Of them, times known only to be longer than what was watched."""
    method: str
    """How the intervals were made, in a few words for the table and the comments."""

    @property
    def p90(self) -> float:
        """The fitted 90th percentile (median · e^(1.2816 σ))."""
        assert self.median.value is not None and self.sigma.value is not None
        return self.median.value * math.exp(stats.norm.ppf(0.9) * self.sigma.value)


def compute_gap_rate(times: np.ndarray, confidence: float = CONFIDENCE) -> Figure:
    """Events per unit of ``times`` (seconds in, per second out) from the gaps between
    consecutive events, with the exact chi-square interval; ``n`` is the number of gaps.

    The estimate is ``k / S`` (k gaps summing to S): the maximum-likelihood rate of the
    exponential gaps. Example: 11 deployments over 5 days have 10 gaps, rate 2/day, 95%
    interval [0.96, 3.68]/day (chi-square 20 d.f.: 9.59 and 34.17, over 2·5 days).
    """
    ordered = np.sort(np.asarray(times, dtype=float))
    k = len(ordered) - 1
    span = float(ordered[-1] - ordered[0]) if k > 0 else 0.0
    if k < 1 or span <= 0:
        return Figure.unavailable(max(k, 0))
    alpha = 1 - confidence
    low = stats.chi2.ppf(alpha / 2, 2 * k) / (2 * span)
    high = stats.chi2.ppf(1 - alpha / 2, 2 * k) / (2 * span)
    return Figure(k / span, float(low), float(high), k)


def compute_lognormal_fit(
    times: np.ndarray, censored: np.ndarray, seed: np.random.SeedSequence,
    limits: np.ndarray | None = None, confidence: float = CONFIDENCE,
) -> LognormalFit:
    """Fit a lognormal to positive ``times``; ``censored[i]`` marks a time known only to
    exceed ``times[i]``. ``limits[i]`` is the longest time item ``i`` could have been
    watched for (its censoring time had it not ended; default: its own time when censored,
    never for the others), which the bootstrap needs to censor its draws as the data were.
    Needs at least two observed (uncensored) times that differ."""
    times = np.asarray(times, dtype=float)
    censored = np.asarray(censored, dtype=bool)
    if np.any(times <= 0):
        raise ValueError("a lognormal fit needs positive times")
    logs = np.log(times)
    observed = logs[~censored]
    if len(observed) < 2 or np.ptp(observed) == 0:
        raise ValueError("a lognormal fit needs at least two different observed times")
    alpha = 1 - confidence
    n = len(times)
    if not censored.any():
        mu, s = float(observed.mean()), float(observed.std(ddof=1))
        half = stats.t.ppf(1 - alpha / 2, n - 1) * s / math.sqrt(n)
        sig_low = s * math.sqrt((n - 1) / stats.chi2.ppf(1 - alpha / 2, n - 1))
        sig_high = s * math.sqrt((n - 1) / stats.chi2.ppf(alpha / 2, n - 1))
        return LognormalFit(
            Figure(math.exp(mu), math.exp(mu - half), math.exp(mu + half), n),
            Figure(s, sig_low, sig_high, n), n, 0,
            "exact: Student t (median), chi-square (sigma)",
        )
    mu, s = fit_censored_normal(logs, censored)
    if limits is None:
        limits = np.where(censored, times, np.inf)
    log_limits = np.log(np.asarray(limits, dtype=float))
    rng = np.random.default_rng(seed)
    fits = np.empty((BOOTSTRAP_FITS, 2))
    for b in range(BOOTSTRAP_FITS):
        draw = rng.normal(mu, s, size=n)
        cut = draw >= log_limits
        draw = np.where(cut, log_limits, draw)
        if (~cut).sum() < 2 or np.ptp(draw[~cut]) == 0:
            fits[b] = (np.nan, np.nan)  # a draw the fit cannot use: left out, as the data would be
            continue
        fits[b] = fit_censored_normal(draw, cut) if cut.any() else (draw.mean(), draw.std(ddof=1))
    fits = fits[np.isfinite(fits).all(axis=1)]
    q = [100 * alpha / 2, 100 * (1 - alpha / 2)]
    mu_low, mu_high = np.percentile(fits[:, 0], q)
    s_low, s_high = np.percentile(fits[:, 1], q)
    return LognormalFit(
        Figure(math.exp(mu), math.exp(mu_low), math.exp(mu_high), n, int(censored.sum())),
        Figure(s, float(s_low), float(s_high), n, int(censored.sum())), n, int(censored.sum()),
        f"censored MLE, parametric bootstrap ({len(fits)} fits)",
    )


def fit_censored_normal(logs: np.ndarray, censored: np.ndarray) -> tuple[float, float]:
    """Maximum-likelihood normal of log-times with right-censored ones: observed times
    contribute their density, censored ones the chance of lasting longer
    (``norm.logsf``). The same likelihood ``scipy.stats.norm.fit`` maximises on a
    ``scipy.stats.CensoredData`` (a test checks they agree); minimised here by BFGS on
    (mean, log sd) from the observed times' mean and spread, tens of times faster, which
    the bootstrap's hundreds of refits need."""
    observed, right = logs[~censored], logs[censored]

    def negative_log_likelihood(theta: np.ndarray) -> tuple[float, np.ndarray]:
        # in (mean, log sd), with its gradient: observed z contribute -z²/2 - log sd, censored
        # ones log Φ(-z), whose derivatives carry the hazard φ(z)/Φ(-z)
        mu, log_sd = theta
        sd = math.exp(log_sd)
        z, zc = (observed - mu) / sd, (right - mu) / sd
        log_tail = special.log_ndtr(-zc)
        hazard = np.exp(-0.5 * zc * zc - _HALF_LOG_2PI - log_tail)
        value = (-0.5 * z @ z - len(z) * (log_sd + _HALF_LOG_2PI)) + log_tail.sum()
        grad = np.array([z.sum() / sd + hazard.sum() / sd, (z @ z - len(z)) + hazard @ zc])
        return -value, -grad

    start = np.array([observed.mean(), math.log(max(observed.std(), 1e-6))])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        found = optimize.minimize(negative_log_likelihood, start, jac=True, method="BFGS")
    return float(found.x[0]), float(math.exp(found.x[1]))
