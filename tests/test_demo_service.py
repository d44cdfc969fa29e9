"""The demo service, run as the real process live runs start (``python demo_service.py``).

Every test starts its own process on a free 127.0.0.1 port (``run_demo``) and the helper
checks at teardown that the process is gone, so no test leaks a process or a port.
"""

from __future__ import annotations

import ast
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from scipy import stats

from rolloutlab.live import demo_service
from rolloutlab.live.kube_objects import DEMO_FILES, demo_service_files
from rolloutlab.strategies.observation import LATENCY_BUCKETS_MS

DEMO = Path(__file__).resolve().parent.parent / "live" / "demo_service.py"
_LISTENING = re.compile(r"listening=\S*?:(\d+)")


@dataclass
class DemoProcess:
    proc: subprocess.Popen
    url: str
    port: int
    log_path: Path
    client: httpx.Client
    token: str | None = None  # its DEMO_FAULT_TOKEN

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def get(self, path: str = "/") -> httpx.Response:
        return self.client.get(self.url + path)

    def fault(self, **changes) -> dict:
        """POST /fault as the runner does (with the run's token); asserts it was taken."""
        response = self.client.post(self.url + "/fault", json=changes, headers={"Authorization": f"Bearer {self.token}"})
        assert response.status_code == 200, response.text
        return response.json()


@contextmanager
def run_demo(tmp_path: Path, script: Path = DEMO, **env: object) -> Iterator[DemoProcess]:
    """Start ``demo_service.py`` with ``DEMO_<KEY>=value`` settings on 127.0.0.1 (port picked
    by the OS, read from the start line) and a fault token of its own (``fault_token=None``:
    none); kill it at the end and check it is gone."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("DEMO_")}
    full_env.update({"DEMO_HOST": "127.0.0.1", "DEMO_PORT": "0"})
    env.setdefault("fault_token", secrets.token_urlsafe(24))
    token = env["fault_token"]
    full_env.update({f"DEMO_{k.upper()}": str(v) for k, v in env.items() if v is not None})
    log_path = tmp_path / f"demo-{time.monotonic_ns()}.log"
    with open(log_path, "wb") as log:
        # -I: no cwd/PYTHONPATH on sys.path: the script finds only what ships beside it, as in the pod
        proc = subprocess.Popen([sys.executable, "-I", str(script)], env=full_env, cwd=tmp_path,
                                stdout=subprocess.DEVNULL, stderr=log)
    try:
        deadline = time.monotonic() + 15.0
        match = None
        while match is None and time.monotonic() < deadline and proc.poll() is None:
            match = _LISTENING.search(log_path.read_text(errors="replace"))
            if match is None:
                time.sleep(0.02)
        if match is None:
            raise RuntimeError(f"demo service did not start (exit {proc.poll()}): {log_path.read_text()}")
        port = int(match.group(1))
        with httpx.Client(trust_env=False, timeout=10.0) as client:
            yield DemoProcess(proc, f"http://127.0.0.1:{port}", port, log_path, client, token)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        assert proc.poll() is not None, "demo service still running after the test"


DEFAULT_FAULTS = {
    "error_rate": 0.0, "latency_ms": 0.0, "latency_jitter_ms": 0.0, "latency_jitter": "exponential",
    "leak_after_s": 0.0, "leak_error_rate_per_min": 0.0, "leak_latency_ms_per_min": 0.0,
    "ready": None, "ready_error_rate": 0.0, "live": True,
    "injected_error_rate": 0.0, "injected_latency_ms": 0.0, "load_error_rate": 0.0,
}


@pytest.fixture(scope="module")
def shared_demo(tmp_path_factory) -> Iterator[DemoProcess]:
    with run_demo(tmp_path_factory.mktemp("shared-demo"), version="v3", seed=4) as demo:
        yield demo


@pytest.fixture
def demo(shared_demo: DemoProcess) -> Iterator[DemoProcess]:
    """One process for the runtime-fault tests (a spawn costs ~0.3 s), reset to no faults around each."""
    shared_demo.fault(**DEFAULT_FAULTS)
    yield shared_demo
    shared_demo.fault(**DEFAULT_FAULTS)


def binomial_bounds(n: int, p: float, confidence: float = 0.999) -> tuple[float, float]:
    return stats.binom.interval(confidence, n, p)


# ----------------------------------------------------------------------- the file itself


def test_latency_buckets_match_the_controllers():
    """The service's histogram buckets are the controller's LATENCY_BUCKETS_MS, in seconds."""
    assert demo_service.LATENCY_BUCKETS_MS == LATENCY_BUCKETS_MS
    assert demo_service.LATENCY_BUCKETS_S == tuple(b / 1000 for b in LATENCY_BUCKETS_MS)


def test_the_files_import_only_the_standard_library_prometheus_client_and_each_other():
    """The demo service ships into a python:3.12-slim pod as the ConfigMap's files: stdlib,
    prometheus_client and its shipped siblings only (``rolloutlab.live.*`` when imported as a
    package; the flag SDK and the database driver are imported by name, only when configured)."""
    siblings = {name.removesuffix(".py") for name in DEMO_FILES}
    for name in DEMO_FILES:
        top = set()
        for node in ast.walk(ast.parse((DEMO.parent / name).read_text())):
            if isinstance(node, ast.Import):
                top.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0, "relative import"
                top.add(node.module.split(".")[0])
        assert top - set(sys.stdlib_module_names) <= {"prometheus_client", "rolloutlab"} | siblings, name


def test_the_shipped_files_alone_start_the_service(tmp_path):
    """The ConfigMap's files copied to an empty folder (as /app in the pod) start and serve."""
    app = tmp_path / "app"
    app.mkdir()
    for name, text in demo_service_files().items():
        (app / name).write_text(text)
    with run_demo(tmp_path, script=app / "demo_service.py", version="v9") as demo:
        assert demo.get("/").headers["X-Version"] == "v9"
        assert demo.fault(error_rate=1.0)["error_rate"] == 1.0
        assert demo.get("/").status_code == 500
    shutil.rmtree(app)


