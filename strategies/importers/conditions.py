"""Argo's ``successCondition`` / ``failureCondition`` expressions, read as thresholds on the
one value rolloutlab measures, and the unit conversions an imported metric needs.

Argo evaluates any expr expression over a query's ``result``
(:mod:`strategies.importers.argo_expr`); rolloutlab's :class:`strategies.spec.Condition`
takes thresholds (``result`` compared with numbers, joined by one kind of ``&&`` / ``||``).
A condition people write is read the way expr would run it, then reduced to the set of
values for which it holds, for *one* measured value ``x`` (rolloutlab measures one value
per version and window):

- ``result``, ``result[0]``, ``asFloat(..)``, ``float(..)``, ``default(result, d)`` and the
  aggregates ``max/min/sum/mean/median/first/last(result)`` are ``x``; ``asInt(..)`` is
  ``x`` truncated (``asInt(result) <= 3`` holds for ``x < 4``); arithmetic with numbers is
  solved for ``x`` (``result[0] * 100 < 1`` is ``x < 0.01``);
- ``all/any/one(result, {pred})`` are ``pred(x)``, ``none`` its negation, ``count`` 1 or 0;
- ``len(result)`` is 1, and ``isNaN``, ``isInf``, ``isNil``, ``result == nil`` are false:
  a measured value is a finite number. Comparisons combine with ``&&``, ``||``, ``!`` and
  ``? :`` into a union of intervals of ``x`` (domain ``x >= 0``: error rates and latencies),
  written back as one or two clauses; a condition that needs more (two separate ranges, a
  second series ``result[1]``, a field ``result.x``, text) is not a threshold.

What Argo does *without* a value is not part of that reduction: in rolloutlab a window
without requests is a measurement error (counted against ``consecutiveErrorLimit``). The
expression is also run as Argo would on "no data" (a Prometheus query gives an empty
vector, Datadog and others nil: metricproviders/prometheus and metricproviders/datadog in
argo-rollouts) and on NaN (Prometheus' 0/0 when no request came); where Argo's verdict is
true or false instead of an evaluation error, :attr:`Threshold.notes` says so, for the
importer's warning. So does a form that Argo cannot evaluate on the provider's result at
all (``result < 0.01`` on a Prometheus instant vector: expr cannot compare a list).

A converted condition is rebuilt from its clauses, so that ``result[0] >= 0.95`` on a
success rate becomes ``result <= 0.05`` on an error rate.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from rolloutlab.strategies.analysis_spec import QueryUnit
from rolloutlab.strategies.importers.argo_expr import (
    Array,
    Binary,
    Call,
    Closure,
    EvalError,
    ExprError,
    Index,
    Literal,
    Member,
    Name,
    Num,
    Pointer,
    Ternary,
    Text,
    Unary,
    Unknown,
    evaluate,
    parse_expr,
    uses,
)

_MIRROR = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
_COMPARISONS = ("<", "<=", ">", ">=", "==", "!=")
_AGGREGATES = ("max", "min", "sum", "mean", "median", "first", "last")
_QUANTIFIERS = ("all", "any", "none", "one", "count")


class ConditionNotThreshold(ValueError):
    """The expression is not a threshold rolloutlab can evaluate."""


class ResultShape(str, Enum):
    """What a metric provider hands Argo's expression as ``result``."""

    VECTOR = "vector"  # Prometheus instant vector: a list of floats, empty without data
    SCALAR = "scalar"  # one float, nil without data (Datadog, New Relic, CloudWatch, ...)


@dataclass(frozen=True)
class Threshold:
    """A condition as clauses on one number; ``notes`` say where Argo's evaluation of the
    original expression differs from judging these clauses (no data, NaN, the result's shape)."""

    clauses: tuple[tuple[str, float], ...]
    joiner: str = "&&"
    notes: tuple[str, ...] = ()

    @property
    def guards(self) -> tuple[str, ...]:  # the name before notes covered more than guards
        return self.notes

    def render(self) -> str:
        return f" {self.joiner} ".join(f"result {op} {format_number(v)}" for op, v in self.clauses)

    def converted(self, value: Callable[[float], float], flip: bool) -> "Threshold":
        """The same condition on a transformed value; ``flip`` for a decreasing transform."""
        clauses = tuple((_MIRROR[op] if flip else op, value(v)) for op, v in self.clauses)
        return Threshold(clauses, self.joiner, self.notes)

    @property
    def finite(self) -> bool:
        return all(math.isfinite(v) for _, v in self.clauses)


