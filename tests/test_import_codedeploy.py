"""Importing AWS CodeDeploy deployment groups and configurations: AWS's documented table,
the documented durations in a dry run, the group's options, and bad input."""

from __future__ import annotations

import copy
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rolloutlab.scenarios.schema.monitoring import AlertRule
from rolloutlab.strategies.dry_run import IdealWorld
from rolloutlab.strategies.files import load_strategy
from rolloutlab.strategies.importers import dump_strategy_yaml, import_manifest, import_text
from rolloutlab.strategies.importers.codedeploy import import_codedeploy, is_deployment_config, is_deployment_group
from rolloutlab.strategies.importers.codedeploy_configs import PREDEFINED, DeploymentConfig
from rolloutlab.strategies.importers.sources import SOURCES
from rolloutlab.strategies.spec import StrategyKind, StrategySpec
from rolloutlab.strategies.yaml_input import InputError, parse_yaml_documents, parse_yaml_file, validate_document

ROOT = Path(__file__).resolve().parent.parent
AWS = ROOT / "tests" / "fixtures" / "aws"
FIXTURES = ROOT / "tests" / "fixtures"


def rolloutlab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rolloutlab.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def group(config: str | None, platform: str = "ECS", **extra) -> str:
    """``get-deployment-group`` output (JSON) for a group using ``config``."""
    info: dict = {"applicationName": "app", "deploymentGroupName": "dg", "computePlatform": platform}
    if config is not None:
        info["deploymentConfigName"] = config
    info.update(extra)
    return json.dumps({"deploymentGroupInfo": info}, indent=4)


def steps_of(spec) -> list[tuple[str, object]]:
    out = []
    for step in spec.strategy.canary.steps:
        if step.set_weight is not None:
            out.append(("setWeight", step.set_weight))
        elif step.pause is not None:
            out.append(("pause", step.pause.duration))
        elif step.set_canary_scale is not None:
            out.append(("setCanaryScale", step.set_canary_scale.weight))
    return out


# --------------------------------------------------------------------------- AWS's table

# "Working with deployment configurations in CodeDeploy", the three tables of predefined
# configurations (EC2/on-premises, Amazon ECS, AWS Lambda), names as AWS spells them.
DOCUMENTED_NAMES = """
AllAtOnce HalfAtATime OneAtATime
ECSLinear10PercentEvery1Minutes ECSLinear10PercentEvery3Minutes ECSCanary10Percent5Minutes
ECSCanary10Percent15Minutes ECSAllAtOnce
LambdaCanary10Percent5Minutes LambdaCanary10Percent10Minutes LambdaCanary10Percent15Minutes
LambdaCanary10Percent30Minutes LambdaLinear10PercentEvery1Minute LambdaLinear10PercentEvery2Minutes
LambdaLinear10PercentEvery3Minutes LambdaLinear10PercentEvery10Minutes LambdaAllAtOnce
""".split()


def test_the_built_in_table_is_the_documented_list():
    """Every predefined configuration AWS documents is known, and nothing else."""
    assert set(PREDEFINED) == {f"CodeDeployDefault.{name}" for name in DOCUMENTED_NAMES}


def documented_shift_seconds(name: str) -> tuple[list[int], float]:
    """From the name and the page's definitions, not from our table: the weights traffic
    passes through and the time from the first shift to the last one. Canary: P% first,
    "the remaining ... N minutes later". Linear: "Shifts P percent of traffic every N
    minutes until all traffic is shifted": ceil(100 / P) shifts, one interval apart."""
    canary = re.search(r"Canary(\d+)Percent(\d+)Minutes", name)
    if canary:
        p, minutes = int(canary.group(1)), int(canary.group(2))
        return [p, 100], minutes * 60.0
    linear = re.search(r"Linear(\d+)PercentEvery(\d+)Minutes?$", name)
    assert linear, name
    p, minutes = int(linear.group(1)), int(linear.group(2))
    shifts = math.ceil(100 / p)
    return [min(p * k, 100) for k in range(1, shifts + 1)], (shifts - 1) * minutes * 60.0


