"""Every fault and defect kind of the scenario library, live on the local backend: real
demo-service processes behind HAProxy, the fault injected the way ``rolloutlab live``
injects it (``live.scenario_faults``: ``prepare_backend`` and the chaos calls of
``fault_schedule``, fired here at once instead of at their scenario second), and the
effect measured on real requests. Time scale 20: a scenario's 40 s last 2 s of wall time.

Each test says what must hold; binomial bounds (99.9%) for rates, no timing asserts.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import httpx
import pytest
import yaml
from scipy import stats

from rolloutlab.errors import LiveUnsupported
from rolloutlab.live.kube import KubeBackend
from rolloutlab.live.kube_metrics import counters_from_exposition
from rolloutlab.live.loadgen import ERROR_RESULTS
from rolloutlab.live.local import LocalBackend
from rolloutlab.live.local_pods import http_request
from rolloutlab.live.scenario_faults import check_live_form, fault_schedule, prepare_backend
from rolloutlab.live.session import make_plan
from rolloutlab.scenarios.schema import load_scenario
from rolloutlab.strategies import Role, ScaleVersion, SwitchActive, load_strategy
from tests.outside_systems import needs_haproxy
from tests.test_demo_service import run_demo
from tests.test_local_backend import FAST, descendants, until

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ROOT / "scenarios" / "library"
SCALE = 20.0

BASE = {
    "name": "live-faults",
    "duration": "10m",
    "services": [{"name": "web", "replicas": 2, "capacity_rps": 200, "latency": {"median_ms": 5, "p99_ms": 20},
                  "baseline_error_rate": 0.0,
                  "pod_timing": {"schedule_delay": "0s", "start_delay": "0s", "readiness": {"period": "2s"}}}],
    "traffic": {"rps": 50},
    "release": {"defect_probability": 0},
}


def scenario(tmp_path: Path, **changes):
    """BASE with top-level ``changes`` and the service under test's (``web={...}``)."""
    data = json.loads(json.dumps(BASE))
    data["services"][0].update(changes.pop("web", {}))
    data.update(changes)
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_scenario(path)


@pytest.fixture
def backend(tmp_path):
    """A fast local backend; at the end it is closed and nothing it started runs on."""
    before = descendants(os.getpid())
    made = LocalBackend(tmp_path / "state", **FAST)
    yield made
    made.close()
    assert made.child_pids() == []
    assert until(lambda: not (descendants(os.getpid()) - before), 5.0), "processes left running"


def start(backend: LocalBackend, world, strategy: str = "rolling", release: str = "good"):
    """The scenario's world on ``backend``, its stable serving; returns (plan, faults)."""
    spec = load_strategy(strategy)
    plan = make_plan(world, spec, release=release, time_scale=SCALE)
    faults = fault_schedule(world, backend, SCALE)
    prepare_backend(world, backend, plan, SCALE)
    backend.ensure(plan, spec.with_replicas(plan.replicas))
    backend.wait_until_serving(15.0)
    return plan, faults


def answers(url: str, n: int, within_s: float = 20.0) -> list[httpx.Response]:
    """Up to ``n`` answers from ``url``, one request after another (bounded in time)."""
    out, deadline = [], time.monotonic() + within_s
    with httpx.Client(trust_env=False, timeout=5.0) as client:
        while len(out) < n and time.monotonic() < deadline:
            out.append(client.get(url))
    return out


def failed(responses) -> int:
    return sum(r.status_code >= 500 for r in responses)


def elapsed_ms(responses) -> list[float]:
    return [r.elapsed.total_seconds() * 1000 for r in responses]


# --------------------------------------------------------------------------- latency injection


@needs_haproxy
def test_latency_injection_slows_both_versions_for_its_duration_only(backend, tmp_path):
    """latency_injection on the service under test adds its delay to every answer of both
    versions (a pod started later too), and only for its duration (100 s at scale 20: 5 s)."""
    world = scenario(tmp_path, faults=[{"kind": "latency_injection", "at": "0s", "service": "web", "added_ms": 150,
                                        "duration": "100s"}])
    _, faults = start(backend, world)
    url = backend.urls()["user"]
    assert max(elapsed_ms(answers(url, 10))) < 140
    faults[0][1]()
    backend.apply(ScaleVersion(Role.CANARY, 1))  # a pod started during the fault gets it too
    assert backend.wait_until(lambda: backend.observe()[1].ready == 1, 10.0)
    during = answers(url, 9)
    assert min(elapsed_ms(during)) >= 150
    assert {r.headers["X-Version"] for r in during} == {"v1", "v2"}
    assert until(lambda: max(elapsed_ms(answers(url, 6))) < 140, 10.0), "the injected latency did not end"


