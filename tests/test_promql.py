"""Metrics written as PromQL: their templates filled in as Argo Rollouts and Flagger fill them
(``strategies.promql``), a query's answer judged as the measurement (``Observation.queried``
in ``strategies.analysis``), and the query kept through import and export."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from rolloutlab.errors import InputError, exit_status
from rolloutlab.strategies import Counters, Observation, VersionObservation, load_strategy
from rolloutlab.strategies.analysis import advance_analysis, measurements_due, start_analysis
from rolloutlab.strategies.analysis_spec import Metric, QueryUnit
from rolloutlab.strategies.exporters import export_strategy
from rolloutlab.strategies.importers import import_manifest, import_text
from rolloutlab.strategies.promql import QueryContext, QueryTemplateError, fill_args, render_query
from rolloutlab.strategies.status import AnalysisKind, AnalysisPhase

FIXTURES = Path(__file__).parent / "fixtures"
CONTEXT = QueryContext(target="podinfo", namespace="test", name="podinfo-canary", service="podinfo-svc",
                       interval="3s")


# --------------------------------------------------------------------------- render_query


@pytest.mark.parametrize(("template", "args", "rendered"), [
    ('x{svc="{{args.service-name}}"}', {"service-name": "web"}, 'x{svc="web"}'),
    ('x{svc="{{ args.service-name }}"}', {"service-name": "web"}, 'x{svc="web"}'),
    ("rate(x[{{ interval }}])", {}, "rate(x[3s])"),
    ('x{ns="{{ namespace }}", pod=~"{{ target }}-.*"}', {}, 'x{ns="test", pod=~"podinfo-.*"}'),
    ('x{name="{{name}}", svc="{{ service }}"}', {}, 'x{name="podinfo-canary", svc="podinfo-svc"}'),
    ('x{dir="{{ variables.direction }}"}', {"direction": "inbound"}, 'x{dir="inbound"}'),
    ("x{ns=\"{{ .namespace }}\"}", {}, 'x{ns="test"}'),
    ("sum(rate(x[1m]))", {}, "sum(rate(x[1m]))"),
], ids=["argo arg", "argo arg with spaces", "flagger interval", "flagger target and namespace",
        "flagger name and service", "flagger variable", "go template field", "no placeholder"])
def test_render_query_fills_each_project_s_placeholders(template, args, rendered):
    """Argo's {{args.x}} and Flagger's {{ target }}-style names are filled from args and the run."""
    assert render_query(template, args, CONTEXT) == rendered


@pytest.mark.parametrize(("template", "args", "context", "message"), [
    ('x{svc="{{args.service}}"}', {}, CONTEXT, "failed to resolve {{args.service}}: no value for 'service'"),
    ("x{a=\"{{ variables.dir }}\"}", {"other": "1"}, CONTEXT, "no value for 'dir' (the metric's args: other)"),
    ("rate(x[{{ interval }}])", {}, QueryContext(), "this run has no interval"),
    ("x{a=\"{{ canary_hash }}\"}", {}, CONTEXT, "unknown placeholder {{ canary_hash }}"),
], ids=["argo arg without value", "flagger variable without value", "no interval known", "unknown name"])
def test_render_query_refuses_a_placeholder_it_cannot_fill(template, args, context, message):
    """A query is never sent half filled: the placeholder is named."""
    with pytest.raises(QueryTemplateError) as caught:
        render_query(template, args, context)
    assert message in str(caught.value)


def test_fill_args_leaves_flagger_placeholders_for_flagger():
    """An export to Flagger writes Argo's args in and keeps Flagger's own names."""
    assert fill_args("x{a=\"{{args.a}}\", ns=\"{{ namespace }}\"}[{{ interval }}]", {"a": "1"}) == \
        'x{a="1", ns="{{ namespace }}"}[{{ interval }}]'


@pytest.mark.parametrize(("fields", "where"), [
    ({"query": 'x{a="{{args.a}}"}'}, "query"),
    ({"query": "x{a=\"{{ nope }}\"}"}, "query"),
    ({"queryUnit": "seconds"}, "queryUnit"),
    ({"args": {"a": "1"}}, "args"),
], ids=["an arg without value", "an unknown placeholder", "a unit without query", "args without query"])
def test_a_metric_s_query_is_checked_when_the_strategy_loads(fields, where, tmp_path):
    """Bad query templates are refused at load time, naming the file, line and field."""
    strategy = {"name": "s", "analysisTemplates": [{"name": "t", "metrics": [
        {"name": "m", "successCondition": "result < 0.1", **fields}]}],
        "strategy": {"canary": {"steps": [{"analysis": {"templates": [{"templateName": "t"}]}}]}}}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(strategy))
    with pytest.raises(InputError) as caught:
        load_strategy(path)
    assert f"metrics[0].{where}" in str(caught.value) and exit_status(caught.value) == 2
    with pytest.raises(ValidationError):
        Metric.model_validate(strategy["analysisTemplates"][0]["metrics"][0])


# --------------------------------------------------------------------------- the analysis path


def metric(**fields) -> Metric:
    return Metric.model_validate({"name": "errors", "interval": "30s", "successCondition": "result < 0.05",
                                  "query": "sum(rate(x[{{ interval }}]))", **fields})


def measure(m: Metric, queried, canary=Counters(100, 0)):
    """One measurement 30 s after the window opened, with these answers in the observation."""
    run = start_analysis(AnalysisKind.STEP, "step-1", (m,), 0.0)
    run, _ = advance_analysis(run, (m,), Observation(0.0, VersionObservation(), VersionObservation()))
    assert measurements_due(run, 29.0) == () and measurements_due(run, 30.0) == ("errors",)
    obs = Observation(30.0, VersionObservation(counters=Counters(100, 0)), VersionObservation(counters=canary),
                      queried=queried)
    run, events = advance_analysis(run, (m,), obs)
    (measured,) = run.metrics[0].measurements
    return measured, events


@pytest.mark.parametrize(("unit", "answer", "phase", "value"), [
    ("signal", 0.01, "Successful", 0.01),  # 1% errors
    ("signal", 0.2, "Failed", 0.2),
    ("successRate", 0.99, "Successful", 0.01),  # 99% success = 1% errors
    ("successRate", 0.9, "Failed", 0.1),
    ("successPercent", 98.0, "Successful", 0.02),
    ("errorPercent", 7.0, "Failed", 0.07),
], ids=["error rate passes", "error rate fails", "success rate passes", "success rate fails",
        "success percent passes", "error percent fails"])
def test_a_query_s_answer_converted_is_the_measurement(unit, answer, phase, value):
    """The answer, converted from the query's unit, is judged by the metric's condition,
    whatever the counters say (here: no canary errors at all)."""
    measured, events = measure(metric(queryUnit=unit), (("errors", answer),))
    assert measured.phase == phase and measured.value == pytest.approx(value)
    assert f"PromQL answered {answer:.6g}" in events[0].message


def test_a_query_without_series_is_an_error_measurement():
    """No series (Argo: an empty vector) is an Error, counted toward consecutiveErrorLimit."""
    measured, events = measure(metric(), (("errors", None),))
    assert measured.phase == "Error" and measured.value is None and "returned no series" in events[0].message


def test_a_nan_answer_is_an_error_measurement():
    """0/0 (no requests in the query's window) is an Error too, never a pass."""
    measured, _ = measure(metric(), (("errors", float("nan")),))
    assert measured.phase == "Error"


def test_without_an_answer_the_counters_decide():
    """No answer for the metric (empty, or another metric's): the counters' window is judged."""
    for queried in ((), (("other", 0.9),)):
        measured, events = measure(metric(), queried, canary=Counters(100, 10))
        assert measured.phase == "Failed" and measured.value == pytest.approx(0.1)
        assert "PromQL" not in events[0].message


def test_a_range_judge_reads_the_answer_too():
    """Flagger's thresholdRange judges the converted answer."""
    m = Metric.model_validate({"name": "errors", "interval": "30s", "thresholdRange": {"max": 0.05},
                               "query": "q", "queryUnit": "successPercent"})
    measured, _ = measure(m, (("errors", 90.0),))
    assert measured.phase == "Failed" and measured.value == pytest.approx(0.1)


def test_counter_judges_ignore_answers():
    """Mann-Whitney compares per-version series: it keeps reading the counters."""
    m = Metric.model_validate({"name": "errors", "interval": "30s", "query": "q",
                               "judge": {"mannWhitney": {"minPoints": 2}}})
    measured, events = measure(m, (("errors", 0.9),))
    assert "PromQL" not in events[0].message and measured.phase == "Pending"


# --------------------------------------------------------------------------- import and export keep the query


def test_an_argo_template_keeps_its_query_args_and_unit():
    """Argo's success-rate query is kept as written, with its args' values and its unit."""
    (m,) = [m for t in import_manifest(FIXTURES / "argo" / "analysis-step.yaml").spec.analysis_templates
            for m in t.metrics]
    assert "{{args.service-name}}" in m.query and m.args == {"service-name": "guestbook-svc.default.svc.cluster.local"}
    assert m.query_unit is QueryUnit.SUCCESS_RATE
    assert 'destination_service=~"guestbook-svc.default.svc.cluster.local"' in render_query(m.query, m.args)


def test_a_flagger_metric_template_keeps_its_query():
    """Flagger's MetricTemplate query keeps {{ namespace }} / {{ target }}; a builtin check has no query."""
    metrics = {m.name: m for t in import_manifest(FIXTURES / "flagger" / "nginx-custom-latency.yaml").spec
               .analysis_templates for m in t.metrics}
    latency = metrics["latency"]
    assert '"{{ namespace }}"' in latency.query and latency.query_unit is QueryUnit.SECONDS
    assert metrics["request-success-rate"].query is None


@pytest.mark.parametrize("target", ["argo", "flagger"])
def test_a_metric_s_own_query_goes_out_verbatim_and_comes_back(target):
    """export writes the metric's query instead of the default one, and an import reads
    it back as the same query, unit and args."""
    spec = import_manifest(FIXTURES / "argo" / "analysis-step.yaml").spec
    (before,) = [m for t in spec.analysis_templates for m in t.metrics]
    exported = export_strategy(spec, target)
    queries = [d["spec"].get("query") or d["spec"]["metrics"][0]["provider"]["prometheus"]["query"]
               for d in yaml.safe_load_all(exported.text) if d["kind"] in ("AnalysisTemplate", "MetricTemplate")]
    if target == "argo":
        assert queries == [before.query]
    else:  # Flagger has no Argo args: their values are written in
        assert queries == [render_query(before.query, before.args)]
    (after,) = [m for t in import_text(exported.text, "x.yaml").spec.analysis_templates for m in t.metrics]
    assert after.query_unit is before.query_unit
    assert render_query(after.query, after.args) == render_query(before.query, before.args)


def test_an_analysis_phase_is_judged_from_answers_end_to_end():
    """Three answers, the second failing: with failureLimit 0 the metric fails."""
    m = metric(count=3)
    run = start_analysis(AnalysisKind.STEP, "s", (m,), 0.0)
    empty = VersionObservation()
    run, _ = advance_analysis(run, (m,), Observation(0.0, empty, empty))
    for at, answer in ((30.0, 0.01), (60.0, 0.5)):
        run, _ = advance_analysis(run, (m,), Observation(at, empty, empty, queried=(("errors", answer),)))
    assert run.phase is AnalysisPhase.FAILED
