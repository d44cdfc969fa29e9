"""The shared controller, driven through documented behaviour in an ideal world.

Each test says in one sentence what must hold; the world is ``strategies.dry_run``:
pods ready a fixed time after they are asked for, deterministic traffic and errors.
"""

from __future__ import annotations

import pytest

from rolloutlab.strategies import (
    Command,
    Observation,
    Role,
    RolloutStatus,
    StrategySpec,
    VersionObservation,
    dump_status,
    load_status,
    load_strategy,
    reconcile,
)
from rolloutlab.strategies.actions import EventReason, ScaleVersion, SetCanaryWeight
from rolloutlab.strategies.dry_run import IdealWorld
from rolloutlab.strategies.status import AnalysisPhase, PauseReason, Phase

ERROR_RATE_TEMPLATE = {
    "name": "error-rate",
    "metrics": [{"name": "error-rate", "interval": "30s", "count": 4, "successCondition": "result < 0.02", "failureLimit": 1}],
}


def make_spec(strategy: dict, *, replicas: int = 10, templates=(ERROR_RATE_TEMPLATE,), **extra) -> StrategySpec:
    return StrategySpec.model_validate(
        {"name": "t", "replicas": replicas, "analysisTemplates": list(templates), "strategy": strategy, **extra}
    )


def bad_world(spec: StrategySpec, canary_error_rate: float = 0.10, **kw) -> IdealWorld:
    world = IdealWorld(spec, **kw)
    world.error_rate[Role.CANARY] = canary_error_rate
    return world


def reasons(world: IdealWorld) -> list[EventReason]:
    return [e.reason for e in world.events()]


@pytest.mark.parametrize("name", ["canary", "blue-green", "rolling"])
def test_bundled_strategies_promote_a_healthy_release(name):
    """Every bundled strategy promotes a release that does not fail, and ends with the old version at 0 pods."""
    world = IdealWorld(load_strategy(name).with_replicas(10))
    status = world.run(until=3600)
    assert status.outcome == "promoted" and status.phase is Phase.HEALTHY
    assert world.promoted == 1
    obs = world.observe()
    assert (obs.canary.replicas, obs.stable.replicas) == (10, 0)


@pytest.mark.parametrize("name", ["canary", "blue-green"])
def test_bundled_strategies_roll_back_a_failing_release(name):
    """A release failing 10% of requests is aborted by analysis and all traffic returns to a fully scaled stable."""
    world = bad_world(load_strategy(name).with_replicas(10))
    status = world.run(until=3600)
    assert status.outcome == "aborted" and status.restored_at is not None
    obs = world.observe()
    assert obs.stable.available == 10 and obs.canary.replicas == 0
    assert world.log[-1].effective_weight == 0


def test_blue_green_prepromotion_failure_never_exposes_users():
    """A blue-green release that fails pre-promotion analysis never receives the active Service."""
    world = bad_world(load_strategy("blue-green").with_replicas(10))
    world.run(until=3600)
    assert all(d.effective_weight == 0 for d in world.log)
    assert EventReason.SWITCHED not in reasons(world)


def test_blue_green_postpromotion_failure_switches_back_at_once():
    """A failing post-promotion analysis switches the active Service back while the old version is still scaled up."""
    spec = make_spec({"blueGreen": {"postPromotionAnalysis": {"templates": [{"templateName": "error-rate"}]},
                                    "abortScaleDownDelaySeconds": 60}})
    world = bad_world(spec)
    status = world.run(until=3600)
    assert status.aborted and status.active is Role.STABLE
    switches = [e for e in world.events() if e.reason is EventReason.SWITCHED]
    assert len(switches) == 2
    # stable kept all its pods the whole time, so the switch back is the whole rollback
    assert status.restored_at == switches[1].at
    assert min(d.stable_ready for d in world.log) == 10


