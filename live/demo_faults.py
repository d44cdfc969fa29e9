"""What the demo service is told: its faults (changeable at runtime through ``POST /fault``)
and the configuration it starts with (environment only), with the checks that name a bad
setting. ``live/demo_service.py`` documents every variable and field.

Ships beside ``demo_service.py`` (the Kubernetes ConfigMap holds both files:
``live.kube_objects.demo_service_files``), so standard library only.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields, replace
from typing import Any, Mapping
from urllib.parse import urlsplit

JITTER_KINDS = ("exponential", "uniform")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_RATES = ("error_rate", "flag_error_rate", "ready_error_rate", "injected_error_rate", "load_error_rate")


@dataclass(frozen=True, slots=True)
class Faults:
    """What is wrong with this version right now; every field can change at runtime.

    ``error_rate`` and the leak are the version's own (its build); ``injected_*`` are done
    to it from outside for a while (a scenario's ``dependency_failure`` or
    ``latency_injection`` on this service); ``load_error_rate`` is a defect that shows only
    under full load, which the backend that routes the traffic switches on and off
    (``full_load_only``). Independent causes: a request survives only if none fails it."""

    error_rate: float = 0.0
    flag_error_rate: float = 0.0
    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    latency_jitter: str = "exponential"
    leak_after_s: float = 0.0
    leak_error_rate_per_min: float = 0.0
    leak_latency_ms_per_min: float = 0.0
    ready: bool | None = None
    ready_error_rate: float = 0.0
    live: bool = True
    injected_error_rate: float = 0.0
    injected_latency_ms: float = 0.0
    load_error_rate: float = 0.0

    def __post_init__(self) -> None:
        for name in _RATES:
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        for name in ("latency_ms", "latency_jitter_ms", "leak_after_s", "leak_error_rate_per_min",
                     "leak_latency_ms_per_min", "injected_latency_ms"):
            value = getattr(self, name)
            if not (value >= 0.0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")
        if self.latency_jitter not in JITTER_KINDS:
            raise ValueError(f"latency_jitter must be one of {JITTER_KINDS}, got {self.latency_jitter!r}")

    def leaked_for_min(self, uptime_s: float) -> float:
        return max(0.0, uptime_s - self.leak_after_s) / 60.0

    def effective_error_rate(self, uptime_s: float) -> float:
        own = min(1.0, self.error_rate + self.leak_error_rate_per_min * self.leaked_for_min(uptime_s))
        # as sim.traffic.combine_failure: 1 - prod(1 - p_i)
        return 1.0 - (1.0 - own) * (1.0 - self.injected_error_rate) * (1.0 - self.load_error_rate)

    def effective_latency_ms(self, uptime_s: float) -> float:
        return self.latency_ms + self.injected_latency_ms + self.leak_latency_ms_per_min * self.leaked_for_min(uptime_s)

    def updated(self, changes: Mapping[str, Any]) -> "Faults":
        """These faults with ``changes`` (a decoded JSON object) applied; ValueError names a bad field."""
        if not isinstance(changes, Mapping):
            raise ValueError("the fault body must be a JSON object")
        known = {f.name: f for f in fields(self)}
        unknown = sorted(set(changes) - set(known))
        if unknown:
            raise ValueError(f"unknown fault fields {unknown}; known: {sorted(known)}")
        typed: dict[str, Any] = {}
        for name, value in changes.items():
            if name == "ready":
                if value is not None and not isinstance(value, bool):
                    raise ValueError("ready must be true, false or null")
            elif name == "live":
                if not isinstance(value, bool):
                    raise ValueError("live must be true or false")
            elif name == "latency_jitter":
                if not isinstance(value, str):
                    raise ValueError(f"latency_jitter must be one of {JITTER_KINDS}")
            else:
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise ValueError(f"{name} must be a number, got {value!r}")
                value = float(value)
            typed[name] = value
        return replace(self, **typed)


@dataclass(frozen=True, slots=True)
class Dependency:
    """A service this one calls on each app request, as a scenario's ``dependencies:``
    edge says (``sim.dependencies``): ``calls_per_request`` calls (the whole part always,
    the fraction as a chance of one more), each failed call (a 5xx, no answer, or slower
    than ``timeout_s``) failing the request with probability ``error_propagation``."""

    name: str
    url: str
    calls_per_request: float = 1.0
    error_propagation: float = 1.0
    timeout_s: float = 5.0

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme != "http" or not parts.hostname or parts.port is None:
            raise ValueError(f"dependency {self.name!r}: url must be http://HOST:PORT/..., got {self.url!r}")
        if not (math.isfinite(self.calls_per_request) and self.calls_per_request >= 0):
            raise ValueError(f"dependency {self.name!r}: calls_per_request must be >= 0")
        if not 0.0 <= self.error_propagation <= 1.0:
            raise ValueError(f"dependency {self.name!r}: error_propagation must be in [0, 1]")
        if not self.timeout_s > 0:
            raise ValueError(f"dependency {self.name!r}: timeout_s must be > 0")


@dataclass(frozen=True, slots=True)
class Config:
    """What the process is started with (environment only)."""

    version: str = "v1"
    host: str = "0.0.0.0"
    port: int = 8080
    seed: int | None = None
    start_delay_s: float = 0.0
    crash_on_start: bool = False
    crash_after_s: float = 1.0
    crash_exit_code: int = 1
    drain_s: float = 0.0
    shutdown_timeout_s: float = 10.0
    faults: Faults = Faults()
    flag_file: str | None = None
    flag_key: str | None = None
    fault_token: str | None = None
    dependencies: tuple[Dependency, ...] = ()
    side_effects: bool = False


def _env_float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number") from None
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{name}={raw!r} must be a finite number >= 0")
    return value


def _env_bool(env: Mapping[str, str], name: str, default: bool | None) -> bool | None:
    raw = env.get(name)
    if raw is None:
        return default
    word = raw.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False if word else default
    raise ValueError(f"{name}={raw!r} is not a boolean (1/0/true/false)")


def load_dependencies(raw: str) -> tuple[Dependency, ...]:
    """``DEMO_DEPENDENCIES``: a JSON list of objects with ``Dependency``'s fields."""
    if not raw.strip():
        return ()
    try:
        items = json.loads(raw)
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise ValueError("a JSON list of objects")
        return tuple(Dependency(**item) for item in items)
    except (ValueError, TypeError) as error:
        raise ValueError(f"DEMO_DEPENDENCIES is not a list of dependencies "
                         f"(name, url, calls_per_request, error_propagation, timeout_s): {error}") from None


