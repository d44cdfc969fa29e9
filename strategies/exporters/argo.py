"""A strategy spec -> an Argo Rollouts ``Rollout`` and its ``AnalysisTemplate`` documents.

The inverse of :mod:`strategies.importers.argo`: our strategy files already use
``spec.strategy``'s field names (argoproj/argo-rollouts ``pkg/apis/rollouts/v1alpha1/types.go``),
so most fields are written as they are. What needs a decision:

- **the pods**: the Rollout points at the user's Deployment (``workloadRef``, as in
  argo-rollouts examples/workload-ref/workload-ref.yaml) rather than inventing a pod template;
- **trafficRouting: router** is written as Istio (``virtualService`` + ``canaryService`` /
  ``stableService``): Argo's validation accepts ``setMirrorRoute`` with Istio only and
  ``setHeaderRoute`` with Istio, ALB or APISIX (pkg/apis/rollouts/validation/validation.go,
  ``InvalidSetMirrorRouteTrafficPolicy``); the Service and VirtualService names are
  placeholders, and a warning says so;
- **metrics** get a Prometheus provider with the user's query (or the documented default,
  with a warning), wrapped in ``scalar()`` when the conditions compare ``result`` itself (so
  Argo hands the expression one number, metricproviders/prometheus ``processResponse``) and
  left an instant vector when they read ``result[0]``; the Mann-Whitney judge becomes
  Argo's ``kayenta`` provider;
- **rolling** is Argo's canary without steps, which Argo documents as its rolling update
  (argoproj/argo-rollouts examples/rollout-rolling-update.yaml: "For a normal rolling update,
  simply specify the canary strategy without steps defined").

Refused (:class:`~rolloutlab.errors.InputError`, exit 2): feature flags and the sequential
judge (Argo has neither). Exported with a warning naming the loss: region waves, a baseline
deployment, ``holdOnFailure``, a scale-down delay or ``dynamicStableScale`` without a
traffic router (Argo refuses them there), fractional seconds Argo's integer fields round.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from rolloutlab.strategies.exporters.metrics import (
    Export,
    ExportContext,
    condition_in_query_unit,
    fill_interval,
    go_duration,
    plain,
    used_templates,
)
from rolloutlab.strategies.importers.argo import API_VERSION
from rolloutlab.strategies.routes import HeaderRoute, MirrorRoute, RouteMatch, StringMatch
from rolloutlab.strategies.spec import (
    BlueGreenStrategy,
    CanaryStep,
    CanaryStrategy,
    Metric,
    RolloutAnalysis,
    Signal,
    StrategySpec,
    TrafficRouting,
)

PROMETHEUS_ADDRESS = "http://prometheus.monitoring.svc:9090"
"""Where the AnalysisTemplates' Prometheus provider looks (a placeholder; warned about)."""
KAYENTA_ADDRESS = "http://kayenta.kayenta.svc:8090"
_ARGO_DEFAULT_SCALE_DOWN = 30.0  # Argo's defaults.DefaultScaleDownDelaySeconds and the abort one
_INDEXED = re.compile(r"result\s*\[\s*0\s*\]")
_BARE = re.compile(r"\bresult\b(?!\s*\[)")


def export_argo(spec: StrategySpec, queries: Mapping[Signal, str] | None = None, source: str | None = None) -> Export:
    """The Rollout and AnalysisTemplates that run ``spec`` in Argo Rollouts.

    ``queries`` maps a signal to its Prometheus query template (``metrics.DEFAULT_QUERIES``
    when absent); ``source`` is what a refusal names as the file (the strategy's name by default).
    """
    ctx = ExportContext(spec, "Argo Rollouts", dict(queries or {}), source or spec.name)
    return _ArgoExport(ctx).run()


