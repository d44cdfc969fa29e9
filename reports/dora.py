"""DORA metrics per strategy from a results table, with the DORA performance tier of each.

Pure functions over a results table (``rolloutlab.results.table``): pandas groups the rows
by ``(source, scenario, strategy)`` and every figure reuses the statistics of
``rolloutlab.results.statistics`` (Wilson for proportions, order-statistic intervals for
medians and percentiles, Kaplan-Meier for times that may not have ended in the window,
Student t and BCa bootstrap for means), so a DORA figure and the printed comparison never
disagree on method.

Failed deployment recovery time follows the one rule for times that did not end: an
incident not restored by its window's end (``ended_at``) is censored there, never
dropped. A strategy that leaves half its incidents unrestored has a median beyond the
window ("> 28m20s"), and its tier is low: nothing better can be claimed.

Windows: like dora-team/fourkeys, medians and percentiles are taken over every deployment
in the window (the table), not averaged per day or per week.

Deployment frequency is a *rate*, deployments per day, not fourkeys' "median number of
days per week with a deployment": per history (``run``) the k = n - 1 gaps between n
deployments span ``max(started_at) - min(started_at)``; rates pool gaps and time over
histories (k_total / T_total) with the exact Poisson (Garwood) interval. Simulated
non-history runs all start at 0, so they have no span: their frequency (and lead time,
which needs commit times) is None, with the reason in ``note``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from rolloutlab.reports.tiers import DAY, TIERS, Tier, classify
from rolloutlab.results.statistics import (
    CONFIDENCE,
    Figure,
    censored_times,
    compute_censored_quantile,
    compute_mean_bootstrap_interval,
    compute_mean_t_interval,
    compute_order_statistic_ranks,
    compute_quantile_interval,
    compute_wilson_interval,
)
from rolloutlab.results.table import Outcome

GROUP_KEYS = ("source", "scenario", "strategy")


DEFINITIONS: dict[str, str] = {
    "deployment_frequency": (
        "Deployment frequency: how often a change reaches production, here deployments per "
        "day: the gaps between consecutive deployments of each history (or log) divided by "
        "the time they span, pooled over histories. It needs deployments spread in time: a "
        "history-mode simulation or a team's deployment log."
    ),
    "change_lead_time": (
        "Change lead time: time from a change being committed to it running in production "
        "(deployment start minus commit time). Reported as the median and 90th percentile "
        "over every deployment in the window."
    ),
    "change_failure_rate": (
        "Change failure rate: the share of deployments that hurt users and needed "
        "remediation (a rollback, a fix forward or a hotfix); here rows with change_failed."
    ),
    "failed_deployment_recovery_time": (
        "Failed deployment recovery time (time to restore): for a failed change, the time "
        "from the start of user impact until service was restored. Median and 90th "
        "percentile over every change failure: one not restored by the end of its window is "
        "censored there (known to take longer), and the figures come from the Kaplan-Meier "
        "estimate, so a strategy that never restores is not flattered by leaving its "
        "incidents out. A median beyond the window is written with \">\" before the longest time "
        "observed (\">28m20s\") and tiered low; "
        "the table says how many incidents were censored."
    ),
    "deployment_rework_rate": (
        "Deployment rework rate (DORA 2024): the share of deployments that were unplanned, "
        "made to fix a user-facing problem caused by an earlier deployment."
    ),
    "release_failed_requests": (
        "Failed requests caused by the release, per deployment (the headline): failed requests "
        "beyond the baseline the old version would have failed anyway on the same requests in "
        "the same window (release_failed_requests = failed_requests - baseline_failed_requests, "
        "baseline = requests x the old version's error rate). A single run's figure can dip "
        "below zero by chance; the mean over runs does not. DORA counts a failure once, "
        "whatever its size; this counts what users felt because of the release."
    ),
    "failed_requests": (
        "Failed requests per deployment, total: every user request that failed during the "
        "deployment's observation window (the scenario's duration from the start of the "
        "rollout, the same for every strategy), baseline errors included, shown beside the "
        "release's share so the two can be told apart."
    ),
    "users_affected_share": (
        "Share of users affected per deployment: users who got at least one bad answer from the "
        "release (a failure it caused, or a write a mirror performed twice), over all users "
        "(the users_affected column). A weight spreads a bad release over every user; a header "
        "route, a cohort or a flag concentrates it on a few. Rows that do not count users "
        "(older tables, deployment logs) fall back to the share of requests a version the "
        "release made worse answered (exposed_requests / requests), and say so."
    ),
    "rollout_duration": (
        "Rollout duration: from the start of the rollout until it finished (promoted or "
        "rolled back); the price of caution a progressive strategy pays on every release."
    ),
    "cost": (
        "Cost: replica-seconds per deployment over the window (pods running times seconds, both "
        "versions), which includes the extra capacity a strategy holds while it rolls out."
    ),
}
"""One paragraph per metric, written into the report."""


@dataclass(frozen=True)
class DoraMetric:
    """One figure of the DORA report: value with its confidence interval over ``n`` values,
    unit and tier.

    ``value`` None means the table cannot say (``note`` gives the reason); ``tier`` is None
    when the metric has no DORA tiers, or this figure is not the one DORA tiers (a p90).
    For a time some of whose ``n`` values had not ended in the window, ``censored`` counts
    those; a value or ``high`` of ``math.inf`` lies beyond the longest time observed,
    ``beyond`` ("> 28m20s").
    """

    value: float | None
    low: float | None
    high: float | None
    n: int
    unit: str
    tier: Tier | None = None
    note: str = ""
    censored: int = 0
    beyond: float | None = None

    @property
    def exceeds_window(self) -> bool:
        """The estimate lies beyond the longest time observed: shown "> window"."""
        return self.value is not None and math.isinf(self.value)


@dataclass(frozen=True)
class StrategyDora:
    """A strategy's DORA and user-impact metrics over its rows of one source and scenario."""

    source: str
    scenario: str
    strategy: str
    deployments: int
    deployment_frequency: DoraMetric
    lead_time_median: DoraMetric
    lead_time_p90: DoraMetric
    change_failure_rate: DoraMetric
    recovery_time_median: DoraMetric
    recovery_time_p90: DoraMetric
    rework_rate: DoraMetric
    release_failed_requests_mean: DoraMetric
    release_failed_requests_p99: DoraMetric
    failed_requests_mean: DoraMetric
    failed_requests_p99: DoraMetric
    users_affected_mean: DoraMetric
    users_affected_p99: DoraMetric
    rollout_duration_median: DoraMetric
    cost_mean: DoraMetric

    def metrics(self) -> dict[str, DoraMetric]:
        """The metrics by field name, in report order."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.type in ("DoraMetric", DoraMetric)}


METRIC_KINDS: dict[str, str] = {
    "deployment_frequency": "deployment_frequency",
    "lead_time_median": "change_lead_time",
    "lead_time_p90": "change_lead_time",
    "change_failure_rate": "change_failure_rate",
    "recovery_time_median": "failed_deployment_recovery_time",
    "recovery_time_p90": "failed_deployment_recovery_time",
    "rework_rate": "deployment_rework_rate",
    "release_failed_requests_mean": "release_failed_requests",
    "release_failed_requests_p99": "release_failed_requests",
    "failed_requests_mean": "failed_requests",
    "failed_requests_p99": "failed_requests",
    "users_affected_mean": "users_affected_share",
    "users_affected_p99": "users_affected_share",
    "rollout_duration_median": "rollout_duration",
    "cost_mean": "cost",
}
"""Which ``DEFINITIONS`` entry each ``StrategyDora`` field reports."""


# --------------------------------------------------------------------------- computing


def compute_dora(df: pd.DataFrame) -> list[StrategyDora]:
    """DORA metrics per (source, scenario, strategy) of a results table, in sorted order."""
    if len(df) == 0:
        return []
    grouped = df.groupby(list(GROUP_KEYS), sort=True, dropna=False)
    return [_compute_group(keys, group) for keys, group in grouped]


CENSORING_COLUMNS = ("impact_started_at", "ended_at")
"""What a table needs to censor an incident not restored in its window, rather than drop it."""

RELEASE_FAILED = "release_failed_requests"
"""The results column of failures caused by the release: beyond what the old version would
have failed anyway in the same window (``failed_requests`` minus ``baseline_failed_requests``)."""

NO_RELEASE_COLUMNS = (
    "this table has no release_failed_requests column (an older results table): only the total "
    "failed requests are shown, baseline errors included"
)
"""Said once, wherever a table or chart would lead with the release's failures but cannot."""


