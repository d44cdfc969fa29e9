"""Specification of sim.montecarlo: seeded, executor-independent batches with common random numbers.

The simulator itself is replaced by `draw_row`, a stand-in that draws its world from the
run's seed sequence exactly as the real one must, so these tests pin down seeding,
chunking and reassembly without depending on the SimPy model.
"""

from __future__ import annotations

import multiprocessing
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest

from rolloutlab.errors import DaskUnavailable, ExecutorError, RunFailed
from rolloutlab.scenarios.release import run_seed_sequence
from rolloutlab.sim.montecarlo import ExecutorChoice, compute_chunks, parse_executor, run_many

SEED = 20_240_917
RUNS = 40


@dataclass(frozen=True)
class FakeStrategy:
    """A strategy stand-in: a name and how much of a defect's harm it lets through."""

    name: str
    exposure: float


STRATEGIES = [FakeStrategy("canary", 0.1), FakeStrategy("blue-green", 1.0), FakeStrategy("rolling", 0.5)]
SeedSeq = np.random.SeedSequence


def draw_row(scenario: Any, strategy: FakeStrategy, run: int, seed_seq: SeedSeq, fidelity: str = "fast") -> dict:
    """Stand-in simulator: the world (defect, timings, traffic) comes from the seed; the harm, the strategy."""
    rng = np.random.default_rng(seed_seq)
    world, start, duration = rng.random(), rng.uniform(0, 60), rng.exponential(300)
    requests = int(rng.integers(10_000, 20_000))
    defective = world < 0.3
    failed = int(rng.binomial(requests, 0.05 * strategy.exposure)) if defective else 0
    return {
        "source": "sim",
        "scenario": scenario,
        "strategy": strategy.name,
        "release": "v2",
        "defect": "errorRate" if defective else "none",
        "outcome": "rolled_back" if defective else "promoted",
        "started_at": start,
        "finished_at": start + duration,
        "detected_at": start + 30.0 if defective else float("nan"),
        "restored_at": start + 60.0 if defective else float("nan"),
        "requests": requests,
        "failed_requests": failed,
        "peak_error_rate": 0.05 * strategy.exposure if defective else 0.0,
        "replica_seconds": duration * 4,
        "world_draw": world,
        "fidelity": fidelity,
    }


def fail_on_run_13(scenario: Any, strategy: FakeStrategy, run: int, seed_seq: SeedSeq, fidelity: str = "fast") -> dict:
    """Stand-in simulator with a bug that bites in run 13 of the rolling strategy."""
    if run == 13 and strategy.name == "rolling":
        raise ZeroDivisionError("pods ready / pods desired with none desired")
    return draw_row(scenario, strategy, run, seed_seq, fidelity)


def return_a_list(scenario: Any, strategy: FakeStrategy, run: int, seed_seq: SeedSeq, fidelity: str = "fast") -> Any:
    """Stand-in simulator that returns something that is not a row."""
    return [run]


def fail_more_than_requested(scenario: Any, strategy: FakeStrategy, run: int, seed_seq: SeedSeq, fidelity: str = "fast") -> dict:
    """Stand-in simulator whose run 3 of blue-green counts more failed requests than requests."""
    row = draw_row(scenario, strategy, run, seed_seq, fidelity)
    return {**row, "failed_requests": row["requests"] + 1} if (run, strategy.name) == (3, "blue-green") else row


def claim_another_run(scenario: Any, strategy: FakeStrategy, run: int, seed_seq: SeedSeq, fidelity: str = "fast") -> dict:
    """Stand-in simulator that writes the wrong run number into its row."""
    return {**draw_row(scenario, strategy, run, seed_seq, fidelity), "run": run + 1}


def batch(strategies: list = STRATEGIES, runs: int = RUNS, seed: int = SEED, **options: Any) -> pd.DataFrame:
    """run_many on the "checkout" scenario with the stand-in simulator, serially and quietly unless told."""
    settings = {"executor": "serial", "run_fn": draw_row, "progress": False, **options}
    return run_many("checkout", strategies, runs, seed, **settings)


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    """The batch run serially in one chunk per strategy: what every other way must reproduce."""
    return batch(chunk_size=RUNS)


# --------------------------------------------------------------------------- seeds


@pytest.mark.parametrize("seed", [0, 1, SEED, 2**63 - 1], ids=["zero", "one", "typical", "largest-int64"])
def test_run_seed_sequence_is_the_spawned_child(seed: int) -> None:
    """Run i's seed sequence draws exactly what the i-th child of SeedSequence(seed).spawn() draws."""
    children = np.random.SeedSequence(seed).spawn(5)
    for run, child in enumerate(children):
        ours = run_seed_sequence(seed, run)
        assert ours.spawn_key == child.spawn_key
        np.testing.assert_array_equal(ours.generate_state(8), child.generate_state(8))
        assert np.random.default_rng(ours).random() == np.random.default_rng(child).random()


