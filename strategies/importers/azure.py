"""Azure App Service deployment slots and Azure Container Apps revisions -> our spec.

Read from ARM templates (JSON, ``resources`` as a list or as symbolic names, nested child
resources included) and from ``az containerapp show`` output. ARM names are often
expressions (``[concat(parameters('site'), '/staging')]``): :func:`evaluate_arm` reads
``parameters()`` (their ``defaultValue``), ``variables()``, ``concat()``, ``format()``,
``toLower()`` / ``toUpper()`` and literals; anything else is kept as written.

**App Service slots** ("Set up staging environments in Azure App Service",
https://learn.microsoft.com/azure/app-service/deploy-staging-slots; MicrosoftDocs/azure-docs
articles/app-service/deploy-staging-slots.md). A ``Microsoft.Web/sites/slots`` slot runs
the new version on the same instances as production; a swap warms it up, then switches
the routing rules. *Swap with preview* pauses after phase 1 ("apply the settings from the
target slot ... to all instances of the source slot", every instance restarted) so a person
can "verify the result on the staging slot before completing the swap" (phase 2). The
swap is an action, not a property: a template that declares a slot and no swap leaves it
to a person -> ``blueGreen`` with ``autoPromotionEnabled: false``, the preview service
being the slot. ``siteConfig.autoSwapSlotName`` ("every time you push your code changes to
that slot, App Service automatically swaps the app into production after it's warmed
up") and a template-driven swap (``targetBuildVersion`` on the site, the page's "Automate
with Resource Manager templates") -> ``blueGreen`` with auto promotion. A routing rule
(``siteConfig.experiments.rampUpRules``, the page's "Route production traffic
automatically") sending a share of production traffic to the slot -> a canary holding
that weight until a person swaps.

**Container Apps revisions** (MicrosoftDocs/azure-docs articles/container-apps/
application-lifecycle-management.md, blue-green-deployment.md, traffic-splitting.md).
``configuration.activeRevisionsMode: Multiple`` with ``ingress.traffic`` weights: the
entry of the new revision (``latestRevision: true``, or ``revisionName`` =
``<app>--<template.revisionSuffix>``) gives its weight: between 0 and 100 a canary
(``setWeight`` then ``pause: {}``: ARM holds one traffic split, not a schedule, so the
next split is a person's); 0 with a label is the docs' blue-green (the new revision
tested on its label's URL, then switched by hand); 100 switches once the revision is ready.
``Single`` mode ("The existing active revision isn't deactivated until the new revision
is ready ... the existing revision continues to receive 100% of the traffic until the new
revision is ready") -> ``rolling`` with ``maxSurge: 100%``, ``maxUnavailable: 0``: every new
replica starts at once and takes over as it becomes ready.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

from rolloutlab.strategies.importers.manifest import MISSING, ManifestReader, Origins, Path, validate_strategy
from rolloutlab.strategies.spec import StrategySpec
from rolloutlab.strategies.yaml_input import YamlDocument

SLOT_TYPE = "microsoft.web/sites/slots"
SITE_TYPE = "microsoft.web/sites"
CONTAINER_APP_TYPE = "microsoft.app/containerapps"
T = TypeVar("T")


# --------------------------------------------------------------------------- ARM expressions


class _Unsupported(Exception):
    """An ARM expression this reader does not evaluate."""


class _Expression:
    """A recursive-descent reader of the ARM template functions names are built with."""

    def __init__(self, text: str, template: dict) -> None:
        self.text, self.pos, self.template = text, 0, template

    def read(self) -> Any:
        value = self._value()
        self._space()
        if self.pos != len(self.text):
            raise _Unsupported(self.text[self.pos:])
        return value

    def _space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def _value(self) -> Any:
        self._space()
        if self.pos >= len(self.text):
            raise _Unsupported("end")
        if self.text[self.pos] == "'":
            out, self.pos = [], self.pos + 1
            while self.pos < len(self.text):
                if self.text[self.pos] == "'":
                    if self.text[self.pos + 1:self.pos + 2] == "'":  # '' is a quote
                        out.append("'")
                        self.pos += 2
                        continue
                    self.pos += 1
                    return "".join(out)
                out.append(self.text[self.pos])
                self.pos += 1
            raise _Unsupported("unterminated string")
        number = re.match(r"-?\d+", self.text[self.pos:])
        if number:
            self.pos += number.end()
            return int(number.group())
        name = re.match(r"[A-Za-z]+", self.text[self.pos:])
        if not name:
            raise _Unsupported(self.text[self.pos:])
        self.pos += name.end()
        self._space()
        if self.text[self.pos:self.pos + 1] != "(":
            raise _Unsupported(name.group())
        self.pos += 1
        args: list[Any] = []
        self._space()
        while self.text[self.pos:self.pos + 1] != ")":
            args.append(self._value())
            self._space()
            if self.text[self.pos:self.pos + 1] == ",":
                self.pos += 1
            elif self.text[self.pos:self.pos + 1] != ")":
                raise _Unsupported(self.text[self.pos:])
        self.pos += 1
        if self.text[self.pos:self.pos + 1] in (".", "["):  # property access: a runtime value
            raise _Unsupported(name.group())
        return self._call(name.group().lower(), args)

    def _call(self, name: str, args: list[Any]) -> Any:
        if name in ("parameters", "variables") and len(args) == 1:
            table = self.template.get(name)
            declared = table.get(args[0], MISSING) if isinstance(table, dict) else MISSING
            if name == "parameters" and isinstance(declared, dict) and "defaultValue" in declared:
                return evaluate_arm(declared["defaultValue"], self.template)
            if name == "variables" and declared is not MISSING:
                return evaluate_arm(declared, self.template)
        elif name == "concat" and all(isinstance(a, (str, int)) for a in args):
            return "".join(str(a) for a in args)
        elif name == "format" and args and isinstance(args[0], str):
            return re.sub(r"\{(\d+)\}", lambda m: str(args[1 + int(m.group(1))]), args[0])
        elif name in ("tolower", "toupper") and len(args) == 1 and isinstance(args[0], str):
            return args[0].lower() if name == "tolower" else args[0].upper()
        raise _Unsupported(name)


def evaluate_arm(value: Any, template: dict) -> Any:
    """An ARM value as deployed: ``"[...]"`` expressions evaluated where they only use
    parameters' defaults, variables and string functions; otherwise the value as written."""
    if not (isinstance(value, str) and value.startswith("[") and value.endswith("]")):
        return value
    if value.startswith("[["):  # ARM's escape: a literal text that starts with "["
        return value[1:]
    try:
        return _Expression(value[1:-1], template).read()
    except (_Unsupported, IndexError, RecursionError):
        return value


