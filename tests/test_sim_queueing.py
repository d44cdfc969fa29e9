"""Erlang formulas and the M/M/c queue with timeouts predict overload as a simulated queue shows it."""

from __future__ import annotations

import heapq
import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from rolloutlab.sim.queueing import Overload, erlang_b, erlang_c, overload, wait_exceedance


def erlang_c_direct(c: int, a: float) -> float:
    """Erlang C from its textbook definition with factorials (fine for small c)."""
    top = a**c / math.factorial(c) * c / (c - a)
    return top / (sum(a**k / math.factorial(k) for k in range(c)) + top)


def erlang_b_direct(c: int, a: float) -> float:
    """Erlang B from its textbook definition with factorials (fine for small c)."""
    return (a**c / math.factorial(c)) / sum(a**k / math.factorial(k) for k in range(c + 1))


# --- Erlang B and C ------------------------------------------------------------------------

PUBLISHED = [
    (1, 0.5, 0.5),
    (1, 0.9, 0.9),
    (2, 1.0, 1 / 3),
    (2, 1.5, 9 / 14),
    (3, 2.0, 4 / 9),
]
PUBLISHED_IDS = [
    "one server: C equals utilisation 0.5",
    "one server: C equals utilisation 0.9",
    "two servers, one erlang: 1/3",
    "two servers, 1.5 erlangs: a²/(2+a) = 9/14",
    "three servers, two erlangs: 4/9",
]


@pytest.mark.parametrize(("servers", "load", "expected"), PUBLISHED, ids=PUBLISHED_IDS)
def test_erlang_c_matches_published_values(servers: int, load: float, expected: float) -> None:
    """Erlang C reproduces closed-form values known for small systems."""
    assert erlang_c(servers, load) == pytest.approx(expected, rel=1e-12)


TABLE = [(c, rho * c) for c in (1, 2, 3, 5, 10, 20, 40) for rho in (0.1, 0.5, 0.8, 0.95, 0.999)]


@pytest.mark.parametrize(
    ("servers", "load"), TABLE, ids=[f"c={c}, a={a:g}" for c, a in TABLE]
)
def test_erlang_b_and_c_match_the_factorial_formulas(servers: int, load: float) -> None:
    """The recursion agrees with the factorial definitions of Erlang B and C."""
    assert erlang_b(servers, load) == pytest.approx(erlang_b_direct(servers, load), rel=1e-11)
    assert erlang_c(servers, load) == pytest.approx(erlang_c_direct(servers, load), rel=1e-11)


@pytest.mark.parametrize(
    ("servers", "load"),
    [(500, 450.0), (2000, 1900.0), (2000, 1999.9), (2000, 1999.999999), (2000, 50.0)],
    ids=["500 servers at 90%", "2000 at 95%", "2000 at 99.995%", "2000 at 1e-9 below", "2000 nearly idle"],
)
def test_erlang_c_is_stable_for_many_servers(servers: int, load: float) -> None:
    """For thousands of servers and loads at saturation Erlang C matches the Poisson-tail form."""
    # B(c, a) = P(X = c)/P(X <= c) for X ~ Poisson(a): an independent route through scipy.
    b = stats.poisson.pmf(servers, load) / stats.poisson.cdf(servers, load)
    c = b / (1 - load / servers * (1 - b))
    assert erlang_b(servers, load) == pytest.approx(b, rel=1e-9, abs=1e-300)
    assert erlang_c(servers, load) == pytest.approx(c, rel=1e-9, abs=1e-300)
    assert 0.0 <= erlang_c(servers, load) <= 1.0


@pytest.mark.parametrize(
    ("servers", "load", "expected"),
    [(3, 3.0, 1.0), (3, 7.5, 1.0), (0, 1.0, 1.0), (4, 0.0, 0.0)],
    ids=["load equals servers", "load above servers", "no servers", "no load"],
)
def test_erlang_c_edge_values(servers: int, load: float, expected: float) -> None:
    """Everyone waits in an unstable queue and nobody waits without load."""
    assert erlang_c(servers, load) == expected


