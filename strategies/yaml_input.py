"""Reading user YAML so that every mistake points at a file, a line and a field.

Users write scenarios and strategy specs by hand. When one is wrong, the message must
say where (``scenarios/x.yaml:12``), what (``traffic.rps``) and why (pydantic's own
words), and nothing but :class:`InputError` may escape: a traceback from deep inside a
YAML parser is a bug report waiting to happen.

How it works: PyYAML's composer (``SafeLoader``) builds the node graph, which carries a
source mark per node; the same ``SafeLoader`` then constructs plain Python data from it
(no arbitrary objects). A walk over the nodes records the line of every key and list item
by its path, so a pydantic error location such as ``('services', 0, 'replicas')`` maps
back to the line the user typed.

YAML 1.1 rules (PyYAML's) are kept as they are, with these guards:

- duplicate keys in one mapping are errors (PyYAML silently keeps the last one);
- anchors, aliases and ``<<`` merge keys work; recursive aliases and alias "bombs"
  that expand beyond :data:`MAX_EXPANDED_NODES` are errors instead of hangs;
- scalars that YAML 1.1 turns into something the author probably did not mean
  (``yes``/``no``/``on``/``off`` -> bool, ``010`` -> 8, ``1:30`` -> 90, ``2024-01-01`` ->
  date) are remembered, and an error about such a value says how YAML read it;
- integers with a leading zero, which YAML 1.1 reads as octal (``010`` is 8), are refused
  wherever a document is validated: nobody writes ``replicas: 010`` meaning 8, and after
  parsing a schema cannot tell it from 8 (manifests read by the importers keep YAML's
  reading: there ``defaultMode: 0644`` is octal on purpose). Base 60 stays: ``1:30:00``
  is the 5400 seconds it looks like;
- empty documents (nothing between two ``---``) are skipped; a file with no document at
  all is an error.

Validators that check several fields together (pydantic ``model_validator``) can point at
the offending sub-field by raising :class:`FieldError` with a path relative to the model.
"""

from __future__ import annotations

import datetime
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pydantic
import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from rolloutlab.errors import FieldError, InputError

__all__ = [
    "MAX_EXPANDED_NODES",
    "FieldError",
    "InputError",
    "YamlDocument",
    "format_field_path",
    "load_model_file",
    "parse_duration",
    "parse_yaml_documents",
    "parse_yaml_file",
    "validate_document",
]

M = TypeVar("M", bound=pydantic.BaseModel)
Path = tuple[Any, ...]

#: Largest number of nodes a document may expand to once aliases are followed. Real
#: configuration files are a few hundred nodes; this only stops "billion laughs" input.
MAX_EXPANDED_NODES = 200_000

_MERGE_TAG = "tag:yaml.org,2002:merge"
_NULL_TAG = "tag:yaml.org,2002:null"
_BOOL_TAG = "tag:yaml.org,2002:bool"
_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_PLAIN_BOOLS = frozenset({"true", "false"})


@dataclass(frozen=True)
class YamlDocument:
    """One YAML document: its data and where each part of it came from."""

    data: Any
    """Plain Python data (dict/list/str/int/float/bool/None, dates for YAML timestamps)."""
    file: str
    """The name errors should show for this input (usually the path as the user gave it)."""
    start_line: int
    """1-based line where the document's content starts."""
    lines: Mapping[Path, int]
    """Path of keys/indices -> 1-based line of that node (the key's line for entries)."""
    coerced_scalars: Mapping[Path, str] = field(default_factory=dict)
    """Path -> source text of values YAML 1.1 read as bool/octal/base-60/date."""
    coerced_keys: Mapping[Path, str] = field(default_factory=dict)
    """Path -> source text of mapping keys YAML 1.1 read that way (``on:`` -> True)."""

    def line_of(self, path: Sequence[str | int]) -> int:
        """Line of the deepest prefix of ``path`` that exists in the document."""
        path = tuple(path)
        for n in range(len(path), -1, -1):
            line = self.lines.get(path[:n])
            if line is not None:
                return line
        return self.start_line


class _Loader(yaml.SafeLoader):
    """SafeLoader whose construction failures always carry a source mark."""

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except yaml.YAMLError:
            raise
        except RecursionError:
            raise
        except Exception as exc:  # PyYAML lets ValueError etc. escape for bad scalars
            kind = node.tag.rsplit(":", 1)[-1]
            detail = f": {exc}" if isinstance(exc, ValueError) else ""
            text = node.value if isinstance(node, ScalarNode) else "this node"
            raise ConstructorError(
                None, None, f"cannot read {text!r} as {kind}{detail}", node.start_mark
            ) from exc


