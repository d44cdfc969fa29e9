"""Zero downtime, measured: which failed user requests of a live run the routing changes caused.

A live user request that failed without any version answering (router 5xx, connection
refused or reset) and whose flight overlapped a short window around a change of routing
(an applied scale / weight / switch action, a pod entering or leaving the router's
rotation, a router map change) is counted as caused by the switch itself; app 5xx answers
of the new version are the release's. The simulator models every switch as instant and
lossless, so its prediction is 0, and that is the target.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from rolloutlab.live.loadgen import ERROR_RESULTS, NO_ANSWER, NOT_SERVED

NO_ANSWER_RESULTS = tuple(sorted(r.value for r in NO_ANSWER))
"""User requests that failed with no version answering: the router's or the network's."""


@dataclass(frozen=True)
class SwitchFailures:
    """User requests of one live run, by who failed them."""

    switch: int  # refused / reset / router 5xx overlapping a routing change's window
    switch_by_result: dict[str, int]
    timeouts_near_switch: int  # timeouts in those windows: shown, not attributed (an overloaded
    # machine times requests out too; see the other_unanswered count for the background rate)
    other_unanswered: int  # no answer from any version, away from every routing change
    release: int  # error answers from the new version
    stable: int  # error answers from the stable version (its baseline errors)
    preview_unanswered: int  # preview (test) requests with no answer: not users, shown for HAProxy's count
    changes: int  # routing changes looked at
    window_before_s: float  # scenario seconds
    window_after_s: float
    router: dict[str, int] | None = field(default_factory=dict)  # HAProxy's own counters; None: not measured (kube)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def compute_switch_failures(records: pd.DataFrame, changes: Sequence[float], *, canary: str, stable: str,
                            before_s: float, after_s: float, time_scale: float,
                            router: Mapping[str, int] | None = None) -> SwitchFailures:
    """Attribute the failed user requests of a live run: a request that got no answer from
    any version and whose flight ``[sent, answered]`` overlaps ``[t - before_s, t + after_s]``
    around a routing change at ``t`` (scenario seconds) failed because of the switch."""
    user = records[(records["target"] == "user") & ~records["result"].isin([r.value for r in NOT_SERVED])]
    errors = user["result"].isin([r.value for r in ERROR_RESULTS])
    unanswered = user[user["result"].isin(NO_ANSWER_RESULTS)]
    ended = unanswered["at"].to_numpy(dtype=float)
    flight = (unanswered["end_s"] - unanswered["start_s"]).fillna(0.0).to_numpy(dtype=float) * time_scale
    sent = ended - np.maximum(flight, 0.0)
    near = np.zeros(len(unanswered), dtype=bool)
    for t in changes:
        near |= (ended >= t - before_s) & (sent <= t + after_s)
    # A switch fails a request by refusing, resetting or answering it from the router. A
    # timeout is not evidence of the switch: a starved load generator or app times requests
    # out anywhere in a run (under CPU contention, most of a run lies near some change).
    timeout = (unanswered["result"] == "timeout").to_numpy()
    attributed = near & ~timeout
    by_result = {str(k): int(v) for k, v in unanswered.loc[attributed, "result"].value_counts().items()}
    preview = records[(records["target"] == "preview") & records["result"].isin(NO_ANSWER_RESULTS)]
    return SwitchFailures(
        switch=int(attributed.sum()), switch_by_result=by_result, timeouts_near_switch=int((near & timeout).sum()),
        other_unanswered=int((~near).sum()),
        release=int((errors & (user["version"] == canary)).sum()),
        stable=int((errors & (user["version"] == stable)).sum()), preview_unanswered=len(preview),
        changes=len(changes), window_before_s=before_s, window_after_s=after_s,
        router=None if router is None else dict(router),
    )


ROUTING_EVENTS = ("routed", "unrouted", "router", "deleted", "killed", "exited")
"""Local-backend events that change which servers take traffic."""


def routing_change_times(applied: Iterable[tuple[float, str]], events: Iterable[Any], *, origin_wall: float,
                         wall_minus_monotonic: float, time_scale: float,
                         kinds: Sequence[str] = ROUTING_EVENTS) -> list[float]:
    """Scenario times of every routing change: the runner's applied actions (``promote``
    moves no traffic) and the backend's routing events (monotonic clock, converted):
    ``kinds`` are the local backend's, or on Kubernetes a pod watch's that move a
    Service's endpoints (``live.kube_events.ENDPOINT_EVENTS``)."""
    times = [t for t, action in applied if action != "promote"]
    for event in events:
        if event.kind in kinds:
            times.append((event.at + wall_minus_monotonic - origin_wall) * time_scale)
    return sorted(t for t in times if t >= -1e-9)



__all__ = ["NO_ANSWER_RESULTS", "ROUTING_EVENTS", "SwitchFailures", "compute_switch_failures", "routing_change_times"]
