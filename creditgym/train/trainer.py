"""The trainer loop: rollout -> credit -> PPO update, with evaluation, checkpoints and resume.

`train` reads as CleanRL's loop does; each phase is a function of its own, in the order a run
executes them, sharing one `Run`:
  1. `setup` (`creditgym.train.setup`, with the `Run`): seeds, credit helpers, policy,
     optimizer, environments, resume;
  2. evaluate (`creditgym.train.evaluation`): `before_training` (random agent, initial policy,
     optional supervised warm start), then `evaluate_if_due` after iterations;
  3. `collect`: grouped episodes from the training envs;
  4. `assign`: per-turn advantages from the configured credit (shapers + estimator), and
     every ``credit.mc_every`` iterations their agreement with the policy's own Monte-Carlo
     advantages (`creditgym.train.mc_check`);
  5. `update`: PPO-clip steps (early-stopped at `train.target_kl`), how far they moved the
     policy (`update_diagnostics`), weights synced to a separate rollout engine;
  6. `log`: the iteration's metrics row;
  7. `checkpoint_if_due`; and at the end `finish`: the plot and the summary.
Phases 3 to 7 are here. The console display is `creditgym.train.display`.

Launched by `torchrun` with several processes, each rank rolls out its share of the groups and
the update sums gradients over ranks (`creditgym.train.distributed`); rank 0 alone evaluates,
logs and writes checkpoints.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from creditgym.config import Config, check_runnable, validate
from creditgym.credit import CreditBreakdown, agreement_with_grpo, assign_credit, credit_metrics
from creditgym.measure.evaluate import SplitResult
from creditgym.rollout.branching import (
    branch_metrics,
    branch_rollouts,
    check_branching,
    rollout_counts,
    trained_turns,
    zero_copied_prefixes,
)
from creditgym.rollout.collect import collect_episodes, group_tasks
from creditgym.train.checkpoint import (
    check_resume_from,
    latest_checkpoint,
    rng_state,
    save_checkpoint,
)
from creditgym.train.display import ProgressDisplay
from creditgym.train.distributed import shard
from creditgym.train.evaluation import before_training, evaluate_if_due
from creditgym.train.mc_check import check_mc_check, mc_check_due, monte_carlo_check
from creditgym.train.metric_rows import policy_tokens, results_from_row, rollout_metrics
from creditgym.train.models import gradient_checkpointing, sync_weights
from creditgym.train.schedules import lr_factor, set_learning_rate
from creditgym.train.setup import (
    Run,
    budget_spent,
    setup,
    stage_kwargs,
    training_envs,
)
from creditgym.train.tracking import plot_learning_curve
from creditgym.train.update import (
    flatten_sequences,
    flatten_turns,
    ppo_update,
    reference_logprobs,
)
from creditgym.train.update_diagnostics import update_diagnostics
from creditgym.trajectory import Episode

__all__ = ["train", "TrainResult", "Run"]


@dataclass
class TrainResult:
    """What a finished run reports."""

    output_dir: Path
    checkpoint: Path | None  # None on the ranks but 0 of a multi-process run
    plot: Path
    initial: list[SplitResult]
    final: list[SplitResult]
    random_baseline: list[SplitResult]
    iterations: int
    env_steps: int
    seconds: float
    after_warm_start: list[SplitResult] = field(default_factory=list)  # empty without one


def train(config: Config, *, console: Any = None) -> TrainResult:
    """Train `config.policy` on `config.env` with the configured credit; see module docstring.

    Raises `ConfigError` before anything runs if the config is out of its schema's ranges or
    cannot run (unknown env, env kwargs its constructor lacks, an output path that is a file).
    """
    validate(config)  # load_config did this for YAML configs; a Config built in code too
    check_runnable(config)
    check_resume_from(config)
    check_branching(config)  # an env that cannot clone fails now, not after the first rollout
    check_mc_check(config)
    started = time.perf_counter()
    run = setup(config, console)
    random_baseline, initial = before_training(run)
    with ProgressDisplay(
        run.console,
        config.train.iterations,
        run.state.iteration,
        run.held_out_splits,
        enabled=config.run.progress,
    ) as display:
        while run.state.iteration < config.train.iterations and not budget_spent(run):
            iteration = run.state.iteration + 1
            timings: dict[str, float] = {}
            with _timed(timings, "rollout"):
                episodes = collect(run, iteration)
            with _timed(timings, "credit"):
                assigned = assign(run, episodes)
            run.episode_log.log(iteration, episodes, assigned)  # rank 0's episodes, whole groups
            if mc_check_due(config, iteration):  # before the update: the batch's own policy
                with _timed(timings, "mc_check"):
                    checks = monte_carlo_check(run, iteration, episodes, assigned)
            else:
                checks = {}
            with _timed(timings, "update"):
                update_stats = update(run, episodes, assigned.advantages, assigned.token_advantages)
            row = log(run, iteration, episodes, assigned, {**update_stats, **checks}, timings)
            evaluate_if_due(run, iteration)
            checkpoint_if_due(run, iteration)
            display.update(iteration, row, run.state.evals)
    return finish(run, random_baseline, initial, started)


# ---- 1. set-up: `creditgym.train.setup` (`setup` builds the shared `Run`) ------------------------
# ---- 2. evaluate: `creditgym.train.evaluation` (`before_training`, `evaluate_if_due`) ------------


# ---- 3. collect --------------------------------------------------------------------------------


def collect(run: Run, iteration: int) -> list[Episode]:
    """`rollout.groups` tasks, each played `rollout.group_size` times from the same start state."""
    config, distributed = run.config, run.distributed
    if stage_kwargs(config, iteration) != run.train_kwargs:  # next curriculum stage
        run.train_kwargs = stage_kwargs(config, iteration)
        for env in run.train_envs:
            env.close()
        run.train_envs = training_envs(config, run.local_batch_size, run.train_kwargs)
    seeds = run.task_rng.integers(0, 2**31 - 1, size=config.rollout.groups).tolist()
    if distributed.enabled:  # whole groups per rank; a sampler stream per (iteration, rank)
        seeds = shard(seeds, distributed)
        run.policy.generator.manual_seed(_rank_seed(config.run.seed, iteration, distributed.rank))
    tasks = group_tasks(seeds, config.rollout.group_size, split=config.env.train_split)
    with run.precision.autocast():
        episodes = collect_episodes(
            run.train_envs,
            run.rollout_policy,
            tasks,
            env_id=config.env.id,
            prompt_format=run.prompt_format,
            max_turns=config.rollout.max_turns,
            answer_prefix=run.credit.answer_prefix,
            record_cost_to_go=config.rollout.record_cost_to_go,
        )
        episodes, _ = branch_rollouts(  # rollout.branch: continuations from cloned states
            episodes,
            run.rollout_policy,
            config.rollout.branch,
            env_id=config.env.id,
            prompt_format=run.prompt_format,
            split=config.env.train_split,
            env_kwargs=run.train_kwargs,
            max_turns=config.rollout.max_turns,
            record_cost_to_go=config.rollout.record_cost_to_go,
        )
    return episodes


# ---- 4. assign credit --------------------------------------------------------------------------


def assign(run: Run, episodes: list[Episode]) -> CreditBreakdown:
    """Per-turn advantages from the configured shapers and estimator."""
    context = run.credit.context(scorer=run.policy, iteration=run.state.iteration)
    with run.precision.autocast():  # shapers may score with the policy
        assigned = assign_credit(
            episodes,
            shapers=run.config.credit.shapers,
            estimator=run.config.credit.estimator,
            context=context,
        )
    # a branch continuation's copied prefix is its parent's turns, trained there: 0 here
    assigned.advantages = zero_copied_prefixes(episodes, assigned.advantages)
    if assigned.token_advantages is not None:  # and their tokens' (ppo's level: bilevel)
        assigned.token_advantages = [
            [np.zeros_like(row) if k < episode.copied_turns else row for k, row in enumerate(rows)]
            for episode, rows in zip(episodes, assigned.token_advantages)
        ]
    return assigned


# ---- 5. update ---------------------------------------------------------------------------------


def update(
    run: Run,
    episodes: list[Episode],
    advantages: list[np.ndarray],
    token_advantages: list[list[np.ndarray]] | None = None,
) -> dict[str, float]:
    """PPO-clip over every action token at this iteration's learning rate, then the rollout
    engine gets the new weights. `token_advantages` (per episode, one array per turn), when
    the estimator gave them, weight each token instead of its turn's advantage."""
    train_cfg = run.config.train
    iteration = run.state.iteration + 1
    lr = train_cfg.lr * lr_factor(
        train_cfg.lr_schedule, iteration, train_cfg.iterations, train_cfg.warmup_iterations
    )
    set_learning_rate(run.optimizer, lr)
    # a conversation episode is read as one sequence, a window turn alone
    flatten = flatten_sequences if run.prompt_format.context == "conversation" else flatten_turns
    kept, kept_advantages = trained_turns(episodes, advantages)  # each sampled turn once
    kept_tokens = None
    if token_advantages is not None:
        kept_tokens = [rows[e.copied_turns :] for e, rows in zip(episodes, token_advantages)]
    turns = flatten(kept, kept_advantages, kept_tokens)
    with run.precision.autocast():
        if run.reference is not None:
            reference_logprobs(run.reference, turns, train_cfg.micro_batch_turns)
    with run.precision.autocast(), gradient_checkpointing(run.policy.model):
        stats = ppo_update(
            run.policy,
            run.optimizer,
            turns,
            ppo_epochs=train_cfg.ppo_epochs,
            mini_batches=train_cfg.mini_batches,
            micro_batch_turns=train_cfg.micro_batch_turns,
            clip_eps=train_cfg.clip_eps,
            kl_coef=train_cfg.kl_coef,
            entropy_coef=train_cfg.entropy_coef,
            max_grad_norm=train_cfg.max_grad_norm,
            skip_zero_advantage=train_cfg.skip_zero_advantage,
            loss_agg=train_cfg.loss_agg,
            count_forced_tokens=train_cfg.count_forced_tokens,
            loss_norm_tokens=train_cfg.loss_norm_tokens or run.config.policy.max_new_tokens,
            target_kl=train_cfg.target_kl,
            rng=run.update_rng,
            distributed=run.distributed,
        )
    if train_cfg.update_diagnostics:
        with run.precision.autocast():
            stats |= update_diagnostics(
                run.policy, turns, train_cfg.micro_batch_turns, run.distributed
            )
    sync_weights(run.rollout_policy)
    return {**stats, "update/lr": lr}


