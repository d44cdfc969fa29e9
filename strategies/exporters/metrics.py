"""What both exporters share: the user's Prometheus query templates (or the documented
placeholder defaults), each query checked the way the importers will read it back,
conditions written in the query's unit, the export's result and its YAML.

The importers guess what a query measures (``importers.queries.read_query``) and convert
its conditions to rolloutlab's signal (``importers.conditions``: a success rate to an
error rate, seconds to milliseconds, a percentage to a fraction). An export does the
inverse: it reads the query it is about to write with that same function, refuses a query
that would come back as another signal or quantile, and converts each threshold by the
inverse of the conversion the import will apply, so ``import(export(s))`` judges the same
values as ``s``.

Query templates take two placeholders: ``{{ quantile }}`` (a latency metric's quantile,
``0.99``) and ``{{ interval }}`` (the metric's interval as a Prometheus range, ``30s``;
Flagger fills ``{{ interval }}`` itself in a MetricTemplate, fluxcd/flagger
``pkg/metrics/observers/render.go``, so a Flagger export leaves it for Flagger).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from rolloutlab.errors import InputError
from rolloutlab.strategies.analysis_spec import QueryUnit
from rolloutlab.strategies.importers.conditions import (
    ERROR_PERCENT,
    IDENTITY,
    SECONDS_TO_MS,
    SUCCESS_FRACTION,
    SUCCESS_PERCENT,
    Conversion,
    Threshold,
)
from rolloutlab.strategies.importers.queries import QueryReading, read_query
from rolloutlab.strategies.promql import (
    fill_args,
    go_duration,  # noqa: F401 - the exporters read it from here
)
from rolloutlab.strategies.spec import Condition, Metric, Signal, StrategySpec

QUERY_NAMES = {"error-rate": Signal.ERROR_RATE, "latency": Signal.LATENCY}
"""The ``--query NAME=TEMPLATE`` names, and the signal each one measures."""

PLACEHOLDER = "REPLACE-ME"
DEFAULT_QUERIES = {
    Signal.ERROR_RATE: (f'sum(rate(http_requests_total{{service="{PLACEHOLDER}", code=~"5.."}}[{{{{ interval }}}}])) / '
                        f'sum(rate(http_requests_total{{service="{PLACEHOLDER}"}}[{{{{ interval }}}}]))'),
    Signal.LATENCY: (f'histogram_quantile({{{{ quantile }}}}, sum(rate(http_request_duration_seconds_bucket'
                     f'{{service="{PLACEHOLDER}"}}[{{{{ interval }}}}])) by (le)) * 1000'),
}
"""The documented defaults: the error rate as 5xx / all requests, the latency quantile in
milliseconds, over the usual Prometheus client metric names; ``REPLACE-ME`` stands for the
service's label selector, which only the user knows."""

_QUANTILE = re.compile(r"\{\{\s*quantile\s*\}\}")
_INTERVAL = re.compile(r"\{\{\s*interval\s*\}\}")

# the inverse of every conversion the importers apply (importers.conditions), with its flip
_INVERSE: tuple[tuple[Conversion, Callable[[float], float]], ...] = (
    (IDENTITY, lambda v: v),
    (SECONDS_TO_MS, lambda v: v / 1000.0),
    (SUCCESS_FRACTION, lambda v: 1.0 - v),
    (SUCCESS_PERCENT, lambda v: 100.0 - 100.0 * v),
    (ERROR_PERCENT, lambda v: v * 100.0),
)


@dataclass(frozen=True)
class Export:
    """Manifests for a target system, and a warning for everything they do not carry."""

    documents: tuple[dict, ...]
    warnings: tuple[str, ...]

    @property
    def text(self) -> str:
        """The documents as one multi-document YAML stream, ``kubectl apply -f`` ready."""
        return yaml.safe_dump_all(list(self.documents), sort_keys=False, default_flow_style=False,
                                  allow_unicode=True, width=100)


@dataclass
class ExportContext:
    """One export in progress: the strategy, the queries, and the warnings so far."""

    spec: StrategySpec
    target: str  # "Argo Rollouts" or "Flagger", for messages
    queries: dict[Signal, str]
    source: str  # what a refusal names as its file (the strategy file, or the strategy's name)
    warnings: list[str] = field(default_factory=list)
    _placeholder_warned: set[Signal] = field(default_factory=set)

    def warn(self, where: str, message: str) -> None:
        self.warnings.append(f"{where}: {message}")

    def refuse(self, where: str, message: str) -> InputError:
        return InputError(self.source, message, field=where)

    def query(self, metric: Metric, where: str) -> tuple[str, QueryReading]:
        """The metric's query with ``{{ quantile }}`` filled, and how the import will read it;
        a metric's own ``query`` is written as it is (``own_query``)."""
        if metric.query is not None:
            return self.own_query(metric, where)
        if metric.signal not in DEFAULT_QUERIES:
            raise self.refuse(f"{where}.signal", f"metric {metric.name!r} measures {metric.signal.value}, and the "
                                                 "importers read back only error-rate and latency queries")
        template = self.queries.get(metric.signal)
        if template is None:
            template = DEFAULT_QUERIES[metric.signal]
            if metric.signal not in self._placeholder_warned:
                self._placeholder_warned.add(metric.signal)
                name = next(k for k, v in QUERY_NAMES.items() if v is metric.signal)
                self.warn(where, f"no --query {name}=... given: the documented default query is written, with "
                                 f"{PLACEHOLDER!r} where your service's label selector goes; it is a placeholder "
                                 "to replace before this is applied")
        query = _QUANTILE.sub(f"{metric.quantile:g}" if metric.quantile is not None else "", template)
        reading = read_query(query, metric.name)
        option = next(k for k, v in QUERY_NAMES.items() if v is metric.signal)
        if reading is None or reading.signal is not metric.signal:
            what = "nothing rolloutlab judges" if reading is None else reading.meaning
            raise InputError("--query", f"{option}: {query!r} reads as {what}, not as {metric.signal.value}; an "
                                        "import would not map it back (write a ratio of 5xx to all requests, or "
                                        "histogram_quantile({{ quantile }}, ...))")
        if reading.quantile is not None and metric.quantile is not None and abs(reading.quantile - metric.quantile) > 1e-12:
            raise InputError("--query", f"{option}: the query computes quantile {reading.quantile:g}, metric "
                                        f"{metric.name!r} judges quantile {metric.quantile:g}: write "
                                        "histogram_quantile({{ quantile }}, ...)")
        return query, reading


    def own_query(self, metric: Metric, where: str) -> tuple[str, QueryReading]:
        """A metric's own query, verbatim, read as its ``queryUnit`` says (its conditions are
        written in that unit). An import guesses the unit from the query's text; where the
        guess would differ, the export says so."""
        query = metric.query
        reading = QueryReading(metric.signal, conversion_for(metric.query_unit), "the metric's own query",
                               metric.quantile)
        filled = fill_interval(fill_args(query, metric.args), metric.interval)
        guessed = read_query(filled, metric.name)
        if guessed is None or guessed.signal is not metric.signal or guessed.conversion is not reading.conversion:
            what = "nothing rolloutlab judges" if guessed is None else guessed.meaning
            self.warn(f"{where}.query", f"written as it is; an import reads it as {what}, not as "
                                        f"{metric.signal.value} in unit {metric.query_unit.value}: check the metric "
                                        "after importing it back")
        return query, reading


def conversion_for(unit: QueryUnit) -> Conversion:
    """The importers' conversion of a query in ``unit``."""
    return next(c for c in (IDENTITY, SECONDS_TO_MS, SUCCESS_FRACTION, SUCCESS_PERCENT, ERROR_PERCENT) if c.unit is unit)


def parse_queries(items: Sequence[str]) -> dict[Signal, str]:
    """``NAME=TEMPLATE`` options (``error-rate=...``, ``latency=...``) by the signal they measure."""
    out: dict[Signal, str] = {}
    for item in items:
        name, sep, template = item.partition("=")
        name = name.strip()
        if not sep or name not in QUERY_NAMES or not template.strip():
            raise InputError("--query", f"expected NAME=TEMPLATE with NAME one of {', '.join(QUERY_NAMES)}, got {item!r}")
        if QUERY_NAMES[name] in out:
            raise InputError("--query", f"{name} is given twice")
        # read as an import will read it (any quantile: each metric's own is checked when it is written)
        reading = read_query(fill_interval(_QUANTILE.sub("0.5", template), 60.0), name)
        if reading is None or reading.signal is not QUERY_NAMES[name]:
            what = "nothing rolloutlab judges" if reading is None else reading.meaning
            raise InputError("--query", f"{name}: {template.strip()!r} reads as {what}; an import would not map it "
                                        "back (write a ratio of 5xx to all requests, or "
                                        "histogram_quantile({{ quantile }}, ...))")
        out[QUERY_NAMES[name]] = template.strip()
    return out


def fill_interval(query: str, seconds: float) -> str:
    """``{{ interval }}`` replaced by the interval as a Prometheus range (``30s``, ``1m30s``, ``2500ms``)."""
    return _INTERVAL.sub(go_duration(seconds), query)


def inverse(conversion: Conversion) -> Callable[[float], float]:
    for known, function in _INVERSE:
        if known is conversion:
            return function
    raise ValueError(f"no inverse known for the conversion {conversion.describe!r}")


def condition_in_query_unit(text: str, conversion: Conversion) -> str:
    """Our condition on the signal, rewritten on the query's value (the import converts it
    back); the text itself when the query measures the signal as is."""
    if conversion is IDENTITY:
        return text
    parsed = Condition.parse(text)
    return Threshold(parsed.clauses, parsed.joiner).converted(inverse(conversion), conversion.flip).render()


_NEGATED = {"<": ">=", "<=": ">", ">": "<=", ">=": "<", "==": "!=", "!=": "=="}


@dataclass(frozen=True)
class Range:
    """A passing range of the measured value, bounds included (Flagger's ``thresholdRange``)."""

    min: float | None
    max: float | None
    strict: tuple[str, ...] = ()  # clauses whose strict bound becomes inclusive

    def converted(self, conversion: Conversion) -> "Range":
        f = inverse(conversion)
        low, high = (None if self.min is None else f(self.min)), (None if self.max is None else f(self.max))
        if conversion.flip:
            low, high = high, low
        return Range(_tidy(low), _tidy(high), self.strict)


def _tidy(value: float | None) -> float | int | None:
    if value is None:
        return None
    value = float(f"{value:.12g}")
    return int(value) if value.is_integer() else value


def passing_range(metric: Metric) -> Range | str:
    """The values for which the metric's measurement passes, as one range; or why there is none."""
    if metric.threshold_range is not None:
        return Range(metric.threshold_range.min, metric.threshold_range.max)
    clauses: tuple[tuple[str, float], ...]
    if metric.success_condition is not None:
        parsed = metric.success
        clauses, joiner = parsed.clauses, parsed.joiner
    else:
        parsed = metric.failure
        # the measurement passes where the failure condition does not hold
        clauses = tuple((_NEGATED[op], v) for op, v in parsed.clauses)
        joiner = "||" if parsed.joiner == "&&" else "&&"
    if joiner == "||" and len(clauses) > 1:
        return f"{parsed.source!r} passes on two separate ranges; a thresholdRange is one range"
    low = high = None
    strict = []
    for op, value in clauses:
        if op == "!=":
            return f"{parsed.source!r} excludes one value; a thresholdRange is one range"
        if op in ("<", "<=", "=="):
            high = value if high is None else min(high, value)
        if op in (">", ">=", "=="):
            low = value if low is None else max(low, value)
        if op in ("<", ">"):
            strict.append(f"result {op} {value:g}")
    return Range(low, high, tuple(strict))


def template_metrics(spec: StrategySpec, names: Sequence[str]) -> list[tuple[str, int, Metric]]:
    """The metrics of the named analysis templates, each with its template and index."""
    by_name = {t.name: t for t in spec.analysis_templates}
    return [(name, k, m) for name in names for k, m in enumerate(by_name[name].metrics)]


def used_templates(spec: StrategySpec) -> list[str]:
    """Template names in the order the strategy references them (each once)."""
    return list(dict.fromkeys(t.template_name for _, ref in spec.analysis_ref_paths() for t in ref.templates))


def plain(value: Any) -> Any:
    """A number as people write it in a manifest: ``2`` not ``2.0``."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
