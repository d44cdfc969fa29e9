"""Judge power curves: how often each analysis judge rolls back a bad release, and a good
one, as traffic and the defect's size change (``rolloutlab judges``).

The question behind it: "why was my low-traffic canary rolled back?" and "why did the judge
pass an obviously bad canary?". Both are properties of a judge *and* of the traffic it
sees, so the answer is a curve, not a number.

Method (what one run is). A run is one rollout of a strategy, driven by the controller
itself: ``strategies.dry_run.IdealWorld`` calls ``reconcile`` at every event, so steps,
pauses, pods becoming ready, the analysis schedule (``strategies/analysis.py``:
``initialDelay``, ``interval``, ``count``, ``failureLimit``, ``consecutiveErrorLimit``,
``inconclusiveLimit``) and every judge's own rules (``strategies/judges/``: conditions,
``minPoints``, score thresholds, the sequential boundaries) are the ones a real rollout
runs. Only the traffic is drawn instead of computed (``_DrawnTraffic``): between two events
each version gets Poisson(rps x share x dt) requests, the share being the effective
weight the controller set (as the simulator's thinning model, ``docs/architecture.md``),
and each request fails independently, Binomial(n, p), with p the scenario's
``baseline_error_rate`` on the stable version and, on the new version,
``combine_failure(baseline, added)`` (``sim.traffic``: the two causes fail a request
independently, as the simulator combines them). The observation the controller reads has
the simulator's shape (``sim/world.py`` ``_observe``: replicas, ready, available and
cumulative counters per version). Pods become ready after the scenario's expected
schedule + start delay + readiness passes. A run ends when the rollout is promoted,
rolled back, stuck at a gate (an inconclusive analysis waits for a person), or at the
scenario's ``duration``.

Axes. *Traffic* is the canary's requests per analysis window: the mean, over the analysis
windows of a good release's rollout computed without noise, of the canary's requests in a
window. It is proportional to the service's rps (the weights do not depend on it), so a
target per-window volume is reached by scaling the scenario's rps; each judge's table row
also gives that rps. *Effect size* is the defect's **absolute added error rate** (0.05: the
new version fails an extra 5% of its requests, as the scenario's ``error_rate`` defect
says), not a ratio. A good release adds 0.

What is counted. *Rolled back*: the controller aborted (an analysis failed or errored: a
window without canary requests is an error, and more than ``consecutiveErrorLimit`` in a
row abort the rollout, which is how very low traffic rolls back good releases too).
P(rollback | bad) is the power, P(rollback | good) the false-rollback rate, each with the
Wilson interval (``results.statistics.compute_wilson_interval``). *Time to catch*:
seconds from the rollout's start to the rollback, its median by Kaplan-Meier with runs
never rolled back right-censored where they ended (``compute_censored_quantile``: a judge
that catches fewer than half has a median "> end"); also the windows measured by then.

Equal false alarms. The threshold judge's false-rollback rate is not a parameter, the
sequential judge's ``alpha`` is (a bound on it). To compare detection at equal false
alarms, at the scenario's own traffic the sequential judge is re-run on good releases for
each ``alpha`` in ``ALPHA_GRID``; the calibrated alpha is the largest whose empirical
false-rollback count does not exceed the threshold judge's (same number of runs). Its
bad-release runs then give the time to catch compared with the threshold judge's.

Seeds. Run ``i`` of a cell draws from ``SeedSequence(seed, spawn_key=(release, added
error rate in 1e-9, traffic in 1e-3 requests, i))``: the same seed gives the same table bit
for bit, adding a grid point changes no other cell, and judges share their random numbers
run by run (common random numbers) as far as their rollouts keep the same schedule.

Judges compared by default: the bundled ``canary`` (threshold ``result < 0.02``,
``failureLimit: 1``), ``scenarios/library/strategies/canary-sequential.yaml`` (sequential,
alpha 0.01) and the bundled canary judged by Mann-Whitney as Argo Rollouts' Kayenta page
sets it up (argoproj/argo-rollouts ``docs/analysis/kayenta.md``: score thresholds pass 90,
marginal 75; Kayenta's NetflixACAJudge defaults otherwise, ``failureLimit`` Argo's 0),
against the stable version (the ideal world runs no baseline deployment).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from rolloutlab.errors import InputError
from rolloutlab.results.formatting import format_beyond, format_duration, format_figure, format_quantity
from rolloutlab.results.statistics import Figure, compute_censored_quantile, compute_wilson_interval
from rolloutlab.scenarios.schema import SCENARIO_LIBRARY_DIR, Scenario
from rolloutlab.sim.traffic import combine_failure
from rolloutlab.strategies.dry_run import IdealWorld
from rolloutlab.strategies.files import load_strategy
from rolloutlab.strategies.observation import Role
from rolloutlab.strategies.spec import StrategySpec
from rolloutlab.strategies.status import AnalysisPhase, RolloutStatus

JUDGE_RUNS = 200
"""Runs per cell (judge x release x traffic): a false-rollback rate of 0 in 200 good
releases bounds it below 2% (Wilson, 95%), enough to see a 5% crossing; the whole default
computation takes a couple of minutes on one core (the Mann-Whitney judge's interval is the
costly part)."""

TRAFFIC_GRID: tuple[float, ...] = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000)
"""Canary requests per analysis window the curves are drawn at (plus the scenario's own)."""

EFFECT_GRID: tuple[float, ...] = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2)
"""Absolute added error rates of the effect-size sweep (plus the scenario's defect), at the
scenario's own traffic."""

