"""Header and mirror routes survive `rolloutlab import`.

Argo Rollouts' `setHeaderRoute`, `setMirrorRoute` and `trafficRouting.managedRoutes` carry
over one to one; Flagger's A/B testing (`match` + `iterations`) and mirroring (`mirror`,
`mirrorWeight`) become the routes and steps Flagger's controller really runs
(strategies/importers/flagger_routes.py cites where). Rows are the projects' own manifests
(examples/imports/, each naming its source) and small manifests written for one rule; every
row checks the imported steps, the routes' matches and percentages, the reported losses
(with their lines) and that the written strategy loads back. Bad input is an InputError
naming the file, the line and the field, and `rolloutlab import` prints it and exits 2.
"""

from __future__ import annotations

import copy
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rolloutlab.errors import InputError
from rolloutlab.strategies.actions import RemoveRoute, ScaleVersion, SetCanaryWeight, SetHeaderRoute, SetMirrorRoute
from rolloutlab.strategies.dry_run import IdealWorld
from rolloutlab.strategies.importers import dump_strategy_yaml, import_manifest, import_text
from rolloutlab.strategies.observation import Role
from rolloutlab.strategies.routes import RequestTraits, route_request
from rolloutlab.strategies.spec import StrategySpec
from rolloutlab.strategies.yaml_input import parse_yaml_documents, validate_document

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "imports"
NGINX_AB = ROOT / "tests" / "fixtures" / "flagger" / "nginx-ab-testing.yaml"


# --------------------------------------------------------------------------- helpers


def hm(name: str, kind: str, value: str) -> tuple[str, str, str]:
    """One header match as a row writes it."""
    return (name, kind, value)


def steps_of(spec: StrategySpec) -> list[tuple]:
    """Canary steps as short tuples; routes with their matches (None: the step removes the route).
    A step holding several actions is ``("+", scale, route, weight/pause/analysis)``."""
    out: list[tuple] = []
    for step in spec.strategy.canary.steps:
        parts: list[tuple] = []
        if step.set_canary_scale is not None:
            parts.append(("s", step.set_canary_scale.model_dump(exclude_defaults=True)))
        if step.set_header_route is not None:
            route = step.set_header_route
            matches = None if route.match is None else [
                (m.header_name, *next(iter(m.header_value.model_dump(exclude_none=True).items()))) for m in route.match]
            parts.append(("header", route.name, matches))
        if step.set_mirror_route is not None:
            route = step.set_mirror_route
            matches = None if route.match is None else [m.model_dump(exclude_none=True) for m in route.match]
            parts.append(("mirror", route.name, route.percentage, matches))
        if step.set_weight is not None:
            parts.append(("w", step.set_weight))
        if step.pause is not None:
            parts.append(("p", step.pause.duration))
        if step.analysis is not None:
            parts.append(("a", tuple(t.template_name for t in step.analysis.templates)))
        out.append(parts[0] if len(parts) == 1 else ("+", *parts))
    return out


def reload(text: str) -> StrategySpec:
    return validate_document(parse_yaml_documents(text, "dumped.yaml")[0], StrategySpec)


def rollout(steps: str, routing: str = "managedRoutes:\n- name: r1\nistio: {virtualService: {name: vs}}\n",
            extra: str = "") -> str:
    """A Rollout whose canary has ``steps`` and ``routing`` under trafficRouting (none when empty)."""
    text = ("apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata:\n  name: app\nspec:\n  replicas: 4\n"
            "  strategy:\n    canary:\n")
    if routing:
        text += "      trafficRouting:\n" + textwrap.indent(routing, "        ")
    text += textwrap.indent(textwrap.dedent(extra), "      ")
    return text + "      steps:\n" + textwrap.indent(textwrap.dedent(steps), "      ")


def canary(analysis: str, provider: str | None = "istio") -> str:
    """A Flagger Canary with ``analysis`` (YAML under spec.analysis) and one success-rate metric."""
    head = "apiVersion: flagger.app/v1beta1\nkind: Canary\nmetadata:\n  name: app\nspec:\n"
    if provider:
        head += f"  provider: {provider}\n"
    head += "  targetRef: {apiVersion: apps/v1, kind: Deployment, name: app}\n  service: {port: 80}\n  analysis:\n"
    metric = "metrics:\n- name: request-success-rate\n  thresholdRange: {min: 99}\n"
    return head + textwrap.indent(textwrap.dedent(analysis) + metric, "    ")


