"""``rolloutlab tune``: search, choose, confirm on fresh runs, and write what a user ships.

The chosen strategy is the candidate of the Pareto front best on the first objective
(every constraint met by its estimates; ``search.choose`` says how near-ties go). A search picks the luckiest of many candidates
on the runs it saw, so its own figures flatter it; the comparison the user reads is
therefore made again on ``confirm_runs`` runs of a *different* seed, the chosen strategy
and the start side by side on common random numbers, with each figure's interval (the
method `check` uses) and the paired difference.

Written to the out directory: ``tuned-<name>.yaml`` (the chosen strategy, ready for
``compare``/``check``/``export``), ``candidates.csv`` (every candidate, its settings,
figures, runs and why it stopped), ``tune.json``, and a report (``report.html``: the
front as a table and a plot, the confirmation).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from rolloutlab.errors import InputError
from rolloutlab.reports.document import Image, Report, Section, Table, write_report
from rolloutlab.reports.plots import figure_png
from rolloutlab.reports.tuning_plot import tuning_front
from rolloutlab.results.statistics import Figure, compute_mean_bootstrap_interval
from rolloutlab.scenarios.expectations import ExpectationResult, compute_metric_sample, judge_assertion
from rolloutlab.sim.montecarlo import ExecutorSession, open_executor, run_many
from rolloutlab.strategies.spec import StrategySpec
from rolloutlab.workflows.tune.objectives import Objective, paired_differences, per_run_values
from rolloutlab.workflows.tune.search import Candidate, Search, TuneSettings, choose, pareto_front, run_search
from rolloutlab.workflows.tune.space import current_values, describe_values, strategy_parameters

DEFAULT_CONFIRM_RUNS = 2000


@dataclass
class Confirmation:
    runs: int
    seed: int
    figures: dict[str, tuple[Figure, Figure]]  # objective -> (start, chosen), as `check` computes them
    differences: dict[str, Figure]  # objective -> paired mean difference chosen - start (means and rates)
    constraints: list[ExpectationResult]  # the chosen strategy's, on these runs


@dataclass
class TuneResult:
    search: Search
    front: list[Candidate]
    chosen: Candidate | None
    tuned: StrategySpec | None
    confirmation: Confirmation | None
    notes: list[str]


def tune(scenario: Any, start: StrategySpec, settings: TuneSettings, *, confirm_runs: int = DEFAULT_CONFIRM_RUNS,
         progress=None) -> TuneResult:
    if not settings.stages or list(settings.stages) != sorted(set(settings.stages)) or settings.stages[0] < 2:
        raise InputError("--runs", f"stages must be increasing run counts of at least 2, got {list(settings.stages)}")
    if settings.candidates < 1 or settings.batch < 1:
        raise InputError("--candidates", "give at least one candidate and a batch of at least one")
    parameters, notes = strategy_parameters(start)
    with open_executor(settings.executor, settings.workers) as session:
        search = run_search(scenario, start, parameters, settings, progress, session)
        front = pareto_front(search)
        chosen = choose(front, settings.objectives)
        tuned = confirmation = None
        if chosen is not None and chosen.number != 0:
            tuned = chosen.spec.model_copy(update={"name": f"{start.name}-tuned", "description":
                                                   f"{start.name} tuned by rolloutlab tune on {scenario.name} (seed "
                                                   f"{settings.seed}, candidate #{chosen.number})"})
            confirmation = confirm(scenario, start, tuned, settings, confirm_runs, session)
    if chosen is None:
        notes.append("no fully scored candidate meets every constraint (your strategy included): loosen a "
                     "constraint, widen the search list, or give more candidates")
    elif chosen.number == 0:
        notes.append("no candidate beat your strategy on the front: it is kept")
    return TuneResult(search, front, chosen, tuned, confirmation, notes)


def confirm_seed(seed: int) -> int:
    """A seed of its own for the confirmation, derived from the tune seed (never one of its runs)."""
    return int(np.random.SeedSequence([seed, 1]).generate_state(1, np.uint64)[0] % (2**63))


def confirm(scenario: Any, start: StrategySpec, tuned: StrategySpec, settings: TuneSettings, runs: int,
            session: ExecutorSession) -> Confirmation:
    seed = confirm_seed(settings.seed)
    table = run_many(scenario, [start, tuned], runs, seed, session=session, progress=False)
    mine, theirs = (table[table["strategy"] == s.name] for s in (start, tuned))
    figures = {o.name: (o.figure(mine), o.figure(theirs)) for o in settings.objectives}
    differences = {}
    for o in settings.objectives:
        before, after = (per_run_values(o, compute_metric_sample(rows, o.metric)) for rows in (mine, theirs))
        if before is not None and after is not None:  # the paired mean difference, BCa as `compare`'s
            differences[o.name] = compute_mean_bootstrap_interval(paired_differences(after, before))
    constraints = [judge_assertion(a, compute_metric_sample(theirs, a.metric), strategy=tuned.name)
                   for a in settings.constraints]
    return Confirmation(runs, seed, figures, differences, constraints)


# ---------------------------------------------------------------------------- tables


def candidates_frame(result: TuneResult) -> pd.DataFrame:
    search = result.search
    front = {c.number for c in result.front}
    rows = []
    for c in [search.start, *search.candidates]:
        settings = current_values(search.start.spec, search.parameters) if c.number == 0 else (
            describe_values(search.parameters, c.values))
        state = ("front" if c.number in front else "invalid" if c.invalid else "stopped" if c.stopped
                 else "infeasible" if not c.feasible else "scored")
        row = {"number": c.number, "state": state, "runs": c.runs,
               "start": c.number == 0, "chosen": result.chosen is not None and c.number == result.chosen.number}
        for o in search.settings.objectives:
            f = c.figures.get(o.name)
            row[o.name] = f.value if f is not None and f.value is not None else math.nan
            row[f"{o.name}.low"] = f.low if f is not None and f.low is not None else math.nan
            row[f"{o.name}.high"] = f.high if f is not None and f.high is not None else math.nan
        for text, excess in c.excess.items():
            row[f"excess: {text}"] = excess
        row.update({f"set: {k}": v for k, v in settings.items()})
        row["why stopped"] = c.invalid or c.stopped
        rows.append(row)
    return pd.DataFrame(rows)


def strategy_yaml(spec: StrategySpec, header: str) -> str:
    data = spec.model_dump(by_alias=True, mode="json", exclude_defaults=True)
    data.pop("search", None)
    body = yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100)
    return "".join(f"# {line}\n" for line in header.splitlines()) + body


def write_outputs(result: TuneResult, out_dir: Path, scenario_name: str) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    frame = candidates_frame(result)
    paths["candidates"] = out_dir / "candidates.csv"
    frame.to_csv(paths["candidates"], index=False)
    if result.tuned is not None:
        paths["strategy"] = out_dir / f"{result.tuned.name}.yaml"
        paths["strategy"].write_text(strategy_yaml(result.tuned, result.tuned.description + "\n" +
                                                   "Durations are seconds. Confirm it: rolloutlab compare "
                                                   f"{scenario_name} --strategies {result.search.start.spec.name},"
                                                   f"{paths['strategy']}"), encoding="utf-8")
    paths["json"] = out_dir / "tune.json"
    paths["json"].write_text(json.dumps(tune_json(result), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    paths.update(write_report(tune_report(result, frame, scenario_name), out_dir))
    return paths


def tune_report(result: TuneResult, frame: pd.DataFrame, scenario_name: str) -> Report:
    objectives = result.search.settings.objectives
    front_rows = frame[frame["state"] == "front"]
    columns = ["#", *(o.name for o in objectives), "runs", *[setting_label(c) for c in frame.columns if c.startswith("set: ")]]
    table_rows = []
    for _, row in front_rows.iterrows():
        c = _candidate(result, int(row["number"]))
        table_rows.append([f"#{c.number}" + (" (yours)" if c.number == 0 else "") + (" ★" if row["chosen"] else ""),
                           *(o.cell(c.figures[o.name]) for o in objectives), str(c.runs),
                           *[str(row[k]) for k in frame.columns if k.startswith("set: ")]])
    sections = [Section("Pareto front", [
        f"{len(frame) - 1} candidates searched on {scenario_name}; {int((frame['state'] == 'stopped').sum())} stopped "
        f"early, {result.search.simulated_runs:,} runs simulated. Each figure is a mean with its 95% interval on the "
        "candidate's runs (common random numbers: run i is the same release for every candidate)."],
        tables=[Table(columns, table_rows, caption="★: chosen (best on the first objective; near-ties go to the next objectives)")])]
    if len(objectives) >= 2:
        plot_frame = frame.assign(x=frame[objectives[1].name], y=frame[objectives[0].name])
        plot_frame = plot_frame[plot_frame["state"] != "invalid"]
        fig = tuning_front(plot_frame, objectives[1].name, objectives[0].name,
                           x_is_duration=_is_time(objectives[1]), y_is_duration=_is_time(objectives[0]))
        sections[0].images.append(Image("tuning-front", figure_png(fig), "every candidate on the two first objectives"))
    if result.confirmation is not None:
        sections.append(confirmation_section(result))
        sections[-1].paragraphs.append(summary_sentence(result))
    if result.notes:
        sections.append(Section("Notes", list(result.notes)))
    return Report(f"rolloutlab tune: {result.search.start.spec.name} on {scenario_name}", sections, frame)


def _is_time(objective: Objective) -> bool:
    return objective.metric in ("mttr", "detected_within", "rollout_duration")


def _candidate(result: TuneResult, number: int) -> Candidate:
    return next(c for c in [result.search.start, *result.search.candidates] if c.number == number)


def confirmation_rows(result: TuneResult) -> list[list[str]]:
    conf = result.confirmation
    assert conf is not None
    rows = []
    for o in result.search.settings.objectives:
        mine, theirs = conf.figures[o.name]
        diff = conf.differences.get(o.name)
        rows.append([o.name, o.cell(mine), o.cell(theirs), o.cell(diff) if diff is not None else "",
                     _overlap(mine, theirs)])
    for r in conf.constraints:
        rows.append([r.assertion.text, "", r.measured, "", r.verdict.value])
    return rows


def summary_sentence(result: TuneResult) -> str:
    """The answer in one line: "your canary: 1.88k [1.88k, 1.89k] failed_requests.mean;
    tuned: 1.81k [1.81k, 1.81k]; rollout_duration.mean 4m49s shorter [...]"."""
    conf = result.confirmation
    if result.chosen is None:
        return "no candidate (yours included) meets every constraint on the runs simulated"
    if conf is None or result.tuned is None:
        return f"no candidate beat your {result.search.start.spec.name} on the front: keep it"
    first, *rest = result.search.settings.objectives
    mine, theirs = conf.figures[first.name]
    parts = [f"your {result.search.start.spec.name}: {first.name} {first.cell(mine)}; tuned: {first.cell(theirs)}"]
    for o in rest:
        diff = conf.differences.get(o.name)
        if diff is None or diff.value is None:
            before, after = conf.figures[o.name]
            parts.append(f"{o.name} {o.cell(before)} -> {o.cell(after)}")
            continue
        word = "lower" if diff.value < 0 else "higher"
        if o.metric in ("rollout_duration", "mttr", "detected_within"):
            word = "shorter" if diff.value < 0 else "longer"
        size = Figure(abs(diff.value), None, None, diff.n)
        parts.append(f"{o.name} {o.cell(size)} {word} (paired {o.cell(diff)})")
    return "; ".join(parts)


