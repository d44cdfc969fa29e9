"""One simulated rollout: a SimPy world that drives the shared controller, unchanged.

Actors are generator processes (SimPy style): the controller calls
``strategies.reconcile`` whenever the world changes or the controller asked to be woken
(``status.requeue_at``) and applies its actions; the fault injector, alert rules, the
on-call human and the migration runner act at their own times. Pods become ready on
scheduled events (``sim.pods``).

Traffic is never simulated request by request here (that is ``sim.reference``): the
world is piecewise constant between two state changes, so before any change the
traffic since the previous one is drawn in one go -- requests ~ Poisson(Λ), failures ~
Binomial(requests, p) (Poisson thinning), latencies ~ Multinomial over the histogram
buckets -- by ``_advance_traffic``. Every state change goes through ``_sync`` first.

What is measured for the results table:

- *impact*: time during which users get answers made worse by the release (its defect,
  or a schema the serving version does not support). Time to restore runs from the first
  such moment to the end of the last one.
- *detection*: the first of an analysis abort, a progress-deadline abort, or an alert.
- *cost*: pod-seconds of both versions of the service under test.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import networkx as nx
import numpy as np
import simpy

from rolloutlab.results.table import DETECTED_BY_ABORT_CAUSE, DetectedBy
from rolloutlab.results.timeline import TimelinePoint
from rolloutlab.scenarios.release import ReleaseDraw
from rolloutlab.scenarios.schema import (
    CrashOnStartDefect,
    DependencyFailureFault,
    DiurnalProfile,
    ErrorRateDefect,
    FullLoadOnlyDefect,
    IncompatibleMigrationDefect,
    LatencyDefect,
    LatencyInjectionFault,
    LeakDefect,
    NodeLossFault,
    PodKillFault,
    Scenario,
    SpikesProfile,
    ZoneOutageFault,
)
from rolloutlab.sim.pods import Cluster
from rolloutlab.sim.queueing import overload
from rolloutlab.sim.sampling import sample
from rolloutlab.sim.traffic import (
    LatencyModel,
    callees_first,
    combine_failure,
    draw_window,
    expected_arrivals,
    propagate_failures,
    rate_at,
    rate_changes,
)
from rolloutlab.strategies import (
    Command,
    CommandRequest,
    Counters,
    Observation,
    Role,
    RolloutStatus,
    StrategySpec,
    VersionObservation,
    compute_declared_weight,
    reconcile,
)
from rolloutlab.strategies.actions import Event, Promote, ScaleVersion, SetCanaryWeight, SwitchActive, SwitchPreview
from rolloutlab.strategies.observation import WindowStats
from rolloutlab.strategies.spec import Signal, StrategyKind, TrafficRouting

ROLES = (Role.STABLE, Role.CANARY)
LEAK_TICK = 30.0  # seconds between re-evaluations of a leak's growing error rate
DIURNAL_TICK = 300.0
ZONE_EVICTION_DELAY = 300.0  # Kubernetes' default pod eviction timeout for NotReady nodes  # seconds between re-evaluations of a diurnal rate (overload follows the rate)


@dataclass
class VersionTraffic:
    """Cumulative counters the runner reports for one version (user + preview traffic)."""

    requests: int = 0
    errors: int = 0
    buckets: np.ndarray | None = None

    def counters(self) -> Counters:
        buckets = tuple(int(x) for x in self.buckets) if self.buckets is not None else ()
        return Counters(self.requests, self.errors, buckets)


@dataclass(frozen=True)
class WindowTotals:
    """What the results row counts: user traffic and cost over the scenario's window."""

    requests: int
    failed_requests: int
    exposed_requests: int
    replica_seconds: float


