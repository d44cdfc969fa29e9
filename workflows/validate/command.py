"""``rolloutlab validate`` from loaded inputs to files and an exit status.

The CLI parses the options into ``Settings``, loads the scenario and the strategy, and
calls :func:`run_validate_command`. Bad input raises ``rolloutlab.errors.BadInput``
(exit 2), a run that failed ``RunFailed`` (exit 1); an interrupted validation returns 130
after every live backend was closed (on kube: every live run's namespace deleted).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.console import Console

from rolloutlab.errors import InputError, RolloutlabError, RunFailed
from rolloutlab.scenarios.schema import Scenario
from rolloutlab.strategies import StrategySpec
from rolloutlab.workflows.validate import running
from rolloutlab.workflows.validate.rendering import render_validation, write_validation, write_validation_report
from rolloutlab.workflows.validate.running import Settings

INTERRUPTED = 130


def run_validate_command(scenario: Scenario, spec: StrategySpec, settings: Settings, *, out_dir: Path, out: Console,
                         err: Console, report: bool = True, verbose: bool = False, seed_given: bool = True,
                         kube_api: Any = None) -> int:
    """Validate, print the side-by-side table, write validation.json, the results tables and
    the report; return the exit status (1 when a held metric falls outside its prediction).
    ``seed_given=False``: the scenario's seed, when it declares one, replaces ``settings.seed``.
    ``kube_api`` (``settings.backend == "kube"``): the cluster's API client; None: the
    kubeconfig's (``settings.context``)."""
    from rolloutlab.workflows.live import WaitDisplay

    settings.check()
    if not seed_given and scenario.seed is not None:
        settings = replace(settings, seed=scenario.seed)
    _check_router_and_out_dir(settings, out_dir)

    def say(text: str) -> None:
        err.print(text, highlight=False, markup=False, soft_wrap=True)

    try:
        with WaitDisplay(err, scenario.duration, label="validate: live") as display:
            result = running.run_validation(scenario, spec, settings, state_root=out_dir / "state",
                                            log=say if verbose else None, say=say, waiting=display,
                                            kube_api=kube_api)
    except KeyboardInterrupt:
        left = ("every live run's namespace was handed to the cluster to delete" if settings.backend == "kube"
                else "every live backend was closed; nothing is left running")
        err.print(f"[yellow]interrupted:[/] {left}", highlight=False)
        return INTERRUPTED
    except RolloutlabError:
        raise
    except (TimeoutError, RuntimeError, OSError) as error:  # a backend or the load generator gave up
        raise RunFailed(f"live run failed: {error}") from error
    render_validation(result, out)
    written = write_validation(result, out_dir)
    out.print(f"validation: {written['validation']}; results: {written['results']} (simulated + live rows, "
              f"scenario seconds), {written['live_results']}")
    if report:
        paths = write_validation_report(result, written, out_dir)
        out.print(f"report: {paths['html']}")
    return result.exit_code


def _check_router_and_out_dir(settings: Settings, out_dir: Path) -> None:
    """Bad input before anything runs: the local backend without HAProxy, an output folder
    that cannot be made."""
    from rolloutlab.live.haproxy import HAPROXY

    if settings.backend == "local" and not Path(HAPROXY).exists():
        raise InputError("validate", f"HAProxy is not installed at {HAPROXY} (Debian: apt-get install haproxy); "
                                     "the local backend routes through it")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(str(out_dir), f"cannot use this as the output folder: {error.strerror or error}") from None


def check_validate_target(scenario: str | None, all_scenarios: bool, strategy: str | None,
                          only: Sequence[str] | None, live_runs: int | None,
                          max_minutes: float | None) -> dict[str, Any]:
    """One scenario (with ``--strategy``) or ``--all``, never both nor neither (InputError:
    exit 2); the live runs and the bound each mode defaults to, as ``Settings`` fields."""
    from rolloutlab.workflows.validate.library import LIBRARY_MAX_MINUTES, LIBRARY_RUNS

    if (scenario is None) == (not all_scenarios):
        raise InputError("validate", "give a scenario or --all (the whole library), not both" if all_scenarios
                         else "give a scenario (a file or bundled name), or --all for the whole library")
    if not all_scenarios and strategy is None:
        raise InputError("--strategy", "required with a scenario (only --all chooses each scenario's own)")
    if only and not all_scenarios:
        raise InputError("--only", "chooses library scenarios: only with --all")
    return {"live_runs": live_runs or (LIBRARY_RUNS if all_scenarios else 2),
            "max_minutes": max_minutes or (LIBRARY_MAX_MINUTES if all_scenarios else 30.0)}


def run_validate_all_command(settings: Settings, *, only: Sequence[str] = (), strategy: str | None = None,
                             release: str | None = None, out_dir: Path, out: Console, err: Console,
                             report: bool = True, verbose: bool = False, seed_given: bool = True) -> int:
    """``validate --all``: every library scenario (``only``: globs on their names) in turn
    (``workflows.validate.library``), then the one table (``library_rendering``); return
    the exit status (1: a live run failed or a held metric fell outside; 130: interrupted,
    after the table of the scenarios done so far was written)."""
    from rolloutlab.workflows.validate.library import load_library, run_library
    from rolloutlab.workflows.validate.library_rendering import render_library, write_library

    settings.check()
    entries = load_library(only, strategy=strategy, release=release)  # every file loads before anything runs
    _check_router_and_out_dir(settings, out_dir)

    def say(text: str) -> None:
        err.print(text, highlight=False, markup=False, soft_wrap=True)

    def shown(result) -> None:  # each scenario's own table as it finishes, as the single command shows it
        if result.validation is not None:
            render_validation(result.validation, out)

    say(f"validate --all: {len(entries)} library scenarios, {settings.live_runs} live run(s) each at "
        f"x{settings.time_scale:g}, within {settings.max_minutes:g} minutes")
    library = run_library(entries, settings, out_dir=out_dir, seed_given=seed_given, say=say, err=err,
                          verbose=verbose, report=report, on_done=shown)
    render_library(library, out)
    written = write_library(library, out_dir, report=report)
    out.print(f"library: {written['md']}, {written['csv']}, {written['json']}"
              + (f"; report: {written['report_html']}" if "report_html" in written else ""))
    if library.interrupted:
        err.print("[yellow]interrupted:[/] every live backend was closed; the table holds the scenarios done so far",
                  highlight=False)
        return INTERRUPTED
    return library.exit_code


__all__ = ["check_validate_target", "run_validate_all_command", "run_validate_command"]
