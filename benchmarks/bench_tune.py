"""Speed of `rolloutlab tune`, as issue 15 asks for it: the bundled canary on the standard
scenario, 200 candidates, early stopping on, target under 3 minutes on 2 cores, and
reproducible from its seed.

    python benchmarks/bench_tune.py            # 200 candidates, then a 24-candidate repeat twice
    python benchmarks/bench_tune.py --quick    # 40 candidates

Printed: the wall time of the search, the runs it simulated against what scoring every
candidate on every stage would have cost (the saving of early stopping, a ratio from the
same run), and whether two searches with one seed wrote the same candidates table.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import time

from rolloutlab.scenarios import bundled_scenario, load_scenario
from rolloutlab.strategies import load_strategy
from rolloutlab.workflows.tune.command import candidates_frame, tune
from rolloutlab.workflows.tune.objectives import DEFAULT_CONSTRAINTS, parse_constraint, parse_objective
from rolloutlab.workflows.tune.search import DEFAULT_STAGES, TuneSettings


def settings(candidates: int, executor: str) -> TuneSettings:
    return TuneSettings((parse_objective("failed_requests.mean"), parse_objective("rollout_duration.mean")),
                        tuple(parse_constraint(c) for c in DEFAULT_CONSTRAINTS), candidates=candidates,
                        stages=DEFAULT_STAGES, batch=8, seed=1, executor=executor)


def digest(result) -> str:
    return hashlib.sha256(candidates_frame(result).to_csv(index=False).encode()).hexdigest()[:16]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--executor", default="process")
    args = parser.parse_args()
    scenario = load_scenario(bundled_scenario("standard"))
    canary = load_strategy("canary")
    n = 40 if args.quick else 200
    print(f"machine: {os.cpu_count()} cores; executor {args.executor}")
    start = time.perf_counter()
    result = tune(scenario, canary, settings(n, args.executor), confirm_runs=2000)
    wall = time.perf_counter() - start
    search = result.search
    full = (len(search.candidates) + 1) * DEFAULT_STAGES[-1]
    stopped = sum(1 for c in search.candidates if c.stopped)
    print(f"1. tune canary on standard, {n} candidates, stages {DEFAULT_STAGES}: {wall:.1f} s wall "
          f"(target < 180 s), confirmation on 2,000 fresh runs included")
    print(f"   {search.simulated_runs:,} runs simulated; without early stopping {full:,} "
          f"(x{full / search.simulated_runs:.1f} more); {stopped} of {n} candidates stopped early")
    if result.confirmation is not None:
        mine, tuned = result.confirmation.figures["failed_requests.mean"]
        print(f"   failed requests per deployment: yours {mine.value:.0f} [{mine.low:.0f}, {mine.high:.0f}], "
              f"tuned {tuned.value:.0f} [{tuned.low:.0f}, {tuned.high:.0f}]")
    print("2. reproducible from its seed (24 candidates, twice)")
    a, b = (digest(tune(scenario, canary, settings(24, args.executor), confirm_runs=50)) for _ in range(2))
    print(f"   candidates table {a} and {b}: {'same' if a == b else 'DIFFERENT'}")


if __name__ == "__main__":
    main()
