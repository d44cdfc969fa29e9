"""Specification of strategies.replicas: Argo Rollouts' basic-canary maths and k8s RollingUpdate maths.

Rows marked "argo:" are ported from argoproj/argo-rollouts utils/replicaset/canary_test.go
(TestCalculateReplicaCountsForCanary, TestApproximateWeightedNewStableReplicaCounts) or from the
doc comments in utils/replicaset/canary.go and docs/features/canary.md; rows marked "k8s:" from
kubernetes/kubernetes pkg/controller/deployment/rolling_test.go and deployment_util.go.
"""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rolloutlab.strategies.replicas import (
    Fenceposts,
    ReplicaCounts,
    RollingCounts,
    canary_replica_step,
    canary_replica_targets,
    effective_canary_weight,
    resolve_fenceposts,
    resolve_int_or_percent,
    rolling_update_step,
)

# --------------------------------------------------------------------------- targets

# (replicas, weight, max_surge, expected canary, expected stable) -- resulting canary share in the id.
APPROXIMATE_ROWS = [
    (0, 0, 0, 0, 0, "0%"),
    (0, 50, 0, 0, 0, "0%"),
    (0, 100, 0, 0, 0, "0%"),
    (0, 0, 1, 0, 0, "0%"),
    (0, 50, 1, 0, 0, "0%"),
    (0, 100, 1, 0, 0, "0%"),
    (1, 0, 0, 0, 1, "0%"),
    (1, 1, 0, 0, 1, "0%"),
    (1, 49, 0, 0, 1, "0%"),
    (1, 50, 0, 1, 0, "100%"),
    (1, 99, 0, 1, 0, "100%"),
    (1, 100, 0, 1, 0, "100%"),
    (1, 0, 1, 0, 1, "0%"),
    (1, 1, 1, 1, 1, "50%"),
    (1, 49, 1, 1, 1, "50%"),
    (1, 50, 1, 1, 1, "50%"),
    (1, 99, 1, 1, 1, "50%"),
    (1, 100, 1, 1, 0, "100%"),
    (2, 0, 0, 0, 2, "0%"),
    (2, 1, 0, 1, 1, "50%"),
    (2, 50, 0, 1, 1, "50%"),
    (2, 99, 0, 1, 1, "50%"),
    (2, 100, 0, 2, 0, "100%"),
    (2, 0, 1, 0, 2, "0%"),
    (2, 1, 1, 1, 2, "33.3%"),
    (2, 50, 1, 1, 1, "50%"),
    (2, 99, 1, 2, 1, "66.6%"),
    (2, 100, 1, 2, 0, "100%"),
    (3, 10, 0, 1, 2, "33.3%"),
    (3, 25, 0, 1, 2, "33.3%"),
    (3, 33, 0, 1, 2, "33.3%"),
    (3, 34, 0, 1, 2, "33.3%"),
    (3, 49, 0, 1, 2, "33.3%"),
    (3, 50, 0, 2, 1, "66.6%"),
    (3, 10, 1, 1, 3, "25%"),
    (3, 25, 1, 1, 3, "25%"),
    (3, 33, 1, 1, 2, "33.3%"),
    (3, 34, 1, 1, 2, "33.3%"),
    (3, 49, 1, 2, 2, "50%"),
    (3, 50, 1, 2, 2, "50%"),
    (10, 0, 1, 0, 10, "0%"),
    (10, 1, 0, 1, 9, "10%"),
    (10, 14, 0, 1, 9, "10%"),
    (10, 15, 0, 2, 8, "20%"),
    (10, 16, 0, 2, 8, "20%"),
    (10, 99, 0, 9, 1, "90%"),
    (10, 100, 1, 10, 0, "100%"),
    (10, 0, 1, 0, 10, "0%"),
    (10, 1, 1, 1, 10, "9.1%"),
    (10, 18, 1, 2, 9, "18.1%"),
    (10, 19, 1, 2, 9, "18.1%"),
    (10, 20, 1, 2, 8, "20%"),
    (10, 23, 1, 2, 8, "20%"),
    (10, 24, 1, 3, 8, "27.2%"),
    (10, 25, 1, 3, 8, "27.2%"),
    (10, 99, 1, 10, 1, "90.9%"),
    (10, 100, 1, 10, 0, "100%"),
]


@pytest.mark.parametrize(
    ("replicas", "weight", "max_surge", "canary", "stable", "share"),
    APPROXIMATE_ROWS,
    ids=[f"argo: replicas {r} weight {w} surge {s} -> {c}/{t} ({p})" for r, w, s, c, t, p in APPROXIMATE_ROWS],
)
def test_targets_match_argo_approximation_table(replicas, weight, max_surge, canary, stable, share):
    """canary_replica_targets reproduces every row of Argo's TestApproximateWeightedNewStableReplicaCounts."""
    assert canary_replica_targets(replicas, weight, max_surge) == ReplicaCounts(canary, stable)


