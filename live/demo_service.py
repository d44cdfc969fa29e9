"""The demo service every live run deploys: one HTTP app whose failures are dialled in.

It stands in for a team's real service. A release is this file started with another
``DEMO_VERSION`` and other fault settings, so a rollout can meet the defects the
scenarios describe (errors, slowness, slow warm-up, crash on start, a leak that gets
worse with uptime, a flaky readiness probe) and the runner can measure them.

Self-contained on purpose: Kubernetes ships it with its one sibling, ``demo_faults.py``
(the fault model and the configuration), as a ConfigMap and runs ``python demo_service.py``
on the public ``python:3.12-slim`` image with only ``prometheus-client`` installed beside
it (``live.kube_objects.demo_service_files``). Standard library and ``prometheus_client``
only (and, with ``DEMO_FLAG_FILE`` only, ``openfeature-sdk`` + ``openfeature-provider-flagd``;
with ``DEMO_DATABASE_URL`` only, ``rolloutlab.live.demo_database`` and ``psycopg``).

Endpoints
---------
``GET /healthz/ready``  200 once warmed up (``DEMO_START_DELAY_S``), 503 before, 503 while
                        draining, 503 when forced unready or on a flaky probe draw.
``GET /healthz/live``   200 unless the ``live`` fault is false.
``GET /metrics``        Prometheus exposition (see "Metrics").
``GET /fault``          the current fault settings (and their effective values now) as JSON;
                        open to anyone who reaches the pod (it changes nothing).
``POST /fault``         a JSON object with any of the fault fields below; answers like GET.
                        Needs ``Authorization: Bearer <DEMO_FAULT_TOKEN>``: 401 without it,
                        403 with another token or when the pod has no token (then no one
                        can change its faults); a refused POST changes nothing. The token may
                        come as ``X-Rolloutlab-Fault-Token: <token>`` instead: Kubernetes'
                        API server drops ``Authorization`` once it has authenticated a
                        request, so a POST through its pod proxy cannot carry a bearer token.
anything else           the app: 200 with a small JSON body, or 500 with probability
                        ``error_rate`` (and ``flag_error_rate`` with the flag on); always
                        ``X-Version: <DEMO_VERSION>``, and ``X-Flag-Variant: <variant>``
                        when a flag was evaluated. POSTs are writes; requests carrying
                        ``X-Rolloutlab-Shadow: 1`` are mirrored copies (both counted apart).

Environment
-----------
``DEMO_VERSION`` (``v1``), ``DEMO_HOST`` (``0.0.0.0``), ``DEMO_PORT`` (``8080``; 0 picks a
free port, the start line says which), ``DEMO_SEED`` (unset: from the OS).

``DEMO_FAULT_TOKEN``: the per-run secret ``POST /fault`` needs (the runner makes it with
``secrets.token_urlsafe``; at least 16 characters). Unset: ``POST /fault`` is refused.

``DEMO_DEPENDENCIES``: a JSON list of services each app request calls (``name``, ``url``,
``calls_per_request``, ``error_propagation``, ``timeout_s``; ``demo_faults.Dependency``):
a GET of the url per call; a failed call (5xx, no answer, too slow) fails the request
with probability ``error_propagation``, and a slow one makes it slow.

``DEMO_SIDE_EFFECTS`` (``0``): the version's writes are not safe to repeat: each mirrored
write (a POST with ``X-Rolloutlab-Shadow: 1``) is performed a second time and counted in
``demo_duplicated_requests_total{version,code}`` (the ``side_effects`` defect).

``DEMO_DATABASE_URL``: each app request runs its statement through
``rolloutlab.live.demo_database`` (imported only then; its docstring has the variables);
a failed statement answers 500.

``DEMO_FLAG_FILE`` + ``DEMO_FLAG_KEY`` (both or neither): each app request evaluates that
boolean flag with the OpenFeature SDK and flagd's provider in-process, in file mode (it
polls the file's mtime: every 0.5 s in provider 0.6); targetingKey = ``X-User-Id``, every
header an attribute of its lower-case name. A failed evaluation (no such flag) is off,
with no ``X-Flag-Variant``.

Faults (env name = upper-case field name with ``DEMO_`` prefix; all changeable at runtime
through ``POST /fault``):

- ``error_rate`` (0): probability an app request answers 500 (a defect outside the flag).
- ``flag_error_rate`` (0): probability an app request with the flag on answers 500 (the
  defect behind the flag), drawn together with ``error_rate``.
- ``latency_ms`` (0): delay added to every app request.
- ``latency_jitter_ms`` (0) and ``latency_jitter`` (``exponential``): extra random delay.
  ``exponential`` adds an Exp draw with mean ``latency_jitter_ms`` (a one-sided long tail,
  like a real service); ``uniform`` adds U(-j, +j) around ``latency_ms`` like ``tc netem
  delay L j`` (clipped at 0, mean unchanged).
- ``leak_after_s`` (0), ``leak_error_rate_per_min`` (0), ``leak_latency_ms_per_min`` (0):
  from ``leak_after_s`` seconds after process start, the error rate grows by
  ``leak_error_rate_per_min`` per minute (capped at 1) and latency by
  ``leak_latency_ms_per_min`` per minute. ``leak_after_s`` always counts from process
  start (``GET /fault`` reports ``uptime_s`` to aim at "now").
- ``ready`` (unset): force readiness true or false; null returns to natural readiness.
  Draining and crash-on-start win over a forced true.
- ``ready_error_rate`` (0): probability a readiness probe answers 503 although the
  service is ready (a flaky health check).
- ``live`` (true): false makes ``/healthz/live`` answer 503 (the kubelet restarts the pod).
- ``injected_error_rate`` (0), ``injected_latency_ms`` (0): failures and delay done to the
  service from outside for a while (a scenario's ``dependency_failure`` and
  ``latency_injection``), on top of its own.
- ``load_error_rate`` (0): a defect that shows only under full load (``full_load_only``),
  set while the version carries enough of the traffic (the backend knows; the pod cannot).

Lifecycle (env only):

- ``DEMO_START_DELAY_S`` (0): warm-up before readiness turns true.
- ``DEMO_CRASH_ON_START`` (``0``): ``1``/``true`` makes the process exit with status
  ``DEMO_CRASH_EXIT_CODE`` (1) after ``DEMO_CRASH_AFTER_S`` (1) seconds, never ready.
- ``DEMO_DRAIN_S`` (0): on SIGTERM (or SIGINT) readiness answers 503 at once; the
  service keeps serving in-flight and new requests for ``DEMO_DRAIN_S`` seconds (with
  ``Connection: close`` so keep-alive clients move elsewhere), then closes its listener,
  lets requests still running finish (at most ``DEMO_SHUTDOWN_TIMEOUT_S``, 10 s) and
  exits 0. The default 0 is what an app without a preStop hook does: it stops listening
  at once, which is why requests fail during switches unless a drain is configured.

Metrics
-------
App requests only (``/metrics``, ``/healthz/*`` and ``/fault`` are not counted):
``demo_requests_total{version,code}``, ``demo_request_duration_seconds{version}`` (a
histogram with the rollout lab's buckets, observed just before the response is written, so
a client that has its response can already see it counted), plus ``demo_version_info{version}``
= 1, ``demo_ready`` (0/1) and ``demo_in_flight_requests``. Mirrored copies count only in
``demo_shadow_requests_total{version,code}`` and ``demo_shadow_request_duration_seconds{version}``
(same buckets); POSTs to the app in ``demo_writes_total{version,shadow}``; with
``DEMO_SIDE_EFFECTS``, mirrored writes performed again in ``demo_duplicated_requests_total``.

No per-request logging: one line at start and one at exit, on stderr.
"""

