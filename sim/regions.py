"""A release that goes out region by region: one SimPy world per region, in one environment,
under the waves supervisor (``strategies.waves.reconcile_waves``).

Each region is a whole ``World`` (its pods, router, traffic share, faults, alert rules and
on-call person) running the strategy's own controller, unchanged; its controller waits
on a gate until the supervisor starts the region. The supervisor is a process here, as
the controller is in a world: it observes every region, calls the pure
``reconcile_waves`` and applies its actions -- a region starts (its gate opens), aborts (a
command, as a person's abort), or rolls back after promotion (a redeploy of the old
version: its pods start, then the router takes every request back).

A strategy without ``waves`` runs on a scenario with regions as one wave of every
region: the comparison waves are measured against.

What the results row adds: ``blast_radius``, the share of all users the new version
served at least once before the release was first detected anywhere (or by the end, if
never): each world counts per user bucket the requests the new version served
(``UserHarm`` with "harm" = served) and stops counting, in every region, at the first
detection.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import simpy

from rolloutlab.results.timeline import TimelinePoint
from rolloutlab.scenarios.regions import region_scenario, waves_for
from rolloutlab.scenarios.release import ReleaseDraw, child_seed, draw_release, make_streams
from rolloutlab.scenarios.schema import Scenario
from rolloutlab.sim.world import World
from rolloutlab.strategies import Command, CommandRequest, Role, StrategySpec
from rolloutlab.strategies.actions import Event
from rolloutlab.strategies.waves import (
    AbortRegion,
    RegionObservation,
    RollBackRegion,
    StartRegion,
    WavesStatus,
    reconcile_waves,
)

REGION_SEED_BASE = 1000  # region k's streams: child REGION_SEED_BASE + k of the run's seed (after the named streams)
ROLLBACK_READY_WAIT = 3600.0  # a stop-the-line rollback gives the old version's pods this long to become ready


class WavesRun:
    """One run of a strategy on a scenario with regions: the regions' worlds and the supervisor."""

    def __init__(self, scenario: Scenario, spec: StrategySpec, release: ReleaseDraw,
                 seed_seq: np.random.SeedSequence, record_timeline: bool = False) -> None:
        self.scenario, self.spec, self.release = scenario, spec, release
        self.waves = waves_for(scenario, spec)
        self.env = simpy.Environment()
        self.status = WavesStatus()
        self.first_detected_at: float | None = None
        self.wake = self.env.event()
        region_spec = spec.model_copy(update={"waves": None})
        first = self.waves.steps[0].regions[0]
        self.worlds: dict[str, World] = {}
        self.users: dict[str, int] = {}
        for k, region in enumerate(scenario.regions):
            rs = region_scenario(scenario, region)
            self.worlds[region.name] = World(
                rs, region_spec.with_replicas(rs.service_under_test.replicas), release,
                make_streams(child_seed(seed_seq, REGION_SEED_BASE + k)),
                record_timeline=record_timeline and region.name == first,
                shared_env=self.env, gate=self.env.event(), track_exposure=True, on_detected=self._detected,
                on_decided=self._decided)
            self.users[region.name] = rs.traffic.users

    # ------------------------------------------------------------------ running

    def run(self, horizon: float) -> None:
        for world in self.worlds.values():
            world.start(horizon)
        supervisor = self.env.process(self._supervise())
        self.env.run(until=self.scenario.duration)
        for world in self.worlds.values():
            world.close_window()
        while self.env.now < horizon and not (supervisor.triggered and self._settled()):
            self.env.run(until=min(horizon, self.env.now + 600.0))
        for world in self.worlds.values():
            world.sync()
            world.cluster.account_cost(self.env.now)

    def _settled(self) -> bool:
        return all(w.settled() or not w.gate.triggered for w in self.worlds.values())

    def _detected(self, world: World) -> None:
        """The first detection anywhere ends the blast radius' count, in every region."""
        if self.first_detected_at is None:
            self.first_detected_at = self.env.now
            for w in self.worlds.values():
                w.sync()
                w.track_exposure = False
        self._poke()

    def _decided(self, world: World, before) -> None:
        """A region's controller decided: the supervisor looks again when the rollout
        there finished, aborted or got its users back (the waves turn on those)."""
        s = world.status
        if (s.completed, s.aborted, s.restored_at) != (before.completed, before.aborted, before.restored_at):
            self._poke()

    def _poke(self) -> None:
        if not self.wake.triggered:
            self.wake.succeed()

    def _observe(self) -> dict[str, RegionObservation]:
        return {name: RegionObservation(
            status=w.status if name in self.status.started else None,
            failed=w.detected_at is not None,
            rolled_back=w.reverted_at is not None,
        ) for name, w in self.worlds.items()}

    def _supervise(self):
        while True:
            self.status, actions = reconcile_waves(self.waves, self.status, self.env.now, self._observe())
            for action in actions:
                self._apply(action)
            s = self.status
            if s.completed or (s.stopped and s.restored_at is not None):
                return
            if self.wake.triggered:
                self.wake = self.env.event()
            waits = [self.wake] + [w.changed for w in self.worlds.values()]
            if s.requeue_at is not None:
                waits.append(self.env.timeout(max(0.0, s.requeue_at - self.env.now)))
            yield self.env.any_of(waits)

    def _apply(self, action) -> None:
        if isinstance(action, StartRegion):
            gate = self.worlds[action.region].gate
            if not gate.triggered:
                gate.succeed()
        elif isinstance(action, AbortRegion):
            world = self.worlds[action.region]
            world.commands.append(CommandRequest(len(world.commands) + 1, Command.ABORT))
            world.changed_now()
        elif isinstance(action, RollBackRegion):
            self.env.process(self._roll_back(self.worlds[action.region]))
        elif isinstance(action, Event):
            pass  # the waves' own events are not on a region's timeline

    def _roll_back(self, world: World):
        """A promoted region goes back: the old version's pods start, and once they are
        ready (or after ``ROLLBACK_READY_WAIT``) the router takes every request back."""
        if world.reverted_at is not None:
            return
        world.sync()
        world.controller_retired = True
        world.cluster.scale(Role.STABLE, world.replicas, self.env.now)
        world.changed_now()
        give_up = self.env.now + ROLLBACK_READY_WAIT
        while world.cluster.ready_count(Role.STABLE, self.env.now) < world.replicas and self.env.now < give_up:
            yield self.env.any_of([world.changed, self.env.timeout(min(30.0, give_up - self.env.now))])
        world.sync()
        if world.reverted_at is None:
            world.reverted_at = self.env.now
            if not world.human_action:
                world.human_action = "stop_the_line"
        world.cluster.scale(Role.CANARY, 0, self.env.now)
        world.changed_now()
        self._poke()

    # ------------------------------------------------------------------ results

    def blast_radius(self) -> float:
        total = sum(self.users.values())
        exposed = sum(self.users[name] * w.exposure.affected_share(lambda w=w: w.extra_stream("exposure"))
                      for name, w in self.worlds.items())
        return exposed / total if total else 0.0

    def timeline(self) -> list[TimelinePoint]:
        return self.worlds[self.waves.steps[0].regions[0]].timeline


