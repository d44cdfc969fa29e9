"""``rolloutlab validate``: the simulator's prediction against live runs of the same scenario.

The judging logic is tested on hand-made values (table-driven); the command itself runs for
real on the bundled standard scenario (the simulator, then demo-service processes behind
HAProxy with real traffic), bounded to about a minute per strategy, and must leave nothing
running.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rolloutlab.errors import ValidateError
from rolloutlab.results.table import read_results
from rolloutlab.scenarios.schema import bundled_scenario, load_scenario
from rolloutlab.strategies import load_strategy
from rolloutlab.workflows.validate import (
    Censored,
    Kind,
    LiveResult,
    PredictionCheck,
    PredictionVerdict,
    Settings,
    SwitchFailures,
    ValidatedMetric,
    Validation,
    check_hold,
    compute_calibrated_scenario,
    compute_exit_code,
    compute_live_scenario,
    compute_live_step_weights,
    compute_metric_values,
    compute_prediction,
    compute_prediction_ranks,
    compute_prediction_set,
    compute_predictions,
    compute_sim_step_weights,
    compute_switch_failures,
    compute_weight_segments,
    describe_prediction,
    is_held,
    judge_value,
    simulate_world,
)
from tests.outside_systems import needs_haproxy

ROOT = Path(__file__).resolve().parent.parent
DURATION = ValidatedMetric("detection_time", Kind.DURATION, "")
FRACTION = ValidatedMetric("failed_fraction", Kind.FRACTION, "")
OUTCOME = ValidatedMetric("outcome", Kind.CATEGORY, "")
NEVER = Censored(1800.0)  # did not end in a 30-minute window


# --------------------------------------------------------------------------- prediction intervals


@pytest.mark.parametrize(("n", "level", "expected"), [
    (500, 0.95, (12, 489, 477 / 501)),
    (39, 0.95, (1, 39, 38 / 40)),  # the smallest sample with a 95% interval: (min, max)
    (38, 0.95, None),
    (1000, 0.95, (25, 976, 951 / 1001)),
    (19, 0.90, (1, 19, 18 / 20)),
    (0, 0.95, None),
], ids=["500 runs: X(12)..X(489), 95.2%", "39 runs: min..max, exactly 95%", "38 runs: too few",
        "1000 runs: X(25)..X(976)", "19 runs at 90%: min..max", "no runs"])
def test_prediction_ranks(n, level, expected):
    """The ranks bound one more draw with at least the asked coverage, as tight as possible."""
    got = compute_prediction_ranks(n, level)
    if expected is None:
        assert got is None
    else:
        assert got[:2] == expected[:2] and got[2] == pytest.approx(expected[2])
        assert got[2] >= level


def test_prediction_interval_covers_new_draws_as_promised():
    """Over many simulated experiments, a new draw lands inside [X(j), X(n+1-j)] with the stated coverage."""
    rng = np.random.default_rng(7)
    inside = 0
    trials = 4000
    for _ in range(trials):
        sample = rng.lognormal(0, 1, size=60)
        prediction = compute_prediction(DURATION, list(sample))
        inside += prediction.low <= rng.lognormal(0, 1) <= prediction.high
    j, k, coverage = compute_prediction_ranks(60)
    assert abs(inside / trials - coverage) < 0.015


@pytest.mark.parametrize(("shares", "expected"), [
    ({"rolled_back": 0.97, "failed_undetected": 0.03}, ("rolled_back",)),
    ({"rolled_back": 0.90, "failed_undetected": 0.10}, ("rolled_back", "failed_undetected")),
    ({"a": 0.5, "b": 0.46, "c": 0.04}, ("a", "b")),
    ({"a": 0.5, "b": 0.44, "c": 0.06}, ("a", "b", "c")),
    ({}, ()),
], ids=["97% covers alone", "90% needs the other", "96% with two", "94% needs the third", "nothing simulated"])
def test_prediction_set(shares, expected):
    """The most frequent kinds are taken until they cover 95% of the runs."""
    assert compute_prediction_set(shares) == expected


ONE_TO_HUNDRED = [float(x) for x in range(1, 101)]  # 100 runs: X(2)..X(99) = 2..99


@pytest.mark.parametrize(("metric", "values", "live", "verdict", "reason"), [
    (DURATION, ONE_TO_HUNDRED, 50.0, PredictionVerdict.INSIDE, "within"),
    (DURATION, ONE_TO_HUNDRED, 2.0, PredictionVerdict.INSIDE, "within"),  # the ends belong to the interval
    (DURATION, ONE_TO_HUNDRED, 1.0, PredictionVerdict.OUTSIDE, "below"),
    (DURATION, ONE_TO_HUNDRED, 100.0, PredictionVerdict.OUTSIDE, "above"),
    (DURATION, ONE_TO_HUNDRED, NEVER, PredictionVerdict.OUTSIDE, "above"),
    (DURATION, ONE_TO_HUNDRED[:95] + [NEVER] * 5, NEVER, PredictionVerdict.INSIDE, "within"),
    (DURATION, [None] * 96 + ONE_TO_HUNDRED[:4], None, PredictionVerdict.INSIDE, "n/a"),
    (DURATION, [None] * 96 + ONE_TO_HUNDRED[:4], 3.0, PredictionVerdict.OUTSIDE, "has a value in only 4.0%"),
    (DURATION, [None] * 3 + ONE_TO_HUNDRED[:97], None, PredictionVerdict.OUTSIDE, "does not apply in only 3.0%"),
    (DURATION, ONE_TO_HUNDRED[:30], 10.0, PredictionVerdict.NO_PREDICTION, "only 30 simulated values"),
    (FRACTION, [x / 1000 for x in ONE_TO_HUNDRED], 0.0995, PredictionVerdict.OUTSIDE, "above"),
    (OUTCOME, ["rolled_back"] * 97 + ["failed_undetected"] * 3, "rolled_back", PredictionVerdict.INSIDE, "97.0%"),
    (OUTCOME, ["rolled_back"] * 97 + ["failed_undetected"] * 3, "failed_undetected", PredictionVerdict.OUTSIDE, "only 3.0%"),
    (OUTCOME, ["rolled_back"] * 100, "stuck", PredictionVerdict.OUTSIDE, "only 0.0%"),
], ids=[
    "a typical value", "the lower end itself", "below the lowest rank", "above the highest rank",
    "never detected, though the simulator always detects", "never, as 5% of simulated runs",
    "n/a as in 96% of runs", "a value where 96% of runs have none", "n/a where 97% have one",
    "too few values for an interval", "a fraction just above", "the usual outcome", "a 3% outcome", "an unseen outcome",
])
def test_judge_value(metric, values, live, verdict, reason):
    """A live value is inside when its kind is in the prediction set and its number in the interval."""
    judgement = judge_value(compute_prediction(metric, values), live)
    assert judgement.verdict is verdict
    assert reason in judgement.reason


@pytest.mark.parametrize(("kind", "live", "resolution", "verdict"), [
    (Kind.DURATION, 240.27, 2.0, PredictionVerdict.INSIDE),
    (Kind.DURATION, 240.27, 0.0, PredictionVerdict.OUTSIDE),
    (Kind.DURATION, 243.0, 2.0, PredictionVerdict.OUTSIDE),
    (Kind.DURATION, 203.5, 2.0, PredictionVerdict.INSIDE),
    (Kind.FRACTION, 240.27, 2.0, PredictionVerdict.OUTSIDE),
], ids=["a few ms late at x20", "no resolution given", "later than the resolution", "early by less than it",
        "fractions get no slack"])
def test_timing_resolution_widens_durations_only(kind, live, resolution, verdict):
    """The live clock's resolution lets a duration miss the interval by that much, and says so."""
    values = [205.0 + 5 * (i % 8) for i in range(400)]  # a grid 205..240, as the simulator's analysis ticks make
    judgement = judge_value(compute_prediction(ValidatedMetric("m", kind, ""), values), live, resolution=resolution)
    assert judgement.verdict is verdict
    if verdict is PredictionVerdict.INSIDE and not 205 <= live <= 240:
        assert "resolution" in judgement.reason