def _compute_group(keys: tuple[Any, ...], rows: pd.DataFrame) -> StrategyDora:
    source, scenario, strategy = (str(k) for k in keys)
    lead = _column(rows, "lead_time")
    failed = _flags(rows, "change_failed")
    lead_note = "no commit times: needs history mode or a deployment log with commit_time"
    recovery_median, recovery_p90 = compute_recovery_time(rows)
    return StrategyDora(
        source=source,
        scenario=scenario,
        strategy=strategy,
        deployments=len(rows),
        deployment_frequency=compute_deployment_frequency(rows),
        lead_time_median=_quantile(lead, 0.5, "s", "change_lead_time", lead_note),
        lead_time_p90=_quantile(lead, 0.9, "s", None, lead_note),
        change_failure_rate=_proportion(failed, "change_failure_rate", "no change_failed column"),
        recovery_time_median=recovery_median,
        recovery_time_p90=recovery_p90,
        rework_rate=_proportion(_flags(rows, "rework"), "deployment_rework_rate",
                                "no rework column: needs history mode or a deployment log"),
        release_failed_requests_mean=_failed_requests(rows, RELEASE_FAILED, mean=True),
        release_failed_requests_p99=_failed_requests(rows, RELEASE_FAILED, mean=False),
        failed_requests_mean=_failed_requests(rows, "failed_requests", mean=True),
        failed_requests_p99=_failed_requests(rows, "failed_requests", mean=False),
        users_affected_mean=_users_affected(rows, mean=True),
        users_affected_p99=_users_affected(rows, mean=False),
        rollout_duration_median=_rollout_duration(rows),
        cost_mean=_from_figure(
            compute_mean_t_interval(_column(rows, "replica_seconds")), "replica_seconds", None,
            "no cost recorded (a deployment log has none)",
        ),
    )


