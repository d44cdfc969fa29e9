"""A real Prometheus server, and its HTTP API: the one door to Prometheus in the project.

``PrometheusServer`` starts Debian's ``prometheus`` (``/usr/bin/prometheus``) on a free
127.0.0.1 port with a generated configuration: one scrape job per name given, each fed by
file-based service discovery (``file_sd_configs``: a JSON file of targets that Prometheus
watches, so pods that come and go are followed by rewriting the file, the way Prometheus'
docs recommend for anything without a discovery mechanism of its own:
https://prometheus.io/docs/guides/file-sd/). Prometheus' discovery manager passes target
changes on at most every 5 seconds (``updatert`` in prometheus/prometheus
``discovery/manager.go``): a target written now is scraped 5 s (wall) later, measured
5.06 s here, which a run at 20x sees as 100 scenario seconds. Or it serves an existing TSDB directory, for
history written by ``promtool tsdb create-blocks-from openmetrics`` (replay and fit tests).
The server dies with the thread that started it (``PR_SET_PDEATHSIG``), as the local
backend's pods do, and ``close()`` removes what it created.

``PrometheusClient`` speaks the HTTP API (https://prometheus.io/docs/prometheus/latest/querying/api/):
``query`` (``/api/v1/query``, an instant vector or scalar at a time) and ``query_range``
(``/api/v1/query_range``, a matrix). An unreachable server and a query Prometheus rejects
are ``BadInput`` (exit 2) with one line saying which; an answer without series is an
empty list, and callers say what that means for them (``require_series`` helps).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import yaml

from rolloutlab.errors import BadInput, PrometheusMissing, PrometheusQueryError, PrometheusUnreachable
from rolloutlab.live.child_processes import die_with_parent, terminate
from rolloutlab.live.haproxy import free_port

PROMETHEUS = "/usr/bin/prometheus"
PROMTOOL = "/usr/bin/promtool"
INSTALL_HINT = "Debian: apt-get install prometheus"


def _duration(seconds: float) -> str:
    """A Prometheus duration; whole milliseconds, the finest it reads (``250ms``, ``2s``)."""
    ms = max(1, int(round(seconds * 1000)))
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def require_binary(path: str = PROMETHEUS) -> str:
    if not Path(path).exists():
        raise PrometheusMissing(f"{path} not found: install Prometheus ({INSTALL_HINT})")
    return path


# --------------------------------------------------------------------------- the server


@dataclass
class PrometheusServer:
    """A Prometheus process of our own on 127.0.0.1.

    ``jobs``: scrape job names, each discovered from ``<sd_dir>/<job>.json`` (write it with
    ``write_targets``). ``storage``: the TSDB directory; None makes a temporary one,
    removed on close; a directory given is kept (serving recorded history: pass
    ``jobs=()``). ``scrape_interval``: seconds, in milliseconds at the finest (a live run
    at 20x needs sub-second scrapes for its windows to hold data).
    """

    jobs: Sequence[str] = ()
    storage: Path | None = None
    scrape_interval: float = 1.0
    retention: str = "100y"  # recorded history may be old: never let retention drop it
    binary: str = PROMETHEUS
    start_timeout: float = 30.0
    port: int = 0
    _dir: Path | None = field(default=None, init=False, repr=False)
    _process: subprocess.Popen | None = field(default=None, init=False, repr=False)

    # ----------------------------------------------------------------- lifecycle

    def __enter__(self) -> "PrometheusServer":
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def sd_dir(self) -> Path:
        if self._dir is None:
            raise RuntimeError("the Prometheus server is not started")
        return self._dir / "sd"

    @property
    def client(self) -> "PrometheusClient":
        return PrometheusClient(self.url)

    def start(self) -> "PrometheusServer":
        require_binary(self.binary)
        self._dir = Path(tempfile.mkdtemp(prefix="rolloutlab-prometheus-"))
        (self._dir / "sd").mkdir()
        storage = self.storage if self.storage is not None else self._dir / "data"
        for job in self.jobs:
            self.write_targets(job, [])
        config = self._dir / "prometheus.yml"
        config.write_text(yaml.safe_dump(self.config(), sort_keys=False))
        log = self._dir / "prometheus.log"
        for attempt in range(3):  # a free port can be taken between choosing and binding
            self.port = self.port if self.port and attempt == 0 else free_port()
            args = [self.binary, f"--config.file={config}", f"--storage.tsdb.path={storage}",
                    f"--storage.tsdb.retention.time={self.retention}",
                    f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"]
            with open(log, "ab") as sink:
                self._process = subprocess.Popen(args, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                                 preexec_fn=die_with_parent(os.getpid()), start_new_session=True)
            if self._wait_ready(log):
                return self
            if "address already in use" not in log.read_text(errors="replace"):
                break
        tail = log.read_text(errors="replace")[-1500:]
        self.close()
        raise PrometheusUnreachable(f"Prometheus did not start within {self.start_timeout:g}s: {tail.strip()}")

    def _wait_ready(self, log: Path) -> bool:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                return False
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=1.0).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        return False

    def close(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            terminate(process, 10.0)
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    # ----------------------------------------------------------------- configuration

    def config(self) -> dict:
        """The generated configuration: one file-discovered job per name."""
        interval = _duration(self.scrape_interval)
        return {
            "global": {"scrape_interval": interval, "evaluation_interval": interval,
                       "scrape_timeout": _duration(min(self.scrape_interval, 10.0))},
            "scrape_configs": [
                {"job_name": job, "metrics_path": "/metrics",
                 "file_sd_configs": [{"files": [str(self.sd_dir / f"{job}.json")], "refresh_interval": "5s"}]}
                for job in self.jobs
            ],
        }

    def write_targets(self, job: str, targets: Sequence[tuple[str, Mapping[str, str]]]) -> None:
        """Replace ``job``'s targets: ``(host:port, labels)`` pairs. Written to a temporary
        file and renamed, so Prometheus never reads half a file (it watches the file and
        also re-reads it every refresh interval)."""
        if job not in self.jobs:
            raise ValueError(f"no scrape job {job!r} (jobs: {', '.join(self.jobs) or 'none'})")
        groups = [{"targets": [address], "labels": dict(labels)} for address, labels in targets]
        path = self.sd_dir / f"{job}.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(groups))
        os.replace(tmp, path)

    def active_targets(self) -> list[dict]:
        """Prometheus' own view of its targets (``/api/v1/targets``, active ones)."""
        return self.client.get("/api/v1/targets")["activeTargets"]


