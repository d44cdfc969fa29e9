"""Region waves: the same rollout, one group of regions (or clusters) after another.

Large services do not roll out everywhere at once: they go to one region, let it bake,
then the next group, and stop the line when something goes wrong. A strategy file adds a
``waves`` block beside its ``strategy`` (which is what each region runs)::

    waves:
      stopTheLine: true        # a failure in any wave rolls back the waves before it too
      steps:
        - regions: [us-east]
          bakeTime: 15m        # after every region of the wave is promoted, wait this long
        - regions: [eu-west, ap-south]

Region names are the scenario's ``regions`` (or, live, the clusters / kube contexts given
for them); the controller in :mod:`strategies.waves` drives them.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from rolloutlab.errors import FieldError
from rolloutlab.strategies.durations import Duration
from rolloutlab.strategies.spec_base import SpecModel

MAX_WAVES = 100


class WaveStep(SpecModel):
    """One wave: regions that roll out together, then a bake time before the next wave."""

    regions: tuple[str, ...] = Field(min_length=1)
    bake_time: Duration = 0.0  # after every region of this wave is promoted (not after the last wave)

    @model_validator(mode="after")
    def _names(self) -> "WaveStep":
        for i, region in enumerate(self.regions):
            if not region:
                raise FieldError(("regions", i), "a region name cannot be empty")
            if region in self.regions[:i]:
                raise FieldError(("regions", i), f"region {region!r} is listed twice in this wave")
        return self


class Waves(SpecModel):
    """The waves of a rollout, in order, and what a failure does to the waves before it."""

    steps: tuple[WaveStep, ...] = Field(min_length=1, max_length=MAX_WAVES)
    stop_the_line: bool = True  # a failed region rolls back every region of earlier waves too

    @model_validator(mode="after")
    def _each_region_once(self) -> "Waves":
        seen: dict[str, int] = {}
        for w, step in enumerate(self.steps):
            for i, region in enumerate(step.regions):
                if region in seen:
                    raise FieldError(("steps", w, "regions", i),
                                     f"region {region!r} is already in wave {seen[region]} (steps[{seen[region]}]); "
                                     f"each region goes out once")
                seen[region] = w
        return self

    @property
    def regions(self) -> tuple[str, ...]:
        """Every region, in wave order."""
        return tuple(r for step in self.steps for r in step.regions)

    def wave_of(self, region: str) -> int:
        return next(w for w, step in enumerate(self.steps) if region in step.regions)
