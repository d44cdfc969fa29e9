"""HAProxy as the local backend's traffic router: its configuration, its runtime API, its process.

The configuration is generated once per run and never reloaded: every change during a
rollout goes through the runtime API (the stats socket), as a service mesh's control
plane changes its proxies without restarting them.

Layout (``RouterLayout``)::

    fe_user     127.0.0.1:<user port>      the users' entry ("active" service)
    fe_preview  127.0.0.1:<preview port>   blue-green's preview entry

    shared layout (rolling, canary without a traffic router)
        both frontends -> be_app        every pod of both versions, weight 1 each:
                                        traffic follows the ready pods (a Service over
                                        both ReplicaSets); fe_preview -> be_none
    routed layout (blue-green, canary with trafficRouting: router)
        fe_user    -> be_canary with probability weight/100 (``rand(100) < weight``),
                      otherwise the backend the ``active`` key of routes.map names
        fe_preview -> the backend the ``preview`` key of routes.map names
        be_stable, be_canary   one version's pods each;   be_none   no server (503)
        be_baseline   a canary's baseline pods (``live.baseline``): the ``baseline`` weight's
                      draws after the canary's, while one of its servers is up
        a canary's managed routes (``live.haproxy_routes``): fe_user sends requests a
        header route matches to be_canary before the weight; fe_shadow (127.0.0.1:<shadow
        port>) takes nginx's mirrored copies: be_canary or 204 per the mirror route

Pods occupy pre-declared server slots (``stable-0`` .. ``canary-N``), declared
``disabled`` (maintenance) at 127.0.0.1:1. A pod's slot gets its address with ``set
server <b>/<s> addr``, and ``state ready`` once the pod first passed readiness; from then
HAProxy's own health check (``option httpchk GET /healthz/ready``) decides whether it gets
traffic, so a stopped (SIGSTOP) or draining pod leaves the rotation by itself.

Switching (``set map``) changes one map entry that each new request reads once, so a
switch is atomic for new requests; requests already sent to a server finish there (the
old servers stay up: blue-green keeps the old version until its scale-down delay).

Retries (``RouterRetries``): ``retries 2``, ``option redispatch 1`` (each retry on
another server, so no turn-around wait), ``retry-on conn-failure empty-response`` for GET
and HEAD only (``http-request disable-l7-retry unless METH_GET``). A connection refused
or a connection closed before any byte of answer (a pod killed or stopping at that
instant, a keep-alive connection the pod closed just as it was reused) never reached the
application or got nothing from it, so replaying an idempotent request is safe: that is
the part of failures a router can avoid, and Envoy/Istio's default retry policy avoids
it the same way (connect-failure, refused-stream; 2 attempts). Application answers (a 500
from a bad release), timeouts and non-idempotent requests are never retried: those are
the release's failures and the measurement must see them. ``RouterRetries.none()`` turns
retries off for runs that want a bare kube-proxy-like path.
"""

from __future__ import annotations

import csv
import io
import os
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from rolloutlab.errors import RouterError
from rolloutlab.live.baseline import BASELINE
from rolloutlab.live.child_processes import terminate
from rolloutlab.live.haproxy_routes import (
    MIRROR_MAP,
    ROUTES_DIR,
    USER_ROUTE_RULE,
    RouteTable,
    render_route_rules,
    render_shadow_rules,
)

HAPROXY = "/usr/sbin/haproxy"
NO_BACKEND = "be_none"
SHARED_BACKEND = "be_app"
SLOT_PLACEHOLDER_PORT = 1  # a disabled slot's address; never contacted (maintenance)


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class HealthCheck:
    """HAProxy's active health check of each server (``inter``/``timeout check``/``rise``/``fall``).

    ``timeout_s`` bounds the wait for an answer: a stopped process still accepts TCP
    connections (the kernel does), so only the read timeout notices it."""

    interval_s: float = 0.2
    timeout_s: float = 0.25
    rise: int = 1
    fall: int = 2
    path: str = "/healthz/ready"

    def __post_init__(self) -> None:
        if not (self.interval_s > 0 and self.timeout_s > 0 and self.rise >= 1 and self.fall >= 1):
            raise ValueError(f"impossible health check {self}")


