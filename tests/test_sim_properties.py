"""Properties every simulated run keeps, over generated valid scenarios.

Scenarios come from ``scenarios.generate.valid_scenarios`` (small worlds that use every
part of the schema); each is run under a bundled strategy with a random seed. The last
section keeps the minimal scenarios of simulator bugs these properties found (all fixed):
overlapping injected faults, a manual rollback after promotion, node faults on a
dependency, overlapping node faults.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rolloutlab.results.table import CONTRACT_DEFAULTS, RESULT_COLUMNS, Outcome, to_frame
from rolloutlab.scenarios import bundled_scenario, load_scenario
from rolloutlab.scenarios.generate import strategy_names, valid_scenarios
from rolloutlab.scenarios.release import draw_release, make_streams
from rolloutlab.scenarios.schema import Scenario
from rolloutlab.sim.montecarlo import run_many
from rolloutlab.sim.run import HORIZON_AFTER_WINDOW, simulate
from rolloutlab.sim.world import World
from rolloutlab.strategies import Role, StrategySpec, load_strategy

STRATEGY_NAMES = ("blue-green", "canary", "rolling")
SPECS: dict[str, StrategySpec] = {name: load_strategy(name) for name in STRATEGY_NAMES}
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
seeds = st.integers(0, 2**32 - 1)

ROLLED_BACK = {Outcome.ROLLED_BACK.value, Outcome.ROLLED_BACK_MANUAL.value, Outcome.FALSE_ROLLBACK.value}
EXTRA_COLUMN_TYPES = {"change_failed": bool, "time_to_restore": float, "final_canary_share": float, "ends_healthy": bool}
"""Simulator columns beyond the contract that the comparison and these properties read."""


def run_row(scenario: Scenario, name: str, seed: int) -> dict[str, Any]:
    return simulate(scenario, SPECS[name], 0, np.random.SeedSequence(seed)).row


def run_world(scenario: Scenario, name: str, seed: int) -> tuple[dict[str, Any], World]:
    """The row ``simulate`` gives, and the world it came from, rebuilt from the same seed
    so the end state (pods, routing, schema) can be looked at."""
    row = run_row(scenario, name, seed)
    streams = make_streams(np.random.SeedSequence(seed))
    release = draw_release(scenario, streams["release"])
    spec = SPECS[name]
    spec = spec if spec.replicas else spec.with_replicas(scenario.service_under_test.replicas)
    world = World(scenario, spec, release, streams)
    world.run(horizon=scenario.duration + HORIZON_AFTER_WINDOW)
    assert (world.window.requests, world.window.failed_requests) == (row["requests"], row["failed_requests"]), (
        "the rebuilt world differs from simulate(): make run_world mirror sim.run.simulate again"
    )
    return row, world


def same(a: Any, b: Any) -> bool:
    return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))


def present(value: float) -> bool:
    return not math.isnan(value)


# --------------------------------------------------------------------------- single runs


@PROPERTY
@given(valid_scenarios(), strategy_names, seeds)
def test_every_run_yields_a_row_with_every_contract_column_typed(scenario, name, seed):
    """A valid scenario never crashes the simulator, and its row has every contract column
    with its contract type (plus the simulator's own columns the comparison reads)."""
    row = run_row(scenario, name, seed)
    for column, dtype in RESULT_COLUMNS.items():
        assert column in row, f"missing contract column {column!r}"
        value = row[column]
        if dtype == "str":
            may_be_empty = CONTRACT_DEFAULTS.get(column) == ""  # e.g. detected_by: nothing caught it
            assert isinstance(value, str) and (value or may_be_empty), f"{column}={value!r} is not text"
        elif dtype == "int64":
            assert isinstance(value, int) and not isinstance(value, bool), f"{column}={value!r} is not an int"
        else:
            assert isinstance(value, float), f"{column}={value!r} is not a float"
    for column, kind in EXTRA_COLUMN_TYPES.items():
        assert isinstance(row[column], kind), f"{column}={row[column]!r} is not a {kind.__name__}"
    assert row["outcome"] in {o.value for o in Outcome}
    to_frame([row])  # the results table's own checks accept it


@PROPERTY
@given(valid_scenarios(), strategy_names, seeds)
def test_every_run_ends_with_users_on_a_version_that_is_kept_and_only_admitted_harm(scenario, name, seed):
    """How a run ends is what its row says.

    Terms: the release is *kept* when the rollout completed and nobody reverted it; a
    *finished* rollback is an aborted rollout whose stable is back at full strength, or a
    manual revert that went through (``finished_at`` is set); the *old version is broken
    by the schema* when the migration left a schema it cannot run on and no roll-forward
    repair happened (then rolling back cannot help, by design). At the end of every run:

    1. promoted and failed_undetected releases are kept, and a kept release carries all
       user traffic (``final_canary_share == 1``) unless no pod at all is ready (a zone or
       node outage at the end: users then fail at the Service);
    2. a rolled-back release (rolled_back, rolled_back_manual, false_rollback) whose
       rollback finished carries no user traffic (``final_canary_share == 0``);
    3. release harm still going on at the end (``not ends_healthy``) is admitted only by
       failed_undetected, by an old version broken by the schema, or by a rollout or
       rollback that never finished (stuck: e.g. blue-green paused on a preview analysis
       without data, or a rollback waiting for pods on lost nodes). So promoted,
       repaired_forward and finished rollbacks (the false rollback of a healthy release
       included) end healthy, and failed_undetected always means change_failed;
    4. users are routed only to a version the cluster is asked to run: when any pod is
       ready, every version with a user share has desired replicas > 0 (a stuck canary
       whose pods never became ready carries no traffic at all).
    """
    row, world = run_world(scenario, name, seed)
    now = world.env.now
    outcome, share = row["outcome"], row["final_canary_share"]
    kept = world.status.completed and world.reverted_at is None
    any_ready = any(world.cluster.ready_count(role, now) > 0 for role in (Role.STABLE, Role.CANARY))
    old_broken = not world.repaired and not world.schema_ok(Role.STABLE)  # the world's own schema rule
    rollback_finished = outcome in ROLLED_BACK and present(row["finished_at"])
    unfinished = not kept and not rollback_finished and outcome != Outcome.REPAIRED_FORWARD.value

    if outcome in (Outcome.PROMOTED.value, Outcome.FAILED_UNDETECTED.value):
        assert kept, f"{outcome} but the release was not kept"
    if kept and any_ready:
        assert share == 1.0, f"kept release ({outcome}) carries only {share:.0%} of users"
    if rollback_finished:
        assert share == 0.0, f"{outcome} finished but the release still carries {share:.0%} of users"
    if outcome == Outcome.FAILED_UNDETECTED.value:
        assert row["change_failed"]
    if not row["ends_healthy"]:
        assert outcome == Outcome.FAILED_UNDETECTED.value or old_broken or (unfinished and share > 0), (
            f"{outcome} ends with users harmed by the release (share {share:.0%}, human {row['human_action']!r})"
        )
    if any_ready:
        shares = world.shares(now)
        for role in (Role.STABLE, Role.CANARY):
            assert shares[role] == 0 or world.cluster.desired[role] > 0, (
                f"{outcome}: users are routed to the {role.value} version, which the cluster runs at 0 replicas"
            )


@PROPERTY
@given(valid_scenarios(), strategy_names, seeds)
def test_counts_rates_costs_and_times_stay_in_range(scenario, name, seed):
    """Failed requests never exceed requests, the peak error rate is a fraction, a run
    always costs pod time, restoring takes no negative time and nothing is detected
    before the rollout started."""
    row = run_row(scenario, name, seed)
    assert 0 <= row["failed_requests"] <= row["requests"]
    assert 0.0 <= row["peak_error_rate"] <= 1.0
    assert row["replica_seconds"] > 0
    if present(row["time_to_restore"]):
        assert row["time_to_restore"] >= 0
        assert row["restored_at"] >= row["impact_started_at"]
    if present(row["detected_at"]):
        assert row["detected_at"] >= row["started_at"]


@PROPERTY
@given(valid_scenarios(), strategy_names, seeds)
def test_the_same_seed_gives_the_same_row(scenario, name, seed):
    """Running a scenario twice with the same seed gives the same row, value for value."""
    first, second = run_row(scenario, name, seed), run_row(scenario, name, seed)
    assert list(first) == list(second)
    differing = {k: (first[k], second[k]) for k in first if not same(first[k], second[k])}
    assert not differing


# --------------------------------------------------------------------------- Monte Carlo executors


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_scenarios(max_duration=600), seeds)
def test_a_process_pool_gives_the_serial_table(scenario, seed):
    """run_many returns the identical table on a 2-process pool as in this process."""
    specs = [SPECS[name] for name in STRATEGY_NAMES]
    serial = run_many(scenario, specs, 4, seed, executor="serial", progress=False)
    pooled = run_many(scenario, specs, 4, seed, executor="process", workers=2, progress=False)
    pd.testing.assert_frame_equal(pooled, serial)


