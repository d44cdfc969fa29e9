"""The demo service with a feature flag, run as the real process: the OpenFeature SDK and the
flagd provider (in-process, file mode) evaluate the flag per request from the file a
``FlagFileWriter`` rewrites; plus mirrored copies and writes, counted apart.

Requests are paced (at most 50 per second) and every wait is bounded.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
from openfeature import api
from openfeature.contrib.provider.flagd import FlagdProvider
from openfeature.contrib.provider.flagd.config import ResolverType
from openfeature.evaluation_context import EvaluationContext
from test_demo_service import DEMO, DemoProcess, run_demo, scrape

from rolloutlab.live.flag_file import FlagFileWriter
from rolloutlab.strategies.actions import SetFlagExposure
from rolloutlab.strategies.routes import HeaderMatch

KEY = "new-checkout"
FLAGS = {"flags": {KEY: {"state": "ENABLED", "variants": {"on": True, "off": False}, "defaultVariant": "off"}}}
INTERNAL = HeaderMatch.model_validate({"headerName": "x-user-group", "headerValue": {"exact": "internal"}})
PACE_S = 0.02  # 50 requests per second at most
RELOAD_TIMEOUT_S = 10.0


def paced_get(demo: DemoProcess, user: str | None, headers: dict | None = None, method: str = "GET") -> httpx.Response:
    time.sleep(PACE_S)
    sent = dict(headers or {})
    if user is not None:
        sent["X-User-Id"] = user
    return demo.client.request(method, demo.url + "/checkout", headers=sent)


def cohort_of(i: int) -> dict:
    return {"X-User-Group": "internal"} if i % 5 == 0 else {}


def expected_variants(path: Path, users: list[str]) -> dict[str, str]:
    """What the real provider, in this process, answers each user from the same file."""
    api.set_provider_and_wait(FlagdProvider(resolver_type=ResolverType.FILE, offline_flag_source_path=str(path)))
    try:
        client = api.get_client()
        return {u: client.get_boolean_details(KEY, False, EvaluationContext(u, {k.lower(): v for k, v in
                                                                               cohort_of(i).items()})).variant
                for i, u in enumerate(users)}
    finally:
        api.shutdown()


def flagged_demo(tmp_path: Path, percentage: int = 0, match=(), **env):
    path = tmp_path / "flags.json"
    writer = FlagFileWriter(path, FLAGS, KEY)
    writer.apply(SetFlagExposure(KEY, percentage, tuple(match)))
    return writer, run_demo(tmp_path, flag_file=path, flag_key=KEY, **env)


def test_each_user_gets_the_variant_the_provider_gives_them(tmp_path):
    """At 50% plus the internal cohort, the service answers each user the variant flagd's provider
    computes for that user from the same file (and every internal user is on)."""
    users = [f"user-{i}" for i in range(120)]
    writer, started = flagged_demo(tmp_path, 50, (INTERNAL,))
    with started as demo:
        answers = {u: paced_get(demo, u, cohort_of(i)) for i, u in enumerate(users)}
    assert all(r.status_code == 200 and r.headers["X-Version"] == "v1" for r in answers.values())
    got = {u: r.headers.get("X-Flag-Variant") for u, r in answers.items()}
    assert got == expected_variants(writer.path, users)
    assert {got[u] for i, u in enumerate(users) if cohort_of(i)} == {"on"}
    assert {"on", "off"} <= set(got.values())


def test_the_service_follows_a_rewritten_flag_file(tmp_path):
    """Each rewrite (everyone on, everyone off, ...) reaches the answers within the bounded wait; the
    delay from the write to the first answer with the new variant is printed. The writes are
    spread over the provider's polling period (a write right after a reload waits a whole one)."""
    writer, started = flagged_demo(tmp_path, 0)
    delays = []
    with started as demo:
        assert paced_get(demo, "user-1").headers["X-Flag-Variant"] == "off"
        for k in range(6):
            percentage, wanted = (100, "on") if k % 2 == 0 else (0, "off")
            time.sleep(0.09 * k)
            write = writer.apply(SetFlagExposure(KEY, percentage))
            while True:
                variant = paced_get(demo, "user-1").headers["X-Flag-Variant"]
                seen = time.time()
                if variant == wanted:
                    break
                assert seen - write.at < RELOAD_TIMEOUT_S, f"rewrite {k} not picked up after {RELOAD_TIMEOUT_S} s"
            delays.append(seen - write.at)
    print(f"\nflag reload delay over {len(delays)} rewrites: median {statistics.median(delays):.3f} s, "
          f"max {max(delays):.3f} s, all {[round(d, 3) for d in delays]}")
    assert len(delays) == 6


