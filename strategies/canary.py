"""The canary ladder, after Argo Rollouts' ``rolloutCanary``: each rung returns early when
its work is not finished, and the next call (level-triggered) picks up from there.

    aborted?      -> roll back: stable to full scale and 100% traffic, then canary down
    completed?    -> scale the old stable down once its delay passed
    background    -> start/advance the background analysis; failure aborts
    step's route  -> setHeaderRoute / setMirrorRoute add or remove a managed route as soon
                     as their step is reached
    replicas      -> scale toward the current step's weight (replica math or router)
    steps         -> setWeight / setCanaryScale done once replicas and traffic are there;
                     pause waits for its timer or `promote`; analysis waits for its verdict
    promotion     -> all steps done: managed routes removed, canary to full scale and
                     100%, then Promote

Managed routes follow Argo Rollouts (rollout/trafficrouting.go, reconcileTrafficRouting:
routes are set by their step and removed once the rollout is aborted or fully promoted,
"RemoveManagedRoutes"): the status remembers which step set each route, so a resumed
controller knows the routes in force.

A step may hold setCanaryScale and a route beside its setWeight, pause or analysis, as
Argo's validation allows. All take effect when the step is reached: reconcileTrafficRouting
sets the current step's route before the replica sets are scaled, and the scale and the
weight are the current step's. The step ends as Argo's ``completedCurrentCanaryStep``
(rollout/canary.go) decides, whose first matching case wins: a pause when its time is up,
then setCanaryScale or setWeight once the pods and weight are there, then an analysis when
it succeeded; a step of routes alone at once. So a step holding setCanaryScale and an
analysis ends when the canary has its pods and its analysis never holds the rollout.

Without a traffic router the weight is only approximated by the ratio of ready pods
(``strategies.replicas``); with one, the weight is set exactly once the canary has the
pods to carry it.
"""

from __future__ import annotations

from rolloutlab.strategies.actions import EventReason, RemoveRoute, SetCanaryWeight, SetHeaderRoute, SetMirrorRoute
from rolloutlab.strategies.cycle import Cycle, ceil_share
from rolloutlab.strategies.cycle import or_now as _or_now
from rolloutlab.strategies.judges import MeasurementPhase
from rolloutlab.strategies.observation import Role
from rolloutlab.strategies.replicas import canary_replica_step
from rolloutlab.strategies.routes import HeaderRoute
from rolloutlab.strategies.spec import CanaryStrategy, FeatureFlagStrategy, TrafficRouting
from rolloutlab.strategies.status import AnalysisKind, AnalysisPhase, PauseReason

BACKGROUND = "background"


def reconcile_canary(c: Cycle) -> None:
    cs = c.spec.strategy.canary
    assert cs is not None
    # single fields are read from c.fields: folding the changes so far into a new status
    # would copy every field, on most calls
    fields = c.fields
    if fields["aborted"]:
        return _reconcile_abort(c, cs)
    if fields["completed"]:
        return c.scale_down_old_stable()
    steps = cs.steps
    last = len(steps)
    facts = c.facts  # what each step declares, worked out once per spec
    weights, routes, step_done = facts.canary_weights, facts.canary_routes, facts.canary_step_done
    while True:
        if not reconcile_background_analysis(c, cs):  # in the loop: it may start at a step reached just now
            return
        i = fields["step_index"]
        if i < last and routes[i] is not None:
            _reconcile_step_route(c, cs)
        weight = weights[i] if 0 <= i <= last else declared_canary_weight(cs, i)
        if not _reconcile_replicas_and_traffic(c, cs, weight):
            return
        i = fields["step_index"]
        if i >= last:
            return _reconcile_promotion(c, cs)
        if fields["pause_reason"] is PauseReason.INCONCLUSIVE_ANALYSIS:
            return
        done = step_done[i]  # None: a pause, or an analysis the step waits on
        if done is None:
            if not pass_gate(c, cs, steps[i]):
                return
        else:
            c.next_step(done)


def _reconcile_step_route(c: Cycle, cs: CanaryStrategy) -> None:
    """The current step's route, set once (a resumed controller finds it in the status)."""
    i = c.peek("step_index")
    route = cs.steps[i].route
    if route is None:
        return
    applied = dict(c.status.routes)
    if (applied.get(route.name) == i) if route.match is not None else (route.name not in applied):
        return
    _set_route(c, i)


