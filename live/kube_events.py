"""A watch of one app's pods, kept during a live run on Kubernetes: when each pod was first
seen and when its Ready condition first turned True, on the monotonic clock, plus every
change that moves a Service's endpoints (a pod turning ready or unready, being deleted).

Why a watch: Kubernetes timestamps (a pod's ``creationTimestamp``, a condition's
``lastTransitionTime``) have 1 s resolution, as coarse as a whole pod start at a time
scale of 20 (a wall second is 20 scenario seconds). The API server sends a watch event as
it stores the change, so the moment the event arrives is known to milliseconds (plus the
delivery delay, the same for both ends of a span). The 1 s timestamps are kept beside
the watch's times, for comparison.

``PodWatch`` is started before the app's objects exist (its first list must be empty of
the app's pods, or those pods are recorded as seen, not timed) and stopped after the
run. One thread, bounded: at most ``max_pods`` pods and ``max_events`` events are kept,
and ``stop`` returns within seconds (it shuts the stream's socket).

Robust to watch cuts: every stream is resumed from its last resourceVersion (at once when
it ended, after a short pause when it failed), and an expired resourceVersion (410 Gone)
starts again from a fresh list. What happened while no stream was open is replayed as the
next one opens, so an event seen just after a blind spot longer than ``LATE_AFTER_S`` may
be seen late by up to that spot: it is marked ``late`` (``PodEvent.detail``) and the pod's
start is not timed from it; a pod first seen in a list has no creation moment at all.
Both are counted (``summary``), never guessed.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from kubernetes import watch
from kubernetes.client import V1Pod
from kubernetes.client.exceptions import ApiException

from rolloutlab.errors import KubeError
from rolloutlab.live.kube_objects import VERSION_LABEL

ENDPOINT_EVENTS = ("ready", "unready", "deleting", "deleted")
"""Event kinds that change which pods a Service sends traffic to (endpoints follow
readiness; a pod being deleted leaves them)."""

WATCH_S = 10  # the server ends each stream after this long; it is resumed from its resourceVersion
REPLAY_S = 0.5  # events this soon after a stream opens may be replays of what happened before it
LATE_AFTER_S = 0.1  # a blind spot (no stream open) longer than this makes such events "late"
RETRY_S = 0.2  # pause after a broken stream before resuming it


@dataclass(frozen=True)
class PodEvent:
    """One change the watch saw. ``detail``: ``again`` (a ready that is not the pod's
    first), ``late`` (seen just after a blind spot of the watch: possibly up to that long
    after the change), or empty."""

    at: float  # time.monotonic() when the watch saw it
    kind: str  # created, ready, unready, deleting, deleted
    pod: str
    detail: str = ""


@dataclass
class PodRecord:
    """What the watch knows of one pod (monotonic times; API times as the server wrote them)."""

    name: str
    version: str | None
    node: str | None = None
    container_id: str | None = None  # containerd://... once the kubelet started the container
    created_at: float | None = None  # first seen ADDED; None when first seen in a list
    ready_at: float | None = None  # Ready first turned True
    late: bool = False  # a moment above was seen just after a blind spot of the watch (or in a list)
    api_created: datetime | None = None  # creationTimestamp (1 s resolution)
    api_ready: datetime | None = None  # the Ready condition's lastTransitionTime (1 s resolution)

    @property
    def created_to_ready_s(self) -> float | None:
        """Creation to first readiness on the watch's clock; None when not timed exactly."""
        if self.late or self.created_at is None or self.ready_at is None:
            return None
        return self.ready_at - self.created_at

    @property
    def api_created_to_ready_s(self) -> float | None:
        """The same span from the API's 1 s timestamps (each end truncated to the second)."""
        if self.api_created is None or self.api_ready is None:
            return None
        return (self.api_ready - self.api_created).total_seconds()

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["api_created"] = None if self.api_created is None else self.api_created.isoformat()
        out["api_ready"] = None if self.api_ready is None else self.api_ready.isoformat()
        out["created_to_ready_s"] = self.created_to_ready_s
        out["api_created_to_ready_s"] = self.api_created_to_ready_s
        return out


def _ready_condition(pod) -> Any:
    for condition in (pod.status.conditions or []) if pod.status else []:
        if condition.type == "Ready":
            return condition
    return None


