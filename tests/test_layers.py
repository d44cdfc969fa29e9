"""The layers hold: every import of every module follows the import-rules table of
docs/architecture.md, and no module grows past what a newcomer can read.

The table is read from docs/architecture.md itself (the rows after the `import-rules`
marker), and the folder of each package from pyproject.toml's `package-dir`, so the doc,
the packaging and this test cannot drift apart.
"""

from __future__ import annotations

import ast
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ARCHITECTURE = REPO / "docs" / "architecture.md"
PYPROJECT = REPO / "pyproject.toml"
NAMESPACE = "rolloutlab"
ERRORS_MODULE = "rolloutlab.errors"
RULES_MARKER = "<!-- import-rules"
MAX_LINES = 600


# --------------------------------------------------------------------------- the rules


def read_package_dirs(pyproject: Path = PYPROJECT) -> dict[str, str]:
    """Installed package name -> repository folder, from setuptools' `package-dir`."""
    config = tomllib.loads(pyproject.read_text())
    return dict(config["tool"]["setuptools"]["package-dir"])


def parse_import_rules(text: str) -> dict[str, frozenset[str]]:
    """The import-rules table after the marker: layer -> the layers it may import.

    A row is `| `layer` | folder | `a`, `b` |`; a dash in the last cell allows nothing.
    """
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip().startswith(RULES_MARKER)), None)
    if start is None:
        raise ValueError(f"no {RULES_MARKER} marker in the architecture page")
    rows = []
    for line in lines[start + 1 :]:
        if not line.strip().startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    rules: dict[str, frozenset[str]] = {}
    for cells in rows[2:]:  # header and separator rows
        layer = re.findall(r"`([^`]+)`", cells[0])
        if len(layer) != 1:
            raise ValueError(f"import-rules row {cells!r}: the first cell must name one layer in backticks")
        rules[layer[0]] = frozenset(re.findall(r"`([^`]+)`", cells[-1]))
    if not rules:
        raise ValueError("the import-rules table has no rows")
    unknown = {name for allowed in rules.values() for name in allowed} - rules.keys()
    if unknown:
        raise ValueError(f"the import-rules table allows layers it does not define: {sorted(unknown)}")
    return rules


RULES = parse_import_rules(ARCHITECTURE.read_text())
PACKAGE_DIRS = read_package_dirs()


# --------------------------------------------------------------------------- the scan


@dataclass(frozen=True)
class Module:
    """One source file and its installed dotted name."""

    path: Path
    name: str
    is_package: bool

    @property
    def package(self) -> str:
        return self.name if self.is_package else self.name.rpartition(".")[0]


@dataclass(frozen=True)
class Violation:
    path: Path
    line: int
    importer: str
    target: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.importer} imports {self.target}: {self.reason}"


