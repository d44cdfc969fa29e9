"""The local live backend, for real: demo_service.py processes behind HAProxy on 127.0.0.1.

Every test starts real processes (the demo service, HAProxy) and sends real traffic on the
loopback interface only; every wait is bounded; and every test checks that nothing it
started is left running (the ``no_leftovers`` fixture scans /proc for our descendants).
Measured figures (failures, split, delays) are attached with ``record_property`` and
printed (``pytest -s``) for the calibration record.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

from rolloutlab.errors import LocalBackendError
from rolloutlab.live.haproxy import (
    HAPROXY,
    Layout,
    RouterFiles,
    RouterLayout,
    RouterRetries,
    RouterSettings,
    render_config,
    render_map,
)
from rolloutlab.live.loadgen import ERROR_RESULTS, LoadGenerator, RequestResult, Target
from rolloutlab.live.local import Backoff, LocalBackend, PodPhase, Probe, parse_commands, record_from_status
from rolloutlab.live.runner import LiveVersion, ReleasePlan, Runner, RunnerState
from rolloutlab.strategies import (
    Command,
    CommandRequest,
    Role,
    RolloutStatus,
    ScaleVersion,
    SetCanaryWeight,
    SwitchActive,
    SwitchPreview,
    load_strategy,
)
from rolloutlab.strategies.status import evolve
from tests.outside_systems import needs_haproxy

ROOT = Path(__file__).resolve().parents[1]

pytestmark = needs_haproxy

FAST = dict(probe=Probe(period_s=0.1, timeout_s=0.25), backoff=Backoff(base_s=0.2, cap_s=0.8),
            termination_grace_s=2.0, seed=11)


# --------------------------------------------------------------------------- helpers


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (zombies included: an unreaped child is a leak too)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = set(), {pid}
    while frontier:
        children = {p for p, parent in parents.items() if parent in frontier} - found
        found |= children
        frontier = children
    return found


def alive(pid: int) -> bool:
    """Running (a zombie waiting for init to reap it is not running)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def until(predicate, timeout_s: float, step_s: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step_s)
    return predicate()


@pytest.fixture
def no_leftovers():
    before = descendants(os.getpid())
    yield
    assert until(lambda: not (descendants(os.getpid()) - before), 5.0), \
        f"processes left running: {descendants(os.getpid()) - before}"


@pytest.fixture
def state_dir(tmp_path):
    return tmp_path / "state"


@pytest.fixture
def make_backend(state_dir, no_leftovers):
    made: list[LocalBackend] = []

    def make(**overrides) -> LocalBackend:
        backend = LocalBackend(state_dir, **{**FAST, **overrides})
        made.append(backend)
        return backend

    yield make
    for backend in made:
        backend.close()
        assert backend.child_pids() == []
        assert backend.run_dir is None or not backend.run_dir.exists(), "the run directory was not removed"


def plan(replicas: int = 2, stable_env: dict | None = None, canary_env: dict | None = None,
         release: str = "demo-v2") -> ReleasePlan:
    return ReleasePlan("demo", release, replicas, LiveVersion("v1", stable_env or {}), LiveVersion("v2", canary_env or {}))


def strategy(tmp_path: Path, text: str):
    path = tmp_path / "strategy.yaml"
    path.write_text(textwrap.dedent(text))
    return load_strategy(path)


def load(targets, rate: float | None = None, *, seconds: float, timeout_s: float = 2.0, seed: int = 7) -> LoadGenerator:
    rates = rate if rate is not None else sum(t.rate_rps for t in targets)
    return LoadGenerator(targets, rate, seed=seed, timeout_s=timeout_s,
                         max_requests=int(rates * seconds * 2) + 200, max_duration_s=seconds)


def failures(totals) -> set[str]:
    """The kinds of failed requests (not the ones never sent or cut by the end of the load)."""
    return {r for r, n in totals.results.items() if n and RequestResult(r) in ERROR_RESULTS}


def get_version(url: str) -> str | None:
    with urllib.request.urlopen(url, timeout=2) as response:
        return response.headers.get("X-Version")


