"""The live runner's own rules, on the in-memory backend (``live.memory``; the real backends
have their own tests): faults are never injected twice, a resumed rollout keeps its clock
and reaches the end an uninterrupted one reaches, nothing is applied twice, unreadable
state is refused, a finished rollout is not run again, a person's command is applied once,
and a live run says what it waits for while it waits."""

from __future__ import annotations

import time

import pytest

from rolloutlab.errors import StateError
from rolloutlab.live.memory import MemoryBackend, MemoryClock, MemoryMetrics
from rolloutlab.live.runner import LiveVersion, ReleasePlan, Runner, RunnerState
from rolloutlab.strategies import Command, Promote, Role, load_strategy
from rolloutlab.strategies.status import RolloutStatus

PLAN = ReleasePlan("demo", "demo-v2", 4, LiveVersion("v1"), LiveVersion("v2"))


class Killed(Exception):
    """The runner process dies here (a test kills it after a chosen cycle)."""


def memory(step_s: float = 0.5) -> tuple[MemoryBackend, MemoryClock]:
    clock = MemoryClock(step_s=step_s)  # every look at the clock moves it: the loop always progresses
    return MemoryBackend(clock=clock), clock


def runner(backend, clock, strategy: str = "rolling", **kwargs) -> Runner:
    return Runner(load_strategy(strategy), PLAN, backend, clock=clock, **kwargs)


def kill_after(cycle: int):
    def on_cycle(n: int) -> None:
        if n == cycle:
            raise Killed(f"after cycle {n}")
    return on_cycle


def healthy(backend: MemoryBackend) -> MemoryMetrics:
    return MemoryMetrics(backend, {"v1": 0.0, "v2": 0.0})


def to_the_end(strategy: str, kill_at: int | None, bad: bool = False):
    """Run a rollout on a fresh memory backend, killed once after cycle ``kill_at`` (None:
    never) and resumed by a new runner; return (backend, the last summary)."""
    backend, clock = memory()
    metrics = MemoryMetrics(backend, {"v1": 0.0, "v2": 0.3 if bad else 0.0})
    # ticks of 10 s: a few dozen cycles per rollout, so killing after each of them stays fast
    if kill_at is not None:
        with pytest.raises(Killed):
            runner(backend, clock, strategy, metrics=metrics, tick_s=10.0,
                   on_cycle=kill_after(kill_at)).run(max_wall_s=30)
    summary = runner(backend, clock, strategy, metrics=metrics, tick_s=10.0).run(max_wall_s=30)
    return backend, summary


# --------------------------------------------------------------------------- resume and persistence


def test_a_fault_that_fired_before_a_restart_does_not_fire_again():
    """A fault whose time passed before a restart was injected by the runner that died: never twice."""
    backend, clock = memory()
    fired = []
    faults = [(1.0, lambda: fired.append("early")), (10_000.0, lambda: fired.append("late"))]
    runner(backend, clock, faults=faults).run(max_wall_s=5, max_cycles=3)
    assert fired == ["early"]
    clock.t += 20  # the runner was down a while
    runner(backend, clock, faults=faults).run(max_wall_s=5, max_cycles=3)
    assert fired == ["early"]


def test_a_rollout_resumed_at_another_time_scale_is_refused():
    """The status' times are on the saved clock: resuming at another scale would mix two clocks."""
    backend, clock = memory()
    runner(backend, clock, time_scale=10.0).run(max_wall_s=5, max_cycles=1)
    with pytest.raises(StateError, match="time scale 10"):
        runner(backend, clock, time_scale=20.0).run(max_wall_s=5, max_cycles=1)


@pytest.mark.parametrize("text", ["[]", "null", "{", '{"v": 99}', '"x"'],
                         ids=["a list", "null", "broken JSON", "a newer format", "a string"])
def test_unreadable_state_is_refused_with_a_reason(text):
    """Persisted state the runner cannot read is a StateError, never a guess."""
    backend, clock = memory()
    backend.state = text
    with pytest.raises(StateError):
        runner(backend, clock).run(max_wall_s=5, max_cycles=1)


def test_state_of_another_release_is_not_touched():
    """A runner that finds another release's rollout refuses before applying anything."""
    backend, clock = memory()
    backend.state = RunnerState("demo-v9", 0.0, 1.0, RolloutStatus()).dump()
    with pytest.raises(StateError, match="demo-v9"):
        runner(backend, clock).run(max_wall_s=5)
    assert backend.applied == []


def test_a_final_rollout_is_not_run_again():
    """A promoted rollout, run again, applies nothing and keeps its status."""
    backend, clock = memory()
    first = runner(backend, clock).run(max_wall_s=30)
    assert first.status.completed
    again = runner(backend, clock).run(max_wall_s=5)
    assert again.resumed and again.applied == [] and again.timeline == []
    assert RunnerState.load(backend.state).status == first.status