from __future__ import annotations

import hmac
import http.client
import importlib
import json
import math
import os
import random
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Mapping
from urllib.parse import urlsplit

import prometheus_client
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

if __package__:  # imported as rolloutlab.live.demo_service (tests, the runner's own imports)
    from rolloutlab.live.demo_faults import Config, Dependency, Faults, load_config
else:  # run as a script: its sibling ships beside it (the pod's /app, the local backend's live/)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from demo_faults import Config, Dependency, Faults, load_config  # type: ignore[no-redef]

# Must match strategies.observation.LATENCY_BUCKETS_MS (copied, because this file ships
# alone; tests/test_demo_service.py asserts they are equal).
LATENCY_BUCKETS_MS: tuple[float, ...] = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, math.inf)
LATENCY_BUCKETS_S: tuple[float, ...] = tuple(b / 1000.0 for b in LATENCY_BUCKETS_MS)

MAX_BODY_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class AppAnswer:
    """What one app request gets: a status after a delay."""

    status: int
    delay_s: float


class FlagEvaluator:
    """The flag the app path evaluates: OpenFeature's SDK with flagd's provider in file mode,
    imported by name and only here (pods without a flag run without them)."""

    def __init__(self, path: str, key: str) -> None:
        api = importlib.import_module("openfeature.api")
        flagd = importlib.import_module("openfeature.contrib.provider.flagd")
        file_mode = importlib.import_module("openfeature.contrib.provider.flagd.config").ResolverType.FILE
        self._context = importlib.import_module("openfeature.evaluation_context").EvaluationContext
        api.set_provider_and_wait(flagd.FlagdProvider(resolver_type=file_mode, offline_flag_source_path=path))
        self._client, self.key = api.get_client(), key

    def evaluate(self, headers: Mapping[str, str]) -> tuple[bool, str | None]:
        """(flag on, variant) for one request's headers (lower-case names); a failure is (False, None)."""
        context = self._context(targeting_key=headers.get("x-user-id"), attributes=dict(headers))
        details = self._client.get_boolean_details(self.key, False, context)
        return details.value is True, details.variant


