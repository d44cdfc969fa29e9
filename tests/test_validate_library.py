"""``rolloutlab validate --all``: every library scenario, simulator vs live, in one table.

The choices (which strategy, which release, which order) and the coverage arithmetic are
tested on the real library and hand-made tables; the command runs for real on two library
scenarios (good-release and error-spike: the simulator, then demo-service processes behind
HAProxy, one short live run each), and names a scenario that cannot run live with why.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pandas as pd
import pytest

from rolloutlab.scenarios.schema.scenario import SCENARIO_LIBRARY_DIR
from rolloutlab.workflows.validate.library import (
    DEFAULT_STRATEGY,
    LIBRARY_STRATEGIES,
    choose_strategy,
    library_paths,
    load_library,
)
from rolloutlab.workflows.validate.library_rendering import COLUMNS, compute_coverage
from tests.outside_systems import needs_haproxy
from tests.test_validate import processes_marked

ROOT = Path(__file__).resolve().parent.parent


def rolloutlab(*args: str, env: dict | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rolloutlab.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


# --------------------------------------------------------------------------- the choices


def test_every_named_strategy_belongs_to_a_library_scenario_and_loads():
    """The strategy table names only library scenarios, and every scenario's strategy loads."""
    names = {p.stem for p in SCENARIO_LIBRARY_DIR.glob("*.yaml")}
    assert set(LIBRARY_STRATEGIES) <= names
    entries = load_library()
    assert {e.name for e in entries} == names
    for entry in entries:
        assert entry.strategy == LIBRARY_STRATEGIES.get(entry.name, DEFAULT_STRATEGY)


@pytest.mark.parametrize(("scenario", "strategy", "release"), [
    ("error-spike", "canary", "bad"),
    ("good-release", "canary", "good"),
    ("shadow-overload", "shadow-then-canary", "good"),
    ("flag-defect-behind-flag", "feature-flag", "bad"),
    ("small-segment", "header-canary", "bad"),
    ("three-regions", "canary-three-waves", "bad"),
], ids=["a defect: bad, the canary", "never defective: good", "mirroring: shadow then canary",
        "a defect behind a flag: the flag strategy", "a segment: header canary", "regions: waves"])
def test_each_scenario_runs_the_technique_it_is_about(scenario, strategy, release):
    (entry,) = load_library([scenario])
    assert (entry.spec.name, entry.release) == (strategy, release)


def test_strategy_and_release_options_apply_to_every_scenario():
    """--strategy and --release replace each scenario's own, for all of them."""
    entries = load_library(["error-spike", "good-release"], strategy="blue-green", release="good")
    assert {(e.spec.name, e.release) for e in entries} == {("blue-green", "good")}
    assert choose_strategy("small-segment", "rolling") == "rolling"


def test_shortest_window_first_so_a_bound_cuts_the_long_ones():
    durations = [e.scenario.duration for e in load_library()]
    assert durations == sorted(durations)
    assert [p.stem for p in library_paths(["error-*", "good-release"])] == ["error-spike", "good-release"]


# --------------------------------------------------------------------------- coverage


def _rows(*judgements: tuple[str, str, str]) -> pd.DataFrame:
    rows = [{**dict.fromkeys(COLUMNS, ""), "metric": m, "verdict": v, "calibrated_verdict": c}
            for m, v, c in judgements]
    return pd.DataFrame(rows, columns=list(COLUMNS))


@pytest.mark.parametrize(("judgements", "expected"), [
    ([("detection_time", "inside", ""), ("detection_time", "outside", ""), ("outcome", "inside", "")],
     {("scenario", "detection_time"): (1, 2, 0), ("scenario", "outcome"): (1, 1, 0), ("scenario", "all"): (2, 3, 0)}),
    ([("effective_weight@10", "outside", "inside"), ("effective_weight@25", "no prediction", "inside")],
     {("scenario", "effective_weight"): (0, 1, 1), ("scenario", "all"): (0, 1, 1),
      ("calibrated", "effective_weight"): (2, 2, 0), ("calibrated", "all"): (2, 2, 0)}),
    ([("", "", "")], {}),
], ids=["per metric and overall", "weight steps are one metric; calibrated apart; no prediction apart",
        "a scenario not run counts nowhere"])
def test_coverage_counts_inside_over_judged(judgements, expected):
    found = {(c.basis, c.metric): (c.inside, c.judged, c.no_prediction) for c in compute_coverage(_rows(*judgements))}
    assert found == expected


# --------------------------------------------------------------------------- the command


