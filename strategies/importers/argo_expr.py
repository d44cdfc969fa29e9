"""The expression language of Argo's ``successCondition`` / ``failureCondition``: a parser
for the part of expr-lang/expr that conditions use, and an evaluator for concrete results.

Argo Rollouts evaluates a condition with expr (``utils/evaluate/evaluate.go``,
``EvalCondition``: ``expr.Compile(condition, expr.Env(env))`` then ``expr.Run``) in an
environment of ``result`` (the provider's value: a list of floats for a Prometheus instant
vector, one float for a scalar, nil when Datadog and others find no data), ``asInt``,
``asFloat``, ``isNaN``, ``isInf``, ``isNil`` and ``default`` -- the last two look at the
*whole* result, whatever their first argument (``isNilFunc(resultValue)``,
``defaultFunc(resultValue)``). The output must be a bool, or the measurement is an Error.

The grammar follows expr's operator table (expr-lang/expr ``parser/operator/operator.go``):
``||``/``or`` 10, ``&&``/``and`` 15, comparisons and ``in`` 20, ``+ -`` 30, unary ``!``/``not``
50, ``* / %`` 60, unary ``- +`` 90, ``** ^`` 100 (right-associative), then member access,
indexing and calls; ``cond ? a : b``; a predicate's closure ``{# < 0.01}`` as the argument of
``all``/``any``/``none``/``one``/``count``/``filter``. Ranges, pipes, maps and ``??`` are not
read (a condition using them is reported as not understood).

:func:`parse_expr` gives a small tree; :func:`evaluate` runs it on one concrete ``result``
(used by :mod:`strategies.importers.conditions` to tell what Argo does without data).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import lark

_GRAMMAR = r"""
?start: ternary

?ternary: or_expr
        | or_expr "?" ternary ":" ternary      -> ternary

?or_expr: and_expr
        | or_expr OR and_expr                  -> binary
?and_expr: comparison
        | and_expr AND comparison              -> binary
?comparison: additive
        | comparison COMPARE additive          -> binary
?additive: negation
        | additive ADD_OP negation             -> binary
?negation: product
        | NOT negation                         -> unary
?product: sign
        | product MUL_OP sign                  -> binary
?sign: power
        | ADD_OP sign                          -> unary
?power: postfix
        | postfix POW_OP sign                  -> binary
?postfix: atom
        | postfix "[" ternary "]"              -> index
        | postfix DOT NAME                     -> member
?atom: NUMBER                                  -> number
     | STRING                                  -> string
     | "true"                                  -> true
     | "false"                                 -> false
     | "nil"                                   -> nil
     | "#"                                     -> pointer
     | NAME                                    -> name
     | NAME "(" [argument ("," argument)*] ")" -> call
     | "[" [ternary ("," ternary)*] "]"        -> array
     | "(" ternary ")"
?argument: ternary
         | "{" ternary "}"                     -> closure

OR: "||" | /or\b/
AND: "&&" | /and\b/
NOT: "!" | /not\b/
COMPARE: "==" | "!=" | "<=" | ">=" | "<" | ">" | /in\b/
ADD_OP: "+" | "-"
MUL_OP: "*" | "/" | "%"
POW_OP: "**" | "^"
DOT: "." | "?."
NUMBER: /0[xX][0-9a-fA-F_]+|(\d[\d_]*(\.\d[\d_]*)?|\.\d[\d_]*)([eE][+-]?\d+)?/
STRING: /"(\\.|[^"\\])*"|'(\\.|[^'\\])*'|`[^`]*`/
NAME: /(?!(true|false|nil|and|or|not|in)\b)[A-Za-z_$][A-Za-z0-9_$]*/

%ignore /\s+/
"""


class ExprError(ValueError):
    """The text is not an expression of the supported part of expr's language."""


# --------------------------------------------------------------------------- the tree


@dataclass(frozen=True)
class Num:
    value: float


@dataclass(frozen=True)
class Text:
    value: str


@dataclass(frozen=True)
class Literal:
    value: bool | None  # true, false, nil


@dataclass(frozen=True)
class Name:
    id: str


@dataclass(frozen=True)
class Pointer:
    """``#``: the element a predicate is applied to."""


@dataclass(frozen=True)
class Index:
    target: Any
    index: Any


@dataclass(frozen=True)
class Member:
    target: Any
    name: str


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Any, ...]


@dataclass(frozen=True)
class Closure:
    body: Any


@dataclass(frozen=True)
class Unary:
    op: str  # "!" (also for `not`), "-", "+"
    operand: Any


