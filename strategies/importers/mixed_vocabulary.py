"""Manifests that mix Argo Rollouts' and Flagger's vocabularies, refused with the other
system's way of writing the same thing.

People moving between the two write one system's fields into the other's object: Argo's
``steps`` / ``setWeight`` in a Flagger ``Canary`` (Flagger's schedule is ``stepWeight`` up to
``maxWeight``, or ``stepWeights``, one ``interval`` per weight: pkg/apis/flagger/v1beta1
``CanaryAnalysis``), or Flagger's ``stepWeight`` / ``threshold`` / ``metrics`` in an Argo
``Rollout`` (whose schedule is ``steps`` and whose metrics live in AnalysisTemplates:
pkg/apis/rollouts/v1alpha1 ``CanaryStrategy``, ``RolloutAnalysis``). Neither controller
reads such a field (the Kubernetes API server prunes it), so the release would run without
what the author meant. The import stops with an :class:`InputError` that names the field
and shows the equivalent, computed from the values the manifest gives where it can.
"""

from __future__ import annotations

from typing import Any

from rolloutlab.strategies.durations import format_duration, parse_duration
from rolloutlab.strategies.importers.conditions import ConditionNotThreshold, Threshold, format_number, parse_threshold
from rolloutlab.strategies.importers.manifest import ManifestReader, Path, as_integer

# Fields of Flagger's CanaryAnalysis (and of its metrics) that an Argo Rollout does not have
FLAGGER_ANALYSIS = ("stepWeight", "stepWeights", "maxWeight", "stepWeightPromotion", "threshold", "iterations",
                    "interval", "metrics", "webhooks", "match", "mirror", "mirrorWeight")
# Fields of Argo's canary strategy, steps and AnalysisTemplate metrics that a Flagger Canary does not have
ARGO_CANARY = ("steps", "setWeight", "pause", "setCanaryScale", "setHeaderRoute", "setMirrorRoute", "templates",
               "startingStep", "trafficRouting", "canaryService", "stableService")
ARGO_METRIC = ("successCondition", "failureCondition", "failureLimit", "provider", "count")


def reject_flagger_fields(r: ManifestReader, p: Path) -> None:
    """Refuse Flagger's analysis fields in the mapping at ``p`` of an Argo Rollout."""
    node = r.at(p)
    if not isinstance(node, dict):
        return
    for key in FLAGGER_ANALYSIS:
        if key in node:
            raise r.error((*p, key), f"`{key}` is Flagger's (a Canary's spec.analysis), not a field of an Argo "
                                     f"Rollout, which would ignore it; {_argo_equivalent(key, node)}")


def reject_argo_fields(r: ManifestReader, ap: Path) -> None:
    """Refuse Argo's canary fields in a Flagger Canary: in spec.analysis, its metrics, or a
    ``spec.strategy``."""
    strategy = r.at(("spec", "strategy"))
    if isinstance(strategy, dict):
        inner = next((strategy[k] for k in ("canary", "blueGreen") if isinstance(strategy.get(k), dict)), {})
        raise r.error(("spec", "strategy"), "`strategy` is Argo Rollouts' (a Rollout's spec.strategy), not a field "
                                            "of a Flagger Canary, which would ignore it; "
                                            f"{_flagger_schedule(inner.get('steps'))}")
    node = r.at(ap)
    if isinstance(node, dict):
        for key in ARGO_CANARY:
            if key in node:
                where = "a step of spec.strategy.canary.steps" if key in ("setWeight", "pause") else \
                    "spec.strategy.canary" if key not in ("templates", "startingStep") else "an analysis reference"
                hint = (_flagger_schedule(node.get("steps") if key == "steps" else [{key: node[key]}])
                        if key in ("steps", "setWeight", "pause") else _FLAGGER_FOR.get(key, _FLAGGER_ROUTING))
                raise r.error((*ap, key), f"`{key}` is Argo Rollouts' ({where}), not a field of a Flagger Canary, "
                                          f"which would ignore it; {hint}")
    metrics = r.at((*ap, "metrics"))
    for k, metric in enumerate(metrics if isinstance(metrics, list) else []):
        if not isinstance(metric, dict):
            continue
        for key in ARGO_METRIC:
            if key in metric:
                raise r.error((*ap, "metrics", k, key),
                              f"`{key}` is Argo Rollouts' (an AnalysisTemplate metric), not a field of a Flagger "
                              f"metric, which would ignore it; {_flagger_metric(key, metric)}")


_FLAGGER_ROUTING = "Flagger routes through spec.provider (istio, nginx, ...) and the Services it makes from spec.service"
_FLAGGER_FOR = {
    "setCanaryScale": "Flagger scales the canary to the full size of the Deployment (or its HPA) before any traffic "
                      "moves; there is nothing to write",
    "setHeaderRoute": "Flagger's header routes are A/B testing: analysis.match: [{headers: {x-canary: {exact: "
                      "insider}}}] with analysis.iterations",
    "setMirrorRoute": "Flagger mirrors with analysis.mirror: true (and mirrorWeight) on Istio",
    "templates": "Flagger refers to a MetricTemplate from a metric: metrics: [{name: ..., templateRef: {name: ...}, "
                 "thresholdRange: {max: ...}, interval: 1m}]",
    "startingStep": "Flagger runs its metrics at every check from the first weight on; there is nothing to write",
}


