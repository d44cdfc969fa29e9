"""The controller package stays pure: no simulation kernel, cluster client, process, socket,
event loop, clock or global random source (ARCHITECTURE.md, "the one seam that matters")."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

STRATEGIES = Path(__file__).resolve().parent.parent / "strategies"
FORBIDDEN = {"simpy", "kubernetes", "subprocess", "socket", "asyncio", "time", "random", "threading", "multiprocessing"}
MODULES = sorted(STRATEGIES.rglob("*.py"))


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
