"""Rollout timelines of chosen runs, saved beside the results table for the report.

A run is deterministic given its seed, so instead of recording a timeline for every one
of thousands of runs, the runs worth showing (per strategy: the first run with a bad
release, and the first with a good one) are simulated again with the timeline on. The
rows must match what the Monte Carlo produced; a mismatch would mean the simulator is not
deterministic, and raises.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import pandas as pd

from rolloutlab.scenarios.release import run_seed_sequence
from rolloutlab.scenarios.schema import Scenario
from rolloutlab.sim.run import simulate
from rolloutlab.strategies import StrategySpec

TIMELINES_FILE = "timelines.json"


def pick_runs(df: pd.DataFrame) -> list[tuple[str, int]]:
    """(strategy, run) pairs worth a timeline: per strategy, the first bad and first good release."""
    picks = []
    for strategy, group in df.groupby("strategy", sort=False):
        for bad in (True, False):
            rows = group[(group["defect"] != "none") == bad]
            if len(rows):
                picks.append((str(strategy), int(rows["run"].iloc[0])))
    return picks


def record_timelines(scenario: Scenario, strategies: list[StrategySpec], df: pd.DataFrame, seed: int) -> list[dict[str, Any]]:
    """Re-simulate the picked runs with their timelines (fast mode, single runs only)."""
    by_name = {s.name: s for s in strategies}
    out = []
    for name, run in pick_runs(df):
        result = simulate(scenario, by_name[name], run, run_seed_sequence(seed, run), timeline=True, root_seed=seed)
        expected = df[(df["strategy"] == name) & (df["run"] == run)].iloc[0]
        for column in ("outcome", "requests", "failed_requests"):
            if result.row[column] != expected[column]:
                raise RuntimeError(f"re-running {name} run {run} gave {column}={result.row[column]!r}, "
                                   f"the Monte Carlo had {expected[column]!r}: the simulator is not deterministic")
        out.append({
            "scenario": scenario.name, "strategy": name, "run": run, "seed": seed,
            "defect": result.row["defect"], "outcome": result.row["outcome"],
            "points": [asdict(p) for p in result.timeline],
        })
    return out

