"""The printed comparison: per strategy, the figures a team decides on, each with a 95% CI.

Every figure is a point estimate with a confidence interval and the number of values it
rests on, computed from the results table (``sim.results``) plus three columns the
simulator adds to each row:

- ``change_failed`` (bool): the deployment hurt users (DORA's change failure).
- ``time_to_restore`` (seconds): from the start of user impact to service restored;
  NaN when there was no impact, or it was never restored in the window.
- ``rollout_duration`` (seconds): from the rollout's start until it finished (promoted or
  rolled back); NaN when stuck.

Methods are chosen to be honest with skewed, lumpy simulation output: proportions use the
Wilson score interval (good near 0%); quantiles use distribution-free order-statistic
intervals (no assumption about the shape of repair times); the mean of failed requests, a
zero-inflated heavy-tailed count, uses a BCa bootstrap with a fixed seed, so the printed
numbers are reproducible. ``FIGURE_METHODS`` names the method of every figure.

Runs from ``sim.montecarlo.run_many`` share their random numbers across strategies, so
``paired_difference`` compares two strategies run by run, which is far tighter than
comparing their separate intervals.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table
from scipy import stats

from rolloutlab.results.table import NO_DEFECT, RESULT_COLUMNS, Outcome

CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 4999
BOOTSTRAP_SEED = 20_240_917
"""Fixed, so a bootstrap interval is the same every time the same table is summarised."""

EXTRA_COLUMNS = ("change_failed", "time_to_restore", "rollout_duration")
"""Columns beyond the contract that ``summarize`` needs in every row."""

_PAIR_KEYS = ["source", "scenario", "seed", "run"]


@dataclass(frozen=True)
class Figure:
    """A point estimate with its confidence interval, over ``n`` values.

    ``value`` is None ("n/a") when there are too few values for the method to say
    anything; ``low``/``high`` are None when the estimate exists but its interval does not
    (e.g. a mean of one value).
    """

    value: float | None
    low: float | None
    high: float | None
    n: int

    @classmethod
    def unavailable(cls, n: int) -> Figure:
        return cls(None, None, None, n)

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            "value": _plain(self.value),
            "low": _plain(self.low),
            "high": _plain(self.high),
            "n": int(self.n),
        }


@dataclass(frozen=True)
class StrategySummary:
    """One strategy's figures over all its runs in a results table (one scenario, one source)."""

    strategy: str
    runs: int
    change_failure_rate: Figure
    false_rollback_rate: Figure
    mttr_median: Figure
    mttr_p90: Figure
    failed_requests_mean: Figure
    failed_requests_p99: Figure
    rollout_duration_median: Figure
    detection_time_median: Figure
    cost_mean: Figure

    def figures(self) -> dict[str, Figure]:
        """The figures by field name, in display order."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return {name: value for name, value in values.items() if isinstance(value, Figure)}


FIGURE_METHODS: dict[str, str] = {
    "change_failure_rate": "share of runs with change_failed; Wilson score interval",
    "false_rollback_rate": "share of healthy releases (defect none) rolled back; Wilson score interval",
    "mttr_median": "median time_to_restore over runs with restored impact; "
    "order-statistic (binomial) interval",
    "mttr_p90": "90th percentile of time_to_restore; order-statistic (binomial) interval",
    "failed_requests_mean": f"mean failed_requests per run; "
    f"BCa bootstrap ({BOOTSTRAP_RESAMPLES} resamples, fixed seed)",
    "failed_requests_p99": "99th percentile of failed_requests per run; order-statistic (binomial) interval",
    "rollout_duration_median": "median rollout_duration over finished rollouts; "
    "order-statistic (binomial) interval",
    "detection_time_median": "median detected_at - started_at over detected defective releases; "
    "order-statistic (binomial) interval",
    "cost_mean": "mean replica_seconds per run; Student t interval",
}

_HEADERS = {
    "change_failure_rate": "change-failure rate",
    "false_rollback_rate": "false rollbacks",
    "mttr_median": "MTTR median",
    "mttr_p90": "MTTR p90",
    "failed_requests_mean": "failed requests mean",
    "failed_requests_p99": "failed requests p99",
    "rollout_duration_median": "rollout median",
    "detection_time_median": "detection median",
    "cost_mean": "cost mean (replica·s)",
}


@dataclass(frozen=True)
class PairedDifference:
    """Mean over paired runs of ``metric`` under strategy ``a`` minus under strategy ``b``."""

    metric: str
    a: str
    b: str
    difference: Figure

    def describe(self) -> str:
        """One sentence: "canary - rolling in failed_requests: -120 [-150, -95] per run (paired ...)"."""
        d = self.difference
        return (
            f"{self.a} - {self.b} in {self.metric}: {format_figure(d, 'quantity')} per run "
            f"(paired mean over common random numbers, {int(CONFIDENCE * 100)}% CI, n={d.n})"
        )


# --------------------------------------------------------------------------- statistics


def compute_wilson_interval(successes: int, n: int, confidence: float = CONFIDENCE) -> Figure:
    """Proportion ``successes / n`` with the Wilson score interval (Wilson 1927).

    The interval inverts the score test, ``p_hat +- z sqrt(p(1-p)/n)`` solved for p:
    centre ``(p_hat + z^2/2n) / (1 + z^2/n)``, half-width
    ``z / (1 + z^2/n) * sqrt(p_hat(1-p_hat)/n + z^2/4n^2)``. Unlike the Wald interval it
    stays inside 0..1 and keeps its coverage for rates near 0, as change failures are.
    """
    if n <= 0:
        return Figure.unavailable(0)
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be within 0..{n}, got {successes}")
    z = stats.norm.ppf(0.5 + confidence / 2)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return Figure(p, max(0.0, centre - half), min(1.0, centre + half), n)


@lru_cache(maxsize=4096)
def compute_order_statistic_ranks(n: int, q: float, confidence: float = CONFIDENCE) -> tuple[int, int] | None:
    """0-based ranks (lo, hi) of the sorted sample bracketing quantile ``q`` with ``confidence``.

    Binomial method (distribution-free, e.g. Conover, *Practical Nonparametric
    Statistics*): the number B of sample values below the true quantile Q is
    Binomial(n, q), and ``x[lo] <= Q <= x[hi]`` exactly when ``lo + 1 <= B <= hi``, so the
    coverage is ``F(hi) - F(lo)`` with F the Binomial(n, q) CDF. ``lo`` is the largest rank
    with ``F(lo) <= alpha/2`` and ``hi`` the smallest with ``F(hi) >= 1 - alpha/2``: an
    equal-tailed interval with at least the nominal coverage for continuous data. None when
    the sample is too small for an end to exist (fewer than 6 values for a median, 36 for
    a p90, 368 for a p99).
    """
    alpha = 1 - confidence
    cdf = stats.binom.cdf(np.arange(n + 1), n, q)
    below = np.flatnonzero(cdf <= alpha / 2)
    above = np.flatnonzero(cdf >= 1 - alpha / 2)
    if below.size == 0 or above.size == 0:
        return None
    lo, hi = int(below[-1]), int(above[0])
    return (lo, hi) if hi <= n - 1 else None


def compute_quantile_interval(values: Any, q: float, confidence: float = CONFIDENCE) -> Figure:
    """Quantile ``q`` of the non-NaN ``values`` with a distribution-free order-statistic interval.

    The estimate is numpy's linear-interpolation quantile; the interval comes from
    ``compute_order_statistic_ranks``. When the sample is too small for the interval to
    exist, the whole figure is "n/a": a p90 of five values is not a p90.
    """
    x = _finite(values)
    ranks = compute_order_statistic_ranks(x.size, q, confidence) if x.size else None
    if ranks is None:
        return Figure.unavailable(x.size)
    x.sort()
    lo, hi = ranks
    return Figure(float(np.quantile(x, q)), float(x[lo]), float(x[hi]), x.size)


def compute_mean_t_interval(values: Any, confidence: float = CONFIDENCE) -> Figure:
    """Mean of the non-NaN ``values`` with a Student t interval, ``mean +- t(n-1) s / sqrt(n)``.

    Right for quantities that are roughly symmetric per run (cost in replica-seconds).
    """
    x = _finite(values)
    if x.size == 0:
        return Figure.unavailable(0)
    mean = float(x.mean())
    if x.size < 2:
        return Figure(mean, None, None, 1)
    sd = float(x.std(ddof=1))
    half = stats.t.ppf(0.5 + confidence / 2, x.size - 1) * sd / math.sqrt(x.size)
    return Figure(mean, mean - half, mean + half, x.size)


def compute_mean_bootstrap_interval(values: Any, confidence: float = CONFIDENCE) -> Figure:
    """Mean of the non-NaN ``values`` with a BCa bootstrap interval (Efron 1987).

    ``scipy.stats.bootstrap`` with ``BOOTSTRAP_RESAMPLES`` resamples and the fixed
    ``BOOTSTRAP_SEED``: bias-corrected and accelerated, so it follows the skew of
    zero-inflated, heavy-tailed counts such as failed requests, where a t interval would
    be symmetric and too short on the heavy side. All-equal values give ``[v, v]``; if BCa
    is undefined (its jackknife degenerates) the percentile interval is used.
    """
    x = _finite(values)
    if x.size == 0:
        return Figure.unavailable(0)
    mean = float(x.mean())
    if x.size < 2:
        return Figure(mean, None, None, 1)
    if np.ptp(x) == 0:
        return Figure(mean, mean, mean, x.size)
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # degenerate-data warnings: handled by the fallback
            result = stats.bootstrap(
                (x,),
                np.mean,
                n_resamples=BOOTSTRAP_RESAMPLES,
                batch=max(1, 2_000_000 // x.size),
                confidence_level=confidence,
                method=method,
                rng=np.random.default_rng(BOOTSTRAP_SEED),
                vectorized=True,
            )
        low, high = result.confidence_interval
        if np.isfinite(low) and np.isfinite(high):
            return Figure(mean, float(low), float(high), x.size)
    return Figure(mean, None, None, x.size)


# --------------------------------------------------------------------------- summaries


def summarize(df: pd.DataFrame) -> list[StrategySummary]:
    """Figures for each strategy in a results table, in the order strategies first appear.

    The table must hold one scenario from one source (compare like with like; filter
    first) and carry ``EXTRA_COLUMNS``. See ``FIGURE_METHODS`` for what each figure is.
    """
    _require_columns(df, [*RESULT_COLUMNS, *EXTRA_COLUMNS])
    for column in ("scenario", "source"):
        seen = list(pd.unique(df[column]))
        if len(seen) > 1:
            raise ValueError(
                f"summarize compares strategies within one {column}; the table has {seen}: filter it first"
            )
    return [_summarize_strategy(name, group) for name, group in df.groupby("strategy", sort=False)]


def _summarize_strategy(name: str, g: pd.DataFrame) -> StrategySummary:
    changed = _booleans(g["change_failed"], "change_failed")
    healthy = g["defect"] == NO_DEFECT
    false_rollbacks = int((g.loc[healthy, "outcome"] == Outcome.FALSE_ROLLBACK.value).sum())
    defective = g.loc[~healthy]
    detection = (defective["detected_at"] - defective["started_at"]).to_numpy(dtype=float)
    return StrategySummary(
        strategy=str(name),
        runs=len(g),
        change_failure_rate=compute_wilson_interval(int(changed.sum()), len(g)),
        false_rollback_rate=compute_wilson_interval(false_rollbacks, int(healthy.sum())),
        mttr_median=compute_quantile_interval(_floats(g, "time_to_restore"), 0.5),
        mttr_p90=compute_quantile_interval(_floats(g, "time_to_restore"), 0.9),
        failed_requests_mean=compute_mean_bootstrap_interval(_floats(g, "failed_requests")),
        failed_requests_p99=compute_quantile_interval(_floats(g, "failed_requests"), 0.99),
        rollout_duration_median=compute_quantile_interval(_floats(g, "rollout_duration"), 0.5),
        detection_time_median=compute_quantile_interval(detection, 0.5),
        cost_mean=compute_mean_t_interval(_floats(g, "replica_seconds")),
    )


def paired_difference(df: pd.DataFrame, metric: str, a: str, b: str) -> PairedDifference:
    """Mean of ``metric`` under strategy ``a`` minus under ``b``, paired run by run, with a CI.

    Runs are paired on (source, scenario, seed, run): with common random numbers both
    strategies faced the same release, defect and timings, so the per-run difference
    removes that shared luck. Pairs where either value is NaN are dropped (for
    ``time_to_restore`` this compares runs where both had impact). The interval is the BCa
    bootstrap of the mean difference (``compute_mean_bootstrap_interval``). A boolean
    metric (``change_failed``) gives a difference of rates.
    """
    _require_columns(df, [*_PAIR_KEYS, "strategy", metric])
    present = list(pd.unique(df["strategy"]))
    for name in (a, b):
        if name not in present:
            raise ValueError(f"strategy {name!r} is not in the table; it has {present}")
    if a == b:
        raise ValueError("paired_difference needs two different strategies")
    values = df[metric]
    if values.dtype.kind not in "biuf":
        raise ValueError(f"column {metric!r} is not numeric or boolean (dtype {values.dtype})")
    sides = []
    for name in (a, b):
        mine = df["strategy"] == name
        side = df.loc[mine, _PAIR_KEYS].assign(value=values[mine].astype(float))
        if side.duplicated(_PAIR_KEYS).any():
            raise ValueError(
                f"strategy {name!r} has more than one row for the same (source, scenario, seed, run)"
            )
        sides.append(side)
    paired = sides[0].merge(sides[1], on=_PAIR_KEYS, suffixes=("_a", "_b"))
    if paired.empty:
        raise ValueError(
            f"no runs of {a!r} and {b!r} share (source, scenario, seed, run): were they run in one batch?"
        )
    diff = (paired["value_a"] - paired["value_b"]).to_numpy()
    return PairedDifference(metric, a, b, compute_mean_bootstrap_interval(diff))


# --------------------------------------------------------------------------- presentation


def format_duration(seconds: float | None) -> str:
    """Seconds as a person reads them: "4.2s", "45s", "2m05s", "1h02m05s", from two days on
    "3d04h" (lead times, recovery over days); None is "n/a"."""
    if seconds is None or not math.isfinite(seconds):
        return "n/a"
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    if seconds < 10:
        return f"{sign}{seconds:.1f}s"
    total = round(seconds)
    if total >= 2 * 86400:
        days, rest = divmod(total, 86400)
        return f"{sign}{days}d{round(rest / 3600):02d}h" if round(rest / 3600) < 24 else f"{sign}{days + 1}d00h"
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{sign}{hours}h{minutes:02d}m{secs:02d}s"
    if minutes:
        return f"{sign}{minutes}m{secs:02d}s"
    return f"{sign}{secs}s"


def format_quantity(x: float | None) -> str:
    """A count or amount to three significant figures: "0.42", "12.3", "987", "12.3k", "4.56M"."""
    if x is None or not math.isfinite(x):
        return "n/a"
    rounded = float(f"{x:.3g}")  # round first, so 999.6 becomes "1k" rather than "1e+03"
    for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(rounded) >= scale:
            return f"{rounded / scale:.3g}{suffix}"
    return f"{rounded:.3g}" if abs(rounded) >= 1e-3 or rounded == 0 else f"{x:.1e}"


def format_percent(x: float | None) -> str:
    """A proportion as a percentage with one decimal, without the sign: 0.041 -> "4.1"."""
    return "n/a" if x is None or not math.isfinite(x) else f"{100 * x:.1f}"


def format_figure(figure: Figure, kind: str) -> str:
    """A table cell: "4.1% [2.9, 5.6]", "2m05s [1m50s, 2m20s]", "n/a", or "7 [n/a]" without an interval."""
    if figure.value is None:
        return "n/a"
    if kind == "percent":
        head, fmt = f"{format_percent(figure.value)}%", format_percent
    elif kind == "duration":
        head, fmt = format_duration(figure.value), format_duration
    else:
        head, fmt = format_quantity(figure.value), format_quantity
    if figure.low is None or figure.high is None:
        return f"{head} [n/a]"
    return f"{head} [{fmt(figure.low)}, {fmt(figure.high)}]"


FIGURE_KINDS: dict[str, str] = {
    "change_failure_rate": "percent",
    "false_rollback_rate": "percent",
    "mttr_median": "duration",
    "mttr_p90": "duration",
    "failed_requests_mean": "quantity",
    "failed_requests_p99": "quantity",
    "rollout_duration_median": "duration",
    "detection_time_median": "duration",
    "cost_mean": "quantity",
}
"""How each figure is formatted: a percentage, a duration or a plain quantity."""


def render_comparison(summaries: list[StrategySummary], console: Console, title: str | None = None) -> None:
    """Print one table row per strategy, each cell "value [low, high]" at 95% confidence."""
    table = Table(
        title=title or f"Strategy comparison ({int(CONFIDENCE * 100)}% confidence intervals)",
        caption="n/a: too few values for the method. Methods: sim.comparison.FIGURE_METHODS",
        header_style="bold",
    )
    # "fold" rather than an ellipsis: on a narrow terminal a cell wraps, never loses digits.
    table.add_column("strategy", style="bold", overflow="fold")
    table.add_column("runs", justify="right", overflow="fold")
    for key in FIGURE_KINDS:
        table.add_column(_HEADERS[key], justify="right", overflow="fold")
    for summary in summaries:
        figures = summary.figures()
        table.add_row(
            summary.strategy,
            str(summary.runs),
            *(format_figure(figures[key], kind) for key, kind in FIGURE_KINDS.items()),
        )
    console.print(table)


def comparison_json(summaries: list[StrategySummary]) -> dict[str, Any]:
    """The same figures as ``render_comparison``, as plain JSON data (floats, ints, None)."""
    return {
        "confidence": CONFIDENCE,
        "methods": dict(FIGURE_METHODS),
        "strategies": [
            {
                "strategy": s.strategy,
                "runs": s.runs,
                **{key: figure.as_dict() for key, figure in s.figures().items()},
            }
            for s in summaries
        ],
    }


# --------------------------------------------------------------------------- internals


def _plain(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _finite(values: Any) -> np.ndarray:
    x = np.asarray(values, dtype=float).ravel()
    return x[~np.isnan(x)].copy()


def _floats(g: pd.DataFrame, column: str) -> np.ndarray:
    series = g[column]
    if series.dtype.kind not in "iuf":
        raise ValueError(f"column {column!r} must be numeric, got dtype {series.dtype}")
    return series.to_numpy(dtype=float)


def _booleans(series: pd.Series, column: str) -> np.ndarray:
    if series.dtype.kind == "b":
        return series.to_numpy()
    if series.dtype.kind in "iuf" and series.isin([0, 1]).all():
        return series.to_numpy() == 1
    raise ValueError(
        f"column {column!r} must be boolean (True/False for every run), got dtype {series.dtype}"
    )


def _require_columns(df: pd.DataFrame, columns: list[str]) -> None:
    missing = [c for c in dict.fromkeys(columns) if c not in df.columns]
    if missing:
        raise ValueError(f"the results table lacks column(s) the comparison needs: {', '.join(missing)}")
