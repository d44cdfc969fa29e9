"""A canary's baseline deployment, live: how big it is, how much traffic it takes, and what
its pods counted.

Kayenta judges a canary against a *baseline*: fresh pods of the old version, as many as the
canary's, taking as much traffic, started with it and removed when the rollout ends
(Spinnaker's ``kayentaCanary`` deploys both; ``canary.baseline`` in our spec). The
controller (``strategies/``) emits no action for it: which pods exist is a rule the runner
keeps, written here once and used by the local backend, the same rule the simulator counts
(``sim/accounting.py``):

    baseline replicas   the canary's desired replicas while the rollout is neither
                        completed nor aborted; 0 before the canary has pods and after the end
    baseline weight     (with a traffic router) min(canary weight, 100 - canary weight),
                        taken from the stable's share: as much as the canary while the
                        stable has that much to give (the simulator's min(canary share,
                        stable share)); without a router the baseline's pods join the
                        Service's endpoints like any pod and take traffic by their number

What analysis reads: the baseline pods' own ``/metrics`` (``BaselineScrape``: requests,
5xx, the latency histogram, folded across container restarts as Prometheus' ``rate()``
reads a reset), reported as ``Observation.baseline`` through ``BaselineMetrics``. The
canary's counters come from the run's usual source (the load generator's per-version
answers by default): error counts are the same at either place; latency is measured at
the pod for the baseline and at the user for the canary, so a path of a few milliseconds
(HAProxy and the client on this machine) is on the canary's side.
"""

from __future__ import annotations

from collections.abc import Mapping

from rolloutlab.strategies import Counters, RolloutStatus, StrategySpec

BASELINE = "baseline"  # the baseline's pods' group: their names, router slots and backend (be_baseline)


def has_baseline(spec: StrategySpec | None) -> bool:
    """Whether the rollout runs a baseline deployment beside its canary."""
    canary = None if spec is None else spec.strategy.canary
    return canary is not None and canary.baseline


def compute_baseline_replicas(status: RolloutStatus | None, canary_replicas: int) -> int:
    """Baseline pods wanted: the canary's desired replicas while the rollout runs, else 0.

    >>> compute_baseline_replicas(RolloutStatus(started_at=0.0), 2)
    2
    >>> compute_baseline_replicas(RolloutStatus(started_at=0.0, completed=True), 2)
    0
    """
    if status is None or status.completed or status.aborted:
        return 0
    return max(0, canary_replicas)


def compute_baseline_weight(canary_weight: int, baseline_replicas: int) -> int:
    """The baseline's traffic weight (percent) beside a canary at ``canary_weight``, taken
    from the stable; 0 while no baseline pod is wanted.

    >>> compute_baseline_weight(20, 1), compute_baseline_weight(60, 3), compute_baseline_weight(20, 0)
    (20, 40, 0)
    """
    if baseline_replicas <= 0:
        return 0
    return max(0, min(canary_weight, 100 - canary_weight))


class BaselineScrape:
    """Cumulative counters of the baseline's pods, from each one's ``/metrics`` (the local
    backend's ``pods()`` says which are the baseline's). A pod whose scrape misses keeps its
    last counters, a pod gone keeps what it counted: the total only grows."""

    def __init__(self, backend, timeout_s: float = 0.5) -> None:
        # imported here: live.runner imports this module, and the scrape's modules import live.runner
        from rolloutlab.live.technique_metrics import LocalPodScrape

        self.pods = LocalPodScrape(backend, "demo", lambda pod: pod.baseline, timeout_s)

    def __call__(self) -> Counters:
        from rolloutlab.live.kube_metrics import sum_counters

        # every version its pods answered as (the old one) is the baseline's
        return sum_counters([{None: c} for c in self.pods().values()]).get(None, Counters())


class BaselineMetrics:
    """A ``MetricsSource`` that adds ``baseline_counters()`` (the runner reports them as
    ``Observation.baseline``) to another source, which keeps giving the versions' counters
    (and a flag's, if it has them)."""

    def __init__(self, inner, baseline: BaselineScrape) -> None:
        self.inner, self.baseline = inner, baseline
        if hasattr(inner, "flag_counters"):
            self.flag_counters = inner.flag_counters

    def counters(self) -> Mapping[str | None, Counters]:
        return self.inner.counters()

    def baseline_counters(self) -> Counters:
        return self.baseline()


__all__ = ["BASELINE", "BaselineMetrics", "BaselineScrape", "compute_baseline_replicas", "compute_baseline_weight",
           "has_baseline"]
