"""A canary's managed routes on the local backend, for real: demo_service.py processes
behind HAProxy (header routes through its runtime API) and, for mirror routes, Debian's
nginx in front copying every request to HAProxy's fe_shadow.

Every test starts real processes and sends real traffic on 127.0.0.1; every wait is
bounded; nothing is left running (``no_leftovers``). Measured figures are attached with
``record_property`` and printed (``pytest -s``).
"""

from __future__ import annotations

import http.client
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from urllib.parse import urlsplit

import pytest

from rolloutlab.errors import LocalBackendError
from rolloutlab.live.loadgen import ERROR_RESULTS, NOT_SERVED, LoadGenerator, Target, UserPopulation, UserSegment
from rolloutlab.live.local import LocalBackend
from rolloutlab.live.runner import Runner, RunnerState
from rolloutlab.strategies import Role, RolloutStatus, ScaleVersion, load_strategy
from rolloutlab.strategies.actions import RemoveRoute, SetHeaderRoute, SetMirrorRoute
from rolloutlab.strategies.routes import RequestTraits, route_request
from rolloutlab.strategies.status import evolve
from tests.outside_systems import needs_haproxy, needs_nginx
from tests.test_local_backend import FAST, ROOT, alive, descendants, plan, record, strategy, until

pytestmark = [needs_haproxy, needs_nginx]


@pytest.fixture
def no_leftovers():
    before = descendants(os.getpid())
    yield
    assert until(lambda: not (descendants(os.getpid()) - before), 5.0), \
        f"processes left running: {descendants(os.getpid()) - before}"


@pytest.fixture
def make_backend(tmp_path, no_leftovers):
    """Local backends on one state directory, closed (and checked clean) after the test."""
    made: list[LocalBackend] = []

    def make(**overrides) -> LocalBackend:
        backend = LocalBackend(tmp_path / "state", **{**FAST, **overrides})
        made.append(backend)
        return backend

    yield make
    for backend in made:
        backend.close()
        assert backend.child_pids() == []
        assert backend.run_dir is None or not backend.run_dir.exists(), "the run directory was not removed"

ROUTES = """\
    name: routes
    strategy:
      canary:
        trafficRouting: router
        managedRoutes:
          - name: mirror-beta
          - name: internal
          - name: beta
          - name: cookie
          - name: api-writes
        steps:
          - setCanaryScale: {replicas: 1}
          - setMirrorRoute:
              name: mirror-beta
              percentage: 100
              match: [{headers: {x-beta: {exact: "1"}}}]
          - setHeaderRoute:
              name: internal
              match:
                - {headerName: x-user-group, headerValue: {exact: internal}}
                - {headerName: x-user-group, headerValue: {prefix: staff-}}
                - {headerName: x-user-group, headerValue: {exact: "qa team; nightly"}}
          - setHeaderRoute:
              name: beta
              match: [{headerName: x-beta, headerValue: {regex: "[0-9]+"}}]
          - setHeaderRoute:
              name: cookie
              match: [{headerName: cookie, headerValue: {regex: ".*canary=always.*"}}]
          - setMirrorRoute:
              name: api-writes
              percentage: 100
              match: [{method: {exact: POST}, path: {prefix: /api}}]
          - setMirrorRoute: {name: mirror-beta}
          - pause: {}
"""

MIRROR = """\
    name: mirror
    strategy:
      canary:
        trafficRouting: router
        managedRoutes: [{name: internal}, {name: shadow}]
        steps:
          - setCanaryScale: {replicas: 1}
          - setMirrorRoute: {name: shadow, percentage: %(percentage)d, match: [%(match)s]}
          - setHeaderRoute:
              name: internal
              match: [{headerName: x-user-group, headerValue: {exact: internal}}]
          - pause: {}
"""
EVERYTHING = "{path: {prefix: /}}"
GETS = "{method: {exact: GET}}"

