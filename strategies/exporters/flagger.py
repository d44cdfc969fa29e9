"""A strategy spec -> a Flagger ``Canary`` and its ``MetricTemplate`` documents.

The inverse of :mod:`strategies.importers.flagger`, which says how Flagger's loop runs
(fluxcd/flagger ``pkg/controller/scheduler.go``: one check of every metric per
``analysis.interval``, a rollback after ``threshold`` failed checks, the canary Deployment
at full size before any traffic moves). A strategy already in that form (what an import of
a Canary gives) is written back exactly; any other is written the way Flagger can run it,
with a warning for every difference:

- **progressive canary**: the ``setWeight`` values become ``stepWeight`` + ``maxWeight`` when
  they are its arithmetic steps, else ``stepWeights``; Flagger holds each weight for one
  interval, so longer pauses are lost (warned, with the times). The interval is the
  metrics' interval.
- **A/B testing**: a canary whose ``setHeaderRoute`` sends matching requests to the canary
  and sets no weight becomes ``match`` + ``iterations`` (its pauses and analyses, in
  intervals). Routes and weights in one canary: refused (Flagger runs one or the other).
- **mirroring**: a ``setMirrorRoute`` before the first weight becomes ``mirror: true``
  (``mirrorWeight`` its percentage); Flagger mirrors every request for one interval.
- **blue-green**: Flagger's blue/green (``provider: kubernetes``, docs/usage/deployment-
  strategies.md), ``iterations`` = the pre-promotion metrics' count.
- **metrics**: ``threshold`` = ``failureLimit + 1``; each condition becomes a
  ``thresholdRange`` (bounds included). Without ``--query`` the error rate is Flagger's
  builtin ``request-success-rate`` and the P99 latency its ``request-duration``; with one,
  a ``MetricTemplate`` holds the query.

Refused (exit 2): feature flags and rolling updates (Flagger runs neither), the sequential
and Mann-Whitney judges (Flagger's checks are thresholds on one query,
pkg/apis/flagger/v1beta1/canary.go ``CanaryMetric``), a condition that is not one range.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from pydantic.alias_generators import to_camel

from rolloutlab.strategies.durations import parse_duration
from rolloutlab.strategies.exporters.metrics import (
    Export,
    ExportContext,
    Range,
    go_duration,
    passing_range,
    plain,
    template_metrics,
)
from rolloutlab.strategies.importers.conditions import IDENTITY, SUCCESS_PERCENT
from rolloutlab.strategies.importers.flagger import API_VERSION, DEFAULT_DEADLINE, MIN_INTERVAL
from rolloutlab.strategies.importers.flagger_routes import EVERY_REQUEST
from rolloutlab.strategies.promql import fill_args, reads_variable
from rolloutlab.strategies.routes import RouteMatch, StringMatch
from rolloutlab.strategies.spec import (
    BlueGreenStrategy,
    CanaryStrategy,
    Metric,
    Signal,
    StrategySpec,
    TrafficRouting,
)

PROMETHEUS_ADDRESS = "http://prometheus.istio-system:9090"
_DEFAULT_INTERVAL = 60.0
_DEFAULT_INTSTR = "25%"
_DEFAULT_SCALE_DOWN = 30.0


def export_flagger(spec: StrategySpec, queries: Mapping[Signal, str] | None = None,
                   source: str | None = None) -> Export:
    """The Canary and MetricTemplates that run ``spec`` in Flagger (see the module docstring)."""
    ctx = ExportContext(spec, "Flagger", dict(queries or {}), source or spec.name)
    return _FlaggerExport(ctx).run()


class _FlaggerExport:
    def __init__(self, ctx: ExportContext) -> None:
        self.ctx = ctx
        self.spec = ctx.spec
        self.templates: list[dict] = []

    def run(self) -> Export:
        spec, ctx, s = self.spec, self.ctx, self.spec.strategy
        if s.feature_flag is not None:
            raise ctx.refuse("strategy.featureFlag", "Flagger has no feature flags: it shifts traffic between two "
                                                     "Deployments, never a flag evaluated in the code")
        if s.rolling is not None:
            raise ctx.refuse("strategy.rolling", "Flagger runs no rolling update of its own: without a Canary the "
                                                 "Deployment's own RollingUpdate does it (kubectl); nothing to export")
        if spec.waves is not None:
            ctx.warn("waves", "Flagger runs one Canary in one cluster: this is what every region runs; the waves "
                              "(their order, bake times and stop-the-line) are not written")
        if not spec.progress_deadline_abort:
            ctx.warn("progressDeadlineAbort", "Flagger always rolls back when progressDeadlineSeconds passes; the "
                                              "strategy only reports it (progressDeadlineAbort: false)")
        canary_spec: dict[str, Any] = {}
        if s.blue_green is not None:
            provider, service, analysis = "kubernetes", s.blue_green.active_service, self._blue_green(s.blue_green)
        else:
            provider, service, analysis = "istio", spec.name, self._canary(s.canary)
            ctx.warn("spec.provider", "written as istio, Flagger's mesh that mirrors and routes by header; use your "
                                      "mesh or ingress (A/B needs one that routes headers, mirroring Istio)")
        canary_spec["provider"] = provider
        canary_spec["targetRef"] = {"apiVersion": "apps/v1", "kind": "Deployment", "name": spec.name}
        deadline = spec.progress_deadline_seconds
        if deadline != DEFAULT_DEADLINE:
            canary_spec["progressDeadlineSeconds"] = math.ceil(deadline)
        canary_spec["service"] = {"name": service, "port": 80}
        ctx.warn("spec.service.port", "port 80 is a placeholder: use your Service's port")
        if analysis is None:
            canary_spec["skipAnalysis"] = True
            analysis = {"interval": "1m"}
        canary_spec["analysis"] = analysis
        canary = {"apiVersion": API_VERSION, "kind": "Canary", "metadata": {"name": spec.name}, "spec": canary_spec}
        return Export((canary, *self.templates), tuple(ctx.warnings))

    # ------------------------------------------------------------------ blue-green

    def _blue_green(self, bg: BlueGreenStrategy) -> dict | None:
        ctx, where = self.ctx, "strategy.blueGreen"
        if bg.preview_service != f"{bg.active_service}-canary":
            ctx.warn(f"{where}.previewService", f"Flagger names the preview Service {bg.active_service}-canary; "
                                                f"{bg.preview_service!r} is not written")
        if not bg.auto_promotion_enabled:
            ctx.warn(f"{where}.autoPromotionEnabled", "Flagger waits for a person through a confirm-promotion "
                                                      "webhook, which you add; not written")
        if bg.post_promotion_analysis is not None:
            ctx.warn(f"{where}.postPromotionAnalysis", "Flagger analyses before promotion only; lost")
        if bg.preview_replica_count is not None:
            ctx.warn(f"{where}.previewReplicaCount", "Flagger runs the canary at full size; lost")
        for key in ("scale_down_delay_seconds", "abort_scale_down_delay_seconds"):
            if getattr(bg, key) != _DEFAULT_SCALE_DOWN:
                ctx.warn(f"{where}.{to_camel(key)}", "Flagger scales the old version down after promotion at once; lost")
        if bg.pre_promotion_analysis is None:
            seconds = bg.auto_promotion_seconds
            if not seconds:
                return None
            interval = max(seconds, MIN_INTERVAL)
            if interval != seconds:
                ctx.warn(f"{where}.autoPromotionSeconds", f"Flagger's shortest interval is {MIN_INTERVAL:g}s; "
                                                          f"{seconds:g}s becomes {interval:g}s")
            return {"interval": go_duration(interval), "iterations": 1}
        if bg.auto_promotion_seconds:
            ctx.warn(f"{where}.autoPromotionSeconds", "Flagger promotes after its iterations; lost")
        names = [t.template_name for t in bg.pre_promotion_analysis.templates]
        metrics = template_metrics(self.spec, names)
        counts = sorted({m.count for _, _, m in metrics})
        if len(counts) > 1:
            ctx.warn(f"{where}.prePromotionAnalysis", f"Flagger checks every metric the same number of times; the "
                                                      f"counts {counts} become {max(counts)} iterations")
        analysis = self._analysis(metrics, where)
        analysis["iterations"] = max(counts)
        return analysis

    # ------------------------------------------------------------------ canary

    def _canary(self, c: CanaryStrategy) -> dict | None:
        ctx, where = self.ctx, "strategy.canary"
        if c.traffic_routing is TrafficRouting.NONE:
            ctx.warn(f"{where}.trafficRouting", "Flagger always shifts weights through a mesh or an ingress: the "
                                                "weights are exact here, where the strategy approximates them by pods")
        for key in ("max_surge", "max_unavailable"):
            if getattr(c, key) != _DEFAULT_INTSTR:
                ctx.warn(f"{where}.{to_camel(key)}", "Flagger scales the canary Deployment to full size before any traffic "
                                           "moves; lost")
        for key in ("scale_down_delay_seconds", "abort_scale_down_delay_seconds"):
            if getattr(c, key) != _DEFAULT_SCALE_DOWN:
                ctx.warn(f"{where}.{to_camel(key)}", "Flagger scales the canary down after promotion or rollback at once; lost")
        if c.dynamic_stable_scale:
            ctx.warn(f"{where}.dynamicStableScale", "Flagger keeps the primary at full size; lost")
        if c.baseline:
            ctx.warn(f"{where}.baseline", "Flagger runs no baseline pods: the checks see the canary alone; lost")
        weights: list[int] = []
        header = mirror = None
        mirror_ended = False
        holds: list[float] = []  # time spent after each traffic change, before the next
        names: list[str] = []
        for i, step in enumerate(c.steps):
            sw = f"{where}.steps[{i}]"
            scale = step.set_canary_scale
            if scale is not None and scale.weight != 100 and not scale.match_traffic_weight:
                ctx.warn(f"{sw}.setCanaryScale", "Flagger scales the canary Deployment to full size; lost")
            if step.set_header_route is not None:
                if step.set_header_route.match is None:
                    continue
                if header is not None:
                    raise ctx.refuse(f"{sw}.setHeaderRoute", "Flagger's A/B testing sets one route")
                header = step.set_header_route
                holds.append(0.0)
            if step.set_mirror_route is not None:
                route = step.set_mirror_route
                if route.match is None:
                    mirror_ended = mirror is not None
                    continue
                if mirror is not None or weights:
                    raise ctx.refuse(f"{sw}.setMirrorRoute", "Flagger mirrors once, before the first weight")
                mirror = route
                holds.append(0.0)
            if step.set_weight is not None:
                if mirror is not None and not mirror_ended:
                    ctx.warn(f"{sw}.setWeight", "Flagger stops mirroring when it sets the first weight")
                    mirror_ended = True
                if weights and step.set_weight <= weights[-1]:
                    raise ctx.refuse(f"{sw}.setWeight", f"Flagger's weights only grow; {step.set_weight} after "
                                                        f"{weights[-1]}")
                if step.set_weight == 0:
                    continue
                weights.append(step.set_weight)
                holds.append(0.0)
            if step.pause is not None:
                if step.pause.duration is None:
                    ctx.warn(f"{sw}.pause", "a manual gate: Flagger gates through a confirm-traffic-increase or "
                                            "confirm-promotion webhook, which you add; not written")
                elif holds:
                    holds[-1] += step.pause.duration
            if step.analysis is not None:
                step_names = [t.template_name for t in step.analysis.templates]
                names += step_names
                if holds:
                    holds[-1] += max(m.interval * (m.count or 1) for _, _, m in template_metrics(self.spec, step_names))
                ctx.warn(f"{sw}.analysis", "Flagger checks all its metrics at every interval: this step's analysis "
                                           "is one of them from the start to the end, and does not hold the step")
        if header is not None and weights:
            raise ctx.refuse(f"{where}.steps", "Flagger runs A/B testing (match + iterations) or a weighted canary, "
                                               "not a header route followed by weights")
        if c.analysis is not None:
            names = [t.template_name for t in c.analysis.templates] + names
            if not c.analysis.hold_on_failure:
                ctx.warn(f"{where}.analysis.holdOnFailure", "Flagger holds the weight while a check fails "
                                                            "(holdOnFailure: true); the strategy goes on")
        metrics = template_metrics(self.spec, list(dict.fromkeys(names)))
        if not weights and header is None and mirror is None:
            raise ctx.refuse(f"{where}.steps", "Flagger needs weights (setWeight), an A/B route or a mirror to "
                                               "shift traffic; this canary sets none")
        analysis = self._analysis(metrics, where) if metrics else None
        if analysis is None:
            interval = next((s.pause.duration for s in c.steps if s.pause and s.pause.duration), _DEFAULT_INTERVAL)
            analysis = {"interval": go_duration(max(interval, MIN_INTERVAL))}
            ctx.warn(f"{where}.analysis", "no analysis: Flagger still moves one step per interval; it runs no check")
        interval = parse_duration(analysis["interval"])
        if header is not None:
            iterations = max(1, math.ceil(sum(holds) / interval))
            analysis["iterations"] = iterations
            analysis["match"] = [{"headers": {m.header_name: _istio_match(m.header_value)}} for m in header.match]
        else:
            analysis.update(self._weights(weights, where))
        if mirror is not None:
            analysis["mirror"] = True
            if mirror.percentage != 100:
                analysis["mirrorWeight"] = mirror.percentage
            if mirror.match != (RouteMatch.model_validate(EVERY_REQUEST),):
                ctx.warn(f"{where}.steps.setMirrorRoute.match", "Flagger mirrors every request; the match "
                                                                f"{_describe_matches(mirror.match)} is lost")
        long = sorted({h for h in holds if abs(h - interval) > 1e-9})
        if long and header is None:
            ctx.warn(f"{where}.steps", f"Flagger holds each traffic step for one interval ({go_duration(interval)}); "
                                       f"the strategy's holds of {', '.join(go_duration(h) for h in long)} are lost")
        return analysis

    def _weights(self, weights: list[int], where: str) -> dict:
        """stepWeight + maxWeight when Flagger's arithmetic gives exactly these weights, else stepWeights."""
        step = weights[0]
        top = weights[-1]
        generated, w = [], 0
        while w < top:
            w = min(w + step, 100)
            generated.append(w)
        if generated == weights:
            return {"maxWeight": top, "stepWeight": step}
        return {"stepWeights": list(weights)}

    # ------------------------------------------------------------------ metrics

    def _analysis(self, metrics: list[tuple[str, int, Metric]], where: str) -> dict:
        ctx = self.ctx
        intervals = sorted({m.interval for _, _, m in metrics})
        interval = intervals[0]
        if len(intervals) > 1:
            ctx.warn(f"{where}.analysis", f"Flagger checks every metric at one interval; "
                                          f"{', '.join(go_duration(i) for i in intervals)} become {go_duration(interval)}")
        if interval < MIN_INTERVAL:
            ctx.warn(f"{where}.analysis", f"Flagger's shortest interval is {MIN_INTERVAL:g}s; "
                                          f"{go_duration(interval)} becomes {MIN_INTERVAL:g}s")
            interval = MIN_INTERVAL
        limits = sorted({m.failure_limit for _, _, m in metrics})
        if len(limits) > 1:
            ctx.warn(f"{where}.analysis", f"Flagger counts failed checks of all metrics together: the failure limits "
                                          f"{limits} become threshold {limits[0] + 1}")
        out: dict[str, Any] = {"interval": go_duration(interval), "threshold": limits[0] + 1}
        written: dict[str, dict] = {}
        for template, k, m in metrics:
            mw = f"analysisTemplates.{template}.metrics[{k}]"
            metric = self._metric(m, mw, interval)
            earlier = written.get(metric["name"])
            if earlier is not None:
                if earlier != metric:
                    ctx.warn(mw, f"a second check named {metric['name']!r}: Flagger's names are unique; the "
                                 "first one is kept, this one is lost")
                continue
            written[metric["name"]] = metric
        out["metrics"] = list(written.values())
        return out

    def _metric(self, m: Metric, where: str, interval: float) -> dict:
        ctx = self.ctx
        if m.judge.kind != "threshold":
            raise ctx.refuse(f"{where}.judge.{m.judge.kind}", f"Flagger's checks are thresholds on one query "
                             f"(thresholdRange); it has no {m.judge.kind} judge comparing canary and baseline")
        passing = passing_range(m)
        if isinstance(passing, str):
            raise ctx.refuse(where, passing)
        if m.success_condition and m.failure_condition:
            ctx.warn(f"{where}.failureCondition", "Flagger's check passes or fails: the successCondition is "
                                                  "written, the failureCondition (and inconclusive) are lost")
        if passing.strict:
            ctx.warn(where, f"{' and '.join(passing.strict)}: Flagger's thresholdRange includes its bounds, so a "
                            "value exactly at the bound passes there")
        if m.consecutive_error_limit != m.failure_limit:
            ctx.warn(f"{where}.consecutiveErrorLimit", "Flagger counts a check without data as a failed check: "
                                                       "consecutiveErrorLimit becomes failureLimit")
        for key in ("initial_delay", "inconclusive_limit"):
            if getattr(m, key):
                ctx.warn(f"{where}.{to_camel(key)}", "Flagger has no such field; lost")
        if m.count is not None and self.spec.strategy.canary is not None:
            ctx.warn(f"{where}.count", "Flagger checks until promotion; the count is lost")
        builtin = self._builtin(m)
        if builtin is not None:
            name, conversion = builtin
            bounds = passing.converted(conversion)
            return {"name": name, "thresholdRange": _range(bounds), "interval": go_duration(interval)}
        query, reading = ctx.query(m, where)
        variables = {}
        if m.query is not None:
            # Flagger fills {{ variables.x }} from the check's templateVariables; it has no
            # Argo args, so those are written in
            query = fill_args(query, m.args)
            variables = {k: v for k, v in m.args.items() if reads_variable(query, k)}
        template_name = f"{self.spec.name}-{m.name}"
        if all(t["metadata"]["name"] != template_name for t in self.templates):
            self.templates.append({"apiVersion": API_VERSION, "kind": "MetricTemplate",
                                   "metadata": {"name": template_name},
                                   "spec": {"provider": {"type": "prometheus", "address": PROMETHEUS_ADDRESS},
                                            "query": query}})
            ctx.warn(f"MetricTemplate/{template_name}", f"the Prometheus address {PROMETHEUS_ADDRESS} is a "
                                                        "placeholder: set your Prometheus' address")
        out = {"name": m.name, "templateRef": {"name": template_name},
               "thresholdRange": _range(passing.converted(reading.conversion)), "interval": go_duration(interval)}
        if variables:
            out["templateVariables"] = variables
        return out

    def _builtin(self, m: Metric):
        """Flagger's builtin check for the metric when no query was given, or None."""
        if m.signal in self.ctx.queries or m.query is not None:
            return None
        if m.signal is Signal.ERROR_RATE:
            return "request-success-rate", SUCCESS_PERCENT
        if m.signal is Signal.LATENCY and m.quantile == 0.99:
            return "request-duration", IDENTITY
        return None


def _range(bounds: Range) -> dict:
    return {k: plain(v) for k, v in (("min", bounds.min), ("max", bounds.max)) if v is not None}


def _istio_match(match: StringMatch) -> dict:
    return {k: v for k, v in match.model_dump().items() if v is not None}


def _describe_matches(matches) -> str:
    return "; ".join(str({k: v for k, v in m.model_dump(exclude_none=True).items()}) for m in matches or ())


__all__ = ["PROMETHEUS_ADDRESS", "export_flagger"]
