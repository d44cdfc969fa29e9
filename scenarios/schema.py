"""The scenario schema: the world a release strategy is tested in.

A scenario says what runs (services, their pods and how fast pods start), what it serves
(traffic), how likely a release is to be bad and in which way (release defects), what
else goes wrong meanwhile (faults, database migrations), who notices (monitoring, alert
rules, human response) and what the team requires of the outcome (expectations).
The simulator gives these fields behaviour; this module fixes their names, defaults and
validation, so a scenario file that loads is one the simulator can run.

Conventions for scenario YAML:

- Field names are ``snake_case`` everywhere (``capacity_rps``, ``success_threshold``).
  Two keys are Python keywords and are spelled as in YAML: ``assert`` (an expectation)
  and ``for`` (how long an alert condition must hold, like Prometheus' ``for:``; in an
  expectation, the strategies it is required of).
- Unknown fields are errors, so a typo never silently falls back to a default.
- Durations are seconds: a number (``90``) or a string such as ``"250ms"``, ``"30s"``,
  ``"5m"``, ``"1h30m"``, ``"2d"``. Probabilities and fractions are 0..1 or ``"5%"``.
- Distributions of times (pod start, human response, repairs) are a mapping with a
  ``kind`` (``fixed``, ``uniform``, ``lognormal``, ``exponential``); a bare duration is
  shorthand for ``{kind: fixed, value: ...}``.
- Points in time inside the scenario (``at:``) count from the start of the simulated
  window and must fall inside ``duration``.
- Service names are Kubernetes DNS labels (``checkout-api``) so the same scenario can be
  run live on a cluster.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    model_validator,
)

from rolloutlab.errors import FieldError, InputError
from rolloutlab.strategies.files import bundled_strategy_names
from rolloutlab.strategies.yaml_input import load_model_file, parse_duration

__all__ = [
    "ALL_STRATEGIES",
    "BUNDLED_SCENARIOS_DIR",
    "AlertRule",
    "Assertion",
    "ConstantProfile",
    "CrashOnStartDefect",
    "Defect",
    "Dependency",
    "DependencyFailureFault",
    "DEFAULT_STRATEGIES",
    "DiurnalProfile",
    "Distribution",
    "ErrorRateDefect",
    "Expectation",
    "ExponentialDistribution",
    "Fault",
    "FixedDistribution",
    "FullLoadOnlyDefect",
    "HealthCheck",
    "History",
    "HumanResponse",
    "IncompatibleMigrationDefect",
    "Latency",
    "LatencyDefect",
    "LatencyInjectionFault",
    "LeakDefect",
    "LognormalDistribution",
    "METRICS",
    "Migration",
    "MigrationStep",
    "Monitoring",
    "NodeLossFault",
    "PodKillFault",
    "PodTiming",
    "ReadinessProbe",
    "Release",
    "SCENARIO_LIBRARY_DIR",
    "STATS",
    "Scenario",
    "SchemaCompatibility",
    "SchemaRange",
    "Service",
    "Spike",
    "SpikesProfile",
    "Traffic",
    "TrafficProfile",
    "UniformDistribution",
    "ZoneOutageFault",
    "bundled_scenario",
    "is_strategy_path",
    "load_scenario",
    "parse_assertion",
]

BUNDLED_SCENARIOS_DIR = Path(__file__).resolve().parent
"""Folder holding the ready-made scenario files shipped with rolloutlab."""
SCENARIO_LIBRARY_DIR = BUNDLED_SCENARIOS_DIR / "library"
"""The scenario library: failure scenarios with expectations, for ``rolloutlab check``."""

# z-scores of the standard normal at 0.90 and 0.99: a lognormal's p90 is median·e^(1.2816σ).
_Z90 = 1.2815515655446004
_Z99 = 2.3263478740408408


# --- scalar types -------------------------------------------------------------------------


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

Seconds = Annotated[float, BeforeValidator(parse_duration), Field(ge=0)]
"""A length of time in seconds (>= 0); accepts "30s", "5m", "1h30m", "250ms"."""
PositiveSeconds = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]
"""A length of time in seconds that must be > 0."""
SignedSeconds = Annotated[float, BeforeValidator(parse_duration)]
"""A time offset in seconds, may be negative."""
Probability = Annotated[float, BeforeValidator(_parse_fraction), Field(ge=0, le=1)]
"""A probability or fraction in 0..1; accepts "5%"."""
PositiveNumber = Annotated[float, BeforeValidator(_reject_bool), Field(gt=0)]
NonNegativeNumber = Annotated[float, BeforeValidator(_reject_bool), Field(ge=0)]
PositiveInt = Annotated[int, BeforeValidator(_reject_bool), Field(ge=1)]
NonNegativeInt = Annotated[int, BeforeValidator(_reject_bool), Field(ge=0)]
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


# --- distributions ------------------------------------------------------------------------


class FixedDistribution(_Model):
    """Always the same time: a step whose duration is known and constant."""

    kind: Literal["fixed"] = "fixed"
    value: Seconds = 0.0
    """The time, in seconds."""

    def expected(self) -> float:
        """Mean of the distribution, in seconds."""
        return self.value


class UniformDistribution(_Model):
    """Any time between ``low`` and ``high``, all equally likely: a bounded delay
    whose shape nobody has measured (container start between 5 and 15 s)."""

    kind: Literal["uniform"] = "uniform"
    low: Seconds = 0.0
    """Shortest possible time."""
    high: Seconds
    """Longest possible time."""

    @model_validator(mode="after")
    def _check_order(self) -> UniformDistribution:
        if self.high < self.low:
            raise FieldError(("high",), f"high ({self.high:g}s) is below low ({self.low:g}s)")
        return self

    def expected(self) -> float:
        """Mean of the distribution, in seconds."""
        return (self.low + self.high) / 2


class LognormalDistribution(_Model):
    """Mostly near the median with a long tail of slow cases: how human response times,
    repairs and lead times behave. Give the median and exactly one of ``p90``, ``p99``
    or ``sigma`` (the standard deviation of the log)."""

    kind: Literal["lognormal"] = "lognormal"
    median: PositiveSeconds
    """Half of the cases take less than this."""
    p90: PositiveSeconds | None = None
    """Nine cases in ten take less than this."""
    p99: PositiveSeconds | None = None
    """99 cases in 100 take less than this."""
    sigma: PositiveNumber | None = None
    """Spread of the log of the time; 0.5 is narrow, 1.5 very wide."""

    @model_validator(mode="after")
    def _check_spread(self) -> LognormalDistribution:
        given = [n for n in ("p90", "p99", "sigma") if getattr(self, n) is not None]
        if len(given) != 1:
            where = (given[1],) if len(given) > 1 else ()
            raise FieldError(
                where,
                "a lognormal needs its median and exactly one of p90, p99 or sigma"
                + (f" (got {', '.join(given)})" if given else ""),
            )
        for name in ("p90", "p99"):
            tail = getattr(self, name)
            if tail is not None and tail <= self.median:
                raise FieldError(
                    (name,), f"{name} ({tail:g}s) must be above the median ({self.median:g}s)"
                )
        return self

    @property
    def sigma_value(self) -> float:
        """The log-space standard deviation, whichever way the spread was given."""
        if self.sigma is not None:
            return self.sigma
        if self.p90 is not None:
            return math.log(self.p90 / self.median) / _Z90
        assert self.p99 is not None  # guaranteed by validation
        return math.log(self.p99 / self.median) / _Z99

    def expected(self) -> float:
        """Mean of the distribution, in seconds (above the median: the tail pulls it)."""
        return self.median * math.exp(self.sigma_value**2 / 2)


class ExponentialDistribution(_Model):
    """Memoryless waiting time: the time until a random event that is equally likely at
    every moment (the next crash, the next page)."""

    kind: Literal["exponential"] = "exponential"
    mean: PositiveSeconds
    """Average waiting time."""

    def expected(self) -> float:
        """Mean of the distribution, in seconds."""
        return self.mean


def _fixed_shorthand(value: Any) -> Any:
    """A bare duration (``10s``) stands for a fixed distribution."""
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
        return {"kind": "fixed", "value": value}
    return value


Distribution = Annotated[
    Union[
        FixedDistribution, UniformDistribution, LognormalDistribution, ExponentialDistribution
    ],
    Field(discriminator="kind"),
    BeforeValidator(_fixed_shorthand),
]
"""A distribution of times in seconds, chosen by ``kind``; a bare duration means fixed."""


# --- services -----------------------------------------------------------------------------


class Latency(_Model):
    """How long a healthy replica takes to answer: lognormal, fixed by median and p99."""

    median_ms: PositiveNumber = 50.0
    """Typical response time, in milliseconds."""
    p99_ms: PositiveNumber = 250.0
    """Response time that only 1 request in 100 exceeds, in milliseconds."""

    @model_validator(mode="after")
    def _check_tail(self) -> Latency:
        if self.p99_ms <= self.median_ms:
            raise FieldError(
                ("p99_ms",),
                f"p99_ms ({self.p99_ms:g}) must be above median_ms ({self.median_ms:g})",
            )
        return self


class ReadinessProbe(_Model):
    """The Kubernetes readiness probe: a pod receives traffic only after
    ``success_threshold`` passing checks in a row and stops receiving it after
    ``failure_threshold`` failing ones. Defaults are Kubernetes' own."""

    initial_delay: Seconds = 0.0
    """Wait after the container starts before the first check."""
    period: PositiveSeconds = 10.0
    """Time between checks."""
    timeout: PositiveSeconds = 1.0
    """A check that takes longer than this fails."""
    success_threshold: PositiveInt = 1
    """Consecutive passes needed to become Ready."""
    failure_threshold: PositiveInt = 3
    """Consecutive failures needed to lose Ready."""


