"""``rolloutlab replay`` against a real Prometheus serving a known history.

The history is written here as OpenMetrics text, turned into TSDB blocks by promtool and
served by a real Prometheus (live/prometheus.py), never a mocked HTTP answer. Every
counter moves by a fixed amount per 15 s sample, so each expected decision can be worked
out by hand from the numbers below, independently of the replay's code:

- the stable version ``v1`` runs from T0 - 10 min: +400 requests and +2 errors per sample
  (0.5% errors), all along;
- the canary ``v2`` is released at T0: +200 requests per sample, +1 error (0.5%) for the
  samples up to and including T0 + 150 s, then, in the bad release, +20 errors (10%) per
  sample from T0 + 165 s on (the good release keeps +1).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest

from rolloutlab.live.prometheus import PrometheusServer, create_blocks
from rolloutlab.strategies.files import load_strategy
from rolloutlab.strategies.importers import import_manifest
from rolloutlab.workflows.replay import ReplaySettings, run_replay, write_replay
from rolloutlab.workflows.replay.files import parse_time, read_history_file
from rolloutlab.workflows.replay.recorded import compute_reset_corrected
from rolloutlab.workflows.replay.selection import SeriesSelection, parse_selector
from tests.outside_systems import needs_prometheus

SAMPLE = 15  # seconds between samples, as a 15 s scrape interval records them
T0 = (int(time.time()) // 3600) * 3600 - 4 * 3600  # a whole hour, in the past: promtool writes old blocks
STABLE_FROM = T0 - 600
END = T0 + 30 * 60
BAD_FROM = T0 + 165  # the first sample with 10% errors

ARGO_WITH_QUERY = """\
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: demo}
spec:
  replicas: 10
  selector: {matchLabels: {app: demo}}
  template:
    metadata: {labels: {app: demo}}
    spec: {containers: [{name: demo, image: demo:v2}]}
  strategy:
    canary:
      analysis:
        templates: [{templateName: error-rate}]
      steps:
      - setWeight: 20
      - pause: {duration: 10m}
---
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: error-rate}
spec:
  metrics:
  - name: error-rate
    interval: 1m
    successCondition: result[0] <= 0.03
    failureLimit: 0
    provider:
      prometheus:
        address: http://prometheus.example.com:9090
        query: |
          sum(rate(demo_requests_total{version="v2",code=~"5.."}[1m]))
          /
          sum(rate(demo_requests_total{version="v2"}[1m]))
