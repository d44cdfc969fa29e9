"""Readiness probes, the termination grace period and monitoring's health check.

A pod failing its readiness probe ``failure_threshold`` times in a row leaves the
endpoints and comes back after ``success_threshold`` passes; requests in flight on a
deleted pod have ``termination_grace`` to finish; the health check pages once
``unhealthy_threshold`` checks in a row fail. The checks are decided from pre-drawn
uniforms (``sim.probes.CheckSeries``): the first tests pin that machinery against the
run-length law it must follow.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import simpy

from rolloutlab.scenarios import load_scenario
from rolloutlab.scenarios.release import draw_release, make_streams
from rolloutlab.scenarios.schema import PodKillFault, Scenario
from rolloutlab.sim.probes import LOOKAHEAD, CheckSeries
from rolloutlab.sim.run import simulate
from rolloutlab.sim.world import World
from rolloutlab.strategies import Role, load_strategy

LIBRARY = "scenarios/library"

# --------------------------------------------------------------------------- the check series


class Flips:
    """A series on its own clock, recording when it flips."""

    def __init__(self, to_fail: int, to_pass: int, seed: int = 0, period: float = 5.0) -> None:
        self.env = simpy.Environment()
        self.at: list[tuple[float, bool]] = []
        self.series = CheckSeries(self.env, np.random.default_rng(seed), 0.0, period, to_fail, to_pass,
                                  lambda s: self.at.append((self.env.now, s.up)))

    def set(self, at: float, q: float) -> None:
        """From ``at`` on, checks fail with probability ``q``."""
        if at > self.env.now:
            self.env.run(until=at)
        self.series.set_failure_probability(q)


def test_certain_failures_take_a_series_down_at_the_threshold_and_passes_bring_it_back():
    """Checks every 5 s that all fail from 12 s flip it down at the 3rd (25 s); all pass
    from 32 s and it is up again at the 2nd (40 s)."""
    f = Flips(to_fail=3, to_pass=2)
    f.set(12.0, 1.0)
    f.set(32.0, 0.0)
    f.env.run(until=100.0)
    assert f.at == [(25.0, False), (40.0, True)]


def test_going_down_starts_the_count_of_passes_afresh():
    """Down at 25 s after three failures; passes from 27 s bring it back at the second
    (35 s): the failures that took it down do not count toward coming back."""
    f = Flips(to_fail=3, to_pass=2)
    f.set(12.0, 1.0)
    f.set(27.0, 0.0)
    f.env.run(until=100.0)
    assert f.at == [(25.0, False), (35.0, True)]


def test_a_pass_in_between_starts_the_count_again():
    """A failure (at 5 s), a pass (10 s), then failures from 12 s: the series needs three
    new ones in a row and goes down at 25 s, not 20 s."""
    f = Flips(to_fail=3, to_pass=1)
    f.set(0.0, 1.0)
    f.set(7.0, 0.0)
    f.set(12.0, 1.0)
    f.env.run(until=100.0)
    assert f.at == [(25.0, False)]


def test_a_check_at_the_very_moment_of_a_change_was_sent_before_it():
    """A check at the time of a change is decided by the world before it (the checks of
    one moment never see each other's outcome): failures from 10 s with a threshold of 1
    flip it at the next check, 15 s."""
    f = Flips(to_fail=1, to_pass=1)
    f.set(10.0, 1.0)
    f.env.run(until=20.0)
    assert f.at[0] == (15.0, False)


def expected_checks_to_fail(q: float, k: int) -> float:
    """Mean number of checks until k failures in a row (each fails with q): the classic
    run-length formula (1 - q^k) / ((1 - q)·q^k)."""
    return (1.0 - q**k) / ((1.0 - q) * q**k)


@pytest.mark.parametrize(
    "q, k, nudge",
    [(0.3, 2, False), (0.05, 2, False), (0.05, 2, True)],
    ids=["short-runs", "longer-than-a-lookahead", "q-reset-mid-way"],
)
def test_time_to_fail_follows_the_run_length_law(q, k, nudge):
    """Over 600 series the mean number of checks before going down is the run-length
    mean (within 4 standard errors), also when the flip lies beyond one lookahead and
    when q is set anew (to itself, nudged) every 7 s, which re-decides the checks so far."""
    mean = expected_checks_to_fail(q, k)
    counts = []
    for seed in range(600):
        f = Flips(to_fail=k, to_pass=1, seed=seed, period=1.0)
        f.set(0.0, q)
        t = 0.0
        while not f.at:
            t += 7.0
            f.env.run(until=t)
            if nudge:
                f.series.set_failure_probability(q * (1.0 + 1e-12 * (int(t) % 2)))
        counts.append(f.at[0][0])  # checks at 1, 2, ... after q was set at 0: the flip at t is check t
    counts = np.asarray(counts)
    if q == 0.05:
        assert mean > LOOKAHEAD  # this case does cross lookaheads
    assert abs(counts.mean() - mean) < 4 * counts.std(ddof=1) / math.sqrt(len(counts))


# --------------------------------------------------------------------------- readiness in the world

FAST_START = {"schedule_delay": 0, "start_delay": 10}


def scenario(**overrides: Any) -> Scenario:
    base: dict[str, Any] = {
        "name": "probes",
        "duration": "10m",
        "services": [{"name": "web", "replicas": 4, "capacity_rps": 1000, "baseline_error_rate": 0,
                      "latency": {"median_ms": 10, "p99_ms": 20},
                      "pod_timing": {**FAST_START, "readiness": {"period": 5, "timeout": 1, "failure_threshold": 3,
                                                                 "success_threshold": 1}}}],
        "traffic": {"rps": 100, "preview_rps": 0},
        "release": {"defect_probability": 0.0},
        "monitoring": {"alerts": []},
    }
    base.update(overrides)
    return Scenario.model_validate(base)


SLOW_300_TO_360 = [{"kind": "latency_injection", "at": 300, "service": "web", "added_ms": 5000, "duration": 60}]
"""Every answer takes 5 s more from 300 s to 360 s: every probe (1 s timeout) fails."""


def world_for(sc: Scenario, strategy: str = "rolling", seed: int = 1) -> World:
    streams = make_streams(np.random.SeedSequence(seed))
    return World(sc, load_strategy(strategy).with_replicas(4), draw_release(sc, streams["release"]), streams)


def ready_at(world: World, t: float) -> int:
    """Ready pods at ``t`` (after everything that happened before it)."""
    world.env.run(until=t)
    return sum(world.cluster.ready_count(role, t) for role in (Role.STABLE, Role.CANARY))


def test_pods_failing_their_probe_leave_the_endpoints_and_come_back():
    """Answers take 5 s from 300 s (the probe's timeout is 1 s): the probes every 5 s after
    that fail, and at the third failure (315 s) every pod is out of the endpoints; answers
    are fast again from 360 s, the next probe (365 s) passes and they are back at once
    (success_threshold 1)."""
    world = world_for(scenario(faults=SLOW_300_TO_360))
    world.start(horizon=600.0)
    assert [ready_at(world, t) for t in (299.0, 314.9, 315.1, 364.9, 365.1, 400.0)] == [4, 4, 0, 0, 4, 4]


def test_users_fail_at_the_service_while_no_pod_is_ready():
    """With every pod out of the endpoints from 315 s to 365 s, the requests of those 50 s
    fail (about 5,000 at 100 rps) and no others do."""
    rows = [simulate(scenario(faults=SLOW_300_TO_360), load_strategy("rolling"), i,
                     np.random.SeedSequence(2, spawn_key=(i,))).row for i in range(20)]
    failed = np.array([r["failed_requests"] for r in rows])
    assert abs(failed.mean() - 5000) < 4 * math.sqrt(5000 / len(failed))


def test_without_the_injection_no_pod_ever_leaves():
    """Healthy answers (p99 20 ms against a 1 s timeout) never fail a probe: no request fails."""
    row = simulate(scenario(), load_strategy("rolling"), 0, np.random.SeedSequence(2)).row
    assert row["failed_requests"] == 0


# --------------------------------------------------------------------------- termination grace


def grace_scenario(grace: float) -> Scenario:
    """Answers take 2 s more from 200 s to 400 s; two of the four pods are deleted at 300 s."""
    sc = scenario(faults=[{"kind": "latency_injection", "at": 200, "service": "web", "added_ms": 2000, "duration": 200},
                          {"kind": "pod_kill", "at": 300, "count": 2}])
    data = sc.model_dump(by_alias=True)
    data["services"][0]["pod_timing"]["termination_grace"] = grace
    data["services"][0]["pod_timing"]["readiness"]["timeout"] = 10  # the slow answers still pass the probe
    return Scenario.model_validate(data)


def test_requests_longer_than_the_grace_period_fail_when_their_pod_is_deleted():
    """Two serving pods (25 rps each) are deleted while answers take 2 s plus about 10 ms:
    with a 1 s grace period, the requests in flight with more than 1 s to go fail, on
    average 2 · 25 · E[(L - 1 s)⁺] = 2 · 25 · 1.0104 s ≈ 50.5 per run."""
    sc = grace_scenario(1.0)
    assert isinstance(sc.faults[1], PodKillFault)
    rows = [simulate(sc, load_strategy("rolling"), i, np.random.SeedSequence(4, spawn_key=(i,))).row for i in range(300)]
    failed = np.array([r["failed_requests"] for r in rows], dtype=float)
    sigma = math.log(2.0) / 2.3263478740408408
    expected = 2 * 25 * (2.0 + 0.010 * math.exp(sigma**2 / 2) - 1.0)
    assert abs(failed.mean() - expected) < 4 * math.sqrt(expected / len(failed))


def test_a_grace_period_longer_than_every_answer_loses_nothing():
    """With 30 s of grace, the same deletions fail no request."""
    rows = [simulate(grace_scenario(30.0), load_strategy("rolling"), i, np.random.SeedSequence(4, spawn_key=(i,))).row
            for i in range(20)]
    assert all(r["failed_requests"] == 0 for r in rows)


# --------------------------------------------------------------------------- the health check


def health_scenario(alerts: list[dict[str, Any]]) -> Scenario:
    """Every request fails from 301 s to 361 s (a failed dependency of the service
    itself); the health check checks every 2 s and pages after 3 failures in a row."""
    return scenario(
        faults=[{"kind": "dependency_failure", "at": 301, "service": "web", "error_rate": 1.0, "duration": 60}],
        monitoring={"alerts": alerts, "health_check": {"interval": 2, "unhealthy_threshold": 3, "healthy_threshold": 2}},
        response={"response_time": "1h"},
    )


NEVER_FIRES = [{"name": "errors", "metric": "error_rate", "threshold": 1.0}]


def test_the_health_check_pages_after_its_threshold_of_failed_checks():
    """Checks at 302, 304 and 306 s fail: the service is down and the person is paged at
    306 s, long before a rule could fire."""
    row = simulate(health_scenario(NEVER_FIRES), load_strategy("rolling"), 0, np.random.SeedSequence(5)).row
    assert (row["detected_at"], row["detected_by"]) == (306.0, "alert")


def test_without_alert_rules_nobody_is_paged_by_the_health_check():
    """A scenario with ``alerts: []`` pages nobody, health check included."""
    row = simulate(health_scenario([]), load_strategy("rolling"), 0, np.random.SeedSequence(5)).row
    assert row["detected_by"] == "" and math.isnan(row["detected_at"])


# --------------------------------------------------------------------------- the library scenario


def test_the_flaky_health_check_scenario_flaps_pods_by_probe_failures():
    """The flaky-health-check scenario kills no pod: its pods leave the endpoints because
    their readiness probe times out, and come back."""
    sc = load_scenario(f"{LIBRARY}/flaky-health-check.yaml")
    assert not sc.faults
    result = simulate(sc, load_strategy("canary"), 0, np.random.SeedSequence(1), timeline=True)
    events = [e.reason for p in result.timeline for e in p.events]
    assert events.count("PodNotReady") >= 5 and events.count("PodReady") >= 5