def record(record_property, name: str, value) -> None:
    record_property(name, value)
    print(f"\n[measured] {name} = {value}")


# --------------------------------------------------------------------------- pure parts


def test_generated_configurations_are_valid_haproxy(tmp_path):
    """HAProxy itself accepts both layouts' generated configuration."""
    files = RouterFiles(tmp_path)
    files.routes_map.write_text(render_map({"active": "be_stable", "preview": "be_none"}))
    files.weights_map.write_text(render_map({"canary": 0}))
    for layout in Layout:
        for settings in (RouterSettings(), RouterSettings(retries=RouterRetries.none(), access_log=True)):
            files.config.write_text(render_config(RouterLayout(layout, {"stable": 3, "canary": 3}), settings,
                                                  files, 18001, 18002))
            check = subprocess.run([HAPROXY, "-c", "-f", str(files.config)], capture_output=True, text=True)
            assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.parametrize("text, expected", [
    ("3 abort\n", (CommandRequest(3, Command.ABORT),)),
    ("# a person's note\n\n1 promote\n2 promoteFull  # skip the rest\n",
     (CommandRequest(1, Command.PROMOTE), CommandRequest(2, Command.PROMOTE_FULL))),
    ("", ()),
], ids=["one command", "comments and blank lines", "empty file"])
def test_commands_file_format(text, expected):
    """The commands file holds '<id> <command>' lines."""
    assert parse_commands(text) == expected


@pytest.mark.parametrize("text", ["abort\n", "3 explode\n", "x abort\n"],
                         ids=["no id", "unknown command", "id not a number"])
def test_malformed_commands_are_refused_with_their_line(text):
    """A command is never guessed: a malformed line raises, naming the line."""
    with pytest.raises(LocalBackendError, match=":1:"):
        parse_commands(text)


@pytest.mark.parametrize("name, status, desired, weight, active", [
    ("rolling", None, {"stable": 4, "canary": 0}, 0, "stable"),
    ("canary", RolloutStatus(started_at=0.0, applied_weight=0, step_index=2), {"stable": 4, "canary": 0}, 0, "stable"),
    ("canary", RolloutStatus(started_at=0.0, completed=True, scale_down_at=None), {"stable": 0, "canary": 4}, 100, "canary"),
    ("canary", RolloutStatus(started_at=0.0, aborted=True, restored_at=5.0, scale_down_at=None), {"stable": 4, "canary": 0}, 0, "stable"),
    ("blue-green", RolloutStatus(started_at=0.0, step_index=2), {"stable": 4, "canary": 4}, 0, "stable"),
    ("blue-green", RolloutStatus(started_at=0.0, step_index=4, active=Role.CANARY), {"stable": 4, "canary": 4}, 0, "canary"),
    ("blue-green", RolloutStatus(started_at=0.0, completed=True, scale_down_at=300.0), {"stable": 4, "canary": 4}, 100, "canary"),
], ids=["first run", "canary mid-rollout", "canary promoted", "canary rolled back",
        "blue-green at the gate", "blue-green switched", "blue-green promoted, old version kept for its delay"])
def test_scale_implied_by_a_persisted_status(name, status, desired, weight, active):
    """Without a backend record, a resume rebuilds the scale and routes the status implies."""
    got = record_from_status(plan(4), load_strategy(name), status)
    assert (got.desired, got.canary_weight, got.active) == (desired, weight, active)


def test_a_scenario_probe_is_compressed_by_the_time_scale():
    """A scenario's readiness probe (10 s period, 1 s timeout) at time scale 20."""
    from rolloutlab.scenarios.schema import ReadinessProbe
    probe = Probe.from_readiness(ReadinessProbe(period=10.0, timeout=1.0, failure_threshold=3), time_scale=20.0)
    assert (probe.period_s, probe.timeout_s, probe.success_threshold, probe.failure_threshold) == (0.5, 0.05, 1, 3)
    check = probe.health_check()
    assert (check.interval_s, check.timeout_s, check.rise, check.fall) == (0.5, 0.05, 1, 3)


