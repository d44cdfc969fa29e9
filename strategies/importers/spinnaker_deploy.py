"""What one Spinnaker deploy stage does: where it deploys, how many instances, with which strategy.

A ``deploy`` stage lists ``clusters`` (AWS, GCE, Azure, Titus ... server groups), each with
``account``, ``region`` or ``availabilityZones`` (``{region: [zones]}``: one placement per
region), ``capacity`` ``{min, max, desired}`` and a ``strategy`` with its settings (Deck's
deploymentStrategy registry; orca's ``RedBlackStrategy``, ``HighlanderStrategy``,
``RollingRedBlackStrategy``, ``RollingPushStrategy``, ``CustomStrategy``, ``NoStrategy`` in
``orca-clouddriver/.../servergroup/strategies``). ``createServerGroup`` and
``cloneServerGroup`` stages carry one such cluster in the stage itself.

A Kubernetes ``deployManifest`` stage deploys the ``manifests`` in one ``account``; its
rollout strategy is ``trafficManagement`` (``enabled``, ``options.strategy`` redblack,
highlander or none, ``options.services``, ``options.enableTraffic``; spinnaker.io, "Rollout
Strategies" for the Kubernetes provider). Without it, a Deployment manifest is rolled out
by Kubernetes itself (its ``spec.strategy``).

Each placement also gets a role: a cluster or manifest named for a ``canary`` or a
``baseline`` (the Kayenta experiment and control) is not the production rollout.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from rolloutlab.strategies.importers.manifest import MISSING, Path
from rolloutlab.strategies.importers.spinnaker_stages import PipelineReader, Stage

DEPLOY_TYPES = ("deploy", "createServerGroup", "cloneServerGroup", "deployManifest")
WORKLOAD_KINDS = ("Deployment", "ReplicaSet", "StatefulSet")

#: Spinnaker's strategy keys (Deck's DeploymentStrategyRegistry) and what each is here.
STRATEGIES = ("redblack", "highlander", "rollingredblack", "cfrollingredblack", "rollingpush", "custom", "none",
              "kubernetes")

#: The settings each strategy reads (Deck's additionalFields; orca's StageData). Regions
#: deployed with different values run different strategies, which rolloutlab refuses.
_SETTINGS = {
    "redblack": ("maxRemainingAsgs", "scaleDown", "delayBeforeDisableSec", "delayBeforeScaleDownSec",
                 ("rollback", "onFailure")),
    "rollingredblack": ("targetPercentages", "scaleDown", "delayBeforeDisableSec", "delayBeforeScaleDownSec",
                        ("pipelineBeforeCleanup", "pipelineId")),
    "rollingpush": ("numConcurrentRelaunches", "totalRelaunches"),
    "custom": ("strategyApplication", "strategyPipeline"),
}
_SETTINGS["cfrollingredblack"] = _SETTINGS["rollingredblack"]


class Role:
    PRODUCTION = "production"
    CANARY = "canary"
    BASELINE = "baseline"


@dataclass(frozen=True)
class Placement:
    """One server group a deploy stage creates: where, how big, how it replaces the old one."""

    stage: Stage
    path: Path  # the cluster (stages[i].clusters[j]) or the stage for deployManifest/createServerGroup
    account: str | None
    region: str | None  # the cloud region; for Kubernetes the namespace, if given
    strategy: str  # one of STRATEGIES
    strategy_path: Path
    settings: tuple[tuple[str, Any], ...]  # the strategy's settings as written (for comparing regions)
    replicas: int | None
    role: str
    services: tuple[str, ...] = ()  # deployManifest: the Services traffic management attaches
    enable_traffic: bool = True  # whether the new server group takes traffic as soon as it is up
    rolling: dict | None = None  # deployManifest without traffic management: the Deployment's maxSurge/maxUnavailable

    def setting(self, key: str, default: Any = None) -> Any:
        return dict(self.settings).get(key, default)

    @property
    def where(self) -> str:
        return "/".join(x for x in (self.account, self.region) if x) or "(no account or region)"


def _role(*names: Any) -> str:
    text = " ".join(str(n).lower() for n in names if isinstance(n, str))
    if "baseline" in text:
        return Role.BASELINE
    return Role.CANARY if "canary" in text else Role.PRODUCTION


def read_placements(r: PipelineReader, stage: Stage) -> list[Placement]:
    """The placements of one deploy stage (a ``deploy`` stage with three regions gives three)."""
    if stage.type == "deployManifest":
        placement = _manifest_placement(r, stage)
        return [] if placement is None else [placement]
    if stage.type == "deploy":
        clusters = r.sequence(stage.at("clusters"))
        if not clusters:
            raise r.error(stage.at("clusters"), f"{stage.label} deploys no cluster (clusters is empty)")
        out: list[Placement] = []
        for j in range(len(clusters)):
            out += _cluster_placements(r, stage, stage.at("clusters", j))
        return out
    return _cluster_placements(r, stage, stage.path)  # createServerGroup / cloneServerGroup


def kayenta_placements(r: PipelineReader, stage: Stage) -> list[Placement]:
    """The canary (experiment) and baseline (control) server groups a ``realTimeAutomatic``
    kayentaCanary stage deploys itself (orca-kayenta's ``DeployCanaryServerGroupsStage``,
    from ``deployments.serverGroupPairs``); only the first pair is read."""
    pairs = r.sequence(stage.at("deployments", "serverGroupPairs")) or []
    if not pairs:
        return []
    if len(pairs) > 1:
        r.warn(stage.at("deployments", "serverGroupPairs"), f"{len(pairs)} canary/baseline pairs; the first is read")
    out: list[Placement] = []
    for key, role in (("experiment", Role.CANARY), ("control", Role.BASELINE)):
        cp = stage.at("deployments", "serverGroupPairs", 0, key)
        if r.mapping(cp) is not None:
            out += [replace(p, role=role) for p in _cluster_placements(r, stage, cp)[:1]]
    return out


def _cluster_placements(r: PipelineReader, stage: Stage, cp: Path) -> list[Placement]:
    r.mapping(cp, required=True)
    strategy = r.at((*cp, "strategy"))
    strategy = "none" if strategy in (MISSING, None, "") else strategy
    if not isinstance(strategy, str) or strategy not in STRATEGIES[:-1]:
        raise r.error((*cp, "strategy"), f"unknown deploy strategy {strategy!r}; Spinnaker's are redblack, "
                                         "highlander, rollingredblack, rollingpush, custom, or none ('')")
    settings = _settings(r, cp, strategy)
    account = r.text((*cp, "account")) or r.text((*cp, "credentials"))
    zones = r.mapping((*cp, "availabilityZones")) or {}
    regions = list(zones) or [r.text((*cp, "region"))]
    replicas = _capacity(r, cp, stage)
    role = _role(r.text((*cp, "stack")), r.text((*cp, "freeFormDetails")), r.text((*cp, "detail")),
                 stage.name)
    return [Placement(stage, cp, account, region, strategy, (*cp, "strategy"), settings, replicas, role)
            for region in regions]


def _settings(r: PipelineReader, cp: Path, strategy: str) -> tuple[tuple[str, Any], ...]:
    out: list[tuple[str, Any]] = []
    for key in _SETTINGS.get(strategy, ()):
        parts = key if isinstance(key, tuple) else (key,)
        value = r.at((*cp, *parts))
        if value is not MISSING and value is not None:
            out.append((".".join(parts), value))
    return tuple(out)


def _capacity(r: PipelineReader, cp: Path, stage: Stage) -> int | None:
    if r.flag((*cp, "useSourceCapacity")):
        r.warn((*cp, "useSourceCapacity"), "the new server group copies the current one's size, which is not in "
                                           "the pipeline: the scenario's replica count is used")
        return None
    if r.mapping((*cp, "capacity")) is None:
        target = r.whole((*cp, "targetSize"), minimum=1)  # GCE's older field
        if target is None:
            r.warn(cp, f"{stage.label} gives no capacity: the scenario's replica count is used")
        return target
    sizes = {k: r.whole((*cp, "capacity", k)) for k in ("min", "max", "desired")}
    desired = sizes["desired"] if sizes["desired"] is not None else sizes["max"]
    if desired is None:
        r.warn((*cp, "capacity"), "capacity has no desired (or max) size: the scenario's replica count is used")
        return None
    if desired < 1:
        raise r.error((*cp, "capacity", "desired"), f"must be at least 1 instance to deploy anything, got {desired}")
    if sizes["min"] is not None and sizes["max"] is not None and sizes["min"] != sizes["max"]:
        r.warn((*cp, "capacity"), f"autoscaling between {sizes['min']} and {sizes['max']} instances is not "
                                  f"modelled: the desired {desired} is used")
    return desired


# --------------------------------------------------------------------------- Kubernetes


def _manifest_placement(r: PipelineReader, stage: Stage) -> Placement | None:
    """The workload a deployManifest stage rolls out; None when it deploys only other objects."""
    sp = stage.path
    account = r.text(stage.at("account")) or r.text(stage.at("credentials"))
    workloads = []
    for j, _ in enumerate(r.sequence(stage.at("manifests")) or []):
        mp = stage.at("manifests", j)
        if isinstance(r.at(mp), dict) and r.at((*mp, "kind")) in WORKLOAD_KINDS:
            workloads.append(mp)
    namespace = r.text(stage.at("namespaceOverride"))
    if namespace is None and workloads:
        namespace = r.text((*workloads[0], "metadata", "namespace"))
    replicas = None
    if len(workloads) > 1:
        r.warn(stage.at("manifests"), f"{stage.label} deploys {len(workloads)} workloads; the first one is the "
                                      "service under test")
    if workloads:
        replicas = r.whole((*workloads[0], "spec", "replicas"), minimum=1)
        if replicas is None and not r.unresolved.get((*workloads[0], "spec", "replicas")):
            r.warn((*workloads[0], "spec"), "the workload gives no replicas (Kubernetes' default is 1, or an HPA "
                                            "sets it): the scenario's replica count is used")
    elif r.at(stage.at("source")) == "artifact" or r.has(stage.at("manifestArtifactId")):
        r.warn(stage.at("source"), f"{stage.label} deploys a manifest from an artifact, which is not in this "
                                   "input: the scenario's replica count is used")
    else:
        return None  # ConfigMaps, Services, ...: reported with the stages that are not part of the rollout
    names = [r.at((*w, "metadata", "name")) for w in workloads]
    role = _role(*names, stage.name)

    tp = stage.at("trafficManagement")
    managed = r.mapping(tp) is not None and bool(r.flag((*tp, "enabled")))
    if not managed:
        kind = r.at((*workloads[0], "kind")) if workloads else None
        rolling = _rolling_update(r, workloads[0]) if kind == "Deployment" else None
        if kind not in (None, "Deployment"):
            r.warn(workloads[0], f"a {kind} without trafficManagement is replaced the way Kubernetes replaces it; "
                                 "modelled as a Deployment's rolling update")
        return Placement(stage, sp, account, namespace, "kubernetes", tp if r.has(tp) else sp, (), replicas, role,
                         rolling=rolling or {})
    op = (*tp, "options")
    strategy = r.at((*op, "strategy"))
    strategy = "none" if strategy in (MISSING, None, "") else strategy
    if strategy not in ("redblack", "highlander", "none"):
        raise r.error((*op, "strategy"), f"unknown rollout strategy {strategy!r}; the Kubernetes provider's are "
                                         "redblack, highlander and none")
    services = []
    for j, _ in enumerate(r.sequence((*op, "services")) or []):
        text = r.string((*op, "services", j), required=True)
        services.append(text.split(" ", 1)[1] if text.startswith("service ") else text)  # Deck writes "service name"
    enable = r.flag((*op, "enableTraffic"))
    settings = (("strategy", strategy), ("enableTraffic", enable), ("services", tuple(services)))
    return Placement(stage, sp, account, namespace, strategy, (*op, "strategy") if r.has((*op, "strategy")) else tp,
                     settings, replicas, role, services=tuple(services), enable_traffic=bool(enable))


def _rolling_update(r: PipelineReader, wp: Path) -> dict:
    """maxSurge/maxUnavailable of a Deployment's RollingUpdate; Recreate is all at once."""
    kind = r.at((*wp, "spec", "strategy", "type"))
    if kind == "Recreate":
        r.warn((*wp, "spec", "strategy", "type"), "Recreate stops every old pod before new ones start; modelled as "
                                                  "a rolling update with maxSurge 0 and maxUnavailable 100%")
        return {"maxSurge": 0, "maxUnavailable": "100%"}
    out: dict[str, Any] = {}
    for key in ("maxSurge", "maxUnavailable"):
        value = r.at((*wp, "spec", "strategy", "rollingUpdate", key))
        if isinstance(value, (int, str)) and not isinstance(value, bool):
            out[key] = value
    return out


__all__ = ["DEPLOY_TYPES", "STRATEGIES", "Placement", "Role", "kayenta_placements", "read_placements"]
