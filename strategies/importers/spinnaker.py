"""Spinnaker pipeline JSON (``spin pipeline get``, Deck's "Edit as JSON") -> our spec.

A pipeline is a graph of stages (:mod:`strategies.importers.spinnaker_stages`). The
import finds the deploy stages (:mod:`strategies.importers.spinnaker_deploy`), picks the
production rollout, and reads the stages around it as the rollout's gates:

- **red/black** (``redblack``; ``deployManifest`` with ``trafficManagement.options.strategy:
  redblack``) becomes ``blueGreen``: the new server group comes up at full size and the
  old one is disabled, which is the switch. A ``manualJudgment`` between the deploy and a
  stage that disables the old server group (``disableServerGroup``, ``disableCluster``,
  ``disableManifest``, or the ``enableManifest`` of a deploy that sent no traffic) is
  ``autoPromotionEnabled: false``; a ``wait`` there is ``autoPromotionSeconds``;
  ``delayBeforeDisableSec`` (both groups take traffic for that long, orca's "Wait Before
  Disable") is also ``autoPromotionSeconds``, with a warning. ``delayBeforeScaleDownSec``
  with ``scaleDown: true``, or the waits before a later ``destroyServerGroup`` /
  ``scaleDownCluster`` / ``shrinkCluster``, are ``scaleDownDelaySeconds``; with
  ``scaleDown`` false the old group stays disabled at full size (kept a day here).
  ``maxRemainingAsgs`` and ``rollback.onFailure`` are noted. A ``kayentaCanary`` stage
  before the switch is the ``prePromotionAnalysis``, after it the ``postPromotionAnalysis``.
- **highlander** is ``blueGreen`` whose old version is destroyed at once
  (``scaleDownDelaySeconds: 0``): rolling back means deploying again.
- **rolling red/black** (``rollingredblack``: orca's ``RollingRedBlackStrategy`` grows the new
  group to each of ``targetPercentages``, 100 appended, and disables the same share of the
  old one, waiting ``delayBeforeDisableSec`` at each) is a canary without a router (pod
  counts set the share, as Spinnaker's resizes do): ``setWeight`` per percentage, a
  ``pause`` for the delay; ``pipelineBeforeCleanup`` is noted.
- a **canary deploy** (a cluster or manifest named for a canary, beside an optional
  baseline) followed by ``kayentaCanary`` / ``manualJudgment`` / ``wait`` stages before the
  production deploy is a canary: ``setWeight`` at the canary's share of all pods, then an
  ``analysis`` step per Kayenta stage (:mod:`strategies.importers.spinnaker_canary`), an
  indefinite ``pause`` per judgment, a timed ``pause`` per wait.
- ``none`` (``""``): the new server group joins the old one and both serve. Followed by a
  stage that disables the old one, that is a blue-green done by stages; otherwise a canary
  at 50% that waits for ``promote``. ``custom`` runs a pipeline that is not in the input:
  read like ``none``, with a warning. ``rollingpush`` and a ``deployManifest`` without
  traffic management (Kubernetes' own rolling update) are ``rolling``.
- deploy stages of the production release in two or more regions or accounts become
  ``waves`` (:mod:`strategies.importers.spinnaker_waves`).

Every other stage (bake, jenkins, webhook, script, findImage, checkPreconditions,
evaluateVariables, ...) is a warning naming its line. Pipeline expressions are resolved
only from ``parameterConfig`` defaults, and reported otherwise.
"""

from __future__ import annotations

from typing import Any

from rolloutlab.strategies.importers.manifest import Origins, Path, validate_strategy
from rolloutlab.strategies.importers.spinnaker_canary import CanaryAnalyses
from rolloutlab.strategies.importers.spinnaker_deploy import (
    DEPLOY_TYPES,
    Placement,
    Role,
    kayenta_placements,
    read_placements,
)
from rolloutlab.strategies.importers.spinnaker_stages import (
    PipelineReader,
    Stage,
    read_graph,
    read_parameters,
    unmodelled_reason,
)
from rolloutlab.strategies.importers.spinnaker_waves import WaveBuilder
from rolloutlab.strategies.spec import StrategySpec
from rolloutlab.strategies.yaml_input import YamlDocument