def test_state_is_written_atomically_and_commands_get_growing_ids(state_dir):
    """save_state replaces the file in one step; leave_command picks an id above every used one."""
    backend = LocalBackend(state_dir)
    try:
        assert backend.load_state() is None and backend.commands() == ()
        state = RunnerState("demo-v2", 100.0, 10.0, evolve(RolloutStatus(), last_command_id=4), next_command_id=6)
        backend.save_state(state.dump())
        assert RunnerState.load(backend.load_state()) == state
        assert [p.name for p in state_dir.iterdir()] == ["state.json"]  # no temporary file left behind
        assert backend.leave_command(Command.ABORT) == CommandRequest(6, Command.ABORT)
        assert backend.leave_command(Command.PROMOTE) == CommandRequest(7, Command.PROMOTE)
        assert (state_dir / "commands").read_text() == "6 abort\n7 promote\n"
    finally:
        backend.close()


# --------------------------------------------------------------------------- pods


def test_pods_are_ready_only_when_their_endpoint_says_so_and_scale_both_ways(make_backend, record_property):
    """Readiness is the pod's own /healthz/ready (a 0.6 s warm-up shows); ScaleVersion adds
    and deletes processes; a terminating pod stops counting at once and its process ends."""
    backend = make_backend()
    backend.ensure(plan(2, stable_env={"DEMO_START_DELAY_S": "0.6"}), load_strategy("rolling"))
    stable, canary = backend.observe()
    assert (stable.replicas, stable.ready, canary.replicas) == (2, 0, 0)
    assert backend.wait_until(lambda: backend.observe()[0].ready == 2, 8.0)
    starts = backend.calibration().start_to_ready_s
    record(record_property, "start_to_ready_s_with_0.6s_warmup", [round(s, 3) for s in starts])
    assert len(starts) == 2 and all(0.6 <= s < 3.0 for s in starts)
    assert {get_version(backend.urls()["user"]) for _ in range(10)} == {"v1"}

    backend.apply(ScaleVersion(Role.STABLE, 4))
    names = {p.name for p in backend.pods()}
    backend.apply(ScaleVersion(Role.STABLE, 4))  # idempotent: no extra pod
    assert {p.name for p in backend.pods()} == names and len(names) == 4
    begun = time.monotonic()
    backend.wait(5.0)  # wakes at the first readiness change, not after 5 s
    assert time.monotonic() - begun < 3.0
    backend.wait_until_serving(8.0)

    pids = {p.name: p.pid for p in backend.pods()}
    backend.apply(ScaleVersion(Role.STABLE, 1))
    stable, _ = backend.observe()
    assert (stable.replicas, stable.ready) == (1, 1)  # the three terminating pods count no more
    survivor = next(p for p in backend.pods() if p.phase is not PodPhase.TERMINATING)
    gone = [pid for name, pid in pids.items() if name != survivor.name]
    assert until(lambda: not any(alive(pid) for pid in gone), 3.0), "deleted pods' processes still run"
    assert until(lambda: len(backend.pods()) == 1, 2.0)
    servers = backend.router_stats().servers("be_app")
    assert [s.name for s in servers if s.status.startswith("UP")] == [survivor.slot]
    assert {get_version(backend.urls()["user"]) for _ in range(10)} == {"v1"}


def test_a_draining_pod_leaves_the_rotation_through_the_health_check(make_backend, record_property):
    """With the endpoint removed only after a lag (kube-proxy's), a SIGTERMed pod that
    answers 503 on readiness while it drains is taken out by HAProxy's own check, and no
    user request fails while two of three pods go."""
    backend = make_backend(endpoint_lag_s=1.2)
    backend.ensure(plan(3, stable_env={"DEMO_DRAIN_S": "0.9"}), load_strategy("rolling"))
    backend.wait_until_serving(8.0)
    with load(backend.urls()["user"], 150.0, seconds=3.0) as gen:
        time.sleep(0.5)
        slots = {p.name: p.slot for p in backend.pods()}
        backend.apply(ScaleVersion(Role.STABLE, 1))
        leaving = [slots[p.name] for p in backend.pods() if p.phase is PodPhase.TERMINATING]
        assert len(leaving) == 2
        # before the lag is over, HAProxy's check already took them out
        assert until(lambda: all(s.status.startswith("DOWN") for s in backend.router_stats().servers("be_app")
                                 if s.name in leaving), 1.0)
        gen.wait(5.0)
    totals = gen.totals()
    record(record_property, "draining_scale_down_failures", f"{totals.errors} of {totals.finished}")
    assert totals.finished > 300 and totals.errors == 0 and totals.dropped == 0


