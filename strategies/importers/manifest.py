"""Reading Kubernetes manifests by hand, so every mistake and every approximation names its
line and field.

Importers never hand a manifest to pydantic directly: an Argo Rollout or a Flagger Canary
is a different schema from ours, and a pydantic error about *our* field names would point
the user at a field they never wrote. Instead a :class:`ManifestReader` reads one YAML
document field by field (type-checked, with the line of each field), and the importer
builds our strategy as plain data while an :class:`Origins` map remembers which manifest
field each part came from. :func:`validate_strategy` then validates the whole spec once;
if our rules reject it, the error is reported at the manifest field that produced it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pydantic

from rolloutlab.errors import FieldError, InputError
from rolloutlab.strategies.durations import parse_duration
from rolloutlab.strategies.spec import StrategySpec
from rolloutlab.strategies.yaml_input import YamlDocument, format_field_path

Path = tuple[Any, ...]
MISSING: Any = object()


def describe_type(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the text {value!r}"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    return type(value).__name__


@dataclass
class ManifestReader:
    """Typed access to one manifest document; every failure is an :class:`InputError`.

    ``label`` prefixes field paths of documents other than the one being imported
    (``AnalysisTemplate/success-rate``), so a line number is never ambiguous. ``main_file``
    is the file of the document being imported: a warning about a document from another
    file (an import of several files) names its file, ``line 12 of templates.yaml: ...``.
    """

    doc: YamlDocument
    warnings: list[str]
    label: str = ""
    main_file: str | None = None

    # ------------------------------------------------------------------ where

    def at(self, path: Path) -> Any:
        node = self.doc.data
        for part in path:
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                node = node[part]
            else:
                return MISSING
        return node

    def has(self, path: Path) -> bool:
        return self.at(path) is not MISSING

    def line(self, path: Path) -> int:
        return self.doc.line_of(path)

    def where(self, path: Path) -> str:
        text = format_field_path(path, self.doc.data)
        if self.label:
            return f"{self.label} {text}" if text else self.label
        return text or "(document)"

    def warn(self, path: Path, message: str) -> None:
        """Record an approximation: ``line 23: spec.strategy...: message`` (``line 23 of
        other.yaml: ...`` for a document from another file than ``main_file``)."""
        elsewhere = self.main_file is not None and self.doc.file != self.main_file
        text = f"line {self.line(path)}{f' of {self.doc.file}' if elsewhere else ''}: {self.where(path)}: {message}"
        if text not in self.warnings:
            self.warnings.append(text)

    def error(self, path: Path, message: str) -> InputError:
        return InputError(self.doc.file, message, line=self.line(path), field=self.where(path))

    # ------------------------------------------------------------------ typed reads

    def mapping(self, path: Path, *, required: bool = False) -> dict | None:
        value = self.at(path)
        if value is MISSING or (value is None and not required):
            if required:
                raise self.error(path, "is required")
            return None
        if not isinstance(value, dict):
            raise self.error(path, f"must be a mapping, got {describe_type(value)}")
        for key in value:
            if not isinstance(key, str):
                raise self.error(path, f"keys must be text, got {describe_type(key)}")
        return value

    def sequence(self, path: Path) -> list | None:
        value = self.at(path)
        if value is MISSING or value is None:
            return None
        if not isinstance(value, list):
            raise self.error(path, f"must be a list, got {describe_type(value)}")
        return value

    def string(self, path: Path, *, required: bool = False) -> str | None:
        value = self.at(path)
        if value is MISSING or value is None:
            if required:
                raise self.error(path, "is required")
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.error(path, f"must be non-empty text, got {describe_type(value)}")
        return value

    def boolean(self, path: Path) -> bool | None:
        value = self.at(path)
        if value is MISSING or value is None:
            return None
        if not isinstance(value, bool):
            raise self.error(path, f"must be true or false, got {describe_type(value)}")
        return value

    def integer(self, path: Path, *, minimum: int | None = None, maximum: int | None = None,
                text_ok: bool = False, required: bool = False) -> int | None:
        """An integer; ``text_ok`` accepts Kubernetes' int-or-string form (``"5"``)."""
        value = self.at(path)
        if value is MISSING or value is None:
            if required:
                raise self.error(path, "needs a whole number")
            return None
        number = as_integer(value, text_ok=text_ok)
        if number is None:
            raise self.error(path, f"must be a whole number, got {describe_type(value)}")
        if minimum is not None and number < minimum:
            raise self.error(path, f"must be at least {minimum}, got {number}")
        if maximum is not None and number > maximum:
            raise self.error(path, f"must be at most {maximum}, got {number}")
        return number

    def number(self, path: Path) -> float | None:
        value = self.at(path)
        if value is MISSING or value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.error(path, f"must be a finite number, got {describe_type(value)}")
        return float(value)

    def duration(self, path: Path) -> float | None:
        """Seconds from a number of seconds or a Go duration (``30s``, ``5m``, ``1h``)."""
        value = self.at(path)
        if value is MISSING or value is None:
            return None
        try:
            return parse_duration(value)
        except (ValueError, TypeError, OverflowError) as exc:
            raise self.error(path, str(exc)) from None

    def keys(self, path: Path) -> list[str]:
        node = self.mapping(path)
        return list(node) if node else []

    def string_match(self, path: Path, kinds: Sequence[str] = ("exact", "prefix", "regex")) -> dict[str, str]:
        """A string match as Argo Rollouts and Istio write it: a mapping with one of ``kinds``
        (``{exact: internal}``). Empty text counts as not given, as in their Go types; the
        caller converts kinds rolloutlab does not have (Istio's ``suffix``)."""
        self.mapping(path, required=True)
        self.report_unmodelled(path, kinds)
        given: dict[str, str] = {}
        for kind in kinds:
            value = self.at((*path, kind))
            if value is MISSING or value is None or value == "":
                continue
            if not isinstance(value, str):
                raise self.error((*path, kind), f"must be text, got {describe_type(value)}; quote it")
            given[kind] = value
        if len(given) != 1:
            got = ", ".join(given) or "none of them"
            raise self.error(path, f"takes exactly one of {', '.join(kinds)}; got {got}")
        return given

    def report_unmodelled(self, path: Path, handled: Iterable[str], silent: Iterable[str] = (),
                          reasons: dict[str, str] | None = None) -> None:
        """Warn about every key of the mapping at ``path`` that is neither handled nor silent."""
        handled, silent, reasons = set(handled), set(silent), reasons or {}
        for key in self.keys(path):
            if key in handled or key in silent:
                continue
            reason = reasons.get(key, "not modelled by rolloutlab; ignored")
            self.warn((*path, key), reason)


