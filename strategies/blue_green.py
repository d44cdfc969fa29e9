"""The blue-green ladder, after Argo Rollouts' ``rolloutBlueGreen``.

Two full environments. The ladder's rungs are numbered in ``status.step_index`` so a
restarted controller knows where it stood, and ``promote`` passes the rung it waits on:

    0 preview   scale the new version (previewReplicaCount or all replicas), wait ready
    1 analysis  prePromotionAnalysis against the preview; failure aborts
    2 gate      autoPromotionEnabled: false waits for `promote` (autoPromotionSeconds is
                then ignored, as in Argo); otherwise autoPromotionSeconds promotes by itself
                after that long, and without it the switch is immediate
    3 switch    scale the new version to full, then point the active Service at it
    4 verify    postPromotionAnalysis on live traffic; failure switches back
    then        Promote; the old version is scaled down after scaleDownDelaySeconds

The old (stable) version keeps all its replicas until then, which is what makes an abort
instant: switching the active Service back is the whole rollback.
"""

from __future__ import annotations

from enum import IntEnum

from rolloutlab.strategies.actions import EventReason, SwitchActive, SwitchPreview
from rolloutlab.strategies.cycle import Cycle
from rolloutlab.strategies.cycle import or_now as _or_now
from rolloutlab.strategies.observation import Role
from rolloutlab.strategies.spec import BlueGreenStrategy
from rolloutlab.strategies.status import AnalysisKind, AnalysisPhase, PauseReason


class Rung(IntEnum):
    PREVIEW = 0
    PRE_PROMOTION_ANALYSIS = 1
    GATE = 2
    SWITCH = 3
    POST_PROMOTION_ANALYSIS = 4
    DONE = 5


def reconcile_blue_green(c: Cycle) -> None:
    bg = c.spec.strategy.blue_green
    assert bg is not None
    if c.status.aborted:
        return _reconcile_abort(c, bg)
    if c.status.completed:
        return c.scale_down_old_stable()
    c.scale(Role.STABLE, c.replicas)
    while True:
        rung = Rung(min(c.status.step_index, Rung.DONE))
        if rung is Rung.PREVIEW:
            wanted = min(bg.preview_replica_count or c.replicas, c.replicas)
            if not _scaled_and_ready(c, Role.CANARY, wanted):
                return
            if bg.preview_service:
                c.emit(SwitchPreview(Role.CANARY))
            c.next_step("preview ready")
        elif rung is Rung.PRE_PROMOTION_ANALYSIS:
            if not _analysis_passed(c, AnalysisKind.PRE_PROMOTION, bg.pre_promotion_analysis):
                return
            c.next_step("prePromotionAnalysis")
        elif rung is Rung.GATE:
            if not bg.auto_promotion_enabled:
                # Argo: with auto-promotion disabled, autoPromotionSeconds is ignored
                return c.pause(PauseReason.BLUE_GREEN_PAUSE, "waiting for promote before switching")
            if bg.auto_promotion_seconds is not None:
                c.pause(PauseReason.BLUE_GREEN_PAUSE, f"switching in {bg.auto_promotion_seconds:g}s unless promoted")
                ends = _or_now(c.status.pause_started_at, c) + bg.auto_promotion_seconds
                if c.now < ends:
                    return c.wake_at(ends)
                c.unpause("autoPromotionSeconds passed")
            c.next_step("promotion gate")
        elif rung is Rung.SWITCH:
            if not _scaled_and_ready(c, Role.CANARY, c.replicas):
                return
            if c.status.active is not Role.CANARY:
                c.emit(SwitchActive(Role.CANARY))
                c.set(active=Role.CANARY, switched_at=c.now)
                c.event(EventReason.SWITCHED, "active service now selects the new version")
            c.next_step("switch")
        elif rung is Rung.POST_PROMOTION_ANALYSIS:
            if not _analysis_passed(c, AnalysisKind.POST_PROMOTION, bg.post_promotion_analysis):
                return
            c.next_step("postPromotionAnalysis")
        else:
            c.complete(scale_down_delay=bg.scale_down_delay_seconds)
            return c.scale_down_old_stable()


def _analysis_passed(c: Cycle, kind: AnalysisKind, ref) -> bool:
    if ref is None:
        return True
    if c.status.pause_reason is PauseReason.INCONCLUSIVE_ANALYSIS:
        return False
    phase = c.run_analysis(kind, kind.value, ref)
    if phase in (AnalysisPhase.FAILED, AnalysisPhase.ERROR):
        c.abort(f"{kind.value} analysis {phase.value.lower()}")
        return False
    if phase is AnalysisPhase.INCONCLUSIVE:
        c.pause(PauseReason.INCONCLUSIVE_ANALYSIS, f"{kind.value} analysis inconclusive")
        return False
    return phase is AnalysisPhase.SUCCESSFUL


def _reconcile_abort(c: Cycle, bg: BlueGreenStrategy) -> None:
    c.scale(Role.STABLE, c.replicas)
    stable = c.obs.stable
    if c.status.active is not Role.STABLE:
        if stable.available < c.replicas:  # never switch users onto a version that cannot carry them
            c.waiting_on_pods = True
            return
        c.emit(SwitchActive(Role.STABLE))
        c.set(active=Role.STABLE)
        c.event(EventReason.SWITCHED, "active service back on the stable version")
    if stable.available < c.replicas:
        c.waiting_on_pods = True
        return
    c.restored("rolled back: active service on the stable version")
    c.scale_down_aborted(bg.abort_scale_down_delay_seconds)


def _scaled_and_ready(c: Cycle, role: Role, replicas: int) -> bool:
    c.scale(role, replicas)
    ready = c.obs.version(role).available >= replicas and c.obs.version(role).replicas == replicas
    c.waiting_on_pods = c.waiting_on_pods or not ready
    return ready
