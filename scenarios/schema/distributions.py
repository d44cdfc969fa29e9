"""Distributions of times (pod start, human response, repairs): fixed, uniform,
lognormal, exponential; a bare duration is shorthand for a fixed one."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, Union

from pydantic import BeforeValidator, Field, model_validator

from rolloutlab.errors import FieldError
from rolloutlab.scenarios.schema.fields import PositiveNumber, PositiveSeconds, Seconds, _Model

# z-scores of the standard normal at 0.90 and 0.99: a lognormal's p90 is median·e^(1.2816σ).
_Z90 = 1.2815515655446004
_Z99 = 2.3263478740408408
MAX_SIGMA = 5.0
"""Widest lognormal: sigma 5 puts p90 at 600 times the median already."""


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
    sigma: Annotated[PositiveNumber, Field(le=MAX_SIGMA)] | None = None
    """Spread of the log of the time; 0.5 is narrow, 1.5 very wide (at most 5)."""

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
        if self.sigma is None and self.sigma_value > MAX_SIGMA:
            name = given[0]
            raise FieldError(
                (name,),
                f"{name} ({getattr(self, name):g}s) is {getattr(self, name) / self.median:.3g} times "
                f"the median: a spread (sigma {self.sigma_value:.3g}) above {MAX_SIGMA:g} makes the "
                "mean overflow; a median and a tail this far apart are a typo",
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
