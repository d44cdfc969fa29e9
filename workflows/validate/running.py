"""Running a validation: the same world on both sides, the simulation, the live runs, the checks.

Same world on both sides. The live run cannot send the scenario's 1,000 rps nor start its
10 pods cheaply, so it sends at most ``max_rps`` per wall second (user and preview traffic
scaled down together, ``live.session.live_rates``) with ``replicas`` pods per version. A
wall second is ``time_scale`` scenario seconds, so the live service gets ``max_rps /
time_scale`` requests per *scenario* second; the simulator is told exactly that
(``compute_live_scenario``: a validated copy of the scenario with those replicas and
rates), so its analysis windows hold as few requests as the live ones. Both run the same
release: ``bad`` forces the scenario's first defect in every simulated run
(``sim.run.simulate(release=...)``) as ``make_plan`` gives it to the live canary, ``good``
forces none, so the interval is for *that* release, not a mixture of good and bad ones.
Times need no conversion: live rows are in scenario seconds already.

The live runs go to the local backend (demo-service processes behind HAProxy), or with
``backend="kube"`` to a Kubernetes cluster (``workflows.validate.kube_runs``: a namespace
per run, real containers, kube-proxy). ``run_validation`` acts (simulates, starts
processes or pods) and closes every backend it opens, whatever happens.
"""

from __future__ import annotations

import math
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rolloutlab.errors import LiveUnsupported, ValidateError
from rolloutlab.live.runner import Progress, ReleasePlan
from rolloutlab.live.session import LiveRun, live_rates, make_plan, pick_defect, run_live
from rolloutlab.scenarios.release import ReleaseDraw, run_seed_sequence
from rolloutlab.scenarios.schema import Scenario
from rolloutlab.sim.montecarlo import run_many
from rolloutlab.sim.run import simulate
from rolloutlab.strategies import StrategySpec
from rolloutlab.workflows.validate.calibration import (
    compute_assumed_pod_ready,
    compute_calibrated_scenario,
    compute_created_to_ready,
)
from rolloutlab.workflows.validate.metrics import (
    BASE_METRICS,
    SWITCH_FAILURES,
    WEIGHT_PREFIX,
    Value,
    check_hold,
    compute_live_step_weights,
    compute_metric_values,
    compute_sim_step_weights,
    rollout_end,
)
from rolloutlab.workflows.validate.prediction import (
    LEVEL,
    Prediction,
    PredictionCheck,
    compute_exit_code,
    compute_predictions,
    judge_live,
)
from rolloutlab.workflows.validate.switching import SwitchFailures, compute_switch_failures, routing_change_times

RELEASES = ("bad", "good")
LOCAL_OVERHEAD_S = 15.0  # wall seconds a local live run takes beyond the scenario's window
BACKENDS = ("local", "kube")
DEFAULT_NODE_PORT = 30090  # kube: the entry Service's NodePort (blue-green's preview: the next one)
DEFAULT_NAMESPACE_PREFIX = "rolloutlab-validate"  # kube: each live run's namespace is PREFIX-RUN-RANDOM
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


# --------------------------------------------------------------------------- the world both sides see


@dataclass(frozen=True)
class LiveWorld:
    """The settings in which live differs from the scenario file, given to both sides."""

    replicas: int
    user_rps: float  # sent per wall second
    preview_rps: float
    time_scale: float
    sim_rps: float  # per scenario second: user_rps / time_scale
    sim_preview_rps: float
    probe_period_s: float  # wall seconds: the scenario's compressed (local), the pods' own (kube)
    probe_timeout_s: float
    termination_grace_s: float
    backend: str = "local"


