"""What the controller decides, pinned to exact values: the analysis verdict at `count`, the
error counter's reset, background analysis' `startingStep`, blue-green's preview and abort,
`abortScaleDownDelaySeconds: 0`, the rolling ladder's completion, Kubernetes' cleanup of old
pods, and the Mann-Whitney judge's significance and pass threshold.

Each table row is a case a small, bug-like edit of ``strategies/`` would get wrong (an
independent mutation sample found these unpinned); ``benchmarks/mutation.py`` measures how
many such edits the tests notice.
"""

from __future__ import annotations

import pytest

from rolloutlab.strategies import Observation, Role, RolloutStatus, StrategySpec, VersionObservation, reconcile
from rolloutlab.strategies.actions import EventReason, Promote, ScaleVersion, SwitchActive
from rolloutlab.strategies.analysis import advance_analysis, start_analysis
from rolloutlab.strategies.blue_green import Rung
from rolloutlab.strategies.dry_run import IdealWorld
from rolloutlab.strategies.judges.judgement import MeasurementPhase
from rolloutlab.strategies.judges.mann_whitney import SignalClass, classify_signal, judge_mann_whitney
from rolloutlab.strategies.observation import LATENCY_BUCKETS_MS, Counters, MeasurementWindow, WindowStats
from rolloutlab.strategies.replicas import rolling_update_step
from rolloutlab.strategies.spec import Metric, ScoredSignal
from rolloutlab.strategies.status import AbortCause, AnalysisKind, AnalysisPhase, Phase

# --------------------------------------------------------------------------- analysis verdicts

# Canary error rate per window that makes the threshold judge below say each phase.
# successCondition result < 0.02, failureCondition result > 0.2: 5% is neither.
WINDOW = {"S": 0.0, "F": 0.5, "I": 0.05, "E": None}


def run_metric(marks: str, **limits) -> list[tuple[AnalysisPhase, int, int, int, int, int]]:
    """Measure one metric on windows whose canary gives ``marks`` (S, F, I, E); after each
    measurement: (phase, successful, failed, inconclusive, errors, consecutive_errors)."""
    metric = Metric.model_validate({"name": "m", "interval": 30, "successCondition": "result < 0.02",
                                    "failureCondition": "result > 0.2", **limits})
    run = start_analysis(AnalysisKind.STEP, "step-1", (metric,), now=0.0)
    requests = errors = 0

    def observe(now: float) -> Observation:
        return Observation(now, VersionObservation(10, 10, 10, Counters(1000 * int(now), 0)),
                           VersionObservation(1, 1, 1, Counters(requests, errors)))

    run, _ = advance_analysis(run, (metric,), observe(0.0))  # opens the first window
    out = []
    for k, mark in enumerate(marks, start=1):
        rate = WINDOW[mark]
        if rate is not None:  # "E": no canary request in the window
            requests += 1000
            errors += int(1000 * rate)
        run, _ = advance_analysis(run, (metric,), observe(30.0 * k))
        m = run.metrics[0]
        out.append((run.phase, m.successful, m.failed, m.inconclusive, m.errors, m.consecutive_errors))
        if run.phase.done:
            break
    return out


R, S, F, I, E = (AnalysisPhase.RUNNING, AnalysisPhase.SUCCESSFUL, AnalysisPhase.FAILED, AnalysisPhase.INCONCLUSIVE,
                 AnalysisPhase.ERROR)

VERDICTS = [
    # Argo's assessMetricStatus at count: Successful only if successful > inconclusive
    ("count 2, successful == inconclusive: Inconclusive", "SI", {"count": 2, "inconclusiveLimit": 5},
     [(R, 1, 0, 0, 0, 0), (I, 1, 0, 1, 0, 0)]),
    ("count 2, an all-error run: Inconclusive, not Successful", "EE", {"count": 2},
     [(R, 0, 0, 0, 1, 1), (I, 0, 0, 0, 2, 2)]),
    ("count 3, one successful, one inconclusive, one error: Inconclusive", "SIE", {"count": 3, "inconclusiveLimit": 5},
     [(R, 1, 0, 0, 0, 0), (R, 1, 0, 1, 0, 0), (I, 1, 0, 1, 1, 1)]),
    ("count 3, 2 successful > 1 inconclusive: Successful", "SIS", {"count": 3, "inconclusiveLimit": 5},
     [(R, 1, 0, 0, 0, 0), (R, 1, 0, 1, 0, 0), (S, 2, 0, 1, 0, 0)]),
    ("count 2, a failure within failureLimit: Successful", "FS", {"count": 2, "failureLimit": 1},
     [(R, 0, 1, 0, 0, 0), (S, 1, 1, 0, 0, 0)]),
    ("count 1, successful: Successful at once", "S", {"count": 1}, [(S, 1, 0, 0, 0, 0)]),
    # the consecutive-error counter resets after any measurement that is not an error
    ("consecutive errors reset by a success", "EESEE", {"consecutiveErrorLimit": 2},
     [(R, 0, 0, 0, 1, 1), (R, 0, 0, 0, 2, 2), (R, 1, 0, 0, 2, 0), (R, 1, 0, 0, 3, 1), (R, 1, 0, 0, 4, 2)]),
    ("consecutive errors reset by an inconclusive measurement", "EIE", {"consecutiveErrorLimit": 1, "inconclusiveLimit": 5},
     [(R, 0, 0, 0, 1, 1), (R, 0, 0, 1, 1, 0), (R, 0, 0, 1, 2, 1)]),
    ("consecutive errors reset by a failure", "EFE", {"consecutiveErrorLimit": 1, "failureLimit": 5},
     [(R, 0, 0, 0, 1, 1), (R, 0, 1, 0, 1, 0), (R, 0, 1, 0, 2, 1)]),
    ("more than consecutiveErrorLimit errors in a row: Error", "EEE", {"consecutiveErrorLimit": 2},
     [(R, 0, 0, 0, 1, 1), (R, 0, 0, 0, 2, 2), (E, 0, 0, 0, 3, 3)]),
    ("consecutiveErrorLimit 0: the first error is an Error", "E", {"consecutiveErrorLimit": 0}, [(E, 0, 0, 0, 1, 1)]),
    # limits are "more than": failureLimit 1 fails at the 2nd failure, not at the 1st
    ("failureLimit 1: the 2nd failure fails", "FSF", {"failureLimit": 1},
     [(R, 0, 1, 0, 0, 0), (R, 1, 1, 0, 0, 0), (F, 1, 2, 0, 0, 0)]),
    ("failureLimit 0: the first failure fails", "F", {}, [(F, 0, 1, 0, 0, 0)]),
    ("inconclusiveLimit 1: the 2nd inconclusive is Inconclusive", "II", {"inconclusiveLimit": 1},
     [(R, 0, 0, 1, 0, 0), (I, 0, 0, 2, 0, 0)]),
    # failure is checked before errors and before count
    ("a failure at count beats the count verdict", "SF", {"count": 2, "failureLimit": 0},
     [(R, 1, 0, 0, 0, 0), (F, 1, 1, 0, 0, 0)]),
]


@pytest.mark.parametrize("marks, limits, expected", [v[1:] for v in VERDICTS], ids=[v[0] for v in VERDICTS])
def test_analysis_verdict_after_each_measurement(marks, limits, expected):
    """After each measurement the metric's phase and counters are exactly Argo's (assessMetricStatus)."""
    assert run_metric(marks, **limits) == expected


