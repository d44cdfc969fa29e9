"""Hypothesis strategies for valid scenarios: property-test your own strategies with them.

``valid_scenarios()`` draws a whole ``Scenario`` the way a user could write one, always
through ``Scenario.model_validate`` so everything it yields is something the schema
accepts and therefore something the simulator must run. The worlds are kept small
(a dozen pods, minutes of simulated time, second-scale pod timings) so one run takes
milliseconds and a property can afford dozens of examples.

``checkable_scenarios()`` adds what ``rolloutlab check`` needs: the strategies to run
and ``expect:`` entries (``expectation_texts()`` draws valid expressions), and
``scenario_yaml()`` writes any scenario as a file ``check`` and the pytest plugin read.
``strategy_names`` draws one of the bundled rollout strategies.

For example, to check that your own strategy file never leaves users on a broken
version, whatever the world::

    from hypothesis import given, settings
    from rolloutlab.scenarios.generate import valid_scenarios
    from rolloutlab.sim.run import simulate
    from rolloutlab.scenarios.release import run_seed_sequence
    from rolloutlab.strategies import load_strategy

    MINE = load_strategy("deploy/my-canary.yaml")

    @settings(max_examples=50, deadline=None)
    @given(valid_scenarios())
    def test_my_canary_ends_healthy_or_promoted(scenario):
        row = simulate(scenario, MINE.with_replicas(scenario.service_under_test.replicas),
                       0, run_seed_sequence(1, 0)).row
        assert row["outcome"] != "stuck"

Hypothesis is a test dependency (``pip install 'rolloutlab[test]'``); nothing in
rolloutlab imports this module.
"""

from __future__ import annotations

import math
from typing import Any

import yaml
from hypothesis import strategies as st

from rolloutlab.scenarios.schema import DEFAULT_STRATEGIES, METRICS, STATS, Scenario

__all__ = [
    "SERVICE_NAMES",
    "ZONES",
    "checkable_scenarios",
    "expectation_texts",
    "scenario_yaml",
    "strategy_names",
    "valid_scenarios",
]

SERVICE_NAMES = ("web", "api", "db")
"""Service names in topological order: a dependency only goes from an earlier to a later one."""
ZONES = ("a", "b", "c")
DEFECT_KINDS = ("error_rate", "latency", "crash_on_start", "leak", "full_load_only")

strategy_names = st.sampled_from(list(DEFAULT_STRATEGIES))
"""One of the bundled strategies, by the name ``strategies.load_strategy`` takes."""


def _seconds(low: float, high: float) -> st.SearchStrategy[float]:
    return st.floats(low, high, allow_nan=False, allow_infinity=False).map(lambda x: round(x, 3))


def _fraction(low: float = 0.0, high: float = 1.0) -> st.SearchStrategy[float]:
    return st.floats(low, high, allow_nan=False, allow_infinity=False)


@st.composite
def _distribution(draw: Any, low: float, high: float) -> dict[str, Any]:
    """A time distribution (fixed, uniform or lognormal) with values around low..high seconds."""
    kind = draw(st.sampled_from(["fixed", "uniform", "lognormal"]))
    if kind == "fixed":
        return {"kind": "fixed", "value": draw(_seconds(low, high))}
    if kind == "uniform":
        a = draw(_seconds(low, high))
        return {"kind": "uniform", "low": a, "high": draw(_seconds(a, high))}
    median = draw(_seconds(max(low, 0.1), max(high, 0.2)))
    if draw(st.booleans()):
        return {"kind": "lognormal", "median": median, "sigma": draw(_fraction(0.05, 0.8))}
    return {"kind": "lognormal", "median": median, "p90": round(median * draw(_fraction(1.05, 2.5)), 3) + 0.001}


@st.composite
def _service(draw: Any, name: str) -> dict[str, Any]:
    replicas = draw(st.integers(1, 12))
    zones = list(draw(st.sampled_from([ZONES[:1], ZONES[:2], ZONES])))
    median = draw(_seconds(1, 200))
    service: dict[str, Any] = {
        "name": name,
        "replicas": replicas,
        "capacity_rps": draw(_seconds(5, 500)),
        "latency": {"median_ms": median, "p99_ms": round(median * draw(_fraction(1.1, 10)), 3) + 0.001},
        "baseline_error_rate": draw(_fraction(0.0, 0.01)),
        "request_timeout": draw(_seconds(0.2, 5)),
        "pod_timing": {
            "schedule_delay": draw(_distribution(0, 3)),
            "start_delay": draw(_distribution(0, 20)),
            "readiness": {
                "initial_delay": draw(_seconds(0, 5)),
                "period": draw(_seconds(1, 10)),
                "success_threshold": draw(st.integers(1, 3)),
            },
            "termination_grace": draw(_seconds(0, 30)),
        },
        "zones": zones,
    }
    if draw(st.booleans()):
        service["nodes"] = draw(st.integers(len(zones), len(zones) + 3))
    return service