ALPHA_GRID: tuple[float, ...] = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4)
"""The sequential judge's alphas tried when matching the threshold judge's false alarms."""

FALSE_ROLLBACK_LEVEL = 0.05
"""The false-rollback rate whose crossing the answer reports ("rolls back more than 5% of
good releases below N requests per window")."""

DETECTABLE_POWER = 0.8
"""The power at which a defect counts as "caught" in the effect-size answer."""

THRESHOLD, MANN_WHITNEY, SEQUENTIAL = "threshold", "mannWhitney", "sequential"
SWEEP_TRAFFIC, SWEEP_EFFECT, SWEEP_CALIBRATION = "traffic", "effect", "calibration"
GOOD, BAD = "good", "bad"

MANN_WHITNEY_SETUP = {"thresholds": {"pass": 90, "marginal": 75}}
"""The judge of Argo Rollouts' Kayenta example (``docs/analysis/kayenta.md``)."""

COLUMNS = (
    "judge", "judge_kind", "strategy", "sweep", "release", "added_error_rate", "canary_error_rate",
    "baseline_error_rate", "requests_per_window", "rps", "scenario_traffic", "alpha", "runs", "rollbacks",
    "rollbacks_no_data", "paused", "p_rollback", "p_rollback_low", "p_rollback_high", "time_median_s",
    "time_low_s", "time_high_s", "time_beyond_s", "time_censored", "windows_median",
)
"""The columns of the judge-power table (``judges.csv``), one row per cell; ``reports.
judge_power_plot`` reads them. ``time_*`` is the time from the rollout's start to its
rollback (Kaplan-Meier median, runs not rolled back censored where they ended; inf when it
lies beyond the longest time observed, ``time_beyond_s``); ``windows_median`` the analysis
windows measured by then, among the runs rolled back."""


@dataclass(frozen=True)
class JudgeSetup:
    """A strategy whose analysis judges are being measured, and how the table names it."""

    label: str
    kind: str  # threshold, mannWhitney, sequential, or "mixed" when its metrics differ
    spec: StrategySpec


@dataclass(frozen=True)
class JudgeWorld:
    """What the runs take from the scenario."""

    scenario: str
    rps: float
    baseline_error_rate: float
    defect_error_rate: float  # the scenario's error_rate defect: absolute added error rate
    replicas: int
    pod_ready_seconds: float
    horizon: float

    @classmethod
    def of(cls, scenario: Scenario, where: str) -> "JudgeWorld":
        """The scenario's service under test, traffic and first ``error_rate`` defect."""
        defects = [d for d in scenario.release.defects if getattr(d, "kind", None) == "error_rate"]
        if not defects:
            raise InputError(where, "the judges' curves need an error_rate defect (release.defects: "
                                    "[{kind: error_rate, error_rate: 0.05}]): the bad release they must catch",
                             field=("release", "defects"))
        sut = scenario.service_under_test
        timing, probe = sut.pod_timing, sut.pod_timing.readiness
        ready = (timing.schedule_delay.expected() + timing.start_delay.expected() + probe.initial_delay
                 + probe.success_threshold * probe.period)
        return cls(scenario.name, float(scenario.traffic.rps), float(sut.baseline_error_rate),
                   float(defects[0].error_rate), int(sut.replicas), float(ready), float(scenario.duration))


