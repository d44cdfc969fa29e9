"""Specification of sim.montecarlo's sessions: one executor opened by `open_executor` and
reused by many `run_many` calls gives the tables of calls that open their own.

Batches use the stand-in simulator of tests/test_sim_montecarlo.py (`draw_row`), except on
a Dask cluster of worker processes, which import the real simulator.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest

from rolloutlab.errors import DaskUnavailable, ExecutorError, RunFailed
from rolloutlab.sim.montecarlo import ExecutorSession, open_executor, run_many
from tests.test_sim_montecarlo import STRATEGIES, draw_row, fail_on_run_13

SEED = 4242
# Batches as tune sends them: different candidates, run counts and seeds, one after another.
BATCHES = [(STRATEGIES, 12, SEED), (STRATEGIES[:1], 30, SEED + 1), (STRATEGIES[1:], 7, SEED)]


def draw_row_in_worker(scenario: Any, strategy: Any, run: int, seed_seq: np.random.SeedSequence,
                       fidelity: str = "fast") -> dict:
    """The stand-in's row, with the process that simulated it."""
    return {**draw_row(scenario, strategy, run, seed_seq, fidelity), "worker_pid": os.getpid()}


def batches(run_fn: Any = draw_row, **options: Any) -> list[pd.DataFrame]:
    """Every batch of BATCHES on the "checkout" stand-in scenario, quietly."""
    return [run_many("checkout", s, runs, seed, run_fn=run_fn, progress=False, **options) for s, runs, seed in BATCHES]


@pytest.fixture(scope="module")
def per_call() -> list[pd.DataFrame]:
    """The batches, each opening its own (serial) executor: what a session must reproduce."""
    return batches(executor="serial")


@pytest.fixture(scope="module")
def dask_threads() -> Any:
    """A Dask cluster of two worker threads in this process on 127.0.0.1 (real TCP), closed afterwards."""
    pytest.importorskip("distributed", reason="dask.distributed is not installed: pip install 'rolloutlab[dask]'")
    from distributed import LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=False, protocol="tcp",
                           host="127.0.0.1", dashboard_address=None)
    try:
        yield "dask://" + cluster.scheduler_address.removeprefix("tcp://")
    finally:
        cluster.close()


@pytest.fixture(scope="module")
def dask_processes() -> Any:
    """A Dask cluster of two worker processes of one thread each on 127.0.0.1, closed afterwards."""
    pytest.importorskip("distributed", reason="dask.distributed is not installed: pip install 'rolloutlab[dask]'")
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address=None)
    client = Client(cluster, set_as_default=False)
    try:
        client.wait_for_workers(2, timeout=120)
        yield "dask://" + cluster.scheduler_address.removeprefix("tcp://")
    finally:
        client.close()
        cluster.close()


# --------------------------------------------------------------------------- same tables


@pytest.mark.parametrize(("executor", "workers"), [("serial", None), ("process", 2)], ids=["serial", "process-pool"])
def test_a_session_gives_the_tables_of_calls_without_one(per_call, executor: str, workers: int | None) -> None:
    """Batch after batch through one session, each table is the one a call opening its own executor returns."""
    with open_executor(executor, workers) as session:
        tables = batches(session=session)
    for table, expected in zip(tables, per_call, strict=True):
        pd.testing.assert_frame_equal(table, expected)


def test_a_dask_session_on_worker_threads_gives_the_same_tables_and_warns(per_call, dask_threads: str) -> None:
    """On a Dask cluster of threads the tables are the same, capacity is its one process, and a warning says why."""
    with pytest.warns(RuntimeWarning, match=r"2 worker threads in 1 process\(es\).*--nthreads 1"):
        with open_executor(dask_threads) as session:
            assert session.capacity == 1
            tables = batches(session=session)
    for table, expected in zip(tables, per_call, strict=True):
        pd.testing.assert_frame_equal(table, expected)