def test_measurements_are_due_after_the_initial_delay_then_every_interval():
    """A metric opens its first window initialDelay after the run started and measures every interval after that."""
    metric = Metric.model_validate({"name": "m", "interval": 30, "initialDelay": 20, "count": 2,
                                    "successCondition": "result < 0.02"})
    run = start_analysis(AnalysisKind.STEP, "s", (metric,), now=100.0)
    seen = []
    for now in (100.0, 119.0, 120.0, 149.0, 150.0, 179.0, 180.0):
        obs = Observation(now, VersionObservation(1, 1, 1, Counters(int(now))),
                          VersionObservation(1, 1, 1, Counters(int(now))))
        run, _ = advance_analysis(run, (metric,), obs)
        seen.append((now, run.metrics[0].mark_at, run.metrics[0].count, run.metrics[0].due_at))
    assert seen == [(100.0, None, 0, 120.0), (119.0, None, 0, 120.0), (120.0, 120.0, 0, 150.0),
                    (149.0, 120.0, 0, 150.0), (150.0, 150.0, 1, 180.0), (179.0, 150.0, 1, 180.0),
                    (180.0, 180.0, 2, 210.0)]
    assert run.phase is AnalysisPhase.SUCCESSFUL and run.finished_at == 180.0


# --------------------------------------------------------------------------- canary: startingStep

TEMPLATE = {"name": "t", "metrics": [{"name": "m", "interval": 30, "successCondition": "result < 0.02"}]}
STEPS = [{"setWeight": 20}, {"pause": {"duration": 60}}, {"setWeight": 50}, {"pause": {"duration": 60}}]


def spec_of(strategy: dict, replicas: int = 10, **extra) -> StrategySpec:
    return StrategySpec.model_validate({"name": "d", "replicas": replicas, "analysisTemplates": [TEMPLATE],
                                        "strategy": strategy, **extra})


@pytest.mark.parametrize("starting_step, started_at", [
    (0, 0.0),  # with the rollout
    (1, 10.0),  # once setWeight 20 is done: its 2 canary pods are ready at 10s
    (2, 70.0),  # after the 60s pause
    (3, 80.0),  # after setWeight 50 (5 canary pods, ready 10s after they were asked for)
    (4, 140.0),  # after every step: at promotion
], ids=["step-0", "step-1", "step-2", "step-3", "step-4"])
def test_background_analysis_starts_at_its_starting_step(starting_step, started_at):
    """Background analysis starts exactly when the rollout reaches startingStep, and never before."""
    spec = spec_of({"canary": {"analysis": {"templates": [{"templateName": "t"}], "startingStep": starting_step},
                               "steps": STEPS}})
    world = IdealWorld(spec)
    world.run(until=3600)
    started = [e.at for e in world.events() if e.reason is EventReason.ANALYSIS_STARTED]
    assert started == [started_at]
    assert world.status.analysis("background").started_at == started_at


# --------------------------------------------------------------------------- blue-green

@pytest.mark.parametrize("preview, replicas, scaled", [
    (None, 10, [10]),  # no previewReplicaCount: the full environment at once
    (3, 10, [3, 10]),  # 3 pods for the preview, the rest at the switch
    (1, 4, [1, 4]),
    (10, 10, [10]),  # as many as replicas: nothing more at the switch
    (15, 10, [10]),  # more than replicas: capped at replicas
], ids=["none", "3-of-10", "1-of-4", "all", "more-than-replicas"])
def test_preview_replica_count_scales_the_preview(preview, replicas, scaled):
    """The new version gets previewReplicaCount pods until the switch rung, then all replicas, before users see it."""
    bg = {"autoPromotionEnabled": True, **({"previewReplicaCount": preview} if preview else {})}
    world = IdealWorld(spec_of({"blueGreen": bg}, replicas=replicas))
    world.run(until=3600)
    canary_scales = [(d.at, a.replicas) for d in world.log for a in d.actions
                     if isinstance(a, ScaleVersion) and a.role is Role.CANARY]
    assert [n for _, n in canary_scales] == scaled
    switched = next(e.at for e in world.events() if e.reason is EventReason.SWITCHED)
    assert switched == 10.0 * len(scaled)  # each scale-up waits for its pods (10s) before the next rung
    assert world.status.outcome == "promoted"


def switched_abort_status(at: float) -> RolloutStatus:
    """A blue-green rollout aborted (by command) after the switch, during post-promotion analysis."""
    return RolloutStatus(phase=Phase.DEGRADED, started_at=0.0, step_index=int(Rung.POST_PROMOTION_ANALYSIS),
                         active=Role.CANARY, switched_at=100.0, aborted=True, aborted_at=at,
                         abort_reason="aborted by command", abort_cause=AbortCause.COMMAND, last_progress_at=at)


@pytest.mark.parametrize("stable_available, switch_back, restored", [
    (10, True, True),
    (9, False, False),  # one stable pod missing: users stay on the new version until it is back
    (0, False, False),
], ids=["stable-complete", "one-stable-pod-missing", "no-stable-pod"])
def test_blue_green_abort_waits_for_a_complete_stable(stable_available, switch_back, restored):
    """An abort switches the active Service back only once every stable pod is available, and asks for the missing ones."""
    spec = spec_of({"blueGreen": {"abortScaleDownDelaySeconds": 30}})
    obs = Observation(200.0, VersionObservation(10, stable_available, stable_available), VersionObservation(10, 10, 10))
    status, actions = reconcile(spec, switched_abort_status(200.0), obs)
    assert (SwitchActive(Role.STABLE) in actions) is switch_back
    assert status.active is (Role.STABLE if switch_back else Role.CANARY)
    assert status.restored_at == (200.0 if restored else None)
    assert status.scale_down_at == (230.0 if restored else None)
    assert not any(isinstance(a, ScaleVersion) and a.role is Role.CANARY for a in actions)


@pytest.mark.parametrize("strategy", ["blueGreen", "canary-router"])
@pytest.mark.parametrize("delay, now, canary_scaled_to_0", [
    (0, 300.0, False),
    (0, 10_000_000.0, False),  # 0 keeps the aborted version running, for debugging (Argo)
    (30, 229.0, False),
    (30, 230.0, True),  # restored at 200: exactly 30s later
], ids=["0-soon", "0-much-later", "30-just-before", "30-on-time"])
def test_abort_scale_down_delay(strategy, delay, now, canary_scaled_to_0):
    """After an abort is restored the aborted version goes abortScaleDownDelaySeconds later; 0 keeps it for good."""
    if strategy == "blueGreen":
        spec = spec_of({"blueGreen": {"abortScaleDownDelaySeconds": delay}})
    else:
        spec = spec_of({"canary": {"trafficRouting": "router", "abortScaleDownDelaySeconds": delay, "steps": STEPS}})
    status = RolloutStatus(phase=Phase.DEGRADED, started_at=0.0, aborted=True, aborted_at=150.0,
                           abort_cause=AbortCause.COMMAND, last_progress_at=150.0)
    stable, canary = VersionObservation(10, 10, 10), VersionObservation(2, 2, 2)
    status, actions = reconcile(spec, status, Observation(200.0, stable, canary))
    assert status.restored_at == 200.0
    status, actions = reconcile(spec, status, Observation(now, stable, canary))
    assert (ScaleVersion(Role.CANARY, 0) in actions) is canary_scaled_to_0
    assert status.requeue_at == (None if delay == 0 or canary_scaled_to_0 else 230.0)


# --------------------------------------------------------------------------- rolling ladder

ROLLING = {"rolling": {"maxSurge": "25%", "maxUnavailable": "25%"}}


