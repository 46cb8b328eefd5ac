"""Paths and run profiles (``ci``, ``cpu``, ``gpu``) as plain, copyable data."""
from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$HBKIT_CACHE``, else the user cache folder (``~/.cache/hbkit`` on Linux). Created on demand."""
    root = os.environ.get("HBKIT_CACHE")
    if root:
        path = Path(root).expanduser()
    else:
        from platformdirs import user_cache_dir

        path = Path(user_cache_dir("hbkit"))
    path.mkdir(parents=True, exist_ok=True)
    return path
