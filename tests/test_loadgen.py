"""The load generator against real servers on 127.0.0.1: two demo service processes (v1,
v2), a test-only "router" that answers 503 without X-Version, a server that resets every
connection, and a closed port. Every test checks that no generator thread outlives it."""

from __future__ import annotations

import bisect
import http.server
import socket
import struct
import threading
import time
from contextlib import contextmanager
from typing import Iterator

import numpy as np
import pytest
from scipy import stats
from test_demo_service import DEFAULT_FAULTS, DemoProcess, run_demo

from rolloutlab.live.loadgen import (
    ERROR_RESULTS,
    LoadGenerator,
    RequestResult,
    Target,
    classify_exception,
    compute_arrival_times,
    is_loopback_url,
)
from rolloutlab.strategies.observation import LATENCY_BUCKETS_MS, Counters

# ----------------------------------------------------------------------- servers


@pytest.fixture(scope="module")
def blue(tmp_path_factory) -> Iterator[DemoProcess]:
    with run_demo(tmp_path_factory.mktemp("blue"), version="v1", seed=1) as demo:
        yield demo


@pytest.fixture(scope="module")
def green(tmp_path_factory) -> Iterator[DemoProcess]:
    with run_demo(tmp_path_factory.mktemp("green"), version="v2", seed=2) as demo:
        yield demo


@pytest.fixture(autouse=True)
def clean_demos_and_threads(request):
    """Demo services start each test without faults; no generator thread survives a test."""
    demos = [request.getfixturevalue(name) for name in ("blue", "green") if name in request.fixturenames]
    for demo in demos:
        demo.fault(**DEFAULT_FAULTS)
    yield
    for demo in demos:
        demo.fault(**DEFAULT_FAULTS)
    leftover = [t for t in threading.enumerate() if t.name == "loadgen" and t.is_alive()]
    assert not leftover, f"load generator threads still running: {leftover}"


class _RouterHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 - stdlib name
        body = b"no server is available to handle this request\n"
        self.send_response(503)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@contextmanager
def serving(server: http.server.HTTPServer) -> Iterator[str]:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
        assert not thread.is_alive()


@pytest.fixture(scope="module")
def router_url() -> Iterator[str]:
    """A stand-in for HAProxy with no backend: 503 and no X-Version header."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _RouterHandler)
    server.daemon_threads = True
    with serving(server) as url:
        yield url


@pytest.fixture(scope="module")
def reset_url() -> Iterator[str]:
    """A server that reads the request and closes with RST (SO_LINGER 0)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.settimeout(0.05)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except (socket.timeout, OSError):
                continue
            with conn:
                conn.settimeout(1.0)
                try:
                    conn.recv(4096)
                except OSError:
                    pass
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/"
    finally:
        stop.set()
        thread.join(5)
        listener.close()
        assert not thread.is_alive()


