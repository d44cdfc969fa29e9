"""What a user declares about analysis: metrics, their conditions and judges, and the
templates and references that run them (Argo Rollouts' AnalysisTemplate field names)."""

from __future__ import annotations

import re
from enum import Enum
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from rolloutlab.errors import FieldError
from rolloutlab.strategies.durations import Duration
from rolloutlab.strategies.spec_base import (
    MAX_FACTOR,
    MAX_MEASUREMENTS,
    MIN_INTERVAL,
    Count,
    Number,
    SpecModel,
)

# --------------------------------------------------------------------------- analysis


class Signal(str, Enum):
    """What a metric measures on each version over an interval."""

    ERROR_RATE = "errorRate"  # failed requests / requests
    LATENCY = "latency"  # a latency quantile in milliseconds (see `quantile`)
    THROUGHPUT = "throughput"  # requests per second


class Direction(str, Enum):
    """Which way a change in a signal hurts users."""

    INCREASE = "increase"
    DECREASE = "decrease"
    EITHER = "either"


_CONDITION = re.compile(
    r"^\s*result(?:\[0\])?\s*(<=|>=|<|>|==|!=)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$"
)
_OPS = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}


class Condition(BaseModel):
    """One threshold on a measurement, parsed from Argo's expression form ``result < 0.01``.

    Argo evaluates arbitrary `expr` expressions; we accept the threshold subset
    (``result`` or ``result[0]``, a comparison, a number), optionally joined by ``&&`` or
    ``||`` (one kind per condition), which covers the documented analysis examples.
    """

    model_config = ConfigDict(frozen=True)
    source: str
    clauses: tuple[tuple[str, float], ...]
    joiner: Literal["&&", "||"] = "&&"

    @classmethod
    @lru_cache(maxsize=1024)  # conditions are parsed on every measurement; the text decides all
    def parse(cls, text: str) -> "Condition":
        joiner: Literal["&&", "||"] = "||" if "||" in text else "&&"
        if "&&" in text and "||" in text:
            raise ValueError(f"condition {text!r} mixes && and ||; split it into successCondition and failureCondition")
        clauses = []
        for part in text.replace(" and ", "&&").replace(" or ", "||").split(joiner):
            match = _CONDITION.match(part)
            if not match:
                raise ValueError(
                    f"condition {text!r} is not a threshold: write it like 'result < 0.01' or 'result[0] >= 0.95'"
                )
            clauses.append((match.group(1), float(match.group(2))))
        return cls(source=text, clauses=tuple(clauses), joiner=joiner)

    def holds(self, value: float) -> bool:
        """Whether the measured value satisfies this condition."""
        results = (_OPS[op](value, bound) for op, bound in self.clauses)
        return all(results) if self.joiner == "&&" else any(results)


