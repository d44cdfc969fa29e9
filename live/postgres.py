"""A throwaway PostgreSQL cluster for one live run: initdb in a temporary directory, gone on close.

Debian's server binaries (``/usr/lib/postgresql/15/bin``: ``initdb``, ``postgres``,
``pg_ctl``; package ``postgresql``) make a fresh cluster per run, so the demo service
reads and writes a real table and a migration's DDL is PostgreSQL's own:

- ``initdb --auth=trust`` into ``<tmp>/data``; the server listens on a Unix socket in
  ``<tmp>/socket`` only (``listen_addresses=''``: no TCP port at all, so nothing to
  race for and nothing reachable from the network; the socket directory is 0700, so
  only its owner and root can connect although authentication is ``trust``).
- PostgreSQL refuses to run as root ("cannot be run as root", src/backend/main/main.c in
  postgres/postgres): a root process runs initdb, postgres and pg_ctl as ``nobody``
  (setgid/setuid in the child before exec), which owns ``data`` and ``socket``.
- The postmaster is our own child, started in the foreground rather than daemonized by
  ``pg_ctl start`` (a daemon is nobody's child and would outlive a killed run): it dies
  with the thread that started it (``PR_SET_PDEATHSIG``, set after the uid change, which
  clears it), as the local backend's pods do; its backends follow the postmaster's death
  on their own. Start it from a thread that lives as long as the run.
- ``close()`` stops it with ``pg_ctl stop -m immediate`` (no checkpoint: the data is
  thrown away) and removes the directory. Dynamic shared memory lives in files in the data
  directory (``dynamic_shared_memory_type=mmap``), so nothing is left in /dev/shm either.
- Durability is off (``fsync``, ``full_page_writes``, ``synchronous_commit``): a
  throwaway cluster has nothing to keep, and a rollout's requests should not wait on disk.

A missing install is ``PostgresMissing`` (exit 2, naming ``apt-get install postgresql``);
a cluster that does not start is ``PostgresFailed`` with the end of the server's log.
"""

from __future__ import annotations

import atexit
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rolloutlab.errors import PostgresFailed, PostgresMissing
from rolloutlab.live.child_processes import die_with_parent, wait_or_kill

POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")
INSTALL_HINT = "Debian: apt-get install postgresql"
DATABASE = "demo"
SUPERUSER = "postgres"
RUN_AS = "nobody"  # the account a root process runs the server as
SOCKET_PORT = 5432  # names the socket file (.s.PGSQL.5432) in our private directory; no TCP port is opened
SERVER_SETTINGS = {
    "listen_addresses": "",
    "fsync": "off",
    "full_page_writes": "off",
    "synchronous_commit": "off",
    "dynamic_shared_memory_type": "mmap",
    "shared_buffers": "16MB",
    "max_connections": "200",  # one per demo pod (two versions, surge, a baseline) and the migrations
    "log_min_messages": "warning",
}


def require_postgres(bin_dir: Path = POSTGRES_BIN) -> Path:
    """The directory holding initdb, postgres and pg_ctl, and the driver importable."""
    missing = [name for name in ("initdb", "postgres", "pg_ctl") if not (bin_dir / name).exists()]
    if missing:
        raise PostgresMissing(f"{', '.join(missing)} not found in {bin_dir}: install PostgreSQL ({INSTALL_HINT})")
    try:
        import psycopg  # noqa: F401 - the driver the demo service and the migrations use
    except ImportError:
        raise PostgresMissing("the PostgreSQL driver psycopg is missing: pip install 'psycopg[binary]'") from None
    return bin_dir


def _as_user(uid: int | None, gid: int | None) -> Callable[[], None] | None:
    """A ``preexec_fn``: drop to ``uid``/``gid`` (when given), then die with the parent
    (after the uid change: changing credentials clears PR_SET_PDEATHSIG)."""
    die = die_with_parent(os.getpid())

    def preexec() -> None:
        if uid is not None:
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
        if die is not None:
            die()

    return preexec


