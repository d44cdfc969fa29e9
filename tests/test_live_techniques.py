"""Each technique live on the local backend, with its real router or flag provider: nginx
mirroring to HAProxy, HAProxy's header routes, the OpenFeature SDK + flagd provider in the
demo service. One time-compressed run each, real traffic with user identities, checked
against what the technique promises users."""

from __future__ import annotations

import math

from rolloutlab.live.local import LocalBackend
from rolloutlab.live.session import make_plan, run_live
from rolloutlab.scenarios.schema import Scenario
from rolloutlab.strategies import load_strategy
from tests.outside_systems import needs_haproxy, needs_nginx

pytestmark = [needs_haproxy, needs_nginx]

SCALE = 20.0
STAFF = {"name": "staff", "users": 0.2, "headers": {"x-user-group": "internal"}}
OPTED_IN = {"name": "opted-in", "users": 0.2, "headers": {"cookie": "session=abc; canary=always"}}


def scenario(error_rate: float = 0.3) -> Scenario:
    # Segments large enough that a 30 s analysis window at 60 requests per wall second
    # holds enough of their requests to judge (the standard scenario's 2% would not).
    return Scenario.model_validate({
        "name": "techniques", "duration": "8m",
        "services": [{"name": "web", "replicas": 3, "capacity_rps": 200, "baseline_error_rate": 0.0,
                      "latency": {"median_ms": 5, "p99_ms": 50},
                      "pod_timing": {"schedule_delay": 0, "start_delay": 5, "readiness": {"period": 5}}}],
        "traffic": {"rps": 1000, "users": 300, "write_share": 0.2, "segments": [STAFF, OPTED_IN]},
        "release": {"defect_probability": 1.0, "defects": [{"kind": "error_rate", "error_rate": error_rate}]},
        "monitoring": {"alerts": []},
    })


def live(strategy: str, tmp_path, release: str = "bad"):
    sc, spec = scenario(), load_strategy(strategy).with_replicas(3)
    plan = make_plan(sc, spec, release=release, time_scale=SCALE)
    with LocalBackend(tmp_path / "state", seed=1) as backend:
        run = run_live(sc, spec, backend, plan, time_scale=SCALE, seed=3, max_rps=60, max_wall_s=120)
        pids = (backend.router_pid, backend.mirror_pid)
    return run, plan, pids


def test_a_shadow_judges_copies_and_rolls_back_before_any_user_meets_the_release(tmp_path):
    """nginx copies reads to the new version; its failures on the copies fail its analysis;
    no user request is ever answered by it."""
    run, plan, (router, mirror) = live("shadow-then-canary", tmp_path)
    row, records = run.row, run.records
    assert mirror is not None and router is not None  # nginx and HAProxy both ran
    assert row["outcome"] == "rolled_back" and row["detected_by"] == "analysis", row["outcome"]
    assert row["mirrored_requests"] > 50  # copies the new version served, from its own metrics
    assert (records["version"] == plan.canary.name).sum() == 0  # users never got its answer
    assert row["users_affected"] == 0 and row["release_failures"] == 0


def test_a_header_route_gives_the_new_version_to_staff_only(tmp_path):
    """While the staff route holds (before any weight), every answer from the new version
    went to a staff request, and staff got it on every request: sticky by header."""
    run, plan, _ = live("header-canary", tmp_path)
    records = run.records
    first_weight = min((e.at for e in run.summary.timeline if e.declared_weight > 0), default=math.inf)
    early = records[(records["at"] < first_weight) & records["version"].notna()]
    on_new = early[early["version"] == plan.canary.name]
    assert len(on_new) > 20
    assert set(on_new["segment"]) == {"staff"}
    route_on = min(at for at, what in run.summary.applied if what.startswith("SetHeaderRoute"))
    route_off = run.summary.status.aborted_at  # the route goes with the abort
    staff_later = early[(early["segment"] == "staff") & (early["at"] > route_on + 5) & (early["at"] < route_off - 5)]
    assert len(staff_later) > 20
    assert (staff_later["version"] == plan.canary.name).mean() > 0.95
    assert run.row["outcome"] == "rolled_back"  # 30% errors on staff fail the segment analysis
    # only staff met the release: at most their share of the users
    assert 0 < run.row["users_affected"] <= 0.2 + 1e-9


def test_an_ab_test_routes_the_cookie_users_and_promotes_a_good_release(tmp_path):
    """Opted-in users (cookie) get the new version through the iterations; then everyone."""
    run, plan, _ = live("ab-test", tmp_path, release="good")
    records = run.records
    assert run.row["outcome"] == "promoted", run.summary.status.abort_reason or run.summary.status.message
    promoted = run.summary.status.completed_at
    during = records[(records["at"] < promoted - 5) & records["version"].notna()]
    on_new = during[during["version"] == plan.canary.name]
    assert len(on_new) > 20 and set(on_new["segment"]) == {"opted-in"}
    after = records[(records["at"] > promoted + 5) & records["version"].notna()]
    assert len(after) > 20 and (after["version"] == plan.canary.name).all()


def test_a_flag_turned_off_restores_users_within_the_providers_reload(tmp_path):
    """The dark deploy serves everyone the old path; the flag goes on for staff, its users
    fail, analysis turns it off; flag-on answers stop within the flagd provider's reload
    (measured), and the pods keep the new version."""
    run, plan, _ = live("feature-flag", tmp_path)
    row, records = run.row, run.records
    assert row["outcome"] == "rolled_back", run.summary.status.message
    on = records[records["variant"] == "on"]
    assert len(on) > 10 and set(on["segment"]) == {"staff"}  # only the cohort had the flag on
    assert on["result"].isin(["app_5xx"]).mean() > 0.15  # the flagged path fails 30%
    off = records[(records["variant"] == "off") & (records["version"] == plan.canary.name)]
    assert len(off) > 100 and (off["result"] == "app_5xx").mean() < 0.02  # the dark code path is healthy
    assert 0 <= row["flag_off_lag"] < 2.0  # provider's reload (polls about every 0.5 s)
    assert run.summary.status.deployed_at is not None
    assert run.summary.timeline[-1].canary_replicas == 3  # a flag does not roll pods back
    assert 0 < row["users_affected"] <= 0.2 + 1e-9