DOCS_TARGET_ROWS = [
    # docs/features/canary.md "Important" box (spec has maxSurge "25%" -> 3 on 10 pods).
    pytest.param(10, 10, 3, 1, 9, id="argo docs: 10 replicas at 10% -> 1 canary, 9 stable"),
    pytest.param(10, 41, 3, 4, 6, id="argo docs: 10 replicas at 41% -> 4 canary (closest to 4/10), 6 stable"),
    pytest.param(10, 15, 3, 2, 9, id="argo docs (pre-1.2 text): 10 replicas at 15% -> 2 canary, 9 stable"),
    # argo PR #1759 table, v1.2 column.
    pytest.param(1, 10, 0, 0, 1, id="argo v1.2: 1 replica, surge 0, 10% -> 0/1, no longer violates maxSurge"),
    pytest.param(1, 50, 0, 1, 0, id="argo v1.2: 1 replica, surge 0, 50% -> 1/0, no longer violates maxSurge"),
    pytest.param(3, 33, 1, 1, 2, id="argo v1.2: 3 replicas, surge 1, 33% -> 1/2, better approximation"),
    pytest.param(3, 50, 0, 2, 1, id="argo v1.2: 3 replicas, surge 0, 50% -> 2/1, no longer violates maxSurge"),
]


@pytest.mark.parametrize(("replicas", "weight", "max_surge", "canary", "stable"), DOCS_TARGET_ROWS)
def test_targets_match_argo_docs_examples(replicas, weight, max_surge, canary, stable):
    """The documented examples of Argo's weight approximation hold for the ported targets."""
    assert canary_replica_targets(replicas, weight, max_surge) == ReplicaCounts(canary, stable)


QUIRK_ROWS = [
    pytest.param(2, 75, 2, id="2 replicas at 75%: 1.5 is tied and ceil==replicas, so no candidate"),
    pytest.param(5, 90, 5, id="5 replicas at 90%: 4.5 is tied and ceil==replicas, so no candidate"),
    pytest.param(10, 95, 10, id="10 replicas at 95%: 9.5 is tied and ceil==replicas, so no candidate"),
]


@pytest.mark.parametrize(("replicas", "weight", "stable"), QUIRK_ROWS)
def test_targets_fall_back_to_all_stable_when_argo_has_no_candidate(replicas, weight, stable):
    """With maxSurge 0 and replicas*weight/100 == replicas - 0.5, Argo's fallback puts everything on stable."""
    # Argo's "should not get here" branch: the tie rule drops floor, the ceil option is dropped
    # because it would zero the stable, so the canary gets nothing at a high weight.
    assert canary_replica_targets(replicas, weight, max_surge=0) == ReplicaCounts(0, stable)


def test_targets_scale_with_max_weight():
    """With max_weight W the same ratios hold as at 100: 250 of 1000 on 4 pods is one canary pod."""
    assert canary_replica_targets(4, 250, 0, max_weight=1000) == canary_replica_targets(4, 25, 0)
    assert canary_replica_targets(10, 1000, 1, max_weight=1000) == ReplicaCounts(10, 0)


# --------------------------------------------------------------------------- step

