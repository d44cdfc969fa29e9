"""Closed-form traffic between events: arrivals integrate the rate, draws follow Poisson thinning,
latency histograms follow the lognormal, and failures combine and propagate to callers."""

from __future__ import annotations

import itertools
import math

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from rolloutlab.scenarios.schema import ConstantProfile, DiurnalProfile, Latency, Spike, SpikesProfile
from rolloutlab.sim.traffic import (
    LatencyModel,
    WindowDraw,
    callees_first,
    combine_failure,
    draw_window,
    expected_arrivals,
    propagate_failures,
    rate_at,
    rate_changes,
)
from rolloutlab.strategies.observation import LATENCY_BUCKETS_MS

CONSTANT = ConstantProfile()
DAY = DiurnalProfile()
FAST_WAVE = DiurnalProfile(amplitude=0.8, period=600, phase=100)
FULL_SWING = DiurnalProfile(amplitude=1.0, period=300, phase=-40)
ONE_SPIKE = SpikesProfile(spikes=[Spike(at=100, duration=60, multiplier=3)])
OVERLAPPING = SpikesProfile(
    spikes=[
        Spike(at=100, duration=60, multiplier=3),
        Spike(at=130, duration=60, multiplier=2),
        Spike(at=140, duration=5, multiplier=0.5),
    ]
)
BACK_TO_BACK = SpikesProfile(
    spikes=[Spike(at=200, duration=50, multiplier=0.25), Spike(at=250, duration=50, multiplier=4)]
)

# (profile, rps, t0, t1)
WINDOWS = [
    (CONSTANT, 1000.0, 0.0, 60.0),
    (DAY, 1000.0, 0.0, 1800.0),
    (DAY, 250.0, 3600.0, 3615.0),
    (FAST_WAVE, 500.0, 20.0, 2000.0),
    (FAST_WAVE, 500.0, 1e6, 1e6 + 7.5),
    (FULL_SWING, 80.0, 0.0, 450.0),
    (ONE_SPIKE, 1000.0, 0.0, 300.0),
    (ONE_SPIKE, 1000.0, 90.0, 110.0),
    (ONE_SPIKE, 1000.0, 150.0, 170.0),
    (ONE_SPIKE, 1000.0, 110.0, 150.0),
    (ONE_SPIKE, 1000.0, 0.0, 100.0),
    (ONE_SPIKE, 1000.0, 160.0, 400.0),
    (OVERLAPPING, 200.0, 0.0, 400.0),
    (OVERLAPPING, 200.0, 135.0, 175.0),
    (BACK_TO_BACK, 50.0, 240.0, 260.0),
    (CONSTANT, 1000.0, 5.0, 5.0),
]
WINDOW_IDS = [
    "constant, one minute",
    "diurnal day, first half hour",
    "diurnal day, 15 s an hour in",
    "diurnal 10 min wave, many periods",
    "diurnal 10 min wave, short window late in a long run",
    "diurnal full swing down to zero",
    "spike inside the window",
    "window straddles the spike start",
    "window straddles the spike end",
    "window inside the spike",
    "window ends where the spike starts",
    "window starts where the spike ended",
    "three overlapping spikes, one a dip",
    "window inside an overlap",
    "a dip followed at once by a burst",
    "empty window",
]


def integrate_rate(profile, rps: float, t0: float, t1: float) -> float:
    """∫ rate_at over [t0, t1] numerically, telling quad where the rate jumps."""
    if t1 == t0:
        return 0.0
    points = rate_changes(profile, t0, t1)
    value, _ = integrate.quad(
        lambda t: rate_at(profile, rps, t), t0, t1, points=[p for p in points if p < t1] or None, limit=500
    )
    return value


@pytest.mark.parametrize(("profile", "rps", "t0", "t1"), WINDOWS, ids=WINDOW_IDS)
def test_expected_arrivals_integrates_the_rate(profile, rps: float, t0: float, t1: float) -> None:
    """The closed-form expected arrivals equal the numerical integral of the rate."""
    assert expected_arrivals(profile, rps, t0, t1) == pytest.approx(
        integrate_rate(profile, rps, t0, t1), rel=1e-9, abs=1e-6
    )


PROFILES = [CONSTANT, DAY, FAST_WAVE, FULL_SWING, ONE_SPIKE, OVERLAPPING, BACK_TO_BACK]
PROFILE_IDS = ["constant", "day", "fast wave", "full swing", "one spike", "overlapping", "back to back"]