def _cloudformation_tag(loader: _Loader, suffix: str, node: Node) -> dict[str, Any]:
    """CloudFormation's short-form functions (``!Ref x``, ``!Sub '...'``, ``!GetAtt a.b``)
    read as the long form AWS documents they stand for (``{Ref: x}``, ``{Fn::Sub: ...}``),
    so a template written either way imports the same."""
    if isinstance(node, ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
    elif isinstance(node, SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {"Ref" if suffix == "Ref" else f"Fn::{suffix}": value}


_Loader.add_multi_constructor("!", _cloudformation_tag)


def _scalar_key(constructor: SafeConstructor, node: Node) -> tuple[bool, Any]:
    """Construct a mapping key on its own; (False, None) when it is not a plain scalar."""
    if not isinstance(node, ScalarNode):
        return False, None
    try:
        return True, constructor.construct_object(node, deep=True)
    except Exception:  # construction proper reports it with a mark
        return False, None


def _check_structure(node: Node, file: str) -> None:
    """Reject duplicate keys, recursive aliases and alias bombs before constructing."""
    constructor = SafeConstructor()
    sizes: dict[int, int] = {}
    on_stack: set[int] = set()

    def visit(n: Node) -> int:
        key = id(n)
        if key in sizes:
            return sizes[key]
        if key in on_stack:
            raise InputError(
                file, "an alias refers to a node that contains it (recursive alias)",
                line=n.start_mark.line + 1,
            )
        on_stack.add(key)
        total = 1
        if isinstance(n, MappingNode):
            seen: dict[tuple[type, Any], int] = {}
            for key_node, value_node in n.value:
                ok, k = (False, None) if key_node.tag == _MERGE_TAG else _scalar_key(
                    constructor, key_node
                )
                line = key_node.start_mark.line + 1
                if ok:
                    ident = (type(k), k)
                    try:
                        first = seen.get(ident)
                    except TypeError:  # unhashable: construction reports it
                        first, ident = None, None
                    if first is not None:
                        raise InputError(
                            file, f"duplicate key {k!r} (first defined on line {first})",
                            line=line,
                        )
                    if ident is not None:
                        seen[ident] = line
                total += visit(key_node) + visit(value_node)
        elif isinstance(n, SequenceNode):
            for item in n.value:
                total += visit(item)
        on_stack.discard(key)
        sizes[key] = total
        if total > MAX_EXPANDED_NODES:
            raise InputError(
                file,
                f"document expands to more than {MAX_EXPANDED_NODES} nodes through aliases",
                line=n.start_mark.line + 1,
            )
        return total

    visit(node)


def _is_coerced(node: ScalarNode) -> bool:
    """Whether YAML 1.1 implicitly read this plain scalar as something surprising."""
    if node.style is not None:  # quoted or block scalars are strings as written
        return False
    text = node.value
    if node.tag == _BOOL_TAG:
        return text.lower() not in _PLAIN_BOOLS
    if node.tag in (_INT_TAG, _FLOAT_TAG):
        body = text.lstrip("+-").replace("_", "")
        octal = len(body) > 1 and body[0] == "0" and body[1:2].isdigit()
        return octal or ":" in body
    return node.tag == _TIMESTAMP_TAG


def _map_lines(node: Node) -> tuple[dict[Path, int], dict[Path, str], dict[Path, str]]:
    """Record the line of every key and list item, by path, in a constructed document."""
    constructor = SafeConstructor()
    lines: dict[Path, int] = {(): node.start_mark.line + 1}
    coerced: dict[Path, str] = {}
    coerced_keys: dict[Path, str] = {}
    visited: set[int] = set()

    def walk(n: Node, path: Path) -> None:
        if isinstance(n, ScalarNode):
            if _is_coerced(n):
                coerced[path] = n.value
            return
        if id(n) in visited:  # an alias: its content is mapped where the anchor is
            return
        visited.add(id(n))
        if isinstance(n, MappingNode):
            # After construction merged ("<<") entries come first and own keys override.
            for key_node, value_node in n.value:
                ok, k = _scalar_key(constructor, key_node)
                if not ok:
                    continue
                child = (*path, k)
                lines[child] = key_node.start_mark.line + 1
                if isinstance(key_node, ScalarNode) and _is_coerced(key_node):
                    coerced_keys[child] = key_node.value
                walk(value_node, child)
        elif isinstance(n, SequenceNode):
            for i, item in enumerate(n.value):
                child = (*path, i)
                lines[child] = item.start_mark.line + 1
                walk(item, child)

    walk(node, ())
    return lines, coerced, coerced_keys


def _is_empty_document(node: Node) -> bool:
    return (
        isinstance(node, ScalarNode)
        and node.tag == _NULL_TAG
        and node.value == ""
        and node.style is None
    )


def _yaml_error(exc: yaml.YAMLError, text: str, file: str) -> InputError:
    if isinstance(exc, yaml.reader.ReaderError):
        line = text.count("\n", 0, max(exc.position, 0)) + 1
        return InputError(file, f"YAML cannot read this text: {exc.reason}", line=line)
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        context = exc.context if exc.problem else None
        syntax = isinstance(exc, (yaml.scanner.ScannerError, yaml.parser.ParserError))
        message = f"YAML {'syntax ' if syntax else ''}error: {problem}"
        if context:
            cmark = exc.context_mark
            if cmark is not None and mark is not None and cmark.line != mark.line:
                message += f" ({context} on line {cmark.line + 1})"
            else:
                message += f" ({context})"
        return InputError(file, message, line=None if mark is None else mark.line + 1)
    return InputError(file, f"YAML error: {exc}")


def parse_yaml_documents(text: str, file: str) -> list[YamlDocument]:
    """Parse every document of a YAML stream, remembering the line of each field.

    Raises :class:`InputError` (with a line when one is known) for syntax errors,
    duplicate keys, unreadable values, recursive or exploding aliases, and for input that
    holds no document at all.
    """
    documents: list[YamlDocument] = []
    loader: _Loader | None = None
    if "\t" in text and text.lstrip().startswith(("{", "[")):
        # JSON (a YAML subset) may be indented with tabs, which YAML refuses; a JSON string
        # cannot hold a raw tab, so every tab here is layout and a space keeps every line
        text = text.replace("\t", " ")
    try:
        loader = _Loader(text)
        while loader.check_node():
            node = loader.get_node()
            if node is None or _is_empty_document(node):
                continue
            _check_structure(node, file)
            data = loader.construct_document(node)
            lines, coerced, coerced_keys = _map_lines(node)
            documents.append(
                YamlDocument(
                    data=data,
                    file=file,
                    start_line=node.start_mark.line + 1,
                    lines=lines,
                    coerced_scalars=coerced,
                    coerced_keys=coerced_keys,
                )
            )
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, text, file) from None
    except RecursionError:
        raise InputError(file, "YAML is nested too deeply") from None
    finally:
        if loader is not None:
            loader.dispose()
    if not documents:
        raise InputError(file, "empty input: no YAML document found", line=1)
    return documents


def read_input_text(file: str, what: str = "file") -> str:
    """A user's input file as text; unreadable or not UTF-8 is an :class:`InputError`."""
    try:
        with open(file, encoding="utf-8") as fh:
            return fh.read()
    except UnicodeDecodeError as exc:
        raise InputError(file, f"file is not UTF-8 text: {exc.reason}") from None
    except OSError as exc:
        raise InputError(file, f"cannot read {what}: {exc.strerror or exc}") from None


def parse_yaml_file(path: str | os.PathLike[str]) -> list[YamlDocument]:
    """Read and parse a YAML file; a missing or unreadable file is an :class:`InputError`."""
    file = os.fspath(path)
    return parse_yaml_documents(read_input_text(file), file)


def format_field_path(path: Sequence[str | int], data: Any = None) -> str:
    """Join a path the way users write it: ``canary.steps[2].setWeight``.

    Integers index lists (``[2]``); when ``data`` is given, an integer that is a mapping
    key is written as a key (``ports.8080``). Keys a user cannot see in a plain path are
    written as YAML would show them: an empty key as ``''``, a null key as ``null``.
    """
    out = ""
    node = data
    for part in path:
        is_index = isinstance(part, int) and not isinstance(part, bool)
        if data is not None:
            is_index = isinstance(node, list) and is_index
        key = _key_text(part)
        out += f"[{part}]" if is_index else (f".{key}" if out else key)
        node = _child(node, part)
    return out


def _key_text(part: Any) -> str:
    if part is None:
        return "null"
    if isinstance(part, str) and (part == "" or part != part.strip()):
        return repr(part)
    return str(part)


_MISSING = object()


def _child(node: Any, part: Any) -> Any:
    if isinstance(node, dict):
        try:
            return node.get(part, _MISSING)
        except TypeError:
            return _MISSING
    if isinstance(node, list) and isinstance(part, int) and not isinstance(part, bool):
        return node[part] if -len(node) <= part < len(node) else _MISSING
    return _MISSING


def _data_path(data: Any, loc: Sequence[Any], error_type: str) -> Path:
    """Turn a pydantic location into a path through the data.

    pydantic inserts names that are not in the data: the tag of a discriminated union
    (``('profile', 'diurnal', 'amplitude')``) or a union member's type. Those are dropped;
    a trailing name that is absent from the data is kept when it names a missing field.
    """
    path: list[Any] = []
    node = data
    last = len(loc) - 1
    for i, part in enumerate(loc):
        if not isinstance(node, (dict, list)):
            break
        child = _child(node, part)
        if child is not _MISSING:
            if isinstance(node, dict):  # pydantic reports a `True` key as 1: use the key
                part = next((k for k in node if k == part), part)
            path.append(part)
            node = child
            continue
        if i < last:
            continue  # a union tag or member name
        is_tag = isinstance(node, dict) and isinstance(part, str) and any(
            v == part for v in node.values() if isinstance(v, str)
        )
        if error_type == "missing" or not is_tag:
            path.append(part)
    return tuple(path)


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (datetime.date, datetime.datetime)):
        return "a date"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    return repr(value)


