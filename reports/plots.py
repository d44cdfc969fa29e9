"""Charts of a strategy comparison (bars with intervals, the speed/safety trade-off) and
what every chart of the report shares: colours, sizes, figure creation, PNG rendering.
Distributions over runs are in ``reports.distributions``, one rollout over time in
``reports.timeline_plot``.

Every chart is built with matplotlib's object API (``matplotlib.figure.Figure``), never
pyplot, so no global figure registry is touched: charts can be drawn in threads or worker
processes at once. Nothing here writes files; ``figure_png`` turns a figure into PNG bytes
and the caller decides where they go.

A strategy keeps one colour in every chart (``strategy_color``), so a reader who learnt
"canary is orange" on the bar chart can read the ECDF without the legend. Durations are
plotted in seconds when short and in minutes when long (``compute_duration_scale``).

The ``compute_*`` functions are pure (numbers in, numbers out) and carry the decisions
worth testing on their own: the Pareto front, which failure figure a chart leads with.
"""

from __future__ import annotations

import io
import math
import textwrap
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter

from rolloutlab.results import statistics as results_statistics
from rolloutlab.results.formatting import format_quantity
from rolloutlab.results.statistics import StrategySummary

__all__ = [
    "GRID_METRICS",
    "NA_COLOR",
    "compute_duration_scale",
    "compute_grid_metrics",
    "compute_pareto_front",
    "draw_empty_note",
    "figure_png",
    "format_count_tick",
    "metric_bar_grid",
    "metric_bars",
    "new_figure",
    "pareto",
    "strategy_color",
]

FIGSIZE = (8.0, 4.5)
"""Inches; at the default 110 dpi of ``figure_png`` a chart is about 880x500 pixels."""
TITLE_SIZE = 12
LABEL_SIZE = 10

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
_PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
_KNOWN_STRATEGIES = {"blue-green": _PALETTE[0], "canary": _PALETTE[1], "rolling": _PALETTE[2],
                     "shadow-then-canary": _PALETTE[3], "header-canary": _PALETTE[4], "ab-test": _PALETTE[5],
                     "feature-flag": _PALETTE[7]}
NA_COLOR = "#9a9a9a"
"""Grey for what a chart cannot show (n/a, notes)."""

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


def new_figure(nrows: int = 1, ncols: int = 1, figsize: tuple[float, float] = FIGSIZE, **kwargs: Any):
    """An object-API figure with an Agg canvas, constrained layout and a grid of axes
    (always 2-D, ``squeeze=False``)."""
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False, **kwargs)
    return fig, axes


def draw_empty_note(ax: Axes, text: str) -> None:
    """Grey text in the middle of an axes that has nothing to draw, saying why."""
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color=NA_COLOR,
            fontsize=LABEL_SIZE)


def format_count_tick(x: float, _pos: int | None = None) -> str:
    """A count axis' tick: "0", "10", "1k", "100k"; nothing below zero (padding, not data)."""
    return format_quantity(x) if x >= 0 else ""


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
    "release_failed_requests_mean": _MetricStyle("Failed requests caused by the release (mean)", "quantity",
                                                 "requests"),
    "failed_requests_p99": _MetricStyle("Failed requests per deployment (p99)", "quantity", "requests"),
    "rollout_duration_median": _MetricStyle("Rollout duration (median)", "duration", ""),
    "detection_time_median": _MetricStyle("Detection time (median)", "duration", ""),
    "cost_mean": _MetricStyle("Cost per deployment (mean)", "quantity", "replica·s"),
    "users_affected_mean": _MetricStyle("Users who got a bad answer (mean)", "percent", "%"),
}

GRID_METRICS = ("change_failure_rate", "mttr_median", "release_failed_requests_mean", "users_affected_mean",
                "rollout_duration_median", "cost_mean")
"""The panels of ``metric_bar_grid``: what a team weighs when picking a strategy. Failed
requests are those the release caused; a table without that column shows the total."""


def _has_release_figures(summaries: Sequence[StrategySummary]) -> bool:
    return any(getattr(s, "release_failed_requests_mean", None) is not None
               and s.release_failed_requests_mean.value is not None for s in summaries)


def compute_grid_metrics(summaries: Sequence[StrategySummary]) -> tuple[str, ...]:
    """``GRID_METRICS``, with the total failed requests in place of the release's share when
    no summary has it (an older table)."""
    users = any(getattr(s, "users_affected_mean", None) is not None and s.users_affected_mean.value is not None
                for s in summaries)
    metrics = tuple(m for m in GRID_METRICS if users or m != "users_affected_mean")  # tables that count no users
    if _has_release_figures(summaries):
        return metrics
    return tuple("failed_requests_mean" if m == "release_failed_requests_mean" else m for m in metrics)


