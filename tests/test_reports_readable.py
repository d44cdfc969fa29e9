"""The report's charts read at a glance (reports.plots): no impossible ranges, nothing
clipped, no labels printed over each other. Checked on the drawn matplotlib objects, so a
regression is caught without looking at a picture."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure
from matplotlib.text import Annotation

from rolloutlab.reports import distributions, plots, timeline_plot
from rolloutlab.results.statistics import summarize
from rolloutlab.results.timeline import TimelinePoint
from tests.report_tables import standard_like
from tests.report_tables import typed_event as _event

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
            if not isinstance(collection, PathCollection) or collection.get_offset_transform() is not ax.transData:
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


def texts_outside_figure(fig: Figure) -> list[str]:
    """Texts (titles, axis labels, drawn tick labels, notes, legends) cut by the figure's edge."""
    renderer = _drawn(fig).canvas.get_renderer()
    page = fig.bbox
    texts = [fig._suptitle, fig._supxlabel, *fig.texts]
    for ax in fig.axes:
        texts += [ax.title, ax._left_title, ax._right_title, ax.xaxis.label, ax.yaxis.label, *ax.texts,
                  *_labels(ax, "x"), *_labels(ax, "y")]
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts
             if t is not None and t.get_visible() and t.get_text().strip()]
    legends = [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend())]
    boxes += [("legend", lg.get_window_extent(renderer)) for lg in legends]
    return [text for text, box in boxes
            if box.x0 < page.x0 - 1 or box.x1 > page.x1 + 1 or box.y0 < page.y0 - 1 or box.y1 > page.y1 + 1]


# --------------------------------------------------------------------------- failed requests


@pytest.mark.parametrize("release_columns", [True, False], ids=["with release columns", "totals only"])
def test_failed_requests_axes_never_go_below_zero(release_columns):
    """Failed requests cannot be negative: every panel's axis starts at zero."""
    fig = _drawn(distributions.failed_requests_distribution(standard_like(release_columns=release_columns)))
    for ax in fig.axes:
        assert ax.get_xlim()[0] >= 0, ax.get_xlim()
        assert all(not t.get_text().startswith(("−", "-")) for t in _labels(ax, "x"))


@pytest.mark.parametrize("release_columns", [True, False], ids=["with release columns", "totals only"])
def test_failed_requests_show_every_run_inside_the_axes(release_columns):
    """Every run's dot, the heaviest tail included, lies inside the axes and is not cut by its edge."""
    fig = distributions.failed_requests_distribution(standard_like(release_columns=release_columns))
    assert points_outside(fig) == []
    dots = sum(len(c.get_offsets()) for ax in fig.axes for c in ax.collections if isinstance(c, PathCollection))
    assert dots == len(standard_like()) * (2 if release_columns else 1)


def test_failed_requests_lead_with_what_the_release_caused():
    """With release columns, the first panel shows failures caused by the release, the second the total."""
    df = standard_like()
    fig = distributions.failed_requests_distribution(df)
    release, total = fig.axes
    assert "release" in release.get_title().lower() and "total" in total.get_title().lower()
    xs = np.concatenate([c.get_offsets()[:, 0] for c in release.collections if isinstance(c, PathCollection)])
    assert sorted(xs) == sorted(df["release_failed_requests"].clip(lower=0))
    below = int((df["release_failed_requests"] < 0).sum())
    assert below > 0 and f"{below} runs" in release.get_xlabel()


def test_failed_requests_without_release_columns_say_so_once():
    """An old table without release columns shows the total and says once that the release's share is unknown."""
    fig = distributions.failed_requests_distribution(standard_like(release_columns=False))
    (ax,) = fig.axes
    notes = [t for t in fig.texts + ax.texts if "release_failed_requests" in t.get_text()]
    assert len(notes) == 1
    assert "total" in ax.get_title().lower()


def test_failed_requests_tick_labels_do_not_overlap():
    """The failed-requests axes' tick labels are apart from each other."""
    assert overlapping_tick_labels(distributions.failed_requests_distribution(standard_like())) == []


# --------------------------------------------------------------------------- restore ECDF


@pytest.mark.parametrize("runs", [120, 300], ids=["120 runs", "300 runs"])
def test_restore_ecdf_tick_labels_do_not_overlap(runs):
    """On a log time axis spanning a minute to an hour, no two tick labels are printed over each other."""
    fig = distributions.restore_ecdf(standard_like(runs))
    assert fig.axes[0].get_xscale() == "log"
    assert overlapping_tick_labels(fig) == []


def test_restore_ecdf_tick_labels_are_plain_numbers():
    """Log-axis ticks read as plain minutes ("2", "5", "10"), not as "3×10⁰"."""
    fig = _drawn(distributions.restore_ecdf(standard_like()))
    texts = [t.get_text() for t in _labels(fig.axes[0], "x")]
    assert texts and all("times" not in t and "×" not in t and "^" not in t for t in texts), texts


def test_restore_ecdf_axes_stay_within_possible_values():
    """Shares stay within 0..1 (with a little headroom) and restore times are positive."""
    fig = _drawn(distributions.restore_ecdf(standard_like()))
    ax = fig.axes[0]
    assert ax.get_xlim()[0] > 0
    assert ax.get_ylim()[0] >= 0 and ax.get_ylim()[1] <= 1.1


# --------------------------------------------------------------------------- one rollout


def _point(at: float, *events: str) -> TimelinePoint:
    return TimelinePoint(at, 10.0, 10.0, 10, 1, 0.001, 0.05, tuple(_event(e) for e in events))


def test_rollout_timeline_milestones_at_one_moment_share_one_label():
    """An abort and its rollback at the same second are named in one label, not printed over each other."""
    timeline = [_point(0.0), _point(51.0, "Measurement: error-rate: Failed (0.05) x"),
                _point(81.0, "Aborted: analysis failed", "RolledBack: stable serves all traffic"),
                _point(111.0)]
    fig = timeline_plot.rollout_timeline(timeline, "blue-green, run 1")
    assert texts_overlapping(fig) == []
    labels = [t.get_text() for t in fig.axes[0].texts if isinstance(t, Annotation)]
    assert labels == ["aborted, rolled back"]


# --------------------------------------------------------------------------- every chart


TIMELINE = [_point(0.0), _point(51.0, "Measurement: error-rate: Failed (0.05) x"),
            _point(81.0, "Aborted: analysis failed", "RolledBack: stable serves all traffic"),
            _point(95.0, "AlertFired: high-error-rate"), _point(111.0)]


@pytest.mark.parametrize(
    "build",
    [lambda df: distributions.failed_requests_distribution(df),
     lambda df: distributions.failed_requests_distribution(df.drop(columns=["release_failed_requests"])),
     lambda df: distributions.restore_ecdf(df),
     lambda df: plots.pareto(df),
     lambda df: plots.metric_bar_grid(summarize(df)),
     lambda df: plots.metric_bars(summarize(df), "release_failed_requests_mean"),
     lambda df: timeline_plot.rollout_timeline(TIMELINE, "blue-green, run 1 (seed 1): error_rate release, rolled_back")],
    ids=["failed requests", "failed requests, totals only", "restore ECDF", "pareto", "bar grid",
         "release-caused bars", "timeline"],
)
def test_charts_of_a_standard_like_table_are_readable(build):
    """No chart drawn from a standard-like table has overlapping tick labels, texts over texts, texts cut by
    the figure's edge or clipped points."""
    fig = build(standard_like())
    assert overlapping_tick_labels(fig) == []
    assert texts_overlapping(fig) == []
    assert texts_outside_figure(fig) == []
    assert points_outside(fig) == []
