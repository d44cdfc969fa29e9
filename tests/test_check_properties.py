"""Properties of `rolloutlab check` over generated scenarios (scenarios.generate)."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console
from yaml_mutations import mutated_lines

from rolloutlab.scenarios.generate import checkable_scenarios, expectation_texts, scenario_yaml
from rolloutlab.scenarios.schema import Scenario, parse_assertion
from rolloutlab.workflows.check import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, load_check_target, run_check_command

PROPERTY = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
seeds = st.integers(0, 2**32 - 1)
small_scenarios = checkable_scenarios(max_rps=500, max_duration=600)


def check_text(text: str, *, runs: int, seed: int) -> tuple[int, str]:
    """`check` on a scenario file holding ``text``: (exit status, what it printed)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "generated.yaml"
        path.write_text(text, encoding="utf-8")
        printed = io.StringIO()
        console = Console(file=printed, width=160)
        code = run_check_command([path], runs=runs, seed=seed, executor="serial", out=console, err=console,
                                 junit=Path(folder) / "check.xml")
        return code, printed.getvalue()


@settings(max_examples=40, deadline=None)
@given(checkable_scenarios())
def test_a_generated_scenario_file_loads_back_as_written(scenario):
    """scenario_yaml writes a file that validates back to the same scenario, strategies
    and expectations included."""
    assert Scenario.model_validate(yaml.safe_load(scenario_yaml(scenario))) == scenario


@settings(max_examples=60, deadline=None)
@given(expectation_texts())
def test_generated_expectations_parse(text):
    """Every generated expectation expression is one the schema reads."""
    assert parse_assertion(text).text == text


@PROPERTY
@given(small_scenarios, st.integers(1, 4), seeds)
def test_check_of_a_valid_scenario_exits_0_or_1(scenario, runs, seed):
    """A valid scenario never crashes `check` and is never bad input: its expectations
    hold (0) or do not (1), whatever the world, the runs and the seed."""
    code, printed = check_text(scenario_yaml(scenario), runs=runs, seed=seed)
    assert code in (EXIT_OK, EXIT_FAILED), printed
    assert "simulator failed" not in printed


JUNK = st.one_of(
    st.sampled_from(["", "[", "{", "- x", "mttr <= ", "mtbf <= 5m", "cost.p100 <= 1h", "yes", "~", "1e999",
                     "for: nobody", "strategies: [canray]", "expect: 5", "'", "&a", "*a", "- {for: canary}"]),
    expectation_texts(),
    st.text(max_size=15),
)


@PROPERTY
@given(small_scenarios, st.data(), seeds)
def test_check_of_a_damaged_scenario_file_exits_0_1_or_2(scenario, data, seed):
    """A scenario file with random line edits makes `check` exit 0, 1 or 2, never
    anything else and never with a traceback."""
    text = data.draw(mutated_lines(scenario_yaml(scenario), JUNK, max_edits=3, max_indent=6))
    code, printed = check_text(text, runs=2, seed=seed)
    assert code in (EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT), printed
    assert "Traceback" not in printed


@PROPERTY
@given(small_scenarios, st.text(max_size=30), seeds)
def test_an_expression_the_schema_refuses_is_bad_input(scenario, text, seed):
    """Replacing an expectation by any text gives exit 2 exactly when the text is not
    an expression the schema reads (and then nothing is simulated)."""
    document = yaml.safe_load(scenario_yaml(scenario))
    document["expect"][0]["assert"] = text
    try:
        parse_assertion(text)
    except ValueError:
        readable = False
    else:
        readable = True
    code, printed = check_text(yaml.safe_dump(document, sort_keys=False), runs=1, seed=seed)
    if readable:
        assert code in (EXIT_OK, EXIT_FAILED), printed
    else:
        assert code == EXIT_BAD_INPUT, printed
        assert "generated.yaml:" in printed and "expect[0].assert" in printed


def test_generated_scenarios_are_checkable_targets(tmp_path):
    """A file written by scenario_yaml loads as a check target with the strategies and
    expectations it names (the plugin and `check` read it the same way)."""
    scenario = Scenario.model_validate({
        "name": "g", "strategies": ["canary", "rolling"],
        "expect": ["mttr.p90 <= 5m", {"for": "canary", "assert": "cost.mean <= 5h"}],
    })
    path = tmp_path / "g.yaml"
    path.write_text(scenario_yaml(scenario))
    target = load_check_target(path)
    assert [s.name for s in target.strategies] == ["canary", "rolling"]
    assert [e.assertion.text for e in target.scenario.expect] == ["mttr.p90 <= 5m", "cost.mean <= 5h"]