@dataclass(frozen=True)
class RunOutcome:
    """One rollout: whether it was rolled back, why, when, and when it ended."""

    rolled_back: bool
    no_data: bool  # rolled back because an analysis errored (windows without canary requests)
    paused: bool  # stuck at a gate: an inconclusive analysis waits for a person
    rollback_at: float  # NaN when not rolled back
    ended_at: float
    windows: int  # analysis windows measured when it was rolled back (0 otherwise)


@dataclass(frozen=True)
class Answer:
    """The standard question's answers, as figures and as sentences."""

    sentences: tuple[str, ...]
    threshold_crossing: float | None = None  # requests per window below which false rollbacks pass the level
    calibrated_alpha: float | None = None
    earlier_seconds: float | None = None  # threshold's median time to catch minus the calibrated sequential's


@dataclass
class JudgePower:
    """The whole computation: the table and the answers."""

    world: JudgeWorld
    table: pd.DataFrame
    answer: Answer
    runs: int
    seed: int
    judges: list[JudgeSetup] = field(default_factory=list)


# ---------------------------------------------------------------------------- judges


def judge_kind(spec: StrategySpec) -> str:
    """The judge of every metric the strategy's analyses run, or "mixed"."""
    kinds = {m.judge.kind for _, ref in spec.analysis_refs() for m in spec.metrics_for(ref)}
    if not kinds:
        return ""
    return kinds.pop() if len(kinds) == 1 else "mixed"


def with_judge(spec: StrategySpec, name: str, judge: dict, failure_limit: int | None = None) -> StrategySpec:
    """``spec`` with every metric judged by ``judge`` (``{"sequential": {...}}``), renamed."""
    data = spec.model_dump(by_alias=True, exclude_none=True, mode="json")
    for template in data.get("analysisTemplates", []):
        for metric in template["metrics"]:
            for key in ("successCondition", "failureCondition", "thresholdRange"):
                metric.pop(key, None)
            metric["judge"] = judge
            if failure_limit is not None:
                metric["failureLimit"] = failure_limit
    data["name"] = name
    data.pop("search", None)  # the fields `tune` may search name the conditions just removed
    return StrategySpec.model_validate(data)


def with_alpha(spec: StrategySpec, alpha: float) -> StrategySpec:
    """A sequential strategy with every sequential metric's ``alpha`` replaced."""
    data = spec.model_dump(by_alias=True, exclude_none=True, mode="json")
    for template in data.get("analysisTemplates", []):
        for metric in template["metrics"]:
            if "sequential" in metric.get("judge", {}):
                metric["judge"]["sequential"]["alpha"] = alpha
    return StrategySpec.model_validate(data)


def default_judges() -> list[JudgeSetup]:
    """Threshold (bundled canary), Mann-Whitney (the canary with Kayenta's judge as Argo's
    docs set it up) and sequential (``canary-sequential``): the same steps, three judges."""
    canary = load_strategy("canary")
    sequential = load_strategy(SCENARIO_LIBRARY_DIR / "strategies" / "canary-sequential.yaml")
    mann_whitney = with_judge(canary, "canary-kayenta", {"mannWhitney": MANN_WHITNEY_SETUP}, failure_limit=0)
    return [JudgeSetup(f"{THRESHOLD} ({canary.name})", THRESHOLD, canary),
            JudgeSetup(f"{MANN_WHITNEY} ({mann_whitney.name})", MANN_WHITNEY, mann_whitney),
            JudgeSetup(f"{SEQUENTIAL} ({sequential.name})", SEQUENTIAL, sequential)]


def judge_setup(spec: StrategySpec, where: str) -> JudgeSetup:
    """A user's strategy as a judge to measure; one the ideal world cannot judge is refused."""
    if spec.strategy.feature_flag is not None:
        raise InputError(where, "a featureFlag strategy splits its analysis by the flag, which the judges' "
                                "runs do not draw; give a canary or blue-green strategy", field=("strategy",))
    kind = judge_kind(spec)
    if not kind:
        raise InputError(where, "this strategy runs no analysis, so it has no judge to draw curves for",
                         field=("analysisTemplates",))
    return JudgeSetup(f"{kind} ({spec.name})", kind, spec)


# ---------------------------------------------------------------------------- one run