@needs_haproxy
def test_a_pods_faults_cannot_be_changed_without_the_runs_token(backend, tmp_path):
    """A local pod refuses POST /fault without the run's token (401) or with another (403);
    its faults stay as they were."""
    start(backend, scenario(tmp_path))
    port = backend.pods(Role.STABLE)[0].port
    body = json.dumps({"error_rate": 1.0}).encode()
    assert http_request("POST", port, "/fault", 2.0, body)[0] == 401
    assert http_request("POST", port, "/fault", 2.0, body, token="x" * 32)[0] == 403
    assert json.loads(http_request("GET", port, "/fault", 2.0)[1])["error_rate"] == 0.0
    assert failed(answers(backend.urls()["user"], 20)) == 0


# --------------------------------------------------------------------------- dependency failure


@needs_haproxy
def test_a_failing_dependency_fails_the_callers_requests_at_the_modelled_rate(backend, tmp_path):
    """web calls db once per request and a failed call fails the request half the time
    (error_propagation 0.5): while db fails every call, web fails about half its requests
    (both versions); before and after, none."""
    world = scenario(tmp_path, services=[
        {**BASE["services"][0], "name": "web", "under_test": True},
        {"name": "db", "replicas": 2, "capacity_rps": 500, "baseline_error_rate": 0.0}],
        dependencies=[{"caller": "web", "callee": "db", "calls_per_request": 1, "error_propagation": 0.5}],
        faults=[{"kind": "dependency_failure", "at": "0s", "service": "db", "error_rate": 1.0, "duration": "100s"}])
    _, faults = start(backend, world)
    url = backend.urls()["user"]
    assert failed(answers(url, 40)) == 0
    faults[0][1]()
    fired = time.monotonic()
    during = answers(url, 200, within_s=3.5)  # inside the fault's 5 s of wall time
    low, high = stats.binom.interval(0.999, len(during), 0.5)
    assert len(during) >= 50 and low <= failed(during) <= high, f"{failed(during)} of {len(during)} failed"
    assert all("db answered 500" in r.json().get("failure", "db answered 500") for r in during if r.status_code == 500)
    time.sleep(max(0.0, fired + 100 / SCALE + 0.5 - time.monotonic()))
    assert failed(answers(url, 40)) == 0


# --------------------------------------------------------------------------- nodes and zones


@needs_haproxy
def test_a_zone_outage_takes_exactly_that_zones_pods_and_gives_them_back(backend, tmp_path):
    """Six pods over zones a, b, c (a node each): zone a's outage takes its two pods out of
    service at once (not replaced: the eviction delay is longer than the outage), users
    meet no failure, and the same processes serve again when the zone returns."""
    world = scenario(tmp_path, web={"replicas": 6, "zones": ["a", "b", "c"]},
                     faults=[{"kind": "zone_outage", "at": "0s", "zone": "a", "duration": "40s"}])
    plan, faults = start(backend, world)
    assert plan.replicas == 6
    before = {p.name: p for p in backend.pods()}
    in_a = {name for name, p in before.items() if backend.topology.zone_of(p.node) == "a"}
    assert len(in_a) == 2
    faults[0][1]()
    now = {p.name: p for p in backend.pods()}
    assert {name for name, p in now.items() if p.lost} == in_a
    assert backend.observe()[0].ready == 4 and all(not now[name].routed for name in in_a)
    assert failed(answers(backend.urls()["user"], 40)) == 0
    assert backend.wait_until(lambda: backend.observe()[0].ready == 6, 10.0), backend.pods()
    after = {p.name: p for p in backend.pods()}
    assert set(after) == set(before) and all(after[n].pid == before[n].pid and not after[n].lost for n in in_a)
    assert failed(answers(backend.urls()["user"], 40)) == 0


@needs_haproxy
def test_node_loss_evicts_after_the_delay_and_replaces_pods_on_the_healthy_node(backend, tmp_path):
    """Four pods on two nodes; one node is lost for good: its two pods stop serving at once
    but still count (nothing replaces them) until the eviction delay (20 s: 1 s of wall
    time); then they are deleted and two new pods start on the other node."""
    world = scenario(tmp_path, web={"replicas": 4, "nodes": 2, "zones": ["a"]},
                     faults=[{"kind": "node_loss", "at": "0s", "count": 1, "eviction_delay": "20s"}])
    _, faults = start(backend, world)
    before = {p.name for p in backend.pods()}
    faults[0][1]()
    lost = {p.name for p in backend.pods() if p.lost}
    assert len(lost) == 2 and backend.observe()[0].ready == 2
    assert len(backend.pods()) == 4  # still counted: no replacement before the eviction
    assert backend.wait_until(lambda: backend.observe()[0].ready == 4 and not lost & {p.name for p in backend.pods()},
                              15.0), backend.pods()
    pods = backend.pods()
    assert len({p.node for p in pods}) == 1 and len({p.name for p in pods} - before) == 2
    kinds = [e.kind for e in backend.events]
    assert kinds.index("node-lost") < kinds.index("evicted")


