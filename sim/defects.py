"""What a bad release does to the new version, as the world asks while it runs.

The release drawn for a run (``scenarios.release``) carries at most one defect, and the
defect acts on the new version (the canary role) until a roll-forward repair:

- ``error_rate``: an extra share of its requests fails, from its first request on;
- ``latency``: its answers are slower (a multiplier on the body, an added delay); none
  fails, but users are harmed all the same;
- ``leak``: from ``after`` seconds past its first pod's start, failures and slowness
  grow by the minute (up to ``max_error_rate``); the world re-evaluates it every
  ``LEAK_TICK`` seconds;
- ``full_load_only``: it fails only while it carries at least ``traffic_share_threshold``
  of the users (or more than ``per_pod_rps_threshold`` per pod), so partial canary steps
  look healthy;
- ``crash_on_start`` acts on pods (``sim.pods``: a crash-looping pod is never Ready) and
  ``incompatible_migration`` on the schema (``sim.migrations``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from rolloutlab.scenarios.schema import (
    CrashOnStartDefect,
    ErrorRateDefect,
    FullLoadOnlyDefect,
    LatencyDefect,
    LeakDefect,
)
from rolloutlab.strategies import Role

if TYPE_CHECKING:
    from rolloutlab.sim.world import World

LEAK_TICK = 30.0  # seconds between re-evaluations of a leak's growing error rate


def defect_failure(world: World, arrival_rps: float, now: float, schedule: bool) -> tuple[float, bool]:
    """The defect's extra failure probability for the new version's requests now, and
    whether users of it are harmed. ``schedule``: a leak may set its re-evaluations going
    (the first to ask when the leak starts; observers pass False)."""
    d = world.release.defect
    if isinstance(d, ErrorRateDefect):
        return d.error_rate, d.error_rate > 0
    if isinstance(d, LatencyDefect):
        return 0.0, True  # slower answers hurt users even when none fail
    if isinstance(d, LeakDefect):
        onset = canary_since(world) + d.after
        if now < onset:
            if schedule:
                world.start_leak_ticks(onset)
            return 0.0, False
        if schedule:
            world.start_leak_ticks(now)
        rate = min(d.max_error_rate, d.error_rate_per_minute * (now - onset) / 60.0)
        return rate, rate > 0 or d.latency_growth_per_minute > 0
    if isinstance(d, FullLoadOnlyDefect):
        share = world.shares(now)[Role.CANARY]
        ready = max(1, world.cluster.ready_count(Role.CANARY, now))
        hot = share >= d.traffic_share_threshold - 1e-9 or (
            d.per_pod_rps_threshold is not None and arrival_rps / ready >= d.per_pod_rps_threshold)
        return (d.error_rate, True) if hot else (0.0, False)
    return 0.0, False  # crash_on_start acts on pods; incompatible_migration on the schema


def defect_slowdown(world: World, now: float) -> tuple[float, float]:
    """(multiplier on the latency body, added ms) the defect gives the new version now."""
    d = world.release.defect
    if isinstance(d, LatencyDefect):
        return d.multiplier, d.added_ms
    if isinstance(d, LeakDefect):
        onset = canary_since(world) + d.after
        if now >= onset:
            return 1.0 + d.latency_growth_per_minute * (now - onset) / 60.0, 0.0
    return 1.0, 0.0


def canary_since(world: World) -> float:
    """When the new version's first app came up (inf: not yet)."""
    pods = world.cluster.pods[Role.CANARY]
    return min((p.app_up_at for p in pods), default=math.inf)


def crash_probability(world: World) -> float:
    """Chance that a new-version pod crash-loops (the crash_on_start defect)."""
    d = world.release.defect
    return d.crash_probability if isinstance(d, CrashOnStartDefect) else 0.0