STANDARD_RUNS, STANDARD_SEED = 12, 20240917


@pytest.fixture(scope="module")
def standard_serial() -> pd.DataFrame:
    """The bundled standard scenario, all bundled strategies, 12 runs, in this process."""
    table = run_standard("serial")
    assert len(table) == 3 * STANDARD_RUNS and list(table["strategy"].unique()) == list(STRATEGY_NAMES)
    return table


def run_standard(executor: str, **options: Any) -> pd.DataFrame:
    scenario = load_scenario(bundled_scenario("standard"))
    return run_many(scenario, [SPECS[name] for name in STRATEGY_NAMES], STANDARD_RUNS, STANDARD_SEED,
                    executor=executor, progress=False, **options)


def test_the_standard_scenario_gives_the_serial_table_on_a_process_pool(standard_serial):
    """The standard scenario's table from a 2-process pool is the serial one."""
    pd.testing.assert_frame_equal(run_standard("process", workers=2), standard_serial)


@pytest.fixture(scope="module")
def dask_cluster_address():
    """A 2-worker Dask cluster of separate processes on 127.0.0.1, closed afterwards."""
    pytest.importorskip("distributed", reason="dask.distributed is not installed: pip install 'rolloutlab[dask]'")
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None,
    )
    client = Client(cluster, set_as_default=False)
    try:
        client.wait_for_workers(2, timeout=60)
        yield f"dask://{cluster.scheduler_address.split('://')[1]}"
    finally:
        client.close()
        cluster.close()


