"""The projects' own manifests import: every Argo Rollout in argo-rollouts' ``examples/`` and
``docs/`` and every Flagger Canary in flagger's ``artifacts/examples/``
(tests/fixtures/upstream/, each file under its upstream path with the repository and commit
in its first lines).

A Rollout is imported with the files beside it that hold no Rollout of their own (its
AnalysisTemplates, as ``kubectl apply -f DIR`` would apply them; Argo's examples keep them in
``analysis-templates.yaml``), the files in name order. An upstream file that Argo or kubectl
itself refuses is refused here too, for the same reason, and is listed in ``REFUSED``.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from rolloutlab.errors import InputError
from rolloutlab.strategies.importers import dump_strategy_yaml, import_manifest
from rolloutlab.strategies.spec import StrategySpec
from rolloutlab.strategies.yaml_input import parse_yaml_documents, validate_document

UPSTREAM = Path(__file__).parent / "fixtures" / "upstream"
_MAIN = re.compile(r"^kind:\s*(Rollout|Canary)\s*$", re.MULTILINE)


def holds_main(path: Path) -> bool:
    return bool(_MAIN.search(path.read_text()))


def beside(path: Path) -> list[Path]:
    """The files kubectl apply -f on the directory would apply with it, other Rollouts left out."""
    return [p for p in sorted(path.parent.glob("*.yaml")) if p != path and not holds_main(p)]


def inputs(path: Path) -> list[Path]:
    return sorted([path, *beside(path)])


MAIN_FILES = sorted(p for p in UPSTREAM.rglob("*.yaml") if holds_main(p))
NAMES = [str(p.relative_to(UPSTREAM)) for p in MAIN_FILES]

# Upstream files Argo (or kubectl, before Argo sees them) refuses: (field, words of the reason)
REFUSED = {
    # a field reference listing both strategies, with a made-up status: "Multiple Strategies can not be listed"
    "argo/docs/features/rollout.yaml": ("spec.strategy", "Multiple Strategies can not be listed"),
    # a kustomize test input with blueGreen directly under spec: "Rollout has missing field '.spec.strategy...'"
    "argo/docs/kustomize/guestbook.yaml": ("spec.blueGreen", "belongs under spec.strategy"),
    # `duration` indented beside `pause:` instead of under it: an empty step, "Step must have one of ..."
    "argo/examples/example-rollout-canary-run-tmp-canary.yaml":
        ("spec.strategy.canary.steps[1].duration", "duration belongs under pause"),
    # `{{args.linkerd-enabled}}` unquoted is a YAML mapping used as a key: kubectl cannot read the file
    "argo/examples/traffic-management/rollout-linkerd.yaml": (None, "unhashable key"),
}
IMPORTED = [p for p, n in zip(MAIN_FILES, NAMES) if n not in REFUSED]


def test_every_refused_file_exists():
    """The refusals name real fixtures (a renamed file cannot hide here)."""
    assert set(REFUSED) <= set(NAMES)
    assert len(IMPORTED) >= 35


@pytest.mark.parametrize("path", IMPORTED, ids=[str(p.relative_to(UPSTREAM)) for p in IMPORTED])
def test_every_upstream_manifest_imports(path):
    """It imports from the right source, every warning names its line (and its file when the
    document is in another file), and the strategy file written from it loads back the same."""
    result = import_manifest(inputs(path))
    assert result.source == ("argo-rollout" if path.relative_to(UPSTREAM).parts[0] == "argo" else "flagger-canary")
    others = [str(p) for p in beside(path)]
    for warning in result.warnings:
        assert re.match(r"line \d+( of \S+)?: ", warning), warning
        named = re.match(r"line \d+ of (\S+): ", warning)
        assert named is None or named.group(1) in others, warning
    text = dump_strategy_yaml(result.spec, result.warnings)
    assert validate_document(parse_yaml_documents(text, "dumped.yaml")[0], StrategySpec) == result.spec


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_files_argo_refuses_are_refused_with_the_reason(name):
    """The error names the field at fault and says why, as Argo (or kubectl) would refuse it."""
    field, words = REFUSED[name]
    path = UPSTREAM / name
    with pytest.raises(InputError) as caught:
        import_manifest(inputs(path))
    assert caught.value.field == field
    assert words in str(caught.value)
    assert caught.value.file == str(path) and caught.value.line is not None


# --------------------------------------------------------------------------- what they mean


def compact(spec: StrategySpec) -> list:
    """Canary steps as short tuples: ("w", 20), ("p", 40.0), ("s", {...}), ("mirror", name), ("header", name)."""
    out = []
    for step in spec.strategy.canary.steps:
        if step.set_weight is not None:
            out.append(("w", step.set_weight))
        elif step.pause is not None:
            out.append(("p", step.pause.duration))
        elif step.set_canary_scale is not None:
            out.append(("s", step.set_canary_scale.model_dump(exclude_defaults=True)))
        elif step.route is not None:
            out.append(("header" if step.set_header_route else "mirror", step.route.name))
        else:
            out.append(("a", tuple(t.template_name for t in step.analysis.templates)))
    return out


def pauses(n: int, seconds: float) -> list:
    return [("p", seconds)] * n


def flagger_weights(*weights: int, interval: float = 15.0) -> list:
    return [("s", {"weight": 100})] + [x for w in weights for x in (("w", w), ("p", interval))]


@dataclass(frozen=True)
class Meaning:
    name: str  # the fixture, under tests/fixtures/upstream
    steps: list | None = None  # compact() of the canary steps
    replicas: int | None = None
    metrics: tuple = ()  # (name, signal, success condition, failureLimit, interval)
    warnings: tuple[str, ...] = ()  # each must appear in one warning


MEANINGS = [
    Meaning("argo/examples/rollout-canary.yaml",
            [("w", 20), ("p", None), ("w", 40), ("p", 40.0), ("w", 60), ("p", 20.0), ("w", 80), ("p", 20.0)], 5),
    Meaning("argo/examples/rollout-analysis-step.yaml", [("w", 25)], 4,
            warnings=("spec.strategy.canary.steps[1]: analysis step dropped",
                      "'job' metrics judge a Kubernetes Job's exit code")),
    Meaning("argo/examples/rollout-canary-with-analysis.yaml",
            [("w", 40), ("p", 60.0), ("w", 60), ("p", 60.0), ("w", 80), ("p", 60.0)], 5,
            warnings=("Argo looks for a ClusterAnalysisTemplate 'pass' here (clusterScope: true) and none is given",)),
    Meaning("argo/examples/rollout-with-analysis.yaml", [("w", 50), ("p", None)], 4,
            warnings=("AnalysisTemplate 'random-fail' is also defined at", "spec.minReadySeconds")),
    Meaning("argo/examples/istio/istio-mirror.yaml",
            [("s", {"weight": 50}), ("mirror", "mirror-route"), ("p", None)], 4,
            warnings=("traffic router 'istio'",)),
    Meaning("argo/examples/appmesh/canary-rollout.yaml",
            [("w", 25), ("p", None), ("w", 50), ("p", 600.0), ("w", 75), ("p", 600.0)], 4),
    Meaning("argo/examples/workload-ref/workload-ref.yaml", [("w", 20), ("p", 10.0)], 5,
            warnings=("spec.workloadRef: the pods come from the referenced workload",)),
    Meaning("argo/examples/rollout-baseline-vs-canary.yaml", [], 3,
            warnings=("experiment steps (extra baseline/canary ReplicaSets) are not modelled",)),
    Meaning("argo/docs/getting-started/openshift/rollout.yaml",
            [("w", 20), ("p", None), ("w", 40), ("p", 10.0), ("w", 60), ("p", 10.0), ("w", 80), ("p", 10.0)], 5,
            warnings=("spec.trafficManager: not a field of an Argo Rollout here",)),
    Meaning("flagger/artifacts/examples/istio-canary.yaml", flagger_weights(*range(5, 55, 5)), None,
            (("request-success-rate", "errorRate", "result <= 0.01", 9, 15.0),
             ("request-duration", "latency", "result <= 500", 9, 15.0)),
            ("webhook 'conformance-test' (pre-rollout)",)),
    Meaning("flagger/artifacts/examples/linkerd-canary-steps.yaml", flagger_weights(*range(5, 60, 5))),
    Meaning("flagger/artifacts/examples/kuma-canary.yaml", flagger_weights(10, 20, 30, 40, 50), None,
            (("request-success-rate", "errorRate", "result <= 0.01", 14, 15.0),
             ("request-duration", "latency", "result <= 500", 14, 15.0)),
            ("spec.analysis.metrics[0].threshold: deprecated: read as thresholdRange.min", "istio assumed")),
    Meaning("flagger/artifacts/examples/appmesh-abtest.yaml",
            [("s", {"weight": 100}), ("header", "ab-match")] + pauses(10, 15.0)),
]


@pytest.mark.parametrize("meaning", MEANINGS, ids=[m.name for m in MEANINGS])
def test_key_manifests_keep_their_meaning(meaning):
    """Weights, pauses, routes, replicas and analysis thresholds come through as the source runs them."""
    result = import_manifest(inputs(UPSTREAM / meaning.name))
    spec = result.spec
    if meaning.steps is not None:
        assert compact(spec) == meaning.steps
    assert spec.replicas == meaning.replicas
    metrics = {m.name: m for t in spec.analysis_templates for m in t.metrics}
    for name, signal, condition, failure_limit, interval in meaning.metrics:
        metric = metrics[name]
        assert (metric.signal.value, metric.success_condition, metric.failure_limit, metric.interval) == (
            signal, condition, failure_limit, interval)
    for expected in meaning.warnings:
        assert any(expected in w for w in result.warnings), f"{expected!r} not in {result.warnings}"


def test_a_template_in_the_file_beside_is_warned_about_at_its_own_file_and_line():
    """The AnalysisTemplate of Argo's analysis-step example lives in analysis-templates.yaml: the
    warning about its job metric names that file and the line of `job:` in it."""
    rollout = UPSTREAM / "argo/examples/rollout-analysis-step.yaml"
    templates = UPSTREAM / "argo/examples/analysis-templates.yaml"
    lines = templates.read_text().splitlines()
    random_fail = next(i for i, text in enumerate(lines) if text.strip() == "name: random-fail")
    job_line = next(i for i in range(random_fail, len(lines)) if lines[i].strip() == "job:") + 1
    result = import_manifest(inputs(rollout))
    assert any(w.startswith(f"line {job_line} of {templates}: AnalysisTemplate/random-fail spec.metrics[0]"
                            ".provider.job:") for w in result.warnings), result.warnings


def test_without_the_file_beside_the_template_is_missing_and_the_error_says_what_to_give():
    """Only the Rollout file: the reference it makes points at the missing template by name."""
    with pytest.raises(InputError) as caught:
        import_manifest(UPSTREAM / "argo/examples/rollout-analysis-step.yaml")
    assert caught.value.field == "spec.strategy.canary.steps[1].analysis.templates[0].templateName"
    assert "AnalysisTemplate 'random-fail', which is in none of the given documents" in str(caught.value)
    assert "give the file that defines it too" in str(caught.value)


def test_a_directory_imports_like_its_files_in_name_order(tmp_path):
    """A directory holding one Rollout and its templates imports as the same files listed by name."""
    for name in ("rollout-analysis-step.yaml", "analysis-templates.yaml", "cluster-analysis-templates.yaml"):
        shutil.copy(UPSTREAM / "argo/examples" / name, tmp_path / name)
    (tmp_path / "notes.txt").write_text("not a manifest: a directory import reads .yaml, .yml and .json only")
    by_directory = import_manifest(tmp_path)
    by_files = import_manifest(sorted(tmp_path.glob("*.yaml")))
    assert by_directory.spec == by_files.spec and by_directory.warnings == by_files.warnings


def test_a_directory_with_several_rollouts_is_refused_naming_each():
    """Argo's examples/ directory holds many Rollouts: one import takes one, and the error lists where they are."""
    with pytest.raises(InputError) as caught:
        import_manifest(UPSTREAM / "argo/examples")
    assert "things to import" in str(caught.value) and "rollout-canary.yaml:" in str(caught.value)


def test_warnings_in_total_are_counted():
    """Every imported manifest reports what it could not carry; the total is bounded (a regression
    that floods users with warnings, or one that silences them, shows here)."""
    total = sum(len(import_manifest(inputs(p)).warnings) for p in IMPORTED)
    assert 100 <= total <= 400, total
