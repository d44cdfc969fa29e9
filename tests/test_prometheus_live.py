"""``rolloutlab live --metrics prometheus`` on the local backend: a real Prometheus (Debian's)
scrapes the demo pods, discovered through a targets file rewritten as pods come and go, and
every analysis decision comes from PromQL it answered — a metric's own query (a user's
success-rate query with ``{{args.version}}`` and ``{{ interval }}``, converted to an error
rate) and the default PromQL of a metric without one. Real demo-service processes behind
HAProxy, real traffic (at most 30 requests per wall second), time compressed 10 times.
"""

from __future__ import annotations

import io
import json
import os

import pytest
from rich.console import Console

from rolloutlab.errors import BadInput, InputError, PrometheusMissing, PrometheusQueryError, exit_status
from rolloutlab.live.prometheus_metrics import PrometheusMetrics, QueryRecord, default_query, scrape_interval_for
from rolloutlab.live.runner import LiveVersion, ReleasePlan
from rolloutlab.scenarios.schema import Scenario
from rolloutlab.strategies.spec import StrategySpec
from rolloutlab.workflows.live import LiveSettings, run_live_command
from tests.outside_systems import needs_haproxy, needs_prometheus
from tests.test_local_backend import descendants, until

SCALE = 10.0
SUCCESS_QUERY = ('sum(rate(demo_requests_total{job="demo", version="{{args.version}}", code!~"5.."}[{{ interval }}]))'
                 ' / sum(rate(demo_requests_total{job="demo", version="{{args.version}}"}[{{ interval }}]))')


def scenario() -> Scenario:
    return Scenario.model_validate({
        "name": "promql", "duration": "4m",
        "services": [{"name": "web", "replicas": 4, "capacity_rps": 200, "baseline_error_rate": 0.0,
                      "latency": {"median_ms": 5, "p99_ms": 50},
                      "pod_timing": {"schedule_delay": 0, "start_delay": 5, "readiness": {"period": 5}}}],
        "traffic": {"rps": 1000, "users": 300},
        "release": {"defect_probability": 1.0, "defects": [{"kind": "error_rate", "error_rate": 0.5}]},
        "monitoring": {"alerts": []},
    })


def spec(user_query: str = SUCCESS_QUERY, **user_fields) -> StrategySpec:
    """25% to the canary, then a step analysis of two threshold metrics: the bundled kind
    (no query: the default PromQL for its signal) and a user's success-rate query.
    ``initialDelay`` covers Prometheus' discovery of the new pod (about 5 wall seconds)."""
    common = {"interval": "30s", "count": 3, "initialDelay": "1m", "failureLimit": 0}
    return StrategySpec.model_validate({
        "name": "promql-canary", "replicas": 4,
        "analysisTemplates": [{"name": "checks", "metrics": [
            {"name": "error-rate", "signal": "errorRate", "successCondition": "result < 0.1", **common},
            {"name": "success-rate", "signal": "errorRate", "query": user_query, "queryUnit": "successRate",
             "args": {"version": "v2"}, "successCondition": "result < 0.1", **common, **user_fields},
        ]}],
        "strategy": {"canary": {
            "maxSurge": "25%", "maxUnavailable": 0, "scaleDownDelaySeconds": 10, "abortScaleDownDelaySeconds": 10,
            "steps": [{"setWeight": 25}, {"analysis": {"templates": [{"templateName": "checks"}]}}]}},
    })


@pytest.fixture
def no_leftovers():
    """Nothing the test started (pods, HAProxy, Prometheus) outlives it."""
    before = descendants(os.getpid())
    yield
    assert until(lambda: not (descendants(os.getpid()) - before), 10.0), \
        f"processes left running: {descendants(os.getpid()) - before}"


def live(release: str, tmp_path, strategy: StrategySpec | None = None) -> tuple[int, dict, str]:
    out = Console(file=io.StringIO(), width=120)
    settings = LiveSettings(backend="local", time_scale=SCALE, release=release, seed=3, max_rps=30.0,
                            max_minutes=2.0, metrics="prometheus", out_dir=tmp_path / "out", report=False)
    code = run_live_command(scenario(), strategy or spec(), settings, out=out, err=Console(file=io.StringIO()))
    (timeline,) = json.loads((tmp_path / "out" / "timelines.json").read_text())
    return code, timeline, out.file.getvalue()


def measurements(timeline: dict) -> list[dict]:
    return [e for p in timeline["points"] for e in p["events"] if e["reason"] == "Measurement"]


@needs_prometheus
@needs_haproxy
@pytest.mark.parametrize(("release", "outcome"), [("good", "promoted"), ("bad", "rolled_back")],
                         ids=["good release promoted", "bad release rolled back"])