@pytest.mark.parametrize("profile", PROFILES, ids=PROFILE_IDS)
@settings(max_examples=60, deadline=None)
@given(times=st.lists(st.floats(0, 5000), min_size=3, max_size=3))
def test_expected_arrivals_add_up_over_adjacent_windows(profile, times: list[float]) -> None:
    """Arrivals over [a, c] are those over [a, b] plus those over [b, c], and never negative."""
    a, b, c = sorted(times)
    whole = expected_arrivals(profile, 300.0, a, c)
    parts = expected_arrivals(profile, 300.0, a, b) + expected_arrivals(profile, 300.0, b, c)
    assert whole == pytest.approx(parts, rel=1e-9, abs=1e-6)
    assert whole >= 0.0


def test_diurnal_rate_peaks_at_its_phase() -> None:
    """Diurnal traffic is at rps·(1 + amplitude) at its phase and rps·(1 - amplitude) half a period later."""
    assert rate_at(FAST_WAVE, 500.0, 100.0) == pytest.approx(900.0)
    assert rate_at(FAST_WAVE, 500.0, 400.0) == pytest.approx(100.0)
    assert rate_at(FAST_WAVE, 500.0, 700.0) == pytest.approx(900.0)


@pytest.mark.parametrize(
    ("t", "expected"),
    [(99.999, 200.0), (100.0, 600.0), (129.0, 600.0), (130.0, 1200.0), (140.0, 600.0), (145.0, 1200.0),
     (160.0, 400.0), (190.0, 200.0)],
    ids=["before", "spike starts (inclusive)", "one spike", "two overlap: 3×2", "dip inside: 3×2×0.5",
         "dip over", "first spike ended (exclusive)", "all over"],
)
def test_spike_rate_multiplies_overlapping_windows(t: float, expected: float) -> None:
    """Inside [at, at + duration) each spike multiplies the rate; overlaps multiply together."""
    assert rate_at(OVERLAPPING, 200.0, t) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("profile", "t0", "t1", "expected"),
    [
        (OVERLAPPING, 0.0, 400.0, [100.0, 130.0, 140.0, 145.0, 160.0, 190.0]),
        (OVERLAPPING, 100.0, 145.0, [130.0, 140.0, 145.0]),
        (BACK_TO_BACK, 0.0, 1000.0, [200.0, 250.0, 300.0]),
        (ONE_SPIKE, 170.0, 400.0, []),
        (CONSTANT, 0.0, 400.0, []),
        (FAST_WAVE, 0.0, 400.0, []),
    ],
    ids=["every edge once, sorted", "(t0, t1]: start excluded, end included", "shared edge once",
         "none in window", "constant never jumps", "diurnal never jumps"],
)
def test_rate_changes_lists_spike_edges(profile, t0: float, t1: float, expected: list[float]) -> None:
    """The rate's jump times inside (t0, t1] are the spike edges there, ascending."""
    assert rate_changes(profile, t0, t1) == expected


def test_expected_arrivals_rejects_backwards_windows() -> None:
    """A window that ends before it starts is an error."""
    with pytest.raises(ValueError, match="ends before it starts"):
        expected_arrivals(CONSTANT, 10.0, 5.0, 4.0)


# --- latency --------------------------------------------------------------------------------


def test_latency_model_from_scenario_reproduces_median_and_p99() -> None:
    """The model built from a scenario's latency has its median and p99."""
    model = LatencyModel.from_latency(Latency(median_ms=40, p99_ms=400))
    assert model.quantile(0.5) == pytest.approx(40.0, rel=1e-12)
    assert model.quantile(0.99) == pytest.approx(400.0, rel=1e-12)


def test_latency_regression_and_delays_move_quantiles() -> None:
    """A multiplier scales the lognormal body; added and queueing delays shift it."""
    model = LatencyModel(median_ms=50, sigma=0.7, multiplier=2, added_ms=30, queue_wait_ms=5)
    assert model.quantile(0.5) == pytest.approx(135.0)
    assert model.quantile(0.9) == pytest.approx(35 + 100 * math.exp(0.7 * stats.norm.ppf(0.9)))


