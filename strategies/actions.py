"""What the controller asks a runner to do: plain, frozen data a runner can log and replay.

Each runner has one adapter that applies these (the simulator to its SimPy world, the
Kubernetes backend through the API, the local backend to processes and HAProxy). Actions
are level-style requests: the controller repeats ``ScaleVersion`` until the observation
shows the runner applied it, so applying one twice must be harmless.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from rolloutlab.strategies.observation import Role
from rolloutlab.strategies.routes import HeaderMatch, RouteMatch


@dataclass(frozen=True, slots=True)
class ScaleVersion:
    """Run ``replicas`` pods of a version."""

    role: Role
    replicas: int

    def __post_init__(self) -> None:
        if self.replicas < 0:
            raise ValueError(f"cannot scale {self.role.value} to {self.replicas} replicas")


@dataclass(frozen=True, slots=True)
class SetCanaryWeight:
    """Send ``weight`` percent of traffic to the canary through the router (router mode only)."""

    weight: int

    def __post_init__(self) -> None:
        if not 0 <= self.weight <= 100:
            raise ValueError(f"canary weight must be within 0..100, got {self.weight}")


@dataclass(frozen=True, slots=True)
class SwitchActive:
    """Point the active (user-facing) Service of a blue-green rollout at a version."""

    role: Role


@dataclass(frozen=True, slots=True)
class SwitchPreview:
    """Point the preview Service of a blue-green rollout at a version (None: no endpoints)."""

    role: Role | None


@dataclass(frozen=True, slots=True)
class SetHeaderRoute:
    """Add (or replace) the managed route ``name``: requests whose headers match any entry
    of ``match`` go to the canary, all of them (Argo's ``setHeaderRoute``)."""

    name: str
    match: tuple[HeaderMatch, ...]


@dataclass(frozen=True, slots=True)
class SetMirrorRoute:
    """Add (or replace) the managed route ``name``: ``percentage`` of the requests matching
    any entry of ``match`` are copied to the canary, whose answers nobody sees (Argo's
    ``setMirrorRoute``); those requests are still split by weight as usual."""

    name: str
    percentage: int
    match: tuple[RouteMatch, ...]

    def __post_init__(self) -> None:
        if not 0 <= self.percentage <= 100:
            raise ValueError(f"mirror percentage must be within 0..100, got {self.percentage}")


@dataclass(frozen=True, slots=True)
class RemoveRoute:
    """Remove the managed route ``name`` (a step without match, promotion or abort)."""

    name: str


@dataclass(frozen=True, slots=True)
class SetFlagExposure:
    """Turn the flag ``flag_key`` on for ``percentage`` of users (sticky per user) and for
    every user whose headers match an entry of ``match``; off for everyone else.
    ``SetFlagExposure(key, 0, ())`` turns it off for everybody (an abort)."""

    flag_key: str
    percentage: int
    match: tuple[HeaderMatch, ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.percentage <= 100:
            raise ValueError(f"flag exposure must be within 0..100 percent, got {self.percentage}")

    @property
    def off(self) -> bool:
        return self.percentage == 0 and not self.match


@dataclass(frozen=True, slots=True)
class Promote:
    """The canary revision becomes the stable revision for the next release.

    Roles stay fixed for the whole rollout (``canary`` is always the new revision); this
    tells a runner to record the new stable revision (Argo: ``status.stableRS``)."""


class EventReason(str, Enum):
    ROLLOUT_STARTED = "RolloutStarted"
    STEP_COMPLETED = "StepCompleted"
    WEIGHT_CHANGED = "WeightChanged"
    ROUTE_CHANGED = "RouteChanged"
    EXPOSURE_CHANGED = "ExposureChanged"
    DEPLOYED_DARK = "DeployedDark"
    PAUSED = "Paused"
    RESUMED = "Resumed"
    ANALYSIS_STARTED = "AnalysisStarted"
    MEASUREMENT = "Measurement"
    ANALYSIS_COMPLETED = "AnalysisCompleted"
    SWITCHED = "ActiveSwitched"
    PROMOTED = "Promoted"
    ABORTED = "Aborted"
    ROLLED_BACK = "RolledBack"
    RETRIED = "Retried"
    DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"
    COMMAND_IGNORED = "CommandIgnored"


@dataclass(frozen=True, slots=True)
class Event:
    """Something a person would want on the rollout's timeline.

    Code reads ``reason`` and the typed fields, never ``message`` (Argo checks a
    condition's reason, not its text): a measurement names its ``metric`` and its
    ``phase`` (a judges.MeasurementPhase value), a finished analysis its ``phase`` (an
    AnalysisPhase value); ``message`` is what a person reads."""

    at: float
    reason: EventReason
    message: str
    metric: str | None = None
    phase: str | None = None


Action = (ScaleVersion | SetCanaryWeight | SwitchActive | SwitchPreview | SetHeaderRoute | SetMirrorRoute
          | RemoveRoute | SetFlagExposure | Promote | Event)
