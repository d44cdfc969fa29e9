"""The ground every spec model stands on: YAML's camelCase, refused unknown keys, numbers
written as numbers, Kubernetes' int-or-percent, and the bounds specs share."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict
from pydantic.alias_generators import to_camel

MAX_REPLICAS = 1_000
"""Most pods a strategy may ask for: the scenario schema's bound on a service's replicas."""
MAX_MEASUREMENTS = 10_000
"""Most measurements a metric may count or tolerate (a week of 1-minute intervals)."""
MAX_FACTOR = 1000.0
"""Largest relative effect or weight a judge may be given."""
MIN_INTERVAL = 1.0
"""Shortest analysis interval: 1 s, the finest resolution of Prometheus-style queries."""


def _reject_bool(value: Any) -> Any:
    # YAML 1.1 reads yes/no/on/off as booleans; pydantic would read them as 1/0.
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {str(value).lower()}")
    return value


Number = Annotated[float, BeforeValidator(_reject_bool)]
"""A number written as one: true/false (YAML's yes/no/on/off) is refused, not read as 1/0."""
Count = Annotated[int, BeforeValidator(_reject_bool)]
"""A whole number written as one (no true/false)."""

IntOrPercent = int | str
"""Kubernetes' intstr: a replica count (``2``) or a percentage of replicas (``"25%"``)."""

_PERCENT = re.compile(r"^\d+%$")  # whole percents, as Kubernetes' intstr: "2.5%" is refused there too
_MAX_PERCENT = {"max_surge": 1000.0, "max_unavailable": 100.0}
"""Kubernetes refuses maxUnavailable above 100%; a surge above 100% adds nothing, and far
above it is a typo."""


def _check_int_or_percent(value: IntOrPercent, field: str, max_percent: float = 100.0) -> IntOrPercent:
    if isinstance(value, bool):
        raise ValueError(f"{field} must be a replica count or a percentage like '25%'")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"{field} must not be negative, got {value}")
        if value > MAX_REPLICAS:
            raise ValueError(f"{field} {value} is above {MAX_REPLICAS} replicas, the most that makes sense")
        return value
    if isinstance(value, str) and _PERCENT.match(value.strip()):
        if float(value.strip()[:-1]) > max_percent:
            raise ValueError(f"{field} {value.strip()} is above {max_percent:g}% of the replicas")
        return value.strip()
    raise ValueError(f"{field} must be a replica count or a whole percentage like '25%', got {value!r}")


def _format_path(path: tuple[str | int, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


def _camel_path(*parts: str | int) -> tuple[str | int, ...]:
    """A field path in the names YAML uses (``startingStep``), for :class:`FieldError`."""
    return tuple(to_camel(p) if isinstance(p, str) else p for p in parts)


class SpecModel(BaseModel):
    """Base of every spec model: camelCase in YAML, snake_case in Python, unknown keys refused."""

    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True, allow_inf_nan=False
    )
