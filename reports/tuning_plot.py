"""The plot of a ``rolloutlab tune`` search: every candidate on its first two objectives,
the Pareto front joined, the strategy the user started from and the chosen one named.

Reports read tables only: the search hands a table with one row per candidate
(``number``, ``x``, ``y``, ``state``: ``front``, ``scored``, ``stopped`` or
``infeasible``, and ``start`` / ``chosen`` flags), and axis labels with their units.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter

from rolloutlab.reports.plots import (
    LABEL_SIZE,
    TITLE_SIZE,
    compute_duration_scale,
    draw_empty_note,
    format_count_tick,
    new_figure,
)

_STYLE = {  # state -> (colour, alpha, size, label)
    "stopped": ("#9aa4ae", 0.45, 18, "stopped early (few runs)"),
    "infeasible": ("#e0a458", 0.7, 26, "breaks a constraint"),
    "scored": ("#4c78a8", 0.75, 30, "scored on every stage"),
    "front": ("#d62728", 1.0, 46, "Pareto front"),
}


def tuning_front(candidates: pd.DataFrame, x_label: str, y_label: str, *, x_is_duration: bool = False,
                 y_is_duration: bool = False) -> Figure:
    """Objective 2 (x) against objective 1 (y), lower is better on both."""
    fig, axes = new_figure()
    ax = axes[0, 0]
    ax.set_title("Tuning: every candidate, and the Pareto front (lower-left is better)", fontsize=TITLE_SIZE)
    finite = candidates[np.isfinite(candidates["x"]) & np.isfinite(candidates["y"])]
    if finite.empty:
        draw_empty_note(ax, "no candidate has finite figures on both objectives")
        return fig
    x_div, x_unit = compute_duration_scale(float(finite["x"].max())) if x_is_duration else (1.0, "")
    y_div, y_unit = compute_duration_scale(float(finite["y"].max())) if y_is_duration else (1.0, "")
    ax.set_xlabel(x_label + (f" ({x_unit})" if x_unit else ""), fontsize=LABEL_SIZE)
    ax.set_ylabel(y_label + (f" ({y_unit})" if y_unit else ""), fontsize=LABEL_SIZE)
    handles = []
    for state, (colour, alpha, size, label) in _STYLE.items():
        rows = finite[finite["state"] == state]
        if rows.empty:
            continue
        ax.scatter(rows["x"] / x_div, rows["y"] / y_div, s=size, color=colour, alpha=alpha, zorder=3 if state == "front" else 2,
                   edgecolors="none", gid=f"tune:{state}")
        handles.append(Line2D([], [], linestyle="none", marker="o", markersize=7, color=colour, alpha=alpha, label=label))
    front = finite[finite["state"] == "front"].sort_values("x")
    if len(front) > 1:
        ax.step(front["x"] / x_div, front["y"] / y_div, where="post", color=_STYLE["front"][0], linewidth=1.2,
                alpha=0.8, zorder=2)
    for flag, text, offset in (("start", "your strategy", (12, 10)), ("chosen", "chosen", (12, -16))):
        marked = finite[finite[flag]]
        for _, row in marked.iterrows():
            ax.scatter([row["x"] / x_div], [row["y"] / y_div], s=140, facecolors="none", edgecolors="black",
                       linewidths=1.8, zorder=4, gid=f"tune:{flag}")
            ax.annotate(f"{text} (#{int(row['number'])})", (row["x"] / x_div, row["y"] / y_div), xytext=offset,
                        textcoords="offset points", fontsize=LABEL_SIZE, fontweight="bold", zorder=5,
                        arrowprops={"arrowstyle": "-", "color": "#555555", "linewidth": 0.8})
    missing = len(candidates) - len(finite)
    if missing:
        ax.text(0.98, 0.98, f"{missing} not drawn: a figure never ended in the window", transform=ax.transAxes,
                ha="right", va="top", fontsize=LABEL_SIZE - 1, color="#57606a")
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=LABEL_SIZE - 1,
               frameon=False)
    if not y_is_duration:
        ax.yaxis.set_major_formatter(FuncFormatter(format_count_tick))
    _pad(ax, finite["x"] / x_div, finite["y"] / y_div)
    ax.grid(alpha=0.3)
    return fig


def _pad(ax, xs: pd.Series, ys: pd.Series) -> None:
    """Room around the points for the markers and the two labels."""
    for values, setter in ((xs, ax.set_xlim), (ys, ax.set_ylim)):
        low, high = float(values.min()), float(values.max())
        span = (high - low) or max(abs(high), 1.0) * 0.1
        if math.isfinite(span):
            setter(low - 0.08 * span, high + 0.15 * span)
