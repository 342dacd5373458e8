"""Shared test set-up: one on-disk cache for built artefacts (tiny models, catalogs, indexes)."""

import os
from pathlib import Path

# Built artefacts are keyed by their parameters, so a cache shared by every test (and kept
# between runs) is safe and makes the suite fast; it lives in the repository, git-ignored.
os.environ.setdefault(
    "CREDITGYM_CACHE", str(Path(__file__).resolve().parents[1] / ".cache" / "tests")
)
