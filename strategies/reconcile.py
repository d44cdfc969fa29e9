"""``reconcile(spec, status, observation) -> (status, actions)``: the one rollout policy that
the simulator and the live runners share.

Pure and level-triggered, like Argo Rollouts' controller: given what was declared, what
the controller remembers and what a runner measured now, it returns what to remember
and what to do. It reads no clock (time is ``observation.now``), does no I/O and keeps no
state of its own, so the same inputs always give the same outputs, a runner may call it
as often as it likes, and a controller restarted from a persisted status carries on.

Every call runs the same ladder:

    start      first call: record the start
    commands   promote / promoteFull / resume / abort / retry, each applied once (by id)
    strategy   the canary, blue-green or rolling ladder (their own modules)
    deadline   progressDeadlineSeconds while waiting for pods: degraded (or abort)
    requeue    when to call again if nothing changes (timers, analysis intervals)
"""

from __future__ import annotations

from typing import NamedTuple

from rolloutlab.strategies.actions import Action, EventReason
from rolloutlab.strategies.analysis import next_analysis_due
from rolloutlab.strategies.blue_green import Rung, reconcile_blue_green
from rolloutlab.strategies.canary import BACKGROUND, declared_canary_weight, reconcile_canary
from rolloutlab.strategies.cycle import Cycle
from rolloutlab.strategies.cycle import or_now as _or_now
from rolloutlab.strategies.feature_flag import declared_exposure, reconcile_feature_flag
from rolloutlab.strategies.observation import Command, Observation, Role
from rolloutlab.strategies.replicas import effective_canary_weight
from rolloutlab.strategies.rolling import reconcile_rolling
from rolloutlab.strategies.spec import StrategyKind, StrategySpec, TrafficRouting
from rolloutlab.strategies.status import AbortCause, AnalysisKind, AnalysisPhase, PauseReason, Phase, RolloutStatus

_LADDERS = {
    StrategyKind.CANARY: reconcile_canary,
    StrategyKind.BLUE_GREEN: reconcile_blue_green,
    StrategyKind.ROLLING: reconcile_rolling,
    StrategyKind.FEATURE_FLAG: reconcile_feature_flag,
}


class Reconciled(NamedTuple):
    """What one reconcile call decided: the status to remember and the actions to apply."""

    status: RolloutStatus
    actions: tuple[Action, ...]


def reconcile(spec: StrategySpec, status: RolloutStatus, observation: Observation) -> Reconciled:
    """Decide the next actions of one rollout. Pure: same inputs, same result."""
    c = Cycle(spec, status, observation)
    if status.started_at is None:
        c.set(started_at=c.now, step_started_at=c.now, last_progress_at=c.now)
        c.event(EventReason.ROLLOUT_STARTED, f"{spec.strategy.kind.value} rollout of {c.replicas} replicas started")
    if observation.commands:
        _apply_commands(c)
    # fields are peeked here, not folded: most calls then copy the status once, at the end
    fields = c.fields
    ladder, aborted_before = _LADDERS[spec.strategy.kind], fields["aborted"]
    ladder(c)
    if fields["aborted"] and not aborted_before:
        ladder(c)  # an analysis just aborted: start the rollback in the same call
    aborted_before = fields["aborted"]
    _check_progress_deadline(c)
    if fields["aborted"] and not aborted_before:
        ladder(c)  # the progress deadline just aborted: start the rollback in the same call
    c.set(requeue_at=_requeue_at(c))
    return Reconciled(c.status, tuple(c.actions))


# --------------------------------------------------------------------------- commands


def _apply_commands(c: Cycle) -> None:
    for request in sorted(c.obs.commands, key=lambda r: r.id):
        if request.id <= c.status.last_command_id:
            continue
        c.set(last_command_id=request.id)
        verdict = _apply_command(c, request.command)
        if verdict:
            c.event(EventReason.COMMAND_IGNORED, f"{request.command.value} ignored: {verdict}")


