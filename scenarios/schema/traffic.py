"""Traffic: the rate of user requests and how it varies over time."""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import BeforeValidator, Field

from rolloutlab.scenarios.schema.fields import (
    Factor,
    OptionalRequestRate,
    Period,
    PositiveSeconds,
    Probability,
    RequestRate,
    Seconds,
    SignedSeconds,
    _kind_shorthand,
    _Model,
)


class ConstantProfile(_Model):
    """Steady traffic at ``rps``."""

    kind: Literal["constant"] = "constant"


class DiurnalProfile(_Model):
    """Daily rhythm: rate(t) = rps * (1 + amplitude * cos(2π (t - phase) / period)),
    so traffic peaks at ``phase`` and every ``period`` after it."""

    kind: Literal["diurnal"] = "diurnal"
    amplitude: Probability = 0.5
    """Swing around the mean as a fraction of it: 0.5 means 50% to 150% of rps."""
    period: Period = 86400.0
    """Length of one cycle."""
    phase: SignedSeconds = 0.0
    """Time of the peak, counted from the start of the simulated window."""


class Spike(_Model):
    """A burst (or dip) of traffic."""

    at: Seconds
    """When it starts."""
    duration: PositiveSeconds = 60.0
    """How long it lasts."""
    multiplier: Factor = 3.0
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

    rps: RequestRate = 1000.0
    """Mean requests per second."""
    profile: TrafficProfile = Field(default_factory=ConstantProfile)
    """How the rate varies around the mean."""
    preview_rps: OptionalRequestRate = 10.0
    """Blue-green only: test traffic (smoke tests, QA) reaching the preview Service before
    the switch; its failures are measured by analysis but hurt no user."""
