"""A ``kayentaCanary`` stage as rolloutlab analysis: how often Kayenta judges, and against what.

orca-kayenta reads the stage's ``canaryConfig`` as ``KayentaCanaryContext``
(``orca-kayenta/src/main/kotlin/.../kayenta/model/KayentaCanaryContext.kt``) and plans
the runs in ``RunCanaryIntervalsStage.beforeStages``:

- the analysis lasts ``lifetimeDuration`` (ISO-8601, ``PT1H``), or the deprecated
  ``lifetimeHours``; one of them is required for a real-time analysis;
- after a warm-up wait of ``beginCanaryAnalysisAfterMins``, it waits
  ``canaryAnalysisIntervalMins`` (default, zero or longer than the lifetime: the lifetime)
  and runs one judgement, ``lifetime / interval`` times (whole minutes, rounded down);
- each judgement scores the canary 0-100 against ``scoreThresholds`` (``marginal``,
  ``pass``; orca's default is 75/50). Deck fills them in from the canary config's
  ``classifier.scoreThresholds`` when a config is chosen, so that is the fallback here.

The canary config itself (metrics, judge, weights) lives in Kayenta's storage, not in the
pipeline: it must be given beside the pipeline as its own JSON document, found by ``id``
or ``name`` equal to ``canaryConfigId``. Without it there is nothing to judge by, so the
import stops and says which config to pass rather than inventing a threshold.
The config becomes one metric through :func:`strategies.importers.kayenta.kayenta_metric`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from rolloutlab.strategies.importers.manifest import ManifestReader, Path
from rolloutlab.strategies.importers.spinnaker_stages import PipelineReader, Stage
from rolloutlab.strategies.yaml_input import YamlDocument

ORCA_THRESHOLDS = {"pass": 75.0, "marginal": 50.0}  # KayentaCanaryContext's default scoreThresholds
_ISO_DURATION = re.compile(r"^\s*P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?\s*$", re.IGNORECASE)
_HANDLED = {"canaryConfigId", "lifetimeDuration", "lifetimeHours", "beginCanaryAnalysisAfterMins",
            "canaryAnalysisIntervalMins", "scoreThresholds", "lookbackMins", "scopes"}  # lookback, step: kayenta_metric
_SILENT = {"metricsAccountName", "storageAccountName", "configurationAccountName", "siteLocal",
           "combinedCanaryResultStrategy", "baselineAnalysisOffsetInMins"}


def parse_iso_duration(text: str) -> float | None:
    """Seconds of an ISO-8601 duration as Java's ``Duration.parse`` reads it (``PT1H30M``)."""
    match = _ISO_DURATION.match(text)
    if match is None or not any(match.groups()):
        return None
    days, hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def _config_of(data: dict) -> dict:
    """The config itself, also inside the ad-hoc ``{"canaryConfig": ..., "executionRequest": ...}`` body."""
    inner = data.get("canaryConfig")
    return inner if isinstance(inner, dict) else data


