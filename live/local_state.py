"""What a local backend keeps in its state directory, which outlives it: the runner's state,
the backend's record of what it applied (the local analogue of the cluster's objects), and
the commands a person leaves. Files are written atomically (write, fsync, rename).

    state.json        the runner's state (``load_state``/``save_state``)
    backend.json      the ``Record``: scale per version, canary weight, active/preview,
                      stable version
    commands          one per line, ``<id> <command>`` (``3 abort``); ``#`` starts a comment
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

from rolloutlab.errors import LocalBackendError, StateError
from rolloutlab.live.runner import ReleasePlan, parse_command
from rolloutlab.strategies import CommandRequest, Role, RolloutStatus, StrategySpec
from rolloutlab.strategies.cycle import ceil_share
from rolloutlab.strategies.spec import StrategyKind

STATE_FILE = "state.json"
RECORD_FILE = "backend.json"
COMMANDS_FILE = "commands"
RECORD_VERSION = 1


@dataclass
class Record:
    """What the backend applied: the local analogue of the cluster's objects."""

    app: str
    release: str
    strategy: str
    desired: dict[str, int]  # role value -> pods wanted
    canary_weight: int = 0
    active: str = Role.STABLE.value
    preview: str | None = None
    stable_version: str = ""
    promoted: bool = False

    def dump(self) -> str:
        return json.dumps({"v": RECORD_VERSION, **asdict(self)}, indent=1, sort_keys=True)

    @classmethod
    def load(cls, text: str) -> "Record":
        data = json.loads(text)
        version = data.pop("v", None)
        if version != RECORD_VERSION:
            raise StateError(f"backend record format {version!r}, this backend reads {RECORD_VERSION}")
        return cls(**data)


def record_from_status(plan: ReleasePlan, spec: StrategySpec, status: RolloutStatus | None) -> Record:
    """The scale and routes a persisted controller status implies, for a state directory
    that has the runner's state but no backend record. The controller is level-triggered,
    so an approximate scale is corrected by its next cycle; what matters is that users keep
    a serving version: the stable at full scale unless the canary was promoted."""
    kind = spec.strategy.kind
    replicas = plan.replicas
    record = Record(plan.app, plan.release, kind.value, {"stable": replicas, "canary": 0},
                    stable_version=plan.stable.name)
    if status is None or status.started_at is None:
        return record
    if status.completed:
        record.desired = {"stable": 0 if status.scale_down_at is None else replicas, "canary": replicas}
        record.canary_weight, record.active = 100, Role.CANARY.value
        record.stable_version, record.promoted = plan.canary.name, True
        return record
    if status.aborted:
        keep = status.scale_down_at is not None or status.restored_at is None
        record.desired["canary"] = _canary_scale(spec, status, replicas) if keep else 0
        return record  # weight 0, active stable
    record.canary_weight = status.applied_weight
    record.active = status.active.value
    record.desired["canary"] = _canary_scale(spec, status, replicas)
    if kind is StrategyKind.BLUE_GREEN and status.step_index >= 1 and spec.strategy.blue_green.preview_service:
        record.preview = Role.CANARY.value
    return record


def _canary_scale(spec: StrategySpec, status: RolloutStatus, replicas: int) -> int:
    kind = spec.strategy.kind
    if kind is StrategyKind.BLUE_GREEN:
        bg = spec.strategy.blue_green
        return min(bg.preview_replica_count or replicas, replicas) if status.step_index >= 1 else 0
    if kind is StrategyKind.CANARY:
        return ceil_share(status.applied_weight, replicas) if status.applied_weight else 0
    return 0


def parse_commands(text: str, where: os.PathLike | str = COMMANDS_FILE) -> tuple[CommandRequest, ...]:
    """``<id> <command>`` per line (``3 abort``); blank lines and ``#`` comments skipped.
    A malformed line raises, naming the file and line: a command must never be guessed."""
    out = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            out.append(parse_command(line))
        except ValueError as error:
            raise LocalBackendError(f"{where}:{number}: {error}") from None
    return tuple(out)


def write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


__all__ = ["COMMANDS_FILE", "RECORD_FILE", "STATE_FILE", "Record", "parse_commands", "record_from_status",
           "write_atomically"]
