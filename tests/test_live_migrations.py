"""Live migrations against a real PostgreSQL: a throwaway cluster, real DDL, real failed queries.

The cluster is Debian's PostgreSQL 15 (``live.postgres``), the statements are the demo
service's own (``live.demo_database``), the DDL is what ``live.migrations_live`` runs for
the library's migration scenarios. Nothing is mocked: a contract run too early makes the
old version's queries fail with PostgreSQL's own error, and a rollback (the old version's
pods serving again, with new connections) still fails.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from rolloutlab.errors import LiveUnsupported, PostgresMissing, exit_status
from rolloutlab.live.demo_database import TABLE, DemoDatabase
from rolloutlab.live.loadgen import ERROR_RESULTS
from rolloutlab.live.migrations_live import (
    LiveMigrations,
    compute_columns,
    compute_ddl,
    compute_version_column,
    migration_schedule,
)
from rolloutlab.live.postgres import PostgresCluster
from rolloutlab.scenarios.schema import Migration, MigrationStep
from rolloutlab.scenarios.schema.scenario import load_scenario
from rolloutlab.strategies import Promote, Role
from tests.outside_systems import needs_haproxy, needs_postgres
from tests.test_local_backend import alive, descendants, until

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ROOT / "scenarios" / "library"
REQUESTS = 200  # statements per version and phase: bounded, well under a second each


def library(name: str):
    return load_scenario(LIBRARY / f"{name}.yaml")


@pytest.fixture
def cluster():
    before = descendants(os.getpid())
    with PostgresCluster() as pg:
        yield pg
    assert until(lambda: not (descendants(os.getpid()) - before), 10.0), "PostgreSQL processes left running"


def serve_many(db: DemoDatabase, n: int = REQUESTS) -> list[str]:
    """The failures of ``n`` requests, half reads, half writes."""
    return [f for i in range(n) if (f := db.serve(write=i % 2 == 1)) is not None]


def version(migrations: LiveMigrations, defect, role: Role, seed: int) -> DemoDatabase:
    db = DemoDatabase.from_env(migrations.version_env(defect, role), seed=seed)
    assert db is not None
    return db


def prepared(cluster: PostgresCluster, name: str):
    """A library scenario's table at its initial schema, its bad release's defect, and the old
    version serving on it without a failure."""
    scenario = library(name)
    defect = scenario.release.defects[0]
    migrations = LiveMigrations(scenario, cluster)
    migrations.prepare()
    old = version(migrations, defect, Role.STABLE, seed=1)
    assert serve_many(old) == []
    return migrations, defect, old


# --------------------------------------------------------------------------- the plan (pure)


@pytest.mark.parametrize(("scenario", "release", "old", "new"), [
    ("expand-contract-migration", "bad", 1, 2),
    ("expand-contract-migration", "good", 1, 2),
    ("migration-contract-too-early", "bad", 1, 2),
    ("migration-contract-too-early", "good", None, None),
], ids=["expand-contract: old on the legacy column, new on the expanded one",
        "expand-contract, good release: the compatibility alone decides",
        "contract-too-early: the defect puts the old version on the dropped column",
        "contract-too-early, good release: no version depends on a migrated column"])
def test_each_version_uses_the_column_the_simulator_model_implies(scenario, release, old, new):
    """A version uses the column that exists exactly where the simulator says it works."""
    s = library(scenario)
    defect = s.release.defects[0] if release == "bad" else None
    assert compute_version_column(s.migration, defect, Role.STABLE) == old
    assert compute_version_column(s.migration, defect, Role.CANARY) == new


def test_expand_adds_backfills_and_syncs_and_contract_drops_the_oldest_column():
    """Expand is ADD COLUMN + backfill + a sync trigger; contract drops the trigger, then the legacy column."""
    steps = compute_ddl(library("expand-contract-migration").migration)
    assert [(s.kind, s.schema) for s in steps] == [("expand", 2), ("contract", 3)]
    assert steps[0].statements[0] == f"ALTER TABLE {TABLE} ADD COLUMN value_s2 text"
    assert steps[0].statements[1].startswith(f"UPDATE {TABLE} SET value_s2 = value_s1")
    assert steps[1].statements[-1] == f"ALTER TABLE {TABLE} DROP COLUMN value_s1"


def test_a_contract_with_nothing_expanded_has_no_live_form():
    """Contracting the table's only column is refused, naming the step."""
    migration = Migration(steps=[MigrationStep(name="drop_it", kind="contract")])
    with pytest.raises(LiveUnsupported, match="drop_it"):
        compute_columns(migration)


