"""Release defects: how likely a release is to be bad, and in which way."""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import BeforeValidator, Field, model_validator

from rolloutlab.errors import FieldError
from rolloutlab.scenarios.schema.fields import (
    MAX_FACTOR,
    AddedMilliseconds,
    NonNegativeNumber,
    PositiveSeconds,
    Probability,
    RequestRate,
    SchemaVersion,
    Seconds,
    Weight,
    _kind_shorthand,
    _Model,
    _reject_bool,
)


class ErrorRateDefect(_Model):
    """The new version fails a share of the requests it serves."""

    kind: Literal["error_rate"] = "error_rate"
    weight: Weight = 1.0
    """Relative likelihood of this defect among the release's defects."""
    behind_flag: bool = True
    """Whether the defect lives in the code path a feature flag guards (a
    ``featureFlag`` release): then only users with the flag on meet it, and turning the
    flag off removes it. Other strategies ship the code path live: it acts on all."""
    error_rate: Probability = 0.05
    """Extra probability that a request served by the new version fails."""


class LatencyDefect(_Model):
    """The new version is slower: latency = baseline * multiplier + added_ms."""

    kind: Literal["latency"] = "latency"
    weight: Weight = 1.0
    """Relative likelihood of this defect among the release's defects."""
    behind_flag: bool = True
    """Whether the defect lives in the code path a feature flag guards (a
    ``featureFlag`` release): then only users with the flag on meet it, and turning the
    flag off removes it. Other strategies ship the code path live: it acts on all."""
    multiplier: Annotated[float, BeforeValidator(_reject_bool), Field(ge=1, le=MAX_FACTOR)] = 2.0
    """Factor on the healthy response time."""
    added_ms: AddedMilliseconds = 0.0
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
    weight: Weight = 1.0
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
    weight: Weight = 1.0
    """Relative likelihood of this defect among the release's defects."""
    behind_flag: bool = False
    """Whether the defect lives in the code path a feature flag guards (a
    ``featureFlag`` release): then only users with the flag on meet it, and turning the
    flag off removes it. Other strategies ship the code path live: it acts on all."""
    after: Seconds = 600.0
    """How long after its start a pod begins to degrade."""
    error_rate_per_minute: Probability = 0.01
    """Extra error probability gained per minute of degradation."""
    latency_growth_per_minute: Annotated[NonNegativeNumber, Field(le=MAX_FACTOR)] = 0.0
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
    weight: Weight = 1.0
    """Relative likelihood of this defect among the release's defects."""
    behind_flag: bool = True
    """Whether the defect lives in the code path a feature flag guards (a
    ``featureFlag`` release): then only users with the flag on meet it, and turning the
    flag off removes it. Other strategies ship the code path live: it acts on all."""
    traffic_share_threshold: Annotated[Probability, Field(gt=0)] = 1.0
    """The defect shows once the new version serves at least this share of traffic."""
    per_pod_rps_threshold: RequestRate | None = None
    """...or once one new-version pod serves at least this many requests per second."""
    error_rate: Probability = 0.5
    """Extra probability that a request to the new version fails while it shows."""


class IncompatibleMigrationDefect(_Model):
    """The release and the database schema disagree: the new version needs a schema the
    migration has not reached yet, or the migration it ships breaks the old version, so a
    rollback does not help and the team must repair forward
    (``migration.rollforward_repair_time``). Needs a ``migration`` section."""

    kind: Literal["incompatible_migration"] = "incompatible_migration"
    weight: Weight = 1.0
    """Relative likelihood of this defect among the release's defects."""
    required_schema: SchemaVersion | None = None
    """Schema version the new version needs; default the last one the migration reaches."""
    breaks_old: bool = True
    """Whether the old version fails on that schema (rollback is then impossible)."""
    error_rate: Probability = 1.0
    """Probability that a request fails when an app version runs on a schema it does
    not support."""


class SideEffectsDefect(_Model):
    """The new version's writes are not safe to repeat, and it writes to state the old
    version shares (a database, a payment API, a mailer): every write a mirror route
    copies to it is performed a second time (a second order, a second email). Routed
    normally it is a healthy release; it is shadowing's own risk, and analysis never
    sees it (the copy is answered 200). Harms users while writes are mirrored to it."""

    kind: Literal["side_effects"] = "side_effects"
    weight: Weight = 1.0
    """Relative likelihood of this defect among the release's defects."""


Defect = Annotated[
    Union[
        ErrorRateDefect,
        LatencyDefect,
        CrashOnStartDefect,
        LeakDefect,
        FullLoadOnlyDefect,
        IncompatibleMigrationDefect,
        SideEffectsDefect,
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
