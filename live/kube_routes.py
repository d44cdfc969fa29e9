"""The HTTPRoute a routed canary owns on Kubernetes: weights, header routes, mirrors.

Gateway API (gateway.networking.k8s.io/v1, HTTPRoute) carries all three, as Argo
Rollouts' Gateway API plugin writes them: the last rule sends every request by weight to
the stable and canary Services; a header route is a rule before it, named after the
route, whose matches send requests to the canary alone; a mirror route is a rule with the
route's matches, the same weighted backends and a ``RequestMirror`` filter to the canary
with the route's ``percent``. Managed rules keep the strategy's ``managedRoutes`` order.

Gateway API matches headers exactly or by regular expression (a prefix becomes the
expression ``^<prefix>.*``) and methods exactly: a method matched by prefix or
expression cannot be written, and is refused with the reason. Pure functions on plain
dicts: ``live/kube.py`` reads the route, applies them, and writes it back.
"""

from __future__ import annotations

import re
from typing import Any

from rolloutlab.errors import KubeError
from rolloutlab.strategies.actions import RemoveRoute, SetHeaderRoute, SetMirrorRoute
from rolloutlab.strategies.routes import HeaderMatch, RouteMatch, StringMatch

Rule = dict[str, Any]


def weighted_backends(app: str, weight: int) -> list[dict[str, Any]]:
    """Both versions' Services with the canary at ``weight`` percent."""
    return [{"name": f"{app}-stable", "port": 80, "weight": 100 - weight},
            {"name": f"{app}-canary", "port": 80, "weight": weight}]


def set_weight(rules: list[Rule], app: str, weight: int) -> list[Rule]:
    """Every weighted rule (the default one and the mirrors') at ``weight``."""
    out = []
    for rule in rules:
        refs = rule.get("backendRefs", [])
        if len(refs) == 2:  # a header rule has the canary alone
            rule = {**rule, "backendRefs": weighted_backends(app, weight)}
        out.append(rule)
    return out


def current_weight(rules: list[Rule]) -> int:
    """The canary's weight on the default rule (the last)."""
    return next(r["weight"] for r in rules[-1]["backendRefs"] if r["name"].endswith("-canary"))


def apply_route(rules: list[Rule], app: str, action: SetHeaderRoute | SetMirrorRoute | RemoveRoute,
                order: list[str]) -> list[Rule]:
    """The rules with one managed route added, replaced or removed; managed rules in
    ``order`` (the strategy's managedRoutes), the default rule last."""
    managed = {r["name"]: r for r in rules[:-1] if r.get("name")}
    default = rules[-1]
    managed.pop(action.name, None)
    if isinstance(action, SetHeaderRoute):
        managed[action.name] = {"name": action.name, "matches": [_header_match(m) for m in action.match],
                                "backendRefs": [{"name": f"{app}-canary", "port": 80, "weight": 100}]}
    elif isinstance(action, SetMirrorRoute):
        managed[action.name] = {
            "name": action.name, "matches": [_route_match(m) for m in action.match],
            "backendRefs": weighted_backends(app, current_weight(rules)),
            "filters": [{"type": "RequestMirror", "requestMirror": {
                "backendRef": {"name": f"{app}-canary", "port": 80}, "percent": action.percentage}}],
        }
    ordered = [managed[name] for name in order if name in managed]
    return [*ordered, default]


def _string(field: str, match: StringMatch, *, allow_regex: bool = True) -> dict[str, str]:
    if match.exact is not None:
        return {"type": "Exact", "value": match.exact}
    if not allow_regex:
        raise KubeError(f"Gateway API matches {field} exactly only; this route matches it by "
                        f"{'prefix' if match.prefix is not None else 'regex'}")
    if match.prefix is not None:
        return {"type": "RegularExpression", "value": "^" + re.escape(match.prefix) + ".*"}
    return {"type": "RegularExpression", "value": match.regex or ""}


def _header_match(m: HeaderMatch) -> dict[str, Any]:
    return {"headers": [{"name": m.header_name, **_string("a header", m.header_value)}]}


def _route_match(m: RouteMatch) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if m.method is not None:
        out["method"] = _string("the method", m.method, allow_regex=False)["value"]
    if m.path is not None:
        path = m.path
        if path.prefix is not None:
            out["path"] = {"type": "PathPrefix", "value": path.prefix}
        else:
            out["path"] = _string("the path", path)
    if m.headers:
        out["headers"] = [{"name": name, **_string("a header", value)} for name, value in m.headers.items()]
    return out