def shift_times(spec, start_delay: float = 10.0) -> list[tuple[float, float]]:
    """(time, weight) of every traffic shift the dry run makes (the weight users see: a
    new version's pods start before it carries its share)."""
    world = IdealWorld(spec.with_replicas(4), start_delay=start_delay, gate_seconds=None)
    world.run(until=24 * 3600.0)
    assert world.status.completed, world.status
    shifts, last = [], 0.0
    for decision in world.log:
        if decision.effective_weight != last:
            shifts.append((decision.at, decision.effective_weight))
            last = decision.effective_weight
    return shifts


TRAFFIC_SHIFTING = [n for n, c in PREDEFINED.items() if c.shift is not None and c.shift.weights()]


@pytest.mark.parametrize("name", TRAFFIC_SHIFTING, ids=[n.split(".")[1] for n in TRAFFIC_SHIFTING])
def test_planned_shifts_take_the_documented_time(name):
    """A dry run of each predefined canary/linear configuration shifts through the documented
    weights, and the first shift to the last takes the documented time."""
    platform = PREDEFINED[name].platform.value
    spec = import_text(group(name, platform), "dg.json").spec
    weights, seconds = documented_shift_seconds(name)
    shifts = shift_times(spec)
    assert [w for _, w in shifts] == weights
    assert shifts[-1][0] - shifts[0][0] == pytest.approx(seconds)


@pytest.mark.parametrize("fixture, documented_seconds", [
    ("ecs-canary-10-percent-5-minutes.json", 5 * 60),  # "The remaining 90 percent is deployed five minutes later"
    # "Shifts 10 percent of traffic every minute until all traffic is shifted": 10 shifts, 9 intervals
    ("ecs-linear-10-percent-every-1-minutes.json", (math.ceil(100 / 10) - 1) * 60),
], ids=["ECSCanary10Percent5Minutes", "ECSLinear10PercentEvery1Minutes"])
def test_rolloutlab_plan_of_the_imported_config_shows_the_documented_duration(tmp_path, fixture, documented_seconds):
    """`rolloutlab import` then `rolloutlab plan`: the printed plan shifts the first 10% when the
    replacement is ready (10 s) and the last of the traffic the documented time later."""
    strategy = tmp_path / "imported.yaml"
    imported = rolloutlab("import", str(AWS / fixture), "-o", str(strategy))
    assert imported.returncode == 0, imported.stderr
    result = rolloutlab("plan", str(strategy), "--replicas", "4", "--start-seconds", "10")
    assert result.returncode == 0, result.stderr
    times = [float(t) for t in re.findall(r"│\s*([\d.]+) │ canary weight \d+ -> \d+", result.stdout)]
    assert re.search(r"canary weight 0 -> 10\b", result.stdout) and re.search(r"-> 100\b", result.stdout)
    assert times[0] == 10.0
    assert times[-1] - times[0] == documented_seconds
    assert f"outcome: promoted after {10 + documented_seconds:g}s" in result.stdout


# --------------------------------------------------------------------------- mapping

