"""Properties of ``reconcile`` over generated strategies, worlds and commands (hypothesis)."""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rolloutlab.strategies import (
    Command,
    Role,
    ScaleVersion,
    StrategySpec,
    canary_replica_targets,
    dump_status,
    load_status,
    reconcile,
    resolve_int_or_percent,
)
from rolloutlab.strategies.dry_run import IdealWorld
from rolloutlab.strategies.spec import StrategyKind, TrafficRouting
from rolloutlab.strategies.status import PauseReason, Phase

TEMPLATES = [
    {"name": "errors", "metrics": [
        {"name": "error-rate", "interval": 20, "successCondition": "result < 0.05", "failureLimit": 1}]},
    {"name": "errors-3", "metrics": [
        {"name": "error-rate", "interval": 20, "count": 3, "successCondition": "result < 0.05", "failureLimit": 1}]},
]
BACKGROUND = {"templates": [{"templateName": "errors"}]}  # runs until promotion
ANALYSIS = {"templates": [{"templateName": "errors-3"}]}  # a step's analysis needs a count to finish

int_or_percent = st.one_of(st.integers(0, 3), st.sampled_from(["0%", "10%", "25%", "50%", "100%"]))


MATCH_STAFF = [{"headerName": "x-user-group", "headerValue": {"exact": "internal"}}]
route_steps = st.one_of(
    st.builds(lambda on: {"setHeaderRoute": {"name": "staff", **({"match": MATCH_STAFF} if on else {})}}, st.booleans()),
    st.builds(lambda on, pct: {"setMirrorRoute": {"name": "shadow", "percentage": pct,
                                                  **({"match": [{"method": {"exact": "GET"}}]} if on else {})}},
              st.booleans(), st.integers(0, 100)),
    st.builds(lambda n: {"setCanaryScale": {"replicas": n}}, st.integers(0, 3)),
)
FLAGS = {"flags": {"f": {"state": "ENABLED", "variants": {"on": True, "off": False}, "defaultVariant": "off"}}}


@st.composite
def flag_specs(draw):
    step = st.one_of(
        st.builds(lambda pct, cohort: {"setExposure": {"percentage": pct, **({"match": MATCH_STAFF} if cohort else {})}},
                  st.integers(0, 100), st.booleans()),
        st.builds(lambda d: {"pause": {"duration": d}}, st.integers(0, 120)),
        st.just({"analysis": ANALYSIS}),
    )
    steps = draw(st.lists(step, max_size=6))
    ff = {"flagKey": "f", "flags": FLAGS, "steps": steps,
          "deploy": {"rolling": {"maxSurge": draw(int_or_percent), "maxUnavailable": draw(int_or_percent)}}}
    if draw(st.booleans()):
        ff["analysis"] = {**BACKGROUND, "startingStep": draw(st.integers(0, len(steps)))}
    return {"featureFlag": ff}


@st.composite
def canary_specs(draw):
    router = draw(st.booleans())
    step = st.one_of(
        st.builds(lambda w: {"setWeight": w}, st.integers(0, 100)),
        st.builds(lambda d: {"pause": {"duration": d}}, st.integers(0, 120)),
        st.just({"analysis": ANALYSIS}),
    )
    if router:  # managed routes come with a router (Argo: setHeaderRoute/setMirrorRoute)
        step = st.one_of(step, route_steps)
    steps = draw(st.lists(step, max_size=6))
    canary = {"steps": steps, "maxSurge": draw(int_or_percent), "maxUnavailable": draw(int_or_percent),
              "trafficRouting": "router" if router else "none"}
    if router:
        canary["managedRoutes"] = [{"name": "staff"}, {"name": "shadow"}]
        canary["dynamicStableScale"] = draw(st.booleans())
        canary["abortScaleDownDelaySeconds"] = draw(st.integers(0, 60))
    if draw(st.booleans()):
        canary["analysis"] = {**BACKGROUND, "startingStep": draw(st.integers(0, len(steps))),
                              "holdOnFailure": draw(st.booleans())}
    return {"canary": canary}


blue_green_specs = st.builds(
    lambda pre, post, auto, preview: {"blueGreen": {
        **({"prePromotionAnalysis": ANALYSIS} if pre else {}), **({"postPromotionAnalysis": ANALYSIS} if post else {}),
        "autoPromotionSeconds": auto, **({"previewReplicaCount": preview} if preview else {})}},
    st.booleans(), st.booleans(), st.one_of(st.none(), st.integers(0, 60)), st.one_of(st.none(), st.integers(1, 5)),
)
rolling_specs = st.builds(lambda s, u: {"rolling": {"maxSurge": s, "maxUnavailable": u}}, int_or_percent, int_or_percent)


