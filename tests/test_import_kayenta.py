"""Kayenta canary configs import as rolloutlab's Mann-Whitney judge, metric for metric.

Fixtures (``tests/fixtures/kayenta/``, provenance in its README) are Kayenta's own configs
(SignalFx and Prometheus integration tests, the New Relic ad-hoc request) and one written
from the documented Prometheus shapes.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from rolloutlab.errors import InputError
from rolloutlab.strategies.importers import dump_strategy_yaml, import_manifest, import_text
from rolloutlab.strategies.importers.kayenta import is_kayenta_config, kayenta_metric
from rolloutlab.strategies.judges import MeasurementPhase, judge_measurement
from rolloutlab.strategies.observation import LATENCY_BUCKETS_MS, MeasurementWindow, WindowStats
from rolloutlab.strategies.spec import Metric, StrategySpec
from rolloutlab.strategies.yaml_input import parse_yaml_documents, parse_yaml_file, validate_document

FIXTURES = Path(__file__).parent / "fixtures" / "kayenta"


def signals_of(spec: StrategySpec) -> list[tuple]:
    judge = spec.analysis_templates[0].metrics[0].judge.mann_whitney
    return [(s.name, s.signal.value, s.quantile, s.direction.value) for s in judge.signals]


# (fixture, judged signals (name, signal, quantile, direction), group weights, thresholds (pass, marginal))
FIXTURE_CASES = [
    ("prometheus-golden-signals.json",
     [("http 5xx ratio", "errorRate", None, "increase"), ("p99 latency", "latency", 0.99, "increase"),
      ("grpc availability", "errorRate", None, "increase")],
     {"errors": 62.5, "latency": 37.5}, (90.0, 90.0)),
    ("signalfx-integration-test.json",
     [("an error count metric, that doesn't exist", "errorRate", None, "increase"),
      ("another error count metric, that doesn't exist", "errorRate", None, "increase")],
     {"Integration Test Group": 100.0}, (75.0, 75.0)),
    ("newrelic-adhoc.json",
     [("errorRate", "errorRate", None, "either"), ("transactionTime", "latency", 0.5, "either")],
     {"err": 70.0, "app": 30.0}, (95.0, 95.0)),
]


@pytest.mark.parametrize("fixture, signals, weights, thresholds", FIXTURE_CASES, ids=[c[0] for c in FIXTURE_CASES])
def test_config_imports_as_one_kayenta_judged_canary(fixture, signals, weights, thresholds):
    """A config alone becomes a canary beside a baseline, judged once after orca's schedule
    (1-minute points, one judgement at the end of the lifetime): its judgeable metrics are
    the judge's signals, its group weights the judge's, a single final judgement failing
    below pass (orca's AggregateCanaryResultsTask)."""
    result = import_manifest(FIXTURES / fixture)
    assert result.source == "kayenta-config"
    metric = result.spec.analysis_templates[0].metrics[0]
    judge = metric.judge.mann_whitney
    assert signals_of(result.spec) == signals
    assert judge.group_weights == weights
    assert (judge.thresholds.pass_, judge.thresholds.marginal) == thresholds
    assert (metric.interval, metric.count, judge.judge_every, metric.failure_limit) == (60.0, 60, 60, 0)
    canary = result.spec.strategy.canary
    assert canary.baseline and [s.set_weight for s in canary.steps] == [10, None]
    assert any("scheduled as Spinnaker's kayentaCanary stage defaults do" in w for w in result.warnings)


@pytest.mark.parametrize("fixture", [c[0] for c in FIXTURE_CASES])
def test_every_metric_is_judged_or_named_in_a_warning(fixture):
    """No metric disappears silently: each is a signal or has a "left out" warning at its query's line."""
    result = import_manifest(FIXTURES / fixture)
    doc = parse_yaml_file(FIXTURES / fixture)[0]
    root = ("canaryConfig",) if "canaryConfig" in doc.data else ()
    config = doc.data["canaryConfig"] if root else doc.data
    judged = {s[0] for s in signals_of(result.spec)}
    for i, m in enumerate(config["metrics"]):
        if m["name"] in judged:
            continue
        line = doc.line_of((*root, "metrics", i, "query"))
        assert any(w.startswith(f"line {line}: ") and f"{m['name']!r}" in w and "left out" in w
                   for w in result.warnings), m["name"]


@pytest.mark.parametrize("index, reason", [
    (0, "measures cpu, a resource rolloutlab does not model"),
    (1, "counts client errors (4xx)"),
], ids=["SignalFx CPU", "SignalFx 4xx"])
def test_left_out_metrics_say_why(index, reason):
    """The SignalFx integration config's CPU and bad-request metrics are left out, each with its reason."""
    result = import_manifest(FIXTURES / "signalfx-integration-test.json")
    assert any(f"metrics[{index}].query" in w and reason in w for w in result.warnings)


def test_a_config_with_nothing_to_judge_is_refused_at_its_metrics():
    """Kayenta's Prometheus CPU-only integration config has nothing rolloutlab judges: an
    input error at ``metrics`` (line 8) naming why each metric was left out."""
    with pytest.raises(InputError) as caught:
        import_manifest(FIXTURES / "prometheus-cpu-only.json")
    assert caught.value.line == 8
    assert "'CPU usage for service' measures cpu" in str(caught.value)


def test_promql_is_read_and_a_success_rate_turns_around():
    """PromQL ratios and histogram_quantile are read by read_query; the gRPC availability
    (success) ratio with direction decrease and a cles allowedDecrease of 0.2 is judged as an
    error rate with direction increase and allowedIncrease 0.8."""
    result = import_manifest(FIXTURES / "prometheus-golden-signals.json")
    judge = result.spec.analysis_templates[0].metrics[0].judge.mann_whitney
    errors, latency, grpc = judge.signals
    assert (errors.critical, errors.nan_strategy.value, errors.effect_size.allowed_increase,
            errors.effect_size.critical_increase) == (True, "replace", 1.1, 5.0)
    assert (latency.must_have_data, latency.outliers.strategy.value, latency.effect_size.allowed_increase) == (
        True, "remove", 1.2)
    assert (grpc.effect_size.measure.value, grpc.effect_size.allowed_increase, grpc.effect_size.allowed_decrease) == (
        "cles", pytest.approx(0.8), None)
    assert any("templates.p99Latency: read as the p99 latency in seconds" in w for w in result.warnings)
    assert any("classifier.groupWeights: no metric of 'system' can be judged here; the other groups' weights are "
               "scaled to add up to 100 (errors 62.5, latency 37.5)" in w for w in result.warnings)


def windows(canary_rate: float, n: int = 60) -> list[MeasurementWindow]:
    """n windows, 10 000 requests a side, baseline error rate 1%, the same latency histogram."""
    buckets = tuple(10_000 if j == 3 else 0 for j in range(len(LATENCY_BUCKETS_MS)))
    return [MeasurementWindow(60.0 * (k + 1), WindowStats(60.0, 10_000, round(canary_rate * 10_000) + k % 3, buckets),
                              WindowStats(60.0, 10_000, 100 + k % 3, buckets)) for k in range(n)]


@pytest.mark.parametrize("canary_rate, phase, text", [
    (0.01, MeasurementPhase.SUCCESSFUL, "score 100"),
    (0.03, MeasurementPhase.FAILED, "score 37.5 (pass 90, marginal 90), groups errors 0, latency 100"),
    (0.06, MeasurementPhase.FAILED, "score 0 (pass 90, marginal 90), critical signal failed: http 5xx ratio,"),
], ids=["canary like the baseline passes", "3x the errors fails its group", "6x is beyond criticalIncrease 5"])
def test_the_imported_judge_judges_at_the_end_of_the_lifetime(canary_rate, phase, text):
    """The imported metric waits through the lifetime (Pending) and judges at its 60th window:
    the same error rate passes; three times the errors fails the errors group (both its
    signals High); six times reaches the 5xx ratio's criticalIncrease of 5 and scores 0."""
    metric = import_manifest(FIXTURES / "prometheus-golden-signals.json").spec.analysis_templates[0].metrics[0]
    assert judge_measurement(metric, windows(canary_rate, 59)).phase is MeasurementPhase.PENDING
    judgement = judge_measurement(metric, windows(canary_rate))
    assert judgement.phase is phase and text in judgement.message


def test_a_stage_timing_becomes_windows_judgements_and_lookback():
    """A kayentaCanary stage judging every 10 minutes, 3 times, after a 5-minute warm-up, over
    the last 20 minutes: 1-minute windows, 30 of them, judged every 10th, the latest 20."""
    doc = parse_yaml_file(FIXTURES / "signalfx-integration-test.json")[0]
    warnings: list[str] = []
    metric = kayenta_metric(doc, warnings, interval=600, count=3, initial_delay=300,
                            thresholds={"pass": 80, "marginal": 60}, lookback=1200)
    m = Metric.model_validate(metric)
    judge = m.judge.mann_whitney
    assert (m.interval, m.count, m.initial_delay, judge.judge_every, judge.lookback) == (60.0, 30, 300.0, 10, 20)
    assert (judge.thresholds.pass_, judge.thresholds.marginal, judge.thresholds.marginal_inclusive) == (80, 60, False)
    assert (m.failure_limit, m.inconclusive_limit) == (0, 2)
    assert any("3 judgements: Spinnaker fails the last one below pass 80" in w for w in warnings)


def config_text(metrics: list[dict], **extra) -> str:
    return json.dumps({"name": "c", "judge": {"name": "NetflixACAJudge-v1.0"}, "metrics": metrics, **extra}, indent=2)


def metric(name: str, canary: dict | None = None, groups=("g",), query: dict | None = None) -> dict:
    out = {"name": name, "query": query or {"type": "datadog", "metricName": "sum:trace.http.request.errors{*}"},
           "analysisConfigurations": {"canary": canary or {}}, "scopeName": "default"}
    if groups:
        out["groups"] = list(groups)
    return out


@pytest.mark.parametrize("text, marker, message", [
    (config_text([metric("errors", {"effectSize": {"measure": "cles", "allowedIncrease": 1.5}})]), '"metrics": [',
     "a cles bound is a probability"),
    (config_text([metric("errors"), metric("more errors", groups=("h",))],
                 classifier={"groupWeights": {"g": 60, "h": 60}}), '"groupWeights"', "above 100"),
    (config_text([metric("errors", query={"type": "prometheus", "customFilterTemplate": "missing"})]),
     '"customFilterTemplate"', "names template 'missing'"),
    (config_text([metric("errors", {"outliers": {"strategy": "remove", "outlierFactor": 0}})]), '"outlierFactor"',
     "must be above 0"),
], ids=["cles bound above 1", "group weights above 100", "unknown template", "outlier factor 0"])
def test_a_bad_config_is_refused_at_its_own_field(text, marker, message):
    """Errors point at the config's line and field (the metric, for a rule of rolloutlab's on a
    signal), not at rolloutlab's names."""
    with pytest.raises(InputError, match=message) as caught:
        import_text(text, "config.json")
    line = next(n for n, text_line in enumerate(text.splitlines(), start=1) if marker in text_line)
    assert caught.value.line == line + (1 if marker == '"metrics": [' else 0)  # the metric: the item after "["


@pytest.mark.parametrize("canary, warning, direction", [
    ({"direction": "up"}, "'up' is not one of increase, decrease, either; Kayenta reads it as 'either'", "either"),
    ({}, "direction either (Kayenta default): a canary significantly *below* the baseline fails", "either"),
    ({"direction": "increase"}, None, "increase"),
], ids=["unknown direction", "default direction", "increase"])
def test_direction_as_kayenta_parses_it(canary, warning, direction):
    """MetricDirection.parse: increase, decrease, either, anything else either (the default)."""
    result = import_text(config_text([metric("errors", canary)]), "config.json")
    assert signals_of(result.spec)[0][3] == direction
    assert warning is None or any(warning in w for w in result.warnings)


def test_ungrouped_metrics_are_muted_beside_grouped_ones():
    """A metric without a group counts in no group score in Kayenta: judged, muted."""
    result = import_text(config_text([metric("errors"), metric("5xx", groups=())]), "config.json")
    judge = result.spec.analysis_templates[0].metrics[0].judge.mann_whitney
    assert [s.muted for s in judge.signals] == [False, True]
    assert any("'5xx' is in no group" in w for w in result.warnings)


def test_a_config_without_groups_scores_each_metric():
    """With no group at all Kayenta's score would be 0; each metric becomes its own group, with a warning."""
    result = import_text(config_text([metric("errors", groups=()), metric("5xx", groups=())]), "config.json")
    judge = result.spec.analysis_templates[0].metrics[0].judge.mann_whitney
    assert [s.muted for s in judge.signals] == [False, False]
    assert any("no metric has a group" in w for w in result.warnings)


def test_a_meanratio_bound_on_a_success_rate_is_not_carried_over():
    """A success rate's meanRatio bound has no error-rate equivalent: Kayenta's defaults, with a warning."""
    query = {"type": "prometheus", "customInlineTemplate": 'PromQL:sum(rate(req{code!~"5.."}[1m])) / sum(rate(req[1m]))'}
    text = config_text([metric("success", {"direction": "decrease", "effectSize": {"allowedDecrease": 0.9}},
                               query=query)])
    result = import_text(text, "config.json")
    judge = result.spec.analysis_templates[0].metrics[0].judge.mann_whitney
    assert judge.signals[0].direction.value == "increase" and judge.signals[0].effect_size.allowed_decrease is None
    assert any("no exact error-rate equivalent" in w for w in result.warnings)


def test_another_judge_is_judged_as_netflix_aca():
    """A config naming another judge is still judged as NetflixACAJudge-v1.0, with a warning."""
    text = config_text([metric("errors")]).replace("NetflixACAJudge-v1.0", "dredd-v1.0")
    assert any("judge 'dredd-v1.0'" in w for w in import_text(text, "config.json").warnings)


@pytest.mark.parametrize("fixture", [c[0] for c in FIXTURE_CASES])
def test_imported_strategy_round_trips_through_yaml(fixture):
    """The strategy file written from an import loads back to the same spec."""
    result = import_manifest(FIXTURES / fixture)
    text = dump_strategy_yaml(result.spec, result.warnings)
    assert validate_document(parse_yaml_documents(text, "dumped.yaml")[0], StrategySpec) == result.spec


@pytest.mark.parametrize("data, expected", [
    ({"name": "c", "metrics": [], "classifier": {}}, True),
    ({"canaryConfig": {"metrics": [], "judge": {}}, "executionRequest": {}}, True),
    ({"name": "p", "stages": [], "metrics": [], "judge": {}}, False),
    ({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout"}, False),
    ({"metrics": []}, False),
], ids=["config", "ad-hoc body", "a pipeline", "a Rollout", "metrics alone"])
def test_what_counts_as_a_canary_config(data, expected):
    """A canary config is metrics plus a judge, classifier or configVersion (or the ad-hoc body around one)."""
    assert is_kayenta_config(data) is expected


def test_warning_lines_are_the_fields_lines():
    """Every warning's line holds the field it names (spot check on the golden-signals config)."""
    text = (FIXTURES / "prometheus-golden-signals.json").read_text().splitlines()
    for w in import_manifest(FIXTURES / "prometheus-golden-signals.json").warnings:
        match = re.match(r"line (\d+): canary config(?: (\S+?))?:", w)
        assert match, w
        if match.group(2) is None:  # the config as a whole: its first line
            assert match.group(1) == "1"
            continue
        last = re.findall(r"[A-Za-z0-9]+", match.group(2).split(".")[-1])
        if match.group(2) != "canary" and last and not last[-1].isdigit():
            assert last[-1] in text[int(match.group(1)) - 1], w
