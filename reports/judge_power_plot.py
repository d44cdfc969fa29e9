"""The judges' power curves: how often each analysis judge rolls back a bad and a good
release as traffic changes, how fast it catches the bad one, and how its power grows with
the defect's size (the chart of ``rolloutlab judges``).

It draws the judge-power table (``workflows.judge_power``, one row per judge x release x
traffic or effect), reading these columns: ``judge``, ``judge_kind``, ``sweep``
(``traffic``: good and bad releases over traffic; ``effect``: bad releases over the added
error rate at the scenario's traffic; other sweeps are not drawn), ``release`` (``good`` /
``bad``), ``requests_per_window``, ``added_error_rate``, ``scenario_traffic``,
``p_rollback`` with ``p_rollback_low`` / ``p_rollback_high`` (the interval drawn as a
band), ``time_median_s`` with ``time_low_s`` / ``time_high_s`` (infinite: beyond the
rollout's end, not drawn).

Four panels, traffic on a log axis: P(rollback | bad), P(rollback | good) with the
false-rollback level the answer reports, the median time to catch a bad release, and
P(rollback | bad) against the added error rate. Each judge keeps one colour; the scenario's
own traffic is a ringed point on each traffic curve.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, PercentFormatter

from rolloutlab.reports.plots import (
    LABEL_SIZE,
    TITLE_SIZE,
    compute_duration_scale,
    draw_empty_note,
    format_count_tick,
    new_figure,
    strategy_color,
)

JUDGE_COLORS = {"threshold": "#E69F00", "mannWhitney": "#0072B2", "sequential": "#009E73"}
"""Okabe-Ito colours of the three judges (other judges: ``strategy_color`` of their label)."""

FIGSIZE = (11.0, 8.0)


def judge_color(kind: str, label: str, taken: set[str]) -> str:
    """A judge's colour: fixed for the first strategy of each judge kind, else by label."""
    if kind in JUDGE_COLORS and JUDGE_COLORS[kind] not in taken:
        return JUDGE_COLORS[kind]
    return strategy_color(label)


def judge_power_figure(table: pd.DataFrame, *, title: str, level: float | None = None) -> Figure:
    """The four panels of the judges' curves; ``level`` draws the false-rollback level."""
    fig, axes = new_figure(2, 2, figsize=FIGSIZE)
    fig.suptitle(title, fontsize=TITLE_SIZE + 1)
    traffic = table[table["sweep"] == "traffic"]
    effect = table[table["sweep"] == "effect"]
    colors: dict[str, str] = {}
    for judge, rows in table[table["sweep"].isin(["traffic", "effect"])].groupby("judge", sort=False):
        colors[judge] = judge_color(rows["judge_kind"].iloc[0], judge, set(colors.values()))

    bad_ax, good_ax, time_ax, effect_ax = axes[0, 0], axes[0, 1], axes[1, 0], axes[1, 1]
    _draw_shares(bad_ax, traffic[traffic["release"] == "bad"], colors, "requests_per_window")
    _traffic_axis(bad_ax, "Bad release: P(rolled back), the judge's power")
    _draw_shares(good_ax, traffic[traffic["release"] == "good"], colors, "requests_per_window")
    _traffic_axis(good_ax, "Good release: P(rolled back), a false rollback")
    good = traffic[traffic["release"] == "good"]
    if len(good):  # false rollbacks are rare: a 0-100% axis would flatten them onto the floor
        top = max(0.1, float(good["p_rollback_high"].max()), level or 0.0)
        good_ax.set_ylim(-top * 0.02, min(1.02, top * 1.1))
    if level is not None:
        good_ax.axhline(level, color="#57606a", linestyle="--", linewidth=1)
        good_ax.annotate(f"{level:.0%}", xy=(1.0, level), xycoords=("axes fraction", "data"), xytext=(-4, 3),
                         textcoords="offset points", ha="right", va="bottom", fontsize=LABEL_SIZE - 1, color="#57606a")
    _draw_times(time_ax, traffic[traffic["release"] == "bad"], colors)
    _draw_shares(effect_ax, effect, colors, "added_error_rate")
    effect_ax.set_xscale("log")
    effect_ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=None))
    effect_ax.set_xlabel("defect's added error rate (absolute, log scale)", fontsize=LABEL_SIZE)
    effect_ax.set_title("Bad release at the scenario's traffic, by defect size", fontsize=TITLE_SIZE - 1)
    if effect.empty:
        draw_empty_note(effect_ax, "no effect-size sweep in the table")

    handles = [Line2D([], [], color=c, linewidth=2, label=j) for j, c in colors.items()]
    handles.append(Line2D([], [], color="#57606a", marker="o", markerfacecolor="none", linestyle="none",
                          markersize=9, label="the scenario's own traffic"))
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 4), fontsize=LABEL_SIZE,
               frameon=False)
    return fig


