"""The results row of a live rollout in waves: one row across every region, with the
simulator's columns (``sim.run``'s row for regions, ``sim.regions.waves_row``).

Each region first gets its own row from ``live.session.results_row`` (its requests, its
failures, its cost, on the waves' clock); the waves' row sums the counts, takes the worst
peak, the first harm and the first detection anywhere, and the waves' own finish and
outcome. ``blast_radius`` is measured from the load generators' records: the users (of
every region's population) who got at least one answer from the new version
(``X-Version``) before the first detection in any region, over all the regions' users.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from rolloutlab.live.loadgen import NOT_SERVED
from rolloutlab.live.runner import RunSummary
from rolloutlab.live.session import detected_by
from rolloutlab.results.table import DetectedBy
from rolloutlab.scenarios.schema import Scenario
from rolloutlab.strategies import RolloutStatus, StrategySpec
from rolloutlab.strategies.waves import WavesStatus

SUMMED = ("requests", "failed_requests", "exposed_requests", "replica_seconds", "baseline_failed_requests",
          "router_failures", "release_failures", "live_user_rps", "live_preview_rps")


@dataclass
class RegionResult:
    """One region's part of the run: its rollout, its users' requests, its own row."""

    name: str
    users: int  # the region's user population (its share of the scenario's users)
    summary: RunSummary
    records: pd.DataFrame  # its load generator's records, ``at`` in waves seconds
    row: dict[str, Any]  # live.session.results_row for the region alone
    canary: str  # the new version's name (X-Version)
    rolled_back_at: float | None  # a stop-the-line rollback finished there (waves seconds)


def compute_blast_radius(regions: Mapping[str, RegionResult], until: float) -> float:
    """Share of all regions' users who got an answer from the new version in [0, ``until``)."""
    total = sum(r.users for r in regions.values())
    exposed = 0
    for r in regions.values():
        rec = r.records
        if not len(rec) or "user" not in rec:
            continue
        met = rec[(rec["target"] == "user") & ~rec["result"].isin([o.value for o in NOT_SERVED])
                  & (rec["version"] == r.canary) & (rec["at"] >= 0) & (rec["at"] < until) & rec["user"].notna()]
        exposed += int(met["user"].nunique())
    return exposed / total if total else math.nan


def _first_detection(status: WavesStatus, regions: Mapping[str, RegionResult]) -> tuple[float | None, str]:
    """When and by what the release was first caught: the region that stopped the line,
    else the earliest abort anywhere; a person's rollback of every region is ``manual``."""
    failed = regions.get(status.failed_region)
    if failed is not None and failed.summary.status.aborted:
        return failed.summary.status.aborted_at, detected_by(failed.summary.status)
    aborted = [r.summary.status for r in regions.values() if r.summary.status.aborted]
    if aborted:
        first: RolloutStatus = min(aborted, key=lambda s: s.aborted_at)
        return first.aborted_at, detected_by(first)
    if status.stopped:
        return status.stopped_at, DetectedBy.MANUAL.value
    return None, ""


def waves_row(scenario: Scenario, spec: StrategySpec, status: WavesStatus, regions: Mapping[str, RegionResult], *,
              release: str, defect: str, run: int, seed: int, time_scale: float, ended_at: float,
              resumed: bool) -> dict[str, Any]:
    """The row across regions (see the module docstring); times in waves seconds."""
    nan = math.nan
    rows = [r.row for r in regions.values()]
    defective = defect != "none"
    detected_at, caught_by = _first_detection(status, regions)
    impact = [row["impact_started_at"] for row in rows if not math.isnan(row["impact_started_at"])]
    impact_started = min(impact) if defective and impact else nan
    harmed = not math.isnan(impact_started)
    finished = status.completed_at if status.completed else status.restored_at
    restored = status.restored_at if harmed and status.stopped else None
    time_to_restore = restored - impact_started if restored is not None else nan
    if time_to_restore < 0:  # a resumed run saw its first answer of the new version after the restore
        time_to_restore = nan
    started = [r for r in regions.values() if r.name in status.started]
    still_new = [r for r in started if r.rolled_back_at is None
                 and not (r.summary.status.aborted and r.summary.status.restored_at is not None)]
    users = sum(r.users for r in regions.values())
    user_rps = sum(row["live_user_rps"] for row in rows)
    affected = [r.row["users_affected"] * r.users for r in regions.values()]
    until = detected_at if detected_at is not None else scenario.duration
    sums = {column: sum(row[column] for row in rows) for column in SUMMED}
    slo = getattr(scenario, "slo", None)
    row = {
        "source": rows[0]["source"],
        "scenario": scenario.name,
        "strategy": spec.name,
        "run": run,
        "seed": seed,
        "release": release,
        "defect": defect,
        "outcome": _outcome(status, defective, harmed, caught_by),
        "started_at": status.wave_started_at[0] if status.wave_started_at else nan,
        "finished_at": nan if finished is None else float(finished),
        "detected_at": nan if detected_at is None else float(detected_at),
        "detected_by": caught_by,
        "restored_at": nan if restored is None else float(restored),
        "requests": int(sums["requests"]),
        "failed_requests": int(sums["failed_requests"]),
        "peak_error_rate": float(max(row["peak_error_rate"] for row in rows)),
        "replica_seconds": float(sums["replica_seconds"]),
        "change_failed": bool(harmed),
        "false_rollback": bool(status.stopped and not defective),
        "impact_started_at": impact_started,
        "time_to_restore": time_to_restore,
        "rollout_duration": nan if finished is None else float(finished),
        "human_action": "stop_the_line" if any(r.rolled_back_at is not None for r in regions.values()) else "none",
        "ended_at": float(ended_at),
        "exposed_requests": int(sums["exposed_requests"]),
        "final_canary_share": (float(sum(row["final_canary_share"] * row["live_user_rps"] for row in rows) / user_rps)
                               if user_rps > 0 else nan),
        "ends_healthy": not defective or not still_new,
        "baseline_failed_requests": float(sums["baseline_failed_requests"]),
        "release_failed_requests": float(sums["failed_requests"] - sums["baseline_failed_requests"]),
        "users_affected": float(sum(affected) / users) if users else nan,
        "regions_reached": len(status.started),
        "blast_radius": compute_blast_radius(regions, until),
        "slo_objective": float(slo.objective) if slo is not None else nan,
        "slo_window": float(slo.window) if slo is not None else nan,
        # live only
        "time_scale": float(time_scale),
        "live_user_rps": float(user_rps),
        "live_preview_rps": float(sums["live_preview_rps"]),
        "router_failures": int(sums["router_failures"]),
        "release_failures": int(sums["release_failures"]),
        "resumed": bool(resumed),
    }
    if any("mirrored_requests" in r for r in rows):
        row["mirrored_requests"] = int(sum(r.get("mirrored_requests", 0) for r in rows))
    return row


def _outcome(status: WavesStatus, defective: bool, harmed: bool, caught_by: str) -> str:
    """The simulator's outcome words for the whole rollout (``sim.regions._outcome``)."""
    if status.stopped:
        if not defective:
            return "false_rollback"
        return "rolled_back_manual" if caught_by == DetectedBy.MANUAL.value else "rolled_back"
    if status.completed:
        return "failed_undetected" if defective and harmed else "promoted"
    return "stuck"


__all__ = ["RegionResult", "compute_blast_radius", "waves_row"]