@pytest.mark.parametrize(
    "interval, failure_limit",
    [(30, 0), (30, 2), (60, 1), (15, 3)],
    ids=["30s-limit0", "30s-limit2", "60s-limit1", "15s-limit3"],
)
def test_failing_step_analysis_aborts_after_interval_times_limit_plus_one(interval, failure_limit):
    """An analysis whose every measurement fails aborts interval x (failureLimit + 1) after it started."""
    template = {"name": "error-rate", "metrics": [
        {"name": "error-rate", "interval": interval, "count": 10, "successCondition": "result < 0.02", "failureLimit": failure_limit}]}
    spec = make_spec({"canary": {"steps": [{"setWeight": 20}, {"analysis": {"templates": [{"templateName": "error-rate"}]}}]}},
                     templates=[template])
    world = bad_world(spec)
    status = world.run(until=3600, tick=1)
    started = next(e.at for e in world.events() if e.reason is EventReason.ANALYSIS_STARTED)
    assert status.aborted_at - started == pytest.approx(interval * (failure_limit + 1))


def test_manual_gate_waits_for_promote():
    """An indefinite pause holds the rollout until a promote command arrives, and no longer."""
    spec = make_spec({"canary": {"steps": [{"setWeight": 50}, {"pause": {}}, {"setWeight": 80}]}})
    world = IdealWorld(spec)
    status = world.run(until=1800)
    assert status.phase is Phase.PAUSED and status.pause_reason is PauseReason.CANARY_PAUSE_STEP
    assert status.step_index == 1 and not status.completed
    world.command(Command.PROMOTE)
    assert world.run(until=3600).outcome == "promoted"


def test_timed_pause_lasts_its_duration():
    """A pause with a duration holds the step exactly that long and asks to be called back when it ends."""
    spec = make_spec({"canary": {"steps": [{"setWeight": 50}, {"pause": {"duration": "90s"}}]}})
    world = IdealWorld(spec)
    world.run(until=3600, tick=1000)  # the controller's requeue times drive it, not the tick
    paused = next(e.at for e in world.events() if e.reason is EventReason.PAUSED)
    resumed = next(e.at for e in world.events() if e.reason is EventReason.RESUMED)
    assert resumed - paused == pytest.approx(90)


def test_abort_command_rolls_back_and_retry_starts_again():
    """An abort command returns all traffic to the stable; retry then promotes from the first step."""
    world = IdealWorld(load_strategy("canary").with_replicas(10))
    world.run(until=200)
    world.command(Command.ABORT)
    status = world.run(until=1000)
    assert status.aborted and status.restored_at is not None and world.log[-1].effective_weight == 0
    world.command(Command.RETRY)
    status = world.run(until=4000)
    assert status.outcome == "promoted"
    assert reasons(world).count(EventReason.RETRIED) == 1


def test_a_command_is_applied_once_however_often_it_is_reported():
    """A command id seen before is ignored, so a runner may report the same command on every call."""
    spec = make_spec({"canary": {"steps": [{"setWeight": 50}, {"pause": {}}, {"pause": {}}]}})
    world = IdealWorld(spec)
    world.run(until=600)
    world.command(Command.PROMOTE)
    world.run(until=1200)
    assert world.status.step_index == 2 and world.status.pause_reason is PauseReason.CANARY_PAUSE_STEP


def test_promote_full_skips_remaining_steps():
    """promoteFull skips every remaining step and analysis and promotes."""
    spec = make_spec({"canary": {"steps": [{"setWeight": 10}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}]}})
    world = IdealWorld(spec)
    world.run(until=300)
    world.command(Command.PROMOTE_FULL)
    assert world.run(until=1200).outcome == "promoted"


