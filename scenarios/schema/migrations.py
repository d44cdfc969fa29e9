"""Database migrations done expand/contract style alongside the release."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, Union, get_args

from pydantic import BeforeValidator, Field, model_validator

from rolloutlab.errors import FieldError
from rolloutlab.scenarios.schema.distributions import Distribution, LognormalDistribution
from rolloutlab.scenarios.schema.fields import Label, SchemaVersion, _Model
from rolloutlab.strategies.yaml_input import parse_duration

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

    min_schema: SchemaVersion | None = None
    """Oldest schema version it works with."""
    max_schema: SchemaVersion | None = None
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

    initial_schema: SchemaVersion = 1
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
