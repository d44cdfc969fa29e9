"""`rolloutlab import`: Argo Rollouts and Flagger manifests become our strategy specs.

The fixtures under tests/fixtures/{argo,flagger} are the projects' own documentation
examples (each file cites its page). For each one the import must succeed, carry the key
figures over, warn about what it could not model, write a strategy file that loads back
to the same spec, and drive the ideal-world dry run to the outcome the original would
reach. Smaller inline manifests pin single mapping rules; bad input must raise
InputError naming the line and the field, and nothing else may ever escape.
"""

from __future__ import annotations

import copy
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rolloutlab.errors import InputError
from rolloutlab.strategies.importers import ImportResult, dump_strategy_yaml, import_manifest, import_text
from rolloutlab.strategies.importers.conditions import ConditionNotThreshold, ResultShape, parse_threshold
from rolloutlab.strategies.spec import Signal, StrategySpec, TrafficRouting
from rolloutlab.strategies.yaml_input import parse_yaml_documents, validate_document

FIXTURES = Path(__file__).parent / "fixtures"

try:  # the dry run belongs to the controller; skip that part if it is not there yet
    from rolloutlab.strategies.dry_run import IdealWorld
    from rolloutlab.strategies.observation import Role
except ImportError:  # pragma: no cover
    IdealWorld = None


# --------------------------------------------------------------------------- helpers


def compact_steps(spec: StrategySpec) -> list[tuple]:
    """Canary steps as short tuples: ("w", 10), ("p", 60.0), ("p", None), ("a", ("t",)), ("s", ...)."""
    out: list[tuple] = []
    for step in spec.strategy.canary.steps:
        if step.set_weight is not None:
            out.append(("w", step.set_weight))
        elif step.pause is not None:
            out.append(("p", step.pause.duration))
        elif step.analysis is not None:
            out.append(("a", tuple(t.template_name for t in step.analysis.templates)))
        elif step.route is not None:  # ("r", name, number of match entries; 0: the route is removed)
            out.append(("r", step.route.name, len(step.route.match or ())))
        else:
            out.append(("s", step.set_canary_scale.model_dump(exclude_defaults=True)))
    return out


