"""DORA metrics per strategy from a results table, with the DORA performance tier of each.

Pure functions over a results table (``sim.results``): pandas groups the rows by
``(source, scenario, strategy)`` and every figure reuses the statistics of
``sim.comparison`` (Wilson for proportions, order-statistic intervals for medians and
percentiles, Student t and BCa bootstrap for means), so a DORA figure and the printed
comparison never disagree on method.

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
from enum import Enum
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from rolloutlab.results.statistics import (
    CONFIDENCE,
    Figure,
    compute_mean_bootstrap_interval,
    compute_mean_t_interval,
    compute_quantile_interval,
    compute_wilson_interval,
)

HOUR = 3600.0
DAY = 24 * HOUR
WEEK = 7 * DAY
MONTH = 30 * DAY
"""A month is 30 days when turning DORA's wording into seconds."""

GROUP_KEYS = ("source", "scenario", "strategy")


class Tier(str, Enum):
    """A DORA software delivery performance cluster."""

    ELITE = "elite"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


@dataclass(frozen=True)
class Band:
    """One tier of one metric: the report's wording and the limit a value must be within.

    ``limit`` is in the metric's unit; None means "anything left" (the last tier).
    ``inclusive`` says whether a value equal to the limit belongs to this tier.
    """

    tier: Tier
    wording: str
    limit: float | None
    inclusive: bool


@dataclass(frozen=True)
class TierTable:
    """A metric's tiers, best first. ``higher_is_better`` for frequency, lower for the rest."""

    unit: str
    higher_is_better: bool
    bands: tuple[Band, ...]
    source: str
    note: str = ""


TIER_SOURCE = (
    "Google Cloud / DORA, 2023 Accelerate State of DevOps Report, software delivery "
    "performance clusters (https://dora.dev/research/2023/dora-report/); as summarised in "
    "S. Fenton, 'The 2023 DevOps performance clusters', Octopus Deploy blog, 6 Oct 2023 "
    "(https://octopus.com/blog/software-delivery-performance-clusters-2023)"
)

# Caveat: these figures are the 2023 report's clusters as commonly quoted (and as two
# independent recollections agree: its low cluster has the same throughput bands as
# medium); the sources searched here did not show the report's table itself, so they have
# not been checked against it. Fix them in this one table if they differ.
# Boundaries read the report's wording literally: "less than" is strict, "between A and B"
# includes both ends, and a value shared by a strict "< A" and a "between A and B" goes to
# the latter (worse) tier. Values beyond the low tier's far end (slower than six months)
# and in gaps between tiers (recovery between one week and one month) are low: there is
# no tier below low. Change failure rates are the clusters' typical rates; a rate at most
# a cluster's value belongs to it.
TIERS: dict[str, TierTable] = {
    "deployment_frequency": TierTable(
        unit="deployments/day",
        higher_is_better=True,
        bands=(
            Band(Tier.ELITE, "on demand (multiple deploys per day)", 1.0, False),
            Band(Tier.HIGH, "between once per day and once per week", 1.0 / 7, True),
            Band(Tier.MEDIUM, "between once per week and once per month", 1.0 / 30, True),
            Band(Tier.LOW, "between once per week and once per month (the 2023 low cluster shares "
                           "medium's band; rolloutlab calls that band medium and anything rarer low)", None, True),
        ),
        source=TIER_SOURCE,
    ),
    "change_lead_time": TierTable(
        unit="s",
        higher_is_better=False,
        bands=(
            Band(Tier.ELITE, "less than one day", DAY, False),
            Band(Tier.HIGH, "between one day and one week", WEEK, True),
            Band(Tier.MEDIUM, "between one week and one month", MONTH, True),
            Band(Tier.LOW, "between one week and one month (the 2023 low cluster shares medium's "
                           "band; rolloutlab calls that band medium and anything slower low)", None, True),
        ),
        source=TIER_SOURCE,
    ),
    "change_failure_rate": TierTable(
        unit="fraction",
        higher_is_better=False,
        bands=(
            Band(Tier.ELITE, "5%", 0.05, True),
            Band(Tier.HIGH, "10%", 0.10, True),
            Band(Tier.MEDIUM, "15%", 0.15, True),
            Band(Tier.LOW, "64%", None, True),
        ),
        source=TIER_SOURCE,
    ),
    "failed_deployment_recovery_time": TierTable(
        unit="s",
        higher_is_better=False,
        bands=(
            Band(Tier.ELITE, "less than one hour", HOUR, False),
            Band(Tier.HIGH, "less than one day", DAY, False),
            Band(Tier.MEDIUM, "between one day and one week", WEEK, True),
            Band(Tier.LOW, "between one month and six months", None, True),
        ),
        source=TIER_SOURCE,
    ),
    "deployment_rework_rate": TierTable(
        unit="fraction",
        higher_is_better=False,
        bands=(),
        source="DORA, 2024 Accelerate State of DevOps Report",
        note="deployment rework rate was introduced in DORA 2024 without published tiers",
    ),
}
"""The DORA performance tiers per metric, best first, with the cited source."""