def test_a_crash_looping_version_never_becomes_ready_and_restarts_with_backoff(make_backend):
    """A process that exits at start is restarted after 0.2, 0.4, 0.8 s (base 0.2, cap 0.8),
    never counts as ready and never enters the router's rotation."""
    backend = make_backend()
    backend.ensure(plan(1, canary_env={"DEMO_CRASH_ON_START": "1", "DEMO_CRASH_AFTER_S": "0.05"}),
                   load_strategy("rolling"))
    backend.wait_until_serving(8.0)
    backend.apply(ScaleVersion(Role.CANARY, 1))
    deadline = time.monotonic() + 3.4
    while time.monotonic() < deadline:
        _, canary = backend.observe()
        assert (canary.replicas, canary.ready) == (1, 0)
        backend.wait(0.05)
    pod = backend.pods(Role.CANARY)[0]
    assert pod.restarts >= 3 and not pod.routed
    events = [e for e in backend.events if e.pod == pod.name and e.kind in ("started", "exited")]
    exits = [e.at for e in events if e.kind == "exited"]
    starts = [e.at for e in events if e.kind == "started"]
    gaps = [start - exit_ for exit_, start in zip(exits, starts[1:])]
    assert len(gaps) >= 3
    for gap, expected in zip(gaps, [0.2, 0.4, 0.8, 0.8]):
        assert expected - 0.01 <= gap <= expected + 0.2, f"restart delays {gaps}"
    canary_slot = backend.router_stats().servers("be_app")
    assert all(s.total_sessions == 0 for s in canary_slot if s.name.startswith("canary"))


@pytest.mark.parametrize("retries", [RouterRetries(), RouterRetries.none()], ids=["router retries", "no retries"])
def test_killed_pods_restart_and_the_router_retries_around_them(make_backend, record_property, retries):
    """SIGKILL two of four pods under 200 rps, with the endpoint removed only 1 s after the
    crash (kube-proxy's lag): HAProxy's health check takes them out, the kubelet-like
    supervisor restarts them, and the router's retries (conn-failure, empty-response, on
    another server) are what keep users from seeing the crash."""
    backend = make_backend(endpoint_lag_s=1.0, router=RouterSettings(check=FAST["probe"].health_check(), retries=retries))
    backend.ensure(plan(4), load_strategy("rolling"))
    backend.wait_until_serving(8.0)
    with load(backend.urls()["user"], 200.0, seconds=3.0) as gen:
        time.sleep(0.8)
        before = {p.name: p for p in backend.pods()}
        killed = backend.kill_pods(Role.STABLE, 2)
        killed_at = time.monotonic()
        assert len(killed) == 2
        slots = [before[name].slot for name in killed]
        assert until(lambda: all(s.status.startswith("DOWN") for s in backend.router_stats().servers("be_app")
                                 if s.name in slots), 1.0), "HAProxy's check did not take the crashed pods out"
        assert time.monotonic() - killed_at < 1.0  # the check, not the lagging endpoint removal
        assert backend.wait_until(lambda: backend.observe()[0].ready == 4, 3.0)
        gen.wait(5.0)
    after = {p.name: p for p in backend.pods()}
    assert all(after[name].pid != before[name].pid and after[name].restarts == 1 for name in killed)
    totals, stats = gen.totals(), backend.router_stats()
    record(record_property, f"sigkill_2_of_4_failures_{'retries' if retries.retries else 'no_retries'}",
           f"{totals.errors} of {totals.finished} {totals.results} (router retries {stats.retries}, "
           f"redispatches {stats.redispatches}, router 5xx {stats.proxy_5xx})")
    assert totals.finished > 400
    if retries.retries:
        assert totals.errors <= 2, totals.results
        assert stats.redispatches > 0  # the retries did happen: requests met the dead pods
    else:
        # requests sent to a dead pod: 503 from the router, or a cut connection when the
        # pod died under them
        assert totals.errors > 0 and failures(totals) <= {"router_5xx", "connection_reset"}
        assert stats.proxy_5xx == totals.results.get("router_5xx", 0)