# Rows of argo TestCalculateReplicaCountsForCanary that use the basic canary (no trafficRouting).
# (replicas, weight, surge, unavailable, stable spec/avail, canary spec/avail, older, expected canary, stable)
STEP_ROWS = [
    pytest.param(10, 100, 3, 0, 7, 8, 6, 3, 0, 6, 7,
                 id="argo: Do not add extra RSs in scaleDownCount when .Spec.Replica < AvailableReplicas"),
    pytest.param(10, 20, 2, 0, 10, 10, 0, 0, 0, 2, 10, id="argo: Use max surge int to scale up canary"),
    pytest.param(10, 20, "20%", 0, 10, 10, 0, 0, 0, 2, 10, id="argo: Use max surge percentage to scale up canary"),
    pytest.param(10, 20, "20%", 0, 10, 10, 2, 2, 0, 2, 8, id="argo: Scale down extra stable replicas"),
    pytest.param(10, 30, 2, 0, 10, 10, 0, 0, 0, 2, 10, id="argo: Do not go past max surge"),
    pytest.param(10, 20, 0, 2, 10, 10, 0, 0, 0, 0, 8, id="argo: Use max unavailable int to scale down stableRS"),
    pytest.param(10, 20, 0, "20%", 10, 10, 0, 0, 0, 0, 8,
                 id="argo: Use max surge percentage to scale down stableRS (maxUnavailable 20%)"),
    pytest.param(10, 30, 0, 2, 10, 10, 0, 0, 0, 0, 8, id="argo: Do not go past max unavailable"),
    pytest.param(10, 50, 2, 1, 10, 10, 0, 0, 0, 2, 9, id="argo: Use Max Surge and Max Unavailable"),
    pytest.param(10, 0, 1, 1, 10, 10, 1, 1, 0, 0, 10, id="argo: Scale canaryRS to zero on setWeight of 0%"),
    pytest.param(10, 100, 1, 1, 1, 1, 10, 10, 0, 10, 0, id="argo: Scale stable to zero on setWeight of 100%"),
    pytest.param(1, 20, 1, 0, 1, 1, 0, 0, 0, 1, 1, id="argo: Do not scale newRS down to zero on non-zero weight"),
    pytest.param(1, 90, 1, 0, 1, 1, 0, 0, 0, 1, 1, id="argo: Do not scale canaryRS down to zero on non-100 weight"),
    pytest.param(10, 30, 1, 0, 1, 1, 0, 0, 3, 1, 7, id="argo: Scale up Stable before newRS (older RS 3)"),
    pytest.param(10, 30, 0, 3, 8, 5, 4, 4, 0, 3, 7, id="argo: Scale down newRS and stable"),
    pytest.param(10, 100, 1, 0, 10, 2, 10, 8, 0, 9, 2, id="argo: Scale down stable and canary available"),
    pytest.param(10, 30, 0, 1, 8, 6, 4, 2, 3, 4, 8,
                 id="argo: Do not scale down newRS or stable when older RS count >= scaleDownCount"),
    pytest.param(10, 5, 0, 1, 10, 10, 0, 0, 0, 0, 9,
                 id="argo: Do not round past maxSurge with uneven setWeight divisor"),
    pytest.param(10, 5, 0, 1, 9, 9, 0, 0, 0, 1, 9,
                 id="argo: Do not round past maxSurge with uneven setWeight divisor (part 2)"),
    pytest.param(10, 10, "0%", "0%", 10, 10, 0, 0, 0, 0, 9,
                 id="argo: Use maxUnavailable of 1 when percentage of maxUnavailable and maxSurge result in 0 replicas"),
    pytest.param(10, 20, "20%", 0, 10, 10, 0, 0, 0, 2, 10,
                 id="argo: Ignore setCanaryScale when trafficRouting is missing and use setWeight for replicas"),
    pytest.param(4, 100, 1, 0, 4, 1, 0, 0, 0, 1, 4, id="argo: honor maxSurge during scale up when stableRS unavailable"),
    pytest.param(3, 99, 0, 2, 3, 3, 0, 0, 0, 0, 1, id="argo: scale down to maxunavailable without exceeding maxSurge"),
    pytest.param(3, 99, 0, 2, 1, 1, 0, 0, 0, 2, 1,
                 id="argo: scale down to maxunavailable without exceeding maxSurge (part 2)"),
    pytest.param(4, 100, 1, 0, 4, 1, 1, 1, 0, 1, 3,
                 id="argo: honor maxUnavailable during scale down stableRS unavailable"),
    pytest.param(4, 0, 1, 0, 0, 0, 4, 4, 0, 4, 1,
                 id="argo: honor maxUnavailable when aborting or reducing weight part 1"),
    pytest.param(4, 0, 1, 0, 1, 0, 4, 4, 0, 4, 1,
                 id="argo: honor maxUnavailable when aborting or reducing weight part 2"),
    pytest.param(4, 0, 1, 0, 1, 1, 4, 4, 0, 3, 1,
                 id="argo: honor maxUnavailable when aborting or reducing weight part 3"),
    # promoteFull makes GetCanaryReplicasOrWeight return weight 100.
    pytest.param(4, 100, 4, 4, 4, 4, 0, 0, 0, 4, 0, id="argo: promote full does not consider weight"),
    pytest.param(4, 100, 3, 0, 4, 4, 0, 0, 0, 3, 4, id="argo: promote full still honors maxSurge/maxUnavailable"),
    # Doc comment of CalculateReplicaCountsForBasicCanary (stable fully available, no canary yet).
    pytest.param(10, 10, 1, 1, 10, 10, 0, 0, 0, 1, 9, id="argo doc comment: replicas 10 weight 10 unavail 1 surge 1"),
    pytest.param(10, 30, 3, 0, 10, 10, 0, 0, 0, 3, 10, id="argo doc comment: replicas 10 weight 30 unavail 0 surge 3"),
    pytest.param(10, 30, 0, 5, 10, 10, 0, 0, 0, 0, 7, id="argo doc comment: replicas 10 weight 30 unavail 5 surge 0"),
    # The doc comment still says 1/9 here; since v1.2 the target is 1/10 (1/11 = 9.1% is closer
    # to 5% than 1/10), so the stable keeps all 10 pods. The code, not the stale comment, is ported.
    pytest.param(10, 5, 1, 1, 10, 10, 0, 0, 0, 1, 10,
                 id="argo doc comment (stale, says 1/9): replicas 10 weight 5 unavail 1 surge 1 -> 1/10"),
    pytest.param(1, 5, 1, 0, 1, 1, 0, 0, 0, 1, 1, id="argo doc comment: replicas 1 weight 5 unavail 0 surge 1"),
    pytest.param(1, 95, 1, 0, 1, 1, 0, 0, 0, 1, 1, id="argo doc comment: replicas 1 weight 95 unavail 0 surge 1"),
]


