"""Managed routes in HAProxy's terms, without running anything: the configuration's shape
from a strategy's steps, the map contents of the routes in force, and how a value crosses
the runtime API. Real HAProxy routing is tests/test_routes_live.py."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest

from rolloutlab.errors import RouterError
from rolloutlab.live.haproxy import HAPROXY, Layout, RouterFiles, RouterLayout, RouterSettings, cli_word, render_config
from rolloutlab.live.haproxy_routes import ANY_MAP, MIRROR_MAP, compute_route_maps, compute_route_table, map_entry
from rolloutlab.strategies import load_strategy
from rolloutlab.strategies.actions import SetHeaderRoute, SetMirrorRoute
from rolloutlab.strategies.routes import HeaderMatch, RouteMatch, StringMatch
from tests.outside_systems import needs_haproxy

STRATEGY = """\
    name: shapes
    strategy:
      canary:
        trafficRouting: router
        managedRoutes: [{name: internal}, {name: shadow}]
        steps:
          - setHeaderRoute:
              name: internal
              match:
                - {headerName: X-User-Group, headerValue: {exact: internal}}
                - {headerName: cookie, headerValue: {regex: ".*canary=always.*"}}
          - setMirrorRoute:
              name: shadow
              match: [{method: {exact: GET}}]
          - setMirrorRoute:
              name: shadow
              percentage: 20
              match:
                - {path: {prefix: /api}, headers: {x-beta: {exact: "1"}}}
                - {method: {exact: POST}}
          - setHeaderRoute:
              name: internal
              match: [{headerName: x-user-group, headerValue: {prefix: staff-}}]