@st.composite
def worlds(draw):
    strategy = draw(st.one_of(canary_specs(), blue_green_specs, rolling_specs, flag_specs()))
    spec = StrategySpec.model_validate({"name": "p", "replicas": draw(st.integers(1, 12)),
                                        "analysisTemplates": TEMPLATES, "strategy": strategy})
    world = IdealWorld(spec, start_delay=draw(st.integers(1, 40)), rps=draw(st.sampled_from([0.5, 20.0, 500.0])))
    world.error_rate[Role.CANARY] = draw(st.sampled_from([0.0, 0.0, 0.2]))
    return world


def commands():
    return st.lists(st.tuples(st.integers(0, 900), st.sampled_from(list(Command))), max_size=4)


def drive(world: IdealWorld, schedule, until: float = 4000, check=None, max_steps: int | None = None) -> bool:
    """Run the world, issuing scheduled commands, checking ``check`` after every decision.
    Returns True once the world has settled (nothing more can happen without a command)."""
    pending = sorted(schedule)
    steps = 0
    while world.now <= until and (max_steps is None or steps < max_steps):
        while pending and pending[0][0] <= world.now:
            world.command(pending.pop(0)[1])
        world.step()
        steps += 1
        if check:
            check(world)
        status = world.status
        if settled(world) and not pending:
            return True
        nxt = world.now + 7
        if status.requeue_at is not None:
            nxt = min(nxt, max(status.requeue_at, world.now + 1e-3))
        world.advance(nxt - world.now)
    return False


def settled(world: IdealWorld) -> bool:
    """Nothing can change any more without a command: no actions, no timer, every pod ready."""
    obs = world.observe()
    quiet = not world.log[-1].actions and world.status.requeue_at is None
    return quiet and obs.stable.ready == obs.stable.replicas and obs.canary.ready == obs.canary.replicas


def stable_floor(world: IdealWorld) -> int:
    """Pods the stable must keep after this decision, until promotion completes."""
    spec, status, replicas = world.spec, world.status, world.spec.require_replicas()
    kind = spec.strategy.kind
    if kind is StrategyKind.BLUE_GREEN:
        return replicas
    if kind in (StrategyKind.ROLLING, StrategyKind.FEATURE_FLAG):
        return 0  # a rolling update (a flag's dark deploy) hands the stable's pods over; see the availability check
    cs = spec.strategy.canary
    declared = world.log[-1].declared_weight
    if cs.traffic_routing is TrafficRouting.ROUTER:
        return math.ceil((100 - status.applied_weight) * replicas / 100 - 1e-9) if cs.dynamic_stable_scale else replicas
    surge = resolve_int_or_percent(cs.max_surge, replicas, round_up=True)
    return canary_replica_targets(replicas, int(declared), surge).stable


SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(world=worlds(), schedule=commands())
def test_weights_stay_within_0_and_100(world, schedule):
    """Declared, effective and router weights stay within 0..100 on every decision."""
    def check(w):
        d = w.log[-1]
        assert 0 <= d.declared_weight <= 100 and 0 <= d.effective_weight <= 100
        assert 0 <= w.status.applied_weight <= 100
    drive(world, schedule, check=check)


@SETTINGS
@given(world=worlds(), schedule=commands())
def test_stable_keeps_the_pods_its_traffic_needs_until_promotion(world, schedule):
    """Until promotion completes, the stable is never scaled down below the pods that carry its share of traffic."""
    def check(w):
        if w.status.completed:
            return
        decision = w.log[-1]
        for action in decision.actions:
            # scaling *down* is what is bounded: a stable growing back (abort, lower
            # weight) may still be below its share while its pods start
            if isinstance(action, ScaleVersion) and action.role is Role.STABLE and action.replicas < decision.stable_replicas:
                assert action.replicas >= stable_floor(w), (w.status, decision)
        rolling = w.spec.strategy.kind is StrategyKind.ROLLING or (
            w.spec.strategy.feature_flag is not None and w.status.deployed_at is None)
        if rolling and not w.status.aborted:
            rs = w.spec.strategy.rolling or w.spec.strategy.feature_flag.deploy.rolling
            replicas = w.spec.require_replicas()
            unavailable = resolve_int_or_percent(rs.max_unavailable, replicas, round_up=False)
            if resolve_int_or_percent(rs.max_surge, replicas, round_up=True) == 0 and unavailable == 0:
                unavailable = 1  # Kubernetes' fencepost: both 0 would deadlock
            obs = w.observe()
            assert len(w.pods[Role.STABLE].ready_at) + obs.canary.available >= replicas - unavailable
    drive(world, schedule, check=check)