def _argo_equivalent(key: str, analysis: dict) -> str:
    if key in ("stepWeight", "stepWeights", "maxWeight", "interval", "stepWeightPromotion"):
        return _argo_schedule(analysis)
    if key == "iterations":
        return ("Argo writes a check of N iterations as blueGreen with a prePromotionAnalysis whose metric has "
                f"count: {_text(analysis.get('iterations'))} and an interval")
    if key == "threshold":
        threshold = as_integer(analysis.get("threshold"))
        limit = f"failureLimit: {threshold - 1}" if threshold is not None and threshold > 0 else "failureLimit"
        return (f"Argo counts failed measurements per metric: {limit} on each metric of the AnalysisTemplate the "
                "analysis refers to (analysis.templates)")
    if key == "metrics":
        return ("Argo's metrics live in an AnalysisTemplate (metrics: [{name, interval, successCondition: "
                "result[0] < 0.01, provider: {prometheus: {query}}}]) that analysis.templates refers to by name")
    if key == "webhooks":
        return "Argo runs checks as AnalysisTemplate metrics (a web or job provider) referenced from the steps"
    if key in ("match", "mirror", "mirrorWeight"):
        return ("Argo writes routes as steps: setHeaderRoute / setMirrorRoute, named in "
                "trafficRouting.managedRoutes")
    return "see Argo's spec.strategy.canary"


def _argo_schedule(analysis: dict) -> str:
    """Argo steps for a Flagger weight schedule (one setWeight and one pause per weight)."""
    interval = _duration(analysis.get("interval")) or 60.0
    listed = analysis.get("stepWeights")
    step, top = as_integer(analysis.get("stepWeight")), as_integer(analysis.get("maxWeight")) or 100
    weights: list[int] = []
    if isinstance(listed, list) and all(as_integer(w) is not None for w in listed):
        weights = [min(as_integer(w), 100) for w in listed]
    elif step is not None and step > 0:
        weights = list(range(step, min(top, 100) + step, step))
        weights = [min(w, 100) for w in weights]
    if not weights:
        return "Argo writes the schedule as steps: [{setWeight: 10}, {pause: {duration: 1m}}, {setWeight: 20}, ...]"
    pause = f"{{pause: {{duration: {format_duration(interval)}}}}}"
    shown = [f"{{setWeight: {w}}}, {pause}" for w in weights]
    if len(shown) > 4:
        shown = [*shown[:2], "...", shown[-1]]
    return f"Argo writes the same schedule as steps: [{', '.join(shown)}]"


def _flagger_schedule(steps: Any) -> str:
    """Flagger's schedule for Argo steps: the weights as stepWeights, a pause as the interval."""
    weights, pauses, manual = [], [], False
    for step in steps if isinstance(steps, list) else []:
        if not isinstance(step, dict):
            continue
        weight = as_integer(step.get("setWeight"))
        if weight is not None:
            weights.append(weight)
        if "pause" in step:
            duration = _duration(step["pause"].get("duration")) if isinstance(step["pause"], dict) else None
            manual = manual or duration is None
            if duration:
                pauses.append(duration)
    if not weights:
        return ("Flagger writes the schedule in spec.analysis as stepWeights: [10, 20, 50] (or stepWeight and "
                "maxWeight), waiting one interval (e.g. interval: 1m) at each weight")
    interval = format_duration(max(set(pauses), key=pauses.count)) if pauses else "1m"
    text = (f"Flagger writes the same schedule in spec.analysis as stepWeights: [{', '.join(map(str, weights))}] "
            f"with interval: {interval} (one check per weight)")
    if manual:
        text += "; a pause without duration is a confirm-promotion webhook in Flagger"
    return text


def _flagger_metric(key: str, metric: dict) -> str:
    if key in ("successCondition", "failureCondition"):
        bounds = _range(metric[key], failure=key == "failureCondition")
        return (f"Flagger writes the bounds of a passing value as thresholdRange: {bounds or '{min: ..., max: ...}'}"
                " (Flagger's bounds are inclusive)")
    if key == "provider":
        return ("Flagger's queries live in a MetricTemplate (spec.provider: {type: prometheus, address}, spec.query) "
                "that the metric names in templateRef")
    if key == "failureLimit":
        return "Flagger counts failed checks of all metrics together: analysis.threshold (failureLimit + 1)"
    return "Flagger checks every metric once per analysis.interval until the weights (or iterations) are done"


def _range(condition: Any, failure: bool) -> str | None:
    """Flagger's thresholdRange for a condition that is one bound or two on the value."""
    try:
        threshold = parse_threshold(condition) if isinstance(condition, str) else None
    except ConditionNotThreshold:
        return None
    if threshold is None:
        return None
    if failure:  # the passing values are the ones the failure condition does not hold for
        if len(threshold.clauses) != 1:
            return None
        op, value = threshold.clauses[0]
        threshold = Threshold(((_NEGATED[op], value),))
    if threshold.joiner != "&&" or any(op in ("==", "!=") for op, _ in threshold.clauses):
        return None
    parts = [f"{'max' if op in ('<', '<=') else 'min'}: {format_number(v)}" for op, v in threshold.clauses]
    return "{" + ", ".join(sorted(parts, key=lambda part: not part.startswith("min"))) + "}"


_NEGATED = {"<": ">=", "<=": ">", ">": "<=", ">=": "<", "==": "!=", "!=": "=="}


def _duration(value: Any) -> float | None:
    try:
        return parse_duration(value) if value is not None else None
    except (ValueError, TypeError, OverflowError):
        return None


def _text(value: Any) -> str:
    return str(value) if isinstance(value, (int, str)) and not isinstance(value, bool) else "N"