def load_config(env: Mapping[str, str]) -> Config:
    """The configuration the environment ``env`` describes; ValueError names a bad variable."""
    port_raw = env.get("DEMO_PORT", "8080").strip() or "8080"
    if not port_raw.isdigit() or int(port_raw) > 65535:
        raise ValueError(f"DEMO_PORT={port_raw!r} is not a port number")
    seed_raw = env.get("DEMO_SEED", "").strip()
    try:
        seed = int(seed_raw) if seed_raw else None
    except ValueError:
        raise ValueError(f"DEMO_SEED={seed_raw!r} is not an integer") from None
    exit_raw = env.get("DEMO_CRASH_EXIT_CODE", "1").strip() or "1"
    if not exit_raw.isdigit() or not 1 <= int(exit_raw) <= 255:
        raise ValueError(f"DEMO_CRASH_EXIT_CODE={exit_raw!r} must be in 1..255")
    faults = Faults(
        error_rate=_env_float(env, "DEMO_ERROR_RATE", 0.0),
        flag_error_rate=_env_float(env, "DEMO_FLAG_ERROR_RATE", 0.0),
        latency_ms=_env_float(env, "DEMO_LATENCY_MS", 0.0),
        latency_jitter_ms=_env_float(env, "DEMO_LATENCY_JITTER_MS", 0.0),
        latency_jitter=(env.get("DEMO_LATENCY_JITTER", "").strip().lower() or "exponential"),
        leak_after_s=_env_float(env, "DEMO_LEAK_AFTER_S", 0.0),
        leak_error_rate_per_min=_env_float(env, "DEMO_LEAK_ERROR_RATE_PER_MIN", 0.0),
        leak_latency_ms_per_min=_env_float(env, "DEMO_LEAK_LATENCY_MS_PER_MIN", 0.0),
        ready=_env_bool(env, "DEMO_READY", None),
        ready_error_rate=_env_float(env, "DEMO_READY_ERROR_RATE", 0.0),
        live=bool(_env_bool(env, "DEMO_LIVE", True)),
        injected_error_rate=_env_float(env, "DEMO_INJECTED_ERROR_RATE", 0.0),
        injected_latency_ms=_env_float(env, "DEMO_INJECTED_LATENCY_MS", 0.0),
        load_error_rate=_env_float(env, "DEMO_LOAD_ERROR_RATE", 0.0),
    )
    flag_file, flag_key = (env.get(f"DEMO_FLAG_{k}", "").strip() or None for k in ("FILE", "KEY"))
    if (flag_file is None) != (flag_key is None):
        raise ValueError("DEMO_FLAG_FILE and DEMO_FLAG_KEY go together: set both or neither")
    token = env.get("DEMO_FAULT_TOKEN", "").strip() or None
    if token is not None and len(token) < 16:
        raise ValueError("DEMO_FAULT_TOKEN is too short to be a secret (at least 16 characters; "
                         "the runner uses secrets.token_urlsafe)")
    return Config(
        version=env.get("DEMO_VERSION", "v1").strip() or "v1",
        host=env.get("DEMO_HOST", "0.0.0.0").strip() or "0.0.0.0",
        port=int(port_raw),
        seed=seed,
        start_delay_s=_env_float(env, "DEMO_START_DELAY_S", 0.0),
        crash_on_start=bool(_env_bool(env, "DEMO_CRASH_ON_START", False)),
        crash_after_s=_env_float(env, "DEMO_CRASH_AFTER_S", 1.0),
        crash_exit_code=int(exit_raw),
        drain_s=_env_float(env, "DEMO_DRAIN_S", 0.0),
        shutdown_timeout_s=_env_float(env, "DEMO_SHUTDOWN_TIMEOUT_S", 10.0),
        faults=faults,
        flag_file=flag_file, flag_key=flag_key,
        fault_token=token,
        dependencies=load_dependencies(env.get("DEMO_DEPENDENCIES", "")),
        side_effects=bool(_env_bool(env, "DEMO_SIDE_EFFECTS", False)),
    )


__all__ = ["Config", "Dependency", "Faults", "JITTER_KINDS", "load_config", "load_dependencies"]