def compute_live_scenario(scenario: Scenario, *, replicas: int, max_rps: float,
                          time_scale: float) -> tuple[Scenario, Scenario, float, float]:
    """The scenario as the live run plays it, for each side: (the live run's scenario, the
    simulator's scenario, user rps, preview rps sent per *wall* second).

    Both have ``replicas`` pods of the service under test. The load generator sends the
    scenario's traffic capped at ``max_rps`` (``live_rates``) per wall second, and a wall
    second is ``time_scale`` scenario seconds: per scenario second the live service gets
    ``rps / time_scale``, and that is the rate the simulator is given (so the analysis sees
    as few requests per window in the simulator as it does live). Validated copies."""
    user, preview = live_rates(scenario, max_rps)
    data = scenario.model_dump(by_alias=True)
    for service in data["services"]:
        if service["name"] == scenario.service_under_test.name:
            service["replicas"] = replicas
    live = Scenario.model_validate(data)
    data["traffic"]["rps"] = user / time_scale
    data["traffic"]["preview_rps"] = preview / time_scale
    return live, Scenario.model_validate(data), user, preview


def forced_release(scenario: Scenario, release: str) -> ReleaseDraw:
    """The release every simulated run carries: the one ``make_plan`` gives the live canary."""
    if release not in RELEASES:
        raise ValidateError(f"--release must be one of {', '.join(RELEASES)}, not {release!r}")
    return ReleaseDraw(pick_defect(scenario, release, 0, 0))


def simulate_validation_run(scenario: Scenario, strategy: StrategySpec, run: int, seed_seq: np.random.SeedSequence,
                            fidelity: str = "fast", *, release: str) -> dict[str, Any]:
    """One simulated row with the release forced, plus ``effective_weight@W`` columns (the
    mean effective weight while W% was declared). Module level: worker processes run it."""
    result = simulate(scenario, strategy, run, seed_seq, fidelity, timeline=True,
                      release=forced_release(scenario, release))
    row = dict(result.row)
    rng = np.random.default_rng(seed_seq.generate_state(4))  # its own stream: the run's draws are untouched
    row.update(compute_sim_step_weights([asdict(p) for p in result.timeline], rollout_end(row),
                                        rps=scenario.traffic.rps, rng=rng))
    return row


# --------------------------------------------------------------------------- running it


@dataclass(frozen=True)
class Settings:
    """The options of one validation (rates per wall second, bounds in wall minutes)."""

    sim_runs: int = 500
    live_runs: int = 2
    seed: int = 1
    time_scale: float = 20.0
    max_rps: float = 100.0
    replicas: int = 4
    release: str = "bad"
    level: float = LEVEL
    hold: tuple[str, ...] = ()
    calibrate: bool = False
    executor: str = "serial"
    max_minutes: float = 30.0
    switch_window_before_wall_s: float = 0.5
    switch_window_after_wall_s: float = 1.0  # plus the termination grace: in-flight requests drain that long
    timing_resolution_wall_s: float = 0.1  # live timing jitter (probe and supervisor ticks, requeues), wall seconds
    backend: str = "local"  # where the live runs go: local processes behind HAProxy, or kube (a cluster)
    context: str | None = None  # kube: the kubeconfig context (None: the current one)
    node_port: int | None = None  # kube: the entry Service's NodePort (None: DEFAULT_NODE_PORT); preview +1
    namespace_prefix: str | None = None  # kube: None: DEFAULT_NAMESPACE_PREFIX

    @property
    def kube_node_port(self) -> int:
        return DEFAULT_NODE_PORT if self.node_port is None else self.node_port

    @property
    def kube_namespace_prefix(self) -> str:
        return DEFAULT_NAMESPACE_PREFIX if self.namespace_prefix is None else self.namespace_prefix

    def check(self) -> None:
        if self.backend not in BACKENDS:
            raise ValidateError(f"--backend must be one of {', '.join(BACKENDS)}, not {self.backend!r}")
        if self.backend != "kube":
            given = [flag for flag, value in (("--context", self.context), ("--node-port", self.node_port),
                                              ("--namespace-prefix", self.namespace_prefix)) if value is not None]
            if given:
                verb = "applies" if len(given) == 1 else "apply"
                raise ValidateError(f"{', '.join(given)} {verb} only to --backend kube (the {self.backend} backend "
                                    "runs processes behind HAProxy on this machine)")
        if not 30000 <= self.kube_node_port <= 32767:
            raise ValidateError(f"--node-port must be a NodePort (30000 .. 32767), not {self.kube_node_port}")
        prefix = self.kube_namespace_prefix
        if len(prefix) > 40 or not _DNS_LABEL.fullmatch(prefix):
            raise ValidateError(f"--namespace-prefix must be at most 40 lowercase letters, digits and '-' "
                                f"(starting and ending with a letter or digit), not {prefix!r}")
        if self.release not in RELEASES:
            raise ValidateError(f"--release must be one of {', '.join(RELEASES)}, not {self.release!r}")
        if not 0.5 <= self.level < 1:
            raise ValidateError(f"--level must be within 0.5 .. 1, not {self.level}")
        for name, value, low in (("--runs", self.sim_runs, 1), ("--live-runs", self.live_runs, 1),
                                 ("--replicas", self.replicas, 1)):
            if value < low:
                raise ValidateError(f"{name} must be at least {low}, not {value}")
        if not (self.time_scale >= 1 and math.isfinite(self.time_scale)):
            raise ValidateError(f"--time-scale must be at least 1, not {self.time_scale}")
        if not self.max_rps > 0:
            raise ValidateError(f"--max-rps must be positive, not {self.max_rps}")
        check_hold(self.hold)