@dataclass
class World:
    scenario: Scenario
    spec: StrategySpec
    release: ReleaseDraw
    streams: dict[str, np.random.Generator]
    record_timeline: bool = False

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
    impact_started_at: float | None = None
    impact_ended_at: float | None = None
    impact_on: bool = False
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

    def __post_init__(self) -> None:
        self.env = simpy.Environment()
        self.sut = self.scenario.service_under_test
        self.replicas = self.spec.require_replicas()
        self.cluster = Cluster(self.sut, self.streams["pods"], self._wake_at,
                               crash_probability=self._crash_probability())
        self.cluster.start_ready(Role.STABLE, self.replicas, 0.0)
        self._changed = self.env.event()
        self._graph = _dependency_graph(self.scenario)
        if self._graph is not None:
            self._order = callees_first(self._graph)
            # seen from its callers, the service under test fails as its versions do
            # (their own failures already include what its callees cause)
            self._upstream = self._graph.copy()
            self._upstream.remove_edges_from(list(self._graph.out_edges(self.sut.name)))
            self._upstream_order = callees_first(self._upstream)
        self._service_arrivals = _arrival_factors(self.scenario, self._graph)
        self._arrival_factor = self._service_arrivals[self.sut.name]
        self._entries = [n for n in self._graph.nodes if self._graph.in_degree(n) == 0] if self._graph is not None else []
        self._want_latency = _needs_latency(self.scenario, self.spec)
        base_latency = LatencyModel.from_latency(self.sut.latency)
        self._latency = {Role.STABLE: base_latency, Role.CANARY: base_latency}
        self._bucket_count = len(base_latency.bucket_probabilities())
        if self._want_latency:
            for role in ROLES:
                self.traffic[role].buckets = np.zeros(self._bucket_count, dtype=np.int64)
        migration = self.scenario.migration
        self.schema = migration.initial_schema if migration else 0
        self._leak_ticking = False
        self._segments: deque = deque()
        self._split_cache: dict[float, tuple[int, int]] = {}
        self._latency_snapshots: deque = deque()
        self._timeline_marks: dict[Role, tuple[int, int, float]] = {}
        self._longest_window = max((r.window for r in self.scenario.monitoring.alerts), default=0.0)

    # ================================================================== running

    def run(self, horizon: float) -> None:
        """Run until the rollout and everything it set off have settled (at least the
        scenario's duration, at most ``horizon`` seconds)."""
        self.env.process(self._controller())
        self.env.process(self._faults())
        self.env.process(self._migrations())
        for rule in self.scenario.monitoring.alerts:
            self.env.process(self._alert(rule))
        self._schedule_rate_changes(horizon)
        self.env.run(until=self.scenario.duration)
        self._sync()
        self.cluster.account_cost(self.env.now)
        # Requests, failures and cost are counted over the scenario's window, the same
        # for every strategy and run; the world runs on only to see restores through.
        self.window = WindowTotals(self.user_requests, self.user_errors, self.exposed_requests, self.cluster.pod_seconds)
        while self.env.now < horizon and not self._settled():
            self.env.run(until=min(horizon, self.env.now + 600.0))
        self._sync()
        self.cluster.account_cost(self.env.now)

    def _settled(self) -> bool:
        s = self.status
        rollout_done = s.completed or (s.aborted and s.restored_at is not None)
        # alerts still pending past the window are not waited for: the window is the
        # observation period every strategy gets; a paged human is always followed up
        return rollout_done and (s.requeue_at is None or self.controller_retired) and not self.human_busy

    # ================================================================== controller

    def _controller(self):
        while not self.controller_retired:
            self._sync()
            obs = self._observe()
            before = self.status
            self.status, actions = reconcile(self.spec, before, obs)
            self._apply(actions)
            self._note_detection(before)
            if self.record_timeline:
                self._record(obs)
            if any(not isinstance(a, Event) for a in actions):
                yield self.env.timeout(0)  # the world changed: look again, as an informer event would
                continue
            wake = self.status.requeue_at
            if wake is None:
                yield self._changed
            else:
                yield self.env.timeout(max(0.0, wake - self.env.now)) | self._changed

    def _observe(self) -> Observation:
        now = self.env.now
        versions = []
        for role in ROLES:
            versions.append(VersionObservation(
                replicas=self.cluster.desired[role],
                ready=(ready := self.cluster.ready_count(role, now)),
                available=ready,
                counters=self.traffic[role].counters(),
            ))
        return Observation(now, versions[0], versions[1], tuple(self.commands))

    def _apply(self, actions) -> None:
        now = self.env.now
        for action in actions:
            if isinstance(action, ScaleVersion):
                self.cluster.scale(action.role, action.replicas, now)
            elif isinstance(action, SetCanaryWeight):
                self.router_weight = action.weight
            elif isinstance(action, SwitchActive):
                self.active = action.role
            elif isinstance(action, SwitchPreview):
                self.preview = action.role
            elif isinstance(action, Promote):
                self._run_migrations_at("after_promotion")
            elif isinstance(action, Event) and self.record_timeline:
                self.pending_events.append(f"{action.reason.value}: {action.message}")
        if any(not isinstance(a, Event) for a in actions):
            self._changed_now()  # observers (alert rules) look again; the controller re-loops itself

    def _note_detection(self, before: RolloutStatus) -> None:
        s = self.status
        if s.aborted and not before.aborted and self.detected_at is None:
            self.detected_at = self.env.now
            self.detected_by = DETECTED_BY_ABORT_CAUSE[s.abort_cause.value].value

    # ================================================================== wake-ups

    def _changed_now(self) -> None:
        if not self._changed.triggered:
            self._changed.succeed()
            self._changed = self.env.event()

    def _wake_at(self, when: float) -> None:
        delay = max(0.0, when - self.env.now)
        self.env.timeout(delay).callbacks.append(lambda _e: (self._sync(), self._changed_now()))

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
            self._sync()
            self._changed_now()

    # ================================================================== traffic

    def _sync(self) -> None:
        """Account traffic and cost up to now, before anything changes."""
        now = self.env.now
        if now > self.t:
            self._advance_traffic(self.t, now)
            self.t = now

    def shares(self, now: float) -> dict[Role, float]:
        """Fraction of user traffic each version receives now (the effective weight)."""
        if self.reverted_at is not None and now >= self.reverted_at:
            return {Role.STABLE: 1.0, Role.CANARY: 0.0}
        kind = self.spec.strategy.kind
        if kind is StrategyKind.BLUE_GREEN:
            return {Role.STABLE: float(self.active is Role.STABLE), Role.CANARY: float(self.active is Role.CANARY)}
        if kind is StrategyKind.CANARY and self.spec.strategy.canary.traffic_routing is TrafficRouting.ROUTER:
            w = self.router_weight / 100.0
            return {Role.STABLE: 1.0 - w, Role.CANARY: w}
        stable = self.cluster.ready_count(Role.STABLE, now)
        canary = self.cluster.ready_count(Role.CANARY, now)
        total = stable + canary
        if total == 0:
            return {Role.STABLE: 1.0, Role.CANARY: 0.0}  # nothing ready: requests fail at the Service
        return {Role.STABLE: stable / total, Role.CANARY: canary / total}

    def _advance_traffic(self, t0: float, t1: float) -> None:
        """Account [t0, t1], an interval in which nothing changed: cost, traffic, impact."""
        dt = t1 - t0
        self.cluster.account_cost(t1)
        req0, err0 = self.total_requests, self.total_errors
        scenario = self.scenario
        sut_expected = expected_arrivals(scenario.traffic.profile, scenario.traffic.rps, t0, t1) * self._arrival_factor
        shares = self.shares(t0)
        mean_rate = sut_expected / dt
        p_user = 0.0
        impact = False
        for role in ROLES:
            share = shares[role]
            preview = scenario.traffic.preview_rps if role is self.preview and share == 0 else 0.0
            if share == 0 and preview == 0:
                continue
            p, harmed = self._failure_probability(role, mean_rate * share + preview, t0)
            p_user += share * p
            impact = impact or (harmed and share > 0)
            before = self.user_requests
            self._draw_traffic(role, t0, sut_expected * share, preview * dt, p)
            if harmed:
                self.exposed_requests += self.user_requests - before
        if self.scenario.monitoring.alerts:
            self._log_segment(t0, t1, req0, err0)
        p_user = self._through_callers(p_user)
        self.peak_error_rate = max(self.peak_error_rate, p_user)
        self._track_impact(impact, t0, t1)

    def _draw_traffic(self, role: Role, t0: float, users: float, preview: float, p: float) -> None:
        """Fast mode: the interval's requests of one version in one draw each (Poisson
        thinning: exact for constant p). The per-request reference overrides this."""
        rng = self.streams["traffic"]
        latency = self._latency_model(role, t0) if self._want_latency else None
        if users > 0:
            draw = draw_window(rng, users, p, latency)
            self._count(role, draw)
            self.user_requests += draw.requests
            self.user_errors += draw.errors
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

    def _log_segment(self, t0: float, t1: float, req0: int, err0: int) -> None:
        """Keep the traffic of recent intervals, for alert windows that start inside one."""
        segments = self._segments
        segments.append((t0, t1, req0, err0, self.total_requests - req0, self.total_errors - err0))
        horizon = t1 - self._longest_window - 1.0
        while segments and segments[0][1] < horizon:
            segments.popleft()

    def _track_impact(self, impact: bool, t0: float, t1: float) -> None:
        if impact and not self.impact_on:
            self.impact_on = True
            if self.impact_started_at is None:
                self.impact_started_at = t0
        elif not impact and self.impact_on:
            self.impact_on = False
            self.impact_ended_at = t0

    # ================================================================== failure model

    def _failure_probability(self, role: Role, arrival_rps: float, now: float) -> tuple[float, bool]:
        """A version's per-request failure probability now, and whether the release is
        to blame for any of it (its defect, or a schema it cannot run on)."""
        sut = self.sut
        ready = self.cluster.ready_count(role, now)
        causes = [sut.baseline_error_rate, self._injected_error(sut.name)]
        if arrival_rps > 0:
            causes.append(overload(arrival_rps, ready, sut.capacity_rps, sut.request_timeout).failure_probability)
        harmed = False
        if role is Role.CANARY and self.release.defect is not None and not self.repaired:
            extra, harmed = self._defect_effect(arrival_rps, now)
            causes.append(extra)
        if not self.repaired and not self._schema_ok(role):
            causes.append(self._schema_error_rate())
            harmed = True
        causes.append(self._downstream_failure())
        return combine_failure(*causes), harmed

    def _defect_effect(self, arrival_rps: float, now: float) -> tuple[float, bool]:
        d = self.release.defect
        if isinstance(d, ErrorRateDefect):
            return d.error_rate, d.error_rate > 0
        if isinstance(d, LatencyDefect):
            return 0.0, True  # slower answers hurt users even when none fail
        if isinstance(d, LeakDefect):
            onset = self._canary_since() + d.after
            if now < onset:
                self._start_leak_ticks(onset)
                return 0.0, False
            self._start_leak_ticks(now)
            rate = min(d.max_error_rate, d.error_rate_per_minute * (now - onset) / 60.0)
            return rate, rate > 0 or d.latency_growth_per_minute > 0
        if isinstance(d, FullLoadOnlyDefect):
            share = self.shares(now)[Role.CANARY]
            ready = max(1, self.cluster.ready_count(Role.CANARY, now))
            hot = share >= d.traffic_share_threshold - 1e-9 or (
                d.per_pod_rps_threshold is not None and arrival_rps / ready >= d.per_pod_rps_threshold)
            return (d.error_rate, True) if hot else (0.0, False)
        return 0.0, False  # crash_on_start acts on pods; incompatible_migration on the schema

    def _latency_model(self, role: Role, now: float) -> LatencyModel:
        base = self._latency[role]
        multiplier, added = 1.0, sum(self.injected_latency.get(self.sut.name, ()))
        d = self.release.defect
        if role is Role.CANARY and d is not None and not self.repaired:
            if isinstance(d, LatencyDefect):
                multiplier, added = d.multiplier, added + d.added_ms
            elif isinstance(d, LeakDefect):
                onset = self._canary_since() + d.after
                if now >= onset:
                    multiplier = 1.0 + d.latency_growth_per_minute * (now - onset) / 60.0
        if multiplier == 1.0 and added == 0.0:
            return base
        return LatencyModel(base.median_ms, base.sigma, multiplier=multiplier, added_ms=added)

    def _canary_since(self) -> float:
        pods = self.cluster.pods[Role.CANARY]
        return min((p.app_up_at for p in pods), default=math.inf)

    def _start_leak_ticks(self, first: float) -> None:
        if not self._leak_ticking and math.isfinite(first):
            self._leak_ticking = True
            self._wake_at(first)
            self.env.process(self._tick(LEAK_TICK))

    def _crash_probability(self) -> float:
        d = self.release.defect
        return d.crash_probability if isinstance(d, CrashOnStartDefect) else 0.0

    # -- schema ------------------------------------------------------------------------

    def _schema_ok(self, role: Role) -> bool:
        migration = self.scenario.migration
        if migration is None:
            return True
        compat = migration.compatibility
        allowed = compat.old if role is Role.STABLE else compat.new
        if not allowed.allows(self.schema):
            return False
        d = self.release.defect
        if isinstance(d, IncompatibleMigrationDefect):
            required = d.required_schema if d.required_schema is not None else migration.final_schema
            if role is Role.CANARY and self.schema < required:
                return False
            if role is Role.STABLE and d.breaks_old and self.schema >= required:
                return False
        return True

    def _schema_error_rate(self) -> float:
        d = self.release.defect
        return d.error_rate if isinstance(d, IncompatibleMigrationDefect) else 1.0

    def _migrations(self):
        migration = self.scenario.migration
        if migration is None:
            return
        self._run_migrations_at("before_deploy")
        self._run_migrations_at("with_deploy")
        timed = sorted((step.at, i) for i, step in enumerate(migration.steps) if isinstance(step.at, float))
        for at, i in timed:
            yield self.env.timeout(max(0.0, at - self.env.now))
            self._apply_migration_step(i)

    def _run_migrations_at(self, when: str) -> None:
        migration = self.scenario.migration
        if migration is None:
            return
        for i, step in enumerate(migration.steps):
            if step.at == when:
                self._apply_migration_step(i)

    def _apply_migration_step(self, index: int) -> None:
        self._sync()
        self.schema = max(self.schema, self.scenario.migration.initial_schema + index + 1)
        self._changed_now()

    # -- dependencies --------------------------------------------------------------------

    def _downstream_failure(self) -> float:
        """Failures the service under test inherits from the services it calls."""
        if self._graph is None:
            return 0.0
        own = self._own_failures()
        own[self.sut.name] = 0.0
        return propagate_failures(self._graph, own, order=self._order)[self.sut.name]

    def _through_callers(self, p_sut: float) -> float:
        """The user-facing failure probability when users enter through callers of the
        service under test (the blast radius of its defect)."""
        if self._graph is None or not any(True for _ in self._graph.predecessors(self.sut.name)):
            return p_sut
        own = self._own_failures()
        own[self.sut.name] = p_sut
        total = propagate_failures(self._upstream, own, order=self._upstream_order)
        return sum(total[n] for n in self._entries) / len(self._entries)

    def _own_failures(self) -> dict[str, float]:
        """Each other service's failure probability on its own: baseline, injected faults,
        and overload of its ready pods (node loss and pod kills take some away)."""
        own = {}
        user_rate = rate_at(self.scenario.traffic.profile, self.scenario.traffic.rps, self.env.now)
        for service in self.scenario.services:
            if service.name == self.sut.name:
                continue
            ready = self.other_ready.get(service.name, service.replicas)
            arrivals = user_rate * self._service_arrivals[service.name]
            load = overload(arrivals, ready, service.capacity_rps, service.request_timeout).failure_probability if arrivals > 0 else 0.0
            own[service.name] = combine_failure(service.baseline_error_rate, self._injected_error(service.name), load)
        return own

    def _injected_error(self, service: str) -> float:
        return combine_failure(*self.injected_errors.get(service, ()))

    # ================================================================== faults

    def _faults(self):
        cluster = self.cluster
        for fault in sorted(self.scenario.faults, key=lambda f: f.at):
            yield self.env.timeout(max(0.0, fault.at - self.env.now))
            self._sync()
            now = self.env.now
            on_sut = getattr(fault, "service", None) in (None, self.sut.name)
            if isinstance(fault, PodKillFault):
                if on_sut:
                    role = None if fault.version == "any" else Role(fault.version)
                    cluster.kill(role, fault.count, now)
                else:
                    other = self.scenario.service(fault.service)
                    self.env.process(self._other_pods_out(other, fault.count, self._mean_start(other)))
            elif isinstance(fault, ZoneOutageFault):
                if fault.zone in self.sut.zones:
                    nodes = cluster.nodes_in_zone(fault.zone)
                    cluster.lose_nodes(nodes, now)
                    self.env.process(self._node_recovery(nodes, ZONE_EVICTION_DELAY, fault.duration))
                for other in self.scenario.services:
                    if other.name != self.sut.name and fault.zone in other.zones:
                        lost = round(other.replicas / len(other.zones))
                        self.env.process(self._other_pods_out(other, lost, min(fault.duration, ZONE_EVICTION_DELAY + self._mean_start(other))))
            elif isinstance(fault, NodeLossFault):
                if on_sut:
                    picks = self.streams["faults"].choice(cluster.node_count, size=min(fault.count, cluster.node_count), replace=False)
                    nodes = sorted(int(n) for n in picks)
                    cluster.lose_nodes(nodes, now)
                    self.env.process(self._node_recovery(nodes, fault.eviction_delay, fault.duration))
                else:
                    other = self.scenario.service(fault.service)
                    lost = min(other.replicas, round(other.replicas * fault.count / (other.nodes or len(other.zones))))
                    back = fault.eviction_delay + self._mean_start(other)
                    self.env.process(self._other_pods_out(other, lost, back if fault.duration is None else min(fault.duration, back)))
            elif isinstance(fault, DependencyFailureFault):
                self.env.process(self._for_a_while(self.injected_errors, fault.service, fault.error_rate, fault.duration))
            elif isinstance(fault, LatencyInjectionFault):
                self.env.process(self._for_a_while(self.injected_latency, fault.service, fault.added_ms, fault.duration))
            self._changed_now()

    @staticmethod
    def _mean_start(service) -> float:
        """Typical time for a replacement pod of ``service`` to become ready."""
        timing = service.pod_timing
        return timing.schedule_delay.expected() + timing.start_delay.expected() + timing.readiness.success_threshold * timing.readiness.period

    def _node_recovery(self, nodes: list[int], eviction: float, duration: float | None):
        start = self.env.now
        if duration is None or duration > eviction:
            yield self.env.timeout(eviction)
            self._sync()
            self.cluster.evict(nodes, self.env.now)
            self._changed_now()
        if duration is not None:
            yield self.env.timeout(max(0.0, start + duration - self.env.now))
            self._sync()
            self.cluster.restore_nodes(nodes, self.env.now)
            self._changed_now()

    def _for_a_while(self, table: dict[str, list[float]], service: str, value: float, duration: float):
        """An injected fault on ``service`` for ``duration``; faults overlap independently."""
        self._sync()
        table.setdefault(service, []).append(value)
        self._changed_now()
        yield self.env.timeout(duration)
        self._sync()
        table[service].remove(value)
        self._changed_now()

    def _other_pods_out(self, service, lost: int, back_after: float):
        """Pods of a service not under test (modelled as capacity) out for a while."""
        self._sync()
        self.other_ready[service.name] = max(0, self.other_ready.get(service.name, service.replicas) - lost)
        self._changed_now()
        yield self.env.timeout(back_after)
        self._sync()
        self.other_ready[service.name] = min(service.replicas, self.other_ready[service.name] + lost)
        self._changed_now()

    # ================================================================== alerts and people

    def _alert(self, rule):
        """A Prometheus-style rule on the service under test: the error rate (or p99
        latency) over ``window``, evaluated every ``evaluation_interval``, above
        ``threshold`` for ``for`` seconds fires and pages a human.

        Evaluations that cannot breach are skipped: while the world stays in a state whose
        expected error rate is so far below the threshold that a window exceeding it is
        out of reach (more than 8 standard deviations, see ``_alert_cannot_breach``), the
        rule sleeps until the world changes. The window's start is then read from the
        traffic log, splitting a logged interval exactly (``_total_at``)."""
        interval = rule.evaluation_interval
        pending_since: float | None = None
        while self.alert_fired_at is None:
            if pending_since is None and self._alert_cannot_breach(rule):
                yield self._changed
                continue
            now = self.env.now
            tick = (math.floor(now / interval + 1e-9) + 1) * interval
            yield self.env.timeout(tick - now)
            self._sync()
            now = self.env.now
            value = self._window_value(rule, now)
            if value is None or value <= rule.threshold:
                pending_since = None
                continue
            pending_since = now if pending_since is None else pending_since
            if now - pending_since >= rule.for_:
                self.alert_fired_at = now
                if self.detected_at is None:
                    self.detected_at, self.detected_by = now, DetectedBy.ALERT.value
                if self.record_timeline:
                    self.pending_events.append(f"AlertFired: {rule.name}")
                self.env.process(self._on_call())

    def _alert_cannot_breach(self, rule) -> bool:
        if rule.metric != "error_rate":
            return False  # latency alerts are evaluated at every tick
        now = self.env.now
        rate = rate_at(self.scenario.traffic.profile, self.scenario.traffic.rps, now) * self._arrival_factor
        shares = self.shares(now)
        p = sum(shares[r] * self._failure_probability(r, rate * shares[r], now)[0] for r in ROLES if shares[r] > 0)
        n = rate * rule.window
        return p < rule.threshold and n * rule.threshold >= n * p + 8.0 * math.sqrt(n * p + 1.0) + 8.0

    def _window_value(self, rule, now: float) -> float | None:
        start = max(0.0, now - rule.window)
        if rule.metric == "error_rate":
            req0, err0 = self._total_at(start)
            requests, errors = self.total_requests - req0, self.total_errors - err0
            return errors / requests if requests > 0 else None
        if not self._want_latency:
            return None
        snapshots = self._latency_snapshots
        snapshots.append((now, self.traffic[Role.STABLE].buckets + self.traffic[Role.CANARY].buckets))
        while len(snapshots) > 1 and snapshots[1][0] <= start:
            snapshots.popleft()
        then, current = snapshots[0][1], snapshots[-1][1]
        diff = tuple(int(x) for x in (current - then)) if len(snapshots) > 1 else tuple(int(x) for x in current)
        return WindowStats(now - start, sum(diff), 0, diff).latency_quantile(0.99)

    def _total_at(self, when: float) -> tuple[int, int]:
        """Cumulative (requests, errors) of the service under test at ``when``. Inside a
        logged interval of n requests and e errors, the share before ``when`` is drawn
        as Poisson arrivals are distributed given their count: requests ~ Binomial(n,
        fraction), errors among them ~ Hypergeometric (exact, and consistent with the
        totals already counted). Each split is remembered, so a time has one answer."""
        if when in self._split_cache:
            return self._split_cache[when]
        for seg in self._segments:
            t0, t1, req0, err0, n, e = seg
            if t0 <= when <= t1:
                if when == t0 or n == 0:
                    result = (req0, err0)
                elif when == t1:
                    result = (req0 + n, err0 + e)
                else:
                    rng = self.streams["alerts"]
                    k = int(rng.binomial(n, (when - t0) / (t1 - t0)))
                    ek = int(rng.hypergeometric(e, n - e, k)) if k and e else 0
                    result = (req0 + k, err0 + ek)
                self._split_cache[when] = result
                return result
        return (0, 0) if not self._segments or when < self._segments[0][0] else (self.total_requests, self.total_errors)

    def _on_call(self):
        """The paged engineer: after their response time, roll back what is rolling out,
        roll back a finished release, or, when the schema makes the old version fail too,
        repair forward."""
        if self.paged:
            return
        self.paged = self.human_busy = True
        human = self.streams["human"]
        yield self.env.timeout(sample(self.scenario.response.response_time, human))
        self._sync()
        s = self.status
        if not self._schema_ok(Role.STABLE) and not self.repaired:
            self.human_action = "repair_forward"
            if not s.completed and not s.aborted:
                self.commands.append(CommandRequest(len(self.commands) + 1, Command.ABORT))
                self._changed_now()
            repair = self.scenario.migration.rollforward_repair_time
            yield self.env.timeout(sample(repair, human))
            self._sync()
            self.repaired = True
        elif not s.completed and not s.aborted:
            self.human_action = "abort"
            self.commands.append(CommandRequest(len(self.commands) + 1, Command.ABORT))
        elif s.completed and self.reverted_at is None:
            # The rollout is over; rolling back a finished release is a new deployment of
            # the old version, done by a person: the controller has no say any more.
            self.human_action = "rollback"
            self.controller_retired = True
            duration = sample(self.scenario.response.rollback_duration, human)
            self.cluster.scale(Role.STABLE, self.replicas, self.env.now)  # the old version comes back
            yield self.env.timeout(duration)
            self._sync()
            self.reverted_at = self.env.now
            self.cluster.scale(Role.CANARY, 0, self.env.now)
        self.human_busy = False
        self._changed_now()

    # ================================================================== timeline

    def _record(self, obs: Observation) -> None:
        """A timeline point; error rates are over the interval since the previous point
        (a point with no new requests for a version repeats its last rate)."""
        shares = self.shares(self.env.now)
        rates = {}
        for r in ROLES:
            requests, errors = self.traffic[r].requests, self.traffic[r].errors
            last_requests, last_errors, last_rate = self._timeline_marks.get(r, (0, 0, 0.0))
            rate = (errors - last_errors) / (requests - last_requests) if requests > last_requests else last_rate
            self._timeline_marks[r] = (requests, errors, rate)
            rates[r] = rate
        self.timeline.append(TimelinePoint(
            at=self.env.now,
            declared_weight=compute_declared_weight(self.spec, self.status, obs),
            effective_weight=100.0 * shares[Role.CANARY],
            stable_ready=obs.stable.ready, canary_ready=obs.canary.ready,
            stable_error_rate=rates[Role.STABLE], canary_error_rate=rates[Role.CANARY],
            events=tuple(self.pending_events),
        ))
        self.pending_events.clear()


