"""One live run of a scenario: the plan, the load, the chaos, the runner, the results row.

Shared by both backends (Kubernetes and local processes): a scenario becomes a
``ReleasePlan`` (the demo service's environment per version, its times divided by the
time scale), the scenario's faults become chaos calls on the backend at their scenario
times, the load generator sends the scenario's traffic (capped at what this machine can
send), and the run ends as one results-table row (``source`` = the backend's) plus a
timeline in the simulator's format, so ``rolloutlab report`` reads both unchanged.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from rolloutlab.errors import LiveUnsupported, StateError
from rolloutlab.live.baseline import BaselineMetrics, BaselineScrape, has_baseline
from rolloutlab.live.loadgen import ERROR_RESULTS, NO_ANSWER, NOT_SERVED, LoadGenerator, RequestResult, Target
from rolloutlab.live.request_results import compute_users_affected
from rolloutlab.live.runner import (
    Backend,
    LiveVersion,
    NoMetrics,
    Progress,
    ReleasePlan,
    Runner,
    RunSummary,
    Waiting,
    is_final,
)
from rolloutlab.live.scenario_faults import fault_schedule, prepare_backend
from rolloutlab.live.technique_metrics import FlagMetrics, LocalPodScrape, LocalShadowScrape, MirrorMetrics
from rolloutlab.live.user_population import UserPopulation, UserSegment
from rolloutlab.results.table import DETECTED_BY_ABORT_CAUSE, DetectedBy
from rolloutlab.scenarios.release import draw_release, make_streams, run_seed_sequence
from rolloutlab.scenarios.schema import LognormalDistribution, Scenario
from rolloutlab.strategies import Command, Role, StrategySpec

RELEASES = ("bad", "good", "drawn")
PROGRESS_EVERY_S = 1.0  # wall seconds between progress reports while following the window
PEAK_MIN_REQUESTS = 20  # a peak error rate is taken over scrape-interval bins with at least this many requests
# answered by nobody or by the router (timeouts and client-side errors are not the router's)
ROUTER_RESULTS = tuple(sorted(r.value for r in NO_ANSWER - {RequestResult.TIMEOUT, RequestResult.OTHER}))


# --------------------------------------------------------------------------- the plan


def _expected_seconds(distribution) -> float:
    return float(distribution.expected()) if hasattr(distribution, "expected") else float(distribution.value)


def version_env(scenario: Scenario, defect, time_scale: float, flag_key: str | None = None) -> dict[str, str]:
    """The demo service's environment for a version carrying ``defect`` (None: healthy).
    ``flag_key``: the version evaluates that feature flag (its backend says where the
    flag file is, ``DEMO_FLAG_FILE``), and a defect behind the flag fails only requests
    that got the flag on (``DEMO_FLAG_ERROR_RATE``)."""
    service = scenario.service_under_test
    timing = service.pod_timing
    start = _expected_seconds(timing.schedule_delay) + _expected_seconds(timing.start_delay)
    env = {
        "DEMO_ERROR_RATE": f"{service.baseline_error_rate:g}",
        "DEMO_LATENCY_MS": f"{service.latency.median_ms:g}",
        "DEMO_START_DELAY_S": f"{start / time_scale:.3f}",
        "DEMO_DRAIN_S": f"{min(timing.termination_grace, 5.0) / time_scale:.3f}",
    }
    slow_probes = probe_timeout_rate(scenario)
    if slow_probes >= 1e-4:
        env["DEMO_READY_ERROR_RATE"] = f"{slow_probes:.4g}"
    if flag_key is not None:
        env["DEMO_FLAG_KEY"] = flag_key
    if defect is None:
        return env
    kind = defect.kind
    if flag_key is not None and getattr(defect, "behind_flag", False):
        if kind != "error_rate":
            raise LiveUnsupported(f"a {kind} defect behind a feature flag has no live form yet (the demo "
                                  "service's flagged path can fail, not slow down or leak)")
        env["DEMO_FLAG_ERROR_RATE"] = f"{defect.error_rate:g}"
        return env
    if kind == "error_rate":
        env["DEMO_ERROR_RATE"] = f"{min(1.0, service.baseline_error_rate + defect.error_rate):g}"
    elif kind == "latency":
        env["DEMO_LATENCY_MS"] = f"{service.latency.median_ms * defect.multiplier + defect.added_ms:g}"
    elif kind == "crash_on_start":
        if defect.crash_probability < 1.0:
            raise LiveUnsupported("crash_on_start with crash_probability below 1 has no live form: "
                                  "the demo service crashes every pod or none")
        env["DEMO_CRASH_ON_START"] = "1"
        env["DEMO_CRASH_AFTER_S"] = f"{defect.crash_after / time_scale:.3f}"
    elif kind == "leak":
        env["DEMO_LEAK_AFTER_S"] = f"{defect.after / time_scale:.3f}"
        # per scenario minute -> per wall minute: time runs time_scale times faster
        env["DEMO_LEAK_ERROR_RATE_PER_MIN"] = f"{defect.error_rate_per_minute * time_scale:g}"
        env["DEMO_LEAK_LATENCY_MS_PER_MIN"] = f"{defect.latency_growth_per_minute * time_scale:g}"
    elif kind == "full_load_only":
        pass  # the backend that routes the traffic switches it on (live.scenario_faults.prepare_backend)
    elif kind == "side_effects":
        env["DEMO_SIDE_EFFECTS"] = "1"  # a mirrored write is performed again (and counted)
    elif kind == "incompatible_migration":
        if scenario.migration is None:
            raise LiveUnsupported("an incompatible_migration defect needs the scenario's migration section")
        # the database settings come with the run's PostgreSQL (live.session_migration)
    else:
        raise LiveUnsupported(f"defect kind {kind!r} has no live form yet (live runs support error_rate, "
                              "latency, crash_on_start, leak, full_load_only, side_effects, incompatible_migration)")
    return env


def probe_timeout_rate(scenario: Scenario) -> float:
    """The chance that a readiness probe's answer is slower than the probe's timeout, from
    the service's lognormal latency (median, p99): how often the simulator's probe fails on
    a healthy pod. The demo service answers its health endpoint at once, so a live pod fails
    that share of its probes on purpose (``DEMO_READY_ERROR_RATE``); a too-tight timeout
    (the flaky-health-check scenario: 250 ms at the p99, 1 in 100) then really flaps pods."""
    from scipy.stats import lognorm

    service = scenario.service_under_test
    sigma = LognormalDistribution(median=service.latency.median_ms / 1000.0,
                                  p99=service.latency.p99_ms / 1000.0).sigma_value
    timeout = service.pod_timing.readiness.timeout
    return float(lognorm.sf(timeout, s=sigma, scale=service.latency.median_ms / 1000.0))


def pick_defect(scenario: Scenario, release: str, seed: int, run: int):
    """The canary's defect: the scenario's first (``bad``), none (``good``), or drawn like
    the simulator draws it for this seed and run (``drawn``)."""
    if release not in RELEASES:
        raise ValueError(f"release must be one of {', '.join(RELEASES)}, not {release!r}")
    if release == "good":
        return None
    if release == "bad":
        if not scenario.release.defects:
            raise LiveUnsupported(f"scenario {scenario.name!r} declares no defects: a bad release needs one")
        return scenario.release.defects[0]
    streams = make_streams(run_seed_sequence(seed, run))
    return draw_release(scenario, streams["release"]).defect


def make_plan(scenario: Scenario, spec: StrategySpec, *, release: str = "bad", seed: int = 0, run: int = 0,
              time_scale: float = 1.0, app: str = "demo", stable: str = "v1", canary: str = "v2") -> ReleasePlan:
    defect = pick_defect(scenario, release, seed, run)
    flag = spec.strategy.feature_flag
    # POST /fault needs this run's secret; only the runner and its backend know it
    token = {"DEMO_FAULT_TOKEN": secrets.token_urlsafe(24)}
    flag_key = flag.flag_key if flag is not None else None  # only the new version has the flagged path
    # No DEMO_SEED in a version's environment: every pod of the version would draw the same
    # stream (the same requests fail on every pod: errors come in bursts of `replicas`, and a
    # seed whose first 47 draws pass hid a 5% defect from the first analysis windows of every
    # run). The local backend seeds each pod from its own seed; Kubernetes pods seed from the OS.
    return ReleasePlan(
        app=app, release=f"{app}-{canary}", replicas=spec.replicas or scenario.service_under_test.replicas,
        stable=LiveVersion(stable, {**version_env(scenario, None, time_scale), **token}),
        canary=LiveVersion(canary, {**version_env(scenario, defect, time_scale, flag_key), **token}),
        defect=defect.kind if defect is not None else "none",
    )


# --------------------------------------------------------------------------- one run


@dataclass
class LiveRun:
    row: dict[str, Any]
    timeline: dict[str, Any]
    records: pd.DataFrame
    summary: RunSummary


def live_rates(scenario: Scenario, max_rps: float) -> tuple[float, float]:
    """(user rps, preview rps) the load generator sends: the scenario's, capped together at
    ``max_rps`` in the same proportion (the results record both)."""
    user, preview = scenario.traffic.rps, scenario.traffic.preview_rps
    factor = min(1.0, max_rps / (user + preview)) if user + preview > 0 else 1.0
    return user * factor, preview * factor


def run_live(scenario: Scenario, spec: StrategySpec, backend: Backend, plan: ReleasePlan, **settings: Any) -> LiveRun:
    """Run the rollout for real with traffic; return its row and timeline (``_run_live``
    says the settings). A scenario with a ``migration`` runs against its own PostgreSQL
    (``live.session_migration``), removed when the run ends."""
    if scenario.migration is None:
        return _run_live(scenario, spec, backend, plan, **settings)
    from rolloutlab.live.session_migration import MigrationRun

    fault_schedule(scenario, backend, settings["time_scale"])  # LiveUnsupported before a database starts
    migration = MigrationRun.open(scenario, backend, plan, log=settings.get("log"))
    try:
        return _run_live(scenario, spec, migration.backend, migration.plan, extra_faults=migration.schedule(),
                         **settings)
    finally:
        migration.close()


def _run_live(
    scenario: Scenario, spec: StrategySpec, backend: Backend, plan: ReleasePlan, *,
    urls: dict[str, str | None] | None = None, time_scale: float, seed: int, run: int = 0, max_rps: float = 200.0,
    max_wall_s: float = 600.0, log: Callable[[str], None] | None = None,
    before_run: Callable[[Runner], None] | None = None, metrics: str = "loadgen", rollback: bool = False,
    progress: Progress | None = None, extra_faults: list[tuple[float, Callable[[], None]]] = (),
) -> LiveRun:
    """Run the rollout for real with traffic; return its row and timeline. ``rollback``:
    abort the rollout an interrupted run left behind (StateError if there is none).
    ``progress`` is told what the run waits for, on every runner cycle and at least every
    ``PROGRESS_EVERY_S`` wall seconds of any other long wait (``live.runner.Waiting``).
    ``extra_faults``: more (scenario second, call) pairs for the runner (a migration's steps)."""
    spec = spec if spec.replicas else spec.with_replicas(plan.replicas)
    if spec.strategy.feature_flag is not None and not hasattr(backend, "flag_file"):
        raise LiveUnsupported(f"feature flags run on the local backend only: the {backend.source} backend has no "
                              "flag file its pods read (the demo image carries no OpenFeature provider)")
    if has_baseline(spec) and not hasattr(backend, "observe_baseline"):
        raise LiveUnsupported(f"a canary with a baseline deployment (canary.baseline) runs on the local backend and "
                              f"in the simulator: the {backend.source} backend starts no baseline pods yet")
    faults = fault_schedule(scenario, backend, time_scale) + list(extra_faults)  # LiveUnsupported before anything starts
    prepare_backend(scenario, backend, plan, time_scale)
    runner = Runner(spec, plan, backend, NoMetrics(), time_scale=time_scale, faults=faults, log=log,
                    progress=progress)
    state, resumed = runner.prepare()
    if resumed and is_final(state.status):
        what = "promoted" if state.status.completed else "rolled back"
        raise StateError(f"release {plan.release} was already {what} by an earlier run; nothing to run "
                         "(delete the app's objects, or use another app name, for a new experiment)")
    if rollback and not resumed:
        raise StateError(f"nothing to roll back: no interrupted rollout of {plan.release} was found")
    if rollback:
        runner.request(Command.ABORT)
    # Users arrive once the stable version serves, as on a real service before a release;
    # traffic into a half-started setup would count start-up failures as the release's.
    runner.wait_until_stable_serves(timeout_s=min(120.0, max_wall_s))
    if urls is None:
        urls = backend.urls()  # a backend that owns its router (local) knows them once set up
    user_rps, preview_rps = live_rates(scenario, max_rps)
    targets = [Target("user", urls["user"], user_rps, users=user_population(scenario))]
    if spec.strategy.blue_green and urls.get("preview") and preview_rps > 0:
        targets.append(Target("preview", urls["preview"], preview_rps))
    window_s = scenario.duration / time_scale
    load = LoadGenerator(
        targets, seed=seed, timeout_s=scenario.service_under_test.request_timeout,
        max_requests=int(sum(t.rate_rps for t in targets) * (max_wall_s + 5) * 1.5) + 100,
        max_duration_s=max_wall_s + 5,
        # A router that balances connections, not requests (kube-proxy), would pin the
        # generator's few kept-alive connections to the pods that were ready first; real
        # users are many clients, so each request comes on a connection of its own.
        max_keepalive=0 if getattr(backend, "balances_connections", False) else 16,
    )
    if metrics == "scrape":
        if not hasattr(backend, "metrics_source"):
            raise LiveUnsupported(f"--metrics scrape needs pod metrics the {backend.source} backend cannot read")
        runner.metrics = backend.metrics_source()  # the pods' own /metrics (no Prometheus needed)
    elif metrics == "loadgen":
        runner.metrics = load  # what users saw, per version
    else:
        raise ValueError(f"metrics must be loadgen or scrape, not {metrics!r}")
    shadow = duplicated = None
    if plan.defect == "side_effects" and mirrors(spec):
        if not hasattr(backend, "pods"):
            raise LiveUnsupported(f"counting the writes a mirror duplicates needs the pods' own counters, which the "
                                  f"{backend.source} backend does not read (the local backend does)")
        duplicated = LocalPodScrape(backend, "demo_duplicated")  # read with the shadow counters, while pods live
    if spec.strategy.feature_flag is not None:
        runner.metrics = FlagMetrics(load, spec.strategy.feature_flag.on_variant)
    elif mirrors(spec) and hasattr(backend, "pods"):
        # the copies a mirror sends the new version count on it, as its own metrics would
        shadow = LocalShadowScrape(backend)
        read = shadow if duplicated is None else (lambda: (duplicated(), shadow())[1])
        runner.metrics = MirrorMetrics(runner.metrics, read)
    if has_baseline(spec):
        # the baseline pods' own counters, which its analysis compares the canary with
        runner.metrics = BaselineMetrics(runner.metrics, BaselineScrape(backend))
    if before_run is not None:
        before_run(runner)
    with load:
        # Until the rollout is final and cleaned up, as the simulator follows a run past its
        # window; the counts below only take the window's traffic.
        summary = runner.run(max_wall_s=max_wall_s)
        # follow the window to its end, as the simulator does, so counts are comparable
        remaining = window_s - summary.ended_at / time_scale
        if remaining > 0 and summary.finished:
            # backend.wait returns early on any change (a pod gone): sleep in a loop to the end
            follow_until = time.monotonic() + min(remaining, max_wall_s)
            final = summary.status
            ended = (f"promoted at t={final.completed_at:.0f}s" if final.completed
                     else f"rolled back at t={final.restored_at:.0f}s")
            what = f"the end of the scenario's window (the rollout was {ended})"
            while (left := follow_until - time.monotonic()) > 0:
                if progress is not None:
                    progress(Waiting(what, runner.now(summary.state), float(scenario.duration)))
                # a wait wakes on any change since the last observation: observe first, or
                # one change makes every later wait return at once (a busy loop that starved
                # the load generator of its thread: requests late and timed out after the
                # rollout ended, counted against the release)
                backend.observe()
                backend.wait(min(left, PROGRESS_EVERY_S))
        observed_until = max(summary.ended_at, runner.now(summary.state))
    records = load.records()
    origin = summary.state.origin_wall
    offset = (load.started_at_wall or origin) - origin
    records = records.assign(at=(records["end_s"].fillna(records["scheduled_s"]) + offset) * time_scale)
    duplicated_writes = None
    if plan.defect == "side_effects":
        duplicated_writes = int(sum(c.requests for c in duplicated().values())) if duplicated is not None else 0
    row = results_row(scenario, spec, plan, backend.source, summary, records, run=run, seed=seed,
                      time_scale=time_scale, user_rps=user_rps, preview_rps=preview_rps,
                      observed_until=observed_until, duplicated_writes=duplicated_writes)
    if shadow is not None:
        row["mirrored_requests"] = int(sum(c.requests for c in shadow().values()))
    if spec.strategy.feature_flag is not None:
        row["flag_off_lag"] = flag_off_lag(getattr(backend, "flag_writes", ()), records, load.started_at_wall,
                                           spec.strategy.feature_flag.on_variant)
    timeline = {"scenario": scenario.name, "strategy": spec.name, "run": run, "seed": seed,
                "defect": plan.defect, "outcome": row["outcome"], "source": backend.source,
                "points": timeline_points(summary, records, plan)}
    return LiveRun(row, timeline, records, summary)


# --------------------------------------------------------------------------- the row


def outcome_of(summary: RunSummary, defective: bool, harmed: bool) -> str:
    """The simulator's outcome words (sim/run.py ``_outcome``) for a live run."""
    s = summary.status
    if s.aborted:
        if not defective:
            return "false_rollback"
        return "rolled_back_manual" if detected_by(s) == DetectedBy.MANUAL else "rolled_back"
    if s.completed:
        return "failed_undetected" if defective and harmed else "promoted"
    return "stuck"


def results_row(scenario: Scenario, spec: StrategySpec, plan: ReleasePlan, source: str, summary: RunSummary,
                records: pd.DataFrame, *, run: int, seed: int, time_scale: float, user_rps: float,
                preview_rps: float, observed_until: float | None = None,
                duplicated_writes: int | None = None) -> dict[str, Any]:
    """The run as one results row (times in scenario seconds). ``observed_until``: when the
    run stopped watching (after following the window), the row's ``ended_at``, where times
    that had not ended are censored; the runner's end when not given. ``duplicated_writes``:
    the writes a side-effects release performed again (None: not that defect)."""
    nan = math.nan
    s = summary.status
    defective = plan.defect != "none"
    served = ~records["result"].isin([o.value for o in NOT_SERVED])
    in_window = (records["at"] >= 0) & (records["at"] <= scenario.duration)  # the simulator's counting window
    user = records[(records["target"] == "user") & served & in_window]
    failed = user["result"].isin([r.value for r in ERROR_RESULTS])
    on_canary = user["version"] == plan.canary.name
    impact_started = float(user.loc[on_canary, "at"].min()) if defective and on_canary.any() else nan
    # as the simulator: a defect that shows only under full load harms from its first failure,
    # side effects only by the writes a mirror made the new version repeat
    if plan.defect == "full_load_only":
        impact_started = float(user.loc[on_canary & failed, "at"].min()) if (on_canary & failed).any() else nan
    elif plan.defect == "side_effects" and not duplicated_writes:
        impact_started = nan
    finished = s.completed_at if s.completed else s.restored_at
    harmed = defective and not math.isnan(impact_started)
    # as sim/run.py: restored means users were hurt and the harm ended (NaN otherwise,
    # a false rollback included)
    restored = s.restored_at if (harmed and s.aborted and s.restored_at is not None) else None
    time_to_restore = restored - impact_started if restored is not None else nan
    if time_to_restore < 0:  # a resumed run saw its first canary answer after the restore
        time_to_restore = nan
    bins = np.floor(user["at"] / max(scenario.monitoring.scrape_interval, 1e-9)) if len(user) else pd.Series(dtype=float)
    grouped = failed.groupby(bins) if len(user) else None
    # bins of a handful of requests (the window's ragged edges) would make one failure 100%
    per_bin = grouped.mean()[grouped.size() >= PEAK_MIN_REQUESTS] if grouped is not None else pd.Series(dtype=float)
    tail = user.tail(max(1, len(user) // 10))
    router_failures = int(user["result"].isin(ROUTER_RESULTS).sum())
    # the failures the old version would have produced on the same requests, as sim/run.py counts them
    baseline = len(user) * scenario.service_under_test.baseline_error_rate
    slo = getattr(scenario, "slo", None)

    def at(value):
        return nan if value is None else float(value)
    return {
        "source": source,
        "scenario": scenario.name,
        "strategy": spec.name,
        "run": run,
        "seed": seed,
        "release": plan.release,
        "defect": plan.defect,
        "outcome": outcome_of(summary, defective, harmed),
        "started_at": at(s.started_at),
        "finished_at": at(finished),
        "detected_at": at(s.aborted_at) if s.aborted else nan,
        "restored_at": at(restored),
        "requests": int(len(user)),
        "failed_requests": int(failed.sum()),
        "peak_error_rate": float(per_bin.max()) if len(per_bin) else 0.0,
        "replica_seconds": replica_seconds(summary, scenario.duration),
        "change_failed": bool(harmed),
        "false_rollback": bool(s.aborted and not defective),
        "impact_started_at": impact_started,
        "time_to_restore": time_to_restore,
        "detected_by": detected_by(s),
        "rollout_duration": at(finished),
        "human_action": "none",
        "ended_at": float(max(summary.ended_at, observed_until if observed_until is not None else -math.inf)),
        "exposed_requests": int(on_canary.sum()) if defective else 0,
        "final_canary_share": float((tail["version"] == plan.canary.name).mean()) if len(tail) else nan,
        "ends_healthy": bool(s.completed and not defective) or bool(s.aborted and restored is not None),
        "baseline_failed_requests": float(baseline),
        "release_failed_requests": float(int(failed.sum()) - baseline),
        "users_affected": users_affected(user, plan, scenario.traffic.users),
        "slo_objective": float(slo.objective) if slo is not None else nan,
        "slo_window": float(slo.window) if slo is not None else nan,
        # live only
        "time_scale": float(time_scale),
        "live_user_rps": float(user_rps),
        "live_preview_rps": float(preview_rps),
        "router_failures": router_failures,  # failed without an answer from any version: the switch's own
        "release_failures": int((failed & on_canary).sum()),
        "resumed": bool(summary.resumed),
        **({} if duplicated_writes is None else {"duplicated_writes": int(duplicated_writes)}),
    }


def users_affected(user: pd.DataFrame, plan: ReleasePlan, population: int) -> float:
    """Share of the ``population`` (the scenario's users, as the simulator counts them:
    a user who sent nothing in the window was hurt by nothing) who got a failed answer
    from the new version; NaN when requests carried no user. A failure of the old
    version is not the release's: the simulator counts only release-made failures too."""
    if "user" not in user or user["user"].isna().all():
        return math.nan
    released = user.assign(result=user["result"].where(user["version"] == plan.canary.name, RequestResult.OK.value))
    return compute_users_affected(released).affected / population


def flag_off_lag(writes, records: pd.DataFrame, load_started_wall: float | None, on_variant: str) -> float:
    """Wall seconds from the flag file's last "everyone off" write (after an exposure) to
    the last answer that still took the flagged path: how long turning a flag off really
    takes to reach users (the provider's reload). NaN when the flag was never turned off
    after being on; 0 when no flagged answer came after the write."""
    exposed = [w for w in writes if w.percentage > 0 or w.match]
    offs = [w for w in writes if w.percentage == 0 and not w.match and exposed and w.at > exposed[0].at]
    if not offs or load_started_wall is None or "variant" not in records:
        return math.nan
    off_at = offs[-1].at
    answered_at = load_started_wall + records["end_s"]
    late = answered_at[(records["variant"] == on_variant) & (answered_at >= off_at)]
    return float(late.max() - off_at) if len(late) else 0.0


def mirrors(spec: StrategySpec) -> bool:
    """Whether a canary's steps ever set a mirror route."""
    cs = spec.strategy.canary
    return cs is not None and any(step.set_mirror_route is not None for step in cs.steps)


def user_population(scenario: Scenario) -> UserPopulation:
    """The scenario's users, segments and writes, as the load generator sends them."""
    traffic = scenario.traffic
    return UserPopulation(
        users=traffic.users, write_share=traffic.write_share,
        segments=tuple(UserSegment(s.name, s.users, s.headers, requests=s.requests) for s in traffic.segments))


def replica_seconds(summary: RunSummary, duration: float) -> float:
    """Pods asked for over the scenario's window (scenario seconds), as the simulator
    counts cost: each observation's replicas hold until the next one, the last until the
    window ends; nothing outside [0, duration] counts. A canary's baseline pods count too."""
    total, points = 0.0, summary.timeline
    for a, b in zip(points, [*points[1:], None]):
        start = max(a.at, 0.0)
        end = min(b.at if b is not None else max(duration, a.at), duration)
        if end > start:
            total += (a.stable_replicas + a.canary_replicas + a.baseline_replicas) * (end - start)
    return float(total)


def detected_by(status) -> str:
    """Who caught the release, in the simulator's words (sim/world.py)."""
    if not status.aborted:
        return ""
    return DETECTED_BY_ABORT_CAUSE[status.abort_cause.value].value


def timeline_points(summary: RunSummary, records: pd.DataFrame, plan: ReleasePlan) -> list[dict[str, Any]]:
    """The runner's timeline in the simulator's ``TimelinePoint`` shape (for the report).
    The effective weight is the canary's *measured* share of user answers since the
    previous point (the declared one when no answer arrived); error rates per version too."""
    points, previous = [], -math.inf
    user = records[(records["target"] == "user") & records["version"].notna()]
    errors = user["result"].isin([r.value for r in ERROR_RESULTS])
    for entry in summary.timeline:
        inside = (user["at"] > previous) & (user["at"] <= entry.at)
        rates = {}
        for role, version in ((Role.STABLE, plan.stable.name), (Role.CANARY, plan.canary.name)):
            mine = inside & (user["version"] == version)
            rates[role] = float(errors[mine].mean()) if mine.any() else 0.0
        answered = int(inside.sum())
        share = 100.0 * float((user.loc[inside, "version"] == plan.canary.name).mean()) if answered else None
        points.append({
            "at": float(entry.at),
            "declared_weight": float(entry.declared_weight),
            "effective_weight": share if share is not None else float(entry.declared_weight),
            "stable_ready": int(entry.stable_ready),
            "canary_ready": int(entry.canary_ready),
            "stable_error_rate": rates[Role.STABLE],
            "canary_error_rate": rates[Role.CANARY],
            "events": [asdict(e) for e in entry.events],
        })
        previous = entry.at
    return points


__all__ = ["BACKENDS", "LiveRun", "LiveUnsupported", "RELEASES", "open_backend", "fault_schedule", "live_rates", "make_plan", "pick_defect",
           "results_row", "run_live", "version_env"]


# --------------------------------------------------------------------------- backends by name

BACKENDS = ("local", "kube")


def open_backend(name: str, *, state_dir, context: str | None = None, namespace: str = "default",
                 node_port: int = 30080, seed: int = 0, log: Callable[[str], None] | None = None,
                 scenario: Scenario | None = None, time_scale: float = 1.0):
    """The backend a ``rolloutlab live --backend NAME`` run uses (bad names are ValueError).
    On Kubernetes the pods' readiness probe and grace period are the scenario's, compressed
    by the time scale (and rounded up to whole seconds, as Kubernetes takes them)."""
    if name == "local":
        from rolloutlab.live.local import LocalBackend

        return LocalBackend(state_dir, seed=seed, log=log)
    if name == "kube":
        from rolloutlab.live.kube import KubeBackend
        from rolloutlab.live.kube_objects import scenario_pod_settings

        settings = scenario_pod_settings(scenario.service_under_test.pod_timing, time_scale) if scenario else None
        return KubeBackend.from_kubeconfig(context, namespace, node_port=node_port, pod_settings=settings)
    raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {name!r}")
