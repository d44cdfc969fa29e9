"""The live runner's own rules, on an in-memory backend (the real backends have their own
tests): faults are never injected twice, a resumed rollout keeps its clock, unreadable
state is refused, a finished rollout is not run again."""

from __future__ import annotations

import pytest

from rolloutlab.errors import StateError
from rolloutlab.live.runner import LiveVersion, ReleasePlan, Runner, RunnerState
from rolloutlab.strategies import Role, VersionObservation, load_strategy
from rolloutlab.strategies.actions import ScaleVersion
from rolloutlab.strategies.status import RolloutStatus


class MemoryBackend:
    """Pods that are ready the moment they are asked for; state in a string."""

    source = "memory"

    def __init__(self):
        self.state = None
        self.replicas = {Role.STABLE: 0, Role.CANARY: 0}
        self.plan = None

    def attach(self, plan, spec):
        self.plan = plan

    def ensure(self, plan, spec):
        if self.state is None:
            self.replicas[Role.STABLE] = plan.replicas

    def observe(self):
        return tuple(VersionObservation(n, n, n) for n in (self.replicas[Role.STABLE], self.replicas[Role.CANARY]))

    def apply(self, action):
        if isinstance(action, ScaleVersion):
            self.replicas[action.role] = action.replicas

    def load_state(self):
        return self.state

    def save_state(self, state):
        self.state = state

    def commands(self):
        return ()

    def wait(self, seconds):
        pass


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        self.t += 0.5  # every look at the clock moves it: the loop always progresses
        return self.t


PLAN = ReleasePlan("demo", "demo-v2", 4, LiveVersion("v1"), LiveVersion("v2"))


def runner(backend, clock, **kwargs):
    return Runner(load_strategy("rolling"), PLAN, backend, clock=clock, **kwargs)


def test_a_fault_that_fired_before_a_restart_does_not_fire_again():
    backend, clock, fired = MemoryBackend(), Clock(), []
    faults = [(1.0, lambda: fired.append("early")), (10_000.0, lambda: fired.append("late"))]
    runner(backend, clock, faults=faults).run(max_wall_s=5, max_cycles=3)
    assert fired == ["early"]
    clock.t += 20  # the runner was down a while
    runner(backend, clock, faults=faults).run(max_wall_s=5, max_cycles=3)
    assert fired == ["early"]


def test_a_rollout_resumed_at_another_time_scale_is_refused():
    backend, clock = MemoryBackend(), Clock()
    runner(backend, clock, time_scale=10.0).run(max_wall_s=5, max_cycles=1)
    with pytest.raises(StateError, match="time scale 10"):
        runner(backend, clock, time_scale=20.0).run(max_wall_s=5, max_cycles=1)


@pytest.mark.parametrize("text", ["[]", "null", "{", '{"v": 99}', '"x"'])
def test_unreadable_state_is_refused_with_a_reason(text):
    backend = MemoryBackend()
    backend.state = text
    with pytest.raises(StateError):
        runner(backend, Clock()).run(max_wall_s=5, max_cycles=1)


def test_a_final_rollout_is_not_run_again():
    backend, clock = MemoryBackend(), Clock()
    first = runner(backend, clock).run(max_wall_s=30)
    assert first.status.completed
    again = runner(backend, clock).run(max_wall_s=5)
    assert again.resumed and again.applied == [] and again.timeline == []
    assert RunnerState.load(backend.state).status == first.status


def test_run_live_refuses_a_finished_rollout_and_a_rollback_of_nothing():
    from rolloutlab.live.session import make_plan, run_live
    from rolloutlab.scenarios.schema import bundled_scenario, load_scenario

    scenario = load_scenario(bundled_scenario("standard"))
    spec = load_strategy("rolling").with_replicas(4)
    plan = make_plan(scenario, spec, release="good")
    backend = MemoryBackend()
    with pytest.raises(StateError, match="nothing to roll back"):
        run_live(scenario, spec, backend, plan, urls={"user": "http://127.0.0.1:9/"}, time_scale=10.0, seed=1,
                 rollback=True)
    backend.state = RunnerState(plan.release, 0.0, 10.0, RolloutStatus(completed=True)).dump()
    with pytest.raises(StateError, match="already promoted"):
        run_live(scenario, spec, backend, plan, urls={"user": "http://127.0.0.1:9/"}, time_scale=10.0, seed=1)
