"""Pods of the service under test: a ReplicaSet per version, nodes and zones, readiness.

A pod's life, as Kubernetes runs it: created -> scheduled after ``schedule_delay`` ->
its container starts; the app is up ``start_delay`` later; the kubelet probes readiness
every ``period`` from ``initial_delay`` on, and the pod is Ready (takes traffic) after
``success_threshold`` probes in a row pass. A Ready pod that later fails
``failure_threshold`` probes in a row is NotReady until it passes again (``sim.probes``
decides when; ``Pod.probe_failed``). A pod on a lost node is NotReady at once (its
endpoints go), and is evicted and replaced elsewhere after the eviction delay unless the
node came back first. Deleting a pod removes it from endpoints at once, and the requests
it is still answering get ``termination_grace`` to finish (the world counts those that
cannot: ``on_terminate``); a ReplicaSet replaces pods that die, so the count stays what
the controller asked for.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from rolloutlab.scenarios.schema import Service
from rolloutlab.sim.sampling import sample
from rolloutlab.strategies.observation import Role

_NONE_DOWN: frozenset[int] = frozenset()


@dataclass(slots=True)
class Pod:
    id: int
    role: Role
    node: int
    created_at: float
    app_up_at: float  # the app answers from here on
    ready_at: float | None  # when readiness passes (None: not scheduled yet / never)
    deleted_at: float | None = None
    crashed: bool = False  # crash-looping: never Ready while the defect holds
    probe_failed: bool = False  # failed its readiness probe: out of the endpoints until it passes again

    def is_ready(self, now: float, node_down: bool) -> bool:
        return (
            self.deleted_at is None and not self.crashed and not node_down and not self.probe_failed
            and self.ready_at is not None and self.ready_at <= now
        )


@dataclass
class Cluster:
    """The pods of both versions of the service under test, and the nodes they run on."""

    service: Service
    rng: np.random.Generator
    on_ready_at: Callable[[float], None]  # schedules a wake-up of the world at a time
    crash_probability: float = 0.0  # crash_on_start defect: chance a canary pod crash-loops, never Ready
    on_terminate: Callable[[list[Pod], float], None] | None = None  # serving pods about to be deleted
    next_id: int = 0
    pods: dict[Role, list[Pod]] = field(default_factory=lambda: {Role.STABLE: [], Role.CANARY: []})
    desired: dict[Role, int] = field(default_factory=lambda: {Role.STABLE: 0, Role.CANARY: 0})
    node_holds: dict[int, int] = field(default_factory=dict)  # node -> faults holding it down (they overlap)
    pod_seconds: float = 0.0  # cost: pods alive x seconds, both versions
    last_cost_at: float = 0.0
    generation: int = 0  # bumped on every change to pods or nodes (readiness cache key)
    # role -> (generation, from, until, count): the ready count holds for from <= t < until
    _ready_spans: dict = field(default_factory=dict)
    # the live pods of each version (``pods`` keeps the deleted ones too, for their
    # history) and how many run on each node: kept as pods come and go, so scaling and
    # placing cost the pods that change, not every pod the run ever made
    _live: dict[Role, list[Pod]] = field(default_factory=lambda: {Role.STABLE: [], Role.CANARY: []})
    _load: list[int] = field(default_factory=list)

    @property
    def down_nodes(self) -> set[int] | frozenset[int]:
        if not self.node_holds:
            return _NONE_DOWN  # (asked on every readiness count; nodes are rarely lost)
        return {n for n, holds in self.node_holds.items() if holds > 0}

    @property
    def node_count(self) -> int:
        return self.service.nodes or len(self.service.zones)

    def zone_of(self, node: int) -> str:
        return self.service.zones[node % len(self.service.zones)]

    # ---------------------------------------------------------------- bookkeeping

    def alive(self, role: Role) -> list[Pod]:
        return list(self._live[role])

    def _add(self, pod: Pod) -> None:
        self.pods[pod.role].append(pod)
        self._live[pod.role].append(pod)
        if not self._load:
            self._load = [0] * self.node_count
        self._load[pod.node] += 1

    def _delete(self, pod: Pod, now: float) -> None:
        pod.deleted_at = now
        live = self._live[pod.role]
        del live[next(i for i, p in enumerate(live) if p is pod)]  # (by identity: pods compare by value)
        self._load[pod.node] -= 1

    def ready_count(self, role: Role, now: float) -> int:
        """Pods of ``role`` passing readiness at ``now`` (``Pod.is_ready``).

        Between two changes (``generation``) a version's count is a step function of
        time that moves only at its pods' ``ready_at``, so one count is kept with the
        span it holds for, and the world's many same-interval questions (traffic, alert
        rules, checks, the controller) are answered without walking the pods."""
        span = self._ready_spans.get(role)
        if span is not None and span[0] == self.generation and span[1] <= now < span[2]:
            return span[3]
        down = self.down_nodes
        count, since, until = 0, -math.inf, math.inf
        for p in self._live[role]:
            if p.deleted_at is None and not p.crashed and not p.probe_failed and p.ready_at is not None \
                    and p.node not in down:
                if p.ready_at <= now:
                    count += 1
                    since = max(since, p.ready_at)
                else:
                    until = min(until, p.ready_at)
        self._ready_spans[role] = (self.generation, since, until, count)
        return count

    def changed(self) -> None:
        """Pods or nodes changed: cached readiness counts are stale."""
        self.generation += 1

    def account_cost(self, now: float) -> None:
        self.pod_seconds += (len(self._live[Role.STABLE]) + len(self._live[Role.CANARY])) * (now - self.last_cost_at)
        self.last_cost_at = now

    # ---------------------------------------------------------------- ReplicaSet

    def start_ready(self, role: Role, count: int, now: float) -> None:
        """Pods that were already running before the simulated window (the stable)."""
        self.desired[role] = count
        self.changed()
        # on an empty cluster with every node up, spreading places pod i on node i mod n
        empty = not self.node_holds and not any(self.pods.values())
        for i in range(count):
            node = i % self.node_count if empty else self._place()
            self._add(Pod(self._new_id(), role, node, now - 3600.0, now - 3600.0, now - 3600.0))
        self.changed()

    def scale(self, role: Role, replicas: int, now: float) -> None:
        """The controller's ScaleVersion: create or delete pods to reach ``replicas``."""
        self.account_cost(now)
        self.changed()
        self.desired[role] = replicas
        self._converge(role, now)

    def _converge(self, role: Role, now: float) -> None:
        alive = self.alive(role)
        created = [self._create(role, now) for _ in range(self.desired[role] - len(alive))]
        # one wake-up per instant at which new pods become ready: pods started together
        # are probed on one grid, and the wake-ups of one batch would run back to back
        for ready_at in dict.fromkeys(p.ready_at for p in created if p.ready_at is not None):
            self.on_ready_at(ready_at)
        excess = len(alive) - self.desired[role]
        if excess > 0:
            # Kubernetes deletes not-ready pods first, then the newest
            down = self.down_nodes
            victims = sorted(alive, key=lambda p: (p.is_ready(now, p.node in down), p.created_at, p.id))
            self._terminate(victims[:excess], now)

    def _create(self, role: Role, now: float) -> Pod:
        timing = self.service.pod_timing
        probe = timing.readiness
        scheduled = now + sample(timing.schedule_delay, self.rng)
        app_up = scheduled + sample(timing.start_delay, self.rng)
        first_probe = scheduled + probe.initial_delay
        if app_up > first_probe:  # the first probe that finds the app up
            first_probe += math.ceil((app_up - first_probe) / probe.period - 1e-9) * probe.period
        ready_at = first_probe + (probe.success_threshold - 1) * probe.period
        crashed = role is Role.CANARY and self.crash_probability > 0 and self.rng.random() < self.crash_probability
        pod = Pod(self._new_id(), role, self._place(), now, app_up, None if crashed else ready_at, crashed=crashed)
        self._add(pod)
        self.changed()  # a span counted before this pod existed does not know its ready_at
        return pod

    def _place(self) -> int:
        """The healthy node with the fewest live pods (ties: lowest index), as a spreading scheduler would."""
        load = self._load or [0] * self.node_count
        down = self.down_nodes
        candidates = [n for n in range(self.node_count) if n not in down] or list(range(self.node_count))
        return min(candidates, key=lambda n: (load[n], n))

    def _terminate(self, pods: list[Pod], now: float) -> None:
        """Delete ``pods``; those serving first tell the world what they were answering."""
        if self.on_terminate is not None:
            down = self.down_nodes
            serving = [p for p in pods if p.is_ready(now, p.node in down)]
            if serving:
                self.on_terminate(serving, now)
        for pod in pods:
            self._delete(pod, now)
        self.changed()  # counts taken above (by the world too) are stale now

    def _new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    # ---------------------------------------------------------------- faults

    def kill(self, role: Role | None, count: int, now: float) -> int:
        """Delete ``count`` live pods (of a version, or any); their ReplicaSets replace them."""
        self.account_cost(now)
        self.changed()
        roles = [role] if role is not None else [Role.STABLE, Role.CANARY]
        alive = [p for r in roles for p in self.alive(r)]
        if not alive:
            return 0
        chosen = self.rng.choice(len(alive), size=min(count, len(alive)), replace=False)
        self._terminate([alive[int(i)] for i in sorted(int(i) for i in chosen)], now)
        for r in roles:
            self._converge(r, now)
        return len(chosen)

    def lose_nodes(self, nodes: list[int], now: float) -> None:
        self.account_cost(now)
        self.changed()
        for n in nodes:
            self.node_holds[n] = self.node_holds.get(n, 0) + 1

    def evict(self, nodes: list[int], now: float) -> None:
        """Pods still on nodes that stayed down are deleted and rescheduled elsewhere."""
        self.account_cost(now)
        self.changed()
        down = self.down_nodes
        for role in (Role.STABLE, Role.CANARY):
            for p in self.alive(role):
                if p.node in nodes and p.node in down:
                    self._delete(p, now)
            self.changed()
            self._converge(role, now)

    def restore_nodes(self, nodes: list[int], now: float) -> None:
        """One fault releases its hold on ``nodes``; those no fault holds any more come
        back, and their surviving pods pass readiness again after a probe cycle."""
        self.account_cost(now)
        self.changed()
        probe = self.service.pod_timing.readiness
        for n in nodes:
            self.node_holds[n] = max(0, self.node_holds.get(n, 0) - 1)
        returned = [n for n in nodes if self.node_holds[n] == 0]
        back = now + probe.success_threshold * probe.period
        for role in (Role.STABLE, Role.CANARY):
            for p in self.alive(role):
                if p.node in returned and p.ready_at is not None and p.ready_at < back:
                    p.ready_at = back
                    p.probe_failed = False  # probed afresh: Ready again after the passes above
        self.changed()
        self.on_ready_at(back)

    def nodes_in_zone(self, zone: str) -> list[int]:
        return [n for n in range(self.node_count) if self.zone_of(n) == zone]