@pytest.fixture(scope="module")
def closed_url() -> str:
    """A port nothing listens on (bound, then closed)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}/"


def run_load(targets, rate=None, *, wait_s: float = 15.0, **kwargs) -> LoadGenerator:
    """Run a generator to the end of its bounds (failing if it does not end in ``wait_s``)."""
    kwargs.setdefault("seed", 1)
    kwargs.setdefault("timeout_s", 2.0)
    kwargs.setdefault("max_requests", 100_000)
    gen = LoadGenerator(targets, rate, **kwargs)
    with gen:
        assert gen.wait(wait_s), "the generator did not finish within its bounds"
    return gen


def max_concurrency(frame) -> int:
    events = sorted([(s, 1) for s in frame["start_s"]] + [(e, -1) for e in frame["end_s"]], key=lambda x: (x[0], x[1]))
    level = peak = 0
    for _, step in events:
        level += step
        peak = max(peak, level)
    return peak


def poisson_bounds(mean: float, confidence: float = 0.999) -> tuple[float, float]:
    return stats.poisson.interval(confidence, mean)


# ----------------------------------------------------------------------- arrivals


def test_arrivals_are_poisson_at_the_rate(blue):
    """300 rps for 2 s: the count is Poisson(600) plausible, gaps are exponential (KS), none starts early."""
    rate, duration = 300.0, 2.0
    gen = run_load(blue.url, rate, max_duration_s=duration, seed=3)
    frame = gen.records()
    scheduled = np.sort(frame["scheduled_s"].to_numpy())
    low, high = poisson_bounds(rate * duration)
    assert low <= len(scheduled) <= high
    assert scheduled.max() < duration
    gaps = np.diff(np.concatenate([[0.0], scheduled])) * rate
    assert stats.kstest(gaps, "expon").pvalue > 0.001
    assert len(frame) == gen.totals().scheduled  # every arrival has a result, sent or not
    sent = frame[frame["start_s"].notna()]
    assert len(sent) > 0.5 * len(frame) and (sent["start_s"] >= sent["scheduled_s"]).all()


def test_open_loop_starts_requests_while_earlier_ones_run(blue):
    """With 200 ms answers and 60 arrivals/s, many requests overlap: arrivals do not wait for answers."""
    blue.fault(latency_ms=200)
    gen = run_load(blue.url, 60.0, max_requests=30, max_duration_s=3.0, seed=4)
    frame = gen.records()
    assert len(frame) == 30 and set(frame["result"]) == {RequestResult.OK.value}
    assert frame["latency_ms"].min() >= 200
    assert max_concurrency(frame) >= 5
    assert ((frame["start_s"] - frame["scheduled_s"]) < 0.1).mean() > 0.8  # sent on schedule, not on answers


def test_the_schedule_is_a_function_of_the_seed(closed_url):
    """One seed gives the same arrival times; another seed does not; a second target leaves the first's alone."""
    def schedule(seed: int, extra: bool = False) -> np.ndarray:
        targets = [Target("user", closed_url, 200.0)] + ([Target("preview", closed_url, 50.0)] if extra else [])
        frame = run_load(targets, seed=seed, max_duration_s=0.4).records()
        return np.sort(frame.loc[frame["target"] == "user", "scheduled_s"].to_numpy())

    first = schedule(7)
    assert len(first) > 40
    assert np.array_equal(first, compute_arrival_times(7, "user", 200.0, 0.4))
    assert np.array_equal(schedule(7), first)
    assert np.array_equal(schedule(7, extra=True), first)
    other = schedule(8)
    assert len(other) != len(first) or not np.array_equal(other, first)


# ----------------------------------------------------------------------- bounds


def test_never_more_than_max_requests(blue):
    """At 2,000 rps with max_requests=40, exactly 40 requests are scheduled and the run ends early."""
    begun = time.monotonic()
    gen = run_load(blue.url, 2000.0, max_requests=40, max_duration_s=5.0)
    assert time.monotonic() - begun < 3.0
    assert len(gen.records()) == 40 == gen.totals().scheduled


def test_never_longer_than_max_duration(green):
    """Against 2 s answers, a 0.6 s run ends at 0.6 s: nothing scheduled later, requests still running cancelled."""
    green.fault(latency_ms=2000)
    begun = time.monotonic()
    gen = run_load(green.url, 40.0, max_duration_s=0.6, timeout_s=5.0)
    took = time.monotonic() - begun
    frame = gen.records()
    totals = gen.totals()
    assert took < 1.2
    assert frame["scheduled_s"].max() < 0.6
    assert totals.cancelled == len(frame) > 5 and totals.in_flight == 0
    assert gen.counters() == {}


def test_the_in_flight_cap_drops_and_counts(blue):
    """With at most 3 in flight and 300 ms answers, extra arrivals are dropped and recorded as such."""
    blue.fault(latency_ms=300)
    gen = run_load(blue.url, 100.0, max_requests=40, max_in_flight=3, max_duration_s=3.0)
    frame = gen.records()
    totals = gen.totals()
    dropped = frame[frame["result"] == RequestResult.DROPPED.value]
    sent = frame[frame["result"] != RequestResult.DROPPED.value]
    assert len(frame) == 40 and totals.dropped == len(dropped) > 10
    assert dropped["start_s"].isna().all()
    assert max_concurrency(sent) <= 3
    assert sum(c.requests for c in gen.counters().values()) == totals.finished == len(sent)