MODELS = [
    LatencyModel(median_ms=50, sigma=0.6918),
    LatencyModel(median_ms=3, sigma=1.5),
    LatencyModel(median_ms=50, sigma=0.7, multiplier=3, added_ms=200, queue_wait_ms=12.5),
    LatencyModel(median_ms=20, sigma=0.0),
    LatencyModel(median_ms=1, sigma=0.1, added_ms=20_000),
]
MODEL_IDS = ["default service", "very wide", "slow release with injected delay", "no spread", "beyond the last bound"]


@pytest.mark.parametrize("model", MODELS[:3] + MODELS[4:], ids=MODEL_IDS[:3] + MODEL_IDS[4:])
@pytest.mark.parametrize("q", [0.01, 0.5, 0.99, 0.999999], ids=["p1", "median", "p99", "p99.9999"])
def test_exceedance_at_a_quantile_is_what_lies_above_it(model: LatencyModel, q: float) -> None:
    """P(L > the q-quantile) = 1 - q, computed as the upper tail itself (exact far out)."""
    assert model.exceedance(model.quantile(q)) == pytest.approx(1.0 - q, rel=1e-9)


@pytest.mark.parametrize("model", MODELS, ids=MODEL_IDS)
@pytest.mark.parametrize("grace_ms", [0.0, 30.0, 250.0, 20_500.0])
def test_mean_excess_is_the_integral_of_the_tail(model: LatencyModel, grace_ms: float) -> None:
    """E[(L - g)⁺] = ∫_g^∞ P(L > x) dx, the numerical integral of the upper tail (in
    pieces between the tail's quantiles, where the integrand changes scale)."""
    shift = model.added_ms + model.queue_wait_ms
    tail = max(0.0, shift - grace_ms)  # below the shift every answer is slower
    start = max(grace_ms, shift)
    if model.sigma == 0:
        tail += max(0.0, model.quantile(0.5) - start)
    else:
        edges = [start] + [x for x in (model.quantile(p) for p in (0.5, 0.9, 0.99, 0.9999, 1 - 1e-8)) if x > start]
        edges += [edges[-1] * k for k in (1.5, 2, 3, 5)]
        tail += sum(integrate.quad(model.exceedance, a, b, epsabs=1e-14, epsrel=1e-10, limit=200)[0]
                    for a, b in itertools.pairwise(edges))
        tail += integrate.quad(model.exceedance, edges[-1], np.inf, epsabs=1e-16, epsrel=1e-9)[0]
    assert model.mean_excess(grace_ms) == pytest.approx(tail, rel=1e-7)


@pytest.mark.parametrize("model", MODELS, ids=MODEL_IDS)
def test_bucket_probabilities_follow_the_shifted_lognormal(model: LatencyModel) -> None:
    """Cumulative bucket probabilities equal the shifted lognormal's CDF at each bound and sum to 1."""
    probs = model.bucket_probabilities()
    assert len(probs) == len(LATENCY_BUCKETS_MS)
    assert sum(probs) == pytest.approx(1.0, abs=1e-12)
    assert min(probs) >= 0.0
    scale = model.median_ms * model.multiplier
    shift = model.added_ms + model.queue_wait_ms
    cumulative = np.cumsum(probs)
    for bound, seen in zip(LATENCY_BUCKETS_MS[:-1], cumulative):
        if model.sigma == 0:
            expected = float(bound >= shift + scale)
        else:
            expected = stats.lognorm.cdf(bound - shift, model.sigma, scale=scale) if bound > shift else 0.0
        assert seen == pytest.approx(expected, abs=1e-12), bound


@settings(max_examples=200, deadline=None)
@given(
    median=st.floats(0.01, 1e5),
    sigma=st.floats(0, 5),
    multiplier=st.floats(1, 100),
    added=st.floats(0, 1e5),
)
def test_bucket_probabilities_always_form_a_distribution(
    median: float, sigma: float, multiplier: float, added: float
) -> None:
    """For any parameters the bucket probabilities are non-negative and sum to 1."""
    probs = LatencyModel(median, sigma, multiplier, added).bucket_probabilities()
    assert min(probs) >= 0.0
    assert sum(probs) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize(
    "kwargs",
    [{"median_ms": 0, "sigma": 1}, {"median_ms": 1, "sigma": -1}, {"median_ms": 1, "sigma": 1, "multiplier": 0},
     {"median_ms": 1, "sigma": 1, "added_ms": -1}, {"median_ms": 1, "sigma": 1, "queue_wait_ms": math.inf}],
    ids=["zero median", "negative sigma", "zero multiplier", "negative added delay", "infinite wait"],
)
def test_latency_model_rejects_impossible_parameters(kwargs: dict[str, float]) -> None:
    """A latency model that cannot describe response times is an error."""
    with pytest.raises(ValueError):
        LatencyModel(**kwargs)


