"""A scenario's migration run live: real DDL on the run's PostgreSQL, at the simulator's moments.

The simulator's model (sim/migrations.py) is a schema version that steps go up and never
down, and for each app version the schema versions it works on. Here the schema is a
table (``live.demo_database``: ``demo_records`` with one ``value_s<N>`` column per schema
generation) and the steps are PostgreSQL DDL:

- expand to schema N: ``ALTER TABLE ADD COLUMN value_sN``, a backfill from the newest
  column before it, and a trigger keeping the two in step while both versions write
  (the old one writes only its column, the new one only its own): the expand/contract
  ("parallel change") pattern as online migration tools run it, e.g. xataio/pgroll's
  ``pkg/migrations/op_add_column.go`` (add column, backfill, up/down triggers).
- contract to schema N: drop the sync triggers, then ``ALTER TABLE DROP COLUMN`` of the
  oldest column still there. The old version's statements on it now fail with
  PostgreSQL's ``42703 column "value_s1" does not exist``, from every pod of it, and a
  rollback (which only moves traffic back to the old pods) cannot bring the column back:
  the live form of "contract too early".

Steps run when the simulator runs them: ``before_deploy`` then ``with_deploy`` at the
rollout's start (scenario second 0, before the runner's first cycle creates the new
version's pods), fixed times at their scenario second, ``after_promotion`` when the
controller promotes. A step that comes due runs with every earlier step not yet run
(the simulator's schema is ``max`` of the steps run: the same version here).

Which column a version uses follows the scenario's compatibility (and the release's
``incompatible_migration`` defect), as ``sim.migrations.compute_schema_ok`` says where
each version works: a version that works on every schema version the migration
reaches touches no migrated column; otherwise it uses the column that exists exactly up
to its last good schema (the old version: the legacy column a contract drops). The share
of requests that touch it is the defect's ``error_rate`` (1 without the defect), the
simulator's ``compute_schema_error_rate``.

Wiring: live/session_migration.py (``MigrationRun``) starts the cluster, prepares the
table, adds ``version_env`` to each version of the plan, gives the runner ``schedule()``
and calls ``on_action`` after every action the backend applies. The database is a Unix
socket on this machine: the local backend's pods reach it, Kubernetes pods do not.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from rolloutlab.errors import LiveUnsupported, PostgresFailed
from rolloutlab.live.demo_database import SEED_ROWS, TABLE, column_name
from rolloutlab.live.postgres import PostgresCluster
from rolloutlab.scenarios.schema import IncompatibleMigrationDefect, Migration, Scenario
from rolloutlab.strategies import Promote, Role

LOCK_TIMEOUT = "5s"  # a DDL waits this long for the demo's short statements to let go of the table


# --------------------------------------------------------------------------- the DDL (pure)


@dataclass(frozen=True)
class StepDDL:
    """One migration step as SQL: what it does to the table and the schema it reaches."""

    index: int
    name: str
    kind: str
    schema: int
    statements: tuple[str, ...]


def compute_columns(migration: Migration) -> dict[int, tuple[int, int]]:
    """Each column's lifetime, ``{introduced schema: (first schema it exists in, last one)}``:
    the legacy column from the initial schema, one more per expand, the oldest dropped per
    contract. A contract that would drop the only column left is LiveUnsupported."""
    alive: list[int] = [migration.initial_schema]
    lifetime = {migration.initial_schema: [migration.initial_schema, migration.final_schema]}
    for i, step in enumerate(migration.steps):
        schema = migration.initial_schema + i + 1
        if step.kind == "expand":
            alive.append(schema)
            lifetime[schema] = [schema, migration.final_schema]
        else:
            if len(alive) < 2:
                raise LiveUnsupported(f"migration step {step.name!r} contracts with no expanded column left: the "
                                      "live schema (one column per expand) would drop the table's last column")
            lifetime[alive.pop(0)][1] = schema - 1
    return {c: (a, b) for c, (a, b) in lifetime.items()}


def compute_ddl(migration: Migration) -> list[StepDDL]:
    """The DDL of each step, in step order."""
    alive = [migration.initial_schema]
    out = []
    for i, step in enumerate(migration.steps):
        schema = migration.initial_schema + i + 1
        if step.kind == "expand":
            new, previous = column_name(schema), column_name(alive[-1])
            sync = f"demo_sync_s{schema}"
            statements = (
                f"ALTER TABLE {TABLE} ADD COLUMN {new} text",
                f"UPDATE {TABLE} SET {new} = {previous} WHERE {new} IS NULL",
                f"CREATE FUNCTION {sync}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"NEW.{new} := coalesce(NEW.{new}, NEW.{previous}); "
                f"NEW.{previous} := coalesce(NEW.{previous}, NEW.{new}); RETURN NEW; END $$",
                f"CREATE TRIGGER {sync} BEFORE INSERT OR UPDATE ON {TABLE} FOR EACH ROW EXECUTE FUNCTION {sync}()",
            )
            alive.append(schema)
        else:
            if len(alive) < 2:
                compute_columns(migration)  # raises, naming the step
            dropped, kept_next = alive.pop(0), alive[0]
            sync = f"demo_sync_s{kept_next}"  # the trigger that kept the dropped column in step
            statements = (
                f"DROP TRIGGER IF EXISTS {sync} ON {TABLE}",
                f"DROP FUNCTION IF EXISTS {sync}()",
                f"ALTER TABLE {TABLE} DROP COLUMN {column_name(dropped)}",
            )
        out.append(StepDDL(i, step.name, step.kind, schema, statements))
    return out


def create_table_sql(migration: Migration) -> tuple[str, ...]:
    """The table at the initial schema, with ``SEED_ROWS`` rows for reads."""
    legacy = column_name(migration.initial_schema)
    return (
        f"CREATE TABLE {TABLE} (id bigserial PRIMARY KEY, name text NOT NULL, {legacy} text)",
        f"INSERT INTO {TABLE} (name, {legacy}) SELECT 'seed' || n, 'seed' || n || '@example.test' "
        f"FROM generate_series(1, {SEED_ROWS}) AS n",
    )


# --------------------------------------------------------------------------- which column a version uses (pure)


def compute_works_on(migration: Migration, defect, role: Role) -> list[int]:
    """The schema versions (initial..final) ``role``'s version works on: its compatibility
    range, less what the release's ``incompatible_migration`` defect breaks. The same
    rule as the simulator's ``compute_schema_ok`` (sim/migrations.py), which live/ may not
    import."""
    allowed = migration.compatibility.old if role is Role.STABLE else migration.compatibility.new
    out = []
    for schema in range(migration.initial_schema, migration.final_schema + 1):
        ok = allowed.allows(schema)
        if isinstance(defect, IncompatibleMigrationDefect):
            required = defect.required_schema if defect.required_schema is not None else migration.final_schema
            if role is Role.CANARY and schema < required:
                ok = False
            if role is Role.STABLE and defect.breaks_old and schema >= required:
                ok = False
        if ok:
            out.append(schema)
    return out


def compute_version_column(migration: Migration, defect, role: Role) -> int | None:
    """The schema whose column ``role``'s version reads and writes; None when it works on
    every schema (it touches no migrated column). The column must exist on the version's
    whole range and be dropped right after its last good schema; the latest-added such
    column (a new version uses the newest column its schema has)."""
    works = compute_works_on(migration, defect, role)
    every = list(range(migration.initial_schema, migration.final_schema + 1))
    if works == every:
        return None
    if not works or works != list(range(works[0], works[-1] + 1)):
        raise LiveUnsupported(f"the {role.value} version works on schemas {works or 'none'}: the live schema can "
                              "only make a version fail before a column exists or after it is dropped")
    fitting = [c for c, (first, last) in compute_columns(migration).items() if first <= works[0] and last == works[-1]]
    if not fitting:
        raise LiveUnsupported(f"no column of the live schema lives exactly through schemas {works[0]}..{works[-1]}, "
                              f"where the {role.value} version works: this migration's compatibility has no live form")
    return max(fitting)


def compute_column_share(defect) -> float:
    """Share of a version's requests that touch its column: the simulator's error rate of
    a version on a schema it cannot run on (``compute_schema_error_rate``)."""
    return float(defect.error_rate) if isinstance(defect, IncompatibleMigrationDefect) else 1.0


# --------------------------------------------------------------------------- running it


@dataclass
class AppliedStep:
    name: str
    kind: str
    schema: int
    when: str  # before_deploy, with_deploy, after_promotion, or the fixed scenario second


@dataclass
class LiveMigrations:
    """A scenario's migration against one PostgreSQL cluster (see the module docstring)."""

    scenario: Scenario
    database: PostgresCluster
    log: Callable[[str], None] | None = None
    applied: list[AppliedStep] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.scenario.migration is None:
            raise LiveUnsupported(f"scenario {self.scenario.name!r} has no migration to run live")
        self.migration: Migration = self.scenario.migration
        self.ddl = compute_ddl(self.migration)
        self._ran = 0  # steps [0, _ran) have run

    @property
    def schema(self) -> int:
        return self.migration.initial_schema + self._ran

    def prepare(self) -> None:
        """The table at the initial schema (a fresh cluster), with rows to read."""
        self._execute(create_table_sql(self.migration), "create the demo table")

    def version_env(self, defect, role: Role) -> dict[str, str]:
        """What ``role``'s version needs in its environment (``live.demo_database``) when
        the release carries ``defect``."""
        env = {"DEMO_DATABASE_URL": self.database.url}
        column = compute_version_column(self.migration, defect, role)
        if column is not None:
            env["DEMO_SCHEMA_VERSION"] = str(column)
            env["DEMO_SCHEMA_COLUMN_SHARE"] = f"{compute_column_share(defect):g}"
        return env

    def schedule(self) -> list[tuple[float, Callable[[], None]]]:
        """(scenario second, action) pairs for the runner's ``faults``: the start-of-rollout
        steps at 0 (before_deploy first), the fixed-time ones at their time."""
        steps = self.migration.steps
        out: list[tuple[float, Callable[[], None]]] = []
        for when in ("before_deploy", "with_deploy"):
            out += [(0.0, lambda i=i, w=when: self.run_through(i, w)) for i, s in enumerate(steps) if s.at == when]
        timed = sorted((s.at, i) for i, s in enumerate(steps) if isinstance(s.at, float))
        out += [(at, lambda i=i, at=at: self.run_through(i, f"{at:g}s")) for at, i in timed]
        return out

    def on_action(self, action) -> None:
        """Run the ``after_promotion`` steps when the controller promotes (as sim/adapter.py)."""
        if isinstance(action, Promote):
            for i, step in enumerate(self.migration.steps):
                if step.at == "after_promotion":
                    self.run_through(i, "after_promotion")

    def run_through(self, index: int, when: str) -> None:
        """Run every step up to ``index`` that has not run yet (each in its own transaction)."""
        while self._ran <= index:
            step = self.ddl[self._ran]
            self._execute(step.statements, f"{step.kind} step {step.name!r}")
            self.applied.append(AppliedStep(step.name, step.kind, step.schema, when))
            if self.log is not None:
                self.log(f"migration {step.kind} {step.name}: schema {step.schema} ({when})")
            self._ran += 1

    def _execute(self, statements: tuple[str, ...], what: str) -> None:
        import psycopg

        try:
            with self.database.connect() as connection, connection.transaction():
                connection.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
                for sql in statements:
                    connection.execute(sql)
        except psycopg.Error as error:
            raise PostgresFailed(f"{what} failed: {str(error).strip().splitlines()[0]}") from None


def migration_schedule(migrations: LiveMigrations) -> list[tuple[float, Callable[[], None]]]:
    """The migration's timed steps for the runner's ``faults`` (``LiveMigrations.schedule``)."""
    return migrations.schedule()


__all__ = ["AppliedStep", "LiveMigrations", "StepDDL", "compute_column_share", "compute_columns", "compute_ddl",
           "compute_version_column", "compute_works_on", "create_table_sql", "migration_schedule"]
