"""Strategy files: every number means what it says, and every mistake is reported at the
line and full field path of the field at fault."""

from __future__ import annotations

import textwrap

import pytest

from rolloutlab.errors import InputError
from rolloutlab.strategies.files import LIBRARY_DIR
from rolloutlab.strategies.spec import StrategySpec
from rolloutlab.strategies.yaml_input import parse_yaml_documents, validate_document

CANARY = textwrap.dedent(
    """\
    name: canary
    analysisTemplates:
      - name: error-rate
        metrics:
          - name: error-rate
            interval: 30s
            count: 4
            successCondition: result < 0.02
          - name: latency
            signal: latency
            interval: 30s
            count: 4
            successCondition: result < 500
    strategy:
      canary:
        trafficRouting: router
        maxSurge: 25%
        maxUnavailable: 0
        analysis:
          templates: [{templateName: error-rate}]
          startingStep: 1
        steps:
          - setWeight: 10
          - pause: {duration: 2m}
          - analysis:
              templates:
                - templateName: error-rate
          - setWeight: 50
          - setCanaryScale: {weight: 50}
    """
)
"""A canary whose lines the cases below refer to (step 2's templateName is on line 27)."""
DUPLICATE_TEMPLATE = CANARY.replace(
    "strategy:\n", "  - name: error-rate\n    metrics: [{name: m, count: 1, successCondition: result < 1}]\nstrategy:\n"
)

BLUE_GREEN = textwrap.dedent(
    """\
    name: blue-green
    analysisTemplates:
      - name: error-rate
        metrics:
          - name: error-rate
            interval: 30s
            count: 4
            successCondition: result < 0.02
    strategy:
      blueGreen:
        prePromotionAnalysis:
          templates: [{templateName: error-rate}]
        postPromotionAnalysis:
          templates: [{templateName: error-rate}]
    """
)


def _load(text: str) -> StrategySpec:
    (doc,) = parse_yaml_documents(text, "s.yaml")
    return validate_document(doc, StrategySpec)


def _error(text: str) -> InputError:
    with pytest.raises(InputError) as info:
        _load(text)
    return info.value


def test_the_example_files_load():
    """The two example specs of this file are valid (so each case below breaks one thing)."""
    assert _load(CANARY).strategy.canary is not None
    assert _load(BLUE_GREEN).strategy.blue_green is not None


# --- cross-references name the field at fault -------------------------------------------------


@pytest.mark.parametrize(
    ("source", "old", "new", "line", "field", "fragment"),
    [
        (CANARY, "            - templateName: error-rate", "            - templateName: eror-rate", 27,
         "strategy.canary.steps[2].analysis.templates[0].templateName", "no analysis template 'eror-rate'"),
        (CANARY, "templates: [{templateName: error-rate}]", "templates: [{templateName: nope}]", 20,
         "strategy.canary.analysis.templates[0].templateName", "no analysis template 'nope'"),
        (BLUE_GREEN, "    postPromotionAnalysis:\n      templates: [{templateName: error-rate}]",
         "    postPromotionAnalysis:\n      templates: [{templateName: gone}]", 14,
         "strategy.blueGreen.postPromotionAnalysis.templates[0].templateName", "no analysis template 'gone'"),
        (CANARY, "      - name: latency", "      - name: error-rate", 9,
         "analysisTemplates[0].metrics[1].name", "used twice"),
        (DUPLICATE_TEMPLATE, "name: canary", "name: canary", 14, "analysisTemplates[1].name",
         "analysis template name 'error-rate' is used twice"),
        (CANARY, "        count: 4\n        successCondition: result < 0.02\n      - name: latency",
         "        successCondition: result < 0.02\n      - name: latency", 26,
         "strategy.canary.steps[2].analysis.templates[0].templateName", "would never finish: metric 'error-rate'"),
        (CANARY, "      startingStep: 1", "      startingStep: 9", 21,
         "strategy.canary.analysis.startingStep", "past the last step"),
        (CANARY, "    trafficRouting: router\n", "", 28,
         "strategy.canary.steps[4].setCanaryScale", "needs trafficRouting: router"),
        (CANARY.replace("      - setCanaryScale: {weight: 50}\n", ""), "    trafficRouting: router\n",
         "    dynamicStableScale: true\n", 16,
         "strategy.canary.dynamicStableScale", "needs trafficRouting: router"),
        (CANARY, "        successCondition: result < 0.02\n      - name: latency",
         "        successCondition: result < 0.02\n        thresholdRange: {min: 0.5, max: 0.1}\n"
         "      - name: latency", 9, "analysisTemplates[0].metrics[0].thresholdRange.max", "above max"),
        (CANARY, "        successCondition: result < 500\n",
         "        judge: {sequential: {}}\n", 10, "analysisTemplates[0].metrics[1].signal",
         "the sequential judge tests error counts"),
        (CANARY, "        successCondition: result < 500\n",
         "        judge: {mannWhitney: {}, sequential: {}}\n", 13,
         "analysisTemplates[0].metrics[1].judge.sequential", "choose one judge"),
        (CANARY, "        successCondition: result < 500\n",
         "        judge: {mannWhitney: {thresholds: {pass: 60, marginal: 80}}}\n", 13,
         "analysisTemplates[0].metrics[1].judge.mannWhitney.thresholds.marginal", "above the pass score"),
        (CANARY, "        successCondition: result < 500\n",
         "        judge: {mannWhitney: {signals: [{signal: latency}, {signal: throughput}]}}\n", 13,
         "analysisTemplates[0].metrics[1].judge.mannWhitney.signals[1].signal", "throughput differs"),
    ],
    ids=["unknown-templateName-in-a-step", "unknown-templateName-in-background-analysis",
         "unknown-templateName-in-blue-green", "duplicate-metric-name", "duplicate-template-name",
         "step-analysis-without-count", "startingStep-past-the-steps", "setCanaryScale-without-router",
         "dynamicStableScale-without-router", "thresholdRange-min-above-max", "sequential-judge-on-latency",
         "two-judges", "marginal-above-pass", "mann-whitney-on-throughput"],
)
def test_cross_reference_errors_name_the_field_at_fault(source, old, new, line, field, fragment):
    """A validator that checks several fields together reports the line and the full field
    path of the field at fault, not the model that holds it."""
    assert source.count(old) == 1, old
    error = _error(source.replace(old, new))
    assert (error.line, error.field) == (line, field), str(error)
    assert fragment in error.message


