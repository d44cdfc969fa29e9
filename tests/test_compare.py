"""Specification of workflows.compare: what `compare` and `simulate` run (the scenario's
strategies, the defaults defined once), the table they print (within 100 columns, words
whole, failures caused by the release beside the total), its JSON, and `simulate_many`."""

from __future__ import annotations

import io
import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal
from rich.console import Console

from rolloutlab.errors import InputError
from rolloutlab.results.formatting import format_figure
from rolloutlab.results.statistics import FIGURE_KINDS, REGION_FIGURES, Figure, StrategySummary, summarize
from rolloutlab.results.table import to_frame
from rolloutlab.scenarios.schema import DEFAULT_STRATEGIES, bundled_scenario, load_scenario
from rolloutlab.sim.montecarlo import run_many
from rolloutlab.workflows import defaults
from rolloutlab.workflows.compare import (
    HEADERS,
    choose_seed,
    comparison_json,
    render_comparison,
    run_comparison,
    simulate_many,
)


@pytest.fixture(scope="module")
def standard_table() -> pd.DataFrame:
    """30 runs of the three bundled strategies on the standard scenario."""
    return simulate_many(bundled_scenario("standard"), runs=30, seed=3)


def rendered(summaries: list[StrategySummary], width: int = 100) -> str:
    console = Console(width=width, record=True, file=io.StringIO(), color_system=None)
    render_comparison(summaries, console, title="comparison on standard")  # no strategy name in the title
    return console.export_text()


def assert_fits(text: str, width: int = 100) -> None:
    """Every line fits, and no table line was cropped (each ends on a border)."""
    for line in text.splitlines():
        assert len(line) <= width, line
        if line[:1] in "┏┃┡│└":
            assert line[-1] in "┓┃┩│┘", line


def header_names(text: str) -> list[str]:
    """The column headers of every table in the text."""
    return [cell.strip() for line in text.splitlines() if line.startswith("┃") for cell in line.strip("┃").split("┃")]


# ------------------------------------------------------------------------- the printed table


def test_the_table_fits_100_columns_with_words_whole(standard_table: pd.DataFrame) -> None:
    """At 100 columns every line fits, every strategy name and every figure label is printed
    whole on one line, and no cell word is cut (once "blue-gre/en", "change-f/ailure")."""
    text = rendered(summarize(standard_table))
    lines = text.splitlines()
    assert_fits(text)
    assert header_names(text) == ["figure", *DEFAULT_STRATEGIES]
    for key, label in HEADERS.items():
        # a region-only figure (blast radius) has no row when the scenario has no regions
        assert any(label.strip() in line for line in lines) is (key not in REGION_FIGURES), label
    for summary in summarize(standard_table):
        for key, f in summary.figures().items():
            if key in REGION_FIGURES:
                continue
            cell = format_figure(f, FIGURE_KINDS[key])
            for word in cell.split():
                assert word in text, (summary.strategy, cell, word)


def long_named_summaries(names: list[str]) -> list[StrategySummary]:
    """Summaries with the widest cells a figure can have, under the given names."""
    wide = Figure(math.inf, 12_345.0, math.inf, 1000, 999, 172_800.0)  # ">2d00h [3h25m45s, >2d00h] (999 cens.)"
    return [
        StrategySummary(name, 1000, *([Figure(0.123, 0.1, 0.15, 1000)] * 2), wide, wide,
                        *([Figure(-1234.5, -2345.6, 12_345.6, 1000)] * 2), *([Figure(0.123, 0.1, 0.15, 1000)] * 2),
                        Figure(-1234.5, -2345.6, 12_345.6, 1000), wide, wide,
                        Figure(123_456.0, 120_000.0, 130_000.0, 1000))
        for name in names
    ]


NINE = [f"canary-variant-{i}" for i in range(9)]


