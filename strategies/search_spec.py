"""What a strategy file says about tuning: which of its own fields ``rolloutlab tune``
may change, and within what range.

A strategy file marks fields with a ``search`` list; each entry names a field the way
errors name it (``analysisTemplates[0].metrics[0].interval``; ``[*]`` stands for every
item of a list, all set to one value) and says how to search it::

    search:
      - field: strategy.canary.steps            # the whole schedule: how many weight steps,
        count: [1, 4]                           #   each step's weight (increasing) and
        weight: [1, 50]                         #   the pause after it
        pause: [30s, 5m]
      - field: analysisTemplates[*].metrics[*].interval
        range: [15s, 2m]
      - field: analysisTemplates[*].metrics[*].failureLimit
        range: [0, 3]
      - field: analysisTemplates[*].metrics[*].successCondition
        range: [0.005, 0.05]                    # the number in "result < 0.02"
      - field: analysisTemplates[*].metrics[*].judge
        choices: [threshold, sequential, mannWhitney]

What a field is decides how it is searched: a whole numbers' field (``failureLimit``,
``setWeight``) by integers, a duration or a fraction by floats (``log: true`` samples its
logarithm), a ``25%`` field by whole percents, a condition by its one threshold, a
``judge`` by the judge and the judge's own parameters (``JUDGE_PARAMETERS``), any other
field by the ``choices`` given. A strategy without a ``search`` list is searched on the
list of the bundled strategy of its kind (``rolloutlab tune`` takes it from
``strategies/library``), restricted to the fields this strategy has.

Everything here is pure: the search itself (Optuna) lives in ``workflows.tune``; this
module turns the list into ``Parameter``s checked against the strategy, and a set of
chosen values back into a valid ``StrategySpec``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import Field, model_validator

from rolloutlab.errors import FieldError
from rolloutlab.strategies.durations import parse_duration
from rolloutlab.strategies.spec_base import SpecModel

JUDGES = ("threshold", "mannWhitney", "sequential")

JUDGE_PARAMETERS: dict[str, tuple[tuple[str, float, float, bool], ...]] = {
    # name, low, high, log: ranges wide enough to hold the defaults of each judge
    # (strategies.analysis_spec) and the values the bundled strategies use
    "threshold": (),
    "sequential": (("alpha", 0.001, 0.1, True), ("minEffect", 0.25, 4.0, True), ("tolerance", 0.0, 1.0, False)),
    "mannWhitney": (("confidence", 0.8, 0.995, False), ("tolerance", 0.05, 0.5, False)),
}

_PART = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)|\[(\d+|\*)\]")
_CONDITION_NUMBER = re.compile(r"(<=|>=|<|>)\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*$")
_PERCENT = re.compile(r"^\d+(?:\.\d+)?%$")


class SearchField(SpecModel):
    """One entry of a strategy's ``search`` list (see the module docstring)."""

    field: str = Field(min_length=1)
    range: tuple[float | str, float | str] | None = None
    choices: tuple[Any, ...] | None = Field(None, min_length=1)
    log: bool = False
    count: tuple[int, int] | None = None
    weight: tuple[float, float] | None = None
    pause: tuple[float | str, float | str] | None = None

    @model_validator(mode="after")
    def _one_form(self) -> "SearchField":
        schedule = [self.count, self.weight, self.pause]
        if any(v is not None for v in schedule):
            if any(v is None for v in schedule):
                raise FieldError(("count",), "a schedule search needs count, weight and pause together")
            if self.range is not None or self.choices is not None:
                raise FieldError(("range",), "a schedule search takes count, weight and pause, not range or choices")
            low, high = self.count  # type: ignore[misc]
            if not 1 <= low <= high <= 10:
                raise FieldError(("count",), f"count is [fewest, most] weight steps within 1..10, got [{low}, {high}]")
            w_low, w_high = self.weight  # type: ignore[misc]
            if not 0 < w_low <= w_high < 100:
                raise FieldError(("weight",), f"weights are percents above 0 and below 100, got [{w_low:g}, {w_high:g}]")
            _bounds(self.pause, "pause", log=False)
        elif (self.range is None) == (self.choices is None):
            raise FieldError(("range",), "give either range: [low, high] or choices: [...] (or count, weight and "
                                         "pause for a canary's schedule)")
        elif self.range is not None:
            _bounds(self.range, "range", self.log)
        return self


