"""`rolloutlab import` of Spinnaker pipelines: the stage graph becomes a strategy and waves.

The fixtures under tests/fixtures/spinnaker are written from real pipeline shapes (their
README names the source of each). For each one the import must carry the key figures
over, name every stage it could not model with its line, write a strategy file that loads
back to the same spec, and the single-region ones must run in `rolloutlab compare`. Small
inline pipelines pin single mapping rules; bad input must exit 2 naming the file, the JSON
line and the field.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from rolloutlab.errors import InputError
from rolloutlab.strategies import load_strategy
from rolloutlab.strategies.importers import dump_strategy_yaml, import_manifest, import_text
from rolloutlab.strategies.spec import StrategySpec

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "spinnaker"
KAYENTA = (FIXTURES / "k8s-kayenta-canary.json", FIXTURES / "k8s-kayenta-canary.config.json")


def rolloutlab(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rolloutlab.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


def steps(spec: StrategySpec) -> list[tuple]:
    """Canary steps as short tuples: ("w", 10), ("p", 60.0), ("p", None), ("a", "template")."""
    out: list[tuple] = []
    for step in spec.strategy.canary.steps:
        if step.set_weight is not None:
            out.append(("w", step.set_weight))
        elif step.pause is not None:
            out.append(("p", step.pause.duration))
        else:
            out.append(("a", step.analysis.templates[0].template_name))
    return out


def line_of(path: Path | str, pattern: str, nth: int = 0) -> int:
    """The 1-based line of the nth line of a file (or text) matching a regular expression."""
    text = path.read_text() if isinstance(path, Path) else path
    hits = [i + 1 for i, line in enumerate(text.splitlines()) if re.search(pattern, line)]
    return hits[nth]


def pipeline(*stages: dict, **top: Any) -> str:
    """A pipeline as `spin pipeline get` prints it (indented JSON), refIds and requisites filled in."""
    listed = []
    for i, stage in enumerate(stages):
        stage = {"refId": str(i + 1), "requisiteStageRefIds": [] if i == 0 else [str(i)], **stage}
        listed.append(stage)
    return json.dumps({"application": "app", "name": "p", **top, "stages": listed}, indent=2)


def cluster(**fields: Any) -> dict:
    return {"account": "prod", "application": "app", "availabilityZones": {"us-east-1": ["us-east-1a"]},
            "capacity": {"desired": 4, "max": 4, "min": 4}, "cloudProvider": "aws", "stack": "prod", **fields}


def deploy(name: str = "Deploy", **fields: Any) -> dict:
    return {"type": "deploy", "name": name, "clusters": [cluster(**fields)]}


# --------------------------------------------------------------------------- the fixtures


@dataclass
class Case:
    fixture: str
    kind: str  # canary, blueGreen, rolling
    replicas: int | None
    figures: dict[str, Any] = field(default_factory=dict)  # dotted attribute of spec.strategy.<kind> -> value
    steps: list[tuple] | None = None
    waves: list[tuple[tuple[str, ...], float]] | None = None  # (regions, bake time) per wave
    unmodelled: list[tuple[str, str]] = field(default_factory=list)  # (stage type, stage name) warned with its line
    warned: list[str] = field(default_factory=list)  # other warnings, by a distinctive phrase
    needs_kayenta: bool = False

    @property
    def files(self) -> list[Path]:
        return list(KAYENTA) if self.needs_kayenta else [FIXTURES / self.fixture]


CASES = [
    Case("aws-redblack-judgment.json", "blueGreen", 6,
         {"auto_promotion_enabled": True, "scale_down_delay_seconds": 86400.0, "preview_service": None},
         unmodelled=[("bake", "Bake")],
         warned=["scaleDown is off", "keeps the old server group (disabled) until a person approves",
                 "Spinnaker rolls back when the deploy itself fails"]),
    Case("aws-rolling-red-black.json", "canary", 10, {"max_surge": "100%", "max_unavailable": 0},
         steps=[("w", 10), ("p", 120.0), ("w", 50), ("p", 120.0), ("w", 100), ("p", 120.0)],
         unmodelled=[("findImage", "Find Image from Staging")],
         warned=["scaled down 600s after the last percentage"]),
    Case("gce-bake-jenkins-webhook.json", "blueGreen", 4, {"scale_down_delay_seconds": 0.0},
         unmodelled=[("jenkins", "Build"), ("bake", "Bake"), ("webhook", "Announce the release"),
                     ("checkPreconditions", "Check Preconditions"), ("wait", "Settle"), ("script", "Smoke test"),
                     ("evaluateVariables", "Record the release")],
         warned=["highlander destroys the old server groups"]),
    Case("aws-multi-region-waves.json", "blueGreen", 6, {"scale_down_delay_seconds": 300.0},
         waves=[(("us-east-1",), 1800.0), (("us-west-2", "eu-west-1"), 0.0)],
         unmodelled=[("bake", "Bake")]),
    Case("k8s-kayenta-canary.json", "canary", None, {"baseline": True},  # Kayenta's control deploy
         steps=[("w", 10), ("a", "kayenta-test")],
         unmodelled=[("findArtifactFromExecution", "Find Baseline Version"), ("pipeline", "Deploy to Production"),
                     ("deployManifest", "Deploy Canary Config"), ("deleteManifest", "Delete Canary"),
                     ("deleteManifest", "Delete Baseline"), ("checkPreconditions", "Successful deployment")],
         warned=["setWeight 10 is used", "no production deploy follows the canary",
                 "the canary config's classifier.scoreThresholds is used", "the pipeline goes on when this analysis "
                 "fails"],
         needs_kayenta=True),
]
IDS = [c.fixture for c in CASES]


def _kayenta_ready() -> bool:
    try:
        from rolloutlab.strategies.importers.kayenta import kayenta_metric  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(scope="module")
def imported():
    cache: dict[str, Any] = {}

    def get(case: Case):
        if case.needs_kayenta and not _kayenta_ready():
            pytest.skip("strategies/importers/kayenta.py (the Kayenta judge's importer) is not in this tree")
        if case.fixture not in cache:
            cache[case.fixture] = import_manifest([str(f) for f in case.files])
        return cache[case.fixture]

    return get


def test_every_fixture_is_in_the_table():
    """Each fixture pipeline has a row here (the Kayenta config is read with its pipeline)."""
    pipelines = {p.name for p in FIXTURES.glob("*.json") if not p.name.endswith(".config.json")}
    assert pipelines == {c.fixture for c in CASES}


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_fixture_key_figures(case, imported):
    """The strategy kind, replica count and the figures that decide its timing carry over."""
    result = imported(case)
    assert result.source == "spinnaker-pipeline"
    spec = result.spec
    assert spec.strategy.kind.value == case.kind
    assert spec.replicas == case.replicas
    chosen = getattr(spec.strategy, {"blueGreen": "blue_green"}.get(case.kind, case.kind))
    for dotted, value in case.figures.items():
        assert getattr(chosen, dotted) == value, dotted
    if case.steps is not None:
        assert steps(spec) == case.steps


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_fixture_waves(case, imported):
    """Parallel deploys form a wave and the wait before the next wave is its bake time; one region, no waves."""
    spec = imported(case).spec
    if case.waves is None:
        assert spec.waves is None
        return
    assert [(w.regions, w.bake_time) for w in spec.waves.steps] == case.waves
    assert spec.waves.stop_the_line is False  # orca stops the pipeline but does not undo finished stages


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_fixture_names_every_unmodelled_stage_with_its_line(case, imported):
    """Every stage rolloutlab cannot model is a warning with the line of its type and its name."""
    warnings = imported(case).warnings
    text = (FIXTURES / case.fixture).read_text()
    stages = json.loads(text)["stages"]
    for kind, name in case.unmodelled:
        index = next(i for i, s in enumerate(stages) if s["type"] == kind and s.get("name") == name)
        nth = [s["type"] for s in stages[:index]].count(kind)
        line = line_of(text, rf'"type": "{kind}"', nth)
        expected = f"line {line}: stages[{index}].type: stage {name!r} ({kind}, refId {stages[index]['refId']})"
        assert any(w.startswith(expected) for w in warnings), (expected, warnings)
    for phrase in case.warned:
        assert any(phrase in w for w in warnings), (phrase, warnings)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_fixture_dump_round_trips(case, imported, tmp_path):
    """The written strategy file loads back to the spec the importer built."""
    result = imported(case)
    out = tmp_path / "s.yaml"
    out.write_text(dump_strategy_yaml(result.spec, result.warnings))
    assert load_strategy(out) == result.spec


def test_kayenta_stage_timing_comes_from_the_canary_config(imported):
    """lifetime PT0H5M judged every 5 minutes is one judgement after 5 minutes, at the config's pass score 95."""
    spec = imported(CASES[-1]).spec
    (template,) = spec.analysis_templates
    (metric,) = template.metrics
    assert (metric.interval * metric.count, metric.initial_delay) == (300.0, 0.0)  # one judgement of 5 minutes
    assert metric.judge.mann_whitney.thresholds.pass_ == 95.0
    assert template.name == "kayenta-test"