def _check(verdict: PredictionVerdict, held: bool) -> PredictionCheck:
    return PredictionCheck("detection_time", 0, 1.0, verdict, "", held)


@pytest.mark.parametrize(("checks", "code"), [
    ([], 0),
    ([_check(PredictionVerdict.INSIDE, True)], 0),
    ([_check(PredictionVerdict.OUTSIDE, False)], 0),
    ([_check(PredictionVerdict.OUTSIDE, True)], 1),
    ([_check(PredictionVerdict.NO_PREDICTION, True)], 1),
    ([_check(PredictionVerdict.INSIDE, True), _check(PredictionVerdict.OUTSIDE, True)], 1),
], ids=["nothing judged", "held and inside", "outside but not held", "held and outside",
        "held without a prediction", "one of two held values outside"])
def test_exit_code(checks, code):
    """Exit 1 only when a held metric's live value is outside its prediction (or it has none)."""
    assert compute_exit_code(checks) == code


@pytest.mark.parametrize(("hold", "metric", "held"), [
    (("effective_weight",), "effective_weight@10", True),
    (("effective_weight@10",), "effective_weight@10", True),
    (("effective_weight@25",), "effective_weight@10", False),
    (("detection_time",), "time_to_restore", False),
    (("switch_failures",), "switch_failures", True),
], ids=["all steps", "one step", "another step", "another metric", "switch failures"])
def test_is_held(hold, metric, held):
    assert is_held(metric, check_hold(hold)) is held


