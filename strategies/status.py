"""Everything the controller must remember between two calls: plain, frozen data.

The simulator keeps a ``RolloutStatus`` in memory; the live runners persist it (as JSON,
see ``dump_status`` / ``load_status``) so that a restarted controller resumes exactly
where it stopped. Nothing here is derived from a clock: all times come from observations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from enum import Enum
from operator import attrgetter

from pydantic import TypeAdapter

from rolloutlab.strategies.observation import Counters, MeasurementWindow, Role


class Phase(str, Enum):
    """Argo Rollouts' rollout phases."""

    PROGRESSING = "Progressing"
    PAUSED = "Paused"
    HEALTHY = "Healthy"  # promoted (or nothing to do)
    DEGRADED = "Degraded"  # aborted, or the progress deadline passed


class PauseReason(str, Enum):
    CANARY_PAUSE_STEP = "CanaryPauseStep"
    INCONCLUSIVE_ANALYSIS = "InconclusiveAnalysis"
    BLUE_GREEN_PAUSE = "BlueGreenPause"


class AbortCause(str, Enum):
    """Why a rollout was aborted (Argo names its condition reasons as constants the same
    way): code reads the cause, never the message text."""

    ANALYSIS_FAILED = "AnalysisFailed"
    """A step, background or promotion analysis failed or errored."""
    COMMAND = "AbortCommand"
    """A person asked for it (``abort``)."""
    PROGRESS_DEADLINE = "ProgressDeadlineExceeded"
    """Pods did not become available within ``progressDeadlineSeconds`` (with ``progressDeadlineAbort``)."""


class AnalysisKind(str, Enum):
    STEP = "step"
    BACKGROUND = "background"
    PRE_PROMOTION = "prePromotion"
    POST_PROMOTION = "postPromotion"


class AnalysisPhase(str, Enum):
    """Argo's AnalysisRun phases."""

    RUNNING = "Running"
    SUCCESSFUL = "Successful"
    FAILED = "Failed"
    ERROR = "Error"
    INCONCLUSIVE = "Inconclusive"

    @property
    def done(self) -> bool:
        return self is not AnalysisPhase.RUNNING


@dataclass(frozen=True, slots=True)
class Measurement:
    """One judged measurement, kept for the timeline and the report."""

    at: float
    phase: str  # a judges.MeasurementPhase value
    value: float | None
    baseline_value: float | None
    message: str


@dataclass(frozen=True)  # no slots: evolve copies its __dict__ in one call (see evolve)
class MetricRun:
    """Progress of one metric inside an analysis run."""

    name: str
    phase: AnalysisPhase = AnalysisPhase.RUNNING
    due_at: float = 0.0  # when the next mark or measurement is due
    mark_at: float | None = None  # when the current window opened (None: initial delay not over)
    stable_mark: Counters = Counters()
    canary_mark: Counters = Counters()
    windows: tuple[MeasurementWindow, ...] = ()
    measurements: tuple[Measurement, ...] = ()
    successful: int = 0
    failed: int = 0
    inconclusive: int = 0
    errors: int = 0
    consecutive_errors: int = 0

    @property
    def count(self) -> int:
        return len(self.measurements)


@dataclass(frozen=True)  # no slots: evolve copies its __dict__ in one call (see evolve)
class AnalysisRun:
    """One analysis (Argo's AnalysisRun): several metrics started together."""

    kind: AnalysisKind
    key: str  # unique within a rollout: "step-3", "background", "prePromotion", ...
    started_at: float
    metrics: tuple[MetricRun, ...]
    phase: AnalysisPhase = AnalysisPhase.RUNNING
    message: str = ""
    finished_at: float | None = None