MAPPING = [
    # (id, group JSON, kind, expected)
    ("ECS canary: full-size replacement, then 10% for 5m",
     group("CodeDeployDefault.ECSCanary10Percent15Minutes"), StrategyKind.CANARY,
     [("setCanaryScale", 100), ("setWeight", 10), ("pause", 900.0)]),
    ("Lambda canary: the new version ready for any weight",
     group("CodeDeployDefault.LambdaCanary10Percent30Minutes", "Lambda"), StrategyKind.CANARY,
     [("setCanaryScale", 100), ("setWeight", 10), ("pause", 1800.0)]),
    ("ECS linear every 3 minutes",
     group("CodeDeployDefault.ECSLinear10PercentEvery3Minutes"), StrategyKind.CANARY,
     [("setCanaryScale", 100)] + [s for w in range(10, 100, 10) for s in (("setWeight", w), ("pause", 180.0))]),
    ("ECS all at once is a blue-green switch", group("CodeDeployDefault.ECSAllAtOnce"), StrategyKind.BLUE_GREEN, None),
    ("Lambda all at once", group("CodeDeployDefault.LambdaAllAtOnce", "Lambda"), StrategyKind.BLUE_GREEN, None),
    ("ECS group without a config uses ECSAllAtOnce", group(None), StrategyKind.BLUE_GREEN, None),
    ("EC2 AllAtOnce in place: every host at once", group("CodeDeployDefault.AllAtOnce", "Server"),
     StrategyKind.ROLLING, ("0", "100%")),
    ("EC2 HalfAtATime: half, rounded down", group("CodeDeployDefault.HalfAtATime", "Server"), StrategyKind.ROLLING,
     ("0", "50%")),
    ("EC2 OneAtATime: one host", group("CodeDeployDefault.OneAtATime", "Server"), StrategyKind.ROLLING, ("0", "1")),
    ("EC2 group without a config uses OneAtATime", group(None, "Server"), StrategyKind.ROLLING, ("0", "1")),
    ("EC2 blue/green switches at once", group("CodeDeployDefault.AllAtOnce", "Server",
                                              deploymentStyle={"deploymentType": "BLUE_GREEN",
                                                               "deploymentOption": "WITH_TRAFFIC_CONTROL"}),
     StrategyKind.BLUE_GREEN, None),
]


@pytest.mark.parametrize("text, kind, expected", [row[1:] for row in MAPPING], ids=[row[0] for row in MAPPING])
def test_mapping_table(text, kind, expected):
    """Each compute platform and configuration becomes the strategy the module docstring says."""
    result = import_text(text, "dg.json")
    assert result.source == "codedeploy-deployment-group"
    spec = result.spec
    assert spec.strategy.kind is kind
    if kind is StrategyKind.CANARY:
        assert spec.strategy.canary.traffic_routing.value == "router"
        assert steps_of(spec) == expected
    elif kind is StrategyKind.ROLLING:
        rolling = spec.strategy.rolling
        assert (str(rolling.max_surge), str(rolling.max_unavailable)) == expected
    else:
        assert spec.strategy.blue_green.auto_promotion_enabled


@pytest.mark.parametrize("healthy, unavailable, warned", [
    ({"type": "FLEET_PERCENT", "value": 40}, "60%", False),  # AWS: 40% of nine keeps four, updates five
    ({"type": "FLEET_PERCENT", "value": 75}, "25%", False),
    ({"type": "HOST_COUNT", "value": 0}, "100%", False),
    ({"type": "HOST_COUNT", "value": 6}, 1, True),  # N - 6 at a time: depends on the fleet size
], ids=["fleet-40", "fleet-75", "hosts-0", "hosts-6"])
def test_minimum_healthy_hosts_become_max_unavailable(healthy, unavailable, warned):
    """A custom EC2 configuration's minimum healthy hosts sets maxUnavailable; a host count that
    depends on the fleet size is said so."""
    config = {"deploymentConfigInfo": {"deploymentConfigName": "Custom", "computePlatform": "Server",
                                       "minimumHealthyHosts": healthy}}
    result = import_text(json.dumps(config, indent=2), "c.json")
    assert result.source == "codedeploy-deployment-config"
    assert result.spec.strategy.rolling.max_unavailable == unavailable
    assert result.spec.strategy.rolling.max_surge == 0
    assert any("HOST_COUNT" in w for w in result.warnings) is warned


def test_ec2_minimum_healthy_hosts_round_as_aws_documents():
    """With nine instances, HalfAtATime updates four at a time and FLEET_PERCENT 40 five, as
    AWS's docs say: the dry run's rolling update takes that many old pods down at once."""
    for name_or_config, at_once in (("CodeDeployDefault.HalfAtATime", 4),
                                    ({"type": "FLEET_PERCENT", "value": 40}, 5)):
        if isinstance(name_or_config, str):
            spec = import_text(group(name_or_config, "Server"), "dg.json").spec
        else:
            text = json.dumps({"deploymentConfigInfo": {"deploymentConfigName": "c", "minimumHealthyHosts":
                                                        name_or_config}})
            spec = import_text(text, "c.json").spec
        world = IdealWorld(spec.with_replicas(9), gate_seconds=None)
        world.run(until=3600.0)
        assert world.status.completed
        assert min(d.stable_ready + d.canary_ready for d in world.log) == 9 - at_once


