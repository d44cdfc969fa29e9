"""How much one controller decision costs, per strategy and per judge.

The simulator calls ``reconcile`` on every state change of every run, so its cost bounds
the simulator's speed (the simulator issue targets <= 2 ms per replication). This prints
microseconds per reconcile call over complete dry runs of each strategy, and each figure
as a ratio to the plain rolling update measured in the same run (machines here are
shared and noisy: compare the ratios, not the absolute times).

    python benchmarks/bench_reconcile.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import time

from rolloutlab.strategies import Role, StrategySpec, load_strategy
from rolloutlab.strategies.dry_run import IdealWorld

JUDGES = {
    "threshold": {"successCondition": "result < 0.02"},
    "mannWhitney": {"judge": {"mannWhitney": {"minPoints": 4}}},
    "sequential": {"judge": {"sequential": {"alpha": 0.05}}},
}


def canary_with_judge(judge: str) -> StrategySpec:
    metric = {"name": "errors", "interval": "30s", **JUDGES[judge]}
    return StrategySpec.model_validate({
        "name": f"canary-{judge}", "replicas": 10,
        "analysisTemplates": [{"name": "t", "metrics": [metric]}],
        "strategy": {"canary": {"analysis": {"templates": [{"templateName": "t"}]},
                                "steps": [{"setWeight": 10}, {"pause": {"duration": "5m"}},
                                          {"setWeight": 50}, {"pause": {"duration": "5m"}}]}},
    })


def cases() -> dict[str, StrategySpec]:
    out = {name: load_strategy(name).with_replicas(10) for name in ("rolling", "blue-green", "canary")}
    out.update({f"canary+{j}": canary_with_judge(j) for j in JUDGES})
    return out


def time_dry_run(spec: StrategySpec) -> tuple[float, int]:
    """Seconds spent inside the world's steps (reconcile + applying actions), and the call count."""
    world = IdealWorld(spec, rps=1000.0)
    world.error_rate[Role.STABLE] = 0.001  # baseline errors, so every judge has data to weigh
    start = time.perf_counter()
    world.run(until=7200, tick=15)
    return time.perf_counter() - start, len(world.log)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    results = {}
    for name, spec in cases().items():
        samples = []
        for _ in range(args.repeats):
            seconds, calls = time_dry_run(spec)
            samples.append(seconds / calls * 1e6)
        results[name] = (statistics.median(samples), min(samples), max(samples), calls)
    base = results["rolling"][0]
    print(f"{'case':<22}{'calls':>7}{'us/call median':>16}{'min':>9}{'max':>9}{'x rolling':>11}")
    for name, (median, low, high, calls) in results.items():
        print(f"{name:<22}{calls:>7}{median:>16.1f}{low:>9.1f}{high:>9.1f}{median / base:>11.2f}")


if __name__ == "__main__":
    main()
