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
from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullFormatter
from scipy import stats

from rolloutlab.results import statistics as comparison
from rolloutlab.results.formatting import format_quantity
from rolloutlab.results.statistics import StrategySummary
from rolloutlab.results.timeline import TimelinePoint

__all__ = [
    "GRID_METRICS",
    "AnalysisMark",
    "MeasurementMark",
    "Milestone",
    "MilestoneKind",
    "RestoreCurve",
    "TimelineMarks",
    "compute_count_axis",
    "compute_duration_scale",
    "compute_ecdf",
    "compute_log_floor",
    "compute_log_ticks",
    "compute_milestone_groups",
    "compute_pareto_front",
    "compute_restore_curve",
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
            durations, followed = comparison.censored_times(rows, "time_to_restore")
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
    fig, axes = _new_figure()
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
        _empty_note(ax, "\n".join(notes) or "no deployments")
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
    legend.get_title().set_color(_NA_COLOR)
    legend.set_gid("restore-legend")
    ax.grid(alpha=0.3)
    return fig


RELEASE_FAILED = "release_failed_requests"
"""The results column of failures caused by the release: beyond what the old version would
have failed anyway in the same window (``failed_requests`` minus ``baseline_failed_requests``)."""

NO_RELEASE_COLUMNS = (
    "this table has no release_failed_requests column (an older results table or a deployment "
    "log): only the total is shown, baseline errors included"
)
"""Said once, wherever a chart or table would lead with the release's failures but cannot."""


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


def _format_count_tick(x: float, _pos: int | None = None) -> str:
    return format_quantity(x) if x >= 0 else ""


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
        fig, axes = _new_figure(1, 2, figsize=(11.0, 4.8), sharey=True)
        fig.suptitle("Failed requests per deployment", fontsize=TITLE_SIZE)
        panels = [(RELEASE_FAILED, "Caused by the release"), ("failed_requests", "Total, baseline errors included")]
        for i, (ax, (column, title)) in enumerate(zip(axes[0], panels)):
            ax.set_title(title, fontsize=LABEL_SIZE + 1)
            _draw_count_distribution(ax, df, names, column, name_rows=i == 0)
        return fig
    fig, axes = _new_figure()
    ax = axes[0, 0]
    ax.set_title("Failed requests per deployment (total, baseline errors included)", fontsize=TITLE_SIZE)
    _draw_count_distribution(ax, df, names, "failed_requests")
    # supxlabel, not a free text: the constrained layout makes room for it.
    fig.supxlabel(NO_RELEASE_COLUMNS, fontsize=LABEL_SIZE - 2, color=_NA_COLOR, gid="no-release-columns",
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
        _empty_note(ax, "no deployments")
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
    ax.xaxis.set_major_formatter(FuncFormatter(_format_count_tick))
    if everything.size and not (everything > 0).any():
        ax.text(0.98, 0.96, "no failed requests in any run", transform=ax.transAxes, ha="right",
                va="top", color=_NA_COLOR, fontsize=LABEL_SIZE)
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)


# --------------------------------------------------------------------------- one rollout

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
    """Measurements ("Measurement: error-rate: Failed (...) ...") and milestones (Promoted,
    Aborted, RolledBack, AlertFired) read from the event strings of a timeline; other events
    and "Pending" measurements (not yet judged) are left out."""
    measurements: list[MeasurementMark] = []
    milestones: list[Milestone] = []
    kinds = {k.value: k for k in MilestoneKind}
    phases = {v.value: v for v in AnalysisMark}
    for point in timeline:
        for event in point.events:
            reason, _, message = event.partition(": ")
            if reason == "Measurement":
                metric, _, rest = message.partition(": ")
                phase = rest.split(" ", 1)[0]
                if phase in phases:
                    measurements.append(MeasurementMark(float(point.at), metric, phases[phase]))
            elif reason in kinds:
                milestones.append(Milestone(float(point.at), kinds[reason], message))
    return TimelineMarks(tuple(measurements), tuple(milestones))


def rollout_timeline(timeline: Sequence[TimelinePoint], title: str = "Rollout timeline") -> Figure:
    """One rollout over time: canary weight (declared by the strategy vs effective at the
    router) on top, each version's cumulative error rate in the middle, the analysis'
    measurement phases at the bottom; vertical lines mark promote, abort, rollback and
    fired alerts on every panel."""
    fig, axes = _new_figure(3, 1, figsize=(8.0, 6.5), sharex=True,
                            gridspec_kw={"height_ratios": [3, 3, 1.4]})
    weight_ax, error_ax, mark_ax = axes[:, 0]
    fig.suptitle(title, fontsize=TITLE_SIZE)
    weight_ax.set_ylabel("canary weight (%)", fontsize=LABEL_SIZE)
    error_ax.set_ylabel("error rate (%)", fontsize=LABEL_SIZE)
    phases = list(AnalysisMark)
    mark_ax.set_yticks(range(len(phases)), [v.value for v in phases], fontsize=LABEL_SIZE - 2)
    mark_ax.set_ylim(-0.6, len(phases) - 0.4)
    if not timeline:
        _empty_note(weight_ax, "no timeline recorded")
        mark_ax.set_xlabel("time since rollout start (s)", fontsize=LABEL_SIZE)
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
    for row, phase in enumerate(phases):
        times = [m.at / divisor for m in marks.measurements if m.mark is phase]
        if times:
            color, marker = _MARK_STYLE[phase]
            mark_ax.plot(times, [row] * len(times), linestyle="none", marker=marker, markersize=8,
                         color=color, label=f"{phase.value} ({len(times)})", gid=f"mark:{phase.value}")
    if not marks.measurements:
        _empty_note(mark_ax, "no analysis measurements")

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
