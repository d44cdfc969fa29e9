"""Flagger ``Canary`` (+ ``MetricTemplate``) -> our spec, reproducing Flagger's schedule.

Flagger runs one loop every ``analysis.interval`` (``advanceCanary`` in
``pkg/controller/scheduler.go``). The import follows what that loop does, not only the docs:

- the loop that sees a new revision only scales the canary Deployment up, to its full
  size; nothing else happens until a loop finds the canary ready (``IsCanaryReady``);
- each later loop first tests the failed-checks threshold (``FailedChecks >= threshold``:
  roll back), before it runs any new check; then the first loop after the canary is ready
  starts the analysis without a check, and every loop after it runs one check of all
  metrics (``runAnalysis``): a failed check (a metric out of range, or a query that found
  no values) adds one failed check and returns, holding the weight; a passing one advances.

How it advances depends on the analysis:

- **progressive canary** (``stepWeight`` up to ``maxWeight``, or ``stepWeights``): the
  canary weight grows by ``stepWeight`` each interval (capped at 100) until it reaches
  ``maxWeight``; the next passing check promotes (``runCanary``). That is
  ``setCanaryScale: {weight: 100}`` (the full-size canary, ready before any traffic moves),
  then per weight ``w``: ``setWeight: w`` and ``pause: {duration: interval}``, with the
  metrics as a background analysis from ``startingStep: 2`` (it starts when the first
  weight is set, i.e. when the canary is ready), measured every ``interval`` with
  ``failureLimit: threshold - 1`` and ``holdOnFailure: true``: a failed or empty check
  holds the weight, and the rollout rolls back at the next check after the threshold-th
  failed one, as Flagger's threshold test at the start of a loop does. Under
  ``trafficRouting: router``: Flagger always shifts weights through a mesh or an ingress.
- **blue/green** (``iterations``; forced by the ``kubernetes`` provider, which cannot
  shift traffic, with ``iterations: 10`` when none is given): the new version runs beside
  the old one for ``iterations`` checks, then takes all traffic (``runBlueGreen``). That is
  our blue-green with a prePromotionAnalysis of ``count: iterations``, started once the
  preview is ready.
- **A/B testing** (``match`` + ``iterations``, ``runAB``) sends the requests matching a
  condition to the canary for ``iterations`` passing checks: a routed canary with a
  ``setHeaderRoute`` and one pause per iteration (:mod:`strategies.importers.flagger_routes`).
- **mirroring** (``mirror: true``, ``mirrorWeight``): a ``setMirrorRoute`` for the checks
  Flagger mirrors (one check before the first weight of a progressive canary; every
  iteration of a blue/green), removed when Flagger stops mirroring; a blue/green that
  mirrors becomes a routed canary too, since only a router can copy requests.

Builtin metrics: ``request-success-rate`` (percent of non-5xx, ``thresholdRange.min``)
becomes an ``errorRate`` metric (``min: 99`` -> ``result <= 0.01``); ``request-duration``
(P99 in ms, ``thresholdRange.max``) becomes ``latency`` at quantile 0.99. A
``templateRef`` to a ``MetricTemplate`` in the same file has its query read like an Argo
query. Webhooks, session affinity, ready thresholds: warnings.
"""

from __future__ import annotations

from typing import Any

from rolloutlab.strategies.durations import format_duration
from rolloutlab.strategies.importers.conditions import IDENTITY, SUCCESS_FRACTION, Threshold
from rolloutlab.strategies.importers.flagger_routes import (
    AB_ROUTE,
    MIRROR_ROUTE,
    MIRRORS_BLUE_GREEN,
    MIRRORS_PROGRESSIVE,
    ab_header_matches,
    mirror_percentage,
    mirror_steps,
    route_steps_note,
)
from rolloutlab.strategies.importers.manifest import (
    MISSING,
    ManifestReader,
    Origins,
    Path,
    replaces,
    validate_strategy,
)
from rolloutlab.strategies.importers.mixed_vocabulary import reject_argo_fields
from rolloutlab.strategies.importers.queries import QueryReading, make_reading, read_query
from rolloutlab.strategies.spec import MAX_MEASUREMENTS, Signal, StrategySpec
from rolloutlab.strategies.yaml_input import YamlDocument

