"""A canary with a baseline deployment (``canary.baseline``): Kayenta compares the canary
with fresh pods of the old version, as many as the canary's and taking as much traffic,
not with the long-running stable. The controller judges against the observation's
``baseline`` counters; the simulator runs and counts those pods."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rolloutlab.sim.run import simulate_run
from rolloutlab.strategies import Counters, Observation, RolloutStatus, VersionObservation, reconcile
from rolloutlab.strategies.spec import StrategySpec
from rolloutlab.workflows.compare import load_scenario_file


def spec(baseline: bool) -> StrategySpec:
    return StrategySpec.model_validate({
        "name": "kayenta-like",
        "replicas": 10,
        "analysisTemplates": [{"name": "t", "metrics": [{
            "name": "errors", "interval": "1m", "count": 1, "successCondition": "result <= 0.01",
        }]}],
        "strategy": {"canary": {"baseline": baseline, "steps": [{"setWeight": 10}, {"analysis": {"templates": [{"templateName": "t"}]}}]}},
    })


def test_analysis_observation_is_the_baseline_not_the_stable() -> None:
    """The same runner observation, judged two ways: the analysis sees the stable's
    counters without a baseline, the baseline's with one."""
    from rolloutlab.strategies.cycle import Cycle

    stable = VersionObservation(9, 9, 9, Counters(9000, 9))
    canary = VersionObservation(1, 1, 1, Counters(1000, 2))
    obs = Observation(60.0, stable, canary, baseline=Counters(1000, 1))
    assert Cycle(spec(False), RolloutStatus(started_at=0.0), obs).analysis_observation().stable.counters == stable.counters
    seen = Cycle(spec(True), RolloutStatus(started_at=0.0), obs).analysis_observation()
    assert seen.stable.counters == Counters(1000, 1) and seen.canary.counters == canary.counters


def test_no_baseline_reported_means_no_data_not_the_stable() -> None:
    """A runner that reports no baseline counters gives the analysis nothing to compare
    with: it must not silently judge against the stable instead."""
    from rolloutlab.strategies.cycle import Cycle

    stable = VersionObservation(9, 9, 9, Counters(9000, 9))
    obs = Observation(60.0, stable, VersionObservation(1, 1, 1, Counters(1000, 2)))
    seen = Cycle(spec(True), RolloutStatus(started_at=0.0), obs).analysis_observation()
    assert seen.stable.counters == Counters()
    status, _ = reconcile(spec(True), RolloutStatus(), obs)
    assert not status.aborted  # nothing is decided on no data at the first look


SCENARIO = load_scenario_file(Path(__file__).resolve().parents[1] / "scenarios" / "standard.yaml").scenario


def with_baseline(name: str):
    from rolloutlab.strategies.files import load_strategy

    s = load_strategy(name)
    canary = s.strategy.canary.model_copy(update={"baseline": True})
    return s.model_copy(update={"name": f"{name}+baseline", "strategy": s.strategy.model_copy(update={"canary": canary})})


def test_the_simulated_baseline_costs_pods_only_while_the_rollout_runs() -> None:
    from rolloutlab.strategies.files import load_strategy

    plain, based = load_strategy("canary"), with_baseline("canary")
    rows = {s.name: pd.DataFrame([simulate_run(SCENARIO, s, i, np.random.SeedSequence([2, i])) for i in range(10)])
            for s in (plain, based)}
    extra = rows["canary+baseline"]["replica_seconds"] - rows["canary"]["replica_seconds"]
    duration = rows["canary"]["rollout_duration"]
    # more pods while rolling out, never more than a whole extra fleet for the rollout's length
    assert (extra > 0).all() and (extra < 10 * duration).all()


def test_the_simulated_baseline_takes_as_much_traffic_as_the_canary() -> None:
    """Mid-rollout, the baseline's request count is close to the canary's (same share),
    and far below the stable's."""
    from rolloutlab.scenarios.release import ReleaseDraw, make_streams
    from rolloutlab.sim.world import World

    s = with_baseline("canary").with_replicas(10)
    world = World(SCENARIO, s, ReleaseDraw(None), make_streams(np.random.SeedSequence(4)))
    world.start(SCENARIO.duration)
    world.env.run(until=300.0)
    world.sync()
    obs = world._observe()
    assert obs.baseline is not None
    assert obs.baseline.requests == pytest.approx(obs.canary.counters.requests, rel=0.1)
    assert obs.baseline.requests < obs.stable.counters.requests / 2
