"""The sequential judge: an anytime-valid mixture SPRT on canary vs baseline error counts."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rolloutlab.strategies.judges import MeasurementPhase, judge_measurement
from rolloutlab.strategies.judges.sequential import (
    SequentialBounds,
    compute_decisions,
    compute_evidence,
)
from rolloutlab.strategies.observation import MeasurementWindow, WindowStats
from rolloutlab.strategies.spec import JudgeChoice, Metric, SequentialJudge

S, F, P, E = (
    MeasurementPhase.SUCCESSFUL,
    MeasurementPhase.FAILED,
    MeasurementPhase.PENDING,
    MeasurementPhase.ERROR,
)
WINDOWS = 20
# The canary's share of traffic rises step by step, as in a canary rollout: 5% .. 50%.
SHARE = np.array([0.05] * 4 + [0.1] * 4 + [0.25] * 4 + [0.5] * 8)


def seq_metric(count: int | None = None, **judge) -> Metric:
    return Metric(name="errors", count=count, judge=JudgeChoice(sequential=SequentialJudge(**judge)))


def simulate(rng: np.random.Generator, runs: int, theta: float, rps: float = 1000.0, base_rate: float = 0.01):
    """Counts of ``runs`` analyses: Poisson traffic split by SHARE, Poisson errors, canary rate theta x baseline's."""
    total = rng.poisson(rps, (runs, WINDOWS))
    nc = rng.binomial(total, SHARE)
    nb = total - nc
    ec = np.minimum(rng.poisson(nc * base_rate * theta), nc)
    eb = np.minimum(rng.poisson(nb * base_rate), nb)
    return ec, nc, eb, nb


def to_windows(ec, nc, eb, nb) -> list[MeasurementWindow]:
    return [
        MeasurementWindow(at=60.0 * (i + 1), canary=WindowStats(60.0, int(c_n), int(c_e)), baseline=WindowStats(60.0, int(b_n), int(b_e)))
        for i, (c_e, c_n, b_e, b_n) in enumerate(zip(ec, nc, eb, nb))
    ]


# ------------------------------------------------------------------ error rates (Monte Carlo)


@pytest.mark.parametrize(
    ("tolerance", "alpha"),
    [(0.0, 0.05), (0.2, 0.05), (0.0, 0.01)],
    ids=["canary exactly as good as baseline, alpha 5%", "canary 20% worse with tolerance 20%", "alpha 1%"],
)
def test_false_alarm_rate_is_at_most_alpha(tolerance, alpha):
    """Healthy canaries at the edge of H0 cross the failure boundary at most alpha of the time,
    checked after every one of 20 windows while the traffic split changes."""
    runs = 4000
    rng = np.random.default_rng(20240601)
    judge = SequentialJudge(alpha=alpha, tolerance=tolerance)
    bounds = SequentialBounds.of(judge)
    log_bad, _ = compute_evidence(*simulate(rng, runs, theta=1.0 + tolerance), bounds)
    # Stricter than the judge itself: any crossing counts, even after an early pass would have stopped.
    rate = float((log_bad >= bounds.log_fail).any(axis=-1).mean())
    assert rate <= alpha + 3 * math.sqrt(alpha * (1 - alpha) / runs)


def test_early_pass_rate_of_bad_canaries_is_at_most_beta():
    """Canaries exactly at the bad boundary pass early at most beta of the time."""
    runs = 4000
    rng = np.random.default_rng(7)
    judge = SequentialJudge(beta=0.05)
    bounds = SequentialBounds.of(judge)
    _, log_good = compute_evidence(*simulate(rng, runs, theta=bounds.bad), bounds)
    rate = float((log_good >= bounds.log_pass).any(axis=-1).mean())
    assert rate <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / runs)


def test_three_times_the_errors_is_caught_early():
    """A canary with 3x the baseline's error rate fails (final) in nearly every run, long
    before the 20th window on average."""
    rng = np.random.default_rng(3)
    bounds = SequentialBounds.of(SequentialJudge())
    decision, at = compute_decisions(*compute_evidence(*simulate(rng, 2000, theta=3.0), bounds), bounds)
    assert (decision == 1).mean() >= 0.97
    assert (at[decision == 1] + 1).mean() < 10


def test_healthy_canary_with_lots_of_traffic_passes_early():
    """With plenty of errors to compare, a healthy canary passes (final) within a few windows."""
    rng = np.random.default_rng(4)
    bounds = SequentialBounds.of(SequentialJudge())
    decision, at = compute_decisions(*compute_evidence(*simulate(rng, 2000, theta=1.0, rps=20_000), bounds), bounds)
    assert (decision == -1).mean() >= 0.97
    assert (at[decision == -1] + 1).mean() <= 4


# ------------------------------------------------------------------ the judge itself