# ----------------------------------------------------------------------- the fault token


@pytest.mark.parametrize(
    "headers, status",
    [
        ({}, 401),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, 401),
        ({"Authorization": "Bearer not-the-token-of-this-run"}, 403),
        ({"X-Rolloutlab-Fault-Token": "not-the-token-of-this-run"}, 403),
    ],
    ids=["no token", "not a bearer token", "wrong bearer token", "wrong token header"],
)
def test_a_fault_change_without_the_runs_token_is_refused_and_changes_nothing(demo, headers, status):
    """POST /fault without the run's token answers 401, with another token 403; the
    faults stay as they were and the app keeps answering as before."""
    before = demo.client.get(demo.url + "/fault").json()
    response = demo.client.post(demo.url + "/fault", json={"error_rate": 1.0, "ready": False}, headers=headers)
    assert response.status_code == status, response.text
    assert "error" in response.json()
    if status == 401:
        assert "Bearer" in response.json()["error"]
    after = demo.client.get(demo.url + "/fault").json()
    assert {k: after[k] for k in DEFAULT_FAULTS} == {k: before[k] for k in DEFAULT_FAULTS}
    assert all(demo.get("/").status_code == 200 for _ in range(20))


def test_the_token_may_come_in_its_own_header(demo):
    """X-Rolloutlab-Fault-Token carries the token where Authorization cannot (the API server's pod proxy)."""
    response = demo.client.post(demo.url + "/fault", json={"latency_ms": 7},
                                headers={"X-Rolloutlab-Fault-Token": demo.token})
    assert response.status_code == 200 and response.json()["latency_ms"] == 7


def test_a_pod_without_a_token_takes_no_fault_changes_at_all(tmp_path):
    """Without DEMO_FAULT_TOKEN, POST /fault answers 403 whatever it carries; GET /fault stays open."""
    with run_demo(tmp_path, fault_token=None, error_rate=0.0) as demo:
        for headers in ({}, {"Authorization": "Bearer anything-at-all-long-enough"}):
            response = demo.client.post(demo.url + "/fault", json={"error_rate": 1.0}, headers=headers)
            assert response.status_code == 403 and "DEMO_FAULT_TOKEN" in response.json()["error"]
        assert demo.client.get(demo.url + "/fault").json()["error_rate"] == 0.0
        assert "fault_token=unset" in demo.log()