def _error_message(doc: YamlDocument, error: Mapping[str, Any], path: Path) -> str:
    ctx = error.get("ctx") or {}
    exc = ctx.get("error")
    if isinstance(exc, FieldError):
        message = exc.message
    else:
        message = str(error.get("msg", "invalid value"))
        if error.get("type") == "value_error":
            message = re.sub(r"^Value error, ", "", message)
    kind = error.get("type")
    if kind == "invalid_key" and path in doc.coerced_keys:
        text, value = doc.coerced_keys[path], path[-1]
    elif kind != "missing" and path in doc.coerced_scalars:
        text, value = doc.coerced_scalars[path], doc.data
        for part in path:
            value = _child(value, part)
    else:
        return message
    advice = "; quote it to keep it as text" if kind in ("string_type", "invalid_key") else ""
    return message + f" (YAML 1.1 reads unquoted {text!r} as {_describe(value)}{advice})"


def _refuse_octal(doc: YamlDocument, prefix: Path) -> None:
    """An InputError for the first integer under ``prefix`` written with a leading zero
    (``010``), which YAML 1.1 reads as octal (8)."""
    for path, text in sorted(doc.coerced_scalars.items(), key=lambda item: doc.line_of(item[0])):
        if path[: len(prefix)] != prefix:
            continue
        value: Any = doc.data
        for part in path:
            value = _child(value, part)
        if isinstance(value, bool) or not isinstance(value, int) or ":" in text:
            continue  # 010.5 is 10.5 either way; 1:30:00 is base 60
        sign = "-" if text.startswith("-") else ""
        decimal = sign + (text.lstrip("+-").replace("_", "").lstrip("0") or "0")
        message = (f"YAML 1.1 reads unquoted {text!r} as the octal number {value}: write {decimal} "
                   f"(or {value}) without a leading zero, or quote it for text")
        raise InputError(doc.file, message, line=doc.line_of(path), field=format_field_path(path, doc.data) or None)


