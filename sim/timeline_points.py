"""The points of a rollout's timeline, recorded by the world as its controller decides
(only for the runs whose timelines the report shows: ``sim.timelines``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rolloutlab.results.timeline import TimelinePoint
from rolloutlab.strategies import Observation, Role, compute_declared_weight

if TYPE_CHECKING:
    from rolloutlab.sim.world import World

ROLES = (Role.STABLE, Role.CANARY)


def record_point(world: World, obs: Observation) -> None:
    """A timeline point; error rates are over the interval since the previous point
    (a point with no new requests for a version repeats its last rate)."""
    shares = world.shares(world.env.now)
    rates = {}
    for r in ROLES:
        requests, errors = world.traffic[r].requests, world.traffic[r].errors
        last_requests, last_errors, last_rate = world._timeline_marks.get(r, (0, 0, 0.0))
        rate = (errors - last_errors) / (requests - last_requests) if requests > last_requests else last_rate
        world._timeline_marks[r] = (requests, errors, rate)
        rates[r] = rate
    world.timeline.append(TimelinePoint(
        at=world.env.now,
        declared_weight=compute_declared_weight(world.spec, world.status, obs),
        effective_weight=100.0 * shares[Role.CANARY],
        stable_ready=obs.stable.ready, canary_ready=obs.canary.ready,
        stable_error_rate=rates[Role.STABLE], canary_error_rate=rates[Role.CANARY],
        events=tuple(world.pending_events),
    ))
    world.pending_events.clear()