# --- drawing a window ----------------------------------------------------------------------


def test_draw_window_matches_poisson_thinning_in_monte_carlo() -> None:
    """Over 20k seeded windows, requests, errors and each latency bucket average their expectations."""
    rng = np.random.default_rng(5)
    expected, p, draws = 40.0, 0.1, 20_000
    model = LatencyModel(median_ms=50, sigma=0.9, added_ms=10)
    probs = model.bucket_probabilities()
    windows = [draw_window(rng, expected, p, model) for _ in range(draws)]
    requests = np.array([w.requests for w in windows])
    errors = np.array([w.errors for w in windows])
    buckets = np.array([w.latency_buckets for w in windows])
    assert np.array_equal(buckets.sum(axis=1), requests)
    assert np.all(errors <= requests)
    # Thinning: each count is Poisson with mean expected·share, variance the same.
    for observed, mean in [(requests, expected), (errors, expected * p)] + [
        (buckets[:, i], expected * share) for i, share in enumerate(probs)
    ]:
        assert abs(observed.mean() - mean) <= 4 * math.sqrt(mean / draws) + 1e-12
    assert requests.var() == pytest.approx(expected, rel=0.05)


@pytest.mark.parametrize(
    ("expected", "p", "with_latency"),
    [(0.0, 0.5, True), (0.0, 0.5, False), (1e-300, 0.5, True), (1e9, 0.01, True), (1e9, 0.01, False)],
    ids=["no traffic with latency", "no traffic", "vanishing traffic", "a billion requests", "a billion, no latency"],
)
def test_draw_window_extremes(expected: float, p: float, with_latency: bool) -> None:
    """Empty and huge windows give consistent counts: buckets sum to requests, () without latency."""
    latency = LatencyModel(median_ms=50, sigma=0.7) if with_latency else None
    draw = draw_window(np.random.default_rng(1), expected, p, latency)
    assert 0 <= draw.errors <= draw.requests
    if with_latency:
        assert len(draw.latency_buckets) == len(LATENCY_BUCKETS_MS)
        assert sum(draw.latency_buckets) == draw.requests
    else:
        assert draw.latency_buckets == ()
    if expected >= 1e9:
        assert abs(draw.requests - expected) < 6 * math.sqrt(expected)
        assert abs(draw.errors - expected * p) < 6 * math.sqrt(expected * p)


@pytest.mark.parametrize(
    ("p", "errors_equal_requests"), [(0.0, False), (1.0, True)], ids=["never fails", "always fails"]
)
def test_draw_window_certain_outcomes(p: float, errors_equal_requests: bool) -> None:
    """With p = 0 nothing fails; with p = 1 everything does."""
    draw = draw_window(np.random.default_rng(3), 500.0, p, None)
    assert draw.requests > 0
    assert draw.errors == (draw.requests if errors_equal_requests else 0)


def test_draw_window_is_deterministic_given_the_seed() -> None:
    """The same generator state gives the same window."""
    model = LatencyModel(median_ms=50, sigma=0.7)
    first = draw_window(np.random.default_rng(8), 321.0, 0.2, model)
    second = draw_window(np.random.default_rng(8), 321.0, 0.2, model)
    assert first == second
    assert isinstance(first, WindowDraw)


@pytest.mark.parametrize(
    ("expected", "p"),
    [(-1.0, 0.1), (math.nan, 0.1), (math.inf, 0.1), (10.0, -0.01), (10.0, 1.01), (10.0, math.nan)],
    ids=["negative traffic", "nan traffic", "infinite traffic", "negative p", "p above 1", "nan p"],
)
def test_draw_window_rejects_impossible_inputs(expected: float, p: float) -> None:
    """Impossible expected counts or probabilities are errors, not draws."""
    with pytest.raises(ValueError):
        draw_window(np.random.default_rng(0), expected, p, None)


# --- combining and propagating failures ---------------------------------------------------