def compute_recovery_time(rows: pd.DataFrame) -> tuple[DoraMetric, DoraMetric]:
    """(median, p90) of failed deployment recovery time over a strategy's change failures.

    An incident not restored by the end of its window is censored there and the quantiles
    come from the Kaplan-Meier estimate (``compute_censored_quantile``): a strategy that
    never restores half its incidents gets a median "> window", tiered low, since nothing
    better can be claimed. Without ``impact_started_at`` and ``ended_at`` the table cannot
    say how long an unrestored incident was watched: the figures are then over restored
    incidents only, and the note says so.
    """
    kind = "failed_deployment_recovery_time"
    failed = _flags(rows, "change_failed")
    restore = _column(rows, "time_to_restore")
    if failed is None or restore is None:
        na = DoraMetric(None, None, None, 0, "s", None, "no change_failed or time_to_restore column")
        return na, na
    if not failed.any():
        na = DoraMetric(None, None, None, 0, "s", None, "no change failures to recover from")
        return na, na
    if not all(c in rows for c in CENSORING_COLUMNS):
        note = ("no impact_started_at/ended_at columns: incidents not restored in the window cannot be "
                "counted, so these are over restored incidents only")
        restored = restore[failed]
        return (_quantile(restored, 0.5, "s", kind, note, keep_note=True),
                _quantile(restored, 0.9, "s", None, note, keep_note=True))
    durations, followed = censored_times(rows, "time_to_restore")
    return (_censored(compute_censored_quantile(durations, followed, 0.5), kind),
            _censored(compute_censored_quantile(durations, followed, 0.9), None))


def _censored(figure: Figure, kind: str | None) -> DoraMetric:
    """A censoring-aware quantile as a report figure; beyond the window it is tiered low."""
    if figure.value is None:
        return DoraMetric(None, None, None, figure.n, "s", None, "no change failures to recover from",
                          figure.censored)
    if math.isinf(figure.value):
        tier = Tier.LOW if kind else None
        note = ("more incidents went unrestored in the window than this quantile allows: it lies beyond "
                "the window, so no tier better than low can be claimed")
        return DoraMetric(figure.value, figure.low, figure.high, figure.n, "s", tier, note, figure.censored,
                          figure.beyond)
    tier = classify(kind, figure.value) if kind else None
    return DoraMetric(figure.value, figure.low, figure.high, figure.n, "s", tier, "", figure.censored,
                      figure.beyond)


def _rollout_duration(rows: pd.DataFrame) -> DoraMetric:
    """Median rollout duration; a rollout still going at the window's end (outcome
    ``stuck``) is censored there. Any other missing duration is unknown (a deployment log
    does not record it) and left out."""
    durations = _column(rows, "rollout_duration")
    if durations is None:
        return DoraMetric(None, None, None, 0, "s", None, "no rollout_duration recorded")
    stuck = (rows["outcome"] == Outcome.STUCK.value).to_numpy() if "outcome" in rows else np.zeros(len(rows), bool)
    known = np.isfinite(durations) | stuck
    if not stuck.any() or not all(c in rows for c in ("started_at", "ended_at")):
        return _quantile(durations[np.isfinite(durations)], 0.5, "s", None, "no rollout_duration recorded")
    durations, followed = censored_times(rows.loc[known], "rollout_duration")
    return _censored(compute_censored_quantile(durations, followed, 0.5), None)


