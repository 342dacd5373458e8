"""The trainer loop: rollout -> credit -> PPO update, with evaluation, checkpoints and resume.

`train` reads as CleanRL's loop does; each phase is a function of its own, in the order a run
executes them, sharing one `Run`:
  1. `setup`: seeds, credit helpers, policy, optimizer, environments, resume;
  2. evaluate: `before_training` (random agent, initial policy, optional supervised warm
     start), then `evaluate_if_due` after iterations;
  3. `collect`: grouped episodes from the training envs;
  4. `assign`: per-turn advantages from the configured credit (shapers + estimator), and
     every ``credit.mc_every`` iterations their agreement with the policy's own Monte-Carlo
     advantages (`creditgym.train.mc_check`);
  5. `update`: PPO-clip steps (early-stopped at `train.target_kl`), how far they moved the
     policy (`update_diagnostics`), weights synced to a separate rollout engine;
  6. `log`: the iteration's metrics row;
  7. `checkpoint_if_due`; and at the end `finish`: the plot and the summary.
The console display is `creditgym.train.display`.

Launched by `torchrun` with several processes, each rank rolls out its share of the groups and
the update sums gradients over ranks (`creditgym.train.distributed`); rank 0 alone evaluates,
logs and writes checkpoints.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from creditgym.agents.protocols import TrainablePolicy, WeightSyncedEngine
from creditgym.agents.scripted import RandomPolicy
from creditgym.config import Config, check_runnable, to_yaml, validate
from creditgym.credit import CreditBreakdown, agreement_with_grpo, assign_credit, credit_metrics
from creditgym.credit_setup.build import CreditRuntime, check_multiprocess, setup_credit
from creditgym.envs.registry import eval_splits
from creditgym.episode_log import EpisodeLog
from creditgym.measure.evaluate import SplitResult, evaluate
from creditgym.rollout.branching import (
    branch_metrics,
    branch_rollouts,
    check_branching,
    rollout_counts,
    trained_turns,
    zero_copied_prefixes,
)
from creditgym.rollout.collect import collect_episodes, group_tasks, make_envs, prompt_format_for
from creditgym.train.checkpoint import (
    TrainerState,
    check_resume_from,
    find_resume_checkpoint,
    latest_checkpoint,
    load_checkpoint,
    load_credit_state,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from creditgym.train.display import ProgressDisplay
from creditgym.train.distributed import Distributed, shard
from creditgym.train.distributed import setup as setup_distributed
from creditgym.train.mc_check import check_mc_check, mc_check_due, monte_carlo_check
from creditgym.train.metric_rows import eval_row, policy_tokens, results_from_row, rollout_metrics
from creditgym.train.models import (
    build_policy,
    build_rollout_policy,
    frozen_copy,
    gradient_checkpointing,
    training_precision,
)
from creditgym.train.precision import Precision
from creditgym.train.schedules import lr_factor, set_learning_rate
from creditgym.train.sft import sft_warmup
from creditgym.train.tracking import MetricsWriter, plot_learning_curve
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


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


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


@dataclass
class Run:
    """What the phases share: the run's objects (built once) and its progress (`state`)."""

    config: Config
    out: Path
    distributed: Distributed
    console: Any
    precision: Precision
    credit: CreditRuntime
    policy: TrainablePolicy
    rollout_policy: Any  # the policy itself, or a vLLM engine synced after each update
    optimizer: torch.optim.Optimizer
    task_rng: np.random.Generator
    update_rng: np.random.Generator
    state: TrainerState
    writer: MetricsWriter
    episode_log: EpisodeLog
    prompt_format: Any
    held_out_splits: list[str]
    train_kwargs: dict[str, Any] = field(default_factory=dict)
    train_envs: list[Any] = field(default_factory=list)
    reference: Any = None  # the frozen KL reference, when train.kl_coef > 0

    @property
    def checkpoint_dir(self) -> Path:
        return self.out / "checkpoints"

    @property
    def batch_size(self) -> int:
        return self.config.rollout.groups * self.config.rollout.group_size

    @property
    def local_batch_size(self) -> int:
        return self.batch_size // self.distributed.world_size  # this rank's envs


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


