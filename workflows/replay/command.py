"""``rolloutlab replay``: read a recorded release, replay a strategy over it, and say what
it would have decided: a table, ``--json``, and with ``--out`` replay.csv, replay.json and
report.html (with the timeline plot)."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from rolloutlab.errors import InputError, PrometheusQueryError
from rolloutlab.live.prometheus import PrometheusClient
from rolloutlab.live.prometheus_metrics import QueryRecord, check_answered
from rolloutlab.reports.document import Image, Report, Section, Table, write_report
from rolloutlab.reports.plots import figure_png
from rolloutlab.reports.replay_plot import replay_timeline
from rolloutlab.results.formatting import format_duration, format_quantity
from rolloutlab.results.timeline import TimelineEvent, TimelinePoint
from rolloutlab.strategies.analysis_spec import Metric
from rolloutlab.strategies.durations import parse_duration
from rolloutlab.strategies.promql import QueryContext, QueryTemplateError, go_duration, render_query
from rolloutlab.strategies.spec import StrategySpec
from rolloutlab.workflows.replay.files import parse_time, read_history_file
from rolloutlab.workflows.replay.prometheus_source import format_utc, read_history_prometheus
from rolloutlab.workflows.replay.recorded import RecordedHistory
from rolloutlab.workflows.replay.replaying import QueryAt, ReplayResult, replay
from rolloutlab.workflows.replay.selection import SeriesSelection, parse_selector

DEFAULT_STEP = 15.0
DEFAULT_REPLICAS = 10

COUNTING_NOTE = (
    "failed requests are counted on the strategy's split: every recorded request until the outcome goes to the "
    "canary with the strategy's effective weight at that moment and fails with the error rate its version had in "
    "the recording then; 'caused by the release' subtracts what the stable version alone would have failed"
)
PODS_NOTE = "pods are assumed to start at once: the recording holds traffic, not pod start times"


@dataclass(frozen=True)
class ReplaySettings:
    """Where the recorded release comes from and which of its series to read."""

    prometheus: str | None = None
    from_file: Path | None = None
    start: str | None = None
    end: str | None = None
    step: str = "15s"
    replicas: int | None = None
    requests_metric: str | None = None
    latency_metric: str | None = None
    version_label: str = "version"
    code_label: str = "code"
    canary: str | None = None
    stable: str | None = None
    canary_selector: str | None = None
    stable_selector: str | None = None

    def selection(self) -> SeriesSelection:
        return SeriesSelection(
            requests_metric=self.requests_metric, latency_metric=self.latency_metric,
            version_label=self.version_label, code_label=self.code_label, canary=self.canary, stable=self.stable,
            canary_selector=parse_selector(self.canary_selector, "--canary-selector") if self.canary_selector else (),
            stable_selector=parse_selector(self.stable_selector, "--stable-selector") if self.stable_selector else (),
        )

    def step_seconds(self) -> float:
        try:
            step = parse_duration(self.step)
        except (ValueError, TypeError) as error:
            raise InputError("--step", str(error)) from None
        if not step > 0:
            raise InputError("--step", f"the step must be above 0 seconds, got {self.step!r}")
        return float(step)


def load_history(settings: ReplaySettings) -> tuple[RecordedHistory, float, float, float]:
    """The recorded history and the replay's start, end and step (Unix seconds)."""
    if (settings.prometheus is None) == (settings.from_file is None):
        raise InputError("rolloutlab replay", "give the recording with exactly one of --prometheus URL and --from FILE")
    step = settings.step_seconds()
    selection = settings.selection()
    start = None if settings.start is None else parse_time(settings.start, "--start")
    end = None if settings.end is None else parse_time(settings.end, "--end")
    if start is not None and end is not None and end <= start:
        raise InputError("--end", f"{format_utc(end)} is not after --start {format_utc(start)}")
    if settings.prometheus is not None:
        if start is None or end is None:
            raise InputError("--start" if start is None else "--end", "a replay from Prometheus needs --start and --end")
        history = read_history_prometheus(PrometheusClient(settings.prometheus), selection, start, end, step)
    else:
        assert settings.from_file is not None
        history = read_history_file(settings.from_file, selection, start, end)
    # a file's replay starts when the canary's series first appears: the release's start
    _, last = history.span
    return history, float(history.canary.times[0]) if start is None else start, last if end is None else end, step


