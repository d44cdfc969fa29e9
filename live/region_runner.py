"""One region of a live rollout in waves: its backend, its own ``Runner`` on a thread of
its own, its users, its faults, and the redeploy of the old version a stop of the line
asks of it (``live.regions`` supervises the regions).

A region is a whole single-place live run (``live.session``) that waits for the
supervisor: its stable version is set up and serving, and its share of the users sends
requests, from the start; its runner starts only at ``StartRegion``. Its rollout then runs
exactly as a one-place run's does: the same ``Runner`` calling the same ``reconcile``,
the same persisted state, the same command path.

One clock for every region. The supervisor's scenario second 0 is when the waves start;
a region's runner state is created with that origin (``RunnerState.origin_wall``) before
its runner first reads it, so every region's status, timeline and records are on the
waves' clock (the supervisor compares a region's promotion time with its own ``now`` for
a bake, and the results row puts every region's times on one axis). Faults are the
supervisor's to fire, on that clock too, whether the region rolls out yet or not (the
simulator's faults hit a region waiting for its wave as well).

Rolling back a promoted region (``RollBackRegion``) is a new deployment of the old version
that the region's controller has no say in, so its runner is stopped first (a promoted
rollout may still be waiting to scale the old version down); then, through the backend's
own ``apply`` of the controller's actions: the old version back at full scale, every
request back to it once its pods are ready (or after ``ROLLBACK_READY_WAIT`` scenario
seconds, as the simulator gives up waiting), the new version scaled to 0. Each step is
idempotent, so a rollback an interruption cut short is done again from the start.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pandas as pd

from rolloutlab.errors import LiveUnsupported
from rolloutlab.live.loadgen import LoadGenerator, Target
from rolloutlab.live.runner import (
    Backend,
    NoMetrics,
    ReleasePlan,
    Runner,
    RunnerState,
    RunSummary,
    TimelineEntry,
    Waiting,
    describe,
    is_final,
)
from rolloutlab.live.session import fault_schedule, live_rates, mirrors, results_row, user_population
from rolloutlab.live.technique_metrics import LocalShadowScrape, MirrorMetrics
from rolloutlab.results.timeline import TimelineEvent
from rolloutlab.scenarios.schema import Scenario
from rolloutlab.strategies import (
    Action,
    Command,
    CommandRequest,
    Role,
    RolloutStatus,
    ScaleVersion,
    SetCanaryWeight,
    StrategySpec,
    SwitchActive,
)
from rolloutlab.strategies.actions import EventReason
from rolloutlab.strategies.spec import StrategyKind

ROLLBACK_READY_WAIT = 3600.0  # scenario seconds a rollback waits for the old version's pods (sim.regions' figure)
PODS_DIE_WITH_BACKEND = frozenset({"live-local"})  # backends whose pods are processes of this run: a resume restarts them
STOP_JOIN_S = 30.0  # wall seconds a stopped runner gets to finish its cycle (a Kubernetes call retries for a while)


class RegionStopped(Exception):
    """Raised inside a region's runner (from its ``on_cycle``) to end it when the supervisor
    asks: the runner's own way to be stopped after a persisted cycle."""


class StateTap:
    """A region's backend as its runner sees it: every call passes through, and the state
    the runner persists is also kept here, so the supervisor reads the region's persisted
    status without reading the backend beside the runner (a Kubernetes backend remembers the
    state it last read to detect a second runner: a second reader would look like one)."""

    def __init__(self, backend: Backend, on_saved: Callable[[], None]) -> None:
        self._backend = backend
        self._on_saved = on_saved
        self._lock = threading.Lock()
        self._latest: str | None = None

    def load_state(self) -> str | None:
        text = self._backend.load_state()
        with self._lock:
            self._latest = text
        return text

    def save_state(self, state: str) -> None:
        self._backend.save_state(state)
        with self._lock:
            self._latest = state
        self._on_saved()

    @property
    def latest(self) -> RunnerState | None:
        with self._lock:
            text = self._latest
        return None if text is None else RunnerState.load(text)

    def __getattr__(self, name: str) -> Any:  # everything else is the backend's own
        return getattr(self._backend, name)


