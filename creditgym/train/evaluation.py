"""The trainer's evaluation phase: held-out success before training and every few iterations.

`before_training` scores the random agent and the initial policy on the held-out splits, runs
the optional supervised warm start (`creditgym.train.sft`) and scores the policy again after
it, and builds the frozen KL reference; `evaluate_if_due` scores the policy every ``eval.every``
iterations and after the last one. Rank 0 alone evaluates; each evaluation is a row of the
metrics and of `run.state.evals`. The loop that calls these is `creditgym.train.trainer`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from creditgym.agents.scripted import RandomPolicy
from creditgym.measure.evaluate import SplitResult, evaluate
from creditgym.train.metric_rows import eval_row, results_from_row
from creditgym.train.models import gradient_checkpointing, sync_weights
from creditgym.train.setup import Run, budget_spent, reference_policy
from creditgym.train.sft import sft_warmup

__all__ = ["before_training", "evaluate_if_due", "evaluate_policy", "record_eval"]


def before_training(run: Run) -> tuple[list[SplitResult], list[SplitResult]]:
    """Held-out success of the random agent and of the initial policy, the optional supervised
    warm start, and the KL reference; returns (random baseline, initial policy's results)."""
    config, distributed = run.config, run.distributed
    random_baseline = (
        _evaluate_on_held_out(run, RandomPolicy(seed=config.run.seed), "random")
        if distributed.is_main
        else []
    )
    if run.state.iteration == 0 and not run.state.evals:
        record_eval(run, evaluate_policy(run))
        if config.train.sft_warmup.episodes > 0:
            # the same on every rank (same seed)
            with run.precision.autocast(), gradient_checkpointing(run.policy.model):
                stats = sft_warmup(
                    run.policy,
                    config,
                    run.prompt_format,
                    hand_over_to=run.optimizer if config.train.carry_sft_optimizer else None,
                )
            distributed.broadcast_parameters(run.policy.model)
            sync_weights(run.rollout_policy)
            run.console.print(f"supervised warm start: {stats}")
            run.writer.write({"iteration": 0, **stats}, 0)
            record_eval(run, evaluate_policy(run))
    initial = (
        results_from_row(run.state.evals[0], run.held_out_splits, config.eval.episodes)
        if run.state.evals
        else []
    )
    if config.train.kl_coef > 0:
        run.reference = reference_policy(config, run.policy, run.out, save=distributed.is_main)
    return random_baseline, initial


def evaluate_policy(run: Run) -> list[SplitResult]:
    """The policy on the held-out splits at the eval temperature (rank 0 only)."""
    if not run.distributed.is_main:
        return []
    with (
        _evaluation_mode(run.rollout_policy, run.config.eval.temperature),
        run.precision.autocast(),
    ):
        return _evaluate_on_held_out(
            run, run.rollout_policy, "policy", prompt_format=run.prompt_format
        )


def _evaluate_on_held_out(run: Run, agent: Any, name: str, **options: Any) -> list[SplitResult]:
    config = run.config
    return evaluate(
        agent,
        config.env.id,
        run.held_out_splits,
        config.eval.episodes,
        agent=name,
        env_kwargs=config.env.kwargs,
        batch_size=max(run.batch_size, 16),
        max_turns=config.rollout.max_turns,
        **options,
    )


def record_eval(run: Run, results: list[SplitResult]) -> None:
    if not run.distributed.is_main:  # only rank 0 evaluates
        return
    row = eval_row(results, run.state)
    run.state.evals.append(row)
    run.writer.write(row, run.state.iteration)


def evaluate_if_due(run: Run, iteration: int) -> None:
    """Every `eval.every` iterations, and after the last one (or the one that spent the budget)."""
    every, last = run.config.eval.every, run.config.train.iterations
    if iteration == last or budget_spent(run) or (every > 0 and iteration % every == 0):
        record_eval(run, evaluate_policy(run))


@contextmanager
def _evaluation_mode(policy: Any, temperature: float) -> Iterator[None]:
    """Sample at the eval temperature without consuming the training sampler's randomness."""
    saved_temperature = policy.temperature
    generator = getattr(policy, "generator", None)
    saved_state = generator.get_state() if generator is not None else None
    policy.temperature = temperature
    try:
        yield
    finally:
        policy.temperature = saved_temperature
        if generator is not None:
            generator.set_state(saved_state)
