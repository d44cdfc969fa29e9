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

from enum import Enum
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from rolloutlab.errors import FieldError
from rolloutlab.strategies.analysis_spec import (  # noqa: F401 - the spec's public names, one import away
    MIN_INTERVAL,
    AnalysisTemplate,
    BackgroundAnalysis,
    Condition,
    Direction,
    JudgeChoice,
    MannWhitneyJudge,
    Metric,
    RolloutAnalysis,
    ScoredSignal,
    ScoreThresholds,
    SequentialJudge,
    Signal,
    TemplateRef,
    ThresholdJudge,
    ThresholdRange,
)
from rolloutlab.strategies.durations import Duration
from rolloutlab.strategies.routes import HeaderMatch, HeaderRoute, ManagedRoute, MirrorRoute
from rolloutlab.strategies.search_spec import SearchField, search_parameters
from rolloutlab.strategies.spec_base import (  # noqa: F401
    _MAX_PERCENT,
    MAX_FACTOR,
    MAX_MEASUREMENTS,
    MAX_REPLICAS,
    Count,
    IntOrPercent,
    Number,
    SpecModel,
    _camel_path,
    _check_int_or_percent,
    _format_path,
    _reject_bool,
)
from rolloutlab.strategies.wave_spec import Waves, WaveStep  # noqa: F401 - public through spec


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


_CANARY_STEP_FIELDS = ("set_weight", "pause", "analysis", "set_canary_scale", "set_header_route", "set_mirror_route")


class CanaryStep(SpecModel):
    """One canary step: one of its fields, or setCanaryScale and a route beside one of the
    others, all taking effect when the step is reached (``strategies.canary``)."""

    set_weight: Count | None = Field(None, ge=0, le=100)
    pause: Pause | None = None
    analysis: RolloutAnalysis | None = None
    set_canary_scale: SetCanaryScale | None = None
    set_header_route: HeaderRoute | None = None
    set_mirror_route: MirrorRoute | None = None

    @model_validator(mode="after")
    def _one(self) -> "CanaryStep":
        """Argo Rollouts' rule (pkg/apis/rollouts/validation/validation.go, hasMultipleStepsType):
        at most one of setWeight, pause, analysis (and experiment), with setCanaryScale and a
        route beside it if wanted; rolloutlab keeps one route per step (Argo allows a
        setHeaderRoute and a setMirrorRoute together)."""
        given = [k for k in _CANARY_STEP_FIELDS if getattr(self, k) is not None]
        if not given:
            raise ValueError("a step takes one of " + ", ".join(to_camel(k) for k in _CANARY_STEP_FIELDS))
        main = [to_camel(k) for k in ("set_weight", "pause", "analysis") if k in given]
        if len(main) > 1:
            raise ValueError(f"a step takes one of setWeight, pause, analysis (with setCanaryScale, setHeaderRoute or "
                             f"setMirrorRoute beside it, as in Argo Rollouts), not {' and '.join(main)}")
        if self.set_header_route is not None and self.set_mirror_route is not None:
            raise ValueError("a step takes setHeaderRoute or setMirrorRoute, not both: rolloutlab changes one route "
                             "per step; write two steps")
        return self

    @property
    def route(self) -> HeaderRoute | MirrorRoute | None:
        return self.set_header_route or self.set_mirror_route


class TrafficRouting(str, Enum):
    NONE = "none"  # weights approximated by the ratio of ready replicas (Argo's basic canary)
    ROUTER = "router"  # exact weights set on a router (service mesh, ingress, HAProxy)


class CanaryStrategy(SpecModel):
    steps: tuple[CanaryStep, ...] = ()
    analysis: BackgroundAnalysis | None = None
    max_surge: IntOrPercent = "25%"
    max_unavailable: IntOrPercent = "25%"
    traffic_routing: TrafficRouting = TrafficRouting.NONE
    managed_routes: tuple[ManagedRoute, ...] = ()  # Argo's trafficRouting.managedRoutes, in precedence order
    dynamic_stable_scale: bool = False
    scale_down_delay_seconds: Duration = 30.0
    abort_scale_down_delay_seconds: Duration = 30.0  # after an abort, once stable is back; 0 keeps the canary (Argo)
    # Kayenta's comparison: beside the canary run a *baseline*, fresh pods of the old version as many as the
    # canary's and taking as much traffic, and judge the canary against it rather than against the long-running
    # stable (Spinnaker's kayentaCanary deploys both; Argo writes it as an Experiment with baseline and canary).
    baseline: bool = False

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
        names = [r.name for r in self.managed_routes]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise FieldError(_camel_path("managed_routes", i, "name"),
                                 f"managed route {name!r} is declared twice (first at managedRoutes[{names.index(name)}])")
        for i, step in enumerate(self.steps):
            route = step.route
            if route is None:
                continue
            field = "set_header_route" if step.set_header_route else "set_mirror_route"
            if self.traffic_routing is TrafficRouting.NONE:
                raise FieldError(_camel_path("steps", i, field),
                                 f"{to_camel(field)} needs trafficRouting: router (a router adds the route)")
            if route.name not in names:
                known = ", ".join(names) or "none are declared"
                raise FieldError(_camel_path("steps", i, field, "name"),
                                 f"route {route.name!r} is not in managedRoutes ({known}); Argo Rollouts "
                                 "only changes routes it manages")
        return self

    def routes_in_order(self, applied: dict[str, int]) -> tuple[HeaderRoute | MirrorRoute, ...]:
        """The routes in force, in managedRoutes (precedence) order, from the name -> step
        index of the step that set each (``RolloutStatus.routes``)."""
        out = []
        for managed in self.managed_routes:
            index = applied.get(managed.name)
            if index is not None:
                route = self.steps[index].route
                if route is not None and route.match is not None:
                    out.append(route)
        return tuple(out)


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