def run_replay(spec: StrategySpec, settings: ReplaySettings) -> ReplayResult:
    """Load the recording and replay ``spec`` over it; from Prometheus, metrics with a
    query of their own are measured by it (``replaying``)."""
    check_step(spec, settings)
    history, start, end, step = load_history(settings)
    replicas = settings.replicas or spec.replicas or DEFAULT_REPLICAS
    with_query = sorted({m.name for t in spec.analysis_templates for m in t.metrics if m.query is not None})
    query_at = None
    if settings.prometheus is not None and with_query:
        query_at = make_query_at(PrometheusClient(settings.prometheus))
    result = replay(spec.with_replicas(replicas), history, start, end, step, query_at)
    # a query without a series at any measurement does not fit this server (a wrong name or
    # label): bad input, not a release that errored (the live runner says the same)
    check_answered(result.queries, f" on Prometheus at {settings.prometheus or ''}")
    spacing = float(np.median(np.diff(history.canary.times))) if len(history.canary.times) > 1 else 0.0
    shortest = min((m.interval for t in spec.analysis_templates for m in t.metrics), default=math.inf)
    if spacing > shortest:
        result = dataclasses.replace(result, notes=(*result.notes, (
            f"the recording's samples are {spacing:g}s apart, more than the shortest metric interval "
            f"({shortest:g}s): some windows fall between two samples and read no traffic")))
    if with_query:
        said = ("measured by its own PromQL query, evaluated at each measurement's time" if query_at is not None else
                "has a PromQL query, which a file cannot answer: judged on the recorded counters instead (replay "
                "from --prometheus to evaluate the query)")
        result = dataclasses.replace(result, notes=(*result.notes, f"{', '.join(with_query)}: {said}"))
    return result


def check_step(spec: StrategySpec, settings: ReplaySettings) -> None:
    """From Prometheus, the counters are read every ``--step``: a metric measured more often
    would see windows between two samples, without traffic (Error measurements the release
    never earned). Refused before any query."""
    if settings.prometheus is None:
        return
    step = settings.step_seconds()
    metrics = [m for t in spec.analysis_templates for m in t.metrics]
    shortest = min(metrics, key=lambda m: m.interval, default=None)
    if shortest is not None and step > shortest.interval:
        raise InputError("--step", f"{settings.step} is longer than metric {shortest.name!r}'s interval "
                                   f"({shortest.interval:g}s): its windows would fall between two samples; use a --step "
                                   f"of at most {shortest.interval:g}s")


def make_query_at(client: PrometheusClient) -> QueryAt:
    """A metric's query filled in (its args; ``{{ interval }}`` = its interval) and evaluated
    as of a moment: Prometheus' instant query with ``time=``."""

    def query_at(metric: Metric, at: float) -> QueryRecord:
        assert metric.query is not None
        try:
            promql = render_query(metric.query, metric.args, QueryContext(interval=go_duration(metric.interval)))
        except QueryTemplateError as error:
            raise PrometheusQueryError(f"metric {metric.name!r}: {error}") from None
        return QueryRecord(at, metric.name, promql, client.value(promql, at))

    return query_at


# --------------------------------------------------------------------------- what it says


