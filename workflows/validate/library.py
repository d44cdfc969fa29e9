"""``rolloutlab validate --all``: every library scenario, simulator vs live, one after another.

Which scenarios: every ``scenarios/library/*.yaml`` (``--only PATTERN`` keeps those whose
name matches a glob), shortest window first so a ``--max-minutes`` bound cuts the longest
off, not the many short ones. Each runs as ``rolloutlab validate SCENARIO`` would, with:

- the strategy of :data:`LIBRARY_STRATEGIES` (the technique the scenario is about), else the
  bundled canary; ``--strategy`` runs every scenario with one strategy instead;
- the release of :func:`compute_release`: the scenario's first defect (``bad``), or
  ``good`` when its releases are never defective (``defect_probability: 0``); ``--release``
  forces one for all;
- the scenario's own ``seed:`` unless ``--seed`` is given.

A scenario the live runners cannot play says why: ``live.session`` (or ``run_validation``)
raises ``LiveUnsupported`` naming the missing live form, and the scenario is listed as
"cannot run live: <reason>" -- never skipped silently. Whatever the live runners support
when the command runs is used: nothing here lists kinds. A scenario the time bound leaves
no room for is listed as "not started"; one whose live run failed, as "failed" (exit 1).

Each scenario writes the single command's files into ``OUT/SCENARIO/``; the one table of
the library (``library_rendering``) goes into ``OUT/library.{csv,json,md}``.
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path

from rich.console import Console

from rolloutlab.errors import InputError, LiveUnsupported, RolloutlabError, ValidateError
from rolloutlab.scenarios.schema import Scenario
from rolloutlab.scenarios.schema.scenario import SCENARIO_LIBRARY_DIR
from rolloutlab.strategies import StrategySpec
from rolloutlab.workflows.validate import running
from rolloutlab.workflows.validate.running import LOCAL_OVERHEAD_S, Settings, Validation

DEFAULT_STRATEGY = "canary"
"""The strategy of a library scenario that is not about one technique in particular."""

LIBRARY_STRATEGIES: dict[str, str] = {
    # A bundled name, or a file relative to the scenario (as in its ``strategies:`` list).
    # The defect sits behind a flag (or leaks outside it): the scenario is about flags.
    "flag-defect-behind-flag": "feature-flag",
    "leak-outside-flag": "feature-flag",
    # Mirroring: shadow traffic first, then a canary (duplicated writes, an overloaded shadow).
    "mirror-duplicates-writes": "shadow-then-canary",
    "shadow-overload": "shadow-then-canary",
    # The staff segment sees the release first, by header.
    "small-segment": "header-canary",
    # Crash-looping pods never get ready: the point is that a rollout aborts at its progress
    # deadline (the bundled canary waits there, stuck, and its simulation follows a stuck
    # rollout for two days: ~2 s per run).
    "crash-on-start": "strategies/canary-abort.yaml",
    # Only latency shows the defect: the bundled canary's error-rate analysis is blind to it.
    "latency-regression": "strategies/canary-latency.yaml",
    # Region by region, smallest first, stop the line.
    "three-regions": "strategies/canary-three-waves.yaml",
}
"""The strategy each library scenario is validated with when it is about one technique;
every other scenario runs the bundled canary (``DEFAULT_STRATEGY``)."""

LIBRARY_RUNS = 1
"""Live runs per scenario under ``--all`` (a whole library at 30x takes ~25 minutes per run)."""
LIBRARY_MAX_MINUTES = 60.0


class ScenarioStatus(str, Enum):
    """What became of one library scenario under ``--all``."""

    VALIDATED = "validated"  # simulated and run live, every live value judged
    NOT_LIVE = "cannot run live"  # LiveUnsupported: the reason names the missing live form
    NOT_STARTED = "not started"  # the --max-minutes bound left no room for a live run
    FAILED = "failed"  # a live run started and did not finish


@dataclass(frozen=True)
class LibraryEntry:
    """One library scenario as ``--all`` runs it."""

    name: str
    path: Path
    scenario: Scenario
    spec: StrategySpec
    strategy: str  # as chosen: a bundled name, a file relative to the scenario, or --strategy's
    release: str  # bad | good


@dataclass
class ScenarioResult:
    """One scenario's validation (``validation`` is None unless it was validated)."""

    entry: LibraryEntry
    status: ScenarioStatus
    reason: str = ""
    validation: Validation | None = None
    out_dir: Path | None = None
    wall_s: float = 0.0


