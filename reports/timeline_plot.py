"""One rollout over time, as the report draws a chosen run: the new version's share of
traffic, each version's error rate, the analysis' measurements, and vertical lines at the
moments a reader looks for first (promoted, aborted, rolled back, alert fired).

Marks are read from the timeline's event texts ("Measurement: error-rate: Failed ...",
"Aborted: ..."): ``parse_timeline_events`` is the one place that reads them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

import numpy as np
from matplotlib.figure import Figure

from rolloutlab.reports.plots import (
    LABEL_SIZE,
    TITLE_SIZE,
    compute_duration_scale,
    draw_empty_note,
    new_figure,
    strategy_color,
)
from rolloutlab.results.timeline import TimelinePoint


class AnalysisMark(str, Enum):
    """The mark an analysis measurement leaves on a rollout's timeline: its phase, as the
    analysis reported it (the controller's measurement phase, read from the event text)."""

    SUCCESSFUL = "Successful"
    FAILED = "Failed"
    INCONCLUSIVE = "Inconclusive"
    ERROR = "Error"


class MilestoneKind(str, Enum):
    """Rollout events worth a vertical line: the moments a reader looks for first."""

    PROMOTED = "Promoted"
    ABORTED = "Aborted"
    ROLLED_BACK = "RolledBack"
    ALERT_FIRED = "AlertFired"


@dataclass(frozen=True)
class MeasurementMark:
    """One analysis measurement on the timeline: when, of which metric, with which phase."""

    at: float
    metric: str
    mark: AnalysisMark


@dataclass(frozen=True)
class Milestone:
    """A rollout event worth a vertical line: when, which kind, and the event's message."""

    at: float
    kind: MilestoneKind
    message: str


@dataclass(frozen=True)
class TimelineMarks:
    """What ``parse_timeline_events`` reads from a timeline's events."""

    measurements: tuple[MeasurementMark, ...]
    milestones: tuple[Milestone, ...]


_MARK_STYLE = {
    AnalysisMark.SUCCESSFUL: ("#009E73", "o"),
    AnalysisMark.FAILED: ("#D55E00", "X"),
    AnalysisMark.INCONCLUSIVE: ("#9a9a9a", "s"),
    AnalysisMark.ERROR: ("#CC79A7", "D"),
}
_MILESTONE_STYLE = {
    MilestoneKind.PROMOTED: ("#009E73", "-", "promoted"),
    MilestoneKind.ABORTED: ("#D55E00", "--", "aborted"),
    MilestoneKind.ROLLED_BACK: ("#8B0000", "-", "rolled back"),
    MilestoneKind.ALERT_FIRED: ("#CC79A7", ":", "alert"),
}


MILESTONE_GAP = 0.03
"""Milestones closer than this share of the timeline's span get one label: an abort and its
rollback in the same second would otherwise be printed over each other."""


def compute_milestone_groups(milestones: Sequence[Milestone], gap: float) -> list[list[Milestone]]:
    """Milestones in time order, grouped while each is within ``gap`` seconds of the
    group's first."""
    groups: list[list[Milestone]] = []
    for milestone in sorted(milestones, key=lambda m: m.at):
        if groups and milestone.at - groups[-1][0].at <= gap:
            groups[-1].append(milestone)
        else:
            groups.append([milestone])
    return groups


def parse_timeline_events(timeline: Sequence[TimelinePoint]) -> TimelineMarks:
    """Measurements (their ``metric`` and ``phase``) and milestones (Promoted, Aborted,
    RolledBack, AlertFired) from a timeline's typed events, by reason; other events and
    "Pending" measurements (not yet judged) are left out. No message text is read."""
    measurements: list[MeasurementMark] = []
    milestones: list[Milestone] = []
    kinds = {k.value: k for k in MilestoneKind}
    phases = {v.value: v for v in AnalysisMark}
    for point in timeline:
        for event in point.events:
            if event.reason == "Measurement":
                if event.phase in phases and event.metric is not None:
                    measurements.append(MeasurementMark(float(point.at), event.metric, phases[event.phase]))
            elif event.reason in kinds:
                milestones.append(Milestone(float(point.at), kinds[event.reason], event.message))
    return TimelineMarks(tuple(measurements), tuple(milestones))


def rollout_timeline(timeline: Sequence[TimelinePoint], title: str = "Rollout timeline") -> Figure:
    """One rollout over time: the new version's share of traffic (declared by the strategy vs
    effective at the router; the canary's weight) on top, each version's error rate in the
    middle, the analysis' measurement phases at the bottom; vertical lines mark promote,
    abort, rollback and fired alerts on every panel, milestones at one moment named in one
    label. Legends sit right of the panels, where they cannot cover a line."""
    fig, axes = new_figure(3, 1, figsize=(8.0, 6.5), sharex=True,
                            gridspec_kw={"height_ratios": [3, 3, 1.4]})
    weight_ax, error_ax, mark_ax = axes[:, 0]
    fig.suptitle(title, fontsize=TITLE_SIZE)
    weight_ax.set_ylabel("traffic on the new\nversion (%)", fontsize=LABEL_SIZE)
    error_ax.set_ylabel("error rate (%)", fontsize=LABEL_SIZE)
    phases = list(AnalysisMark)
    mark_ax.set_yticks(range(len(phases)), [v.value for v in phases], fontsize=LABEL_SIZE - 2)
    mark_ax.set_ylim(-0.6, len(phases) - 0.4)
    if not timeline:
        draw_empty_note(weight_ax, "no timeline recorded")
        mark_ax.set_xlabel("time since rollout start (s)", fontsize=LABEL_SIZE)
        return fig

    at = np.array([p.at for p in timeline], dtype=float)
    divisor, unit = compute_duration_scale(float(at.max() - at.min()))
    t = at / divisor
    # Not clipped: a weight of 0 or 100 runs along the axes' edge and must show whole.
    weight_ax.step(t, [p.declared_weight for p in timeline], where="post", color="#555555",
                   linestyle="--", linewidth=1.6, label="declared", clip_on=False)
    weight_ax.step(t, [p.effective_weight for p in timeline], where="post", color=strategy_color("canary"),
                   linewidth=2.2, label="effective", clip_on=False)
    weight_ax.set_ylim(0, 105)
    weight_ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0, fontsize=LABEL_SIZE - 1)

    # A point's error rate covers the interval *before* it (TimelinePoint), so the step is
    # drawn back to the previous point ("pre"); weights hold from their point on ("post").
    error_ax.step(t, [100 * p.stable_error_rate for p in timeline], where="pre", clip_on=False,
                  color=strategy_color("blue-green"), linewidth=1.8, label="stable (old)")
    error_ax.step(t, [100 * p.canary_error_rate for p in timeline], where="pre", clip_on=False,
                  color=strategy_color("canary"), linewidth=1.8, label="new version")
    error_ax.set_ylim(bottom=0)
    error_ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0, fontsize=LABEL_SIZE - 1)

    marks = parse_timeline_events(timeline)
    for row, phase in enumerate(phases):
        times = [m.at / divisor for m in marks.measurements if m.mark is phase]
        if times:
            color, marker = _MARK_STYLE[phase]
            mark_ax.plot(times, [row] * len(times), linestyle="none", marker=marker, markersize=8,
                         color=color, label=f"{phase.value} ({len(times)})", gid=f"mark:{phase.value}")
    if not marks.measurements:
        draw_empty_note(mark_ax, "no analysis measurements")

    for milestone in marks.milestones:
        color, style, _ = _MILESTONE_STYLE[milestone.kind]
        for ax in (weight_ax, error_ax, mark_ax):
            ax.axvline(milestone.at / divisor, color=color, linestyle=style, linewidth=1.3, alpha=0.9,
                       gid=f"milestone:{milestone.kind.value}")
    span = float(at.max() - at.min()) / divisor
    for group in compute_milestone_groups(marks.milestones, span * MILESTONE_GAP * divisor):
        color = _MILESTONE_STYLE[group[0].kind][0]
        label = ", ".join(dict.fromkeys(_MILESTONE_STYLE[m.kind][2] for m in group))
        weight_ax.annotate(label, (group[0].at / divisor, 1.0), xycoords=("data", "axes fraction"),
                           xytext=(2, -2), textcoords="offset points", rotation=90, ha="left", va="top",
                           color=color, fontsize=LABEL_SIZE - 2, gid="milestone-label")

    if at.max() == at.min():  # one instant: give it some room instead of a zero-width axis
        span = 1.0 / divisor
        mark_ax.set_xlim(t[0] - span, t[0] + span)
    for ax in axes[:, 0]:
        ax.grid(alpha=0.3)
    mark_ax.set_xlabel(f"time since rollout start ({unit})", fontsize=LABEL_SIZE)
    return fig
