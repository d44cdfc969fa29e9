"""Executors: the same Monte Carlo batch on serial, a process pool and a local Dask cluster.
Every figure is printed, and every comparison is a ratio measured in the same run (the
machines are shared and noisy: rounds are interleaved, and ratios are taken of each
executor's best round, the least disturbed, with the medians printed beside them).

    python benchmarks/bench_executors.py            # 3,000 runs x 3 strategies, 3 rounds
    python benchmarks/bench_executors.py --quick    # 500 runs, for a quick look
    python benchmarks/bench_executors.py --threads  # also a Dask cluster of threads (the GIL case)

1. ``run_many`` of scenarios/standard.yaml under blue-green, canary and rolling on serial,
   a 2-process pool and a Dask ``LocalCluster`` of 2 worker processes of one thread each on
   127.0.0.1; the three tables must be the same bytes (CSV as ``write_results`` writes it).
   Ratios dask/process (target <= 1.15) and process/serial. The first Dask batch on the
   fresh cluster is printed apart: its spawned workers import the simulator first.
2. Many small batches, as ``rolloutlab tune`` sends them: one executor per call against one
   ``open_executor`` session for all calls.
3. (``--threads``) the same batch on a Dask cluster whose 2 workers are threads of one
   process: a run holds the GIL, so it takes about as long as serial.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import time
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from typing import TypeVar

import pandas as pd

from rolloutlab.scenarios import bundled_scenario, load_scenario
from rolloutlab.sim.montecarlo import open_executor, run_many
from rolloutlab.strategies import load_strategy

STRATEGIES = ("blue-green", "canary", "rolling")
WORKERS = 2  # the Dask cluster's worker processes and the pool's: the same cores
SEED = 1
TARGET_DASK_OVER_PROCESS = 1.15
T = TypeVar("T")


@contextmanager
def local_dask(processes: bool = True):
    """A Dask cluster of WORKERS workers of one thread on 127.0.0.1; yields its dask:// executor string."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=WORKERS, threads_per_worker=1, processes=processes, protocol="tcp",
                           host="127.0.0.1", dashboard_address=None)
    client = Client(cluster, set_as_default=False)
    try:
        client.wait_for_workers(WORKERS, timeout=120)
        yield "dask://" + cluster.scheduler_address.removeprefix("tcp://")
    finally:
        client.close()
        cluster.close()


def table_digest(table: pd.DataFrame) -> str:
    """SHA-256 of the table as results.csv holds it (floats written with repr)."""
    return hashlib.sha256(table.to_csv(index=False).encode()).hexdigest()


def timed(call: Callable[[], T]) -> tuple[float, T]:
    start = time.perf_counter()
    table = call()
    return time.perf_counter() - start, table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts")
    parser.add_argument("--runs", type=int, help="runs per strategy (default 3,000; --quick 500)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--threads", action="store_true", help="also a Dask cluster of threads in one process")
    args = parser.parse_args()
    runs = args.runs or (500 if args.quick else 3000)
    scenario = load_scenario(bundled_scenario("standard"))
    specs = [load_strategy(name) for name in STRATEGIES]

    def batch(**how) -> pd.DataFrame:
        return run_many(scenario, specs, runs, SEED, progress=False, **how)

    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; "
          f"{runs:,} runs x {len(specs)} strategies, {args.rounds} rounds")
    print(f"\n1. one batch on each executor ({WORKERS} workers for process and Dask)")
    run_many(scenario, specs, 2, SEED, executor="serial", progress=False)  # import the simulator here first
    times: dict[str, list[float]] = {"serial": [], "process": [], "dask": []}
    digests: dict[str, set[str]] = {name: set() for name in times}
    with local_dask() as address:
        cold, table = timed(lambda: batch(executor=address))
        digests["dask"].add(table_digest(table))
        print(f"   dask, first batch on the fresh cluster: {cold:6.2f} s (workers import the simulator)")
        ways = {"serial": {"executor": "serial"}, "process": {"executor": "process", "workers": WORKERS},
                "dask": {"executor": address}}
        for round_ in range(args.rounds):
            for name, how in ways.items():
                seconds, table = timed(lambda how=how: batch(**how))
                times[name].append(seconds)
                digests[name].add(table_digest(table))
            print(f"   round {round_ + 1}: " + ", ".join(f"{n} {t[-1]:.2f} s" for n, t in times.items()), flush=True)
    best = {name: min(t) for name, t in times.items()}  # the least disturbed round: the figure to compare
    median = {name: statistics.median(t) for name, t in times.items()}
    same = len(set.union(*digests.values())) == 1
    for name in times:
        print(f"   {name:<8} best {best[name]:6.2f} s, median {median[name]:6.2f} s "
              f"({best[name] / (runs * len(specs)) * 1000:.2f} ms per run at best)")
    digest = next(iter(digests["serial"]))[:12]
    print(f"   tables: {'the same bytes' if same else 'DIFFERENT'} on all three (sha256 {digest})")
    for label, figures in (("best", best), ("median", median)):
        ratio = figures["dask"] / figures["process"]
        verdict = "met" if ratio <= TARGET_DASK_OVER_PROCESS else "**missed**"
        print(f"   {label:<6} dask / process = {ratio:.2f} (target <= {TARGET_DASK_OVER_PROCESS}: {verdict}), "
              f"process / serial = {figures['process'] / figures['serial']:.2f}")

    small_batches(scenario, specs[1], calls=10 if args.quick else 30)

    if args.threads:
        print(f"\n3. the same batch on a Dask cluster of {WORKERS} threads in one process (the GIL case)")
        with local_dask(processes=False) as address, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            seconds, table = timed(lambda: batch(executor=address))
        print(f"   {seconds:.2f} s = {seconds / best['serial']:.2f} x serial's best round, "
              f"{seconds / best['process']:.2f} x the process pool's; same bytes: "
              f"{table_digest(table) in digests['serial']}")
        for warning in caught:
            print(f"   warned: {str(warning.message)[:110]}...")
    if not same:
        raise SystemExit("the executors gave different tables")


def small_batches(scenario, spec, calls: int, runs: int = 20) -> None:
    """Many small batches of one candidate, as tune sends them: an executor per call vs one session."""
    print(f"\n2. {calls} small batches of {runs} runs (one candidate each), as tune sends them")
    with local_dask() as address:
        for label, executor, workers in (("process", "process", WORKERS), ("dask", address, None)):
            run_many(scenario, [spec], runs, SEED, executor=executor, workers=workers, progress=False)  # warm
            per_call, tables = timed(lambda: [
                run_many(scenario, [spec], runs, SEED + i, executor=executor, workers=workers, progress=False)
                for i in range(calls)
            ])
            start = time.perf_counter()
            with open_executor(executor, workers) as session:
                reused = [run_many(scenario, [spec], runs, SEED + i, session=session, progress=False)
                          for i in range(calls)]
            in_session = time.perf_counter() - start
            same = all(a.equals(b) for a, b in zip(tables, reused, strict=True))
            print(f"   {label:<8} an executor per call {per_call:6.2f} s, one session {in_session:6.2f} s "
                  f"-> {per_call / in_session:.2f}x ({(per_call - in_session) / calls * 1000:.0f} ms saved per call); "
                  f"same tables: {same}")


if __name__ == "__main__":  # worker processes are spawned: they must not rerun the benchmark
    main()