# --------------------------------------------------------------------------- mapping rules


@dataclass
class Rule:
    id: str
    text: str
    kind: str
    figures: dict[str, Any] = field(default_factory=dict)
    steps: list[tuple] | None = None
    warned: list[str] = field(default_factory=list)


JUDGE = {"type": "manualJudgment", "name": "Approve", "judgmentInputs": [], "failPipeline": True}
DISABLE_OLD = {"type": "disableServerGroup", "name": "Disable old", "target": "ancestor_asg_dynamic",
               "cluster": "app-prod", "credentials": "prod", "regions": ["us-east-1"]}
DESTROY_OLD = {"type": "destroyServerGroup", "name": "Destroy old", "target": "ancestor_asg_dynamic",
               "cluster": "app-prod", "credentials": "prod", "regions": ["us-east-1"]}


def wait(seconds: Any, name: str = "Wait") -> dict:
    return {"type": "wait", "name": name, "waitTime": seconds}


def manifest_stage(traffic: dict | None = None, replicas: int = 3, kind: str = "ReplicaSet", **spec: Any) -> dict:
    stage = {"type": "deployManifest", "name": "Deploy (Manifest)", "account": "k8s", "cloudProvider": "kubernetes",
             "source": "text", "moniker": {"app": "app"},
             "manifests": [{"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": "app"},
                            "spec": {"replicas": replicas, **spec}}]}
    if traffic is not None:
        stage["trafficManagement"] = traffic
    return stage


