"""Serve the configured credit modules what they ask for, without naming any of them.

Each shaper and estimator in the config is resolved through the credit registry, which gives
the `Requirement`s it lists, whether it runs under several processes, and whether it is a
class to instantiate once per run (`creditgym.credit.modules`). For every requirement the
*builder registered for its kind* builds the thing (an LLM judge, a latent-reward model...)
from the config setting or module option the requirement names; `CreditRuntime` then hands
everything to the modules through each iteration's `CreditContext`, and gathers their state
for checkpoints.

Built-in kinds: ``scorer`` (the trained policy, handed in every iteration), ``answer_scores``
(the rollout scores a ground-truth answer after every prompt; the value is the text before the
answer), and those `creditgym.credit_setup.judges` and `creditgym.credit_setup.latent`
register. Register a builder for a kind of your own with `register_builder`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from creditgym.config import Config
from creditgym.credit import CreditContext, Requirement, RunContext, StatefulModule
from creditgym.credit.registry import Resolved, resolve
from creditgym.credit_setup import judges, latent  # noqa: F401 (they register their builders)
from creditgym.credit_setup.builders import ANSWER_SCORES, SCORER, get_builder, register_builder
from creditgym.envs.registry import env_metadata

__all__ = [
    "CreditRuntime",
    "register_builder",
    "setup_credit",
    "build_credit",
    "run_context",
    "check_multiprocess",
]


@register_builder(ANSWER_SCORES)
def _answer_prefix(value: Any, run: RunContext, where: str) -> str:
    return str(value)


def configured_modules(config: Config) -> list[Resolved]:
    """The config's shapers, then its estimator, resolved (names and options checked)."""
    shapers = [resolve("shaper", spec) for spec in config.credit.shapers]
    return [*shapers, resolve("estimator", config.credit.estimator)]


def check_multiprocess(config: Config, world_size: int) -> None:
    """Fail early, with the fix, if a configured module cannot run in several processes."""
    if world_size <= 1:
        return
    for module in configured_modules(config):
        if not module.multiprocess:
            raise ValueError(
                f"the {module.kind} {module.name!r} says it does not run under several "
                "processes (it learns from the whole batch, and each process sees only its "
                "share); train it in one process (without torchrun)"
            )


@dataclass
class CreditRuntime:
    """What the configured credit modules were given, for the whole run.

    Attributes:
        built: the built requirements by context key (a `CreditContext` field or extras key).
        modules: instances of class-based modules, by registered name.
        answer_prefix: what the rollout scores answers after (``answer_scores``), or None.
        required_kinds: every requirement kind the modules listed (``scorer`` included,
            though the caller hands that one in).
    """

    built: dict[str, Any] = field(default_factory=dict)
    modules: dict[str, Any] = field(default_factory=dict)
    answer_prefix: str | None = None
    required_kinds: set[str] = field(default_factory=set)
    _stats_seen: dict[str, float] = field(default_factory=dict)

    def context(self, scorer: Any, iteration: int) -> CreditContext:
        """This iteration's `CreditContext`: the policy as scorer plus everything built."""
        fields = {f.name for f in dataclasses.fields(CreditContext)}
        direct = {key: thing for key, thing in self.built.items() if key in fields}
        extras = {key: thing for key, thing in self.built.items() if key not in fields}
        direct.setdefault(SCORER, scorer)
        return CreditContext(**direct, iteration=iteration, extras=extras, modules=self.modules)

    def _stateful(self) -> dict[str, StatefulModule]:
        things = {**self.built, **self.modules}
        return {key: thing for key, thing in things.items() if isinstance(thing, StatefulModule)}

    def state_dict(self) -> dict[str, Any]:
        """The learned state of every stateful module and built thing, by key (checkpoints)."""
        return {key: thing.state_dict() for key, thing in self._stateful().items()}

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        stateful = self._stateful()
        for key, state in saved.items():
            if key in stateful:
                stateful[key].load_state_dict(state)

    def metrics(self) -> dict[str, float]:
        """This iteration's counts from built things that keep ``stats`` (e.g. judge requests,
        failures, cache hits): the totals since the run began minus those already logged; and
        what class modules with a ``metrics()`` report of their last call (e.g. a critic's
        value loss), as they are, under ``<module name>/``."""
        row = {}
        for key, thing in self.built.items():
            for name, value in getattr(thing, "stats", {}).items():
                metric = f"{key}/{name}"
                row[metric] = float(value) - self._stats_seen.get(metric, 0.0)
                self._stats_seen[metric] = float(value)
        for key, module in self.modules.items():
            report = getattr(module, "metrics", None)
            if callable(report):
                row.update({f"{key}/{name}": float(value) for name, value in report().items()})
        return row


