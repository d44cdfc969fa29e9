"""Checks repeated on a period that take something out after failures in a row: the
kubelet's readiness probe of each pod of the service under test (here), and monitoring's
health check of the service (``sim.healthcheck``).

The model. Check n of a series happens at ``first + n·period`` and fails with the
failure probability q in effect at that moment; the world is piecewise constant between
events, so q changes only when the world does. A series is *up* until ``to_fail`` checks
in a row fail, then *down* until ``to_pass`` checks in a row pass.

Exact without an event per check (the fast mode stays analytic): every check gets a
uniform number U_n, drawn once from the series' own generator, and fails iff U_n < q. When q changes, the checks before
that moment were decided under the old q; the first flip under the new one is found by
scanning the U_n ahead (vectorized) and becomes one scheduled event, which a later change
of q cancels and replaces. A scan looks ``LOOKAHEAD`` checks ahead; with no flip in
reach the series looks again there. A q so small that ``to_fail`` failures in a row are
rarer than ``NEGLIGIBLE`` is taken as 0, and one so close to 1 that ``to_pass`` passes
in a row are that rare as 1: nothing is scanned or drawn then (ordinary services never
draw a single U_n).

Readiness: a probe fails when the pod's answer takes longer than the probe's ``timeout``,
or when it waits in line behind the users' requests longer than that timeout allows
(``compute_probe_failure``; the queue is ``sim.queueing``'s). A Ready pod failing
``failure_threshold`` probes in a row leaves the endpoints (gets no traffic); out of
them it answers at its unloaded speed, and comes back after ``success_threshold``
passes in a row. The probe does not see a defect's errors: a readiness endpoint answers
from the process, not the code path a defect breaks. A starting pod becomes Ready on
its schedule (``sim.pods``): the probes that first find its app up are taken to pass.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import simpy

from rolloutlab.results.timeline import TimelineEvent, WorldEvent
from rolloutlab.sim.pods import Pod
from rolloutlab.sim.queueing import wait_exceedance
from rolloutlab.sim.traffic import LatencyModel, combine_failure
from rolloutlab.strategies import Role

if TYPE_CHECKING:
    from rolloutlab.sim.world import World

NEGLIGIBLE = 1e-12
"""Probability per check below which a flip is taken as impossible."""
LOOKAHEAD = 256
"""Checks scanned ahead for the next flip (and uniforms drawn at a time)."""
ROLES = (Role.STABLE, Role.CANARY)


class CheckSeries:
    """One periodic check and its up/down state (see the module docstring)."""

    def __init__(
        self, env: simpy.Environment, rng: np.random.Generator | Callable[[], np.random.Generator],
        first: float, period: float, to_fail: int, to_pass: int, on_flip: Callable[[CheckSeries], None],
    ) -> None:
        self.env = env
        self._rng = rng  # or what makes it, when first needed (a series that never draws costs none)
        self.first, self.period = first, period
        self.to_fail, self.to_pass = to_fail, to_pass
        self.on_flip = on_flip
        self.up = True
        self.run = 0  # checks in a row toward the next flip: failures while up, passes while down
        self.q = 0.0  # failure probability in effect since the last change
        self.next_index = self.index_after(env.now)  # the first check not yet decided
        self._u = np.empty(0)
        self._u_start = 0
        self._token = 0  # bumped to cancel the scheduled event
        self._due: tuple[int, bool] | None = None  # (check, flips?) of the scheduled event

    def time_of(self, n: int) -> float:
        return self.first + n * self.period

    def index_after(self, t: float) -> int:
        """The first check after ``t``."""
        return max(0, math.floor((t - self.first) / self.period + 1e-9) + 1)

    def set_failure_probability(self, q: float) -> None:
        """Checks after now fail with probability ``q`` (those at this very moment were
        sent before the change, and are decided by the world as it was)."""
        if q == self.q:
            return  # the scheduled flip stands: it was found under this very q
        due = self._due
        if due is not None and due[1] and self.time_of(due[0]) <= self.env.now:
            self._fire(self._token, *due)  # a flip of this very moment, not yet run: it came first
        self._decide_through(self.env.now)
        self.q = q
        self._schedule()

    def cancel(self) -> None:
        self._token += 1
        self._due = None

    # ------------------------------------------------------------------ deciding checks

    def _certain(self) -> bool | None:
        """True: every check fails; False: every check passes; None: draw them. Near-
        certainties count as certain (NEGLIGIBLE)."""
        q = self.q
        if q <= 0.0 or (self.up and q ** self.to_fail < NEGLIGIBLE):
            return False
        if q >= 1.0 or (not self.up and (1.0 - q) ** self.to_pass < NEGLIGIBLE):
            return True
        return None

    def _counted(self, failed: np.ndarray) -> np.ndarray:
        """Whether each check counts toward the flip: a failure while up, a pass while down."""
        return failed if self.up else ~failed

    def _uniforms(self, lo: int, hi: int) -> np.ndarray:
        """U_lo .. U_{hi-1}, drawing (in order) those not drawn yet; checks skipped while
        q was certain never get one."""
        if lo >= self._u_start + len(self._u):
            self._u, self._u_start = np.empty(0), lo
        elif lo - self._u_start > LOOKAHEAD:
            self._u, self._u_start = self._u[lo - self._u_start:], lo
        missing = hi - (self._u_start + len(self._u))
        if missing > 0:
            if not isinstance(self._rng, np.random.Generator):
                self._rng = self._rng()
            self._u = np.concatenate([self._u, self._rng.random(max(missing, LOOKAHEAD))])
        return self._u[lo - self._u_start:hi - self._u_start]

    def _decide_through(self, t: float) -> None:
        """Decide the checks up to ``t`` under the current q (none of them flips: a flip
        would have been scheduled and fired first)."""
        lo, hi = self.next_index, self.index_after(t)
        if hi <= lo:
            return
        certain = self._certain()
        counts = (self.up == certain) if certain is not None else None
        if counts is not None:
            self.run = self.run + (hi - lo) if counts else 0
        else:
            counted = self._counted(self._uniforms(lo, hi) < self.q)
            misses = np.flatnonzero(~counted)
            self.run = (hi - lo - 1 - misses[-1]) if misses.size else self.run + (hi - lo)
        self.next_index = hi

    def _next_flip(self) -> tuple[int, bool] | None:
        """(index, True) of the next flip under the current q, or (index, False) where to
        look again, or None when no flip can come."""
        need = (self.to_fail if self.up else self.to_pass) - self.run
        lo = self.next_index
        certain = self._certain()
        if certain is not None:
            return (lo + max(need, 1) - 1, True) if self.up == certain else None
        counted = self._counted(self._uniforms(lo, lo + LOOKAHEAD) < self.q)
        if np.count_nonzero(counted) < need:
            return lo + LOOKAHEAD, False  # too few to make a run: the usual case of a small q
        index = np.arange(LOOKAHEAD)
        last_miss = np.maximum.accumulate(np.where(counted, -1, index))
        run = np.where(last_miss < 0, index + 1 + self.run, index - last_miss)  # 0 where the check does not count
        hits = np.flatnonzero(run >= (self.to_fail if self.up else self.to_pass))
        if hits.size:
            return lo + int(hits[0]), True
        return lo + LOOKAHEAD, False

    def _schedule(self) -> None:
        self._token += 1
        self._due = nxt = self._next_flip()
        if nxt is None:
            return
        index, flip = nxt
        token = self._token
        delay = max(0.0, self.time_of(index) - self.env.now)
        self.env.timeout(delay).callbacks.append(lambda _e: self._fire(token, index, flip))

    def _fire(self, token: int, index: int, flip: bool) -> None:
        if token != self._token:
            return  # q changed since: a newer event stands
        if not flip:
            self._decide_through(self.time_of(index - 1))
            self._schedule()
            return
        self._decide_through(self.time_of(index - 1))
        self.up, self.run, self.next_index = not self.up, 0, index + 1
        self.on_flip(self)
        if self._token == token:
            self._schedule()  # nobody set a new q: go on under this one


@lru_cache(maxsize=1024)
def compute_probe_failure(model: LatencyModel, arrival_rps: float, ready: int, capacity_rps: float,
                          request_timeout: float, timeout: float) -> float:
    """Chance that a probe of a Ready pod fails: the pod's answer takes longer than
    ``timeout`` (the version's response time L), or the probe waits in line with the
    users' requests (``ready`` pods serving ``arrival_rps``, first come first served)
    longer than the timeout leaves for the answer, ``timeout - median(L)``
    (``sim.queueing.wait_exceedance``). Saturated pods keep their users waiting nearly
    their whole patience, so a probe as patient as the users fails there: the readiness
    cascade of an overloaded service."""
    slow = model.exceedance(1000.0 * timeout)
    if arrival_rps <= 0:
        return slow
    left = timeout - model.quantile(0.5) / 1000.0
    return combine_failure(slow, wait_exceedance(arrival_rps, ready, capacity_rps, request_timeout, left))


class ReadinessProbes:
    """The readiness probe of every pod of the service under test."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.probe = world.sut.pod_timing.readiness
        self.series: dict[int, tuple[Pod, CheckSeries]] = {}

    def world_changed(self) -> None:
        """Set each pod's probe failure probability to what the world now makes it."""
        world = self.world
        now = world.env.now
        shares = world.shares(now)
        loaded = {role: self._loaded_failure(role, now, shares) for role in ROLES}
        probe = self.probe
        if not self.series and all(q ** probe.failure_threshold < NEGLIGIBLE for q in loaded.values()):
            return  # no pod can fail its probe: nothing to follow
        cluster = world.cluster
        down = cluster.down_nodes
        seen = set()
        for role in ROLES:
            idle = None
            for pod in cluster.pods[role]:
                entry = self.series.get(pod.id)
                serving = (pod.deleted_at is None and not pod.crashed and pod.node not in down
                           and pod.ready_at is not None and pod.ready_at <= now)
                if entry is not None and (not serving or entry[1].first != pod.ready_at + probe.period):
                    entry[1].cancel()  # gone, or its probes started over (its node came back)
                    del self.series[pod.id]
                    entry = None
                if not serving:
                    continue
                if entry is None:
                    if not pod.probe_failed and loaded[role] ** probe.failure_threshold < NEGLIGIBLE:
                        continue
                    # each pod's probes draw from a stream of their own (spawned in the
                    # order pods come under watch), so no two pods share draws
                    series = CheckSeries(world.env, world.extra_stream("probes").spawn(1)[0], pod.ready_at + probe.period,
                                         probe.period, probe.failure_threshold, probe.success_threshold,
                                         lambda s, pod=pod: self._flip(pod, s))
                    series.up = not pod.probe_failed
                    entry = self.series[pod.id] = (pod, series)
                seen.add(pod.id)
                series = entry[1]
                if series.up:
                    series.set_failure_probability(loaded[role])
                else:
                    idle = self._idle_failure(role, now) if idle is None else idle
                    series.set_failure_probability(idle)
        for pod_id in [i for i in self.series if i not in seen]:
            self.series.pop(pod_id)[1].cancel()

    def _flip(self, pod: Pod, series: CheckSeries) -> None:
        """The pod leaves the endpoints (or comes back): traffic so far is counted first."""
        world = self.world
        world.sync()
        pod.probe_failed = not series.up
        world.cluster.changed()
        if world.record_timeline:
            world.pending_events.append(TimelineEvent((WorldEvent.POD_READY if series.up else WorldEvent.POD_NOT_READY).value,
                                                     f"readiness probe of pod {pod.id}"))
        world.changed_now()

    def _loaded_failure(self, role: Role, now: float, shares: dict[Role, float]) -> float:
        """Failure probability of a probe of a Ready pod of ``role``, under its share of
        the load."""
        world = self.world
        ready = world.cluster.ready_count(role, now)
        if ready == 0:
            return 0.0
        sut = world.sut
        return compute_probe_failure(world.latency_model(role, now), world.arrival_rate(role, now, shares), ready,
                                     sut.capacity_rps, sut.request_timeout, self.probe.timeout)

    def _idle_failure(self, role: Role, now: float) -> float:
        """Failure probability of a probe of a pod out of the endpoints (no traffic)."""
        return self.world.latency_model(role, now).exceedance(1000.0 * self.probe.timeout)


__all__ = ["LOOKAHEAD", "NEGLIGIBLE", "CheckSeries", "ReadinessProbes", "compute_probe_failure"]
