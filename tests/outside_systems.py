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
