"""Strategy files on disk: loading them with precise errors (a featureFlag strategy's flagd
flag file included), and the bundled library."""

from __future__ import annotations

import os
from pathlib import Path

from rolloutlab.errors import FieldError, InputError
from rolloutlab.strategies.flagd import FlagFile, check_flag, read_flag_document
from rolloutlab.strategies.spec import FeatureFlagStrategy, StrategySpec
from rolloutlab.strategies.yaml_input import (
    YamlDocument,
    format_field_path,
    load_model_file,
    parse_yaml_file,
    validate_document,
)

LIBRARY_DIR = Path(__file__).with_name("library")
"""The bundled strategies: ``blue-green``, ``canary`` and ``rolling``."""


def bundled_strategy_names() -> list[str]:
    return sorted(p.stem for p in LIBRARY_DIR.glob("*.yaml"))


def resolve_strategy_path(name_or_path: str | os.PathLike) -> Path:
    """A path as given, or the bundled strategy of that name (``canary``)."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return path
    bundled = LIBRARY_DIR / f"{path.name}.yaml"
    if bundled.exists():
        return bundled
    known = ", ".join(bundled_strategy_names())
    raise InputError(str(name_or_path), f"no such strategy file, and no bundled strategy of that name (bundled: {known})")


def load_strategy(name_or_path: str | os.PathLike) -> StrategySpec:
    """A strategy file (or bundled name), validated; bad input raises ``InputError``.

    A featureFlag strategy comes back with ``flags`` filled: its inline ``flags``, or the
    flagd file ``flagFile`` names (relative to the strategy file), checked as flagd's
    format and for the strategy's flag (see ``strategies.flagd``)."""
    path = resolve_strategy_path(name_or_path)
    spec = load_model_file(path, StrategySpec)
    flagged = spec.strategy.feature_flag
    if flagged is None:
        return spec
    doc = parse_yaml_file(path)[0]  # load_model_file took the file whole: one document
    flagged = _with_flags(flagged, doc, Path(path))
    return spec.model_copy(update={"strategy": spec.strategy.model_copy(update={"feature_flag": flagged})})


_AT = ("strategy", "featureFlag")


def _with_flags(flagged: FeatureFlagStrategy, doc: YamlDocument, path: Path) -> FeatureFlagStrategy:
    """``flagged`` with its flag file's content in ``flags``, every mistake an InputError:
    in the strategy file for inline flags, in the flag file for a file's."""
    for i, step in enumerate(flagged.steps):
        for j, m in enumerate(step.set_exposure.match if step.set_exposure else ()):
            if "." in m.header_name:  # JSON Logic's var reads "a.b" as b inside a
                where = (*_AT, "steps", i, "setExposure", "match", j, "headerName")
                raise InputError(doc.file, f"flagd targeting cannot match header {m.header_name!r}: JSON Logic "
                                           f"reads a dot in an attribute name as a path", line=doc.line_of(where),
                                 field=format_field_path(where, doc.data))
    if flagged.flags is not None:
        validate_document(doc, FlagFile, at=(*_AT, "flags"))
        flag_doc, prefix = doc, (*_AT, "flags")
    else:
        flag_path = path.parent / str(flagged.flag_file)
        if not flag_path.is_file():
            where = (*_AT, "flagFile")
            raise InputError(doc.file, f"flag file {str(flagged.flag_file)!r} not found (looked for {flag_path})",
                             line=doc.line_of(where), field=format_field_path(where, doc.data))
        flag_doc, prefix = read_flag_document(flag_path), ()
    content = flagged.flags if prefix else flag_doc.data
    try:
        check_flag(content, flagged.flag_key, flagged.on_variant, flagged.off_variant)
    except FieldError as exc:
        where = (*prefix, *exc.path)
        raise InputError(flag_doc.file, exc.message, line=flag_doc.line_of(where),
                         field=format_field_path(where, flag_doc.data)) from None
    return flagged.model_copy(update={"flags": content})