def test_a_stopped_pod_leaves_the_rotation_by_health_check_and_returns(make_backend, record_property):
    """SIGSTOP one of four pods: HAProxy's check (0.1 s inter, 0.25 s timeout, fall 2)
    marks it down within a second, it then gets no new request, and after SIGCONT it is
    back. Only requests sent to it before that can fail (client timeout 1 s)."""
    backend = make_backend()
    backend.ensure(plan(4), load_strategy("rolling"))
    backend.wait_until_serving(8.0)
    rate = 200.0
    with load(backend.urls()["user"], rate, seconds=4.5, timeout_s=1.0) as gen:
        time.sleep(0.5)
        (name,) = backend.pause_pods(Role.STABLE, 1, duration_s=2.5)
        paused_at = time.monotonic()
        slot = next(p.slot for p in backend.pods() if p.name == name)

        def server():
            return next(s for s in backend.router_stats().servers("be_app") if s.name == slot)
        assert until(lambda: server().status.startswith("DOWN"), 1.5), server()
        detected_s = time.monotonic() - paused_at
        sessions = server().total_sessions
        assert backend.wait_until(lambda: backend.observe()[0].ready == 3, 1.0)
        time.sleep(1.0)
        assert server().total_sessions == sessions, "a server marked down still received requests"
        assert until(lambda: server().status == "UP", 2.5)
        assert backend.wait_until(lambda: backend.observe()[0].ready == 4, 1.0)
        gen.wait(6.0)
    totals = gen.totals()
    record(record_property, "sigstop_detection_s", round(detected_s, 3))
    record(record_property, "sigstop_failures", f"{totals.errors} of {totals.finished} {totals.results}")
    assert totals.finished > 600
    # at most its share of traffic for the detection time, with a generous margin
    assert totals.errors <= rate / 4 * detected_s * 2 + 5
    assert failures(totals) <= {"timeout"}


def test_set_fault_reaches_running_and_restarted_pods(make_backend):
    """set_fault POSTs to every pod of the version, and pods started later get it too."""
    backend = make_backend()
    backend.ensure(plan(1), load_strategy("rolling"))
    backend.wait_until_serving(8.0)
    assert list(backend.set_fault(Role.STABLE, error_rate=1.0).values()) == [True]
    with pytest.raises(Exception, match="500"):
        get_version(backend.urls()["user"])
    backend.kill_pods(Role.STABLE, 1)
    assert backend.wait_until(lambda: backend.observe()[0].ready == 0, 1.0)
    assert backend.wait_until(lambda: backend.observe()[0].ready == 1, 3.0)
    with pytest.raises(Exception, match="500"):
        get_version(backend.urls()["user"])
    with pytest.raises(LocalBackendError, match="unknown fault"):
        backend.set_fault(Role.STABLE, no_such_fault=1)


def test_a_router_that_dies_is_restarted_on_the_same_address(make_backend):
    """HAProxy killed under the backend comes back on the users' address, with the pods
    that were serving back in rotation."""
    backend = make_backend()
    backend.ensure(plan(2), load_strategy("rolling"))
    backend.wait_until_serving(8.0)
    user, pid = backend.urls()["user"], backend.router_pid
    os.kill(pid, signal.SIGKILL)

    def answers() -> bool:
        try:
            return get_version(user) == "v1"
        except OSError:
            return False
    assert until(lambda: backend.router_pid not in (None, pid) and answers(), 3.0)
    assert backend.urls()["user"] == user
    servers = backend.router_stats().servers("be_app")
    assert len([s for s in servers if s.status.startswith("UP")]) == 2, [(s.name, s.status) for s in servers]
    assert any(e.kind == "error" and "HAProxy exited" in e.detail for e in backend.events)


# --------------------------------------------------------------------------- routing


