"""Scalar field types every part of the scenario schema shares: durations, fractions,
counts and names, with the bounds that make them mean something in the world."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from rolloutlab.strategies.yaml_input import parse_duration


def _reject_bool(value: Any) -> Any:
    # YAML 1.1 reads yes/no/on/off as booleans; pydantic would turn them into 1/0.
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {str(value).lower()}")
    return value


def _parse_fraction(value: Any) -> Any:
    _reject_bool(value)
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            return float(value.strip()[:-1]) / 100.0
        except ValueError:
            raise ValueError(f"{value!r} is not a percentage like '5%'") from None
    return value


def _parse_service_name(value: Any) -> Any:
    if isinstance(value, str) and not _DNS_LABEL.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a valid service name: use lowercase letters, digits and '-' "
            "(a Kubernetes DNS label of at most 63 characters, like 'checkout-api')"
        )
    return value


_DNS_LABEL = re.compile(r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?")

# --- bounds: what can make sense ------------------------------------------------------
#
# Every number of a scenario is bounded by what it can mean in the world, so a typo
# (``1e17`` rps, a duration of 10^20 s, ``1e-320`` rps of capacity) is an error naming
# the field instead of an overflow deep inside a simulation.

MAX_SECONDS = 366 * 86400.0
"""Longest time any field may hold: a year. Release windows, repairs and SLO windows
are days or weeks; a longer value is a typo (``1e20``, ``"5000d"``)."""
MAX_WINDOW = 7 * 86400.0
"""Longest simulated window: a week. The window follows one rollout and its aftermath
(the slowest progressive rollouts take days); months of deployments are the history
mode's. The simulator's cost grows with the window: a rollout held at a manual gate with
background analysis takes about 2 s a run for a day and 14 s for a week."""
MIN_SECONDS = 0.001
"""Shortest non-zero time: 1 ms. Below it nothing a scenario models (a pod start, a
timeout, a traffic spike) happens; the simulator's clock is seconds as floats."""
MIN_PERIOD = 1.0
"""Shortest period of something that repeats (probes, scrapes, rule evaluations): 1 s,
Kubernetes' and Prometheus' smallest ``periodSeconds``/``interval``."""
MAX_RPS = 1e6
"""Most requests per second any one service may receive: a million, above the largest
single services in production; more is a typo, and past ~1e15 the Poisson draws of the
simulator cannot represent it."""
MIN_RPS = 0.001
"""Fewest requests per second a rate may be, when it is not zero: one in 17 minutes."""
MAX_MILLISECONDS = 3_600_000.0
"""Longest response time or added latency: an hour, in milliseconds."""
MAX_FACTOR = 1000.0
"""Largest multiplier on a rate or a latency (spikes, slow releases, calls per request)."""
MAX_REPLICAS = 1_000
"""Most pods of one service. The simulator follows every pod, and its cost grows faster
than the pod count (1,000 pods take about a second a run, 10,000 about forty); what a
release does to users is a matter of shares, so a larger fleet is modelled as a slice of
it (a tenth of the pods with a tenth of the traffic)."""
MAX_NODES = 1_000
"""Most nodes one service's pods are spread over: one per pod at the most pods (and the
simulator follows each node, as it follows each pod)."""
MAX_THRESHOLD = 1_000
"""Most consecutive checks a probe or a health check may require."""
MAX_SCHEMA_VERSION = 1_000_000
"""Highest database schema version."""
MAX_SEED = 2**63 - 1
"""Largest seed: seeds are written to the results table as 64-bit integers."""
MIN_WEIGHT, MAX_WEIGHT = 1e-6, 1e6
"""Range of a relative weight: a ratio beyond 10^12 between two weights is no choice."""


def _format_number(value: float) -> str:
    return f"{value:g}"


def _format_ms(value: float) -> str:
    return f"{value:g} ms"


def _bounds(
    low: float | None = None,
    high: float | None = None,
    *,
    why: str,
    show: Callable[[float], str] = _format_number,
    zero_ok: bool = False,
) -> AfterValidator:
    """A check that a (parsed, finite) number lies in low..high; the message says why the
    bound is what it is. ``zero_ok`` lets exactly 0 pass a positive lower bound ("none")."""

    def check(value: float) -> float:
        if low is not None and value < low and not (zero_ok and value == 0):
            raise ValueError(f"{show(value)} is below {show(low)}, the least that makes sense ({why})")
        if high is not None and value > high:
            raise ValueError(f"{show(value)} is above {show(high)}, the most that makes sense ({why})")
        return value

    return AfterValidator(check)


def _show_seconds(value: float) -> str:
    return _format_seconds(value) if value >= 1 else f"{value:g}s"


_TIME_BOUND = _bounds(
    -MAX_SECONDS, MAX_SECONDS, why="a year; longer is a typo", show=_show_seconds
)
_SHORTEST_TIME = _bounds(MIN_SECONDS, why="1 ms", show=_show_seconds)

