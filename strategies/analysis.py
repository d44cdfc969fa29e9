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

Queried metrics: when the observation carries what a threshold metric's query answers now
(``Observation.queried``: a live run with Prometheus, a replay), that answer, converted
from the query's unit (``Metric.query_unit``), is the measurement, judged by the metric's
conditions and ``thresholdRange`` as Argo's ``EvaluateResult`` and Flagger's range check
judge it; a query that returned no series is an Error measurement, as Argo's Prometheus
provider makes an empty vector (argoproj/argo-rollouts ``metricproviders/prometheus``
``processResponse``). The counters' window is still kept (the stable version's value in
reports, and the next window's start). Judges that compare per-version series
(Mann-Whitney, sequential) always read the counters.
"""

from __future__ import annotations

import math

from rolloutlab.strategies.actions import Event, EventReason
from rolloutlab.strategies.judges import Judgement, MeasurementPhase, judge_measurement
from rolloutlab.strategies.judges.judgement import describe_signal, format_value, signal_value
from rolloutlab.strategies.judges.threshold import judge_value
from rolloutlab.strategies.observation import MeasurementWindow, Observation, WindowStats
from rolloutlab.strategies.spec import Metric
from rolloutlab.strategies.status import (
    AnalysisKind,
    AnalysisPhase,
    AnalysisRun,
    Measurement,
    MetricRun,
    evolve,
    evolved,
)

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
    run: AnalysisRun, metrics: tuple[Metric, ...], obs: Observation, by_name: dict[str, Metric] | None = None
) -> tuple[AnalysisRun, list[Event]]:
    """Take every measurement that is due at ``obs.now`` and reassess the run
    (``by_name``: ``metrics`` by name, when the caller has it already)."""
    if run.phase.done:
        return run, []
    if by_name is None:
        by_name = {m.name: m for m in metrics}
    events: list[Event] = []
    updated = []
    moved = False
    for metric_run in run.metrics:
        metric = by_name.get(metric_run.name)
        if metric is None:
            raise ValueError(
                f"analysis {run.key!r} has a metric {metric_run.name!r} that its templates no longer define"
            )
        new, event = _advance_metric(metric_run, metric, obs)
        updated.append(new)
        if new is not metric_run:
            moved = True
        if event:
            events.append(event)
    if not moved:
        return run, events  # nothing was due
    phase = max((m.phase for m in updated), key=_SEVERITY.__getitem__) if len(updated) > 1 else updated[0].phase
    message, finished_at = run.message, run.finished_at
    if phase is not AnalysisPhase.RUNNING:
        worst = [m for m in updated if m.phase is phase]
        message = f"analysis {run.key} {phase.value.lower()}" + (
            f": {', '.join(m.name for m in worst)}" if phase is not AnalysisPhase.SUCCESSFUL else ""
        )
        finished_at = obs.now
        events.append(Event(obs.now, EventReason.ANALYSIS_COMPLETED, message, phase=phase.value))
    return evolved(run, {"metrics": tuple(updated), "phase": phase, "message": message, "finished_at": finished_at}), events


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


def measurements_due(run: AnalysisRun, now: float) -> tuple[str, ...]:
    """The metrics of ``run`` that ``advance_analysis`` measures at ``now`` (a window open,
    its interval over): what a runner with queries asks its metrics source for."""
    if run.phase.done:
        return ()
    return tuple(m.name for m in run.metrics
                 if m.phase is AnalysisPhase.RUNNING and m.mark_at is not None and now >= m.due_at)


def _advance_metric(mr: MetricRun, metric: Metric, obs: Observation) -> tuple[MetricRun, Event | None]:
    now = obs.now
    if mr.phase is not AnalysisPhase.RUNNING or now < mr.due_at:
        return mr, None
    stable, canary = obs.stable.counters, obs.canary.counters
    if mr.mark_at is None:  # initial delay over: open the first window
        return evolve(mr, mark_at=now, stable_mark=stable, canary_mark=canary, due_at=now + metric.interval), None
    duration = now - mr.mark_at
    window = MeasurementWindow(now, WindowStats.between(mr.canary_mark, canary, duration),
                               WindowStats.between(mr.stable_mark, stable, duration))
    windows = mr.windows + (window,)
    answer = _queried(obs, metric)
    judgement = judge_measurement(metric, windows) if answer is None else _judge_answer(metric, answer[0], window)
    phase = judgement.phase
    phase_value = phase.value
    measurements = mr.measurements + (
        Measurement(now, phase_value, judgement.value, judgement.baseline_value, judgement.message),)
    successful = mr.successful + (phase is MeasurementPhase.SUCCESSFUL)
    failed = mr.failed + (phase is MeasurementPhase.FAILED)
    inconclusive = mr.inconclusive + (phase is MeasurementPhase.INCONCLUSIVE)
    errors = mr.errors + (phase is MeasurementPhase.ERROR)
    consecutive_errors = mr.consecutive_errors + 1 if phase is MeasurementPhase.ERROR else 0
    assessed = _assess_metric(metric, judgement.final, phase, successful, failed, inconclusive, consecutive_errors,
                              len(measurements))
    mr = evolved(mr, {"phase": assessed, "due_at": now + metric.interval, "mark_at": now, "stable_mark": stable,
                      "canary_mark": canary, "windows": windows, "measurements": measurements,
                      "successful": successful, "failed": failed, "inconclusive": inconclusive, "errors": errors,
                      "consecutive_errors": consecutive_errors})
    value = "no data" if judgement.value is None else f"{judgement.value:.4g}"
    name = metric.name
    event = Event(now, EventReason.MEASUREMENT, f"{name}: {phase_value} ({value}) {judgement.message}".rstrip(),
                  name, phase_value)
    return mr, event


def _queried(obs: Observation, metric: Metric) -> tuple[float | None] | None:
    """What the metric's query answered now (a 1-tuple: the answer may be None, no series),
    or None when the observation carries no answer for it or its judge reads counters."""
    if not obs.queried or metric.judge.kind != "threshold":
        return None
    name = metric.name
    for queried_name, value in obs.queried:
        if queried_name == name:
            return (value,)
    return None


def _judge_answer(metric: Metric, answer: float | None, window: MeasurementWindow) -> Judgement:
    """The threshold judge on a query's answer instead of the counters' window."""
    signal, quantile = metric.signal, metric.quantile
    baseline = signal_value(window.baseline, signal, quantile)
    if answer is None or not math.isfinite(answer):
        what = "no series" if answer is None else "NaN (0/0: no requests in its window)"
        return Judgement(MeasurementPhase.ERROR, None, baseline,
                         f"the query returned {what}: canary {describe_signal(signal, quantile)} cannot be measured")
    value = metric.query_unit.to_signal(answer)
    shown = f"PromQL answered {answer:.6g}: canary {describe_signal(signal, quantile)} {format_value(signal, value)}"
    return judge_value(metric, value, baseline, shown)


def _assess_metric(metric: Metric, final: bool, last: MeasurementPhase, successful: int, failed: int,
                   inconclusive: int, consecutive_errors: int, count: int) -> AnalysisPhase:
    """A metric's phase once its counters are these (``count``: measurements taken)."""
    if failed > metric.failure_limit:
        return AnalysisPhase.FAILED
    if consecutive_errors > metric.consecutive_error_limit:
        return AnalysisPhase.ERROR
    if inconclusive > metric.inconclusive_limit:
        return AnalysisPhase.INCONCLUSIVE
    if final and last in (MeasurementPhase.SUCCESSFUL, MeasurementPhase.FAILED):
        return AnalysisPhase.SUCCESSFUL if last is MeasurementPhase.SUCCESSFUL else AnalysisPhase.FAILED
    if metric.count is not None and count >= metric.count:
        # Argo: the greater of the successful and inconclusive counters decides, so a
        # count spent on errors or on a judge still waiting for data is inconclusive.
        return AnalysisPhase.SUCCESSFUL if successful > inconclusive else AnalysisPhase.INCONCLUSIVE
    return AnalysisPhase.RUNNING