class DemoService:
    """The service's state, shared by all request threads: faults, readiness, metrics."""

    def __init__(self, config: Config, started_at: float | None = None, flag: FlagEvaluator | None = None,
                 database: Any = None) -> None:
        self.config = config
        self.flag = flag
        self.database = database  # rolloutlab.live.demo_database.DemoDatabase, or None
        self.started_at = time.monotonic() if started_at is None else started_at
        self._faults = config.faults
        self._rng = random.Random(config.seed)
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._in_flight = 0
        self.draining = threading.Event()
        self.registry = CollectorRegistry(auto_describe=True)
        version = config.version
        self._requests = Counter("demo_requests", "App requests answered, by HTTP status code.",
                                 ["version", "code"], registry=self.registry)
        self._latency = Histogram("demo_request_duration_seconds", "App request latency as the service measures it.",
                                  ["version"], buckets=LATENCY_BUCKETS_S, registry=self.registry).labels(version)
        self._shadow_requests = Counter("demo_shadow_requests", "Mirrored copies of app requests answered, by code.",
                                        ["version", "code"], registry=self.registry)
        self._shadow_latency = Histogram("demo_shadow_request_duration_seconds", "Latency of mirrored copies.",
                                         ["version"], buckets=LATENCY_BUCKETS_S, registry=self.registry).labels(version)
        self._writes = Counter("demo_writes", "POSTs to the app (writes), mirrored copies apart.",
                               ["version", "shadow"], registry=self.registry)
        Gauge("demo_version_info", "The version this process serves (always 1).", ["version"],
              registry=self.registry).labels(version).set(1)
        Gauge("demo_ready", "1 when the readiness probe would pass (ignoring flaky draws).",
              registry=self.registry).set_function(lambda: 1.0 if self.is_ready() else 0.0)
        Gauge("demo_in_flight_requests", "Requests being handled now (all endpoints).",
              registry=self.registry).set_function(lambda: float(self._in_flight))
        # Pre-create the usual series so a scrape shows zeros instead of nothing.
        for code in ("200", "500"):
            self._requests.labels(version, code)
            self._shadow_requests.labels(version, code)
        for shadow in ("true", "false"):
            self._writes.labels(version, shadow)
        self._duplicated = None
        if config.side_effects:
            self._duplicated = Counter("demo_duplicated_requests", "Mirrored writes performed a second time "
                                       "(side effects), by code.", ["version", "code"], registry=self.registry)
            self._duplicated.labels(version, "200")

    # -- state -------------------------------------------------------------------------
    def uptime_s(self) -> float:
        return time.monotonic() - self.started_at

    @property
    def faults(self) -> Faults:
        return self._faults

    def refuse_fault_change(self, authorization: str | None, token_header: str | None = None) -> tuple[int, str] | None:
        """Why a ``POST /fault`` with this ``Authorization`` header (or ``X-Rolloutlab-Fault-Token``
        header) may not change the faults ((status, reason): 401 no token, 403 a wrong one or
        none configured), None when it may. The comparison takes the same time whatever the token."""
        token = self.config.fault_token
        if token is None:
            return 403, "this pod was started without DEMO_FAULT_TOKEN: its faults cannot be changed"
        scheme, _, given = (authorization or "").strip().partition(" ")
        if token_header and token_header.strip() and not authorization:
            scheme, given = "bearer", token_header  # through the API server's pod proxy (see the module docstring)
        if scheme.lower() != "bearer" or not given.strip():
            return 401, "POST /fault needs Authorization: Bearer <the run's fault token>"
        if not hmac.compare_digest(given.strip().encode(), token.encode()):
            return 403, "wrong fault token"
        return None

    def update_faults(self, changes: Mapping[str, Any]) -> Faults:
        with self._lock:
            self._faults = self._faults.updated(changes)
            return self._faults

    def fault_report(self) -> dict[str, Any]:
        faults, uptime = self._faults, self.uptime_s()
        return {
            **asdict(faults),
            "version": self.config.version,
            "uptime_s": round(uptime, 6),
            "effective_error_rate": faults.effective_error_rate(uptime),
            "effective_latency_ms": faults.effective_latency_ms(uptime),
            "ready_now": self.is_ready(),
            "draining": self.draining.is_set(),
        }

    def is_ready(self) -> bool:
        if self.draining.is_set() or self.config.crash_on_start:
            return False
        forced = self._faults.ready
        if forced is not None:
            return forced
        return self.uptime_s() >= self.config.start_delay_s

    def probe_ready(self) -> bool:
        """One readiness probe: ready, unless the flaky-probe fault draws a failure."""
        if not self.is_ready():
            return False
        rate = self._faults.ready_error_rate
        if rate <= 0.0:
            return True
        with self._lock:
            return self._rng.random() >= rate

    # -- requests ----------------------------------------------------------------------
    def draw_app_answer(self, flag_on: bool = False) -> AppAnswer:
        """Status and delay of one app request, from the seeded stream."""
        faults, uptime = self._faults, self.uptime_s()
        error_rate = faults.effective_error_rate(uptime)
        if flag_on:  # one draw for both defects: fails unless neither hits
            error_rate += (1.0 - error_rate) * faults.flag_error_rate
        latency_ms = faults.effective_latency_ms(uptime)
        jitter = faults.latency_jitter_ms
        with self._lock:
            failed = self._rng.random() < error_rate
            if jitter > 0.0:
                if faults.latency_jitter == "exponential":
                    latency_ms += self._rng.expovariate(1.0 / jitter)
                else:
                    latency_ms = max(0.0, latency_ms + self._rng.uniform(-jitter, jitter))
        return AppAnswer(500 if failed else 200, latency_ms / 1000.0)

    def draw_calls(self) -> list[Dependency]:
        """The dependency calls one app request makes, in order (``Dependency``)."""
        calls = []
        with self._lock:
            for dependency in self.config.dependencies:
                whole = int(dependency.calls_per_request)
                extra = self._rng.random() < dependency.calls_per_request - whole
                calls += [dependency] * (whole + extra)
        return calls

    def propagates(self, dependency: Dependency) -> bool:
        """Whether a failed call to ``dependency`` fails the request (seeded draw)."""
        with self._lock:
            return self._rng.random() < dependency.error_propagation

    def call_dependencies(self) -> str | None:
        """Make this request's dependency calls; None when the request survives them, else
        which call failed it (the remaining calls are not made, as a caller that gives up)."""
        for dependency in self.draw_calls():
            failure = call_once(dependency)
            if failure is not None and self.propagates(dependency):
                return failure
        return None

    def record(self, status: int, duration_s: float, shadow: bool = False, write: bool = False) -> None:
        """Count one app request; a mirrored copy (``shadow``) only in the shadow metrics."""
        version, code = self.config.version, str(status)
        if write:
            self._writes.labels(version, "true" if shadow else "false").inc()
            if shadow and self._duplicated is not None:
                self._duplicated.labels(version, code).inc()  # the write the mirror made it perform again
        (self._shadow_requests if shadow else self._requests).labels(version, code).inc()
        (self._shadow_latency if shadow else self._latency).observe(duration_s)

    def enter(self) -> None:
        with self._lock:
            self._in_flight += 1

    def leave(self) -> None:
        with self._lock:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.notify_all()

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until no request is being handled; False when ``timeout_s`` ran out first."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while self._in_flight > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
            return True

    def metrics_text(self) -> bytes:
        return generate_latest(self.registry)