def _apply_command(c: Cycle, command: Command) -> str | None:
    """Apply one command; returns why it was ignored, or None."""
    s = c.status
    if s.completed:
        return "the rollout is already promoted"
    if command is Command.ABORT:
        if s.aborted:
            return "already aborted"
        c.abort("aborted by command", AbortCause.COMMAND)
        return None
    if command is Command.RETRY:
        if not s.aborted:
            return "only an aborted rollout can be retried"
        c.set(**_fresh_progress(c), aborted=False, aborted_at=None, abort_reason="", abort_cause=None, restored_at=None,
              scale_down_at=None, step_index=0, phase=Phase.PROGRESSING, message="retrying")
        for key in [a.key for a in s.analyses if "@" not in a.key]:
            c.retire_analysis(key)
        c.event(EventReason.RETRIED, "rollout retried from the first step")
        return None
    if s.aborted:
        return "the rollout is aborted; retry it first"
    kind = c.spec.strategy.kind
    if kind is StrategyKind.ROLLING:
        return "a rolling update has no steps to promote"
    if kind is StrategyKind.FEATURE_FLAG and s.deployed_at is None:
        return "the dark code is still being deployed; exposure steps start after it"
    stepped = c.spec.strategy.canary or c.spec.strategy.feature_flag  # the kinds with steps
    if command is Command.PROMOTE_FULL:
        last = len(stepped.steps) if stepped is not None else Rung.SWITCH
        c.terminate_analyses()
        c.retire_analysis(BACKGROUND)
        c.unpause("promoted fully")
        c.set(step_index=max(s.step_index, last), step_started_at=c.now)
        return None
    paused = s.pause_reason is not None
    if command is Command.RESUME and not paused:
        return "the rollout is not paused"
    # promote (or resume a pause): pass the rung the rollout waits on
    if s.pause_reason is PauseReason.INCONCLUSIVE_ANALYSIS and _background_inconclusive(c):
        c.retire_analysis(BACKGROUND)
        c.unpause(f"{command.value}: background analysis restarts")
        return None
    if stepped is not None:
        steps = stepped.steps
        if s.step_index >= len(steps):
            return "every step is done"
        step = steps[s.step_index]
        if not paused and step.analysis is None and step.pause is None:
            return "the current step is not a pause or an analysis"
        c.terminate_analysis(f"step-{s.step_index}")
        c.unpause(f"{command.value} at step {s.step_index}")
        c.next_step(command.value)
        return None
    if s.step_index in (Rung.PRE_PROMOTION_ANALYSIS, Rung.GATE, Rung.POST_PROMOTION_ANALYSIS):
        c.terminate_analysis(_RUNG_ANALYSIS.get(s.step_index, ""))
        c.unpause(f"{command.value}")
        c.next_step(command.value)
        return None
    return "nothing is waiting for promotion"


_RUNG_ANALYSIS = {
    Rung.PRE_PROMOTION_ANALYSIS: AnalysisKind.PRE_PROMOTION.value,
    Rung.POST_PROMOTION_ANALYSIS: AnalysisKind.POST_PROMOTION.value,
}


def _background_inconclusive(c: Cycle) -> bool:
    run = c.status.analysis(BACKGROUND)
    return run is not None and run.phase is AnalysisPhase.INCONCLUSIVE


def _fresh_progress(c: Cycle) -> dict:
    return {"step_started_at": c.now, "last_progress_at": c.now, "deadline_exceeded": False,
            "pause_reason": None, "pause_started_at": None}


# --------------------------------------------------------------------------- deadline, requeue


