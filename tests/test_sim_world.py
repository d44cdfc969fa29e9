"""The simulated world against what must hold: analytic expectations, detection timing,
migrations, blast radius, faults and determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rolloutlab.scenarios.release import draw_release, make_streams
from rolloutlab.scenarios.schema import Scenario
from rolloutlab.sim.run import simulate
from rolloutlab.sim.world import World
from rolloutlab.strategies import Role, StrategySpec, load_strategy

FAST_PODS = {"schedule_delay": 0, "start_delay": 10, "readiness": {"period": 1, "success_threshold": 1}}


def scenario(**overrides) -> Scenario:
    base = {
        "name": "t",
        "duration": "10m",
        "services": [{"name": "web", "replicas": 4, "capacity_rps": 1000, "baseline_error_rate": 0,
                      "pod_timing": FAST_PODS}],
        "traffic": {"rps": 100, "preview_rps": 0},
        "release": {"defect_probability": 1.0, "defects": [{"kind": "error_rate", "error_rate": 0.1}]},
        "monitoring": {"alerts": []},
    }
    base.update(overrides)
    return Scenario.model_validate(base)


def strategy(body: dict, templates=(), **extra) -> StrategySpec:
    return StrategySpec.model_validate({"name": "s", "analysisTemplates": list(templates), "strategy": body, **extra})


def rows(sc: Scenario, spec: StrategySpec, n: int, seed: int = 1, fidelity: str = "fast") -> list[dict]:
    return [simulate(sc, spec, i, np.random.SeedSequence(seed, spawn_key=(i,)), fidelity).row for i in range(n)]


def test_undetected_constant_defect_fails_lambda_p_t_requests():
    """With detection disabled, a defect failing p of requests fails λ·p·T of them on average (T: time the bad version serves)."""
    sc = scenario()
    spec = strategy({"blueGreen": {"autoPromotionEnabled": True, "scaleDownDelaySeconds": 0}})
    runs = rows(sc, spec, 200)
    # the preview is ready 10 s after it is asked for (fixed timing), then takes all traffic until the window ends
    expected = 100 * 0.1 * (600 - 10)
    failed = np.array([r["failed_requests"] for r in runs])
    assert all(r["outcome"] == "failed_undetected" for r in runs)
    assert abs(failed.mean() - expected) < 4 * failed.std(ddof=1) / math.sqrt(len(failed))
    requests = np.array([r["requests"] for r in runs])
    assert abs(requests.mean() - 100 * 600) < 4 * requests.std(ddof=1) / math.sqrt(len(requests))


@pytest.mark.parametrize("interval, limit", [(10, 0), (10, 2), (30, 1), (20, 3)],
                         ids=["10s-limit0", "10s-limit2", "30s-limit1", "20s-limit3"])
def test_all_failing_analysis_rolls_back_interval_times_limit_plus_one_after_exposure(interval, limit):
    """An analysis whose every measurement fails detects I·(F+1) after the bad version is first exposed."""
    sc = scenario(release={"defect_probability": 1.0, "defects": [{"kind": "error_rate", "error_rate": 1.0}]})
    template = {"name": "e", "metrics": [{"name": "e", "interval": interval, "successCondition": "result < 0.05",
                                          "failureLimit": limit}]}
    spec = strategy({"canary": {"analysis": {"templates": [{"templateName": "e"}]},
                                "steps": [{"setWeight": 25}, {"pause": {"duration": "30m"}}]}}, [template])
    for row in rows(sc, spec, 20):
        assert row["outcome"] == "rolled_back" and row["detected_by"] == "analysis"
        exposure = row["impact_started_at"]
        # the analysis starts with the rollout; the canary is exposed once its pod is ready (10 s)
        assert row["detected_at"] == pytest.approx(interval * (limit + 1), abs=interval)
        assert row["detected_at"] - exposure <= interval * (limit + 1)


def test_same_seed_same_row_bit_for_bit():
    """The same scenario, strategy and seed give identical rows, timelines included."""
    sc, spec = scenario(), load_strategy("canary")
    a = simulate(sc, spec, 3, np.random.SeedSequence(9, spawn_key=(3,)), timeline=True)
    b = simulate(sc, spec, 3, np.random.SeedSequence(9, spawn_key=(3,)), timeline=True)
    assert list(a.row) == list(b.row)
    assert all(x == y or (isinstance(x, float) and math.isnan(x) and math.isnan(y)) for x, y in zip(a.row.values(), b.row.values()))
    assert a.timeline == b.timeline


def test_strategies_share_the_release_of_a_run():
    """Run i draws the same release for every strategy (common random numbers)."""
    sc = scenario(release={"defect_probability": 0.5})
    by_strategy = {name: [r["defect"] for r in rows(sc, load_strategy(name), 30)] for name in ("canary", "rolling")}
    assert by_strategy["canary"] == by_strategy["rolling"]
    assert 0 < by_strategy["canary"].count("none") < 30


def test_correct_expand_contract_migration_costs_nothing():
    """Expand before the deploy and contract after promotion: a healthy release sees no failure from the schema."""
    migration = {"initial_schema": 1, "steps": [{"name": "add", "kind": "expand", "at": "before_deploy"},
                                                 {"name": "drop", "kind": "contract", "at": "after_promotion"}],
                 "compatibility": {"old": {"max_schema": 2}, "new": {"min_schema": 2}}}
    sc = scenario(migration=migration, release={"defect_probability": 0.0})
    for row in rows(sc, load_strategy("canary"), 10):
        assert row["outcome"] == "promoted" and row["failed_requests"] == 0 and not row["change_failed"]


def test_contract_with_the_deploy_cannot_be_rolled_back():
    """A contract step run with the deploy breaks the old version: rollback does not restore, the team repairs forward."""
    migration = {"initial_schema": 1, "steps": [{"name": "add", "kind": "expand", "at": "before_deploy"},
                                                 {"name": "drop", "kind": "contract", "at": "with_deploy"}],
                 "compatibility": {"old": {"max_schema": 2}, "new": {"min_schema": 2}},
                 "rollforward_repair_time": "1h"}
    sc = scenario(migration=migration, release={"defect_probability": 0.0},
                  monitoring={"alerts": [{"name": "errors", "metric": "error_rate", "threshold": 0.05, "for": "1m"}]},
                  response={"response_time": "5m", "rollback_duration": "1m"})
    for row in rows(sc, load_strategy("canary"), 5):
        assert row["outcome"] == "repaired_forward" and row["detected_by"] == "alert"
        # harm starts at once (the stable breaks); the health check pages after the checks at
        # 2, 4 and 6 s fail, the person aborts 5 m + 1 m later and is done repairing 1 h after deciding
        assert row["detected_at"] == 6.0
        assert row["time_to_restore"] == 6 + 300 + 3600


def test_defect_raises_callers_error_rate_along_edges():
    """A defect in the service under test shows in its callers' error rate, amplified by calls per request."""
    def peak(calls: float) -> float:
        sc = scenario(
            services=[{"name": "front", "replicas": 4, "capacity_rps": 10000, "baseline_error_rate": 0, "pod_timing": FAST_PODS},
                      {"name": "web", "under_test": True, "replicas": 4, "capacity_rps": 10000, "baseline_error_rate": 0,
                       "pod_timing": FAST_PODS}],
            dependencies=[{"caller": "front", "callee": "web", "calls_per_request": calls}])
        spec = strategy({"blueGreen": {}})
        return max(r["peak_error_rate"] for r in rows(sc, spec, 3))
    one, three = peak(1), peak(3)
    assert one == pytest.approx(0.1)
    assert three == pytest.approx(1 - 0.9 ** 3)


