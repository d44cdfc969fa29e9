"""`rolloutlab export`: a strategy written as Argo Rollouts or Flagger manifests, read back by
our own importers.

Round trips compare the validated specs with four things left out, each for a stated
reason: ``description`` (the importers write "imported from ..."), ``search`` (tune's search
space, no rollout setting), the order of ``analysisTemplates`` (an import lists templates
in the order the strategy references them; a template is found by name) and a metric's
``query`` / ``queryUnit`` / ``args`` (an export writes a query for a metric without one, the
default or ``--query`` template, and the import keeps it; a metric's own query coming back
verbatim is tested on its own).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from rolloutlab.cli import app
from rolloutlab.errors import InputError
from rolloutlab.strategies.exporters import export_strategy, parse_queries
from rolloutlab.strategies.files import bundled_strategy_names
from rolloutlab.strategies.importers import import_manifest, import_text
from rolloutlab.strategies.spec import Signal, StrategySpec
from rolloutlab.workflows.compare import load_strategy_arg

sys.path.insert(0, str(Path(__file__).parent))
from test_import_upstream import IMPORTED, UPSTREAM, inputs  # noqa: E402 - the upstream manifests, as that test reads them

FIXTURES = Path(__file__).parent / "fixtures"


def meaning(spec: StrategySpec) -> dict:
    """The spec without what a round trip may change (module docstring)."""
    data = spec.model_dump(exclude={"description", "search"})
    data["analysis_templates"] = sorted(data["analysis_templates"], key=lambda t: t["name"])
    for template in data["analysis_templates"]:
        template["metrics"] = tuple({k: v for k, v in m.items() if k not in ("query", "query_unit", "args")}
                                    for m in template["metrics"])
    return data


def round_trip(spec: StrategySpec, target: str, queries=None):
    exported = export_strategy(spec, target, queries)
    return exported, import_text(exported.text, f"exported-{target}.yaml")


# --------------------------------------------------------------------------- bundled strategies

# (target, strategy) -> the words of the refusal
REFUSED = {
    ("argo", "feature-flag"): "Argo Rollouts has no feature flags",
    ("flagger", "feature-flag"): "Flagger has no feature flags",
    ("flagger", "rolling"): "Flagger runs no rolling update",
    ("flagger", "header-canary"): "A/B testing (match + iterations) or a weighted canary",
}
ARGO_EXACT = [n for n in bundled_strategy_names() if ("argo", n) not in REFUSED and n != "rolling"]
FLAGGER_LOSSY = [n for n in bundled_strategy_names() if ("flagger", n) not in REFUSED]


def test_every_bundled_strategy_has_a_case():
    """No bundled strategy is left out of the tables below (a new one must be placed)."""
    for target in ("argo", "flagger"):
        placed = {n for t, n in REFUSED if t == target} | set(ARGO_EXACT if target == "argo" else FLAGGER_LOSSY)
        placed |= {"rolling"} if target == "argo" else set()
        assert placed == set(bundled_strategy_names())
    assert len(ARGO_EXACT) >= 5


@pytest.mark.parametrize("name", ARGO_EXACT)
def test_argo_round_trip_gives_back_the_bundled_strategy(name):
    """import(export(s)) == s for every bundled strategy Argo Rollouts expresses."""
    spec = load_strategy_arg(name)
    exported, imported = round_trip(spec, "argo")
    assert imported.source == "argo-rollout"
    assert meaning(imported.spec) == meaning(spec)


def test_argo_rolling_is_a_canary_without_steps():
    """Argo has no rolling strategy: its canary without steps is its rolling update
    (same maxSurge/maxUnavailable); it cannot round trip to `rolling`, and the warning says so."""
    spec = load_strategy_arg("rolling")
    exported, imported = round_trip(spec, "argo")
    assert any("no rolling strategy" in w for w in exported.warnings)
    canary = imported.spec.strategy.canary
    assert canary is not None and canary.steps == () and canary.analysis is None
    assert (canary.max_surge, canary.max_unavailable) == (spec.strategy.rolling.max_surge,
                                                         spec.strategy.rolling.max_unavailable)


@pytest.mark.parametrize(("target", "name"), list(REFUSED), ids=[f"{t}-{n}" for t, n in REFUSED])
def test_what_the_target_cannot_express_is_refused_with_the_reason(target, name):
    with pytest.raises(InputError) as error:
        export_strategy(load_strategy_arg(name), target)
    assert REFUSED[(target, name)] in str(error.value)


# Flagger holds each weight for one interval, always aborts at the deadline and scales the canary to full
# size: no bundled strategy is in that form, so each exports with warnings naming what is lost (checked here),
# and the export is a fixed point: what Flagger runs exports to the same Canary again.
FLAGGER_LOSSES = {
    "ab-test": ["progressDeadlineAbort", "setCanaryScale", "count: Flagger checks until promotion"],
    "blue-green": ["previewService", "postPromotionAnalysis", "scaleDownDelaySeconds"],
    "canary": ["trafficRouting", "holds of 2m are lost", "holdOnFailure"],
    "shadow-then-canary": ["the match {'method': {'exact': 'GET'}} is lost", "holds of 2m, 3m are lost"],
}


@pytest.mark.parametrize("name", FLAGGER_LOSSES)
def test_flagger_export_names_every_loss_and_is_a_fixed_point(name):
    spec = load_strategy_arg(name)
    exported, imported = round_trip(spec, "flagger")
    assert imported.source == "flagger-canary"
    for words in FLAGGER_LOSSES[name]:
        assert any(words in w for w in exported.warnings), (words, exported.warnings)
    assert export_strategy(imported.spec, "flagger").documents == exported.documents
    # the rest of the meaning survives: the weights and the thresholds
    weights = [s.set_weight for s in spec.strategy.canary.steps if s.set_weight] if spec.strategy.canary else []
    back = imported.spec.strategy.canary
    assert [s.set_weight for s in back.steps if s.set_weight is not None] == weights if back else not weights
    assert {m.success.clauses[0][1] for t in imported.spec.analysis_templates for m in t.metrics} == {0.02}


def test_flagger_losses_cover_every_exported_bundled_strategy():
    assert set(FLAGGER_LOSSES) == set(FLAGGER_LOSSY)


def test_flagger_in_its_own_form_round_trips_exactly():
    """A strategy already in Flagger's form (an imported Canary) comes back equal."""
    spec = import_manifest(FIXTURES / "flagger" / "podinfo-canary.yaml").spec
    assert meaning(round_trip(spec, "flagger")[1].spec) == meaning(spec)


