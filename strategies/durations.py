"""Durations as users write them: ``30``, ``2.5``, ``"30s"``, ``"5m"``, ``"1h30m"``, ``"250ms"``.

Argo Rollouts and Flagger write durations the Go way (``time.ParseDuration``); we accept
the same strings plus bare numbers, always meaning seconds, and keep floats internally.
"""

from __future__ import annotations

import math
import re
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer

_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


def parse_duration(value: object) -> float:
    """Seconds in a duration: a non-negative number, or Go-style units (``1h30m``, ``250ms``)."""
    if isinstance(value, bool):
        raise ValueError("a duration must be a number of seconds or a string like '30s', not a boolean")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            seconds = float(text)
        except ValueError:
            pos, seconds = 0, 0.0
            for match in _PART.finditer(text):
                if match.start() != pos:
                    break
                seconds += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
                pos = match.end()
            if pos != len(text) or not text:
                raise ValueError(
                    f"{value!r} is not a duration; write seconds (30) or units like '30s', '5m', '1h30m', '250ms'"
                ) from None
    else:
        raise ValueError(f"a duration must be a number of seconds or a string like '30s', not {type(value).__name__}")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"a duration must be a finite, non-negative number of seconds, got {value!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest Go-style spelling of a duration, for writing specs back out (``90`` -> ``1m30s``)."""
    if seconds != int(seconds):
        return f"{seconds:g}s"
    total, out = int(seconds), ""
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        if total >= size:
            out += f"{total // size}{unit}"
            total %= size
    return out or "0s"


Duration = Annotated[float, BeforeValidator(parse_duration), PlainSerializer(float, return_type=float)]
"""A pydantic field type: accepts numbers or duration strings, holds seconds as float."""
