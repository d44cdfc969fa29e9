"""The statistics every table and report computes from a results table: intervals, order
statistics, censoring-aware quantiles, and per-strategy summaries.

Every figure is a point estimate with a confidence interval and the number of values it
rests on (:class:`Figure`), computed from the results table (``results.table``) and the
columns the simulator and the live runner add to each row (``SUMMARY_COLUMNS``):

- ``change_failed`` (bool): the deployment hurt users (DORA's change failure).
- ``time_to_restore`` (seconds): from the start of user impact to service restored;
  NaN when there was no impact, or it was not restored before the row's window ended.
- ``rollout_duration`` (seconds): from the rollout's start until it finished (promoted or
  rolled back); NaN when it had not finished when the window ended (stuck).
- ``impact_started_at`` and ``ended_at``: when users started to be hurt, and when the
  row's observation ended; a time that had not ended by ``ended_at`` is right-censored there.

Methods are chosen to be honest with skewed, lumpy simulation output: proportions use the
Wilson score interval (good near 0%); quantiles of amounts use distribution-free
order-statistic intervals; quantiles of times that may not have ended in the window
(time to restore, detection, rollout duration) use the Kaplan-Meier estimate with the
times that did not end right-censored at the window's end (``compute_censored_quantile``),
so a strategy that never restores half its incidents gets a median "> window", not a
good one; the mean of failed requests, a zero-inflated heavy-tailed count, uses a BCa
bootstrap with a fixed seed, so the numbers are reproducible. ``FIGURE_METHODS`` names
the method of every figure.

Runs from ``sim.montecarlo.run_many`` share their random numbers across strategies, so
``paired_difference`` compares two strategies run by run, which is far tighter than
comparing their separate intervals.

How figures are written (durations, quantities, percentages) is ``results.formatting``;
how the comparison is printed is ``workflows.compare``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from rolloutlab.results.formatting import format_figure
from rolloutlab.results.table import NO_DEFECT, RESULT_COLUMNS, Outcome

CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 4999
BOOTSTRAP_SEED = 20_240_917
"""Fixed, so a bootstrap interval is the same every time the same table is summarised."""

SUMMARY_COLUMNS = ("change_failed", "time_to_restore", "rollout_duration", "impact_started_at", "ended_at")
"""Columns beyond the contract that ``summarize`` needs in every row."""

EXTRA_COLUMNS = SUMMARY_COLUMNS
"""Former name of ``SUMMARY_COLUMNS`` (``results.table.EXTRA_COLUMNS`` declares every extra column)."""

CENSORED_CI_METHOD = "log-log"
"""How ``scipy.stats.ecdf`` builds the pointwise interval of the Kaplan-Meier CDF that a
censored quantile's interval is read from: the log-log transform keeps it inside 0..1
and covers better than the plain Greenwood interval in small samples."""

_PAIR_KEYS = ["source", "scenario", "seed", "run"]


@dataclass(frozen=True)
class Figure:
    """A point estimate with its confidence interval, over ``n`` values.

    ``value`` is None ("n/a") when there are too few values for the method to say
    anything; ``low``/``high`` are None when the estimate exists but its interval does not
    (e.g. a mean of one value).

    For times that may not have ended in the window (``compute_censored_quantile``),
    ``censored`` says how many of the ``n`` did not end, and an estimate or interval end
    that lies beyond the longest time observed is ``math.inf`` with ``beyond`` that
    longest time: the quantile is known only to exceed it (">28m20s").
    """

    value: float | None
    low: float | None
    high: float | None
    n: int
    censored: int = 0
    beyond: float | None = None

    @classmethod
    def unavailable(cls, n: int, censored: int = 0) -> Figure:
        return cls(None, None, None, n, censored)

    @property
    def exceeds_window(self) -> bool:
        """The estimate lies beyond the longest time observed (shown ">28m20s", the window)."""
        return self.value is not None and math.isinf(self.value)

    def as_dict(self) -> dict[str, float | int | None]:
        """Plain JSON data. An infinite value or end is null, with ``beyond`` the time it is
        known to exceed."""
        return {
            "value": _plain(self.value),
            "low": _plain(self.low),
            "high": _plain(self.high),
            "n": int(self.n),
            "censored": int(self.censored),
            "beyond": _plain(self.beyond),
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
    release_failed_requests_mean: Figure
    users_affected_mean: Figure
    blast_radius_mean: Figure
    failed_requests_p99: Figure
    rollout_duration_median: Figure
    detection_time_median: Figure
    cost_mean: Figure

    def figures(self) -> dict[str, Figure]:
        """The figures by field name, in display order."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return {name: value for name, value in values.items() if isinstance(value, Figure)}


