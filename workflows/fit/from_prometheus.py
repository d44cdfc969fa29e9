"""What Prometheus says about a team's service: traffic, its daily shape, errors and latency.

Three range queries over ``--start .. --end`` (``live.prometheus.PrometheusClient``), each
answering one series (aggregate with ``sum(...)``):

- requests per second (default ``sum(rate(http_requests_total[5m]))``, the metric name the
  official client libraries' HTTP instrumentation and most exporters use);
- failed requests per second (default: the same with ``code=~"5.."``);
- a latency quantile, ``{quantile}`` standing for 0.5 and 0.99 (default
  ``histogram_quantile({quantile}, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))``,
  Prometheus' histogram practice: https://prometheus.io/docs/practices/histograms/).

They become:

- ``traffic.rps``: the mean rate; interval: Student t over daily means (hourly means when
  the range is under three days).
- ``traffic.profile``: *diurnal* when a 24-hour cosine (least squares,
  ``rate = a + b·cos ωt + c·sin ωt``) explains at least ``DIURNAL_R2`` of the rate's
  variance with an amplitude of at least ``DIURNAL_MIN_AMPLITUDE`` (needs two days: a
  shorter range cannot tell a day's rhythm from a drift; the amplitude's interval is Student
  t over each day's own fit); otherwise *spikes* when the rate leaves ``SPIKE_FACTOR``
  times its median in bursts covering under a tenth of the range; otherwise *constant*.
  The diurnal peak is put at the deployment's start (``phase: 0``: the worst case, since
  the data does not join deployments to hours), and a spike a third into the window (the
  data does not say when spikes meet deployments); the comment says so.
- ``service.baseline_error_rate``: failed over all requests across the range; interval:
  Student t over the same blocks' ratios.
- ``service.latency``: the median over the range of the p50 and of the p99 series, in
  milliseconds; interval: the order-statistic interval of that median.

An unreachable server, a rejected query and a query with no series are bad input (exit 2,
one line), raised by ``live.prometheus``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from rolloutlab.errors import InputError, PrometheusQueryError
from rolloutlab.live.prometheus import PrometheusClient, require_series
from rolloutlab.results.formatting import format_duration
from rolloutlab.results.statistics import Figure, compute_mean_t_interval, compute_quantile_interval
from rolloutlab.workflows.fit.parameters import FittedParameter, refuse

DEFAULT_REQUESTS_QUERY = "sum(rate(http_requests_total[5m]))"
DEFAULT_ERRORS_QUERY = 'sum(rate(http_requests_total{code=~"5.."}[5m]))'
DEFAULT_LATENCY_QUERY = ("histogram_quantile({quantile}, sum by (le) "
                         "(rate(http_request_duration_seconds_bucket[5m])))")
DAY = 86400.0
MAX_POINTS = 10_000
"""Points per range query: Prometheus refuses more than 11,000 per series."""
DIURNAL_R2 = 0.5
"""Share of the rate's variance a 24-hour cosine must explain to call the traffic diurnal."""
DIURNAL_MIN_AMPLITUDE = 0.1
"""Smallest daily swing (a fraction of the mean) worth modelling."""
SPIKE_FACTOR = 1.5
"""A point at this multiple of the median rate or more is part of a spike."""
MIN_POINTS = 30
"""Fewest non-empty points of a series a parameter is fitted from."""


@dataclass(frozen=True)
class PrometheusSource:
    """Where and over which range to read the service's metrics."""

    url: str
    start: float
    end: float
    requests_query: str = DEFAULT_REQUESTS_QUERY
    errors_query: str = DEFAULT_ERRORS_QUERY
    latency_query: str = DEFAULT_LATENCY_QUERY
    window: float = 1800.0
    """The scenario's window (its ``duration``), where a spike is placed."""

    @property
    def step(self) -> float:
        """Seconds between points: a minute, or coarser so a query stays under MAX_POINTS."""
        return max(60.0, math.ceil((self.end - self.start) / MAX_POINTS))


