"""rolloutlab tune: the search list of a strategy file, candidates built from it, and the
search end to end on the standard scenario (a small budget; the full one is
benchmarks/bench_tune.py)."""

from __future__ import annotations

import json
import math
import textwrap

import pandas as pd
import pytest
from typer.testing import CliRunner

from rolloutlab.cli import app
from rolloutlab.errors import InputError
from rolloutlab.scenarios import bundled_scenario, load_scenario
from rolloutlab.strategies import load_strategy
from rolloutlab.strategies.files import bundled_strategy_names
from rolloutlab.strategies.search_spec import apply_values, expand_path, search_parameters, strategy_document
from rolloutlab.workflows.tune.command import candidates_frame, tune
from rolloutlab.workflows.tune.objectives import parse_constraint, parse_objective
from rolloutlab.workflows.tune.search import Candidate, TuneSettings, choose
from rolloutlab.workflows.tune.space import strategy_parameters

runner = CliRunner()


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


CANARY = textwrap.dedent("""\
    name: mine
    analysisTemplates:
      - name: errors
        metrics:
          - name: errors
            interval: 30s
            successCondition: result < 0.02
            failureLimit: 1
    strategy:
      canary:
        analysis: {templates: [{templateName: errors}]}
        steps:
          - setWeight: 10
          - pause: {duration: 2m}
    """)


@pytest.mark.parametrize("entry, field_message", [
    ("{field: 'analysisTemplates[0].metrics[0].intervall', range: [10s, 1m]}", "no field"),
    ("{field: 'analysisTemplates[0].metrics[0].failureLimit', range: [0.5, 2]}", "whole numbers"),
    ("{field: 'analysisTemplates[0].metrics[0].interval'}", "either range"),
    ("{field: 'analysisTemplates[0].metrics[0].judge', choices: [threshold, bayes]}", "not bayes"),
    ("{field: 'strategy.canary.steps', count: [1, 3], weight: [0, 50], pause: [30s, 2m]}", "above 0"),
    ("{field: 'analysisTemplates[0].metrics[0].interval', range: [2m, 10s]}", "above high"),
])
def test_a_wrong_search_entry_names_the_file_line_and_field(tmp_path, entry, field_message):
    path = write(tmp_path, "s.yaml", CANARY + f"search:\n  - {entry}\n")
    with pytest.raises(InputError) as error:
        load_strategy(path)
    text = str(error.value)
    assert "s.yaml" in text and "search[0]" in text and field_message in text
    assert error.value.line is not None and error.value.line >= 15


def test_a_schedule_search_refuses_steps_it_would_drop():
    header = load_strategy("header-canary")
    from rolloutlab.strategies.search_spec import SearchField

    entry = SearchField(field="strategy.canary.steps", count=(1, 3), weight=(1, 50), pause=(30, 120))
    with pytest.raises(Exception, match="setCanaryScale, setHeaderRoute"):
        search_parameters(header, (entry,))


def test_a_wildcard_sets_every_item_that_has_the_field():
    spec = load_strategy("header-canary")
    data = strategy_document(spec)
    paths = expand_path("strategy.canary.steps[*].pause.duration", data)
    assert [p[3] for p in paths] == [5, 7, 9]  # the three pauses, not the route and analysis steps
    parameters, _ = search_parameters(spec)
    pause = next(p for p in parameters if p.name.endswith("pause.duration"))
    tuned = apply_values(spec, [pause], {pause.name: 45.0}, "t")
    assert [s.pause.duration for s in tuned.strategy.canary.steps if s.pause] == [45.0, 45.0, 45.0]
    assert tuned.strategy.canary.steps[1].set_header_route is not None  # the routes stay


def test_candidate_values_land_in_a_valid_strategy():
    spec = load_strategy("canary")
    parameters, _ = search_parameters(spec)
    by_kind = {p.kind: p for p in parameters}
    values = {p.name: p.current for p in parameters}
    values[by_kind["schedule"].name] = [(3, 40.0), (30, 90.0)]
    values[by_kind["threshold"].name] = 0.011
    values[by_kind["judge"].name] = ("sequential", {"alpha": 0.01, "minEffect": 1.5, "tolerance": 0.2})
    values[by_kind["int"].name] = 0
    values[by_kind["float"].name] = 15.0
    tuned = apply_values(spec, parameters, values, "canary-t1")
    canary = tuned.strategy.canary
    assert [(s.set_weight, s.pause.duration if s.pause else None) for s in canary.steps] == [
        (3, None), (None, 40.0), (30, None), (None, 90.0)]
    metric = tuned.analysis_templates[0].metrics[0]
    assert metric.success_condition == "result < 0.011" and metric.failure_limit == 0 and metric.interval == 15.0
    assert metric.judge.kind == "sequential" and metric.judge.sequential.min_effect == 1.5
    assert tuned.name == "canary-t1" and tuned.search == ()