"""


def write_history(path: Path, bad: bool) -> Path:
    """The known history (module docstring) as OpenMetrics text, one series per version and code."""
    series: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for version, first, ok_step, error_step in (("v1", STABLE_FROM, 398, 2), ("v2", T0, 199, 1)):
        ok = errors = 0
        for t in range(first, END + 1, SAMPLE):
            if t > first:
                failing = 20 if bad and version == "v2" and t >= BAD_FROM else error_step
                errors += failing
                ok += ok_step + error_step - failing  # requests per sample stay 400 / 200
            series.setdefault((version, "200"), []).append((t, ok))
            series.setdefault((version, "500"), []).append((t, errors))
    lines = ["# HELP demo_requests Requests answered, by version and status code.", "# TYPE demo_requests counter"]
    for (version, code), samples in series.items():
        lines += [f'demo_requests_total{{version="{version}",code="{code}"}} {v} {t}' for t, v in samples]
    lines.append("# EOF")
    path.write_text("\n".join(lines) + "\n")
    return path


def write_csv(path: Path, bad: bool) -> Path:
    """The same history as the CSV replay reads: cumulative requests and errors per version."""
    rows = ["time,version,requests,errors"]
    for version, first, per_sample in (("v1", STABLE_FROM, 400), ("v2", T0, 200)):
        errors = 0
        for k, t in enumerate(range(first, END + 1, SAMPLE)):
            if t > first:
                errors += 20 if bad and version == "v2" and t >= BAD_FROM else (2 if version == "v1" else 1)
            rows.append(f"{t},{version},{k * per_sample},{errors}")
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """Two real Prometheus servers, one per release (bad, good), each serving its history."""
    servers = {}
    root = tmp_path_factory.mktemp("replay")
    try:
        for kind in ("bad", "good"):
            text = write_history(root / f"{kind}.om", bad=kind == "bad")
            create_blocks(text, root / f"tsdb-{kind}")
            servers[kind] = PrometheusServer(storage=root / f"tsdb-{kind}").start()
        yield root, servers
    finally:
        for server in servers.values():
            server.close()


def from_server(server: PrometheusServer, **extra) -> ReplaySettings:
    return ReplaySettings(prometheus=server.url, start=str(T0), end=str(END), **extra)


def argo_spec(tmp_path: Path):
    manifest = tmp_path / "rollout.yaml"
    manifest.write_text(ARGO_WITH_QUERY)
    return import_manifest(manifest).spec


@needs_prometheus
def test_bundled_canary_aborts_when_its_own_analysis_would_have(recorded):
    """The bundled canary, replayed over the bad release, aborts at T0 + 210 s.

    By hand: its background analysis starts at step 1 (startingStep: 1), reached at T0 since
    pods start at once in a replay; it opens its window at T0 and measures every 30 s the
    error rate since the previous measurement, passing while it is below 2%. The window
    ending at T0 + 150 s holds only good samples (0.5%: passes). The window (T0 + 150,
    T0 + 180] holds the samples at 165 and 180: 40 errors in 400 requests = 10%, the first
    failure; (180, 210] again 10%, the second. failureLimit 1 allows one failure, so the
    second, at T0 + 210 s, fails the analysis and aborts the rollout then."""
    _, servers = recorded
    result = run_replay(load_strategy("canary"), from_server(servers["bad"]))
    assert result.outcome == "aborted"
    assert result.outcome_at == T0 + 210
    assert result.abort_cause == "AnalysisFailed"
    failed = [m for m in result.measurements if m.phase == "Failed"]
    assert [m.at - T0 for m in failed] == [180, 210]
    assert failed[0].value == pytest.approx(0.10)
    assert all(m.value == pytest.approx(0.005) for m in result.measurements if m.at - T0 <= 150)
    # Failures on the strategy's split, by hand: 600 requests per 15 s sample (400 stable,
    # 200 canary). The canary's share is its share of pods (no traffic router): 1 of 10 at
    # setWeight 10 until T0 + 120 s, then 3 of 11 at setWeight 25 (ceil(25% of 10) canary
    # pods, the stable at 8 within maxSurge 25% / maxUnavailable 0). The 10 intervals up to
    # T0 + 150 s fail 0.5% on both versions: 10 * 600 * 0.005 = 30; the 4 from T0 + 150 s
    # to the abort send 3/11 of 600 to a canary at 10% and 8/11 to the stable at 0.5%.
    f = result.failures
    assert f.requests == 14 * 600
    assert f.failed == pytest.approx(30 + 4 * 600 * (3 / 11 * 0.10 + 8 / 11 * 0.005))
    assert f.baseline_failed == pytest.approx(14 * 600 * 0.005)
    assert f.recorded_failed == 10 * 3 + 4 * (2 + 20)  # what the recording itself failed: 3, then 22 per sample


@needs_prometheus
def test_imported_argo_manifest_with_a_promql_query_aborts_at_its_interval(recorded, tmp_path):
    """An Argo Rollout whose AnalysisTemplate holds a PromQL error-rate query aborts at T0 + 180 s.

    By hand: the analysis runs from step 0 (no startingStep), measuring every 1 m; the window
    (T0 + 120, T0 + 180] holds the samples at 135 and 150 (+1 error each) and 165 and 180
    (+20 each): 42 errors in 800 requests = 5.25%, above 3%; failureLimit 0 aborts on that
    first failure. The windows before hold 0.5% and pass."""
    _, servers = recorded
    result = run_replay(argo_spec(tmp_path), from_server(servers["bad"]))
    assert (result.outcome, result.outcome_at) == ("aborted", T0 + 180)
    assert [(m.at - T0, m.phase) for m in result.measurements] == [(60, "Successful"), (120, "Successful"),
                                                                     (180, "Failed")]
    assert result.measurements[-1].value == pytest.approx(42 / 800)
    # measured by the template's own PromQL, answered by Prometheus as of each measurement's
    # time: rate() over [1m] at T0 + 180 s reads the samples from 120 s to 180 s (Prometheus
    # 2.x ranges hold both ends), so its increases are the same 42 errors in 800 requests
    assert [(q.at - T0, q.metric) for q in result.queries] == [(60, "error-rate"), (120, "error-rate"),
                                                               (180, "error-rate")]
    assert 'code=~"5.."' in result.queries[0].promql
    assert result.queries[-1].answer == pytest.approx(42 / 800)
    assert all("PromQL answered" in m.message for m in result.measurements)


@needs_prometheus
def test_the_same_manifest_from_a_file_is_judged_on_the_counters(recorded, tmp_path):
    """From a file the query cannot run: the counters' window decides, to the same abort, and a note says so."""
    root, _ = recorded
    result = run_replay(argo_spec(tmp_path), ReplaySettings(from_file=root / "bad.om", start=str(T0)))
    assert (result.outcome, result.outcome_at) == ("aborted", T0 + 180)
    assert not result.queries and any("judged on the recorded counters" in n for n in result.notes)


