"""The scenario schema: defaults, units, and errors that name the field and line."""

from __future__ import annotations

import math
import textwrap

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from yaml_mutations import mutated_lines

from rolloutlab.errors import InputError
from rolloutlab.scenarios import bundled_scenario, load_scenario
from rolloutlab.scenarios.schema import (
    BUNDLED_SCENARIOS_DIR,
    METRICS,
    STATS,
    ErrorRateDefect,
    LognormalDistribution,
    Scenario,
    SpikesProfile,
    UniformDistribution,
    parse_assertion,
)
from rolloutlab.strategies.yaml_input import parse_yaml_documents, validate_document

STANDARD_TEXT = (BUNDLED_SCENARIOS_DIR / "standard.yaml").read_text()


def _load(text: str) -> Scenario:
    (doc,) = parse_yaml_documents(textwrap.dedent(text), "s.yaml")
    return validate_document(doc, Scenario)


# --- the bundled scenario -------------------------------------------------------------------


def test_standard_scenario_has_the_stated_figures():
    """standard.yaml is 10 replicas, 1,000 rps constant, 30 minutes, 20% bad releases."""
    scenario = load_scenario(bundled_scenario())
    service = scenario.service_under_test
    assert scenario.name == "standard"
    assert service.replicas == 10
    assert scenario.traffic.rps == 1000
    assert scenario.traffic.profile.kind == "constant"
    assert scenario.duration == 30 * 60
    assert scenario.release.defect_probability == 0.2
    assert scenario.release.defects == [ErrorRateDefect(error_rate=0.05)]
    assert isinstance(service.pod_timing.start_delay, UniformDistribution)
    assert (service.pod_timing.start_delay.low, service.pod_timing.start_delay.high) == (5, 15)
    assert service.pod_timing.readiness.period == 5
    alert = scenario.monitoring.alerts[0]
    assert (alert.metric, alert.threshold, alert.for_) == ("error_rate", 0.02, 120)
    assert scenario.response.response_time.median == 600


def test_bundled_scenario_accepts_file_name_and_rejects_unknown():
    """bundled_scenario finds "standard" or "standard.yaml" and explains unknown names."""
    assert bundled_scenario("standard.yaml") == bundled_scenario("standard")
    with pytest.raises(InputError, match="available: .*standard"):
        bundled_scenario("no-such-scenario")
    with pytest.raises(InputError):
        bundled_scenario("../schema")


def test_minimal_scenario_gets_sane_defaults():
    """A scenario with only a name is a complete world: one app, 1,000 rps, 30 minutes."""
    scenario = _load("name: tiny\n")
    assert [s.name for s in scenario.services] == ["app"]
    assert scenario.service_under_test.replicas == 10
    assert scenario.traffic.rps == 1000
    assert scenario.duration == 1800
    assert scenario.release.defect_probability == 0.2
    assert scenario.monitoring.alerts[0].name == "high_error_rate"
    assert scenario.migration is None and scenario.history is None


def test_first_service_is_under_test_unless_marked():
    """Without an explicit marker the first service is the one under test."""
    unmarked = _load("name: x\nservices: [{name: a}, {name: b}]\n")
    marked = _load("name: x\nservices: [{name: a}, {name: b, under_test: true}]\n")
    assert unmarked.service_under_test.name == "a"
    assert marked.service_under_test.name == "b"


@pytest.mark.parametrize(
    ("service", "nodes"),
    [
        ("{name: a, replicas: 10}", 3),
        ("{name: a, replicas: 30}", 9),
        ("{name: a, replicas: 1, zones: [z]}", 1),
        ("{name: a, replicas: 10, nodes: 5}", 5),
    ],
    ids=["10-replicas-over-3-zones", "30-replicas-over-3-zones", "one-zone", "explicit"],
)
def test_node_count_default(service, nodes):
    """Nodes default to one per zone per 4 replicas in that zone, at least one per zone."""
    assert _load(f"name: x\nservices: [{service}]\n").services[0].nodes == nodes


def test_scenario_round_trips_through_its_dump():
    """A dumped scenario (by alias) validates back to an equal scenario."""
    scenario = load_scenario(bundled_scenario())
    again = Scenario.model_validate(scenario.model_dump(by_alias=True))
    assert again == scenario


