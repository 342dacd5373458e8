"""Run untrusted (LLM-written) factor code outside the trainer's process.

`runner` (`run_sandboxed`, the entry point), `policy` (the syntax allow-list), `process` and
`child` (the OS layers), `result` (the parent's strict reading of the answer).
"""

from creditgym.credit.sandbox.result import KINDS, SandboxError
from creditgym.credit.sandbox.runner import (
    ALLOWED_MODULES,
    CHILD_LAYERS,
    check_code,
    run_sandboxed,
    sandbox_layers,
)

__all__ = [
    "ALLOWED_MODULES",
    "CHILD_LAYERS",
    "KINDS",
    "SandboxError",
    "check_code",
    "run_sandboxed",
    "sandbox_layers",
]
