"""Reading a team's deployment log into the results table (reports.deploy_log)."""

from __future__ import annotations

import math
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rolloutlab.errors import InputError
from rolloutlab.reports.deploy_log import load_deploy_log
from rolloutlab.reports.dora import compute_dora
from rolloutlab.results.table import validate_results

LOGS = Path(__file__).parent / "fixtures" / "logs"
HEADER = "id,service,commit_time,deploy_time,status,failure_time,restore_time,rework\n"
GOOD_ROW = "d1,web,2024-05-01T08:00:00Z,2024-05-01T10:00:00Z,failure,2024-05-01T10:05:00Z,2024-05-01T10:35:00Z,false\n"


def test_good_csv_log():
    """A CSV log gives one contract row per deployment with failures, restores, lead times and rework."""
    df = load_deploy_log(LOGS / "team.csv")
    validate_results(df)
    assert list(df["release"]) == ["d1", "d2", "d3", "d4", "d5"]
    assert list(df["outcome"]) == ["promoted", "rolled_back_manual", "promoted", "rolled_back", "failed_undetected"]
    assert list(df["change_failed"]) == [False, True, False, True, True]
    assert list(df["started_at"][:3]) == [0.0, 86400.0, 90000.0]
    assert df["time_to_restore"][1] == 1800.0 and df["time_to_restore"][3] == 1200.0
    assert math.isnan(df["time_to_restore"][4])
    assert df["lead_time"][0] == 7200.0 and df["lead_time"][3] == 3600.0  # +02:00 offsets honoured
    assert list(df["rework"]) == [False, False, True, False, False]
    assert set(df["source"]) == {"log"} and set(df["strategy"]) == {"checkout"}


def test_good_json_log():
    """A JSON list of objects reads like the CSV, an empty commit_time giving an unknown lead time."""
    df = load_deploy_log(LOGS / "team.json")
    validate_results(df)
    assert sorted(set(df["scenario"])) == ["cart", "search"]
    by_id = df.set_index("release")
    assert by_id.loc["a2", "time_to_restore"] == 3600.0 and by_id.loc["a3", "rework"]
    assert math.isnan(by_id.loc["b1", "lead_time"])


def test_github_deployments_export():
    """A GitHub export: latest terminal status decides, the next success restores a failure and is rework."""
    df = load_deploy_log(LOGS / "github_deployments.json")
    validate_results(df)
    assert list(df["release"]) == ["1", "2", "3"]  # deployment 4 has no terminal status yet
    assert list(df["change_failed"]) == [False, True, False]
    assert df["time_to_restore"][1] == 30 * 60.0  # failure 10:06, next success 10:36
    assert list(df["rework"]) == [False, False, True]
    assert df["lead_time"].isna().all() and set(df["scenario"]) == {"production"}
    [s] = compute_dora(df)
    assert s.lead_time_median.value is None and "commit" in s.lead_time_median.note
    assert s.change_failure_rate.value == pytest.approx(1 / 3)


BAD_CSV = [
    ("missing-column", "id,service,deploy_time,status\nd1,web,2024-05-01T10:00:00Z,success\n",
     1, "commit_time", "missing"),
    ("bad-timestamp", HEADER + GOOD_ROW + "d2,web,,yesterday,success,,,\n", 3, "deploy_time", "row 2"),
    ("no-timezone", HEADER + "d1,web,,2024-05-01T10:00:00,success,,,\n", 2, "deploy_time", "timezone"),
    ("unknown-status", HEADER + "d1,web,,2024-05-01T10:00:00Z,exploded,,,\n", 2, "status", "unknown status"),
    ("restore-before-failure",
     HEADER + "d1,web,,2024-05-01T10:00:00Z,failure,2024-05-01T10:30:00Z,2024-05-01T10:10:00Z,\n",
     2, "restore_time", "precedes"),
    ("duplicate-id", HEADER + GOOD_ROW + GOOD_ROW, 3, "id", "duplicate"),
    ("failure-before-deploy",
     HEADER + "d1,web,,2024-05-01T10:00:00Z,failure,2024-05-01T09:00:00Z,,\n", 2, "failure_time", "precedes"),
    ("bad-rework", HEADER + "d1,web,,2024-05-01T10:00:00Z,success,,,maybe\n", 2, "rework", "true or false"),
    ("too-many-fields", HEADER + "d1,web,,2024-05-01T10:00:00Z,success,,,,extra\n", 2, None, "fields"),
    ("commit-in-year-1", HEADER + "d1,web,0001-01-01T00:00:00Z,2024-05-01T10:00:00Z,success,,,\n", 2,
     "commit_time", "before 1970"),
    ("deploy-before-1970", HEADER + "d1,web,,1969-12-31T23:59:59Z,success,,,\n", 2, "deploy_time", "before 1970"),
    ("restore-in-the-future", HEADER + GOOD_ROW
     + "d2,web,,2024-05-02T10:00:00Z,failure,,2999-01-01T00:00:00Z,\n", 3, "restore_time", "future"),
    ("year-9999-with-an-offset", HEADER + "d1,web,,9999-12-31T23:00:00-05:00,success,,,\n", 2, "deploy_time",
     "out of range"),
    ("empty-file", "", None, None, "empty"),
    ("header-only", HEADER, None, None, "no deployments"),
]