def test_a_strategy_without_a_search_list_takes_its_kinds_bundled_one(tmp_path):
    spec = load_strategy(write(tmp_path, "mine.yaml", CANARY))
    parameters, notes = strategy_parameters(spec)
    assert {p.kind for p in parameters} == {"schedule", "float", "int", "threshold", "judge"}
    assert "bundled 'canary'" in notes[0]
    ab = load_strategy("ab-test")  # routed steps: the schedule is left out, and said so
    parameters, notes = strategy_parameters(ab)
    assert "schedule" not in {p.kind for p in parameters}
    assert any("strategy.canary.steps" in n and "not searched" in n for n in notes)


def test_near_ties_on_the_first_objective_go_to_the_faster_candidate():
    from rolloutlab.results.statistics import Figure

    objectives = (parse_objective("failed_requests.mean"), parse_objective("rollout_duration.mean"))

    def cand(number, failed, low, high, duration):
        return Candidate(number, None, {}, runs=100, figures={
            "failed_requests.mean": Figure(failed, low, high, 100),
            "rollout_duration.mean": Figure(duration, duration - 1, duration + 1, 100)})

    slow_best = cand(1, 100.0, 95.0, 105.0, 600.0)
    fast_close = cand(2, 103.0, 98.0, 108.0, 120.0)
    fast_worse = cand(3, 130.0, 125.0, 135.0, 60.0)
    assert choose([slow_best, fast_close, fast_worse], objectives).number == 2
    assert choose([slow_best, fast_worse], objectives).number == 1


def test_objectives_and_constraints_are_checked():
    with pytest.raises(InputError, match="unknown metric"):
        parse_objective("failures.mean")
    with pytest.raises(InputError, match="takes no statistic"):
        parse_objective("false_rollback_rate.mean")
    assert parse_objective("mttr.p50").name == "mttr.median"
    with pytest.raises(InputError):
        parse_constraint("rollout_duration.mean <<= 5m")


def test_tune_beats_the_bundled_canary_within_its_duration_budget():
    """The issue's "done when", on a small budget: the chosen strategy has fewer failed
    requests than the bundled canary, with intervals apart, on fresh runs, and meets the
    duration budget it was given."""
    scenario = load_scenario(bundled_scenario("standard"))
    settings = TuneSettings((parse_objective("failed_requests.mean"), parse_objective("rollout_duration.mean")),
                            (parse_constraint("false_rollback_rate <= 2%"), parse_constraint("rollout_duration.mean <= 7m")),
                            candidates=16, stages=(30, 100, 300), batch=8, seed=5, executor="process")
    result = tune(scenario, load_strategy("canary"), settings, confirm_runs=800)
    assert result.front and result.tuned is not None
    conf = result.confirmation
    start, chosen = conf.figures["failed_requests.mean"]
    assert chosen.high < start.low, (start, chosen)  # intervals apart, not just estimates
    assert conf.differences["failed_requests.mean"].high < 0  # the paired difference says the same
    verdicts = {r.assertion.text: r.verdict.value for r in conf.constraints}
    assert verdicts["rollout_duration.mean <= 7m"] == "holds", verdicts
    assert all(c.complete for c in result.front)
    stopped = [c for c in result.search.candidates if c.stopped]
    assert stopped and all(c.runs < 300 for c in stopped)  # early stopping spent fewer runs on them
    assert result.search.simulated_runs < (settings.candidates + 1) * 300


def test_the_cli_writes_the_tuned_strategy_and_is_reproducible(tmp_path):
    args = ["tune", "standard", "--strategy", "canary", "--candidates", "6", "--runs", "20,60", "--batch", "3",
            "--confirm-runs", "100", "--seed", "9", "--executor", "serial"]
    first = runner.invoke(app, [*args, "--out", str(tmp_path / "a")])
    assert first.exit_code == 0, first.output
    assert "Pareto front" in first.output
    second = runner.invoke(app, [*args, "--out", str(tmp_path / "b")])
    assert second.exit_code == 0, second.output
    a = pd.read_csv(tmp_path / "a" / "candidates.csv")
    b = pd.read_csv(tmp_path / "b" / "candidates.csv")
    pd.testing.assert_frame_equal(a, b)  # same seed, same search
    assert len(a) == 7 and set(a["state"]) <= {"front", "scored", "stopped", "infeasible", "invalid"}
    tuned = list((tmp_path / "a").glob("*-tuned.yaml"))
    if tuned:  # a tuned file is a strategy every command reads
        spec = load_strategy(tuned[0])
        assert spec.name == "canary-tuned" and all(
            not math.isnan(s.pause.duration) for s in spec.strategy.canary.steps if s.pause)
    assert (tmp_path / "a" / "report.html").read_text().count("<img") == 1
    payload = json.loads((tmp_path / "a" / "tune.json").read_text())
    assert payload["strategy"] == "canary" and len(payload["front"]) >= 1 and payload["seed"] == 9
    assert payload["summary"].startswith("your canary") or payload["summary"].startswith("no candidate")


