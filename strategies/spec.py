"""What a user declares about a rollout: strategy specs whose field names follow Argo Rollouts.

A strategy file looks like an Argo Rollout's ``spec.strategy`` with its AnalysisTemplates
beside it, so a user of Argo Rollouts reads it without a manual::

    name: canary
    progressDeadlineSeconds: 600
    analysisTemplates:
      - name: error-rate
        metrics:
          - name: error-rate
            interval: 30s
            successCondition: result < 0.02
            failureLimit: 1
    strategy:
      canary:
        steps:
          - setWeight: 20
          - analysis: {templates: [{templateName: error-rate}]}
          - pause: {duration: 5m}
          - setWeight: 50
          - pause: {}            # indefinite: waits for `promote`

Python code uses snake_case attributes; YAML uses Argo's camelCase names.
Flagger's ``interval`` + ``threshold`` is expressed as a background analysis metric with
``interval: I`` and ``failureLimit: threshold - 1`` (the importer does exactly that).
"""

from __future__ import annotations

import re
from enum import Enum
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from rolloutlab.errors import FieldError
from rolloutlab.strategies.durations import Duration

MAX_REPLICAS = 1_000
"""Most pods a strategy may ask for: the scenario schema's bound on a service's replicas."""
MAX_MEASUREMENTS = 10_000
"""Most measurements a metric may count or tolerate (a week of 1-minute intervals)."""
MAX_FACTOR = 1000.0
"""Largest relative effect or weight a judge may be given."""
MIN_INTERVAL = 1.0
"""Shortest analysis interval: 1 s, the finest resolution of Prometheus-style queries."""


def _reject_bool(value: Any) -> Any:
    # YAML 1.1 reads yes/no/on/off as booleans; pydantic would read them as 1/0.
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {str(value).lower()}")
    return value


Number = Annotated[float, BeforeValidator(_reject_bool)]
"""A number written as one: true/false (YAML's yes/no/on/off) is refused, not read as 1/0."""
Count = Annotated[int, BeforeValidator(_reject_bool)]
"""A whole number written as one (no true/false)."""

IntOrPercent = int | str
"""Kubernetes' intstr: a replica count (``2``) or a percentage of replicas (``"25%"``)."""

_PERCENT = re.compile(r"^\d+%$")  # whole percents, as Kubernetes' intstr: "2.5%" is refused there too
_MAX_PERCENT = {"max_surge": 1000.0, "max_unavailable": 100.0}
"""Kubernetes refuses maxUnavailable above 100%; a surge above 100% adds nothing, and far
above it is a typo."""


def _check_int_or_percent(value: IntOrPercent, field: str, max_percent: float = 100.0) -> IntOrPercent:
    if isinstance(value, bool):
        raise ValueError(f"{field} must be a replica count or a percentage like '25%'")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"{field} must not be negative, got {value}")
        if value > MAX_REPLICAS:
            raise ValueError(f"{field} {value} is above {MAX_REPLICAS} replicas, the most that makes sense")
        return value
    if isinstance(value, str) and _PERCENT.match(value.strip()):
        if float(value.strip()[:-1]) > max_percent:
            raise ValueError(f"{field} {value.strip()} is above {max_percent:g}% of the replicas")
        return value.strip()
    raise ValueError(f"{field} must be a replica count or a whole percentage like '25%', got {value!r}")


