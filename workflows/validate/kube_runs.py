"""``validate --backend kube``: the live runs on a Kubernetes cluster, real containers.

Each live run gets a namespace of its own (``PREFIX-RUN-RANDOM``), created for it and
deleted after it whatever happens (its Services first: that frees the NodePort at once for
the next run, while the namespace itself goes asynchronously), a ``KubeBackend`` whose
entry Service is a NodePort (blue-green's preview Service the next port), and the load
generator sends to ``http://127.0.0.1:NODEPORT/`` with one connection per request
(kube-proxy picks a pod per connection: ``KubeBackend.balances_connections``).

Pod start-up is measured on the real containers by a pod watch kept during the run
(``live.kube_events.PodWatch``: creation seen to Ready first True, monotonic clock),
because the API's own timestamps have 1 s resolution.

What differs from the local backend, said in the output (``KubeRuns.differences``) and in
docs/validate.md: the pods' readiness probe is the demo pod template's, in whole seconds
(``periodSeconds`` >= 1), not the scenario's probe divided by the time scale; kube-proxy
balances connections, not requests; and kube-proxy has no stats API, so the router's
switch delay and its counters are not measured (None, never 0).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from kubernetes.client.exceptions import ApiException

from rolloutlab.errors import InputError, ValidateError
from rolloutlab.live.kube import KubeBackend
from rolloutlab.live.kube_events import ENDPOINT_EVENTS
from rolloutlab.live.kube_objects import (
    MANAGED_BY,
    DemoImage,
    KubeProbe,
    RetryPolicy,
    release_answer,
    retrying,
    scenario_pod_settings,
)
from rolloutlab.live.runner import Progress
from rolloutlab.live.session import make_plan, run_live
from rolloutlab.scenarios.schema import Scenario
from rolloutlab.strategies import StrategySpec
from rolloutlab.workflows.validate.calibration import PodTimingSummary, compute_created_to_ready
from rolloutlab.workflows.validate.running import LiveResult, Settings, finish_live_run
from rolloutlab.workflows.validate.switching import routing_change_times

OVERHEAD_S = 45.0  # wall seconds a run takes beyond the scenario's window: namespace, pods, clean-up
GONE_WITHIN_S = 60.0  # how long the clean-up waits for a namespace to be gone before saying so
ROUTER_NOT_MEASURED = "kube-proxy has no stats API"


def kube_urls(node_port: int, spec: StrategySpec) -> dict[str, str | None]:
    """Where the load generator reaches the app: the NodePorts on 127.0.0.1."""
    preview = f"http://127.0.0.1:{node_port + 1}/" if spec.strategy.blue_green else None
    return {"user": f"http://127.0.0.1:{node_port}/", "preview": preview}


@dataclass
class KubeRuns:
    """The cluster side of one validation: its API client, the demo image, a namespace per run."""

    api: Any
    image: DemoImage
    owns_api: bool
    # The pods' readiness probe and grace period: the scenario's, divided by the time scale
    # and rounded up to the whole seconds Kubernetes takes (kube_objects.scenario_pod_settings).
    pod_settings: dict[str, Any]
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    overhead_s: float = OVERHEAD_S
    cleanup_notes: list[str] = field(default_factory=list)

    @classmethod
    def open(cls, settings: Settings, spec: StrategySpec, scenario: Scenario, api: Any = None) -> "KubeRuns":
        """The cluster of ``settings.context`` (or ``api``, an API client: tests), asked which
        demo image its nodes hold; bad settings and a kubeconfig that cannot be used are bad
        input (exit 2), a cluster that does not answer a failed run (exit 1)."""
        if spec.strategy.blue_green and settings.kube_node_port >= 32767:
            raise ValidateError("--node-port: blue-green needs NODE_PORT+1 for its preview Service: at most 32766")
        owns = api is None
        if owns:
            try:
                api = KubeBackend.from_kubeconfig(settings.context).api
            except Exception as error:  # no kubeconfig, unknown context, ...: the user's setup, said plainly
                raise InputError("--backend kube", f"cannot open the cluster from the kubeconfig"
                                 f"{'' if settings.context is None else f' (context {settings.context})'}: {error}"
                                 ) from None
        try:
            image = KubeBackend(api, "default").image  # the first call to the API server
        except BaseException:
            if owns:
                api.close()
            raise
        return cls(api, image, owns, scenario_pod_settings(scenario.service_under_test.pod_timing,
                                                           settings.time_scale))

    @property
    def probe(self) -> KubeProbe:
        return self.pod_settings["readiness"]

    @property
    def termination_grace_s(self) -> int:
        return self.pod_settings["termination_grace_s"]

    def close(self) -> None:
        if self.owns_api:
            self.api.close()

    def differences(self, scenario: Scenario, settings: Settings) -> list[str]:
        """What this backend does differently from the local one, for the output's notes."""
        scale = settings.time_scale
        readiness = scenario.service_under_test.pod_timing.readiness
        p = self.probe
        return [
            f"kube: the pods' readiness probe is the scenario's (every {readiness.period:g}s, timeout "
            f"{readiness.timeout:g}s) divided by x{scale:g} and rounded up to the whole seconds the kubelet takes: "
            f"periodSeconds {p.period_s}, timeoutSeconds {p.timeout_s} (the local backend probes every "
            f"{max(0.05, readiness.period / scale):.3g}s wall); one probe period here is {p.period_s * scale:g} "
            f"scenario seconds, which the measured creation-to-ready times include (--calibrate fits them)",
            "kube: kube-proxy picks a pod per TCP connection, not per request: the load generator opens one "
            "connection per request (as many separate users would), so a version's share follows its ready pods",
            f"kube: the router's switch delay and counters (own 5xx, retries) are not measured: {ROUTER_NOT_MEASURED} "
            "and applies Service changes asynchronously",
        ]

    # ----------------------------------------------------------------- a namespace per run

    @contextmanager
    def namespace(self, settings: Settings, run: int) -> Iterator[KubeBackend]:
        """A fresh namespace and a backend in it; deleted after the run whatever happens (an
        interrupted or failed run does not wait for it to be gone)."""
        name = f"{settings.kube_namespace_prefix}-{run}-{uuid.uuid4().hex[:6]}"
        backend = KubeBackend(self.api, name, retry=self.retry, node_port=settings.kube_node_port, image=self.image,
                              pod_settings=self.pod_settings)
        body = {"metadata": {"name": name, "labels": {**MANAGED_BY}}}
        self._call(lambda: backend.core.create_namespace(body), f"create namespace {name}", ok=(409,))
        try:
            yield backend
        except BaseException:
            try:
                self._delete_namespace(backend, wait=False)
            except Exception as error:  # noqa: BLE001 - the run's own error is the one to raise
                self.cleanup_notes.append(f"namespace {name}: deleting it failed too ({error}); delete it by hand")
            raise
        self._delete_namespace(backend, wait=True)

    def _delete_namespace(self, backend: KubeBackend, *, wait: bool) -> None:
        name, core = backend.namespace, backend.core
        # Services first: a deleted Service frees its NodePort at once, and the next run
        # takes the same port while the namespace is still terminating.
        services = self._call(lambda: core.list_namespaced_service(name), f"list Services of {name}", ok=(404,))
        for service in services.items if services is not None else []:
            self._call(lambda s=service.metadata.name: release_answer(core.delete_namespaced_service(
                s, name, _preload_content=False)), f"delete Service {name}/{service.metadata.name}", ok=(404,))
        self._call(lambda: release_answer(core.delete_namespace(name, _preload_content=False)),
                   f"delete namespace {name}", ok=(404,))
        if not wait:
            return
        deadline = time.monotonic() + GONE_WITHIN_S
        while time.monotonic() < deadline:
            if self._call(lambda: core.read_namespace(name), f"read namespace {name}", ok=(404,)) is None:
                return
            time.sleep(0.5)
        self.cleanup_notes.append(f"namespace {name} still terminating {GONE_WITHIN_S:g}s after its deletion was "
                                  "asked (the cluster finishes it)")

    def _call(self, call: Callable[[], Any], what: str, ok: tuple[int, ...] = ()) -> Any:
        """``call`` retried (``live.kube_objects.retrying``); None for a status in ``ok``
        (404: already gone; 409 on a create: an earlier attempt made it)."""
        def attempt():
            try:
                return call()
            except ApiException as error:
                if error.status in ok:
                    return None
                raise
        return retrying(attempt, self.retry, what)

    # ----------------------------------------------------------------- one run

    def run_one(self, scenario: Scenario, spec: StrategySpec, settings: Settings, run: int, *, max_wall_s: float,
                log: Callable[[str], None] | None = None, waiting: Progress | None = None) -> LiveResult:
        """One live run in a namespace of its own, with its pods watched for their start times."""
        scale = settings.time_scale
        seed = settings.seed + run
        plan = make_plan(scenario, spec, release=settings.release, seed=seed, time_scale=scale)
        started = time.monotonic()
        with self.namespace(settings, run) as backend:
            # started before the app's objects exist: every pod's creation is seen
            watch = backend.watch_pods(plan.app).start()
            try:
                live = run_live(scenario, spec, backend, plan, urls=kube_urls(settings.kube_node_port, spec),
                                time_scale=scale, seed=seed, run=run, max_rps=settings.max_rps,
                                max_wall_s=max_wall_s, log=log, progress=waiting)
            finally:
                watch.stop()
            events, pods, watched = watch.seen(), watch.pods(), watch.summary()
            wall_minus_monotonic = time.time() - time.monotonic()
        ready = compute_created_to_ready(events)
        timed = PodTimingSummary.of(ready)
        changes = routing_change_times(live.summary.applied, events, origin_wall=live.summary.state.origin_wall,
                                       wall_minus_monotonic=wall_minus_monotonic, time_scale=scale,
                                       kinds=ENDPOINT_EVENTS)
        figures = {
            "backend": "kube", "namespace": backend.namespace, "image": self.image.ref,
            "wall": {"probe_period_s": self.probe.period_s, "pod_starts": timed.n,
                     "pod_created_to_ready_median_s": timed.median_s, "pod_created_to_ready_p90_s": timed.p90_s,
                     "pod_created_to_ready_max_s": max(ready) if ready else None,
                     "router_start_s": None, "switches": None, "switch_delay_median_s": None},
            "not_measured": {"switch_delay": ROUTER_NOT_MEASURED, "router_stats": ROUTER_NOT_MEASURED},
            "watch": watched, "pods": [p.as_dict() for p in pods], "switches": None,
        }
        # The same switch window as the local backend's: the demo pods drain for the
        # scenario's grace divided by the time scale (capped) and exit, long before the
        # pod template's terminationGracePeriodSeconds.
        grace = max(0.5, scenario.service_under_test.pod_timing.termination_grace / scale)
        return finish_live_run(live, plan, settings, run, seed, changes=changes, router=None, grace_wall_s=grace,
                               ready_wall_s=ready, switch_delays_wall_s=None, figures=figures, started=started)


__all__ = ["GONE_WITHIN_S", "KubeRuns", "OVERHEAD_S", "ROUTER_NOT_MEASURED", "kube_urls"]