@pytest.mark.parametrize(
    ("replicas", "weight", "surge", "unavailable", "stable_spec", "stable_available",
     "canary_spec", "canary_available", "older_spec", "canary", "stable"),
    STEP_ROWS,
)
def test_step_matches_argo_table(replicas, weight, surge, unavailable, stable_spec, stable_available,
                                 canary_spec, canary_available, older_spec, canary, stable):
    """canary_replica_step reproduces Argo's CalculateReplicaCountsForBasicCanary on its own test table."""
    result = canary_replica_step(
        replicas, weight, surge, unavailable,
        stable_spec, stable_available, canary_spec, canary_available,
        older_spec=older_spec,
    )
    assert result == ReplicaCounts(canary, stable)


def test_step_walks_docs_example_to_full_promotion():
    """The docs' example rollout (10 replicas, maxSurge 25%, maxUnavailable 0) steps as Argo would."""
    # Pods become ready before each observation; every pair is one reconcile.
    expected = [
        (10, (0, 10), (1, 10)), (10, (1, 10), (1, 9)), (10, (1, 9), (1, 9)),
        (20, (1, 9), (2, 9)), (20, (2, 9), (2, 8)),
        (100, (2, 8), (5, 8)), (100, (5, 8), (5, 5)), (100, (5, 5), (8, 5)),
        (100, (8, 5), (8, 2)), (100, (8, 2), (10, 2)), (100, (10, 2), (10, 0)),
    ]
    for weight, (canary, stable), after in expected:
        assert tuple(canary_replica_step(10, weight, "25%", 0, stable, stable, canary, canary)) == after


# --------------------------------------------------------------------------- fenceposts


@pytest.mark.parametrize(
    ("value", "total", "round_up", "expected"),
    [
        pytest.param("25%", 10, True, 3, id="25% of 10 rounded up (maxSurge) is 3"),
        pytest.param("25%", 10, False, 2, id="25% of 10 rounded down (maxUnavailable) is 2"),
        pytest.param("33%", 3, True, 1, id="33% of 3 rounded up is 1"),
        pytest.param("33%", 3, False, 0, id="33% of 3 rounded down is 0"),
        pytest.param("100%", 7, False, 7, id="100% is the total"),
        pytest.param("150%", 4, True, 6, id="over 100% is allowed (surge may exceed replicas)"),
        pytest.param("0%", 10, True, 0, id="0% is zero"),
        pytest.param(4, 10, False, 4, id="an int is taken as is"),
        pytest.param(12, 10, True, 12, id="an int is not capped by total"),
    ],
)
def test_resolve_int_or_percent(value, total, round_up, expected):
    """Ints pass through; percentages scale by total and round up for surge, down for unavailability."""
    assert resolve_int_or_percent(value, total, round_up) == expected


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("25", id="numeric string without percent sign"),
        pytest.param("abc", id="not a number"),
        pytest.param("-5%", id="negative percentage"),
        pytest.param("2.5%", id="fractional percentage"),
        pytest.param(" 25%", id="leading space"),
        pytest.param("%", id="bare percent sign"),
        pytest.param(-1, id="negative int"),
        pytest.param(2.5, id="float"),
        pytest.param(True, id="bool"),
        pytest.param(None, id="None"),
    ],
)
def test_resolve_int_or_percent_rejects_bad_values(value):
    """Anything but a non-negative int or a '<digits>%' string raises ValueError naming the value."""
    with pytest.raises(ValueError, match="value"):
        resolve_int_or_percent(value, 10, round_up=True)


@pytest.mark.parametrize(
    ("replicas", "max_surge", "max_unavailable", "expected"),
    [
        pytest.param(2, "0%", "1%", Fenceposts(0, 1), id="k8s: 2 desired, unavailable 1%, surge 0% -> old(-1) first"),
        pytest.param(1, "0%", "1%", Fenceposts(0, 1), id="k8s: 1 desired, unavailable 1%, surge 0% -> old(-1) first"),
        pytest.param(2, "1%", "25%", Fenceposts(1, 0), id="k8s: 2 desired, unavailable 25%, surge 1% -> new(+1) first"),
        pytest.param(1, "1%", "25%", Fenceposts(1, 0), id="k8s: 1 desired, unavailable 25%, surge 1% -> new(+1) first"),
        pytest.param(2, "1%", "0%", Fenceposts(1, 0), id="k8s: 2 desired, unavailable 0%, surge 1% -> new(+1) first"),
        pytest.param(10, "25%", "25%", Fenceposts(3, 2), id="10 replicas, 25%/25% -> surge 3, unavailable 2"),
        pytest.param(10, 0, "5%", Fenceposts(0, 1), id="percent rounding to zero on both sides forces unavailable 1"),
        pytest.param(10, 0, 0, Fenceposts(0, 1), id="explicit zeros also resolve to unavailable 1"),
    ],
)
def test_resolve_fenceposts(replicas, max_surge, max_unavailable, expected):
    """maxSurge rounds up, maxUnavailable rounds down, and both never resolve to zero."""
    assert resolve_fenceposts(max_surge, max_unavailable, replicas) == expected


