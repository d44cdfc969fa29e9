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

from rolloutlab.reports import distributions, plots, timeline_plot
from rolloutlab.results.statistics import Figure as Estimate
from rolloutlab.results.statistics import summarize
from rolloutlab.results.timeline import TimelineEvent, TimelinePoint
from rolloutlab.scenarios import bundled_scenario, load_scenario
from rolloutlab.scenarios.release import run_seed_sequence
from rolloutlab.sim.montecarlo import run_many
from rolloutlab.sim.run import simulate
from rolloutlab.strategies import load_strategy
from tests.report_tables import typed_event as _event

STRATEGIES = ("blue-green", "canary", "rolling")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def scenario():
    return load_scenario(bundled_scenario("standard"))


def with_release_columns(df: pd.DataFrame, baseline_rate: float = 0.001) -> pd.DataFrame:
    """The table with ``baseline_failed_requests`` and ``release_failed_requests`` as the
    simulator writes them (requests x the old version's error rate, and the excess), added
    when the simulator in this tree does not write them yet."""
    if "release_failed_requests" in df:
        return df
    baseline = df["requests"] * baseline_rate
    return df.assign(baseline_failed_requests=baseline, release_failed_requests=df["failed_requests"] - baseline)


@pytest.fixture(scope="module")
def results(scenario) -> pd.DataFrame:
    specs = [load_strategy(name) for name in STRATEGIES]
    return with_release_columns(run_many(scenario, specs, runs=40, seed=1, executor="serial", progress=False))


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
        "import sys; from rolloutlab.reports import document, plots, timeline_plot; "
        "from rolloutlab.results.timeline import TimelinePoint; "
        "plots.figure_png(timeline_plot.rollout_timeline([TimelinePoint(0, 10, 10, 1, 1, 0, 0)])); "
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
    """The grid holds a bar chart for each of the six headline metrics, each with one bar per strategy
    (users affected only where the table counts users: these summaries come from simulated rows, which do)."""
    fig = plots.metric_bar_grid(summaries)
    assert len(fig.axes) == len(plots.GRID_METRICS) == 6
    for ax in fig.axes:
        assert len(_bars(ax)) == len(STRATEGIES)
    assert fig.axes[0].get_title() == "Change failure rate"


# --------------------------------------------------------------------------- distributions


@pytest.mark.parametrize(
    ("values", "expected_x", "expected_y"),
    [([3.0, 1.0, 2.0], [1, 2, 3], [1 / 3, 2 / 3, 1]), ([5.0, math.nan, 5.0], [5, 5], [0.5, 1.0]),
     ([math.nan], [], [])],
    ids=["sorted", "NaN dropped, ties kept", "nothing finite"],
)
def test_ecdf_is_the_share_at_or_below_each_value(values, expected_x, expected_y):
    """The ECDF sorts the finite values and rises by 1/n per value to exactly 1."""
    x, y = distributions.compute_ecdf(values)
    assert x.tolist() == expected_x
    assert y.tolist() == pytest.approx(expected_y)


def test_restore_ecdf_draws_a_monotone_curve_per_strategy_with_failures(results):
    """Each strategy with failed deployments gets a staircase in minutes rising from 0 to the share it
    restored, with its failures and censored count in the legend; strategies without failures are named once."""
    fig = distributions.restore_ecdf(results)
    (ax,) = fig.axes
    lines = [line for line in ax.get_lines() if (line.get_gid() or "").startswith("restore:")]
    failed = results[results["change_failed"]]
    counts = failed.groupby("strategy", sort=False).size()
    assert [line.get_gid() for line in lines] == [f"restore:{name}" for name in counts.index]
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    for line, (name, n) in zip(lines, counts.items()):
        rows = failed[failed["strategy"] == name]
        restored = int(np.isfinite(rows["time_to_restore"]).sum())
        x, y = line.get_xdata(), line.get_ydata()
        assert y[0] == 0 and y[-1] == pytest.approx(restored / n)
        assert np.all(np.diff(y) >= 0) and np.all(np.diff(x) >= 0)
        assert any(label.startswith(f"{name} ({n} failures") for label in labels)
    missing = set(STRATEGIES) - set(counts.index)
    title = fig.legends[0].get_title().get_text()
    assert all(name in title for name in missing) and ("no failed deployments" in title) == bool(missing)
    assert "min" in ax.get_xlabel()


