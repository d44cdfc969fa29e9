"""Charts of a strategy comparison and of one rollout (reports.plots), built from a small real simulation."""

from __future__ import annotations

import io
import math
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import matplotlib.colors
import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection
from matplotlib.container import BarContainer, ErrorbarContainer
from matplotlib.figure import Figure

from rolloutlab.reports import plots
from rolloutlab.results.statistics import Figure as Estimate
from rolloutlab.results.statistics import summarize
from rolloutlab.results.timeline import TimelinePoint
from rolloutlab.scenarios import bundled_scenario, load_scenario
from rolloutlab.scenarios.release import run_seed_sequence
from rolloutlab.sim.montecarlo import run_many
from rolloutlab.sim.run import simulate
from rolloutlab.strategies import load_strategy

STRATEGIES = ("blue-green", "canary", "rolling")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def scenario():
    return load_scenario(bundled_scenario("standard"))


@pytest.fixture(scope="module")
def results(scenario) -> pd.DataFrame:
    specs = [load_strategy(name) for name in STRATEGIES]
    return run_many(scenario, specs, runs=40, seed=1, executor="serial", progress=False)


@pytest.fixture(scope="module")
def summaries(results):
    return summarize(results)


@pytest.fixture(scope="module")
def defective_timeline(scenario) -> list[TimelinePoint]:
    canary = load_strategy("canary")
    for run in range(40):
        result = simulate(scenario, canary, run, run_seed_sequence(1, run), timeline=True)
        if result.row["defect"] != "none":
            return result.timeline
    raise AssertionError("no defective canary release in 40 runs of the standard scenario")


def _decode(png: bytes) -> np.ndarray:
    return matplotlib.image.imread(io.BytesIO(png), format="png")


def _bars(ax) -> BarContainer:
    (bars,) = [c for c in ax.containers if isinstance(c, BarContainer)]
    return bars


def _errorbars(ax) -> list[ErrorbarContainer]:
    return [c for c in ax.containers if isinstance(c, ErrorbarContainer)]


def _gids(ax, prefix: str) -> list[str]:
    return [a.get_gid() for a in ax.get_children() if (a.get_gid() or "").startswith(prefix)]


# --------------------------------------------------------------------------- colours and scales


def test_charts_never_touch_pyplot_global_state():
    """Building and rendering a chart does not import pyplot, so charts are safe in threads and worker processes."""
    code = (
        "import sys; from rolloutlab.reports import plots; "
        "from rolloutlab.sim.world import TimelinePoint; "
        "plots.figure_png(plots.rollout_timeline([TimelinePoint(0, 10, 10, 1, 1, 0, 0)])); "
        "assert 'matplotlib.pyplot' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])


def test_each_strategy_has_one_colour_in_every_chart():
    """A strategy's colour is the same on every call, and the bundled strategies get distinct colours."""
    assert [plots.strategy_color(n) for n in STRATEGIES] == [plots.strategy_color(n) for n in STRATEGIES]
    assert len({plots.strategy_color(n) for n in STRATEGIES}) == 3
    assert plots.strategy_color("my-custom") == plots.strategy_color("my-custom")


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(40.0, (1.0, "s")), (179.0, (1.0, "s")), (180.0, (60.0, "min")), (3600.0, (60.0, "min")),
     (math.nan, (1.0, "s"))],
    ids=["40s stays seconds", "just under 3 min", "3 min switches", "an hour", "NaN"],
)
def test_durations_are_plotted_in_minutes_once_long(seconds, expected):
    """Duration axes use seconds for short spans and minutes from three minutes on."""
    assert plots.compute_duration_scale(seconds) == expected


# --------------------------------------------------------------------------- metric bars