def route_back_actions(spec: StrategySpec) -> tuple[Action, ...]:
    """The controller's actions that send every request to the old version again."""
    kind = spec.strategy.kind
    if kind is StrategyKind.BLUE_GREEN:
        return (SwitchActive(Role.STABLE),)
    if kind is StrategyKind.CANARY:
        return (SetCanaryWeight(0),)  # without a router the weight follows the pods: a no-op
    if kind is StrategyKind.ROLLING:
        return ()  # the pods are the traffic
    raise LiveUnsupported(f"a {kind.value} rollout has no live rollback of a promoted region yet")


class LiveRegion:
    """One region of a live waves run (see the module docstring): ``scenario`` as the region
    sees it (``scenarios.regions.region_scenario``), ``spec`` without waves at the region's
    replicas, ``seed`` its users' own (apart from the other regions')."""

    def __init__(self, name: str, scenario: Scenario, spec: StrategySpec, plan: ReleasePlan,
                 backend: Backend, *, time_scale: float, seed: int, urls: dict[str, str | None] | None = None,
                 wake: Callable[[], None] = lambda: None, log: Callable[[str], None] | None = None) -> None:
        self.name, self.scenario, self.spec, self.plan = name, scenario, spec, plan
        self.backend, self.time_scale, self.seed, self._urls = backend, time_scale, seed, urls
        self._wake = wake
        self.tap = StateTap(backend, wake)
        self.waiting: Waiting | None = None  # what its runner last said it waits for
        self.runner = Runner(spec, plan, self.tap, NoMetrics(), time_scale=time_scale,
                             log=None if log is None else (lambda text: log(f"{name}: {text}")),
                             on_cycle=self._check_stop, progress=self._progress)
        self.load: LoadGenerator | None = None
        self.user_rps = self.preview_rps = 0.0
        # (waves second, chaos call), in time order
        self.faults = sorted(fault_schedule(scenario, backend, time_scale), key=lambda fault: fault[0])
        self.rolled_back_at: float | None = None  # waves seconds; set by roll_back
        self.error: BaseException | None = None  # what ended its runner or rollback, if not a stop
        self._halt = threading.Event()  # the supervisor ends everything (never cleared)
        self._end_runner = threading.Event()  # a rollback ends the runner for good
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # ----------------------------------------------------------------- state

    @property
    def state(self) -> RunnerState | None:
        return self.tap.latest

    @property
    def status(self) -> RolloutStatus | None:
        state = self.tap.latest
        return None if state is None else state.status

    @property
    def busy(self) -> bool:
        """Its runner or its rollback is still at work."""
        return self._thread is not None and self._thread.is_alive()

    # ----------------------------------------------------------------- set up

    def prepare(self, timeout_s: float) -> None:
        """Its old version set up (or, on a resume, as its state left it) and serving."""
        state, _ = self.runner.prepare()
        if is_final(state.status) and self.backend.source in PODS_DIE_WITH_BACKEND:
            # the runner creates nothing for a finished rollout; these pods died with the
            # previous run, and the backend's record says what served at its end
            self.backend.ensure(self.plan, self.spec)
        self.runner.wait_until_stable_serves(timeout_s)

    def start_load(self, max_rps: float, max_wall_s: float, metrics: str) -> LoadGenerator:
        """Its users start sending (its share of the rate, capped at ``max_rps``), and its
        runner's analysis reads them."""
        urls = self._urls if self._urls is not None else self.backend.urls()
        self.user_rps, preview_rps = live_rates(self.scenario, max_rps)
        targets = [Target("user", urls["user"], self.user_rps, users=user_population(self.scenario))]
        if self.spec.strategy.blue_green and urls.get("preview") and preview_rps > 0:
            targets.append(Target("preview", urls["preview"], preview_rps))
            self.preview_rps = preview_rps
        load = LoadGenerator(
            targets, seed=self.seed, timeout_s=self.scenario.service_under_test.request_timeout,
            max_requests=int(sum(t.rate_rps for t in targets) * (max_wall_s + 5) * 1.5) + 100,
            max_duration_s=max_wall_s + 5,
            max_keepalive=0 if getattr(self.backend, "balances_connections", False) else 16)  # see live.session
        if metrics == "scrape":
            if not hasattr(self.backend, "metrics_source"):
                raise LiveUnsupported(f"--metrics scrape needs pod metrics the {self.backend.source} backend cannot read")
            self.runner.metrics = self.backend.metrics_source()
        elif metrics == "loadgen":
            self.runner.metrics = load
        else:
            raise ValueError(f"metrics must be loadgen or scrape, not {metrics!r}")
        if mirrors(self.spec) and hasattr(self.backend, "pods"):
            self.runner.metrics = MirrorMetrics(self.runner.metrics, LocalShadowScrape(self.backend))
        self.load = load.start()
        return load

    # ----------------------------------------------------------------- what the supervisor asks

    def start(self, origin_wall: float, max_wall_s: float) -> None:
        """Start its rollout (``StartRegion``): its runner state on the waves' clock, its
        runner on a thread. A region whose state exists (a resume) continues it."""
        self.waiting = None  # what it waited for before (its old version to serve) is over
        if self.tap.load_state() is None:
            self.tap.save_state(RunnerState(self.plan.release, origin_wall, self.time_scale, RolloutStatus()).dump())
        self._spawn(self._run_runner, max_wall_s)

    def resume(self, max_wall_s: float) -> None:
        """Continue a rollout an interrupted run started (nothing to do once it is final)."""
        status = self.status
        if status is not None and not is_final(status):
            self._spawn(self._run_runner, max_wall_s)

    def abort(self) -> None:
        """``AbortRegion``: a person's abort, left where the region's runner reads commands
        (``rolloutlab live --abort`` does the same); persisted, so it outlives this run."""
        if self.backend.source == "live-kube":
            state = self.state  # one command annotation: an id above every one the controller used
            next_id = 1 if state is None else max(state.next_command_id, state.status.last_command_id + 1)
            self.backend.leave_command(CommandRequest(next_id, Command.ABORT))
        else:
            self.backend.leave_command(Command.ABORT)  # the next id of the commands file
        self._wake()

    def roll_back(self, now: Callable[[], float], deadline: float) -> None:
        """``RollBackRegion``, on a thread of its own (see the module docstring)."""
        if self.rolled_back_at is None:
            self._spawn(self._run_rollback, now, deadline)

    def stop(self) -> None:
        """End its runner or rollback after the step it is in; bounded."""
        self._halt.set()
        with self._lock:
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(STOP_JOIN_S)

    def fire_faults(self, now: float, *, skip: bool = False) -> None:
        """Inject its faults due by ``now`` (waves seconds), each once; ``skip``: a resume
        passes over those an earlier run injected (or its downtime hid), never twice."""
        while self.faults and self.faults[0][0] <= now:
            at, chaos = self.faults.pop(0)
            if not skip:
                chaos()

    # ----------------------------------------------------------------- threads

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        with self._lock:
            previous = self._thread if self._thread is not None and self._thread.is_alive() else None
            if previous is not None and target == self._run_runner:
                return  # its runner is at work already
            self._thread = threading.Thread(target=self._guard, args=(target, previous, *args),
                                            name=f"region-{self.name}", daemon=True)
            self._thread.start()

    def _guard(self, target: Callable[..., None], previous: threading.Thread | None, *args: Any) -> None:
        try:
            if previous is not None:  # a rollback first ends the runner still at work
                self._end_runner.set()
                previous.join(STOP_JOIN_S)
            target(*args)
        except RegionStopped:
            pass
        except BaseException as error:  # noqa: BLE001 - handed to the supervisor, which raises it
            self.error = error
        finally:
            self._wake()

    def _run_runner(self, max_wall_s: float) -> None:
        self.runner.prepare()  # reads the state on the waves' clock (a fresh one is resumed at once)
        self.runner.run(max_wall_s=max_wall_s)

    def _check_stop(self, cycle: int) -> None:
        if self._halt.is_set() or self._end_runner.is_set():
            raise RegionStopped(self.name)

    def _progress(self, waiting: Waiting) -> None:
        self.waiting = waiting

    def _run_rollback(self, now: Callable[[], float], deadline: float) -> None:
        backend, replicas = self.backend, self.plan.replicas
        # the old version's objects, if the promotion removed them (Kubernetes deletes a
        # Deployment scaled to 0), then its pods at full scale
        backend.ensure(self.plan, self.spec)
        self._rollback_step(now, ScaleVersion(Role.STABLE, replicas), weight=100.0)
        give_up = min(deadline, time.monotonic() + ROLLBACK_READY_WAIT / self.time_scale)
        while backend.observe()[0].ready < replicas and time.monotonic() < give_up:
            if self._halt.is_set():
                raise RegionStopped(self.name)
            backend.wait(min(0.5, max(0.01, give_up - time.monotonic())))
        for action in route_back_actions(self.spec):
            self._rollback_step(now, action, weight=0.0)
        self._rollback_step(now, ScaleVersion(Role.CANARY, 0), weight=0.0)
        self.rolled_back_at = now()
        self._entry(now(), 0.0, TimelineEvent(EventReason.ROLLED_BACK.value,
                                              "stop the line: the old version serves every request again"))

    def _rollback_step(self, now: Callable[[], float], action: Action, weight: float) -> None:
        if self._halt.is_set():
            raise RegionStopped(self.name)
        self.backend.apply(action)
        at = now()
        self.runner.applied.append((at, describe(action)))
        self._entry(at, weight, TimelineEvent(EventReason.ROLLED_BACK.value, f"stop the line: {describe(action)}"))

    def _entry(self, at: float, weight: float, event: TimelineEvent) -> None:
        stable, canary = self.backend.observe()
        self.runner.timeline.append(TimelineEntry(at, stable.ready, canary.ready, stable.replicas, canary.replicas,
                                                  weight, (event,)))

    # ----------------------------------------------------------------- results

    def summary(self, now: float, resumed: bool) -> RunSummary:
        """What this region's rollout went through, on the waves' clock; a region that
        never started served its old version at full scale from second 0."""
        state = self.state
        status = state.status if state is not None else RolloutStatus()
        timeline = list(self.runner.timeline)
        n = self.plan.replicas
        if not timeline:  # it did not run here: untouched, or as an earlier run left it
            new = status.completed and self.rolled_back_at is None
            timeline.append(TimelineEntry(0.0, 0 if new else n, n if new else 0, 0 if new else n, n if new else 0,
                                          100.0 if new else 0.0))
        elif timeline[0].at > 0:  # its old version served until its wave came
            timeline.insert(0, TimelineEntry(0.0, n, 0, n, 0, 0.0))
        if state is None:
            state = RunnerState(self.plan.release, 0.0, self.time_scale, status)
        return RunSummary(status, state, timeline, list(self.runner.applied), resumed, now)

    def records(self, origin_wall: float) -> pd.DataFrame:
        """Its users' requests, ``at`` in waves seconds (answer time, else schedule time)."""
        assert self.load is not None, "start_load() first"
        records = self.load.records()
        offset = (self.load.started_at_wall or origin_wall) - origin_wall
        return records.assign(at=(records["end_s"].fillna(records["scheduled_s"]) + offset) * self.time_scale)

    def row(self, summary: RunSummary, records: pd.DataFrame, *, run: int, seed: int,
            observed_until: float) -> dict[str, Any]:
        """Its own results row (``live.session.results_row``), which the waves' row sums."""
        return results_row(self.scenario, self.spec, self.plan, self.backend.source, summary, records, run=run,
                           seed=seed, time_scale=self.time_scale, user_rps=self.user_rps,
                           preview_rps=self.preview_rps, observed_until=observed_until)


__all__ = ["LiveRegion", "PODS_DIE_WITH_BACKEND", "ROLLBACK_READY_WAIT", "RegionStopped", "StateTap",
           "route_back_actions"]
