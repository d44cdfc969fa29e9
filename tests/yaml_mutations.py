"""Ways to break valid YAML the way a careless user would, for fuzzing the loaders.

Two drivers over the same idea: ``mutated_lines`` is a hypothesis strategy that edits
lines (for property tests that shrink), and ``mutate_document`` edits a document with a
numpy ``Generator``, value by value, so a seeded fuzzer can replay any one case from its
seed. Value edits keep the YAML parseable most of the time, so the mutants get past the
parser to the schema, the cross-field checks and the simulator behind them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import yaml
from hypothesis import strategies as st
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode


@st.composite
def mutated_lines(draw, source: str, junk: st.SearchStrategy[str], max_edits: int, max_indent: int) -> str:
    """``source`` with one to ``max_edits`` random line edits: a line deleted, a value
    replaced by ``junk``, junk inserted, a line duplicated, or a line re-indented."""
    lines = source.splitlines()
    for _ in range(draw(st.integers(1, max_edits))):
        if not lines:
            lines = [draw(junk)]
            continue
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["delete", "value", "insert", "duplicate", "indent"]))
        if op == "delete":
            del lines[i]
        elif op == "value":
            head = lines[i].split(":", 1)[0] if ":" in lines[i] else lines[i]
            lines[i] = f"{head}: {draw(junk)}"
        elif op == "insert":
            lines.insert(i, draw(junk))
        elif op == "duplicate":
            lines.insert(i, lines[i])
        else:
            lines[i] = (" " * draw(st.integers(0, max_indent))) + lines[i].lstrip()
    return "\n".join(lines) + "\n"


# --- seeded, value-aware mutation ------------------------------------------------------------

EDGE_VALUES = (
    # numbers at and past every edge, as typed
    "0", "-1", "1", "0.5", "-0.5", "1e-320", "1e-9", "1e17", "1e20", "1e308", "99999999999999999999",
    ".inf", "-.inf", ".nan", "1e999",
    # YAML 1.1 readings: booleans, octal, base 60, dates, null
    "yes", "no", "on", "off", "true", "010", "0x1F", "1:30", "1:30:00", "2001-01-01", "~", "null", "''",
    # durations and percentages
    "0s", "1ms", "-5m", "100000d", "30 minutes", "5y", "1h30m", "150%", "-5%", "99.9%", "100%",
    # names and text
    "canary", "rolling", "blue-green", "web", "db", "a", "nope", "error-rates", "Web", "ü", "x" * 80,
    # structure where a scalar was
    "[]", "{}", "[1, 2]", "{kind: bogus}", "{kind: fixed, value: -1}", "[a, a]",
)
"""Replacement values tried in place of a scalar."""

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)$")
_UNITS = ("ms", "s", "m", "h", "d")


@dataclass(frozen=True)
class _Scalar:
    start: int
    end: int
    text: str
    is_key: bool


def _scalars(text: str) -> list[_Scalar] | None:
    """Every scalar of every document with its span in ``text``; None if it does not parse."""
    try:
        roots = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except (yaml.YAMLError, RecursionError):
        return None
    found: list[_Scalar] = []
    seen: set[int] = set()

    def walk(node: Node | None, is_key: bool = False) -> None:
        if node is None or id(node) in seen:
            return
        seen.add(id(node))
        if isinstance(node, ScalarNode):
            if node.start_mark.index < node.end_mark.index:  # not an empty value
                found.append(_Scalar(node.start_mark.index, node.end_mark.index,
                                     text[node.start_mark.index:node.end_mark.index], is_key))
        elif isinstance(node, MappingNode):
            for key, value in node.value:
                walk(key, is_key=True)
                walk(value)
        elif isinstance(node, SequenceNode):
            for item in node.value:
                walk(item)

    for root in roots:
        walk(root)
    return found


def _number_variant(text: str, rng: np.random.Generator) -> str | None:
    """The same number scaled, negated or nudged, as a user's slip of the finger would."""
    match = _DURATION.match(text)
    if match:
        number, unit = float(match[1]), match[2]
        if rng.random() < 0.5:
            return f"{number:g}{_UNITS[int(rng.integers(len(_UNITS)))]}"
        return f"{number * 10.0 ** int(rng.integers(-4, 5)):g}{unit}"
    try:
        value = float(text.rstrip("%"))
    except ValueError:
        return None
    percent = "%" if text.endswith("%") else ""
    choice = int(rng.integers(4))
    if choice == 0:
        scaled = value * 10.0 ** int(rng.choice([-6, -3, -2, -1, 1, 2, 3, 6]))
    elif choice == 1:
        scaled = -value
    elif choice == 2:
        scaled = value + float(rng.choice([-1, 1]))
    else:
        scaled = 0.0
    if float(scaled).is_integer() and "." not in text and "e" not in text.lower():
        return f"{int(scaled)}{percent}"
    return f"{scaled:g}{percent}"


def _line_edit(text: str, rng: np.random.Generator) -> tuple[str, str]:
    lines = text.splitlines()
    if not lines:
        return "x: 1\n", "replace the empty text"
    i = int(rng.integers(len(lines)))
    op = str(rng.choice(["delete", "duplicate", "indent", "insert"]))
    if op == "delete":
        del lines[i]
    elif op == "duplicate":
        lines.insert(i, lines[i])
    elif op == "indent":
        lines[i] = " " * int(rng.integers(0, 9)) + lines[i].lstrip()
    else:
        lines.insert(i, str(rng.choice(["extra: 1", "- x", "  unknown_field: 5", "name: twice", "&a", "'"])))
    return "\n".join(lines) + "\n", f"{op} line {i + 1}"


def mutate_document(text: str, rng: np.random.Generator, edits: int) -> tuple[str, list[str]]:
    """``text`` with ``edits`` edits drawn from ``rng``, and what each edit did (to read in a
    failure). Most edits replace one value: by an edge value, by the same number scaled or
    in another unit, or by another value of the document; some rename a key, and some
    delete, duplicate, re-indent or insert a line."""
    done: list[str] = []
    for _ in range(edits):
        scalars = _scalars(text)
        roll = rng.random()
        if not scalars or roll < 0.15:
            text, what = _line_edit(text, rng)
            done.append(what)
            continue
        values = [s for s in scalars if not s.is_key] or scalars
        keys = [s for s in scalars if s.is_key] or scalars
        if roll < 0.25:  # a key misspelt, or moved where another belongs
            target = keys[int(rng.integers(len(keys)))]
            if rng.random() < 0.5 and len(target.text) > 1:
                cut = int(rng.integers(len(target.text)))
                new = target.text[:cut] + target.text[cut + 1:]
            else:
                new = keys[int(rng.integers(len(keys)))].text
        else:
            # numbers and durations are where most slips change meaning without breaking
            # the syntax: aim at them half of the time
            numbers = [s for s in values if _number_variant(s.text, np.random.default_rng(0)) is not None]
            pool = numbers if numbers and rng.random() < 0.5 else values
            target = pool[int(rng.integers(len(pool)))]
            variant = _number_variant(target.text, rng) if rng.random() < 0.7 else None
            if variant is not None:
                new = variant
            elif rng.random() < 0.2:
                new = values[int(rng.integers(len(values)))].text
            else:
                new = str(rng.choice(EDGE_VALUES))
        line = text.count("\n", 0, target.start) + 1
        done.append(f"line {line}: {target.text!r} -> {new!r}")
        text = text[:target.start] + new + text[target.end:]
    return text, done
