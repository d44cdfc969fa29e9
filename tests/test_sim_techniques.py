"""Shadowing, header routes and feature flags in the simulated world, against what must hold:
analytic expectations for who gets what, the costs of each technique, and determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rolloutlab.errors import InputError
from rolloutlab.scenarios.schema import Scenario
from rolloutlab.sim.run import simulate
from rolloutlab.sim.segments import BUCKETS, UserHarm, user_groups
from rolloutlab.strategies import StrategySpec, load_strategy

FAST_PODS = {"schedule_delay": 0, "start_delay": 10, "readiness": {"period": 1, "success_threshold": 1}}
STAFF = {"name": "staff", "users": 0.1, "headers": {"x-user-group": "internal"}}
ERRORS = {"name": "errors", "metrics": [{"name": "errors", "interval": "30s", "count": 4,
                                         "successCondition": "result < 0.05", "failureLimit": 0}]}
BACKGROUND = {"name": "bg", "metrics": [{"name": "errors", "interval": "30s", "successCondition": "result < 0.05",
                                         "failureLimit": 1}]}
FLAGS = {"flags": {"f": {"state": "ENABLED", "variants": {"on": True, "off": False}, "defaultVariant": "off"}}}


def scenario(defects=({"kind": "error_rate", "error_rate": 0.2},), p: float = 1.0, **traffic) -> Scenario:
    return Scenario.model_validate({
        "name": "t", "duration": "10m",
        "services": [{"name": "web", "replicas": 4, "capacity_rps": 1000, "baseline_error_rate": 0,
                      "pod_timing": FAST_PODS}],
        "traffic": {"rps": 100, "preview_rps": 0, "users": 2000, "segments": [STAFF], **traffic},
        "release": {"defect_probability": p, "defects": list(defects)},
        "monitoring": {"alerts": []},
    })


def spec(strategy: dict, templates=(ERRORS, BACKGROUND)) -> StrategySpec:
    return StrategySpec.model_validate({"name": "s", "analysisTemplates": list(templates), "strategy": strategy})


def routed(*steps: dict, routes=("staff", "shadow")) -> dict:
    return {"canary": {"trafficRouting": "router", "managedRoutes": [{"name": n} for n in routes],
                       "steps": list(steps)}}


STAFF_ROUTE = {"setHeaderRoute": {"name": "staff", "match": [
    {"headerName": "x-user-group", "headerValue": {"exact": "internal"}}]}}
HOLD = {"pause": {"duration": "20m"}}  # hold the route for the whole window


def rows(sc: Scenario, s: StrategySpec, n: int = 40, seed: int = 7) -> list[dict]:
    return [simulate(sc, s, i, np.random.SeedSequence(seed, spawn_key=(i,))).row for i in range(n)]


def mean(values) -> float:
    return float(np.mean(list(values)))


def test_a_header_route_sends_exactly_its_segment_to_the_new_version():
    """With a header route and weight 0, only the segment's requests reach the new version: failures ≈ λ·share·p·T, users affected ≤ the segment."""
    sc = scenario()
    out = rows(sc, spec(routed({"setCanaryScale": {"replicas": 1}}, STAFF_ROUTE, HOLD)))
    # the canary pod is ready 10 s in; staff (10% of requests) get 20% errors for the rest of the window
    expected = 100 * 0.1 * 0.2 * (600 - 10)
    failed = np.array([r["failed_requests"] for r in out])
    assert abs(failed.mean() - expected) < 4 * failed.std(ddof=1) / math.sqrt(len(failed))
    affected = np.array([r["users_affected"] for r in out])
    # each staff user sends ~29 requests at 20% failure: nearly all of them, and nobody else
    assert affected.max() <= 0.1 + 1e-9 and affected.mean() > 0.09


def test_a_weight_spreads_the_same_harm_over_every_user():
    """A 10% weight hurts as many requests as a route for a 10% segment, but of far more users (each request is routed on its own)."""
    sc = scenario()
    weighted = rows(sc, spec(routed({"setCanaryScale": {"replicas": 1}}, {"setWeight": 10}, HOLD)))
    header = rows(sc, spec(routed({"setCanaryScale": {"replicas": 1}}, STAFF_ROUTE, HOLD)))
    assert mean(r["failed_requests"] for r in weighted) == pytest.approx(mean(r["failed_requests"] for r in header),
                                                                          rel=0.1)
    assert mean(r["users_affected"] for r in weighted) > 4 * mean(r["users_affected"] for r in header)