@dataclass
class LiveResult:
    """One live run: its results row and timeline, its metric values, who failed its
    requests, and what it measured."""

    run: int
    seed: int
    row: dict[str, Any]
    timeline: dict[str, Any]
    values: dict[str, Value]
    switch_failures: SwitchFailures
    calibration: dict[str, Any]  # the backend's figures (wall seconds) and the converted ones
    created_to_ready_s: list[float]  # scenario seconds
    switch_delays_s: list[float] | None  # scenario seconds; None: not measured (kube: no router to ask)
    wall_s: float


@dataclass
class Validation:
    """Everything a validation found: the simulated table and predictions, the live runs, the
    checks of each live value (and, calibrated, the second prediction)."""

    scenario: Scenario  # as the simulator ran it (live replicas; live rates per scenario second)
    spec: StrategySpec
    settings: Settings
    world: LiveWorld
    defect: str
    sim: pd.DataFrame
    sim_timeline: dict[str, Any]
    predictions: dict[str, Prediction]
    live: list[LiveResult]
    calibrated_sim: pd.DataFrame | None = None
    calibrated_predictions: dict[str, Prediction] | None = None
    calibrated_timing: dict[str, Any] | None = None
    assumed_ready_s: list[float] = field(default_factory=list)
    checks: list[PredictionCheck] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    sim_wall_s: float = 0.0

    @property
    def exit_code(self) -> int:
        return compute_exit_code(self.checks)

    @property
    def metrics(self) -> list[str]:
        """Metrics shown, in order: the base ones, then every weight step either side reached."""
        steps = {m for p in (self.predictions, self.calibrated_predictions or {}) for m in p if m.startswith(WEIGHT_PREFIX)}
        steps |= {m for r in self.live for m in r.values if m.startswith(WEIGHT_PREFIX)}
        ordered = sorted(steps, key=lambda m: float(m[len(WEIGHT_PREFIX):]))
        return [m.name for m in BASE_METRICS] + ordered + [SWITCH_FAILURES.name]


def simulate_world(scenario: Scenario, spec: StrategySpec, settings: Settings) -> pd.DataFrame:
    run_fn = partial(simulate_validation_run, release=settings.release)
    return run_many(scenario, [spec], settings.sim_runs, settings.seed, executor=settings.executor,
                    progress=False, run_fn=run_fn)