ROUTED_CANARY = """\
    name: routed-canary
    strategy:
      canary:
        trafficRouting: router
        steps:
          - setWeight: 10
          - pause: {}
"""


def test_router_canary_weight_splits_real_traffic_as_asked(make_backend, tmp_path, record_property):
    """SetCanaryWeight(w) sends w% of users to the canary (a binomial 4-sigma bound on
    ~600 requests), whatever the replica counts (1 canary pod against 3 stable)."""
    backend = make_backend()
    backend.ensure(plan(3), strategy(tmp_path, ROUTED_CANARY))
    backend.apply(ScaleVersion(Role.CANARY, 1))
    backend.wait_until_serving(8.0)
    user = backend.urls()["user"]
    assert {get_version(user) for _ in range(20)} == {"v1"}  # weight 0
    measured = {}
    for weight in (10, 50):
        backend.apply(SetCanaryWeight(weight))
        backend.apply(SetCanaryWeight(weight))  # idempotent
        with load(user, 300.0, seconds=2.0, seed=weight) as gen:
            gen.wait(5.0)
        counts = gen.counters()
        n = counts["v1"].requests + counts["v2"].requests
        share = counts["v2"].requests / n
        measured[weight] = (round(share, 4), n)
        p = weight / 100
        assert gen.totals().errors == 0
        assert abs(share - p) <= 4 * math.sqrt(p * (1 - p) / n), f"asked {weight}%, measured {share:.2%} of {n}"
    record(record_property, "canary_split_measured", measured)
    backend.apply(SetCanaryWeight(100))
    assert {get_version(user) for _ in range(20)} == {"v2"}


def test_blue_green_switches_under_load_fail_no_request(make_backend, record_property):
    """Switching the active and preview frontends back and forth under load, then deleting
    the old version: not one user request fails, requests sent after a switch are answered
    by the version switched to, and a preview pointed at nothing (before, after) answers 503."""
    backend = make_backend()
    backend.ensure(plan(3), load_strategy("blue-green"))
    backend.apply(ScaleVersion(Role.CANARY, 3))
    backend.wait_until_serving(8.0)
    urls = backend.urls()
    targets = [Target("user", urls["user"], 250.0), Target("preview", urls["preview"], 40.0)]
    switches: list[tuple[float, float, str]] = []  # (command sent, command done, version)
    with load(targets, seconds=5.0) as gen:
        time.sleep(0.5)
        backend.apply(SwitchPreview(Role.CANARY))
        preview_on = time.time()
        for role in [Role.CANARY, Role.STABLE, Role.CANARY, Role.STABLE, Role.CANARY, Role.STABLE, Role.CANARY]:
            sent = time.time()
            backend.apply(SwitchActive(role))
            switches.append((sent, time.time(), backend.plan.version(role).name))
            backend.apply(SwitchActive(role))  # idempotent
            time.sleep(0.3)
        backend.apply(ScaleVersion(Role.STABLE, 0))  # the old version goes while users are on the new one
        time.sleep(0.8)
        preview_off = time.time()
        backend.apply(SwitchPreview(None))
        time.sleep(0.5)
        gen.stop(1.0)
    users = gen.totals("user")
    records = gen.records()
    start = records["start_s"] + gen.started_at_wall
    end = records["end_s"] + gen.started_at_wall
    user = records[records["target"] == "user"]
    # a request routed between its start and its end: wholly between one switch's return
    # and the next switch's command, it must be answered by that switch's version
    matched = total = 0
    nexts = [sent for sent, _, _ in switches[1:]] + [math.inf]
    for (_, done, version), following in zip(switches, nexts):
        inside = user[(start[user.index] > done + 0.005) & (end[user.index] < following - 0.005)]
        total += len(inside)
        matched += int((inside["version"] == version).sum())
    preview = records[records["target"] == "preview"]
    preview_failed = preview[preview["result"] != "ok"]
    delays = backend.calibration().switch_delays_s
    record(record_property, "blue_green_switch_user_failures",
           f"{users.errors} of {users.finished} over {len(switches)} switches at 250 rps, {users.results}")
    record(record_property, "switch_delay_s", [round(d, 4) for d in delays])
    assert users.finished > 700 and users.errors == 0 and users.dropped == 0, users.results
    assert total > 400 and matched == total, f"{total - matched} of {total} requests answered by the old version"
    assert len(delays) == len(switches) + 1 and max(delays) < 0.3  # + the preview switch
    assert set(preview_failed["result"]) <= {"router_5xx", "cancelled"}
    pointed = (start[preview_failed.index] > preview_on) & (end[preview_failed.index] < preview_off)
    assert not pointed.any(), "the preview failed while it pointed at a version"
    after = preview[start[preview.index] > preview_off + 0.1]["result"]
    assert set(after) <= {"router_5xx", "cancelled"} and (after == "router_5xx").sum() >= 5