def test_every_strategy_gets_the_same_world_in_run_i(reference: pd.DataFrame) -> None:
    """Common random numbers: run i draws the same world for every strategy, the one spawned for run i."""
    children = np.random.SeedSequence(SEED).spawn(RUNS)
    expected = [np.random.default_rng(child).random() for child in children]
    for strategy in STRATEGIES:
        rows = reference[reference["strategy"] == strategy.name]
        assert rows["world_draw"].tolist() == expected
        assert rows["defect"].tolist() == reference[reference["strategy"] == "canary"]["defect"].tolist()


def test_rows_come_in_strategy_then_run_order_with_run_and_seed(reference: pd.DataFrame) -> None:
    """Rows are ordered by strategy as given, then run, and carry the run number and the root seed."""
    assert reference["strategy"].tolist() == [s.name for s in STRATEGIES for _ in range(RUNS)]
    assert reference["run"].tolist() == list(range(RUNS)) * len(STRATEGIES)
    assert (reference["seed"] == SEED).all()
    assert reference["run"].dtype == np.int64 and reference["seed"].dtype == np.int64
    assert (reference["fidelity"] == "fast").all()


def test_another_seed_draws_another_world(reference: pd.DataFrame) -> None:
    """A different root seed gives different draws (the seed is actually used)."""
    other = batch(STRATEGIES[:1], seed=SEED + 1)
    assert other["world_draw"].tolist() != reference["world_draw"].tolist()[:RUNS]


# --------------------------------------------------------------------------- executors and chunking

SAME_TABLE = [
    ("serial", None, 1, "serial, one run per chunk"),
    ("serial", None, 7, "serial, ragged chunks of 7"),
    ("serial", None, None, "serial, default chunks"),
    ("process", 2, None, "2 processes, default chunks"),
    ("process", 2, 3, "2 processes, chunks of 3"),
    ("process", 2, 1000, "2 processes, one chunk per strategy"),
]


@pytest.mark.parametrize(
    ("executor", "workers", "chunk_size"), [row[:3] for row in SAME_TABLE], ids=[row[3] for row in SAME_TABLE]
)
def test_same_table_whatever_executor_and_chunking(
    reference: pd.DataFrame, executor: str, workers: int | None, chunk_size: int | None
) -> None:
    """The results table is identical whatever the executor, the number of workers and the chunk size."""
    table = batch(executor=executor, workers=workers, chunk_size=chunk_size)
    pd.testing.assert_frame_equal(table, reference)