def parse_threshold(text: str, shape: ResultShape | None = None) -> Threshold:
    """Read an Argo condition as a threshold; raises :class:`ConditionNotThreshold`.

    ``shape`` is what the metric's provider returns; without it no note about missing data
    or the result's shape is made."""
    try:
        tree = parse_expr(text)
    except ExprError as exc:
        raise ConditionNotThreshold(str(exc)) from None
    try:
        holds = _Reduce().boolean(tree)
        notes = _notes(tree, shape)
    except RecursionError:
        raise ConditionNotThreshold("it nests too deeply to read") from None
    clauses, joiner = _render(holds)
    return Threshold(clauses, joiner, notes)


def format_number(value: float) -> str:
    """A threshold as people write it: ``0.05`` not ``0.050000000000000044``, ``500`` not ``500.0``."""
    value = float(f"{value:.12g}")
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


# --------------------------------------------------------------------------- sets of values

Interval = tuple[float, bool, float, bool]  # low, low included, high, high included


@dataclass(frozen=True)
class ValueSet:
    """A union of disjoint intervals of the measured value, in increasing order."""

    intervals: tuple[Interval, ...]

    @staticmethod
    def of(items: list[Interval]) -> "ValueSet":
        kept = sorted((i for i in items if i[0] < i[2] or (i[0] == i[2] and i[1] and i[3])), key=lambda i: (i[0], not i[1]))
        merged: list[Interval] = []
        for lo, lo_in, hi, hi_in in kept:
            if merged:
                plo, plo_in, phi, phi_in = merged[-1]
                if lo < phi or (lo == phi and (phi_in or lo_in)):
                    if hi > phi or (hi == phi and hi_in):
                        merged[-1] = (plo, plo_in, hi, hi_in)
                    continue
            merged.append((lo, lo_in, hi, hi_in))
        return ValueSet(tuple(merged))

    @staticmethod
    def compare(op: str, c: float) -> "ValueSet":
        """The values ``y`` with ``y op c``."""
        inf = math.inf
        shapes = {"<": (-inf, False, c, False), "<=": (-inf, False, c, True), ">": (c, False, inf, False),
                  ">=": (c, True, inf, False), "==": (c, True, c, True)}
        if op == "!=":
            return ValueSet.compare("==", c).complement()
        return ValueSet.of([shapes[op]])

    @staticmethod
    def floor_compare(op: str, c: float) -> "ValueSet":
        """The values ``y`` with ``trunc(y) op c`` for ``y >= 0`` (Argo's asInt truncates)."""
        if op == "==":
            return ValueSet.of([(c, True, c + 1, False)]) if c == int(c) else NOTHING
        if op == "!=":
            return ValueSet.floor_compare("==", c).complement()
        bound = {"<": math.ceil(c), "<=": math.floor(c) + 1, ">": math.floor(c) + 1, ">=": math.ceil(c)}[op]
        return ValueSet.compare("<" if op in ("<", "<=") else ">=", float(bound))

    def complement(self) -> "ValueSet":
        gaps: list[Interval] = []
        lo, lo_in = -math.inf, False
        for ilo, ilo_in, ihi, ihi_in in self.intervals:
            gaps.append((lo, lo_in, ilo, not ilo_in))
            lo, lo_in = ihi, not ihi_in
        gaps.append((lo, lo_in, math.inf, False))
        return ValueSet.of(gaps)

    def union(self, other: "ValueSet") -> "ValueSet":
        return ValueSet.of([*self.intervals, *other.intervals])

    def intersect(self, other: "ValueSet") -> "ValueSet":
        return self.complement().union(other.complement()).complement()

    def preimage(self, a: float, b: float) -> "ValueSet":
        """The ``x`` whose ``a * x + b`` is in this set (``a`` not 0)."""
        out: list[Interval] = []
        for lo, lo_in, hi, hi_in in self.intervals:
            xlo, xhi = (lo - b) / a, (hi - b) / a
            out.append((xlo, lo_in, xhi, hi_in) if a > 0 else (xhi, hi_in, xlo, lo_in))
        return ValueSet.of(out)


EVERYTHING = ValueSet(((-math.inf, False, math.inf, False),))
NOTHING = ValueSet(())
MEASURABLE = ValueSet(((0.0, True, math.inf, False),))  # error rates and latencies are not negative