@pytest.mark.parametrize(("strategy", "bad", "end"), [
    ("canary", False, "promoted"),
    ("canary", True, "aborted"),
    ("blue-green", False, "promoted"),
    ("rolling", False, "promoted"),
], ids=["canary, good release", "canary, bad release", "blue-green, good release", "rolling"])
def test_a_runner_killed_after_any_cycle_resumes_to_the_same_end(strategy, bad, end):
    """Killed after cycle k (every k of the uninterrupted run), a new runner on the same backend
    ends where the uninterrupted run ends, and never promotes twice."""
    _, whole = to_the_end(strategy, None, bad)
    cycles = len(whole.timeline)
    assert cycles >= 3 and (whole.status.completed if end == "promoted" else whole.status.aborted)
    for k in range(1, cycles):
        backend, resumed = to_the_end(strategy, k, bad)
        assert resumed.resumed and resumed.finished, k
        assert (resumed.status.completed, resumed.status.aborted) == (whole.status.completed, whole.status.aborted), k
        assert sum(isinstance(a, Promote) for a in backend.applied) == (1 if end == "promoted" else 0), k
        assert resumed.state.origin_wall == RunnerState.load(backend.saved[0]).origin_wall, "one clock"


def test_each_cycle_saves_its_state_after_applying_its_actions():
    """Apply, then persist: the other order could remember a change the backend never saw."""

    class Logged(MemoryBackend):
        def apply(self, action):
            log.append("apply")
            super().apply(action)

        def save_state(self, state):
            log.append("save")
            super().save_state(state)

    log: list[str] = []
    clock = MemoryClock(step_s=0.5)
    backend = Logged(clock=clock)
    runner(backend, clock, "canary", metrics=healthy(backend), tick_s=10.0,
           on_cycle=lambda n: log.append("end")).run(max_wall_s=30)
    cycles = " ".join(log).split(" end")[:-1]
    assert len(cycles) > 5 and any("apply" in c for c in cycles)
    assert all(c.split()[-1] == "save" and c.split().count("save") == 1 for c in cycles), cycles


def test_a_runner_dying_before_it_saves_re_applies_and_ends_the_same():
    """A runner dying between applying and saving re-decides from the old status and re-applies
    the same (level-style) actions: the rollout still ends promoted, once."""

    class DiesOnSave(MemoryBackend):
        saves_left = 4

        def save_state(self, state):
            self.saves_left -= 1
            if self.saves_left == 0:
                raise Killed("died before saving")
            super().save_state(state)

    clock = MemoryClock(step_s=0.5)
    backend = DiesOnSave(clock=clock)
    with pytest.raises(Killed):
        runner(backend, clock, "canary", metrics=healthy(backend)).run(max_wall_s=30)
    applied_before = list(backend.applied)
    summary = runner(backend, clock, "canary", metrics=healthy(backend)).run(max_wall_s=30)
    assert applied_before and summary.resumed and summary.status.completed
    assert sum(isinstance(a, Promote) for a in backend.applied) == 1


def test_a_command_left_for_the_rollout_is_applied_once():
    """An abort left by a person rolls the canary back; a resumed runner sees the same command and does nothing more."""
    backend, clock = memory()
    metrics = healthy(backend)
    runner(backend, clock, "canary", metrics=metrics).run(max_wall_s=30, max_cycles=4)
    backend.leave_command(Command.ABORT)
    aborted = runner(backend, clock, "canary", metrics=metrics).run(max_wall_s=30)
    assert aborted.status.aborted and aborted.finished
    assert backend.pods[Role.CANARY] == [] and len(backend.pods[Role.STABLE]) == PLAN.replicas
    again = runner(backend, clock, "canary", metrics=metrics).run(max_wall_s=5)
    assert again.applied == [] and again.status == aborted.status


# --------------------------------------------------------------------------- a live run


@pytest.fixture(scope="module")
def standard():
    from rolloutlab.scenarios.schema import bundled_scenario, load_scenario

    return load_scenario(bundled_scenario("standard"))


def test_run_live_refuses_a_finished_rollout_and_a_rollback_of_nothing(standard):
    """--rollback with nothing to roll back, and a run of an already promoted release, are StateErrors."""
    from rolloutlab.live.session import make_plan, run_live

    spec = load_strategy("rolling").with_replicas(4)
    plan = make_plan(standard, spec, release="good")
    backend = MemoryBackend()
    with pytest.raises(StateError, match="nothing to roll back"):
        run_live(standard, spec, backend, plan, urls={"user": "http://127.0.0.1:9/"}, time_scale=10.0, seed=1,
                 rollback=True)
    backend.state = RunnerState(plan.release, 0.0, 10.0, RolloutStatus(completed=True)).dump()
    with pytest.raises(StateError, match="already promoted"):
        run_live(standard, spec, backend, plan, urls={"user": "http://127.0.0.1:9/"}, time_scale=10.0, seed=1)