class PodTiming(_Model):
    """How long a pod takes to come and go."""

    schedule_delay: Distribution = Field(default_factory=lambda: FixedDistribution(value=1.0))
    """From creating the pod until its container is created: scheduling, image pull."""
    start_delay: Distribution = Field(
        default_factory=lambda: UniformDistribution(low=5.0, high=15.0)
    )
    """From container start until the process could answer a readiness check."""
    readiness: ReadinessProbe = Field(default_factory=ReadinessProbe)
    """The readiness probe that gates traffic to the pod."""
    termination_grace: Seconds = 30.0
    """How long a terminating pod may finish in-flight requests before it is killed."""


class Service(_Model):
    """One service: a set of identical replicas behind a load balancer."""

    name: ServiceName
    """DNS-label name, referenced by dependencies, faults and alerts."""
    under_test: bool = False
    """The service whose releases are being studied. At most one; default the first."""
    replicas: PositiveInt = 10
    """Desired number of pods of the stable version."""
    capacity_rps: PositiveNumber = 200.0
    """Requests per second one replica serves before it saturates and starts failing."""
    latency: Latency = Field(default_factory=Latency)
    """Response time of a healthy replica."""
    baseline_error_rate: Probability = 0.001
    """Fraction of requests that fail even when nothing is wrong."""
    request_timeout: PositiveSeconds = 1.0
    """Callers give up after this long: requests queued longer on overloaded pods fail."""
    pod_timing: PodTiming = Field(default_factory=PodTiming)
    """How fast pods start, become ready and stop."""
    zones: Annotated[list[Label], Field(min_length=1)] = Field(
        default_factory=lambda: ["a", "b", "c"]
    )
    """Availability zones the nodes (and so the pods) are spread over."""
    nodes: PositiveInt | None = None
    """Number of nodes the pods are spread over, evenly across zones. Default: one node
    per zone for every 4 replicas in that zone (at least one per zone)."""

    @model_validator(mode="after")
    def _check_placement(self) -> Service:
        seen: set[str] = set()
        for i, zone in enumerate(self.zones):
            if zone in seen:
                raise FieldError(("zones", i), f"zone {zone!r} is listed twice")
            seen.add(zone)
        if self.nodes is None:
            per_zone = math.ceil(self.replicas / (4 * len(self.zones)))
            self.nodes = len(self.zones) * max(1, per_zone)
        elif self.nodes < len(self.zones):
            raise FieldError(
                ("nodes",),
                f"{self.nodes} node(s) cannot cover {len(self.zones)} zones: "
                "every zone needs at least one node",
            )
        return self