@dataclass
class _DrawnTraffic(IdealWorld):
    """The dry run's world with its traffic drawn: Poisson requests per version between two
    events and binomial errors, instead of the expected values (everything else, including
    every reconcile call, is the dry run's)."""

    rng: np.random.Generator | None = None

    def advance(self, dt: float) -> None:
        before = {role: (pods.requests, pods.errors) for role, pods in self.pods.items()}
        super().advance(dt)  # the expected requests per version, at the weights of now
        assert self.rng is not None
        for role, pods in self.pods.items():
            requests, errors = before[role]
            expected = pods.requests - requests
            n = int(self.rng.poisson(expected)) if expected > 0 else 0
            failed = int(self.rng.binomial(n, self.error_rate[role])) if n else 0
            pods.requests, pods.errors = requests + n, errors + failed


def run_rollout(spec: StrategySpec, world: JudgeWorld, rps: float, canary_error_rate: float,
                rng: np.random.Generator) -> RunOutcome:
    """One rollout of ``spec`` at ``rps`` with drawn traffic; see the module's method."""
    rates = {Role.STABLE: world.baseline_error_rate, Role.CANARY: canary_error_rate}
    w = _DrawnTraffic(spec, start_delay=world.pod_ready_seconds, rps=rps, error_rate=rates, rng=rng)
    status = w.run(until=world.horizon)
    return _outcome(status, w.now)


def _outcome(status: RolloutStatus, now: float) -> RunOutcome:
    if status.aborted:
        ended = [a for a in status.analyses if a.phase in (AnalysisPhase.FAILED, AnalysisPhase.ERROR)]
        windows = max((len(m.measurements) for a in ended for m in a.metrics), default=0)
        no_data = any(a.phase is AnalysisPhase.ERROR for a in ended)
        at = float(status.aborted_at)
        return RunOutcome(True, no_data, False, at, at, windows)
    ended_at = float(status.completed_at) if status.completed else now
    return RunOutcome(False, False, not status.completed, math.nan, ended_at, 0)


def compute_window_share(spec: StrategySpec, world: JudgeWorld) -> float:
    """Canary requests per analysis window per request per second reaching the service: the
    mean over every analysis window of a good release's rollout without noise, with every
    metric made to pass (so the analysis runs its whole course whatever the judge: the
    sequential judge deciding early must not make its windows look smaller)."""
    rates = {Role.STABLE: world.baseline_error_rate, Role.CANARY: world.baseline_error_rate}
    w = IdealWorld(_never_deciding(spec), start_delay=world.pod_ready_seconds, rps=world.rps, error_rate=rates)
    status = w.run(until=world.horizon)
    counts = [win.canary.requests for a in status.analyses for m in a.metrics for win in m.windows]
    if not counts or sum(counts) == 0:
        raise InputError(spec.name, f"no analysis window of this strategy saw canary traffic in "
                                    f"{world.horizon:g}s of the scenario: there is nothing for a judge to judge")
    return float(np.mean(counts)) / world.rps


def _never_deciding(spec: StrategySpec) -> StrategySpec:
    data = spec.model_dump(by_alias=True, exclude_none=True, mode="json")
    for template in data.get("analysisTemplates", []):
        for metric in template["metrics"]:
            for key in ("failureCondition", "thresholdRange"):
                metric.pop(key, None)
            metric.update(judge={"threshold": {}}, successCondition="result >= 0", consecutiveErrorLimit=1000)
    data.pop("search", None)
    return StrategySpec.model_validate(data)


# ---------------------------------------------------------------------------- cells


def _cell_seed(seed: int, release: str, added: float, requests_per_window: float, run: int) -> np.random.SeedSequence:
    key = (int(release == BAD), int(round(added * 1e9)), int(round(requests_per_window * 1e3)), run)
    return np.random.SeedSequence(seed, spawn_key=key)


