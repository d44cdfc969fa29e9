"""Monitoring's health check of the service under test (``monitoring.health_check``).

A blackbox probe sends one request to the service, through its Service as a user's
request goes, every ``interval`` from the window's start. A check fails when that
request fails (the version it lands on fails it: defects, overload, no ready pod,
inherited failures) or takes longer than ``timeout``. After ``unhealthy_threshold``
failed checks in a row the service is down and the on-call person is paged, as an alert
would (``sim.alerts.page``); after ``healthy_threshold`` passes in a row it is healthy
again (an event on the timeline: the person is paged once). The checks are a
``sim.probes.CheckSeries``: decided from pre-drawn uniforms, one event per flip.

The check pages through the same pager as the alert rules: a scenario without alert
rules (``alerts: []``) pages nobody, so its health check is not run at all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rolloutlab.results.timeline import TimelineEvent, WorldEvent
from rolloutlab.sim.alerts import page
from rolloutlab.sim.probes import CheckSeries
from rolloutlab.sim.traffic import combine_failure
from rolloutlab.strategies import Role

if TYPE_CHECKING:
    from rolloutlab.sim.world import World

ROLES = (Role.STABLE, Role.CANARY)


class ServiceHealthCheck:
    """The health check of the service under test, paging once when it goes down."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.check = world.scenario.monitoring.health_check
        self.series: CheckSeries | None = None
        if world.scenario.monitoring.alerts:
            self.series = CheckSeries(world.env, lambda: world.extra_stream("checks"), 0.0, self.check.interval, self.check.unhealthy_threshold,
                                      self.check.healthy_threshold, self._flip)

    def world_changed(self) -> None:
        """Set the checks' failure probability to what the world now makes it."""
        if self.series is not None:
            self.series.set_failure_probability(self.failure_probability(self.world.env.now))

    def failure_probability(self, now: float) -> float:
        """Chance that one check fails now: it lands on a version as a user's request does,
        and fails as that version fails its requests or answers later than ``timeout``."""
        world = self.world
        shares = world.shares(now)
        timeout_ms = 1000.0 * self.check.timeout
        q = 0.0
        for role in ROLES:
            if shares[role] > 0:
                failed = world.failure_probability(role, world.arrival_rate(role, now, shares), now, schedule=False)[0]
                q += shares[role] * combine_failure(failed, world.latency_model(role, now).exceedance(timeout_ms))
        return min(1.0, q)

    def _flip(self, series: CheckSeries) -> None:
        world = self.world
        if not series.up and world.alert_fired_at is None:
            page(world, TimelineEvent(WorldEvent.HEALTH_CHECK_FAILED.value,
                                      f"{self.check.unhealthy_threshold} checks in a row failed"))
        elif world.record_timeline:
            world.pending_events.append(TimelineEvent(
                (WorldEvent.HEALTH_CHECK_PASSED if series.up else WorldEvent.HEALTH_CHECK_FAILED).value))
        if world.paged and not world.record_timeline:
            series.cancel()  # nobody is paged twice and no timeline shows it: stop checking
            self.series = None