class Dependency(_Model):
    """A call edge: every request to ``caller`` makes calls to ``callee``."""

    caller: ServiceName
    """The calling service."""
    callee: ServiceName
    """The service being called."""
    calls_per_request: PositiveNumber = 1.0
    """Average calls to the callee per request the caller serves."""
    error_propagation: Probability = 1.0
    """Chance that a failed call fails the caller's request (lower with retries or
    fallbacks)."""


# --- traffic ------------------------------------------------------------------------------


class ConstantProfile(_Model):
    """Steady traffic at ``rps``."""

    kind: Literal["constant"] = "constant"


class DiurnalProfile(_Model):
    """Daily rhythm: rate(t) = rps * (1 + amplitude * cos(2π (t - phase) / period)),
    so traffic peaks at ``phase`` and every ``period`` after it."""

    kind: Literal["diurnal"] = "diurnal"
    amplitude: Probability = 0.5
    """Swing around the mean as a fraction of it: 0.5 means 50% to 150% of rps."""
    period: PositiveSeconds = 86400.0
    """Length of one cycle."""
    phase: SignedSeconds = 0.0
    """Time of the peak, counted from the start of the simulated window."""


class Spike(_Model):
    """A burst (or dip) of traffic."""

    at: Seconds
    """When it starts."""
    duration: PositiveSeconds = 60.0
    """How long it lasts."""
    multiplier: PositiveNumber = 3.0
    """Traffic during the spike as a multiple of normal (below 1 is a dip)."""


class SpikesProfile(_Model):
    """Constant traffic with bursts at given times."""

    kind: Literal["spikes"] = "spikes"
    spikes: Annotated[list[Spike], Field(min_length=1)]
    """The bursts."""


TrafficProfile = Annotated[
    Union[ConstantProfile, DiurnalProfile, SpikesProfile],
    Field(discriminator="kind"),
    BeforeValidator(_kind_shorthand),
]
"""How the request rate varies over time, chosen by ``kind``."""


class Traffic(_Model):
    """User requests: a Poisson process arriving at the entry services (those no other
    service calls; with one service, the service under test), split evenly between
    entries. Each service passes ``calls_per_request`` calls to each service it calls."""

    rps: PositiveNumber = 1000.0
    """Mean requests per second."""
    profile: TrafficProfile = Field(default_factory=ConstantProfile)
    """How the rate varies around the mean."""
    preview_rps: NonNegativeNumber = 10.0
    """Blue-green only: test traffic (smoke tests, QA) reaching the preview Service before
    the switch; its failures are measured by analysis but hurt no user."""


# --- release defects ----------------------------------------------------------------------


class ErrorRateDefect(_Model):
    """The new version fails a share of the requests it serves."""

    kind: Literal["error_rate"] = "error_rate"
    weight: PositiveNumber = 1.0
    """Relative likelihood of this defect among the release's defects."""
    error_rate: Probability = 0.05
    """Extra probability that a request served by the new version fails."""


class LatencyDefect(_Model):
    """The new version is slower: latency = baseline * multiplier + added_ms."""

    kind: Literal["latency"] = "latency"
    weight: PositiveNumber = 1.0
    """Relative likelihood of this defect among the release's defects."""
    multiplier: Annotated[float, BeforeValidator(_reject_bool), Field(ge=1)] = 2.0
    """Factor on the healthy response time."""
    added_ms: NonNegativeNumber = 0.0
    """Milliseconds added to every response."""

    @model_validator(mode="after")
    def _check_effect(self) -> LatencyDefect:
        if self.multiplier == 1 and self.added_ms == 0:
            raise FieldError(
                ("multiplier",), "a latency defect needs multiplier > 1 or added_ms > 0"
            )
        return self


class CrashOnStartDefect(_Model):
    """New pods crash soon after starting; the kubelet restarts them with exponential
    back-off (10 s doubling up to 5 min: CrashLoopBackOff), so they never become ready."""

    kind: Literal["crash_on_start"] = "crash_on_start"
    weight: PositiveNumber = 1.0
    """Relative likelihood of this defect among the release's defects."""
    crash_probability: Probability = 1.0
    """Chance that each start of a new-version container crashes."""
    crash_after: Seconds = 2.0
    """How long the process runs before it dies."""
    backoff_base: PositiveSeconds = 10.0
    """First restart delay; it doubles after each crash."""
    backoff_cap: PositiveSeconds = 300.0
    """Longest restart delay."""

    @model_validator(mode="after")
    def _check_backoff(self) -> CrashOnStartDefect:
        if self.backoff_cap < self.backoff_base:
            raise FieldError(
                ("backoff_cap",),
                f"backoff_cap ({self.backoff_cap:g}s) is below backoff_base "
                f"({self.backoff_base:g}s)",
            )
        return self


class LeakDefect(_Model):
    """A slow leak: each new pod is healthy for ``after``, then degrades steadily until
    it restarts (memory, connections, file handles)."""

    kind: Literal["leak"] = "leak"
    weight: PositiveNumber = 1.0
    """Relative likelihood of this defect among the release's defects."""
    after: Seconds = 600.0
    """How long after its start a pod begins to degrade."""
    error_rate_per_minute: NonNegativeNumber = 0.01
    """Extra error probability gained per minute of degradation."""
    latency_growth_per_minute: NonNegativeNumber = 0.0
    """Fractional latency increase per minute of degradation (0.1 = +10% a minute)."""
    max_error_rate: Probability = 1.0
    """Ceiling of the extra error probability."""

    @model_validator(mode="after")
    def _check_effect(self) -> LeakDefect:
        if self.error_rate_per_minute == 0 and self.latency_growth_per_minute == 0:
            raise FieldError(
                ("error_rate_per_minute",),
                "a leak needs error_rate_per_minute > 0 or latency_growth_per_minute > 0",
            )
        return self


