"""The ``rolloutlab`` command: one thin layer over the packages; nothing imports it.

Bad input (a malformed file, an invalid field) prints one line naming the file, the line
and the field, and exits with status 2, never a traceback.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rolloutlab.errors import BadInput, RolloutlabError, exit_status
from rolloutlab.strategies import InputError
from rolloutlab.strategies.actions import EventReason
from rolloutlab.strategies.files import bundled_strategy_names
from rolloutlab.strategies.yaml_input import parse_yaml_file
from rolloutlab.workflows import defaults as _DEFAULTS  # run counts, seed, scenario: defined once, there


class _Commands(typer.Typer):
    """A Typer whose every command maps rolloutlab's errors to an exit status in one place
    (``_fail``): bad input exits 2 with one line, a run that failed exits 1."""

    def command(self, *args, **kwargs):
        register = super().command(*args, **kwargs)

        def decorator(function):
            @functools.wraps(function)  # typer reads the parameters through __wrapped__
            def mapped(*call_args, **call_kwargs):
                try:
                    return function(*call_args, **call_kwargs)
                except RolloutlabError as error:
                    _fail(error)

            register(mapped)
            return function

        return decorator


app = _Commands(
    name="rolloutlab",
    help="Simulate, verify and report on blue-green, canary and rolling release strategies.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# emoji=False: file:line texts like "x.yaml:100:" must not turn into emoji
out = Console(width=None if sys.stdout.isatty() else 120, emoji=False)  # pipes and CI logs get full rows
err = Console(stderr=True, emoji=False)


def _say(label: str, message: object) -> None:
    """One line on stderr: a styled label, then the message as plain text (never markup:
    "[a, b]" in a message must stay)."""
    err.print(f"{label} {escape(str(message))}", highlight=False, soft_wrap=True)

EXIT_BAD_INPUT = 2


def _fail(error: RolloutlabError) -> None:
    """The one place errors become exit statuses (``rolloutlab.errors.exit_status``)."""
    # The message is data, not markup: "x.yaml:100:" must not become an emoji, "[a, b]" must stay
    _say("[bold red]error:[/]" if isinstance(error, BadInput) else "[bold red]failed:[/]", error)
    raise typer.Exit(exit_status(error))


def _bad_input(error: Exception) -> None:
    _fail(error if isinstance(error, RolloutlabError) else InputError("rolloutlab", str(error)))


@app.command("import")
def import_command(
    files: Annotated[list[Path], typer.Argument(help="Manifest files or directories, read together as kubectl apply -f "
                                                     "reads them (a directory: its .yaml/.yml/.json files): one Argo "
                                                     "Rollout with its (Cluster)AnalysisTemplates, or one Flagger "
                                                     "Canary with its MetricTemplates, in any of them.")],
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="Write the strategy here instead of stdout.")] = None,
) -> None:
    """Convert an Argo Rollouts Rollout or a Flagger Canary into a rolloutlab strategy.

    Templates may live in other files: `rolloutlab import rollout.yaml analysis-templates.yaml`
    or `rolloutlab import manifests/`."""
    from rolloutlab.strategies.importers import dump_strategy_yaml, import_manifest

    try:
        result = import_manifest(files)
    except InputError as error:
        _bad_input(error)
    text = dump_strategy_yaml(result.spec, result.warnings)
    for warning in result.warnings:
        _say("[yellow]warning:[/]", warning)
    if output is None:
        sys.stdout.write(text)
    else:
        try:
            output.write_text(text)
        except OSError as error:
            _bad_input(InputError(str(output), f"cannot write the strategy here: {error.strerror or error}"))
        err.print(f"wrote {output} ({result.source}, {len(result.warnings)} warnings)")


@app.command()
def plan(
    strategy: Annotated[str, typer.Argument(help=f"A strategy file, a bundled name ({', '.join(bundled_strategy_names())}), or an Argo Rollout / Flagger Canary manifest (imported on the fly).")],
    replicas: Annotated[int, typer.Option(min=1, help="Replicas of the service (overrides the file).")] = 10,
    start_seconds: Annotated[float, typer.Option(min=0, help="Seconds from asking for a pod to its readiness.")] = 10.0,
    rps: Annotated[float, typer.Option(min=0, help="Requests per second reaching the service.")] = 100.0,
    gate_seconds: Annotated[float, typer.Option(min=0, help="Seconds a person takes to pass a manual gate.")] = 60.0,
) -> None:
    """Dry-run a strategy in an ideal world and print its plan: steps, pods, declared vs effective weight."""
    from rolloutlab.strategies.dry_run import IdealWorld

    try:
        spec = _load_strategy_or_manifest(strategy)
    except InputError as error:
        _bad_input(error)
    # event-driven: every time printed is exact; the operator passes each gate gate_seconds after it is reached
    world = IdealWorld(spec.with_replicas(spec.replicas or replicas), start_delay=start_seconds, rps=rps,
                       gate_seconds=gate_seconds)
    world.run(until=24 * 3600.0)
    table = Table(title=f"{spec.name}: {spec.strategy.kind.value}, {world.spec.replicas} replicas, pods ready {start_seconds:g}s after they are asked for")
    for column in ("t (s)", "event", "declared %", "effective %", "stable ready", "canary ready"):
        table.add_column(column, justify="right" if column != "event" else "left")
    shown = {EventReason.MEASUREMENT}
    for decision in world.log:
        for action in decision.actions:
            if getattr(action, "reason", None) is None or action.reason in shown:
                continue
            table.add_row(f"{decision.at:g}", action.message, f"{decision.declared_weight:.0f}",
                          f"{decision.effective_weight:.1f}", str(decision.stable_ready), str(decision.canary_ready))
    out.print(table)
    status = world.status
    end = status.completed_at if status.completed else status.restored_at
    out.print(f"outcome: [bold]{status.outcome}[/] after {end if end is not None else world.now:g}s "
              f"({len(world.log)} reconcile calls)")
    if spec.waves is not None and status.completed and end is not None:
        _print_waves(spec, end)


def _print_waves(spec, region_duration: float) -> None:
    """The waves' schedule when every region takes the rollout above."""
    from rolloutlab.strategies.dry_run import plan_waves

    plans = plan_waves(spec.waves, region_duration)
    table = Table(title=f"waves: each region as above ({region_duration:g}s), then its wave's bake"
                        f"{'; a failure rolls back every region out (stop the line)' if spec.waves.stop_the_line else ''}")
    for column in ("wave", "regions", "starts (s)", "promoted (s)", "next wave (s)"):
        table.add_column(column, justify="left" if column == "regions" else "right")
    for p in plans:
        table.add_row(str(p.wave), ", ".join(p.regions), f"{p.starts_at:g}", f"{p.promoted_at:g}",
                      "" if p.next_wave_at is None else f"{p.next_wave_at:g}")
    out.print(table)
    out.print(f"every region promoted after {plans[-1].promoted_at:g}s")


