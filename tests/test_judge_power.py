"""Judge power curves (``rolloutlab judges``): rollouts driven by the controller with drawn
traffic, counted per judge, traffic level and defect size."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from rolloutlab.reports.judge_power_plot import judge_power_figure
from rolloutlab.reports.plots import figure_png
from rolloutlab.strategies.files import load_strategy
from rolloutlab.workflows.compare import load_scenario_file
from rolloutlab.workflows.judge_power import (
    BAD,
    GOOD,
    SEQUENTIAL,
    SWEEP_CALIBRATION,
    SWEEP_TRAFFIC,
    THRESHOLD,
    JudgeWorld,
    compute_crossing,
    compute_judge_power,
    compute_window_share,
    default_judges,
    judge_setup,
    simulate_cell,
)

ROOT = Path(__file__).resolve().parent.parent

NEAR_BASELINE = """\
name: canary-near-baseline
description: the bundled canary with its threshold just above the baseline error rate (0.1%)
analysisTemplates:
  - name: error-rate
    metrics:
      - name: error-rate
        interval: 30s
        successCondition: result < 0.0015
        failureLimit: 1
strategy:
  canary:
    analysis: {templates: [{templateName: error-rate}], startingStep: 1}
    steps:
      - setWeight: 10
      - pause: {duration: 2m}
      - setWeight: 25
      - pause: {duration: 2m}
      - setWeight: 50
      - pause: {duration: 2m}
"""


@pytest.fixture(scope="module")
def standard():
    loaded = load_scenario_file("standard")
    return loaded.scenario, JudgeWorld.of(loaded.scenario, str(loaded.path))


@pytest.fixture(scope="module")
def judges(standard):
    """The default judges, sized for the standard scenario's service."""
    _, world = standard
    return {j.kind: j.__class__(j.label, j.kind, j.spec.with_replicas(world.replicas)) for j in default_judges()}


@pytest.fixture
def near_baseline(tmp_path, standard):
    path = tmp_path / "near.yaml"
    path.write_text(NEAR_BASELINE)
    setup = judge_setup(load_strategy(path), str(path))
    return setup.__class__(setup.label, setup.kind, setup.spec.with_replicas(standard[1].replicas))


def cell(setup, world, requests_per_window, *, release=GOOD, added=0.0, runs=60, seed=7):
    share = compute_window_share(setup.spec, world)
    return simulate_cell(setup, world, share=share, requests_per_window=requests_per_window, added=added,
                         release=release, runs=runs, seed=seed, sweep=SWEEP_TRAFFIC)


def test_more_traffic_gives_the_sequential_judge_more_power(standard, judges):
    """With 500 canary requests per window the sequential judge catches the standard defect far
    more often than with 2: the two intervals do not overlap."""
    _, world = standard
    low = cell(judges[SEQUENTIAL], world, 2, release=BAD, added=world.defect_error_rate)
    high = cell(judges[SEQUENTIAL], world, 500, release=BAD, added=world.defect_error_rate)
    assert high["p_rollback_low"] > low["p_rollback_high"]
    assert high["time_median_s"] < 120  # caught within the first windows at 10%


def test_a_zero_effect_bad_release_is_caught_at_the_false_alarm_rate(standard, near_baseline):
    """A "bad" release that adds no errors is rolled back as often as a good one (independent
    draws, overlapping intervals), and that rate is far from 0 for a threshold near the baseline."""
    _, world = standard
    good = cell(near_baseline, world, 100, runs=150)
    zero = cell(near_baseline, world, 100, release=BAD, added=0.0, runs=150)
    assert good["p_rollback"] > 0.1 and zero["p_rollback"] > 0.1
    assert zero["p_rollback_low"] <= good["p_rollback_high"] and good["p_rollback_low"] <= zero["p_rollback_high"]


def test_a_threshold_near_the_baseline_rolls_back_more_good_releases_at_tiny_traffic(standard, near_baseline):
    """result < 0.0015 with a 0.1% baseline: one error in 100 requests fails a window, while
    100,000 requests a window measure the baseline's 0.1% too precisely to fail."""
    _, world = standard
    tiny = cell(near_baseline, world, 100)
    large = cell(near_baseline, world, 100_000)
    assert large["rollbacks"] == 0
    assert tiny["p_rollback_low"] > large["p_rollback_high"] - 0.06  # well apart
    assert tiny["rollbacks"] >= 10


def test_windows_without_canary_requests_roll_back_good_releases(standard, judges):
    """At one canary request per window, windows without any are analysis errors, and five in
    a row (consecutiveErrorLimit 4) abort the bundled canary: good releases rolled back for
    lack of data, not for errors."""
    _, world = standard
    row = cell(judges[THRESHOLD], world, 1)
    assert row["rollbacks"] > 0
    assert row["rollbacks_no_data"] == row["rollbacks"]