TEMPLATE = """\
---
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: t
spec:
  metrics:
  - name: m
    interval: 1m
    successCondition: result[0] < 0.05
    provider:
      prometheus:
        query: sum(rate(http_requests_total{code=~"5.."}[1m])) / sum(rate(http_requests_total[1m]))
"""

EVERY_REQUEST = [{"path": {"prefix": "/"}}]
PAUSES_1M = [("p", 60.0)] * 10


# --------------------------------------------------------------------------- the import table


@dataclass(frozen=True)
class Row:
    """What one manifest must import as."""

    id: str
    text: str
    steps: list[tuple] | None  # None: not a canary
    managed: tuple[str, ...] = ()
    kind: str = "canary"
    losses: tuple[str, ...] = ()  # each appears in one warning ("line 35: spec.analysis.match...: ...")
    carried: tuple[str, ...] = ()  # no warning may say these any more: the fields are carried now
    figures: tuple[tuple[str, Any], ...] = ()  # (dotted attribute of the spec, value)


def example(name: str) -> str:
    return (EXAMPLES / name).read_text()


ARGO = [
    Row("argo-rollouts examples/istio/istio-mirror.yaml: 50% of POST /color copied to the canary",
        example("argo-istio-mirror.yaml"),
        [("s", {"weight": 50}),
         ("mirror", "mirror-route", 50, [{"method": {"exact": "POST"}, "path": {"prefix": "/color"}}]),
         ("p", None)],
        managed=("mirror-route",),
        losses=("line 67: spec.strategy.canary.trafficRouting.istio: traffic router 'istio' is modelled",),
        carried=("managedRoutes", "setMirrorRoute", "mirrored requests")),
    Row("argo-rollouts docs traffic-management: three header matches, a gate, the route removed",
        example("argo-header-route.yaml"),
        [("w", 20),
         ("header", "set-header-1", [hm("custom-header1", "exact", "Mozilla"),
                                     hm("custom-header2", "prefix", "Mozilla"),
                                     hm("custom-header3", "regex", "Mozilla(.*)")]),
         ("p", None), ("header", "set-header-1", None)],
        managed=("set-header-1",),
        losses=("line 10: spec: spec.replicas is not set",
                "line 18: spec.strategy.canary.trafficRouting.istio: traffic router 'istio'"),
        carried=("managedRoutes", "setHeaderRoute")),
    Row("argo-rollouts e2e apisix: setCanaryScale, setHeaderRoute and pause in one step stay one step",
        example("argo-apisix-set-header.yaml"),
        [("+", ("s", {"replicas": 1}), ("header", "set-header", [hm("trace", "exact", "debug")]), ("p", 15.0)),
         ("p", 15.0), ("w", 5), ("p", 15.0), ("w", 50), ("p", 15.0)],
        managed=("set-header",),
        losses=("line 75: spec.strategy.canary.trafficRouting.apisix: traffic router 'apisix'",),
        carried=("setHeaderRoute sends", "in one step", "steps[0]")),
    Row("a mirror route without percentage copies 100%; method, path and headers of one entry all hold",
        rollout("""\
            - setMirrorRoute:
                name: r1
                match:
                - method: {exact: GET}
                  path: {regex: /api/.*}
                  headers:
                    x-debug: {exact: "1"}
                - method: {prefix: P}
            - pause: {duration: 2m}
            - setMirrorRoute: {name: r1}
            """),
        [("mirror", "r1", 100, [{"method": {"exact": "GET"}, "path": {"regex": "/api/.*"},
                                 "headers": {"x-debug": {"exact": "1"}}}, {"method": {"prefix": "P"}}]),
         ("p", 120.0), ("mirror", "r1", 100, None)],
        managed=("r1",)),
    Row("setWeight with a header route and a canary scale beside it stay one step; startingStep kept",
        rollout("""\
            - setWeight: 10
            - setWeight: 30
              setCanaryScale: {replicas: 2}
              setHeaderRoute:
                name: r1
                match:
                - {headerName: x-group, headerValue: {exact: staff}}
            - pause: {duration: 1m}
            """, extra="analysis:\n  templates: [{templateName: t}]\n  startingStep: 2\n") + TEMPLATE,
        [("w", 10), ("+", ("s", {"replicas": 2}), ("header", "r1", [hm("x-group", "exact", "staff")]), ("w", 30)),
         ("p", 60.0)],
        managed=("r1",),
        carried=("steps[1]", "startingStep"),
        figures=(("strategy.canary.analysis.starting_step", 2),)),
    Row("both routes in one step: the header route becomes a step of its own just before",
        rollout("""\
            - setCanaryScale: {weight: 25}
              setHeaderRoute:
                name: r1
                match:
                - {headerName: x-group, headerValue: {exact: staff}}
              setMirrorRoute:
                name: r2
                match:
                - method: {exact: GET}
              pause: {duration: 1m}
            """, routing="managedRoutes:\n- name: r1\n- name: r2\nistio: {virtualService: {name: vs}}\n"),
        [("header", "r1", [hm("x-group", "exact", "staff")]),
         ("+", ("s", {"weight": 25}), ("mirror", "r2", 100, [{"method": {"exact": "GET"}}]), ("p", 60.0))],
        managed=("r1", "r2"),
        losses=("line 16: spec.strategy.canary.steps[0].setHeaderRoute: rolloutlab changes one route per step",)),
    Row("setCanaryScale beside an analysis: Argo ends the step once the pods are there, the analysis never holds",
        rollout("""\
            - setCanaryScale: {replicas: 1}
              analysis:
                templates: [{templateName: t}]
            - setWeight: 50
            """) + TEMPLATE.replace("successCondition: result[0] < 0.05", "count: 2\n    successCondition: result[0] < 0.05"),
        [("+", ("s", {"replicas": 1}), ("a", ("t",))), ("w", 50)],
        managed=("r1",),
        losses=("line 15: spec.strategy.canary.steps[0].analysis: Argo ends a step holding setCanaryScale once the "
                "canary has its pods",)),
    Row("fields a route cannot carry are reported with their lines, the route itself is kept",
        rollout("""\
            - setHeaderRoute:
                name: r1
                weight: 5
                match:
                - headerName: x-group
                  headerValue: {exact: staff, suffix: ff}
                  ignoreCase: true
            """, routing="managedRoutes:\n- name: r1\n  precedence: 1\nistio: {virtualService: {name: vs}}\n"),
        [("header", "r1", [hm("x-group", "exact", "staff")])],
        managed=("r1",),
        losses=("line 12: spec.strategy.canary.trafficRouting.managedRoutes[0].precedence: not modelled",
                "line 17: spec.strategy.canary.steps[0].setHeaderRoute.weight: not modelled",
                "line 20: spec.strategy.canary.steps[0].setHeaderRoute.match[0].headerValue.suffix: not modelled",
                "line 21: spec.strategy.canary.steps[0].setHeaderRoute.match[0].ignoreCase: not modelled")),
    Row("managedRoutes with no route step still carries over, in order",
        rollout("- setWeight: 40\n", routing="managedRoutes:\n- name: b\n- name: a\nistio: {}\n"),
        [("w", 40)], managed=("b", "a")),
]

