"""Every system ``rolloutlab import`` reads, one entry each: how its main document is
recognised and which importer turns it (with the documents beside it) into a strategy.

One list, so that a new source is one entry here and one module of its own, and the
"which source is this file?" question is answered in one place (``importers.__init__``).
An importer takes ``(main, documents, warnings)``: the document it recognised, every
document given with it (templates, configs, in any of the files), and the list its
warnings go to ("line N: field.path: what was not modelled").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rolloutlab.strategies.importers.argo import ArgoImporter, is_rollout
from rolloutlab.strategies.importers.flagger import FlaggerImporter, is_canary
from rolloutlab.strategies.spec import StrategySpec
from rolloutlab.strategies.yaml_input import YamlDocument

Importer = Callable[[YamlDocument, list[YamlDocument], list[str]], StrategySpec]


@dataclass(frozen=True)
class Source:
    name: str  # the ImportResult.source value, e.g. "argo-rollout"
    describes: str  # for "no ... found" errors, e.g. "an Argo Rollout (argoproj.io/v1alpha1)"
    detects: Callable[[Any], bool]  # is this document's data the source's main object?
    imports: Importer


def _argo(main: YamlDocument, documents: list[YamlDocument], warnings: list[str]) -> StrategySpec:
    return ArgoImporter(main, documents, warnings).run()


def _flagger(main: YamlDocument, documents: list[YamlDocument], warnings: list[str]) -> StrategySpec:
    return FlaggerImporter(main, documents, warnings).run()


SOURCES: list[Source] = [
    Source("argo-rollout", "an Argo Rollout (argoproj.io/v1alpha1)", is_rollout, _argo),
    Source("flagger-canary", "a Flagger Canary (flagger.app/v1beta1)", is_canary, _flagger),
    # spinnaker-pipeline (entry added by the Spinnaker importer)
    # kayenta-config (entry added by the Kayenta importer)
    # codedeploy (entries added by the CodeDeploy importer)
    # azure (entries added by the Azure importer)
]
