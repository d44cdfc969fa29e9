"""Alert rules: Prometheus-style rules on the service under test that page a person.

A rule computes its metric (error rate, or p99 latency) over the last ``window``, every
``evaluation_interval`` (on a grid from the window's start, as Prometheus evaluates
groups), and fires once the value has stayed above ``threshold`` for ``for`` seconds:
the first evaluation that sees it above starts the pending time, an evaluation that
sees it at or below resets it. The first rule to fire pages the on-call person
(``sim.oncall``); after that, rules are no longer evaluated (nobody is paged twice).

The service was running before the rollout started, so a window reaching back before
t = 0 holds the traffic served then: the stable version alone, at its baseline (the
world as it stood at t = 0, before any change), drawn once per run in pieces that end
where the first windows start (:meth:`Monitor.draw_history`). An alert therefore never
judges a few seconds of traffic as if they were a whole window.

The fast world counts traffic per interval between two state changes, not per request,
so the traffic inside a window whose start falls inside a counted interval is drawn:
see :meth:`Monitor.total_at`.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from typing import TYPE_CHECKING

import numpy as np

from rolloutlab.results.table import DetectedBy
from rolloutlab.results.timeline import TimelineEvent, WorldEvent
from rolloutlab.scenarios.schema import AlertRule
from rolloutlab.sim.oncall import on_call
from rolloutlab.sim.traffic import draw_window, expected_arrivals, rate_at
from rolloutlab.strategies import Role
from rolloutlab.strategies.observation import WindowStats

if TYPE_CHECKING:
    from rolloutlab.sim.world import World

ROLES = (Role.STABLE, Role.CANARY)


def page(world: World, what: TimelineEvent) -> None:
    """Monitoring fired (an alert rule, or the failing health check): the first such
    moment is when the release was detected, unless the controller had already aborted
    it; the on-call person is paged."""
    now = world.env.now
    world.alert_fired_at = now
    if world.detected_at is None:
        world.detected_at, world.detected_by = now, DetectedBy.ALERT.value
        if world.on_detected is not None:
            world.on_detected(world)
    if world.record_timeline:
        world.pending_events.append(what)
    world.env.process(on_call(world))


class Monitor:
    """The alert rules of a scenario, and the record of recent traffic they read."""

    skips_unreachable = True
    """Evaluations that cannot breach are skipped (the per-request reference skips none)."""

    def __init__(self, world: World) -> None:
        self.world = world
        self._segments: deque = deque()
        self._split_cache: dict[float, tuple[int, int]] = {}
        self._latency_snapshots: dict[str, deque] = {}  # per latency rule: (time, cumulative buckets)
        self._longest_window = max((r.window for r in world.scenario.monitoring.alerts), default=0.0)

    def draw_history(self, rng: np.random.Generator) -> None:
        """The traffic the stable served before the rollout, back to the start of the
        longest window: cut at every time a window will start from before t = 0, so
        windows start on a piece's edge, and drawn piece by piece (requests ~ Poisson,
        failures ~ Binomial, latencies ~ Multinomial, as the world draws its traffic).
        Counts are kept relative to t = 0 (negative before it)."""
        world = self.world
        rules = world.scenario.monitoring.alerts
        if not rules:
            return
        edges = {0.0, -self._longest_window}
        for rule in rules:
            k = 1
            while k * rule.evaluation_interval < rule.window:
                edges.add(k * rule.evaluation_interval - rule.window)
                k += 1
        cuts = sorted(edges)
        traffic = world.scenario.traffic
        latency = world.latency_model(Role.STABLE, 0.0) if world.want_latency else None
        pieces = []
        for t0, t1 in itertools.pairwise(cuts):
            expected = expected_arrivals(traffic.profile, traffic.rps, t0, t1) * world.arrival_factor
            p = world.failure_probability(Role.STABLE, expected / (t1 - t0), 0.0)[0]
            pieces.append((t0, t1, draw_window(rng, expected, p, latency)))
        requests = errors = 0
        buckets = np.zeros(len(pieces[0][2].latency_buckets), dtype=np.int64) if latency is not None else None
        history = []
        for t0, t1, draw in reversed(pieces):  # cumulative counts from t = 0 backwards
            requests, errors = requests - draw.requests, errors - draw.errors
            history.append((t0, t1, requests, errors, draw.requests, draw.errors))
            if buckets is not None:
                buckets = buckets - np.asarray(draw.latency_buckets, dtype=np.int64)
                for rule in rules:
                    if rule.metric == "latency_p99":
                        self._latency_snapshots.setdefault(rule.name, deque()).appendleft((t0, buckets))
        self._segments.extendleft(history)
        if buckets is not None:
            for rule in rules:
                if rule.metric == "latency_p99":
                    self._latency_snapshots[rule.name].append((0.0, np.zeros_like(buckets)))

    # ------------------------------------------------------------------ the rule

    def watch(self, rule: AlertRule):
        """One rule, evaluated until some alert fires.

        Evaluations that cannot breach are skipped: while the world stays in a state whose
        expected error rate is so far below the threshold that a window exceeding it is
        out of reach (more than 8 standard deviations, see ``cannot_breach``), the rule
        sleeps until the world changes. The window's start is then read from the traffic
        log, splitting a logged interval exactly (``total_at``)."""
        world = self.world
        env = world.env
        interval = rule.evaluation_interval
        pending_since: float | None = None
        while world.alert_fired_at is None:
            if pending_since is None and self.cannot_breach(rule):
                yield world.changed
                continue
            now = env.now
            tick = (math.floor(now / interval + 1e-9) + 1) * interval
            yield env.timeout(tick - now)
            world.sync()
            now = env.now
            value = self.window_value(rule, now)
            if value is None or value <= rule.threshold:
                pending_since = None
                continue
            pending_since = now if pending_since is None else pending_since
            if now - pending_since >= rule.for_:
                page(world, TimelineEvent(WorldEvent.ALERT_FIRED.value, rule.name))

    def cannot_breach(self, rule: AlertRule) -> bool:
        """Whether the error rate of the world as it is now cannot reach ``threshold`` in
        a window (its expectation 8 standard deviations below it)."""
        if not self.skips_unreachable or rule.metric != "error_rate":
            return False  # latency alerts are evaluated at every tick
        world = self.world
        now = world.env.now
        rate = rate_at(world.scenario.traffic.profile, world.scenario.traffic.rps, now) * world.arrival_factor
        shares = world.shares(now)
        p = sum(shares[r] * world.failure_probability(r, rate * shares[r], now)[0] for r in ROLES if shares[r] > 0)
        n = rate * rule.window
        return p < rule.threshold and n * rule.threshold >= n * p + 8.0 * math.sqrt(n * p + 1.0) + 8.0

    def window_value(self, rule: AlertRule, now: float) -> float | None:
        """The rule's metric over the window ending ``now`` (None: no requests in it)."""
        world = self.world
        start = now - rule.window
        if rule.metric == "error_rate":
            req0, err0 = self.total_at(start)
            requests, errors = world.total_requests - req0, world.total_errors - err0
            return errors / requests if requests > 0 else None
        if not world.want_latency:
            return None
        snapshots = self._latency_snapshots.setdefault(rule.name, deque())
        snapshots.append((now, world.traffic[Role.STABLE].buckets + world.traffic[Role.CANARY].buckets))
        while len(snapshots) > 1 and snapshots[1][0] <= start:
            snapshots.popleft()
        then, current = snapshots[0][1], snapshots[-1][1]
        diff = tuple(int(x) for x in (current - then)) if len(snapshots) > 1 else tuple(int(x) for x in current)
        return WindowStats(now - start, sum(diff), 0, diff).latency_quantile(0.99)

    # ------------------------------------------------------------------ traffic log

    def log_traffic(self, t0: float, t1: float, req0: int, err0: int) -> None:
        """Keep the traffic of recent intervals, for windows that start inside one."""
        world = self.world
        segments = self._segments
        segments.append((t0, t1, req0, err0, world.total_requests - req0, world.total_errors - err0))
        horizon = t1 - self._longest_window - 1.0
        while segments and segments[0][1] < horizon:
            segments.popleft()

    def total_at(self, when: float) -> tuple[int, int]:
        """Cumulative (requests, errors) of the service under test at ``when``. Inside a
        logged interval of n requests and e errors, the share before ``when`` is drawn
        as Poisson arrivals are distributed given their count: requests ~ Binomial(n,
        fraction), errors among them ~ Hypergeometric (exact, and consistent with the
        totals already counted). Each split is remembered, so a time has one answer."""
        if when in self._split_cache:
            return self._split_cache[when]
        world = self.world
        for seg in self._segments:
            t0, t1, req0, err0, n, e = seg
            if t0 <= when <= t1:
                if when == t0 or n == 0:
                    result = (req0, err0)
                elif when == t1:
                    result = (req0 + n, err0 + e)
                else:
                    rng = world.streams["alerts"]
                    k = int(rng.binomial(n, (when - t0) / (t1 - t0)))
                    ek = int(rng.hypergeometric(e, n - e, k)) if k and e else 0
                    result = (req0 + k, err0 + ek)
                self._split_cache[when] = result
                return result
        if not self._segments or when < self._segments[0][0]:
            return (0, 0)
        return (world.total_requests, world.total_errors)
