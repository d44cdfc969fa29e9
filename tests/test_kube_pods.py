"""Real probes and restarts on real pods: the demo service's pod template
(``live.kube_objects.demo_pod_template``) run by real kubelets (containerd + runc) on the
cluster of scripts/kube-cluster.sh, its readiness and liveness probes real HTTP probes,
the Endpoints those of the real endpoints controller.

Each test makes its own namespace (``probes-...``) with the demo service's ConfigMap, a
ClusterIP Service and one or two bare pods (no Deployment: the test follows a pod by
name), talks to the pods through the API server's pod proxy, and deletes the namespace at
the end. Nothing here needs a NodePort. The first tests are the whole-second rounding of
probe times and need no cluster.

What each test measured is printed on a ``MEASURED`` line (``pytest -s`` shows them).
"""

from __future__ import annotations

import itertools
import json
import secrets
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import urllib3
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from rolloutlab.live.kube_metrics import counters_from_exposition, fold_scrape, sum_counters
from rolloutlab.live.kube_objects import (
    DEFAULT_LIVENESS,
    DEFAULT_READINESS,
    DEFAULT_TERMINATION_GRACE_S,
    DEMO_PORT,
    PUBLIC_IMAGE,
    DemoImage,
    KubeProbe,
    demo_configmap_name,
    demo_pod_template,
    demo_service_files,
    kube_seconds,
    pod_ready,
    scenario_pod_settings,
)
from rolloutlab.live.runner import LiveVersion
from rolloutlab.live.session import version_env
from rolloutlab.scenarios import load_scenario
from rolloutlab.scenarios.schema import ReadinessProbe

LIBRARY = Path(__file__).resolve().parents[1] / "scenarios" / "library"
APP = "probed"
POLL_S = 0.2  # how often a test reads the cluster: fine enough for 1 s probes, light on a shared API server
FAST_READINESS = KubeProbe(period_s=1, failure_threshold=1)  # the fastest probe Kubernetes takes

T = TypeVar("T")


def measured(what: str, **figures: Any) -> None:
    """One line of what a test measured on the real cluster (for the report; ``pytest -s``)."""
    shown = ", ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items())
    print(f"MEASURED {what}: {shown}")


# --------------------------------------------------------------------------- whole seconds (no cluster)


@pytest.mark.parametrize(("seconds", "minimum", "expected"), [
    (0.0, 1, 1),                   # periodSeconds/timeoutSeconds: never 0
    (0.0125, 1, 1),                # a 250 ms timeout at time scale 20
    (0.25, 1, 1),                  # a 5 s period at time scale 20
    (1.0, 1, 1),
    (1.5, 1, 2),                   # a 30 s grace at time scale 20: rounded up, never down
    (2.0000001, 1, 2),             # below a microsecond over is float noise, not a second more
    (0.1 * 30, 1, 3),              # 3.0000000000000004
    (2.001, 1, 3),
    (30.0, 1, 30),
    (0.0, 0, 0),                   # initialDelaySeconds may be 0
    (0.4, 0, 1),
])
def test_probe_times_become_whole_seconds_rounded_up(seconds, minimum, expected):
    assert kube_seconds(seconds, minimum) == expected


@pytest.mark.parametrize("seconds", [-0.5, float("nan"), float("inf")])
def test_impossible_times_are_refused(seconds):
    with pytest.raises(ValueError):
        kube_seconds(seconds)


@pytest.mark.parametrize(("time_scale", "period", "timeout"), [
    (1.0, 5, 1),    # 250 ms timeout: Kubernetes cannot time a probe out sooner than 1 s
    (2.0, 3, 1),    # 2.5 s period: rounded up
    (5.0, 1, 1),
    (20.0, 1, 1),   # 0.25 s period: the cluster probes 4 times less often than the scenario
])
def test_a_scenarios_readiness_probe_is_compressed_then_rounded_up(time_scale, period, timeout):
    readiness = load_scenario(LIBRARY / "flaky-health-check.yaml").service_under_test.pod_timing.readiness
    probe = KubeProbe.from_readiness(readiness, time_scale)
    assert (probe.period_s, probe.timeout_s, probe.initial_delay_s) == (period, timeout, 0)
    assert (probe.success_threshold, probe.failure_threshold) == (2, 1)  # thresholds are counts: unchanged


