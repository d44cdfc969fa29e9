"""Regions: the places (regions, clusters) a service runs in, each with its share of users.

A scenario without ``regions`` is one place, as before. With them, every strategy rolls
out region by region: in the waves its ``waves`` block names, or all regions at once
when it has none (that is the single-wave strategy waves are compared with). Each region
runs its own pods of the service under test behind its own router, takes
``traffic_share`` of the requests and of the users, and may differ from the service's
defaults in replicas, zones, latency and capacity; a fault with ``region`` hits that one.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from rolloutlab.errors import FieldError
from rolloutlab.scenarios.schema.fields import Label, Probability, Replicas, RequestRate, _Model
from rolloutlab.scenarios.schema.service import Latency


class Region(_Model):
    """One region (or cluster) running the service under test."""

    name: Label
    """Region name, as a strategy's ``waves`` and a fault's ``region`` name it."""
    traffic_share: Annotated[Probability, Field(gt=0)]
    """Share of all requests and users served here; the regions' shares add up to 1."""
    replicas: Replicas | None = None
    """Pods of the stable version here; default the service's replicas times the share
    (at least 1)."""
    zones: Annotated[list[Label], Field(min_length=1)] | None = None
    """Availability zones here; default the service's."""
    latency: Latency | None = None
    """Response time of a healthy replica here; default the service's."""
    capacity_rps: RequestRate | None = None
    """Requests per second one replica serves here before it saturates; default the service's."""

    @model_validator(mode="after")
    def _zones_once(self) -> Region:
        for i, zone in enumerate(self.zones or ()):
            if zone in (self.zones or [])[:i]:
                raise FieldError(("zones", i), f"zone {zone!r} is listed twice")
        return self


def check_regions(regions: list[Region]) -> None:
    """Names unique, shares adding up to 1 (a rounding error of 1e-6 is forgiven)."""
    first: dict[str, int] = {}
    for i, region in enumerate(regions):
        if region.name in first:
            raise FieldError(("regions", i, "name"),
                             f"region {region.name!r} is listed twice (first at regions[{first[region.name]}])")
        first[region.name] = i
    total = sum(r.traffic_share for r in regions)
    if regions and abs(total - 1.0) > 1e-6:
        raise FieldError(("regions", len(regions) - 1, "traffic_share"),
                         f"the regions' traffic_share add up to {total:.6g}, not 1: every request goes to one region")