def run_context(config: Config, output_dir: Path | None, world_size: int = 1) -> RunContext:
    """The `RunContext` a run of `config` gives its credit modules and requirement builders."""
    return RunContext(
        env_id=config.env.id,
        env_metadata=dict(env_metadata(config.env.id)),
        output_dir=None if output_dir is None else Path(output_dir),
        seed=config.run.seed,
        world_size=world_size,
        settings=dataclasses.asdict(config.credit),
    )


def setup_credit(config: Config, output_dir: Path, world_size: int = 1) -> CreditRuntime:
    """Build what the configured modules require, instantiate and set up class modules.

    Runs before the run seeds its random streams (builders may draw their own seeds from
    `RunContext.seed`), so a bad credit config fails before any model is built.
    """
    return build_credit(configured_modules(config), run_context(config, output_dir, world_size))


def build_credit(
    modules: Sequence[Resolved], run: RunContext, shared: dict[tuple[str, str], Any] | None = None
) -> CreditRuntime:
    """Serve `modules` (resolved shapers and estimator) what they list, for one run.

    Args:
        modules: what `resolve` gives for each configured shaper and the estimator.
        run: what builders and set-up steps learn about the run.
        shared: a cache of built things without learned state, by (kind, value), for callers
            that build several credit configurations at once (one judge serves them all); a
            thing with learned state (`StatefulModule`) is always built afresh.

    Raises:
        ValueError: a module requires a kind no builder is registered for, or a builder
            rejects the setting or option it was given.
    """
    runtime = CreditRuntime()
    for module in modules:
        for requirement in module.requires:
            runtime.required_kinds.add(requirement.kind)
            _build(runtime, module, requirement, run, shared)
        if module.is_module and module.name not in runtime.modules:
            instance = module.fn()
            if hasattr(instance, "setup"):
                instance.setup(run)
            runtime.modules[module.name] = instance
    return runtime


def _build(
    runtime: CreditRuntime,
    module: Resolved,
    requirement: Requirement,
    run: RunContext,
    shared: dict[tuple[str, str], Any] | None = None,
) -> None:
    key = requirement.context_key
    if requirement.kind == SCORER or key in runtime.built:  # scorer: handed in each iteration
        return
    builder = get_builder(requirement.kind)
    if builder is None:
        raise ValueError(
            f"the {module.kind} {module.name!r} requires a {requirement.kind!r}, and no builder "
            f"is registered for that kind; register one with "
            f"@creditgym.credit_setup.register_builder({requirement.kind!r})"
        )
    if requirement.setting:
        value, where = run.settings.get(requirement.setting), f"credit.{requirement.setting}"
    elif requirement.option:
        value, where = module.option(requirement.option), f"{module.name}.{requirement.option}"
    else:
        value, where = None, f"{module.kind} {module.name!r}"
    cache_key = (requirement.kind, repr(value))
    if shared is not None and cache_key in shared:
        runtime.built[key] = shared[cache_key]
    else:
        runtime.built[key] = builder(value, run, where)
        if shared is not None and not isinstance(runtime.built[key], StatefulModule):
            shared[cache_key] = runtime.built[key]
    if requirement.kind == ANSWER_SCORES:
        runtime.answer_prefix = runtime.built[key]