# (what the row shows, method, path, headers)
REQUESTS = [
    ("no header", "GET", "/", {}),
    ("exact value", "GET", "/", {"x-user-group": "internal"}),
    ("exact is case-sensitive", "GET", "/", {"x-user-group": "Internal"}),
    ("exact value with a space and a ';'", "GET", "/", {"x-user-group": "qa team; nightly"}),
    ("prefix", "GET", "/", {"x-user-group": "staff-ops"}),
    ("prefix at the start only", "GET", "/", {"x-user-group": "my staff-ops"}),
    ("an earlier mirror route keeps a later header route's request", "GET", "/", {"x-beta": "1"}),
    ("regex", "GET", "/", {"x-beta": "12"}),
    ("regex matches the whole value", "GET", "/", {"x-beta": "12a"}),
    ("cookie route", "GET", "/", {"cookie": "a=1; canary=always; b=2"}),
    ("other cookie", "GET", "/", {"cookie": "canary=never"}),
    ("mirror: method and path prefix", "POST", "/api/orders", {}),
    ("mirror: method alone is not enough", "GET", "/api/orders", {}),
    ("mirror: path alone is not enough", "POST", "/shop", {}),
    ("an earlier header route wins over a mirror route", "POST", "/api/orders", {"x-user-group": "internal"}),
    ("an earlier mirror route wins over a later one", "POST", "/api/x", {"x-beta": "1"}),
]


def route_actions(spec, *indices: int) -> list:
    """The actions of steps ``indices`` of a strategy's canary (as reconcile emits them)."""
    out = []
    for i in indices:
        route = spec.strategy.canary.steps[i].route
        if route.match is None:
            out.append(RemoveRoute(route.name))
        elif hasattr(route, "percentage"):
            out.append(SetMirrorRoute(route.name, route.percentage, route.match))
        else:
            out.append(SetHeaderRoute(route.name, route.match))
    return out