def test_the_flag_defect_hits_only_users_with_the_flag_on(tmp_path):
    """flag_error_rate 1 fails exactly the flag-on users; set to 0 at runtime, nobody fails;
    error_rate (outside the flag) fails everyone."""
    writer, started = flagged_demo(tmp_path, 50, flag_error_rate=1.0)
    users = [f"user-{i}" for i in range(60)]
    with started as demo:
        first = {u: paced_get(demo, u) for u in users}
        demo.fault(flag_error_rate=0.0)
        healed = [paced_get(demo, u).status_code for u in users[:20]]
        demo.fault(error_rate=1.0)
        outside = [paced_get(demo, u).status_code for u in users[:20]]
    on = {u for u, r in first.items() if r.headers["X-Flag-Variant"] == "on"}
    assert on and len(on) < len(users)
    assert {u for u, r in first.items() if r.status_code == 500} == on
    assert set(healed) == {200} and set(outside) == {500}


def test_mirrored_copies_and_writes_are_counted_apart(tmp_path):
    """Copies carrying X-Rolloutlab-Shadow: 1 appear only in the shadow metrics; POSTs count as writes."""
    shadow = {"X-Rolloutlab-Shadow": "1"}
    with run_demo(tmp_path, error_rate=0.0) as demo:
        for i in range(10):
            paced_get(demo, f"u{i}")
        for i in range(7):
            paced_get(demo, f"u{i}", shadow)
        for i in range(3):
            paced_get(demo, f"u{i}", method="POST")
        for i in range(4):
            paced_get(demo, f"u{i}", shadow, method="POST")
        families = scrape(demo)

    def total(family: str, sample: str, **labels) -> float:
        return sum(s.value for s in families[family].samples
                   if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()))

    assert total("demo_requests", "demo_requests_total") == 13
    assert total("demo_request_duration_seconds", "demo_request_duration_seconds_count") == 13
    assert total("demo_shadow_requests", "demo_shadow_requests_total", code="200") == 11
    assert total("demo_shadow_request_duration_seconds", "demo_shadow_request_duration_seconds_count") == 11
    assert total("demo_writes", "demo_writes_total", shadow="false") == 3
    assert total("demo_writes", "demo_writes_total", shadow="true") == 4
    shadow_bounds = [s.labels["le"] for s in families["demo_shadow_request_duration_seconds"].samples
                     if s.name.endswith("_bucket")]
    user_bounds = [s.labels["le"] for s in families["demo_request_duration_seconds"].samples
                   if s.name.endswith("_bucket")]
    assert shadow_bounds == user_bounds


def test_a_request_without_a_user_id_is_off_and_the_service_logs_nothing(tmp_path):
    """No X-User-Id at 50%: the off variant, and no per-request log line from the provider."""
    _, started = flagged_demo(tmp_path, 50)
    with started as demo:
        answers = [paced_get(demo, None).headers.get("X-Flag-Variant") for _ in range(5)]
        log = demo.log()
    assert answers == ["off"] * 5
    assert len(log.strip().splitlines()) == 1, log  # the start line only


def _run_alone(env: dict, tmp_path: Path) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith("DEMO_")}
    full.update({"DEMO_HOST": "127.0.0.1", "DEMO_PORT": "0", **env})
    return subprocess.run([sys.executable, "-I", str(DEMO)], env=full, cwd=tmp_path, capture_output=True,
                          text=True, timeout=30)


def test_flag_settings_that_cannot_work_stop_the_service_at_start(tmp_path):
    """A flag file without a key, or a flag file that is not there, exits 2 with the reason."""
    alone = _run_alone({"DEMO_FLAG_FILE": str(tmp_path / "flags.json")}, tmp_path)
    assert alone.returncode == 2 and "DEMO_FLAG_KEY" in alone.stderr
    missing = _run_alone({"DEMO_FLAG_FILE": str(tmp_path / "nowhere.json"), "DEMO_FLAG_KEY": KEY}, tmp_path)
    assert missing.returncode == 2 and "flag provider did not start" in missing.stderr


def test_without_a_flag_file_openfeature_is_never_imported():
    """Pods without a flag run on the standard library and prometheus_client: the SDK stays unimported."""
    code = (
        "import sys\n"
        f"sys.path.insert(0, {str(DEMO.parent)!r})\n"
        "import demo_service as demo\n"
        "service = demo.DemoService(demo.load_config({}))\n"
        "service.draw_app_answer(); service.record(200, 0.01, shadow=True, write=True)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('openfeature'))))\n"
    )
    out = subprocess.run([sys.executable, "-I", "-c", "import json\n" + code], capture_output=True, text=True,
                         timeout=60, check=True)
    assert json.loads(out.stdout) == []
