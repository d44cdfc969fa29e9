"""Traffic accounting between two events of the world: who sent what, who got a bad answer.

Between two state changes nothing moves, so each interval is accounted in closed form
(``sim.traffic``): per version, its users' requests (split by the flag's answer for a
feature-flag release), its preview traffic and the copies a mirror sends it; failed
requests; the release's harm per user group and flag bucket (``sim.segments.UserHarm``);
writes a mirror duplicated; and whether users were harmed at all (impact).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from rolloutlab.scenarios.schema import SideEffectsDefect
from rolloutlab.sim import routing as split
from rolloutlab.sim.traffic import combine_failure, draw_window, expected_arrivals
from rolloutlab.strategies import Role

if TYPE_CHECKING:
    from rolloutlab.sim.world import World

ROLES = (Role.STABLE, Role.CANARY)


def advance_traffic(world: World, t0: float, t1: float) -> None:
    """Account [t0, t1], an interval in which nothing changed: cost, traffic, impact."""
    dt = t1 - t0
    world.cluster.account_cost(t1)
    if world.baseline is not None and not (world.status.completed or world.status.aborted):
        # the baseline's pods, while the rollout runs: as many as the canary's ready ones
        world.baseline_pod_seconds += world.cluster.ready_count(Role.CANARY, t0) * dt
    req0, err0 = world.total_requests, world.total_errors
    scenario = world.scenario
    sut_expected = expected_arrivals(scenario.traffic.profile, scenario.traffic.rps, t0, t1) * world.arrival_factor
    weights = split.weights(world, t0)
    classes = split.routing(world, t0, weights)
    shares = split.shares(world, t0) if classes is not None else weights
    mirror = split.mirror_share(world, t0, classes) if classes is not None else 0.0
    mean_rate = sut_expected / dt
    p_user = 0.0
    impact = False
    base = baseline_failure(world)
    bad: dict[Role, tuple[float, float]] = {}  # release-made failure chance: (flag on, flag off)
    for role in ROLES:
        share = shares[role]
        preview = scenario.traffic.preview_rps if role is world.preview and share == 0 else 0.0
        copies = mirror if role is Role.CANARY else 0.0
        if share == 0 and preview == 0 and copies == 0:
            continue
        arrival = mean_rate * (share + copies) + preview
        if world.flagged and role is Role.CANARY:
            on = split.flag_on_share(world)
            p_on, harmed_on = world.failure_probability(role, arrival, t0, flag_on=True)
            p_off, harmed_off = world.failure_probability(role, arrival, t0, flag_on=False)
            for flag, part, p, harmed in ((True, on, p_on, harmed_on), (False, 1.0 - on, p_off, harmed_off)):
                if part > 0:
                    before = world.user_requests
                    world._draw_traffic(role, t0, sut_expected * share * part, 0.0, p, flag=flag)
                    if harmed:
                        world.exposed_requests += world.user_requests - before
                    impact = impact or (harmed and share > 0)
            p_user += share * (on * p_on + (1.0 - on) * p_off)
            bad[role] = (max(0.0, p_on - base), max(0.0, p_off - base))
            continue
        p, harmed = world.failure_probability(role, arrival, t0)
        p_user += share * p
        impact = impact or (harmed and share > 0)
        before = world.user_requests
        # a canary's baseline deployment: old-version pods as many as the canary's, as much traffic (Kayenta)
        baseline = min(shares[Role.CANARY], share) if role is Role.STABLE and world.baseline is not None else 0.0
        world._draw_traffic(role, t0, sut_expected * (share - baseline), preview * dt, p,
                            flag=False if world.flagged else None)
        if baseline > 0:
            world._draw_traffic(role, t0, sut_expected * baseline, 0.0, p, baseline=True)
        if harmed:
            world.exposed_requests += world.user_requests - before
        if copies > 0:
            draw_mirror(world, t0, sut_expected * copies, p)
        bad[role] = (max(0.0, p - base),) * 2
    impact = duplicate_writes(world, t0, sut_expected, classes) or impact
    account_users(world, sut_expected, shares, classes, bad)
    if scenario.monitoring.alerts:
        world.monitor.log_traffic(t0, t1, req0, err0)
    p_user = world._through_callers(p_user)
    world.peak_error_rate = max(world.peak_error_rate, p_user)
    world._track_impact(impact, t0, t1)


def draw_mirror(world: World, t0: float, copies: float, p: float) -> None:
    """Mirrored copies: served by the new version and counted on it (its analysis sees
    them), answered to nobody (neither users' counts nor the alert rules see them)."""
    latency = world.latency_model(Role.CANARY, t0) if world.want_latency else None
    draw = draw_window(world.streams["traffic"], copies, p, latency)
    counters = world.traffic[Role.CANARY]
    counters.requests += draw.requests
    counters.errors += draw.errors
    if counters.buckets is not None and draw.latency_buckets:
        counters.buckets += np.asarray(draw.latency_buckets, dtype=np.int64)
    world.mirrored_requests += draw.requests


def duplicates_writes(world: World, now: float) -> bool:
    """Whether mirrored writes reaching the new version now are performed twice."""
    return (isinstance(world.release.defect, SideEffectsDefect) and not world.repaired
            and world.cluster.ready_count(Role.CANARY, now) > 0)


def duplicate_writes(world: World, t0: float, sut_expected: float, classes) -> bool:
    """Count the mirrored writes a new version with side effects performs again; True
    when any are expected (users are harmed while it lasts)."""
    if classes is None or not duplicates_writes(world, t0):
        return False
    expected = sut_expected * sum(c.share * r.mirror for c, r in zip(world.classes, classes) if c.write)
    if expected <= 0:
        return False
    world.duplicated_writes += int(world.extra_stream("writes").poisson(expected))
    return True


def account_users(world: World, sut_expected: float, shares: dict[Role, float], classes,
                  bad: dict[Role, tuple[float, float]]) -> None:
    """Each user's expected bad answers in the interval, per group and flag bucket: the
    release-made failure chance of the version each class reached, plus a duplicated
    write for each mirrored write while the new version has side effects."""
    if not bad:
        return
    stable = bad.get(Role.STABLE, (0.0, 0.0))
    canary = bad.get(Role.CANARY, (0.0, 0.0))
    dup = classes is not None and duplicates_writes(world, world.t)
    if not (dup or world.track_exposure or any(stable) or any(canary)):
        return  # nobody met a bad answer the release made (every term below is 0)
    for i, cls in enumerate(world.classes):
        to_canary = classes[i].to_canary if classes is not None else shares[Role.CANARY]
        extra = classes[i].mirror if (dup and cls.write) else 0.0
        per_user = sut_expected * cls.share / world.groups[cls.group].users
        if world.track_exposure:  # region waves: blast radius counts who the new version served
            world.exposure.add(cls.group, per_user, to_canary, to_canary, 0)
        world.harm.add(cls.group, per_user,
                       to_canary * canary[0] + (1.0 - to_canary) * stable[0] + extra,
                       to_canary * canary[1] + (1.0 - to_canary) * stable[1] + extra,
                       int(world.flag_on_buckets[cls.group]))


def baseline_failure(world: World) -> float:
    """What a request fails from with no release at all: the service's own errors,
    injected faults and its dependencies."""
    return combine_failure(world.sut.baseline_error_rate, world._injected_error(world.sut.name),
                           world._downstream_failure())