def simulate_waves(scenario: Scenario, strategy: StrategySpec, seed_seq: np.random.SeedSequence, *,
                   horizon: float, timeline: bool = False, release: ReleaseDraw | None = None) -> WavesRun:
    """Run one replication of ``strategy`` on ``scenario``'s regions; the finished run."""
    streams = make_streams(seed_seq)
    if release is None:
        release = draw_release(scenario, streams["release"])
    run = WavesRun(scenario, strategy, release, seed_seq, record_timeline=timeline)
    run.run(horizon)
    return run


def waves_row(run: WavesRun) -> dict[str, Any]:
    """The results-table fields of a run across its regions (``sim.run`` adds the rest)."""
    worlds = list(run.worlds.values())
    started = [w for w in worlds if w.gate.triggered]
    s = run.status
    harmed_at = [w.impact_started_at for w in worlds if w.impact_started_at is not None]
    impact_on = any(w.impact_on for w in worlds)
    ends = [w.impact_ended_at for w in worlds if w.impact_ended_at is not None]
    detected = [(w.detected_at, w.detected_by) for w in worlds if w.detected_at is not None]
    first_detection = min(detected, default=(None, ""))
    reverted = [w.reverted_at for w in worlds if w.reverted_at is not None]
    finished = s.completed_at if s.completed else s.restored_at
    if finished is None and reverted and not any(w.status.completed and w.reverted_at is None for w in started):
        finished = max(reverted)
    users = sum(run.users.values())
    return {
        "requests": sum(w.window.requests for w in worlds),
        "failed_requests": sum(w.window.failed_requests for w in worlds),
        "exposed_requests": sum(w.window.exposed_requests for w in worlds),
        "replica_seconds": float(sum(w.window.replica_seconds for w in worlds)),
        "users_affected": float(sum(run.users[n] * w.window.users_affected for n, w in run.worlds.items()) / users),
        "mirrored_requests": sum(w.window.mirrored_requests for w in worlds),
        "duplicated_writes": sum(w.window.duplicated_writes for w in worlds),
        "peak_error_rate": float(max(w.peak_error_rate for w in worlds)),
        "impact_started_at": min(harmed_at, default=None),
        "impact_ended_at": None if impact_on or not harmed_at else max(ends, default=None),
        "detected_at": first_detection[0],
        "detected_by": first_detection[1],
        "finished": finished,
        "ended_at": run.env.now,
        "human_action": next((w.human_action for w in worlds if w.human_action), ""),
        "regions_reached": len(started),
        "blast_radius": run.blast_radius(),
        "final_canary_share": float(sum(w.scenario.traffic.rps * w.shares(run.env.now)[Role.CANARY] for w in worlds)
                                    / sum(w.scenario.traffic.rps for w in worlds)),
        "ends_healthy": not impact_on,
        "outcome": _outcome(run, harmed=bool(harmed_at)),
    }


def _outcome(run: WavesRun, harmed: bool) -> str:
    defective = run.release.defect is not None
    s = run.status
    if s.stopped:
        if not defective:
            return "false_rollback"
        by_hand = any(w.human_action in ("abort", "rollback") for w in run.worlds.values())
        return "rolled_back_manual" if by_hand else "rolled_back"
    if s.completed:
        if any(w.reverted_at is not None for w in run.worlds.values()):
            return "rolled_back_manual" if defective else "false_rollback"
        return "failed_undetected" if defective and harmed else "promoted"
    return "stuck"


__all__ = ["REGION_SEED_BASE", "WavesRun", "region_scenario", "simulate_waves", "waves_for", "waves_row"]
