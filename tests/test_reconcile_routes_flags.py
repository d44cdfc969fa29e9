"""Managed routes and feature flags in the shared controller, driven through the ideal world.

Each test says in one sentence what must hold (Argo Rollouts' semantics for routes:
rollout/trafficrouting.go; the feature-flag ladder: strategies/feature_flag.py).
"""

from __future__ import annotations

import pytest

from rolloutlab.strategies import Command, Role, StrategySpec, dump_status, load_status
from rolloutlab.strategies.actions import RemoveRoute, SetFlagExposure, SetHeaderRoute, SetMirrorRoute
from rolloutlab.strategies.dry_run import IdealWorld
from rolloutlab.strategies.routes import RequestTraits, route_request

TEMPLATE = {
    "name": "errors",
    "metrics": [{"name": "errors", "interval": "30s", "count": 3, "successCondition": "result < 0.02", "failureLimit": 0}],
}
BACKGROUND_TEMPLATE = {
    "name": "errors-bg",
    "metrics": [{"name": "errors", "interval": "30s", "successCondition": "result < 0.02", "failureLimit": 1}],
}
INTERNAL = [{"headerName": "x-user-group", "headerValue": {"exact": "internal"}}]


def spec_of(strategy: dict, replicas: int = 4) -> StrategySpec:
    return StrategySpec.model_validate({"name": "t", "replicas": replicas,
                                        "analysisTemplates": [TEMPLATE, BACKGROUND_TEMPLATE], "strategy": strategy})


def routed_canary(*steps: dict) -> dict:
    return {"canary": {"trafficRouting": "router", "managedRoutes": [{"name": "staff"}, {"name": "shadow"}],
                       "steps": list(steps)}}


SHADOW_THEN_CANARY = routed_canary(
    {"setCanaryScale": {"replicas": 1}},
    {"setMirrorRoute": {"name": "shadow", "percentage": 50, "match": [{"method": {"exact": "GET"}}]}},
    {"analysis": {"templates": [{"templateName": "errors"}]}},
    {"setMirrorRoute": {"name": "shadow"}},
    {"setHeaderRoute": {"name": "staff", "match": INTERNAL}},
    {"pause": {"duration": "60s"}},
    {"setWeight": 50},
    {"pause": {"duration": "60s"}},
)


def route_actions(world: IdealWorld) -> list:
    return [a for d in world.log for a in d.actions if isinstance(a, SetHeaderRoute | SetMirrorRoute | RemoveRoute)]


def test_routes_are_set_by_their_steps_and_removed_at_promotion():
    world = IdealWorld(spec_of(SHADOW_THEN_CANARY))
    status = world.run(until=3600)
    assert status.completed and status.routes == ()
    kinds = [(type(a).__name__, a.name) for a in route_actions(world)]
    assert kinds == [("SetMirrorRoute", "shadow"), ("RemoveRoute", "shadow"), ("SetHeaderRoute", "staff"),
                     ("RemoveRoute", "staff")]
    mirror = route_actions(world)[0]
    assert mirror.percentage == 50 and mirror.match[0].method.exact == "GET"


def test_an_abort_removes_every_route_before_the_weight_goes_back():
    world = IdealWorld(spec_of(SHADOW_THEN_CANARY))
    world.error_rate[Role.CANARY] = 0.3  # the mirror analysis fails
    status = world.run(until=3600)
    assert status.aborted and status.restored_at is not None and status.routes == ()
    kinds = [type(a).__name__ for a in route_actions(world)]
    assert kinds == ["SetMirrorRoute", "RemoveRoute"]


def test_the_routes_in_force_survive_a_restart_from_the_persisted_status():
    spec = spec_of(SHADOW_THEN_CANARY)
    world = IdealWorld(spec)
    world.run(until=20)  # the mirror route is set, its analysis is running
    assert world.status.routes == (("shadow", 1),)
    resumed = load_status(dump_status(world.status))
    assert resumed.routes == world.status.routes
    assert [r.name for r in spec.strategy.canary.routes_in_order(dict(resumed.routes))] == ["shadow"]


@pytest.mark.parametrize("headers, method, to_canary, mirror", [
    ({"x-user-group": "internal"}, "GET", True, 0.0),   # staff come first in managedRoutes
    ({"x-user-group": "internal"}, "POST", True, 0.0),
    ({}, "GET", False, 0.5),                            # mirrored, split by weight
    ({}, "POST", False, 0.0),                           # writes are not copied
    ({"X-User-Group": "external"}, "GET", False, 0.5),
])
def test_the_first_matching_route_in_managed_order_decides(headers, method, to_canary, mirror):
    cs = spec_of(routed_canary(
        {"setHeaderRoute": {"name": "staff", "match": INTERNAL}},
        {"setMirrorRoute": {"name": "shadow", "percentage": 50, "match": [{"method": {"exact": "GET"}}]}},
    )).strategy.canary
    routes = cs.routes_in_order({"staff": 0, "shadow": 1})
    routing = route_request(routes, RequestTraits(method, "/", {k.lower(): v for k, v in headers.items()}))
    assert (routing.to_canary, routing.mirror) == (to_canary, mirror)