def find_modules(root: Path, package_dirs: dict[str, str]) -> list[Module]:
    """Every .py file of the mapped folders, named as installed (`sim/world.py` ->
    `rolloutlab.sim.world`)."""
    modules = []
    for package, folder in package_dirs.items():
        base = root / folder
        for path in sorted(base.rglob("*.py")) if base.is_dir() else []:
            parts = list(path.relative_to(base).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            if is_package:
                parts = parts[:-1]
            modules.append(Module(path, ".".join([package, *parts]), is_package))
    return sorted(modules, key=lambda m: m.name)


def layer_of(module_name: str, rules: dict[str, frozenset[str]]) -> str | None:
    """The layer a module of the namespace belongs to; None outside the namespace."""
    parts = module_name.split(".")
    if parts[0] != NAMESPACE:
        return None
    if module_name == ERRORS_MODULE or module_name.startswith(ERRORS_MODULE + "."):
        return "errors"
    if len(parts) > 1 and parts[1] in rules and parts[1] not in (NAMESPACE, "errors"):
        return parts[1]
    return NAMESPACE


def _module_level_values(tree: ast.Module) -> dict[str, ast.expr]:
    values: dict[str, ast.expr] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    values[target.id] = node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            values[node.target.id] = node.value
    return values


def _strings(node: ast.expr, values: dict[str, ast.expr], seen: frozenset[str] = frozenset()) -> list[str] | None:
    """The module names a dynamic import's argument can take, when they are written in the
    module: a literal, a module-level name bound to one, or an item of a module-level dict,
    list or tuple of literals (`importlib.import_module(_PUBLIC[name])`). None: unknowable."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.Name) and node.id in values and node.id not in seen:
        return _strings(values[node.id], values, seen | {node.id})
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
        container = values.get(node.value.id)
        items = None
        if isinstance(container, ast.Dict):
            items = container.values
        elif isinstance(container, (ast.List, ast.Tuple)):
            items = container.elts
        if items is not None and all(isinstance(i, ast.Constant) and isinstance(i.value, str) for i in items):
            return [i.value for i in items]
    return None


def _is_dynamic_import(call: ast.Call) -> bool:
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
    return name in ("import_module", "__import__")


def _resolve_relative(module: Module, level: int, name: str | None) -> str:
    base = module.package.split(".")
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join([*base, name] if name else base)


def imports_of(module: Module, known: set[str]) -> list[tuple[int, str]]:
    """Every module `module` imports, absolute and dotted, with its line: top-level,
    function-local, under TYPE_CHECKING, relative (resolved), and importlib / __import__
    calls. `from P import n` is the module `P.n` when that is a module of the scan, else `P`.
    A dynamic import whose name the module does not spell out is reported as `<dynamic>`."""
    tree = ast.parse(module.path.read_text(), filename=str(module.path))
    values = _module_level_values(tree)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            source = _resolve_relative(module, node.level, node.module) if node.level else node.module or ""
            for alias in node.names:
                candidate = f"{source}.{alias.name}"
                found.append((node.lineno, candidate if candidate in known else source))
        elif isinstance(node, ast.Call) and _is_dynamic_import(node) and node.args:
            names = _strings(node.args[0], values)
            if names is None:
                found.append((node.lineno, "<dynamic>"))
                continue
            for name in names:
                if name.startswith("."):
                    level = len(name) - len(name.lstrip("."))
                    name = _resolve_relative(module, level, name.lstrip(".") or None)
                found.append((node.lineno, name))
    return found


def check_imports(root: Path, package_dirs: dict[str, str], rules: dict[str, frozenset[str]]) -> list[Violation]:
    """Every import of every module under `root` that breaks the rules."""
    modules = find_modules(root, package_dirs)
    known = {m.name for m in modules}
    # The bare names a module would use without the namespace (`import sim`, `rolloutlab_cli`).
    bare = {folder.split("/")[0] for package, folder in package_dirs.items() if package != NAMESPACE}
    bare |= {package.split(".")[-1] for package in package_dirs if package != NAMESPACE} | {"rolloutlab_cli"}
    violations = []
    for module in modules:
        importer = layer_of(module.name, rules)
        where = module.path.relative_to(root)
        for line, target in imports_of(module, known):
            if target == "<dynamic>":
                violations.append(Violation(where, line, module.name, target, "a dynamic import this check cannot follow"))
                continue
            top = target.split(".")[0]
            if top in bare:
                violations.append(
                    Violation(where, line, module.name, target, f"outside the namespace: import {NAMESPACE}.{target}")
                )
                continue
            layer = layer_of(target, rules)
            if layer is None or layer == importer:
                continue
            if layer not in rules.get(importer, frozenset()):
                allowed = ", ".join(sorted(rules.get(importer, ()))) or "nothing of the project"
                violations.append(
                    Violation(where, line, module.name, target, f"{importer} may import only {allowed}")
                )
    return violations


MODULES = find_modules(REPO, PACKAGE_DIRS)
VIOLATIONS = check_imports(REPO, PACKAGE_DIRS, RULES)


# --------------------------------------------------------------------------- the project's own imports


def test_the_table_names_every_installed_package():
    """The import-rules table has a row for each installed package and for the errors module, and no other."""
    packages = {name.split(".")[1] if "." in name else name for name in PACKAGE_DIRS}
    assert set(RULES) == packages | {"errors"}


def test_the_table_allows_no_cycle():
    """The rules are layers: following "may import" from any layer never leads back to it."""

    def reachable(layer: str) -> set[str]:
        seen: set[str] = set()
        todo = list(RULES[layer])
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.add(name)
                todo.extend(RULES[name])
        return seen

    cycles = sorted(layer for layer in RULES if layer in reachable(layer))
    assert not cycles, f"layers that may import themselves through others: {cycles}"


def test_the_scan_sees_every_layer():
    """Each layer of the table has modules on disk, including the ones this test names as landmarks."""
    layers = {layer_of(m.name, RULES) for m in MODULES}
    assert layers == set(RULES)
    assert {"rolloutlab.strategies.reconcile", "rolloutlab.sim.world", "rolloutlab.results.table",
            "rolloutlab.cli", "rolloutlab.errors"} <= {m.name for m in MODULES}


@pytest.mark.parametrize("layer", sorted(RULES), ids=sorted(RULES))
def test_imports_follow_the_table(layer):
    """No module of the layer imports a layer its row of the table does not name, or a project name outside `rolloutlab.`."""
    broken = [str(v) for v in VIOLATIONS if layer_of(v.importer, RULES) == layer]
    assert not broken, "imports against docs/architecture.md:\n" + "\n".join(broken)


def test_no_module_is_longer_than_600_lines():
    """Every module of the packages fits in 600 lines (a room a newcomer can hold in their head)."""
    long = sorted(
        (len(m.path.read_text().splitlines()), str(m.path.relative_to(REPO))) for m in MODULES
    )
    offenders = [f"{path}: {lines} lines" for lines, path in long if lines > MAX_LINES]
    assert not offenders, f"modules over {MAX_LINES} lines:\n" + "\n".join(offenders)


# --------------------------------------------------------------------------- the checker itself

PLANTED = [
    # (id, file under the fake repository, source, the targets the checker must flag)
    ("upward at the top", "sim/planted.py", "from rolloutlab.workflows.check import run_check\n",
     {"rolloutlab.workflows.check"}),
    ("sideways: live imports sim", "live/planted.py", "from rolloutlab.sim.world import World\n",
     {"rolloutlab.sim.world"}),
    ("function-local", "reports/planted.py", "def plot():\n    import rolloutlab.sim.world\n",
     {"rolloutlab.sim.world"}),
    ("under TYPE_CHECKING", "strategies/planted.py",
     "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from rolloutlab.scenarios.schema import Scenario\n",
     {"rolloutlab.scenarios.schema"}),
    ("importlib.import_module string", "live/planted.py",
     "import importlib\n\ndef load():\n    return importlib.import_module('rolloutlab.sim.run')\n",
     {"rolloutlab.sim.run"}),
    ("import_module imported by name", "reports/planted.py",
     "from importlib import import_module\nimport_module('rolloutlab.scenarios.schema')\n",
     {"rolloutlab.scenarios.schema"}),
    ("__import__ string", "results/planted.py", "__import__('rolloutlab.strategies.spec')\n",
     {"rolloutlab.strategies.spec"}),
    ("import_module of a module-level table", "scenarios/planted.py",
     ("import importlib\n_WHERE = {'a': 'rolloutlab.sim.run', 'b': 'rolloutlab.strategies.spec'}\n"
      "def get(n):\n    return importlib.import_module(_WHERE[n])\n"),
     {"rolloutlab.sim.run"}),
    ("dynamic name it cannot follow", "workflows/planted.py",
     "import importlib\ndef load(name):\n    return importlib.import_module(name)\n",
     {"<dynamic>"}),
    ("relative, resolved", "reports/planted.py", "from ..sim import world\n",
     {"rolloutlab.sim.world"}),
    ("relative module name, resolved", "results/planted.py", "from ..scenarios.schema import Scenario\n",
     {"rolloutlab.scenarios.schema"}),
    ("bare package name", "scenarios/planted.py", "import strategies.spec\n",
     {"strategies.spec"}),
    ("bare from-import", "workflows/planted.py", "from sim.world import World\n",
     {"sim.world"}),
    ("the old CLI module", "workflows/planted.py", "import rolloutlab_cli\n",
     {"rolloutlab_cli"}),
    ("the facade from below", "results/planted.py", "import rolloutlab\n",
     {"rolloutlab"}),
    ("a subpackage through the facade", "reports/planted.py", "from rolloutlab import sim\n",
     {"rolloutlab.sim"}),
    ("the CLI from below", "workflows/planted.py", "from rolloutlab.cli import main\n",
     {"rolloutlab.cli"}),
    ("errors import anything", "rolloutlab/errors.py", "from rolloutlab.results.table import Outcome\n",
     {"rolloutlab.results.table"}),
]

ALLOWED = [
    ("down a layer", "sim/planted.py", "from rolloutlab.results.table import Outcome\n"),
    ("own package, relative", "sim/planted.py", "from . import pods\nfrom .pods import Pod\n"),
    ("own package, absolute", "live/planted.py", "import rolloutlab.live.runner\n"),
    ("errors from the bottom", "strategies/planted.py", "from rolloutlab.errors import InputError\n"),
    ("errors through the facade", "strategies/planted.py", "from rolloutlab import errors\n"),
    ("third party and stdlib", "strategies/planted.py", "import numpy\nimport importlib\nimportlib.import_module('json')\n"),
    ("workflows over everything", "workflows/planted.py",
     "from rolloutlab.live import runner\nfrom rolloutlab.sim.run import simulate\nfrom rolloutlab.reports import dora\n"),
    ("the CLI over workflows", "rolloutlab/cli.py", "from rolloutlab.workflows import check\n"),
    ("the facade's lazy table", "rolloutlab/__init__.py",
     ("import importlib\n_PUBLIC = {'x': 'rolloutlab.workflows.compare'}\n"
      "def __getattr__(n):\n    return importlib.import_module(_PUBLIC[n])\n")),
]


def _fake_repository(root: Path, relative: str, source: str) -> None:
    for folder in set(PACKAGE_DIRS.values()):
        (root / folder).mkdir(parents=True, exist_ok=True)
        (root / folder / "__init__.py").touch()
    for name in ("sim/pods.py", "sim/world.py", "live/runner.py", "rolloutlab/errors.py", "rolloutlab/cli.py"):
        (root / name).touch()
    (root / relative).write_text(source)


@pytest.mark.parametrize(("relative", "source", "targets"), [case[1:] for case in PLANTED],
                         ids=[case[0] for case in PLANTED])
def test_the_checker_catches_a_planted_violation(tmp_path, relative, source, targets):
    """A planted import against the table is reported, with the module it imports."""
    _fake_repository(tmp_path, relative, source)
    violations = check_imports(tmp_path, PACKAGE_DIRS, RULES)
    assert {v.target for v in violations} == targets
    assert all(str(v.path) == relative for v in violations)


@pytest.mark.parametrize(("relative", "source"), [case[1:] for case in ALLOWED], ids=[case[0] for case in ALLOWED])
def test_the_checker_lets_a_legal_import_pass(tmp_path, relative, source):
    """An import the table allows is not reported."""
    _fake_repository(tmp_path, relative, source)
    assert check_imports(tmp_path, PACKAGE_DIRS, RULES) == []


def test_the_table_is_read_from_the_page():
    """Editing the architecture page's table changes what the checker allows."""
    text = ARCHITECTURE.read_text()
    row = next(line for line in text.splitlines() if line.startswith("| `reports` |"))
    edited = parse_import_rules(text.replace(row, "| `reports` | `reports/` | `results`, `errors`, `sim` |"))
    assert "sim" in edited["reports"] and "sim" not in RULES["reports"]


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("no marker here\n", "no <!-- import-rules marker"),
        (f"{RULES_MARKER} -->\n| layer | may |\n|---|---|\n| `a` | `b` |\n", "does not define: ['b']"),
        (f"{RULES_MARKER} -->\n| layer | may |\n|---|---|\n", "has no rows"),
    ],
    ids=["missing marker", "unknown layer allowed", "empty table"],
)
def test_a_broken_table_is_refused(table, message):
    """A page whose table cannot be read fails loudly instead of allowing everything."""
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_import_rules(table)
