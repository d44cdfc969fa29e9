"""AWS CodeDeploy deployment configurations: AWS's predefined ones, and custom ones read
from ``aws deploy get-deployment-config`` output or an ``AWS::CodeDeploy::DeploymentConfig``.

A deployment configuration says how fast one deployment moves
(https://docs.aws.amazon.com/codedeploy/latest/userguide/deployment-configurations.html,
"Working with deployment configurations in CodeDeploy"; source
awsdocs/aws-codedeploy-user-guide doc_source/deployment-configurations.md):

- **ECS and Lambda** shift traffic. *Canary*: "traffic is shifted in two increments", the
  canary percentage first, "the remaining traffic" one interval later. *Linear*: "traffic
  is shifted in equal increments with an equal number of minutes between each increment",
  the percentage "shifted at the start of each increment" (API reference,
  ``TimeBasedLinear.linearPercentage``) until all traffic is shifted. *All-at-once*: all
  traffic at once.
- **EC2/on-premises (Server)** keeps a minimum of healthy hosts while it updates the
  others: ``HOST_COUNT`` (a number of hosts) or ``FLEET_PERCENT`` (a percentage, rounded
  up to whole hosts); the API reference's ``MinimumHealthyHosts``: "In an example of nine
  instances, if a HOST_COUNT of six is specified, deploy to up to three instances at a
  time ... If a FLEET_PERCENT of 40 is specified, deploy to up to five instances at a
  time"; ``CodeDeployDefault.OneAtATime`` reports ``MOST_CONCURRENCY`` 1: one at a time.

What a shift becomes in our spec (``compute_shift_weights``): a canary is one
``setWeight: P`` then a ``pause`` of the interval; a linear one is ``setWeight: P, 2P, ...``
below 100, each followed by a pause of the interval; the end of the steps shifts the rest.
So ``ECSLinear10PercentEvery1Minutes`` shifts at 0, 1, ..., 9 minutes: ten increments,
nine intervals from the first shift to the last.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from rolloutlab.strategies.importers.manifest import MISSING, ManifestReader, Path, as_integer, describe_type

DOC_PAGE = "https://docs.aws.amazon.com/codedeploy/latest/userguide/deployment-configurations.html"


class ComputePlatform(str, Enum):
    SERVER = "Server"  # EC2/on-premises instances
    ECS = "ECS"
    LAMBDA = "Lambda"


class Shift(str, Enum):
    """``trafficRoutingConfig.type``."""

    CANARY = "TimeBasedCanary"
    LINEAR = "TimeBasedLinear"
    ALL_AT_ONCE = "AllAtOnce"


class HostsRule(str, Enum):
    """``minimumHealthyHosts.type``."""

    HOST_COUNT = "HOST_COUNT"
    FLEET_PERCENT = "FLEET_PERCENT"
    MOST_CONCURRENCY = "MOST_CONCURRENCY"  # what GetDeploymentConfig says of OneAtATime: one host at a time


@dataclass(frozen=True)
class TrafficShift:
    kind: Shift
    percentage: int = 0  # canary: the first increment; linear: every increment
    interval_minutes: int = 0  # canary: before the rest; linear: between increments

    def weights(self) -> list[int]:
        """The weights the steps set before the end shifts the rest (``setWeight`` values)."""
        if self.kind is Shift.CANARY:
            return [self.percentage]
        if self.kind is Shift.LINEAR:
            return list(range(self.percentage, 100, self.percentage))
        return []


@dataclass(frozen=True)
class HealthyHosts:
    rule: HostsRule
    value: int


@dataclass(frozen=True)
class DeploymentConfig:
    """One deployment configuration, predefined or custom."""

    name: str
    platform: ComputePlatform
    shift: TrafficShift | None = None  # ECS, Lambda
    healthy: HealthyHosts | None = None  # Server
    meaning: str = ""  # predefined: AWS's description
    reader: ManifestReader | None = None  # custom: the document it was read from ...
    path: Path = ()  # ... and where in it (the object holding its fields)

    @property
    def predefined(self) -> bool:
        return self.reader is None


def _predefined(name: str, platform: ComputePlatform, meaning: str, shift: TrafficShift | None = None,
                healthy: HealthyHosts | None = None) -> tuple[str, DeploymentConfig]:
    full = f"CodeDeployDefault.{name}"
    return full, DeploymentConfig(full, platform, shift, healthy, meaning)


_CANARY, _LINEAR, _ALL = Shift.CANARY, Shift.LINEAR, Shift.ALL_AT_ONCE
_SERVER, _ECS, _LAMBDA = ComputePlatform.SERVER, ComputePlatform.ECS, ComputePlatform.LAMBDA
_TENTH = "Shifts 10 percent of traffic in the first increment. The remaining 90 percent is deployed {} later."
_EVERY = "Shifts 10 percent of traffic every {} until all traffic is shifted."

PREDEFINED: dict[str, DeploymentConfig] = dict([
    # EC2/on-premises: minimum healthy hosts (the page's table, in-place deployments)
    _predefined("AllAtOnce", _SERVER, "Attempts to deploy an application revision to as many instances as possible "
                "at once.", healthy=HealthyHosts(HostsRule.HOST_COUNT, 0)),
    _predefined("HalfAtATime", _SERVER, "Deploys to up to half of the instances at a time (with fractions rounded "
                "down).", healthy=HealthyHosts(HostsRule.FLEET_PERCENT, 50)),
    _predefined("OneAtATime", _SERVER, "Deploys the application revision to only one instance at a time.",
                healthy=HealthyHosts(HostsRule.MOST_CONCURRENCY, 1)),
    # Amazon ECS
    _predefined("ECSLinear10PercentEvery1Minutes", _ECS, _EVERY.format("minute"), TrafficShift(_LINEAR, 10, 1)),
    _predefined("ECSLinear10PercentEvery3Minutes", _ECS, _EVERY.format("three minutes"), TrafficShift(_LINEAR, 10, 3)),
    _predefined("ECSCanary10Percent5Minutes", _ECS, _TENTH.format("five minutes"), TrafficShift(_CANARY, 10, 5)),
    _predefined("ECSCanary10Percent15Minutes", _ECS, _TENTH.format("15 minutes"), TrafficShift(_CANARY, 10, 15)),
    _predefined("ECSAllAtOnce", _ECS, "Shifts all traffic to the updated Amazon ECS container at once.",
                TrafficShift(_ALL)),
    # AWS Lambda
    _predefined("LambdaCanary10Percent5Minutes", _LAMBDA, _TENTH.format("five minutes"), TrafficShift(_CANARY, 10, 5)),
    _predefined("LambdaCanary10Percent10Minutes", _LAMBDA, _TENTH.format("10 minutes"), TrafficShift(_CANARY, 10, 10)),
    _predefined("LambdaCanary10Percent15Minutes", _LAMBDA, _TENTH.format("15 minutes"), TrafficShift(_CANARY, 10, 15)),
    _predefined("LambdaCanary10Percent30Minutes", _LAMBDA, _TENTH.format("30 minutes"), TrafficShift(_CANARY, 10, 30)),
    _predefined("LambdaLinear10PercentEvery1Minute", _LAMBDA, _EVERY.format("minute"), TrafficShift(_LINEAR, 10, 1)),
    _predefined("LambdaLinear10PercentEvery2Minutes", _LAMBDA, _EVERY.format("two minutes"),
                TrafficShift(_LINEAR, 10, 2)),
    _predefined("LambdaLinear10PercentEvery3Minutes", _LAMBDA, _EVERY.format("three minutes"),
                TrafficShift(_LINEAR, 10, 3)),
    _predefined("LambdaLinear10PercentEvery10Minutes", _LAMBDA, _EVERY.format("10 minutes"),
                TrafficShift(_LINEAR, 10, 10)),
    _predefined("LambdaAllAtOnce", _LAMBDA, "Shifts all traffic to the updated Lambda functions at once.",
                TrafficShift(_ALL)),
])
"""AWS's predefined deployment configurations, as the page above lists and describes them."""