def dig(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        obj = obj[int(part)] if part.isdigit() else getattr(obj, part)
    return obj


def metrics_by_name(spec: StrategySpec) -> dict[str, Any]:
    return {m.name: m for t in spec.analysis_templates for m in t.metrics}


def reload(text: str) -> StrategySpec:
    return validate_document(parse_yaml_documents(text, "dumped.yaml")[0], StrategySpec)


def drive(spec: StrategySpec, replicas: int = 10, canary_error_rate: float = 0.0, budget: float = 7200.0):
    """Run the ideal world, passing manual gates with `promote` a minute after they are reached, as an operator would."""
    world = IdealWorld(spec.with_replicas(replicas), gate_seconds=60.0)
    world.error_rate = {Role.STABLE: 0.0, Role.CANARY: canary_error_rate}
    status = world.run(budget)
    return status, world.gates_passed


# --------------------------------------------------------------------------- fixture table


@dataclass(frozen=True)
class Case:
    """What one documentation example must import as."""

    fixture: str
    source: str
    kind: str
    figures: dict[str, Any] = field(default_factory=dict)
    steps: list[tuple] | None = None
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    gates: int = 0  # manual `promote` commands the dry run needs
    catches_bad_canary: bool = True


CASES = [
    Case(
        "argo/canary-basic.yaml", "argo-rollout", "canary",
        figures={"replicas": 10, "strategy.canary.max_surge": "25%", "strategy.canary.max_unavailable": 0,
                 "strategy.canary.traffic_routing": TrafficRouting.NONE, "analysis_templates": ()},
        steps=[("w", 10), ("p", 3600.0), ("w", 20), ("p", None)],
        warnings=("line 23: spec.minReadySeconds",),
        gates=1, catches_bad_canary=False,
    ),
    Case(
        "argo/bluegreen.yaml", "argo-rollout", "blueGreen",
        figures={"replicas": 2, "strategy.blue_green.active_service": "rollout-bluegreen-active",
                 "strategy.blue_green.preview_service": "rollout-bluegreen-preview",
                 "strategy.blue_green.auto_promotion_enabled": False,
                 "strategy.blue_green.pre_promotion_analysis": None},
        gates=1, catches_bad_canary=False,
    ),
    Case(
        "argo/analysis-step.yaml", "argo-rollout", "canary",
        figures={"replicas": 4},
        steps=[("w", 20), ("p", 300.0), ("a", ("success-rate",))],
        metrics={"success-rate": {"signal": Signal.ERROR_RATE, "success_condition": "result <= 0.05",
                                  "count": 1, "interval": 300.0, "failure_limit": 0}},
        warnings=("spec.metrics[0].provider.prometheus.query: interpreted as the success rate",
                  "'result[0] >= 0.95' on the success rate (non-5xx / all requests) converted to 'result <= 0.05'",
                  "no interval: Argo measures once"),
    ),
    Case(
        "argo/background-analysis.yaml", "argo-rollout", "canary",
        figures={"replicas": 5, "strategy.canary.analysis.starting_step": 2,
                 "strategy.canary.analysis.templates.0.template_name": "success-rate"},
        steps=[("w", 20), ("p", 600.0), ("w", 40), ("p", 600.0), ("w", 60), ("p", 600.0), ("w", 80), ("p", 600.0)],
        metrics={"success-rate": {"signal": Signal.ERROR_RATE, "success_condition": "result <= 0.05",
                                  "interval": 300.0, "count": None, "failure_limit": 3}},
        warnings=("converted to 'result <= 0.05'",),
    ),
    Case(
        "argo/multiple-templates.yaml", "argo-rollout", "canary",
        figures={"strategy.canary.analysis.templates.1.template_name": "error-rate"},
        steps=[],
        metrics={"success-rate": {"success_condition": "result <= 0.05", "failure_limit": 3},
                 "error-rate": {"signal": Signal.ERROR_RATE, "success_condition": "result[0] <= 0.95"}},
        warnings=("interpreted as the error rate (5xx / all requests)",),
        catches_bad_canary=False,  # no steps: promoted before the first 5m measurement, as in Argo
    ),
    Case(
        "argo/istio-canary.yaml", "argo-rollout", "canary",
        figures={"strategy.canary.traffic_routing": TrafficRouting.ROUTER},
        steps=[("w", 5), ("p", 600.0)],
        warnings=("line 31: spec.strategy.canary.trafficRouting.istio: traffic router 'istio' is modelled as an "
                  "exact-weight router",),
        catches_bad_canary=False,
    ),
    Case(
        "argo/bluegreen-analysis.yaml", "argo-rollout", "blueGreen",
        figures={"strategy.blue_green.pre_promotion_analysis": None,
                 "strategy.blue_green.post_promotion_analysis.templates.0.template_name": "success-rate",
                 "strategy.blue_green.scale_down_delay_seconds": 600.0},
        metrics={"success-rate": {"success_condition": "result <= 0.05", "interval": 60.0, "count": 5}},
        warnings=("'job' metrics judge a Kubernetes Job's exit code", "AnalysisTemplate 'smoke-tests' left out"),
    ),
    Case(
        "flagger/podinfo-canary.yaml", "flagger-canary", "canary",
        figures={"replicas": None, "progress_deadline_seconds": 60.0, "progress_deadline_abort": True,
                 "strategy.canary.traffic_routing": TrafficRouting.ROUTER,
                 "strategy.canary.analysis.starting_step": 2,
                 "strategy.canary.analysis.hold_on_failure": True},
        steps=[("s", {"weight": 100}), ("w", 10), ("p", 60.0), ("w", 20), ("p", 60.0), ("w", 30), ("p", 60.0), ("w", 40), ("p", 60.0),
               ("w", 50), ("p", 60.0)],
        metrics={"request-success-rate": {"signal": Signal.ERROR_RATE, "success_condition": "result <= 0.01",
                                          "interval": 60.0, "count": None, "failure_limit": 4},
                 "request-duration": {"signal": Signal.LATENCY, "quantile": 0.99, "success_condition": "result <= 500",
                                      "interval": 60.0, "failure_limit": 4}},
        warnings=("no spec.provider", "traffic router 'istio' is modelled as an exact-weight router",
                  "spec.analysis.metrics[1].interval: Flagger queries the last 30s",
                  "webhook 'acceptance-test' (pre-rollout)", "webhook 'load-test' (rollout)",
                  "spec.service.retries", "spec.autoscalerRef"),
    ),
    Case(
        "flagger/podinfo-bluegreen.yaml", "flagger-canary", "blueGreen",
        figures={"strategy.blue_green.active_service": "podinfo",
                 "strategy.blue_green.preview_service": "podinfo-canary",
                 "strategy.blue_green.pre_promotion_analysis.templates.0.template_name": "podinfo",
                 "progress_deadline_abort": True},
        metrics={"request-success-rate": {"success_condition": "result <= 0.01", "interval": 30.0, "count": 10,
                                          "failure_limit": 1},
                 "request-duration": {"signal": Signal.LATENCY, "success_condition": "result <= 500", "count": 10}},
        warnings=("line 10: spec.provider: provider 'kubernetes' has no traffic router",
                  "Flagger rolls back after 2 failed checks"),
    ),
    Case(
        "flagger/nginx-custom-latency.yaml", "flagger-canary", "canary",
        figures={"strategy.canary.traffic_routing": TrafficRouting.ROUTER},
        steps=[("s", {"weight": 100})] + [x for w in range(5, 51, 5) for x in (("w", w), ("p", 10.0))],
        metrics={"latency": {"signal": Signal.LATENCY, "quantile": 0.99, "success_condition": "result <= 500",
                             "interval": 10.0, "failure_limit": 9}},
        warnings=("MetricTemplate/latency spec.query: interpreted as the p99 latency in seconds",
                  "'result <= 0.5' on the p99 latency in seconds converted to 'result <= 500'",
                  "traffic router 'nginx'"),
    ),
    Case(
        "flagger/nginx-ab-testing.yaml", "flagger-canary", "canary",
        figures={"strategy.canary.traffic_routing": TrafficRouting.ROUTER,
                 "strategy.canary.managed_routes.0.name": "ab-match",
                 "strategy.canary.analysis.hold_on_failure": True},
        steps=[("s", {"weight": 100}), ("r", "ab-match", 2)] + [("p", 60.0)] * 10,
        metrics={"request-success-rate": {"count": None, "interval": 60.0, "failure_limit": 9}},
        warnings=("line 35: spec.analysis.match[1].headers.cookie: NGINX routes requests carrying the cookie "
                  "canary=always", "a failed or empty check holds the iteration"),
    ),
    Case(
        "flagger/istio-step-weights.yaml", "flagger-canary", "canary",
        steps=[("s", {"weight": 100}), ("w", 1), ("p", 60.0), ("w", 2), ("p", 60.0), ("w", 10), ("p", 60.0), ("w", 80), ("p", 60.0)],
        metrics={"request-success-rate": {"failure_limit": 9, "success_condition": "result <= 0.01"}},
        warnings=("traffic router 'istio'",),
        # only 4 checks before promotion but a threshold of 10: holdOnFailure keeps the weight
        # while checks fail, as Flagger does, so the 10th failed check still rolls it back
    ),
]
IDS = [c.fixture for c in CASES]


@pytest.fixture(scope="module")
def imported() -> dict[str, ImportResult]:
    return {c.fixture: import_manifest(FIXTURES / c.fixture) for c in CASES}


def test_every_fixture_is_in_the_table():
    """Each Argo and Flagger fixture file has a row in the table (so none goes untested)."""
    files = sorted(str(p.relative_to(FIXTURES)) for d in ("argo", "flagger") for p in (FIXTURES / d).glob("*.yaml"))
    assert files == sorted(IDS)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_fixture_imports_as_its_kind(case, imported):
    """A documentation example imports from the right source into the right strategy kind."""
    result = imported[case.fixture]
    assert result.source == case.source
    assert result.spec.strategy.kind.value == case.kind


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_fixture_key_figures(case, imported):
    """Replicas, services, routing, deadlines and analysis references carry over."""
    spec = imported[case.fixture].spec
    for dotted, expected in case.figures.items():
        assert dig(spec, dotted) == expected, dotted


@pytest.mark.parametrize("case", [c for c in CASES if c.steps is not None], ids=[c.fixture for c in CASES
                                                                                   if c.steps is not None])
def test_fixture_steps(case, imported):
    """Canary steps keep their weights, pause durations and analyses, in order."""
    assert compact_steps(imported[case.fixture].spec) == case.steps


@pytest.mark.parametrize("case", [c for c in CASES if c.metrics], ids=[c.fixture for c in CASES if c.metrics])
def test_fixture_metrics(case, imported):
    """Analysis metrics get the right signal, converted condition, interval, count and limits."""
    metrics = metrics_by_name(imported[case.fixture].spec)
    for name, expected in case.metrics.items():
        for attribute, value in expected.items():
            assert getattr(metrics[name], attribute) == value, f"{name}.{attribute}"


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_fixture_warnings(case, imported):
    """Every expected warning appears, and every warning names its line and field."""
    warnings = imported[case.fixture].warnings
    for expected in case.warnings:
        assert any(expected in w for w in warnings), f"{expected!r} not in {warnings}"
    for warning in warnings:
        assert warning.startswith("line "), warning
        assert warning.split(": ", 2)[1], warning


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_fixture_dump_round_trips(case, imported):
    """The written strategy file loads back to an equal spec and carries the warnings as comments."""
    result = imported[case.fixture]
    text = dump_strategy_yaml(result.spec, result.warnings)
    assert reload(text) == result.spec
    header = [line for line in text.splitlines() if line.startswith("#")]
    assert len(header) >= len(result.warnings)
    body = yaml.safe_load(text)
    assert {"name", "strategy"} <= set(body)


@pytest.mark.skipif(IdealWorld is None, reason="rolloutlab.strategies.dry_run is not present yet")
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_fixture_promotes_a_healthy_release(case, imported):
    """In the ideal world a healthy release is promoted, passing only the manifest's manual gates."""
    status, gates = drive(imported[case.fixture].spec)
    assert status.outcome == "promoted", status.message
    assert gates == case.gates


@pytest.mark.skipif(IdealWorld is None, reason="rolloutlab.strategies.dry_run is not present yet")
@pytest.mark.parametrize("case", [c for c in CASES if c.catches_bad_canary],
                         ids=[c.fixture for c in CASES if c.catches_bad_canary])
def test_fixture_rolls_back_a_failing_release(case, imported):
    """A release failing 30% of requests is rolled back: the converted conditions point the right way."""
    status, _ = drive(imported[case.fixture].spec, canary_error_rate=0.3)
    assert status.outcome == "aborted", status.message


@pytest.mark.parametrize("name", ["canary", "blue-green", "rolling"])
def test_dump_round_trips_the_bundled_strategies(name):
    """The writer is not importer-specific: every bundled strategy survives a dump and reload."""
    from rolloutlab.strategies.files import load_strategy

    spec = load_strategy(name)
    assert reload(dump_strategy_yaml(spec)) == spec


def test_dump_writes_durations_and_leaves_out_defaults(imported):
    """Durations are written like '10m' and default fields are left out."""
    text = dump_strategy_yaml(imported["argo/background-analysis.yaml"].spec)
    assert "pause: {duration: 10m}" in text
    assert "interval: 5m" in text
    assert "maxSurge" not in text and "consecutiveErrorLimit" not in text


# --------------------------------------------------------------------------- single rules, inline manifests


def rollout(strategy: str, *templates: str, spec_extra: str = "") -> str:
    """A Rollout with ``strategy`` (YAML under spec.strategy) and template documents after it."""
    head = textwrap.dedent("""\
        apiVersion: argoproj.io/v1alpha1
        kind: Rollout
        metadata:
          name: app
        spec:
          replicas: 4
        """) + textwrap.indent(textwrap.dedent(spec_extra), "  ") + "  strategy:\n"
    body = textwrap.indent(textwrap.dedent(strategy), "    ")
    return head + body + "".join("---\n" + textwrap.dedent(t) for t in templates)


def template(name: str, metric: str, kind: str = "AnalysisTemplate") -> str:
    return (f"apiVersion: argoproj.io/v1alpha1\nkind: {kind}\nmetadata:\n  name: {name}\nspec:\n  metrics:\n"
            + textwrap.indent(textwrap.dedent(metric), "  "))


STEP_ANALYSIS = """\
    canary:
      steps:
      - setWeight: 20
      - analysis:
          templates:
          - templateName: t
    """


@dataclass(frozen=True)
class Rule:
    id: str
    text: str
    metric: dict[str, Any] = field(default_factory=dict)  # expected attributes of metric "m"
    steps: list[tuple] | None = None
    figures: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    no_metric: bool = False


RULES = [
    Rule("success rate as a percentage", rollout(STEP_ANALYSIS, template("t", """\
        - name: m
          interval: 1m
          count: 3
          successCondition: result[0] >= 99
          provider:
            prometheus:
              query: sum(rate(http_requests_total{status!~"5.."}[1m])) / sum(rate(http_requests_total[1m])) * 100
        """)), metric={"signal": Signal.ERROR_RATE, "success_condition": "result <= 0.01", "count": 3},
        warnings=("success percentage converted to an error rate",)),
    Rule("latency in seconds becomes milliseconds", rollout(STEP_ANALYSIS, template("t", """\
        - name: m
          interval: 30s
          count: 4
          failureCondition: result[0] > 0.25
          provider:
            prometheus:
              query: histogram_quantile(0.95, sum(rate(http_request_duration_seconds_bucket[1m])) by (le))
        """)), metric={"signal": Signal.LATENCY, "quantile": 0.95, "failure_condition": "result > 250"},
        warnings=("seconds converted to milliseconds",)),
    Rule("an empty-result guard: Argo passes an empty vector, rolloutlab counts an error", rollout(STEP_ANALYSIS, template("t", """\
        - name: m
          interval: 1m
          count: 2
          successCondition: len(result) == 0 || result[0] < 0.01
          provider:
            prometheus:
              query: sum(rate(requests_total{code=~"5.*"}[1m])) / sum(rate(requests_total[1m]))
        """)), metric={"success_condition": "result < 0.01"},
        warnings=("read as 'result < 0.01': when the query returns no series (an empty vector), Argo finds it true",)),
    Rule("kayenta becomes the Mann-Whitney judge", rollout(STEP_ANALYSIS, template("t", """\
        - name: m
          interval: 1h
          count: 3
          provider:
            kayenta:
              address: https://kayenta.example.com
              application: guestbook
              canaryConfigName: my-test
              thresholds:
                pass: 90
                marginal: 75
        """)), metric={"judge.kind": "mannWhitney", "judge.mann_whitney.thresholds.pass_": 90.0,
                       "judge.mann_whitney.thresholds.marginal": 75.0, "count": 3},
        warnings=("canary config 'my-test' is not available here",)),
    Rule("a web metric is left out and its step with it", rollout(STEP_ANALYSIS, template("t", """\
        - name: m
          successCondition: result == 'true'
          provider:
            web:
              url: http://my-server.com/api/v1/measurement
              jsonPath: "{$.results.ok}"
        """)), steps=[("w", 20)], no_metric=True,
        warnings=("'web' metrics judge an HTTP endpoint's answer", "analysis step dropped")),
    Rule("an unreadable query is left out", rollout(STEP_ANALYSIS, template("t", """\
        - name: m
          interval: 1m
          successCondition: result[0] < 100
          provider:
            prometheus:
              query: sum(container_memory_working_set_bytes{pod=~"app-.*"})
        """)), steps=[("w", 20)], no_metric=True, warnings=("cannot tell what this query measures",)),
    Rule("an experiment step is dropped and startingStep renumbered", rollout("""\
        canary:
          analysis:
            templates:
            - templateName: t
            startingStep: 3
          steps:
          - setWeight: 10
          - experiment:
              duration: 1h
              templates:
              - name: baseline
                specRef: stable
          - pause: {duration: 10}
          - setWeight: 50
        """, template("t", """\
        - name: m
          interval: 1m
          failureCondition: result[0] > 0.05
          provider:
            prometheus:
              query: sum(rate(x{code=~"5.."}[1m])) / sum(rate(x[1m]))
        """)), steps=[("w", 10), ("p", 10.0), ("w", 50)],
        figures={"strategy.canary.analysis.starting_step": 2},
        warnings=("experiment steps", "renumbered to 2")),
    Rule("args feed a count and a threshold", rollout("""\
        canary:
          steps:
          - setWeight: 20
          - analysis:
              templates:
              - templateName: t
              args:
              - name: max-error
                value: "0.02"
        """, """\
        apiVersion: argoproj.io/v1alpha1
        kind: AnalysisTemplate
        metadata:
          name: t
        spec:
          args:
          - name: max-error
          - name: checks
            value: "6"
          metrics:
          - name: m
            interval: 10s
            count: "{{args.checks}}"
            successCondition: "result[0] <= {{args.max-error}}"
            provider:
              prometheus:
                query: sum(rate(x{code=~"5.."}[1m])) / sum(rate(x[1m]))
        """), metric={"count": 6, "success_condition": "result[0] <= 0.02"}),
    Rule("an arg known only at run time leaves the metric out", rollout("""\
        canary:
          steps:
          - analysis:
              templates:
              - templateName: t
              args:
              - name: limit
                valueFrom:
                  fieldRef:
                    fieldPath: metadata.labels['limit']
        """, template("t", """\
        - name: m
          interval: 10s
          successCondition: "result[0] <= {{args.limit}}"
          provider:
            prometheus:
              query: sum(rate(x{code=~"5.."}[1m])) / sum(rate(x[1m]))
        """)), steps=[], no_metric=True, warnings=("uses args.limit",)),
    Rule("a dry-run metric is left out", rollout("""\
        canary:
          steps:
          - setWeight: 20
          - analysis:
              templates:
              - templateName: t
              dryRun:
              - metricName: shadow
        """, template("t", """\
        - name: m
          interval: 10s
          count: 2
          successCondition: result[0] < 0.1
          provider:
            prometheus:
              query: sum(rate(x{code=~"5.."}[1m])) / sum(rate(x[1m]))
        - name: shadow
          interval: 10s
          count: 2
          successCondition: result[0] < 0.001
          provider:
            prometheus:
              query: sum(rate(x{code=~"5.."}[1m])) / sum(rate(x[1m]))
        """)), metric={"success_condition": "result[0] < 0.1"},
        warnings=("dry-run metric 'shadow' never affects an Argo rollout",)),
    Rule("a ClusterAnalysisTemplate is found by clusterScope", rollout("""\
        canary:
          steps:
          - analysis:
              templates:
              - templateName: t
                clusterScope: true
        """, template("t", """\
        - name: m
          interval: 10s
          count: 1
          successCondition: result[0] < 0.1
          provider:
            prometheus:
              query: sum(rate(x{code=~"5.."}[1m])) / sum(rate(x[1m]))
        """, kind="ClusterAnalysisTemplate")), metric={"success_condition": "result[0] < 0.1"}),
    Rule("nginx, alb and smi routers are each named", rollout("""\
        canary:
          canaryService: c
          stableService: s
          trafficRouting:
            nginx:
              stableIngress: primary-ingress
            alb:
              ingress: ingress
              servicePort: 443
            smi: {}
          steps:
          - setWeight: 5
        """), figures={"strategy.canary.traffic_routing": TrafficRouting.ROUTER},
        warnings=("traffic router 'nginx'", "traffic router 'alb'", "traffic router 'smi'")),
    Rule("blue-green timings carry over", rollout("""\
        blueGreen:
          activeService: a
          previewReplicaCount: 1
          autoPromotionSeconds: 30
          scaleDownDelaySeconds: 120
          abortScaleDownDelaySeconds: 10
          antiAffinity:
            requiredDuringSchedulingIgnoredDuringExecution: {}
        """), figures={"strategy.blue_green.preview_service": None, "strategy.blue_green.preview_replica_count": 1,
                       "strategy.blue_green.auto_promotion_seconds": 30.0,
                       "strategy.blue_green.scale_down_delay_seconds": 120.0,
                       "strategy.blue_green.abort_scale_down_delay_seconds": 10.0},
        warnings=("blueGreen.antiAffinity",)),
    Rule("workload fields are silent, behaviour fields warn", rollout("""\
        canary:
          steps:
          - setWeight: 50
        """, spec_extra="""\
        selector: {matchLabels: {app: x}}
        revisionHistoryLimit: 3
        workloadRef: {apiVersion: apps/v1, kind: Deployment, name: x}
        paused: true
        progressDeadlineSeconds: 300
        progressDeadlineAbort: true
        """), figures={"progress_deadline_seconds": 300.0, "progress_deadline_abort": True},
        warnings=("line 10: spec.paused", "line 9: spec.workloadRef: the pods come from the referenced workload")),
    Rule("a field Argo's Rollout does not have is named as such", rollout("""\
        type: CanaryUpdate
        canary:
          steps:
          - setWeight: 50
        """, spec_extra="volumes: []\n"),
        warnings=("line 7: spec.volumes: not a field of an Argo Rollout here",
                  "line 9: spec.strategy.type: not a field of an Argo Rollout here")),
]


@pytest.mark.parametrize("rule", RULES, ids=[r.id for r in RULES])
def test_argo_mapping_rule(rule):
    """One Argo mapping rule, on a small manifest written for it."""
    result = import_text(rule.text, "rule.yaml")
    spec = result.spec
    metrics = metrics_by_name(spec)
    if rule.no_metric:
        assert not metrics
    for attribute, value in rule.metric.items():
        assert dig(metrics["m"], attribute) == value, attribute
    if rule.steps is not None:
        assert compact_steps(spec) == rule.steps
    for dotted, value in rule.figures.items():
        assert dig(spec, dotted) == value, dotted
    for expected in rule.warnings:
        assert any(expected in w for w in result.warnings), f"{expected!r} not in {result.warnings}"
    assert reload(dump_strategy_yaml(spec, result.warnings)) == spec


def test_workload_fields_raise_no_warning():
    """selector, template and revisionHistoryLimit describe the workload and stay silent."""
    result = import_text(next(r for r in RULES if r.id.startswith("workload fields")).text)
    assert not [w for w in result.warnings if any(f"spec.{k}" in w for k in ("selector", "template", "revisionHistory"))]


def canary(analysis: str, provider: str | None = "istio", extra: str = "") -> str:
    head = "apiVersion: flagger.app/v1beta1\nkind: Canary\nmetadata:\n  name: app\nspec:\n"
    if provider:
        head += f"  provider: {provider}\n"
    head += "  targetRef: {apiVersion: apps/v1, kind: Deployment, name: app}\n  service: {port: 80}\n"
    return head + "  analysis:\n" + textwrap.indent(textwrap.dedent(analysis), "    ") + extra


FLAGGER_RULES = [
    Rule("stepWeight overshoots maxWeight as Flagger does", canary("""\
        interval: 30s
        threshold: 3
        maxWeight: 50
        stepWeight: 20
        metrics:
        - name: request-success-rate
          thresholdRange: {min: 99.5}
        """), steps=[("s", {"weight": 100}), ("w", 20), ("p", 30.0), ("w", 40), ("p", 30.0), ("w", 60), ("p", 30.0)],
        metric={}, figures={"analysis_templates.0.metrics.0.success_condition": "result <= 0.005",
                            "analysis_templates.0.metrics.0.failure_limit": 2}),
    Rule("the kubernetes provider forces 10 iterations", canary("""\
        interval: 1m
        stepWeight: 10
        metrics:
        - name: request-duration
          thresholdRange: {max: 250}
        """, provider="kubernetes"), figures={"analysis_templates.0.metrics.0.count": 10,
                                              "analysis_templates.0.metrics.0.success_condition": "result <= 250"},
        warnings=("sets iterations: 10", "provider 'kubernetes' has no traffic router")),
    Rule("both ends of a success range convert", canary("""\
        stepWeight: 50
        metrics:
        - name: request-success-rate
          thresholdRange: {min: 95, max: 100}
        """), figures={"analysis_templates.0.metrics.0.success_condition": "result <= 0.05 && result >= 0",
                       "analysis_templates.0.metrics.0.interval": 60.0}),
    Rule("a custom error-percentage template", canary("""\
        stepWeight: 25
        metrics:
        - name: errors
          templateRef: {name: error-rate}
          thresholdRange: {max: 1}
        """) + textwrap.dedent("""\
        ---
        apiVersion: flagger.app/v1beta1
        kind: MetricTemplate
        metadata:
          name: error-rate
        spec:
          provider: {type: prometheus, address: http://prometheus:9090}
          query: |
            100 - sum(rate(http_requests_total{status!~"5.*"}[{{ interval }}]))
            / sum(rate(http_requests_total[{{ interval }}])) * 100
        """), figures={"analysis_templates.0.metrics.0.success_condition": "result <= 0.01"},
        warnings=("interpreted as the error percentage",)),
    Rule("a 404 percentage is not an error rate and is left out", canary("""\
        stepWeight: 25
        metrics:
        - name: "404s percentage"
          templateRef: {name: not-found-percentage}
          thresholdRange: {max: 5}
        """) + textwrap.dedent("""\
        ---
        apiVersion: flagger.app/v1beta1
        kind: MetricTemplate
        metadata:
          name: not-found-percentage
        spec:
          provider: {type: prometheus, address: http://prometheus:9090}
          query: |
            100 - sum(rate(istio_requests_total{response_code!="404"}[1m]))
            / sum(rate(istio_requests_total[1m])) * 100
        """), no_metric=True, steps=[("s", {"weight": 100}), ("w", 25), ("p", 60.0), ("w", 50), ("p", 60.0), ("w", 75), ("p", 60.0),
                                     ("w", 100), ("p", 60.0)],
        warnings=("cannot tell what this query measures",)),
    Rule("skipAnalysis promotes without analysis", canary("""\
        stepWeight: 10
        metrics:
        - name: request-success-rate
          thresholdRange: {min: 99}
        """, extra="  skipAnalysis: true\n"), steps=[], no_metric=True, warnings=("promotes without analysis",)),
    Rule("confirm-promotion webhooks are named", canary("""\
        stepWeight: 50
        webhooks:
        - name: ask
          type: confirm-promotion
          url: http://gate/
        """), warnings=("webhook 'ask' (confirm-promotion)",)),
]


@pytest.mark.parametrize("rule", FLAGGER_RULES, ids=[r.id for r in FLAGGER_RULES])
def test_flagger_mapping_rule(rule):
    """One Flagger mapping rule, on a small Canary written for it."""
    result = import_text(rule.text, "rule.yaml")
    spec = result.spec
    if rule.no_metric:
        assert not metrics_by_name(spec)
    if rule.steps is not None:
        assert compact_steps(spec) == rule.steps
    for dotted, value in rule.figures.items():
        assert dig(spec, dotted) == value, dotted
    for expected in rule.warnings:
        assert any(expected in w for w in result.warnings), f"{expected!r} not in {result.warnings}"
    assert reload(dump_strategy_yaml(spec, result.warnings)) == spec


# --------------------------------------------------------------------------- bad input


DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
"""

BAD_INPUT = [
    ("a Deployment is not a Rollout", DEPLOYMENT, 1, "kind", "looked for an Argo Rollout"),
    ("unknown template reference", rollout(STEP_ANALYSIS), 13,
     "spec.strategy.canary.steps[1].analysis.templates[0].templateName", "AnalysisTemplate 't'"),
    ("malformed YAML", "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nspec:\n  strategy: [canary\n", 5, None,
     "YAML syntax error"),
    ("a step with two keys", rollout("""\
        canary:
          steps:
          - setWeight: 10
          - setWeight: 20
            pause: {duration: 1m}
        """), 11, "spec.strategy.canary.steps[1]", "exactly one of"),
    ("an unknown step", rollout("canary:\n  steps:\n  - setWieght: 10\n"), 10,
     "spec.strategy.canary.steps[0].setWieght", "unknown step"),
    ("a weight above 100", rollout("canary:\n  steps:\n  - setWeight: 150\n"), 10,
     "spec.strategy.canary.steps[0].setWeight", "at most 100"),
    ("a pause that is not a duration", rollout("canary:\n  steps:\n  - pause: {duration: soon}\n"), 10,
     "spec.strategy.canary.steps[0].pause.duration", "not a duration"),
    ("setCanaryScale without a router", rollout("canary:\n  steps:\n  - setCanaryScale: {replicas: 2}\n"), 10,
     "spec.strategy.canary.steps[0].setCanaryScale", "trafficRouting: router"),
    ("both canary and blueGreen", rollout("canary: {}\nblueGreen: {activeService: a}\n"), 7,
     "spec.strategy", "exactly one of canary, blueGreen"),
    ("a Rollout of another API version", rollout("canary: {}\n").replace("v1alpha1", "v1beta9"), 1,
     "apiVersion", "only argoproj.io/v1alpha1"),
    ("a Canary of an old API version", canary("stepWeight: 10\n").replace("v1beta1", "v1alpha3"), 1,
     "apiVersion", "only flagger.app/v1beta1"),
    ("a Canary without analysis", "apiVersion: flagger.app/v1beta1\nkind: Canary\nmetadata: {name: x}\nspec:\n"
                                  "  provider: istio\n", 4, "spec.analysis", "is required"),
    ("an unknown MetricTemplate", canary("stepWeight: 10\nmetrics:\n- name: m\n  templateRef: {name: nope}\n"
                                         "  thresholdRange: {max: 1}\n"), 13,
     "spec.analysis.metrics[0].templateRef.name", "MetricTemplate 'nope'"),
    ("weights that go down", canary("stepWeights: [10, 5]\n"), 10, "spec.analysis.stepWeights[1]", "must increase"),
    ("a Canary that cannot shift traffic", canary("interval: 1m\n"), 9, "spec.analysis", "stepWeight"),
    ("two Rollouts in one file", rollout("canary: {}\n") + "---\n" + rollout("canary: {}\n"), 10, "kind",
     "import one at a time"),
    ("a list instead of an object", "- 1\n- 2\n", 1, None, "Kubernetes object"),
    ("an empty file", "", 1, None, "no YAML document"),
]


@pytest.mark.parametrize("text,line,field_path,message", [b[1:] for b in BAD_INPUT], ids=[b[0] for b in BAD_INPUT])
def test_bad_input_is_an_input_error(text, line, field_path, message):
    """Bad input raises InputError naming the line and the field of the mistake."""
    with pytest.raises(InputError) as caught:
        import_text(text, "bad.yaml")
    error = caught.value
    assert error.file == "bad.yaml"
    assert error.line == line, str(error)
    assert error.field == field_path, str(error)
    assert message in error.message, str(error)


def test_import_manifest_reports_a_missing_file(tmp_path):
    """A file that does not exist is an InputError, not an OSError."""
    with pytest.raises(InputError):
        import_manifest(tmp_path / "nope.yaml")


# --------------------------------------------------------------------------- condition forms

V, S = ResultShape.VECTOR, ResultShape.SCALAR
# (id, condition, what the provider returns, our condition or None (not a threshold), words each note must hold)
CONDITIONS = [
    ("Argo docs, Datadog: default() gives nil a value", "default(result, 0) < 0.05", S, "result < 0.05",
     ("returns no data (nil), Argo finds it true",)),
    ("default() on a Prometheus vector: expr cannot compare the list", "default(result, 0) < 5", V, "result < 5",
     ("Argo cannot evaluate it on what this provider returns, an instant vector",)),
    ("Argo docs analysis: an empty vector fails", "len(result) > 0 && result[0] >= 0.95", V, "result >= 0.95",
     ("no series (an empty vector), Argo finds it false",)),
    ("an empty vector passes", "len(result) == 0 || result[0] < 0.01", V, "result < 0.01",
     ("no series (an empty vector), Argo finds it true",)),
    ("NaN (0/0) passes", "result[0] >= 0.95 || isNaN(result[0])", V, "result >= 0.95",
     ("value is NaN (0/0: no requests in the window), Argo finds it true",)),
    ("max over the series", "max(result) < 0.05", V, "result < 0.05", ("max() reads every series",)),
    ("all series under 1%", "all(result, {# < 0.01})", V, "result < 0.01",
     ("all() reads every series", "no series (an empty vector), Argo finds it true")),
    ("any series under 1%", "any(result, {# < 0.01})", V, "result < 0.01", ("Argo finds it false",)),
    ("none above 1%", "none(result, {# > 0.01})", V, "result <= 0.01", ("none() reads every series",)),
    ("count of series above 1% is 0", "count(result, {# > 0.01}) == 0", V, "result <= 0.01", ("count()",)),
    ("asInt truncates", "asInt(result) <= 3", S, "result < 4", ()),
    ("asInt equality is a range", "asInt(result[0]) == 2", V, "result >= 2 && result < 3", ()),
    ("asFloat is the value", "asFloat(result) > 0.9", S, "result > 0.9", ()),
    ("a number on the left", "0.95 <= result[0]", V, "result >= 0.95", ()),
    ("arithmetic solved for the value", "100 - result[0] * 100 > 99", V, "result < 0.01", ()),
    ("a negation", "!(result[0] > 0.5)", V, "result <= 0.5", ()),
    ("outside a band", "result[0] < 0.1 or result[0] > 0.9", V, "result < 0.1 || result > 0.9", ()),
    ("!= 0 over non-negative values", "result[0] != 0", V, "result > 0", ()),
    ("result[0] on a Datadog number", "result[0] < 0.01", S, "result < 0.01",
     ("Argo cannot evaluate it on what this provider returns, a single number",)),
    ("two separate ranges", "result[0] < 0.1 || result[0] > 0.5 && result[0] < 0.6", V, None, ("separate ranges",)),
    ("a second series", "result[1] < 3", V, None, ("series 1",)),
    ("a web metric's text", "result == 'It worked!'", S, None, ("compares text",)),
    ("a JSON field", "result.status == 200", S, None, ("field 'status'",)),
    ("never true", "result[0] > 0.5 && result[0] < 0.2", V, None, ("never holds",)),
    ("always true", "result[0] >= 0", V, None, ("every measured value",)),
    ("not an expression", "result <<< 3", V, None, ("cannot read it as an expr expression",)),
]


@pytest.mark.parametrize("text,shape,ours,notes", [c[1:] for c in CONDITIONS], ids=[c[0] for c in CONDITIONS])
def test_conditions_people_write_are_read_as_expr_runs_them(text, shape, ours, notes):
    """A condition becomes the threshold it is for one measured value; each difference from
    Argo's own evaluation (no data, NaN, the result's shape, several series) is a note."""
    if ours is None:
        with pytest.raises(ConditionNotThreshold) as caught:
            parse_threshold(text, shape)
        assert all(n in str(caught.value) for n in notes), str(caught.value)
        return
    threshold = parse_threshold(text, shape)
    assert threshold.render() == ours
    for note in notes:
        assert any(note in n for n in threshold.notes), (note, threshold.notes)
    if not notes:
        assert threshold.notes == ()


def test_a_condition_form_imports_with_a_warning_when_argo_differs():
    """`default(result, 0) <= 0.001` on Datadog (a pattern from Argo's Datadog docs) imports as the
    threshold, warning that Argo passes a window without data."""
    manifest = rollout(STEP_ANALYSIS, template("t", """\
        - name: m
          interval: 3m
          count: 2
          successCondition: default(result, 0) <= 0.001
          provider:
            datadog:
              interval: 3m
              query: sum:trace.http.request.errors{service:x}.as_count() / sum:trace.http.request.hits{service:x}.as_count()
        """))
    result = import_text(manifest, "rule.yaml")
    metric = metrics_by_name(result.spec)["m"]
    assert metric.success_condition == "result <= 0.001"
    assert any("'default(result, 0) <= 0.001' read as 'result <= 0.001': when the query returns no data (nil), "
               "Argo finds it true" in w for w in result.warnings), result.warnings


# --------------------------------------------------------------------------- one vocabulary per manifest

# (id, manifest, field, words of the message (and of the other system's equivalent))
MIXED = [
    ("Argo steps in a Flagger Canary", canary("interval: 1m\nthreshold: 5\nsteps:\n- setWeight: 10\n"
                                             "- pause: {duration: 2m}\n- setWeight: 50\n- pause: {duration: 2m}\n"),
     "spec.analysis.steps", "Flagger writes the same schedule in spec.analysis as stepWeights: [10, 50] with "
                            "interval: 2m"),
    ("an Argo setWeight in a Flagger Canary", canary("interval: 1m\nsetWeight: 20\n"),
     "spec.analysis.setWeight", "stepWeights: [20]"),
    ("an Argo spec.strategy in a Flagger Canary",
     canary("interval: 1m\nstepWeight: 10\n", extra="  strategy:\n    canary:\n      steps: [{setWeight: 20}, {pause: {}}]\n"),
     "spec.strategy", "a pause without duration is a confirm-promotion webhook in Flagger"),
    ("an Argo successCondition on a Flagger metric",
     canary("interval: 1m\nstepWeight: 10\nmetrics:\n- name: m\n  successCondition: result[0] >= 0.95\n"),
     "spec.analysis.metrics[0].successCondition", "thresholdRange: {min: 0.95}"),
    ("Flagger's stepWeight in an Argo background analysis", rollout("""\
        canary:
          analysis:
            stepWeight: 10
            maxWeight: 30
            interval: 2m
          steps:
          - setWeight: 50
        """), "spec.strategy.canary.analysis.stepWeight",
     "Argo writes the same schedule as steps: [{setWeight: 10}, {pause: {duration: 2m}}, {setWeight: 20}, "
     "{pause: {duration: 2m}}, {setWeight: 30}, {pause: {duration: 2m}}]"),
    ("Flagger's threshold in an Argo canary", rollout("""\
        canary:
          threshold: 5
          steps:
          - setWeight: 50
        """), "spec.strategy.canary.threshold", "failureLimit: 4 on each metric"),
]


@pytest.mark.parametrize("text,field_path,words", [m[1:] for m in MIXED], ids=[m[0] for m in MIXED])
def test_a_manifest_mixing_vocabularies_is_refused_with_the_equivalent(text, field_path, words):
    """The other system's field is named as such, with its equivalent in this system's terms."""
    with pytest.raises(InputError) as caught:
        import_text(text, "mixed.yaml")
    assert caught.value.field == field_path, str(caught.value)
    assert "would ignore it" in str(caught.value) and words in str(caught.value), str(caught.value)


# --------------------------------------------------------------------------- several files


def test_a_metric_template_in_another_file_is_found_and_warned_about_there(tmp_path):
    """The Flagger docs' NGINX latency MetricTemplate split from its Canary: the import of both
    files is the import of the one file, and the template's warning names its own file."""
    documents = (FIXTURES / "flagger" / "nginx-custom-latency.yaml").read_text().split("\n---\n")
    template = next(d for d in documents if "kind: MetricTemplate" in d)
    (tmp_path / "template.yaml").write_text(template)
    (tmp_path / "canary.yaml").write_text("\n---\n".join(d for d in documents if d is not template))
    together = import_manifest(FIXTURES / "flagger" / "nginx-custom-latency.yaml")
    apart = import_manifest([tmp_path / "canary.yaml", tmp_path / "template.yaml"])
    assert apart.spec == together.spec
    assert any(w.startswith("line ") and f" of {tmp_path / 'template.yaml'}: MetricTemplate/" in w
               for w in apart.warnings), apart.warnings


def test_the_same_template_in_two_files_is_taken_once_and_a_changed_one_from_the_later_file(tmp_path):
    """kubectl apply order: an identical copy is no news; a different one replaces the earlier with a warning."""
    text = rollout(STEP_ANALYSIS, template("t", """\
        - name: m
          interval: 1m
          count: 2
          successCondition: result[0] < 0.05
          provider:
            prometheus:
              query: sum(rate(requests_total{code=~"5.*"}[1m])) / sum(rate(requests_total[1m]))
        """))
    rollout_part, template_part = text.split("---\n", 1)
    (tmp_path / "a.yaml").write_text(rollout_part)
    (tmp_path / "b.yaml").write_text(template_part)
    (tmp_path / "c.yaml").write_text(template_part)
    same = import_manifest([tmp_path / "a.yaml", tmp_path / "b.yaml", tmp_path / "c.yaml"])
    assert not [w for w in same.warnings if "also defined" in w]
    (tmp_path / "c.yaml").write_text(template_part.replace("< 0.05", "< 0.02"))
    changed = import_manifest([tmp_path / "a.yaml", tmp_path / "b.yaml", tmp_path / "c.yaml"])
    assert metrics_by_name(changed.spec)["m"].success_condition == "result[0] < 0.02"
    assert any(f"of {tmp_path / 'c.yaml'}: AnalysisTemplate metadata.name: AnalysisTemplate 't' is also defined at "
               f"{tmp_path / 'b.yaml'}" in w for w in changed.warnings), changed.warnings


def test_an_empty_directory_and_an_empty_list_are_input_errors(tmp_path):
    """Nothing to read is bad input naming what was given."""
    with pytest.raises(InputError, match="holds no .yaml, .yml, .json file"):
        import_manifest(tmp_path)
    with pytest.raises(InputError, match="no manifest file given"):
        import_manifest([])


# --------------------------------------------------------------------------- only InputError escapes


FIXTURE_TEXTS = {c.fixture: (FIXTURES / c.fixture).read_text() for c in CASES}
JUNK = st.recursive(
    st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats() | st.text(max_size=12)
    | st.sampled_from(["5m", "-1", "{{args.x}}", "result[0] >= 0.95", "25%", "1e400", "istio", "kubernetes"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=6,
)


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _paths(value, (*prefix, i))
    return out


@st.composite
def mutated_fixture(draw) -> str:
    """A fixture with one node replaced by junk or removed, written back as YAML."""
    docs = copy.deepcopy(list(yaml.safe_load_all(FIXTURE_TEXTS[draw(st.sampled_from(sorted(FIXTURE_TEXTS)))])))
    paths = [(i, p) for i, doc in enumerate(docs) for p in _paths(doc)]
    index, path = draw(st.sampled_from(paths))
    if not path:
        docs[index] = draw(JUNK)
    else:
        parent = docs[index]
        for part in path[:-1]:
            parent = parent[part]
        if draw(st.booleans()):
            parent[path[-1]] = draw(JUNK)
        elif isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent.pop(path[-1])
    return yaml.safe_dump_all(docs, sort_keys=False, allow_unicode=True)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_fixture())
def test_mutated_fixtures_only_raise_input_error(text):
    """Whatever a fixture is mutated into, the import succeeds or raises InputError, nothing else."""
    try:
        result = import_text(text, "mutated.yaml")
    except InputError as exc:
        assert exc.file == "mutated.yaml"
        return
    assert reload(dump_strategy_yaml(result.spec, result.warnings)) == result.spec


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(FIXTURE_TEXTS)), st.integers(0, 10_000), st.integers(0, 5),
       st.text(alphabet=" \t\n-:{}[]#&*!|>'\"%@`,?0123456789abcxyz", max_size=6))
def test_text_edits_only_raise_input_error(name, position, cut, insert):
    """Characters cut from or typed into a fixture never make the import raise anything but InputError."""
    text = FIXTURE_TEXTS[name]
    position %= len(text) + 1
    edited = text[:position] + insert + text[position + cut:]
    try:
        import_text(edited, "edited.yaml")
    except InputError:
        pass
