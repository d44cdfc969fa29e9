"""Specification of results.table: the results table every producer writes and every report reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from rolloutlab.errors import ResultsError
from rolloutlab.results.table import (
    OUTCOMES,
    RESULT_COLUMNS,
    Outcome,
    read_results,
    to_frame,
    validate_results,
    write_results,
)

NAN = float("nan")


def make_row(**changes: Any) -> dict[str, Any]:
    """A valid row of a promoted healthy release, with `changes` applied."""
    row = {
        "source": "sim",
        "scenario": "checkout",
        "strategy": "canary",
        "run": 0,
        "seed": 42,
        "release": "v2",
        "defect": "none",
        "outcome": "promoted",
        "started_at": 12.5,
        "finished_at": 612.25,
        "detected_at": NAN,
        "detected_by": "",
        "restored_at": NAN,
        "requests": 600_000,
        "failed_requests": 17,
        "peak_error_rate": 0.0004,
        "replica_seconds": 6123.0,
    }
    row.update(changes)
    return row


def sample_rows() -> list[dict[str, Any]]:
    """Rows with extras, NaNs, awkward text and a large seed: what a round trip must survive."""
    return [
        make_row(change_failed=False, time_to_restore=NAN, note="plain"),
        make_row(
            run=1, defect="errorRate", outcome="rolled_back", detected_at=80.0, restored_at=95.125,
            failed_requests=1234, peak_error_rate=0.25, change_failed=True, time_to_restore=60.000000001,
            note="comma, \"quotes\" and\nnewline",
        ),
        make_row(run=2, release="NA", defect="none", outcome="stuck", finished_at=NAN, seed=2**62 + 1,
                 change_failed=False, time_to_restore=NAN, note="None"),
        make_row(run=3, release="None", outcome="false_rollback", requests=0, failed_requests=0,
                 peak_error_rate=NAN, change_failed=False, time_to_restore=NAN, note="n/a"),
    ]


# --------------------------------------------------------------------------- the contract


def test_contract_columns_are_those_of_the_architecture_in_order() -> None:
    """The contract columns are exactly docs/architecture.md's list, in its order."""
    assert list(RESULT_COLUMNS) == [
        "source", "scenario", "strategy", "run", "seed", "release", "defect", "outcome",
        "started_at", "finished_at", "detected_at", "detected_by", "restored_at",
        "requests", "failed_requests", "peak_error_rate", "replica_seconds",
    ]


def test_every_column_is_declared_with_a_dtype_and_a_meaning() -> None:
    """Every declared column, contract or extra, has a known dtype and a one-line meaning,
    and no name is declared twice."""
    from rolloutlab.results.table import COLUMNS, CONTRACT_COLUMNS, EXTRA_COLUMNS

    names = [c.name for c in (*CONTRACT_COLUMNS, *EXTRA_COLUMNS)]
    assert len(names) == len(set(names)) == len(COLUMNS)
    for column in COLUMNS.values():
        assert column.dtype in ("str", "int64", "float64", "bool"), column
        assert column.meaning and "\n" not in column.meaning, column


def test_detected_by_is_filled_empty_when_a_producer_lacks_it() -> None:
    """A producer that does not know who caught a failure (a deployment log) gets detected_by
    "" (none); a value that is not a DetectedBy is refused."""
    row = make_row()
    del row["detected_by"]
    frame = to_frame([row])
    assert frame["detected_by"].tolist() == [""]
    assert to_frame([make_row(detected_by="alert")])["detected_by"].tolist() == ["alert"]
    with pytest.raises(ResultsError, match="column 'detected_by', row 0: 'pager' is not a detection cause"):
        to_frame([make_row(detected_by="pager")])


def test_outcomes_are_documented_str_enum_values() -> None:
    """Outcomes are a str enum of the seven documented endings, each with its own docstring."""
    assert {o.value for o in OUTCOMES} == {
        "promoted", "rolled_back", "rolled_back_manual", "failed_undetected",
        "false_rollback", "repaired_forward", "stuck",
    }
    assert OUTCOMES is Outcome and Outcome.PROMOTED == "promoted"
    source = Path(__file__).parents[1].joinpath("results", "table.py").read_text()
    for outcome in Outcome:
        assert f'{outcome.name} = "{outcome.value}"\n    """' in source, f"{outcome.name} is undocumented"


