"""Calibration: what a live run measured about its pods and router, next to what the
scenario assumes, and the scenario re-fitted to the measurements.

Each live run measures its pods' creation-to-ready time and, on the local backend, the
router's switch delay (kube-proxy has none to measure: no stats API, and a Service change
reaches its rules asynchronously); both are converted to scenario seconds and recorded
next to what the scenario assumes.
``compute_calibrated_scenario`` replaces the scenario's pod start time with a lognormal
fitted to the measurements, for a second simulation the live values are judged against.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rolloutlab.errors import ValidateError
from rolloutlab.scenarios.schema import FixedDistribution, LognormalDistribution, Scenario
from rolloutlab.strategies import Role


@dataclass(frozen=True)
class PodTimingSummary:
    """Median and 10th/90th percentiles of pod creation-to-ready times (scenario seconds)."""

    n: int
    median_s: float | None
    p10_s: float | None
    p90_s: float | None

    @classmethod
    def of(cls, values: Sequence[float]) -> "PodTimingSummary":
        x = np.asarray(values, dtype=float)
        if x.size == 0:
            return cls(0, None, None, None)
        return cls(int(x.size), float(np.median(x)), float(np.quantile(x, 0.1)), float(np.quantile(x, 0.9)))


def compute_assumed_pod_ready(scenario: Scenario, pods: int = 400, seed: int = 0) -> list[float]:
    """Creation-to-ready times (scenario seconds) of ``pods`` new pods as the simulator
    draws them (``sim.pods.Cluster``, the model itself, not a copy of its formula)."""
    from rolloutlab.sim.pods import Cluster

    cluster = Cluster(scenario.service_under_test, np.random.default_rng(seed), lambda _t: None)
    cluster.scale(Role.CANARY, pods, 0.0)
    return [p.ready_at - p.created_at for p in cluster.pods[Role.CANARY] if p.ready_at is not None]


def compute_created_to_ready(events: Iterable[Any]) -> list[float]:
    """Per pod, wall seconds from its creation (the ReplicaSet's) to its first readiness:
    the same span as the simulator's pod start. The events are the local backend's, or a
    Kubernetes pod watch's (``live.kube_events``: kind ``created`` when the watch first saw
    the pod, ``ready`` when its Ready condition first turned True); a pod with a moment
    marked ``late`` (seen just after a blind spot of the watch) is left out, not guessed."""
    created: dict[str, float] = {}
    out = []
    for event in events:
        if event.kind == "created" and event.pod:
            if event.detail == "late":
                created.pop(event.pod, None)
            else:
                created[event.pod] = event.at
        elif event.kind == "ready" and event.pod in created and event.detail != "again":
            at = created.pop(event.pod)
            if event.detail != "late":
                out.append(event.at - at)
    return out


def compute_calibrated_scenario(scenario: Scenario, ready_s: Sequence[float]) -> tuple[Scenario, dict[str, Any]]:
    """The scenario with its pod start time replaced by the measured one: scheduling 0 (the
    measurement includes it) and ``start_delay`` a lognormal fitted (median = geometric mean,
    sigma = sd of the logs) to the measured creation-to-ready times minus the readiness
    probe's part ((success_threshold - 1/2) periods: the probes that find the app up)."""
    timing = scenario.service_under_test.pod_timing
    probe = timing.readiness
    up = np.maximum(np.asarray(ready_s, dtype=float) - (probe.success_threshold - 0.5) * probe.period, 0.05)
    if up.size == 0:
        raise ValidateError("no pod start was measured: nothing to calibrate with")
    logs = np.log(up)
    sigma = float(logs.std(ddof=1)) if up.size > 1 else 0.0
    median = float(np.exp(logs.mean()))
    start = (LognormalDistribution(median=median, sigma=sigma) if sigma > 1e-3 else FixedDistribution(value=median))
    data = scenario.model_dump(by_alias=True)
    for service in data["services"]:
        if service["name"] == scenario.service_under_test.name:
            service["pod_timing"]["schedule_delay"] = {"kind": "fixed", "value": 0.0}
            service["pod_timing"]["start_delay"] = start.model_dump(by_alias=True, exclude_none=True)
    fitted = {"schedule_delay": {"kind": "fixed", "value": 0.0},
              "start_delay": start.model_dump(by_alias=True, exclude_none=True), "from_pods": int(up.size)}
    return Scenario.model_validate(data), fitted



__all__ = ["PodTimingSummary", "compute_assumed_pod_ready", "compute_calibrated_scenario", "compute_created_to_ready"]
