"""Mutation score of the controller's tests: how many small, bug-like edits of strategies/
the fast tests notice. Slow (minutes), so it is not part of CI; run it after changing a
ladder, the analysis, the replica math or a judge, and keep the note's figure current.

    python benchmarks/mutation.py                      # every module below, every mutant
    python benchmarks/mutation.py --module analysis    # modules whose path contains "analysis"
    python benchmarks/mutation.py --sample 40          # at most 40 mutants per module (seeded)
    python benchmarks/mutation.py --list               # the mutants, without running anything

A small AST mutator (mutmut copies the tree into ``mutants/`` and cannot follow our
``package-dir`` mapping of ``strategies/`` to ``rolloutlab.strategies``). Operators, each
applied at one site at a time:

    compare   <  <=  >  >=  ==  !=  is  is not  in  not in   (each to its boundary twin or negation)
    boolean   and <-> or,  not x -> x
    number    an int or float constant n -> n + 1 and n - 1
    arith     + <-> -,  * <-> /
    drop      a statement (call, assignment, return, if, raise) -> pass

The module is never edited on disk (other work may be running in this tree): each mutant
runs in a forked child whose import system loads the mutated code in place of the module,
then runs the module's fast tests with ``-x``. A mutant is *killed* when a test fails (or
the child crashes or times out), *survives* when they all pass. Equivalent mutants (no test
could tell: the behaviour is the same) are listed by hand in ``EQUIVALENT`` with the reason,
and left out of the score.
"""

from __future__ import annotations

import argparse
import ast
import importlib.abc
import importlib.util
import os
import random
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"

LADDER_TESTS = ("test_reconcile.py", "test_decisions.py", "test_dry_run.py", "test_flagger_schedule.py")
JUDGE_TESTS = ("test_judges_threshold.py", "test_judges_mann_whitney.py", "test_judges_sequential.py",
               "test_decisions.py")

# module (path under the repository) -> the fast test files that pin it
TARGETS: dict[str, tuple[str, ...]] = {
    "strategies/analysis.py": ("test_decisions.py", "test_reconcile.py"),
    "strategies/canary.py": LADDER_TESTS,
    "strategies/blue_green.py": LADDER_TESTS,
    "strategies/rolling.py": LADDER_TESTS,
    "strategies/reconcile.py": LADDER_TESTS,
    "strategies/cycle.py": LADDER_TESTS,
    "strategies/replicas.py": ("test_replicas.py", "test_decisions.py"),
    "strategies/judges/threshold.py": JUDGE_TESTS,
    "strategies/judges/mann_whitney.py": JUDGE_TESTS,
    "strategies/judges/sequential.py": JUDGE_TESTS,
    "strategies/judges/judgement.py": JUDGE_TESTS,
}
PYTEST_ARGS = ["-x", "-q", "-p", "no:cacheprovider", "-p", "no:rolloutlab", "-k", "not test_plan_prints"]

# (module, the original source line stripped, the mutation) -> why no test can tell
EQUIVALENT: dict[tuple[str, str, str], str] = {
    ("strategies/analysis.py", "AnalysisPhase.FAILED: 4,", "4 -> 5"):
        "the severity order is unchanged (5 > 3): only the order is ever compared",
    ("strategies/analysis.py", "AnalysisPhase.SUCCESSFUL: 0,", "0 -> -1"):
        "the severity order is unchanged (-1 < 1): only the order is ever compared",
    ("strategies/canary.py", "if c.status.pause_reason is PauseReason.INCONCLUSIVE_ANALYSIS:",
     "drop `if c.status.pause_reason is PauseReason.INCONCLUSI`"):
        "that pause comes from the current step's analysis (a background one returns earlier); without the "
        "check its finished run is read again, is still Inconclusive and pauses again: the same result",
    ("strategies/blue_green.py", "return False", "drop `return False`"):
        "(after the Inconclusive pause check) the rung's finished run is read again, is still Inconclusive and "
        "pauses again: the same result",
    ("strategies/canary.py", "if cs.dynamic_stable_scale:", "drop `if cs.dynamic_stable_scale:`"):
        "without the early return the ladder's loop reaches the same rung again in the same call, where the "
        "stable target already follows the applied weight: the stable shrinks in the same call either way",
    ("strategies/replicas.py", "if spec > desired:", "`>` -> `>=`"):
        "spec == desired: max(desired, spec - scale_down) is spec, the current count",
    ("strategies/replicas.py", "if canary_spec < desired_canary and scale_up > 0:", "`<` -> `<=`"):
        "canary_spec == desired_canary: min(spec + scale_up, desired) is spec, unchanged",
    ("strategies/cycle.py", "self.pending = {}", "drop `self.pending = {}`"):
        "pending changes are folded in again on the next read, with the same (latest) values: only slower",
    ("strategies/reconcile.py",
     "times += [t for run in c.status.analyses if (t := next_analysis_due(run)) is not None and t > c.now]",
     "`>` -> `>=`"):
        "every running analysis is advanced in the call that computes requeue_at, so its next due time is "
        "always later than now",
    ("strategies/judges/sequential.py", "informative = (nc > 0) & (nb > 0)", "0 -> -1"):
        "a window without canary requests has no canary errors: its factor is log(nb/nb) = 0 either way",
    ("strategies/judges/sequential.py",
     "nc1, nb1 = np.where(informative, nc, 1.0), np.where(informative, nb, 1.0)", "1.0 -> 2.0"):
        "placeholders for uninformative windows, whose factor np.where sets to 0 afterwards",
    ("strategies/judges/sequential.py",
     "nc1, nb1 = np.where(informative, nc, 1.0), np.where(informative, nb, 1.0)", "1.0 -> 0.0"):
        "placeholders for uninformative windows, whose factor np.where sets to 0 afterwards",
}