# --- units ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "seconds"),
    [("1h30m", 5400), ("90", 90), ("45m", 2700), ("2h", 7200), ("1800.5", 1800.5),
     ("'600'", 600), ("1:30:00", 5400)],
    ids=["hours-and-minutes", "bare-number", "minutes", "hours", "float", "quoted-number",
         "yaml11-base-60-is-seconds"],
)
def test_scenario_duration_parses(written, seconds):
    """The scenario duration accepts numbers and unit strings and stores seconds."""
    assert _load(f"name: x\nduration: {written}\n").duration == seconds


def test_durations_inside_distributions_and_faults_parse():
    """Duration strings work in distributions, shorthands, faults and spikes alike."""
    scenario = _load(
        """\
        name: x
        duration: 1h
        traffic:
          profile: {kind: spikes, spikes: [{at: 10m, duration: 90s, multiplier: 2}]}
        services:
          - name: a
            pod_timing: {start_delay: 250ms, schedule_delay: {kind: exponential, mean: 2s}}
        faults:
          - {kind: pod_kill, at: 5m30s, count: 2}
        response:
          response_time: {kind: lognormal, median: 10m, p99: 1h}
        """
    )
    assert isinstance(scenario.traffic.profile, SpikesProfile)
    assert scenario.traffic.profile.spikes[0].at == 600
    assert scenario.traffic.profile.spikes[0].duration == 90
    assert scenario.services[0].pod_timing.start_delay.value == 0.25
    assert scenario.services[0].pod_timing.schedule_delay.mean == 2
    assert scenario.faults[0].at == 330
    assert scenario.response.response_time.p99 == 3600


@pytest.mark.parametrize(
    ("spread", "sigma"),
    [({"p90": 1800}, math.log(3) / 1.2815515655446004),
     ({"p99": 1800}, math.log(3) / 2.3263478740408408),
     ({"sigma": 0.7}, 0.7)],
    ids=["from-p90", "from-p99", "given"],
)
def test_lognormal_sigma(spread, sigma):
    """A lognormal's spread may be given as p90, p99 or sigma; all give the same sigma."""
    dist = LognormalDistribution(median=600, **spread)
    assert dist.sigma_value == pytest.approx(sigma)
    assert dist.expected() == pytest.approx(600 * math.exp(sigma**2 / 2))


@pytest.mark.parametrize(
    ("text", "metric", "stat", "op", "value"),
    [
        ("change_failure_rate <= 0.05", "change_failure_rate", None, "<=", 0.05),
        ("false_rollback_rate<=1%", "false_rollback_rate", None, "<=", 0.01),
        ("mttr.p90 <= 300s", "mttr", "p90", "<=", 300),
        ("mttr <= 5m", "mttr", "mean", "<=", 300),
        ("failed_requests.mean <= 500", "failed_requests", "mean", "<=", 500),
        ("rollout_duration.median <= 20m", "rollout_duration", "median", "<=", 1200),
        ("rollout_duration.p50 < 1h30m", "rollout_duration", "median", "<", 5400),
        ("detected_within.p90 <= 120s", "detected_within", "p90", "<=", 120),
        ("detected_within.p99 <= 250ms", "detected_within", "p99", "<=", 0.25),
        ("failed_request_fraction.max < 2%", "failed_request_fraction", "max", "<", 0.02),
        ("cost.mean <= 20h", "cost", "mean", "<=", 72000),
        ("cost.p95 >= 100", "cost", "p95", ">=", 100),
        ("failed_requests.max == 0", "failed_requests", "max", "==", 0),
    ],
    ids=[
        "rate", "rate-in-percent", "duration-p90-seconds", "duration-default-mean",
        "count-mean", "median-minutes", "p50-is-median", "detected-within",
        "milliseconds", "fraction-percent", "replica-hours", "replica-seconds", "equality",
    ],
)
def test_assertions_parse(text, metric, stat, op, value):
    """Expectation expressions become metric, statistic, operator and a base-unit value."""
    parsed = parse_assertion(text)
    assert (parsed.metric, parsed.stat, parsed.op) == (metric, stat, op)
    assert parsed.value == pytest.approx(value)
    assert str(parsed) == text


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("mttr.p100 <= 3s", "unknown statistic 'p100'"),
        ("mtbf <= 3s", "unknown metric 'mtbf'"),
        ("mttr <> 3s", "write 'metric[.stat] <op> value'"),
        ("mttr <= ", "value is missing"),
        ("mttr <= 3 parsecs", "not a time"),
        ("change_failure_rate.p90 <= 0.1", "takes no statistic"),
        ("change_failure_rate <= 5", "fraction between 0 and 1"),
        ("failed_requests.mean <= 5s", "takes no unit 's'"),
        ("failed_requests.mean <= -5", "cannot be negative"),
        ("failed_requests.mean <= 1e999", "not a finite number"),
        ("", "write 'metric[.stat] <op> value'"),
    ],
    ids=[
        "unknown-stat", "unknown-metric", "bad-operator", "no-value", "bad-unit",
        "stat-on-a-rate", "rate-above-one", "unit-on-a-count", "negative", "infinite",
        "empty",
    ],
)
def test_bad_assertions_name_the_expression(text, fragment):
    """A malformed expectation is rejected with a message quoting it."""
    with pytest.raises(ValueError) as info:
        parse_assertion(text)
    assert repr(text) in str(info.value)
    assert fragment in str(info.value)