def call_once(dependency: Dependency) -> str | None:
    """One GET of a dependency: None when it answered below 500 in time, else why not."""
    parts = urlsplit(dependency.url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=dependency.timeout_s)
    try:
        connection.request("GET", parts.path or "/", headers={"X-Rolloutlab-Caller": "demo"})
        response = connection.getresponse()
        response.read()
        return None if response.status < 500 else f"{dependency.name} answered {response.status}"
    except (OSError, http.client.HTTPException) as error:
        return f"{dependency.name} did not answer: {type(error).__name__}"
    finally:
        connection.close()


class DemoHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive; Nagle off so small responses are not held back."""

    protocol_version = "HTTP/1.1"
    server_version = "rolloutlab-demo"
    sys_version = ""
    disable_nagle_algorithm = True
    timeout = 120  # idle keep-alive connections are closed after this many seconds
    server: "DemoHTTPServer"

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # per-request logging is too slow at hundreds of requests per second

    # -- plumbing ----------------------------------------------------------------------
    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self.close_connection = True  # not supported; do not try to find the next request
            return b""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            return b""
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, status: int, body: bytes, content_type: str = "application/json",
              version_header: bool = False, variant: str | None = None) -> None:
        service = self.server.service
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if version_header:
            self.send_header("X-Version", service.config.version)
        if variant is not None:
            self.send_header("X-Flag-Variant", variant)
        if service.draining.is_set():
            self.close_connection = True  # move keep-alive clients to the other backends
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, payload: Any) -> None:
        self._send(status, (json.dumps(payload, sort_keys=True) + "\n").encode())

    def _dispatch(self) -> None:
        service = self.server.service
        service.enter()
        try:
            path = self.path.split("?", 1)[0]
            body = self._read_body()
            if path == "/healthz/ready":
                ok = service.probe_ready()
                self._json(200 if ok else 503, {"ready": ok})
            elif path == "/healthz/live":
                ok = service.faults.live
                self._json(200 if ok else 503, {"live": ok})
            elif path == "/metrics":
                self._send(200, service.metrics_text(), CONTENT_TYPE_LATEST)
            elif path == "/fault" and self.command in ("GET", "HEAD"):
                self._json(200, service.fault_report())
            elif path == "/fault" and self.command == "POST":
                self._post_fault(body)
            elif path == "/fault":
                self._json(405, {"error": "use GET or POST on /fault"})
            else:
                self._app()
        finally:
            service.leave()

    def _post_fault(self, body: bytes) -> None:
        service = self.server.service
        refused = service.refuse_fault_change(self.headers.get("Authorization"),
                                              self.headers.get("X-Rolloutlab-Fault-Token"))
        if refused is not None:
            status, reason = refused
            self.close_connection = True  # a client that guesses tokens gets one try per connection
            self._json(status, {"error": reason})
            return
        try:
            changes = json.loads(body.decode() or "{}")
            service.update_faults(changes)
        except (ValueError, UnicodeDecodeError) as exc:
            self._json(400, {"error": str(exc)})
            return
        self._json(200, service.fault_report())

    def _app(self) -> None:
        service = self.server.service
        begun = time.perf_counter()
        headers = {name.lower(): value for name, value in self.headers.items()}
        flag_on, variant = service.flag.evaluate(headers) if service.flag else (False, None)
        answer = service.draw_app_answer(flag_on)
        write = self.command == "POST"
        # the calls a request makes take their own time: a slow dependency is a slow request
        failure = service.call_dependencies() if service.config.dependencies else None
        if failure is None and service.database is not None:
            failure = service.database.serve(write)
        status = 500 if failure is not None else answer.status
        if answer.delay_s > 0:
            time.sleep(answer.delay_s)
        version = service.config.version
        payload = {"version": version, "status": status, **({"failure": failure} if failure else {})}
        body = (json.dumps(payload) + "\n").encode()
        service.record(status, time.perf_counter() - begun, shadow=headers.get("x-rolloutlab-shadow") == "1",
                       write=write)
        self._send(status, body, version_header=True, variant=variant)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _dispatch


class DemoHTTPServer(ThreadingHTTPServer):
    """One thread per connection (daemon threads), address reuse, a real listen backlog."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024  # the default 5 drops SYNs under bursts (1 s client retries)

    def __init__(self, address: tuple[str, int], service: DemoService) -> None:
        self.service = service
        super().__init__(address, DemoHandler)


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(env: Mapping[str, str] | None = None) -> int:
    """Run the service until SIGTERM/SIGINT (exit 0) or a crash-on-start (exit non-zero)."""
    started_at = time.monotonic()
    try:
        config = load_config(os.environ if env is None else env)
    except ValueError as exc:
        _log(f"demo_service: bad configuration: {exc}")
        return 2
    if hasattr(prometheus_client, "disable_created_metrics"):
        prometheus_client.disable_created_metrics()  # *_created series are noise for a scraper
    try:
        flag = FlagEvaluator(config.flag_file, config.flag_key) if config.flag_file and config.flag_key else None
    except Exception as exc:  # noqa: BLE001 - whatever the SDK raises, the service cannot serve its flag
        _log(f"demo_service: the flag provider did not start on {config.flag_file}: {exc!r}")
        return 2
    environment = os.environ if env is None else env
    try:
        database = None
        if environment.get("DEMO_DATABASE_URL", "").strip():  # only then: pods without one need no driver
            database = importlib.import_module("rolloutlab.live.demo_database").DemoDatabase.from_env(
                environment, seed=config.seed)
    except (ImportError, ValueError) as exc:
        _log(f"demo_service: the database settings cannot work: {exc}")
        return 2
    service = DemoService(config, started_at=started_at, flag=flag, database=database)
    server = DemoHTTPServer((config.host, config.port), service)
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        service.draining.set()  # readiness answers 503 from now on
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                               name="demo-serve", daemon=True)
    serving.start()
    host, port = server.server_address[:2]
    _log(
        f"demo_service version={config.version} listening={host}:{port} pid={os.getpid()} "
        f"start_delay_s={config.start_delay_s} drain_s={config.drain_s} crash_on_start={config.crash_on_start} "
        f"seed={config.seed} flag_key={config.flag_key} fault_token={'set' if config.fault_token else 'unset'} "
        f"dependencies={[d.name for d in config.dependencies]} database={'set' if database else 'unset'} "
        f"faults={json.dumps(asdict(config.faults), sort_keys=True)}"
    )
    crash_at = started_at + config.crash_after_s if config.crash_on_start else math.inf
    # Short waits so signal handlers run promptly on the main thread.
    while not stop.wait(0.05):
        if time.monotonic() >= crash_at:
            _log(f"demo_service version={config.version} crashing on start (exit {config.crash_exit_code})")
            server.shutdown()
            server.server_close()
            return config.crash_exit_code
    drain_until = time.monotonic() + config.drain_s
    while (left := drain_until - time.monotonic()) > 0:
        time.sleep(min(left, 0.05))
    server.shutdown()
    server.server_close()
    idle = service.wait_idle(config.shutdown_timeout_s)
    if database is not None:
        database.close()
    _log(f"demo_service version={config.version} stopped after drain_s={config.drain_s} "
         f"(in-flight requests {'finished' if idle else 'cut off'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
