"""How figures are written for people: durations like a clock, counts to three significant
figures, proportions as percentages, and a figure with its interval as one table cell.

Every table and report writes numbers through these, so the terminal, the Markdown and
the HTML report say the same thing the same way. A figure whose estimate lies beyond
the longest time observed (a censored median, see
``results.statistics.compute_censored_quantile``) is written ">28m20s", never as a
number and never left out.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only for the annotation: statistics imports this module
    from rolloutlab.results.statistics import Figure

FIGURE_FORMATS = ("percent", "duration", "quantity")
"""The kinds ``format_figure`` knows: a proportion, a duration in seconds, a plain amount."""


def format_duration(seconds: float | None) -> str:
    """Seconds as a person reads them: "4.2s", "45s", "2m05s", "1h02m05s", from two days on
    "3d04h" (lead times, recovery over days); None is "n/a"."""
    if seconds is None or not math.isfinite(seconds):
        return "n/a"
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    if seconds < 10:
        return f"{sign}{seconds:.1f}s"
    total = round(seconds)
    if total >= 2 * 86400:
        days, rest = divmod(total, 86400)
        return f"{sign}{days}d{round(rest / 3600):02d}h" if round(rest / 3600) < 24 else f"{sign}{days + 1}d00h"
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{sign}{hours}h{minutes:02d}m{secs:02d}s"
    if minutes:
        return f"{sign}{minutes}m{secs:02d}s"
    return f"{sign}{secs}s"


def format_quantity(x: float | None) -> str:
    """A count or amount to three significant figures: "0.42", "12.3", "987", "12.3k", "4.56M"."""
    if x is None or not math.isfinite(x):
        return "n/a"
    rounded = float(f"{x:.3g}")  # round first, so 999.6 becomes "1k" rather than "1e+03"
    for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(rounded) >= scale:
            return f"{rounded / scale:.3g}{suffix}"
    return f"{rounded:.3g}" if abs(rounded) >= 1e-3 or rounded == 0 else f"{x:.1e}"


def format_percent(x: float | None) -> str:
    """A proportion as a percentage with one decimal, without the sign: 0.041 -> "4.1"."""
    return "n/a" if x is None or not math.isfinite(x) else f"{100 * x:.1f}"


def format_beyond(beyond: float | None, kind: str = "duration") -> str:
    """An amount known only to exceed ``beyond`` (the longest time observed): ">28m20s",
    without a space so that a table never wraps the sign away from its number; ">?" when
    even that is unknown."""
    if beyond is None or not math.isfinite(beyond):
        return ">?"
    return f">{_formatter(kind)(beyond)}"


def format_figure(figure: Figure, kind: str) -> str:
    """A table cell: "4.1% [2.9, 5.6]", "2m05s [1m50s, 2m20s]", "n/a", or "7 [n/a]" without an
    interval. An estimate or an interval end beyond the longest time observed is written
    ">28m20s" (``figure.beyond``); a censored figure says how many values were censored,
    "12m [9m, 15m] (3 cens.)"."""
    if figure.value is None:
        return "n/a"
    fmt = _formatter(kind)
    beyond = getattr(figure, "beyond", None)

    def one(x: float) -> str:
        return format_beyond(beyond, kind) if math.isinf(x) and x > 0 else fmt(x)

    head = f"{one(figure.value)}%" if kind == "percent" and math.isfinite(figure.value) else one(figure.value)
    censored = getattr(figure, "censored", 0)
    tail = f" ({censored} cens.)" if censored else ""
    if figure.low is None or figure.high is None:
        return f"{head} [n/a]{tail}"
    if math.isinf(figure.value) and math.isinf(figure.low):
        return f"{head}{tail}"  # the whole interval is beyond what was observed
    return f"{head} [{one(figure.low)}, {one(figure.high)}]{tail}"


def _formatter(kind: str):
    if kind == "percent":
        return format_percent
    if kind == "duration":
        return format_duration
    if kind == "quantity":
        return format_quantity
    raise ValueError(f"unknown figure kind {kind!r}; expected one of {', '.join(FIGURE_FORMATS)}")
