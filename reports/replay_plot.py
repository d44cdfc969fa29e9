"""The timeline of a ``rolloutlab replay``: the strategy's rollout drawn over a recorded
release, as the report draws one rollout (``timeline_plot.rollout_timeline``: the canary's
declared and effective share, each version's error rate, the analysis' measurements, lines
at abort and promotion), with the split the recording really had drawn on the share panel,
so a reader sees where the strategy would have sent traffic differently.

Reports read plain data: the replay hands its timeline as ``TimelinePoint``s (times in
seconds since the release's start) and the recorded canary share per point.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from rolloutlab.reports.plots import LABEL_SIZE, compute_duration_scale
from rolloutlab.reports.timeline_plot import rollout_timeline
from rolloutlab.results.timeline import TimelinePoint

RECORDED_COLOR = "#56B4E9"


def replay_timeline(points: Sequence[TimelinePoint], recorded_share: Sequence[float | None], title: str) -> Figure:
    """The replayed rollout (``rollout_timeline``) with the recorded canary share (percent of
    requests since the previous point; None where nothing was recorded) on its top panel."""
    if len(recorded_share) != len(points):
        raise ValueError(f"{len(recorded_share)} recorded shares for {len(points)} timeline points")
    fig = rollout_timeline(points, title=title)
    if not points:
        return fig
    weight_ax = fig.axes[0]
    at = np.array([p.at for p in points], dtype=float)
    divisor, _unit = compute_duration_scale(float(at.max() - at.min()))
    share = np.array([np.nan if s is None else s for s in recorded_share], dtype=float)
    # A share covers the interval before its point: drawn as a step ending at the point.
    weight_ax.step(at / divisor, share, where="pre", color=RECORDED_COLOR, linewidth=1.6, linestyle=":",
                   label="recorded", clip_on=False, gid="replay:recorded-share")
    weight_ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0, fontsize=LABEL_SIZE - 1)
    return fig
