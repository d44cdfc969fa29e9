"""The results table: one row per deployment, the contract between producers and reports.

Every producer (the simulator, the local live runner, the Kubernetes live runner) writes
rows with the same contract columns, so a report never needs to know where a row came
from. The contract columns come first, in the order of ``RESULT_COLUMNS``; the extra
columns a producer writes after them are declared here too (``EXTRA_COLUMNS``: the
simulator's and the live runner's ``change_failed``, ``time_to_restore``,
``release_failed_requests``..., history mode's ``lead_time``...), each with its dtype and
meaning, and every function here keeps them. ``COLUMNS`` holds them all.

Times are seconds on the producer's clock (simulated seconds for ``sim``, seconds since
the run started for live runners). A moment that never happened (a healthy release is
never detected; a stuck rollout never finishes) is NaN, never a sentinel number.

A file on disk is CSV (for people and spreadsheets) or Parquet (typed and compact, for
reports); both read back to an identical table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rolloutlab.errors import ResultsError


class Outcome(str, Enum):
    """How a deployment ended: the ``outcome`` column.

    A release is *defective* when the scenario gave it a defect (``defect`` is not
    ``"none"``), *healthy* otherwise.
    """

    PROMOTED = "promoted"
    """The release was promoted and became stable. For a defective release whose defect
    was never caught in the window, see ``FAILED_UNDETECTED`` instead."""

    ROLLED_BACK = "rolled_back"
    """The strategy's automated analysis failed the release and the controller rolled it
    back, with no human involved."""

    ROLLED_BACK_MANUAL = "rolled_back_manual"
    """Monitoring alerted, and a human (after the scenario's response time) aborted the
    rollout or rolled the promoted release back."""

    FAILED_UNDETECTED = "failed_undetected"
    """A defective release was promoted and nothing caught it before the simulated window
    ended: users kept paying for it."""

    FALSE_ROLLBACK = "false_rollback"
    """A healthy release was rolled back (a noisy analysis or alert judged it bad): no user
    harm, but a lost deployment and a delayed feature."""

    REPAIRED_FORWARD = "repaired_forward"
    """Rolling back was impossible because a contract (destructive) database migration had
    already run, so the team restored service by shipping a fix forward."""

    STUCK = "stuck"
    """The rollout had not finished when the window ended (paused forever, waiting on a
    deadline, or unable to get pods ready)."""


class DetectedBy(str, Enum):
    """Who or what caught a defective release first: the ``detected_by`` column (empty
    when nothing did)."""

    ANALYSIS = "analysis"
    """The rollout's own analysis failed and aborted it."""
    ALERT = "alert"
    """A monitoring alert fired and paged a person before the analysis aborted."""
    MANUAL = "manual"
    """A person aborted the rollout by command."""
    DEADLINE = "deadline"
    """The progress deadline aborted the rollout."""


DETECTED_BY_ABORT_CAUSE: dict[str, DetectedBy] = {
    "AnalysisFailed": DetectedBy.ANALYSIS,
    "AbortCommand": DetectedBy.MANUAL,
    "ProgressDeadlineExceeded": DetectedBy.DEADLINE,
}
"""The controller's abort cause (``strategies.status.AbortCause`` values) -> ``detected_by``.
Keyed by value because this package sits below the controller; a test checks the keys
are exactly the controller's causes."""


OUTCOMES = Outcome
"""The outcomes a results row may carry (alias of ``Outcome`` under the contract's name)."""

NO_DEFECT = "none"
"""The ``defect`` value of a healthy release."""

@dataclass(frozen=True)
class Column:
    """One column of the results table: its name, its pandas dtype ("str" is pandas' string
    dtype, "bool" numpy's) and what it means, in one line."""

    name: str
    dtype: str
    meaning: str


CONTRACT_COLUMNS: tuple[Column, ...] = (
    Column("source", "str", "who produced the row: sim, live-local, live-kube, replay, or a deployment log"),
    Column("scenario", "str", "the scenario's name"),
    Column("strategy", "str", "the strategy's name"),
    Column("run", "int64", "0-based run number within a Monte Carlo batch"),
    Column("seed", "int64", "the batch's root seed: (seed, run) replays the row"),
    Column("release", "str", "which release was deployed (scenario#run for the simulator)"),
    Column("defect", "str", "'none' or the kind of defect the release carried"),
    Column("outcome", "str", "how the deployment ended: an Outcome value"),
    Column("started_at", "float64", "when the rollout started (seconds on the producer's clock)"),
    Column("finished_at", "float64", "when the rollout finished (promoted or rolled back); NaN when it did not"),
    Column("detected_at", "float64", "when a defect was caught (analysis, alert, person); NaN when never"),
    Column("detected_by", "str", "who or what caught it first: a DetectedBy value, '' when nothing did"),
    Column("restored_at", "float64", "when user impact ended; NaN when there was none or it never ended"),
    Column("requests", "int64", "user requests in the scenario's window"),
    Column("failed_requests", "int64", "user requests that failed in the window, baseline errors included"),
    Column("peak_error_rate", "float64", "worst per-window failed/total of user requests, 0..1"),
    Column("replica_seconds", "float64", "cost: pods running x seconds, both versions, over the window"),
)
"""The contract columns, in order: every producer writes them, every report may rely on them."""

EXTRA_COLUMNS: tuple[Column, ...] = (
    # the simulator and the live runner
    Column("change_failed", "bool", "the deployment hurt users (its code or its migration): DORA's change failure"),
    Column("false_rollback", "bool", "a healthy release was rolled back"),
    Column("impact_started_at", "float64", "when users were first hurt; NaN when they never were"),
    Column("time_to_restore", "float64",
           "restored_at - impact_started_at; NaN without impact or when not restored by ended_at (censored)"),
    Column("rollout_duration", "float64", "seconds from the rollout's start to its finish; NaN when it never finished"),
    Column("human_action", "str", "what a paged person did: abort, rollback, repair_forward, none or ''"),
    Column("ended_at", "float64",
           "when the row's observation ended: times not ended by then are censored here (sim: past the "
           "scenario's duration while a paged person still acts)"),
    Column("exposed_requests", "int64", "user requests answered by the defective version"),
    Column("final_canary_share", "float64", "share of traffic on the new version when observation ended"),
    Column("ends_healthy", "bool", "no user impact was going on when observation ended"),
    Column("baseline_failed_requests", "float64",
           "failures the old version would have produced on the same requests: requests x the service "
           "under test's baseline_error_rate"),
    Column("release_failed_requests", "float64",
           "failed_requests - baseline_failed_requests: failures caused by the release (may be slightly "
           "negative by chance)"),
    Column("users_affected", "float64",
           "share of users who got at least one bad answer from the release (a failure it caused, or a write "
           "a mirror performed twice); weights spread it over everyone, sticky routes and flags concentrate it"),
    Column("mirrored_requests", "int64", "copies of user requests a mirror route sent to the new version (no user saw them)"),
    Column("duplicated_writes", "int64", "writes performed twice because a mirror copied them to a new version with side effects"),
    Column("regions_reached", "int64", "regions the release went out to (1 for a scenario without regions)"),
    Column("blast_radius", "float64",
           "share of all users the new version served at least once before the release was first detected "
           "anywhere (by the end, if never); NaN for a scenario without regions"),
    Column("slo_objective", "float64", "the scenario's SLO: share of requests that must succeed; NaN without one"),
    Column("slo_window", "float64", "the period the SLO is measured over, in seconds; NaN without one"),
    # history mode (sim.history)
    Column("deployment", "int64", "position of the deployment within its history"),
    Column("commit_at", "float64", "when the deployed change was committed"),
    Column("lead_time", "float64", "seconds from commit to the start of the deployment"),
    Column("rework", "bool", "an unplanned fix of a failed deployment"),
    # live runs (live.session)
    Column("time_scale", "float64", "scenario seconds per wall second of the live run"),
    Column("live_user_rps", "float64", "user requests per wall second the load generator sent"),
    Column("live_preview_rps", "float64", "preview requests per wall second the load generator sent"),
    Column("router_failures", "int64", "requests that failed without an answer from any version: the switch's own"),
    Column("release_failures", "int64", "failed requests answered by the new version"),
    Column("resumed", "bool", "the live run resumed a rollout an earlier runner had left"),
    Column("flag_off_lag", "float64",
           "feature flag, live: wall seconds from the flag file's 'off' write to the last answer that still took "
           "the flagged path (NaN: never turned off after being on)"),
)
"""Columns beyond the contract, declared so every producer names a thing the same way.
Optional: a producer writes those it knows, with this dtype; in a table that mixes
producers, a row whose producer does not know a column holds a missing value there."""

COLUMNS: dict[str, Column] = {c.name: c for c in (*CONTRACT_COLUMNS, *EXTRA_COLUMNS)}
"""Every declared column by name: the contract's first, in order, then the extras."""

RESULT_COLUMNS: dict[str, str] = {c.name: c.dtype for c in CONTRACT_COLUMNS}
"""The contract columns, in order, with their pandas dtypes ("str" is pandas' string dtype)."""

CONTRACT_DEFAULTS: dict[str, str] = {"detected_by": ""}
"""Contract columns a producer may leave out, and what they are then: a deployment log
does not know who caught a failure."""

_MAY_BE_EMPTY = frozenset({"detected_by"})
"""Text columns whose empty value means "none"."""

_TIME_COLUMNS = ("finished_at", "detected_at", "restored_at")


def to_frame(rows: Iterable[Mapping[str, Any]] | pd.DataFrame) -> pd.DataFrame:
    """Build a contract-conforming results table from rows (mappings) or a DataFrame.

    Contract columns are put first in contract order and cast to their dtypes; extra
    columns follow in the order they first appear. Raises ``ResultsError`` (a
    ``ValueError``) naming missing columns, or the column and row of a bad value.
    """
    if isinstance(rows, pd.DataFrame):
        frame = rows.reset_index(drop=True)
    else:
        frame = pd.DataFrame.from_records(list(rows))
    return _conform(frame, where="results", row_label=lambda i: f"row {i}")


def validate_results(df: pd.DataFrame) -> None:
    """Check that a table keeps the results contract: columns, order, dtypes and values.

    Beyond types: ``outcome`` is an ``Outcome``; text columns are never empty; counts are
    non-negative with ``failed_requests <= requests``; ``peak_error_rate`` is within 0..1;
    no moment precedes ``started_at``. Raises ``ResultsError`` naming the first breach.
    """
    _check_columns(df, where="results")
    leading = list(df.columns[: len(RESULT_COLUMNS)])
    if leading != list(RESULT_COLUMNS):
        raise ResultsError(
            f"results: contract columns must come first, in order {list(RESULT_COLUMNS)}; "
            f"got {leading} (to_frame puts them in order)"
        )
    for name, dtype in RESULT_COLUMNS.items():
        if not _has_dtype(df[name], dtype):
            raise ResultsError(
                f"results: column {name!r} has dtype {df[name].dtype}, the contract says {dtype}"
            )
    _check_values(df, where="results", row_label=lambda i: f"row {i}")


def write_results(df: pd.DataFrame, path_stem: str | Path) -> tuple[Path, Path]:
    """Write a validated table as ``<stem>.csv`` and ``<stem>.parquet``; return both paths.

    A ``.csv`` or ``.parquet`` suffix on the stem is dropped; parent folders are created.
    """
    validate_results(df)
    stem = Path(path_stem)
    if stem.suffix in (".csv", ".parquet"):
        stem = stem.with_suffix("")
    stem.parent.mkdir(parents=True, exist_ok=True)
    csv_path = stem.parent / f"{stem.name}.csv"
    parquet_path = stem.parent / f"{stem.name}.parquet"
    df.to_csv(csv_path, index=False)  # floats are written with repr, so they read back exactly
    df.to_parquet(parquet_path, index=False, engine="pyarrow")
    return csv_path, parquet_path


def read_results(path: str | Path) -> pd.DataFrame:
    """Read a results table from a ``.csv`` or ``.parquet`` file and check the contract.

    A file that is unreadable or breaks the contract raises ``ResultsError`` naming the
    file and the bad column, and for a bad value its row (CSV rows also give the line).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        frame = _read_csv(path)
        row_label: Callable[[int], str] = lambda i: f"row {i} (line {i + 2})"
    elif suffix in (".parquet", ".pq"):
        frame = _read_parquet(path)
        row_label = lambda i: f"row {i}"
    else:
        raise ResultsError(f"{path}: unknown results format {path.suffix!r}; expected .csv or .parquet")
    return _conform(frame, where=str(path), row_label=row_label)


# --------------------------------------------------------------------------- reading files


def _read_csv(path: Path) -> pd.DataFrame:
    # Contract text columns are read verbatim: pandas would otherwise turn a release named
    # "NA" or "None" into a missing value. Extra columns get type inference, with only an
    # empty cell (how NaN is written) read as missing.
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise ResultsError(f"{path}: no such file") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ResultsError(f"{path}: not a readable CSV file: {exc}") from None
    extras = [c for c in raw.columns if c not in RESULT_COLUMNS]
    if extras:
        inferred = pd.read_csv(path, usecols=extras, keep_default_na=False, na_values=[""])
        for name in extras:
            raw[name] = inferred[name]
    return raw


def _read_parquet(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise ResultsError(f"{path}: no such file")
    try:
        return pd.read_parquet(path, engine="pyarrow")
    except Exception as exc:  # pyarrow raises several unrelated types for a corrupt file
        raise ResultsError(f"{path}: not a readable Parquet file: {exc}") from None


# --------------------------------------------------------------------------- conforming


def _check_columns(frame: pd.DataFrame, where: str, defaults: Mapping[str, Any] = {}) -> None:
    missing = [name for name in RESULT_COLUMNS if name not in frame.columns and name not in defaults]
    if missing:
        raise ResultsError(f"{where}: missing contract column(s): {', '.join(missing)}")
    duplicated = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
    if duplicated:
        raise ResultsError(f"{where}: duplicated column(s): {', '.join(duplicated)}")


def _conform(frame: pd.DataFrame, where: str, row_label: Callable[[int], str]) -> pd.DataFrame:
    if frame.columns.empty and len(frame) == 0:
        frame = pd.DataFrame({name: [] for name in RESULT_COLUMNS})
    _check_columns(frame, where, CONTRACT_DEFAULTS)
    missing = {name: value for name, value in CONTRACT_DEFAULTS.items() if name not in frame.columns}
    if missing:
        frame = frame.assign(**{name: [value] * len(frame) for name, value in missing.items()})
    extras = [c for c in frame.columns if c not in RESULT_COLUMNS]
    out = {
        name: _cast(frame[name].reset_index(drop=True), name, dtype, where, row_label)
        for name, dtype in RESULT_COLUMNS.items()
    }
    for name in extras:
        out[name] = frame[name].reset_index(drop=True)
    result = pd.DataFrame(out)
    _check_values(result, where, row_label)
    return result


def _has_dtype(series: pd.Series, dtype: str) -> bool:
    if dtype == "str":  # either storage (python or pyarrow) of pandas' string dtype
        return isinstance(series.dtype, pd.StringDtype)
    return series.dtype == np.dtype(dtype)


def _bad(
    where: str, name: str, row_label: Callable[[int], str], position: int, value: Any, expected: str
) -> ResultsError:
    shown = value.item() if isinstance(value, np.generic) else value  # 1.5, not np.float64(1.5)
    message = f"{where}: column {name!r}, {row_label(position)}: {shown!r} is not {expected}"
    return ResultsError(message, row=position)


def _cast(
    series: pd.Series, name: str, dtype: str, where: str, row_label: Callable[[int], str]
) -> pd.Series:
    if dtype == "str":
        return _cast_text(series, name, where, row_label)
    integer = dtype == "int64"
    kind = series.dtype.kind
    if kind == "b":
        raise ResultsError(f"{where}: column {name!r} holds booleans; the contract says {dtype}")
    if kind in "iuf" and not integer:
        return series.astype("float64")
    if kind in "iuf":
        values = series.to_numpy()
        if kind == "f":
            wrong = ~np.isfinite(values) | (values != np.round(values)) | (np.abs(values) >= 2.0**63)
        else:
            wrong = values >= 2**63  # only a uint64 can be that large
        i = _first(wrong)
        if i is not None:
            raise _bad(where, name, row_label, i, series.iloc[i], "an integer within int64")
        return series.astype("int64")
    # Mixed Python objects or text (CSV): parse value by value, so a bad one is named.
    parse = _parse_int if integer else _parse_float
    parsed = []
    for i, value in enumerate(series.tolist()):
        number = parse(value)
        if number is None:
            expected = "an integer within int64" if integer else "a number (or empty for 'did not happen')"
            raise _bad(where, name, row_label, i, value, expected)
        parsed.append(number)
    return pd.Series(parsed, dtype=dtype)


def _parse_int(value: Any) -> int | None:
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, np.integer)):
        number = int(value)
    elif isinstance(value, (float, np.floating)):
        if not np.isfinite(value) or value != round(value):
            return None
        number = int(value)
    elif isinstance(value, str):
        try:
            number = int(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if -(2**63) <= number < 2**63 else None


def _is_missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, (float, np.floating)) and np.isnan(value))


def _parse_float(value: Any) -> float | None:
    if _is_missing(value) or (isinstance(value, str) and not value.strip()):
        return float("nan")
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, float, np.integer, np.floating, str)):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _cast_text(series: pd.Series, name: str, where: str, row_label: Callable[[int], str]) -> pd.Series:
    if len(series) and not isinstance(series.dtype, pd.StringDtype):
        if series.dtype == object:
            wrong = [not isinstance(v, str) and not _is_missing(v) for v in series.tolist()]
        else:  # a numeric or boolean column
            wrong = [True]
        i = _first(wrong)
        if i is not None:
            raise _bad(where, name, row_label, i, series.iloc[i], "text")
    text = series.astype("str")
    if name in _MAY_BE_EMPTY:  # empty means "none"; a row from a producer that lacks the column is missing
        return text.fillna("")
    i = _first(text.isna() | (text.str.len() == 0))
    if i is not None:
        message = f"{where}: column {name!r}, {row_label(i)}: empty; every row needs a {name}"
        raise ResultsError(message, row=i)
    return text


def _first(mask: Any) -> int | None:
    hits = np.flatnonzero(np.asarray(mask, dtype=bool))
    return int(hits[0]) if hits.size else None


def _check_values(df: pd.DataFrame, where: str, row_label: Callable[[int], str]) -> None:
    known = {o.value for o in Outcome}
    value = lambda name, i: df[name].iloc[i]
    causes = {""} | {d.value for d in DetectedBy}
    checks: list[tuple[Any, Callable[[int], str]]] = [
        (
            ~df["detected_by"].isin(causes),
            lambda i: f"column 'detected_by', {row_label(i)}: {value('detected_by', i)!r} is not a detection "
            f"cause; expected '' or one of {', '.join(sorted(causes - {''}))}",
        ),
        (
            ~df["outcome"].isin(known),
            lambda i: f"column 'outcome', {row_label(i)}: {value('outcome', i)!r} is not an outcome; "
            f"expected one of {', '.join(sorted(known))}",
        ),
        *(
            (df[name] < 0, lambda i, name=name: f"column {name!r}, {row_label(i)}: negative count {value(name, i)}")
            for name in ("requests", "failed_requests")
        ),
        (
            df["failed_requests"] > df["requests"],
            lambda i: f"{row_label(i)}: failed_requests {value('failed_requests', i)} "
            f"exceeds requests {value('requests', i)}",
        ),
        (
            (df["peak_error_rate"] < 0) | (df["peak_error_rate"] > 1),
            lambda i: f"column 'peak_error_rate', {row_label(i)}: {value('peak_error_rate', i)} is outside 0..1",
        ),
        (
            df["replica_seconds"] < 0,
            lambda i: f"column 'replica_seconds', {row_label(i)}: negative cost {value('replica_seconds', i)}",
        ),
        *(
            (
                df[name] < df["started_at"],
                lambda i, name=name: f"{row_label(i)}: {name} {value(name, i)} "
                f"precedes started_at {value('started_at', i)}",
            )
            for name in _TIME_COLUMNS
        ),
    ]
    for mask, describe in checks:
        i = _first(mask)
        if i is not None:
            raise ResultsError(f"{where}: {describe(i)}", row=i)
