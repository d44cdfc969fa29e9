"""pytest plugin: scenario files are tests, so ``pytest scenarios/`` checks them.

Installed with rolloutlab (a ``pytest11`` entry point), it collects every YAML file with a
top-level ``expect:`` section that pytest visits as a scenario: one test item per
strategy x expectation, with the same runs, intervals and verdicts as ``rolloutlab
check`` and its message when one fails. Each scenario is simulated once, when its first
item runs. A file that does not load is a collection error naming file, line and field.

Only paths pytest visits are collected, so a project whose ``testpaths`` do not include
its scenario folder pays nothing for them in its normal test run; ``pytest scenarios/``
or ``pytest path/to/scenario.yaml`` checks them.

Options (command line, or the ini keys in brackets): ``--rolloutlab-runs``
(``rolloutlab_runs``, default 400), ``--rolloutlab-seed``, ``--rolloutlab-confidence``
(``rolloutlab_confidence``, default 0.95), ``--rolloutlab-executor``
(``rolloutlab_executor``, default ``process``).

This module is imported by pytest alone; it imports rolloutlab's simulator only when a
scenario file is collected, and never hypothesis.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

_TOP_LEVEL_EXPECT = re.compile(rb"^expect[ \t]*:", re.MULTILINE)
_SUFFIXES = (".yaml", ".yml")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("rolloutlab", "rolloutlab scenario files")
    group.addoption("--rolloutlab-runs", type=int, default=None, metavar="N",
                    help="runs per strategy and scenario file (default: ini rolloutlab_runs, else 400)")
    group.addoption("--rolloutlab-seed", type=int, default=None, metavar="SEED",
                    help="root seed (default: the scenario's seed, else 1)")
    group.addoption("--rolloutlab-confidence", type=float, default=None, metavar="LEVEL",
                    help="confidence level expectations are judged at (default 0.95)")
    group.addoption("--rolloutlab-executor", default=None, metavar="EXECUTOR",
                    help="serial, process (default) or dask://HOST:PORT")
    parser.addini("rolloutlab_runs", "runs per strategy and scenario file", default="")
    parser.addini("rolloutlab_confidence", "confidence level expectations are judged at", default="")
    parser.addini("rolloutlab_executor", "serial, process or dask://HOST:PORT", default="")


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix in _SUFFIXES and _has_expectations(file_path):
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


def _has_expectations(path: Path) -> bool:
    """A cheap look before parsing: a top-level ``expect:`` key."""
    try:
        return _TOP_LEVEL_EXPECT.search(path.read_bytes()) is not None
    except OSError:
        return False


def _setting(config: pytest.Config, option: str, ini: str | None, convert: Any, default: Any) -> Any:
    value = config.getoption(option)
    if value is None and ini is not None:
        raw = config.getini(ini)
        value = convert(raw) if raw else None
    return default if value is None else value


class ExpectationFailed(Exception):
    """An expectation that does not hold; its message is what ``rolloutlab check`` prints."""


class ScenarioFile(pytest.File):
    """A scenario file: one item per strategy x expectation."""

    def collect(self):
        from rolloutlab.errors import InputError
        from rolloutlab.workflows.check import load_check_target

        try:
            target = load_check_target(self.path)
        except InputError as error:
            raise self.CollectError(str(error)) from None
        assert target is not None
        self.target = target
        self._judged: dict[tuple[str, int], Any] | None = None
        self._failure: str | None = None
        for spec in target.strategies:
            for index, expectation in enumerate(target.scenario.expect):
                if expectation.applies_to(spec.name):
                    text = expectation.assertion.text
                    yield ScenarioItem.from_parent(self, name=f"{spec.name}[{text}]", strategy=spec.name, index=index)

    def judgement(self, strategy: str, index: int) -> Any:
        """The judgement of one item; the scenario is simulated on the first call."""
        if self._judged is None and self._failure is None:
            self._run()
        if self._failure is not None:
            raise ExpectationFailed(self._failure)
        assert self._judged is not None
        return self._judged[(strategy, index)]

    def _run(self) -> None:
        from rolloutlab.scenarios.expectations import DEFAULT_CONFIDENCE
        from rolloutlab.workflows.check import DEFAULT_RUNS, check_target

        config = self.config
        runs = _setting(config, "--rolloutlab-runs", "rolloutlab_runs", int, DEFAULT_RUNS)
        seed = _setting(config, "--rolloutlab-seed", None, int, None)
        confidence = _setting(config, "--rolloutlab-confidence", "rolloutlab_confidence", float, DEFAULT_CONFIDENCE)
        executor = _setting(config, "--rolloutlab-executor", "rolloutlab_executor", str, "process")
        outcome = check_target(self.target, runs, seed, confidence, executor=executor)
        if outcome.error is not None:
            self._failure = outcome.error
            return
        self._judged = {(j.strategy, j.index): j for j in outcome.judgements}


class ScenarioItem(pytest.Item):
    """One expectation for one strategy of a scenario file."""

    def __init__(self, *, strategy: str, index: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.strategy = strategy
        self.index = index

    @property
    def scenario_file(self) -> ScenarioFile:
        assert isinstance(self.parent, ScenarioFile)
        return self.parent

    def runtest(self) -> None:
        judgement = self.scenario_file.judgement(self.strategy, self.index)
        if not judgement.passed:
            target = self.scenario_file.target
            raise ExpectationFailed(
                f"{target.path}:{target.lines[self.index]}: {target.name}: {self.strategy}: "
                f"{judgement.assertion.text}: {judgement.verdict.value}\n{judgement.message}"
            )

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, ExpectationFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int, str]:
        target = self.scenario_file.target
        expectation = target.scenario.expect[self.index]
        return self.path, target.lines[self.index] - 1, f"{target.name}: {self.strategy}: {expectation.assertion.text}"