@pytest.mark.parametrize(
    ("servers", "load"), [(-1, 1.0), (2, -0.5), (2, math.nan), (2, math.inf)],
    ids=["negative servers", "negative load", "nan load", "infinite load"],
)
def test_erlang_functions_reject_impossible_arguments(servers: int, load: float) -> None:
    """Negative, NaN or infinite inputs are errors, not numbers."""
    with pytest.raises(ValueError):
        erlang_c(servers, load)
    with pytest.raises(ValueError):
        erlang_b(servers, load)


@settings(max_examples=200, deadline=None)
@given(
    servers=st.integers(1, 300),
    low=st.floats(0, 1, exclude_max=True),
    high=st.floats(0, 1, exclude_max=True),
)
def test_erlang_c_grows_with_load(servers: int, low: float, high: float) -> None:
    """More offered load on the same servers never makes waiting less likely."""
    low, high = sorted((low, high))
    assert erlang_c(servers, low * servers) <= erlang_c(servers, high * servers) + 1e-15


@settings(max_examples=200, deadline=None)
@given(servers=st.integers(1, 300), load=st.floats(0, 300))
def test_erlang_c_falls_with_servers(servers: int, load: float) -> None:
    """One more server for the same load never makes waiting more likely."""
    assert erlang_c(servers + 1, load) <= erlang_c(servers, load) + 1e-15


# --- overload -------------------------------------------------------------------------------


def test_no_traffic_means_no_overload() -> None:
    """Without arrivals nothing fails and nobody waits, even without pods."""
    assert overload(0.0, 10, 200.0, 1.0) == Overload(0.0, 0.0)
    assert overload(0.0, 0, 200.0, 1.0) == Overload(0.0, 0.0)


def test_no_ready_pods_fails_every_request_at_once() -> None:
    """Traffic to a version without ready pods fails entirely, without waiting."""
    assert overload(5.0, 0, 200.0, 1.0) == Overload(1.0, 0.0)


SATURATED = [
    (4000.0, 10, 200.0, 1.0),
    (2400.0, 10, 200.0, 30.0),
    (1500.0, 1, 1000.0, 5.0),
    (5000.0, 2000, 2.0, 10.0),
]


@pytest.mark.parametrize(
    ("lam", "servers", "mu", "timeout"),
    SATURATED,
    ids=["twice capacity, 1 s timeout", "120% of capacity, 30 s", "one pod at 150%", "2000 pods at 125%"],
)
def test_saturated_version_sheds_the_excess(lam: float, servers: int, mu: float, timeout: float) -> None:
    """Beyond capacity the excess times out (1 - cμ/λ) and the served requests wait about the timeout."""
    result = overload(lam, servers, mu, timeout)
    capacity = servers * mu
    assert result.failure_probability == pytest.approx(1 - capacity / lam, rel=1e-9)
    assert result.mean_wait_ms == pytest.approx(1000 * (timeout - 1 / (lam - capacity)), rel=1e-9)


LIGHT = [(1500.0, 10, 200.0, 0.02), (150.0, 2, 100.0, 0.2), (900.0, 1, 1000.0, 0.1)]


@pytest.mark.parametrize(
    ("lam", "servers", "mu", "timeout"),
    LIGHT,
    ids=["10 pods at 75%", "2 pods at 75%", "one pod at 90%"],
)
def test_rare_timeouts_follow_the_mmc_tail(lam: float, servers: int, mu: float, timeout: float) -> None:
    """When the timeout is long against the spare capacity, waits are M/M/c's (mean C/(cμ-λ)) and
    the failures are its tail C·e^{-(cμ-λ)τ} drained at the full rate cμ instead of cμ-λ."""
    result = overload(lam, servers, mu, timeout)
    c = erlang_c(servers, lam / mu)
    capacity = servers * mu
    spare = capacity - lam
    assert spare * timeout == pytest.approx(10.0)
    # Timed-out requests leave, so beyond τ the queue empties at cμ: the M/M/c tail times (cμ-λ)/cμ.
    assert result.failure_probability == pytest.approx(
        c * math.exp(-spare * timeout) * spare / capacity, rel=1e-3
    )
    assert result.mean_wait_ms == pytest.approx(1000 * c / spare, rel=1e-3)