def test_a_short_token_is_refused_at_start():
    """A token too short to be a secret is a bad setting, named."""
    with pytest.raises(ValueError, match="DEMO_FAULT_TOKEN"):
        demo_service.load_config({"DEMO_FAULT_TOKEN": "1234"})


@pytest.mark.parametrize(
    "env, message",
    [
        ({"DEMO_ERROR_RATE": "1.5"}, "error_rate"),
        ({"DEMO_ERROR_RATE": "lots"}, "DEMO_ERROR_RATE"),
        ({"DEMO_PORT": "http"}, "DEMO_PORT"),
        ({"DEMO_CRASH_ON_START": "maybe"}, "DEMO_CRASH_ON_START"),
        ({"DEMO_LATENCY_JITTER": "gaussian"}, "latency_jitter"),
        ({"DEMO_LATENCY_MS": "-5"}, "DEMO_LATENCY_MS"),
    ],
    ids=["rate above one", "rate not a number", "port not a number", "bool not a bool",
         "unknown jitter shape", "negative latency"],
)
def test_a_bad_setting_is_refused_with_its_name(env, message):
    """A configuration error names the variable or field at fault."""
    with pytest.raises(ValueError, match=message):
        demo_service.load_config(env)


# ----------------------------------------------------------------------- the app


def test_every_app_path_answers_with_the_version_header(tmp_path):
    """GET / and any other unlisted path answer 200 with X-Version; so do POST and HEAD."""
    with run_demo(tmp_path, version="v7-blue") as demo:
        for response in (demo.get("/"), demo.get("/api/orders?id=3"), demo.client.post(demo.url + "/x", content=b"hi"),
                         demo.client.head(demo.url + "/")):
            assert response.status_code == 200
            assert response.headers["X-Version"] == "v7-blue"
        assert demo.get("/").json() == {"version": "v7-blue", "status": 200}
        assert "version=v7-blue" in demo.log() and "faults=" in demo.log()


def test_the_error_rate_holds_statistically_and_errors_carry_the_version(tmp_path):
    """With error_rate 0.3, the 500s among 600 requests fall in the binomial 99.9% interval."""
    n = 600
    with run_demo(tmp_path, version="v2", error_rate=0.3, seed=11) as demo:
        responses = [demo.get("/") for _ in range(n)]
    errors = sum(r.status_code == 500 for r in responses)
    low, high = binomial_bounds(n, 0.3)
    assert low <= errors <= high, f"{errors} errors in {n}"
    assert {r.status_code for r in responses} == {200, 500}
    assert all(r.headers["X-Version"] == "v2" for r in responses)


def test_the_same_seed_gives_the_same_answers(tmp_path):
    """Two processes with one DEMO_SEED answer a sequence of requests identically; another seed does not."""
    def statuses(seed: int) -> list[int]:
        with run_demo(tmp_path, error_rate=0.5, seed=seed) as demo:
            return [demo.get("/").status_code for _ in range(60)]

    first = statuses(5)
    assert statuses(5) == first
    assert statuses(6) != first


@pytest.mark.parametrize(
    "env, low_ms, high_ms",
    [
        ({}, 0, 60),
        ({"latency_ms": 100}, 100, 200),
        ({"latency_ms": 60, "latency_jitter_ms": 40, "latency_jitter": "uniform"}, 20, 160),
    ],
    ids=["no latency", "fixed 100 ms", "60 ms +- 40 uniform"],
)
def test_latency_is_injected(tmp_path, env, low_ms, high_ms):
    """Each app request takes the configured latency (and stays inside the jitter's range)."""
    with run_demo(tmp_path, seed=1, **env) as demo:
        took = []
        for _ in range(5):
            begun = time.perf_counter()
            assert demo.get("/").status_code == 200
            took.append((time.perf_counter() - begun) * 1000)
    assert low_ms <= min(took) and max(took) <= high_ms, took


