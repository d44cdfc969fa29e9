"""Durations as users write them: ``30``, ``2.5``, ``"30s"``, ``"5m"``, ``"1h30m"``, ``"250ms"``.

Argo Rollouts and Flagger write durations the Go way (``time.ParseDuration``); we accept
the same strings plus bare numbers, always meaning seconds, and keep floats internally.
"""

from __future__ import annotations

import datetime
import re
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field, PlainSerializer

_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|s|m|h|d)")
_DURATION_HINT = "write seconds (90) or a string like '250ms', '30s', '5m', '1h30m'"
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def parse_duration(value: object) -> float:
    """Seconds from a number of seconds or a string like ``"30s"``, ``"5m"``, ``"1h30m"``.

    Units: ``ms``, ``s``, ``m`` (minutes), ``h``, ``d``; parts add up (``"1h30m"`` is
    5400.0) and may carry a sign (``"-5m"``). A bare number string means seconds. Booleans
    are rejected: YAML 1.1 reads ``on``/``yes`` as true, which is never a duration.
    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration: {_DURATION_HINT}")
    if isinstance(value, (int, float)):
        try:
            return float(value)
        except OverflowError:  # an int too large for a float
            raise ValueError(f"{value!r} seconds is too long a duration") from None
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, str):
        text = value.strip()
        if _NUMBER.fullmatch(text):
            return float(text)
        sign = -1.0 if text.startswith("-") else 1.0
        body = text[1:] if text[:1] in "+-" else text
        total, pos = 0.0, 0
        while pos < len(body):
            match = _DURATION_PART.match(body, pos)
            if match is None:
                break
            total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
            pos = match.end()
        if body and pos == len(body):
            return sign * total
    raise ValueError(f"{value!r} is not a duration: {_DURATION_HINT}")


def format_duration(seconds: float) -> str:
    """The shortest Go-style spelling of a duration, for writing specs back out (``90`` -> ``1m30s``)."""
    if seconds != int(seconds):
        return repr(float(seconds))  # a bare number means seconds; repr reads back exactly
    total, out = int(seconds), ""
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        if total >= size:
            out += f"{total // size}{unit}"
            total %= size
    return out or "0s"


MAX_DURATION = 366 * 86400.0
"""Longest duration a strategy may hold: a year. Deadlines, pauses and intervals are
minutes or hours; a longer value is a typo (``1e20``), and past it timers overflow."""


def _at_most_a_year(seconds: float) -> float:
    if seconds > MAX_DURATION:
        raise ValueError(f"{seconds:g}s is longer than a year ({MAX_DURATION:g}s), the longest duration that makes sense")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration), Field(ge=0, allow_inf_nan=False),
                     AfterValidator(_at_most_a_year), PlainSerializer(float, return_type=float)]
"""A pydantic field type: accepts numbers or duration strings, holds seconds (0 up to a year) as float."""
