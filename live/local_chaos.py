"""Chaos the local backend does to nodes and zones, faults it injects into a whole
service, and the full-load-only defect it switches on and off as the traffic moves.

``NodeChaos`` is a part of ``live.local.LocalBackend`` kept in its own file (a mixin, as
``live.local_kubelet.PodSupervisor``): it reads and changes the backend's pods under the
backend's lock and uses the supervisor's pieces (``_scale_all``, ``_unroute``, ``_signal``,
``set_fault``, ``_event``, ``_notify``).

Nodes and zones follow the simulator (``sim.pods``, ``sim.faults``):

- every pod is placed on a node of the ``Topology`` when it is created (the healthy node
  with the fewest pods); the processes all run on this machine;
- a lost node's pods are NotReady at once: stopped (SIGSTOP: they accept connections
  and never answer, as a host that vanished), out of HAProxy's rotation, not probed;
  they still count as the version's pods, so nothing replaces them yet;
- ``eviction_s`` later, pods still on a lost node are deleted (SIGKILL) and the
  ReplicaSet creates replacements on the healthy nodes;
- when the node returns (``duration_s``; never when None) its surviving pods continue
  (SIGCONT) and take traffic again once their readiness probe passes;
- a zone outage is the loss of every node in the zone (``Topology.nodes_in_zone``), for
  every version.

Times are wall seconds (the caller divides a scenario's by the time scale). Timers run on
their own daemon threads and are cancelled when the backend closes.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from rolloutlab.errors import LocalBackendError
from rolloutlab.live.haproxy import Layout
from rolloutlab.live.local_pods import LocalPod, PodPhase, Topology
from rolloutlab.strategies import Role
from rolloutlab.strategies.spec import StrategyKind


class NodeChaos:
    """Node and zone losses, service-wide fault injection, the full-load defect (see the module docstring)."""

    def _init_chaos(self, topology: Topology) -> None:
        self.topology = topology
        self._node_holds: dict[int, int] = {}  # node -> losses holding it down (they overlap)
        self._timers: list[threading.Timer] = []
        self._share_defect: tuple[float, float] | None = None  # (share threshold, error rate)
        self._share_hot = False

    # ----------------------------------------------------------------- topology

    def place_pods(self, topology: Topology) -> None:
        """Spread the pods over ``topology``'s nodes (before ``ensure``: pods keep their node)."""
        with self._lock:
            if topology == self.topology:
                return
            if self._pods:
                raise LocalBackendError("place_pods() goes before ensure(): the pods are already placed")
            self.topology = topology

    def down_nodes(self) -> set[int]:
        with self._lock:
            return {n for n, holds in self._node_holds.items() if holds > 0}

    def _place(self) -> int:
        """The healthy node with the fewest live pods (ties: lowest index), as ``sim.pods`` places."""
        down = self.down_nodes()
        load = [0] * self.topology.nodes
        for pod in self._pods:
            if pod.phase is not PodPhase.TERMINATING:
                load[pod.node] += 1
        candidates = [n for n in range(self.topology.nodes) if n not in down] or list(range(self.topology.nodes))
        return min(candidates, key=lambda n: (load[n], n))

    # ----------------------------------------------------------------- losses

    def lose_node(self, count: int = 1, duration_s: float | None = None, eviction_s: float = 0.0) -> list[int]:
        """Lose ``count`` nodes chosen at random (seeded), as the simulator's node loss
        does; returns them. See ``lose_nodes``."""
        with self._lock:
            nodes = sorted(self._rng.sample(range(self.topology.nodes), min(count, self.topology.nodes)))
        self.lose_nodes(nodes, eviction_s, duration_s)
        return nodes

    def lose_zone(self, zone: str, duration_s: float, eviction_s: float) -> list[int]:
        """Lose every node of ``zone`` (none when the topology has no such zone)."""
        nodes = self.topology.nodes_in_zone(zone)
        if nodes:
            self.lose_nodes(nodes, eviction_s, duration_s)
        return nodes

    def lose_nodes(self, nodes: Iterable[int], eviction_s: float, duration_s: float | None) -> list[str]:
        """Nodes vanish now; their pods are evicted ``eviction_s`` later unless the nodes came
        back first, and the nodes come back after ``duration_s`` (never when None). Returns
        the pods lost."""
        nodes = sorted(set(nodes))
        if any(not 0 <= n < self.topology.nodes for n in nodes):
            raise LocalBackendError(f"nodes {nodes}: this backend has nodes 0..{self.topology.nodes - 1}")
        with self._lock:
            self._check_ensured()
            for n in nodes:
                self._node_holds[n] = self._node_holds.get(n, 0) + 1
            lost = [p for p in self._pods if p.node in nodes and not p.lost and p.phase is not PodPhase.TERMINATING]
            for pod in lost:
                self._lose(pod)
            self._event("node-lost", None, f"nodes {nodes} ({', '.join(self.topology.zone_of(n) for n in nodes)}): "
                                           f"{[p.name for p in lost]}")
            self._notify()
        if duration_s is None or duration_s > eviction_s:
            self.after(eviction_s, lambda: self._evict(nodes))
        if duration_s is not None:
            self.after(duration_s, lambda: self._restore(nodes))
        return [p.name for p in lost]

    def _lose(self, pod: LocalPod) -> None:
        pod.lost, pod.ready = True, False
        if pod.probe is not None:
            pod.probe.cancel()
            pod.probe = None
        self._unroute(pod)
        if pod.process is not None and pod.process.poll() is None and not pod.paused:
            self._signal(pod, signal.SIGSTOP)

    def _evict(self, nodes: list[int]) -> None:
        """Pods still on nodes that stayed down are deleted; the ReplicaSets replace them."""
        with self._lock:
            if self._closed:
                return
            down = self.down_nodes()
            evicted = [p for p in self._pods if p.lost and p.node in nodes and p.node in down
                       and p.phase is not PodPhase.TERMINATING]
            for pod in evicted:
                self._terminate(pod)
            self._event("evicted", None, f"nodes {nodes}: {[p.name for p in evicted]}")
            self._scale_all()
            self._notify()

    def _restore(self, nodes: list[int]) -> None:
        """One loss releases its hold on ``nodes``; those no loss holds come back, and
        their pods continue (ready again once their probe passes)."""
        with self._lock:
            if self._closed:
                return
            for n in nodes:
                self._node_holds[n] = max(0, self._node_holds.get(n, 0) - 1)
            returned = [n for n in nodes if self._node_holds[n] == 0]
            back = [p for p in self._pods if p.lost and p.node in returned]
            now = time.monotonic()
            for pod in back:
                pod.lost = False
                pod.successes = pod.failures = 0
                pod.next_probe_at = now
                if not pod.paused:
                    self._signal(pod, signal.SIGCONT)
            self._event("node-back", None, f"nodes {returned}: {[p.name for p in back]}")
            self._wake.set()
            self._notify()

    # ----------------------------------------------------------------- timers

    def after(self, delay_s: float, fn: Callable[[], Any]) -> None:
        """Run ``fn`` ``delay_s`` wall seconds from now on its own thread (not after close)."""
        def run() -> None:
            if not self._closed:
                try:
                    fn()
                except Exception as error:  # noqa: BLE001 - a chaos timer must not die silently
                    self._event("error", None, f"timed chaos failed: {error!r}")
        timer = threading.Timer(max(0.0, delay_s), run)
        timer.daemon = True
        with self._lock:
            self._timers = [t for t in self._timers if t.is_alive()]
            self._timers.append(timer)
        timer.start()

    def _cancel_timers(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers = []

    # ----------------------------------------------------------------- whole-service faults

    def inject_fault(self, **settings: Any) -> None:
        """Fault fields for every pod of the service under test, both versions (a scenario's
        ``dependency_failure`` or ``latency_injection`` on it: ``injected_error_rate``,
        ``injected_latency_ms``); sticky, as ``set_fault``."""
        for role in Role:
            self.set_fault(role, **settings)

    # ----------------------------------------------------------------- the full-load-only defect

    def canary_share(self) -> float:
        """The share of user traffic the new version takes now, as this backend routes it:
        the active service's (blue-green), the router's canary weight (a canary with a
        router; 0 while no new pod is ready), or the new version's share of ready pods
        (every pod behind one service: a basic canary, a rolling update)."""
        with self._lock:
            if self.record is None:
                return 0.0
            ready = {role: sum(1 for p in self._pods if p.role is role and not p.baseline and p.ready) for role in Role}
            if self.spec.strategy.kind is StrategyKind.BLUE_GREEN:
                return 1.0 if self.record.active == Role.CANARY.value else 0.0
            if self.layout.layout is Layout.ROUTED:
                return self.record.canary_weight / 100.0 if ready[Role.CANARY] else 0.0
            total = ready[Role.STABLE] + ready[Role.CANARY]
            return ready[Role.CANARY] / total if total else 0.0

    def set_share_defect(self, threshold: float, error_rate: float) -> None:
        """The new version fails an extra ``error_rate`` of its requests while it takes at
        least ``threshold`` of the traffic (``canary_share``; sim.defects' full_load_only):
        the backend sets the pods' ``load_error_rate`` as the share crosses it."""
        if not (0.0 < threshold <= 1.0 and 0.0 <= error_rate <= 1.0):
            raise ValueError(f"threshold must be in (0, 1] and error_rate in [0, 1], got {threshold}, {error_rate}")
        with self._lock:
            self._share_defect = (threshold, error_rate)

    def _watch_share(self) -> None:
        """On the supervisor's tick: switch the full-load defect when the share crosses its
        threshold (the POSTs go to the probe pool: the supervisor never waits on a pod)."""
        if self._share_defect is None or self.record is None:
            return
        threshold, error_rate = self._share_defect
        hot = self.canary_share() >= threshold - 1e-9
        if hot != self._share_hot:
            self._share_hot = hot
            self._event("full-load", None, f"new version's share {'reached' if hot else 'below'} {threshold:g}: "
                                           f"load_error_rate {error_rate if hot else 0.0:g}")
            self._probes.submit(self.set_fault, Role.CANARY, load_error_rate=error_rate if hot else 0.0)


__all__ = ["NodeChaos"]
