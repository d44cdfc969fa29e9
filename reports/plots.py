"""Charts of a strategy comparison and of one rollout, as matplotlib figures.

Every chart is built with matplotlib's object API (``matplotlib.figure.Figure``), never
pyplot, so no global figure registry is touched: charts can be drawn in threads or worker
processes at once. Nothing here writes files; ``figure_png`` turns a figure into PNG bytes
and the caller decides where they go.

A strategy keeps one colour in every chart (``strategy_color``), so a reader who learnt
"canary is orange" on the bar chart can read the ECDF without the legend. Durations are
plotted in seconds when short and in minutes when long (``compute_duration_scale``).

The ``compute_*`` and ``parse_*`` functions are pure (numbers in, numbers out) and carry
the decisions worth testing on their own: the ECDF steps, the Pareto front, the markers
read from a rollout's event strings.
"""

from __future__ import annotations

import io
import math
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from rolloutlab.results import statistics as comparison
from rolloutlab.results.statistics import StrategySummary
from rolloutlab.results.timeline import TimelinePoint

__all__ = [
    "GRID_METRICS",
    "Measurement",
    "Milestone",
    "MilestoneKind",
    "TimelineMarks",
    "Verdict",
    "compute_duration_scale",
    "compute_ecdf",
    "compute_pareto_front",
    "failed_requests_distribution",
    "figure_png",
    "metric_bar_grid",
    "metric_bars",
    "pareto",
    "parse_timeline_events",
    "restore_ecdf",
    "rollout_timeline",
    "strategy_color",
]

FIGSIZE = (8.0, 4.5)
"""Inches; at the default 110 dpi of ``figure_png`` a chart is about 880x500 pixels."""
TITLE_SIZE = 12
LABEL_SIZE = 10

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
_PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
_KNOWN_STRATEGIES = {"blue-green": _PALETTE[0], "canary": _PALETTE[1], "rolling": _PALETTE[2]}
_NA_COLOR = "#9a9a9a"

MINUTES_FROM = 180.0
"""Seconds from which a duration axis switches to minutes: "2.5 min" reads better than "150 s"
once rollouts take minutes, but a 40 s rollout should not read "0.67 min"."""


def strategy_color(name: str) -> str:
    """The colour ``name`` has in every chart: fixed for the bundled strategies, and for any
    other name a palette entry picked by a stable hash (the same across processes, unlike
    ``hash``)."""
    if name in _KNOWN_STRATEGIES:
        return _KNOWN_STRATEGIES[name]
    spare = _PALETTE[3:]
    return spare[zlib.crc32(name.encode()) % len(spare)]


def compute_duration_scale(max_seconds: float) -> tuple[float, str]:
    """(divisor, unit) for plotting durations up to ``max_seconds``: seconds, or minutes from
    ``MINUTES_FROM`` on."""
    if math.isfinite(max_seconds) and max_seconds >= MINUTES_FROM:
        return 60.0, "min"
    return 1.0, "s"


def figure_png(fig: Figure, dpi: int = 110) -> bytes:
    """The figure rendered as PNG bytes; the figure is spent afterwards (cleared, to free its
    memory, since object-API figures are not in pyplot's registry to be closed)."""
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)  # render with Agg whatever canvas the figure came with
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    fig.clear()
    return buffer.getvalue()


def _new_figure(nrows: int = 1, ncols: int = 1, figsize: tuple[float, float] = FIGSIZE, **kwargs: Any):
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False, **kwargs)
    return fig, axes


def _empty_note(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color=_NA_COLOR,
            fontsize=LABEL_SIZE)


# --------------------------------------------------------------------------- metric bars

@dataclass(frozen=True)
class _MetricStyle:
    title: str
    kind: str  # "percent" | "duration" | "quantity", as comparison.FIGURE_KINDS
    unit: str  # for quantities: what is counted


