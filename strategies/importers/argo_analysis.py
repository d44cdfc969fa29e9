"""Argo Rollouts analysis templates -> our analysis templates: each metric's provider
query read to choose the signal, conditions converted to thresholds, ``{{args.x}}``
resolved, Kayenta turned into the Mann-Whitney judge (the module docstring of
``importers.argo`` says what is kept and what is warned about).

``AnalysisTemplateImport`` is a part of ``ArgoImporter``: it reads the importer's
``warnings``, templates and origins.
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
    ResultShape,
    parse_threshold,
)
from rolloutlab.strategies.importers.manifest import (
    MISSING,
    ManifestReader,
    Path,
    as_integer,
    describe_type,
)
from rolloutlab.strategies.importers.queries import QueryReading, make_reading, query_range_seconds, read_query
from rolloutlab.strategies.spec import Condition, Signal
from rolloutlab.strategies.yaml_input import YamlDocument

_ARG = re.compile(r"\{\{\s*args\.([A-Za-z0-9_.\-]+)\s*\}\}")
_QUERY_PROVIDERS = ("prometheus", "datadog", "newRelic", "wavefront", "graphite", "influxdb", "skywalking")
_METRIC_HANDLED = {"name", "provider", "interval", "count", "initialDelay", "successCondition",
                   "failureCondition", "failureLimit", "inconclusiveLimit", "consecutiveErrorLimit"}
_METRIC_REASONS = {
    "maxFailures": "the pre-v0.9 name of failureLimit, no longer read by Argo; ignored",
    "maxInconclusive": "the pre-v0.9 name of inconclusiveLimit, no longer read by Argo; ignored",
    "consecutiveSuccessLimit": "rolloutlab ends a metric by count or by its limits; not modelled",
}


class _SkipMetric(Exception):
    """The metric cannot be modelled; the message says why (already warned)."""


class AnalysisTemplateImport:
    """The template and metric half of ``ArgoImporter``."""

    # ------------------------------------------------------------------ templates and metrics

    def _template(self, kind: str, name: str, doc: YamlDocument, rollout_args: dict[str, str | None],
                  rollout_dry_run: list[str]) -> str | None:
        tr = ManifestReader(doc, self.warnings, label=f"{kind}/{name}", main_file=self.file)
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
        shape: ResultShape | None = None
        if kind == "kayenta":
            out["judge"] = {"mannWhitney": self._kayenta(tr, kp, name)}
            sources["judge"] = kp
        elif kind in _QUERY_PROVIDERS:
            tr.mapping(kp, required=True)
            query = tr.string((*kp, "query"))
            if query is None:
                tr.warn(kp, f"no single query to read; metric {name!r} left out")
                raise _SkipMetric
            written = query
            query, _ = substitute_args(query, args)
            shape = _result_shape(kind, query)
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
                    out[key] = self._condition(tr, (*mp, key), text, conversion, reading, name, shape)
            if kind == "prometheus":
                _keep_query(tr, (*kp, "query"), written, args, conversion, out, sources)
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
        # Argo's type says `threshold` (KayentaMetric, pkg/apis/rollouts/v1alpha1/analysis_types.go,
        # json:"threshold"); its docs' example writes `thresholds`: both are read
        for field in ("threshold", "thresholds"):
            for key in ("pass", "marginal"):
                value = tr.number((*kp, field, key))
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
                   name: str, shape: ResultShape | None = None) -> str:
        """Our condition for an Argo expression (conditions.parse_threshold says how it is
        read); every way Argo's own evaluation would differ is a warning."""
        if not isinstance(text, str):
            raise tr.error(p, f"must be an expression like 'result[0] >= 0.95', got {describe_type(text)}")
        try:
            threshold = parse_threshold(text, shape)
        except ConditionNotThreshold as exc:
            tr.warn(p, f"{text.strip()!r} is not a threshold rolloutlab can evaluate ({exc}); metric {name!r} left out")
            raise _SkipMetric from None
        if conversion is IDENTITY and not threshold.notes and _parses(text):
            return text
        rendered = threshold.converted(conversion.value, conversion.flip).render()
        for note in threshold.notes:
            tr.warn(p, f"{text.strip()!r} read as {threshold.render()!r}: {note}")
        if conversion is not IDENTITY:
            tr.warn(p, f"{text.strip()!r} on {reading.meaning} converted to {rendered!r} ({conversion.describe})")
        return rendered


# --------------------------------------------------------------------------- helpers


def _keep_query(tr: ManifestReader, qp: Path, written: str, args: dict[str, str | None], conversion: Conversion,
                out: dict[str, Any], sources: dict[str, Path]) -> None:
    """Keep a Prometheus metric's query as written, with the values of the args it reads
    and the unit its answer is in, so a live run with Prometheus runs the user's own query
    (``strategies.promql`` fills ``{{args.x}}`` as Argo's ``ResolveArgs`` does)."""
    used = {m.group(1) for m in _ARG.finditer(written)}
    unknown = sorted(a for a in used if args.get(a) is None)
    if unknown:
        tr.warn(qp, f"uses {', '.join(f'args.{a}' for a in unknown)}, known only when Argo runs the analysis: the "
                    "query is not kept, and a live run with Prometheus measures the signal with rolloutlab's "
                    "default PromQL")
        return
    out["query"] = written
    if used:
        out["args"] = {a: args[a] for a in sorted(used)}
    if conversion.unit.value != "signal":
        out["queryUnit"] = conversion.unit.value
    sources["query"] = qp


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


def _result_shape(provider: str, query: str) -> ResultShape | None:
    """What Argo's expression gets as ``result`` from this provider and query: Prometheus
    hands it a list for an instant vector and a number for ``scalar(...)``
    (metricproviders/prometheus, processResponse), Datadog one number or nil
    (metricproviders/datadog); for the others rolloutlab does not say."""
    if provider == "prometheus":
        return ResultShape.SCALAR if query.strip().startswith("scalar(") else ResultShape.VECTOR
    if provider == "datadog":
        return ResultShape.SCALAR
    return None


def _describe_signal(reading: QueryReading) -> str:
    if reading.signal is Signal.LATENCY:
        return f"latency (quantile {reading.quantile:g}, milliseconds)"
    return "errorRate (failed requests / requests)"


__all__ = ["AnalysisTemplateImport", "substitute_args"]
