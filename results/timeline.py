"""A rollout's timeline: what the controller and the world did, point by point, in the
same shape from the simulator and from live runs, and how timelines are saved beside a
results table (``timelines.json``) for the report."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from rolloutlab.errors import InputError

TIMELINES_FILE = "timelines.json"


class WorldEvent(str, Enum):
    """Reasons of the events the world records beside the controller's own
    (``strategies.actions.EventReason`` values, e.g. ``Aborted``, ``Measurement``)."""

    ALERT_FIRED = "AlertFired"
    """A monitoring alert fired and paged the on-call person."""
    POD_READY = "PodReady"
    """A pod passed its readiness probe and joined the endpoints."""
    POD_NOT_READY = "PodNotReady"
    """A pod failed its readiness probe and left the endpoints."""
    HEALTH_CHECK_PASSED = "HealthCheckPassed"
    """Monitoring's health check of the service passed again."""
    HEALTH_CHECK_FAILED = "HealthCheckFailed"
    """Monitoring's health check of the service failed its threshold."""


@dataclass(frozen=True)
class TimelineEvent:
    """One event on a timeline, typed: code reads ``reason`` and the typed fields, never
    ``message`` (what a person reads). A measurement names its ``metric`` and ``phase``
    (Successful, Failed, Inconclusive, Error, Pending), a finished analysis its ``phase``."""

    reason: str
    """A controller ``EventReason`` value or a ``WorldEvent`` value."""
    message: str = ""
    metric: str | None = None
    phase: str | None = None

    @classmethod
    def from_json(cls, data: Any) -> TimelineEvent:
        """An event as ``timelines.json`` holds it: an object with these keys, or, in files
        written before events were typed, a ``"Reason: message"`` string (read once here)."""
        if isinstance(data, TimelineEvent):
            return data
        if isinstance(data, str):
            reason, _, message = data.partition(": ")
            return cls(reason, message)
        if isinstance(data, dict) and isinstance(data.get("reason"), str):
            return cls(data["reason"], str(data.get("message", "")), data.get("metric"), data.get("phase"))
        raise ValueError(f"not a timeline event: {data!r}")


@dataclass
class TimelinePoint:
    at: float
    declared_weight: float
    effective_weight: float
    stable_ready: int
    canary_ready: int
    stable_error_rate: float  # over the interval since the previous point
    canary_error_rate: float
    events: tuple[TimelineEvent, ...] = ()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TimelinePoint:
        """A point as ``timelines.json`` holds it (``dataclasses.asdict`` of one)."""
        return cls(**{**data, "events": tuple(TimelineEvent.from_json(e) for e in data.get("events", ()))})


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