@pytest.mark.parametrize(("names", "tables"), [
    (["blue-green", "canary", "rolling"], 1),
    (["canary-sequential", "canary-latency", "canary-abort", "blue-green", "rolling"], 1),
    (NINE, 3),
], ids=["three bundled", "five long names", "nine strategies in three tables"])
def test_the_widest_cells_still_fit_100_columns(names: list[str], tables: int) -> None:
    """Censored figures beyond the window, negative amounts and long strategy names still
    fit 100 columns with every word whole; strategies that cannot sit side by side go
    into further tables, each with the figure labels, none left out."""
    summaries = long_named_summaries(names)
    text = rendered(summaries)
    assert_fits(text)
    assert [h for h in header_names(text) if h != "figure"] == names
    assert header_names(text).count("figure") == tables
    for word in format_figure(summaries[0].mttr_median, "duration").split():
        assert re.search(rf"(^|\s){re.escape(word)}(\s|$)", text, flags=re.MULTILINE), word


def test_failures_caused_by_the_release_sit_under_the_total(standard_table: pd.DataFrame) -> None:
    """The row after "failed requests mean" is the failures the release caused: for blue-green
    on the standard scenario (1,000 rps x 30 min x 0.1% baseline) almost all failures are
    baseline errors, so the release's share is a small part of the total."""
    text = rendered(summarize(standard_table))
    lines = text.splitlines()
    total = next(i for i, line in enumerate(lines) if "failed requests mean" in line)
    assert "caused by the release" in lines[total + 1]
    blue_green = next(s for s in summarize(standard_table) if s.strategy == "blue-green")
    assert blue_green.failed_requests_mean.value == pytest.approx(1800, rel=0.05)
    assert abs(blue_green.release_failed_requests_mean.value) < 0.1 * blue_green.failed_requests_mean.value


def test_json_has_the_same_numbers_as_the_table(standard_table: pd.DataFrame) -> None:
    """Every figure in the JSON, formatted as the table formats it, is that strategy's cell."""
    summaries = summarize(standard_table)
    data = json.loads(json.dumps(comparison_json(summaries), allow_nan=False))
    assert data["confidence"] == 0.95 and set(data["methods"]) == set(FIGURE_KINDS)
    text = rendered(summaries, width=400)
    for entry, summary in zip(data["strategies"], summaries, strict=True):
        figures = [Figure(**entry[key]) for key in FIGURE_KINDS]
        for figure, original in zip(figures, summary.figures().values(), strict=True):
            if original.value is not None and math.isfinite(original.value) and math.isfinite(original.high or 0):
                assert figure == original
        for key, kind in FIGURE_KINDS.items():
            assert format_figure(getattr(summary, key), kind) in text


def test_json_says_what_a_figure_beyond_the_window_exceeds() -> None:
    """An estimate beyond the window is null in the JSON (JSON has no infinity) with
    ``beyond`` the time it exceeds and the censored count, never dropped."""
    [summary] = long_named_summaries(["canary"])
    entry = comparison_json([summary])["strategies"][0]["mttr_median"]
    assert entry == {"value": None, "low": 12_345.0, "high": None, "n": 1000, "censored": 999, "beyond": 172_800.0}


# ------------------------------------------------------------------------- what runs


def test_simulate_many_is_the_public_api_and_the_monte_carlo() -> None:
    """`rolloutlab.simulate_many` gives the Monte Carlo's table for the same scenario,
    strategies, runs and seed, bit for bit."""
    import rolloutlab

    scenario = rolloutlab.load_scenario(rolloutlab.bundled_scenario("standard"))
    strategies = [rolloutlab.load_strategy(n) for n in ("canary", "rolling")]
    table = rolloutlab.simulate_many(scenario, strategies, runs=6, seed=4)
    expected = run_many(scenario, strategies, 6, 4, executor="serial", progress=False)
    assert_frame_equal(table, expected, check_exact=True)
    assert list(rolloutlab.summarize(table)[0].figures()) == list(FIGURE_KINDS)


def test_simulate_many_defaults_to_the_scenarios_strategies() -> None:
    """Without strategies, `simulate_many` runs the ones the scenario names (by name here)."""
    table = simulate_many("standard", runs=2, seed=1)
    assert list(pd.unique(table["strategy"])) == list(DEFAULT_STRATEGIES)
    assert simulate_many("standard", ["canary"], runs=2, seed=1)["strategy"].unique().tolist() == ["canary"]