def test_to_frame_puts_contract_columns_first_with_their_dtypes() -> None:
    """Contract columns come first, in order, with their dtypes; extra columns follow in order of appearance."""
    row = make_row(zeta=1.5, alpha="x")
    shuffled = dict(reversed(list(row.items())))
    frame = to_frame([shuffled])
    assert list(frame.columns) == [*RESULT_COLUMNS, "alpha", "zeta"]
    for name, dtype in RESULT_COLUMNS.items():
        expected = pd.StringDtype if dtype == "str" else np.dtype
        assert isinstance(frame[name].dtype, expected), name
        if dtype != "str":
            assert frame[name].dtype == np.dtype(dtype), name
    validate_results(frame)


def test_to_frame_of_no_rows_is_an_empty_typed_table() -> None:
    """No rows give an empty table that still has every contract column and dtype."""
    frame = to_frame([])
    assert list(frame.columns) == list(RESULT_COLUMNS) and len(frame) == 0
    assert frame["run"].dtype == np.int64 and frame["started_at"].dtype == np.float64
    validate_results(frame)


@pytest.mark.parametrize("column", ["source", "run", "outcome", "detected_at", "replica_seconds"])
def test_missing_column_is_named(column: str) -> None:
    """A row without a contract column is refused with an error naming that column."""
    row = make_row()
    del row[column]
    with pytest.raises(ValueError, match=f"missing contract column\\(s\\): {column}$"):
        to_frame([row])


BAD_VALUES = [
    ({"run": "abc"}, r"column 'run', row 1: 'abc' is not an integer", "run is text"),
    ({"run": 1.5}, r"column 'run', row 1: 1.5 is not an integer", "run is fractional"),
    ({"seed": 2**64}, r"column 'seed', row 1: .* is not an integer within int64", "seed too large"),
    ({"requests": True}, r"column 'requests', row 1: True is not an integer", "count is a boolean"),
    ({"started_at": "soon"}, r"column 'started_at', row 1: 'soon' is not a number", "time is text"),
    ({"outcome": "exploded"}, r"column 'outcome', row 1: 'exploded' is not an outcome", "unknown outcome"),
    ({"release": ""}, r"column 'release', row 1: empty", "empty release"),
    ({"defect": None}, r"column 'defect', row 1: empty", "missing defect"),
    ({"strategy": 3}, r"column 'strategy', row 1: 3 is not text", "strategy is a number"),
    ({"failed_requests": 700_000}, r"row 1: failed_requests 700000 exceeds requests 600000", "failures > requests"),
    ({"requests": -1, "failed_requests": 0}, r"column 'requests', row 1: negative count", "negative requests"),
    ({"peak_error_rate": 1.5}, r"column 'peak_error_rate', row 1: 1.5 is outside 0..1", "error rate above one"),
    ({"detected_at": 1.0}, r"row 1: detected_at 1.0 precedes started_at 12.5", "detected before start"),
    ({"replica_seconds": -5.0}, r"column 'replica_seconds', row 1: negative cost", "negative cost"),
]


@pytest.mark.parametrize(("change", "message"), [r[:2] for r in BAD_VALUES], ids=[r[2] for r in BAD_VALUES])
def test_bad_values_are_named_by_column_and_row(change: dict, message: str) -> None:
    """A value that breaks the contract is refused naming its column and row."""
    with pytest.raises(ResultsError, match=message):
        to_frame([make_row(), make_row(**{"run": 1, **change})])


def test_validate_results_refuses_wrong_dtype_and_order() -> None:
    """A table whose contract columns lost their dtype or order is refused."""
    frame = to_frame([make_row()])
    with pytest.raises(ValueError, match="column 'run' has dtype float64, the contract says int64"):
        validate_results(frame.astype({"run": "float64"}))
    with pytest.raises(ValueError, match="contract columns must come first"):
        validate_results(frame[["scenario", *[c for c in frame.columns if c != "scenario"]]])