def _node_count(service: dict[str, Any]) -> int:
    """The nodes a service runs on, as the schema's default places them."""
    if "nodes" in service:
        return service["nodes"]
    zones = len(service["zones"])
    return zones * max(1, math.ceil(service["replicas"] / (4 * zones)))


@st.composite
def _traffic(draw: Any, max_rps: float, duration: float) -> dict[str, Any]:
    kind = draw(st.sampled_from(["constant", "diurnal", "spikes"]))
    if kind == "constant":
        profile: dict[str, Any] = {"kind": "constant"}
    elif kind == "diurnal":
        profile = {
            "kind": "diurnal",
            "amplitude": draw(_fraction()),
            "period": draw(_seconds(60, 4 * duration)),
            "phase": draw(_seconds(-duration, duration)),
        }
    else:
        spike = st.fixed_dictionaries({
            "at": _seconds(0, duration - 1),
            "duration": _seconds(5, 300),
            "multiplier": _seconds(0.2, 5),
        })
        profile = {"kind": "spikes", "spikes": draw(st.lists(spike, min_size=1, max_size=3))}
    return {
        "rps": draw(_seconds(1, max_rps)),
        "profile": profile,
        # no preview traffic at all (about one time in eight) leaves blue-green's analysis
        # without data: it pauses, and the run goes on to the simulator's 48 h horizon
        "preview_rps": 0.0 if draw(st.integers(0, 7)) == 7 else draw(_seconds(0.5, 20)),
    }


@st.composite
def _defect(draw: Any, kind: str, migration: dict[str, Any] | None) -> dict[str, Any]:
    defect: dict[str, Any] = {"kind": kind, "weight": draw(_seconds(0.1, 5))}
    if kind == "error_rate":
        defect["error_rate"] = draw(_fraction())
    elif kind == "latency":
        multiplier = draw(_seconds(1, 10))
        added = draw(_seconds(0, 500))
        if multiplier == 1 and added == 0:
            added = 50.0
        defect.update(multiplier=multiplier, added_ms=added)
    elif kind == "crash_on_start":
        base = draw(_seconds(1, 20))
        defect.update(
            crash_probability=draw(_fraction()),
            crash_after=draw(_seconds(0, 10)),
            backoff_base=base,
            backoff_cap=draw(_seconds(base, 300)),
        )
    elif kind == "leak":
        per_minute = draw(_fraction(0, 0.5))
        growth = draw(_fraction(0, 0.5))
        if per_minute == 0 and growth == 0:
            per_minute = 0.05
        defect.update(
            after=draw(_seconds(0, 600)),
            error_rate_per_minute=per_minute,
            latency_growth_per_minute=growth,
            max_error_rate=draw(_fraction()),
        )
    elif kind == "full_load_only":
        defect.update(
            traffic_share_threshold=draw(_fraction(0.01, 1)),
            error_rate=draw(_fraction()),
        )
        if draw(st.booleans()):
            defect["per_pod_rps_threshold"] = draw(_seconds(1, 200))
    else:  # incompatible_migration: only drawn with a migration section
        assert migration is not None
        initial = migration["initial_schema"]
        final = initial + len(migration["steps"])
        defect.update(
            required_schema=draw(st.one_of(st.none(), st.integers(initial, final))),
            breaks_old=draw(st.booleans()),
            error_rate=draw(_fraction()),
        )
    return defect


@st.composite
def _migration(draw: Any) -> dict[str, Any]:
    """Expand (before the deploy), optionally followed by contract (with the deploy or
    after promotion); the old version may stop working once contract ran, the new one
    may need the expand step."""
    initial = draw(st.integers(0, 3))
    steps = [{"name": "expand", "kind": "expand", "at": "before_deploy"}]
    if draw(st.booleans()):
        steps.append({"name": "contract", "kind": "contract",
                      "at": draw(st.sampled_from(["after_promotion", "with_deploy"]))})
    expanded = initial + 1
    return {
        "initial_schema": initial,
        "steps": steps,
        "compatibility": {
            "old": draw(st.sampled_from([{}, {"max_schema": expanded}])),
            "new": draw(st.sampled_from([{}, {"min_schema": expanded}, {"min_schema": initial}])),
        },
        "rollforward_repair_time": draw(_distribution(30, 900)),
    }


