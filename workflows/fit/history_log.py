"""A simulated history written as a deployment log, so ``fit`` can be checked against a
world whose parameters are known: the simulator's history mode (``sim.history``) plays a
scenario's deployments, this writes them in the CSV format ``reports.deploy_log`` reads,
and ``fit`` must recover the scenario's numbers within its intervals.

Each row becomes what a team's log would record: ``status`` ``rolled_back`` when the
strategy's analysis rolled the release back, ``failure`` when users were hurt and a person
(or nobody) acted, ``success`` otherwise; ``failure_time`` when users were first hurt,
``detect_time`` when monitoring or analysis caught it, ``restore_time`` when service was
back. Times are written to the millisecond from ``start``.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from rolloutlab.results.table import Outcome
from rolloutlab.scenarios.schema import Scenario
from rolloutlab.sim.history import simulate_history
from rolloutlab.strategies import StrategySpec

LOG_COLUMNS = ("id", "service", "commit_time", "deploy_time", "status", "failure_time", "detect_time",
               "restore_time", "rework")
HISTORY_START = datetime(2025, 1, 6, tzinfo=UTC)
"""Where a written history starts: a past Monday, so every time is in the past."""


def simulate_history_log(scenario: Scenario, strategy: StrategySpec, path: Path, seed: int,
                         service: str = "web") -> Path:
    """Play one history of ``scenario`` under ``strategy`` and write it as a deployment log."""
    rows = simulate_history(scenario, strategy, 0, np.random.SeedSequence(seed), root_seed=seed)
    return write_history_log(rows, path, service)


def write_history_log(rows: Iterable[Mapping[str, Any]], path: Path, service: str = "web",
                      start: datetime = HISTORY_START) -> Path:
    """Write history rows (``sim.history.simulate_history``) as a CSV deployment log."""
    def at(seconds: float) -> str:
        if not math.isfinite(seconds):
            return ""
        return (start + timedelta(seconds=float(seconds))).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    with open(path, "w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(LOG_COLUMNS)
        for row in rows:
            failed = bool(row["change_failed"])
            if row["outcome"] in (Outcome.ROLLED_BACK.value, Outcome.FALSE_ROLLBACK.value):
                status = "rolled_back"
            else:
                status = "failure" if failed else "success"
            impact = float(row["impact_started_at"]) if failed else math.nan
            if status == "rolled_back" and not math.isfinite(impact):
                impact = float(row["started_at"])  # a false rollback: no one hurt, the log says "at deploy"
            restored = float(row["restored_at"]) if status != "success" else math.nan
            detected = float(row["detected_at"]) if status != "success" else math.nan
            if math.isfinite(detected):  # a log keeps failure <= detect <= restore
                detected = max(detected, impact)
                detected = min(detected, restored) if math.isfinite(restored) else detected
            out.writerow([row["release"], service, at(row["commit_at"]), at(row["started_at"]), status,
                          at(impact), at(detected), at(restored), "true" if row["rework"] else "false"])
    return path
