"""The threshold judge: Argo Rollouts' and Flagger's per-measurement check of the canary.

Decision rule, on the LAST window only (earlier windows were judged when they came):

1. The canary's value of the metric's signal (``signal_value``). No data (no requests to
   the canary, or no latency histogram) → **Error**, "no requests in the window". Argo
   gets the same from a Prometheus query that returns an empty vector: ``result[0]``
   fails to evaluate and ``EvaluateResult`` returns ``AnalysisPhaseError``
   (argoproj/argo-rollouts ``metricproviders/prometheus/prometheus.go`` ``processResponse``
   → ``utils/evaluate/evaluate.go`` ``EvaluateResult``). Flagger likewise counts
   "no values found" as a failed check rather than a pass.
2. Flagger's ``thresholdRange``: a value below ``min`` or above ``max`` → **Failed**.
   A value inside the range goes on to step 3 (with no Argo condition: **Successful**).
3. Argo's ``EvaluateResult`` (``utils/evaluate/evaluate.go``), reproduced exactly:

   ===================  ===================  ==========================================
   successCondition     failureCondition     phase
   ===================  ===================  ==========================================
   none                 none                 Successful
   given                none                 holds → Successful, else Failed
   none                 given                holds → Failed, else Successful
   given                given                failure holds → Failed (failure wins);
                                             else success holds → Successful;
                                             else Inconclusive
   ===================  ===================  ==========================================

``value`` is the canary's value, ``baseline_value`` the stable version's over the same
window (for reports; the threshold judge never compares against it).
"""

from __future__ import annotations

from rolloutlab.strategies.judges.judgement import (
    Judgement,
    MeasurementPhase,
    describe_signal,
    format_value,
    signal_value,
)
from rolloutlab.strategies.observation import MeasurementWindow
from rolloutlab.strategies.spec import Condition, Metric, ThresholdRange


def evaluate_conditions(
    value: float, success: Condition | None, failure: Condition | None
) -> tuple[MeasurementPhase, str]:
    """Argo's ``EvaluateResult`` for a measured value: the phase and the reason in words."""
    if success is None and failure is None:
        return MeasurementPhase.SUCCESSFUL, "no condition to check"
    success_holds = success.holds(value) if success else False
    failure_holds = failure.holds(value) if failure else False
    if success and not failure:
        failure_holds = not success_holds  # without a failureCondition, not succeeding fails
    if failure and not success:
        success_holds = not failure_holds  # without a successCondition, not failing succeeds
    if failure_holds:
        if failure:
            return MeasurementPhase.FAILED, f"failureCondition '{failure.source}' holds"
        return MeasurementPhase.FAILED, f"successCondition '{success.source}' does not hold"  # type: ignore[union-attr]
    if not success_holds:
        return (
            MeasurementPhase.INCONCLUSIVE,
            f"neither successCondition '{success.source}' nor failureCondition '{failure.source}' holds",  # type: ignore[union-attr]
        )
    if success:
        return MeasurementPhase.SUCCESSFUL, f"successCondition '{success.source}' holds"
    return MeasurementPhase.SUCCESSFUL, f"failureCondition '{failure.source}' does not hold"  # type: ignore[union-attr]


def evaluate_range(value: float, bounds: ThresholdRange) -> tuple[bool, str]:
    """Flagger's ``thresholdRange`` check: whether ``min <= value <= max``, and why not."""
    if bounds.min is not None and value < bounds.min:
        return False, f"below thresholdRange.min {bounds.min:g}"
    if bounds.max is not None and value > bounds.max:
        return False, f"above thresholdRange.max {bounds.max:g}"
    lo = "-inf" if bounds.min is None else f"{bounds.min:g}"
    hi = "+inf" if bounds.max is None else f"{bounds.max:g}"
    return True, f"inside thresholdRange [{lo}, {hi}]"


_FACTS_SIZE = 1024  # metrics a process keeps facts for
_facts: dict[int, tuple[Metric, str, Condition | None, Condition | None]] = {}


def _metric_facts(metric: Metric) -> tuple[Metric, str, Condition | None, Condition | None]:
    """The metric itself, its signal's name in messages and its parsed conditions: the
    same on every measurement, worked out once per metric object (metrics are frozen;
    the entry holds the object, so its id is not reused while the entry lives)."""
    entry = _facts.get(id(metric))
    if entry is not None and entry[0] is metric:
        return entry
    entry = (metric, describe_signal(metric.signal, metric.quantile), metric.success, metric.failure)
    if len(_facts) >= _FACTS_SIZE:
        _facts.clear()
    _facts[id(metric)] = entry
    return entry


def judge_threshold(metric: Metric, window: MeasurementWindow) -> Judgement:
    """Judge the canary's value over ``window`` against the metric's conditions."""
    signal, quantile = metric.signal, metric.quantile
    value = signal_value(window.canary, signal, quantile)
    baseline = signal_value(window.baseline, signal, quantile)
    if value is None:
        what = "no latency data" if window.canary.requests else "no requests"
        return Judgement(
            MeasurementPhase.ERROR, None, baseline,
            f"{what} in the window: canary {describe_signal(signal, quantile)} cannot be measured"
        )
    return judge_value(metric, value, baseline, f"canary {_metric_facts(metric)[1]} {format_value(signal, value)}")


def judge_value(metric: Metric, value: float, baseline: float | None, shown: str) -> Judgement:
    """Steps 2 and 3 on one measured value (the counters' window's, or a query's answer:
    ``strategies.analysis``); ``shown`` is how the value reads in the message."""
    _, _, success, failure = _metric_facts(metric)
    reasons: list[str] = []
    if metric.threshold_range is not None:
        inside, why = evaluate_range(value, metric.threshold_range)
        if not inside:
            return Judgement(MeasurementPhase.FAILED, value, baseline, f"{shown}: {why}")
        reasons.append(why)
    if success or failure or not reasons:
        phase, why = evaluate_conditions(value, success, failure)
        reasons.append(why)
    else:
        phase = MeasurementPhase.SUCCESSFUL
    return Judgement(phase, value, baseline, f"{shown}: {'; '.join(reasons)}")