def outcome_sentence(result: ReplayResult) -> str:
    f = result.failures
    failed = (f"{format_quantity(f.failed)} of {format_quantity(f.requests)} user requests failed before that "
              f"({format_quantity(f.release_failed)} caused by the release; {format_quantity(f.recorded_failed)} "
              f"failed in the recording over the same time)")
    if result.outcome == "aborted":
        assert result.outcome_at is not None
        return (f"{result.strategy} would have aborted at {format_utc(result.outcome_at)} "
                f"({format_duration(result.outcome_at - result.start)} after the start: {result.abort_reason}); "
                f"{failed}.")
    if result.outcome == "promoted":
        assert result.outcome_at is not None
        return (f"{result.strategy} would have promoted at {format_utc(result.outcome_at)} "
                f"({format_duration(result.outcome_at - result.start)} after the start); {failed}.")
    last = result.ticks[-1].at
    return (f"{result.strategy} would still have been in progress (step {result.status.step_index}, "
            f"{result.status.phase.value}) when the recording ends at {format_utc(last)}; {failed}.")


def measurement_rows(result: ReplayResult) -> list[list[str]]:
    return [[format_utc(m.at), format_duration(m.at - result.start), m.analysis, m.metric, *m.shown, m.phase]
            for m in result.measurements]


MEASUREMENT_COLUMNS = ["time (UTC)", "since start", "analysis", "metric", "canary", "stable", "phase"]


def split_rows(result: ReplayResult) -> list[list[str]]:
    """Per step of the strategy: when, its declared canary weight, and the canary share the
    recording really had over that time (requests-weighted)."""
    rows, spans = [], _step_spans(result)
    for step_index, first, last, declared, recorded in spans:
        rows.append([str(step_index), format_duration(first - result.start), format_duration(last - result.start),
                     f"{declared:g}%", "no traffic" if recorded is None else f"{recorded:.1f}%"])
    return rows


SPLIT_COLUMNS = ["step", "from", "to", "strategy's weight", "recorded canary share"]


def _step_spans(result: ReplayResult) -> list[tuple[int, float, float, float, float | None]]:
    """(step, from, to, declared weight, recorded canary share) per run of ticks at one step
    and weight. The interval after a tick belongs to that tick's step; its recorded share
    is the next tick's (a tick's share covers the interval before it)."""
    spans: list[list] = []
    ticks = result.ticks
    for tick, nxt in zip(ticks, (*ticks[1:], None)):
        key = (tick.step_index, tick.declared_weight)
        if not spans or spans[-1][0] != key:
            spans.append([key, tick.at, tick.at, 0.0, 0.0])
        span = spans[-1]
        if nxt is not None:
            span[2] = nxt.at
            if nxt.recorded_share is not None:
                span[3] += nxt.recorded_share * (nxt.at - tick.at)
                span[4] += nxt.at - tick.at
    # the moment of the outcome alone (weight 0 after an abort) is no span of its own
    return [(key[0], first, last, key[1], share / seconds if seconds else None)
            for key, first, last, share, seconds in spans if last > first or len(spans) == 1]


def replay_payload(result: ReplayResult) -> dict:
    """Everything the replay found, as JSON-ready data (``--json`` and replay.json)."""
    f = result.failures

    def moment(t: float | None) -> dict | None:
        return None if t is None else {"utc": format_utc(t), "unix": t, "since_start_s": t - result.start}

    return {
        "strategy": result.strategy,
        "source": result.source,
        "start": moment(result.start),
        "end": moment(result.end),
        "outcome": result.outcome,
        "outcome_at": moment(result.outcome_at),
        "abort_reason": result.abort_reason or None,
        "abort_cause": result.abort_cause,
        "failed_requests": {"requests": f.requests, "failed": f.failed, "caused_by_release": f.release_failed,
                            "stable_alone_would_fail": f.baseline_failed, "failed_in_recording": f.recorded_failed,
                            "counting": COUNTING_NOTE},
        "measurements": [{"at": moment(m.at), "analysis": m.analysis, "metric": m.metric, "phase": m.phase,
                          "value": _finite(m.value), "baseline_value": _finite(m.baseline_value),
                          "message": m.message} for m in result.measurements],
        "queries": [{"at": moment(q.at), "metric": q.metric, "promql": q.promql, "answer": _finite(q.answer)}
                    for q in result.queries],
        "split": [{"step": s, "from": moment(a), "to": moment(b), "declared_weight": w, "recorded_share": r}
                  for s, a, b, w, r in _step_spans(result)],
        "notes": [*result.notes, PODS_NOTE],
    }


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def print_replay(result: ReplayResult, console) -> None:
    from rich.table import Table as RichTable

    table = RichTable(title=f"Measurements {result.strategy} would have taken ({result.source})",
                      title_justify="left")
    for column in MEASUREMENT_COLUMNS:
        table.add_column(column, no_wrap=column in ("time (UTC)", "phase"), overflow="fold")
    for row in measurement_rows(result):
        style = {"Failed": "red", "Error": "magenta", "Inconclusive": "yellow"}.get(row[-1])
        table.add_row(*row, style=style)
    if not result.measurements:
        table.add_row("-", "-", "-", "-", "-", "-", "no measurement was due")
    console.print(table)
    split = RichTable(title="The strategy's weight vs the recorded split", title_justify="left")
    for column in SPLIT_COLUMNS:
        split.add_column(column, overflow="fold")
    for row in split_rows(result):
        split.add_row(*row)
    console.print(split)
    console.print(outcome_sentence(result), highlight=False)
    for note in (*result.notes, COUNTING_NOTE, PODS_NOTE):
        console.print(f"note: {note}", highlight=False)