def classify(metric: str, value: float | None) -> Tier | None:
    """The DORA tier of ``value`` for ``metric`` (a ``TIERS`` key), None if it has no tiers.

    Units: deployments per day, seconds, or a fraction 0..1 (see ``TierTable.unit``). At a
    boundary the band's ``inclusive`` flag decides: exactly one deployment per day is
    high (elite is *multiple* per day), a lead time of exactly one day is high (elite is
    *less than* a day), one week is still high, a recovery of exactly one hour is high, a
    change failure rate of exactly 5% is elite. None or NaN values have no tier.
    """
    table = TIERS.get(metric)
    if table is None:
        raise KeyError(f"unknown DORA metric {metric!r}; expected one of {', '.join(TIERS)}")
    if value is None or not table.bands or (isinstance(value, float) and math.isnan(value)):
        return None
    for band in table.bands:
        if band.limit is None:
            return band.tier
        if table.higher_is_better:
            within = value >= band.limit if band.inclusive else value > band.limit
        else:
            within = value <= band.limit if band.inclusive else value < band.limit
        if within:
            return band.tier
    return table.bands[-1].tier


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
        "percentile over the change failures that were restored in the window."
    ),
    "deployment_rework_rate": (
        "Deployment rework rate (DORA 2024): the share of deployments that were unplanned, "
        "made to fix a user-facing problem caused by an earlier deployment."
    ),
    "failed_requests": (
        "Failed requests per deployment: user requests that failed during the deployment's "
        "observation window (the scenario's duration from the start of the rollout, the same "
        "for every strategy; baseline errors included, so compare strategies, not zero); DORA "
        "counts a failure once, whatever its size, this counts what users felt."
    ),
    "users_affected_share": (
        "Share of users affected per deployment: requests answered by a version the release "
        "made worse, divided by all requests in the window (exposed_requests / requests): how "
        "much of the traffic a bad release reached before it was stopped."
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
class Metric:
    """One figure: value with its confidence interval over ``n`` values, unit and tier.

    ``value`` None means the table cannot say (``note`` gives the reason); ``tier`` is None
    when the metric has no DORA tiers, or this figure is not the one DORA tiers (a p90).
    """

    value: float | None
    low: float | None
    high: float | None
    n: int
    unit: str
    tier: Tier | None = None
    note: str = ""


@dataclass(frozen=True)
class StrategyDora:
    """A strategy's DORA and user-impact metrics over its rows of one source and scenario."""

    source: str
    scenario: str
    strategy: str
    deployments: int
    deployment_frequency: Metric
    lead_time_median: Metric
    lead_time_p90: Metric
    change_failure_rate: Metric
    recovery_time_median: Metric
    recovery_time_p90: Metric
    rework_rate: Metric
    failed_requests_mean: Metric
    failed_requests_p99: Metric
    users_affected_mean: Metric
    users_affected_p99: Metric
    rollout_duration_median: Metric
    cost_mean: Metric

    def metrics(self) -> dict[str, Metric]:
        """The metrics by field name, in report order."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.type in ("Metric", Metric)}


METRIC_KINDS: dict[str, str] = {
    "deployment_frequency": "deployment_frequency",
    "lead_time_median": "change_lead_time",
    "lead_time_p90": "change_lead_time",
    "change_failure_rate": "change_failure_rate",
    "recovery_time_median": "failed_deployment_recovery_time",
    "recovery_time_p90": "failed_deployment_recovery_time",
    "rework_rate": "deployment_rework_rate",
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


def _compute_group(keys: tuple[Any, ...], rows: pd.DataFrame) -> StrategyDora:
    source, scenario, strategy = (str(k) for k in keys)
    lead = _column(rows, "lead_time")
    failed = _flags(rows, "change_failed")
    restore = _column(rows, "time_to_restore")
    restore_over_failures = restore[failed] if failed is not None and restore is not None else None
    lead_note = "no commit times: needs history mode or a deployment log with commit_time"
    return StrategyDora(
        source=source,
        scenario=scenario,
        strategy=strategy,
        deployments=len(rows),
        deployment_frequency=compute_deployment_frequency(rows),
        lead_time_median=_quantile(lead, 0.5, "s", "change_lead_time", lead_note),
        lead_time_p90=_quantile(lead, 0.9, "s", None, lead_note),
        change_failure_rate=_proportion(failed, "change_failure_rate", "no change_failed column"),
        recovery_time_median=_quantile(
            restore_over_failures, 0.5, "s", "failed_deployment_recovery_time", _restore_note(failed, restore)
        ),
        recovery_time_p90=_quantile(restore_over_failures, 0.9, "s", None, _restore_note(failed, restore)),
        rework_rate=_proportion(_flags(rows, "rework"), "deployment_rework_rate",
                                "no rework column: needs history mode or a deployment log"),
        failed_requests_mean=_failed_requests(rows, mean=True),
        failed_requests_p99=_failed_requests(rows, mean=False),
        users_affected_mean=_users_affected(rows, mean=True),
        users_affected_p99=_users_affected(rows, mean=False),
        rollout_duration_median=_quantile(_column(rows, "rollout_duration"), 0.5, "s", None,
                                          "no rollout_duration recorded"),
        cost_mean=_from_figure(
            compute_mean_t_interval(_column(rows, "replica_seconds")), "replica_seconds", None,
            "no cost recorded (a deployment log has none)",
        ),
    )


def compute_deployment_frequency(rows: pd.DataFrame, confidence: float = CONFIDENCE) -> Metric:
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
        return Metric(None, None, None, 0, unit, None,
                      "fewer than two deployments at distinct times (simulated runs without history "
                      "all start at 0): frequency needs history mode or a deployment log")
    alpha = 1 - confidence
    low = float(stats.chi2.ppf(alpha / 2, 2 * gaps)) / (2 * span)
    high = float(stats.chi2.ppf(1 - alpha / 2, 2 * gaps + 2)) / (2 * span)
    rate = gaps / span
    return Metric(rate, low, high, gaps, unit, classify("deployment_frequency", rate))


def _column(rows: pd.DataFrame, name: str) -> np.ndarray | None:
    if name not in rows:
        return None
    values = pd.to_numeric(rows[name], errors="coerce").to_numpy(dtype=float)
    return values


def _flags(rows: pd.DataFrame, name: str) -> np.ndarray | None:
    if name not in rows:
        return None
    return rows[name].fillna(False).astype(bool).to_numpy()


def _from_figure(figure: Figure, unit: str, kind: str | None, empty_note: str) -> Metric:
    if figure.value is None:
        note = empty_note if figure.n == 0 else f"too few values ({figure.n}) for this figure and its interval"
        return Metric(None, None, None, figure.n, unit, None, note)
    tier = classify(kind, figure.value) if kind else None
    note = TIERS[kind].note if kind else ""
    return Metric(figure.value, figure.low, figure.high, figure.n, unit, tier, note)


def _quantile(values: np.ndarray | None, q: float, unit: str, kind: str | None, empty_note: str) -> Metric:
    if values is None:
        return Metric(None, None, None, 0, unit, None, empty_note)
    return _from_figure(compute_quantile_interval(values, q), unit, kind, empty_note)


def _proportion(flags: np.ndarray | None, kind: str, empty_note: str) -> Metric:
    if flags is None:
        return Metric(None, None, None, 0, "fraction", None, empty_note)
    figure = compute_wilson_interval(int(flags.sum()), int(flags.size))
    return _from_figure(figure, "fraction", kind, "no deployments")


def _restore_note(failed: np.ndarray | None, restore: np.ndarray | None) -> str:
    if failed is None or restore is None:
        return "no change_failed or time_to_restore column"
    failures = int(failed.sum())
    if failures == 0:
        return "no change failures to recover from"
    return f"none of the {failures} change failures was restored in the window"


def _failed_requests(rows: pd.DataFrame, mean: bool) -> Metric:
    values = _column(rows, "failed_requests")
    requests = _column(rows, "requests")
    if values is None or requests is None or not np.nansum(requests) > 0:
        return Metric(None, None, None, 0, "requests", None,
                      "no request counts (a deployment log does not record them)")
    figure = compute_mean_bootstrap_interval(values) if mean else compute_quantile_interval(values, 0.99)
    return _from_figure(figure, "requests", None, "no deployments")


def _users_affected(rows: pd.DataFrame, mean: bool) -> Metric:
    exposed = _column(rows, "exposed_requests")
    requests = _column(rows, "requests")
    if exposed is None or requests is None:
        return Metric(None, None, None, 0, "fraction", None, "no exposed_requests column")
    served = requests > 0
    if not served.any():
        return Metric(None, None, None, 0, "fraction", None,
                      "no request counts (a deployment log does not record them)")
    share = exposed[served] / requests[served]
    figure = compute_mean_bootstrap_interval(share) if mean else compute_quantile_interval(share, 0.99)
    return _from_figure(figure, "fraction", None, "no deployments with requests")


# --------------------------------------------------------------------------- summary table

SUMMARY_COLUMNS = ("source", "scenario", "strategy", "metric", "value", "low", "high", "n", "unit", "tier", "note")


def dora_frame(results: pd.DataFrame | Iterable[StrategyDora]) -> pd.DataFrame:
    """A tidy summary for summary.csv: one row per strategy x metric (value, interval, n, unit, tier).

    ``results`` is a results table or the output of ``compute_dora``. ``tier`` is the tier's
    name or empty (None); ``value``/``low``/``high`` are NaN where the figure is n/a.
    """
    summaries = compute_dora(results) if isinstance(results, pd.DataFrame) else list(results)
    records = []
    for s in summaries:
        for name, m in s.metrics().items():
            records.append({
                "source": s.source, "scenario": s.scenario, "strategy": s.strategy, "metric": name,
                "value": _nan(m.value), "low": _nan(m.low), "high": _nan(m.high), "n": int(m.n),
                "unit": m.unit, "tier": m.tier.value if m.tier else None, "note": m.note,
            })
    frame = pd.DataFrame.from_records(records, columns=list(SUMMARY_COLUMNS))
    return frame.astype({"value": "float64", "low": "float64", "high": "float64", "n": "int64"})


def _nan(value: float | None) -> float:
    return float("nan") if value is None else float(value)