def simulate_cell(setup: JudgeSetup, world: JudgeWorld, *, share: float, requests_per_window: float,
                  added: float, release: str, runs: int, seed: int, sweep: str,
                  scenario_traffic: bool = False, alpha: float | None = None) -> dict:
    """``runs`` rollouts of one judge at one traffic and one effect: one table row."""
    rps = requests_per_window / share
    canary_rate = combine_failure(world.baseline_error_rate, added)
    outcomes = [run_rollout(setup.spec, world, rps, canary_rate,
                            np.random.default_rng(_cell_seed(seed, release, added, requests_per_window, i)))
                for i in range(runs)]
    rolled = [o for o in outcomes if o.rolled_back]
    share_back = compute_wilson_interval(len(rolled), runs)
    times = compute_censored_quantile([o.rollback_at for o in outcomes], [o.ended_at for o in outcomes], 0.5)
    return {
        "judge": setup.label, "judge_kind": setup.kind, "strategy": setup.spec.name, "sweep": sweep,
        "release": release, "added_error_rate": added, "canary_error_rate": canary_rate,
        "baseline_error_rate": world.baseline_error_rate, "requests_per_window": requests_per_window, "rps": rps,
        "scenario_traffic": scenario_traffic, "alpha": math.nan if alpha is None else alpha, "runs": runs,
        "rollbacks": len(rolled), "rollbacks_no_data": sum(o.no_data for o in rolled),
        "paused": sum(o.paused for o in outcomes), "p_rollback": share_back.value,
        "p_rollback_low": share_back.low, "p_rollback_high": share_back.high,
        "time_median_s": _or_nan(times.value), "time_low_s": _or_nan(times.low), "time_high_s": _or_nan(times.high),
        "time_beyond_s": _or_nan(times.beyond), "time_censored": times.censored,
        "windows_median": float(np.median([o.windows for o in rolled])) if rolled else math.nan,
    }


def _or_nan(x: float | None) -> float:
    return math.nan if x is None else float(x)


# ---------------------------------------------------------------------------- the whole computation


def compute_judge_power(scenario: Scenario, judges: Sequence[JudgeSetup], *, runs: int = JUDGE_RUNS, seed: int = 1,
                        where: str = "scenario", traffic: Sequence[float] = TRAFFIC_GRID,
                        effects: Sequence[float] = EFFECT_GRID, alphas: Sequence[float] = ALPHA_GRID) -> JudgePower:
    """Every judge's curves over ``traffic`` (good releases and the scenario's defect) and
    ``effects`` (at the scenario's traffic), the calibration, and the answers."""
    world = JudgeWorld.of(scenario, where)
    rows: list[dict] = []
    effect_grid = sorted({*effects, world.defect_error_rate})
    for setup in judges:
        share = compute_window_share(setup.spec.with_replicas(setup.spec.replicas or world.replicas), world)
        setup = JudgeSetup(setup.label, setup.kind, setup.spec.with_replicas(setup.spec.replicas or world.replicas))
        own = share * world.rps
        levels = sorted({*map(float, traffic), own})
        cell = dict(world=world, share=share, runs=runs, seed=seed)
        for level in levels:
            for release, added in ((GOOD, 0.0), (BAD, world.defect_error_rate)):
                rows.append(simulate_cell(setup, **cell, requests_per_window=level, added=added, release=release,
                                          sweep=SWEEP_TRAFFIC, scenario_traffic=level == own))
        for added in effect_grid:
            rows.append(simulate_cell(setup, **cell, requests_per_window=own, added=added, release=BAD,
                                      sweep=SWEEP_EFFECT, scenario_traffic=True))
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    calibration = calibrate_sequential(table, judges, world, runs=runs, seed=seed, alphas=alphas)
    if calibration is not None:
        table = pd.concat([table, calibration], ignore_index=True)
    return JudgePower(world, table, compute_answer(table, world), runs, seed, list(judges))