RULES = [
    Rule("redblack delays: wait before disable is autoPromotionSeconds, scale-down delay kept",
         pipeline(deploy(strategy="redblack", delayBeforeDisableSec=60, scaleDown=True, delayBeforeScaleDownSec=600)),
         "blueGreen", {"auto_promotion_seconds": 60.0, "scale_down_delay_seconds": 600.0},
         warned=["both server groups take traffic for 60s"]),
    Rule("redblack with settings written as text, as Deck saves them",
         pipeline(deploy(strategy="redblack", delayBeforeDisableSec="30", scaleDown="true",
                         delayBeforeScaleDownSec="120", maxRemainingAsgs="3")),
         "blueGreen", {"auto_promotion_seconds": 30.0, "scale_down_delay_seconds": 120.0},
         warned=["keeps up to 3 server groups"]),
    Rule("strategy none, judgment, disable the old one: a blue-green gated on promote",
         pipeline(deploy(strategy=""), JUDGE, DISABLE_OLD, wait(300), DESTROY_OLD),
         "blueGreen", {"auto_promotion_enabled": False, "scale_down_delay_seconds": 300.0}),
    Rule("strategy none, wait, disable: the wait is autoPromotionSeconds",
         pipeline(deploy(), wait("90"), DISABLE_OLD), "blueGreen", {"auto_promotion_seconds": 90.0}),
    Rule("strategy none and nothing else: both serve, a 50% canary that waits for promote",
         pipeline(deploy(strategy="")), "canary", steps=[("w", 50), ("p", None)],
         warned=["deploys with no strategy"]),
    Rule("custom strategy read as none",
         pipeline(deploy(strategy="custom", strategyPipeline="abc"), JUDGE, DISABLE_OLD),
         "blueGreen", {"auto_promotion_enabled": False}, warned=["runs pipeline 'abc'"]),
    Rule("highlander: the old version is destroyed at once",
         pipeline(deploy(strategy="highlander")), "blueGreen", {"scale_down_delay_seconds": 0.0}),
    Rule("rolling red/black: Deck's default [50, 100] without a delay",
         pipeline(deploy(strategy="rollingredblack")), "canary", steps=[("w", 50)]),
    Rule("rolling red/black: 100 is appended, the delay is a pause after each percentage",
         pipeline(deploy(strategy="rollingredblack", targetPercentages=[25, 75], delayBeforeDisableSec=30)),
         "canary", steps=[("w", 25), ("p", 30.0), ("w", 75), ("p", 30.0), ("w", 100), ("p", 30.0)]),
    Rule("rolling push replaces instances in place",
         pipeline(deploy(strategy="rollingpush", numConcurrentRelaunches=2)), "rolling",
         {"max_surge": 0, "max_unavailable": 2}),
    Rule("deployManifest red/black with traffic: the Service is the active one",
         pipeline(manifest_stage({"enabled": True, "options": {"enableTraffic": True, "namespace": "default",
                                                               "services": ["service web"], "strategy": "redblack"}})),
         "blueGreen", {"active_service": "web", "auto_promotion_enabled": True}),
    Rule("deployManifest without traffic: judgment then enableManifest is the switch",
         pipeline(manifest_stage({"enabled": True, "options": {"enableTraffic": False, "services": ["service web"],
                                                               "strategy": "redblack"}}),
                  JUDGE, {"type": "enableManifest", "name": "Enable", "account": "k8s"}),
         "blueGreen", {"auto_promotion_enabled": False}),
    Rule("deployManifest of a Deployment without traffic management: Kubernetes' rolling update",
         pipeline(manifest_stage(kind="Deployment", strategy={"rollingUpdate": {"maxSurge": 2, "maxUnavailable": 0}})),
         "rolling", {"max_surge": 2, "max_unavailable": 0}),
    Rule("a canary deploy, a judgment and a wait before the production deploy",
         pipeline(deploy("Deploy canary", strategy="", capacity={"desired": 1, "max": 1, "min": 1},
                         freeFormDetails="canary"),
                  JUDGE, wait(600), deploy(strategy="redblack", capacity={"desired": 9, "max": 9, "min": 9})),
         "canary", steps=[("w", 10), ("p", None), ("p", 600.0)], warned=["get about 10% of requests"]),
    Rule("a judgment before the deploy is not part of the rollout",
         pipeline(JUDGE, deploy(strategy="redblack", scaleDown=True)), "blueGreen", {"auto_promotion_enabled": True},
         warned=["stage 'Approve' (manualJudgment, refId 1): runs before the rollout starts"]),
    Rule("a pipeline saved before parallel stages (no refIds) runs in list order",
         json.dumps({"application": "app", "stages": [{"type": "deploy", "clusters": [cluster(strategy="")]},
                                                      {"type": "manualJudgment"}, DISABLE_OLD]}, indent=2),
         "blueGreen", {"auto_promotion_enabled": False}),
    Rule("a parameter default resolves a wait, and says so",
         pipeline(deploy(), wait("${parameters.soak}"), DISABLE_OLD,
                  parameterConfig=[{"name": "soak", "default": "45"}]),
         "blueGreen", {"auto_promotion_seconds": 45.0},
         warned=["resolved to '45' from the default of parameter 'soak'"]),
    Rule("an expression that names no parameter default is reported with its field, not guessed",
         pipeline(deploy(strategy="redblack", scaleDown=True, delayBeforeScaleDownSec="${#stage('x')['y']}")),
         "blueGreen", {"scale_down_delay_seconds": 0.0},
         warned=["stages[0].clusters[0].delayBeforeScaleDownSec: pipeline expression \"${#stage('x')['y']}\" "
                 "cannot be resolved"]),
]


