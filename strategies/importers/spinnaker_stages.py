"""A Spinnaker pipeline's stage graph, read so that every mistake names its line.

A pipeline (``spin pipeline get``, or Deck's "Edit as JSON") lists ``stages``; each has a
``refId`` and the ``requisiteStageRefIds`` it waits for, so stages without a path between
them run at the same time (orca builds the same graph: ``PipelineExecution.initialStages``
and ``StageExecution.downstreamStages``). Pipelines saved before parallel stages existed
have no ``refId`` at all and run their stages in list order; both forms are read.

:class:`PipelineReader` is a :class:`~strategies.importers.manifest.ManifestReader` that
knows the pipeline's parameters: a field holding a pipeline expression (``${...}``) is
resolved when it only names a parameter that has a default in ``parameterConfig`` (with a
warning saying so, since another run may pass another value), and is otherwise reported
with its field and left out -- never guessed.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from rolloutlab.errors import InputError
from rolloutlab.strategies.importers.manifest import MISSING, ManifestReader, Path, describe_type

_EXPRESSION = re.compile(r"\$\{(.*?)\}")
_CONVERTER = re.compile(r"^\s*#to(?:Int|Float|Double|Long|Boolean|String)\s*\((.*)\)\s*$", re.DOTALL)
_PARAMETER = re.compile(
    r"""^\s*(?:trigger\s*(?:\.\s*parameters|\[\s*['"]parameters['"]\s*\])|parameters)\s*"""
    r"""(?:\.\s*([A-Za-z_][\w-]*)|\[\s*['"]([^'"]+)['"]\s*\])\s*$""")
_NUMBER = re.compile(r"\s*[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?\s*")


@dataclass
class PipelineReader(ManifestReader):
    """Typed access to a pipeline document that resolves ``${parameters.x}`` from defaults.

    ``parameters`` maps a parameter name to its default and the path of that default.
    """

    parameters: dict[str, tuple[str, Path]] = field(default_factory=dict)
    unresolved: dict[Path, str] = field(default_factory=dict)

    def at(self, path: Path) -> Any:
        value = super().at(path)
        if isinstance(value, str) and "${" in value:
            return self._resolve(tuple(path), value)
        return value

    def error(self, path: Path, message: str) -> InputError:
        text = self.unresolved.get(tuple(path))
        if text is not None:
            message += f" (it holds the pipeline expression {text!r}, known only when the pipeline runs)"
        return super().error(path, message)

    def _resolve(self, path: Path, text: str) -> Any:
        used: list[str] = []

        def replace(match: re.Match) -> str:
            inner = match.group(1)
            converted = _CONVERTER.match(inner)
            named = _PARAMETER.match(converted.group(1) if converted else inner)
            name = named and (named.group(1) or named.group(2))
            if name is None or name not in self.parameters:
                raise _Unresolved(match.group(0))
            used.append(name)
            return self.parameters[name][0]

        try:
            resolved = _EXPRESSION.sub(replace, text)
        except _Unresolved as exc:
            self.unresolved[path] = text
            why = ("it names no parameter with a default in parameterConfig" if "parameters" in str(exc)
                   else "its value is known only when the pipeline runs")
            self.warn(path, f"pipeline expression {str(exc)!r} cannot be resolved ({why}); this field is left out")
            return MISSING
        for name in used:
            default, where = self.parameters[name]
            self.warn(path, f"{text!r} resolved to {resolved!r} from the default of parameter {name!r} "
                            f"(parameterConfig, line {self.line(where)}); a run given another value behaves differently")
        return resolved

    # ------------------------------------------------------------------ numbers as Spinnaker writes them

    def quantity(self, path: Path, *, minimum: float = 0, required: bool = False, whole: bool = False) -> float | None:
        """A number written as a number or as text (Deck saves ``"waitTime": "420"``)."""
        value = self.at(path)
        if value is MISSING or value is None or value == "":
            if required:
                raise self.error(path, "is required")
            return None
        number: float | None = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str) and _NUMBER.fullmatch(value):
            number = float(value)
        if number is None or not math.isfinite(number):
            raise self.error(path, f"must be a number, got {describe_type(value)}")
        if whole and number != int(number):
            raise self.error(path, f"must be a whole number, got {value!r}")
        if number < minimum:
            raise self.error(path, f"must be at least {minimum:g}, got {number:g}")
        return number

    def whole(self, path: Path, *, minimum: int = 0, required: bool = False) -> int | None:
        number = self.quantity(path, minimum=minimum, required=required, whole=True)
        return None if number is None else int(number)

    def text(self, path: Path) -> str | None:
        """Optional text as Deck saves it: ``""`` and null mean not given."""
        value = self.at(path)
        if value is MISSING or value is None or (isinstance(value, str) and not value.strip()):
            return None
        if not isinstance(value, str):
            raise self.error(path, f"must be text, got {describe_type(value)}")
        return value

    def flag(self, path: Path) -> bool | None:
        """true/false, also as text (``"true"``), as Jackson reads it."""
        value = self.at(path)
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        return self.boolean(path)


class _Unresolved(Exception):
    pass


def read_parameters(r: PipelineReader) -> None:
    """Fill ``r.parameters`` from ``parameterConfig``: name -> default (text), when one is given."""
    for j, _ in enumerate(r.sequence(("parameterConfig",)) or []):
        pp = ("parameterConfig", j)
        r.mapping(pp, required=True)
        name = r.string((*pp, "name"), required=True)
        default = ManifestReader.at(r, (*pp, "default"))  # a default is never itself resolved
        if isinstance(default, (str, int, float)) and not isinstance(default, bool) and str(default) != "":
            r.parameters[name] = (str(default), (*pp, "default"))


# --------------------------------------------------------------------------- the graph


@dataclass(frozen=True)
class Stage:
    """One stage: where it sits in ``stages``, its refId, type, name and what it waits for."""

    index: int
    ref: str
    type: str
    name: str
    requires: tuple[str, ...]

    @property
    def path(self) -> Path:
        return ("stages", self.index)

    def at(self, *parts: Any) -> Path:
        return ("stages", self.index, *parts)

    @property
    def label(self) -> str:
        return f"stage {self.name!r} ({self.type}, refId {self.ref})"


@dataclass(frozen=True)
class StageGraph:
    """The stages in an order that respects every ``requisiteStageRefIds`` (ties: list order)."""

    order: tuple[Stage, ...]
    ancestors: dict[str, frozenset[str]]

    def before(self, a: Stage, b: Stage) -> bool:
        """Whether ``a`` must finish before ``b`` starts (a path leads from a to b)."""
        return a.ref in self.ancestors[b.ref]

    def concurrent(self, a: Stage, b: Stage) -> bool:
        return a.ref != b.ref and not self.before(a, b) and not self.before(b, a)

    def after(self, a: Stage) -> list[Stage]:
        """Every stage that waits (directly or not) for ``a``, in order."""
        return [s for s in self.order if self.before(a, s)]


def _ref(r: PipelineReader, path: Path) -> str:
    value = ManifestReader.at(r, path)
    if isinstance(value, bool) or not isinstance(value, (str, int)) or str(value).strip() == "":
        raise r.error(path, f"must be a stage's refId (text), got {describe_type(value)}")
    return str(value)


def read_graph(r: PipelineReader) -> StageGraph:
    """The pipeline's stages as a DAG; dangling references and cycles are InputErrors."""
    raw = r.sequence(("stages",))
    if not raw:
        raise r.error(("stages",), "is empty: a pipeline without stages deploys nothing")
    linear = not any(isinstance(s, dict) and "refId" in s for s in raw)
    stages: list[Stage] = []
    seen: dict[str, int] = {}
    for i in range(len(raw)):
        sp = ("stages", i)
        r.mapping(sp, required=True)
        kind = r.string((*sp, "type"), required=True)
        name = r.text((*sp, "name")) or kind
        if linear:  # before parallel stages, a pipeline ran its stages in list order
            ref, requires = str(i), (() if i == 0 else (str(i - 1),))
        else:
            if "refId" not in raw[i]:
                raise r.error(sp, "has no refId, while other stages do: every stage of a parallel pipeline "
                                  "needs a refId for requisiteStageRefIds to name")
            ref = _ref(r, (*sp, "refId"))
            refs = r.sequence((*sp, "requisiteStageRefIds")) or []
            requires = tuple(_ref(r, (*sp, "requisiteStageRefIds", k)) for k in range(len(refs)))
        if ref in seen:
            raise r.error((*sp, "refId"), f"refId {ref!r} is already used by stages[{seen[ref]}] "
                                          f"(line {r.line(('stages', seen[ref], 'refId'))}); refIds must be unique")
        seen[ref] = i
        stages.append(Stage(i, ref, kind, name, requires))
    by_ref = {s.ref: s for s in stages}
    for s in stages:
        for k, needed in enumerate(s.requires):
            if needed not in by_ref:
                known = ", ".join(repr(x) for x in by_ref)
                raise r.error(s.at("requisiteStageRefIds", k),
                              f"{s.label} waits for stage {needed!r}, which is not in this pipeline (refIds: {known})")
    return StageGraph(tuple(_topological(r, stages, by_ref)), _ancestors(stages, by_ref))


def _topological(r: PipelineReader, stages: list[Stage], by_ref: dict[str, Stage]) -> list[Stage]:
    waiting = {s.ref: set(s.requires) for s in stages}
    order: list[Stage] = []
    while waiting:
        ready = [s for s in stages if s.ref in waiting and not waiting[s.ref]]
        if not ready:
            raise _cycle_error(r, [s for s in stages if s.ref in waiting], by_ref)
        stage = ready[0]  # list order among the ready ones: what a reader of the file expects
        order.append(stage)
        del waiting[stage.ref]
        for others in waiting.values():
            others.discard(stage.ref)
    return order


def _cycle_error(r: PipelineReader, left: list[Stage], by_ref: dict[str, Stage]) -> InputError:
    """Name one cycle among the stages that never became ready."""
    remaining = {s.ref for s in left}
    path: list[str] = []
    current = left[0].ref
    while current not in path:
        path.append(current)
        current = next(x for x in by_ref[current].requires if x in remaining)
    cycle = path[path.index(current):] + [current]
    first = by_ref[cycle[0]]
    k = first.requires.index(cycle[1]) if len(cycle) > 1 else 0
    names = " waits for ".join(f"{by_ref[x].name!r} (refId {x})" for x in cycle)
    return r.error(first.at("requisiteStageRefIds", k),
                   f"stages wait for each other in a cycle: {names}; a pipeline must be a DAG")


def _ancestors(stages: list[Stage], by_ref: dict[str, Stage]) -> dict[str, frozenset[str]]:
    memo: dict[str, frozenset[str]] = {}

    def of(ref: str) -> frozenset[str]:
        if ref not in memo:
            out: set[str] = set()
            for needed in by_ref[ref].requires:
                out |= of(needed) | {needed}
            memo[ref] = frozenset(out)
        return memo[ref]

    for s in stages:  # stages are few (tens); the graph is acyclic by now
        of(s.ref)
    return memo


# --------------------------------------------------------------------------- stages rolloutlab does not model

#: Stage types that do something real but outside a rollout's traffic and health, with
#: what rolloutlab does instead. Any other unknown type gets a generic warning.
UNMODELLED: dict[str, str] = {
    "bake": "bakes a machine image; rolloutlab starts from a release that is already built",
    "bakeManifest": "renders a manifest (Helm/Kustomize); rolloutlab starts from a release that is already built",
    "findImage": "looks up an image; rolloutlab starts from a release that is already built",
    "findImageFromTags": "looks up an image; rolloutlab starts from a release that is already built",
    "findArtifactFromExecution": "looks up an artifact of an earlier run; not part of the rollout",
    "findArtifactsFromResource": "looks up an artifact of a running resource; not part of the rollout",
    "upsertImageTags": "tags an image; not part of the rollout",
    "jenkins": "runs a Jenkins job; its result is not modelled (the rollout goes on as if it passed)",
    "travis": "runs a Travis job; its result is not modelled (the rollout goes on as if it passed)",
    "wercker": "runs a Wercker job; its result is not modelled (the rollout goes on as if it passed)",
    "concourse": "runs a Concourse job; its result is not modelled (the rollout goes on as if it passed)",
    "gcb": "runs a Cloud Build; its result is not modelled (the rollout goes on as if it passed)",
    "script": "runs a script; its result is not modelled (the rollout goes on as if it passed)",
    "webhook": "calls a webhook; its result is not modelled (the rollout goes on as if it passed)",
    "preconfiguredJob": "runs a preconfigured job; its result is not modelled (the rollout goes on as if it passed)",
    "runJobManifest": "runs a Kubernetes Job; its result is not modelled (the rollout goes on as if it passed)",
    "checkPreconditions": "checks expressions or cluster sizes that only a running pipeline can evaluate; "
                          "the rollout goes on as if they held",
    "evaluateVariables": "sets variables that only a running pipeline can evaluate; not modelled",
    "pipeline": "starts another pipeline, which is not in this input; not modelled",
    "createApplication": "creates a Spinnaker application; not part of the rollout",
    "savePipeline": "saves a pipeline; not part of the rollout",
    "deployCloudFormation": "deploys a CloudFormation stack; not part of the rollout",
    "deployManifest": "deploys no workload (only objects such as ConfigMaps or Services); not part of the rollout",
    "deleteManifest": "deletes Kubernetes objects; not modelled",
    "patchManifest": "patches Kubernetes objects in place; not modelled",
    "scaleManifest": "scales a workload by hand; rolloutlab keeps the replica count the strategy asks for",
    "resizeServerGroup": "resizes a server group by hand; rolloutlab keeps the replica count the strategy asks for",
    "undoRolloutManifest": "rolls a workload back; rolloutlab rolls back by itself when the rollout fails",
    "rollbackCluster": "rolls a cluster back; rolloutlab rolls back by itself when the rollout fails",
    "rollbackServerGroup": "rolls a server group back; rolloutlab rolls back by itself when the rollout fails",
}


def unmodelled_reason(kind: str) -> str:
    return UNMODELLED.get(kind, f"stage type {kind!r} is not modelled by rolloutlab; the rollout goes on without it")


__all__ = ["UNMODELLED", "PipelineReader", "Stage", "StageGraph", "read_graph", "read_parameters",
           "unmodelled_reason"]
