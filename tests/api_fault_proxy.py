"""A fault-injecting HTTP proxy between the Kubernetes client and a real API server.

It forwards every request to the API server and, by a deterministic schedule, answers
some writes with an error instead (409 Conflict, 429 Too Many Requests, 500, 503, a
connection closed with no answer before the write reached the server, or after it did:
"lost_answer", the write happened but the client never heard) and cuts watch streams short. The backend under test
sees exactly what a flaky cluster looks like on the wire; nothing is mocked inside it.
"""

from __future__ import annotations

import http.client
import json
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

FAULTS = ("409", "429", "500", "lost_answer", "503", "drop")


@dataclass
class FaultPlan:
    every: int = 3  # every n-th write gets a fault
    faults: tuple[str, ...] = FAULTS  # cycled in this order
    watch_cut_s: float = 0.3  # watches are cut after this long
    injected: dict = field(default_factory=dict)  # fault -> count
    writes: int = 0
    watches_cut: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_write_fault(self) -> str | None:
        with self.lock:
            self.writes += 1
            if self.writes % self.every:
                return None
            fault = self.faults[(self.writes // self.every - 1) % len(self.faults)]
            self.injected[fault] = self.injected.get(fault, 0) + 1
            return fault


class FaultProxy:
    def __init__(self, upstream: str, plan: FaultPlan, context: ssl.SSLContext | None = None) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname, parts.port)
        self.context = context
        self.plan = plan
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args):  # quiet
                pass

            def _forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                write = self.command not in ("GET", "HEAD")
                fault = proxy.plan.next_write_fault() if write else None
                if write:
                    if fault == "drop":
                        self.connection.close()  # no answer at all
                        return
                    if fault is not None and fault.isdigit():
                        self._status(int(fault))
                        return
                if proxy.context is not None:
                    upstream = http.client.HTTPSConnection(*proxy.upstream, timeout=60, context=proxy.context)
                else:
                    upstream = http.client.HTTPConnection(*proxy.upstream, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                upstream.request(self.command, self.path, body=body, headers=headers)
                answer = upstream.getresponse()
                if write and fault == "lost_answer":
                    answer.read()
                    upstream.close()
                    self.connection.close()
                    return
                watching = "watch=true" in self.path or "watch=1" in self.path
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                if not watching:
                    data = answer.read()
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    upstream.close()
                    return
                self.end_headers()
                deadline = time.monotonic() + proxy.plan.watch_cut_s
                upstream.sock.settimeout(0.05)
                while time.monotonic() < deadline:
                    try:
                        chunk = answer.read1(65536)
                    except (TimeoutError, OSError):
                        continue
                    if not chunk:
                        break
                    self.wfile.write(chunk)
                    self.wfile.flush()
                with proxy.plan.lock:
                    proxy.plan.watches_cut += 1
                upstream.close()
                self.connection.close()

            def _status(self, code: int):
                reason = {409: "Conflict", 429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable"}[code]
                message = ("Operation cannot be fulfilled: the object has been modified; please apply your changes "
                           "to the latest version and try again") if code == 409 else f"injected {code}"
                data = json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message,
                                   "reason": reason, "code": code}).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if code == 429:
                    self.send_header("Retry-After", "0")
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "FaultProxy":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
