"""``rolloutlab import``: strategy files from Argo Rollouts and Flagger manifests.

An import reads one multi-document YAML file holding an Argo ``Rollout`` (with the
``AnalysisTemplate`` / ``ClusterAnalysisTemplate`` documents it uses) or a Flagger
``Canary`` (with its ``MetricTemplate`` documents), and returns our
:class:`~strategies.spec.StrategySpec` plus a warning for every field that could not be
modelled exactly, each naming the line and the field path. Other documents (Services,
Ingresses, VirtualServices, Deployments) are ignored. Bad input raises
:class:`~strategies.yaml_input.InputError` and nothing else.

The mapping rules live in :mod:`strategies.importers.argo` and
:mod:`strategies.importers.flagger`; :func:`dump_strategy_yaml` writes the result as a
strategy file that loads back to an equal spec.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from rolloutlab.errors import InputError
from rolloutlab.strategies.importers.sources import SOURCES
from rolloutlab.strategies.importers.strategy_yaml import dump_strategy_yaml
from rolloutlab.strategies.spec import StrategySpec
from rolloutlab.strategies.yaml_input import YamlDocument, parse_yaml_documents, parse_yaml_file

__all__ = ["ImportResult", "dump_strategy_yaml", "import_manifest", "import_text"]


@dataclass(frozen=True)
class ImportResult:
    """An imported strategy, where it came from, and what could not be carried over."""

    spec: StrategySpec
    source: str  # "argo-rollout" or "flagger-canary"
    warnings: tuple[str, ...]  # "line 23: spec.strategy.canary.trafficRouting.istio: ..."


def import_manifest(path: str | os.PathLike) -> ImportResult:
    """Import the Rollout or Canary in a manifest file; bad input raises InputError."""
    return _import(parse_yaml_file(path))


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
    file = documents[0].file
    for doc in documents:
        if not isinstance(doc.data, dict):
            raise InputError(file, "every document must be a Kubernetes object (a mapping with apiVersion and kind)",
                             line=doc.start_line)
    found = [(d, source) for d in documents for source in SOURCES if source.detects(d.data)]
    if not found:
        kinds = ", ".join(_describe(d) for d in documents)
        wanted = ", ".join(source.describes for source in SOURCES)
        raise InputError(file, f"nothing to import: looked for {wanted}; this input holds {kinds}",
                         line=documents[0].start_line, field="kind")
    if len(found) > 1:
        lines = ", ".join(f"{d.file}:{d.start_line}" for d, _ in found)
        raise InputError(found[1][0].file, f"found {len(found)} things to import (at {lines}); import one at a time",
                         line=found[1][0].start_line, field="kind")
    main, source = found[0]
    warnings: list[str] = []
    spec = source.imports(main, documents, warnings)
    return ImportResult(spec, source.name, tuple(warnings))
