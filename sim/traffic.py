"""Traffic between two state changes of the simulated world, in closed form.

The fast mode of the simulator never models a request. Between two events (a pod
becomes ready, a weight changes, an analysis tick) the world is frozen: requests to a
version arrive as a Poisson process of rate λ(t), and each one fails independently with
a probability p that stays constant until the next event. Then, exactly:

- the number of requests in [t0, t1) is Poisson(Λ) with Λ = ∫_{t0}^{t1} λ(t) dt
  (:func:`expected_arrivals`, closed form for every profile);
- the failed ones are an independent thinning of that process, so given N requests the
  errors are Binomial(N, p) (and unconditionally Poisson(p·Λ): Kingman, *Poisson
  Processes*, 1993, §5.1 colouring theorem);
- each request's latency falls in a histogram bucket independently, so the bucket counts
  are Multinomial(N, bucket probabilities) (:class:`LatencyModel`).

:func:`draw_window` draws those three numbers for one window. Failure probabilities from
independent causes combine with :func:`combine_failure`; those of called services reach
their callers through :func:`propagate_failures`.

Traffic profiles (the scenario's ``traffic.profile``, around a mean ``rps``):

- constant: λ(t) = rps;
- diurnal: λ(t) = rps·(1 + A·cos(2π(t - phase)/P)), peak at ``phase``, so
  Λ = rps·[(t1 - t0) + A·P/(2π)·(sin(ω(t1 - phase)) - sin(ω(t0 - phase)))], ω = 2π/P;
- spikes: λ(t) = rps·Π multiplier over the spikes with ``at <= t < at + duration``
  (overlapping spikes multiply); Λ sums rate × length over the pieces between spike
  edges, and :func:`rate_changes` lists those edges so the world can put events there.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist

import networkx as nx
import numpy as np

from rolloutlab.scenarios.schema import ConstantProfile, DiurnalProfile, Latency, LognormalDistribution, SpikesProfile
from rolloutlab.strategies.observation import LATENCY_BUCKETS_MS

__all__ = [
    "LatencyModel",
    "WindowDraw",
    "callees_first",
    "combine_failure",
    "draw_window",
    "expected_arrivals",
    "propagate_failures",
    "rate_at",
    "rate_changes",
]

AnyProfile = ConstantProfile | DiurnalProfile | SpikesProfile

_TWO_PI = 2.0 * math.pi


# --- arrival rate -------------------------------------------------------------------------


def rate_at(profile: AnyProfile, rps: float, t: float) -> float:
    """Requests per second arriving at time ``t`` (seconds from the window's start)."""
    if isinstance(profile, ConstantProfile):
        return rps
    if isinstance(profile, DiurnalProfile):
        return rps * (1.0 + profile.amplitude * math.cos(_TWO_PI * (t - profile.phase) / profile.period))
    if isinstance(profile, SpikesProfile):
        factor = 1.0
        for spike in profile.spikes:
            if spike.at <= t < spike.at + spike.duration:
                factor *= spike.multiplier
        return rps * factor
    raise TypeError(f"unknown traffic profile {type(profile).__name__}")


def expected_arrivals(profile: AnyProfile, rps: float, t0: float, t1: float) -> float:
    """Mean number of requests arriving in [t0, t1): Λ = ∫ λ(t) dt, in closed form."""
    span = t1 - t0
    if not span >= 0:
        raise ValueError(f"window ends before it starts: t0={t0}, t1={t1}")
    if isinstance(profile, ConstantProfile):
        return rps * span
    if isinstance(profile, DiurnalProfile):
        omega = _TWO_PI / profile.period
        # sin(x1) - sin(x0) as 2·cos(mid)·sin(half): no cancellation for short windows
        # late in a long run.
        mid = omega * (0.5 * (t0 + t1) - profile.phase)
        swing = 2.0 * math.cos(mid) * math.sin(0.5 * omega * span) / omega
        return max(0.0, rps * (span + profile.amplitude * swing))
    if isinstance(profile, SpikesProfile):
        active = [s for s in profile.spikes if s.at < t1 and s.at + s.duration > t0]
        if not active:
            return rps * span
        edges = {t0, t1}
        for spike in active:
            for edge in (spike.at, spike.at + spike.duration):
                if t0 < edge < t1:
                    edges.add(edge)
        cuts = sorted(edges)
        total = 0.0
        for left, right in itertools.pairwise(cuts):
            factor = 1.0
            for spike in active:
                if spike.at <= left < spike.at + spike.duration:
                    factor *= spike.multiplier
            total += factor * (right - left)
        return rps * total
    raise TypeError(f"unknown traffic profile {type(profile).__name__}")


def rate_changes(profile: AnyProfile, t0: float, t1: float) -> list[float]:
    """Times in (t0, t1], ascending, where the rate jumps: the edges of spike windows.
    Empty for constant and diurnal traffic (diurnal changes continuously; integrate it
    with :func:`expected_arrivals` instead of sampling it)."""
    if not isinstance(profile, SpikesProfile):
        return []
    edges = set()
    for spike in profile.spikes:
        if spike.multiplier == 1.0:
            continue
        for edge in (spike.at, spike.at + spike.duration):
            if t0 < edge <= t1:
                edges.add(edge)
    return sorted(edges)


# --- latency ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LatencyModel:
    """Response time of one version, in ms: a lognormal body stretched by a regression
    and shifted by fixed delays:

        latency = multiplier·median·exp(σ·Z) + added_ms + queue_wait_ms,  Z ~ N(0, 1)

    ``queue_wait_ms`` is the mean queueing delay under overload
    (:func:`sim.queueing.overload`), added as a constant: the wait's own spread is
    ignored, which moves the mean and median exactly and the tail quantiles a little
    (a deliberate simplification; the queue's spread is small next to the lognormal
    tail unless the version is saturated, when failures dominate anyway).
    """

    median_ms: float
    """Median of the healthy lognormal body, in ms."""
    sigma: float
    """Log-space standard deviation of the body (p99/median = e^{2.326σ})."""
    multiplier: float = 1.0
    """Latency regression factor on the body (LatencyDefect.multiplier)."""
    added_ms: float = 0.0
    """Delay added to every response (LatencyDefect.added_ms, latency injection)."""
    queue_wait_ms: float = 0.0
    """Mean wait in the queue from overload, added to every response."""

    def __post_init__(self) -> None:
        if not (self.median_ms > 0 and math.isfinite(self.median_ms)):
            raise ValueError(f"median latency must be > 0 ms, got {self.median_ms}")
        if not (self.sigma >= 0 and math.isfinite(self.sigma)):
            raise ValueError(f"latency sigma must be >= 0, got {self.sigma}")
        if not (self.multiplier > 0 and math.isfinite(self.multiplier)):
            raise ValueError(f"latency multiplier must be > 0, got {self.multiplier}")
        if not (self.added_ms >= 0 and self.queue_wait_ms >= 0):
            raise ValueError(
                f"added latency must be >= 0 ms, got added_ms={self.added_ms}, "
                f"queue_wait_ms={self.queue_wait_ms}"
            )
        if math.isinf(self.added_ms + self.queue_wait_ms):
            raise ValueError("added latency must be finite")

    @classmethod
    def from_latency(cls, latency: Latency) -> LatencyModel:
        """The healthy model of a service whose scenario gives its median and p99:
        σ = ln(p99/median)/z_0.99, computed by the schema's lognormal."""
        sigma = LognormalDistribution(median=latency.median_ms, p99=latency.p99_ms).sigma_value
        return cls(median_ms=latency.median_ms, sigma=sigma)

    def bucket_probabilities(self) -> tuple[float, ...]:
        """Probability that a response falls in each bucket of LATENCY_BUCKETS_MS
        (non-cumulative, +Inf last; sums to 1)."""
        return _bucket_probabilities(
            self.median_ms * self.multiplier, self.sigma, self.added_ms + self.queue_wait_ms
        )[0]

    def quantile(self, q: float) -> float:
        """The q-quantile of the response time, in ms (0 < q < 1)."""
        if not 0.0 < q < 1.0:
            raise ValueError(f"quantile must be strictly between 0 and 1, got {q}")
        shift = self.added_ms + self.queue_wait_ms
        return shift + self.median_ms * self.multiplier * math.exp(self.sigma * _z(q))

    def exceedance(self, ms: float) -> float:
        """P(response time > ``ms``): the chance that a check with a timeout of ``ms``
        times out waiting for this answer."""
        return _lognormal_sf(ms - self.added_ms - self.queue_wait_ms, self.median_ms * self.multiplier, self.sigma)

    def mean_excess(self, ms: float) -> float:
        """E[(response time - ``ms``)⁺] in ms: how far answers run past ``ms`` on average
        (0 for those that finish within it). For the lognormal body X = s·e^{σZ} and
        h = ms - shift > 0 it is the Black-Scholes call price
        ``s·e^{σ²/2}·Φ(d₂ + σ) - h·Φ(d₂)`` with d₂ = ln(s/h)/σ; for h <= 0 it is
        E[X] - h."""
        return _mean_excess(ms - self.added_ms - self.queue_wait_ms, self.median_ms * self.multiplier, self.sigma)


@lru_cache(maxsize=1024)
def _z(q: float) -> float:
    return NormalDist().inv_cdf(q)


@lru_cache(maxsize=4096)
def _bucket_probabilities(
    scale: float, sigma: float, shift: float
) -> tuple[tuple[float, ...], np.ndarray]:
    """Bucket probabilities of shift + scale·exp(σZ), as a tuple and as a read-only array
    (the form ``Generator.multinomial`` takes without converting)."""
    cdf = [_lognormal_cdf(bound - shift, scale, sigma) for bound in LATENCY_BUCKETS_MS[:-1]]
    cdf.append(1.0)
    probs = tuple(max(0.0, hi - lo) for lo, hi in zip([0.0, *cdf[:-1]], cdf))
    array = np.array(probs)
    array.flags.writeable = False
    return probs, array


@lru_cache(maxsize=4096)
def _lognormal_sf(x: float, scale: float, sigma: float) -> float:
    """P(scale·e^{σZ} > x), computed as the upper tail itself (no 1 - cdf cancellation)."""
    if x <= 0:
        return 1.0
    if sigma == 0:
        return 1.0 if scale > x else 0.0
    return 0.5 * math.erfc(math.log(x / scale) / (sigma * math.sqrt(2.0)))


@lru_cache(maxsize=4096)
def _mean_excess(h: float, scale: float, sigma: float) -> float:
    """E[(scale·e^{σZ} - h)⁺]."""
    if h <= 0:
        return scale * math.exp(0.5 * sigma * sigma) - h
    if sigma == 0:
        return max(0.0, scale - h)
    d2 = math.log(scale / h) / sigma
    return max(0.0, scale * math.exp(0.5 * sigma * sigma) * _normal_cdf(d2 + sigma) - h * _normal_cdf(d2))


def _normal_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def _lognormal_cdf(x: float, scale: float, sigma: float) -> float:
    if x <= 0:
        return 0.0
    if sigma == 0:
        return 1.0 if x >= scale else 0.0
    return 0.5 * math.erfc(-math.log(x / scale) / (sigma * math.sqrt(2.0)))


# --- one window of traffic ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WindowDraw:
    """What one version served in one window between two events."""

    requests: int
    errors: int
    latency_buckets: tuple[int, ...]
    """Non-cumulative counts per LATENCY_BUCKETS_MS bucket; () when latency was not asked."""


_EMPTY_BUCKETS = (0,) * len(LATENCY_BUCKETS_MS)


def draw_window(
    rng: np.random.Generator,
    expected_requests: float,
    failure_probability: float,
    latency: LatencyModel | None,
) -> WindowDraw:
    """Requests ~ Poisson(expected_requests), errors ~ Binomial(requests, p), latency
    bucket counts ~ Multinomial(requests, bucket probabilities) when ``latency`` is given
    (every request is timed, failed ones included)."""
    if not (expected_requests >= 0 and math.isfinite(expected_requests)):
        raise ValueError(f"expected requests must be a finite number >= 0, got {expected_requests}")
    if not 0.0 <= failure_probability <= 1.0:
        raise ValueError(f"failure probability must be in [0, 1], got {failure_probability}")
    requests = int(rng.poisson(expected_requests)) if expected_requests > 0 else 0
    if requests == 0:
        return WindowDraw(0, 0, () if latency is None else _EMPTY_BUCKETS)
    if failure_probability == 0.0:
        errors = 0
    elif failure_probability == 1.0:
        errors = requests
    else:
        errors = int(rng.binomial(requests, failure_probability))
    if latency is None:
        return WindowDraw(requests, errors, ())
    pvals = _bucket_probabilities(
        latency.median_ms * latency.multiplier,
        latency.sigma,
        latency.added_ms + latency.queue_wait_ms,
    )[1]
    return WindowDraw(requests, errors, tuple(rng.multinomial(requests, pvals).tolist()))


# --- failure probabilities ----------------------------------------------------------------


def combine_failure(*probabilities: float) -> float:
    """Probability that a request fails when each cause fails it independently with
    probability p_i: 1 - Π(1 - p_i) (summed in log space, exact for tiny p_i)."""
    log_survival = 0.0
    for p in probabilities:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"failure probability must be in [0, 1], got {p}")
        if p == 1.0:
            return 1.0
        log_survival += math.log1p(-p)
    return -math.expm1(log_survival)


