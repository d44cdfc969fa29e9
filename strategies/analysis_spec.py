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
from rolloutlab.strategies.promql import QueryTemplateError, check_template
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


class QueryUnit(str, Enum):
    """What a metric's ``query`` answers, and how that answer becomes the metric's signal
    value (the conversions the importers apply to conditions, ``importers.conditions``).

    ``signal``: the query answers in the signal's own unit (an error rate as a fraction,
    a latency in milliseconds, requests per second)."""

    SIGNAL = "signal"
    SUCCESS_RATE = "successRate"  # non-failed / all requests, 0..1: error rate = 1 - x
    SUCCESS_PERCENT = "successPercent"  # the same in percent: error rate = (100 - x) / 100
    ERROR_PERCENT = "errorPercent"  # failed / all requests in percent: error rate = x / 100
    SECONDS = "seconds"  # a latency in seconds (Prometheus' base unit): milliseconds = x * 1000

    def to_signal(self, value: float) -> float:
        """The query's answer ``value`` in the signal's unit."""
        if self is QueryUnit.SUCCESS_RATE:
            return 1.0 - value
        if self is QueryUnit.SUCCESS_PERCENT:
            return (100.0 - value) / 100.0
        if self is QueryUnit.ERROR_PERCENT:
            return value / 100.0
        if self is QueryUnit.SECONDS:
            return value * 1000.0
        return value


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
    """Kayenta's score thresholds: ``score >= pass`` passes, ``>= marginal`` is inconclusive.

    ``marginalInclusive: false`` fails a score equal to ``marginal``: Spinnaker's
    kayentaCanary stage ends an interval whose score is ``<= marginal``
    (orca ``MonitorKayentaCanaryTask``), where Kayenta's own classifier calls it Marginal
    (``ThresholdScoreClassifier``: ``score >= marginal``).
    """

    pass_: Number = Field(95.0, alias="pass", ge=0, le=100)
    marginal: Number = Field(75.0, ge=0, le=100)
    marginal_inclusive: bool = True

    @model_validator(mode="after")
    def _order(self) -> "ScoreThresholds":
        if self.marginal > self.pass_:
            raise FieldError(("marginal",), f"marginal score {self.marginal} is above the pass score {self.pass_}")
        return self


class NanStrategy(str, Enum):
    """Kayenta's ``nanStrategy``: what a window without data on one side becomes."""

    REMOVE = "remove"  # dropped from that side's series (Kayenta's default)
    REPLACE = "replace"  # counted as 0: no errors, no latency (for count-like metrics)


class EffectMeasure(str, Enum):
    """Kayenta's ``effectSize.measure``."""

    MEAN_RATIO = "meanRatio"  # mean(canary) / mean(baseline); bounds default to 1
    CLES = "cles"  # P(canary value > baseline value); bounds default to 0.5


class EffectSize(SpecModel):
    """Kayenta's ``effectSize``: how large a statistically significant change must be to count.

    Written as Kayenta writes it. meanRatio: ``allowedIncrease: 1.1`` fails a canary whose
    mean is at least 1.1 × the baseline's, ``allowedDecrease: 0.9`` one at most 0.9 × it.
    cles: the same comparisons on P(canary > baseline) (0.8: the canary is higher in 80% of
    pairs). A critical signal fails the whole analysis when its effect reaches
    ``criticalIncrease`` / ``criticalDecrease``. Unset bounds take Kayenta's default for the
    measure (1.0 for meanRatio, 0.5 for cles), so by default any significant change counts.
    """

    measure: EffectMeasure = EffectMeasure.MEAN_RATIO
    allowed_increase: Number | None = None
    allowed_decrease: Number | None = None
    critical_increase: Number | None = None
    critical_decrease: Number | None = None

    @model_validator(mode="after")
    def _ranges(self) -> "EffectSize":
        cles = self.measure is EffectMeasure.CLES
        for name in ("allowed_increase", "allowed_decrease", "critical_increase", "critical_decrease"):
            value = getattr(self, name)
            if value is None:
                continue
            if cles and not 0 <= value <= 1:
                raise FieldError((to_camel(name),), f"a cles bound is a probability between 0 and 1, got {value:g}")
            if not cles and not 0 < value <= MAX_FACTOR:
                raise FieldError((to_camel(name),), f"a meanRatio bound is a ratio above 0 (1.1 = 10% higher), "
                                                    f"got {value:g}")
        return self

    def bound(self, name: str) -> float:
        """A bound with Kayenta's default for the measure filled in."""
        value = getattr(self, name)
        if value is not None:
            return value
        return 0.5 if self.measure is EffectMeasure.CLES else 1.0


class OutlierStrategy(str, Enum):
    KEEP = "keep"
    REMOVE = "remove"


class Outliers(SpecModel):
    """Kayenta's ``outliers``: drop values outside the IQR fences (widened to the 1st/99th
    percentiles) from each side's series before comparing."""

    strategy: OutlierStrategy = OutlierStrategy.KEEP
    outlier_factor: Number = Field(3.0, gt=0, le=MAX_FACTOR)


_MOVED_EFFECT_KEYS = ("allowedIncrease", "allowedDecrease", "allowed_increase", "allowed_decrease")