# ---- 6. log ------------------------------------------------------------------------------------


def log(
    run: Run,
    iteration: int,
    episodes: list[Episode],
    assigned: CreditBreakdown,
    update_stats: dict[str, float],
    timings: dict[str, float],
) -> dict[str, Any]:
    """Count the iteration done and write its metrics row (of the global batch)."""
    advantages, turn_rewards = assigned.advantages, assigned.turn_rewards
    if run.distributed.enabled:
        advantages = run.distributed.gather(advantages)
        turn_rewards = run.distributed.gather(turn_rewards)
        episodes = run.distributed.gather(episodes)
    run.state.iteration = iteration
    run.state.env_steps += rollout_counts(episodes).env_steps  # branch continuations included
    run.state.policy_tokens += policy_tokens(episodes)
    row = {
        "iteration": iteration,
        "env_steps": run.state.env_steps,
        "policy_tokens": run.state.policy_tokens,
        **rollout_metrics(episodes, every_reason=run.config.rollout.isolation != "none"),
        **(branch_metrics(episodes) if run.config.rollout.branch.mode != "none" else {}),
        **credit_metrics(episodes, advantages=advantages),
        **agreement_with_grpo(episodes, turn_rewards, advantages),
        **update_stats,
        **{f"time/{phase}": seconds for phase, seconds in timings.items()},
        **run.credit.metrics(),
    }
    run.state.history.append(row)
    run.writer.write(row, iteration)
    return row


