"""The load generator's users: a fixed population in segments, each request drawn from the
seed, sent with ``X-User-Id`` and the segment's headers, as a GET or a POST; and the share
of users a run hurt. Against a real HTTP server on 127.0.0.1 that records what it got and
fails the requests of one segment."""

from __future__ import annotations

import http.server
import json
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd
import pytest

from rolloutlab.live.loadgen import LoadGenerator, RequestResult, Target, compute_arrival_times, summarize
from rolloutlab.live.request_results import RequestRecord, compute_users_affected, records_frame
from rolloutlab.live.user_population import USER_HEADER, UserDraws, UserPopulation, UserSegment

INTERNAL = UserSegment("internal", 0.1, {"X-User-Group": "internal"})
BETA = UserSegment("beta", 0.2, {"cookie": "canary=always"}, requests=0.4)


@contextmanager
def recording_server(fail_header: tuple[str, str] | None = None) -> Iterator[tuple[str, list[dict]]]:
    """An HTTP server keeping (method, headers, body) of each request; 500 for requests
    carrying ``fail_header``."""
    seen: list[dict] = []
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            with lock:
                seen.append({"method": self.command, "headers": headers, "body": body})
            failed = fail_header is not None and headers.get(fail_header[0]) == fail_header[1]
            self.send_response(500 if failed else 200)
            self.send_header("Content-Length", "0")
            self.send_header("X-Version", "v1")
            self.end_headers()

        do_GET = do_POST = _any

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def run(targets, *, seconds: float = 1.5, seed: int = 3) -> LoadGenerator:
    gen = LoadGenerator(targets, seed=seed, timeout_s=2.0, max_requests=10_000, max_duration_s=seconds)
    with gen:
        assert gen.wait(seconds + 10), "the generator did not finish within its bounds"
    return gen


# --------------------------------------------------------------------------- the population (pure)


def test_segments_own_blocks_of_users_and_the_rest_are_everyone_else():
    """Each segment gets its share of the users (rounded, at least one), in order."""
    population = UserPopulation(100, (INTERNAL, BETA))
    assert population.blocks() == [10, 20] and population.rest_users == 70
    assert [population.segment_of(u) for u in (0, 9, 10, 29, 30, 99)] == \
        ["internal", "internal", "beta", "beta", None, None]
    assert UserPopulation(5, (UserSegment("tiny", 0.01),)).blocks() == [1]


@pytest.mark.parametrize("make, message", [
    (lambda: UserPopulation(0), "at least one user"),
    (lambda: UserPopulation(10, (UserSegment("a", 0.7), UserSegment("b", 0.5))), "users add up to more than 1"),
    (lambda: UserPopulation(10, (UserSegment("a", 0.5, requests=0.9), UserSegment("b", 0.2, requests=0.2))),
     "requests add up to more than 1"),
    (lambda: UserPopulation(10, (UserSegment("a", 1.0, requests=0.5),)), "whose are the rest"),
    (lambda: UserPopulation(2, (UserSegment("a", 0.1), UserSegment("b", 0.1), UserSegment("c", 0.1))),
     "too few"),
    (lambda: UserPopulation(10, write_share=1.5), "write_share"),
    (lambda: UserSegment("a", 0.1, {"bad header": "x"}), "not a header"),
    (lambda: UserSegment("a", 0.1, {USER_HEADER: "x"}), "not a header"),
    (lambda: UserSegment("a", 0.0), "within"),
], ids=["no users", "user shares over 1", "request shares over 1", "requests without users",
        "more segments than users", "write share over 1", "header name with a space", "the user header",
        "empty segment"])
def test_impossible_populations_are_refused(make, message):
    """A population that cannot exist is refused with a message that names the problem."""
    with pytest.raises(ValueError, match=message):
        make()


def test_draws_follow_the_shares_and_repeat_with_the_seed():
    """Segments get their share of requests (BETA sends 40% of the requests with 20% of the
    users), users within a segment are uniform, writes have their share: 4-sigma binomial
    bounds on 20 000 draws; the same seed draws the same users."""
    population = UserPopulation(1000, (INTERNAL, BETA), write_share=0.25)
    draws = UserDraws(population, seed=5, target="user")
    sample = [draws.next() for _ in range(20_000)]
    n = len(sample)
    for segment, share in (("internal", 0.1), ("beta", 0.4), (None, 0.5)):
        got = sum(s.segment == segment for s in sample) / n
        assert abs(got - share) <= 4 * math.sqrt(share * (1 - share) / n), (segment, got)
    writes = sum(s.method == "POST" for s in sample) / n
    assert abs(writes - 0.25) <= 4 * math.sqrt(0.25 * 0.75 / n)
    for s in sample:
        number = int(s.user[1:])
        assert population.segment_of(number) == s.segment
        assert s.headers[USER_HEADER] == s.user
    beta_users = {s.user for s in sample if s.segment == "beta"}
    assert len(beta_users) == 200  # ~40 draws per user: every one of the 200 appears
    again = UserDraws(population, seed=5, target="user")
    assert [again.next() for _ in range(100)] == sample[:100]
    other = UserDraws(population, seed=6, target="user")
    assert [other.next().user for _ in range(100)] != [s.user for s in sample[:100]]