class FullLoadOnlyDefect(_Model):
    """A fault that shows only under full load: a canary at 5% looks healthy, a
    blue-green switch or the last rolling step does not."""

    kind: Literal["full_load_only"] = "full_load_only"
    weight: PositiveNumber = 1.0
    """Relative likelihood of this defect among the release's defects."""
    traffic_share_threshold: Annotated[Probability, Field(gt=0)] = 1.0
    """The defect shows once the new version serves at least this share of traffic."""
    per_pod_rps_threshold: PositiveNumber | None = None
    """...or once one new-version pod serves at least this many requests per second."""
    error_rate: Probability = 0.5
    """Extra probability that a request to the new version fails while it shows."""


class IncompatibleMigrationDefect(_Model):
    """The release and the database schema disagree: the new version needs a schema the
    migration has not reached yet, or the migration it ships breaks the old version, so a
    rollback does not help and the team must repair forward
    (``migration.rollforward_repair_time``). Needs a ``migration`` section."""

    kind: Literal["incompatible_migration"] = "incompatible_migration"
    weight: PositiveNumber = 1.0
    """Relative likelihood of this defect among the release's defects."""
    required_schema: NonNegativeInt | None = None
    """Schema version the new version needs; default the last one the migration reaches."""
    breaks_old: bool = True
    """Whether the old version fails on that schema (rollback is then impossible)."""
    error_rate: Probability = 1.0
    """Probability that a request fails when an app version runs on a schema it does
    not support."""


Defect = Annotated[
    Union[
        ErrorRateDefect,
        LatencyDefect,
        CrashOnStartDefect,
        LeakDefect,
        FullLoadOnlyDefect,
        IncompatibleMigrationDefect,
    ],
    Field(discriminator="kind"),
    BeforeValidator(_kind_shorthand),
]
"""One way a release can be bad, chosen by ``kind``."""


class Release(_Model):
    """The release being rolled out: how likely it is bad, and how."""

    defect_probability: Probability = 0.2
    """Chance that a release carries a defect (DORA change failure rates run 0-30%)."""
    defects: list[Defect] = Field(default_factory=lambda: [ErrorRateDefect()])
    """Defect kinds a bad release may carry, drawn by relative ``weight``."""

    @model_validator(mode="after")
    def _check_defects(self) -> Release:
        if self.defect_probability > 0 and not self.defects:
            raise FieldError(
                ("defects",), "defect_probability is above 0 but no defect kinds are listed"
            )
        return self


# --- faults -------------------------------------------------------------------------------


class PodKillFault(_Model):
    """Pods are killed at ``at`` (OOM kill, preemption, a chaos tool)."""

    kind: Literal["pod_kill"] = "pod_kill"
    at: Seconds
    """When it happens, from the start of the simulated window."""
    service: ServiceName | None = None
    """Whose pods; default the service under test."""
    count: PositiveInt = 1
    """How many pods die."""
    version: Literal["stable", "canary", "any"] = "any"
    """Which version's pods: ``canary`` means the version being released (green, in
    blue-green)."""


class NodeLossFault(_Model):
    """Nodes vanish. Their pods keep counting as running until the control plane evicts
    them ``eviction_delay`` later (Kubernetes' default pod-eviction-timeout is 300 s);
    only then are replacements created."""

    kind: Literal["node_loss"] = "node_loss"
    at: Seconds
    """When it happens, from the start of the simulated window."""
    service: ServiceName | None = None
    """Whose nodes; default the service under test."""
    count: PositiveInt = 1
    """How many nodes are lost."""
    eviction_delay: Seconds = 300.0
    """Time until pods on the lost nodes are evicted and rescheduled."""
    duration: PositiveSeconds | None = None
    """When the nodes come back; default never."""


class ZoneOutageFault(_Model):
    """A whole availability zone goes dark: every node in it, for every service."""

    kind: Literal["zone_outage"] = "zone_outage"
    at: Seconds
    """When it happens, from the start of the simulated window."""
    zone: Label
    """The zone that fails."""
    duration: PositiveSeconds = 600.0
    """How long it stays down."""


class DependencyFailureFault(_Model):
    """A service others depend on fails part of its calls for a while."""

    kind: Literal["dependency_failure"] = "dependency_failure"
    at: Seconds
    """When it happens, from the start of the simulated window."""
    service: ServiceName
    """The failing service."""
    error_rate: Probability = 1.0
    """Probability that a call to it fails."""
    duration: PositiveSeconds = 300.0
    """How long it lasts."""


class LatencyInjectionFault(_Model):
    """A service becomes slower for a while (network trouble, noisy neighbour)."""

    kind: Literal["latency_injection"] = "latency_injection"
    at: Seconds
    """When it happens, from the start of the simulated window."""
    service: ServiceName
    """The slowed service."""
    added_ms: PositiveNumber = 200.0
    """Milliseconds added to each of its responses."""
    duration: PositiveSeconds = 300.0
    """How long it lasts."""


Fault = Annotated[
    Union[
        PodKillFault,
        NodeLossFault,
        ZoneOutageFault,
        DependencyFailureFault,
        LatencyInjectionFault,
    ],
    Field(discriminator="kind"),
]
"""Something that goes wrong at a scheduled time, chosen by ``kind``."""


# --- migrations ---------------------------------------------------------------------------

MigrationTiming = Literal["before_deploy", "with_deploy", "after_promotion"]
_TIMINGS = get_args(MigrationTiming)


def _parse_timing(value: Any) -> Any:
    if isinstance(value, str) and value in _TIMINGS:
        return value
    try:
        seconds = parse_duration(value)
    except ValueError:
        seconds = -1.0
    if seconds < 0:
        raise ValueError(
            f"{value!r} is not a migration time: use one of {', '.join(_TIMINGS)} "
            "or a time like '10m' after the start of the simulated window"
        )
    return seconds


