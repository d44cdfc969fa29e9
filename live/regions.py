"""A live rollout region by region: one backend per region (local: its own HAProxy and
pods; Kubernetes: the region's cluster), each region's own runner, and a supervisor that
starts, aborts and rolls back regions as ``strategies.waves.reconcile_waves`` decides.

The supervisor is a loop in wall time, the simulator's supervisor process (``sim.regions``)
made real::

    observe    each started region's persisted rollout status (what its runner saved),
               and whether a stop-the-line rollback finished there
    decide     reconcile_waves(waves, status, now, regions) -> (status, actions)
    apply      StartRegion: the region's runner starts; AbortRegion: an abort command
               where the region's runner reads commands; RollBackRegion: the old version
               redeployed there (``live.region_runner``)
    persist    the waves' state, after applying (the runner's order, for the same reason)
    wait       until a region saves a new status, a bake ends, a fault is due, or a tick

It never calls a region's ``reconcile``: each region's runner does. Faults (those with
``region:`` only there) fire on the waves' clock. A strategy without ``waves`` on a
scenario with regions runs as one wave of every region, the comparison waves are measured
against.

Persisted beside the regions' state (``state_file``, JSON): the release, the waves' clock
(its origin), the supervisor's ``WavesStatus`` and which regions a rollback finished in.
An interrupted run leaves every region in a known state -- its runner's persisted status,
commands it was given, the backend's own record -- and the same call again resumes it:
started regions continue (a finished one is not started again), a rollback cut short is
done again, regions not yet started wait for their wave. ``rollback=True`` stops the line
instead: every region out so far aborts or goes back to the old version.

The result is one results row across the regions, with the simulator's columns
(``sim.run``'s region row): counts summed over regions, the first detection anywhere, the
waves' finish, ``regions_reached`` and ``blast_radius`` -- the share of all users (every
region's load generator's users) who got at least one answer from the new version
(``X-Version``) before the release was first detected in any region (by the end of the
scenario's window if it never was).
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from rolloutlab.errors import LiveUnsupported, StateError
from rolloutlab.live.region_row import RegionResult, waves_row
from rolloutlab.live.region_runner import LiveRegion, route_back_actions
from rolloutlab.live.runner import Backend, Progress, Waiting
from rolloutlab.live.session import make_plan, timeline_points
from rolloutlab.scenarios.regions import region_scenario, waves_for
from rolloutlab.scenarios.schema import Scenario
from rolloutlab.strategies import StrategySpec
from rolloutlab.strategies.actions import Event
from rolloutlab.strategies.spec import StrategyKind, Waves
from rolloutlab.strategies.status import evolve
from rolloutlab.strategies.waves import (
    AbortRegion,
    RegionObservation,
    RollBackRegion,
    StartRegion,
    WavesStatus,
    reconcile_waves,
)

STATE_VERSION = 1
TICK_S = 0.5  # wall seconds between supervisor cycles when nothing is due sooner
SERVE_TIMEOUT_S = 120.0  # a region's old version must serve within this before users arrive
REGION_SEED_STEP = 1000  # region k's users draw from seed + REGION_SEED_STEP * (k + 1)


# --------------------------------------------------------------------------- persisted state


@dataclass(frozen=True)
class WavesState:
    """What a restarted supervisor needs: which release, the waves' clock, its status."""

    release: str
    strategy: str
    regions: tuple[str, ...]  # in wave order
    origin_wall: float  # wall time of the waves' second 0; every region's runner state shares it
    time_scale: float
    status: WavesStatus = field(default_factory=WavesStatus)
    rolled_back: Mapping[str, float] = field(default_factory=dict)  # region -> waves second its rollback ended

    def dump(self) -> str:
        return json.dumps({"v": STATE_VERSION, "release": self.release, "strategy": self.strategy,
                           "regions": list(self.regions), "origin_wall": self.origin_wall,
                           "time_scale": self.time_scale, "status": asdict(self.status),
                           "rolled_back": dict(self.rolled_back)}, indent=1)

    @classmethod
    def load(cls, text: str, where: Path) -> "WavesState":
        try:
            data = json.loads(text)
            if data.get("v") != STATE_VERSION:
                raise StateError(f"{where}: waves state version {data.get('v')!r}, this runner reads {STATE_VERSION}")
            raw = data["status"]
            status = WavesStatus(**{f.name: tuple(raw[f.name]) if isinstance(raw[f.name], list) else raw[f.name]
                                    for f in fields(WavesStatus)})
            return cls(data["release"], data["strategy"], tuple(data["regions"]), float(data["origin_wall"]),
                       float(data["time_scale"]), status, {k: float(v) for k, v in data["rolled_back"].items()})
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise StateError(f"{where}: the persisted waves state is unreadable: {error}") from None