@dataclass(frozen=True)
class RouterRetries:
    """What the router retries (see the module docstring for why these defaults)."""

    retries: int = 2
    retry_on: tuple[str, ...] = ("conn-failure", "empty-response")
    redispatch_every: int = 1  # option redispatch <n>: every n-th retry goes to another server
    idempotent_only: bool = True  # L7 retries for GET/HEAD only

    @classmethod
    def none(cls) -> "RouterRetries":
        return cls(retries=0, retry_on=("none",), redispatch_every=0)


@dataclass(frozen=True)
class RouterTimeouts:
    connect_s: float = 1.0
    client_s: float = 30.0
    server_s: float = 30.0  # waiting for a response; a request to a stopped pod waits this long
    keep_alive_s: float = 10.0
    http_request_s: float = 10.0


@dataclass(frozen=True)
class RouterSettings:
    check: HealthCheck = field(default_factory=HealthCheck)
    retries: RouterRetries = field(default_factory=RouterRetries)
    timeouts: RouterTimeouts = field(default_factory=RouterTimeouts)
    threads: int = 1  # the local machine runs pods and load too; one thread carries thousands of rps
    maxconn: int = 4096
    access_log: bool = False  # one line per request on HAProxy's stdout (router.log in the run dir)


class Layout(str, Enum):
    SHARED = "shared"  # one backend with both versions' pods
    ROUTED = "routed"  # one backend per version, chosen per request


@dataclass(frozen=True)
class RouterLayout:
    """Which backends exist and how many server slots each version's pods may use."""

    layout: Layout
    slots: Mapping[str, int]  # role name ("stable"/"canary") -> server slots
    routes: RouteTable | None = None  # a canary's managed routes (routed layout only)

    @property
    def mirrors(self) -> bool:
        """Whether the router has a shadow frontend (a mirror route may be set)."""
        return self.routes is not None and self.routes.mirrors

    def backend_of(self, role: str) -> str:
        return SHARED_BACKEND if self.layout is Layout.SHARED else f"be_{role}"

    def servers(self, role: str) -> list[str]:
        return [slot_name(role, i) for i in range(self.slots[role])]


def slot_name(role: str, index: int) -> str:
    return f"{role}-{index}"


@dataclass(frozen=True)
class RouterFiles:
    """Where one run's router lives (all inside the run's temporary directory)."""

    directory: Path

    @property
    def config(self) -> Path:
        return self.directory / "haproxy.cfg"

    @property
    def socket(self) -> Path:
        return self.directory / "admin.sock"

    @property
    def routes_map(self) -> Path:
        return self.directory / "routes.map"

    @property
    def weights_map(self) -> Path:
        return self.directory / "weights.map"

    @property
    def log(self) -> Path:
        return self.directory / "router.log"

    def route_map(self, name: str) -> Path:
        return self.directory / ROUTES_DIR / name


# --------------------------------------------------------------------------- configuration (pure)


def _ms(seconds: float) -> str:
    return f"{max(1, round(seconds * 1000))}ms"


