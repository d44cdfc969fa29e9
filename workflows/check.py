"""``rolloutlab check``: run scenario files, judge their expectations, report for CI.

A scenario file names the strategies it is run with (``strategies:``, default the three
bundled ones) and what they must achieve (``expect:``). ``check`` finds scenario files
(files or folders), loads *all* of them before simulating anything (so a typo fails the
build in a second, exit status 2), runs each with every strategy it names over the same
seeded runs (``sim.montecarlo.run_many``: run *i* is the same release for every
strategy), judges every expectation with its confidence interval
(``scenarios.expectations``), prints a table and, when asked, writes a JUnit XML file
(one testcase per scenario x strategy x expectation) and an HTML report.

Exit status: 0 when every expectation holds, 1 when one does not (or a run crashed the
simulator), 2 on bad input (a file that does not load, an unknown strategy, an expression
that does not parse, an unusable path or executor), always with file, line and field.

In a folder, strategy files (a top-level ``strategy:`` key, as the ones scenarios refer
to) and Kubernetes manifests (``apiVersion`` and ``kind``) are skipped; every other YAML
file must be a scenario.
"""

from __future__ import annotations

import os
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table
from rich.text import Text

from rolloutlab.errors import InputError, exit_status
from rolloutlab.scenarios.expectations import (
    DEFAULT_CONFIDENCE,
    ExpectationResult,
    ExpectationVerdict,
    judge_expectations,
)
from rolloutlab.scenarios.schema import ALL_STRATEGIES, SCENARIO_LIBRARY_DIR, Scenario
from rolloutlab.strategies.spec import StrategySpec
from rolloutlab.strategies.yaml_input import YamlDocument, format_field_path, parse_yaml_file, validate_document
from rolloutlab.workflows.compare import ScenarioFile, check_regions_fit, choose_seed, resolve_scenario_strategies
from rolloutlab.workflows.defaults import CHECK_RUNS, DEFAULT_SEED

__all__ = [
    "DEFAULT_RUNS",
    "DEFAULT_SEED",
    "CheckReport",
    "CheckTarget",
    "ScenarioCheck",
    "find_scenario_files",
    "load_check_target",
    "load_check_targets",
    "render_check_table",
    "run_check",
    "run_check_command",
    "run_target",
    "write_junit",
]

DEFAULT_RUNS = CHECK_RUNS
"""Runs per strategy and scenario when ``--runs`` is not given (``workflows.defaults``)."""
EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
YAML_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class CheckTarget:
    """A scenario file loaded and ready to run: its scenario and the strategies it names."""

    path: Path
    scenario: Scenario
    strategies: tuple[StrategySpec, ...]
    lines: tuple[int, ...]
    """Line of each expectation in the file, in ``scenario.expect`` order."""

    @property
    def name(self) -> str:
        return self.scenario.name


@dataclass
class ScenarioCheck:
    """What running one target gave: judgements, or the error that stopped the runs."""

    target: CheckTarget
    judgements: list[ExpectationResult] = field(default_factory=list)
    results: pd.DataFrame | None = None
    seed: int = DEFAULT_SEED
    seconds: float = 0.0
    error: str | None = None
    """A simulator failure (the run to replay is named): every expectation errs."""

    @property
    def passed(self) -> bool:
        return self.error is None and all(j.passed for j in self.judgements)

    def cases(self) -> list[tuple[str, int, ExpectationResult | None]]:
        """(strategy, expectation index, judgement) per testcase; the judgement is None
        when the runs failed."""
        if self.error is None:
            return [(j.strategy, j.index, j) for j in self.judgements]
        return [
            (spec.name, i, None)
            for spec in self.target.strategies
            for i, expectation in enumerate(self.target.scenario.expect)
            if expectation.applies_to(spec.name)
        ]