def test_node_loss_takes_pods_out_until_they_are_replaced():
    """Losing a node takes its pods out of service at once; after the eviction delay they are recreated elsewhere."""
    sc = scenario(release={"defect_probability": 0.0},
                  faults=[{"kind": "node_loss", "at": "2m", "count": 1, "eviction_delay": "1m"}],
                  services=[{"name": "web", "replicas": 6, "nodes": 3, "zones": ["a", "b", "c"], "capacity_rps": 1000,
                             "baseline_error_rate": 0, "pod_timing": FAST_PODS}])
    spec = load_strategy("rolling").with_replicas(6)
    streams = make_streams(np.random.SeedSequence(4))
    world = World(sc, spec, draw_release(sc, streams["release"]), streams)
    world.start(horizon=600.0)
    world.env.run(until=119)
    before = world.cluster.ready_count(Role.CANARY, 119) + world.cluster.ready_count(Role.STABLE, 119)
    world.env.run(until=121)
    during = world.cluster.ready_count(Role.CANARY, 121) + world.cluster.ready_count(Role.STABLE, 121)
    lost = sum(1 for r in (Role.STABLE, Role.CANARY) for p in world.cluster.alive(r) if p.node in world.cluster.down_nodes)
    world.env.run(until=200)
    after = world.cluster.ready_count(Role.CANARY, 200) + world.cluster.ready_count(Role.STABLE, 200)
    assert before == 6 and lost >= 1 and during == 6 - lost and after == 6
    assert all(p.node not in world.cluster.down_nodes for r in (Role.STABLE, Role.CANARY) for p in world.cluster.alive(r))


def test_pre_promotion_failure_hurts_no_user():
    """A blue-green release caught by pre-promotion analysis on preview traffic is not a change failure."""
    sc = scenario(traffic={"rps": 100, "preview_rps": 20})
    spec = load_strategy("blue-green")
    for row in rows(sc, spec, 10):
        assert row["outcome"] == "rolled_back" and not row["change_failed"] and row["failed_requests"] == 0


def test_alert_and_human_roll_back_what_analysis_does_not_see():
    """Without analysis, an alert pages a human whose response time decides the time to restore."""
    sc = scenario(monitoring={"alerts": [{"name": "errors", "metric": "error_rate", "threshold": 0.05, "for": "1m",
                                          "window": "1m", "evaluation_interval": "15s"}]},
                  response={"response_time": "5m", "rollback_duration": "2m"})
    for row in rows(sc, load_strategy("rolling"), 10):
        assert row["outcome"] == "rolled_back_manual" and row["detected_by"] == "alert"
        # alert: breach seen at the first tick with a bad window, plus `for`; then 5 m response + 2 m rollback
        assert row["time_to_restore"] == pytest.approx(row["detected_at"] - row["impact_started_at"] + 300 + 120, abs=1)
