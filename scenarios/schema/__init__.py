"""The scenario schema: the world a release strategy is tested in.

A scenario says what runs (services, their pods and how fast pods start), what it serves
(traffic), how likely a release is to be bad and in which way (release defects), what
else goes wrong meanwhile (faults, database migrations), who notices (monitoring, alert
rules, human response), what the team promises its users (``slo``: an availability
objective over a window) and what it requires of the outcome (expectations).
The simulator gives these fields behaviour; this module fixes their names, defaults and
validation, so a scenario file that loads is one the simulator can run.

Conventions for scenario YAML:

- Field names are ``snake_case`` everywhere (``capacity_rps``, ``success_threshold``).
  Two keys are Python keywords and are spelled as in YAML: ``assert`` (an expectation)
  and ``for`` (how long an alert condition must hold, like Prometheus' ``for:``; in an
  expectation, the strategies it is required of).
- Unknown fields are errors, so a typo never silently falls back to a default.
- Durations are seconds: a number (``90``) or a string such as ``"250ms"``, ``"30s"``,
  ``"5m"``, ``"1h30m"``, ``"2d"``. Probabilities and fractions are 0..1 or ``"5%"``.
- Distributions of times (pod start, human response, repairs) are a mapping with a
  ``kind`` (``fixed``, ``uniform``, ``lognormal``, ``exponential``); a bare duration is
  shorthand for ``{kind: fixed, value: ...}``.
- Points in time inside the scenario (``at:``) count from the start of the simulated
  window and must fall inside ``duration``.
- Service names are Kubernetes DNS labels (``checkout-api``) so the same scenario can be
  run live on a cluster.
- Every number is bounded by what it can mean (see :mod:`.fields`): rates up to a
  million requests per second at any service, at most 1,000 pods, times up to a year and
  windows up to a week, periods of at least a second. An integer with a leading zero
  (``010``, octal to YAML 1.1) is refused rather than read as 8.

The schema is split by section, one module each: :mod:`.fields` (scalar types and their
bounds), :mod:`.distributions`, :mod:`.service`, :mod:`.traffic`, :mod:`.defects`,
:mod:`.faults`, :mod:`.migrations`, :mod:`.monitoring`, :mod:`.expectations` and
:mod:`.scenario` (the whole, and loading files). Import from this package, not from the
modules: they are free to move names between them.
"""

from __future__ import annotations

from rolloutlab.scenarios.schema.defects import (
    CrashOnStartDefect,
    Defect,
    ErrorRateDefect,
    FullLoadOnlyDefect,
    IncompatibleMigrationDefect,
    LatencyDefect,
    LeakDefect,
    Release,
    SideEffectsDefect,
)
from rolloutlab.scenarios.schema.distributions import (
    Distribution,
    ExponentialDistribution,
    FixedDistribution,
    LognormalDistribution,
    UniformDistribution,
)
from rolloutlab.scenarios.schema.expectations import (
    ALL_STRATEGIES,
    DEFAULT_STRATEGIES,
    METRICS,
    STATS,
    Assertion,
    Expectation,
    is_strategy_path,
    parse_assertion,
)
from rolloutlab.scenarios.schema.faults import (
    DependencyFailureFault,
    Fault,
    LatencyInjectionFault,
    NodeLossFault,
    PodKillFault,
    ZoneOutageFault,
)
from rolloutlab.scenarios.schema.migrations import (
    Migration,
    MigrationStep,
    SchemaCompatibility,
    SchemaRange,
)
from rolloutlab.scenarios.schema.monitoring import (
    AlertRule,
    HealthCheck,
    History,
    HumanResponse,
    Monitoring,
    ServiceLevelObjective,
)
from rolloutlab.scenarios.schema.regions import Region
from rolloutlab.scenarios.schema.scenario import (
    BUNDLED_SCENARIOS_DIR,
    SCENARIO_LIBRARY_DIR,
    Scenario,
    bundled_scenario,
    load_scenario,
)
from rolloutlab.scenarios.schema.service import (
    Dependency,
    Latency,
    PodTiming,
    ReadinessProbe,
    Service,
)
from rolloutlab.scenarios.schema.traffic import (
    ConstantProfile,
    DiurnalProfile,
    Segment,
    Spike,
    SpikesProfile,
    Traffic,
    TrafficProfile,
)

__all__ = [
    "ALL_STRATEGIES",
    "BUNDLED_SCENARIOS_DIR",
    "AlertRule",
    "Assertion",
    "ConstantProfile",
    "CrashOnStartDefect",
    "Defect",
    "Dependency",
    "DependencyFailureFault",
    "DEFAULT_STRATEGIES",
    "DiurnalProfile",
    "Distribution",
    "ErrorRateDefect",
    "Expectation",
    "ExponentialDistribution",
    "Fault",
    "FixedDistribution",
    "FullLoadOnlyDefect",
    "HealthCheck",
    "History",
    "HumanResponse",
    "IncompatibleMigrationDefect",
    "Latency",
    "LatencyDefect",
    "LatencyInjectionFault",
    "LeakDefect",
    "LognormalDistribution",
    "METRICS",
    "Migration",
    "MigrationStep",
    "Monitoring",
    "NodeLossFault",
    "PodKillFault",
    "PodTiming",
    "ReadinessProbe",
    "Release",
    "SCENARIO_LIBRARY_DIR",
    "STATS",
    "Region",
    "Scenario",
    "SchemaCompatibility",
    "SchemaRange",
    "Service",
    "ServiceLevelObjective",
    "Spike",
    "SpikesProfile",
    "Traffic",
    "Segment",
    "SideEffectsDefect",
    "TrafficProfile",
    "UniformDistribution",
    "ZoneOutageFault",
    "bundled_scenario",
    "is_strategy_path",
    "load_scenario",
    "parse_assertion",
]
