"""``rolloutlab compare`` and ``simulate``: run strategies on a scenario over many seeded
runs, summarise each with its confidence intervals, print the comparison, write the
results table and the report.

Defaults are defined once, in ``workflows.defaults``: how many runs (``DEFAULT_RUNS``;
``check`` has its own smaller ``CHECK_RUNS``), which seed (``choose_seed``: the command's,
else the scenario's ``seed:``, else ``DEFAULT_SEED``) and which strategies (the scenario's ``strategies:``,
whose default is ``scenarios.schema.DEFAULT_STRATEGIES``). A notebook calls
``simulate_many`` (``rolloutlab.simulate_many``) for the table alone.

The printed table fits a 100-column terminal: headers are short and break between words,
cells break at their spaces, and no strategy name or header word is cut.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table
from rich.text import Text

from rolloutlab.errors import InputError
from rolloutlab.results.formatting import format_figure
from rolloutlab.results.statistics import (
    CONFIDENCE,
    FIGURE_KINDS,
    FIGURE_METHODS,
    REGION_FIGURES,
    StrategySummary,
    summarize,
)
from rolloutlab.scenarios.schema import (
    ALL_STRATEGIES,
    DEFAULT_STRATEGIES,
    Scenario,
    bundled_scenario,
    is_strategy_path,
)
from rolloutlab.sim.run import FIDELITIES
from rolloutlab.strategies.files import LIBRARY_DIR, bundled_strategy_names, load_strategy, resolve_strategy_path
from rolloutlab.strategies.spec import StrategySpec
from rolloutlab.strategies.yaml_input import YamlDocument, format_field_path, parse_yaml_file, validate_document
from rolloutlab.workflows.defaults import (
    CHECK_RUNS,
    DEFAULT_RUNS,
    DEFAULT_SCENARIO,
    DEFAULT_SEED,
    RUNS_PER_MONTH,
)

__all__ = [
    "CHECK_RUNS",
    "DEFAULT_RUNS",
    "DEFAULT_SCENARIO",
    "DEFAULT_SEED",
    "DEFAULT_STRATEGIES",
    "Comparison",
    "ScenarioFile",
    "choose_seed",
    "comparison_json",
    "load_scenario_file",
    "load_strategy_arg",
    "render_comparison",
    "resolve_scenario_strategies",
    "run_comparison",
    "simulate_many",
]

Say = Callable[[str], None]


def choose_seed(seed: int | None, scenario: Scenario) -> int:
    """The root seed of a batch: the one asked for, else the scenario's, else ``DEFAULT_SEED``."""
    if seed is not None:
        return seed
    return scenario.seed if scenario.seed is not None else DEFAULT_SEED


# ------------------------------------------------------------------------- loading


@dataclass(frozen=True)
class ScenarioFile:
    """A scenario loaded from its file, with the document (for lines) and the path (for the
    strategy files it names, relative to it)."""

    scenario: Scenario
    path: Path
    document: YamlDocument


def load_scenario_file(name_or_path: str | os.PathLike[str]) -> ScenarioFile:
    """A scenario file, or a bundled scenario by name (``standard``, ``error-spike``).

    Bad input raises ``InputError`` naming the file, line and field."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml") and not path.exists():
        path = bundled_scenario(str(name_or_path))
    documents = parse_yaml_file(path)
    if len(documents) != 1:
        raise InputError(str(path), f"expected exactly one YAML document, found {len(documents)}",
                         line=documents[1].start_line if len(documents) > 1 else None)
    return ScenarioFile(validate_document(documents[0], Scenario), path, documents[0])


def resolve_scenario_strategies(loaded: ScenarioFile) -> list[StrategySpec]:
    """The strategies a scenario's ``strategies:`` names: bundled names, or files relative
    to the scenario file. A missing file or two strategies with one name is an
    ``InputError`` on the entry's line."""
    doc = loaded.document
    strategies: list[StrategySpec] = []
    first_with_name: dict[str, int] = {}
    for i, entry in enumerate(loaded.scenario.strategies):
        where = ("strategies", i)
        if is_strategy_path(entry):
            file = loaded.path.parent / entry
            if not file.is_file():
                raise _entry_error(doc, where, f"no strategy file {entry!r} (looked for {file})")
            spec = load_strategy(file)
        else:  # a bundled name (the schema checked it), whatever files the working folder holds
            spec = load_strategy(LIBRARY_DIR / f"{entry}.yaml")
        if spec.name in first_with_name:
            raise _entry_error(doc, where, f"strategy name {spec.name!r} is already used by strategies"
                                           f"[{first_with_name[spec.name]}]; names label the results")
        first_with_name[spec.name] = i
        strategies.append(spec)
    return strategies