_METRICS: dict[str, _MetricStyle] = {
    "change_failure_rate": _MetricStyle("Change failure rate", "percent", "%"),
    "false_rollback_rate": _MetricStyle("False rollback rate", "percent", "%"),
    "mttr_median": _MetricStyle("MTTR (median)", "duration", ""),
    "mttr_p90": _MetricStyle("MTTR (p90)", "duration", ""),
    "failed_requests_mean": _MetricStyle("Failed requests per deployment (mean)", "quantity", "requests"),
    "failed_requests_p99": _MetricStyle("Failed requests per deployment (p99)", "quantity", "requests"),
    "rollout_duration_median": _MetricStyle("Rollout duration (median)", "duration", ""),
    "detection_time_median": _MetricStyle("Detection time (median)", "duration", ""),
    "cost_mean": _MetricStyle("Cost per deployment (mean)", "quantity", "replica·s"),
}

GRID_METRICS = ("change_failure_rate", "mttr_median", "failed_requests_mean", "rollout_duration_median", "cost_mean")
"""The panels of ``metric_bar_grid``: what a team weighs when picking a strategy."""


def _metric_scale(metric: str, unit: str | None, estimates: Sequence[comparison.Figure]) -> tuple[float, str]:
    """(multiplier, unit label) turning the stored figure into the plotted number."""
    style = _METRICS.get(metric, _MetricStyle(metric, "quantity", ""))
    if unit is None:
        if style.kind == "percent":
            unit = "%"
        elif style.kind == "duration":
            top = max((e.high if e.high is not None else e.value for e in estimates if e.value is not None),
                      default=0.0)
            unit = compute_duration_scale(top)[1]
        else:
            unit = style.unit
    factors = {"%": 100.0, "s": 1.0, "min": 1 / 60, "h": 1 / 3600}
    return factors.get(unit, 1.0), unit


def _draw_metric_bars(ax: Axes, summaries: Sequence[StrategySummary], metric: str, title: str | None,
                      unit: str | None, *, title_size: float = TITLE_SIZE) -> None:
    estimates = [getattr(s, metric) for s in summaries]
    factor, unit = _metric_scale(metric, unit, estimates)
    names = [s.strategy for s in summaries]
    x = np.arange(len(names))
    heights = [0.0 if e.value is None else e.value * factor for e in estimates]
    colors = [strategy_color(n) for n in names]
    bars = ax.bar(x, heights, color=colors, width=0.6, edgecolor="none")
    # Error bars only where an interval exists; nothing else is drawn for the rest.
    with_ci = [i for i, e in enumerate(estimates) if e.value is not None and e.low is not None and e.high is not None]
    if with_ci:
        lows = [max(0.0, (estimates[i].value - estimates[i].low) * factor) for i in with_ci]
        highs = [max(0.0, (estimates[i].high - estimates[i].value) * factor) for i in with_ci]
        ax.errorbar(x[with_ci], [heights[i] for i in with_ci], yerr=[lows, highs], fmt="none",
                    ecolor="#333333", elinewidth=1.2, capsize=4, label="95% CI")
    top = max([h for h in heights] + [(e.high or 0.0) * factor for e in estimates], default=0.0) or 1.0
    for i, (bar, e) in enumerate(zip(bars, estimates)):
        if e.value is None:
            ax.text(bar.get_x() + bar.get_width() / 2, 0.02 * top, "n/a", ha="center", va="bottom",
                    color=_NA_COLOR, fontsize=LABEL_SIZE, fontstyle="italic", gid=f"na:{names[i]}")
    ax.set_ylim(0, top * 1.12)
    ax.set_xticks(x, names, fontsize=LABEL_SIZE)
    style = _METRICS.get(metric, _MetricStyle(metric, "quantity", ""))
    ax.set_title(title or style.title, fontsize=title_size)
    ax.set_ylabel(f"{style.title.split(' (')[0]} ({unit})" if unit else style.title, fontsize=LABEL_SIZE - 1)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)


def metric_bars(summaries: Sequence[StrategySummary], metric: str, title: str | None = None,
                unit: str | None = None) -> Figure:
    """One bar per strategy for ``metric`` (a ``StrategySummary`` field), with its 95% CI as
    asymmetric error bars; a strategy whose figure is n/a gets an empty slot labelled "n/a".

    ``unit`` is "%" (a proportion shown as a percentage), "s", "min" or "h" (a duration in
    seconds converted), or any other label for a plain quantity; by default it follows the
    metric (percent, seconds or minutes by size, requests, replica·s).
    """
    if summaries and not hasattr(summaries[0], metric):
        raise ValueError(f"StrategySummary has no figure {metric!r}; it has {', '.join(_METRICS)}")
    fig, axes = _new_figure()
    ax = axes[0, 0]
    if not summaries:
        _empty_note(ax, "no strategies to compare")
        ax.set_title(title or _METRICS.get(metric, _MetricStyle(metric, "", "")).title, fontsize=TITLE_SIZE)
        return fig
    _draw_metric_bars(ax, summaries, metric, title, unit)
    return fig