# --------------------------------------------------------------------------- the HTTP API


@dataclass(frozen=True)
class Sample:
    """One series of an instant query's answer (a scalar answer has no labels)."""

    labels: Mapping[str, str]
    value: float
    at: float


@dataclass(frozen=True)
class Series:
    """One series of a range query's answer: seconds and values, in time order."""

    labels: Mapping[str, str]
    times: np.ndarray
    values: np.ndarray


def _number(text: str) -> float:
    # Prometheus writes NaN, +Inf and -Inf as strings; float() reads all three.
    return float(text)


@dataclass(frozen=True)
class PrometheusClient:
    """Prometheus' HTTP API at ``url`` (``http://host:port``, a path prefix allowed)."""

    url: str
    timeout: float = 10.0

    def get(self, path: str, params: Mapping[str, str] | None = None) -> dict:
        """``data`` of a successful API answer; BadInput for everything else."""
        where = f"{self.url.rstrip('/')}{path}"
        try:
            response = httpx.get(where, params=dict(params or {}), timeout=self.timeout)
        except httpx.HTTPError as error:
            raise PrometheusUnreachable(f"Prometheus at {self.url} is not reachable: {error or type(error).__name__}")
        try:
            body = response.json()
        except ValueError:
            raise PrometheusUnreachable(f"{where} answered {response.status_code} without Prometheus' JSON: "
                                        f"{response.text[:200]!r} (is this a Prometheus server?)")
        if body.get("status") != "success":
            query = (params or {}).get("query")
            what = f"the query {query!r}" if query else path
            raise PrometheusQueryError(f"Prometheus at {self.url} rejected {what}: "
                                       f"{body.get('errorType', 'error')}: {body.get('error', response.text[:200])}")
        return body["data"]

    def query(self, promql: str, at: float | None = None) -> list[Sample]:
        """An instant query, evaluated now or at Unix time ``at``: one Sample per series
        (a scalar or string answer gives one Sample without labels)."""
        params = {"query": promql}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = self.get("/api/v1/query", params)
        kind, result = data["resultType"], data["result"]
        if kind in ("scalar", "string"):
            return [Sample({}, _number(result[1]), float(result[0]))]
        if kind == "vector":
            return [Sample(r["metric"], _number(r["value"][1]), float(r["value"][0])) for r in result]
        raise PrometheusQueryError(f"the query {promql!r} answered a {kind}, not an instant vector or scalar "
                                   "(a range selector needs a function such as rate() around it)")

    def query_range(self, promql: str, start: float, end: float, step: float) -> list[Series]:
        """A range query from ``start`` to ``end`` (Unix seconds) every ``step`` seconds."""
        if not (math.isfinite(start) and math.isfinite(end)) or end < start:
            raise PrometheusQueryError(f"the time range {start:g}..{end:g} is empty or backwards")
        if step <= 0:
            raise PrometheusQueryError(f"the step must be above 0 seconds, got {step:g}")
        data = self.get("/api/v1/query_range", {"query": promql, "start": f"{start:.3f}", "end": f"{end:.3f}",
                                                "step": _duration(step)})
        out = []
        for r in data["result"]:
            points = r.get("values", [])
            out.append(Series(r["metric"], np.array([float(t) for t, _ in points]),
                              np.array([_number(v) for _, v in points])))
        return out

    def value(self, promql: str, at: float | None = None) -> float | None:
        """The one number an analysis query answers (Argo's ``result[0]``): the first
        series' value, None when no series came back. More than one series is ambiguous
        for a threshold, as in Argo, which judges ``result[0]``; we refuse it instead of
        picking one by Prometheus' ordering."""
        samples = self.query(promql, at)
        if not samples:
            return None
        if len(samples) > 1:
            raise PrometheusQueryError(f"the query {promql!r} answered {len(samples)} series; an analysis "
                                       "measurement needs one (aggregate it, e.g. sum(...))")
        return samples[0].value


def require_series(promql: str, series: Sequence, where: str) -> None:
    """Raise the clear error for a query that had to return series and returned none."""
    if not series:
        raise PrometheusQueryError(f"the query {promql!r} returned no series {where}: check its metric names "
                                   "and labels against what the server holds (e.g. in its /graph page)")


def create_blocks(openmetrics: Path, storage: Path, promtool: str = PROMTOOL) -> None:
    """Write an OpenMetrics text file as TSDB blocks into ``storage``
    (``promtool tsdb create-blocks-from openmetrics``): recorded history a
    ``PrometheusServer(storage=...)`` then serves."""
    if not Path(promtool).exists():
        raise PrometheusMissing(f"{promtool} not found: install Prometheus ({INSTALL_HINT})")
    storage.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", str(openmetrics), str(storage)],
                          capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise BadInput(f"promtool could not read {openmetrics}: {(done.stderr or done.stdout).strip()[-500:]}")


__all__ = ["PROMETHEUS", "PROMTOOL", "PrometheusClient", "PrometheusMissing", "PrometheusQueryError",
           "PrometheusServer", "PrometheusUnreachable", "Sample", "Series", "create_blocks", "require_series"]