# --------------------------------------------------------------------------- the group's options


def test_ecs_group_with_appspec_keeps_the_schedule_and_reports_alarms_and_hooks():
    """The ECS fixture: the canary of its predefined config, the original task set kept 5
    minutes, each alarm exposed and warned about as a scenario alert rule, each hook warned
    about with no step added."""
    docs = parse_yaml_file(AWS / "ecs-blue-green.yaml")
    warnings: list[str] = []
    imported = import_codedeploy(docs[0], docs, warnings)
    spec = imported.spec
    assert steps_of(spec) == [("setCanaryScale", 100), ("setWeight", 10), ("pause", 300.0)]
    assert spec.strategy.canary.scale_down_delay_seconds == 300.0
    assert [(a.name, a.line, a.rolls_back) for a in imported.alarms] == [
        ("checkout-5xx-rate", 22, True), ("checkout-p99-latency", 23, True)]
    assert imported.alarms[0].field == "deploymentGroupInfo.alarmConfiguration.alarms[0].name"
    alert = AlertRule.model_validate(imported.alarms[0].alert_rule(threshold=0.02))  # a caller can write it
    assert alert.name == "checkout-5xx-rate" and alert.threshold == 0.02
    alarm_warnings = [w for w in warnings if "CloudWatch alarm" in w]
    assert len(alarm_warnings) == 2 and all("monitoring.alerts" in w for w in alarm_warnings)
    assert alarm_warnings[0].startswith("line 22: deploymentGroupInfo.alarmConfiguration.alarms[0].name:")
    assert [h.event for h in imported.hooks] == ["BeforeInstall", "AfterInstall", "AfterAllowTestTraffic",
                                                 "BeforeAllowTraffic", "AfterAllowTraffic"]
    hook_warnings = [w for w in warnings if w.startswith("line ") and "hook " in w]
    assert len(hook_warnings) == 5 and "AppSpec Hooks[2].AfterAllowTestTraffic" in hook_warnings[2]
    assert import_manifest(AWS / "ecs-blue-green.yaml").spec == spec  # the same through `rolloutlab import`


def ready_option(action: str, wait: int) -> dict:
    return {"blueGreenDeploymentConfiguration": {"deploymentReadyOption": {"actionOnTimeout": action,
                                                                           "waitTimeInMinutes": wait}}}


def test_stop_deployment_is_a_manual_gate_before_any_traffic_moves():
    """STOP_DEPLOYMENT waits for a person: a canary pauses (indefinitely) before its first
    weight, a blue-green does not promote by itself."""
    canary = import_text(group("CodeDeployDefault.ECSCanary10Percent5Minutes", **ready_option("STOP_DEPLOYMENT", 60)),
                         "dg.json")
    assert steps_of(canary.spec)[:3] == [("setCanaryScale", 100), ("pause", None), ("setWeight", 10)]
    assert any("continue-deployment" in w and "60 minutes" in w for w in canary.warnings)
    switch = import_text(group("CodeDeployDefault.ECSAllAtOnce", **ready_option("STOP_DEPLOYMENT", 60)), "dg.json")
    assert switch.spec.strategy.blue_green.auto_promotion_enabled is False
    world = IdealWorld(switch.spec.with_replicas(2), gate_seconds=None)
    world.run(until=3600.0)
    assert not world.status.completed  # nobody continued
    world = IdealWorld(switch.spec.with_replicas(2), gate_seconds=120.0)
    world.run(until=3600.0)
    assert world.status.completed and world.gates_passed == 1