@pytest.mark.parametrize("aborted, new, old, actions, completed, restored", [
    # (spec, available) of the new and the old version
    (False, (10, 10), (0, 0), [Promote()], True, False),
    (False, (10, 9), (0, 0), [], False, False),  # one new pod not ready yet: not complete
    (False, (10, 10), (2, 2), [ScaleVersion(Role.STABLE, 0)], False, False),  # old pods still there
    (False, (9, 9), (1, 1), [ScaleVersion(Role.CANARY, 10)], False, False),
    (True, (10, 10), (0, 0), [], False, True),  # undo done: the old version (stable) runs every pod
    (True, (10, 8), (0, 0), [], False, False),
], ids=["complete", "a-new-pod-not-ready", "old-pods-left", "one-pod-to-go", "undo-complete", "undo-not-ready"])
def test_rolling_completes_only_with_every_new_pod_available_and_no_old_pod(aborted, new, old, actions, completed,
                                                                           restored):
    """A rolling update is complete when the new version has every replica available and the old one none; an undo the same way back."""
    spec = spec_of(ROLLING)
    status = RolloutStatus(started_at=0.0, last_progress_at=0.0, aborted=aborted, aborted_at=5.0 if aborted else None,
                           abort_cause=AbortCause.COMMAND if aborted else None,
                           phase=Phase.DEGRADED if aborted else Phase.PROGRESSING)
    (new_spec, new_avail), (old_spec, old_avail) = new, old
    new_obs, old_obs = VersionObservation(new_spec, new_avail, new_avail), VersionObservation(old_spec, old_avail, old_avail)
    stable, canary = (new_obs, old_obs) if aborted else (old_obs, new_obs)
    result, got = reconcile(spec, status, Observation(60.0, stable, canary))
    assert [a for a in got if not hasattr(a, "reason")] == actions
    assert result.completed is completed
    assert (result.restored_at == 60.0) is restored
    assert (result.requeue_at is not None) is not (completed or restored)  # waiting on pods: the deadline ticks


# (replicas, maxSurge, maxUnavailable, new spec/available, old spec/available) -> next (new, old)
CLEANUP = [
    ("new pods not ready: only what maxUnavailable allows goes", 10, "25%", "25%", (3, 0), (10, 10), (3, 8)),
    ("new pods not ready and the floor reached: nothing goes", 10, "25%", "25%", (5, 0), (8, 8), (5, 8)),
    ("unready new pods bound the cleanup of unhealthy old pods", 10, "25%", "25%", (3, 0), (10, 7), (3, 8)),
    ("unhealthy old pods go first, then healthy ones down to the floor", 10, "25%", "25%", (3, 3), (10, 7), (3, 5)),
    ("old RS reporting more pods than its spec: k8s refuses to scale down", 10, "25%", "25%", (5, 5), (8, 10), (5, 8)),
    ("surge first: the new RS grows while there is room", 10, "25%", "25%", (0, 0), (10, 10), (3, 10)),
    ("no surge: old pods go first, within maxUnavailable", 4, 0, 1, (0, 0), (4, 4), (0, 3)),
    ("no surge, a new pod not ready: the old RS holds at the floor", 4, 0, 1, (1, 0), (3, 3), (1, 3)),
]


@pytest.mark.parametrize("replicas, surge, unavailable, new, old, expected", [c[1:] for c in CLEANUP],
                         ids=[c[0] for c in CLEANUP])
def test_rolling_update_step_never_scales_old_pods_below_availability(replicas, surge, unavailable, new, old, expected):
    """One sync of Kubernetes' rolling update (reconcileOldReplicaSets, cleanupUnhealthyReplicas) gives exactly these counts."""
    assert tuple(rolling_update_step(replicas, surge, unavailable, *new, *old)) == expected


# --------------------------------------------------------------------------- Mann-Whitney judge

INCREASE = ScoredSignal(signal="errorRate")


@pytest.mark.parametrize("canary, baseline, confidence, classification", [
    # 3 vs 3, every canary value higher and 16x the mean: the smallest two-sided p is 0.1
    ([0.1, 0.5, 0.9], [0.01, 0.02, 0.03], 0.95, SignalClass.PASS),
    ([0.1, 0.5, 0.9], [0.01, 0.02, 0.03], 0.85, SignalClass.HIGH),  # p 0.1 < 0.15: significant
    # 5 vs 5, all higher: p = 0.0079
    ([5, 6, 7, 8, 9], [1, 2, 3, 4, 4.5], 0.95, SignalClass.HIGH),
    ([5, 6, 7, 8, 9], [1, 2, 3, 4, 4.5], 0.995, SignalClass.PASS),
    # Kayenta: a signal whose direction is increase is never Low, however significant the drop
    # (MannWhitneyClassifier only tests the side the direction names)
    ([1, 2, 3, 4, 4.5], [5, 6, 7, 8, 9], 0.95, SignalClass.PASS),
    ([2, 2, 2], [2, 2, 2], 0.95, SignalClass.PASS),  # identical series
], ids=["large-not-significant", "large-significant-at-85%", "significant-high", "not-significant-at-99.5%",
        "significant-drop-passes-an-increase-signal", "identical"])
def test_mann_whitney_needs_significance_not_only_a_large_difference(canary, baseline, confidence, classification):
    """A signal is High or Low only when the test is significant (p < 1 - confidence), however large the difference."""
    result = classify_signal("errorRate", canary, baseline, INCREASE, confidence)
    assert result.classification is classification
    assert result.passed is (classification is not SignalClass.HIGH)


def mw_metric(pass_: float, marginal: float) -> Metric:
    """Error rate (weight 3, identical on both sides: passes) and p99 latency (weight 1, canary higher: fails)."""
    return Metric.model_validate({"name": "mw", "judge": {"mannWhitney": {
        "thresholds": {"pass": pass_, "marginal": marginal},
        "signals": [{"signal": "errorRate", "weight": 3}, {"signal": "latency", "quantile": 0.99, "weight": 1}]}}})


def in_bucket(i: int) -> WindowStats:
    """100 requests, no error, every latency in bucket ``i``."""
    return WindowStats(60.0, 100, 0, tuple(100 if j == i else 0 for j in range(len(LATENCY_BUCKETS_MS))))


# 4 windows, every canary p99 above every baseline p99: two-sided p = 2/70, significant at 95%
MW_WINDOWS = [MeasurementWindow(60.0 * k, in_bucket(canary), in_bucket(base))
              for k, (canary, base) in enumerate([(7, 1), (8, 2), (9, 3), (10, 4)], start=1)]


@pytest.mark.parametrize("pass_, marginal, phase", [
    (75, 50, MeasurementPhase.SUCCESSFUL),  # score exactly at the pass threshold passes
    (75.01, 75, MeasurementPhase.INCONCLUSIVE),  # exactly at marginal: inconclusive
    (90, 75.01, MeasurementPhase.FAILED),
], ids=["at-pass", "at-marginal", "below-marginal"])
def test_mann_whitney_score_exactly_at_a_threshold(pass_, marginal, phase):
    """A score of exactly 75 passes with pass: 75 and is inconclusive with marginal: 75 (Kayenta's >=)."""
    judgement = judge_mann_whitney(mw_metric(pass_, marginal), MW_WINDOWS)
    assert judgement.value == 75.0
    assert judgement.phase is phase


def test_mann_whitney_waits_for_min_points():
    """With fewer windows than min_points (4) the judge is Pending, and it judges on the 4th."""
    metric = mw_metric(75, 50)
    assert judge_mann_whitney(metric, MW_WINDOWS[:3]).phase is MeasurementPhase.PENDING
    assert judge_mann_whitney(metric, MW_WINDOWS).phase is MeasurementPhase.SUCCESSFUL


# --------------------------------------------------------------------------- analysis runs

def measure_windows(metrics: tuple[Metric, ...], windows: list[tuple[int, int, int, int]]):
    """Run ``metrics`` over windows of (canary requests, canary errors, baseline requests,
    baseline errors), 30s each; the run and every event after each measurement."""
    run = start_analysis(AnalysisKind.BACKGROUND, "background", metrics, now=0.0)
    totals = [0, 0, 0, 0]
    events = []
    for k, window in enumerate([(0, 0, 0, 0), *windows]):
        totals = [a + b for a, b in zip(totals, window)]
        obs = Observation(30.0 * k, VersionObservation(9, 9, 9, Counters(totals[2], totals[3])),
                          VersionObservation(1, 1, 1, Counters(totals[0], totals[1])))
        run, new = advance_analysis(run, metrics, obs)
        events += new
    return run, events