FLAGGER = [
    Row("flagger docs istio-ab-testing: Firefox users and the insider cookie on the canary for 10 iterations",
        example("flagger-istio-ab-testing.yaml"),
        [("s", {"weight": 100}),
         ("header", "ab-match", [hm("user-agent", "regex", ".*Firefox.*"),
                                 hm("cookie", "regex", "^(.*?;)?(type=insider)(;.*)?$")])] + PAUSES_1M,
        managed=("ab-match",),
        losses=("line 9: spec: no spec.provider", "line 19: spec.autoscalerRef",
                "line 37: spec.analysis: Flagger sets the A/B route at its first check after the canary is ready",
                "a failed or empty check holds the iteration"),
        carried=("imported as blueGreen", "cannot pick requests by content"),
        figures=(("strategy.canary.analysis.starting_step", 2), ("strategy.canary.analysis.hold_on_failure", True),
                 ("analysis_templates.0.metrics.0.failure_limit", 1), ("analysis_templates.0.metrics.0.count", None))),
    Row("flagger docs istio traffic mirroring: copies during 10 iterations, then all traffic for one check",
        example("flagger-istio-mirroring.yaml"),
        [("s", {"weight": 100}), ("mirror", "mirror", 100, EVERY_REQUEST)] + PAUSES_1M
        + [("mirror", "mirror", 100, None), ("w", 100), ("p", 60.0)],
        managed=("mirror",),
        losses=("line 11: spec.analysis: Flagger sets the mirror at its first check",
                "line 32: spec.analysis.webhooks[0]: webhook 'acceptance-test' (pre-rollout)"),
        carried=("mirroring is not modelled", "imported as blueGreen")),
    Row("flagger docs nginx A/B: the x-canary header, and the canary cookie set to always",
        NGINX_AB.read_text(),
        [("s", {"weight": 100}),
         ("header", "ab-match", [hm("x-canary", "exact", "insider"),
                                 hm("cookie", "regex", r"(.*;\s*)?canary=always(;.*)?")])] + PAUSES_1M,
        managed=("ab-match",),
        losses=("line 35: spec.analysis.match[1].headers.cookie: NGINX routes requests carrying the cookie "
                "canary=always",),
        carried=("A/B testing sends",)),
    Row("a progressive istio canary mirrors mirrorWeight% for one check before its first weight",
        canary("""\
            interval: 30s
            stepWeight: 25
            maxWeight: 50
            mirror: true
            mirrorWeight: 40
            """),
        [("s", {"weight": 100}), ("mirror", "mirror", 40, EVERY_REQUEST), ("p", 30.0), ("mirror", "mirror", 100, None),
         ("w", 25), ("p", 30.0), ("w", 50), ("p", 30.0)],
        managed=("mirror",),
        losses=("line 9: spec.analysis: Flagger sets the mirror at its first check",),
        carried=("mirrorWeight", "mirroring")),
    Row("mirrorWeight 0 or unset mirrors everything, as Istio does without mirrorPercentage",
        canary("stepWeight: 50\nmirror: true\nmirrorWeight: 0\n"),
        [("s", {"weight": 100}), ("mirror", "mirror", 100, EVERY_REQUEST), ("p", 60.0), ("mirror", "mirror", 100, None),
         ("w", 50), ("p", 60.0), ("w", 100), ("p", 60.0)],
        managed=("mirror",)),
    Row("a progressive nginx canary does not mirror: Flagger's NGINX router sets no mirror",
        canary("stepWeight: 50\nmirror: true\n", provider="nginx"),
        [("s", {"weight": 100}), ("w", 50), ("p", 60.0), ("w", 100), ("p", 60.0)],
        losses=("line 11: spec.analysis.mirror: Flagger's nginx router sets no mirror for this strategy",)),
    Row("a Gateway API blue/green mirrors every request: mirrorWeight is ignored",
        canary("interval: 1m\niterations: 3\nmirror: true\nmirrorWeight: 50\n", provider="gatewayapi:v1"),
        [("s", {"weight": 100}), ("mirror", "mirror", 100, EVERY_REQUEST), ("p", 60.0), ("p", 60.0), ("p", 60.0),
         ("mirror", "mirror", 100, None), ("w", 100), ("p", 60.0)],
        managed=("mirror",),
        losses=("line 13: spec.analysis.mirrorWeight: Flagger's gatewayapi router mirrors every request",)),
    Row("the kubernetes provider cannot mirror: blue/green without the mirror",
        canary("iterations: 5\nmirror: true\n", provider="kubernetes"), None, kind="blueGreen",
        losses=("line 11: spec.analysis.mirror: Flagger's kubernetes router sets no mirror",),
        figures=(("strategy.blue_green.pre_promotion_analysis.templates.0.template_name", "app"),
                 ("analysis_templates.0.metrics.0.count", 5))),
    Row("A/B testing never mirrors, mirror: true or not",
        canary("iterations: 2\nmirror: true\nmatch:\n- headers:\n    x-canary: {exact: insider}\n"),
        [("s", {"weight": 100}), ("header", "ab-match", [hm("x-canary", "exact", "insider")]), ("p", 60.0),
         ("p", 60.0)],
        managed=("ab-match",),
        losses=("line 11: spec.analysis.mirror: A/B testing never mirrors",)),
    Row("what a header route cannot carry of an Istio condition is reported; suffix becomes a regex",
        canary("""\
            iterations: 3
            match:
            - headers:
                x-a: {exact: "1"}
                x-b: {prefix: beta}
              uri: {prefix: /api}
              sourceLabels: {app: frontend}
            - headers:
                user-agent: {suffix: v2.1}
            - sourceLabels: {app: scheduler}
            """),
        [("s", {"weight": 100}),
         ("header", "ab-match", [hm("x-a", "exact", "1"), hm("user-agent", "regex", r".*v2\.1")]),
         ("p", 60.0), ("p", 60.0), ("p", 60.0)],
        managed=("ab-match",),
        losses=("line 14: spec.analysis.match[0].headers.x-b: Flagger requires every header of one condition "
                "(x-a, x-b)",
                "line 15: spec.analysis.match[0].uri: uri is not carried",
                "line 16: spec.analysis.match[0].sourceLabels: selects requests by the labels of the calling workload",
                "line 19: spec.analysis.match[2]: this condition names no header")),
    Row("an A/B test whose conditions name no header stays a blue/green",
        canary("iterations: 4\nmatch:\n- sourceLabels: {app: scheduler}\n"), None, kind="blueGreen",
        losses=("line 11: spec.analysis.match: no condition can be carried by a header route",
                "line 12: spec.analysis.match[0]: this condition names no header"),
        figures=(("analysis_templates.0.metrics.0.count", 4),)),
    Row("NGINX takes one header, the last one; a prefix there routes the value 'always'",
        canary("""\
            iterations: 2
            match:
            - headers:
                x-a: {exact: "1"}
            - headers:
                x-b: {prefix: beta}
                cookie: {regex: ".*"}
            """, provider="nginx"),
        [("s", {"weight": 100}), ("header", "ab-match", [hm("x-b", "exact", "always")]), ("p", 60.0), ("p", 60.0)],
        managed=("ab-match",),
        losses=("line 13: spec.analysis.match[0].headers.x-a: replaced by a later header condition",
                "line 15: spec.analysis.match[1].headers.x-b: Flagger's NGINX router has no prefix match",
                "line 16: spec.analysis.match[1].headers.cookie: Flagger's NGINX router reads only `exact`")),
    Row("mirrorWeight without mirror: true does nothing in Flagger",
        canary("stepWeight: 50\nmirrorWeight: 20\n"),
        [("s", {"weight": 100}), ("w", 50), ("p", 60.0), ("w", 100), ("p", 60.0)],
        losses=("line 11: spec.analysis.mirrorWeight: does nothing without mirror: true",)),
]
ROWS = ARGO + FLAGGER


