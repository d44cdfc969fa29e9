"""History mode for DORA: months of deployments played one after another.

A scenario's ``history`` asks for ``days`` of deployments arriving as a Poisson process
(``deploys_per_day``), each a release committed ``lead_time`` before it is deployed, and
each with the history's defect probability. A deployment that failed (users were hurt)
is followed, once restored, by an unplanned fix deployed ``rework_delay`` later: DORA's
deployment rework. Every deployment is one ordinary simulated run (``sim.run``) and one
row, its times shifted to the deployment's start, with extra columns ``deployment``,
``commit_at``, ``lead_time`` and ``rework``.

Deployment k of history r draws from ``SeedSequence(seed, spawn_key=(r, k))`` and the
schedule from ``SeedSequence(seed, spawn_key=(r,))``, so strategies compared on the same
history see the same schedule and the same releases (common random numbers).
"""

from __future__ import annotations

import heapq
from typing import Any

import numpy as np

from scenarios.schema import Scenario
from sim.run import child_seed, draw_release, make_streams, simulate
from sim.sampling import sample
from strategies import StrategySpec

DAY = 86400.0


def simulate_history(
    scenario: Scenario, strategy: StrategySpec, run: int, seed_seq: np.random.SeedSequence,
    fidelity: str = "fast", *, root_seed: int | None = None,
) -> list[dict[str, Any]]:
    """Rows of one history: one per deployment, in deployment order."""
    history = scenario.history
    if history is None:
        raise ValueError(f"scenario {scenario.name!r} has no history section")
    schedule_rng = np.random.default_rng(seed_seq)
    span = history.days * DAY
    count = int(schedule_rng.poisson(history.deploys_per_day * history.days))
    planned = sorted(float(t) for t in schedule_rng.uniform(0.0, span, size=count))
    queue: list[tuple[float, int, bool]] = [(t, i, False) for i, t in enumerate(planned)]
    heapq.heapify(queue)
    defect_probability = history.defect_probability
    rows: list[dict[str, Any]] = []
    busy_until = 0.0
    k = 0
    while queue:
        start, _, rework = heapq.heappop(queue)
        start = max(start, busy_until)  # one deployment at a time: a queued one waits
        if start > span:
            break
        deploy_seq = child_seed(seed_seq, k)
        lead = sample(history.lead_time, schedule_rng)
        release = draw_release(scenario, make_streams(deploy_seq)["release"], defect_probability)
        result = simulate(scenario, strategy, run, deploy_seq, fidelity, root_seed=root_seed,
                          release=release, started_at=start)
        row = result.row
        row.update(deployment=k, commit_at=start - lead, lead_time=lead, rework=rework,
                   release=f"{scenario.name}#{run}.{k}")
        rows.append(row)
        busy_until = max(start, row["finished_at"] if np.isfinite(row["finished_at"]) else start)
        if row["change_failed"] and np.isfinite(row["restored_at"]):
            fix_at = row["restored_at"] + sample(history.rework_delay, schedule_rng)
            heapq.heappush(queue, (fix_at, count + k, True))
        k += 1
    return rows
