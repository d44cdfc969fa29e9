"""What the simulator decides, pinned to exact values: which requests a release exposed,
whose detection counts, when an alert fires, how harm that stops and starts again is
counted, and when a person's rollback takes effect.

The worlds here are deterministic where it matters: pods start in exactly 10 s, a router
sets exact weights, the bad version fails every request (or none), and the person's
times are fixed, so each event time is known to the second. An independent mutation
sample (small, bug-like edits of the simulator) survived the tests that existed before
these; each case below is one such edit the tests now notice.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from rolloutlab.scenarios.release import draw_release, make_streams
from rolloutlab.scenarios.schema import Scenario
from rolloutlab.sim.run import HORIZON_AFTER_WINDOW, simulate
from rolloutlab.sim.world import World
from rolloutlab.strategies import Role, StrategySpec

FAST_PODS = {"schedule_delay": 0, "start_delay": 10, "readiness": {"period": 1, "success_threshold": 1}}
QUIET_HEALTH_CHECK = {"interval": 3600, "unhealthy_threshold": 1000}
"""A health check that cannot page within these runs, so alert rules alone decide."""


def scenario(error_rate: float | None = 1.0, alert: dict[str, Any] | None = None, **overrides: Any) -> Scenario:
    """4 pods, 100 rps, no baseline errors; a release failing ``error_rate`` of its
    requests (None: a healthy release); at most one alert rule."""
    release = ({"defect_probability": 1.0, "defects": [{"kind": "error_rate", "error_rate": error_rate}]}
               if error_rate is not None else {"defect_probability": 0.0})
    base: dict[str, Any] = {
        "name": "decisions",
        "duration": "10m",
        "services": [{"name": "web", "replicas": 4, "capacity_rps": 1000, "baseline_error_rate": 0,
                      "pod_timing": FAST_PODS}],
        "traffic": {"rps": 100, "preview_rps": 0},
        "release": release,
        "monitoring": {"alerts": [alert] if alert else [], "health_check": QUIET_HEALTH_CHECK},
        "response": {"response_time": "5m", "rollback_duration": "1m"},
    }
    base.update(overrides)
    return Scenario.model_validate(base)


def router_canary(*steps: dict[str, Any]) -> StrategySpec:
    """A canary on a traffic router (exact weights), no analysis."""
    return StrategySpec.model_validate({"name": "router-canary", "replicas": 4,
                                        "strategy": {"canary": {"trafficRouting": "router", "steps": list(steps)}}})


ON_OFF_ON = router_canary({"setWeight": 20}, {"pause": {"duration": 60}}, {"setWeight": 0}, {"pause": {"duration": 60}},
                          {"setWeight": 20}, {"pause": {"duration": 60}}, {"setWeight": 0}, {"pause": {}})
"""20% of users from 10 s (the canary pod is ready) to 70 s, none until 140 s (the
canary is scaled down at 70 s; its new pod is ready 10 s after the step at 130 s), 20%
again until 200 s, then none and paused for good."""

HOLD_25 = router_canary({"setWeight": 25}, {"pause": {}})
"""25% of users on the new version from 10 s on, until someone aborts."""


def run_world(sc: Scenario, spec: StrategySpec, seed: int = 1) -> tuple[dict[str, Any], World]:
    """The row of run 0 and the world it came from (rebuilt from the same seed)."""
    row = simulate(sc, spec, 0, np.random.SeedSequence(seed)).row
    streams = make_streams(np.random.SeedSequence(seed))
    world = World(sc, spec, draw_release(sc, streams["release"]), streams)
    world.run(horizon=sc.duration + HORIZON_AFTER_WINDOW)
    assert world.window.requests == row["requests"], "the rebuilt world differs from simulate()"
    return row, world


# --------------------------------------------------------------------------- exposure


def test_a_healthy_release_exposes_nobody():
    """Users served by a healthy new version are not exposed: exposed_requests is 0."""
    row, world = run_world(scenario(error_rate=None), ON_OFF_ON)
    assert world.traffic[Role.CANARY].requests > 1000  # the new version did serve users
    assert row["exposed_requests"] == 0
    assert world.impact_periods == [] and not row["change_failed"]


def test_a_bad_release_exposes_exactly_the_users_it_served():
    """exposed_requests counts every user request the bad version answered, and nothing
    else (no preview traffic here, so that is all of its requests)."""
    row, world = run_world(scenario(error_rate=0.1), ON_OFF_ON)
    canary = world.traffic[Role.CANARY].requests
    assert canary > 1000
    assert row["exposed_requests"] == world.window.exposed_requests == canary


# --------------------------------------------------------------------------- impact periods


def test_harm_that_stops_and_starts_again_is_two_periods():
    """Harm from 10 s to 70 s and from 140 s to 200 s is two periods, 120 s of harm in
    all; time to restore runs from the first start to the last end (190 s)."""
    row, world = run_world(scenario(error_rate=0.1), ON_OFF_ON)
    assert world.impact_periods == [[10.0, 70.0], [140.0, 200.0]]
    assert world.impact_seconds(until=600.0) == 120.0
    assert (row["impact_started_at"], row["restored_at"], row["time_to_restore"]) == (10.0, 200.0, 190.0)
    assert row["ends_healthy"]


# --------------------------------------------------------------------------- alert timing

ERRORS_ABOVE_1_PERCENT = {"name": "errors", "metric": "error_rate", "threshold": 0.01, "window": 60,
                          "evaluation_interval": 15}
"""Breached from the first evaluation after the canary takes traffic (15 s: about 125
failed of 6,000 requests in the window, 2%) on, and ever more clearly after."""


@pytest.mark.parametrize(
    "for_, fires_at",
    [(0, 15.0), (15, 30.0), (30, 45.0), (40, 60.0)],
    ids=["for-0-fires-at-the-first-breach", "for-15s-one-tick-later", "for-30s-two-ticks-later",
         "for-40s-the-first-tick-after-40s"],
)
def test_an_alert_fires_exactly_for_after_its_condition_starts_holding(for_, fires_at):
    """The condition first holds at the 15 s evaluation; the alert fires at the first
    evaluation at least ``for`` later, never earlier nor later."""
    row, world = run_world(scenario(alert={**ERRORS_ABOVE_1_PERCENT, "for": for_}), HOLD_25)
    assert world.alert_fired_at == fires_at
    assert (row["detected_at"], row["detected_by"]) == (fires_at, "alert")


# --------------------------------------------------------------------------- detection and the person


def test_a_later_abort_does_not_overwrite_the_alerts_detection():
    """The alert detects at 15 s; the person's abort 6 minutes later rolls the release
    back but the earlier detection stands (detected_at 15 s, by the alert)."""
    row, world = run_world(scenario(alert=ERRORS_ABOVE_1_PERCENT), HOLD_25)
    assert world.status.aborted and row["human_action"] == "abort"
    assert row["outcome"] == "rolled_back_manual"
    assert (row["detected_at"], row["detected_by"]) == (15.0, "alert")


@pytest.mark.parametrize(
    "rollback_duration, restored_at",
    [("0s", 15.0 + 300.0), ("1m", 15.0 + 300.0 + 60.0), ("5m", 15.0 + 300.0 + 300.0)],
    ids=["instant-rollback", "1m-rollback", "5m-rollback"],
)
def test_aborting_a_rollout_in_progress_takes_the_rollback_duration(rollback_duration, restored_at):
    """Paged at 15 s, the person decides 5 minutes later; their abort of the rollout still
    in progress is issued ``rollback_duration`` after that decision, and users are off the
    bad version from then on (the router moves them at once)."""
    sc = scenario(alert=ERRORS_ABOVE_1_PERCENT, response={"response_time": "5m", "rollback_duration": rollback_duration})
    row, world = run_world(sc, HOLD_25)
    assert row["human_action"] == "abort"
    assert row["restored_at"] == restored_at
    assert world.status.restored_at == restored_at
