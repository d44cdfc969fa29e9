"""Monte Carlo: many seeded runs of one scenario under several strategies, on any executor.

Common random numbers. Run ``i`` of *every* strategy is simulated from the same seed
sequence, ``SeedSequence(seed, spawn_key=(i,))`` (the ``i``-th child of
``SeedSequence(seed).spawn(...)``). The world the strategies face in run ``i`` (whether
the release is defective and how, when faults strike, how long pods take, how traffic
arrives) is therefore drawn identically, and a difference between strategies in run ``i``
is caused by the strategy, not by luck. Comparisons are *paired* (see
``sim.comparison.paired_difference``), which needs far fewer runs than comparing two
independent samples. A row is replayed from ``(seed, run)`` alone.

Executors. Work is cut into chunks of consecutive runs of one strategy, so pickling the
scenario and the strategy is paid once per chunk rather than once per run, and run on a
``concurrent.futures`` executor: ``"serial"`` (in this process), ``"process"`` (a local
process pool) or ``"dask://HOST:PORT"`` (a Dask distributed scheduler). Chunks are put
back in (strategy, run) order, so the table is identical whatever the executor, the
number of workers and the chunk size.
"""

from __future__ import annotations

import os
import pickle
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from rolloutlab.errors import DaskUnavailable, ExecutorError, ResultsError, SimulationFailed
from rolloutlab.results.table import to_frame
from rolloutlab.scenarios.release import run_seed_sequence

RunFn = Callable[..., Mapping[str, Any]]
"""``run_fn(scenario, strategy, run, seed_seq, fidelity=...) -> row``: one deployment,
one results row (see ``sim.run.simulate_run``). Must be a module-level function so worker
processes can unpickle it by name."""

EXECUTOR_FORMS = "'serial', 'process' or 'dask://HOST:PORT'"

PROGRESS_DELAY_SECONDS = 1.0
"""A progress bar appears only once a batch has been running this long."""

_TASKS_PER_WORKER = 8  # chunks per worker: enough to balance load, few enough to amortise pickling
_MAX_SEED = 2**63  # the seed column is int64


@dataclass(frozen=True)
class ExecutorChoice:
    """Where chunks run: ``kind`` serial, process or dask; ``address`` for Dask (tcp://host:port)."""

    kind: Literal["serial", "process", "dask"]
    address: str | None = None


@dataclass(frozen=True)
class RunChunk:
    """Runs ``start`` .. ``stop - 1`` of the strategy at ``strategy_index``: one executor task."""

    strategy_index: int
    strategy_name: str
    start: int
    stop: int

    def __len__(self) -> int:
        return self.stop - self.start


def parse_executor(spec: str) -> ExecutorChoice:
    """Read an executor string: ``serial``, ``process`` or ``dask://HOST:PORT``."""
    text = spec.strip() if isinstance(spec, str) else ""
    if text in ("serial", "process"):
        return ExecutorChoice(text)  # type: ignore[arg-type]
    if text.startswith("dask://"):
        host, sep, port = text[len("dask://") :].rpartition(":")
        if sep and host and port.isdigit() and 0 < int(port) < 65536 and "/" not in host:
            return ExecutorChoice("dask", f"tcp://{host}:{port}")
    raise ExecutorError(f"unknown executor {spec!r}; expected {EXECUTOR_FORMS}")


def compute_chunks(strategy_names: Sequence[str], runs: int, chunk_size: int) -> list[RunChunk]:
    """Cut ``runs`` runs of each strategy into chunks of at most ``chunk_size``, in (strategy, run) order."""
    return [
        RunChunk(index, name, start, min(start + chunk_size, runs))
        for index, name in enumerate(strategy_names)
        for start in range(0, runs, chunk_size)
    ]


def run_chunk(
    run_fn: RunFn, scenario: Any, strategy: Any, chunk: RunChunk, seed: int, fidelity: str
) -> list[dict[str, Any]]:
    """Simulate one chunk's runs (in a worker) and return their rows, each with ``run`` and ``seed``.

    A run that raises, or returns something that is not a row, raises ``SimulationFailed`` naming
    the strategy, run and seed, with the worker's traceback in the message.
    """
    rows = []
    for run in range(chunk.start, chunk.stop):
        try:
            result = run_fn(scenario, strategy, run, run_seed_sequence(seed, run), fidelity=fidelity)
            # a run is one row, or several (history mode: one per deployment)
            rows.extend(_stamp(row, run, seed) for row in (result if isinstance(result, list) else [result]))
        except Exception as exc:
            where = f"strategy {chunk.strategy_name!r}, run {run}, seed {seed}"
            function = f"{getattr(run_fn, '__module__', '?')}.{getattr(run_fn, '__qualname__', 'run_fn')}"
            raise SimulationFailed(
                f"{where} failed: {type(exc).__name__}: {exc}\n"
                f"replay it: {function}(scenario, strategy, {run}, "
                f"numpy.random.SeedSequence({seed}, spawn_key=({run},)), fidelity={fidelity!r})\n"
                f"worker traceback:\n{''.join(traceback.format_exception(exc)).rstrip()}",
                chunk.strategy_name,
                run,
                seed,
            ) from exc
    return rows


