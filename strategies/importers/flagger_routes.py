"""Flagger's A/B testing and traffic mirroring, read as our managed routes.

What Flagger's controller does (fluxcd/flagger, ``pkg/controller/scheduler.go`` as of
commit 0016895489a8: the loop ``advanceCanary`` and the three strategies it calls), and
what the import makes of it:

- **A/B testing** (``analysis.match`` + ``iterations``, ``runAB``): at the first loop after
  the canary is ready Flagger sets the routes once (``SetRoutes(canary, 0, 100)``: requests
  matching a condition go to the canary, the rest stay on the primary) and counts an
  iteration without a check; every later loop runs one check, and a passing one counts an
  iteration until ``iterations`` are counted: the loop of the ``iterations``-th check
  promotes if it passes, ``iterations`` intervals after the route was set. Failed checks
  hold the count and roll back at the threshold, as for weights. Imported as a routed
  canary: ``setCanaryScale: {weight: 100}``, ``setHeaderRoute`` named ``ab-match`` with the
  conditions, then one ``pause: {duration: interval}`` per iteration under the held
  background analysis; promotion removes the route (Argo's semantics, and Flagger routes
  everything to the promoted primary).
- **Mirroring in a progressive canary** (``mirror: true`` with ``stepWeight``,
  ``runCanary``): "do one step of mirroring before shifting traffic": at the weight 0 the
  first loop sets a mirror (all traffic on the primary, a copy to the canary); the next
  passing check removes it and sets the first weight. Imported as ``setMirrorRoute`` after
  the canary scale, one ``pause: {duration: interval}``, ``setMirrorRoute`` without match
  (removed), then the weights.
- **Blue/green with mirroring** (``mirror: true`` with ``iterations``, ``runBlueGreen``):
  "mirror requests during the entire B/G canary test": mirroring starts at the first loop,
  each passing check counts an iteration, and after the last one Flagger stops mirroring,
  routes all traffic to the canary and runs one more check before promoting. Imported as
  a routed canary: ``setMirrorRoute``, one pause per iteration, the mirror removed,
  ``setWeight: 100`` and one more pause.

Which routers do it (``pkg/router``; istio.go at 01294f5f7c48, gateway_api.go at
03acf7aef40d, ingress.go at b564a2fda2c4): Istio's ``SetRoutes`` puts the mirror on the weighted
route with ``mirrorPercentage: mirrorWeight`` (Istio mirrors 100% when it is 0 or unset),
and in A/B mode rebuilds the routes from the match conditions after that, so A/B never
mirrors; ``mergeMatchConditions`` keeps only a condition's ``headers`` and
``sourceLabels`` when ``spec.service.match`` is set. The Gateway API router mirrors only
for blue/green (``mirrored && Iterations > 0``) and without a percentage. The NGINX ingress
router (``ingress.go``) turns the conditions into ``canary-by-header`` (one header, exact
or regex; the last one wins) and ``canary-by-cookie`` (a cookie whose value is
``always``).
"""

from __future__ import annotations

import re
from typing import Any

from rolloutlab.strategies.importers.manifest import ManifestReader, Path

AB_ROUTE = "ab-match"
MIRROR_ROUTE = "mirror"
EVERY_REQUEST = {"path": {"prefix": "/"}}
"""A mirror route's match for every request: every HTTP request path starts with "/"."""

# Who mirrors what (pkg/router: istio.go and gateway_api.go set a mirror, the others ignore it).
MIRRORS_PROGRESSIVE = {"istio"}
MIRRORS_BLUE_GREEN = {"istio", "gatewayapi"}
MIRROR_PERCENTAGE = {"istio"}  # the routers that honour mirrorWeight

_ISTIO_KINDS = ("exact", "prefix", "suffix", "regex")
_CONDITION_REASONS = {
    "sourceLabels": "selects requests by the labels of the calling workload; rolloutlab's requests have no caller, "
                    "so this part of the condition is not carried",
    "withoutHeaders": "a header that must be absent cannot be carried by a header route; not carried",
}
_NOT_HEADERS = ("is not carried: a header route matches request headers only, so more requests reach the canary "
                "than in Flagger")


def mirror_percentage(r: ManifestReader, ap: Path, mesh: str) -> int:
    """The share of requests copied to the canary: ``mirrorWeight``, 100 when 0 or unset (Istio's default)."""
    weight = r.integer((*ap, "mirrorWeight"), minimum=0, maximum=100)
    if mesh not in MIRROR_PERCENTAGE:
        if weight not in (None, 0, 100):
            r.warn((*ap, "mirrorWeight"), f"Flagger's {mesh} router mirrors every request (it sets no mirror "
                                          "percentage); mirrorWeight ignored")
        return 100
    return weight or 100


