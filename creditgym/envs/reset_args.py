"""The arguments of every creditgym env's ``reset(seed=, options=)``, checked before use.

Gymnasium's own seeding turns a bad seed into an error of its own (or accepts a bool as a
seed); an env that goes on to use the seed for its task generator, or iterates over
``options``, fails further in with an error that names neither. Each env calls
`reset_arguments` first, so an odd argument is a `TypeError` or `ValueError` naming it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["MAX_SEED", "reset_arguments"]

#: The largest seed accepted: seeds are signed 64-bit integers (NumPy's and NetHack's).
MAX_SEED = 2**63 - 1


def _seed(seed: Any, env_name: str) -> int | None:
    if seed is None:
        return None
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise TypeError(
            f"{env_name}.reset(seed={seed!r:.60}): seed must be an int in [0, {MAX_SEED}] or "
            f"None, not {type(seed).__name__}"
        )
    if not 0 <= int(seed) <= MAX_SEED:
        raise ValueError(
            f"{env_name}.reset(seed={int(seed)}): seed must be in [0, 2**63 - 1] "
            f"(a non-negative signed 64-bit integer)"
        )
    return int(seed)


def reset_arguments(seed: Any, options: Any, env_name: str) -> tuple[int | None, dict[str, Any]]:
    """``(seed, options)`` checked: the seed an int in [0, `MAX_SEED`] or None (NumPy
    integers become ints), the options a mapping or None (as a fresh dict)."""
    checked_seed = _seed(seed, env_name)
    if options is None:
        return checked_seed, {}
    if not isinstance(options, Mapping):
        raise TypeError(
            f"{env_name}.reset(options={options!r:.60}): options must be a dict or None, "
            f"not {type(options).__name__}"
        )
    return checked_seed, dict(options)