def test_judge_agrees_with_the_vectorised_test():
    """Measuring window by window, the judge decides exactly when the vectorised test does."""
    rng = np.random.default_rng(5)
    bounds = SequentialBounds.of(SequentialJudge())
    metric = seq_metric()
    for theta in (1.0, 1.5, 3.0):
        counts = simulate(rng, 10, theta=theta)
        decisions, ats = compute_decisions(*compute_evidence(*counts, bounds), bounds)
        for run in range(10):
            windows = to_windows(*(c[run] for c in counts))
            for n in range(1, WINDOWS + 1):
                judgement = judge_measurement(metric, windows[:n])
                if judgement.final:
                    break
            expected = {1: F, -1: S, 0: P}[int(decisions[run])]
            assert judgement.phase is expected
            assert n == min(int(ats[run]) + 1, WINDOWS)


def test_bad_canary_fails_with_final_judgement():
    """A canary erring at 5x the baseline's rate fails and the judgement is final."""
    windows = to_windows([50] * 3, [1000] * 3, [10] * 3, [1000] * 3)
    judgement = judge_measurement(seq_metric(), windows)
    assert judgement.phase is F and judgement.final
    assert judgement.value == pytest.approx(5.0)
    assert "failed at window" in judgement.message


def test_little_data_is_pending():
    """One error on each side decides nothing: Pending, not final, with the ratio estimate."""
    judgement = judge_measurement(seq_metric(), to_windows([1], [100], [1], [100]))
    assert judgement.phase is P and not judgement.final
    assert judgement.value == pytest.approx(1.0)


def test_count_running_out_undecided_stays_pending():
    """The judge stays Pending at the last counted measurement; the analysis turns that into Inconclusive."""
    windows = to_windows([1, 1], [100, 100], [1, 1], [100, 100])
    assert judge_measurement(seq_metric(count=2), windows).phase is P


def test_no_canary_requests_is_an_error():
    """A window in which the canary served nothing is an Error measurement."""
    windows = to_windows([1, 0], [100, 0], [1, 2], [100, 200])
    judgement = judge_measurement(seq_metric(), windows)
    assert judgement.phase is E
    assert "no canary requests" in judgement.message


def test_uninformative_windows_change_nothing():
    """Windows without errors, or without traffic on one side, leave the evidence unchanged."""
    bounds = SequentialBounds.of(SequentialJudge())
    base = ([5, 7], [500, 800], [3, 4], [600, 900])
    padded = ([5, 0, 0, 7, 0], [500, 300, 0, 800, 50], [3, 0, 9, 4, 0], [600, 300, 400, 900, 0])
    bad, good = compute_evidence(*base, bounds)
    bad_p, good_p = compute_evidence(*padded, bounds)
    assert bad_p[-1] == pytest.approx(bad[-1]) and good_p[-1] == pytest.approx(good[-1])


def test_value_is_none_without_baseline_errors():
    """With no baseline errors the rate ratio is undefined and reported as None."""
    judgement = judge_measurement(seq_metric(), to_windows([0], [100], [0], [100]))
    assert judgement.value is None
    assert judgement.phase is P


def test_judgement_is_deterministic():
    """The same windows always give the same judgement."""
    rng = np.random.default_rng(6)
    windows = to_windows(*(c[0] for c in simulate(rng, 1, theta=1.3)))
    assert judge_measurement(seq_metric(), windows) == judge_measurement(seq_metric(), list(windows))


@pytest.mark.parametrize(
    ("canary_errors", "phase"),
    [(10_000_000, S), (30_000_000, F)],
    ids=["healthy canary at 10^9 requests passes", "3x canary at 10^9 requests fails"],
)
def test_huge_counts_do_not_overflow(canary_errors, phase):
    """A billion requests per side decide cleanly, with finite statistics."""
    windows = to_windows([canary_errors], [10**9], [10_000_000], [10**9])
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow in exp is expected
        judgement = judge_measurement(seq_metric(), windows)
    assert judgement.phase is phase and judgement.final
    assert math.isfinite(judgement.value)
    assert "nan" not in judgement.message and "inf" not in judgement.message


counts = st.integers(0, 5000)


@settings(max_examples=60, deadline=None)
@given(
    windows=st.lists(st.tuples(counts, counts, counts, counts), min_size=1, max_size=6),
    where=st.integers(0, 5),
)
def test_more_canary_errors_never_look_healthier(windows, where):
    """One more canary error never lowers the evidence of harm nor raises the evidence of health."""
    nc = [max(a, 1) for a, _, _, _ in windows]
    ec = [min(b, n - 1) for (_, b, _, _), n in zip(windows, nc)]
    nb = [c for _, _, c, _ in windows]
    eb = [min(d, n) for (_, _, _, d), n in zip(windows, nb)]
    more = list(ec)
    more[where % len(ec)] += 1
    bounds = SequentialBounds.of(SequentialJudge(tolerance=0.1))
    bad, good = compute_evidence(ec, nc, eb, nb, bounds)
    bad2, good2 = compute_evidence(more, nc, eb, nb, bounds)
    assert bad2[-1] >= bad[-1] - 1e-9
    assert good2[-1] <= good[-1] + 1e-9


def test_impossible_counts_are_refused():
    """More errors than requests is an impossible window and raises."""
    with pytest.raises(ValueError, match="impossible counts"):
        compute_evidence([5], [4], [0], [10], SequentialBounds.of(SequentialJudge()))
