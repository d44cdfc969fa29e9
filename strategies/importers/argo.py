"""Argo Rollouts ``Rollout`` (+ ``AnalysisTemplate`` / ``ClusterAnalysisTemplate``) -> our spec.

Our strategy files mirror ``spec.strategy`` of a Rollout, so most fields carry over by
name. What needs care:

- **steps** keep their order; steps rolloutlab cannot run (``experiment``,
  ``setHeaderRoute``, ``setMirrorRoute``, ``plugin``, an ``analysis`` whose every metric
  was left out) are dropped with a warning, and the background analysis'
  ``startingStep`` is renumbered to the step it pointed at.
- **trafficRouting**: every router (istio, nginx, alb, smi, traefik, ambassador, appMesh,
  apisix, plugins, ...) becomes ``trafficRouting: router``: exact weights, the router
  named in a warning.
- **AnalysisTemplate metrics**: the provider's query is read (``queries.read_query``) to
  choose the signal; a success-rate query's conditions are converted to an error-rate
  condition, seconds to milliseconds for latency. Kayenta becomes the Mann-Whitney
  judge; ``web`` and ``job`` metrics, queries that are neither an error/success rate nor
  a latency quantile, and conditions that are not thresholds are left out with a
  warning. A template with no metric left is left out of its analysis, and an analysis
  with no template left is skipped.
- ``{{args.x}}`` placeholders are resolved from the template's defaults and the
  Rollout's args wherever they feed a field rolloutlab uses (conditions, interval, count,
  limits). A template used with different values becomes two templates.
- Fields that describe the workload (``selector``, ``template``, ``workloadRef``,
  ``revisionHistoryLimit``, pod metadata, run-history limits) are ignored silently;
  anything else we do not model is a warning.
"""

from __future__ import annotations

import re
from typing import Any

from rolloutlab.strategies.durations import format_duration, parse_duration
from rolloutlab.strategies.importers.conditions import (
    IDENTITY,
    SUCCESS_FRACTION,
    ConditionNotThreshold,
    Conversion,
    parse_threshold,
)
from rolloutlab.strategies.importers.manifest import (
    MISSING,
    ManifestReader,
    Origins,
    Path,
    as_integer,
    describe_type,
    validate_strategy,
)
from rolloutlab.strategies.importers.queries import QueryReading, make_reading, query_range_seconds, read_query
from rolloutlab.strategies.spec import Condition, Signal, StrategySpec
from rolloutlab.strategies.yaml_input import YamlDocument

API_GROUP = "argoproj.io"
API_VERSION = "argoproj.io/v1alpha1"
TEMPLATE_KINDS = ("AnalysisTemplate", "ClusterAnalysisTemplate")

_STEP_KINDS = ("setWeight", "pause", "analysis", "setCanaryScale", "experiment", "setHeaderRoute",
               "setMirrorRoute", "plugin")
_ARG = re.compile(r"\{\{\s*args\.([A-Za-z0-9_.\-]+)\s*\}\}")
_QUERY_PROVIDERS = ("prometheus", "datadog", "newRelic", "wavefront", "graphite", "influxdb", "skywalking")

_ROLLOUT_SILENT = {"selector", "template", "workloadRef", "revisionHistoryLimit", "analysis"}
_ROLLOUT_REASONS = {
    "minReadySeconds": "pods count as available as soon as they are ready in rolloutlab; not modelled",
    "paused": "a manually paused Rollout is not modelled; use the `promote` command at a `pause: {}` step",
    "restartAt": "restarts are not part of a release; ignored",
    "rollbackWindow": "fast-tracked rollbacks to recent revisions are not modelled",
}
_CANARY_SILENT = {"canaryMetadata", "stableMetadata"}
_CANARY_REASONS = {
    "antiAffinity": "pod anti-affinity is not modelled (pods are scheduled independently)",
    "minPodsPerReplicaSet": "rolloutlab keeps no minimum pod count per version; not modelled",
    "scaleDownDelayRevisionLimit": "only two versions exist in rolloutlab; not modelled",
    "pingPong": "ping-pong Services are not modelled; the stable/canary roles are used instead",
}
_BLUE_GREEN_SILENT = {"activeMetadata", "previewMetadata"}
_BLUE_GREEN_REASONS = {
    "antiAffinity": "pod anti-affinity is not modelled (pods are scheduled independently)",
    "scaleDownDelayRevisionLimit": "only two versions exist in rolloutlab; not modelled",
    "maxUnavailable": "rolloutlab's blue-green keeps the active version at full size; not modelled",
}
_METRIC_HANDLED = {"name", "provider", "interval", "count", "initialDelay", "successCondition",
                   "failureCondition", "failureLimit", "inconclusiveLimit", "consecutiveErrorLimit"}