# --------------------------------------------------------------------------- the runner on this backend


RUNS = [
    # strategy, bad release?, time scale, expected outcome
    ("canary", False, 60.0, "promoted"),
    ("canary", True, 60.0, "aborted"),
    ("blue-green", False, 100.0, "promoted"),
    ("blue-green", True, 100.0, "aborted"),
    ("rolling", False, 60.0, "promoted"),
]


@pytest.mark.parametrize("name, bad, time_scale, outcome", RUNS,
                         ids=[f"{n} {'bad' if b else 'good'} release" for n, b, _, _ in RUNS])
def test_runner_drives_the_bundled_strategies_on_local_processes(make_backend, name, bad, time_scale, outcome,
                                                                  record_property):
    """The bundled strategies, time-compressed, with real traffic: a good release is
    promoted without one failed user request; a release answering 30% errors is rolled
    back by analysis, and users only saw the canary's own errors (none from the router)."""
    spec = load_strategy(name)
    the_plan = plan(4, canary_env={"DEMO_ERROR_RATE": "0.3"} if bad else None)
    backend = make_backend()
    backend.ensure(the_plan, spec)
    backend.wait_until_serving(8.0)
    urls = backend.urls()
    targets = [Target("user", urls["user"], 150.0)]
    if urls["preview"]:
        targets.append(Target("preview", urls["preview"], 60.0))
    with load(targets, seconds=40.0) as gen:
        runner = Runner(spec, the_plan, backend, metrics=gen, time_scale=time_scale, tick_s=0.1)
        begun = time.monotonic()
        summary = runner.run(max_wall_s=30.0)
        wall = time.monotonic() - begun
        time.sleep(0.5)  # users keep arriving after the end: the last ones must all reach the winner
        gen.stop(2.0)
    status = summary.status
    record(record_property, f"run_{name}_{'bad' if bad else 'good'}",
           f"{status.outcome} in {wall:.1f}s wall; user {gen.totals('user').results}")
    assert summary.finished and status.outcome == outcome, status.message
    user = gen.records()
    user = user[user["target"] == "user"]
    failed = user[user["result"] != "ok"]
    if bad:
        assert "analysis" in status.abort_reason
        assert set(failed["result"]) <= {"app_5xx"} and set(failed["version"]) <= {"v2"}
        if name == "blue-green":
            assert failed.empty  # users never reached the preview
        final = backend.observe()
        assert (final[0].ready, final[1].replicas) == (4, 0)
    else:
        assert failed.empty, failed["result"].value_counts().to_dict()
        assert (user.tail(20)["version"] == "v2").all()
        assert backend.record.promoted and backend.record.stable_version == "v2"
        assert backend.observe()[0].replicas == 0


def test_a_command_left_in_the_file_aborts_a_running_rollout(make_backend):
    """A person's '<id> abort' in the commands file rolls a healthy canary back."""
    spec = load_strategy("canary")
    the_plan = plan(2)
    backend = make_backend()

    def on_cycle(cycle: int) -> None:
        if cycle == 3:
            backend.leave_command(Command.ABORT)

    runner = Runner(spec, the_plan, backend, time_scale=60.0, tick_s=0.1, on_cycle=on_cycle)
    summary = runner.run(max_wall_s=15.0)
    assert summary.finished and summary.status.aborted and summary.status.last_command_id >= 1