def test_users_affected_counts_users_with_at_least_one_failed_answer():
    """Users with a failure among their served requests, over users with a served request;
    requests never sent and requests without a user do not count."""
    rows = [
        RequestRecord("user", "u", 0.0, 0.0, 0.1, RequestResult.OK, 200, "v1", 1.0, "u1", None),
        RequestRecord("user", "u", 0.1, 0.1, 0.2, RequestResult.APP_5XX, 500, "v2", 1.0, "u1", None),
        RequestRecord("user", "u", 0.2, 0.2, 0.3, RequestResult.OK, 200, "v1", 1.0, "u2", "beta"),
        RequestRecord("user", "u", 0.3, 0.3, 0.4, RequestResult.TIMEOUT, None, None, 1.0, "u3", "beta"),
        RequestRecord("user", "u", 0.4, None, None, RequestResult.DROPPED, user="u4"),
        RequestRecord("user", "u", 0.5, 0.5, 0.6, RequestResult.APP_5XX, 500, "v2", 1.0),
    ]
    hurt = compute_users_affected(records_frame(rows))
    assert (hurt.users, hurt.affected, hurt.share) == (3, 2, 2 / 3)
    assert compute_users_affected(records_frame([])).users == 0


# --------------------------------------------------------------------------- on the wire


def test_without_a_population_requests_are_plain_gets_as_before():
    """A target without users sends GETs with no X-User-Id; the records say no user."""
    with recording_server() as (url, seen):
        gen = run([Target("user", url, 40.0)], seconds=1.0)
    assert seen and all(s["method"] == "GET" and "x-user-id" not in s["headers"] for s in seen)
    frame = gen.records()
    assert frame["user"].isna().all() and frame["segment"].isna().all() and set(frame["method"]) == {"GET"}
    assert (gen.totals().users, gen.totals().users_affected) == (0, 0)


def test_requests_carry_their_users_headers_and_writes_are_posts():
    """Every request carries X-User-Id and its segment's headers, and exactly the records'
    writes arrive as POSTs with a body; the arrivals are those of the same seed without users."""
    population = UserPopulation(50, (INTERNAL, BETA), write_share=0.3)
    with recording_server() as (url, seen):
        gen = run([Target("user", url, 60.0, population)], seconds=2.0)
    frame = gen.records()
    done = frame[frame["result"] == RequestResult.OK.value]
    assert len(done) == len(seen) > 60
    by_user = pd.DataFrame({"user": [s["headers"]["x-user-id"] for s in seen],
                            "method": [s["method"] for s in seen],
                            "group": [s["headers"].get("x-user-group") for s in seen],
                            "cookie": [s["headers"].get("cookie") for s in seen]})
    assert sorted(by_user["user"]) == sorted(done["user"])
    assert (by_user["method"] == "POST").sum() == (done["method"] == "POST").sum() > 0
    assert all(json.loads(s["body"]) == {"user": s["headers"]["x-user-id"]} for s in seen if s["method"] == "POST")
    segment = {f"u{u}": population.segment_of(u) for u in range(50)}
    for row in by_user.itertuples():
        assert (row.group == "internal") == (segment[row.user] == "internal")
        assert (row.cookie == "canary=always") == (segment[row.user] == "beta")
    assert [segment[u] for u in frame["user"]] == [None if pd.isna(s) else s for s in frame["segment"]]
    expected = compute_arrival_times(3, "user", 60.0, 2.0)
    assert np.allclose(np.sort(frame["scheduled_s"].to_numpy()), expected)


def test_the_users_a_failing_segment_hurt_are_counted():
    """A server failing every request of the internal segment hurts exactly the internal
    users who sent something: totals, records and the summary agree."""
    population = UserPopulation(40, (INTERNAL, BETA))
    with recording_server(fail_header=("x-user-group", "internal")) as (url, _):
        gen = run([Target("user", url, 60.0, population)], seconds=2.0)
    frame = gen.records()
    internal_seen = frame.loc[frame["segment"] == "internal", "user"].nunique()
    assert internal_seen > 0
    totals = gen.totals()
    assert (totals.users, totals.users_affected) == (frame["user"].nunique(), internal_seen)
    hurt = compute_users_affected(frame)
    assert (hurt.users, hurt.affected) == (totals.users, totals.users_affected)
    assert summarize(gen)["users"] == {"users": hurt.users, "affected": hurt.affected, "share": hurt.share}