# --- numbers are numbers, within what makes sense ----------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("  - setWeight: 10", "  - setWeight: yes", "strategy.canary.steps[0].setWeight"),
        ("  - setWeight: 50", "  - setWeight: on", "strategy.canary.steps[3].setWeight"),
        ("        count: 4\n        successCondition: result < 0.02", "        count: true\n"
         "        successCondition: result < 0.02", "analysisTemplates[0].metrics[0].count"),
        ("      startingStep: 1", "      startingStep: yes", "strategy.canary.analysis.startingStep"),
        ("{weight: 50}", "{weight: no}", "strategy.canary.steps[4].setCanaryScale.weight"),
        ("        successCondition: result < 500\n", "        successCondition: result < 500\n"
         "        failureLimit: yes\n", "analysisTemplates[0].metrics[1].failureLimit"),
        ("        successCondition: result < 500\n", "        successCondition: result < 500\n"
         "        judge: {mannWhitney: {confidence: yes}}\n",
         "analysisTemplates[0].metrics[1].judge.mannWhitney.confidence"),
        ("        successCondition: result < 500\n", "        successCondition: result < 500\n"
         "        quantile: true\n", "analysisTemplates[0].metrics[1].quantile"),
    ],
    ids=["setWeight-yes", "setWeight-on", "count-true", "startingStep-yes", "setCanaryScale-weight-no",
         "failureLimit-yes", "confidence-yes", "quantile-true"],
)
def test_strategy_numbers_refuse_yaml_booleans(old, new, field):
    """A strategy number written as yes/no/on/off/true is an error saying how YAML read
    it, as scenario numbers are, never the weight 1 or 0."""
    assert CANARY.count(old) == 1, old
    error = _error(CANARY.replace(old, new))
    assert error.field == field, str(error)
    assert "expected a number" in error.message


@pytest.mark.parametrize(
    ("old", "new", "field", "fragment"),
    [
        ("name: canary\n", "name: canary\nreplicas: 010\n", "replicas", "octal number 8"),
        ("name: canary\n", "name: canary\nreplicas: 1000000\n", "replicas", "less than or equal to 1000"),
        ("name: canary\n", "name: canary\nprogressDeadlineSeconds: 1e20\n", "progressDeadlineSeconds",
         "longer than a year"),
        ("  - pause: {duration: 2m}", "  - pause: {duration: 100000d}", "strategy.canary.steps[1].pause.duration",
         "longer than a year"),
        ("        interval: 30s\n        count: 4\n        successCondition: result < 0.02",
         "        interval: 1ms\n        count: 4\n        successCondition: result < 0.02",
         "analysisTemplates[0].metrics[0].interval", "at least 1s"),
        ("        count: 4\n        successCondition: result < 0.02", "        count: 100000000\n"
         "        successCondition: result < 0.02", "analysisTemplates[0].metrics[0].count",
         "less than or equal to 10000"),
        ("    maxSurge: 25%", "    maxSurge: 99999999999999999999%", "strategy.canary.maxSurge", "above 1000%"),
        ("    maxUnavailable: 0", "    maxUnavailable: 150%", "strategy.canary.maxUnavailable", "above 100%"),
        ("    maxSurge: 25%", "    maxSurge: 2.5%", "strategy.canary.maxSurge", "whole percentage"),
        ("    maxUnavailable: 0", "    maxUnavailable: 1000000000", "strategy.canary.maxUnavailable",
         "above 1000 replicas"),
        ("        successCondition: result < 500\n", "        successCondition: result < 500\n"
         "        thresholdRange: {max: .nan}\n", "analysisTemplates[0].metrics[1].thresholdRange.max", "finite"),
    ],
    ids=["octal-replicas", "a-million-replicas", "deadline-1e20-seconds", "pause-of-centuries",
         "interval-1ms", "count-1e8", "surge-beyond-1000-percent", "unavailable-above-100-percent",
         "fractional-percent",
         "unavailable-a-billion", "nan-threshold"],
)
def test_strategy_numbers_are_bounded(old, new, field, fragment):
    """Strategy numbers beyond what can make sense are errors at their field: a replica
    count written in octal, durations past a year, sub-second analysis intervals."""
    assert CANARY.count(old) == 1, old
    error = _error(CANARY.replace(old, new))
    assert error.field == field, str(error)
    assert fragment in error.message


def test_bundled_strategies_are_named_after_their_files():
    """A bundled strategy's `name:` is its file name, so a scenario's `strategies:` entry
    and an expectation's `for:` mean the same strategy."""
    for path in sorted(LIBRARY_DIR.glob("*.yaml")):
        (doc,) = parse_yaml_documents(path.read_text(), str(path))
        assert validate_document(doc, StrategySpec).name == path.stem
