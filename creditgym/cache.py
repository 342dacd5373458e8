"""Where creditgym keeps what it builds once and reuses: tiny models, catalogs, indexes, games.

Everything cached is keyed by the parameters that built it, so one folder serves every run.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_root"]


def cache_root(override: str | os.PathLike | None = None) -> Path:
    """`override` if given, else ``$CREDITGYM_CACHE`` if set, else ``~/.cache/creditgym``."""
    if override is not None:
        return Path(override)
    return Path(os.environ.get("CREDITGYM_CACHE") or Path.home() / ".cache" / "creditgym")