@needs_haproxy
def test_pod_kill_from_the_schedule_restarts_the_killed_pod(backend, tmp_path):
    """pod_kill kills a pod of the version it names; its container restarts in place."""
    world = scenario(tmp_path, faults=[{"kind": "pod_kill", "at": "0s", "count": 1, "version": "stable"}])
    _, faults = start(backend, world)
    faults[0][1]()
    assert backend.wait_until(lambda: sum(p.restarts for p in backend.pods()) == 1
                              and backend.observe()[0].ready == 2, 10.0), backend.pods()


# --------------------------------------------------------------------------- full-load-only defect


@needs_haproxy
@pytest.mark.parametrize("strategy", ["rolling", "blue-green"])
def test_a_full_load_only_defect_fails_only_while_the_new_version_takes_all_traffic(backend, tmp_path, strategy):
    """The new version fails every request (error rate 1 for a sharp test) once it carries
    100% of the users -- the last step of a rolling update, a blue-green switch -- and
    answers fine while it carries part of them (or none, as a preview)."""
    world = scenario(tmp_path, release={"defect_probability": 1, "defects": [
        {"kind": "full_load_only", "traffic_share_threshold": 1.0, "error_rate": 1.0}]})
    plan, _ = start(backend, world, strategy=strategy, release="bad")
    assert plan.defect == "full_load_only"
    backend.apply(ScaleVersion(Role.CANARY, 2))
    assert backend.wait_until(lambda: backend.observe()[1].ready == 2, 10.0)
    ports = [p.port for p in backend.pods(Role.CANARY)]

    def canary_failures() -> int:
        return sum(http_request("GET", port, "/", 2.0)[0] == 500 for port in ports for _ in range(10))
    assert backend.canary_share() < 1.0 and canary_failures() == 0
    if strategy == "rolling":
        backend.apply(ScaleVersion(Role.STABLE, 0))
    else:
        backend.apply(SwitchActive(Role.CANARY))
    assert until(lambda: canary_failures() == 20, 5.0), "the defect did not show at full load"
    assert failed(answers(backend.urls()["user"], 20)) == 20
    if strategy == "rolling":
        backend.apply(ScaleVersion(Role.STABLE, 2))
        assert backend.wait_until(lambda: backend.observe()[0].ready == 2, 10.0)
    else:
        backend.apply(SwitchActive(Role.STABLE))
    assert until(lambda: canary_failures() == 0, 5.0), "the defect did not go with the load"


# --------------------------------------------------------------------------- side effects


def test_a_side_effects_version_counts_the_mirrored_writes_it_performs_again(tmp_path):
    """With DEMO_SIDE_EFFECTS, a mirrored POST is a duplicated write (counted); a user's
    POST and a mirrored GET are not; a version without it counts none."""
    for side_effects, expected in ((1, 2), (0, 0)):
        with run_demo(tmp_path, side_effects=side_effects) as demo:
            for headers, method in (({"X-Rolloutlab-Shadow": "1"}, "POST"), ({"X-Rolloutlab-Shadow": "1"}, "POST"),
                                    ({}, "POST"), ({"X-Rolloutlab-Shadow": "1"}, "GET")):
                assert demo.client.request(method, demo.url + "/orders", headers=headers).status_code == 200
            counted = counters_from_exposition(demo.get("/metrics").text, "demo_duplicated")
            assert sum(c.requests for c in counted.values()) == expected


@needs_haproxy
def test_a_mirror_of_every_request_makes_a_side_effects_release_repeat_the_writes(backend):
    """mirror-duplicates-writes with mirror-everything, run live (4 minutes at 30x): every
    mirrored write reaches the new version, which performs it again; about a quarter of the
    mirrored requests are writes (write_share 0.25), and the row counts them as harm."""
    from rolloutlab.live.session import run_live

    world = load_scenario(LIBRARY / "mirror-duplicates-writes.yaml").model_copy(update={"duration": 240.0})
    spec = load_strategy(LIBRARY / "strategies" / "mirror-everything.yaml").with_replicas(2)
    plan = make_plan(world, spec, release="bad", time_scale=30.0)
    row = run_live(world, spec, backend, plan, time_scale=30.0, seed=2, max_rps=40.0, max_wall_s=60.0).row
    low, high = stats.binom.interval(0.999, row["mirrored_requests"], 0.25)
    assert row["mirrored_requests"] > 40 and low <= row["duplicated_writes"] <= high, row
    assert row["change_failed"]