# --------------------------------------------------------------------------- files


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_round_trip_gives_the_identical_table(tmp_path: Path, fmt: str) -> None:
    """Writing and reading back, as CSV or Parquet, gives the same table, extras and NaNs included."""
    table = to_frame(sample_rows())
    csv_path, parquet_path = write_results(table, tmp_path / "batch")
    back = read_results(csv_path if fmt == "csv" else parquet_path)
    pd.testing.assert_frame_equal(back, table)
    assert back["seed"].iloc[2] == 2**62 + 1  # exact, not through a float


@pytest.mark.parametrize(
    "stem", ["out/batch", "out/batch.csv", "out/batch.parquet"], ids=["bare", "csv-suffix", "parquet-suffix"]
)
def test_write_results_writes_csv_and_parquet_beside_each_other(tmp_path: Path, stem: str) -> None:
    """write_results returns <stem>.csv and <stem>.parquet, creating the folder."""
    csv_path, parquet_path = write_results(to_frame([make_row()]), tmp_path / stem)
    assert (csv_path, parquet_path) == (tmp_path / "out/batch.csv", tmp_path / "out/batch.parquet")
    assert csv_path.is_file() and parquet_path.is_file()


def test_malformed_csv_names_file_column_row_and_line(tmp_path: Path) -> None:
    """A bad cell in a CSV file is reported with the file, the column, the row and the line."""
    csv_path, _ = write_results(to_frame(sample_rows()[:3]), tmp_path / "batch")
    lines = csv_path.read_text().splitlines(keepends=True)
    assert lines[2].startswith("sim,checkout,canary,1,42,")
    lines[2] = lines[2].replace("sim,checkout,canary,1,42,", "sim,checkout,canary,one,42,", 1)
    csv_path.write_text("".join(lines))
    expected = rf"{csv_path}: column 'run', row 1 \(line 3\): 'one' is not an integer"
    with pytest.raises(ResultsError, match=expected):
        read_results(csv_path)


def test_csv_without_a_column_names_file_and_column(tmp_path: Path) -> None:
    """A CSV file missing a contract column is reported with the file and the column."""
    path = tmp_path / "batch.csv"
    to_frame([make_row()]).drop(columns=["outcome"]).to_csv(path, index=False)
    with pytest.raises(ResultsError, match=rf"{path}: missing contract column\(s\): outcome"):
        read_results(path)


def test_parquet_with_a_wrong_type_names_file_column_and_row(tmp_path: Path) -> None:
    """A Parquet file whose column holds the wrong type is reported with the file, column and row."""
    path = tmp_path / "batch.parquet"
    to_frame([make_row(), make_row(run=1)]).astype({"requests": "str"}).assign(
        requests=["600000", "lots"]
    ).to_parquet(path, index=False)
    with pytest.raises(ResultsError, match=rf"{path}: column 'requests', row 1: 'lots' is not an integer"):
        read_results(path)


UNREADABLE = [
    ("batch.parquet", b"PAR1 this is not parquet", "not a readable Parquet file", "garbage parquet"),
    ("batch.csv", b"", "not a readable CSV file", "empty csv"),
    ("batch.json", b"{}", "unknown results format '.json'", "unknown suffix"),
]


@pytest.mark.parametrize(
    ("name", "content", "message"), [r[:3] for r in UNREADABLE], ids=[r[3] for r in UNREADABLE]
)
def test_unreadable_files_are_named(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    """A file that is not a results table at all is reported with its path and why."""
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ResultsError, match=rf"{path}: {message}"):
        read_results(path)


def test_missing_file_is_named(tmp_path: Path) -> None:
    """Reading a file that does not exist names it."""
    with pytest.raises(ResultsError, match="no such file"):
        read_results(tmp_path / "absent.csv")


def test_every_abort_cause_maps_to_a_detected_by_value() -> None:
    """Each of the controller's abort causes names who detected the release; nothing is
    derived from an abort's message text."""
    from rolloutlab.results.table import DETECTED_BY_ABORT_CAUSE, DetectedBy
    from rolloutlab.strategies.status import AbortCause

    assert set(DETECTED_BY_ABORT_CAUSE) == {c.value for c in AbortCause}
    assert all(isinstance(v, DetectedBy) for v in DETECTED_BY_ABORT_CAUSE.values())
