"""Scenarios: the worlds release strategies are tested in, and ready-made ones to use.

The schema is the package :mod:`rolloutlab.scenarios.schema` (one module per section);
bundled scenario files sit next to it (``bundled_scenario("standard")``) and in
``library/`` (failure scenarios with expectations). :mod:`.release` draws each run's
release and responders from a seed, :mod:`.expectations` judges a scenario's
expectations against a results table, and :mod:`.generate` holds hypothesis strategies
for valid scenarios. Running scenarios (``rolloutlab check``, the pytest plugin) is
orchestration and lives in :mod:`rolloutlab.workflows`.

Names are imported on first use (PEP 562), so that pytest loading the plugin module in
every test session of an environment with rolloutlab installed costs nothing until a
scenario file is collected.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "BUNDLED_SCENARIOS_DIR",
    "SCENARIO_LIBRARY_DIR",
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
    "ServiceLevelObjective",
    "Traffic",
    "bundled_scenario",
    "load_scenario",
    "parse_assertion",
]

if TYPE_CHECKING:
    from rolloutlab.scenarios.schema import (
        BUNDLED_SCENARIOS_DIR,
        SCENARIO_LIBRARY_DIR,
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
        ServiceLevelObjective,
        Traffic,
        bundled_scenario,
        load_scenario,
        parse_assertion,
    )


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("rolloutlab.scenarios.schema"), name)
    raise AttributeError(f"module 'scenarios' has no attribute {name!r}")
