"""The HTML report as a person sees it: opened in a real headless Chromium (Debian's
``chromium``, driven by Playwright), it loads with no console errors, every image
decodes, and a screenshot is not blank."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rolloutlab.reports.document import build_report, write_report
from rolloutlab.scenarios import bundled_scenario, load_scenario
from rolloutlab.sim.montecarlo import run_many
from rolloutlab.sim.timelines import record_timelines
from rolloutlab.strategies import load_strategy

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
playwright = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install -e '.[test]')")

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason="Debian's chromium is not installed (.ci/run installs it: apt-get install chromium)")

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def report_file(tmp_path_factory) -> Path:
    scenario = load_scenario(bundled_scenario("standard"))
    strategies = [load_strategy(n) for n in ("blue-green", "canary", "rolling")]
    df = run_many(scenario, strategies, 40, 1, executor="serial", progress=False)
    timelines = record_timelines(scenario, strategies, df, 1)
    out = tmp_path_factory.mktemp("report")
    return write_report(build_report(df, timelines), out)["html"]


def test_report_opens_cleanly_in_chromium(report_file, tmp_path):
    """The page loads offline with no console error, every image decodes, and a screenshot shows something."""
    errors: list[str] = []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("requestfailed", lambda req: errors.append(f"request failed: {req.url}"))
            page.goto(report_file.as_uri(), wait_until="load")
            images = page.evaluate("""() => Array.from(document.images).map(img => ({
                complete: img.complete, width: img.naturalWidth, height: img.naturalHeight}))""")
            shot = tmp_path / "report.png"
            page.screenshot(path=str(shot), full_page=False)
        finally:
            browser.close()
    assert errors == []
    assert len(images) >= 5  # bars, ECDF, failed requests, Pareto, timelines
    assert all(i["complete"] and i["width"] > 0 and i["height"] > 0 for i in images), images
    import matplotlib.image

    pixels = matplotlib.image.imread(str(shot))
    assert pixels.std() > 0.02  # not a blank page
    assert pixels.shape[0] >= 800


def test_report_is_one_file_with_nothing_to_fetch(report_file):
    """report.html embeds its images and references nothing outside itself."""
    text = report_file.read_text()
    assert "data:image/png;base64," in text
    assert "src=\"http" not in text and "href=\"http" not in text and "<script" not in text


def test_report_reads_without_scrolling_sideways_and_says_each_reason_once(report_file):
    """In a 1280-pixel window nothing is wider than the page, every figure and table fits it, and the reason
    deployment frequency is missing is printed once, not in every strategy's cell."""
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(report_file.as_uri(), wait_until="load")
            sideways = page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
            too_wide = page.evaluate("""() => Array.from(document.querySelectorAll('img, table'))
                .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth).length""")
            text = page.inner_text("body")
        finally:
            browser.close()
    assert sideways <= 0 and too_wide == 0
    assert text.count("fewer than two deployments at distinct times") == 1
    assert text.count("n/a (note 1)") >= 3