def test_inconclusive_analysis_pauses_and_resume_continues():
    """An inconclusive analysis pauses the rollout; resume moves past it (Argo's behaviour)."""
    template = {"name": "band", "metrics": [{"name": "error-rate", "interval": 30, "count": 2,
                                             "successCondition": "result < 0.01", "failureCondition": "result > 0.2"}]}
    spec = make_spec({"canary": {"steps": [{"setWeight": 20}, {"analysis": {"templates": [{"templateName": "band"}]}}]}},
                     templates=[template])
    world = bad_world(spec, canary_error_rate=0.05)  # between success and failure: inconclusive
    status = world.run(until=900)
    assert status.phase is Phase.PAUSED and status.pause_reason is PauseReason.INCONCLUSIVE_ANALYSIS
    world.command(Command.RESUME)
    assert world.run(until=3600).outcome == "promoted"


def test_inconclusive_background_analysis_restarts_on_resume():
    """Resuming after an inconclusive background analysis starts a fresh background analysis."""
    template = {"name": "band", "metrics": [{"name": "error-rate", "interval": 30, "inconclusiveLimit": 0,
                                             "successCondition": "result < 0.01", "failureCondition": "result > 0.2"}]}
    spec = make_spec({"canary": {"analysis": {"templates": [{"templateName": "band"}]},
                                 "steps": [{"setWeight": 20}, {"pause": {"duration": "10m"}}]}}, templates=[template])
    world = bad_world(spec, canary_error_rate=0.05)
    world.run(until=600)
    assert world.status.pause_reason is PauseReason.INCONCLUSIVE_ANALYSIS
    world.error_rate[Role.CANARY] = 0.0
    world.command(Command.RESUME)
    assert world.run(until=3600).outcome == "promoted"
    keys = [a.key for a in world.status.analyses]
    assert "background" in keys and any(k.startswith("background@") for k in keys)


@pytest.mark.parametrize("abort", [False, True], ids=["deadline-degrades", "deadline-aborts"])
def test_progress_deadline(abort):
    """Pods that never become ready exceed progressDeadlineSeconds: the rollout degrades, or aborts with progressDeadlineAbort."""
    spec = make_spec({"canary": {"steps": [{"setWeight": 20}, {"pause": {}}]}},
                     progressDeadlineSeconds=120, progressDeadlineAbort=abort)
    world = IdealWorld(spec, start_delay=10**9)  # crash-looping canary: never ready
    status = world.run(until=600)
    assert status.deadline_exceeded and status.phase is Phase.DEGRADED
    assert status.aborted is abort
    exceeded = next(e.at for e in world.events() if e.reason is EventReason.DEADLINE_EXCEEDED)
    assert exceeded == pytest.approx(120, abs=5)


def test_paused_time_does_not_count_toward_the_deadline():
    """A long manual gate does not trip the progress deadline."""
    spec = make_spec({"canary": {"steps": [{"setWeight": 20}, {"pause": {}}]}}, progressDeadlineSeconds=60)
    world = IdealWorld(spec)
    status = world.run(until=1800)
    assert status.phase is Phase.PAUSED and not status.deadline_exceeded


