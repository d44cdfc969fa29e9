"""A scenario's database migration during one live run: the run's own PostgreSQL, the
versions' database settings, the steps at their moments (``live.migrations_live``).

``MigrationRun.open`` starts a throwaway cluster (``live.postgres``) with the demo table
at the initial schema, gives both versions of the plan their database environment
(``DEMO_DATABASE_URL`` and the column each version uses), and hands the runner the
steps due at scenario times (``schedule``) and a backend that runs the
``after_promotion`` steps when the controller promotes (``MigratingBackend``).
``close`` removes the cluster. Local backend only: Kubernetes pods cannot reach a
cluster that listens on a Unix socket of this machine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from rolloutlab.errors import LiveUnsupported
from rolloutlab.live.runner import Backend, LiveVersion, ReleasePlan
from rolloutlab.scenarios.schema import Scenario
from rolloutlab.strategies import Action, Role


class MigratingBackend:
    """The run's backend, unchanged but for ``apply``: the migration sees every action
    after the backend applied it (a ``Promote`` runs the ``after_promotion`` steps, as
    sim/adapter.py does). Everything else is the backend's own (attributes forwarded)."""

    def __init__(self, backend: Backend, on_action: Callable[[Action], None]) -> None:
        self._backend, self._on_action = backend, on_action

    def apply(self, action: Action) -> None:
        self._backend.apply(action)
        self._on_action(action)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)


def migration_defect(scenario: Scenario, plan: ReleasePlan):
    """The release's ``incompatible_migration`` defect (None when the canary has another or none)."""
    if plan.defect != "incompatible_migration":
        return None
    found = [d for d in scenario.release.defects if d.kind == "incompatible_migration"]
    if len({(d.required_schema, d.breaks_old, d.error_rate) for d in found}) != 1:
        raise LiveUnsupported("a live run needs exactly one kind of incompatible_migration defect in the scenario, "
                              f"found {len(found)}")
    return found[0]


@dataclass
class MigrationRun:
    """One run's database and migration (see the module docstring)."""

    plan: ReleasePlan
    backend: Backend
    migrations: Any  # live.migrations_live.LiveMigrations
    cluster: Any  # live.postgres.PostgresCluster

    @classmethod
    def open(cls, scenario: Scenario, backend: Backend, plan: ReleasePlan,
             log: Callable[[str], None] | None = None) -> MigrationRun:
        if not hasattr(backend, "pods"):  # the local backend's pods run on this machine
            raise LiveUnsupported(f"migrations run live on the local backend only: the {backend.source} backend's "
                                  "pods cannot reach the run's PostgreSQL (a Unix socket on this machine)")
        from rolloutlab.live.migrations_live import LiveMigrations
        from rolloutlab.live.postgres import PostgresCluster

        defect = migration_defect(scenario, plan)
        cluster = PostgresCluster().start()  # on this thread, which lives as long as the run
        try:
            migrations = LiveMigrations(scenario, cluster, log=log)
            migrations.prepare()
            stable, canary = (LiveVersion(v.name, {**v.env, **migrations.version_env(defect, role)})
                              for v, role in ((plan.stable, Role.STABLE), (plan.canary, Role.CANARY)))
        except BaseException:
            cluster.close()
            raise
        return cls(replace(plan, stable=stable, canary=canary), MigratingBackend(backend, migrations.on_action),
                   migrations, cluster)

    def schedule(self) -> list[tuple[float, Callable[[], None]]]:
        from rolloutlab.live.migrations_live import migration_schedule

        return migration_schedule(self.migrations)

    def close(self) -> None:
        self.cluster.close()


__all__ = ["MigratingBackend", "MigrationRun", "migration_defect"]