def test_a_live_run_says_what_it_waits_for_while_following_the_window(standard):
    """After the rollout ends, the run follows the scenario's window to its end: progress is
    reported during that wait, with the scenario time moving towards the window's end."""
    from rolloutlab.live.session import make_plan, run_live

    spec = load_strategy("rolling").with_replicas(4)
    plan = make_plan(standard, spec, release="good")
    backend = MemoryBackend(clock=time.time, sleep=time.sleep)  # real time: 1,800 scenario s in 3 s at x600
    seen = []
    result = run_live(standard, spec, backend, plan, urls={"user": "http://127.0.0.1:9/"}, time_scale=600.0,
                      seed=1, max_rps=5.0, max_wall_s=30, progress=seen.append,
                      before_run=lambda r: setattr(r, "tick_s", 0.01))  # the rollout ends early in the window
    rollout = [w for w in seen if w.what.startswith("rollout")]
    window = [w for w in seen if "end of the scenario's window" in w.what]
    assert rollout and result.summary.status.completed
    assert len(window) >= 2, [w.what for w in seen]  # one report per wall second at least
    assert all(w.until == standard.duration for w in window)
    times = [w.now for w in window]
    assert times == sorted(times) and times[0] >= result.summary.ended_at and times[-1] > times[0]
    assert "promoted at t=" in window[0].what


@pytest.mark.parametrize("with_slo", [True, False], ids=["a scenario with an SLO", "a scenario without one"])
def test_a_live_row_says_which_failures_the_release_caused_and_the_slo(standard, with_slo):
    """Failures beyond what the old version would have produced on the same requests (requests x its
    baseline error rate) are the release's; the scenario's SLO is copied into the row (NaN without one)."""
    import math

    import pandas as pd

    from rolloutlab.live.session import results_row
    from rolloutlab.results.table import to_frame, validate_results

    scenario = standard if with_slo else standard.model_copy(update={"slo": None})
    backend, clock = memory()
    summary = runner(backend, clock).run(max_wall_s=30)
    n = 2000  # 12 failed, all on the stable version: the baseline is 2000 x 0.1% = 2
    records = pd.DataFrame({"target": ["user"] * n, "result": ["app_5xx"] * 12 + ["ok"] * (n - 12),
                            "version": ["v1"] * n, "at": [1.0 + i * 0.8 for i in range(n)]})
    row = results_row(scenario, load_strategy("rolling"), PLAN, "memory", summary, records, run=0, seed=1,
                      time_scale=1.0, user_rps=1.0, preview_rps=0.0, observed_until=1800.0)
    assert scenario.service_under_test.baseline_error_rate == 0.001
    assert (row["requests"], row["failed_requests"]) == (n, 12)
    assert row["baseline_failed_requests"] == pytest.approx(2.0)
    assert row["release_failed_requests"] == pytest.approx(10.0)
    if with_slo:
        assert (row["slo_objective"], row["slo_window"]) == (pytest.approx(0.999), 30 * 86400.0)
    else:
        assert math.isnan(row["slo_objective"]) and math.isnan(row["slo_window"])
    assert row["ended_at"] == 1800.0  # observed until the window's end: times not ended are censored there
    validate_results(to_frame([row]))  # the contract's columns and types


def test_the_memory_backend_readies_pods_after_their_delay_and_wakes_on_a_change():
    """As a watch would: ``wait`` ends when a pod becomes ready, and at once after a change not yet observed."""
    from rolloutlab.strategies import ScaleVersion

    clock = MemoryClock(start=0.0)
    backend = MemoryBackend(clock=clock, ready_after_s=2.0)
    spec = load_strategy("rolling")
    backend.attach(PLAN, spec)
    backend.ensure(PLAN, spec)
    stable, _ = backend.observe()
    assert (stable.replicas, stable.ready) == (4, 0)
    backend.wait(10.0)
    assert clock.t == 2.0 and backend.observe()[0].ready == 4  # woke when the pods became ready
    backend.apply(ScaleVersion(Role.CANARY, 2))
    backend.wait(10.0)
    assert clock.t == 2.0  # a change the runner has not observed yet: no sleep
    assert backend.observe()[1].replicas == 2
    backend.wait(1.0)
    assert clock.t == 3.0 and backend.observe()[1].ready == 0