def threshold_metric(name: str, **extra) -> Metric:
    return Metric.model_validate({"name": name, "interval": 30, "successCondition": "result < 0.02", **extra})


@pytest.mark.parametrize("windows, phase, failing", [
    # no canary traffic: both metrics error; 50% canary errors: both fail
    ([(0, 0, 100, 0)], AnalysisPhase.ERROR, "a, b"),
    ([(100, 50, 100, 0)], AnalysisPhase.FAILED, "a, b"),
], ids=["both-error", "both-fail"])
def test_the_run_takes_its_worst_metric(windows, phase, failing):
    """A run's phase is its worst metric's (Failed > Error > Inconclusive > Running > Successful), naming the metrics at fault."""
    metrics = (threshold_metric("a", consecutiveErrorLimit=0), threshold_metric("b", consecutiveErrorLimit=0))
    run, _ = measure_windows(metrics, windows)
    assert run.phase is phase
    assert run.message == f"analysis background {phase.value.lower()}: {failing}"


def test_failed_beats_error_whatever_the_metric_order():
    """When one metric errors and another fails at the same measurement, the run is Failed, in either order."""
    erroring = threshold_metric("e", signal="latency", consecutiveErrorLimit=0)  # no latency histogram: an error
    failing = threshold_metric("f", failureLimit=0)
    for metrics in ((erroring, failing), (failing, erroring)):
        run, _ = measure_windows(metrics, [(100, 50, 100, 0)])
        assert [m.phase for m in run.metrics] == [AnalysisPhase.ERROR if m.name == "e" else AnalysisPhase.FAILED
                                                  for m in metrics]
        assert run.phase is AnalysisPhase.FAILED and run.message == "analysis background failed: f"


def test_a_successful_run_is_successful_only_when_every_metric_is():
    """A run with one metric done and another still measuring keeps running; it succeeds when both succeeded."""
    metrics = (threshold_metric("one", count=1), threshold_metric("two", count=2))
    run, _ = measure_windows(metrics, [(100, 0, 100, 0)])
    assert (run.phase, run.finished_at) == (AnalysisPhase.RUNNING, None)
    run, _ = measure_windows(metrics, [(100, 0, 100, 0), (100, 0, 100, 0)])
    assert (run.phase, run.finished_at, run.message) == (AnalysisPhase.SUCCESSFUL, 60.0, "analysis background successful")


@pytest.mark.parametrize("windows, phase", [
    ([(1000, 500, 1000, 5)], AnalysisPhase.FAILED),  # 100x the baseline's error rate: final Failed at once
    ([(10**6, 1000, 10**6, 1000)] * 3, AnalysisPhase.SUCCESSFUL),  # same rate, much evidence: final Successful
], ids=["final-failed", "final-successful"])
def test_a_final_judgement_decides_the_metric_early(windows, phase):
    """The sequential judge's final verdict decides the metric at once, before count and despite failureLimit."""
    metric = Metric.model_validate({"name": "s", "interval": 30, "count": 10, "failureLimit": 5,
                                    "judge": {"sequential": {}}})
    run, _ = measure_windows((metric,), windows)
    assert run.phase is phase
    assert run.metrics[0].count < 10


def test_timeline_events_are_typed():
    """Measurement events carry their metric and phase, and the verdict event its phase, so nothing parses a message."""
    _, events = measure_windows((threshold_metric("m", count=2),), [(100, 0, 100, 0), (100, 0, 100, 0)])
    assert [(e.reason, e.metric, e.phase) for e in events] == [
        (EventReason.MEASUREMENT, "m", MeasurementPhase.SUCCESSFUL.value),
        (EventReason.MEASUREMENT, "m", MeasurementPhase.SUCCESSFUL.value),
        (EventReason.ANALYSIS_COMPLETED, None, AnalysisPhase.SUCCESSFUL.value),
    ]
    assert [e.at for e in events] == [30.0, 60.0, 60.0]


def test_a_metric_the_templates_no_longer_define_is_refused():
    """A run whose metric is missing from the templates raises, naming the run and the metric."""
    run = start_analysis(AnalysisKind.STEP, "step-1", (threshold_metric("gone"),), now=0.0)
    obs = Observation(30.0, VersionObservation(1, 1, 1), VersionObservation(1, 1, 1))
    with pytest.raises(ValueError, match="analysis 'step-1' has a metric 'gone'"):
        advance_analysis(run, (threshold_metric("other"),), obs)


# --------------------------------------------------------------------------- run phase order, nothing due

def run_with_preset(preset: list[tuple[str, AnalysisPhase]], measured: str):
    """A run whose metrics are ``preset`` (name, phase; running ones not due) plus metric "now", measured
    now on a window that makes it ``measured`` (S, F, I, E, or R: successful but count not reached)."""
    from rolloutlab.strategies.status import MetricRun, evolve

    limits = {"count": {"R": 5, "S": 1}.get(measured), "consecutiveErrorLimit": 0}
    now_metric = threshold_metric("now", failureCondition="result > 0.2", **limits)
    others = tuple(threshold_metric(name) for name, _ in preset)
    run = start_analysis(AnalysisKind.BACKGROUND, "background", (*others, now_metric), now=0.0)
    metrics = [MetricRun(name=name, phase=phase, due_at=1e9) for name, phase in preset]
    run = evolve(run, metrics=(*metrics, evolve(run.metrics[-1], mark_at=0.0, due_at=30.0)))
    rate = WINDOW["S" if measured == "R" else measured]
    canary = Counters(0, 0) if rate is None else Counters(1000, int(1000 * rate))
    obs = Observation(30.0, VersionObservation(9, 9, 9, Counters(1000, 0)), VersionObservation(1, 1, 1, canary))
    return advance_analysis(run, (*others, now_metric), obs)


ORDER = [
    ("error then inconclusive", [("x", E)], "I", E),
    ("inconclusive then error", [("x", I)], "E", E),
    ("running then inconclusive", [("x", R)], "I", I),
    ("inconclusive then running", [("x", I)], "R", I),
    ("successful then running", [("x", S)], "R", R),
    ("running then successful", [("x", R)], "S", R),
    ("successful then successful", [("x", S)], "S", S),
    ("failed then error", [("x", F)], "E", F),
]


@pytest.mark.parametrize("preset, measured, phase", [o[1:] for o in ORDER], ids=[o[0] for o in ORDER])
def test_the_worst_metric_phase_wins_in_any_order(preset, measured, phase):
    """Failed > Error > Inconclusive > Running > Successful, whichever metric comes first."""
    run, _ = run_with_preset(preset, measured)
    assert run.phase is phase


def test_a_finished_run_takes_no_more_measurements():
    """Once a run is done, advancing it changes nothing, even if one of its metrics was still running, and it asks for no more calls."""
    from rolloutlab.strategies.analysis import next_analysis_due

    run, _ = run_with_preset([("slow", R)], "F")
    assert run.phase is AnalysisPhase.FAILED
    later = Observation(1e9, VersionObservation(9, 9, 9, Counters(9000)), VersionObservation(1, 1, 1, Counters(9000)))
    again, events = advance_analysis(run, tuple(threshold_metric(m.name) for m in run.metrics), later)
    assert again is run and events == []
    assert next_analysis_due(run) is None


def test_nothing_due_returns_the_same_run():
    """A call before any measurement is due returns the very same run object (the controller then stores nothing)."""
    metric = threshold_metric("m")
    run = start_analysis(AnalysisKind.STEP, "s", (metric,), now=0.0)
    obs = Observation(0.0, VersionObservation(1, 1, 1), VersionObservation(1, 1, 1))
    run, _ = advance_analysis(run, (metric,), obs)  # opens the window, due at 30
    early = Observation(29.0, VersionObservation(1, 1, 1), VersionObservation(1, 1, 1))
    same, events = advance_analysis(run, (metric,), early)
    assert same is run and events == []


# --------------------------------------------------------------------------- routed canary: scale, abort, promotion

