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
from dataclasses import dataclass, replace
from typing import Any

from rolloutlab.strategies.importers import azure, codedeploy, kayenta
from rolloutlab.strategies.importers.argo import ArgoImporter, is_rollout
from rolloutlab.strategies.importers.flagger import FlaggerImporter, is_canary
from rolloutlab.strategies.importers.spinnaker import import_pipeline, is_pipeline
from rolloutlab.strategies.spec import StrategySpec
from rolloutlab.strategies.yaml_input import YamlDocument

Importer = Callable[[YamlDocument, list[YamlDocument], list[str]], StrategySpec]


@dataclass(frozen=True)
class Source:
    name: str  # the ImportResult.source value, e.g. "argo-rollout"
    describes: str  # for "no ... found" errors, e.g. "an Argo Rollout (argoproj.io/v1alpha1)"
    detects: Callable[[Any], bool]  # is this document's data the source's main object?
    imports: Importer
    # a companion is imported alone only: given beside another source's main object (a Kayenta
    # config beside the Spinnaker pipeline that names it), it is that importer's to read
    companion: bool = False


def _argo(main: YamlDocument, documents: list[YamlDocument], warnings: list[str]) -> StrategySpec:
    return ArgoImporter(main, documents, warnings).run()


def _flagger(main: YamlDocument, documents: list[YamlDocument], warnings: list[str]) -> StrategySpec:
    return FlaggerImporter(main, documents, warnings).run()


SOURCES: list[Source] = [
    Source("argo-rollout", "an Argo Rollout (argoproj.io/v1alpha1)", is_rollout, _argo),
    Source("flagger-canary", "a Flagger Canary (flagger.app/v1beta1)", is_canary, _flagger),
    Source("spinnaker-pipeline", "a Spinnaker pipeline (JSON with stages that have type and refId)", is_pipeline,
           import_pipeline),
    *(replace(source, companion=True) for source in kayenta.source_entries(Source)),
    # a deployment configuration beside the deployment group that names it is the group's to read
    *(replace(source, companion=source.name == "codedeploy-deployment-config")
      for source in codedeploy.source_entries(Source)),
    *azure.source_entries(Source),
]