def test_an_overloaded_generator_records_what_it_could_not_send(closed_url):
    """20,000 arrivals/s is beyond this generator: arrivals it never reached are recorded as unsent."""
    rate, duration = 20_000.0, 0.2
    gen = run_load(closed_url, rate, max_duration_s=duration, timeout_s=1.0)
    totals = gen.totals()
    low, high = poisson_bounds(rate * duration)
    assert totals.unsent > 0
    assert low <= totals.scheduled <= high
    assert totals.scheduled == totals.sent + totals.unsent + totals.dropped


# ----------------------------------------------------------------------- what is recorded


def test_counters_per_version_match_the_records(blue, green):
    """counters() per version and target equal the records' counts, errors and latency buckets, and only grow."""
    blue.fault(error_rate=0.3)
    targets = [Target("user", blue.url, 150.0), Target("preview", green.url, 50.0)]
    gen = LoadGenerator(targets, seed=5, timeout_s=2.0, max_requests=100_000, max_duration_s=1.2)
    seen: list[dict] = []
    with gen:
        for _ in range(200):  # poll from this thread while the generator runs in its own
            seen.append(gen.counters())
            if gen.wait(0.05):
                break
    assert len(seen) >= 5
    for before, after in zip(seen, seen[1:]):
        for version, counters in before.items():
            assert after[version].requests >= counters.requests and after[version].errors >= counters.errors

    frame = gen.records()
    served = frame[~frame["result"].isin([RequestResult.DROPPED.value, RequestResult.UNSENT.value, RequestResult.CANCELLED.value])]

    def expected(rows) -> Counters:
        buckets = [0] * len(LATENCY_BUCKETS_MS)
        for latency in rows["latency_ms"]:
            buckets[bisect.bisect_left(LATENCY_BUCKETS_MS, latency)] += 1
        errors = int(rows["result"].isin([o.value for o in ERROR_RESULTS]).sum())
        return Counters(len(rows), errors, tuple(buckets))

    assert gen.counters() == {v: expected(rows) for v, rows in served.groupby("version")}
    assert set(gen.counters()) == {"v1", "v2"}
    assert gen.counters("preview") == {"v2": expected(served[served["target"] == "preview"])}
    v1 = gen.counters()["v1"]
    low, high = stats.binom.interval(0.999, v1.requests, 0.3)
    assert low <= v1.errors <= high and v1.requests > 100


def test_error_classes(blue, green, router_url, reset_url, closed_url):
    """Each failure gets its class: refused, reset, timeout, router 5xx (no X-Version) and app 5xx."""
    green.fault(error_rate=1.0)
    blue.fault(latency_ms=1000)
    targets = [
        Target("refused", closed_url, 30.0), Target("router", router_url, 30.0), Target("app", green.url, 30.0),
        Target("reset", reset_url, 30.0), Target("slow", blue.url, 30.0),
    ]
    gen = run_load(targets, max_duration_s=1.2, timeout_s=0.25, seed=6)
    frame = gen.records()
    frame = frame[frame["result"] != RequestResult.CANCELLED.value]
    expected = {"refused": "connect_refused", "router": "router_5xx", "app": "app_5xx", "reset": "connection_reset",
                "slow": "timeout"}
    assert {t: set(rows["result"]) for t, rows in frame.groupby("target")} == {t: {o} for t, o in expected.items()}
    router = frame[frame["target"] == "router"]
    assert set(router["status"]) == {503} and router["version"].isna().all()
    app = frame[frame["target"] == "app"]
    assert set(app["status"]) == {500} and set(app["version"]) == {"v2"}
    no_version = frame[frame["target"] != "app"]
    assert gen.counters()[None] == Counters(len(no_version), len(no_version), gen.counters()[None].latency_buckets)
    assert gen.counters()["v2"].errors == len(app)
    slow = frame[frame["target"] == "slow"]
    assert slow["latency_ms"].between(250, 600).all()