EXPECTATION_FORMS = [
    ("bare-string-is-for-all", "- mttr.p90 <= 5m", ["all"]),
    ("one-name", "- {for: canary, assert: mttr.p90 <= 5m}", ["canary"]),
    ("a-list", "- {for: [canary, rolling], assert: mttr.p90 <= 5m}", ["canary", "rolling"]),
    ("for-defaults-to-all", "- {assert: mttr.p90 <= 5m}", ["all"]),
]


@pytest.mark.parametrize(("entry", "names"), [row[1:] for row in EXPECTATION_FORMS],
                         ids=[row[0] for row in EXPECTATION_FORMS])
def test_expectation_forms(entry, names):
    """An expectation is a bare expression (for every strategy) or a mapping whose `for`
    is a strategy name, a list of names, or `all` (the default)."""
    (expectation,) = _load(f"name: x\nexpect:\n  {entry}\n").expect
    assert expectation.for_ == names
    assert expectation.assertion.text == "mttr.p90 <= 5m"
    assert expectation.applies_to("blue-green") is ("all" in names)
    assert expectation.applies_to("canary") is ("all" in names or "canary" in names)


def test_scenarios_run_the_bundled_strategies_unless_they_name_others():
    """A scenario without `strategies:` is run with the three bundled ones; it may name
    bundled strategies and strategy files (paths ending in .yaml)."""
    assert _load("name: x\n").strategies == ["blue-green", "canary", "rolling"]
    assert _load("name: x\nstrategies: [canary, mine/slow.yaml]\n").strategies == ["canary", "mine/slow.yaml"]


def test_library_scenarios_are_found_by_name():
    """bundled_scenario finds the library's scenarios by name too."""
    assert bundled_scenario("good-release").parent.name == "library"


def test_metric_and_stat_tables_match_the_documented_names():
    """The known metrics and statistics are the ones the scenario docs promise."""
    assert set(METRICS) == {
        "change_failure_rate", "false_rollback_rate", "mttr", "failed_requests", "release_failed_requests",
        "failed_request_fraction", "detected_within", "rollout_duration", "cost",
        "users_affected", "duplicated_writes", "blast_radius",
    }
    assert set(STATS) == {"mean", "median", "p50", "p90", "p95", "p99", "max"}


# --- bad scenarios --------------------------------------------------------------------------