def test_scenario_settings_give_the_template_its_probe_and_grace():
    timing = load_scenario(LIBRARY / "flaky-health-check.yaml").service_under_test.pod_timing  # grace 30 s
    settings = scenario_pod_settings(timing, 20.0)
    assert settings["termination_grace_s"] == 2  # 1.5 s rounded up
    spec = demo_pod_template(APP, LiveVersion("v1"), **settings)["spec"]
    container = spec["containers"][0]
    assert spec["terminationGracePeriodSeconds"] == 2
    assert container["readinessProbe"] == {
        "httpGet": {"path": "/healthz/ready", "port": DEMO_PORT}, "initialDelaySeconds": 0,
        "periodSeconds": 1, "timeoutSeconds": 1, "successThreshold": 2, "failureThreshold": 1}
    assert container["livenessProbe"] == DEFAULT_LIVENESS.spec("/healthz/live")  # scenarios have none


def test_the_templates_defaults_are_the_former_fixed_probes():
    spec = demo_pod_template(APP, LiveVersion("v1"))["spec"]
    ready, live = spec["containers"][0]["readinessProbe"], spec["containers"][0]["livenessProbe"]
    def timing(probe):
        return probe["periodSeconds"], probe["failureThreshold"], probe["timeoutSeconds"], probe["successThreshold"]
    assert timing(ready) == (2, 2, 1, 1)
    assert timing(live) == (5, 3, 1, 1)
    assert spec["terminationGracePeriodSeconds"] == DEFAULT_TERMINATION_GRACE_S == 30
    assert (DEFAULT_READINESS.period_s, DEFAULT_LIVENESS.period_s) == (2, 5)


def test_probes_kubernetes_would_refuse_are_refused_here():
    with pytest.raises(TypeError, match="whole number"):
        KubeProbe(period_s=0.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="whole number"):
        demo_pod_template(APP, LiveVersion("v1"), termination_grace_s=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=">= 1"):
        KubeProbe(timeout_s=0)
    with pytest.raises(ValueError, match="success threshold"):
        demo_pod_template(APP, LiveVersion("v1"), liveness=KubeProbe(success_threshold=2))
    with pytest.raises(ValueError):
        KubeProbe.from_readiness(ReadinessProbe(), time_scale=0)


# --------------------------------------------------------------------------- a namespace of bare pods


