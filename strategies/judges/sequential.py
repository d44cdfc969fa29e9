"""The sequential judge: an anytime-valid mixture SPRT on error counts, canary vs baseline.

In the spirit of Lindon & Malek, "Anytime-Valid Inference for Multinomial Count Data"
(Netflix, NeurIPS 2022), which Netflix uses to stop bad canaries early: the evidence is a
likelihood-ratio martingale, so the test may be looked at after every window and stopped
at any time while its error rates stay bounded.

Model. In window i the canary served nc_i requests with ec_i errors, the baseline nb_i
with eb_i. Conditional on the window's total errors e_i = ec_i + eb_i,

    ec_i ~ Binomial(e_i, q_i(θ)),    q_i(θ) = θ·nc_i / (θ·nc_i + nb_i),

where θ = canary error rate / baseline error rate. This is exact when errors are Poisson
given traffic (the simulator's thinning model) and very close for binomial errors at
small rates. Conditioning on e_i removes the baseline's error rate, and q_i carries the
window's own traffic split, so the test stays valid whatever the baseline does and however
the weight changes between canary steps. A window with no requests on either side, or no
errors at all, carries no information (factor 1).

Hypotheses. Healthy H0: θ ≤ θ0 = 1 + tolerance. Bad H1: θ ≥ θ1 = θ0·(1 + min_effect).

Two statistics, recomputed from all windows at every measurement (windows are few):

* Against healthy: M0_n = mean over θ ∈ θ0·``FAIL_GRID`` of Π_i L_i(θ)/L_i(θ0). Each factor
  has expectation ≤ 1 under any θ_true ≤ θ0 (the binomial has monotone likelihood ratio in
  q, and q_i is increasing in θ), so M0 is a nonnegative supermartingale and by Ville's
  inequality P(M0 ever ≥ 1/alpha) ≤ alpha: a healthy canary is rolled back with
  probability at most ``alpha``, however often it is measured.
* Against bad: M1_n = mean over θ ∈ θ1·``PASS_GRID`` of Π_i L_i(θ)/L_i(θ1); symmetrically
  P(M1 ever ≥ 1/beta) ≤ beta under any θ_true ≥ θ1: a bad canary passes early with
  probability at most ``beta``.

Decision rule (the first boundary the running statistics cross, judged on the run so far):

* M0 crosses 1/alpha first (or both in the same window) → **Failed**, ``final``.
* M1 crosses 1/beta first → **Successful**, ``final`` (evidence the canary is not bad).
* Otherwise, the latest window had no canary requests → **Error** ("no canary requests").
* Otherwise → **Pending**: no decision yet. With a ``count``, a run that ends undecided
  ends Pending, and the analysis (``strategies/analysis.py``) makes the metric
  Inconclusive: the rollout pauses for a person instead of passing by default.

``value`` is the pooled rate ratio (Σec/Σnc)/(Σeb/Σnb), None while undefined (no canary
requests, or no baseline errors). Everything is computed in log space (logsumexp over the
grid), so counts of 10^9 requests neither overflow nor underflow.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import logsumexp

from rolloutlab.strategies.judges.judgement import Judgement, MeasurementPhase
from rolloutlab.strategies.observation import MeasurementWindow
from rolloutlab.strategies.spec import Metric, SequentialJudge

FAIL_GRID: tuple[float, ...] = (1.25, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0)
"""Alternatives to healthy, as multiples of θ0, mixed with equal weights: a canary from
25% to 20 times worse than tolerated is caught without knowing which."""

PASS_GRID: tuple[float, ...] = (0.8, 0.6, 0.4, 0.2, 0.05)
"""Alternatives to bad, as multiples of θ1, mixed with equal weights: down to a canary that
almost never fails (0.05·θ1; θ = 0 itself is left out because a single canary error would
send its likelihood to zero and waste the mixture weight)."""


@dataclass(frozen=True, slots=True)
class SequentialBounds:
    """The two hypotheses and boundaries of one sequential judge, in the units of θ."""

    healthy: float  # θ0: H0 is θ <= θ0
    bad: float  # θ1: H1 is θ >= θ1
    log_fail: float  # log(1/alpha): M0 at or above it fails the canary
    log_pass: float  # log(1/beta): M1 at or above it passes the canary

    @classmethod
    def of(cls, judge: SequentialJudge) -> "SequentialBounds":
        healthy = 1.0 + judge.tolerance
        return cls(healthy, healthy * (1.0 + judge.min_effect), -math.log(judge.alpha), -math.log(judge.beta))


def compute_log_mixture(
    canary_errors: ArrayLike,
    canary_requests: ArrayLike,
    baseline_errors: ArrayLike,
    baseline_requests: ArrayLike,
    reference: float,
    multipliers: Sequence[float],
) -> np.ndarray:
    """log of the mixture likelihood ratio after each window, against θ = ``reference``.

    Inputs have shape (..., W), windows last (leading axes are independent runs, for
    Monte-Carlo); the result has the same shape: entry n is the log statistic after
    windows 0..n. The alternatives are θ = reference·multipliers, equally weighted.
    Per window, log L(θ)/L(θ_ref) = ec·log(θ/θ_ref) − e·log((θ·nc + nb)/(θ_ref·nc + nb)).
    """
    ec, nc, eb, nb = (np.asarray(a, dtype=float)[..., None] for a in (canary_errors, canary_requests, baseline_errors, baseline_requests))
    if np.any(ec < 0) or np.any(eb < 0) or np.any(ec > nc) or np.any(eb > nb):
        raise ValueError("impossible counts: errors must be between 0 and the window's requests")
    informative = (nc > 0) & (nb > 0)
    nc1, nb1 = np.where(informative, nc, 1.0), np.where(informative, nb, 1.0)
    thetas = reference * np.asarray(multipliers, dtype=float)
    log_lr = ec * np.log(thetas / reference) - (ec + eb) * (
        np.log(thetas * nc1 + nb1) - np.log(reference * nc1 + nb1)
    )
    log_lr = np.where(informative, log_lr, 0.0)
    return logsumexp(np.cumsum(log_lr, axis=-2), axis=-1) - math.log(len(multipliers))


def compute_evidence(
    canary_errors: ArrayLike,
    canary_requests: ArrayLike,
    baseline_errors: ArrayLike,
    baseline_requests: ArrayLike,
    bounds: SequentialBounds,
) -> tuple[np.ndarray, np.ndarray]:
    """The two log statistics after each window: (against healthy, against bad)."""
    counts = (canary_errors, canary_requests, baseline_errors, baseline_requests)
    return (
        compute_log_mixture(*counts, bounds.healthy, FAIL_GRID),
        compute_log_mixture(*counts, bounds.bad, PASS_GRID),
    )


def compute_decisions(
    log_against_healthy: np.ndarray, log_against_bad: np.ndarray, bounds: SequentialBounds
) -> tuple[np.ndarray, np.ndarray]:
    """The test's outcome per run: (decision, window index of the decision).

    Decision is +1 (failed: canary worse than tolerated), −1 (passed: canary not bad) or
    0 (undecided, index = W). The first boundary crossed wins; failing wins a tie.
    """
    n = log_against_healthy.shape[-1]
    fail_hit = log_against_healthy >= bounds.log_fail
    pass_hit = log_against_bad >= bounds.log_pass
    first_fail = np.where(fail_hit.any(axis=-1), fail_hit.argmax(axis=-1), n)
    first_pass = np.where(pass_hit.any(axis=-1), pass_hit.argmax(axis=-1), n)
    decision = np.where(first_fail <= first_pass, np.where(first_fail < n, 1, 0), -1)
    return decision, np.minimum(first_fail, first_pass)


def _pooled_ratio(ec: float, nc: float, eb: float, nb: float) -> float | None:
    if nc == 0 or nb == 0 or eb == 0:
        return None
    return (ec / nc) / (eb / nb)


def judge_sequential(metric: Metric, windows: Sequence[MeasurementWindow]) -> Judgement:
    """Judge the run so far: has either sequential boundary been crossed?"""
    judge = metric.judge.sequential
    if judge is None:
        raise ValueError(f"metric {metric.name!r} does not use the sequential judge")
    if not windows:
        raise ValueError(f"metric {metric.name!r}: a measurement needs at least one window")
    bounds = SequentialBounds.of(judge)
    ec = np.array([w.canary.errors for w in windows], dtype=float)
    nc = np.array([w.canary.requests for w in windows], dtype=float)
    eb = np.array([w.baseline.errors for w in windows], dtype=float)
    nb = np.array([w.baseline.requests for w in windows], dtype=float)
    log_bad, log_good = compute_evidence(ec, nc, eb, nb, bounds)
    decision, at = (int(v) for v in compute_decisions(log_bad, log_good, bounds))
    totals = (ec.sum(), nc.sum(), eb.sum(), nb.sum())
    ratio = _pooled_ratio(*totals)
    shown = "n/a" if ratio is None else f"{ratio:.3g}"
    summary = (
        f"error-rate ratio canary/baseline {shown} (canary {totals[0]:.0f}/{totals[1]:.0f}, "
        f"baseline {totals[2]:.0f}/{totals[3]:.0f} errors/requests); "
        f"log evidence canary worse than {bounds.healthy:g}x: {log_bad[-1]:.2f} (fails at {bounds.log_fail:.2f}), "
        f"not as bad as {bounds.bad:g}x: {log_good[-1]:.2f} (passes at {bounds.log_pass:.2f})"
    )
    when = f" at window {at + 1} of {len(windows)}"
    if decision == 1:
        return Judgement(MeasurementPhase.FAILED, ratio, None, f"failed{when}: {summary}", final=True)
    if decision == -1:
        return Judgement(MeasurementPhase.SUCCESSFUL, ratio, None, f"passed{when}: {summary}", final=True)
    if windows[-1].canary.requests == 0:
        return Judgement(MeasurementPhase.ERROR, ratio, None, f"no canary requests in the window; {summary}")
    return Judgement(MeasurementPhase.PENDING, ratio, None, f"undecided: {summary}")
