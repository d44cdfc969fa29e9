"""A canary's managed routes in HAProxy: the configuration's shape, fixed at start, and the
maps whose contents say which routes are in force, changed through the runtime API.

Argo's semantics (``strategies.routes``): a request takes the first route, in
``managedRoutes`` order, whose match it satisfies; a header route sends it to the canary,
a mirror route splits it by weight as usual and copies ``percentage`` of such requests to
the canary (the copying is nginx's, ``live.nginx``; the decision is HAProxy's, here).

What the generated configuration knows (``RouteTable``, from the strategy's steps at
``ensure``): each managed route's place in the precedence order, the header names its
``setHeaderRoute`` steps test, and for its ``setMirrorRoute`` steps how many match entries
(slots) they use at most and which fields (method, path, headers) any of them tests. What
it does not know is kept in maps, empty when a route is off::

    routes/r<i>.h<j>.<kind>.map       header route i, header j: the values that match
    routes/r<i>.e<k>.f<l>.<kind>.map  mirror route i, entry k, field l: the values that match
    routes/any.map                    r<i>.e<k>.f<l> -> 1: that entry does not test field l
    routes/mirror.map                 m<i> -> the percentage of route i's requests copied

``<kind>`` is how a value is compared: ``str`` (exact, ``map_str``), ``beg`` (prefix,
``map_beg``) or ``reg`` (regex, ``map_reg``, anchored at both ends: Envoy and Istio match
the whole value). Header values are read with ``req.fhdr`` (the whole value, commas
included: a cookie is one value). An entry of a mirror match holds when each of its fields
holds (``any`` or a matching value); a route holds when any entry does. HAProxy's
conditions have no parentheses, so "any or value" is one ACL defined several times (ACLs
of one name are OR-ed) and an entry is the AND of its fields' ACLs on one rule line.

Every frontend that routes computes ``txn.route``: ``h<i>`` or ``m<i>`` for the first
route (precedence order) that holds, nothing when none does. ``fe_user`` sends ``h*`` to
``be_canary``; ``fe_shadow`` (the mirrored copies) answers 204 at once unless the route is
``m<i>`` and a ``rand(100)`` draw falls below its percentage, and sends the rest to
``be_canary``. Nothing here reloads anything: a route changes by replacing its maps'
contents (``prepare map`` / ``add map`` / ``commit map``: each map changes atomically).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from rolloutlab.errors import RouterError
from rolloutlab.strategies.actions import SetHeaderRoute, SetMirrorRoute
from rolloutlab.strategies.routes import HeaderRoute, MirrorRoute, RouteMatch, StringMatch
from rolloutlab.strategies.spec import CanaryStrategy

ROUTES_DIR = "routes"
ANY_MAP = "any.map"
MIRROR_MAP = "mirror.map"
KINDS = ("str", "beg", "reg")  # exact, prefix, regex: map_str, map_beg, map_reg
# Header names the generated configuration can hold without quoting (every real one does)
_CONFIG_SAFE_HEADER = re.compile(r"^[A-Za-z0-9_.-]+$")

RouteAction = SetHeaderRoute | SetMirrorRoute


# --------------------------------------------------------------------------- the shape


@dataclass(frozen=True)
class RouteShape:
    """What the configuration holds for one managed route (see the module docstring).
    ``mirror_fields`` are ``method``, ``path`` or a lower-cased header name."""

    index: int
    name: str
    headers: tuple[str, ...] = ()
    mirror_slots: int = 0
    mirror_fields: tuple[str, ...] = ()

    def header_map(self, j: int, kind: str) -> str:
        return f"r{self.index}.h{j}.{kind}.map"

    def field_map(self, k: int, field: int, kind: str) -> str:
        return f"r{self.index}.e{k}.f{field}.{kind}.map"

    def any_key(self, k: int, field: int) -> str:
        return f"r{self.index}.e{k}.f{field}"

    def map_names(self) -> list[str]:
        names = [self.header_map(j, kind) for j in range(len(self.headers)) for kind in KINDS]
        names += [self.field_map(k, f, kind) for k in range(self.mirror_slots)
                  for f in range(len(self.mirror_fields)) for kind in KINDS]
        return names


@dataclass(frozen=True)
class RouteTable:
    """The managed routes in precedence order, as the generated configuration holds them."""

    routes: tuple[RouteShape, ...]

    @property
    def mirrors(self) -> bool:
        """Whether any route may mirror (then nginx copies requests and fe_shadow exists)."""
        return any(r.mirror_slots for r in self.routes)

    def shape(self, name: str) -> RouteShape:
        for route in self.routes:
            if route.name == name:
                return route
        raise RouterError(f"route {name!r} is not a managed route of this run "
                          f"({', '.join(r.name for r in self.routes) or 'none'})")

    def map_names(self) -> list[str]:
        return [name for r in self.routes for name in r.map_names()] + [ANY_MAP, MIRROR_MAP]


def compute_route_table(canary: CanaryStrategy) -> RouteTable | None:
    """The shape of every managed route, from the steps that set it; None without routes."""
    if not canary.managed_routes:
        return None
    shapes = []
    for index, managed in enumerate(canary.managed_routes):
        headers: list[str] = []
        slots, fields = 0, []
        for step in canary.steps:
            route = step.route
            if route is None or route.name != managed.name or route.match is None:
                continue
            if isinstance(route, HeaderRoute):
                headers += [m.header_name for m in route.match if m.header_name not in headers]
            else:
                slots = max(slots, len(route.match))
                fields += [f for f in _fields_of(route) if f not in fields]
        for name in headers + [f for f in fields if f not in ("method", "path")]:
            if not _CONFIG_SAFE_HEADER.match(name):
                raise RouterError(f"route {managed.name!r} tests header {name!r}: the local router matches "
                                  "header names of letters, digits, '-', '_' and '.' only")
        shapes.append(RouteShape(index, managed.name, tuple(headers), slots, tuple(fields)))
    return RouteTable(tuple(shapes))


def _fields_of(route: MirrorRoute) -> list[str]:
    out: list[str] = []
    for entry in route.match or ():
        for field, _ in _entry_fields(entry):
            if field not in out:
                out.append(field)
    return out


def _entry_fields(entry: RouteMatch) -> list[tuple[str, StringMatch]]:
    fields = [("method", entry.method), ("path", entry.path), *(entry.headers or {}).items()]
    return [(f, m) for f, m in fields if m is not None]


# --------------------------------------------------------------------------- the configuration (pure)


def _fetch(field: str) -> str:
    return field if field in ("method", "path") else f"req.fhdr({field})"


def render_route_rules(table: RouteTable, directory: Path) -> list[str]:
    """ACLs and the ``txn.route`` rules of a frontend that routes (user and shadow alike)."""
    maps = directory / ROUTES_DIR
    lines: list[str] = []
    for r in table.routes:
        lines.append(f"    # route {r.index}: {r.name}")
        for j, header in enumerate(r.headers):
            lines += [f"    acl rt{r.index}_h req.fhdr({header}),map_{kind}({maps / r.header_map(j, kind)}) -m found"
                      for kind in KINDS]
        for k in range(r.mirror_slots):
            for f, field in enumerate(r.mirror_fields):
                acl = f"rt{r.index}_e{k}_f{f}"
                lines.append(f"    acl {acl} str({r.any_key(k, f)}),map_str({maps / ANY_MAP}) -m found")
                lines += [f"    acl {acl} {_fetch(field)},map_{kind}({maps / r.field_map(k, f, kind)}) -m found"
                          for kind in KINDS]
    unset = "!{ var(txn.route) -m found }"
    for r in table.routes:
        if r.headers:
            lines.append(f"    http-request set-var(txn.route) str(h{r.index}) if {unset} rt{r.index}_h")
        for k in range(r.mirror_slots):
            fields = " ".join(f"rt{r.index}_e{k}_f{f}" for f in range(len(r.mirror_fields)))
            lines.append(f"    http-request set-var(txn.route) str(m{r.index}) if {unset} {fields}")
    return lines


USER_ROUTE_RULE = "    use_backend be_canary if { var(txn.route) -m beg h }"
"""fe_user: a header route in force sends the request to the canary, before the weight."""


def render_shadow_rules(directory: Path) -> list[str]:
    """fe_shadow, after the route rules: answer at once unless a mirror route holds and
    the draw falls within its percentage; the rest goes to the canary."""
    return [
        "    http-request return status 204 unless { var(txn.route) -m beg m }",
        f"    http-request set-var(txn.mirror) var(txn.route),map_str_int({directory / ROUTES_DIR / MIRROR_MAP},0)",
        "    http-request set-var(txn.mirror_draw) rand(100)",
        "    http-request return status 204 unless { var(txn.mirror_draw),sub(txn.mirror) -m int lt 0 }",
        "    default_backend be_canary",
    ]


# --------------------------------------------------------------------------- the maps (pure)


def map_entry(match: StringMatch) -> tuple[str, str]:
    """(kind, key) of one string match. An empty exact or prefix value cannot be a map key:
    it becomes the regex that means the same."""
    if match.exact is not None:
        return ("str", match.exact) if match.exact else ("reg", "^$")
    if match.prefix is not None:
        return ("beg", match.prefix) if match.prefix else ("reg", "^")
    return "reg", f"^(?:{match.regex})$"


def compute_route_maps(table: RouteTable, routes: Mapping[str, RouteAction]) -> dict[str, list[tuple[str, str]]]:
    """The contents of every route map (file name -> (key, value) entries) for the routes
    in force ``routes`` (name -> the action that set it); maps of routes not in force are
    empty. Raises RouterError for a route the configuration cannot hold."""
    maps: dict[str, list[tuple[str, str]]] = {name: [] for name in table.map_names()}
    for name, action in routes.items():
        shape = table.shape(name)
        if isinstance(action, SetHeaderRoute):
            for m in action.match:
                if m.header_name not in shape.headers:
                    raise RouterError(f"header route {name!r} tests {m.header_name!r}, which no setHeaderRoute "
                                      f"step of {name!r} tests: the router was configured for "
                                      f"{', '.join(shape.headers) or 'no header'}")
                kind, key = map_entry(m.header_value)
                maps[shape.header_map(shape.headers.index(m.header_name), kind)].append((key, "1"))
            continue
        if len(action.match) > shape.mirror_slots:
            raise RouterError(f"mirror route {name!r} has {len(action.match)} match entries; its steps declare "
                              f"at most {shape.mirror_slots}")
        for k, entry in enumerate(action.match):
            tested = dict(_entry_fields(entry))
            for field in tested:
                if field not in shape.mirror_fields:
                    raise RouterError(f"mirror route {name!r} tests {field!r}, which none of its steps tests")
            for f, field in enumerate(shape.mirror_fields):
                if field in tested:
                    kind, key = map_entry(tested[field])
                    maps[shape.field_map(k, f, kind)].append((key, "1"))
                else:
                    maps[ANY_MAP].append((shape.any_key(k, f), "1"))
        maps[MIRROR_MAP].append((f"m{shape.index}", str(action.percentage)))
    return maps


__all__ = ["ANY_MAP", "KINDS", "MIRROR_MAP", "ROUTES_DIR", "RouteAction", "RouteShape", "RouteTable",
           "USER_ROUTE_RULE", "compute_route_maps", "compute_route_table", "map_entry", "render_route_rules",
           "render_shadow_rules"]
