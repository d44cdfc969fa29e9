"""Where the world's user requests go now: the weight, the managed routes, the flag.

Functions of the world's state (``World.shares`` and friends call them), kept apart from
the world's bookkeeping: the split of requests no header route claims (the router's
weight, the active Service, or the ready pods behind one Service), the request classes
the routes in force send elsewhere or copy (``sim.segments``), and the share of users a
feature flag is on for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rolloutlab.sim.segments import BUCKETS, ClassRouting, route_classes
from rolloutlab.strategies import Role
from rolloutlab.strategies.spec import StrategyKind, TrafficRouting

if TYPE_CHECKING:
    from rolloutlab.sim.world import World


def shares(world: World, now: float) -> dict[Role, float]:
    """Fraction of user traffic each version receives now (the effective weight, and the
    requests header routes send to the new version)."""
    split = weights(world, now)
    classes = routing(world, now, split)
    if classes is None:
        return split
    canary = sum(c.share * r.to_canary for c, r in zip(world.classes, classes))
    return {Role.STABLE: 1.0 - canary, Role.CANARY: canary}


def mirror_share(world: World, now: float, classes: tuple[ClassRouting, ...] | None = None) -> float:
    """Share of user requests a mirror route copies to the new version now."""
    classes = classes if classes is not None else routing(world, now)
    return 0.0 if classes is None else sum(c.share * r.mirror for c, r in zip(world.classes, classes))


def routing(world: World, now: float, split: dict[Role, float] | None = None) -> tuple[ClassRouting, ...] | None:
    """Where each request class goes while managed routes are in force (None: none are,
    and the weight alone decides)."""
    if not world.routes or (world.reverted_at is not None and now >= world.reverted_at):
        return None
    ordered = [world.routes[m.name] for m in world.spec.strategy.canary.managed_routes if m.name in world.routes]
    weight = (split or weights(world, now))[Role.CANARY]
    return route_classes(world.classes, ordered, weight)


def weights(world: World, now: float) -> dict[Role, float]:
    """The split of requests no header route claims: the router's weight, the active
    Service, or the ready pods of both versions behind one Service."""
    # asked dozens of times per instant (traffic, alert rules, checks, the controller):
    # the answer is a function of these, the pods' readiness being one of generation and time
    key = (now, world.cluster.generation, world.router_weight, world.active, world.reverted_at)
    memo = world.weights_memo
    if memo is not None and memo[0] == key:
        return memo[1]
    split = _weights(world, now)
    world.weights_memo = (key, split)
    return split


def _weights(world: World, now: float) -> dict[Role, float]:
    if world.reverted_at is not None and now >= world.reverted_at:
        return {Role.STABLE: 1.0, Role.CANARY: 0.0}
    kind = world.kind
    if kind is StrategyKind.BLUE_GREEN:
        return {Role.STABLE: float(world.active is Role.STABLE), Role.CANARY: float(world.active is Role.CANARY)}
    if kind is StrategyKind.CANARY and world.spec.strategy.canary.traffic_routing is TrafficRouting.ROUTER:
        w = world.router_weight / 100.0
        return {Role.STABLE: 1.0 - w, Role.CANARY: w}
    stable = world.cluster.ready_count(Role.STABLE, now)
    canary = world.cluster.ready_count(Role.CANARY, now)
    total = stable + canary
    if total == 0:
        return {Role.STABLE: 1.0, Role.CANARY: 0.0}  # nothing ready: requests fail at the Service
    return {Role.STABLE: stable / total, Role.CANARY: canary / total}


def flag_on_share(world: World) -> float:
    """Share of user requests whose user has the feature flag on now."""
    return float(sum(g.request_share * on for g, on in zip(world.groups, world.flag_on_buckets)) / BUCKETS)
