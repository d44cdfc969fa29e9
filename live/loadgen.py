"""Real user traffic for live runs: open-loop Poisson arrivals, bounded in count and time.

Each named target (``user`` -> the active service, ``preview`` -> the preview service,
...) gets its own Poisson stream: exponential gaps drawn from a
``numpy.random.Generator`` seeded by ``SeedSequence(seed, spawn_key=(crc32(name),))``, so
a target's schedule depends only on the seed, its name and its rate history, not on the
other targets or on how fast the service answers. What becomes of each request (its
``RequestResult``, its record) is ``live.request_results``; the names are importable here.
A target with a user population (``Target.users``, ``live.user_population``) sends each
request as one of its users (``X-User-Id``, the segment's headers), a POST or a GET; its
records say which user, segment and method (``compute_users_affected`` counts the users
hurt). Without one, every request is a plain GET, as before.

Open loop: a request starts at its scheduled time whether or not earlier ones finished,
as real users do. In-flight requests are capped (``max_in_flight``, generous by default);
an arrival that finds the cap full is not sent and is recorded as ``dropped``, never lost
silently.

Rates can change while running (a traffic spike). The change is exact for a Poisson
process with a piecewise-constant rate: the unit-rate gap still to run is rescaled
(time-rescaling), so the schedule stays deterministic given the seed and the moments of
change. A target's URL can change while running too (a port-forward moved).

The network boundary is one ``httpx.AsyncClient`` on the generator's own event loop in a
background thread; a synchronous runner polls the thread-safe views (``counters``,
``totals``, ``records``) while it runs. Times are seconds since the generator started
(``started_at_wall`` is the wall clock at that instant).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import math
import sys
import threading
import time
import warnings
import zlib
from dataclasses import asdict, replace
from typing import Sequence

import httpx
import numpy as np
import pandas as pd

from rolloutlab.live.request_results import (
    ERROR_RESULTS,
    FLAG_VARIANT_HEADER,
    NO_ANSWER,
    NOT_SERVED,
    VERSION_HEADER,
    LoadTotals,
    RateChange,
    RequestRecord,
    RequestResult,
    Target,
    UsersAffected,
    classify_exception,
    classify_response,
    compute_users_affected,
    is_loopback_url,
    latency_bucket,
    records_frame,
)
from rolloutlab.live.user_population import UserDraws, UserPopulation, UserRequest, UserSegment
from rolloutlab.strategies.observation import LATENCY_BUCKETS_MS, Counters

if importlib.util.find_spec("sniffio") is None:  # pragma: no cover - depends on the environment
    # httpcore 1.x tries `import sniffio` on every lock it takes; a failed import is not
    # cached, so each request walks sys.path (~25% of the generator's CPU, measured).
    warnings.warn("sniffio is not installed: the load generator runs ~25% slower", RuntimeWarning, stacklevel=1)

DEFAULT_TARGET = "user"
_POLL_S = 0.05  # how often the drain wait re-reads its deadline


def target_rng(seed: int, name: str) -> np.random.Generator:
    """The arrival stream of target ``name``: independent of every other target's."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(zlib.crc32(name.encode()),))))


def compute_arrival_times(seed: int, target: str, rate_rps: float, duration_s: float,
                          max_count: int = 10_000_000) -> np.ndarray:
    """The arrival times (s) the generator schedules for ``target`` at a constant rate: the
    running sum of unit exponential gaps divided by the rate, up to ``duration_s``. Pure;
    the live schedule equals it exactly however late the event loop runs."""
    if rate_rps <= 0:
        return np.empty(0)
    rng = target_rng(seed, target)
    parts, last = [], 0.0
    while sum(len(p) for p in parts) < max_count and last < duration_s:
        # chunks of draws (the same stream as one-at-a-time draws), summed in the generator's
        # order (t += gap / rate) so the times agree to the last bit
        gaps = rng.exponential(size=max(64, int(rate_rps * duration_s * 0.25))) / rate_rps
        chunk = np.cumsum(np.concatenate([[last], gaps]))[1:]
        parts.append(chunk)
        last = float(chunk[-1])
    times = np.concatenate(parts) if parts else np.empty(0)
    return times[times < duration_s][:max_count]


