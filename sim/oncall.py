"""The on-call person: paged by monitoring, they act after their response time.

What they do depends on what they find when they decide. Every rollback they make takes
``rollback_duration`` from that decision until it is issued and the router switched:

- the rollout is still going: they abort it (a command to the controller, issued
  ``rollback_duration`` after the decision). Should the rollout complete meanwhile, the
  abort comes too late and they roll the finished release back instead (below);
- the release was already promoted: they roll it back by hand, a new deployment of the
  old version the controller has no say in (the old version's pods start at once, the
  router switches ``rollback_duration`` later);
- a feature-flag release whose code is already deployed everywhere, still hurting users:
  the flag did not help (the defect is outside the flagged path), so they turn it off and
  roll the deploy back by hand, as for a promoted release;
- the schema makes the old version fail too (a contract migration ran too early):
  rolling back cannot help, so they stop the rollout (an abort, as above) and repair
  forward, which takes the migration's ``rollforward_repair_time`` from the decision.

All their times come from the ``human`` stream, so every strategy of a run meets the same
person.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rolloutlab.sim.sampling import sample
from rolloutlab.strategies import Command, CommandRequest, Role

if TYPE_CHECKING:
    from rolloutlab.sim.world import World


def on_call(world: World):
    """The paged engineer's response: paged once, busy until they are done."""
    if world.paged:
        return
    world.paged = world.human_busy = True
    env, human = world.env, world.streams["human"]
    response = world.scenario.response
    yield env.timeout(sample(response.response_time, human))
    world.sync()
    s = world.status
    if not world.schema_ok(Role.STABLE) and not world.repaired:
        world.human_action = "repair_forward"
        repair = world.scenario.migration.rollforward_repair_time
        if not s.completed and not s.aborted:
            rollback = sample(response.rollback_duration, human)
            done_at = env.now + sample(repair, human)
            yield env.timeout(rollback)
            world.sync()
            if not world.status.completed and not world.status.aborted:
                _abort(world)
                world.changed_now()
            yield env.timeout(max(0.0, done_at - env.now))
        else:
            yield env.timeout(sample(repair, human))
        world.sync()
        world.repaired = True
    elif world.flagged and s.deployed_at is not None and world.reverted_at is None:
        # A flag release past its dark deploy: the new pods run everywhere. Turning the
        # flag off is the controller's abort; if users are still hurt when the person
        # looks, the defect is outside the flagged path and only the deploy's own
        # rollback (a new deployment of the old version) helps.
        if world.impact_on:
            world.human_action = "rollback"
            if not s.completed and not s.aborted:
                _abort(world)  # the flag goes off and the controller stops
                world.changed_now()
            yield from _roll_back_finished(world)
    elif not s.completed and not s.aborted:
        yield env.timeout(sample(response.rollback_duration, human))
        world.sync()
        s = world.status
        if not s.completed and not s.aborted:  # (aborted meanwhile: the controller was first)
            world.human_action = "abort"
            _abort(world)
        elif s.completed and world.reverted_at is None:
            world.human_action = "rollback"  # it completed meanwhile: roll the release back
            yield from _roll_back_finished(world)
    elif s.completed and world.reverted_at is None:
        world.human_action = "rollback"
        yield from _roll_back_finished(world)
    world.human_busy = False
    world.changed_now()


def _roll_back_finished(world: World):
    """The rollout is over; rolling back a finished release is a new deployment of the
    old version, done by a person: the controller has no say any more."""
    env = world.env
    world.controller_retired = True
    duration = sample(world.scenario.response.rollback_duration, world.streams["human"])
    world.cluster.scale(Role.STABLE, world.replicas, env.now)  # the old version comes back
    yield env.timeout(duration)
    world.sync()
    world.reverted_at = env.now
    world.cluster.scale(Role.CANARY, 0, env.now)


def _abort(world: World) -> None:
    """Abort the rollout by command, as ``kubectl argo rollouts abort`` would."""
    world.commands.append(CommandRequest(len(world.commands) + 1, Command.ABORT))