def test_router_sets_exact_weights_after_the_canary_is_ready():
    """With a router the declared weight is applied exactly, and only once the canary has the pods to carry it."""
    spec = make_spec({"canary": {"trafficRouting": "router", "steps": [{"setWeight": 5}, {"pause": {"duration": 60}},
                                                                        {"setWeight": 33}, {"pause": {"duration": 60}}]}})
    world = IdealWorld(spec, start_delay=20)
    world.run(until=3600)
    weights = [a.weight for d in world.log for a in d.actions if isinstance(a, SetCanaryWeight)]
    assert weights == [5, 33, 100]
    for d in world.log:
        for a in d.actions:
            if isinstance(a, SetCanaryWeight) and a.weight < 100:
                assert d.canary_ready >= -(-a.weight * 10 // 100)


def test_router_abort_keeps_canary_until_abort_scale_down_delay():
    """After an abort with a router, traffic leaves the canary at once and its pods go abortScaleDownDelaySeconds later."""
    spec = make_spec({"canary": {"trafficRouting": "router", "abortScaleDownDelaySeconds": 45,
                                 "analysis": {"templates": [{"templateName": "error-rate"}]},
                                 "steps": [{"setWeight": 20}, {"pause": {"duration": "10m"}}]}})
    world = bad_world(spec)
    status = world.run(until=3600, tick=1)
    zero = next(d.at for d in world.log for a in d.actions if isinstance(a, SetCanaryWeight) and a.weight == 0)
    down = next(d.at for d in world.log for a in d.actions if isinstance(a, ScaleVersion) and a.role is Role.CANARY and a.replicas == 0)
    assert zero == status.aborted_at
    assert down - zero == pytest.approx(45)


def test_dynamic_stable_scale_shrinks_stable_only_after_traffic_moved():
    """With dynamicStableScale the stable never has fewer pods than its share of the applied weight needs."""
    spec = make_spec({"canary": {"trafficRouting": "router", "dynamicStableScale": True,
                                 "steps": [{"setWeight": 30}, {"pause": {"duration": 60}}, {"setWeight": 70}, {"pause": {"duration": 60}}]}})
    world = IdealWorld(spec)
    status = world.run(until=3600, tick=1)
    assert status.outcome == "promoted"
    for d in world.log:
        if not d.status.completed:
            assert d.stable_ready >= -(-(100 - d.status.applied_weight) * 10 // 100) - 0  # ceil share, before actions


def test_reconcile_is_deterministic_and_does_not_mutate_its_inputs():
    """The same (spec, status, observation) gives the same result, and the inputs are unchanged."""
    spec = load_strategy("canary").with_replicas(10)
    obs = Observation(5.0, VersionObservation(10, 10, 10), VersionObservation(0, 0, 0))
    status = RolloutStatus()
    first = reconcile(spec, status, obs)
    second = reconcile(spec, status, obs)
    assert first == second and status == RolloutStatus()


def test_status_survives_json_persistence_mid_rollout():
    """A status written to JSON and read back mid-analysis is equal to the original, measurements included."""
    world = bad_world(load_strategy("canary").with_replicas(10), canary_error_rate=0.01)
    world.run(until=200)
    assert any(a.metrics[0].measurements for a in world.status.analyses)
    assert load_status(dump_status(world.status)) == world.status


def test_analysis_phases_are_recorded_for_reports():
    """Every measurement lands on the timeline as an event, and the finished run records its verdict."""
    world = bad_world(load_strategy("canary").with_replicas(10))
    world.run(until=3600)
    assert EventReason.MEASUREMENT in reasons(world)
    background = world.status.analysis("background")
    assert background.phase is AnalysisPhase.FAILED and background.message


def test_a_step_analysis_without_count_is_refused():
    """A step analysis whose metric has no count would never finish, so the spec is refused with the reason."""
    template = {"name": "endless", "metrics": [{"name": "e", "successCondition": "result < 0.01"}]}
    with pytest.raises(ValueError, match="never finish: metric 'e' .*has no count"):
        make_spec({"canary": {"steps": [{"analysis": {"templates": [{"templateName": "endless"}]}}]}}, templates=[template])


@pytest.mark.parametrize("enabled, seconds, gated", [(False, None, True), (False, 30, True), (True, 30, False), (True, None, False)],
                         ids=["disabled-waits", "disabled-ignores-seconds", "enabled-with-seconds", "enabled-immediate"])
def test_blue_green_promotion_gate(enabled, seconds, gated):
    """autoPromotionEnabled: false waits for promote even with autoPromotionSeconds (Argo ignores the seconds then)."""
    bg = {"autoPromotionEnabled": enabled, **({"autoPromotionSeconds": seconds} if seconds is not None else {})}
    world = IdealWorld(make_spec({"blueGreen": bg}))
    status = world.run(until=1800)
    assert (status.pause_reason is PauseReason.BLUE_GREEN_PAUSE) is gated
    assert status.completed is not gated
    if not gated and seconds:
        paused = next(e.at for e in world.events() if e.reason is EventReason.PAUSED)
        switched = next(e.at for e in world.events() if e.reason is EventReason.SWITCHED)
        assert switched - paused == pytest.approx(seconds)
