"""Names of the `info` keys every creditgym environment provides (see `creditgym.info_keys`).

The constants live in `creditgym.info_keys`, which imports nothing, so credit modules use the
same names without importing the envs; this module re-exports them for env and agent code.
"""

from __future__ import annotations

from creditgym.info_keys import (
    ADMISSIBLE_ACTIONS,
    ANCHOR,
    ANSWER,
    EVENTS,
    REQUIRED_KEYS,
    SYMBOLIC_STATE,
    TASK,
    TASK_TYPE,
    VALID,
    WON,
)

__all__ = [
    "TASK",
    "ADMISSIBLE_ACTIONS",
    "ANCHOR",
    "WON",
    "VALID",
    "ANSWER",
    "SYMBOLIC_STATE",
    "EVENTS",
    "TASK_TYPE",
    "REQUIRED_KEYS",
]