@needs_prometheus
def test_a_metric_query_without_series_exits_2(recorded, tmp_path):
    """A metric whose own query never returns a series is bad input (exit 2), not an errored release."""
    _, servers = recorded
    manifest = tmp_path / "rollout.yaml"
    manifest.write_text(ARGO_WITH_QUERY.replace("demo_requests_total", "nothing_total"))
    code, stderr, result = invoke(["replay", str(manifest), "--prometheus", servers["bad"].url, "--start", str(T0),
                                   "--end", str(END)])
    assert code == 2, result.output
    assert "returned no series at any of its" in stderr[-1] and "nothing_total" in stderr[-1], stderr


@needs_prometheus
def test_good_release_is_promoted_when_the_steps_end(recorded):
    """Over the good release the bundled canary promotes at T0 + 6 m: three 2 m pauses, every
    measurement at 0.5% (below 2%)."""
    _, servers = recorded
    result = run_replay(load_strategy("canary"), from_server(servers["good"]))
    assert (result.outcome, result.outcome_at) == ("promoted", T0 + 360)
    assert {m.phase for m in result.measurements} == {"Successful"}
    assert result.failures.failed == pytest.approx(result.failures.baseline_failed)
    assert result.failures.release_failed == pytest.approx(0.0, abs=1e-9)


@needs_prometheus
@pytest.mark.parametrize("kind", ["openmetrics", "csv"], ids=["openmetrics-file", "csv-file"])
def test_a_file_gives_the_same_replay_as_the_server(recorded, tmp_path, kind):
    """The recording read from an OpenMetrics export or a CSV replays to the same
    measurements, outcome and failures as the same history served by Prometheus."""
    root, servers = recorded
    path = root / "bad.om" if kind == "openmetrics" else write_csv(tmp_path / "bad.csv", bad=True)
    from_file = run_replay(load_strategy("canary"), ReplaySettings(from_file=path, start=str(T0), end=str(END)))
    served = run_replay(load_strategy("canary"), from_server(servers["bad"]))
    assert from_file.measurements == served.measurements
    assert (from_file.outcome, from_file.outcome_at) == (served.outcome, served.outcome_at)
    assert from_file.failures == served.failures


@needs_prometheus
def test_selectors_pick_the_versions_instead_of_the_version_label(recorded):
    """--canary-selector/--stable-selector choose the series by label matchers, with the same answer."""
    _, servers = recorded
    result = run_replay(load_strategy("canary"), from_server(
        servers["bad"], canary_selector='version="v2"', stable_selector='version=~"v1"'))
    assert (result.outcome, result.outcome_at) == ("aborted", T0 + 210)


@needs_prometheus
def test_cli_writes_the_table_json_and_report(recorded, tmp_path):
    """The command prints the abort, and --out writes replay.csv, replay.json and a report with the plot."""
    _, servers = recorded
    code, stderr, result = invoke(["replay", "canary", "--prometheus", servers["bad"].url, "--start", str(T0),
                                   "--end", str(END), "--json", "--out", str(tmp_path / "out")])
    assert code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["outcome"] == "aborted" and payload["outcome_at"]["since_start_s"] == 210
    assert json.loads((tmp_path / "out" / "replay.json").read_text()) == payload
    csv_lines = (tmp_path / "out" / "replay.csv").read_text().splitlines()
    assert len(csv_lines) == 1 + len(payload["measurements"])
    html = (tmp_path / "out" / "report.html").read_text()
    assert "data:image/png;base64," in html and "would have aborted" in html


def invoke(args):
    """The CLI in this process (typer's runner): (exit status, stderr lines, result)."""
    from typer.testing import CliRunner

    from rolloutlab import cli

    result = CliRunner().invoke(cli.app, args)
    return result.exit_code, [line for line in result.stderr.splitlines() if line.strip()], result