@pytest.mark.parametrize("rule", RULES, ids=[r.id for r in RULES])
def test_spinnaker_mapping_rule(rule):
    result = import_text(rule.text, "pipeline.json")
    spec = result.spec
    assert spec.strategy.kind.value == rule.kind
    chosen = getattr(spec.strategy, {"blueGreen": "blue_green"}.get(rule.kind, rule.kind))
    for dotted, value in rule.figures.items():
        assert getattr(chosen, dotted) == value, dotted
    if rule.steps is not None:
        assert steps(spec) == rule.steps
    for phrase in rule.warned:
        assert any(phrase in w for w in result.warnings), (phrase, result.warnings)


def test_three_regions_in_three_waves_with_a_judgment_between():
    """A judgment between waves is a warning (no per-wave gate yet); waits in a row add up to the bake time."""
    text = pipeline(deploy("us-east-1", strategy="redblack"), wait(600, "soak 1"), wait(300, "soak 2"),
                    deploy("us-west-2", strategy="redblack", availabilityZones={"us-west-2": ["a"]}), JUDGE,
                    deploy("eu-west-1", strategy="redblack", availabilityZones={"eu-west-1": ["a"]}))
    result = import_text(text, "p.json")
    waves = result.spec.waves
    assert [(w.regions, w.bake_time) for w in waves.steps] == [(("us-east-1",), 900.0), (("us-west-2",), 0.0),
                                                               (("eu-west-1",), 0.0)]
    judged = [w for w in result.warnings if "between wave 1 and wave 2" in w]
    assert judged and judged[0].startswith(f"line {line_of(text, 'manualJudgment')}: stages[4].type")


