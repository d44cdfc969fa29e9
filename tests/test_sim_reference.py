"""The fast mode agrees with the per-request reference world (``fidelity="request"``).

The reference generates every request as its own event; the fast mode draws the traffic
between two state changes in one go. Everything else (pods, controller, alerts, people)
is shared code, so where they disagree, the traffic accounting is to blame.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from rolloutlab.results.statistics import (
    Figure,
    compute_mean_bootstrap_interval,
    compute_mean_t_interval,
    compute_quantile_interval,
    compute_wilson_interval,
)
from rolloutlab.scenarios.schema import Scenario
from rolloutlab.sim.montecarlo import run_many
from rolloutlab.sim.run import simulate
from rolloutlab.strategies import load_strategy

RUNS = 60
SEED = 20240917
STRATEGIES = ("canary", "rolling")

SMALL = Scenario.model_validate({
    "name": "reference-check",
    "duration": "8m",
    "services": [{
        "name": "web", "replicas": 5, "capacity_rps": 50, "baseline_error_rate": 0.001,
        "pod_timing": {"schedule_delay": 1, "start_delay": {"kind": "uniform", "low": 5, "high": 15},
                       "readiness": {"period": 5, "success_threshold": 1}},
    }],
    "traffic": {"rps": 15, "preview_rps": 2},
    "release": {"defect_probability": 0.5, "defects": [{"kind": "error_rate", "error_rate": 0.05}]},
    "monitoring": {"alerts": [{"name": "errors", "metric": "error_rate", "threshold": 0.03, "for": 30,
                               "window": 60}]},
    "response": {"response_time": {"kind": "lognormal", "median": 90, "p90": 180}, "rollback_duration": 30},
})
"""One service of 5 pods at 15 rps for 8 minutes; half the releases fail 5% of their
requests; an error-rate alert pages a human who answers in about 1.5 minutes. Small
enough for the reference (about 7,000 requests a run), and the canary's analysis and
the rolling update's alert both see few enough requests that noise matters."""


@pytest.fixture(scope="module")
def tables() -> dict[str, pd.DataFrame]:
    """Runs 0..RUNS-1 of seed SEED of both strategies in both fidelities (same seeds)."""
    specs = [load_strategy(name) for name in STRATEGIES]
    return {
        "fast": run_many(SMALL, specs, RUNS, SEED, executor="serial", progress=False),
        "request": run_many(SMALL, specs, RUNS, SEED, executor="process", workers=2, fidelity="request",
                            progress=False),
    }


def change_failure_rate(rows: pd.DataFrame) -> Figure:
    return compute_wilson_interval(int(rows["change_failed"].sum()), len(rows))


def mttr_median(rows: pd.DataFrame) -> Figure:
    return compute_quantile_interval(rows["time_to_restore"].to_numpy(dtype=float), 0.5)


def failed_requests_mean(rows: pd.DataFrame) -> Figure:
    return compute_mean_bootstrap_interval(rows["failed_requests"].to_numpy(dtype=float))


def requests_mean(rows: pd.DataFrame) -> Figure:
    return compute_mean_t_interval(rows["requests"].to_numpy(dtype=float))


FIGURES: dict[str, Callable[[pd.DataFrame], Figure]] = {
    "change-failure-rate": change_failure_rate,
    "mttr-median": mttr_median,
    "failed-requests-mean": failed_requests_mean,
    "requests-mean": requests_mean,
}


def inside(value: float, figure: Figure) -> bool:
    assert figure.low is not None and figure.high is not None
    return figure.low - 1e-9 <= value <= figure.high + 1e-9