def test_restore_curve_counts_never_restored_incidents_as_censored():
    """An incident not restored by its window's end holds the curve down: half restored ends at 0.5, not 1."""
    curve = distributions.compute_restore_curve([60.0, 120.0, math.nan, math.nan], followed=1800.0)
    assert (curve.failures, curve.censored, curve.followed_until) == (4, 2, 1800.0)
    assert curve.shares[-1] == pytest.approx(0.5)
    assert curve.times[curve.shares > 0][0] == 60.0


def test_restore_ecdf_of_a_strategy_that_never_restores_stays_below_the_median_line():
    """A strategy restoring one incident in four is drawn ending at 0.25, under the dashed median line."""
    frame = pd.DataFrame({"strategy": ["rolling"] * 4, "change_failed": [True] * 4,
                          "time_to_restore": [300.0, math.nan, math.nan, math.nan],
                          "impact_started_at": [60.0] * 4, "ended_at": [1800.0] * 4})
    fig = distributions.restore_ecdf(frame)
    (line,) = [ln for ln in fig.axes[0].get_lines() if ln.get_gid() == "restore:rolling"]
    assert line.get_ydata()[-1] == pytest.approx(0.25)
    assert line.get_xdata()[-1] == pytest.approx((1800.0 - 60.0) / 60)
    assert "3 not restored" in fig.legends[0].get_texts()[0].get_text()


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [(1.1, 70.0, [2, 5, 10, 20, 50]), (0.5, 3.0, [0.5, 1, 2]), (0.01, 1000.0, [0.01, 0.1, 1, 10, 100, 1000])],
    ids=["a minute to an hour", "under a decade", "five decades: powers of ten only"],
)
def test_log_axis_ticks_are_1_2_5_unless_the_axis_is_wide(low, high, expected):
    """A log axis gets ticks at 1, 2 and 5 per decade over up to three decades, else at powers of ten."""
    assert distributions.compute_log_ticks(low, high) == pytest.approx(expected)


@pytest.mark.parametrize(("x", "expected"), [(1.27, 1.0), (3.0, 2.0), (0.07, 0.05), (50.0, 50.0)],
                         ids=["1.27", "3", "0.07", "exactly 50"])
def test_log_axis_starts_at_a_labelled_tick(x, expected):
    """A log axis starts at the largest 1, 2 or 5 times a power of ten at or below its smallest value."""
    assert distributions.compute_log_floor(x) == pytest.approx(expected)


@pytest.mark.parametrize(
    "frame",
    [pd.DataFrame({"strategy": ["canary", "rolling"], "time_to_restore": [math.nan, math.nan]}),
     pd.DataFrame({"strategy": pd.Series([], dtype=str), "time_to_restore": pd.Series([], dtype=float)})],
    ids=["no restores", "no rows"],
)
def test_restore_ecdf_without_restores_draws_no_curve(frame):
    """A table with no restores (or no rows) draws no curve and still renders."""
    fig = distributions.restore_ecdf(frame)
    assert [ln for ln in fig.axes[0].get_lines() if (ln.get_gid() or "").startswith("restore:")] == []
    assert plots.figure_png(fig).startswith(PNG_SIGNATURE)


def test_failed_requests_distribution_shows_every_run_per_strategy(results):
    """One box and one dot per run for each strategy in both panels; the heavy rolling tail puts the axes on a log scale."""
    fig = distributions.failed_requests_distribution(results)
    for ax in fig.axes:
        dots = [c for c in ax.collections if isinstance(c, PathCollection)]
        assert [len(d.get_offsets()) for d in dots] == [40, 40, 40]
        assert ax.get_xscale() == "symlog"
    assert [t.get_text().split("\n")[0] for t in fig.axes[0].get_yticklabels()] == list(STRATEGIES)


