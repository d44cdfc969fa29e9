"""The search space of ``rolloutlab tune``: a strategy's ``Parameter``s
(``strategies.search_spec``) as Optuna suggestions, and back into a candidate strategy.

Which fields are searched: the strategy's own ``search`` list; without one, the list of
the bundled strategy of its kind (``KIND_DEFAULTS``), restricted to the fields this
strategy has (a field it lacks is named in the notes, not searched).
"""

from __future__ import annotations

import math
from typing import Any

import optuna

from rolloutlab.errors import InputError
from rolloutlab.strategies.files import load_strategy
from rolloutlab.strategies.search_spec import (
    JUDGE_PARAMETERS,
    Parameter,
    apply_values,
    fit_schedule,
    search_parameters,
    strategy_document,
    value_at,
)
from rolloutlab.strategies.spec import StrategyKind, StrategySpec

KIND_DEFAULTS = {
    StrategyKind.CANARY: "canary",
    StrategyKind.BLUE_GREEN: "blue-green",
    StrategyKind.ROLLING: "rolling",
    StrategyKind.FEATURE_FLAG: "feature-flag",
}
"""The bundled strategy whose ``search`` list a strategy of each kind is searched on when it
has none of its own."""


def strategy_parameters(spec: StrategySpec) -> tuple[list[Parameter], list[str]]:
    """The parameters to search on ``spec`` and notes on what is not searched."""
    if spec.search:
        return search_parameters(spec)
    bundled = KIND_DEFAULTS[spec.strategy.kind]
    parameters, notes = search_parameters(spec, load_strategy(bundled).search, strict=False)
    notes.insert(0, f"{spec.name} has no search list: searching the one of the bundled {bundled!r} "
                    "(strategies/library)")
    if not parameters:
        raise InputError(spec.name, "nothing to search: the strategy has no search list, and none of the fields "
                                    f"of the bundled {bundled!r}'s ({'; '.join(notes[1:])}); add a search list "
                                    "(docs/tune.md)")
    return [_judges_for_signal(p, spec) for p in parameters], notes


def _judges_for_signal(parameter: Parameter, spec: StrategySpec) -> Parameter:
    """The sequential judge tests error counts: on a latency metric it is not a choice."""
    if parameter.kind != "judge":
        return parameter
    data = strategy_document(spec)
    signals = {value_at(data, path[:-1]).get("signal") for path in parameter.paths}
    if signals == {"errorRate"}:
        return parameter
    choices = tuple(c for c in parameter.choices if c != "sequential")
    return Parameter(parameter.name, parameter.kind, parameter.paths, parameter.current, choices=choices)


def suggest(trial: optuna.Trial, parameter: Parameter) -> Any:
    """The value a trial proposes for one parameter (the forms ``apply_values`` takes)."""
    name, kind = parameter.name, parameter.kind
    if kind in ("int", "percent"):
        return trial.suggest_int(name, int(parameter.low), int(parameter.high), log=parameter.log)
    if kind == "float" and _is_duration(name) and parameter.high - parameter.low >= 2:
        # whole seconds: what Argo and Flagger write, and no false precision in the tuned file
        return float(trial.suggest_int(name, math.ceil(parameter.low), math.floor(parameter.high), log=parameter.log))
    if kind in ("float", "threshold"):
        value = trial.suggest_float(name, parameter.low, parameter.high, log=parameter.log)
        return float(f"{value:.3g}")  # three digits: a threshold of 0.00881416 claims what no run can tell
    if kind == "choice":
        return trial.suggest_categorical(name, list(parameter.choices))
    if kind == "judge":
        judge = trial.suggest_categorical(name, list(parameter.choices))
        return judge, {p: trial.suggest_float(f"{name}.{judge}.{p}", low, high, log=log)
                       for p, low, high, log in JUDGE_PARAMETERS[judge]}
    assert kind == "schedule" and parameter.schedule is not None
    (c_low, c_high), (w_low, w_high), (p_low, p_high) = parameter.schedule
    n = trial.suggest_int(f"{name}.count", c_low, c_high)
    # weights on a log scale: 1% and 2% differ as much for a canary's exposure as 25% and 50%
    weights = [trial.suggest_float(f"{name}.weight{i}", w_low, w_high, log=True) for i in range(n)]
    pauses = [float(trial.suggest_int(f"{name}.pause{i}", math.ceil(p_low), math.floor(p_high), log=p_low >= 1))
              for i in range(n)]
    return fit_schedule(weights, pauses)


def candidate(spec: StrategySpec, parameters: list[Parameter], values: dict[str, Any], name: str) -> StrategySpec:
    """The strategy with ``values`` set (a ValueError says why the combination is invalid)."""
    return apply_values(spec, parameters, values, name)


def describe_values(parameters: list[Parameter], values: dict[str, Any]) -> dict[str, str]:
    """Each parameter's value as a short text for tables: ``10%/1m, 25%/2m`` for a schedule."""
    out: dict[str, str] = {}
    for p in parameters:
        value = values[p.name]
        if p.kind == "schedule":
            out[p.name] = ", ".join(f"{w}%/{_seconds(s)}" for w, s in value)
        elif p.kind == "judge":
            judge, settings = value
            out[p.name] = judge + "".join(f" {k}={v:.3g}" for k, v in settings.items())
        elif p.kind == "percent":
            out[p.name] = f"{value}%"
        elif p.kind == "float" and _is_duration(p.name):
            out[p.name] = _seconds(value)
        elif isinstance(value, float):
            out[p.name] = f"{value:.3g}"
        else:
            out[p.name] = str(value)
    return out


def current_values(spec: StrategySpec, parameters: list[Parameter]) -> dict[str, str]:
    """The starting strategy's own values, described as ``describe_values`` does."""
    out: dict[str, str] = {}
    for p in parameters:
        c = p.current
        if p.kind == "schedule":
            weights = [s["setWeight"] for s in c if s.get("setWeight") is not None]
            pauses = [s["pause"]["duration"] for s in c if s.get("pause") is not None]
            out[p.name] = ", ".join(f"{w}%/{_seconds(d or 0)}" for w, d in zip(weights, pauses))
        elif p.kind == "judge":
            out[p.name] = next(k for k, v in c.items() if v is not None)
        elif p.kind == "float" and _is_duration(p.name):
            out[p.name] = _seconds(c)
        else:
            out[p.name] = str(c)
    return out


def _is_duration(name: str) -> bool:
    return name.endswith(("interval", "duration", "Seconds", "bakeTime", "initialDelay"))


def _seconds(value: float) -> str:
    value = float(value)
    if value >= 60 and value % 60 < 1:
        return f"{value / 60:.0f}m"
    if value >= 60:
        return f"{int(value // 60)}m{value % 60:02.0f}s"
    return f"{value:.0f}s"