def _save(path: Path, state: WavesState) -> None:
    from rolloutlab.live.local_state import write_atomically

    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, state.dump())


def is_done(status: WavesStatus) -> bool:
    """Every wave out, or the line stopped and every region told to go back is back."""
    return status.completed or (status.stopped and status.restored_at is not None)


# --------------------------------------------------------------------------- the run


@dataclass
class LiveWavesRun:
    """A finished (or bounded) waves run: its row, its timeline (``points``: the first
    region's, as the simulator's; ``regions``: every region's; ``waves``: the supervisor's
    status), and each region's part."""

    row: dict[str, Any]
    timeline: dict[str, Any]
    status: WavesStatus
    regions: dict[str, RegionResult]


def run_live_waves(
    scenario: Scenario, spec: StrategySpec, backends: Mapping[str, Backend], *, state_file: Path,
    urls: Mapping[str, dict[str, str | None]] | None = None, release: str = "bad", seed: int = 0, run: int = 0,
    time_scale: float, replicas: int | None = None, max_rps: float = 60.0, max_wall_s: float = 600.0,
    metrics: str = "loadgen", rollback: bool = False, app: str = "demo", log: Callable[[str], None] | None = None,
    progress: Progress | None = None, on_cycle: Callable[[WavesStatus], None] | None = None,
) -> LiveWavesRun:
    """Run ``spec`` live on ``scenario``'s regions, one backend per region (``backends``,
    opened and closed by the caller); return the row across regions. ``max_rps`` caps the
    requests all regions' users send together (each region its share); ``replicas``: pods
    per version in every region (default: each region's). ``on_cycle`` is told the waves'
    status after each persisted supervisor cycle (tests raise from it to interrupt)."""
    waves = waves_for(scenario, spec)
    regions_by_name = {r.name: r for r in scenario.regions}
    if set(backends) != set(regions_by_name):
        raise ValueError(f"one backend per region: the scenario's regions are {', '.join(regions_by_name)}, "
                         f"the backends given {', '.join(backends) or 'none'}")
    kind = spec.strategy.kind
    if kind is StrategyKind.FEATURE_FLAG:
        raise LiveUnsupported("feature flags run live in one place only, not region by region")
    if spec.strategy.canary is not None and spec.strategy.canary.baseline:
        raise LiveUnsupported("a canary with a baseline deployment (canary.baseline) runs in the simulator only: "
                              "no live backend starts baseline pods yet")
    if kind is StrategyKind.ROLLING and any(b.source == "live-kube" for b in backends.values()):
        raise LiveUnsupported("a rolling update on Kubernetes cannot be rolled back per region yet (its pods are the "
                              "cluster's deployment controller's): use a canary or blue-green with regions")
    route_back_actions(spec)  # a strategy whose promoted regions could not go back fails before anything starts
    region_spec = spec.model_copy(update={"waves": None})

    regions: dict[str, LiveRegion] = {}
    wake = threading.Event()
    for k, region in enumerate(scenario.regions):
        rs = region_scenario(scenario, region)
        rspec = region_spec.with_replicas(replicas or rs.service_under_test.replicas)
        plan = make_plan(rs, rspec, release=release, seed=seed, run=run, time_scale=time_scale, app=app)
        regions[region.name] = LiveRegion(
            region.name, rs, rspec, plan, backends[region.name], time_scale=time_scale,
            seed=seed + REGION_SEED_STEP * (k + 1), urls=None if urls is None else urls.get(region.name),
            wake=wake.set, log=log)
    first = regions[waves.regions[0]].plan
    saved = WavesState.load(state_file.read_text(), state_file) if state_file.exists() else None
    _check_saved(saved, first.release, spec, waves.regions, time_scale, rollback)
    supervisor = _Supervisor(scenario, spec.name, waves, regions, state_file, saved, time_scale=time_scale,
                             max_wall_s=max_wall_s, wake=wake, log=log, progress=progress, on_cycle=on_cycle)
    supervisor.run(max_rps=max_rps, metrics=metrics, rollback=rollback)
    return supervisor.result(spec, release=first.release, defect=first.defect, run=run, seed=seed)