API_GROUP = "flagger.app"
API_VERSION = "flagger.app/v1beta1"
DEFAULT_INTERVAL = 60.0  # Flagger's AnalysisInterval
MIN_INTERVAL = 10.0  # Flagger raises shorter intervals to 10s
DEFAULT_DEADLINE = 600

_LATENCY_P99_MS = QueryReading(Signal.LATENCY, IDENTITY, "the P99 request duration in milliseconds", 0.99)

_SPEC_HANDLED = {"provider", "targetRef", "service", "analysis", "canaryAnalysis", "progressDeadlineSeconds",
                 "skipAnalysis"}
_SPEC_SILENT = {"targetRef", "ingressRef", "upstreamRef", "routeRef", "metricsServer", "revertOnDeletion"}
_SPEC_REASONS = {
    "autoscalerRef": "autoscaling is not modelled: both versions keep a fixed replica count",
    "suspend": "a suspended Canary does nothing; rolloutlab imports the strategy as if it were running",
}
_SERVICE_SILENT = {"name", "port", "portName", "targetPort", "portDiscovery", "appProtocol", "gateways", "hosts",
                   "gatewayRefs", "match", "rewrite", "headers", "corsPolicy", "meshName", "backends", "apex",
                   "primary", "canary", "trafficPolicy", "delegation", "cookieName"}
_SERVICE_REASONS = {
    "retries": "retries hide failed requests from users and from the metrics; not modelled",
    "timeout": "request timeouts are not modelled",
}
_ANALYSIS_HANDLED = {"interval", "threshold", "maxWeight", "stepWeight", "stepWeights", "iterations", "match",
                     "mirror", "mirrorWeight", "metrics", "webhooks"}
_ANALYSIS_REASONS = {
    "stepWeightPromotion": "Flagger shifts traffic back to the primary in steps while promoting; rolloutlab "
                           "promotes in one switch",
    "primaryReadyThreshold": "rolloutlab waits for every primary pod to be ready; the percentage is not modelled",
    "canaryReadyThreshold": "rolloutlab waits for every canary pod to be ready; the percentage is not modelled",
    "sessionAffinity": "cookie-based session affinity is not modelled: each request is routed by weight",
}
_WEBHOOKS = {
    "confirm-rollout": "a gate before the analysis starts (Flagger waits until it returns 200)",
    "pre-rollout": "a check before traffic shifts; a failure counts as a failed check in Flagger",
    "rollout": "runs at every check, usually to generate load; the scenario's traffic takes its place",
    "confirm-traffic-increase": "a gate before every weight increase",
    "confirm-promotion": "a gate before promotion; for a manual approval add a `pause: {}` step",
    "post-rollout": "runs after promotion or rollback",
    "rollback": "rolls back when it returns 200",
    "event": "receives Flagger's events",
}


def is_canary(data: Any) -> bool:
    return isinstance(data, dict) and data.get("kind") == "Canary" and str(data.get("apiVersion", "")).startswith(
        f"{API_GROUP}/")


