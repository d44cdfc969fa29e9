"""The threshold judge reproduces Argo Rollouts' EvaluateResult and Flagger's thresholdRange."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rolloutlab.strategies.judges import MeasurementPhase, judge_measurement, signal_value
from rolloutlab.strategies.judges.threshold import evaluate_conditions
from rolloutlab.strategies.observation import LATENCY_BUCKETS_MS, MeasurementWindow, WindowStats
from rolloutlab.strategies.spec import Condition, Metric, Signal, ThresholdRange

S, F, I, E = (
    MeasurementPhase.SUCCESSFUL,
    MeasurementPhase.FAILED,
    MeasurementPhase.INCONCLUSIVE,
    MeasurementPhase.ERROR,
)


def window(requests: int, errors: int, baseline: tuple[int, int] = (1000, 5), duration: float = 60.0) -> MeasurementWindow:
    return MeasurementWindow(
        at=duration,
        canary=WindowStats(duration, requests, errors),
        baseline=WindowStats(duration, baseline[0], baseline[1]),
    )


# (success, failure, thresholdRange, canary requests, canary errors) -> phase
ROWS = [
    ("result < 0.01", None, None, 1000, 5, S),
    ("result < 0.01", None, None, 1000, 20, F),
    (None, "result > 0.05", None, 1000, 100, F),
    (None, "result > 0.05", None, 1000, 10, S),
    ("result < 0.01", "result > 0.05", None, 1000, 5, S),
    ("result < 0.01", "result > 0.05", None, 1000, 100, F),
    ("result < 0.01", "result > 0.05", None, 1000, 20, I),
    ("result < 0.5", "result > 0.01", None, 1000, 100, F),
    ("result <= 0.01", None, None, 100, 1, S),
    ("result[0] < 0.01", None, None, 1000, 5, S),
    ("result >= 0.001 && result < 0.01", None, None, 1000, 0, F),
    ("result >= 0.001 && result < 0.01", None, None, 1000, 5, S),
    (None, "result < 0.001 || result > 0.05", None, 1000, 0, F),
    (None, "result < 0.001 || result > 0.05", None, 1000, 5, S),
    (None, None, ThresholdRange(max=0.01), 1000, 5, S),
    (None, None, ThresholdRange(max=0.01), 1000, 11, F),
    (None, None, ThresholdRange(min=0.001, max=0.01), 1000, 0, F),
    (None, None, ThresholdRange(min=0.0, max=0.01), 1000, 10, S),
    (None, "result > 0.005", ThresholdRange(max=0.01), 1000, 8, F),
    ("result < 0.005", None, ThresholdRange(max=0.01), 1000, 8, F),
    ("result < 0.1", None, ThresholdRange(max=0.01), 1000, 50, F),
    ("result < 0.01", None, None, 0, 0, E),
    (None, "result > 0.05", None, 0, 0, E),
    (None, None, ThresholdRange(max=0.01), 0, 0, E),
]
IDS = [
    "success only, holds: Successful",
    "success only, does not hold: Failed",
    "failure only, holds: Failed",
    "failure only, does not hold: Successful",
    "both given, success holds: Successful",
    "both given, failure holds: Failed",
    "both given, neither holds: Inconclusive",
    "both given, both hold: failure wins",
    "boundary value satisfies <= (1 error in 100 = 1%)",
    "result[0] reads like result",
    "&& condition, below the lower clause: Failed",
    "&& condition, inside: Successful",
    "|| failure condition, first clause holds: Failed",
    "|| failure condition, neither clause: Successful",
    "Flagger max only, inside: Successful",
    "Flagger max only, above: Failed",
    "Flagger min and max, below min: Failed",
    "Flagger range, exactly on max: Successful",
    "range inside but failureCondition holds: Failed",
    "range inside but successCondition does not hold: Failed",
    "range outside fails even when successCondition holds",
    "no requests with successCondition: Error",
    "no requests with failureCondition: Error",
    "no requests with thresholdRange: Error",
]


@pytest.mark.parametrize(("success", "failure", "bounds", "requests", "errors", "phase"), ROWS, ids=IDS)
def test_threshold_table(success, failure, bounds, requests, errors, phase):
    """Each row's conditions and canary error rate give Argo's (or Flagger's) phase."""
    metric = Metric(name="error-rate", success_condition=success, failure_condition=failure, threshold_range=bounds)
    judgement = judge_measurement(metric, [window(requests, errors)])
    assert judgement.phase is phase, judgement.message
    assert judgement.final is False


ARGO_TABLE = [
    # (success given, success holds, failure given, failure holds) -> phase, as EvaluateResult's switch
    (False, False, False, False, S),
    (True, True, False, False, S),
    (True, False, False, False, F),
    (False, False, True, True, F),
    (False, False, True, False, S),
    (True, True, True, False, S),
    (True, False, True, True, F),
    (True, True, True, True, F),
    (True, False, True, False, I),
]


@pytest.mark.parametrize(
    ("has_success", "success_holds", "has_failure", "failure_holds", "phase"),
    ARGO_TABLE,
    ids=[
        "no conditions: Successful",
        "success holds",
        "success fails, no failure condition: Failed",
        "failure holds, no success condition",
        "failure does not hold, no success condition: Successful",
        "success holds, failure does not",
        "failure holds, success does not",
        "both hold: Failed",
        "neither holds: Inconclusive",
    ],
)
def test_evaluate_conditions_matches_argo_switch(has_success, success_holds, has_failure, failure_holds, phase):
    """evaluate_conditions follows every branch of Argo's EvaluateResult."""
    value = 1.0
    success = Condition.parse("result >= 1" if success_holds else "result < 1") if has_success else None
    failure = Condition.parse("result >= 1" if failure_holds else "result < 1") if has_failure else None
    assert evaluate_conditions(value, success, failure)[0] is phase


@given(
    value=st.floats(min_value=0, max_value=1, allow_nan=False),
    low=st.floats(min_value=0, max_value=1, allow_nan=False),
    width=st.floats(min_value=0, max_value=1, allow_nan=False),
)
def test_range_passes_exactly_inside(value, low, width):
    """A canary value passes a thresholdRange exactly when min <= value <= max."""
    bounds = ThresholdRange(min=low, max=low + width)
    requests = 10_000
    errors = round(value * requests)
    rate = errors / requests
    judgement = judge_measurement(Metric(name="m", threshold_range=bounds), [window(requests, errors)])
    assert (judgement.phase is S) == (bounds.min <= rate <= bounds.max)
    assert judgement.phase in (S, F)


def test_only_the_last_window_is_judged():
    """Earlier windows of the run do not change the threshold judge's verdict."""
    metric = Metric(name="m", success_condition="result < 0.01")
    assert judge_measurement(metric, [window(1000, 500), window(1000, 1)]).phase is S
    assert judge_measurement(metric, [window(1000, 1), window(1000, 500)]).phase is F


def test_judgement_reports_canary_and_baseline_values():
    """The judgement carries the canary's value, the baseline's, and a sentence naming the rule."""
    metric = Metric(name="m", success_condition="result < 0.01")
    judgement = judge_measurement(metric, [window(1000, 20, baseline=(2000, 4))])
    assert judgement.value == pytest.approx(0.02)
    assert judgement.baseline_value == pytest.approx(0.002)
    assert "result < 0.01" in judgement.message and "2%" in judgement.message


def _latency_stats(counts: list[int]) -> WindowStats:
    return WindowStats(60.0, sum(counts), 0, tuple(counts))


def test_latency_quantile_is_judged_in_milliseconds():
    """A latency metric reads its quantile from the window's histogram, in ms."""
    counts = [0] * len(LATENCY_BUCKETS_MS)
    counts[4] = 100  # everything in (50, 100] ms
    stats = _latency_stats(counts)
    metric = Metric(name="p50", signal=Signal.LATENCY, quantile=0.5, success_condition="result < 80")
    win = MeasurementWindow(at=60.0, canary=stats, baseline=stats)
    judgement = judge_measurement(metric, [win])
    assert judgement.value == pytest.approx(75.0)
    assert judgement.phase is S


def test_latency_without_histogram_is_an_error():
    """Requests without a latency histogram give no latency value: the measurement errors."""
    metric = Metric(name="p99", signal=Signal.LATENCY, success_condition="result < 500")
    judgement = judge_measurement(metric, [window(1000, 0)])
    assert judgement.phase is E
    assert judgement.value is None
    assert "no latency data" in judgement.message


def test_zero_throughput_is_a_measurement_not_missing_data():
    """A window with no requests measures throughput 0 rps, which a threshold can fail."""
    metric = Metric(name="rps", signal=Signal.THROUGHPUT, success_condition="result > 1")
    judgement = judge_measurement(metric, [window(0, 0)])
    assert judgement.phase is F
    assert judgement.value == 0.0


@pytest.mark.parametrize(
    ("signal", "quantile", "expected"),
    [(Signal.ERROR_RATE, None, 0.01), (Signal.THROUGHPUT, None, 2000 / 60), (Signal.LATENCY, 0.99, None)],
    ids=["error rate is errors/requests", "throughput is requests per second", "latency needs a histogram"],
)
def test_signal_value(signal, quantile, expected):
    """signal_value reads each signal from a window's stats, None when there is no data."""
    value = signal_value(WindowStats(60.0, 2000, 20), signal, quantile)
    assert value == (pytest.approx(expected) if expected is not None else None)