def pass_gate(c: Cycle, owner: CanaryStrategy | FeatureFlagStrategy, step) -> bool:
    """An analysis or pause step, the same in every ladder with steps (canary, feature
    flag): True once it is passed (the next step begins), False while it holds the rollout
    (running, paused, or the analysis just aborted it)."""
    i = c.peek("step_index")
    if step.analysis is not None:
        phase = c.run_analysis(AnalysisKind.STEP, f"step-{i}", step.analysis)
        if phase is AnalysisPhase.RUNNING:
            return False
        if phase in (AnalysisPhase.FAILED, AnalysisPhase.ERROR):
            c.abort(f"step {i} analysis {phase.value.lower()}")
            return False
        if phase is AnalysisPhase.INCONCLUSIVE:
            c.pause(PauseReason.INCONCLUSIVE_ANALYSIS, f"step {i} analysis inconclusive")
            return False
        c.next_step("analysis")
        return True
    if step.pause.duration is None:  # a manual gate: only `promote` passes it
        c.pause(PauseReason.CANARY_PAUSE_STEP, f"paused at step {i} until promoted")
        return False
    ends = _or_now(c.fields["step_started_at"], c) + step.pause.duration
    if c.now < ends:
        if c.fields["pause_reason"] is not PauseReason.CANARY_PAUSE_STEP:  # paused already: no message to write
            c.pause(PauseReason.CANARY_PAUSE_STEP, f"pausing {step.pause.duration:g}s at step {i}")
        c.wake_at(ends)
        return False
    if held_by_failed_check(c, owner):
        return False  # the next measurement (its due time is a requeue time) decides
    c.unpause("pause over")
    c.next_step("pause")
    return True


def declared_canary_weight(cs: CanaryStrategy, step_index: int) -> int:
    """The weight the steps ask for at ``step_index``: the last setWeight at or before it
    (Argo's ``GetCurrentSetWeight``), 100 once every step is done."""
    if step_index >= len(cs.steps):
        return 100
    for step in reversed(cs.steps[: step_index + 1]):
        if step.set_weight is not None:
            return step.set_weight
    return 0


def canary_scale_override(cs: CanaryStrategy, step_index: int, replicas: int) -> int | None:
    """Canary pods asked for by the latest setCanaryScale (None: follow the weight)."""
    if step_index >= len(cs.steps):
        return None
    for step in reversed(cs.steps[: step_index + 1]):
        scale = step.set_canary_scale
        if scale is not None:
            if scale.match_traffic_weight:
                return None
            return scale.replicas if scale.replicas is not None else ceil_share(scale.weight or 0, replicas)
    return None


def reconcile_background_analysis(c: Cycle, cs: CanaryStrategy | FeatureFlagStrategy) -> bool:
    """Advance background analysis; False when it stopped the rollout (abort or pause)."""
    if cs.analysis is None or c.fields["step_index"] < cs.analysis.starting_step:
        return True
    phase = c.run_analysis(AnalysisKind.BACKGROUND, BACKGROUND, cs.analysis)
    if phase in (AnalysisPhase.FAILED, AnalysisPhase.ERROR):
        if cs.analysis.hold_on_failure:
            # Flagger tests its failed-checks threshold at the start of a check, before it
            # runs new ones (pkg/controller/scheduler.go, advanceCanary: "check if the
            # number of failed checks reached the threshold" precedes runAnalysis), so the
            # rollback comes one interval after the check that reached the threshold; the
            # weight is held until then.
            rollback_at = _next_check_at(c)
            if c.now < rollback_at:
                c.wake_at(rollback_at)
                return False
        c.abort(f"background analysis {phase.value.lower()}")
        return False
    if phase is AnalysisPhase.INCONCLUSIVE:
        c.pause(PauseReason.INCONCLUSIVE_ANALYSIS, "background analysis inconclusive")
        return False
    return True


_HOLDING_PHASES = (MeasurementPhase.FAILED.value, MeasurementPhase.ERROR.value)


def held_by_failed_check(c: Cycle, cs: CanaryStrategy | FeatureFlagStrategy) -> bool:
    """Flagger's hold: with ``holdOnFailure``, a failed or empty latest check keeps the step.

    Flagger returns before ``runCanary`` when a check fails, and a metric query that finds
    no values fails the check too ("Halt advancement no values found",
    pkg/controller/scheduler_metrics.go, runBuiltinMetricChecks)."""
    if cs.analysis is None or not cs.analysis.hold_on_failure:
        return False
    run = c.status.analysis(BACKGROUND)
    if run is None or run.phase.done:
        return False
    return any(m.measurements and m.measurements[-1].phase in _HOLDING_PHASES for m in run.metrics)


def _next_check_at(c: Cycle) -> float:
    """When the finished background run's failing metric would have been measured next."""
    run = c.status.analysis(BACKGROUND)
    assert run is not None and run.phase.done
    return min(m.due_at for m in run.metrics if m.phase is run.phase)


def _reconcile_replicas_and_traffic(c: Cycle, cs: CanaryStrategy, weight: int) -> bool:
    """Move pods (and router weight) toward ``weight``; True once everything is there."""
    if cs.traffic_routing is TrafficRouting.NONE:
        return _reconcile_basic_replicas(c, cs, weight)
    return _reconcile_routed(c, cs, weight)


def _reconcile_basic_replicas(c: Cycle, cs: CanaryStrategy, weight: int) -> bool:
    stable, canary = c.obs.stable, c.obs.canary
    nxt = canary_replica_step(
        c.replicas, weight, cs.max_surge, cs.max_unavailable,
        stable.replicas, stable.available, canary.replicas, canary.available,
    )
    c.scale(Role.CANARY, nxt.canary)
    c.scale(Role.STABLE, nxt.stable)
    settled = (nxt.canary, nxt.stable) == (canary.replicas, stable.replicas)
    at_target = settled and canary.available >= canary.replicas and stable.available >= stable.replicas
    c.waiting_on_pods = c.waiting_on_pods or not at_target
    return at_target


