"""Kayenta canary configs -> rolloutlab's Mann-Whitney judge (Kayenta's NetflixACAJudge).

Entry points
------------
``kayenta_metric(doc, warnings, *, interval, count, initial_delay=0.0, thresholds=None,
step=60.0, lookback=None) -> dict``
    The AnalysisTemplate metric (a plain dict, validated) that judges like Kayenta with the
    canary config in ``doc`` (a :class:`YamlDocument` holding the config as ``GET
    /canaryConfig/{id}`` returns it or front50 stores it, or the ad-hoc
    ``{"canaryConfig": ..., "executionRequest": ...}`` body). For a ``kayentaCanary``
    stage: ``interval`` is the seconds between judgements (``canaryAnalysisIntervalMins`` ×
    60, the lifetime when unset), ``count`` the number of judgements, ``initial_delay`` the
    warm-up (``beginCanaryAnalysisAfterMins`` × 60), ``thresholds`` the stage's
    ``{"pass": .., "marginal": ..}`` (None: the config's ``classifier.scoreThresholds``, else
    orca's 75/50), ``step`` the seconds between data points (the scope's ``step``, orca's
    default 60) and ``lookback`` Kayenta's ``lookbackMins`` × 60 (None or 0: the whole
    run). Warnings go to ``warnings`` (``"line N: canary config metrics[2].query: ..."``);
    a config nothing can be judged from raises :class:`InputError`.
``import_kayenta_config(main, documents, warnings) -> StrategySpec``
    The ``kayenta-config`` source of :mod:`strategies.importers.sources`: a config alone
    becomes a canary run the way Spinnaker's kayentaCanary stage runs it by default.
``is_kayenta_config(data) -> bool``
    Whether a document is a canary config (or the ad-hoc body around one).

How a config maps (sources: spinnaker/kayenta ``docs/canary-config.md``,
``kayenta-judge/.../NetflixACAJudge.scala`` for the defaults, and each metric source's
``docs/metric-set-query-config.md``):

- each ``metrics[]`` entry becomes a scored signal: its ``query`` is read with
  :func:`strategies.importers.queries.read_query` when it is PromQL (a Prometheus
  ``customInlineTemplate``, or the ``templates`` entry its ``customFilterTemplate``
  names, written ``PromQL:...``), otherwise by the words of the metric's name and query
  (errors, 5xx, failures: the error rate; success: its complement; latency, duration,
  p99: a latency quantile). A metric that measures something else (CPU, memory, request
  counts, 4xx) is left out with a warning naming its line: nothing is dropped silently;
- ``analysisConfigurations.canary`` carries over as Kayenta reads it: ``direction``
  (default either), ``nanStrategy`` (default remove), ``critical``, ``mustHaveData``,
  ``muted``, ``effectSize`` and ``outliers``; a success-rate metric is judged as an error
  rate with the direction turned around (and cles bounds mirrored: 1 - bound);
- ``groups`` and ``classifier.groupWeights`` become the judge's groups and weights;
  a metric without a group is judged but muted (Kayenta leaves it out of every group score).

rolloutlab measures a window every ``step`` and judges every ``interval / step`` windows
(``judgeEvery``), over all windows so far (or the latest ``lookback / step``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import pydantic

from rolloutlab.strategies.importers.manifest import ManifestReader, Origins, Path, validate_strategy
from rolloutlab.strategies.importers.queries import read_query
from rolloutlab.strategies.importers.spinnaker_canary import ORCA_THRESHOLDS
from rolloutlab.strategies.spec import MAX_MEASUREMENTS, Metric, Signal, StrategySpec
from rolloutlab.strategies.yaml_input import YamlDocument

DEFAULT_STEP = 60.0  # orca CanaryConfigScope.step: seconds between data points
STANDALONE_LIFETIME = 3600.0  # orca has no default lifetime (RunCanaryIntervalsStage requires one); ours
STANDALONE_WEIGHT = 10  # the canary's traffic share when only the config is given (Spinnaker sizes server groups)
NETFLIX_JUDGE = "NetflixACAJudge-v1.0"
T = TypeVar("T")

_ROOT_HANDLED = {"name", "id", "metrics", "classifier", "templates", "judge"}
_ROOT_SILENT = {"description", "applications", "configVersion", "createdTimestamp", "createdTimestampIso",
                "updatedTimestamp", "updatedTimestampIso", "isNew"}
_METRIC_HANDLED = {"name", "query", "groups", "analysisConfigurations", "scopeName"}
_CANARY_HANDLED = {"direction", "nanStrategy", "critical", "mustHaveData", "muted", "effectSize", "outliers"}
_EFFECT_KEYS = ("allowedIncrease", "allowedDecrease", "criticalIncrease", "criticalDecrease")
_MIRRORED = {"allowedIncrease": "allowedDecrease", "allowedDecrease": "allowedIncrease",
             "criticalIncrease": "criticalDecrease", "criticalDecrease": "criticalIncrease"}

_LATENCY_WORDS = {"latency", "latencies", "duration", "durations", "time", "times", "responsetime", "elapsed",
                  "rtt", "ttfb", "percentile", "quantile"}
_ERROR_WORDS = {"error", "errors", "5xx", "fail", "failed", "failure", "failures", "fault", "faults",
                "exception", "exceptions"}
_SUCCESS_WORDS = {"success", "successes", "successful", "2xx", "availability", "available"}
_RESOURCE_WORDS = {"cpu", "memory", "mem", "heap", "gc", "thread", "threads", "disk", "io", "network", "bytes",
                   "load", "connections", "goroutines", "fd", "fds", "uptime", "saturation", "utilization"}
_TRAFFIC_WORDS = {"request", "requests", "rps", "qps", "throughput", "hits", "calls", "traffic", "count"}
_MEAN_WORDS = {"avg", "average", "mean"}
_PNN = re.compile(r"^p(\d{2,3})$")
_NRQL_PERCENTILE = re.compile(r"percentile\s*\([^,()]+,\s*(\d+(?:\.\d+)?)", re.IGNORECASE)
_STATUS_5XX = re.compile(r"['\"]5(?:xx|\*|\.\.|\d\d)['\"]|5\.\.|\b5xx\b|>=?\s*'?5\d\d\b", re.IGNORECASE)
_STATUS_4XX = re.compile(r"['\"]4(?:xx|\*|\.\.|\d\d)['\"]|4\.\.|\b4xx\b", re.IGNORECASE)


def is_kayenta_config(data: Any) -> bool:
    """A Kayenta canary config: metrics plus a judge or classifier (or the ad-hoc body around one)."""
    if isinstance(data, dict) and isinstance(data.get("canaryConfig"), dict) and "stages" not in data:
        data = data["canaryConfig"]
    return (isinstance(data, dict) and isinstance(data.get("metrics"), list) and "stages" not in data
            and any(k in data for k in ("judge", "classifier", "configVersion")))


def _root(doc: YamlDocument) -> Path:
    data = doc.data
    return ("canaryConfig",) if isinstance(data, dict) and isinstance(data.get("canaryConfig"), dict) else ()


@dataclass(frozen=True)
class _Reading:
    """What a metric's query measures, as rolloutlab's signal."""

    signal: Signal
    quantile: float | None
    complement: bool  # a success rate: judged as the error rate, direction turned around
    meaning: str


def _words(text: str) -> list[str]:
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", text)  # camelCase -> camel Case
    return [w for w in re.split(r"[^a-z0-9.*]+", text.lower()) if w]


def _guess(name: str, text: str) -> tuple[_Reading | None, str]:
    """Read a metric by its words; None with the reason when it is nothing rolloutlab judges."""
    words = set(_words(f"{name} {text}"))
    if words & _RESOURCE_WORDS:
        found = ", ".join(sorted(words & _RESOURCE_WORDS))
        return None, f"measures {found}, a resource rolloutlab does not model"
    five = bool(_STATUS_5XX.search(text)) or bool(words & _ERROR_WORDS)
    if not five and _STATUS_4XX.search(text):
        return None, "counts client errors (4xx); rolloutlab's error rate counts failed (5xx) requests"
    if words & _LATENCY_WORDS or any(_PNN.match(w) for w in words):
        quantile, how = 0.99, "rolloutlab's default p99 (no quantile named)"
        match = _NRQL_PERCENTILE.search(text)
        named = [float(m.group(1)) for w in words if (m := _PNN.match(w))]
        if match:
            quantile, how = float(match.group(1)) / 100, "the percentile() in the query"
        elif named:
            digits = str(int(named[0]))
            quantile, how = float(f"0.{digits}"), f"p{digits} in the name"
        elif words & _MEAN_WORDS or "median" in words:
            quantile, how = 0.5, "a mean or median latency, modelled as the median (p50)"
        return _Reading(Signal.LATENCY, quantile, False, f"a latency, quantile from {how}"), ""
    if five:
        return _Reading(Signal.ERROR_RATE, None, False, "errors, judged as the error rate"), ""
    if words & _SUCCESS_WORDS:
        return _Reading(Signal.ERROR_RATE, None, True, "successes, judged as the error rate (its complement)"), ""
    if words & _TRAFFIC_WORDS:
        return None, ("counts requests: canary and baseline traffic differ by the split, not by health "
                      "(rolloutlab's Mann-Whitney judge compares errorRate and latency)")
    return None, "its name and query say nothing rolloutlab measures (errors, successes, latency)"


class _ConfigReader:
    """Reads one canary config into the judge's signals, warning about everything it changes."""

    def __init__(self, doc: YamlDocument, warnings: list[str]) -> None:
        self.r = ManifestReader(doc, warnings, label="canary config")
        self.root = _root(doc)
        self.origins: dict[Path, Path] = {}  # metric dict path -> config path
        self.left_out: list[str] = []  # why each metric that cannot be judged was left out

    def name(self) -> str:
        r, root = self.r, self.root
        return r.string((*root, "name")) or r.string((*root, "id")) or "kayenta"

    def signals(self) -> tuple[list[dict], dict[str, float]]:
        r, root = self.r, self.root
        r.mapping(root, required=True)
        r.report_unmodelled(root, _ROOT_HANDLED, _ROOT_SILENT)
        judge = r.string((*root, "judge", "name"))
        if judge is not None and judge != NETFLIX_JUDGE:
            r.warn((*root, "judge", "name"), f"judge {judge!r}: rolloutlab judges as {NETFLIX_JUDGE} does")
        metrics = r.sequence((*root, "metrics"))
        if not metrics:
            raise r.error((*root, "metrics"), "lists no metric: there is nothing to judge")
        signals: list[dict] = []
        for i in range(len(metrics)):
            signal = self._signal((*root, "metrics", i))
            if signal is not None:
                self.origins[("judge", "mannWhitney", "signals", len(signals))] = (*root, "metrics", i)
                signals.append(signal)
        if not signals:
            raise r.error((*root, "metrics"), "no metric measures something rolloutlab judges (error rate, success "
                                              f"rate, latency): {'; '.join(self.left_out)}")
        if any(s.get("groups") for s in signals):
            for i, s in enumerate(signals):
                if not s.get("groups") and not s.get("muted"):
                    r.warn(self.origins[("judge", "mannWhitney", "signals", i)],
                           f"{s['name']!r} is in no group: Kayenta judges it but counts it in no group score; muted")
                    s["muted"] = True
        else:
            r.warn((*root, "metrics"), "no metric has a group: Kayenta's score would be 0; rolloutlab scores each "
                                       "metric as a group of its own, with equal weights")
        return signals, self._group_weights(signals)

    def _signal(self, mp: Path) -> dict | None:
        r = self.r
        r.mapping(mp, required=True)
        r.report_unmodelled(mp, _METRIC_HANDLED)
        name = r.string((*mp, "name"), required=True)
        reading = self._reading(mp, name)
        if reading is None:
            return None
        out: dict[str, Any] = {"signal": reading.signal.value, "name": name}
        if reading.quantile is not None:
            out["quantile"] = reading.quantile
        scope = r.string((*mp, "scopeName"))
        if scope not in (None, "default"):
            r.warn((*mp, "scopeName"), f"scope {scope!r}: rolloutlab judges one canary against one baseline")
        cp = (*mp, "analysisConfigurations", "canary")
        r.mapping((*mp, "analysisConfigurations"))
        r.mapping(cp)
        r.report_unmodelled(cp, _CANARY_HANDLED)
        direction = self._choice((*cp, "direction"), ("increase", "decrease", "either"), "either")
        if reading.complement:
            direction = {"increase": "decrease", "decrease": "increase"}.get(direction, direction)
        if direction == "either":
            r.warn((*cp, "direction") if r.has((*cp, "direction")) else mp,
                   f"direction either{' (Kayenta default)' if not r.has((*cp, 'direction')) else ''}: a canary "
                   f"significantly *below* the baseline fails {name!r} too")
        out["direction"] = direction
        out["nanStrategy"] = self._choice((*cp, "nanStrategy"), ("remove", "replace"), "remove")
        for key in ("critical", "mustHaveData", "muted"):
            if r.boolean((*cp, key)):
                out[key] = True
        effect = self._effect((*cp, "effectSize"), reading, name)
        if effect:
            out["effectSize"] = effect
        outliers = self._outliers((*cp, "outliers"))
        if outliers:
            out["outliers"] = outliers
        groups = r.sequence((*mp, "groups")) or []
        for j, group in enumerate(groups):
            if not isinstance(group, str) or not group.strip():
                raise r.error((*mp, "groups", j), "a group is a name")
        if groups:
            out["groups"] = list(dict.fromkeys(groups))
        return out

    def _choice(self, path: Path, allowed: tuple[str, ...], default: str) -> str:
        value = self.r.string(path)
        if value is None:
            return default
        if value not in allowed:  # Kayenta's parsers fall back to their default
            self.r.warn(path, f"{value!r} is not one of {', '.join(allowed)}; Kayenta reads it as {default!r}")
            return default
        return value

    def _reading(self, mp: Path, name: str) -> _Reading | None:
        r = self.r
        qp = (*mp, "query")
        query = r.mapping(qp, required=True)
        kind = str(query.get("type") or query.get("serviceType") or "unknown")
        promql, where = self._promql(qp, kind)
        if promql is not None:
            reading = read_query(promql, name)
            if reading is not None and reading.signal is not Signal.THROUGHPUT:
                complement = reading.meaning.startswith("the success")
                meaning = f"{reading.meaning}{', judged as the error rate' if complement else ''}"
                r.warn(where, f"read as {meaning}: check that {name!r} measures this")
                return _Reading(reading.signal, reading.quantile, complement, meaning)
        text = " ".join(self._strings(query, skip={"type", "serviceType"}))
        if where != qp and promql is not None:
            text = f"{text} {promql}"
        template = r.string((*qp, "customFilterTemplate"))
        if template is not None and promql is None:  # the filter of another store: it says which requests
            text = f"{text} {r.string((*self.root, 'templates', template)) or ''}"
        guessed, why = _guess(name, text)
        if guessed is None:
            r.warn(qp, f"metric {name!r} ({kind}) {why}; left out of the judge")
            self.left_out.append(f"{name!r} {why}")
            return None
        how = "its PromQL is not a share of requests, so " if promql is not None else ""
        r.warn(qp, f"{how}{kind} metric {name!r} read by its name and query as {guessed.meaning}: check it")
        return guessed

    def _promql(self, qp: Path, kind: str) -> tuple[str | None, Path]:
        """The PromQL a Prometheus metric runs (``PromQL:`` inline or in a named template)."""
        r = self.r
        if kind != "prometheus":
            return None, qp
        inline = r.string((*qp, "customInlineTemplate"))
        if inline is not None:
            return inline.removeprefix("PromQL:").strip(), (*qp, "customInlineTemplate")
        template = r.string((*qp, "customFilterTemplate"))
        if template is not None:
            tp = (*self.root, "templates", template)
            text = r.string(tp)
            if text is None:
                raise r.error((*qp, "customFilterTemplate"), f"names template {template!r}, which the config's "
                                                             "templates do not define")
            if text.startswith("PromQL:"):
                return text.removeprefix("PromQL:").strip(), tp
            metric = r.string((*qp, "metricName")) or ""
            return f"{metric}{{{text}}}", tp  # a filter: Kayenta puts it inside the metric's braces
        metric = r.string((*qp, "metricName"))
        bindings = [b for b in (r.sequence((*qp, "labelBindings")) or []) if isinstance(b, str)]
        return (f"{metric}{{{', '.join(bindings)}}}" if metric else None), qp

    def _strings(self, node: Any, skip: set[str]) -> list[str]:
        if isinstance(node, str):
            return [node]
        if isinstance(node, dict):
            return [s for k, v in node.items() if k not in skip for s in self._strings(v, skip)]
        if isinstance(node, list):
            return [s for v in node for s in self._strings(v, skip)]
        return []

    def _effect(self, ep: Path, reading: _Reading, name: str) -> dict:
        r = self.r
        r.mapping(ep)
        r.report_unmodelled(ep, {"measure", *_EFFECT_KEYS})
        measure = self._choice((*ep, "measure"), ("meanRatio", "cles"), "meanRatio")
        bounds = {k: v for k in _EFFECT_KEYS if (v := r.number((*ep, k))) is not None}
        if reading.complement and bounds:
            if measure == "cles":  # P(success_c > success_b) = 1 - P(error_c > error_b)
                bounds = {_MIRRORED[k]: 1.0 - v for k, v in bounds.items()}
                r.warn(ep, f"cles bounds of a success rate mirrored for the error rate (1 - bound, increase and "
                           f"decrease swapped) for {name!r}")
            else:
                r.warn(ep, f"a meanRatio bound on a success rate has no exact error-rate equivalent; {name!r} keeps "
                           "Kayenta's default bounds (any significant change counts)")
                bounds = {}
        out: dict[str, Any] = {"measure": measure} if measure != "meanRatio" else {}
        return {**out, **bounds}

    def _outliers(self, op: Path) -> dict:
        r = self.r
        r.mapping(op)
        r.report_unmodelled(op, {"strategy", "outlierFactor"})
        strategy = self._choice((*op, "strategy"), ("remove", "keep"), "keep")
        factor = r.number((*op, "outlierFactor"))
        if factor is not None and factor <= 0:
            raise r.error((*op, "outlierFactor"), f"must be above 0 (IQRDetector requires it), got {factor:g}")
        out: dict[str, Any] = {"strategy": strategy} if strategy != "keep" else {}
        return {**out, "outlierFactor": factor} if factor is not None else out

    def _group_weights(self, signals: list[dict]) -> dict[str, float]:
        r, wp = self.r, (*self.root, "classifier", "groupWeights")
        r.mapping((*self.root, "classifier"))
        r.report_unmodelled((*self.root, "classifier"), {"groupWeights"}, {"scoreThresholds"})
        given = r.mapping(wp) or {}
        self.origins[("judge", "mannWhitney", "groupWeights")] = wp
        used = {g for s in signals for g in s.get("groups", ())}
        weights: dict[str, float] = {}
        dropped: list[str] = []
        for group in given:
            weight = r.number((*wp, group))
            if weight is None:
                continue
            if group in used:
                weights[group] = weight
            else:
                dropped.append(group)
        total = sum(r.number((*wp, g)) or 0.0 for g in given)
        if given and not math.isclose(total, 100):
            r.warn(wp, "the group weights do not add up to 100 (Kayenta requires it); the score uses them as given")
        kept = sum(weights.values())
        if dropped and kept > 0 and math.isclose(total, 100) and all(g in weights for g in used):
            # the groups left must still be able to reach 100, as the config's could: scale them up,
            # as if the left-out groups scored like the rest
            weights = {g: w * 100 / kept for g, w in weights.items()}
            scaled = ", ".join(f"{g} {w:.4g}" for g, w in weights.items())
            r.warn(wp, f"no metric of {', '.join(map(repr, dropped))} can be judged here; the other groups' weights "
                       f"are scaled to add up to 100 ({scaled})")
        elif dropped:
            r.warn(wp, f"no metric of {', '.join(map(repr, dropped))} can be judged here; "
                       "their weights are left out")
        return weights


