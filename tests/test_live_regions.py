"""A release region by region, live on the local backend (live.regions): each region its
own HAProxy, its own demo-service pods and its own share of the users; the waves'
supervisor starts, stops and rolls regions back while each region's runner runs the same
controller as a one-place run. Real processes, real traffic on 127.0.0.1, time
compressed (x30) and at most 60 requests per second over all regions."""

from __future__ import annotations

import io
import math
import os
from contextlib import ExitStack
from pathlib import Path

import pytest
from rich.console import Console

from rolloutlab.errors import InputError, StateError, exit_status
from rolloutlab.live.local import Backoff, LocalBackend, Probe
from rolloutlab.live.regions import WavesState, run_live_waves
from rolloutlab.scenarios.schema import Scenario
from rolloutlab.strategies import StrategySpec
from rolloutlab.workflows.live import LiveSettings, run_live_command
from tests.outside_systems import needs_haproxy
from tests.test_local_backend import descendants, until

pytestmark = needs_haproxy

SCALE = 30.0  # a 1-minute pause or bake takes 2 wall seconds
RPS = 60.0  # over all three regions: 12, 18 and 30 per second
REGIONS = ("ap-south", "eu-west", "us-east")
FAST = dict(probe=Probe(period_s=0.1, timeout_s=0.25), backoff=Backoff(base_s=0.2, cap_s=0.8),
            termination_grace_s=1.0)


def scenario(faults: tuple[dict, ...] = ()) -> Scenario:
    # Few users (6, 9, 15): at 60 requests per second each meets the new version within
    # a second or two once it takes half of a region's requests, so how many met it before
    # the release was caught says how far it went.
    return Scenario.model_validate({
        "name": "three-regions-live", "duration": "8m",
        "services": [{"name": "web", "replicas": 2, "capacity_rps": 200, "baseline_error_rate": 0.0,
                      "latency": {"median_ms": 5, "p99_ms": 50},
                      "pod_timing": {"schedule_delay": 0, "start_delay": 5, "readiness": {"period": 5}}}],
        "regions": [{"name": "ap-south", "traffic_share": 0.2, "replicas": 2},
                    {"name": "eu-west", "traffic_share": 0.3, "replicas": 2},
                    {"name": "us-east", "traffic_share": 0.5, "replicas": 2}],
        "traffic": {"rps": 1000, "users": 30},
        "release": {"defect_probability": 1.0, "defects": [{"kind": "error_rate", "error_rate": 0.5}]},
        "monitoring": {"alerts": []},
        "faults": list(faults),
    })


def strategy(waves: bool = True) -> StrategySpec:
    """Half the region's requests on the new version for a minute, judged every 30 s; in
    waves, smallest region first, a 30 s bake after each, stop the line."""
    spec = {
        "name": "canary-waves-live" if waves else "canary-one-wave-live",
        "progressDeadlineSeconds": "10m",
        "analysisTemplates": [{"name": "error-rate", "metrics": [{
            "name": "error-rate", "signal": "errorRate", "interval": "30s", "successCondition": "result < 0.1",
            "failureLimit": 0, "consecutiveErrorLimit": 4}]}],
        "strategy": {"canary": {
            "trafficRouting": "router", "scaleDownDelaySeconds": 30, "abortScaleDownDelaySeconds": 30,
            "analysis": {"templates": [{"templateName": "error-rate"}], "startingStep": 1},
            "steps": [{"setWeight": 50}, {"pause": {"duration": "1m"}}]}},
    }
    if waves:
        spec["waves"] = {"stopTheLine": True, "steps": [
            {"regions": ["ap-south"], "bakeTime": "30s"}, {"regions": ["eu-west"], "bakeTime": "30s"},
            {"regions": ["us-east"]}]}
    return StrategySpec.model_validate(spec)


class Interrupted(Exception):
    """Ends a supervisor from its ``on_cycle``, as a Ctrl-C or a killed process would."""


@pytest.fixture
def no_leftovers():
    before = descendants(os.getpid())
    yield
    assert until(lambda: not (descendants(os.getpid()) - before), 5.0), \
        f"processes left running: {descendants(os.getpid()) - before}"


