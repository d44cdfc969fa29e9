"""The services around the one under test: who calls whom, and how failures travel.

A scenario's ``dependencies:`` form a call graph (edges caller -> callee). Users enter at
the services nothing calls, evenly; each edge multiplies the requests a callee receives
(``calls_per_request``). The service under test inherits the failures of the services it
calls, and its callers inherit its own (``sim.traffic.propagate_failures``): that is the
blast radius of a defect. Services other than the one under test are capacity, not pods:
their own failure probability is their baseline, injected faults, and the overload of
their ready pods (an M/M/c queue, ``sim.queueing``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx

from rolloutlab.scenarios.schema import Scenario
from rolloutlab.sim.queueing import overload
from rolloutlab.sim.traffic import callees_first, combine_failure, propagate_failures


@dataclass
class Dependencies:
    """The call graph of a scenario and the failures it carries to and from the service
    under test. Without ``dependencies:`` the service stands alone (``graph`` is None)."""

    scenario: Scenario
    graph: nx.DiGraph | None = field(init=False)
    arrivals: dict[str, float] = field(init=False)
    """Requests each service receives per user request."""

    def __post_init__(self) -> None:
        self.sut = self.scenario.service_under_test.name
        self.graph = dependency_graph(self.scenario)
        if self.graph is not None:
            self._order = callees_first(self.graph)
            # seen from its callers, the service under test fails as its versions do
            # (their own failures already include what its callees cause)
            self._upstream = self.graph.copy()
            self._upstream.remove_edges_from(list(self.graph.out_edges(self.sut)))
            self._upstream_order = callees_first(self._upstream)
        self.arrivals = arrival_factors(self.scenario, self.graph)
        self._entries = [n for n in self.graph.nodes if self.graph.in_degree(n) == 0] if self.graph is not None else []

    def downstream_failure(self, own: dict[str, float]) -> float:
        """Failures the service under test inherits from the services it calls, given each
        other service's own failure probability (``own_failures``)."""
        if self.graph is None:
            return 0.0
        own = dict(own)
        own[self.sut] = 0.0
        return propagate_failures(self.graph, own, order=self._order)[self.sut]

    @property
    def has_callers(self) -> bool:
        return self.graph is not None and any(True for _ in self.graph.predecessors(self.sut))

    def through_callers(self, p_sut: float, own: dict[str, float]) -> float:
        """The user-facing failure probability when users enter through callers of the
        service under test (the blast radius of its defect)."""
        own = dict(own)
        own[self.sut] = p_sut
        total = propagate_failures(self._upstream, own, order=self._upstream_order)
        return sum(total[n] for n in self._entries) / len(self._entries)

    def own_failures(self, user_rate: float, other_ready: dict[str, int], injected_error) -> dict[str, float]:
        """Each other service's failure probability on its own at a user arrival rate:
        baseline, injected faults (``injected_error(name)``), and overload of its ready
        pods (node loss and pod kills take some away: ``other_ready``)."""
        own = {}
        for service in self.scenario.services:
            if service.name == self.sut:
                continue
            ready = other_ready.get(service.name, service.replicas)
            arrivals = user_rate * self.arrivals[service.name]
            load = overload(arrivals, ready, service.capacity_rps, service.request_timeout).failure_probability if arrivals > 0 else 0.0
            own[service.name] = combine_failure(service.baseline_error_rate, injected_error(service.name), load)
        return own


def dependency_graph(scenario: Scenario) -> nx.DiGraph | None:
    """The call graph (caller -> callee, with the edge's calls and propagation), or None
    when the scenario declares no dependencies."""
    if not scenario.dependencies:
        return None
    graph = nx.DiGraph()
    graph.add_nodes_from(s.name for s in scenario.services)
    for d in scenario.dependencies:
        graph.add_edge(d.caller, d.callee, calls_per_request=d.calls_per_request, error_propagation=d.error_propagation)
    return graph


def arrival_factors(scenario: Scenario, graph: nx.DiGraph | None) -> dict[str, float]:
    """Requests each service receives per user request: users enter at the entry services
    (nothing calls them) evenly, each call edge multiplies."""
    if graph is None:
        return {s.name: (1.0 if s.name == scenario.service_under_test.name else 0.0) for s in scenario.services}
    entries = [n for n in graph.nodes if graph.in_degree(n) == 0]
    if not entries:
        raise ValueError(f"scenario {scenario.name!r}: every service is called by another; no entry for users")
    arrivals = {n: (1.0 / len(entries) if n in entries else 0.0) for n in graph.nodes}
    for n in nx.topological_sort(graph):
        for callee in graph.successors(n):
            arrivals[callee] += arrivals[n] * graph.edges[n, callee]["calls_per_request"]
    return arrivals
