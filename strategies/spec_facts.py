"""What a strategy spec makes the same on every reconcile call, worked out once per spec object.

``reconcile`` runs on every state change of every run (about thirty times per simulated
release), and much of what a call reads from its spec depends on the spec alone: the
metrics an analysis reference runs, the weight each canary step declares, what each step
waits on. Specs are frozen values (a different spec is a different object, from
``model_copy``), so this is worked out on a spec's first call and kept. The cache is keyed
on the object's identity and holds the object itself, so an id cannot be reused while its
entry lives (as ``sim/scenario_facts.py`` does for scenarios). Everything here is a pure
function of the spec: a call with the facts decides exactly what a call without them would.
"""

from __future__ import annotations

from rolloutlab.strategies.analysis_spec import Metric, RolloutAnalysis
from rolloutlab.strategies.spec import StrategySpec

_CACHE_SIZE = 256  # specs a process keeps facts for (a tune study holds a few hundred candidates)
_cache: dict[int, tuple[StrategySpec, SpecFacts]] = {}

_STEP_FIELDS = (("setCanaryScale", "set_canary_scale"), ("setHeaderRoute", "set_header_route"),
                ("setMirrorRoute", "set_mirror_route"), ("setWeight", "set_weight"), ("analysis", "analysis"))
"""A canary step's fields in the order the step's completion names them ("setWeight",
"setCanaryScale+setHeaderRoute")."""


class AnalysisFacts:
    """What one analysis reference runs: its templates' metrics in order, by name, and
    their names as the "analysis started" event lists them."""

    __slots__ = ("metrics", "by_name", "names")

    def __init__(self, metrics: tuple[Metric, ...]) -> None:
        self.metrics = metrics
        self.by_name = {m.name: m for m in metrics}
        self.names = ", ".join(m.name for m in metrics)


class SpecFacts:
    """The parts of reconcile's work that depend on the spec only.

    ``canary_weights[i]`` is the weight declared at step ``i`` (``declared_canary_weight``;
    index ``len(steps)``: 100); ``canary_step_done[i]`` is None for a step that holds the
    rollout (a pause, or an analysis without setCanaryScale), else what its completion
    event names; ``canary_routes[i]`` is step ``i``'s route (None: none)."""

    __slots__ = ("spec", "replicas", "deadline", "deadline_abort", "compare_baseline", "compare_flag",
                 "canary_weights", "canary_step_done", "canary_routes", "_analyses")

    def __init__(self, spec: StrategySpec) -> None:
        self.spec = spec
        self.replicas = spec.replicas
        self.deadline = spec.progress_deadline_seconds
        self.deadline_abort = spec.progress_deadline_abort
        canary = spec.strategy.canary
        self.compare_baseline = canary is not None and canary.baseline
        self.compare_flag = spec.strategy.feature_flag is not None
        self.canary_weights = self.canary_step_done = self.canary_routes = None
        if canary is not None:
            steps = canary.steps
            weights, weight = [], 0
            for step in steps:
                if step.set_weight is not None:
                    weight = step.set_weight
                weights.append(weight)
            self.canary_weights = (*weights, 100)
            self.canary_step_done = tuple(
                None if step.pause is not None or (step.analysis is not None and step.set_canary_scale is None)
                else "+".join(name for name, field in _STEP_FIELDS if getattr(step, field) is not None)
                for step in steps)
            self.canary_routes = tuple(step.route for step in steps)
        self._analyses: dict[int, tuple[RolloutAnalysis, AnalysisFacts]] = {}

    def analysis(self, ref: RolloutAnalysis) -> AnalysisFacts:
        """The metrics ``ref`` runs (``StrategySpec.metrics_for``), worked out once."""
        entry = self._analyses.get(id(ref))
        if entry is not None and entry[0] is ref:
            return entry[1]
        facts = AnalysisFacts(self.spec.metrics_for(ref))
        self._analyses[id(ref)] = (ref, facts)
        return facts


def spec_facts(spec: StrategySpec) -> SpecFacts:
    """The facts of ``spec``, computed on its first reconcile call in this process."""
    entry = _cache.get(id(spec))
    if entry is not None and entry[0] is spec:
        return entry[1]
    facts = SpecFacts(spec)
    if len(_cache) >= _CACHE_SIZE:
        _cache.clear()
    _cache[id(spec)] = (spec, facts)
    return facts