@needs_prometheus
@pytest.mark.parametrize("args, says", [
    (["--prometheus", "http://127.0.0.1:9", "--start", str(T0), "--end", str(END)], "not reachable"),
    (["--requests-metric", "nothing_total"], "returned no series"),
    (["--start", str(T0 - 86400), "--end", str(T0 - 86400 + 1800)], "returned no series"),
    (["--canary", "v7"], "not a recorded version"),
    (["--end", str(T0 - 60)], "is not after --start"),
    (["--step", "soon"], "--step"),
    (["--step", "1m"], "longer than metric 'error-rate'"),
], ids=["unreachable-prometheus", "query-without-series", "range-without-data", "unknown-version",
        "end-before-start", "bad-step", "step-longer-than-interval"])
def test_bad_input_exits_2_with_one_line(recorded, args, says):
    """Bad input names what is wrong on one line and exits 2, never with a traceback."""
    _, servers = recorded
    base = ["--prometheus", servers["bad"].url, "--start", str(T0), "--end", str(END)]
    given = {a for a in args if a.startswith("--")}
    merged = [*[x for i, x in enumerate(base) if not _overridden(base, i, given)], *args]
    code, stderr, result = invoke(["replay", "canary", *merged])
    assert code == 2, result.output
    assert len(stderr) == 1 and stderr[0].startswith("error:") and says in stderr[0], stderr
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)


def _overridden(base: list[str], i: int, given: set[str]) -> bool:
    option = base[i] if base[i].startswith("--") else base[i - 1]
    return option in given


@pytest.mark.parametrize("text, says", [
    ("time,version,requests\n1,v1,3\n", "lacks errors"),
    ("time,version,requests,errors\n1,v1,3,1\nsoon,v2,4,0\n", ":3: time:"),
    ("time,version,requests,errors\n1,v1,3,5\n", "5 errors in 3 requests"),
], ids=["missing-column", "bad-time", "more-errors-than-requests"])
def test_bad_csv_exits_2_naming_the_line(tmp_path, text, says):
    """A CSV that cannot be a recording is refused with its line and field."""
    path = tmp_path / "history.csv"
    path.write_text(text)
    code, stderr, result = invoke(["replay", "canary", "--from", str(path)])
    assert code == 2, result.output
    assert len(stderr) == 1 and says in stderr[0], stderr


def test_a_file_range_without_data_is_refused(tmp_path):
    """A time range that holds no sample of the recording is bad input, not an empty replay."""
    path = write_csv(tmp_path / "h.csv", bad=True)
    code, stderr, _ = invoke(["replay", "canary", "--from", str(path), "--start", str(END + 3600),
                              "--end", str(END + 7200)])
    assert code == 2 and "no samples" in stderr[0], stderr


@pytest.mark.parametrize("values, totals", [
    ([0, 5, 9, 2, 6], [0, 5, 9, 11, 15]),
    ([3, 3, 0, 0, 4], [3, 3, 3, 3, 7]),
], ids=["one-restart", "restart-to-zero"])
def test_counter_resets_count_as_prometheus_increase_does(values, totals):
    """A counter that falls restarted from 0: what it holds after the fall is new."""
    assert list(compute_reset_corrected(values)) == totals


def test_selector_matchers_parse_like_promql():
    """Matchers keep PromQL's operators; a regular expression matches the whole value."""
    matchers = parse_selector('{track="canary", pod=~"demo-.*", zone!="b"}', "--canary-selector")
    assert [m.op for m in matchers] == ["=", "=~", "!="]
    assert all(m.matches({"track": "canary", "pod": "demo-1", "zone": "a"}) for m in matchers)
    assert not matchers[1].matches({"pod": "xdemo-1"})


def test_csv_latency_buckets_are_read_onto_our_buckets(tmp_path):
    """Recorded ``le_<ms>`` buckets become per-bucket counts on rolloutlab's bounds."""
    path = tmp_path / "h.csv"
    path.write_text("time,version,requests,errors,le_100,le_1000,le_inf\n"
                    "0,v1,0,0,0,0,0\n10,v1,10,0,6,9,10\n5,v2,0,0,0,0,0\n20,v2,4,1,1,2,4\n")
    history = read_history_file(path, SeriesSelection(), None, None)
    counters = history.stable.counters_at(10)
    assert sum(counters.latency_buckets) == 10
    assert counters.latency_buckets[4] == 6  # <= 100 ms
    assert history.canary.version == "v2" and math.isinf(history.canary.first_seen) is False