def open_local_backend(scenario: Scenario, time_scale: float, state_dir: Path, seed: int):
    """A local backend whose probe and grace period are the scenario's, compressed by the
    time scale (a probe timeout is kept at >= 0.25 s wall: a loaded machine answers late)."""
    from rolloutlab.live.local import LocalBackend, Probe

    timing = scenario.service_under_test.pod_timing
    probe = Probe(period_s=max(0.05, timing.readiness.period / time_scale),
                  timeout_s=max(0.25, timing.readiness.timeout / time_scale),
                  success_threshold=timing.readiness.success_threshold,
                  failure_threshold=timing.readiness.failure_threshold)
    return LocalBackend(state_dir, probe=probe, termination_grace_s=max(0.5, timing.termination_grace / time_scale),
                        seed=seed)


def run_one_live(scenario: Scenario, spec: StrategySpec, settings: Settings, run: int, state_dir: Path,
                 max_wall_s: float, log: Callable[[str], None] | None = None,
                 waiting: Progress | None = None) -> LiveResult:
    """One live run on a fresh local backend, closed before returning whatever happens."""
    scale = settings.time_scale
    seed = settings.seed + run
    plan = make_plan(scenario, spec, release=settings.release, seed=seed, time_scale=scale)
    started = time.monotonic()
    backend = open_local_backend(scenario, scale, state_dir, seed)
    try:
        live: LiveRun = run_live(scenario, spec, backend, plan, time_scale=scale, seed=seed, run=run,
                                 max_rps=settings.max_rps, max_wall_s=max_wall_s, log=log, progress=waiting)
        calibration = backend.calibration()
        stats = backend.router_stats()
        events = list(backend.events)
        wall_minus_monotonic = time.time() - time.monotonic()
        grace = backend.termination_grace_s
    finally:
        backend.close()
    router = {"proxy_5xx": stats.proxy_5xx, "retries": stats.retries, "redispatches": stats.redispatches}
    changes = routing_change_times(live.summary.applied, events, origin_wall=live.summary.state.origin_wall,
                                   wall_minus_monotonic=wall_minus_monotonic, time_scale=scale)
    figures = {"backend": "local", "wall": calibration.summary(), "switches": [asdict(s) for s in calibration.switches]}
    return finish_live_run(live, plan, settings, run, seed, changes=changes, router=router, grace_wall_s=grace,
                           ready_wall_s=compute_created_to_ready(events),
                           switch_delays_wall_s=calibration.switch_delays_s, figures=figures, started=started)


def finish_live_run(live: LiveRun, plan: ReleasePlan, settings: Settings, run: int, seed: int, *,
                    changes: list[float], router: dict[str, int] | None, grace_wall_s: float,
                    ready_wall_s: list[float], switch_delays_wall_s: list[float] | None,
                    figures: dict[str, Any], started: float) -> LiveResult:
    """A live run's result, the same for both backends: who failed its requests around the
    routing changes (scenario seconds), its step weights, its metric values, and the
    measured pod starts and switch delays converted to scenario seconds (None: not
    measured, never 0)."""
    scale = settings.time_scale
    failures = compute_switch_failures(
        live.records, changes, canary=plan.canary.name, stable=plan.stable.name,
        before_s=settings.switch_window_before_wall_s * scale,
        after_s=(settings.switch_window_after_wall_s + grace_wall_s) * scale, time_scale=scale, router=router)
    row = dict(live.row)
    row.update(compute_live_step_weights(live.timeline["points"], live.records, plan.canary.name, rollout_end(row),
                                         scale))
    ready = [s * scale for s in ready_wall_s]
    switches = None if switch_delays_wall_s is None else [s * scale for s in switch_delays_wall_s]
    figures = {**figures, "time_scale": scale, "created_to_ready_scenario_s": ready,
               "switch_delay_scenario_s": switches}
    return LiveResult(run, seed, row, live.timeline, compute_metric_values(row), failures, figures, ready, switches,
                      time.monotonic() - started)