@pytest.mark.parametrize(
    ("lam", "servers", "mu"), [(150.0, 2, 100.0), (900.0, 10, 100.0), (5.0, 1, 1.0)],
    ids=["2 pods at 75%", "10 pods at 90%", "one pod at 500%"],
)
def test_zero_timeout_is_the_erlang_loss_system(lam: float, servers: int, mu: float) -> None:
    """If nobody waits, the requests arriving to all-busy pods fail: Erlang B."""
    result = overload(lam, servers, mu, 0.0)
    assert result.failure_probability == pytest.approx(erlang_b(servers, lam / mu), rel=1e-12)
    assert result.mean_wait_ms == 0.0


@pytest.mark.parametrize("servers", [1, 10, 2000])
def test_overload_is_continuous_through_saturation(servers: int) -> None:
    """Crossing capacity changes failure and wait smoothly, with no jump at λ = cμ."""
    mu, timeout = 100.0, 2.0
    capacity = servers * mu
    at = overload(capacity, servers, mu, timeout)
    assert 0.0 < at.failure_probability < 0.5
    for step in (1e-9, 1e-6):  # (λ - cμ)·τ
        below = overload(capacity - step / timeout, servers, mu, timeout)
        above = overload(capacity + step / timeout, servers, mu, timeout)
        for result in (below, above):
            assert result.failure_probability == pytest.approx(at.failure_probability, rel=1e-4)
            assert result.mean_wait_ms == pytest.approx(at.mean_wait_ms, rel=1e-4)


@settings(max_examples=200, deadline=None)
@given(
    servers=st.integers(1, 200),
    mu=st.floats(0.1, 1000),
    low=st.floats(0, 3),
    high=st.floats(0, 3),
    timeout=st.floats(0, 60),
)
def test_failure_grows_with_traffic(servers: int, mu: float, low: float, high: float, timeout: float) -> None:
    """More traffic on the same pods never fails a smaller share, and results are probabilities."""
    low, high = sorted((low, high))
    capacity = servers * mu
    first = overload(low * capacity, servers, mu, timeout)
    second = overload(high * capacity, servers, mu, timeout)
    assert 0.0 <= first.failure_probability <= second.failure_probability + 1e-12 <= 1.0 + 1e-12
    assert 0.0 <= first.mean_wait_ms <= 1000 * timeout + 1e-9


@pytest.mark.parametrize(
    "args",
    [(-1.0, 1, 1.0, 1.0), (1.0, -1, 1.0, 1.0), (1.0, 1, 0.0, 1.0), (1.0, 1, 1.0, -1.0), (1.0, 1, 1.0, math.inf)],
    ids=["negative traffic", "negative pods", "pods serve nothing", "negative timeout", "infinite timeout"],
)
def test_overload_rejects_impossible_arguments(args: tuple[float, int, float, float]) -> None:
    """Impossible rates, pod counts or timeouts are errors."""
    with pytest.raises(ValueError):
        overload(*args)


# --- against a per-request simulation -------------------------------------------------------


