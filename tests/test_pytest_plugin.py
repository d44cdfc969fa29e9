"""The pytest plugin: `pytest scenarios/` checks scenario files as tests."""

from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import rolloutlab.workflows.check  # noqa: F401 - loaded here: numpy cannot be imported again inside pytester's in-process runs
from rolloutlab.workflows import pytest_plugin

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "check" / "scenarios"
OPTIONS = ("-p", "no:cacheprovider", "--rolloutlab-runs", "30", "--rolloutlab-executor", "serial")


def test_the_plugin_is_registered_as_a_pytest11_entry_point():
    """Installing rolloutlab registers the plugin, so `pytest` loads it without -p."""
    plugins = {e.name: e.value for e in importlib.metadata.entry_points(group="pytest11")}
    assert plugins.get("rolloutlab") == "rolloutlab.workflows.pytest_plugin"


def test_scenario_files_become_items_with_the_checks_verdicts(pytester):
    """Each strategy x expectation of a scenario file is one test; failures read as
    `rolloutlab check` prints them (file, line, verdict, measured value, by how much)."""
    shutil.copy(FIXTURES / "failing.yaml", pytester.path / "failing.yaml")
    result = pytester.runpytest(*OPTIONS, "-v")
    result.assert_outcomes(passed=3, failed=3)
    result.stdout.fnmatch_lines([
        "*failing.yaml::canary?change_failure_rate >= 50%? PASSED*",
        "*failing.yaml::canary?failed_requests.mean <= 1? FAILED*",
        "*failing.yaml:35: failing-on-purpose: canary: failed_requests.mean <= 1: violated",
        "measured * (95% BCa bootstrap, n=30 deployments): the estimate breaks <= 1 by *",
        "*failing.yaml:34: failing-on-purpose: rolling: detected_within.median <= 10s: violated",
    ])
    assert "Traceback" not in result.stdout.str()


def test_a_folder_with_strategy_files_collects_only_scenarios(pytester):
    """`pytest folder/` collects the scenario files under it; the strategy file beside
    them, and YAML without expectations, are no tests."""
    shutil.copytree(FIXTURES, pytester.path / "scenarios")
    (pytester.path / "scenarios" / "failing.yaml").unlink()
    (pytester.path / "scenarios" / "baseline.yaml").write_text("name: baseline\nexpect: []\n")
    (pytester.path / "scenarios" / "manifest.yaml").write_text("apiVersion: v1\nkind: ConfigMap\n")
    result = pytester.runpytest(*OPTIONS, "scenarios")
    result.assert_outcomes(passed=5)


def test_a_bad_scenario_file_is_a_collection_error_naming_file_line_and_field(pytester):
    """A scenario file that does not load is reported as its own collection error, in
    one line, without a traceback."""
    pytester.makefile(".yaml", bad="name: x\nexpect:\n  - {for: canary, assert: 'mttr.p100 <= 5m'}\n")
    result = pytester.runpytest(*OPTIONS)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*bad.yaml:3: expect[[]0[]].assert: cannot read expectation 'mttr.p100 <= 5m'*"])
    assert "Traceback" not in result.stdout.str()


def test_options_come_from_the_ini_file(pytester):
    """rolloutlab_runs and rolloutlab_executor in the ini file set the runs: 5 runs are
    too few to bound the fixture's medians (unproven), 30 are enough."""
    shutil.copy(FIXTURES / "passing.yaml", pytester.path)
    shutil.copytree(FIXTURES / "strategies", pytester.path / "strategies")
    pytester.makeini("[pytest]\nrolloutlab_runs = 5\nrolloutlab_executor = serial\n")
    few = pytester.runpytest("-p", "no:cacheprovider")
    few.assert_outcomes(passed=3, failed=2)
    few.stdout.fnmatch_lines(["*the 95% upper bound lies beyond the longest time observed*"])
    enough = pytester.runpytest("-p", "no:cacheprovider", "--rolloutlab-runs", "30")
    enough.assert_outcomes(passed=5)


def test_the_plugin_imports_neither_hypothesis_nor_the_simulator():
    """Loading the plugin (every pytest run in an environment with rolloutlab) imports no
    test-only dependency and not the simulator: both wait for a scenario file."""
    code = ("import sys, rolloutlab.workflows.pytest_plugin; "
            "print(sorted(m for m in ('hypothesis', 'rolloutlab.sim', 'scipy', 'pandas', 'pydantic', 'rolloutlab.scenarios.schema') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_our_own_test_run_collects_no_scenario_files():
    """The only YAML files with expectations under tests/ are the fixtures, which
    tests/conftest.py keeps out of collection (they fail on purpose), and pytest's
    testpaths do not include scenarios/: the library is not simulated by our own run."""
    import tomllib

    collected = [p for p in (ROOT / "tests").rglob("*.y*ml") if pytest_plugin._has_expectations(p)]
    assert collected and all(p.is_relative_to(ROOT / "tests" / "fixtures") for p in collected)
    conftest: dict = {}
    exec((ROOT / "tests" / "conftest.py").read_text(), conftest)
    assert "fixtures" in conftest["collect_ignore"]
    ini = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert ini["testpaths"] == ["tests"]
