"""The local backend's traffic path: HAProxy (``live.haproxy``) and, when the canary may
mirror, nginx in front of it (``live.nginx``); the pods' server slots, switches, and the
canary's managed routes (``live.haproxy_routes``).

``RouterFront`` is a part of ``LocalBackend`` (``live.local``), as ``PodSupervisor`` is: it
runs under the backend's lock and spawns on its supervisor thread.

Managed routes. ``SetHeaderRoute``, ``SetMirrorRoute`` and ``RemoveRoute`` change the
routes in force (name -> the action that set it), which the backend records beside the
weight (``backend.json``), and replace the contents of the route maps that changed,
through HAProxy's runtime API: nothing is reloaded, neither HAProxy nor nginx. A restarted
HAProxy (or a resumed run) starts with empty route maps and gets the recorded routes put
back at once. A layout without a router per version, or a strategy without
``managedRoutes``, refuses route actions (``LocalBackendError``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from rolloutlab.errors import LocalBackendError, RouterError
from rolloutlab.live.baseline import BASELINE
from rolloutlab.live.calibration import SwitchTiming
from rolloutlab.live.haproxy import NO_BACKEND, HAProxyProcess, Layout, RouterFiles, RouterStats, slot_name
from rolloutlab.live.haproxy_routes import RouteAction, compute_route_maps
from rolloutlab.live.local_pods import LocalPod, version_answering
from rolloutlab.live.nginx import MirrorFiles, NginxProcess
from rolloutlab.strategies import Action, RolloutStatus, StrategySpec
from rolloutlab.strategies.actions import RemoveRoute, SetHeaderRoute, SetMirrorRoute
from rolloutlab.strategies.routes import HeaderMatch, HeaderRoute, RouteMatch

ROUTE_ACTIONS = (SetHeaderRoute, SetMirrorRoute, RemoveRoute)

log = logging.getLogger("rolloutlab.live.local")


# --------------------------------------------------------------------------- routes as data


def dump_routes(routes: Mapping[str, RouteAction]) -> dict[str, dict[str, Any]]:
    """The routes in force as JSON-able data (the backend's record keeps them)."""
    out: dict[str, dict[str, Any]] = {}
    for name, action in routes.items():
        match = [m.model_dump(mode="json", exclude_none=True) for m in action.match]
        if isinstance(action, SetHeaderRoute):
            out[name] = {"kind": "header", "match": match}
        else:
            out[name] = {"kind": "mirror", "percentage": action.percentage, "match": match}
    return out


def load_routes(data: Mapping[str, Mapping[str, Any]]) -> dict[str, RouteAction]:
    out: dict[str, RouteAction] = {}
    for name, route in data.items():
        if route["kind"] == "header":
            out[name] = SetHeaderRoute(name, tuple(HeaderMatch.model_validate(m) for m in route["match"]))
        elif route["kind"] == "mirror":
            out[name] = SetMirrorRoute(name, int(route["percentage"]),
                                       tuple(RouteMatch.model_validate(m) for m in route["match"]))
        else:
            raise ValueError(f"route {name!r} of unknown kind {route['kind']!r}")
    return out


def routes_from_status(spec: StrategySpec, status: RolloutStatus | None) -> dict[str, RouteAction]:
    """The routes a persisted controller status says are in force (``status.routes``: the
    step that set each), for a state directory without a backend record."""
    canary = spec.strategy.canary
    if status is None or canary is None:
        return {}
    out: dict[str, RouteAction] = {}
    for name, index in status.routes:
        route = canary.steps[index].route
        if route is None or route.match is None:
            continue
        if isinstance(route, HeaderRoute):
            out[name] = SetHeaderRoute(name, route.match)
        else:
            out[name] = SetMirrorRoute(name, route.percentage, route.match)
    return out


# --------------------------------------------------------------------------- the part of the backend


class RouterFront:
    """HAProxy, nginx and routes of a ``LocalBackend`` (see the module docstring)."""

    # ----------------------------------------------------------------- what callers read

    def urls(self) -> dict[str, str | None]:
        """Where the load generator sends users (nginx when the canary may mirror, else
        HAProxy) and blue-green's preview traffic."""
        with self._lock:
            self._check_ensured()
            entry = self._mirror.port if self._mirror is not None else self._router.user_port
            preview = None
            bg = self.spec.strategy.blue_green
            if bg is not None and bg.preview_service:
                preview = f"http://127.0.0.1:{self._router.preview_port}/"
            return {"user": f"http://127.0.0.1:{entry}/", "preview": preview}

    def router_urls(self) -> dict[str, str | None]:
        """HAProxy's own frontends (user, preview, shadow), behind nginx when it mirrors:
        for measurements and tests that bypass nginx."""
        with self._lock:
            self._check_ensured()
            router = self._router
        shadow = f"http://127.0.0.1:{router.shadow_port}/" if router.shadow_port else None
        return {"user": f"http://127.0.0.1:{router.user_port}/", "preview": f"http://127.0.0.1:{router.preview_port}/",
                "shadow": shadow}

    def router_stats(self) -> RouterStats:
        """Per-frontend/backend/server counters from HAProxy's ``show stat``."""
        with self._lock:
            self._check_ensured()
            router = self._router
        return router.stats()

    def routes(self) -> dict[str, RouteAction]:
        """The managed routes in force (name -> the action that set it)."""
        with self._lock:
            return dict(self._routes)

    @property
    def router_pid(self) -> int | None:
        with self._lock:
            router = self._router
            return None if router is None or not router.running else router.process.pid

    @property
    def mirror_pid(self) -> int | None:
        """nginx's pid while it runs (only for a canary that may mirror)."""
        with self._lock:
            mirror = self._mirror
            return None if mirror is None or not mirror.running else mirror.process.pid

    def child_pids(self) -> list[int]:
        pids = super().child_pids()
        with self._lock:
            if self._mirror is not None and self._mirror.running:
                pids.append(self._mirror.process.pid)
        return pids

    # ----------------------------------------------------------------- starting

    def _start_router(self) -> None:
        assert self.record is not None and self.layout is not None and self.run_dir is not None
        routes = {"active": f"be_{self.record.active}", "preview": self._preview_backend(self.record.preview)}
        weights = {"canary": self.record.canary_weight, BASELINE: self._baseline_weight()}
        router = HAProxyProcess(RouterFiles(self.run_dir), self.layout, self.router_settings, routes, weights,
                                binary=self.haproxy_binary, spawn=self._spawn)
        previous = self._router
        router.start(ports=None if previous is None else previous.ports)
        self._router = router
        self._applied_maps = {}  # a new HAProxy starts with empty route maps
        if self.layout.routes is not None:
            self._sync_routes()
        if self.layout.mirrors:
            self._start_mirror()

    def _start_mirror(self) -> None:
        """nginx in front of HAProxy; kept when it already forwards to HAProxy's ports."""
        router, mirror = self._router, self._mirror
        if mirror is not None and mirror.running and (mirror.user_port, mirror.shadow_port) == \
                (router.user_port, router.shadow_port):
            return
        port = None
        if mirror is not None:
            port = mirror.port
            mirror.stop()
        fresh = NginxProcess(MirrorFiles(self.run_dir), self.mirror_settings, router.user_port, router.shadow_port,
                             binary=self.nginx_binary, spawn=self._spawn)
        fresh.start(port=port)
        self._mirror = fresh
        self._event("router", None, f"nginx mirroring on 127.0.0.1:{fresh.port} -> HAProxy {router.user_port}, "
                                    f"copies -> {router.shadow_port}")

    def _tick(self, now: float) -> None:
        super()._tick(now)  # restarts HAProxy (and nginx with it) when it died
        mirror = self._mirror
        if mirror is not None and not mirror.running and not self._closed:
            self._event("error", None, "nginx exited; restarting it")
            self._start_mirror()

    @staticmethod
    def _preview_backend(role: str | None) -> str:
        return NO_BACKEND if role is None else f"be_{role}"

    # ----------------------------------------------------------------- managed routes

    def _apply_route(self, action: SetHeaderRoute | SetMirrorRoute | RemoveRoute) -> None:
        self._require_routed(action)
        if self.layout.routes is None:
            raise LocalBackendError(f"{action!r}: this run's strategy declares no managedRoutes, so its router "
                                    "was not configured for routes")
        try:
            self.layout.routes.shape(action.name)
        except RouterError as error:
            raise LocalBackendError(str(error)) from None
        previous = dict(self._routes)
        if isinstance(action, RemoveRoute):
            self._routes.pop(action.name, None)
        else:
            self._routes[action.name] = action
        try:
            self._sync_routes()
        except RouterError as error:
            self._routes = previous
            raise LocalBackendError(f"{action!r}: {error}") from None
        self._event("router", None, f"route {action.name}: {_describe(action)}")

    def _sync_routes(self) -> None:
        """Put the routes in force into HAProxy: the maps whose contents changed."""
        router = self._router
        maps = compute_route_maps(self.layout.routes, self._routes)
        for name, entries in maps.items():
            if self._applied_maps.get(name, []) != entries:
                router.api.replace_map(router.files.route_map(name), entries)
                self._applied_maps[name] = entries

    # ----------------------------------------------------------------- pods' server slots

    def _server(self, pod: LocalPod) -> tuple[str, str]:
        return self.layout.backend_of(pod.group), slot_name(pod.group, pod.slot)

    def _unroute(self, pod: LocalPod) -> None:
        pod.unroute_at = None
        if pod.slot is None or self._router is None or not (pod.routed or pod.addressed):
            pod.routed = pod.addressed = False
            return
        try:
            self._router.api.set_server_state(*self._server(pod), "maint")
        except RouterError as error:
            log.warning("taking %s out of the router failed: %s", pod.name, error)
        if pod.routed:
            self._event("unrouted", pod.name, "/".join(self._server(pod)))
        pod.routed = pod.addressed = False

    def _address(self, pod: LocalPod) -> None:
        self._router.api.set_server_addr(*self._server(pod), pod.port)  # the slot is in maintenance
        pod.addressed = True

    def _route(self, pod: LocalPod) -> None:
        self._router.api.set_server_state(*self._server(pod), "ready")
        pod.routed = True
        self._event("routed", pod.name, "/".join(self._server(pod)))

    def _require_routed(self, action: Action) -> None:
        if self.layout.layout is not Layout.ROUTED:
            raise LocalBackendError(f"{action!r} needs a router per version (blue-green, or canary with "
                                    f"trafficRouting: router); this run's {self.spec.strategy.kind.value} "
                                    "sends traffic to every ready pod")

    # ----------------------------------------------------------------- switches

    def _switch(self, key: str, backend: str, target: str | None, frontend: str) -> Callable[[], None] | None:
        """Point a frontend at a backend: one map entry, so the switch is atomic for new
        requests, and requests in flight finish on the servers they were sent to (which
        stay up). Returns the measurement of the delay until the frontend answers from the
        target version (run it without holding the lock), or None."""
        router = self._router
        current = router.api.show_map(router.files.routes_map).get(key)
        at = time.monotonic()
        begun = time.perf_counter()
        router.api.set_map(router.files.routes_map, key, backend)
        command_s = time.perf_counter() - begun
        self._event("router", None, f"{key} -> {backend}")
        if not self.measure_switches or target is None or current == backend:
            return None
        port = router.user_port if frontend == "user" else router.preview_port

        def measure() -> None:
            first, probes = None, 0
            while time.perf_counter() < begun + 0.5:
                probes += 1
                try:
                    version = version_answering(port)
                except OSError:
                    version = None
                if version == target:
                    first = time.perf_counter() - begun
                    break
            with self._lock:
                self._switches.append(SwitchTiming(f"{key} -> {backend}", target, at, command_s, first, probes))

        return measure


def _describe(action: SetHeaderRoute | SetMirrorRoute | RemoveRoute) -> str:
    if isinstance(action, RemoveRoute):
        return "removed"
    if isinstance(action, SetHeaderRoute):
        return f"header route, {len(action.match)} match(es): matching requests go to the canary"
    return f"mirror route, {action.percentage}% of {len(action.match)} match(es) copied to the canary"


__all__ = ["ROUTE_ACTIONS", "RouterFront", "dump_routes", "load_routes", "routes_from_status"]
