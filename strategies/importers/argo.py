"""Argo Rollouts ``Rollout`` (+ ``AnalysisTemplate`` / ``ClusterAnalysisTemplate``) -> our spec.

Our strategy files mirror ``spec.strategy`` of a Rollout, so most fields carry over by
name. What needs care:

- **steps** keep their order; steps rolloutlab cannot run (``experiment``, ``plugin``, an
  ``analysis`` whose every metric was left out) are dropped with a warning, and the
  background analysis' ``startingStep`` is renumbered to the step it pointed at.
  ``setHeaderRoute`` and ``setMirrorRoute`` carry over one to one (name, match,
  percentage; without ``match`` the step removes the route). Argo lets a step hold
  ``setCanaryScale``, ``setHeaderRoute`` and ``setMirrorRoute`` beside one of
  ``setWeight``, ``pause``, ``experiment``, ``analysis`` (its validation,
  ``hasMultipleStepsType``, counts only those four), and so do our steps; only a step with
  both routes becomes two steps (the header route first), since ours change one route each.
- **trafficRouting**: every router (istio, nginx, alb, smi, traefik, ambassador, appMesh,
  apisix, plugins, ...) becomes ``trafficRouting: router``: exact weights, the router
  named in a warning. ``managedRoutes`` carries over in its order (the routes'
  precedence).
- **AnalysisTemplate metrics**: the provider's query is read (``queries.read_query``) to
  choose the signal; a condition is read as expr would run it and reduced to a threshold
  on the one measured value (``conditions.parse_threshold``: ``default(result, 0) < 5``,
  ``all(result, {# < 0.01})``, ``len(result) > 0 && result[0] < 0.01`` ...), with a
  warning wherever Argo's own evaluation would differ (no data, NaN, the result's
  shape); a success-rate query's conditions are converted to an error-rate condition,
  seconds to milliseconds for latency. Kayenta becomes the Mann-Whitney judge; ``web``
  and ``job`` metrics, queries that are neither an error/success rate nor a latency
  quantile, and conditions that are no threshold (two separate ranges, a second series,
  text) are left out with a warning. A template with no metric left is left out of its analysis, and an analysis
  with no template left is skipped.
- ``{{args.x}}`` placeholders are resolved from the template's defaults and the
  Rollout's args wherever they feed a field rolloutlab uses (conditions, interval, count,
  limits). A template used with different values becomes two templates.
- Fields that describe the workload (``selector``, ``template``, ``revisionHistoryLimit``,
  pod metadata, run-history limits) are ignored silently; ``workloadRef`` and anything else
  we do not model is a warning, and a field Argo's own types do not have says so.
- A field of Flagger's vocabulary (``stepWeight``, ``threshold``, ``metrics`` ... in the
  canary or its analysis) is an error that shows Argo's way of writing it
  (:mod:`strategies.importers.mixed_vocabulary`).
"""

from __future__ import annotations

from typing import Any

from rolloutlab.strategies.importers.argo_analysis import (  # noqa: F401
    AnalysisTemplateImport,
    _arg_value,
    _dry_run_patterns,
    _matches,
    substitute_args,
)
from rolloutlab.strategies.importers.manifest import (
    MISSING,
    ManifestReader,
    Origins,
    Path,
    describe_type,
    replaces,
    validate_strategy,
)
from rolloutlab.strategies.importers.mixed_vocabulary import reject_flagger_fields
from rolloutlab.strategies.spec import StrategySpec
from rolloutlab.strategies.yaml_input import YamlDocument

API_GROUP = "argoproj.io"
API_VERSION = "argoproj.io/v1alpha1"
TEMPLATE_KINDS = ("AnalysisTemplate", "ClusterAnalysisTemplate")

# Argo's validation (pkg/apis/rollouts/validation/validation.go, hasMultipleStepsType) allows one
# of these per step; the others may stand beside it and take effect when the step is reached.
_MAIN_STEP_KINDS = ("setWeight", "pause", "analysis", "experiment", "plugin")
_SIDE_STEP_KINDS = ("setCanaryScale", "setHeaderRoute", "setMirrorRoute")
_STEP_KINDS = _MAIN_STEP_KINDS + _SIDE_STEP_KINDS