DEFAULT_CONFIG = {_SERVER: "CodeDeployDefault.OneAtATime", _ECS: "CodeDeployDefault.ECSAllAtOnce"}
"""What a deployment group without ``deploymentConfigName`` uses ("If you don't specify a
deployment configuration, CodeDeploy uses the CodeDeployDefault.OneAtATime deployment
configuration"; ECS deployment groups default to ECSAllAtOnce)."""


def find_predefined(name: str) -> DeploymentConfig | None:
    """AWS's predefined configuration of this name; the page once spelled some ``10percent``."""
    found = PREDEFINED.get(name)
    if found is None:
        found = next((c for n, c in PREDEFINED.items() if n.lower() == name.lower()), None)
    return found


# --------------------------------------------------------------------------- reading


class Fields:
    """One CodeDeploy object as the AWS CLI prints it (camelCase: ``trafficRoutingConfig``)
    or as CloudFormation declares it (PascalCase: ``TrafficRoutingConfig``), read with the
    line of every field. A CloudFormation ``{"Ref": parameter}`` reads the parameter's
    ``Default``; any other intrinsic function is refused where a value is needed."""

    def __init__(self, r: ManifestReader, base: Path, pascal: bool, parameters: dict | None = None) -> None:
        self.r = r
        self.base = tuple(base)
        self.pascal = pascal
        self.parameters = parameters or {}

    def path(self, *names: str | int) -> Path:
        return (*self.base, *(n[0].upper() + n[1:] if self.pascal and isinstance(n, str) else n for n in names))

    def child(self, *names: str | int) -> Fields:
        return Fields(self.r, self.path(*names), self.pascal, self.parameters)

    def raw(self, *names: str | int) -> Any:
        value = self.r.at(self.path(*names))
        if isinstance(value, dict) and len(value) == 1:
            function, argument = next(iter(value.items()))
            function = str(function)
            if function == "Ref" and isinstance(argument, str):
                parameter = self.parameters.get(argument)
                if isinstance(parameter, dict) and "Default" in parameter:
                    return parameter["Default"]
            if function == "Ref" or function.startswith("Fn::"):
                raise self.error(names, f"is a CloudFormation function ({function}); rolloutlab reads literal values: "
                                        "write the value here, or give the parameter a Default")
        return value

    def has(self, *names: str | int) -> bool:
        return self.r.at(self.path(*names)) not in (MISSING, None)

    def warn(self, names: tuple, message: str) -> None:
        self.r.warn(self.path(*names), message)

    def error(self, names: tuple, message: str):
        return self.r.error(self.path(*names), message)

    def line(self, *names: str | int) -> int:
        return self.r.line(self.path(*names))

    def mapping(self, *names: str | int) -> dict | None:
        return self.r.mapping(self.path(*names))

    def sequence(self, *names: str | int) -> list | None:
        return self.r.sequence(self.path(*names))

    def string(self, *names: str | int, required: bool = False) -> str | None:
        value = self.raw(*names)
        if value in (MISSING, None):
            if required:
                raise self.error(names, "is required")
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.error(names, f"must be non-empty text, got {describe_type(value)}")
        return value.strip()

    def choice(self, *names: str, allowed: tuple[str, ...], default: str | None = None) -> str | None:
        value = self.string(*names)
        if value is None:
            return default
        for option in allowed:
            if value.upper() == option.upper():
                return option
        raise self.error(names, f"must be one of {', '.join(allowed)}, got {value!r}")

    def integer(self, *names: str | int, minimum: int | None = None, maximum: int | None = None,
                required: bool = False) -> int | None:
        value = self.raw(*names)
        if value in (MISSING, None):
            if required:
                raise self.error(names, "needs a whole number")
            return None
        number = as_integer(value, text_ok=self.pascal)  # CloudFormation takes "5" for an Integer
        if number is None:
            raise self.error(names, f"must be a whole number, got {describe_type(value)}")
        if minimum is not None and number < minimum:
            raise self.error(names, f"must be at least {minimum}, got {number}")
        if maximum is not None and number > maximum:
            raise self.error(names, f"must be at most {maximum}, got {number}")
        return number

    def boolean(self, *names: str | int) -> bool | None:
        value = self.raw(*names)
        if value in (MISSING, None):
            return None
        if isinstance(value, str) and self.pascal and value.lower() in ("true", "false"):
            return value.lower() == "true"  # CloudFormation takes "true" for a Boolean
        if not isinstance(value, bool):
            raise self.error(names, f"must be true or false, got {describe_type(value)}")
        return value

    def unmodelled(self, names: tuple, handled: set[str], silent: set[str] = frozenset(),
                   reasons: dict[str, str] | None = None) -> None:
        """Warn about every field of the object at ``names`` that is neither handled nor silent
        (the names as the AWS CLI writes them; CloudFormation's are matched capitalised)."""
        fix = (lambda n: n[0].upper() + n[1:]) if self.pascal else (lambda n: n)
        self.r.report_unmodelled(self.path(*names), {fix(n) for n in handled}, {fix(n) for n in silent},
                                 {fix(k): v for k, v in (reasons or {}).items()})


