"""The one table of ``validate --all``: every library scenario's live judgements, the
coverage of the simulator's prediction intervals, and the scenarios not run live and why.

``library.csv`` holds one row per live judgement (scenario, metric, live run) -- the
simulator's median and interval, the live value, inside or outside, and with
``--calibrate`` the calibrated prediction and verdict beside it, never in its place --
plus one row per scenario that was not validated, naming why (``status``, ``reason``).
Coverage counts those rows: live judgements inside / judged (inside or outside; *no
prediction* is counted apart), per metric and overall, before and after calibration. If the
simulator is right, about 95% fall inside a 95% interval.

``library.md`` is the same table grouped one row per scenario and metric (each live value
in one cell), then the coverage and the list of scenarios not run; ``library.json`` holds
the settings, each scenario's status and the rows; ``report.html`` the three tables.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from rolloutlab.workflows.validate.library import LibraryValidation, ScenarioResult, ScenarioStatus
from rolloutlab.workflows.validate.metrics import SWITCH_FAILURES, WEIGHT_PREFIX, metric_kind, plain_value, show_value
from rolloutlab.workflows.validate.prediction import PredictionVerdict
from rolloutlab.workflows.validate.rendering import MARK, describe_prediction

BASES = ("scenario", "calibrated")
"""The predictions a live value is judged against: the scenario's as written, and the one
re-simulated with the measured pod start (``--calibrate``)."""

COLUMNS = ("scenario", "strategy", "release", "defect", "status", "metric", "run", "sim_median", "sim_interval",
           "live_value", "verdict", "reason", "calibrated_median", "calibrated_interval", "calibrated_verdict",
           "calibrated_reason", "held")
ALL = "all"


def metric_family(name: str) -> str:
    """The metric a coverage line groups by: every ``effective_weight@W`` step is one."""
    return "effective_weight" if name.startswith(WEIGHT_PREFIX) else name


def _judgement_rows(result: ScenarioResult) -> list[dict[str, Any]]:
    v = result.validation
    entry = result.entry
    rows = []
    for name in v.metrics:
        kind = metric_kind(name)
        median, interval = describe_prediction(v.predictions.get(name))
        calibrated = (describe_prediction(v.calibrated_predictions.get(name))
                      if v.calibrated_predictions is not None else ("", ""))
        for live in v.live:
            value = float(live.switch_failures.switch) if name == SWITCH_FAILURES.name else live.values.get(name)
            checks = {c.basis: c for c in v.checks if c.metric == name and c.run == live.run}
            plain, tuned = checks.get("scenario"), checks.get("calibrated")
            rows.append({
                "scenario": entry.name, "strategy": v.spec.name, "release": entry.release, "defect": v.defect,
                "status": result.status.value, "metric": name, "run": live.run, "sim_median": median,
                "sim_interval": interval, "live_value": show_value(value, kind),
                "verdict": plain.verdict.value if plain else "", "reason": plain.reason if plain else "",
                "calibrated_median": calibrated[0], "calibrated_interval": calibrated[1],
                "calibrated_verdict": tuned.verdict.value if tuned else "",
                "calibrated_reason": tuned.reason if tuned else "",
                "held": bool((tuned or plain).held) if (tuned or plain) else False,
            })
    return rows


def library_table(library: LibraryValidation) -> pd.DataFrame:
    """One row per live judgement, and one per scenario not validated (its ``reason``)."""
    rows: list[dict[str, Any]] = []
    for result in library.results:
        if result.validation is not None:
            rows += _judgement_rows(result)
        else:
            rows.append({"scenario": result.entry.name, "strategy": result.entry.spec.name,
                         "release": result.entry.release, "status": result.status.value, "reason": result.reason})
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    frame["run"] = frame["run"].astype("Int64")
    return frame.fillna({c: "" for c in COLUMNS if c not in ("run", "held")}).fillna({"held": False})


@dataclass(frozen=True)
class Coverage:
    """How many live judgements fell inside the simulator's intervals, for one metric (or
    ``all``) against one prediction (``scenario`` or ``calibrated``)."""

    basis: str
    metric: str
    inside: int
    judged: int  # inside + outside
    no_prediction: int  # too few simulated values for an interval: not a judgement of one

    @property
    def share(self) -> float | None:
        return self.inside / self.judged if self.judged else None

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "share": self.share}


def compute_coverage(table: pd.DataFrame) -> list[Coverage]:
    """Coverage per metric family and overall, per basis present in ``table``."""
    out = []
    for basis in BASES:
        column = "verdict" if basis == "scenario" else "calibrated_verdict"
        judged = table[table[column] != ""]
        if judged.empty:
            continue
        families = judged["metric"].map(metric_family)
        order = list(dict.fromkeys(families))
        for metric in [*order, ALL]:
            part = judged[column] if metric == ALL else judged.loc[families == metric, column]
            inside = int((part == PredictionVerdict.INSIDE.value).sum())
            outside = int((part == PredictionVerdict.OUTSIDE.value).sum())
            missing = int((part == PredictionVerdict.NO_PREDICTION.value).sum())
            out.append(Coverage(basis, metric, inside, inside + outside, missing))
    return out


def _share(c: Coverage | None) -> str:
    if c is None:
        return ""
    text = f"{c.inside}/{c.judged}" + (f" ({c.share:.0%})" if c.share is not None else "")
    return text + (f", {c.no_prediction} no prediction" if c.no_prediction else "")


def coverage_table(coverage: Sequence[Coverage]) -> tuple[list[str], list[list[str]]]:
    """Per metric: inside / judged before calibration and, when calibrated, after."""
    by = {(c.basis, c.metric): c for c in coverage}
    calibrated = any(c.basis == "calibrated" for c in coverage)
    columns = ["metric", "inside / judged (scenario as written)"]
    if calibrated:
        columns.append("inside / judged (calibrated)")
    metrics = list(dict.fromkeys(c.metric for c in coverage))
    rows = []
    for metric in metrics:
        cells = [metric, _share(by.get(("scenario", metric)))]
        if calibrated:
            cells.append(_share(by.get(("calibrated", metric))))
        rows.append(cells)
    return columns, rows


def grouped_table(table: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """One row per validated scenario and metric, each live value with its mark."""
    judged = table[table["status"] == ScenarioStatus.VALIDATED.value]
    calibrated = bool((judged["calibrated_verdict"] != "").any())
    columns = ["scenario", "strategy (release)", "metric", "sim median [95% PI]", "live"]
    if calibrated:
        columns += ["calibrated median [95% PI]", "live vs calibrated"]
    marks = {v.value: MARK[v] for v in PredictionVerdict}
    rows = []
    for (scenario, metric), part in judged.groupby(["scenario", "metric"], sort=False):
        first = part.iloc[0]
        cells = [scenario, f"{first['strategy']} ({first['release']})", metric,
                 f"{first['sim_median']} {first['sim_interval']}",
                 ", ".join(f"{r.live_value} {marks.get(r.verdict, '')}".strip() for r in part.itertuples())]
        if calibrated:
            cells += [f"{first['calibrated_median']} {first['calibrated_interval']}",
                      ", ".join(f"{r.live_value} {marks.get(r.calibrated_verdict, '')}".strip()
                                for r in part.itertuples())]
        rows.append(cells)
    return columns, rows


def scenario_table(library: LibraryValidation, table: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """One row per scenario, in the order they ran: its strategy and release, what became of
    it, inside / judged as written (and calibrated), and the metrics a live value fell
    outside of (against the deciding prediction: calibrated when there is one); a scenario
    not validated says why. The short form of the library for a note."""
    calibrated = bool((table["calibrated_verdict"] != "").any())
    columns = ["scenario", "strategy (release)", "inside / judged"]
    if calibrated:
        columns.append("calibrated")
    columns.append("outside, or why not run")
    rows = []
    for result in library.results:
        entry = result.entry
        cells = [entry.name, f"{entry.spec.name} ({entry.release})"]
        part = table[table["scenario"] == entry.name]
        if result.validation is None:
            rows.append(cells + [""] * (len(columns) - 3) + [f"{result.status.value}: {result.reason}"])
            continue
        by = {(c.basis, c.metric): c for c in compute_coverage(part)}
        cells.append(_share(by.get(("scenario", ALL))))
        if calibrated:
            cells.append(_share(by.get(("calibrated", ALL))))
        column = "calibrated_verdict" if calibrated else "verdict"
        outside = part[part[column] == PredictionVerdict.OUTSIDE.value]
        cells.append(", ".join(f"{r.metric} {r.live_value} vs {r.calibrated_interval if calibrated else r.sim_interval}"
                               for r in outside.itertuples()) or "none")
        rows.append(cells)
    return columns, rows


def not_run_lines(library: LibraryValidation) -> list[str]:
    return [f"{r.entry.name} ({r.entry.spec.name}, {r.entry.release} release): {r.status.value}: {r.reason}"
            for r in library.results if r.status is not ScenarioStatus.VALIDATED]


def coverage_sentence(coverage: Sequence[Coverage]) -> str:
    by = {(c.basis, c.metric): c for c in coverage}
    parts = [f"{'calibrated' if basis == 'calibrated' else 'as written'}: {_share(by[(basis, ALL)])}"
             for basis in BASES if (basis, ALL) in by]
    return "live judgements inside the 95% intervals: " + ("; ".join(parts) if parts else "none judged")


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(_md_cell(c) for c in columns) + " |", "|" + "---|" * len(columns)]
    return lines + ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]


def library_markdown(library: LibraryValidation, table: pd.DataFrame, coverage: Sequence[Coverage]) -> str:
    s = library.settings
    validated = sum(r.status is ScenarioStatus.VALIDATED for r in library.results)
    lines = [f"# validate --all: {validated} of {len(library.results)} library scenarios simulated and run live", "",
             f"{s.sim_runs} simulated runs and {s.live_runs} live run(s) per scenario on {s.backend}, time x"
             f"{s.time_scale:g}, {s.replicas} replicas, at most {s.max_rps:g} requests per wall second"
             + ("; calibrated with the measured pod start" if s.calibrate else "") + ".", "",
             coverage_sentence(coverage) + ".", ""]
    lines += _md_table(*scenario_table(library, table)) + ["", "## Every live judgement", ""]
    columns, rows = grouped_table(table)
    lines += _md_table(columns, rows) + ["", "## Coverage", ""]
    lines += _md_table(*coverage_table(coverage)) + ["", "## Not run live", ""]
    lines += [f"- {_md_cell(line)}" for line in not_run_lines(library)] or ["- none: every scenario ran live"]
    if library.interrupted:
        lines += ["", "Interrupted: the scenarios after the last one listed were not run."]
    return "\n".join(lines) + "\n"


def library_json(library: LibraryValidation, table: pd.DataFrame, coverage: Sequence[Coverage]) -> dict[str, Any]:
    s = library.settings
    return {
        "settings": {**asdict(s), "hold": list(s.hold)},
        "scenarios": [{"scenario": r.entry.name, "strategy": r.entry.spec.name, "strategy_source": r.entry.strategy,
                       "release": r.entry.release, "status": r.status.value, "reason": r.reason,
                       "out_dir": str(r.out_dir) if r.validation is not None else None, "wall_s": r.wall_s,
                       "exit_code": r.validation.exit_code if r.validation is not None else None}
                      for r in library.results],
        "coverage": [c.as_dict() for c in coverage],
        "rows": [{k: plain_value(v) for k, v in row.items()} for row in table.astype(object).where(
            table.notna(), None).to_dict("records")],
        "interrupted": library.interrupted,
        "exit_code": library.exit_code,
    }


def write_library(library: LibraryValidation, out_dir: Path, *, report: bool = True) -> dict[str, Path]:
    """library.csv, library.json, library.md (and report.html) into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    table = library_table(library)
    coverage = compute_coverage(table)
    paths = {"csv": out_dir / "library.csv", "json": out_dir / "library.json", "md": out_dir / "library.md"}
    table.to_csv(paths["csv"], index=False)
    paths["json"].write_text(json.dumps(library_json(library, table, coverage), indent=1, allow_nan=False))
    paths["md"].write_text(library_markdown(library, table, coverage), encoding="utf-8")
    if report:
        from rolloutlab.reports.document import Report, Section, write_report
        from rolloutlab.reports.document import Table as ReportTable

        columns, rows = grouped_table(table)
        section = Section("Every library scenario: simulator vs live", paragraphs=[
            coverage_sentence(coverage) + ". Each live value against the simulator's 95% prediction interval "
            "(order statistics): ✓ inside, ✗ outside; each scenario's own report is in its folder.",
            *not_run_lines(library)],
            tables=[ReportTable(*scenario_table(library, table), caption="per scenario"),
                    ReportTable(columns, rows, caption="every live judgement"),
                    ReportTable(*coverage_table(coverage), caption="coverage per metric")])
        paths.update({f"report_{k}": v for k, v in write_report(
            Report("rolloutlab validate --all", [section], table), out_dir).items()})
    return paths


def render_library(library: LibraryValidation, console) -> None:
    """The grouped table, the coverage and the scenarios not run, on the terminal."""
    from rich.markup import escape
    from rich.table import Table

    table = library_table(library)
    coverage = compute_coverage(table)
    for title, (columns, rows) in (("validate --all", grouped_table(table)),
                                   ("per scenario", scenario_table(library, table)),
                                   ("coverage of the 95% prediction intervals", coverage_table(coverage))):
        shown = Table(title=title)
        for column in columns:
            shown.add_column(column)
        for row in rows:
            shown.add_row(*(escape(cell) for cell in row))
        console.print(shown)
    console.print(escape(coverage_sentence(coverage)), highlight=False)
    for line in not_run_lines(library):
        console.print(f"[yellow]not run live:[/] {escape(line)}", highlight=False)


__all__ = [
    "ALL", "BASES", "COLUMNS", "Coverage", "compute_coverage", "coverage_sentence", "coverage_table",
    "grouped_table", "library_json", "library_markdown", "library_table", "metric_family", "not_run_lines",
    "render_library", "scenario_table", "write_library",
]