def callees_first(graph: nx.DiGraph) -> tuple[str, ...]:
    """Services ordered so that every callee comes before its callers (edges point from
    caller to callee); ValueError naming a cycle if calls go round in one."""
    try:
        order = list(nx.topological_sort(graph))
    except nx.NetworkXUnfeasible:
        cycle = nx.find_cycle(graph)
        path = " -> ".join([str(edge[0]) for edge in cycle] + [str(cycle[0][0])])
        raise ValueError(f"service dependencies form a cycle: {path}") from None
    order.reverse()
    return tuple(order)


def propagate_failures(
    graph: nx.DiGraph,
    own: Mapping[str, float],
    *,
    order: Sequence[str] | None = None,
) -> dict[str, float]:
    """Failure probability each service's callers see, once its callees' failures reach it.

    ``graph`` has an edge caller -> callee per dependency, with attributes
    ``calls_per_request`` (c, default 1) and ``error_propagation`` (e, default 1);
    ``own`` is each service's failure probability on its own (missing: 0). A request to
    s survives if s itself does not fail it and none of its c calls to each callee fails
    it (a call fails with p_total(callee) and then fails the request with probability e):

        p_total(s) = 1 - (1 - own(s)) · Π_callee (1 - e·p_total(callee))^c

    computed callees first. ``order`` is :func:`callees_first` of ``graph``; pass it when
    calling repeatedly on the same graph to skip the sort. Returns every node of ``graph``
    and of ``own``.
    """
    if order is None:
        order = callees_first(graph)
    total: dict[str, float] = {}
    for name, p in own.items():
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"failure probability of {name!r} must be in [0, 1], got {p}")
        if name not in graph:
            total[name] = p
    succ = graph.succ
    for name in order:
        survival = 1.0 - own.get(name, 0.0)
        for callee, attrs in succ[name].items():
            calls = attrs.get("calls_per_request", 1.0)
            reach = attrs.get("error_propagation", 1.0)
            if not (calls >= 0 and 0.0 <= reach <= 1.0):
                raise ValueError(
                    f"dependency {name} -> {callee} needs calls_per_request >= 0 and "
                    f"error_propagation in [0, 1], got {calls} and {reach}"
                )
            if callee not in total:
                raise ValueError(f"order lists {name!r} before its callee {callee!r}")
            survival *= (1.0 - reach * total[callee]) ** calls
        total[name] = 1.0 - survival
    return total