def run_many(
    scenario: Any,
    strategies: Sequence[Any],
    runs: int,
    seed: int,
    *,
    executor: str = "process",
    fidelity: str = "fast",
    progress: bool = True,
    run_fn: RunFn | None = None,
    workers: int | None = None,
    chunk_size: int | None = None,
) -> pd.DataFrame:
    """Simulate ``runs`` deployments of ``scenario`` under each strategy; return the results table.

    Run ``i`` of every strategy uses the same seed sequence (common random numbers, see the
    module docstring), so strategies are compared on the same releases, defects and
    timings, and the comparison is paired. Rows come in (strategy order, run) order, carry
    ``run`` and ``seed`` (the root ``seed``), and are identical whatever the executor,
    ``workers`` and ``chunk_size``.

    - ``executor``: ``"serial"``, ``"process"`` (default; ``workers`` processes, default
      ``os.cpu_count()``) or ``"dask://HOST:PORT"`` (needs ``rolloutlab[dask]`` here and
      rolloutlab installed on the Dask workers; sized for all the cluster's threads unless
      ``workers`` says otherwise).
    - ``fidelity``: passed to the run function (``"fast"`` analytic traffic, or the slow
      per-request reference mode).
    - ``progress``: show a transient progress bar on stderr once the batch has taken
      longer than ``PROGRESS_DELAY_SECONDS``.
    - ``run_fn``: the single-run simulator, default ``sim.run.simulate_run``.
    - ``chunk_size``: runs per task, default about ``runs / (8 x workers)``.

    A failing run raises ``SimulationFailed`` naming the strategy, run and seed to replay.
    """
    names = _check_batch(strategies, runs, seed, workers, chunk_size)
    seed = int(seed)
    choice = parse_executor(executor)
    if run_fn is None:
        from rolloutlab.sim.run import simulate_run  # lazy: the simulator is heavy and tests use stand-ins

        run_fn = simulate_run
    if choice.kind == "process":
        _check_picklable(run_fn)

    def plan(capacity: int) -> list[RunChunk]:
        return compute_chunks(names, runs, chunk_size or max(1, runs // (capacity * _TASKS_PER_WORKER)))

    with _open_executor(choice, workers, plan) as (pool, chunks, capacity):
        window = 1 if choice.kind == "serial" else 2 * capacity  # keeps every worker fed
        label = f"{len(names)} x {runs} runs"
        with _ProgressDisplay(progress, total=runs * len(names), label=label) as display:
            rows_by_chunk = _gather(
                pool, window, chunks, display, run_fn, scenario, strategies, seed, fidelity
            )
    rows = [row for chunk_rows in rows_by_chunk for row in chunk_rows]
    try:
        return to_frame(rows)
    except ResultsError as exc:
        if exc.row is None:
            raise
        # Rows are in (strategy, run) order, so the bad row names the run to replay.
        strategy, run = names[exc.row // runs], exc.row % runs
        raise SimulationFailed(
            f"strategy {strategy!r}, run {run}, seed {seed} produced a row that breaks the results "
            f"contract: {exc}",
            strategy,
            run,
            seed,
        ) from exc


# --------------------------------------------------------------------------- internals


def _stamp(row: Any, run: int, seed: int) -> dict[str, Any]:
    if not isinstance(row, Mapping):
        raise TypeError(
            f"the run function returned {type(row).__name__}, not a row (a mapping of column to value)"
        )
    stamped = dict(row)
    for column, value in (("run", run), ("seed", seed)):
        if column in stamped and stamped[column] != value:
            raise ValueError(f"the row says {column}={stamped[column]!r}, but this is {column} {value}")
        stamped[column] = value
    return stamped


def _strategy_name(strategy: Any, index: int) -> str:
    if isinstance(strategy, str):
        return strategy
    name = getattr(strategy, "name", None)
    return name if isinstance(name, str) and name else f"strategy #{index}"


def _check_batch(
    strategies: Sequence[Any], runs: int, seed: int, workers: int | None, chunk_size: int | None
) -> list[str]:
    if isinstance(strategies, (str, bytes)) or not isinstance(strategies, Sequence):
        raise TypeError("strategies must be a sequence of strategy specs")
    if not strategies:
        raise ValueError("no strategies to simulate")
    for label, value, low in (("runs", runs, 1), ("workers", workers, 1), ("chunk_size", chunk_size, 1)):
        if value is None and label != "runs":
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{label} must be a positive integer, got {value!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < _MAX_SEED:
        raise ValueError(f"seed must be an integer within 0 .. 2**63 - 1, got {seed!r}")
    names = [_strategy_name(s, i) for i, s in enumerate(strategies)]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"strategy names must be unique within a batch, repeated: {', '.join(repeated)}")
    return names


def _check_picklable(run_fn: RunFn) -> None:
    try:
        pickle.dumps(run_fn)
    except Exception as exc:
        raise ValueError(
            f"run_fn {run_fn!r} cannot be sent to worker processes ({exc}); "
            "use a module-level function, or executor='serial'"
        ) from None


class _SerialExecutor(Executor):
    """Runs each task at submit time, in this process: the executor for debugging and profiling."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:  # delivered through the future, as a pool would
            future.set_exception(exc)
        return future


@contextmanager
def _open_executor(
    choice: ExecutorChoice, workers: int | None, plan: Callable[[int], list[RunChunk]]
) -> Iterator[tuple[Executor, list[RunChunk], int]]:
    """Yield (executor, chunks planned for its capacity, capacity); release the executor afterwards."""
    if choice.kind == "serial":
        yield _SerialExecutor(), plan(1), 1
        return
    if choice.kind == "process":
        capacity = workers or os.cpu_count() or 1
        chunks = plan(capacity)
        pool = ProcessPoolExecutor(max_workers=min(capacity, len(chunks)))  # no idle processes
        try:
            yield pool, chunks, capacity
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return
    assert choice.address is not None
    client = _connect_dask(choice.address)
    try:
        capacity = workers or sum(client.nthreads().values()) or 1
        # pure=False: every chunk is a distinct task; do not hash scenarios to dedupe them.
        yield client.get_executor(pure=False), plan(capacity), capacity
    finally:
        client.close()


def _connect_dask(address: str) -> Any:
    try:
        from distributed import Client
    except ImportError:
        raise DaskUnavailable(
            f"executor 'dask://{address.removeprefix('tcp://')}' needs dask.distributed, which is not "
            "installed: pip install 'rolloutlab[dask]'"
        ) from None
    try:
        return Client(address, set_as_default=False)
    except OSError as exc:
        raise ConnectionError(f"cannot reach the Dask scheduler at {address}: {exc}") from None


def _gather(
    pool: Executor,
    window: int,
    chunks: list[RunChunk],
    display: _ProgressDisplay,
    run_fn: RunFn,
    scenario: Any,
    strategies: Sequence[Any],
    seed: int,
    fidelity: str,
) -> list[list[dict[str, Any]]]:
    """Keep at most ``window`` chunks in flight; return their rows in chunk order."""
    results: list[list[dict[str, Any]] | None] = [None] * len(chunks)
    pending: dict[Future, int] = {}
    queue = iter(range(len(chunks)))
    completed_runs = 0
    try:
        while True:
            while len(pending) < window and (index := next(queue, None)) is not None:
                chunk = chunks[index]
                strategy = strategies[chunk.strategy_index]
                pending[pool.submit(run_chunk, run_fn, scenario, strategy, chunk, seed, fidelity)] = index
            if not pending:
                break
            done, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            for future in done:
                index = pending.pop(future)
                results[index] = _chunk_rows(future, chunks[index], seed)
                completed_runs += len(chunks[index])
            display.update(completed_runs)
    finally:
        for future in pending:
            future.cancel()
    return [rows for rows in results if rows is not None]


def _chunk_rows(future: Future, chunk: RunChunk, seed: int) -> list[dict[str, Any]]:
    try:
        return future.result()
    except SimulationFailed:
        raise
    except Exception as exc:  # the task never ran to completion: a worker died, or pickling failed
        raise SimulationFailed(
            f"strategy {chunk.strategy_name!r}, runs {chunk.start}..{chunk.stop - 1}, seed {seed}: "
            f"the executor lost the task: {type(exc).__name__}: {exc}",
            chunk.strategy_name,
            None,
            seed,
        ) from exc


class _ProgressDisplay:
    """A transient rich progress bar on stderr that appears only for batches slower than the delay."""

    def __init__(self, enabled: bool, total: int, label: str) -> None:
        self._enabled = enabled
        self._total = total
        self._label = label
        self._started = time.monotonic()
        self._progress: Any = None
        self._task: Any = None
        self._live = False

    def __enter__(self) -> _ProgressDisplay:
        if self._enabled:
            # Created now (not started) so elapsed and remaining time count from the batch start.
            self._progress = _make_progress()
            self._task = self._progress.add_task(self._label, total=self._total)
        return self

    def update(self, completed: int) -> None:
        if self._progress is None:
            return
        self._progress.update(self._task, completed=completed)
        slow = time.monotonic() - self._started >= PROGRESS_DELAY_SECONDS
        if not self._live and slow and completed < self._total:
            self._progress.start()
            self._live = True

    def __exit__(self, *exc: object) -> None:
        if self._live:
            self._progress.stop()


def _make_progress() -> Any:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[bold]Monte Carlo[/] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )
