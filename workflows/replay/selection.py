"""Which recorded series a replay reads, and which version each belongs to.

A service's request counter is one metric with a status-code label (``code``, as the
Prometheus client libraries and most exporters name it: ``http_requests_total{code="500"}``);
a request whose code is 5xx failed. Its latency histogram is the ``*_bucket`` series of a
``*_seconds`` histogram. The versions are told apart by a label (``version`` by default, as
the demo service writes it: ``demo_requests_total{version,code}``), or by two label
selectors written as PromQL matchers (``--canary-selector 'track="canary"'``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from rolloutlab.errors import InputError
from rolloutlab.workflows.replay.recorded import CounterSeries

DEFAULT_REQUEST_METRICS: tuple[str, ...] = ("demo_requests_total", "http_requests_total")
"""Tried in this order when no ``--requests-metric`` is given: the demo service's counter
(``live/demo_service.py``, "Metrics"), then the name most client libraries' examples use."""

LATENCY_HISTOGRAMS: dict[str, str] = {
    "demo_requests_total": "demo_request_duration_seconds",
    "http_requests_total": "http_request_duration_seconds",
}
"""The latency histogram read beside each default request counter (its ``_bucket`` series)."""

CANARY, STABLE = "canary", "stable"

_MATCHER = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')


@dataclass(frozen=True)
class Matcher:
    """One PromQL label matcher; regular expressions match the whole value, as in PromQL."""

    label: str
    op: str
    value: str

    def matches(self, labels: dict[str, str]) -> bool:
        have = labels.get(self.label, "")
        if self.op == "=":
            return have == self.value
        if self.op == "!=":
            return have != self.value
        found = re.fullmatch(self.value, have) is not None
        return found if self.op == "=~" else not found


def parse_selector(text: str, option: str) -> tuple[Matcher, ...]:
    """PromQL label matchers (``a="x", b=~"y.*"``, braces optional) from a command line."""
    body = text.strip()
    if body.startswith("{") and body.endswith("}"):
        body = body[1:-1]
    matchers, pos = [], 0
    while pos < len(body.rstrip()):
        found = _MATCHER.match(body, pos)
        if not found:
            raise InputError(option, f"{text!r} is not a list of label matchers like 'track=\"canary\"'")
        label, op, value = found.groups()
        value = value.encode().decode("unicode_escape")
        if op in ("=~", "!~"):
            try:
                re.compile(value)
            except re.error as error:
                raise InputError(option, f"{value!r} is not a regular expression: {error}") from None
        matchers.append(Matcher(label, op, value))
        pos = found.end()
    if not matchers:
        raise InputError(option, "an empty selector matches every series; give at least one matcher")
    return tuple(matchers)


def render_selector(matchers: tuple[Matcher, ...]) -> str:
    """The matchers as PromQL writes them, for a query."""
    def quoted(value: str) -> str:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return ",".join(f"{m.label}{m.op}{quoted(m.value)}" for m in matchers)


@dataclass(frozen=True)
class SeriesSelection:
    """What a replay reads: the request counter (None: the first default that has data),
    its latency histogram, and how versions are told apart."""

    requests_metric: str | None = None
    latency_metric: str | None = None
    version_label: str = "version"
    code_label: str = "code"
    canary_selector: tuple[Matcher, ...] = ()
    stable_selector: tuple[Matcher, ...] = ()
    canary: str | None = None  # a version label value; None: the version that started later
    stable: str | None = None

    def __post_init__(self) -> None:
        if bool(self.canary_selector) != bool(self.stable_selector):
            raise InputError("--canary-selector", "give both --canary-selector and --stable-selector, or neither")
        if self.canary_selector and (self.canary or self.stable):
            raise InputError("--canary", "--canary/--stable name version label values; with selectors, leave them out")

    @property
    def by_selector(self) -> bool:
        return bool(self.canary_selector)

    def request_metrics(self) -> tuple[str, ...]:
        return (self.requests_metric,) if self.requests_metric else DEFAULT_REQUEST_METRICS

    def histogram_for(self, requests_metric: str) -> str | None:
        return self.latency_metric or LATENCY_HISTOGRAMS.get(requests_metric)

    def version_of(self, labels: dict[str, str]) -> str | None:
        """The version a series belongs to (None: neither, left out)."""
        if self.by_selector:
            if all(m.matches(labels) for m in self.canary_selector):
                return CANARY
            if all(m.matches(labels) for m in self.stable_selector):
                return STABLE
            return None
        return labels.get(self.version_label)

    def roles(self) -> tuple[str | None, str | None]:
        """The (canary, stable) version names to hand to ``build_history``."""
        return (CANARY, STABLE) if self.by_selector else (self.canary, self.stable)


@dataclass(frozen=True)
class RawSample:
    """One raw sample of any source: metric name, labels, unix time, value."""

    name: str
    labels: tuple[tuple[str, str], ...]
    at: float
    value: float


def classify_samples(samples: Iterable[RawSample], selection: SeriesSelection, requests_metric: str) -> list[CounterSeries]:
    """Group raw samples into the counter series a history is built from: each request
    series counts as requests, and as errors too when its code is 5xx; each ``le`` bucket
    of the latency histogram (seconds; converted to ms) is a bucket series."""
    bucket_name = (selection.histogram_for(requests_metric) or "\0") + "_bucket"
    grouped: dict[tuple, tuple[list[float], list[float]]] = {}
    for sample in samples:
        if sample.name not in (requests_metric, bucket_name):
            continue
        labels = dict(sample.labels)
        version = selection.version_of(labels)
        if version is None:
            continue
        if sample.name == requests_metric:
            keys = [("requests", None)]
            if labels.get(selection.code_label, "").startswith("5"):
                keys.append(("errors", None))
        else:
            le = labels.get("le")
            try:
                le_ms = float(le) * 1000.0 if le is not None else None
            except ValueError:
                le_ms = None
            if le_ms is None:
                continue
            keys = [("bucket", le_ms)]
        for kind, le_ms in keys:
            times, values = grouped.setdefault((version, kind, le_ms, sample.labels), ([], []))
            times.append(sample.at)
            values.append(sample.value)
    out = []
    for (version, kind, le_ms, _labels), (times, values) in grouped.items():
        order = sorted(range(len(times)), key=times.__getitem__)
        out.append(CounterSeries(version, kind, tuple(times[i] for i in order), tuple(values[i] for i in order), le_ms))
    return out