def validate_document(
    doc: YamlDocument, model: type[M], *, at: Sequence[str | int] = ()
) -> M:
    """Validate the data at path ``at`` of ``doc`` as ``model``.

    The first pydantic error becomes an :class:`InputError` naming the field path (from
    the document root, e.g. ``canary.steps[2].setWeight``), its line, and pydantic's
    message, followed by "(and N more errors)" when there were others.
    """
    prefix = tuple(at)
    _refuse_octal(doc, prefix)
    data = doc.data
    for i, part in enumerate(prefix):
        child = _child(data, part)
        if child is _MISSING:
            raise InputError(
                doc.file,
                "missing section",
                line=doc.line_of(prefix[:i]),
                field=format_field_path(prefix[: i + 1], doc.data),
            )
        data = child
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        loc: list[Any] = list(first.get("loc", ()))
        ctx_error = (first.get("ctx") or {}).get("error")
        if isinstance(ctx_error, FieldError):
            loc.extend(ctx_error.path)
        if first.get("type") in ("union_tag_invalid",):
            loc.append(str((first.get("ctx") or {}).get("discriminator", "")).strip("'"))
        path = prefix + _data_path(data, loc, str(first.get("type")))
        message = _error_message(doc, first, path)
        if len(errors) > 1:
            more = len(errors) - 1
            message += f" (and {more} more error{'s' if more > 1 else ''})"
        raise InputError(
            doc.file,
            message,
            line=doc.line_of(path),
            field=format_field_path(path, doc.data) or None,
        ) from None


def load_model_file(path: str | os.PathLike[str], model: type[M]) -> M:
    """Read a single-document YAML file and validate it as ``model``."""
    documents = parse_yaml_file(path)
    if len(documents) != 1:
        raise InputError(
            os.fspath(path),
            f"expected exactly one YAML document, found {len(documents)}",
            line=documents[1].start_line,
        )
    return validate_document(documents[0], model)


# Durations have one home: strategies.durations (re-exported here for scenario code).
from rolloutlab.strategies.durations import parse_duration  # noqa: E402