def _check_progress_deadline(c: Cycle) -> None:
    """progressDeadlineSeconds bounds how long the rollout may wait for pods.

    Timed pauses, gates and analyses are planned waits and do not count (Argo: "progress
    is not estimated while paused"); the clock restarts whenever pod counts move."""
    obs, fields, now = c.obs, c.fields, c.now
    stable, canary = obs.stable, obs.canary
    marker = (fields["step_index"], stable.replicas, stable.available, canary.replicas,
              canary.available, int(fields["aborted"]), int(fields["completed"]))
    progress_marker, restored_at = fields["progress_marker"], fields["restored_at"]
    moved = marker != progress_marker
    if moved or not c.waiting_on_pods or restored_at is not None:
        if moved and fields["deadline_exceeded"]:
            c.set(deadline_exceeded=False, phase=_phase_without_deadline(c.status))
        c.pending["progress_marker"] = fields["progress_marker"] = marker  # set directly: this runs on every call
        c.pending["last_progress_at"] = fields["last_progress_at"] = now
        if c.waiting_on_pods and restored_at is None:
            # the clock (re)starts now: be called at the deadline even if nothing changes
            c.wake_at(now + c.facts.deadline)
        return
    s = c.status
    deadline = _or_now(s.last_progress_at, c) + c.facts.deadline
    if now < deadline:
        c.wake_at(deadline)
        return
    if not s.deadline_exceeded:
        message = f"no progress for {c.spec.progress_deadline_seconds:g}s"
        c.set(deadline_exceeded=True, phase=Phase.DEGRADED, message=message)
        c.event(EventReason.DEADLINE_EXCEEDED, message)
        if c.facts.deadline_abort:
            c.abort(f"progress deadline exceeded ({message})", AbortCause.PROGRESS_DEADLINE)


def _phase_without_deadline(s: RolloutStatus) -> Phase:
    """The phase once pods move again: what the ladder says (a pause it entered in this
    very call stays a pause), no longer Degraded for the deadline."""
    if s.aborted:
        return Phase.DEGRADED
    if s.completed:
        return Phase.HEALTHY
    return Phase.PAUSED if s.pause_reason is not None else Phase.PROGRESSING


def _requeue_at(c: Cycle) -> float | None:
    """The soonest of the ladder's timers and the running analyses' due times (after now).

    The first of equal times wins, as ``min`` over the timers then the runs would pick
    (``5`` and ``5.0`` are equal but not the same status field)."""
    now, soonest = c.now, None
    for t in c.wake_times:
        if soonest is None or t < soonest:
            soonest = t
    for run in c.fields["analyses"]:
        t = next_analysis_due(run)
        if t is not None and t > now and (soonest is None or t < soonest):
            soonest = t
    return soonest


# --------------------------------------------------------------------------- weights


def compute_declared_weight(spec: StrategySpec, status: RolloutStatus, observation: Observation) -> float:
    """The canary's share of traffic the controller asks for, in percent.

    Canary: the current setWeight (0 after an abort, 100 once promoted). Blue-green: 100
    when the active Service selects the new version. Rolling: the new version's share of
    the declared pods (a Deployment declares pods, not weights)."""
    kind = spec.strategy.kind
    if kind is StrategyKind.CANARY:
        if status.aborted:
            return 0.0
        return float(100 if status.completed else declared_canary_weight(spec.strategy.canary, status.step_index))
    if kind is StrategyKind.BLUE_GREEN:
        return 100.0 if status.active is Role.CANARY else 0.0
    if kind is StrategyKind.FEATURE_FLAG:  # the share of users the flag is on for
        return float(declared_exposure(spec.strategy.feature_flag, status.exposure_step))
    total = observation.canary.replicas + observation.stable.replicas
    return 100.0 * observation.canary.replicas / total if total else 0.0


def compute_effective_weight(spec: StrategySpec, status: RolloutStatus, observation: Observation) -> float:
    """The canary's share of traffic that really reaches it now, in percent.

    With a router, the weight we set (0 while the canary has no ready pod); blue-green,
    where the active Service points; otherwise the ratio of available pods, which is
    what a Service spreading requests over both versions' pods delivers."""
    kind = spec.strategy.kind
    if kind is StrategyKind.BLUE_GREEN:
        return 100.0 if status.active is Role.CANARY and observation.canary.available else 0.0
    if kind is StrategyKind.CANARY and spec.strategy.canary.traffic_routing is TrafficRouting.ROUTER:
        if observation.stable.available == 0:
            return 100.0 if observation.canary.available else 0.0
        return float(status.applied_weight) if observation.canary.available else 0.0
    return effective_canary_weight(observation.canary.available, observation.stable.available)