BAD = [
    ("unknown-field", "name: x\ntrafic:\n  rps: 5\n", "trafic", 2, "Extra inputs"),
    ("unknown-nested-field", "name: x\nservices:\n  - name: a\n    replica: 3\n",
     "services[0].replica", 4, "Extra inputs"),
    ("negative-rps", "name: x\ntraffic:\n  rps: -5\n", "traffic.rps", 3, "greater than 0"),
    ("boolean-rps", "name: x\ntraffic:\n  rps: yes\n", "traffic.rps", 3, "expected a number"),
    ("unknown-service-in-dependency",
     "name: x\nservices: [{name: a}, {name: b}]\ndependencies:\n  - caller: a\n    callee: db\n",
     "dependencies[0].callee", 5, "unknown service 'db'"),
    ("self-dependency",
     "name: x\nservices: [{name: a}]\ndependencies:\n  - {caller: a, callee: a}\n",
     "dependencies[0].callee", 4, "cannot call itself"),
    ("bad-expectation", "name: x\nexpect:\n  - assert: mttr.p100 <= 3s\n",
     "expect[0].assert", 3, "'mttr.p100 <= 3s'"),
    ("expectation-not-a-string", "name: x\nexpect:\n  - assert: 5\n",
     "expect[0].assert", 3, "is a string like"),
    ("bad-expectation-shorthand", "name: x\nexpect:\n  - mtbf <= 5m\n",
     "expect[0]", 3, "unknown metric 'mtbf'"),
    ("bad-expectation-unit", "name: x\nexpect:\n  - {for: canary, assert: mttr.p90 <= 5 parsecs}\n",
     "expect[0].assert", 3, "is not a time"),
    ("expectation-for-nobody", "name: x\nexpect:\n  - {for: [], assert: mttr <= 5m}\n",
     "expect[0].for", 3, "at least 1 item"),
    ("expectation-for-a-number", "name: x\nexpect:\n  - {for: 5, assert: mttr <= 5m}\n",
     "expect[0].for", 3, "a strategy name or a list of names"),
    ("unknown-bundled-strategy", "name: x\nstrategies: [canray]\n",
     "strategies[0]", 2, "no bundled strategy 'canray'"),
    ("strategy-listed-twice", "name: x\nstrategies:\n  - canary\n  - canary\n",
     "strategies[1]", 4, "listed twice"),
    ("no-strategies", "name: x\nstrategies: []\n", "strategies", 2, "at least 1 item"),
    ("probability-above-one", "name: x\nrelease:\n  defect_probability: 1.5\n",
     "release.defect_probability", 3, "less than or equal to 1"),
    ("percent-probability-above-100", "name: x\nrelease:\n  defect_probability: 150%\n",
     "release.defect_probability", 3, "less than or equal to 1"),
    ("bad-duration", "name: x\nduration: 30 minutes\n", "duration", 2, "not a duration"),
    ("quoted-base-60-duration", "name: x\nduration: '1:30:00'\n", "duration", 2,
     "not a duration"),
    ("zero-duration", "name: x\nduration: 0\n", "duration", 2, "greater than 0"),
    ("no-services", "name: x\nservices: []\n", "services", 2, "at least 1 item"),
    ("duplicate-service", "name: x\nservices:\n  - name: a\n  - name: a\n",
     "services[1].name", 4, "used twice"),
    ("two-services-under-test",
     "name: x\nservices:\n  - {name: a, under_test: true}\n  - {name: b, under_test: true}\n",
     "services[1].under_test", 4, "only one service"),
    ("service-name-not-dns", "name: x\nservices:\n  - name: Web_1\n",
     "services[0].name", 3, "Kubernetes DNS label"),
    ("p99-below-median",
     "name: x\nservices:\n  - name: a\n    latency: {median_ms: 100, p99_ms: 50}\n",
     "services[0].latency.p99_ms", 4, "must be above median_ms"),
    ("fewer-nodes-than-zones", "name: x\nservices:\n  - name: a\n    nodes: 2\n",
     "services[0].nodes", 4, "every zone needs at least one node"),
    ("uniform-high-below-low",
     "name: x\nservices:\n  - name: a\n    pod_timing:\n      start_delay:\n"
     "        kind: uniform\n        low: 10s\n        high: 5s\n",
     "services[0].pod_timing.start_delay.high", 8, "below low"),
    ("lognormal-without-spread",
     "name: x\nresponse:\n  response_time:\n    kind: lognormal\n    median: 10m\n",
     "response.response_time", 3, "exactly one of p90, p99 or sigma"),
    ("lognormal-two-spreads",
     "name: x\nresponse:\n  response_time:\n    kind: lognormal\n    median: 10m\n"
     "    p90: 20m\n    sigma: 1\n",
     "response.response_time.sigma", 7, "exactly one of"),
    ("unknown-distribution-kind",
     "name: x\nresponse:\n  rollback_duration:\n    kind: gamma\n",
     "response.rollback_duration.kind", 4, "expected tags"),
    ("unknown-traffic-profile", "name: x\ntraffic:\n  profile: spiky\n",
     "traffic.profile", 3, "'constant', 'diurnal', 'spikes'"),
    ("diurnal-amplitude-above-one",
     "name: x\ntraffic:\n  profile:\n    kind: diurnal\n    amplitude: 2\n",
     "traffic.profile.amplitude", 5, "less than or equal to 1"),
    ("spike-after-the-end",
     "name: x\ntraffic:\n  profile:\n    kind: spikes\n    spikes:\n      - at: 40m\n",
     "traffic.profile.spikes[0].at", 6, "after the end of the simulated window"),
    ("unknown-defect-kind", "name: x\nrelease:\n  defects:\n    - kind: gremlins\n",
     "release.defects[0].kind", 4, "expected tags"),
    ("backoff-cap-below-base",
     "name: x\nrelease:\n  defects:\n    - kind: crash_on_start\n      backoff_cap: 1s\n",
     "release.defects[0].backoff_cap", 5, "below backoff_base"),
    ("latency-defect-without-effect",
     "name: x\nrelease:\n  defects:\n    - {kind: latency, multiplier: 1}\n",
     "release.defects[0].multiplier", 4, "multiplier > 1 or added_ms > 0"),
    ("probability-without-defects", "name: x\nrelease:\n  defects: []\n",
     "release.defects", 3, "no defect kinds"),
    ("migration-defect-without-migration",
     "name: x\nrelease:\n  defects: [incompatible_migration]\n",
     "release.defects[0]", 3, "needs a 'migration' section"),
    ("fault-after-the-end", "name: x\nfaults:\n  - kind: pod_kill\n    at: 2h\n",
     "faults[0].at", 4, "2h is after the end"),
    ("fault-unknown-zone", "name: x\nfaults:\n  - {kind: zone_outage, at: 1m, zone: d}\n",
     "faults[0].zone", 3, "no service runs in zone 'd'"),
    ("fault-unknown-service",
     "name: x\nfaults:\n  - kind: dependency_failure\n    at: 1m\n    service: db\n",
     "faults[0].service", 5, "unknown service 'db'"),
    ("fault-too-many-nodes", "name: x\nfaults:\n  - {kind: node_loss, at: 1m, count: 4}\n",
     "faults[0].count", 3, "runs on 3"),
    ("fault-without-time", "name: x\nfaults:\n  - kind: pod_kill\n",
     "faults[0].at", 3, "Field required"),
    ("fault-bad-version", "name: x\nfaults:\n  - {kind: pod_kill, at: 0, version: blue}\n",
     "faults[0].version", 3, "'stable', 'canary' or 'any'"),
    ("migration-bad-time",
     "name: x\nmigration:\n  steps:\n    - name: add\n      kind: expand\n      at: soon\n",
     "migration.steps[0].at", 6, "not a migration time"),
    ("migration-duplicate-step",
     "name: x\nmigration:\n  steps:\n    - {name: a, kind: expand}\n"
     "    - {name: a, kind: contract}\n",
     "migration.steps[1].name", 5, "used twice"),
    ("migration-empty-range",
     "name: x\nmigration:\n  compatibility:\n    old: {min_schema: 3, max_schema: 2}\n",
     "migration.compatibility.old.max_schema", 4, "no schema version would work"),
    ("migration-unreachable-schema",
     "name: x\nmigration:\n  steps: [{name: a, kind: expand}]\nrelease:\n  defects:\n"
     "    - {kind: incompatible_migration, required_schema: 7}\n",
     "release.defects[0].required_schema", 6, "never reached"),
    ("alert-threshold-above-one",
     "name: x\nmonitoring:\n  alerts:\n    - name: a\n      metric: error_rate\n"
     "      threshold: 5\n",
     "monitoring.alerts[0].threshold", 6, "write 0.02 or '2%'"),
    ("alert-threshold-unit",
     "name: x\nmonitoring:\n  alerts:\n    - name: a\n      metric: error_rate\n"
     "      threshold: 5ms\n",
     "monitoring.alerts[0].threshold", 6, "not a error_rate threshold"),
    ("alert-unknown-metric",
     "name: x\nmonitoring:\n  alerts:\n    - {name: a, metric: cpu, threshold: 1}\n",
     "monitoring.alerts[0].metric", 4, "'error_rate' or 'latency_p99'"),
    ("alert-unknown-service",
     "name: x\nmonitoring:\n  alerts:\n    - {name: a, metric: error_rate, threshold: 1%,"
     " service: db}\n",
     "monitoring.alerts[0].service", 4, "unknown service 'db'"),
    ("alert-duplicate-name",
     "name: x\nmonitoring:\n  alerts:\n    - {name: a, metric: error_rate, threshold: 1%}\n"
     "    - {name: a, metric: latency_p99, threshold: 1s}\n",
     "monitoring.alerts[1].name", 5, "defined twice"),
    ("history-zero-deploys", "name: x\nhistory:\n  deploys_per_day: 0\n",
     "history.deploys_per_day", 3, "greater than 0"),
    ("missing-name", "description: no name\n", "name", 1, "Field required"),
    ("not-a-mapping", "- name: x\n", None, 1, "valid dictionary"),
]


