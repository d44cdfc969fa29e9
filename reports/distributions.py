"""Distributions over runs, per strategy: how long failed deployments took to be restored
(a censoring-aware staircase) and how many requests each deployment failed (every run a
dot, the release's share first, the total beside it).

Built like every chart of the report (``reports.plots``: object API, one colour per
strategy). Axes hold only possible values: counts from zero, shares from 0 to 1, log time
axes with plain ticks (1, 2, 5, 10 minutes), nothing clipped.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullFormatter
from scipy import stats

from rolloutlab.reports.dora import NO_RELEASE_COLUMNS, RELEASE_FAILED
from rolloutlab.reports.plots import (
    LABEL_SIZE,
    NA_COLOR,
    TITLE_SIZE,
    draw_empty_note,
    format_count_tick,
    new_figure,
    strategy_color,
)
from rolloutlab.results import statistics as results_statistics
from rolloutlab.results.formatting import format_quantity


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


CENSORING_COLUMNS = ("change_failed", "impact_started_at", "ended_at")
"""What a table needs for restore curves that count the incidents never restored (censored
at the window's end) rather than leave them out."""


@dataclass(frozen=True)
class RestoreCurve:
    """The share of a strategy's failed deployments restored within each time: the
    Kaplan-Meier CDF, an incident not restored by its window's end censored there (the
    estimator of ``results.statistics.compute_censored_quantile``, so the curve crosses 0.5
    at the reported median). ``times`` (seconds) and ``shares`` are the staircase's steps;
    the curve is known up to ``followed_until``, the longest time observed, and stays below
    1 when incidents were censored."""

    times: np.ndarray
    shares: np.ndarray
    failures: int
    censored: int
    followed_until: float


def compute_restore_curve(durations: Any, followed: Any) -> RestoreCurve:
    """The ``RestoreCurve`` of times to restore (NaN or inf: not restored in the window) each
    observed for ``followed`` seconds (a number or one per incident)."""
    x = np.asarray(durations, dtype=float).ravel()
    limits = np.broadcast_to(np.asarray(followed, dtype=float), x.shape)
    ended = np.isfinite(x)
    right = np.maximum(limits[~ended], 0.0)
    right = right[np.isfinite(right)]
    last = float(max(x[ended].max(initial=0.0), right.max(initial=0.0)))
    if not ended.any():
        return RestoreCurve(np.empty(0), np.empty(0), int(x.size), int((~ended).sum()), last)
    result = stats.ecdf(stats.CensoredData(uncensored=x[ended], right=right))
    return RestoreCurve(np.asarray(result.cdf.quantiles, dtype=float), np.asarray(result.cdf.probabilities, dtype=float),
                        int(x.size), int((~ended).sum()), last)


def _restore_curves(df: pd.DataFrame) -> tuple[dict[str, RestoreCurve], bool]:
    """Each strategy's restore curve, and whether the table could say which incidents were
    censored (else the curves cover restored incidents only)."""
    censoring = all(c in df for c in CENSORING_COLUMNS)
    curves = {}
    for name in _strategies_in_order(df):
        rows = df.loc[df["strategy"] == name]
        if censoring:
            durations, followed = results_statistics.censored_times(rows, "time_to_restore")
        else:
            durations = rows["time_to_restore"].to_numpy(dtype=float)
            durations = durations[np.isfinite(durations)]
            followed = durations
        curves[name] = compute_restore_curve(durations, followed)
    return curves, censoring


def compute_log_ticks(low: float, high: float) -> list[float]:
    """Tick positions for a log axis from ``low`` to ``high`` (both > 0): 1, 2, 5 per decade
    when the axis spans at most three decades, else the powers of ten alone, so labels
    never crowd one another."""
    decades = math.log10(high) - math.log10(low)
    subs = (1.0, 2.0, 5.0) if decades <= 3 else (1.0,)
    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
    ticks = [m * 10.0 ** e for e in range(first, last + 1) for m in subs]
    return [t for t in ticks if low <= t <= high]


def compute_log_floor(x: float) -> float:
    """The largest 1, 2 or 5 times a power of ten at or below ``x`` (> 0): where a log axis
    starts so that its first tick is labelled."""
    power = 10.0 ** math.floor(math.log10(x))
    return max(m * power for m in (1.0, 2.0, 5.0) if m * power <= x * (1 + 1e-12))


def _format_plain(x: float, _pos: int | None = None) -> str:
    """A tick as a plain number ("0.5", "2", "20", "1k"), never as "2×10¹"."""
    return format_quantity(x) if x >= 1000 else f"{x:g}"


def _set_plain_log_axis(ax: Axes, low: float, high: float) -> None:
    ax.set_xscale("log")
    ax.set_xlim(low, high)
    ax.xaxis.set_major_locator(FixedLocator(compute_log_ticks(low, high)))
    ax.xaxis.set_major_formatter(FuncFormatter(_format_plain))
    ax.xaxis.set_minor_locator(LogLocator(base=10, subs="auto"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def restore_ecdf(df: pd.DataFrame) -> Figure:
    """Time to restore service per strategy: the share of its failed deployments restored
    within t minutes (``compute_restore_curve``), incidents never restored counted as
    censored at the window's end, so a strategy that leaves most unrestored stays low. A
    dashed line marks the median (0.5). Strategies without failures, or that never
    restored one, are named in a note."""
    fig, axes = new_figure()
    ax = axes[0, 0]
    ax.set_title("Time to restore service", fontsize=TITLE_SIZE)
    ax.set_ylabel("share of failed deployments restored", fontsize=LABEL_SIZE)
    ax.set_ylim(0, 1.04)
    curves, censoring = _restore_curves(df)
    drawn = {n: c for n, c in curves.items() if c.times.size}
    notes = []
    if not censoring:
        ax.set_ylabel("share of restored deployments", fontsize=LABEL_SIZE)
        notes.append("no " + ", ".join(c for c in CENSORING_COLUMNS if c not in df)
                     + " column: only restored incidents are counted")
    no_failures = [n for n, c in curves.items() if c.failures == 0]
    never = [f"{n} ({c.failures})" for n, c in curves.items() if c.failures and not c.times.size]
    if no_failures:
        notes.append("no failed deployments: " + ", ".join(no_failures))
    if never:
        notes.append("never restored in the window: " + ", ".join(never))
    if not drawn:
        ax.set_xlabel("time to restore (min)", fontsize=LABEL_SIZE)
        draw_empty_note(ax, "\n".join(notes) or "no deployments")
        return fig
    low = min(float(c.times[c.times > 0].min(initial=math.inf)) for c in drawn.values()) / 60
    high = max(max(c.followed_until, float(c.times.max())) for c in drawn.values()) / 60
    for name, curve in drawn.items():
        minutes = curve.times / 60
        # From 0 at the first restore, step by step, then flat to the end of what was observed.
        x = np.r_[minutes[0], minutes, curve.followed_until / 60]
        y = np.r_[0.0, curve.shares, curve.shares[-1]]
        tail = f"{curve.censored} not restored" if curve.censored else "all restored"
        ax.step(x, y, where="post", color=strategy_color(name), linewidth=2, clip_on=False,
                label=f"{name} ({curve.failures} failures, {tail})", gid=f"restore:{name}")
    ax.axhline(0.5, color="#555555", linestyle="--", linewidth=0.9, alpha=0.7, gid="median-line")
    if math.isfinite(low) and low > 0 and high / low > LOG_SPREAD:
        _set_plain_log_axis(ax, compute_log_floor(low / 1.05), high * 1.15)
        ax.set_xlabel("time to restore (min, log scale)", fontsize=LABEL_SIZE)
    else:
        ax.set_xlim(0, high * 1.05 if high > 0 else 1.0)
        ax.set_xlabel("time to restore (min)", fontsize=LABEL_SIZE)
    # Below the axes, where it cannot cover a curve; the notes are its title, said once.
    legend = fig.legend(loc="outside lower center", ncols=min(3, len(drawn)), fontsize=LABEL_SIZE - 1,
                        frameon=False, title="; ".join(notes) or None, title_fontsize=LABEL_SIZE - 1)
    legend.get_title().set_color(NA_COLOR)
    legend.set_gid("restore-legend")
    ax.grid(alpha=0.3)
    return fig


def compute_count_axis(values: np.ndarray) -> tuple[str, tuple[float, float]]:
    """(scale, (left, right)) for an axis of non-negative counts: linear from 0 with 8%
    headroom, or symmetric-log from 0 (zero stays on the axis) when the positive values span
    more than ``LOG_SPREAD``x, with a fifth of a decade of headroom so the largest dot is not
    cut by the edge. All zero (or nothing) gives a linear 0..1."""
    finite = values[np.isfinite(values)]
    top = float(finite.max()) if finite.size else 0.0
    if top <= 0:
        return "linear", (0.0, 1.0)
    positive = finite[finite > 0]
    if top / max(float(positive.min()), 1.0) > LOG_SPREAD:
        return "symlog", (0.0, top * 10 ** 0.2)
    return "linear", (0.0, top * 1.08)


def failed_requests_distribution(df: pd.DataFrame) -> Figure:
    """Failed requests per deployment, one horizontal box plot per strategy with every run
    drawn as a dot. With ``release_failed_requests`` in the table, the first panel shows the
    failures the release caused (the headline) and the second the total, baseline errors
    included; without it, the total alone and a note saying why. Each axis starts at zero
    and goes symmetric-log when the counts span more than ``LOG_SPREAD``x
    (``compute_count_axis``)."""
    names = _strategies_in_order(df)
    release = RELEASE_FAILED in df
    if release:
        fig, axes = new_figure(1, 2, figsize=(11.0, 4.8), sharey=True)
        fig.suptitle("Failed requests per deployment", fontsize=TITLE_SIZE)
        panels = [(RELEASE_FAILED, "Caused by the release"), ("failed_requests", "Total, baseline errors included")]
        for i, (ax, (column, title)) in enumerate(zip(axes[0], panels)):
            ax.set_title(title, fontsize=LABEL_SIZE + 1)
            _draw_count_distribution(ax, df, names, column, name_rows=i == 0)
        return fig
    fig, axes = new_figure()
    ax = axes[0, 0]
    ax.set_title("Failed requests per deployment (total, baseline errors included)", fontsize=TITLE_SIZE)
    _draw_count_distribution(ax, df, names, "failed_requests")
    # supxlabel, not a free text: the constrained layout makes room for it.
    fig.supxlabel(NO_RELEASE_COLUMNS, fontsize=LABEL_SIZE - 2, color=NA_COLOR, gid="no-release-columns",
                  wrap=True)
    return fig


def _chance_band(df: pd.DataFrame) -> float | None:
    """Twice the Poisson standard deviation of the typical run's baseline failures, or None."""
    if "baseline_failed_requests" not in df:
        return None
    baseline = df["baseline_failed_requests"].to_numpy(dtype=float)
    baseline = baseline[np.isfinite(baseline) & (baseline > 0)]
    return 2 * math.sqrt(float(np.median(baseline))) if baseline.size else None


def _runs_label(name: str, values: np.ndarray) -> str:
    """"canary\n(n=300, 240 at 0)": how many dots hide on the zero line, where they pile up."""
    zeros = int((values == 0).sum())
    return f"{name}\n(n={values.size}" + (f", {zeros} at 0)" if zeros else ")")


def _draw_count_distribution(ax: Axes, df: pd.DataFrame, names: list[str], column: str,
                             name_rows: bool = True) -> None:
    """One panel of ``failed_requests_distribution``; ``name_rows`` False on a panel that
    shares its rows' names with the one beside it."""
    label = "requests per deployment" + (" beyond the baseline" if column == RELEASE_FAILED else "")
    ax.set_xlabel(label, fontsize=LABEL_SIZE)
    if not names:
        draw_empty_note(ax, "no deployments")
        return
    samples = []
    below = 0
    for name in names:
        v = df.loc[df["strategy"] == name, column].to_numpy(dtype=float)
        v = v[np.isfinite(v)]
        # Failures beyond the baseline's expectation dip below zero by chance on a healthy
        # run; drawn at 0 (nothing caused), counted in the label. Means use the raw values.
        below += int((v < 0).sum())
        samples.append(np.maximum(v, 0.0))
    notes = []
    chance = _chance_band(df) if column == RELEASE_FAILED else None
    if chance:
        # Poisson noise of the baseline alone: excess within ~2 sd is not the release's doing.
        ax.axvspan(0.0, chance, color="#000000", alpha=0.07, linewidth=0, gid="chance-band")
        notes.append(f"shaded: within chance of the baseline (< 2√baseline = {format_quantity(chance)})")
    if below:
        notes.append(f"{below} runs below the baseline by chance are drawn at 0")
    boxes = ax.boxplot(samples, orientation="horizontal", widths=0.5, patch_artist=True, showfliers=False,
                       medianprops={"color": "#222222"}, manage_ticks=False)
    ax.set_ylim(0.4, len(names) + 0.6)
    for patch, name in zip(boxes["boxes"], names):
        patch.set_facecolor(strategy_color(name))
        patch.set_alpha(0.35)
    jitter = np.random.default_rng(0)  # fixed: the same table always gives the same picture
    for i, (name, v) in enumerate(zip(names, samples), start=1):
        # Not clipped: a run with no failure sits on the zero line and must show whole.
        ax.scatter(v, i + jitter.uniform(-0.15, 0.15, v.size), s=12, color=strategy_color(name),
                   alpha=0.7, linewidths=0, zorder=3, clip_on=False, gid=f"runs:{name}")
    if name_rows:
        ax.set_yticks(np.arange(1, len(names) + 1), [_runs_label(n, v) for n, v in zip(names, samples)],
                      fontsize=LABEL_SIZE)
    everything = np.concatenate(samples) if samples else np.empty(0)
    scale, limits = compute_count_axis(everything)
    if scale == "symlog":
        ax.set_xscale("symlog", linthresh=1.0, linscale=0.5)
        label += " (log scale above 1)"
    ax.set_xlabel("\n".join([label, *notes]), fontsize=LABEL_SIZE)
    ax.set_xlim(*limits)
    ax.xaxis.set_major_formatter(FuncFormatter(format_count_tick))
    if everything.size and not (everything > 0).any():
        ax.text(0.98, 0.96, "no failed requests in any run", transform=ax.transAxes, ha="right",
                va="top", color=NA_COLOR, fontsize=LABEL_SIZE)
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