def _render(holds: ValueSet) -> tuple[tuple[tuple[str, float], ...], str]:
    """Clauses (and their joiner) for the measurable values in ``holds``."""
    parts = holds.intersect(MEASURABLE).intervals
    if not parts:
        raise ConditionNotThreshold("it never holds for a measured value")
    if parts == MEASURABLE.intervals:
        raise ConditionNotThreshold("it holds for every measured value")
    if len(parts) == 1:
        lo, lo_in, hi, hi_in = parts[0]
        if lo == hi:
            return (("==", lo),), "&&"
        clauses = []
        if not (lo == 0 and lo_in):
            clauses.append((">=" if lo_in else ">", lo))
        if hi != math.inf:
            clauses.append(("<=" if hi_in else "<", hi))
        return tuple(clauses), "&&"
    first, last = parts[0], parts[-1]
    if len(parts) == 2 and first[:2] == (0.0, True) and last[2] == math.inf:
        gap = (first[2], not first[3], last[0], not last[1])
        if gap[0] == gap[2]:
            return (("!=", gap[0]),), "&&"
        return (("<" if gap[1] else "<=", gap[0]), (">" if gap[3] else ">=", gap[2])), "||"
    ranges = ", ".join(f"{'[' if lo_in else '('}{format_number(lo)}, {format_number(hi)}{']' if hi_in else ')'}"
                       for lo, lo_in, hi, hi_in in parts)
    raise ConditionNotThreshold(f"it holds on separate ranges of the value ({ranges})")


# --------------------------------------------------------------------------- reducing an expression


@dataclass(frozen=True)
class _Linear:
    """``a * x + b`` of the measured value ``x``, truncated to an integer when ``truncated``."""

    a: float = 1.0
    b: float = 0.0
    truncated: bool = False


@dataclass(frozen=True)
class _Indicator:
    """1 where ``holds``, else 0 (``count`` over one value)."""

    holds: ValueSet


_SERIES = object()  # `result` itself: a list of one value, or the value
_NIL = object()
_X = _Linear()


class _Reduce:
    """Evaluates an expression symbolically for one measured value ``x``."""

    def boolean(self, node: Any, element: Any = None) -> ValueSet:
        value = self.value(node, element)
        if not isinstance(value, ValueSet):
            raise ConditionNotThreshold("it is not a true/false test")
        return value

    def value(self, node: Any, element: Any = None) -> Any:
        if isinstance(node, Num):
            return node.value
        if isinstance(node, Literal):
            return _NIL if node.value is None else (EVERYTHING if node.value else NOTHING)
        if isinstance(node, Text):
            raise ConditionNotThreshold(f"it compares text ({node.value!r}), not a number")
        if isinstance(node, Name):
            if node.id != "result":
                raise ConditionNotThreshold(f"it uses {node.id!r}, which Argo does not define")
            return _SERIES
        if isinstance(node, Pointer):
            if element is None:
                raise ConditionNotThreshold("it uses # outside a predicate")
            return element
        if isinstance(node, Member):
            raise ConditionNotThreshold(f"it reads the field {node.name!r} of a structured result")
        if isinstance(node, Index):
            return self._index(node, element)
        if isinstance(node, Unary):
            operand = self.value(node.operand, element)
            if node.op == "!":
                return self._as_set(operand).complement()
            return _scale(operand, -1.0 if node.op == "-" else 1.0)
        if isinstance(node, Ternary):
            test = self.boolean(node.condition, element)
            then, otherwise = self.boolean(node.then, element), self.boolean(node.otherwise, element)
            return test.intersect(then).union(test.complement().intersect(otherwise))
        if isinstance(node, Binary):
            return self._binary(node, element)
        if isinstance(node, Call):
            return self._call(node, element)
        if isinstance(node, (Array, Closure)):
            raise ConditionNotThreshold("it uses a list where a number is expected")
        raise ConditionNotThreshold(f"it uses {type(node).__name__}")

    def _as_set(self, value: Any) -> ValueSet:
        if not isinstance(value, ValueSet):
            raise ConditionNotThreshold("it negates something that is not a true/false test")
        return value

    def _index(self, node: Index, element: Any) -> Any:
        if self.value(node.target, element) is not _SERIES:
            raise ConditionNotThreshold("it indexes something other than the result")
        index = self.value(node.index, element)
        if index in (0.0, -1.0):  # over one series the first is the last
            return _X
        raise ConditionNotThreshold(f"it reads series {format_number(index) if isinstance(index, float) else '?'} "
                                    "of the result; rolloutlab measures one value")

    def _binary(self, node: Binary, element: Any) -> Any:
        op = node.op
        if op in ("&&", "||"):
            left, right = self.boolean(node.left, element), self.boolean(node.right, element)
            return left.intersect(right) if op == "&&" else left.union(right)
        left = self.value(node.left, element)
        if op == "in":
            if not isinstance(node.right, Array):
                raise ConditionNotThreshold("it tests membership in something other than a list of numbers")
            out = NOTHING
            for item in node.right.items:
                out = out.union(_compare(left, "==", self.value(item, element)))
            return out
        right = self.value(node.right, element)
        if op in _COMPARISONS:
            return _compare(left, op, right)
        return _arithmetic(left, op, right)

    def _call(self, node: Call, element: Any) -> Any:
        name, args = node.name, node.args
        if name in ("isNil", "isNaN", "isInf"):
            return NOTHING  # a measured value is a finite number
        if name == "default" and len(args) == 2:
            return _SERIES  # Argo's default() returns the whole result when there is one
        if name in ("asFloat", "float") and len(args) == 1:
            return _number_like(self.value(args[0], element))
        if name == "abs" and len(args) == 1:
            value = _number_like(self.value(args[0], element))
            if isinstance(value, float):
                return abs(value)
            if value.a > 0 and value.b >= 0:  # not negative over measured values
                return value
            raise ConditionNotThreshold("it takes abs() of a value that may be negative")
        if name in ("asInt", "int") and len(args) == 1:
            linear = _number_like(self.value(args[0], element))
            if not isinstance(linear, _Linear):
                return float(math.trunc(linear))
            if linear.truncated or linear.a <= 0 or linear.b < 0:
                raise ConditionNotThreshold("it truncates a value that may be negative")
            return _Linear(linear.a, linear.b, True)
        if name == "len" and len(args) == 1 and self.value(args[0], element) is _SERIES:
            return 1.0
        if name in _AGGREGATES and len(args) == 1 and self.value(args[0], element) is _SERIES:
            return _X
        if name in ("max", "min") and len(args) > 1:
            values = [self.value(a, element) for a in args]
            if all(isinstance(v, float) for v in values):
                return max(values) if name == "max" else min(values)
        if name in _QUANTIFIERS and len(args) == 2 and self.value(args[0], element) is _SERIES:
            body = args[1].body if isinstance(args[1], Closure) else args[1]
            holds = self.boolean(body, _X)
            if name == "count":
                return _Indicator(holds)
            return holds.complement() if name == "none" else holds
        raise ConditionNotThreshold(f"it calls {name}() in a way rolloutlab cannot reduce to a threshold")