def test_a_missing_install_is_bad_input_naming_the_package(tmp_path):
    """No PostgreSQL binaries: exit 2, saying what to install."""
    with pytest.raises(PostgresMissing, match="apt-get install postgresql") as caught:
        PostgresCluster(bin_dir=tmp_path).start()
    assert exit_status(caught.value) == 2


# --------------------------------------------------------------------------- the cluster


@needs_postgres
def test_the_throwaway_cluster_starts_serves_and_leaves_nothing():
    """initdb + postgres as an unprivileged user; close() stops every process and removes the directory."""
    before = descendants(os.getpid())
    pg = PostgresCluster().start()
    directory, pid = pg.directory, pg.pid
    with pg.connect() as connection:
        user, = connection.execute("SELECT current_user").fetchone()
    server = descendants(os.getpid()) - before
    assert user == "postgres" and pid in server and len(server) > 1  # the postmaster and its workers
    if os.geteuid() == 0:
        assert Path(f"/proc/{pid}").stat().st_uid != 0  # PostgreSQL refuses root: it runs as nobody
    pg.close()
    pg.close()  # idempotent
    assert until(lambda: not any(alive(p) for p in server), 10.0), "PostgreSQL processes left running"
    assert not directory.exists()


@needs_postgres
def test_the_cluster_dies_with_the_process_that_started_it():
    """A run killed with SIGKILL takes its PostgreSQL down with it (PR_SET_PDEATHSIG after the uid change)."""
    code = ("import sys, time\nfrom rolloutlab.live.postgres import PostgresCluster\n"
            "pg = PostgresCluster().start()\nprint(pg.pid, pg.directory, flush=True)\ntime.sleep(60)\n")
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    directory = None
    try:
        pid, directory = child.stdout.readline().split()
        assert alive(int(pid))
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        assert until(lambda: not alive(int(pid)), 10.0), "the postmaster outlived the process that started it"
    finally:
        child.kill()
        child.wait(timeout=10)
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)  # a killed run cannot remove its directory


@needs_postgres
def test_a_dropped_connection_fails_one_request_and_is_reopened(cluster):
    """The demo's connection is reopened after the server dropped it: a failed request, not a crash."""
    migrations = LiveMigrations(library("expand-contract-migration"), cluster)
    migrations.prepare()
    db = version(migrations, None, Role.STABLE, seed=3)
    assert db.serve(write=False) is None
    with cluster.connect() as admin:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'rolloutlab-demo'")
    failures = serve_many(db, 5)
    assert len(failures) <= 1 and all(f.startswith("database:") for f in failures)
    assert db.serve(write=True) is None
    db.close()


# --------------------------------------------------------------------------- migrations, for real


@needs_postgres
def test_expand_then_contract_in_order_keeps_both_versions_working(cluster):
    """Expand before the deploy, contract after promotion: no failed statement for either version
    while it serves, and the old version's writes reach the new column through the sync trigger."""
    migrations, defect, old = prepared(cluster, "expand-contract-migration")
    schedule = migration_schedule(migrations)
    assert [at for at, _ in schedule] == [0.0]  # the expand; the contract waits for the promotion
    for _, step in schedule:
        step()
    new = version(migrations, defect, Role.CANARY, seed=2)
    assert serve_many(old) == [] and serve_many(new) == []  # side by side on schema 2
    with cluster.connect() as admin:
        admin.execute(f"INSERT INTO {TABLE} (name, value_s1) VALUES ('from-old', 'old@example.test')")
        synced, = admin.execute(f"SELECT value_s2 FROM {TABLE} WHERE name = 'from-old'").fetchone()
    assert synced == "old@example.test"
    migrations.on_action(Promote())  # the old version is gone: contract
    assert migrations.schema == 3 and [s.when for s in migrations.applied] == ["before_deploy", "after_promotion"]
    assert serve_many(new) == []
    old.close()
    new.close()