def routed(steps: list, **canary) -> StrategySpec:
    return spec_of({"canary": {"trafficRouting": "router", "steps": steps, **canary}}, progressDeadlineSeconds=120)


def first_time(world: IdealWorld, reason: EventReason) -> float | None:
    return next((e.at for e in world.events() if e.reason is reason), None)


@pytest.mark.parametrize("spec, delay", [
    (routed([{"setCanaryScale": {"weight": 100}}, {"setWeight": 10}]), 10**9),
    (routed([{"setWeight": 30}, {"pause": {}}]), 10**9),
    (spec_of({"blueGreen": {}}, progressDeadlineSeconds=120), 10**9),
], ids=["setCanaryScale-never-ready", "router-weight-never-carried", "blue-green-preview-never-ready"])
def test_waiting_for_pods_trips_the_progress_deadline_on_time(spec, delay):
    """Pods that never become ready trip progressDeadlineSeconds (120s) exactly on time, whatever rung waits for them."""
    world = IdealWorld(spec, start_delay=delay)
    world.run(until=600)
    assert first_time(world, EventReason.DEADLINE_EXCEEDED) == 120.0


def test_a_set_canary_scale_step_completes_when_its_pods_are_ready():
    """setCanaryScale completes when its pods are ready (30s), not when they are asked for; the event says which step it was."""
    world = IdealWorld(routed([{"setCanaryScale": {"replicas": 3}}, {"setWeight": 20}, {"pause": {}}]), start_delay=30)
    world.run(until=600)
    completed = [(e.at, e.message) for e in world.events() if e.reason is EventReason.STEP_COMPLETED]
    assert completed[:2] == [(30.0, "step 0 (setCanaryScale) completed"), (30.0, "step 1 (setWeight) completed")]


@pytest.mark.parametrize("steps, canary_sizes", [
    ([{"setCanaryScale": {"replicas": 3}}, {"setWeight": 20}], [3, 10]),  # all replicas at promotion, not 3
    ([{"setCanaryScale": {"replicas": 1}}, {"setWeight": 20}, {"setCanaryScale": {"matchTrafficWeight": True}},
      {"setWeight": 50}], [1, 2, 5, 10]),  # matchTrafficWeight: back to the weight's share
    ([{"setWeight": 20}, {"setWeight": 50}], [2, 5, 10]),
], ids=["override-then-promotion", "match-traffic-weight", "weights-only"])
def test_router_canary_sizes(steps, canary_sizes):
    """With a router the canary has setCanaryScale's pods, the weight's share once matchTrafficWeight, and all replicas at promotion."""
    world = IdealWorld(routed(steps))
    world.run(until=3600)
    sizes = [a.replicas for d in world.log for a in d.actions if isinstance(a, ScaleVersion) and a.role is Role.CANARY]
    assert sizes == canary_sizes
    assert world.status.outcome == "promoted"


@pytest.mark.parametrize("routing, dynamic, stable_down_after", [
    ("none", False, 0.0),  # basic canary: the stable goes with the promotion
    ("router", False, 30.0),  # scaleDownDelaySeconds after the promotion
    ("router", True, 0.0),  # dynamicStableScale: already down to nothing
], ids=["basic", "router", "router-dynamic"])
def test_old_stable_scale_down_after_promotion(routing, dynamic, stable_down_after):
    """After promotion the old stable goes at once, or scaleDownDelaySeconds (30s) later with a router and no dynamicStableScale."""
    spec = spec_of({"canary": {"trafficRouting": routing, "dynamicStableScale": dynamic, "scaleDownDelaySeconds": 30,
                               "steps": [{"setWeight": 50}]}})
    world = IdealWorld(spec)
    world.run(until=3600)
    promoted = first_time(world, EventReason.PROMOTED)
    gone = [d.at for d in world.log for a in d.actions if a == ScaleVersion(Role.STABLE, 0)]
    assert gone == [promoted + stable_down_after]
    assert world.status.scale_down_at == (promoted + 30.0 if stable_down_after else None)


def test_without_dynamic_stable_scale_the_stable_keeps_every_pod():
    """With a router but no dynamicStableScale the stable is never scaled below replicas before promotion."""
    world = IdealWorld(routed([{"setWeight": 30}, {"pause": {"duration": 60}}, {"setWeight": 70}]))
    world.run(until=3600)
    shrunk = [d.at for d in world.log for a in d.actions
              if isinstance(a, ScaleVersion) and a.role is Role.STABLE and a.replicas < 10 and not d.status.completed]
    assert shrunk == [] and world.status.outcome == "promoted"


def aborted_at_50(stable_available: int, applied_weight: int = 50) -> RolloutStatus:
    return RolloutStatus(phase=Phase.DEGRADED, started_at=0.0, step_index=1, applied_weight=applied_weight,
                         aborted=True, aborted_at=200.0, abort_cause=AbortCause.COMMAND, last_progress_at=200.0)


@pytest.mark.parametrize("dynamic, stable_available, weight_to_0, restored", [
    (False, 10, True, True),
    (False, 7, True, False),  # traffic back at once (the stable kept its pods), restored once all are available
    (True, 5, False, False),  # dynamicStableScale: the stable must be back to full before traffic returns
    (True, 10, True, True),
], ids=["router-stable-full", "router-stable-missing", "dynamic-stable-short", "dynamic-stable-full"])
def test_router_abort_moves_traffic_back_only_to_a_stable_that_can_carry_it(dynamic, stable_available, weight_to_0, restored):
    """A routed abort sets weight 0 at once unless dynamicStableScale left the stable short, and is restored only when every stable pod is available."""
    from rolloutlab.strategies.actions import SetCanaryWeight

    spec = spec_of({"canary": {"trafficRouting": "router", "dynamicStableScale": dynamic,
                               "steps": [{"setWeight": 50}, {"pause": {}}]}})
    obs = Observation(200.0, VersionObservation(10, stable_available, stable_available), VersionObservation(5, 5, 5))
    status, actions = reconcile(spec, aborted_at_50(stable_available), obs)
    assert (SetCanaryWeight(0) in actions) is weight_to_0
    assert status.applied_weight == (0 if weight_to_0 else 50)
    assert status.restored_at == (200.0 if restored else None)
    assert (status.requeue_at is not None) is not restored or status.scale_down_at is not None


def test_switch_emits_the_active_service_action():
    """The switch rung asks the runner to point the active Service at the new version, and back on abort."""
    world = IdealWorld(spec_of({"blueGreen": {}}))
    world.run(until=600)
    assert [a for d in world.log for a in d.actions if isinstance(a, SwitchActive)] == [SwitchActive(Role.CANARY)]


def test_a_completed_rolling_update_does_nothing_more():
    """Once a rolling update completed, further calls emit nothing and keep its completion time."""
    spec = spec_of(ROLLING)
    status = RolloutStatus(started_at=0.0, completed=True, completed_at=30.0, phase=Phase.HEALTHY, last_progress_at=30.0)
    obs = Observation(90.0, VersionObservation(0, 0, 0), VersionObservation(10, 10, 10))
    after, actions = reconcile(spec, status, obs)
    assert actions == () and after.completed_at == 30.0


# --------------------------------------------------------------------------- commands, declared weight, actions

ANALYSIS_STEPS = [{"setWeight": 20}, {"analysis": {"templates": [{"templateName": "t2"}]}}, {"setWeight": 60}]
TEMPLATE_COUNTED = {"name": "t2", "metrics": [{"name": "m", "interval": 30, "count": 10, "successCondition": "result < 0.02"}]}


