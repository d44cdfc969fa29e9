"""Traffic: the rate of user requests and how it varies over time."""

from __future__ import annotations

import re
from typing import Annotated, Literal, Union

from pydantic import BeforeValidator, Field, field_validator, model_validator

from rolloutlab.errors import FieldError
from rolloutlab.scenarios.schema.fields import (
    Factor,
    OptionalRequestRate,
    Period,
    PositiveInt,
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


_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an HTTP token (RFC 9110 §5.1)
MAX_USERS = 100_000_000


class Segment(_Model):
    """A group of users whose requests carry the same headers (a header or a cookie a
    route or a flag can target: staff, beta testers, a region)."""

    name: Annotated[str, Field(min_length=1, max_length=63)]
    """What the segment is called in reports."""
    users: Annotated[Probability, Field(gt=0)]
    """Share of the users in this segment."""
    requests: Annotated[Probability, Field(gt=0)] | None = None
    """Share of the requests its users send (default: its share of users: users of every
    segment send alike)."""
    headers: dict[str, str] = Field(default_factory=dict)
    """Headers every request of its users carries (``cookie`` for a cookie)."""

    @field_validator("headers")
    @classmethod
    def _header_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not _HEADER_NAME.match(name):
                raise ValueError(f"{name!r} is not an HTTP header name")
        return {k.lower(): v for k, v in value.items()}

    @property
    def request_share(self) -> float:
        return self.users if self.requests is None else self.requests


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
    users: Annotated[PositiveInt, Field(le=MAX_USERS)] = 10_000
    """Distinct users sending the requests over the scenario's window (for the share of
    users a release hurt, and for routes and flags that are sticky per user)."""
    segments: list[Segment] = Field(default_factory=list)
    """User segments routes and flags can target; the users in none of them are
    "everyone else" and carry no header."""
    write_share: Probability = 0.0
    """Share of requests that are writes (POST); the rest are reads (GET). A mirror that
    copies writes performs them twice when the new version's writes have side effects."""

    @model_validator(mode="after")
    def _check_segments(self) -> "Traffic":
        names = [s.name for s in self.segments]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise FieldError(("segments", i, "name"), f"segment {name!r} is named twice")
        for field in ("users", "requests"):
            total = sum(getattr(s, field) if field == "users" else s.request_share for s in self.segments)
            if total > 1 + 1e-9:
                raise FieldError(("segments",), f"the segments' {field} shares add up to {total:g}, above 1")
        return self
