"""The ``rolloutlab`` command as a user runs it: a real process, real files, real exit codes."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from rolloutlab.strategies import load_strategy
from rolloutlab.strategies.importers import import_manifest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"


def rolloutlab(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rolloutlab.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def test_help_lists_only_commands_that_work():
    """--help lists the commands that work, and no placeholder for commands later issues add."""
    result = rolloutlab("--help")
    assert result.returncode == 0
    commands_box = result.stdout.split("Commands", 1)[1]
    listed = set(re.findall(r"^│ (\w[\w-]*)\s", commands_box, flags=re.MULTILINE))
    assert listed == {"import", "plan", "lint", "simulate", "compare", "report", "check", "live", "validate",
                      "tune", "export", "judges", "replay", "fit"}


def test_plan_of_the_readme_example_promotes():
    """The README's main job imports the bundled Argo Rollouts example and prints a plan that ends promoted."""
    result = rolloutlab("plan", "examples/argo-rollouts-canary.yaml")
    assert result.returncode == 0, result.stderr
    assert "outcome: promoted" in result.stdout
    assert "setWeight" in result.stdout and "effective %" in result.stdout
    assert "converted to 'result <= 0.05'" in result.stderr  # the importer says what it interpreted


@pytest.mark.parametrize("name", ["canary", "blue-green", "rolling"])
def test_plan_of_bundled_strategies(name):
    """Each bundled strategy plans to a promotion."""
    result = rolloutlab("plan", name, "--replicas", "4")
    assert result.returncode == 0, result.stderr
    assert "outcome: promoted" in result.stdout


