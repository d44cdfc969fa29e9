"""A scenario's regions as the runners use them: the scenario one region sees, and the
waves a strategy rolls out in over the scenario's regions.

Both runners need them, the simulator (``sim.regions``: one world per region) and the live
runner (``live.regions``: one backend per region), so they live here, below both.
"""

from __future__ import annotations

from functools import lru_cache

from rolloutlab.scenarios.schema import Region, Scenario
from rolloutlab.strategies import StrategySpec
from rolloutlab.strategies.spec import Waves, WaveStep


def waves_for(scenario: Scenario, spec: StrategySpec) -> Waves | None:
    """The strategy's waves, checked against the scenario's regions; no waves: one wave of
    all the regions; None when neither has any (one place, no waves)."""
    names = [r.name for r in scenario.regions]
    if spec.waves is None:
        return Waves(steps=(WaveStep(regions=tuple(names)),)) if names else None
    if not names:
        raise ValueError(f"strategy {spec.name!r} rolls out in waves of regions, but scenario {scenario.name!r} "
                         f"has no regions: add a `regions:` list to the scenario")
    unknown = [r for r in spec.waves.regions if r not in names]
    if unknown:
        raise ValueError(f"strategy {spec.name!r} names region(s) {', '.join(unknown)} that scenario "
                         f"{scenario.name!r} does not have (its regions: {', '.join(names)})")
    missing = [r for r in names if r not in spec.waves.regions]
    if missing:
        raise ValueError(f"strategy {spec.name!r} never rolls out to region(s) {', '.join(missing)} of scenario "
                         f"{scenario.name!r}: every region must be in one wave")
    return spec.waves


@lru_cache(maxsize=64)
def _region_scenario_json(scenario_json: str, region_json: str) -> Scenario:
    scenario = Scenario.model_validate_json(scenario_json)
    region = Region.model_validate_json(region_json)
    data = scenario.model_dump(mode="json")
    share = region.traffic_share
    for service in data["services"]:
        if service["name"] != scenario.service_under_test.name:
            continue
        service["replicas"] = region.replicas or max(1, round(scenario.service_under_test.replicas * share))
        if region.zones:
            service["zones"] = list(region.zones)
        if region.latency is not None:
            service["latency"] = region.latency.model_dump(mode="json")
        if region.capacity_rps is not None:
            service["capacity_rps"] = region.capacity_rps
        service["nodes"] = None  # recomputed for the region's replicas and zones
    traffic = data["traffic"]
    traffic["rps"] = traffic["rps"] * share
    traffic["preview_rps"] = traffic.get("preview_rps", 0.0) * share
    traffic["users"] = max(1, round(traffic["users"] * share))
    data["faults"] = [{**f, "region": None} for f in data["faults"] if f.get("region") in (None, region.name)]
    data.update(name=f"{scenario.name}@{region.name}", regions=[], expect=[], history=None)
    return Scenario.model_validate(data)


def region_scenario(scenario: Scenario, region: Region) -> Scenario:
    """The scenario as one region sees it: its share of traffic and users, its pods,
    zones, latency and capacity, the faults that hit it (all of them without a region)."""
    return _region_scenario_json(scenario.model_dump_json(), region.model_dump_json())


__all__ = ["region_scenario", "waves_for"]
