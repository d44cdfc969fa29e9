"""``rolloutlab validate`` from loaded inputs to files and an exit status.

The CLI parses the options into ``Settings``, loads the scenario and the strategy, and
calls :func:`run_validate_command`. Bad input raises ``rolloutlab.errors.BadInput``
(exit 2), a run that failed ``RunFailed`` (exit 1); an interrupted validation returns 130
after every live backend was closed (on kube: every live run's namespace deleted).
"""

from __future__ import annotations

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
    from rolloutlab.live.haproxy import HAPROXY
    from rolloutlab.workflows.live import WaitDisplay

    settings.check()
    if not seed_given and scenario.seed is not None:
        settings = replace(settings, seed=scenario.seed)
    if settings.backend == "local" and not Path(HAPROXY).exists():
        raise InputError("validate", f"HAProxy is not installed at {HAPROXY} (Debian: apt-get install haproxy); "
                                     "the local backend routes through it")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(str(out_dir), f"cannot use this as the output folder: {error.strerror or error}") from None

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


__all__ = ["run_validate_command"]
