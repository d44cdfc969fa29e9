"""The per-request reference world (``--fidelity request``): every request is its own
SimPy event. It exists only to check the fast mode, and is about a thousand times slower.

Arrivals are a Poisson process generated one by one (Lewis-Shedler thinning for a
varying rate); each request picks a version by the effective weight at its arrival,
and fails with that version's probability at that moment. Everything else -- pods,
controller, faults, alerts, people, cost, impact -- is the fast world's own code, so a
disagreement between the two modes points at the one thing they do differently:
accounting for traffic between events.

The failure probability of a request still comes from the same model (baseline, defect,
schema, M/M/c overload); this mode checks the traffic accounting, not the queueing model.
"""

from __future__ import annotations

import numpy as np

from rolloutlab.scenarios.schema import DiurnalProfile, SpikesProfile
from rolloutlab.sim.alerts import Monitor
from rolloutlab.sim.traffic import rate_at
from rolloutlab.sim.world import ROLES, World
from rolloutlab.strategies.observation import Role


class ExactMonitor(Monitor):
    """Alert rules that evaluate every tick and read window starts from snapshots of the
    counted requests (every evaluation tick is synced, so each start is a recorded time)."""

    skips_unreachable = False  # evaluate every tick: the reference skips nothing

    def __init__(self, world: World) -> None:
        super().__init__(world)
        self.snapshots: dict[float, tuple[int, int]] = {0.0: (0, 0)}

    def total_at(self, when: float) -> tuple[int, int]:
        """Exact: the recorded totals at ``when`` (or the latest recorded time before it);
        before the rollout, the drawn history's."""
        if when < 0:
            return super().total_at(when)
        if when in self.snapshots:
            return self.snapshots[when]
        earlier = [t for t in self.snapshots if t <= when]
        return self.snapshots[max(earlier)] if earlier else (0, 0)


class RequestWorld(World):
    def __post_init__(self) -> None:
        super().__post_init__()
        # what this mode draws per request is the version, not the user: routes, flags
        # and segments would be silently wrong here, so they are refused
        canary = self.spec.strategy.canary
        if self.flagged or (canary is not None and (canary.managed_routes or canary.baseline)) \
                or self.scenario.traffic.segments or self.scenario.traffic.write_share:
            raise ValueError("the per-request reference world models neither routes, feature flags, baseline "
                             "deployments nor user segments; use the fast simulator for them")

    def run(self, horizon: float) -> None:
        self.env.process(self._arrivals())
        super().run(horizon)

    def _make_monitor(self) -> Monitor:
        return ExactMonitor(self)

    # traffic is counted request by request, so intervals carry no draws
    def _draw_traffic(self, role: Role, t0: float, users: float, preview: float, p: float,
                      flag: bool | None = None, baseline: bool = False) -> None:
        return None

    def sync(self) -> None:
        super().sync()
        self.monitor.snapshots[self.env.now] = (self.total_requests, self.total_errors)

    def _arrivals(self):
        rng = self.streams["traffic"]
        traffic = self.scenario.traffic
        peak = _peak_rate(traffic.profile, traffic.rps) * self.arrival_factor
        preview_rate = traffic.preview_rps
        total_rate = peak + preview_rate
        cdfs: dict = {}
        while True:
            yield self.env.timeout(rng.exponential(1.0 / total_rate))
            now = self.env.now
            self.sync()
            if rng.random() * total_rate >= peak:
                # a preview request: only while a preview Service has a version with no users
                role = self.preview
                if role is None or self.shares(now)[role] > 0:
                    continue
                user = False
                rate = preview_rate
            else:
                rate = rate_at(traffic.profile, traffic.rps, now) * self.arrival_factor
                if rng.random() * peak >= rate:
                    continue  # thinned: the rate is below its peak now
                shares = self.shares(now)
                role = Role.CANARY if rng.random() < shares[Role.CANARY] else Role.STABLE
                user = True
                rate *= shares[role]
            p, harmed = self.failure_probability(role, rate, now)
            failed = rng.random() < p
            counters = self.traffic[role]
            counters.requests += 1
            counters.errors += failed
            self.total_requests += 1
            self.total_errors += failed
            if user:
                self.user_requests += 1
                self.user_errors += failed
                self.exposed_requests += harmed
            if counters.buckets is not None:
                model = self.latency_model(role, now)  # it changes with faults and leaks, not only with the version
                cumulative = cdfs.get(model)
                if cumulative is None:
                    cumulative = cdfs[model] = np.cumsum(np.asarray(model.bucket_probabilities()))
                index = int(np.searchsorted(cumulative, rng.random(), side="right"))
                counters.buckets[min(index, len(cumulative) - 1)] += 1


def _peak_rate(profile, rps: float) -> float:
    if isinstance(profile, DiurnalProfile):
        return rps * (1.0 + profile.amplitude)
    if isinstance(profile, SpikesProfile):
        peak = 1.0
        for spike in profile.spikes:  # overlapping spikes multiply
            peak *= max(1.0, spike.multiplier)
        return rps * peak
    return rps


__all__ = ["ROLES", "RequestWorld"]