def metric_bar_grid(summaries: Sequence[StrategySummary]) -> Figure:
    """Small bar charts side by side for ``GRID_METRICS``, each with 95% CI error bars."""
    fig, axes = _new_figure(2, 3, figsize=(12.0, 6.5))
    flat = axes.ravel()
    for ax, metric in zip(flat, GRID_METRICS):
        if summaries:
            _draw_metric_bars(ax, summaries, metric, None, None, title_size=LABEL_SIZE + 1)
        else:
            ax.set_title(_METRICS[metric].title, fontsize=LABEL_SIZE + 1)
            _empty_note(ax, "no strategies")
    for ax in flat[len(GRID_METRICS):]:
        fig.delaxes(ax)
    fig.suptitle("Strategy comparison (bars: estimate; whiskers: 95% CI)", fontsize=TITLE_SIZE)
    return fig


# --------------------------------------------------------------------------- distributions

def compute_ecdf(values: Iterable[float]) -> tuple[np.ndarray, np.ndarray]:
    """Sorted finite values and the share of values at or below each: the empirical CDF.

    NaN and infinities are dropped (a restore that never happened has no time). The
    result's ``y`` rises from 1/n to exactly 1.
    """
    x = np.asarray(list(values), dtype=float)
    x = np.sort(x[np.isfinite(x)])
    return x, np.arange(1, x.size + 1) / x.size if x.size else np.empty(0)


def _strategies_in_order(df: pd.DataFrame) -> list[str]:
    return [str(s) for s in pd.unique(df["strategy"])] if "strategy" in df else []


LOG_SPREAD = 20.0
"""Largest/smallest positive value from which a count or duration axis goes logarithmic."""


def restore_ecdf(df: pd.DataFrame) -> Figure:
    """ECDF of ``time_to_restore`` per strategy (minutes), over the deployments whose impact
    was restored; strategies with no restore are named in a note rather than drawn."""
    fig, axes = _new_figure()
    ax = axes[0, 0]
    ax.set_title("Time to restore service (ECDF over restored deployments)", fontsize=TITLE_SIZE)
    ax.set_xlabel("time to restore (min)", fontsize=LABEL_SIZE)
    ax.set_ylabel("share of restored deployments", fontsize=LABEL_SIZE)
    ax.set_ylim(0, 1.04)
    without = []
    for name in _strategies_in_order(df):
        x, y = compute_ecdf(df.loc[df["strategy"] == name, "time_to_restore"])
        if x.size == 0:
            without.append(name)
            continue
        minutes = x / 60
        # Start each curve at 0 at its first value so it reads as a staircase from 0 to 1.
        ax.step(np.r_[minutes[0], minutes], np.r_[0.0, y], where="post", color=strategy_color(name),
                linewidth=2, label=f"{name} (n={x.size})")
    if without:
        ax.text(0.98, 0.04, "no restores: " + ", ".join(without), transform=ax.transAxes, ha="right",
                va="bottom", color=_NA_COLOR, fontsize=LABEL_SIZE, gid="no-restores")
    if ax.get_lines():
        finite = df["time_to_restore"].to_numpy(dtype=float)
        finite = finite[np.isfinite(finite) & (finite > 0)]
        if finite.size and finite.max() / finite.min() > LOG_SPREAD:
            ax.set_xscale("log")
            ax.set_xlabel("time to restore (min, log scale)", fontsize=LABEL_SIZE)
        ax.legend(loc="lower right" if not without else "center right", fontsize=LABEL_SIZE - 1)
    elif not without:
        _empty_note(ax, "no deployments")
    ax.grid(alpha=0.3)
    return fig


