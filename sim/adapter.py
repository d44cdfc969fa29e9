"""The simulator's side of the runner seam: the world as the controller observes it, and
the controller's actions applied to the world (``strategies.reconcile`` in between).

The live runners have their own adapters for the same two directions (``live.runner``);
this one reads and writes the SimPy world's state directly. It runs on every reconcile
call, so it avoids work where it can without changing a result: most calls return
only events, which change nothing in the world.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rolloutlab.results.timeline import TimelineEvent
from rolloutlab.sim.migrations import run_migrations_at
from rolloutlab.sim.segments import flag_on_buckets
from rolloutlab.strategies import Observation, Role, VersionObservation
from rolloutlab.strategies.actions import (
    Event,
    Promote,
    RemoveRoute,
    ScaleVersion,
    SetCanaryWeight,
    SetFlagExposure,
    SetHeaderRoute,
    SetMirrorRoute,
    SwitchActive,
    SwitchPreview,
)
from rolloutlab.strategies.observation import FlagCounters
from rolloutlab.strategies.routes import HeaderRoute, MirrorRoute

if TYPE_CHECKING:
    from rolloutlab.sim.world import World


def observe(world: World) -> Observation:
    """What a runner measures now: each version's desired and ready pods and cumulative
    counters, the flag's and the baseline's counters, the commands issued so far."""
    now = world.env.now
    stable, canary = _version(world, Role.STABLE, now), _version(world, Role.CANARY, now)
    flag = FlagCounters(world.flag_traffic[True].counters(), world.flag_traffic[False].counters()) if world.flagged else None
    baseline = world.baseline.counters() if world.baseline is not None else None
    commands = world.commands
    last = world.observed
    if (last is not None and last.now == now and last.stable is stable and last.canary is canary
            and len(last.commands) == len(commands) and last.flag == flag and last.baseline is baseline):
        return last  # a re-look at the same instant that finds nothing new (commands are only appended)
    world.observed = Observation(now, stable, canary, tuple(commands), flag, baseline)
    return world.observed


def _version(world: World, role: Role, now: float) -> VersionObservation:
    """One version as observed now; the previous observation of it while nothing moved
    (observations are values: sharing one changes nothing)."""
    cluster = world.cluster
    ready = cluster.ready_count(role, now)
    desired = cluster.desired[role]
    counters = world.traffic[role].counters()
    last = world.observed_versions.get(role)
    if last is not None and last.replicas == desired and last.ready == ready and last.counters is counters:
        return last
    version = world.observed_versions[role] = VersionObservation(desired, ready, ready, counters)
    return version


def apply_actions(world: World, actions) -> bool:
    """Apply the controller's actions in order; whether any changed the world (anything
    but an event), in which case observers are told (``World.changed_now``)."""
    now = world.env.now
    changed = False
    for action in actions:
        if isinstance(action, Event):  # the usual answer: an analysis measured, nothing to do
            if world.record_timeline:
                world.pending_events.append(TimelineEvent(action.reason.value, action.message, action.metric, action.phase))
            continue
        changed = True
        if isinstance(action, ScaleVersion):
            world.cluster.scale(action.role, action.replicas, now)
        elif isinstance(action, SetCanaryWeight):
            world.router_weight = action.weight
        elif isinstance(action, SwitchActive):
            world.active = action.role
        elif isinstance(action, SwitchPreview):
            world.preview = action.role
        elif isinstance(action, SetHeaderRoute):
            world.routes[action.name] = HeaderRoute(name=action.name, match=action.match)
        elif isinstance(action, SetMirrorRoute):
            world.routes[action.name] = MirrorRoute(name=action.name, percentage=action.percentage, match=action.match)
        elif isinstance(action, RemoveRoute):
            world.routes.pop(action.name, None)
        elif isinstance(action, SetFlagExposure):
            world.flag_exposure = None if action.off else action
            world.flag_on_buckets = flag_on_buckets(world.groups, world.flag_exposure)
        elif isinstance(action, Promote):
            run_migrations_at(world, "after_promotion")
    if changed:
        world.changed_now()  # observers (alert rules) look again; the controller re-loops itself
    return changed