def render_config(layout: RouterLayout, settings: RouterSettings, files: RouterFiles,
                  user_port: int, preview_port: int, shadow_port: int = 0) -> str:
    """The whole haproxy.cfg of one run (``shadow_port``: where fe_shadow listens, for a
    layout that mirrors)."""
    t, r, c = settings.timeouts, settings.retries, settings.check
    lines = [
        "# generated by rolloutlab's local backend; changed at runtime only (stats socket), never reloaded",
        "global",
        f"    stats socket {files.socket} mode 600 level admin",
        "    stats timeout 30s",
        f"    nbthread {settings.threads}",
        f"    maxconn {settings.maxconn}",
        "    hard-stop-after 3s",
    ]
    if settings.access_log:
        lines.append("    log stdout format raw local0")
    lines += [
        "",
        "defaults",
        "    mode http",
        *(["    log global", "    option httplog"] if settings.access_log else ["    no log"]),
        f"    timeout connect {_ms(t.connect_s)}",
        f"    timeout client {_ms(t.client_s)}",
        f"    timeout server {_ms(t.server_s)}",
        f"    timeout http-keep-alive {_ms(t.keep_alive_s)}",
        f"    timeout http-request {_ms(t.http_request_s)}",
        f"    timeout check {_ms(c.timeout_s)}",
        f"    retries {r.retries}",
        f"    retry-on {' '.join(r.retry_on)}",
        f"    option redispatch {r.redispatch_every}" if r.redispatch_every > 0 else "    no option redispatch",
        # fastinter: while a server's state is changing (going down), check faster
        f"    default-server check inter {_ms(c.interval_s)} fastinter {_ms(c.interval_s / 2)} "
        f"downinter {_ms(c.interval_s)} rise {c.rise} fall {c.fall}",
        "",
    ]
    retry_rule = ["    http-request disable-l7-retry unless METH_GET"] if r.idempotent_only else []
    if layout.layout is Layout.SHARED:
        lines += [
            "frontend fe_user",
            f"    bind 127.0.0.1:{user_port}",
            *retry_rule,
            f"    default_backend {SHARED_BACKEND}",
            "",
            "frontend fe_preview",
            f"    bind 127.0.0.1:{preview_port}",
            f"    default_backend {NO_BACKEND}",
            "",
        ]
        lines += _backend(SHARED_BACKEND, [s for role in layout.slots for s in layout.servers(role)], c)
    else:
        routes = layout.routes
        route_rules = render_route_rules(routes, files.directory) if routes is not None else []
        lines += [
            "frontend fe_user",
            f"    bind 127.0.0.1:{user_port}",
            *retry_rule,
            *route_rules,
            # the canary weight: one draw per request against the weights map (exact in
            # expectation, like a mesh's weighted route); rand(100) is 0..99
            f"    http-request set-var(txn.canary_weight) str(canary),map_str_int({files.weights_map},0)",
            "    http-request set-var(txn.draw) rand(100)",
            *(_baseline_rules(files)[:1] if BASELINE in layout.slots else []),
            *([USER_ROUTE_RULE] if routes is not None else []),  # a header route wins over the weight
            "    use_backend be_canary if { var(txn.draw),sub(txn.canary_weight) -m int lt 0 }",
            *(_baseline_rules(files)[1:] if BASELINE in layout.slots else []),
            f"    use_backend %[str(active),map({files.routes_map},be_stable)]",
            "",
            "frontend fe_preview",
            f"    bind 127.0.0.1:{preview_port}",
            *retry_rule,
            f"    use_backend %[str(preview),map({files.routes_map},{NO_BACKEND})]",
            "",
        ]
        if layout.mirrors:
            if not shadow_port:
                raise ValueError("a layout that mirrors needs the shadow frontend's port")
            lines += ["frontend fe_shadow  # the copies nginx mirrors: to the canary, or answered 204 at once",
                      f"    bind 127.0.0.1:{shadow_port}", *retry_rule, *route_rules,
                      *render_shadow_rules(files.directory), ""]
        for role in layout.slots:
            lines += _backend(f"be_{role}", layout.servers(role), c)
    lines += [f"backend {NO_BACKEND}", "    # no server: HAProxy answers 503", ""]
    return "\n".join(lines) + "\n"


def _baseline_rules(files: RouterFiles) -> list[str]:
    # a canary's baseline deployment (live.baseline): the next ``baseline`` draws after the
    # canary's, while it has a server up (its pods start with the canary's, not always as fast)
    return [f"    http-request set-var(txn.baseline_weight) str({BASELINE}),map_str_int({files.weights_map},0)",
            f"    use_backend be_{BASELINE} if {{ var(txn.draw),sub(txn.canary_weight),sub(txn.baseline_weight) "
            f"-m int lt 0 }} {{ nbsrv(be_{BASELINE}) gt 0 }}"]


