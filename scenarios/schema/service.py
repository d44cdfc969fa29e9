"""Services: replicas, capacity, latency, how pods start and stop, and who calls whom."""

from __future__ import annotations

import math
from typing import Annotated

from pydantic import Field, model_validator

from rolloutlab.errors import FieldError
from rolloutlab.scenarios.schema.distributions import Distribution, FixedDistribution, UniformDistribution
from rolloutlab.scenarios.schema.fields import (
    Factor,
    Label,
    Milliseconds,
    Nodes,
    Period,
    PositiveSeconds,
    Probability,
    Replicas,
    RequestRate,
    Seconds,
    ServiceName,
    Threshold,
    _Model,
)


class Latency(_Model):
    """How long a healthy replica takes to answer: lognormal, fixed by median and p99."""

    median_ms: Milliseconds = 50.0
    """Typical response time, in milliseconds."""
    p99_ms: Milliseconds = 250.0
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
    period: Period = 10.0
    """Time between checks."""
    timeout: PositiveSeconds = 1.0
    """A check that takes longer than this fails."""
    success_threshold: Threshold = 1
    """Consecutive passes needed to become Ready."""
    failure_threshold: Threshold = 3
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
    replicas: Replicas = 10
    """Desired number of pods of the stable version."""
    capacity_rps: RequestRate = 200.0
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
    nodes: Nodes | None = None
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
    calls_per_request: Factor = 1.0
    """Average calls to the callee per request the caller serves."""
    error_propagation: Probability = 1.0
    """Chance that a failed call fails the caller's request (lower with retries or
    fallbacks)."""
