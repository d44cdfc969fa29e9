"""``reconcile_waves``: the supervisor of a rollout that goes out region by region.

Each region runs the strategy's own rollout with the one ``reconcile`` (its runner calls
it there, as for a single place); this controller only decides *which* regions roll out
and when, the way a release pipeline's stage graph does (Spinnaker's parallel regional
deploy stages, a wave plan in Google's or AWS's release tooling), and what a failure
does. Deciding is separated from doing (kopf): it returns plain actions --
``StartRegion``, ``AbortRegion``, ``RollBackRegion`` -- that each runner applies through
its own adapter, and keeps everything it must remember in a ``WavesStatus``.

Every call runs the same checklist:

    start     first call: the first wave's regions start
    failure   a region whose rollout aborted, or where monitoring found harm the runner
              reports (``RegionObservation.failed``), stops the line (once)
    stop      the stopped wave's regions still rolling out abort; with ``stopTheLine``
              every promoted region rolls back too; restored once all of them are back
    advance   a wave whose regions are all promoted bakes ``bakeTime``, then the next
              wave starts; after the last one the rollout is complete
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

from rolloutlab.strategies.actions import Event, EventReason
from rolloutlab.strategies.status import RolloutStatus, evolve
from rolloutlab.strategies.wave_spec import Waves


@dataclass(frozen=True, slots=True)
class StartRegion:
    """Start the strategy's rollout in ``region`` (its runner begins calling ``reconcile`` there)."""

    region: str


@dataclass(frozen=True, slots=True)
class AbortRegion:
    """Abort the rollout still running in ``region``, as ``kubectl argo rollouts abort`` would."""

    region: str
    reason: str


@dataclass(frozen=True, slots=True)
class RollBackRegion:
    """Put the old version back in ``region``, whose rollout was already promoted: a new
    deployment of the old version the region's controller has no say in."""

    region: str
    reason: str


WaveAction = StartRegion | AbortRegion | RollBackRegion | Event


@dataclass(frozen=True, slots=True)
class RegionObservation:
    """What a runner knows about one region now.

    ``status`` is the region's rollout status (None until it started); ``failed`` says
    monitoring there found the release hurting users (a page, a person's rollback) even
    if the rollout itself did not abort; ``rolled_back`` that a ``RollBackRegion`` is done
    (the old version serves every request there again)."""

    status: RolloutStatus | None = None
    failed: bool = False
    rolled_back: bool = False


@dataclass(frozen=True, slots=True)
class WavesStatus:
    """The supervisor's memory: which wave is out, and what a failure set in motion."""

    wave: int = 0  # the wave rolling out or baking; len(steps) once every wave is done
    started: tuple[str, ...] = ()  # regions started, in order
    wave_started_at: tuple[float, ...] = ()  # per wave started: when
    stopped: bool = False
    stopped_at: float | None = None
    failed_region: str = ""
    stop_reason: str = ""
    aborting: tuple[str, ...] = ()  # regions told to abort
    rolling_back: tuple[str, ...] = ()  # promoted regions told to roll back
    restored_at: float | None = None  # every region told to abort or roll back is back on the old version
    completed: bool = False
    completed_at: float | None = None
    requeue_at: float | None = None

    @property
    def outcome(self) -> str:
        if self.completed:
            return "promoted"
        return "aborted" if self.stopped else "in_progress"


class ReconciledWaves(NamedTuple):
    status: WavesStatus
    actions: tuple[WaveAction, ...]


def reconcile_waves(waves: Waves, status: WavesStatus, now: float,
                    regions: Mapping[str, RegionObservation]) -> ReconciledWaves:
    """Decide which regions start, abort or roll back now. Pure: same inputs, same result."""
    actions: list[WaveAction] = []
    s = status
    seen = {r: regions.get(r, RegionObservation()) for r in waves.regions}

    if not s.started and not s.stopped:
        s = _start_wave(waves, s, 0, now, actions)

    if not s.stopped and not s.completed:
        failed = [r for r in s.started if _failed(seen[r])]
        if failed:
            region = failed[0]
            why = _why(seen[region])
            s = evolve(s, stopped=True, stopped_at=now, failed_region=region,
                       stop_reason=f"region {region} failed ({why})")
            line = "every region out so far rolls back" if waves.stop_the_line else "earlier waves keep the release"
            actions.append(Event(now, EventReason.ABORTED, f"stopped the line at wave {s.wave}: {s.stop_reason}; {line}"))

    if s.stopped:
        s = _stop(waves, s, now, seen, actions)
    elif not s.completed:
        s = _advance(waves, s, now, seen, actions)
    return ReconciledWaves(s, tuple(actions))