@pytest.mark.parametrize(
    ("text", "field", "line", "fragment"),
    [row[1:] for row in BAD],
    ids=[row[0] for row in BAD],
)
def test_bad_scenarios_name_field_and_line(text, field, line, fragment):
    """Each mistake is an InputError at the right field path and line, in user terms."""
    with pytest.raises(InputError) as info:
        _load(text)
    assert (info.value.field, info.value.line) == (field, line)
    assert fragment in info.value.message
    assert str(info.value).startswith(f"s.yaml:{line}: ")


def test_alert_thresholds_take_units():
    """Alert thresholds read "2%" as a fraction and "1s" as 1000 ms for latency."""
    scenario = _load(
        """\
        name: x
        monitoring:
          alerts:
            - {name: errors, metric: error_rate, threshold: 2%, for: 2m}
            - {name: slow, metric: latency_p99, threshold: 1s}
            - {name: slower, metric: latency_p99, threshold: 1500}
        """
    )
    assert [a.threshold for a in scenario.monitoring.alerts] == [0.02, 1000, 1500]
    assert scenario.monitoring.alerts[0].for_ == 120


def test_load_scenario_reports_the_file(tmp_path):
    """load_scenario names the file the user gave in its errors."""
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\ntraffic:\n  rps: 0\n")
    with pytest.raises(InputError) as info:
        load_scenario(path)
    assert str(info.value) == f"{path}:3: traffic.rps: Input should be greater than 0"