def _check_saved(saved: WavesState | None, release: str, spec: StrategySpec, regions: tuple[str, ...],
                 time_scale: float, rollback: bool) -> None:
    if saved is None:
        if rollback:
            raise StateError(f"nothing to roll back: no interrupted waves of {release} were found")
        return
    if (saved.release, saved.strategy, saved.regions) != (release, spec.name, regions):
        raise StateError(f"the waves state holds release {saved.release!r} of strategy {saved.strategy!r} over "
                         f"{', '.join(saved.regions)}; this run is {release!r} of {spec.name!r}. Finish or roll back "
                         "that one first (or use another state folder).")
    if saved.time_scale != time_scale:
        raise StateError(f"the waves being resumed run at time scale {saved.time_scale:g}, not {time_scale:g}: "
                         "resume them with the same --time-scale")
    if is_done(saved.status):
        what = "promoted in every region" if saved.status.completed else "stopped and rolled back"
        raise StateError(f"release {release} was already {what} by an earlier run; nothing to run (use another "
                         "state folder, or delete this one and the app's objects, for a new experiment)")


class _Supervisor:
    """The loop of the module docstring, over ``LiveRegion``s."""

    def __init__(self, scenario: Scenario, strategy: str, waves: Waves, regions: dict[str, LiveRegion],
                 state_file: Path, saved: WavesState | None, *, time_scale: float, max_wall_s: float,
                 wake: threading.Event, log: Callable[[str], None] | None, progress: Progress | None,
                 on_cycle: Callable[[WavesStatus], None] | None) -> None:
        self.scenario, self.strategy, self.waves, self.regions = scenario, strategy, waves, regions
        self.state_file, self.saved, self.time_scale, self.max_wall_s = state_file, saved, time_scale, max_wall_s
        self.wake, self.log, self.progress, self.on_cycle = wake, log, progress, on_cycle
        self.resumed = saved is not None
        self.status = saved.status if saved is not None else WavesStatus()
        self.origin_wall = saved.origin_wall if saved is not None else math.nan
        self.deadline = math.inf
        self.observed_until = 0.0
        self._persisted_rolled: dict[str, float] = {}

    def now(self) -> float:
        return (time.time() - self.origin_wall) * self.time_scale

    def run(self, *, max_rps: float, metrics: str, rollback: bool) -> None:
        started = time.monotonic()
        self.deadline = started + self.max_wall_s
        try:
            for region in self.regions.values():  # old versions serving before users arrive
                what = f"{region.name}: the old version {region.plan.stable.name} to serve"
                self._say(what)
                if self.progress is not None:
                    self.progress(Waiting(what, None))
                region.prepare(timeout_s=min(SERVE_TIMEOUT_S, self.max_wall_s))
            share = {r.name: r.traffic_share for r in self.scenario.regions}
            for region in self.regions.values():
                region.start_load(max_rps * share[region.name], self._left(), metrics)
            if self.saved is not None:
                for name, at in self.saved.rolled_back.items():
                    self.regions[name].rolled_back_at = at
            else:
                self.origin_wall = time.time()  # the waves' second 0: every region's users are sending
            self._resume(rollback)
            self._loop()
        finally:
            for region in self.regions.values():
                region.stop()
            for region in self.regions.values():
                if region.load is not None:
                    region.load.stop()
            self.observed_until = self.now()

    def _left(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    def _resume(self, rollback: bool) -> None:
        now = self.now()
        for region in self.regions.values():
            region.fire_faults(now, skip=self.resumed)  # injected by the run that was interrupted
        if rollback and not self.status.stopped:
            self.waves = self.waves.model_copy(update={"stop_the_line": True})  # everything out so far goes back
            self.status = evolve(self.status, stopped=True, stopped_at=now,
                                 stop_reason="a person asked for a rollback of every region")
        for name in self.status.started:
            region = self.regions[name]
            if name in self.status.rolling_back and region.rolled_back_at is None:
                region.roll_back(self.now, self.deadline)  # cut short by the interruption: again
            elif region.rolled_back_at is None:
                region.resume(self._left())
        self._persist()

    def _loop(self) -> None:
        while True:
            self.wake.clear()
            now = self.now()
            for region in self.regions.values():
                region.fire_faults(now)
                if region.error is not None:
                    raise region.error
            seen = {name: RegionObservation(status=r.status if name in self.status.started else None,
                                            rolled_back=r.rolled_back_at is not None)
                    for name, r in self.regions.items()}
            before = self.status
            self.status, actions = reconcile_waves(self.waves, self.status, now, seen)
            for action in actions:
                self._apply(action)
            if self.status != before or actions or self._rolled() != self._persisted_rolled:
                self._persist()
            if self.on_cycle is not None:
                self.on_cycle(self.status)
            busy = any(r.busy for r in self.regions.values())
            if is_done(self.status) and not busy and now >= self.scenario.duration:
                return
            if time.monotonic() >= self.deadline:
                return
            self._report(now, busy)
            self.wake.wait(self._wait_s(now))

    def _apply(self, action) -> None:
        if isinstance(action, StartRegion):
            self.regions[action.region].start(self.origin_wall, self._left())
        elif isinstance(action, AbortRegion):
            self.regions[action.region].abort()
        elif isinstance(action, RollBackRegion):
            self.regions[action.region].roll_back(self.now, self.deadline)
        elif isinstance(action, Event):
            self._say(f"t={action.at:.1f}s waves {action.reason.value}: {action.message}")

    def _rolled(self) -> dict[str, float]:
        return {n: r.rolled_back_at for n, r in self.regions.items() if r.rolled_back_at is not None}

    def _persist(self) -> None:
        rolled = self._persisted_rolled = self._rolled()
        _save(self.state_file, WavesState(self.regions[self.waves.regions[0]].plan.release, self.strategy,
                                          self.waves.regions, self.origin_wall, self.time_scale, self.status, rolled))

    def _wait_s(self, now: float) -> float:
        due = [self.status.requeue_at] if self.status.requeue_at is not None else []
        due += [r.faults[0][0] for r in self.regions.values() if r.faults]
        wait = min([TICK_S] + [(t - now) / self.time_scale for t in due])
        return max(0.01, min(wait, self._left()))

    def _report(self, now: float, busy: bool) -> None:
        if self.progress is None:
            return
        s = self.status
        if is_done(s):
            what = "the end of the scenario's window" if not busy else "the regions' clean-up"
        elif s.requeue_at is not None:
            what = f"wave {s.wave + 1} of {len(self.waves.steps)} baking until t={s.requeue_at:.0f}s"
        else:
            step = self.waves.steps[min(s.wave, len(self.waves.steps) - 1)]
            parts = [f"{n}: {self.regions[n].waiting.what}" for n in step.regions if self.regions[n].waiting]
            what = f"wave {s.wave + 1} of {len(self.waves.steps)}" + (f" ({'; '.join(parts)})" if parts else "")
        self.progress(Waiting(what, now, float(self.scenario.duration)))

    def _say(self, text: str) -> None:
        if self.log is not None:
            self.log(text)

    # ----------------------------------------------------------------- the row

    def result(self, spec: StrategySpec, *, release: str, defect: str, run: int, seed: int) -> LiveWavesRun:
        results: dict[str, RegionResult] = {}
        for name in self.waves.regions:
            region = self.regions[name]
            summary = region.summary(self.observed_until, self.resumed)
            records = region.records(self.origin_wall)
            row = region.row(summary, records, run=run, seed=seed, observed_until=self.observed_until)
            results[name] = RegionResult(name, region.scenario.traffic.users, summary, records, row,
                                         region.plan.canary.name, region.rolled_back_at)
        row = waves_row(self.scenario, spec, self.status, results, release=release, defect=defect, run=run,
                        seed=seed, time_scale=self.time_scale, ended_at=self.observed_until, resumed=self.resumed)
        first = self.regions[self.waves.regions[0]]
        points = {name: timeline_points(r.summary, r.records, self.regions[name].plan) for name, r in results.items()}
        timeline = {"scenario": self.scenario.name, "strategy": spec.name, "run": run, "seed": seed,
                    "defect": defect, "outcome": row["outcome"], "source": row["source"],
                    "points": points[first.name], "regions": points, "waves": asdict(self.status)}
        return LiveWavesRun(row, timeline, self.status, results)


__all__ = ["LiveWavesRun", "RegionResult", "WavesState", "is_done", "run_live_waves"]