class ThresholdRange(SpecModel):
    """Flagger's ``thresholdRange``: a measurement passes when ``min <= value <= max``."""

    min: Number | None = None
    max: Number | None = None

    @model_validator(mode="after")
    def _bounds(self) -> "ThresholdRange":
        if self.min is None and self.max is None:
            raise ValueError("thresholdRange needs min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise FieldError(("max",), f"thresholdRange min {self.min} is above max {self.max}")
        return self


class ThresholdJudge(SpecModel):
    """Argo/Flagger semantics: each measurement is checked against the metric's conditions."""


class ScoreThresholds(SpecModel):
    """Kayenta's score thresholds: ``score >= pass`` passes, ``>= marginal`` is inconclusive."""

    pass_: Number = Field(95.0, alias="pass", ge=0, le=100)
    marginal: Number = Field(75.0, ge=0, le=100)

    @model_validator(mode="after")
    def _order(self) -> "ScoreThresholds":
        if self.marginal > self.pass_:
            raise FieldError(("marginal",), f"marginal score {self.marginal} is above the pass score {self.pass_}")
        return self


class ScoredSignal(SpecModel):
    """One signal in a Kayenta-style canary config, compared canary vs baseline."""

    signal: Signal
    quantile: Number | None = Field(None, gt=0, lt=1)
    direction: Direction = Direction.INCREASE
    critical: bool = False  # a critical signal that fails makes the whole score 0
    weight: Number = Field(1.0, gt=0, le=MAX_FACTOR)
    allowed_increase: Number = Field(1.0, ge=1.0, le=MAX_FACTOR)  # relative effect tolerated: 1.1 = up to 10% worse passes
    allowed_decrease: Number = Field(1.0, ge=1.0, le=MAX_FACTOR)  # a divisor: 1.1 = down to 1/1.1 of the baseline passes (Kayenta writes 0.9)


class MannWhitneyJudge(SpecModel):
    """Kayenta's NetflixACAJudge: Mann-Whitney U per signal, Hodges-Lehmann effect, weighted score."""

    signals: tuple[ScoredSignal, ...] = ()  # empty: the metric's own signal, direction increase
    thresholds: ScoreThresholds = ScoreThresholds()
    confidence: Number = Field(0.95, gt=0.5, lt=1)
    min_points: Count = Field(4, ge=2, le=MAX_MEASUREMENTS)  # measurements per version before a classification is made


class SequentialJudge(SpecModel):
    """An anytime-valid mixture SPRT on error counts, canary vs baseline (see judges)."""

    alpha: Number = Field(0.05, gt=0, lt=0.5)  # bound on the probability of a false alarm (rollback of a good release)
    beta: Number = Field(0.05, gt=0, lt=0.5)  # bound on the probability of an early pass of a bad release
    tolerance: Number = Field(0.0, ge=0, le=MAX_FACTOR)  # relative increase of the error rate still counted as healthy (0.2 = 20%)
    min_effect: Number = Field(1.0, gt=0, le=MAX_FACTOR)  # relative increase that must be caught: "bad" means rate ratio >= (1+tolerance)*(1+min_effect)


class JudgeChoice(SpecModel):
    """Exactly one judge; the default is the threshold judge."""

    threshold: ThresholdJudge | None = None
    mann_whitney: MannWhitneyJudge | None = None
    sequential: SequentialJudge | None = None

    @model_validator(mode="after")
    def _one(self) -> "JudgeChoice":
        chosen = [n for n in ("threshold", "mann_whitney", "sequential") if getattr(self, n) is not None]
        if len(chosen) > 1:
            names = [to_camel(n) for n in chosen]
            raise FieldError((names[1],), f"choose one judge, not {', '.join(names)}")
        if not chosen:
            object.__setattr__(self, "threshold", ThresholdJudge())
        return self

    @property
    def kind(self) -> str:
        return "mannWhitney" if self.mann_whitney else "sequential" if self.sequential else "threshold"


class Metric(SpecModel):
    """One metric of an analysis, measured every ``interval`` up to ``count`` times.

    The verdicts follow Argo Rollouts: the metric fails when more than ``failureLimit``
    measurements failed, is inconclusive past ``inconclusiveLimit``, errors past
    ``consecutiveErrorLimit`` consecutive errors (a window without data is an error), and
    succeeds when ``count`` measurements completed without that. With no ``count`` it runs
    until the analysis is stopped (background analysis) and only ever fails.
    """

    name: str = Field(min_length=1)
    signal: Signal = Signal.ERROR_RATE
    quantile: Number | None = Field(None, gt=0, lt=1)
    interval: Duration = 60.0
    count: Count | None = Field(None, ge=1, le=MAX_MEASUREMENTS)
    initial_delay: Duration = 0.0
    success_condition: str | None = None
    failure_condition: str | None = None
    threshold_range: ThresholdRange | None = None
    failure_limit: Count = Field(0, ge=0, le=MAX_MEASUREMENTS)
    inconclusive_limit: Count = Field(0, ge=0, le=MAX_MEASUREMENTS)
    consecutive_error_limit: Count = Field(4, ge=0, le=MAX_MEASUREMENTS)
    judge: JudgeChoice = JudgeChoice()

    @field_validator("success_condition", "failure_condition")
    @classmethod
    def _parse(cls, value: str | None) -> str | None:
        if value is not None:
            Condition.parse(value)
        return value

    @model_validator(mode="after")
    def _check(self) -> "Metric":
        if self.interval < MIN_INTERVAL:
            raise FieldError(("interval",), f"interval must be at least {MIN_INTERVAL:g}s (a measurement "
                                            f"over less than a second of traffic means nothing), got {self.interval:g}s")
        if self.signal is Signal.LATENCY and self.quantile is None:
            object.__setattr__(self, "quantile", 0.99)
        if self.judge.kind == "sequential" and self.signal is not Signal.ERROR_RATE:
            raise FieldError(("signal",), f"metric {self.name!r}: the sequential judge tests error counts, "
                                          "so signal must be errorRate")
        if self.judge.mann_whitney is not None:
            own = self.judge.mann_whitney.signals
            signals = [s.signal for s in own] or [self.signal]
            if Signal.THROUGHPUT in signals:
                where = (("judge", "mannWhitney", "signals", signals.index(Signal.THROUGHPUT), "signal")
                         if own else ("signal",))
                raise FieldError(where, 
                    f"metric {self.name!r}: the mannWhitney judge compares canary with baseline, and their "
                    "throughput differs by the traffic split, not by health; use errorRate or latency"
                )
        if self.judge.kind == "threshold" and not (
            self.success_condition or self.failure_condition or self.threshold_range
        ):
            raise ValueError(
                f"metric {self.name!r} has no successCondition, failureCondition or thresholdRange to judge by"
            )
        return self

    @property
    def success(self) -> Condition | None:
        return Condition.parse(self.success_condition) if self.success_condition else None

    @property
    def failure(self) -> Condition | None:
        return Condition.parse(self.failure_condition) if self.failure_condition else None


class AnalysisTemplate(SpecModel):
    """A named set of metrics, as Argo's AnalysisTemplate."""

    name: str = Field(min_length=1)
    metrics: tuple[Metric, ...] = Field(min_length=1)

    @field_validator("metrics")
    @classmethod
    def _unique(cls, metrics: tuple[Metric, ...]) -> tuple[Metric, ...]:
        names = [m.name for m in metrics]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise FieldError((i, "name"), f"metric name {name!r} is used twice "
                                              f"(first at metrics[{names.index(name)}]); names must be unique")
        return metrics


class TemplateRef(SpecModel):
    template_name: str = Field(min_length=1)


class RolloutAnalysis(SpecModel):
    """A reference to analysis templates, run as one analysis (Argo's RolloutAnalysis)."""

    templates: tuple[TemplateRef, ...] = Field(min_length=1)


class BackgroundAnalysis(RolloutAnalysis):
    """Analysis that runs beside the steps from ``startingStep`` until promotion.

    ``holdOnFailure`` (a rolloutlab extension, Flagger's behaviour): while the latest
    measurement of any metric failed, the rollout does not leave its current step, so a
    failing canary stays at its weight until it recovers or reaches ``failureLimit``.
    """

    starting_step: Count = Field(0, ge=0)
    hold_on_failure: bool = False


# --------------------------------------------------------------------------- canary
