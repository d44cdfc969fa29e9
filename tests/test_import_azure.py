"""Importing Azure App Service deployment slots and Container Apps revisions: the mapping
of each documented setup, ARM name expressions, detection, bad input, and a comparison."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from test_import_codedeploy import load_strategy_text, mutated_document  # one mutator for both importers

from rolloutlab.strategies.dry_run import IdealWorld
from rolloutlab.strategies.files import load_strategy
from rolloutlab.strategies.importers import dump_strategy_yaml, import_manifest, import_text
from rolloutlab.strategies.importers.azure import evaluate_arm
from rolloutlab.strategies.importers.sources import SOURCES
from rolloutlab.strategies.spec import StrategyKind
from rolloutlab.strategies.yaml_input import InputError, parse_yaml_file

ROOT = Path(__file__).resolve().parent.parent
AZURE = ROOT / "tests" / "fixtures" / "azure"
FIXTURES = ROOT / "tests" / "fixtures"


def rolloutlab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rolloutlab.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


# --------------------------------------------------------------------------- mapping

MAPPING = [
    # (fixture, source, kind, name, details)
    ("app-service-staging-slot.json", "azure-app-service-slot", StrategyKind.BLUE_GREEN, "contoso-shop",
     {"previewService": "staging", "autoPromotionEnabled": False}),
    ("app-service-auto-swap.json", "azure-app-service-slot", StrategyKind.BLUE_GREEN, "contoso-api",
     {"previewService": "staging", "autoPromotionEnabled": True}),
    ("app-service-swap-template.json", "azure-app-service-slot", StrategyKind.BLUE_GREEN, "SwapAPIDemo",
     {"previewService": "staging", "autoPromotionEnabled": True}),
    ("app-service-traffic-routing.json", "azure-app-service-slot", StrategyKind.CANARY, "contoso-web",
     {"steps": [("setCanaryScale", 100), ("setWeight", 15), ("pause", None)]}),
    ("container-app-canary.json", "azure-container-app", StrategyKind.CANARY, "album-api",
     {"steps": [("setWeight", 20), ("pause", None)], "replicas": 3}),
    ("container-app-blue-green.json", "azure-container-app", StrategyKind.BLUE_GREEN, "test-app",
     {"previewService": "green", "autoPromotionEnabled": False}),
    ("container-app-show.yaml", "azure-container-app", StrategyKind.ROLLING, "cart",
     {"maxSurge": "100%", "maxUnavailable": 0}),
]


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


@pytest.mark.parametrize("fixture, source, kind, name, details", MAPPING, ids=[row[0] for row in MAPPING])
def test_mapping_table(fixture, source, kind, name, details):
    """Each documented slot or revision setup becomes the strategy the module docstring says."""
    result = import_manifest(AZURE / fixture)
    assert (result.source, result.spec.strategy.kind, result.spec.name) == (source, kind, name)
    spec = result.spec
    if kind is StrategyKind.BLUE_GREEN:
        bg = spec.strategy.blue_green
        assert {"previewService": bg.preview_service, "autoPromotionEnabled": bg.auto_promotion_enabled} == details
    elif kind is StrategyKind.CANARY:
        assert spec.strategy.canary.traffic_routing.value == "router"
        assert steps_of(spec) == details["steps"]
        assert spec.replicas == details.get("replicas")
    else:
        rolling = spec.strategy.rolling
        assert {"maxSurge": rolling.max_surge, "maxUnavailable": rolling.max_unavailable} == details


def test_swap_with_preview_waits_for_the_person_completing_the_swap():
    """A slot with no automatic swap is promoted only when someone completes the swap: the dry
    run waits at the gate without an operator and promotes once one passes it."""
    spec = import_manifest(AZURE / "app-service-staging-slot.json").spec.with_replicas(3)
    alone = IdealWorld(spec, gate_seconds=None)
    alone.run(until=3600.0)
    assert not alone.status.completed and alone.pods and alone.status.pause_reason is not None
    operated = IdealWorld(spec, gate_seconds=300.0)
    operated.run(until=3600.0)
    assert operated.status.completed and operated.gates_passed == 1


def test_auto_swap_promotes_once_the_slot_is_warm():
    """Auto swap promotes by itself, as soon as the slot's instances are ready."""
    spec = import_manifest(AZURE / "app-service-auto-swap.json").spec.with_replicas(3)
    world = IdealWorld(spec, start_delay=20.0, gate_seconds=None)
    world.run(until=3600.0)
    assert world.status.completed and world.gates_passed == 0