_CENSORED = "Kaplan-Meier, times not ended in the window right-censored at its end; interval by inverting " \
            "the log-log pointwise interval of the CDF (Brookmeyer-Crowley)"

FIGURE_METHODS: dict[str, str] = {
    "change_failure_rate": "share of runs with change_failed; Wilson score interval",
    "false_rollback_rate": "share of healthy releases (defect none) rolled back; Wilson score interval",
    "mttr_median": f"median time_to_restore over runs that hurt users; {_CENSORED}",
    "mttr_p90": f"90th percentile of time_to_restore over runs that hurt users; {_CENSORED}",
    "failed_requests_mean": f"mean failed_requests per run; "
    f"BCa bootstrap ({BOOTSTRAP_RESAMPLES} resamples, fixed seed)",
    "release_failed_requests_mean": "mean release_failed_requests per run (failed requests beyond the "
    f"baseline the old version would have failed); BCa bootstrap ({BOOTSTRAP_RESAMPLES} resamples, fixed seed)",
    "users_affected_mean": "mean users_affected per run (share of users who got a bad answer from the release); "
    f"BCa bootstrap ({BOOTSTRAP_RESAMPLES} resamples, fixed seed)",
    "blast_radius_mean": "mean blast_radius over defective releases (share of all users the new version served before the first "
    f"detection in any region); BCa bootstrap ({BOOTSTRAP_RESAMPLES} resamples, fixed seed); scenarios with regions only",
    "failed_requests_p99": "99th percentile of failed_requests per run; order-statistic (binomial) interval",
    "rollout_duration_median": f"median rollout_duration; {_CENSORED}",
    "detection_time_median": f"median detected_at - started_at over defective releases; {_CENSORED}",
    "cost_mean": "mean replica_seconds per run; Student t interval",
}

FIGURE_KINDS: dict[str, str] = {
    "change_failure_rate": "percent",
    "false_rollback_rate": "percent",
    "mttr_median": "duration",
    "mttr_p90": "duration",
    "failed_requests_mean": "quantity",
    "release_failed_requests_mean": "quantity",
    "users_affected_mean": "percent",
    "blast_radius_mean": "percent",
    "failed_requests_p99": "quantity",
    "rollout_duration_median": "duration",
    "detection_time_median": "duration",
    "cost_mean": "quantity",
}
"""The unit of each figure: a percentage, a duration or a plain quantity (``results.formatting``)."""

REGION_FIGURES = frozenset({"blast_radius_mean"})
"""Figures only scenarios with regions have: tables leave their row out when no strategy has one."""


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