def compute_deployment_frequency(rows: pd.DataFrame, confidence: float = CONFIDENCE) -> DoraMetric:
    """Deployments per day: gaps between deployments over the time they span, per ``run``.

    With k gaps over T days pooled over histories, the rate is k / T and its interval the
    exact Poisson one (Garwood 1936): ``chi2(a/2, 2k) / 2T`` to ``chi2(1-a/2, 2k+2) / 2T``.
    """
    unit = "deployments/day"
    gaps = 0
    span = 0.0
    by_run = rows.groupby("run", sort=False)["started_at"] if "run" in rows else [(0, rows["started_at"])]
    for _, started in by_run:
        times = started.to_numpy(dtype=float)
        times = times[np.isfinite(times)]
        if times.size >= 2 and times.max() > times.min():
            gaps += times.size - 1
            span += float(times.max() - times.min()) / DAY
    if gaps == 0 or span <= 0:
        return DoraMetric(None, None, None, 0, unit, None,
                      "fewer than two deployments at distinct times (simulated runs without history "
                      "all start at 0): frequency needs history mode or a deployment log")
    alpha = 1 - confidence
    low = float(stats.chi2.ppf(alpha / 2, 2 * gaps)) / (2 * span)
    high = float(stats.chi2.ppf(1 - alpha / 2, 2 * gaps + 2)) / (2 * span)
    rate = gaps / span
    return DoraMetric(rate, low, high, gaps, unit, classify("deployment_frequency", rate))


def _column(rows: pd.DataFrame, name: str) -> np.ndarray | None:
    if name not in rows:
        return None
    values = pd.to_numeric(rows[name], errors="coerce").to_numpy(dtype=float)
    return values


def _flags(rows: pd.DataFrame, name: str) -> np.ndarray | None:
    """The column as booleans, None when these rows do not record it: a column absent, or
    empty for every row (a table of single releases joined with a history's rows)."""
    if name not in rows or rows[name].isna().all():
        return None
    return rows[name].fillna(False).astype(bool).to_numpy()


def compute_quantile_minimum(q: float, confidence: float = CONFIDENCE) -> int:
    """The fewest values for which quantile ``q`` has an order-statistic interval (6 for a
    median, 36 for a p90, 368 for a p99 at 95%)."""
    return _quantile_minimum(q, confidence)


@lru_cache(maxsize=64)
def _quantile_minimum(q: float, confidence: float) -> int:
    n = 1
    while compute_order_statistic_ranks(n, q, confidence) is None:
        n = n * 2 if n < 4096 else n + 1
        if n > 1_000_000:
            raise ValueError(f"no sample size gives quantile {q} an interval")
    low = n // 2 + 1 if n > 1 else 1
    while low < n:  # smallest n in (n/2, n] with an interval: the ranks exist from then on
        middle = (low + n) // 2
        if compute_order_statistic_ranks(middle, q, confidence) is None:
            low = middle + 1
        else:
            n = middle
    return n


def _quantile_name(q: float) -> str:
    return "median" if q == 0.5 else f"{round(q * 100)}th percentile"


def _from_figure(figure: Figure, unit: str, kind: str | None, empty_note: str, q: float | None = None,
                 keep_note: bool = False) -> DoraMetric:
    """A statistics figure as a report figure: n/a with the reason when it has no value
    (``empty_note`` when there were no values at all); ``keep_note`` keeps ``empty_note``
    on a figure that has a value (a caveat rather than a reason)."""
    if figure.value is None:
        if figure.n == 0:
            reason = empty_note
        elif q is not None:
            reason = (f"too few values for a {_quantile_name(q)} with its 95% interval "
                      f"(it needs at least {compute_quantile_minimum(q)})")
        else:
            reason = "too few values for this figure and its interval"
        return DoraMetric(None, None, None, figure.n, unit, None, reason)
    tier = classify(kind, figure.value) if kind else None
    note = (empty_note if keep_note else "") or (TIERS[kind].note if kind else "")
    return DoraMetric(figure.value, figure.low, figure.high, figure.n, unit, tier, note)