def failed_requests_distribution(df: pd.DataFrame) -> Figure:
    """Failed requests per deployment, one horizontal box plot per strategy with every run
    drawn as a dot; the axis is symmetric-log (zero stays visible) when the values span more
    than ``LOG_SPREAD``x."""
    fig, axes = _new_figure()
    ax = axes[0, 0]
    ax.set_title("Failed requests per deployment", fontsize=TITLE_SIZE)
    names = _strategies_in_order(df)
    if not names:
        _empty_note(ax, "no deployments")
        ax.set_xlabel("failed requests per deployment", fontsize=LABEL_SIZE)
        return fig
    samples = []
    for name in names:
        v = df.loc[df["strategy"] == name, "failed_requests"].to_numpy(dtype=float)
        samples.append(v[np.isfinite(v)])
    boxes = ax.boxplot(samples, orientation="horizontal", widths=0.5, patch_artist=True, showfliers=False,
                       medianprops={"color": "#222222"})
    for patch, name in zip(boxes["boxes"], names):
        patch.set_facecolor(strategy_color(name))
        patch.set_alpha(0.35)
    jitter = np.random.default_rng(0)  # fixed: the same table always gives the same picture
    for i, (name, v) in enumerate(zip(names, samples), start=1):
        ax.scatter(v, i + jitter.uniform(-0.15, 0.15, v.size), s=12, color=strategy_color(name),
                   alpha=0.7, linewidths=0, zorder=3)
    ax.set_yticks(np.arange(1, len(names) + 1), [f"{n}\n(n={s.size})" for n, s in zip(names, samples)],
                  fontsize=LABEL_SIZE)
    everything = np.concatenate(samples) if samples else np.empty(0)
    positive = everything[everything > 0]
    label = "failed requests per deployment"
    if positive.size and positive.max() / max(positive.min(), 1.0) > LOG_SPREAD:
        ax.set_xscale("symlog", linthresh=1.0)
        label += " (symmetric log scale)"
    elif everything.size and not positive.size:
        ax.set_xlim(-1, 1)  # all zero: a flat axis around the one value
        ax.text(0.98, 0.96, "no failed requests in any run", transform=ax.transAxes, ha="right",
                va="top", color=_NA_COLOR, fontsize=LABEL_SIZE)
    ax.set_xlabel(label, fontsize=LABEL_SIZE)
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    return fig


# --------------------------------------------------------------------------- one rollout

class Verdict(str, Enum):
    """A measurement's phase, as the analysis reports it."""

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
class Measurement:
    at: float
    metric: str
    verdict: Verdict


@dataclass(frozen=True)
class Milestone:
    at: float
    kind: MilestoneKind
    message: str


@dataclass(frozen=True)
class TimelineMarks:
    measurements: tuple[Measurement, ...]
    milestones: tuple[Milestone, ...]


_VERDICT_STYLE = {
    Verdict.SUCCESSFUL: ("#009E73", "o"),
    Verdict.FAILED: ("#D55E00", "X"),
    Verdict.INCONCLUSIVE: ("#9a9a9a", "s"),
    Verdict.ERROR: ("#CC79A7", "D"),
}
_MILESTONE_STYLE = {
    MilestoneKind.PROMOTED: ("#009E73", "-", "promoted"),
    MilestoneKind.ABORTED: ("#D55E00", "--", "aborted"),
    MilestoneKind.ROLLED_BACK: ("#8B0000", "-", "rolled back"),
    MilestoneKind.ALERT_FIRED: ("#CC79A7", ":", "alert"),
}


def parse_timeline_events(timeline: Sequence[TimelinePoint]) -> TimelineMarks:
    """Measurements ("Measurement: error-rate: Failed (...) ...") and milestones (Promoted,
    Aborted, RolledBack, AlertFired) read from the event strings of a timeline; other events
    and "Pending" measurements (not yet judged) are left out."""
    measurements: list[Measurement] = []
    milestones: list[Milestone] = []
    kinds = {k.value: k for k in MilestoneKind}
    verdicts = {v.value: v for v in Verdict}
    for point in timeline:
        for event in point.events:
            reason, _, message = event.partition(": ")
            if reason == "Measurement":
                metric, _, rest = message.partition(": ")
                phase = rest.split(" ", 1)[0]
                if phase in verdicts:
                    measurements.append(Measurement(float(point.at), metric, verdicts[phase]))
            elif reason in kinds:
                milestones.append(Milestone(float(point.at), kinds[reason], message))
    return TimelineMarks(tuple(measurements), tuple(milestones))