# --------------------------------------------------------------------------- feature flag


class Exposure(SpecModel):
    """Who gets the flag on: ``percentage`` of all users (flagd's ``fractional``, sticky
    per user: the same user always lands on the same side), and every user whose
    request headers match one entry of ``match`` (cohort targeting, e.g. staff)."""

    percentage: Count = Field(0, ge=0, le=100)
    match: tuple[HeaderMatch, ...] = ()

    @model_validator(mode="after")
    def _targetable(self) -> "Exposure":
        for i, m in enumerate(self.match):
            if m.header_value.regex is not None:
                # flagd's targeting is JSON Logic: it has starts_with/ends_with, no regex
                raise FieldError(("match", i, "headerValue", "regex"),
                                 "flagd targeting has no regular expressions: use exact or prefix")
        return self


class FlagStep(SpecModel):
    """One exposure step; exactly one of its fields is set."""

    set_exposure: Exposure | None = None
    pause: Pause | None = None
    analysis: RolloutAnalysis | None = None

    @model_validator(mode="after")
    def _one(self) -> "FlagStep":
        given = [k for k in ("set_exposure", "pause", "analysis") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a feature-flag step takes exactly one of setExposure, pause, analysis")
        return self


class FlagDeploy(SpecModel):
    """How the dark code ships before any exposure: a rolling update of the pods."""

    rolling: RollingStrategy = RollingStrategy()


class FeatureFlagStrategy(SpecModel):
    """Ship the new version dark, then turn its code path on user by user with a flag.

    The new version replaces the old one with the flag off (``deploy``, a rolling update:
    every user still gets the old behaviour); then the steps change the flag's exposure,
    with analysis comparing users with the flag on against users with it off. An abort
    turns the flag off for everyone, which restores users in seconds -- but only from a
    defect behind the flag: the pods keep the new version, so a defect outside the
    flagged path (a crash on start, a leak, a migration) needs the deploy's own rollback.
    An abort during the deploy rolls the pods back. All steps done: the flag is on for
    every user and the rollout is promoted.

    ``flags`` is the content of a flagd flag-definition file (the CNCF OpenFeature
    standard's format, ``{"flags": {...}}``), given inline or read from ``flagFile``
    (relative to the strategy file) when the strategy is loaded. The runner rewrites
    the targeting of ``flagKey`` for each exposure; the other flags are left as they are.
    """

    flag_key: str = Field(min_length=1)
    flag_file: str | None = None
    flags: dict[str, Any] | None = None
    on_variant: str = "on"
    off_variant: str | None = None  # None: the flag's defaultVariant
    deploy: FlagDeploy = FlagDeploy()
    analysis: BackgroundAnalysis | None = None
    steps: tuple[FlagStep, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> "FeatureFlagStrategy":
        if self.flags is None and self.flag_file is None:
            raise FieldError(("flagFile",), "a featureFlag strategy needs flagFile (a flagd flag file) or flags")
        if self.analysis and self.analysis.starting_step > len(self.steps):
            raise FieldError(_camel_path("analysis", "starting_step"),
                             f"analysis.startingStep {self.analysis.starting_step} is past the last step "
                             f"({len(self.steps)} steps)")
        return self

    def exposure_at(self, step_index: int) -> Exposure:
        """The exposure the steps ask for at ``step_index``: the last setExposure at or
        before it (nobody before the first), everybody once every step is done."""
        if step_index >= len(self.steps):
            return Exposure(percentage=100)
        for step in reversed(self.steps[: step_index + 1]):
            if step.set_exposure is not None:
                return step.set_exposure
        return Exposure()


class StrategyKind(str, Enum):
    CANARY = "canary"
    BLUE_GREEN = "blueGreen"
    ROLLING = "rolling"
    FEATURE_FLAG = "featureFlag"


class StrategyChoice(SpecModel):
    canary: CanaryStrategy | None = None
    blue_green: BlueGreenStrategy | None = None
    rolling: RollingStrategy | None = None
    feature_flag: FeatureFlagStrategy | None = None

    @model_validator(mode="after")
    def _one(self) -> "StrategyChoice":
        given = [k for k in ("canary", "blue_green", "rolling", "feature_flag") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("strategy takes exactly one of canary, blueGreen, rolling, featureFlag")
        return self

    @property
    def kind(self) -> StrategyKind:
        if self.canary:
            return StrategyKind.CANARY
        if self.feature_flag:
            return StrategyKind.FEATURE_FLAG
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
    waves: Waves | None = None  # region by region (strategies.wave_spec); None: one place, as before
    search: tuple[SearchField, ...] = ()  # what `rolloutlab tune` may change (strategies.search_spec)

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
        if self.search:
            search_parameters(self)  # every searched field exists and holds what its range says
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
        if s.feature_flag:
            refs += [(("strategy", "featureFlag", "steps", i, "analysis"), st.analysis)
                     for i, st in enumerate(s.feature_flag.steps) if st.analysis]
            if s.feature_flag.analysis:
                refs.append((("strategy", "featureFlag", "analysis"), s.feature_flag.analysis))
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