_CONFIG_HANDLED = {"deploymentConfigName", "computePlatform", "trafficRoutingConfig", "minimumHealthyHosts"}
_CONFIG_SILENT = {"deploymentConfigId", "createTime"}
_CONFIG_REASONS = {"zonalConfig": "CodeDeploy deploys zone by zone; rolloutlab models one place (use waves for "
                                  "regions); not modelled"}


def read_config(f: Fields, name: str | None) -> DeploymentConfig:
    """A custom deployment configuration: the object at ``f`` (``deploymentConfigInfo`` of
    the CLI's output, or a DeploymentConfig resource's ``Properties``)."""
    f.unmodelled((), _CONFIG_HANDLED, _CONFIG_SILENT, _CONFIG_REASONS)
    name = f.string("deploymentConfigName") or name
    if name is None:
        raise f.error(("deploymentConfigName",), "is required")
    platform_text = f.choice("computePlatform", allowed=tuple(p.value for p in ComputePlatform), default="Server")
    platform = ComputePlatform(platform_text)
    shift = healthy = None
    if platform is ComputePlatform.SERVER:
        if f.has("trafficRoutingConfig"):
            f.warn(("trafficRoutingConfig",), "traffic routing applies to ECS and Lambda; CodeDeploy ignores it for "
                                              "EC2/on-premises; ignored")
        healthy = _read_healthy(f, name)
    else:
        shift = _read_shift(f)
    return DeploymentConfig(name, platform, shift, healthy, reader=f.r, path=f.base)