@pytest.fixture(scope="module")
def imported() -> dict[str, Any]:
    return {row.id: import_text(row.text, "manifest.yaml") for row in ROWS}


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_routes_and_steps_are_imported(row, imported):
    """The steps keep their order, and every route its name, matches and percentage; managedRoutes its order."""
    spec = imported[row.id].spec
    assert spec.strategy.kind.value == row.kind
    if row.steps is not None:
        assert steps_of(spec) == row.steps
        assert tuple(r.name for r in spec.strategy.canary.managed_routes) == row.managed
    for dotted, value in row.figures:
        obj: Any = spec
        for part in dotted.split("."):
            obj = obj[int(part)] if part.isdigit() else getattr(obj, part)
        assert obj == value, dotted


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_losses_are_reported_with_their_lines(row, imported):
    """Each thing the model cannot carry is a warning naming its line and field; what is carried is not warned about."""
    warnings = imported[row.id].warnings
    for loss in row.losses:
        assert any(loss in w for w in warnings), f"{loss!r} not in {warnings}"
    for word in row.carried:
        assert not any(word in w for w in warnings), f"{word!r} still warned about: {warnings}"
    assert all(w.startswith("line ") for w in warnings), warnings


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_the_written_strategy_loads_back(row, imported):
    """The strategy file written from the import loads back to the same spec, routes included."""
    result = imported[row.id]
    assert reload(dump_strategy_yaml(result.spec, result.warnings)) == result.spec