def test_the_standard_scenario_gives_the_serial_table_on_a_dask_cluster(standard_serial, dask_cluster_address):
    """The standard scenario's table from a Dask cluster of two worker processes is the serial one."""
    pd.testing.assert_frame_equal(run_standard(dask_cluster_address), standard_serial)


# --------------------------------------------------------------------------- known simulator bugs

FAST_PODS = {"schedule_delay": 0, "start_delay": 10, "readiness": {"period": 1, "success_threshold": 1}}


def small_scenario(**overrides: Any) -> Scenario:
    base: dict[str, Any] = {
        "name": "bug",
        "duration": "5m",
        "services": [{"name": "web", "replicas": 4, "capacity_rps": 1000, "baseline_error_rate": 0,
                      "pod_timing": FAST_PODS, "zones": ["a"], "nodes": 1}],
        "traffic": {"rps": 100, "preview_rps": 0},
        "release": {"defect_probability": 0.0},
        "monitoring": {"alerts": []},
    }
    base.update(overrides)
    return Scenario.model_validate(base)


OVERLAPPING = {
    "errors-sum-above-1": [
        {"kind": "dependency_failure", "at": 0, "service": "web", "error_rate": 0.6, "duration": 60},
        {"kind": "dependency_failure", "at": 10, "service": "web", "error_rate": 0.6, "duration": 60},
    ],
    "errors-residue-below-0": [
        {"kind": "dependency_failure", "at": 0, "service": "web", "error_rate": 0.1, "duration": 100},
        {"kind": "dependency_failure", "at": 10, "service": "web", "error_rate": 0.4, "duration": 10},
    ],
    "latency-residue-below-0": [
        {"kind": "latency_injection", "at": 0, "service": "web", "added_ms": 0.1, "duration": 100},
        {"kind": "latency_injection", "at": 10, "service": "web", "added_ms": 0.4, "duration": 10},
    ],
}


