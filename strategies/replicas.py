"""Replica and weight arithmetic for canaries without a traffic router, and for rolling updates.

Without a traffic router the only lever a basic canary has is the pod ratio: a Service spreads
requests over all ready pods, so the canary's share of traffic is ``canary / (canary + stable)``.
This module ports the integer maths Argo Rollouts (v1.2 and later) uses to pick those counts,
and the Kubernetes Deployment controller's RollingUpdate arithmetic, as pure functions of plain
ints so the simulator and the live backends share one implementation.

Sources ported (argoproj/argo-rollouts, kubernetes/kubernetes):

* ``utils/replicaset/canary.go``: ``approximateWeightedCanaryStableReplicaCounts``,
  ``floorCeilingTied``, ``weightDelta``, ``CalculateReplicaCountsForBasicCanary``,
  ``GetReplicasForScaleDown``, ``calculateScaleDownReplicaCount``,
  ``adjustReplicaWithinLimits``, ``minValue``/``maxValue``.
* ``utils/replicaset/replicaset.go``: ``resolveFenceposts``, ``MaxSurge``, ``MaxUnavailable``.
* ``k8s.io/apimachinery/pkg/util/intstr``: ``GetScaledValueFromIntOrPercent``.
* ``pkg/controller/deployment/rolling.go`` and ``util/deployment_util.go``:
  ``reconcileNewReplicaSet``, ``NewRSNewReplicas``, ``reconcileOldReplicaSets``,
  ``cleanupUnhealthyReplicas``, ``scaleDownOldReplicaSetsForRollingUpdate``.

Floating-point expressions are kept in the same shape as the Go originals (same operand order,
IEEE doubles in both languages) so tie-breaking at exact halves matches Argo bit for bit.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

__all__ = [
    "Fenceposts",
    "ReplicaCounts",
    "RollingCounts",
    "canary_replica_step",
    "canary_replica_targets",
    "effective_canary_weight",
    "resolve_fenceposts",
    "resolve_int_or_percent",
    "rolling_update_step",
]

IntOrPercent = int | str

_PERCENT = re.compile(r"^(\d+)%$")


@dataclass(frozen=True, slots=True)
class ReplicaCounts:
    """Spec replica counts for the canary (new) and stable ReplicaSets; unpacks as ``(canary, stable)``."""

    canary: int
    stable: int

    def __iter__(self) -> Iterator[int]:
        return iter((self.canary, self.stable))

    @property
    def total(self) -> int:
        return self.canary + self.stable


@dataclass(frozen=True, slots=True)
class RollingCounts:
    """Spec replica counts for a Deployment's new and old ReplicaSets; unpacks as ``(new, old)``."""

    new: int
    old: int

    def __iter__(self) -> Iterator[int]:
        return iter((self.new, self.old))

    @property
    def total(self) -> int:
        return self.new + self.old


@dataclass(frozen=True, slots=True)
class Fenceposts:
    """maxSurge and maxUnavailable resolved to pod counts; unpacks as ``(surge, unavailable)``."""

    surge: int
    unavailable: int

    def __iter__(self) -> Iterator[int]:
        return iter((self.surge, self.unavailable))


# --------------------------------------------------------------------------- validation


def _require_count(name: str, value: object) -> int:
    # bool is an int subclass; True replicas is a bug in the caller, not 1 pod.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an int pod count, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


def _require_weight(weight: object, max_weight: object) -> tuple[int, int]:
    if isinstance(max_weight, bool) or not isinstance(max_weight, int) or max_weight < 1:
        raise ValueError(f"max_weight must be an int >= 1, got {max_weight!r}")
    if isinstance(weight, bool) or not isinstance(weight, int):
        raise ValueError(f"weight must be an int, got {weight!r}")
    if not 0 <= weight <= max_weight:
        raise ValueError(f"weight must be within 0..{max_weight} (max_weight), got {weight}")
    return weight, max_weight