class _TargetState:
    """A target's schedule, owned by the event loop (times relative to the start)."""

    def __init__(self, target: Target, seed: int) -> None:
        self.name = target.name
        self.url = target.url
        self.rate = float(target.rate_rps)
        self.rng = target_rng(seed, target.name)
        self.users = UserDraws(target.users, seed, target.name) if target.users is not None else None
        self.unit_left = 0.0  # unit-rate exponential gap still to run
        self.anchor = 0.0  # when that remainder started counting
        self.due = math.inf
        self.handle: asyncio.TimerHandle | None = None


class LoadGenerator:
    """Open-loop Poisson load on one or more named targets, bounded in count and time.

    ``targets``: a URL (then ``rate_rps`` is its rate and its name is ``"user"``) or a
    sequence of :class:`Target`. ``timeout_s``: a request with no full response by then is
    a ``timeout`` (the scenario's request timeout). ``max_requests``: no more than this many
    arrivals are ever scheduled, over all targets. ``max_duration_s``: nothing is scheduled
    at or after this time and requests still in flight then are cancelled, so a run never
    lasts longer. ``max_in_flight``: the cap on concurrent requests and the connection
    pool's size; by default ``2 * total rate * timeout_s`` (Little's law with every
    request timing out, doubled) kept within 64..4096 (open sockets). ``max_keepalive``:
    idle connections kept for reuse. Small on purpose: httpcore scans its whole pool on
    every request (quadratically in places), so a pool swollen by a burst slows every
    later request. Measured on this 2-core machine with 50 ms answers at 300 rps: 16 idle
    connections cost ~1.3 ms of generator CPU per request, 64 cost ~5.6 ms and the
    generator fell behind. ``allow_remote``: targets must be loopback unless this is True.

    Latencies are what the generator saw (request start to full response), so they include
    its own event-loop delays when it is overloaded; ``start_s - scheduled_s`` shows those.
    """

    def __init__(
        self,
        targets: str | Sequence[Target],
        rate_rps: float | None = None,
        *,
        seed: int,
        timeout_s: float,
        max_requests: int,
        max_duration_s: float,
        max_in_flight: int | None = None,
        max_keepalive: int = 16,
        allow_remote: bool = False,
    ) -> None:
        if isinstance(targets, str):
            if rate_rps is None:
                raise ValueError("a single URL needs rate_rps")
            targets = [Target(DEFAULT_TARGET, targets, rate_rps)]
        elif rate_rps is not None:
            raise ValueError("rate_rps is only for a single URL; give each Target its rate")
        targets = list(targets)
        if not targets:
            raise ValueError("no targets")
        names = [t.name for t in targets]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate target names: {names}")
        if not (timeout_s > 0 and math.isfinite(timeout_s)):
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        if max_requests < 0:
            raise ValueError(f"max_requests must be >= 0, got {max_requests}")
        if not (max_duration_s > 0 and math.isfinite(max_duration_s)):
            raise ValueError(f"max_duration_s must be a finite number > 0, got {max_duration_s}")
        self.allow_remote = allow_remote
        for t in targets:
            self._check_url(t.url)
            self._check_rate(t.rate_rps)
        self.seed = seed
        self.timeout_s = float(timeout_s)
        self.max_requests = int(max_requests)
        self.max_duration_s = float(max_duration_s)
        total_rate = sum(t.rate_rps for t in targets)
        if max_in_flight is None:
            max_in_flight = min(4096, max(64, math.ceil(2 * total_rate * self.timeout_s)))
        self.max_in_flight = int(max_in_flight)
        if self.max_in_flight < 1:
            raise ValueError(f"max_in_flight must be >= 1, got {self.max_in_flight}")
        if max_keepalive < 0:
            raise ValueError(f"max_keepalive must be >= 0, got {max_keepalive}")
        self.max_keepalive = max_keepalive
        self._targets = {t.name: _TargetState(t, seed) for t in targets}

        self._lock = threading.Lock()  # guards everything the views read
        self._records: list[RequestRecord] = []
        self._counts: dict[tuple[str, str | None], list] = {}  # (target, version) -> [requests, errors, buckets]
        self._variant_counts: dict[tuple[str, str | None], list] = {}  # (target, flag variant) -> the same
        self._rate_changes: list[RateChange] = []
        self._in_flight: dict[str, int] = {name: 0 for name in self._targets}
        self._scheduled = 0

        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._done = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._t0 = 0.0
        self.started_at_wall: float | None = None
        self._client: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task] = set()
        self._scheduling_over: asyncio.Event | None = None
        self._drain_until = math.inf
        self._deadline_handle: asyncio.TimerHandle | None = None

    # -- validation --------------------------------------------------------------------
    def _check_url(self, url: str) -> None:
        if self.allow_remote:
            try:
                parsed = httpx.URL(url)
            except (httpx.InvalidURL, TypeError) as exc:
                raise ValueError(f"not a URL: {url!r}") from exc
            if parsed.scheme not in ("http", "https") or not parsed.host:
                raise ValueError(f"not an http(s) URL: {url!r}")
        elif not is_loopback_url(url):
            raise ValueError(f"refusing non-loopback target {url!r} (pass allow_remote=True to allow it)")

    @staticmethod
    def _check_rate(rate: float) -> None:
        if not (rate >= 0 and math.isfinite(rate)):
            raise ValueError(f"rate must be a finite number >= 0, got {rate}")

    def _state(self, target: str | None) -> _TargetState:
        if target is None:
            if len(self._targets) != 1:
                raise ValueError(f"several targets {sorted(self._targets)}: name the one to change")
            return next(iter(self._targets.values()))
        try:
            return self._targets[target]
        except KeyError:
            raise KeyError(f"no target {target!r}; targets are {sorted(self._targets)}") from None

    # -- control (any thread) ----------------------------------------------------------
    def start(self) -> "LoadGenerator":
        """Start sending in a background thread with its own event loop."""
        if self._thread is not None:
            raise RuntimeError("a LoadGenerator runs once")
        self._thread = threading.Thread(target=self._thread_main, name="loadgen", daemon=True)
        self._thread.start()
        if not self._ready.wait(10.0):
            raise RuntimeError("load generator did not start within 10 s")
        if self._error is not None:
            raise RuntimeError("load generator failed to start") from self._error
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop scheduling now, give in-flight requests up to ``timeout_s`` (then cancel them), join."""
        if self._thread is None:
            return
        loop = self._loop
        if loop is not None and not self._done.is_set():
            try:
                loop.call_soon_threadsafe(self._end_scheduling, self._now() + timeout_s)
            except RuntimeError:
                pass  # the loop already closed: the run ended on its own
        self._thread.join(timeout_s + 5.0)
        if self._thread.is_alive():
            raise RuntimeError("load generator thread did not stop")
        if self._error is not None:
            raise RuntimeError("load generator failed") from self._error

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until the run ends by its bounds (or a stop); False if ``timeout_s`` ran out."""
        return self._done.wait(timeout_s)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._ready.is_set() and not self._done.is_set()

    def __enter__(self) -> "LoadGenerator":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def set_rate(self, rate_rps: float, target: str | None = None) -> None:
        """Change a target's arrival rate (0 pauses it); takes effect at once, also while running."""
        self._check_rate(rate_rps)
        state = self._state(target)
        loop = self._loop
        if loop is not None and not self._done.is_set():
            try:
                loop.call_soon_threadsafe(self._apply_rate, state, float(rate_rps))
                return
            except RuntimeError:
                pass  # the loop closed meanwhile: the run is over
        state.rate = float(rate_rps)

    def set_url(self, url: str, target: str | None = None) -> None:
        """Send a target's next requests to ``url`` (requests already in flight are unaffected)."""
        self._check_url(url)
        state = self._state(target)
        with self._lock:
            state.url = url

    # -- views (any thread) ------------------------------------------------------------
    def counters(self, target: str | None = None) -> dict[str | None, Counters]:
        """Cumulative counters per version (X-Version) of requests that got a verdict.

        Requests that never reached a version (connection errors, timeouts, router 5xx) are
        under the key None. Errors are the ERROR_RESULTS; latency buckets count every
        verdict, failures included, with the latency the user saw. Dropped and cancelled
        requests are not here (see ``totals``).
        """
        return self._merged(self._counts, target)

    def variant_counters(self, target: str | None = None) -> dict[str | None, Counters]:
        """The same counters per feature-flag variant the answer carried (X-Flag-Variant);
        None collects answers without one (no flag evaluated, or nobody answered)."""
        return self._merged(self._variant_counts, target)

    def _merged(self, counts: dict, target: str | None) -> dict[str | None, Counters]:
        merged: dict[str | None, list] = {}
        with self._lock:
            for (name, version), (requests, errors, buckets) in counts.items():
                if target is not None and name != target:
                    continue
                acc = merged.setdefault(version, [0, 0, [0] * len(LATENCY_BUCKETS_MS)])
                acc[0] += requests
                acc[1] += errors
                acc[2] = [a + b for a, b in zip(acc[2], buckets)]
        return {v: Counters(r, e, tuple(b)) for v, (r, e, b) in merged.items()}

    def totals(self, target: str | None = None) -> LoadTotals:
        with self._lock:
            results: dict[str, int] = {}
            users: dict[str, bool] = {}  # user -> got a failed answer
            for rec in self._records:
                if target is None or rec.target == target:
                    results[rec.result.value] = results.get(rec.result.value, 0) + 1
                    if rec.user is not None and rec.result not in NOT_SERVED:
                        users[rec.user] = users.get(rec.user, False) or rec.result in ERROR_RESULTS
            in_flight = sum(self._in_flight.values()) if target is None else self._in_flight[target]
        dropped = results.get(RequestResult.DROPPED.value, 0)
        unsent = results.get(RequestResult.UNSENT.value, 0)
        cancelled = results.get(RequestResult.CANCELLED.value, 0)
        recorded = sum(results.values())
        errors = sum(results.get(o.value, 0) for o in ERROR_RESULTS)
        return LoadTotals(
            scheduled=recorded + in_flight,
            sent=recorded + in_flight - dropped - unsent,
            finished=recorded - dropped - unsent - cancelled,
            errors=errors,
            dropped=dropped,
            unsent=unsent,
            cancelled=cancelled,
            in_flight=in_flight,
            results=results,
            users=len(users),
            users_affected=sum(users.values()),
        )

    def records(self) -> pd.DataFrame:
        """Every request with a verdict, dropped or cancelled so far, in completion order."""
        with self._lock:
            rows = list(self._records)
        return records_frame(rows)

    def rate_changes(self) -> list[RateChange]:
        with self._lock:
            return list(self._rate_changes)

    # -- the event loop ----------------------------------------------------------------
    def _thread_main(self) -> None:
        try:
            asyncio.run(self.run())
        except BaseException as exc:  # surfaced by start()/stop(); never swallowed
            self._error = exc
        finally:
            self._ready.set()
            self._done.set()

    def _now(self) -> float:
        loop = self._loop
        return loop.time() - self._t0 if loop is not None else 0.0

    async def run(self) -> None:
        """Run to the end on the current event loop (``start`` runs this in a thread)."""
        try:
            await self._run()
        finally:
            self._ready.set()
            self._done.set()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        limits = httpx.Limits(max_connections=self.max_in_flight,
                              max_keepalive_connections=min(self.max_in_flight, self.max_keepalive),
                              keepalive_expiry=2.0)
        async with httpx.AsyncClient(
            limits=limits, timeout=httpx.Timeout(self.timeout_s), trust_env=False, follow_redirects=False,
            headers={"User-Agent": "rolloutlab-loadgen"},
        ) as client:
            self._client = client
            self._scheduling_over = asyncio.Event()
            self._loop = loop
            self._t0 = loop.time()
            self.started_at_wall = time.time()
            self._deadline_handle = loop.call_at(self._t0 + self.max_duration_s, self._on_deadline)
            for state in self._targets.values():
                state.unit_left = float(state.rng.exponential())
                state.anchor = 0.0
                self._arm(state)
            if self.max_requests == 0:
                self._end_scheduling(0.0)
            self._ready.set()
            await self._scheduling_over.wait()
            while self._tasks and (left := self._drain_until - self._now()) > 0:
                await asyncio.wait(set(self._tasks), timeout=min(left, _POLL_S))
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            self._deadline_handle.cancel()

    def _arm(self, state: _TargetState) -> None:
        if state.handle is not None:
            state.handle.cancel()
            state.handle = None
        if self._scheduling_over is None or self._scheduling_over.is_set() or state.rate <= 0:
            state.due = math.inf
            return
        state.due = state.anchor + state.unit_left / state.rate
        if state.due < self.max_duration_s:
            state.handle = self._loop.call_at(self._t0 + state.due, self._fire, state)

    def _apply_rate(self, state: _TargetState, rate: float) -> None:
        now = self._now()
        # A loop running late may hold arrivals already due under the old rate: send them
        # first, at their own times, so the change never moves or loses one.
        while state.handle is not None and state.due <= now:
            state.handle.cancel()
            self._fire(state)
        if state.rate > 0:  # the part of the gap already run, in unit time
            state.unit_left = max(0.0, state.unit_left - (now - state.anchor) * state.rate)
        state.anchor = now
        state.rate = rate
        with self._lock:
            self._rate_changes.append(RateChange(now, state.name, rate))
        self._arm(state)

    def _fire(self, state: _TargetState) -> None:
        state.handle = None
        if self._scheduling_over.is_set():
            return
        scheduled = state.due
        who = state.users.next() if state.users is not None else None  # drawn for every arrival
        with self._lock:
            self._scheduled += 1
            url = state.url
            full = sum(self._in_flight.values()) >= self.max_in_flight
            if full:
                self._records.append(_with_user(RequestRecord(state.name, url, scheduled, None, None,
                                                              RequestResult.DROPPED), who))
            else:
                self._in_flight[state.name] += 1
        if not full:
            task = self._loop.create_task(self._send(state.name, url, scheduled, who))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if self._scheduled >= self.max_requests:
            self._end_scheduling(self.max_duration_s)
            return
        state.anchor = scheduled
        state.unit_left = float(state.rng.exponential())
        self._arm(state)

    def _on_deadline(self) -> None:
        self._record_unsent()
        self._end_scheduling(self.max_duration_s)
        self._drain_until = min(self._drain_until, self._now())

    def _record_unsent(self) -> None:
        """Arrivals due before the deadline that an overloaded loop never got to: recorded, not lost."""
        if self._scheduling_over.is_set():
            return
        for state in self._targets.values():
            if state.handle is not None:
                state.handle.cancel()
                state.handle = None
            while state.rate > 0 and self._scheduled < self.max_requests:
                due = state.anchor + state.unit_left / state.rate
                if due >= self.max_duration_s:
                    break
                who = state.users.next() if state.users is not None else None
                with self._lock:
                    self._scheduled += 1
                    self._records.append(_with_user(RequestRecord(state.name, state.url, due, None, None,
                                                                  RequestResult.UNSENT), who))
                state.anchor = due
                state.unit_left = float(state.rng.exponential())

    def _end_scheduling(self, drain_until: float) -> None:
        """No more arrivals; in-flight requests may run until ``drain_until`` (never past the bound)."""
        self._drain_until = min(self._drain_until, drain_until, self.max_duration_s)
        if self._scheduling_over.is_set():
            return
        self._scheduling_over.set()
        for state in self._targets.values():
            if state.handle is not None:
                state.handle.cancel()
                state.handle = None

    async def _send(self, target: str, url: str, scheduled: float, who: UserRequest | None) -> None:
        start = self._now()
        status: int | None = None
        version = variant = None
        try:
            async with asyncio.timeout(self.timeout_s):
                if who is None:
                    response = await self._client.get(url)
                else:  # a write carries a small body, as a form or an API call would
                    body = json.dumps({"user": who.user}).encode() if who.method == "POST" else None
                    response = await self._client.request(who.method, url, headers=who.headers, content=body)
            status = response.status_code
            version = response.headers.get(VERSION_HEADER)
            variant = response.headers.get(FLAG_VARIANT_HEADER)
            result = classify_response(status, version)
        except asyncio.CancelledError:
            self._record(_with_user(RequestRecord(target, url, scheduled, start, None, RequestResult.CANCELLED), who))
            raise
        except Exception as exc:  # every failure becomes a result; classify_exception names it
            result = classify_exception(exc)
        end = self._now()
        latency_ms = (end - start) * 1000.0
        self._record(_with_user(RequestRecord(target, url, scheduled, start, end, result, status, version, latency_ms,
                                              variant=variant), who))

    def _record(self, rec: RequestRecord) -> None:
        with self._lock:
            self._in_flight[rec.target] -= 1
            self._records.append(rec)
            if rec.result in NOT_SERVED:
                return
            bucket = latency_bucket(rec.latency_ms)
            for key, counts in ((rec.version, self._counts), (rec.variant, self._variant_counts)):
                acc = counts.setdefault((rec.target, key), [0, 0, [0] * len(LATENCY_BUCKETS_MS)])
                acc[0] += 1
                acc[1] += rec.result in ERROR_RESULTS
                acc[2][bucket] += 1


