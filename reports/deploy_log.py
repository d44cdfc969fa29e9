"""A team's real deployment log, read into the results-table shape so DORA reports run on it.

Format (CSV, or JSON as a list of objects with the same keys), one deployment per row:

=============  ========  ===============================================================
column         required  meaning
=============  ========  ===============================================================
id             yes       unique id of the deployment
service        yes       the service (or environment) deployed; reported as scenario
                         and strategy
commit_time    yes       when the change was committed; may be empty (lead time unknown)
deploy_time    yes       when the deployment started
status         yes       success | failure | rolled_back
failure_time   no        when users started to be hurt; default deploy_time for a
                         failure or rollback; must be empty for a success
restore_time   no        when service was restored; not before failure_time
detect_time    no        when the failure was detected (someone paged or an analysis
                         failed); between failure_time and restore_time; default
                         failure_time
rework         no        true/false (also yes/no, 1/0): the deployment fixes an earlier
                         failure (DORA's deployment rework); default false
=============  ========  ===============================================================

Times are ISO 8601 with a timezone (``2024-05-01T10:00:00Z``, ``...+02:00``), from
1970-01-01 (``EARLIEST``) up to now plus a day of clock skew (``CLOCK_SKEW``): a commit in
year 1 or a restore in 2999 is a typing slip, not history, and is rejected rather than
turned into a lead time of two thousand years.

A GitHub deployments export is read too: a JSON list of deployment objects as the REST
API returns them (``id``, ``sha``, ``environment``, ``created_at``, optional
``payload``/``description``), each with a ``statuses`` list (``state``, ``created_at``)
as "List deployment statuses" returns it. Then service = environment; deploy_time =
the deployment's ``created_at``; its status is its latest terminal status (success or
inactive: success; failure or error: failure, at that status' time); deployments with no
terminal status yet (queued, pending, in_progress) are left out; a failure is restored
by the next deployment of the same environment that succeeded after it (restore_time =
that success status' time), and that deployment counts as rework; commit times are not
in the export, so lead time is unknown.

Rows of the results table: source ``log``, scenario = strategy = service, run 0, seed 0,
release = id, defect ``none`` for a success and ``unknown`` otherwise; times in seconds
since the first deployment in the file (``started_at`` = deploy, ``detected_at`` =
failure, ``restored_at`` = restore; ``finished_at`` unknown, NaN); outcome ``promoted``
for success, ``rolled_back`` for rolled_back, ``rolled_back_manual`` for a failure that
was restored (people restored service; the log does not say how), ``failed_undetected``
for a failure without a restore. ``change_failed`` = status is not success,
``impact_started_at`` = failure, ``time_to_restore`` = restore - failure, ``ended_at`` =
the latest time in the log (a failure not restored by then is censored there, as the
simulator censors at its window's end), ``lead_time`` = deploy - commit, ``rework``;
request counts are 0 and cost, peak error rate and rollout duration NaN (unknown).

Malformed input raises ``InputError`` naming the file, the row (1-based data row; for
CSV also the line) and the column.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from rolloutlab.errors import InputError, ResultsError
from rolloutlab.results.table import NO_DEFECT, Outcome, to_frame

REQUIRED_COLUMNS = ("id", "service", "commit_time", "deploy_time", "status")
OPTIONAL_COLUMNS = ("failure_time", "restore_time", "rework", "detect_time")
STATUSES = ("success", "failure", "rolled_back")
GITHUB_STATES = ("success", "failure", "error", "inactive", "in_progress", "queued", "pending")
_GITHUB_TERMINAL = {"success": "success", "inactive": "success", "failure": "failure", "error": "failure"}
_TRUE = {"true", "yes", "1", "y", "t"}
_FALSE = {"false", "no", "0", "n", "f", ""}
UNKNOWN_DEFECT = "unknown"
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
"""No time in a deployment log is older than this (Unix time 0)."""
CLOCK_SKEW = timedelta(days=1)
"""How far past this machine's clock a log's time may be: the log was written by another
machine, maybe in another timezone with a wrong offset; more than a day ahead is a slip."""


@dataclass(frozen=True)
class LogDeployment:
    """One deployment as the log states it, times as aware datetimes."""

    id: str
    service: str
    commit_time: datetime | None
    deploy_time: datetime
    status: str
    failure_time: datetime | None
    restore_time: datetime | None
    rework: bool
    detect_time: datetime | None = None


class _Where:
    """Names a row for error messages (the file, the 1-based data row, and a CSV line) and
    carries the latest time a row may hold."""

    def __init__(self, file: str, row: int, latest: datetime, line: int | None = None) -> None:
        self.file, self.row, self.line, self.latest = file, row, line, latest

    def error(self, column: str | None, message: str) -> InputError:
        err = InputError(self.file, f"row {self.row}: {message}", line=self.line, field=column)
        err.row = self.row  # type: ignore[attr-defined]
        return err


def load_deploy_log(path: str | Path, now: datetime | None = None) -> pd.DataFrame:
    """Read a deployment log (CSV, JSON, or a GitHub deployments export) as a results table.

    ``now`` (default: this machine's clock) bounds the times the log may hold: none later
    than ``now + CLOCK_SKEW``.
    """
    latest = (now or datetime.now(UTC)) + CLOCK_SKEW
    path = Path(path)
    name = str(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".json"):
        raise InputError(name, f"unknown deployment log format {path.suffix!r}; expected .csv or .json")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(name, "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(name, f"cannot read the file: {exc}") from None
    if suffix == ".csv":
        deployments = _parse_csv(name, text, latest)
    else:
        deployments = _parse_json(name, text, latest)
    if not deployments:
        raise InputError(name, "no deployments in the log")
    return compute_log_results(name, deployments)


# --------------------------------------------------------------------------- CSV and JSON


def _parse_csv(name: str, text: str, latest: datetime) -> list[LogDeployment]:
    try:
        reader = csv.reader(io.StringIO(text, newline=""))
        header = next(reader, None)
        if header is None:
            raise InputError(name, "empty file: expected a header line with " + ", ".join(REQUIRED_COLUMNS))
        header = [h.strip() for h in header]
        _check_header(name, header, line=1)
        out: list[LogDeployment] = []
        seen: dict[str, int] = {}
        row = 0
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue  # blank line
            row += 1
            where = _Where(name, row, latest, reader.line_num)
            if len(cells) != len(header):
                raise where.error(None, f"{len(cells)} fields, but the header has {len(header)}")
            out.append(_parse_record(dict(zip(header, cells)), where, seen))
        return out
    except csv.Error as exc:
        raise InputError(name, f"not a readable CSV file: {exc}") from None


def _check_header(name: str, header: list[str], line: int | None) -> None:
    duplicated = sorted({h for h in header if header.count(h) > 1})
    if duplicated:
        raise InputError(name, f"duplicated column(s): {', '.join(duplicated)}", line=line)
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise InputError(name, f"missing column(s): {', '.join(missing)}", line=line, field=missing[0])


def _parse_json(name: str, text: str, latest: datetime) -> list[LogDeployment]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(name, f"not valid JSON: {exc.msg}", line=exc.lineno) from None
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise InputError(name, "expected a JSON list of deployment objects")
    if data and _is_github_export(data):
        return _parse_github(name, data, latest)
    out: list[LogDeployment] = []
    seen: dict[str, int] = {}
    for row, item in enumerate(data, start=1):
        where = _Where(name, row, latest)
        missing = [c for c in REQUIRED_COLUMNS if c not in item]
        if missing:
            raise where.error(missing[0], f"missing column(s): {', '.join(missing)}")
        out.append(_parse_record(item, where, seen))
    return out


def _is_github_export(data: list[dict[str, Any]]) -> bool:
    first = data[0]
    return "deploy_time" not in first and ("statuses" in first or "sha" in first or "environment" in first)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    return str(value).strip()


def _parse_record(record: dict[str, Any], where: _Where, seen: dict[str, int]) -> LogDeployment:
    ident = _text(record.get("id"))
    if not ident:
        raise where.error("id", "empty; every deployment needs an id")
    if ident in seen:
        raise where.error("id", f"duplicate id {ident!r} (first on row {seen[ident]})")
    seen[ident] = where.row
    service = _text(record.get("service"))
    if not service:
        raise where.error("service", "empty; every deployment needs a service")
    status = _text(record.get("status")).lower()
    if status not in STATUSES:
        raise where.error("status", f"unknown status {record.get('status')!r}; expected one of {', '.join(STATUSES)}")
    commit = _time(record, "commit_time", where, required=False)
    deploy = _time(record, "deploy_time", where, required=True)
    assert deploy is not None
    if commit is not None and deploy < commit:
        raise where.error("deploy_time", "deploy_time precedes commit_time")
    failure = _time(record, "failure_time", where, required=False)
    restore = _time(record, "restore_time", where, required=False)
    detect = _time(record, "detect_time", where, required=False)
    if status == "success":
        for column, value in (("failure_time", failure), ("restore_time", restore), ("detect_time", detect)):
            if value is not None:
                raise where.error(column, f"a successful deployment has no {column}")
    else:
        failure = failure or deploy
        if failure < deploy:
            raise where.error("failure_time", "failure_time precedes deploy_time")
        if restore is not None and restore < failure:
            raise where.error("restore_time", "restore_time precedes the failure (failure_time or deploy_time)")
        if detect is not None and (detect < failure or (restore is not None and detect > restore)):
            raise where.error("detect_time", "detect_time lies outside failure_time (or deploy_time) .. restore_time")
    return LogDeployment(ident, service, commit, deploy, status, failure, restore,
                         _bool(record.get("rework"), where), detect)


def _time(record: dict[str, Any], column: str, where: _Where, required: bool) -> datetime | None:
    raw = record.get(column)
    text = _text(raw)
    if not text:
        if required:
            raise where.error(column, "empty; expected an ISO 8601 time with timezone")
        return None
    try:
        moment = datetime.fromisoformat(text)
    except (ValueError, TypeError):
        raise where.error(column, f"{raw!r} is not an ISO 8601 time (e.g. 2024-05-01T10:00:00Z)") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise where.error(column, f"{raw!r} has no timezone (add Z or +HH:MM)")
    try:
        moment.astimezone(UTC)  # year 1 or 9999 with an offset cannot be compared
    except OverflowError:
        raise where.error(column, f"{raw!r} is out of range (1970 to now)") from None
    if moment < EARLIEST:
        raise where.error(column, f"{raw!r} is before 1970: not a time a deployment log can hold")
    if moment > where.latest:
        raise where.error(column, f"{raw!r} is in the future (later than "
                                  f"{where.latest.strftime('%Y-%m-%dT%H:%MZ')}, a day from now)")
    return moment


def _bool(value: Any, where: _Where) -> bool:
    if isinstance(value, bool):
        return value
    text = _text(value).lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise where.error("rework", f"{value!r} is not true or false")


# --------------------------------------------------------------------------- GitHub export


def _parse_github(name: str, data: list[dict[str, Any]], latest: datetime) -> list[LogDeployment]:
    finished: list[tuple[str, str, datetime, str, datetime]] = []  # id, env, created, outcome, at
    seen: dict[str, int] = {}
    for row, item in enumerate(data, start=1):
        where = _Where(name, row, latest)
        for column in ("id", "environment", "created_at", "statuses"):
            if column not in item:
                raise where.error(column, f"missing {column!r} (a GitHub deployment object)")
        ident = _text(item["id"])
        if not ident:
            raise where.error("id", "empty")
        if ident in seen:
            raise where.error("id", f"duplicate id {ident!r} (first on row {seen[ident]})")
        seen[ident] = row
        env = _text(item["environment"])
        if not env:
            raise where.error("environment", "empty")
        created = _time(item, "created_at", where, required=True)
        assert created is not None
        statuses = item["statuses"]
        if not isinstance(statuses, list):
            raise where.error("statuses", "expected a list of deployment statuses")
        terminal: tuple[datetime, str] | None = None
        for j, status in enumerate(statuses):
            column = f"statuses[{j}]"
            if not isinstance(status, dict):
                raise where.error(column, "expected a deployment status object")
            state = _text(status.get("state")).lower()
            if state not in GITHUB_STATES:
                raise where.error(f"{column}.state", f"unknown state {status.get('state')!r}; "
                                  f"expected one of {', '.join(GITHUB_STATES)}")
            at = _time({f"{column}.created_at": status.get("created_at")}, f"{column}.created_at",
                       where, required=True)
            assert at is not None
            if at < created:
                raise where.error(f"{column}.created_at", "status precedes the deployment's created_at")
            if state in _GITHUB_TERMINAL and (terminal is None or at >= terminal[0]):
                terminal = (at, _GITHUB_TERMINAL[state])
        if terminal is not None:
            finished.append((ident, env, created, terminal[1], terminal[0]))
    order = sorted(range(len(finished)), key=lambda i: finished[i][2])
    restores: dict[str, datetime] = {}
    rework: set[str] = set()
    for pos, i in enumerate(order):
        ident, env, _, outcome, at = finished[i]
        if outcome != "failure":
            continue
        for k in order[pos + 1:]:
            other, other_env, _, other_outcome, other_at = finished[k]
            if other_env == env and other_outcome == "success" and other_at >= at:
                restores[ident] = other_at
                rework.add(other)
                break
    return [
        LogDeployment(ident, env, None, created, outcome,
                      at if outcome == "failure" else None, restores.get(ident), ident in rework)
        for ident, env, created, outcome, at in finished
    ]


# --------------------------------------------------------------------------- results rows


def compute_log_results(name: str, deployments: list[LogDeployment]) -> pd.DataFrame:
    """The results table of parsed deployments: one row each, in deployment order."""
    ordered = sorted(deployments, key=lambda d: d.deploy_time)
    t0 = ordered[0].deploy_time
    seconds = lambda t: float("nan") if t is None else (t - t0).total_seconds()
    # The log watched until the last moment it records: a failure not restored by then is
    # censored there, the one rule for times that did not end.
    last = max(t for d in ordered for t in (d.deploy_time, d.failure_time, d.restore_time) if t is not None)
    counts: dict[str, int] = {}
    rows = []
    for d in ordered:
        k = counts.get(d.service, 0)
        counts[d.service] = k + 1
        failed = d.status != "success"
        if d.status == "success":
            outcome = Outcome.PROMOTED
        elif d.status == "rolled_back":
            outcome = Outcome.ROLLED_BACK
        elif d.restore_time is not None:
            outcome = Outcome.ROLLED_BACK_MANUAL
        else:
            outcome = Outcome.FAILED_UNDETECTED
        restore = (d.restore_time - d.failure_time).total_seconds() \
            if d.restore_time is not None and d.failure_time is not None else float("nan")
        lead = (d.deploy_time - d.commit_time).total_seconds() if d.commit_time is not None else float("nan")
        rows.append({
            "source": "log", "scenario": d.service, "strategy": d.service, "run": 0, "seed": 0,
            "release": d.id, "defect": UNKNOWN_DEFECT if failed else NO_DEFECT, "outcome": outcome.value,
            "started_at": seconds(d.deploy_time), "finished_at": float("nan"),
            "detected_at": seconds(d.detect_time or d.failure_time), "restored_at": seconds(d.restore_time),
            "requests": 0, "failed_requests": 0, "peak_error_rate": float("nan"),
            "replica_seconds": float("nan"),
            "change_failed": failed, "impact_started_at": seconds(d.failure_time),
            "time_to_restore": restore, "ended_at": seconds(last), "rollout_duration": float("nan"),
            "exposed_requests": 0, "deployment": k, "commit_at": seconds(d.commit_time),
            "lead_time": lead, "rework": d.rework, "service": d.service,
        })
    try:
        return to_frame(rows)
    except ResultsError as exc:  # parsing checks should make this impossible; never a traceback
        raise InputError(name, f"log does not fit the results table: {exc}") from None
