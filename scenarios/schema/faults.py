"""Faults: what else goes wrong at scheduled times, independent of the release."""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field

from rolloutlab.scenarios.schema.fields import (
    AddedMilliseconds,
    Label,
    Nodes,
    PositiveSeconds,
    Probability,
    Replicas,
    Seconds,
    ServiceName,
    _Model,
)


class PodKillFault(_Model):
    """Pods are killed at ``at`` (OOM kill, preemption, a chaos tool)."""

    kind: Literal["pod_kill"] = "pod_kill"
    at: Seconds
    """When it happens, from the start of the simulated window."""
    region: Label | None = None
    """The region it hits (a scenario with ``regions``); default every region."""
    service: ServiceName | None = None
    """Whose pods; default the service under test."""
    count: Replicas = 1
    """How many pods die."""
    version: Literal["stable", "canary", "any"] = "any"
    """Which version's pods: ``canary`` means the version being released (green, in
    blue-green)."""


class NodeLossFault(_Model):
    """Nodes vanish. Their pods keep counting as running until the control plane evicts
    them ``eviction_delay`` later (Kubernetes' default pod-eviction-timeout is 300 s);
    only then are replacements created."""

    kind: Literal["node_loss"] = "node_loss"
    at: Seconds
    """When it happens, from the start of the simulated window."""
    region: Label | None = None
    """The region it hits (a scenario with ``regions``); default every region."""
    service: ServiceName | None = None
    """Whose nodes; default the service under test."""
    count: Nodes = 1
    """How many nodes are lost."""
    eviction_delay: Seconds = 300.0
    """Time until pods on the lost nodes are evicted and rescheduled."""
    duration: PositiveSeconds | None = None
    """When the nodes come back; default never."""


class ZoneOutageFault(_Model):
    """A whole availability zone goes dark: every node in it, for every service."""

    kind: Literal["zone_outage"] = "zone_outage"
    at: Seconds
    """When it happens, from the start of the simulated window."""
    region: Label | None = None
    """The region it hits (a scenario with ``regions``); default every region."""
    zone: Label
    """The zone that fails."""
    duration: PositiveSeconds = 600.0
    """How long it stays down."""


class DependencyFailureFault(_Model):
    """A service others depend on fails part of its calls for a while."""

    kind: Literal["dependency_failure"] = "dependency_failure"
    at: Seconds
    """When it happens, from the start of the simulated window."""
    region: Label | None = None
    """The region it hits (a scenario with ``regions``); default every region."""
    service: ServiceName
    """The failing service."""
    error_rate: Probability = 1.0
    """Probability that a call to it fails."""
    duration: PositiveSeconds = 300.0
    """How long it lasts."""


class LatencyInjectionFault(_Model):
    """A service becomes slower for a while (network trouble, noisy neighbour)."""

    kind: Literal["latency_injection"] = "latency_injection"
    at: Seconds
    """When it happens, from the start of the simulated window."""
    region: Label | None = None
    """The region it hits (a scenario with ``regions``); default every region."""
    service: ServiceName
    """The slowed service."""
    added_ms: Annotated[AddedMilliseconds, Field(gt=0)] = 200.0
    """Milliseconds added to each of its responses."""
    duration: PositiveSeconds = 300.0
    """How long it lasts."""


Fault = Annotated[
    Union[
        PodKillFault,
        NodeLossFault,
        ZoneOutageFault,
        DependencyFailureFault,
        LatencyInjectionFault,
    ],
    Field(discriminator="kind"),
]
"""Something that goes wrong at a scheduled time, chosen by ``kind``."""