def live(state: Path, spec: StrategySpec, release: str, faults: tuple[dict, ...] = (),
         kills: dict[str, list[str]] | None = None, **kwargs):
    """One waves run on three fresh local backends (each its own state folder), closed
    after; ``kills`` gets the pods each region's backend saw killed."""
    with ExitStack() as stack:
        backends = {name: stack.enter_context(LocalBackend(state / name, seed=k + 1, **FAST))
                    for k, name in enumerate(REGIONS)}
        result = run_live_waves(scenario(faults), spec, backends, state_file=state / "waves.json", release=release,
                                seed=3, time_scale=SCALE, max_rps=RPS, max_wall_s=150, **kwargs)
        ports = {b.urls()["user"] for b in backends.values()}
        if kills is not None:
            kills.update({name: [e.pod for e in b.events if e.kind == "killed"] for name, b in backends.items()})
    assert len(ports) == 3  # three routers, one per region
    return result


def new_version_answers(result, region: str) -> int:
    records = result.regions[region].records
    return int((records["version"] == "v2").sum())


def test_a_bad_release_stops_the_line_in_the_first_wave(tmp_path, no_leftovers):
    """The first region's analysis catches it: the later regions never start and none of
    their users meets the new version; far fewer users met it than when every region
    rolled out at once."""
    waves = live(tmp_path / "waves", strategy(waves=True), "bad")
    one_wave = live(tmp_path / "one-wave", strategy(waves=False), "bad")
    row = waves.row
    assert row["outcome"] == "rolled_back" and row["detected_by"] == "analysis", row
    assert row["regions_reached"] == 1 and waves.status.failed_region == "ap-south"
    ap = waves.regions["ap-south"].summary.status
    assert ap.aborted and ap.restored_at is not None
    for later in ("eu-west", "us-east"):
        assert waves.regions[later].summary.status.started_at is None
        assert new_version_answers(waves, later) == 0
        assert len(waves.regions[later].records) > 50  # their users were served all along, by v1
    assert one_wave.row["outcome"] == "rolled_back" and one_wave.row["regions_reached"] == 3
    assert sum(new_version_answers(one_wave, r) for r in REGIONS[1:]) > 0
    # only ap-south's users (6 of 30) could meet it in waves
    assert 0 < row["blast_radius"] <= 0.2 + 1e-9
    assert one_wave.row["blast_radius"] >= 2 * row["blast_radius"], (row["blast_radius"],
                                                                     one_wave.row["blast_radius"])
    print(f"\nblast radius: waves {row['blast_radius']:.3f}, one wave {one_wave.row['blast_radius']:.3f}; "
          f"detected at t={row['detected_at']:.0f}s / {one_wave.row['detected_at']:.0f}s")


def test_a_good_release_goes_out_in_wave_order(tmp_path, no_leftovers):
    """Each region starts only after the one before it was promoted and baked, on the one
    clock of the waves; every region ends on the new version. A fault of one region (a pod
    of eu-west's old version killed while it waits for its wave) hits that region only."""
    kills: dict[str, list[str]] = {}
    kill = {"kind": "pod_kill", "at": 30, "region": "eu-west", "version": "stable"}
    result = live(tmp_path / "state", strategy(), "good", faults=(kill,), kills=kills)
    assert len(kills["eu-west"]) == 1 and kills["eu-west"][0].startswith("demo-v1")
    assert kills["ap-south"] == kills["us-east"] == []
    assert result.row["outcome"] == "promoted" and result.row["regions_reached"] == 3, result.row
    status = {name: result.regions[name].summary.status for name in REGIONS}
    assert all(s.completed for s in status.values())
    for earlier, later in zip(REGIONS, REGIONS[1:]):
        assert status[later].started_at >= status[earlier].completed_at + 30.0
    assert list(result.status.started) == list(REGIONS)
    for name in REGIONS:
        timeline = result.regions[name].summary.timeline  # its own runner's, on the waves' clock
        assert timeline[0].at == 0.0 and timeline[1].at == pytest.approx(status[name].started_at, abs=15.0)
        records = result.regions[name].records
        answered = records[records["version"].notna()]
        before, after = answered[answered["at"] < status[name].started_at], \
            answered[answered["at"] > status[name].completed_at + 15.0]
        if name != "ap-south":  # its users waited on v1 for their wave
            assert len(before) > 20 and (before["version"] == "v1").all()
        assert len(after) > 20 and (after["version"] == "v2").all()  # and ended on v2
    assert result.row["ends_healthy"] and not math.isnan(result.row["rollout_duration"])