@pytest.mark.parametrize(
    ("metric", "unit_in_label"),
    [("change_failure_rate", "(%)"), ("mttr_median", "(min)"), ("failed_requests_mean", "(requests)"),
     ("rollout_duration_median", "(min)"), ("cost_mean", "(replica·s)")],
    ids=["rate in percent", "MTTR in minutes", "failed requests", "rollout duration in minutes", "cost"],
)
def test_metric_bars_draw_one_bar_per_strategy_with_ci_whiskers(summaries, metric, unit_in_label):
    """Each strategy gets one bar in its colour, those with an interval get an error bar, and the axis names its unit."""
    fig = plots.metric_bars(summaries, metric)
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    bars = _bars(ax)
    assert len(bars) == len(STRATEGIES)
    assert [t.get_text() for t in ax.get_xticklabels()] == list(STRATEGIES)
    with_ci = [s for s in summaries if getattr(s, metric).value is not None and getattr(s, metric).low is not None]
    (errorbar,) = _errorbars(ax)
    assert len(errorbar.lines[2][0].get_segments()) == len(with_ci)
    assert unit_in_label in ax.get_ylabel()
    for bar, name in zip(bars, STRATEGIES):
        assert bar.get_facecolor()[:3] == pytest.approx(matplotlib.colors.to_rgb(plots.strategy_color(name)))


def test_metric_bars_whiskers_are_asymmetric_from_the_interval(summaries):
    """Error bars run from the interval's low to its high end, not symmetrically around the value."""
    fig = plots.metric_bars(summaries, "failed_requests_mean", "Failed requests", "requests")
    (errorbar,) = _errorbars(fig.axes[0])
    segments = errorbar.lines[2][0].get_segments()
    for segment, s in zip(segments, summaries):
        (_, y0), (_, y1) = segment
        assert (y0, y1) == pytest.approx((s.failed_requests_mean.low, s.failed_requests_mean.high))


def test_metric_bars_label_an_unavailable_figure_na(summaries):
    """A strategy whose figure is n/a (blue-green never had to restore) keeps its slot, with an "n/a" label."""
    assert summaries[0].mttr_median.value is None  # the scenario gives blue-green no impact to restore
    fig = plots.metric_bars(summaries, "mttr_median", "MTTR median", "min")
    ax = fig.axes[0]
    assert len(_bars(ax)) == len(STRATEGIES)
    assert _gids(ax, "na:") == ["na:blue-green"]


@pytest.mark.parametrize(
    "estimate",
    [Estimate.unavailable(0), Estimate(3.0, None, None, 1)],
    ids=["all n/a", "values without intervals"],
)
def test_metric_bars_survive_figures_without_intervals(summaries, estimate):
    """Bars render when no strategy has an interval, or none has a value at all."""
    hollow = [replace(s, cost_mean=estimate) for s in summaries]
    fig = plots.metric_bars(hollow, "cost_mean")
    assert len(_bars(fig.axes[0])) == len(STRATEGIES)
    assert _errorbars(fig.axes[0]) == []
    assert plots.figure_png(fig).startswith(PNG_SIGNATURE)


def test_metric_bars_of_no_strategies_is_an_empty_chart():
    """An empty comparison draws a captioned empty chart rather than failing."""
    fig = plots.metric_bars([], "cost_mean")
    assert plots.figure_png(fig).startswith(PNG_SIGNATURE)


def test_metric_bars_reject_an_unknown_metric(summaries):
    """Asking for a figure a summary does not have raises and names it."""
    with pytest.raises(ValueError, match="no_such_metric"):
        plots.metric_bars(summaries, "no_such_metric")


def test_metric_bar_grid_has_one_panel_per_grid_metric(summaries):
    """The grid holds a bar chart for each of the five headline metrics, each with one bar per strategy."""
    fig = plots.metric_bar_grid(summaries)
    assert len(fig.axes) == len(plots.GRID_METRICS) == 5
    for ax in fig.axes:
        assert len(_bars(ax)) == len(STRATEGIES)
    assert [ax.get_title() for ax in fig.axes][0] == "Change failure rate"


# --------------------------------------------------------------------------- distributions


