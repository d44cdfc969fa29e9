"""Managed routes: header routes and mirror routes of a canary, with Argo Rollouts' semantics.

A canary with a traffic router may add routes beside its weight (Argo Rollouts'
``setHeaderRoute`` and ``setMirrorRoute`` steps, docs/features/traffic-management):

    trafficRouting: router
    managedRoutes:                # precedence order; every route a step names is declared here
      - name: internal-users
      - name: shadow
    steps:
      - setCanaryScale: {replicas: 1}
      - setHeaderRoute:           # users whose request matches go to the canary, all of them
          name: internal-users
          match:
            - headerName: x-user-group
              headerValue: {exact: internal}
      - setMirrorRoute:           # a copy of 50% of the matching requests goes to the canary;
          name: shadow            # its answer is thrown away, the user gets the stable's
          percentage: 50
          match:
            - method: {exact: GET}
      - setMirrorRoute: {name: shadow}     # no match: the route is removed

A cookie route is a header route on ``cookie`` (``regex: ".*canary=always.*"``), as in
Argo's and Flagger's docs. Routes are removed when the rollout is promoted or aborted
(Argo removes managed routes at both). A request takes the first route, in
``managedRoutes`` order, whose match it satisfies: a header route sends it to the canary;
a mirror route splits it by weight as usual and copies ``percentage`` of such requests to
the canary. A request no route matches is split by weight.

Everything here is pure data and matching; :func:`route_request` is what the simulator
and the routers' configurations agree on.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from pydantic import Field, field_validator, model_validator

from rolloutlab.errors import FieldError
from rolloutlab.strategies.spec_base import Count, SpecModel

_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an HTTP token (RFC 9110 §5.1)


class StringMatch(SpecModel):
    """Argo's StringMatch: exactly one of ``exact``, ``prefix``, ``regex`` (RE2 syntax
    there; Python's ``re`` here, which agrees on the expressions route docs use)."""

    exact: str | None = None
    prefix: str | None = None
    regex: str | None = None

    @model_validator(mode="after")
    def _one(self) -> "StringMatch":
        given = [k for k in ("exact", "prefix", "regex") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a string match takes exactly one of exact, prefix, regex")
        if self.regex is not None:
            try:
                re.compile(self.regex)
            except re.error as exc:
                raise FieldError(("regex",), f"regex {self.regex!r} does not compile: {exc}") from None
        return self

    def matches(self, value: str | None) -> bool:
        """Whether ``value`` (None: the header is absent) satisfies this match."""
        if value is None:
            return False
        if self.exact is not None:
            return value == self.exact
        if self.prefix is not None:
            return value.startswith(self.prefix)
        return _compiled(self.regex).fullmatch(value) is not None  # Envoy/Istio regexes match the whole value


@lru_cache(maxsize=256)
def _compiled(pattern: str | None) -> re.Pattern:
    return re.compile(pattern or "")


def _check_header_name(name: str) -> str:
    if not _HEADER_NAME.match(name):
        raise ValueError(f"{name!r} is not an HTTP header name")
    return name.lower()  # header names are case-insensitive; we compare them lower-cased


class HeaderMatch(SpecModel):
    """Argo's HeaderRoutingMatch: one header and how its value must look."""

    header_name: str = Field(min_length=1)
    header_value: StringMatch

    @field_validator("header_name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _check_header_name(value)


class RouteMatch(SpecModel):
    """Argo's RouteMatch of a mirror route: method, path and headers, all of those given."""

    method: StringMatch | None = None
    path: StringMatch | None = None
    headers: dict[str, StringMatch] | None = None

    @field_validator("headers")
    @classmethod
    def _names(cls, value: dict[str, StringMatch] | None) -> dict[str, StringMatch] | None:
        if value is None:
            return None
        return {_check_header_name(k): v for k, v in value.items()}

    @model_validator(mode="after")
    def _something(self) -> "RouteMatch":
        if self.method is None and self.path is None and not self.headers:
            raise ValueError("a match needs method, path or headers (an empty match would match nothing in Argo)")
        return self


class HeaderRoute(SpecModel):
    """``setHeaderRoute``: requests matching any entry of ``match`` go to the canary.
    Without ``match`` the route is removed."""

    name: str = Field(min_length=1)
    match: tuple[HeaderMatch, ...] | None = None

    @field_validator("match")
    @classmethod
    def _not_empty(cls, value: tuple[HeaderMatch, ...] | None) -> tuple[HeaderMatch, ...] | None:
        if value is not None and not value:
            raise ValueError("match is empty: give at least one header match, or leave match out to remove the route")
        return value


class MirrorRoute(SpecModel):
    """``setMirrorRoute``: ``percentage`` of the requests matching any entry of ``match``
    are copied to the canary. Without ``match`` the route is removed."""

    name: str = Field(min_length=1)
    percentage: Count = Field(100, ge=0, le=100)
    match: tuple[RouteMatch, ...] | None = None

    @field_validator("match")
    @classmethod
    def _not_empty(cls, value: tuple[RouteMatch, ...] | None) -> tuple[RouteMatch, ...] | None:
        if value is not None and not value:
            raise ValueError("match is empty: give at least one match, or leave match out to remove the route")
        return value


class ManagedRoute(SpecModel):
    """One entry of ``managedRoutes``: a route the rollout may add, in precedence order."""

    name: str = Field(min_length=1)


# --------------------------------------------------------------------------- requests


@dataclass(frozen=True, slots=True)
class RequestTraits:
    """What routing looks at in one request: its method, path and headers (lower-cased names)."""

    method: str = "GET"
    path: str = "/"
    headers: Mapping[str, str] = None  # type: ignore[assignment]

    def header(self, name: str) -> str | None:
        return (self.headers or {}).get(name.lower())


def header_matches(matches: Sequence[HeaderMatch], request: RequestTraits) -> bool:
    """Whether ``request`` satisfies any of ``matches`` (Argo ORs the entries)."""
    return any(m.header_value.matches(request.header(m.header_name)) for m in matches)


def route_match_holds(match: RouteMatch, request: RequestTraits) -> bool:
    """Whether ``request`` satisfies every part given in one ``RouteMatch``."""
    if match.method is not None and not match.method.matches(request.method):
        return False
    if match.path is not None and not match.path.matches(request.path):
        return False
    return all(m.matches(request.header(name)) for name, m in (match.headers or {}).items())


@dataclass(frozen=True, slots=True)
class Routing:
    """Where one kind of request goes: ``to_canary`` True sends all of them to the canary
    (a header route); otherwise they are split by weight. ``mirror`` is the share (0..1)
    of them copied to the canary."""

    to_canary: bool
    mirror: float


def route_request(routes: Sequence[HeaderRoute | MirrorRoute], request: RequestTraits) -> Routing:
    """The first route (in precedence order) whose match ``request`` satisfies decides."""
    for route in routes:
        if route.match is None:
            continue
        if isinstance(route, HeaderRoute):
            if header_matches(route.match, request):
                return Routing(True, 0.0)
        elif any(route_match_holds(m, request) for m in route.match):
            return Routing(False, route.percentage / 100.0)
    return Routing(False, 0.0)


__all__ = [
    "HeaderMatch", "HeaderRoute", "ManagedRoute", "MirrorRoute", "RequestTraits", "RouteMatch", "Routing",
    "StringMatch", "header_matches", "route_match_holds", "route_request",
]