def parse_time(text: str, option: str) -> float:
    """``--start``/``--end``: Unix seconds or an ISO 8601 time with a timezone."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InputError(option, f"{text!r} is not a time: give Unix seconds or ISO 8601 "
                                 "(2025-01-06T00:00:00Z)") from None
    if moment.tzinfo is None:
        raise InputError(option, f"{text!r} has no timezone (add Z or +HH:MM)")
    return moment.timestamp()


def fit_prometheus(source: PrometheusSource, seed: np.random.SeedSequence | None = None) -> list[FittedParameter]:
    """Traffic, profile, baseline error rate and latency from Prometheus (``seed`` unused:
    every interval here is closed-form; kept so every fitter takes one)."""
    if source.end <= source.start:
        raise InputError("--end", "the range is empty: --end must be after --start")
    client = PrometheusClient(source.url)
    times, requests = _one_series(client, source.requests_query, source)
    _, errors = _one_series(client, source.errors_query, source, align=times)
    where = f"{source.requests_query} over {(source.end - source.start) / DAY:.1f} days"
    return [
        _rps(times, requests, where),
        fit_traffic_profile(times, requests, source.window, where),
        _error_rate(times, requests, errors, f"{source.errors_query} / {source.requests_query}"),
        _latency(client, source),
    ]


def _one_series(client: PrometheusClient, promql: str, source: PrometheusSource,
                align: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    series = client.query_range(promql, source.start, source.end, source.step)
    require_series(promql, series, f"between {source.start:.0f} and {source.end:.0f}")
    if len(series) > 1:
        raise PrometheusQueryError(f"the query {promql!r} answered {len(series)} series; fit needs one "
                                   "(aggregate it, e.g. sum(...))")
    times, values = series[0].times, series[0].values
    if align is not None:  # a point missing in one series is NaN in it, not a shift of the other
        lookup = dict(zip(times.tolist(), values.tolist()))
        return align, np.array([lookup.get(t, math.nan) for t in align.tolist()])
    return times, values


def _blocks(times: np.ndarray) -> tuple[np.ndarray, str]:
    """Block index of each point: days over three days or more, else hours."""
    span = times[-1] - times[0] if len(times) else 0.0
    size, name = (DAY, "daily") if span >= 3 * DAY else (3600.0, "hourly")
    return ((times - times[0]) // size).astype(int), name


def _rps(times: np.ndarray, rate: np.ndarray, where: str) -> FittedParameter:
    title, key = "traffic (mean rate)", "traffic.rps"
    ok = np.isfinite(rate)
    if ok.sum() < MIN_POINTS:
        return refuse(title, key, "rps", where, f"{int(ok.sum())} points with data, needs {MIN_POINTS}")
    blocks, name = _blocks(times[ok])
    means = [rate[ok][blocks == b].mean() for b in np.unique(blocks)]
    spread = compute_mean_t_interval(means) if len(means) >= 3 else Figure(None, None, None, len(means))
    mean = float(rate[ok].mean())
    figure = Figure(mean, spread.low, spread.high, int(ok.sum()))
    return FittedParameter(title, key, round(mean, 2), (("mean", figure),), "rps",
                           f"{where} ({int(ok.sum())} points)", f"mean; Student t over {len(means)} {name} means")


def fit_traffic_profile(times: np.ndarray, rate: np.ndarray, window: float, where: str) -> FittedParameter:
    """Constant, diurnal or spikes (the rules in the module's docstring) from a rate series;
    ``window`` is the scenario's, where a spike is placed."""
    title, key = "traffic profile", "traffic.profile"
    ok = np.isfinite(rate)
    t, r = times[ok], rate[ok]
    if len(r) < MIN_POINTS:
        return refuse(title, key, "number", where, f"{len(r)} points with data, needs {MIN_POINTS}")
    amplitude, r2 = _daily_fit(t, r)
    span_days = (t[-1] - t[0]) / DAY
    if span_days >= 2 and r2 >= DIURNAL_R2 and amplitude >= DIURNAL_MIN_AMPLITUDE:
        days = ((t - t[0]) // DAY).astype(int)
        per_day = [_daily_fit(t[days == d], r[days == d])[0] for d in np.unique(days) if (days == d).sum() >= MIN_POINTS]
        spread = compute_mean_t_interval(per_day) if len(per_day) >= 3 else Figure(None, None, None, len(per_day))
        value = {"kind": "diurnal", "amplitude": round(min(amplitude, 1.0), 3), "period": DAY, "phase": 0}
        return FittedParameter(title, key, value, (("amplitude", Figure(amplitude, spread.low, spread.high, len(r))),),
                               "number", f"{where}; a 24h cosine explains {r2:.0%} of the variance",
                               f"least squares; amplitude interval Student t over {len(per_day)} days' fits",
                               shown="diurnal (24h period)",
                               notes=("phase 0: the daily peak is put at the deployment's start (the worst case); "
                                      "the data does not join deployments to hours",))
    median = float(np.median(r))
    high = r >= SPIKE_FACTOR * median
    runs = _runs(high)
    if runs and high.mean() < 0.1:
        step = float(np.median(np.diff(t))) if len(t) > 1 else 60.0
        multiplier = float(np.median([r[a:b].max() for a, b in runs]) / median)
        duration = float(np.median([(b - a) * step for a, b in runs]))
        value = {"kind": "spikes", "spikes": [{"at": round(window / 3), "duration": round(duration),
                                               "multiplier": round(multiplier, 2)}]}
        figure = Figure(multiplier, None, None, len(runs))
        return FittedParameter(title, key, value, (("multiplier", figure),), "number",
                               f"{where}; {len(runs)} bursts above {SPIKE_FACTOR:g}x the median rate",
                               "median burst height and length",
                               shown=f"spikes: x{multiplier:.3g} for {format_duration(duration)}", notes=(
                                   "one spike placed a third into the window: the data does not say when "
                                   "spikes meet deployments",))
    return FittedParameter(title, key, {"kind": "constant"}, (), "number",
                           f"{where}; a 24h cosine explains {r2:.0%}, no bursts above {SPIKE_FACTOR:g}x the median",
                           "least squares and a burst count", shown="constant")


def _daily_fit(t: np.ndarray, r: np.ndarray) -> tuple[float, float]:
    """Relative amplitude and R² of ``a + b cos ωt + c sin ωt`` (ω: once a day)."""
    w = 2 * math.pi * t / DAY
    design = np.column_stack([np.ones_like(w), np.cos(w), np.sin(w)])
    coef, *_ = np.linalg.lstsq(design, r, rcond=None)
    fitted = design @ coef
    total = float(((r - r.mean()) ** 2).sum())
    r2 = 1 - float(((r - fitted) ** 2).sum()) / total if total > 0 else 0.0
    return float(math.hypot(coef[1], coef[2]) / coef[0]) if coef[0] > 0 else 0.0, r2


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) index pairs of the runs of True."""
    edges = np.diff(np.concatenate([[0], mask.astype(int), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))


def _error_rate(times: np.ndarray, requests: np.ndarray, errors: np.ndarray, where: str) -> FittedParameter:
    title, key = "baseline error rate", "service.baseline_error_rate"
    ok = np.isfinite(requests) & np.isfinite(errors) & (requests > 0)
    if ok.sum() < MIN_POINTS:
        return refuse(title, key, "share", where, f"{int(ok.sum())} points with both rates, needs {MIN_POINTS}")
    share = float(errors[ok].sum() / requests[ok].sum())
    blocks, name = _blocks(times[ok])
    ratios = [errors[ok][blocks == b].sum() / requests[ok][blocks == b].sum() for b in np.unique(blocks)]
    spread = compute_mean_t_interval(ratios) if len(ratios) >= 3 else Figure(None, None, None, len(ratios))
    low = None if spread.low is None else max(0.0, spread.low)
    return FittedParameter(title, key, round(share, 6), (("share", Figure(share, low, spread.high, int(ok.sum()))),),
                           "share", f"{where} ({int(ok.sum())} points)",
                           f"ratio of sums; Student t over {len(ratios)} {name} ratios")


def _latency(client: PrometheusClient, source: PrometheusSource) -> FittedParameter:
    title, key = "latency", "service.latency"
    figures = []
    for q in (0.5, 0.99):
        promql = source.latency_query.replace("{quantile}", f"{q:g}")
        _, values = _one_series(client, promql, source)
        values = values[np.isfinite(values)] * 1000.0
        if len(values) < MIN_POINTS:
            return refuse(title, key, "ms", promql, f"{len(values)} points with data, needs {MIN_POINTS}")
        figures.append(compute_quantile_interval(values, 0.5))
    median, p99 = figures
    where = source.latency_query.replace("{quantile}", "0.5 | 0.99")
    if median.value is None or p99.value is None or p99.value <= median.value:
        return refuse(title, key, "ms", where, "the p99 series is not above the median series")
    value = {"median_ms": round(median.value, 2), "p99_ms": round(p99.value, 2)}
    return FittedParameter(title, key, value, (("median", median), ("p99", p99)), "ms", f"{where} ({median.n} points)",
                           "median over the range of each quantile series; order-statistic interval",
                           notes=("histogram_quantile interpolates inside a bucket: the true quantile may lie "
                                  "anywhere in the bucket holding it, which the interval (the series' own "
                                  "variation) does not include",))
