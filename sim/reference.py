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
from rolloutlab.sim.traffic import rate_at
from rolloutlab.sim.world import ROLES, World
from rolloutlab.strategies.observation import Role


class RequestWorld(World):
    def run(self, horizon: float) -> None:
        self._snapshots: dict[float, tuple[int, int]] = {0.0: (0, 0)}
        self.env.process(self._arrivals())
        super().run(horizon)

    # traffic is counted request by request, so intervals carry no draws
    def _draw_traffic(self, role: Role, t0: float, users: float, preview: float, p: float) -> None:
        return None

    def _sync(self) -> None:
        super()._sync()
        self._snapshots[self.env.now] = (self.total_requests, self.total_errors)

    def _alert_cannot_breach(self, rule) -> bool:
        return False  # evaluate every tick: the reference skips nothing

    def _total_at(self, when: float) -> tuple[int, int]:
        """Exact: every evaluation tick synced, so a window's start is a recorded time (or
        the latest recorded time before it)."""
        if when in self._snapshots:
            return self._snapshots[when]
        earlier = [t for t in self._snapshots if t <= when]
        return self._snapshots[max(earlier)] if earlier else (0, 0)

    def _arrivals(self):
        rng = self.streams["traffic"]
        traffic = self.scenario.traffic
        peak = _peak_rate(traffic.profile, traffic.rps) * self._arrival_factor
        preview_rate = traffic.preview_rps
        total_rate = peak + preview_rate
        cdfs: dict = {}
        while True:
            yield self.env.timeout(rng.exponential(1.0 / total_rate))
            now = self.env.now
            self._sync()
            if rng.random() * total_rate >= peak:
                # a preview request: only while a preview Service has a version with no users
                role = self.preview
                if role is None or self.shares(now)[role] > 0:
                    continue
                user = False
                rate = preview_rate
            else:
                rate = rate_at(traffic.profile, traffic.rps, now) * self._arrival_factor
                if rng.random() * peak >= rate:
                    continue  # thinned: the rate is below its peak now
                shares = self.shares(now)
                role = Role.CANARY if rng.random() < shares[Role.CANARY] else Role.STABLE
                user = True
                rate *= shares[role]
            p, harmed = self._failure_probability(role, rate, now)
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
                model = self._latency_model(role, now)  # it changes with faults and leaks, not only with the version
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


__all__ = ["RequestWorld", "ROLES"]