@pytest.mark.parametrize("name", ["detection", "effective_weight@", "failed_requests", ""])
def test_unknown_hold_metric_is_bad_input(name):
    """An unknown --hold name is refused with the names that exist."""
    with pytest.raises(ValidateError, match="unknown metric"):
        check_hold([name])


# --------------------------------------------------------------------------- values from rows


@pytest.mark.parametrize(("row", "expected"), [
    (dict(started_at=0.0, detected_at=81.0, rollout_duration=81.0, time_to_restore=60.0, change_failed=True,
          impact_started_at=21.0, ended_at=1800.0, requests=1000, failed_requests=3, outcome="rolled_back"),
     dict(detection_time=81.0, time_to_restore=60.0, failed_fraction=0.003, rollout_duration=81.0)),
    (dict(started_at=0.0, detected_at=math.nan, rollout_duration=200.0, time_to_restore=math.nan,
          change_failed=True, impact_started_at=30.0, ended_at=1800.0, requests=1000, failed_requests=50,
          outcome="failed_undetected"),
     dict(detection_time=Censored(1800.0), time_to_restore=Censored(1770.0), failed_fraction=0.05,
          rollout_duration=200.0)),
    (dict(started_at=10.0, detected_at=81.0, rollout_duration=math.nan, time_to_restore=math.nan,
          change_failed=False, impact_started_at=math.nan, ended_at=1900.0, requests=0, failed_requests=0,
          outcome="stuck"),
     dict(detection_time=71.0, time_to_restore=None, failed_fraction=None, rollout_duration=Censored(1890.0))),
], ids=["caught and restored", "never detected, never restored", "nobody harmed, no traffic, stuck"])
def test_metric_values(row, expected):
    """A time that did not end is censored at the window's end (from its start); a metric that does not apply is None."""
    values = compute_metric_values(row)
    for name, value in expected.items():
        assert values[name] == value, name


# --------------------------------------------------------------------------- censored times