def _entry_error(doc: YamlDocument, where: tuple, message: str) -> InputError:
    return InputError(doc.file, message, line=doc.line_of(where), field=format_field_path(where, doc.data))


def load_strategy_arg(name_or_path: str, *, note: Say | None = None, warn: Say | None = None) -> StrategySpec:
    """A strategy by bundled name or file; a config of a system ``rolloutlab import`` reads
    (an Argo Rollout, a Flagger Canary, a Spinnaker pipeline, a CodeDeploy deployment
    group, ...) is imported on the fly (``note`` hears that it was, ``warn`` each import
    warning)."""
    from rolloutlab.strategies.importers import import_manifest
    from rolloutlab.strategies.importers.sources import SOURCES

    path = resolve_strategy_path(name_or_path)
    docs = parse_yaml_file(path)
    if any(source.detects(d.data) for d in docs for source in SOURCES):
        result = import_manifest(path)
        if note is not None:
            note(f"imported {path} ({result.source})")
        for warning in result.warnings:
            if warn is not None:
                warn(warning)
        return result.spec
    return load_strategy(path)


def check_regions_fit(loaded: ScenarioFile, strategies: Sequence[StrategySpec]) -> None:
    """A strategy's waves must name exactly the scenario's regions: an ``InputError`` on
    the scenario's ``regions`` (or ``name``) line otherwise, before anything runs."""
    from rolloutlab.scenarios.regions import waves_for

    for spec in strategies:
        try:
            waves_for(loaded.scenario, spec)
        except ValueError as error:
            where = ("regions",) if loaded.scenario.regions else ("name",)
            raise _entry_error(loaded.document, where, str(error)) from None


def _strategies_of(loaded: ScenarioFile, names: Sequence[str] | None, note: Say | None,
                   warn: Say | None) -> list[StrategySpec]:
    strategies = _named_strategies(loaded, names, note, warn)
    check_regions_fit(loaded, strategies)
    return strategies


def _named_strategies(loaded: ScenarioFile, names: Sequence[str] | None, note: Say | None,
                      warn: Say | None) -> list[StrategySpec]:
    if names is None:
        return resolve_scenario_strategies(loaded)
    if not names:
        raise InputError("--strategies", "name at least one strategy")
    if list(names) == [ALL_STRATEGIES]:  # every bundled technique side by side
        names = bundled_strategy_names()
    strategies = [load_strategy_arg(name, note=note, warn=warn) for name in names]
    labels = [s.name for s in strategies]
    if len(set(labels)) != len(labels):
        raise InputError(",".join(names), f"two strategies share a name ({', '.join(labels)}); names label the results")
    return strategies


# ------------------------------------------------------------------------- running


def simulate_many(
    scenario: Scenario | str | os.PathLike[str],
    strategies: Sequence[StrategySpec | str] | None = None,
    runs: int = DEFAULT_RUNS,
    seed: int | None = None,
    executor: str = "serial",
    *,
    fidelity: str = "fast",
    progress: bool = False,
) -> pd.DataFrame:
    """The results table of ``runs`` seeded runs of each strategy on ``scenario``.

    ``scenario`` is a loaded ``Scenario``, a scenario file or a bundled name;
    ``strategies`` are specs, bundled names or files, default the scenario's
    ``strategies:``. Run ``i`` is the same release for every strategy (common random
    numbers), so same arguments give the same table bit for bit, whatever the executor.
    A scenario with ``history:`` gives one row per deployment.
    """
    from rolloutlab.sim.montecarlo import run_many

    loaded: ScenarioFile | None = None
    if not isinstance(scenario, Scenario):
        loaded = load_scenario_file(scenario)
        scenario = loaded.scenario
    if strategies is None:
        if loaded is not None:
            specs = resolve_scenario_strategies(loaded)
        else:  # a scenario built in memory: its strategies: must be bundled names
            specs = [load_strategy_arg(entry) for entry in scenario.strategies]
    else:
        specs = [s if isinstance(s, StrategySpec) else load_strategy_arg(s) for s in strategies]
    if fidelity not in FIDELITIES:
        raise InputError("--fidelity", f"must be one of {', '.join(FIDELITIES)}, not {fidelity!r}")
    options: dict[str, Any] = {}
    if scenario.history is not None:
        from rolloutlab.sim.history import simulate_history  # one row per deployment

        options["run_fn"] = simulate_history
    try:
        return run_many(scenario, specs, runs, choose_seed(seed, scenario), executor=executor,
                        fidelity=fidelity, progress=progress, **options)
    except OSError as error:  # e.g. a dask:// address nobody answers at
        raise InputError(executor, f"the executor could not be reached: {error}") from None