class PodWatch:
    """Watches the pods labelled ``app=<app>`` of a namespace from ``start`` to ``stop``."""

    def __init__(self, core, namespace: str, app: str, *, max_pods: int = 500, max_events: int = 20_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.core = core
        self.namespace = namespace
        self.app = app
        self.max_pods = max_pods
        self.clock = clock
        self.events: deque[PodEvent] = deque(maxlen=max_events)
        self.streams = 0  # watch streams opened (each resumed from the last resourceVersion)
        self.ended_early = 0  # streams cut before the server's timeout (resumed at once)
        self.breaks = 0  # streams or lists that failed (resumed after a pause)
        self.relists = 0  # resourceVersions that expired (410 Gone): started again from a list
        self.max_blind_s = 0.0  # the longest time between one stream's end and the next one's start
        self._dropped: set[str] = set()  # pods not recorded: more than max_pods
        self._records: dict[str, PodRecord] = {}
        self._routed: dict[str, bool] = {}  # pod -> ready and not being deleted, as last seen (live pods)
        self._deleting: set[str] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._listed = threading.Event()
        self._error: BaseException | None = None
        self._watch: watch.Watch | None = None
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------- start and stop

    def start(self, timeout_s: float = 30.0) -> "PodWatch":
        """Start watching; return once the first list is in (pods created after it are timed)."""
        self._thread = threading.Thread(target=self._run, name=f"pod-watch-{self.namespace}", daemon=True)
        self._thread.start()
        if not self._listed.wait(timeout_s):
            self.stop()
            raise KubeError(f"watch pods of {self.namespace}/{self.app}: no first list within {timeout_s:g}s"
                            + (f" ({self._error})" if self._error else ""))
        return self

    def stop(self, timeout_s: float = WATCH_S + 5) -> None:
        self._stopping.set()
        current = self._watch
        if current is not None:
            current.stop()  # shuts the stream's socket: the thread's read returns now
        if self._thread is not None:
            self._thread.join(timeout_s)

    def __enter__(self) -> "PodWatch":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----------------------------------------------------------------- what it saw

    def pods(self) -> list[PodRecord]:
        with self._lock:
            return [PodRecord(**asdict(r)) for r in self._records.values()]

    def seen(self) -> list[PodEvent]:
        with self._lock:
            return list(self.events)

    def summary(self) -> dict[str, Any]:
        pods = self.pods()
        return {"pods": len(pods), "timed": sum(p.created_to_ready_s is not None for p in pods),
                "late": sum(p.late for p in pods), "listed": sum(p.created_at is None for p in pods),
                "streams": self.streams, "ended_early": self.ended_early, "breaks": self.breaks,
                "relists": self.relists, "max_blind_s": self.max_blind_s, "dropped": len(self._dropped),
                "error": None if self._error is None else f"{type(self._error).__name__}: {self._error}"[:300]}

    # ----------------------------------------------------------------- the thread

    def _run(self) -> None:
        selector = f"app={self.app}"
        version: str | None = None
        blind_since: float | None = None  # when the watch last stopped seeing (a stream's end, or a list)
        while not self._stopping.is_set():
            try:
                if version is None:
                    listed = self.core.list_namespaced_pod(self.namespace, label_selector=selector,
                                                           _request_timeout=(5.0, 15.0))
                    with self._lock:
                        relisted = self._listed.is_set()
                        for pod in listed.items:
                            self._take("LISTED", pod, late=relisted)
                        names = {pod.metadata.name for pod in listed.items}
                        for name in [n for n in self._routed if n not in names]:
                            self._gone(name, "late")  # deleted while the watch was blind
                    version = listed.metadata.resource_version
                    blind_since = self.clock()
                    self._listed.set()
                connected: list[float] = []

                def open_stream(*args, **kwargs):
                    answer = self.core.list_namespaced_pod(*args, **kwargs)
                    connected.append(self.clock())  # the server registered the watch by now
                    return answer

                w = watch.Watch(return_type=V1Pod)
                self._watch = w
                if self._stopping.is_set():
                    break  # stop() came before this stream was known to it
                opened = self.clock()
                try:
                    for event in w.stream(open_stream, self.namespace, label_selector=selector,
                                          resource_version=version, allow_watch_bookmarks=True,
                                          timeout_seconds=WATCH_S, _request_timeout=(5.0, WATCH_S + 5.0)):
                        if self._stopping.is_set():
                            break
                        if not isinstance(event, dict):
                            continue  # a blank or undecodable line
                        obj = event.get("object")
                        rv = getattr(getattr(obj, "metadata", None), "resource_version", None)
                        if rv:
                            version = rv
                        if event.get("type") not in ("ADDED", "MODIFIED", "DELETED"):
                            continue  # BOOKMARK: only its resourceVersion matters
                        now = self.clock()
                        # What happened while no stream was open is replayed as the next one
                        # opens: an event that soon after a blind spot longer than LATE_AFTER_S
                        # may be early by up to the blind spot.
                        blind = connected[0] - (blind_since if blind_since is not None else connected[0])
                        late = blind > LATE_AFTER_S and now - connected[0] <= REPLAY_S
                        with self._lock:
                            self._take(event["type"], obj, late=late)
                finally:
                    w.stop()
                    self._watch = None
                    if connected:
                        self.streams += 1
                        self.max_blind_s = max(self.max_blind_s, connected[0] - (blind_since or connected[0]))
                        blind_since = self.clock()
                        if not self._stopping.is_set() and blind_since - opened < WATCH_S - 1:
                            self.ended_early += 1  # cut before the server's timeout: resumed at once
            except Exception as error:  # noqa: BLE001 - a measuring thread must outlive any answer
                if self._stopping.is_set():
                    break  # stop() shut the stream's socket
                self._error = error
                if isinstance(error, ApiException) and error.status == 410:
                    version = None  # expired: what happened meanwhile comes from a fresh list
                    self.relists += 1
                else:
                    # a broken stream (urllib3, OSError), an API server that answered badly, or
                    # anything unexpected (said in summary()["error"]): resume after a pause
                    self.breaks += 1
                self._stopping.wait(RETRY_S)

    def _take(self, kind: str, pod, *, late: bool) -> None:
        """Record one pod event (the lock is held)."""
        now = self.clock()
        name = pod.metadata.name
        record = self._records.get(name)
        if record is None:
            if kind == "DELETED":
                return
            if len(self._records) >= self.max_pods:
                self._dropped.add(name)
                return
            record = PodRecord(name, (pod.metadata.labels or {}).get(VERSION_LABEL),
                               api_created=pod.metadata.creation_timestamp)
            self._records[name] = record
            if kind == "LISTED":
                record.late = True  # existed before the watch, or created during a gap: not timed
            else:
                record.created_at = now
                record.late = late
                self.events.append(PodEvent(now, "created", name, "late" if late else ""))
            self._routed[name] = False
        record.node = (pod.spec.node_name if pod.spec else None) or record.node
        statuses = (pod.status.container_statuses or []) if pod.status else []
        record.container_id = next((s.container_id for s in statuses if s.container_id), record.container_id)
        condition = _ready_condition(pod)
        ready = condition is not None and condition.status == "True"
        deleting = kind == "DELETED" or pod.metadata.deletion_timestamp is not None
        mark = "late" if late else ""
        first_ready = ready and record.ready_at is None
        if first_ready:
            record.ready_at = now
            record.api_ready = condition.last_transition_time
            record.late = record.late or late
            self.events.append(PodEvent(now, "ready", name, mark))
        routed, was = ready and not deleting, self._routed.get(name, False)
        if routed and not was and not first_ready:
            self.events.append(PodEvent(now, "ready", name, "again"))
        elif was and not routed and not deleting:
            self.events.append(PodEvent(now, "unready", name, mark))
        self._routed[name] = routed
        if deleting and kind != "DELETED" and name not in self._deleting:
            self._deleting.add(name)
            self.events.append(PodEvent(now, "deleting", name, mark))
        if kind == "DELETED":
            self._gone(name, mark)

    def _gone(self, name: str, mark: str) -> None:
        self.events.append(PodEvent(self.clock(), "deleted", name, mark))
        self._routed.pop(name, None)

__all__ = ["ENDPOINT_EVENTS", "LATE_AFTER_S", "PodEvent", "PodRecord", "PodWatch", "REPLAY_S", "WATCH_S"]
