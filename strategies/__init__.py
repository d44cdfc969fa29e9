"""The shared rollout controller: strategy specs, the pure ``reconcile`` function, analysis
judges and replica math. Pure: no simulation kernel, no Kubernetes, no I/O but reading
the user's YAML files, no clock (a test enforces it).
"""

from rolloutlab.errors import InputError
from rolloutlab.strategies.actions import (
    Action,
    Event,
    EventReason,
    Promote,
    ScaleVersion,
    SetCanaryWeight,
    SwitchActive,
    SwitchPreview,
)
from rolloutlab.strategies.files import LIBRARY_DIR, bundled_strategy_names, load_strategy
from rolloutlab.strategies.observation import (
    LATENCY_BUCKETS_MS,
    Command,
    CommandRequest,
    Counters,
    MeasurementWindow,
    Observation,
    Role,
    VersionObservation,
    WindowStats,
)
from rolloutlab.strategies.reconcile import Reconciled, compute_declared_weight, compute_effective_weight, reconcile
from rolloutlab.strategies.replicas import (
    ReplicaCounts,
    RollingCounts,
    canary_replica_step,
    canary_replica_targets,
    effective_canary_weight,
    resolve_int_or_percent,
    rolling_update_step,
)
from rolloutlab.strategies.spec import StrategyKind, StrategySpec
from rolloutlab.strategies.status import AnalysisPhase, Phase, RolloutStatus, dump_status, load_status

__all__ = [
    "Action", "AnalysisPhase", "Command", "CommandRequest", "Counters", "Event", "EventReason",
    "InputError", "LATENCY_BUCKETS_MS", "LIBRARY_DIR", "MeasurementWindow", "Observation", "Phase",
    "Promote", "Reconciled", "ReplicaCounts", "Role", "RollingCounts", "RolloutStatus", "ScaleVersion",
    "SetCanaryWeight", "StrategyKind", "StrategySpec", "SwitchActive", "SwitchPreview",
    "VersionObservation", "WindowStats", "bundled_strategy_names", "canary_replica_step",
    "canary_replica_targets", "compute_declared_weight", "compute_effective_weight", "dump_status",
    "effective_canary_weight", "load_status", "load_strategy", "reconcile", "resolve_int_or_percent",
    "rolling_update_step",
]