# --------------------------------------------------------------------------- the library


UNSUPPORTED_LOCAL = {
    "downstream-dependency-defect": "users enter through shop",
    "traffic-spike": "traffic profile",
}
UNSUPPORTED_KUBE = {
    **UNSUPPORTED_LOCAL,
    "expand-contract-migration": "local backend only",
    "migration-contract-too-early": "local backend only",
    "full-traffic-only": "full_load_only",
    "zone-outage-during-switch": "zone_outage",
}


@pytest.mark.parametrize("path", sorted(LIBRARY.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_library_scenario_runs_live_or_says_why_not(path):
    """Each library scenario has a live form on the local backend, or LiveUnsupported names
    the reason; the same on Kubernetes, where fewer kinds run."""
    world = load_scenario(path)
    for backend_type, unsupported in ((LocalBackend, UNSUPPORTED_LOCAL), (KubeBackend, UNSUPPORTED_KUBE)):
        if path.stem in unsupported:
            with pytest.raises(LiveUnsupported, match=unsupported[path.stem]):
                check_live_form(world, backend_type)
        else:
            check_live_form(world, backend_type)


# --------------------------------------------------------------------------- a whole live run


@needs_haproxy
def test_a_live_blue_green_run_meets_the_full_load_defect_only_after_its_switch(backend, tmp_path):
    """run_live, end to end: the blue-green preview (no users) answers the preview traffic
    without failing, the switch gives the new version every user and the defect shows
    (half its answers fail), and the post-promotion analysis rolls it back."""
    from rolloutlab.live.session import run_live

    world = scenario(tmp_path, duration="6m", traffic={"rps": 30, "preview_rps": 10}, release={
        "defect_probability": 1, "defects": [{"kind": "full_load_only", "traffic_share_threshold": 1.0,
                                              "error_rate": 0.5}]})
    spec = load_strategy("blue-green")
    plan = make_plan(world, spec, release="bad", time_scale=30.0)
    result = run_live(world, spec, backend, plan, time_scale=30.0, seed=3, max_rps=40.0, max_wall_s=60.0)
    records = result.records
    new = records[records["version"] == "v2"]
    preview, users = new[new["target"] == "preview"], new[new["target"] == "user"]
    errors = {r.value for r in ERROR_RESULTS}
    before_switch = preview[preview["at"] < users["at"].min()]  # afterwards the preview is the active version too
    assert len(before_switch) > 20 and before_switch["result"].isin(errors).sum() == 0
    low, high = stats.binom.interval(0.999, len(users), 0.5)
    assert len(users) > 20 and low <= users["result"].isin(errors).sum() <= high
    assert result.row["outcome"] == "rolled_back" and result.row["change_failed"]


def test_the_services_below_the_one_under_test_start_callees_first(tmp_path):
    """web -> api -> db: db starts before api (api's calls need db's address), and web's
    pods call api with the edge's calls and propagation."""
    from rolloutlab.live.scenario_faults import dependency_specs

    world = scenario(tmp_path, services=[
        {**BASE["services"][0], "name": "web", "under_test": True},
        {"name": "api", "replicas": 2, "capacity_rps": 500}, {"name": "db", "replicas": 2, "capacity_rps": 500}],
        dependencies=[{"caller": "web", "callee": "api", "calls_per_request": 2, "error_propagation": 0.3},
                      {"caller": "api", "callee": "db", "calls_per_request": 0.5, "error_propagation": 1}])
    specs, calls = dependency_specs(world)
    assert [s.name for s in specs] == ["db", "api"]
    assert [(c.callee, c.calls_per_request, c.error_propagation) for c in specs[1].calls] == [("db", 0.5, 1.0)]
    assert [(c.callee, c.calls_per_request, c.error_propagation) for c in calls] == [("api", 2.0, 0.3)]


@pytest.mark.parametrize("fault, reason", [
    ({"kind": "dependency_failure", "at": "0s", "service": "web"}, "does not post faults"),
    ({"kind": "latency_injection", "at": "0s", "service": "web"}, "does not post faults"),
    ({"kind": "zone_outage", "at": "0s", "zone": "a"}, "zone_outage"),
], ids=["dependency failure", "latency injection", "zone outage"])
def test_a_fault_kubernetes_cannot_inject_is_refused_with_the_reason(tmp_path, fault, reason):
    """On the Kubernetes backend these faults have no live form yet: said before anything starts."""
    with pytest.raises(LiveUnsupported, match=reason):
        check_live_form(scenario(tmp_path, web={"zones": ["a"]}, faults=[fault]), KubeBackend)
    check_live_form(scenario(tmp_path, web={"zones": ["a"]}, faults=[fault]), LocalBackend)