@dataclass
class PostgresCluster:
    """One PostgreSQL server of our own, on a Unix socket in a temporary directory.

    ``url`` is a libpq connection string for the ``demo`` database (give it to the demo
    service as ``DEMO_DATABASE_URL``); ``connect()`` opens an autocommit connection."""

    bin_dir: Path = POSTGRES_BIN
    start_timeout: float = 30.0
    run_as: str = RUN_AS
    _dir: Path | None = field(default=None, init=False, repr=False)
    _process: subprocess.Popen | None = field(default=None, init=False, repr=False)
    _ids: tuple[int, int] | None = field(default=None, init=False, repr=False)

    def __enter__(self) -> PostgresCluster:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ----------------------------------------------------------------- where

    @property
    def directory(self) -> Path:
        if self._dir is None:
            raise RuntimeError("the PostgreSQL cluster is not started")
        return self._dir

    @property
    def socket_dir(self) -> Path:
        return self.directory / "socket"

    @property
    def url(self) -> str:
        return f"host={self.socket_dir} port={SOCKET_PORT} dbname={DATABASE} user={SUPERUSER}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def connect(self, dbname: str = DATABASE) -> Any:
        """An autocommit connection (psycopg) to ``dbname`` as the superuser."""
        import psycopg

        return psycopg.connect(f"host={self.socket_dir} port={SOCKET_PORT} dbname={dbname} user={SUPERUSER}",
                               autocommit=True, connect_timeout=5)

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> PostgresCluster:
        require_postgres(self.bin_dir)
        self._ids = self._server_ids()
        self._dir = Path(tempfile.mkdtemp(prefix="rolloutlab-postgres-"))
        atexit.register(self.close)
        try:
            self._dir.chmod(0o711)  # the server's user must reach its directories inside
            for name in ("data", "socket"):
                (self._dir / name).mkdir(mode=0o700)
                if self._ids is not None:
                    os.chown(self._dir / name, *self._ids)
            self._run([str(self.bin_dir / "initdb"), "-D", str(self._dir / "data"), "-U", SUPERUSER,
                       "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions"],
                      "initdb")
            self._start_server()
            with self.connect("postgres") as connection:
                connection.execute(f"CREATE DATABASE {DATABASE}")
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Stop the server (immediate: nothing to keep) and remove its directory. Idempotent."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            try:
                self._run([str(self.bin_dir / "pg_ctl"), "stop", "-D", str(self.directory / "data"),
                           "-m", "immediate", "-w", "-t", "10"], "pg_ctl stop")
            except PostgresFailed:
                process.kill()
            wait_or_kill(process, 10.0)
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
        atexit.unregister(self.close)

    # ----------------------------------------------------------------- internals

    def _server_ids(self) -> tuple[int, int] | None:
        """(uid, gid) to run the server as: ``run_as`` when we are root, else None (ourselves)."""
        if os.geteuid() != 0:
            return None
        try:
            entry = pwd.getpwnam(self.run_as)
        except KeyError:
            raise PostgresFailed(f"PostgreSQL cannot run as root and there is no user {self.run_as!r} "
                                 "to run it as") from None
        return entry.pw_uid, entry.pw_gid

    def _child_env(self) -> dict[str, str]:
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C", "LC_ALL": "C",
                "HOME": str(self.directory)}

    def _run(self, args: Sequence[str], what: str) -> None:
        log = self.directory / f"{what.replace(' ', '-')}.log"
        with open(log, "ab") as sink:
            done = subprocess.run(args, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                  env=self._child_env(), cwd=self.directory, timeout=120,
                                  preexec_fn=_as_user(*(self._ids or (None, None))))
        if done.returncode != 0:
            tail = log.read_text(errors="replace")[-1200:].strip()
            raise PostgresFailed(f"{what} failed (exit {done.returncode}): {tail}")

    def _start_server(self) -> None:
        log = self.directory / "postgres.log"
        settings = [arg for key, value in {**SERVER_SETTINGS, "unix_socket_directories": str(self.socket_dir),
                                           "port": str(SOCKET_PORT)}.items() for arg in ("-c", f"{key}={value}")]
        with open(log, "ab") as sink:
            self._process = subprocess.Popen(
                [str(self.bin_dir / "postgres"), "-D", str(self.directory / "data"), *settings],
                stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self._child_env(),
                cwd=self.directory, preexec_fn=_as_user(*(self._ids or (None, None))), start_new_session=True)
        deadline = time.monotonic() + self.start_timeout
        import psycopg

        while True:
            if self._process.poll() is not None:
                break
            try:
                with self.connect("postgres") as connection:
                    connection.execute("SELECT 1")
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)
        tail = log.read_text(errors="replace")[-1200:].strip()
        raise PostgresFailed(f"PostgreSQL did not start within {self.start_timeout:g}s: {tail}")


__all__ = ["DATABASE", "INSTALL_HINT", "POSTGRES_BIN", "PostgresCluster", "require_postgres"]
