"""Results tables for the report tests, shaped like what the simulator writes, with the
columns the report reads (release-caused failures, SLO, censoring) filled in by hand so
the tests do not depend on a simulator run."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from rolloutlab.results.table import to_frame
from rolloutlab.results.timeline import TimelineEvent

WINDOW = 1800.0
STRATEGIES = ("blue-green", "canary", "rolling")


def standard_like(runs: int = 120, release_columns: bool = True, slo: bool = True,
                  unrestored: int = 0) -> pd.DataFrame:
    """A table shaped like 300 runs of the standard scenario: 1.8k baseline failures expected
    per run for everyone (the old version's 0.1%), canary restoring in about a minute,
    rolling in 5 to 60 minutes with a few failures up to 90k requests, blue-green never
    hurting users. Release-caused failures are the excess over the baseline, so a healthy
    run's is a little above or below zero by chance. ``slo``: the scenario states 99.9% over
    30 days. ``unrestored``: that many of rolling's failures are never restored in the window."""
    rng = np.random.default_rng(7)
    rows = []
    for strategy in STRATEGIES:
        for run in range(runs):
            failed = run % 5 == 1 and strategy != "blue-green"
            baseline = 1800.0
            noise = int(rng.normal(0, 42))
            if strategy == "rolling" and failed:
                restore = float(rng.uniform(300, 3600))
                caused = int(restore * 25)
                if run // 5 < unrestored:
                    restore, caused = math.nan, 40_000
            elif failed:
                restore = float(rng.uniform(76.0, 81.0))
                caused = int(rng.integers(20, 400))
            else:
                restore, caused = math.nan, 0
            duration = {"blue-green": 261.0, "canary": 455.0, "rolling": 42.0}[strategy]
            rows.append({
                "source": "sim", "scenario": "standard", "strategy": strategy, "run": run, "seed": 1,
                "release": f"standard#{run}", "defect": "error_rate" if failed else "none",
                "outcome": "rolled_back" if failed else "promoted", "started_at": 0.0,
                "finished_at": duration, "detected_at": 60.0 + restore if failed else math.nan,
                "restored_at": 60.0 + restore if failed else math.nan, "requests": 1_800_000,
                "exposed_requests": caused,
                "failed_requests": int(baseline) + noise + caused, "peak_error_rate": 0.05 if failed else 0.001,
                "replica_seconds": {"blue-green": 22_700.0, "canary": 18_200.0, "rolling": 18_300.0}[strategy],
                "change_failed": failed, "time_to_restore": restore, "rollout_duration": duration,
                "impact_started_at": 60.0 if failed else math.nan, "ended_at": max(WINDOW, 60.0 + restore) if math.isfinite(restore) else WINDOW,
                "baseline_failed_requests": baseline, "release_failed_requests": float(noise + caused),
                "detected_by": "analysis" if failed else "",
                "slo_objective": 0.999 if slo else math.nan, "slo_window": 30 * 86400.0 if slo else math.nan,
            })
    df = to_frame(rows)
    if not release_columns:
        df = df.drop(columns=["baseline_failed_requests", "release_failed_requests"])
    return df


def typed_event(text: str) -> TimelineEvent:
    """A typed event from the tests' shorthand "Reason: message" (a measurement's message
    starts with its metric and phase, as the controller writes it)."""
    reason, _, message = text.partition(": ")
    if reason == "Measurement":
        metric, _, rest = message.partition(": ")
        return TimelineEvent(reason, message, metric, rest.split(" ", 1)[0])
    return TimelineEvent(reason, message)
