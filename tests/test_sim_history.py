"""History mode: months of deployments, paired across strategies."""

from __future__ import annotations

import numpy as np
import pandas as pd

from rolloutlab.scenarios.schema import Scenario
from rolloutlab.sim.history import simulate_history
from rolloutlab.strategies import load_strategy

SCENARIO = Scenario.model_validate({
    "name": "h", "duration": "10m", "services": [{"name": "web", "replicas": 4}], "traffic": {"rps": 50},
    "history": {"days": 10, "deploys_per_day": 3, "defect_probability": 0.3},
})


def history(name: str) -> pd.DataFrame:
    return pd.DataFrame(simulate_history(SCENARIO, load_strategy(name), 0, np.random.SeedSequence(5, spawn_key=(0,))))


def test_strategies_share_planned_deployments_even_when_their_failures_differ():
    """Every planned deployment has the same release and commit time under every strategy, fixes aside."""
    a, b = history("blue-green"), history("rolling")
    assert a["change_failed"].sum() != b["change_failed"].sum()  # the strategies do differ
    planned_a = a[~a["rework"]].set_index("release")
    planned_b = b[~b["rework"]].set_index("release")
    assert list(planned_a.index) == list(planned_b.index)
    assert (planned_a["defect"] == planned_b["defect"]).all()
    assert np.allclose(planned_a["commit_at"], planned_b["commit_at"])


def test_failed_changes_are_followed_by_rework_and_lead_time_includes_waiting():
    """A restored change failure is followed by a fix marked rework; lead time runs from commit to start."""
    df = history("rolling")
    assert df["rework"].sum() >= 1
    assert np.allclose(df["lead_time"], df["started_at"] - df["commit_at"])
    assert (df["started_at"].diff().dropna() >= 0).all()  # one deployment at a time, in order
