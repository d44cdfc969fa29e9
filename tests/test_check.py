"""`rolloutlab check`: scenario files in, a table, JUnit XML and an exit status out."""

from __future__ import annotations

import inspect
import io
import os
import re
import shutil
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from rich.console import Console

from rolloutlab.scenarios.schema import SCENARIO_LIBRARY_DIR
from rolloutlab.workflows.check import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_OK,
    find_scenario_files,
    load_check_target,
    load_check_targets,
    run_check_command,
)

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "check" / "scenarios"
FAILING = FIXTURES / "failing.yaml"
PASSING = FIXTURES / "passing.yaml"
RUNS = 30  # enough for the fixtures' medians, few enough to be quick


def check(*paths, **options) -> tuple[int, str, str]:
    """run_check_command in this process, serially; (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    options.setdefault("runs", RUNS)
    options.setdefault("executor", "serial")
    code = run_check_command([str(p) for p in paths], out=Console(file=out, width=200),
                             err=Console(file=err, width=200), **options)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def failing_junit(tmp_path_factory) -> tuple[int, str, ET.Element]:
    """The failing fixture checked once, with its JUnit file parsed."""
    path = tmp_path_factory.mktemp("junit") / "reports" / "check.xml"  # the folder does not exist yet
    code, out, _ = check(FAILING, junit=path)
    return code, out, ET.parse(path).getroot()


def test_a_failing_expectation_exits_1_and_says_which_and_by_how_much(failing_junit):
    """The fixture that fails on purpose exits 1; the output names file, line, strategy,
    expectation, verdict and the distance to the limit."""
    code, out, _ = failing_junit
    assert code == EXIT_FAILED
    assert "failing.yaml:35: failing-on-purpose: canary: failed_requests.mean <= 1: violated: measured " in out
    assert "the estimate breaks <= 1 by " in out
    assert "rolling: detected_within.median <= 10s: violated" in out
    assert "mttr.p99 <= 1h: unproven: measured 1m00s [1m00s, >1m00s]" in out  # 30 values cannot bound a p99
    assert "upper bound lies beyond the longest time observed" in out
    assert "1 scenarios, 6 expectations: 3 failed" in out


def test_junit_has_one_testcase_per_scenario_strategy_and_expectation(failing_junit):
    """testsuites > testsuite (one per scenario file) > testcase (strategy x expectation),
    with counts that add up and a <failure> for each expectation that does not hold."""
    _, _, root = failing_junit
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    cases = suite.findall("testcase")
    # 1 for all x 2 strategies + 3 for canary + 1 for rolling
    assert [(c.get("classname"), c.get("name")) for c in cases] == [
        ("failing-on-purpose.canary", "change_failure_rate >= 50%"),
        ("failing-on-purpose.canary", "detected_within.median <= 3m"),
        ("failing-on-purpose.canary", "failed_requests.mean <= 1"),
        ("failing-on-purpose.canary", "mttr.p99 <= 1h"),
        ("failing-on-purpose.rolling", "change_failure_rate >= 50%"),
        ("failing-on-purpose.rolling", "detected_within.median <= 10s"),
    ]
    failed = [c for c in cases if c.find("failure") is not None]
    assert [c.get("name") for c in failed] == ["failed_requests.mean <= 1", "mttr.p99 <= 1h",
                                               "detected_within.median <= 10s"]
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("6", "3", "0")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("6", "3", "0")
    assert suite.get("file").endswith("failing.yaml")
    assert [c.get("line") for c in cases] == ["32", "33", "35", "36", "32", "34"]


def test_junit_messages_carry_the_measured_value(failing_junit):
    """Every testcase says what was measured (system-out); a failure's message has the
    value, its interval and the verdict."""
    _, _, root = failing_junit
    cases = root.find("testsuite").findall("testcase")
    for case in cases:
        assert "measured " in case.findtext("system-out") or "no data" in case.findtext("system-out")
    failure = next(c for c in cases if c.get("name") == "failed_requests.mean <= 1").find("failure")
    assert failure.get("type") == "violated"
    assert failure.get("message").startswith("canary: failed_requests.mean <= 1: violated: measured ")
    assert "BCa bootstrap" in failure.get("message") and "n=30 deployments" in failure.get("message")
    props = {p.get("name"): p.get("value") for p in root.find("testsuite").find("properties")}
    assert props == {"runs": "30", "seed": "1", "confidence": "0.95", "strategies": "canary,rolling"}


def test_a_folder_of_passing_scenarios_exits_0_and_skips_strategy_files(tmp_path):
    """A folder is searched recursively; the strategy file a scenario refers to is not
    taken for a scenario; everything holding exits 0."""
    shutil.copytree(FIXTURES, tmp_path / "scenarios")
    (tmp_path / "scenarios" / "failing.yaml").unlink()
    code, out, err = check(tmp_path / "scenarios")
    assert code == EXIT_OK, out + err
    assert "1 scenarios, 5 expectations: all hold" in out
    assert "slow-canary" in out  # the strategy from the file ran


def test_the_seed_and_runs_make_the_check_reproducible():
    """The same seed gives the same figures; another seed other runs."""
    def figures(seed: int) -> str:
        return re.sub(r"\d+\.\ds\)", "", check(PASSING, seed=seed)[1])  # without the timings

    first, second, third = figures(7), figures(7), figures(8)
    assert first == second
    assert first != third


def test_the_report_folder_gets_an_html_report_led_by_the_expectations(tmp_path):
    """--report writes report.html (and the results table) with the expectations first."""
    code, out, _ = check(PASSING, report_dir=tmp_path / "report")
    assert code == EXIT_OK
    html = (tmp_path / "report" / "report.html").read_text()
    assert html.index("Expectations") < html.index("DORA")
    assert "detected_within.median &lt;= 5m" in html and "holds" in html
    assert (tmp_path / "report" / "results.parquet").exists()


def write(tmp_path: Path, text: str, name: str = "bad.yaml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


BAD_INPUT = [
    ("unknown-metric", "name: x\nexpect:\n  - mtbf <= 5m\n", "bad.yaml:3: expect[0]: cannot read expectation"),
    ("malformed-expression", "name: x\nexpect:\n  - {for: canary, assert: 'mttr <> 5m'}\n",
     "bad.yaml:3: expect[0].assert: cannot read expectation 'mttr <> 5m'"),
    ("for-an-unknown-strategy", "name: x\nstrategies: [canary, rolling]\nexpect:\n  - mttr <= 5m\n"
     "  - for: blue-green\n    assert: mttr <= 5m\n",
     "bad.yaml:5: expect[1].for: no strategy 'blue-green' in this scenario"),
    ("for-a-list-with-an-unknown-name", "name: x\nexpect:\n  - {for: [canary, canray], assert: mttr <= 5m}\n",
     "bad.yaml:3: expect[0].for[1]: no strategy 'canray'"),
    ("missing-strategy-file", "name: x\nstrategies:\n  - canary\n  - mine/slow.yaml\nexpect: [mttr <= 5m]\n",
     "bad.yaml:4: strategies[1]: no strategy file 'mine/slow.yaml'"),
    ("two-strategies-one-name", "name: x\nstrategies: [canary, same-name.yaml]\nexpect: [mttr <= 5m]\n",
     "bad.yaml:2: strategies[1]: strategy name 'canary' is already used by strategies[0]"),
    ("bad-scenario-field", "name: x\ntraffic:\n  rps: -5\nexpect: [mttr <= 5m]\n", "bad.yaml:3: traffic.rps"),
    ("two-documents", "name: x\n---\nname: y\n", "bad.yaml:3: expected exactly one YAML document"),
    ("yaml-syntax", "name: x\nexpect: [\n", "bad.yaml:"),
]


@pytest.mark.parametrize(("text", "message"), [row[1:] for row in BAD_INPUT], ids=[row[0] for row in BAD_INPUT])
def test_bad_scenario_files_exit_2_naming_file_line_and_field(tmp_path, text, message):
    """Bad input is found before anything is simulated: exit 2, one line with the file,
    the line and the field."""
    (tmp_path / "same-name.yaml").write_text(
        "name: canary\nstrategy:\n  rolling: {}\n")  # a strategy file whose name clashes with the bundled one
    code, out, err = check(write(tmp_path, text))
    assert code == EXIT_BAD_INPUT
    assert message in err, err
    assert out == ""  # nothing was run


def test_every_bad_file_in_a_folder_is_reported(tmp_path):
    """All files are loaded before any is run, and each bad one is named."""
    write(tmp_path, "name: x\nexpect: [mtbf <= 5m]\n", "a.yaml")
    write(tmp_path, "name: y\nexpect: [mttr <= 5 parsecs]\n", "b.yaml")
    code, _, err = check(tmp_path)
    assert code == EXIT_BAD_INPUT
    assert "a.yaml:2:" in err and "b.yaml:2:" in err


OPTIONS = [
    ("missing-path", {"paths": ["no/such/folder"]}, "no/such/folder: no such file or folder"),
    ("not-yaml", {"paths": ["{tmp}/notes.txt"]}, "notes.txt: not a scenario file"),
    ("empty-folder", {"paths": ["{tmp}/empty"]}, "no scenario files"),
    ("bad-executor", {"executor": "threads"}, "unknown executor 'threads'"),
    ("confidence-above-1", {"confidence": 1.5}, "--confidence: must be at least 0.5 and below 1"),
    ("zero-runs", {"runs": 0}, "--runs: must be a whole number of runs"),
    ("junit-is-a-folder", {"junit": "{tmp}"}, "--junit names a folder"),
    ("report-under-a-file", {"report_dir": "{tmp}/notes.txt/report"}, "cannot write --report here"),
]


@pytest.mark.parametrize(("options", "message"), [row[1:] for row in OPTIONS], ids=[row[0] for row in OPTIONS])
def test_unusable_paths_and_options_exit_2(tmp_path, options, message):
    """Paths that do not exist or hold no scenario, an unknown executor, an impossible
    confidence or run count and unwritable outputs are bad input: exit 2 before running."""
    (tmp_path / "notes.txt").write_text("hello\n")
    (tmp_path / "empty").mkdir()
    options = {k: ([p.format(tmp=tmp_path) for p in v] if isinstance(v, list) else
                   v.format(tmp=tmp_path) if isinstance(v, str) else v) for k, v in options.items()}
    paths = options.pop("paths", [PASSING])
    code, out, err = check(*paths, **options)
    assert code == EXIT_BAD_INPUT
    assert message in err, err


def test_scenarios_without_expectations_are_skipped(tmp_path):
    """A scenario with nothing to check is not simulated and is listed as skipped."""
    path = write(tmp_path, "name: x\nexpect: []\n", "baseline.yaml")
    code, out, _ = check(path, PASSING)
    assert code == EXIT_OK
    assert f"skipped {path}: no expectations" in out


def test_find_scenario_files_searches_folders_in_order(tmp_path):
    """Folders are searched recursively and sorted; hidden folders are not searched; a
    file named twice is checked once."""
    for name in ("b.yaml", "a/c.yml", "a/d.yaml", ".hidden/e.yaml", "f.txt"):
        write(tmp_path, "name: x\n", name)
    found = find_scenario_files([tmp_path, tmp_path / "b.yaml"])
    assert [p.relative_to(tmp_path).as_posix() for p in found] == ["a/c.yml", "a/d.yaml", "b.yaml"]


# --------------------------------------------------------------------------- the library

LIBRARY = sorted(p for p in SCENARIO_LIBRARY_DIR.glob("*.yaml"))


def test_the_library_has_the_scenarios_the_issue_lists():
    """At least 14 scenarios, among them each kind the scenario library promises."""
    names = {p.stem for p in LIBRARY}
    assert len(names) >= 14
    assert {"error-spike", "latency-regression", "crash-on-start", "slow-leak", "full-traffic-only",
            "node-loss-mid-rollout", "zone-outage-during-switch", "migration-contract-too-early",
            "expand-contract-migration", "downstream-dependency-defect", "traffic-spike",
            "flaky-health-check", "good-release", "low-traffic"} <= names


@pytest.mark.parametrize("path", LIBRARY, ids=[p.stem for p in LIBRARY])
def test_each_library_scenario_says_what_happens_and_what_good_looks_like(path):
    """Each file opens with a comment saying what happens and what a good strategy
    achieves, loads with the strategies it names, and has expectations."""
    header = path.read_text().split("\nname:")[0]
    assert header.startswith("# ") and "What happens" in header and "What a good strategy achieves" in header
    target = load_check_target(path)
    assert target.scenario.name == path.stem
    assert target.scenario.expect


def test_every_library_scenario_runs_in_the_simulator_as_shipped():
    """The whole library runs with every strategy it names (a few runs each): no bad
    input, no simulator error."""
    targets, skipped, errors = load_check_targets([SCENARIO_LIBRARY_DIR])
    assert not errors and not skipped and len(targets) == len(LIBRARY)
    code, out, err = check(SCENARIO_LIBRARY_DIR, runs=3)
    assert code in (EXIT_OK, EXIT_FAILED), err
    assert "error" not in err and "simulator failed" not in out


# --------------------------------------------------------------------------- the command line


def rolloutlab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rolloutlab.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def test_the_check_command_exits_1_and_writes_junit(tmp_path):
    """`rolloutlab check FILE --junit` as a CI job runs it: exit 1 for the failing
    fixture, a table on stdout, the JUnit file written."""
    result = rolloutlab("check", str(FAILING), "--runs", "30", "--executor", "serial",
                        "--junit", str(tmp_path / "check.xml"))
    assert result.returncode == 1, result.stderr
    assert "failed_requests.mean <= 1" in result.stdout and "violated" in result.stdout
    assert ET.parse(tmp_path / "check.xml").getroot().get("failures") == "3"


def test_the_check_command_exits_2_on_a_bad_expectation(tmp_path):
    """A malformed expectation stops `rolloutlab check` with exit 2, naming file, line
    and field, and no traceback."""
    path = write(tmp_path, "name: x\nexpect:\n  - {for: canary, assert: 'cost.p100 <= 5h'}\n")
    result = rolloutlab("check", str(path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "bad.yaml:3: expect[0].assert: cannot read expectation 'cost.p100 <= 5h'" in result.stderr


def test_the_check_help_states_the_default_run_count():
    """The default run count the command line's help gives is the one the check uses."""
    from rolloutlab import cli
    from rolloutlab.workflows.check import DEFAULT_RUNS

    assert DEFAULT_RUNS == inspect.signature(cli.check).parameters["runs"].default
    result = subprocess.run([sys.executable, "-m", "rolloutlab.cli", "check", "--help"], capture_output=True,
                            text=True, timeout=60, env={**os.environ, "COLUMNS": "200"})
    assert f"[default: {DEFAULT_RUNS}]" in result.stdout
