"""What a local backend measured about itself, for ``rolloutlab validate`` to record: each
container's start-to-ready time and each router switch's delay (wall seconds)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from rolloutlab.strategies import Role


@dataclass(frozen=True)
class PodStart:
    """One container start: when its process was spawned and when the probe first passed."""

    pod: str
    role: Role
    version: str
    container: int  # 0 for the first start, then one per restart
    started_at: float  # time.monotonic()
    ready_at: float | None

    @property
    def start_to_ready_s(self) -> float | None:
        return None if self.ready_at is None else self.ready_at - self.started_at


@dataclass(frozen=True)
class SwitchTiming:
    """One router switch: the runtime API round trip, and the time from sending the command
    to the first answer from the new version through the switched frontend."""

    action: str
    target: str  # version name
    at: float  # time.monotonic() when the command was sent
    command_s: float
    first_response_s: float | None  # None: no answer from the target within the probe budget
    probes: int  # requests it took (the first answering from the target included)


@dataclass(frozen=True)
class Calibration:
    """Measured figures of this backend, for ``rolloutlab validate`` to record."""

    router_start_s: float | None
    probe_period_s: float  # resolution of the start-to-ready times
    pod_starts: tuple[PodStart, ...]
    switches: tuple[SwitchTiming, ...]

    @property
    def start_to_ready_s(self) -> list[float]:
        return [p.start_to_ready_s for p in self.pod_starts if p.start_to_ready_s is not None]

    @property
    def switch_delays_s(self) -> list[float]:
        return [s.first_response_s for s in self.switches if s.first_response_s is not None]

    def summary(self) -> dict[str, float | int | None]:
        ready, switch = sorted(self.start_to_ready_s), sorted(self.switch_delays_s)
        return {
            "router_start_s": self.router_start_s,
            "probe_period_s": self.probe_period_s,
            "pod_starts": len(ready),
            "pod_start_to_ready_median_s": _quantile(ready, 0.5),
            "pod_start_to_ready_p90_s": _quantile(ready, 0.9),
            "pod_start_to_ready_max_s": ready[-1] if ready else None,
            "switches": len(switch),
            "switch_delay_median_s": _quantile(switch, 0.5),
            "switch_delay_max_s": switch[-1] if switch else None,
        }


def _quantile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))]


__all__ = ["Calibration", "PodStart", "SwitchTiming"]