def _load_strategy_or_manifest(name_or_path: str):
    """Our strategy file or bundled name; an Argo Rollout or Flagger Canary is imported."""
    from rolloutlab.workflows.compare import load_strategy_arg

    return load_strategy_arg(name_or_path, note=_note, warn=_warn)


def _note(text: str) -> None:
    err.print(text, highlight=False)


def _warn(text: str) -> None:
    _say("[yellow]warning:[/]", text)


@app.command()
def lint(
    files: Annotated[list[Path], typer.Argument(help="Strategy or scenario files to validate.")],
) -> None:
    """Validate strategy and scenario files; exit 2 naming the file, line and field of the first error in each."""
    from rolloutlab.scenarios.schema import Scenario
    from rolloutlab.strategies.files import load_strategy
    from rolloutlab.strategies.spec import StrategySpec
    from rolloutlab.strategies.yaml_input import validate_document
    from rolloutlab.workflows.check import load_check_target

    failed = False
    for path in files:
        try:
            docs = parse_yaml_file(path)
            for doc in docs:
                model = StrategySpec if isinstance(doc.data, dict) and "strategy" in doc.data else Scenario
                validate_document(doc, model)
                if model is StrategySpec and len(docs) == 1:
                    load_strategy(path)  # as a run loads it: a featureFlag's flagd file is checked too
                if model is Scenario and len(docs) == 1:
                    # what `check` loads too: the strategy files it names, and that every
                    # expectation's `for` names one of them
                    load_check_target(path)
            out.print(f"[green]ok[/] {path}")
        except InputError as error:
            failed = True
            _say("[bold red]error:[/]", error)
    if failed:
        raise typer.Exit(EXIT_BAD_INPUT)


# ---------------------------------------------------------------------------- simulator


def _load_scenario_arg(name_or_path: str):
    from rolloutlab.workflows.compare import load_scenario_file

    return load_scenario_file(name_or_path).scenario


