"""AWS CodeDeploy deployment groups and deployment configurations -> our spec.

Read from what AWS prints or declares: ``aws deploy get-deployment-group`` /
``get-deployment-config`` output (``{"deploymentGroupInfo": ...}``, the API reference's
GetDeploymentGroup / GetDeploymentConfig responses) and CloudFormation templates
(``AWS::CodeDeploy::DeploymentGroup``, ``AWS::CodeDeploy::DeploymentConfig``,
``AWS::CodeDeploy::Application`` for the compute platform), JSON or YAML in long form
(``Ref:``, ``Fn::Sub:``; the ``!Ref`` short tags are not YAML our reader accepts). An
ECS or Lambda AppSpec file given beside them is read for its hooks. A deployment group
names its configuration: a custom one is looked up in the other documents (a
``get-deployment-config`` output or a DeploymentConfig resource, ``Ref`` included), a
predefined one in :data:`codedeploy_configs.PREDEFINED` (AWS's documented table).

The mapping (configurations: :mod:`strategies.importers.codedeploy_configs`):

- **ECS / Lambda, canary or linear** -> a canary under ``trafficRouting: router``
  (CodeDeploy shifts weights on the load balancer's listener or the Lambda alias):
  ``setWeight`` / ``pause`` per increment, the end of the steps shifting the rest. ECS
  first creates the replacement task set at the original's size ("The task set is composed
  of three tasks", deployment-steps-ecs.md): ``setCanaryScale: {weight: 100}`` first. A
  Lambda version has no instances to wait for: the same full-size start keeps every shift
  on CodeDeploy's schedule (pods that started per weight would add their start time).
- **ECS / Lambda, all at once**, and **EC2 blue/green** -> ``blueGreen``. EC2 blue/green
  with HalfAtATime/OneAtATime reroutes in batches: one switch here, with a warning.
- **EC2 in-place** -> ``rolling`` with ``maxSurge: 0`` (in-place: no extra hosts) and
  ``maxUnavailable`` from the minimum healthy hosts (``codedeploy_configs.max_unavailable``).
- ``deploymentReadyOption``: ``STOP_DEPLOYMENT`` waits for a person to continue ("If
  traffic rerouting is not started before the end of the specified wait period, the
  deployment status is changed to Stopped", API reference DeploymentReadyOption): a blue-
  green with ``autoPromotionEnabled: false``, or a ``pause: {}`` before the first traffic
  shift of a canary. ``CONTINUE_DEPLOYMENT`` reroutes at once: ``waitTimeInMinutes``
  "applies only to the STOP_DEPLOYMENT option", so with CONTINUE it is ignored (warning).
- ``terminateBlueInstancesOnDeploymentSuccess.terminationWaitTimeInMinutes`` ->
  ``scaleDownDelaySeconds`` (0 when absent, the API's integer default).
- **Alarms** (``alarmConfiguration``) stop the deployment when they fire (and roll it back
  with ``DEPLOYMENT_STOP_ON_ALARM``). A CloudWatch alarm is the scenario's business, not the
  strategy's: each becomes a warning naming the ``monitoring.alerts`` rule to write, and
  :class:`CodeDeployImport` carries them (:class:`Alarm`) for a caller that writes scenarios.
- **Hooks** (AppSpec ``Hooks``: BeforeInstall, AfterInstall, AfterAllowTestTraffic,
  BeforeAllowTraffic, AfterAllowTraffic) run a Lambda validation that CodeDeploy waits for
  (up to an hour) and whose failure rolls back. Decision: **no step**, one warning per hook.
  A manual gate (``pause: {}``) would make every simulated release wait for a person's
  response time, which CodeDeploy never does; a guessed pause would change the rollout's
  duration, which must stay the one AWS documents for the configuration; and the check a
  hook runs is unknown. The warning says where to add a ``pause`` (its run time) or an
  ``analysis`` step (its check).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from rolloutlab.strategies.importers.codedeploy_configs import (
    DEFAULT_CONFIG,
    DOC_PAGE,
    ComputePlatform,
    DeploymentConfig,
    Fields,
    HostsRule,
    Shift,
    find_predefined,
    max_unavailable,
    read_config,
)
from rolloutlab.strategies.importers.manifest import ManifestReader, Origins, Path, validate_strategy
from rolloutlab.strategies.spec import StrategySpec
from rolloutlab.strategies.yaml_input import YamlDocument

GROUP_TYPE = "AWS::CodeDeploy::DeploymentGroup"
CONFIG_TYPE = "AWS::CodeDeploy::DeploymentConfig"
APPLICATION_TYPE = "AWS::CodeDeploy::Application"
T = TypeVar("T")
GROUP_KEY = "deploymentGroupInfo"  # aws deploy get-deployment-group
CONFIG_KEY = "deploymentConfigInfo"  # aws deploy get-deployment-config


# --------------------------------------------------------------------------- detection


def _cfn_resources(data: Any, kind: str) -> list[str]:
    """Logical IDs of the resources of ``kind`` in a CloudFormation template."""
    resources = data.get("Resources") if isinstance(data, dict) else None
    if not isinstance(resources, dict):  # an AppSpec's Resources is a list
        return []
    return [k for k, v in resources.items() if isinstance(v, dict) and v.get("Type") == kind]


def is_deployment_group(data: Any) -> bool:
    """``get-deployment-group`` output, or a template declaring a deployment group."""
    return isinstance(data, dict) and (isinstance(data.get(GROUP_KEY), dict) or bool(_cfn_resources(data, GROUP_TYPE)))


def is_deployment_config(data: Any) -> bool:
    """``get-deployment-config`` output, or a template declaring configurations and no group
    (a group's template is the group's to import)."""
    if not isinstance(data, dict) or is_deployment_group(data):
        return False
    return isinstance(data.get(CONFIG_KEY), dict) or bool(_cfn_resources(data, CONFIG_TYPE))


def is_appspec(data: Any) -> bool:
    """An AppSpec file (``version: 0.0`` with Resources as a list, hooks or files)."""
    return (isinstance(data, dict) and "version" in data and not isinstance(data.get("Resources"), dict)
            and any(k in data for k in ("Resources", "resources", "Hooks", "hooks", "files", "os")))


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Alarm:
    """A CloudWatch alarm the deployment group watches: when it fires, CodeDeploy stops the
    deployment (and rolls back when ``rolls_back``). Its metric and threshold live in
    CloudWatch, not here: a caller writing a scenario asks for them."""

    name: str
    line: int
    field: str
    enabled: bool  # alarmConfiguration.enabled
    rolls_back: bool  # autoRollbackConfiguration has DEPLOYMENT_STOP_ON_ALARM

    def alert_rule(self, metric: str = "error_rate", threshold: float = 0.05, for_seconds: float = 60.0) -> dict:
        """A scenario ``monitoring.alerts`` entry standing for this alarm (its metric and
        threshold must come from CloudWatch; the defaults are placeholders)."""
        return {"name": self.name, "metric": metric, "threshold": threshold, "for": f"{for_seconds:g}s"}


@dataclass(frozen=True)
class Hook:
    """An AppSpec lifecycle hook: a Lambda function CodeDeploy runs and waits for."""

    event: str  # BeforeInstall, AfterAllowTestTraffic, ...
    function: str
    line: int


@dataclass(frozen=True)
class CodeDeployImport:
    """An imported deployment group (or configuration) with what the strategy cannot hold."""

    spec: StrategySpec
    config: DeploymentConfig
    alarms: tuple[Alarm, ...]
    hooks: tuple[Hook, ...]


# --------------------------------------------------------------------------- the importer

_GROUP_HANDLED = {"deploymentConfigName", "deploymentStyle", "blueGreenDeploymentConfiguration",
                  "autoRollbackConfiguration", "alarmConfiguration", "computePlatform", "deploymentGroupName"}
_GROUP_SILENT = {"applicationName", "deploymentGroupId", "serviceRoleArn", "ec2TagFilters", "onPremisesInstanceTagFilters",
                 "autoScalingGroups", "targetRevision", "lastSuccessfulDeployment", "lastAttemptedDeployment",
                 "ec2TagSet", "onPremisesTagSet", "ecsServices", "eCSServices", "loadBalancerInfo",
                 "triggerConfigurations", "tags", "deployment", "terminationHookEnabled"}
_GROUP_REASONS = {"outdatedInstancesStrategy": "instances launched during a deployment are not modelled",
                  "ec2DeploymentOptions": "EC2 deployment options are not modelled"}
# when each ECS hook runs, in CodeDeploy's order (deployment-steps-ecs.md) and where a step would go
_HOOK_PLACES = {
    "BeforeInstall": "before the replacement is created",
    "AfterInstall": "after the replacement is created",
    "AfterAllowTestTraffic": "while the test listener sends it test traffic",
    "BeforeAllowTraffic": "before the first production traffic shift",
    "AfterAllowTraffic": "after all production traffic is shifted",
}


class CodeDeployImporter:
    """Turns a deployment group (or a configuration alone) and the documents beside it
    (configurations, an AppSpec) into a :class:`CodeDeployImport`."""

    def __init__(self, main: YamlDocument, documents: list[YamlDocument], warnings: list[str]) -> None:
        self.main = main
        self.documents = documents
        self.warnings = warnings
        self.r = ManifestReader(main, warnings)
        self.origins = Origins()
        self.alarms: list[Alarm] = []
        self.hooks: list[Hook] = []

    # ------------------------------------------------------------------ documents

    def _template_fields(self, doc: YamlDocument, kind: str, label: str) -> list[tuple[str, Fields]]:
        data = doc.data
        reader = self.r if doc is self.main else ManifestReader(doc, self.warnings, label=label)
        parameters = data.get("Parameters") if isinstance(data.get("Parameters"), dict) else {}
        return [(logical, Fields(reader, ("Resources", logical, "Properties"), True, parameters))
                for logical in _cfn_resources(data, kind)]

    def _one(self, found: list[tuple[str, Fields]], what: str) -> tuple[str, Fields]:
        if len(found) > 1:
            names = ", ".join(name for name, _ in found)
            second = found[1][1]
            raise second.r.error(second.base[:2], f"this template declares {len(found)} {what}s ({names}); import "
                                                  "one at a time (put the others in another file)")
        return found[0]

    def _custom_configs(self) -> dict[str, tuple[Fields, str]]:
        """Custom configurations given in any document, unread: name (and logical ID, what a
        ``Ref`` names) -> (its fields, the name it goes by). Only the one used is read."""
        found: dict[str, tuple[Fields, str]] = {}
        for doc in self.documents:
            data = doc.data
            if not isinstance(data, dict):
                continue
            if isinstance(data.get(CONFIG_KEY), dict):
                reader = self.r if doc is self.main else ManifestReader(doc, self.warnings, label=CONFIG_KEY)
                f = Fields(reader, (CONFIG_KEY,), False)
                name = data[CONFIG_KEY].get("deploymentConfigName")
                if isinstance(name, str):
                    found.setdefault(name.strip(), (f, name.strip()))
            for logical, f in self._template_fields(doc, CONFIG_TYPE, CONFIG_TYPE):
                name = f.r.at(f.path("deploymentConfigName"))
                name = name.strip() if isinstance(name, str) and name.strip() else logical
                found.setdefault(logical, (f, name))
                found.setdefault(name, (f, name))
        return found

    def _appspec_hooks(self) -> None:
        for doc in self.documents:
            if not is_appspec(doc.data):
                continue
            reader = ManifestReader(doc, self.warnings, label="AppSpec")
            key = "Hooks" if "Hooks" in doc.data else "hooks"
            hooks = doc.data.get(key)
            if isinstance(hooks, list):  # ECS and Lambda: [{Event: function}, ...]
                for i, entry in enumerate(hooks):
                    if not isinstance(entry, dict):
                        raise reader.error((key, i), "must be a mapping of a lifecycle event to a Lambda function")
                    for event, function in entry.items():
                        self._hook(reader, (key, i, event), str(event), str(function))
            elif isinstance(hooks, dict):  # EC2/on-premises: {Event: [scripts]}, run on every instance
                for event in hooks:
                    reader.warn((key, event), f"hook {event}: scripts CodeDeploy runs on every instance and waits for "
                                              "(up to their timeout); their run time is not modelled")
            elif hooks is not None:
                raise reader.error((key,), "must be a list of {lifecycle event: Lambda function} mappings")

    def _hook(self, reader: ManifestReader, path: Path, event: str, function: str) -> None:
        self.hooks.append(Hook(event, function, reader.line(path)))
        when = _HOOK_PLACES.get(event, "at its lifecycle event")
        reader.warn(path, f"hook {event} runs Lambda {function!r} {when}; CodeDeploy waits for its verdict (up to an "
                          "hour) and rolls back on failure; rolloutlab cannot know its run time or its check, so it "
                          "adds no step: add a `pause: {duration: ...}` (its run time) or an `analysis` step (its "
                          "check) at that point to model it")

    # ------------------------------------------------------------------ run

    def run(self) -> CodeDeployImport:
        data = self.main.data
        if is_deployment_group(data):
            spec, config = self._group()
        else:
            spec, config = self._config_alone()
        return CodeDeployImport(spec, config, tuple(self.alarms), tuple(self.hooks))

    def _config_alone(self) -> tuple[StrategySpec, DeploymentConfig]:
        if isinstance(self.main.data.get(CONFIG_KEY), dict):
            f, name = Fields(self.r, (CONFIG_KEY,), False), None
        else:
            name, f = self._one(self._template_fields(self.main, CONFIG_TYPE, ""), "DeploymentConfig")
            name = self._cfn_name(f, "deploymentConfigName", name)
        config = _read_custom(f, name)
        self._appspec_hooks()
        out = self._start(config.name, f"imported from AWS CodeDeploy deployment configuration {config.name!r}", f,
                          ("deploymentConfigName",))
        if config.platform is ComputePlatform.SERVER:
            f.warn((), "a deployment group decides between in-place and blue/green; in-place assumed (import the "
                       "deployment group for its choice)")
        out["strategy"] = self._strategy(config, f, in_place=True, traffic_control=True, gate=False, termination=0.0)
        return validate_strategy(out, self.origins, self.main.file), config

    def _group(self) -> tuple[StrategySpec, DeploymentConfig]:
        data = self.main.data
        configs = self._custom_configs()
        platform: ComputePlatform | None = None
        if isinstance(data.get(GROUP_KEY), dict):
            g = Fields(self.r, (GROUP_KEY,), False)
            name = g.string("deploymentGroupName") or "codedeploy"
            text = g.choice("computePlatform", allowed=tuple(p.value for p in ComputePlatform))
            platform = ComputePlatform(text) if text else None
        else:
            logical, g = self._one(self._template_fields(self.main, GROUP_TYPE, ""), "DeploymentGroup")
            g.mapping()
            name = self._cfn_name(g, "deploymentGroupName", logical)
            platform = self._cfn_platform(g)
        g.unmodelled((), _GROUP_HANDLED, _GROUP_SILENT, _GROUP_REASONS)
        config = self._group_config(g, configs, platform)
        platform = platform or config.platform
        if config.platform is not platform:
            raise g.error(("deploymentConfigName",), f"{config.name} is a {config.platform.value} configuration; this "
                                                     f"deployment group deploys to {platform.value}")
        self._appspec_hooks()
        out = self._start(name, f"imported from AWS CodeDeploy deployment group {name!r} ({config.name})", g,
                          ("deploymentGroupName",))
        for part in ("deploymentStyle", "blueGreenDeploymentConfiguration", "autoRollbackConfiguration",
                     "alarmConfiguration"):
            g.mapping(part)
        style = g.child("deploymentStyle")
        kind = style.choice("deploymentType", allowed=("IN_PLACE", "BLUE_GREEN"),
                            default="IN_PLACE" if platform is ComputePlatform.SERVER else "BLUE_GREEN")
        option = style.choice("deploymentOption", allowed=("WITH_TRAFFIC_CONTROL", "WITHOUT_TRAFFIC_CONTROL"),
                              default="WITH_TRAFFIC_CONTROL" if kind == "BLUE_GREEN" else "WITHOUT_TRAFFIC_CONTROL")
        if platform is not ComputePlatform.SERVER and kind == "IN_PLACE":
            raise style.error(("deploymentType",), f"{platform.value} deployments are always BLUE_GREEN")
        gate, termination = self._blue_green_options(g, platform, kind)
        self._rollback_and_alarms(g)
        out["strategy"] = self._strategy(config, g, in_place=kind == "IN_PLACE",
                                         traffic_control=option == "WITH_TRAFFIC_CONTROL", gate=gate,
                                         termination=termination)
        return validate_strategy(out, self.origins, self.main.file), config

    def _start(self, name: str, description: str, f: Fields, name_field: tuple) -> dict[str, Any]:
        self.origins.note(("name",), f.r, f.path(*name_field) if f.has(*name_field) else f.base)
        return {"name": name, "description": description}

    def _cfn_name(self, f: Fields, field: str, logical: str) -> str:
        value = f.r.at(f.path(field))
        return value.strip() if isinstance(value, str) and value.strip() else logical

    def _cfn_platform(self, g: Fields) -> ComputePlatform | None:
        """The platform of the Application a template's group names with ``Ref``."""
        ref = g.r.at(g.path("applicationName"))
        if not (isinstance(ref, dict) and isinstance(ref.get("Ref"), str)):
            return None
        resources = self.main.data.get("Resources", {})
        app = resources.get(ref["Ref"])
        if not (isinstance(app, dict) and app.get("Type") == APPLICATION_TYPE):
            return None
        a = Fields(g.r, ("Resources", ref["Ref"], "Properties"), True, g.parameters)
        text = a.choice("computePlatform", allowed=tuple(p.value for p in ComputePlatform), default="Server")
        return ComputePlatform(text)

    def _group_config(self, g: Fields, configs: dict[str, tuple[Fields, str]],
                      platform: ComputePlatform | None) -> DeploymentConfig:
        raw = g.r.at(g.path("deploymentConfigName"))
        if isinstance(raw, dict) and isinstance(raw.get("Ref"), str) and raw["Ref"] in configs:
            return _read_custom(*configs[raw["Ref"]])  # a DeploymentConfig resource of the same template
        name = g.string("deploymentConfigName")
        if name is None:
            name = DEFAULT_CONFIG.get(platform or ComputePlatform.SERVER)
            if name is None:
                raise g.error(("deploymentConfigName",), "is required for a Lambda deployment group")
            g.warn((), f"no deploymentConfigName: CodeDeploy uses {name}")
        if name in configs:
            return _read_custom(*configs[name])
        predefined = find_predefined(name)
        if predefined is None:
            raise g.error(("deploymentConfigName",), f"{name!r} is neither one of AWS's predefined configurations "
                                                     f"({DOC_PAGE}) nor given here: add its `aws deploy "
                                                     "get-deployment-config` output or its AWS::CodeDeploy::"
                                                     "DeploymentConfig resource to the input")
        if predefined.name != name:
            g.warn(("deploymentConfigName",), f"read as AWS's {predefined.name} (names are case-sensitive in "
                                              "CodeDeploy)")
        return predefined

    def _blue_green_options(self, g: Fields, platform: ComputePlatform, kind: str) -> tuple[bool, float]:
        """(waits for a person before traffic moves, seconds before the old version goes)."""
        b = g.child("blueGreenDeploymentConfiguration")
        if not g.has("blueGreenDeploymentConfiguration"):
            return False, 0.0
        b.mapping()
        if platform is ComputePlatform.LAMBDA:
            b.warn((), "blue/green options do not apply to Lambda deployments; ignored")
            return False, 0.0
        if kind == "IN_PLACE":
            b.warn((), "blue/green options do nothing for an IN_PLACE deployment; ignored")
            return False, 0.0
        b.unmodelled((), {"deploymentReadyOption", "terminateBlueInstancesOnDeploymentSuccess"},
                     {"greenFleetProvisioningOption"})
        ready = b.child("deploymentReadyOption")
        ready.mapping()
        action = ready.choice("actionOnTimeout", allowed=("CONTINUE_DEPLOYMENT", "STOP_DEPLOYMENT"),
                              default="CONTINUE_DEPLOYMENT")
        wait = ready.integer("waitTimeInMinutes", minimum=0)
        gate = action == "STOP_DEPLOYMENT"
        if gate:
            ready.warn(("actionOnTimeout",), f"CodeDeploy waits for `aws deploy continue-deployment` and stops the "
                                             f"deployment when nobody continues within {wait or 0} minutes; rolloutlab "
                                             "waits for `promote` as long as it takes (a manual gate)")
        elif wait:
            ready.warn(("waitTimeInMinutes",), "applies only to STOP_DEPLOYMENT (API reference, DeploymentReadyOption): "
                                               "with CONTINUE_DEPLOYMENT traffic is rerouted at once; ignored")
        term = b.child("terminateBlueInstancesOnDeploymentSuccess")
        term.mapping()
        termination = float(term.integer("terminationWaitTimeInMinutes", minimum=0, maximum=2880) or 0) * 60.0
        if term.choice("action", allowed=("TERMINATE", "KEEP_ALIVE"), default="TERMINATE") == "KEEP_ALIVE":
            term.warn(("action",), "KEEP_ALIVE leaves the original instances running, deregistered; rolloutlab scales "
                                   "the old version down after scaleDownDelaySeconds")
        return gate, termination

    def _rollback_and_alarms(self, g: Fields) -> None:
        roll = g.child("autoRollbackConfiguration")
        events: list[str] = []
        enabled = False
        if g.has("autoRollbackConfiguration"):
            roll.mapping()
            roll.unmodelled((), {"enabled", "events"})
            enabled = bool(roll.boolean("enabled"))
            events = [str(e) for e in (roll.sequence("events") or [])] if enabled else []
            if not enabled:
                roll.warn((), "automatic rollback is off: CodeDeploy leaves a failed deployment as it is; rolloutlab "
                              "always rolls back what it aborts")
        stop_rolls_back = "DEPLOYMENT_STOP_ON_ALARM" in events
        if not g.has("alarmConfiguration"):
            return
        a = g.child("alarmConfiguration")
        a.mapping()
        a.unmodelled((), {"alarms", "enabled", "ignorePollAlarmFailure"})
        on = a.boolean("enabled")
        on = True if on is None else on
        for i in range(len(a.sequence("alarms") or [])):
            name = a.string("alarms", i, "name", required=True)
            path = a.path("alarms", i, "name")
            self.alarms.append(Alarm(name, a.line("alarms", i, "name"), a.r.where(path), on, stop_rolls_back))
            if not on:
                a.warn(("alarms", i, "name"), f"CloudWatch alarm {name!r} is configured but alarms are disabled; "
                                              "nothing to model")
                continue
            then = ("stops and rolls back the deployment (DEPLOYMENT_STOP_ON_ALARM)" if stop_rolls_back
                    else "stops the deployment (no rollback on alarm is configured)")
            a.warn(("alarms", i, "name"),
                   f"CloudWatch alarm {name!r} {then} when it fires; a strategy holds no alarms: write it as a "
                   f"scenario `monitoring.alerts` rule ({{name: {name}, metric: error_rate or latency_p99, threshold: "
                   "the alarm's threshold, for: its evaluation periods x period}), where it pages the on-call "
                   "person, who rolls back after the scenario's response time")

    # ------------------------------------------------------------------ mapping

    def _strategy(self, config: DeploymentConfig, at: Fields, *, in_place: bool, traffic_control: bool, gate: bool,
                  termination: float) -> dict[str, Any]:
        """The ``strategy`` block for a configuration, deployed as the group says."""
        if config.reader is not None:
            where: tuple = (config.reader, config.path)
        else:
            where = (at.r, at.path("deploymentConfigName") if at.has("deploymentConfigName") else at.base)
        if config.platform is ComputePlatform.SERVER:
            return self._server(config, where, at, in_place, traffic_control, gate, termination)
        shift = config.shift
        assert shift is not None
        if shift.kind is Shift.ALL_AT_ONCE:
            self.origins.note(("strategy", "blueGreen"), *where)
            return {"blueGreen": self._blue_green(gate, termination, preview=config.platform is ComputePlatform.ECS)}
        # ECS: the replacement task set, at the original's size; Lambda: a version has no
        # instances to start, so the new one is ready for any weight (each shift on time)
        steps: list[dict] = [{"setCanaryScale": {"weight": 100}}]
        if config.platform is ComputePlatform.LAMBDA:
            at.warn((), "a Lambda version has no instances: rolloutlab runs the new version at full size from the "
                        "start, so every traffic shift happens on CodeDeploy's schedule (cold starts not modelled)")
        if gate:
            steps.append({"pause": {}})
        for weight in shift.weights():
            steps.append({"setWeight": weight})
            if shift.interval_minutes:
                steps.append({"pause": {"duration": shift.interval_minutes * 60}})
        self.origins.note(("strategy", "canary"), *where)
        return {"canary": {"trafficRouting": "router", "scaleDownDelaySeconds": termination, "steps": steps}}

    def _blue_green(self, gate: bool, termination: float, preview: bool) -> dict[str, Any]:
        bg: dict[str, Any] = {"activeService": "production", "previewService": "test" if preview else None,
                              "autoPromotionEnabled": not gate, "scaleDownDelaySeconds": termination}
        return bg

    def _server(self, config: DeploymentConfig, where: tuple, at: Fields, in_place: bool, traffic_control: bool,
                gate: bool, termination: float) -> dict[str, Any]:
        healthy = config.healthy
        assert healthy is not None
        if not in_place:
            if (healthy.rule, healthy.value) != (HostsRule.HOST_COUNT, 0):  # anything but all hosts at once
                at.warn(("deploymentConfigName",), f"CodeDeploy reroutes traffic to the replacement instances in batches "
                                                   f"({config.name}: {healthy.rule.value} {healthy.value}); rolloutlab "
                                                   "switches all traffic at once")
            self.origins.note(("strategy", "blueGreen"), *where)
            return {"blueGreen": self._blue_green(gate, termination, preview=False)}
        unavailable, note = max_unavailable(healthy)
        if note:
            at.warn(("deploymentConfigName",), note)
        if not traffic_control:
            at.warn(("deploymentStyle",), "WITHOUT_TRAFFIC_CONTROL: instances keep getting requests while CodeDeploy "
                                          "updates them (those requests fail); rolloutlab's rolling update takes a pod "
                                          "out of service while it restarts")
        self.origins.note(("strategy", "rolling"), *where)
        return {"rolling": {"maxSurge": 0, "maxUnavailable": unavailable}}