@dataclass
class LibraryValidation:
    """Every scenario's result, in the order they ran, and the settings they shared."""

    settings: Settings
    results: list[ScenarioResult] = field(default_factory=list)
    interrupted: bool = False

    @property
    def exit_code(self) -> int:
        """1 when a live run failed or a held metric fell outside its prediction; else 0.
        A scenario that cannot run live is listed, not a failure."""
        failed = any(r.status is ScenarioStatus.FAILED for r in self.results)
        return int(failed or any(r.validation.exit_code for r in self.results if r.validation is not None))


# --------------------------------------------------------------------------- which scenarios, how


def compute_release(scenario: Scenario, forced: str | None = None) -> str:
    """The release a library scenario is validated with: ``forced`` if given; else ``good``
    for a scenario whose releases are never defective (``defect_probability: 0``: what it
    measures is a healthy rollout), else ``bad`` (its first defect, as ``make_plan`` gives
    the live canary)."""
    if forced is not None:
        return forced
    return "good" if scenario.release.defect_probability == 0 else "bad"


def choose_strategy(name: str, override: str | None = None) -> str:
    """The strategy a library scenario runs with (``override``: ``--strategy``, for all)."""
    return override if override is not None else LIBRARY_STRATEGIES.get(name, DEFAULT_STRATEGY)


def library_paths(only: Sequence[str] = (), folder: Path = SCENARIO_LIBRARY_DIR) -> list[Path]:
    """The library's scenario files, by name; ``only``: globs on the name (``error-*``), a
    scenario kept when one matches. A glob matching nothing is bad input."""
    paths = sorted(folder.glob("*.yaml"))
    if not only:
        return paths
    for pattern in only:
        if not any(fnmatch.fnmatchcase(p.stem, pattern) for p in paths):
            raise InputError("--only", f"{pattern!r} matches no library scenario (the library: "
                                       f"{', '.join(p.stem for p in paths)})")
    return [p for p in paths if any(fnmatch.fnmatchcase(p.stem, pattern) for pattern in only)]


def load_library(only: Sequence[str] = (), *, strategy: str | None = None, release: str | None = None,
                 folder: Path = SCENARIO_LIBRARY_DIR) -> list[LibraryEntry]:
    """The scenarios ``--all`` runs, in the order it runs them: shortest window first (a
    bound cuts the long ones), then by name. Every file is loaded before anything runs, so
    a strategy that does not load is bad input at once."""
    from rolloutlab.scenarios.schema import is_strategy_path
    from rolloutlab.strategies.files import LIBRARY_DIR, load_strategy
    from rolloutlab.workflows.compare import load_scenario_file, load_strategy_arg

    entries = []
    for path in library_paths(only, folder):
        loaded = load_scenario_file(path)
        chosen = choose_strategy(path.stem, strategy)
        if strategy is not None:
            spec = load_strategy_arg(chosen)
        elif is_strategy_path(chosen):
            spec = load_strategy(path.parent / chosen)
        else:
            spec = load_strategy(LIBRARY_DIR / f"{chosen}.yaml")
        entries.append(LibraryEntry(path.stem, path, loaded.scenario, spec, chosen,
                                    compute_release(loaded.scenario, release)))
    return sorted(entries, key=lambda e: (e.scenario.duration, e.name))


def compute_wall_estimate(scenario: Scenario, settings: Settings) -> float:
    """Wall seconds one scenario's live runs take (window over time scale, plus set-up and
    clean-up of each run): the bound's unit of account."""
    return settings.live_runs * (scenario.duration / settings.time_scale + LOCAL_OVERHEAD_S)


# --------------------------------------------------------------------------- running them