@pytest.mark.parametrize("figure", FIGURES, ids=list(FIGURES))
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_fast_mode_agrees_with_the_per_request_reference(tables, strategy, figure):
    """Each mode's estimate lies inside the other mode's 95% interval.

    Why this criterion: both modes run the same seeds, and a run's random streams are
    split by purpose, so the release, its defect, pod timings and the human's response
    are the same in both; only the traffic draws differ. The two estimates are therefore
    positively correlated and a correct fast mode lands well inside the reference's
    interval, while a systematic accounting error (a wrong traffic share, an interval
    lost or counted twice, a stale failure probability) moves it out. Mutual containment
    is stricter than "the intervals overlap", which would let two 95% intervals of equal
    width disagree by almost twice their half-width. With fixed seeds the test is
    deterministic, so the stricter criterion costs no flakiness.

    Change-failure rate: Wilson; MTTR median: order-statistic interval (needs >= 6
    restored runs, asserted); failed requests: BCa bootstrap mean; requests: t mean.
    """
    compute = FIGURES[figure]
    fast = compute(tables["fast"][tables["fast"]["strategy"] == strategy])
    reference = compute(tables["request"][tables["request"]["strategy"] == strategy])
    for f in (fast, reference):
        assert f.value is not None and f.low is not None, f"{figure}: too few values for an interval (n={f.n})"
    if figure == "mttr-median":
        assert fast.n >= 6 and reference.n >= 6
    assert inside(fast.value, reference), f"fast {fast} outside the reference's interval {reference}"
    assert inside(reference.value, fast), f"reference {reference} outside the fast mode's interval {fast}"


def test_both_modes_replay_the_same_releases(tables):
    """The seeds give both modes the same releases (common random numbers): the defect
    column matches run by run, which is what makes the comparison above paired."""
    fast, reference = tables["fast"], tables["request"]
    assert list(fast["defect"]) == list(reference["defect"])
    assert 0 < (fast["defect"] != "none").sum() < len(fast)


def same_row(a: dict[str, Any], b: dict[str, Any]) -> bool:
    def same(x: Any, y: Any) -> bool:
        return x == y or (isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y))

    return list(a) == list(b) and all(same(a[k], b[k]) for k in a)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_the_reference_gives_the_same_row_for_the_same_seed(strategy):
    """The per-request reference is reproducible: the same seed gives the same row."""
    spec = load_strategy(strategy)
    run = 2  # the first run of SEED whose release carries the defect

    def replay():
        return simulate(SMALL, spec, run, np.random.SeedSequence(SEED, spawn_key=(run,)), "request", timeline=True)

    first, second = replay(), replay()
    assert first.row["defect"] != "none"
    assert same_row(first.row, second.row)
    assert first.timeline == second.timeline


# --------------------------------------------------------------------------- known bug

SLOWED = Scenario.model_validate({
    "name": "slowed",
    "duration": "5m",
    "services": [{"name": "web", "replicas": 4, "capacity_rps": 1000, "baseline_error_rate": 0,
                  "pod_timing": {"schedule_delay": 0, "start_delay": 10,
                                 "readiness": {"period": 1, "success_threshold": 1}}}],
    "traffic": {"rps": 20, "preview_rps": 0},
    "release": {"defect_probability": 0.0},
    "faults": [{"kind": "latency_injection", "at": 100, "service": "web", "added_ms": 2000, "duration": 100}],
    "monitoring": {"alerts": [{"name": "slow", "metric": "latency_p99", "threshold": 1000, "window": 30}]},
    "response": {"response_time": "10m"},
})
"""A healthy release rolled out in seconds; from 100 s to 200 s every response takes 2 s
more, which a p99 > 1 s alert must notice."""


def test_fast_mode_pages_on_injected_latency():
    """In the fast mode, 2 s of injected latency fires the p99 alert within a window."""
    row = simulate(SLOWED, load_strategy("rolling"), 0, np.random.SeedSequence(3)).row
    assert row["detected_by"] == "alert" and 100 <= row["detected_at"] <= 100 + 30 + 15


def test_the_reference_pages_on_injected_latency_too():
    """The per-request reference sees injected latency as the fast mode does."""
    row = simulate(SLOWED, load_strategy("rolling"), 0, np.random.SeedSequence(3), "request").row
    assert row["detected_by"] == "alert" and 100 <= row["detected_at"] <= 100 + 30 + 15