def test_step_error_names_the_bad_surge_argument():
    """A malformed maxSurge passed to a step function is reported under its own argument name."""
    with pytest.raises(ValueError, match="max_surge"):
        canary_replica_step(10, 20, "lots", 0, 10, 10, 0, 0)
    with pytest.raises(ValueError, match="max_unavailable"):
        rolling_update_step(10, 1, "25", 0, 0, 10, 10)


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        pytest.param(lambda: canary_replica_targets(-1, 10, 0), "replicas", id="targets: negative replicas"),
        pytest.param(lambda: canary_replica_targets(10, 101, 0), "weight", id="targets: weight above 100"),
        pytest.param(lambda: canary_replica_targets(10, -1, 0), "weight", id="targets: negative weight"),
        pytest.param(lambda: canary_replica_targets(10, 60, 0, max_weight=50), "weight", id="targets: weight above max_weight"),
        pytest.param(lambda: canary_replica_targets(10, 0, 0, max_weight=0), "max_weight", id="targets: max_weight 0"),
        pytest.param(lambda: canary_replica_targets(10, 10, -1), "max_surge", id="targets: negative surge"),
        pytest.param(lambda: canary_replica_step(10, 10, 1, 1, -1, 0, 0, 0), "stable_spec", id="step: negative stable spec"),
        pytest.param(lambda: canary_replica_step(10, 10, 1, 1, 10, 10, 0, -2), "canary_available",
                     id="step: negative canary available"),
        pytest.param(lambda: canary_replica_step(10, 200, 1, 1, 10, 10, 0, 0), "weight", id="step: weight out of range"),
        pytest.param(lambda: rolling_update_step(10, 1, 1, 0, 0, -3, 0), "old_spec", id="rolling: negative old spec"),
        pytest.param(lambda: effective_canary_weight(-1, 3), "canary_available", id="effective: negative canary"),
        pytest.param(lambda: canary_replica_targets(10, True, 0), "weight", id="targets: a bool weight"),
        pytest.param(lambda: canary_replica_targets(10, 10.0, 0), "weight", id="targets: a float weight"),
        pytest.param(lambda: canary_replica_targets(10, 10, 0, max_weight=True), "max_weight",
                     id="targets: a bool max_weight"),
        pytest.param(lambda: canary_replica_targets(10, 10, 0, max_weight=100.0), "max_weight",
                     id="targets: a float max_weight"),
        pytest.param(lambda: canary_replica_targets(True, 10, 0), "replicas", id="targets: bool replicas"),
        pytest.param(lambda: canary_replica_targets(10.0, 10, 0), "replicas", id="targets: float replicas"),
        pytest.param(lambda: resolve_int_or_percent("25%", -1, True), "total", id="percent: negative total"),
        pytest.param(lambda: resolve_fenceposts(True, 1, 10), "max_surge", id="fenceposts: a bool surge"),
        pytest.param(lambda: resolve_fenceposts(-1, 1, 10), "max_surge", id="fenceposts: a negative surge"),
        pytest.param(lambda: resolve_fenceposts(1, 1.5, 10), "max_unavailable", id="fenceposts: a float"),
    ],
)
def test_impossible_input_raises_value_error_naming_the_argument(call, argument):
    """Negative counts and out-of-range weights raise ValueError whose message names the argument."""
    with pytest.raises(ValueError, match=argument):
        call()


def test_counts_are_frozen_and_unpack_as_pairs():
    """ReplicaCounts and RollingCounts are immutable and unpack as (canary, stable) / (new, old)."""
    canary, stable = canary_replica_targets(10, 20, 1)
    assert (canary, stable) == (2, 8)
    new, old = RollingCounts(3, 7)
    assert (new, old) == (3, 7)
    with pytest.raises(dataclasses.FrozenInstanceError):
        ReplicaCounts(1, 2).canary = 3  # type: ignore[misc]


# --------------------------------------------------------------------------- effective weight