def call(url: str, method: str = "GET", path: str = "/", headers: dict | None = None) -> tuple[int, str | None]:
    """(status, X-Version) of one request to ``url``'s host and port."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    try:
        connection.request(method, path, body=b"{}" if method == "POST" else None, headers=headers or {})
        response = connection.getresponse()
        response.read()
        return response.status, response.getheader("X-Version")
    finally:
        connection.close()


def canary_requests(backend: LocalBackend) -> int:
    return backend.router_stats().backend("be_canary").total_sessions


def settled(read, timeout_s: float = 5.0, quiet_s: float = 0.3) -> int:
    """A counter's value once it stopped moving for ``quiet_s`` (copies still in flight)."""
    deadline, last, since = time.monotonic() + timeout_s, read(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now = read()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            break
    return last


def answered(frame):
    """Requests that got a verdict (not those cut by the end of the load)."""
    return frame[~frame["result"].isin([r.value for r in NOT_SERVED])]


def run_load(url: str, rate: float, seconds: float, users: UserPopulation | None, seed: int) -> LoadGenerator:
    """About ``seconds`` of load, ended by a request count, so the last requests finish
    (none is cut short: each sent request's copy and answer are complete)."""
    gen = LoadGenerator([Target("user", url, rate, users)], seed=seed, timeout_s=3.0,
                        max_requests=int(rate * seconds), max_duration_s=3 * seconds + 10)
    with gen:
        assert gen.wait(3 * seconds + 15), "the load did not end within its bounds"
    assert gen.totals().cancelled == 0 and gen.totals().in_flight == 0
    return gen


def routed(make_backend, tmp_path, text: str = ROUTES, replicas: int = 1, **plan_args) -> tuple[LocalBackend, object]:
    spec = strategy(tmp_path, text)
    backend = make_backend()
    backend.ensure(plan(replicas, **plan_args), spec)
    backend.apply(ScaleVersion(Role.CANARY, 1))
    backend.wait_until_serving(10.0)
    return backend, spec


# --------------------------------------------------------------------------- header routes


def test_the_router_routes_every_kind_of_request_as_route_request_says(make_backend, tmp_path):
    """For each request of the table, HAProxy's fe_user answers from the canary exactly
    when ``route_request`` (the simulator's routing) says to_canary, and fe_shadow sends
    the copy on exactly when it says the request is mirrored; removing the routes sends
    everything back to the stable with nothing copied. Neither HAProxy nor nginx restarts."""
    backend, spec = routed(make_backend, tmp_path)
    pids = (backend.router_pid, backend.mirror_pid)
    haproxy = backend.router_urls()
    actions = route_actions(spec, 1, 2, 3, 4, 5)
    for action in actions:
        backend.apply(action)
    in_force = [spec.strategy.canary.steps[i].route for i in (1, 2, 3, 4, 5)]
    wrong = []
    for what, method, path, headers in REQUESTS:
        expected = route_request(in_force, RequestTraits(method, path, {k.lower(): v for k, v in headers.items()}))
        user = call(haproxy["user"], method, path, headers)
        copy = call(haproxy["shadow"], method, path, {**headers, "X-Rolloutlab-Shadow": "1"})
        got = (user[1] == "v2", 1.0 if copy == (200, "v2") else 0.0 if copy[0] == 204 else copy)
        if got != (expected.to_canary, expected.mirror):
            wrong.append((what, got, (expected.to_canary, expected.mirror)))
    assert not wrong, wrong
    assert {route_request(in_force, RequestTraits(m, p, h)).to_canary for _, m, p, h in REQUESTS} == {True, False}
    for action in actions:
        backend.apply(RemoveRoute(action.name))
    assert backend.routes() == {}
    for what, method, path, headers in REQUESTS:
        assert call(haproxy["user"], method, path, headers)[1] == "v1", what
        assert call(haproxy["shadow"], method, path, headers)[0] == 204, what
    assert (backend.router_pid, backend.mirror_pid) == pids


def test_a_header_route_sends_exactly_the_matching_users_to_the_canary(make_backend, tmp_path, record_property):
    """Users of the internal segment (header) and of the beta segment (cookie) get the
    canary, every request of theirs; everyone else gets the stable; removing the routes
    sends everybody back to the stable. No request fails."""
    backend, spec = routed(make_backend, tmp_path)
    for action in route_actions(spec, 2, 4):
        backend.apply(action)
    users = UserPopulation(200, (UserSegment("internal", 0.1, {"x-user-group": "internal"}),
                                 UserSegment("beta", 0.1, {"cookie": "session=7; canary=always"})))
    url = backend.urls()["user"]
    gen = run_load(url, 50.0, 3.0, users, seed=1)
    frame = answered(gen.records())
    assert gen.totals().errors == 0 and len(frame) > 80
    routed_users = frame["segment"].isin(["internal", "beta"])
    assert set(frame.loc[routed_users, "version"]) == {"v2"} and routed_users.sum() > 5
    assert set(frame.loc[~routed_users, "version"]) == {"v1"}
    record(record_property, "header_route_split", frame.groupby(frame["segment"].fillna("-"))["version"]
           .value_counts().to_dict())
    backend.apply(RemoveRoute("internal"))
    backend.apply(RemoveRoute("cookie"))
    after = answered(run_load(url, 50.0, 1.5, users, seed=2).records())
    assert set(after["version"]) == {"v1"} and after["segment"].notna().any()


HEADERS_ONLY = """\
    name: headers-only
    strategy:
      canary:
        trafficRouting: router
        managedRoutes: [{name: internal}]
        steps:
          - setHeaderRoute:
              name: internal
              match: [{headerName: x-user-group, headerValue: {exact: internal}}]
          - pause: {}
"""


def test_a_strategy_without_mirror_routes_keeps_users_on_haproxy_directly(make_backend, tmp_path):
    """Header routes alone need no nginx: users enter at HAProxy as before."""
    backend, spec = routed(make_backend, tmp_path, HEADERS_ONLY)
    assert backend.mirror_pid is None and backend.urls()["user"] == backend.router_urls()["user"]
    assert backend.router_urls()["shadow"] is None
    backend.apply(route_actions(spec, 0)[0])
    assert call(backend.urls()["user"], headers={"x-user-group": "internal"})[1] == "v2"


@pytest.mark.parametrize("name, action", [
    ("rolling", SetHeaderRoute("internal", ())),
    ("blue-green", RemoveRoute("internal")),
], ids=["a layout without a router", "a router without managed routes"])
def test_route_actions_are_refused_where_no_route_can_live(make_backend, name, action):
    """A shared layout (traffic follows pods) or a router configured without managed
    routes refuses route actions, saying why."""
    backend = make_backend()
    backend.ensure(plan(1), load_strategy(name))
    with pytest.raises(LocalBackendError, match="needs a router per version|declares no managedRoutes"):
        backend.apply(action)


def test_a_route_the_configuration_cannot_hold_is_refused_and_nothing_changes(make_backend, tmp_path):
    """A route name not in managedRoutes, or a header no step of the route tests, is
    refused (the configuration was generated from the steps); the routes in force stay."""
    backend, spec = routed(make_backend, tmp_path)
    internal, = route_actions(spec, 2)
    backend.apply(internal)
    with pytest.raises(LocalBackendError, match="not a managed route"):
        backend.apply(RemoveRoute("nobody"))
    beta, = route_actions(spec, 3)
    with pytest.raises(LocalBackendError, match="no setHeaderRoute step"):
        backend.apply(SetHeaderRoute("internal", beta.match))
    assert backend.routes() == {"internal": internal}
    assert call(backend.urls()["user"], headers={"x-user-group": "internal"})[1] == "v2"


# --------------------------------------------------------------------------- mirroring


def test_half_of_the_copies_reach_the_canary_and_users_only_see_the_stable(make_backend, tmp_path, record_property):
    """A mirror route at 50% on GETs: about half the requests' copies reach the canary (a
    4-sigma binomial bound), every user answer comes from the stable, none fails."""
    backend, spec = routed(make_backend, tmp_path, MIRROR % {"percentage": 50, "match": GETS})
    before = canary_requests(backend)
    backend.apply(route_actions(spec, 1)[0])
    gen = run_load(backend.urls()["user"], 50.0, 6.0, UserPopulation(100), seed=3)
    frame = answered(gen.records())
    copies = settled(lambda: canary_requests(backend)) - before
    n = int((frame["result"] == "ok").sum())
    share = copies / n
    record(record_property, "mirror_50_share", f"{copies} of {n} copies reached the canary ({share:.1%})")
    assert gen.totals().errors == 0 and set(frame["version"]) == {"v1"}
    assert abs(share - 0.5) <= 4 * math.sqrt(0.25 / n), share
    assert backend.router_stats().frontend("fe_shadow").requests >= n  # nginx copied every request


def test_a_canary_failing_every_copy_fails_no_user(make_backend, tmp_path, record_property):
    """The canary answers 500 to everything and gets a copy of every request: users see
    the stable's answers only, not one failure; the canary's failures are real."""
    backend, spec = routed(make_backend, tmp_path, MIRROR % {"percentage": 100, "match": EVERYTHING},
                           canary_env={"DEMO_ERROR_RATE": "1"})
    backend.apply(route_actions(spec, 1)[0])
    gen = run_load(backend.urls()["user"], 40.0, 4.0, UserPopulation(50, write_share=0.3), seed=4)
    frame = answered(gen.records())
    failed_copies = settled(lambda: backend.router_stats().backend("be_canary").responses_5xx)
    record(record_property, "failing_shadow", f"{failed_copies} copies failed on the canary; users: "
           f"{gen.totals().results}")
    assert gen.totals().errors == 0 and set(frame["version"]) == {"v1"}
    assert failed_copies == int((frame["result"] == "ok").sum())  # POSTs too: the match is the path


def test_a_mirror_route_on_gets_copies_no_write(make_backend, tmp_path):
    """A mirror route matching method GET at 100%: every GET's copy reaches the canary, no
    POST's (users send 40% writes)."""
    backend, spec = routed(make_backend, tmp_path, MIRROR % {"percentage": 100, "match": GETS})
    before = canary_requests(backend)
    backend.apply(route_actions(spec, 1)[0])
    gen = run_load(backend.urls()["user"], 40.0, 4.0, UserPopulation(50, write_share=0.4), seed=5)
    frame = gen.records()
    answered = frame[frame["result"] == "ok"]
    gets, posts = int((answered["method"] == "GET").sum()), int((answered["method"] == "POST").sum())
    assert posts > 10 and gets > 10 and gen.totals().errors == 0
    assert settled(lambda: canary_requests(backend)) - before == gets


def test_nginx_in_the_chain_costs_little_and_users_never_wait_for_a_slow_copy(make_backend, tmp_path,
                                                                                record_property):
    """Users' latency straight to HAProxy, through nginx copying nothing to the canary, and
    through nginx copying every request to a canary 300 ms slower: the last is no slower
    for users than a copy-free path by anything near the canary's delay (the copy's answer
    is never waited for). Figures recorded; the only assertion is that relation."""
    backend, spec = routed(make_backend, tmp_path, MIRROR % {"percentage": 100, "match": EVERYTHING},
                           stable_env={"DEMO_LATENCY_MS": "5"},
                           canary_env={"DEMO_LATENCY_MS": "300"})
    users = UserPopulation(100)

    def latency(url: str, seed: int) -> dict:
        frame = answered(run_load(url, 40.0, 6.0, users, seed).records())
        assert set(frame["version"]) == {"v1"} and (frame["result"] == "ok").all()
        lat = frame["latency_ms"]
        return {"p50": round(float(lat.median()), 2), "p99": round(float(lat.quantile(0.99)), 2), "n": len(lat)}

    measured = {"haproxy": latency(backend.router_urls()["user"], 6), "nginx": latency(backend.urls()["user"], 7)}
    backend.apply(route_actions(spec, 1)[0])
    measured["nginx, every request copied to a 300 ms canary"] = latency(backend.urls()["user"], 8)
    measured["added by nginx (p50, p99)"] = (round(measured["nginx"]["p50"] - measured["haproxy"]["p50"], 2),
                                             round(measured["nginx"]["p99"] - measured["haproxy"]["p99"], 2))
    record(record_property, "nginx_latency_ms", measured)
    assert measured["nginx, every request copied to a 300 ms canary"]["p50"] < measured["nginx"]["p50"] + 150


def test_nginx_that_dies_is_restarted_on_the_same_address(make_backend, tmp_path):
    """nginx killed under the backend comes back on the users' address, still copying."""
    backend, spec = routed(make_backend, tmp_path)
    user, pid = backend.urls()["user"], backend.mirror_pid
    os.kill(pid, signal.SIGKILL)

    def answers() -> bool:
        try:
            return call(user)[1] == "v1"
        except OSError:
            return False
    assert until(lambda: backend.mirror_pid not in (None, pid) and answers(), 5.0)
    assert backend.urls()["user"] == user
    assert any(e.kind == "error" and "nginx exited" in e.detail for e in backend.events)


# --------------------------------------------------------------------------- records and resumes


def test_a_resumed_run_re_applies_the_recorded_routes(make_backend, tmp_path):
    """Routes applied by a backend that was then closed are in force again on a new
    backend of the same state directory (from its record), and from the runner's status
    when there is no record."""
    first, spec = routed(make_backend, tmp_path)
    internal, shadow = route_actions(spec, 2, 5)
    first.apply(internal)
    first.apply(shadow)
    first.close()

    second = make_backend()
    second.ensure(plan(1), spec)
    second.wait_until_serving(10.0)
    assert second.resumed and second.routes() == {"internal": internal, "api-writes": shadow}
    assert call(second.urls()["user"], headers={"x-user-group": "internal"})[1] == "v2"
    before = canary_requests(second)
    assert call(second.urls()["user"], "POST", "/api/orders")[1] == "v1"
    assert settled(lambda: canary_requests(second)) == before + 1  # the write's copy
    second.close()

    (second.state_dir / "backend.json").unlink()
    status = evolve(RolloutStatus(started_at=0.0, step_index=6), routes=(("internal", 2), ("api-writes", 5)))
    second.save_state(RunnerState("demo-v2", time.time(), 1.0, status, 1).dump())
    third = make_backend()
    third.ensure(plan(1), spec)
    assert third.routes() == {"internal": internal, "api-writes": shadow}
    assert json.loads((third.state_dir / "backend.json").read_text())["routes"].keys() == {"internal", "api-writes"}


RUNNER = """\
    name: routes-then-weight
    strategy:
      canary:
        trafficRouting: router
        managedRoutes: [{name: internal}, {name: shadow}]
        steps:
          - setCanaryScale: {replicas: 1}
          - setHeaderRoute:
              name: internal
              match: [{headerName: x-user-group, headerValue: {exact: internal}}]
          - setMirrorRoute: {name: shadow, percentage: 100, match: [{method: {exact: GET}}]}
          - pause: {duration: 30}
          - setWeight: 50
          - pause: {duration: 30}
"""


def test_the_runner_applies_route_steps_and_promotion_removes_them(make_backend, tmp_path, record_property):
    """The runner, time-compressed, on a canary whose steps add a header route and a
    mirror route before any weight: until the weight moves, internal users get the canary
    and nobody else does; at promotion the routes are gone. No user request fails."""
    spec = strategy(tmp_path, RUNNER)
    the_plan = plan(2)
    backend = make_backend()
    backend.ensure(the_plan, spec)
    backend.wait_until_serving(10.0)
    users = UserPopulation(100, (UserSegment("internal", 0.2, {"x-user-group": "internal"}),), write_share=0.2)
    gen = LoadGenerator([Target("user", backend.urls()["user"], 40.0, users)], seed=9, timeout_s=3.0,
                        max_requests=3000, max_duration_s=30.0)
    with gen:
        summary = Runner(spec, the_plan, backend, metrics=gen, time_scale=20.0, tick_s=0.1).run(max_wall_s=25.0)
        time.sleep(0.5)
        gen.stop(2.0)
    frame = gen.records().sort_values("start_s")
    assert summary.finished and summary.status.outcome == "promoted", summary.status.message
    assert backend.routes() == {} and json.loads((backend.state_dir / "backend.json").read_text())["routes"] == {}
    assert not frame["result"].isin([r.value for r in ERROR_RESULTS]).any()
    others = frame["segment"].isna()
    weight_moved = frame.loc[others & (frame["version"] == "v2"), "start_s"].min()
    internal = frame[~others & (frame["start_s"] < weight_moved)]
    routed_at = internal.loc[internal["version"] == "v2", "start_s"].min()
    record(record_property, "runner_routes", f"internal users on the canary from t={routed_at:.2f}s, "
           f"weight moved at t={weight_moved:.2f}s; {summary.status.outcome}")
    assert routed_at < weight_moved
    assert set(internal.loc[internal["start_s"] > routed_at + 0.2, "version"]) == {"v2"}


CHILD = """
import json, sys, textwrap, time
from pathlib import Path
from rolloutlab.live.local import LocalBackend
from rolloutlab.live.runner import LiveVersion, ReleasePlan
from rolloutlab.strategies import load_strategy
path = Path(sys.argv[1]) / "routes.yaml"
path.write_text(textwrap.dedent(sys.argv[2]))
backend = LocalBackend(Path(sys.argv[1]) / "state")
backend.ensure(ReleasePlan("demo", "r", 1, LiveVersion("v1"), LiveVersion("v2")), load_strategy(path))
backend.wait_until_serving(10)
print(json.dumps({"pids": backend.child_pids(), "nginx": backend.mirror_pid, "run_dir": str(backend.run_dir)}),
      flush=True)
sys.stdin.readline()
time.sleep(60)
"""


def test_nginx_dies_with_the_python_process(tmp_path, no_leftovers):
    """nginx, like the pods and HAProxy, is killed by the kernel when the Python process
    that started it is SIGKILLed (PR_SET_PDEATHSIG; no master process to outlive it)."""
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path), ROUTES], cwd=ROOT, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    seen = {"pids": [], "run_dir": None}
    try:
        line = child.stdout.readline()
        assert line, "the child process did not start its backend"
        seen = json.loads(line)
        assert seen["nginx"] in seen["pids"] and all(alive(p) for p in seen["pids"])
        child.kill()
        child.wait(10)
        assert until(lambda: not any(alive(p) for p in seen["pids"]), 5.0), \
            f"left running: {[p for p in seen['pids'] if alive(p)]}"
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
        child.stdout.close()
        child.stdin.close()
        for pid in seen["pids"]:  # when the test failed: leave nothing behind anyway
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        if seen["run_dir"]:
            shutil.rmtree(seen["run_dir"], ignore_errors=True)  # after SIGKILL no cleanup code ran