def _scaled(name: str, value: object, total: int, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent, with errors naming the caller's argument."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an int or a percentage string like '25%', got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"{name} must be >= 0, got {value}")
        return value
    if isinstance(value, str):
        match = _PERCENT.match(value)
        if match is None:
            # k8s' "safe" parser rejects bare numeric strings ("25") too: only "<digits>%" is
            # a percentage, and ints must be given as ints.
            raise ValueError(
                f"{name} must be an int or a percentage string like '25%', got {value!r}"
            )
        percent = int(match.group(1))
        # Same expression as Go: math.Ceil/Floor(float64(value) * float64(total) / 100).
        scaled = float(percent) * float(total) / 100
        return int(math.ceil(scaled) if round_up else math.floor(scaled))
    raise ValueError(
        f"{name} must be an int or a percentage string like '25%', got {type(value).__name__} {value!r}"
    )


# --------------------------------------------------------------------------- fenceposts


def resolve_int_or_percent(value: int | str, total: int, round_up: bool) -> int:
    """Resolve an absolute count or a ``"N%"`` string against ``total`` pods.

    Kubernetes' ``intstr.GetScaledValueFromIntOrPercent``: an int is returned as is; a
    percentage is ``ceil(N * total / 100)`` when ``round_up`` (how maxSurge is resolved: any
    surge allowance gives at least one extra pod) and ``floor(...)`` otherwise (maxUnavailable:
    never take down more than the percentage allows).

        resolve_int_or_percent("25%", 10, round_up=True)   -> 3   (2.5 rounded up)
        resolve_int_or_percent("25%", 10, round_up=False)  -> 2   (2.5 rounded down)
        resolve_int_or_percent(4, 10, round_up=False)      -> 4

    Raises ValueError for negative ints, strings that are not ``"<digits>%"`` (``"25"``,
    ``"abc"``, ``"-5%"``) and other types.
    """
    _require_count("total", total)
    return _scaled("value", value, total, round_up)


@lru_cache(maxsize=4096, typed=True)  # pure, asked often; typed: a cached 1 must not let True skip validation
def resolve_fenceposts(max_surge: IntOrPercent, max_unavailable: IntOrPercent, replicas: int) -> Fenceposts:
    """Resolve maxSurge (rounded up) and maxUnavailable (rounded down) together.

    Port of ``resolveFenceposts`` (Argo ``utils/replicaset/replicaset.go``, k8s
    ``deployment_util.go``). They must be resolved in one step because if both come out as
    zero the rollout could never make progress: it may neither add a pod nor remove one.
    Validation forbids writing ``0`` for both, but percentages can still round to zero
    (``"0%"``/``"0%"``, or ``maxSurge: 0, maxUnavailable: "5%"`` on 10 pods), and then
    maxUnavailable becomes 1 "on the theory that surge might not work due to quota".

        replicas 10, surge "25%", unavailable "25%"  -> Fenceposts(surge=3, unavailable=2)
        replicas 10, surge "0%",  unavailable "0%"   -> Fenceposts(surge=0, unavailable=1)
        replicas 10, surge 0,     unavailable "5%"   -> Fenceposts(surge=0, unavailable=1)
    """
    _require_count("replicas", replicas)
    surge = _scaled("max_surge", max_surge, replicas, round_up=True)
    unavailable = _scaled("max_unavailable", max_unavailable, replicas, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return Fenceposts(surge, unavailable)


def _max_unavailable(fenceposts: Fenceposts, replicas: int) -> int:
    # Argo's MaxUnavailable and k8s' MaxUnavailable both return 0 for an empty workload and
    # never allow more unavailable pods than the workload has.
    if replicas == 0:
        return 0
    return min(fenceposts.unavailable, replicas)


# --------------------------------------------------------------------------- canary targets


def _floor_ceiling_tied(weight: int, total: int, max_weight: int) -> bool:
    # floorCeilingTied: replicas 3 at 50% -> 1.5; 1 (33%) and 2 (67%) are equally far away.
    frac, _ = math.modf(float(total) * (float(weight) / max_weight))
    return frac == 0.5


def _weight_delta(weight: int, canary: int, total: int, max_weight: int) -> float:
    # weightDelta: how far canary/total lands from the declared weight, in weight units.
    actual = float(canary * max_weight) / float(total)
    return abs(actual - float(weight))


@lru_cache(maxsize=4096, typed=True)  # pure, asked often; typed: a cached 1 must not let True skip validation
def canary_replica_targets(replicas: int, weight: int, max_surge: int, max_weight: int = 100) -> ReplicaCounts:
    """Steady-state (canary, stable) spec counts that best approximate ``weight`` by pod ratio.

    Port of Argo's ``approximateWeightedCanaryStableReplicaCounts`` (v1.2+). With ``r``
    replicas and weight ``w`` out of ``W`` (``max_weight``, 100 in Argo's basic canary)::

        ceil  = ceil(r * w / W)        floor = floor(r * w / W)
        candidates (canary, total):
            (ceil,  r)      if ceil < r, or zero is allowed
            (floor, r)      unless r*w/W ends in exactly .5 ("tied": keep the larger, ceil),
                            and only if floor > 0 or zero is allowed
            (ceil,  r + 1)  if max_surge > 0
            (floor, r + 1)  if max_surge > 0, r+1 is not tied, and floor > 0 or zero allowed
        pick the first candidate with the smallest |100*canary/total - w|; stable = total - canary

    "Zero allowed" means ``w`` is 0 or ``W``, or a single replica with no surge. Otherwise a
    weight strictly between 0 and ``W`` always gets at least one canary and one stable pod,
    which is why a 1% step on 10 pods is really 10% (or 9.1% with surge): the declared and the
    effective weight differ (see :func:`effective_canary_weight`). The sum is ``replicas`` or
    ``replicas + 1``; it exceeds ``replicas`` only when ``max_surge > 0``.

    Quirk kept on purpose: the ``r + 1`` candidates reuse ``ceil``/``floor`` computed for
    ``r`` pods (not for ``r + 1``), exactly as Argo does.

    Worked examples (``max_weight`` 100), from Argo's TestApproximateWeightedNewStableReplicaCounts:

        replicas 10, weight 24, surge 1 -> (3, 8)   3/11 = 27.2% beats 2/10 = 20%
        replicas 10, weight 20, surge 1 -> (2, 8)   exact
        replicas 3,  weight 50, surge 0 -> (2, 1)   tie 1.5 resolved upwards
        replicas 1,  weight 49, surge 0 -> (0, 1)   one pod, no surge: zero allowed
        replicas 1,  weight 49, surge 1 -> (1, 1)   surge lets both versions run

    ``max_weight`` generalises the constant 100 in every expression (Argo only honours a
    custom maxTrafficWeight with a traffic router); at 100 the arithmetic is Argo's verbatim.
    """
    _require_count("replicas", replicas)
    _require_count("max_surge", max_surge)
    weight, max_weight = _require_weight(weight, max_weight)
    if replicas == 0:
        return ReplicaCounts(0, 0)

    ceil_canary = int(math.ceil(float(replicas * weight) / float(max_weight)))
    floor_canary = int(math.floor(float(replicas * weight) / float(max_weight)))
    tied = _floor_ceiling_tied(weight, replicas, max_weight)
    # Zero pods for one side is only acceptable when it is what the user asked for, or when
    # a single replica without surge leaves no room for both versions.
    zero_allowed = weight in (0, max_weight) or (replicas == 1 and max_surge == 0)

    options: list[tuple[int, int]] = []  # (canary, total)
    if ceil_canary < replicas or zero_allowed:
        options.append((ceil_canary, replicas))
    if not tied and (floor_canary != 0 or zero_allowed):
        options.append((floor_canary, replicas))
    if max_surge > 0:
        # One extra pod can land closer to the desired ratio than total == replicas.
        options.append((ceil_canary, replicas + 1))
        surge_tied = _floor_ceiling_tied(weight, replicas + 1, max_weight)
        if not surge_tied and (floor_canary != 0 or zero_allowed):
            options.append((floor_canary, replicas + 1))

    if not options:
        # Argo: "should not get here"; kept so an unforeseen input degrades to all-stable.
        return ReplicaCounts(0, replicas)

    best = options[0]
    best_delta = _weight_delta(weight, best[0], best[1], max_weight)
    for option in options[1:]:
        delta = _weight_delta(weight, option[0], option[1], max_weight)
        if delta < best_delta:  # strict: on equal deltas the earlier candidate wins
            best, best_delta = option, delta
    canary, total = best
    return ReplicaCounts(canary, total - canary)


# --------------------------------------------------------------------------- canary step


def _replicas_for_scale_down(spec: int, available: int, ignore_availability: bool) -> int:
    """GetReplicasForScaleDown: how many of this RS's pods count as 'up' before scaling down.

    If spec < available the RS is already shrinking, so its surplus available pods must not be
    counted as staying. ``ignore_availability`` counts spec instead of available, so that an RS
    whose pods are crash-looping can still be scaled down to make room for the other one.
    """
    if spec < available:
        return spec
    if ignore_availability:
        return spec
    return available


def _scale_down_drained(spec: int, desired: int, scale_down: int, current: int) -> int:
    """calculateScaleDownReplicaCount: move the drained RS toward ``desired`` by ``scale_down``."""
    if spec > desired:
        return max(desired, spec - scale_down)
    return current


def _adjust_within_limits(
    drain_available: int,
    adjust_available: int,
    drain_count: int,
    adjust_count: int,
    max_allowed: int,
    min_available: int,
) -> tuple[int, int]:
    """adjustReplicaWithinLimits: pull the pair back under maxSurge without breaking maxUnavailable.

    The drained RS is the one whose availability was ignored when computing the scale-down;
    the adjusted RS is the other one. First the adjusted RS gives back any pods over
    ``max_allowed``; then, if that cut into its available pods and total availability would
    fall under ``min_available``, it gets those pods back and the drained RS pays instead.
    Returns ``(drain_count, adjust_count)``.
    """
    over = max(0, adjust_count + drain_count - max_allowed)
    total_available = min(drain_available, drain_count)
    adjust_count -= over
    total_available += min(adjust_available, adjust_count)
    lost_available = max(0, adjust_available - adjust_count)
    still_needed = max(0, min_available - total_available)
    adjust_count += min(lost_available, still_needed)
    over = max(0, adjust_count + drain_count - max_allowed)
    drain_count -= over
    return drain_count, adjust_count


@lru_cache(maxsize=4096, typed=True)  # pure, asked often; typed: a cached 1 must not let True skip validation
def canary_replica_step(
    replicas: int,
    weight: int,
    max_surge: IntOrPercent,
    max_unavailable: IntOrPercent,
    stable_spec: int,
    stable_available: int,
    canary_spec: int,
    canary_available: int,
    max_weight: int = 100,
    *,
    older_spec: int = 0,
) -> ReplicaCounts:
    """Next (canary, stable) spec counts for a basic canary step, honouring surge and availability.

    Port of Argo's ``CalculateReplicaCountsForBasicCanary`` (no traffic router; stable and
    canary are different ReplicaSets). One call is one reconcile: the controller writes the
    returned spec counts, waits for pods to change, observes again and calls again, until the
    counts equal :func:`canary_replica_targets`. Argo's order of moves:

    1. Targets: ``(c*, s*) = canary_replica_targets(replicas, weight, surge)``.
    2. Scale up, stable first::

           scale_up = (replicas + surge) - (older + canary_spec + stable_spec)

       the stable gets up to ``s*`` first (so an abort restores capacity before anything
       else), then the canary up to ``c*`` with what is left.
    3. If older ReplicaSets (``older_spec``, neither stable nor canary) still have pods, stop:
       they are scaled down first, by another part of the controller.
    4. Scale down, bounded by availability::

           min_available = replicas - maxUnavailable
           increasing    = c* >= canary_spec
           counted       = up(canary, ignore=not increasing) + up(stable, ignore=increasing)
           scale_down    = counted - min_available        (nothing if <= 0)

       where ``up`` is the RS's available pods (its spec if ``ignore``, or if spec <
       available). While increasing, the stable is drained toward ``s*``; while decreasing
       (lower weight, abort), the canary is drained toward ``c*``. Then the other RS gives back
       pods over ``replicas + surge``, unless that would break ``min_available``.

    ``max_surge``/``max_unavailable`` are ints or ``"N%"`` strings, resolved against
    ``replicas`` as in :func:`resolve_fenceposts`; maxUnavailable is capped at ``replicas``.

    Worked examples, from Argo's TestCalculateReplicaCountsForCanary:

        replicas 10, weight 20, surge 2, unavail 0, stable 10/10, canary 0/0  -> (2, 10)
        replicas 10, weight 20, surge "20%", unavail 0, stable 10/10, canary 2/2 -> (2, 8)
        replicas 10, weight 20, surge 0, unavail 2, stable 10/10, canary 0/0  -> (0, 8)
        replicas 4,  weight 0,  surge 1, unavail 0, stable 0/0, canary 4/4    -> (4, 1)

    ``older_spec`` (keyword-only, default 0) is the summed spec replicas of any older
    ReplicaSets; it only matters mid-way through a rollover from a previous canary.
    """
    _require_count("replicas", replicas)
    weight, max_weight = _require_weight(weight, max_weight)
    _require_count("stable_spec", stable_spec)
    _require_count("stable_available", stable_available)
    _require_count("canary_spec", canary_spec)
    _require_count("canary_available", canary_available)
    _require_count("older_spec", older_spec)

    fenceposts = resolve_fenceposts(max_surge, max_unavailable, replicas)
    surge = fenceposts.surge
    max_unavailable_pods = _max_unavailable(fenceposts, replicas)

    desired_canary, desired_stable = canary_replica_targets(replicas, weight, surge, max_weight)
    new_canary, new_stable = canary_spec, stable_spec

    max_allowed = replicas + surge
    scale_up = max_allowed - (older_spec + canary_spec + stable_spec)

    if stable_spec < desired_stable and scale_up > 0:
        # Stable first: if we are heading back (abort, lower weight) capacity must return
        # before the canary is allowed to grow.
        if stable_spec + scale_up < desired_stable:
            new_stable = stable_spec + scale_up
            scale_up = 0
        else:
            new_stable = desired_stable
            scale_up -= desired_stable - stable_spec

    if canary_spec < desired_canary and scale_up > 0:
        new_canary = min(canary_spec + scale_up, desired_canary)

    if older_spec > 0:
        # Older ReplicaSets are scaled down before the canary or stable is touched.
        return ReplicaCounts(new_canary, new_stable)

    min_available = replicas - max_unavailable_pods
    increasing = desired_canary >= canary_spec
    counted = _replicas_for_scale_down(canary_spec, canary_available, not increasing) + _replicas_for_scale_down(
        stable_spec, stable_available, increasing
    )
    if counted <= min_available:
        # Scaling either side down now would take availability under the floor.
        return ReplicaCounts(new_canary, new_stable)

    scale_down = counted - min_available
    if not increasing:
        new_canary = _scale_down_drained(canary_spec, desired_canary, scale_down, new_canary)
        new_canary, new_stable = _adjust_within_limits(
            canary_available, stable_available, new_canary, new_stable, max_allowed, min_available
        )
    else:
        new_stable = _scale_down_drained(stable_spec, desired_stable, scale_down, new_stable)
        new_stable, new_canary = _adjust_within_limits(
            stable_available, canary_available, new_stable, new_canary, max_allowed, min_available
        )
    return ReplicaCounts(new_canary, new_stable)


# --------------------------------------------------------------------------- observed weight


def effective_canary_weight(canary_available: int, stable_available: int) -> float:
    """Percentage of requests the canary really receives when weight is approximated by pods.

    A Service load-balances over ready endpoints, so with ``c`` available canary pods and ``s``
    available stable pods the canary's share is::

        100 * c / (c + s)        (0.0 when no pod is available)

    This is what users observe, as opposed to the declared ``setWeight``: on 10 replicas a
    5% step becomes 1 canary pod next to 10 stable ones (surge allowed), i.e. 9.09%, and until
    new pods pass readiness the share is lower still. The gap between declared and effective
    weight is a long-standing complaint about Argo's basic canary, and the reason to use a
    traffic router when exact percentages matter.

        effective_canary_weight(1, 9)   -> 10.0
        effective_canary_weight(1, 10)  -> 9.0909...
        effective_canary_weight(0, 0)   -> 0.0
    """
    _require_count("canary_available", canary_available)
    _require_count("stable_available", stable_available)
    pods = canary_available + stable_available
    if pods == 0:
        return 0.0
    return 100.0 * canary_available / pods


# --------------------------------------------------------------------------- rolling update


@lru_cache(maxsize=4096, typed=True)  # pure, asked often; typed: a cached 1 must not let True skip validation
def rolling_update_step(
    replicas: int,
    max_surge: IntOrPercent,
    max_unavailable: IntOrPercent,
    new_spec: int,
    new_available: int,
    old_spec: int,
    old_available: int,
) -> RollingCounts:
    """Next (new, old) spec counts of a Deployment RollingUpdate: one sync of the k8s controller.

    Port of ``rolloutRolling`` in k8s ``pkg/controller/deployment/rolling.go``. A sync either
    scales the new ReplicaSet up or the old one down, never both:

    1. ``reconcileNewReplicaSet``: if ``new_spec > replicas`` it is cut to ``replicas``;
       otherwise (``NewRSNewReplicas``)::

           new = new_spec + min(replicas + maxSurge - (new_spec + old_spec), replicas - new_spec)

       when that is a change, the sync ends there.
    2. ``reconcileOldReplicaSets``::

           min_available   = replicas - maxUnavailable
           max_scaled_down = (new_spec + old_spec) - min_available - (new_spec - new_available)

       Unavailable pods of the new RS are subtracted so a crash-looping new version cannot
       make us remove healthy old pods. Up to ``max_scaled_down`` *unhealthy* old pods
       (``old_spec - old_available``) are removed first; they carry no traffic and would
       otherwise block the rollout. Then ready old pods are removed while total available
       stays above ``min_available``::

           old -= min(old, (new_available + old_available) - min_available)

    maxSurge rounds up and maxUnavailable rounds down (:func:`resolve_fenceposts`, including
    its "both zero -> unavailable 1" rule); maxUnavailable is capped at ``replicas``.

    Worked example, replicas 10, maxSurge 25% (3), maxUnavailable 25% (2), pods ready at once:

        (new 0, old 10) -> (3, 10)  surge to 13 pods
        (3, 10)         -> (3, 8)   new pods not ready yet: only 2 old may go (10 >= 8)
        (3 ready, 8)    -> (5, 8)   back up to 13
        ...             -> (10, 0)

    Quirk kept on purpose: if ``old_available > old_spec`` (the old RS still reports pods it
    was already told to drop) k8s' cleanup rejects its own negative scale-down and the sync
    scales nothing down; the counts come back unchanged.
    """
    _require_count("replicas", replicas)
    _require_count("new_spec", new_spec)
    _require_count("new_available", new_available)
    _require_count("old_spec", old_spec)
    _require_count("old_available", old_available)

    fenceposts = resolve_fenceposts(max_surge, max_unavailable, replicas)
    max_unavailable_pods = _max_unavailable(fenceposts, replicas)

    # reconcileNewReplicaSet
    if new_spec > replicas:
        return RollingCounts(replicas, old_spec)
    if new_spec < replicas:
        max_total = replicas + fenceposts.surge
        current = new_spec + old_spec
        if current < max_total:
            scale_up = min(max_total - current, replicas - new_spec)
            return RollingCounts(new_spec + scale_up, old_spec)

    # reconcileOldReplicaSets
    if old_spec == 0:
        return RollingCounts(new_spec, old_spec)
    min_available = replicas - max_unavailable_pods
    new_unavailable = new_spec - new_available
    max_scaled_down = (new_spec + old_spec) - min_available - new_unavailable
    if max_scaled_down <= 0:
        return RollingCounts(new_spec, old_spec)

    # cleanupUnhealthyReplicas
    if old_spec != old_available:
        cleanup = min(max_scaled_down, old_spec - old_available)
        if cleanup < 0:
            # k8s returns an error here ("invalid request to scale down") and
            # reconcileOldReplicaSets swallows it: nothing is scaled down this sync.
            return RollingCounts(new_spec, old_spec)
        old_spec -= cleanup

    # scaleDownOldReplicaSetsForRollingUpdate
    available = new_available + old_available
    if available <= min_available or old_spec == 0:
        return RollingCounts(new_spec, old_spec)
    scale_down = min(old_spec, available - min_available)
    return RollingCounts(new_spec, old_spec - scale_down)