"""


def load(tmp_path: Path, text: str = STRATEGY):
    path = tmp_path / "strategy.yaml"
    path.write_text(textwrap.dedent(text))
    return load_strategy(path)


def test_the_shape_holds_every_header_and_field_any_step_of_a_route_tests(tmp_path):
    """A route's header names are those of all its setHeaderRoute steps (lower-cased); a
    mirror route gets as many entry slots as its longest match, with every field any of
    them tests, in precedence order."""
    table = compute_route_table(load(tmp_path).strategy.canary)
    internal, shadow = table.routes
    assert (internal.index, internal.headers, internal.mirror_slots) == (0, ("x-user-group", "cookie"), 0)
    assert (shadow.index, shadow.headers, shadow.mirror_slots, shadow.mirror_fields) == \
        (1, (), 2, ("method", "path", "x-beta"))
    assert table.mirrors
    assert compute_route_table(load_strategy("canary").strategy.canary) is None


@pytest.mark.parametrize("match, expected", [
    (StringMatch(exact="internal"), ("str", "internal")),
    (StringMatch(exact=""), ("reg", "^$")),
    (StringMatch(prefix="staff-"), ("beg", "staff-")),
    (StringMatch(prefix=""), ("reg", "^")),
    (StringMatch(regex=".*canary=always.*"), ("reg", "^(?:.*canary=always.*)$")),
    (StringMatch(regex="a|b"), ("reg", "^(?:a|b)$")),
], ids=["exact", "exact empty", "prefix", "prefix empty", "regex, anchored", "alternation stays inside"])
def test_a_string_match_becomes_one_map_entry(match, expected):
    """exact -> map_str, prefix -> map_beg, regex -> map_reg matching the whole value."""
    assert map_entry(match) == expected


def test_the_maps_of_the_routes_in_force_and_only_theirs_are_filled(tmp_path):
    """A header route fills its header's maps; a mirror route fills its entries' field
    maps, marks the fields an entry does not test as 'any' and gives its percentage; every
    other map is empty."""
    table = compute_route_table(load(tmp_path).strategy.canary)
    internal, shadow = table.routes
    routes = {
        "internal": SetHeaderRoute("internal", (HeaderMatch(header_name="x-user-group",
                                                            header_value=StringMatch(exact="qa team")),)),
        "shadow": SetMirrorRoute("shadow", 20, (RouteMatch(method=StringMatch(exact="POST")),
                                                RouteMatch(path=StringMatch(prefix="/api")))),
    }
    maps = compute_route_maps(table, routes)
    filled = {name: entries for name, entries in maps.items() if entries}
    assert filled == {
        internal.header_map(0, "str"): [("qa team", "1")],
        shadow.field_map(0, 0, "str"): [("POST", "1")],
        shadow.field_map(1, 1, "beg"): [("/api", "1")],
        ANY_MAP: [("r1.e0.f1", "1"), ("r1.e0.f2", "1"), ("r1.e1.f0", "1"), ("r1.e1.f2", "1")],
        MIRROR_MAP: [("m1", "20")],
    }
    assert set(maps) == set(table.map_names())
    assert not any(compute_route_maps(table, {}).values())


@pytest.mark.parametrize("routes, message", [
    ({"nobody": SetHeaderRoute("nobody", ())}, "not a managed route"),
    ({"internal": SetHeaderRoute("internal", (HeaderMatch(header_name="x-other",
                                                          header_value=StringMatch(exact="1")),))},
     "no setHeaderRoute step"),
    ({"shadow": SetMirrorRoute("shadow", 5, (RouteMatch(method=StringMatch(exact="GET")),) * 3)}, "at most 2"),
    ({"shadow": SetMirrorRoute("shadow", 5, (RouteMatch(headers={"x-new": StringMatch(exact="1")}),))},
     "none of its steps tests"),
], ids=["unknown route", "header no step tests", "more entries than slots", "field no step tests"])
def test_a_route_the_configuration_cannot_hold_is_refused(tmp_path, routes, message):
    """The configuration was generated from the steps: anything else is refused, not guessed."""
    table = compute_route_table(load(tmp_path).strategy.canary)
    with pytest.raises(RouterError, match=message):
        compute_route_maps(table, routes)


def test_a_header_name_the_configuration_cannot_hold_is_refused(tmp_path):
    """HTTP allows header names HAProxy's configuration would need quoting for ('#'
    starts a comment there): the local router refuses them by name."""
    text = STRATEGY.replace("headerName: X-User-Group", "headerName: \"x#group\"")
    with pytest.raises(RouterError, match="x#group"):
        compute_route_table(load(tmp_path, text).strategy.canary)


@pytest.mark.parametrize("text, word", [
    ("internal", "internal"),
    ("qa team; nightly", "qa\\ team\\;\\ nightly"),
    ("^(?:v\\d+)$", "^(?:v\\\\d+)$"),
    ("a\tb", "a\\\tb"),
], ids=["plain", "space and semicolon", "backslash", "tab"])
def test_a_value_crosses_the_runtime_api_as_one_escaped_word(text, word):
    """The CLI splits at spaces and ';' and reads backslashes: those are escaped."""
    assert cli_word(text) == word


@pytest.mark.parametrize("text", ["", "a\nb"], ids=["empty", "line break"])
def test_a_value_the_runtime_api_cannot_carry_is_refused(text):
    with pytest.raises(RouterError):
        cli_word(text)


@needs_haproxy
def test_the_routed_configuration_with_routes_is_valid_haproxy(tmp_path):
    """HAProxy accepts the configuration with routes and a shadow frontend, without
    warnings (a rule in an order HAProxy would not run it in warns)."""
    files = RouterFiles(tmp_path)
    table = compute_route_table(load(tmp_path).strategy.canary)
    layout = RouterLayout(Layout.ROUTED, {"stable": 2, "canary": 2}, table)
    files.routes_map.write_text("active be_stable\n")
    files.weights_map.write_text("canary 0\n")
    (tmp_path / "routes").mkdir()
    for name in layout.routes.map_names():
        files.route_map(name).write_text("")
    files.config.write_text(render_config(layout, RouterSettings(), files, 18001, 18002, 18003))
    check = subprocess.run([HAPROXY, "-c", "-f", str(files.config)], capture_output=True, text=True, timeout=10)
    assert check.returncode == 0 and "WARNING" not in check.stderr, check.stdout + check.stderr
    assert "frontend fe_shadow" in files.config.read_text()