def test_an_interrupted_supervisor_resumes_without_restarting_the_first_region(tmp_path, no_leftovers):
    """Interrupted while the first wave bakes (ap-south promoted), the same call again
    carries on from the saved waves state: ap-south is not rolled out again, the others
    follow in order; a finished waves state is not run twice."""
    state = tmp_path / "state"

    def interrupt_in_the_bake(status):
        if status.requeue_at is not None and status.wave == 0:
            raise Interrupted

    with pytest.raises(Interrupted):
        live(state, strategy(), "good", on_cycle=interrupt_in_the_bake)
    saved = WavesState.load((state / "waves.json").read_text(), state / "waves.json")
    assert saved.status.started == ("ap-south",) and not saved.status.completed
    first = saved.status

    result = live(state, strategy(), "good")
    ap = result.regions["ap-south"].summary
    assert result.row["resumed"] and result.row["outcome"] == "promoted" and result.row["regions_reached"] == 3
    assert ap.applied == []  # its runner did not run again
    assert ap.status.completed_at <= first.requeue_at - 30.0 + 1e-6  # the promotion of the first run
    assert result.status.wave_started_at[0] == first.wave_started_at[0]  # the same clock
    status = {name: result.regions[name].summary.status for name in REGIONS}
    assert status["eu-west"].started_at >= status["ap-south"].completed_at + 30.0
    assert status["us-east"].started_at >= status["eu-west"].completed_at + 30.0
    with pytest.raises(StateError):
        live(state, strategy(), "good")


def test_an_interrupted_run_rolled_back_redeploys_the_old_version_in_the_promoted_region(tmp_path, no_leftovers):
    """``rollback=True`` on the waves an interruption left while ap-south baked stops the
    line: ap-south, already promoted, gets its old version back (pods up, then every
    request, then the new version's pods down); the later regions never start."""
    state = tmp_path / "state"

    def interrupt_in_the_bake(status):
        if status.requeue_at is not None and status.wave == 0:
            raise Interrupted

    with pytest.raises(Interrupted):
        live(state, strategy(), "good", on_cycle=interrupt_in_the_bake)
    result = live(state, strategy(), "good", rollback=True)
    row, ap = result.row, result.regions["ap-south"]
    assert result.status.stopped and result.status.rolling_back == ("ap-south",)
    assert row["outcome"] == "false_rollback" and row["detected_by"] == "manual" and row["regions_reached"] == 1
    assert row["human_action"] == "stop_the_line" and ap.rolled_back_at is not None
    assert [what for _, what in ap.summary.applied] == ["scale stable to 2", "weight 0", "scale canary to 0"]
    answered = ap.records[ap.records["version"].notna()]
    assert (answered.loc[answered["at"] < result.status.stopped_at, "version"] == "v2").all()
    back = answered[answered["at"] > ap.rolled_back_at + 15.0]
    assert len(back) > 20 and (back["version"] == "v1").all()
    assert all(result.regions[r].summary.status.started_at is None for r in ("eu-west", "us-east"))


@pytest.mark.parametrize(("changes", "flag"), [
    (dict(region_contexts=("eu-west=kind-eu",)), "--region-context"),
    (dict(backend="kube", region_contexts=("eu-west",)), "--region-context"),
    (dict(backend="kube", region_contexts=("mars=kind-mars",)), "--region-context"),
    (dict(backend="kube", context="kind-eu"), "--context"),
    (dict(backend="kube", url="http://127.0.0.1:30080/"), "--url"),
    (dict(backend="kube", node_port=32765), "--node-port"),
], ids=["contexts on the local backend", "a context without its region", "a region the scenario lacks",
        "one context for every region", "one url for every region", "node ports past 32767"])
def test_bad_region_options_are_bad_input_naming_the_flag(tmp_path, changes, flag):
    """``rolloutlab live`` on a scenario with regions refuses options that cannot name one
    entry per region, as bad input naming the flag, before anything starts."""
    settings = LiveSettings(out_dir=tmp_path / "out", **changes)
    with pytest.raises(InputError) as caught:
        run_live_command(scenario(), strategy(), settings, out=Console(file=io.StringIO()),
                         err=Console(file=io.StringIO()))
    assert str(caught.value).startswith(flag) and exit_status(caught.value) == 2, str(caught.value)
    assert not (tmp_path / "out").exists()
