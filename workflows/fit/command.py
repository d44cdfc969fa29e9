"""``rolloutlab fit``: a deployment log (and optionally Prometheus) in, a scenario out.

Reads the log (``reports.deploy_log``), fits what it can (``from_log``), adds the traffic
and the service's baseline from Prometheus when asked (``from_prometheus``), writes the
scenario with its comments (``scenario_yaml``) once it loads, and prints one table row per
parameter: its value, its 95% interval, the data it came from, or why it was refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rolloutlab.reports.deploy_log import load_deploy_log
from rolloutlab.scenarios.schema.scenario import Scenario, bundled_scenario, load_scenario
from rolloutlab.workflows.defaults import DEFAULT_MONTH, DEFAULT_SEED
from rolloutlab.workflows.fit.from_log import fit_log, log_days, select_service
from rolloutlab.workflows.fit.parameters import FittedParameter
from rolloutlab.workflows.fit.scenario_yaml import FitSources, build_scenario, render_scenario, write_scenario


@dataclass(frozen=True)
class FitResult:
    """What ``fit`` found and wrote."""

    parameters: list[FittedParameter]
    sources: FitSources
    out: Path
    scenario: Scenario
    """The written file, as the scenario loader read it back."""


def run_fit(log: Path, out: Path, base: str = DEFAULT_MONTH, service: str | None = None, seed: int = DEFAULT_SEED,
            prometheus: object | None = None) -> FitResult:
    """Fit a scenario to ``log`` (and ``prometheus``: a ``from_prometheus.PrometheusSource``)
    and write it to ``out``."""
    base_path = Path(base) if Path(base).suffix in (".yaml", ".yml") else bundled_scenario(base)
    load_scenario(base_path)  # a base that does not load is the user's input error, named as such
    base_data = yaml.safe_load(base_path.read_text(encoding="utf-8"))
    rows = select_service(load_deploy_log(log), str(log), service)
    root = np.random.SeedSequence(seed)
    log_seed, prometheus_seed = root.spawn(2)
    parameters = fit_log(rows, log_seed)
    url = None
    if prometheus is not None:
        from rolloutlab.workflows.fit.from_prometheus import fit_prometheus

        parameters += fit_prometheus(prometheus, prometheus_seed)
        url = prometheus.url
    sources = FitSources(str(log), str(rows["service"].iloc[0]), len(rows), log_days(rows), base_path.stem, seed, url)
    data = build_scenario(base_data, parameters, sources)
    scenario = write_scenario(render_scenario(data, parameters, sources), out)
    return FitResult(parameters, sources, Path(out), scenario)


def print_fit(result: FitResult, console: Console) -> None:
    """One row per parameter: what it sets, its value and interval, its data, or the refusal."""
    s = result.sources
    table = Table(title=f"fit: {escape(s.service)}, {s.deployments} deployments over {s.days:.1f} days",
                  caption="intervals 95%; every number's source and notes are also in the written YAML")
    table.add_column("parameter", overflow="fold", no_wrap=True)
    table.add_column("value [95% interval]", overflow="fold", no_wrap=True)
    table.add_column("from", overflow="fold", ratio=1)
    for p in result.parameters:
        name = f"{escape(p.title)}\n[dim]{escape(p.key or 'reported only')}[/]"
        if p.fitted:
            table.add_row(name, escape("\n".join(p.describe_lines())), f"{escape(p.source)}\n[dim]{escape(p.method)}[/]")
        else:
            table.add_row(name, "[bold yellow]refused[/]", f"[yellow]{escape(p.refused)}[/]\n[dim]{escape(p.source)}[/]")
    console.print(table)
    refused = [p for p in result.parameters if not p.fitted and p.key]
    console.print(f"wrote {escape(str(result.out))}: loads as scenario {escape(result.scenario.name)}"
                  + (f"; {len(refused)} refused field(s) keep the base's ({escape(s.base_name)}) value"
                     if refused else ""), highlight=False)
    console.print(f"next: rolloutlab compare {escape(str(result.out))}", highlight=False)