@pytest.mark.parametrize(
    ("points", "expected"),
    [
        ([(1000, 0.0), (100, 0.01), (10, 0.09)], 10 ** 1.5),
        ([(1000, 0.0), (100, 0.2), (10, 0.5)], 10 ** (3 - 1 * 0.05 / 0.2)),
        ([(1000, 0.0), (100, 0.01), (10, 0.02)], None),
        ([(1000, 0.3), (100, 0.5)], 1000.0),
    ],
    ids=["between-two-points", "just-below-the-largest", "never-passes", "already-at-the-most-traffic"],
)
def test_the_crossing_is_where_false_rollbacks_pass_the_level(points, expected):
    """Walking down from the most traffic, the first point above 5% and the one before it
    give the crossing by interpolation on log traffic."""
    rows = pd.DataFrame([{"release": GOOD, "sweep": SWEEP_TRAFFIC, "requests_per_window": w, "p_rollback": p}
                         for w, p in points])
    at = compute_crossing(rows, 0.05)
    assert at == pytest.approx(expected) if expected is not None else at is None


def test_the_same_seed_gives_the_same_table_and_the_calibration_matches_false_alarms(standard, judges):
    """Two computations with one seed agree bit for bit; the calibrated sequential judge rolls
    back no more good releases than the threshold judge at the scenario's traffic."""
    scenario, _ = standard
    chosen = [judges[THRESHOLD], judges[SEQUENTIAL]]
    kwargs = dict(runs=6, seed=3, traffic=(5, 200), effects=(0.01,), alphas=(0.01, 0.2))
    first = compute_judge_power(scenario, chosen, **kwargs)
    second = compute_judge_power(scenario, chosen, **kwargs)
    pd.testing.assert_frame_equal(first.table, second.table)
    assert first.answer == second.answer
    t = first.table
    calibrated = t[(t["sweep"] == SWEEP_CALIBRATION) & (t["alpha"] == first.answer.calibrated_alpha)]
    threshold_good = t[(t["judge_kind"] == THRESHOLD) & (t["release"] == GOOD) & t["scenario_traffic"]
                       & (t["sweep"] == SWEEP_TRAFFIC)]
    assert calibrated[calibrated["release"] == GOOD]["rollbacks"].iloc[0] <= threshold_good["rollbacks"].iloc[0]
    assert len(calibrated[calibrated["release"] == BAD]) == 1
    assert any("earlier" in s or "later" in s for s in first.answer.sentences)
    png = figure_png(judge_power_figure(first.table, title="judges", level=0.05))
    assert png.startswith(b"\x89PNG")


def rolloutlab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rolloutlab.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def test_judges_command_prints_the_table_and_writes_three_files(tmp_path):
    """`rolloutlab judges standard` prints a table within 100 columns and the answers, and
    writes judges.csv, judges.png and a judges.html with the chart inside it."""
    result = rolloutlab("judges", "standard", "--runs", "2", "--seed", "5", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    table = result.stdout.split("* the scenario's own traffic")[0]
    assert max(len(line) for line in table.splitlines()) <= 100
    assert "sequential (canary-sequential)" in result.stdout and "At " in result.stdout
    assert set(pd.read_csv(tmp_path / "judges.csv")["judge_kind"]) == {"threshold", "mannWhitney", "sequential"}
    assert (tmp_path / "judges.png").read_bytes().startswith(b"\x89PNG")
    assert "data:image/png;base64," in (tmp_path / "judges.html").read_text()


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["judges", "{tmp}/missing.yaml"], "missing.yaml"),
        (["judges", "{tmp}/broken.yaml"], "broken.yaml:2"),
        (["judges", "{tmp}/no-defect.yaml"], "release.defects"),
        (["judges", "standard", "--strategy", "{tmp}/missing-strategy.yaml"], "missing-strategy.yaml"),
    ],
    ids=["missing-scenario", "invalid-field", "no-error-rate-defect", "missing-strategy"],
)
def test_bad_input_exits_2_with_one_line(tmp_path, args, named):
    """Bad input exits 2 with one line naming the file (and line or field), never a traceback."""
    (tmp_path / "broken.yaml").write_text("name: broken\nduration: -5m\n")
    (tmp_path / "no-defect.yaml").write_text("name: quiet\nrelease:\n  defects:\n    - kind: latency\n")
    result = rolloutlab(*(a.format(tmp=tmp_path) for a in args), "--out", str(tmp_path / "out"))
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0], result.stderr
    assert "Traceback" not in result.stderr