@pytest.mark.parametrize(
    ("values", "expected_x", "expected_y"),
    [([3.0, 1.0, 2.0], [1, 2, 3], [1 / 3, 2 / 3, 1]), ([5.0, math.nan, 5.0], [5, 5], [0.5, 1.0]),
     ([math.nan], [], [])],
    ids=["sorted", "NaN dropped, ties kept", "nothing finite"],
)
def test_ecdf_is_the_share_at_or_below_each_value(values, expected_x, expected_y):
    """The ECDF sorts the finite values and rises by 1/n per value to exactly 1."""
    x, y = plots.compute_ecdf(values)
    assert x.tolist() == expected_x
    assert y.tolist() == pytest.approx(expected_y)


def test_restore_ecdf_draws_a_monotone_curve_per_strategy_with_restores(results):
    """Each strategy with restores gets a staircase from 0 to 1 in minutes, with n in its legend; the others get a note."""
    fig = plots.restore_ecdf(results)
    (ax,) = fig.axes
    lines = ax.get_lines()
    restored = results[np.isfinite(results["time_to_restore"])]
    counts = restored.groupby("strategy", sort=False).size()
    assert [line.get_label() for line in lines] == [f"{name} (n={n})" for name, n in counts.items()]
    for line, (name, _) in zip(lines, counts.items()):
        x, y = line.get_xdata(), line.get_ydata()
        assert y[0] == 0 and y[-1] == pytest.approx(1.0)
        assert np.all(np.diff(y) >= 0) and np.all(np.diff(x) >= 0)
        assert x.max() == pytest.approx(restored.loc[restored["strategy"] == name, "time_to_restore"].max() / 60)
    missing = set(STRATEGIES) - set(counts.index)
    assert bool(_gids(ax, "no-restores")) == bool(missing)
    assert "min" in ax.get_xlabel()


@pytest.mark.parametrize(
    "frame",
    [pd.DataFrame({"strategy": ["canary", "rolling"], "time_to_restore": [math.nan, math.nan]}),
     pd.DataFrame({"strategy": pd.Series([], dtype=str), "time_to_restore": pd.Series([], dtype=float)})],
    ids=["no restores", "no rows"],
)
def test_restore_ecdf_without_restores_draws_no_curve(frame):
    """A table with no restores (or no rows) draws no curve and still renders."""
    fig = plots.restore_ecdf(frame)
    assert fig.axes[0].get_lines() == []
    assert plots.figure_png(fig).startswith(PNG_SIGNATURE)


def test_failed_requests_distribution_shows_every_run_per_strategy(results):
    """One box and one dot per run for each strategy; the heavy rolling tail puts the axis on a log scale."""
    fig = plots.failed_requests_distribution(results)
    (ax,) = fig.axes
    dots = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert [len(d.get_offsets()) for d in dots] == [40, 40, 40]
    assert [t.get_text().split("\n")[0] for t in ax.get_yticklabels()] == list(STRATEGIES)
    assert ax.get_xscale() == "symlog"


@pytest.mark.parametrize(
    ("failed", "scale"),
    [([0, 0, 0, 0], "linear"), ([10, 12, 0, 9], "linear"), ([0, 1, 5000, 3], "symlog")],
    ids=["all zero", "narrow spread", "wide spread with zeros"],
)
def test_failed_requests_distribution_scales_with_the_spread(failed, scale):
    """The axis stays linear for narrow or all-zero counts and goes symmetric-log (keeping zero) for wide ones."""
    frame = pd.DataFrame({"strategy": ["canary", "canary", "rolling", "rolling"], "failed_requests": failed})
    fig = plots.failed_requests_distribution(frame)
    assert fig.axes[0].get_xscale() == scale
    assert plots.figure_png(fig).startswith(PNG_SIGNATURE)


# --------------------------------------------------------------------------- one rollout


def _point(at: float, *events: str, weight: float = 10.0) -> TimelinePoint:
    return TimelinePoint(at, weight, weight, 10, 1, 0.001, 0.02, tuple(events))


