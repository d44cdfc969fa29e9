"""A scenario's world on a live backend: the nodes and zones its pods run on, the services
the service under test calls, a defect only full load shows, and its ``faults:`` as chaos
calls at their scenario times.

Each kind means what the simulator means by it (``sim/faults.py``, ``sim/defects.py``,
``sim/dependencies.py``); times are the scenario's divided by the time scale:

- ``pod_kill``: pods of the service under test are killed (SIGKILL locally, a pod
  delete on Kubernetes); its ReplicaSet replaces them.
- ``node_loss`` / ``zone_outage``: the nodes' pods are lost at once and replaced only
  after the eviction delay (a zone's: Kubernetes' default 300 s), the nodes return after
  ``duration`` (``live.local_chaos``; on Kubernetes a node loss drains real nodes at once).
- ``dependency_failure`` / ``latency_injection``: the named service fails an extra share
  of its requests (or answers slower) for ``duration``; overlapping ones combine
  (errors: 1 - prod(1 - p), latencies add). On the service under test both versions
  get it (``injected_*`` fault fields); on a service it calls, that service's process
  gets it and the callers feel it through their calls (``live.local_dependencies``).
- the ``full_load_only`` defect: the backend turns the new version's extra failures on
  while it takes at least the threshold share of the traffic (``set_share_defect``).

Whatever has no live form says why (``LiveUnsupported``), before anything starts.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from rolloutlab.errors import LiveUnsupported
from rolloutlab.live.local_dependencies import Call, DependencySpec
from rolloutlab.live.local_pods import Topology
from rolloutlab.live.runner import Backend, ReleasePlan
from rolloutlab.scenarios.schema import Scenario
from rolloutlab.strategies import Role

ZONE_EVICTION_DELAY_S = 300.0  # as sim.faults.ZONE_EVICTION_DELAY: Kubernetes' default pod eviction timeout


# --------------------------------------------------------------------------- before the run


def prepare_backend(scenario: Scenario, backend: Backend, plan: ReleasePlan, time_scale: float) -> None:
    """Set the backend up for the scenario's world before the runner ensures anything:
    the pods' nodes and zones, the services the service under test calls, the
    full-load-only defect. LiveUnsupported names what this backend cannot do."""
    check_traffic(scenario)
    sut = scenario.service_under_test
    if hasattr(backend, "place_pods"):
        backend.place_pods(Topology.of_service(sut))
    services, sut_calls = dependency_specs(scenario)
    if sut_calls:
        if not hasattr(backend, "start_dependencies"):
            raise LiveUnsupported(f"the services {sut.name} calls ({', '.join(c.callee for c in sut_calls)}) run on "
                                  f"the local backend only: the {backend.source} backend starts no second service")
        backend.start_dependencies(services, sut_calls)
    if plan.defect == "full_load_only":
        defect = full_load_defect(scenario)
        if not hasattr(backend, "set_share_defect"):
            raise LiveUnsupported(f"a full_load_only defect needs a backend that switches it on as the new version's "
                                  f"share crosses {defect.traffic_share_threshold:g}: the {backend.source} backend "
                                  "cannot (the local backend does)")
        backend.set_share_defect(defect.traffic_share_threshold, defect.error_rate)


def check_traffic(scenario: Scenario) -> None:
    """LiveUnsupported for traffic the load generator cannot send: it sends a constant rate."""
    kind = scenario.traffic.profile.kind
    if kind != "constant":
        raise LiveUnsupported(f"a {kind} traffic profile has no live form yet: the load generator sends the "
                              "scenario's rate constantly (live/loadgen.py)")


def dependency_specs(scenario: Scenario) -> tuple[list[DependencySpec], tuple[Call, ...]]:
    """The services below the service under test in the call graph, callees first, and
    the calls the service under test makes. LiveUnsupported when users would enter
    through a caller of it (the load generator sends users to it directly)."""
    sut = scenario.service_under_test
    edges = list(scenario.dependencies or ())
    callers = sorted({e.caller for e in edges if e.callee == sut.name})
    if callers:
        raise LiveUnsupported(
            f"users enter through {', '.join(callers)}, which call{'s' if len(callers) == 1 else ''} {sut.name}: "
            f"live runs send users to the service under test directly, so its callers' share of the failures (the "
            f"blast radius the simulator computes) has no live form yet")
    calls: dict[str, list[Call]] = {}
    for e in edges:
        callee = scenario.service(e.callee)
        calls.setdefault(e.caller, []).append(Call(e.callee, float(e.calls_per_request), float(e.error_propagation),
                                                   timeout_s=min(float(callee.request_timeout), 30.0)))
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:  # depth first, callees before callers
        if name in order:
            return
        if name in visiting:
            raise LiveUnsupported(f"the call graph goes round through {name}: no live form")
        visiting.add(name)
        for call in calls.get(name, ()):
            visit(call.callee)
        visiting.discard(name)
        order.append(name)

    visit(sut.name)
    specs = []
    for name in order[:-1]:  # the last one is the service under test
        service = scenario.service(name)
        # Its latency is part of its callers' own (a scenario's latency is measured at the
        # service): the process answers at once, and only injected latency slows callers.
        specs.append(DependencySpec(name, {"DEMO_ERROR_RATE": f"{service.baseline_error_rate:g}"},
                                    tuple(calls.get(name, ()))))
    return specs, tuple(calls.get(sut.name, ()))


def full_load_defect(scenario: Scenario):
    """The scenario's full_load_only defect (the plan carries only its kind)."""
    found = [d for d in scenario.release.defects if d.kind == "full_load_only"]
    if len({(d.traffic_share_threshold, d.error_rate, d.per_pod_rps_threshold) for d in found}) != 1:
        raise LiveUnsupported("a live run needs exactly one kind of full_load_only defect in the scenario, "
                              f"found {len(found)}")
    defect = found[0]
    if defect.per_pod_rps_threshold is not None:
        raise LiveUnsupported("full_load_only with per_pod_rps_threshold has no live form: live traffic is capped "
                              "(--max-rps), so a pod's request rate is not the scenario's")
    return defect