def mirror_steps(percentage: int, interval: float, checks: int) -> list[dict]:
    """The mirror route set, ``checks`` intervals of checks on the copies, the route removed."""
    steps: list[dict] = [{"setMirrorRoute": {"name": MIRROR_ROUTE, "percentage": percentage,
                                             "match": [EVERY_REQUEST]}}]
    steps += [{"pause": {"duration": interval}} for _ in range(checks)]
    steps.append({"setMirrorRoute": {"name": MIRROR_ROUTE}})
    return steps


def ab_header_matches(r: ManifestReader, mp: Path, mesh: str) -> list[tuple[dict, Path]]:
    """Our header matches for Flagger's ``analysis.match`` conditions (ORed, as Flagger's
    routers OR them), each with the manifest field it came from; what a header route
    cannot carry is warned about."""
    conditions = r.sequence(mp) or []
    if mesh == "nginx":
        return _nginx_matches(r, mp, len(conditions))
    out: list[tuple[dict, Path]] = []
    for j in range(len(conditions)):
        cp = (*mp, j)
        r.mapping(cp, required=True)
        for key in r.keys(cp):
            if key not in ("headers", "name"):
                r.warn((*cp, key), _CONDITION_REASONS.get(key, f"{key} {_NOT_HEADERS}"))
        names = r.keys((*cp, "headers"))
        if not names:
            r.warn(cp, "this condition names no header, so a header route cannot carry it; left out")
            continue
        if len(names) > 1:
            r.warn((*cp, "headers", names[1]), f"Flagger requires every header of one condition ({', '.join(names)}); "
                                               f"a header route matches one header per condition, so only "
                                               f"{names[0]!r} is kept and more requests reach the canary")
        hp = (*cp, "headers", names[0])
        out.append(({"headerName": names[0], "headerValue": _istio_value(r, hp)}, hp))
    return out


def _istio_value(r: ManifestReader, hp: Path) -> dict[str, str]:
    """Istio's StringMatch; ``suffix`` becomes the whole-value regex it is equivalent to."""
    kind, value = next(iter(r.string_match(hp, _ISTIO_KINDS).items()))
    if kind == "suffix":
        return {"regex": ".*" + re.escape(value)}
    return {kind: value}


def _nginx_matches(r: ManifestReader, mp: Path, count: int) -> list[tuple[dict, Path]]:
    """pkg/router/ingress.go, SetRoutes: every header of every condition is visited in turn;
    ``cookie`` sets canary-by-cookie to its exact value, any other header sets
    canary-by-header with its exact value or regex. A later one replaces an earlier one."""
    header: tuple[dict, Path] | None = None
    cookie: tuple[dict, Path] | None = None
    for j in range(count):
        cp = (*mp, j)
        r.mapping(cp, required=True)
        for key in r.keys(cp):
            if key not in ("headers", "name"):
                r.warn((*cp, key), f"the NGINX ingress routes by one header and one cookie only; {key} {_NOT_HEADERS}")
        for name in r.keys((*cp, "headers")):
            hp = (*cp, "headers", name)
            given = r.string_match(hp, _ISTIO_KINDS)
            kind, value = next(iter(given.items()))
            if name.lower() == "cookie":
                if kind != "exact":
                    r.warn(hp, f"Flagger's NGINX router reads only `exact` (a cookie name) for a cookie; {kind} "
                               "ignored")
                    continue
                if cookie is not None:
                    r.warn(cookie[1], "replaced by a later cookie condition (the NGINX ingress takes one cookie)")
                # ingress-nginx: a request whose cookie `value` is "always" goes to the canary
                cookie = ({"headerName": "cookie",
                           "headerValue": {"regex": rf"(.*;\s*)?{re.escape(value)}=always(;.*)?"}}, hp)
                r.warn(hp, f"NGINX routes requests carrying the cookie {value}=always (canary-by-cookie); "
                           "imported as that match on the cookie header")
                continue
            if header is not None:
                r.warn(header[1], "replaced by a later header condition (the NGINX ingress takes one header)")
            if kind == "exact":
                header = ({"headerName": name, "headerValue": {"exact": value}}, hp)
            elif kind == "regex":
                header = ({"headerName": name, "headerValue": {"regex": value}}, hp)
                r.warn(hp, "NGINX matches canary-by-header-pattern with PCRE; imported as a match of the whole value: "
                           "check that the pattern means the same")
            else:
                # Flagger sets only canary-by-header then: NGINX routes the value "always"
                header = ({"headerName": name, "headerValue": {"exact": "always"}}, hp)
                r.warn(hp, f"Flagger's NGINX router has no {kind} match: it sets canary-by-header alone, which "
                           "routes the value 'always'; imported as that")
    return [found for found in (header, cookie) if found is not None]


def route_steps_note(steps: list[dict[str, Any]]) -> str:
    """What sets the canary's first traffic in these steps, for the warning on its timing."""
    for step in steps:
        if "setHeaderRoute" in step:
            return "the A/B route"
        if "setMirrorRoute" in step:
            return "the mirror"
        if "setWeight" in step:
            return "the first weight"
    return "the first weight"