@dataclass(frozen=True)
class Binary:
    op: str  # "||" (also `or`), "&&" (also `and`), comparisons, "in", arithmetic
    left: Any
    right: Any


@dataclass(frozen=True)
class Ternary:
    condition: Any
    then: Any
    otherwise: Any


@dataclass(frozen=True)
class Array:
    items: tuple[Any, ...]


_SPELLINGS = {"or": "||", "and": "&&", "not": "!", "^": "**", "?.": "."}


class _Build(lark.Transformer):
    def number(self, items):
        text = str(items[0]).replace("_", "")
        return Num(float(int(text, 16)) if text[:2].lower() == "0x" else float(text))

    def string(self, items):
        raw = str(items[0])
        body = raw[1:-1]
        if raw[0] != "`":
            body = body.encode("utf-8").decode("unicode_escape")
        return Text(body)

    def true(self, _):
        return Literal(True)

    def false(self, _):
        return Literal(False)

    def nil(self, _):
        return Literal(None)

    def pointer(self, _):
        return Pointer()

    def name(self, items):
        return Name(str(items[0]))

    def call(self, items):
        return Call(str(items[0]), tuple(i for i in items[1:] if i is not None))

    def array(self, items):
        return Array(tuple(i for i in items if i is not None))

    def closure(self, items):
        return Closure(items[0])

    def index(self, items):
        return Index(items[0], items[1])

    def member(self, items):
        return Member(items[0], str(items[2]))

    def unary(self, items):
        op = str(items[0])
        return Unary(_SPELLINGS.get(op, op), items[1])

    def binary(self, items):
        op = str(items[1])
        return Binary(_SPELLINGS.get(op, op), items[0], items[2])

    def ternary(self, items):
        return Ternary(items[0], items[1], items[2])


_PARSER = lark.Lark(_GRAMMAR, parser="lalr", maybe_placeholders=True)


@lru_cache(maxsize=1024)
def parse_expr(text: str) -> Any:
    """The tree of an expression; raises :class:`ExprError` naming what could not be read."""
    try:
        return _Build().transform(_PARSER.parse(text))
    except lark.exceptions.UnexpectedInput as exc:
        column = getattr(exc, "column", None)
        where = f" at column {column}" if isinstance(column, int) and column > 0 else ""
        raise ExprError(f"cannot read it as an expr expression{where}") from None
    except lark.exceptions.LarkError as exc:  # a transformer failure (e.g. a bad escape)
        raise ExprError(f"cannot read it as an expr expression ({exc.__class__.__name__})") from None
    except RecursionError:
        raise ExprError("it nests too deeply to read") from None


def uses(tree: Any, *names: str) -> bool:
    """Whether the expression calls any of the functions ``names``."""
    if isinstance(tree, Call) and tree.name in names:
        return True
    if isinstance(tree, (Num, Text, Literal, Name, Pointer)):
        return False
    parts = tree.__dict__.values()
    return any(uses(p, *names) for part in parts for p in (part if isinstance(part, tuple) else (part,))
               if not isinstance(p, str))


# --------------------------------------------------------------------------- concrete evaluation


class EvalError(Exception):
    """Argo's evaluation fails (the measurement becomes an Error)."""


class Unknown(Exception):
    """The expression uses something this evaluator does not know how expr treats."""


_NUMBER = (int, float)


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, _NUMBER):
        raise EvalError(f"expected a number, got {type(value).__name__}")
    return float(value)


def _truth(value: Any) -> bool:
    if not isinstance(value, bool):
        raise EvalError(f"expected a bool, got {type(value).__name__}")
    return value


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, _NUMBER) and isinstance(b, _NUMBER) and not isinstance(a, bool) and not isinstance(b, bool):
        return float(a) == float(b)
    return type(a) is type(b) and a == b


_COMPARE = {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}
_ARITHMETIC = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
               "/": lambda a, b: a / b if b else math.copysign(math.inf, a) if a else math.nan,
               "%": lambda a, b: math.fmod(a, b) if b else _raise("integer divide by zero"),
               "**": lambda a, b: a ** b}


def _raise(message: str):
    raise EvalError(message)


def evaluate(tree: Any, result: Any) -> Any:
    """Run the expression as Argo does, with ``result`` the provider's value (a list of
    floats, a float, or None for nil). Raises :class:`EvalError` where Argo's evaluation
    fails and :class:`Unknown` where this evaluator cannot tell."""
    return _Eval(result).run(tree, None)