@st.composite
def _fault(draw: Any, services: list[dict[str, Any]], under_test: dict[str, Any], duration: float) -> dict[str, Any]:
    names = [s["name"] for s in services]
    kind = draw(st.sampled_from(["pod_kill", "node_loss", "zone_outage", "dependency_failure", "latency_injection"]))
    at = draw(_seconds(0, duration - 1))
    if kind == "pod_kill":
        return {"kind": kind, "at": at, "service": draw(st.sampled_from([None, *names])),
                "count": draw(st.integers(1, 5)), "version": draw(st.sampled_from(["stable", "canary", "any"]))}
    if kind == "node_loss":
        target = draw(st.sampled_from(services))
        fault = {"kind": kind, "at": at, "service": target["name"],
                 "count": draw(st.integers(1, _node_count(target))), "eviction_delay": draw(_seconds(0, 300))}
        if draw(st.booleans()):
            fault["duration"] = draw(_seconds(5, 600))
        return fault
    if kind == "zone_outage":
        return {"kind": kind, "at": at, "zone": draw(st.sampled_from(under_test["zones"])),
                "duration": draw(_seconds(5, 600))}
    if kind == "dependency_failure":
        return {"kind": kind, "at": at, "service": draw(st.sampled_from(names)),
                "error_rate": draw(_fraction()), "duration": draw(_seconds(5, 300))}
    return {"kind": kind, "at": at, "service": draw(st.sampled_from(names)),
            "added_ms": draw(_seconds(1, 1000)), "duration": draw(_seconds(5, 300))}


@st.composite
def _alert(draw: Any, name: str, duration: float) -> dict[str, Any]:
    metric = draw(st.sampled_from(["error_rate", "latency_p99"]))
    threshold = draw(_fraction(0.001, 0.5)) if metric == "error_rate" else draw(_seconds(50, 3000))
    return {
        "name": name,
        "metric": metric,
        "threshold": threshold,
        "for": draw(_seconds(0, min(180, duration / 2))),  # a rule that can fire inside the window
        "window": draw(_seconds(10, 180)),
        "evaluation_interval": draw(_seconds(10, 60)),
    }


@st.composite
def valid_scenarios(draw: Any, max_rps: float = 2000, max_duration: float = 1800) -> Scenario:
    """A small, valid scenario exercising every part of the schema.

    - 1-3 services named from ``SERVICE_NAMES``, one under test, dependencies only from
      an earlier to a later service (a DAG, each edge once);
    - 1-12 replicas, 1-3 zones, latency (median < p99), baseline errors up to 1%, pod
      timings of a few seconds (fixed, uniform or lognormal);
    - traffic of 1..``max_rps`` rps, constant, diurnal or with spikes, and preview traffic;
    - a release that is defective with any probability, with 1-3 distinct defect kinds
      (``incompatible_migration`` only when there is a migration);
    - up to 3 faults inside the window: pod kills, node loss, an outage of one of the
      service under test's zones, a dependency failing or slowing down;
    - an optional expand/contract migration;
    - up to 2 alert rules (error rate, p99 latency) that can fire inside the window, and
      a quick on-call response;
    - half of the time, a service level objective (99% to 99.99% over a week or a month);
    - a window of 2 minutes to ``max_duration`` seconds.
    """
    duration = draw(_seconds(120, max(120.0, min(max_duration, 1800))))
    count = draw(st.integers(1, 3))
    names = list(SERVICE_NAMES[:count])
    services = [draw(_service(name)) for name in names]
    under_test_index = draw(st.integers(0, count - 1))
    services[under_test_index]["under_test"] = True
    under_test = services[under_test_index]
    possible_edges = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
    edges = []
    if possible_edges:  # one service has nobody to call
        edges = draw(st.lists(st.sampled_from(possible_edges), unique=True, max_size=len(possible_edges)))
    dependencies = [
        {"caller": a, "callee": b, "calls_per_request": draw(_seconds(0.5, 3)),
         "error_propagation": draw(_fraction())}
        for a, b in edges
    ]
    migration = draw(st.one_of(st.none(), _migration()))
    kinds = list(DEFECT_KINDS) + (["incompatible_migration"] if migration is not None else [])
    chosen = draw(st.lists(st.sampled_from(kinds), min_size=1, max_size=3, unique=True))
    release = {
        "defect_probability": draw(st.one_of(st.sampled_from([1.0, 0.5, 0.0]), _fraction())),
        "defects": [draw(_defect(kind, migration)) for kind in chosen],
    }
    faults = draw(st.lists(_fault(services, under_test, duration), max_size=3))
    alert_count = draw(st.sampled_from([1, 2, 0]))
    alerts = [draw(_alert(f"alert-{i}", duration)) for i in range(alert_count)]
    data: dict[str, Any] = {
        "name": "generated",
        "duration": duration,
        "services": services,
        "dependencies": dependencies,
        "traffic": draw(_traffic(max_rps, duration)),
        "release": release,
        "faults": faults,
        "monitoring": {"alerts": alerts},
        "response": {
            "response_time": draw(_distribution(5, 600)),
            "rollback_duration": draw(_distribution(0, 180)),
        },
    }
    if migration is not None:
        data["migration"] = migration
    if draw(st.booleans()):
        data["slo"] = {"objective": draw(st.sampled_from(["99%", "99.9%", 0.995, "99.99%"])),
                       "window": draw(st.sampled_from(["7d", "28d", "30d"]))}
    return Scenario.model_validate(data)


