"""A rollout's timeline: what the controller and the world did, point by point, in the
same shape from the simulator and from live runs, and how timelines are saved beside a
results table (``timelines.json``) for the report."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rolloutlab.errors import InputError

TIMELINES_FILE = "timelines.json"


@dataclass
class TimelinePoint:
    at: float
    declared_weight: float
    effective_weight: float
    stable_ready: int
    canary_ready: int
    stable_error_rate: float  # over the interval since the previous point
    canary_error_rate: float
    events: tuple[str, ...] = ()


def write_timelines(timelines: list[dict[str, Any]], out_dir: Path) -> Path:
    path = out_dir / TIMELINES_FILE
    path.write_text(json.dumps(timelines, allow_nan=False))
    return path


def read_timelines(path: Path) -> list[dict[str, Any]]:
    """Timelines written by ``write_timelines``; a missing file means none, a malformed
    one is bad input (InputError naming the file)."""
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(str(path), f"not a timelines file: {error}", line=getattr(error, "lineno", None)) from None
    required = {"scenario", "strategy", "run", "seed", "defect", "outcome", "points"}
    if not isinstance(data, list) or not all(isinstance(t, dict) and required <= t.keys() for t in data):
        raise InputError(str(path), f"not a timelines file: expected a list of objects with {', '.join(sorted(required))}")
    return data

