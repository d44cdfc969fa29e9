"""The services the service under test calls, run by the local backend: each a demo
service process of its own on 127.0.0.1, which the release's pods call on every app
request (``DEMO_DEPENDENCIES``), so a failing or slow dependency really fails or slows
the requests of both versions, as far as the scenario's call graph says.

A scenario's ``dependencies:`` edges below the service under test (``sim.dependencies``)
become ``DependencySpec``s, started callees first so each caller knows its callees'
addresses. The simulator models these services as capacity (ready pods against an M/M/c
queue); here each is one process whose failures are its baseline and what is injected
into it (``set_dependency_fault``): overload of a dependency is not reproduced.

``DependencyServices`` is a part of ``live.local.LocalBackend`` (a mixin): processes are
spawned on the backend's supervisor thread (so they die with it) and stopped by ``close``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rolloutlab.errors import LocalBackendError
from rolloutlab.live.local_pods import http_request, listening_port, send_signal

START_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class Call:
    """One edge of the call graph from a caller's side (``demo_faults.Dependency`` without its url)."""

    callee: str
    calls_per_request: float = 1.0
    error_propagation: float = 1.0
    timeout_s: float = 5.0


@dataclass(frozen=True)
class DependencySpec:
    """A service to start: its name, its demo-service environment (``DEMO_*``), the
    services it calls in turn."""

    name: str
    env: dict[str, str] = field(default_factory=dict)
    calls: tuple[Call, ...] = ()


@dataclass
class DependencyProcess:
    spec: DependencySpec
    process: subprocess.Popen
    log_path: Path
    port: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"


def dependencies_env(calls: tuple[Call, ...], running: dict[str, DependencyProcess]) -> dict[str, str]:
    """``DEMO_DEPENDENCIES`` for a caller of ``calls`` (empty without calls)."""
    if not calls:
        return {}
    items = []
    for call in calls:
        if call.callee not in running:
            raise LocalBackendError(f"dependency {call.callee!r} is not running (start callees first)")
        items.append({"name": call.callee, "url": running[call.callee].url, "calls_per_request": call.calls_per_request,
                      "error_propagation": call.error_propagation, "timeout_s": call.timeout_s})
    return {"DEMO_DEPENDENCIES": json.dumps(items)}


class DependencyServices:
    """Dependency processes beside the pods (see the module docstring)."""

    def _init_dependencies(self) -> None:
        self._dependencies: dict[str, DependencyProcess] = {}
        self._sut_calls: tuple[Call, ...] = ()
        self._dependency_dir: Path | None = None

    def start_dependencies(self, services: list[DependencySpec], sut_calls: tuple[Call, ...]) -> dict[str, str]:
        """Start ``services`` (callees before their callers) and make the release's pods
        call ``sut_calls``; before ``ensure``. Returns name -> url."""
        with self._lock:
            self._check_open()
            if self._pods:
                raise LocalBackendError("start_dependencies() goes before ensure(): pods already run without them")
            if self._dependency_dir is None:
                self._dependency_dir = Path(tempfile.mkdtemp(prefix="rolloutlab-deps-"))
            self._start_supervisor()
        for spec in services:
            self._start_dependency(spec)
        with self._lock:
            self._sut_calls = tuple(sut_calls)
            dependencies_env(self._sut_calls, self._dependencies)  # every callee is up
        return {name: d.url for name, d in self._dependencies.items()}

    def _start_dependency(self, spec: DependencySpec) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DEMO_")}
        env.update(spec.env)
        env.update(dependencies_env(spec.calls, self._dependencies))
        env.update({"DEMO_VERSION": spec.name, "DEMO_HOST": "127.0.0.1", "DEMO_PORT": "0", "PYTHONUNBUFFERED": "1",
                    "DEMO_FAULT_TOKEN": self.fault_token})
        if self._seed is not None:
            env["DEMO_SEED"] = str(self._seed * 1000 + 900 + len(self._dependencies))
        log_path = self._dependency_dir / f"{spec.name}.log"

        def spawn() -> subprocess.Popen:
            with open(log_path, "wb") as out:
                return self._spawn([self.python, str(self.demo_service)], env=env, stdout=out,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        running = DependencyProcess(spec, self._call_in_supervisor(spawn), log_path)
        self._dependencies[spec.name] = running
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline and running.process.poll() is None:
            running.port = running.port or listening_port(log_path)
            if running.port is not None:
                try:
                    if http_request("GET", running.port, "/healthz/ready", 1.0)[0] == 200:
                        self._event("dependency", None, f"{spec.name} serves at {running.url}")
                        return
                except OSError:
                    pass
            time.sleep(0.05)
        raise LocalBackendError(f"dependency {spec.name} did not start serving within {START_TIMEOUT_S:g}s "
                                f"(exit {running.process.poll()}): {log_path.read_text(errors='replace')[-500:]}")

    def dependency_env(self) -> dict[str, str]:
        """The release pods' ``DEMO_DEPENDENCIES`` (empty when they call nothing)."""
        return dependencies_env(self._sut_calls, self._dependencies)

    def dependency_urls(self) -> dict[str, str]:
        return {name: d.url for name, d in self._dependencies.items()}

    def set_dependency_fault(self, name: str, **settings: Any) -> None:
        """POST fault fields to a dependency's process (``injected_error_rate``, ...)."""
        running = self._dependencies.get(name)
        if running is None:
            raise LocalBackendError(f"no dependency {name!r} runs here (running: {sorted(self._dependencies)})")
        status, text = http_request("POST", running.port, "/fault", 2.0, json.dumps(settings).encode(),
                                    token=self.fault_token)
        if status != 200:
            raise LocalBackendError(f"dependency {name} refused the fault {settings} ({status}): "
                                    f"{text.decode(errors='replace')}")
        self._event("fault", name, f"{settings}")

    def _stop_dependencies(self) -> None:
        for running in self._dependencies.values():
            if running.process.poll() is None:
                send_signal(running.process, signal.SIGKILL)
        for running in self._dependencies.values():
            try:
                running.process.wait(5)
            except subprocess.TimeoutExpired:
                pass
        self._dependencies = {}
        if self._dependency_dir is not None and not self.keep_run_dir:
            shutil.rmtree(self._dependency_dir, ignore_errors=True)
            self._dependency_dir = None


__all__ = ["Call", "DependencyProcess", "DependencyServices", "DependencySpec", "dependencies_env"]