# --------------------------------------------------------------------------- manifests


def _manifest_cases() -> list[tuple[str, list[Path]]]:
    cases = [(str(p.relative_to(UPSTREAM)), inputs(p)) for p in IMPORTED]
    cases += [(str(p.relative_to(FIXTURES)), [p]) for d in ("argo", "flagger") for p in sorted((FIXTURES / d).glob("*.yaml"))]
    return cases


MANIFESTS = _manifest_cases()
# the latency metric is a MetricTemplate of the Canary's own: without its query the export writes Flagger's
# builtin request-duration (same P99 in ms, another name), so the case passes the template's query
QUERIES = {"flagger/nginx-custom-latency.yaml": {Signal.LATENCY: (
    'histogram_quantile(0.99, sum(rate(nginx_ingress_controller_request_duration_seconds_bucket'
    '{ingress="podinfo"}[{{ interval }}])) by (le)) * 1000')}}


@pytest.mark.parametrize(("name", "files"), MANIFESTS, ids=[n for n, _ in MANIFESTS])
def test_export_of_an_imported_manifest_keeps_its_meaning(name, files):
    """import(export(import(m))) == import(m), for every Argo Rollouts and Flagger manifest the tests hold."""
    first = import_manifest(files)
    target = "argo" if first.source == "argo-rollout" else "flagger"
    exported, again = round_trip(first.spec, target, QUERIES.get(name))
    assert again.source == first.source
    assert meaning(again.spec) == meaning(first.spec)


def test_the_manifest_cases_cover_both_systems():
    sources = {import_manifest(files).source for _, files in MANIFESTS}
    assert sources == {"argo-rollout", "flagger-canary"} and len(MANIFESTS) >= 50