def test_timeline_events_parse_into_measurements_and_milestones():
    """Measurement verdicts and promote/abort/rollback/alert events are read from event strings; others are ignored."""
    timeline = [
        _point(0, "RolloutStarted: canary rollout of 10 replicas started"),
        _point(30, "Measurement: error-rate: Successful (0.001) canary errorRate 0.1%"),
        _point(60, "Measurement: latency: Inconclusive (no data)", "Measurement: error-rate: Pending (no data)"),
        _point(90, "Measurement: error-rate: Failed (0.05) canary errorRate 5%: successCondition",
               "AlertFired: high-error-rate", "Aborted: background analysis failed"),
        _point(100, "RolledBack: rolled back: stable serves all traffic", "Promoted: never mind"),
    ]
    marks = plots.parse_timeline_events(timeline)
    assert marks.measurements == (
        plots.Measurement(30.0, "error-rate", plots.Verdict.SUCCESSFUL),
        plots.Measurement(60.0, "latency", plots.Verdict.INCONCLUSIVE),
        plots.Measurement(90.0, "error-rate", plots.Verdict.FAILED),
    )
    assert [(m.at, m.kind) for m in marks.milestones] == [
        (90.0, plots.MilestoneKind.ALERT_FIRED), (90.0, plots.MilestoneKind.ABORTED),
        (100.0, plots.MilestoneKind.ROLLED_BACK), (100.0, plots.MilestoneKind.PROMOTED),
    ]
    assert marks.milestones[1].message == "background analysis failed"


def test_rollout_timeline_of_a_defective_canary_shows_failed_measurements_and_the_rollback(defective_timeline):
    """A defective canary's chart has weight, error-rate and verdict panels, failed-measurement markers and abort/rollback lines."""
    fig = plots.rollout_timeline(defective_timeline, "defective canary")
    weight_ax, error_ax, verdict_ax = fig.axes
    assert [line.get_label() for line in weight_ax.get_lines() if not line.get_gid()] == ["declared", "effective"]
    assert [line.get_label() for line in error_ax.get_lines() if not line.get_gid()] == ["stable", "canary"]
    assert "%" in weight_ax.get_ylabel() and "%" in error_ax.get_ylabel()
    marks = plots.parse_timeline_events(defective_timeline)
    failed = [m for m in marks.measurements if m.verdict is plots.Verdict.FAILED]
    assert failed, "a defective canary's analysis should fail at least one measurement"
    (markers,) = [line for line in verdict_ax.get_lines() if line.get_gid() == "verdict:Failed"]
    assert len(markers.get_xdata()) == len(failed)
    kinds = {m.kind.value for m in marks.milestones}
    assert {"Aborted", "RolledBack"} <= kinds
    for ax in fig.axes:
        assert sorted(_gids(ax, "milestone:")) == sorted(f"milestone:{m.kind.value}" for m in marks.milestones)
    assert fig.get_suptitle() == "defective canary"


@pytest.mark.parametrize(
    "timeline",
    [[], [_point(0.0)], [_point(0.0), _point(40.0, weight=50.0)], [_point(5.0, "Promoted: done")]],
    ids=["empty", "one point", "no events", "one point with a milestone"],
)
def test_rollout_timeline_survives_sparse_timelines(timeline):
    """Empty, one-point and event-free timelines render three panels without failing."""
    fig = plots.rollout_timeline(timeline, "sparse")
    assert len(fig.axes) == 3
    assert plots.figure_png(fig).startswith(PNG_SIGNATURE)


def test_rollout_timeline_uses_minutes_for_long_rollouts():
    """A rollout spanning an hour is plotted against minutes."""
    fig = plots.rollout_timeline([_point(0.0), _point(3600.0, "Promoted: done", weight=100.0)])
    assert fig.axes[2].get_xlabel().endswith("(min)")
    (line,) = [ln for ln in fig.axes[0].get_lines() if ln.get_gid() == "milestone:Promoted"]
    assert line.get_xdata()[0] == pytest.approx(60.0)