@dataclass(frozen=True)  # no slots: evolve copies its __dict__ in one call (see evolve)
class RolloutStatus:
    """The controller's memory of one rollout (one release moving from stable to canary)."""

    phase: Phase = Phase.PROGRESSING
    started_at: float | None = None
    step_index: int = 0
    step_started_at: float | None = None
    applied_weight: int = 0  # router weight we set (router mode); 0 otherwise
    routes: tuple[tuple[str, int], ...] = ()  # managed routes in force: (name, index of the step that set it)
    exposure_step: int | None = None  # feature flag: the step whose exposure is applied (None: flag off; len(steps): all on)
    deployed_at: float | None = None  # feature flag: when the dark code ran on every pod
    pause_reason: PauseReason | None = None
    pause_started_at: float | None = None
    active: Role = Role.STABLE  # blue-green: which version the active Service selects
    switched_at: float | None = None  # blue-green: when the active Service moved to the canary
    aborted: bool = False
    aborted_at: float | None = None
    abort_reason: str = ""  # what a person reads
    abort_cause: AbortCause | None = None  # what code reads
    restored_at: float | None = None  # abort finished: all traffic on a fully available stable
    completed: bool = False
    completed_at: float | None = None  # promotion finished: canary is the new stable
    scale_down_at: float | None = None  # when the losing version may be scaled to 0
    analyses: tuple[AnalysisRun, ...] = ()
    deadline_exceeded: bool = False
    last_progress_at: float | None = None
    progress_marker: tuple[int, ...] = ()
    last_command_id: int = 0
    requeue_at: float | None = None  # call reconcile again by then even if nothing changes
    message: str = ""

    def analysis(self, key: str) -> AnalysisRun | None:
        return next((a for a in self.analyses if a.key == key), None)

    @property
    def outcome(self) -> str:
        """``promoted``, ``aborted`` or ``in_progress``: what a results table records."""
        if self.completed:
            return "promoted"
        return "aborted" if self.aborted else "in_progress"


_SHAPES: dict[type, tuple[tuple[str, ...], frozenset[str], Callable | None]] = {}
_set_field = object.__setattr__


def _shape(cls: type) -> tuple[tuple[str, ...], frozenset[str], Callable | None]:
    """A class's field names, as a set, and, for a slotted class, one getter reading
    them all at once (None: the instances keep their fields in a ``__dict__``)."""
    shape = _SHAPES.get(cls)
    if shape is None:
        names = tuple(f.name for f in fields(cls))
        read_all = None
        if "__slots__" in cls.__dict__:
            read_all = attrgetter(*names) if len(names) > 1 else (lambda obj: (getattr(obj, names[0]),))  # one name: no tuple
        shape = _SHAPES[cls] = (names, frozenset(names), read_all)
    return shape


def evolve(obj, **changes):
    """A copy of a frozen status dataclass with ``changes``: ``dataclasses.replace``
    without its per-call introspection (the simulator calls this on every decision).
    Like ``object.__new__`` it skips ``__init__``: a copy of valid data with valid fields."""
    return evolved(obj, changes)


def evolved(obj, changes: dict):
    """``evolve`` with the changes as a dict (no keyword packing: reconcile's hot path)."""
    cls = type(obj)
    names, known, read_all = _shape(cls)
    if not known.issuperset(changes):
        unknown = changes.keys() - known
        raise TypeError(f"{cls.__name__} has no field(s) {', '.join(sorted(unknown))}")
    new = object.__new__(cls)
    if read_all is None:
        # the status classes keep no slots for this: two C calls copy every field, where
        # setting 27 slots one by one took most of a reconcile call's copy
        fields_of_new = new.__dict__
        fields_of_new.update(obj.__dict__)
        fields_of_new.update(changes)
        return new
    # every field read in one C call (attrgetter), then the changed ones overwritten
    for name, value in zip(names, read_all(obj)):
        _set_field(new, name, value)
    for name, value in changes.items():
        _set_field(new, name, value)
    return new


_STATUS = TypeAdapter(RolloutStatus)


def dump_status(status: RolloutStatus) -> str:
    """Status as compact JSON, for annotations and logs."""
    return _STATUS.dump_json(status).decode()


def load_status(text: str | bytes) -> RolloutStatus:
    """The status ``dump_status`` wrote; raises ValueError if the text is not one."""
    return _STATUS.validate_json(text)


__all__ = [
    "AbortCause", "AnalysisKind", "AnalysisPhase", "AnalysisRun", "Measurement", "MetricRun", "Phase",
    "PauseReason", "RolloutStatus", "dump_status", "evolve", "evolved", "load_status",
]
