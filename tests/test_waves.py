"""The waves supervisor (strategies.waves): table-driven, like Argo's reconcile tests.

Each case gives the waves, what the supervisor remembers, the time and what the regions
report, and the actions and status it must come to."""

from __future__ import annotations

import pytest

from rolloutlab.strategies.actions import Event
from rolloutlab.strategies.spec import StrategySpec
from rolloutlab.strategies.status import AbortCause, RolloutStatus
from rolloutlab.strategies.wave_spec import Waves, WaveStep
from rolloutlab.strategies.waves import (
    AbortRegion,
    RegionObservation,
    RollBackRegion,
    StartRegion,
    WavesStatus,
    reconcile_waves,
)

THREE = Waves(steps=(WaveStep(regions=("a",), bake_time=600), WaveStep(regions=("b", "c"), bake_time=300),
                     WaveStep(regions=("d",))))
KEEP = THREE.model_copy(update={"stop_the_line": False})

RUNNING = RolloutStatus(started_at=0.0)
PROMOTED_AT_100 = RolloutStatus(started_at=0.0, completed=True, completed_at=100.0)
ABORTED = RolloutStatus(started_at=0.0, aborted=True, aborted_at=50.0, abort_reason="analysis failed",
                        abort_cause=AbortCause.ANALYSIS_FAILED)
RESTORED = RolloutStatus(started_at=0.0, aborted=True, aborted_at=50.0, abort_reason="analysis failed",
                         abort_cause=AbortCause.ANALYSIS_FAILED, restored_at=60.0)


def regions(**kw: RegionObservation) -> dict[str, RegionObservation]:
    return kw


def obs(status=None, failed=False, rolled_back=False) -> RegionObservation:
    return RegionObservation(status, failed, rolled_back)


def non_events(actions) -> list:
    return [a for a in actions if not isinstance(a, Event)]


CASES = [
    # name, waves, status, now, regions, expected actions, expected status fields
    ("first call starts the first wave", THREE, WavesStatus(), 0.0, regions(),
     [StartRegion("a")], {"wave": 0, "started": ("a",), "requeue_at": None}),
    ("a wave still rolling out: nothing to do", THREE, WavesStatus(started=("a",), wave_started_at=(0.0,)), 50.0,
     regions(a=obs(RUNNING)), [], {"wave": 0, "stopped": False}),
    ("promoted: bake until promotion + bakeTime", THREE, WavesStatus(started=("a",), wave_started_at=(0.0,)), 120.0,
     regions(a=obs(PROMOTED_AT_100)), [], {"wave": 0, "requeue_at": 700.0}),
    ("baked: the next wave starts, all its regions together", THREE,
     WavesStatus(started=("a",), wave_started_at=(0.0,)), 700.0,
     regions(a=obs(PROMOTED_AT_100)), [StartRegion("b"), StartRegion("c")],
     {"wave": 1, "started": ("a", "b", "c"), "wave_started_at": (0.0, 700.0)}),
    ("a wave waits for every one of its regions", THREE,
     WavesStatus(wave=1, started=("a", "b", "c"), wave_started_at=(0.0, 700.0)), 2000.0,
     regions(a=obs(PROMOTED_AT_100), b=obs(PROMOTED_AT_100), c=obs(RUNNING)), [], {"wave": 1}),
    ("the last wave promoted: complete, no bake after it", THREE,
     WavesStatus(wave=2, started=("a", "b", "c", "d"), wave_started_at=(0.0, 700.0, 1500.0)), 1600.0,
     regions(a=obs(PROMOTED_AT_100), b=obs(PROMOTED_AT_100), c=obs(PROMOTED_AT_100), d=obs(PROMOTED_AT_100)),
     [], {"completed": True, "completed_at": 1600.0, "wave": 3}),
    ("an abort in the first wave stops the line: nothing else starts", THREE,
     WavesStatus(started=("a",), wave_started_at=(0.0,)), 50.0,
     regions(a=obs(ABORTED)), [], {"stopped": True, "failed_region": "a", "aborting": ("a",), "restored_at": None}),
    ("restored once the aborted region has its users back", THREE,
     WavesStatus(started=("a",), wave_started_at=(0.0,), stopped=True, stopped_at=50.0, failed_region="a",
                 aborting=("a",)), 60.0,
     regions(a=obs(RESTORED)), [], {"restored_at": 60.0}),
    ("a failure in wave 1 aborts its other regions and rolls back wave 0 (stop the line)", THREE,
     WavesStatus(wave=1, started=("a", "b", "c"), wave_started_at=(0.0, 700.0)), 800.0,
     regions(a=obs(PROMOTED_AT_100), b=obs(ABORTED), c=obs(RUNNING)),
     [RollBackRegion("a", "stop the line: region b failed (analysis failed)"),
      AbortRegion("c", "stop the line: region b failed (analysis failed)")],
     {"stopped": True, "failed_region": "b", "aborting": ("b", "c"), "rolling_back": ("a",)}),
    ("without stopTheLine earlier waves keep the release; the failing wave still stops", KEEP,
     WavesStatus(wave=1, started=("a", "b", "c"), wave_started_at=(0.0, 700.0)), 800.0,
     regions(a=obs(PROMOTED_AT_100), b=obs(ABORTED), c=obs(RUNNING)),
     [AbortRegion("c", "stop the line: region b failed (analysis failed)")],
     {"stopped": True, "aborting": ("b", "c"), "rolling_back": ()}),
    ("monitoring's page in a baking region stops the line like an abort", THREE,
     WavesStatus(started=("a",), wave_started_at=(0.0,)), 300.0,
     regions(a=obs(PROMOTED_AT_100, failed=True)),
     [RollBackRegion("a", "stop the line: region a failed (monitoring found users hurt)")],
     {"stopped": True, "rolling_back": ("a",)}),
    ("a region told to abort that promoted anyway is rolled back", THREE,
     WavesStatus(wave=1, started=("a", "b", "c"), wave_started_at=(0.0, 700.0), stopped=True, stopped_at=800.0,
                 failed_region="b", stop_reason="region b failed", aborting=("b", "c"), rolling_back=("a",)), 810.0,
     regions(a=obs(PROMOTED_AT_100), b=obs(RESTORED), c=obs(PROMOTED_AT_100)),
     [RollBackRegion("c", "stop the line: region b failed")],
     {"aborting": ("b",), "rolling_back": ("a", "c"), "restored_at": None}),
    ("restored once every region told to go back is back", THREE,
     WavesStatus(wave=1, started=("a", "b", "c"), wave_started_at=(0.0, 700.0), stopped=True, stopped_at=800.0,
                 failed_region="b", aborting=("b",), rolling_back=("a", "c")), 900.0,
     regions(a=obs(PROMOTED_AT_100, rolled_back=True), b=obs(RESTORED), c=obs(PROMOTED_AT_100, rolled_back=True)),
     [], {"restored_at": 900.0}),
    ("a region not started yet cannot fail the line", THREE,
     WavesStatus(started=("a",), wave_started_at=(0.0,)), 50.0,
     regions(a=obs(RUNNING), d=obs(failed=True)), [], {"stopped": False}),
]


