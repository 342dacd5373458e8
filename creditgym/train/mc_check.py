"""Does the batch's credit agree with the training policy's own Monte-Carlo advantages?

Every ``credit.mc_every`` iterations, before the update, `mc_turns` turns of the batch are
drawn, continued from their cloned states by the policy that collected the batch (K =
``credit.mc_continuations`` returns per Q and per V, `creditgym.measure.monte_carlo`), and the
estimator's advantages at those turns are compared with A^pi = Q - V, beside GRPO's on the same
turns. This is the yardstick that matters for learning: the omniscient planner's cost-to-go
knows where hidden objects are, so agreeing with it says little about what the policy can
learn; agreeing with the policy's own advantages is what a policy gradient wants.

Logged (``credit/mc_*``, a viewer curve each): Spearman and sign agreement of the estimator
and of GRPO with the Monte-Carlo advantages, the turns scored, their mean standard error and
the continuations' env steps (logged, not counted in the training budget). The policy's
sampling generator is restored afterwards, so a run's training batches are the same with the
check on or off. With several ranks, each checks its own batch and rank 0's numbers are logged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from creditgym.credit import grpo_advantages
from creditgym.credit.fidelity import sign_agreement, spearman
from creditgym.measure.monte_carlo import monte_carlo_advantages, sample_turns
from creditgym.trajectory import Episode

__all__ = ["check_mc_check", "mc_check_due", "mc_agreement", "monte_carlo_check"]


def check_mc_check(config: Any) -> None:
    """Fail before training, with the fix, where ``credit.mc_every`` cannot run.

    Raises:
        ConfigError: conversation context (continuations rebuild each prompt from the turns) or
            an env that cannot clone its state.
    """
    from creditgym.config import ConfigError
    from creditgym.envs.oracle import supports_cloning
    from creditgym.rollout.collect import make_envs

    if config.credit.mc_every == 0:
        return
    if config.policy.context != "window":
        raise ConfigError(
            "credit.mc_every needs policy.context=window (Monte-Carlo continuations rebuild "
            "each prompt from the episode's turns); set policy.context=window or "
            "credit.mc_every=0"
        )
    env = make_envs(config.env.id, 1, split=config.env.train_split, **config.env.kwargs)[0]
    try:
        if not supports_cloning(env):
            raise ConfigError(
                f"credit.mc_every: {config.env.id} cannot clone its state (no clone_state()/"
                "restore_state()), so no Monte-Carlo continuation can start mid-episode; set "
                "credit.mc_every=0"
            )
    finally:
        env.close()


def mc_check_due(config: Any, iteration: int) -> bool:
    """Whether iteration `iteration` (1-based) runs the check."""
    every = config.credit.mc_every
    return every > 0 and iteration % every == 0


def mc_agreement(
    episodes: Sequence[Episode],
    turn_rewards: Sequence[np.ndarray],
    advantages: Sequence[np.ndarray],
    turns: Sequence[tuple[int, int]],
    mc_advantages: np.ndarray,
) -> dict[str, float]:
    """Spearman and sign agreement of `advantages` and of GRPO's (on the same turn rewards)
    with the Monte-Carlo advantages of `turns`; what is undefined is left out (a correlation
    with a constant side, a sign agreement where every Monte-Carlo advantage is 0)."""
    mc = np.asarray(mc_advantages, dtype=np.float64)
    grpo = grpo_advantages(episodes, turn_rewards)
    metrics: dict[str, float] = {}
    for name, values in (("mc", advantages), ("mc_grpo", grpo)):
        ours = np.array([values[e][t] for e, t in turns], dtype=np.float64)
        if np.ptp(ours) > 0 and np.ptp(mc) > 0:
            metrics[f"credit/{name}_spearman"] = spearman(ours, mc)
        agree = sign_agreement(ours, mc)
        if not np.isnan(agree):
            metrics[f"credit/{name}_sign_agreement"] = agree
    return metrics


def monte_carlo_check(
    run: Any, iteration: int, episodes: list[Episode], assigned: Any
) -> dict[str, float]:
    """The check on this iteration's batch (see the module docstring); {} when not due."""
    config = run.config
    if not mc_check_due(config, iteration):
        return {}
    rng = np.random.default_rng([config.run.seed, iteration, run.distributed.rank])
    turns = sample_turns(episodes, config.credit.mc_turns, rng)
    if len(turns) < 2:
        return {}
    generator = getattr(run.rollout_policy, "generator", None)
    state = generator.get_state() if generator is not None else None
    try:
        with run.precision.autocast():
            mc = monte_carlo_advantages(
                config.env.id,
                episodes,
                turns,
                run.rollout_policy,
                continuations=config.credit.mc_continuations,
                prompt_format=run.prompt_format,
                split=config.env.train_split,
                env_kwargs=run.train_kwargs,
                batch_size=run.local_batch_size,
            )
    finally:
        if state is not None:  # the next batch samples as if no check had run
            generator.set_state(state)
    return {
        **mc_agreement(episodes, assigned.turn_rewards, assigned.advantages, turns, mc.advantage),
        "credit/mc_turns": float(len(turns)),
        "credit/mc_stderr": float(np.mean(mc.stderr)),
        "credit/mc_env_steps": float(mc.env_steps),
    }
