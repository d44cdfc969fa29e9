"""History mode for DORA: months of deployments played one after another.

A scenario's ``history`` asks for ``days`` of deployments arriving as a Poisson process
(``deploys_per_day``), each a release committed ``lead_time`` before it is deployed, and
each with the history's defect probability. A deployment that failed (users were hurt)
is followed, once restored, by an unplanned fix deployed ``rework_delay`` later: DORA's
deployment rework. Every deployment is one ordinary simulated run (``sim.run``) and one
row, its times shifted to the deployment's start, with extra columns ``deployment``,
``commit_at``, ``lead_time`` and ``rework``.

Randomness is keyed by what a deployment is, not by when it ran: the schedule, each
planned deployment (by its index) and each fix (by the planned deployment its chain of
fixes started from, and its depth) have their own seed children. Strategies compared on
the same history therefore see the same schedule and the same planned releases with the
same lead times, even after their failures (and so their fixes) differ (common random
numbers). Lead time runs from commit to the start of the deployment, so a deployment
queued behind another waits into its lead time.
"""

from __future__ import annotations

import heapq
from typing import Any

import numpy as np

from rolloutlab.scenarios.release import STREAMS, child_seed, draw_release, make_streams
from rolloutlab.scenarios.schema import Scenario
from rolloutlab.sim.run import simulate
from rolloutlab.sim.sampling import sample
from rolloutlab.strategies import StrategySpec

DAY = 86400.0


def simulate_history(
    scenario: Scenario, strategy: StrategySpec, run: int, seed_seq: np.random.SeedSequence,
    fidelity: str = "fast", *, root_seed: int | None = None,
) -> list[dict[str, Any]]:
    """Rows of one history: one per deployment, in deployment order."""
    history = scenario.history
    if history is None:
        raise ValueError(f"scenario {scenario.name!r} has no history section")
    plan_seq, planned_seq, rework_seq = (child_seed(seed_seq, i) for i in range(3))
    plan_rng = np.random.default_rng(plan_seq)
    span = history.days * DAY
    count = int(plan_rng.poisson(history.deploys_per_day * history.days))
    planned = sorted(float(t) for t in plan_rng.uniform(0.0, span, size=count))
    # (due time, order, origin, depth): origin is the planned deployment a chain of fixes
    # started from, so every deployment's randomness is keyed by what it is, not by when it
    # happened to run; strategies then share planned releases even after their failures differ
    queue: list[tuple[float, int, int, int]] = [(t, i, i, 0) for i, t in enumerate(planned)]
    heapq.heapify(queue)
    rows: list[dict[str, Any]] = []
    busy_until = 0.0
    order = count
    while queue:
        due, _, origin, depth = heapq.heappop(queue)
        if due > span:
            break
        deploy_seq = child_seed(planned_seq, origin) if depth == 0 else child_seed(child_seed(rework_seq, origin), depth)
        own = np.random.default_rng(child_seed(deploy_seq, len(STREAMS)))  # lead time and fix delay: not a world stream
        lead = sample(history.lead_time, own)
        fix_delay = sample(history.rework_delay, own)
        start = max(due, busy_until)  # one deployment at a time: a queued one waits, and its lead time grows
        release = draw_release(scenario, make_streams(deploy_seq)["release"], history.defect_probability)
        row = simulate(scenario, strategy, run, deploy_seq, fidelity, root_seed=root_seed,
                       release=release, started_at=start).row
        row.update(deployment=len(rows), commit_at=due - lead, lead_time=start - (due - lead), rework=depth > 0,
                   release=f"{scenario.name}#{run}.{origin}" + (f"-fix{depth}" if depth else ""))
        rows.append(row)
        end = row["finished_at"] if np.isfinite(row["finished_at"]) else start
        busy_until = max(start, end)
        if row["change_failed"] and np.isfinite(row["restored_at"]):
            order += 1
            heapq.heappush(queue, (row["restored_at"] + fix_delay, order, origin, depth + 1))
    return rows