def compute_censored_quantile(
    durations: Any, followed: Any, q: float, confidence: float = CONFIDENCE
) -> Figure:
    """Quantile ``q`` of times some of which had not ended when their window closed, with a
    confidence interval: the Kaplan-Meier estimate, never-ended times right-censored.

    ``durations`` holds one time per item (an incident's time to restore, a release's time
    to detection); NaN or infinity where it had not ended by the end of the window.
    ``followed`` (a number, or one per item) is how long each item was observed, from its
    start to the window's end: a time that did not end is censored there, i.e. it is
    known to be longer than that, and counts so -- neither dropped (which would flatter a
    strategy that never restores) nor infinite (which no estimate can average).

    ``scipy.stats.ecdf`` on ``scipy.stats.CensoredData`` gives the Kaplan-Meier CDF F and
    its pointwise interval (``CENSORED_CI_METHOD``). The estimate is the smallest time with
    F >= q; the interval inverts the pointwise one (Brookmeyer and Crowley 1982): from the
    smallest time where the CDF's upper end reaches q to the smallest where its lower end
    does. When nothing is censored, F is the plain ECDF and its exact binomial
    (Clopper-Pearson) band is used instead, whose inversion is the distribution-free
    order-statistic interval of ``compute_quantile_interval``. Where F never reaches q the quantile lies beyond the longest time observed: the
    value (or the upper end) is ``math.inf`` and ``Figure.beyond`` is that time, shown
    ">28m20s". ``Figure.censored`` counts the items that did not end. Without censoring
    this is the empirical quantile (the smallest value with at least a share q at or
    below it).
    """
    x = np.asarray(durations, dtype=float).ravel()
    limits = np.broadcast_to(np.asarray(followed, dtype=float), x.shape)
    ended = np.isfinite(x)
    censored = int((~ended).sum())
    if x.size == 0:
        return Figure.unavailable(0)
    if not 0 < q < 1:
        raise ValueError(f"q must be within (0, 1), got {q}")
    times = np.maximum(limits[~ended], 0.0)  # an item whose window closed as it started was followed 0 s
    if not np.isfinite(times).all():
        raise ValueError("every time that did not end needs a finite followed time (its window's end - its start)")
    events = x[ended]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "undefined at some observations": F at 0 or 1, handled below
        result = stats.ecdf(stats.CensoredData(uncensored=events, right=times))
        band = result.cdf.confidence_interval(confidence, method=CENSORED_CI_METHOD)
    at = result.cdf.quantiles
    beyond = float(max(events.max(initial=0.0), times.max(initial=0.0)))
    if censored:
        upper, lower = _fill_undefined_band(result.cdf.probabilities, band.high.probabilities,
                                            band.low.probabilities, at, np.concatenate([events, times]), confidence)
    else:  # the exact binomial band: its inversion is the order-statistic interval of compute_quantile_interval
        upper, lower = _clopper_pearson_band(result.cdf.probabilities, x.size, confidence)

    def first_reaching(probabilities: np.ndarray) -> float:
        # NaN (the interval is undefined where F is 0 or 1) never counts as reaching q
        reached = np.flatnonzero(np.nan_to_num(probabilities, nan=-1.0) >= q - 1e-12)
        return float(at[reached[0]]) if reached.size else math.inf

    value = first_reaching(result.cdf.probabilities)
    low, high = first_reaching(upper), first_reaching(lower)
    low, high = min(low, value), max(high, value)  # the estimate is inside its own interval
    unbounded = math.isinf(value) or math.isinf(high)
    return Figure(value, low, high, int(x.size), censored, beyond if unbounded else None)