#: Stages that move users from the old server group to the new one (the blue-green switch).
SWITCH_TYPES = ("disableServerGroup", "disableCluster", "disableManifest", "enableServerGroup", "enableManifest")
#: Stages that remove the old server group once it no longer takes traffic.
SCALE_DOWN_TYPES = ("destroyServerGroup", "scaleDownCluster", "shrinkCluster")
KEPT_DISABLED_SECONDS = 86400.0  # scaleDown false: the old group stays until a later deploy; a day stands for that
_GATES = ("manualJudgment", "wait", "kayentaCanary")
_PIPELINE_SILENT = {"name", "application", "id", "index", "stages", "parameterConfig", "triggers", "notifications",
                    "expectedArtifacts", "appConfig", "keepWaitingPipelines", "limitConcurrent", "parallel",
                    "executionEngine", "lastModifiedBy", "updateTs", "stageCounter", "schema", "spelEvaluator",
                    "description", "isNew", "disabled", "roles", "serviceAccount", "locked", "tags", "type",
                    "source", "template", "variables", "exclude", "config"}


def is_pipeline(data: Any) -> bool:
    """A Spinnaker pipeline: ``stages`` whose items carry ``type`` and ``refId``, or ``application`` + ``stages``."""
    if not isinstance(data, dict) or not isinstance(data.get("stages"), list) or "kind" in data:
        return False
    stages = data["stages"]
    typed = bool(stages) and all(isinstance(s, dict) and "type" in s and "refId" in s for s in stages)
    return typed or "application" in data