def _bounds(pair: tuple, name: str, log: bool) -> tuple[float, float]:
    try:
        low, high = (parse_duration(v) for v in pair)
    except ValueError as error:
        raise FieldError((name,), str(error)) from None
    if low > high:
        raise FieldError((name,), f"low {low:g} is above high {high:g}")
    if log and low <= 0:
        raise FieldError(("log",), f"a log range must start above 0, got {low:g}")
    return low, high


@dataclass(frozen=True)
class Parameter:
    """One searched setting, checked against the strategy it changes.

    ``kind``: ``int``, ``float``, ``percent`` (a whole percent written ``N%``),
    ``threshold`` (the number of a one-clause condition), ``judge``, ``choice`` or
    ``schedule`` (a canary's weight steps and pauses). ``paths`` are the concrete fields
    set (a ``[*]`` field has one per item), ``current`` the strategy's own value."""

    name: str
    kind: str
    paths: tuple[tuple[str | int, ...], ...]
    current: Any
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()
    schedule: tuple[tuple[int, int], tuple[float, float], tuple[float, float]] | None = None


def strategy_document(spec: Any) -> dict:
    """The strategy as its file's plain data, every field present (defaults included)."""
    return spec.model_dump(by_alias=True, mode="json")


def search_parameters(spec: Any, fields: tuple[SearchField, ...] | None = None, *,
                      strict: bool = True) -> tuple[list[Parameter], list[str]]:
    """The parameters of ``fields`` (default: the strategy's own ``search`` list) checked
    against ``spec``; with ``strict`` a field the strategy does not have is an error at
    ``search[i].field``, otherwise it is left out and named in the returned notes."""
    fields = spec.search if fields is None else fields
    data = strategy_document(spec)
    parameters: list[Parameter] = []
    notes: list[str] = []
    for i, entry in enumerate(fields):
        try:
            parameters.append(_parameter(entry, data))
        except ValueError as error:
            if strict:
                raise FieldError(("search", i, "field"), str(error)) from None
            notes.append(f"{entry.field}: {error}; not searched")
    names = [p.name for p in parameters]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise FieldError(("search", i, "field"), f"{name} is searched twice")
    return parameters, notes


def _parameter(entry: SearchField, data: dict) -> Parameter:
    paths = expand_path(entry.field, data)
    values = [value_at(data, p) for p in paths]
    current = values[0]
    last = paths[0][-1]
    if entry.count is not None:
        if paths[0] != ("strategy", "canary", "steps"):
            raise ValueError("a schedule (count, weight, pause) is searched on strategy.canary.steps only")
        kinds = {key for step in current for key, value in step.items() if value is not None}
        if not kinds <= {"setWeight", "pause"}:
            raise ValueError(f"the steps hold {', '.join(sorted(kinds - {'setWeight', 'pause'}))}: a schedule search "
                             "would drop them; search their setWeight and pause fields one by one instead")
        schedule = (entry.count, entry.weight, _bounds(entry.pause, "pause", False))
        return Parameter(entry.field, "schedule", paths, current, schedule=schedule)  # type: ignore[arg-type]
    if last == "judge":
        unknown = [c for c in entry.choices or () if c not in JUDGES]
        if entry.choices is None or unknown:
            raise ValueError(f"a judge is searched with choices among {', '.join(JUDGES)}"
                             + (f", not {', '.join(map(str, unknown))}" if unknown else ""))
        return Parameter(entry.field, "judge", paths, current, choices=tuple(entry.choices))
    if entry.choices is not None:
        return Parameter(entry.field, "choice", paths, current, choices=tuple(entry.choices))
    low, high = _bounds(entry.range, "range", entry.log)  # type: ignore[arg-type]
    if last in ("successCondition", "failureCondition"):
        if any(v is None or not _CONDITION_NUMBER.search(str(v)) or ("&&" in v or "||" in v) for v in values):
            raise ValueError("the condition must be one comparison with a number (result < 0.02) to search its "
                             "threshold")
        return Parameter(entry.field, "threshold", paths, current, low, high, entry.log)
    if isinstance(current, bool) or current is None:
        raise ValueError(f"the field holds {current!r}: search it with choices")
    if isinstance(current, str) and _PERCENT.match(current):
        if not 0 <= low <= high <= 100:
            raise ValueError(f"a percent field is searched within 0..100, got [{low:g}, {high:g}]")
        return Parameter(entry.field, "percent", paths, current, low, high, entry.log)
    if isinstance(current, int):
        if low != int(low) or high != int(high):
            raise ValueError(f"the field holds whole numbers: give a range of whole numbers, not [{low:g}, {high:g}]")
        return Parameter(entry.field, "int", paths, current, low, high, entry.log)
    if isinstance(current, float):
        return Parameter(entry.field, "float", paths, current, low, high, entry.log)
    raise ValueError(f"the field holds {type(current).__name__} {current!r}: search it with choices")