_METRIC_REASONS = {
    "maxFailures": "the pre-v0.9 name of failureLimit, no longer read by Argo; ignored",
    "maxInconclusive": "the pre-v0.9 name of inconclusiveLimit, no longer read by Argo; ignored",
    "consecutiveSuccessLimit": "rolloutlab ends a metric by count or by its limits; not modelled",
}


class _SkipMetric(Exception):
    """The metric cannot be modelled; the message says why (already warned)."""


def is_rollout(data: Any) -> bool:
    return isinstance(data, dict) and data.get("kind") == "Rollout" and str(data.get("apiVersion", "")).startswith(
        f"{API_GROUP}/")


class ArgoImporter:
    """Turns one Rollout and the analysis templates beside it into a :class:`StrategySpec`."""

    def __init__(self, rollout: YamlDocument, documents: list[YamlDocument], warnings: list[str]) -> None:
        self.file = rollout.file
        self.warnings = warnings
        self.r = ManifestReader(rollout, warnings)
        self.origins = Origins()
        self.template_docs: dict[tuple[str, str], YamlDocument] = {}
        self.out_templates: list[dict] = []
        self._converted: dict[tuple, str | None] = {}
        for doc in documents:
            data = doc.data
            if not (isinstance(data, dict) and data.get("kind") in TEMPLATE_KINDS
                    and str(data.get("apiVersion", "")).startswith(f"{API_GROUP}/")):
                continue
            reader = ManifestReader(doc, warnings, label=str(data["kind"]))
            name = reader.string(("metadata", "name"), required=True)
            key = (data["kind"], name)
            if key in self.template_docs:
                first = self.template_docs[key].start_line
                raise reader.error(("metadata", "name"), f"{key[0]} {name!r} is defined twice (first on line {first})")
            self.template_docs[key] = doc

    # ------------------------------------------------------------------ rollout

    def run(self) -> StrategySpec:
        r = self.r
        if r.at(("apiVersion",)) != API_VERSION:
            raise r.error(("apiVersion",), f"only {API_VERSION} Rollouts can be imported, got {r.at(('apiVersion',))!r}")
        name = r.string(("metadata", "name"), required=True)
        r.mapping(("spec",), required=True)
        out: dict[str, Any] = {"name": name, "description": f"imported from Argo Rollout {name!r}"}
        self.origins.note(("name",), r, ("metadata", "name"))
        replicas = r.integer(("spec", "replicas"))
        if replicas is None:
            r.warn(("spec",), "spec.replicas is not set (Argo's default is 1, or an HPA sets it): "
                              "the scenario's replica count is used")
        else:
            self._put(out, ("replicas",), replicas, ("spec", "replicas"))
        deadline = r.integer(("spec", "progressDeadlineSeconds"))
        if deadline is not None:
            self._put(out, ("progressDeadlineSeconds",), deadline, ("spec", "progressDeadlineSeconds"))
        abort = r.boolean(("spec", "progressDeadlineAbort"))
        if abort is not None:
            self._put(out, ("progressDeadlineAbort",), abort, ("spec", "progressDeadlineAbort"))
        r.report_unmodelled(("spec",), {"replicas", "progressDeadlineSeconds", "progressDeadlineAbort", "strategy"},
                            _ROLLOUT_SILENT, _ROLLOUT_REASONS)

        sp = ("spec", "strategy")
        strategy = r.mapping(sp, required=True)
        chosen = [k for k in ("canary", "blueGreen") if k in strategy]
        if len(chosen) != 1:
            got = ", ".join(strategy) or "nothing"
            raise r.error(sp, f"needs exactly one of canary, blueGreen; got {got}")
        r.report_unmodelled(sp, set(chosen))
        self.origins.note(("strategy",), r, sp)
        if chosen[0] == "canary":
            choice = {"canary": self._canary((*sp, "canary"))}
        else:
            choice = {"blueGreen": self._blue_green((*sp, "blueGreen"))}
        if self.out_templates:
            out["analysisTemplates"] = self.out_templates
        out["strategy"] = choice
        return validate_strategy(out, self.origins, self.file)

    def _put(self, target: dict, out_path: Path, value: Any, source: Path, reader: ManifestReader | None = None) -> None:
        target[out_path[-1]] = value
        self.origins.note(out_path, reader or self.r, source)

    # ------------------------------------------------------------------ canary

    def _canary(self, p: Path) -> dict:
        r = self.r
        r.mapping(p, required=True)
        op: Path = ("strategy", "canary")
        self.origins.note(op, r, p)
        c: dict[str, Any] = {}
        routed = r.mapping((*p, "trafficRouting")) is not None
        steps_out: list[dict] = []
        index_map: dict[int, int] = {}
        steps = r.sequence((*p, "steps")) or []
        for i in range(len(steps)):
            index_map[i] = len(steps_out)
            step = self._step((*p, "steps", i), (*op, "steps", len(steps_out)))
            if step is not None:
                steps_out.append(step)
        index_map[len(steps)] = len(steps_out)
        if steps_out:
            c["steps"] = steps_out
            self.origins.note((*op, "steps"), r, (*p, "steps"))

        bp = (*p, "analysis")
        if r.mapping(bp) is not None:
            ref = self._analysis_ref(bp, (*op, "analysis"), background=True)
            start = r.integer((*bp, "startingStep"), minimum=0)
            if start is not None and start > len(steps):
                raise r.error((*bp, "startingStep"), f"is past the last step ({len(steps)} steps)")
            if ref is not None:
                if start:
                    ref["startingStep"] = index_map[start]
                    if index_map[start] != start:
                        r.warn((*bp, "startingStep"), f"renumbered to {index_map[start]} because steps before it were dropped")
                c["analysis"] = ref

        for key in ("maxSurge", "maxUnavailable"):
            value = r.at((*p, key))
            if value is MISSING or value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, str)):
                raise r.error((*p, key), f"must be a replica count or a percentage like '25%', got {describe_type(value)}")
            self._put(c, (*op, key), value, (*p, key))

        if routed:
            self._traffic_routing((*p, "trafficRouting"))
            self._put(c, (*op, "trafficRouting"), "router", (*p, "trafficRouting"))
        else:
            for key in ("canaryService", "stableService"):
                if r.has((*p, key)):
                    r.string((*p, key))
                    r.warn((*p, key), "without trafficRouting this Service only lets callers reach one version "
                                      "directly; not modelled")
        dynamic = r.boolean((*p, "dynamicStableScale"))
        if dynamic is not None:
            self._put(c, (*op, "dynamicStableScale"), dynamic, (*p, "dynamicStableScale"))
        for key in ("scaleDownDelaySeconds", "abortScaleDownDelaySeconds"):
            seconds = r.integer((*p, key), minimum=0)
            if seconds is None:
                continue
            self._put(c, (*op, key), seconds, (*p, key))
        r.report_unmodelled(
            p, {"steps", "analysis", "maxSurge", "maxUnavailable", "trafficRouting", "dynamicStableScale",
                "scaleDownDelaySeconds", "abortScaleDownDelaySeconds", "canaryService", "stableService"},
            _CANARY_SILENT, _CANARY_REASONS)
        return c

    def _traffic_routing(self, p: Path) -> None:
        r = self.r
        routing = r.mapping(p) or {}
        routers = [k for k in routing if k not in ("managedRoutes", "maxTrafficWeight", "plugins")]
        for router in routers:
            r.warn((*p, router), f"traffic router {router!r} is modelled as an exact-weight router")
        plugins = r.mapping((*p, "plugins")) or {}
        for plugin in plugins:
            r.warn((*p, "plugins", plugin), f"traffic router plugin {plugin!r} is modelled as an exact-weight router")
        if not routers and not plugins:
            r.warn(p, "no traffic router is named; modelled as an exact-weight router")
        if "managedRoutes" in routing:
            r.warn((*p, "managedRoutes"), "header and mirror routes are not modelled")
        if "maxTrafficWeight" in routing:
            r.warn((*p, "maxTrafficWeight"), "rolloutlab weights are percentages of 100; maxTrafficWeight is not modelled")

    def _step(self, p: Path, op: Path) -> dict | None:
        r = self.r
        step = r.mapping(p, required=True)
        if len(step) != 1:
            what = f"has {', '.join(step)}" if step else "is empty"
            raise r.error(p, f"a step takes exactly one of {', '.join(_STEP_KINDS)}; this one {what}")
        kind = next(iter(step))
        sp = (*p, kind)
        if kind == "setWeight":
            weight = r.integer(sp, minimum=0, maximum=100, required=True)
            self.origins.note(op, r, p)
            self.origins.note((*op, kind), r, sp)
            return {"setWeight": weight}
        if kind == "pause":
            pause = r.mapping(sp, required=True)
            r.report_unmodelled(sp, {"duration"})
            self.origins.note(op, r, p)
            self.origins.note((*op, kind), r, sp)
            duration = r.duration((*sp, "duration"))
            if duration is None:
                return {"pause": {}}
            self.origins.note((*op, kind, "duration"), r, (*sp, "duration"))
            return {"pause": {"duration": duration}}
        if kind == "analysis":
            ref = self._analysis_ref(sp, (*op, kind))
            if ref is None:
                r.warn(p, "analysis step dropped: none of its metrics can be judged by rolloutlab")
                return None
            self.origins.note(op, r, p)
            return {"analysis": ref}
        if kind == "setCanaryScale":
            r.mapping(sp, required=True)
            r.report_unmodelled(sp, {"replicas", "weight", "matchTrafficWeight"})
            out: dict[str, Any] = {}
            for key in ("replicas", "weight"):
                value = r.integer((*sp, key))
                if value is not None:
                    out[key] = value
            match = r.boolean((*sp, "matchTrafficWeight"))
            if match is not None:
                out["matchTrafficWeight"] = match
            self.origins.note(op, r, p)
            self.origins.note((*op, kind), r, sp)
            return {"setCanaryScale": out}
        if kind == "experiment":
            r.warn(sp, "experiment steps (extra baseline/canary ReplicaSets) are not modelled; step dropped")
            return None
        if kind in ("setHeaderRoute", "setMirrorRoute"):
            r.warn(sp, f"{kind} sends selected or mirrored requests to the canary, which rolloutlab does not model; "
                       "step dropped")
            return None
        if kind == "plugin":
            r.warn(sp, "step plugins run code rolloutlab cannot model; step dropped")
            return None
        raise r.error(sp, f"unknown step {kind!r}; a step takes one of {', '.join(_STEP_KINDS)}")

    # ------------------------------------------------------------------ blue-green

    def _blue_green(self, p: Path) -> dict:
        r = self.r
        r.mapping(p, required=True)
        op: Path = ("strategy", "blueGreen")
        self.origins.note(op, r, p)
        bg: dict[str, Any] = {}
        active = r.string((*p, "activeService"), required=True)
        self._put(bg, (*op, "activeService"), active, (*p, "activeService"))
        preview = r.string((*p, "previewService"))
        self._put(bg, (*op, "previewService"), preview, (*p, "previewService") if preview else p)
        count = r.integer((*p, "previewReplicaCount"))
        if count is not None:
            self._put(bg, (*op, "previewReplicaCount"), count, (*p, "previewReplicaCount"))
        auto = r.boolean((*p, "autoPromotionEnabled"))
        if auto is not None:
            self._put(bg, (*op, "autoPromotionEnabled"), auto, (*p, "autoPromotionEnabled"))
        seconds = r.integer((*p, "autoPromotionSeconds"), minimum=0)
        if seconds is not None:
            if auto is False:
                r.warn((*p, "autoPromotionSeconds"), "Argo ignores it while autoPromotionEnabled is false; dropped")
            elif seconds > 0:
                self._put(bg, (*op, "autoPromotionSeconds"), seconds, (*p, "autoPromotionSeconds"))
        for key in ("prePromotionAnalysis", "postPromotionAnalysis"):
            if r.mapping((*p, key)) is not None:
                ref = self._analysis_ref((*p, key), (*op, key))
                if ref is not None:
                    self.origins.note((*op, key), r, (*p, key))
                    bg[key] = ref
        for key in ("scaleDownDelaySeconds", "abortScaleDownDelaySeconds"):
            value = r.integer((*p, key), minimum=0)
            if value is None:
                continue
            self._put(bg, (*op, key), value, (*p, key))
        r.report_unmodelled(
            p, {"activeService", "previewService", "previewReplicaCount", "autoPromotionEnabled",
                "autoPromotionSeconds", "prePromotionAnalysis", "postPromotionAnalysis", "scaleDownDelaySeconds",
                "abortScaleDownDelaySeconds"},
            _BLUE_GREEN_SILENT, _BLUE_GREEN_REASONS)
        return bg

    # ------------------------------------------------------------------ analysis references

    def _analysis_ref(self, p: Path, op: Path, background: bool = False) -> dict | None:
        """Our ``{templates: [...]}`` for an Argo analysis reference, or None if nothing is left."""
        r = self.r
        ref = r.mapping(p, required=True)
        refs: list[tuple[Path, str, bool]] = []
        templates = r.sequence((*p, "templates"))
        if templates is not None:
            for j in range(len(templates)):
                tp = (*p, "templates", j)
                r.mapping(tp, required=True)
                r.report_unmodelled(tp, {"templateName", "clusterScope"})
                name = r.string((*tp, "templateName"), required=True)
                refs.append(((*tp, "templateName"), name, bool(r.boolean((*tp, "clusterScope")))))
        elif "templateName" in ref:  # the field before v0.9
            refs.append(((*p, "templateName"), r.string((*p, "templateName"), required=True), False))
        if not refs:
            raise r.error((*p, "templates"), "needs at least one template")
        args = self._rollout_args((*p, "args"))
        dry_run = _dry_run_patterns(r, (*p, "dryRun"))
        r.report_unmodelled(
            p, {"templates", "templateName", "args", "dryRun"} | ({"startingStep"} if background else set()),
            {"name", "analysisRunMetadata", "measurementRetention"})
        out: list[dict] = []
        for source, name, cluster in refs:
            kind = "ClusterAnalysisTemplate" if cluster else "AnalysisTemplate"
            doc = self.template_docs.get((kind, name))
            if doc is None:
                known = ", ".join(f"{k} {n!r}" for k, n in sorted(self.template_docs)) or "none"
                raise r.error(source, f"refers to {kind} {name!r}, which is not in this file (templates here: {known}); "
                                      "put the templates in the same file, separated by ---")
            ours = self._template(kind, name, doc, args, dry_run)
            if ours is None:
                r.warn(source, f"{kind} {name!r} left out of this analysis: none of its metrics can be judged")
                continue
            self.origins.note((*op, "templates", len(out)), r, source)
            out.append({"templateName": ours})
        if not out:
            return None
        self.origins.note(op, r, p)
        return {"templates": out}

    def _rollout_args(self, p: Path) -> dict[str, str | None]:
        """Argument values a Rollout passes; None for ``valueFrom`` (known only at run time)."""
        r = self.r
        args: dict[str, str | None] = {}
        for j, _ in enumerate(r.sequence(p) or []):
            ap = (*p, j)
            r.mapping(ap, required=True)
            name = r.string((*ap, "name"), required=True)
            args[name] = _arg_value(r, ap)
        return args

    # ------------------------------------------------------------------ templates and metrics

    def _template(self, kind: str, name: str, doc: YamlDocument, rollout_args: dict[str, str | None],
                  rollout_dry_run: list[str]) -> str | None:
        tr = ManifestReader(doc, self.warnings, label=f"{kind}/{name}")
        tr.mapping(("spec",), required=True)
        values: dict[str, str | None] = {}
        for j, _ in enumerate(tr.sequence(("spec", "args")) or []):
            ap = ("spec", "args", j)
            tr.mapping(ap, required=True)
            values[tr.string((*ap, "name"), required=True)] = _arg_value(tr, ap)
        for arg, value in rollout_args.items():
            if arg in values or value is not None:
                values[arg] = value
        key = (kind, name, tuple(sorted(values.items(), key=lambda kv: kv[0])), tuple(rollout_dry_run))
        if key in self._converted:
            return self._converted[key]
        metrics = tr.sequence(("spec", "metrics"))
        if not metrics:
            raise tr.error(("spec", "metrics"), "needs at least one metric")
        dry_run = _dry_run_patterns(tr, ("spec", "dryRun")) + rollout_dry_run
        tr.report_unmodelled(("spec",), {"metrics", "args", "dryRun"}, {"measurementRetention"})
        built: list[tuple[dict, dict[str, Path], Path]] = []
        for k in range(len(metrics)):
            mp = ("spec", "metrics", k)
            try:
                metric, sources = self._metric(tr, mp, values, dry_run)
            except _SkipMetric:
                continue
            built.append((metric, sources, mp))
        if not built:
            self._converted[key] = None
            return None
        taken = {t["name"] for t in self.out_templates}
        ours = name if name not in taken else next(
            f"{name}-{n}" for n in range(2, 10_000) if f"{name}-{n}" not in taken)
        index = len(self.out_templates)
        self.origins.note(("analysisTemplates", index), tr, ("spec",))
        self.origins.note(("analysisTemplates", index, "name"), tr, ("metadata", "name"))
        for m, (metric, sources, mp) in enumerate(built):
            base = ("analysisTemplates", index, "metrics", m)
            self.origins.note(base, tr, mp)
            for field, source in sources.items():
                self.origins.note((*base, field), tr, source)
        self.out_templates.append({"name": ours, "metrics": [metric for metric, _, _ in built]})
        self._converted[key] = ours
        return ours

    def _metric(self, tr: ManifestReader, mp: Path, args: dict[str, str | None],
                dry_run: list[str]) -> tuple[dict, dict[str, Path]]:
        tr.mapping(mp, required=True)
        name = tr.string((*mp, "name"), required=True)
        if any(_matches(pattern, name) for pattern in dry_run):
            tr.warn(mp, f"dry-run metric {name!r} never affects an Argo rollout; left out")
            raise _SkipMetric
        tr.report_unmodelled(mp, _METRIC_HANDLED, set(), _METRIC_REASONS)
        sources: dict[str, Path] = {"name": (*mp, "name")}
        out: dict[str, Any] = {"name": name}

        def field(key: str) -> Any:
            """The field's value with ``{{args.x}}`` resolved; a value we cannot resolve skips the metric."""
            value = tr.at((*mp, key))
            if value is MISSING or value is None:
                return None
            if isinstance(value, str):
                value, missing = substitute_args(value, args)
                if missing:
                    tr.warn((*mp, key), f"uses {', '.join(sorted(missing))}, whose value is only known when "
                                        f"Argo runs the analysis; metric {name!r} left out")
                    raise _SkipMetric
            sources[key] = (*mp, key)
            return value

        pp = (*mp, "provider")
        provider = tr.mapping(pp, required=True)
        if len(provider) != 1:
            raise tr.error(pp, f"needs exactly one metric provider, got {', '.join(provider) or 'none'}")
        kind = next(iter(provider))
        kp = (*pp, kind)
        reading: QueryReading | None = None
        query_range: float | None = None
        if kind == "kayenta":
            out["judge"] = {"mannWhitney": self._kayenta(tr, kp, name)}
            sources["judge"] = kp
        elif kind in _QUERY_PROVIDERS:
            tr.mapping(kp, required=True)
            query = tr.string((*kp, "query"))
            if query is None:
                tr.warn(kp, f"no single query to read; metric {name!r} left out")
                raise _SkipMetric
            query, _ = substitute_args(query, args)
            reading = read_query(query, name)
            if reading is None:
                tr.warn((*kp, "query"), "cannot tell what this query measures (rolloutlab judges the error rate "
                                        f"and latency quantiles); metric {name!r} left out")
                raise _SkipMetric
            query_range = query_range_seconds(query)
            out["signal"] = reading.signal.value
            sources["signal"] = (*kp, "query")
            if reading.quantile is not None:
                out["quantile"] = reading.quantile
            via = "" if kind == "prometheus" else f" ({kind} query read like PromQL)"
            tr.warn((*kp, "query"), f"interpreted as {reading.meaning}{via}: modelled as "
                                    f"{_describe_signal(reading)}; check that this is what it measures")
        else:
            what = {"web": "an HTTP endpoint's answer", "job": "a Kubernetes Job's exit code"}.get(kind, "its provider")
            tr.warn(kp, f"{kind!r} metrics judge {what}, which rolloutlab cannot model; metric {name!r} left out")
            raise _SkipMetric

        conditions = {key: field(key) for key in ("successCondition", "failureCondition")}
        if reading is not None:
            if not any(conditions.values()):
                tr.warn(mp, f"no successCondition or failureCondition: Argo's measurements are never judged; "
                            f"metric {name!r} left out")
                raise _SkipMetric
            conversion = _scale_conversion(tr, mp, reading, conditions)
            for key, text in conditions.items():
                if text is not None:
                    out[key] = self._condition(tr, (*mp, key), text, conversion, reading, name)
        else:
            for key, text in conditions.items():
                if text is not None:
                    tr.warn((*mp, key), "the Mann-Whitney judge scores the canary itself; condition dropped")
                    sources.pop(key, None)

        interval = _duration_field(tr, (*mp, "interval"), field("interval"))
        count = _int_field(tr, (*mp, "count"), field("count"), minimum=1)
        if interval is None:
            if count is not None and count > 1:
                raise tr.error((*mp, "count"), "needs an interval when count is more than 1")
            window = query_range or 60.0
            count = 1
            sources["interval"] = sources["count"] = mp
            because = "the query's range" if query_range else "rolloutlab's default"
            tr.warn(mp, f"no interval: Argo measures once, at once, over the query's own range; rolloutlab measures "
                        f"once over the {format_duration(window)} after the analysis starts ({because})")
            interval = window
        out["signal"] = out.get("signal", Signal.ERROR_RATE.value)
        out["interval"] = interval
        if count is not None:
            out["count"] = count
        delay = _duration_field(tr, (*mp, "initialDelay"), field("initialDelay"))
        if delay:
            out["initialDelay"] = delay
        for key in ("failureLimit", "inconclusiveLimit", "consecutiveErrorLimit"):
            value = _int_field(tr, (*mp, key), field(key))
            if value is None:
                continue
            if value < 0:
                if key == "failureLimit":
                    tr.warn((*mp, key), "a negative failureLimit lets Argo tolerate any number of failures; "
                                        f"metric {name!r} left out")
                    raise _SkipMetric
                raise tr.error((*mp, key), f"must not be negative, got {value}")
            out[key] = value
        return out, sources

    def _kayenta(self, tr: ManifestReader, kp: Path, name: str) -> dict:
        tr.mapping(kp, required=True)
        judge: dict[str, Any] = {}
        thresholds: dict[str, float] = {}
        for key in ("pass", "marginal"):
            value = tr.number((*kp, "thresholds", key))
            if value is not None:
                thresholds[key] = value
        if thresholds:
            judge["thresholds"] = thresholds
        config = tr.at((*kp, "canaryConfigName"))
        label = f"canary config {config!r}" if isinstance(config, str) else "the canary config"
        tr.warn(kp, f"Kayenta's {label} is not available here: metric {name!r} is modelled as rolloutlab's "
                    "Mann-Whitney judge of the error rate with Kayenta's pass/marginal scores; add the config's "
                    "signals under judge.mannWhitney.signals")
        return judge

    def _condition(self, tr: ManifestReader, p: Path, text: Any, conversion: Conversion, reading: QueryReading,
                   name: str) -> str:
        if not isinstance(text, str):
            raise tr.error(p, f"must be an expression like 'result[0] >= 0.95', got {describe_type(text)}")
        try:
            threshold = parse_threshold(text)
        except ConditionNotThreshold as exc:
            tr.warn(p, f"{text!r} is not a threshold rolloutlab can evaluate ({exc}); metric {name!r} left out")
            raise _SkipMetric from None
        if threshold.guards:
            tr.warn(p, f"dropped {' and '.join(repr(g) for g in threshold.guards)}: in rolloutlab a window without "
                       "data is a measurement error, counted against consecutiveErrorLimit")
        if conversion is IDENTITY and not threshold.guards and _parses(text):
            return text
        converted = threshold.converted(conversion.value, conversion.flip)
        rendered = converted.render()
        if conversion is not IDENTITY:
            tr.warn(p, f"{text.strip()!r} on {reading.meaning} converted to {rendered!r} ({conversion.describe})")
        return rendered