def test_import_writes_a_strategy_that_loads_back(tmp_path):
    """`import -o` writes our strategy YAML, which loads to the same spec the importer built."""
    out = tmp_path / "podinfo.yaml"
    result = rolloutlab("import", str(FIXTURES / "flagger" / "podinfo-canary.yaml"), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert load_strategy(out) == import_manifest(FIXTURES / "flagger" / "podinfo-canary.yaml").spec
    assert "warning:" in result.stderr


def test_import_takes_the_rollout_and_its_template_file_together(tmp_path):
    """`import rollout.yaml analysis-templates.yaml` (Argo's own examples keep templates apart)
    imports, and a warning about a template names the template file; a directory does the same."""
    upstream = Path(__file__).parent / "fixtures" / "upstream" / "argo" / "examples"
    rollout, templates = upstream / "rollout-analysis-step.yaml", upstream / "analysis-templates.yaml"
    result = rolloutlab("import", str(rollout), str(templates))
    assert result.returncode == 0, result.stderr
    assert f"of {templates}: AnalysisTemplate/random-fail" in result.stderr
    assert "setWeight: 25" in result.stdout
    alone = rolloutlab("import", str(rollout))
    assert alone.returncode == 2 and "give the file that defines it too" in alone.stderr
    for path in (rollout, templates):
        (tmp_path / path.name).write_text(path.read_text())
    by_directory = rolloutlab("import", str(tmp_path))
    assert by_directory.returncode == 0, by_directory.stderr
    assert "setWeight: 25" in by_directory.stdout and f"of {tmp_path / templates.name}:" in by_directory.stderr


BAD_STRATEGIES = [
    ("bad-weight", "name: x\nstrategy:\n  canary:\n    steps:\n      - setWeight: 150\n", ":5:", "strategy.canary.steps[0].setWeight"),
    ("unknown-field", "name: x\nstrategy:\n  canary:\n    stepz: []\n", ":4:", "stepz"),
    ("two-strategies", "name: x\nstrategy:\n  canary: {}\n  rolling: {}\n", ":2:", "exactly one of canary, blueGreen, rolling"),
    ("yaml-syntax", "name: x\nstrategy: [\n", ":", "YAML"),
    ("bad-condition", "name: x\nanalysisTemplates:\n  - name: t\n    metrics:\n      - name: m\n        successCondition: result <<< 3\n"
     "strategy:\n  rolling: {}\n", ":6:", "successCondition"),
]


@pytest.mark.parametrize("text, line, needle", [row[1:] for row in BAD_STRATEGIES], ids=[row[0] for row in BAD_STRATEGIES])
def test_bad_strategy_file_exits_2_naming_file_line_and_field(tmp_path, text, line, needle):
    """A malformed strategy gives exit status 2 and one message with the file, line and field; no traceback."""
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    for args in (("plan", str(path)), ("lint", str(path))):
        result = rolloutlab(*args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr
        assert f"bad.yaml{line}" in result.stderr and needle in result.stderr, result.stderr


def test_bad_scenario_file_exits_2(tmp_path):
    """lint on a scenario with a bad field names the file, line and field path, exit 2."""
    path = tmp_path / "scenario.yaml"
    path.write_text("name: s\ntraffic:\n  rps: -5\n")
    result = rolloutlab("lint", str(path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "scenario.yaml:3:" in result.stderr and "traffic.rps" in result.stderr


def test_lint_accepts_the_bundled_files():
    """The bundled scenarios (standard and the library, with its strategy files) and strategies validate cleanly."""
    files = [str(p) for p in (ROOT / "strategies" / "library").glob("*.yaml")] + [str(ROOT / "scenarios" / "standard.yaml")]
    files += [str(p) for p in sorted((ROOT / "scenarios" / "library").rglob("*.yaml"))]
    result = rolloutlab("lint", *files)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("args", [("plan", "no-such-strategy"), ("import", "missing.yaml"), ("lint", "missing.yaml")],
                         ids=["unknown-strategy-name", "import-missing-file", "lint-missing-file"])
def test_missing_input_exits_2(args):
    """A file or strategy that does not exist is bad input: exit 2 with a message, no traceback."""
    result = rolloutlab(*args)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "error:" in result.stderr


def test_importing_something_that_is_not_a_rollout_exits_2(tmp_path):
    """Importing a Deployment is refused with exit 2 and the reason."""
    path = tmp_path / "deploy.yaml"
    path.write_text("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n")
    result = rolloutlab("import", str(path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "deploy.yaml" in result.stderr


def test_compare_json_reports_every_strategy_with_intervals(tmp_path):
    """`compare --json` prints each strategy's figures with 95% intervals and writes the results table."""
    import json

    result = rolloutlab("compare", "--runs", "30", "--executor", "serial", "--out", str(tmp_path), "--json")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    strategies = {s["strategy"] for s in payload["strategies"]}
    assert strategies == {"blue-green", "canary", "rolling"}
    cfr = payload["strategies"][0]["change_failure_rate"]
    assert cfr["low"] <= cfr["value"] <= cfr["high"]
    assert (tmp_path / "results.csv").exists() and (tmp_path / "results.parquet").exists()


def test_simulate_prints_a_comparison_table(tmp_path):
    """`simulate` of one strategy prints its row of figures and where the results went."""
    result = rolloutlab("simulate", "standard", "--strategy", "canary", "--runs", "20", "--executor", "serial",
                        "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "canary" in result.stdout and "results.csv" in result.stdout


def test_simulate_a_bad_scenario_exits_2(tmp_path):
    """A scenario with a wrong field stops `simulate` with exit 2, naming file, line and field."""
    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\nduration: 10m\nrelease:\n  defect_probability: 1.5\n")
    result = rolloutlab("simulate", str(path), "--strategy", "canary", "--runs", "2")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "bad.yaml:4:" in result.stderr and "release.defect_probability" in result.stderr


@pytest.mark.parametrize("executor", ["threads", "dask://"], ids=["unknown-executor", "dask-without-address"])
def test_bad_executor_exits_2(executor, tmp_path):
    """An executor that is not serial, process or dask://HOST:PORT is bad input (exit 2)."""
    result = rolloutlab("compare", "--runs", "2", "--executor", executor, "--out", str(tmp_path))
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_history_scenario_writes_one_row_per_deployment(tmp_path):
    """A scenario with history: gives one row per deployment, with lead times and rework marked."""
    import pandas as pd

    path = tmp_path / "history.yaml"
    path.write_text("name: h\nduration: 10m\nservices: [{name: web, replicas: 4}]\ntraffic: {rps: 50}\n"
                    "history: {days: 5, deploys_per_day: 3}\n")
    result = rolloutlab("simulate", str(path), "--strategy", "rolling", "--runs", "2", "--executor", "serial",
                        "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    df = pd.read_parquet(tmp_path / "results.parquet")
    assert len(df) > 10 and {"deployment", "commit_at", "lead_time", "rework"} <= set(df.columns)
    assert (df["lead_time"] >= 0).all() and (df["started_at"] > df["commit_at"]).all()


def test_compare_writes_the_report_and_report_rebuilds_it(tmp_path):
    """compare writes report.html, report.md and summary.csv; `report RESULTS` rebuilds them from the table."""
    result = rolloutlab("compare", "--runs", "20", "--executor", "serial", "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert "report.html" in result.stdout
    for name in ("report.html", "report.md", "summary.csv", "timelines.json"):
        assert (tmp_path / "out" / name).exists(), name
    again = rolloutlab("report", str(tmp_path / "out" / "results.parquet"), "--out", str(tmp_path / "again"))
    assert again.returncode == 0, again.stderr
    html = (tmp_path / "again" / "report.html").read_text()
    assert "DORA metrics" in html and "Rollout timelines" in html and "data:image/png;base64," in html


def test_report_from_a_deployment_log(tmp_path):
    """A team's deployment log alone gives a report with its DORA metrics."""
    result = rolloutlab("report", "--log", str(FIXTURES / "logs" / "team.csv"), "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "change failure rate" in (tmp_path / "report.md").read_text().lower()


def test_malformed_deployment_log_exits_2_naming_row_and_column(tmp_path):
    """A log with a bad timestamp names the row and the column, exit 2, no traceback."""
    path = tmp_path / "log.csv"
    path.write_text("id,service,commit_time,deploy_time,status\n"
                    "1,web,2026-01-01T10:00:00Z,2026-01-01T11:00:00Z,success\n"
                    "2,web,2026-01-02T10:00:00Z,yesterday,success\n")
    result = rolloutlab("report", "--log", str(path), "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "deploy_time" in result.stderr and "row 2" in result.stderr


def test_malformed_results_table_exits_2(tmp_path):
    """A results table missing contract columns is bad input (exit 2) naming the file."""
    path = tmp_path / "results.csv"
    path.write_text("source,scenario\nsim,x\n")
    result = rolloutlab("report", str(path), "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and "Traceback" not in result.stderr and "results.csv" in result.stderr


@pytest.mark.parametrize("args", [
    ("compare", "--runs", "2", "--executor", "serial", "--out", "{file}"),
    ("import", "examples/argo-rollouts-canary.yaml", "-o", "{missing}/x.yaml"),
    ("compare", "--runs", "2", "--seed", "99999999999999999999999"),
], ids=["out-is-a-file", "output-folder-missing", "seed-too-large"])
def test_unusable_paths_and_values_exit_2(tmp_path, args):
    """An output path that cannot be used, or a seed out of range, is bad input: exit 2, no traceback."""
    blocker = tmp_path / "afile"
    blocker.write_text("")
    filled = [a.format(file=blocker, missing=tmp_path / "nope") for a in args]
    result = rolloutlab(*filled)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr


def test_malformed_timelines_file_exits_2(tmp_path):
    """A broken timelines.json beside the results is bad input naming the file."""
    out = tmp_path / "out"
    assert rolloutlab("compare", "--runs", "5", "--executor", "serial", "--out", str(out)).returncode == 0
    (out / "timelines.json").write_text("{bad")
    result = rolloutlab("report", str(out / "results.csv"), "--out", str(tmp_path / "r"))
    assert result.returncode == 2 and "Traceback" not in result.stderr and "timelines.json" in result.stderr


def test_error_lines_print_file_line_and_field_as_plain_text(tmp_path):
    """Rich once rendered "x.yaml:100:" as an emoji and swallowed "[0]" as markup."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\n" + "# pad\n" * 98 + "strategy: {canary: {steps: [{setWeight: 200}]}}\n")
    result = rolloutlab("lint", str(bad))
    assert result.returncode == 2
    assert f"{bad}:100: strategy.canary.steps[0].setWeight" in " ".join(result.stderr.split())


def test_compare_runs_the_scenarios_own_strategies(tmp_path):
    """Without --strategies, compare runs the strategies the scenario's `strategies:` names,
    not the three bundled ones."""
    import json

    path = tmp_path / "two.yaml"
    path.write_text("name: two\nduration: 5m\nservices: [{name: web, replicas: 4}]\ntraffic: {rps: 20}\n"
                    "strategies: [canary, rolling]\n")
    result = rolloutlab("compare", str(path), "--runs", "3", "--executor", "serial", "--no-report",
                        "--out", str(tmp_path / "out"), "--json")
    assert result.returncode == 0, result.stderr
    assert [s["strategy"] for s in json.loads(result.stdout)["strategies"]] == ["canary", "rolling"]


def invoke(args):
    """The CLI in this process (typer's runner): (exit status, stderr lines)."""
    from typer.testing import CliRunner

    from rolloutlab import cli

    result = CliRunner().invoke(cli.app, args)
    return result.exit_code, [line for line in result.stderr.splitlines() if line.strip()], result


ERRORS = [
    ("bad-input", lambda: __import__("rolloutlab.errors").errors.ResultsError("results.csv: column 'x' is bad"),
     2, "error: results.csv: column 'x' is bad"),
    ("run-failed", lambda: __import__("rolloutlab.errors").errors.SimulationFailed(
        "strategy 'canary', run 3, seed 1 failed: boom", "canary", 3, 1), 1, "failed: strategy 'canary', run 3, seed 1 failed: boom"),
]


@pytest.mark.parametrize(("make", "status", "line"), [row[1:] for row in ERRORS], ids=[row[0] for row in ERRORS])
def test_errors_map_to_exit_statuses_in_one_place(monkeypatch, make, status, line):
    """An error raised inside a command is printed as one line and exits 2 for bad input,
    1 for a run that failed, never as a traceback; the same for every command, also
    those that do not catch it themselves (plan here)."""
    from rolloutlab import cli
    from rolloutlab.workflows import compare

    def fail(*args, **kwargs):
        raise make()

    monkeypatch.setattr(compare, "run_comparison", fail)
    monkeypatch.setattr(cli, "_load_strategy_or_manifest", fail)
    for args in (["compare", "--runs", "2"], ["simulate", "standard", "-s", "canary"], ["plan", "canary"]):
        code, lines, result = invoke(args)
        assert code == status, (args, result.output)
        assert lines == [line], (args, lines)
        assert result.exception is None or isinstance(result.exception, SystemExit)


def test_an_unknown_fidelity_is_one_line_exit_2():
    """A bad option value found by the workflow is bad input: one line, exit 2."""
    code, lines, _ = invoke(["compare", "--runs", "2", "--fidelity", "exact"])
    assert code == 2 and len(lines) == 1 and "--fidelity" in lines[0]