# --------------------------------------------------------------------------- mutants


@dataclass(frozen=True)
class Mutant:
    module: str
    line: int
    source_line: str
    description: str
    index: int  # the site's position in the module's walk: which node to change
    source: str = field(repr=False, compare=False, default="")  # the module as read once (edits meanwhile do not shift sites)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.module, self.source_line, self.description)

    def __str__(self) -> str:
        return f"{self.module}:{self.line}: {self.description}    | {self.source_line}"


_COMPARE_SWAPS: dict[type, tuple[type, ...]] = {
    ast.Lt: (ast.LtE, ast.GtE), ast.LtE: (ast.Lt, ast.Gt), ast.Gt: (ast.GtE, ast.LtE), ast.GtE: (ast.Gt, ast.Lt),
    ast.Eq: (ast.NotEq,), ast.NotEq: (ast.Eq,), ast.Is: (ast.IsNot,), ast.IsNot: (ast.Is,),
    ast.In: (ast.NotIn,), ast.NotIn: (ast.In,),
}
_ARITH_SWAPS: dict[type, type] = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult}
_SYMBOL = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!=", ast.Is: "is",
           ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in", ast.Add: "+", ast.Sub: "-", ast.Mult: "*",
           ast.Div: "/", ast.And: "and", ast.Or: "or"}
_DROPPABLE = (ast.Expr, ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Return, ast.If, ast.Raise)


def _is_docstring(node: ast.AST, parent: ast.AST | None) -> bool:
    return (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str))