def test_a_new_backend_resumes_a_rollout_closed_mid_way(make_backend, record_property):
    """Closing the backend mid-rollout kills everything; a new one on the same state
    directory restarts the pods at the recorded scale, and the runner continues the same
    rollout (same clock, same step) to its promotion."""
    spec = load_strategy("canary")
    the_plan = plan(4)
    first = make_backend()
    first.ensure(the_plan, spec)
    first.wait_until_serving(8.0)
    with load(first.urls()["user"], 150.0, seconds=30.0) as gen:
        runner = Runner(spec, the_plan, first, metrics=gen, time_scale=60.0, tick_s=0.1)
        part = runner.run(max_wall_s=3.0)
        assert not part.finished and part.status.step_index >= 1
        recorded = dict(first.record.desired)
        pids = first.child_pids()
        first.close()
        assert not any(alive(pid) for pid in pids)

        second = make_backend()
        second.ensure(the_plan, spec)  # what Runner.run does first; pods restart at the recorded scale
        assert (second.observe()[0].replicas, second.observe()[1].replicas) == (recorded["stable"], recorded["canary"])
        assert second.resumed and not set(second.child_pids()) & set(pids)
        second.wait_until_serving(8.0)
        gen.set_url(second.urls()["user"])
        rest = Runner(spec, the_plan, second, metrics=gen, time_scale=60.0, tick_s=0.1).run(max_wall_s=30.0)
        gen.stop(2.0)
    record(record_property, "resume", f"stopped at step {part.status.step_index} (t={part.ended_at:.0f}s) "
           f"with {recorded}; resumed to {rest.status.outcome} at t={rest.ended_at:.0f}s")
    assert rest.resumed and rest.finished and rest.status.outcome == "promoted"
    assert rest.timeline[0].at >= part.timeline[-1].at  # the persisted clock, not a new one
    assert rest.timeline[0].canary_replicas == recorded["canary"]
    assert not any(text == "scale canary to 1" for _, text in rest.applied)  # step 0 was not redone


# --------------------------------------------------------------------------- nothing left behind

CHILD = """
import json, sys, time
from rolloutlab.live.local import LocalBackend
from rolloutlab.live.runner import LiveVersion, ReleasePlan
from rolloutlab.strategies import load_strategy
backend = LocalBackend(sys.argv[1])
backend.ensure(ReleasePlan("demo", "r", 2, LiveVersion("v1"), LiveVersion("v2")), load_strategy("rolling"))
backend.wait_until_serving(10)
print(json.dumps({"pids": backend.child_pids(), "run_dir": str(backend.run_dir)}), flush=True)
sys.stdin.readline()  # the parent has seen the pods alive; only now end (else atexit may win the race)
if sys.argv[2] == "exit":
    sys.exit(0)  # no close(): the atexit hook must clean up
time.sleep(60)
"""


@pytest.mark.parametrize("ending", ["exit", "sigkill"], ids=["interpreter exits without close", "python is SIGKILLed"])
def test_nothing_is_left_running_when_the_python_process_ends(tmp_path, no_leftovers, ending):
    """Pods and HAProxy die with the Python process that started them: at exit through
    atexit, and even on SIGKILL through the kernel (PR_SET_PDEATHSIG)."""
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path / "state"), ending], cwd=ROOT,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    started = {"pids": [], "run_dir": None}
    try:
        line = child.stdout.readline()
        assert line, "the child process did not start its backend"
        started = json.loads(line)
        assert len(started["pids"]) == 3 and all(alive(pid) for pid in started["pids"])
        child.stdin.write("go\n")
        child.stdin.flush()
        if ending == "sigkill":
            child.kill()
        assert child.wait(10) in (0, -signal.SIGKILL)
        assert until(lambda: not any(alive(pid) for pid in started["pids"]), 3.0), \
            f"left running: {[pid for pid in started['pids'] if alive(pid)]}"
        if ending == "exit":
            assert not Path(started["run_dir"]).exists()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(5)
        child.stdout.close()
        child.stdin.close()
        for pid in started["pids"]:  # when the test failed: leave nothing behind anyway
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        if started["run_dir"]:
            shutil.rmtree(started["run_dir"], ignore_errors=True)  # after SIGKILL no cleanup code ran