@pytest.mark.parametrize(
    ("failed", "scale"),
    [([0, 0, 0, 0], "linear"), ([10, 12, 0, 9], "linear"), ([0, 1, 5000, 3], "symlog")],
    ids=["all zero", "narrow spread", "wide spread with zeros"],
)
def test_failed_requests_distribution_scales_with_the_spread(failed, scale):
    """The axis stays linear for narrow or all-zero counts and goes symmetric-log (keeping zero) for wide ones."""
    frame = pd.DataFrame({"strategy": ["canary", "canary", "rolling", "rolling"], "failed_requests": failed})
    fig = distributions.failed_requests_distribution(frame)
    assert fig.axes[0].get_xscale() == scale
    assert fig.axes[0].get_xlim()[0] == 0
    assert plots.figure_png(fig).startswith(PNG_SIGNATURE)


# --------------------------------------------------------------------------- one rollout


def _point(at: float, *events: str, weight: float = 10.0) -> TimelinePoint:
    return TimelinePoint(at, weight, weight, 10, 1, 0.001, 0.02, tuple(_event(e) for e in events))


def test_timeline_events_parse_into_measurements_and_milestones():
    """Measurement verdicts and promote/abort/rollback/alert events are read from typed events; others are ignored."""
    timeline = [
        _point(0, "RolloutStarted: canary rollout of 10 replicas started"),
        _point(30, "Measurement: error-rate: Successful (0.001) canary errorRate 0.1%"),
        _point(60, "Measurement: latency: Inconclusive (no data)", "Measurement: error-rate: Pending (no data)"),
        _point(90, "Measurement: error-rate: Failed (0.05) canary errorRate 5%: successCondition",
               "AlertFired: high-error-rate", "Aborted: background analysis failed"),
        _point(100, "RolledBack: rolled back: stable serves all traffic", "Promoted: never mind"),
    ]
    marks = timeline_plot.parse_timeline_events(timeline)
    assert marks.measurements == (
        timeline_plot.MeasurementMark(30.0, "error-rate", timeline_plot.AnalysisMark.SUCCESSFUL),
        timeline_plot.MeasurementMark(60.0, "latency", timeline_plot.AnalysisMark.INCONCLUSIVE),
        timeline_plot.MeasurementMark(90.0, "error-rate", timeline_plot.AnalysisMark.FAILED),
    )
    assert [(m.at, m.kind) for m in marks.milestones] == [
        (90.0, timeline_plot.MilestoneKind.ALERT_FIRED), (90.0, timeline_plot.MilestoneKind.ABORTED),
        (100.0, timeline_plot.MilestoneKind.ROLLED_BACK), (100.0, timeline_plot.MilestoneKind.PROMOTED),
    ]
    assert marks.milestones[1].message == "background analysis failed"


def test_rollout_timeline_of_a_defective_canary_shows_failed_measurements_and_the_rollback(defective_timeline):
    """A defective canary's chart has weight, error-rate and analysis panels, failed-measurement markers and abort/rollback lines."""
    fig = timeline_plot.rollout_timeline(defective_timeline, "defective canary")
    weight_ax, error_ax, mark_ax = fig.axes
    assert [line.get_label() for line in weight_ax.get_lines() if not line.get_gid()] == ["declared", "effective"]
    assert [line.get_label() for line in error_ax.get_lines() if not line.get_gid()] == ["stable (old)", "new version"]
    assert "%" in weight_ax.get_ylabel() and "%" in error_ax.get_ylabel()
    marks = timeline_plot.parse_timeline_events(defective_timeline)
    failed = [m for m in marks.measurements if m.mark is timeline_plot.AnalysisMark.FAILED]
    assert failed, "a defective canary's analysis should fail at least one measurement"
    (markers,) = [line for line in mark_ax.get_lines() if line.get_gid() == "mark:Failed"]
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
    fig = timeline_plot.rollout_timeline(timeline, "sparse")
    assert len(fig.axes) == 3
    assert plots.figure_png(fig).startswith(PNG_SIGNATURE)