def test_exponential_jitter_adds_its_mean(demo):
    """Exponential jitter of mean 15 ms on top of 5 ms gives requests averaging about 20 ms."""
    demo.fault(latency_ms=5, latency_jitter_ms=15)
    took = []
    for _ in range(40):
        begun = time.perf_counter()
        demo.get("/")
        took.append((time.perf_counter() - begun) * 1000)
    mean = sum(took) / len(took)
    assert min(took) >= 5
    assert 12 <= mean <= 35, mean  # sd of the mean ~ 15/sqrt(40) ~ 2.4 ms, plus a little overhead


# ----------------------------------------------------------------------- lifecycle


def test_readiness_waits_for_the_start_delay(tmp_path):
    """Readiness is 503 during DEMO_START_DELAY_S and 200 after; liveness and the app answer throughout."""
    with run_demo(tmp_path, start_delay_s=1.0) as demo:
        first = demo.get("/healthz/ready")
        uptime_at_first = demo.client.get(demo.url + "/fault").json()["uptime_s"]
        assert first.status_code == 503 and uptime_at_first < 1.0
        assert demo.get("/healthz/live").status_code == 200
        assert demo.get("/").status_code == 200
        deadline = time.monotonic() + 5
        while demo.get("/healthz/ready").status_code != 200:
            assert time.monotonic() < deadline, "never became ready"
            time.sleep(0.05)
        assert demo.client.get(demo.url + "/fault").json()["uptime_s"] >= 1.0


def test_a_crash_on_start_exits_non_zero_without_becoming_ready(tmp_path):
    """DEMO_CRASH_ON_START: never ready, then the process exits with a non-zero status."""
    with run_demo(tmp_path, crash_on_start="true", crash_after_s=0.8) as demo:
        seen = []
        while demo.proc.poll() is None and len(seen) < 200:
            try:
                seen.append(demo.get("/healthz/ready").status_code)
            except httpx.TransportError:
                break  # the listener closed: the crash is happening
            time.sleep(0.02)
        assert demo.proc.wait(timeout=5) == 1
        assert seen and set(seen) == {503}
        assert "crashing on start" in demo.log()


def test_a_leak_grows_errors_and_latency_with_uptime(tmp_path):
    """After DEMO_LEAK_AFTER_S, latency and error rate grow per minute as configured, the rate capped at 1."""
    per_min_ms, per_min_err = 3000.0, 120.0  # 50 ms and 2.0 per second of leak
    with run_demo(tmp_path, leak_after_s=0.6, leak_latency_ms_per_min=per_min_ms,
                  leak_error_rate_per_min=per_min_err, seed=2) as demo:
        samples = []
        for _ in range(100):
            report = demo.client.get(demo.url + "/fault").json()
            samples.append(report)
            leaked_min = max(0.0, report["uptime_s"] - 0.6) / 60
            assert report["effective_latency_ms"] == pytest.approx(per_min_ms * leaked_min, abs=0.5)
            assert report["effective_error_rate"] == pytest.approx(min(1.0, per_min_err * leaked_min), abs=0.01)
            if report["uptime_s"] >= 1.4:
                break
            time.sleep(0.1)
        assert samples[-1]["effective_error_rate"] == 1.0
        begun = time.perf_counter()
        statuses = [demo.get("/").status_code for _ in range(3)]
        took_ms = (time.perf_counter() - begun) * 1000 / 3
    assert statuses == [500, 500, 500]
    assert took_ms >= 40  # >= 0.8 s of leak at 50 ms/s
    assert samples[0]["effective_latency_ms"] < samples[-1]["effective_latency_ms"]


# ----------------------------------------------------------------------- runtime faults


