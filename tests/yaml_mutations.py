"""Hypothesis strategies that break valid YAML line by line, for fuzzing the loaders."""

from __future__ import annotations

from hypothesis import strategies as st


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