# --- the schema package -------------------------------------------------------------------

SCHEMA_MODULES = ("fields", "distributions", "service", "traffic", "defects", "faults", "migrations",
                  "monitoring", "expectations", "scenario")


@pytest.mark.parametrize("module", SCHEMA_MODULES, ids=SCHEMA_MODULES)
def test_schema_is_a_package_of_modules_a_reader_can_hold(module):
    """The schema is one module per section, none over 600 lines."""
    path = BUNDLED_SCENARIOS_DIR / "schema" / f"{module}.py"
    assert len(path.read_text().splitlines()) <= 600


def test_schema_package_exports_every_public_name():
    """Every name the schema lists is importable from the package itself."""
    import rolloutlab.scenarios.schema as schema

    assert {"Scenario", "ServiceLevelObjective", "load_scenario", "BUNDLED_SCENARIOS_DIR"} <= set(schema.__all__)
    assert [name for name in schema.__all__ if not hasattr(schema, name)] == []
    assert (schema.BUNDLED_SCENARIOS_DIR / "standard.yaml").is_file()


# --- the service level objective --------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "objective", "window"),
    [("{objective: 0.999, window: 30d}", 0.999, 30 * 86400), ("{objective: 99.9%}", 0.999, 30 * 86400),
     ("{objective: '99.95%', window: 7d}", 0.9995, 7 * 86400), ("{objective: 0.5, window: 1h}", 0.5, 3600)],
    ids=["fraction-and-window", "percent-default-window", "quoted-percent-a-week", "one-hour-window"],
)
def test_slo_reads_objective_and_window(written, objective, window):
    """`slo:` holds the objective as a fraction (``99.9%`` is 0.999) and the window in
    seconds (default 30 days)."""
    slo = _load(f"name: x\nslo: {written}\n").slo
    assert (slo.objective, slo.window) == (objective, window)


def test_slo_is_none_when_absent_and_error_budget_is_exact():
    """A scenario without `slo:` has none; 99.9% leaves an error budget of exactly 0.001."""
    assert _load("name: x\n").slo is None
    assert _load("name: x\nslo: {objective: 99.9%}\n").slo.error_budget == 0.001


def test_standard_scenario_promises_three_nines_over_30_days():
    """standard.yaml states its SLO: 99.9% of requests over 30 days."""
    slo = _load(STANDARD_TEXT).slo
    assert (slo.objective, slo.window) == (0.999, 30 * 86400)


# --- bounds: every number within what can make sense --------------------------------------------

TWO_SERVICES = "name: x\nservices: [{name: a}, {name: b}]\n"

