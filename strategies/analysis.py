"""Analysis runs: when to measure, what a measurement's phase does to its metric, and the
run's verdict. Pure: the judges decide single measurements, this module keeps the score.

Timing: a metric opens its first window once ``initialDelay`` has passed since the run
started, and is measured every ``interval`` after that, each time over the window since
the previous measurement. A runner that calls late gets a longer window, never a lost one.

Verdicts follow Argo Rollouts' ``assessMetricStatus``: a metric fails once more than
``failureLimit`` measurements failed, errors once more than ``consecutiveErrorLimit``
measurements in a row errored, is inconclusive once more than ``inconclusiveLimit`` were,
and, once ``count`` measurements were taken, succeeds if more measurements succeeded
than were inconclusive, else is inconclusive (a count spent on errors or on a judge still
waiting for data is inconclusive). A judge may decide a
metric early (``final``: the sequential test crossing a boundary). The run takes the worst
metric phase: Failed > Error > Inconclusive > Running > Successful.
"""

from __future__ import annotations

from rolloutlab.strategies.actions import Event, EventReason
from rolloutlab.strategies.judges import MeasurementPhase, judge_measurement
from rolloutlab.strategies.observation import MeasurementWindow, Observation, WindowStats
from rolloutlab.strategies.spec import Metric
from rolloutlab.strategies.status import AnalysisKind, AnalysisPhase, AnalysisRun, Measurement, MetricRun, evolve

_SEVERITY = {
    AnalysisPhase.FAILED: 4,
    AnalysisPhase.ERROR: 3,
    AnalysisPhase.INCONCLUSIVE: 2,
    AnalysisPhase.RUNNING: 1,
    AnalysisPhase.SUCCESSFUL: 0,
}


def start_analysis(kind: AnalysisKind, key: str, metrics: tuple[Metric, ...], now: float) -> AnalysisRun:
    """A new run whose metrics open their first windows after their initial delays."""
    return AnalysisRun(
        kind=kind,
        key=key,
        started_at=now,
        metrics=tuple(MetricRun(name=m.name, due_at=now + m.initial_delay) for m in metrics),
    )


def advance_analysis(
    run: AnalysisRun, metrics: tuple[Metric, ...], obs: Observation
) -> tuple[AnalysisRun, list[Event]]:
    """Take every measurement that is due at ``obs.now`` and reassess the run."""
    if run.phase.done:
        return run, []
    by_name = {m.name: m for m in metrics}
    events: list[Event] = []
    updated = []
    for metric_run in run.metrics:
        metric = by_name.get(metric_run.name)
        if metric is None:
            raise ValueError(
                f"analysis {run.key!r} has a metric {metric_run.name!r} that its templates no longer define"
            )
        metric_run, event = _advance_metric(metric_run, metric, obs)
        updated.append(metric_run)
        if event:
            events.append(event)
    if all(new is old for new, old in zip(updated, run.metrics)):
        return run, events  # nothing was due
    phase = max((m.phase for m in updated), key=_SEVERITY.__getitem__)
    run = evolve(run, metrics=tuple(updated), phase=phase)
    if phase.done:
        worst = [m for m in updated if m.phase is phase]
        message = f"analysis {run.key} {phase.value.lower()}" + (
            f": {', '.join(m.name for m in worst)}" if phase is not AnalysisPhase.SUCCESSFUL else ""
        )
        run = evolve(run, message=message, finished_at=obs.now)
        events.append(Event(obs.now, EventReason.ANALYSIS_COMPLETED, message, phase=phase.value))
    return run, events


def terminate_analysis(run: AnalysisRun, now: float) -> AnalysisRun:
    """Stop a run that is no longer needed (rollout promoted or aborted). A running run
    ends Successful, as Argo marks terminated background analysis."""
    if run.phase.done:
        return run
    metrics = tuple(evolve(m, phase=AnalysisPhase.SUCCESSFUL) if not m.phase.done else m for m in run.metrics)
    return evolve(run, metrics=metrics, phase=AnalysisPhase.SUCCESSFUL, message=f"analysis {run.key} terminated", finished_at=now)


def next_analysis_due(run: AnalysisRun) -> float | None:
    """The earliest time a running metric of this run needs the controller."""
    if run.phase.done:
        return None
    due = [m.due_at for m in run.metrics if not m.phase.done]
    return min(due) if due else None


def _advance_metric(mr: MetricRun, metric: Metric, obs: Observation) -> tuple[MetricRun, Event | None]:
    if mr.phase.done or obs.now < mr.due_at:
        return mr, None
    stable, canary = obs.stable.counters, obs.canary.counters
    if mr.mark_at is None:  # initial delay over: open the first window
        return evolve(mr, mark_at=obs.now, stable_mark=stable, canary_mark=canary, due_at=obs.now + metric.interval), None
    duration = obs.now - mr.mark_at
    window = MeasurementWindow(
        at=obs.now,
        canary=WindowStats.between(mr.canary_mark, canary, duration),
        baseline=WindowStats.between(mr.stable_mark, stable, duration),
    )
    windows = mr.windows + (window,)
    judgement = judge_measurement(metric, windows)
    phase = judgement.phase
    measurement = Measurement(obs.now, phase.value, judgement.value, judgement.baseline_value, judgement.message)
    mr = evolve(
        mr,
        windows=windows,
        measurements=mr.measurements + (measurement,),
        mark_at=obs.now,
        stable_mark=stable,
        canary_mark=canary,
        due_at=obs.now + metric.interval,
        successful=mr.successful + (phase is MeasurementPhase.SUCCESSFUL),
        failed=mr.failed + (phase is MeasurementPhase.FAILED),
        inconclusive=mr.inconclusive + (phase is MeasurementPhase.INCONCLUSIVE),
        errors=mr.errors + (phase is MeasurementPhase.ERROR),
        consecutive_errors=mr.consecutive_errors + 1 if phase is MeasurementPhase.ERROR else 0,
    )
    assessed = _assess_metric(mr, metric, judgement.final, phase)
    if assessed is not mr.phase:  # most measurements leave the metric running: no second copy
        mr = evolve(mr, phase=assessed)
    value = "no data" if judgement.value is None else f"{judgement.value:.4g}"
    event = Event(obs.now, EventReason.MEASUREMENT, f"{metric.name}: {phase.value} ({value}) {judgement.message}".rstrip(),
                  metric=metric.name, phase=phase.value)
    return mr, event


def _assess_metric(mr: MetricRun, metric: Metric, final: bool, last: MeasurementPhase) -> AnalysisPhase:
    if mr.failed > metric.failure_limit:
        return AnalysisPhase.FAILED
    if mr.consecutive_errors > metric.consecutive_error_limit:
        return AnalysisPhase.ERROR
    if mr.inconclusive > metric.inconclusive_limit:
        return AnalysisPhase.INCONCLUSIVE
    if final and last in (MeasurementPhase.SUCCESSFUL, MeasurementPhase.FAILED):
        return AnalysisPhase.SUCCESSFUL if last is MeasurementPhase.SUCCESSFUL else AnalysisPhase.FAILED
    if metric.count is not None and mr.count >= metric.count:
        # Argo: the greater of the successful and inconclusive counters decides, so a
        # count spent on errors or on a judge still waiting for data is inconclusive.
        return AnalysisPhase.SUCCESSFUL if mr.successful > mr.inconclusive else AnalysisPhase.INCONCLUSIVE
    return AnalysisPhase.RUNNING
