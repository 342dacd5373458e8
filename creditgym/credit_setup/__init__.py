"""Credit set-up: build, once per run, what the configured credit modules declare they need.

`build` resolves the configured shapers and estimator and serves each `Requirement` from the
builder registered for its kind (`builders`); `judges` (CALM's LLM or oracle judge) and
`latent` (LaRe's latent-reward code) register the built-in kinds.
"""

from creditgym.credit_setup.build import (
    CreditRuntime,
    build_credit,
    check_multiprocess,
    configured_modules,
    run_context,
    setup_credit,
)
from creditgym.credit_setup.builders import register_builder

__all__ = [
    "CreditRuntime",
    "build_credit",
    "check_multiprocess",
    "configured_modules",
    "register_builder",
    "run_context",
    "setup_credit",
]