def tune_json(result: TuneResult) -> dict[str, Any]:
    """The search's answer as plain data: the front, the chosen settings, the confirmation."""
    objectives = result.search.settings.objectives
    params = result.search.parameters

    def entry(c: Candidate) -> dict[str, Any]:
        settings = (current_values(result.search.start.spec, params) if c.number == 0
                    else describe_values(params, c.values))
        return {"number": c.number, "runs": c.runs, "settings": settings,
                "figures": {o.name: c.figures[o.name].as_dict() for o in objectives}}

    payload: dict[str, Any] = {
        "strategy": result.search.start.spec.name, "seed": result.search.settings.seed,
        "candidates": len(result.search.candidates), "simulated_runs": result.search.simulated_runs,
        "objectives": [o.name for o in objectives],
        "constraints": [a.text for a in result.search.settings.constraints],
        "front": [entry(c) for c in result.front],
        "chosen": None if result.chosen is None else entry(result.chosen),
        "summary": summary_sentence(result), "notes": list(result.notes),
    }
    conf = result.confirmation
    if conf is not None:
        payload["confirmation"] = {
            "runs": conf.runs, "seed": conf.seed,
            "figures": {k: {"yours": a.as_dict(), "tuned": b.as_dict()} for k, (a, b) in conf.figures.items()},
            "paired_differences": {k: d.as_dict() for k, d in conf.differences.items()},
            "constraints": {r.assertion.text: {"verdict": r.verdict.value, "figure": r.figure.as_dict()}
                            for r in conf.constraints},
        }
    return payload