# ---- 7. checkpoint -----------------------------------------------------------------------------


def checkpoint_if_due(run: Run, iteration: int) -> None:
    """Every `run.save_every` iterations, and after the last one (or the one that spent the
    budget)."""
    last = iteration == run.config.train.iterations or budget_spent(run)
    if iteration % run.config.run.save_every == 0 or last:
        save(run)


def save(run: Run) -> Path | None:
    """A checkpoint of everything resume needs (rank 0 writes it; None on other ranks)."""
    if not run.distributed.is_main:
        return None
    rng = {
        "global": rng_state(run.task_rng, run.policy.generator),
        "update_rng": run.update_rng.bit_generator.state,
    }
    return save_checkpoint(
        run.checkpoint_dir,
        model=run.policy.model,
        tokenizer=run.policy.tokenizer,
        optimizer=run.optimizer,
        state=run.state,
        rng=rng,
        credit_state=run.credit.state_dict(),
    )


# ---- the end -----------------------------------------------------------------------------------


def finish(
    run: Run, random_baseline: list[SplitResult], initial: list[SplitResult], started: float
) -> TrainResult:
    """The learning-curve plot, the last checkpoint, closed envs and writers; the summary."""
    last = latest_checkpoint(run.checkpoint_dir) or save(run)
    plot = run.out / "learning_curve.png"
    if run.distributed.is_main:
        plot_learning_curve(run.state.history, run.state.evals, plot, title=run.config.env.id)
    run.writer.close()
    run.distributed.barrier()  # no rank leaves before rank 0 has written the last checkpoint
    for env in run.train_envs:
        env.close()
    state, splits, episodes = run.state, run.held_out_splits, run.config.eval.episodes
    # with a warm start, the second evaluation (still at iteration 0) is the one after it
    warm = run.config.train.sft_warmup.episodes > 0 and len(state.evals) > 2
    return TrainResult(
        output_dir=run.out,
        checkpoint=last,
        plot=plot,
        initial=initial,
        final=results_from_row(state.evals[-1], splits, episodes) if state.evals else [],
        random_baseline=random_baseline,
        iterations=state.iteration,
        env_steps=state.env_steps,
        seconds=time.perf_counter() - started,
        after_warm_start=results_from_row(state.evals[1], splits, episodes) if warm else [],
    )


@contextmanager
def _timed(timings: dict[str, float], phase: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    timings[phase] = time.perf_counter() - start


def _rank_seed(seed: int, iteration: int, rank: int) -> int:
    """The sampler seed of one rank in one iteration: the same whatever the run resumed from."""
    return int(np.random.SeedSequence([seed, iteration, rank]).generate_state(1)[0])
