"""The report's charts read at a glance (reports.plots): no impossible ranges, nothing
clipped, no labels printed over each other. Checked on the drawn matplotlib objects, so a
regression is caught without looking at a picture."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure
from matplotlib.text import Annotation

from rolloutlab.reports import plots
from rolloutlab.results.table import to_frame
from rolloutlab.results.timeline import TimelinePoint

WINDOW = 1800.0
STRATEGIES = ("blue-green", "canary", "rolling")


def standard_like(runs: int = 120, release_columns: bool = True) -> pd.DataFrame:
    """A table shaped like 300 runs of the standard scenario: 1.8k baseline failures expected
    per run for everyone (the old version's 0.1%), canary restoring in about a minute,
    rolling in 5 to 60 minutes with a few failures up to 90k requests, blue-green never
    hurting users. Release-caused failures are the excess over the baseline, so a healthy
    run's is a little above or below zero by chance."""
    rng = np.random.default_rng(7)
    rows = []
    for strategy in STRATEGIES:
        for run in range(runs):
            failed = run % 5 == 1 and strategy != "blue-green"
            baseline = 1800.0
            noise = int(rng.normal(0, 42))
            if strategy == "rolling" and failed:
                restore = float(rng.uniform(300, 3600))
                caused = int(restore * 25)
            elif failed:
                restore = float(rng.uniform(76.0, 81.0))
                caused = int(rng.integers(20, 400))
            else:
                restore, caused = math.nan, 0
            duration = {"blue-green": 261.0, "canary": 455.0, "rolling": 42.0}[strategy]
            rows.append({
                "source": "sim", "scenario": "standard", "strategy": strategy, "run": run, "seed": 1,
                "release": f"standard#{run}", "defect": "error_rate" if failed else "none",
                "outcome": "rolled_back" if failed else "promoted", "started_at": 0.0,
                "finished_at": duration, "detected_at": 60.0 + restore if failed else math.nan,
                "restored_at": 60.0 + restore if failed else math.nan, "requests": 1_800_000,
                "failed_requests": int(baseline) + noise + caused, "peak_error_rate": 0.05 if failed else 0.001,
                "replica_seconds": {"blue-green": 22_700.0, "canary": 18_200.0, "rolling": 18_300.0}[strategy],
                "change_failed": failed, "time_to_restore": restore, "rollout_duration": duration,
                "impact_started_at": 60.0 if failed else math.nan, "ended_at": WINDOW,
                "baseline_failed_requests": baseline, "release_failed_requests": float(noise + caused),
                "detected_by": "analysis" if failed else "",
            })
    df = to_frame(rows)
    if not release_columns:
        df = df.drop(columns=["baseline_failed_requests", "release_failed_requests"])
    return df


# --------------------------------------------------------------------------- what "readable" means


def _drawn(fig: Figure) -> Figure:
    fig.canvas.draw()
    return fig


def _labels(ax, axis: str):
    """The tick labels drawn on one axis: visible, not empty, at a tick inside the view."""
    ticks = ax.xaxis if axis == "x" else ax.yaxis
    low, high = sorted(ticks.get_view_interval())
    labels = []
    for tick in [*ticks.get_major_ticks(), *ticks.get_minor_ticks()]:
        label = tick.label1
        where = tick.get_loc()
        if label.get_visible() and label.get_text().strip() and where is not None and low <= where <= high:
            labels.append(label)
    return labels


def overlapping_tick_labels(fig: Figure) -> list[tuple[str, str]]:
    """Pairs of tick labels on one axis whose drawn boxes overlap."""
    renderer = _drawn(fig).canvas.get_renderer()
    pairs = []
    for ax in fig.axes:
        for axis in ("x", "y"):
            boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in _labels(ax, axis)]
            for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2):
                if box_a.overlaps(box_b) and box_a.width > 0 and box_b.width > 0:
                    pairs.append((a, b))
    return pairs


def points_outside(fig: Figure) -> list[tuple[str, float, float]]:
    """Scatter points and line markers that lie outside their axes' view (in data units),
    or whose marker, drawn clipped, would be cut by the axes' edge."""
    renderer = _drawn(fig).canvas.get_renderer()
    outside = []
    for ax in fig.axes:
        (x0, x1), (y0, y1) = sorted(ax.get_xlim()), sorted(ax.get_ylim())
        bbox = ax.get_window_extent(renderer)
        for collection in ax.collections:
            if not isinstance(collection, PathCollection) or collection.get_transform() != ax.transData:
                continue
            radius = math.sqrt(max(collection.get_sizes(), default=0.0)) / 2 * fig.dpi / 72
            for x, y in collection.get_offsets():
                if not (x0 <= x <= x1 and y0 <= y <= y1):
                    outside.append((collection.get_gid() or "scatter", float(x), float(y)))
                    continue
                px, py = ax.transData.transform((x, y))
                cut = (px - radius < bbox.x0 or px + radius > bbox.x1 or py - radius < bbox.y0
                       or py + radius > bbox.y1)
                if cut and collection.get_clip_on():
                    outside.append((collection.get_gid() or "scatter (cut by the edge)", float(x), float(y)))
    return outside


def texts_overlapping(fig: Figure) -> list[tuple[str, str]]:
    """Pairs of texts whose boxes overlap: annotations and notes within one axes, and the
    figure's own texts (titles, notes) and legends among themselves."""
    renderer = _drawn(fig).canvas.get_renderer()

    def boxes(texts, legends=()):
        unique = {id(t): t for t in texts if t is not None}.values()
        out = [(t.get_text(), t.get_window_extent(renderer)) for t in unique
               if t.get_visible() and t.get_text().strip()]
        return out + [(f"legend {lg.get_gid() or ''}", lg.get_window_extent(renderer)) for lg in legends]

    groups = [boxes(ax.texts) for ax in fig.axes]
    # suptitle and supxlabel are kept apart from fig.texts (None when not set).
    groups.append(boxes([fig._suptitle, fig._supxlabel, *fig.texts],
                        [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend())]))
    pairs = []
    for group in groups:
        for (a, box_a), (b, box_b) in itertools.combinations(group, 2):
            if box_a.overlaps(box_b):
                pairs.append((a, b))
    return pairs