def rollout_timeline(timeline: Sequence[TimelinePoint], title: str = "Rollout timeline") -> Figure:
    """One rollout over time: canary weight (declared by the strategy vs effective at the
    router) on top, each version's cumulative error rate in the middle, the analysis'
    measurement verdicts at the bottom; vertical lines mark promote, abort, rollback and
    fired alerts on every panel."""
    fig, axes = _new_figure(3, 1, figsize=(8.0, 6.5), sharex=True,
                            gridspec_kw={"height_ratios": [3, 3, 1.4]})
    weight_ax, error_ax, verdict_ax = axes[:, 0]
    fig.suptitle(title, fontsize=TITLE_SIZE)
    weight_ax.set_ylabel("canary weight (%)", fontsize=LABEL_SIZE)
    error_ax.set_ylabel("error rate (%)", fontsize=LABEL_SIZE)
    verdicts = list(Verdict)
    verdict_ax.set_yticks(range(len(verdicts)), [v.value for v in verdicts], fontsize=LABEL_SIZE - 2)
    verdict_ax.set_ylim(-0.6, len(verdicts) - 0.4)
    if not timeline:
        _empty_note(weight_ax, "no timeline recorded")
        verdict_ax.set_xlabel("time since rollout start (s)", fontsize=LABEL_SIZE)
        return fig

    at = np.array([p.at for p in timeline], dtype=float)
    divisor, unit = compute_duration_scale(float(at.max() - at.min()))
    t = at / divisor
    weight_ax.step(t, [p.declared_weight for p in timeline], where="post", color="#555555",
                   linestyle="--", linewidth=1.6, label="declared")
    weight_ax.step(t, [p.effective_weight for p in timeline], where="post", color=strategy_color("canary"),
                   linewidth=2.2, label="effective")
    weight_ax.set_ylim(-3, 105)
    weight_ax.legend(loc="upper left", fontsize=LABEL_SIZE - 1)

    error_ax.step(t, [100 * p.stable_error_rate for p in timeline], where="post",
                  color=strategy_color("blue-green"), linewidth=1.8, label="stable")
    error_ax.step(t, [100 * p.canary_error_rate for p in timeline], where="post",
                  color=strategy_color("canary"), linewidth=1.8, label="canary")
    error_ax.set_ylim(bottom=0)
    error_ax.legend(loc="upper left", fontsize=LABEL_SIZE - 1)

    marks = parse_timeline_events(timeline)
    for row, verdict in enumerate(verdicts):
        times = [m.at / divisor for m in marks.measurements if m.verdict is verdict]
        if times:
            color, marker = _VERDICT_STYLE[verdict]
            verdict_ax.plot(times, [row] * len(times), linestyle="none", marker=marker, markersize=8,
                            color=color, label=f"{verdict.value} ({len(times)})", gid=f"verdict:{verdict.value}")
    if not marks.measurements:
        _empty_note(verdict_ax, "no analysis measurements")

    for milestone in marks.milestones:
        color, style, label = _MILESTONE_STYLE[milestone.kind]
        x = milestone.at / divisor
        for ax in (weight_ax, error_ax, verdict_ax):
            ax.axvline(x, color=color, linestyle=style, linewidth=1.3, alpha=0.9,
                       gid=f"milestone:{milestone.kind.value}")
        weight_ax.annotate(label, (x, 1.0), xycoords=("data", "axes fraction"), xytext=(2, -2),
                           textcoords="offset points", rotation=90, ha="left", va="top", color=color,
                           fontsize=LABEL_SIZE - 2)

    if at.max() == at.min():  # one instant: give it some room instead of a zero-width axis
        span = 1.0 / divisor
        verdict_ax.set_xlim(t[0] - span, t[0] + span)
    for ax in axes[:, 0]:
        ax.grid(alpha=0.3)
    verdict_ax.set_xlabel(f"time since rollout start ({unit})", fontsize=LABEL_SIZE)
    return fig