BOUNDS = [
    ("capacity-1e-320", "name: x\nservices:\n  - name: a\n    capacity_rps: 1e-320\n",
     "services[0].capacity_rps", 4, "below 0.001"),
    ("rps-1e17", "name: x\ntraffic:\n  rps: 1e17\n", "traffic.rps", 3, "above 1e+06"),
    ("duration-1e20-seconds", "name: x\nduration: 1e20\n", "duration", 2, "a year"),
    ("duration-in-days-beyond-a-year", "name: x\nduration: 1000d\n", "duration", 2, "a year"),
    ("window-beyond-a-week", "name: x\nduration: 8d\n", "duration", 2, "above 7d"),
    ("fault-delay-beyond-a-year", "name: x\nfaults:\n  - {kind: node_loss, at: 0, eviction_delay: 1e20}\n",
     "faults[0].eviction_delay", 3, "a year"),
    ("negative-phase-beyond-a-year", "name: x\ntraffic:\n  profile: {kind: diurnal, phase: -1e9}\n",
     "traffic.profile.phase", 3, "below"),
    ("pod-start-of-a-century", "name: x\nservices:\n  - name: a\n    pod_timing: {start_delay: 36500d}\n",
     "services[0].pod_timing.start_delay", 4, "a year"),
    ("octal-replicas", "name: x\nservices:\n  - name: a\n    replicas: 010\n",
     "services[0].replicas", 4, "octal number 8: write 10"),
    ("replicas-a-million", "name: x\nservices:\n  - name: a\n    replicas: 1000000\n",
     "services[0].replicas", 4, "less than or equal to 1000"),
    ("nodes-beyond-a-cluster", "name: x\nservices:\n  - name: a\n    nodes: 9000\n",
     "services[0].nodes", 4, "less than or equal to 1000"),
    ("latency-of-a-day", "name: x\nservices:\n  - name: a\n    latency: {median_ms: 1e8, p99_ms: 2e8}\n",
     "services[0].latency.median_ms", 4, "above 3.6e+06 ms"),
    ("probe-every-millisecond", "name: x\nservices:\n  - name: a\n    pod_timing: {readiness: {period: 1ms}}\n",
     "services[0].pod_timing.readiness.period", 4, "at most once a second"),
    ("scrape-every-tenth-second", "name: x\nmonitoring:\n  scrape_interval: 100ms\n",
     "monitoring.scrape_interval", 3, "below 1s"),
    ("spike-a-million-fold", "name: x\ntraffic:\n  profile: {kind: spikes, spikes: [{at: 60, multiplier: 1e6}]}\n",
     "traffic.profile.spikes[0].multiplier", 3, "above 1000"),
    ("calls-per-request-1e9", TWO_SERVICES + "dependencies:\n  - {caller: a, callee: b, calls_per_request: 1e9}\n",
     "dependencies[0].calls_per_request", 4, "above 1000"),
    ("defect-weight-1e-9", "name: x\nrelease:\n  defects: [{kind: error_rate, weight: 1e-9}]\n",
     "release.defects[0].weight", 3, "below 1e-06"),
    ("leak-beyond-certain-failure", "name: x\nrelease:\n  defects: [{kind: leak, error_rate_per_minute: 5}]\n",
     "release.defects[0].error_rate_per_minute", 3, "less than or equal to 1"),
    ("lognormal-sigma-50", "name: x\nresponse:\n  response_time: {kind: lognormal, median: 10m, sigma: 50}\n",
     "response.response_time.sigma", 3, "less than or equal to 5"),
    ("lognormal-tail-a-million-times-the-median",
     "name: x\nresponse:\n  response_time: {kind: lognormal, median: 1ms, p90: 300d}\n",
     "response.response_time.p90", 3, "sigma"),
    ("latency-alert-of-a-year",
     "name: x\nmonitoring:\n  alerts:\n    - {name: slow, metric: latency_p99, threshold: 1e12}\n",
     "monitoring.alerts[0].threshold", 4, "above an hour"),
    ("seed-beyond-64-bits", "name: x\nseed: 18446744073709551617\n", "seed", 2, "less than or equal to"),
    ("history-of-a-millennium", "name: x\nhistory: {days: 365000}\n", "history.days", 2, "less than or equal to 3650"),
    ("schema-version-1e12", "name: x\nmigration: {initial_schema: 1000000000000}\n",
     "migration.initial_schema", 2, "less than or equal to 1000000"),
    ("pod-kill-count-1e9", "name: x\nfaults:\n  - {kind: pod_kill, at: 60, count: 1000000000}\n",
     "faults[0].count", 3, "less than or equal to 1000"),
    ("chain-of-calls-beyond-a-million-rps",
     "name: x\nservices: [{name: a}, {name: b}, {name: c}]\ntraffic: {rps: 10000}\ndependencies:\n"
     "  - {caller: a, callee: b, calls_per_request: 20}\n  - {caller: b, callee: c, calls_per_request: 20}\n",
     "traffic.rps", 3, "service 'c' would receive up to 4e+06 requests per second"),
    ("overlapping-spikes-multiply-beyond-a-million-rps",
     "name: x\ntraffic:\n  rps: 20000\n  profile: {kind: spikes, spikes: [{at: 60, duration: 120, multiplier: 10},"
     " {at: 100, multiplier: 10}]}\n", "traffic.rps", 3, "2e+06 requests per second"),
    ("calls-in-a-circle", "name: x\nservices: [{name: a}, {name: b}, {name: c}]\ndependencies:\n"
     "  - {caller: a, callee: b}\n  - {caller: b, callee: c}\n  - {caller: c, callee: b}\n",
     "dependencies[2]", 6, "circle (b -> c -> b)"),
    ("alert-for-longer-than-the-window",
     "name: x\nduration: 30m\nmonitoring:\n  alerts:\n    - name: slow-burn\n      metric: error_rate\n"
     "      threshold: 1%\n      for: 2h\n", "monitoring.alerts[0].for", 8, "can never fire"),
    ("slo-objective-of-one", "name: x\nslo: {objective: 1}\n", "slo.objective", 2, "less than 1"),
    ("slo-objective-100-percent", "name: x\nslo:\n  objective: 100%\n", "slo.objective", 3, "less than 1"),
    ("slo-objective-zero", "name: x\nslo: {objective: 0}\n", "slo.objective", 2, "greater than 0"),
    ("slo-objective-yes", "name: x\nslo: {objective: yes}\n", "slo.objective", 2, "expected a number"),
    ("slo-objective-missing", "name: x\nslo: {window: 30d}\n", "slo.objective", 2, "Field required"),
    ("slo-window-shorter-than-the-scenario", "name: x\nduration: 2h\nslo:\n  objective: 99%\n  window: 1h\n",
     "slo.window", 5, "shorter than the simulated window"),
]