def _backend(name: str, servers: Sequence[str], check: HealthCheck) -> list[str]:
    return [
        f"backend {name}",
        "    balance roundrobin",
        f"    option httpchk GET {check.path}",
        "    http-check expect status 200",
        *(f"    server {s} 127.0.0.1:{SLOT_PLACEHOLDER_PORT} disabled weight 1" for s in servers),
        "",
    ]


def render_map(entries: Mapping[str, str | int]) -> str:
    return "".join(f"{k} {v}\n" for k, v in entries.items())


# --------------------------------------------------------------------------- runtime API


class RuntimeAPI:
    """The stats socket in non-interactive mode: one command per connection."""

    def __init__(self, path: Path, timeout_s: float = 2.0) -> None:
        self.path = path
        self.timeout_s = timeout_s

    def command(self, text: str) -> str:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(self.timeout_s)
            try:
                sock.connect(str(self.path))
                sock.sendall(text.encode() + b"\n")
                chunks = []
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
            except OSError as error:
                raise RouterError(f"HAProxy runtime API ({self.path}): {text!r} failed: {error}") from None
        return b"".join(chunks).decode(errors="replace")

    def _silent(self, text: str) -> None:
        """A command that answers nothing when it worked."""
        answer = self.command(text).strip()
        if answer:
            raise RouterError(f"HAProxy refused {text!r}: {answer}")

    def set_server_addr(self, backend: str, server: str, port: int, host: str = "127.0.0.1") -> None:
        text = f"set server {backend}/{server} addr {host} port {port}"
        answer = self.command(text).strip()
        if "changed" not in answer and "no need to change" not in answer:
            raise RouterError(f"HAProxy refused {text!r}: {answer}")

    def set_server_state(self, backend: str, server: str, state: str) -> None:
        if state not in ("ready", "drain", "maint"):
            raise ValueError(f"unknown server state {state!r}")
        self._silent(f"set server {backend}/{server} state {state}")

    def set_map(self, path: Path, key: str, value: str | int) -> None:
        self._silent(f"set map {path} {key} {value}")

    def replace_map(self, path: Path, entries: Sequence[tuple[str, str]]) -> None:
        """Replace a map's whole contents at once (a transaction: ``prepare map``, ``add
        map @<version>`` per entry, ``commit map``), so a request sees the old contents
        or the new, never a mix."""
        answer = self.command(f"prepare map {path}").strip()
        if not answer.startswith("New version created:"):
            raise RouterError(f"HAProxy refused 'prepare map {path}': {answer}")
        version = answer.rsplit(":", 1)[1].strip()
        for key, value in entries:
            self._silent(f"add map @{version} {path} {cli_word(key)} {cli_word(value)}")
        self._silent(f"commit map @{version} {path}")

    def show_map(self, path: Path) -> dict[str, str]:
        out = {}
        for line in self.command(f"show map {path}").splitlines():
            parts = line.split()
            if len(parts) == 3:  # "<ref> <key> <value>"
                out[parts[1]] = parts[2]
        return out

    def show_stat(self) -> list[dict[str, str]]:
        text = self.command("show stat")
        if not text.startswith("# "):
            raise RouterError(f"HAProxy 'show stat' answered {text[:200]!r}")
        rows = csv.DictReader(io.StringIO(text[2:]))
        return [{k: v for k, v in row.items() if k} for row in rows if row.get("pxname")]


def cli_word(text: str) -> str:
    """One argument of a runtime API command: the CLI splits words at spaces and commands
    at ';', and reads a backslash as an escape."""
    if not text or any(c in text for c in "\r\n\0"):
        raise RouterError(f"{text!r} cannot be sent to HAProxy's runtime API (empty, or a line break)")
    return "".join("\\" + c if c in "\\ ;\t" else c for c in text)


