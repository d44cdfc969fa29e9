"""What ``validate`` shows and writes: the side-by-side table (terminal and report), the
calibration and zero-downtime lines, validation.json, the results table of simulated and
live rows, and the report with its validation section."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rolloutlab.results.table import to_frame
from rolloutlab.workflows.validate.calibration import PodTimingSummary
from rolloutlab.workflows.validate.metrics import SWITCH_FAILURES, Kind, is_held, metric_kind, plain_value, show_value
from rolloutlab.workflows.validate.prediction import Prediction, PredictionVerdict
from rolloutlab.workflows.validate.running import Validation


def _jsonable(x: Any) -> Any:
    """JSON-safe: a censored time as {"censored_at": s}, NaN as null, numpy scalars as Python ones."""
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, Enum):
        return x.value
    return plain_value(x)


def describe_prediction(p: Prediction | None) -> tuple[str, str]:
    """(median, interval) cells for a prediction."""
    if p is None:
        return "not reached", "n/a in every run"
    if p.kind is Kind.CATEGORY:
        top = max(p.shares.items(), key=lambda kv: kv[1]) if p.shares else ("n/a", 0.0)
        return f"{top[0]} ({top[1]:.0%})", "{" + ", ".join(p.predicted) + "}"
    na = p.shares.get("n/a", 0.0)
    suffix = f"; n/a in {na:.0%}" if na > 0 else ""
    if p.censored:
        suffix += f"; {p.censored} of {p.values} censored"
    if p.runs == 0:  # fixed by construction
        return show_value(p.median, p.kind), "0 (lossless switch)"
    if p.values == 0:
        return "n/a", "n/a in every run"
    interval = "too few values" if p.low is None else f"[{show_value(p.low, p.kind)}, {show_value(p.high, p.kind)}]"
    return show_value(p.median, p.kind), interval + suffix


MARK = {PredictionVerdict.INSIDE: "✓", PredictionVerdict.OUTSIDE: "✗ outside",
        PredictionVerdict.NO_PREDICTION: "? no prediction"}


def summary_table(v: Validation) -> tuple[list[str], list[list[str]]]:
    """The side-by-side table as text cells (for the terminal and the HTML report): per
    metric the simulator's median and prediction interval (and the calibrated ones), then
    each live value with its verdict against the deciding prediction."""
    calibrated = v.calibrated_predictions is not None
    level = f"{v.settings.level:.0%}"
    columns = ["metric", f"sim median [{level} PI]"]
    if calibrated:
        columns.append(f"calibrated sim median [{level} PI]")
    columns += [f"live {r.run}" for r in v.live] + ["held"]
    deciding = "calibrated" if calibrated else "scenario"
    rows = []
    for name in v.metrics:
        kind = metric_kind(name)
        cells = [name, " ".join(describe_prediction(v.predictions.get(name)))]
        if calibrated:
            cells.append(" ".join(describe_prediction(v.calibrated_predictions.get(name))))
        for r in v.live:
            c = next((c for c in v.checks if c.metric == name and c.run == r.run and c.basis == deciding), None)
            value = float(r.switch_failures.switch) if name == SWITCH_FAILURES.name else r.values.get(name)
            cells.append(f"{show_value(value, kind)} {MARK[c.verdict] if c else ''}".strip())
        cells.append("yes" if is_held(name, v.settings.hold) else "")
        rows.append(cells)
    return columns, rows


def calibration_lines(v: Validation) -> list[str]:
    from rolloutlab.results.formatting import format_duration as d

    assumed = PodTimingSummary.of(v.assumed_ready_s)
    measured = PodTimingSummary.of([s for r in v.live for s in r.created_to_ready_s])
    how = ""
    if v.world.backend == "kube":
        watched = [r.calibration.get("watch", {}) for r in v.live]
        untimed = sum(w.get("pods", 0) - w.get("timed", 0) for w in watched)
        how = (f" (kube: real containers, a pod watch from creation to Ready; {untimed} pods not timed: seen "
               f"just after a blind spot of the watch, or not ready by the end)")
    lines = [
        f"pod creation-to-ready (scenario s): measured median {d(measured.median_s)} "
        f"[p10 {d(measured.p10_s)}, p90 {d(measured.p90_s)}] over {measured.n} pods{how}; the scenario assumes median "
        f"{d(assumed.median_s)} [p10 {d(assumed.p10_s)}, p90 {d(assumed.p90_s)}]",
    ]
    switches = [s for r in v.live for s in (r.switch_delays_s or [])]
    if any(r.switch_delays_s is None for r in v.live):
        lines.append(f"router switch delay: not measured on {v.world.backend} (kube-proxy has no stats API and applies "
                     "Service changes asynchronously; the simulator switches instantly)")
    elif switches:
        lines.append(f"router switch delay (command to first answer of the new version): median "
                     f"{d(float(np.median(switches)))}, max {d(max(switches))} over {len(switches)} switches "
                     f"(scenario s; the simulator switches instantly)")
    else:
        lines.append("router switch delay: no router switch in these runs (weights followed pods)")
    if v.calibrated_timing is not None:
        start = v.calibrated_timing["start_delay"]
        shape = (f"lognormal median {d(start['median'])} sigma {start['sigma']:.2f}" if start["kind"] == "lognormal"
                 else f"fixed {d(start['value'])}")
        lines.append(f"calibrated simulation: schedule_delay 0, start_delay {shape} fitted to "
                     f"{v.calibrated_timing['from_pods']} pods; live values judged against it")
    return lines


def zero_downtime_lines(v: Validation) -> list[str]:
    lines = []
    for r in v.live:
        f = r.switch_failures
        detail = ", ".join(f"{k} {n}" for k, n in sorted(f.switch_by_result.items())) or "none"
        if f.router is None:
            router = (f"router counters: not measured (kube-proxy has no stats API; {f.preview_unanswered} preview "
                      f"requests unanswered)")
        else:
            router = (f"HAProxy: {f.router.get('proxy_5xx', 0)} own 5xx (users and preview; {f.preview_unanswered} "
                      f"preview requests unanswered), {f.router.get('retries', 0)} retries, "
                      f"{f.router.get('redispatches', 0)} redispatches")
        lines.append(
            f"run {r.run}: {f.switch} user requests failed by the switch itself ({detail}) around {f.changes} routing "
            f"changes (window -{f.window_before_s:g}s/+{f.window_after_s:g}s); {f.timeouts_near_switch} timeouts in those "
            f"windows (not attributed); {f.other_unanswered} other unanswered; "
            f"{f.release} failed by the release (error answers of the new version), {f.stable} by the stable; {router}")
    return lines


def render_validation(v: Validation, console) -> None:
    from rich.markup import escape
    from rich.table import Table

    s = v.settings
    columns, rows = summary_table(v)
    title = (f"{v.spec.name} on {v.scenario.name}: {v.defect} release, {s.replicas} replicas, "
             f"{v.world.sim_rps:.3g} rps ({v.world.user_rps:.3g}/s wall at x{s.time_scale:g}); "
             f"{s.sim_runs} simulated vs {len(v.live)} live on {v.world.backend}")
    table = Table(title=title)
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i == 0 else "right", no_wrap=i == 0)
    for row in rows:
        table.add_row(*(escape(cell) for cell in row))
    console.print(table)
    console.print(f"prediction interval: order statistics X(j)..X(n+1-j) of the simulated values, coverage "
                  f">= {s.level:.0%} for one more draw; a time that did not end in the window is censored there "
                  f"('> window', above every time that ended); n/a and categories: the {s.level:.0%} prediction set; "
                  f"live durations may miss it by the live timing resolution "
                  f"({s.timing_resolution_wall_s:g}s wall = {s.timing_resolution_wall_s * s.time_scale:g}s)",
                  highlight=False)
    for line in calibration_lines(v):
        console.print(f"calibration: {escape(line)}", highlight=False)
    for line in zero_downtime_lines(v):
        console.print(f"zero downtime: {escape(line)}", highlight=False)
    for note in v.notes:
        console.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
    held = [c for c in v.checks if c.held and c.verdict is not PredictionVerdict.INSIDE]
    for c in held:
        console.print(f"[bold red]HELD {c.metric} run {c.run}:[/] {escape(show_value(c.value, metric_kind(c.metric)))} "
                      f"{c.verdict.value}: {escape(c.reason)}", highlight=False)
    if s.hold:
        console.print("held metrics: " + ("[bold red]live falls outside the prediction[/]" if held
                                          else "[green]live inside the prediction[/]"))


def validation_json(v: Validation) -> dict[str, Any]:
    s = v.settings
    return {
        "scenario": v.scenario.name,
        "strategy": v.spec.name,
        "release": s.release,
        "defect": v.defect,
        "backend": v.world.backend,
        "settings": {**asdict(s), "hold": list(s.hold)},
        "world": asdict(v.world),
        "method": {
            "prediction_interval": "order statistics: [X(j), X(n+1-j)] of the n simulated values with the largest j "
                                   "whose coverage (n+1-2j)/(n+1) >= level; distribution-free, for one more draw",
            "not_applicable_and_categories": "prediction set: the most frequent kinds covering >= level of the runs",
            "censored": "a time that did not end in the window is right-censored at the window's end (shown "
                        "'> window', stored as {censored_at: seconds followed}); it sorts above every time that "
                        "ended, so order-statistic intervals stay valid; each prediction says how many of its "
                        "simulated values were censored",
            "timing_resolution_s": "live durations may miss an interval by timing_resolution_wall_s x time_scale "
                                   f"= {s.timing_resolution_wall_s * s.time_scale:g} scenario seconds (said in the reason)",
            "switch_failures": "user requests with no answer from any version (router 5xx, refused, reset) "
                               "whose flight overlaps a routing change's window; timeouts there are counted "
                               "apart (timeouts_near_switch), not attributed",
        },
        "predictions": {k: p.as_dict() for k, p in v.predictions.items()},
        "calibrated_predictions": ({k: p.as_dict() for k, p in v.calibrated_predictions.items()}
                                   if v.calibrated_predictions is not None else None),
        "calibration": {
            "assumed_pod_ready_s": asdict(PodTimingSummary.of(v.assumed_ready_s)),
            "measured_pod_ready_s": asdict(PodTimingSummary.of([x for r in v.live for x in r.created_to_ready_s])),
            "switch_delay_s": (None if any(r.switch_delays_s is None for r in v.live)  # not measured (kube)
                               else [x for r in v.live for x in r.switch_delays_s]),
            "fitted_pod_timing": v.calibrated_timing,
            "runs": [{"run": r.run, **r.calibration} for r in v.live],
        },
        "live": [{"run": r.run, "seed": r.seed, "wall_s": r.wall_s, "values": {k: plain_value(x) for k, x in r.values.items()},
                  "zero_downtime": r.switch_failures.as_dict(),
                  "router_failures": int(r.row.get("router_failures", 0)),
                  "release_failures": int(r.row.get("release_failures", 0))} for r in v.live],
        "checks": [c.as_dict() for c in v.checks],
        "held_outside": [c.as_dict() for c in v.checks if c.held and c.verdict is not PredictionVerdict.INSIDE],
        "notes": v.notes,
        "sim_wall_s": v.sim_wall_s,
        "exit_code": v.exit_code,
    }


def results_table(v: Validation) -> pd.DataFrame:
    """Simulated and live rows in one results table (``source`` tells them apart)."""
    live = to_frame([r.row for r in v.live])
    return to_frame(pd.concat([v.sim, live], ignore_index=True, sort=False))


def write_validation(v: Validation, out_dir: Path) -> dict[str, Path]:
    """results.csv/.parquet (simulated + live rows), live-results.csv, timelines.json (the
    first simulated run and every live run) and validation.json into ``out_dir``."""
    from rolloutlab.results.table import write_results
    from rolloutlab.results.timeline import write_timelines

    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path, parquet_path = write_results(results_table(v), out_dir / "results")
    live_csv, _ = write_results(to_frame([r.row for r in v.live]), out_dir / "live-results")
    timelines = write_timelines(timelines_of(v), out_dir)
    path = out_dir / "validation.json"
    path.write_text(json.dumps(_jsonable(validation_json(v)), indent=1, allow_nan=False))
    return {"results": csv_path, "parquet": parquet_path, "live_results": live_csv, "timelines": timelines,
            "validation": path}


def timelines_of(v: Validation) -> list[dict[str, Any]]:
    return [v.sim_timeline] + [r.timeline for r in v.live]


def write_validation_report(v: Validation, written: Mapping[str, Path], out_dir: Path) -> dict[str, Path]:
    """The report of the written results table, opened by a "simulator vs live" section
    holding the side-by-side table, the calibration and zero-downtime lines."""
    from rolloutlab.reports.document import Section, build_report, write_report
    from rolloutlab.reports.document import Table as ReportTable
    from rolloutlab.results.table import read_results
    from rolloutlab.results.timeline import read_timelines

    document = build_report(read_results(written["results"]), read_timelines(written["timelines"]))
    columns, rows = summary_table(v)
    document.sections.insert(0, Section(
        f"Validation: {v.spec.name} on {v.scenario.name}, simulator vs live",
        paragraphs=["Each live value against the simulator's prediction interval (order statistics, "
                    f"{v.settings.level:.0%} coverage for one more run): ✓ inside, ✗ outside. A time that did "
                    "not end in the window is censored there (\"> window\").",
                    *calibration_lines(v), *zero_downtime_lines(v)],
        tables=[ReportTable(columns, rows, caption="switch_failures: user requests that failed because of a "
                                                   "routing change itself; the target is 0")]))
    return write_report(document, out_dir)


__all__ = [
    "MARK", "calibration_lines", "describe_prediction", "render_validation", "results_table", "summary_table",
    "timelines_of", "validation_json", "write_validation", "write_validation_report", "zero_downtime_lines",
]