def expand_path(text: str, data: Any) -> list[tuple[str | int, ...]]:
    """The concrete paths a field names in ``data``; ``[*]`` expands to every list item."""
    parts: list[str | int] = []
    position = 0
    for match in _PART.finditer(text):
        between = text[position:match.start()]
        if between not in ("", ".") or (between == "" and position > 0 and match.group(1)):
            raise ValueError(f"cannot read field path {text!r} (write it like analysisTemplates[0].metrics[*].interval)")
        parts.append(match.group(1) if match.group(1) else ("*" if match.group(2) == "*" else int(match.group(2))))
        position = match.end()
    if not parts or position != len(text):
        raise ValueError(f"cannot read field path {text!r} (write it like analysisTemplates[0].metrics[*].interval)")
    paths: list[tuple[str | int, ...]] = [()]
    widened = False  # after a [*], items without the next field are left out (steps[*].pause.duration)
    for part in parts:
        grown = []
        for path in paths:
            node = value_at(data, path)
            if part == "*":
                if not isinstance(node, list) or not node:
                    raise ValueError(f"{_text(path) or 'the strategy'} has no items for [*]")
                grown += [(*path, k) for k in range(len(node))]
                widened = True
            elif isinstance(part, int):
                if not isinstance(node, list) or part >= len(node):
                    raise ValueError(f"{_text(path)} has no item [{part}]")
                grown.append((*path, part))
            elif isinstance(node, dict) and node.get(part) is not None:
                grown.append((*path, part))
            elif not widened:
                raise ValueError(f"the strategy has no field {_text((*path, part))}")
        if not grown:
            raise ValueError(f"no item of the strategy has {text}")
        paths = grown
    return paths


def value_at(data: Any, path: tuple[str | int, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


def _text(path: tuple[str | int, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


def apply_values(spec: Any, parameters: list[Parameter], values: dict[str, Any], name: str) -> Any:
    """``spec`` with every parameter set to ``values[parameter.name]`` and renamed ``name``,
    validated as a ``StrategySpec`` (a ValueError says why a combination is invalid).

    Value forms: a number for int/float/percent/threshold, the chosen item for a choice,
    ``(judge, {parameter: value})`` for a judge, ``[(weight, pause seconds), ...]`` (weights
    increasing) for a schedule."""
    data = strategy_document(spec)
    data["name"] = name
    data["search"] = []  # a candidate is a result, not a search of its own
    for parameter in parameters:
        value = values[parameter.name]
        for path in parameter.paths:
            _set(data, path, _field_value(parameter, value_at(data, path), value))
    return type(spec).model_validate(data)


def _field_value(parameter: Parameter, old: Any, value: Any) -> Any:
    kind = parameter.kind
    if kind == "int":
        return int(value)
    if kind == "float":
        return float(value)
    if kind == "percent":
        return f"{int(value)}%"
    if kind == "threshold":
        return _CONDITION_NUMBER.sub(lambda m: f"{m.group(1)} {float(value):.6g}", str(old))
    if kind == "judge":
        judge, settings = value
        return {judge: dict(settings)}
    if kind == "schedule":
        steps: list[dict] = []
        for weight, pause in value:
            steps += [{"setWeight": int(weight)}, {"pause": {"duration": float(pause)}}]
        return steps
    return value


def _set(data: Any, path: tuple[str | int, ...], value: Any) -> None:
    node = value_at(data, path[:-1])
    node[path[-1]] = value


def fit_schedule(weights: list[float], pauses: list[float]) -> list[tuple[int, float]]:
    """A canary schedule from sampled weights and pauses: weights rounded to whole
    percents, sorted, repeats dropped (a repeated weight would be a longer pause, which
    the pauses already search)."""
    steps: list[tuple[int, float]] = []
    for weight, pause in sorted(zip((max(1, min(99, round(w))) for w in weights), (round(p) for p in pauses)),
                                key=lambda s: s[0]):
        if steps and steps[-1][0] == weight:
            continue
        steps.append((weight, pause))
    return steps