def test_every_example_is_in_the_table():
    """Each manifest under examples/imports has a row here, so none goes untested."""
    texts = {row.text for row in ROWS}
    for path in sorted(EXAMPLES.glob("*.yaml")):
        assert path.read_text() in texts, path.name


# --------------------------------------------------------------------------- who the routes take


def routing_of(spec: StrategySpec, request: RequestTraits) -> tuple[bool, float]:
    """Where ``request`` goes while every route the steps set is in force."""
    routes = [s.route for s in spec.strategy.canary.steps if s.route is not None and s.route.match is not None]
    found = route_request(routes, request)
    return found.to_canary, found.mirror


def get(path: str = "/", method: str = "GET", **headers: str) -> RequestTraits:
    return RequestTraits(method, path, {k.replace("_", "-"): v for k, v in headers.items()})


WHO = [
    # (row, request, (all to the canary, share copied to the canary)), as the original router decides
    (NGINX_AB, get(x_canary="insider"), (True, 0.0)),
    (NGINX_AB, get(x_canary="outsider"), (False, 0.0)),
    (NGINX_AB, get(cookie="canary=always"), (True, 0.0)),  # curl -b 'canary=always', as Flagger's docs say
    (NGINX_AB, get(cookie="session=1; canary=always"), (True, 0.0)),
    (NGINX_AB, get(cookie="canary=never"), (False, 0.0)),
    (NGINX_AB, get(cookie="xcanary=always"), (False, 0.0)),
    (NGINX_AB, get(), (False, 0.0)),
    (EXAMPLES / "flagger-istio-ab-testing.yaml", get(user_agent="Mozilla/5.0 Gecko Firefox/121.0"), (True, 0.0)),
    (EXAMPLES / "flagger-istio-ab-testing.yaml", get(cookie="lang=en;type=insider"), (True, 0.0)),
    (EXAMPLES / "flagger-istio-ab-testing.yaml", get(user_agent="Chrome/120"), (False, 0.0)),
    (EXAMPLES / "flagger-istio-mirroring.yaml", get("/token", "POST"), (False, 1.0)),
    (EXAMPLES / "argo-istio-mirror.yaml", get("/color/blue", "POST"), (False, 0.5)),
    (EXAMPLES / "argo-istio-mirror.yaml", get("/color"), (False, 0.0)),  # GET is not mirrored
    (EXAMPLES / "argo-header-route.yaml", get(custom_header2="Mozilla/5.0"), (True, 0.0)),
    (EXAMPLES / "argo-header-route.yaml", get(custom_header3="Mozilla"), (True, 0.0)),
    (EXAMPLES / "argo-header-route.yaml", get(custom_header1="Mozilla/5.0"), (False, 0.0)),  # exact
]


