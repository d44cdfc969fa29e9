"""One request of the load generator and what became of it: the ``RequestResult`` classes
(which count as errors, which got no answer from any version, which were never served),
a request's record and the table of them, the totals, the users a run hurt, and how a
response or an exception is classified."""

from __future__ import annotations

import bisect
import errno
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum

import httpx
import numpy as np
import pandas as pd

from rolloutlab.live.user_population import UserPopulation
from rolloutlab.strategies.observation import LATENCY_BUCKETS_MS

VERSION_HEADER = "X-Version"
FLAG_VARIANT_HEADER = "X-Flag-Variant"  # the demo service's answer to its feature flag


class RequestResult(str, Enum):
    """What became of one scheduled request (not a rollout's ``Outcome``, which is
    ``rolloutlab.results.table.Outcome``)."""

    OK = "ok"  # 1xx-3xx
    HTTP_4XX = "http_4xx"  # the client's fault; not counted as an error
    APP_5XX = "app_5xx"  # 5xx carrying X-Version: the app itself failed
    ROUTER_5XX = "router_5xx"  # 5xx without X-Version: the proxy/router answered (no backend)
    CONNECT_REFUSED = "connect_refused"  # nothing listening
    CONNECTION_RESET = "connection_reset"  # connection broke before a full response (RST or close)
    TIMEOUT = "timeout"  # no full response within timeout_s
    OTHER = "other"  # any other client-side failure
    DROPPED = "dropped"  # not sent: the in-flight cap was full
    UNSENT = "unsent"  # due before the end, but the generator fell behind and never sent it
    CANCELLED = "cancelled"  # sent, still in flight when the run ended


ERROR_RESULTS = frozenset({
    RequestResult.APP_5XX, RequestResult.ROUTER_5XX, RequestResult.CONNECT_REFUSED, RequestResult.CONNECTION_RESET,
    RequestResult.TIMEOUT, RequestResult.OTHER,
})
# Never reached a verdict: not in counters(), and not requests a user saw.
NO_ANSWER = frozenset({
    RequestResult.ROUTER_5XX, RequestResult.CONNECT_REFUSED, RequestResult.CONNECTION_RESET, RequestResult.TIMEOUT, RequestResult.OTHER,
})  # failed with no version answering: the router's or the network's (or a starved client's: timeout)
NOT_SERVED = frozenset({RequestResult.DROPPED, RequestResult.UNSENT, RequestResult.CANCELLED})


