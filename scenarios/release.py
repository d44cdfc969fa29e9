"""How one run's release is drawn from its seed: healthy or carrying which defect, and the
named random streams every runner (simulator or live) takes its randomness from.

Randomness comes from the run's ``numpy.random.SeedSequence`` only, split into named
streams so that strategies compared on the same run see the same release and the same
on-call engineer (common random numbers), and a live run of seed *s* carries the release
the simulator drew for seed *s*.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rolloutlab.scenarios.schema import Scenario

STREAMS = ("release", "pods", "traffic", "faults", "human", "alerts")


@dataclass(frozen=True)
class ReleaseDraw:
    """What this run's release is: healthy, or carrying one defect."""

    defect: Any | None  # one of the scenario's defect models, or None

    @property
    def kind(self) -> str:
        return "none" if self.defect is None else self.defect.kind


def run_seed_sequence(seed: int, run: int) -> np.random.SeedSequence:
    """The seed sequence of run ``run`` in a batch seeded ``seed``, shared by every strategy.

    Equal to ``np.random.SeedSequence(seed).spawn(run + 1)[run]``, without spawning the others.
    """
    return np.random.SeedSequence(seed, spawn_key=(run,))


def draw_release(scenario: Scenario, rng: np.random.Generator, defect_probability: float | None = None) -> ReleaseDraw:
    """Whether the release is bad (``defect_probability``) and, if so, which defect it
    carries (by the defects' relative weights)."""
    release = scenario.release
    p = release.defect_probability if defect_probability is None else defect_probability
    bad = rng.random() < p
    pick = rng.random()  # drawn either way, so streams stay aligned between good and bad releases
    if not bad or not release.defects:
        return ReleaseDraw(None)
    weights = np.array([d.weight for d in release.defects], dtype=float)
    index = int(np.searchsorted(np.cumsum(weights) / weights.sum(), pick, side="right"))
    return ReleaseDraw(release.defects[min(index, len(release.defects) - 1)])


def child_seed(seed_seq: np.random.SeedSequence, index: int) -> np.random.SeedSequence:
    """The ``index``-th child of ``seed_seq``, as ``spawn`` would make it, without changing
    ``seed_seq`` (``spawn`` counts its calls, so the same object would give new children)."""
    return np.random.SeedSequence(seed_seq.entropy, spawn_key=tuple(seed_seq.spawn_key) + (index,),
                                  pool_size=seed_seq.pool_size)


class _Streams(dict):
    """The named streams of one run, each made when first asked for: a stream's seed is a
    fixed child of the run's (``child_seed``, its index in ``STREAMS``), so it starts in
    the same state whenever it is made, and a run that never pages or injects a fault
    does not pay for those streams."""

    def __init__(self, seed_seq: np.random.SeedSequence) -> None:
        super().__init__()
        self.seed_seq = seed_seq

    def __missing__(self, name: str) -> np.random.Generator:
        if name not in STREAMS:
            raise KeyError(name)
        rng = self[name] = np.random.default_rng(child_seed(self.seed_seq, STREAMS.index(name)))
        return rng


def make_streams(seed_seq: np.random.SeedSequence) -> dict[str, np.random.Generator]:
    """The run's random streams by name (``STREAMS``), each made when first used."""
    return _Streams(seed_seq)