def test_write_replay_outputs_from_a_file(tmp_path):
    """A replay from a CSV writes the same three files as from a server."""
    path = write_csv(tmp_path / "h.csv", bad=True)
    result = run_replay(load_strategy("canary"), ReplaySettings(from_file=path))
    assert (result.outcome, result.outcome_at) == ("aborted", T0 + 210)
    paths = write_replay(result, tmp_path / "out")
    assert {p.name for p in paths.values()} == {"replay.csv", "replay.json", "report.html"}


@pytest.mark.parametrize("name, outcome", [
    ("canary", "aborted"), ("blue-green", "aborted"), ("header-canary", "aborted"),
    ("shadow-then-canary", "aborted"), ("ab-test", "aborted"),
    ("rolling", "promoted"),  # no analysis: nothing recorded can stop it
], ids=["canary", "blue-green", "header-canary", "shadow-then-canary", "ab-test", "rolling"])
def test_every_bundled_strategy_with_versions_replays_to_its_decision(tmp_path, name, outcome):
    """Every bundled strategy that analyses versions replays the bad release to an abort at
    the failed measurement that passes its metric's failureLimit, and not one measurement later."""
    path = write_csv(tmp_path / "h.csv", bad=True)
    spec = load_strategy(name)
    result = run_replay(spec, ReplaySettings(from_file=path))
    assert result.outcome == outcome
    if outcome == "aborted":
        last = [m for m in result.measurements if m.phase == "Failed"][-1]
        limit = {m.name: m.failure_limit for t in spec.analysis_templates for m in t.metrics}[last.metric]
        same_run = [m for m in result.measurements
                    if m.phase == "Failed" and (m.analysis, m.metric) == (last.analysis, last.metric)]
        assert len(same_run) == limit + 1
        assert last.at == result.outcome_at
        assert all(m.at <= result.outcome_at for m in result.measurements)


def test_feature_flag_strategy_is_refused(tmp_path):
    """A feature flag is analysed by flag answer, which a recording by version does not hold: exit 2, said."""
    path = write_csv(tmp_path / "h.csv", bad=True)
    code, stderr, _ = invoke(["replay", "feature-flag", "--from", str(path)])
    assert code == 2 and "flag answer" in stderr[-1], stderr


@pytest.mark.parametrize("text, unix", [
    ("2026-12-01T14:00:00Z", 1796133600.0),
    ("2026-12-01T15:00:00+01:00", 1796133600.0),
    ("2026-12-01T14:00:00", 1796133600.0),
    ("1796133600", 1796133600.0),
], ids=["utc", "offset", "no-zone-is-utc", "unix"])
def test_times_read_as_iso_or_unix(text, unix):
    """--start/--end and CSV times: ISO 8601 (UTC without a zone) or Unix seconds."""
    assert parse_time(text, "--start") == unix


def test_openmetrics_histogram_written_point_by_point_is_read(tmp_path):
    """A histogram exported point by point (every bucket at one time, then the next), as
    OpenMetrics allows, gives the latency buckets per version (seconds read as ms)."""
    path = tmp_path / "h.om"
    path.write_text(
        "# TYPE demo_requests counter\n"
        'demo_requests_total{version="v1",code="200"} 0 100\n'
        'demo_requests_total{version="v1",code="200"} 10 110\n'
        'demo_requests_total{version="v2",code="500"} 0 105\n'
        'demo_requests_total{version="v2",code="500"} 1 110\n'
        "# TYPE demo_request_duration_seconds histogram\n"
        'demo_request_duration_seconds_bucket{version="v1",le="0.1"} 0 100\n'
        'demo_request_duration_seconds_bucket{version="v1",le="1.0"} 0 100\n'
        'demo_request_duration_seconds_bucket{version="v1",le="+Inf"} 0 100\n'
        'demo_request_duration_seconds_bucket{version="v1",le="0.1"} 6 110\n'
        'demo_request_duration_seconds_bucket{version="v1",le="1.0"} 9 110\n'
        'demo_request_duration_seconds_bucket{version="v1",le="+Inf"} 10 110\n'
        "# EOF\n")
    history = read_history_file(path, SeriesSelection(canary="v2"), None, None)
    stable = history.stable.counters_at(110)
    assert (stable.requests, stable.errors) == (10, 0)
    assert stable.latency_buckets[4] == 6 and stable.latency_buckets[7] == 3 and sum(stable.latency_buckets) == 10
    assert (history.canary.counters_at(110).requests, history.canary.counters_at(110).errors) == (1, 1)