@dataclass(frozen=True, slots=True)
class Target:
    """One stream of users: ``rate_rps`` Poisson arrivals, each a GET of ``url``; with
    ``users``, each from a user of that population (``X-User-Id``, the segment's headers)
    and a POST with its ``write_share``."""

    name: str
    url: str
    rate_rps: float
    users: UserPopulation | None = None


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One scheduled request and what became of it (times in s since the generator started)."""

    target: str
    url: str
    scheduled_s: float
    start_s: float | None  # None: dropped
    end_s: float | None  # None: dropped or cancelled
    result: RequestResult
    status: int | None = None  # HTTP status when a response arrived
    version: str | None = None  # X-Version of the response
    latency_ms: float | None = None  # end - start; None when dropped or cancelled
    user: str | None = None  # X-User-Id sent (None: the target has no user population)
    segment: str | None = None  # the user's segment (None: everyone else, or no population)
    method: str = "GET"
    variant: str | None = None  # X-Flag-Variant of the response (None: no flag was evaluated)


@dataclass(frozen=True, slots=True)
class LoadTotals:
    """Counts over every scheduled request so far (one target or all)."""

    scheduled: int
    sent: int  # scheduled - dropped - unsent
    finished: int  # sent requests with a verdict (response or failure)
    errors: int  # finished with a result in ERROR_RESULTS
    dropped: int  # the in-flight cap was full
    unsent: int  # the generator fell behind its schedule and the run ended first
    cancelled: int
    in_flight: int
    results: dict[str, int] = field(default_factory=dict)  # RequestResult value -> requests
    users: int = 0  # distinct users with a served request (targets with a population)
    users_affected: int = 0  # of them, those who got at least one failed answer (ERROR_RESULTS)


@dataclass(frozen=True, slots=True)
class RateChange:
    """A rate change as the generator applied it."""

    at_s: float
    target: str
    rate_rps: float


def records_frame(rows: Sequence[RequestRecord]) -> pd.DataFrame:
    """Requests as a table, one row each (the load generator's ``records()``)."""
    return pd.DataFrame(
        {
            "target": [r.target for r in rows],
            "url": [r.url for r in rows],
            "scheduled_s": np.array([r.scheduled_s for r in rows], dtype=float),
            "start_s": np.array([np.nan if r.start_s is None else r.start_s for r in rows], dtype=float),
            "end_s": np.array([np.nan if r.end_s is None else r.end_s for r in rows], dtype=float),
            "latency_ms": np.array([np.nan if r.latency_ms is None else r.latency_ms for r in rows], dtype=float),
            "result": [r.result.value for r in rows],
            "status": pd.array([r.status for r in rows], dtype="Int64"),
            "version": pd.array([r.version for r in rows], dtype=object),
            "user": pd.array([r.user for r in rows], dtype=object),
            "segment": pd.array([r.segment for r in rows], dtype=object),
            "variant": pd.array([r.variant for r in rows], dtype=object),
            "method": [r.method for r in rows],
        }
    )


@dataclass(frozen=True, slots=True)
class UsersAffected:
    """How many users a run hurt: ``affected`` of the ``users`` who had at least one
    request served (sent and answered or failed) got at least one failed answer."""

    users: int
    affected: int

    @property
    def share(self) -> float:
        return self.affected / self.users if self.users else 0.0


def compute_users_affected(records: pd.DataFrame) -> UsersAffected:
    """Users hurt among the requests of ``records`` (a ``records()`` table, or a part of it:
    one target, a time window); requests without a user are left out."""
    served = records[records["user"].notna() & ~records["result"].isin([r.value for r in NOT_SERVED])]
    failed = served["result"].isin([r.value for r in ERROR_RESULTS])
    return UsersAffected(int(served["user"].nunique()), int(served.loc[failed, "user"].nunique()))


def is_loopback_url(url: str) -> bool:
    """True when ``url`` is http(s) to localhost or a loopback address (127.0.0.0/8, ::1)."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return False
    if parsed.scheme not in ("http", "https") or not parsed.host:
        return False
    if parsed.host == "localhost":
        return True
    try:
        return ipaddress.ip_address(parsed.host).is_loopback
    except ValueError:
        return False


def classify_response(status: int, version: str | None) -> RequestResult:
    if status >= 500:
        return RequestResult.APP_5XX if version is not None else RequestResult.ROUTER_5XX
    if status >= 400:
        return RequestResult.HTTP_4XX
    return RequestResult.OK


def classify_exception(exc: BaseException) -> RequestResult:
    """The error class of a failed request, from the exception and its causes."""
    if isinstance(exc, (TimeoutError, httpx.TimeoutException)):
        return RequestResult.TIMEOUT
    cause: BaseException | None = exc
    for _ in range(12):  # bounded walk down the cause chain
        if cause is None:
            break
        if isinstance(cause, ConnectionRefusedError) or getattr(cause, "errno", None) == errno.ECONNREFUSED:
            return RequestResult.CONNECT_REFUSED
        if isinstance(cause, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)) or getattr(
            cause, "errno", None
        ) in (errno.ECONNRESET, errno.EPIPE):
            return RequestResult.CONNECTION_RESET
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)):
        return RequestResult.CONNECTION_RESET  # e.g. "Server disconnected without sending a response"
    return RequestResult.OTHER


def latency_bucket(latency_ms: float) -> int:
    """Index of the LATENCY_BUCKETS_MS bucket holding ``latency_ms`` (upper bounds inclusive, as ``le``)."""
    return bisect.bisect_left(LATENCY_BUCKETS_MS, latency_ms)


__all__ = [
    "ERROR_RESULTS", "LoadTotals", "NOT_SERVED", "NO_ANSWER", "RateChange", "RequestRecord", "RequestResult", "Target",
    "FLAG_VARIANT_HEADER", "UsersAffected", "VERSION_HEADER", "classify_exception", "classify_response", "compute_users_affected",
    "is_loopback_url", "latency_bucket", "records_frame",
]