@pytest.mark.parametrize(
    ("canary", "stable", "expected"),
    [
        pytest.param(1, 9, 10.0, id="1 of 10 pods is 10%"),
        pytest.param(1, 10, 100 / 11, id="5% step on 10 replicas with surge really serves 9.09%"),
        pytest.param(3, 8, 300 / 11, id="24% step on 10 replicas with surge really serves 27.3%"),
        pytest.param(0, 0, 0.0, id="no available pods serves nothing"),
        pytest.param(4, 0, 100.0, id="canary only"),
    ],
)
def test_effective_canary_weight(canary, stable, expected):
    """The canary's real traffic share is its fraction of available pods."""
    assert effective_canary_weight(canary, stable) == pytest.approx(expected)


# --------------------------------------------------------------------------- rolling update

# k8s TestDeploymentController_reconcileNewReplicaSet (maxUnavailable 0; pods healthy).
NEW_RS_ROWS = [
    pytest.param(10, 0, 10, 0, 0, id="k8s: surge 0 -> should not scale up"),
    pytest.param(10, 2, 10, 0, 2, id="k8s: surge 2, old 10 -> new 2"),
    pytest.param(10, 2, 5, 0, 7, id="k8s: surge 2, old 5 -> new 7"),
    pytest.param(10, 2, 10, 2, 2, id="k8s: surge 2 already used -> no scale up"),
    pytest.param(10, 2, 2, 11, 10, id="k8s: new above replicas -> scaled down to replicas"),
]


@pytest.mark.parametrize(("replicas", "surge", "old", "new", "expected_new"), NEW_RS_ROWS)
def test_rolling_new_replica_set_matches_k8s(replicas, surge, old, new, expected_new):
    """The new ReplicaSet grows to at most replicas + maxSurge pods in total, and never above replicas."""
    assert rolling_update_step(replicas, surge, 0, new, new, old, old).new == expected_new


# k8s TestDeploymentController_reconcileOldReplicaSets (maxSurge 0) and
# TestDeploymentController_scaleDownOldReplicaSetsForRollingUpdate (no new RS). Expected old counts
# are those of a whole sync, which runs cleanupUnhealthyReplicas before the availability-bound scale-down.
OLD_RS_ROWS = [
    pytest.param(10, 0, 10, 10, 0, 0, 9, id="k8s reconcileOld: unavailable 0 (fencepost 1) -> old 9"),
    pytest.param(10, 2, 10, 10, 0, 0, 8, id="k8s reconcileOld: unavailable 2 -> old 8"),
    pytest.param(10, 2, 10, 8, 0, 0, 8, id="k8s reconcileOld: 2 unhealthy old pods cleaned up -> old 8"),
    pytest.param(10, 2, 10, 9, 0, 0, 8, id="k8s reconcileOld: 1 unhealthy cleaned and 1 ready scaled down -> old 8"),
    pytest.param(10, 2, 8, 8, 2, 0, 8, id="k8s reconcileOld: unavailable new pods block further old scale-down"),
    pytest.param(10, 0, 10, 10, 0, 0, 9, id="k8s scaleDownOld: unavailable 0 -> old 9"),
    pytest.param(10, 2, 10, 10, 0, 0, 8, id="k8s scaleDownOld: unavailable 2 -> old 8"),
    pytest.param(10, 2, 10, 8, 0, 0, 8, id="k8s scaleDownOld: 8 ready is at the floor; the sync's cleanup still drops 2"),
    pytest.param(10, 2, 0, 0, 10, 10, 0, id="k8s scaleDownOld: old already at 0, nothing left to scale down"),
    pytest.param(10, 2, 10, 1, 0, 0, 8, id="k8s scaleDownOld: 1 ready, below floor; cleanup drops 2 unhealthy"),
]


@pytest.mark.parametrize(("replicas", "unavailable", "old_spec", "old_available", "new_spec", "new_available",
                          "expected_old"), OLD_RS_ROWS)
def test_rolling_old_replica_set_matches_k8s(replicas, unavailable, old_spec, old_available, new_spec,
                                             new_available, expected_old):
    """Old pods go unhealthy-first and only while availability stays above replicas - maxUnavailable."""
    result = rolling_update_step(replicas, 0, unavailable, new_spec, new_available, old_spec, old_available)
    assert result == RollingCounts(new_spec, expected_old)


ROLLING_25_ROWS = [
    pytest.param(0, 0, 10, 10, (3, 10), id="start: surge 3 new pods (13 total)"),
    pytest.param(3, 0, 10, 10, (3, 8), id="new pods not ready: only 2 old may go (floor 8)"),
    pytest.param(3, 3, 10, 10, (3, 5), id="new pods ready: 13 available, drop 5 old"),
    pytest.param(3, 3, 5, 5, (8, 5), id="refill to 13 with new pods"),
    pytest.param(8, 8, 5, 5, (8, 0), id="8 new ready: drop the last 5 old"),
    pytest.param(8, 8, 0, 0, (10, 0), id="top up new to replicas"),
    pytest.param(10, 10, 0, 0, (10, 0), id="done: fixed point"),
]