# --------------------------------------------------------------------------- files


def timeline_points(result: ReplayResult) -> list[TimelinePoint]:
    nan = float("nan")
    return [TimelinePoint(
        at=t.at - result.start, declared_weight=t.declared_weight, effective_weight=t.effective_weight,
        stable_ready=0, canary_ready=0,
        stable_error_rate=nan if t.stable_error_rate is None else t.stable_error_rate,
        canary_error_rate=nan if t.canary_error_rate is None else t.canary_error_rate,
        events=tuple(TimelineEvent(e.reason.value, e.message, e.metric, e.phase) for e in t.events),
    ) for t in result.ticks]


def write_replay(result: ReplayResult, out_dir: Path) -> dict[str, Path]:
    """replay.csv (one row per measurement), replay.json and report.html (+ report.md)."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(str(out_dir), f"cannot use this as the output folder: {error.strerror or error}") from None
    payload = replay_payload(result)
    csv_path = out_dir / "replay.csv"
    pd.DataFrame([{"time_utc": m["at"]["utc"], "since_start_s": m["at"]["since_start_s"], "analysis": m["analysis"],
                   "metric": m["metric"], "value": m["value"], "baseline_value": m["baseline_value"],
                   "phase": m["phase"]} for m in payload["measurements"]],
                 columns=["time_utc", "since_start_s", "analysis", "metric", "value", "baseline_value", "phase"]
                 ).to_csv(csv_path, index=False)
    json_path = out_dir / "replay.json"
    json_path.write_text(json.dumps(payload, indent=2, allow_nan=False) + "\n")
    png = figure_png(replay_timeline(timeline_points(result), [t.recorded_share for t in result.ticks],
                                     title=f"{result.strategy} replayed over {format_utc(result.start)}.."
                                           f"{format_utc(result.end)}"))
    section = Section(
        "Replay", [outcome_sentence(result), f"Recording: {result.source}."],
        tables=[Table(MEASUREMENT_COLUMNS, measurement_rows(result), caption="every measurement the strategy's "
                      "analysis would have taken, judged on the recorded counters" + (
                          "; a metric with a PromQL query of its own, on Prometheus' answer at that time"
                          if result.queries else "")),
                Table(SPLIT_COLUMNS, split_rows(result), caption="the strategy's declared canary weight per step, and "
                      "the share of requests the canary had in the recording over the same time")],
        images=[Image("replay-timeline", png, "the replayed rollout: the strategy's weight and the recorded split, "
                                              "each version's recorded error rate, the analysis' measurements")])
    notes = Section("Notes", [*result.notes, COUNTING_NOTE, PODS_NOTE])
    paths = write_report(Report(f"rolloutlab replay: {result.strategy}", [section, notes], pd.DataFrame()), out_dir)
    return {"csv": csv_path, "json": json_path, "html": paths["html"]}