# --------------------------------------------------------------------------- documents


def _is_template(data: Any) -> bool:
    return (isinstance(data, dict) and isinstance(data.get("resources"), (list, dict))
            and ("deploymentTemplate" in str(data.get("$schema", "")) or "contentVersion" in data))


def _resources(data: dict) -> list[tuple[Path, str, Any, Path | None]]:
    """Every resource of a template, nested ones too: (path, full type in lower case, name
    as written, the parent's path)."""
    out: list[tuple[Path, str, Any, Path | None]] = []

    def walk(items: Any, base: Path, parent: tuple[Path, str, Any] | None) -> None:
        pairs = items.items() if isinstance(items, dict) else enumerate(items) if isinstance(items, list) else ()
        for key, resource in pairs:
            if not isinstance(resource, dict) or not isinstance(resource.get("type"), str):
                continue
            kind = resource["type"].lower()
            if parent is not None and "/" not in kind:  # a child: type and name relative to the parent
                kind = f"{parent[1]}/{kind}"
            path = (*base, key)
            out.append((path, kind, resource.get("name"), parent[0] if parent else None))
            walk(resource.get("resources"), (*path, "resources"), (path, kind, resource.get("name")))

    walk(data.get("resources"), ("resources",), None)
    return out


def is_app_service_slots(data: Any) -> bool:
    """An ARM template declaring an App Service deployment slot."""
    return _is_template(data) and any(kind == SLOT_TYPE for _, kind, _, _ in _resources(data))


def is_container_app(data: Any) -> bool:
    """An ARM template declaring a container app, or ``az containerapp show`` output."""
    if not isinstance(data, dict):
        return False
    if str(data.get("type", "")).lower() == CONTAINER_APP_TYPE and isinstance(data.get("properties"), dict):
        return True
    return _is_template(data) and any(kind == CONTAINER_APP_TYPE for _, kind, _, _ in _resources(data))


