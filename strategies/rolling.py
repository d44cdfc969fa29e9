"""The rolling ladder: Kubernetes' Deployment RollingUpdate, watched to completion.

No steps, no analysis: the new version replaces the old one pod by pod within maxSurge
and maxUnavailable. An abort is ``kubectl rollout undo``: the same update toward the old
version. Traffic follows ready pods (one Service over both versions).
"""

from __future__ import annotations

from rolloutlab.strategies.cycle import Cycle
from rolloutlab.strategies.observation import Role
from rolloutlab.strategies.replicas import rolling_update_step


def reconcile_rolling(c: Cycle) -> None:
    rs = c.spec.strategy.rolling
    assert rs is not None
    if c.status.completed:
        return
    new, old = (Role.STABLE, Role.CANARY) if c.status.aborted else (Role.CANARY, Role.STABLE)
    new_obs, old_obs = c.obs.version(new), c.obs.version(old)
    nxt = rolling_update_step(
        c.replicas, rs.max_surge, rs.max_unavailable,
        new_obs.replicas, new_obs.available, old_obs.replicas, old_obs.available,
    )
    c.scale(new, nxt.new)
    c.scale(old, nxt.old)
    done = new_obs.replicas == c.replicas and new_obs.available >= c.replicas and old_obs.replicas == 0
    if not done:
        c.waiting_on_pods = True
    elif c.status.aborted:
        c.restored("rolled back: the old version runs every replica")
    else:
        c.complete(scale_down_delay=None)
