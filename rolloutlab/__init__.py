"""rolloutlab: simulate release strategies before you adopt them, check the simulator
against live runs, and report DORA metrics.

The public API a notebook needs::

    import rolloutlab
    scenario = rolloutlab.bundled_scenario("standard")     # or load_scenario("my.yaml")
    strategies = [rolloutlab.load_strategy(n) for n in ("canary", "blue-green")]
    table = rolloutlab.simulate_many(scenario, strategies, runs=200, seed=1)
    for summary in rolloutlab.summarize(table):
        print(summary.strategy, summary.change_failure_rate)

Subpackages, bottom to top (docs/architecture.md has the import rules):
``strategies`` (the pure policy), ``results`` (the results contract and statistics),
``scenarios`` (the worlds), ``sim`` and ``live`` (the two runners), ``reports``,
``workflows`` (orchestration) and ``cli``.

Names load on first use (PEP 562), so ``import rolloutlab.errors`` or the pytest plugin
costs nothing until something is used.
"""

from __future__ import annotations

import importlib
from typing import Any

_PUBLIC = {
    "Scenario": "rolloutlab.scenarios.schema",
    "bundled_scenario": "rolloutlab.scenarios.schema",
    "load_scenario": "rolloutlab.scenarios.schema",
    "StrategySpec": "rolloutlab.strategies.spec",
    "load_strategy": "rolloutlab.strategies.files",
    "reconcile": "rolloutlab.strategies.reconcile",
    "simulate_many": "rolloutlab.workflows.compare",
    "summarize": "rolloutlab.results.statistics",
    "read_results": "rolloutlab.results.table",
    "write_results": "rolloutlab.results.table",
    "Outcome": "rolloutlab.results.table",
    "BadInput": "rolloutlab.errors",
    "InputError": "rolloutlab.errors",
    "RunFailed": "rolloutlab.errors",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'rolloutlab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
