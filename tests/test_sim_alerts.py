"""Alert windows right after the rollout starts hold the traffic served before it: the
stable version at its baseline, so the first window is as long as every other."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from rolloutlab.scenarios.release import draw_release, make_streams
from rolloutlab.scenarios.schema import Scenario
from rolloutlab.sim.run import simulate
from rolloutlab.sim.world import World
from rolloutlab.strategies import StrategySpec

FAST_PODS = {"schedule_delay": 0, "start_delay": 10, "readiness": {"period": 1, "success_threshold": 1}}
QUIET_HEALTH_CHECK = {"interval": 3600, "unhealthy_threshold": 1000}

BLUE_GREEN_AT_10S = StrategySpec.model_validate({
    "name": "switch-at-10s", "replicas": 4,
    "strategy": {"blueGreen": {"autoPromotionEnabled": True, "scaleDownDelaySeconds": 0}},
})
"""All users move to the new version when its pods are ready, at 10 s."""


def scenario(defect: dict[str, Any] | None, alert: dict[str, Any], baseline: float = 0.0) -> Scenario:
    release = {"defect_probability": 1.0, "defects": [defect]} if defect else {"defect_probability": 0.0}
    return Scenario.model_validate({
        "name": "alerts",
        "duration": "10m",
        "services": [{"name": "web", "replicas": 4, "capacity_rps": 1000, "baseline_error_rate": baseline,
                      "latency": {"median_ms": 10, "p99_ms": 20}, "pod_timing": FAST_PODS}],
        "traffic": {"rps": 100, "preview_rps": 0},
        "release": release,
        "monitoring": {"alerts": [{"window": 60, "evaluation_interval": 15, "for": 0, **alert}],
                       "health_check": QUIET_HEALTH_CHECK},
        "response": {"response_time": "1h"},
    })


def test_the_first_window_holds_a_full_window_of_traffic():
    """At the first evaluation (15 s) a 60 s window holds 60 s of traffic: 45 s served
    before the rollout and 15 s after, about 6,000 requests at 100 rps (not 1,500), with
    the stable's baseline error rate."""
    sc = scenario(None, {"name": "errors", "metric": "error_rate", "threshold": 0.5}, baseline=0.01)
    streams = make_streams(np.random.SeedSequence(3))
    world = World(sc, BLUE_GREEN_AT_10S, draw_release(sc, streams["release"]), streams)
    world.start(horizon=600.0)
    world.env.run(until=15.0)
    world.sync()  # what an evaluation at 15 s does first
    requests_before, errors_before = world.monitor.total_at(-45.0)
    requests, errors = world.total_requests - requests_before, world.total_errors - errors_before
    assert -requests_before > 4000  # 45 s before t = 0
    assert 5500 < requests < 6500  # Poisson(6000): more than 6 standard deviations either side
    assert 0.005 < errors / requests < 0.015


@pytest.mark.parametrize(
    "defect, alert",
    [
        ({"kind": "error_rate", "error_rate": 1.0}, {"name": "errors", "metric": "error_rate", "threshold": 0.25}),
        ({"kind": "latency", "added_ms": 2000}, {"name": "slow", "metric": "latency_p99", "threshold": 1000}),
    ],
    ids=["error-rate", "latency-p99"],
)
def test_an_alert_does_not_fire_on_the_first_seconds_of_a_bad_version(defect, alert):
    """All users reach a failing (or 2 s slower) version at 10 s. At the 15 s evaluation
    the window holds 5 s of it in 60 s (8%: below a 25% error threshold, and 0.4% of
    answers slow: the p99 stays fast); at 30 s it holds 20 s (33%), so the alert fires
    then. Without the traffic from before the rollout the window would be 5 s in 15 s
    (33%) and fire at 15 s."""
    sc = scenario(defect, alert)
    if alert["metric"] == "latency_p99":  # 2% of users on the slow version: 1.7% of the window by 30 s
        spec = StrategySpec.model_validate({"name": "router", "replicas": 4, "strategy": {"canary": {
            "trafficRouting": "router", "steps": [{"setWeight": 5}, {"pause": {}}]}}})
    else:
        spec = BLUE_GREEN_AT_10S
    row = simulate(sc, spec, 0, np.random.SeedSequence(7)).row
    assert (row["detected_at"], row["detected_by"]) == (30.0, "alert")
