"""The scenario: every section together, the checks that join them (a fault's service
exists, an ``at:`` falls inside the window), and loading scenario files."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

from pydantic import Field, model_validator

from rolloutlab.errors import FieldError, InputError
from rolloutlab.scenarios.schema.defects import IncompatibleMigrationDefect, Release
from rolloutlab.scenarios.schema.expectations import (
    DEFAULT_STRATEGIES,
    ExpectationEntry,
    is_strategy_path,
)
from rolloutlab.scenarios.schema.faults import Fault, NodeLossFault, ZoneOutageFault
from rolloutlab.scenarios.schema.fields import MAX_RPS, Label, Seed, Window, _format_seconds, _Model
from rolloutlab.scenarios.schema.migrations import Migration
from rolloutlab.scenarios.schema.monitoring import History, HumanResponse, Monitoring, ServiceLevelObjective
from rolloutlab.scenarios.schema.regions import Region, check_regions
from rolloutlab.scenarios.schema.service import Dependency, Service
from rolloutlab.scenarios.schema.traffic import ConstantProfile, DiurnalProfile, SpikesProfile, Traffic
from rolloutlab.strategies.files import bundled_strategy_names
from rolloutlab.strategies.yaml_input import load_model_file

BUNDLED_SCENARIOS_DIR = Path(__file__).resolve().parent.parent
"""Folder holding the ready-made scenario files shipped with rolloutlab."""
SCENARIO_LIBRARY_DIR = BUNDLED_SCENARIOS_DIR / "library"
"""The scenario library: failure scenarios with expectations, for ``rolloutlab check``."""


class Scenario(_Model):
    """A world to test release strategies in; see the package docstring for conventions."""

    name: Label
    """Short identifier, shown in reports."""
    description: str = ""
    """What the scenario models and why it matters."""
    seed: Seed | None = None
    """Random seed for reproducible runs; default a fresh seed per run."""
    duration: Window = 1800.0
    """Length of the simulated window, starting when the rollout starts."""
    services: Annotated[list[Service], Field(min_length=1)] = Field(
        default_factory=lambda: [Service(name="app", under_test=True)]
    )
    """The services; exactly one is under test (marked, or else the first)."""
    dependencies: list[Dependency] = Field(default_factory=list)
    """Who calls whom."""
    traffic: Traffic = Field(default_factory=Traffic)
    """Requests arriving at the service under test."""
    regions: list[Region] = Field(default_factory=list)
    """Where the service under test runs, each region with its share of the traffic
    (``scenarios.schema.regions``); empty: one place."""
    release: Release = Field(default_factory=Release)
    """How likely the release is to be bad, and how."""
    faults: list[Fault] = Field(default_factory=list)
    """Failures injected at fixed times, independent of the release."""
    migration: Migration | None = None
    """A schema migration that goes with the release, if any."""
    monitoring: Monitoring = Field(default_factory=Monitoring)
    """Metrics and alert rules."""
    response: HumanResponse = Field(default_factory=HumanResponse)
    """How people respond to alerts."""
    history: History | None = None
    """Settings for simulating months of deployments (DORA history mode)."""
    slo: ServiceLevelObjective | None = None
    """The service level objective reports measure availability and error budget against
    (``{objective: 99.9%, window: 30d}``); None when the scenario states none."""
    strategies: Annotated[list[Label], Field(min_length=1)] = Field(
        default_factory=lambda: list(DEFAULT_STRATEGIES)
    )
    """Strategies ``rolloutlab check`` runs this scenario with: bundled names
    (``canary``, ``blue-green``, ``rolling``) or strategy files, relative to the scenario
    file (``strategies/canary-latency.yaml``). Default: the three bundled ones."""
    expect: list[ExpectationEntry] = Field(default_factory=list)
    """Requirements the outcome must meet (``rolloutlab check``)."""

    @property
    def service_under_test(self) -> Service:
        """The service whose releases are studied."""
        return next(s for s in self.services if s.under_test)

    def service(self, name: str) -> Service:
        """The service called ``name``; KeyError if there is none."""
        for candidate in self.services:
            if candidate.name == name:
                return candidate
        raise KeyError(name)

    @model_validator(mode="after")
    def _check_references(self) -> Scenario:
        self._check_services()
        names = {s.name for s in self.services}
        self._check_dependencies(names)
        order = self._check_cycles()
        self._check_traffic()
        self._check_load(order)
        self._check_faults(names)
        self._check_migration()
        self._check_strategies()
        self._check_alerts(names)
        self._check_slo()
        return self

    def _check_services(self) -> None:
        first_index: dict[str, int] = {}
        under_test: list[int] = []
        for i, service in enumerate(self.services):
            if service.name in first_index:
                raise FieldError(
                    ("services", i, "name"),
                    f"service name {service.name!r} is used twice "
                    f"(first at services[{first_index[service.name]}])",
                )
            first_index[service.name] = i
            if service.under_test:
                under_test.append(i)
        if len(under_test) > 1:
            raise FieldError(
                ("services", under_test[1], "under_test"),
                f"only one service can be under test; services[{under_test[0]}] already is",
            )
        if not under_test:
            self.services[0].under_test = True

    def _check_dependencies(self, names: set[str]) -> None:
        edges: dict[tuple[str, str], int] = {}
        for i, dep in enumerate(self.dependencies):
            for end in ("caller", "callee"):
                if getattr(dep, end) not in names:
                    raise FieldError(
                        ("dependencies", i, end), _unknown_service(getattr(dep, end), names)
                    )
            if dep.caller == dep.callee:
                raise FieldError(
                    ("dependencies", i, "callee"), f"service {dep.caller!r} cannot call itself"
                )
            edge = (dep.caller, dep.callee)
            if edge in edges:
                raise FieldError(
                    ("dependencies", i),
                    f"{dep.caller} -> {dep.callee} is listed twice "
                    f"(first at dependencies[{edges[edge]}])",
                )
            edges[edge] = i

    def _check_cycles(self) -> list[str]:
        """Services callees-last (callers before the services they call); a cycle of calls
        is an error at the dependency that closes it: each request would call round it
        without end, and the simulator routes calls in this order."""
        callers = {s.name: 0 for s in self.services}
        calls: dict[str, list[tuple[str, int]]] = {s.name: [] for s in self.services}
        for i, dep in enumerate(self.dependencies):
            callers[dep.callee] += 1
            calls[dep.caller].append((dep.callee, i))
        order = [name for name, n in callers.items() if n == 0]
        for name in order:  # Kahn's algorithm; `order` grows while it is walked
            for callee, _ in calls[name]:
                callers[callee] -= 1
                if callers[callee] == 0:
                    order.append(callee)
        if len(order) == len(self.services):
            return order
        # A service left over has a caller left over (the others were all counted off),
        # so walking from callee to caller within them must come round to a repeat.
        left = {name for name, n in callers.items() if n > 0}
        walked: list[tuple[str, int]] = []  # (callee, index of the dependency calling it)
        name = min(left)
        while name not in [callee for callee, _ in walked]:
            i = next(i for i, d in enumerate(self.dependencies) if d.callee == name and d.caller in left)
            walked.append((name, i))
            name = self.dependencies[i].caller
        cycle = [i for callee, i in walked[[c for c, _ in walked].index(name):]][::-1]
        names = " -> ".join([self.dependencies[i].caller for i in cycle] + [self.dependencies[cycle[0]].caller])
        raise FieldError(
            ("dependencies", max(cycle)),
            f"calls go round in a circle ({names}): every request would call itself again",
        )

    def _check_load(self, order: list[str]) -> None:
        """The most requests per second any service receives at the traffic's peak must
        stay within what a service can receive: a bound on every rate alone does not
        bound rps x spikes x calls along a chain of services."""
        if self.dependencies:
            entries = [s.name for s in self.services if not any(d.callee == s.name for d in self.dependencies)]
            arrivals = {name: (1.0 / len(entries) if name in entries else 0.0) for name in order}
            for name in order:
                for dep in self.dependencies:
                    if dep.caller == name:
                        arrivals[dep.callee] += arrivals[name] * dep.calls_per_request
        else:
            arrivals = {self.service_under_test.name: 1.0}
        peak = self.traffic.rps * _peak_factor(self.traffic.profile)
        for name, factor in arrivals.items():
            if peak * factor > MAX_RPS:
                raise FieldError(
                    ("traffic", "rps"),
                    f"service {name!r} would receive up to {peak * factor:.3g} requests per second "
                    f"(traffic.rps at the profile's peak, times calls_per_request along the "
                    f"dependencies): above {MAX_RPS:g}, the most one service can receive",
                )

    def _check_alerts(self, names: set[str]) -> None:
        written = "alerts" in self.monitoring.model_fields_set  # not the default rule
        for i, alert in enumerate(self.monitoring.alerts):
            if alert.service is not None and alert.service not in names:
                raise FieldError(
                    ("monitoring", "alerts", i, "service"), _unknown_service(alert.service, names)
                )
            if written and alert.for_ >= self.duration:
                raise FieldError(
                    ("monitoring", "alerts", i, "for"),
                    f"the condition must hold for {_format_seconds(alert.for_)}, but the simulated "
                    f"window is {_format_seconds(self.duration)}: this alert can never fire in it",
                )

    def _check_slo(self) -> None:
        if self.slo is not None and self.slo.window < self.duration:
            raise FieldError(
                ("slo", "window"),
                f"the SLO window ({_format_seconds(self.slo.window)}) is shorter than the "
                f"simulated window ({_format_seconds(self.duration)}) one deployment is measured over",
            )

    def _check_traffic(self) -> None:
        profile = self.traffic.profile
        if isinstance(profile, SpikesProfile):
            for i, spike in enumerate(profile.spikes):
                self._check_time(("traffic", "profile", "spikes", i, "at"), spike.at)

    def _check_faults(self, names: set[str]) -> None:
        check_regions(self.regions)
        zones = {zone for service in self.services for zone in service.zones}
        zones |= {zone for region in self.regions for zone in region.zones or ()}
        regions = [r.name for r in self.regions]
        for i, fault in enumerate(self.faults):
            self._check_time(("faults", i, "at"), fault.at)
            if fault.region is not None and fault.region not in regions:
                known = ", ".join(regions) if regions else "the scenario has no regions"
                raise FieldError(("faults", i, "region"), f"no region {fault.region!r} ({known})")
            service_name = getattr(fault, "service", None)
            if service_name is not None and service_name not in names:
                raise FieldError(("faults", i, "service"), _unknown_service(service_name, names))
            if isinstance(fault, ZoneOutageFault) and fault.zone not in zones:
                raise FieldError(
                    ("faults", i, "zone"),
                    f"no service runs in zone {fault.zone!r} (zones: {', '.join(sorted(zones))})",
                )
            if isinstance(fault, NodeLossFault):
                service = (
                    self.service(fault.service) if fault.service else self.service_under_test
                )
                if service.nodes is not None and fault.count > service.nodes:
                    raise FieldError(
                        ("faults", i, "count"),
                        f"cannot lose {fault.count} nodes: service {service.name!r} "
                        f"runs on {service.nodes}",
                    )

    def _check_migration(self) -> None:
        needs_migration = [
            i
            for i, defect in enumerate(self.release.defects)
            if isinstance(defect, IncompatibleMigrationDefect)
        ]
        if self.migration is None:
            if needs_migration:
                raise FieldError(
                    ("release", "defects", needs_migration[0]),
                    "an incompatible_migration defect needs a 'migration' section "
                    "(which schema steps run when, and how long a repair takes)",
                )
            return
        for i, step in enumerate(self.migration.steps):
            if isinstance(step.at, float):
                self._check_time(("migration", "steps", i, "at"), step.at)
        for i in needs_migration:
            defect = self.release.defects[i]
            assert isinstance(defect, IncompatibleMigrationDefect)
            if defect.required_schema is not None and not (
                self.migration.initial_schema
                <= defect.required_schema
                <= self.migration.final_schema
            ):
                raise FieldError(
                    ("release", "defects", i, "required_schema"),
                    f"schema version {defect.required_schema} is never reached: the migration "
                    f"goes from {self.migration.initial_schema} to {self.migration.final_schema}",
                )

    def _check_strategies(self) -> None:
        if not self.regions:
            for i, entry in enumerate(self.expect):
                if entry.assertion.metric == "blast_radius":
                    raise FieldError(("expect", i, "assert"), "blast_radius is measured across regions: "
                                                               "this scenario has no regions")
        bundled = bundled_strategy_names()
        seen: dict[str, int] = {}
        for i, entry in enumerate(self.strategies):
            if entry in seen:
                raise FieldError(
                    ("strategies", i), f"{entry!r} is listed twice (first at strategies[{seen[entry]}])"
                )
            seen[entry] = i
            if not is_strategy_path(entry) and entry not in bundled:
                raise FieldError(
                    ("strategies", i),
                    f"no bundled strategy {entry!r} (bundled: {', '.join(bundled)}); a strategy "
                    "file is named by its path ending in .yaml, relative to the scenario file",
                )

    def _check_time(self, path: tuple[str | int, ...], at: float) -> None:
        if at >= self.duration:
            raise FieldError(
                path,
                f"{_format_seconds(at)} is after the end of the simulated window "
                f"(duration {_format_seconds(self.duration)})",
            )


def _peak_factor(profile: ConstantProfile | DiurnalProfile | SpikesProfile) -> float:
    """Highest rate of the profile as a multiple of traffic.rps (overlapping spikes multiply)."""
    if isinstance(profile, DiurnalProfile):
        return 1.0 + profile.amplitude
    if isinstance(profile, SpikesProfile):
        starts = [spike.at for spike in profile.spikes]
        return max(
            1.0,
            *(
                math.prod(s.multiplier for s in profile.spikes if s.at <= t < s.at + s.duration)
                for t in starts
            ),
        )
    return 1.0


def _unknown_service(name: str, names: set[str]) -> str:
    return f"unknown service {name!r} (services: {', '.join(sorted(names))})"


# --- loading ------------------------------------------------------------------------------


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file; any problem is an InputError naming the line."""
    return load_model_file(path, Scenario)


def bundled_scenario(name: str = "standard") -> Path:
    """Path of a scenario shipped with rolloutlab, by name: ``standard``, or one of the
    library's (``error-spike``)."""
    stem = name[: -len(".yaml")] if name.endswith(".yaml") else name
    if "/" not in stem and "\\" not in stem:
        for folder in (BUNDLED_SCENARIOS_DIR, SCENARIO_LIBRARY_DIR):
            path = folder / f"{stem}.yaml"
            if path.is_file():
                return path
    available = sorted(
        p.stem for folder in (BUNDLED_SCENARIOS_DIR, SCENARIO_LIBRARY_DIR) for p in folder.glob("*.yaml")
    )
    raise InputError(name, f"no bundled scenario of that name (available: {', '.join(available)})")
