"""Every column a producer writes is declared in results.table, and the simulator fills the
columns that say what the release itself caused and what the scenario's SLO is."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import numpy as np
import pytest

from rolloutlab.results.table import COLUMNS, RESULT_COLUMNS
from rolloutlab.scenarios.release import run_seed_sequence
from rolloutlab.scenarios.schema import Scenario, bundled_scenario, load_scenario
from rolloutlab.sim.history import simulate_history
from rolloutlab.sim.run import simulate_run
from rolloutlab.strategies import load_strategy

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def standard() -> Scenario:
    return load_scenario(bundled_scenario("standard"))


def test_every_column_the_simulator_writes_is_declared(standard: Scenario) -> None:
    """A simulated row's columns, and a history row's, are all declared with their dtype."""
    row = simulate_run(standard, load_strategy("canary"), 0, run_seed_sequence(1, 0))
    assert set(row) <= set(COLUMNS), set(row) - set(COLUMNS)
    assert set(RESULT_COLUMNS) <= set(row)
    history = standard.model_copy(update={"history": Scenario.model_validate(
        {"name": "h", "history": {"days": 2, "deploys_per_day": 2}}).history})
    rows = simulate_history(history, load_strategy("rolling"), 0, run_seed_sequence(1, 0))
    assert rows and all(set(r) <= set(COLUMNS) for r in rows), set(rows[0]) - set(COLUMNS)


def test_every_column_the_live_runner_writes_is_declared() -> None:
    """The keys of the row live.session builds (a dict literal with "requests") are all declared."""
    tree = ast.parse((ROOT / "live" / "session.py").read_text())
    rows = [
        {key.value for key in node.keys if isinstance(key, ast.Constant)}
        for node in ast.walk(tree)
        if isinstance(node, ast.Dict) and any(isinstance(k, ast.Constant) and k.value == "requests" for k in node.keys)
    ]
    written = set().union(*rows)
    assert rows and set(RESULT_COLUMNS) - {"detected_by"} <= written
    assert written <= set(COLUMNS), written - set(COLUMNS)


def test_failures_caused_by_the_release_are_beyond_the_baseline(standard: Scenario) -> None:
    """baseline_failed_requests is requests x the baseline error rate of the service under
    test, and release_failed_requests the rest of failed_requests; a healthy release's is
    near zero (only chance), a defective one's is not."""
    rate = standard.service_under_test.baseline_error_rate
    seen = set()
    for run in range(12):
        row = simulate_run(standard, load_strategy("blue-green"), run, run_seed_sequence(3, run))
        assert row["baseline_failed_requests"] == row["requests"] * rate
        assert row["release_failed_requests"] == row["failed_requests"] - row["baseline_failed_requests"]
        if row["defect"] == "none":
            sd = math.sqrt(row["baseline_failed_requests"])  # Poisson noise of the baseline errors
            assert abs(row["release_failed_requests"]) < 5 * sd
        seen.add(row["defect"])
    assert seen >= {"none"}


def test_the_slo_is_recorded_on_every_row(standard: Scenario) -> None:
    """Without an SLO both SLO columns are NaN; with one, its objective and window in seconds."""
    without = standard.model_copy(update={"slo": None})
    row = simulate_run(without, load_strategy("canary"), 0, run_seed_sequence(1, 0))
    assert np.isnan(row["slo_objective"]) and np.isnan(row["slo_window"])
    data = standard.model_dump(by_alias=True, exclude_none=True)
    with_slo = Scenario.model_validate({**data, "slo": {"objective": 0.999, "window": "30d"}})
    row = simulate_run(with_slo, load_strategy("canary"), 0, run_seed_sequence(1, 0))
    assert (row["slo_objective"], row["slo_window"]) == (0.999, 30 * 86400.0)
