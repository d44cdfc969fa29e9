"""What a runner measured *now*, and the per-interval windows analysis judges read.

Runners report cumulative counters per version, the way Prometheus counters work:
requests, errors and a latency histogram since the version's pods started. The
controller keeps the counters it saw at the previous measurement in its status, so a
measurement is a difference of two snapshots, whatever the runner's tick rate. A
counter that went down (pods replaced) is treated as a reset, as ``rate()`` does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum

LATENCY_BUCKETS_MS: tuple[float, ...] = (
    5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, math.inf,
)
"""Upper bounds (ms) of the latency histogram every runner reports: Prometheus' default
buckets scaled to milliseconds, with +Inf last."""


class Role(str, Enum):
    """The two versions a rollout moves between.

    Canary and rolling: ``stable`` is the running version, ``canary`` the new one.
    Blue-green: ``stable`` is the active (blue) version, ``canary`` the preview (green).
    """

    STABLE = "stable"
    CANARY = "canary"


@dataclass(frozen=True, slots=True)
class Counters:
    """Cumulative traffic counters of one version."""

    requests: int = 0
    errors: int = 0
    latency_buckets: tuple[int, ...] = ()  # non-cumulative counts per LATENCY_BUCKETS_MS bucket; () = no latency data

    def __post_init__(self) -> None:
        if self.requests < 0 or self.errors < 0 or self.errors > self.requests:
            raise ValueError(f"impossible counters: {self.errors} errors in {self.requests} requests")
        if self.latency_buckets and len(self.latency_buckets) != len(LATENCY_BUCKETS_MS):
            raise ValueError(
                f"latency_buckets has {len(self.latency_buckets)} counts, expected {len(LATENCY_BUCKETS_MS)}"
            )


@dataclass(frozen=True, slots=True)
class VersionObservation:
    """One version as a runner sees it now."""

    replicas: int = 0  # spec replicas the runner currently runs for this version
    ready: int = 0  # pods passing readiness
    available: int = 0  # pods ready for at least minReadySeconds (here: ready)
    counters: Counters = Counters()

    def __post_init__(self) -> None:
        if min(self.replicas, self.ready, self.available) < 0:
            raise ValueError(f"negative replica counts: {self}")


class Command(str, Enum):
    """What a person (or a CI job, or an alert handler) asks of a rollout."""

    PROMOTE = "promote"  # pass the current pause or gate
    PROMOTE_FULL = "promoteFull"  # skip the remaining steps and analysis
    RESUME = "resume"  # leave a pause caused by an inconclusive analysis or the progress deadline
    ABORT = "abort"  # roll back: all traffic to stable
    RETRY = "retry"  # start an aborted rollout again from the first step


@dataclass(frozen=True, slots=True)
class CommandRequest:
    """A command with an id that only grows, so a command is applied once however often
    the runner reports it (the controller remembers the last id it applied)."""

    id: int
    command: Command


@dataclass(frozen=True, slots=True)
class FlagCounters:
    """A feature-flag release's traffic split by the flag's answer, not by pod version:
    cumulative counters of the requests evaluated with the flag on and with it off."""

    on: Counters = Counters()
    off: Counters = Counters()


@dataclass(frozen=True, slots=True)
class Observation:
    """Everything a runner measured at time ``now`` (seconds on the runner's clock).

    ``flag`` is reported by runners of a feature-flag release (None otherwise): its
    analysis compares users with the flag on (as the canary) against users with it off
    (as the baseline), whatever pods served them. ``baseline`` is reported by runners of
    a canary with a baseline deployment (``canary.baseline``): the counters of the fresh
    old-version pods its analysis compares the canary with.

    ``queried`` is reported by runners that measure metrics with their queries (a live
    run with Prometheus, a replay of recorded data): per metric name, what the metric's
    query answers now, in the query's own unit (``Metric.query_unit``); None when the query
    returned no series. A due threshold metric with a value here is judged on that value
    instead of the counters' window (``strategies.analysis``)."""

    now: float
    stable: VersionObservation
    canary: VersionObservation
    commands: tuple[CommandRequest, ...] = ()
    flag: FlagCounters | None = None
    baseline: Counters | None = None
    queried: tuple[tuple[str, float | None], ...] = ()

    def version(self, role: Role) -> VersionObservation:
        return self.stable if role is Role.STABLE else self.canary


@dataclass(frozen=True, slots=True)
class WindowStats:
    """Traffic of one version over one measurement window."""

    duration: float
    requests: int
    errors: int
    latency_buckets: tuple[int, ...] = ()

    @classmethod
    def between(cls, before: Counters, after: Counters, duration: float) -> "WindowStats":
        """The window between two cumulative snapshots; a counter that fell is a reset."""
        if after.requests < before.requests or after.errors < before.errors:
            before = Counters()
        buckets: tuple[int, ...] = ()
        if after.latency_buckets:
            old = before.latency_buckets or (0,) * len(after.latency_buckets)
            diff = tuple(a - b for a, b in zip(after.latency_buckets, old))
            buckets = after.latency_buckets if min(diff) < 0 else diff
        return cls(duration, after.requests - before.requests, after.errors - before.errors, buckets)

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    @property
    def throughput(self) -> float | None:
        return self.requests / self.duration if self.duration > 0 else None

    def latency_quantile(self, q: float) -> float | None:
        """The q-quantile in ms, interpolated linearly inside its bucket as Prometheus'
        ``histogram_quantile`` does (the +Inf bucket answers with the last finite bound)."""
        total = sum(self.latency_buckets)
        if not total:
            return None
        rank, seen = q * total, 0
        for i, count in enumerate(self.latency_buckets):
            if count and seen + count >= rank:
                upper = LATENCY_BUCKETS_MS[i]
                lower = LATENCY_BUCKETS_MS[i - 1] if i else 0.0
                if math.isinf(upper):
                    return lower
                return lower + (upper - lower) * (rank - seen) / count
            seen += count
        return LATENCY_BUCKETS_MS[-2]


@dataclass(frozen=True, slots=True)
class MeasurementWindow:
    """One measurement's data: canary and baseline (stable) over the same window."""

    at: float
    canary: WindowStats
    baseline: WindowStats = field(default_factory=lambda: WindowStats(0.0, 0, 0))
