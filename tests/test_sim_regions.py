"""Region waves in the simulator (sim.regions): one world per region under the waves
supervisor, results across regions, blast radius, and the scenario's regions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rolloutlab.scenarios.schema import Scenario
from rolloutlab.sim.regions import WavesRun, region_scenario, simulate_waves
from rolloutlab.sim.run import simulate_run
from rolloutlab.strategies.files import load_strategy
from rolloutlab.workflows.compare import load_scenario_file

LIBRARY = Path(__file__).resolve().parents[1] / "scenarios" / "library"
SCENARIO = load_scenario_file(LIBRARY / "three-regions.yaml").scenario
WAVES = load_strategy(LIBRARY / "strategies" / "canary-three-waves.yaml")
TWO_WAVES = load_strategy(LIBRARY / "strategies" / "canary-two-waves.yaml")
ONE_WAVE = load_strategy("canary")
HORIZON = SCENARIO.duration + 48 * 3600.0


def bad(scenario: Scenario = SCENARIO) -> Scenario:
    return scenario.model_copy(update={"release": scenario.release.model_copy(update={"defect_probability": 1.0})})


def good(scenario: Scenario = SCENARIO) -> Scenario:
    return scenario.model_copy(update={"release": scenario.release.model_copy(update={"defect_probability": 0.0})})


def rows(scenario: Scenario, spec, runs: int = 20, seed: int = 3) -> pd.DataFrame:
    return pd.DataFrame([simulate_run(scenario, spec, i, np.random.SeedSequence([seed, i])) for i in range(runs)])


def started_at(run: WavesRun) -> dict[str, float]:
    return {name: w.status.started_at for name, w in run.worlds.items() if w.status.started_at is not None}


def test_a_good_release_goes_out_wave_by_wave_after_each_bake() -> None:
    run = simulate_waves(good(), WAVES, np.random.SeedSequence(5), horizon=HORIZON)
    starts = started_at(run)
    done = {name: w.status.completed_at for name, w in run.worlds.items()}
    assert list(starts) == ["ap-south", "eu-west", "us-east"] and starts["ap-south"] == 0.0
    assert starts["eu-west"] == pytest.approx(done["ap-south"] + 600.0)
    assert starts["us-east"] == pytest.approx(done["eu-west"] + 600.0)
    assert run.status.completed and run.status.completed_at == pytest.approx(done["us-east"])


def test_a_bad_release_stops_the_line_in_the_first_wave() -> None:
    """The first region's analysis catches it: the later regions never start and never
    serve the new version; the row says one region was reached."""
    table = rows(bad(), WAVES)
    assert (table["outcome"] == "rolled_back").all()
    assert (table["regions_reached"] == 1).all()
    # only ap-south's users (20%) could meet the new version before the abort
    assert (table["blast_radius"] > 0).all() and (table["blast_radius"] < 0.2).all()


def test_waves_shrink_the_blast_radius_and_lengthen_the_rollout() -> None:
    """The trade-off the scenario measures, on common random numbers: more waves, fewer
    users reached by a bad release, a longer rollout of a good one."""
    blast = {s.name: rows(bad(), s)["blast_radius"].mean() for s in (WAVES, TWO_WAVES, ONE_WAVE)}
    duration = {s.name: rows(good(), s, runs=5)["rollout_duration"].median() for s in (WAVES, TWO_WAVES, ONE_WAVE)}
    assert blast["canary-three-waves"] < blast["canary-two-waves"] < blast["canary"]
    assert duration["canary-three-waves"] > duration["canary-two-waves"] > duration["canary"]


def test_stop_the_line_rolls_back_promoted_regions() -> None:
    """A defect the canary analysis cannot see (it only shows at full load) is found by the
    alert in a promoted region during the next wave: every region out so far rolls back."""
    data = SCENARIO.model_dump(mode="json")
    data["release"] = {"defect_probability": 1.0, "defects": [{"kind": "full_load_only", "error_rate": 0.2}]}
    scenario = Scenario.model_validate(data)
    run = simulate_waves(scenario, TWO_WAVES, np.random.SeedSequence(1), horizon=HORIZON)
    assert run.status.stopped
    reached = [n for n, w in run.worlds.items() if w.gate.triggered]
    assert all(run.worlds[n].reverted_at is not None or run.worlds[n].status.aborted for n in reached)
    assert run.status.restored_at is not None


def test_same_seed_same_row() -> None:
    a = simulate_run(SCENARIO, WAVES, 4, np.random.SeedSequence([9, 4]))
    b = simulate_run(SCENARIO, WAVES, 4, np.random.SeedSequence([9, 4]))
    assert a == b or all((x == y) or (x != x and y != y) for x, y in zip(a.values(), b.values()))


def test_a_region_sees_its_share_and_its_own_faults() -> None:
    data = SCENARIO.model_dump(mode="json")
    data["faults"] = [{"kind": "pod_kill", "at": 60, "region": "eu-west", "count": 2},
                      {"kind": "pod_kill", "at": 90, "count": 1}]
    scenario = Scenario.model_validate(data)
    eu = region_scenario(scenario, scenario.regions[1])
    ap = region_scenario(scenario, scenario.regions[0])
    assert eu.traffic.rps == pytest.approx(300.0) and eu.traffic.users == 6000
    assert eu.service_under_test.replicas == 6  # 20 replicas x 30%
    assert [f.at for f in eu.faults] == [60.0, 90.0] and [f.at for f in ap.faults] == [90.0]
    assert ap.service_under_test.latency.median_ms == 60.0  # the region's own latency


@pytest.mark.parametrize(("regions", "message"), [
    ("[{name: a, traffic_share: 0.5}, {name: b, traffic_share: 0.4}]", "add up to 0.9"),
    ("[{name: a, traffic_share: 0.5}, {name: a, traffic_share: 0.5}]", "listed twice"),
    ("[{name: a, traffic_share: 1.0, zones: [x, x]}]", "listed twice"),
])
def test_bad_regions_exit_2_with_file_line_and_field(tmp_path, regions, message) -> None:
    from typer.testing import CliRunner

    from rolloutlab import cli

    path = tmp_path / "regions.yaml"
    path.write_text(f"name: r\nduration: 5m\nregions: {regions}\n")
    result = CliRunner().invoke(cli.app, ["compare", str(path), "--runs", "2", "--no-report", "--out", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert f"{path}:3: regions" in result.stderr and message in result.stderr


def test_waves_that_do_not_match_the_scenario_are_refused_before_running(tmp_path) -> None:
    from typer.testing import CliRunner

    from rolloutlab import cli

    path = tmp_path / "two.yaml"
    path.write_text("name: two\nduration: 5m\nregions:\n  - {name: a, traffic_share: 0.5}\n"
                    "  - {name: b, traffic_share: 0.5}\n")
    result = CliRunner().invoke(cli.app, ["compare", str(path), "--strategies",
                                          str(LIBRARY / "strategies" / "canary-three-waves.yaml"),
                                          "--runs", "2", "--no-report", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert f"{path}:3: regions" in result.stderr and "ap-south" in result.stderr


def test_a_fault_naming_an_unknown_region_is_refused() -> None:
    with pytest.raises(Exception, match="no region 'mars'"):
        Scenario.model_validate({"name": "x", "regions": [{"name": "a", "traffic_share": 1.0}],
                                 "faults": [{"kind": "pod_kill", "at": 5, "region": "mars"}]})


def test_a_scenario_without_regions_still_runs_every_strategy(tmp_path) -> None:
    """Checking waves against regions must not refuse plain strategies on plain scenarios."""
    from typer.testing import CliRunner

    from rolloutlab import cli

    scenario = Path(__file__).resolve().parents[1] / "scenarios" / "standard.yaml"
    result = CliRunner().invoke(cli.app, ["compare", str(scenario), "--runs", "2", "--executor", "serial",
                                          "--no-report", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output


def test_an_imported_spinnaker_pipeline_with_regional_waves_runs_in_compare(tmp_path) -> None:
    """A pipeline whose parallel regional deploys import to waves runs on a scenario with
    those regions, one row per run across them."""
    import json

    from typer.testing import CliRunner

    from rolloutlab import cli

    pipeline = Path(__file__).resolve().parent / "fixtures" / "spinnaker" / "aws-multi-region-waves.json"
    scenario = tmp_path / "aws.yaml"
    scenario.write_text("name: aws\nduration: 60m\nservices: [{name: web, replicas: 12}]\nregions:\n"
                        "  - {name: us-east-1, traffic_share: 0.5}\n  - {name: us-west-2, traffic_share: 0.3}\n"
                        "  - {name: eu-west-1, traffic_share: 0.2}\ntraffic: {rps: 200, users: 2000}\n")
    result = CliRunner().invoke(cli.app, ["compare", str(scenario), "--strategies", str(pipeline), "--runs", "4",
                                          "--executor", "serial", "--no-report", "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "results.csv")
    assert table["regions_reached"].between(1, 3).all() and (table["regions_reached"] == 3).any()
    assert json.loads(result.stdout)["strategies"][0]["runs"] == 4


def test_a_blast_radius_expectation_needs_regions(tmp_path) -> None:
    from typer.testing import CliRunner

    from rolloutlab import cli

    path = tmp_path / "plain.yaml"
    path.write_text('name: plain\nexpect:\n  - "blast_radius.mean <= 10%"\n')
    result = CliRunner().invoke(cli.app, ["lint", str(path)])
    assert result.exit_code == 2
    assert f"{path}:3: expect[0]" in result.stderr and "no regions" in result.stderr