class MigrationStep(_Model):
    """One schema change; each step moves the schema to the next version."""

    name: Label
    """What the step does, e.g. ``add_email_column``."""
    kind: Literal["expand", "contract"]
    """``expand`` adds (old and new app both keep working); ``contract`` removes what
    only the old app used."""
    at: Annotated[Union[MigrationTiming, float], BeforeValidator(_parse_timing)] = (
        "before_deploy"
    )
    """When it runs, relative to the rollout (``before_deploy``, ``with_deploy``,
    ``after_promotion``) or at a fixed time from the start of the simulated window."""


class SchemaRange(_Model):
    """Schema versions an app version works with (inclusive; missing = unbounded)."""

    min_schema: NonNegativeInt | None = None
    """Oldest schema version it works with."""
    max_schema: NonNegativeInt | None = None
    """Newest schema version it works with."""

    @model_validator(mode="after")
    def _check_order(self) -> SchemaRange:
        if (
            self.min_schema is not None
            and self.max_schema is not None
            and self.max_schema < self.min_schema
        ):
            raise FieldError(
                ("max_schema",),
                f"max_schema ({self.max_schema}) is below min_schema ({self.min_schema}): "
                "no schema version would work",
            )
        return self

    def allows(self, version: int) -> bool:
        """Whether an app with this range works on schema ``version``."""
        low = self.min_schema if self.min_schema is not None else -math.inf
        high = self.max_schema if self.max_schema is not None else math.inf
        return low <= version <= high


class SchemaCompatibility(_Model):
    """Which app versions work with which schema versions."""

    old: SchemaRange = Field(default_factory=SchemaRange)
    """The version being replaced, e.g. ``{max_schema: 2}``: breaks once step 2's
    contract has run."""
    new: SchemaRange = Field(default_factory=SchemaRange)
    """The version being released, e.g. ``{min_schema: 2}``: needs the expand step."""


class Migration(_Model):
    """A database migration done expand/contract style alongside the release."""

    initial_schema: NonNegativeInt = 1
    """Schema version before the first step."""
    steps: list[MigrationStep] = Field(default_factory=list)
    """The steps in the order they run; step i moves the schema to initial_schema+i+1."""
    compatibility: SchemaCompatibility = Field(default_factory=SchemaCompatibility)
    """Which app versions work on which schema versions (default: all on all)."""
    rollforward_repair_time: Distribution = Field(
        default_factory=lambda: LognormalDistribution(median=3600.0, p90=4 * 3600.0)
    )
    """Time to fix forward when rolling back is impossible."""

    @model_validator(mode="after")
    def _check_steps(self) -> Migration:
        seen: dict[str, int] = {}
        for i, step in enumerate(self.steps):
            if step.name in seen:
                raise FieldError(
                    ("steps", i, "name"),
                    f"step name {step.name!r} is used twice (first at steps[{seen[step.name]}])",
                )
            seen[step.name] = i
        return self

    @property
    def final_schema(self) -> int:
        """Schema version after every step has run."""
        return self.initial_schema + len(self.steps)


# --- monitoring and people ----------------------------------------------------------------


class HealthCheck(_Model):
    """The load balancer's own active health check of each backend (HAProxy's
    ``inter``/``rise``/``fall``), separate from the Kubernetes readiness probe."""

    interval: PositiveSeconds = 2.0
    """Time between checks."""
    timeout: PositiveSeconds = 1.0
    """A check that takes longer fails."""
    healthy_threshold: PositiveInt = 2
    """Consecutive passes to put a backend back in rotation."""
    unhealthy_threshold: PositiveInt = 3
    """Consecutive failures to take it out."""


AlertMetric = Literal["error_rate", "latency_p99"]


class AlertRule(_Model):
    """A Prometheus-style alert rule: fires when ``metric`` over the last ``window`` stays
    above ``threshold`` for ``for``, checked every ``evaluation_interval``."""

    name: Label
    """Alert name, as a pager would show it."""
    metric: AlertMetric
    """``error_rate``: failed / all requests; ``latency_p99``: 99th percentile latency."""
    threshold: NonNegativeNumber
    """Firing level: a fraction for error_rate (0.02 or "2%"), milliseconds for
    latency_p99 (500 or "500ms", "1s")."""
    for_: Seconds = Field(0.0, alias="for")
    """How long the condition must hold before the alert fires (Prometheus ``for:``)."""
    window: PositiveSeconds = 60.0
    """Range the metric is computed over, like ``rate(...[1m])``."""
    evaluation_interval: PositiveSeconds = 15.0
    """How often the rule is evaluated."""
    service: ServiceName | None = None
    """Which service it watches; default the service under test."""

    @model_validator(mode="before")
    @classmethod
    def _parse_threshold(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("threshold"), str):
            return data
        text = data["threshold"].strip()
        metric = data.get("metric")
        try:
            if metric == "error_rate":
                value: float = _parse_fraction(text)
                value = float(value)
            elif metric == "latency_p99":
                value = parse_duration(text) * 1000.0 if not _is_number(text) else float(text)
            else:
                return data
        except ValueError:
            unit = "a fraction like 0.02 or '2%'" if metric == "error_rate" else (
                "milliseconds like 500 or a time like '500ms', '1s'"
            )
            raise FieldError(
                ("threshold",), f"{text!r} is not a {metric} threshold: use {unit}"
            ) from None
        return {**data, "threshold": value}

    @model_validator(mode="after")
    def _check_threshold(self) -> AlertRule:
        if self.metric == "error_rate" and self.threshold > 1:
            raise FieldError(
                ("threshold",),
                f"an error_rate threshold is a fraction of requests: {self.threshold:g} "
                "is above 1 (write 0.02 or '2%')",
            )
        return self


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _default_alerts() -> list[AlertRule]:
    return [AlertRule(name="high_error_rate", metric="error_rate", threshold=0.05, for_=300.0)]