def _overlap(a: Figure, b: Figure) -> str:
    if None in (a.low, a.high, b.low, b.high):
        return "n/a"
    return "overlap" if a.low <= b.high and b.low <= a.high else "apart"


def confirmation_section(result: TuneResult) -> Section:
    conf = result.confirmation
    assert conf is not None and result.tuned is not None
    start = result.search.start.spec.name
    table = Table(["figure", start, result.tuned.name, "paired difference", "intervals"], confirmation_rows(result),
                  caption=f"{conf.runs:,} fresh runs (seed {conf.seed}), the two strategies on common random numbers")
    return Section("Chosen vs yours, on fresh runs", [
        "The search saw other runs: a strategy picked as the best of many flatters itself on them, so the comparison "
        "is made again here on runs it never saw."], tables=[table])


# ---------------------------------------------------------------------------- terminal


def setting_label(column: str) -> str:
    """A setting's column (``set: analysisTemplates[*].metrics[*].interval``) by its field's
    last name (``interval``); the full path is in candidates.csv."""
    return column[5:].rsplit(".", 1)[-1].replace("[*]", "")


def short_settings(row: pd.Series) -> str:
    """``steps 5%/1m20s; interval 16s; judge threshold``: each setting by its field's last name."""
    return "; ".join(f"{setting_label(key)} {row[key]}" for key in row.index if key.startswith("set: "))