# --------------------------------------------------------------------------- trade-offs


@pytest.mark.parametrize(
    ("points", "expected"),
    [([(1, 1), (2, 2)], [True, False]), ([(1, 2), (2, 1)], [True, True]), ([(1, 1), (1, 1)], [True, True]),
     ([(1, 5, 9), (2, 6, 1), (3, 7, 9)], [True, True, False]), ([(math.nan, 1), (5, 1)], [False, True])],
    ids=["one dominates", "trade-off", "ties", "cheaper but slower stays optimal", "NaN counts as worst"],
)
def test_pareto_front_keeps_points_nothing_beats_everywhere(points, expected):
    """A point is optimal unless another is at least as good everywhere and strictly better somewhere."""
    assert plots.compute_pareto_front(points) == expected


def test_pareto_plots_one_point_per_strategy_and_rings_the_optimal_ones(results, summaries):
    """Each strategy is one labelled point sized by cost; the optimal ones match the Pareto front of the summaries."""
    fig = plots.pareto(results)
    (ax,) = fig.axes
    points = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert len(points) == len(STRATEGIES)
    expected = plots.compute_pareto_front(
        [(s.rollout_duration_median.value, s.failed_requests_mean.value, s.cost_mean.value) for s in summaries])
    assert [c.get_gid() for c in points] == [
        f"pareto:{s.strategy}:{'optimal' if best else 'dominated'}" for s, best in zip(summaries, expected)]
    sizes = [c.get_sizes()[0] for c in points]
    costs = [s.cost_mean.value for s in summaries]
    assert np.argsort(sizes).tolist() == np.argsort(costs).tolist()
    assert {t.get_text().rstrip(" ★") for t in ax.texts} >= set(STRATEGIES)
    assert ax.get_legend() is not None


def test_pareto_from_summaries_equals_pareto_from_the_table(results, summaries):
    """Passing summaries or the results table gives the same points."""
    from_table = [c.get_gid() for c in plots.pareto(results).axes[0].collections]
    from_summaries = [c.get_gid() for c in plots.pareto(summaries).axes[0].collections]
    assert from_table == from_summaries


def test_pareto_names_strategies_it_cannot_place(summaries):
    """A strategy without a duration or failed-requests figure is listed as n/a rather than drawn."""
    hollow = [replace(summaries[0], rollout_duration_median=Estimate.unavailable(0)), *summaries[1:]]
    fig = plots.pareto(hollow)
    ax = fig.axes[0]
    assert len(ax.collections) == len(STRATEGIES) - 1
    assert _gids(ax, "pareto-missing")
    assert plots.figure_png(plots.pareto([])).startswith(PNG_SIGNATURE)


# --------------------------------------------------------------------------- rendering


@pytest.mark.parametrize(
    "build",
    [lambda r, s, t: plots.metric_bars(s, "change_failure_rate", "Change failure rate", "%"),
     lambda r, s, t: plots.metric_bar_grid(s),
     lambda r, s, t: plots.restore_ecdf(r),
     lambda r, s, t: plots.failed_requests_distribution(r),
     lambda r, s, t: plots.rollout_timeline(t, "defective canary"),
     lambda r, s, t: plots.pareto(s)],
    ids=["metric bars", "bar grid", "restore ECDF", "failed requests", "timeline", "pareto"],
)
def test_every_chart_renders_to_a_non_blank_png(results, summaries, defective_timeline, build):
    """Each chart renders to PNG bytes that decode to an image of the figure's size with more than one colour."""
    fig = build(results, summaries, defective_timeline)
    width, height = fig.get_size_inches()
    png = plots.figure_png(fig, dpi=50)
    assert png.startswith(PNG_SIGNATURE)
    image = _decode(png)
    assert image.shape[:2] == (round(height * 50), round(width * 50))
    assert image.reshape(-1, image.shape[-1]).std(axis=0).max() > 0.05
    assert np.unique(image.reshape(-1, image.shape[-1]), axis=0).shape[0] > 10