def test_faults_change_at_runtime(demo):
    """POST /fault changes the error rate and latency at once and answers the settings GET /fault shows."""
    assert [demo.get("/").status_code for _ in range(5)] == [200] * 5
    settings = demo.fault(error_rate=1.0)
    assert settings["error_rate"] == 1.0 and settings["version"] == "v3"
    failing = [demo.get("/") for _ in range(5)]
    assert {r.status_code for r in failing} == {500}
    assert {r.headers["X-Version"] for r in failing} == {"v3"}
    demo.fault(error_rate=0, latency_ms=120)
    assert demo.get("/").status_code == 200
    # the service's own latency histogram, not the wall clock: the one request since the
    # change took more than 100 ms (the next bucket bound below 120 ms)
    assert _observations_above(scrape(demo), 0.1) == 1
    shown = demo.client.get(demo.url + "/fault").json()
    assert shown["latency_ms"] == 120 and shown["error_rate"] == 0


@pytest.mark.parametrize(
    "body",
    [b'{"error_rate": 2}', b'{"nonsense": 1}', b"not json", b'{"ready": "yes"}', b'{"latency_jitter": "gaussian"}',
     b'[1, 2]', b'{"latency_ms": -1}', b'{"live": 0}'],
    ids=["rate above one", "unknown field", "not json", "ready not a bool", "unknown jitter", "not an object",
         "negative latency", "live not a bool"],
)
def test_a_bad_fault_is_refused_and_changes_nothing(demo, body):
    """A malformed POST /fault answers 400 naming the problem and leaves the settings as they were."""
    demo.fault(error_rate=0.25, ready=False)
    before = demo.client.get(demo.url + "/fault").json()
    response = demo.client.post(demo.url + "/fault", content=body, headers={"Authorization": f"Bearer {demo.token}"})
    after = demo.client.get(demo.url + "/fault").json()
    assert response.status_code == 400 and "error" in response.json()
    volatile = {"uptime_s", "effective_error_rate", "effective_latency_ms"}
    def stable(report: dict) -> dict:
        return {k: v for k, v in report.items() if k not in volatile}

    assert stable(before) == stable(after)


def test_readiness_and_liveness_can_be_forced_and_made_flaky(demo):
    """`ready` forces the probe either way, `ready_error_rate` makes it flaky, `live` fails liveness."""
    assert demo.get("/healthz/ready").status_code == 200
    demo.fault(ready=False)
    assert demo.get("/healthz/ready").status_code == 503
    assert demo.get("/").status_code == 200  # unready, yet serving whoever still calls it
    demo.fault(ready=True)
    assert demo.get("/healthz/ready").status_code == 200
    demo.fault(ready=None)
    assert demo.get("/healthz/ready").status_code == 200  # natural again

    demo.fault(ready=True, ready_error_rate=0.5)
    n = 300
    failed = sum(demo.get("/healthz/ready").status_code == 503 for _ in range(n))
    low, high = binomial_bounds(n, 0.5)
    assert low <= failed <= high

    assert demo.get("/healthz/live").status_code == 200
    demo.fault(live=False)
    assert demo.get("/healthz/live").status_code == 503
    demo.fault(live=True)
    assert demo.get("/healthz/live").status_code == 200


# ----------------------------------------------------------------------- metrics


def scrape(demo: DemoProcess) -> dict:
    text = demo.get("/metrics").text
    return {family.name: family for family in text_string_to_metric_families(text)}


def _observations_above(families: dict, seconds: float) -> int:
    samples = families["demo_request_duration_seconds"].samples
    total = next(s.value for s in samples if s.name.endswith("_count"))
    at_most = next(s.value for s in samples if s.name.endswith("_bucket") and float(s.labels["le"]) == seconds)
    return int(total - at_most)


