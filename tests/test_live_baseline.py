"""A canary's baseline deployment live on the local backend (``canary.baseline``, Kayenta's
comparison): fresh pods of the old version, as many as the canary's, taking as much
traffic, started with it and gone when the rollout ends; the analysis judges the canary
against those pods' own counters. Real demo-service processes behind HAProxy, real
traffic (at most 40 requests per wall second), time compressed 20 times, every wait bounded.
"""

from __future__ import annotations

import os

import pytest

from rolloutlab.errors import LiveUnsupported
from rolloutlab.live.baseline import BASELINE, compute_baseline_replicas, compute_baseline_weight
from rolloutlab.live.local import LocalBackend, PodPhase
from rolloutlab.live.memory import MemoryBackend
from rolloutlab.live.session import make_plan, run_live
from rolloutlab.scenarios.schema import Scenario
from rolloutlab.strategies import RolloutStatus
from rolloutlab.strategies.spec import StrategySpec
from tests.outside_systems import needs_haproxy
from tests.test_local_backend import descendants, until

SCALE = 20.0
RPS = 40.0
REPLICAS = 5


def scenario() -> Scenario:
    return Scenario.model_validate({
        "name": "baseline", "duration": "6m",
        "services": [{"name": "web", "replicas": REPLICAS, "capacity_rps": 200, "baseline_error_rate": 0.0,
                      "latency": {"median_ms": 5, "p99_ms": 50},
                      "pod_timing": {"schedule_delay": 0, "start_delay": 5, "readiness": {"period": 5}}}],
        "traffic": {"rps": 1000, "users": 300},
        "release": {"defect_probability": 1.0, "defects": [{"kind": "error_rate", "error_rate": 0.5}]},
        "monitoring": {"alerts": []},
    })


def spec(routing: str) -> StrategySpec:
    """20% to the canary (one pod of five), three one-minute error-rate windows, then promotion."""
    return StrategySpec.model_validate({
        "name": f"kayenta-{routing}", "replicas": REPLICAS,
        "analysisTemplates": [{"name": "errors", "metrics": [{
            "name": "errors", "signal": "errorRate", "interval": "1m", "count": 3,
            "successCondition": "result < 0.1", "failureLimit": 0}]}],
        "strategy": {"canary": {
            "baseline": True, "trafficRouting": routing, "maxSurge": "25%", "maxUnavailable": 0,
            "scaleDownDelaySeconds": 10, "abortScaleDownDelaySeconds": 10,
            "steps": [{"setWeight": 20}, {"analysis": {"templates": [{"templateName": "errors"}]}}]}},
    })


def live(routing: str, release: str, tmp_path):
    """One run; on every runner cycle, the baseline's pods (not terminating), the canary's
    wanted pods and whether it was promoted; whether the baseline's pods were gone after the run."""
    sc, sp = scenario(), spec(routing)
    plan = make_plan(sc, sp, release=release, time_scale=SCALE)
    seen: list[tuple[list, int, bool]] = []
    with LocalBackend(tmp_path / "state", seed=5) as backend:
        def watch(runner) -> None:
            runner.on_cycle = lambda _: seen.append((
                [p for p in backend.pods() if p.baseline and p.phase is not PodPhase.TERMINATING],
                backend.observe()[1].replicas, backend.stable_version() == plan.canary.name))
        run = run_live(sc, sp, backend, plan, time_scale=SCALE, seed=2, max_rps=RPS, max_wall_s=90, before_run=watch)
        gone = backend.wait_until(lambda: not [p for p in backend.pods() if p.baseline], 10.0)
        stats = backend.router_stats() if routing == "router" else None
    return run, plan, seen, gone, stats


@pytest.fixture
def no_leftovers():
    """Nothing the test started (pods, baseline pods, HAProxy) outlives it."""
    before = descendants(os.getpid())
    yield
    assert until(lambda: not (descendants(os.getpid()) - before), 5.0), \
        f"processes left running: {descendants(os.getpid()) - before}"


def windows(run):
    (metric,) = [m for a in run.summary.status.analyses for m in a.metrics]
    return metric.windows


