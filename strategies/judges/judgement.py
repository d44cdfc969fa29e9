"""What a judge says about one measurement, and the signal values judges read from a window.

The phases are Argo Rollouts' measurement phases (``Successful``, ``Failed``,
``Inconclusive``, ``Error``) plus ``Pending``: a judge that compares series (Mann-Whitney)
or accumulates evidence (sequential) may not have enough data yet to say anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from rolloutlab.strategies.observation import WindowStats
from rolloutlab.strategies.spec import Signal

DEFAULT_LATENCY_QUANTILE = 0.99
"""The quantile a latency signal reads when none is given (the Metric spec's own default)."""


class MeasurementPhase(str, Enum):
    """Argo Rollouts' measurement phases, plus Pending."""

    SUCCESSFUL = "Successful"
    FAILED = "Failed"
    INCONCLUSIVE = "Inconclusive"
    ERROR = "Error"
    PENDING = "Pending"  # not enough data yet to judge: counts toward `count`, toward no limit


@dataclass(frozen=True, slots=True)
class Judgement:
    """The verdict on one measurement.

    ``value`` is what a report plots for the measurement: the canary's value (threshold
    judge), the score 0..100 (Mann-Whitney judge) or the canary/baseline error-rate ratio
    (sequential judge). ``final`` means the judge has decided the metric for good (the
    sequential test crossed a boundary): the caller takes no more measurements of it.
    """

    phase: MeasurementPhase
    value: float | None
    baseline_value: float | None = None
    message: str = ""
    final: bool = False


def signal_value(stats: WindowStats, signal: Signal, quantile: float | None) -> float | None:
    """The signal's value over one window of one version; None when the window has no data.

    Error rate is failed/all requests (no requests: no data); latency is the ``quantile``
    in milliseconds from the window's histogram (no histogram or no requests: no data);
    throughput is requests per second, and zero requests over a real window is a
    measurement of zero, not missing data.
    """
    if signal is Signal.ERROR_RATE:
        return stats.error_rate
    if signal is Signal.LATENCY:
        return stats.latency_quantile(DEFAULT_LATENCY_QUANTILE if quantile is None else quantile)
    if signal is Signal.THROUGHPUT:
        return stats.throughput
    raise ValueError(f"no judge knows how to read signal {signal!r}")


def describe_signal(signal: Signal, quantile: float | None) -> str:
    """A short name for a signal in messages: ``errorRate``, ``latency p99``, ``throughput``."""
    if signal is Signal.LATENCY:
        q = DEFAULT_LATENCY_QUANTILE if quantile is None else quantile
        return f"latency p{q * 100:g}"
    return signal.value


def format_value(signal: Signal, value: float | None) -> str:
    """A signal value as people read it: 1.23% for error rates, 250ms, 12.5 rps."""
    if value is None:
        return "no data"
    if signal is Signal.ERROR_RATE:
        return f"{value * 100:.4g}%"
    if signal is Signal.LATENCY:
        return f"{value:.4g}ms"
    return f"{value:.4g} rps"