def _sites(tree: ast.Module):
    """Every (node, mutation kind, argument, description) of a module, in a stable order."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        # annotations, __all__ and docstrings are not behaviour
        if isinstance(node, (ast.arg, ast.AnnAssign)) and getattr(node, "annotation", None) is not None:
            skip.update(id(n) for n in ast.walk(node.annotation))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.returns is not None:
            skip.update(id(n) for n in ast.walk(node.returns))
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            skip.update(id(n) for n in ast.walk(node))
        if isinstance(node, ast.Assert):  # invariant checks: dropping or flipping them changes no decision
            skip.update(id(n) for n in ast.walk(node))
    out = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Compare):
            for i, op in enumerate(node.ops):
                for new in _COMPARE_SWAPS.get(type(op), ()):
                    out.append((node, "compare", (i, new), f"`{_SYMBOL[type(op)]}` -> `{_SYMBOL[new]}`"))
        elif isinstance(node, ast.BoolOp):
            new = ast.Or if isinstance(node.op, ast.And) else ast.And
            out.append((node, "boolop", new, f"`{_SYMBOL[type(node.op)]}` -> `{_SYMBOL[new]}`"))
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            out.append((node, "not", None, "`not x` -> `x`"))
        elif isinstance(node, ast.BinOp) and type(node.op) in _ARITH_SWAPS:
            new = _ARITH_SWAPS[type(node.op)]
            out.append((node, "arith", new, f"`{_SYMBOL[type(node.op)]}` -> `{_SYMBOL[new]}`"))
        elif isinstance(node, ast.AugAssign) and type(node.op) in _ARITH_SWAPS:
            new = _ARITH_SWAPS[type(node.op)]
            out.append((node, "arith", new, f"`{_SYMBOL[type(node.op)]}=` -> `{_SYMBOL[new]}=`"))
        elif (isinstance(node, ast.Constant) and type(node.value) in (int, float)
              and not isinstance(node.value, bool)):
            for delta in (1, -1):
                out.append((node, "number", delta, f"{node.value!r} -> {node.value + delta!r}"))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.If, ast.For, ast.While, ast.With, ast.Try)):
            for field in ("body", "orelse"):
                for stmt in getattr(node, field, []):
                    if isinstance(stmt, _DROPPABLE) and not _is_docstring(stmt, node) and id(stmt) not in skip:
                        out.append((stmt, "drop", None, f"drop `{ast.unparse(stmt).splitlines()[0][:50]}`"))
    return out


def list_mutants(module: str) -> list[Mutant]:
    source = (ROOT / module).read_text()
    lines = source.splitlines()
    tree = ast.parse(source)
    return [Mutant(module, node.lineno, lines[node.lineno - 1].strip(), description, index, source)
            for index, (node, _, _, description) in enumerate(_sites(tree))]


def mutate(source: str, index: int) -> ast.Module:
    """The module's AST with site ``index`` changed."""
    tree = ast.parse(source)
    node, kind, argument, _ = _sites(tree)[index]
    if kind == "compare":
        i, new = argument
        node.ops[i] = new()
    elif kind in ("boolop", "arith"):
        node.op = argument()
    elif kind == "number":
        node.value = node.value + argument
    elif kind in ("not", "drop"):
        replacement = node.operand if kind == "not" else ast.Pass()
        for parent in ast.walk(tree):
            for field, value in ast.iter_fields(parent):
                if isinstance(value, list) and any(v is node for v in value):
                    value[[v is node for v in value].index(True)] = replacement
                elif value is node:
                    setattr(parent, field, replacement)
    return ast.fix_missing_locations(tree)


def module_name(module: str) -> str:
    parts = Path(module).with_suffix("").parts
    return "rolloutlab." + ".".join(parts)


# --------------------------------------------------------------------------- running


