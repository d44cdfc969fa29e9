"""live/prometheus.py against a real Prometheus: the generated configuration, file-based
discovery of targets that come and go, serving recorded history written by promtool, and
the clear errors of the HTTP API."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from rolloutlab.errors import BadInput, PrometheusQueryError, PrometheusUnreachable
from rolloutlab.live.haproxy import free_port
from rolloutlab.live.prometheus import PrometheusClient, PrometheusServer, create_blocks, require_series
from tests.outside_systems import needs_prometheus

pytestmark = needs_prometheus


def _wait(predicate, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_file_discovery_follows_targets_that_come_and_go():
    """A target written to the job's file is scraped, with its labels; emptied, it goes."""
    with PrometheusServer(jobs=("demo",), scrape_interval=0.25) as server:
        address = server.url.removeprefix("http://")  # Prometheus scrapes its own /metrics
        server.write_targets("demo", [(address, {"version": "v2", "pod": "p1"})])
        assert _wait(lambda: server.client.query('up{job="demo", version="v2", pod="p1"} == 1'), 20)
        server.write_targets("demo", [])
        assert _wait(lambda: not server.active_targets(), 20)
        assert server.config()["global"]["scrape_interval"] == "250ms"
    assert not server.running


def test_recorded_history_is_served_and_queried_at_its_own_times(tmp_path: Path):
    """History written by promtool from OpenMetrics comes back from instant and range queries
    at the recorded times: 5 requests a second, so rate() over a minute is 5 and the counter
    at t0+300 s is 1500."""
    t0 = int(time.time()) - 3 * 3600  # older than the head block: promtool writes it as blocks
    lines = ["# HELP demo_requests_total Requests.", "# TYPE demo_requests_total counter"]
    lines += [f'demo_requests_total{{version="v1"}} {5 * s} {t0 + s}' for s in range(0, 601, 10)]
    (tmp_path / "history.om").write_text("\n".join(lines + ["# EOF"]) + "\n")
    create_blocks(tmp_path / "history.om", tmp_path / "tsdb")
    with PrometheusServer(storage=tmp_path / "tsdb") as server:
        client = server.client
        assert client.value("sum(demo_requests_total)", at=t0 + 300) == 1500.0
        series = client.query_range("sum(rate(demo_requests_total[1m]))", t0 + 60, t0 + 600, 60)
        assert len(series) == 1 and list(series[0].values) == [5.0] * 10
        assert list(series[0].times) == [float(t0 + 60 * k) for k in range(1, 11)]
        assert client.query("demo_requests_total", at=t0 - 3600) == []  # before the history: no series
        with pytest.raises(PrometheusQueryError, match="answered 2 series"):
            client.value('label_replace(demo_requests_total, "x", "a", "", "") or '
                         'label_replace(demo_requests_total, "x", "b", "", "")', at=t0 + 300)
    assert (tmp_path / "tsdb").is_dir()  # a storage given by the caller is kept


def test_clear_errors_for_bad_queries_and_unreachable_servers(tmp_path: Path):
    with PrometheusServer() as server:
        with pytest.raises(PrometheusQueryError, match="rejected the query 'sum\\(rate\\(x\\[1m\\]\\)': bad_data"):
            server.client.query("sum(rate(x[1m])")
        with pytest.raises(PrometheusQueryError, match="range selector needs a function"):
            server.client.query("up[1m]")
        with pytest.raises(PrometheusQueryError, match="empty or backwards"):
            server.client.query_range("up", 10.0, 5.0, 1.0)
    with pytest.raises(PrometheusUnreachable, match="is not reachable"):
        PrometheusClient(f"http://127.0.0.1:{free_port()}", timeout=2.0).query("up")
    with pytest.raises(PrometheusQueryError, match="returned no series in the replayed range"):
        require_series("up", [], "in the replayed range")
    bad = tmp_path / "bad.om"
    bad.write_text("this is not openmetrics\n")
    with pytest.raises(BadInput, match="promtool could not read"):
        create_blocks(bad, tmp_path / "tsdb")