@SETTINGS
@given(world=worlds(), schedule=commands())
def test_every_abort_ends_on_a_fully_scaled_stable(world, schedule):
    """Once aborted, the rollout ends with all traffic on the stable, the stable at full scale and the canary at 0 (unless told to keep it)."""
    drive(world, schedule + [(1000, Command.ABORT)], until=6000)
    status = world.status
    if status.outcome != "aborted":
        assert status.completed  # the abort came after promotion: nothing to roll back
        return
    obs = world.observe()
    assert status.restored_at is not None
    if world.spec.strategy.feature_flag is not None:
        assert world.flag_share == 0 and world.log[-1].declared_weight == 0  # the flag is off for everyone
        if status.deployed_at is not None:  # the dark code stays: a flag cannot undo a deploy
            assert obs.canary.available == world.spec.require_replicas()
            return
    assert obs.stable.available == world.spec.require_replicas()
    assert world.log[-1].effective_weight == 0
    kept = _abort_keeps_canary(world.spec)  # abortScaleDownDelaySeconds: 0 keeps it for debugging, as in Argo
    assert obs.canary.replicas == 0 or kept


def _abort_keeps_canary(spec: StrategySpec) -> bool:
    s = spec.strategy
    if s.blue_green:
        return s.blue_green.abort_scale_down_delay_seconds == 0
    return bool(s.canary and s.canary.traffic_routing is TrafficRouting.ROUTER and s.canary.abort_scale_down_delay_seconds == 0)


@SETTINGS
@given(world=worlds(), schedule=commands())
def test_reconcile_is_a_function_of_its_inputs(world, schedule):
    """Calling reconcile again with the same inputs gives the same result, and status JSON round-trips exactly."""
    def check(w):
        previous = w.log[-2].status if len(w.log) > 1 else None
        if previous is not None:
            assert load_status(dump_status(previous)) == previous
    drive(world, schedule, check=check)
    statuses = [d.status for d in world.log]
    assert all(load_status(dump_status(s)) == s for s in statuses[-3:])


def restart_at(world: IdealWorld, cut: int, outage: float) -> IdealWorld:
    """The same world, whose controller is killed after ``cut`` decisions, stays down for
    ``outage`` seconds while the world goes on, and restarts from its persisted status."""
    resumed = IdealWorld(world.spec, start_delay=world.start_delay, rps=world.rps, error_rate=dict(world.error_rate))
    if drive(resumed, [], max_steps=cut):
        return resumed
    persisted = dump_status(resumed.status)
    resumed.advance(outage)
    resumed.status = load_status(persisted)
    drive(resumed, [])
    return resumed


RESUME_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@RESUME_SETTINGS
@given(world=worlds(), cut=st.integers(0, 60))
def test_resuming_from_a_persisted_status_reaches_the_same_end(world, cut):
    """A controller killed after any decision and restarted from its persisted status ends exactly where an uninterrupted one does."""
    reference = IdealWorld(world.spec, start_delay=world.start_delay, rps=world.rps, error_rate=dict(world.error_rate))
    drive(reference, [])
    resumed = restart_at(world, cut, outage=0)
    assert resumed.status == reference.status
    assert resumed.observe() == reference.observe()
    assert resumed.promoted == reference.promoted


@RESUME_SETTINGS
@given(world=worlds(), cut=st.integers(0, 60), outage=st.integers(1, 300))
def test_a_controller_down_for_a_while_still_finishes_the_rollout(world, cut, outage):
    """A controller that was down for up to 5 minutes resumes from its persisted status and
    still ends promoted, rolled back onto a fully scaled stable, or paused for a person on an
    inconclusive analysis; never stuck half-way, never promoted twice.

    (Which of the two can differ from an uninterrupted run when analysis windows hold only a
    handful of requests: the outage moves the window edges.)"""
    resumed = restart_at(world, cut, outage)
    status, obs, replicas = resumed.status, resumed.observe(), world.spec.require_replicas()
    assert resumed.promoted <= 1
    if status.completed:
        assert obs.canary.available == replicas and obs.stable.replicas == 0
    elif status.pause_reason is PauseReason.INCONCLUSIVE_ANALYSIS:
        assert status.phase is Phase.PAUSED  # waits for a person, as Argo does; nothing is half-done
        assert obs.stable.available + obs.canary.available >= obs.stable.replicas + obs.canary.replicas
    elif status.aborted and world.spec.strategy.feature_flag is not None and status.deployed_at is not None:
        assert status.restored_at is not None and resumed.flag_share == 0  # flag off; the dark code stays
    else:
        assert status.aborted and status.restored_at is not None and obs.stable.available == replicas


def test_reconcile_refuses_a_spec_without_replicas():
    """A spec with no replica count is refused with a message saying how to give one."""
    spec = StrategySpec.model_validate({"name": "x", "strategy": {"rolling": {}}})
    world_obs = IdealWorld(spec.with_replicas(1)).observe()
    try:
        reconcile(spec, IdealWorld(spec.with_replicas(1)).status, world_obs)
    except ValueError as error:
        assert "with_replicas" in str(error)
    else:
        raise AssertionError("reconcile accepted a spec without replicas")