# --------------------------------------------------------------------------- queries


def test_a_default_query_is_a_placeholder_with_a_warning():
    exported = export_strategy(load_strategy_arg("canary"), "argo")
    assert "REPLACE-ME" in exported.text
    assert any("placeholder to replace" in w for w in exported.warnings)


def test_a_given_query_is_written_and_read_back_as_the_same_signal():
    query = 'sum(rate(req_total{app="shop",code=~"5.."}[{{ interval }}])) / sum(rate(req_total{app="shop"}[{{ interval }}]))'
    exported, imported = round_trip(load_strategy_arg("canary"), "argo", parse_queries([f"error-rate={query}"]))
    assert 'req_total{app="shop",code=~"5.."}[30s]' in exported.text
    assert not any("REPLACE-ME" in w for w in exported.warnings)
    assert meaning(imported.spec) == meaning(load_strategy_arg("canary"))


def test_a_success_rate_query_gets_converted_thresholds_that_import_back():
    """A success-rate percentage query: result < 0.02 on the error rate is written result > 98."""
    query = 'sum(rate(req{code!~"5.."}[{{ interval }}])) / sum(rate(req[{{ interval }}])) * 100'
    exported, imported = round_trip(load_strategy_arg("canary"), "argo", parse_queries([f"error-rate={query}"]))
    assert "successCondition: result > 98" in exported.text
    assert imported.spec.analysis_templates[0].metrics[0].success.clauses == (("<", 0.02),)


@pytest.mark.parametrize("item", ["latency=sum(rate(x[1m]))", "error-rate=", "throughput=x", "nonsense"])
def test_a_query_the_importers_would_not_read_back_is_refused(item):
    with pytest.raises(InputError):
        parse_queries([item])


def test_a_latency_query_with_another_quantile_is_refused():
    data = import_manifest(FIXTURES / "flagger" / "nginx-custom-latency.yaml").spec.model_dump(by_alias=True)
    for template in data["analysisTemplates"]:  # without the imported query of its own, which --query cannot replace
        for metric in template["metrics"]:
            metric.pop("query"), metric.pop("queryUnit"), metric.pop("args")
    spec = StrategySpec.model_validate(data)  # P99 latency
    with pytest.raises(InputError, match="quantile 0.9"):
        export_strategy(spec, "argo", parse_queries(["latency=histogram_quantile(0.9, sum(rate(x_bucket[1m])) by (le))"]))


def test_judges_a_target_has_not_are_refused():
    base = load_strategy_arg("canary").model_dump(by_alias=True, exclude={"search"})
    base["analysisTemplates"][0]["metrics"][0]["judge"] = {"sequential": {}}
    spec = StrategySpec.model_validate(base)
    for target in ("argo", "flagger"):
        with pytest.raises(InputError, match="sequential"):
            export_strategy(spec, target)


# --------------------------------------------------------------------------- CLI

runner = CliRunner()


def test_cli_writes_yaml_that_parses_and_imports(tmp_path):
    out = tmp_path / "rollout.yaml"
    result = runner.invoke(app, ["export", "blue-green", "--to", "argo", "--out", str(out)])
    assert result.exit_code == 0, result.output
    documents = list(yaml.safe_load_all(out.read_text()))
    assert [d["kind"] for d in documents] == ["Rollout", "AnalysisTemplate"]
    assert meaning(import_manifest(out).spec) == meaning(load_strategy_arg("blue-green"))


def test_cli_writes_to_stdout_and_warns_on_stderr():
    result = runner.invoke(app, ["export", "canary", "--to", "flagger"])
    assert result.exit_code == 0
    assert yaml.safe_load_all(result.stdout) and "kind: Canary" in result.stdout
    assert "warning:" in result.stderr and "warning:" not in result.stdout


@pytest.mark.parametrize(("args", "words"), [
    (["export", "rolling", "--to", "flagger"], "strategy.rolling"),
    (["export", "canary", "--to", "spinnaker"], "--to"),
    (["export", "canary", "--to", "argo", "--query", "latency=foo"], "--query"),
])
def test_cli_refusal_exits_2_with_one_line(args, words):
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and words in lines[0] and re.match(r"error: ", lines[0])
