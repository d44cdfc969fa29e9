"""nginx as the local backend's mirror, for real: Debian's nginx in front of two small
upstream servers on 127.0.0.1 (a "user" one that answers, a "shadow" one that records the
copies it gets and fails them all). The HAProxy half of mirroring is tests/test_routes_live.py.
"""

from __future__ import annotations

import http.client
import http.server
import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest

from rolloutlab.errors import RouterError
from rolloutlab.live.nginx import (
    MIRROR_LOCATION,
    NGINX,
    SHADOW_HEADER,
    MirrorFiles,
    MirrorSettings,
    NginxProcess,
    render_nginx_config,
)
from tests.outside_systems import needs_nginx

pytestmark = needs_nginx  # from tests/outside_systems.py


# --------------------------------------------------------------------------- upstreams


@dataclass
class Upstream:
    """A small HTTP server that records what it got and answers ``status``."""

    status: int
    version: str
    seen: list[dict] = field(default_factory=list)
    server: http.server.ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        return self.server.server_address[1]


@contextmanager
def upstream(status: int, version: str) -> Iterator[Upstream]:
    state = Upstream(status, version)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            state.seen.append({"method": self.command, "path": self.path, "body": body.decode(),
                               "headers": {k.lower(): v for k, v in self.headers.items()}})
            out = json.dumps({"from": state.version}).encode()
            self.send_response(state.status)
            self.send_header("Content-Length", str(len(out)))
            self.send_header("X-Version", state.version)
            self.end_headers()
            self.wfile.write(out)

        do_GET = do_POST = do_PUT = _any

        def log_message(self, *args) -> None:
            pass

    state.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=state.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.server.shutdown()
        state.server.server_close()
        thread.join(5)


def request(port: int, method: str = "GET", path: str = "/", body: bytes | None = None,
            headers: dict | None = None) -> tuple[int, dict, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def until(predicate, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


@pytest.fixture
def chain(tmp_path) -> Iterator[tuple[NginxProcess, Upstream, Upstream]]:
    with upstream(200, "v1") as user, upstream(500, "v2") as shadow:
        nginx = NginxProcess(MirrorFiles(tmp_path), MirrorSettings(), user.port, shadow.port)
        nginx.start()
        try:
            yield nginx, user, shadow
        finally:
            process = nginx.process
            nginx.stop()
            assert process is None or process.poll() is not None, "nginx left running"


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("settings", [MirrorSettings(), MirrorSettings(client_keepalive=True, upstream_keepalive=0)],
                         ids=["defaults", "client keep-alive, no upstream keep-alive"])
def test_generated_configuration_is_valid_nginx(tmp_path, settings):
    """nginx itself accepts the generated configuration, which keeps every path in the run
    directory (nothing under /etc or /var)."""
    files = MirrorFiles(tmp_path)
    text = render_nginx_config(files, settings, 18101, 18102, 18103)
    files.config.write_text(text)
    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (files.temp / kind).mkdir(parents=True)
    check = subprocess.run([NGINX, "-t", "-q", "-e", str(files.log), "-p", str(tmp_path), "-c", str(files.config)],
                           capture_output=True, text=True, timeout=10)
    assert check.returncode == 0, check.stdout + check.stderr
    paths = [w.rstrip(";") for w in text.split() if w.startswith("/") and w.rstrip(";") not in ("/", MIRROR_LOCATION)]
    assert paths and all(p.startswith(str(tmp_path)) for p in paths), paths


def test_every_request_is_forwarded_and_copied_with_the_shadow_header(chain):
    """The user gets the user upstream's answer; the shadow upstream gets a copy of each
    request (method, path and query, headers, body) marked X-Rolloutlab-Shadow: 1, and
    its failing answer never reaches the user."""
    nginx, user, shadow = chain
    status, headers, body = request(nginx.port, "GET", "/a?b=1", headers={"X-User-Id": "u7", "Cookie": "c=1; d=2"})
    assert (status, headers["x-version"]) == (200, "v1")
    status, headers, body = request(nginx.port, "POST", "/orders", body=b'{"n": 1}',
                                    headers={"Content-Type": "application/json"})
    assert (status, headers["x-version"], json.loads(body)) == (200, "v1", {"from": "v1"})
    assert until(lambda: len(shadow.seen) == 2, 3.0), shadow.seen
    get, post = sorted(shadow.seen, key=lambda s: s["method"])
    assert (get["method"], get["path"], get["headers"]["x-user-id"], get["headers"]["cookie"]) == \
        ("GET", "/a?b=1", "u7", "c=1; d=2")
    assert (post["method"], post["path"], post["body"]) == ("POST", "/orders", '{"n": 1}')
    assert all(s["headers"].get(SHADOW_HEADER.lower()) == "1" for s in shadow.seen)
    assert [s["method"] for s in user.seen] == ["GET", "POST"]
    assert all(SHADOW_HEADER.lower() not in s["headers"] for s in user.seen)


def test_a_user_cannot_pass_for_a_copy_or_reach_the_mirror_location(chain):
    """A user's own X-Rolloutlab-Shadow is dropped before the user upstream, and the
    internal mirror location answers users 404."""
    nginx, user, shadow = chain
    request(nginx.port, headers={SHADOW_HEADER: "1"})
    assert until(lambda: len(user.seen) == 1, 3.0)
    assert SHADOW_HEADER.lower() not in user.seen[0]["headers"]
    status, _, _ = request(nginx.port, path=MIRROR_LOCATION)
    assert status == 404


def test_a_port_another_process_holds_is_given_up_for_a_free_one(tmp_path):
    """nginx cannot bind port 0: asked for a port that is taken, it starts on another."""
    with upstream(200, "v1") as user, upstream(204, "v2") as shadow, \
            socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        taken = holder.getsockname()[1]
        nginx = NginxProcess(MirrorFiles(tmp_path), MirrorSettings(), user.port, shadow.port)
        try:
            nginx.start(port=taken)
            assert nginx.port != taken and nginx.running
            assert request(nginx.port)[0] == 200
            assert "Address already in use" in (tmp_path / "nginx.log").read_text()
        finally:
            nginx.stop()
        assert not nginx.running


def test_a_missing_nginx_is_named(tmp_path):
    """Without the binary, start says what to install."""
    with pytest.raises(RouterError, match="apt-get install nginx"):
        NginxProcess(MirrorFiles(tmp_path), MirrorSettings(), 1, 2, binary=str(tmp_path / "no-nginx")).start()
