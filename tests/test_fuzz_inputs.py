"""A seeded mutation fuzzer of rolloutlab's own files, as a careless user would edit them.

Every bundled strategy, ``scenarios/standard.yaml`` and every library scenario and strategy
is mutated value by value (``yaml_mutations.mutate_document``): edge numbers, YAML 1.1
surprises (``yes``, ``010``), durations of centuries, names that do not exist, keys
misspelt, lines lost. Each mutant must either load, or raise ``InputError`` naming the file
and line (and, once the YAML reads as a mapping, the field). When it loads, ``lint``
must pass it or refuse it the same way, and when lint passes it one short ``simulate``
(1 run, serial) must succeed: anything else is a bug the fuzzer found.

Case ``i`` of file ``f`` draws from ``SeedSequence(FUZZ_SEED, spawn_key=(FILES.index(f), i))``:
rerun one with ``pytest tests/test_fuzz_inputs.py -k 'standard-017'``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner
from yaml_mutations import mutate_document

from rolloutlab.cli import app
from rolloutlab.errors import InputError
from rolloutlab.scenarios.schema import BUNDLED_SCENARIOS_DIR, SCENARIO_LIBRARY_DIR, load_scenario
from rolloutlab.strategies.files import LIBRARY_DIR, load_strategy
from rolloutlab.strategies.yaml_input import parse_yaml_file

FUZZ_SEED = int(os.environ.get("ROLLOUTLAB_FUZZ_SEED", "11"))
"""Root of every case's seed. CI runs 11; set ROLLOUTLAB_FUZZ_SEED to explore other mutants
(a failure message names the seed that found it)."""
CASES_PER_FILE = 16
MAX_EDITS = 3
EDIT_COUNT_WEIGHTS = (0.6, 0.3, 0.1)

STRATEGY_FILES = sorted(LIBRARY_DIR.glob("*.yaml")) + sorted((SCENARIO_LIBRARY_DIR / "strategies").glob("*.yaml"))
SCENARIO_FILES = [BUNDLED_SCENARIOS_DIR / "standard.yaml", *sorted(SCENARIO_LIBRARY_DIR.glob("*.yaml"))]
FILES = [*STRATEGY_FILES, *SCENARIO_FILES]
CASES = [(f, i) for f in FILES for i in range(CASES_PER_FILE)]

runner = CliRunner()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A folder for the mutants, holding the library's strategy files so the scenarios'
    relative ``strategies:`` entries resolve as they do in the library."""
    folder = tmp_path_factory.mktemp("fuzz")
    shutil.copytree(SCENARIO_LIBRARY_DIR / "strategies", folder / "strategies")
    return folder


def _mutant(source: Path, index: int) -> tuple[str, list[str], np.random.Generator]:
    rng = np.random.default_rng(np.random.SeedSequence(FUZZ_SEED, spawn_key=(FILES.index(source), index)))
    edits = 1 + int(rng.choice(MAX_EDITS, p=EDIT_COUNT_WEIGHTS))  # mostly one slip, sometimes a few
    text, done = mutate_document(source.read_text(), rng, edits)
    return text, done, rng


def _reads_as_one_mapping(path: Path) -> bool:
    try:
        documents = parse_yaml_file(path)
    except InputError:
        return False
    return len(documents) == 1 and isinstance(documents[0].data, dict)


def _invoke(*args: str):
    result = runner.invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"`rolloutlab {' '.join(args)}` raised") from result.exception
    return result


@pytest.mark.parametrize(("source", "index"), CASES, ids=[f"{f.stem}-{i:03d}" for f, i in CASES])
def test_a_mutant_loads_or_is_refused_with_file_line_and_field(workdir, source, index):
    """A mutated bundled file loads, or raises InputError naming its file and line (and
    field, when the YAML reads as a mapping); one that loads passes lint or is refused by it
    the same way, and one lint passes simulates once without error."""
    text, edits, rng = _mutant(source, index)
    is_strategy = source in STRATEGY_FILES
    path = workdir / f"{source.stem}-{index:03d}.yaml"
    path.write_text(text, encoding="utf-8")
    replay = f"case {source.name} #{index} (seed {FUZZ_SEED}), edits: {edits}\n--- mutant:\n{text}"

    try:
        loaded = load_strategy(path) if is_strategy else load_scenario(path)
    except InputError as error:
        assert error.file == str(path), replay
        assert error.line is not None and error.line >= 1, f"{error}\n{replay}"
        if _reads_as_one_mapping(path):
            assert error.field, f"no field in: {error}\n{replay}"
        return

    linted = _invoke("lint", str(path))
    assert linted.exit_code in (0, 2), f"{linted.output}\n{replay}"
    if linted.exit_code == 2:
        assert f"{path}:" in " ".join(linted.output.split()), f"{linted.output}\n{replay}"
        return

    if is_strategy:
        # a strategy that goes out in waves needs the regions it names: the scenario beside it
        scenario = str(SCENARIO_LIBRARY_DIR / "three-regions.yaml") if loaded.waves is not None else "standard"
        strategy = str(path)
    else:
        entry = loaded.strategies[int(rng.integers(len(loaded.strategies)))]
        scenario, strategy = str(path), str(workdir / entry) if entry.endswith((".yaml", ".yml")) else entry
    simulated = _invoke("simulate", scenario, "-s", strategy, "--runs", "1", "--seed", "1", "--executor", "serial",
                        "--no-report", "--out", str(workdir / "out"))
    if is_strategy and loaded.waves is not None and simulated.exit_code == 2:
        # a mutant's waves may name other regions than the scenario's: refused cleanly, on its regions line
        assert "three-regions.yaml:" in simulated.output and "region" in simulated.output, f"{simulated.output}\n{replay}"
        return
    assert simulated.exit_code == 0, f"{simulated.output}\n{replay}"


def test_the_fuzzer_reaches_the_simulator(tmp_path):
    """Most mutants stay readable YAML and a good share of them load, so the fuzzer tests
    the schema and the simulator, not only the YAML parser."""
    shutil.copytree(SCENARIO_LIBRARY_DIR / "strategies", tmp_path / "strategies")
    sample = CASES[::4]
    loaded = 0
    for source, index in sample:
        path = tmp_path / f"{source.stem}-{index:03d}.yaml"
        path.write_text(_mutant(source, index)[0], encoding="utf-8")
        try:
            (load_strategy if source in STRATEGY_FILES else load_scenario)(path)
        except InputError:
            continue
        loaded += 1
    assert loaded >= len(sample) // 5