@pytest.mark.parametrize("strategy, field, message", [
    ({"canary": {"steps": [{"setHeaderRoute": {"name": "staff", "match": INTERNAL}}]}},
     "strategy.canary.steps[0].setHeaderRoute", "needs trafficRouting: router"),
    (routed_canary({"setHeaderRoute": {"name": "other", "match": INTERNAL}}),
     "strategy.canary.steps[0].setHeaderRoute.name", "not in managedRoutes"),
    (routed_canary({"setMirrorRoute": {"name": "shadow", "percentage": 150, "match": [{"method": {"exact": "GET"}}]}}),
     "strategy.canary.steps[0].setMirrorRoute.percentage", "less than or equal to 100"),
    (routed_canary({"setHeaderRoute": {"name": "staff", "match": []}}),
     "strategy.canary.steps[0].setHeaderRoute.match", "match is empty"),
    (routed_canary({"setHeaderRoute": {"name": "staff", "match": [{"headerName": "x", "headerValue": {}}]}}),
     "strategy.canary.steps[0].setHeaderRoute.match[0].headerValue", "exactly one of exact"),
])
def test_bad_routes_are_refused_with_their_field(tmp_path, strategy, field, message):
    import re

    import yaml

    from rolloutlab.errors import InputError
    from rolloutlab.strategies import load_strategy

    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"name": "t", "strategy": strategy}, sort_keys=False))
    with pytest.raises(InputError) as info:
        load_strategy(path)
    text = str(info.value)
    assert re.search(r"s\.yaml:\d+: " + re.escape(field) + ": ", text), text
    assert message in text


FLAG = {"flags": {"new-checkout": {"state": "ENABLED", "variants": {"on": True, "off": False}, "defaultVariant": "off"}}}


def flag_strategy(*steps: dict, analysis: bool = True) -> dict:
    ff = {"flagKey": "new-checkout", "flags": FLAG, "deploy": {"rolling": {"maxSurge": 1, "maxUnavailable": 0}},
          "steps": list(steps)}
    if analysis:
        ff["analysis"] = {"templates": [{"templateName": "errors-bg"}]}
    return {"featureFlag": ff}


FLAG_STEPS = (
    {"setExposure": {"match": INTERNAL}},
    {"pause": {"duration": "60s"}},
    {"setExposure": {"percentage": 10}},
    {"analysis": {"templates": [{"templateName": "errors"}]}},
    {"setExposure": {"percentage": 50}},
    {"pause": {"duration": "60s"}},
)


def exposures(world: IdealWorld) -> list[tuple[int, int]]:
    return [(a.percentage, len(a.match)) for d in world.log for a in d.actions if isinstance(a, SetFlagExposure)]


def test_a_flag_release_deploys_dark_then_follows_its_exposure_steps():
    world = IdealWorld(spec_of(flag_strategy(*FLAG_STEPS)))
    status = world.run(until=3600)
    assert status.completed and status.deployed_at is not None
    assert exposures(world) == [(0, 1), (10, 0), (50, 0), (100, 0)]
    first_exposure = next(d.at for d in world.log if any(isinstance(a, SetFlagExposure) for a in d.actions))
    assert first_exposure >= status.deployed_at  # nobody sees the new code path before every pod runs it
    assert world.pods[Role.STABLE].observe(world.now).replicas == 0


def test_a_failing_flagged_path_turns_the_flag_off_and_keeps_the_new_pods():
    world = IdealWorld(spec_of(flag_strategy(*FLAG_STEPS)))
    world.error_rate[Role.CANARY] = 0.2  # only users with the flag on meet it
    status = world.run(until=3600)
    assert status.aborted and status.restored_at is not None
    assert exposures(world)[-1] == (0, 0)
    assert status.restored_at == status.aborted_at  # a flag restores at once: no pod has to move
    obs = world.observe()
    assert obs.canary.replicas == 4 and obs.stable.replicas == 0  # the dark code stays deployed


def test_flag_analysis_compares_flag_on_users_with_flag_off_users():
    world = IdealWorld(spec_of(flag_strategy(*FLAG_STEPS)))
    world.error_rate[Role.CANARY] = 0.2
    world.run(until=3600)
    flag = world.observe().flag
    assert flag is not None and flag.on.requests > 0 and flag.off.requests > flag.on.requests
    assert flag.on.errors > 0 and flag.off.errors == 0
    assert world.status.aborted and "analysis failed" in world.status.abort_reason
    # the deploy alone failed nobody: every error came after the flag went on for someone


def test_an_abort_during_the_dark_deploy_rolls_the_pods_back():
    world = IdealWorld(spec_of(flag_strategy(*FLAG_STEPS)), start_delay=30)
    world.run(until=35)
    assert world.status.deployed_at is None
    world.command(Command.ABORT)
    status = world.run(until=3600)
    assert status.aborted and status.restored_at is not None and status.deployed_at is None
    obs = world.observe()
    assert obs.stable.replicas == 4 and obs.canary.replicas == 0
    assert exposures(world) == []  # the flag was never turned on


def test_promote_is_refused_while_the_dark_code_deploys_and_passes_pauses_after():
    world = IdealWorld(spec_of(flag_strategy({"setExposure": {"percentage": 5}}, {"pause": {}}, analysis=False)))
    world.command(Command.PROMOTE)
    world.run(until=3600)
    assert world.status.pause_reason is not None and not world.status.completed
    world.command(Command.PROMOTE)
    status = world.run(until=7200)
    assert status.completed
    assert exposures(world) == [(5, 0), (100, 0)]


def test_a_flag_without_flag_data_is_refused():
    with pytest.raises(ValueError, match="flagFile"):
        spec_of({"featureFlag": {"flagKey": "x"}})
