"""The replay itself: the real controller (``strategies.reconcile``) stepped through a
release's recorded traffic, measurement by measurement.

Time starts at the release's start and moves forward to whichever comes first: the next
recorded sample time (``step`` apart) or the moment the controller asked to be called
again (``status.requeue_at``: a pause ending, a measurement due). At each moment the
observation holds the recorded cumulative counters of the stable and the canary version,
exactly what a live runner would report (``strategies/observation.py``), so every
analysis measurement judges the recorded window between two of its own due times.

A metric with a PromQL query of its own (``Metric.query``: Argo's
``provider.prometheus.query``, Flagger's ``MetricTemplate``), replayed from a Prometheus
server, is measured by that query, filled in (``strategies.promql.render_query``, with
``{{ interval }}`` = the metric's interval) and evaluated as of the measurement's moment
(an instant query with ``time=``): ``Observation.queried``, judged by the metric's own
conditions as a live run with Prometheus judges it. Other metrics, and every metric of a
replay from a file, are judged on the recorded counters' window.

Pods are assumed to start at once: the recording holds traffic, not pod start times, so
the replay answers "what would the analysis have decided", not "how long would scaling
have taken". The controller is called until its scale requests are met, at the same moment.

Failed user requests (``count_failures``) are counted on the strategy's split, not the
recorded one: over each interval, every recorded request (both versions together) goes to
the canary with the strategy's effective weight at the interval's start and fails with the
error rate that version had in the recording over that interval. A strategy that aborts
earlier sends fewer requests to a bad canary, and so counts fewer failures. An interval
where the recording has no canary traffic uses the canary's latest recorded error rate
(before any: the stable's), and the notes say how many intervals needed that.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from rolloutlab.errors import InputError
from rolloutlab.live.prometheus_metrics import QueryRecord
from rolloutlab.strategies.actions import Event, ScaleVersion
from rolloutlab.strategies.analysis import measurements_due
from rolloutlab.strategies.analysis_spec import Metric
from rolloutlab.strategies.judges.judgement import format_value
from rolloutlab.strategies.observation import Observation, Role, VersionObservation
from rolloutlab.strategies.reconcile import compute_declared_weight, compute_effective_weight, reconcile
from rolloutlab.strategies.spec import StrategyKind, StrategySpec
from rolloutlab.strategies.status import RolloutStatus
from rolloutlab.workflows.replay.recorded import RecordedHistory

MAX_SETTLE_CALLS = 100
"""Reconcile calls at one moment while pods follow its scale requests (each call moves at
most maxSurge pods; 100 is far above any strategy's needs, and a loop past it is a bug)."""

QueryAt = Callable[[Metric, float], QueryRecord]
"""Evaluates a metric's own PromQL query as of a Unix time (an instant query with ``time=``)."""


@dataclass(frozen=True)
class ReplayTick:
    """One moment the controller was called: what it declared and what was recorded."""

    at: float
    step_index: int
    phase: str
    declared_weight: float  # the canary share the strategy asks for, percent
    effective_weight: float  # the share its pods or router would deliver, percent
    recorded_share: float | None  # the canary's share of recorded requests since the previous tick, percent
    canary_error_rate: float | None  # recorded, since the previous tick
    stable_error_rate: float | None
    events: tuple[Event, ...] = ()


@dataclass(frozen=True)
class ReplayMeasurement:
    """One analysis measurement the strategy would have taken."""

    at: float
    analysis: str
    metric: str
    phase: str
    value: float | None
    baseline_value: float | None
    message: str
    shown: tuple[str, str]  # the canary's and the stable's value as people read them (1.23%, 250ms)


@dataclass(frozen=True)
class FailureCount:
    """User requests that failed until the outcome, on the strategy's split."""

    requests: float  # recorded requests of both versions until the outcome
    failed: float  # failed on the strategy's split (see the module docstring)
    baseline_failed: float  # what the stable alone would have failed on the same requests
    recorded_failed: float  # what failed in the recording itself, same interval
    filled_intervals: int  # intervals without recorded canary traffic (error rate carried over)

    @property
    def release_failed(self) -> float:
        """Failures the release caused: the total minus what the stable would have failed."""
        return max(0.0, self.failed - self.baseline_failed)


@dataclass(frozen=True)
class ReplayResult:
    strategy: str
    source: str
    start: float
    end: float
    outcome: str  # promoted, aborted, or in_progress (neither before the data ended)
    outcome_at: float | None
    abort_reason: str
    abort_cause: str | None
    ticks: tuple[ReplayTick, ...]
    measurements: tuple[ReplayMeasurement, ...]
    failures: FailureCount
    status: RolloutStatus
    queries: tuple[QueryRecord, ...] = ()
    notes: tuple[str, ...] = field(default=())


@dataclass
class _Pods:
    """Pods that start at once: a version has exactly the replicas last asked for."""

    stable: int
    canary: int = 0

    def apply(self, actions) -> bool:
        changed = False
        for action in actions:
            if isinstance(action, ScaleVersion):
                now = self.stable if action.role is Role.STABLE else self.canary
                if now != action.replicas:
                    setattr(self, action.role.value, action.replicas)
                    changed = True
        return changed


def check_replayable(spec: StrategySpec) -> None:
    """Refuse, with the reason, a strategy whose analysis needs traffic a recording of two
    versions does not hold."""
    if spec.strategy.kind is StrategyKind.FEATURE_FLAG:
        raise InputError(spec.name, "a feature-flag release is analysed by flag answer (on vs off), which a "
                                    "recording split by version does not hold; replay a canary, blue-green or rolling "
                                    "strategy")
    canary = spec.strategy.canary
    if canary is not None and canary.baseline:
        raise InputError(spec.name, "canary.baseline compares the canary with a baseline deployment of its own, which "
                                    "the recording does not hold; replay the strategy without baseline")


def replay(spec: StrategySpec, history: RecordedHistory, start: float, end: float, step: float,
           query_at: QueryAt | None = None) -> ReplayResult:
    """Step the controller through ``history`` from ``start`` to ``end`` (Unix seconds)."""
    check_replayable(spec)
    metrics = {m.name: m for t in spec.analysis_templates for m in t.metrics}
    queries: list[QueryRecord] = []
    replicas = spec.require_replicas()
    pods = _Pods(stable=replicas)
    status = RolloutStatus()
    ticks: list[ReplayTick] = []
    grid = np.arange(start, end + step * 1e-9, step)
    t, previous = start, start
    while True:
        events: list[Event] = []
        # measurements due now were due before this moment's first call: ask once, for all calls
        queried = () if query_at is None else _ask_queries(metrics, status, t, query_at, queries)
        for _ in range(MAX_SETTLE_CALLS):
            obs = _observation(history, pods, t, queried)
            status, actions = reconcile(spec, status, obs)
            events += [a for a in actions if isinstance(a, Event)]
            if not pods.apply(actions):
                break
        else:
            raise RuntimeError(f"the controller kept scaling at {t:g}: pods never settled")  # a bug, not input
        obs = _observation(history, pods, t)
        ticks.append(_tick(spec, status, obs, history, previous, t, events))
        previous = t
        if status.completed or (status.aborted and status.restored_at is not None):
            break
        i = int(np.searchsorted(grid, t + 1e-9, side="right"))
        nxt = float(grid[i]) if i < len(grid) else math.inf
        if status.requeue_at is not None and t < status.requeue_at < nxt:
            nxt = float(status.requeue_at)
        if nxt > end:
            break
        t = nxt
    outcome = status.outcome
    outcome_at = status.completed_at if status.completed else status.aborted_at if status.aborted else None
    failures = count_failures(history, ticks, start, outcome_at if outcome_at is not None else ticks[-1].at)
    notes = list(_spec_notes(spec, metrics))
    if failures.filled_intervals:
        notes.append(f"{failures.filled_intervals} intervals had no recorded canary traffic; the canary's latest "
                     "recorded error rate was carried over (before any, the stable's)")
    return ReplayResult(spec.name, history.source, start, end, outcome, outcome_at, status.abort_reason,
                        None if status.abort_cause is None else status.abort_cause.value, tuple(ticks),
                        _measurements(status, metrics), failures, status, tuple(queries), tuple(notes))


def _spec_notes(spec: StrategySpec, metrics: dict[str, Metric]) -> tuple[str, ...]:
    """What a reader must know about this strategy's replay before trusting its figures."""
    notes = []
    if not metrics:
        notes.append(f"{spec.name} has no analysis: nothing recorded can change its decisions, and with pods "
                     "starting at once its steps pass as fast as its pauses allow")
    canary = spec.strategy.canary
    if canary is not None and any(step.route is not None for step in canary.steps):
        notes.append("header and mirror routes send requests to the canary beside its weight; the recording cannot "
                     "tell them apart, so failed requests count the weight only")
    return tuple(notes)


def _observation(history: RecordedHistory, pods: _Pods, t: float,
                 queried: tuple[tuple[str, float | None], ...] = ()) -> Observation:
    return Observation(
        now=t,
        stable=VersionObservation(pods.stable, pods.stable, pods.stable, history.stable.counters_at(t)),
        canary=VersionObservation(pods.canary, pods.canary, pods.canary, history.canary.counters_at(t)),
        queried=queried,
    )


def _ask_queries(metrics: dict[str, Metric], status: RolloutStatus, t: float, query_at: QueryAt,
                 record: list[QueryRecord]) -> tuple[tuple[str, float | None], ...]:
    """What each due threshold metric with a query of its own answers at ``t``
    (``Observation.queried``); metrics without one are judged on the counters."""
    out: dict[str, float | None] = {}
    for run in status.analyses:
        for name in measurements_due(run, t):
            metric = metrics.get(name)
            if name in out or metric is None or metric.query is None or metric.judge.kind != "threshold":
                continue
            answer = query_at(metric, t)
            record.append(answer)
            out[name] = answer.answer
    return tuple(out.items())


def _rate(errors: int, requests: int) -> float | None:
    return errors / requests if requests > 0 else None


def _tick(spec: StrategySpec, status: RolloutStatus, obs: Observation, history: RecordedHistory, previous: float,
          t: float, events: list[Event]) -> ReplayTick:
    s0, s1 = history.stable.counters_at(previous), obs.stable.counters
    c0, c1 = history.canary.counters_at(previous), obs.canary.counters
    ds, dc = max(0, s1.requests - s0.requests), max(0, c1.requests - c0.requests)
    return ReplayTick(
        at=t, step_index=status.step_index, phase=status.phase.value,
        declared_weight=compute_declared_weight(spec, status, obs),
        effective_weight=compute_effective_weight(spec, status, obs),
        recorded_share=100.0 * dc / (ds + dc) if ds + dc else None,
        canary_error_rate=_rate(max(0, c1.errors - c0.errors), dc),
        stable_error_rate=_rate(max(0, s1.errors - s0.errors), ds),
        events=tuple(events),
    )


def count_failures(history: RecordedHistory, ticks: list[ReplayTick], start: float, until: float) -> FailureCount:
    """Failed user requests from ``start`` to ``until`` on the strategy's split (module docstring)."""
    requests = failed = baseline = recorded = 0.0
    filled = 0
    canary_rate: float | None = None
    for i, tick in enumerate(ticks):
        a = tick.at
        b = ticks[i + 1].at if i + 1 < len(ticks) else until
        b = min(b, until)
        if b <= a:
            continue
        s0, s1 = history.stable.counters_at(a), history.stable.counters_at(b)
        c0, c1 = history.canary.counters_at(a), history.canary.counters_at(b)
        ds, dc = max(0, s1.requests - s0.requests), max(0, c1.requests - c0.requests)
        es, ec = max(0, s1.errors - s0.errors), max(0, c1.errors - c0.errors)
        total = ds + dc
        if not total:
            continue
        stable_rate = es / ds if ds else (ec / dc)
        if dc:
            canary_rate = ec / dc
        else:
            filled += tick.effective_weight > 0
        canary = canary_rate if canary_rate is not None else stable_rate
        w = tick.effective_weight / 100.0
        requests += total
        failed += total * (w * canary + (1 - w) * stable_rate)
        baseline += total * stable_rate
        recorded += es + ec
    return FailureCount(requests, failed, baseline, recorded, filled)


def _measurements(status: RolloutStatus, metrics: dict[str, Metric]) -> tuple[ReplayMeasurement, ...]:
    rows = []
    for run in status.analyses:
        for metric in run.metrics:
            signal = metrics[metric.name].signal
            for m in metric.measurements:
                shown = (format_value(signal, m.value), format_value(signal, m.baseline_value))
                rows.append(ReplayMeasurement(m.at, run.key, metric.name, m.phase, m.value, m.baseline_value,
                                              m.message, shown))
    return tuple(sorted(rows, key=lambda r: (r.at, r.analysis, r.metric)))


__all__ = ["FailureCount", "QueryAt", "ReplayMeasurement", "ReplayResult", "ReplayTick",
           "check_replayable", "count_failures", "replay"]
