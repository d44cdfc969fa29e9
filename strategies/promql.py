"""Query templates filled in as Argo Rollouts and Flagger fill them, before a query runs.

A metric's ``query`` (strategies.analysis_spec ``Metric.query``) is kept as its author wrote
it; this module turns it into the PromQL sent to Prometheus. Two vocabularies, each as its
project resolves it:

- **Argo Rollouts** ``{{args.NAME}}`` (argoproj/argo-rollouts ``utils/analysis/helpers.go``
  ``ResolveArgs`` → ``utils/template/template.go``: ``{{`` … ``}}`` tags, the tag trimmed,
  ``args.`` followed by the argument's name; an argument without a value is the error
  "failed to resolve {{args.NAME}}").
- **Flagger** ``{{ target }}``, ``{{ namespace }}``, ``{{ name }}``, ``{{ service }}``,
  ``{{ ingress }}``, ``{{ interval }}`` and ``{{ variables.NAME }}`` (fluxcd/flagger
  ``pkg/metrics/observers/render.go`` ``RenderQuery`` runs the template with the functions
  of ``MetricTemplateModel.TemplateFunctions``, ``pkg/apis/flagger/v1beta1/metric.go``;
  ``variables`` are the canary's ``templateVariables``).

Both read values from one ``args`` mapping (Argo's ``args`` and Flagger's
``templateVariables`` are the same idea: named strings the template reads) and the
``QueryContext`` of the run. Anything else between ``{{`` and ``}}`` is refused with the
placeholder named: a query is never sent half filled. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from rolloutlab.strategies.durations import format_duration

_TAG = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_ARG = re.compile(r"^args\.([A-Za-z0-9_.\-]+)$")
_VARIABLE = re.compile(r"^\.?variables\.([A-Za-z0-9_\-]+)$")
_FLAGGER_NAMES = ("target", "namespace", "name", "service", "ingress", "interval")


class QueryTemplateError(ValueError):
    """A query template with a placeholder that has no value, or that neither Argo nor
    Flagger defines; the message names the placeholder."""


@dataclass(frozen=True)
class QueryContext:
    """What Flagger fills in from the canary being analysed (``MetricTemplateModel``).

    ``interval`` is a Prometheus duration (``1m``, ``2500ms``): the metric's interval, which
    a live run gives on the wall clock (a scenario minute at time scale 20 is ``3s``).
    ``None`` fields are unknown here, and a template that reads one is refused."""

    target: str | None = None  # the workload (Flagger: canary.spec.targetRef.name)
    namespace: str | None = None
    name: str | None = None  # the canary object's own name
    service: str | None = None
    ingress: str | None = None
    interval: str | None = None


def go_duration(seconds: float) -> str:
    """A duration Go's ``time.ParseDuration`` and Prometheus read (``2m``, ``1m30s``, ``2500ms``)."""
    if seconds == int(seconds):
        return format_duration(seconds)
    # whole milliseconds: Prometheus reads no fraction in a range ([10.48s] is a syntax
    # error), and a measurement interval finer than a millisecond means nothing
    return f"{round(seconds * 1000.0)}ms"


def placeholders(template: str) -> tuple[str, ...]:
    """The tags of ``template`` as written between ``{{`` and ``}}``, trimmed, in order."""
    return tuple(m.group(1).strip() for m in _TAG.finditer(template))


def render_query(template: str, args: Mapping[str, str] | None = None,
                 context: QueryContext | None = None) -> str:
    """``template`` with every ``{{ … }}`` replaced; raises :class:`QueryTemplateError`.

    >>> render_query('rate(x{app="{{args.app}}"}[{{ interval }}])', {"app": "web"}, QueryContext(interval="30s"))
    'rate(x{app="web"}[30s])'
    """
    args = args or {}
    context = context or QueryContext()

    def fill(match: re.Match) -> str:
        tag = match.group(1).strip()
        value = _value(tag, args, context)
        if value is None:
            raise QueryTemplateError(_why_unknown(tag, args, context))
        return value

    return _TAG.sub(fill, template)


def fill_args(template: str, args: Mapping[str, str]) -> str:
    """Only the ``{{args.NAME}}`` tags with a value in ``args`` replaced, everything else
    left as written (an export to Flagger, which has no Argo args)."""
    def fill(match: re.Match) -> str:
        arg = _ARG.match(match.group(1).strip())
        return args.get(arg.group(1), match.group(0)) if arg else match.group(0)

    return _TAG.sub(fill, template)


def reads_variable(template: str, name: str) -> bool:
    """Whether ``template`` reads Flagger's ``{{ variables.NAME }}``."""
    return any((m := _VARIABLE.match(tag)) and m.group(1) == name for tag in placeholders(template))


def check_template(template: str, args: Mapping[str, str] | None = None) -> None:
    """Refuse a placeholder no run can fill: an ``args.NAME`` / ``variables.NAME`` without a
    value in ``args``, or a name neither project defines (the context's fields are filled
    at run time, so any of them is accepted here)."""
    args = args or {}
    full = QueryContext(**{name: "x" for name in _FLAGGER_NAMES})
    for tag in placeholders(template):
        if _value(tag, args, full) is None:
            raise QueryTemplateError(_why_unknown(tag, args, full))


def _value(tag: str, args: Mapping[str, str], context: QueryContext) -> str | None:
    match = _ARG.match(tag) or _VARIABLE.match(tag)
    if match:
        return args.get(match.group(1))
    name = tag.lstrip(".")  # Go templates also write {{ .target }}-style fields
    if name in _FLAGGER_NAMES:
        return getattr(context, name)
    return None


def _why_unknown(tag: str, args: Mapping[str, str], context: QueryContext) -> str:
    match = _ARG.match(tag) or _VARIABLE.match(tag)
    known = ", ".join(sorted(args)) or "none"
    if match:
        return (f"failed to resolve {{{{{tag}}}}}: no value for {match.group(1)!r} (the metric's args: {known})")
    name = tag.lstrip(".")
    if name in _FLAGGER_NAMES:
        return f"failed to resolve {{{{ {tag} }}}}: this run has no {name} to fill in"
    return (f"unknown placeholder {{{{ {tag} }}}}: write {{{{args.NAME}}}} (Argo Rollouts) or one of "
            f"{', '.join(f'{{{{ {n} }}}}' for n in _FLAGGER_NAMES)}, {{{{ variables.NAME }}}} (Flagger)")


__all__ = ["QueryContext", "QueryTemplateError", "check_template", "fill_args", "go_duration", "placeholders", "reads_variable", "render_query"]
