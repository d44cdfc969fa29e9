"""The fault injector: the scenario's ``faults:`` happen to the world at their times.

A generator process (SimPy style) that sleeps until each fault's ``at`` and applies it:

- ``pod_kill``: pods of the service under test are deleted (their ReplicaSets replace
  them); pods of another service are out of its capacity until a replacement would
  have started;
- ``zone_outage`` and ``node_loss``: the nodes' pods are NotReady at once, evicted and
  replaced elsewhere after the eviction delay, and back when the nodes return;
- ``dependency_failure`` and ``latency_injection``: a service fails (or slows) an extra
  share of its requests for a while; overlapping injections on one service combine.

Services other than the one under test are modelled as capacity (ready pods), not pods.
Every change is accounted for first (``world.sync``) and announced after
(``world.changed_now``), so traffic before it is counted in the world as it was.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rolloutlab.scenarios.schema import (
    DependencyFailureFault,
    LatencyInjectionFault,
    NodeLossFault,
    PodKillFault,
    Service,
    ZoneOutageFault,
)
from rolloutlab.strategies import Role

if TYPE_CHECKING:
    from rolloutlab.sim.world import World

ZONE_EVICTION_DELAY = 300.0  # Kubernetes' default pod eviction timeout for NotReady nodes


def inject_faults(world: World):
    """The scenario's faults, in order of their times, each applied when it is due."""
    env, cluster, sut = world.env, world.cluster, world.sut
    for fault in sorted(world.scenario.faults, key=lambda f: f.at):
        yield env.timeout(max(0.0, fault.at - env.now))
        world.sync()
        now = env.now
        on_sut = getattr(fault, "service", None) in (None, sut.name)
        if isinstance(fault, PodKillFault):
            if on_sut:
                role = None if fault.version == "any" else Role(fault.version)
                cluster.kill(role, fault.count, now)
            else:
                other = world.scenario.service(fault.service)
                env.process(_other_pods_out(world, other, fault.count, mean_start(other)))
        elif isinstance(fault, ZoneOutageFault):
            if fault.zone in sut.zones:
                nodes = cluster.nodes_in_zone(fault.zone)
                cluster.lose_nodes(nodes, now)
                env.process(_node_recovery(world, nodes, ZONE_EVICTION_DELAY, fault.duration))
            for other in world.scenario.services:
                if other.name != sut.name and fault.zone in other.zones:
                    lost = round(other.replicas / len(other.zones))
                    back = min(fault.duration, ZONE_EVICTION_DELAY + mean_start(other))
                    env.process(_other_pods_out(world, other, lost, back))
        elif isinstance(fault, NodeLossFault):
            if on_sut:
                count = min(fault.count, cluster.node_count)
                picks = world.streams["faults"].choice(cluster.node_count, size=count, replace=False)
                nodes = sorted(int(n) for n in picks)
                cluster.lose_nodes(nodes, now)
                env.process(_node_recovery(world, nodes, fault.eviction_delay, fault.duration))
            else:
                other = world.scenario.service(fault.service)
                lost = min(other.replicas, round(other.replicas * fault.count / (other.nodes or len(other.zones))))
                back = fault.eviction_delay + mean_start(other)
                env.process(_other_pods_out(world, other, lost, back if fault.duration is None else min(fault.duration, back)))
        elif isinstance(fault, DependencyFailureFault):
            env.process(_for_a_while(world, world.injected_errors, fault.service, fault.error_rate, fault.duration))
        elif isinstance(fault, LatencyInjectionFault):
            env.process(_for_a_while(world, world.injected_latency, fault.service, fault.added_ms, fault.duration))
        world.changed_now()


def mean_start(service: Service) -> float:
    """Typical time for a replacement pod of ``service`` to become ready."""
    timing = service.pod_timing
    probe = timing.readiness
    return timing.schedule_delay.expected() + timing.start_delay.expected() + probe.success_threshold * probe.period


def _node_recovery(world: World, nodes: list[int], eviction: float, duration: float | None):
    """Lost nodes: their pods are evicted after ``eviction`` unless the nodes came back
    first; the nodes return after ``duration`` (never when None)."""
    env = world.env
    start = env.now
    if duration is None or duration > eviction:
        yield env.timeout(eviction)
        world.sync()
        world.cluster.evict(nodes, env.now)
        world.changed_now()
    if duration is not None:
        yield env.timeout(max(0.0, start + duration - env.now))
        world.sync()
        world.cluster.restore_nodes(nodes, env.now)
        world.changed_now()


def _for_a_while(world: World, table: dict[str, list[float]], service: str, value: float, duration: float):
    """An injected fault on ``service`` for ``duration``; faults overlap independently."""
    world.sync()
    table.setdefault(service, []).append(value)
    world.changed_now()
    yield world.env.timeout(duration)
    world.sync()
    table[service].remove(value)
    world.changed_now()


def _other_pods_out(world: World, service: Service, lost: int, back_after: float):
    """Pods of a service not under test (modelled as capacity) out for a while."""
    world.sync()
    world.other_ready[service.name] = max(0, world.other_ready.get(service.name, service.replicas) - lost)
    world.changed_now()
    yield world.env.timeout(back_after)
    world.sync()
    world.other_ready[service.name] = min(service.replicas, world.other_ready[service.name] + lost)
    world.changed_now()