def check_live_form(scenario: Scenario, backend_type: type) -> None:
    """LiveUnsupported naming why ``scenario`` cannot run live on a backend of
    ``backend_type`` (its class: nothing starts): a defect of its release, a fault, its
    call graph or its migration without a live form there. A strategy's own needs (a
    feature flag, a baseline) are ``run_live``'s to check."""
    from rolloutlab.live.session import version_env

    check_traffic(scenario)
    for defect in scenario.release.defects:
        version_env(scenario, defect, 1.0)
        if defect.kind == "full_load_only":
            full_load_defect(scenario)
            if not hasattr(backend_type, "set_share_defect"):
                raise LiveUnsupported(f"a full_load_only defect needs a backend that switches it on as the traffic "
                                      f"moves: the {backend_type.source} backend cannot (the local backend does)")
    fault_schedule(scenario, backend_type, 1.0)
    _, sut_calls = dependency_specs(scenario)
    if sut_calls and not hasattr(backend_type, "start_dependencies"):
        raise LiveUnsupported(f"the services {scenario.service_under_test.name} calls run on the local backend only")
    if scenario.migration is not None:
        from rolloutlab.live.migrations_live import compute_ddl, compute_version_column

        if not hasattr(backend_type, "pods"):
            raise LiveUnsupported(f"migrations run live on the local backend only, not {backend_type.source}")
        compute_ddl(scenario.migration)
        for defect in [None, *(d for d in scenario.release.defects if d.kind == "incompatible_migration")]:
            for role in Role:
                compute_version_column(scenario.migration, defect, role)


# --------------------------------------------------------------------------- during the run