@dataclass
class CanaryAnalyses:
    """The analysis templates the pipeline's kayentaCanary stages turn into, one per config and timing."""

    documents: list[YamlDocument]
    warnings: list[str]
    templates: list[dict] = field(default_factory=list)
    _made: dict[tuple, str] = field(default_factory=dict)

    def template_for(self, r: PipelineReader, stage: Stage) -> str:
        """The name of the analysis template this kayentaCanary stage judges with."""
        cp = stage.at("canaryConfig")
        r.mapping(cp, required=True)
        r.report_unmodelled(cp, _HANDLED, _SILENT)
        kind = r.string(stage.at("analysisType")) or "realTime"
        if kind == "retrospective":
            r.warn(stage.at("analysisType"), "a retrospective analysis judges a past time window, not the rollout; "
                                             "modelled as a real-time analysis of the same length")
        elif kind not in ("realTime", "realTimeAutomatic"):
            raise r.error(stage.at("analysisType"), f"unknown analysisType {kind!r}; Kayenta's are realTime, "
                                                    "realTimeAutomatic and retrospective")
        config_id = r.string((*cp, "canaryConfigId"), required=True)
        lifetime = self._lifetime(r, cp)
        doc = self._config(r, (*cp, "canaryConfigId"), config_id)
        interval = r.quantity((*cp, "canaryAnalysisIntervalMins"))
        interval_s = lifetime if not interval or interval * 60 > lifetime else interval * 60
        count = max(1, math.floor(lifetime // 60) // max(1, math.floor(interval_s // 60)))
        delay = (r.quantity((*cp, "beginCanaryAnalysisAfterMins")) or 0.0) * 60
        lookback = (r.quantity((*cp, "lookbackMins")) or 0.0) * 60 or None
        step = r.quantity((*cp, "scopes", 0, "step"), minimum=1) or 60.0  # CanaryConfigScope.step, seconds
        thresholds = self._thresholds(r, (*cp, "scoreThresholds"), doc)
        if r.flag(stage.at("failPipeline")) is False or r.flag(stage.at("continuePipeline")):
            r.warn(stage.at("failPipeline") if r.has(stage.at("failPipeline")) else stage.at("continuePipeline"),
                   "the pipeline goes on when this analysis fails (failPipeline false / continuePipeline true); "
                   "rolloutlab rolls back on a failed analysis, as later stages checking its status would")
        key = (id(doc), interval_s, count, delay, step, lookback, tuple(sorted(thresholds.items())))
        if key not in self._made:
            self._made[key] = self._template(doc, config_id, dict(interval=interval_s, count=count, initial_delay=delay,
                                                                  thresholds=thresholds, step=step, lookback=lookback))
        return self._made[key]

    def _config(self, r: PipelineReader, path: Path, config_id: str) -> YamlDocument:
        from rolloutlab.strategies.importers.kayenta import is_kayenta_config

        configs = [d for d in self.documents if is_kayenta_config(d.data)]
        for doc in configs:
            if config_id in (_config_of(doc.data).get("id"), _config_of(doc.data).get("name")):
                return doc
        given = ", ".join(f"{_config_of(d.data).get('name') or _config_of(d.data).get('id')!r} "
                          f"({d.file}:{d.start_line})" for d in configs)
        raise r.error(path, f"canary config {config_id!r} is not among the documents given"
                            f"{f' (configs given: {given})' if given else ''}; Kayenta keeps it in its storage: "
                            f"save it as JSON (Deck: Canary Configs > the config > JSON, or GET "
                            f"/v2/canaryConfig/{config_id}) and pass that file beside the pipeline")

    def _lifetime(self, r: PipelineReader, cp: Path) -> float:
        text = r.string((*cp, "lifetimeDuration"))
        if text is not None:
            seconds = parse_iso_duration(text)
            if seconds is None:
                raise r.error((*cp, "lifetimeDuration"), f"{text!r} is not an ISO-8601 duration like PT1H or PT30M")
        else:
            hours = r.quantity((*cp, "lifetimeHours"))
            seconds = None if hours is None else hours * 3600
        if seconds is None:
            raise r.error(cp, "needs lifetimeDuration (like PT1H) or lifetimeHours: orca cannot plan a real-time "
                              "analysis without its length")
        if seconds < 60:
            raise r.error((*cp, "lifetimeDuration"), f"lasts {seconds:g}s; Kayenta judges whole minutes, so it "
                                                     "must last at least a minute")
        return seconds

    def _thresholds(self, r: PipelineReader, tp: Path, doc: YamlDocument) -> dict[str, float]:
        given = {k: r.quantity((*tp, k)) for k in ("marginal", "pass")}
        if all(v is not None for v in given.values()):
            return {k: float(v) for k, v in given.items() if v is not None}
        config = ManifestReader(doc, self.warnings, label="canary config")
        root = ("canaryConfig",) if isinstance(doc.data.get("canaryConfig"), dict) else ()
        cfg = {k: config.number((*root, "classifier", "scoreThresholds", k)) for k in ("marginal", "pass")}
        source, fallback = ("the canary config's classifier.scoreThresholds", cfg) if all(
            v is not None for v in cfg.values()) else ("orca's default", ORCA_THRESHOLDS)
        missing = [k for k, v in given.items() if v is None]
        r.warn(tp, f"scoreThresholds {', '.join(missing)} not set in the stage: {source} is used")
        return {k: float(given[k] if given[k] is not None else fallback[k]) for k in ("marginal", "pass")}

    def _template(self, doc: YamlDocument, config_id: str, timing: dict[str, Any]) -> str:
        # kayenta imports this module (ORCA_THRESHOLDS): imported here, when a stage needs it
        from rolloutlab.strategies.importers.kayenta import kayenta_metric

        metric = kayenta_metric(doc, self.warnings, **timing)
        base = re.sub(r"[^A-Za-z0-9.-]+", "-", str(_config_of(doc.data).get("name") or config_id)).strip("-")
        base = base or "kayenta"
        name, n = base, 2
        while any(t["name"] == name for t in self.templates):
            name, n = f"{base}-{n}", n + 1
        self.templates.append({"name": name, "metrics": [metric]})
        return name


__all__ = ["ORCA_THRESHOLDS", "CanaryAnalyses", "parse_iso_duration"]