def _metric_scale(metric: str, unit: str | None, estimates: Sequence[results_statistics.Figure]) -> tuple[float, str]:
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


def _plotted(estimate: results_statistics.Figure, x: float | None) -> float | None:
    """A figure's number as drawn: a time beyond the window (``math.inf``) is drawn at the
    longest time observed, the bound it is known to exceed."""
    if x is not None and math.isinf(x):
        return getattr(estimate, "beyond", None)
    return x


def _draw_metric_bars(ax: Axes, summaries: Sequence[StrategySummary], metric: str, title: str | None,
                      unit: str | None, *, title_size: float = TITLE_SIZE, compact: bool = False) -> None:
    """Bars with 95% CI whiskers on ``ax``. A figure beyond the window is drawn hatched up to
    the window and labelled "> 28m" above; ``compact`` (a panel of the grid) wraps the title
    and leaves the unit alone on the y axis."""
    estimates = [getattr(s, metric) for s in summaries]
    factor, unit = _metric_scale(metric, unit, estimates)
    names = [s.strategy for s in summaries]
    x = np.arange(len(names))
    values = [_plotted(e, e.value) for e in estimates]
    heights = [0.0 if v is None else v * factor for v in values]
    colors = [strategy_color(n) for n in names]
    bars = ax.bar(x, heights, color=colors, width=0.6, edgecolor="none")
    # Error bars only where an interval exists; nothing else is drawn for the rest.
    with_ci = [i for i, e in enumerate(estimates) if values[i] is not None and e.low is not None and e.high is not None]
    if with_ci:
        lows = [max(0.0, heights[i] - _plotted(estimates[i], estimates[i].low) * factor) for i in with_ci]
        highs = [max(0.0, _plotted(estimates[i], estimates[i].high) * factor - heights[i]) for i in with_ci]
        ax.errorbar(x[with_ci], [heights[i] for i in with_ci], yerr=[lows, highs], fmt="none",
                    ecolor="#333333", elinewidth=1.2, capsize=4, label="95% CI")
    tops = [h for h in heights] + [(_plotted(e, e.high) or 0.0) * factor for e in estimates]
    top = max([t for t in tops if math.isfinite(t)], default=0.0) or 1.0
    for i, (bar, e) in enumerate(zip(bars, estimates)):
        middle = bar.get_x() + bar.get_width() / 2
        if e.value is None:
            ax.text(middle, 0.02 * top, "n/a", ha="center", va="bottom",
                    color=NA_COLOR, fontsize=LABEL_SIZE, fontstyle="italic", gid=f"na:{names[i]}")
        elif math.isinf(e.value):
            bar.set_hatch("//")
            bar.set_alpha(0.6)
            ax.text(middle, heights[i], f"> {_format_scaled(heights[i], unit)}", ha="center", va="bottom",
                    fontsize=LABEL_SIZE - 1, gid=f"beyond:{names[i]}")
    ax.set_ylim(0, top * 1.15)
    slanted = len(names) > 4  # seven bundled techniques side by side would run into each other
    ax.set_xticks(x, names, fontsize=LABEL_SIZE, rotation=35 if slanted else 0, ha="right" if slanted else "center",
                  rotation_mode="anchor")
    style = _METRICS.get(metric, _MetricStyle(metric, "quantity", ""))
    text = title or style.title
    ax.set_title(textwrap.fill(text, 30) if compact else text, fontsize=title_size)
    if compact:
        ax.set_ylabel(unit or "", fontsize=LABEL_SIZE - 1)
    else:
        ax.set_ylabel(f"{style.title.split(' (')[0]} ({unit})" if unit else style.title, fontsize=LABEL_SIZE - 1)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)


def _format_scaled(value: float, unit: str) -> str:
    return f"{value:.3g} {unit}".strip()


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
    fig, axes = new_figure()
    ax = axes[0, 0]
    if not summaries:
        draw_empty_note(ax, "no strategies to compare")
        ax.set_title(title or _METRICS.get(metric, _MetricStyle(metric, "", "")).title, fontsize=TITLE_SIZE)
        return fig
    _draw_metric_bars(ax, summaries, metric, title, unit)
    return fig