def _schedule(r: ManifestReader, interval: float, count: int, step: float, lookback: float | None,
              where: Path) -> tuple[float, int, int | None]:
    """The window length, windows per judgement and lookback windows for Kayenta's timing."""
    if step <= 0 or interval < step:
        raise r.error(where, f"judges every {interval:g}s, more often than its data points ({step:g}s apart)")
    per = max(1, round(interval / step))
    if not math.isclose(per * step, interval):
        r.warn(where, f"Kayenta judges every {interval:g}s; rolloutlab every {per} windows of {step:g}s "
                      f"({per * step:g}s)")
    coarser = math.ceil(per * count / MAX_MEASUREMENTS)
    if coarser > 1:
        step, per = step * coarser, max(1, per // coarser)
        r.warn(where, f"{count} judgements of {interval:g}s are more windows than rolloutlab counts; windows of "
                      f"{step:g}s instead of Kayenta's points")
    windows = None if not lookback else max(2, round(lookback / step))
    return step, per, windows


def kayenta_metric(doc: YamlDocument, warnings: list[str], *, interval: float, count: int, initial_delay: float = 0.0,
                   thresholds: dict[str, float] | None = None, step: float = DEFAULT_STEP,
                   lookback: float | None = None) -> dict:
    """The AnalysisTemplate metric judging like Kayenta with the canary config in ``doc``
    (see the module's docstring for every parameter)."""
    reader = _ConfigReader(doc, warnings)
    r, root = reader.r, reader.root
    signals, weights = reader.signals()
    if thresholds is None:
        config = {k: r.number((*root, "classifier", "scoreThresholds", k)) for k in ("pass", "marginal")}
        thresholds = config if all(v is not None for v in config.values()) else dict(ORCA_THRESHOLDS)
    window, per, windows = _schedule(r, interval, count, step, lookback, root)
    judge: dict[str, Any] = {"signals": signals, "minPoints": 2, "judgeEvery": per}
    if weights:
        judge["groupWeights"] = weights
    if windows:
        judge["lookback"] = windows
    passing, marginal = float(thresholds["pass"]), float(thresholds["marginal"])
    metric: dict[str, Any] = {"name": reader.name(), "signal": "errorRate", "interval": window, "count": per * count,
                              "failureLimit": 0}
    if count == 1:  # one judgement, the last: orca's AggregateCanaryResultsTask fails any score below pass
        judge["thresholds"] = {"pass": passing, "marginal": passing}
    else:  # before the last, orca's MonitorKayentaCanaryTask fails a score <= marginal only
        judge["thresholds"] = {"pass": passing, "marginal": marginal, "marginalInclusive": False}
        metric["inconclusiveLimit"] = count - 1
        r.warn(root, f"{count} judgements: Spinnaker fails the last one below pass {passing:g} and earlier ones at "
                     f"or below marginal {marginal:g}; rolloutlab counts marginal judgements as inconclusive (at most "
                     f"{count - 1}), and at the end passes only if more judgements passed than were marginal")
    if initial_delay:
        metric["initialDelay"] = initial_delay
    metric["judge"] = {"mannWhitney": judge}
    _validate(reader, metric)
    return metric


def _validate(reader: _ConfigReader, metric: dict) -> None:
    """Validate the metric now, so a rejection names the config's field, not the pipeline's."""
    try:
        Metric.model_validate(metric)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        loc = [p for p in first.get("loc", ()) if not (isinstance(p, str) and p in ("function-after", "tagged-union"))]
        blamed = (first.get("ctx") or {}).get("error")
        message = getattr(blamed, "message", None) or re.sub(r"^Value error, ", "", str(first.get("msg", "")))
        path = tuple(loc) + tuple(getattr(blamed, "path", ()))
        source: Path = reader.root
        for n in range(len(path), 0, -1):
            if path[:n] in reader.origins:
                source = reader.origins[path[:n]]
                break
        raise reader.r.error(source, f"{message} (as rolloutlab's metric {'.'.join(map(str, path))})") from None


def import_kayenta_config(main: YamlDocument, documents: list[YamlDocument], warnings: list[str]) -> StrategySpec:
    """A canary config alone: a canary of ``STANDALONE_WEIGHT``% beside a baseline, judged once
    after an hour, as a kayentaCanary stage with orca's defaults would judge it.

    orca's defaults (``KayentaCanaryContext.kt``, ``RunCanaryIntervalsStage.kt``):
    ``beginCanaryAnalysisAfterMins`` 0, ``lookbackMins`` 0, ``canaryAnalysisIntervalMins``
    unset (one judgement at the end of the lifetime), scope ``step`` 60 s, score thresholds
    the config's ``classifier.scoreThresholds`` (Deck fills them in) or orca's 75/50 (an
    ad-hoc body's ``executionRequest.thresholds`` first). The lifetime has no default in
    orca; one hour is rolloutlab's choice.
    """
    reader = ManifestReader(main, warnings, label="canary config")
    root = _root(main)
    given = {k: reader.number(("executionRequest", "thresholds", k)) for k in ("pass", "marginal")} if root else {}
    thresholds = given if given and all(v is not None for v in given.values()) else None
    metric = kayenta_metric(main, warnings, interval=STANDALONE_LIFETIME, count=1, thresholds=thresholds)
    name = metric["name"]
    template = re.sub(r"[^A-Za-z0-9.-]+", "-", name).strip("-") or "kayenta"
    reader.warn(root, f"only the canary config is given: scheduled as Spinnaker's kayentaCanary stage defaults do "
                      f"(one judgement after a {STANDALONE_LIFETIME / 3600:g}h lifetime, data every "
                      f"{DEFAULT_STEP:g}s, warm-up 0), the canary at {STANDALONE_WEIGHT}% of traffic beside a "
                      "baseline of the same size; import the pipeline with it for the real schedule")
    out = {
        "name": template,
        "description": f"imported from Kayenta canary config {name!r}",
        "analysisTemplates": [{"name": template, "metrics": [metric]}],
        "strategy": {"canary": {"baseline": True, "steps": [
            {"setWeight": STANDALONE_WEIGHT},
            {"analysis": {"templates": [{"templateName": template}]}},
        ]}},
    }
    origins = Origins()
    origins.note((), reader, root)
    return validate_strategy(out, origins, main.file)


def source_entries(make: Callable[..., T]) -> list[T]:
    """The ``importers.sources.SOURCES`` entry for a Kayenta canary config, built with its
    ``Source`` (passed in, so this module never imports the list that imports it)."""
    return [make("kayenta-config", "a Kayenta canary config (JSON with metrics and a judge or classifier)",
                 is_kayenta_config, import_kayenta_config)]


__all__ = ["DEFAULT_STEP", "import_kayenta_config", "is_kayenta_config", "kayenta_metric", "source_entries"]
