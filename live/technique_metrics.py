"""What analysis reads live for the techniques beyond weights: flags and mirrors.

Argo Rollouts' and Flagger's analyses query the service's own metrics, so a mirrored copy
the new version served counts on it although no user saw its answer, and a feature flag's
analysis splits users by the flag's answer. The live runner's usual source is the load
generator (what users saw, per version, ``X-Version``); these sources add what it cannot
see:

- :class:`FlagMetrics`: the same requests counted by the answer's ``X-Flag-Variant`` (the
  demo service evaluates the flag with OpenFeature), as ``flag_counters()``;
- :class:`MirrorMetrics`: the users' counters plus the copies each version served, read
  from its pods' ``demo_shadow_*`` metrics (``LocalShadowScrape`` on the local backend).
"""

from __future__ import annotations

import urllib.request
from collections.abc import Callable, Mapping

from rolloutlab.live.kube_metrics import counters_from_exposition, fold_scrape, sum_counters
from rolloutlab.strategies import Counters
from rolloutlab.strategies.observation import FlagCounters


class FlagMetrics:
    """A ``MetricsSource`` for a feature-flag release: per version as the load generator
    counts, and per flag answer (``on_variant`` against every other answer, old pods'
    answers without a flag included: those users had the old behaviour)."""

    def __init__(self, load, on_variant: str) -> None:
        self.load, self.on_variant = load, on_variant

    def counters(self) -> Mapping[str | None, Counters]:
        return self.load.counters()

    def flag_counters(self) -> FlagCounters:
        by_variant = self.load.variant_counters("user")
        on = by_variant.get(self.on_variant, Counters())
        off = sum_counters([{None: c} for v, c in by_variant.items() if v != self.on_variant]).get(None, Counters())
        return FlagCounters(on, off)


class MirrorMetrics:
    """A ``MetricsSource`` whose counters add the mirrored copies each version served
    (``shadow``: cumulative shadow counters per version) to what users saw."""

    def __init__(self, load, shadow: Callable[[], Mapping[str, Counters]]) -> None:
        self.load, self.shadow = load, shadow

    def counters(self) -> Mapping[str | None, Counters]:
        return sum_counters([self.load.counters(), self.shadow()])


class LocalPodScrape:
    """Cumulative counters per version from the ``family`` metrics of the local pods
    ``chosen`` picks, each read from its own ``/metrics``. A pod whose scrape misses keeps
    its last counters; a restarted container's counters are folded in (``fold_scrape``), so
    a version's total only grows."""

    def __init__(self, backend, family: str = "demo", chosen: Callable[[object], bool] = lambda pod: True,
                 timeout_s: float = 0.5) -> None:
        self.backend, self.family, self.chosen, self.timeout_s = backend, family, chosen, timeout_s
        self._base: dict[str, dict] = {}
        self._last: dict[str, dict] = {}

    def __call__(self) -> dict[str | None, Counters]:
        for pod in self.backend.pods():
            if pod.port is None or not self.chosen(pod):
                continue
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{pod.port}/metrics", timeout=self.timeout_s) as r:
                    text = r.read().decode()
            except OSError:
                continue  # this scrape missed; the pod's last counters stand
            self._base[pod.name], self._last[pod.name] = fold_scrape(
                self._base.get(pod.name, {}), self._last.get(pod.name, {}), counters_from_exposition(text, self.family))
        return sum_counters([*self._base.values(), *self._last.values()])


class LocalShadowScrape(LocalPodScrape):
    """Cumulative shadow counters (``demo_shadow_*``) per version from every local pod."""

    def __init__(self, backend, timeout_s: float = 0.5) -> None:
        super().__init__(backend, "demo_shadow", timeout_s=timeout_s)