def test_progress_bar_does_not_change_the_table(
    reference: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the bar forced on from the first chunk, the batch still returns the same table."""
    monkeypatch.setattr("rolloutlab.sim.montecarlo.PROGRESS_DELAY_SECONDS", 0.0)
    table = batch(chunk_size=5, progress=True)
    pd.testing.assert_frame_equal(table, reference)


def test_fidelity_reaches_the_run_function() -> None:
    """The fidelity asked of the batch is the one each run is simulated at."""
    table = batch(STRATEGIES[:1], 3, fidelity="exact")
    assert (table["fidelity"] == "exact").all()


def test_chunks_cover_every_run_once_in_order() -> None:
    """Chunks partition each strategy's runs into consecutive ranges, strategy by strategy."""
    chunks = compute_chunks(["a", "b"], 10, 4)
    assert [(c.strategy_name, c.start, c.stop) for c in chunks] == [
        ("a", 0, 4), ("a", 4, 8), ("a", 8, 10), ("b", 0, 4), ("b", 4, 8), ("b", 8, 10),
    ]


# --------------------------------------------------------------------------- failures

@pytest.mark.parametrize("executor", ["serial", "process"], ids=["in-process", "process-pool"])
def test_worker_exception_names_strategy_run_and_seed(executor: str) -> None:
    """A run that raises fails the batch with the strategy, run and seed needed to replay it."""
    with pytest.raises(RunFailed) as caught:
        batch(runs=20, seed=99, executor=executor, workers=2, run_fn=fail_on_run_13)
    message = str(caught.value)
    assert "strategy 'rolling', run 13, seed 99" in message
    assert "ZeroDivisionError: pods ready / pods desired" in message
    assert "SeedSequence(99, spawn_key=(13,))" in message
    assert (caught.value.strategy, caught.value.run, caught.value.seed) == ("rolling", 13, 99)
    assert multiprocessing.active_children() == []  # the pool is shut down, not left behind


BROKEN_ROWS = [
    (return_a_list, "not a row", "result is not a mapping"),
    (claim_another_run, "run=1", "row claims another run"),
]


@pytest.mark.parametrize(("run_fn", "needle"), [r[:2] for r in BROKEN_ROWS], ids=[r[2] for r in BROKEN_ROWS])
def test_malformed_rows_fail_loudly(run_fn: Any, needle: str) -> None:
    """A run function that breaks the row contract fails the batch, naming the run."""
    with pytest.raises(RunFailed, match="run 0, seed 5") as caught:
        batch(STRATEGIES[:1], 2, 5, run_fn=run_fn)
    assert needle in str(caught.value)


def test_row_breaking_the_contract_names_its_run() -> None:
    """A row with impossible values fails the batch naming the strategy, run and seed that produced it."""
    with pytest.raises(RunFailed, match="strategy 'blue-green', run 3, seed 8 produced a row that breaks") as caught:
        batch(runs=5, seed=8, run_fn=fail_more_than_requested)
    assert "exceeds requests" in str(caught.value)
    assert (caught.value.strategy, caught.value.run) == ("blue-green", 3)


BAD_EXECUTORS = [
    ("threads", "unknown kind"),
    ("", "empty"),
    ("dask://", "dask without address"),
    ("dask://scheduler", "dask without port"),
    ("dask://:8786", "dask without host"),
    ("dask://scheduler:http", "dask with a named port"),
    ("tcp://scheduler:8786", "bare dask address"),
]


@pytest.mark.parametrize("spec", [r[0] for r in BAD_EXECUTORS], ids=[r[1] for r in BAD_EXECUTORS])
def test_bad_executor_strings_list_the_accepted_forms(spec: str) -> None:
    """An executor string other than serial, process or dask://HOST:PORT is a ValueError listing those."""
    with pytest.raises(ValueError, match=r"'serial', 'process' or 'dask://HOST:PORT'"):
        batch(runs=2, executor=spec)


GOOD_EXECUTORS = [
    ("serial", ExecutorChoice("serial"), "serial"),
    ("process", ExecutorChoice("process"), "process"),
    ("dask://10.0.0.5:8786", ExecutorChoice("dask", "tcp://10.0.0.5:8786"), "dask by address"),
    ("dask://scheduler.internal:8786", ExecutorChoice("dask", "tcp://scheduler.internal:8786"), "dask by name"),
]


@pytest.mark.parametrize(
    ("spec", "choice"), [r[:2] for r in GOOD_EXECUTORS], ids=[r[2] for r in GOOD_EXECUTORS]
)
def test_executor_strings_parse(spec: str, choice: ExecutorChoice) -> None:
    """Accepted executor strings name the executor kind, and Dask's scheduler as a tcp address."""
    assert parse_executor(spec) == choice


def test_missing_dask_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without dask.distributed a Dask executor is a ValueError that says pip install 'rolloutlab[dask]'."""
    monkeypatch.setitem(sys.modules, "distributed", None)  # makes `import distributed` fail
    with pytest.raises(DaskUnavailable, match=r"pip install 'rolloutlab\[dask\]'") as caught:
        batch(runs=2, executor="dask://127.0.0.1:8786")
    assert isinstance(caught.value, ExecutorError) and isinstance(caught.value, ValueError)


def test_process_pool_refuses_a_run_function_it_cannot_send() -> None:
    """A lambda cannot reach worker processes, so the process executor refuses it up front."""
    with pytest.raises(ValueError, match="module-level function"):
        batch(runs=2, executor="process", run_fn=lambda *a, **k: {})


BAD_BATCHES = [
    ({"runs": 0}, "runs must be a positive integer", "no runs"),
    ({"seed": -1}, "seed must be an integer", "negative seed"),
    ({"seed": 2**63}, "seed must be an integer", "seed beyond int64"),
    ({"workers": 0}, "workers must be a positive integer", "no workers"),
    ({"chunk_size": 0}, "chunk_size must be a positive integer", "empty chunks"),
    ({"strategies": []}, "no strategies", "no strategies"),
    ({"strategies": [FakeStrategy("a", 1), FakeStrategy("a", 2)]}, "repeated: a", "duplicate strategy names"),
]


@pytest.mark.parametrize(("change", "message"), [r[:2] for r in BAD_BATCHES], ids=[r[2] for r in BAD_BATCHES])
def test_impossible_batches_are_refused(change: dict, message: str) -> None:
    """A batch that cannot mean anything is refused before any run starts, saying why."""
    with pytest.raises(ValueError, match=message):
        batch(**{"runs": 2, **change})


# --------------------------------------------------------------------------- dask


@pytest.fixture(scope="module")
def dask_address() -> Any:
    """A two-worker Dask cluster on 127.0.0.1 (threads in this process, real TCP), shut down afterwards."""
    pytest.importorskip("distributed", reason="dask.distributed is not installed: pip install 'rolloutlab[dask]'")
    from distributed import LocalCluster

    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False,
        protocol="tcp", host="127.0.0.1", dashboard_address=None,
    )
    try:
        yield "dask://" + cluster.scheduler_address.removeprefix("tcp://")
    finally:
        cluster.close()


def test_dask_cluster_gives_the_identical_table(reference: pd.DataFrame, dask_address: str) -> None:
    """A batch on a Dask cluster returns the same table as the serial run."""
    table = batch(executor=dask_address, chunk_size=6)
    pd.testing.assert_frame_equal(table, reference)


def test_dask_worker_exception_names_the_run(dask_address: str) -> None:
    """A run that raises on a Dask worker fails the batch naming the strategy, run and seed."""
    with pytest.raises(RunFailed, match="strategy 'rolling', run 13, seed 7"):
        batch(runs=20, seed=7, executor=dask_address, run_fn=fail_on_run_13)