def check_live_form(scenario: Scenario, spec: StrategySpec, settings: Settings) -> None:
    """Raise ``LiveUnsupported`` (naming what has no live form) when the live side cannot
    play this scenario, strategy and release, as far as that is known before a backend
    starts (a fault the backend lacks is found when the run starts)."""
    if scenario.regions or spec.waves is not None:
        # the live side would run one place only and be judged against the waves' simulation
        raise LiveUnsupported("a scenario with regions (or a strategy with waves) runs live region by region "
                              "(rolloutlab live), and validate compares one place only: its live runs do not drive "
                              "the waves yet")
    live_scenario, _, _, _ = compute_live_scenario(scenario, replicas=settings.replicas, max_rps=settings.max_rps,
                                                   time_scale=settings.time_scale)
    make_plan(live_scenario, spec.with_replicas(settings.replicas), release=settings.release, seed=settings.seed,
              time_scale=settings.time_scale)


def run_validation(scenario: Scenario, spec: StrategySpec, settings: Settings, *,
                   state_root: Path | None = None, log: Callable[[str], None] | None = None,
                   say: Callable[[str], None] | None = None, waiting: Progress | None = None,
                   kube_api: Any = None) -> Validation:
    """Simulate, run live, calibrate, judge. Every live backend is closed (every kube
    namespace deleted) before this returns. ``kube_api``: the cluster's API client for
    ``backend="kube"`` (None: from the kubeconfig, ``settings.context``)."""
    settings.check()
    check_live_form(scenario, spec, settings)  # LiveUnsupported before anything runs
    say = say or (lambda _text: None)
    deadline = time.monotonic() + settings.max_minutes * 60
    live_scenario, world_scenario, user_rps, preview_rps = compute_live_scenario(
        scenario, replicas=settings.replicas, max_rps=settings.max_rps, time_scale=settings.time_scale)
    spec = spec.with_replicas(settings.replicas)
    release = forced_release(world_scenario, settings.release)
    timing = world_scenario.service_under_test.pod_timing
    world = LiveWorld(settings.replicas, user_rps, preview_rps, settings.time_scale,
                      world_scenario.traffic.rps, world_scenario.traffic.preview_rps,
                      max(0.05, timing.readiness.period / settings.time_scale),
                      max(0.25, timing.readiness.timeout / settings.time_scale),
                      max(0.5, timing.termination_grace / settings.time_scale))
    kube = None
    if settings.backend == "kube":  # the cluster is opened (and asked for its demo image) before simulating
        from rolloutlab.workflows.validate.kube_runs import KubeRuns

        kube = KubeRuns.open(settings, spec, world_scenario, api=kube_api)
        world = replace(world, probe_period_s=kube.probe.period_s, probe_timeout_s=kube.probe.timeout_s,
                        termination_grace_s=kube.termination_grace_s, backend="kube")
    try:
        return _run_validation(live_scenario, world_scenario, spec, settings, world, release, deadline, kube=kube,
                               state_root=state_root, log=log, say=say, waiting=waiting)
    finally:
        if kube is not None:
            kube.close()