@pytest.mark.parametrize("command, ignored, step_after", [
    ("resume", "resume ignored: the rollout is not paused", 1),
    ("promote", None, 2),
    ("retry", "retry ignored: only an aborted rollout can be retried", 1),
], ids=["resume-not-paused", "promote-passes-the-analysis", "retry-not-aborted"])
def test_commands_at_a_running_step_analysis(command, ignored, step_after):
    """At a running step analysis (not paused) resume and retry are ignored with the reason; promote passes the step."""
    from rolloutlab.strategies.observation import Command

    spec = StrategySpec.model_validate({"name": "c", "replicas": 10, "analysisTemplates": [TEMPLATE_COUNTED],
                                        "strategy": {"canary": {"steps": ANALYSIS_STEPS}}})
    world = IdealWorld(spec)
    world.run(until=60)
    assert world.status.step_index == 1 and world.status.pause_reason is None
    world.command(Command(command))
    world.step()
    messages = [e.message for e in world.log[-1].actions if getattr(e, "reason", None) is EventReason.COMMAND_IGNORED]
    assert messages == ([] if ignored is None else [ignored])
    assert world.status.step_index == step_after


@pytest.mark.parametrize("kind, status, declared", [
    ("canary", RolloutStatus(step_index=1), 20.0),
    ("canary", RolloutStatus(step_index=1, aborted=True), 0.0),
    ("canary", RolloutStatus(step_index=3, completed=True), 100.0),
    ("canary", RolloutStatus(step_index=3), 100.0),  # every step done: promoting
    ("blueGreen", RolloutStatus(active=Role.CANARY), 100.0),
    ("blueGreen", RolloutStatus(active=Role.STABLE), 0.0),
], ids=["canary-step", "canary-aborted", "canary-completed", "canary-all-steps-done", "bg-switched", "bg-not-switched"])
def test_declared_weight(kind, status, declared):
    """The declared weight is the step's setWeight, 0 after an abort, 100 once promoting; blue-green's follows the active Service."""
    from rolloutlab.strategies.reconcile import compute_declared_weight

    strategy = {"canary": {"steps": ANALYSIS_STEPS}} if kind == "canary" else {"blueGreen": {}}
    spec = StrategySpec.model_validate({"name": "w", "replicas": 10, "analysisTemplates": [TEMPLATE_COUNTED],
                                        "strategy": strategy})
    obs = Observation(0.0, VersionObservation(10, 10, 10), VersionObservation(2, 2, 2))
    assert compute_declared_weight(spec, status, obs) == declared


@pytest.mark.parametrize("name, canary_error_rate", [("canary", 0.1), ("blue-green", 0.1), ("canary", 0.0),
                                                     ("rolling", 0.0)],
                         ids=["canary-aborted", "blue-green-aborted", "canary-promoted", "rolling"])
def test_no_call_asks_for_the_same_thing_twice(name, canary_error_rate):
    """No reconcile call returns the same action twice (an abort re-runs the ladder once, not more)."""
    from rolloutlab.strategies import load_strategy

    world = IdealWorld(load_strategy(name).with_replicas(10))
    world.error_rate[Role.CANARY] = canary_error_rate
    world.run(until=3600)
    for d in world.log:
        asked = [a for a in d.actions if not hasattr(a, "reason")]
        assert len(asked) == len(set(asked)), (d.at, asked)


def test_promote_at_a_set_weight_step_is_ignored():
    """promote while a setWeight step waits for its pods is ignored, with the reason: only pauses and analyses are passed."""
    from rolloutlab.strategies.observation import Command

    world = IdealWorld(spec_of({"canary": {"steps": [{"setWeight": 20}, {"pause": {}}]}}), start_delay=100)
    world.run(until=50)
    assert world.status.step_index == 0
    world.command(Command.PROMOTE)
    world.step()
    ignored = [e.message for e in world.log[-1].actions if getattr(e, "reason", None) is EventReason.COMMAND_IGNORED]
    assert ignored == ["promote ignored: the current step is not a pause or an analysis"]
    assert world.status.step_index == 0


# --------------------------------------------------------------------------- abort, retry, promotion bookkeeping

def failing_background(**canary) -> StrategySpec:
    template = {"name": "t", "metrics": [{"name": "m", "interval": 30, "successCondition": "result < 0.02"}]}
    return StrategySpec.model_validate({"name": "f", "replicas": 10, "analysisTemplates": [template],
                                        "progressDeadlineSeconds": 120, "progressDeadlineAbort": True, "strategy": {
                                            "canary": {"analysis": {"templates": [{"templateName": "t"}]},
                                                       "steps": [{"setWeight": 20}, {"pause": {"duration": 300}}],
                                                       **canary}}})


def test_retry_after_a_failed_analysis_starts_a_fresh_one():
    """Retry keeps the failed background run under "background@<its end>" and starts a fresh one, which a now healthy canary passes."""
    from rolloutlab.strategies.observation import Command

    world = IdealWorld(failing_background())
    world.error_rate[Role.CANARY] = 0.5
    world.run(until=3600)
    assert world.status.aborted_at == 30.0  # the analysis starts with the rollout: its first measurement fails
    world.error_rate[Role.CANARY] = 0.0
    world.command(Command.RETRY)
    retried_at = world.now
    world.run(until=7200)
    assert world.status.outcome == "promoted"
    runs = {a.key: a for a in world.status.analyses}
    assert set(runs) == {"background@30", "background"}
    assert runs["background@30"].phase is AnalysisPhase.FAILED
    assert runs["background"].started_at == retried_at and runs["background"].phase is AnalysisPhase.SUCCESSFUL


def test_a_stalled_rollback_keeps_its_first_abort():
    """A rollback whose stable pods never come back trips the deadline, but the abort keeps its first time and cause."""
    world = IdealWorld(failing_background(trafficRouting="router", dynamicStableScale=True))
    world.error_rate[Role.CANARY] = 0.5
    world.run(until=25)  # weight 20 at 10s: the stable shrank to 8 pods
    world.start_delay = 10**9  # from now on no pod becomes ready: the stable cannot come back
    world.run(until=3600)
    status = world.status
    assert (status.aborted_at, status.abort_cause) == (30.0, AbortCause.ANALYSIS_FAILED)
    assert status.deadline_exceeded and status.restored_at is None
    assert [e.at for e in world.events() if e.reason is EventReason.ABORTED] == [30.0]
    assert [e.at for e in world.events() if e.reason is EventReason.DEADLINE_EXCEEDED] == [30.0 + 120.0]


@pytest.mark.parametrize("how", ["abort-command", "promotion"])
def test_analyses_end_with_the_rollout(how):
    """An abort or a promotion ends every running analysis at that moment (Argo terminates them), and says so on the timeline."""
    from rolloutlab.strategies.observation import Command

    world = IdealWorld(failing_background())
    if how == "abort-command":
        world.run(until=100)
        world.command(Command.ABORT)
    world.run(until=3600)
    end = world.status.aborted_at if how == "abort-command" else world.status.completed_at
    run = world.status.analysis("background")
    assert run.phase is AnalysisPhase.SUCCESSFUL and run.finished_at == end
    if how == "abort-command":
        assert [(e.at, e.message) for e in world.events() if e.reason is EventReason.ABORTED] == [(end, "aborted by command")]


@pytest.mark.parametrize("spec", [
    spec_of({"canary": {"steps": [{"setWeight": 20}]}}, progressDeadlineSeconds=0),
    failing_background(),
    spec_of({"blueGreen": {"autoPromotionSeconds": 30}}),
], ids=["zero-deadline", "background-analysis", "auto-promotion"])
def test_the_controller_never_asks_to_be_called_now(spec):
    """requeue_at is always later than the call (or None): a runner is never asked to loop at the same instant."""
    world = IdealWorld(spec, start_delay=20)
    world.run(until=900)
    assert all(d.status.requeue_at is None or d.status.requeue_at > d.at for d in world.log)


