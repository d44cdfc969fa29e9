"""The search of ``rolloutlab tune``: Optuna proposes candidates, the simulator scores them
on common random numbers, weak candidates stop early.

- **Sampler.** Optuna's TPE sampler, multi-objective, with constraints
  (``Trial.set_constraint``: a candidate whose estimates break a constraint is infeasible
  and never on the front), seeded from the tune seed, asked for ``batch`` candidates at a
  time (``constant_liar`` keeps a batch spread out). The sampler is told every
  candidate's estimates, early-stopped ones included: they are real estimates on fewer
  runs, and they teach it where not to look.
- **Common random numbers.** Every candidate is simulated on runs ``0..n-1`` of the same
  seed (``sim.montecarlo``): run ``i`` is the same release, defect and timings for every
  candidate and for the strategy the user started from, so their differences are the
  settings', not luck's.
- **Early stopping (racing).** A candidate is scored on ``stages[0]`` runs, then on more
  (``stages[1]``, ...) only while it can still matter: it stops when a constraint is
  broken by its whole interval (more runs cannot save it), or when a fully scored
  candidate is clearly better (``_clearly_dominates``: paired on the same runs where the
  objective is a mean or a rate). Optuna's pruners are not used:
  they take one intermediate value, and this search has several objectives.
- **Executors.** Each stage of a batch is one ``run_many`` call over the batch's
  candidates, on the executor ``compare`` uses (serial, process pool, Dask), opened once
  for the whole search (``open_executor``: a pool per call would cost more than a small
  stage); the results are the same bytes on each, so a tune is reproducible from its seed
  on any of them.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
import pandas as pd

from rolloutlab.results.statistics import Figure, compute_mean_t_interval
from rolloutlab.scenarios.expectations import MetricSample, compute_expectation_figure, compute_metric_sample
from rolloutlab.scenarios.schema import Assertion
from rolloutlab.sim.montecarlo import ExecutorSession, open_executor, run_many
from rolloutlab.strategies.search_spec import Parameter
from rolloutlab.strategies.spec import StrategySpec
from rolloutlab.workflows.tune.objectives import (
    Objective,
    clearly_broken,
    constraint_excess,
    objective_value,
    paired_differences,
    per_run_values,
)
from rolloutlab.workflows.tune.space import candidate, suggest

DEFAULT_STAGES = (50, 150, 450)


@dataclass
class Candidate:
    """One strategy tried: its settings, how far it was scored, what came out."""

    number: int  # 0 is the strategy the user started from
    spec: StrategySpec | None
    values: dict[str, Any]
    runs: int = 0
    figures: dict[str, Figure] = field(default_factory=dict)  # objective name -> figure (racing intervals)
    per_run: dict[str, pd.Series] = field(default_factory=dict)  # mean or rate objective -> its values by run
    excess: dict[str, float] = field(default_factory=dict)  # constraint text -> estimate - limit
    stopped: str = ""  # why it stopped early; "" when scored on every stage
    invalid: str = ""  # why the settings make no valid strategy

    @property
    def complete(self) -> bool:
        return not self.stopped and not self.invalid and self.runs > 0

    @property
    def feasible(self) -> bool:
        return all(v <= 0 for v in self.excess.values())

    def values_of(self, objectives: Sequence[Objective]) -> tuple[float, ...]:
        return tuple(objective_value(self.figures[o.name]) for o in objectives)


@dataclass(frozen=True)
class TuneSettings:
    objectives: tuple[Objective, ...]
    constraints: tuple[Assertion, ...]
    candidates: int = 200
    stages: tuple[int, ...] = DEFAULT_STAGES
    batch: int = 8
    seed: int = 1
    executor: str = "process"
    workers: int | None = None


@dataclass
class Search:
    start: Candidate
    candidates: list[Candidate]
    parameters: list[Parameter]
    settings: TuneSettings
    simulated_runs: int = 0
    session: ExecutorSession | None = None


Progress = Callable[[int, int], None]


def run_search(scenario: Any, start: StrategySpec, parameters: list[Parameter], settings: TuneSettings,
               progress: Progress | None = None, session: ExecutorSession | None = None) -> Search:
    """Search ``parameters`` of ``start`` on ``scenario``; the start is scored on every stage too.
    ``session``: an open executor (``sim.montecarlo.open_executor``) every stage runs on;
    without one, one is opened for the search."""
    if session is None:
        with open_executor(settings.executor, settings.workers) as opened:
            return run_search(scenario, start, parameters, settings, progress, opened)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():  # group: "experimental" since 2.8, and what a conditional space needs
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(seed=settings.seed, multivariate=True, group=True, constant_liar=True)
    study = optuna.create_study(directions=["minimize"] * len(settings.objectives), sampler=sampler)
    origin = Candidate(0, start, {})
    search = Search(origin, [], parameters, settings, session=session)
    _race(scenario, [origin], search)
    done = 0
    while done < settings.candidates:
        size = min(settings.batch, settings.candidates - done)
        trials = [study.ask() for _ in range(size)]
        batch = [_propose(trial, start, parameters, done + i + 1) for i, trial in enumerate(trials)]
        _race(scenario, [c for c in batch if not c.invalid], search)
        for trial, c in zip(trials, batch):
            if c.invalid:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                continue
            for text, excess in c.excess.items():
                trial.set_constraint(text, _finite(excess))
            study.tell(trial, [_finite(v) for v in c.values_of(settings.objectives)])
        search.candidates += batch
        done += size
        if progress is not None:
            progress(done, settings.candidates)
    return search


def _propose(trial: optuna.Trial, start: StrategySpec, parameters: list[Parameter], number: int) -> Candidate:
    values = {p.name: suggest(trial, p) for p in parameters}
    try:
        spec = candidate(start, parameters, values, f"{start.name}-t{number}")
    except ValueError as error:  # pydantic's ValidationError is one
        return Candidate(number, None, values, invalid=str(error).splitlines()[-1 if "\n" in str(error) else 0])
    return Candidate(number, spec, values)


def _race(scenario: Any, batch: list[Candidate], search: Search) -> None:
    """Score a batch stage by stage; each stage drops the candidates that cannot matter."""
    settings = search.settings
    alive = list(batch)
    for k, runs in enumerate(settings.stages):
        if not alive:
            return
        table = run_many(scenario, [c.spec for c in alive], runs, settings.seed, session=search.session,
                         progress=False)
        search.simulated_runs += len(table)
        for c, (_, rows) in zip(alive, table.groupby("strategy", sort=False)):
            _score(c, rows, settings)
        if k == len(settings.stages) - 1:
            return
        for c in alive:
            c.stopped = _why_stop(c, search, rows_of=table[table["strategy"] == c.spec.name])
        alive = [c for c in alive if not c.stopped]


def _score(c: Candidate, rows: pd.DataFrame, settings: TuneSettings) -> None:
    c.runs = len(rows)
    c.figures, c.per_run = {}, {}
    for o in settings.objectives:
        sample = compute_metric_sample(rows, o.metric)
        c.figures[o.name] = racing_figure(o, sample)
        values = per_run_values(o, sample)
        if values is not None:
            c.per_run[o.name] = values
    c.excess = {a.text: constraint_excess(a, rows) for a in settings.constraints}


def racing_figure(objective: Objective, sample: MetricSample) -> Figure:
    """The figure racing decides on: a mean with its Student t interval (the BCa bootstrap
    `check` uses costs tens of milliseconds, thousands of times over a search; on
    hundreds of runs the two agree), any other statistic as `check` computes it."""
    if objective.stat != "mean":
        return compute_expectation_figure(sample, objective.stat)[0]
    if sample.censored:
        return Figure(math.inf, math.inf, math.inf, sample.n, sample.censored)
    return compute_mean_t_interval(sample.values)


def _why_stop(c: Candidate, search: Search, rows_of: pd.DataFrame) -> str:
    for assertion in search.settings.constraints:
        reason = clearly_broken(assertion, rows_of)
        if reason:
            return f"breaks {reason} on {c.runs} runs"
    objectives = search.settings.objectives
    for other in [search.start, *search.candidates]:
        if not other.complete or other is c:
            continue
        if _clearly_dominates(other, c, objectives):
            return f"dominated by #{other.number} on {c.runs} runs"
    return ""


def _clearly_dominates(a: Candidate, b: Candidate, objectives: Sequence[Objective]) -> bool:
    """``a`` is at least as good as ``b`` on every objective and clearly better on one.

    Where both have per-run values (means and rates), the comparison is paired on the
    runs both counted (common random numbers: the same releases): ``b`` minus ``a`` run by
    run has a mean of at least 0, and on one objective a Student t interval above 0. The
    luck both candidates shared (how many requests the old version failed, which
    release was bad) cancels, so a few dozen runs tell what separate intervals would
    need hundreds for. Elsewhere (a p90, a time that never ended): ``a``'s estimate is
    at least as good as ``b``'s, and better than ``b``'s whole interval on one."""
    if not a.feasible:
        return False
    better_somewhere = False
    for o in objectives:
        mine, theirs = a.per_run.get(o.name), b.per_run.get(o.name)
        differences = None if mine is None or theirs is None else paired_differences(theirs, mine)
        if differences is not None and len(differences) >= 2:
            if differences.mean() < 0:
                return False
            low = compute_mean_t_interval(differences).low
            better_somewhere |= low is not None and low > 0
            continue
        fa, fb = a.figures[o.name], b.figures[o.name]
        va, vb = objective_value(fa), objective_value(fb)
        if va > vb:
            return False
        low = fb.low if fb.low is not None else fb.value
        if low is not None and va < low:
            better_somewhere = True
    return better_somewhere


def _finite(value: float) -> float:
    """Optuna wants finite numbers: a never-ending time is told as a very large one."""
    return float(np.clip(value, -1e15, 1e15)) if not math.isnan(value) else 1e15


def choose(front: list[Candidate], objectives: Sequence[Objective]) -> Candidate | None:
    """The candidate to ship: best on the first objective, except that among the front
    members whose first figure is within the best one's interval (a difference the runs
    cannot tell) the one best on the next objectives wins -- a rollout twice as long for
    a gain no run can show is no gain. The start counts only when nothing beats it."""
    pool = [c for c in front if c.number != 0] or front
    if not pool:
        return None
    first = objectives[0].name
    best = min(pool, key=lambda c: c.values_of(objectives))
    high = best.figures[first].high
    bound = objective_value(best.figures[first]) if high is None else high
    close = [c for c in pool if objective_value(c.figures[first]) <= bound]
    return min(close, key=lambda c: (c.values_of(objectives)[1:], c.values_of(objectives)[0]))


def pareto_front(search: Search) -> list[Candidate]:
    """The fully scored feasible candidates no other beats on every objective (the start included)."""
    from rolloutlab.reports.plots import compute_pareto_front  # the one implementation

    pool = [c for c in [search.start, *search.candidates] if c.complete and c.feasible]
    optimal = compute_pareto_front([c.values_of(search.settings.objectives) for c in pool])
    front = [c for c, best in zip(pool, optimal) if best]
    return sorted(front, key=lambda c: c.values_of(search.settings.objectives))
