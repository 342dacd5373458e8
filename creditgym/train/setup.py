"""The trainer's set-up: the `Run` its phases share, and `setup`, which builds it once.

`setup` seeds the random streams, builds the credit helpers (`creditgym.credit_setup`), the
policy and its rollout engine (`creditgym.train.models`), the optimizer, the metrics writer,
the episode log and the training environments, and resumes from a checkpoint when one is there
(`creditgym.train.checkpoint`). Also here, for the phases that need them again: the curriculum
stage's env kwargs and envs (`stage_kwargs`, `training_envs`), the frozen KL reference
(`reference_policy`) and whether the run's budget is spent (`budget_spent`).
The loop itself is `creditgym.train.trainer`; the evaluation phase `creditgym.train.evaluation`.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from creditgym.agents.protocols import TrainablePolicy
from creditgym.config import Config, to_yaml
from creditgym.credit_setup.build import CreditRuntime, check_multiprocess, setup_credit
from creditgym.envs.registry import eval_splits
from creditgym.episode_log import EpisodeLog
from creditgym.rollout.collect import make_envs, prompt_format_for
from creditgym.train.checkpoint import (
    TrainerState,
    find_resume_checkpoint,
    load_checkpoint,
    load_credit_state,
    set_rng_state,
)
from creditgym.train.distributed import Distributed
from creditgym.train.distributed import setup as setup_distributed
from creditgym.train.models import (
    build_policy,
    build_rollout_policy,
    frozen_copy,
    training_precision,
)
from creditgym.train.precision import Precision
from creditgym.train.tracking import MetricsWriter

__all__ = ["Run", "setup", "budget_spent", "stage_kwargs", "training_envs", "reference_policy"]


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


def budget_spent(run: Run) -> bool:
    """Whether `train.max_env_steps` or `train.max_policy_tokens` (0 = no limit) is reached:
    the loop stops after the iteration that reached it, evaluated and checkpointed as a last
    iteration is."""
    train_cfg, state = run.config.train, run.state
    return (0 < train_cfg.max_env_steps <= state.env_steps) or (
        0 < train_cfg.max_policy_tokens <= state.policy_tokens
    )


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
    else:  # afresh: rows a run before this one left in the directory are not this run's
        run.writer.start_over()
    run.train_kwargs = stage_kwargs(config, run.state.iteration + 1)
    run.train_envs = training_envs(config, run.local_batch_size, run.train_kwargs)
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


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def stage_kwargs(config: Config, iteration: int) -> dict[str, Any]:
    """Env kwargs for training iteration `iteration` (1-based) under the curriculum."""
    end = 0
    for stage in config.env.curriculum:
        end += stage.iterations
        if iteration <= end:
            return {**config.env.kwargs, **stage.kwargs}
    return dict(config.env.kwargs)


def reference_policy(config: Config, policy: Any, out: Path, *, save: bool = True) -> Any:
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


def training_envs(config: Config, count: int, kwargs: dict[str, Any]) -> list[Any]:
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
