"""The dry run behind `rolloutlab plan` reports exact event times: it moves from event to
event (the controller's requeue time, a pod becoming ready, a change of pod counts, an
operator passing a gate), never on a polling grid."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rolloutlab.strategies import StrategySpec, load_strategy
from rolloutlab.strategies.actions import EventReason
from rolloutlab.strategies.dry_run import IdealWorld
from rolloutlab.strategies.status import PauseReason


def make_spec(strategy: dict, **extra) -> StrategySpec:
    return StrategySpec.model_validate({"name": "t", "replicas": 10, "strategy": strategy, **extra})


def times(world: IdealWorld, reason: EventReason) -> list[float]:
    return [e.at for e in world.events() if e.reason is reason]


# (strategy, pods' start delay, event, the times it happens at)
BUNDLED_TIMES = [
    # canary: setWeight 10 done when the canary pod is ready; each 2m pause ends exactly 120s later
    ("canary", 10.0, EventReason.STEP_COMPLETED, [10.0, 130.0, 140.0, 260.0, 270.0, 390.0]),
    ("canary", 10.0, EventReason.RESUMED, [130.0, 260.0, 390.0]),
    ("canary", 10.0, EventReason.PROMOTED, [410.0]),  # 100%: 5 more canary pods (10s), then the rest (10s)
    ("canary", 7.0, EventReason.STEP_COMPLETED, [7.0, 127.0, 134.0, 254.0, 261.0, 381.0]),
    # blue-green: preview ready at 10s, 4 measurements of 30s, switch, 4 more, promote
    ("blue-green", 10.0, EventReason.SWITCHED, [130.0]),
    ("blue-green", 10.0, EventReason.PROMOTED, [250.0]),
    ("blue-green", 25.0, EventReason.SWITCHED, [145.0]),
    # rolling, 25%/25% of 10 pods: two waves of readiness
    ("rolling", 7.0, EventReason.PROMOTED, [14.0]),
    ("rolling", 10.0, EventReason.PROMOTED, [20.0]),
]


@pytest.mark.parametrize("name, delay, reason, expected", BUNDLED_TIMES,
                         ids=[f"{n}-{d:g}s-{r.value}" for n, d, r, _ in BUNDLED_TIMES])
def test_bundled_strategy_event_times_are_exact(name, delay, reason, expected):
    """A healthy release of a bundled strategy passes its events at exactly the times its pauses, pod start and analysis intervals add up to."""
    world = IdealWorld(load_strategy(name).with_replicas(10), start_delay=delay)
    world.run(until=3600)
    assert times(world, reason) == expected


def test_a_pause_after_pods_ready_ends_exactly_its_duration_later():
    """A 2m pause after pods that are ready at 10s ends at exactly 130s."""
    world = IdealWorld(make_spec({"canary": {"steps": [{"setWeight": 20}, {"pause": {"duration": "2m"}}]}}))
    world.run(until=3600)
    assert times(world, EventReason.PAUSED) == [10.0]
    assert times(world, EventReason.RESUMED) == [130.0]


def test_the_operator_passes_a_gate_exactly_gate_seconds_after_it_is_reached():
    """With an operator, a manual gate reached at 10s is passed at 10s + gate_seconds, once per gate."""
    spec = make_spec({"canary": {"steps": [{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}]}})
    world = IdealWorld(spec, gate_seconds=45.0)
    status = world.run(until=3600)
    assert status.outcome == "promoted"
    assert times(world, EventReason.PAUSED) == [10.0, 65.0]  # 50%: 3 more canary pods ready 10s after 55s
    assert times(world, EventReason.STEP_COMPLETED)[1::2] == [55.0, 110.0]
    assert world.gates_passed == 2


def test_without_an_operator_the_run_stops_at_a_gate():
    """Without an operator the run returns at the gate's time, since nothing can happen without a command."""
    world = IdealWorld(make_spec({"canary": {"steps": [{"setWeight": 20}, {"pause": {}}]}}))
    status = world.run(until=3600)
    assert status.pause_reason is PauseReason.CANARY_PAUSE_STEP
    assert world.now == 10.0
    assert len(world.log) <= 6  # a handful of calls, not one per polling tick until the horizon


def test_the_progress_deadline_is_exceeded_exactly_on_time():
    """Pods that never become ready exceed a 120s progressDeadlineSeconds at exactly 120s."""
    spec = make_spec({"canary": {"steps": [{"setWeight": 20}]}}, progressDeadlineSeconds=120)
    world = IdealWorld(spec, start_delay=10**9)
    world.run(until=600)
    assert times(world, EventReason.DEADLINE_EXCEEDED) == [120.0]


def test_measurements_fall_exactly_on_their_intervals():
    """A background analysis every 30s measures at exactly 30s steps from when it started."""
    world = IdealWorld(load_strategy("canary").with_replicas(10))
    world.run(until=3600)
    assert times(world, EventReason.MEASUREMENT)[:4] == [40.0, 70.0, 100.0, 130.0]


def test_a_polling_tick_does_not_move_event_times():
    """Reconciling every second as well (a polling runner) reports the same event times."""
    exact, polled = (IdealWorld(load_strategy("canary").with_replicas(10)) for _ in range(2))
    exact.run(until=3600)
    polled.run(until=3600, tick=1.0)
    assert [(e.at, e.reason) for e in exact.events()] == [(e.at, e.reason) for e in polled.events()]


@pytest.mark.parametrize("strategy, rows, ending", [
    ("canary", [("130", "pause over"), ("140", "step 2 (setWeight) completed")], "promoted after 410s"),
    ("tests/fixtures/argo/canary-basic.yaml", [("3620", "paused at step 3 until promoted"),
                                                ("3680", "promote at step 3")], "promoted after 3710s"),
], ids=["bundled-canary", "manual-gate"])
def test_plan_prints_exact_times(strategy, rows, ending):
    """`rolloutlab plan` prints each event at its exact time and passes a manual gate --gate-seconds after it is reached."""
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, "-m", "rolloutlab.cli", "plan", strategy, "--gate-seconds", "60"],
                            cwd=root, capture_output=True, text=True, timeout=120, check=False, env={**os.environ, "COLUMNS": "140"})
    assert result.returncode == 0, result.stderr
    table = {(m.group(1), m.group(2).strip()) for m in re.finditer(r"│\s+(\d+) │ ([^│]+)│", result.stdout)}
    for row in rows:
        assert row in table
    assert ending in result.stdout