@pytest.mark.parametrize("faults", OVERLAPPING.values(), ids=list(OVERLAPPING))
def test_overlapping_injections_on_one_service_do_not_crash(faults):
    """Two dependency failures (or latency injections) on one service may overlap in time."""
    scenario = small_scenario(
        faults=faults,
        monitoring={"alerts": [{"name": "slow", "metric": "latency_p99", "threshold": 5000}]},
    )
    run_row(scenario, "rolling", 1)


def revert_scenario() -> Scenario:
    """A 10x slower release that error-rate analyses let through; a p99 alert pages
    someone who, 15 minutes later, finds it promoted and rolls it back."""
    return small_scenario(
        duration="20m",
        services=[{"name": "web", "replicas": 4, "capacity_rps": 1000, "baseline_error_rate": 0,
                   "pod_timing": FAST_PODS}],
        traffic={"rps": 100, "preview_rps": 10},
        release={"defect_probability": 1.0, "defects": [{"kind": "latency", "multiplier": 10}]},
        monitoring={"alerts": [{"name": "slow", "metric": "latency_p99", "threshold": 1000, "window": 60}]},
        response={"response_time": "15m", "rollback_duration": "1m"},
    )


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_the_revert_scenario_is_rolled_back_by_hand_after_promotion(name):
    """The revert scenario does reach a manual rollback of a promoted release under every
    strategy, so the bug test below checks what it claims."""
    row, world = run_world(revert_scenario(), name, 1)
    assert row["outcome"] == Outcome.ROLLED_BACK_MANUAL.value and row["human_action"] == "rollback"
    assert world.status.completed and world.reverted_at is not None
    assert row["final_canary_share"] == 0.0


@pytest.mark.parametrize(
    "name",
    [
        "canary",
        "blue-green",
        "rolling",
    ],
)
def test_a_manual_rollback_after_promotion_keeps_the_old_version_running(name):
    """When a human rolls back a promoted release, the old version they switched users to
    keeps all its replicas and serves them."""
    row, world = run_world(revert_scenario(), name, 1)
    assert world.cluster.desired[Role.STABLE] == 4
    assert world.cluster.ready_count(Role.STABLE, world.env.now) == 4
    assert row["failed_requests"] < 100  # with the bug: every request from the revert on


def test_a_node_loss_on_a_dependency_leaves_the_service_under_test_running():
    """Losing a node of a called service does not take down the service under test's pods."""
    scenario = small_scenario(
        services=[{"name": "web", "replicas": 4, "capacity_rps": 1000, "baseline_error_rate": 0,
                   "pod_timing": FAST_PODS, "zones": ["a"], "nodes": 1},
                  {"name": "db", "replicas": 3, "baseline_error_rate": 0, "zones": ["a"], "nodes": 3}],
        dependencies=[{"caller": "web", "callee": "db"}],
        faults=[{"kind": "node_loss", "at": 60, "service": "db", "count": 1, "duration": 120}],
    )
    row, _ = run_world(scenario, "rolling", 1)
    assert row["failed_requests"] < 100  # with the bug: every request for 120 s, about 12,000


def test_a_node_lost_for_good_stays_lost_when_an_overlapping_zone_outage_ends():
    """A node lost for good stays down even if its zone also had an outage that ended."""
    scenario = small_scenario(faults=[
        {"kind": "node_loss", "at": 60, "count": 1, "eviction_delay": 1000},
        {"kind": "zone_outage", "at": 90, "zone": "a", "duration": 30},
    ])
    _, world = run_world(scenario, "rolling", 1)
    assert world.cluster.down_nodes == {0}