@pytest.mark.parametrize(("args", "message"), [
    ([], "give a scenario"),
    (["standard", "--all"], "not both"),
    (["standard"], "--strategy: required"),
    (["standard", "-s", "canary", "--only", "error-*"], "only with --all"),
    (["--all", "--only", "no-such-*"], "matches no library scenario"),
    (["--all", "--release", "drawn"], "--release must be one of bad, good"),
    (["--all", "-s", "no-such-strategy.yaml"], "no-such-strategy.yaml"),
], ids=["neither", "both", "a scenario without a strategy", "--only without --all", "a glob matching nothing",
        "a mixture release", "a strategy that does not load"])
def test_bad_options_exit_2_before_running_anything(args, message, tmp_path):
    result = rolloutlab("validate", *args, "--out", str(tmp_path / "out"), timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out" / "library.json").exists()


@needs_haproxy  # the command checks for HAProxy before it looks at any scenario's live form
def test_a_scenario_that_cannot_run_live_is_named_with_why(tmp_path):
    """A scenario with regions is listed as not run live, with the LiveUnsupported reason; nothing is judged."""
    out = tmp_path / "out"
    result = rolloutlab("validate", "--all", "--only", "three-regions", "--runs", "60", "--out", str(out),
                        "--no-report", timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    saved = json.loads((out / "library.json").read_text())
    (scenario,) = saved["scenarios"]
    assert scenario["scenario"] == "three-regions" and scenario["status"] == "cannot run live"
    assert "regions" in scenario["reason"]
    assert saved["coverage"] == []
    markdown = (out / "library.md").read_text()
    assert "## Not run live" in markdown and "three-regions (canary-three-waves, bad release): cannot run live" in markdown
    assert "| three-regions | canary-three-waves (bad) |  | cannot run live: a scenario with regions" in markdown
    table = pd.read_csv(out / "library.csv", keep_default_na=False)
    assert list(table["status"]) == ["cannot run live"] and "regions" in table["reason"][0]


@needs_haproxy
def test_validate_two_library_scenarios_live(tmp_path):
    """Two library scenarios simulated and run live: one table row per metric and live run, the coverage counts
    are the per-run checks each scenario's validation.json holds (before and after calibration), each scenario
    has its own folder, and nothing is left running."""
    mark = f"ROLLOUTLAB_TEST_MARK={uuid.uuid4().hex}"
    out = tmp_path / "out"
    result = rolloutlab("validate", "--all", "--only", "good-release", "--only", "error-spike", "--runs", "60",
                        "--live-runs", "1", "--time-scale", "30", "--replicas", "3", "--calibrate", "--max-minutes",
                        "6", "--out", str(out), env={"ROLLOUTLAB_TEST_MARK": mark}, timeout=420)
    print(result.stdout[-6000:], result.stderr[-3000:])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert processes_marked(mark) == [], "demo-service or HAProxy processes left running"

    saved = json.loads((out / "library.json").read_text())
    assert [(s["scenario"], s["strategy"], s["release"], s["status"]) for s in saved["scenarios"]] == [
        ("error-spike", "canary", "bad", "validated"), ("good-release", "canary", "good", "validated")]
    table = pd.read_csv(out / "library.csv", keep_default_na=False)
    counted: dict[tuple[str, str], list[int]] = {}
    for name in ("error-spike", "good-release"):
        own = json.loads((out / name / "validation.json").read_text())
        rows = table[table["scenario"] == name]
        assert set(rows["metric"]) >= {"detection_time", "failed_fraction", "rollout_duration", "outcome",
                                       "switch_failures"}
        for basis, column in (("scenario", "verdict"), ("calibrated", "calibrated_verdict")):
            checks = [c for c in own["checks"] if c["basis"] == basis]
            assert len(checks) == len(rows)  # one row per metric and live run, for each prediction
            assert sorted(rows[column]) == sorted(c["verdict"] for c in checks)
            tally = counted.setdefault((basis, "all"), [0, 0])
            tally[0] += sum(c["verdict"] == "inside" for c in checks)
            tally[1] += sum(c["verdict"] in ("inside", "outside") for c in checks)
        assert (out / name / "report.html").exists()
    assert table.loc[table["scenario"] == "good-release", "defect"].eq("none").all()
    overall = {(c["basis"], c["metric"]): [c["inside"], c["judged"]] for c in saved["coverage"] if c["metric"] == "all"}
    assert overall == counted
    markdown = (out / "library.md").read_text()
    assert "| error-spike | canary (bad) | detection_time |" in markdown and "## Coverage" in markdown
    assert "none: every scenario ran live" in markdown
    assert "| good-release | canary (good) |" in markdown  # the per-scenario summary
    assert "live judgements inside the 95% intervals" in result.stdout
    assert (out / "report.html").exists()