def _quantile(values: np.ndarray | None, q: float, unit: str, kind: str | None, empty_note: str,
              keep_note: bool = False) -> DoraMetric:
    if values is None:
        return DoraMetric(None, None, None, 0, unit, None, empty_note)
    return _from_figure(compute_quantile_interval(values, q), unit, kind, empty_note, q=q, keep_note=keep_note)


def _proportion(flags: np.ndarray | None, kind: str, empty_note: str) -> DoraMetric:
    if flags is None:
        return DoraMetric(None, None, None, 0, "fraction", None, empty_note)
    figure = compute_wilson_interval(int(flags.sum()), int(flags.size))
    return _from_figure(figure, "fraction", kind, "no deployments")


def _failed_requests(rows: pd.DataFrame, column: str, mean: bool) -> DoraMetric:
    requests = _column(rows, "requests")
    if requests is None or not np.nansum(requests) > 0:
        return DoraMetric(None, None, None, 0, "requests", None,
                          "no request counts (a deployment log does not record them)")
    values = _column(rows, column)
    if values is None:
        return DoraMetric(None, None, None, 0, "requests", None, NO_RELEASE_COLUMNS)
    if mean:
        return _from_figure(compute_mean_bootstrap_interval(values), "requests", None, "no deployments")
    return _from_figure(compute_quantile_interval(values, 0.99), "requests", None, "no deployments", q=0.99)


def _users_affected(rows: pd.DataFrame, mean: bool) -> DoraMetric:
    users = _column(rows, "users_affected")
    if users is not None and len(users) and not np.isnan(users).any():
        if mean:
            return _from_figure(compute_mean_bootstrap_interval(users), "fraction", None, "no deployments")
        return _from_figure(compute_quantile_interval(users, 0.99), "fraction", None, "no deployments", q=0.99)
    exposed = _column(rows, "exposed_requests")
    requests = _column(rows, "requests")
    if exposed is None or requests is None:
        return DoraMetric(None, None, None, 0, "fraction", None, "no exposed_requests column")
    served = requests > 0
    if not served.any():
        return DoraMetric(None, None, None, 0, "fraction", None,
                          "no request counts (a deployment log does not record them)")
    share = exposed[served] / requests[served]
    note = "users not counted: the share of requests a worse version answered"
    if mean:
        return _from_figure(compute_mean_bootstrap_interval(share), "fraction", None, note, keep_note=True)
    return _from_figure(compute_quantile_interval(share, 0.99), "fraction", None, note, q=0.99, keep_note=True)


# --------------------------------------------------------------------------- summary table

SUMMARY_COLUMNS = ("source", "scenario", "strategy", "metric", "value", "low", "high", "n", "unit", "tier", "note",
                   "censored", "beyond")


def dora_frame(results: pd.DataFrame | Iterable[StrategyDora]) -> pd.DataFrame:
    """A tidy summary for summary.csv: one row per strategy x metric (value, interval, n, unit, tier).

    ``results`` is a results table or the output of ``compute_dora``. ``tier`` is the tier's
    name or empty (None); ``value``/``low``/``high`` are NaN where the figure is n/a, and
    ``inf`` where a time lies beyond the window, with ``beyond`` the longest time observed;
    ``censored`` counts the values that had not ended in the window.
    """
    summaries = compute_dora(results) if isinstance(results, pd.DataFrame) else list(results)
    return metrics_frame(summaries)


def metrics_frame(summaries: Iterable[Any]) -> pd.DataFrame:
    """The tidy summary of any per-strategy figures with ``source``, ``scenario``,
    ``strategy`` and ``metrics()`` (``StrategyDora``, ``StrategyAvailability``)."""
    records = []
    for s in summaries:
        for name, m in s.metrics().items():
            records.append({
                "source": s.source, "scenario": s.scenario, "strategy": s.strategy, "metric": name,
                "value": _nan(m.value), "low": _nan(m.low), "high": _nan(m.high), "n": int(m.n),
                "unit": m.unit, "tier": m.tier.value if m.tier else None, "note": m.note,
                "censored": int(m.censored), "beyond": _nan(m.beyond),
            })
    frame = pd.DataFrame.from_records(records, columns=list(SUMMARY_COLUMNS))
    return frame.astype({"value": "float64", "low": "float64", "high": "float64", "n": "int64",
                         "censored": "int64", "beyond": "float64"})


def _nan(value: float | None) -> float:
    return float("nan") if value is None else float(value)
