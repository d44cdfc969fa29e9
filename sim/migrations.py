"""The migration runner and the schema each version can run on.

A scenario's ``migration:`` is a list of steps, each moving the database schema up by
one version, run ``before_deploy``, ``with_deploy`` (both at the rollout's start),
``after_promotion`` (when the controller promotes) or at a fixed time. Each version of
the service under test runs on a range of schemas (``compatibility``); a version asked
to run on a schema outside its range fails its requests (all of them, or the
``incompatible_migration`` defect's error rate). Schema steps are never undone: a
rollback does not bring the old schema back, which is why contracting too early leaves
only a repair forward.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rolloutlab.scenarios.release import ReleaseDraw
from rolloutlab.scenarios.schema import IncompatibleMigrationDefect, Migration
from rolloutlab.strategies import Role

if TYPE_CHECKING:
    from rolloutlab.sim.world import World


def run_migrations(world: World):
    """Steps at the rollout's start at once, then the timed ones at their times (steps
    ``after_promotion`` run when the controller promotes: ``run_migrations_at``)."""
    if world.scenario.migration is None:
        return
    run_migrations_at(world, "before_deploy")
    run_migrations_at(world, "with_deploy")
    timed = sorted((step.at, i) for i, step in enumerate(world.scenario.migration.steps) if isinstance(step.at, float))
    for at, i in timed:
        yield world.env.timeout(max(0.0, at - world.env.now))
        _apply_step(world, i)


def run_migrations_at(world: World, when: str) -> None:
    """Run the steps declared for the moment ``when`` (e.g. ``after_promotion``)."""
    migration = world.scenario.migration
    if migration is None:
        return
    for i, step in enumerate(migration.steps):
        if step.at == when:
            _apply_step(world, i)


def _apply_step(world: World, index: int) -> None:
    world.sync()
    world.schema = max(world.schema, world.scenario.migration.initial_schema + index + 1)
    world.changed_now()


def compute_schema_ok(migration: Migration | None, release: ReleaseDraw, schema: int, role: Role) -> bool:
    """Whether ``role``'s version works on ``schema``: inside its compatibility range, and
    not broken by the release's ``incompatible_migration`` defect (the new version needs
    ``required_schema``; with ``breaks_old`` the old one fails from it on)."""
    if migration is None:
        return True
    compat = migration.compatibility
    allowed = compat.old if role is Role.STABLE else compat.new
    if not allowed.allows(schema):
        return False
    d = release.defect
    if isinstance(d, IncompatibleMigrationDefect):
        required = d.required_schema if d.required_schema is not None else migration.final_schema
        if role is Role.CANARY and schema < required:
            return False
        if role is Role.STABLE and d.breaks_old and schema >= required:
            return False
    return True


def compute_schema_error_rate(release: ReleaseDraw) -> float:
    """Share of requests a version fails on a schema it cannot run on."""
    d = release.defect
    return d.error_rate if isinstance(d, IncompatibleMigrationDefect) else 1.0
