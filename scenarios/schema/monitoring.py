"""Monitoring and people: health checks, alert rules, the on-call response, the
deployment history DORA metrics are computed over, and the service level objective."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from rolloutlab.errors import FieldError
from rolloutlab.scenarios.schema.distributions import (
    Distribution,
    FixedDistribution,
    LognormalDistribution,
)
from rolloutlab.scenarios.schema.fields import (
    MAX_MILLISECONDS,
    Label,
    NonNegativeNumber,
    Period,
    PositiveInt,
    PositiveNumber,
    PositiveSeconds,
    Probability,
    Seconds,
    ServiceName,
    Threshold,
    _is_number,
    _Model,
    _parse_fraction,
)
from rolloutlab.strategies.yaml_input import parse_duration

MAX_HISTORY_DAYS = 3650
"""Longest deployment history: ten years."""
MAX_DEPLOYS_PER_DAY = 100.0
"""Most deployments a day of one service: one every quarter hour, around the clock."""


class HealthCheck(_Model):
    """Monitoring's probe of the service (a synthetic check, as a blackbox exporter or an
    uptime check runs): one request through the Service every ``interval``.
    ``unhealthy_threshold`` failures in a row page the on-call person (``detected_by``
    alert), as an alert rule does; it runs only in scenarios that have alert rules (a
    scenario with ``alerts: []`` pages nobody). Pods' own readiness probes are the
    service's ``pod_timing.readiness``."""

    interval: Period = 2.0
    """Time between checks."""
    timeout: PositiveSeconds = 1.0
    """A check that takes longer fails."""
    healthy_threshold: Threshold = 2
    """Consecutive passes after which the check is healthy again (a timeline event only)."""
    unhealthy_threshold: Threshold = 3
    """Consecutive failures that page the on-call person."""


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
    evaluation_interval: Period = 15.0
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
        if self.metric == "latency_p99" and self.threshold > MAX_MILLISECONDS:
            raise FieldError(
                ("threshold",),
                f"a latency_p99 threshold is milliseconds: {self.threshold:g} ms is above an hour "
                f"({MAX_MILLISECONDS:g} ms), the most that makes sense",
            )
        return self


def _default_alerts() -> list[AlertRule]:
    return [AlertRule(name="high_error_rate", metric="error_rate", threshold=0.05, for_=300.0)]


class Monitoring(_Model):
    """What is measured and when someone gets paged."""

    scrape_interval: Period = 15.0
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

    days: Annotated[PositiveInt, Field(le=MAX_HISTORY_DAYS)] = 90
    """Length of the history."""
    deploys_per_day: Annotated[PositiveNumber, Field(le=MAX_DEPLOYS_PER_DAY)] = 2.0
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


def _parse_objective(value: Any) -> Any:
    """``"99.9%"`` stands for 0.999; a number is already the fraction. The percentage is
    divided in decimal, so "99.9%" is the float nearest 0.999 (99.9 / 100 is not)."""
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            return float(Decimal(value.strip()[:-1].strip()) / 100)
        except ArithmeticError:
            raise ValueError(f"{value!r} is not a percentage like '99.9%'") from None
    return _parse_fraction(value)


class ServiceLevelObjective(_Model):
    """What the team promises its users, as teams report against an SLA: ``objective``
    of the requests succeed over every ``window`` (e.g. 99.9% over 30 days). Reports show
    each strategy's availability and the share of the window's error budget one
    deployment burns."""

    objective: Annotated[float, BeforeValidator(_parse_objective), Field(gt=0, lt=1)]
    """Fraction of requests that must succeed, strictly between 0 and 1: 0.999 or "99.9%"."""
    window: PositiveSeconds = 30 * 86400.0
    """The period the objective is measured over (default 30 days)."""

    @property
    def error_budget(self) -> float:
        """Fraction of the window's requests allowed to fail: 1 - objective (in decimal, so
        99.9% leaves exactly 0.001)."""
        return float(1 - Decimal(repr(self.objective)))
