"""``rolloutlab validate``: does the simulator tell the truth about this scenario?

The same scenario, the same strategy and the same kind of release run twice over: in the
simulator (many seeded runs) and for real on the local backend (a few runs: demo-service
processes behind HAProxy, real Poisson traffic). Each live value is then judged against
the simulator's *prediction interval* for it.

Same world on both sides. The live run cannot send the scenario's 1,000 rps nor start its
10 pods cheaply, so it sends at most ``max_rps`` per wall second (user and preview traffic
scaled down together, ``live.session.live_rates``) with ``replicas`` pods per version. A
wall second is ``time_scale`` scenario seconds, so the live service gets ``max_rps /
time_scale`` requests per *scenario* second; the simulator is told exactly that
(``compute_live_scenario``: a validated copy of the scenario with those replicas and
rates), so its analysis windows hold as few requests as the live ones. Both run the same
release: ``bad`` forces the scenario's first defect in every simulated run
(``sim.run.simulate(release=...)``) as ``make_plan`` gives it to the live canary, ``good``
forces none, so the interval is for *that* release, not a mixture of good and bad ones.
Times need no conversion: live rows are in scenario seconds already.

Prediction interval (distribution-free, from order statistics). If the simulator is right,
a live value Y and the n simulated values X are draws of one distribution, and for
continuous values P(X(j) <= Y <= X(n+1-j)) = (n+1-2j)/(n+1) exactly (X(j) the j-th
smallest). We take the largest j with that coverage >= ``level`` (95%: j = 12 for n = 500,
coverage 95.2%), inclusive at both ends, which keeps at least that coverage for values
with ties (durations on an analysis grid). Fewer than 2/(1-level) - 1 simulated values (39
at 95%) give no interval: *no prediction*.

Values that do not always exist. A metric may not apply to a run (time to restore when no
user was hurt; a canary step the rollout never reached): such a run is "n/a". Something
that never happened in the window (a defect never detected, a rollout never finished, an
incident never restored) is *never*, an infinitely late value, sorted above every time.
The simulator's share of n/a runs is a prediction too: the live run's kind (n/a or a value)
must be in the 95% prediction set (the most frequent kinds covering >= 95% of the runs),
and a value must also fall inside the interval of the runs that had one. ``outcome`` is
judged the same way, as a category.

Switch failures (zero downtime, measured). A live user request that failed without any
version answering (router 5xx, connection refused or reset, timeout) and overlapped a short
window around a change of routing (an applied scale / weight / switch action, a pod entering
or leaving the router's rotation, a router map change) is counted as caused by the switch
itself; app 5xx answers of the new version are the release's. The simulator models every
switch as instant and lossless, so its prediction is 0, and that is the target.

Calibration. Each live run measures its pods' creation-to-ready time and the router's
switch delay; both are converted to scenario seconds and recorded next to what the
scenario assumes. ``calibrate=True`` simulates again with the measured pod start time (a
lognormal fitted to the measurements) and judges live values against that prediction.

Everything here that decides is pure (``compute_*`` / ``judge_*``); ``run_validation``
acts (simulates, starts processes) and closes every backend it opens, whatever happens.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from enum import Enum
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rolloutlab.errors import ValidateError
from rolloutlab.live.loadgen import ERROR_OUTCOMES, NO_ANSWER, NOT_SERVED
from rolloutlab.live.session import LiveRun, live_rates, make_plan, pick_defect, run_live
from rolloutlab.results.table import to_frame
from rolloutlab.scenarios.release import ReleaseDraw, run_seed_sequence
from rolloutlab.scenarios.schema import FixedDistribution, LognormalDistribution, Scenario
from rolloutlab.sim.montecarlo import run_many
from rolloutlab.sim.run import simulate
from rolloutlab.strategies import Role, StrategySpec

LEVEL = 0.95
RELEASES = ("bad", "good")
NEVER = math.inf  # something that did not happen within the run: later than any time

NO_ANSWER_OUTCOMES = tuple(sorted(o.value for o in NO_ANSWER))
"""User requests that failed with no version answering: the router's or the network's."""


# --------------------------------------------------------------------------- metrics


class Kind(str, Enum):
    DURATION = "duration"  # scenario seconds; NEVER allowed
    FRACTION = "fraction"  # 0..1
    PERCENT = "percent"  # 0..100 (traffic weights)
    COUNT = "count"
    CATEGORY = "category"


@dataclass(frozen=True)
class Metric:
    name: str
    kind: Kind
    meaning: str


BASE_METRICS: tuple[Metric, ...] = (
    Metric("detection_time", Kind.DURATION, "detected_at - started_at (never: not detected in the window)"),
    Metric("time_to_restore", Kind.DURATION, "first harmed answer to restored (n/a: no user was harmed)"),
    Metric("failed_fraction", Kind.FRACTION, "failed_requests / requests over the scenario's window"),
    Metric("rollout_duration", Kind.DURATION, "start to promoted or rolled back (never: stuck)"),
    Metric("outcome", Kind.CATEGORY, "promoted, rolled_back, failed_undetected, ..."),
)
WEIGHT_PREFIX = "effective_weight@"
SWITCH_FAILURES = Metric("switch_failures", Kind.COUNT,
                         "user requests failed by a routing change itself (the simulator's switch is lossless: 0)")
HOLDABLE = tuple(m.name for m in BASE_METRICS) + ("effective_weight", SWITCH_FAILURES.name)
"""Names ``--hold`` accepts; ``effective_weight`` holds every step, ``effective_weight@W`` one step."""


def weight_metric(declared: float) -> Metric:
    return Metric(f"{WEIGHT_PREFIX}{declared:g}", Kind.PERCENT,
                  f"the canary's share of user traffic (%) while the declared weight is {declared:g}%")


def check_hold(names: Iterable[str]) -> tuple[str, ...]:
    """The ``--hold`` names, checked; ValidateError names an unknown one."""
    out = []
    for name in names:
        if name in HOLDABLE or re.fullmatch(re.escape(WEIGHT_PREFIX) + r"\d+(\.\d+)?", name):
            out.append(name)
        else:
            raise ValidateError(f"--hold {name!r}: unknown metric; one of {', '.join(HOLDABLE)} "
                                f"(or {WEIGHT_PREFIX}W for the step declaring W%)")
    return tuple(out)


def is_held(metric: str, hold: Sequence[str]) -> bool:
    if metric in hold:
        return True
    if metric.startswith(WEIGHT_PREFIX):
        return "effective_weight" in hold or any(
            h.startswith(WEIGHT_PREFIX) and float(h[len(WEIGHT_PREFIX):]) == float(metric[len(WEIGHT_PREFIX):])
            for h in hold)
    return False


Value = float | str | None  # a number (NEVER allowed), a category, or None: does not apply


def _number(x: Any) -> float:
    return math.nan if x is None else float(x)


def compute_metric_values(row: Mapping[str, Any]) -> dict[str, Value]:
    """The judged metrics of one results row (simulated or live; both share the columns)."""
    detected = _number(row.get("detected_at")) - _number(row.get("started_at"))
    duration = _number(row.get("rollout_duration"))
    restore = _number(row.get("time_to_restore"))
    harmed = bool(row.get("change_failed"))
    requests = int(row.get("requests") or 0)
    values: dict[str, Value] = {
        "detection_time": NEVER if math.isnan(detected) else detected,
        "time_to_restore": (NEVER if math.isnan(restore) else restore) if harmed else None,
        "failed_fraction": (int(row["failed_requests"]) / requests) if requests > 0 else None,
        "rollout_duration": NEVER if math.isnan(duration) else duration,
        "outcome": str(row["outcome"]),
    }
    for key, value in row.items():
        if isinstance(key, str) and key.startswith(WEIGHT_PREFIX):
            values[key] = None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)
    return values


# --------------------------------------------------------------------------- effective weights


def compute_weight_segments(points: Sequence[tuple[float, float]], end: float) -> dict[float, list[tuple[float, float]]]:
    """Declared weight -> the intervals [t0, t1) it was declared, from timeline points
    ``(at, declared)`` in time order (a point's declared weight holds until the next point;
    the last until ``end``). Weight 0 and empty intervals are left out."""
    out: dict[float, list[tuple[float, float]]] = {}
    for i, (at, declared) in enumerate(points):
        t1 = min(points[i + 1][0] if i + 1 < len(points) else end, end)
        if declared <= 0 or t1 <= at:
            continue
        spans = out.setdefault(float(declared), [])
        if spans and spans[-1][1] == at:
            spans[-1] = (spans[-1][0], t1)  # the same step continued
        else:
            spans.append((at, t1))
    return out


def compute_sim_step_weights(points: Sequence[Mapping[str, Any]], end: float) -> dict[str, float]:
    """Per declared weight, the time-weighted mean effective weight (%) of a simulated
    timeline: the simulator's effective weight is the share *at* each point, which holds
    until the next point."""
    marks = [(float(p["at"]), float(p["declared_weight"])) for p in points]
    effective = [(float(p["at"]), float(p["effective_weight"])) for p in points]
    out = {}
    for declared, spans in compute_weight_segments(marks, end).items():
        total = weighted = 0.0
        for t0, t1 in spans:
            for i, (at, value) in enumerate(effective):
                nxt = effective[i + 1][0] if i + 1 < len(effective) else math.inf
                overlap = min(nxt, t1) - max(at, t0)
                if overlap > 0:
                    weighted += value * overlap
                    total += overlap
        if total > 0:
            out[weight_metric(declared).name] = weighted / total
    return out


def compute_live_step_weights(points: Sequence[Mapping[str, Any]], records: pd.DataFrame, canary: str,
                              end: float, time_scale: float) -> dict[str, float]:
    """Per declared weight, the canary's measured share (%) of the user requests answered
    by a version that were *sent* while that weight was declared (the router picks the
    version when a request arrives; ``at`` is when the answer came, in scenario seconds)."""
    marks = [(float(p["at"]), float(p["declared_weight"])) for p in points]
    user = records[(records["target"] == "user") & records["version"].notna()]
    sent = user["at"].to_numpy(dtype=float) - np.nan_to_num(user["latency_ms"].to_numpy(dtype=float)) / 1000 * time_scale
    on_canary = (user["version"] == canary).to_numpy(dtype=bool)
    out = {}
    for declared, spans in compute_weight_segments(marks, end).items():
        inside = np.zeros(len(user), dtype=bool)
        for t0, t1 in spans:
            inside |= (sent >= t0) & (sent < t1)
        if inside.any():
            out[weight_metric(declared).name] = 100.0 * float(on_canary[inside].mean())
    return out


def _rollout_end(row: Mapping[str, Any]) -> float:
    for column in ("finished_at", "ended_at"):
        value = _number(row.get(column))
        if not math.isnan(value):
            return value
    return math.inf


# --------------------------------------------------------------------------- predictions


def compute_prediction_ranks(n: int, level: float = LEVEL) -> tuple[int, int, float] | None:
    """1-based ranks (j, n+1-j) of the sorted sample bounding a ``level`` prediction
    interval for one more draw, and its exact coverage (n+1-2j)/(n+1); None when even
    (min, max) covers less than ``level`` (n < 2/(1-level) - 1)."""
    if n < 1:
        return None
    j = math.floor((n + 1) * (1 - level) / 2 + 1e-9)
    if j < 1:
        return None
    return j, n + 1 - j, (n + 1 - 2 * j) / (n + 1)


def compute_prediction_set(shares: Mapping[str, float], level: float = LEVEL) -> tuple[str, ...]:
    """The most frequent categories whose shares add up to at least ``level`` (ties by name)."""
    chosen, total = [], 0.0
    for name, share in sorted(shares.items(), key=lambda kv: (-kv[1], kv[0])):
        if total >= level - 1e-12:
            break
        chosen.append(name)
        total += share
    return tuple(chosen)


@dataclass(frozen=True)
class Prediction:
    """What the simulator predicts for one metric, over its ``runs`` runs."""

    metric: str
    kind: Kind
    runs: int
    level: float
    shares: dict[str, float]  # numbers: {"value": share, "n/a": share}; categories: {category: share}
    predicted: tuple[str, ...]  # the prediction set of kinds / categories
    values: int = 0  # runs with a value
    median: float | None = None
    low: float | None = None
    high: float | None = None
    coverage: float | None = None  # exact coverage of [low, high]; None: no interval

    def as_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "kind": self.kind.value, "runs": self.runs, "level": self.level,
                "shares": self.shares, "predicted": list(self.predicted), "values": self.values,
                "median": _plain(self.median), "low": _plain(self.low), "high": _plain(self.high),
                "coverage": self.coverage}


def compute_prediction(metric: Metric, values: Sequence[Value], level: float = LEVEL) -> Prediction:
    """The simulator's prediction for ``metric`` from one value per simulated run."""
    runs = len(values)
    if metric.kind is Kind.CATEGORY:
        counts = pd.Series([str(v) for v in values], dtype=object).value_counts()
        shares = {str(k): int(c) / runs for k, c in counts.items()} if runs else {}
        return Prediction(metric.name, metric.kind, runs, level, shares, compute_prediction_set(shares, level))
    numbers = np.array([v for v in values if v is not None], dtype=float)
    shares = {}
    if runs:
        shares = {"value": numbers.size / runs, "n/a": (runs - numbers.size) / runs}
        shares = {k: s for k, s in shares.items() if s > 0}
    predicted = compute_prediction_set(shares, level)
    if numbers.size == 0:
        return Prediction(metric.name, metric.kind, runs, level, shares, predicted)
    numbers.sort()
    median = float(numbers[(numbers.size - 1) // 2]) if numbers.size % 2 else \
        float(numbers[numbers.size // 2 - 1] / 2 + numbers[numbers.size // 2] / 2)
    ranks = compute_prediction_ranks(numbers.size, level)
    if ranks is None:
        return Prediction(metric.name, metric.kind, runs, level, shares, predicted, int(numbers.size), median)
    j, k, coverage = ranks
    return Prediction(metric.name, metric.kind, runs, level, shares, predicted, int(numbers.size), median,
                      float(numbers[j - 1]), float(numbers[k - 1]), coverage)


def compute_fixed_prediction(metric: Metric, value: float) -> Prediction:
    """A prediction the simulator makes by construction (a lossless switch: 0)."""
    return Prediction(metric.name, metric.kind, 0, 1.0, {"value": 1.0}, ("value",), 0, value, value, value, 1.0)


class Verdict(str, Enum):
    INSIDE = "inside"
    OUTSIDE = "outside"
    NO_PREDICTION = "no prediction"  # too few simulated values for an interval


@dataclass(frozen=True)
class Judgement:
    metric: str
    run: int
    value: Value
    verdict: Verdict
    reason: str
    held: bool = False
    basis: str = "scenario"  # which prediction: "scenario" or "calibrated"

    def as_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "run": self.run, "value": _plain(self.value), "verdict": self.verdict.value,
                "reason": self.reason, "held": self.held, "basis": self.basis}


def judge_value(prediction: Prediction, value: Value, run: int = 0, *, held: bool = False,
                basis: str = "scenario", resolution: float = 0.0) -> Judgement:
    """Is one live value inside the simulator's prediction? A duration may miss the
    interval by ``resolution`` (the live clock's, in scenario seconds): the simulator puts
    probes and analysis ticks exactly on their grid, a live process a few milliseconds
    later, which a time scale magnifies (the reason then says so)."""
    def verdict(v: Verdict, reason: str) -> Judgement:
        return Judgement(prediction.metric, run, value, v, reason, held, basis)

    if prediction.kind is Kind.CATEGORY:
        share = prediction.shares.get(str(value), 0.0)
        if str(value) in prediction.predicted:
            return verdict(Verdict.INSIDE, f"{value} in {share:.1%} of simulated runs")
        return verdict(Verdict.OUTSIDE, f"{value} in only {share:.1%} of simulated runs")
    kind = "n/a" if value is None else "value"
    if kind not in prediction.predicted:
        share = prediction.shares.get(kind, 0.0)
        what = "does not apply" if value is None else "has a value"
        return verdict(Verdict.OUTSIDE, f"{prediction.metric} {what} in only {share:.1%} of simulated runs")
    if value is None:
        return verdict(Verdict.INSIDE, f"n/a, as in {prediction.shares.get('n/a', 0.0):.1%} of simulated runs")
    if prediction.low is None or prediction.high is None:
        return verdict(Verdict.NO_PREDICTION, f"only {prediction.values} simulated values: too few for a "
                                              f"{prediction.level:.0%} prediction interval")
    x = float(value)
    if prediction.low <= x <= prediction.high:
        return verdict(Verdict.INSIDE, "within the prediction interval")
    slack = resolution if prediction.kind is Kind.DURATION and math.isfinite(x) else 0.0
    if prediction.low - slack <= x <= prediction.high + slack:
        return verdict(Verdict.INSIDE, f"within the prediction interval widened by the live timing resolution "
                                       f"({slack:g}s): {_show(x, Kind.DURATION)} vs [{_show(prediction.low, Kind.DURATION)}, "
                                       f"{_show(prediction.high, Kind.DURATION)}]")
    side = "below" if x < prediction.low else "above"
    return verdict(Verdict.OUTSIDE, f"{side} the prediction interval [{_show(prediction.low)}, {_show(prediction.high)}]")


def compute_exit_code(judgements: Iterable[Judgement]) -> int:
    """1 when a held metric's live value is outside its prediction or has none; else 0."""
    return int(any(j.held and j.verdict is not Verdict.INSIDE for j in judgements))


# --------------------------------------------------------------------------- switch failures


@dataclass(frozen=True)
class SwitchFailures:
    """User requests of one live run, by who failed them."""

    switch: int  # refused / reset / router 5xx overlapping a routing change's window
    switch_by_outcome: dict[str, int]
    timeouts_near_switch: int  # timeouts in those windows: shown, not attributed (an overloaded
    # machine times requests out too; see the other_unanswered count for the background rate)
    other_unanswered: int  # no answer from any version, away from every routing change
    release: int  # error answers from the new version
    stable: int  # error answers from the stable version (its baseline errors)
    preview_unanswered: int  # preview (test) requests with no answer: not users, shown for HAProxy's count
    changes: int  # routing changes looked at
    window_before_s: float  # scenario seconds
    window_after_s: float
    router: dict[str, int] = field(default_factory=dict)  # HAProxy's own counters

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def compute_switch_failures(records: pd.DataFrame, changes: Sequence[float], *, canary: str, stable: str,
                            before_s: float, after_s: float, time_scale: float,
                            router: Mapping[str, int] | None = None) -> SwitchFailures:
    """Attribute the failed user requests of a live run: a request that got no answer from
    any version and whose flight ``[sent, answered]`` overlaps ``[t - before_s, t + after_s]``
    around a routing change at ``t`` (scenario seconds) failed because of the switch."""
    user = records[(records["target"] == "user") & ~records["outcome"].isin([o.value for o in NOT_SERVED])]
    errors = user["outcome"].isin([o.value for o in ERROR_OUTCOMES])
    unanswered = user[user["outcome"].isin(NO_ANSWER_OUTCOMES)]
    ended = unanswered["at"].to_numpy(dtype=float)
    flight = (unanswered["end_s"] - unanswered["start_s"]).fillna(0.0).to_numpy(dtype=float) * time_scale
    sent = ended - np.maximum(flight, 0.0)
    near = np.zeros(len(unanswered), dtype=bool)
    for t in changes:
        near |= (ended >= t - before_s) & (sent <= t + after_s)
    # A switch fails a request by refusing, resetting or answering it from the router. A
    # timeout is not evidence of the switch: a starved load generator or app times requests
    # out anywhere in a run (under CPU contention, most of a run lies near some change).
    timeout = (unanswered["outcome"] == "timeout").to_numpy()
    attributed = near & ~timeout
    by_outcome = {str(k): int(v) for k, v in unanswered.loc[attributed, "outcome"].value_counts().items()}
    preview = records[(records["target"] == "preview") & records["outcome"].isin(NO_ANSWER_OUTCOMES)]
    return SwitchFailures(
        switch=int(attributed.sum()), switch_by_outcome=by_outcome, timeouts_near_switch=int((near & timeout).sum()),
        other_unanswered=int((~near).sum()),
        release=int((errors & (user["version"] == canary)).sum()),
        stable=int((errors & (user["version"] == stable)).sum()), preview_unanswered=len(preview),
        changes=len(changes), window_before_s=before_s, window_after_s=after_s, router=dict(router or {}),
    )


ROUTING_EVENTS = ("routed", "unrouted", "router", "deleted", "killed", "exited")
"""Local-backend events that change which servers take traffic."""


def routing_change_times(applied: Iterable[tuple[float, str]], events: Iterable[Any], *, origin_wall: float,
                         wall_minus_monotonic: float, time_scale: float) -> list[float]:
    """Scenario times of every routing change: the runner's applied actions (``promote``
    moves no traffic) and the backend's routing events (monotonic clock, converted)."""
    times = [t for t, action in applied if action != "promote"]
    for event in events:
        if event.kind in ROUTING_EVENTS:
            times.append((event.at + wall_minus_monotonic - origin_wall) * time_scale)
    return sorted(t for t in times if t >= -1e-9)


# --------------------------------------------------------------------------- calibration


@dataclass(frozen=True)
class PodTimingSummary:
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
    """Per pod of a local backend, wall seconds from its creation (the ReplicaSet's) to its
    first readiness: the same span as the simulator's pod start."""
    created: dict[str, float] = {}
    out = []
    for event in events:
        if event.kind == "created" and event.pod:
            created[event.pod] = event.at
        elif event.kind == "ready" and event.pod in created and event.detail != "again":
            out.append(event.at - created.pop(event.pod))
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


# --------------------------------------------------------------------------- the world both sides see


@dataclass(frozen=True)
class LiveWorld:
    """The settings in which live differs from the scenario file, given to both sides."""

    replicas: int
    user_rps: float  # sent per wall second
    preview_rps: float
    time_scale: float
    sim_rps: float  # per scenario second: user_rps / time_scale
    sim_preview_rps: float
    probe_period_s: float  # wall seconds
    probe_timeout_s: float
    termination_grace_s: float


def compute_live_scenario(scenario: Scenario, *, replicas: int, max_rps: float,
                          time_scale: float) -> tuple[Scenario, Scenario, float, float]:
    """The scenario as the live run plays it, for each side: (the live run's scenario, the
    simulator's scenario, user rps, preview rps sent per *wall* second).

    Both have ``replicas`` pods of the service under test. The load generator sends the
    scenario's traffic capped at ``max_rps`` (``live_rates``) per wall second, and a wall
    second is ``time_scale`` scenario seconds: per scenario second the live service gets
    ``rps / time_scale``, and that is the rate the simulator is given (so the analysis sees
    as few requests per window in the simulator as it does live). Validated copies."""
    user, preview = live_rates(scenario, max_rps)
    data = scenario.model_dump(by_alias=True)
    for service in data["services"]:
        if service["name"] == scenario.service_under_test.name:
            service["replicas"] = replicas
    live = Scenario.model_validate(data)
    data["traffic"]["rps"] = user / time_scale
    data["traffic"]["preview_rps"] = preview / time_scale
    return live, Scenario.model_validate(data), user, preview


def forced_release(scenario: Scenario, release: str) -> ReleaseDraw:
    """The release every simulated run carries: the one ``make_plan`` gives the live canary."""
    if release not in RELEASES:
        raise ValidateError(f"--release must be one of {', '.join(RELEASES)}, not {release!r}")
    return ReleaseDraw(pick_defect(scenario, release, 0, 0))


def simulate_validation_run(scenario: Scenario, strategy: StrategySpec, run: int, seed_seq: np.random.SeedSequence,
                            fidelity: str = "fast", *, release: str) -> dict[str, Any]:
    """One simulated row with the release forced, plus ``effective_weight@W`` columns (the
    mean effective weight while W% was declared). Module level: worker processes run it."""
    result = simulate(scenario, strategy, run, seed_seq, fidelity, timeline=True,
                      release=forced_release(scenario, release))
    row = dict(result.row)
    row.update(compute_sim_step_weights([asdict(p) for p in result.timeline], _rollout_end(row)))
    return row


# --------------------------------------------------------------------------- running it


@dataclass(frozen=True)
class Settings:
    sim_runs: int = 500
    live_runs: int = 2
    seed: int = 1
    time_scale: float = 20.0
    max_rps: float = 100.0
    replicas: int = 4
    release: str = "bad"
    level: float = LEVEL
    hold: tuple[str, ...] = ()
    calibrate: bool = False
    executor: str = "serial"
    max_minutes: float = 30.0
    switch_window_before_wall_s: float = 0.5
    switch_window_after_wall_s: float = 1.0  # plus the termination grace: in-flight requests drain that long
    timing_resolution_wall_s: float = 0.1  # live timing jitter (probe and supervisor ticks, requeues), wall seconds

    def check(self) -> None:
        if self.release not in RELEASES:
            raise ValidateError(f"--release must be one of {', '.join(RELEASES)}, not {self.release!r}")
        if not 0.5 <= self.level < 1:
            raise ValidateError(f"--level must be within 0.5 .. 1, not {self.level}")
        for name, value, low in (("--runs", self.sim_runs, 1), ("--live-runs", self.live_runs, 1),
                                 ("--replicas", self.replicas, 1)):
            if value < low:
                raise ValidateError(f"{name} must be at least {low}, not {value}")
        if not (self.time_scale >= 1 and math.isfinite(self.time_scale)):
            raise ValidateError(f"--time-scale must be at least 1, not {self.time_scale}")
        if not self.max_rps > 0:
            raise ValidateError(f"--max-rps must be positive, not {self.max_rps}")
        check_hold(self.hold)


@dataclass
class LiveResult:
    run: int
    seed: int
    row: dict[str, Any]
    timeline: dict[str, Any]
    values: dict[str, Value]
    switch_failures: SwitchFailures
    calibration: dict[str, Any]  # the backend's figures (wall seconds) and the converted ones
    created_to_ready_s: list[float]  # scenario seconds
    switch_delays_s: list[float]  # scenario seconds
    wall_s: float


@dataclass
class Validation:
    scenario: Scenario  # as the simulator ran it (live replicas; live rates per scenario second)
    spec: StrategySpec
    settings: Settings
    world: LiveWorld
    defect: str
    sim: pd.DataFrame
    sim_timeline: dict[str, Any]
    predictions: dict[str, Prediction]
    live: list[LiveResult]
    calibrated_sim: pd.DataFrame | None = None
    calibrated_predictions: dict[str, Prediction] | None = None
    calibrated_timing: dict[str, Any] | None = None
    assumed_ready_s: list[float] = field(default_factory=list)
    judgements: list[Judgement] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    sim_wall_s: float = 0.0

    @property
    def exit_code(self) -> int:
        return compute_exit_code(self.judgements)

    @property
    def metrics(self) -> list[str]:
        """Metrics shown, in order: the base ones, then every weight step either side reached."""
        steps = {m for p in (self.predictions, self.calibrated_predictions or {}) for m in p if m.startswith(WEIGHT_PREFIX)}
        steps |= {m for r in self.live for m in r.values if m.startswith(WEIGHT_PREFIX)}
        ordered = sorted(steps, key=lambda m: float(m[len(WEIGHT_PREFIX):]))
        return [m.name for m in BASE_METRICS] + ordered + [SWITCH_FAILURES.name]


def compute_predictions(df: pd.DataFrame, level: float) -> dict[str, Prediction]:
    """Every metric's prediction from a simulated table (one row per run)."""
    per_run = [compute_metric_values(row) for row in df.to_dict("records")]
    names = [m.name for m in BASE_METRICS] + sorted({k for v in per_run for k in v if k.startswith(WEIGHT_PREFIX)},
                                                     key=lambda m: float(m[len(WEIGHT_PREFIX):]))
    out = {}
    for name in names:
        metric = next((m for m in BASE_METRICS if m.name == name), None) or weight_metric(float(name[len(WEIGHT_PREFIX):]))
        out[name] = compute_prediction(metric, [v.get(name) for v in per_run], level)
    out[SWITCH_FAILURES.name] = compute_fixed_prediction(SWITCH_FAILURES, 0.0)
    return out


def judge_live(predictions: Mapping[str, Prediction], live: Sequence[LiveResult], metrics: Sequence[str],
               hold: Sequence[str], level: float, runs: int, basis: str, resolution: float = 0.0) -> list[Judgement]:
    out = []
    for result in live:
        values = dict(result.values)
        values[SWITCH_FAILURES.name] = float(result.switch_failures.switch)
        for name in metrics:
            prediction = predictions.get(name)
            if prediction is None:  # a weight step no simulated run reached
                metric = weight_metric(float(name[len(WEIGHT_PREFIX):]))
                prediction = Prediction(metric.name, metric.kind, runs, level, {"n/a": 1.0}, ("n/a",))
            out.append(judge_value(prediction, values.get(name), result.run, held=is_held(name, hold), basis=basis,
                                   resolution=resolution))
    return out


def simulate_world(scenario: Scenario, spec: StrategySpec, settings: Settings) -> pd.DataFrame:
    run_fn = partial(simulate_validation_run, release=settings.release)
    return run_many(scenario, [spec], settings.sim_runs, settings.seed, executor=settings.executor,
                    progress=False, run_fn=run_fn)


def open_local_backend(scenario: Scenario, time_scale: float, state_dir: Path, seed: int):
    """A local backend whose probe and grace period are the scenario's, compressed by the
    time scale (a probe timeout is kept at >= 0.25 s wall: a loaded machine answers late)."""
    from rolloutlab.live.local import LocalBackend, Probe

    timing = scenario.service_under_test.pod_timing
    probe = Probe(period_s=max(0.05, timing.readiness.period / time_scale),
                  timeout_s=max(0.25, timing.readiness.timeout / time_scale),
                  success_threshold=timing.readiness.success_threshold,
                  failure_threshold=timing.readiness.failure_threshold)
    return LocalBackend(state_dir, probe=probe, termination_grace_s=max(0.5, timing.termination_grace / time_scale),
                        seed=seed)


def run_one_live(scenario: Scenario, spec: StrategySpec, settings: Settings, run: int, state_dir: Path,
                 max_wall_s: float, log: Callable[[str], None] | None = None) -> LiveResult:
    """One live run on a fresh local backend, closed before returning whatever happens."""
    scale = settings.time_scale
    seed = settings.seed + run
    plan = make_plan(scenario, spec, release=settings.release, seed=seed, time_scale=scale)
    started = time.monotonic()
    backend = open_local_backend(scenario, scale, state_dir, seed)
    try:
        live: LiveRun = run_live(scenario, spec, backend, plan, time_scale=scale, seed=seed, run=run,
                                 max_rps=settings.max_rps, max_wall_s=max_wall_s, log=log)
        calibration = backend.calibration()
        stats = backend.router_stats()
        events = list(backend.events)
        wall_minus_monotonic = time.time() - time.monotonic()
        grace = backend.termination_grace_s
    finally:
        backend.close()
    summary = live.summary
    router = {"proxy_5xx": stats.proxy_5xx, "retries": stats.retries, "redispatches": stats.redispatches}
    changes = routing_change_times(summary.applied, events, origin_wall=summary.state.origin_wall,
                                   wall_minus_monotonic=wall_minus_monotonic, time_scale=scale)
    failures = compute_switch_failures(
        live.records, changes, canary=plan.canary.name, stable=plan.stable.name,
        before_s=settings.switch_window_before_wall_s * scale,
        after_s=(settings.switch_window_after_wall_s + grace) * scale, time_scale=scale, router=router)
    row = dict(live.row)
    row.update(compute_live_step_weights(live.timeline["points"], live.records, plan.canary.name, _rollout_end(row),
                                         scale))
    ready = [s * scale for s in compute_created_to_ready(events)]
    switches = [s * scale for s in calibration.switch_delays_s]
    figures = {"wall": calibration.summary(), "time_scale": scale,
               "created_to_ready_scenario_s": ready, "switch_delay_scenario_s": switches,
               "switches": [asdict(s) for s in calibration.switches]}
    return LiveResult(run, seed, row, live.timeline, compute_metric_values(row), failures, figures, ready, switches,
                      time.monotonic() - started)


def run_validation(scenario: Scenario, spec: StrategySpec, settings: Settings, *,
                   state_root: Path | None = None, log: Callable[[str], None] | None = None,
                   progress: Callable[[str], None] | None = None) -> Validation:
    """Simulate, run live, calibrate, judge. Every live backend is closed before this returns."""
    settings.check()
    say = progress or (lambda _text: None)
    deadline = time.monotonic() + settings.max_minutes * 60
    live_scenario, world_scenario, user_rps, preview_rps = compute_live_scenario(
        scenario, replicas=settings.replicas, max_rps=settings.max_rps, time_scale=settings.time_scale)
    spec = spec.with_replicas(settings.replicas)
    release = forced_release(world_scenario, settings.release)
    make_plan(live_scenario, spec, release=settings.release, seed=settings.seed,
              time_scale=settings.time_scale)  # LiveUnsupported before anything runs
    timing = world_scenario.service_under_test.pod_timing
    world = LiveWorld(settings.replicas, user_rps, preview_rps, settings.time_scale,
                      world_scenario.traffic.rps, world_scenario.traffic.preview_rps,
                      max(0.05, timing.readiness.period / settings.time_scale),
                      max(0.25, timing.readiness.timeout / settings.time_scale),
                      max(0.5, timing.termination_grace / settings.time_scale))

    say(f"simulating {settings.sim_runs} runs ({release.kind} release, {settings.replicas} replicas, "
        f"{world_scenario.traffic.rps:.3g} rps per scenario second = {user_rps:.3g} per wall second live)")
    began = time.monotonic()
    sim = simulate_world(world_scenario, spec, settings)
    sim_wall = time.monotonic() - began
    first = simulate(world_scenario, spec, 0, run_seed_sequence(settings.seed, 0), timeline=True, release=release,
                     root_seed=settings.seed)
    sim_timeline = {"scenario": world_scenario.name, "strategy": spec.name, "run": 0, "seed": settings.seed,
                    "defect": first.row["defect"], "outcome": first.row["outcome"], "source": "sim",
                    "points": [asdict(p) for p in first.timeline]}
    predictions = compute_predictions(sim, settings.level)

    validation = Validation(world_scenario, spec, settings, world, release.kind, sim, sim_timeline, predictions, [],
                            sim_wall_s=sim_wall)
    validation.assumed_ready_s = compute_assumed_pod_ready(world_scenario, seed=settings.seed)
    own_root = state_root is None
    root = Path(tempfile.mkdtemp(prefix="rolloutlab-validate-")) if own_root else state_root
    window_wall = world_scenario.duration / settings.time_scale
    try:
        for run in range(settings.live_runs):
            left = deadline - time.monotonic()
            if left < window_wall + 15:
                validation.notes.append(f"live run {run} and later not started: the {settings.max_minutes:g}-minute "
                                        f"bound leaves {max(0.0, left):.0f}s, a run needs about {window_wall + 15:.0f}s")
                break
            say(f"live run {run + 1} of {settings.live_runs} (about {window_wall:.0f}s at x{settings.time_scale:g})")
            state_dir = root / f"run-{run}"
            shutil.rmtree(state_dir, ignore_errors=True)  # a validation is a fresh rollout, never a resume
            state_dir.mkdir(parents=True)
            validation.live.append(run_one_live(live_scenario, spec, settings, run, state_dir,
                                                max_wall_s=min(left - 10, window_wall + 60), log=log))
    finally:
        if own_root:
            shutil.rmtree(root, ignore_errors=True)
    if not validation.live:
        raise ValidateError(f"no live run fitted in --max-minutes {settings.max_minutes:g} "
                            f"(one takes about {window_wall + 15:.0f}s at x{settings.time_scale:g})")

    measured = [s for r in validation.live for s in r.created_to_ready_s]
    if settings.calibrate:
        calibrated, fitted = compute_calibrated_scenario(world_scenario, measured)
        say(f"simulating {settings.sim_runs} runs again with the measured pod start time")
        validation.calibrated_sim = simulate_world(calibrated, spec, settings)
        validation.calibrated_predictions = compute_predictions(validation.calibrated_sim, settings.level)
        validation.calibrated_timing = fitted
    metrics = validation.metrics
    basis = "calibrated" if validation.calibrated_predictions is not None else "scenario"
    deciding = validation.calibrated_predictions or validation.predictions
    resolution = settings.timing_resolution_wall_s * settings.time_scale
    validation.judgements = judge_live(deciding, validation.live, metrics, settings.hold, settings.level,
                                       settings.sim_runs, basis, resolution)
    if validation.calibrated_predictions is not None:  # shown, not deciding
        validation.judgements += [
            Judgement(j.metric, j.run, j.value, j.verdict, j.reason, False, "scenario")
            for j in judge_live(validation.predictions, validation.live, metrics, (), settings.level,
                                settings.sim_runs, "scenario", resolution)]
    return validation


# --------------------------------------------------------------------------- output


def _plain(x: Any) -> Any:
    if isinstance(x, (float, np.floating)):
        x = float(x)
        if math.isinf(x):
            return "never"
        if math.isnan(x):
            return None
    if isinstance(x, np.integer):
        return int(x)
    return x


def _jsonable(x: Any) -> Any:
    """JSON-safe: never as "never", NaN as null, numpy scalars as Python ones."""
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, Enum):
        return x.value
    return _plain(x)


def _show(x: Value, kind: Kind | None = None) -> str:
    from rolloutlab.results.statistics import format_duration

    if x is None:
        return "n/a"
    if isinstance(x, str):
        return x
    if math.isinf(x):
        return "never"
    if kind is Kind.FRACTION:
        return f"{100 * x:.3g}%"
    if kind is Kind.PERCENT:
        return f"{x:.1f}%"
    if kind is Kind.COUNT:
        return f"{x:g}"
    if kind is Kind.DURATION or kind is None:
        return format_duration(x) if kind is Kind.DURATION else f"{x:.4g}"
    return f"{x:.4g}"


def describe_prediction(p: Prediction | None) -> tuple[str, str]:
    """(median, interval) cells for a prediction."""
    if p is None:
        return "not reached", "n/a in every run"
    if p.kind is Kind.CATEGORY:
        top = max(p.shares.items(), key=lambda kv: kv[1]) if p.shares else ("n/a", 0.0)
        return f"{top[0]} ({top[1]:.0%})", "{" + ", ".join(p.predicted) + "}"
    na = p.shares.get("n/a", 0.0)
    suffix = f"; n/a in {na:.0%}" if na > 0 else ""
    if p.runs == 0:  # fixed by construction
        return _show(p.median, p.kind), "0 (lossless switch)"
    if p.values == 0:
        return "n/a", f"n/a in every run"
    interval = "too few values" if p.low is None else f"[{_show(p.low, p.kind)}, {_show(p.high, p.kind)}]"
    return _show(p.median, p.kind), interval + suffix


def metric_kind(name: str) -> Kind:
    if name.startswith(WEIGHT_PREFIX):
        return Kind.PERCENT
    if name == SWITCH_FAILURES.name:
        return Kind.COUNT
    return next(m.kind for m in BASE_METRICS if m.name == name)


MARK = {Verdict.INSIDE: "✓", Verdict.OUTSIDE: "✗ outside", Verdict.NO_PREDICTION: "? no prediction"}


def summary_table(v: Validation) -> tuple[list[str], list[list[str]]]:
    """The side-by-side table as text cells (for the terminal and the HTML report): per
    metric the simulator's median and prediction interval (and the calibrated ones), then
    each live value with its verdict against the deciding prediction."""
    calibrated = v.calibrated_predictions is not None
    level = f"{v.settings.level:.0%}"
    columns = ["metric", f"sim median [{level} PI]"]
    if calibrated:
        columns.append(f"calibrated sim median [{level} PI]")
    columns += [f"live {r.run}" for r in v.live] + ["held"]
    deciding = "calibrated" if calibrated else "scenario"
    rows = []
    for name in v.metrics:
        kind = metric_kind(name)
        cells = [name, " ".join(describe_prediction(v.predictions.get(name)))]
        if calibrated:
            cells.append(" ".join(describe_prediction(v.calibrated_predictions.get(name))))
        for r in v.live:
            j = next((j for j in v.judgements if j.metric == name and j.run == r.run and j.basis == deciding), None)
            value = float(r.switch_failures.switch) if name == SWITCH_FAILURES.name else r.values.get(name)
            cells.append(f"{_show(value, kind)} {MARK[j.verdict] if j else ''}".strip())
        cells.append("yes" if is_held(name, v.settings.hold) else "")
        rows.append(cells)
    return columns, rows


def calibration_lines(v: Validation) -> list[str]:
    from rolloutlab.results.statistics import format_duration as d

    assumed = PodTimingSummary.of(v.assumed_ready_s)
    measured = PodTimingSummary.of([s for r in v.live for s in r.created_to_ready_s])
    lines = [
        f"pod creation-to-ready (scenario s): measured median {d(measured.median_s)} "
        f"[p10 {d(measured.p10_s)}, p90 {d(measured.p90_s)}] over {measured.n} pods; the scenario assumes median "
        f"{d(assumed.median_s)} [p10 {d(assumed.p10_s)}, p90 {d(assumed.p90_s)}]",
    ]
    switches = [s for r in v.live for s in r.switch_delays_s]
    if switches:
        lines.append(f"router switch delay (command to first answer of the new version): median "
                     f"{d(float(np.median(switches)))}, max {d(max(switches))} over {len(switches)} switches "
                     f"(scenario s; the simulator switches instantly)")
    else:
        lines.append("router switch delay: no router switch in these runs (weights followed pods)")
    if v.calibrated_timing is not None:
        start = v.calibrated_timing["start_delay"]
        shape = (f"lognormal median {d(start['median'])} sigma {start['sigma']:.2f}" if start["kind"] == "lognormal"
                 else f"fixed {d(start['value'])}")
        lines.append(f"calibrated simulation: schedule_delay 0, start_delay {shape} fitted to "
                     f"{v.calibrated_timing['from_pods']} pods; live values judged against it")
    return lines


def zero_downtime_lines(v: Validation) -> list[str]:
    lines = []
    for r in v.live:
        f = r.switch_failures
        detail = ", ".join(f"{k} {n}" for k, n in sorted(f.switch_by_outcome.items())) or "none"
        lines.append(
            f"run {r.run}: {f.switch} user requests failed by the switch itself ({detail}) around {f.changes} routing "
            f"changes (window -{f.window_before_s:g}s/+{f.window_after_s:g}s); {f.timeouts_near_switch} timeouts in those "
            f"windows (not attributed); {f.other_unanswered} other unanswered; "
            f"{f.release} failed by the release (error answers of the new version), {f.stable} by the stable; "
            f"HAProxy: {f.router.get('proxy_5xx', 0)} own 5xx (users and preview; {f.preview_unanswered} preview "
            f"requests unanswered), {f.router.get('retries', 0)} retries, {f.router.get('redispatches', 0)} redispatches")
    return lines


def render_validation(v: Validation, console) -> None:
    from rich.markup import escape
    from rich.table import Table

    s = v.settings
    columns, rows = summary_table(v)
    title = (f"{v.spec.name} on {v.scenario.name}: {v.defect} release, {s.replicas} replicas, "
             f"{v.world.sim_rps:.3g} rps ({v.world.user_rps:.3g}/s wall at x{s.time_scale:g}); "
             f"{s.sim_runs} simulated vs {len(v.live)} live")
    table = Table(title=title)
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i == 0 else "right", no_wrap=i == 0)
    for row in rows:
        table.add_row(*(escape(cell) for cell in row))
    console.print(table)
    console.print(f"prediction interval: order statistics X(j)..X(n+1-j) of the simulated values, coverage "
                  f">= {s.level:.0%} for one more draw; n/a and categories: the {s.level:.0%} prediction set; "
                  f"live durations may miss it by the live timing resolution "
                  f"({s.timing_resolution_wall_s:g}s wall = {s.timing_resolution_wall_s * s.time_scale:g}s)",
                  highlight=False)
    for line in calibration_lines(v):
        console.print(f"calibration: {escape(line)}", highlight=False)
    for line in zero_downtime_lines(v):
        console.print(f"zero downtime: {escape(line)}", highlight=False)
    for note in v.notes:
        console.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
    held = [j for j in v.judgements if j.held and j.verdict is not Verdict.INSIDE]
    for j in held:
        console.print(f"[bold red]HELD {j.metric} run {j.run}:[/] {escape(_show(j.value, metric_kind(j.metric)))} "
                      f"{j.verdict.value}: {escape(j.reason)}", highlight=False)
    if s.hold:
        console.print("held metrics: " + ("[bold red]live falls outside the prediction[/]" if held
                                          else "[green]live inside the prediction[/]"))


def validation_json(v: Validation) -> dict[str, Any]:
    s = v.settings
    return {
        "scenario": v.scenario.name,
        "strategy": v.spec.name,
        "release": s.release,
        "defect": v.defect,
        "settings": {**asdict(s), "hold": list(s.hold)},
        "world": asdict(v.world),
        "method": {
            "prediction_interval": "order statistics: [X(j), X(n+1-j)] of the n simulated values with the largest j "
                                   "whose coverage (n+1-2j)/(n+1) >= level; distribution-free, for one more draw",
            "not_applicable_and_categories": "prediction set: the most frequent kinds covering >= level of the runs",
            "never": "a time that did not happen in the window sorts above every time",
            "timing_resolution_s": "live durations may miss an interval by timing_resolution_wall_s x time_scale "
                                   f"= {s.timing_resolution_wall_s * s.time_scale:g} scenario seconds (said in the reason)",
            "switch_failures": "user requests with no answer from any version (router 5xx, refused, reset) "
                               "whose flight overlaps a routing change's window; timeouts there are counted "
                               "apart (timeouts_near_switch), not attributed",
        },
        "predictions": {k: p.as_dict() for k, p in v.predictions.items()},
        "calibrated_predictions": ({k: p.as_dict() for k, p in v.calibrated_predictions.items()}
                                   if v.calibrated_predictions is not None else None),
        "calibration": {
            "assumed_pod_ready_s": asdict(PodTimingSummary.of(v.assumed_ready_s)),
            "measured_pod_ready_s": asdict(PodTimingSummary.of([x for r in v.live for x in r.created_to_ready_s])),
            "switch_delay_s": [x for r in v.live for x in r.switch_delays_s],
            "fitted_pod_timing": v.calibrated_timing,
            "runs": [{"run": r.run, **r.calibration} for r in v.live],
        },
        "live": [{"run": r.run, "seed": r.seed, "wall_s": r.wall_s, "values": {k: _plain(x) for k, x in r.values.items()},
                  "zero_downtime": r.switch_failures.as_dict(),
                  "router_failures": int(r.row.get("router_failures", 0)),
                  "release_failures": int(r.row.get("release_failures", 0))} for r in v.live],
        "judgements": [j.as_dict() for j in v.judgements],
        "held_outside": [j.as_dict() for j in v.judgements if j.held and j.verdict is not Verdict.INSIDE],
        "notes": v.notes,
        "sim_wall_s": v.sim_wall_s,
        "exit_code": v.exit_code,
    }


def results_table(v: Validation) -> pd.DataFrame:
    """Simulated and live rows in one results table (``source`` tells them apart)."""
    live = to_frame([r.row for r in v.live])
    return to_frame(pd.concat([v.sim, live], ignore_index=True, sort=False))


def write_validation(v: Validation, out_dir: Path) -> dict[str, Path]:
    """results.csv/.parquet (simulated + live rows), live-results.csv, timelines.json (the
    first simulated run and every live run) and validation.json into ``out_dir``."""
    from rolloutlab.results.table import write_results
    from rolloutlab.results.timeline import write_timelines

    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path, parquet_path = write_results(results_table(v), out_dir / "results")
    live_csv, _ = write_results(to_frame([r.row for r in v.live]), out_dir / "live-results")
    timelines = write_timelines(timelines_of(v), out_dir)
    path = out_dir / "validation.json"
    path.write_text(json.dumps(_jsonable(validation_json(v)), indent=1, allow_nan=False))
    return {"results": csv_path, "parquet": parquet_path, "live_results": live_csv, "timelines": timelines,
            "validation": path}


def timelines_of(v: Validation) -> list[dict[str, Any]]:
    return [v.sim_timeline] + [r.timeline for r in v.live]


__all__ = [
    "HOLDABLE", "Judgement", "Kind", "LEVEL", "LiveResult", "Prediction", "Settings", "SwitchFailures",
    "ValidateError", "Validation", "Verdict", "check_hold", "compute_exit_code", "compute_live_scenario",
    "compute_live_step_weights", "compute_metric_values", "compute_prediction", "compute_prediction_ranks",
    "compute_prediction_set", "compute_sim_step_weights", "compute_switch_failures", "compute_weight_segments",
    "judge_value", "render_validation", "results_table", "run_validation", "simulate_validation_run",
    "summary_table", "validation_json", "write_validation",
]