@dataclass
class Comparison:
    """One ``compare`` or ``simulate``: what ran, its table, its figures, what was written."""

    scenario: Scenario
    strategies: list[StrategySpec]
    runs: int
    seed: int
    results: pd.DataFrame
    summaries: list[StrategySummary]
    title: str
    written: dict[str, Path] = field(default_factory=dict)
    """results.csv, results.parquet and, with the report, report.html, report.md, summary.csv."""
    month: pd.DataFrame | None = None
    """The companion history's rows (``history=``), also in the results table and the report."""
    month_scenario: Scenario | None = None


def run_comparison(
    scenario: str | os.PathLike[str],
    strategies: Sequence[str] | None = None,
    *,
    runs: int = DEFAULT_RUNS,
    seed: int | None = None,
    executor: str = "process",
    fidelity: str = "fast",
    out_dir: Path = Path("out"),
    report: bool = True,
    progress: bool = False,
    note: Say | None = None,
    warn: Say | None = None,
    history: str | os.PathLike[str] | None = None,
) -> Comparison:
    """Everything ``compare`` and ``simulate`` do but printing: load, run, write the table
    (and the report with its timelines), summarise. ``strategies`` None means the
    scenario's ``strategies:``. Bad input raises ``BadInput``, a crashed run ``RunFailed``.

    ``history`` names a scenario with a ``history:`` section played beside the comparison
    with the same strategies and seed (one history per ``RUNS_PER_MONTH`` runs, at least
    one): its rows join the results table and the report, whose DORA section then has the
    metrics a single release cannot give (deployment frequency, lead time, rework rate)."""
    from rolloutlab.results.table import write_results

    loaded = load_scenario_file(scenario)
    specs = _strategies_of(loaded, strategies, note, warn)
    if fidelity not in FIDELITIES:
        raise InputError("--fidelity", f"must be one of {', '.join(FIDELITIES)}, not {fidelity!r}")
    month = None
    if history is not None:
        month = load_scenario_file(history)
        if month.scenario.history is None:
            raise InputError(str(history), "has no history: section to play beside the comparison")
    chosen = choose_seed(seed, loaded.scenario)
    df = simulate_many(loaded.scenario, specs, runs, chosen, executor, fidelity=fidelity, progress=progress)
    month_rows = None
    if month is not None:
        month_rows = simulate_many(month.scenario, specs, month_runs(runs), chosen, executor, fidelity=fidelity,
                                   progress=progress)
    table = df if month_rows is None else pd.concat([df, month_rows], ignore_index=True)
    _ensure_folder(out_dir)
    csv_path, parquet_path = write_results(table, out_dir / "results")
    names = ", ".join(s.name for s in specs)
    comparison = Comparison(loaded.scenario, specs, runs, chosen, df, summarize(df),
                            title=f"{names} on {scenario}",
                            written={"csv": csv_path, "parquet": parquet_path},
                            month=month_rows, month_scenario=None if month is None else month.scenario)
    if report:
        from rolloutlab.reports.document import build_report, write_report
        from rolloutlab.results.timeline import write_timelines
        from rolloutlab.sim.timelines import record_timelines

        timelines = record_timelines(loaded.scenario, specs, df, chosen) if loaded.scenario.history is None else []
        write_timelines(timelines, out_dir)
        comparison.written.update(write_report(build_report(table, timelines, None), out_dir))
    return comparison


