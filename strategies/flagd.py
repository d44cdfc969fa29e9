"""flagd flag-definition files: reading them with precise errors, and rendering a flag's exposure.

A ``featureFlag`` strategy turns its flag on user by user by rewriting the flag's
targeting in a flagd flag-definition file (the format of flagd and of OpenFeature's flagd
providers, https://flagd.dev/reference/flag-definitions/ ; JSON schema
https://flagd.dev/schema/v0/flags.json)::

    {
      "$schema": "https://flagd.dev/schema/v0/flags.json",
      "flags": {
        "new-checkout": {
          "state": "ENABLED",
          "variants": {"on": true, "off": false},
          "defaultVariant": "off"
        }
      }
    }

:func:`load_flag_file` reads such a file (JSON, or YAML: flagd reads both) and refuses
what flagd would refuse, naming the file, the line and the field; :func:`check_flag` checks
that the strategy's flag can be turned on and off; :func:`render_flags` writes an exposure
(a percentage of users, sticky per user through flagd's ``fractional``, plus users whose
request headers match) into a copy of the file. Nothing here evaluates a flag: the real
OpenFeature SDK and flagd provider do that (``live/demo_service.py``).

No JSON schema of the format ships inside ``openfeature-provider-flagd`` (0.6), so the
schema is followed with pydantic models below, and with the provider's own stricter rules
where it has them (unknown keys in a flag are refused: its ``Flag`` takes no others).
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, JsonValue, field_validator, model_validator

from rolloutlab.errors import FieldError, InputError
from rolloutlab.strategies.routes import HeaderMatch
from rolloutlab.strategies.spec_base import SpecModel
from rolloutlab.strategies.yaml_input import (
    YamlDocument,
    parse_yaml_documents,
    parse_yaml_file,
    read_input_text,
    validate_document,
)


def _metadata_value(value: Any) -> Any:
    if not isinstance(value, (str, bool, int, float)):
        raise ValueError(f"a metadata value is a string, number or boolean, got {_variant_kind(value)}")
    return value


MetadataValue = Annotated[Any, BeforeValidator(_metadata_value)]
"""flagd metadata values: string, number or boolean (flags.json, ``#/definitions/metadata``)."""
_VARIANT_KINDS = ((bool, "boolean"), ((int, float), "number"), (str, "string"), (dict, "object"))


def _variant_kind(value: Any) -> str:
    """Which of flagd's four typed flags a variant value belongs to (a list belongs to none)."""
    for types, kind in _VARIANT_KINDS:  # bool first: a bool is an int to Python
        if isinstance(value, types):
            return kind
    return type(value).__name__


class FlagDefinition(SpecModel):
    """One flag (flags.json ``#/definitions/flag`` and its typed variants)."""

    state: str
    variants: dict[str, JsonValue] = Field(min_length=1)
    default_variant: str | None = None  # null: the code's default value (flagd's schema)
    targeting: dict[str, JsonValue] | None = None  # JSON Logic; {} is no targeting
    metadata: dict[str, MetadataValue] | None = None

    @field_validator("variants", mode="before")
    @classmethod
    def _names(cls, value: Any) -> Any:
        for name in value if isinstance(value, dict) else ():
            if not isinstance(name, str):
                # YAML 1.1 reads unquoted on/off/yes/no as booleans: `on: true` names no variant "on"
                raise FieldError((name,), f"variant name {json.dumps(name)} is not text (YAML 1.1 reads unquoted "
                                          f"on/off/yes/no as true/false): quote it, e.g. \"on\": true")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "FlagDefinition":
        if self.state not in ("ENABLED", "DISABLED"):
            raise FieldError(("state",), f"state must be ENABLED or DISABLED, got {self.state!r}")
        for name in self.variants:
            if not name:
                raise FieldError(("variants", name), "a variant name must not be empty")
        kinds = [(name, _variant_kind(v)) for name, v in self.variants.items()]
        first_name, first_kind = kinds[0]
        for name, kind in kinds:
            if kind not in ("boolean", "number", "string", "object"):
                raise FieldError(("variants", name), f"variant {name!r} is a {kind}: flagd's variants are booleans, "
                                                     f"numbers, strings or objects")
            if kind != first_kind:
                raise FieldError(("variants", name),
                                 f"variant {name!r} is a {kind} but {first_name!r} is a {first_kind}: a flagd flag's "
                                 f"variants are all booleans, all numbers, all strings or all objects")
        if self.default_variant is not None and self.default_variant not in self.variants:
            raise FieldError(("defaultVariant",), f"defaultVariant {self.default_variant!r} is not one of the "
                                                  f"variants ({', '.join(self.variants)})")
        return self


class FlagFile(SpecModel):
    """A flag-definition file (flags.json ``#/definitions/base``); other top-level keys are refused."""

    schema_: str | None = Field(None, alias="$schema")
    flags: dict[str, FlagDefinition]
    evaluators: dict[str, dict[str, JsonValue]] = Field(default_factory=dict, alias="$evaluators")
    metadata: dict[str, MetadataValue] | None = None  # the flag set's metadata

    @model_validator(mode="after")
    def _references(self) -> "FlagFile":
        for key in self.flags:
            if not key:
                raise FieldError(("flags", key), "a flag key must not be empty")
        for name in self.evaluators:
            if not name:
                raise FieldError(("$evaluators", name), "an evaluator name must not be empty")
        for key, flag in self.flags.items():
            for path, name in _refs(flag.targeting, ()):
                if name not in self.evaluators:
                    known = ", ".join(self.evaluators) or "none are defined"
                    raise FieldError(("flags", key, "targeting", *path, "$ref"),
                                     f"no evaluator {name!r} in $evaluators ({known})")
        return self


def _refs(node: Any, path: tuple[str | int, ...]) -> list[tuple[tuple[str | int, ...], Any]]:
    """Every ``{"$ref": name}`` in a JSON Logic rule, with its path (flagd substitutes them
    from ``$evaluators`` before it reads the rule)."""
    if isinstance(node, dict):
        if set(node) == {"$ref"}:
            return [(path, node["$ref"])]
        return [r for k, v in node.items() for r in _refs(v, (*path, k))]
    if isinstance(node, list):
        return [r for i, v in enumerate(node) for r in _refs(v, (*path, i))]
    return []


# --------------------------------------------------------------------------- reading


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"duplicate key {key!r}")
        seen[key] = value
    return seen


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _json_document(text: str, file: str) -> YamlDocument:
    """Strict JSON for the data; the lines of its keys from YAML's composer (valid JSON is
    YAML once its tabs, which JSON allows only between tokens, are spaces)."""
    try:
        data = json.loads(text, object_pairs_hook=_refuse_duplicates, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise InputError(file, f"not valid JSON: {exc.msg}", line=exc.lineno) from None
    except RecursionError:
        raise InputError(file, "JSON is nested too deeply") from None
    except ValueError as exc:  # a duplicate key or NaN: YAML's reading of the text finds its line
        parse_yaml_documents(text.replace("\t", " "), file)
        raise InputError(file, f"not valid JSON: {exc}") from None
    try:
        lines = parse_yaml_documents(text.replace("\t", " "), file)[0].lines
    except InputError:
        lines = {(): 1}  # JSON that YAML 1.1 reads otherwise: errors name the field, not the line
    return YamlDocument(data=data, file=file, start_line=1, lines=lines)


def read_flag_document(path: str | os.PathLike[str]) -> YamlDocument:
    """A flag-definition file, validated, with the line of every field (for callers that
    check more and must point into the file, as :func:`check_flag`'s errors do).

    ``.json`` files are JSON, ``.yaml``/``.yml`` files YAML; any other name is JSON when it
    starts with ``{``. Every mistake is an :class:`InputError` naming file, line and field.
    """
    file = os.fspath(path)
    suffix = os.path.splitext(file)[1].lower()
    if suffix in (".yaml", ".yml"):
        documents = parse_yaml_file(file)
        if len(documents) != 1:
            raise InputError(file, f"expected exactly one YAML document, found {len(documents)}",
                             line=documents[1].start_line)
        doc = documents[0]
    else:
        text = read_input_text(file, "flag file")
        if suffix == ".json" or text.lstrip().startswith("{"):
            doc = _json_document(text, file)
        else:
            doc = parse_yaml_documents(text, file)[0]
    if not isinstance(doc.data, dict):
        raise InputError(file, "a flagd flag file is an object with a `flags` object", line=doc.start_line)
    validate_document(doc, FlagFile)
    return doc


def load_flag_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The content of a flagd flag-definition file (JSON or YAML), validated as flagd's
    format; bad input raises :class:`InputError` with the file, line and field path."""
    return read_flag_document(path).data


# --------------------------------------------------------------------------- the strategy's flag


def check_flag(flags: Mapping[str, Any], flag_key: str, on_variant: str, off_variant: str | None) -> str:
    """Whether a strategy can turn ``flag_key`` of the file content ``flags`` on and off:
    the flag exists, is ENABLED, and has both variants. Returns the off variant
    (``off_variant``, or the flag's defaultVariant when it is None).

    Raises :class:`FieldError` whose path is inside the flag file (``flags.<key>.state``)."""
    defined = flags.get("flags")
    if not isinstance(defined, Mapping) or flag_key not in defined:
        known = ", ".join(defined) if isinstance(defined, Mapping) and defined else "none"
        raise FieldError(("flags",), f"no flag {flag_key!r} (flagKey) in the flag file (flags: {known})")
    flag = defined[flag_key]
    if not isinstance(flag, Mapping):
        raise FieldError(("flags", flag_key), f"flag {flag_key!r} is not an object")
    if flag.get("state") != "ENABLED":
        raise FieldError(("flags", flag_key, "state"),
                         f"flag {flag_key!r} is {flag.get('state')}: a disabled flag always answers the code's "
                         f"default, so no exposure would change anything; set state: ENABLED")
    variants = flag.get("variants") or {}
    if off_variant is None:
        off_variant = flag.get("defaultVariant")
        if off_variant is None:
            raise FieldError(("flags", flag_key, "defaultVariant"),
                             f"flag {flag_key!r} has no defaultVariant: give the strategy's offVariant")
    for field, name in (("onVariant", on_variant), ("offVariant", off_variant)):
        if name not in variants:
            raise FieldError(("flags", flag_key, "variants"),
                             f"the strategy's {field} {name!r} is not a variant of flag {flag_key!r} "
                             f"(variants: {', '.join(variants)})")
    if on_variant == off_variant:
        raise FieldError(("flags", flag_key, "variants"),
                         f"onVariant and offVariant are both {on_variant!r}: turning the flag on would change nothing")
    return off_variant


def _header_condition(match: HeaderMatch) -> dict[str, Any]:
    """JSON Logic for one header match, on the evaluation-context attribute of the header's
    lower-case name (the demo service puts every request header there)."""
    if "." in match.header_name:
        # JSON Logic's var reads "a.b" as attribute b inside attribute a
        raise ValueError(f"header {match.header_name!r}: flagd targeting cannot name an attribute with a dot")
    attribute = {"var": match.header_name}
    value = match.header_value
    if value.exact is not None:
        return {"==": [attribute, value.exact]}
    if value.prefix is not None:
        return {"starts_with": [attribute, value.prefix]}
    raise ValueError(f"header {match.header_name!r}: flagd targeting has exact and prefix matches, no regex")


def render_flags(flags: Mapping[str, Any], flag_key: str, percentage: int, match: Sequence[HeaderMatch],
                 on_variant: str, off_variant: str) -> dict[str, Any]:
    """A copy of the flag file content ``flags`` in which ``flag_key`` answers ``on_variant``
    to ``percentage`` % of users and to every user whose headers match an entry of
    ``match``, and ``off_variant`` to everyone else. The other flags are untouched; the
    flag's own targeting is replaced.

    The percentage is flagd's ``fractional`` with the shorthand bucketing (a hash of the
    flag key and the evaluation's targetingKey, i.e. the user id): a user always lands on
    the same side, and raising the percentage only adds users (bucket < percentage). A
    request without a targetingKey is not split but answered ``off_variant`` (flagd's
    provider would log an error for each). The defaultVariant becomes ``off_variant``.
    0 % with no match and 100 % need no targeting: the defaultVariant answers everyone
    (``off_variant``, resp. ``on_variant``).

        render_flags(f, "new-checkout", 10, [internal], "on", "off")["flags"]["new-checkout"]
        == {..., "defaultVariant": "off",
            "targeting": {"if": [{"==": [{"var": "x-user-group"}, "internal"]}, "on",
                                 {"var": "targetingKey"}, {"fractional": [["on", 10], ["off", 90]]},
                                 "off"]}}
    """
    if not 0 <= percentage <= 100 or isinstance(percentage, bool):
        raise ValueError(f"an exposure is 0..100 percent, got {percentage!r}")
    check_flag(flags, flag_key, on_variant, off_variant)
    out = copy.deepcopy(dict(flags))
    flag = out["flags"][flag_key] = dict(out["flags"][flag_key])
    flag.pop("targeting", None)
    conditions = [_header_condition(m) for m in match]
    flag["defaultVariant"] = on_variant if percentage == 100 else off_variant
    if percentage == 100 or (percentage == 0 and not conditions):
        return out
    rule: list[Any] = []  # JSON Logic's if: condition, answer, condition, answer, ..., otherwise
    if conditions:
        rule += [conditions[0] if len(conditions) == 1 else {"or": conditions}, on_variant]
    if percentage > 0:
        rule += [{"var": "targetingKey"}, {"fractional": [[on_variant, percentage], [off_variant, 100 - percentage]]}]
    flag["targeting"] = {"if": [*rule, off_variant]}
    return out


__all__ = ["FlagDefinition", "FlagFile", "check_flag", "load_flag_file", "read_flag_document", "render_flags"]