# --------------------------------------------------------------------------- helpers


def substitute_args(text: str, args: dict[str, str | None]) -> tuple[str, set[str]]:
    """``{{args.x}}`` replaced by known values; the names without a value are returned."""
    missing: set[str] = set()

    def replace(match: re.Match) -> str:
        value = args.get(match.group(1))
        if value is None:
            missing.add(f"args.{match.group(1)}")
            return match.group(0)
        return value

    return _ARG.sub(replace, text), missing


def _arg_value(reader: ManifestReader, p: Path) -> str | None:
    value = reader.at((*p, "value"))
    if value is MISSING or value is None or isinstance(value, (dict, list)):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _dry_run_patterns(reader: ManifestReader, p: Path) -> list[str]:
    """Metric names (or regular expressions) that Argo runs without letting them decide."""
    patterns = []
    for j, _ in enumerate(reader.sequence(p) or []):
        reader.mapping((*p, j), required=True)
        patterns.append(reader.string((*p, j, "metricName"), required=True))
    return patterns


def _matches(pattern: str, name: str) -> bool:
    if pattern in (name, "*"):
        return True
    try:
        return re.fullmatch(pattern, name) is not None
    except re.error:
        return False


def _parses(text: str) -> bool:
    try:
        Condition.parse(text)
    except ValueError:
        return False
    return True


