"""Recorded traffic of one past release: per version, cumulative request, error and latency
counters over time, as a replay reads them at any moment.

Whatever the source (a Prometheus server's range queries, a CSV, an OpenMetrics export),
the raw data is a set of counter series, each with its own samples. Counters restart at 0
when a pod restarts; each series is corrected for resets the way Prometheus' ``increase()``
does (a fall means the counter started again from 0), then the series of one version are
summed. The value at a moment is the latest sample at or before it, as an instant query
selects one (``counters_at``): a replay sees what a Prometheus query at that moment saw.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from rolloutlab.errors import InputError
from rolloutlab.strategies.observation import LATENCY_BUCKETS_MS, Counters


@dataclass(frozen=True)
class CounterSeries:
    """One raw counter series of one version: its samples (unix seconds, counter values).

    ``kind``: ``requests`` (every request), ``errors`` (failed requests only) or ``bucket``
    (a latency histogram's cumulative bucket ``le_ms``: requests at most that slow)."""

    version: str
    kind: str
    times: tuple[float, ...]
    values: tuple[float, ...]
    le_ms: float | None = None


@dataclass(frozen=True)
class VersionHistory:
    """One version's reset-corrected cumulative counters on the union of its sample times."""

    version: str
    times: np.ndarray
    requests: np.ndarray
    errors: np.ndarray
    buckets: np.ndarray | None  # (len(times), len(LATENCY_BUCKETS_MS)): per-bucket counts; None: no latency

    @property
    def first_seen(self) -> float:
        """When the version first served a request (its first sample with requests above 0)."""
        served = np.nonzero(self.requests > 0)[0]
        return float(self.times[served[0]]) if len(served) else math.inf

    def counters_at(self, t: float) -> Counters:
        """The cumulative counters at ``t``: the latest sample at or before it (none: zero)."""
        i = int(np.searchsorted(self.times, t, side="right")) - 1
        if i < 0:
            return Counters()
        requests = int(round(self.requests[i]))
        errors = min(int(round(self.errors[i])), requests)
        buckets = () if self.buckets is None else tuple(int(round(b)) for b in self.buckets[i])
        return Counters(requests, errors, buckets)


@dataclass(frozen=True)
class RecordedHistory:
    """A release's recorded traffic: the stable (old) and the canary (new) version, and
    where the data came from (said in every output)."""

    stable: VersionHistory
    canary: VersionHistory
    source: str

    @property
    def span(self) -> tuple[float, float]:
        """The first and last sample time of either version."""
        times = np.concatenate([self.stable.times, self.canary.times])
        return float(times.min()), float(times.max())


def compute_reset_corrected(values: Sequence[float]) -> np.ndarray:
    """A counter's running total across restarts, as Prometheus' ``increase()`` counts it:
    after a fall, the new value is what was counted since the restart."""
    raw = np.asarray(values, dtype=float)
    if len(raw) == 0:
        return raw
    steps = np.diff(raw, prepend=0.0)
    falls = steps < 0
    steps[falls] = raw[falls]  # restarted from 0: everything it holds is new
    steps[0] = raw[0]
    return np.cumsum(steps)


def _at_times(times: np.ndarray, series_times: Sequence[float], totals: np.ndarray) -> np.ndarray:
    """A corrected series read at ``times``: its latest sample at or before each (0 before)."""
    idx = np.searchsorted(np.asarray(series_times, dtype=float), times, side="right") - 1
    out = np.where(idx >= 0, totals[np.clip(idx, 0, None)], 0.0)
    return out


def build_version_history(version: str, series: Iterable[CounterSeries], where: str) -> VersionHistory:
    """Sum one version's series (reset-corrected) on the union of their sample times.

    Latency buckets (cumulative ``le`` counts, any bounds) are mapped onto rolloutlab's
    buckets (``LATENCY_BUCKETS_MS``): each of our bounds takes the recorded count at the
    largest recorded bound not above it, so a request is never counted faster than it was
    (a recorded histogram with other bounds reads a little slower, never faster)."""
    series = list(series)
    kinds = {s.kind for s in series}
    if "requests" not in kinds:
        raise InputError(where, f"version {version!r} has no request counter series")
    times = np.unique(np.concatenate([np.asarray(s.times, dtype=float) for s in series]))
    totals = {"requests": np.zeros(len(times)), "errors": np.zeros(len(times))}
    by_le: dict[float, np.ndarray] = {}
    for s in series:
        corrected = _at_times(times, s.times, compute_reset_corrected(s.values))
        if s.kind == "bucket":
            assert s.le_ms is not None
            by_le[s.le_ms] = by_le.get(s.le_ms, np.zeros(len(times))) + corrected
        else:
            totals[s.kind] += corrected
    return VersionHistory(version, times, totals["requests"], np.minimum(totals["errors"], totals["requests"]),
                          _our_buckets(by_le, totals["requests"]) if by_le else None)


def _our_buckets(by_le: dict[float, np.ndarray], requests: np.ndarray) -> np.ndarray:
    bounds = sorted(by_le)
    cumulative = np.zeros((len(requests), len(LATENCY_BUCKETS_MS)))
    for j, ours in enumerate(LATENCY_BUCKETS_MS):
        below = [b for b in bounds if b <= ours]
        if math.isinf(ours):
            cumulative[:, j] = np.maximum(requests, by_le[bounds[-1]])
        elif below:
            cumulative[:, j] = by_le[below[-1]]
    cumulative = np.maximum.accumulate(cumulative, axis=1)  # counts at larger bounds never fall
    return np.diff(cumulative, axis=1, prepend=0.0)


def assign_roles(versions: dict[str, list[CounterSeries]], canary: str | None, stable: str | None,
                 where: str) -> tuple[str, str]:
    """Which recorded version is the stable and which the canary.

    Given names are checked; otherwise exactly two versions must be recorded, and the one
    that started serving later is the canary (the release being replayed)."""
    names = sorted(versions)
    for given, role in ((canary, "--canary"), (stable, "--stable")):
        if given is not None and given not in versions:
            raise InputError(where, f"{role} {given!r} is not a recorded version; recorded: {', '.join(names) or 'none'}")
    if canary is not None and stable is not None:
        if canary == stable:
            raise InputError(where, "--canary and --stable name the same version")
        return stable, canary
    if len(names) != 2:
        raise InputError(where, f"{len(names)} versions recorded ({', '.join(names) or 'none'}); a replay needs "
                                "two: name them with --stable and --canary")
    if canary is not None or stable is not None:
        known = canary if canary is not None else stable
        other = next(n for n in names if n != known)
        return (other, known) if canary is not None else (known, other)
    first = {n: min((t for s in versions[n] if s.kind == "requests" for t, v in zip(s.times, s.values) if v > 0),
                    default=math.inf) for n in names}
    if first[names[0]] == first[names[1]]:
        raise InputError(where, f"versions {names[0]!r} and {names[1]!r} start at the same time; say which is the "
                                "canary with --canary")
    early, late = sorted(names, key=first.__getitem__)
    return early, late


def build_history(series: Iterable[CounterSeries], canary: str | None, stable: str | None,
                  where: str) -> RecordedHistory:
    """The recorded history from raw series of any source (``where`` names it in errors)."""
    versions: dict[str, list[CounterSeries]] = {}
    for s in series:
        if s.times:
            versions.setdefault(s.version, []).append(s)
    if not versions:
        raise InputError(where, "no samples recorded in this time range for either version (versions are told "
                                "apart by --version-label, or by --canary-selector and --stable-selector)")
    stable_name, canary_name = assign_roles(versions, canary, stable, where)
    return RecordedHistory(build_version_history(stable_name, versions[stable_name], where),
                           build_version_history(canary_name, versions[canary_name], where), where)