def _clopper_pearson_band(estimate: np.ndarray, n: int, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """(upper, lower) exact binomial (Clopper-Pearson) band of an ECDF of ``n`` values
    at its steps: with k values at or below t, F(t) is within
    ``Beta(k, n-k+1).ppf(alpha/2)`` .. ``Beta(k+1, n-k).ppf(1-alpha/2)``."""
    k = np.rint(estimate * n)
    tail = (1 - confidence) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        lower = np.where(k > 0, stats.beta.ppf(tail, k, n - k + 1), 0.0)
        upper = np.where(k < n, stats.beta.ppf(1 - tail, k + 1, n - k), 1.0)
    return upper, lower


def _fill_undefined_band(
    estimate: np.ndarray, upper: np.ndarray, lower: np.ndarray, at: np.ndarray, observed: np.ndarray,
    confidence: float,
) -> tuple[np.ndarray, np.ndarray]:
    """The log-log band is undefined where the estimate is 0 (nothing ended yet) or 1
    (everything at risk ended): there, use the exact binomial bound for zero of the ``m``
    items at risk surviving (Clopper-Pearson, ``(alpha/2) ** (1/m)``), so that ten equal
    values have a median of exactly that value rather than an unbounded one."""
    upper, lower = upper.copy(), lower.copy()
    tail = (1 - confidence) / 2
    at_risk = np.array([(observed >= t).sum() for t in at], dtype=float)
    for i in np.flatnonzero(np.isnan(lower) & (estimate >= 1 - 1e-12)):
        before = 1.0 - (lower[i - 1] if i > 0 and np.isfinite(lower[i - 1]) else 0.0)  # S's upper end before t
        lower[i] = 1.0 - before * (1.0 - tail ** (1.0 / at_risk[i]))
    for i in np.flatnonzero(np.isnan(upper) & (estimate <= 1e-12)):
        upper[i] = 1.0 - tail ** (1.0 / at_risk[i])
    return upper, lower


def censored_times(rows: pd.DataFrame, what: str) -> tuple[np.ndarray, np.ndarray]:
    """(durations, followed) of one censorable time over the rows it is counted on, for
    ``compute_censored_quantile``: ``what`` is ``"time_to_restore"`` (rows that hurt users),
    ``"detection"`` (defective releases) or ``"rollout_duration"`` (all rows).

    The window of a row ends at ``ended_at`` (the simulator follows a paged person past
    the scenario's duration until they act; a live run ends when its runner stops):
    a time that had not ended then is censored at ``ended_at`` minus its start.
    """
    if what == "time_to_restore":
        hurt = _booleans(rows["change_failed"], "change_failed")
        g = rows.loc[hurt]
        return _floats(g, "time_to_restore"), _floats(g, "ended_at") - _floats(g, "impact_started_at")
    if what == "detection":
        g = rows.loc[rows["defect"] != NO_DEFECT]
        return _floats(g, "detected_at") - _floats(g, "started_at"), _floats(g, "ended_at") - _floats(g, "started_at")
    if what == "rollout_duration":
        return _floats(rows, "rollout_duration"), _floats(rows, "ended_at") - _floats(rows, "started_at")
    raise ValueError(f"unknown censorable time {what!r}; expected time_to_restore, detection or rollout_duration")


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
    _require_columns(df, [*RESULT_COLUMNS, *SUMMARY_COLUMNS])
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
    restore = censored_times(g, "time_to_restore")
    release_failed = (compute_mean_bootstrap_interval(_floats(g, "release_failed_requests"))
                      if "release_failed_requests" in g.columns else Figure.unavailable(0))
    users = (compute_mean_bootstrap_interval(_floats(g, "users_affected"))
             if "users_affected" in g.columns and g["users_affected"].notna().all() else Figure.unavailable(0))
    bad = g.loc[g["defect"] != NO_DEFECT]
    blast = (compute_mean_bootstrap_interval(_floats(bad, "blast_radius"))
             if "blast_radius" in g.columns and len(bad) and bad["blast_radius"].notna().all() else Figure.unavailable(0))
    return StrategySummary(
        strategy=str(name),
        runs=len(g),
        change_failure_rate=compute_wilson_interval(int(changed.sum()), len(g)),
        false_rollback_rate=compute_wilson_interval(false_rollbacks, int(healthy.sum())),
        mttr_median=compute_censored_quantile(*restore, 0.5),
        mttr_p90=compute_censored_quantile(*restore, 0.9),
        failed_requests_mean=compute_mean_bootstrap_interval(_floats(g, "failed_requests")),
        release_failed_requests_mean=release_failed,
        users_affected_mean=users,
        blast_radius_mean=blast,
        failed_requests_p99=compute_quantile_interval(_floats(g, "failed_requests"), 0.99),
        rollout_duration_median=compute_censored_quantile(*censored_times(g, "rollout_duration"), 0.5),
        detection_time_median=compute_censored_quantile(*censored_times(g, "detection"), 0.5),
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
