"""Overload as queueing theory predicts it: each version's ready pods as an M/M/c queue.

The world: requests for one version arrive as a Poisson stream of ``arrival_rps``; each
of its ``servers`` ready pods answers ``service_rps`` requests per second when busy (its
capacity, exponential service times); requests wait first-come-first-served for a free
pod; a client gives up after ``timeout_s``, and a request that has not *started* by then
fails and leaves the queue without costing any pod time (the server sees the
disconnect, as it does with a proxy or gRPC deadline). That is the M/M/c+D queue
(Erlang-A with a fixed patience), whose steady state has a closed form:

    a = λ/μ          offered load: busy pods needed on average
    b = B(c-1, a)    Erlang B with c-1 pods (recursion below)
    δ = cμ - λ       spare capacity, negative when saturated
    V                the wait a request would have if it never gave up ("offered wait")

    relative to the probability 1 that a pod is idle on arrival (V = 0), V has density
        v(x) = λ·b·exp(-δx)              for 0 < x <= τ
        v(x) = λ·b·exp(-δτ - cμ(x - τ))  for x > τ  (beyond τ nobody joins: drains at cμ)
    failure   = P(V > τ) = m_f / (1 + m_s + m_f),
                m_s = λ·b·∫_0^τ e^{-δx} dx,  m_f = λ·b·e^{-δτ}/(cμ)
    mean wait = E[V | V <= τ], the wait of the requests that are served

(Baccelli & Hébuterne 1981; Zeltyn & Mandelbaum, "Call centers with impatient
customers: many-server asymptotics of the M/M/n+G queue", Queueing Systems 51, 2005:
P(Ab) = (1 + (λ - nμ)J)/(E + λJ), J = ∫ exp(λH(x) - nμx) dx, with the patience a point
mass at τ, so H(x) = min(x, τ), and E = 1/b.)

Its limits are the two textbook regimes, joined without a jump:

- when δτ >> 1 few requests reach the timeout: waits are M/M/c's,
  ``P(W > t) = C(c, a)·exp(-δt)`` for t < τ with Erlang C, mean ``C/δ``, and the
  failure is that tail at τ times δ/(cμ): ``C·exp(-δτ)·(cμ - λ)/(cμ)``. The factor is
  the shedding: a queue whose timed-out requests stayed would keep growing past τ at
  rate δ, this one drains at cμ;
- well beyond capacity the pods are always busy, serve cμ per second, and the excess
  times out: failure -> ``1 - cμ/λ``; the served requests wait nearly the whole
  timeout (mean ``τ - 1/(λ - cμ)``).

Why not P(W > τ) of the plain M/M/c below capacity and ``1 - cμ/λ`` above: the first
assumes timed-out requests keep their place in the queue, the second that they leave.
Mixed, failure jumps from nearly 1 just below capacity to nearly 0 just above, exactly
where overload scenarios operate. ``timeout_s = 0`` gives the Erlang loss system
(M/M/c/c): failure = B(c, a).

No pods (``servers == 0``) with traffic: every request fails at once (a Kubernetes
Service with no ready endpoints refuses the connection), waiting nothing.

Every function is cached on its exact arguments; a miss costs a loop of ``servers``
float operations (Erlang B recursion), a few µs for tens of pods.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["Overload", "erlang_b", "erlang_c", "overload", "wait_exceedance"]


@lru_cache(maxsize=4096)
def erlang_b(servers: int, offered_load: float) -> float:
    """Probability that all ``servers`` are busy in a loss system offered ``offered_load``
    erlangs (Erlang B), by the stable recursion B(0) = 1,
    B(k) = a·B(k-1) / (k + a·B(k-1)) (every step stays in [0, 1], no factorials)."""
    if servers < 0:
        raise ValueError(f"servers must be >= 0, got {servers}")
    if not offered_load >= 0 or math.isinf(offered_load):
        raise ValueError(f"offered load must be a finite number >= 0, got {offered_load}")
    b = 1.0
    a = offered_load
    for k in range(1, servers + 1):
        ab = a * b
        b = ab / (k + ab)
    return b


@lru_cache(maxsize=4096)
def erlang_c(servers: int, offered_load: float) -> float:
    """Probability that an arrival has to wait in an M/M/c queue with ``servers`` servers
    offered ``offered_load`` = λ/μ erlangs (Erlang C), from Erlang B:
    C = B / (1 - ρ(1 - B)) with ρ = a/c. 1.0 when the queue is unstable (a >= c)."""
    if servers < 0:
        raise ValueError(f"servers must be >= 0, got {servers}")
    if not offered_load >= 0 or math.isinf(offered_load):
        raise ValueError(f"offered load must be a finite number >= 0, got {offered_load}")
    if offered_load >= servers:
        return 1.0
    if offered_load == 0:
        return 0.0
    b = erlang_b(servers, offered_load)
    rho = offered_load / servers
    return b / (1.0 - rho * (1.0 - b))


@dataclass(frozen=True, slots=True)
class Overload:
    """What queueing does to one version's requests at a given load."""

    failure_probability: float
    """Share of requests that time out before a pod starts on them."""
    mean_wait_ms: float
    """Mean time the served requests spent queued, in ms (add it to their latency)."""


