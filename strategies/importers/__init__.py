"""``rolloutlab import``: strategy files from Argo Rollouts and Flagger manifests.

An import reads one or several multi-document YAML (or JSON) files, or directories of them
(as ``kubectl apply -f`` does: a directory means its ``*.yaml``, ``*.yml`` and ``*.json``
files in name order, not its subdirectories), and pools their documents: an Argo
``Rollout`` with the ``AnalysisTemplate`` / ``ClusterAnalysisTemplate`` documents it uses,
or a Flagger ``Canary`` with its ``MetricTemplate`` documents, wherever each is written.
It returns our :class:`~strategies.spec.StrategySpec` plus a warning for every field that
could not be modelled exactly, each naming the line and the field path (and the file, for
a document in another file than the Rollout or Canary). Other documents (Services,
Ingresses, VirtualServices, Deployments) are ignored. Bad input raises
:class:`~strategies.yaml_input.InputError` and nothing else.

The mapping rules live in :mod:`strategies.importers.argo` and
:mod:`strategies.importers.flagger`; :func:`dump_strategy_yaml` writes the result as a
strategy file that loads back to an equal spec.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from rolloutlab.errors import InputError
from rolloutlab.strategies.importers.sources import SOURCES
from rolloutlab.strategies.importers.strategy_yaml import dump_strategy_yaml
from rolloutlab.strategies.spec import StrategySpec
from rolloutlab.strategies.yaml_input import YamlDocument, parse_yaml_documents, parse_yaml_file

__all__ = ["ImportResult", "dump_strategy_yaml", "import_manifest", "import_text", "manifest_files"]

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")  # what kubectl apply -f reads from a directory


@dataclass(frozen=True)
class ImportResult:
    """An imported strategy, where it came from, and what could not be carried over."""

    spec: StrategySpec
    source: str  # "argo-rollout" or "flagger-canary"
    warnings: tuple[str, ...]  # "line 23: spec.strategy.canary.trafficRouting.istio: ..."


def import_manifest(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> ImportResult:
    """Import the Rollout or Canary in one manifest file, or in the documents of several
    files and directories together; bad input raises InputError."""
    return _import([doc for file in manifest_files(paths) for doc in parse_yaml_file(file)])


def manifest_files(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> list[str]:
    """The files an import reads, in order: each file as given, each directory's manifest
    files sorted by name (not recursive, as ``kubectl apply -f DIR``); a file given twice
    is read once."""
    given = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not given:
        raise InputError("rolloutlab", "no manifest file given")
    files: list[str] = []
    for path in given:
        name = os.fspath(path)
        if os.path.isdir(name):
            found = sorted(entry.path for entry in os.scandir(name)
                           if entry.is_file() and entry.name.lower().endswith(MANIFEST_SUFFIXES))
            if not found:
                raise InputError(name, f"this directory holds no {', '.join(MANIFEST_SUFFIXES)} file")
            files += found
        else:
            files.append(name)
    unique: dict[str, str] = {}
    for file in files:
        unique.setdefault(os.path.realpath(file), file)
    return list(unique.values())


def import_text(text: str, file: str = "<text>") -> ImportResult:
    """Import a manifest given as text; ``file`` is the name errors and warnings show."""
    return _import(parse_yaml_documents(text, file))


def _describe(doc: YamlDocument) -> str:
    data = doc.data
    if not isinstance(data, dict):
        return f"a {type(data).__name__} on line {doc.start_line}"
    kind = data.get("kind", "an object without kind")
    name = data.get("metadata", {}).get("name") if isinstance(data.get("metadata"), dict) else None
    return f"{kind} {name!r}" if isinstance(name, str) else str(kind)


def _import(documents: list[YamlDocument]) -> ImportResult:
    for doc in documents:
        if not isinstance(doc.data, dict):
            raise InputError(doc.file, "every document must be a Kubernetes object (a mapping with apiVersion and "
                                       "kind)", line=doc.start_line)
    found = [(d, source) for d in documents for source in SOURCES if source.detects(d.data)]
    if any(not source.companion for _, source in found):  # companions are read by the main object's importer
        found = [(d, source) for d, source in found if not source.companion]
    if not found:
        kinds = ", ".join(_describe(d) for d in documents)
        wanted = ", ".join(source.describes for source in SOURCES)
        files = list(dict.fromkeys(d.file for d in documents))
        where = "this input holds" if len(files) == 1 else f"{', '.join(files)} hold"
        raise InputError(documents[0].file, f"nothing to import: looked for {wanted}; {where} {kinds}",
                         line=documents[0].start_line, field="kind")
    if len(found) > 1:
        lines = ", ".join(f"{d.file}:{d.start_line}" for d, _ in found)
        raise InputError(found[1][0].file, f"found {len(found)} things to import (at {lines}); import one at a time",
                         line=found[1][0].start_line, field="kind")
    main, source = found[0]
    warnings: list[str] = []
    spec = source.imports(main, documents, warnings)
    return ImportResult(spec, source.name, tuple(warnings))