def test_exceptions_are_classified_by_their_cause():
    """The class comes from the exception chain: a refused connect wrapped twice is still connect_refused."""
    import httpx

    def wrapped(inner: BaseException, outer: type[Exception]) -> Exception:
        try:
            try:
                raise inner
            except OSError as exc:
                raise OSError("All connection attempts failed") from exc
        except OSError as exc:
            try:
                raise outer("failed") from exc
            except Exception as final:
                return final

    refused = wrapped(ConnectionRefusedError(111, "refused"), httpx.ConnectError)
    assert classify_exception(refused) == RequestResult.CONNECT_REFUSED
    reset = wrapped(ConnectionResetError(104, "reset"), httpx.ReadError)
    assert classify_exception(reset) == RequestResult.CONNECTION_RESET
    assert classify_exception(httpx.ReadTimeout("slow")) == RequestResult.TIMEOUT
    assert classify_exception(TimeoutError()) == RequestResult.TIMEOUT
    assert classify_exception(httpx.RemoteProtocolError("Server disconnected")) == RequestResult.CONNECTION_RESET
    assert classify_exception(ValueError("odd")) == RequestResult.OTHER


# ----------------------------------------------------------------------- control while running


def test_the_rate_changes_while_running(blue):
    """A spike from 50 to 400 rps mid-run: arrivals before and after the change match each rate."""
    gen = LoadGenerator(blue.url, 50.0, seed=9, timeout_s=2.0, max_requests=100_000, max_duration_s=1.5)
    with gen:
        time.sleep(0.7)
        gen.set_rate(400.0)
        assert gen.wait(5)
    (change,) = gen.rate_changes()
    assert change.rate_rps == 400.0 and 0.6 < change.at_s < 1.0
    scheduled = gen.records()["scheduled_s"]
    before = int((scheduled < change.at_s).sum())
    after = int((scheduled >= change.at_s).sum())
    assert poisson_bounds(50 * change.at_s)[0] <= before <= poisson_bounds(50 * change.at_s)[1]
    assert poisson_bounds(400 * (1.5 - change.at_s))[0] <= after <= poisson_bounds(400 * (1.5 - change.at_s))[1]


def test_a_paused_target_starts_and_stops_at_once(blue):
    """Rate 0 sends nothing; 300 rps starts arrivals within milliseconds; 0 again stops them at once."""
    gen = LoadGenerator(blue.url, 0.0, seed=12, timeout_s=2.0, max_requests=100_000, max_duration_s=1.2)
    with gen:
        time.sleep(0.3)
        assert gen.totals().scheduled == 0
        gen.set_rate(300.0)
        time.sleep(0.4)
        gen.set_rate(0.0)
        assert gen.wait(5)
    start, stop = gen.rate_changes()
    scheduled = gen.records()["scheduled_s"]
    assert scheduled.min() - start.at_s < 0.05  # P(first Exp(300) gap > 50 ms) = e^-15
    assert scheduled.max() < stop.at_s
    low, high = poisson_bounds(300 * (stop.at_s - start.at_s))
    assert low <= len(scheduled) <= high


def test_a_late_event_loop_neither_moves_nor_loses_arrivals(closed_url):
    """With the loop blocked 0.3 s and the rate set to 0 meanwhile, every arrival due before the
    change is still sent at its own scheduled time, and none after."""
    gen = LoadGenerator(closed_url, 300.0, seed=13, timeout_s=1.0, max_requests=100_000, max_duration_s=1.0)
    with gen:
        time.sleep(0.2)
        gen._loop.call_soon_threadsafe(time.sleep, 0.3)  # test-only: make the loop run late
        time.sleep(0.1)
        gen.set_rate(0.0)  # applied when the loop wakes, before the overdue arrivals fire
        assert gen.wait(5)
    (change,) = gen.rate_changes()
    frame = gen.records()
    expected = compute_arrival_times(13, "user", 300.0, change.at_s)
    assert change.at_s > 0.45 and len(expected) > 100
    assert np.array_equal(np.sort(frame["scheduled_s"].to_numpy()), expected)
    overdue = frame[frame["start_s"] >= change.at_s]  # sent after the change: it found them overdue
    assert len(overdue) > 10 and (overdue["scheduled_s"] < change.at_s).all()


