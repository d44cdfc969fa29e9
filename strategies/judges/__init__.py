"""Analysis judges: each decides one measurement of a metric from its windows.

``judge_measurement(metric, windows)`` dispatches on ``metric.judge.kind``:

* ``threshold`` (``threshold.py``): Argo Rollouts' successCondition/failureCondition and
  Flagger's thresholdRange on the latest window's canary value.
* ``mannWhitney`` (``mann_whitney.py``): Kayenta's NetflixACAJudge over the run's series,
  canary vs baseline, scored 0..100.
* ``sequential`` (``sequential.py``): an anytime-valid mixture SPRT on error counts that
  may decide the metric early (``Judgement.final``).

``windows`` is every measurement window of the metric in the current analysis run, oldest
first; the last is the one being judged. Judges are pure and deterministic: no clock, no
RNG, the same windows give the same judgement.
"""

from __future__ import annotations

from collections.abc import Sequence

from rolloutlab.strategies.judges.judgement import Judgement, MeasurementPhase, signal_value
from rolloutlab.strategies.judges.mann_whitney import judge_mann_whitney
from rolloutlab.strategies.judges.sequential import judge_sequential
from rolloutlab.strategies.judges.threshold import judge_threshold
from rolloutlab.strategies.observation import MeasurementWindow
from rolloutlab.strategies.spec import Metric

__all__ = ["Judgement", "MeasurementPhase", "judge_measurement", "signal_value"]


def judge_measurement(metric: Metric, windows: Sequence[MeasurementWindow]) -> Judgement:
    """Judge the latest of ``windows`` (all of this run's windows of ``metric``, oldest first)."""
    if not windows:
        raise ValueError(f"metric {metric.name!r}: a measurement needs at least one window")
    kind = metric.judge.kind
    if kind == "threshold":
        return judge_threshold(metric, windows[-1])
    if kind == "mannWhitney":
        return judge_mann_whitney(metric, windows)
    if kind == "sequential":
        return judge_sequential(metric, windows)
    raise ValueError(f"metric {metric.name!r} has an unknown judge {kind!r}")