def test_metrics_count_exactly_the_app_requests_served(tmp_path):
    """/metrics parses, counts each app request once by code, and counts no probe, scrape or fault call."""
    with run_demo(tmp_path, version="v5", error_rate=0.3, seed=9) as demo:
        codes = []
        for i in range(37):
            response = demo.get(f"/item/{i}") if i % 3 else demo.client.post(demo.url + "/")
            codes.append(response.status_code)
            if i % 5 == 0:  # interleave requests that must not be counted
                demo.get("/healthz/ready"), demo.get("/healthz/live"), demo.get("/metrics")
                demo.client.get(demo.url + "/fault")
        families = scrape(demo)

    counted = {s.labels["code"]: s.value for s in families["demo_requests"].samples if s.name == "demo_requests_total"}
    assert counted.get("200", 0) == codes.count(200) and counted.get("500", 0) == codes.count(500)
    assert codes.count(500) > 0
    assert {s.labels["version"] for s in families["demo_requests"].samples} == {"v5"}

    histogram = families["demo_request_duration_seconds"].samples
    bounds = [float(s.labels["le"]) for s in histogram if s.name.endswith("_bucket")]
    assert bounds == [b / 1000 for b in LATENCY_BUCKETS_MS]
    count = next(s.value for s in histogram if s.name.endswith("_count"))
    assert count == 37

    info = families["demo_version_info"].samples
    assert [(s.labels, s.value) for s in info] == [({"version": "v5"}, 1.0)]
    assert families["demo_ready"].samples[0].value == 1.0


def test_metrics_histogram_sees_injected_latency(tmp_path):
    """With 120 ms of latency every observation lands above the 100 ms bound and inside 250 ms."""
    with run_demo(tmp_path, latency_ms=120) as demo:
        for _ in range(4):
            demo.get("/")
        buckets = {s.labels["le"]: s.value for s in scrape(demo)["demo_request_duration_seconds"].samples
                   if s.name.endswith("_bucket")}
    assert buckets["0.1"] == 0 and buckets["0.25"] == 4


# ----------------------------------------------------------------------- shutdown


def _request_in_background(demo: DemoProcess, path: str = "/") -> tuple[threading.Thread, list]:
    out: list = []

    def call() -> None:
        with httpx.Client(trust_env=False, timeout=10.0) as client:
            try:
                out.append(client.get(demo.url + path))
            except httpx.TransportError as exc:
                out.append(exc)

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    return thread, out


def test_sigterm_drains_then_exits_zero(tmp_path):
    """On SIGTERM readiness answers 503 at once, requests keep succeeding for DEMO_DRAIN_S, then exit 0."""
    with run_demo(tmp_path, drain_s=0.8, latency_ms=200) as demo:
        in_flight, in_flight_out = _request_in_background(demo)
        time.sleep(0.1)
        signalled = time.monotonic()
        demo.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 2
        with httpx.Client(trust_env=False, timeout=5.0) as fresh:
            while fresh.get(demo.url + "/healthz/ready").status_code != 503:
                assert time.monotonic() < deadline
                time.sleep(0.01)
            assert time.monotonic() - signalled < 0.5
            during = [fresh.get(demo.url + "/") for _ in range(2)]  # 0.4 s of the 0.8 s drain
        in_flight.join(5)
        code = demo.proc.wait(timeout=10)
        stopped = time.monotonic() - signalled
        with pytest.raises(httpx.ConnectError):
            httpx.get(demo.url + "/", trust_env=False, timeout=2.0)
    assert [r.status_code for r in during] == [200, 200]
    assert during[-1].headers.get("Connection") == "close"
    assert in_flight_out and in_flight_out[0].status_code == 200
    assert code == 0
    assert 0.8 <= stopped < 4.0
    assert "stopped after drain_s=0.8 (in-flight requests finished)" in demo.log()


def test_sigterm_without_drain_stops_listening_at_once_but_finishes_in_flight(tmp_path):
    """With the default DEMO_DRAIN_S=0 the listener closes at once; a request already running still gets 200."""
    with run_demo(tmp_path, latency_ms=400) as demo:
        in_flight, out = _request_in_background(demo)
        time.sleep(0.15)
        signalled = time.monotonic()
        demo.proc.send_signal(signal.SIGTERM)
        time.sleep(0.15)
        with pytest.raises(httpx.ConnectError):
            httpx.get(demo.url + "/healthz/live", trust_env=False, timeout=2.0)
        code = demo.proc.wait(timeout=10)
        stopped = time.monotonic() - signalled
        in_flight.join(5)
    assert code == 0
    assert out and not isinstance(out[0], Exception) and out[0].status_code == 200
    assert stopped < 1.5