def _duration_field(tr: ManifestReader, p: Path, value: Any) -> float | None:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except (ValueError, TypeError, OverflowError) as exc:
        raise tr.error(p, str(exc)) from None


def _int_field(tr: ManifestReader, p: Path, value: Any, minimum: int | None = None) -> int | None:
    if value is None:
        return None
    number = as_integer(value, text_ok=True)
    if number is None:
        raise tr.error(p, f"must be a whole number, got {describe_type(value)}")
    if minimum is not None and number < minimum:
        raise tr.error(p, f"must be at least {minimum}, got {number}")
    return number


def _scale_conversion(tr: ManifestReader, mp: Path, reading: QueryReading, conditions: dict[str, Any]) -> Conversion:
    """The reading's conversion, switched to percentages when the thresholds are clearly percentages."""
    conversion = reading.conversion
    if reading.signal is not Signal.ERROR_RATE or reading.percent:
        return conversion
    bounds = []
    for text in conditions.values():
        if isinstance(text, str):
            try:
                bounds += [abs(v) for _, v in parse_threshold(text).clauses]
            except ConditionNotThreshold:
                pass
    if bounds and max(bounds) > 1 and max(bounds) <= 100:
        percent = make_reading("success" if conversion is SUCCESS_FRACTION else "error", True).conversion
        tr.warn(mp, "its thresholds are above 1, so the query is read as a percentage")
        return percent
    return conversion


def _describe_signal(reading: QueryReading) -> str:
    if reading.signal is Signal.LATENCY:
        return f"latency (quantile {reading.quantile:g}, milliseconds)"
    return "errorRate (failed requests / requests)"


__all__ = ["API_VERSION", "ArgoImporter", "is_rollout", "substitute_args"]