@pytest.mark.parametrize("routing, stable, canary, applied, effective", [
    ("router", 0, 2, 30, 100.0),  # no stable pod: whatever the weight, the canary serves everything
    ("router", 0, 0, 30, 0.0),
    ("router", 1, 2, 30, 30.0),
    ("router", 5, 0, 30, 0.0),  # no canary pod: nothing reaches it
    ("none", 9, 1, 0, 10.0),
    ("none", 0, 0, 0, 0.0),
], ids=["router-no-stable", "router-nothing", "router-weight", "router-no-canary", "pods-ratio", "pods-none"])
def test_effective_weight(routing, stable, canary, applied, effective):
    """The share of traffic that reaches the canary: the router's weight while both versions have pods, else where pods are."""
    from rolloutlab.strategies.reconcile import compute_effective_weight

    spec = spec_of({"canary": {"trafficRouting": routing, "steps": [{"setWeight": 30}]}})
    obs = Observation(0.0, VersionObservation(stable, stable, stable), VersionObservation(canary, canary, canary))
    assert compute_effective_weight(spec, RolloutStatus(applied_weight=applied), obs) == effective


def test_rolling_declared_weight_is_the_share_of_new_pods():
    """A rolling update declares the new version's share of the declared pods."""
    from rolloutlab.strategies.reconcile import compute_declared_weight

    spec = spec_of(ROLLING)
    obs = Observation(0.0, VersionObservation(6, 6, 6), VersionObservation(2, 0, 0))
    assert compute_declared_weight(spec, RolloutStatus(), obs) == 25.0


def test_a_negative_pod_total_is_refused():
    """resolve_int_or_percent refuses a negative total, naming it."""
    from rolloutlab.strategies.replicas import resolve_int_or_percent

    with pytest.raises(ValueError, match="total must be >= 0"):
        resolve_int_or_percent("25%", -1, round_up=True)


# --------------------------------------------------------------------------- judges: edges

def test_a_p_value_exactly_at_the_level_is_not_significant():
    """Significance is strict, p < 1 - confidence: one canary point above 7 baseline points gives p = 0.25 exactly, not significant at 75%."""
    result = classify_signal("errorRate", [10.0], [1, 2, 3, 4, 5, 6, 7], INCREASE, 0.75)
    assert result.p_value == 0.25 and result.classification is SignalClass.PASS
    assert classify_signal("errorRate", [10.0], [1, 2, 3, 4, 5, 6, 7], INCREASE, 0.74).classification is SignalClass.HIGH


def test_the_u_distribution_is_shared_read_only_and_refuses_negative_sizes():
    """The cached null distribution of U cannot be written by a caller, and negative sample sizes are refused."""
    from rolloutlab.strategies.judges.mann_whitney import compute_u_distribution

    table = compute_u_distribution(2, 3)
    assert list(table * 10) == [1, 1, 2, 2, 2, 1, 1]
    with pytest.raises(ValueError):
        table[0] = 1.0
    with pytest.raises(ValueError, match="must not be negative"):
        compute_u_distribution(-1, 2)


def test_a_signal_without_ratio_says_so():
    """A signal result without a mean ratio reads "ratio n/a" in the judgement's message."""
    from rolloutlab.strategies.judges.mann_whitney import ShiftEstimate, SignalResult

    result = SignalResult("latency p99", SignalClass.PASS, True, 4, 0.5, None, ShiftEstimate(1.0, 0.0, 2.0, 0.9, "exact"))
    assert "ratio n/a" in result.describe()


@pytest.mark.parametrize("low, high, value, message", [
    (1.0, None, 2.0, "inside thresholdRange [1, +inf]"),
    (None, 5.0, 2.0, "inside thresholdRange [-inf, 5]"),
    (1.0, 5.0, 0.5, "below thresholdRange.min 1"),
    (1.0, 5.0, 5.5, "above thresholdRange.max 5"),
    (1.0, 5.0, 5.0, "inside thresholdRange [1, 5]"),  # the bounds are inside
], ids=["min-only", "max-only", "below", "above", "on-max"])
def test_threshold_range_says_where_the_value_is(low, high, value, message):
    """Flagger's thresholdRange keeps its bounds inside and says which side a value fell out of."""
    from rolloutlab.strategies.judges.threshold import evaluate_range
    from rolloutlab.strategies.spec import ThresholdRange

    inside, why = evaluate_range(value, ThresholdRange(min=low, max=high))
    assert (inside, why) == (message.startswith("inside"), message)


def test_large_samples_use_the_normal_interval():
    """Above 50 points per side the shift interval comes from U's normal approximation, with its exact ranks and coverage."""
    from rolloutlab.strategies.judges.mann_whitney import compute_shift

    canary = [5.0 + i * 1.013 + 0.137 * (i % 7) for i in range(60)]  # no tied differences: each rank shows
    baseline = [i * 0.991 + 0.0711 * (i % 5) for i in range(60)]
    s = compute_shift(canary, baseline, 0.95)
    assert s.method == "normal"
    assert (s.estimate, s.lower, s.upper) == pytest.approx((5.91435, -0.69, 12.506), abs=1e-9)
    assert s.coverage == pytest.approx(0.9500470427264741, abs=1e-12)
    wide = compute_shift([float(i) for i in range(51)], [3.0], 0.95)  # one baseline point: no finite interval
    assert (wide.lower, wide.upper, wide.coverage) == (float("-inf"), float("inf"), 1.0)


def test_a_lower_median_with_a_higher_mean_is_not_high():
    """A significant shift downwards with a higher mean (one outlier) is neither High nor Low: the shift and the ratio must agree."""
    result = classify_signal("errorRate", [0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 10.0],
                             [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8], INCREASE, 0.95)
    assert result.p_value < 0.05 and result.shift.estimate == pytest.approx(-0.355) and result.ratio > 2.8
    assert result.classification is SignalClass.PASS


def test_the_u_distribution_of_an_empty_sample():
    """With an empty sample U is 0 for certain."""
    from rolloutlab.strategies.judges.mann_whitney import compute_u_distribution

    assert list(compute_u_distribution(0, 3)) == [1.0]
    assert list(compute_u_distribution(3, 0)) == [1.0]
    with pytest.raises(ValueError):
        compute_u_distribution(3, -1)


def independent_log_mixture(windows, reference, grid):
    """The mixture statistic written out by hand: log mean over θ of Π_i L_i(θ)/L_i(θ_ref)."""
    import math

    total = 0.0
    for m in grid:
        theta, log_ratio = reference * m, 0.0
        for ec, nc, eb, nb in windows:
            if nc and nb:
                log_ratio += ec * math.log(theta / reference) - (ec + eb) * (
                    math.log(theta * nc + nb) - math.log(reference * nc + nb))
        total += math.exp(log_ratio)
    return math.log(total / len(grid))