Seconds = Annotated[float, BeforeValidator(parse_duration), Field(ge=0), _TIME_BOUND]
"""A length of time in seconds, 0 up to a year; accepts "30s", "5m", "1h30m", "250ms"."""
PositiveSeconds = Annotated[
    float, BeforeValidator(parse_duration), Field(gt=0), _SHORTEST_TIME, _TIME_BOUND
]
"""A length of time in seconds, 1 ms up to a year."""
Period = Annotated[
    float,
    BeforeValidator(parse_duration),
    Field(gt=0),
    _bounds(MIN_PERIOD, why="Kubernetes and Prometheus repeat checks at most once a second",
            show=_show_seconds),
    _TIME_BOUND,
]
"""How often something repeats (a probe, a scrape, a rule evaluation): 1 s up to a year."""
Window = Annotated[
    PositiveSeconds, _bounds(high=MAX_WINDOW, why="a week: one rollout and its aftermath", show=_show_seconds)
]
"""The length of a simulated window: 1 ms up to a week."""
SignedSeconds = Annotated[float, BeforeValidator(parse_duration), _TIME_BOUND]
"""A time offset in seconds, may be negative; at most a year either way."""
Probability = Annotated[float, BeforeValidator(_parse_fraction), Field(ge=0, le=1)]
"""A probability or fraction in 0..1; accepts "5%"."""
PositiveNumber = Annotated[float, BeforeValidator(_reject_bool), Field(gt=0)]
"""A number > 0 (combine with a bound: every number must say how large it can be)."""
NonNegativeNumber = Annotated[float, BeforeValidator(_reject_bool), Field(ge=0)]
"""A number >= 0 (combine with a bound)."""
RequestRate = Annotated[
    PositiveNumber, _bounds(MIN_RPS, MAX_RPS, why="requests per second a service can receive")
]
"""Requests per second, 0.001 up to a million."""
OptionalRequestRate = Annotated[
    NonNegativeNumber,
    _bounds(MIN_RPS, MAX_RPS, why="requests per second a service can receive", zero_ok=True),
]
"""Requests per second, 0 (none) or 0.001 up to a million."""
Milliseconds = Annotated[
    PositiveNumber, _bounds(0.001, MAX_MILLISECONDS, why="1 µs to an hour", show=_format_ms)
]
"""A response time in milliseconds, 1 µs up to an hour."""
AddedMilliseconds = Annotated[
    NonNegativeNumber, _bounds(high=MAX_MILLISECONDS, why="an hour", show=_format_ms)
]
"""Latency added to responses, in milliseconds: 0 up to an hour."""
Factor = Annotated[
    PositiveNumber, _bounds(1 / MAX_FACTOR, MAX_FACTOR, why="a thousandfold either way")
]
"""A multiplier on a rate or a latency, 1/1000 to 1000."""
Weight = Annotated[
    PositiveNumber, _bounds(MIN_WEIGHT, MAX_WEIGHT, why="relative weights within 10^12 of each other")
]
"""A relative likelihood, 1e-6 to 1e6."""
PositiveInt = Annotated[int, BeforeValidator(_reject_bool), Field(ge=1)]
"""A count >= 1 (combine with a bound)."""
NonNegativeInt = Annotated[int, BeforeValidator(_reject_bool), Field(ge=0)]
"""A count >= 0 (combine with a bound)."""
Replicas = Annotated[PositiveInt, Field(le=MAX_REPLICAS)]
"""A number of pods, 1 to 1,000."""
Nodes = Annotated[PositiveInt, Field(le=MAX_NODES)]
"""A number of nodes, 1 to 1,000."""
Threshold = Annotated[PositiveInt, Field(le=MAX_THRESHOLD)]
"""Consecutive checks, 1 to 1,000."""
SchemaVersion = Annotated[NonNegativeInt, Field(le=MAX_SCHEMA_VERSION)]
"""A database schema version, 0 to a million."""
Seed = Annotated[NonNegativeInt, Field(le=MAX_SEED)]
"""A random seed, 0 to 2^63 - 1."""
ServiceName = Annotated[str, BeforeValidator(_parse_service_name)]
Label = Annotated[str, Field(min_length=1)]


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        allow_inf_nan=False,
        validate_by_name=True,
        validate_by_alias=True,
    )


def _kind_shorthand(value: Any) -> Any:
    """Let ``profile: constant`` stand for ``profile: {kind: constant}``."""
    return {"kind": value} if isinstance(value, str) else value


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _format_seconds(seconds: float) -> str:
    if seconds >= 1e7:  # beyond ~4 months hours-and-minutes stop being readable
        return f"{seconds:g}s"
    if seconds >= 86400 and seconds % 86400 == 0:
        return f"{int(seconds) // 86400}d"
    if seconds >= 3600 and seconds % 60 == 0:
        hours, rest = divmod(int(seconds), 3600)
        return f"{hours}h{rest // 60}m" if rest else f"{hours}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds) // 60}m"
    return f"{seconds:g}s"