def test_continue_deployment_ignores_its_wait_time():
    """With CONTINUE_DEPLOYMENT traffic is rerouted at once: AWS applies waitTimeInMinutes only
    to STOP_DEPLOYMENT, so it is ignored with a warning."""
    result = import_text(group("CodeDeployDefault.ECSAllAtOnce", **ready_option("CONTINUE_DEPLOYMENT", 30)), "dg.json")
    assert result.spec.strategy.blue_green.auto_promotion_enabled is True
    assert result.spec.strategy.blue_green.auto_promotion_seconds is None
    assert any("waitTimeInMinutes: applies only to STOP_DEPLOYMENT" in w for w in result.warnings)


def test_cloudformation_ec2_in_place_group_uses_its_custom_config():
    """The CloudFormation JSON fixture: the group's Ref to its DeploymentConfig resource and the
    Application's platform give an in-place rolling update keeping 75% of hosts."""
    result = import_manifest(AWS / "cloudformation-ec2-in-place.json")
    assert result.source == "codedeploy-deployment-group"
    assert result.spec.name == "web-production"
    assert result.spec.strategy.rolling.max_unavailable == "25%" and result.spec.strategy.rolling.max_surge == 0
    assert any(w.startswith("line 45: Resources.WebDeploymentGroup.Properties.AlarmConfiguration.Alarms[0].Name:")
               for w in result.warnings)


def test_cloudformation_yaml_lambda_group_with_linear_config():
    """The CloudFormation YAML fixture: a Lambda linear 20% every 2 minutes shifts 20, 40, 60,
    80 then the rest, 2 minutes apart."""
    spec = import_manifest(AWS / "cloudformation-lambda-linear.yaml").spec
    assert steps_of(spec) == [("setCanaryScale", 100)] + [s for w in (20, 40, 60, 80)
                                                          for s in (("setWeight", w), ("pause", 120.0))]
    shifts = shift_times(spec)
    assert [w for _, w in shifts] == [20, 40, 60, 80, 100]
    assert shifts[-1][0] - shifts[0][0] == 4 * 120


def test_a_group_uses_a_custom_config_given_in_another_document():
    """A group naming a custom configuration reads it from the `get-deployment-config` output
    given beside it (here two documents of one stream)."""
    config = {"deploymentConfigInfo": {"deploymentConfigName": "Canary25Percent45Minutes", "computePlatform": "ECS",
                                       "trafficRoutingConfig": {"type": "TimeBasedCanary", "timeBasedCanary": {
                                           "canaryPercentage": 25, "canaryInterval": 45}}}}
    text = group("Canary25Percent45Minutes") + "\n---\n" + json.dumps(config, indent=4)
    docs = parse_yaml_documents(text, "both.yaml")
    imported = import_codedeploy(docs[0], docs, [])
    assert isinstance(imported.config, DeploymentConfig) and not imported.config.predefined
    assert steps_of(imported.spec) == [("setCanaryScale", 100), ("setWeight", 25), ("pause", 2700.0)]
    merged = json.loads(group("Canary25Percent45Minutes")) | config  # `jq -s add group.json config.json`
    assert import_text(json.dumps(merged, indent=2), "merged.json").spec == imported.spec
    # and as two files given together: the config is the group's companion, not a second import
    assert import_text(text, "both.yaml").spec == imported.spec


