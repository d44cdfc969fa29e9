"""``rolloutlab judges SCENARIO``: the judges' power curves computed
(``workflows.judge_power``), printed as a table that fits 100 columns, and written as
``judges.csv``, ``judges.png`` and a self-contained ``judges.html`` (the report's own HTML
writer, ``reports.document``, with the chart embedded)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from rich import box
from rich.console import Console
from rich.table import Table as RichTable
from rich.text import Text

from rolloutlab.errors import InputError
from rolloutlab.reports.document import Image, Report, Section, Table, render_html
from rolloutlab.reports.judge_power_plot import judge_power_figure
from rolloutlab.reports.plots import figure_png
from rolloutlab.results.formatting import format_quantity
from rolloutlab.workflows.compare import Say, load_scenario_file, load_strategy_arg
from rolloutlab.workflows.defaults import DEFAULT_SEED
from rolloutlab.workflows.judge_power import (
    BAD,
    FALSE_ROLLBACK_LEVEL,
    GOOD,
    JUDGE_RUNS,
    SWEEP_EFFECT,
    SWEEP_TRAFFIC,
    JudgePower,
    compute_judge_power,
    default_judges,
    format_share_cell,
    format_time_cell,
    judge_setup,
)

TABLE_COLUMNS = ("judge", "requests / window", "P(catch bad) [95% CI]", "P(roll back good) [95% CI]",
                 "time to catch (median)")

FILES = {"csv": "judges.csv", "png": "judges.png", "html": "judges.html"}


def run_judges_command(scenario: str, strategies: Sequence[str], *, runs: int = JUDGE_RUNS, seed: int | None = None,
                       out_dir: Path = Path("out/judges"), out: Console, note: Say | None = None,
                       warn: Say | None = None) -> JudgePower:
    """Load, compute, print and write; bad input raises ``InputError`` before anything runs."""
    loaded = load_scenario_file(scenario)
    judges = ([judge_setup(load_strategy_arg(p, note=note, warn=warn), p) for p in strategies]
              if strategies else default_judges())
    seed = seed if seed is not None else loaded.scenario.seed if loaded.scenario.seed is not None else DEFAULT_SEED
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(str(out_dir), f"cannot use this as the output folder: {error.strerror or error}") from None
    power = compute_judge_power(loaded.scenario, judges, runs=runs, seed=seed, where=str(loaded.path))
    out.print(render_table(power))
    written = write_judges(power, out_dir)
    for sentence in power.answer.sentences:
        out.print(Text(sentence), soft_wrap=False)
    out.print(Text(f"wrote {written['csv']}, {written['png']}, {written['html']}"))
    return power


def table_rows(power: JudgePower) -> list[list[str]]:
    """The traffic sweep, one row per judge and traffic: the printed and the HTML table."""
    traffic = power.table[power.table["sweep"] == SWEEP_TRAFFIC]
    rows = []
    for judge, g in traffic.groupby("judge", sort=False):
        for level, pair in g.groupby("requests_per_window", sort=True):
            bad = pair[pair["release"] == BAD].iloc[0]
            good = pair[pair["release"] == GOOD].iloc[0]
            mark = "*" if bool(bad["scenario_traffic"]) else ""
            rows.append([judge, f"{format_quantity(level)}{mark}", format_share_cell(bad), format_share_cell(good),
                         format_time_cell(bad)])
    return rows


def render_table(power: JudgePower) -> RichTable:
    w = power.world
    table = RichTable(title=Text(f"Judges on {w.scenario}: bad release +{w.defect_error_rate:.3g} error rate, "
                                 f"baseline {w.baseline_error_rate:.3g}, {power.runs} runs per cell"),
                      caption=Text("* the scenario's own traffic; time from the rollout's start, Kaplan-Meier "
                                   "median (not caught: censored at the rollout's end)"),
                      box=box.SIMPLE_HEAD, pad_edge=False, width=100)
    widths = (20, 9, 21, 21, 19)
    for name, width in zip(TABLE_COLUMNS, widths, strict=True):
        table.add_column(Text(name), width=width, justify="left" if name == "judge" else "right",
                         overflow="fold")
    previous = None
    for row in table_rows(power):
        if previous is not None and row[0] != previous:
            table.add_section()
        table.add_row(*(Text("" if i == 0 and row[0] == previous else cell) for i, cell in enumerate(row)))
        previous = row[0]
    return table


def write_judges(power: JudgePower, out_dir: Path) -> dict[str, Path]:
    """judges.csv (every cell), judges.png (the chart), judges.html (one file, chart embedded)."""
    paths = {kind: out_dir / name for kind, name in FILES.items()}
    power.table.to_csv(paths["csv"], index=False)
    title = f"Judge power on {power.world.scenario}"
    png = figure_png(judge_power_figure(power.table, title=title, level=FALSE_ROLLBACK_LEVEL))
    paths["png"].write_bytes(png)
    paths["html"].write_text(render_html(build_document(power, png)), encoding="utf-8")
    return paths


def build_document(power: JudgePower, png: bytes) -> Report:
    w = power.world
    effect = power.table[power.table["sweep"] == SWEEP_EFFECT]
    effect_rows = [[j, f"{r['added_error_rate']:.3g}", format_share_cell(r), format_time_cell(r)]
                   for j, g in effect.groupby("judge", sort=False) for _, r in g.iterrows()]
    section = Section(
        f"Judges on {w.scenario}",
        paragraphs=[
            f"Each cell is {power.runs} rollouts (seed {power.seed}) driven by the controller itself, with the "
            f"traffic drawn: Poisson requests per version at the weights the controller set, each failing with the "
            f"baseline error rate {w.baseline_error_rate:.3g} (stable) or that combined with the defect's added "
            f"error rate (new version). Traffic is the canary's requests per analysis window; a bad release adds "
            f"{w.defect_error_rate:.3g} (absolute) to the error rate. Brackets are 95% Wilson intervals; times run "
            f"from the rollout's start (Kaplan-Meier median, runs not rolled back censored at their end).",
            *power.answer.sentences,
        ],
        tables=[Table(list(TABLE_COLUMNS), table_rows(power), caption="* the scenario's own traffic"),
                Table(["judge", "added error rate", "P(catch bad) [95% CI]", "time to catch (median)"], effect_rows,
                      caption="bad releases of each size at the scenario's own traffic")],
        images=[Image("judges", png, f"Judges' power and false rollbacks against traffic on {w.scenario}")],
    )
    return Report(title=f"rolloutlab judges: {w.scenario}", sections=[section], summary=pd.DataFrame())