# --------------------------------------------------------------------------- trade-offs

@dataclass(frozen=True)
class _TradeOff:
    strategy: str
    duration: float | None
    failed: float | None
    cost: float | None


def compute_pareto_front(points: Sequence[tuple[float, ...]]) -> list[bool]:
    """For each point (lower is better in every coordinate), whether it is Pareto-optimal:
    no other point is at least as good in every coordinate and strictly better in one.
    NaN counts as worst. Equal points are all optimal."""
    arr = np.array([[np.inf if (v is None or not math.isfinite(v)) else v for v in p] for p in points], dtype=float)
    optimal = []
    for i in range(len(arr)):
        others = np.delete(arr, i, axis=0)
        dominated = bool(np.any(np.all(others <= arr[i], axis=1) & np.any(others < arr[i], axis=1)))
        optimal.append(not dominated)
    return optimal


def pareto(summaries_or_df: Sequence[StrategySummary] | pd.DataFrame) -> Figure:
    """Median rollout duration (x) against mean failed requests (y), one point per strategy
    with marker area proportional to mean cost; strategies no other beats on duration,
    failed requests and cost together are ringed as Pareto-optimal. A results table is
    summarised first (``sim.comparison.summarize``)."""
    summaries = (comparison.summarize(summaries_or_df) if isinstance(summaries_or_df, pd.DataFrame)
                 else list(summaries_or_df))
    fig, axes = _new_figure()
    ax = axes[0, 0]
    ax.set_title("Speed vs safety (marker area ∝ mean cost; ringed: Pareto-optimal)", fontsize=TITLE_SIZE)
    points = [_TradeOff(s.strategy, s.rollout_duration_median.value, s.failed_requests_mean.value,
                        s.cost_mean.value) for s in summaries]
    drawable = [p for p in points if p.duration is not None and p.failed is not None]
    missing = [p.strategy for p in points if p not in drawable]
    divisor, unit = compute_duration_scale(max((p.duration for p in drawable), default=0.0))
    ax.set_xlabel(f"rollout duration, median ({unit})", fontsize=LABEL_SIZE)
    ax.set_ylabel("failed requests per deployment, mean", fontsize=LABEL_SIZE)
    if missing:
        ax.text(0.98, 0.02, "n/a: " + ", ".join(missing), transform=ax.transAxes, ha="right", va="bottom",
                color=_NA_COLOR, fontsize=LABEL_SIZE, gid="pareto-missing")
    if not drawable:
        if not missing:
            _empty_note(ax, "no strategies to compare")
        return fig
    optimal = compute_pareto_front([(p.duration, p.failed, p.cost) for p in drawable])
    top_cost = max((p.cost for p in drawable if p.cost is not None), default=0.0) or 1.0
    for p, best in zip(drawable, optimal):
        size = 80 + 900 * (p.cost / top_cost if p.cost is not None else 0.0)
        ax.scatter([p.duration / divisor], [p.failed], s=size, color=strategy_color(p.strategy),
                   alpha=0.9 if best else 0.45, edgecolors="black" if best else "none",
                   linewidths=2.2 if best else 0, zorder=3, gid=f"pareto:{p.strategy}:{'optimal' if best else 'dominated'}")
        ax.annotate(p.strategy + (" ★" if best else ""), (p.duration / divisor, p.failed), xytext=(16, 12),
                    textcoords="offset points", fontsize=LABEL_SIZE, fontweight="bold" if best else "normal")
    handles = [Line2D([], [], linestyle="none", marker="o", markersize=9, markerfacecolor="#bbbbbb",
                      markeredgecolor="black", markeredgewidth=2, label="Pareto-optimal"),
               Line2D([], [], linestyle="none", marker="o", markersize=9, markerfacecolor="#bbbbbb",
                      alpha=0.45, markeredgecolor="none", label="dominated")]
    ax.legend(handles=handles, loc="upper right", fontsize=LABEL_SIZE - 1)
    ax.margins(0.2)
    ax.set_ylim(bottom=0)
    ax.set_xlim(left=0)
    ax.grid(alpha=0.3)
    return fig