class _ArgoExport:
    def __init__(self, ctx: ExportContext) -> None:
        self.ctx = ctx
        self.spec = ctx.spec

    def run(self) -> Export:
        spec, ctx = self.spec, self.ctx
        s = spec.strategy
        if s.feature_flag is not None:
            raise ctx.refuse("strategy.featureFlag", "Argo Rollouts has no feature flags: it routes requests by "
                                                     "weight and header, never by a flag evaluated in the code")
        if spec.waves is not None:
            ctx.warn("waves", "Argo Rollouts runs one Rollout in one cluster: this is what every region runs; the "
                              "waves (their order, bake times and stop-the-line) are not written")
        rollout_spec: dict[str, Any] = {}
        if spec.replicas is not None:
            rollout_spec["replicas"] = spec.replicas
        rollout_spec["progressDeadlineSeconds"] = self._int_seconds(spec.progress_deadline_seconds,
                                                                    "progressDeadlineSeconds")
        if spec.progress_deadline_abort:
            rollout_spec["progressDeadlineAbort"] = True
        rollout_spec["workloadRef"] = {"apiVersion": "apps/v1", "kind": "Deployment", "name": spec.name}
        ctx.warn("spec.workloadRef", f"the pods come from the Deployment {spec.name!r} (workloadRef): point it at "
                                     "your Deployment, or replace it with your selector and pod template")
        if s.canary is not None:
            strategy = {"canary": self._canary(s.canary)}
        elif s.blue_green is not None:
            strategy = {"blueGreen": self._blue_green(s.blue_green)}
        else:
            ctx.warn("strategy.rolling", "Argo Rollouts has no rolling strategy: written as its canary without "
                                         "steps, which Argo runs as a rolling update with the same maxSurge and "
                                         "maxUnavailable (an import reads it back as a canary without steps)")
            strategy = {"canary": {"maxSurge": s.rolling.max_surge, "maxUnavailable": s.rolling.max_unavailable}}
        rollout_spec["strategy"] = strategy
        rollout = {"apiVersion": API_VERSION, "kind": "Rollout", "metadata": {"name": spec.name}, "spec": rollout_spec}
        templates = [self._template(name) for name in used_templates(spec)]
        unused = [t.name for t in spec.analysis_templates if t.name not in used_templates(spec)]
        for name in unused:
            ctx.warn(f"analysisTemplates.{name}", "no analysis uses this template; not written")
        if templates:
            ctx.warn("AnalysisTemplate", f"the Prometheus address {PROMETHEUS_ADDRESS} is a placeholder: set your "
                                         "Prometheus' address in every AnalysisTemplate")
        return Export((rollout, *templates), tuple(ctx.warnings))

    # ------------------------------------------------------------------ strategies

    def _canary(self, c: CanaryStrategy) -> dict:
        ctx = self.ctx
        routed = c.traffic_routing is TrafficRouting.ROUTER
        out: dict[str, Any] = {}
        if c.steps:
            out["steps"] = [self._step(step, i) for i, step in enumerate(c.steps)]
        if c.analysis is not None:
            analysis = self._ref(c.analysis)
            if c.analysis.starting_step:
                analysis["startingStep"] = c.analysis.starting_step
            out["analysis"] = analysis
            if c.analysis.hold_on_failure:
                ctx.warn("strategy.canary.analysis.holdOnFailure", "Argo Rollouts does not hold a step while a "
                         "measurement fails (a Flagger behaviour): its steps go on until failureLimit aborts; lost")
        out["maxSurge"] = c.max_surge
        out["maxUnavailable"] = c.max_unavailable
        if routed:
            out["canaryService"] = f"{self.spec.name}-canary"
            out["stableService"] = f"{self.spec.name}-stable"
            routing: dict[str, Any] = {"istio": {"virtualService": {"name": f"{self.spec.name}-vsvc",
                                                                    "routes": ["primary"]}}}
            if c.managed_routes:
                routing["managedRoutes"] = [{"name": r.name} for r in c.managed_routes]
            out["trafficRouting"] = routing
            ctx.warn("strategy.canary.trafficRouting", f"the router is written as Istio with placeholder names (Services "
                     f"{self.spec.name}-canary and {self.spec.name}-stable, VirtualService {self.spec.name}-vsvc, route "
                     "primary): use your router's; Argo mirrors with Istio only, and routes headers with Istio, ALB "
                     "or APISIX")
            if c.dynamic_stable_scale:
                out["dynamicStableScale"] = True
        elif c.dynamic_stable_scale:  # the spec refuses this already; kept for a spec built by hand
            ctx.warn("strategy.canary.dynamicStableScale", "Argo refuses it without a traffic router; left out")
        for key, value in (("scaleDownDelaySeconds", c.scale_down_delay_seconds),
                           ("abortScaleDownDelaySeconds", c.abort_scale_down_delay_seconds)):
            if value == _ARGO_DEFAULT_SCALE_DOWN:
                continue
            if key == "scaleDownDelaySeconds" and not routed:
                ctx.warn(f"strategy.canary.{key}", "Argo allows it only with a traffic router (\"Canary "
                         "scaleDownDelaySeconds can only be used with traffic routing\"); left out, Argo scales the "
                         "old pods down as the canary's come up")
                continue
            out[key] = self._int_seconds(value, f"strategy.canary.{key}")
        if c.baseline:
            ctx.warn("strategy.canary.baseline", "Argo Rollouts runs baseline pods only in an experiment step, which "
                     "rolloutlab does not import; left out: the analysis sees the canary against the stable")
        return out

    def _step(self, step: CanaryStep, i: int) -> dict:
        out: dict[str, Any] = {}
        if step.set_canary_scale is not None:
            scale = step.set_canary_scale
            if scale.match_traffic_weight:
                out["setCanaryScale"] = {"matchTrafficWeight": True}
            elif scale.replicas is not None:
                out["setCanaryScale"] = {"replicas": scale.replicas}
            else:
                out["setCanaryScale"] = {"weight": scale.weight}
        if step.set_header_route is not None:
            out["setHeaderRoute"] = _header_route(step.set_header_route)
        if step.set_mirror_route is not None:
            out["setMirrorRoute"] = _mirror_route(step.set_mirror_route)
        if step.set_weight is not None:
            out["setWeight"] = step.set_weight
        if step.pause is not None:
            if step.pause.duration is None:
                out["pause"] = {}
            else:
                seconds = step.pause.duration
                if seconds != int(seconds):
                    seconds = float(math.ceil(seconds))
                    self.ctx.warn(f"strategy.canary.steps[{i}].pause.duration", f"Argo pauses whole seconds: "
                                  f"{step.pause.duration:g}s becomes {seconds:g}s")
                out["pause"] = {"duration": go_duration(seconds)}
        if step.analysis is not None:
            out["analysis"] = self._ref(step.analysis)
        return out

    def _blue_green(self, bg: BlueGreenStrategy) -> dict:
        out: dict[str, Any] = {"activeService": bg.active_service}
        if bg.preview_service is not None:
            out["previewService"] = bg.preview_service
        if bg.preview_replica_count is not None:
            out["previewReplicaCount"] = bg.preview_replica_count
        out["autoPromotionEnabled"] = bg.auto_promotion_enabled
        if bg.auto_promotion_seconds:
            if bg.auto_promotion_enabled:
                out["autoPromotionSeconds"] = self._int_seconds(bg.auto_promotion_seconds,
                                                                "strategy.blueGreen.autoPromotionSeconds")
            else:
                self.ctx.warn("strategy.blueGreen.autoPromotionSeconds",
                              "Argo ignores it while autoPromotionEnabled is false; left out")
        for key, ref in (("prePromotionAnalysis", bg.pre_promotion_analysis),
                         ("postPromotionAnalysis", bg.post_promotion_analysis)):
            if ref is not None:
                out[key] = self._ref(ref)
        for key, value in (("scaleDownDelaySeconds", bg.scale_down_delay_seconds),
                           ("abortScaleDownDelaySeconds", bg.abort_scale_down_delay_seconds)):
            if value != _ARGO_DEFAULT_SCALE_DOWN:
                out[key] = self._int_seconds(value, f"strategy.blueGreen.{key}")
        return out

    def _int_seconds(self, seconds: float, where: str) -> int:
        """Argo's int32 seconds; a fraction is rounded up, with a warning."""
        if seconds == int(seconds):
            return int(seconds)
        self.ctx.warn(where, f"Argo takes whole seconds: {seconds:g}s becomes {math.ceil(seconds)}s")
        return math.ceil(seconds)

    # ------------------------------------------------------------------ analysis

    @staticmethod
    def _ref(ref: RolloutAnalysis) -> dict:
        return {"templates": [{"templateName": t.template_name} for t in ref.templates]}

    def _template(self, name: str) -> dict:
        template = next(t for t in self.spec.analysis_templates if t.name == name)
        metrics = [self._metric(m, f"analysisTemplates.{name}.metrics[{k}]") for k, m in enumerate(template.metrics)]
        spec: dict[str, Any] = {}
        args = self._args(template, name)
        if args:  # the values the metrics' own queries read as {{args.x}}
            spec["args"] = [{"name": k, "value": v} for k, v in args.items()]
        spec["metrics"] = metrics
        return {"apiVersion": API_VERSION, "kind": "AnalysisTemplate", "metadata": {"name": name}, "spec": spec}

    def _args(self, template: Any, name: str) -> dict[str, str]:
        """The template's args: every metric's ``args``; Argo's args belong to the template,
        so two metrics giving one arg different values cannot be written."""
        out: dict[str, str] = {}
        for k, m in enumerate(template.metrics):
            for arg, value in m.args.items():
                if out.setdefault(arg, value) != value:
                    raise self.ctx.refuse(f"analysisTemplates.{name}.metrics[{k}].args.{arg}",
                                          f"another metric of template {name!r} gives arg {arg!r} the value "
                                          f"{out[arg]!r}; Argo's args are the template's, one value each")
        return out

    def _metric(self, m: Metric, where: str) -> dict:
        ctx = self.ctx
        out: dict[str, Any] = {"name": m.name, "interval": go_duration(m.interval)}
        if m.count is not None:
            out["count"] = m.count
        if m.initial_delay:
            out["initialDelay"] = go_duration(m.initial_delay)
        kind = m.judge.kind
        if kind == "sequential":
            raise ctx.refuse(f"{where}.judge.sequential", "Argo Rollouts has no sequential test (an anytime-valid "
                             "SPRT on error counts) among its metric providers; use the threshold judge, or "
                             "mannWhitney (Argo's Kayenta provider)")
        if kind == "mannWhitney":
            out["provider"] = {"kayenta": self._kayenta(m, where)}
        else:
            query, reading = ctx.query(m, where)
            conditions = {"successCondition": m.success_condition, "failureCondition": m.failure_condition}
            if m.threshold_range is not None:
                bounds = [(">=", m.threshold_range.min), ("<=", m.threshold_range.max)]
                conditions["successCondition"] = " && ".join(f"result {op} {plain(v)}" for op, v in bounds
                                                            if v is not None)
            given = {k: condition_in_query_unit(v, reading.conversion) for k, v in conditions.items() if v}
            indexed = any(_INDEXED.search(v) for v in given.values())
            if indexed or m.query is not None:
                # result[0] reads an instant vector: keep it one (a metric's own query is
                # written as it is), and say result[0] everywhere
                given = {k: _BARE.sub("result[0]", v) for k, v in given.items()}
            else:  # result compared as a number: scalar() hands Argo's expression one float
                query = query if query.lstrip().startswith("scalar(") else f"scalar({query})"
            out.update(given)
            out["provider"] = {"prometheus": {"address": PROMETHEUS_ADDRESS,
                                              "query": fill_interval(query, m.interval)}}
        out["failureLimit"] = m.failure_limit
        if m.inconclusive_limit:
            out["inconclusiveLimit"] = m.inconclusive_limit
        out["consecutiveErrorLimit"] = m.consecutive_error_limit
        return out

    def _kayenta(self, m: Metric, where: str) -> dict:
        """Argo's kayenta provider (metricproviders/kayenta; v1alpha1.KayentaMetric): the
        scores are written, the signals' statistics live in the Kayenta canary config."""
        ctx, judge, name = self.ctx, m.judge.mann_whitney, self.spec.name
        lost = [f for f in ("signals", "group_weights", "significance", "confidence", "tolerance", "min_points",
                            "judge_every", "lookback") if getattr(judge, f) != type(judge).model_fields[f].get_default(
                                call_default_factory=True)]
        if m.signal is not Signal.ERROR_RATE:
            lost.insert(0, f"signal {m.signal.value}")
        if lost or m.success_condition or m.failure_condition:
            ctx.warn(f"{where}.judge.mannWhitney", "Kayenta's canary config holds the signals and their statistics, "
                     "not the Rollout: " + ", ".join(lost + (["the conditions"] if m.success_condition
                                                             or m.failure_condition else []))
                     + " must be set in that config (an import reads a Kayenta metric as the error rate)")
        thresholds = {"pass": judge.thresholds.pass_, "marginal": judge.thresholds.marginal}
        for key, value in thresholds.items():
            if value != int(value):
                ctx.warn(f"{where}.judge.mannWhitney.thresholds.{key}", f"Argo's Kayenta scores are whole numbers: "
                                                                        f"{value:g} becomes {math.ceil(value)}")
            thresholds[key] = math.ceil(value)
        if not judge.thresholds.marginal_inclusive:
            ctx.warn(f"{where}.judge.mannWhitney.thresholds.marginalInclusive",
                     "Argo classifies a score equal to marginal as inconclusive; lost")
        ctx.warn(f"{where}.judge.mannWhitney", f"the Kayenta address {KAYENTA_ADDRESS}, the canary config "
                 f"{name}-{m.name}, its accounts and scopes are placeholders to replace")
        scope = {"scope": f"app={name}", "step": int(max(m.interval, 1))}
        return {"address": KAYENTA_ADDRESS, "application": name, "canaryConfigName": f"{name}-{m.name}",
                "metricsAccountName": "prometheus", "configurationAccountName": "kayenta",
                "storageAccountName": "kayenta", "threshold": thresholds,
                "scopes": [{"name": "default", "controlScope": {**scope, "scope": f"app={name}-stable"},
                            "experimentScope": {**scope, "scope": f"app={name}-canary"}}]}


# --------------------------------------------------------------------------- routes


def _string_match(match: StringMatch) -> dict:
    return {k: v for k, v in match.model_dump().items() if v is not None}


def _header_route(route: HeaderRoute) -> dict:
    out: dict[str, Any] = {"name": route.name}
    if route.match is not None:
        out["match"] = [{"headerName": m.header_name, "headerValue": _string_match(m.header_value)}
                        for m in route.match]
    return out


def _route_match(match: RouteMatch) -> dict:
    out: dict[str, Any] = {}
    if match.method is not None:
        out["method"] = _string_match(match.method)
    if match.path is not None:
        out["path"] = _string_match(match.path)
    if match.headers:
        out["headers"] = {name: _string_match(v) for name, v in match.headers.items()}
    return out


def _mirror_route(route: MirrorRoute) -> dict:
    out: dict[str, Any] = {"name": route.name, "percentage": route.percentage}
    if route.match is not None:
        out["match"] = [_route_match(m) for m in route.match]
    return out


__all__ = ["PROMETHEUS_ADDRESS", "export_argo"]
