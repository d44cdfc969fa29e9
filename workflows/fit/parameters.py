"""A fitted parameter: its estimate and interval, the data it came from, or why it was refused.

One ``FittedParameter`` per thing ``rolloutlab fit`` states, scenario field or not: the
command's table prints each as a row and the written scenario carries each as a comment
above the field it sets, so both say the same thing.

The rule for refusing (``refuse``): a parameter the data cannot support is never filled
from thin air. It is reported as refused with the reason (how much data there was, how much
it needs), and the written scenario keeps the base scenario's value for it under a comment
saying so: that number is the base's, not the team's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rolloutlab.results.formatting import format_duration, format_quantity
from rolloutlab.results.statistics import Figure
from rolloutlab.workflows.fit.estimators import LognormalFit

MIN_DEPLOYMENTS = 10
"""Fewest deployments of the service a log must hold for ``fit`` to run at all (exit 2
below it): below ten, a deployment rate and a failure rate are both guesses."""
MIN_TIMES = 5
"""Fewest observed times (censored ones apart) a lognormal is fitted to: with five, the
median's 95% interval already spans about a factor of e^(2.78·σ/√5), four times for σ = 1."""


@dataclass(frozen=True)
class FittedParameter:
    """One stated parameter.

    ``key`` is the scenario field it sets (``history.deploys_per_day``), or None for a
    figure reported but not part of the scenario (the time to detect: the scenario's alert
    rules decide it in the simulator). ``value`` is what the scenario gets (a number, or a
    mapping such as a lognormal distribution); ``figures`` are the named estimates with
    their intervals (``rate``, ``median``, ``sigma``...) and ``unit`` how to show them.
    """

    title: str
    key: str | None
    value: Any
    figures: tuple[tuple[str, Figure], ...]
    unit: str
    source: str
    method: str
    refused: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    shown: str | None = None
    """How the value reads when the figures do not say it (a traffic profile's kind)."""

    @property
    def fitted(self) -> bool:
        return self.refused is None

    def describe_lines(self) -> list[str]:
        """Each estimate with its interval on its own line: "median 9m37s [7m41s, 12m03s]"."""
        if self.refused is not None:
            return ["refused"]
        if not self.figures:
            return [self.shown or ""]
        lines = [] if self.shown is None else [self.shown]
        for (name, fig), unit in zip(self.figures, self._units()):
            interval = ("" if fig.low is None or fig.high is None else
                        f" [{format_figure_value(fig.low, unit)}, {format_figure_value(fig.high, unit)}]")
            label = f"{name} " if len(self.figures) > 1 or self.shown is not None else ""
            lines.append(f"{label}{format_figure_value(fig.value, unit)}{interval}")
        return lines

    def _units(self) -> list[str]:
        # a lognormal's sigma is a plain number beside a median in seconds
        return ["number" if name == "sigma" else self.unit for name, _ in self.figures]


def format_figure_value(x: float | None, unit: str) -> str:
    """One number in the parameter's unit."""
    if x is None:
        return "n/a"
    if unit == "seconds":
        return format_duration(x)
    if unit == "per_day":
        return f"{x:.3g}/day"
    if unit == "share":
        return f"{100 * x:.3g}%"
    if unit == "ms":
        return f"{x:.3g} ms"
    if unit == "rps":
        return f"{format_quantity(x)} rps"
    return f"{x:.3g}"


def refuse(title: str, key: str | None, unit: str, source: str, reason: str) -> FittedParameter:
    """A parameter the data cannot support: no value, the reason instead."""
    return FittedParameter(title, key, None, (), unit, source, "", refused=reason)


def lognormal_parameter(title: str, key: str | None, fit: LognormalFit, source: str) -> FittedParameter:
    """A fitted lognormal time as the scenario schema writes it: median and sigma."""
    assert fit.median.value is not None and fit.sigma.value is not None
    value = {"kind": "lognormal", "median": round(fit.median.value, 1), "sigma": round(fit.sigma.value, 3)}
    censored = f" ({fit.censored} of {fit.n} not ended: censored)" if fit.censored else ""
    return FittedParameter(title, key, value, (("median", fit.median), ("sigma", fit.sigma)), "seconds",
                           f"{source}{censored}", fit.method)