def _failed(obs: RegionObservation) -> bool:
    return obs.failed or (obs.status is not None and obs.status.aborted)


def _why(obs: RegionObservation) -> str:
    if obs.status is not None and obs.status.aborted:
        return obs.status.abort_reason or "its rollout aborted"
    return "monitoring found users hurt"


def _start_wave(waves: Waves, s: WavesStatus, wave: int, now: float, actions: list[WaveAction]) -> WavesStatus:
    regions = waves.steps[wave].regions
    actions.extend(StartRegion(r) for r in regions)
    actions.append(Event(now, EventReason.STEP_COMPLETED if wave else EventReason.ROLLOUT_STARTED,
                         f"wave {wave} started: {', '.join(regions)}"))
    return evolve(s, wave=wave, started=s.started + regions, wave_started_at=s.wave_started_at + (now,),
                  requeue_at=None)


def _advance(waves: Waves, s: WavesStatus, now: float, seen: Mapping[str, RegionObservation],
             actions: list[WaveAction]) -> WavesStatus:
    step = waves.steps[s.wave]
    statuses = [seen[r].status for r in step.regions]
    if not all(st is not None and st.completed for st in statuses):
        return evolve(s, requeue_at=None)  # the regions' own controllers are at work
    promoted_at = max(st.completed_at if st.completed_at is not None else now for st in statuses)
    if s.wave == len(waves.steps) - 1:
        actions.append(Event(now, EventReason.PROMOTED, f"every wave is out ({len(waves.regions)} regions)"))
        return evolve(s, wave=len(waves.steps), completed=True, completed_at=now, requeue_at=None)
    bake_until = promoted_at + step.bake_time
    if now < bake_until:
        return evolve(s, requeue_at=bake_until)
    return _start_wave(waves, s, s.wave + 1, now, actions)


def _stop(waves: Waves, s: WavesStatus, now: float, seen: Mapping[str, RegionObservation],
          actions: list[WaveAction]) -> WavesStatus:
    this_wave = set(waves.steps[min(s.wave, len(waves.steps) - 1)].regions)
    aborting, rolling_back = list(s.aborting), list(s.rolling_back)
    for region in s.started:
        st = seen[region].status
        if st is None or region in rolling_back:
            continue
        if region in aborting:
            if st.completed:  # promoted before the abort reached it: it must come back all the same
                aborting.remove(region)
                rolling_back.append(region)
                actions.append(RollBackRegion(region, f"stop the line: {s.stop_reason}"))
            continue
        if st.completed:
            if waves.stop_the_line and not seen[region].rolled_back:
                rolling_back.append(region)
                actions.append(RollBackRegion(region, f"stop the line: {s.stop_reason}"))
        elif region in this_wave or waves.stop_the_line:
            aborting.append(region)
            if not st.aborted:
                actions.append(AbortRegion(region, f"stop the line: {s.stop_reason}"))
    s = evolve(s, aborting=tuple(aborting), rolling_back=tuple(rolling_back), requeue_at=None)
    back = all(_back(seen[r], rolled_back=r in rolling_back) for r in aborting + rolling_back)
    if s.restored_at is None and back:
        s = evolve(s, restored_at=now)
        actions.append(Event(now, EventReason.ROLLED_BACK, "every region told to go back runs the old version"))
    return s


def _back(obs: RegionObservation, *, rolled_back: bool) -> bool:
    if rolled_back:
        return obs.rolled_back
    return obs.status is not None and obs.status.restored_at is not None


__all__ = [
    "AbortRegion", "RegionObservation", "ReconciledWaves", "RollBackRegion", "StartRegion", "WaveAction",
    "WavesStatus", "reconcile_waves",
]