_ROLLOUT_SILENT = {"selector", "template", "revisionHistoryLimit", "analysis"}
_ROLLOUT_REASONS = {
    "workloadRef": "the pods come from the referenced workload (its pod template and, with scaleDown, its own "
                   "scaling), which rolloutlab does not read: the scenario's service gives the pods, the strategy "
                   "is imported as written",
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
    "trafficManagement": "an early name of trafficRouting that Argo no longer reads: this canary runs without a "
                         "traffic router (weights follow the pods)",
}
_BLUE_GREEN_SILENT = {"activeMetadata", "previewMetadata"}
_BLUE_GREEN_REASONS = {
    "antiAffinity": "pod anti-affinity is not modelled (pods are scheduled independently)",
    "scaleDownDelayRevisionLimit": "only two versions exist in rolloutlab; not modelled",
    "maxUnavailable": "rolloutlab's blue-green keeps the active version at full size; not modelled",
}
_UNKNOWN_TO_ARGO = ("not a field of an Argo Rollout here: the API server drops it, so Argo never sees it "
                    "(an early or misplaced name?); ignored")


def _unknown_to_argo(r: ManifestReader, p: Path, known: set[str]) -> dict[str, str]:
    """The reason for every key at ``p`` that Argo's own types do not have
    (pkg/apis/rollouts/v1alpha1/types.go: RolloutSpec, RolloutStrategy)."""
    return {key: _UNKNOWN_TO_ARGO for key in r.keys(p) if key not in known}


def is_rollout(data: Any) -> bool:
    return isinstance(data, dict) and data.get("kind") == "Rollout" and str(data.get("apiVersion", "")).startswith(
        f"{API_GROUP}/")