def _with_user(record: RequestRecord, who: UserRequest | None) -> RequestRecord:
    return record if who is None else replace(record, user=who.user, segment=who.segment, method=who.method)


def summarize(gen: LoadGenerator) -> dict:
    """A small JSON-able summary of a finished run (what the command line prints)."""
    frame = gen.records()
    done = frame[frame["end_s"].notna()]
    lag = (frame["start_s"] - frame["scheduled_s"]).dropna()
    span = float(done["end_s"].max() - done["start_s"].min()) if len(done) else 0.0
    totals = gen.totals()
    hurt = compute_users_affected(frame)
    return {
        "totals": asdict(totals),
        "users": {"users": hurt.users, "affected": hurt.affected, "share": hurt.share},
        "achieved_rps": len(done) / span if span > 0 else None,
        "latency_ms": {q: float(done["latency_ms"].quantile(q / 100)) for q in (50, 90, 99)} if len(done) else {},
        "start_lag_ms": {q: float(lag.quantile(q / 100) * 1000) for q in (50, 99)} if len(lag) else {},
        "versions": {str(v): {"requests": c.requests, "errors": c.errors} for v, c in gen.counters().items()},
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Open-loop Poisson load on one URL; prints a JSON summary.")
    parser.add_argument("url")
    parser.add_argument("--rate", type=float, required=True, help="arrivals per second")
    parser.add_argument("--duration", type=float, default=10.0, help="max_duration_s")
    parser.add_argument("--max-requests", type=int, default=1_000_000)
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-in-flight", type=int, default=None)
    parser.add_argument("--allow-remote", action="store_true")
    args = parser.parse_args(argv)
    gen = LoadGenerator(args.url, args.rate, seed=args.seed, timeout_s=args.timeout, max_requests=args.max_requests,
                        max_duration_s=args.duration, max_in_flight=args.max_in_flight, allow_remote=args.allow_remote)
    with gen:
        gen.wait(args.duration + args.timeout + 5)
    json.dump(summarize(gen), sys.stdout, indent=2)
    print()
    return 0


__all__ = [  # the request pieces (live.request_results) too: callers import them from here
    "ERROR_RESULTS", "LoadGenerator", "LoadTotals", "NOT_SERVED", "NO_ANSWER", "RateChange", "RequestRecord",
    "RequestResult", "Target", "UserPopulation", "UserSegment", "UsersAffected", "classify_exception",
    "classify_response", "compute_arrival_times", "compute_users_affected", "is_loopback_url", "latency_bucket",
    "records_frame", "summarize", "target_rng",
]


if __name__ == "__main__":
    sys.exit(main())