def calibrate_sequential(table: pd.DataFrame, judges: Sequence[JudgeSetup], world: JudgeWorld, *, runs: int,
                         seed: int, alphas: Sequence[float]) -> pd.DataFrame | None:
    """Rows of the sequential judge re-run at the scenario's traffic with each alpha on good
    releases, and with the calibrated alpha on bad ones (see the module's method). None
    without both a threshold and a sequential judge."""
    threshold = _scenario_row(table, THRESHOLD, GOOD)
    sequential = next((j for j in judges if j.kind == SEQUENTIAL), None)
    if threshold is None or sequential is None:
        return None
    spec = sequential.spec.with_replicas(sequential.spec.replicas or world.replicas)
    share = compute_window_share(spec, world)
    own = share * world.rps
    rows, chosen = [], None
    for alpha in sorted(alphas):
        setup = JudgeSetup(f"{SEQUENTIAL} alpha={alpha:g}", SEQUENTIAL, with_alpha(spec, alpha))
        row = simulate_cell(setup, world, share=share, requests_per_window=own, added=0.0, release=GOOD, runs=runs,
                            seed=seed, sweep=SWEEP_CALIBRATION, scenario_traffic=True, alpha=alpha)
        rows.append(row)
        if row["rollbacks"] <= threshold["rollbacks"]:
            chosen = (alpha, setup)
    if chosen is None:  # even the smallest alpha rolls back more good releases: compare at it, and say so
        chosen = (min(alphas), JudgeSetup(f"{SEQUENTIAL} alpha={min(alphas):g}", SEQUENTIAL, with_alpha(spec, min(alphas))))
    alpha, setup = chosen
    rows.append(simulate_cell(setup, world, share=share, requests_per_window=own, added=world.defect_error_rate,
                              release=BAD, runs=runs, seed=seed, sweep=SWEEP_CALIBRATION, scenario_traffic=True,
                              alpha=alpha))
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _scenario_row(table: pd.DataFrame, kind: str, release: str, sweep: str = SWEEP_TRAFFIC) -> pd.Series | None:
    rows = table[(table["judge_kind"] == kind) & (table["release"] == release) & (table["sweep"] == sweep)
                 & table["scenario_traffic"].astype(bool)]
    return None if rows.empty else rows.iloc[0]


# ---------------------------------------------------------------------------- the answers


def compute_crossing(rows: pd.DataFrame, level: float = FALSE_ROLLBACK_LEVEL) -> float | None:
    """The requests per window below which a judge's false-rollback rate passes ``level``:
    walking down from the most traffic, the first grid point above it, interpolated on log
    traffic with the point above it. None when it never passes (or already at the most
    traffic tested: then the largest traffic is returned)."""
    good = rows[(rows["release"] == GOOD) & (rows["sweep"] == SWEEP_TRAFFIC)].sort_values("requests_per_window",
                                                                                             ascending=False)
    previous = None
    for _, row in good.iterrows():
        if row["p_rollback"] > level:
            if previous is None:
                return float(row["requests_per_window"])
            hi_w, hi_p = math.log10(previous["requests_per_window"]), previous["p_rollback"]
            lo_w, lo_p = math.log10(row["requests_per_window"]), row["p_rollback"]
            return float(10 ** (hi_w + (lo_w - hi_w) * (level - hi_p) / (lo_p - hi_p)))
        previous = row
    return None


