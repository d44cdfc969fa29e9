"""One reconcile call's working state, and the steps every strategy shares.

A ``Cycle`` gathers status changes and actions during one call to ``reconcile`` and is
thrown away at its end (kopf's "gather the changes, write them once"). It never escapes
the call, so ``reconcile`` stays a pure function of (spec, status, observation).
"""

from __future__ import annotations

import math

from rolloutlab.strategies.actions import Action, Event, EventReason, Promote, ScaleVersion
from rolloutlab.strategies.analysis import advance_analysis, start_analysis, terminate_analysis
from rolloutlab.strategies.observation import Counters, FlagCounters, Observation, Role, VersionObservation
from rolloutlab.strategies.spec import RolloutAnalysis, StrategySpec
from rolloutlab.strategies.spec_facts import spec_facts
from rolloutlab.strategies.status import (
    AbortCause,
    AnalysisKind,
    AnalysisPhase,
    AnalysisRun,
    PauseReason,
    Phase,
    RolloutStatus,
    evolve,
    evolved,
)


class Cycle:
    """The working state of one reconcile call (a plain slotted class: one is made per call)."""

    __slots__ = ("spec", "base", "obs", "now", "facts", "actions", "waiting_on_pods", "wake_times", "pending", "fields")

    def __init__(self, spec: StrategySpec, base: RolloutStatus, obs: Observation) -> None:
        self.spec = spec
        self.base = base  # the status this call started from (or last materialised)
        self.obs = obs
        self.now: float = obs.now
        self.facts = spec_facts(spec)  # what the spec decides on every call, worked out once
        self.actions: list[Action] = []
        self.waiting_on_pods = False  # the ladder is blocked on pods: the progress deadline ticks
        self.wake_times: list[float] = []  # timers the ladder is waiting for
        self.pending: dict = {}  # changes not yet folded into a new status
        # every field of the status with every change so far (base's fields, then pending):
        # what ``peek`` reads, and what hot paths read directly, without a call
        self.fields: dict = dict(base.__dict__)

    @property
    def status(self) -> RolloutStatus:
        """The status with every change so far; changes are folded in only when read
        (one copy per read-after-write, not one per change: reconcile runs often)."""
        pending = self.pending
        if pending:
            base = self.base
            # most calls re-set fields to what they already hold (the progress marker,
            # the requeue time): a status that would not change is not copied
            changes = {}
            for k, v in pending.items():
                old = getattr(base, k)
                if old is not v and not _same(old, v):
                    changes[k] = v
            if changes:
                self.base = evolved(base, changes)
            self.pending = {}
        return self.base

    def peek(self, name: str):
        """One field of the status with every change so far, without folding the
        changes into a new status (a fold copies every field; most reads need one)."""
        return self.fields[name]

    @property
    def replicas(self) -> int:
        replicas = self.facts.replicas
        return self.spec.require_replicas() if replicas is None else replicas

    def set(self, **changes) -> None:
        self.pending.update(changes)
        self.fields.update(changes)

    def emit(self, action: Action) -> None:
        self.actions.append(action)

    def event(self, reason: EventReason, message: str) -> None:
        self.actions.append(Event(self.now, reason, message))

    def wake_at(self, when: float | None) -> None:
        if when is not None and when > self.now:
            self.wake_times.append(when)

    def scale(self, role: Role, replicas: int) -> None:
        """Ask for ``replicas`` pods of a version, unless the runner already runs that many."""
        if (self.obs.stable if role is Role.STABLE else self.obs.canary).replicas != replicas:
            self.emit(ScaleVersion(role, replicas))

    def scale_down_old_stable(self) -> None:
        """After promotion: the old stable goes once ``scale_down_at`` passed (None: at once)."""
        due = self.peek("scale_down_at")
        if due is None or self.now >= due:
            self.scale(Role.STABLE, 0)
        else:
            self.wake_at(due)

    def scale_down_aborted(self, delay: float) -> None:
        """After an abort, once the stable is fully available again: the aborted version
        goes ``delay`` seconds later. Argo Rollouts: ``abortScaleDownDelaySeconds: 0``
        keeps it running (for debugging); it does not mean "at once"."""
        if delay == 0:
            return
        if self.status.scale_down_at is None:
            self.set(scale_down_at=self.now + delay)
        if self.now >= self.status.scale_down_at:
            self.scale(Role.CANARY, 0)
        else:
            self.wake_at(self.status.scale_down_at)

    # ------------------------------------------------------------------ transitions

    def pause(self, reason: PauseReason, message: str) -> None:
        if self.peek("pause_reason") is not reason:  # an inconclusive analysis overrides a timed pause
            self.set(pause_reason=reason, pause_started_at=self.now, phase=Phase.PAUSED, message=message)
            self.event(EventReason.PAUSED, message)

    def unpause(self, message: str) -> None:
        if self.peek("pause_reason") is not None:
            self.set(pause_reason=None, pause_started_at=None, phase=Phase.PROGRESSING, message=message)
            self.event(EventReason.RESUMED, message)

    def next_step(self, what: str) -> None:
        step_index = self.peek("step_index")
        self.event(EventReason.STEP_COMPLETED, f"step {step_index} ({what}) completed")
        self.set(step_index=step_index + 1, step_started_at=self.now,
                 pause_reason=None, pause_started_at=None)

    def abort(self, reason: str, cause: AbortCause = AbortCause.ANALYSIS_FAILED) -> None:
        if self.status.aborted or self.status.completed:
            return
        self.terminate_analyses()
        self.set(aborted=True, aborted_at=self.now, abort_reason=reason, abort_cause=cause, phase=Phase.DEGRADED,
                 pause_reason=None, pause_started_at=None, scale_down_at=None, message=f"aborted: {reason}")
        self.event(EventReason.ABORTED, reason)

    def complete(self, scale_down_delay: float | None) -> None:
        """Promotion finished: the canary is the new stable."""
        self.terminate_analyses()
        self.set(completed=True, completed_at=self.now, phase=Phase.HEALTHY, pause_reason=None,
                 pause_started_at=None, message="promoted",
                 scale_down_at=None if scale_down_delay is None else self.now + scale_down_delay)
        self.emit(Promote())
        self.event(EventReason.PROMOTED, "canary promoted to stable")

    def restored(self, message: str) -> None:
        if self.status.restored_at is None:
            self.set(restored_at=self.now, message=message)
            self.event(EventReason.ROLLED_BACK, message)

    def terminate_analysis(self, key: str) -> None:
        run = self.status.analysis(key)
        if run is not None:
            self._store(terminate_analysis(run, self.now))

    def terminate_analyses(self) -> None:
        self.set(analyses=tuple(terminate_analysis(a, self.now) for a in self.status.analyses))

    # ------------------------------------------------------------------ analysis

    def run_analysis(self, kind: AnalysisKind, key: str, ref: RolloutAnalysis) -> AnalysisPhase:
        """Start the analysis ``key`` if needed, take due measurements, return its phase."""
        facts = self.facts.analysis(ref)
        run = self._analysis(key)
        if run is None:
            run = start_analysis(kind, key, facts.metrics, self.now)
            self.event(EventReason.ANALYSIS_STARTED, f"analysis {key} started: {facts.names}")
        else:
            # most calls come between measurements: a run that is over, or whose metrics
            # are all known and none due, is left as it is (what advance_analysis returns)
            phase = run.phase
            if phase is not AnalysisPhase.RUNNING:
                return phase
            now, by_name = self.now, facts.by_name
            for m in run.metrics:
                if m.name not in by_name or (now >= m.due_at and m.phase is AnalysisPhase.RUNNING):
                    break
            else:
                return phase
        advanced, events = advance_analysis(run, facts.metrics, self.analysis_observation(), facts.by_name)
        self.actions.extend(events)
        if advanced is not run or self._analysis(key) is None:
            self._store(advanced)
        return advanced.phase

    def _analysis(self, key: str) -> AnalysisRun | None:
        """``status.analysis(key)``, peeked (see ``peek``)."""
        for run in self.fields["analyses"]:
            if run.key == key:
                return run
        return None

    def analysis_observation(self) -> Observation:
        """What analysis compares: canary against stable by pod version; a canary with
        ``baseline``, against its baseline deployment (the observation's ``baseline``
        counters); for a feature flag, users with the flag on against users with it off
        (the observation's ``flag`` counters). A runner that reports no such counters gives
        analysis no data, which errors the analysis rather than judging the wrong traffic."""
        facts = self.facts
        if not (facts.compare_baseline or facts.compare_flag):
            return self.obs
        canary = self.spec.strategy.canary
        if canary is not None and canary.baseline:
            # Kayenta: canary against its baseline deployment, not the stable; no baseline reported, no data
            baseline = VersionObservation(counters=self.obs.baseline or Counters())
            return Observation(self.now, baseline, self.obs.canary, self.obs.commands)
        if self.spec.strategy.feature_flag is None:
            return self.obs
        flag = self.obs.flag or FlagCounters()
        return Observation(self.now, VersionObservation(counters=flag.off), VersionObservation(counters=flag.on),
                           self.obs.commands)

    def retire_analysis(self, key: str) -> None:
        """Keep a finished run in the record under a new key, so ``key`` can start afresh."""
        run = self.status.analysis(key)
        if run is not None:
            self._store(evolve(run, key=f"{key}@{run.finished_at if run.finished_at is not None else self.now:g}"), key)

    def _store(self, run: AnalysisRun, key: str | None = None) -> None:
        key = key or run.key
        runs = [r for r in self.peek("analyses") if r.key != key]
        self.set(analyses=tuple(runs) + (run,))


_PLAIN = (int, bool, str, float)


def _same(old, new) -> bool:
    """Whether writing ``new`` over ``old`` would leave a status field exactly as it was:
    the same object, or plain values of one type that are equal (0.0 and -0.0 are not
    the same; a tuple is the same when each of its items is)."""
    if old is new:
        return True
    kind = type(old)
    if kind is not type(new):
        return False
    if kind is tuple:
        if len(old) != len(new):
            return False
        for a, b in zip(old, new):
            if a is not b and not _same(a, b):  # small ints are one object: most items stop here
                return False
        return True
    if kind not in _PLAIN or old != new:
        return False
    return kind is not float or old != 0.0 or math.copysign(1.0, old) == math.copysign(1.0, new)


def ceil_share(percent: float, replicas: int) -> int:
    """Pods needed to carry ``percent`` of traffic: ceil(percent * replicas / 100).

    Argo's ``trafficWeightToReplicas``; 0.5% of 10 pods still needs one pod."""
    return math.ceil(percent * replicas / 100 - 1e-9)


def or_now(when: float | None, c: Cycle) -> float:
    """A recorded time, or now if none was recorded (0.0 is a time, not a missing one)."""
    return c.now if when is None else when