@pytest.mark.parametrize(("new_spec", "new_available", "old_spec", "old_available", "expected"), ROLLING_25_ROWS)
def test_rolling_update_10_replicas_25_percent(new_spec, new_available, old_spec, old_available, expected):
    """A 10-replica Deployment with maxSurge 25% and maxUnavailable 25% moves 3 up / up to 5 down per sync."""
    result = rolling_update_step(10, "25%", "25%", new_spec, new_available, old_spec, old_available)
    assert tuple(result) == expected


def test_rolling_skips_scale_down_when_old_reports_more_available_than_spec():
    """As in k8s, an old RS with more available pods than spec makes cleanup fail and nothing is scaled down."""
    assert rolling_update_step(10, 0, 2, 10, 10, 2, 3) == RollingCounts(10, 2)


# --------------------------------------------------------------------------- properties

int_or_percent = st.one_of(st.integers(0, 4), st.integers(0, 100).map(lambda p: f"{p}%"))


@given(replicas=st.integers(0, 200), max_surge=st.integers(0, 10), max_weight=st.sampled_from([100, 1000, 7]))
def test_targets_at_extreme_weights(replicas, max_surge, max_weight):
    """Weight 0 targets (0, replicas) and weight max_weight targets (replicas, 0), whatever the surge."""
    assert canary_replica_targets(replicas, 0, max_surge, max_weight) == ReplicaCounts(0, replicas)
    assert canary_replica_targets(replicas, max_weight, max_surge, max_weight) == ReplicaCounts(replicas, 0)


@given(replicas=st.integers(0, 200), weight=st.integers(0, 100), max_surge=st.integers(0, 10))
def test_targets_total_is_replicas_or_one_more_only_with_surge(replicas, weight, max_surge):
    """Targets sum to replicas, or replicas + 1 when maxSurge > 0; never more, and never over maxSurge."""
    counts = canary_replica_targets(replicas, weight, max_surge)
    assert counts.canary >= 0 and counts.stable >= 0
    if replicas == 0:
        assert counts.total == 0
    elif max_surge == 0:
        assert counts.total == replicas
    else:
        assert counts.total in (replicas, replicas + 1)


@given(replicas=st.integers(1, 200), weight=st.integers(1, 99), max_surge=st.integers(0, 10))
def test_targets_keep_both_versions_for_partial_weights(replicas, weight, max_surge):
    """A weight strictly between 0 and 100 gets at least one pod of each version, except in Argo's fallbacks."""
    counts = canary_replica_targets(replicas, weight, max_surge)
    single_without_surge = replicas == 1 and max_surge == 0
    # The no-candidate fallback (see QUIRK_ROWS) only happens without surge when r*w/100 is r - 0.5.
    no_candidate = max_surge == 0 and replicas * weight == 100 * replicas - 50
    if single_without_surge:
        assert counts.total == 1
    elif no_candidate:
        assert counts == ReplicaCounts(0, replicas)
    else:
        assert counts.canary >= 1 and counts.stable >= 1


step_inputs = st.fixed_dictionaries(
    {
        "replicas": st.integers(0, 20),
        "weight": st.integers(0, 100),
        "max_surge": int_or_percent,
        "max_unavailable": int_or_percent,
        "stable_spec": st.integers(0, 25),
        "stable_available": st.integers(0, 25),
        "canary_spec": st.integers(0, 25),
        "canary_available": st.integers(0, 25),
    }
)


@settings(max_examples=500)
@given(step_inputs)
def test_step_never_raises_total_spec_above_replicas_plus_surge(inputs):
    """A step only adds pods up to replicas + maxSurge; if already above, it never grows the total."""
    surge = resolve_fenceposts(inputs["max_surge"], inputs["max_unavailable"], inputs["replicas"]).surge
    before = inputs["stable_spec"] + inputs["canary_spec"]
    after = canary_replica_step(**inputs)
    assert after.canary >= 0 and after.stable >= 0
    assert after.total <= max(before, inputs["replicas"] + surge)


@settings(max_examples=500)
@given(step_inputs)
def test_step_never_pushes_availability_below_the_floor(inputs):
    """Removing pods never leaves fewer than replicas - maxUnavailable available, nor fewer than before if already under."""
    # Scale-down removes not-ready pods first, so an RS keeps min(available, new spec) ready pods.
    replicas = inputs["replicas"]
    fence = resolve_fenceposts(inputs["max_surge"], inputs["max_unavailable"], replicas)
    floor = replicas - (0 if replicas == 0 else min(fence.unavailable, replicas))
    before = min(inputs["stable_available"], inputs["stable_spec"]) + min(inputs["canary_available"], inputs["canary_spec"])
    after_counts = canary_replica_step(**inputs)
    after = min(inputs["stable_available"], after_counts.stable) + min(inputs["canary_available"], after_counts.canary)
    assert after >= min(before, floor)


