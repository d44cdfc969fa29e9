"""The on-call person: paged by monitoring, they act after their response time.

What they do depends on what they find when they decide:

- the rollout is still going: they abort it (a command to the controller);
- the release was already promoted: they roll it back by hand, a new deployment of the
  old version the controller has no say in (the old version's pods start at once, the
  router switches ``rollback_duration`` later);
- the schema makes the old version fail too (a contract migration ran too early):
  rolling back cannot help, so they stop the rollout and repair forward, which takes
  the migration's ``rollforward_repair_time``.

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
        if not s.completed and not s.aborted:
            _abort(world)
            world.changed_now()
        repair = world.scenario.migration.rollforward_repair_time
        yield env.timeout(sample(repair, human))
        world.sync()
        world.repaired = True
    elif not s.completed and not s.aborted:
        world.human_action = "abort"
        _abort(world)
    elif s.completed and world.reverted_at is None:
        # The rollout is over; rolling back a finished release is a new deployment of
        # the old version, done by a person: the controller has no say any more.
        world.human_action = "rollback"
        world.controller_retired = True
        duration = sample(response.rollback_duration, human)
        world.cluster.scale(Role.STABLE, world.replicas, env.now)  # the old version comes back
        yield env.timeout(duration)
        world.sync()
        world.reverted_at = env.now
        world.cluster.scale(Role.CANARY, 0, env.now)
    world.human_busy = False
    world.changed_now()


def _abort(world: World) -> None:
    """Abort the rollout by command, as ``kubectl argo rollouts abort`` would."""
    world.commands.append(CommandRequest(len(world.commands) + 1, Command.ABORT))
