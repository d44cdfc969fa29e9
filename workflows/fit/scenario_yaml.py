"""The fitted scenario as YAML, every number with a comment saying where it came from.

The scenario starts from a base (``standard-month`` unless told otherwise: a log says
nothing about replicas, pod start times or alert rules), and the fitted parameters
replace the base's fields they measure. Above each section, a comment names each field the
data set (its estimate, its 95% interval, the data and the method) or refused (the reason,
and that the value kept is the base's); a section the data did not touch says it is the
base's. The text is loaded with the scenario loader before it is written: a file ``fit``
writes is one ``compare`` can run.
"""

from __future__ import annotations

import copy
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rolloutlab.errors import InputError
from rolloutlab.scenarios.schema.scenario import Scenario, load_scenario
from rolloutlab.workflows.fit.parameters import FittedParameter

HISTORY_DAYS = 30
"""Days each simulated history of the fitted world plays: a month, DORA's own window and
``standard-month``'s; rates are per day, so the log's own span does not matter here, and
``compare`` plays one history per run."""
SECTION_OF = {"service": "services"}
"""Keys starting ``service.`` set the service under test, in the ``services`` list."""


@dataclass(frozen=True)
class FitSources:
    """What the scenario was fitted from, for its header."""

    log: str
    service: str
    deployments: int
    days: float
    base_name: str
    seed: int
    prometheus: str | None = None


def build_scenario(base: dict[str, Any], parameters: list[FittedParameter], sources: FitSources) -> dict[str, Any]:
    """The base scenario's data with every fitted parameter's field replaced."""
    data = copy.deepcopy(base)
    data["name"] = "fitted-" + (re.sub(r"[^a-z0-9-]+", "-", sources.service.lower()).strip("-") or "service")
    data["description"] = (f"The world of service {sources.service!r} as its deployment log tells it "
                           f"({sources.deployments} deployments over {sources.days:.1f} days), fitted by "
                           f"rolloutlab fit; what the data does not cover is {sources.base_name}'s.")
    history = data.setdefault("history", {})
    history["days"] = HISTORY_DAYS
    for parameter in parameters:
        if parameter.key is None or not parameter.fitted:
            continue
        _set(data, parameter.key, parameter.value)
        if parameter.key == "release.defect_probability":
            history["defect_probability"] = parameter.value
        if parameter.key == "response.response_time":
            data.setdefault("response", {})["rollback_duration"] = 0
    return data


def render_scenario(data: dict[str, Any], parameters: list[FittedParameter], sources: FitSources) -> str:
    """The YAML text: a header, then each section under its comments."""
    lines = [
        f"# Fitted by `rolloutlab fit` from {Path(sources.log).name}: service {sources.service!r}, "
        f"{sources.deployments} deployments over {sources.days:.1f} days"
        + (f", and Prometheus at {sources.prometheus}" if sources.prometheus else "") + ".",
        "# Intervals (in brackets) are 95%. A parameter the data cannot support is refused, never invented: its field",
        f"# keeps the base scenario's ({sources.base_name}) value, and its comment says so. Bootstrap seed "
        f"{sources.seed}.",
    ]
    for parameter in parameters:
        if parameter.key is None:
            lines += [f"#   {line}" for line in _comment(parameter)]
    lines.append("")
    for section, value in data.items():
        comments = [line for p in parameters if p.key is not None and _section(p.key) == section
                    for line in _comment(p)]
        if section == "history":
            comments.append(f"history.days: {HISTORY_DAYS}, how long each simulated history plays (DORA's month; "
                            f"the log covered {sources.days:.1f} days)")
        if not comments and section not in ("name", "description"):
            comments = [f"{section}: the base scenario's ({sources.base_name}); the data does not say"]
        lines += [f"# {line}" for line in comments]
        # leaf mappings flow ({kind: lognormal, median: 600, sigma: 0.86}); a scalar section stays "key: value"
        flow = None if isinstance(value, (dict, list)) and value else False
        lines.append(yaml.safe_dump({section: value}, sort_keys=False, default_flow_style=flow, width=100,
                                    allow_unicode=True).rstrip())
        lines.append("")
    return "\n".join(lines)


def write_scenario(text: str, out: Path) -> Scenario:
    """Write the text to ``out`` once the scenario loader has accepted it; the loaded
    scenario is returned. Written beside ``out`` first, so strategy files named relative
    to it resolve as they will."""
    out = Path(out)
    if out.parent and not out.parent.exists():
        raise InputError(str(out), "the folder for the fitted scenario does not exist")
    trial = out.with_name(f".{out.name}.{os.getpid()}.tmp.yaml")
    trial.write_text(text, encoding="utf-8")
    try:
        scenario = load_scenario(trial)
    except InputError as exc:
        trial.unlink(missing_ok=True)
        raise InputError(str(out), f"the fitted scenario does not load ({exc}); the data gives a world "
                                   "the schema refuses") from None
    os.replace(trial, out)
    return scenario


def _section(key: str) -> str:
    head = key.split(".", 1)[0]
    return SECTION_OF.get(head, head)


def _set(data: dict[str, Any], key: str, value: Any) -> None:
    head, *rest = key.split(".")
    if head == "service":
        services = data.get("services") or [{"name": "app", "under_test": True}]
        data["services"] = services
        target = next((s for s in services if s.get("under_test")), services[0])
    else:
        target = data.setdefault(head, {})
    for part in rest[:-1]:
        target = target.setdefault(part, {})
    target[rest[-1]] = value


def _comment(parameter: FittedParameter) -> list[str]:
    name = parameter.key or parameter.title
    if not parameter.fitted:
        kept = " The value below is the base scenario's, not from the data." if parameter.key else ""
        return [f"{name}: REFUSED ({parameter.refused}); from {parameter.source}.{kept}"]
    text = f"{name} = {'; '.join(parameter.describe_lines())}"
    lines = [text, f"  from {parameter.source}; {parameter.method}"]
    lines += [f"  ({note})" for note in parameter.notes]
    return lines