# ---------------------------------------------------------------------- helpers


def _dependency_graph(scenario: Scenario) -> nx.DiGraph | None:
    if not scenario.dependencies:
        return None
    graph = nx.DiGraph()
    graph.add_nodes_from(s.name for s in scenario.services)
    for d in scenario.dependencies:
        graph.add_edge(d.caller, d.callee, calls_per_request=d.calls_per_request, error_propagation=d.error_propagation)
    return graph


def _arrival_factors(scenario: Scenario, graph: nx.DiGraph | None) -> dict[str, float]:
    """Requests each service receives per user request: users enter at the entry services
    (nothing calls them) evenly, each call edge multiplies."""
    if graph is None:
        return {s.name: (1.0 if s.name == scenario.service_under_test.name else 0.0) for s in scenario.services}
    entries = [n for n in graph.nodes if graph.in_degree(n) == 0]
    if not entries:
        raise ValueError(f"scenario {scenario.name!r}: every service is called by another; no entry for users")
    arrivals = {n: (1.0 / len(entries) if n in entries else 0.0) for n in graph.nodes}
    for n in nx.topological_sort(graph):
        for callee in graph.successors(n):
            arrivals[callee] += arrivals[n] * graph.edges[n, callee]["calls_per_request"]
    return arrivals


def _needs_latency(scenario: Scenario, spec: StrategySpec) -> bool:
    if any(rule.metric == "latency_p99" for rule in scenario.monitoring.alerts):
        return True
    for template in spec.analysis_templates:
        for metric in template.metrics:
            signals = [metric.signal] + [s.signal for s in (metric.judge.mann_whitney.signals if metric.judge.mann_whitney else ())]
            if Signal.LATENCY in signals:
                return True
    return False