@pytest.mark.parametrize("manifest, request_, expected", WHO,
                         ids=[f"{m.name}:{r.method} {r.path} {dict(r.headers)}" for m, r, _ in WHO])
def test_imported_routes_take_the_requests_the_original_router_takes(manifest, request_, expected):
    """A request goes to the canary, or is copied to it, exactly when Argo's or Flagger's router would."""
    assert routing_of(import_manifest(manifest).spec, request_) == expected


# --------------------------------------------------------------------------- Flagger's clock


def progressive_mirror(threshold: int) -> str:
    return canary(f"interval: 1m\nthreshold: {threshold}\nstepWeight: 10\nmaxWeight: 30\nmirror: true\n")


@dataclass(frozen=True)
class Tick:
    id: str
    manifest: str
    canary_error_rate: float
    changes: list[tuple[float, str, Any]]  # (time, action, weight or route name)
    completed_at: float | None = None
    aborted_at: float | None = None


TICKS = [
    # runCanary: the mirror is set at the loop that finds the canary ready (10s here); the
    # next passing check removes it and sets the first weight; one weight per check after
    Tick("progressive canary: one interval of mirroring, then the weights", progressive_mirror(2), 0.0,
         [(10.0, "mirror", "mirror"), (70.0, "remove", "mirror"), (70.0, "weight", 10), (130.0, "weight", 20),
          (190.0, "weight", 30), (250.0, "weight", 100)], completed_at=250.0),
    # the copies are judged: two failed checks on mirrored requests (70s, 130s) reach the
    # threshold and the next loop rolls back without users ever seeing the canary
    Tick("progressive canary: failing copies roll it back before any weight", progressive_mirror(2), 0.3,
         [(10.0, "mirror", "mirror"), (190.0, "remove", "mirror")], aborted_at=190.0),
    # runBlueGreen: mirroring for the 10 iterations, then all traffic to the canary for one
    # more check ("Stop traffic mirroring and route all traffic to canary"), then promotion
    Tick("flagger docs mirroring: 10 intervals of copies, one of all traffic", example("flagger-istio-mirroring.yaml"),
         0.0, [(10.0, "mirror", "mirror"), (610.0, "remove", "mirror"), (610.0, "weight", 100)], completed_at=670.0),
    Tick("flagger docs mirroring: threshold 5 reached on copies at 310s, rolled back at the next check",
         example("flagger-istio-mirroring.yaml"), 0.3, [(10.0, "mirror", "mirror"), (370.0, "remove", "mirror")],
         aborted_at=370.0),
    # runAB: the route is set at the loop that finds the canary ready and counts the first
    # iteration; the 10th check (610s) completes the count and promotes. The dry run's
    # segment is the users the route takes; the checks judge their requests
    Tick("flagger docs istio A/B: the route for 10 iterations, then promotion",
         example("flagger-istio-ab-testing.yaml"), 0.0,
         [(10.0, "header", "ab-match"), (610.0, "weight", 100), (610.0, "remove", "ab-match")], completed_at=610.0),
    Tick("flagger docs istio A/B: threshold 2 reached at the 2nd failed check (130s), rolled back at 190s",
         example("flagger-istio-ab-testing.yaml"), 0.3, [(10.0, "header", "ab-match"), (190.0, "remove", "ab-match")],
         aborted_at=190.0),
    Tick("flagger docs nginx A/B: threshold 10 reached at 610s, rolled back at 670s", NGINX_AB.read_text(), 0.3,
         [(10.0, "header", "ab-match"), (670.0, "remove", "ab-match")], aborted_at=670.0),
]


