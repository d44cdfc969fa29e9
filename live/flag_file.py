"""The flag file a feature-flag rollout rewrites: each exposure, rendered into flagd's
format and written atomically where the pods' flagd provider reads it.

The pods evaluate the flag in-process with OpenFeature's SDK and the flagd provider in
file mode (``live/demo_service.py``, ``DEMO_FLAG_FILE``); the provider polls the file's
modification time and reloads it whole, so a write must replace the file in one step
(``write_atomically``: a reader sees the old content or the new, never half of one).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rolloutlab.live.local_state import write_atomically
from rolloutlab.strategies.actions import SetFlagExposure
from rolloutlab.strategies.flagd import check_flag, render_flags
from rolloutlab.strategies.routes import HeaderMatch


@dataclass(frozen=True, slots=True)
class FlagWrite:
    """One rewrite of the flag file: when (wall-clock seconds, ``time.time()``) and what."""

    at: float
    percentage: int
    match: tuple[HeaderMatch, ...]


class FlagFileWriter:
    """Writes ``flag_key``'s exposure into the flag file at ``path``.

    ``flags`` is the flag file's content as the strategy loaded it (``spec.flags``); the
    other flags in it are written as they are. ``off_variant`` None is the flag's
    defaultVariant in ``flags``. Nothing is written before the first :meth:`apply`: apply
    ``SetFlagExposure(flag_key, 0)`` (everyone off) before starting pods that read the file.
    """

    def __init__(self, path: str | os.PathLike[str], flags: Mapping[str, Any], flag_key: str,
                 on_variant: str = "on", off_variant: str | None = None) -> None:
        self.path = Path(path)
        self.flags = flags
        self.flag_key = flag_key
        self.on_variant = on_variant
        self.off_variant = check_flag(flags, flag_key, on_variant, off_variant)  # FieldError when it cannot work
        self.writes: list[FlagWrite] = []

    def apply(self, action: SetFlagExposure) -> FlagWrite:
        """Render ``action``'s exposure and replace the file with it; returns the write."""
        if action.flag_key != self.flag_key:
            raise ValueError(f"this writer owns flag {self.flag_key!r}, not {action.flag_key!r}")
        content = render_flags(self.flags, self.flag_key, action.percentage, action.match,
                               self.on_variant, self.off_variant)
        write_atomically(self.path, json.dumps(content, indent=2, sort_keys=True) + "\n")
        write = FlagWrite(time.time(), action.percentage, tuple(action.match))
        self.writes.append(write)
        return write

    @property
    def last(self) -> FlagWrite | None:
        """The latest write (None before the first)."""
        return self.writes[-1] if self.writes else None


__all__ = ["FlagFileWriter", "FlagWrite"]