def test_mirrored_copies_are_served_and_judged_but_fail_no_user():
    """A mirror at 50% of reads copies λ·0.5·reads·T requests to the new version; its errors fail its analysis, not users."""
    sc = scenario(write_share=0.2)
    mirror = {"setMirrorRoute": {"name": "shadow", "percentage": 50, "match": [{"method": {"exact": "GET"}}]}}
    out = rows(sc, spec(routed({"setCanaryScale": {"replicas": 2}}, mirror, {"analysis": {"templates": [
        {"templateName": "errors"}]}}, HOLD)))
    for r in out:
        assert r["outcome"] == "rolled_back" and r["users_affected"] == 0 and r["change_failed"] is False
        assert r["failed_requests"] == 0  # no baseline errors: the users' failures are the release's, and there are none
    # the analysis fails at its first measurement, 30 s after the mirror started (10 s in)
    copies = np.array([r["mirrored_requests"] for r in out])
    expected = 100 * 0.8 * 0.5 * 30
    assert abs(copies.mean() - expected) < 4 * copies.std(ddof=1) / math.sqrt(len(copies)) + 1


def test_mirrored_writes_are_duplicated_only_by_a_version_with_side_effects():
    """Side effects duplicate every mirrored write; a mirror of reads duplicates none; without the defect nothing is."""
    sc = scenario(defects=({"kind": "side_effects"},), write_share=0.25)
    everything = {"setMirrorRoute": {"name": "shadow", "percentage": 100, "match": [{"path": {"prefix": "/"}}]}}
    reads = {"setMirrorRoute": {"name": "shadow", "percentage": 100, "match": [{"method": {"exact": "GET"}}]}}
    scale = {"setCanaryScale": {"replicas": 4}}
    all_rows = rows(sc, spec(routed(scale, everything, HOLD)), n=20)
    dup = np.array([r["duplicated_writes"] for r in all_rows])
    expected = 100 * 0.25 * (600 - 10)
    assert abs(dup.mean() - expected) < 4 * math.sqrt(expected / len(dup)) + 1
    assert all(r["change_failed"] and r["outcome"] == "failed_undetected" for r in all_rows)  # analysis sees 200s
    assert all(r["duplicated_writes"] == 0 for r in rows(sc, spec(routed(scale, reads, HOLD)), n=10))
    healthy = scenario(defects=({"kind": "side_effects"},), p=0.0, write_share=0.25)
    assert all(r["duplicated_writes"] == 0 for r in rows(healthy, spec(routed(scale, everything, HOLD)), n=10))


def test_a_mirror_loads_the_new_version_like_users_do():
    """Mirroring all of 100 rps to one pod that takes 50 overloads it: its analysis fails a healthy release."""
    sc = Scenario.model_validate({
        "name": "t", "duration": "10m",
        "services": [{"name": "web", "replicas": 4, "capacity_rps": 50, "baseline_error_rate": 0, "pod_timing": FAST_PODS}],
        "traffic": {"rps": 100, "preview_rps": 0},
        "release": {"defect_probability": 0.0}, "monitoring": {"alerts": []},
    })
    mirror = {"setMirrorRoute": {"name": "shadow", "percentage": 100, "match": [{"path": {"prefix": "/"}}]}}
    analysis = {"analysis": {"templates": [{"templateName": "errors"}]}}
    one_pod = rows(sc, spec(routed({"setCanaryScale": {"replicas": 1}}, mirror, analysis)), n=10)
    four_pods = rows(sc, spec(routed({"setCanaryScale": {"replicas": 4}}, mirror, analysis)), n=10)
    assert all(r["outcome"] == "false_rollback" for r in one_pod)
    assert all(r["outcome"] == "promoted" for r in four_pods)


FLAG_STEPS = [{"setExposure": {"match": [{"headerName": "x-user-group", "headerValue": {"exact": "internal"}}]}},
              {"pause": {"duration": "1m"}}, {"setExposure": {"percentage": 50}}, HOLD]


def flag_spec(analysis: bool = True) -> StrategySpec:
    ff = {"flagKey": "f", "flags": FLAGS, "deploy": {"rolling": {"maxSurge": "100%", "maxUnavailable": 0}},
          "steps": FLAG_STEPS}
    if analysis:
        ff["analysis"] = {"templates": [{"templateName": "bg"}]}
    return spec({"featureFlag": ff})