def _number_like(value: Any) -> Any:
    if value is _SERIES:
        return _X
    if isinstance(value, (float, _Linear)):
        return value
    raise ConditionNotThreshold("it converts something that is not the result's value")


def _scale(value: Any, factor: float) -> Any:
    value = _number_like(value)
    if isinstance(value, float):
        return value * factor
    if value.truncated:
        raise ConditionNotThreshold("it does arithmetic on a truncated value")
    return _Linear(value.a * factor, value.b * factor)


def _arithmetic(left: Any, op: str, right: Any) -> Any:
    left, right = _number_like(left), _number_like(right)
    if isinstance(left, float) and isinstance(right, float):
        try:
            return float({"+": left + right, "-": left - right, "*": left * right, "/": left / right,
                          "%": math.fmod(left, right), "**": left ** right}[op])
        except (ZeroDivisionError, OverflowError, ValueError):
            raise ConditionNotThreshold("it divides by zero") from None
    if isinstance(left, _Linear) and isinstance(right, _Linear):
        raise ConditionNotThreshold("it combines the value with itself")
    linear, number, linear_first = (left, right, True) if isinstance(left, _Linear) else (right, left, False)
    if linear.truncated:
        raise ConditionNotThreshold("it does arithmetic on a truncated value")
    if op == "+":
        return _Linear(linear.a, linear.b + number)
    if op == "-":
        return _Linear(linear.a, linear.b - number) if linear_first else _Linear(-linear.a, number - linear.b)
    if op == "*":
        return _scale(linear, number) if number else 0.0
    if op == "/" and linear_first and number:
        return _scale(linear, 1.0 / number)
    raise ConditionNotThreshold(f"it uses {op} in a way that is not a linear function of the value")