def test_a_targets_url_changes_while_running(blue, green):
    """Moving the target from v1's URL to v2's mid-run sends every later arrival to v2."""
    gen = LoadGenerator(blue.url, 100.0, seed=10, timeout_s=2.0, max_requests=100_000, max_duration_s=1.0)
    with gen:
        time.sleep(0.4)
        gen.set_url(green.url)
        assert gen.wait(5)
    frame = gen.records()
    assert set(frame["result"]) <= {"ok", "cancelled", "unsent"}  # cancelled/unsent: cut by the time bound
    frame = frame[frame["result"] == "ok"]
    on_blue, on_green = frame[frame["url"] == blue.url], frame[frame["url"] == green.url]
    assert len(on_blue) > 10 and len(on_green) > 10
    assert set(on_blue["version"]) == {"v1"} and set(on_green["version"]) == {"v2"}
    assert on_blue["scheduled_s"].max() <= on_green["scheduled_s"].min()


def test_naming_a_target_is_required_when_there_are_several(closed_url):
    """With several targets, set_rate and set_url must name one; an unknown name is refused."""
    gen = LoadGenerator([Target("a", closed_url, 1.0), Target("b", closed_url, 1.0)], seed=1, timeout_s=1.0,
                        max_requests=10, max_duration_s=1.0)
    with pytest.raises(ValueError, match="name the one"):
        gen.set_rate(5.0)
    with pytest.raises(KeyError):
        gen.set_url(closed_url, target="c")
    with pytest.raises(ValueError):
        gen.set_rate(-1.0, target="a")


def test_stop_lets_in_flight_requests_finish_within_its_timeout(blue):
    """stop() ends arrivals at once, lets running requests finish within its timeout, and joins the thread."""
    blue.fault(latency_ms=300)
    gen = LoadGenerator(blue.url, 50.0, seed=11, timeout_s=2.0, max_requests=100_000, max_duration_s=10.0)
    with gen:
        time.sleep(0.5)
        assert gen.running
        stopped_at = time.time() - gen.started_at_wall
    assert not gen.running
    totals = gen.totals()
    assert totals.in_flight == 0 and totals.cancelled == 0 and totals.finished > 10
    assert gen.records()["scheduled_s"].max() < stopped_at + 0.05
    assert gen.totals() == totals  # nothing moves after stop


# ----------------------------------------------------------------------- safety


@pytest.mark.parametrize(
    "url, loopback",
    [
        ("http://127.0.0.1:8080/", True), ("http://localhost:1/x", True), ("http://[::1]:80/", True),
        ("http://127.8.9.10/", True), ("http://example.com/", False), ("http://10.0.0.1:8080/", False),
        ("http://[2001:db8::1]/", False), ("ftp://127.0.0.1/", False), ("not a url", False),
    ],
    ids=["127.0.0.1", "localhost", "::1", "127/8", "a host name", "a private address", "a remote v6 address",
         "not http", "garbage"],
)
def test_only_loopback_targets_unless_allowed(url, loopback):
    """Non-loopback targets are refused (constructor and set_url) unless allow_remote=True."""
    assert is_loopback_url(url) is loopback
    if loopback:
        LoadGenerator(url, 1.0, seed=1, timeout_s=1.0, max_requests=1, max_duration_s=1.0)
        return
    with pytest.raises(ValueError):
        LoadGenerator(url, 1.0, seed=1, timeout_s=1.0, max_requests=1, max_duration_s=1.0)
    gen = LoadGenerator("http://127.0.0.1:1/", 1.0, seed=1, timeout_s=1.0, max_requests=1, max_duration_s=1.0)
    with pytest.raises(ValueError):
        gen.set_url(url)
    if url.startswith("http://"):
        LoadGenerator(url, 1.0, seed=1, timeout_s=1.0, max_requests=1, max_duration_s=1.0, allow_remote=True)