# --------------------------------------------------------------------------- failed requests


@pytest.mark.parametrize("release_columns", [True, False], ids=["with release columns", "totals only"])
def test_failed_requests_axes_never_go_below_zero(release_columns):
    """Failed requests cannot be negative: every panel's axis starts at zero."""
    fig = _drawn(plots.failed_requests_distribution(standard_like(release_columns=release_columns)))
    for ax in fig.axes:
        assert ax.get_xlim()[0] >= 0, ax.get_xlim()
        assert all(not t.get_text().startswith(("−", "-")) for t in _labels(ax, "x"))


@pytest.mark.parametrize("release_columns", [True, False], ids=["with release columns", "totals only"])
def test_failed_requests_show_every_run_inside_the_axes(release_columns):
    """Every run's dot, the heaviest tail included, lies inside the axes and is not cut by its edge."""
    fig = plots.failed_requests_distribution(standard_like(release_columns=release_columns))
    assert points_outside(fig) == []
    dots = sum(len(c.get_offsets()) for ax in fig.axes for c in ax.collections if isinstance(c, PathCollection))
    assert dots == len(standard_like()) * (2 if release_columns else 1)


def test_failed_requests_lead_with_what_the_release_caused():
    """With release columns, the first panel shows failures caused by the release, the second the total."""
    df = standard_like()
    fig = plots.failed_requests_distribution(df)
    release, total = fig.axes
    assert "release" in release.get_title().lower() and "total" in total.get_title().lower()
    xs = np.concatenate([c.get_offsets()[:, 0] for c in release.collections if isinstance(c, PathCollection)])
    assert sorted(xs) == sorted(df["release_failed_requests"].clip(lower=0))
    below = int((df["release_failed_requests"] < 0).sum())
    assert below > 0 and f"{below} runs" in release.get_xlabel()


def test_failed_requests_without_release_columns_say_so_once():
    """An old table without release columns shows the total and says once that the release's share is unknown."""
    fig = plots.failed_requests_distribution(standard_like(release_columns=False))
    (ax,) = fig.axes
    notes = [t for t in fig.texts + ax.texts if "release_failed_requests" in t.get_text()]
    assert len(notes) == 1
    assert "total" in ax.get_title().lower()


def test_failed_requests_tick_labels_do_not_overlap():
    """The failed-requests axes' tick labels are apart from each other."""
    assert overlapping_tick_labels(plots.failed_requests_distribution(standard_like())) == []


# --------------------------------------------------------------------------- restore ECDF


@pytest.mark.parametrize("runs", [120, 300], ids=["120 runs", "300 runs"])
def test_restore_ecdf_tick_labels_do_not_overlap(runs):
    """On a log time axis spanning a minute to an hour, no two tick labels are printed over each other."""
    fig = plots.restore_ecdf(standard_like(runs))
    assert fig.axes[0].get_xscale() == "log"
    assert overlapping_tick_labels(fig) == []


def test_restore_ecdf_tick_labels_are_plain_numbers():
    """Log-axis ticks read as plain minutes ("2", "5", "10"), not as "3×10⁰"."""
    fig = _drawn(plots.restore_ecdf(standard_like()))
    texts = [t.get_text() for t in _labels(fig.axes[0], "x")]
    assert texts and all("times" not in t and "×" not in t and "^" not in t for t in texts), texts


def test_restore_ecdf_axes_stay_within_possible_values():
    """Shares stay within 0..1 (with a little headroom) and restore times are positive."""
    fig = _drawn(plots.restore_ecdf(standard_like()))
    ax = fig.axes[0]
    assert ax.get_xlim()[0] > 0
    assert ax.get_ylim()[0] >= 0 and ax.get_ylim()[1] <= 1.1


# --------------------------------------------------------------------------- one rollout


def _point(at: float, *events: str) -> TimelinePoint:
    return TimelinePoint(at, 10.0, 10.0, 10, 1, 0.001, 0.05, tuple(events))


def test_rollout_timeline_milestones_at_one_moment_share_one_label():
    """An abort and its rollback at the same second are named in one label, not printed over each other."""
    timeline = [_point(0.0), _point(51.0, "Measurement: error-rate: Failed (0.05) x"),
                _point(81.0, "Aborted: analysis failed", "RolledBack: stable serves all traffic"),
                _point(111.0)]
    fig = plots.rollout_timeline(timeline, "blue-green, run 1")
    assert texts_overlapping(fig) == []
    labels = [t.get_text() for t in fig.axes[0].texts if isinstance(t, Annotation)]
    assert labels == ["aborted, rolled back"]


# --------------------------------------------------------------------------- every chart


@pytest.mark.parametrize(
    "build",
    [lambda df: plots.failed_requests_distribution(df),
     lambda df: plots.restore_ecdf(df),
     lambda df: plots.pareto(df)],
    ids=["failed requests", "restore ECDF", "pareto"],
)
def test_charts_of_a_standard_like_table_are_readable(build):
    """No chart drawn from a standard-like table has overlapping tick labels, texts over texts or clipped points."""
    fig = build(standard_like())
    assert overlapping_tick_labels(fig) == []
    assert texts_overlapping(fig) == []
    assert points_outside(fig) == []
