"""One replication: draw the release, run the world, turn what happened into a results row.

Randomness comes from the run's ``numpy.random.SeedSequence`` only, split into named
streams (release, pods, traffic, faults, human) so that strategies compared on the same
run see the same release and the same on-call engineer (common random numbers), and the
same seed gives the same row bit for bit whatever process runs it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from rolloutlab.results.timeline import TimelinePoint
from rolloutlab.scenarios.release import ReleaseDraw, draw_release, make_streams
from rolloutlab.scenarios.schema import Scenario
from rolloutlab.sim.regions import WavesRun, simulate_waves, waves_row
from rolloutlab.sim.world import World
from rolloutlab.strategies import Role, StrategySpec

HORIZON_AFTER_WINDOW = 48 * 3600.0  # a paged human or a repair is followed this long past the window
FIDELITIES = ("fast", "request")


@dataclass(frozen=True)
class RunResult:
    row: dict[str, Any]
    timeline: list[TimelinePoint]


def simulate_run(
    scenario: Scenario, strategy: StrategySpec, run: int, seed_seq: np.random.SeedSequence,
    fidelity: str = "fast", *, timeline: bool = False, root_seed: int | None = None,
) -> dict[str, Any]:
    """One results-table row for one run of ``strategy`` on ``scenario``."""
    return simulate(scenario, strategy, run, seed_seq, fidelity, timeline=timeline, root_seed=root_seed).row


def simulate(
    scenario: Scenario, strategy: StrategySpec, run: int, seed_seq: np.random.SeedSequence,
    fidelity: str = "fast", *, timeline: bool = False, root_seed: int | None = None,
    release: ReleaseDraw | None = None, started_at: float = 0.0,
) -> RunResult:
    """Run the world once; the row and (when asked) the rollout's timeline."""
    if fidelity not in FIDELITIES:
        raise ValueError(f"fidelity must be one of {', '.join(FIDELITIES)}, not {fidelity!r}")
    seed = root_seed if root_seed is not None else int(seed_seq.entropy if isinstance(seed_seq.entropy, int) else 0)
    if scenario.regions or strategy.waves is not None:
        if fidelity == "request":
            raise ValueError("the per-request reference mode runs one place only, not regions or waves")
        waves = simulate_waves(scenario, strategy, seed_seq, horizon=scenario.duration + HORIZON_AFTER_WINDOW,
                               timeline=timeline, release=release)
        return RunResult(_waves_row(waves, scenario, strategy, run, seed, started_at), waves.timeline())
    streams = make_streams(seed_seq)
    if release is None:
        release = draw_release(scenario, streams["release"])
    spec = strategy if strategy.replicas else strategy.with_replicas(scenario.service_under_test.replicas)
    if fidelity == "request":
        from rolloutlab.sim.reference import RequestWorld  # the slow per-request reference, only to check the fast mode

        world: World = RequestWorld(scenario, spec, release, streams, record_timeline=timeline)
    else:
        world = World(scenario, spec, release, streams, record_timeline=timeline)
    world.run(horizon=scenario.duration + HORIZON_AFTER_WINDOW)
    return RunResult(_row(world, scenario, spec, run, seed, started_at), world.timeline)