@pytest.mark.parametrize("text, line, column, words", [c[1:] for c in BAD_CSV], ids=[c[0] for c in BAD_CSV])
def test_bad_csv_logs_name_row_and_column(tmp_path, text, line, column, words):
    """A malformed CSV log raises InputError naming the file, the line and row, and the column."""
    path = tmp_path / "log.csv"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        load_deploy_log(path)
    err = info.value
    assert err.file == str(path) and err.line == line and err.field == column
    assert words in str(err)


BAD_JSON = [
    ("not-a-list", '{"id": 1}', None, "list"),
    ("missing-status", '[{"id": "a", "service": "s", "commit_time": "", "deploy_time": "2024-05-01T10:00:00Z"}]',
     "status", "row 1"),
    ("github-unknown-state",
     ('[{"id": 1, "sha": "x", "environment": "p", "created_at": "2024-05-01T10:00:00Z",'
      ' "statuses": [{"state": "exploded", "created_at": "2024-05-01T10:01:00Z"}]}]'),
     "statuses[0].state", "unknown state"),
    ("github-missing-created-at", '[{"id": 1, "sha": "x", "environment": "p", "statuses": []}]',
     "created_at", "row 1"),
    ("invalid-json", "[{", None, "not valid JSON"),
]


@pytest.mark.parametrize("text, column, words", [c[1:] for c in BAD_JSON], ids=[c[0] for c in BAD_JSON])
def test_bad_json_logs_name_row_and_column(tmp_path, text, column, words):
    """A malformed JSON log or GitHub export raises InputError naming the row and the field."""
    path = tmp_path / "log.json"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        load_deploy_log(path)
    assert info.value.field == column and words in str(info.value)


def test_times_after_now_are_rejected_and_a_day_of_clock_skew_is_not(tmp_path):
    """A log time later than now plus a day is a slip (row, line and field named); within a day it is skew."""
    path = tmp_path / "log.csv"
    path.write_text(HEADER + GOOD_ROW)  # deployed 2024-05-01T10:00Z, failed 10:05, restored 10:35
    with pytest.raises(InputError) as info:
        load_deploy_log(path, now=datetime(2024, 4, 30, 10, 0, tzinfo=UTC))
    assert (info.value.line, info.value.field) == (2, "failure_time") and "future" in str(info.value)
    df = load_deploy_log(path, now=datetime(2024, 4, 30, 12, 0, tzinfo=UTC))
    assert list(df["release"]) == ["d1"]


def test_github_export_dates_are_bounded_too(tmp_path):
    """A GitHub status dated before 1970 names the row and the status' field."""
    path = tmp_path / "log.json"
    path.write_text('[{"id": 1, "sha": "x", "environment": "p", "created_at": "2024-05-01T10:00:00Z",'
                    ' "statuses": [{"state": "success", "created_at": "1960-05-01T10:01:00Z"}]}]')
    with pytest.raises(InputError) as info:
        load_deploy_log(path)
    assert info.value.field == "statuses[0].created_at" and "before 1970" in str(info.value)


def test_an_unrestored_failure_is_censored_at_the_end_of_the_log():
    """The log's failure never restored counts in recovery time, censored at the log's last moment."""
    df = load_deploy_log(LOGS / "team.csv")
    assert (df["ended_at"] == df["ended_at"].max()).all()
    [s] = compute_dora(df)
    assert s.recovery_time_median.n == 3 and s.recovery_time_median.censored == 1


def test_missing_file_and_unknown_format(tmp_path):
    """A missing file or an unknown extension is bad input, not a crash."""
    with pytest.raises(InputError, match="no such file"):
        load_deploy_log(tmp_path / "nope.csv")
    (tmp_path / "log.txt").write_text("x")
    with pytest.raises(InputError, match="format"):
        load_deploy_log(tmp_path / "log.txt")


GOOD_TEXT = (LOGS / "team.csv").read_text()
mutation = st.tuples(st.integers(0, len(GOOD_TEXT)), st.integers(0, 12),
                     st.text(alphabet=st.sampled_from(list(',\n"Z:+-T0123456789x \x00é')), max_size=8))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutation, min_size=1, max_size=4))
def test_mutated_csv_logs_only_raise_input_error(mutations):
    """Whatever bytes a CSV log is mangled into, loading it succeeds or raises InputError, never anything else."""
    text = GOOD_TEXT
    for at, cut, insert in mutations:
        at = min(at, len(text))
        text = text[:at] + insert + text[at + cut:]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "log.csv"
        path.write_text(text, encoding="utf-8")
        try:
            df = load_deploy_log(path)
        except InputError:
            return
        validate_results(df)
