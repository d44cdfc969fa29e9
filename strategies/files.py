"""Strategy files on disk: loading them with precise errors, and the bundled library."""

from __future__ import annotations

import os
from pathlib import Path

from rolloutlab.errors import InputError
from rolloutlab.strategies.spec import StrategySpec
from rolloutlab.strategies.yaml_input import load_model_file

LIBRARY_DIR = Path(__file__).with_name("library")
"""The bundled strategies: ``blue-green``, ``canary`` and ``rolling``."""


def bundled_strategy_names() -> list[str]:
    return sorted(p.stem for p in LIBRARY_DIR.glob("*.yaml"))


def resolve_strategy_path(name_or_path: str | os.PathLike) -> Path:
    """A path as given, or the bundled strategy of that name (``canary``)."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return path
    bundled = LIBRARY_DIR / f"{path.name}.yaml"
    if bundled.exists():
        return bundled
    known = ", ".join(bundled_strategy_names())
    raise InputError(str(name_or_path), f"no such strategy file, and no bundled strategy of that name (bundled: {known})")


def load_strategy(name_or_path: str | os.PathLike) -> StrategySpec:
    """A strategy file (or bundled name), validated; bad input raises ``InputError``."""
    return load_model_file(resolve_strategy_path(name_or_path), StrategySpec)