class Monitoring(_Model):
    """What is measured and when someone gets paged."""

    scrape_interval: PositiveSeconds = 15.0
    """How often metrics are collected; alerts and dashboards see nothing finer."""
    health_check: HealthCheck = Field(default_factory=HealthCheck)
    """The load balancer's health check of each backend."""
    alerts: list[AlertRule] = Field(default_factory=_default_alerts)
    """Alert rules that page a human. Default: error rate above 5% for 5 minutes.
    An empty list means nobody is paged: only automated analysis can catch a defect."""

    @model_validator(mode="after")
    def _check_names(self) -> Monitoring:
        seen: set[str] = set()
        for i, alert in enumerate(self.alerts):
            if alert.name in seen:
                raise FieldError(("alerts", i, "name"), f"alert {alert.name!r} is defined twice")
            seen.add(alert.name)
        return self


class HumanResponse(_Model):
    """What the on-call engineer does once paged."""

    response_time: Distribution = Field(
        default_factory=lambda: LognormalDistribution(median=600.0, p90=1800.0)
    )
    """From the alert firing until someone decides to roll back."""
    rollback_duration: Distribution = Field(
        default_factory=lambda: FixedDistribution(value=120.0)
    )
    """From that decision until the rollback has been issued and the router switched
    (new pods, if any are needed, start as pod_timing says)."""


class History(_Model):
    """Months of deployments, for DORA metrics (deployment frequency, lead time, change
    failure rate, time to restore)."""

    days: PositiveInt = 90
    """Length of the history."""
    deploys_per_day: PositiveNumber = 2.0
    """Average deployments per day (a Poisson process)."""
    lead_time: Distribution = Field(
        default_factory=lambda: LognormalDistribution(median=4 * 3600.0, p90=24 * 3600.0)
    )
    """Time from commit to the start of its deployment."""
    defect_probability: Probability | None = None
    """Chance a deployment is bad; default release.defect_probability."""
    rework_delay: Distribution = Field(
        default_factory=lambda: LognormalDistribution(median=2 * 3600.0, p90=8 * 3600.0)
    )
    """After a failed change is restored, time until its fix is deployed (an unplanned
    deployment: DORA's rework)."""


# --- expectations -------------------------------------------------------------------------

MetricName = Literal[
    "change_failure_rate",
    "false_rollback_rate",
    "mttr",
    "failed_requests",
    "failed_request_fraction",
    "detected_within",
    "rollout_duration",
    "cost",
]
StatName = Literal["mean", "median", "p50", "p90", "p95", "p99", "max"]
Operator = Literal["<", "<=", ">", ">=", "=="]

METRICS: dict[str, str] = {
    "change_failure_rate": "rate",
    "false_rollback_rate": "rate",
    "mttr": "duration",
    "failed_requests": "count",
    "failed_request_fraction": "fraction",
    "detected_within": "duration",
    "rollout_duration": "duration",
    "cost": "replica_seconds",
}
"""Metric name -> what its value is: ``rate`` (one fraction over all deployments, no
statistic), ``fraction`` / ``duration`` (seconds) / ``count`` / ``replica_seconds``
(one value per deployment, summarised by a statistic; default ``mean``)."""
STATS: tuple[str, ...] = get_args(StatName)
"""Statistics over deployments; ``p50`` is read as ``median``."""

_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
}
_ASSERTION = re.compile(
    r"\s*(?P<metric>[A-Za-z_][A-Za-z0-9_]*)(?:\.(?P<stat>[A-Za-z0-9_]+))?"
    r"\s*(?P<op><=|>=|==|<|>)\s*(?P<value>[^<>=!]*?)\s*"
)
_NUMBER_UNIT = re.compile(
    r"(?P<number>[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*(?P<unit>%|[a-z]+)?"
)


class Assertion(_Model):
    """A parsed expectation such as ``mttr.p90 <= 300s``; values are in base units
    (seconds, fractions of 1, requests, replica-seconds)."""

    text: str
    """The expression as written."""
    metric: MetricName
    """What is measured over the simulated deployments."""
    stat: StatName | None = None
    """Statistic over deployments; None for rates that are one number already."""
    op: Operator
    """Comparison."""
    value: float
    """Bound, converted to base units."""

    def holds(self, actual: float) -> bool:
        """Whether a measured value satisfies the expectation."""
        return _OPERATORS[self.op](actual, self.value)

    def __str__(self) -> str:
        return self.text


def parse_assertion(text: str) -> Assertion:
    """Read ``metric[.stat] op value[unit]``; raises ValueError naming the expression."""

    def fail(reason: str) -> ValueError:
        return ValueError(f"cannot read expectation {text!r}: {reason}")

    match = _ASSERTION.fullmatch(text)
    if match is None:
        raise fail(
            "write 'metric[.stat] <op> value', e.g. 'mttr.p90 <= 300s' "
            "(operators: <, <=, >, >=, ==)"
        )
    metric, stat, op, raw = match["metric"], match["stat"], match["op"], match["value"]
    kind = METRICS.get(metric)
    if kind is None:
        raise fail(f"unknown metric {metric!r} (known: {', '.join(METRICS)})")
    if kind == "rate":
        if stat is not None:
            raise fail(f"{metric} is one rate over all deployments and takes no statistic")
    else:
        stat = stat or "mean"
        if stat not in STATS:
            raise fail(f"unknown statistic {stat!r} (known: {', '.join(STATS)})")
        stat = "median" if stat == "p50" else stat
    if not raw:
        raise fail("the value is missing")
    value = _assertion_value(raw, metric, kind, fail)
    return Assertion(text=text.strip(), metric=metric, stat=stat, op=op, value=value)