def print_tune(result: TuneResult, console, out_paths: dict[str, Path]) -> None:
    from rich.table import Table as RichTable

    frame = candidates_frame(result)
    objectives = result.search.settings.objectives
    table = RichTable(title="Pareto front (95% intervals on the candidate's runs)", title_justify="left")
    table.add_column("#", no_wrap=True)
    for o in objectives:
        table.add_column(o.name, overflow="fold")
    table.add_column("runs", justify="right")
    table.add_column("settings", overflow="fold", ratio=1)
    for _, row in frame[frame["state"] == "front"].iterrows():
        c = _candidate(result, int(row["number"]))
        label = f"{c.number}" + (" yours" if c.number == 0 else "") + (" ★" if row["chosen"] else "")
        table.add_row(label, *(o.cell(c.figures[o.name]) for o in objectives), str(c.runs), short_settings(row))
    console.print(table)
    stopped = int((frame["state"] == "stopped").sum())
    invalid = int((frame["state"] == "invalid").sum())
    console.print(f"{len(frame) - 1} candidates: {stopped} stopped early, {invalid} invalid, "
                  f"{result.search.simulated_runs:,} runs simulated (seed {result.search.settings.seed})",
                  highlight=False)
    for note in result.notes:
        console.print(f"note: {note}", highlight=False)
    if result.confirmation is not None and result.tuned is not None:
        conf = RichTable(title=f"Chosen (#{result.chosen.number}) vs yours on {result.confirmation.runs:,} fresh runs "
                               f"(seed {result.confirmation.seed})", title_justify="left")
        conf.add_column("figure", no_wrap=True)  # the figure's name whole; its numbers wrap at the bracket
        for name in (result.search.start.spec.name, result.tuned.name, "chosen - yours (paired)", "intervals"):
            conf.add_column(name, overflow="fold")
        for row in confirmation_rows(result):
            conf.add_row(*row)
        console.print(conf)
    console.print(summary_sentence(result), highlight=False)
    for what, path in out_paths.items():
        console.print(f"{what}: {path}", highlight=False)
