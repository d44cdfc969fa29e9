"""Expectations: requirements on the outcome (``mttr.p90 <= 300s``), checked after the
runs, and which strategies they are required of."""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from typing import Annotated, Any, Literal, get_args

from pydantic import BeforeValidator, Field

from rolloutlab.scenarios.schema.fields import Label, _Model
from rolloutlab.strategies.yaml_input import parse_duration

MetricName = Literal[
    "change_failure_rate",
    "false_rollback_rate",
    "mttr",
    "failed_requests",
    "release_failed_requests",
    "failed_request_fraction",
    "detected_within",
    "rollout_duration",
    "cost",
    "users_affected",
    "duplicated_writes",
    "blast_radius",
]
StatName = Literal["mean", "median", "p50", "p90", "p95", "p99", "max"]
Operator = Literal["<", "<=", ">", ">=", "=="]

METRICS: dict[str, str] = {
    "change_failure_rate": "rate",
    "false_rollback_rate": "rate",
    "mttr": "duration",
    "failed_requests": "count",
    "release_failed_requests": "count",
    "failed_request_fraction": "fraction",
    "detected_within": "duration",
    "rollout_duration": "duration",
    "cost": "replica_seconds",
    "users_affected": "fraction",
    "duplicated_writes": "count",
    "blast_radius": "fraction",
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
