"""Scenarios: the worlds release strategies are tested in, and ready-made ones to use.

The schema lives in :mod:`scenarios.schema`; bundled scenario files sit next to it
(``bundled_scenario("standard")``).
"""

from scenarios.schema import (
    BUNDLED_SCENARIOS_DIR,
    Assertion,
    Defect,
    Distribution,
    Expectation,
    Fault,
    Migration,
    Monitoring,
    Release,
    Scenario,
    Service,
    Traffic,
    bundled_scenario,
    load_scenario,
    parse_assertion,
)

__all__ = [
    "BUNDLED_SCENARIOS_DIR",
    "Assertion",
    "Defect",
    "Distribution",
    "Expectation",
    "Fault",
    "Migration",
    "Monitoring",
    "Release",
    "Scenario",
    "Service",
    "Traffic",
    "bundled_scenario",
    "load_scenario",
    "parse_assertion",
]
