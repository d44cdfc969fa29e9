"""Child processes the live runs start (pods, HAProxy, nginx, Prometheus, PostgreSQL): they
die with us, and stopping one ends in SIGKILL when it does not go on its own."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1
try:
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux: atexit and close() only
    _prctl = None


def die_with_parent(parent_pid: int) -> Callable[[], None] | None:
    """A ``preexec_fn`` making the kernel SIGKILL the child when the spawning thread dies
    (PR_SET_PDEATHSIG); None where prctl does not exist."""
    if _prctl is None:
        return None

    def preexec() -> None:  # runs in the child between fork and exec
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


def wait_or_kill(process: subprocess.Popen, timeout_s: float) -> None:
    """Wait up to ``timeout_s`` for a child asked to stop; SIGKILL it if it is still there."""
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout_s)


def terminate(process: subprocess.Popen, timeout_s: float) -> None:
    """SIGTERM a running child, then ``wait_or_kill``."""
    if process.poll() is None:
        process.terminate()
        wait_or_kill(process, timeout_s)


__all__ = ["die_with_parent", "terminate", "wait_or_kill"]