@dataclass
class _Eval:
    result: Any

    def run(self, node: Any, element: Any) -> Any:
        if isinstance(node, Num):
            return node.value
        if isinstance(node, Text):
            return node.value
        if isinstance(node, Literal):
            return node.value
        if isinstance(node, Pointer):
            return element
        if isinstance(node, Name):
            if node.id == "result":
                return self.result
            raise Unknown(f"unknown name {node.id!r}")
        if isinstance(node, Array):
            return [self.run(item, element) for item in node.items]
        if isinstance(node, Index):
            target, index = self.run(node.target, element), self.run(node.index, element)
            if not isinstance(target, list):
                raise EvalError("cannot index a value that is not a list")
            i = int(_number(index))
            if not -len(target) <= i < len(target):
                raise EvalError(f"index out of range: {i} (array length {len(target)})")
            return target[i]
        if isinstance(node, Member):
            raise Unknown("member access")
        if isinstance(node, Unary):
            value = self.run(node.operand, element)
            return (not _truth(value)) if node.op == "!" else (-_number(value) if node.op == "-" else _number(value))
        if isinstance(node, Ternary):
            return self.run(node.then if _truth(self.run(node.condition, element)) else node.otherwise, element)
        if isinstance(node, Binary):
            return self._binary(node, element)
        if isinstance(node, Call):
            return self._call(node, element)
        raise Unknown(type(node).__name__)

    def _binary(self, node: Binary, element: Any) -> Any:
        op = node.op
        left = self.run(node.left, element)
        if op in ("||", "&&"):
            if _truth(left) == (op == "||"):
                return left
            return _truth(self.run(node.right, element))
        right = self.run(node.right, element)
        if op == "==":
            return _equal(left, right)
        if op == "!=":
            return not _equal(left, right)
        if op == "in":
            if not isinstance(right, list):
                raise Unknown("`in` on something other than a list")
            return any(_equal(left, item) for item in right)
        if op in _COMPARE:
            return _COMPARE[op](_number(left), _number(right))
        if op in _ARITHMETIC:
            return _ARITHMETIC[op](_number(left), _number(right))
        raise Unknown(op)

    def _call(self, node: Call, element: Any) -> Any:
        name, args = node.name, node.args
        if name == "isNil":  # Argo's isNilFunc ignores its argument: is the whole result nil?
            return self.result is None
        if name == "default":  # Argo's defaultFunc: the default when the whole result is nil
            if len(args) != 2:
                raise EvalError("default takes two arguments")
            return self.run(args[1], element) if self.result is None else self.result
        if name in ("all", "any", "none", "one", "count", "filter") and len(args) == 2:
            items = self.run(args[0], element)
            if not isinstance(items, list):
                raise EvalError(f"{name}() needs a list")
            body = args[1].body if isinstance(args[1], Closure) else args[1]
            marks = [_truth(self.run(body, item)) for item in items]
            return {"all": all(marks), "any": any(marks), "none": not any(marks), "one": marks.count(True) == 1,
                    "count": float(marks.count(True)),
                    "filter": [item for item, mark in zip(items, marks) if mark]}[name]
        values = [self.run(arg, element) for arg in args]
        if name in ("asFloat", "float") and len(values) == 1:
            return _number(values[0])
        if name in ("asInt", "int") and len(values) == 1:
            number = _number(values[0])
            if not math.isfinite(number):
                raise Unknown("asInt of NaN or Inf")
            return float(math.trunc(number))
        if name in ("isNaN", "isInf") and len(values) == 1:
            number = _number(values[0])
            return math.isnan(number) if name == "isNaN" else math.isinf(number)
        if name == "abs" and len(values) == 1:
            return abs(_number(values[0]))
        if name == "len" and len(values) == 1:
            if isinstance(values[0], (list, str)):
                return float(len(values[0]))
            raise EvalError("invalid argument for len")
        if name in ("first", "last") and len(values) == 1 and isinstance(values[0], list):
            return (values[0][0] if name == "first" else values[0][-1]) if values[0] else None
        if name in ("max", "min", "sum", "mean", "median") and len(values) == 1 and isinstance(values[0], list):
            numbers = [_number(v) for v in values[0]]
            if name == "sum":
                return float(sum(numbers))
            if not numbers:
                raise Unknown(f"{name} of an empty list")
            if name in ("max", "min"):
                return max(numbers) if name == "max" else min(numbers)
            ordered = sorted(numbers)
            middle = len(ordered) // 2
            median = ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
            return sum(numbers) / len(numbers) if name == "mean" else median
        raise Unknown(f"function {name}")


__all__ = ["EvalError", "ExprError", "Unknown", "evaluate", "parse_expr", "uses"]
