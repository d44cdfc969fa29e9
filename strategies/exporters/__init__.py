"""Exporters: a strategy spec written back as the manifests of the systems users run (Argo Rollouts, Flagger).

``export_strategy(spec, "argo" | "flagger", queries)`` returns an :class:`Export` (the
documents, their YAML, and a warning for everything the target does not carry); what the
target cannot express at all raises :class:`~rolloutlab.errors.InputError`. The rules are in
:mod:`.argo` and :mod:`.flagger`, the queries and conditions both share in :mod:`.metrics`.
"""

from __future__ import annotations

from collections.abc import Mapping

from rolloutlab.errors import InputError
from rolloutlab.strategies.exporters.argo import export_argo
from rolloutlab.strategies.exporters.flagger import export_flagger
from rolloutlab.strategies.exporters.metrics import DEFAULT_QUERIES, QUERY_NAMES, Export, parse_queries
from rolloutlab.strategies.spec import Signal, StrategySpec

TARGETS = {"argo": export_argo, "flagger": export_flagger}

__all__ = ["DEFAULT_QUERIES", "QUERY_NAMES", "TARGETS", "Export", "export_strategy", "parse_queries"]


def export_strategy(spec: StrategySpec, target: str, queries: Mapping[Signal, str] | None = None,
                    source: str | None = None) -> Export:
    """``spec`` as ``target``'s manifests (``argo`` or ``flagger``)."""
    if target not in TARGETS:
        raise InputError("--to", f"expected one of {', '.join(TARGETS)}, got {target!r}")
    return TARGETS[target](spec, queries, source)