_NO_OVERLOAD = Overload(0.0, 0.0)
_REFUSED = Overload(1.0, 0.0)


def overload(arrival_rps: float, servers: int, service_rps: float, timeout_s: float) -> Overload:
    """Failure probability and queueing delay of a version receiving ``arrival_rps`` on
    ``servers`` ready pods that each serve ``service_rps``, when clients give up after
    ``timeout_s`` (the M/M/c+D queue of the module docstring)."""
    return _overload(float(arrival_rps), int(servers), float(service_rps), float(timeout_s))


@lru_cache(maxsize=8192)
def _overload(lam: float, servers: int, mu: float, tau: float) -> Overload:
    if not (lam >= 0 and math.isfinite(lam)):
        raise ValueError(f"arrival rate must be a finite number >= 0, got {lam}")
    if servers < 0:
        raise ValueError(f"servers must be >= 0, got {servers}")
    if not (mu > 0 and math.isfinite(mu)):
        raise ValueError(f"service rate per pod must be a finite number > 0, got {mu}")
    if not (tau >= 0 and math.isfinite(tau)):
        raise ValueError(f"timeout must be a finite number of seconds >= 0, got {tau}")
    if lam == 0:
        return _NO_OVERLOAD
    if servers == 0:
        return _REFUSED
    capacity = servers * mu
    k = lam * erlang_b(servers - 1, lam / mu)  # λ·b: flow into "all pods busy"
    if k == 0.0:  # b underflowed: waiting is rarer than 1e-308
        return _NO_OVERLOAD
    u = (capacity - lam) * tau
    # Masses of: some pod idle (m_idle), queued and served (m_served), timed out
    # (m_failed), and ∫_0^τ x·v(x) dx (m_wait). When saturated (u < 0) all are scaled by
    # e^{u} so that e^{-u} cannot overflow; the ratios are unchanged.
    if u >= 0:
        m_idle = 1.0
        m_served = k * tau * _e1(u)
        m_failed = k * math.exp(-u) / capacity
        m_wait = k * tau * tau * _e2(u)
    else:
        w = -u
        m_idle = math.exp(-w)
        e1 = _e1(w)
        m_served = k * tau * e1
        m_failed = k / capacity
        m_wait = k * tau * tau * (e1 - _e2(w))
    failure = m_failed / (m_idle + m_served + m_failed)
    mean_wait_s = m_wait / (m_idle + m_served)
    return Overload(min(1.0, failure), 1000.0 * mean_wait_s)


def wait_exceedance(arrival_rps: float, servers: int, service_rps: float, timeout_s: float, wait_s: float) -> float:
    """P(V > ``wait_s``): the chance that a request arriving now would not find a pod free
    within ``wait_s`` (V: its offered wait in the M/M/c+D queue of the module docstring,
    where clients give up after ``timeout_s``). At ``wait_s == timeout_s`` it is the
    failure probability of :func:`overload`; a check with a patience of its own (a
    readiness probe's timeout) times out in the queue with this probability.

    From the density of V: P(V > t) = (k·∫_t^τ e^{-δx} dx + m_f) / (1 + m_s + m_f) for
    t < τ, and m_f·e^{-cμ(t-τ)} / (1 + m_s + m_f) beyond (nobody joins past τ: the queue
    drains at cμ)."""
    return _wait_exceedance(float(arrival_rps), int(servers), float(service_rps), float(timeout_s), float(wait_s))


@lru_cache(maxsize=4096)
def _wait_exceedance(lam: float, servers: int, mu: float, tau: float, t: float) -> float:
    _overload(lam, servers, mu, tau)  # the same argument checks
    if t < 0:
        return 1.0
    if lam == 0:
        return 0.0
    if servers == 0:
        return 1.0
    capacity = servers * mu
    k = lam * erlang_b(servers - 1, lam / mu)
    if k == 0.0:
        return 0.0
    delta = capacity - lam
    u = delta * tau
    # the masses of _overload, scaled the same way when saturated
    if u >= 0:
        m_idle, m_served, m_failed = 1.0, k * tau * _e1(u), k * math.exp(-u) / capacity
    else:
        m_idle, m_served, m_failed = math.exp(u), k * tau * _e1(-u), k / capacity
    total = m_idle + m_served + m_failed
    if t >= tau:
        return min(1.0, m_failed * math.exp(-capacity * (t - tau)) / total)
    left = tau - t
    if delta >= 0:
        beyond = k * math.exp(-delta * t) * left * _e1(delta * left)
    else:
        beyond = k * left * _e1(-delta * left)
    return min(1.0, (beyond + m_failed) / total)


def _e1(w: float) -> float:
    """∫_0^1 e^{-w·y} dy = (1 - e^{-w})/w for w >= 0."""
    return -math.expm1(-w) / w if w > 0 else 1.0


def _e2(w: float) -> float:
    """∫_0^1 y·e^{-w·y} dy = (1 - e^{-w}(1 + w))/w² for w >= 0 (series near 0, where
    the closed form cancels)."""
    if w < 0.5:
        total, term, k = 0.5, 1.0, 0
        while True:
            k += 1
            term *= -w / k
            add = term / (k + 2)
            total += add
            if abs(add) < 1e-17:
                return total
    return (-math.expm1(-w) - w * math.exp(-w)) / (w * w)