def _assertion_value(
    raw: str, metric: str, kind: str, fail: Callable[[str], ValueError]
) -> float:
    if kind in ("duration", "replica_seconds"):
        try:
            value = parse_duration(raw)
        except ValueError:
            raise fail(f"{raw!r} is not a time (use seconds or '250ms', '30s', '5m', '1h')")
    else:
        match = _NUMBER_UNIT.fullmatch(raw)
        if match is None:
            raise fail(f"{raw!r} is not a number")
        value, unit = float(match["number"]), match["unit"]
        if unit == "%" and kind in ("rate", "fraction"):
            value /= 100.0
        elif unit is not None:
            raise fail(f"{metric} takes no unit {unit!r}")
    if not math.isfinite(value):
        raise fail(f"{raw!r} is not a finite number")
    if kind in ("rate", "fraction") and not 0 <= value <= 1:
        raise fail(f"{metric} is a fraction between 0 and 1 (write 0.05 or 5%)")
    if value < 0:
        raise fail(f"{metric} cannot be negative")
    return value


def _parse_assertion_input(value: Any) -> Any:
    if isinstance(value, str):
        return parse_assertion(value)
    if isinstance(value, (dict, Assertion)):
        return value  # already parsed, e.g. a dumped scenario read back
    raise ValueError(
        f"an expectation is a string like 'mttr.p90 <= 300s', got {value!r}"
    )


ALL_STRATEGIES = "all"
"""The ``for:`` value of an expectation that every strategy of the scenario must meet."""


def _expectation_shorthand(value: Any) -> Any:
    """A bare string in ``expect:`` is an expectation for every strategy."""
    return {"assert": value} if isinstance(value, str) else value


def _strategy_selection(value: Any) -> Any:
    """``for: canary`` stands for ``for: [canary]``."""
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        raise ValueError(f"'for' is {ALL_STRATEGIES!r}, a strategy name or a list of names, not {value!r}")
    return value


class Expectation(_Model):
    """A requirement on the outcome, checked after the runs: ``assert`` is an expression
    such as ``change_failure_rate <= 0.05`` or ``mttr.p90 <= 300s``, required of the
    strategies named in ``for`` (``all``, one name, or a list). A bare string stands for
    ``{assert: ..., for: all}``."""

    for_: Annotated[list[Label], Field(min_length=1), BeforeValidator(_strategy_selection)] = Field(
        default_factory=lambda: [ALL_STRATEGIES], alias="for"
    )
    """Names of the strategies it applies to (as in their ``name:``), or ``all``."""
    assertion: Annotated[Assertion, BeforeValidator(_parse_assertion_input)] = Field(
        alias="assert"
    )
    """The parsed expression."""

    def applies_to(self, strategy: str) -> bool:
        """Whether the strategy called ``strategy`` must meet this expectation."""
        return ALL_STRATEGIES in self.for_ or strategy in self.for_


ExpectationEntry = Annotated[Expectation, BeforeValidator(_expectation_shorthand)]

DEFAULT_STRATEGIES: tuple[str, ...] = ("blue-green", "canary", "rolling")
"""The strategies a scenario is run with when it names none: the bundled ones."""


def is_strategy_path(entry: str) -> bool:
    """A ``strategies:`` entry naming a file (relative to the scenario) rather than a
    bundled strategy."""
    return entry.endswith((".yaml", ".yml")) or "/" in entry or "\\" in entry


# --- the scenario -------------------------------------------------------------------------


