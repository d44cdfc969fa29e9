"""What a scenario makes the same in every run, worked out once per scenario object.

A Monte Carlo study runs thousands of worlds on one scenario. The service under test,
its call graph and the arrivals it carries, the healthy latency model, the users' groups
and request classes are the same in each of them, so every world takes them from here
(``World.__post_init__``) instead of working them out again: about a tenth of a
replication's time otherwise.

Scenarios are values here, as everywhere in the simulator: a different scenario is a
different object (``model_copy``), never one edited in place. The cache is keyed on the
object's identity and holds the object itself, so an id cannot be reused while its entry
lives.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rolloutlab.scenarios.schema import Scenario, Service
from rolloutlab.sim.dependencies import Dependencies
from rolloutlab.sim.segments import RequestClass, UserGroup, flag_on_buckets, request_classes, user_groups
from rolloutlab.sim.traffic import LatencyModel

_CACHE_SIZE = 64  # scenarios a process keeps facts for (a study holds a handful; tune one)
_cache: dict[int, tuple[Scenario, ScenarioFacts]] = {}


@dataclass(frozen=True)
class ScenarioFacts:
    """The parts of a world that depend on its scenario only."""

    sut: Service
    dependencies: Dependencies
    arrival_factor: float
    """Requests the service under test receives per user request."""
    latency: LatencyModel
    """The service's healthy response time (both versions start from it)."""
    bucket_count: int
    """Latency histogram buckets a version's counters hold."""
    groups: tuple[UserGroup, ...]
    classes: tuple[RequestClass, ...]
    no_flag_buckets: np.ndarray
    """Per group, hash buckets with the flag on while nobody has it (read-only zeros)."""


def scenario_facts(scenario: Scenario) -> ScenarioFacts:
    """The facts of ``scenario``, computed on its first run in this process."""
    entry = _cache.get(id(scenario))
    if entry is not None and entry[0] is scenario:
        return entry[1]
    sut = scenario.service_under_test
    dependencies = Dependencies(scenario)
    latency = LatencyModel.from_latency(sut.latency)
    groups = user_groups(scenario.traffic)
    no_flag = flag_on_buckets(groups, None)
    no_flag.flags.writeable = False
    facts = ScenarioFacts(sut, dependencies, dependencies.arrivals[sut.name], latency,
                          len(latency.bucket_probabilities()), groups, request_classes(scenario.traffic, groups), no_flag)
    if len(_cache) >= _CACHE_SIZE:
        _cache.clear()
    _cache[id(scenario)] = (scenario, facts)
    return facts