def metric_bar_grid(summaries: Sequence[StrategySummary]) -> Figure:
    """Small bar charts side by side for ``GRID_METRICS``, each with 95% CI error bars."""
    fig, axes = new_figure(2, 3, figsize=(12.0, 6.5))
    flat = axes.ravel()
    metrics = compute_grid_metrics(summaries)
    for ax, metric in zip(flat, metrics):
        if summaries:
            _draw_metric_bars(ax, summaries, metric, None, None, title_size=LABEL_SIZE + 1, compact=True)
        else:
            ax.set_title(textwrap.fill(_METRICS[metric].title, 30), fontsize=LABEL_SIZE + 1)
            draw_empty_note(ax, "no strategies")
    for ax in flat[len(metrics):]:
        fig.delaxes(ax)
    fig.suptitle("Strategy comparison (bars: estimate; whiskers: 95% CI)", fontsize=TITLE_SIZE)
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
    """Median rollout duration (x) against mean failed requests caused by the release (y;
    the total when the table has no release column), one point per strategy with marker
    area proportional to mean cost; strategies no other beats on duration,
    failed requests and cost together are ringed as Pareto-optimal. A results table is
    summarised first (``results.statistics.summarize``)."""
    summaries = (results_statistics.summarize(summaries_or_df) if isinstance(summaries_or_df, pd.DataFrame)
                 else list(summaries_or_df))
    fig, axes = new_figure()
    ax = axes[0, 0]
    ax.set_title("Speed vs safety (marker area ∝ mean cost; ringed: Pareto-optimal)", fontsize=TITLE_SIZE)
    release = _has_release_figures(summaries)
    points = [_TradeOff(s.strategy, s.rollout_duration_median.value,
                        (s.release_failed_requests_mean if release else s.failed_requests_mean).value,
                        s.cost_mean.value) for s in summaries]
    # A median beyond the window (stuck rollouts) has no place on the axis: named as n/a.
    drawable = [p for p in points if p.duration is not None and p.failed is not None
                and math.isfinite(p.duration) and math.isfinite(p.failed)]
    missing = [p.strategy for p in points if p not in drawable]
    divisor, unit = compute_duration_scale(max((p.duration for p in drawable), default=0.0))
    ax.set_xlabel(f"rollout duration, median ({unit})", fontsize=LABEL_SIZE)
    ax.set_ylabel("failed requests caused by the release, mean" if release
                  else "failed requests per deployment, mean (total)", fontsize=LABEL_SIZE)
    if missing:
        ax.text(0.98, 0.02, "n/a: " + ", ".join(missing), transform=ax.transAxes, ha="right", va="bottom",
                color=NA_COLOR, fontsize=LABEL_SIZE, gid="pareto-missing")
    if not drawable:
        if not missing:
            draw_empty_note(ax, "no strategies to compare")
        return fig
    optimal = compute_pareto_front([(p.duration, p.failed, p.cost) for p in drawable])
    top_cost = max((p.cost for p in drawable if p.cost is not None), default=0.0) or 1.0
    for p, best in zip(drawable, optimal):
        size = 80 + 900 * (p.cost / top_cost if p.cost is not None else 0.0)
        # A release's mean excess over the baseline can be a little negative by chance: drawn at 0
        # (nothing caused), unclipped so a point on an axis shows whole.
        y = max(p.failed, 0.0)
        ax.scatter([p.duration / divisor], [y], s=size, color=strategy_color(p.strategy),
                   alpha=0.9 if best else 0.45, edgecolors="black" if best else "none", clip_on=False,
                   linewidths=2.2 if best else 0, zorder=3, gid=f"pareto:{p.strategy}:{'optimal' if best else 'dominated'}")
        # The numbers in the label: on a linear axis 0 and 83 failed requests look alike.
        ax.annotate(f"{p.strategy}{' ★' if best else ''}\n{format_quantity(y)} failed, "
                    f"{_format_scaled(p.duration / divisor, unit)}",
                    (p.duration / divisor, y), xytext=(18, 6), textcoords="offset points", va="bottom",
                    fontsize=LABEL_SIZE - 1, fontweight="bold" if best else "normal", gid=f"pareto-label:{p.strategy}")
    handles = [Line2D([], [], linestyle="none", marker="o", markersize=9, markerfacecolor="#bbbbbb",
                      markeredgecolor="black", markeredgewidth=2, label="Pareto-optimal"),
               Line2D([], [], linestyle="none", marker="o", markersize=9, markerfacecolor="#bbbbbb",
                      alpha=0.45, markeredgecolor="none", label="dominated")]
    # Legend outside, where it cannot cover a point; room around the points for their markers
    # and labels: a little below zero (no tick is labelled there) and a label's width right.
    fig.legend(handles=handles, loc="outside lower center", ncols=2, fontsize=LABEL_SIZE - 1, frameon=False)
    top_y = max(max(p.failed, 0.0) for p in drawable) or 1.0
    right_x = max(p.duration / divisor for p in drawable) or 1.0
    ax.set_ylim(-0.08 * top_y, top_y * 1.25)
    ax.set_xlim(0, right_x * 1.35)
    ax.yaxis.set_major_formatter(FuncFormatter(format_count_tick))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}" if v >= 0 else ""))
    ax.grid(alpha=0.3)
    return fig