def _reconcile_routed(c: Cycle, cs: CanaryStrategy, weight: int) -> bool:
    replicas, stable, canary = c.replicas, c.obs.stable, c.obs.canary
    canary_target = canary_scale_override(cs, c.status.step_index, replicas)
    if canary_target is None:
        canary_target = ceil_share(weight, replicas)
    # The stable keeps the pods its current share needs until the router moved traffic
    # away (dynamicStableScale), and is scaled up before traffic moves back to it.
    stable_target = ceil_share(100 - min(weight, c.status.applied_weight), replicas) if cs.dynamic_stable_scale else replicas
    c.scale(Role.CANARY, canary_target)
    c.scale(Role.STABLE, stable_target)
    if c.status.applied_weight != weight:
        canary_ready = canary.available >= min(canary_target, ceil_share(weight, replicas))
        stable_ready = stable.available >= min(stable_target, ceil_share(100 - weight, replicas))
        if not (canary_ready and stable_ready):
            c.waiting_on_pods = True
            return False
        _set_weight(c, weight)
        if cs.dynamic_stable_scale:
            c.scale(Role.STABLE, ceil_share(100 - weight, replicas))
            return False  # the stable shrinks next; come back when it has
    at_target = canary.replicas == canary_target and canary.available >= canary_target and stable.replicas == stable_target and stable.available >= stable_target
    c.waiting_on_pods = c.waiting_on_pods or not at_target
    return at_target


def _reconcile_promotion(c: Cycle, cs: CanaryStrategy) -> None:
    """All steps done and the canary carries 100%: it becomes the stable."""
    remove_routes(c)
    routed = cs.traffic_routing is TrafficRouting.ROUTER
    c.complete(scale_down_delay=cs.scale_down_delay_seconds if routed and not cs.dynamic_stable_scale else None)
    c.scale_down_old_stable()


def _reconcile_abort(c: Cycle, cs: CanaryStrategy) -> None:
    """Stable back to full scale and all traffic first; the canary goes after the delay."""
    replicas, stable, canary = c.replicas, c.obs.stable, c.obs.canary
    if cs.traffic_routing is TrafficRouting.NONE:
        # No router: traffic follows pods, so the canary leaves as the stable comes back,
        # paced by maxSurge/maxUnavailable exactly like a step toward weight 0.
        back = _reconcile_basic_replicas(c, cs, 0)
        if back and canary.available == 0:
            c.restored("rolled back: stable serves all traffic")
        return
    c.scale(Role.STABLE, replicas)
    if c.status.routes:
        if stable.available == 0:
            c.waiting_on_pods = True  # a route's users would have nowhere else to go
            return
        remove_routes(c)
    if c.status.applied_weight != 0:
        if stable.available < ceil_share(100, replicas) and cs.dynamic_stable_scale:
            c.waiting_on_pods = True
            return
        _set_weight(c, 0)
    if stable.available < replicas:
        c.waiting_on_pods = True
        return
    c.restored("rolled back: stable serves all traffic")
    c.scale_down_aborted(cs.abort_scale_down_delay_seconds)


def _set_weight(c: Cycle, weight: int) -> None:
    c.emit(SetCanaryWeight(weight))
    c.event(EventReason.WEIGHT_CHANGED, f"canary weight {c.status.applied_weight} -> {weight}")
    c.set(applied_weight=weight)



def _set_route(c: Cycle, step_index: int) -> None:
    """Apply the route of step ``step_index``: add or replace it, or remove it (no match)."""
    route = c.spec.strategy.canary.steps[step_index].route
    assert route is not None
    others = tuple((name, i) for name, i in c.status.routes if name != route.name)
    if route.match is None:
        if len(others) != len(c.status.routes):
            c.emit(RemoveRoute(route.name))
            c.event(EventReason.ROUTE_CHANGED, f"route {route.name} removed")
        c.set(routes=others)
        return
    if isinstance(route, HeaderRoute):
        c.emit(SetHeaderRoute(route.name, route.match))
        c.event(EventReason.ROUTE_CHANGED, f"header route {route.name}: matching requests go to the canary")
    else:
        c.emit(SetMirrorRoute(route.name, route.percentage, route.match))
        c.event(EventReason.ROUTE_CHANGED, f"mirror route {route.name}: {route.percentage}% of matching requests copied to the canary")
    c.set(routes=(*others, (route.name, step_index)))


def remove_routes(c: Cycle) -> None:
    """Remove every managed route in force (Argo does at promotion and at abort)."""
    for name, _ in c.status.routes:
        c.emit(RemoveRoute(name))
        c.event(EventReason.ROUTE_CHANGED, f"route {name} removed")
    if c.status.routes:
        c.set(routes=())
