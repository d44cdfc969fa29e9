"""The report as text (reports.document): reasons said once, the release's failures as the
headline, availability beside DORA, censored recovery times shown for what they are."""

from __future__ import annotations

import html
import math
import re

import pytest

from rolloutlab.reports import document
from rolloutlab.reports.document import build_report, format_share, render_html, render_markdown
from rolloutlab.reports.dora import NO_RELEASE_COLUMNS, DoraMetric
from rolloutlab.reports.tiers import Tier
from tests.report_tables import standard_like


@pytest.fixture(scope="module")
def standard_report():
    return build_report(standard_like(60))


def _text(report) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", render_html(report)))


def _table(report, section_prefix: str, index: int = 0) -> document.Table:
    (section,) = [s for s in report.sections if s.title.startswith(section_prefix)]
    return section.tables[index]


def test_a_missing_figures_reason_is_said_once(standard_report):
    """Deployment frequency is n/a for every strategy: each cell refers to one note, and the note is written once."""
    table = _table(standard_report, "DORA metrics")
    column = table.columns.index("deployment frequency")
    cells = {row[column] for row in table.rows}
    assert cells == {"n/a (note 1)"}
    assert table.notes[0].startswith("fewer than two deployments at distinct times")
    assert _text(standard_report).count("fewer than two deployments at distinct times") == 1
    assert len(table.notes) == len(set(table.notes))


def test_notes_are_rendered_under_their_table_in_html_and_markdown(standard_report):
    """Both renderings list a table's notes right after it, numbered as the cells refer to them."""
    page = render_html(standard_report)
    assert '<ol class="notes"><li>fewer than two deployments' in page
    markdown = render_markdown(standard_report)
    assert "\n1. fewer than two deployments at distinct times" in markdown


def test_the_release_caused_failures_lead_the_impact_table(standard_report):
    """The impact table shows failures caused by the release first, then the total with the baseline."""
    table = _table(standard_report, "DORA metrics", 1)
    assert table.columns[1:3] == ["failed requests caused by the release, mean",
                                  "failed requests in total, mean (baseline included)"]
    by_strategy = {row[0]: row for row in table.rows}
    assert not by_strategy["rolling"][1].startswith("n/a") and not by_strategy["rolling"][2].startswith("n/a")


def test_an_old_table_without_release_columns_says_so_once_and_shows_the_total():
    """A table without release_failed_requests shows the total and says why the release's share is missing, once."""
    report = build_report(standard_like(60, release_columns=False, slo=False))
    assert _text(report).count(NO_RELEASE_COLUMNS) == 1
    table = _table(report, "DORA metrics", 1)
    assert {row[1] for row in table.rows} == {"n/a (note 1)"} and table.notes[0] == NO_RELEASE_COLUMNS
    assert all(not row[2].startswith("n/a") for row in table.rows)


def test_availability_and_error_budget_are_shown_beside_dora(standard_report):
    """A section after DORA's gives each strategy's availability and error budget burned, under the SLO it states."""
    titles = [s.title for s in standard_report.sections]
    assert titles.index("Availability and error budget: standard (sim)") == titles.index("DORA metrics: standard (sim)") + 1
    section = standard_report.sections[1]
    assert any("99.9% of requests succeed over 30 days" in p for p in section.paragraphs)
    assert any("release_failed_requests / ((1 - SLO objective)" in p for p in section.paragraphs)
    table = section.tables[0]
    assert [row[0] for row in table.rows] == ["blue-green", "canary", "rolling"]
    assert table.columns[1:3] == ["availability over the window", "error budget burned per deployment, mean"]
    rolling = table.rows[2]
    assert rolling[1].startswith("99.") and "[" in rolling[1] and not rolling[2].startswith("n/a")
    metrics = set(standard_report.summary["metric"])
    assert {"availability", "error_budget_burn_mean", "deployments_per_budget"} <= metrics


def test_a_recovery_time_beyond_the_window_is_written_so_with_its_censored_count():
    """Rolling leaving most incidents unrestored reads "> …", tier low, and how many were censored."""
    report = build_report(standard_like(60, unrestored=9))
    table = _table(report, "DORA metrics")
    rolling = {row[0]: row for row in table.rows}["rolling"]
    cell = rolling[table.columns.index("recovery time median")]
    assert cell.startswith(">") and "· low" in cell and "9 of 12 censored" in cell


@pytest.mark.parametrize(
    ("metric", "expected"),
    [(DoraMetric(0.9990007, 0.9989982, 0.9990036, 300, "fraction"), "99.90007%"),
     (DoraMetric(3.19e-05, 2.46e-05, 3.91e-05, 300, "fraction"), "0.0032%"),
     (DoraMetric(0.21, 0.168, 0.26, 300, "fraction"), "21.0%"),
     (DoraMetric(0.0, 8.7e-17, 0.013, 300, "fraction"), "0.0%"),
     (DoraMetric(-5.0e-07, -2.5e-06, 1.3e-06, 300, "fraction"), "-0.00005%")],
    ids=["availability near three nines", "a tiny budget burn", "a change failure rate", "zero with float noise",
         "a burn below zero by chance"],
)
def test_shares_get_the_decimals_their_interval_needs(metric, expected):
    """A share has as many decimals as it takes to tell its interval's ends apart, never an exponent."""
    assert format_share(metric.value, metric) == expected
    assert "e" not in format_share(metric.low, metric)


def test_definitions_name_each_metric_once_and_rework_has_one_note(standard_report):
    """Definitions do not repeat the metric's name ("Deployment frequency: Deployment frequency"), and the
    tier table says once that rework has no tiers."""
    text = _text(standard_report)
    assert "Deployment frequency: Deployment frequency" not in text
    (section,) = [s for s in standard_report.sections if s.title.startswith("Definitions")]
    tiers = section.tables[0]
    rework = next(row for row in tiers.rows if row[0] == "deployment rework rate")
    assert set(rework[1:]) == {"none (note 1)"} and len(tiers.notes) == 1
    assert text.count("introduced in DORA 2024 without published tiers") == 1


def test_a_metric_cell_without_notes_still_says_why():
    """Outside a table (no notes to refer to) an n/a cell gives its reason inline."""
    cell = document.format_metric(DoraMetric(None, None, None, 0, "s", None, "no change failures"))
    assert cell == "n/a (no change failures)"
    low = document.format_metric(DoraMetric(math.inf, 300.0, math.inf, 10, "s", Tier.LOW, "", 6, 1740.0))
    assert low == ">29m00s [5m00s, >29m00s] · low (6 of 10 censored at the window's end)"


def test_a_deployment_log_alone_gets_its_dora_section_and_no_charts_of_requests_it_lacks():
    """A report of a deployment log alone builds: DORA and definitions, no request or cost charts to leave blank."""
    from pathlib import Path

    from rolloutlab.reports.deploy_log import load_deploy_log

    log = load_deploy_log(Path(__file__).parent / "fixtures" / "logs" / "team.csv")
    report = build_report(log)
    assert [s.title for s in report.sections] == ["DORA metrics: Deployment log: checkout (log)",
                                                  "Definitions and performance tiers"]
    assert all(not s.images for s in report.sections)
    table = _table(report, "DORA metrics")
    cell = table.rows[0][table.columns.index("recovery time median")]
    assert "1 of 3 censored" in cell