@pytest.mark.parametrize("args, message", [
    (["--objective", "nonsense.mean"], "unknown metric"),
    (["--constraint", "false_rollback_rate <= lots"], "--constraint"),
    (["--runs", "50,abc"], "--runs"),
    (["--runs", "200,50"], "increasing"),
])
def test_bad_options_exit_2_with_one_line(tmp_path, args, message):
    result = runner.invoke(app, ["tune", "standard", "--candidates", "2", "--out", str(tmp_path), *args])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def tiny(seed: int = 1, executor: str = "serial") -> TuneSettings:
    return TuneSettings((parse_objective("failed_requests.mean"), parse_objective("rollout_duration.mean")),
                        (parse_constraint("false_rollback_rate <= 2%"),), candidates=3, stages=(8, 16), batch=3,
                        seed=seed, executor=executor)


@pytest.mark.parametrize("name", bundled_strategy_names())
def test_every_bundled_strategy_can_be_tuned(name):
    """Each bundled technique (the new ones included) has a search list that makes valid
    candidates, and the search scores them."""
    result = tune(load_scenario(bundled_scenario("standard")), load_strategy(name), tiny(), confirm_runs=10)
    assert not [c.invalid for c in result.search.candidates if c.invalid]
    assert all(c.runs >= 8 for c in result.search.candidates)
    assert result.front  # at least the start, scored on every stage
    changed = [c for c in result.search.candidates if c.spec != load_strategy(name).model_copy(
        update={"name": c.spec.name, "search": ()})]
    assert changed  # the search really moved settings


def test_a_tune_is_the_same_on_every_executor():
    """Same seed, same candidates and figures, whether the runs go serial or to Dask."""
    pytest.importorskip("distributed", reason="dask.distributed is not installed: pip install 'rolloutlab[dask]'")
    from distributed import LocalCluster

    scenario = load_scenario(bundled_scenario("standard"))
    serial = candidates_frame(tune(scenario, load_strategy("canary"), tiny(7), confirm_runs=10))
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=False, protocol="tcp", host="127.0.0.1",
                           dashboard_address=None)
    try:
        address = "dask://" + cluster.scheduler_address.removeprefix("tcp://")
        with pytest.warns(RuntimeWarning):  # threads share the GIL: run_many says so
            dask = candidates_frame(tune(scenario, load_strategy("canary"), tiny(7, address), confirm_runs=10))
    finally:
        cluster.close()
    pd.testing.assert_frame_equal(serial, dask)


def test_constraints_nobody_meets_say_so_and_choose_nothing():
    settings = TuneSettings(tiny().objectives, (parse_constraint("rollout_duration.mean <= 1s"),), candidates=3,
                            stages=(8, 16), batch=3, seed=1, executor="serial")
    result = tune(load_scenario(bundled_scenario("standard")), load_strategy("canary"), settings, confirm_runs=10)
    assert result.front == [] and result.chosen is None and result.tuned is None
    assert any("meets every constraint" in n for n in result.notes)
    assert all(c.stopped.startswith("breaks rollout_duration.mean <= 1s") for c in result.search.candidates)


def test_pairs_are_made_on_the_runs_both_strategies_counted():
    """A population that depends on the strategy (deployments that hurt users, for MTTR)
    is paired run by run, never position by position."""
    from rolloutlab.scenarios.expectations import compute_metric_sample
    from rolloutlab.workflows.tune.objectives import paired_differences, per_run_values

    def rows(changed, restore):
        return pd.DataFrame({"run": [0, 1, 2, 3], "defect": ["error_rate"] * 4, "outcome": ["rolled_back"] * 4,
                             "change_failed": changed, "time_to_restore": restore,
                             "impact_started_at": [0.0] * 4, "ended_at": [1800.0] * 4})

    mttr = parse_objective("mttr.mean")
    a = per_run_values(mttr, compute_metric_sample(rows([True, False, True, True], [60.0, math.nan, 90.0, 30.0]), "mttr"))
    b = per_run_values(mttr, compute_metric_sample(rows([False, True, True, True], [math.nan, 10.0, 80.0, 50.0]), "mttr"))
    assert list(a.index) == [0, 2, 3] and list(b.index) == [1, 2, 3]
    assert paired_differences(b, a).tolist() == [80.0 - 90.0, 50.0 - 30.0]  # runs 2 and 3 only
    assert per_run_values(parse_objective("mttr.p90"), compute_metric_sample(rows([True] * 4, [1.0] * 4), "mttr")) is None