# --------------------------------------------------------------------------- statistics


def _int(value: str | None) -> int:
    try:
        return int(value) if value else 0
    except ValueError:
        return 0


@dataclass(frozen=True)
class ProxyStats:
    """One row of ``show stat``: a frontend, a backend or a server.

    ``responses_5xx`` on a frontend counts every 5xx sent to users; on a server, the
    answers that server sent (the app's 500s). The difference is what the router answered
    itself: a 503 when no server is up or a connection failed and was not retried (the
    tests check this split against the load generator's count of answers without
    ``X-Version``)."""

    proxy: str
    name: str  # FRONTEND, BACKEND or the server (slot) name
    status: str  # UP, DOWN, MAINT, OPEN, "DOWN 1/2" (going down)...
    weight: int
    current_sessions: int
    total_sessions: int
    requests: int  # frontends: HTTP requests received
    responses_2xx: int
    responses_5xx: int
    connection_errors: int  # econ
    response_errors: int  # eresp
    retries: int  # wretr
    redispatches: int  # wredis
    check_failures: int  # chkfail
    check_downs: int  # chkdown: UP -> DOWN transitions
    downtime_s: int
    address: str  # servers: "127.0.0.1:port"

    @property
    def kind(self) -> str:
        return self.name if self.name in ("FRONTEND", "BACKEND") else "server"

    @classmethod
    def from_row(cls, row: Mapping[str, str]) -> "ProxyStats":
        return cls(
            proxy=row["pxname"], name=row["svname"], status=row.get("status", ""), weight=_int(row.get("weight")),
            current_sessions=_int(row.get("scur")), total_sessions=_int(row.get("stot")),
            requests=_int(row.get("req_tot")), responses_2xx=_int(row.get("hrsp_2xx")),
            responses_5xx=_int(row.get("hrsp_5xx")), connection_errors=_int(row.get("econ")),
            response_errors=_int(row.get("eresp")), retries=_int(row.get("wretr")),
            redispatches=_int(row.get("wredis")), check_failures=_int(row.get("chkfail")),
            check_downs=_int(row.get("chkdown")), downtime_s=_int(row.get("downtime")),
            address=row.get("addr", ""),
        )


@dataclass(frozen=True)
class RouterStats:
    """A snapshot of every frontend, backend and server counter."""

    at: float  # time.monotonic() of the snapshot
    rows: tuple[ProxyStats, ...]

    def frontend(self, name: str) -> ProxyStats:
        return self._one(name, "FRONTEND")

    def backend(self, name: str) -> ProxyStats:
        return self._one(name, "BACKEND")

    def servers(self, backend: str | None = None) -> list[ProxyStats]:
        return [r for r in self.rows if r.kind == "server" and (backend is None or r.proxy == backend)]

    def _one(self, proxy: str, name: str) -> ProxyStats:
        for row in self.rows:
            if row.proxy == proxy and row.name == name:
                return row
        raise KeyError(f"no {name.lower()} {proxy!r} in the router's statistics")

    @property
    def retries(self) -> int:
        return sum(r.retries for r in self.rows if r.name == "BACKEND")

    @property
    def redispatches(self) -> int:
        return sum(r.redispatches for r in self.rows if r.name == "BACKEND")

    @property
    def proxy_5xx(self) -> int:
        """5xx answers the router produced itself (no server, connection failures after
        retries), not the application's: frontends' 5xx minus the servers' 5xx."""
        sent = sum(r.responses_5xx for r in self.rows if r.name == "FRONTEND")
        from_servers = sum(r.responses_5xx for r in self.servers())
        return max(0, sent - from_servers)


# --------------------------------------------------------------------------- the process

Spawn = Callable[..., subprocess.Popen]