def _draw_shares(ax: Axes, rows: pd.DataFrame, colors: dict[str, str], x: str) -> None:
    for judge, g in rows.groupby("judge", sort=False):
        g = g.sort_values(x)
        color = colors[judge]
        ax.plot(g[x], g["p_rollback"], color=color, linewidth=2, marker=".", markersize=5)
        ax.fill_between(g[x], g["p_rollback_low"], g["p_rollback_high"], color=color, alpha=0.18, linewidth=0)
        own = g[g["scenario_traffic"].astype(bool)] if x == "requests_per_window" else g.iloc[0:0]
        ax.plot(own[x], own["p_rollback"], linestyle="none", marker="o", markersize=9, markerfacecolor="none",
                markeredgecolor=color, markeredgewidth=1.5)
    ax.set_ylim(-0.02, 1.02)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_ylabel("runs rolled back (%)", fontsize=LABEL_SIZE)
    ax.grid(True, which="major", alpha=0.3)


def _traffic_axis(ax: Axes, title: str) -> None:
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10))
    ax.xaxis.set_major_formatter(FuncFormatter(format_count_tick))
    ax.set_xlabel("canary requests per analysis window (log scale)", fontsize=LABEL_SIZE)
    ax.set_title(title, fontsize=TITLE_SIZE - 1)


def _draw_times(ax: Axes, rows: pd.DataFrame, colors: dict[str, str]) -> None:
    finite = rows[np.isfinite(rows["time_median_s"].astype(float))]
    top = float(np.nanmax(np.where(np.isfinite(finite["time_high_s"]), finite["time_high_s"], finite["time_median_s"]))
                ) if len(finite) else 0.0
    scale, unit = compute_duration_scale(top)
    for judge, g in finite.groupby("judge", sort=False):
        g = g.sort_values("requests_per_window")
        color = colors[judge]
        high = np.where(np.isfinite(g["time_high_s"]), g["time_high_s"], np.nan)
        ax.plot(g["requests_per_window"], g["time_median_s"] / scale, color=color, linewidth=2, marker=".", markersize=5)
        ax.fill_between(g["requests_per_window"], g["time_low_s"] / scale, high / scale, color=color, alpha=0.18,
                        linewidth=0)
        own = g[g["scenario_traffic"].astype(bool)]
        ax.plot(own["requests_per_window"], own["time_median_s"] / scale, linestyle="none", marker="o", markersize=9,
                markerfacecolor="none", markeredgecolor=color, markeredgewidth=1.5)
    _traffic_axis(ax, "Bad release: median time to roll it back")
    ax.set_ylabel(f"from the rollout's start ({unit})", fontsize=LABEL_SIZE)
    ax.set_ylim(bottom=0)
    ax.grid(True, which="major", alpha=0.3)
    if finite.empty:
        draw_empty_note(ax, "no judge rolls back half of the bad releases")
    elif len(finite) < len(rows):
        ax.text(0.02, 0.03, "gaps: fewer than half of the bad releases rolled back", transform=ax.transAxes,
                fontsize=LABEL_SIZE - 1, color="#57606a", ha="left", va="bottom")
    if not math.isfinite(top) or top <= 0:
        ax.set_ylim(0, 1)
