"""One sha256 over what the simulator produces, to prove a speed-up changed nothing.

Runs every scenario in scenarios/standard.yaml and scenarios/library/*.yaml under every
strategy the scenario names (``workflows.compare.resolve_scenario_strategies``, as
``check`` does), plus every bundled strategy on the standard scenario, ``--runs`` runs each
(serial executor), and the timelines ``sim.timelines.record_timelines`` picks for each;
and, since the per-request reference world reuses the fast world's code, a few runs of
the low-traffic scenario in ``request`` fidelity.
The results tables are hashed as CSV with full float precision (``%.17g``), the
timelines as JSON. Record the hash before changing the simulator; afterwards it must
print the same one.

    python benchmarks/sim_fingerprint.py            # 40 runs per scenario x strategy
    python benchmarks/sim_fingerprint.py --verbose  # one hash per scenario too, to find a mismatch
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

from rolloutlab.sim.montecarlo import run_many
from rolloutlab.sim.timelines import record_timelines
from rolloutlab.strategies import load_strategy
from rolloutlab.workflows.compare import load_scenario_file, resolve_scenario_strategies

ROOT = Path(__file__).resolve().parent.parent
SEED = 20240515
REQUEST_RUNS = 6  # per-request runs are slow (about 0.1 s each at 2 rps)


def _bundled_strategies() -> list:
    return [load_strategy(p) for p in sorted((ROOT / "strategies" / "library").glob("*.yaml"))]


def _cases() -> list[tuple[str, object, list]]:
    """(label, scenario, strategies) for every scenario file and the bundled set on standard."""
    files = [ROOT / "scenarios" / "standard.yaml", *sorted((ROOT / "scenarios" / "library").glob("*.yaml"))]
    cases = []
    for path in files:
        loaded = load_scenario_file(path)
        cases.append((path.name, loaded.scenario, resolve_scenario_strategies(loaded)))
    standard = load_scenario_file(files[0]).scenario
    cases.append(("standard.yaml+bundled", standard, _bundled_strategies()))
    return cases


def fingerprint(runs: int, verbose: bool = False) -> str:
    total = hashlib.sha256()
    for label, scenario, strategies in _cases():
        df = run_many(scenario, strategies, runs, SEED, executor="serial", progress=False)
        table = df.to_csv(index=False, float_format="%.17g").encode()
        timelines = json.dumps(record_timelines(scenario, strategies, df, SEED), sort_keys=True, default=repr).encode()
        part = hashlib.sha256(table + b"\0" + timelines).hexdigest()
        if verbose:
            print(f"{label:<40} {len(df):>5} rows  {part[:16]}")
        total.update(label.encode() + b"\0" + part.encode())
    low = load_scenario_file(ROOT / "scenarios" / "library" / "low-traffic.yaml")
    df = run_many(low.scenario, resolve_scenario_strategies(low), REQUEST_RUNS, SEED, executor="serial",
                  progress=False, fidelity="request")
    part = hashlib.sha256(df.to_csv(index=False, float_format="%.17g").encode()).hexdigest()
    if verbose:
        print(f"{'low-traffic.yaml (request fidelity)':<40} {len(df):>5} rows  {part[:16]}")
    total.update(b"request\0" + part.encode())
    return total.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40, help="runs per scenario x strategy")
    parser.add_argument("--verbose", action="store_true", help="print one hash per scenario")
    args = parser.parse_args()
    print(f"sim fingerprint ({args.runs} runs each): {fingerprint(args.runs, args.verbose)}")


if __name__ == "__main__":
    main()