def free_port() -> int:
    """A port nothing listens on now (the kernel's choice). Another process may take it
    before we bind it; the router retries its start with new ports when that happens."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class HAProxyProcess:
    """One HAProxy in the foreground (``-db``), started from a generated configuration."""

    def __init__(self, files: RouterFiles, layout: RouterLayout, settings: RouterSettings,
                 routes: Mapping[str, str], weights: Mapping[str, int], *, binary: str = HAPROXY,
                 spawn: Spawn = subprocess.Popen) -> None:
        self.files = files
        self.layout = layout
        self.settings = settings
        self.binary = binary
        self._spawn = spawn
        self._routes = dict(routes)
        self._weights = dict(weights)
        self.process: subprocess.Popen | None = None
        self.user_port = 0
        self.preview_port = 0
        self.shadow_port = 0  # fe_shadow, when the layout mirrors
        self.api = RuntimeAPI(files.socket)
        self.started_s: float | None = None  # wall seconds from spawn to a working runtime API

    @property
    def ports(self) -> tuple[int, int, int]:
        """(user, preview, shadow) ports; shadow 0 when the layout does not mirror."""
        return self.user_port, self.preview_port, self.shadow_port

    def start(self, ports: tuple[int, ...] | None = None, attempts: int = 3, timeout_s: float = 5.0) -> None:
        """Start on ``ports`` (user, preview[, shadow]) if given and still free (a restart
        keeps the users' address), else on free ports."""
        if not os.path.exists(self.binary):
            raise RouterError(f"HAProxy not found at {self.binary} (Debian: apt-get install haproxy)")
        last = ""
        for attempt in range(attempts):
            if attempt == 0 and ports is not None:
                self.user_port, self.preview_port, *rest = ports
                self.shadow_port = (rest[0] if rest else 0) or (free_port() if self.layout.mirrors else 0)
            else:
                self.user_port, self.preview_port = free_port(), free_port()
                self.shadow_port = free_port() if self.layout.mirrors else 0
            self._write_files()
            check = subprocess.run([self.binary, "-c", "-q", "-f", str(self.files.config)],
                                   capture_output=True, text=True, timeout=10)
            if check.returncode != 0:
                raise RouterError(f"HAProxy rejects the generated configuration {self.files.config}:\n"
                                  f"{check.stdout}{check.stderr}")
            begun = time.monotonic()
            log = open(self.files.log, "ab")
            try:
                self.process = self._spawn([self.binary, "-db", "-f", str(self.files.config)],
                                           stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            finally:
                log.close()
            if self._wait_serving(begun + timeout_s):
                self.started_s = time.monotonic() - begun
                return
            last = self.files.log.read_text(errors="replace")[-2000:]
            self.stop()
            if "bind" not in last.lower():
                break  # not a port race: retrying will not help
        raise RouterError(f"HAProxy did not start: {last.strip() or 'no output'}")

    def _write_files(self) -> None:
        self.files.routes_map.write_text(render_map(self._routes))
        self.files.weights_map.write_text(render_map(self._weights))
        if self.layout.routes is not None:
            # empty: the routes in force are put in through the runtime API once HAProxy
            # runs (a map file cannot hold a key with a space; the CLI can)
            self.files.route_map(MIRROR_MAP).parent.mkdir(exist_ok=True)
            for name in self.layout.routes.map_names():
                self.files.route_map(name).write_text("")
        self.files.config.write_text(render_config(self.layout, self.settings, self.files,
                                                   self.user_port, self.preview_port, self.shadow_port))

    def _wait_serving(self, deadline: float) -> bool:
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                return False
            if self.files.socket.exists():
                try:
                    self.api.command("show info")
                    return True
                except RouterError:
                    pass
            time.sleep(0.01)
        return False

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout_s: float = 3.0) -> None:
        """Hard stop (SIGTERM): the run is over, in-flight requests do not matter any more."""
        process, self.process = self.process, None
        if process is not None:
            terminate(process, timeout_s)

    def stats(self) -> RouterStats:
        return RouterStats(time.monotonic(), tuple(ProxyStats.from_row(r) for r in self.api.show_stat()))