def test_one_cluster_in_two_regions_is_one_wave():
    """availabilityZones naming two regions deploys both at once: one wave of two regions."""
    text = pipeline(deploy(strategy="redblack", availabilityZones={"us-east-1": ["a"], "eu-west-1": ["b"]}))
    waves = import_text(text, "p.json").spec.waves
    assert [w.regions for w in waves.steps] == [("us-east-1", "eu-west-1")]


def test_the_same_region_in_two_accounts_is_two_places():
    text = pipeline(deploy("a", strategy="redblack"), deploy("b", strategy="redblack", account="prod-2"))
    waves = import_text(text, "p.json").spec.waves
    assert [w.regions for w in waves.steps] == [("prod/us-east-1",), ("prod-2/us-east-1",)]


# --------------------------------------------------------------------------- bad input


def _stages_with(**changes: Any) -> str:
    return pipeline(deploy(strategy="redblack"), wait(60), DISABLE_OLD, **changes)


CYCLE = json.dumps({"application": "app", "stages": [
    {"refId": "1", "requisiteStageRefIds": ["2"], "type": "wait", "name": "a", "waitTime": 1},
    {"refId": "2", "requisiteStageRefIds": ["1"], "type": "deploy", "name": "b", "clusters": [cluster()]}]}, indent=2)
DANGLING = pipeline(deploy(), {"type": "wait", "waitTime": 5, "requisiteStageRefIds": ["7"]})
DUPLICATE = pipeline(deploy(), {"type": "wait", "waitTime": 5, "refId": "1"})
MISMATCH = pipeline(deploy("east", strategy="redblack"),
                    deploy("west", strategy="highlander", availabilityZones={"us-west-2": ["a"]}))
SETTINGS = pipeline(deploy("east", strategy="redblack", scaleDown=True),
                    deploy("west", strategy="redblack", scaleDown=False, availabilityZones={"us-west-2": ["a"]}))
KAYENTA_ALONE = pipeline(deploy("Deploy canary", freeFormDetails="canary"),
                         {"type": "kayentaCanary", "name": "Canary Analysis", "analysisType": "realTime",
                          "canaryConfig": {"canaryConfigId": "abc-123", "lifetimeDuration": "PT1H",
                                           "scoreThresholds": {"marginal": 75, "pass": 95}}})
NO_LIFETIME = KAYENTA_ALONE.replace('"lifetimeDuration": "PT1H",', "")

BAD = [
    ("dangling requisite", DANGLING, line_of(DANGLING, r'^\s+"7"'), "stages[1].requisiteStageRefIds[0]",
     "waits for stage '7', which is not in this pipeline"),
    ("cycle", CYCLE, line_of(CYCLE, r'^\s+"2"'), "stages[0].requisiteStageRefIds[0]", "cycle"),
    ("duplicate refId", DUPLICATE, line_of(DUPLICATE, r'"refId": "1"', 1), "stages[1].refId", "already used"),
    ("unknown deploy strategy", pipeline(deploy(strategy="bluegreen")),
     line_of(pipeline(deploy(strategy="bluegreen")), '"strategy"'), "stages[0].clusters[0].strategy",
     "unknown deploy strategy 'bluegreen'"),
    ("regions deployed with different strategies", MISMATCH, line_of(MISMATCH, '"strategy": "highlander"'),
     "stages[1].clusters[0].strategy", "stage 'west' (deploy, refId 2) deploys prod/us-west-2 with strategy "
                                       "'highlander', but stage 'east'"),
    ("regions deployed with different settings", SETTINGS, line_of(SETTINGS, '"strategy": "redblack"', 1),
     "stages[1].clusters[0].strategy", "with scaleDown False, but stage 'east'"),
    ("Kayenta config not given", KAYENTA_ALONE, line_of(KAYENTA_ALONE, "canaryConfigId"),
     "stages[1].canaryConfig.canaryConfigId", "canary config 'abc-123' is not among the documents given"),
    ("no lifetime for the analysis", NO_LIFETIME, line_of(NO_LIFETIME, '"canaryConfig"'), "stages[1].canaryConfig",
     "needs lifetimeDuration"),
    ("no stages", json.dumps({"application": "app", "stages": []}), 1, "stages", "is empty"),
    ("no deploy stage", pipeline(wait(5)), line_of(pipeline(wait(5)), '"stages"'), "stages", "has no deploy stage"),
    ("malformed JSON", '{\n  "application": "app",\n  "stages": [\n    {"type": "wait" "name": "x"}\n  ]\n}\n', 4, None,
     "syntax error"),
]


