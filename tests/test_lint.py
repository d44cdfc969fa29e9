"""`rolloutlab lint` as a user runs it: bad input found by fuzzing is refused before any
simulation, with the file, the line and the full field path of the field at fault."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STANDARD = (ROOT / "scenarios" / "standard.yaml").read_text()
CANARY = (ROOT / "strategies" / "library" / "canary.yaml").read_text()


def rolloutlab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rolloutlab.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def _line_of(text: str, fragment: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if fragment in line)


CANARY_WITH_STEP_ANALYSIS = CANARY.replace(
    "      - setWeight: 25\n",
    "      - setWeight: 25\n      - analysis:\n          templates:\n            - templateName: error-rates\n",
).replace("        failureLimit: 1\n", "        failureLimit: 1\n        count: 4\n")
"""The bundled canary with an analysis step at steps[3] naming a template that does not exist."""

CASES = [
    ("unknown-templateName", "canary.yaml", CANARY_WITH_STEP_ANALYSIS, "templateName: error-rates",
     "strategy.canary.steps[3].analysis.templates[0].templateName", "no analysis template 'error-rates'"),
    ("setWeight-yes", "canary.yaml", CANARY.replace("- setWeight: 25", "- setWeight: yes"), "setWeight: yes",
     "strategy.canary.steps[2].setWeight", "expected a number, got true (YAML 1.1 reads unquoted 'yes'"),
    ("capacity-1e-320", "standard.yaml", STANDARD.replace("capacity_rps: 200", "capacity_rps: 1e-320"),
     "capacity_rps:", "services[0].capacity_rps", "below 0.001"),
    ("rps-1e17", "standard.yaml", STANDARD.replace("  rps: 1000", "  rps: 1e17"), "rps: 1e17",
     "traffic.rps", "above 1e+06"),
    ("octal-replicas", "standard.yaml", STANDARD.replace("replicas: 10", "replicas: 010"), "replicas: 010",
     "services[0].replicas", "octal number 8"),
    ("expect-for-a-strategy-not-run", "standard.yaml",
     STANDARD.replace("expect: []", "strategies: [canary, rolling]\nexpect:\n  - for: blue-green\n"
                      "    assert: mttr.p90 <= 5m"),
     "for: blue-green", "expect[0].for", "no strategy 'blue-green' in this scenario"),
]


@pytest.mark.parametrize(("name", "text", "at", "field", "message"), [row[1:] for row in CASES],
                         ids=[row[0] for row in CASES])
def test_lint_names_file_line_and_full_field_path(tmp_path, name, text, at, field, message):
    """lint exits 2 with one line `file:line: field.path: message` pointing at the field
    at fault itself, and prints no traceback."""
    path = tmp_path / name
    path.write_text(text)
    result = rolloutlab("lint", str(path))
    printed = " ".join(result.stderr.split())
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert f"{path}:{_line_of(text, at)}: {field}: " in printed and message in printed, printed


def test_simulate_refuses_what_lint_refuses(tmp_path):
    """The rates that used to pass lint and traceback in simulate are bad input there too."""
    path = tmp_path / "standard.yaml"
    path.write_text(STANDARD.replace("  rps: 1000", "  rps: 1e17"))
    result = rolloutlab("simulate", str(path), "-s", "canary", "--runs", "1", "--executor", "serial",
                        "--no-report", "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "traffic.rps" in result.stderr
