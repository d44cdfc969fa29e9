"""Imported Flagger Canaries behave tick by tick as Flagger's scheduler does.

Flagger's loop (``advanceCanary``, pkg/controller/scheduler.go) runs every
``analysis.interval``: it waits for the canary to be ready, tests the failed-checks
threshold at the start of a loop before running new checks, holds the weight on a failed
or empty check (pkg/controller/scheduler_metrics.go: "Halt advancement"), and advances one
weight per passing check. Each case drives the imported strategy through the ideal world
and pins the time of every weight change and of the rollback or promotion.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from rolloutlab.strategies.actions import EventReason, SetCanaryWeight
from rolloutlab.strategies.dry_run import IdealWorld
from rolloutlab.strategies.importers import import_text
from rolloutlab.strategies.observation import Role


def canary_manifest(threshold: int = 3, interval: str = "1m", mode: str = "stepWeight: 10; maxWeight: 30",
                    provider: str = "istio") -> str:
    """A Canary with one success-rate check; ``mode`` is the analysis' traffic fields, separated by "; "."""
    fields = "".join(f"    {f.strip()}\n" for f in mode.split("; "))
    return (
        "apiVersion: flagger.app/v1beta1\nkind: Canary\nmetadata:\n  name: app\nspec:\n"
        f"  provider: {provider}\n"
        "  targetRef: {apiVersion: apps/v1, kind: Deployment, name: app}\n  service: {port: 80}\n"
        f"  analysis:\n    interval: {interval}\n    threshold: {threshold}\n{fields}"
        "    metrics:\n    - name: request-success-rate\n      thresholdRange: {min: 99}\n"
    )


@dataclass(frozen=True)
class Tick:
    """One imported Canary in one ideal world, and what must happen when."""

    id: str
    manifest: str
    weights: list[tuple[float, int]]  # (time, weight) of every SetCanaryWeight
    aborted_at: float | None = None
    completed_at: float | None = None
    start_delay: float = 10.0
    rps: float = 100.0
    canary_errors: list[tuple[float, float]] = field(default_factory=list)  # (from time, canary error rate)


TICKS = [
    Tick("healthy: the analysis starts with the first weight once the canary is ready, one weight per check",
         canary_manifest(), weights=[(10.0, 10), (70.0, 20), (130.0, 30), (190.0, 100)], completed_at=190.0),
    Tick("a slow canary: nothing moves before it is ready, and the first check is one interval after that",
         canary_manifest(), start_delay=45.0, weights=[(45.0, 10), (105.0, 20), (165.0, 30), (225.0, 100)],
         completed_at=225.0),
    Tick("failing: the weight holds, the 3rd failed check reaches the threshold, the next check rolls back",
         canary_manifest(threshold=3), canary_errors=[(0.0, 0.3)],
         weights=[(10.0, 10), (250.0, 0)], aborted_at=250.0),
    Tick("threshold 1: the rollback comes one interval after the first failed check, not at it",
         canary_manifest(threshold=1), canary_errors=[(0.0, 0.3)],
         weights=[(10.0, 10), (130.0, 0)], aborted_at=130.0),
    Tick("a failed check holds the weight, the next passing check advances it",
         canary_manifest(threshold=3), canary_errors=[(0.0, 0.3), (70.0, 0.0)],
         weights=[(10.0, 10), (130.0, 20), (190.0, 30), (250.0, 100)], completed_at=250.0),
    Tick("recovering after the threshold was reached does not save it: the threshold is tested first",
         canary_manifest(threshold=2), canary_errors=[(0.0, 0.3), (130.0, 0.0)],
         weights=[(10.0, 10), (190.0, 0)], aborted_at=190.0),
    Tick("an empty check (no traffic) holds the weight like a failed one and counts toward the threshold",
         canary_manifest(threshold=2), rps=0.0, weights=[(10.0, 10), (190.0, 0)], aborted_at=190.0),
    Tick("stepWeights: one listed weight per passing check",
         canary_manifest(interval="30s", mode="stepWeights: [5, 50]"),
         weights=[(10.0, 5), (40.0, 50), (70.0, 100)], completed_at=70.0),
]


def drive(tick: Tick) -> IdealWorld:
    world = IdealWorld(import_text(tick.manifest, "canary.yaml").spec.with_replicas(4),
                       start_delay=tick.start_delay, rps=tick.rps)
    changes = sorted(tick.canary_errors)
    while True:
        if changes and changes[0][0] <= world.now:
            world.error_rate[Role.CANARY] = changes.pop(0)[1]
        world.run(until=changes[0][0] if changes else 3600.0)
        if not changes or world.finished():
            return world
        world.advance(changes[0][0] - world.now)


@pytest.mark.parametrize("tick", TICKS, ids=[t.id for t in TICKS])
def test_imported_canary_follows_flaggers_schedule(tick):
    """The imported Canary sets each weight, rolls back or promotes at the second Flagger's scheduler would (shifted to when the canary is ready)."""
    world = drive(tick)
    weights = [(d.at, a.weight) for d in world.log for a in d.actions if isinstance(a, SetCanaryWeight)]
    assert weights == tick.weights
    assert world.status.aborted_at == tick.aborted_at
    assert world.status.completed_at == tick.completed_at


def test_background_analysis_starts_when_the_first_weight_is_set():
    """The imported analysis starts when the canary is ready and carries the first weight, not when the rollout starts."""
    world = drive(Tick("", canary_manifest(), weights=[], start_delay=45.0))
    started = [e.at for e in world.events() if e.reason is EventReason.ANALYSIS_STARTED]
    measured = [e.at for e in world.events() if e.reason is EventReason.MEASUREMENT]
    assert started == [45.0]
    assert measured[:3] == [105.0, 165.0, 225.0]


def test_the_canary_runs_at_full_size_before_traffic_moves():
    """As Flagger scales the canary Deployment up to full size first, no weight is set before every canary pod is ready."""
    world = drive(Tick("", canary_manifest(), weights=[], start_delay=30.0))
    first = next(d for d in world.log for a in d.actions if isinstance(a, SetCanaryWeight))
    assert (first.at, first.canary_ready) == (30.0, 4)


@pytest.mark.parametrize("manifest, says", [
    (canary_manifest(), ("a failed or empty check holds the weight", "the rollback comes at the next check after the "
                         "threshold was reached")),
    (canary_manifest(mode="iterations: 5", provider="kubernetes"),
     ("Flagger rolls back at the next check after the threshold was reached, here the preview is dropped at once",)),
], ids=["canary-holds", "blue-green-drops-preview"])
def test_threshold_warning_says_what_the_imported_strategy_does(manifest, says):
    """The warning on `threshold` says what the imported strategy does on a failed check, not only what Flagger does."""
    warning = next(w for w in import_text(manifest, "canary.yaml").warnings if "spec.analysis.threshold" in w)
    for phrase in says:
        assert phrase in warning
    assert "keep their pace" not in warning