def month_runs(runs: int) -> int:
    """Histories played beside a comparison of ``runs`` runs: one per ``RUNS_PER_MONTH``, at least one."""
    return max(1, -(-runs // RUNS_PER_MONTH))


def _ensure_folder(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(str(out_dir), f"cannot use this as the output folder: {error.strerror or error}") from None


# ------------------------------------------------------------------------- printing

HEADERS: dict[str, str] = {
    "change_failure_rate": "change failure rate",
    "false_rollback_rate": "false rollbacks",
    "mttr_median": "time to restore median",
    "mttr_p90": "time to restore p90",
    "failed_requests_mean": "failed requests mean",
    "release_failed_requests_mean": "  caused by the release",
    "users_affected_mean": "users affected mean",
    "blast_radius_mean": "blast radius of bad releases (mean)",
    "failed_requests_p99": "failed requests p99",
    "rollout_duration_median": "rollout duration median",
    "detection_time_median": "detection time median",
    "cost_mean": "cost mean (replica·s)",
}
"""The label of each figure in the printed comparison. Failed requests caused by the
release (beyond the baseline the old version would have failed) sit under the total."""

_CAPTION = ("n/a: too few values. > t: beyond the longest time observed. (k cens.): k of the times had "
            "not ended when the window closed, censored there. Each figure's method: --json, or the report.")


def shown_figures(summaries: list[StrategySummary]) -> list[str]:
    """The figures a comparison prints: all, but a region-only figure (blast radius) only
    when some strategy has it."""
    return [key for key in FIGURE_KINDS
            if key not in REGION_FIGURES or any(s.figures()[key].n for s in summaries)]


def comparison_cells(summary: StrategySummary, keys: list[str] | None = None) -> list[str]:
    """One strategy's column of the printed comparison: its runs, then each figure."""
    figures = summary.figures()
    keys = list(FIGURE_KINDS) if keys is None else keys
    return [str(summary.runs), *(format_figure(figures[key], FIGURE_KINDS[key]) for key in keys)]


def render_comparison(summaries: list[StrategySummary], console: Console, title: str | None = None) -> None:
    """Print the figures, one row per figure and one column per strategy, each cell
    "value [low, high]" at 95% confidence.

    The table fits the console's width (100 columns in a narrow terminal): a row per
    figure keeps any number of figures within it; cells wrap at their spaces, every column
    is at least as wide as its longest word, so no strategy name, label or number is cut
    mid-word; and when even that is too wide (many strategies), the strategies are
    printed in several tables, each with the figure labels."""
    title = title or f"Strategy comparison ({int(CONFIDENCE * 100)}% confidence intervals)"
    keys = shown_figures(summaries)
    labels = ["figure", "runs", *(HEADERS[key] for key in keys)]
    columns = [[s.strategy, *comparison_cells(s, keys)] for s in summaries]
    groups = _fit_groups(labels, columns, console.width)
    for number, group in enumerate(groups, start=1):
        widths = _column_widths([labels, *(columns[i] for i in group)], console.width)
        part = f" ({number} of {len(groups)})" if len(groups) > 1 else ""
        table = Table(title=Text(title + part), caption=Text(_CAPTION) if number == len(groups) else None,
                      header_style="bold")
        table.add_column(Text(labels[0]), width=widths[0])
        for i, width in zip(group, widths[1:], strict=True):
            table.add_column(Text(columns[i][0]), justify="right", width=width)
        for row, label in enumerate(labels[1:], start=1):
            table.add_row(Text(label), *(Text(columns[i][row]) for i in group))
        console.print(table)


_CELL_OVERHEAD = 3
"""Characters a column takes beyond its text: one padding space each side and a border."""


def _longest_word(texts: list[str]) -> int:
    return max(len(word) for text in texts for word in text.split())


def _fits(columns: list[list[str]], width: int) -> bool:
    return sum(_longest_word(c) + _CELL_OVERHEAD for c in columns) + 1 <= width


def _fit_groups(labels: list[str], columns: list[list[str]], width: int) -> list[list[int]]:
    """Strategies in the order given, cut into as few tables as fit ``width`` beside the labels."""
    groups: list[list[int]] = [[]]
    for i in range(len(columns)):
        if groups[-1] and not _fits([labels, *(columns[j] for j in (*groups[-1], i))], width):
            groups.append([])
        groups[-1].append(i)
    # as many tables as needed, but even: 4 + 3 reads better than 6 + 1 (when it fits)
    size = -(-len(columns) // len(groups))
    even = [list(range(k, min(k + size, len(columns)))) for k in range(0, len(columns), size)]
    if len(even) == len(groups) and all(_fits([labels, *(columns[j] for j in g)], width) for g in even):
        return even
    return groups


def _column_widths(columns: list[list[str]], width: int) -> list[int]:
    """Text widths: each column its longest word, then the room left shared out, a
    character at a time, to the column whose longest line still needs it most."""
    widths = [_longest_word(c) for c in columns]
    natural = [max(len(text) for text in c) for c in columns]
    room = width - 1 - sum(w + _CELL_OVERHEAD for w in widths)
    while room > 0:
        need = [n - w for n, w in zip(natural, widths, strict=True)]
        i = max(range(len(widths)), key=lambda k: need[k])
        if need[i] <= 0:
            break
        widths[i] += 1
        room -= 1
    return widths


def comparison_json(summaries: list[StrategySummary]) -> dict[str, Any]:
    """The same figures as ``render_comparison``, as plain JSON data (floats, ints, None;
    an estimate beyond the window is null with ``beyond`` the longest time observed)."""
    return {
        "confidence": CONFIDENCE,
        "methods": dict(FIGURE_METHODS),
        "strategies": [
            {
                "strategy": s.strategy,
                "runs": s.runs,
                **{key: figure.as_dict() for key, figure in s.figures().items()},
            }
            for s in summaries
        ],
    }


def comparison_payload(comparison: Comparison) -> dict[str, Any]:
    """What ``--json`` prints: the run's settings, where the files went, and the figures."""
    written = comparison.written
    return {
        "scenario": comparison.scenario.name,
        "runs": comparison.runs,
        "seed": comparison.seed,
        "rows": len(comparison.results),
        "results": {"csv": str(written["csv"]), "parquet": str(written["parquet"])},
        "report": {k: str(v) for k, v in written.items() if k not in ("csv", "parquet")},
        **comparison_json(comparison.summaries),
    }


def print_comparison(comparison: Comparison, console: Console) -> None:
    """The table, then a line on the runs and the files written."""
    render_comparison(comparison.summaries, console, title=comparison.title)
    written = comparison.written
    history = f" ({len(comparison.results)} deployments)" if comparison.scenario.history is not None else ""
    console.print(Text(f"{comparison.runs} runs per strategy{history}, seed {comparison.seed}; "
                       f"results: {written['csv']} and {written['parquet']}"))
    if comparison.month is not None:
        render_month(comparison, console)
    if "html" in written:
        console.print(Text(f"report: {written['html']} (also {written['markdown']}, {written['summary']})"))


MONTH_FIGURES = (
    ("deployment_frequency", "deployments per day"),
    ("lead_time_median", "lead time median"),
    ("change_failure_rate", "change failure rate"),
    ("recovery_time_median", "recovery time median"),
    ("rework_rate", "rework rate"),
)
"""The five DORA metrics printed for the companion history, in DORA's order."""


def render_month(comparison: Comparison, console: Console) -> None:
    """The five DORA metrics of the companion history, each with its tier, one column per
    strategy (the report has their intervals and definitions)."""
    from rolloutlab.reports.document import format_metric
    from rolloutlab.reports.dora import compute_dora

    month = comparison.month
    assert month is not None and comparison.month_scenario is not None
    by_strategy = {d.strategy: d.metrics() for d in compute_dora(month)}
    names = [s.name for s in comparison.strategies if s.name in by_strategy]
    title = (f"DORA over {comparison.month_scenario.name}: {month_runs(comparison.runs)} histories "
             f"of {comparison.month_scenario.history.days} days, {len(month)} deployments")
    labels = ["DORA metric", *(label for _, label in MONTH_FIGURES)]
    columns = []
    for name in names:
        cells = []
        for key, _ in MONTH_FIGURES:
            metric = by_strategy[name][key]
            # value · tier only, so the table fits 100 columns; intervals are in the report
            cell = format_metric(replace(metric, low=None, high=None, censored=0))
            cells.append(cell + (f" ({metric.censored} cens.)" if metric.censored else ""))
        columns.append([name, *cells])
    # the comparison's layout: whole words, and several tables when the strategies do not fit
    groups = _fit_groups(labels, columns, console.width)
    for number, group in enumerate(groups, start=1):
        widths = _column_widths([labels, *(columns[i] for i in group)], console.width)
        part = f" ({number} of {len(groups)})" if len(groups) > 1 else ""
        table = Table(title=Text(title + part), title_style="bold")
        table.add_column(Text(labels[0]), width=widths[0])
        for i, width in zip(group, widths[1:], strict=True):
            table.add_column(Text(columns[i][0]), justify="right", width=width)
        for row, label in enumerate(labels[1:], start=1):
            table.add_row(Text(label), *(Text(columns[i][row]) for i in group))
        console.print(table)
    console.print(Text("95% intervals, definitions and tiers' sources: in the report.", style="dim"))