def test_a_censored_time_is_shown_as_more_than_the_window():
    """A time that did not end is "> window", never a number and never "never"."""
    from rolloutlab.results.formatting import format_beyond
    from rolloutlab.workflows.validate.metrics import show_value

    shown = format_beyond(1800.0)  # the project's one way of writing it
    assert shown.startswith(">") and "30m00s" in shown
    assert show_value(Censored(1800.0), Kind.DURATION) == show_value(Censored(1800.0)) == shown


def test_censored_simulated_values_keep_the_decision_and_are_counted():
    """Censored values sort above every time that ended: the interval's upper end is "> window", a
    censored live value is inside it, and the prediction says how many simulated values were censored."""
    from rolloutlab.results.formatting import format_beyond

    values = ONE_TO_HUNDRED[:95] + [Censored(1800.0)] * 3 + [Censored(1795.0)] * 2
    prediction = compute_prediction(DURATION, values)
    assert (prediction.low, prediction.high) == (2.0, Censored(1795.0))  # all 5 are known to exceed 1795 s
    assert prediction.censored == 5 and prediction.values == 100
    assert prediction.as_dict()["high"] == {"censored_at": 1795.0} and prediction.as_dict()["censored"] == 5
    median, interval = describe_prediction(prediction)
    assert (median, interval) == ("50s", f"[2.0s, {format_beyond(1795.0)}]; 5 of 100 censored")
    assert judge_value(prediction, Censored(1800.0)).verdict is PredictionVerdict.INSIDE
    assert judge_value(prediction, 3.0).verdict is PredictionVerdict.INSIDE
    finite = compute_prediction(DURATION, ONE_TO_HUNDRED)
    assert finite.censored == 0 and judge_value(finite, Censored(1800.0)).verdict is PredictionVerdict.OUTSIDE


def test_weight_segments_follow_declared_weights():
    """Each declared weight holds from its point to the next; weight 0 and empty spans are dropped."""
    points = [(0.0, 10.0), (20.0, 10.0), (80.0, 25.0), (100.0, 0.0), (130.0, 0.0)]
    assert compute_weight_segments(points, end=130.0) == {10.0: [(0.0, 80.0)], 25.0: [(80.0, 100.0)]}


def test_sim_step_weight_is_time_weighted():
    """Pods ready at 20 s of an 80 s step at 10%: 20% effective for 60 of 80 s is 15%."""
    points = [dict(at=0.0, declared_weight=10.0, effective_weight=0.0),
              dict(at=20.0, declared_weight=10.0, effective_weight=20.0),
              dict(at=80.0, declared_weight=0.0, effective_weight=0.0)]
    assert compute_sim_step_weights(points, end=80.0) == {"effective_weight@10": pytest.approx(15.0)}


def test_live_step_weight_counts_requests_by_when_they_were_sent():
    """The router picks the version on arrival: a request answered after the step ended still counts in it."""
    points = [dict(at=0.0, declared_weight=10.0), dict(at=100.0, declared_weight=0.0)]
    records = pd.DataFrame({
        "target": ["user"] * 5 + ["preview"],
        "at": [10.0, 20.0, 30.0, 100.5, 101.0, 50.0],  # answered at (scenario s)
        "latency_ms": [40.0, 40.0, 40.0, 40.0, 10.0, 40.0],  # x20: 0.8 s and 0.2 s of scenario time
        "version": ["v2", "v1", "v1", "v2", "v1", "v2"],
    })
    weights = compute_live_step_weights(points, records, "v2", end=200.0, time_scale=20.0)
    assert weights == {"effective_weight@10": pytest.approx(50.0)}  # sent before 100: v2, v1, v1, v2


# --------------------------------------------------------------------------- switch failures


def _records(rows):
    return pd.DataFrame(rows, columns=["target", "result", "version", "at", "start_s", "end_s"])


