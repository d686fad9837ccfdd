"""Files mglkit ships: in a wheel under ``mglkit/_bundled``, in a checkout at the repository root."""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def bundled_root() -> Path:
    wheel = _PACKAGE / "_bundled"
    return wheel if wheel.is_dir() else _PACKAGE.parent


def bundled(relative: str) -> Path:
    """Path of a shipped file, e.g. ``bundled("data/mgl_history_grpo.jsonl")``."""
    return bundled_root() / relative


def resolve_data_path(name: str) -> Path:
    """A path that exists; else the shipped file of that name (``data/mgl_history_grpo.jsonl``
    works from any directory), so a user's own file of the same name is never shadowed."""
    path = Path(name)
    if path.exists() or path.is_absolute():
        return path
    shipped = bundled(name)
    return shipped if shipped.is_file() else path


def cache_root() -> Path:
    """Where built models and indexes are cached: MGLKIT_CACHE, else the user cache directory."""
    if os.environ.get("MGLKIT_CACHE"):
        return Path(os.environ["MGLKIT_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mglkit"