@needs_postgres
def test_contract_too_early_breaks_the_old_version_and_a_rollback_cannot_fix_it(cluster):
    """The contract with the deploy drops the old version's column: its requests that touch it fail
    with PostgreSQL's undefined-column error, and old-version pods started again after a rollback
    fail the same way; the new version keeps working."""
    migrations, defect, old = prepared(cluster, "migration-contract-too-early")
    for _, step in migrations.schedule():  # expand and contract, both at the rollout's start
        step()
    assert migrations.schema == 3
    new = version(migrations, defect, Role.CANARY, seed=2)
    assert serve_many(new) == []
    failures = serve_many(old)
    share = len(failures) / REQUESTS
    assert set(failures) == {'database: 42703 column "value_s1" does not exist',
                             'database: 42703 column "value_s1" of relation "demo_records" does not exist'}
    assert 0.2 <= share <= 0.4  # the defect's 30% of requests touch the dropped column
    old.close()
    # the rollback: traffic back on the old version's pods, each with a new connection
    rolled_back = version(migrations, defect, Role.STABLE, seed=4)
    assert len(serve_many(rolled_back)) / REQUESTS >= 0.2
    rolled_back.close()
    new.close()


@needs_postgres
def test_the_demo_service_answers_500_with_postgres_error_after_the_contract(cluster, tmp_path):
    """Through HTTP: the old version's process answers PostgreSQL's error as a 500 once the
    contract ran, and an old-version process started again (a rollback's new pod) does too."""
    from tests.test_demo_service import run_demo

    migrations, defect, old = prepared(cluster, "migration-contract-too-early")
    old.close()
    env = {k.removeprefix("DEMO_").lower(): v for k, v in migrations.version_env(defect, Role.STABLE).items()}

    def failures(demo) -> list[str]:
        answers = [demo.client.request("POST" if i % 2 else "GET", demo.url + "/") for i in range(100)]
        return [a.json().get("failure") for a in answers if a.status_code == 500]

    with run_demo(tmp_path, version="v1", seed=5, **env) as demo:
        assert failures(demo) == []
        for _, step in migrations.schedule():
            step()
        broken = failures(demo)
    assert broken and all("42703" in f and "value_s1" in f for f in broken)
    with run_demo(tmp_path, version="v1", seed=6, **env) as rolled_back:
        assert len(failures(rolled_back)) >= 15  # about 30 of 100: the column does not come back


@needs_postgres
@needs_haproxy
def test_live_contract_too_early_on_the_local_backend_fails_the_old_version_after_a_rollback(tmp_path,
                                                                                          record_property):
    """A real rollout of migration-contract-too-early (canary, 30x): the run's own PostgreSQL gets
    the expand and the contract with the deploy, the on-call engineer aborts at 1m30s, and the old
    version, back on all traffic, keeps failing the requests that touch the dropped column while
    the new version never failed; the cluster is gone when the run ends."""
    from rolloutlab.live.local import LocalBackend
    from rolloutlab.live.session import make_plan, run_live
    from rolloutlab.strategies import Command, load_strategy

    scale = 30.0
    sc = library("migration-contract-too-early").model_copy(update={"duration": 300.0})
    spec = load_strategy("canary").with_replicas(3)
    plan = make_plan(sc, spec, release="bad", time_scale=scale)
    lines: list[str] = []
    before = descendants(os.getpid())
    with LocalBackend(tmp_path / "state", seed=1) as backend:
        run = run_live(sc, spec, backend, plan, time_scale=scale, seed=3, max_rps=60, max_wall_s=60,
                       log=lines.append,
                       before_run=lambda runner: runner.faults.append((90.0, lambda: runner.request(Command.ABORT))))
    assert until(lambda: not (descendants(os.getpid()) - before), 10.0), "processes left running"
    assert [line for line in lines if line.startswith("migration ")] == [
        "migration expand add_email_column: schema 2 (before_deploy)",
        "migration contract drop_legacy_email: schema 3 (with_deploy)"]
    status = run.summary.status
    assert status.aborted and status.restored_at is not None
    user = run.records[(run.records["target"] == "user") & run.records["version"].notna()]
    failed = user["result"].isin([r.value for r in ERROR_RESULTS])
    after = user["at"] > status.restored_at + 5.0
    old_after = failed[after & (user["version"] == plan.stable.name)]
    new = failed[user["version"] == plan.canary.name]
    measured = {"old_failed_after_rollback": round(float(old_after.mean()), 3), "old_requests": len(old_after),
                "new_failed": round(float(new.mean()), 3), "new_requests": len(new)}
    record_property("measured", measured)
    print(measured)
    assert len(old_after) >= 50 and old_after.mean() >= 0.15  # about 30%: the rollback fixed nothing
    assert len(new) > 0 and new.mean() <= 0.02