def _read_custom(f: Fields, name: str) -> DeploymentConfig:
    f.mapping()
    config = read_config(f, name)
    predefined = find_predefined(config.name)
    if predefined is not None and (predefined.shift, predefined.healthy) != (config.shift, config.healthy):
        f.warn(("deploymentConfigName",), f"differs from AWS's predefined {predefined.name} ({predefined.meaning}); "
                                          "the values given here are used")
    return config


def import_codedeploy(main: YamlDocument, documents: list[YamlDocument], warnings: list[str]) -> CodeDeployImport:
    """Import the deployment group (or configuration) ``main`` with the documents beside it."""
    return CodeDeployImporter(main, documents, warnings).run()


def _group_spec(main: YamlDocument, documents: list[YamlDocument], warnings: list[str]) -> StrategySpec:
    return import_codedeploy(main, documents, warnings).spec


def source_entries(make: Callable[..., T]) -> list[T]:
    """The ``importers.sources.SOURCES`` entries for CodeDeploy, built with its ``Source``
    (passed in, so this module never imports the list that imports it)."""
    return [
        make("codedeploy-deployment-group", "an AWS CodeDeploy deployment group (`aws deploy get-deployment-group` "
             f"output, or a CloudFormation {GROUP_TYPE})", is_deployment_group, _group_spec),
        make("codedeploy-deployment-config", "an AWS CodeDeploy deployment configuration (`aws deploy "
             f"get-deployment-config` output, or a CloudFormation {CONFIG_TYPE})", is_deployment_config, _group_spec),
    ]


__all__ = ["Alarm", "CodeDeployImport", "CodeDeployImporter", "Hook", "import_codedeploy", "is_appspec",
           "is_deployment_config", "is_deployment_group", "source_entries"]
