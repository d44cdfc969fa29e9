"""Analysis without Prometheus: the demo service's own /metrics, as the Kubernetes backend
reads it through the API server's pod proxy, turned into the controller's counters."""

from __future__ import annotations

import pytest

from rolloutlab.live.kube_metrics import counters_from_exposition, sum_counters
from rolloutlab.live.loadgen import LoadGenerator
from rolloutlab.strategies import Counters
from tests.test_demo_service import run_demo


def test_a_real_pods_metrics_give_the_counters_the_load_generator_saw(tmp_path):
    with run_demo(tmp_path, version="v7", error_rate=0.2, seed=3) as demo:
        with LoadGenerator(demo.url + "/", 150.0, seed=5, timeout_s=2.0, max_requests=300,
                           max_duration_s=10.0) as load:
            load.wait(15)
        seen = load.counters()["v7"]
        text = demo.client.get(demo.url + "/metrics").text
    got = counters_from_exposition(text)
    assert set(got) == {"v7"}
    assert got["v7"].requests == seen.requests == 300
    assert got["v7"].errors == seen.errors > 0
    # the service measures latency itself (no network): every request is in a bucket
    assert sum(got["v7"].latency_buckets) == 300


def test_scrapes_of_several_pods_add_up_per_version():
    a = {"v1": Counters(10, 1, (10,) + (0,) * 11)}
    b = {"v1": Counters(5, 0, (3, 2) + (0,) * 10), "v2": Counters(4, 4)}
    total = sum_counters([a, b])
    assert total["v1"] == Counters(15, 1, (13, 2) + (0,) * 10)
    assert total["v2"] == Counters(4, 4)


@pytest.mark.parametrize("text", ["", "# nothing here\n", "other_metric 3\n"])
def test_pages_without_demo_metrics_give_no_counters(text):
    assert counters_from_exposition(text) == {}


def test_a_container_restart_keeps_the_pods_earlier_counts():
    from rolloutlab.live.kube_metrics import fold_scrape

    base, last = fold_scrape({}, {}, {"v2": Counters(100, 10)})
    base, last = fold_scrape(base, last, {"v2": Counters(150, 12)})
    assert sum_counters([base, last])["v2"] == Counters(150, 12)
    base, last = fold_scrape(base, last, {"v2": Counters(5, 5)})  # restarted: counting from zero again
    assert sum_counters([base, last])["v2"] == Counters(155, 17)