@pytest.mark.parametrize("tick", TICKS, ids=[t.id for t in TICKS])
def test_imported_routes_follow_flaggers_schedule(tick):
    """Route or mirror set, removed, weights, promotion or rollback happen at the second Flagger's loop would."""
    world = IdealWorld(import_text(tick.manifest, "canary.yaml").spec.with_replicas(4))
    world.error_rate = {Role.STABLE: 0.0, Role.CANARY: tick.canary_error_rate}
    world.run(3600.0)
    names = {SetMirrorRoute: "mirror", SetHeaderRoute: "header", RemoveRoute: "remove", SetCanaryWeight: "weight"}
    changes = [(d.at, names[type(a)], getattr(a, "weight", getattr(a, "name", None)))
               for d in world.log for a in d.actions if type(a) in names]
    assert changes == tick.changes
    assert (world.status.completed_at, world.status.aborted_at) == (tick.completed_at, tick.aborted_at)


def test_a_step_with_scale_route_and_pause_does_all_three_when_it_is_reached():
    """Argo's apisix e2e step (setCanaryScale, setHeaderRoute and a 15s pause in one step): the
    route and the canary pod come at once, and the pause runs from the step's start, as
    reconcileTrafficRouting and reconcileCanaryPause do; the next pause follows it."""
    world = IdealWorld(import_manifest(EXAMPLES / "argo-apisix-set-header.yaml").spec.with_replicas(4))
    world.run(3600.0)
    names = {SetHeaderRoute: "header", RemoveRoute: "remove", SetCanaryWeight: "weight", ScaleVersion: "scale"}
    changes = [(d.at, names[type(a)], getattr(a, "weight", getattr(a, "name", getattr(a, "replicas", None))))
               for d in world.log for a in d.actions if type(a) in names and getattr(a, "role", Role.CANARY) is Role.CANARY]
    assert changes[:4] == [(0.0, "header", "set-header"), (0.0, "scale", 1), (30.0, "weight", 5), (45.0, "weight", 50)]
    steps = [(d.at, e.message) for d in world.log for e in d.actions if "completed" in getattr(e, "message", "")]
    assert steps[:2] == [(15.0, "step 0 (pause) completed"), (30.0, "step 1 (pause) completed")]
    assert world.status.completed_at == 70.0


def test_a_step_with_scale_and_analysis_ends_when_the_pods_are_there():
    """Argo's completedCurrentCanaryStep checks setCanaryScale before analysis: the step ends
    once the canary has its pod, so even a canary failing every request is not stopped by it."""
    row = next(r for r in ROWS if r.id.startswith("setCanaryScale beside an analysis"))
    world = IdealWorld(import_text(row.text, "manifest.yaml").spec.with_replicas(4))
    world.error_rate = {Role.STABLE: 0.0, Role.CANARY: 1.0}
    world.run(3600.0)
    assert world.status.completed and not world.status.aborted
    assert world.status.completed_at == 20.0  # its pod at 10s (setWeight: 50 keeps that scale), all four at 20s


# --------------------------------------------------------------------------- bad input