def test_a_flag_hurts_only_users_with_the_flag_on_and_turning_it_off_restores_them():
    """Behind the flag, a defect reaches staff first; the flag's analysis turns it off within a minute and users are restored at once."""
    out = rows(scenario(), flag_spec())
    for r in out:
        assert r["outcome"] == "rolled_back"
        assert r["users_affected"] <= 0.1 + 1e-9  # only staff ever had the flag on
        assert r["time_to_restore"] <= 61  # failureLimit 1 at 30 s: two measurements, no pod moves
        assert r["ends_healthy"]


def test_without_analysis_the_flag_exposure_sets_who_is_hurt():
    """Undetected, the flag on for staff then 50% of the rest hurts staff plus half the others, stickily: ~55% of users."""
    out = rows(scenario(), flag_spec(analysis=False), n=10)
    affected = np.array([r["users_affected"] for r in out])
    assert np.all(affected > 0.5) and np.all(affected < 0.6)


def test_a_defect_outside_the_flag_is_not_fixed_by_the_flag():
    """A crash-free error outside the flagged path: the flag's analysis sees no difference between on and off users; a person must roll the deploy back."""
    sc = Scenario.model_validate({**scenario().model_dump(by_alias=True), "release": {
        "defect_probability": 1.0, "defects": [{"kind": "error_rate", "error_rate": 0.2, "behind_flag": False}]},
        "monitoring": {"alerts": [{"name": "errors", "metric": "error_rate", "threshold": 0.05, "for": "1m",
                                   "window": "1m"}]},
        "response": {"response_time": 60, "rollback_duration": 60}})
    out = rows(sc, flag_spec(), n=10)
    for r in out:
        assert r["human_action"] == "rollback"  # the flag was off or turned off: only the deploy's rollback helped
        assert r["users_affected"] > 0.5  # every pod ran the defect: everyone met it
        assert r["time_to_restore"] > 120


def test_the_same_seed_gives_the_same_rows_for_every_technique():
    """Same scenario + seed = the same rows, bit for bit (new columns included)."""
    sc = scenario(write_share=0.2)
    for name in ("shadow-then-canary", "header-canary", "ab-test", "feature-flag"):
        s = load_strategy(name)
        a = rows(sc, s, n=3, seed=11)
        b = rows(sc, s, n=3, seed=11)
        assert a == b


def test_the_per_request_reference_refuses_what_it_does_not_model():
    """The slow reference world models neither routes nor flags: it says so instead of answering wrong."""
    with pytest.raises(ValueError, match="reference world"):
        simulate(scenario(), flag_spec(), 0, np.random.SeedSequence(1), "request")


def test_user_groups_keep_every_user_and_harm_counts_users_once():
    """Segments then everyone else, users summing to the total; a user meeting many bad answers counts once."""
    groups = user_groups(scenario().traffic)
    assert [g.name for g in groups] == ["staff", "everyone else"] and sum(g.users for g in groups) == 2000
    harm = UserHarm(groups)
    harm.add(0, requests_per_user=1000.0, bad_on=0.5, bad_off=0.5, on_buckets=BUCKETS)  # every staff user, many times
    assert harm.affected_share(np.random.default_rng(1)) == pytest.approx(0.1)


@pytest.mark.parametrize("traffic, field, message", [
    ({"segments": [{**STAFF, "users": 0.7}, {"name": "b", "users": 0.5}]}, "traffic.segments", "add up to 1.2"),
    ({"segments": [STAFF, STAFF]}, "traffic.segments[1].name", "named twice"),
    ({"segments": [{**STAFF, "headers": {"bad header": "x"}}]}, "traffic.segments[0].headers", "not an HTTP header"),
    ({"write_share": 1.5}, "traffic.write_share", ""),
])
def test_bad_segments_are_refused_with_file_line_and_field(tmp_path, traffic, field, message):
    import re

    import yaml

    from rolloutlab import load_scenario

    body = {"name": "t", "services": [{"name": "web", "replicas": 2}], "traffic": {"rps": 10, **traffic}}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    with pytest.raises(InputError) as info:
        load_scenario(path)
    text = str(info.value)
    assert re.search(r"s\.yaml:\d+: " + re.escape(field), text), text
    assert message in text