def run_library(entries: Sequence[LibraryEntry], settings: Settings, *, out_dir: Path, seed_given: bool,
                say: Callable[[str], None], err: Console, verbose: bool = False,
                report: bool = True, on_done: Callable[[ScenarioResult], None] | None = None) -> LibraryValidation:
    """Validate every entry in turn (acts: simulates, starts processes; every backend closed
    before the next scenario starts). Each validated scenario's files go into
    ``out_dir/NAME/``. ``settings.max_minutes`` bounds the whole library. A Ctrl-C stops
    the library after the running scenario's backends were closed (``interrupted``)."""
    from rolloutlab.workflows.live import WaitDisplay
    from rolloutlab.workflows.validate.rendering import write_validation, write_validation_report

    library = LibraryValidation(settings)
    deadline = time.monotonic() + settings.max_minutes * 60
    for k, entry in enumerate(entries, start=1):
        began = time.monotonic()
        seed = settings.seed if seed_given or entry.scenario.seed is None else entry.scenario.seed
        left = deadline - began
        one = replace(settings, seed=seed, release=entry.release, max_minutes=max(left, 0.0) / 60)
        head = f"[{k}/{len(entries)}] {entry.name}: {entry.spec.name}, {entry.release} release"
        result = _not_runnable(entry, one, left, settings.max_minutes)
        if result is None:
            say(f"{head} (about {compute_wall_estimate(entry.scenario, one) / 60:.1f} min live)")
            try:
                result = _run_one(entry, one, out_dir / entry.name, say=say, err=err, verbose=verbose,
                                  display=WaitDisplay(err, entry.scenario.duration, label=f"validate: {entry.name}"))
            except KeyboardInterrupt:  # run_validation closed every backend on its way out
                library.interrupted = True
                library.results.append(ScenarioResult(entry, ScenarioStatus.NOT_STARTED, "interrupted",
                                                      wall_s=time.monotonic() - began))
                break
            if result.status is ScenarioStatus.VALIDATED and result.validation is not None:
                written = write_validation(result.validation, result.out_dir)
                if report:
                    write_validation_report(result.validation, written, result.out_dir)
        result.wall_s = time.monotonic() - began
        library.results.append(result)
        if result.status is not ScenarioStatus.VALIDATED:
            say(f"{head}: {result.status.value}: {result.reason}")
        if on_done is not None:
            on_done(result)
    return library


def _not_runnable(entry: LibraryEntry, settings: Settings, left_s: float, bound_min: float) -> ScenarioResult | None:
    """Why a scenario will not run: no live form (named first, bound or not), or no room
    left in the bound for one live run; None when it runs."""
    try:
        running.check_live_form(entry.scenario, entry.spec, settings)
    except LiveUnsupported as error:
        return ScenarioResult(entry, ScenarioStatus.NOT_LIVE, str(error))
    need = compute_wall_estimate(entry.scenario, replace(settings, live_runs=1))
    if left_s < need:
        return ScenarioResult(entry, ScenarioStatus.NOT_STARTED, f"the {bound_min:g}-minute bound left "
                                                                 f"{max(left_s, 0):.0f}s; one live run needs about "
                                                                 f"{need:.0f}s")
    return None


def _run_one(entry: LibraryEntry, settings: Settings, out_dir: Path, *, say: Callable[[str], None], err: Console,
             verbose: bool, display) -> ScenarioResult:
    """One scenario as the single command runs it; what cannot run live, does not fit or
    fails becomes the scenario's status, with the reason."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(str(out_dir), f"cannot use this as the output folder: {error.strerror or error}") from None

    def log(text: str) -> None:
        err.print(text, highlight=False, markup=False, soft_wrap=True)

    try:
        with display:
            validation = running.run_validation(entry.scenario, entry.spec, settings, state_root=out_dir / "state",
                                                log=log if verbose else None, say=say, waiting=display)
    except LiveUnsupported as error:
        return ScenarioResult(entry, ScenarioStatus.NOT_LIVE, str(error), out_dir=out_dir)
    except ValidateError as error:
        # the options were checked before the first scenario: what is left is the bound
        # (the simulation took the time a live run needed)
        return ScenarioResult(entry, ScenarioStatus.NOT_STARTED, str(error), out_dir=out_dir)
    except RolloutlabError as error:
        if isinstance(error, InputError):  # bad input is the user's, not this scenario's
            raise
        return ScenarioResult(entry, ScenarioStatus.FAILED, f"live run failed: {error}", out_dir=out_dir)
    except (TimeoutError, RuntimeError, OSError) as error:  # a backend or the load generator gave up
        return ScenarioResult(entry, ScenarioStatus.FAILED, f"live run failed: {error}", out_dir=out_dir)
    except Exception as error:  # noqa: BLE001 -- a bug in one scenario's live form: named (exit 1), the rest run
        return ScenarioResult(entry, ScenarioStatus.FAILED, f"live run failed: {type(error).__name__}: {error} "
                                                            "(a bug: please report it)", out_dir=out_dir)
    return ScenarioResult(entry, ScenarioStatus.VALIDATED, validation=validation, out_dir=out_dir)


__all__ = [
    "DEFAULT_STRATEGY", "LIBRARY_MAX_MINUTES", "LIBRARY_RUNS", "LIBRARY_STRATEGIES", "LibraryEntry",
    "LibraryValidation", "ScenarioResult", "ScenarioStatus", "choose_strategy", "compute_release",
    "compute_wall_estimate", "library_paths", "load_library", "run_library",
]
