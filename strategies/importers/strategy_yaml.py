"""Writing a :class:`StrategySpec` back out as a strategy file people can read and edit.

The file looks like the bundled library files: Argo's camelCase names, durations as
``30s`` / ``5m``, defaults left out (``name`` and ``strategy`` always written, and every
metric's ``signal`` and ``interval``, which a reader should not have to look up), short
mappings such as ``pause: {duration: 1m}``, ``headerValue: {exact: internal}``, a managed
route's ``{name: shadow}`` or a route removal ``setMirrorRoute: {name: shadow}`` in flow
style. Importer warnings go first, as
a comment block, so they travel with the file.
"""

from __future__ import annotations

import textwrap
import typing
from collections.abc import Sequence
from enum import Enum
from typing import Any

import yaml
from pydantic import BaseModel, BeforeValidator
from pydantic.fields import FieldInfo

from rolloutlab.strategies.durations import format_duration, parse_duration
from rolloutlab.strategies.routes import ManagedRoute, StringMatch
from rolloutlab.strategies.spec import Metric, StrategySpec

_ALWAYS = {StrategySpec: {"name", "strategy"}, Metric: {"signal", "interval"}}
_FLOW_KEYS = {"pause", "setCanaryScale", "thresholds", "thresholdRange"}
_FLOW_MODELS = (StringMatch, ManagedRoute)  # one short field each
_ROUTE_KEYS = {"setHeaderRoute", "setMirrorRoute"}  # flow when they only remove a route (no match)


class _Flow(dict):
    """A mapping written in flow style: ``{duration: 1m}``."""


class _Dumper(yaml.SafeDumper):
    pass


def _represent_flow(dumper: yaml.SafeDumper, data: _Flow) -> yaml.Node:
    return dumper.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=True)


_Dumper.add_representer(_Flow, _represent_flow)


def _is_duration(info: FieldInfo) -> bool:
    def has_parser(metadata: Sequence[Any]) -> bool:
        return any(isinstance(m, BeforeValidator) and m.func is parse_duration for m in metadata)

    if has_parser(info.metadata):
        return True
    return any(
        typing.get_origin(arg) is typing.Annotated and has_parser(getattr(arg, "__metadata__", ()))
        for arg in typing.get_args(info.annotation)
    )


def _duration_text(seconds: float) -> str | int | float:
    """``"5m"`` when that spelling reads back as exactly ``seconds``, else the number itself."""
    try:
        text = format_duration(seconds)
        if parse_duration(text) == seconds:
            return text
    except (ValueError, OverflowError):
        pass
    return _plain(seconds)


def _plain(value: Any) -> Any:
    if isinstance(value, _FLOW_MODELS):
        return _Flow(_model(value))
    if isinstance(value, BaseModel):
        return _model(value)
    if isinstance(value, dict):  # a mapping of models (a mirror match's headers); other data as it is
        return {k: _plain(v) if isinstance(v, BaseModel) else v for k, v in value.items()}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _model(model: BaseModel) -> dict:
    out: dict[str, Any] = {}
    always = _ALWAYS.get(type(model), set())
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        default = info.get_default(call_default_factory=True)
        if name not in always and value == default:
            continue
        key = info.alias or name
        if value is not None and _is_duration(info):
            out[key] = _duration_text(value)
        else:
            out[key] = _plain(value)
        if isinstance(out[key], dict) and (key in _FLOW_KEYS or (key in _ROUTE_KEYS and "match" not in out[key])):
            out[key] = _Flow(out[key])
    return out


def _templates_flow(data: Any) -> Any:
    """``templates: [{templateName: x}]`` entries in flow style, everywhere they occur."""
    if isinstance(data, dict):
        for key, value in data.items():
            if key == "templates" and isinstance(value, list):
                data[key] = [_Flow(v) if isinstance(v, dict) else v for v in value]
            else:
                _templates_flow(value)
    elif isinstance(data, list):
        for item in data:
            _templates_flow(item)
    return data


def _comment(warnings: Sequence[str]) -> str:
    if not warnings:
        return ""
    lines = [f"# Imported with {len(warnings)} warning{'s' if len(warnings) != 1 else ''}: "
             "check these before trusting the strategy."]
    for warning in warnings:
        # a comment must stay one YAML comment line: no line breaks, no characters YAML refuses
        text = "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii")
                       for ch in " ".join(str(warning).split()))
        wrapped = textwrap.wrap(text, width=96) or [""]
        lines.append(f"# - {wrapped[0]}")
        lines += [f"#   {more}" for more in wrapped[1:]]
    return "\n".join(lines) + "\n"


def dump_strategy_yaml(spec: StrategySpec, warnings: Sequence[str] = ()) -> str:
    """Our strategy YAML for ``spec``, with ``warnings`` as a leading comment block."""
    data = _templates_flow(_model(spec))
    body = yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True, width=100)
    return _comment(warnings) + body