def _ensure_out_dir(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        _bad_input(InputError(str(out_dir), f"cannot use this as the output folder: {error.strerror or error}"))


def _write_report(results, timelines, log, out_dir: Path) -> dict:
    from rolloutlab.reports.document import build_report, write_report

    return write_report(build_report(results, timelines, log), out_dir)


RunsOption = Annotated[int, typer.Option(min=1, help="Runs per strategy (histories, for a scenario with history:); run i is the same release for every strategy.")]
SeedOption = Annotated[Optional[int], typer.Option(min=0, max=2**63 - 1, help="Root seed (default: the scenario's, else 1).")]
ExecutorOption = Annotated[str, typer.Option(help="serial, process, or dask://HOST:PORT.")]
FidelityOption = Annotated[str, typer.Option(help="fast, or request (per-request reference; slow, for checking).")]
OutOption = Annotated[Path, typer.Option("--out", help="Folder for results.csv and results.parquet.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")]
ReportOption = Annotated[bool, typer.Option("--report/--no-report", help="Write report.html, report.md and summary.csv beside the results.")]


def _comparison(scenario: str, strategies: list[str] | None, runs: int, seed: int | None, executor: str,
                fidelity: str, out_dir: Path, as_json: bool, report: bool, history: str | None = None) -> None:
    import json

    from rolloutlab.workflows.compare import comparison_payload, print_comparison, run_comparison

    comparison = run_comparison(scenario, strategies, runs=runs, seed=seed, executor=executor, fidelity=fidelity,
                                out_dir=out_dir, report=report, progress=not as_json, note=_note, warn=_warn,
                                history=history)
    if as_json:
        sys.stdout.write(json.dumps(comparison_payload(comparison), indent=2, allow_nan=False) + "\n")
    else:
        print_comparison(comparison, out)


@app.command()
def simulate(
    scenario: Annotated[str, typer.Argument(help="A scenario file, or a bundled scenario name (standard).")],
    strategy: Annotated[Optional[str], typer.Option("--strategy", "-s", help="A strategy file, bundled name, or Argo/Flagger manifest (default: each of the scenario's strategies:).")] = None,
    runs: RunsOption = _DEFAULTS.DEFAULT_RUNS,
    seed: SeedOption = None,
    executor: ExecutorOption = "process",
    fidelity: FidelityOption = "fast",
    out_dir: OutOption = Path("out"),
    as_json: JsonOption = False,
    report: ReportOption = True,
) -> None:
    """Simulate a strategy (default: each of the scenario's strategies:) over many seeded runs; print its figures with 95% CIs."""
    _comparison(scenario, None if strategy is None else [strategy], runs, seed, executor, fidelity, out_dir,
                as_json, report)


@app.command()
def compare(
    scenario: Annotated[Optional[str], typer.Argument(help=f"A scenario file or bundled name (default: {_DEFAULTS.DEFAULT_SCENARIO}).", show_default=False)] = None,
    strategies: Annotated[Optional[str], typer.Option(help="Comma-separated strategy files or bundled names, or 'all' for every bundled technique (default: the scenario's strategies:, else blue-green, canary and rolling).")] = None,
    runs: RunsOption = _DEFAULTS.DEFAULT_RUNS,
    seed: SeedOption = None,
    executor: ExecutorOption = "process",
    fidelity: FidelityOption = "fast",
    out_dir: OutOption = Path("out"),
    as_json: JsonOption = False,
    report: ReportOption = True,
    history: Annotated[Optional[str], typer.Option("--history", help=f"A scenario with history: played beside the comparison for the DORA metrics a single release cannot give (default: {_DEFAULTS.DEFAULT_MONTH} when no scenario is named; 'none' skips it).", show_default=False)] = None,
) -> None:
    """Compare strategies on a scenario (default: the bundled standard scenario with blue-green, canary and rolling, and a month of its deployments for DORA)."""
    names = None if strategies is None else [n.strip() for n in strategies.split(",") if n.strip()]
    if history is None and scenario is None:
        history = _DEFAULTS.DEFAULT_MONTH
    history = None if history is not None and history.strip().lower() == "none" else history
    _comparison(scenario or _DEFAULTS.DEFAULT_SCENARIO, names, runs, seed, executor, fidelity, out_dir, as_json,
                report, history)


@app.command("report")
def report_command(
    results: Annotated[Optional[Path], typer.Argument(help="A results table (CSV or Parquet) from simulate, compare, live or validate.")] = None,
    log: Annotated[Optional[Path], typer.Option("--log", help="A team's deployment log (CSV, JSON, or a GitHub deployments export).")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for report.html, report.md and summary.csv.")] = Path("report"),
) -> None:
    """Write the DORA report (HTML, Markdown, summary CSV) from a results table and/or a deployment log."""
    from rolloutlab.reports.deploy_log import load_deploy_log
    from rolloutlab.results.table import read_results
    from rolloutlab.results.timeline import TIMELINES_FILE, read_timelines

    if results is None and log is None:
        raise InputError("report", "give a results table, a --log, or both")
    table = read_results(results) if results is not None else None
    deployments = load_deploy_log(log) if log is not None else None
    timelines = read_timelines(results.parent / TIMELINES_FILE) if results is not None else []
    _ensure_out_dir(out_dir)
    if table is None:
        table, deployments = deployments, None
    written = _write_report(table, timelines, deployments, out_dir)
    out.print(f"report: {written['html']} (also {written['markdown']}, {written['summary']})")


@app.command()
def check(
    paths: Annotated[Optional[list[Path]], typer.Argument(help="Scenario files or folders (default: the bundled scenario library).")] = None,
    runs: Annotated[int, typer.Option(min=1, help="Runs per strategy and scenario (the bundled library in under two minutes on two cores).")] = _DEFAULTS.CHECK_RUNS,
    seed: SeedOption = None,
    executor: ExecutorOption = "process",
    confidence: Annotated[float, typer.Option(min=0.5, max=0.999, help="Confidence level of the intervals expectations are judged with.")] = 0.95,
    junit: Annotated[Optional[Path], typer.Option("--junit", help="Write JUnit XML here: one testcase per scenario x strategy x expectation.")] = None,
    report_dir: Annotated[Optional[Path], typer.Option("--report", help="Write report.html, report.md and the results table into this folder.")] = None,
) -> None:
    """Run scenario files and judge their expectations; exit 0 if all hold, 1 if one fails, 2 on bad input."""
    from rolloutlab.workflows.check import run_check_command

    code = run_check_command(paths, runs=runs, seed=seed, confidence=confidence, executor=executor,
                             junit=junit, report_dir=report_dir, out=out, err=err, progress=sys.stderr.isatty())
    raise typer.Exit(code)


@app.command()
def live(
    scenario: Annotated[str, typer.Argument(help="A scenario file or bundled name.")],
    strategy: Annotated[str, typer.Option("--strategy", "-s", help="A strategy file, bundled name, or Argo/Flagger manifest.")],
    backend: Annotated[str, typer.Option(help="local (processes behind HAProxy) or kube (a cluster, e.g. kind).")] = "local",
    context: Annotated[Optional[str], typer.Option(help="kube: the kubeconfig context (default: the current one). A scenario with regions takes one per region instead: see --region-context.")] = None,
    region_context: Annotated[Optional[list[str]], typer.Option("--region-context", help="kube, a scenario with regions (or a strategy with waves): REGION=CONTEXT, the kubeconfig context (cluster) of one region (repeatable). A region without one uses the context named like the region.")] = None,
    namespace: Annotated[str, typer.Option(help="kube: the namespace of the demo app.")] = "default",
    node_port: Annotated[int, typer.Option(min=30000, max=32767, help="kube: NodePort of the entry Service (preview: +1); live/kind-config.yaml maps 30080-30081. With regions, region k (in the scenario's order) uses NODE_PORT+2k.")] = 30080,
    url: Annotated[Optional[str], typer.Option(help="kube: where users reach the app (default http://127.0.0.1:NODE_PORT/).")] = None,
    time_scale: Annotated[float, typer.Option(min=1.0, help="Scenario seconds per wall second (timers and pod start times are divided by it; recorded in the results).")] = 10.0,
    release: Annotated[str, typer.Option(help="bad (the scenario's first defect), good, or drawn (as the simulator draws run 0 of the seed).")] = "bad",
    seed: Annotated[int, typer.Option(min=0, max=2**63 - 1, help="Seed of the load generator and the demo service's draws.")] = 1,
    max_rps: Annotated[float, typer.Option(min=1.0, help="Cap on the requests per second sent (the scenario's rate, scaled down together with preview traffic; with regions, all regions together, each its traffic share).")] = 100.0,
    replicas: Annotated[Optional[int], typer.Option(min=1, help="Pods per version (default: the scenario's; with regions, in every region, default each region's).")] = None,
    max_minutes: Annotated[float, typer.Option(min=0.1, help="Wall-clock bound of the run.")] = 20.0,
    rollback: Annotated[bool, typer.Option("--rollback", help="Roll back the rollout an interrupted run left behind instead of resuming it (with regions: every region out so far).")] = False,
    metrics: Annotated[str, typer.Option(help="Analysis data: loadgen (per-version answers the load generator saw), scrape (kube: the pods' /metrics through the API server, no Prometheus) or prometheus (local: a real Prometheus scrapes the pods; every metric's PromQL, or its signal's default, runs against it; docs/prometheus.md).")] = "loadgen",
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for results.csv, timelines.json and the report.")] = Path("out-live"),
    report: ReportOption = True,
) -> None:
    """Run a scenario's rollout for real (real pods, real traffic, injected faults) with the same controller as the simulator.

    A scenario with regions (or a strategy with waves) rolls out region by region: on the local backend each region gets its own HAProxy and pods; on kube each region is a kubeconfig context (a cluster): the context named like the region, or the one --region-context REGION=CONTEXT gives."""
    from rolloutlab.workflows.live import LiveSettings, run_live_command

    settings = LiveSettings(backend=backend, context=context, namespace=namespace, node_port=node_port, url=url,
                            time_scale=time_scale, release=release, seed=seed, max_rps=max_rps, replicas=replicas,
                            max_minutes=max_minutes, rollback=rollback, metrics=metrics, out_dir=out_dir,
                            report=report, region_contexts=tuple(region_context or ()))
    settings.check()  # bad options before the files are read
    raise typer.Exit(run_live_command(_load_scenario_arg(scenario), _load_strategy_or_manifest(strategy), settings,
                                      out=out, err=err, where=scenario))


@app.command()
def validate(
    scenario: Annotated[Optional[str], typer.Argument(help="A scenario file or bundled name (or --all).", show_default=False)] = None,
    strategy: Annotated[Optional[str], typer.Option("--strategy", "-s", help="A strategy file, bundled name, or Argo/Flagger manifest (required with a scenario; with --all: every scenario runs it instead of its own).", show_default=False)] = None,
    all_scenarios: Annotated[bool, typer.Option("--all", help="Every library scenario (scenarios/library), each with the strategy it is about and its own release; one table of them all: library.md/.csv/.json in --out.")] = False,
    only: Annotated[Optional[list[str]], typer.Option("--only", help="With --all: only the library scenarios whose name matches this glob (repeatable), e.g. 'error-*'.", show_default=False)] = None,
    runs: Annotated[int, typer.Option(min=1, help="Simulated runs (the prediction interval needs 39 values at 95%).")] = 500,
    live_runs: Annotated[Optional[int], typer.Option(min=1, help="Live runs (each takes the scenario's duration / time scale). Default 2; 1 per scenario with --all.", show_default=False)] = None,
    seed: SeedOption = None,
    time_scale: Annotated[float, typer.Option(min=1.0, help="Scenario seconds per wall second of the live runs.")] = 20.0,
    max_rps: Annotated[float, typer.Option(min=1.0, help="Requests per wall second the live runs send (the simulator gets max_rps / time_scale per scenario second).")] = 100.0,
    replicas: Annotated[int, typer.Option(min=1, help="Pods per version, live and simulated.")] = 4,
    release: Annotated[Optional[str], typer.Option(help="bad (the scenario's first defect, forced in every run) or good. Default bad; with --all each scenario's own (good when its releases are never defective).", show_default=False)] = None,
    hold: Annotated[Optional[list[str]], typer.Option("--hold", help="A metric whose live value must fall inside the prediction (repeatable): detection_time, time_to_restore, failed_fraction, rollout_duration, outcome, effective_weight[@W], switch_failures.")] = None,
    level: Annotated[float, typer.Option(min=0.5, max=0.999, help="Coverage of the prediction intervals.")] = 0.95,
    calibrate: Annotated[bool, typer.Option("--calibrate", help="Simulate again with the pod start time measured live, and judge against that.")] = False,
    executor: ExecutorOption = "serial",
    max_minutes: Annotated[Optional[float], typer.Option(min=0.5, help="Wall-clock bound of the whole validation. Default 30; 60 with --all.", show_default=False)] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for results.csv (simulated + live rows), live-results.csv, timelines.json, validation.json and the report (with --all: one such folder per scenario, and library.md/.csv/.json).")] = Path("out-validate"),
    report: ReportOption = True,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Print the live runner's log.")] = False,
    backend: Annotated[str, typer.Option(help="Where the live runs go: local (processes behind HAProxy) or kube (a cluster: real pods, a namespace per run).")] = "local",
    context: Annotated[Optional[str], typer.Option(help="kube: the kubeconfig context (default: the current one; KUBECONFIG says which file).")] = None,
    node_port: Annotated[Optional[int], typer.Option(min=30000, max=32767, help="kube: NodePort of the entry Service, reached on 127.0.0.1 (preview: +1). Default 30090.", show_default=False)] = None,
    namespace_prefix: Annotated[Optional[str], typer.Option(help="kube: each live run's namespace is PREFIX-RUN-RANDOM, deleted after it. Default rolloutlab-validate.", show_default=False)] = None,
) -> None:
    """Run a scenario (or, with --all, every library scenario) in the simulator and live (local processes, or a Kubernetes cluster with --backend kube); judge each live figure against the simulator's prediction interval (exit 1 when a --hold metric falls outside)."""
    from rolloutlab.workflows import validate as command

    runs_and_bound = command.check_validate_target(scenario, all_scenarios, strategy, only, live_runs, max_minutes)
    settings = command.Settings(sim_runs=runs, seed=1 if seed is None else seed, time_scale=time_scale,
                                max_rps=max_rps, replicas=replicas, release=release or "bad", level=level,
                                hold=tuple(hold or ()), calibrate=calibrate, executor=executor, backend=backend,
                                context=context, node_port=node_port, namespace_prefix=namespace_prefix,
                                **runs_and_bound)
    settings.check()  # bad options before the files are read
    if all_scenarios:
        raise typer.Exit(command.run_validate_all_command(
            settings, only=tuple(only or ()), strategy=strategy, release=release, out_dir=out_dir, out=out, err=err,
            report=report, verbose=verbose, seed_given=seed is not None))
    raise typer.Exit(command.run_validate_command(_load_scenario_arg(scenario), _load_strategy_or_manifest(strategy),
                                                  settings, out_dir=out_dir, out=out, err=err, report=report,
                                                  verbose=verbose, seed_given=seed is not None))


@app.command("export")
def export_command(
    strategy: Annotated[str, typer.Argument(help="A strategy file, a bundled name, or a manifest rolloutlab imports.")],
    to: Annotated[str, typer.Option("--to", help="The target: argo (a Rollout + AnalysisTemplates) or flagger (a "
                                                 "Canary + MetricTemplates).")],
    query: Annotated[Optional[list[str]], typer.Option("--query", help="NAME=TEMPLATE, NAME error-rate or latency: "
                     "the Prometheus query, with {{ interval }} and {{ quantile }} placeholders (default: a documented "
                     "placeholder query, with a warning).")] = None,
    out_file: Annotated[Optional[Path], typer.Option("--out", help="Write the manifests here instead of stdout.")] = None,
) -> None:
    """Write a strategy as Argo Rollouts or Flagger manifests; what the target cannot carry is a warning, or a refusal."""
    from rolloutlab.strategies.exporters import export_strategy, parse_queries

    spec = _load_strategy_or_manifest(strategy)
    result = export_strategy(spec, to, parse_queries(query or []), source=strategy)
    for warning in result.warnings:
        _warn(warning)
    if out_file is None:
        sys.stdout.write(result.text)
        return
    try:
        out_file.write_text(result.text)
    except OSError as error:
        _bad_input(InputError(str(out_file), f"cannot write the manifests here: {error.strerror or error}"))
    err.print(f"wrote {out_file} ({len(result.documents)} documents, {len(result.warnings)} warnings)")


@app.command()
def judges(
    scenario: Annotated[str, typer.Argument(help="A scenario file or bundled name (its service, traffic and first error_rate defect).")],
    strategy: Annotated[Optional[list[str]], typer.Option("--strategy", "-s", help="A strategy file, bundled name or Argo/Flagger manifest whose judges to measure (repeatable; default: the bundled canary with the threshold, Mann-Whitney and sequential judges).")] = None,
    runs: Annotated[int, typer.Option(min=1, help="Rollouts per judge, release and traffic level.")] = 200,
    seed: SeedOption = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for judges.csv, judges.png and judges.html.")] = Path("out/judges"),
) -> None:
    """Judge power curves: how often each analysis judge rolls back a bad release and a good one, against traffic per analysis window and defect size."""
    from rolloutlab.workflows.judge_power_command import run_judges_command

    run_judges_command(scenario, strategy or [], runs=runs, seed=seed, out_dir=out_dir, out=out, note=_note,
                       warn=_warn)


@app.command()
def tune(
    scenario: Annotated[str, typer.Argument(help="A scenario file, or a bundled scenario name (standard).")],
    strategy: Annotated[str, typer.Option("--strategy", "-s", help="The strategy to tune: a file, bundled name, or Argo/Flagger manifest; its search: list (or its kind's bundled one) says what to search.")] = "canary",
    objective: Annotated[Optional[list[str]], typer.Option("--objective", help="metric[.stat] to minimise, repeatable (default: failed_requests.mean and rollout_duration.mean).")] = None,
    constraint: Annotated[Optional[list[str]], typer.Option("--constraint", help="An expectation the tuned strategy must meet, repeatable (default: 'false_rollback_rate <= 2%').")] = None,
    candidates: Annotated[int, typer.Option(min=1, help="Candidates to try.")] = 200,
    runs: Annotated[str, typer.Option(help="Runs per stage, comma-separated: a candidate goes to the next stage only while it can still matter.")] = "50,150,450",
    confirm_runs: Annotated[int, typer.Option(min=10, help="Fresh runs comparing the chosen strategy with yours.")] = 2000,
    batch: Annotated[int, typer.Option(min=1, help="Candidates proposed and simulated together.")] = 8,
    seed: SeedOption = None,
    executor: ExecutorOption = "process",
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the tuned strategy, candidates.csv and the report.")] = Path("out/tune"),
) -> None:
    """Search a strategy's settings for a scenario: a Pareto front, the chosen strategy as YAML, and how it compares with yours."""
    from rich.progress import Progress

    from rolloutlab.workflows.compare import choose_seed
    from rolloutlab.workflows.tune.command import print_tune, write_outputs
    from rolloutlab.workflows.tune.command import tune as run_tune
    from rolloutlab.workflows.tune.objectives import (
        DEFAULT_CONSTRAINTS,
        DEFAULT_OBJECTIVES,
        parse_constraint,
        parse_objective,
    )
    from rolloutlab.workflows.tune.search import TuneSettings

    try:
        stages = tuple(int(r) for r in runs.split(","))
    except ValueError:
        _bad_input(InputError("--runs", f"{runs!r} is not comma-separated run counts (50,150,450)"))
    goals = tuple(parse_objective(o) for o in objective or DEFAULT_OBJECTIVES)
    limits = tuple(parse_constraint(c) for c in constraint or DEFAULT_CONSTRAINTS)
    _ensure_out_dir(out_dir)
    loaded = _load_scenario_arg(scenario)
    start = _load_strategy_or_manifest(strategy)
    settings = TuneSettings(goals, limits, candidates, stages, batch, choose_seed(seed, loaded), executor)
    with Progress(console=err, transient=True) as bar:
        task = bar.add_task(f"tuning {start.name}", total=candidates)
        result = run_tune(loaded, start, settings, confirm_runs=confirm_runs,
                          progress=lambda done, total: bar.update(task, completed=done))
    print_tune(result, out, write_outputs(result, out_dir, loaded.name))


@app.command()
def replay(
    strategy: Annotated[str, typer.Argument(help="A strategy file, bundled name, or Argo/Flagger manifest to replay.")],
    prometheus: Annotated[Optional[str], typer.Option("--prometheus", help="A Prometheus server holding the release's metrics (http://host:port).")] = None,
    from_file: Annotated[Optional[Path], typer.Option("--from", help="A recording instead: CSV (time,version,requests,errors[,le_<ms>...]) or OpenMetrics text.")] = None,
    start: Annotated[Optional[str], typer.Option(help="When the release started: ISO 8601 (2026-12-01T14:00:00Z) or Unix seconds (a file: default the first sample of the canary).")] = None,
    end: Annotated[Optional[str], typer.Option(help="The end of the recording to replay (a file: default its last sample).")] = None,
    step: Annotated[str, typer.Option(help="Resolution of the range queries, and the replay's largest time step.")] = "15s",
    replicas: Annotated[Optional[int], typer.Option(min=1, help="Pods per version the strategy scales (default: the strategy's, else 10).", show_default=False)] = None,
    requests_metric: Annotated[Optional[str], typer.Option(help="The request counter with a status-code label (default: demo_requests_total, else http_requests_total).", show_default=False)] = None,
    latency_metric: Annotated[Optional[str], typer.Option(help="Its latency histogram, without _bucket (default: the one beside the default counter).", show_default=False)] = None,
    version_label: Annotated[str, typer.Option(help="The label telling the versions apart.")] = "version",
    code_label: Annotated[str, typer.Option(help="The status-code label; 5xx counts as failed.")] = "code",
    canary: Annotated[Optional[str], typer.Option(help="The new version's label value (default: the version that started serving later).", show_default=False)] = None,
    stable: Annotated[Optional[str], typer.Option(help="The old version's label value.", show_default=False)] = None,
    canary_selector: Annotated[Optional[str], typer.Option(help="Label matchers selecting the canary's series instead of --version-label, e.g. 'track=\"canary\"'.", show_default=False)] = None,
    stable_selector: Annotated[Optional[str], typer.Option(help="Label matchers selecting the stable's series.", show_default=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the replay as JSON on stdout instead of tables.")] = False,
    out_dir: Annotated[Optional[Path], typer.Option("--out", help="Also write replay.csv, replay.json and report.html (with the timeline plot) here.", show_default=False)] = None,
) -> None:
    """Replay a strategy over a recorded release: every analysis measurement it would have taken, when it would have aborted or promoted, and how many requests would have failed before that."""
    import json

    from rolloutlab.workflows.replay import ReplaySettings, print_replay, replay_payload, run_replay, write_replay

    settings = ReplaySettings(prometheus=prometheus, from_file=from_file, start=start, end=end, step=step,
                              replicas=replicas, requests_metric=requests_metric, latency_metric=latency_metric,
                              version_label=version_label, code_label=code_label, canary=canary, stable=stable,
                              canary_selector=canary_selector, stable_selector=stable_selector)
    result = run_replay(_load_strategy_or_manifest(strategy), settings)
    paths = write_replay(result, out_dir) if out_dir is not None else {}
    if as_json:
        sys.stdout.write(json.dumps(replay_payload(result), indent=2, allow_nan=False) + "\n")
    else:
        print_replay(result, out)
    for what, path in paths.items():
        err.print(f"{what}: {path}", highlight=False)

@app.command()
def fit(
    log: Annotated[Path, typer.Argument(help="A deployment log (CSV, JSON, or a GitHub deployments export; the formats report --log reads).")],
    out_file: Annotated[Path, typer.Option("--out", help="Where to write the fitted scenario YAML.")] = Path("fitted.yaml"),
    base: Annotated[str, typer.Option("--base", help="The scenario whose fields the data does not cover are kept (a file or bundled name).")] = _DEFAULTS.DEFAULT_MONTH,
    service: Annotated[Optional[str], typer.Option("--service", help="The service to fit, when the log holds several.")] = None,
    prometheus: Annotated[Optional[str], typer.Option("--prometheus", help="Prometheus URL for traffic, its profile, baseline errors and latency (needs --start and --end).")] = None,
    start: Annotated[Optional[str], typer.Option("--start", help="Start of the Prometheus range: Unix seconds or ISO 8601.")] = None,
    end: Annotated[Optional[str], typer.Option("--end", help="End of the Prometheus range: Unix seconds or ISO 8601.")] = None,
    requests_query: Annotated[Optional[str], typer.Option("--requests-query", help="PromQL: requests per second, one series (default: sum(rate(http_requests_total[5m]))).")] = None,
    errors_query: Annotated[Optional[str], typer.Option("--errors-query", help="PromQL: failed requests per second, one series (default: 5xx of http_requests_total).")] = None,
    latency_query: Annotated[Optional[str], typer.Option("--latency-query", help="PromQL: a latency quantile in seconds, {quantile} standing for 0.5 and 0.99 (default: histogram_quantile over http_request_duration_seconds_bucket).")] = None,
    seed: SeedOption = None,
) -> None:
    """Fit a scenario to a team's deployment log (and Prometheus): every parameter with its interval and source, or refused with the reason."""
    from rolloutlab.workflows.fit import print_fit, run_fit
    from rolloutlab.workflows.fit.from_prometheus import PrometheusSource, parse_time

    source = None
    if prometheus is not None:
        if start is None or end is None:
            _bad_input(InputError("--prometheus", "needs --start and --end (the range to read)"))
        queries = {k: v for k, v in (("requests_query", requests_query), ("errors_query", errors_query),
                                     ("latency_query", latency_query)) if v is not None}
        source = PrometheusSource(prometheus, parse_time(start, "--start"), parse_time(end, "--end"), **queries)
    elif any(v is not None for v in (start, end, requests_query, errors_query, latency_query)):
        _bad_input(InputError("--start", "--start, --end and the queries need --prometheus URL"))
    result = run_fit(log, out_file, base=base, service=service,
                     seed=_DEFAULTS.DEFAULT_SEED if seed is None else seed, prometheus=source)
    print_fit(result, out)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