@pytest.mark.parametrize(
    ("probabilities", "expected"),
    [((), 0.0), ((0.1,), 0.1), ((0.1, 0.2), 0.28), ((0.5, 0.5, 0.5), 0.875), ((1.0, 0.3), 1.0),
     ((0.0, 0.0), 0.0), ((1e-15, 1e-15), 2e-15)],
    ids=["no cause", "one cause", "two causes", "three halves", "a certain failure", "no failures",
         "tiny probabilities keep their precision"],
)
def test_combine_failure_treats_causes_as_independent(probabilities: tuple[float, ...], expected: float) -> None:
    """A request survives only if it survives every independent cause: 1 - Π(1 - p_i)."""
    assert combine_failure(*probabilities) == pytest.approx(expected, rel=1e-12, abs=0)


@given(st.lists(st.floats(0, 1), max_size=6))
def test_combine_failure_lies_between_max_and_sum(probabilities: list[float]) -> None:
    """Independent causes fail at least as often as the worst and at most as often as their sum."""
    combined = combine_failure(*probabilities)
    assert max(probabilities, default=0.0) - 1e-15 <= combined <= min(1.0, sum(probabilities)) + 1e-15


def test_combine_failure_rejects_non_probabilities() -> None:
    """A probability outside [0, 1] is an error."""
    with pytest.raises(ValueError):
        combine_failure(0.1, 1.5)


def chain() -> nx.DiGraph:
    graph = nx.DiGraph()
    graph.add_edge("frontend", "checkout")  # defaults: one call, every failure propagates
    graph.add_edge("checkout", "payments", calls_per_request=2, error_propagation=0.5)
    return graph


def diamond() -> nx.DiGraph:
    graph = nx.DiGraph()
    graph.add_edge("web", "cart", calls_per_request=1, error_propagation=1)
    graph.add_edge("web", "search", calls_per_request=3, error_propagation=1)
    graph.add_edge("cart", "db", calls_per_request=1, error_propagation=1)
    graph.add_edge("search", "db", calls_per_request=1, error_propagation=0.5)
    return graph


@pytest.mark.parametrize(
    ("graph", "own", "expected"),
    [
        (
            chain(),
            {"payments": 0.1, "checkout": 0.01},
            # checkout: 1 - 0.99·(1 - 0.5·0.1)² = 0.106525; frontend inherits it all.
            {"payments": 0.1, "checkout": 0.106525, "frontend": 0.106525},
        ),
        (
            diamond(),
            {"db": 0.2},
            # cart 0.2; search 0.5·0.2 = 0.1; web 1 - 0.8·0.9³ = 0.4168.
            {"db": 0.2, "cart": 0.2, "search": 0.1, "web": 0.4168},
        ),
        (
            diamond(),
            {"db": 0.2, "web": 0.05, "standalone": 0.3},
            {"db": 0.2, "cart": 0.2, "search": 0.1, "web": 1 - 0.95 * 0.8 * 0.9**3, "standalone": 0.3},
        ),
        (chain(), {}, {"payments": 0.0, "checkout": 0.0, "frontend": 0.0}),
    ],
    ids=["chain with retries", "diamond over a shared database", "diamond with own failures and a loner",
         "healthy chain"],
)
def test_propagate_failures_matches_hand_computed_blast_radius(
    graph: nx.DiGraph, own: dict[str, float], expected: dict[str, float]
) -> None:
    """Callers see their own failures plus those of their callees, per call and propagation chance."""
    result = propagate_failures(graph, own)
    assert result.keys() == expected.keys()
    for name, value in expected.items():
        assert result[name] == pytest.approx(value, rel=1e-12, abs=1e-15), name
    assert propagate_failures(graph, own, order=callees_first(graph)) == result


def test_propagate_failures_names_a_dependency_cycle() -> None:
    """Calls that go round in a cycle are an error that names the services on it."""
    graph = chain()
    graph.add_edge("payments", "frontend")
    with pytest.raises(ValueError, match="cycle: .*payments -> frontend"):
        propagate_failures(graph, {"payments": 0.1})


def test_propagate_failures_rejects_impossible_edges() -> None:
    """An edge whose propagation chance is not a probability is an error naming the edge."""
    graph = nx.DiGraph()
    graph.add_edge("a", "b", error_propagation=2.0)
    with pytest.raises(ValueError, match="a -> b"):
        propagate_failures(graph, {"b": 0.1})
