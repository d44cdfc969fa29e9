"""Region waves from a Spinnaker pipeline: deploy stages that run at the same time form a wave.

Large Spinnaker pipelines deploy one region (or account) after another: deploy stages with
no path between them run in parallel (one wave), a ``wait`` stage between two waves lets
the first one bake, and a ``manualJudgment`` between them holds the next wave for a person.
This module turns that into our ``waves`` block (:mod:`strategies.wave_spec`):

- a deploy stage's wave is one more than the latest wave among the production deploys it
  waits for (longest-path layering), so two stages share a wave only when neither waits
  for the other; the clusters of one ``deploy`` stage (and the regions of one cluster's
  ``availabilityZones``) are deployed in parallel by orca (``ParallelDeployStage``);
- ``bakeTime`` of a wave is the longest chain of ``wait`` stages between it and the next;
- every region runs the same strategy in rolloutlab, so regions whose clusters are
  deployed with different strategies or settings are refused, naming both stages;
- ``stopTheLine`` is false: when a stage fails, orca stops the pipeline (later waves never
  start) but does not undo the stages that already succeeded.
"""

from __future__ import annotations

from dataclasses import dataclass

from rolloutlab.strategies.importers.manifest import Origins
from rolloutlab.strategies.importers.spinnaker_deploy import Placement
from rolloutlab.strategies.importers.spinnaker_stages import PipelineReader, Stage, StageGraph


def location_names(placements: list[Placement]) -> dict[int, str]:
    """A region name per placement (by index): the region alone when that is unambiguous,
    else ``account/region`` (the same region in two accounts is two places)."""
    keys = [(p.account, p.region) for p in placements]
    by_region: dict[str | None, set] = {}
    for account, region in keys:
        by_region.setdefault(region, set()).add(account)
    names = {}
    for i, (account, region) in enumerate(keys):
        if region is not None and len(by_region[region]) == 1:
            names[i] = region
        else:
            names[i] = "/".join(x for x in (account, region) if x) or "default"
    return names


@dataclass
class WaveBuilder:
    r: PipelineReader
    graph: StageGraph
    origins: Origins
    handled: set[str]

    def build(self, placements: list[Placement]) -> dict | None:
        """The ``waves`` block for the production placements, or None for a single place."""
        names = location_names(placements)
        if len(set(names.values())) < 2:
            return None
        first_of: dict[str, Placement] = {}
        for i, p in enumerate(placements):
            if names[i] in first_of:
                other = first_of[names[i]]
                raise self.r.error(p.path, f"{p.stage.label} deploys to {names[i]!r}, which {other.stage.label} "
                                           f"already deploys to; rolloutlab rolls a release out once per region")
            first_of[names[i]] = p
        self._agree(placements)
        stages = list(dict.fromkeys(p.stage for p in placements))
        layer: dict[str, int] = {}
        for s in stages:  # stages are in graph order already
            earlier = [layer[t.ref] for t in stages if t.ref in layer and self.graph.before(t, s)]
            layer[s.ref] = 1 + max(earlier) if earlier else 0
        waves: list[list[int]] = [[] for _ in range(max(layer.values()) + 1)]
        for i, p in enumerate(placements):
            waves[layer[p.stage.ref]].append(i)
        steps = []
        for k, members in enumerate(waves):
            step: dict = {"regions": [names[i] for i in members]}
            self.origins.note(("waves", "steps", k), self.r, placements[members[0]].stage.path)
            if k + 1 < len(waves):
                here = [placements[i].stage for i in members]
                there = [placements[i].stage for i in waves[k + 1]]
                bake = self._bake(here, there, k)
                if bake:
                    step["bakeTime"] = bake
            steps.append(step)
        sizes = {names[i]: p.replicas for i, p in enumerate(placements)}
        if len({v for v in sizes.values() if v is not None}) > 1:
            listed = ", ".join(f"{k}: {v}" for k, v in sizes.items())
            self.r.warn(placements[0].path, f"regions have different sizes ({listed}); replicas is the first "
                                            "region's, and a scenario's regions give each region its own size")
        self.origins.note(("waves",), self.r, ("stages",))
        return {"stopTheLine": False, "steps": steps}

    def _agree(self, placements: list[Placement]) -> None:
        first = placements[0]
        for p in placements[1:]:
            if p.strategy != first.strategy:
                raise self.r.error(p.strategy_path, f"{p.stage.label} deploys {p.where} with strategy "
                                                    f"{p.strategy!r}, but {first.stage.label} deploys {first.where} "
                                                    f"with {first.strategy!r}; rolloutlab runs one strategy in every "
                                                    "region: make them agree")
            ours, theirs = dict(first.settings), dict(p.settings)
            for key in sorted(set(ours) | set(theirs)):
                if ours.get(key) != theirs.get(key):
                    raise self.r.error(p.strategy_path, f"{p.stage.label} deploys {p.where} with {key} "
                                                        f"{theirs.get(key)!r}, but {first.stage.label} deploys "
                                                        f"{first.where} with {ours.get(key)!r}; rolloutlab runs one "
                                                        "strategy in every region: make them agree")

    def _bake(self, here: list[Stage], there: list[Stage], k: int) -> float:
        """The longest chain of waits between wave ``k`` and the next; judgments are noted."""
        between = [s for s in self.graph.order
                   if any(self.graph.before(a, s) for a in here) and any(self.graph.before(s, b) for b in there)]
        longest: dict[str, float] = {}
        for s in between:
            if s.type == "manualJudgment":
                self.handled.add(s.ref)
                self.r.warn(s.at("type"), f"{s.label}: a manual judgment between wave {k} and wave {k + 1} is not "
                                          "modelled (waves have no per-wave gate yet): the next wave starts after "
                                          "the bake time")
            if s.type != "wait":
                continue
            self.handled.add(s.ref)
            seconds = self.r.quantity(s.at("waitTime")) or 0.0
            before = [longest[t.ref] for t in between if t.ref in longest and self.graph.before(t, s)]
            longest[s.ref] = seconds + max(before, default=0.0)
        return max(longest.values(), default=0.0)


__all__ = ["WaveBuilder", "location_names"]