@dataclass
class Injections:
    """Faults injected into services for a while; overlapping ones combine."""

    backend: Backend
    sut: str
    errors: dict[str, list[float]] = field(default_factory=dict)
    latencies: dict[str, list[float]] = field(default_factory=dict)

    def start(self, service: str, table: str, value: float, duration_s: float) -> None:
        getattr(self, table).setdefault(service, []).append(value)
        self._apply(service)
        self.backend.after(duration_s, lambda: self._end(service, table, value))

    def _end(self, service: str, table: str, value: float) -> None:
        getattr(self, table)[service].remove(value)
        self._apply(service)

    def _apply(self, service: str) -> None:
        survive = math.prod(1.0 - p for p in self.errors.get(service, ()))
        settings = {"injected_error_rate": 1.0 - survive, "injected_latency_ms": sum(self.latencies.get(service, ()))}
        if service == self.sut:
            self.backend.inject_fault(**settings)
        elif service in self.backend.dependency_urls():
            self.backend.set_dependency_fault(service, **settings)
        # any other service is none the service under test calls: nothing its users meet


def fault_schedule(scenario: Scenario, backend: Backend, time_scale: float) -> list[tuple[float, Callable[[], None]]]:
    """The scenario's faults as (scenario second, chaos call) pairs on this backend."""
    out: list[tuple[float, Callable[[], None]]] = []
    sut = scenario.service_under_test.name
    injections = Injections(backend, sut) if hasattr(backend, "inject_fault") else None
    for fault in scenario.faults:
        service = getattr(fault, "service", None)
        if fault.kind in ("pod_kill", "node_loss") and service not in (None, sut):
            raise LiveUnsupported(f"{fault.kind} on {service}: services other than the one under test run live as one "
                                  "process each, without the pods and capacity the simulator takes from them")
        role = {"stable": Role.STABLE, "canary": Role.CANARY}.get(getattr(fault, "version", "any"))
        if fault.kind == "pod_kill":
            if not hasattr(backend, "kill_pods"):
                raise LiveUnsupported(f"pod_kill needs kill_pods() on the {backend.source} backend")
            out.append((fault.at, lambda f=fault, r=role: backend.kill_pods(r, f.count)))
        elif fault.kind == "node_loss":
            duration = None if fault.duration is None else fault.duration / time_scale
            if hasattr(backend, "lose_nodes"):  # local: nodes are groups of pods, evicted after the delay
                out.append((fault.at, lambda f=fault, d=duration: backend.lose_node(
                    f.count, d, f.eviction_delay / time_scale)))
            elif hasattr(backend, "lose_node"):  # kube: real nodes drained at once
                out.append((fault.at, lambda f=fault, d=duration: backend.lose_node(f.count, d)))
            else:
                raise LiveUnsupported(f"node_loss on the {backend.source} backend is not supported")
        elif fault.kind == "zone_outage":
            if not hasattr(backend, "lose_zone"):
                raise LiveUnsupported(f"zone_outage on the {backend.source} backend is not supported (its nodes carry "
                                      "no zone this runner reads; the local backend groups pods by zone)")
            out.append((fault.at, lambda f=fault: backend.lose_zone(
                f.zone, f.duration / time_scale, ZONE_EVICTION_DELAY_S / time_scale)))
        elif fault.kind in ("dependency_failure", "latency_injection"):
            if injections is None:
                raise LiveUnsupported(f"{fault.kind} needs POST /fault on every pod of {service}: the "
                                      f"{backend.source} backend does not post faults (the local backend does)")
            table, value = (("errors", fault.error_rate) if fault.kind == "dependency_failure"
                            else ("latencies", fault.added_ms))
            out.append((fault.at, lambda f=fault, t=table, v=value: injections.start(
                f.service, t, v, f.duration / time_scale)))
        else:
            raise LiveUnsupported(f"fault kind {fault.kind!r} has no live form yet on {backend.source}")
    return out


__all__ = ["Injections", "ZONE_EVICTION_DELAY_S", "check_live_form", "check_traffic", "dependency_specs", "fault_schedule", "full_load_defect",
           "prepare_backend"]
