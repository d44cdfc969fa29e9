"""The bottom layers stay pure. The controller package imports no simulation kernel, cluster
client, process, socket, event loop, clock or global random source (docs/architecture.md,
"The one seam that matters"); the results contract needs nothing beyond numpy, pandas and
scipy. Which project packages each may import is tests/test_layers.py's concern."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
STRATEGIES = REPO / "strategies"
RESULTS = REPO / "results"
FORBIDDEN = {"simpy", "kubernetes", "subprocess", "socket", "asyncio", "time", "random", "threading", "multiprocessing"}
MODULES = sorted(STRATEGIES.rglob("*.py"))
RESULTS_MODULES = sorted(RESULTS.rglob("*.py"))
# The results contract is read by every layer and by users' notebooks: it may need only the
# standard library, the numeric stack and the project's errors.
RESULTS_MAY_IMPORT = set(sys.stdlib_module_names) | {"numpy", "pandas", "scipy", "rolloutlab", "__future__"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "__import__":
            names.add("__import__")
    return names


def test_there_are_modules_to_check():
    """The scan sees the controller's modules (so an empty glob cannot pass silently)."""
    assert {p.name for p in MODULES} >= {"reconcile.py", "canary.py", "spec.py", "analysis.py"}


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(STRATEGIES)) for p in MODULES])
def test_module_imports_nothing_impure(path):
    """A strategies/ module imports none of simpy, kubernetes, subprocess, socket, asyncio, time, random."""
    bad = imported_modules(path) & (FORBIDDEN | {"__import__"})
    assert not bad, f"{path} imports {sorted(bad)}"


def test_the_scan_catches_a_forbidden_import(tmp_path):
    """The checker itself flags `import simpy` and `from subprocess import run`."""
    sample = tmp_path / "x.py"
    sample.write_text("import simpy\nfrom subprocess import run\nimport numpy as np\n")
    assert imported_modules(sample) & FORBIDDEN == {"simpy", "subprocess"}


def test_there_are_results_modules_to_check():
    """The scan sees the results contract's modules."""
    assert {p.name for p in RESULTS_MODULES} >= {"table.py", "statistics.py", "timeline.py"}


@pytest.mark.parametrize("path", RESULTS_MODULES, ids=[str(p.relative_to(RESULTS)) for p in RESULTS_MODULES])
def test_results_module_needs_only_the_numeric_stack(path):
    """A results/ module imports only the standard library, numpy, pandas, scipy and rolloutlab's errors."""
    extra = imported_modules(path) - RESULTS_MAY_IMPORT
    assert not extra, f"{path} imports {sorted(extra)}"


def test_the_results_scan_catches_a_third_party_import(tmp_path):
    """The allow-list flags `rich` and `matplotlib` and lets `numpy`, `json` and `scipy.stats` through."""
    sample = tmp_path / "x.py"
    sample.write_text("import json\nimport numpy as np\nfrom scipy import stats\nfrom rich.table import Table\n"
                      "def f():\n    import matplotlib.pyplot\n")
    assert imported_modules(sample) - RESULTS_MAY_IMPORT == {"rich", "matplotlib"}