class FlaggerImporter:
    """Turns one Canary and the MetricTemplates beside it into a :class:`StrategySpec`."""

    def __init__(self, canary: YamlDocument, documents: list[YamlDocument], warnings: list[str]) -> None:
        self.file = canary.file
        self.warnings = warnings
        self.r = ManifestReader(canary, warnings)
        self.origins = Origins()
        self.metric_templates: dict[str, tuple[YamlDocument, str | None]] = {}
        for doc in documents:
            data = doc.data
            if not (isinstance(data, dict) and data.get("kind") == "MetricTemplate"
                    and str(data.get("apiVersion", "")).startswith(f"{API_GROUP}/")):
                continue
            reader = ManifestReader(doc, warnings, label="MetricTemplate", main_file=self.file)
            name = reader.string(("metadata", "name"), required=True)
            namespace = reader.string(("metadata", "namespace"))
            earlier = self.metric_templates.get(name)
            if earlier is None:
                self.metric_templates[name] = (doc, namespace)
            elif earlier[1] == namespace and replaces(reader, earlier[0], f"MetricTemplate {name!r}"):
                self.metric_templates[name] = (doc, namespace)

    def run(self) -> StrategySpec:
        r = self.r
        if r.at(("apiVersion",)) != API_VERSION:
            raise r.error(("apiVersion",), f"only {API_VERSION} Canaries can be imported, got {r.at(('apiVersion',))!r}")
        name = r.string(("metadata", "name"), required=True)
        r.mapping(("spec",), required=True)
        out: dict[str, Any] = {"name": name, "description": f"imported from Flagger Canary {name!r}"}
        self.origins.note(("name",), r, ("metadata", "name"))
        deadline = r.integer(("spec", "progressDeadlineSeconds"), minimum=0)
        out["progressDeadlineSeconds"] = DEFAULT_DEADLINE if deadline is None else deadline
        out["progressDeadlineAbort"] = True  # Flagger rolls back when the deadline passes
        self.origins.note(("progressDeadlineSeconds",), r, ("spec", "progressDeadlineSeconds"))
        r.report_unmodelled(("spec",), _SPEC_HANDLED, _SPEC_SILENT, _SPEC_REASONS)
        r.report_unmodelled(("spec", "service"), {"name"}, _SERVICE_SILENT, _SERVICE_REASONS)

        provider_path: Path = ("spec", "provider")
        provider = r.string(provider_path)
        if provider is None:
            provider_path = ("spec",)
            provider = "istio"
            r.warn(provider_path, "no spec.provider: Flagger uses its --mesh-provider flag (istio by default); "
                                  "istio assumed")
        mesh = provider.split(":")[0].strip().lower()

        ap: Path = ("spec", "analysis")
        if not r.has(ap) and r.has(("spec", "canaryAnalysis")):
            ap = ("spec", "canaryAnalysis")
            r.warn(ap, "the deprecated name of spec.analysis; read as spec.analysis")
        reject_argo_fields(r, ap)
        r.mapping(ap, required=True)
        r.report_unmodelled(ap, _ANALYSIS_HANDLED, {"alerts"}, _ANALYSIS_REASONS)
        interval = r.duration((*ap, "interval"))
        if interval is None:
            interval = DEFAULT_INTERVAL
        elif interval < MIN_INTERVAL:
            r.warn((*ap, "interval"), f"Flagger raises intervals below {MIN_INTERVAL:g}s to {MIN_INTERVAL:g}s")
            interval = MIN_INTERVAL
        threshold = r.integer((*ap, "threshold"), minimum=0) or 1
        # one check per iteration: at most as many as a metric may count (each is a step or a measurement here)
        iterations = r.integer((*ap, "iterations"), minimum=0, maximum=MAX_MEASUREMENTS) or 0
        match = r.sequence((*ap, "match"))
        mirror = bool(r.boolean((*ap, "mirror")))
        r.integer((*ap, "mirrorWeight"), minimum=0, maximum=100)
        skip = bool(r.boolean(("spec", "skipAnalysis")))
        ab: list[tuple[dict, Path]] = []
        mirrors = False  # whether Flagger really mirrors this Canary (scheduler.go + its router)

        if mesh == "kubernetes":
            r.warn(provider_path, "provider 'kubernetes' has no traffic router, so Flagger runs blue/green; "
                                  "imported as blueGreen")
            if match:
                r.warn((*ap, "match"), "A/B testing is not supported by Flagger's kubernetes provider (Flagger drops "
                                       "the match conditions)")
            if iterations < 1:
                r.warn(ap, "Flagger's kubernetes provider cannot shift traffic progressively and sets iterations: 10")
                iterations = 10
            mode = "blueGreen"
        elif match and iterations:
            ab = ab_header_matches(r, (*ap, "match"), mesh)
            mode = "ab" if ab else "blueGreen"
            if not ab:
                r.warn((*ap, "match"), "no condition can be carried by a header route, so it is imported as blueGreen: "
                                       "the new version is checked on preview traffic for `iterations` checks")
        elif iterations:
            # runBlueGreen mirrors through a mesh only (provider != "kubernetes"), and only
            # Istio's and Gateway API's routers set a mirror for blue/green
            mirrors = mirror and mesh in MIRRORS_BLUE_GREEN
            mode = "blueGreenMirror" if mirrors else "blueGreen"
            if not mirrors:
                r.warn(provider_path, f"iterations without weights is Flagger's blue/green; imported as blueGreen "
                                      f"(the switch through {provider!r} is modelled as the active Service switch)")
        else:
            mode = "canary"
            mirrors = mirror and mesh in MIRRORS_PROGRESSIVE  # runCanary's mirror step; istio.go sets it
            if match:
                r.warn((*ap, "match"), "match conditions without iterations are ignored by Flagger's progressive canary")
        if mirror and not mirrors:
            why = ("A/B testing never mirrors (runAB sets its routes without a mirror)" if mode == "ab" else
                   f"Flagger's {mesh} router sets no mirror for this strategy (pkg/router: Istio mirrors a canary or "
                   "a blue/green, Gateway API a blue/green)")
            r.warn((*ap, "mirror"), f"{why}; mirroring left out")
        percentage = mirror_percentage(r, ap, mesh) if mirrors else 100
        if not mirror and r.at((*ap, "mirrorWeight")) not in (MISSING, None):
            r.warn((*ap, "mirrorWeight"), "does nothing without mirror: true; ignored")

        count = iterations if mode == "blueGreen" else None
        metrics = [] if skip else self._metrics(ap, interval, threshold, count, "iteration" if iterations else "weight")
        if skip:
            r.warn(("spec", "skipAnalysis"), "Flagger promotes without analysis; so does the imported strategy")
        self._webhooks((*ap, "webhooks"))
        if metrics:
            out["analysisTemplates"] = [{"name": name, "metrics": metrics}]
            self.origins.note(("analysisTemplates", 0), r, (*ap, "metrics"))
        ref = {"templates": [{"templateName": name}]} if metrics else None

        apex = r.string(("spec", "service", "name")) or self._target_name() or name
        if mode == "blueGreen":
            bg: dict[str, Any] = {"activeService": apex, "previewService": f"{apex}-canary"}
            if ref:
                bg["prePromotionAnalysis"] = ref
            elif not skip:
                bg["autoPromotionSeconds"] = iterations * interval  # Flagger still waits out its iterations
            self.origins.note(("strategy", "blueGreen"), r, ap)
            r.warn(ap, "Flagger promotes by copying the canary spec to the primary Deployment and rolling it; "
                       "modelled as an instant switch of the active Service")
            out["strategy"] = {"blueGreen": bg}
            return validate_strategy(out, self.origins, self.file)

        op: Path = ("strategy", "canary")
        canary: dict[str, Any] = {"trafficRouting": "router"}
        steps: list[dict] = []
        if not skip:
            # Flagger scales the canary Deployment to full size before any traffic moves
            # (ScaleFromZero when it sees the revision) and keeps it so until promotion.
            steps = [{"setCanaryScale": {"weight": 100}}]
            if mode == "ab":
                steps.append({"setHeaderRoute": {"name": AB_ROUTE, "match": [m for m, _ in ab]}})
                steps += [{"pause": {"duration": interval}} for _ in range(iterations)]
                for j, (_, source) in enumerate(ab):
                    self.origins.note((*op, "steps", 1, "setHeaderRoute", "match", j), r, source)
            elif mode == "blueGreenMirror":
                # runBlueGreen: mirror during every iteration, then all traffic to the canary
                # for one more check ("Stop traffic mirroring and route all traffic to canary")
                steps += mirror_steps(percentage, interval, iterations)
                steps += [{"setWeight": 100}, {"pause": {"duration": interval}}]
            else:
                # runCanary: "do one step of mirroring before shifting traffic to canary"
                steps += mirror_steps(percentage, interval, 1) if mirrors else []
                steps += self._steps(ap, interval)
            self.origins.note((*op, "steps"), r, ap)
            canary["steps"] = steps
        routes = [AB_ROUTE] if mode == "ab" else [MIRROR_ROUTE] if mirrors else []
        if routes and not skip:
            canary["managedRoutes"] = [{"name": route} for route in routes]
            self.origins.note((*op, "managedRoutes"), r, (*ap, "match") if mode == "ab" else (*ap, "mirror"))
        if ref:
            # scheduler.go, advanceCanary: a failed check returns before runCanary/runAB/
            # runBlueGreen (the weight or iteration holds: holdOnFailure), and the threshold
            # is tested when the next loop starts (holdOnFailure also delays the rollback to
            # the next check). The analysis starts with the first traffic the canary gets
            # (a weight, a route or a mirror), once the canary is ready (IsCanaryReady
            # precedes it): after the setCanaryScale and that step, hence startingStep 2.
            canary["analysis"] = {**ref, "startingStep": 2, "holdOnFailure": True}
        r.warn(provider_path, f"traffic router {provider!r} is modelled as an exact-weight router")
        if steps:
            first = route_steps_note(steps)
            r.warn(ap, f"Flagger sets {first} at its first check after the canary is ready (up to one "
                       "interval later); the imported strategy sets it as soon as the canary is ready")
        self.origins.note(op, r, ap)
        out["strategy"] = {"canary": canary}
        return validate_strategy(out, self.origins, self.file)

    def _target_name(self) -> str | None:
        value = self.r.at(("spec", "targetRef", "name"))
        return value if isinstance(value, str) and value.strip() else None

    # ------------------------------------------------------------------ weights

    def _steps(self, ap: Path, interval: float) -> list[dict]:
        """One setWeight + pause per weight Flagger passes through (scheduler.go's runCanary)."""
        r = self.r
        weights: list[int] = []
        listed = r.sequence((*ap, "stepWeights"))
        step_weight = r.integer((*ap, "stepWeight"), minimum=0, maximum=100)
        max_weight = r.integer((*ap, "maxWeight"), minimum=1, maximum=100)
        if listed:
            for j in range(len(listed)):
                w = r.integer((*ap, "stepWeights", j), minimum=1, required=True)
                if weights and w <= weights[-1]:
                    raise r.error((*ap, "stepWeights", j), f"weights must increase, got {w} after {weights[-1]}")
                weights.append(min(w, 100))
                if w >= 100:
                    if j < len(listed) - 1:
                        r.warn((*ap, "stepWeights", j + 1), "weights after 100 are never reached; ignored")
                    break
            if step_weight:
                r.warn((*ap, "stepWeight"), "Flagger uses stepWeight when both are set; stepWeights ignored")
                weights = []
        if not weights:
            if not step_weight:
                raise r.error(ap, "needs stepWeight, stepWeights or iterations to know how to shift traffic")
            top = max_weight or 100
            w = 0
            while w < top:
                w = min(w + step_weight, 100)
                weights.append(w)
        steps: list[dict] = []
        for w in weights:
            steps += [{"setWeight": w}, {"pause": {"duration": interval}}]
        return steps

    # ------------------------------------------------------------------ metrics

    def _metrics(self, ap: Path, interval: float, threshold: int, count: int | None, held: str) -> list[dict]:
        r = self.r
        out: list[dict] = []
        items = r.sequence((*ap, "metrics")) or []
        for k in range(len(items)):
            mp = (*ap, "metrics", k)
            metric = self._metric(mp, interval, threshold, count)
            if metric is not None:
                self.origins.note(("analysisTemplates", 0, "metrics", len(out)), r, mp)
                out.append(metric)
        if out:
            if count is None:
                pace = (f"as in Flagger, a failed or empty check holds the {held} (holdOnFailure: the next step waits "
                        "for a passing check), and the rollback comes at the next check after the threshold was "
                        "reached, one interval later")
            else:
                pace = ("Flagger also needs `iterations` passing checks, here the analysis ends after `iterations` "
                        "measurements; Flagger rolls back at the next check after the threshold was reached, here the "
                        "preview is dropped at once (no user traffic is on it either way)")
            r.warn((*ap, "threshold"), f"Flagger rolls back after {threshold} failed checks of all metrics together; "
                                       f"here each metric fails on its own at {threshold} failed (or {threshold} "
                                       f"consecutive empty) measurements; {pace}")
        return out

    def _metric(self, mp: Path, interval: float, threshold: int, count: int | None) -> dict | None:
        r = self.r
        r.mapping(mp, required=True)
        name = r.string((*mp, "name"), required=True)
        r.report_unmodelled(mp, {"name", "interval", "thresholdRange", "threshold", "templateRef", "query",
                                 "templateVariables"})
        bounds = self._bounds(mp, name)
        if bounds is None:
            return None
        found = self._reading(mp, name)
        if found is None:
            return None
        reading, builtin, query = found
        conversion = reading.conversion
        if reading.signal is Signal.ERROR_RATE and not reading.percent and max(abs(v) for _, v in bounds) > 1:
            direction = "success" if conversion is SUCCESS_FRACTION else "error"
            conversion = make_reading(direction, True).conversion
            r.warn((*mp, "thresholdRange"), "its bounds are above 1, so the query is read as a percentage")
        threshold_expr = Threshold(tuple(bounds)).converted(conversion.value, conversion.flip)
        if not threshold_expr.finite:
            raise r.error((*mp, "thresholdRange"), "bounds must be finite numbers")
        if not builtin and conversion is not IDENTITY:
            r.warn((*mp, "thresholdRange"), f"{Threshold(tuple(bounds)).render()!r} on {reading.meaning} converted to "
                                            f"{threshold_expr.render()!r} ({conversion.describe})")
        metric_interval = r.duration((*mp, "interval"))
        if metric_interval is not None and metric_interval != interval:
            r.warn((*mp, "interval"), f"Flagger queries the last {format_duration(metric_interval)} at every check; "
                                      f"rolloutlab measures the {format_duration(interval)} since the previous check")
        metric: dict[str, Any] = {"name": name, "signal": reading.signal.value}
        if reading.quantile is not None:
            metric["quantile"] = reading.quantile
        metric["interval"] = interval
        if count is not None:
            metric["count"] = count
        metric["successCondition"] = threshold_expr.render()
        metric["failureLimit"] = threshold - 1
        metric["consecutiveErrorLimit"] = threshold - 1
        if query is not None:  # the user's PromQL, run as written by a live run with Prometheus
            metric["query"] = query
            if conversion is not IDENTITY:
                metric["queryUnit"] = conversion.unit.value
            variables = r.mapping((*mp, "templateVariables")) or {}
            if variables:
                metric["args"] = {str(k): str(v) for k, v in variables.items()}
        return metric

    def _bounds(self, mp: Path, name: str) -> list[tuple[str, float]] | None:
        r = self.r
        bounds: list[tuple[str, float]] = []
        if r.mapping((*mp, "thresholdRange")) is not None:
            rp = (*mp, "thresholdRange")
            r.report_unmodelled(rp, {"min", "max"})
            low, high = r.number((*rp, "min")), r.number((*rp, "max"))
            if low is not None and high is not None and low > high:
                raise r.error(rp, f"min {low:g} is above max {high:g}")
            if low is not None:
                bounds.append((">=", low))
            if high is not None:
                bounds.append(("<=", high))
        elif r.has((*mp, "threshold")) and r.at((*mp, "threshold")) is not None:
            value = r.number((*mp, "threshold"))
            bounds.append((">=" if name == "request-success-rate" else "<=", value))
            r.warn((*mp, "threshold"), "deprecated: read as thresholdRange."
                                       + ("min" if name == "request-success-rate" else "max"))
        if not bounds:
            r.warn(mp, f"no thresholdRange: Flagger never fails this check; metric {name!r} left out")
            return None
        return bounds

    def _reading(self, mp: Path, name: str) -> tuple[QueryReading, bool, str | None] | None:
        """What the metric measures, whether it is one of Flagger's builtin checks, and its
        PromQL to keep (None: a builtin check, or a query for another provider)."""
        r = self.r
        if r.mapping((*mp, "templateRef")) is not None:
            tp = (*mp, "templateRef")
            ref = r.string((*tp, "name"), required=True)
            namespace = r.string((*tp, "namespace"))
            found = self.metric_templates.get(ref)
            if found is None or (namespace and found[1] and namespace != found[1]):
                known = ", ".join(sorted(self.metric_templates)) or "none"
                raise r.error((*tp, "name"), f"refers to MetricTemplate {ref!r}, which is in none of the given "
                                             f"documents (MetricTemplates given: {known}); give the file that defines "
                                             "it too (several files or a directory can be imported together)")
            tr = ManifestReader(found[0], self.warnings, label=f"MetricTemplate/{ref}", main_file=self.file)
            query = tr.string(("spec", "query"), required=True)
            provider = tr.at(("spec", "provider", "type"))
            reading = read_query(query, name)
            if reading is None:
                tr.warn(("spec", "query"), "cannot tell what this query measures (rolloutlab judges the error rate and "
                                           f"latency quantiles); metric {name!r} left out")
                return None
            via = "" if provider in (MISSING, None, "prometheus") else f" ({provider} query read like PromQL)"
            tr.warn(("spec", "query"), f"interpreted as {reading.meaning}{via}: check that this is what it measures")
            return reading, False, query if not via else None
        if name == "request-success-rate":
            return make_reading("success", True), True, None
        if name == "request-duration":
            return _LATENCY_P99_MS, True, None
        query = r.string((*mp, "query"))
        if query is not None:
            reading = read_query(query, name)
            if reading is None:
                r.warn((*mp, "query"), f"cannot tell what this query measures; metric {name!r} left out")
                return None
            r.warn((*mp, "query"), f"deprecated inline query interpreted as {reading.meaning}: check it")
            return reading, False, query
        r.warn(mp, f"{name!r} is not a builtin metric and has no templateRef: Flagger does not check it; left out")
        return None

    # ------------------------------------------------------------------ webhooks

    def _webhooks(self, p: Path) -> None:
        r = self.r
        for j, _ in enumerate(r.sequence(p) or []):
            hp = (*p, j)
            r.mapping(hp, required=True)
            name = r.at((*hp, "name"))
            kind = r.at((*hp, "type"))
            kind = "rollout" if kind in (MISSING, None) else kind
            what = _WEBHOOKS.get(kind, "an unknown webhook type") if isinstance(kind, str) else "an unknown webhook type"
            label = f"webhook {name!r}" if isinstance(name, str) else "webhook"
            r.warn(hp, f"{label} ({kind}): {what}; not modelled")


__all__ = ["API_VERSION", "FlaggerImporter", "is_canary"]