# ---- 1. set-up ---------------------------------------------------------------------------------


def setup(config: Config, console: Any = None) -> Run:
    """Seeds, credit helpers, policy, optimizer, metrics, environments; resume if a checkpoint
    is there. What the credit modules need comes first: a bad credit config fails before any
    model is built, and nothing there draws from the seeded random streams."""
    from rich.console import Console
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # per-save "Writing model shards" bars drown the run's own
    distributed = setup_distributed()
    _check_distributed(config, distributed)
    console = console or Console()
    if not distributed.is_main:  # rank 0 speaks for the run
        console = Console(quiet=True)
    out = Path(config.run.output_dir)
    if distributed.is_main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.yaml").write_text(to_yaml(config))
    if config.run.threads > 0:
        torch.set_num_threads(config.run.threads)
    credit = setup_credit(config, out, distributed.world_size)
    precision = training_precision(config)  # fp32 | bf16-mixed (fp32 masters, bf16 autocast) | bf16
    _seed_everything(config.run.seed)
    resume_from = find_resume_checkpoint(  # verified; a broken newest one falls back, warned
        out / "checkpoints", resume=config.run.resume, resume_from=config.run.resume_from
    )
    with distributed.main_first():
        policy = build_policy(config, init_from=resume_from / "model" if resume_from else None)
    distributed.broadcast_parameters(policy.model)
    run = Run(
        config=config,
        out=out,
        distributed=distributed,
        console=console,
        precision=precision,
        credit=credit,
        policy=policy,
        rollout_policy=build_rollout_policy(config, policy),
        optimizer=_optimizer(config, policy),
        task_rng=np.random.default_rng(config.run.seed),
        update_rng=np.random.default_rng(config.run.seed + 1),
        state=TrainerState(),
        writer=MetricsWriter(
            out,
            tensorboard=config.run.tensorboard,
            enabled=distributed.is_main,
            report_to=config.run.report_to,
            config=dataclasses.asdict(config),
        ),
        episode_log=_episode_log(config, out, distributed),
        prompt_format=prompt_format_for(config.policy),
        held_out_splits=config.env.eval_splits or eval_splits(config.env.id),
    )
    if resume_from is not None:
        _resume(run, resume_from)
    run.train_kwargs = _stage_kwargs(config, run.state.iteration + 1)
    run.train_envs = _training_envs(config, run.local_batch_size, run.train_kwargs)
    return run


def _episode_log(config: Config, out: Path, distributed: Distributed) -> EpisodeLog:
    """A sample of each iteration's episodes, for `creditgym view` (written by rank 0)."""
    return EpisodeLog(
        out,
        config.run.log_episodes,
        max_mb=config.run.log_episodes_max_mb,
        seed=config.run.seed,
        enabled=distributed.is_main,
    )


def _optimizer(config: Config, policy: Any) -> torch.optim.Optimizer:
    parameters = [p for p in policy.model.parameters() if p.requires_grad]
    return torch.optim.AdamW(parameters, lr=config.train.lr, weight_decay=config.train.weight_decay)


def _resume(run: Run, checkpoint: Path) -> None:
    """Continue exactly where `checkpoint` stopped: optimizer, RNG streams, metrics, credit."""
    run.state, rng = load_checkpoint(checkpoint, run.optimizer)
    set_rng_state(rng["global"], run.task_rng, run.policy.generator)
    run.update_rng.bit_generator.state = rng["update_rng"]
    run.writer.truncate_after(run.state.iteration)
    run.credit.load_state_dict(load_credit_state(checkpoint))
    run.console.print(f"[bold]resumed[/] from {checkpoint} (iteration {run.state.iteration})")


# ---- 2. evaluate -------------------------------------------------------------------------------


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
            _sync_weights(run.rollout_policy)
            run.console.print(f"supervised warm start: {stats}")
            run.writer.write({"iteration": 0, **stats}, 0)
            record_eval(run, evaluate_policy(run))
    initial = (
        results_from_row(run.state.evals[0], run.held_out_splits, config.eval.episodes)
        if run.state.evals
        else []
    )
    if config.train.kl_coef > 0:
        run.reference = _reference_policy(config, run.policy, run.out, save=distributed.is_main)
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