def test_rollout_timeline_uses_minutes_for_long_rollouts():
    """A rollout spanning an hour is plotted against minutes."""
    fig = timeline_plot.rollout_timeline([_point(0.0), _point(3600.0, "Promoted: done", weight=100.0)])
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
    """Each strategy is one labelled point sized by cost, placed by the failures its release caused; the optimal
    ones match the Pareto front of the summaries."""
    fig = plots.pareto(results)
    (ax,) = fig.axes
    points = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert len(points) == len(STRATEGIES)
    expected = plots.compute_pareto_front(
        [(s.rollout_duration_median.value, s.release_failed_requests_mean.value, s.cost_mean.value)
         for s in summaries])
    assert [c.get_gid() for c in points] == [
        f"pareto:{s.strategy}:{'optimal' if best else 'dominated'}" for s, best in zip(summaries, expected)]
    sizes = [c.get_sizes()[0] for c in points]
    costs = [s.cost_mean.value for s in summaries]
    assert np.argsort(sizes).tolist() == np.argsort(costs).tolist()
    assert {t.get_text().split("\n")[0].rstrip(" ★") for t in ax.texts} >= set(STRATEGIES)
    assert [max(s.release_failed_requests_mean.value, 0.0) for s in summaries] == pytest.approx(
        [c.get_offsets()[0][1] for c in points])
    assert "release" in ax.get_ylabel() and fig.legends


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
     lambda r, s, t: distributions.restore_ecdf(r),
     lambda r, s, t: distributions.failed_requests_distribution(r),
     lambda r, s, t: timeline_plot.rollout_timeline(t, "defective canary"),
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


def test_pareto_names_a_strategy_whose_duration_lies_beyond_the_window(summaries):
    """A median rollout duration beyond the window (stuck rollouts) has no place on the axis: named n/a, not drawn."""
    stuck = [replace(summaries[0], rollout_duration_median=Estimate(math.inf, 60.0, math.inf, 40, 30, 1800.0)),
             *summaries[1:]]
    fig = plots.pareto(stuck)
    ax = fig.axes[0]
    assert len(ax.collections) == len(STRATEGIES) - 1
    assert _gids(ax, "pareto-missing")
    assert plots.figure_png(fig).startswith(PNG_SIGNATURE)


def test_timeline_marks_come_from_typed_fields_never_from_the_message():
    """A measurement is marked by its metric and phase fields, whatever its message says."""
    point = TimelinePoint(5.0, 10, 10, 10, 1, 0.0, 0.0, (
        TimelineEvent("Measurement", "Successful error-rate: says the opposite", "error-rate", "Failed"),
        TimelineEvent("Aborted", "RolledBack: not a rollback"),
    ))
    marks = timeline_plot.parse_timeline_events([point])
    assert marks.measurements == (timeline_plot.MeasurementMark(5.0, "error-rate", timeline_plot.AnalysisMark.FAILED),)
    assert [m.kind for m in marks.milestones] == [timeline_plot.MilestoneKind.ABORTED]


@pytest.mark.parametrize("data, expected", [
    ({"reason": "Measurement", "message": "m", "metric": "error-rate", "phase": "Failed"},
     TimelineEvent("Measurement", "m", "error-rate", "Failed")),
    ({"reason": "AlertFired", "message": "high"}, TimelineEvent("AlertFired", "high")),
    ("Aborted: step 1 analysis failed", TimelineEvent("Aborted", "step 1 analysis failed")),
], ids=["typed measurement", "typed alert", "string from a file written before typed events"])
def test_timeline_events_round_trip_through_timelines_json(data, expected):
    """timelines.json holds events as objects; an older file's "Reason: message" strings still read."""
    from dataclasses import asdict

    event = TimelineEvent.from_json(data)
    assert event == expected
    assert TimelineEvent.from_json(asdict(event)) == event