def _compare(left: Any, op: str, right: Any) -> ValueSet:
    if left is _NIL or right is _NIL:
        if op not in ("==", "!="):
            raise ConditionNotThreshold("it orders nil")
        same = left is right
        return EVERYTHING if same == (op == "==") else NOTHING  # a measured value is never nil
    if isinstance(left, ValueSet) or isinstance(right, ValueSet):
        raise ConditionNotThreshold("it compares a true/false test with a value")
    left = left if isinstance(left, (float, _Indicator)) else _number_like(left)
    right = right if isinstance(right, (float, _Indicator)) else _number_like(right)
    if isinstance(left, float) and isinstance(right, float):
        holds = {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right,
                 "==": left == right, "!=": left != right}[op]
        return EVERYTHING if holds else NOTHING
    if isinstance(left, float):
        left, op, right = right, _MIRROR[op], left
    if not isinstance(right, float):
        raise ConditionNotThreshold("it compares the result with itself")
    if isinstance(left, _Indicator):
        out = NOTHING
        if _compare(1.0, op, right) is EVERYTHING:
            out = out.union(left.holds)
        if _compare(0.0, op, right) is EVERYTHING:
            out = out.union(left.holds.complement())
        return out
    targets = ValueSet.floor_compare(op, right) if left.truncated else ValueSet.compare(op, right)
    if left.a == 0:
        return EVERYTHING if targets.intersect(ValueSet.compare("==", left.b)).intervals else NOTHING
    return targets.preimage(left.a, left.b)


# --------------------------------------------------------------------------- what Argo does without a value

_NO_DATA = {ResultShape.VECTOR: ([], "returns no series (an empty vector)"),
            ResultShape.SCALAR: (None, "returns no data (nil)")}
_NAN = {ResultShape.VECTOR: [math.nan], ResultShape.SCALAR: math.nan}
_ONE_VALUE = {ResultShape.VECTOR: ([0.0], [0.5], [1e3]), ResultShape.SCALAR: (0.0, 0.5, 1e3)}


def _verdict(tree: Any, result: Any) -> bool | str | None:
    """Argo's verdict on ``result``: True/False, "error" when its evaluation fails, None when unknown."""
    try:
        value = evaluate(tree, result)
    except EvalError:
        return "error"
    except (Unknown, ArithmeticError, ValueError, TypeError):
        return None
    return value if isinstance(value, bool) else "error"


def _notes(tree: Any, shape: ResultShape | None) -> tuple[str, ...]:
    notes: list[str] = []
    series = [n for n in (*_QUANTIFIERS, *_AGGREGATES, "filter") if uses(tree, n)]
    if series:
        notes.append(f"{', '.join(f'{n}()' for n in series)} reads every series the query returns; rolloutlab "
                     "measures one value per version, for which this is the threshold")
    if shape is None:
        return tuple(notes)
    if all(_verdict(tree, v) == "error" for v in _ONE_VALUE[shape]):
        what = "an instant vector (a list; wrap the query in scalar() or write result[0])" \
            if shape is ResultShape.VECTOR else "a single number (not a list)"
        notes.append(f"Argo cannot evaluate it on what this provider returns, {what}: every measurement would "
                     "be an Error there; imported as a threshold on the value")
        return tuple(notes)
    empty, said = _NO_DATA[shape]
    found = []
    verdict = _verdict(tree, empty)
    if isinstance(verdict, bool):
        found.append(f"when the query {said}, Argo finds it {str(verdict).lower()}")
    if uses(tree, "isNaN", "isInf"):
        verdict = _verdict(tree, _NAN[shape])
        if isinstance(verdict, bool):
            found.append(f"when the value is NaN (0/0: no requests in the window), Argo finds it {str(verdict).lower()}")
    if found:
        notes.append(f"{'; '.join(found)}; rolloutlab instead counts a window without requests as a measurement "
                     "error (against consecutiveErrorLimit)")
    return tuple(notes)


# --------------------------------------------------------------------------- conversions


@dataclass(frozen=True)
class Conversion:
    """How a query's result relates to rolloutlab's signal value: the query's unit
    (``Metric.query_unit``, which also converts a live answer), and how its conditions turn."""

    unit: QueryUnit
    flip: bool  # the transform decreases: comparisons turn around
    describe: str  # for warnings: "success rate -> error rate (1 - x)"

    @property
    def value(self) -> Callable[[float], float]:
        return self.unit.to_signal


IDENTITY = Conversion(QueryUnit.SIGNAL, False, "")
SUCCESS_FRACTION = Conversion(QueryUnit.SUCCESS_RATE, True, "success rate converted to an error rate (1 - x)")
SUCCESS_PERCENT = Conversion(QueryUnit.SUCCESS_PERCENT, True,
                             "success percentage converted to an error rate ((100 - x) / 100)")
ERROR_PERCENT = Conversion(QueryUnit.ERROR_PERCENT, False, "error percentage converted to an error rate (x / 100)")
SECONDS_TO_MS = Conversion(QueryUnit.SECONDS, False, "seconds converted to milliseconds (x * 1000)")