def test_switch_failures_are_told_from_release_failures():
    """Unanswered requests near a routing change are the switch's; app errors of the new version are the release's."""
    records = _records([
        ("user", "connection_reset", None, 101.0, 5.00, 5.05),  # in the window of the change at 100
        ("user", "router_5xx", None, 130.0, 6.50, 6.50),  # 30 s after: outside a -10/+20 window
        ("user", "timeout", None, 130.0, 5.45, 6.50),  # sent at 109 (x20), answered at 130: overlaps
        ("user", "app_5xx", "v2", 50.0, 2.5, 2.5),
        ("user", "app_5xx", "v2", 60.0, 3.0, 3.0),
        ("user", "app_5xx", "v1", 60.0, 3.0, 3.0),
        ("user", "ok", "v1", 70.0, 3.5, 3.5),
        ("user", "dropped", None, 100.0, math.nan, math.nan),  # never sent: not a user's failure
        ("preview", "router_5xx", None, 100.0, 5.0, 5.0),
    ])
    f = compute_switch_failures(records, [100.0], canary="v2", stable="v1", before_s=10.0, after_s=20.0,
                                time_scale=20.0, router={"proxy_5xx": 2})
    assert (f.switch, f.other_unanswered, f.release, f.stable, f.preview_unanswered) == (1, 1, 2, 1, 1)
    assert f.switch_by_result == {"connection_reset": 1}
    assert f.timeouts_near_switch == 1  # shown, not blamed on the switch
    assert f.router == {"proxy_5xx": 2}


def test_no_routing_change_means_no_switch_failures():
    records = _records([("user", "connect_refused", None, 10.0, 0.5, 0.5)])
    f = compute_switch_failures(records, [], canary="v2", stable="v1", before_s=1.0, after_s=1.0, time_scale=20.0)
    assert (f.switch, f.other_unanswered) == (0, 1)


# --------------------------------------------------------------------------- the simulated world


@pytest.fixture(scope="module")
def standard():
    return load_scenario(bundled_scenario("standard"))


def test_live_world_is_what_the_simulator_is_told(standard):
    """Live sends max_rps per wall second = max_rps / time_scale per scenario second: the simulator gets that."""
    live, sim, user, preview = compute_live_scenario(standard, replicas=4, max_rps=101.0, time_scale=20.0)
    assert user + preview == pytest.approx(101.0)
    assert user / preview == pytest.approx(standard.traffic.rps / standard.traffic.preview_rps)
    assert live.service_under_test.replicas == sim.service_under_test.replicas == 4
    assert live.traffic.rps == standard.traffic.rps  # run_live caps it itself
    assert sim.traffic.rps == pytest.approx(user / 20.0) and sim.traffic.preview_rps == pytest.approx(preview / 20.0)
    assert sim.duration == standard.duration and sim.release == standard.release


@pytest.mark.parametrize(("release", "defect"), [("bad", "error_rate"), ("good", "none")])
def test_simulated_runs_carry_the_live_release(standard, release, defect):
    """Every simulated run carries the release the live canary carries, never a mixture."""
    _, sim, _, _ = compute_live_scenario(standard, replicas=4, max_rps=100.0, time_scale=20.0)
    df = simulate_world(sim, load_strategy("canary").with_replicas(4), Settings(sim_runs=40, release=release))
    assert set(df["defect"]) == {defect}
    assert "effective_weight@10" in df.columns
    predictions = compute_predictions(df, 0.95)
    assert predictions["switch_failures"].high == 0
    if release == "bad":
        assert predictions["outcome"].predicted == ("rolled_back",)