@pytest.mark.parametrize("text,line,field_path,message", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_pipeline_is_an_input_error(text, line, field_path, message):
    with pytest.raises(InputError) as caught:
        import_text(text, "pipeline.json")
    error = caught.value
    assert (error.file, error.line, error.field) == ("pipeline.json", line, field_path), str(error)
    assert message in error.message


@pytest.mark.parametrize("name,text,line,field_path", [(b[0], b[1], b[2], b[3]) for b in BAD[:3] + BAD[4:7]],
                         ids=[b[0] for b in BAD[:3] + BAD[4:7]])
def test_the_cli_exits_2_naming_file_line_and_field(name, text, line, field_path, tmp_path):
    """A bad pipeline on the command line: exit 2, `file:line: field: message`, no traceback."""
    path = tmp_path / "pipeline.json"
    path.write_text(text)
    result = rolloutlab("import", str(path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{path}:{line}: {field_path}: " in result.stderr


# --------------------------------------------------------------------------- compare


def test_imported_single_region_pipelines_run_in_compare(tmp_path):
    """Each single-region fixture, imported with `import -o`, runs 5 times in `compare` on the standard scenario."""
    files = []
    for case in CASES:
        if case.waves is not None or (case.needs_kayenta and not _kayenta_ready()):
            continue  # compare cannot run waves yet (the simulator's region work is the lead's)
        out = tmp_path / f"{Path(case.fixture).stem}.yaml"
        result = rolloutlab("import", *[str(f) for f in case.files], "-o", str(out))
        assert result.returncode == 0, result.stderr
        files.append(out)
    result = rolloutlab("compare", "scenarios/standard.yaml", "--strategies", ",".join(map(str, files)),
                        "--runs", "5", "--executor", "serial", "--out", str(tmp_path / "out"), "--json",
                        "--no-report", "--history", "none")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    names = {load_strategy(f).name for f in files}
    reported = {s["strategy"]: s for s in payload["strategies"]}
    assert names <= set(reported)
    for name in names:
        assert reported[name]["runs"] == 5


EXAMPLES = sorted((ROOT / "examples" / "imports").glob("spinnaker-*.json"))
EXPECTED_EXAMPLES = {
    "spinnaker-k8s-red-black.json": ("blueGreen", None),
    "spinnaker-multi-region-judgment.json": ("blueGreen", [("us-east-1",), ("us-west-2",), ("eu-west-1",)]),
}


def test_every_spinnaker_example_is_checked():
    assert {p.name for p in EXAMPLES} == set(EXPECTED_EXAMPLES)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_spinnaker_examples_import(path):
    """The examples import to their strategy (and waves), every warning naming its line."""
    result = import_manifest(path)
    kind, waves = EXPECTED_EXAMPLES[path.name]
    assert result.spec.strategy.kind.value == kind
    assert (None if result.spec.waves is None else [w.regions for w in result.spec.waves.steps]) == waves
    assert result.warnings and all(w.startswith("line ") for w in result.warnings)


def test_kayenta_stage_that_deploys_its_own_canary(imported):
    """realTimeAutomatic with serverGroupPairs: the stage deploys canary and baseline, then judges them."""
    imported(CASES[-1])  # skips without the Kayenta importer
    config = (FIXTURES / "k8s-kayenta-canary.config.json").read_text()
    pair = {"experiment": cluster(capacity={"desired": 1, "max": 1, "min": 1}, freeFormDetails="canary"),
            "control": cluster(capacity={"desired": 1, "max": 1, "min": 1}, freeFormDetails="baseline")}
    text = pipeline({"type": "kayentaCanary", "name": "Canary", "analysisType": "realTimeAutomatic",
                     "deployments": {"serverGroupPairs": [pair]},
                     "canaryConfig": {"canaryConfigId": "kayenta-test", "lifetimeDuration": "PT30M",
                                      "canaryAnalysisIntervalMins": 10,
                                      "scoreThresholds": {"marginal": 75, "pass": 95}}},
                    deploy(strategy="redblack", scaleDown=True, capacity={"desired": 8, "max": 8, "min": 8}))
    result = import_text(text + "\n---\n" + config, "p.json")
    assert steps(result.spec) == [("w", 10), ("a", "kayenta-test")]
    (metric,) = result.spec.analysis_templates[0].metrics
    assert metric.interval * metric.count == 1800.0  # three judgements of 10 minutes
    assert result.spec.replicas == 8
