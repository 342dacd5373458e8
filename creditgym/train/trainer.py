"""The trainer loop: rollout -> credit -> PPO update, with evaluation, checkpoints and resume.

Read top to bottom, in the order a run executes (CleanRL style):
  1. set-up: seeds, policy, optimizer, environments, resume from the latest checkpoint;
  2. before training: held-out evaluation of the initial policy and of the random agent,
     then the optional supervised warm start on expert demonstrations;
  3. each iteration: collect grouped episodes, turn them into per-turn advantages with the
     configured credit (shapers + estimator), PPO-update, log, evaluate, checkpoint;
  4. the end: final evaluation, learning-curve plot, a summary.

Launched by `torchrun` with several processes, each rank rolls out its share of the groups and
the update sums gradients over ranks (`creditgym.train.distributed`); rank 0 alone evaluates,
logs and writes checkpoints.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from creditgym.agents.scripted import RandomPolicy
from creditgym.config import Config, to_yaml
from creditgym.credit import assign_credit, credit_metrics
from creditgym.envs.registry import eval_splits
from creditgym.train.checkpoint import (
    TrainerState,
    find_resume_checkpoint,
    latest_checkpoint,
    load_checkpoint,
    load_credit_state,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from creditgym.train.credit_setup import check_multiprocess, setup_credit
from creditgym.train.distributed import Distributed, shard
from creditgym.train.distributed import setup as setup_distributed
from creditgym.train.episode_log import EpisodeLog
from creditgym.train.evaluate import SplitResult, evaluate
from creditgym.train.models import (
    build_policy,
    build_rollout_policy,
    frozen_copy,
    training_precision,
)
from creditgym.train.rollout import PromptFormat, collect_episodes, group_tasks, make_envs
from creditgym.train.sft import sft_warmup
from creditgym.train.tracking import MetricsWriter, plot_learning_curve
from creditgym.train.update import flatten_turns, ppo_update, reference_logprobs
from creditgym.trajectory import Episode

__all__ = ["train", "TrainResult"]


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


def _rollout_metrics(episodes: list[Episode]) -> dict[str, float]:
    usable = [ep for ep in episodes if not ep.failed]
    turns = [t for ep in usable for t in ep.turns]
    return {
        "rollout/success": float(np.mean([ep.success for ep in usable])) if usable else 0.0,
        "rollout/return": float(np.mean([ep.episode_return for ep in usable])) if usable else 0.0,
        "rollout/turns": float(np.mean([len(ep) for ep in usable])) if usable else 0.0,
        "rollout/invalid_rate": float(np.mean([not t.valid for t in turns])) if turns else 0.0,
        "rollout/failed_episodes": float(len(episodes) - len(usable)),
        "rollout/response_tokens": float(sum(len(t.response_ids) for t in turns)),
    }


def _eval_row(results: list[SplitResult], state: TrainerState) -> dict[str, Any]:
    row: dict[str, Any] = {"iteration": state.iteration, "env_steps": state.env_steps}
    for result in results:
        row[f"eval/{result.split}/success"] = result.success
        row[f"eval/{result.split}/return"] = result.mean_return
        row[f"eval/{result.split}/steps"] = result.mean_steps
    return row


def train(config: Config, *, console: Any = None) -> TrainResult:
    """Train `config.policy` on `config.env` with the configured credit; see module docstring."""
    from rich.console import Console

    console = console or Console()
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # per-save "Writing model shards" bars drown the run's own
    started = time.perf_counter()
    distributed = setup_distributed()
    _check_distributed(config, distributed)
    if not distributed.is_main:  # rank 0 speaks for the run
        console = Console(quiet=True)
    out = Path(config.run.output_dir)
    if distributed.is_main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.yaml").write_text(to_yaml(config))
    if config.run.threads > 0:
        torch.set_num_threads(config.run.threads)

    # ---- 1. set-up ---------------------------------------------------------------------------
    # What the credit shapers need comes first: a bad credit config fails before any model is
    # built, and nothing here draws from the seeded random streams.
    credit = setup_credit(config, out, distributed.world_size)
    precision = training_precision(config)  # fp32 | bf16-mixed (fp32 masters, bf16 autocast) | bf16
    _seed_everything(config.run.seed)
    checkpoint_dir = out / "checkpoints"
    resume_from = find_resume_checkpoint(  # verified; a broken newest one falls back, warned
        checkpoint_dir, resume=config.run.resume, resume_from=config.run.resume_from
    )
    with distributed.main_first():
        policy = build_policy(config, init_from=resume_from / "model" if resume_from else None)
    distributed.broadcast_parameters(policy.model)
    rollout_policy = build_rollout_policy(config, policy)  # policy itself, or a vLLM engine
    parameters = [p for p in policy.model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        parameters, lr=config.train.lr, weight_decay=config.train.weight_decay
    )
    task_rng = np.random.default_rng(config.run.seed)
    update_rng = np.random.default_rng(config.run.seed + 1)
    state = TrainerState()
    writer = MetricsWriter(out, tensorboard=config.run.tensorboard, enabled=distributed.is_main)
    episode_log = EpisodeLog(  # a sample of each iteration's episodes for `creditgym view`
        out,
        config.run.log_episodes,
        max_mb=config.run.log_episodes_max_mb,
        seed=config.run.seed,
        enabled=distributed.is_main,
    )
    if resume_from is not None:
        state, rng = load_checkpoint(resume_from, optimizer)
        set_rng_state(rng["global"], task_rng, getattr(policy, "generator", None))
        update_rng.bit_generator.state = rng["update_rng"]
        writer.truncate_after(state.iteration)
        credit.load_state_dict(load_credit_state(resume_from))
        console.print(f"[bold]resumed[/] from {resume_from} (iteration {state.iteration})")

    env_cfg, roll_cfg = config.env, config.rollout
    prompt_format = PromptFormat(
        template=config.policy.template,
        history_length=config.policy.history_length,
        require_tags=not config.policy.constrained,
    )
    held_out_splits = env_cfg.eval_splits or eval_splits(env_cfg.id)
    batch_size = roll_cfg.groups * roll_cfg.group_size
    local_batch_size = batch_size // distributed.world_size  # this rank's envs
    train_kwargs = _stage_kwargs(config, state.iteration + 1)
    train_envs = _training_envs(config, local_batch_size, train_kwargs)

    def run_eval() -> list[SplitResult]:
        if not distributed.is_main:
            return []
        with _evaluation_mode(rollout_policy, config.eval.temperature), precision.autocast():
            return evaluate_on_held_out(rollout_policy, "policy", prompt_format=prompt_format)

    def evaluate_on_held_out(agent: Any, name: str, **options: Any) -> list[SplitResult]:
        return evaluate(
            agent,
            env_cfg.id,
            held_out_splits,
            config.eval.episodes,
            agent=name,
            env_kwargs=env_cfg.kwargs,
            batch_size=max(batch_size, 16),
            max_turns=roll_cfg.max_turns,
            **options,
        )

    def record_eval(results: list[SplitResult]) -> None:
        if not distributed.is_main:  # only rank 0 evaluates
            return
        row = _eval_row(results, state)
        state.evals.append(row)
        writer.write(row, state.iteration)

    def checkpoint() -> Path | None:
        if not distributed.is_main:
            return None
        rng = {
            "global": rng_state(task_rng, getattr(policy, "generator", None)),
            "update_rng": update_rng.bit_generator.state,
        }
        credit_state = credit.state_dict()
        return save_checkpoint(
            checkpoint_dir,
            model=policy.model,
            tokenizer=policy.tokenizer,
            optimizer=optimizer,
            state=state,
            rng=rng,
            credit_state=credit_state,
        )

    # ---- 2. before training: baselines, warm start ---------------------------------------------
    random_baseline = (
        evaluate_on_held_out(RandomPolicy(seed=config.run.seed), "random")
        if distributed.is_main
        else []
    )
    if state.iteration == 0 and not state.evals:
        record_eval(run_eval())
        if config.train.sft_warmup.episodes > 0:
            with precision.autocast():  # the same on every rank (same seed)
                stats = sft_warmup(policy, config, prompt_format)
            distributed.broadcast_parameters(policy.model)
            _sync_weights(rollout_policy)
            console.print(f"supervised warm start: {stats}")
            writer.write({"iteration": 0, **stats}, 0)
            record_eval(run_eval())
    initial = (
        _results_from_row(state.evals[0], held_out_splits, config.eval.episodes)
        if state.evals
        else []
    )
    reference = (
        _reference_policy(config, policy, out, save=distributed.is_main)
        if config.train.kl_coef > 0
        else None
    )

    # ---- 3. the loop ---------------------------------------------------------------------------
    from rich.progress import (
        BarColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    progress = Progress(
        TextColumn("[bold]iter {task.completed}/{task.total}"),
        BarColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not config.run.progress,
    )
    with progress:
        bar = progress.add_task(
            "train", total=config.train.iterations, completed=state.iteration, status=""
        )
        while state.iteration < config.train.iterations:
            iteration = state.iteration + 1
            if _stage_kwargs(config, iteration) != train_kwargs:  # next curriculum stage
                train_kwargs = _stage_kwargs(config, iteration)
                for env in train_envs:
                    env.close()
                train_envs = _training_envs(config, local_batch_size, train_kwargs)
            # rollout: `groups` tasks, each played `group_size` times from the same start state
            t0 = time.perf_counter()
            seeds = task_rng.integers(0, 2**31 - 1, size=roll_cfg.groups).tolist()
            if distributed.enabled:  # whole groups per rank; a sampler stream per (iteration, rank)
                seeds = shard(seeds, distributed)
                policy.generator.manual_seed(
                    _rank_seed(config.run.seed, iteration, distributed.rank)
                )
            tasks = group_tasks(seeds, roll_cfg.group_size, split=env_cfg.train_split)
            with precision.autocast():
                episodes = collect_episodes(
                    train_envs,
                    rollout_policy,
                    tasks,
                    env_id=env_cfg.id,
                    prompt_format=prompt_format,
                    max_turns=roll_cfg.max_turns,
                    answer_prefix=credit.answer_prefix,
                    record_cost_to_go=roll_cfg.record_cost_to_go,
                )
            t_rollout = time.perf_counter() - t0

            # credit: per-turn advantages from the configured shapers and estimator
            t0 = time.perf_counter()
            context = credit.context(scorer=policy, iteration=state.iteration)
            with precision.autocast():  # shapers may score with the policy
                assigned = assign_credit(
                    episodes,
                    shapers=config.credit.shapers,
                    estimator=config.credit.estimator,
                    context=context,
                )
            advantages = assigned.advantages
            t_credit = time.perf_counter() - t0
            episode_log.log(iteration, episodes, assigned)  # rank 0's episodes, whole groups

            # update: PPO-clip over every action token
            t0 = time.perf_counter()
            turns = flatten_turns(episodes, advantages)
            with precision.autocast():
                if reference is not None:
                    reference_logprobs(reference, turns, config.train.micro_batch_turns)
                update_stats = ppo_update(
                    policy,
                    optimizer,
                    turns,
                    ppo_epochs=config.train.ppo_epochs,
                    mini_batches=config.train.mini_batches,
                    micro_batch_turns=config.train.micro_batch_turns,
                    clip_eps=config.train.clip_eps,
                    kl_coef=config.train.kl_coef,
                    entropy_coef=config.train.entropy_coef,
                    max_grad_norm=config.train.max_grad_norm,
                    skip_zero_advantage=config.train.skip_zero_advantage,
                    rng=update_rng,
                    distributed=distributed,
                )
            _sync_weights(rollout_policy)
            t_update = time.perf_counter() - t0
            if distributed.enabled:  # metrics of the global batch
                advantages = distributed.gather(advantages)
                episodes = distributed.gather(episodes)

            state.iteration = iteration
            state.env_steps += sum(len(ep) for ep in episodes)
            row = {
                "iteration": iteration,
                "env_steps": state.env_steps,
                **_rollout_metrics(episodes),
                **credit_metrics(episodes, advantages=advantages),
                **update_stats,
                "time/rollout": t_rollout,
                "time/credit": t_credit,
                "time/update": t_update,
                **credit.metrics(),
            }
            state.history.append(row)
            writer.write(row, iteration)

            if (
                config.eval.every > 0
                and iteration % config.eval.every == 0
                and iteration != config.train.iterations
            ):
                record_eval(run_eval())
            if iteration == config.train.iterations:
                record_eval(run_eval())
            if iteration % config.run.save_every == 0 or iteration == config.train.iterations:
                checkpoint()
            held_out = state.evals[-1] if state.evals else {}
            held_out_text = "  ".join(
                f"{split} {held_out.get(f'eval/{split}/success', 0):.0%}"
                for split in held_out_splits
            )
            progress.update(
                bar,
                completed=iteration,
                status=f"train success {row['rollout/success']:.0%}  held-out: {held_out_text}",
            )

    # ---- 4. the end --------------------------------------------------------------------------
    last = latest_checkpoint(checkpoint_dir) or checkpoint()
    plot = out / "learning_curve.png"
    if distributed.is_main:
        plot_learning_curve(state.history, state.evals, plot, title=config.env.id)
    writer.close()
    distributed.barrier()  # no rank leaves before rank 0 has written the last checkpoint
    for env in train_envs:
        env.close()
    return TrainResult(
        output_dir=out,
        checkpoint=last,
        plot=plot,
        initial=initial,
        final=_results_from_row(state.evals[-1], held_out_splits, config.eval.episodes)
        if state.evals
        else [],
        random_baseline=random_baseline,
        iterations=state.iteration,
        env_steps=state.env_steps,
        seconds=time.perf_counter() - started,
    )


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
    """The rollout envs: in this process, or in `rollout.workers` Ray actors."""
    if config.rollout.workers > 0:
        from creditgym.train.workers import connect

        connect(config.rollout.ray_address)
    return make_envs(
        config.env.id, count, split=config.env.train_split, workers=config.rollout.workers, **kwargs
    )


def _check_distributed(config: Config, distributed: Distributed) -> None:
    """Fail early, with the fix, on what multi-process training cannot do."""
    if not distributed.enabled:
        return
    if config.rollout.groups % distributed.world_size:
        raise ValueError(
            f"rollout.groups={config.rollout.groups} does not split over {distributed.world_size} processes; "
            f"use a multiple of {distributed.world_size} so every rank rolls out whole groups"
        )
    check_multiprocess(config, distributed.world_size)


def _sync_weights(rollout_policy: Any) -> None:
    """Give a separate rollout engine (vLLM) the trained weights; a no-op when it is the policy."""
    sync = getattr(rollout_policy, "sync_weights", None)
    if sync is not None:
        sync()


def _rank_seed(seed: int, iteration: int, rank: int) -> int:
    """The sampler seed of one rank in one iteration: the same whatever the run resumed from."""
    return int(np.random.SeedSequence([seed, iteration, rank]).generate_state(1)[0])


def _results_from_row(row: dict[str, Any], splits: list[str], episodes: int) -> list[SplitResult]:
    return [
        SplitResult(
            agent=f"policy @ iteration {row['iteration']}",
            split=split,
            episodes=episodes,
            success=row.get(f"eval/{split}/success", 0.0),
            mean_return=row.get(f"eval/{split}/return", 0.0),
            mean_steps=row.get(f"eval/{split}/steps", 0.0),
        )
        for split in splits
    ]