@pytest.mark.parametrize("windows", [
    [(30, 1000, 10, 9000)],
    [(30, 1000, 10, 9000), (0, 0, 5, 9000), (12, 2000, 20, 8000)],
    [(1, 1000, 10, 9000), (0, 1000, 12, 9000)],
], ids=["one-window", "with-an-empty-canary-window", "healthy"])
def test_sequential_evidence_is_the_documented_mixture(windows):
    """The two statistics equal the mixtures over the documented grids (θ0·1.25..20 against healthy, θ1·0.8..0.05 against bad)."""
    from rolloutlab.strategies.judges.sequential import SequentialBounds, compute_evidence
    from rolloutlab.strategies.spec import SequentialJudge

    bounds = SequentialBounds.of(SequentialJudge(tolerance=0.2, min_effect=1.0))
    ec, nc, eb, nb = zip(*windows)
    against_healthy, against_bad = compute_evidence(ec, nc, eb, nb, bounds)
    assert against_healthy[-1] == pytest.approx(
        independent_log_mixture(windows, 1.2, (1.25, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0)), rel=1e-12, abs=1e-12)
    assert against_bad[-1] == pytest.approx(
        independent_log_mixture(windows, 2.4, (0.8, 0.6, 0.4, 0.2, 0.05)), rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("healthy, bad, decision, index", [
    ([0.0, 3.0], [0.0, 0.0], 1, 1),  # exactly log(1/alpha) = 3 fails
    ([0.0, 2.99], [0.0, 3.0], -1, 1),  # exactly log(1/beta) passes
    ([3.0], [3.0], 1, 0),  # both at once: failing wins
    ([1.0, 1.0], [1.0, 1.0], 0, 2),
], ids=["fail-on-the-boundary", "pass-on-the-boundary", "tie-fails", "undecided"])
def test_sequential_boundaries_are_inclusive(healthy, bad, decision, index):
    """A statistic exactly on its boundary decides; the first boundary crossed wins and failing wins a tie."""
    import numpy as np

    from rolloutlab.strategies.judges.sequential import SequentialBounds, compute_decisions

    bounds = SequentialBounds(healthy=1.0, bad=2.0, log_fail=3.0, log_pass=3.0)
    d, at = compute_decisions(np.array(healthy), np.array(bad), bounds)
    assert (int(d), int(at)) == (decision, index)


@pytest.mark.parametrize("canary, baseline", [((0, 0), (5, 1000)), ((5, 1000), (0, 0)), ((5, 1000), (0, 1000))],
                         ids=["no-canary-requests", "no-baseline-requests", "no-baseline-errors"])
def test_sequential_ratio_is_undefined_without_data(canary, baseline):
    """The pooled ratio is None (not a division error) when either version served nothing or the baseline never failed."""
    from rolloutlab.strategies.judges.sequential import judge_sequential

    metric = Metric.model_validate({"name": "s", "judge": {"sequential": {}}})
    window = MeasurementWindow(30.0, WindowStats(30.0, canary[1], canary[0]), WindowStats(30.0, baseline[1], baseline[0]))
    assert judge_sequential(metric, [window]).value is None


@pytest.mark.parametrize("signal, value, shown", [
    ("errorRate", 0.0123, "1.23%"),
    ("latency", 251.5, "251.5ms"),
    ("throughput", 12.5, "12.5 rps"),
    ("errorRate", None, "no data"),
    ("latency", None, "no data"),
], ids=["error-rate", "latency", "throughput", "no-error-rate", "no-latency"])
def test_values_read_as_people_read_them(signal, value, shown):
    """Judgement messages show error rates in percent, latencies in ms, throughput in rps, and "no data"."""
    from rolloutlab.strategies.judges.judgement import format_value
    from rolloutlab.strategies.spec import Signal

    assert format_value(Signal(signal), value) == shown


@pytest.mark.parametrize("signal, quantile, name, value", [
    ("latency", None, "latency p99", 248.5),  # every request in (100, 250] ms: p99 = 100 + 0.99 x 150
    ("latency", 0.5, "latency p50", 175.0),
    ("errorRate", None, "errorRate", 0.02),
    ("throughput", None, "throughput", 100 / 60),
], ids=["p99-by-default", "p50", "error-rate", "throughput"])
def test_signal_values_and_names(signal, quantile, name, value):
    """A window's signal value (latency at the metric's quantile, p99 by default) and its short name."""
    from rolloutlab.strategies.judges.judgement import describe_signal, signal_value
    from rolloutlab.strategies.spec import Signal

    stats = WindowStats(60.0, 100, 2, tuple(100 if j == 5 else 0 for j in range(len(LATENCY_BUCKETS_MS))))
    assert describe_signal(Signal(signal), quantile) == name
    assert signal_value(stats, Signal(signal), quantile) == pytest.approx(value)


def test_an_unknown_signal_is_refused():
    """Reading a signal no judge knows raises, naming it."""
    from rolloutlab.strategies.judges.judgement import signal_value

    with pytest.raises(ValueError, match="no judge knows how to read signal"):
        signal_value(WindowStats(60.0, 100, 2), "cpu", None)


def test_sequential_message_names_its_counts_and_window():
    """The sequential judgement says where it decided and on which counts, in that order."""
    from rolloutlab.strategies.judges.sequential import judge_sequential

    metric = Metric.model_validate({"name": "s", "judge": {"sequential": {}}})
    windows = [MeasurementWindow(30.0, WindowStats(30.0, 1000, 500), WindowStats(30.0, 9000, 45))]
    judgement = judge_sequential(metric, windows)
    assert judgement.message.startswith("failed at window 1 of 1: error-rate ratio canary/baseline 100 "
                                        "(canary 500/1000, baseline 45/9000 errors/requests); ")


def test_dynamic_stable_scale_shrinks_the_stable_with_the_weight():
    """With dynamicStableScale the stable is scaled to its new share in the very call that moves the weight."""
    from rolloutlab.strategies.actions import SetCanaryWeight

    world = IdealWorld(routed([{"setWeight": 30}, {"pause": {"duration": 60}}], dynamicStableScale=True))
    world.run(until=3600)
    moved = next(d for d in world.log if SetCanaryWeight(30) in d.actions)
    assert ScaleVersion(Role.STABLE, 7) in moved.actions


def test_promote_while_promoting_is_ignored():
    """promote after every step is done (the canary still scaling to 100%) is ignored: every step is done."""
    from rolloutlab.strategies.observation import Command

    world = IdealWorld(spec_of({"canary": {"steps": [{"setWeight": 50}]}}))
    world.run(until=10)  # setWeight 50 done at 10s: now scaling to 100%
    assert world.status.step_index == 1 and not world.status.completed
    world.command(Command.PROMOTE)
    world.step()
    ignored = [e.message for e in world.log[-1].actions if getattr(e, "reason", None) is EventReason.COMMAND_IGNORED]
    assert ignored == ["promote ignored: every step is done"]


def test_the_deadline_is_a_wake_up_time_even_between_other_calls():
    """Calls in between (measurements every 50s) keep the deadline (120s) as a wake-up time, so it trips on time."""
    spec = StrategySpec.model_validate({
        "name": "d", "replicas": 10, "progressDeadlineSeconds": 120,
        "analysisTemplates": [{"name": "t50", "metrics": [{"name": "m", "interval": 50, "successCondition": "result < 0.02"}]}],
        "strategy": {"canary": {"trafficRouting": "router", "steps": [{"setWeight": 20}],
                                "analysis": {"templates": [{"templateName": "t50"}]}}}})
    world = IdealWorld(spec, start_delay=10**9)
    world.run(until=600)
    assert first_time(world, EventReason.DEADLINE_EXCEEDED) == 120.0


def test_pods_that_finally_come_clear_the_exceeded_deadline():
    """Pods ready after the deadline (without progressDeadlineAbort) clear the Degraded state and the rollout goes on."""
    world = IdealWorld(spec_of({"canary": {"steps": [{"setWeight": 20}, {"pause": {}}]}}, progressDeadlineSeconds=120),
                       start_delay=200)
    world.run(until=150)
    assert world.status.deadline_exceeded and world.status.phase is Phase.DEGRADED
    world.run(until=200)
    assert world.now == 200.0
    assert not world.status.deadline_exceeded and world.status.phase is Phase.PAUSED  # at the gate, no longer degraded


@pytest.mark.parametrize("counts", [(-1, 10, 0, 10), (0, 10, -1, 10), (11, 10, 0, 10), (0, 10, 11, 10)],
                         ids=["negative-canary-errors", "negative-baseline-errors", "canary-errors-above-requests",
                              "baseline-errors-above-requests"])
def test_impossible_counts_are_refused_by_the_sequential_judge(counts):
    """Errors below 0 or above the window's requests are refused."""
    from rolloutlab.strategies.judges.sequential import compute_log_mixture

    with pytest.raises(ValueError, match="impossible counts"):
        compute_log_mixture(*([c] for c in counts), 1.0, (2.0,))


def test_replica_math_edges():
    """No pods give no pods, and a negative available count is refused by the rolling update."""
    from rolloutlab.strategies.replicas import canary_replica_targets

    assert tuple(canary_replica_targets(0, 50, 1)) == (0, 0)
    with pytest.raises(ValueError, match="new_available"):
        rolling_update_step(10, 1, 1, 0, -1, 10, 10)
