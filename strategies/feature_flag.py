"""The feature-flag ladder: ship the code dark, then turn it on user by user.

    aborted?      -> flag off for everyone; if the dark deploy had not finished, the pods
                     roll back to the old version too (a rolling update the other way)
    completed?    -> nothing left to do
    deploy        -> rolling update to the new version with the flag off (dark code)
    background    -> start/advance the background analysis; failure aborts
    exposure      -> the flag's exposure follows the steps (last setExposure so far)
    steps         -> pause waits for its timer or `promote`; analysis waits for its verdict
    promotion     -> all steps done: flag on for everyone, then Promote

Analysis compares users with the flag on (the canary) against users with it off (the
baseline), from the observation's ``flag`` counters (see ``Cycle.run_analysis``): with
the code deployed everywhere, the pods' version tells nothing apart.

An abort turns the flag off and counts as restored at once: that is all a flag can do.
A defect outside the flagged path (the process crashes, leaks, or cannot read the
schema) is untouched by it; the new pods stay, and only the deploy's own rollback (a
person's ``kubectl rollout undo``, or an abort while the deploy still runs) removes it.
This is the trade-off the simulator shows.
"""

from __future__ import annotations

from rolloutlab.strategies.actions import EventReason, SetFlagExposure
from rolloutlab.strategies.canary import pass_gate, reconcile_background_analysis
from rolloutlab.strategies.cycle import Cycle
from rolloutlab.strategies.observation import Role
from rolloutlab.strategies.replicas import rolling_update_step
from rolloutlab.strategies.spec import FeatureFlagStrategy
from rolloutlab.strategies.status import PauseReason


def reconcile_feature_flag(c: Cycle) -> None:
    fs = c.spec.strategy.feature_flag
    assert fs is not None
    if c.status.aborted:
        return _reconcile_abort(c, fs)
    if c.status.completed:
        return
    if c.status.deployed_at is None:
        if not _deploy(c, fs, Role.CANARY, Role.STABLE):
            return
        c.set(deployed_at=c.now, step_started_at=c.now)
        c.event(EventReason.DEPLOYED_DARK, f"new version on all {c.replicas} pods with flag {fs.flag_key} off")
    while True:
        if not reconcile_background_analysis(c, fs):
            return
        _expose(c, fs, exposure_step(fs, c.status.step_index))
        if c.status.step_index >= len(fs.steps):
            c.complete(scale_down_delay=None)
            return
        if c.status.pause_reason is PauseReason.INCONCLUSIVE_ANALYSIS:
            return
        step = fs.steps[c.status.step_index]
        if step.analysis is not None or step.pause is not None:
            if not pass_gate(c, fs, step):
                return
        else:
            c.next_step("setExposure")


def exposure_step(fs: FeatureFlagStrategy, step_index: int) -> int | None:
    """Index of the setExposure step in force at ``step_index`` (None: none yet, the flag
    is off; ``len(steps)``: every step done, the flag is on for everyone)."""
    if step_index >= len(fs.steps):
        return len(fs.steps)
    for i in range(min(step_index, len(fs.steps) - 1), -1, -1):
        if fs.steps[i].set_exposure is not None:
            return i
    return None


def declared_exposure(fs: FeatureFlagStrategy, exposure_index: int | None) -> int:
    """The percentage of users the exposure step ``exposure_index`` turns the flag on for
    (cohorts besides; 0 when the flag is off, 100 once every step is done)."""
    if exposure_index is None:
        return 0
    return fs.exposure_at(exposure_index).percentage


def _expose(c: Cycle, fs: FeatureFlagStrategy, index: int | None) -> None:
    if c.status.exposure_step == index:
        return
    exposure = fs.exposure_at(index) if index is not None else None
    if exposure is None:
        c.emit(SetFlagExposure(fs.flag_key, 0, ()))
        message = f"flag {fs.flag_key} off"
    else:
        c.emit(SetFlagExposure(fs.flag_key, exposure.percentage, exposure.match))
        cohorts = f" and {len(exposure.match)} cohort match(es)" if exposure.match else ""
        message = f"flag {fs.flag_key} on for {exposure.percentage}% of users{cohorts}"
    c.event(EventReason.EXPOSURE_CHANGED, message)
    c.set(exposure_step=index)


def _deploy(c: Cycle, fs: FeatureFlagStrategy, new: Role, old: Role) -> bool:
    """One rolling-update step from ``old`` to ``new``; True once ``new`` runs every pod."""
    rs = fs.deploy.rolling
    new_obs, old_obs = c.obs.version(new), c.obs.version(old)
    nxt = rolling_update_step(c.replicas, rs.max_surge, rs.max_unavailable,
                              new_obs.replicas, new_obs.available, old_obs.replicas, old_obs.available)
    c.scale(new, nxt.new)
    c.scale(old, nxt.old)
    done = new_obs.replicas == c.replicas and new_obs.available >= c.replicas and old_obs.replicas == 0
    c.waiting_on_pods = c.waiting_on_pods or not done
    return done


def _reconcile_abort(c: Cycle, fs: FeatureFlagStrategy) -> None:
    if c.status.exposure_step is not None:
        _expose(c, fs, None)
    if c.status.deployed_at is not None:
        c.restored(f"flag {fs.flag_key} off: every user back on the old code path")
        return
    if _deploy(c, fs, Role.STABLE, Role.CANARY):
        c.restored("rolled back: the old version runs every replica")