# --------------------------------------------------------------------------- expectations

_OPERATORS = ("<", "<=", ">", ">=", "==")


@st.composite
def _expectation_value(draw: Any, kind: str) -> str:
    """A limit written the way people write it, in the metric's unit."""
    if kind in ("rate", "fraction"):
        fraction = draw(_fraction())
        return f"{round(100 * fraction, 2):g}%" if draw(st.booleans()) else f"{round(fraction, 4):g}"
    if kind in ("duration", "replica_seconds"):
        amount = draw(st.integers(0, 600))
        return f"{amount}{draw(st.sampled_from(['', 's', 'm', 'h']))}"
    return str(draw(st.integers(0, 100_000)))  # a count


@st.composite
def expectation_texts(draw: Any) -> str:
    """A valid expectation expression: ``metric[.stat] op value[unit]``, any metric,
    statistic and operator, with a limit in the metric's unit (``mttr.p90 <= 5m``)."""
    metric = draw(st.sampled_from([m for m in METRICS if m != "blast_radius"]))  # regions only: none generated
    kind = METRICS[metric]
    stat = "" if kind == "rate" else draw(st.sampled_from(["", *(f".{s}" for s in STATS)]))
    spaces = draw(st.sampled_from([" ", ""]))
    op = draw(st.sampled_from(_OPERATORS))
    return f"{metric}{stat}{spaces}{op}{spaces}{draw(_expectation_value(kind))}"


@st.composite
def checkable_scenarios(draw: Any, max_rps: float = 2000, max_duration: float = 1800) -> Scenario:
    """A valid scenario (``valid_scenarios``) that names 1-3 bundled strategies and
    carries 1-4 expectations, each for ``all`` or for some of those strategies."""
    scenario = draw(valid_scenarios(max_rps=max_rps, max_duration=max_duration))
    names = draw(st.lists(strategy_names, min_size=1, max_size=3, unique=True))
    expect = []
    for _ in range(draw(st.integers(1, 4))):
        entry: Any = draw(expectation_texts())
        chosen = draw(st.one_of(st.just(None), st.lists(st.sampled_from(names), min_size=1, unique=True)))
        if chosen is not None:
            entry = {"for": chosen, "assert": entry}
        expect.append(entry)
    data = scenario_document(scenario)
    data.update(strategies=names, expect=expect)
    return Scenario.model_validate(data)


def scenario_document(scenario: Scenario) -> dict[str, Any]:
    """The scenario as plain YAML-ready data that validates back to an equal scenario;
    expectations are written as their expressions."""
    data = scenario.model_dump(mode="json", by_alias=True)
    data["expect"] = [{"for": list(e.for_), "assert": e.assertion.text} for e in scenario.expect]
    return data


def scenario_yaml(scenario: Scenario) -> str:
    """The scenario as a YAML file's text (``rolloutlab check`` and the pytest plugin read it)."""
    return yaml.safe_dump(scenario_document(scenario), sort_keys=False)