@settings(max_examples=200)
@given(
    replicas=st.integers(0, 15),
    weight=st.integers(0, 100),
    max_surge=int_or_percent,
    max_unavailable=int_or_percent,
    stable_start=st.integers(0, 17),
    canary_start=st.integers(0, 17),
)
def test_step_converges_to_targets_when_pods_become_ready(replicas, weight, max_surge, max_unavailable,
                                                          stable_start, canary_start):
    """Repeating the step while every pod becomes ready reaches canary_replica_targets and stays there."""
    surge = resolve_fenceposts(max_surge, max_unavailable, replicas).surge
    target = canary_replica_targets(replicas, weight, surge)
    canary, stable = canary_start, stable_start
    for _ in range(4 * (replicas + 17) + 10):
        nxt = canary_replica_step(replicas, weight, max_surge, max_unavailable, stable, stable, canary, canary)
        if tuple(nxt) == (canary, stable):
            break
        canary, stable = nxt
    assert ReplicaCounts(canary, stable) == target


rolling_inputs = st.integers(0, 20).flatmap(
    lambda replicas: st.fixed_dictionaries(
        {
            "replicas": st.just(replicas),
            "max_surge": int_or_percent,
            "max_unavailable": int_or_percent,
            "new_spec": st.integers(0, 25),
            "old_spec": st.integers(0, 25),
            "new_missing": st.integers(0, 25),
            "old_missing": st.integers(0, 25),
        }
    )
)


def _rolling_args(inputs: dict) -> dict:
    # Keep available <= spec: k8s' arithmetic assumes an RS never reports more ready pods than it owns.
    return {
        "replicas": inputs["replicas"],
        "max_surge": inputs["max_surge"],
        "max_unavailable": inputs["max_unavailable"],
        "new_spec": inputs["new_spec"],
        "new_available": max(0, inputs["new_spec"] - inputs["new_missing"]),
        "old_spec": inputs["old_spec"],
        "old_available": max(0, inputs["old_spec"] - inputs["old_missing"]),
    }


@settings(max_examples=500)
@given(rolling_inputs)
def test_rolling_step_respects_surge_and_availability(inputs):
    """A sync changes one ReplicaSet, never grows past replicas + maxSurge, never drops under the floor."""
    args = _rolling_args(inputs)
    replicas = args["replicas"]
    fence = resolve_fenceposts(args["max_surge"], args["max_unavailable"], replicas)
    floor = replicas - (0 if replicas == 0 else min(fence.unavailable, replicas))
    result = rolling_update_step(**args)
    assert result.new >= 0 and result.old >= 0
    assert result.new == args["new_spec"] or result.old == args["old_spec"]
    assert result.total <= max(args["new_spec"] + args["old_spec"], replicas + fence.surge)
    before = args["new_available"] + args["old_available"]
    after = min(args["new_available"], result.new) + min(args["old_available"], result.old)
    assert after >= min(before, floor)


@given(replicas=st.integers(0, 40), max_surge=int_or_percent, max_unavailable=int_or_percent)
def test_rolling_update_completes_when_pods_become_ready(replicas, max_surge, max_unavailable):
    """From all-old, repeated syncs with ready pods end at (replicas, 0)."""
    new, old = 0, replicas
    for _ in range(4 * replicas + 10):
        nxt = rolling_update_step(replicas, max_surge, max_unavailable, new, new, old, old)
        if tuple(nxt) == (new, old):
            break
        new, old = nxt
    assert (new, old) == (replicas, 0)


@given(replicas=st.integers(0, 500), max_surge=int_or_percent, max_unavailable=int_or_percent)
def test_fenceposts_never_both_zero(replicas, max_surge, max_unavailable):
    """Resolved maxSurge and maxUnavailable are never both zero, so a rollout can always move."""
    surge, unavailable = resolve_fenceposts(max_surge, max_unavailable, replicas)
    assert surge >= 0 and unavailable >= 0
    assert surge + unavailable >= 1


@given(percent=st.integers(0, 300), total=st.integers(0, 1000))
def test_percent_rounding_up_and_down_differ_by_at_most_one(percent, total):
    """Rounding a percentage up (surge) is the rounded-down value (unavailable) or one more."""
    up = resolve_int_or_percent(f"{percent}%", total, round_up=True)
    down = resolve_int_or_percent(f"{percent}%", total, round_up=False)
    assert down <= up <= down + 1
    assert down * 100 <= percent * total <= up * 100


@given(canary=st.integers(0, 1000), stable=st.integers(0, 1000))
def test_effective_weight_is_a_percentage(canary, stable):
    """The effective weight lies in 0..100 and is 100 minus the stable's share."""
    weight = effective_canary_weight(canary, stable)
    assert 0.0 <= weight <= 100.0
    if canary + stable:
        assert weight == pytest.approx(100.0 - effective_canary_weight(stable, canary))
