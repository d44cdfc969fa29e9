"""``rolloutlab live``: one scenario's rollout run for real, from settings to files.

Joins the live runner (``live.session``), a backend opened by name, the results table,
timelines and the report. The CLI parses arguments, loads the scenario and the strategy,
and calls :func:`run_live_command`; every error raised here is a ``rolloutlab.errors``
one (bad input: exit 2; a run that failed: exit 1), and an interrupted run returns 130.

A live run waits a long time in places (the stable version starting, a rollout's pauses,
and after a rollback the rest of the scenario's window, which the simulator also
follows): :class:`WaitDisplay` shows each wait as it happens — what the run waits for
and the scenario time — as a transient rich progress bar on a terminal, or as a line
whenever the wait changes on a log.

A scenario with ``regions`` (or a strategy with ``waves``) runs region by region
(``live.regions``): one backend per region -- on the local backend each region its own
state folder (``OUT/state/REGION``), HAProxy and pods; on Kubernetes each region a
kubeconfig context, by default the context named like the region, else the one
``--region-context REGION=CONTEXT`` names, with region k's entry Service on NodePort
``--node-port`` + 2k, reached at its API server's address when that is a loopback one
(``scripts/kube-cluster.sh kubeconfig --clusters 1,2 --contexts us-east,eu-west`` makes
such a kubeconfig for the clusters of this machine) -- and the waves' own state in
``OUT/state/waves.json``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rolloutlab.errors import InputError, LiveUnsupported, RolloutlabError, RunFailed
from rolloutlab.live.runner import Waiting
from rolloutlab.live.session import BACKENDS, RELEASES
from rolloutlab.scenarios.schema import Scenario
from rolloutlab.strategies import StrategySpec

METRICS = ("loadgen", "scrape", "prometheus")
INTERRUPTED = 130  # the shell's status for a run ended by Ctrl-C

SHOWN_COLUMNS = ("outcome", "detected_at", "time_to_restore", "rollout_duration", "requests", "failed_requests",
                 "baseline_failed_requests", "release_failed_requests", "router_failures", "release_failures",
                 "regions_reached", "blast_radius")
"""The figures ``rolloutlab live`` prints (those the row has)."""


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class LiveSettings:
    """The options of one live run (wall-clock bounds in minutes, rates per wall second)."""

    backend: str = "local"
    context: str | None = None  # kube: the kubeconfig context
    namespace: str = "default"
    node_port: int = 30080
    url: str | None = None
    time_scale: float = 10.0
    release: str = "bad"
    seed: int = 1
    max_rps: float = 100.0
    replicas: int | None = None
    max_minutes: float = 20.0
    rollback: bool = False
    metrics: str = "loadgen"
    out_dir: Path = Path("out-live")
    report: bool = True
    region_contexts: tuple[str, ...] = ()  # kube, with regions: "REGION=CONTEXT" each

    def check(self) -> None:
        """Bad options as InputError naming the flag, before anything starts."""
        from rolloutlab.live.loadgen import is_loopback_url

        for flag, value, allowed in (("--backend", self.backend, BACKENDS), ("--release", self.release, RELEASES)):
            if value not in allowed:
                raise InputError(flag, f"must be one of {', '.join(allowed)}, not {value!r}")
        if self.metrics not in METRICS or (self.metrics == "scrape" and self.backend != "kube"):
            raise InputError("--metrics", f"must be loadgen, or scrape with --backend kube, or prometheus with "
                                          f"--backend local; got {self.metrics!r}")
        if self.metrics == "prometheus" and self.backend != "local":
            raise InputError("--metrics", f"prometheus runs with --backend local only: on --backend {self.backend} "
                                          "rolloutlab does not start a Prometheus in the cluster yet (use scrape)")
        for flag, number in (("--time-scale", self.time_scale), ("--max-rps", self.max_rps),
                             ("--max-minutes", self.max_minutes)):
            if not math.isfinite(number):
                raise InputError(flag, f"must be a finite number, not {number}")
        if self.url is not None and not is_loopback_url(self.url):
            raise InputError("--url", f"{self.url!r}: the load generator sends traffic to http(s)://127.0.0.1 or "
                                      "localhost only")
        if self.region_contexts and self.backend != "kube":
            raise InputError("--region-context", "names a kubeconfig context per region: only with --backend kube")
        self.contexts()

    def contexts(self) -> dict[str, str]:
        """``--region-context`` as {region: context} (InputError on a malformed one)."""
        out: dict[str, str] = {}
        for text in self.region_contexts:
            region, sep, context = text.partition("=")
            if not sep or not region.strip() or not context.strip():
                raise InputError("--region-context", f"{text!r}: expected REGION=CONTEXT, e.g. us-east=kind-east")
            if region.strip() in out:
                raise InputError("--region-context", f"region {region.strip()!r} is given twice")
            out[region.strip()] = context.strip()
        return out

    def urls(self) -> dict[str, str | None] | None:
        """Where users reach the app: the kube NodePorts (or --url); None: the backend knows."""
        if self.backend != "kube":
            return None
        base = self.url or f"http://127.0.0.1:{self.node_port}/"
        return {"user": base, "preview": f"http://127.0.0.1:{self.node_port + 1}/" if self.url is None else None}


# --------------------------------------------------------------------------- progress


class WaitDisplay:
    """Shows what a live run waits for (``live.runner.Waiting``) and the scenario time.

    On a terminal: a transient rich progress bar over the scenario's window, its
    description the current wait. On a log (not a terminal): a line each time the wait
    changes, and again every ``repeat_s`` wall seconds of the same wait, so a CI log shows
    the run is alive without a line per runner cycle."""

    def __init__(self, console: Console, duration: float, label: str = "live", repeat_s: float = 30.0) -> None:
        self.console = console
        self.duration = float(duration)
        self.label = label
        self.repeat_s = repeat_s
        self._progress: Any = None
        self._task: Any = None
        self._last_line: tuple[str, float] | None = None

    def __enter__(self) -> "WaitDisplay":
        if self.console.is_terminal:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn(f"[bold]{escape(self.label)}[/]"), BarColumn(bar_width=20),
                TextColumn("{task.fields[clock]}"), TimeElapsedColumn(), TextColumn("{task.description}"),
                console=self.console, transient=True)
            self._task = self._progress.add_task("starting", total=self.duration, clock="")
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def __call__(self, waiting: Waiting) -> None:
        clock = "" if waiting.now is None else f"t={waiting.now:.0f}s of {self.duration:.0f}s"
        if self._progress is not None:
            completed = 0.0 if waiting.now is None else min(max(waiting.now, 0.0), self.duration)
            self._progress.update(self._task, description=escape(waiting.what), completed=completed, clock=clock)
            return
        now = time.monotonic()
        if self._last_line is not None:
            what, at = self._last_line
            if what == waiting.what and now - at < self.repeat_s:
                return
        self._last_line = (waiting.what, now)
        self.console.print(f"{self.label}: {clock + ': ' if clock else ''}waiting for {waiting.what}",
                           highlight=False, markup=False, soft_wrap=True)


# --------------------------------------------------------------------------- the command


def run_live_command(scenario: Scenario, spec: StrategySpec, settings: LiveSettings, *, out: Console, err: Console,
                     where: str | None = None, open_backend: Callable[..., Any] | None = None) -> int:
    """Run the rollout live, print its figures, write results.csv, timelines.json and the
    report; return the exit status (0, or 130 when interrupted). ``where`` names the
    scenario in bad-input messages; ``open_backend`` (tests) replaces
    ``live.session.open_backend``. Bad input and failed runs raise ``rolloutlab.errors``."""
    from rolloutlab.live import session

    settings.check()
    where = where or scenario.name
    if scenario.regions or spec.waves is not None:
        return _run_regions_command(scenario, spec, settings, out=out, err=err, where=where,
                                    open_backend=open_backend)
    spec = spec.with_replicas(settings.replicas or spec.replicas or scenario.service_under_test.replicas)
    if settings.backend == "kube" and spec.strategy.blue_green and settings.node_port >= 32767:
        raise InputError("--node-port", "blue-green needs NODE_PORT+1 for its preview Service: at most 32766")
    try:
        plan = session.make_plan(scenario, spec, release=settings.release, seed=settings.seed,
                                 time_scale=settings.time_scale)
    except LiveUnsupported as error:
        raise InputError(where, str(error)) from None
    _ensure_out_dir(settings.out_dir)
    state_dir = settings.out_dir / "state"
    try:
        target = (open_backend or session.open_backend)(
            settings.backend, state_dir=state_dir, context=settings.context, namespace=settings.namespace,
            node_port=settings.node_port, seed=settings.seed, log=None, scenario=scenario,
            time_scale=settings.time_scale)
    except Exception as error:  # no kubeconfig, unknown context, ...: the user's setup, said plainly
        raise InputError(f"--backend {settings.backend}", f"cannot open the backend: {error}") from None
    log = (lambda text: err.print(text, highlight=False, markup=False, soft_wrap=True))
    prometheus = None
    try:
        metrics, before_run = settings.metrics, None
        if metrics == "prometheus":
            # Prometheus answers the controller (live.prometheus_metrics); the load generator
            # still sends the traffic and counts what users saw, for the results row
            prometheus = _start_prometheus(target, spec, plan, settings, where)
            metrics, before_run = "loadgen", prometheus.install
        with WaitDisplay(err, scenario.duration) as display:
            result = session.run_live(
                scenario, spec, target, plan, urls=settings.urls(), time_scale=settings.time_scale,
                seed=settings.seed, max_rps=settings.max_rps, max_wall_s=settings.max_minutes * 60, log=log,
                metrics=metrics, rollback=settings.rollback, progress=display, before_run=before_run)
    except LiveUnsupported as error:
        raise InputError(where, str(error)) from None
    except KeyboardInterrupt:
        saved = ("in the cluster (annotations of its Service)" if settings.backend == "kube" else f"in {state_dir}")
        err.print(f"[yellow]interrupted:[/] the rollout's state is saved {escape(saved)}; run the same command again "
                  "to resume it, or add --rollback to roll it back", highlight=False, soft_wrap=True)
        return INTERRUPTED
    except RolloutlabError:
        raise
    except (TimeoutError, RuntimeError, OSError) as error:  # the backend or the load generator gave up
        raise RunFailed(f"live run failed: {error}") from error
    finally:
        if prometheus is not None:
            prometheus.close()
        close = getattr(target, "close", None)
        if close is not None:
            close()
    if prometheus is not None:
        result.timeline.update(prometheus.summary())  # the PromQL that ran, with Prometheus' answers
    _write_outputs(result.row, result.timeline, settings, out,
                   title=f"{spec.name} on {scenario.name}, {settings.backend} ({plan.defect} release, "
                         f"time x{settings.time_scale:g})")
    if prometheus is not None:
        out.print(f"Prometheus answered {prometheus.answered} PromQL queries "
                  f"({len(prometheus.records)} analysis measurements)")
        prometheus.check_answered()  # a query without a series in the whole run: bad input, said after the files
    return 0


def _start_prometheus(backend: Any, spec: StrategySpec, plan: Any, settings: LiveSettings, where: str) -> Any:
    """The Prometheus metrics source of a run, started (its errors: bad input, exit 2)."""
    from rolloutlab.live.prometheus_metrics import PrometheusMetrics

    try:
        source = PrometheusMetrics(backend, spec, plan, settings.time_scale, namespace=settings.namespace)
    except LiveUnsupported as error:
        raise InputError(where, str(error)) from None
    return source.start()


def _write_outputs(row: dict[str, Any], timeline: dict[str, Any], settings: LiveSettings, out: Console,
                   title: str) -> None:
    """results.csv, timelines.json, the figures printed, and the report."""
    from rolloutlab.results.table import to_frame, write_results

    frame = to_frame([row])
    csv_path, _ = write_results(frame, settings.out_dir / "results")
    (settings.out_dir / "timelines.json").write_text(json.dumps([timeline], allow_nan=False))
    render_live_row(row, out, title=title)
    out.print(f"results: {csv_path} (times in scenario seconds)")
    if settings.report:
        written = write_report(frame, [timeline], settings.out_dir)
        out.print(f"report: {written['html']}")


# --------------------------------------------------------------------------- region by region


def _run_regions_command(scenario: Scenario, spec: StrategySpec, settings: LiveSettings, *, out: Console,
                         err: Console, where: str, open_backend: Callable[..., Any] | None) -> int:
    """``run_live_command`` for a scenario with regions (see the module docstring)."""
    from rolloutlab.live import session
    from rolloutlab.live.regions import run_live_waves
    from rolloutlab.scenarios.regions import region_scenario, waves_for

    try:
        waves_for(scenario, spec)
    except ValueError as error:
        raise InputError(where, str(error)) from None
    names = [r.name for r in scenario.regions]
    contexts = settings.contexts()
    if settings.metrics == "prometheus":
        raise InputError("--metrics", f"scenario {scenario.name!r} runs in regions ({', '.join(names)}): "
                                      "prometheus is not supported with regions yet; use loadgen")
    for flag, given in (("--url", settings.url), ("--context", settings.context)):
        if given is not None:
            raise InputError(flag, f"scenario {scenario.name!r} runs in regions ({', '.join(names)}): each region "
                                   "has its own entry" + (" and context: give --region-context REGION=CONTEXT"
                                                          if flag == "--context" else ""))
    unknown = sorted(set(contexts) - set(names))
    if unknown:
        raise InputError("--region-context", f"no region {', '.join(unknown)} in scenario {scenario.name!r} "
                                             f"(its regions: {', '.join(names)})")
    last_port = settings.node_port + 2 * (len(names) - 1) + 1
    if settings.backend == "kube" and last_port > 32767:
        raise InputError("--node-port", f"region k's entry is NODE_PORT + 2k (preview +1): {len(names)} regions "
                                        f"need ports up to {last_port}, above 32767")
    _ensure_out_dir(settings.out_dir)
    state_dir = settings.out_dir / "state"
    backends: dict[str, Any] = {}
    urls: dict[str, dict[str, str | None]] | None = {} if settings.backend == "kube" else None
    log = (lambda text: err.print(text, highlight=False, markup=False, soft_wrap=True))
    try:
        for k, region in enumerate(scenario.regions):
            context = contexts.get(region.name, region.name)
            port = settings.node_port + 2 * k
            try:
                backends[region.name] = (open_backend or session.open_backend)(
                    settings.backend, state_dir=state_dir / region.name, context=context,
                    namespace=settings.namespace, node_port=port, seed=settings.seed + k, log=None,
                    scenario=region_scenario(scenario, region), time_scale=settings.time_scale)
            except Exception as error:  # no kubeconfig, unknown context, ...: the user's setup, said plainly
                flag = f"--region-context {region.name}={context}" if settings.backend == "kube" else "--backend local"
                raise InputError(flag, f"cannot open the backend of region {region.name}: {error}") from None
            if urls is not None:
                host = _node_port_host(backends[region.name])
                urls[region.name] = {"user": f"http://{host}:{port}/", "preview": f"http://{host}:{port + 1}/"}
        with WaitDisplay(err, scenario.duration, label="live waves") as display:
            result = run_live_waves(
                scenario, spec, backends, state_file=state_dir / "waves.json", urls=urls, release=settings.release,
                seed=settings.seed, time_scale=settings.time_scale, replicas=settings.replicas,
                max_rps=settings.max_rps, max_wall_s=settings.max_minutes * 60, metrics=settings.metrics,
                rollback=settings.rollback, log=log, progress=display)
    except LiveUnsupported as error:
        raise InputError(where, str(error)) from None
    except KeyboardInterrupt:
        saved = "in each region's cluster" if settings.backend == "kube" else f"in {state_dir}"
        err.print(f"[yellow]interrupted:[/] every region's rollout state is saved {escape(saved)} and the waves' in "
                  f"{escape(str(state_dir / 'waves.json'))}; run the same command again to resume, or add --rollback "
                  "to roll every region back", highlight=False, soft_wrap=True)
        return INTERRUPTED
    except RolloutlabError:
        raise
    except (TimeoutError, RuntimeError, OSError) as error:  # a backend or a load generator gave up
        raise RunFailed(f"live run failed: {error}") from error
    finally:
        for backend in backends.values():
            close = getattr(backend, "close", None)
            if close is not None:
                close()
    row = result.row
    _write_outputs(row, result.timeline, settings, out,
                   title=f"{spec.name} on {scenario.name}, {settings.backend}, {len(names)} regions "
                         f"({row['defect']} release, time x{settings.time_scale:g})")
    return 0


def _node_port_host(backend: Any) -> str:
    """Where this machine reaches a region's NodePorts: its API server's address when that
    is a loopback one (scripts/kube-cluster.sh's cluster N answers on 127.0.0.N, API server
    and NodePorts alike; kind maps both to 127.0.0.1), else 127.0.0.1."""
    import ipaddress
    from urllib.parse import urlparse

    api = getattr(backend, "api", None)
    host = urlparse(api.configuration.host).hostname if api is not None else None
    try:
        return host if host is not None and ipaddress.ip_address(host).is_loopback else "127.0.0.1"
    except ValueError:  # a name (localhost, a DNS name)
        return "127.0.0.1"


def render_live_row(row: dict[str, Any], console: Console, title: str) -> None:
    """The run's figures as a two-column table (times in scenario seconds)."""
    table = Table(title=title, min_width=min(len(title) + 4, 100))  # the title on one line, within 100 columns
    table.add_column("figure")
    table.add_column("value", justify="right")
    for column in SHOWN_COLUMNS:
        if column in row:
            value = row[column]
            table.add_row(column, f"{value:.1f}" if isinstance(value, float) else str(value))
    console.print(table)


def write_report(results, timelines: list[dict], out_dir: Path) -> dict[str, Path]:
    from rolloutlab.reports.document import build_report
    from rolloutlab.reports.document import write_report as write

    return write(build_report(results, timelines, None), out_dir)


def _ensure_out_dir(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(str(out_dir), f"cannot use this as the output folder: {error.strerror or error}") from None


__all__ = ["BACKENDS", "LiveSettings", "METRICS", "RELEASES", "WaitDisplay", "render_live_row", "run_live_command"]