def scenario_file(folder: Path, strategies: str, seed: str = "") -> Path:
    """A short scenario naming its strategies: a bundled one and a file beside it."""
    (folder / "mine.yaml").write_text(
        "name: mine\nstrategy:\n  canary:\n    steps: [{setWeight: 50}, {pause: {duration: 30s}}]\n")
    path = folder / "scenario.yaml"
    path.write_text(f"name: short\nduration: 5m\nservices: [{{name: web, replicas: 4}}]\ntraffic: {{rps: 20}}\n"
                    f"{seed}strategies: {strategies}\n")
    return path


def test_compare_honours_the_scenarios_strategies(tmp_path: Path) -> None:
    """With no strategies given, compare runs the scenario's `strategies:` (a bundled name
    and a file relative to the scenario), and its `seed:`."""
    path = scenario_file(tmp_path, "[rolling, mine.yaml]", seed="seed: 7\n")
    comparison = run_comparison(path, None, runs=3, executor="serial", out_dir=tmp_path / "out", report=False)
    assert [s.name for s in comparison.strategies] == ["rolling", "mine"]
    assert comparison.seed == 7 and set(comparison.results["seed"]) == {7}
    assert (tmp_path / "out" / "results.parquet").exists()
    given = run_comparison(path, ["canary"], runs=2, seed=2, executor="serial", out_dir=tmp_path / "o2", report=False)
    assert [s.name for s in given.strategies] == ["canary"] and given.seed == 2


def test_a_missing_strategy_file_is_bad_input_on_its_line(tmp_path: Path) -> None:
    """A `strategies:` entry naming a file that is not there is an InputError with the
    scenario file, the line and the field."""
    path = scenario_file(tmp_path, "[rolling, gone.yaml]")
    with pytest.raises(InputError) as error:
        run_comparison(path, None, runs=2, executor="serial", out_dir=tmp_path / "out", report=False)
    assert str(error.value).startswith(f"{path}:5: strategies[1]: no strategy file 'gone.yaml'")


def test_defaults_are_defined_once() -> None:
    """The seed falls back from the command to the scenario to DEFAULT_SEED; the CLI's run
    counts and check's are the ones in workflows.defaults."""
    import inspect

    from rolloutlab import cli
    from rolloutlab.workflows import check

    standard = load_scenario(bundled_scenario("standard"))
    assert choose_seed(None, standard) == (standard.seed if standard.seed is not None else defaults.DEFAULT_SEED)
    assert choose_seed(5, standard) == 5
    assert choose_seed(None, standard.model_copy(update={"seed": None})) == defaults.DEFAULT_SEED
    for command in (cli.compare, cli.simulate):
        assert inspect.signature(command).parameters["runs"].default == defaults.DEFAULT_RUNS
    assert check.DEFAULT_RUNS == defaults.CHECK_RUNS and check.DEFAULT_SEED == defaults.DEFAULT_SEED
    # compare's scenario argument defaults to None ("not named"), which means DEFAULT_SCENARIO
    # plus DEFAULT_MONTH beside it; the help says which scenario that is
    scenario = inspect.signature(cli.compare).parameters["scenario"]
    assert scenario.default is None
    import typer.main

    click_compare = typer.main.get_command(cli.app).commands["compare"]
    (argument,) = [p for p in click_compare.params if p.name == "scenario"]
    assert f"default: {defaults.DEFAULT_SCENARIO}" in argument.help


def test_fidelity_and_duplicate_names_are_bad_input(tmp_path: Path) -> None:
    """An unknown fidelity or two strategies with one name stop before anything runs."""
    with pytest.raises(InputError, match="--fidelity"):
        run_comparison("standard", ["canary"], runs=1, fidelity="exact", out_dir=tmp_path)
    with pytest.raises(InputError, match="share a name"):
        run_comparison("standard", ["canary", "canary"], runs=1, out_dir=tmp_path)


def test_results_of_a_comparison_keep_the_contract(standard_table: pd.DataFrame) -> None:
    """The table compare writes conforms to the contract, new columns included."""
    assert_frame_equal(to_frame(standard_table), standard_table)
    assert {"release_failed_requests", "baseline_failed_requests", "slo_objective", "slo_window"} <= set(standard_table)
    assert np.isfinite(standard_table["release_failed_requests"]).all()