def test_a_dask_session_on_worker_processes_gives_the_serial_tables(dask_processes: str) -> None:
    """On a Dask cluster of two worker processes the real simulator's tables are the serial ones, batch after batch."""
    from rolloutlab.scenarios import bundled_scenario, load_scenario
    from rolloutlab.strategies import load_strategy

    scenario = load_scenario(bundled_scenario("standard"))
    specs = [load_strategy(name) for name in ("blue-green", "canary", "rolling")]
    calls = [(specs, 4, 3), (specs[1:2], 6, 4)]
    expected = [run_many(scenario, s, runs, seed, executor="serial", progress=False) for s, runs, seed in calls]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # one thread per process: nothing to warn about
        with open_executor(dask_processes) as session:
            assert session.capacity == 2
            tables = [run_many(scenario, s, runs, seed, session=session, progress=False) for s, runs, seed in calls]
    for table, serial in zip(tables, expected, strict=True):
        pd.testing.assert_frame_equal(table, serial)


def test_a_process_session_keeps_its_worker_processes() -> None:
    """Every batch of a process session runs on the same worker processes, and none is left after the block."""
    with open_executor("process", workers=2) as session:
        pids = [set(table["worker_pid"]) for table in batches(draw_row_in_worker, session=session)]
    workers = set.union(*pids)
    assert 1 <= len(workers) <= 2 and os.getpid() not in workers
    assert workers.isdisjoint(child.pid for child in multiprocessing.active_children())  # shut down


@pytest.mark.parametrize(("executor", "workers", "capacity"), [("serial", None, 1), ("process", 3, 3)],
                         ids=["serial", "process-pool-of-3"])
def test_capacity_is_what_runs_at_a_time(executor: str, workers: int | None, capacity: int) -> None:
    """A session's capacity is the runs that proceed at a time: one serially, the pool's processes otherwise."""
    with open_executor(executor, workers) as session:
        assert isinstance(session, ExecutorSession) and session.capacity == capacity


# --------------------------------------------------------------------------- errors


def test_a_failing_run_names_itself_and_the_session_goes_on(per_call) -> None:
    """A run that raises inside a session names its strategy, run and seed; the next batch still runs."""
    with open_executor("process", workers=2) as session:
        with pytest.raises(RunFailed, match="strategy 'rolling', run 13, seed 99"):
            run_many("checkout", STRATEGIES, 20, 99, run_fn=fail_on_run_13, progress=False, session=session)
        pd.testing.assert_frame_equal(batches(session=session)[0], per_call[0])


@pytest.mark.parametrize("spec", ["threads", "dask://", "dask://scheduler"], ids=["unknown", "no-address", "no-port"])
def test_open_executor_refuses_bad_executor_strings(spec: str) -> None:
    """open_executor refuses what run_many refuses, with the same error listing the accepted forms."""
    with pytest.raises(ExecutorError, match=r"'serial', 'process' or 'dask://HOST:PORT'"):
        with open_executor(spec):
            pass


def test_open_executor_refuses_no_workers() -> None:
    """Zero workers is refused as run_many refuses it."""
    with pytest.raises(ValueError, match="workers must be a positive integer, got 0"):
        with open_executor("process", workers=0):
            pass


def test_open_executor_without_dask_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without dask.distributed, opening a Dask session says pip install 'rolloutlab[dask]'."""
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(DaskUnavailable, match=r"pip install 'rolloutlab\[dask\]'"):
        with open_executor("dask://127.0.0.1:8786"):
            pass


@pytest.mark.parametrize("extra", [{"executor": "serial"}, {"workers": 2}], ids=["executor", "workers"])
def test_a_session_call_refuses_its_own_executor_settings(extra: dict) -> None:
    """With session=, executor and workers belong to open_executor: passing them too is refused, not ignored."""
    with open_executor("serial") as session:
        with pytest.raises(ValueError, match="belong to open_executor"):
            run_many("checkout", STRATEGIES, 2, SEED, run_fn=draw_row, progress=False, session=session, **extra)


def test_a_closed_session_is_refused() -> None:
    """A session used after its block has closed its executor is refused, saying so."""
    with open_executor("process", workers=1) as session:
        pass
    assert session.closed
    with pytest.raises(ValueError, match="session is closed"):
        run_many("checkout", STRATEGIES, 2, SEED, run_fn=draw_row, progress=False, session=session)