def test_every_analysis_decision_comes_from_promql_answered_by_prometheus(release, outcome, tmp_path, no_leftovers):
    """Every measurement in the run's timeline is a PromQL answer (its message says what
    Prometheus answered, and the run's query log holds that query at that time); the good
    release is promoted, the bad one (50% errors) rolled back by the analysis."""
    code, timeline, printed = live(release, tmp_path)
    assert code == 0 and timeline["outcome"] == outcome, timeline
    taken = measurements(timeline)
    assert taken, "no measurement was taken"
    log = {(q["at"], q["metric"]): q for q in timeline["promql"]}
    for event in taken:
        assert "PromQL answered" in event["message"] or "the query returned" in event["message"], event
        query = next(q for (at, metric), q in log.items() if metric == event["metric"] and
                     abs(at - next(p["at"] for p in timeline["points"] if event in p["events"])) < 1e-6)
        assert query["answer"] is None or f"PromQL answered {query['answer']:.6g}" in event["message"], (event, query)
    assert {q["metric"] for q in timeline["promql"]} == {"error-rate", "success-rate"}
    # the user's query ran as written, filled in: its args and the interval on the wall clock (30s / 10)
    users = [q["query"] for q in timeline["promql"] if q["metric"] == "success-rate"]
    assert all(q == SUCCESS_QUERY.replace("{{args.version}}", "v2").replace("{{ interval }}", "3s") for q in users)
    answered = [q["answer"] for q in timeline["promql"] if q["answer"] is not None]
    assert answered and timeline["prometheus_queries"] > len(timeline["promql"])
    if release == "bad":
        failed = [e for e in taken if e["phase"] == "Failed"]
        assert failed and all("PromQL answered" in e["message"] for e in failed)
    else:
        assert sum(e["phase"] == "Successful" for e in taken) >= 4
    assert "Prometheus answered" in printed
    print(f"prometheus ({release}):", [(e["metric"], e["phase"], e["message"][:60]) for e in taken],
          f"{timeline['prometheus_queries']} queries")


# --------------------------------------------------------------------------- errors


@needs_prometheus
@needs_haproxy
def test_a_query_that_never_returns_a_series_is_bad_input_after_the_run(tmp_path, no_leftovers):
    """A user's query over a metric the demo service does not have errors every measurement
    (the analysis ends the rollout); the command then says which query answered nothing,
    exit 2, with the run's files written."""
    wrong = spec('sum(rate(http_requests_total{version="{{args.version}}"}[{{ interval }}]))',
                 consecutiveErrorLimit=0)
    with pytest.raises(PrometheusQueryError, match="'success-rate'.*http_requests_total.*no series") as caught:
        live("good", tmp_path, wrong)
    assert exit_status(caught.value) == 2
    (timeline,) = json.loads((tmp_path / "out" / "timelines.json").read_text())
    errors = [e for e in measurements(timeline) if e["metric"] == "success-rate"]
    assert errors and all(e["phase"] == "Error" and "returned no series" in e["message"] for e in errors)


class NoPods:
    def pods(self):
        return []


def plan() -> ReleasePlan:
    return ReleasePlan("demo", "demo-v2", 4, LiveVersion("v1"), LiveVersion("v2"))


def test_prometheus_not_installed_is_bad_input():
    """A Prometheus binary that is not there: PrometheusMissing, exit 2, naming the path."""
    source = PrometheusMetrics(NoPods(), spec(), plan(), SCALE, binary="/nonexistent/prometheus")
    with pytest.raises(PrometheusMissing, match="/nonexistent/prometheus") as caught:
        source.start()
    source.close()
    assert exit_status(caught.value) == 2


@pytest.mark.parametrize(("changes", "message"), [
    (dict(backend="kube"), "prometheus runs with --backend local only"),
    (dict(metrics="graphite"), "must be loadgen"),
], ids=["prometheus on kube", "unknown metrics"])
def test_bad_metrics_options_are_bad_input(tmp_path, changes, message):
    """``--metrics prometheus`` off the local backend, or an unknown source: exit 2 naming --metrics."""
    settings = LiveSettings(out_dir=tmp_path / "out", **{"metrics": "prometheus", **changes})
    with pytest.raises(InputError, match=message) as caught:
        run_live_command(scenario(), spec(), settings, out=Console(file=io.StringIO()), err=Console(file=io.StringIO()))
    assert str(caught.value).startswith("--metrics") and exit_status(caught.value) == 2


def test_a_query_without_series_in_the_whole_run_is_bad_input():
    """A metric whose query never returned a series: one line naming the metric and the query."""
    source = PrometheusMetrics(NoPods(), spec(), plan(), SCALE)
    source.records += [QueryRecord(30.0, "success-rate", "up{job=\"nope\"}", None),
                       QueryRecord(60.0, "success-rate", "up{job=\"nope\"}", None),
                       QueryRecord(60.0, "error-rate", "x", 0.0)]
    with pytest.raises(PrometheusQueryError, match="'success-rate'.*no series at any of its 2") as caught:
        source.check_answered()
    assert exit_status(caught.value) == 2 and "\n" not in str(caught.value)


@needs_prometheus
def test_a_query_prometheus_rejects_and_an_unreachable_server_are_bad_input():
    """Bad PromQL is rejected by the real server, naming the query; once it is gone, the
    source says Prometheus is unreachable. Both are bad input (exit 2)."""
    source = PrometheusMetrics(NoPods(), spec(), plan(), SCALE).start()
    try:
        with pytest.raises(PrometheusQueryError, match="rejected the query 'sum\\(rate\\('") as rejected:
            source.client.value("sum(rate(")
        assert source.counters() == {}  # no pod yet: no series, no counters
    finally:
        source.close()
    with pytest.raises(BadInput, match="not reachable") as unreachable:
        source.counters()
    assert exit_status(rejected.value) == exit_status(unreachable.value) == 2


def test_the_default_queries_and_scrape_interval_fit_the_time_scale():
    """A metric without a query measures its signal with the demo service's metric names,
    over its interval on the wall clock; scrapes come ten times per shortest window."""
    metric = spec().analysis_templates[0].metrics[0]
    assert default_query(metric, "v2", "3s", SCALE) == (
        '(sum(rate(demo_requests_total{job="demo", version="v2", code=~"5.."}[3s])) or vector(0))'
        ' / sum(rate(demo_requests_total{job="demo", version="v2"}[3s]))')
    assert scrape_interval_for(spec(), SCALE) == 0.3
    assert scrape_interval_for(spec(), 1000.0) == 0.1 and scrape_interval_for(spec(), 1.0) == 1.0
