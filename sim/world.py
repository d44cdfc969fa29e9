"""One simulated rollout: a SimPy world that drives the shared controller, unchanged.

Actors are generator processes (SimPy style), each in the module named after what it
models: the controller (here) calls ``strategies.reconcile`` whenever the world changes
or the controller asked to be woken (``status.requeue_at``) and applies its actions; the
fault injector (``sim.faults``), the alert rules (``sim.alerts``), monitoring's health
check (``sim.healthcheck``), the on-call person (``sim.oncall``) and the migration runner
(``sim.migrations``) act at their own times. Pods become ready on scheduled events
(``sim.pods``) and leave and rejoin the endpoints as their readiness probes fail and pass
(``sim.probes``: an event per flip, not per probe); the release's defect acts on the new
version (``sim.defects``); failures travel along the call graph (``sim.dependencies``).

Traffic is never simulated request by request here (that is ``sim.reference``): the
world is piecewise constant between two state changes, so before any change the
traffic since the previous one is drawn in one go -- requests ~ Poisson(Λ), failures ~
Binomial(requests, p) (Poisson thinning), latencies ~ Multinomial over the histogram
buckets -- by ``_advance_traffic``. Every state change goes through ``sync`` first and
is announced by ``changed_now`` after.

What is measured for the results table:

- *impact*: time during which users get answers made worse by the release (its defect,
  or a schema the serving version does not support). Time to restore runs from the first
  such moment to the end of the last one.
- *detection*: the first of an analysis abort, a progress-deadline abort, or a page (an
  alert rule, or the health check going down).
- *cost*: pod-seconds of both versions of the service under test.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import simpy

from rolloutlab.results.table import DETECTED_BY_ABORT_CAUSE
from rolloutlab.results.timeline import TimelinePoint
from rolloutlab.scenarios.release import ReleaseDraw, child_seed
from rolloutlab.scenarios.schema import DiurnalProfile, Scenario, SpikesProfile
from rolloutlab.sim import accounting, adapter, routing, timeline_points
from rolloutlab.sim.alerts import Monitor
from rolloutlab.sim.defects import LEAK_TICK, crash_probability, defect_failure, defect_slowdown
from rolloutlab.sim.faults import inject_faults
from rolloutlab.sim.healthcheck import ServiceHealthCheck
from rolloutlab.sim.migrations import compute_schema_error_rate, compute_schema_ok, run_migrations
from rolloutlab.sim.pods import Cluster, Pod
from rolloutlab.sim.probes import NEGLIGIBLE, ReadinessProbes
from rolloutlab.sim.queueing import overload
from rolloutlab.sim.scenario_facts import scenario_facts
from rolloutlab.sim.segments import UserHarm
from rolloutlab.sim.traffic import (
    LatencyModel,
    combine_failure,
    draw_window,
    rate_at,
    rate_changes,
)
from rolloutlab.sim.wakeups import EndOfInstant, FirstOf
from rolloutlab.strategies import (
    CommandRequest,
    Counters,
    Observation,
    Role,
    RolloutStatus,
    StrategySpec,
    VersionObservation,
    reconcile,
)
from rolloutlab.strategies.actions import (
    SetFlagExposure,
)
from rolloutlab.strategies.routes import HeaderRoute, MirrorRoute
from rolloutlab.strategies.spec import Signal

ROLES = (Role.STABLE, Role.CANARY)
EXTRA_STREAMS = ("probes", "checks", "history", "grace", "writes", "users", "exposure")
"""Purposes of ``World.extra_stream``, in the order of their child seeds."""
_NOTHING_INJECTED = combine_failure()  # (-0.0, as combining no cause gives: kept bit for bit)
DIURNAL_TICK = 300.0  # seconds between re-evaluations of a diurnal rate (overload follows the rate)


@dataclass
class VersionTraffic:
    """Cumulative counters the runner reports for one version (user + preview traffic)."""

    requests: int = 0
    errors: int = 0
    buckets: np.ndarray | None = None

    _last: Counters = field(default=Counters(), init=False, repr=False, compare=False)  # reused while nothing was counted

    def counters(self) -> Counters:
        buckets = tuple(int(x) for x in self.buckets) if self.buckets is not None else ()
        last = self._last
        if not (last.requests == self.requests and last.errors == self.errors and last.latency_buckets == buckets):
            last = self._last = Counters(self.requests, self.errors, buckets)
        return last


@dataclass(frozen=True)
class WindowTotals:
    """What the results row counts: user traffic and cost over the scenario's window."""

    requests: int
    failed_requests: int
    exposed_requests: int
    replica_seconds: float
    users_affected: float = 0.0
    mirrored_requests: int = 0
    duplicated_writes: int = 0