def test_warnings_name_line_and_field_of_what_arm_cannot_say():
    """The canary's warning says ARM holds one traffic split and points at the weight's line;
    the manual swap's warning says how the swap with preview is done."""
    canary = import_manifest(AZURE / "container-app-canary.json")
    assert any(w.startswith("line 26: resources[0].properties.configuration.ingress.traffic[1].weight: ARM holds one "
                            "traffic split") for w in canary.warnings)
    slot = import_manifest(AZURE / "app-service-staging-slot.json")
    assert any("--action preview" in w and w.startswith("line 28: resources[0].resources[0].name:")
               for w in slot.warnings)


@pytest.mark.parametrize("fixture", [row[0] for row in MAPPING])
def test_imported_strategy_written_out_loads_back(tmp_path, fixture):
    """`import -o` writes a strategy file that loads to the spec the importer built."""
    out = tmp_path / "imported.yaml"
    result = rolloutlab("import", str(AZURE / fixture), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert load_strategy(out) == import_manifest(AZURE / fixture).spec


def test_the_symbolic_name_example_finds_the_new_revision_by_its_suffix():
    """examples/imports/azure-container-app-symbolic-canary.json: resources as symbolic names,
    the new revision named <app>--<revisionSuffix> through format(): a 10% canary of 4 replicas."""
    result = import_manifest(ROOT / "examples" / "imports" / "azure-container-app-symbolic-canary.json")
    assert result.source == "azure-container-app" and result.spec.replicas == 4
    assert steps_of(result.spec) == [("setWeight", 10), ("pause", None)]
    assert any(w.startswith("line 28: resources.inventoryApp.properties.configuration.ingress.traffic[1].weight:")
               for w in result.warnings)


# --------------------------------------------------------------------------- ARM expressions

TEMPLATE = {"parameters": {"site": {"type": "string", "defaultValue": "shop"},
                           "slot": {"type": "string", "defaultValue": "[toLower('Staging')]"}},
            "variables": {"full": "[concat(parameters('site'), '-', parameters('slot'))]"}}
EXPRESSIONS = [
    ("a literal stays", "shop/staging", "shop/staging"),
    ("concat of a parameter's default", "[concat(parameters('site'), '/staging')]", "shop/staging"),
    ("format", "[format('{0}/{1}', parameters('site'), 'staging')]", "shop/staging"),
    ("a variable built from expressions", "[variables('full')]", "shop-staging"),
    ("quotes escaped by doubling", "[concat('it''s', '')]", "it's"),
    ("a runtime value stays as written", "[resourceGroup().location]", "[resourceGroup().location]"),
    ("an unknown parameter stays", "[parameters('nope')]", "[parameters('nope')]"),
    ("a doubled bracket escapes a literal", "[[not an expression]", "[not an expression]"),
]


@pytest.mark.parametrize("value, expected", [row[1:] for row in EXPRESSIONS], ids=[row[0] for row in EXPRESSIONS])
def test_arm_expressions_names_are_built_with(value, expected):
    """Names built from parameters' defaults, variables and string functions are evaluated;
    anything that needs a deployment is kept as written."""
    assert evaluate_arm(value, TEMPLATE) == expected


# --------------------------------------------------------------------------- detection


def fixture_documents() -> list[tuple[str, object]]:
    out = []
    for folder in ("argo", "flagger", "aws", "azure"):
        for path in sorted((FIXTURES / folder).glob("*")):
            if path.suffix in (".yaml", ".yml", ".json"):
                out += [(f"{folder}/{path.name}#{i}", d.data) for i, d in enumerate(parse_yaml_file(path))]
    return out


@pytest.mark.parametrize("where, data", fixture_documents(), ids=[w for w, _ in fixture_documents()])
def test_azure_detection_claims_its_documents_only(where, data):
    """The Azure sources claim the Azure fixtures (one source each) and nothing of Argo,
    Flagger or AWS."""
    claimed = {s.name for s in SOURCES if s.name.startswith("azure") and s.detects(data)}
    if where.startswith("azure/app-service"):
        assert claimed == {"azure-app-service-slot"}
    elif where.startswith("azure/container-app"):
        assert claimed == {"azure-container-app"}
    else:
        assert claimed == set()


# --------------------------------------------------------------------------- bad input


def container_app(**configuration) -> str:
    data = json.loads((AZURE / "container-app-canary.json").read_text())
    config = data["resources"][0]["properties"]["configuration"]
    config.update(configuration)
    return json.dumps(data, indent=4)


def traffic(*entries: dict) -> dict:
    base = json.loads((AZURE / "container-app-canary.json").read_text())["resources"][0]["properties"]
    ingress = copy.deepcopy(base["configuration"]["ingress"])
    ingress["traffic"] = list(entries)
    return ingress


BAD = [
    ("weights that do not add up to 100",
     container_app(ingress=traffic({"revisionName": "album-api--v1", "weight": 70}, {"latestRevision": True, "weight": 20})),
     30, "resources[0].properties.configuration.ingress.traffic", "add up to 90"),
    ("no entry for the new revision",
     container_app(ingress=traffic({"revisionName": "album-api--v1", "weight": 100})),
     30, "resources[0].properties.configuration.ingress.traffic", "latestRevision: true"),
    ("a weight above 100",
     container_app(ingress=traffic({"latestRevision": True, "weight": 120})),
     33, "resources[0].properties.configuration.ingress.traffic[0].weight", "at most 100"),
    ("an unknown revisions mode", container_app(activeRevisionsMode="Several"),
     26, "resources[0].properties.configuration.activeRevisionsMode", "Single, Multiple or Labels"),
    ("a routing percentage above 100",
     (AZURE / "app-service-traffic-routing.json").read_text().replace('"reroutePercentage": 15',
                                                                       '"reroutePercentage": 150'),
     20, "resources[0].properties.siteConfig.experiments.rampUpRules[0].reroutePercentage", "between 0 and 100"),
]


@pytest.mark.parametrize("text, line, field, needle", [row[1:] for row in BAD], ids=[row[0] for row in BAD])
def test_bad_input_exits_2_naming_file_line_and_field(tmp_path, text, line, field, needle):
    """`rolloutlab import` of a malformed ARM template exits 2 with one message naming the JSON
    file, the line and the field; no traceback."""
    path = tmp_path / "azuredeploy.json"
    path.write_text(text)
    with pytest.raises(InputError) as caught:
        import_manifest(path)
    assert (caught.value.line, caught.value.field) == (line, field), str(caught.value)
    result = rolloutlab("import", str(path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"azuredeploy.json:{line}: {field}:" in result.stderr and needle in result.stderr, result.stderr


def test_a_template_with_two_container_apps_is_refused():
    """Two container apps in one template: import one at a time, pointing at the second."""
    data = json.loads((AZURE / "container-app-canary.json").read_text())
    data["resources"].append(copy.deepcopy(data["resources"][0]))
    with pytest.raises(InputError, match="2 container apps; import one at a time") as caught:
        import_text(json.dumps(data, indent=4), "two.json")
    assert caught.value.field == "resources[1]"


# --------------------------------------------------------------------------- compare


def test_compare_runs_an_imported_strategy_on_the_standard_scenario(tmp_path):
    """An imported App Service auto swap runs beside a bundled strategy in `rolloutlab compare`."""
    strategy = tmp_path / "auto-swap.yaml"
    assert rolloutlab("import", str(AZURE / "app-service-auto-swap.json"), "-o", str(strategy)).returncode == 0
    result = rolloutlab("compare", "scenarios/standard.yaml", "--strategies", f"{strategy},canary", "--runs", "5",
                        "--executor", "serial", "--out", str(tmp_path / "out"), "--no-report", "--json")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert {s["strategy"] for s in payload["strategies"]} == {"contoso-api", "canary"}


# --------------------------------------------------------------------------- only InputError escapes

AZURE_TEXTS = {p.name: p.read_text() for p in sorted(AZURE.glob("*")) if p.suffix in (".json", ".yaml")}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_document(AZURE_TEXTS))
def test_mutated_fixtures_only_raise_input_error(text):
    """Whatever an Azure fixture is mutated into, the import succeeds (and its strategy file
    loads back) or raises InputError naming the input, nothing else."""
    try:
        result = import_text(text, "mutated.yaml")
    except InputError as exc:
        assert exc.file == "mutated.yaml"
        return
    assert load_strategy_text(dump_strategy_yaml(result.spec, result.warnings)) == result.spec
