"""``rolloutlab replay``: a strategy's analysis replayed over a recorded release.

What the other layers may use:

- ``ReplaySettings``, ``run_replay``: read a recording (a Prometheus server or a file) and
  replay a strategy over it (``command.py``);
- ``replay``: the controller stepped through a ``RecordedHistory`` (``replaying.py``), and
  its ``ReplayResult``;
- ``print_replay``, ``replay_payload``, ``write_replay``: the table, the JSON and the files.

Inside: ``recorded.py`` (counters per version over time, reset-corrected), ``selection.py``
(which series, which version), ``files.py`` (CSV and OpenMetrics), ``prometheus_source.py``
(range queries).
"""

from rolloutlab.workflows.replay.command import (
    ReplaySettings,
    print_replay,
    replay_payload,
    run_replay,
    write_replay,
)
from rolloutlab.workflows.replay.recorded import RecordedHistory
from rolloutlab.workflows.replay.replaying import ReplayResult, replay

__all__ = ["RecordedHistory", "ReplayResult", "ReplaySettings", "print_replay", "replay", "replay_payload",
           "run_replay", "write_replay"]