@dataclass
class World:
    """One run of one strategy on one scenario: the state every actor reads and changes,
    the controller loop, and the traffic accounting between changes."""

    scenario: Scenario
    spec: StrategySpec
    release: ReleaseDraw
    streams: dict[str, np.random.Generator]
    record_timeline: bool = False
    shared_env: simpy.Environment | None = None  # region waves: every region's world in one environment
    gate: simpy.Event | None = None  # region waves: the controller starts once this succeeds
    track_exposure: bool = False  # region waves: count each user's requests the new version served (until detection)
    on_detected: Callable[[World], None] | None = None  # region waves: told when this region detects the release
    on_decided: Callable[[World, RolloutStatus], None] | None = None  # region waves: told after each reconcile

    env: simpy.Environment = field(init=False)
    cluster: Cluster = field(init=False)
    status: RolloutStatus = field(default_factory=RolloutStatus)
    traffic: dict[Role, VersionTraffic] = field(default_factory=lambda: {r: VersionTraffic() for r in ROLES})
    user_requests: int = 0
    exposed_requests: int = 0  # user requests answered by a version the release made worse
    total_requests: int = 0  # all traffic of the service under test (users + preview), for alerts
    total_errors: int = 0
    user_errors: int = 0
    peak_error_rate: float = 0.0
    router_weight: int = 0
    active: Role = Role.STABLE
    preview: Role | None = None
    schema: int = 0
    repaired: bool = False  # a roll-forward fix made every version work on the schema
    reverted_at: float | None = None  # a manual rollback after promotion finished
    commands: list[CommandRequest] = field(default_factory=list)
    impact_started_at: float | None = None  # the first moment users were harmed
    impact_ended_at: float | None = None  # the end of the last harm period
    impact_on: bool = False
    impact_periods: list[list[float]] = field(default_factory=list)  # [start, end] of each; end inf while on
    detected_at: float | None = None
    detected_by: str = ""
    alert_fired_at: float | None = None
    paged: bool = False
    human_action: str = ""
    human_busy: bool = False
    injected_errors: dict[str, list[float]] = field(default_factory=dict)  # service -> error rates of active faults
    injected_latency: dict[str, list[float]] = field(default_factory=dict)  # service -> added ms of active faults
    other_ready: dict[str, int] = field(default_factory=dict)  # services not under test: ready pods
    controller_retired: bool = False  # a person rolled a finished release back: the rollout is over
    timeline: list[TimelinePoint] = field(default_factory=list)
    pending_events: list[str] = field(default_factory=list)
    t: float = 0.0
    routes: dict[str, HeaderRoute | MirrorRoute] = field(default_factory=dict)  # managed routes in force
    flag_exposure: SetFlagExposure | None = None  # feature flag: who has it on (None: nobody)
    flag_traffic: dict[bool, VersionTraffic] = field(default_factory=lambda: {True: VersionTraffic(), False: VersionTraffic()})
    mirrored_requests: int = 0  # copies of user requests served by the new version for nobody
    duplicated_writes: int = 0  # mirrored writes the new version performed again (side effects)

    def __post_init__(self) -> None:
        self.env = self.shared_env if self.shared_env is not None else simpy.Environment()
        facts = scenario_facts(self.scenario)  # the same in every run of this scenario
        self.sut, self.replicas = facts.sut, self.spec.require_replicas()
        # the service's constants, read on every failure probability the world works out
        self._sut_name, self._baseline_error_rate = self.sut.name, self.sut.baseline_error_rate
        self._capacity_rps, self._request_timeout = self.sut.capacity_rps, self.sut.request_timeout
        self.kind = self.spec.strategy.kind  # a property of the spec, asked on every traffic split
        self.observed: Observation | None = None  # ``sim.adapter.observe``: the last observation, reused while nothing moved
        self.observed_versions: dict[Role, VersionObservation] = {}
        self.weights_memo: tuple | None = None  # ``sim.routing.weights``: the last split and what it holds for
        self.cluster = Cluster(self.sut, self.streams["pods"], self._wake_at,
                               crash_probability=crash_probability(self), on_terminate=self._in_flight_lost)
        self.cluster.start_ready(Role.STABLE, self.replicas, 0.0)
        self.changed = self.env.event()  # succeeds (and is replaced) whenever the world changes
        self.dependencies, self.arrival_factor = facts.dependencies, facts.arrival_factor
        canary = self.spec.strategy.canary
        self.baseline = VersionTraffic() if canary is not None and canary.baseline else None  # Kayenta's baseline pods
        self.baseline_pod_seconds = 0.0
        self.want_latency = _needs_latency(self.scenario, self.spec)
        self._latency = {Role.STABLE: facts.latency, Role.CANARY: facts.latency}
        self._bucket_count = facts.bucket_count
        if self.want_latency:
            for counters in (*self.traffic.values(), *([self.baseline] if self.baseline is not None else [])):
                counters.buckets = np.zeros(self._bucket_count, dtype=np.int64)
        migration = self.scenario.migration
        self.schema = migration.initial_schema if migration else 0
        self._leak_ticking = False
        self._timeline_marks: dict[Role, tuple[int, int, float]] = {}
        self._extra_streams: dict[str, np.random.Generator] = {}
        self._checks_due = False
        self.flagged = self.spec.strategy.feature_flag is not None
        self.groups, self.classes = facts.groups, facts.classes
        self.harm = UserHarm(self.groups)
        self.exposure = UserHarm(self.groups) if self.track_exposure else None  # "harm" = served by the new version
        self.flag_on_buckets = facts.no_flag_buckets
        self.monitor = self._make_monitor()
        self.probes = ReadinessProbes(self)
        self.health_check = ServiceHealthCheck(self)

    def extra_stream(self, purpose: str) -> np.random.Generator:
        """Randomness the run's named streams did not foresee, one stream per purpose
        (``EXTRA_STREAMS``): a fixed child of the pods stream's seed, made when first
        asked for, so it neither moves another stream's draws nor costs a run that never
        needs it."""
        rng = self._extra_streams.get(purpose)
        if rng is None:
            seed_seq = self.streams["pods"].bit_generator.seed_seq
            rng = self._extra_streams[purpose] = np.random.default_rng(child_seed(seed_seq, EXTRA_STREAMS.index(purpose)))
        return rng

    def _make_monitor(self) -> Monitor:
        return Monitor(self)

    # ================================================================== running

    def start(self, horizon: float) -> None:
        """Set every actor going at t = 0 (``env.run`` then moves time on)."""
        self.monitor.draw_history(self.extra_stream("history"))
        self.env.process(self._controller())
        if self.scenario.faults:  # (a process with nothing to do still costs its events)
            self.env.process(inject_faults(self))
        if self.scenario.migration is not None:
            self.env.process(run_migrations(self))
        for rule in self.scenario.monitoring.alerts:
            self.env.process(self.monitor.watch(rule))
        self._schedule_rate_changes(horizon)
        self._checks_follow()

    def run(self, horizon: float) -> None:
        """Run until the rollout and everything it set off have settled (at least the
        scenario's duration, at most ``horizon`` seconds)."""
        self.start(horizon)
        self.env.run(until=self.scenario.duration)
        self.close_window()
        while self.env.now < horizon and not self.settled():
            self.env.run(until=min(horizon, self.env.now + 600.0))
        self.sync()
        self.cluster.account_cost(self.env.now)

    def close_window(self) -> None:
        """Requests, failures and cost are counted over the scenario's window, the same
        for every strategy and run; the world runs on only to see restores through."""
        self.sync()
        self.cluster.account_cost(self.env.now)
        self.window = WindowTotals(self.user_requests, self.user_errors, self.exposed_requests,
                                   self.cluster.pod_seconds + self.baseline_pod_seconds,
                                   self.harm.affected_share(lambda: self.extra_stream("users")), self.mirrored_requests,
                                   self.duplicated_writes)

    def settled(self) -> bool:
        s = self.status
        rollout_done = s.completed or (s.aborted and s.restored_at is not None)
        # alerts still pending past the window are not waited for: the window is the
        # observation period every strategy gets; a paged human is always followed up
        return rollout_done and (s.requeue_at is None or self.controller_retired) and not self.human_busy

    # ================================================================== controller

    def _controller(self):
        if self.gate is not None:
            yield self.gate
        while not self.controller_retired:
            self.sync()
            obs = adapter.observe(self)
            before = self.status
            self.status, actions = reconcile(self.spec, before, obs)
            changed = adapter.apply_actions(self, actions)
            self._note_detection(before)
            if self.on_decided is not None:
                self.on_decided(self, before)
            if self.record_timeline:
                timeline_points.record_point(self, obs)
            if changed:
                yield self.env.timeout(0)  # the world changed: look again, as an informer event would
                continue
            wake = self.status.requeue_at
            if wake is None:
                yield self.changed
            else:
                yield FirstOf(self.env, self.env.timeout(max(0.0, wake - self.env.now)), self.changed)

    def _observe(self) -> Observation:
        return adapter.observe(self)

    def _note_detection(self, before: RolloutStatus) -> None:
        s = self.status
        if s.aborted and not before.aborted and self.detected_at is None:
            self.detected_at = self.env.now
            self.detected_by = DETECTED_BY_ABORT_CAUSE[s.abort_cause.value].value
            if self.on_detected is not None:
                self.on_detected(self)

    # ================================================================== wake-ups

    def changed_now(self) -> None:
        """The world changed: wake whoever waits for a change (the controller, alert rules
        sleeping while they cannot breach), and let the periodic checks know."""
        if self.changed.callbacks:  # (an event nobody waits on would run for nothing: it stays for the next change)
            self.changed.succeed()
            self.changed = self.env.event()
        if not self._checks_due:
            self._checks_due = True
            EndOfInstant(self.env, lambda _e: self._checks_follow())

    def _checks_follow(self) -> None:
        """Readiness probes and the health check fail as the world makes them from now on
        (called once the instant's changes are all made; checks at this very moment were
        sent before them)."""
        self._checks_due = False
        self.probes.world_changed()
        self.health_check.world_changed()

    def _wake_at(self, when: float) -> None:
        delay = max(0.0, when - self.env.now)
        self.env.timeout(delay).callbacks.append(lambda _e: (self.sync(), self.changed_now()))

    def _schedule_rate_changes(self, horizon: float) -> None:
        profile = self.scenario.traffic.profile
        if isinstance(profile, SpikesProfile):
            for t in rate_changes(profile, 0.0, horizon):
                self._wake_at(t)
        elif isinstance(profile, DiurnalProfile):
            self.env.process(self._tick(DIURNAL_TICK))

    def _tick(self, every: float):
        while True:
            yield self.env.timeout(every)
            self.sync()
            self.changed_now()

    # ================================================================== traffic

    def sync(self) -> None:
        """Account traffic and cost up to now, before anything changes."""
        now = self.env.now
        if now > self.t:
            self._advance_traffic(self.t, now)
            self.t = now

    def shares(self, now: float) -> dict[Role, float]:
        """Fraction of user traffic each version receives now (``sim.routing``)."""
        return routing.shares(self, now)

    def mirror_share(self, now: float) -> float:
        """Share of user requests a mirror route copies to the new version now."""
        return routing.mirror_share(self, now)

    def flag_on_share(self) -> float:
        """Share of user requests whose user has the feature flag on now."""
        return routing.flag_on_share(self)

    def _advance_traffic(self, t0: float, t1: float) -> None:
        """Account [t0, t1], an interval in which nothing changed (``sim.accounting``)."""
        accounting.advance_traffic(self, t0, t1)

    def _draw_traffic(self, role: Role, t0: float, users: float, preview: float, p: float,
                      flag: bool | None = None, baseline: bool = False) -> None:
        """Fast mode: the interval's requests of one version in one draw each (Poisson
        thinning: exact for constant p). The per-request reference overrides this.
        ``flag``: a feature-flag release also counts the users' requests by the flag's
        answer (None: no flag)."""
        rng = self.streams["traffic"]
        latency = self.latency_model(role, t0, flag_on=flag) if self.want_latency else None
        if users > 0:
            draw = draw_window(rng, users, p, latency)
            self._count(role, draw)
            self.user_requests += draw.requests
            self.user_errors += draw.errors
            if flag is not None or baseline:
                counters = self.baseline if baseline else self.flag_traffic[flag]
                counters.requests += draw.requests
                counters.errors += draw.errors
                if baseline and counters.buckets is not None and draw.latency_buckets:
                    counters.buckets += np.asarray(draw.latency_buckets, dtype=np.int64)
        if preview > 0:  # smoke traffic on the preview Service: analysed, but no user's request
            self._count(role, draw_window(rng, preview, p, latency))

    def _count(self, role: Role, draw) -> None:
        self.total_requests += draw.requests
        self.total_errors += draw.errors
        counters = self.traffic[role]
        counters.requests += draw.requests
        counters.errors += draw.errors
        if counters.buckets is not None and draw.latency_buckets:
            counters.buckets += np.asarray(draw.latency_buckets, dtype=np.int64)

    def _in_flight_lost(self, pods: list[Pod], now: float) -> None:
        """Serving pods are being deleted: their endpoints go at once, and the requests
        they are still answering get ``termination_grace`` to finish; those that would
        take longer fail. Requests reach a pod as a Poisson stream of rate λ, so those in
        flight with more than g left are Poisson with mean λ·E[(L - g)⁺] (L: response
        time), per pod."""
        grace_ms = 1000.0 * self.sut.pod_timing.termination_grace
        for role in ROLES:
            victims = sum(1 for p in pods if p.role is role)
            ready = self.cluster.ready_count(role, now)
            if not victims or not ready:
                continue
            per_pod = self.arrival_rate(role, now) / ready
            expected = victims * per_pod * self.latency_model(role, now).mean_excess(grace_ms) / 1000.0
            if expected < NEGLIGIBLE:
                continue  # (a grace period longer than every answer)
            counters = self.traffic[role]
            lost = min(int(self.extra_stream("grace").poisson(expected)), counters.requests - counters.errors)
            if lost <= 0:
                continue
            counters.errors += lost
            self.total_errors += lost
            if self.shares(now)[role] > 0:  # users' requests (a preview's are nobody's)
                self.user_errors += min(lost, self.user_requests - self.user_errors)

    def _track_impact(self, impact: bool, t0: float, t1: float) -> None:
        """Harm that stops and starts again is two periods: time to restore still runs
        from the first start to the last end, and ``impact_seconds`` sums the periods."""
        if impact and not self.impact_on:
            self.impact_on = True
            if self.impact_started_at is None:
                self.impact_started_at = t0
            self.impact_periods.append([t0, math.inf])
        elif not impact and self.impact_on:
            self.impact_on = False
            self.impact_ended_at = t0
            self.impact_periods[-1][1] = t0

    def impact_seconds(self, until: float) -> float:
        """Time users were harmed before ``until`` (a period still going counts to it)."""
        return sum(max(0.0, min(end, until) - start) for start, end in self.impact_periods)

    # ================================================================== failure model

    def arrival_rate(self, role: Role, now: float, shares: dict[Role, float] | None = None) -> float:
        """Requests per second reaching ``role``'s version now: its share of the users',
        or the preview traffic while it is a preview without users (``shares``: those of
        now, when the caller has them)."""
        share = (shares or self.shares(now))[role]
        if role is Role.CANARY and self.routes:
            share += self.mirror_share(now)  # mirrored copies load its pods as much as users do
        preview = self.scenario.traffic.preview_rps if role is self.preview and share == 0 else 0.0
        return rate_at(self.scenario.traffic.profile, self.scenario.traffic.rps, now) * self.arrival_factor * share + preview

    def failure_probability(self, role: Role, arrival_rps: float, now: float, *,
                            schedule: bool = True, flag_on: bool | None = None) -> tuple[float, bool]:
        """A version's per-request failure probability now, and whether the release is
        to blame for any of it (its defect, or a schema it cannot run on). ``schedule``:
        a leak may schedule its re-evaluations (the traffic accounting and alert rules
        do; the periodic checks only look, so they cannot move those ticks)."""
        if flag_on is None and role is Role.CANARY and self._behind_flag():
            # an observer's average request (alert rules, the health check): users with
            # the flag on and off in their proportions
            on = self.flag_on_share()
            p_on, harmed_on = self.failure_probability(role, arrival_rps, now, schedule=schedule, flag_on=True)
            p_off, harmed_off = self.failure_probability(role, arrival_rps, now, schedule=schedule, flag_on=False)
            return on * p_on + (1.0 - on) * p_off, (harmed_on and on > 0) or harmed_off
        errors = self.injected_errors.get(self._sut_name)
        causes = [self._baseline_error_rate, combine_failure(*errors) if errors else _NOTHING_INJECTED]
        if arrival_rps > 0:
            ready = self.cluster.ready_count(role, now)
            causes.append(overload(arrival_rps, ready, self._capacity_rps, self._request_timeout).failure_probability)
        harmed = False
        if role is Role.CANARY and self.release.defect is not None and not self.repaired and (
                flag_on is not False or not self._behind_flag()):
            extra, harmed = defect_failure(self, arrival_rps, now, schedule)
            causes.append(extra)
        if self.scenario.migration is not None and not self.repaired and not self.schema_ok(role):
            causes.append(compute_schema_error_rate(self.release))
            harmed = True
        causes.append(0.0 if self.dependencies.graph is None else self._downstream_failure())
        return combine_failure(*causes), harmed

    def latency_model(self, role: Role, now: float, flag_on: bool | None = None) -> LatencyModel:
        """``role``'s response time now: the service's, slowed by the release's defect (on
        the new version) and by injected latency. Behind a feature flag the defect slows
        only users with the flag on; an observer's average request (``flag_on`` None) is
        taken as slowed once more than 1% of requests are (what a p99 sees)."""
        base = self._latency[role]
        multiplier, added = 1.0, sum(self.injected_latency.get(self.sut.name, ()))
        if flag_on is None and self._behind_flag():
            flag_on = self.flag_on_share() > 0.01
        if role is Role.CANARY and self.release.defect is not None and not self.repaired and (
                flag_on is not False or not self._behind_flag()):
            multiplier, slower = defect_slowdown(self, now)
            added += slower
        if multiplier == 1.0 and added == 0.0:
            return base
        return LatencyModel(base.median_ms, base.sigma, multiplier=multiplier, added_ms=added)

    def _behind_flag(self) -> bool:
        """Whether the release's defect sits behind a feature flag this rollout has."""
        return self.flagged and bool(getattr(self.release.defect, "behind_flag", False))

    def start_leak_ticks(self, first: float) -> None:
        """A leak grows from ``first`` on: re-evaluate the world then and every LEAK_TICK."""
        if not self._leak_ticking and math.isfinite(first):
            self._leak_ticking = True
            self._wake_at(first)
            self.env.process(self._tick(LEAK_TICK))

    # -- schema and the services around ---------------------------------------------------

    def schema_ok(self, role: Role) -> bool:
        """Whether ``role``'s version works on the schema the database has now."""
        return compute_schema_ok(self.scenario.migration, self.release, self.schema, role)

    def _injected_error(self, service: str) -> float:
        errors = self.injected_errors.get(service)
        return combine_failure(*errors) if errors else _NOTHING_INJECTED

    def _own_failures(self) -> dict[str, float]:
        user_rate = rate_at(self.scenario.traffic.profile, self.scenario.traffic.rps, self.env.now)
        return self.dependencies.own_failures(user_rate, self.other_ready, self._injected_error)

    def _downstream_failure(self) -> float:
        """Failures the service under test inherits from the services it calls."""
        if self.dependencies.graph is None:
            return 0.0
        return self.dependencies.downstream_failure(self._own_failures())

    def _through_callers(self, p_sut: float) -> float:
        """The user-facing failure probability when users enter through callers of the
        service under test (the blast radius of its defect)."""
        if not self.dependencies.has_callers:
            return p_sut
        return self.dependencies.through_callers(p_sut, self._own_failures())

# ---------------------------------------------------------------------- helpers


def _needs_latency(scenario: Scenario, spec: StrategySpec) -> bool:
    if any(rule.metric == "latency_p99" for rule in scenario.monitoring.alerts):
        return True
    for template in spec.analysis_templates:
        for metric in template.metrics:
            signals = [metric.signal] + [s.signal for s in (metric.judge.mann_whitney.signals if metric.judge.mann_whitney else ())]
            if Signal.LATENCY in signals:
                return True
    return False