@dataclass
class PodLab:
    """One test's namespace on the real cluster: the demo service's ConfigMap, a ClusterIP
    Service ``APP`` over the pods it creates, and HTTP to a pod through the API server's
    pod proxy (the way ``live.kube_metrics`` scrapes)."""

    api: client.ApiClient
    ns: str
    image: DemoImage
    proxy_api: client.ApiClient  # for HTTP to pods: one try per request (the tests' polls are the retries)
    core: client.CoreV1Api = field(init=False)

    def __post_init__(self) -> None:
        self.core = client.CoreV1Api(self.api)

    def start(self) -> PodLab:
        self.core.create_namespace({"metadata": {"name": self.ns}})
        self.core.create_namespaced_config_map(self.ns, {
            "metadata": {"name": demo_configmap_name(APP)}, "data": demo_service_files()})
        self.core.create_namespaced_service(self.ns, {"metadata": {"name": APP}, "spec": {
            "selector": {"app": APP}, "ports": [{"port": 80, "targetPort": DEMO_PORT}]}})
        return self

    def close(self) -> None:
        try:
            self.core.delete_namespace(self.ns, grace_period_seconds=0)
        except ApiException as error:
            if error.status != 404:
                raise

    def create_pod(self, name: str, env: dict[str, str] | None = None, **settings: Any) -> float:
        """A bare pod from the backend's template; returns when it was created (monotonic)."""
        template = demo_pod_template(APP, LiveVersion("v1", env or {}), image=self.image, **settings)
        self.core.create_namespaced_pod(self.ns, {"metadata": {"name": name, **template["metadata"]},
                                                  "spec": template["spec"]})
        return time.monotonic()

    def pod(self, name: str):
        """The pod now, or None once it is gone."""
        try:
            return self.core.read_namespaced_pod(name, self.ns)
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def endpoints(self) -> tuple[set[str], set[str]]:
        """(ready, not ready) pod names in the Service's Endpoints."""
        try:
            subsets = self.core.read_namespaced_endpoints(APP, self.ns).subsets or []
        except ApiException as error:
            if error.status == 404:  # the endpoints controller has not written it yet
                return set(), set()
            raise

        def names(addresses) -> set[str]:
            return {a.target_ref.name for a in addresses or [] if a.target_ref is not None}
        return (set().union(*(names(s.addresses) for s in subsets)),
                set().union(*(names(s.not_ready_addresses) for s in subsets)))

    def http(self, pod: str, method: str, path: str, body: Any = None,
             headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        """One request to the pod's demo port through the API server's pod proxy; the pod's
        own status (a 503 from ``/healthz/ready`` too), or the proxy's when it cannot reach
        the pod. (The generated ``connect_*_proxy`` calls send no body and give a JSON
        answer back as a Python repr.)"""
        headers = {**({"Content-Type": "application/json"} if body is not None else {}), **(headers or {})}
        method, url, headers, body, post = self.proxy_api.param_serialize(
            method, f"/api/v1/namespaces/{self.ns}/pods/{pod}:{DEMO_PORT}/proxy/{path}",
            header_params=headers, body=body, auth_settings=["BearerToken"])
        answer = self.proxy_api.call_api(method, url, headers, body, post, _request_timeout=3)
        return answer.status, answer.read()

    def answer(self, pod: str, method: str, path: str) -> tuple[int, bytes] | None:
        """``http``, or None when the request got no answer at all (a pod going away)."""
        try:
            return self.http(pod, method, path)
        except (OSError, urllib3.exceptions.HTTPError):
            return None

    def fault_report(self, pod: str) -> dict[str, Any] | None:
        """The pod's ``GET /fault`` (its process answered), or None (it did not)."""
        answered = self.answer(pod, "GET", "fault")
        if answered is None:
            return None
        status, body = answered
        if status != 200:
            return None
        try:
            return json.loads(body)
        except ValueError:
            return None

    def scrape(self, pod: str):
        """The pod's /metrics as ``PodMetrics`` reads it."""
        text = self.core.connect_get_namespaced_pod_proxy_with_path(f"{pod}:{DEMO_PORT}", self.ns, "metrics",
                                                                     _request_timeout=3)
        return counters_from_exposition(text)

    def events(self, pod: str) -> list[tuple[str, str]]:
        found = self.core.list_namespaced_event(self.ns, field_selector=f"involvedObject.name={pod}")
        return [(e.reason or "", e.message or "") for e in found.items]


def wait_for(check: Callable[[], T], timeout_s: float, what: str) -> T:
    """Poll ``check`` every POLL_S until it gives something true; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout_s:g}s: {what}")
        time.sleep(POLL_S)


def container(pod):
    statuses = pod.status.container_statuses if pod is not None and pod.status else None
    return statuses[0] if statuses else None


def restarts(pod) -> int:
    c = container(pod)
    return c.restart_count if c is not None else 0


@pytest.fixture(scope="module")
def image(node_cluster) -> DemoImage:
    ref = node_cluster.env.get("DEMO_IMAGE")
    return DemoImage.preloaded(ref) if ref else PUBLIC_IMAGE


@pytest.fixture
def lab(node_cluster, image):
    # admin, both: bare pods, which the runner never makes (it makes Deployments), and POSTs
    # to pods through the API server's proxy (pods/proxy create), which the runner never sends
    # (it only GETs /metrics): here they stand for anyone on the cluster network
    proxy_api = node_cluster.admin_client()
    proxy_api.configuration.retries = False
    proxy_api = client.ApiClient(proxy_api.configuration)  # the pool takes its retries when made
    view = PodLab(node_cluster.admin_client(), f"probes-{uuid.uuid4().hex[:6]}", image, proxy_api)
    try:
        yield view.start()
    finally:
        view.close()


# --------------------------------------------------------------------------- readiness


def test_a_warming_pod_runs_unready_and_joins_the_endpoints_only_once_ready(lab):
    """DEMO_START_DELAY_S=3: the kubelet's readiness probe fails until the warm-up is over;
    meanwhile the endpoints controller lists the pod under notReadyAddresses only."""
    names = ["warm-a", "warm-b"]
    created = {n: lab.create_pod(n, {"DEMO_START_DELAY_S": "3"}, readiness=FAST_READINESS) for n in names}
    running_unready: dict[str, float] = {}
    ready_at: dict[str, float] = {}
    in_endpoints_at: dict[str, float] = {}
    listed_not_ready: set[str] = set()
    deadline = time.monotonic() + 90
    while len(in_endpoints_at) < len(names):
        assert time.monotonic() < deadline, f"pods not all in the endpoints: ready at {ready_at}"
        # Endpoints first, pods after: an address read before the pod says Ready would be
        # an endpoint the controller published for a pod that was not ready yet.
        serving, not_serving = lab.endpoints()
        now = time.monotonic()
        pods = {p.metadata.name: p for p in lab.core.list_namespaced_pod(lab.ns).items}
        for name in names:
            pod = pods[name]
            c = container(pod)
            ready = pod_ready(pod)
            if name in serving:
                assert ready, f"{name} is an endpoint but not Ready"
                in_endpoints_at.setdefault(name, now)
            if name in not_serving and not ready:
                listed_not_ready.add(name)
            if c is not None and c.state.running is not None and not ready:
                running_unready.setdefault(name, now)
            if ready:
                ready_at.setdefault(name, now)
        time.sleep(POLL_S)
    assert set(running_unready) == set(names)  # Running but not Ready at first...
    assert listed_not_ready == set(names)  # ...and known to the Service, but not served
    for name in names:
        pod = lab.pod(name)
        started = container(pod).state.running.started_at
        became_ready = next(c.last_transition_time for c in pod.status.conditions if c.type == "Ready")
        # The API's times are whole seconds (truncated): 3 s of warm-up is at least 2 here.
        assert (became_ready - started).total_seconds() >= 2, (started, became_ready)
        assert restarts(pod) == 0
    to_ready = [ready_at[n] - created[n] for n in names]
    measured("created -> Ready (start delay 3 s, readiness period 1 s)",
             median_s=statistics.median(to_ready), each_s=[round(s, 2) for s in to_ready],
             seen_running_unready_to_ready_s=[round(ready_at[n] - running_unready[n], 2) for n in names],
             ready_to_endpoint_within_poll_s=[round(in_endpoints_at[n] - ready_at[n], 2) for n in names])


# --------------------------------------------------------------------------- liveness


def test_a_container_that_stops_being_live_is_restarted_and_its_counters_reset(lab):
    """POST /fault {"live": false}: the kubelet's liveness probe fails, the kubelet kills
    the container (SIGTERM, the demo service exits 0) and starts it again in the same pod;
    the new process counts from zero, which ``fold_scrape`` reads as a reset."""
    name = "liveness"
    token = secrets.token_urlsafe(24)
    lab.create_pod(name, {"DEMO_FAULT_TOKEN": token}, readiness=FAST_READINESS,
                   liveness=KubeProbe(period_s=1, failure_threshold=2), termination_grace_s=3)
    first = wait_for(lambda: (p := lab.pod(name)) is not None and pod_ready(p) and p, 90, f"{name} Ready")
    first_container = container(first).container_id
    for _ in range(7):
        assert lab.http(name, "GET", "work")[0] == 200
    scraped = lab.scrape(name)
    assert scraped["v1"].requests == 7
    base, last = fold_scrape({}, {}, scraped)

    # The API server drops Authorization once it authenticated us: the token goes in its own header.
    assert lab.http(name, "POST", "fault", {"live": False})[0] == 401  # no token: refused, still live
    assert lab.http(name, "GET", "healthz/live")[0] == 200
    assert lab.http(name, "POST", "fault", {"live": False}, {"X-Rolloutlab-Fault-Token": token})[0] == 200
    failed_at = time.monotonic()
    assert lab.http(name, "GET", "healthz/live")[0] == 503
    wait_for(lambda: restarts(lab.pod(name)) >= 1, 60, f"{name} restarted by the kubelet")
    restarted_at = time.monotonic()
    again = wait_for(lambda: (p := lab.pod(name)) is not None and pod_ready(p) and p, 60, f"{name} Ready again")
    ready_again_at = time.monotonic()

    c = container(again)
    assert c.container_id != first_container  # a new container in the same pod
    assert restarts(again) == 1  # the fault lived in the old process only: the new one is live
    assert c.last_state.terminated is not None and c.last_state.terminated.exit_code == 0  # SIGTERM, drained
    # The kubelet says why: the liveness probe failed (events are written asynchronously).
    wait_for(lambda: any(r == "Unhealthy" and "Liveness" in m for r, m in lab.events(name)), 30,
             f"an Unhealthy liveness event for {name}: {lab.events(name)}")

    scraped = lab.scrape(name)
    assert scraped["v1"].requests == 0  # a new process: its counters start again
    base, last = fold_scrape(base, last, scraped)
    assert sum_counters([base, last])["v1"].requests == 7  # the pod's total does not fall
    measured("liveness false -> restart (period 1 s, failureThreshold 2, grace 3 s)",
             fault_to_restart_count_s=restarted_at - failed_at, fault_to_ready_again_s=ready_again_at - failed_at)


# --------------------------------------------------------------------------- crash loop


def test_a_process_that_crashes_on_start_gets_a_real_crash_loop_back_off(lab):
    name = "crasher"
    created = lab.create_pod(name, {"DEMO_CRASH_ON_START": "1", "DEMO_CRASH_AFTER_S": "0.5"},
                             readiness=FAST_READINESS)
    restart_seen: dict[int, float] = {}
    back_off = None
    deadline = time.monotonic() + 60
    while back_off is None or time.monotonic() < back_off[1] + 3:  # and 3 s more of never Ready
        assert time.monotonic() < deadline, f"no CrashLoopBackOff: {container(lab.pod(name))}"
        pod = lab.pod(name)
        assert not pod_ready(pod), "a pod that crashes on start was Ready"
        c = container(pod)
        if c is not None:
            restart_seen.setdefault(c.restart_count, time.monotonic())
            waiting = c.state.waiting
            if back_off is None and waiting is not None and waiting.reason == "CrashLoopBackOff":
                back_off = (c.restart_count, time.monotonic())
        time.sleep(POLL_S)
    c = container(lab.pod(name))
    assert back_off[0] >= 1 and c.restart_count >= 1
    assert c.last_state.terminated is not None and c.last_state.terminated.exit_code == 1  # DEMO_CRASH_EXIT_CODE
    measured("crash on start (after 0.5 s)", created_to_back_off_s=back_off[1] - created,
             restarts_at_back_off=back_off[0],
             restart_count_seen_at_s={k: round(v - created, 2) for k, v in sorted(restart_seen.items())})


# --------------------------------------------------------------------------- the flaky health check


# The scenario's own failure rate is about 1 probe in 100 (its 250 ms timeout is the
# service's p99; live.session.version_env sets it, checked below). Kubernetes probes at
# most once a second, so at that rate a pod flaps about once in 100 s: too rare for a
# bounded test. The probe's settings are the scenario's; the rate is raised so a flap
# comes within seconds.
FLAKY_READY_ERROR_RATE = 0.2
FLAKY_SCALE = 20.0


def test_the_flaky_health_check_scenarios_probe_makes_real_pods_flap_in_and_out(lab):
    """The flaky-health-check scenario's readiness probe (failure threshold 1, success
    threshold 2, period and timeout rounded up to 1 s) on pods whose readiness answers fail
    at random (DEMO_READY_ERROR_RATE): the kubelet takes the pod's Ready condition away
    and back, the endpoints controller moves it out of the Service's addresses and back,
    and the container is never restarted (readiness is not liveness)."""
    scenario = load_scenario(LIBRARY / "flaky-health-check.yaml")
    settings = scenario_pod_settings(scenario.service_under_test.pod_timing, FLAKY_SCALE)
    assert settings["readiness"] == KubeProbe(period_s=1, timeout_s=1, success_threshold=2, failure_threshold=1)
    live_env = version_env(scenario, None, FLAKY_SCALE)
    assert float(live_env["DEMO_READY_ERROR_RATE"]) == pytest.approx(0.01, rel=0.02)  # what live runs send
    env = {**live_env, "DEMO_READY_ERROR_RATE": str(FLAKY_READY_ERROR_RATE)}
    names = ["flaky-a", "flaky-b"]
    for name in names:
        lab.create_pod(name, env, **settings)
    # per pod: the Ready values and the endpoint lists it was seen in, each change with its time
    ready_seen: dict[str, list[tuple[float, bool]]] = {n: [] for n in names}
    listed_seen: dict[str, list[tuple[float, bool]]] = {n: [] for n in names}

    def note(series: list[tuple[float, bool]], value: bool, now: float) -> None:
        if not series or series[-1][1] != value:
            series.append((now, value))

    def flapped(series: list[tuple[float, bool]]) -> bool:
        """True, then False, then True again."""
        values = [v for _, v in series]
        return any(values[i:i + 3] == [True, False, True] for i in range(len(values)))

    deadline = time.monotonic() + 90
    while not all(flapped(ready_seen[n]) and flapped(listed_seen[n]) for n in names):
        assert time.monotonic() < deadline, f"no flap within 90 s: Ready {ready_seen}, endpoints {listed_seen}"
        serving, not_serving = lab.endpoints()
        now = time.monotonic()
        for pod in lab.core.list_namespaced_pod(lab.ns).items:
            name = pod.metadata.name
            assert restarts(pod) == 0, f"{name} was restarted: failed readiness must not restart a pod"
            note(ready_seen[name], pod_ready(pod), now)
            if name in serving or name in not_serving:
                note(listed_seen[name], name in serving, now)
        time.sleep(POLL_S)
    out_for = [s for n in names for s in unready_stretches(ready_seen[n])]
    measured("flaky readiness (rate 0.2, success 2, failure 1, period 1 s)",
             ready_changes=sum(len(s) - 1 for s in ready_seen.values()),
             endpoint_changes=sum(len(s) - 1 for s in listed_seen.values()),
             median_unready_s=statistics.median(out_for) if out_for else float("nan"))


def unready_stretches(series: list[tuple[float, bool]]) -> list[float]:
    """How long each stretch of not Ready lasted, after the pod first was Ready."""
    first = next((i for i, (_, value) in enumerate(series) if value), len(series))
    changes = series[first:]
    return [b - a for (a, value), (b, _) in itertools.pairwise(changes) if not value]


# --------------------------------------------------------------------------- graceful termination


DRAIN_S = 4.0
GRACE_S = 10


def test_a_deleted_pod_leaves_the_endpoints_drains_and_exits_within_its_grace(lab):
    """Deleting a pod whose service drains (DEMO_DRAIN_S): the pod leaves the Service's
    endpoints while its process still answers, and that process answers readiness with
    503 at once but keeps serving for the drain, then exits 0 by itself, before the grace
    period's SIGKILL. (The pod object outlives its process by several seconds: the kubelet
    deletes it only once it has reclaimed the pod's resources, on its status sync.)"""
    name = "draining"
    lab.create_pod(name, {"DEMO_DRAIN_S": str(DRAIN_S)}, readiness=FAST_READINESS, termination_grace_s=GRACE_S)
    wait_for(lambda: name in lab.endpoints()[0], 90, f"{name} in the endpoints")

    seen: list[tuple[float, Any]] = []  # (when, pod) as the watch saw it, up to its deletion
    stop = threading.Event()

    def follow() -> None:
        w = watch.Watch()
        for event in w.stream(lab.core.list_namespaced_pod, lab.ns, field_selector=f"metadata.name={name}",
                              timeout_seconds=GRACE_S + 40):
            seen.append((time.monotonic(), event["object"]))
            if event["type"] == "DELETED" or stop.is_set():
                w.stop()
    follower = threading.Thread(target=follow, daemon=True)
    follower.start()
    time.sleep(0.5)  # the watch is open before the delete

    lab.core.delete_namespaced_pod(name, lab.ns)  # the pod's own grace period
    deleted_at = time.monotonic()
    draining_at = readiness_503_at = left_endpoints_at = last_answer_at = gone_at = None
    while gone_at is None:
        # A bound for the test, not a claim: the object goes at the kubelet's next status
        # sync (every 10 s) after the process exited.
        assert time.monotonic() < deleted_at + GRACE_S + 30, f"{name} still there {GRACE_S + 30} s after its deletion"
        if left_endpoints_at is None and name not in lab.endpoints()[0]:
            left_endpoints_at = time.monotonic()
        report = lab.fault_report(name)
        if report is not None:
            last_answer_at = time.monotonic()
            if report["draining"]:  # the kubelet's SIGTERM has arrived
                assert not report["ready_now"], report
                draining_at = draining_at or last_answer_at
            if draining_at is not None and readiness_503_at is None:
                answered = lab.answer(name, "GET", "healthz/ready")
                if answered is not None and answered[0] == 503 and answered[1] == b'{"ready": false}\n':
                    readiness_503_at = time.monotonic()  # the service's own 503, not the proxy's
        if lab.pod(name) is None:
            gone_at = time.monotonic()
        time.sleep(0.1)
    stop.set()
    follower.join(GRACE_S + 45)

    assert draining_at is not None and readiness_503_at is not None, "the draining process never answered"
    assert left_endpoints_at is not None and left_endpoints_at <= last_answer_at  # out while still answering
    # The drain was honoured (a lower bound: the process answered for most of it) ...
    assert last_answer_at - deleted_at >= DRAIN_S - 1.5
    # ... the kubelet's own readiness probe saw the 503 while the process still ran ...
    after = [(at, pod) for at, pod in seen if pod.metadata.deletion_timestamp is not None]
    unready_running = [at for at, pod in after if container(pod).state.running is not None
                       and any(c.type == "Ready" and c.status == "False" for c in pod.status.conditions or [])]
    assert unready_running, "the Ready condition stayed True until the container stopped"
    # ... and it ended by itself, exit 0, within the grace period, not by its SIGKILL (137).
    exited = [(at, container(pod).state.terminated) for at, pod in after if container(pod).state.terminated is not None]
    assert exited, f"the watch saw no terminated container: {[container(p).state for _, p in seen]}"
    assert exited[0][1].exit_code == 0
    exited_at = exited[0][0]
    assert exited_at - deleted_at < GRACE_S
    measured(f"delete (drain {DRAIN_S:g} s, grace {GRACE_S} s)", to_endpoint_removed_s=left_endpoints_at - deleted_at,
             to_draining_seen_s=draining_at - deleted_at, to_ready_false_s=unready_running[0] - deleted_at,
             last_answer_s=last_answer_at - deleted_at, to_exit_seen_s=exited_at - deleted_at,
             to_pod_gone_s=gone_at - deleted_at)