BAD = [
    ("an Argo mirror percentage of 150",
     rollout("- setMirrorRoute:\n    name: r1\n    percentage: 150\n    match:\n    - method: {exact: GET}\n"),
     16, "spec.strategy.canary.steps[0].setMirrorRoute.percentage", "must be at most 100, got 150"),
    ("a Flagger mirrorWeight of 150", canary("stepWeight: 10\nmirror: true\nmirrorWeight: 150\n"),
     12, "spec.analysis.mirrorWeight", "must be at most 100, got 150"),
    ("a header route with no match entries", rollout("- setHeaderRoute:\n    name: r1\n    match: []\n"),
     16, "spec.strategy.canary.steps[0].setHeaderRoute.match", "match is empty"),
    ("a mirror route with an empty match entry", rollout("- setMirrorRoute:\n    name: r1\n    match:\n    - {}\n"),
     17, "spec.strategy.canary.steps[0].setMirrorRoute.match[0]", "a match needs method, path or headers"),
    ("a route name not in managedRoutes",
     rollout("- setHeaderRoute:\n    name: r2\n    match:\n    - {headerName: x, headerValue: {exact: y}}\n"),
     15, "spec.strategy.canary.steps[0].setHeaderRoute.name", "route 'r2' is not in managedRoutes (r1)"),
    ("a managed route declared twice", rollout("- setWeight: 5\n", routing="managedRoutes:\n- name: a\n- name: a\n"),
     12, "spec.strategy.canary.trafficRouting.managedRoutes[1].name", "declared twice"),
    ("a route step without a traffic router", rollout("- setMirrorRoute: {name: r1}\n", routing=""),
     10, "spec.strategy.canary.steps[0].setMirrorRoute", "needs trafficRouting: router"),
    ("a header value with two kinds",
     rollout("- setHeaderRoute:\n    name: r1\n    match:\n    - {headerName: x, headerValue: {exact: y, regex: z}}\n"),
     17, "spec.strategy.canary.steps[0].setHeaderRoute.match[0].headerValue",
     "takes exactly one of exact, prefix, regex; got exact, regex"),
    ("a header value that is a number",
     rollout("- setHeaderRoute:\n    name: r1\n    match:\n    - headerName: x\n      headerValue: {exact: 2}\n"),
     18, "spec.strategy.canary.steps[0].setHeaderRoute.match[0].headerValue.exact", "must be text"),
    ("a regex that does not compile",
     rollout("- setHeaderRoute:\n    name: r1\n    match:\n    - headerName: x\n      headerValue: {regex: 'a(b'}\n"),
     18, "spec.strategy.canary.steps[0].setHeaderRoute.match[0].headerValue.regex", "does not compile"),
    ("a header name with a space",
     rollout("- setHeaderRoute:\n    name: r1\n    match:\n    - headerName: x y\n      headerValue: {exact: z}\n"),
     17, "spec.strategy.canary.steps[0].setHeaderRoute.match[0].headerName", "is not an HTTP header name"),
    ("setWeight and pause in one step (Argo refuses it too)", rollout("- setWeight: 5\n  pause: {}\n"),
     14, "spec.strategy.canary.steps[0]", "a step takes exactly one of setWeight, pause, analysis"),
    ("a Flagger A/B condition that is not a mapping", canary("iterations: 2\nmatch:\n- x-canary\n"),
     12, "spec.analysis.match[0]", "must be a mapping"),
    ("a Flagger A/B header with two kinds", canary("iterations: 2\nmatch:\n- headers:\n    x: {exact: a, suffix: b}\n"),
     13, "spec.analysis.match[0].headers.x", "takes exactly one of exact, prefix, suffix, regex"),
    ("a Flagger A/B regex that does not compile", canary("iterations: 2\nmatch:\n- headers:\n    x: {regex: '(a'}\n"),
     13, "spec.analysis.match[0].headers.x", "does not compile"),
]


@pytest.mark.parametrize("text, line, field, message", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_routes_are_input_errors(text, line, field, message):
    """A bad route is an InputError naming the file, the line and the field, whatever layer refuses it."""
    with pytest.raises(InputError) as caught:
        import_text(text, "bad.yaml")
    error = caught.value
    assert (error.file, error.line, error.field) == ("bad.yaml", line, field), str(error)
    assert message in error.message, str(error)


@pytest.mark.parametrize("case", [BAD[0], BAD[1], BAD[4]], ids=[BAD[0][0], BAD[1][0], BAD[4][0]])
def test_the_import_command_prints_the_line_and_exits_2(case, tmp_path):
    """`rolloutlab import` prints one line `file:line: field: message` for a bad route and exits 2, no traceback."""
    _, text, line, field, message = case
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    result = subprocess.run([sys.executable, "-m", "rolloutlab.cli", "import", str(path)], capture_output=True,
                            text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert f"error: {path}:{line}: {field}: {message}" in " ".join(result.stderr.split())


# --------------------------------------------------------------------------- only InputError escapes


JUNK = st.recursive(
    st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.text(max_size=8)
    | st.sampled_from(["", "a(b", "always", "x y", "150", "ab-match", "mirror"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=5,
)


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        out += _paths(value, (*prefix, key))
    return out


@st.composite
def mutated_row(draw) -> str:
    """A row's manifest with one node (a route, a match, a percentage...) replaced by junk or removed."""
    docs = copy.deepcopy(list(yaml.safe_load_all(draw(st.sampled_from([r.text for r in ROWS])))))
    index, path = draw(st.sampled_from([(i, p) for i, doc in enumerate(docs) for p in _paths(doc) if p]))
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
@given(mutated_row())
def test_mutated_route_manifests_only_raise_input_error(text):
    """Whatever a row's manifest is mutated into, the import succeeds and loads back, or raises InputError."""
    try:
        result = import_text(text, "mutated.yaml")
    except InputError as exc:
        assert exc.file == "mutated.yaml"
        return
    assert reload(dump_strategy_yaml(result.spec, result.warnings)) == result.spec