# --------------------------------------------------------------------------- importer


class AzureImporter:
    """Turns the slot or container app of one ARM template (or ``az`` output) into a spec."""

    def __init__(self, main: YamlDocument, warnings: list[str]) -> None:
        self.doc = main
        self.data = main.data
        self.r = ManifestReader(main, warnings)
        self.origins = Origins()

    def value(self, path: Path) -> Any:
        return evaluate_arm(self.r.at(path), self.data)

    def text(self, path: Path) -> str | None:
        value = self.value(path)
        if value in (MISSING, None, ""):
            return None
        if not isinstance(value, str):
            raise self.r.error(path, "must be text")
        return value

    def _leaf(self, name: Any) -> str:
        text = evaluate_arm(name, self.data)
        return text.rsplit("/", 1)[-1] if isinstance(text, str) else str(text)

    # ------------------------------------------------------------------ App Service

    def app_service(self) -> StrategySpec:
        resources = _resources(self.data)
        slots = [(p, name, parent) for p, kind, name, parent in resources if kind == SLOT_TYPE]
        auto = [s for s in slots if self.text((*s[0], "properties", "siteConfig", "autoSwapSlotName"))]
        chosen = (auto or [s for s in slots if self._leaf(s[1]).lower() == "staging"] or slots)[0]
        path, slot_name, parent = chosen
        slot = self._leaf(slot_name)
        for other, name, _ in slots:
            if other != path:
                self.r.warn((*other, "name"), f"slot {self._leaf(name)!r} is not the one deployments swap into "
                                              f"production ({slot!r} is); ignored")
        site = parent or self._site_of(resources, slot_name)
        site_name = self._leaf(self.r.at((*site, "name"))) if site else None
        name = site_name or slot
        out: dict[str, Any] = {"name": name, "description": f"imported from Azure App Service slot {slot!r}"
                                                            + (f" of {site_name!r}" if site_name else "")}
        self.origins.note(("name",), self.r, (*(site or path), "name"))
        target_path = (*path, "properties", "siteConfig", "autoSwapSlotName")
        target = self.text(target_path)
        swap_path: Path | None = target_path if target else None
        if target and target.lower() != "production":
            self.r.warn(target_path, f"auto swap into slot {target!r}, not production: imported as the switch of the "
                                     "service's traffic all the same")
        kinds = " ".join(str(self.value((*p, "kind"))) for p in (path, site) if p)
        if target and "linux" in kinds.lower():
            self.r.warn(target_path, "auto swap isn't supported in web apps on Linux and Web App for Containers "
                                     "(Azure's docs); imported as configured")
        build = (*site, "properties", "targetBuildVersion") if site else None
        if build and self.r.has(build) and not target:
            swap_path = build
            self.r.warn(build, "the template swaps the slot into production when deployed (targetBuildVersion): "
                               "imported as an automatic switch once the slot is warmed up")
        percentage, rule_path = self._ramp_up(site, slot) if site else (0, None)
        if swap_path is None and 0 < percentage < 100:
            assert rule_path is not None
            self.r.warn(rule_path, f"routes {percentage}% of production traffic to slot {slot!r} until a person swaps: "
                                   "a canary that holds the weight at a manual gate (`promote` is the swap). Azure pins "
                                   "each client to a slot for an hour (x-ms-routing-name cookie); rolloutlab routes "
                                   "each request by the weight")
            steps = [{"setCanaryScale": {"weight": 100}}, {"setWeight": percentage}, {"pause": {}}]
            out["strategy"] = {"canary": {"trafficRouting": "router", "steps": steps}}
            self.origins.note(("strategy", "canary"), self.r, rule_path)
            return validate_strategy(out, self.origins, self.doc.file)
        if swap_path is None:
            self.r.warn((*path, "name"), "the template declares the slot, not the swap: a person swaps it with preview "
                                         "(`az webapp deployment slot swap --action preview`: phase 1 applies "
                                         "production's settings to the slot and restarts it; then `--action swap` "
                                         "completes): imported as blue-green with a manual gate, the slot as preview")
        self.r.warn((*path, "name"), f"after a swap the previous version keeps running in slot {slot!r} (swapping back "
                                     "is the rollback); rolloutlab scales it down after scaleDownDelaySeconds")
        out["strategy"] = {"blueGreen": {"activeService": "production", "previewService": slot,
                                         "autoPromotionEnabled": swap_path is not None}}
        self.origins.note(("strategy", "blueGreen"), self.r, swap_path or (*path, "name"))
        return validate_strategy(out, self.origins, self.doc.file)

    def _site_of(self, resources: list, slot_name: Any) -> Path | None:
        text = evaluate_arm(slot_name, self.data)
        sites = [(p, name) for p, kind, name, _ in resources if kind == SITE_TYPE]
        for p, name in sites:
            if isinstance(text, str) and text.rsplit("/", 1)[0] == evaluate_arm(name, self.data):
                return p
        return sites[0][0] if len(sites) == 1 else None

    def _ramp_up(self, site: Path, slot: str) -> tuple[int, Path | None]:
        """The share of production traffic a routing rule sends to the slot."""
        rules_path = (*site, "properties", "siteConfig", "experiments", "rampUpRules")
        for i, rule in enumerate(self.r.sequence(rules_path) or []):
            rp = (*rules_path, i)
            self.r.mapping(rp, required=True)
            host = str(self.value((*rp, "actionHostName")) or "")
            if str(self.value((*rp, "name")) or "").lower() != slot.lower() and f"-{slot.lower()}." not in host.lower():
                continue
            self.r.report_unmodelled(rp, {"name", "actionHostName", "reroutePercentage"},
                                     reasons={k: "automatic ramp-up is not modelled: write the steps of the schedule"
                                              for k in ("changeStep", "changeIntervalInMinutes", "minReroutePercentage",
                                                        "maxReroutePercentage", "changeDecisionCallbackUrl")})
            value = self.value((*rp, "reroutePercentage"))
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 100:
                raise self.r.error((*rp, "reroutePercentage"), "must be a percentage between 0 and 100")
            if value != int(value):
                self.r.warn((*rp, "reroutePercentage"), f"{value}% rounded to {round(value)}% (rolloutlab weights are "
                                                        "whole percents)")
            return round(value), (*rp, "reroutePercentage")
        return 0, None

    # ------------------------------------------------------------------ Container Apps

    def container_app(self) -> StrategySpec:
        if str(self.data.get("type", "")).lower() == CONTAINER_APP_TYPE:
            base: Path = ()
        else:
            apps = [p for p, kind, _, _ in _resources(self.data) if kind == CONTAINER_APP_TYPE]
            if len(apps) > 1:
                raise self.r.error(apps[1], f"this template declares {len(apps)} container apps; import one at a time")
            base = apps[0]
        r = self.r
        name = self._leaf(r.at((*base, "name"))) if r.has((*base, "name")) else "container-app"
        out: dict[str, Any] = {"name": name, "description": f"imported from Azure Container App {name!r}"}
        self.origins.note(("name",), r, (*base, "name"))
        props = (*base, "properties")
        r.mapping(props, required=True)
        config = (*props, "configuration")
        mode_path = (*config, "activeRevisionsMode")
        mode = (self.text(mode_path) or "Single").lower()
        if mode not in ("single", "multiple", "labels"):
            raise r.error(mode_path, f"must be Single, Multiple or Labels, got {self.value(mode_path)!r}")
        self._replicas(out, (*props, "template", "scale"))
        traffic_path = (*config, "ingress", "traffic")
        if mode == "single" or not r.has((*config, "ingress")):
            if mode != "single":
                r.warn(mode_path, "no ingress: there is no HTTP traffic to split between revisions; imported as the "
                                  "replacement Single mode makes")
            r.warn(mode_path, "Single mode switches all traffic to the new revision once one of its replicas is ready "
                              "(Azure's docs); rolloutlab's rolling update with maxSurge 100% starts every new replica "
                              "at once and moves traffic to them as they become ready")
            out["strategy"] = {"rolling": {"maxSurge": "100%", "maxUnavailable": 0}}
            self.origins.note(("strategy", "rolling"), r, mode_path)
            return validate_strategy(out, self.origins, self.doc.file)
        weight, entry = self._new_revision_weight(traffic_path, name, (*props, "template", "revisionSuffix"))
        if mode == "labels":
            r.warn(mode_path, "Labels mode routes by label; read as Multiple mode's weights")
        if weight == 100:
            r.warn(entry, "all traffic goes to the new revision once it is ready (Azure: one ready replica); imported "
                          "as a blue-green switch once the new version is ready")
            bg = {"activeService": name, "previewService": None, "autoPromotionEnabled": True}
            out["strategy"] = {"blueGreen": bg}
            self.origins.note(("strategy", "blueGreen"), r, entry)
        elif weight == 0:
            label = self.text((*entry, "label"))
            r.warn(entry, "the new revision gets no production traffic: tested on its label's URL, then switched by "
                          "a person (Azure's blue-green): a manual gate")
            bg = {"activeService": name, "previewService": label or "latest", "autoPromotionEnabled": False}
            out["strategy"] = {"blueGreen": bg}
            self.origins.note(("strategy", "blueGreen"), r, entry)
        else:
            r.warn((*entry, "weight"), f"ARM holds one traffic split, not a schedule: the new revision gets {weight}% "
                                       "and keeps it until someone changes the split; imported as setWeight then a "
                                       "manual gate, write the rest of the schedule (more setWeight/pause steps)")
            steps = [{"setWeight": weight}, {"pause": {}}]
            out["strategy"] = {"canary": {"trafficRouting": "router", "steps": steps}}
            self.origins.note(("strategy", "canary", "steps", 0, "setWeight"), r, (*entry, "weight"))
            self.origins.note(("strategy", "canary"), r, traffic_path)
        return validate_strategy(out, self.origins, self.doc.file)

    def _replicas(self, out: dict, scale: Path) -> None:
        low = self.r.integer((*scale, "minReplicas"), minimum=0)
        high = self.r.integer((*scale, "maxReplicas"), minimum=1)
        if low is not None and low == high and low >= 1:
            out["replicas"] = low
            self.origins.note(("replicas",), self.r, (*scale, "minReplicas"))
        elif self.r.has(scale):
            self.r.warn(scale, "scaling between minReplicas and maxReplicas is not modelled: each revision keeps the "
                               "scenario's replica count")

    def _new_revision_weight(self, traffic_path: Path, app: str, suffix_path: Path) -> tuple[int, Path]:
        r = self.r
        entries = r.sequence(traffic_path) or []
        if not entries:
            return 100, traffic_path  # no rule: all traffic to the latest revision
        suffix = self.text(suffix_path)
        new = f"{app}--{suffix}" if suffix else None
        total, found = 0, None
        for i in range(len(entries)):
            ep = (*traffic_path, i)
            r.mapping(ep, required=True)
            r.report_unmodelled(ep, {"revisionName", "weight", "latestRevision", "label"})
            weight = r.integer((*ep, "weight"), minimum=0, maximum=100) or 0
            total += weight
            revision = self.text((*ep, "revisionName"))
            if r.boolean((*ep, "latestRevision")) or (new is not None and revision == new):
                if found is not None:
                    raise r.error(ep, f"a second entry for the new revision (the first is traffic[{found[1][-1]}])")
                found = (weight, ep)
        if total != 100:
            raise r.error(traffic_path, f"weights add up to {total}; Azure needs 100")
        if found is None:
            raise r.error(traffic_path, "no entry is the new revision: mark it with latestRevision: true (or name it "
                                        "<app>--<template.revisionSuffix>)")
        return found


def _app_service_spec(main: YamlDocument, documents: list[YamlDocument], warnings: list[str]) -> StrategySpec:
    return AzureImporter(main, warnings).app_service()


def _container_app_spec(main: YamlDocument, documents: list[YamlDocument], warnings: list[str]) -> StrategySpec:
    return AzureImporter(main, warnings).container_app()


def source_entries(make: Callable[..., T]) -> list[T]:
    """The ``importers.sources.SOURCES`` entries for Azure, built with its ``Source``."""
    return [
        make("azure-app-service-slot", "an Azure App Service deployment slot (Microsoft.Web/sites/slots in an ARM "
             "template)", is_app_service_slots, _app_service_spec),
        make("azure-container-app", "an Azure Container App (Microsoft.App/containerApps in an ARM template, or "
             "`az containerapp show` output)", is_container_app, _container_app_spec),
    ]


__all__ = ["AzureImporter", "evaluate_arm", "is_app_service_slots", "is_container_app", "source_entries"]
