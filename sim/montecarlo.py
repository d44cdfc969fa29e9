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
process pool) or ``"dask://HOST:PORT"`` (a Dask distributed scheduler; over mutual TLS
with ``"tls://HOST:PORT"``, or when Dask's config gives certificates). Chunks are put
back in (strategy, run) order, so the table is identical whatever the executor, the
number of workers and the chunk size.

Sessions. A process pool opened for one call costs 50-150 ms (freshly forked workers fault
in the parent's memory), a Dask client 35-85 ms; a caller that runs many batches
(``rolloutlab tune``: one batch of candidates per call) opens the executor once with
``open_executor`` and passes it to every call::

    with open_executor("process", workers=2) as session:
        for candidates in batches:
            table = run_many(scenario, candidates, runs, seed, session=session)

A table is identical with or without a session. Without one, ``run_many`` opens and closes
its own executor, as before.

Where Dask time goes (``benchmarks/bench_executors.py``). A run is pure Python (SimPy and
the controller), so it holds the GIL: Dask workers that are *threads* of one process (a
``LocalCluster(processes=False)``, or ``dask worker`` with ``--nthreads 2``) run one run at
a time per process and take as long as ``serial``. Capacity therefore counts worker
processes, not threads, and such a cluster is named in a ``RuntimeWarning``. On worker
processes of one thread each, Dask matches the process pool but for a first batch on a
fresh cluster: its workers are spawned, not forked, and import the simulator (about a
second) before their first run. Pickling is not the cost: a scenario and a strategy are a
few kilobytes per task, a row about 300 bytes.
"""

from __future__ import annotations

import os
import pickle
import time
import traceback
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field
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

EXECUTOR_FORMS = "'serial', 'process' or 'dask://HOST:PORT' (over TLS: 'tls://HOST:PORT')"
# Dask's own TLS settings (distributed.yaml; env DASK_DISTRIBUTED__COMM__TLS__CA_FILE, ...),
# what ``distributed.security.Security()`` reads; Dask's TLS is mutual: all three are needed.
DASK_TLS_KEYS = ("distributed.comm.tls.ca-file", "distributed.comm.tls.client.cert", "distributed.comm.tls.client.key")

PROGRESS_DELAY_SECONDS = 1.0
"""A progress bar appears only once a batch has been running this long."""

_TASKS_PER_WORKER = 8  # chunks per worker: enough to balance load, few enough to amortise pickling
_MAX_SEED = 2**63  # the seed column is int64


@dataclass(frozen=True)
class ExecutorChoice:
    """Where chunks run: ``kind`` serial, process or dask; ``address`` for Dask (tcp://host:port,
    or tls://host:port when Dask's config holds certificates)."""

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
    """Read an executor string: ``serial``, ``process``, ``dask://HOST:PORT`` (over TLS when
    Dask's config gives certificates) or ``tls://HOST:PORT`` / ``dask+tls://HOST:PORT``
    (TLS required: certificates missing from the config, or their files, are an
    ``ExecutorError`` naming them). A scheduler reached in plain TCP runs whatever any
    client that reaches its port sends (docs/security.md)."""
    text = spec.strip() if isinstance(spec, str) else ""
    if text in ("serial", "process"):
        return ExecutorChoice(text)  # type: ignore[arg-type]
    scheme, _, rest = text.partition("://")
    if scheme in ("dask", "tls", "dask+tls"):
        host, sep, port = rest.rpartition(":")
        if sep and host and port.isdigit() and 0 < int(port) < 65536 and "/" not in host:
            files = _dask_tls_files()
            if scheme != "dask" and files is None:
                raise DaskUnavailable(f"executor {text!r} needs dask.distributed, which is not installed: "
                                      "pip install 'rolloutlab[dask]'")
            if scheme != "dask" or any((files or {}).values()):
                _check_tls_files(text, files)
                return ExecutorChoice("dask", f"tls://{host}:{port}")
            return ExecutorChoice("dask", f"tcp://{host}:{port}")
    raise ExecutorError(f"unknown executor {spec!r}; expected {EXECUTOR_FORMS}")


def _dask_tls_files() -> dict[str, str | None] | None:
    """Dask's TLS files as its config says them; None without dask installed."""
    try:
        import dask.config
    except ImportError:
        return None
    return {key: dask.config.get(key, None) for key in DASK_TLS_KEYS}


def _check_tls_files(spec: str, files: Mapping[str, str | None]) -> None:
    missing = [key for key in DASK_TLS_KEYS if not files.get(key)]
    if missing:
        env = ", ".join("DASK_" + k.upper().replace(".", "__").replace("-", "_") for k in missing)
        raise ExecutorError(f"executor {spec!r} is TLS, which needs Dask's certificates: {', '.join(missing)} "
                            f"not set (Dask's config, or the environment: {env})")
    for key in DASK_TLS_KEYS:
        if not os.path.isfile(files[key]):
            raise ExecutorError(f"executor {spec!r}: {key} is {files[key]!r}, which is not a file")


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


@dataclass(eq=False)
class ExecutorSession:
    """An executor opened once by ``open_executor`` and reused by many ``run_many`` calls.

    ``capacity`` is how many runs proceed at a time: 1 for serial, the pool's processes, or
    the Dask cluster's worker processes (see the module docstring: threads of one process
    share the GIL). Chunks are planned for it, as in a call without a session.
    """

    choice: ExecutorChoice
    capacity: int
    _executor: Executor = field(repr=False)
    closed: bool = False


@contextmanager
def open_executor(executor: str = "process", workers: int | None = None) -> Iterator[ExecutorSession]:
    """Open an executor for many ``run_many(..., session=...)`` calls; close it on exit.

    ``executor`` and ``workers`` mean what they mean to ``run_many``. The errors are the
    same too, raised here: ``ExecutorError`` for a malformed string, ``DaskUnavailable``
    without dask.distributed, ``ConnectionError`` when no scheduler answers. Using the
    session after the ``with`` block is a ``ValueError``.
    """
    choice = parse_executor(executor)
    _check_count("workers", workers)
    with _open_session(choice, workers) as session:
        yield session


def run_many(
    scenario: Any,
    strategies: Sequence[Any],
    runs: int,
    seed: int,
    *,
    executor: str | None = None,
    fidelity: str = "fast",
    progress: bool = True,
    run_fn: RunFn | None = None,
    workers: int | None = None,
    chunk_size: int | None = None,
    session: ExecutorSession | None = None,
) -> pd.DataFrame:
    """Simulate ``runs`` deployments of ``scenario`` under each strategy; return the results table.

    Run ``i`` of every strategy uses the same seed sequence (common random numbers, see the
    module docstring), so strategies are compared on the same releases, defects and
    timings, and the comparison is paired. Rows come in (strategy order, run) order, carry
    ``run`` and ``seed`` (the root ``seed``), and are identical whatever the executor,
    ``workers``, ``chunk_size`` and ``session``.

    - ``executor``: ``"serial"``, ``"process"`` (the default; ``workers`` processes, default
      ``os.cpu_count()``) or ``"dask://HOST:PORT"`` (needs ``rolloutlab[dask]`` here and
      rolloutlab installed on the Dask workers; sized for the cluster's worker processes
      unless ``workers`` says otherwise).
    - ``session``: an executor from ``open_executor``, reused instead of opening one for
      this call; ``executor`` and ``workers`` are then left out (the session has them).
    - ``fidelity``: passed to the run function (``"fast"`` analytic traffic, or the slow
      per-request reference mode).
    - ``progress``: show a transient progress bar on stderr once the batch has taken
      longer than ``PROGRESS_DELAY_SECONDS``.
    - ``run_fn``: the single-run simulator, default ``sim.run.simulate_run``.
    - ``chunk_size``: runs per task, default about ``runs / (8 x capacity)``.

    A failing run raises ``SimulationFailed`` naming the strategy, run and seed to replay.
    """
    names = _check_batch(strategies, runs, seed, workers, chunk_size)
    seed = int(seed)
    if session is not None and (executor is not None or workers is not None):
        raise ValueError("executor and workers belong to open_executor(); with session=, leave them out")
    choice = session.choice if session is not None else parse_executor("process" if executor is None else executor)
    if run_fn is None:
        from rolloutlab.sim.run import simulate_run  # lazy: the simulator is heavy and tests use stand-ins

        run_fn = simulate_run
    if choice.kind == "process":
        _check_picklable(run_fn)

    def plan(capacity: int) -> list[RunChunk]:
        return compute_chunks(names, runs, chunk_size or max(1, runs // (capacity * _TASKS_PER_WORKER)))

    if session is not None and session.closed:
        raise ValueError("this executor session is closed: call run_many(session=...) inside its open_executor() block")
    opened = nullcontext(session) if session is not None else _open_session(
        choice, workers, tasks_for=lambda capacity: len(plan(capacity))
    )
    with opened as current:
        rows_by_chunk = _run_chunks(current, plan, names, runs, progress, run_fn, scenario, strategies, seed, fidelity)
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
    _check_count("runs", runs, optional=False)
    _check_count("workers", workers)
    _check_count("chunk_size", chunk_size)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < _MAX_SEED:
        raise ValueError(f"seed must be an integer within 0 .. 2**63 - 1, got {seed!r}")
    names = [_strategy_name(s, i) for i, s in enumerate(strategies)]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"strategy names must be unique within a batch, repeated: {', '.join(repeated)}")
    return names


def _check_count(label: str, value: Any, optional: bool = True) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{label} must be a positive integer, got {value!r}")


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
def _open_session(
    choice: ExecutorChoice, workers: int | None, tasks_for: Callable[[int], int] | None = None
) -> Iterator[ExecutorSession]:
    """Open the executor, yield it as a session, close it afterwards.

    ``tasks_for(capacity)``: how many tasks one known batch will send, so a pool opened for
    that batch alone starts no process that would sit idle.
    """
    with ExitStack() as stack:
        if choice.kind == "serial":
            session = ExecutorSession(choice, 1, _SerialExecutor())
        elif choice.kind == "process":
            capacity = workers or os.cpu_count() or 1
            pool = ProcessPoolExecutor(max_workers=min(capacity, tasks_for(capacity)) if tasks_for else capacity)
            stack.callback(pool.shutdown, wait=True, cancel_futures=True)
            session = ExecutorSession(choice, capacity, pool)
        else:
            assert choice.address is not None
            client = _connect_dask(choice.address)
            stack.callback(client.close)
            capacity = workers or _dask_capacity(client, choice.address)
            # pure=False: every chunk is a distinct task; do not hash scenarios to dedupe them.
            session = ExecutorSession(choice, capacity, client.get_executor(pure=False))
        try:
            yield session
        finally:
            session.closed = True


def _dask_capacity(client: Any, address: str) -> int:
    """The cluster's worker processes; warn when its threads outnumber them (they share a GIL)."""
    pids = client.run(os.getpid)  # {worker address: pid}; several workers may share a process
    processes = len({(worker.rpartition(":")[0], pid) for worker, pid in pids.items()})
    threads = sum(client.nthreads().values())
    if threads > processes:
        warnings.warn(
            f"the Dask cluster at {address} runs {threads} worker threads in {processes} process(es); "
            f"a run holds Python's GIL, so only {processes} run(s) proceed at a time. Start workers as "
            "processes of one thread each (dask worker --nworkers N --nthreads 1, or "
            "LocalCluster(processes=True, threads_per_worker=1))",
            RuntimeWarning,
            stacklevel=2,
        )
    return processes or 1


def _connect_dask(address: str) -> Any:
    try:
        from distributed import Client
    except ImportError:
        raise DaskUnavailable(
            f"executor '{address.replace('tcp://', 'dask://')}' needs dask.distributed, which is not "
            "installed: pip install 'rolloutlab[dask]'"
        ) from None
    try:
        if address.startswith("tls://"):
            from distributed.security import Security

            # Security() reads distributed.comm.tls.* (parse_executor checked them); mutual TLS.
            return Client(address, security=Security(require_encryption=True), set_as_default=False)
        return Client(address, set_as_default=False)
    except OSError as exc:
        raise ConnectionError(f"cannot reach the Dask scheduler at {address}: {exc}") from None


def _run_chunks(
    session: ExecutorSession,
    plan: Callable[[int], list[RunChunk]],
    names: list[str],
    runs: int,
    progress: bool,
    run_fn: RunFn,
    scenario: Any,
    strategies: Sequence[Any],
    seed: int,
    fidelity: str,
) -> list[list[dict[str, Any]]]:
    """Plan the batch's chunks for the session's capacity and run them with a progress bar."""
    chunks = plan(session.capacity)
    window = 1 if session.choice.kind == "serial" else 2 * session.capacity  # keeps every worker fed
    with _ProgressDisplay(progress, total=runs * len(names), label=f"{len(names)} x {runs} runs") as display:
        return _gather(session._executor, window, chunks, display, run_fn, scenario, strategies, seed, fidelity)


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