@needs_haproxy
def test_baseline_pods_run_the_old_version_beside_the_canary_and_go_with_the_promotion(tmp_path, no_leftovers):
    """With a router: one baseline pod of the old version beside the one canary pod, as
    much traffic as the canary (HAProxy's be_baseline), its own counters judged against the
    canary's; after the promotion no baseline pod is left."""
    run, plan, seen, gone, stats = live("router", "good", tmp_path)
    assert run.row["outcome"] == "promoted", run.summary.status.message
    during = [pods for pods, _, _ in seen if pods]
    assert during, "no baseline pod ever ran"
    assert all(p.version == plan.stable.name and f"-{BASELINE}-" in p.name and (p.slot or BASELINE).startswith(BASELINE)
               for pods in during for p in pods)  # the old version, told apart by name and router slot
    # as many as the canary's wanted pods while the rollout runs (one at 20% of five), none after
    assert [len(pods) for pods, _, _ in seen] == [0 if promoted else canary for _, canary, promoted in seen]
    assert seen[-1][2] and gone
    # the timeline: the baseline ran while the canary did and reported counters to the controller
    at_20 = [e for e in run.summary.timeline if e.canary_replicas == 1]
    assert at_20 and all(e.baseline_replicas == 1 for e in at_20)
    assert sum(e.baseline_ready == 1 and e.baseline_requests for e in at_20) > 5
    assert run.summary.timeline[-1].baseline_replicas == 0
    # the analysis compared the canary with the baseline: requests of the canary's order
    ws = windows(run)
    assert len(ws) == 3
    canary, baseline = sum(w.canary.requests for w in ws), sum(w.baseline.requests for w in ws)
    assert canary > 50 and 0.5 < baseline / canary < 2, (canary, baseline)  # the stable took 3x the canary
    # ... and not the stable's: the scrape matches HAProxy's count for be_baseline, far below what the
    # stable's backend and the old version (stable and baseline together) answered
    served = stats.backend(f"be_{BASELINE}").requests
    assert abs(served - max(e.baseline_requests or 0 for e in run.summary.timeline)) <= 0.1 * served + 5
    assert stats.backend("be_stable").requests > 2 * served
    answered_old = (run.records["version"] == plan.stable.name).sum()
    assert baseline < 0.5 * answered_old
    print(f"baseline: canary {canary} / baseline {baseline} requests in the analysis; HAProxy be_baseline {served}, "
          f"be_stable {stats.backend('be_stable').requests}")


@needs_haproxy
def test_a_bad_release_is_still_rolled_back_against_its_baseline(tmp_path, no_leftovers):
    """Without a router the baseline pod joins the Service's endpoints like a stable pod;
    the canary fails at 50% errors against the baseline's healthy counters, the rollout is
    rolled back and the baseline goes with the abort."""
    run, plan, seen, gone, _ = live("none", "bad", tmp_path)
    assert run.row["outcome"] == "rolled_back" and run.row["detected_by"] == "analysis", run.summary.status.message
    assert any(pods for pods, _, _ in seen) and gone
    ws = windows(run)
    failed = [w for w in ws if w.canary.requests and w.canary.errors / w.canary.requests > 0.2]
    assert failed and all(w.baseline.requests > 10 and w.baseline.errors == 0 for w in failed)
    assert all(0.4 < w.baseline.requests / w.canary.requests < 2.5 for w in failed)
    print("baseline, bad release: (canary errors/requests, baseline errors/requests) per window:",
          [(f"{w.canary.errors}/{w.canary.requests}", f"{w.baseline.errors}/{w.baseline.requests}") for w in ws])


@pytest.mark.parametrize(("status", "canary_pods", "canary_weight", "pods", "weight"), [
    (RolloutStatus(), 0, 0, 0, 0),
    (RolloutStatus(started_at=0.0), 1, 20, 1, 20),
    (RolloutStatus(started_at=0.0), 3, 60, 3, 40),  # as much as the stable has left to give
    (RolloutStatus(started_at=0.0), 5, 100, 5, 0),  # the canary's full scale before completion
    (RolloutStatus(started_at=0.0, completed=True), 5, 100, 0, 0),
    (RolloutStatus(started_at=0.0, aborted=True), 1, 0, 0, 0),
], ids=["before-the-canary", "20%", "60%", "full-scale", "promoted", "aborted"])
def test_the_baseline_follows_the_canary_while_the_rollout_runs(status, canary_pods, canary_weight, pods, weight):
    """The one rule the local backend keeps (the simulator's too): the canary's pods and
    weight, the weight taken from the stable, nothing once the rollout ended."""
    assert compute_baseline_replicas(status, canary_pods) == pods
    assert compute_baseline_weight(canary_weight, pods) == weight


def test_a_backend_without_baseline_pods_refuses_the_run() -> None:
    """A backend that cannot start baseline pods (the kube backend today) refuses the run
    before anything starts, rather than judging the canary against no data."""
    sc, sp = scenario(), spec("router")
    with pytest.raises(LiveUnsupported, match="local backend"):
        run_live(sc, sp, MemoryBackend(), make_plan(sc, sp, release="good"), time_scale=SCALE, seed=0)