def simulate_waits(
    rng: np.random.Generator, servers: int, lam: float, mu: float, timeout: float, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """FCFS M/M/c where a request whose wait would exceed ``timeout`` leaves unserved:
    the offered wait of each arrival and whether it was served."""
    arrivals = np.cumsum(rng.exponential(1 / lam, n)).tolist()
    services = rng.exponential(1 / mu, n).tolist()
    free = [0.0] * servers  # heap of the times each server becomes free
    waits = np.empty(n)
    served = np.empty(n, dtype=bool)
    for i, (t, s) in enumerate(zip(arrivals, services)):
        start = max(free[0], t)
        waits[i] = start - t
        served[i] = waits[i] <= timeout
        if served[i]:
            heapq.heapreplace(free, start + s)
    return waits, served


def batch_mean_and_error(values: np.ndarray, batches: int = 20) -> tuple[float, float]:
    """Mean and standard error by batch means (queue samples are correlated)."""
    means = np.array([chunk.mean() for chunk in np.array_split(values, batches)])
    return float(values.mean()), float(means.std(ddof=1) / math.sqrt(batches))


def test_simulated_mmc_waits_follow_erlang_c() -> None:
    """A seeded per-request M/M/4 simulation has P(W > t) = C·e^{-(cμ-λ)t} within Monte Carlo error."""
    servers, lam, mu = 4, 3.2, 1.0
    waits, _ = simulate_waits(np.random.default_rng(2024), servers, lam, mu, math.inf, 42_000)
    waits = waits[2_000:]  # warm-up from an empty system
    c = erlang_c(servers, lam / mu)
    for t in (0.0, 0.5, 1.0, 2.0, 4.0):
        mean, error = batch_mean_and_error((waits > t).astype(float))
        assert abs(mean - c * math.exp(-(servers * mu - lam) * t)) < 4 * error, t


@pytest.mark.parametrize(
    ("servers", "lam", "timeout"),
    [(4, 3.6, 1.0), (4, 4.4, 1.0), (4, 4.0, 0.5), (1, 0.9, 3.0)],
    ids=["4 pods at 90%", "4 pods at 110%", "4 pods exactly at capacity", "one pod at 90%"],
)
def test_simulated_queue_with_timeouts_matches_overload(servers: int, lam: float, timeout: float) -> None:
    """A seeded per-request M/M/c simulation where timed-out requests leave fails and waits as overload() predicts."""
    mu = 1.0
    waits, served = simulate_waits(np.random.default_rng(7), servers, lam, mu, timeout, 42_000)
    waits, served = waits[2_000:], served[2_000:]
    predicted = overload(lam, servers, mu, timeout)
    failed, failed_error = batch_mean_and_error((~served).astype(float))
    assert abs(failed - predicted.failure_probability) < 4 * failed_error
    mean_wait = 1000 * waits[served].mean()
    wait_error = 1000 * batch_mean_and_error(waits[served])[1]
    assert abs(mean_wait - predicted.mean_wait_ms) < 4 * wait_error


@pytest.mark.parametrize(
    ("servers", "lam", "timeout"),
    [(4, 3.6, 1.0), (4, 4.4, 1.0), (4, 4.0, 0.5)],
    ids=["4 pods at 90%", "4 pods at 110%", "4 pods exactly at capacity"],
)
def test_simulated_offered_waits_follow_wait_exceedance(servers: int, lam: float, timeout: float) -> None:
    """The share of arrivals in a seeded per-request simulation that would wait longer than
    t for a pod is wait_exceedance(t), before the timeout, at it and beyond."""
    mu = 1.0
    waits, _ = simulate_waits(np.random.default_rng(11), servers, lam, mu, timeout, 42_000)
    waits = waits[2_000:]
    for t in (0.0, 0.25 * timeout, 0.75 * timeout, timeout, 1.2 * timeout):
        mean, error = batch_mean_and_error((waits > t).astype(float))
        assert abs(mean - wait_exceedance(lam, servers, mu, timeout, t)) < 4 * error + 1e-3, t


@pytest.mark.parametrize(
    ("lam", "servers", "timeout"),
    [(50.0, 10, 1.0), (990.0, 10, 1.0), (1100.0, 10, 1.0), (5000.0, 10, 0.2), (0.5, 1, 2.0)],
    ids=["light", "just-below-capacity", "10%-over", "5x-over", "one-pod"],
)
def test_waiting_past_the_timeout_is_failing(lam: float, servers: int, timeout: float) -> None:
    """P(V > timeout) is overload()'s failure probability, and P(V > t) falls with t."""
    assert wait_exceedance(lam, servers, 100.0, timeout, timeout) == pytest.approx(
        overload(lam, servers, 100.0, timeout).failure_probability, rel=1e-9, abs=1e-300)
    ts = [0.0, 0.1 * timeout, 0.5 * timeout, 0.9 * timeout, timeout, 1.5 * timeout]
    values = [wait_exceedance(lam, servers, 100.0, timeout, t) for t in ts]
    assert all(a >= b for a, b in itertools.pairwise(values))
