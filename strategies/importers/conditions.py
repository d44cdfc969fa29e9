"""Argo's ``successCondition`` / ``failureCondition`` expressions, read as thresholds, and the
unit conversions an imported metric needs.

Argo evaluates arbitrary ``expr`` expressions over a query's ``result``; rolloutlab's
:class:`strategies.spec.Condition` takes the threshold subset (``result`` or ``result[0]``
compared with a number, joined by one kind of ``&&`` / ``||``). This module reads the forms
the Argo documentation uses, including ``asFloat(result)``, a number on the left
(``0.95 <= result[0]``) and the guards people add for empty results
(``len(result) == 0 || result[0] < 0.01``, ``isNaN(result[0]) || ...``). A guard cannot be
kept: in rolloutlab a window without data is a measurement *error* (counted against
``consecutiveErrorLimit``), so the guard is dropped and the caller warns.

A converted condition is rebuilt from its clauses, so that ``result[0] >= 0.95`` on a
success rate becomes ``result <= 0.05`` on an error rate.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_RESULT = r"(?:result(?:\s*\[\s*0\s*\])?|(?:asFloat|asInt|float)\(\s*result(?:\s*\[\s*0\s*\])?\s*\))"
_OP = r"(<=|>=|==|!=|<|>)"
_VALUE_FIRST = re.compile(rf"^{_RESULT}\s*{_OP}\s*({_NUMBER})$")
_NUMBER_FIRST = re.compile(rf"^({_NUMBER})\s*{_OP}\s*{_RESULT}$")
_GUARD = re.compile(
    r"^(?:len\(\s*result\s*\)\s*(?:==|!=|>=|<=|>|<)\s*\d+"
    r"|!?\s*(?:isNaN|isInf|isNil)\(\s*result(?:\s*\[\s*0\s*\])?\s*(?:,\s*[-+]?\d+\s*)?\)"
    r"|result(?:\s*\[\s*0\s*\])?\s*(?:==|!=)\s*nil)$"
)
_MIRROR = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}


class ConditionNotThreshold(ValueError):
    """The expression is not a threshold rolloutlab can evaluate."""


@dataclass(frozen=True)
class Threshold:
    """A condition as clauses on one number; ``guards`` are the dropped empty-result checks."""

    clauses: tuple[tuple[str, float], ...]
    joiner: str = "&&"
    guards: tuple[str, ...] = ()

    def render(self) -> str:
        return f" {self.joiner} ".join(f"result {op} {format_number(v)}" for op, v in self.clauses)

    def converted(self, value: Callable[[float], float], flip: bool) -> "Threshold":
        """The same condition on a transformed value; ``flip`` for a decreasing transform."""
        clauses = tuple((_MIRROR[op] if flip else op, value(v)) for op, v in self.clauses)
        return Threshold(clauses, self.joiner, self.guards)

    @property
    def finite(self) -> bool:
        return all(math.isfinite(v) for _, v in self.clauses)


def _strip_parens(text: str) -> str:
    text = text.strip()
    while text.startswith("(") and text.endswith(")") and _balanced(text[1:-1]):
        text = text[1:-1].strip()
    return text


def _balanced(text: str) -> bool:
    depth = 0
    for ch in text:
        depth += ch == "("
        depth -= ch == ")"
        if depth < 0:
            return False
    return depth == 0


def parse_threshold(text: str) -> Threshold:
    """Read an Argo condition as a threshold; raises :class:`ConditionNotThreshold`."""
    body = _strip_parens(text.replace(" and ", " && ").replace(" or ", " || "))
    parts = re.split(r"(\|\||&&)", body)
    terms, joiners = parts[0::2], parts[1::2]
    clauses: list[tuple[str, float]] = []
    guards: list[str] = []
    for raw in terms:
        term = _strip_parens(raw)
        if _GUARD.match(term):
            guards.append(term)
            continue
        match = _VALUE_FIRST.match(term)
        if match:
            op, number = match.group(1), match.group(2)
        else:
            match = _NUMBER_FIRST.match(term)
            if not match:
                raise ConditionNotThreshold(
                    f"{term!r} is not a comparison of the result with a number"
                )
            number, op = match.group(1), _MIRROR[match.group(2)]
        value = float(number)
        if not math.isfinite(value):
            raise ConditionNotThreshold(f"{number!r} is not a finite number")
        clauses.append((op, value))
    if not clauses:
        raise ConditionNotThreshold("it only checks whether the result is empty")
    if len(clauses) > 1 and len(set(joiners)) > 1:
        raise ConditionNotThreshold("it mixes && and ||")
    joiner = joiners[0] if joiners else "&&"
    if len(clauses) == 1:
        joiner = "&&"
    return Threshold(tuple(clauses), joiner, tuple(guards))


def format_number(value: float) -> str:
    """A threshold as people write it: ``0.05`` not ``0.050000000000000044``, ``500`` not ``500.0``."""
    value = float(f"{value:.12g}")
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


# --------------------------------------------------------------------------- conversions


@dataclass(frozen=True)
class Conversion:
    """How a query's result relates to rolloutlab's signal value."""

    value: Callable[[float], float]
    flip: bool  # the transform decreases: comparisons turn around
    describe: str  # for warnings: "success rate -> error rate (1 - x)"


IDENTITY = Conversion(lambda v: v, False, "")
SUCCESS_FRACTION = Conversion(lambda v: 1.0 - v, True, "success rate converted to an error rate (1 - x)")
SUCCESS_PERCENT = Conversion(lambda v: (100.0 - v) / 100.0, True,
                             "success percentage converted to an error rate ((100 - x) / 100)")
ERROR_PERCENT = Conversion(lambda v: v / 100.0, False, "error percentage converted to an error rate (x / 100)")
SECONDS_TO_MS = Conversion(lambda v: v * 1000.0, False, "seconds converted to milliseconds (x * 1000)")