def test_calibrated_scenario_takes_the_measured_pod_start(standard):
    """A lognormal start delay fitted to the measured creation-to-ready times, less the probe's part."""
    measured = [25.0, 26.0, 28.0, 30.0]  # probe period 5 s, 2 successes: 7.5 s of it is the probe
    calibrated, fitted = compute_calibrated_scenario(standard, measured)
    timing = calibrated.service_under_test.pod_timing
    assert timing.schedule_delay.value == 0
    assert timing.start_delay.kind == "lognormal"
    assert timing.start_delay.median == pytest.approx(math.exp(np.mean(np.log(np.array(measured) - 7.5))))
    assert fitted["from_pods"] == 4
    with pytest.raises(ValidateError):
        compute_calibrated_scenario(standard, [])


# --------------------------------------------------------------------------- the command



def rolloutlab(*args: str, env: dict | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rolloutlab.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


@pytest.mark.parametrize(("args", "message"), [
    (["--hold", "detection"], "unknown metric"),
    (["--release", "drawn"], "--release must be one of bad, good"),
    (["--release", "bad", "--runs", "0"], "--runs"),
    (["--level", "1.5"], "--level"),
], ids=["unknown held metric", "a mixture release", "no simulated runs", "impossible level"])
def test_bad_options_exit_2_before_running_anything(args, message, tmp_path):
    result = rolloutlab("validate", "standard", "-s", "canary", "--out", str(tmp_path), *args, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "validation.json").exists()


def test_bad_files_exit_2_naming_them(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: broken\nduration: -5m\n")
    result = rolloutlab("validate", str(broken), "-s", "canary", "--out", str(tmp_path / "out"), timeout=60)
    assert result.returncode == 2 and f"{broken}:2" in result.stderr and "duration" in result.stderr
    result = rolloutlab("validate", "standard", "-s", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "out"),
                        timeout=60)
    assert result.returncode == 2 and "nope.yaml" in result.stderr and "Traceback" not in result.stderr


@needs_haproxy  # the command refuses to start without it, before it would call the stand-in
def test_held_metric_outside_exits_1(standard, tmp_path, monkeypatch):
    """The command exits 1 when a held live value is outside; 0 when only unheld ones are (no processes here)."""
    from typer.testing import CliRunner

    import rolloutlab.workflows.validate.running as validate_module
    from rolloutlab import cli as rolloutlab_cli

    _, sim_world, user, preview = compute_live_scenario(standard, replicas=4, max_rps=100.0, time_scale=20.0)
    spec = load_strategy("canary").with_replicas(4)

    def fake_validation(scenario, spec_, settings, **_kwargs) -> Validation:
        df = simulate_world(sim_world, spec, settings)
        row = {**df.iloc[0].to_dict(), "source": "live-local", "detected_at": 1500.0}  # far later than simulated
        failures = SwitchFailures(switch=0, switch_by_result={}, timeouts_near_switch=0, other_unanswered=0, release=3, stable=1,
                                  preview_unanswered=0, changes=4, window_before_s=10.0, window_after_s=50.0,
                                  router={"proxy_5xx": 0})
        live = LiveResult(0, 1, row, {"scenario": "standard", "strategy": "canary", "run": 0, "seed": 1,
                                      "defect": "error_rate", "outcome": row["outcome"], "points": []},
                          compute_metric_values(row), failures, {}, [25.0], [], 1.0)
        v = Validation(sim_world, spec, settings, validate_module.LiveWorld(4, user, preview, 20.0, 4.95, 0.05,
                                                                            0.25, 0.25, 1.5),
                       "error_rate", df, live.timeline, compute_predictions(df, settings.level), [live])
        v.checks = validate_module.judge_live(v.predictions, v.live, v.metrics, settings.hold, settings.level,
                                                  settings.sim_runs, "scenario")
        return v

    monkeypatch.setattr(validate_module, "run_validation", fake_validation)
    runner = CliRunner()
    base = ["validate", "standard", "-s", "canary", "--runs", "60", "--no-report"]
    held = runner.invoke(rolloutlab_cli.app, [*base, "--out", str(tmp_path / "a"), "--hold", "detection_time"])
    assert held.exit_code == 1, held.output
    assert "HELD detection_time run 0" in held.output
    saved = json.loads((tmp_path / "a" / "validation.json").read_text())
    assert saved["exit_code"] == 1 and saved["held_outside"][0]["metric"] == "detection_time"
    unheld = runner.invoke(rolloutlab_cli.app, [*base, "--out", str(tmp_path / "b"), "--hold", "outcome"])
    assert unheld.exit_code == 0, unheld.output


# --------------------------------------------------------------------------- for real


def processes_marked(mark: str) -> list[int]:
    """Processes (not zombies) whose environment carries ``mark``: everything a run started inherits it."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes()
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if mark.encode() in environ and state != "Z":
            found.append(int(entry))
    return found


@needs_haproxy
@pytest.mark.parametrize(("strategy", "extra"), [
    ("canary", []),
    ("blue-green", ["--calibrate"]),
], ids=["canary", "blue-green, calibrated"])
def test_validate_a_bad_release_live(strategy, extra, tmp_path):
    """A bad release, simulated and run live: detection happens live, switch failures are counted (none lost
    by the switch: held), calibration is recorded, the report reads the table, and nothing is left running."""
    mark = f"ROLLOUTLAB_TEST_MARK={uuid.uuid4().hex}"
    out = tmp_path / "out"
    result = rolloutlab("validate", "standard", "-s", strategy, "--release", "bad", "--runs", "200", "--live-runs",
                        "1", "--time-scale", "30", "--max-rps", "100", "--replicas", "3", "--max-minutes", "3",
                        "--hold", "switch_failures", "--out", str(out), *extra,
                        env={"ROLLOUTLAB_TEST_MARK": mark}, timeout=200)
    print(result.stdout[-6000:])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert processes_marked(mark) == [], "demo-service or HAProxy processes left running"

    saved = json.loads((out / "validation.json").read_text())
    assert saved["strategy"] == strategy and saved["defect"] == "error_rate"
    assert saved["world"]["sim_rps"] == pytest.approx(saved["world"]["user_rps"] / 30)
    for name in ("detection_time", "time_to_restore", "failed_fraction", "rollout_duration", "outcome",
                 "switch_failures"):
        assert name in saved["predictions"]
    (live,) = saved["live"]
    assert live["values"]["outcome"] == "rolled_back"
    assert 0 < live["values"]["detection_time"] < 1800  # detected: a number, not {"censored_at": ...}
    zero = live["zero_downtime"]
    assert zero["switch"] == 0, zero  # held: the exit code says so too
    assert zero["changes"] > 0 and zero["release"] > 0  # routing changed, and the bad version failed requests
    assert zero["release"] <= live["release_failures"] + zero["switch"]
    assert {"proxy_5xx", "retries", "redispatches"} <= set(zero["router"])
    calibration = saved["calibration"]
    assert calibration["measured_pod_ready_s"]["n"] >= 4  # 3 stable + at least one canary pod
    assert calibration["assumed_pod_ready_s"]["median_s"] > 0
    if strategy == "blue-green":
        assert calibration["switch_delay_s"], "blue-green switches the router: its delay is measured"
        assert saved["calibrated_predictions"] is not None
        assert calibration["fitted_pod_timing"]["start_delay"]["kind"] in ("lognormal", "fixed")
    for check in saved["checks"]:
        assert check["verdict"] in ("inside", "outside", "no prediction")
    assert "switch_failures" in result.stdout and "zero downtime: run 0" in result.stdout

    table = read_results(out / "results.csv")
    assert set(table["source"]) == {"sim", "live-local"}
    assert (table["source"] == "sim").sum() == 200
    assert (out / "report.html").exists() and "simulator vs live" in (out / "report.html").read_text()
    if strategy == "canary":
        again = rolloutlab("report", str(out / "live-results.csv"), "--out", str(tmp_path / "report"), timeout=120)
        assert again.returncode == 0, again.stderr
        assert (tmp_path / "report" / "report.html").exists()
