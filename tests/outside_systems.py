"""Markers for tests that need an outside system installed on the machine.

Without it a developer's run skips them, saying what to install; ``.ci/run`` sets
ROLLOUTLAB_REQUIRE_HAPROXY=1, so there a missing HAProxy fails them instead of skipping.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rolloutlab.live.haproxy import HAPROXY
from rolloutlab.live.nginx import NGINX

REQUIRE_HAPROXY = os.environ.get("ROLLOUTLAB_REQUIRE_HAPROXY") == "1"
needs_haproxy = pytest.mark.skipif(
    not Path(HAPROXY).exists() and not REQUIRE_HAPROXY,
    reason=f"HAProxy not installed at {HAPROXY} (Debian: apt-get install haproxy); the local backend routes through it",
)
needs_nginx = pytest.mark.skipif(
    not Path(NGINX).exists() and not REQUIRE_HAPROXY,
    reason=f"nginx not installed at {NGINX} (Debian: apt-get install nginx); the local backend mirrors through it",
)

PROMETHEUS = "/usr/bin/prometheus"
PROMTOOL = "/usr/bin/promtool"
POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")
# .ci/run installs Prometheus and PostgreSQL with HAProxy: the same switch makes them required.
needs_prometheus = pytest.mark.skipif(
    not (Path(PROMETHEUS).exists() and Path(PROMTOOL).exists()) and not REQUIRE_HAPROXY,
    reason=f"Prometheus not installed at {PROMETHEUS} (Debian: apt-get install prometheus); "
           "live analysis, replay and fit query a real one",
)
needs_postgres = pytest.mark.skipif(
    not (POSTGRES_BIN / "initdb").exists() and not REQUIRE_HAPROXY,
    reason=f"PostgreSQL not installed in {POSTGRES_BIN} (Debian: apt-get install postgresql); "
           "live migrations run real DDL against a throwaway cluster",
)