@pytest.mark.parametrize(
    ("text", "field", "line", "fragment"),
    [row[1:] for row in BOUNDS],
    ids=[row[0] for row in BOUNDS],
)
def test_numbers_beyond_what_makes_sense_are_errors(text, field, line, fragment):
    """A number no world has (1e17 rps, 1e-320 rps of capacity, a 10^20 s window, an
    alert that cannot fire in the window) is an InputError at its field and line."""
    with pytest.raises(InputError) as info:
        _load(text)
    assert (info.value.field, info.value.line) == (field, line), str(info.value)
    assert fragment in info.value.message


@pytest.mark.parametrize(
    "text",
    ["name: x\nduration: 1m\n",  # the default alert (5 minutes) is not the user's mistake
     "name: x\nduration: 30m\nmonitoring:\n  alerts: [{name: a, metric: error_rate, threshold: 1%, for: 29m}]\n",
     "name: x\ntraffic:\n  rps: 1000000\n",
     "name: x\ntraffic:\n  rps: 0.001\n  preview_rps: 0\n",
     "name: x\nduration: 7d\n",
     "name: x\nservices:\n  - name: a\n    replicas: 1000\n    nodes: 1000\n    capacity_rps: 0.001\n",
     "name: x\nservices:\n  - name: a\n    capacity_rps: 010.5\n",
     "name: x\nduration: 1:30:00\n"],
    ids=["default-alert-in-a-short-window", "alert-for-just-inside-the-window", "a-million-rps",
         "one-request-in-17-minutes", "a-week-long-window", "largest-service", "float-with-leading-zero",
         "base-60-duration"],
)
def test_numbers_at_the_edge_of_sense_load(text):
    """Values at the bounds, and the spellings YAML reads as written, are accepted."""
    assert _load(text).name == "x"


# --- fuzzing --------------------------------------------------------------------------------

JUNK = st.one_of(
    st.sampled_from(
        ["", "-1", "0", "yes", "no", "~", "1.5", "150%", "1e999", ".nan", "[", "{", "&a",
         "*a", "2001-13-45", "010", "1:30", "'", "- x", "30 minutes", "1h30m", "-5m",
         "kind: lognormal", "kind: bogus", "{kind: fixed, value: -1}", "mttr.p100 <= 3s",
         "[a, a]", "web", "db", "name: web", "under_test: true", "at: 2h", "x: &a [*a]"]
    ),
    st.text(max_size=15),
)


@st.composite
def mutated_standard(draw) -> str:
    """standard.yaml with one to four random line edits."""
    return draw(mutated_lines(STANDARD_TEXT, JUNK, max_edits=4, max_indent=8))


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=mutated_standard())
def test_fuzz_mutated_standard_raises_only_input_error(tmp_path, text):
    """Loading a damaged copy of standard.yaml either works or raises InputError."""
    path = tmp_path / "mutated.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        scenario = load_scenario(path)
    except InputError as error:
        assert error.file == str(path)
        assert error.line is None or error.line >= 1
    else:
        assert scenario.service_under_test.replicas >= 1