@pytest.mark.parametrize(("name", "waves", "status", "now", "seen", "actions", "expected"), CASES,
                         ids=[c[0] for c in CASES])
def test_reconcile_waves(name, waves, status, now, seen, actions, expected) -> None:
    new, out = reconcile_waves(waves, status, now, seen)
    assert non_events(out) == actions
    for field, value in expected.items():
        assert getattr(new, field) == value, field


def test_reconcile_waves_is_pure_and_repeatable() -> None:
    """Same inputs, same outputs; calling again with its own result asks for nothing twice
    (level-triggered: an abort or rollback already ordered is not ordered again)."""
    status = WavesStatus(wave=1, started=("a", "b", "c"), wave_started_at=(0.0, 700.0))
    seen = regions(a=obs(PROMOTED_AT_100), b=obs(ABORTED), c=obs(RUNNING))
    first = reconcile_waves(THREE, status, 800.0, seen)
    assert reconcile_waves(THREE, status, 800.0, seen) == first
    again = reconcile_waves(THREE, first.status, 805.0, seen)
    assert non_events(again.actions) == []


def test_a_whole_good_rollout_goes_out_wave_by_wave() -> None:
    """Driving the supervisor with regions that promote 100 s after they start: waves start
    in order, each after the previous one's bake, and the rollout completes."""
    status, now, started_at = WavesStatus(), 0.0, {}
    for _ in range(50):
        seen = {r: obs(RolloutStatus(started_at=t, completed=now >= t + 100, completed_at=t + 100 if now >= t + 100 else None))
                for r, t in started_at.items()}
        status, actions = reconcile_waves(THREE, status, now, seen)
        for a in actions:
            if isinstance(a, StartRegion):
                started_at[a.region] = now
        if status.completed:
            break
        now = status.requeue_at if status.requeue_at is not None else now + 50.0
    assert status.completed
    assert started_at == {"a": 0.0, "b": 700.0, "c": 700.0, "d": 1100.0}


@pytest.mark.parametrize(("waves", "message"), [
    ({"steps": [{"regions": ["a"]}, {"regions": ["a"]}]}, "already in wave 0"),
    ({"steps": [{"regions": ["a", "a"]}]}, "listed twice"),
    ({"steps": []}, "at least 1"),
])
def test_bad_waves_are_refused(waves, message) -> None:
    with pytest.raises(Exception) as caught:
        StrategySpec.model_validate({"name": "x", "strategy": {"rolling": {}}, "waves": waves})
    assert message in str(caught.value)


def test_plan_waves_prints_the_supervisors_schedule() -> None:
    from rolloutlab.strategies.dry_run import plan_waves

    plans = plan_waves(THREE, 100.0)
    assert [(p.regions, p.starts_at, p.promoted_at, p.next_wave_at) for p in plans] == [
        (("a",), 0.0, 100.0, 700.0), (("b", "c"), 700.0, 800.0, 1100.0), (("d",), 1100.0, 1200.0, None)]