class Scenario(_Model):
    """A world to test release strategies in; see the module docstring for conventions."""

    name: Label
    """Short identifier, shown in reports."""
    description: str = ""
    """What the scenario models and why it matters."""
    seed: NonNegativeInt | None = None
    """Random seed for reproducible runs; default a fresh seed per run."""
    duration: PositiveSeconds = 1800.0
    """Length of the simulated window, starting when the rollout starts."""
    services: Annotated[list[Service], Field(min_length=1)] = Field(
        default_factory=lambda: [Service(name="app", under_test=True)]
    )
    """The services; exactly one is under test (marked, or else the first)."""
    dependencies: list[Dependency] = Field(default_factory=list)
    """Who calls whom."""
    traffic: Traffic = Field(default_factory=Traffic)
    """Requests arriving at the service under test."""
    release: Release = Field(default_factory=Release)
    """How likely the release is to be bad, and how."""
    faults: list[Fault] = Field(default_factory=list)
    """Failures injected at fixed times, independent of the release."""
    migration: Migration | None = None
    """A schema migration that goes with the release, if any."""
    monitoring: Monitoring = Field(default_factory=Monitoring)
    """Metrics and alert rules."""
    response: HumanResponse = Field(default_factory=HumanResponse)
    """How people respond to alerts."""
    history: History | None = None
    """Settings for simulating months of deployments (DORA history mode)."""
    strategies: Annotated[list[Label], Field(min_length=1)] = Field(
        default_factory=lambda: list(DEFAULT_STRATEGIES)
    )
    """Strategies ``rolloutlab check`` runs this scenario with: bundled names
    (``canary``, ``blue-green``, ``rolling``) or strategy files, relative to the scenario
    file (``strategies/canary-latency.yaml``). Default: the three bundled ones."""
    expect: list[ExpectationEntry] = Field(default_factory=list)
    """Requirements the outcome must meet (``rolloutlab check``)."""

    @property
    def service_under_test(self) -> Service:
        """The service whose releases are studied."""
        return next(s for s in self.services if s.under_test)

    def service(self, name: str) -> Service:
        """The service called ``name``; KeyError if there is none."""
        for candidate in self.services:
            if candidate.name == name:
                return candidate
        raise KeyError(name)

    @model_validator(mode="after")
    def _check_references(self) -> Scenario:
        self._check_services()
        names = {s.name for s in self.services}
        self._check_dependencies(names)
        self._check_traffic()
        self._check_faults(names)
        self._check_migration()
        self._check_strategies()
        for i, alert in enumerate(self.monitoring.alerts):
            if alert.service is not None and alert.service not in names:
                raise FieldError(
                    ("monitoring", "alerts", i, "service"), _unknown_service(alert.service, names)
                )
        return self

    def _check_services(self) -> None:
        first_index: dict[str, int] = {}
        under_test: list[int] = []
        for i, service in enumerate(self.services):
            if service.name in first_index:
                raise FieldError(
                    ("services", i, "name"),
                    f"service name {service.name!r} is used twice "
                    f"(first at services[{first_index[service.name]}])",
                )
            first_index[service.name] = i
            if service.under_test:
                under_test.append(i)
        if len(under_test) > 1:
            raise FieldError(
                ("services", under_test[1], "under_test"),
                f"only one service can be under test; services[{under_test[0]}] already is",
            )
        if not under_test:
            self.services[0].under_test = True

    def _check_dependencies(self, names: set[str]) -> None:
        edges: dict[tuple[str, str], int] = {}
        for i, dep in enumerate(self.dependencies):
            for end in ("caller", "callee"):
                if getattr(dep, end) not in names:
                    raise FieldError(
                        ("dependencies", i, end), _unknown_service(getattr(dep, end), names)
                    )
            if dep.caller == dep.callee:
                raise FieldError(
                    ("dependencies", i, "callee"), f"service {dep.caller!r} cannot call itself"
                )
            edge = (dep.caller, dep.callee)
            if edge in edges:
                raise FieldError(
                    ("dependencies", i),
                    f"{dep.caller} -> {dep.callee} is listed twice "
                    f"(first at dependencies[{edges[edge]}])",
                )
            edges[edge] = i

    def _check_traffic(self) -> None:
        profile = self.traffic.profile
        if isinstance(profile, SpikesProfile):
            for i, spike in enumerate(profile.spikes):
                self._check_time(("traffic", "profile", "spikes", i, "at"), spike.at)

    def _check_faults(self, names: set[str]) -> None:
        zones = {zone for service in self.services for zone in service.zones}
        for i, fault in enumerate(self.faults):
            self._check_time(("faults", i, "at"), fault.at)
            service_name = getattr(fault, "service", None)
            if service_name is not None and service_name not in names:
                raise FieldError(("faults", i, "service"), _unknown_service(service_name, names))
            if isinstance(fault, ZoneOutageFault) and fault.zone not in zones:
                raise FieldError(
                    ("faults", i, "zone"),
                    f"no service runs in zone {fault.zone!r} (zones: {', '.join(sorted(zones))})",
                )
            if isinstance(fault, NodeLossFault):
                service = (
                    self.service(fault.service) if fault.service else self.service_under_test
                )
                if service.nodes is not None and fault.count > service.nodes:
                    raise FieldError(
                        ("faults", i, "count"),
                        f"cannot lose {fault.count} nodes: service {service.name!r} "
                        f"runs on {service.nodes}",
                    )

    def _check_migration(self) -> None:
        needs_migration = [
            i
            for i, defect in enumerate(self.release.defects)
            if isinstance(defect, IncompatibleMigrationDefect)
        ]
        if self.migration is None:
            if needs_migration:
                raise FieldError(
                    ("release", "defects", needs_migration[0]),
                    "an incompatible_migration defect needs a 'migration' section "
                    "(which schema steps run when, and how long a repair takes)",
                )
            return
        for i, step in enumerate(self.migration.steps):
            if isinstance(step.at, float):
                self._check_time(("migration", "steps", i, "at"), step.at)
        for i in needs_migration:
            defect = self.release.defects[i]
            assert isinstance(defect, IncompatibleMigrationDefect)
            if defect.required_schema is not None and not (
                self.migration.initial_schema
                <= defect.required_schema
                <= self.migration.final_schema
            ):
                raise FieldError(
                    ("release", "defects", i, "required_schema"),
                    f"schema version {defect.required_schema} is never reached: the migration "
                    f"goes from {self.migration.initial_schema} to {self.migration.final_schema}",
                )

    def _check_strategies(self) -> None:
        bundled = bundled_strategy_names()
        seen: dict[str, int] = {}
        for i, entry in enumerate(self.strategies):
            if entry in seen:
                raise FieldError(
                    ("strategies", i), f"{entry!r} is listed twice (first at strategies[{seen[entry]}])"
                )
            seen[entry] = i
            if not is_strategy_path(entry) and entry not in bundled:
                raise FieldError(
                    ("strategies", i),
                    f"no bundled strategy {entry!r} (bundled: {', '.join(bundled)}); a strategy "
                    "file is named by its path ending in .yaml, relative to the scenario file",
                )

    def _check_time(self, path: tuple[str | int, ...], at: float) -> None:
        if at >= self.duration:
            raise FieldError(
                path,
                f"{_format_seconds(at)} is after the end of the simulated window "
                f"(duration {_format_seconds(self.duration)})",
            )


def _unknown_service(name: str, names: set[str]) -> str:
    return f"unknown service {name!r} (services: {', '.join(sorted(names))})"


def _format_seconds(seconds: float) -> str:
    if seconds >= 1e7:  # beyond ~4 months hours-and-minutes stop being readable
        return f"{seconds:g}s"
    if seconds >= 3600 and seconds % 60 == 0:
        hours, rest = divmod(int(seconds), 3600)
        return f"{hours}h{rest // 60}m" if rest else f"{hours}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds) // 60}m"
    return f"{seconds:g}s"


# --- loading ------------------------------------------------------------------------------


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file; any problem is an InputError naming the line."""
    return load_model_file(path, Scenario)


def bundled_scenario(name: str = "standard") -> Path:
    """Path of a scenario shipped with rolloutlab, by name: ``standard``, or one of the
    library's (``error-spike``)."""
    stem = name[: -len(".yaml")] if name.endswith(".yaml") else name
    if "/" not in stem and "\\" not in stem:
        for folder in (BUNDLED_SCENARIOS_DIR, SCENARIO_LIBRARY_DIR):
            path = folder / f"{stem}.yaml"
            if path.is_file():
                return path
    available = sorted(
        p.stem for folder in (BUNDLED_SCENARIOS_DIR, SCENARIO_LIBRARY_DIR) for p in folder.glob("*.yaml")
    )
    raise InputError(name, f"no bundled scenario of that name (available: {', '.join(available)})")
