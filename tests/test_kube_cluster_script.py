"""scripts/kube-cluster.sh refuses to start on a machine that lacks a part, with a message
naming the part, at once: never a hang, never a half-started cluster.

These run the script's preflight against a state folder of their own (the running test
cluster, if any, is not touched: its status is read from the default folder only).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "kube-cluster.sh"


def run_up(tmp_path: Path, env: dict[str, str], user: str | None = None) -> subprocess.CompletedProcess:
    argv = [str(SCRIPT), "up"]
    if user is not None:
        argv = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *argv]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60,
                          env={**env, "ROLLOUTLAB_KUBE_DIR": str(tmp_path / "cluster")})


def path_without(tmp_path: Path, missing: str) -> str:
    """A PATH with every tool of the machine's PATH but ``missing``."""
    shadow = tmp_path / "bin"
    shadow.mkdir()
    for folder in os.environ["PATH"].split(os.pathsep):
        if not os.path.isdir(folder):
            continue
        for name in os.listdir(folder):
            target = Path(folder) / name
            if name != missing and not (shadow / name).exists() and os.access(target, os.X_OK):
                (shadow / name).symlink_to(target)
    return str(shadow)


@pytest.mark.skipif(os.geteuid() != 0, reason="the preflight's own root check answers first when not root")
@pytest.mark.parametrize("tool", ["containerd", "runc", "conntrack"])
def test_a_missing_tool_is_named_and_nothing_starts(tmp_path, tool):
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed here at all")
    done = run_up(tmp_path, {**os.environ, "PATH": path_without(tmp_path, tool)})
    assert done.returncode == 1
    assert f"missing '{tool}'" in done.stderr, done.stderr
    assert not (tmp_path / "cluster" / "run").exists()  # refused before anything started


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root to drop to another user")
def test_without_root_it_says_so(tmp_path):
    tmp_path.chmod(0o777)
    done = run_up(tmp_path, {"PATH": os.environ["PATH"]}, user="65534")  # nobody
    assert done.returncode == 1
    assert "needs root" in done.stderr, done.stderr


def test_an_unknown_command_is_a_usage_error():
    done = subprocess.run([str(SCRIPT), "start"], capture_output=True, text=True, timeout=10)
    assert done.returncode == 2 and "usage" in done.stderr