def compute_answer(table: pd.DataFrame, world: JudgeWorld, level: float = FALSE_ROLLBACK_LEVEL) -> Answer:
    """The sentences that answer the standard question, every figure from ``table``."""
    sentences: list[str] = []
    crossing = None
    for judge, rows in table[table["sweep"] == SWEEP_TRAFFIC].groupby("judge", sort=False):
        kind = rows["judge_kind"].iloc[0]
        at = compute_crossing(rows, level)
        own = rows[rows["scenario_traffic"].astype(bool) & (rows["release"] == GOOD)].iloc[0]
        here = (f"at the scenario's own {format_quantity(own['requests_per_window'])} canary requests per window it "
                f"rolls back {format_share_cell(own)} of good releases")
        if at is None:
            sentences.append(f"{judge} never rolls back more than {level:.0%} of good releases in the traffic "
                             f"tested ({_range(rows)} canary requests per window); {here}.")
            continue
        if kind == THRESHOLD and crossing is None:
            crossing = at
        worst = rows[rows["release"] == GOOD].sort_values(["p_rollback", "requests_per_window"]).iloc[-1]
        why = ""
        if worst["rollbacks"]:
            why = (f", {int(worst['rollbacks_no_data'])} of its {int(worst['rollbacks'])} rollbacks there for "
                   "windows without canary requests")
        above = rows[(rows["release"] == GOOD) & (rows["requests_per_window"] > at)]
        bump = ""
        if len(above) and above["rollbacks"].max() > 0:
            peak = above.sort_values(["p_rollback", "requests_per_window"]).iloc[-1]
            bump = (f"; above it, at most {format_share_cell(peak)} (at {format_quantity(peak['requests_per_window'])} "
                    "requests per window)")
        sentences.append(
            f"{judge} starts rolling back good releases below about {format_quantity(at)} canary requests per "
            f"analysis window (more than {level:.0%} of them; {format_quantity(at * own['rps'] / own['requests_per_window'])} "
            f"rps of service traffic with this strategy's weights): worst {format_share_cell(worst)} at "
            f"{format_quantity(worst['requests_per_window'])} requests per window{why}{bump}; {here}.")
    alpha, earlier = None, None
    threshold, calibrated = _scenario_row(table, THRESHOLD, BAD), _scenario_row(table, SEQUENTIAL, BAD, SWEEP_CALIBRATION)
    if threshold is not None and calibrated is not None:
        alpha = float(calibrated["alpha"])
        t_good = _scenario_row(table, THRESHOLD, GOOD)
        s_good = table[(table["sweep"] == SWEEP_CALIBRATION) & (table["release"] == GOOD) & (table["alpha"] == alpha)].iloc[0]
        matched = "equal" if s_good["rollbacks"] <= t_good["rollbacks"] else "the nearest (not equal)"
        t_time, s_time = threshold["time_median_s"], calibrated["time_median_s"]
        if math.isfinite(t_time) and math.isfinite(s_time):
            earlier = float(t_time - s_time)
            gap = (f"{format_duration(abs(earlier))} {'earlier' if earlier >= 0 else 'later'}"
                   f" ({threshold['windows_median'] - calibrated['windows_median']:+g} windows)")
        else:
            gap = "a difference the runs cannot bound (a median lies beyond the rollout's end)"
        sentences.append(
            f"At {matched} false alarms on the scenario's traffic ({format_quantity(threshold['requests_per_window'])} "
            f"canary requests per window: threshold {int(t_good['rollbacks'])}/{int(t_good['runs'])} good releases "
            f"rolled back, sequential with alpha calibrated to {alpha:g}: {int(s_good['rollbacks'])}/{int(s_good['runs'])}), "
            f"the sequential judge catches the bad release (+{world.defect_error_rate:.3g} error rate) in a median "
            f"{format_time_cell(calibrated)} against {format_time_cell(threshold)} for the threshold judge: {gap}; it catches "
            f"{format_share_cell(calibrated)} of bad releases against {format_share_cell(threshold)}.")
    sentences += _smallest_caught(table)
    return Answer(tuple(sentences), crossing, alpha, earlier)


def _smallest_caught(table: pd.DataFrame, power: float = DETECTABLE_POWER) -> list[str]:
    """Per judge, the smallest added error rate of the effect sweep caught in ``power`` of runs."""
    sentences = []
    for judge, rows in table[table["sweep"] == SWEEP_EFFECT].groupby("judge", sort=False):
        caught = rows[rows["p_rollback"] >= power].sort_values("added_error_rate")
        own = format_quantity(rows["requests_per_window"].iloc[0])
        if caught.empty:
            sentences.append(f"At the scenario's traffic ({own} canary requests per window) {judge} catches none "
                             f"of the defects tried in {power:.0%} of runs (up to +{rows['added_error_rate'].max():.3g}).")
            continue
        row = caught.iloc[0]
        sentences.append(f"At the scenario's traffic ({own} canary requests per window) the smallest defect {judge} "
                         f"catches in at least {power:.0%} of runs adds {row['added_error_rate']:.3g} to the error rate "
                         f"({format_share_cell(row)}, median {format_time_cell(row)}).")
    return sentences


def _range(rows: pd.DataFrame) -> str:
    w = rows["requests_per_window"]
    return f"{format_quantity(w.min())}-{format_quantity(w.max())}"


def format_share_cell(row: pd.Series) -> str:
    """A row's rollback share with its interval: "4.1% [2.9, 5.6]"."""
    return format_figure(Figure(row["p_rollback"], row["p_rollback_low"], row["p_rollback_high"], int(row["runs"])),
                         "percent")


def format_time_cell(row: pd.Series, interval: bool = False) -> str:
    """The median time to rollback and the windows measured by then: "1m18s (2 windows)"."""
    value, beyond = row["time_median_s"], row["time_beyond_s"]
    if math.isnan(value):
        return "n/a"
    if interval:
        figure = Figure(value, row["time_low_s"], row["time_high_s"], int(row["runs"]), int(row["time_censored"]),
                        None if math.isnan(beyond) else beyond)
        return format_figure(figure, "duration")
    shown = format_beyond(beyond) if math.isinf(value) else format_duration(value)
    windows = row["windows_median"]
    if math.isinf(value) or math.isnan(windows):
        return shown
    return f"{shown} ({windows:g} window{'' if windows == 1 else 's'})"