class SpinnakerImporter:
    """Turns one pipeline (and the Kayenta canary configs beside it) into a :class:`StrategySpec`."""

    def __init__(self, pipeline: YamlDocument, documents: list[YamlDocument], warnings: list[str]) -> None:
        self.file = pipeline.file
        self.warnings = warnings
        self.r = PipelineReader(pipeline, warnings)
        self.origins = Origins()
        self.analyses = CanaryAnalyses(documents, warnings)
        self.handled: set[str] = set()

    def run(self) -> StrategySpec:
        r = self.r
        read_parameters(r)
        graph = read_graph(r)
        self.graph = graph
        r.report_unmodelled((), _PIPELINE_SILENT)
        placements = [p for s in graph.order for p in (
            read_placements(r, s) if s.type in DEPLOY_TYPES else
            kayenta_placements(r, s) if s.type == "kayentaCanary" else [])]
        if not placements:
            raise r.error(("stages",), "has no deploy stage (deploy, createServerGroup, cloneServerGroup or "
                                       "deployManifest): there is no rollout to import")
        production = [p for p in placements if p.role == Role.PRODUCTION]
        canaries = [p for p in placements if p.role == Role.CANARY]
        if not production and not canaries:  # only "baseline" names: nothing else to take them for
            production = placements
        for p in placements:
            if p.stage.type != "kayentaCanary":  # its analysis is read with the canary's steps
                self.handled.add(p.stage.ref)
        name = r.text(("name",)) or r.text(("application",)) or _stem(self.file)
        out: dict[str, Any] = {"name": name, "description": f"imported from Spinnaker pipeline {name!r}"}
        self.origins.note(("name",), r, ("name",) if r.has(("name",)) else ())
        waves = WaveBuilder(r, graph, self.origins, self.handled).build(production) if production else None
        main = production[0] if production else None
        if main is not None and main.replicas is not None:
            self._put(out, ("replicas",), main.replicas, main.path)
        if canaries and (main is None or not graph.before(main.stage, canaries[0].stage)):
            choice = {"canary": self._canary_deploy(canaries[0], main, placements, out)}
        else:
            assert main is not None
            choice = self._production(main, single=waves is None)
            for c in canaries:
                r.warn(c.path, f"{c.stage.label} deploys a canary after the production rollout has started; "
                               "not modelled")
        for p in placements[1:]:
            if p.role == Role.BASELINE:
                if "canary" in choice:  # Kayenta's control: judged against, as canary.baseline does
                    choice["canary"]["baseline"] = True
                else:
                    r.warn(p.path, f"{p.stage.label} deploys a baseline (Kayenta's control), but the rollout "
                                   "is not a canary: not modelled")
        self._report_rest(main or canaries[0])
        if self.analyses.templates:
            out["analysisTemplates"] = self.analyses.templates
        out["strategy"] = choice
        if waves is not None:
            out["waves"] = waves
        return validate_strategy(out, self.origins, self.file)

    def _put(self, target: dict, out_path: Path, value: Any, source: Path) -> None:
        target[out_path[-1]] = value
        self.origins.note(out_path, self.r, source)

    # ------------------------------------------------------------------ the production deploy

    def _production(self, d: Placement, single: bool) -> dict:
        """The strategy of the production deploy ``d`` (gates after it only when it is the one region)."""
        gates = self._after(d.stage) if single else []
        if d.strategy in ("redblack", "highlander"):
            return {"blueGreen": self._blue_green(d, gates, switched=d.enable_traffic)}
        if d.strategy in ("rollingredblack", "cfrollingredblack"):
            return {"canary": self._rolling_red_black(d)}
        if d.strategy in ("rollingpush", "kubernetes"):
            return {"rolling": self._rolling(d)}
        if d.strategy == "custom":
            self.r.warn(d.strategy_path, f"the custom strategy runs pipeline {d.setting('strategyPipeline')!r}, which "
                                         "is not in this input; read as strategy none (the stages after the deploy "
                                         "decide)")
        if any(s.type in SWITCH_TYPES for s in gates):  # none + a later disable: red/black by stages
            return {"blueGreen": self._blue_green(d, gates, switched=False)}
        self.r.warn(d.strategy_path, f"{d.stage.label} deploys with no strategy: the new server group joins the old "
                                     "one and both serve until someone disables the old one; modelled as a canary "
                                     "at 50% (equal sizes) that waits for promote")
        op: Path = ("strategy", "canary")
        self.origins.note(op, self.r, d.strategy_path)
        steps = [{"setWeight": 50}] + self._gate_steps(gates, (*op, "steps"), 1)
        if len(steps) == 1:
            steps.append({"pause": {}})
        self.origins.note((*op, "steps"), self.r, d.strategy_path)
        return {"canary": {"steps": steps}}

    def _after(self, stage: Stage, stop: list[Stage] | None = None) -> list[Stage]:
        """Stages that wait for ``stage`` (and, given ``stop``, that some stage of it waits for)."""
        after = self.graph.after(stage)
        if stop is not None:
            after = [s for s in after if any(self.graph.before(s, t) for t in stop)]
        return [s for s in after if s.ref not in self.handled]

    def _blue_green(self, d: Placement, gates: list[Stage], switched: bool) -> dict:
        r, op = self.r, ("strategy", "blueGreen")
        self.origins.note(op, r, d.strategy_path)
        bg: dict[str, Any] = {"activeService": d.services[0] if d.services else "active", "previewService": None}
        if len(d.services) > 1:
            r.warn(d.strategy_path, f"traffic goes through {len(d.services)} Services; rolloutlab switches one "
                                    f"({d.services[0]!r})")
        if d.strategy == "highlander":
            r.warn(d.strategy_path, "highlander destroys the old server groups as soon as the new one is up: rolling "
                                    "back means deploying again; modelled as blueGreen with scaleDownDelaySeconds 0")
            self._put(bg, (*op, "scaleDownDelaySeconds"), 0, d.strategy_path)
        elif d.stage.type != "deployManifest":
            self._red_black_settings(d, bg, op)
        else:  # the Kubernetes provider disables the old ReplicaSet and keeps it (spinnaker.io, Rollout Strategies)
            r.warn(d.strategy_path, "red/black disables the previous ReplicaSet and keeps it at full size until "
                                    f"later deploys remove it; modelled as scaleDownDelaySeconds {KEPT_DISABLED_SECONDS:g}"
                                    " (a day)")
            self._put(bg, (*op, "scaleDownDelaySeconds"), KEPT_DISABLED_SECONDS, d.strategy_path)
        phase = "post" if switched else "pre"
        waited, held = 0.0, None
        for s in gates:
            here = s.at("type")
            if s.type == "manualJudgment" and phase == "pre":
                self._put(bg, (*op, "autoPromotionEnabled"), False, s.path)
            elif s.type == "manualJudgment" and phase == "post" and any(
                    t.type in SCALE_DOWN_TYPES and self.graph.before(s, t) for t in gates):
                held = s  # the old group stays disabled until a person approves removing it
            elif s.type == "wait" and (phase == "pre" or phase == "post" and any(
                    t.type in SCALE_DOWN_TYPES and self.graph.before(s, t) for t in gates)):
                seconds = r.quantity(s.at("waitTime")) or 0.0
                if phase == "pre" and bg.get("autoPromotionEnabled") is not False:
                    self._put(bg, (*op, "autoPromotionSeconds"), bg.get("autoPromotionSeconds", 0) + seconds, s.path)
                elif phase == "pre":
                    r.warn(here, f"{s.label}: waits before the switch beside a manual judgment; rolloutlab's gate "
                                 "waits for promote only")
                else:
                    waited += seconds
            elif s.type == "kayentaCanary" and phase != "done":
                key = "prePromotionAnalysis" if phase == "pre" else "postPromotionAnalysis"
                if key in bg:
                    r.warn(here, f"{s.label}: a second Kayenta analysis {'before' if phase == 'pre' else 'after'} the "
                                 "switch is not modelled")
                else:
                    name = self.analyses.template_for(r, s)
                    bg[key] = {"templates": [{"templateName": name}]}
                    self.origins.note_tree((*op, key), r, s.path, bg[key])
            elif s.type in SWITCH_TYPES and _targets_new(r, s):
                continue  # disables or rolls back the new server group: a failure branch, warned as such later
            elif s.type in SWITCH_TYPES and phase == "pre":
                phase = "post"
            elif s.type in SCALE_DOWN_TYPES and phase == "post":
                if held is not None:
                    r.warn(held.at("type"), f"{held.label}: keeps the old server group (disabled) until a person "
                                            f"approves removing it; modelled as scaleDownDelaySeconds "
                                            f"{KEPT_DISABLED_SECONDS:g} (a day)")
                self._put(bg, (*op, "scaleDownDelaySeconds"), KEPT_DISABLED_SECONDS if held else waited, s.path)
                phase = "done"
            else:
                continue
            self.handled.add(s.ref)
        if phase == "pre":
            r.warn(d.strategy_path, f"{d.stage.label} sends no traffic to the new version and no later stage "
                                    "switches it; modelled as a switch once the gates before it pass")
        if "prePromotionAnalysis" in bg:
            r.warn(d.strategy_path, "the analysis before the switch needs requests on the new version: rolloutlab "
                                    "sends it the preview Service's")
            bg["previewService"] = "preview"
        return bg

    def _red_black_settings(self, d: Placement, bg: dict, op: Path) -> None:
        r, cp = self.r, d.path
        delay = r.quantity((*cp, "delayBeforeDisableSec")) or 0.0
        if delay:
            r.warn((*cp, "delayBeforeDisableSec"), f"both server groups take traffic for {delay:g}s before the old one "
                                                   "is disabled; rolloutlab's new version takes none before the "
                                                   "switch: modelled as autoPromotionSeconds")
            self._put(bg, (*op, "autoPromotionSeconds"), delay, (*cp, "delayBeforeDisableSec"))
        if r.flag((*cp, "scaleDown")):
            seconds = r.quantity((*cp, "delayBeforeScaleDownSec")) or 0.0
            self._put(bg, (*op, "scaleDownDelaySeconds"), seconds,
                      (*cp, "delayBeforeScaleDownSec") if r.has((*cp, "delayBeforeScaleDownSec")) else (*cp, "scaleDown"))
        else:
            r.warn((*cp, "scaleDown") if r.has((*cp, "scaleDown")) else cp,
                   "scaleDown is off: the old server group stays disabled at full size until a later deploy removes "
                   f"it; modelled as scaleDownDelaySeconds {KEPT_DISABLED_SECONDS:g} (a day)")
            self._put(bg, (*op, "scaleDownDelaySeconds"), KEPT_DISABLED_SECONDS, cp)
        keep = r.whole((*cp, "maxRemainingAsgs"))
        if keep is not None and keep != 2:
            r.warn((*cp, "maxRemainingAsgs"), f"Spinnaker keeps up to {keep} server groups of the cluster; rolloutlab "
                                              "keeps the old and the new version")
        rollback = r.flag((*cp, "rollback", "onFailure"))
        if rollback is not None:
            r.warn((*cp, "rollback", "onFailure"),
                   ("Spinnaker rolls back when the deploy itself fails" if rollback else
                    "Spinnaker does not roll back when the deploy fails") +
                   "; rolloutlab rolls back on every failure it detects (analysis, progress deadline)")

    def _rolling_red_black(self, d: Placement) -> dict:
        r, cp, op = self.r, d.path, ("strategy", "canary")
        self.origins.note(op, r, d.strategy_path)
        tp = (*cp, "targetPercentages")
        percentages = [r.whole((*tp, j), minimum=1) for j in range(len(r.sequence(tp) or []))]
        percentages = [p for p in percentages if p is not None] or [50, 100]  # Deck's default
        for j, (a, b) in enumerate(zip([0, *percentages], percentages)):
            if b <= a or b > 100:
                raise r.error((*tp, j), f"percentages must grow towards 100 (got {b} after {a})")
        if percentages[-1] != 100:  # RollingRedBlackStrategy appends it
            percentages.append(100)
        pause = r.quantity((*cp, "delayBeforeDisableSec")) or 0.0
        steps: list[dict] = []
        for j, p in enumerate(percentages):
            if p < 100 or pause:
                self.origins.note((*op, "steps", len(steps)), r, (*tp, j) if r.has((*tp, j)) else tp)
                steps.append({"setWeight": p})
            if pause:
                self.origins.note((*op, "steps", len(steps)), r, (*cp, "delayBeforeDisableSec"))
                steps.append({"pause": {"duration": pause}})
        pipeline = d.setting("pipelineBeforeCleanup.pipelineId")
        if pipeline:
            r.warn((*cp, "pipelineBeforeCleanup"), f"validation pipeline {pipeline!r} runs at each percentage; it is "
                                                   "not in this input and not modelled")
        self.origins.note((*op, "steps"), r, tp if r.has(tp) else d.strategy_path)
        later = r.quantity((*cp, "delayBeforeScaleDownSec")) if r.flag((*cp, "scaleDown")) else None
        if later:
            r.warn((*cp, "delayBeforeScaleDownSec"), f"the old server group is scaled down {later:g}s after the last "
                                                     "percentage; without a router rolloutlab's canary scales the old "
                                                     "version down as the new one grows: not modelled")
        # the new group grows while the old one keeps every instance (pinned), then the same share is
        # disabled: a surge of up to 100% and nothing unavailable (RollingRedBlackStrategy.composeAfterStages)
        return {"steps": steps, "maxSurge": "100%", "maxUnavailable": 0}

    def _rolling(self, d: Placement) -> dict:
        op = ("strategy", "rolling")
        self.origins.note(op, self.r, d.strategy_path)
        if d.strategy == "rollingpush":
            n = self.r.whole((*d.path, "numConcurrentRelaunches"), minimum=1) or 1
            return {"maxSurge": 0, "maxUnavailable": n}
        return dict(d.rolling or {})

    # ------------------------------------------------------------------ canary deploys

    def _canary_deploy(self, c: Placement, main: Placement | None, placements: list[Placement], out: dict) -> dict:
        r, op = self.r, ("strategy", "canary")
        self.origins.note(op, r, c.path)
        baseline = sum(p.replicas or 0 for p in placements  # a baseline deployed beside the canary shares its traffic
                       if p.role == Role.BASELINE and (p.stage == c.stage or self.graph.concurrent(p.stage, c.stage)))
        if c.replicas and main is not None and main.replicas:
            weight = max(1, min(99, round(100 * c.replicas / (c.replicas + baseline + main.replicas))))
            r.warn(c.path, f"the canary's {c.replicas} instance(s) beside {main.replicas} in production"
                           f"{f' and {baseline} baseline' if baseline else ''} get about {weight}% of requests: "
                           f"setWeight {weight}")
        else:
            weight = 10
            r.warn(c.path, "the canary's share of requests is not known (the canary's or production's size is not "
                           "in this pipeline): setWeight 10 is used; set it to 100 x canary pods / all pods")
        if main is None:
            r.warn(c.path, "no production deploy follows the canary in this pipeline: rolloutlab promotes the "
                           "canary to every pod after the last step")
        else:
            r.warn(main.strategy_path, f"{main.stage.label} ({main.strategy}) is the promotion: rolloutlab scales the "
                                       "canary to every pod after the canary's last step")
        self.origins.note((*op, "steps", 0), r, c.path)
        gates = self._after(c.stage, None if main is None else [main.stage])
        if c.stage.type == "kayentaCanary":  # realTimeAutomatic: the stage deploys the canary and judges it
            gates = [c.stage, *gates]
        steps = [{"setWeight": weight}] + self._gate_steps(gates, (*op, "steps"), 1)
        self.origins.note((*op, "steps"), r, c.path)
        return {"steps": steps}

    def _gate_steps(self, gates: list[Stage], op: Path, start: int) -> list[dict]:
        """Canary steps for the judgments, waits and Kayenta analyses among ``gates``."""
        steps: list[dict] = []
        for s in gates:
            if s.type == "manualJudgment":
                step: dict = {"pause": {}}
            elif s.type == "wait":
                seconds = self.r.quantity(s.at("waitTime"))
                if seconds is None:
                    continue
                step = {"pause": {"duration": seconds}}
            elif s.type == "kayentaCanary":
                step = {"analysis": {"templates": [{"templateName": self.analyses.template_for(self.r, s)}]}}
            elif s.type in SWITCH_TYPES and not _targets_new(self.r, s):
                self.handled.add(s.ref)
                break  # the old server group is disabled: the rollout is promoted
            else:
                continue
            self.origins.note_tree((*op, start + len(steps)), self.r, s.path, step)
            steps.append(step)
            self.handled.add(s.ref)
        return steps

    # ------------------------------------------------------------------ everything else

    def _report_rest(self, main: Placement) -> None:
        """A warning, with its line, for every stage the strategy did not take in."""
        for s in self.graph.order:
            if s.ref in self.handled:
                continue
            if s.type in _GATES or s.type in SWITCH_TYPES or s.type in SCALE_DOWN_TYPES:
                if _targets_new(self.r, s):
                    reason = "acts on the new server group (a rollback branch); rolloutlab rolls back by itself"
                elif self.graph.before(s, main.stage):
                    reason = "runs before the rollout starts; not part of it"
                elif self.graph.concurrent(s, main.stage):
                    reason = "runs beside the deploy, not between its steps; not modelled"
                else:
                    reason = "runs after the rollout has ended (or between regions); not modelled"
            else:
                reason = unmodelled_reason(s.type)
            self.r.warn(s.at("type"), f"{s.label}: {reason}")
            if self.r.has(s.at("stageEnabled")):
                self.r.warn(s.at("stageEnabled"), f"{s.label} runs only when its condition holds; not modelled")


def _targets_new(r: PipelineReader, s: Stage) -> bool:
    """Whether a disable/enable/destroy stage acts on the newest server group (a rollback), not the old one."""
    values = [r.at(s.at(key)) for key in ("target", "criteria")]
    target = next((v for v in values if isinstance(v, str) and v), "")
    if s.type in ("enableServerGroup", "enableManifest"):
        return target not in ("", "current_asg_dynamic", "current_asg", "newest")  # enabling the new one is the switch
    return target in ("current_asg_dynamic", "current_asg", "newest")


def _stem(file: str) -> str:
    base = file.replace("\\", "/").rsplit("/", 1)[-1]
    return (base.rsplit(".", 1)[0] if "." in base else base) or "spinnaker-pipeline"




def import_pipeline(pipeline: YamlDocument, documents: list[YamlDocument], warnings: list[str]) -> StrategySpec:
    """The ``imports`` of the ``spinnaker-pipeline`` source (:mod:`strategies.importers.sources`)."""
    return SpinnakerImporter(pipeline, documents, warnings).run()


__all__ = ["SpinnakerImporter", "import_pipeline", "is_pipeline"]