# ---- 3. collect --------------------------------------------------------------------------------


def collect(run: Run, iteration: int) -> list[Episode]:
    """`rollout.groups` tasks, each played `rollout.group_size` times from the same start state."""
    config, distributed = run.config, run.distributed
    if _stage_kwargs(config, iteration) != run.train_kwargs:  # next curriculum stage
        run.train_kwargs = _stage_kwargs(config, iteration)
        for env in run.train_envs:
            env.close()
        run.train_envs = _training_envs(config, run.local_batch_size, run.train_kwargs)
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
    _sync_weights(run.rollout_policy)
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


def budget_spent(run: Run) -> bool:
    """Whether `train.max_env_steps` or `train.max_policy_tokens` (0 = no limit) is reached:
    the loop stops after the iteration that reached it, evaluated and checkpointed as a last
    iteration is."""
    train_cfg, state = run.config.train, run.state
    return (0 < train_cfg.max_env_steps <= state.env_steps) or (
        0 < train_cfg.max_policy_tokens <= state.policy_tokens
    )


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


def _stage_kwargs(config: Config, iteration: int) -> dict[str, Any]:
    """Env kwargs for training iteration `iteration` (1-based) under the curriculum."""
    end = 0
    for stage in config.env.curriculum:
        end += stage.iterations
        if iteration <= end:
            return {**config.env.kwargs, **stage.kwargs}
    return dict(config.env.kwargs)


def _reference_policy(config: Config, policy: Any, out: Path, *, save: bool = True) -> Any:
    """The frozen policy the KL penalty pulls towards: the policy as it was when RL began
    (after any warm start), saved once so a resumed run gets the same reference."""
    saved = out / "reference_model"
    if (saved / "config.json").is_file():
        return frozen_copy(build_policy(config, init_from=saved))
    reference = frozen_copy(policy)
    if (
        save and not config.policy.lora.enabled
    ):  # LoRA starts at the base model: rebuilt exactly on resume
        reference.save_pretrained(saved)
    return reference


def _training_envs(config: Config, count: int, kwargs: dict[str, Any]) -> list[Any]:
    """The rollout envs: in this process, in `rollout.workers` Ray actors, or each in a worker
    process of its own (`rollout.isolation=process`)."""
    rollout = config.rollout
    if rollout.workers > 0:
        from creditgym.rollout.workers import connect

        connect(rollout.ray_address)
    isolation = None
    if rollout.isolation == "process":
        from creditgym.rollout.isolation import WorkerSettings

        isolation = WorkerSettings(
            step_timeout_s=rollout.env_step_timeout_s,
            start_timeout_s=rollout.env_start_timeout_s,
            max_rss_mb=rollout.env_max_rss_mb,
            steps_to_go=rollout.record_cost_to_go,
        )
    return make_envs(
        config.env.id,
        count,
        split=config.env.train_split,
        workers=rollout.workers,
        isolation=isolation,
        **kwargs,
    )


def _check_distributed(config: Config, distributed: Distributed) -> None:
    """Fail early, with the fix, on what multi-process training cannot do."""
    if not distributed.enabled:
        return
    if config.rollout.groups % distributed.world_size:
        raise ValueError(
            f"rollout.groups={config.rollout.groups} does not split over "
            f"{distributed.world_size} processes; use a multiple of {distributed.world_size} "
            "so every rank rolls out whole groups"
        )
    check_multiprocess(config, distributed.world_size)


def _sync_weights(rollout_policy: Any) -> None:
    """Give a separate rollout engine (vLLM) the trained weights; a no-op when it is the policy."""
    if isinstance(rollout_policy, WeightSyncedEngine):
        rollout_policy.sync_weights()


def _rank_seed(seed: int, iteration: int, rank: int) -> int:
    """The sampler seed of one rank in one iteration: the same whatever the run resumed from."""
    return int(np.random.SeedSequence([seed, iteration, rank]).generate_state(1)[0])