@dataclass
class CheckReport:
    """All scenarios of one ``check``."""

    outcomes: list[ScenarioCheck]
    runs: int
    confidence: float
    skipped: list[Path] = field(default_factory=list)
    """Scenario files without expectations: nothing to check."""
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return all(o.passed for o in self.outcomes)

    def counts(self) -> tuple[int, int, int]:
        """(testcases, failures, errors)."""
        cases = failures = errors = 0
        for outcome in self.outcomes:
            for _, _, judgement in outcome.cases():
                cases += 1
                if judgement is None:
                    errors += 1
                elif not judgement.passed:
                    failures += 1
        return cases, failures, errors


# ------------------------------------------------------------------------- finding and loading


def find_scenario_files(paths: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """The YAML files named, and those under the folders named (recursively, sorted).

    A path that does not exist, a named file that is not YAML, or nothing found at all is
    an ``InputError``. Files under folders are only candidates: ``load_check_targets``
    skips the strategy files and manifests among them.
    """
    found: dict[Path, None] = {}
    for given in paths:
        path = Path(given)
        if path.is_dir():
            for candidate in sorted(p for p in path.rglob("*") if p.suffix in YAML_SUFFIXES and p.is_file()):
                if not any(part.startswith(".") for part in candidate.relative_to(path).parts):
                    found.setdefault(candidate, None)
        elif path.is_file():
            if path.suffix not in YAML_SUFFIXES:
                raise InputError(str(path), "not a scenario file: scenario files are YAML (.yaml or .yml)")
            found.setdefault(path, None)
        else:
            raise InputError(str(path), "no such file or folder")
    if not found:
        raise InputError(", ".join(str(p) for p in paths) or ".", "no scenario files (.yaml, .yml) found here")
    return list(found)


def _is_other_document(doc: YamlDocument) -> bool:
    """A strategy spec or a Kubernetes manifest, not a scenario."""
    data = doc.data
    return isinstance(data, dict) and ("strategy" in data or ("apiVersion" in data and "kind" in data))


def load_check_target(path: str | os.PathLike[str], *, skip_others: bool = False) -> CheckTarget | None:
    """Load a scenario file and the strategies it names; check its expectations' ``for``.

    Bad input raises ``InputError`` with the file, line and field. With ``skip_others``
    (a file found in a folder) a strategy file or manifest gives None instead.
    """
    path = Path(path)
    documents = parse_yaml_file(path)
    if skip_others and all(_is_other_document(d) for d in documents):
        return None
    if len(documents) != 1:
        raise InputError(str(path), f"expected exactly one YAML document, found {len(documents)}",
                         line=documents[1].start_line)
    doc = documents[0]
    scenario = validate_document(doc, Scenario)
    loaded = ScenarioFile(scenario, path, doc)
    strategies = resolve_scenario_strategies(loaded)
    check_regions_fit(loaded, strategies)
    names = [s.name for s in strategies]
    for i, expectation in enumerate(scenario.expect):
        for j, name in enumerate(expectation.for_):
            if name != ALL_STRATEGIES and name not in names:
                where = ("expect", i, "for") if len(expectation.for_) == 1 else ("expect", i, "for", j)
                raise _error(doc, where, f"no strategy {name!r} in this scenario "
                                         f"(its strategies: {', '.join(names)}; or write 'all')")
    lines = tuple(doc.line_of(("expect", i)) for i in range(len(scenario.expect)))
    return CheckTarget(path, scenario, tuple(strategies), lines)


def _error(doc: YamlDocument, where: tuple, message: str) -> InputError:
    return InputError(doc.file, message, line=doc.line_of(where), field=format_field_path(where, doc.data))


def load_check_targets(
    paths: Sequence[str | os.PathLike[str]],
) -> tuple[list[CheckTarget], list[Path], list[InputError]]:
    """Every scenario under ``paths``: (targets with expectations, files without any,
    the errors of files that did not load). Finding nothing is an ``InputError``."""
    targets, empty, errors = [], [], []
    named_files = {Path(p) for p in paths if Path(p).is_file()}
    for path in find_scenario_files(paths):
        try:
            target = load_check_target(path, skip_others=path not in named_files)
        except InputError as error:
            errors.append(error)
            continue
        if target is None:
            continue
        if target.scenario.expect:
            targets.append(target)
        else:
            empty.append(path)
    return targets, empty, errors


# ------------------------------------------------------------------------- running


def run_target(
    target: CheckTarget, runs: int, seed: int, *, executor: str = "process", progress: bool = False
) -> pd.DataFrame:
    """The results table of ``runs`` runs of every strategy the target names."""
    from rolloutlab.workflows.compare import simulate_many

    return simulate_many(target.scenario, list(target.strategies), runs, seed, executor, progress=progress)


def check_target(
    target: CheckTarget, runs: int, seed: int | None, confidence: float, *,
    executor: str = "process", progress: bool = False,
) -> ScenarioCheck:
    """Run a target and judge its expectations. A crashing run becomes the outcome's
    error; executor problems (``ExecutorError``, ``OSError``) propagate: they are bad input."""
    from rolloutlab.errors import RunFailed

    chosen = choose_seed(seed, target.scenario)
    started = time.monotonic()
    outcome = ScenarioCheck(target, seed=chosen)
    try:
        outcome.results = run_target(target, runs, chosen, executor=executor, progress=progress)
    except RunFailed as error:
        outcome.error = f"the simulator failed: {error}"
    else:
        outcome.judgements = judge_expectations(outcome.results, target.scenario.expect, confidence)
    outcome.seconds = time.monotonic() - started
    return outcome


def run_check(
    targets: Sequence[CheckTarget], runs: int, seed: int | None = None, confidence: float = DEFAULT_CONFIDENCE,
    *, executor: str = "process", progress: bool = False,
    on_outcome: Callable[[ScenarioCheck], None] | None = None,
) -> CheckReport:
    """Check every target in order; ``on_outcome`` sees each as it finishes."""
    started = time.monotonic()
    report = CheckReport([], runs, confidence)
    for target in targets:
        outcome = check_target(target, runs, seed, confidence, executor=executor, progress=progress)
        report.outcomes.append(outcome)
        if on_outcome is not None:
            on_outcome(outcome)
    report.seconds = time.monotonic() - started
    return report


# ------------------------------------------------------------------------- output

_MARKS = {
    ExpectationVerdict.HOLDS: ("holds", "green"),
    ExpectationVerdict.VIOLATED: ("violated", "bold red"),
    ExpectationVerdict.UNPROVEN: ("unproven", "bold red"),
    ExpectationVerdict.NO_DATA: ("no data", "bold red"),
}
# Everything users wrote or the runs measured goes out as rich Text, never as markup:
# "[never, never]" would be read as a style and "x.yaml:100:" as an emoji code.


def render_check_table(report: CheckReport, console: Console) -> None:
    """One row per scenario x strategy x expectation, then every failure in words."""
    level = f"{report.confidence * 100:g}%"
    table = Table(title=f"rolloutlab check: {report.runs} runs per strategy, {level} confidence intervals",
                  header_style="bold", caption="holds: the whole interval meets the expectation")
    for column in ("scenario", "strategy", "expectation", f"measured [{level} CI]", "verdict"):
        table.add_column(Text(column), overflow="fold")
    failures: list[str] = []
    for outcome in report.outcomes:
        target = outcome.target
        for strategy, index, judgement in outcome.cases():
            text = target.scenario.expect[index].assertion.text
            cells = [Text(target.name), Text(strategy), Text(text)]
            if judgement is None:
                table.add_row(*cells, Text(""), Text("error", "bold red"))
                continue
            table.add_row(*cells, Text(judgement.measured), Text(*_MARKS[judgement.verdict]))
            if not judgement.passed:
                failures.append(f"{target.path}:{target.lines[index]}: {target.name}: {strategy}: "
                                f"{text}: {judgement.verdict.value}: {judgement.message}")
        if outcome.error is not None:
            failures.append(f"{target.path}: {target.name}: {outcome.error}")
    console.print(table)
    for line in failures:
        console.print(Text.assemble(("FAIL", "bold red"), " ", line), soft_wrap=True)
    for path in report.skipped:
        console.print(Text(f"skipped {path}: no expectations"))
    cases, failed, errors = report.counts()
    seeds = sorted({o.seed for o in report.outcomes})
    status = ("all hold", "bold green") if report.passed else (f"{failed + errors} failed", "bold red")
    console.print(Text.assemble(
        f"{len(report.outcomes)} scenarios, {cases} expectations: ", status,
        f" ({report.runs} runs per strategy, seed {', '.join(map(str, seeds)) or '-'}, {report.seconds:.1f}s)",
    ))


def write_junit(report: CheckReport, path: str | os.PathLike[str]) -> Path:
    """JUnit XML: a testsuite per scenario file, a testcase per strategy x expectation.

    A testcase's ``classname`` is ``scenario.strategy`` and its ``name`` the expectation
    as written; a failing one carries ``<failure message="...">`` with the measured value,
    its interval and by how much it missed; every testcase's ``<system-out>`` has the
    measured value. A scenario whose runs crashed gives ``<error>`` testcases.
    """
    cases, failures, errors = report.counts()
    root = ET.Element("testsuites", name="rolloutlab check", tests=str(cases), failures=str(failures),
                      errors=str(errors), time=f"{report.seconds:.3f}")
    for outcome in report.outcomes:
        target = outcome.target
        rows = outcome.cases()
        suite = ET.SubElement(
            root, "testsuite", name=target.name, file=str(target.path), tests=str(len(rows)),
            failures=str(sum(1 for _, _, j in rows if j is not None and not j.passed)),
            errors=str(sum(1 for _, _, j in rows if j is None)), skipped="0", time=f"{outcome.seconds:.3f}",
        )
        properties = ET.SubElement(suite, "properties")
        for name, value in (("runs", report.runs), ("seed", outcome.seed), ("confidence", report.confidence),
                            ("strategies", ",".join(s.name for s in target.strategies))):
            ET.SubElement(properties, "property", name=name, value=str(value))
        for strategy, index, judgement in rows:
            text = target.scenario.expect[index].assertion.text
            case = ET.SubElement(suite, "testcase", classname=f"{target.name}.{strategy}", name=text,
                                 file=str(target.path), line=str(target.lines[index]), time="0")
            if judgement is None:
                error = ET.SubElement(case, "error", message=outcome.error or "the runs failed", type="RunFailed")
                error.text = outcome.error
                continue
            summary = f"{strategy}: {text}: {judgement.verdict.value}: {judgement.message}"
            if not judgement.passed:
                failure = ET.SubElement(case, "failure", message=summary, type=judgement.verdict.value)
                failure.text = f"{target.path}:{target.lines[index]}: {target.name}: {summary}"
            ET.SubElement(case, "system-out").text = summary
    path = Path(path)
    ET.indent(root)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
    return path


def write_check_report(report: CheckReport, out_dir: Path) -> dict[str, Path]:
    """The HTML/Markdown report of every scenario's results, led by the expectations."""
    from rolloutlab.reports.document import Section, build_report, write_report
    from rolloutlab.reports.document import Table as ReportTable
    from rolloutlab.results.table import write_results

    tables = [o.results for o in report.outcomes if o.results is not None]
    if not tables:
        return {}
    results = pd.concat(tables, ignore_index=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_results(results, out_dir / "results")
    document = build_report(results)
    rows = []
    for outcome in report.outcomes:
        for strategy, index, judgement in outcome.cases():
            text = outcome.target.scenario.expect[index].assertion.text
            if judgement is None:
                rows.append([outcome.target.name, strategy, text, "", "error", outcome.error or ""])
            else:
                rows.append([outcome.target.name, strategy, text, judgement.measured, judgement.verdict.value,
                             judgement.message])
    cases, failed, errors = report.counts()
    level = f"{report.confidence * 100:g}%"
    document.sections.insert(0, Section(
        title="Expectations",
        paragraphs=[f"{cases} expectations over {len(report.outcomes)} scenarios, {report.runs} runs per strategy: "
                    f"{cases - failed - errors} hold, {failed} fail, {errors} could not be run. An expectation "
                    f"holds when its whole {level} confidence interval meets it."],
        tables=[ReportTable(["scenario", "strategy", "expectation", f"measured [{level} CI]", "verdict", "detail"],
                            rows)],
    ))
    document.title = f"rolloutlab check: {len(report.outcomes)} scenarios"
    return write_report(document, out_dir)


# ------------------------------------------------------------------------- the command


def run_check_command(
    paths: Sequence[str | os.PathLike[str]] | None = None,
    *,
    runs: int = DEFAULT_RUNS,
    seed: int | None = None,
    confidence: float = DEFAULT_CONFIDENCE,
    executor: str = "process",
    junit: str | os.PathLike[str] | None = None,
    report_dir: str | os.PathLike[str] | None = None,
    out: Console | None = None,
    err: Console | None = None,
    progress: bool = False,
) -> int:
    """The whole ``rolloutlab check``: returns the exit status (0, 1 or 2) and never raises
    for bad input. ``paths`` default to the bundled scenario library."""
    from rolloutlab.errors import BadInput, ExecutorError
    from rolloutlab.sim.montecarlo import parse_executor

    out = out or Console()
    err = err or Console(stderr=True)

    def bad(error: Exception) -> int:
        err.print(Text.assemble(("error:", "bold red"), " ", str(error)), soft_wrap=True)
        return exit_status(error)

    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1:
        return bad(InputError("--runs", f"must be a whole number of runs, at least 1, not {runs!r}"))
    if not 0.5 <= confidence < 1:
        return bad(InputError("--confidence", f"must be at least 0.5 and below 1, not {confidence!r}"))
    if seed is not None and not 0 <= seed < 2**63:
        return bad(InputError("--seed", f"must be within 0 .. 2**63 - 1, not {seed!r}"))
    try:
        parse_executor(executor)
    except ExecutorError as error:
        return bad(error)
    try:
        targets, skipped, errors = load_check_targets(list(paths) if paths else [SCENARIO_LIBRARY_DIR])
    except InputError as error:
        return bad(error)
    if errors:
        for error in errors:
            bad(error)
        return EXIT_BAD_INPUT
    for option, where in (("--junit", junit), ("--report", report_dir)):
        if where is None:
            continue
        folder = Path(where) if option == "--report" else Path(where).parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            return bad(InputError(str(where), f"cannot write {option} here: {error.strerror or error}"))
        if option == "--junit" and Path(where).is_dir():
            return bad(InputError(str(where), "--junit names a folder; give a file such as check.xml"))
    def announce(outcome: ScenarioCheck) -> None:  # a line per scenario as it finishes, for CI logs
        if outcome.error is not None:
            status = ("error", "bold red")
        else:
            failed = sum(1 for j in outcome.judgements if not j.passed)
            status = (f"{failed} failed", "bold red") if failed else ("all hold", "green")
        out.print(Text.assemble(f"{outcome.target.path}: {len(outcome.cases())} expectations, ", status,
                                f" ({outcome.seconds:.1f}s)"))

    try:
        report = run_check(targets, runs, seed, confidence, executor=executor, progress=progress,
                           on_outcome=announce)
    except BadInput as error:  # an executor that cannot be used or reached
        return bad(error)
    except OSError as error:  # e.g. a dask:// address nobody answers at
        return bad(InputError(executor, f"the executor could not be reached: {error}"))
    report.skipped = list(skipped)
    render_check_table(report, out)
    try:
        if junit is not None:
            out.print(Text(f"JUnit: {write_junit(report, junit)}"))
        if report_dir is not None:
            written = write_check_report(report, Path(report_dir))
            if written:
                out.print(Text(f"report: {written['html']}"))
    except OSError as error:
        return bad(InputError(str(junit if report_dir is None else report_dir), f"cannot write: {error.strerror or error}"))
    return EXIT_OK if report.passed else EXIT_FAILED
