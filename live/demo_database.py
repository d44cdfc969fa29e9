"""What the demo service does with its database on each app request (live migrations).

A live scenario with a ``migration:`` gives the demo service a real PostgreSQL database
(``live.postgres``: a throwaway cluster) holding one table, ``demo_records``::

    id bigserial primary key, name text not null, value_s1 text, value_s2 text, ...

``value_s<N>`` is the column schema version N introduced (``value_s<initial_schema>`` is
the legacy column the table starts with; each expand step adds the next one, each
contract step drops the oldest one still there: ``live.migrations_live``). A version of
the service was built against one of them: the old version reads and writes the legacy
column, the new version the column its expand step added. When a contract has dropped a
version's column, its queries fail with PostgreSQL's own error (42703 undefined_column),
and nothing the rollout does (a rollback included) brings the column back.

Per app request the service runs one statement (autocommit, so a failed one poisons
nothing): a GET reads one of the seeded rows by id, a POST inserts a row. A share of
requests touches the version's column (``DEMO_SCHEMA_COLUMN_SHARE``: in a scenario, the
``incompatible_migration`` defect's ``error_rate``, "the requests that touch the dropped
column"); the others read or write only ``id`` and ``name`` and survive any contract.

Environment
-----------
``DEMO_DATABASE_URL``         libpq connection string or URI; unset = no database.
``DEMO_SCHEMA_VERSION``       N: the version reads/writes ``value_s<N>``; unset or empty =
                              the version touches no migrated column.
``DEMO_SCHEMA_COLUMN_SHARE``  share of requests that touch that column (default 1).

Interface for the demo service: ``DemoDatabase.from_env(env, seed)`` (None without
``DEMO_DATABASE_URL``) and ``db.serve(write)``: None when the statement succeeded, else a
one-line failure (the request answers 5xx). One connection per process, shared by the
request threads under a lock; a broken connection is reopened on the next request. A
query error is a failed request, never a crash.

Standard library and ``psycopg`` (v3) only, imported when a database is configured, so
the demo service stays self-contained without one.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping
from typing import Any

TABLE = "demo_records"
SEED_ROWS = 200  # rows a fresh table holds, which GETs read by id
CONNECT_TIMEOUT_S = 2
# A statement must not hang a request thread behind a migration's ACCESS EXCLUSIVE lock
# for longer than a request would wait (ALTER TABLE takes one; PostgreSQL docs, "Explicit Locking").
STATEMENT_TIMEOUT_MS = 2000


def column_name(schema: int) -> str:
    """The column schema version ``schema`` introduced (``value_s1`` for schema 1)."""
    if schema < 0:
        raise ValueError(f"schema version must be >= 0, got {schema}")
    return f"value_s{schema}"


class DemoDatabase:
    """One demo process' connection and the statements its version runs."""

    def __init__(self, url: str, schema: int | None, column_share: float = 1.0, seed: int | None = None) -> None:
        if not 0.0 <= column_share <= 1.0:
            raise ValueError(f"DEMO_SCHEMA_COLUMN_SHARE must be in [0, 1], got {column_share}")
        self.url = url
        self.schema = schema
        self.column = column_name(schema) if schema is not None else None
        self.column_share = column_share
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._connection: Any = None
        import psycopg  # only a process with a database needs the driver

        self._psycopg = psycopg

    @classmethod
    def from_env(cls, env: Mapping[str, str], seed: int | None = None) -> DemoDatabase | None:
        """The database ``env`` describes, None without ``DEMO_DATABASE_URL``; ValueError
        names a bad variable (and a missing driver)."""
        url = env.get("DEMO_DATABASE_URL", "").strip()
        if not url:
            return None
        raw = env.get("DEMO_SCHEMA_VERSION", "").strip()
        try:
            schema = int(raw) if raw else None
        except ValueError:
            raise ValueError(f"DEMO_SCHEMA_VERSION={raw!r} is not a schema version (an integer)") from None
        share_raw = env.get("DEMO_SCHEMA_COLUMN_SHARE", "").strip() or "1"
        try:
            share = float(share_raw)
        except ValueError:
            raise ValueError(f"DEMO_SCHEMA_COLUMN_SHARE={share_raw!r} is not a number") from None
        try:
            return cls(url, schema, share, seed)
        except ImportError:
            raise ValueError("DEMO_DATABASE_URL is set but the PostgreSQL driver is missing: "
                             "pip install 'psycopg[binary]'") from None

    # -- one request ------------------------------------------------------------------
    def serve(self, write: bool) -> str | None:
        """Run this request's statement: None if it succeeded, else why it failed (one line)."""
        with self._lock:
            touches = self.column is not None and self._rng.random() < self.column_share
            row = self._rng.randint(1, SEED_ROWS)
            name = f"r{self._rng.getrandbits(32):08x}"
            sql, params = self.statement(write, touches, row, name)
            try:
                connection = self._connect()
                cursor = connection.execute(sql, params)
                if not write:
                    cursor.fetchall()
                return None
            except self._psycopg.Error as error:
                if self._connection is not None and (self._connection.closed or self._connection.broken):
                    self._drop()  # reopened on the next request
                return describe_error(error)

    def statement(self, write: bool, touches: bool, row: int, name: str) -> tuple[str, tuple]:
        """The SQL this version runs for one request (``touches``: uses its column)."""
        if write:
            if touches:
                return f"INSERT INTO {TABLE} (name, {self.column}) VALUES (%s, %s)", (name, f"{name}@example.test")
            return f"INSERT INTO {TABLE} (name) VALUES (%s)", (name,)
        if touches:
            return f"SELECT id, name, {self.column} FROM {TABLE} WHERE id = %s", (row,)
        return f"SELECT id, name FROM {TABLE} WHERE id = %s", (row,)

    def close(self) -> None:
        with self._lock:
            self._drop()

    # -- the connection ---------------------------------------------------------------
    def _connect(self) -> Any:
        if self._connection is None:
            self._connection = self._psycopg.connect(
                self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S,
                options=f"-c statement_timeout={STATEMENT_TIMEOUT_MS}", application_name="rolloutlab-demo")
        return self._connection

    def _drop(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            finally:
                self._connection = None


def describe_error(error: BaseException) -> str:
    """PostgreSQL's own words for a failed statement, on one line: ``database: SQLSTATE message``
    (e.g. ``database: 42703 column "value_s1" does not exist``)."""
    state = getattr(error, "sqlstate", None)
    diag = getattr(error, "diag", None)
    primary = diag.message_primary if diag is not None else None  # the server's message, without the position
    first = primary or (str(error).strip().splitlines() or [type(error).__name__])[0]
    return f"database: {state} {first}" if state else f"database: {first}"


__all__ = ["DemoDatabase", "SEED_ROWS", "TABLE", "column_name", "describe_error"]