class ArgoImporter(AnalysisTemplateImport):
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
            reader = ManifestReader(doc, warnings, label=str(data["kind"]), main_file=self.file)
            name = reader.string(("metadata", "name"), required=True)
            key = (data["kind"], name)
            if replaces(reader, self.template_docs.get(key), f"{key[0]} {name!r}"):
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
        handled = {"replicas", "progressDeadlineSeconds", "progressDeadlineAbort", "strategy"}
        r.report_unmodelled(("spec",), handled, _ROLLOUT_SILENT, {
            **_ROLLOUT_REASONS, **_unknown_to_argo(r, ("spec",), handled | _ROLLOUT_SILENT | set(_ROLLOUT_REASONS))})

        sp = ("spec", "strategy")
        if not r.has(sp):
            misplaced = [k for k in ("canary", "blueGreen") if r.has(("spec", k))]
            if misplaced:  # Argo refuses it: "Rollout has missing field '.spec.strategy.canary or ...'"
                raise r.error(("spec", misplaced[0]), f"belongs under spec.strategy ({misplaced[0]} directly under "
                                                      "spec is not read by Argo, which refuses a Rollout without "
                                                      "spec.strategy)")
        strategy = r.mapping(sp, required=True)
        chosen = [k for k in ("canary", "blueGreen") if k in strategy]
        if len(chosen) != 1:
            got = ", ".join(strategy) or "nothing"
            refused = " (Argo refuses it too: \"Multiple Strategies can not be listed\")" if len(chosen) > 1 else ""
            raise r.error(sp, f"needs exactly one of canary, blueGreen; got {got}{refused}")
        r.report_unmodelled(sp, set(chosen), (), _unknown_to_argo(r, sp, set(chosen)))
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
        for where in (p, (*p, "analysis"), ("spec", "analysis")):
            reject_flagger_fields(r, where)
        op: Path = ("strategy", "canary")
        self.origins.note(op, r, p)
        c: dict[str, Any] = {}
        routed = r.mapping((*p, "trafficRouting")) is not None
        steps_out: list[dict] = []
        index_map: dict[int, int] = {}
        steps = r.sequence((*p, "steps")) or []
        for i in range(len(steps)):
            index_map[i] = len(steps_out)
            steps_out += self._step((*p, "steps", i), (*op, "steps"), len(steps_out))
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
                        r.warn((*bp, "startingStep"),
                               f"renumbered to {index_map[start]} because steps before it were dropped or split")
                c["analysis"] = ref

        for key in ("maxSurge", "maxUnavailable"):
            value = r.at((*p, key))
            if value is MISSING or value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, str)):
                raise r.error((*p, key), f"must be a replica count or a percentage like '25%', got {describe_type(value)}")
            self._put(c, (*op, key), value, (*p, key))

        if routed:
            managed = self._traffic_routing((*p, "trafficRouting"), (*op, "managedRoutes"))
            self._put(c, (*op, "trafficRouting"), "router", (*p, "trafficRouting"))
            if managed:
                c["managedRoutes"] = managed
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

    def _traffic_routing(self, p: Path, op: Path) -> list[dict]:
        """Warn about the routers (all become an exact-weight router); return managedRoutes."""
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
        if "maxTrafficWeight" in routing:
            r.warn((*p, "maxTrafficWeight"), "rolloutlab weights are percentages of 100; maxTrafficWeight is not modelled")
        managed: list[dict] = []
        for j in range(len(r.sequence((*p, "managedRoutes")) or [])):
            mp = (*p, "managedRoutes", j)
            r.mapping(mp, required=True)
            r.report_unmodelled(mp, {"name"})
            managed.append({"name": r.string((*mp, "name"), required=True)})
            self.origins.note_tree((*op, j), r, mp, managed[-1])
        return managed

    def _step(self, p: Path, op: Path, index: int) -> list[dict]:
        """Our steps for one Argo step (``op`` is our steps list, ``index`` where they go)."""
        r = self.r
        step = r.mapping(p, required=True)
        for kind in step:
            if kind not in _STEP_KINDS:
                hint = ""
                if kind == "duration" and "pause" in step and step["pause"] is None:
                    hint = (" (duration belongs under pause: `pause: {duration: ...}`; as written the pause is empty "
                            "and Argo refuses the step)")
                raise r.error((*p, kind), f"unknown step {kind!r}; a step takes one of {', '.join(_STEP_KINDS)}{hint}")
        main = [k for k in step if k in _MAIN_STEP_KINDS]
        if not step or len(main) > 1:
            what = f"has {', '.join(step)}" if step else "is empty"
            raise r.error(p, f"a step takes exactly one of {', '.join(_MAIN_STEP_KINDS)} (with setCanaryScale, "
                             f"setHeaderRoute or setMirrorRoute beside it, as in Argo Rollouts); this one {what}")
        kinds = [k for k in _SIDE_STEP_KINDS if k in step] + main
        groups = [kinds]
        if "setHeaderRoute" in kinds and "setMirrorRoute" in kinds:
            groups = [["setHeaderRoute"], [k for k in kinds if k != "setHeaderRoute"]]
            r.warn((*p, "setHeaderRoute"), "rolloutlab changes one route per step: imported as a step of its own just "
                                           "before the rest, so both routes are still set when the step is reached")
        out: list[dict] = []
        for group in groups:
            built: dict[str, Any] = {}
            for kind in group:
                value = self._step_kind(kind, (*p, kind), (*op, index + len(out), kind))
                if value is not None:
                    built[kind] = value
                elif kind == "analysis":
                    r.warn(p, "analysis step dropped: none of its metrics can be judged by rolloutlab")
            if not built:
                continue
            if "setCanaryScale" in built and "analysis" in built:
                r.warn((*p, "analysis"), "Argo ends a step holding setCanaryScale once the canary has its pods, "
                                         "before it looks at the step's analysis (rollout/canary.go, "
                                         "completedCurrentCanaryStep), so this analysis never holds or aborts the "
                                         "rollout; imported as Argo runs it (make the analysis a step of its own to "
                                         "wait for its verdict)")
            self.origins.note((*op, index + len(out)), r, p)
            out.append(built)
        return out

    def _step_kind(self, kind: str, sp: Path, op: Path) -> Any:
        """The value of our step ``kind`` read from the Argo step field ``sp``; None drops it."""
        r = self.r
        if kind == "setWeight":
            weight = r.integer(sp, minimum=0, maximum=100, required=True)
            self.origins.note(op, r, sp)
            return weight
        if kind == "pause":
            r.mapping(sp, required=True)
            r.report_unmodelled(sp, {"duration"})
            self.origins.note(op, r, sp)
            duration = r.duration((*sp, "duration"))
            if duration is None:
                return {}
            self.origins.note((*op, "duration"), r, (*sp, "duration"))
            return {"duration": duration}
        if kind == "analysis":
            return self._analysis_ref(sp, op)
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
            self.origins.note_tree(op, r, sp, out)
            return out
        if kind == "setHeaderRoute":
            return self._header_route(sp, op)
        if kind == "setMirrorRoute":
            return self._mirror_route(sp, op)
        if kind == "experiment":
            r.warn(sp, "experiment steps (extra baseline/canary ReplicaSets) are not modelled; step dropped")
            return None
        r.warn(sp, "step plugins run code rolloutlab cannot model; step dropped")
        return None

    # ------------------------------------------------------------------ managed routes

    def _header_route(self, sp: Path, op: Path) -> dict:
        """``setHeaderRoute``: name and header matches as Argo writes them; no match removes the route."""
        r = self.r
        r.mapping(sp, required=True)
        r.report_unmodelled(sp, {"name", "match"})
        out: dict[str, Any] = {"name": r.string((*sp, "name"), required=True)}
        if r.sequence((*sp, "match")) is not None:
            out["match"] = []
            for j in range(len(r.sequence((*sp, "match")))):
                mp = (*sp, "match", j)
                r.mapping(mp, required=True)
                r.report_unmodelled(mp, {"headerName", "headerValue"})
                out["match"].append({"headerName": r.string((*mp, "headerName"), required=True),
                                     "headerValue": r.string_match((*mp, "headerValue"))})
        self.origins.note_tree(op, r, sp, out)
        return out

    def _mirror_route(self, sp: Path, op: Path) -> dict:
        """``setMirrorRoute``: name, percentage and method/path/headers matches; no match
        removes the route (rollout/trafficrouting/istio/istio.go: createMirrorRoute mirrors
        100% when percentage is unset, reconcileVirtualServiceMirrorRoutes removes the route
        when match is nil)."""
        r = self.r
        r.mapping(sp, required=True)
        r.report_unmodelled(sp, {"name", "match", "percentage"})
        out: dict[str, Any] = {"name": r.string((*sp, "name"), required=True)}
        percentage = r.integer((*sp, "percentage"), minimum=0, maximum=100)
        if percentage is not None:
            out["percentage"] = percentage
        if r.sequence((*sp, "match")) is not None:
            out["match"] = []
            for j in range(len(r.sequence((*sp, "match")))):
                mp = (*sp, "match", j)
                r.mapping(mp, required=True)
                r.report_unmodelled(mp, {"method", "path", "headers"})
                match: dict[str, Any] = {}
                for key in ("method", "path"):
                    if r.mapping((*mp, key)) is not None:
                        match[key] = r.string_match((*mp, key))
                for name in r.keys((*mp, "headers")):
                    match.setdefault("headers", {})[name] = r.string_match((*mp, "headers", name))
                out["match"].append(match)
        self.origins.note_tree(op, r, sp, out)
        return out

    # ------------------------------------------------------------------ blue-green

    def _blue_green(self, p: Path) -> dict:
        r = self.r
        r.mapping(p, required=True)
        for where in (p, ("spec", "analysis")):
            reject_flagger_fields(r, where)
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
            other = "AnalysisTemplate" if cluster else "ClusterAnalysisTemplate"
            if doc is None and (other, name) in self.template_docs:
                # Argo looks the name up in the scope clusterScope says, and only there
                # (the run cannot be created and the rollout stops with an error)
                r.warn(source, f"Argo looks for a {kind} {name!r} here (clusterScope: {str(cluster).lower()}) and "
                               f"none is given, only {'an' if other[0] == 'A' else 'a'} {other} of that name, so "
                               "Argo could not start this "
                               f"analysis; the {other} is used")
                doc, kind = self.template_docs[(other, name)], other
            if doc is None:
                known = ", ".join(f"{k} {n!r}" for k, n in sorted(self.template_docs)) or "none"
                raise r.error(source, f"refers to {kind} {name!r}, which is in none of the given documents (templates "
                                      f"given: {known}); give the file that defines it too (several files or a "
                                      "directory can be imported together)")
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


__all__ = ["API_VERSION", "ArgoImporter", "is_rollout", "substitute_args"]