def _format_path(path: tuple[str | int, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


def _camel_path(*parts: str | int) -> tuple[str | int, ...]:
    """A field path in the names YAML uses (``startingStep``), for :class:`FieldError`."""
    return tuple(to_camel(p) if isinstance(p, str) else p for p in parts)


class SpecModel(BaseModel):
    """Base of every spec model: camelCase in YAML, snake_case in Python, unknown keys refused."""

    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True, allow_inf_nan=False
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


class Pause(SpecModel):
    """A pause step: a timed wait, or (no duration) a manual gate that waits for `promote`."""

    duration: Duration | None = None


class SetCanaryScale(SpecModel):
    """Scale the canary independently of the traffic weight (router mode only, as in Argo)."""

    weight: Count | None = Field(None, ge=0, le=100)
    replicas: Count | None = Field(None, ge=0, le=MAX_REPLICAS)
    match_traffic_weight: bool = False

    @model_validator(mode="after")
    def _one(self) -> "SetCanaryScale":
        given = [self.weight is not None, self.replicas is not None, self.match_traffic_weight]
        if sum(given) != 1:
            raise ValueError("setCanaryScale takes exactly one of weight, replicas, matchTrafficWeight: true")
        return self


class CanaryStep(SpecModel):
    """One canary step; exactly one of its fields is set."""

    set_weight: Count | None = Field(None, ge=0, le=100)
    pause: Pause | None = None
    analysis: RolloutAnalysis | None = None
    set_canary_scale: SetCanaryScale | None = None

    @model_validator(mode="after")
    def _one(self) -> "CanaryStep":
        given = [k for k in ("set_weight", "pause", "analysis", "set_canary_scale") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a step takes exactly one of setWeight, pause, analysis, setCanaryScale")
        return self


class TrafficRouting(str, Enum):
    NONE = "none"  # weights approximated by the ratio of ready replicas (Argo's basic canary)
    ROUTER = "router"  # exact weights set on a router (service mesh, ingress, HAProxy)


class CanaryStrategy(SpecModel):
    steps: tuple[CanaryStep, ...] = ()
    analysis: BackgroundAnalysis | None = None
    max_surge: IntOrPercent = "25%"
    max_unavailable: IntOrPercent = "25%"
    traffic_routing: TrafficRouting = TrafficRouting.NONE
    dynamic_stable_scale: bool = False
    scale_down_delay_seconds: Duration = 30.0
    abort_scale_down_delay_seconds: Duration = 30.0  # after an abort, once stable is back; 0 keeps the canary (Argo)

    @field_validator("max_surge", "max_unavailable")
    @classmethod
    def _intstr(cls, value: IntOrPercent, info) -> IntOrPercent:
        return _check_int_or_percent(value, to_camel(info.field_name), _MAX_PERCENT[info.field_name])

    @model_validator(mode="after")
    def _check(self) -> "CanaryStrategy":
        if self.analysis and self.analysis.starting_step > len(self.steps):
            raise FieldError(
                _camel_path("analysis", "starting_step"),
                f"analysis.startingStep {self.analysis.starting_step} is past the last step ({len(self.steps)} steps)",
            )
        if self.traffic_routing is TrafficRouting.NONE:
            for i, step in enumerate(self.steps):
                if step.set_canary_scale:
                    raise FieldError(_camel_path("steps", i, "set_canary_scale"),
                                     "setCanaryScale needs trafficRouting: router (as in Argo Rollouts)")
            if self.dynamic_stable_scale:
                raise FieldError(_camel_path("dynamic_stable_scale"),
                                 "dynamicStableScale needs trafficRouting: router (as in Argo Rollouts)")
        return self


# --------------------------------------------------------------------------- blue-green, rolling


class BlueGreenStrategy(SpecModel):
    """Two full environments; the active Service serves users, the preview Service the new version."""

    active_service: str = "active"
    preview_service: str | None = "preview"
    preview_replica_count: Count | None = Field(None, ge=1, le=MAX_REPLICAS)
    auto_promotion_enabled: bool = True
    auto_promotion_seconds: Duration | None = None
    pre_promotion_analysis: RolloutAnalysis | None = None
    post_promotion_analysis: RolloutAnalysis | None = None
    scale_down_delay_seconds: Duration = 30.0
    abort_scale_down_delay_seconds: Duration = 30.0  # after an abort, once stable is back; 0 keeps the preview (Argo)


class RollingStrategy(SpecModel):
    """Kubernetes' Deployment RollingUpdate: no analysis, no pause, rollback by hand."""

    max_surge: IntOrPercent = "25%"
    max_unavailable: IntOrPercent = "25%"

    @field_validator("max_surge", "max_unavailable")
    @classmethod
    def _intstr(cls, value: IntOrPercent, info) -> IntOrPercent:
        return _check_int_or_percent(value, to_camel(info.field_name), _MAX_PERCENT[info.field_name])


class StrategyKind(str, Enum):
    CANARY = "canary"
    BLUE_GREEN = "blueGreen"
    ROLLING = "rolling"


class StrategyChoice(SpecModel):
    canary: CanaryStrategy | None = None
    blue_green: BlueGreenStrategy | None = None
    rolling: RollingStrategy | None = None

    @model_validator(mode="after")
    def _one(self) -> "StrategyChoice":
        given = [k for k in ("canary", "blue_green", "rolling") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("strategy takes exactly one of canary, blueGreen, rolling")
        return self

    @property
    def kind(self) -> StrategyKind:
        if self.canary:
            return StrategyKind.CANARY
        return StrategyKind.BLUE_GREEN if self.blue_green else StrategyKind.ROLLING


class StrategySpec(SpecModel):
    """A complete rollout policy: the strategy, its analysis templates and deadlines.

    ``replicas`` is normally given by the scenario's service under test; a strategy file
    may pin it. The controller refuses to run without it (see ``with_replicas``).
    """

    api_version: Literal["rolloutlab.io/v1alpha1"] = "rolloutlab.io/v1alpha1"
    kind: Literal["Strategy"] = "Strategy"
    name: str = Field(min_length=1)
    description: str = ""
    replicas: Count | None = Field(None, ge=1, le=MAX_REPLICAS)
    progress_deadline_seconds: Duration = 600.0
    progress_deadline_abort: bool = False
    analysis_templates: tuple[AnalysisTemplate, ...] = ()
    strategy: StrategyChoice

    @model_validator(mode="after")
    def _references(self) -> "StrategySpec":
        names = [t.name for t in self.analysis_templates]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise FieldError(("analysisTemplates", i, "name"),
                                 f"analysis template name {name!r} is used twice (first at "
                                 f"analysisTemplates[{names.index(name)}]); names must be unique")
        by_name = {t.name: t for t in self.analysis_templates}
        for path, ref in self.analysis_ref_paths():
            for k, t in enumerate(ref.templates):
                if t.template_name not in by_name:
                    known = ", ".join(names) or "none are defined"
                    raise FieldError((*path, "templates", k, "templateName"),
                                     f"no analysis template {t.template_name!r} (analysisTemplates: {known})")
            if not isinstance(ref, BackgroundAnalysis):
                for k, t in enumerate(ref.templates):
                    endless = [m.name for m in by_name[t.template_name].metrics if m.count is None]
                    if endless:
                        # Argo would wait on such a run forever; say so before anyone does
                        raise FieldError(
                            (*path, "templates", k, "templateName"),
                            f"this analysis would never finish: metric {endless[0]!r} of template "
                            f"{t.template_name!r} has no count (only background analysis may run without one)",
                        )
        return self

    def analysis_ref_paths(self) -> list[tuple[tuple[str | int, ...], RolloutAnalysis]]:
        """Every analysis reference in the strategy with its field path in the file, as YAML
        names it (``("strategy", "canary", "steps", 2, "analysis")``)."""
        refs: list[tuple[tuple[str | int, ...], RolloutAnalysis]] = []
        s = self.strategy
        if s.canary:
            refs += [(("strategy", "canary", "steps", i, "analysis"), st.analysis)
                     for i, st in enumerate(s.canary.steps) if st.analysis]
            if s.canary.analysis:
                refs.append((("strategy", "canary", "analysis"), s.canary.analysis))
        if s.blue_green:
            for name in ("pre_promotion_analysis", "post_promotion_analysis"):
                ref = getattr(s.blue_green, name)
                if ref:
                    refs.append((("strategy", "blueGreen", to_camel(name)), ref))
        return refs

    def analysis_refs(self) -> list[tuple[str, RolloutAnalysis]]:
        """Every analysis reference in the strategy, with where it sits (``canary.steps[2].analysis``)."""
        return [(_format_path(path[1:]), ref) for path, ref in self.analysis_ref_paths()]

    def metrics_for(self, ref: RolloutAnalysis) -> tuple[Metric, ...]:
        """The metrics an analysis reference runs: its templates' metrics, in order."""
        by_name = {t.name: t for t in self.analysis_templates}
        return tuple(m for t in ref.templates for m in by_name[t.template_name].metrics)

    def with_replicas(self, replicas: int) -> "StrategySpec":
        """This spec for a service with ``replicas`` pods (the scenario's figure)."""
        if replicas < 1:
            raise ValueError(f"replicas must be at least 1, got {replicas}")
        return self.model_copy(update={"replicas": replicas})

    def require_replicas(self) -> int:
        if self.replicas is None:
            raise ValueError(f"strategy {self.name!r} has no replica count; call with_replicas(n) first")
        return self.replicas