def _read_shift(f: Fields) -> TrafficShift:
    if not f.has("trafficRoutingConfig"):
        return TrafficShift(Shift.ALL_AT_ONCE)  # the API's default for ECS and Lambda
    t = f.child("trafficRoutingConfig")
    t.mapping()
    kind = Shift(t.choice("type", allowed=tuple(s.value for s in Shift), default=Shift.ALL_AT_ONCE.value))
    if kind is Shift.ALL_AT_ONCE:
        t.unmodelled((), {"type"}, {"timeBasedCanary", "timeBasedLinear"})
        return TrafficShift(kind)
    block, percent, interval = (("timeBasedCanary", "canaryPercentage", "canaryInterval") if kind is Shift.CANARY
                                else ("timeBasedLinear", "linearPercentage", "linearInterval"))
    t.unmodelled((), {"type", block}, {"timeBasedCanary", "timeBasedLinear"})
    if t.mapping(block) is None:
        raise t.error((block,), f"is required for type {kind.value}")
    b = t.child(block)
    b.unmodelled((), {percent, interval})
    percentage = b.integer(percent, minimum=1, maximum=99, required=True)
    minutes = b.integer(interval, minimum=0, maximum=2880, required=True)  # 2 days, CodeDeploy's longest wait
    return TrafficShift(kind, percentage, minutes)


def _read_healthy(f: Fields, name: str) -> HealthyHosts:
    if not f.has("minimumHealthyHosts"):
        raise f.error(("minimumHealthyHosts",), f"is required for an EC2/on-premises deployment configuration "
                                                f"({name!r})")
    h = f.child("minimumHealthyHosts")
    h.mapping()
    h.unmodelled((), {"type", "value"})
    rule = HostsRule(h.choice("type", allowed=tuple(r.value for r in HostsRule), default="FLEET_PERCENT"))
    value = h.integer("value", minimum=0, required=True)
    if rule is HostsRule.FLEET_PERCENT and value > 99:
        raise h.error(("value",), f"a FLEET_PERCENT of {value} leaves no host to update (CodeDeploy takes 0 to 99)")
    return HealthyHosts(rule, value)


def max_unavailable(healthy: HealthyHosts) -> tuple[int | str, str | None]:
    """Kubernetes' ``maxUnavailable`` for a minimum of healthy hosts, and what it cannot say.

    ``FLEET_PERCENT p`` keeps ceil(p% of N) hosts, so it updates floor((100 - p)% of N) at a
    time: ``maxUnavailable: (100-p)%``, which Kubernetes rounds down the same way (AWS's
    example: 40% of nine keeps four, updates five; 60% of nine rounds down to five).
    ``HOST_COUNT v`` updates N - v at a time, which depends on the fleet size rolloutlab
    does not know here: 100% when v is 0 (AllAtOnce), else one at a time, with a note.
    """
    if healthy.rule is HostsRule.MOST_CONCURRENCY:
        return 1, None
    if healthy.rule is HostsRule.FLEET_PERCENT:
        return f"{100 - healthy.value}%", None
    if healthy.value == 0:
        return "100%", None
    return 1, (f"HOST_COUNT {healthy.value} keeps {healthy.value} hosts in service, so CodeDeploy updates N - "
               f"{healthy.value} hosts at a time on a fleet of N; rolloutlab's maxUnavailable is a count or a "
               f"percentage of the service's replicas: 1 assumed, set it to N - {healthy.value} for your fleet")


__all__ = ["DEFAULT_CONFIG", "DOC_PAGE", "PREDEFINED", "ComputePlatform", "DeploymentConfig", "Fields",
           "HealthyHosts", "HostsRule", "Shift", "TrafficShift", "find_predefined", "max_unavailable", "read_config"]