def test_imported_strategy_written_out_loads_back(tmp_path):
    """`import -o` writes a strategy file that loads to the spec the importer built."""
    out = tmp_path / "ecs.yaml"
    result = rolloutlab("import", str(AWS / "ecs-blue-green.yaml"), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert load_strategy(out) == import_manifest(AWS / "ecs-blue-green.yaml").spec
    assert "codedeploy-deployment-group" in result.stderr


def test_the_example_waits_for_approval_then_shifts_on_the_documented_schedule():
    """examples/imports/codedeploy-ecs-linear-approval.json: STOP_DEPLOYMENT holds the first
    shift until someone continues; then ECSLinear10PercentEvery3Minutes takes its documented
    time, and the original task set stays the 30 minutes the group says."""
    result = import_manifest(ROOT / "examples" / "imports" / "codedeploy-ecs-linear-approval.json")
    spec = result.spec
    assert spec.strategy.canary.scale_down_delay_seconds == 30 * 60
    world = IdealWorld(spec.with_replicas(4), start_delay=10.0, gate_seconds=60.0)
    world.run(until=24 * 3600.0)
    assert world.status.completed and world.gates_passed == 1
    shifts = [(d.at, d.effective_weight) for i, d in enumerate(world.log)
              if d.effective_weight != (world.log[i - 1].effective_weight if i else 0.0)]
    _, seconds = documented_shift_seconds("ECSLinear10PercentEvery3Minutes")
    assert shifts[0] == (10.0 + 60.0, 10.0)  # replacement ready at 10 s, continued 60 s later
    assert shifts[-1][0] - shifts[0][0] == seconds == 27 * 60
    assert all(w.startswith("line ") for w in result.warnings)


# --------------------------------------------------------------------------- detection


def fixture_documents() -> list[tuple[str, object]]:
    out = []
    for folder in ("argo", "flagger", "aws", "azure"):
        for path in sorted((FIXTURES / folder).glob("*")):
            if path.suffix in (".yaml", ".yml", ".json"):
                out += [(f"{folder}/{path.name}#{i}", d.data) for i, d in enumerate(parse_yaml_file(path))]
    return out


EXPECTED_CODEDEPLOY = {
    "aws/ecs-blue-green.yaml#0": "codedeploy-deployment-group",
    "aws/cloudformation-ec2-in-place.json#0": "codedeploy-deployment-group",
    "aws/cloudformation-lambda-linear.yaml#0": "codedeploy-deployment-group",
    "aws/ecs-canary-10-percent-5-minutes.json#0": "codedeploy-deployment-config",
    "aws/ecs-linear-10-percent-every-1-minutes.json#0": "codedeploy-deployment-config",
    "aws/three-quarters-healthy.json#0": "codedeploy-deployment-config",
}


@pytest.mark.parametrize("where, data", fixture_documents(), ids=[w for w, _ in fixture_documents()])
def test_codedeploy_detection_claims_its_documents_only(where, data):
    """Each CodeDeploy source claims exactly its own documents: no Argo, Flagger or Azure
    document, no AppSpec (read beside a group, never imported alone)."""
    claimed = {s.name for s in SOURCES if s.name.startswith("codedeploy") and s.detects(data)}
    expected = EXPECTED_CODEDEPLOY.get(where)
    assert claimed == ({expected} if expected else set())
    assert not (is_deployment_group(data) and is_deployment_config(data))


# --------------------------------------------------------------------------- bad input

BAD = [
    ("canary percentage above 99", json.dumps({"deploymentConfigInfo": {
        "deploymentConfigName": "c", "computePlatform": "ECS", "trafficRoutingConfig": {
            "type": "TimeBasedCanary", "timeBasedCanary": {"canaryPercentage": 150, "canaryInterval": 5}}}}, indent=4),
     8, "deploymentConfigInfo.trafficRoutingConfig.timeBasedCanary.canaryPercentage", "at most 99"),
    ("unknown custom config", group("MyCanary"), 6, "deploymentGroupInfo.deploymentConfigName",
     "neither one of AWS's predefined"),
    ("an ECS group cannot deploy in place", group("CodeDeployDefault.ECSAllAtOnce", deploymentStyle={
        "deploymentType": "IN_PLACE"}), 8, "deploymentGroupInfo.deploymentStyle.deploymentType", "always BLUE_GREEN"),
    ("a Lambda config for an ECS group", group("CodeDeployDefault.LambdaAllAtOnce"), 6,
     "deploymentGroupInfo.deploymentConfigName", "is a Lambda configuration"),
    ("unknown deployment ready action", group("CodeDeployDefault.ECSAllAtOnce", **ready_option("WAIT", 1)), 9,
     "deploymentGroupInfo.blueGreenDeploymentConfiguration.deploymentReadyOption.actionOnTimeout", "must be one of"),
    ("CloudFormation function where a number is needed",
     json.dumps({"Resources": {"C": {"Type": "AWS::CodeDeploy::DeploymentConfig", "Properties": {
         "MinimumHealthyHosts": {"Type": "HOST_COUNT", "Value": {"Fn::GetAtt": ["X", "Count"]}}}}}}, indent=2),
     8, "Resources.C.Properties.MinimumHealthyHosts.Value", "CloudFormation function (Fn::GetAtt)"),
    ("two groups in one template",
     json.dumps({"Resources": {k: {"Type": "AWS::CodeDeploy::DeploymentGroup", "Properties": {}} for k in "AB"}},
                indent=2), 7, "Resources.B", "import one at a time"),
    ("JSON syntax error", '{\n  "deploymentConfigInfo": {\n    "deploymentConfigName": "c",,\n  }\n}\n', 3, None,
     "syntax"),
]


@pytest.mark.parametrize("text, line, field, needle", [row[1:] for row in BAD], ids=[row[0] for row in BAD])
def test_bad_input_exits_2_naming_file_line_and_field(tmp_path, text, line, field, needle):
    """`rolloutlab import` of a malformed CodeDeploy document exits 2 with one message naming the
    JSON file, the line and the field; no traceback."""
    path = tmp_path / "codedeploy.json"
    path.write_text(text)
    with pytest.raises(InputError) as caught:
        import_manifest(path)
    assert (caught.value.line, caught.value.field) == (line, field), str(caught.value)
    result = rolloutlab("import", str(path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"codedeploy.json:{line}:" in result.stderr and needle in result.stderr, result.stderr
    if field:
        assert field in result.stderr


# --------------------------------------------------------------------------- compare


def test_compare_runs_an_imported_strategy_on_the_standard_scenario(tmp_path):
    """An imported CodeDeploy canary runs beside a bundled strategy in `rolloutlab compare`."""
    strategy = tmp_path / "ecs-canary.yaml"
    assert rolloutlab("import", str(AWS / "ecs-blue-green.yaml"), "-o", str(strategy)).returncode == 0
    result = rolloutlab("compare", "scenarios/standard.yaml", "--strategies", f"{strategy},rolling", "--runs", "5",
                        "--executor", "serial", "--out", str(tmp_path / "out"), "--no-report", "--json")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    runs = {s["strategy"]: s for s in payload["strategies"]}
    assert set(runs) == {"DgpECS-checkout-cluster-checkout-service", "rolling"}


# --------------------------------------------------------------------------- only InputError escapes

JUNK = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats() | st.text(max_size=10)
    | st.sampled_from(["TimeBasedLinear", "HOST_COUNT", "STOP_DEPLOYMENT", "[parameters('x')]", "Multiple", "Ref"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=2),
    max_leaves=5,
)


def _paths(node, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        out += _paths(value, (*prefix, key))
    return out


@st.composite
def mutated_document(draw, texts: dict[str, str]) -> str:
    """One of ``texts`` with one node replaced by junk or removed, written back as YAML."""
    docs = copy.deepcopy(list(yaml.safe_load_all(texts[draw(st.sampled_from(sorted(texts)))])))
    index, path = draw(st.sampled_from([(i, p) for i, doc in enumerate(docs) for p in _paths(doc)]))
    if not path:
        docs[index] = draw(JUNK)
    else:
        parent = docs[index]
        for part in path[:-1]:
            parent = parent[part]
        if draw(st.booleans()):
            parent[path[-1]] = draw(JUNK)
        elif isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent.pop(path[-1])
    return yaml.safe_dump_all(docs, sort_keys=False, allow_unicode=True)


AWS_TEXTS = {p.name: p.read_text() for p in sorted(AWS.glob("*")) if p.suffix in (".json", ".yaml")}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_document(AWS_TEXTS))
def test_mutated_fixtures_only_raise_input_error(text):
    """Whatever a CodeDeploy fixture is mutated into, the import succeeds (and its strategy
    file loads back) or raises InputError naming the input, nothing else."""
    try:
        result = import_text(text, "mutated.yaml")
    except InputError as exc:
        assert exc.file == "mutated.yaml"
        return
    assert load_strategy_text(dump_strategy_yaml(result.spec, result.warnings)) == result.spec


def load_strategy_text(text: str):
    return validate_document(parse_yaml_documents(text, "out.yaml")[0], StrategySpec)