def _row(world: World, scenario: Scenario, spec: StrategySpec, run: int, seed: int, offset: float) -> dict[str, Any]:
    s = world.status
    defective = world.release.defect is not None
    harmed = world.impact_started_at is not None
    restored = world.impact_ended_at if (harmed and not world.impact_on) else None
    finished = s.completed_at if s.completed else s.restored_at
    if world.reverted_at is not None:
        finished = world.reverted_at  # a release rolled back by hand after promotion ends there
    outcome = _outcome(world, defective, harmed)
    nan = math.nan
    requests, failed = int(world.window.requests), int(world.window.failed_requests)
    # what the old version would have failed on the same requests: the release's own share is the rest
    baseline = requests * scenario.service_under_test.baseline_error_rate
    slo = getattr(scenario, "slo", None)  # optional scenario field (objective, window in seconds)

    def at(value: float | None) -> float:
        return nan if value is None else value + offset

    return {
        "source": "sim",
        "scenario": scenario.name,
        "strategy": spec.name,
        "run": run,
        "seed": seed,
        "release": f"{scenario.name}#{run}",
        "defect": world.release.kind,
        "outcome": outcome,
        "started_at": at(0.0),
        "finished_at": at(finished),
        "detected_at": at(world.detected_at if defective or s.aborted or world.alert_fired_at is not None else None),
        "restored_at": at(restored),
        "requests": requests,
        "failed_requests": failed,
        "peak_error_rate": float(world.peak_error_rate),
        "replica_seconds": float(world.window.replica_seconds),
        # extra columns
        "change_failed": bool(harmed),  # users were hurt by the change: its code or its migration
        "false_rollback": outcome == "false_rollback",
        "impact_started_at": at(world.impact_started_at),
        "time_to_restore": (restored - world.impact_started_at) if restored is not None else nan,
        "detected_by": world.detected_by,
        "rollout_duration": (finished if finished is not None else nan),
        "human_action": world.human_action,
        "ended_at": at(world.env.now),
        "exposed_requests": int(world.window.exposed_requests),
        "final_canary_share": float(world.shares(world.env.now)[Role.CANARY]),
        "ends_healthy": not world.impact_on,
        "users_affected": float(world.window.users_affected),
        "mirrored_requests": int(world.window.mirrored_requests),
        "duplicated_writes": int(world.window.duplicated_writes),
        "regions_reached": 1,
        "blast_radius": nan,
        "baseline_failed_requests": float(baseline),
        "release_failed_requests": float(failed - baseline),
        "slo_objective": float(slo.objective) if slo is not None else nan,
        "slo_window": float(slo.window) if slo is not None else nan,
    }


def _waves_row(waves: WavesRun, scenario: Scenario, spec: StrategySpec, run: int, seed: int,
               offset: float) -> dict[str, Any]:
    """The row of a run across regions: counts summed, times from the first detection
    and the last restore, the outcome of the whole rollout (``sim.regions.waves_row``)."""
    f = waves_row(waves)
    nan = math.nan
    defective = waves.release.defect is not None
    harmed = f["impact_started_at"] is not None
    restored = f["impact_ended_at"] if harmed else None
    requests, failed = int(f["requests"]), int(f["failed_requests"])
    baseline = sum(w.window.requests * w.sut.baseline_error_rate for w in waves.worlds.values())
    slo = getattr(scenario, "slo", None)
    finished = f["finished"]

    def at(value: float | None) -> float:
        return nan if value is None else value + offset

    return {
        "source": "sim", "scenario": scenario.name, "strategy": spec.name, "run": run, "seed": seed,
        "release": f"{scenario.name}#{run}", "defect": waves.release.kind, "outcome": f["outcome"],
        "started_at": at(0.0), "finished_at": at(finished),
        "detected_at": at(f["detected_at"] if defective or waves.status.stopped or f["detected_at"] is not None else None),
        "restored_at": at(restored), "requests": requests, "failed_requests": failed,
        "peak_error_rate": f["peak_error_rate"], "replica_seconds": f["replica_seconds"],
        "change_failed": bool(harmed), "false_rollback": f["outcome"] == "false_rollback",
        "impact_started_at": at(f["impact_started_at"]),
        "time_to_restore": (restored - f["impact_started_at"]) if restored is not None else nan,
        "detected_by": f["detected_by"], "rollout_duration": finished if finished is not None else nan,
        "human_action": f["human_action"], "ended_at": at(f["ended_at"]),
        "exposed_requests": int(f["exposed_requests"]), "final_canary_share": f["final_canary_share"],
        "ends_healthy": f["ends_healthy"], "users_affected": f["users_affected"],
        "mirrored_requests": int(f["mirrored_requests"]), "duplicated_writes": int(f["duplicated_writes"]),
        "regions_reached": int(f["regions_reached"]), "blast_radius": float(f["blast_radius"]),
        "baseline_failed_requests": float(baseline), "release_failed_requests": float(failed - baseline),
        "slo_objective": float(slo.objective) if slo is not None else nan,
        "slo_window": float(slo.window) if slo is not None else nan,
    }


def _outcome(world: World, defective: bool, harmed: bool) -> str:
    s = world.status
    if world.human_action == "repair_forward" and world.repaired:
        return "repaired_forward"
    if s.aborted:
        if not defective:
            return "false_rollback"
        return "rolled_back_manual" if world.human_action == "abort" else "rolled_back"
    if s.completed:
        if world.reverted_at is not None:
            return "rolled_back_manual" if defective else "false_rollback"
        return "failed_undetected" if defective and harmed else "promoted"
    return "stuck"