def _run_validation(live_scenario: Scenario, world_scenario: Scenario, spec: StrategySpec, settings: Settings,
                    world: LiveWorld, release: ReleaseDraw, deadline: float, *, kube: Any,
                    state_root: Path | None, log: Callable[[str], None] | None, say: Callable[[str], None],
                    waiting: Progress | None) -> Validation:
    say(f"simulating {settings.sim_runs} runs ({release.kind} release, {settings.replicas} replicas, "
        f"{world_scenario.traffic.rps:.3g} rps per scenario second = {world.user_rps:.3g} per wall second live)")
    began = time.monotonic()
    sim = simulate_world(world_scenario, spec, settings)
    sim_wall = time.monotonic() - began
    first = simulate(world_scenario, spec, 0, run_seed_sequence(settings.seed, 0), timeline=True, release=release,
                     root_seed=settings.seed)
    sim_timeline = {"scenario": world_scenario.name, "strategy": spec.name, "run": 0, "seed": settings.seed,
                    "defect": first.row["defect"], "outcome": first.row["outcome"], "source": "sim",
                    "points": [asdict(p) for p in first.timeline]}
    predictions = compute_predictions(sim, settings.level)

    validation = Validation(world_scenario, spec, settings, world, release.kind, sim, sim_timeline, predictions, [],
                            sim_wall_s=sim_wall)
    validation.assumed_ready_s = compute_assumed_pod_ready(world_scenario, seed=settings.seed)
    if kube is not None:
        validation.notes += kube.differences(world_scenario, settings)
    own_root = state_root is None and kube is None  # kube keeps its state in the cluster
    root = Path(tempfile.mkdtemp(prefix="rolloutlab-validate-")) if own_root else state_root
    window_wall = world_scenario.duration / settings.time_scale
    overhead = LOCAL_OVERHEAD_S if kube is None else kube.overhead_s  # set-up and clean-up of a run
    try:
        for run in range(settings.live_runs):
            left = deadline - time.monotonic()
            if left < window_wall + overhead:
                validation.notes.append(f"live run {run} and later not started: the {settings.max_minutes:g}-minute "
                                        f"bound leaves {max(0.0, left):.0f}s, a run needs about "
                                        f"{window_wall + overhead:.0f}s")
                break
            say(f"live run {run + 1} of {settings.live_runs} on {settings.backend} (about {window_wall:.0f}s at "
                f"x{settings.time_scale:g})")
            max_wall_s = min(left - overhead + 5, window_wall + 60)
            if kube is not None:
                validation.live.append(kube.run_one(live_scenario, spec, settings, run, max_wall_s=max_wall_s,
                                                    log=log, waiting=waiting))
                continue
            state_dir = root / f"run-{run}"
            shutil.rmtree(state_dir, ignore_errors=True)  # a validation is a fresh rollout, never a resume
            state_dir.mkdir(parents=True)
            validation.live.append(run_one_live(live_scenario, spec, settings, run, state_dir,
                                                max_wall_s=max_wall_s, log=log, waiting=waiting))
    finally:
        if own_root:
            shutil.rmtree(root, ignore_errors=True)
        if kube is not None:
            validation.notes += kube.cleanup_notes
    if not validation.live:
        raise ValidateError(f"no live run fitted in --max-minutes {settings.max_minutes:g} "
                            f"(one takes about {window_wall + overhead:.0f}s at x{settings.time_scale:g})")

    measured = [s for r in validation.live for s in r.created_to_ready_s]
    if settings.calibrate:
        calibrated, fitted = compute_calibrated_scenario(world_scenario, measured)
        say(f"simulating {settings.sim_runs} runs again with the measured pod start time")
        validation.calibrated_sim = simulate_world(calibrated, spec, settings)
        validation.calibrated_predictions = compute_predictions(validation.calibrated_sim, settings.level)
        validation.calibrated_timing = fitted
    metrics = validation.metrics
    basis = "calibrated" if validation.calibrated_predictions is not None else "scenario"
    deciding = validation.calibrated_predictions or validation.predictions
    resolution = settings.timing_resolution_wall_s * settings.time_scale
    validation.checks = judge_live(deciding, validation.live, metrics, settings.hold, settings.level,
                                       settings.sim_runs, basis, resolution)
    if validation.calibrated_predictions is not None:  # shown, not deciding
        validation.checks += [
            PredictionCheck(j.metric, j.run, j.value, j.verdict, j.reason, False, "scenario")
            for j in judge_live(validation.predictions, validation.live, metrics, (), settings.level,
                                settings.sim_runs, "scenario", resolution)]
    return validation


__all__ = [
    "BACKENDS", "DEFAULT_NAMESPACE_PREFIX", "DEFAULT_NODE_PORT", "LiveResult", "LiveWorld", "RELEASES", "Settings",
    "Validation", "check_live_form", "compute_live_scenario", "finish_live_run", "forced_release", "open_local_backend", "run_one_live",
    "run_validation", "simulate_validation_run", "simulate_world",
]