def replaces(reader: ManifestReader, earlier: YamlDocument | None, what: str) -> bool:
    """Whether the template read by ``reader`` is kept over an ``earlier`` one of the same
    name: as with ``kubectl apply``, a later file's object replaces an earlier file's (with a
    warning when they differ); twice in one file is a mistake."""
    if earlier is None:
        return True
    here = reader.doc
    if earlier.file == here.file:
        raise reader.error(("metadata", "name"), f"{what} is defined twice (first on line {earlier.start_line})")
    if earlier.data == here.data:
        return False
    reader.warn(("metadata", "name"), f"{what} is also defined at {earlier.file}:{earlier.start_line}; as kubectl "
                                      "apply would, the later one (this one) is used")
    return True


def as_integer(value: Any, *, text_ok: bool = False) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        return int(value)
    if text_ok and isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d{1,18}\s*", value):
        return int(value)
    return None


# --------------------------------------------------------------------------- origins


@dataclass
class Origins:
    """Which manifest field each part of the built strategy came from."""

    by_path: dict[Path, tuple[ManifestReader, Path]] = field(default_factory=dict)

    def note(self, out_path: Path, reader: ManifestReader, source: Path) -> None:
        self.by_path[tuple(out_path)] = (reader, tuple(source))

    def note_tree(self, out_path: Path, reader: ManifestReader, source: Path, built: Any) -> None:
        """Note ``built`` (copied from ``source`` under the same keys) and every part of it,
        so that a rejection deep inside names the manifest field it came from."""
        self.note(out_path, reader, source)
        parts = built.items() if isinstance(built, dict) else enumerate(built) if isinstance(built, list) else ()
        for key, value in parts:
            here = (*source, key)
            self.note_tree((*out_path, key), reader, here if reader.has(here) else source, value)

    def locate(self, out_path: Path) -> tuple[ManifestReader, Path] | None:
        for n in range(len(out_path), -1, -1):
            found = self.by_path.get(tuple(out_path[:n]))
            if found is not None:
                return found
        return None


def _walk(data: Any, loc: Sequence[Any]) -> Path:
    """The part of a pydantic location that exists in ``data`` (union member names dropped)."""
    path: list[Any] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            node = node[part]
            path.append(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
            path.append(part)
    return tuple(path)


def validate_strategy(data: dict, origins: Origins, file: str) -> StrategySpec:
    """Validate the built strategy; a rejection names the manifest field it came from."""
    try:
        return StrategySpec.model_validate(data)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        loc = list(first.get("loc", ()))
        blamed = (first.get("ctx") or {}).get("error")
        if isinstance(blamed, FieldError):  # a validator that names the sub-field at fault
            loc.extend(blamed.path)
            message = blamed.message
        else:
            message = re.sub(r"^Value error, ", "", str(first.get("msg", "invalid value")))
        out_path = _walk(data, loc)
        located = origins.locate(out_path)
        ours = format_field_path(out_path, data)
        if located is None:
            raise InputError(file, f"{ours}: {message}" if ours else message, line=None) from None
        reader, source = located
        raise reader.error(source, f"{message} (as rolloutlab's {ours})" if ours else message) from None