class _MutantFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Loads one module from a code object instead of its file (the file is never touched)."""

    def __init__(self, name: str, path: Path, code) -> None:
        self.name, self.path, self.code = name, path, code

    def find_spec(self, fullname, path, target=None):
        if fullname != self.name:
            return None
        spec = importlib.util.spec_from_loader(fullname, self, origin=str(self.path))
        spec.has_location = True
        if self.path.name == "__init__.py":
            spec.submodule_search_locations = [str(self.path.parent)]
        return spec

    def create_module(self, spec):
        return None

    def exec_module(self, module) -> None:
        module.__file__ = str(self.path)
        exec(self.code, module.__dict__)  # noqa: S102 - the mutant, compiled from our own module


def run_tests(tests: tuple[str, ...], timeout: float, tree: ast.Module | None = None, module: str = "") -> str:
    """Run ``tests`` in a forked child (with ``module`` replaced by ``tree``): passed, failed or timeout."""
    pid = os.fork()
    if pid == 0:  # the child: never returns
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            os.chdir(tempfile.mkdtemp(prefix="mutant-"))  # hypothesis' example database lands here
            if tree is not None:
                code = compile(tree, str(ROOT / module), "exec")
                sys.meta_path.insert(0, _MutantFinder(module_name(module), ROOT / module, code))
            import pytest

            status = pytest.main([*(str(TESTS / t) for t in tests), *PYTEST_ARGS])
            os._exit(0 if status == 0 else 1)
        except BaseException:  # noqa: BLE001 - a mutant that breaks the import is killed
            os._exit(3)
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return "passed" if os.waitstatus_to_exitcode(status) == 0 else "failed"
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return "timeout"
        time.sleep(0.02)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module", action="append", default=[], help="only modules whose path contains this")
    parser.add_argument("--sample", type=int, default=0, help="at most this many mutants per module (seeded)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--jobs", type=int, default=2, help="mutants run at the same time")
    parser.add_argument("--list", action="store_true", help="list the mutants and stop")
    parser.add_argument("--survivors-of", type=Path, help="only the survivors listed in this earlier report")
    args = parser.parse_args()

    modules = [m for m in TARGETS if not args.module or any(s in m for s in args.module)]
    plan: list[Mutant] = []
    for module in modules:
        mutants = list_mutants(module)
        if args.sample and len(mutants) > args.sample:
            mutants = sorted(random.Random(f"{args.seed}:{module}").sample(mutants, args.sample),
                             key=lambda m: m.index)
        plan += mutants
    if args.survivors_of:
        listed = set()
        for line in args.survivors_of.read_text().splitlines():
            if line.startswith("  strategies/") and "    | " in line:
                head, source_line = line.strip().split("    | ", 1)
                module, _, description = head.split(":", 2)
                listed.add((module, source_line.strip(), description.strip()))
        plan = [m for m in plan if m.key in listed]
    if args.list:
        for m in plan:
            print(("[equivalent] " if m.key in EQUIVALENT else "") + str(m))
        print(f"{len(plan)} mutants")
        return

    # heavy imports once, in the parent: every forked child inherits them
    import hypothesis  # noqa: F401
    import numpy  # noqa: F401
    import pydantic  # noqa: F401
    import pytest  # noqa: F401
    import scipy.stats  # noqa: F401
    import yaml  # noqa: F401

    timeouts: dict[str, float] = {}
    for module in modules:
        # through the same loader as the mutants, unmutated: proves the loader itself breaks nothing
        start = time.monotonic()
        source = next(m.source for m in plan if m.module == module) if any(m.module == module for m in plan) else ""
        if source and run_tests(TARGETS[module], 600, ast.parse(source), module) != "passed":
            sys.exit(f"the tests of {module} fail without any mutation: fix them first")
        timeouts[module] = max(10.0, 4 * (time.monotonic() - start))

    results: dict[Mutant, str] = {}
    running: dict[int, Mutant] = {}
    queue = list(plan)
    started = time.monotonic()
    # a small pool of forked runners: each waits for its child in a forked waiter
    while queue or running:
        while queue and len(running) < args.jobs:
            m = queue.pop(0)
            pid = os.fork()
            if pid == 0:
                outcome = run_tests(TARGETS[m.module], timeouts[m.module], mutate(m.source, m.index), m.module)
                os._exit({"passed": 0, "failed": 1, "timeout": 2}[outcome])
            running[pid] = m
        pid, status = os.wait()
        m = running.pop(pid)
        results[m] = {0: "survived", 1: "killed", 2: "timeout"}.get(os.waitstatus_to_exitcode(status), "killed")
        if results[m] == "survived" and m.key not in EQUIVALENT:
            print(f"  survived: {m}", file=sys.stderr, flush=True)
        done = len(results)
        if done % 20 == 0 or not (queue or running):
            print(f"  {done}/{len(plan)} mutants, {time.monotonic() - started:.0f}s", file=sys.stderr, flush=True)

    report(modules, results)


def report(modules: list[str], results: dict[Mutant, str]) -> None:
    print(f"{'module':<36}{'mutants':>8}{'killed':>8}{'equiv.':>8}{'survived':>9}{'score':>8}")
    totals = [0, 0, 0, 0]
    survivors: list[Mutant] = []
    for module in modules:
        rs = {m: r for m, r in results.items() if m.module == module}
        equivalent = [m for m, r in rs.items() if m.key in EQUIVALENT and r == "survived"]
        killed = [m for m, r in rs.items() if r in ("killed", "timeout")]
        survived = [m for m, r in rs.items() if r == "survived" and m.key not in EQUIVALENT]
        survivors += survived
        counted = len(rs) - len(equivalent)
        row = [len(rs), len(killed), len(equivalent), len(survived)]
        totals = [a + b for a, b in zip(totals, row)]
        score = f"{100 * len(killed) / counted:.1f}%" if counted else "-"
        print(f"{module:<36}{row[0]:>8}{row[1]:>8}{row[2]:>8}{row[3]:>9}{score:>8}")
    counted = totals[0] - totals[2]
    print(f"{'total':<36}{totals[0]:>8}{totals[1]:>8}{totals[2]:>8}{totals[3]:>9}"
          f"{(f'{100 * totals[1] / counted:.1f}%' if counted else '-'):>8}")
    print(f"\nkilled {totals[1]} / {totals[0]} mutants; {totals[1]} / {counted} "
          f"({100 * totals[1] / max(counted, 1):.1f}%) after excluding {totals[2]} equivalent ones")
    if survivors:
        print("\nsurvivors:")
        for m in sorted(survivors, key=lambda m: (m.module, m.line)):
            print(f"  {m}")


if __name__ == "__main__":
    main()
