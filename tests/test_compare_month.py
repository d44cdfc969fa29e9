"""`rolloutlab compare` with no scenario named plays a month of the standard scenario's
deployments beside the comparison, so its report has all five DORA metrics with tiers."""

from __future__ import annotations

import pytest
import yaml
from rich.console import Console

from rolloutlab.reports.dora import compute_dora
from rolloutlab.scenarios.schema import bundled_scenario
from rolloutlab.workflows.compare import month_runs, render_month, run_comparison

FIVE = ("deployment_frequency", "lead_time_median", "change_failure_rate", "recovery_time_median", "rework_rate")


@pytest.fixture(scope="module")
def comparison(tmp_path_factory):
    out = tmp_path_factory.mktemp("month")
    return run_comparison("standard", ["canary", "rolling"], runs=10, seed=3, executor="serial",
                          out_dir=out, report=True, history="standard-month")


def test_the_month_is_the_standard_world_deployed_twice_a_day():
    """standard-month.yaml is standard.yaml plus a history: nothing else may drift apart."""
    standard = yaml.safe_load(bundled_scenario("standard").read_text())
    month = yaml.safe_load(bundled_scenario("standard-month").read_text())
    assert month.pop("history")["days"] == 30
    for key in ("name", "description"):
        standard.pop(key), month.pop(key)
    assert month == standard


def test_the_month_rows_join_the_table_and_give_all_five_dora_metrics(comparison):
    """The results table holds both scenarios; over the month every DORA metric has a value
    and each tiered one a tier (rework rate has no published tiers)."""
    table = comparison.written["csv"].read_text()
    assert "standard-month" in table and ",standard," in table
    month = comparison.month
    assert set(month["scenario"]) == {"standard-month"} and len(month) > 30
    for dora in compute_dora(month):
        metrics = dora.metrics()
        for key in FIVE:
            assert metrics[key].value is not None, (dora.strategy, key, metrics[key].note)
        assert all(metrics[k].tier is not None for k in FIVE if k != "rework_rate")
    assert comparison.summaries and {s.strategy for s in comparison.summaries} == {"canary", "rolling"}


def test_the_report_shows_the_month_dora_section(comparison):
    """The HTML report has a DORA section for the month with deployment frequency filled in."""
    html = comparison.written["html"].read_text()
    assert "standard-month" in html
    assert "/day" in html  # deployment frequency has a value, not n/a


def test_the_month_table_fits_100_columns(comparison):
    """The printed DORA table keeps every line within a 100-column terminal."""
    console = Console(width=100, record=True)
    render_month(comparison, console)
    text = console.export_text()
    assert "deployments per day" in text and "rework rate" in text
    assert all(len(line) <= 100 for line in text.splitlines())


@pytest.mark.parametrize("runs, histories", [(1, 1), (50, 1), (51, 2), (1000, 20)], ids=lambda x: str(x))
def test_one_history_per_fifty_runs(runs, histories):
    """The companion month plays one history per 50 runs of the comparison, at least one."""
    assert month_runs(runs) == histories


def test_a_history_without_history_section_is_refused(tmp_path):
    """--history naming a scenario with no history: section is bad input, not a silent skip."""
    from rolloutlab.errors import InputError

    with pytest.raises(InputError, match="no history"):
        run_comparison("standard", ["canary"], runs=2, executor="serial", out_dir=tmp_path, report=False,
                       history="standard")


@pytest.mark.parametrize("args, scenarios", [
    ([], {"standard", "standard-month"}),
    (["--history", "none"], {"standard"}),
    (["standard"], {"standard"}),
], ids=["no scenario named: the month beside it", "--history none skips it", "a scenario named: no month"])
def test_the_cli_plays_the_month_only_when_no_scenario_is_named(tmp_path, args, scenarios):
    """`rolloutlab compare` alone adds the month; naming a scenario or --history none does not."""
    import pandas as pd
    from typer.testing import CliRunner

    from rolloutlab import cli

    result = CliRunner().invoke(cli.app, ["compare", *args, "--runs", "2", "--executor", "serial", "--no-report",
                                          "--strategies", "rolling", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert set(pd.read_csv(tmp_path / "results.csv")["scenario"]) == scenarios
