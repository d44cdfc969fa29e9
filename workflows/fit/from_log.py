"""What a deployment log says about a team's world, as scenario parameters with intervals.

The log is read by ``reports.deploy_log`` into results rows (one per deployment, times in
seconds from the first deployment), and each parameter is fitted from the columns that
measure it:

=========================  =====================================  ============================
parameter                  from                                   estimator
=========================  =====================================  ============================
history.deploys_per_day    gaps between planned deployments       exact Poisson (chi-square)
                           (rework left out: fixes follow
                           failures, not the team's cadence)
history.lead_time          commit_time -> deploy_time             lognormal
release.defect_probability deployments that failed or rolled      Wilson
(and history's)            back, among all
response.response_time     failures a person restored:            lognormal, censored when
                           detect_time (else failure_time)        not restored by the log's
                           -> restore_time                        end
history.rework_delay       a failure's restore -> its rework      lognormal
                           deployment
time to detect (reported)  failure_time -> detect_time            lognormal
=========================  =====================================  ============================

A log cannot tell a person's decision from the rollback it starts, so the whole time from
detection to restore becomes ``response.response_time`` and ``response.rollback_duration``
is 0 (the simulator still adds the time the old version's pods take to be ready, if any).
Without ``detect_time`` the restore time runs from ``failure_time`` and includes the
detection, which the simulator's alert rules add again: the comment says so.

Times of zero (a commit deployed the same second) cannot be lognormal; they are left out,
and the parameter's source says how many.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rolloutlab.errors import InputError
from rolloutlab.results.statistics import compute_wilson_interval
from rolloutlab.results.table import Outcome
from rolloutlab.workflows.fit.estimators import compute_gap_rate, compute_lognormal_fit
from rolloutlab.workflows.fit.parameters import (
    MIN_DEPLOYMENTS,
    MIN_TIMES,
    FittedParameter,
    lognormal_parameter,
    refuse,
)

DAY = 86400.0
_HUMAN = (Outcome.ROLLED_BACK_MANUAL.value, Outcome.FAILED_UNDETECTED.value)  # status "failure" in a log


def select_service(frame: pd.DataFrame, name: str, service: str | None) -> pd.DataFrame:
    """The rows of one service; a log of several needs ``service`` named. Fewer than
    ``MIN_DEPLOYMENTS`` deployments is bad input (exit 2)."""
    services = sorted(frame["service"].unique())
    if service is None:
        if len(services) > 1:
            raise InputError(name, f"the log holds {len(services)} services ({', '.join(services)}): "
                                   "name one with --service")
        service = services[0]
    elif service not in services:
        raise InputError(name, f"no deployments of service {service!r} (services: {', '.join(services)})",
                         field="service")
    rows = frame[frame["service"] == service].sort_values("started_at").reset_index(drop=True)
    if len(rows) < MIN_DEPLOYMENTS:
        raise InputError(name, f"only {len(rows)} deployments of {service!r}: fit needs at least "
                               f"{MIN_DEPLOYMENTS} to estimate a deployment rate or a failure rate")
    return rows


def fit_log(rows: pd.DataFrame, seed: np.random.SeedSequence) -> list[FittedParameter]:
    """Every parameter the log can speak to, fitted or refused (rows of one service)."""
    lead_seed, restore_seed, detect_seed, rework_seed = seed.spawn(4)
    return [
        _deploy_rate(rows),
        _lead_time(rows, lead_seed),
        _failure_rate(rows),
        _detection(rows, detect_seed),
        _restore(rows, restore_seed),
        _rework_delay(rows, rework_seed),
    ]


def log_days(rows: pd.DataFrame) -> float:
    """Days from the first deployment to the last time the log records."""
    return float(rows["ended_at"].max() - rows["started_at"].min()) / DAY


def _deploy_rate(rows: pd.DataFrame) -> FittedParameter:
    title, key = "deploys per day", "history.deploys_per_day"
    planned = rows[~rows["rework"].astype(bool)]
    source = f"{len(planned)} planned deployments ({len(rows) - len(planned)} rework left out)"
    if len(planned) < MIN_DEPLOYMENTS:
        return refuse(title, key, "per_day", source, f"{len(planned)} planned deployments, needs {MIN_DEPLOYMENTS}")
    rate = compute_gap_rate(planned["started_at"].to_numpy())
    if rate.value is None:
        return refuse(title, key, "per_day", source, "every deployment at the same moment: no gaps to time")
    per_day = type(rate)(rate.value * DAY, rate.low * DAY, rate.high * DAY, rate.n)
    span = (planned["started_at"].max() - planned["started_at"].min()) / DAY
    return FittedParameter(title, key, round(per_day.value, 4), (("rate", per_day),), "per_day",
                           f"{source} over {span:.1f} days", "Poisson process, exact chi-square interval")


def _positive(times: np.ndarray, what: str) -> tuple[np.ndarray, str]:
    zeros = int((times <= 0).sum())
    return times[times > 0], (f"; {what} of zero left out: {zeros}" if zeros else "")


def _lead_time(rows: pd.DataFrame, seed: np.random.SeedSequence) -> FittedParameter:
    title, key = "lead time", "history.lead_time"
    lead = rows["lead_time"].to_numpy(dtype=float)
    lead = lead[np.isfinite(lead)]
    times, dropped = _positive(lead, "lead times")
    source = f"commit_time -> deploy_time of {len(lead)} deployments{dropped}"
    if len(times) < MIN_TIMES:
        reason = "no commit_time in the log" if len(lead) == 0 else f"{len(times)} lead times, needs {MIN_TIMES}"
        return refuse(title, key, "seconds", source, reason)
    return _lognormal(title, key, times, np.zeros(len(times), bool), None, seed, source)


def _failure_rate(rows: pd.DataFrame) -> FittedParameter:
    failed = rows["change_failed"].astype(bool)
    share = compute_wilson_interval(int(failed.sum()), len(rows))
    notes = ("also history.defect_probability",)
    if not failed.any():
        notes += (f"no failure in the log: the fitted world has no bad releases, though up to "
                  f"{100 * share.high:.3g}% fits the data",)
    return FittedParameter(
        "change failure rate", "release.defect_probability", round(share.value, 4), (("share", share),), "share",
        f"{int(failed.sum())} failed or rolled back of {len(rows)} deployments", "binomial, Wilson score interval",
        notes=notes)


def _failures_restored_by_people(rows: pd.DataFrame) -> pd.DataFrame:
    return rows[rows["change_failed"].astype(bool) & rows["outcome"].isin(_HUMAN)]


def _detection(rows: pd.DataFrame, seed: np.random.SeedSequence) -> FittedParameter:
    title = "time to detect"
    people = _failures_restored_by_people(rows)
    delay = (people["detected_at"] - people["impact_started_at"]).to_numpy(dtype=float)
    delay = delay[np.isfinite(delay)]
    times, _ = _positive(delay, "detections")
    source = f"failure_time -> detect_time of {len(people)} failures people handled"
    if len(times) < MIN_TIMES:
        reason = ("no failure people handled" if len(people) == 0 else
                  "no detect_time in the log: detection cannot be told from the failure" if len(times) == 0
                  else f"{len(times)} failures with a detect_time after failure_time, needs {MIN_TIMES}")
        return refuse(title, None, "seconds", source, reason)
    fitted = _lognormal(title, None, times, np.zeros(len(times), bool), None, seed, source)
    return _with_note(fitted, "not a scenario field: the scenario's alert rules decide detection in the simulator")


def _restore(rows: pd.DataFrame, seed: np.random.SeedSequence) -> FittedParameter:
    title, key = "time to restore (response)", "response.response_time"
    people = _failures_restored_by_people(rows)
    has_detect = bool(((people["detected_at"] - people["impact_started_at"]) > 0).any())
    start = people["detected_at"].to_numpy(dtype=float)
    restored = people["restored_at"].to_numpy(dtype=float)
    ended = people["ended_at"].to_numpy(dtype=float)
    censored = ~np.isfinite(restored)
    times = np.where(censored, ended - start, restored - start)
    limits = ended - start
    keep = times > 0
    dropped = int((~keep).sum())
    frm = "detect_time" if has_detect else "failure_time (no detect_time: includes detection)"
    source = f"{frm} -> restore_time of {len(people)} failures people handled" + (
        f"; times of zero left out: {dropped}" if dropped else "")
    observed = int((keep & ~censored).sum())
    if observed < MIN_TIMES:
        return refuse(title, key, "seconds", source,
                      f"{observed} restore times ({int(censored.sum())} not restored), needs {MIN_TIMES}")
    fitted = _lognormal(title, key, times[keep], censored[keep], limits[keep], seed, source)
    return _with_note(fitted, "rollback_duration set to 0s: the log cannot tell the decision from the rollback")


def _rework_delay(rows: pd.DataFrame, seed: np.random.SeedSequence) -> FittedParameter:
    title, key = "rework delay", "history.rework_delay"
    restored = rows.loc[rows["change_failed"].astype(bool), "restored_at"].to_numpy(dtype=float)
    restored = np.sort(restored[np.isfinite(restored)])
    delays = []
    for start in rows.loc[rows["rework"].astype(bool), "started_at"]:
        before = restored[restored <= start]
        if len(before):
            delays.append(start - before[-1])  # the latest restore before the fix: the failure it fixes
    times, dropped = _positive(np.asarray(delays, dtype=float), "delays")
    source = f"restore_time -> next rework deployment, {len(delays)} fixes{dropped}"
    if len(times) < MIN_TIMES:
        return refuse(title, key, "seconds", source, f"{len(times)} rework deployments after a restore, "
                                                     f"needs {MIN_TIMES}")
    return _lognormal(title, key, times, np.zeros(len(times), bool), None, seed, source)


def _lognormal(title: str, key: str | None, times: np.ndarray, censored: np.ndarray, limits: np.ndarray | None,
               seed: np.random.SeedSequence, source: str) -> FittedParameter:
    if len(np.unique(times[~censored])) < 2:
        return refuse(title, key, "seconds", source, "every observed time is the same: no spread to fit")
    return lognormal_parameter(title, key, compute_lognormal_fit(times, censored, seed, limits), source)


def _with_note(parameter: FittedParameter, note: str) -> FittedParameter:
    from dataclasses import replace

    return replace(parameter, notes=parameter.notes + (note,))
