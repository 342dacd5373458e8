"""Why an episode failed: the reasons a rollout records and the trainer counts.

An episode fails when its environment breaks under it; the collector then marks it ``failed``
(it stays out of the advantages), keeps what happened in ``metadata["error"]`` and the kind
of break in ``metadata["failure"]``, one of:

==========  ==================================================================================
``error``   the env raised an exception (in this process, or inside its worker process)
``crash``   the env's worker process died: killed, a segfault, an exit (``rollout.isolation``),
            or a Ray env worker lost (``rollout.workers``)
``timeout`` the worker did not answer a reset or step within ``rollout.env_step_timeout_s``
            (or, when starting, ``rollout.env_start_timeout_s``); it is killed
``garbage`` the worker's answer was not a message of the protocol: not JSON, too large, a
            message of another type, or fields of the wrong type
``memory``  the worker's resident memory passed ``rollout.env_max_rss_mb`` after a reset or
            step, or an allocation failed inside it (``MemoryError``)
==========  ==================================================================================

The trainer logs the count of each as ``rollout/failed/<reason>`` beside
``rollout/failed_episodes`` (every reason with isolated workers; otherwise the reasons that
occurred).
"""

from __future__ import annotations

__all__ = [
    "CRASH",
    "ERROR",
    "FAILURE_REASONS",
    "GARBAGE",
    "MEMORY",
    "TIMEOUT",
    "EnvFailure",
    "failure_reason",
]

ERROR = "error"
CRASH = "crash"
TIMEOUT = "timeout"
GARBAGE = "garbage"
MEMORY = "memory"
#: Every reason, in the order the metrics list them.
FAILURE_REASONS = (ERROR, CRASH, TIMEOUT, GARBAGE, MEMORY)


class EnvFailure(RuntimeError):
    """An environment (or the worker holding it) broke; `reason` is one of `FAILURE_REASONS`
    and the message says what happened in words a user can act on."""

    def __init__(self, reason: str, message: str) -> None:
        if reason not in FAILURE_REASONS:
            raise ValueError(f"unknown failure reason {reason!r}; one of {FAILURE_REASONS}")
        super().__init__(message)
        self.reason = reason


def failure_reason(error: BaseException) -> str:
    """The reason an exception from an env call stands for (`ERROR` for a plain exception)."""
    if isinstance(error, EnvFailure):
        return error.reason
    if isinstance(error, MemoryError):
        return MEMORY
    return ERROR