class ScoredSignal(SpecModel):
    """One signal of a Kayenta canary config (a metric of ``metrics[]`` with its
    ``analysisConfigurations.canary``), compared canary vs baseline.

    ``direction`` defaults to ``increase`` (a lower error rate or latency never fails);
    Kayenta's own default is ``either``, which the Kayenta importer writes out. ``groups``
    are Kayenta's metric groups, scored with the judge's ``groupWeights``; without groups
    every signal is its own group of weight ``weight``. ``muted`` signals are judged and
    reported but left out of the score.
    """

    signal: Signal
    quantile: Number | None = Field(None, gt=0, lt=1)
    name: str | None = Field(None, min_length=1)  # how messages call it (a Kayenta metric's name)
    direction: Direction = Direction.INCREASE
    critical: bool = False  # failing it (beyond effectSize.critical*) makes the whole score 0
    must_have_data: bool = False  # no data fails the signal instead of leaving it out of the score
    muted: bool = False
    nan_strategy: NanStrategy = NanStrategy.REMOVE
    effect_size: EffectSize = EffectSize()
    outliers: Outliers = Outliers()
    groups: tuple[str, ...] = ()
    weight: Number = Field(1.0, gt=0, le=MAX_FACTOR)

    @model_validator(mode="before")
    @classmethod
    def _moved(cls, data: object) -> object:
        if isinstance(data, dict):
            for key in _MOVED_EFFECT_KEYS:
                if key in data:
                    raise FieldError((key,), f"{key} moved to effectSize.{to_camel(key)}, written as Kayenta writes it "
                                             "(allowedDecrease is now a ratio at most 1: 0.9 fails a canary 10% lower)")
        return data


class Significance(str, Enum):
    """When a difference between canary and baseline counts as real."""

    INTERVAL = "interval"  # Kayenta: the whole confidence interval lies beyond ±tolerance·|estimate|
    P_VALUE = "pValue"  # the two-sided Mann-Whitney test's p < 1 - confidence (exact for small samples)


class MannWhitneyJudge(SpecModel):
    """Kayenta's NetflixACAJudge: per signal a Mann-Whitney comparison of the canary's
    per-window series with the baseline's, classified Pass/High/Low/Nodata; the score is
    the weighted share of passing signals per group (``groupWeights``, Kayenta's
    ``classifier.groupWeights``).

    ``confidence`` 0.98 and ``tolerance`` 0.25 are the values NetflixACAJudge hard-codes.
    ``judgeEvery`` judges every n-th window only (the others are Pending): Kayenta judges
    once per canary analysis interval, over points one ``step`` apart. ``lookback`` judges
    the latest n windows only (Kayenta's ``lookbackMins``); none means all of the run's.
    """

    signals: tuple[ScoredSignal, ...] = ()  # empty: the metric's own signal, direction increase
    group_weights: dict[str, Number] = Field(default_factory=dict)
    thresholds: ScoreThresholds = ScoreThresholds()
    significance: Significance = Significance.INTERVAL
    confidence: Number = Field(0.98, gt=0.5, lt=1)
    tolerance: Number = Field(0.25, ge=0, le=MAX_FACTOR)  # only for significance: interval
    min_points: Count = Field(4, ge=2, le=MAX_MEASUREMENTS)  # windows before anything is judged
    judge_every: Count = Field(1, ge=1, le=MAX_MEASUREMENTS)
    lookback: Count | None = Field(None, ge=2, le=MAX_MEASUREMENTS)

    @model_validator(mode="after")
    def _groups(self) -> "MannWhitneyJudge":
        grouped = [bool(s.groups) for s in self.signals]
        if any(grouped):
            for i, s in enumerate(self.signals):
                if not s.groups and not s.muted:
                    raise FieldError(("signals", i, "groups"), "some signals have groups and this one has none: "
                                     "give every signal a group, or mute it (Kayenta scores groups, not signals)")
                if s.weight != 1.0:
                    raise FieldError(("signals", i, "weight"), "a grouped signal's weight comes from groupWeights; "
                                                               "weight is for signals without groups")
        known = {g for s in self.signals for g in s.groups}
        for group, weight in self.group_weights.items():
            if group not in known:
                raise FieldError(("groupWeights", group), f"no signal is in group {group!r} (groups: "
                                                          f"{', '.join(sorted(known)) or 'none'})")
            if not 0 <= weight <= 100:
                raise FieldError(("groupWeights", group), f"a group weight is a share of 100, got {weight:g}")
        if sum(self.group_weights.values()) > 100:
            raise FieldError(("groupWeights",), f"group weights add up to {sum(self.group_weights.values()):g}, "
                                                "above 100: the score could exceed 100")
        if self.lookback is not None and self.lookback < self.min_points:
            raise FieldError(("lookback",), f"lookback {self.lookback} is below minPoints {self.min_points}: "
                                            "the judge would never have enough windows")
        return self


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
    query: str | None = Field(None, min_length=1)
    query_unit: QueryUnit = QueryUnit.SIGNAL
    args: dict[str, str] = Field(default_factory=dict)  # Argo's args / Flagger's templateVariables the query reads

    @field_validator("success_condition", "failure_condition")
    @classmethod
    def _parse(cls, value: str | None) -> str | None:
        if value is not None:
            Condition.parse(value)
        return value

    @model_validator(mode="after")
    def _check(self) -> "Metric":
        if self.query is not None:
            try:
                check_template(self.query, self.args)
            except QueryTemplateError as error:
                raise FieldError(("query",), f"metric {self.name!r}: {error}") from None
        elif self.query_unit is not QueryUnit.SIGNAL or self.args:
            raise FieldError(("queryUnit" if self.query_unit is not QueryUnit.SIGNAL else "args",),
                             f"metric {self.name!r} has no query for it to apply to")
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
