"""Supervised warm start: maximise the policy's log-likelihood of expert actions.

Expert demonstrations come from the environment's own planner (`expert_action`) played
through the same rollout collector and prompts as RL, so the warm-started policy sees exactly
the prompts it will see later. The loss is the token mean of -log pi(action token) under the
same distribution the policy samples from (constrained to admissible actions if it is).
"""

from __future__ import annotations

import numpy as np
import torch

from creditgym.agents.hf import HFPolicy
from creditgym.agents.scripted import ExpertPolicy
from creditgym.config import Config
from creditgym.envs import info as keys
from creditgym.train.losses import pad_sequences
from creditgym.train.rollout import PromptFormat, Task, collect_episodes, make_envs

__all__ = ["expert_demonstrations", "sft_warmup"]


def expert_demonstrations(
    config: Config, prompt_format: PromptFormat, episodes: int, seed: int
) -> list:
    """(prompt, action, admissible actions) of every turn of `episodes` expert episodes."""
    env_cfg = config.env
    envs = make_envs(env_cfg.id, min(64, episodes), split=env_cfg.train_split, **env_cfg.kwargs)
    rng = np.random.default_rng(seed)
    tasks = [
        Task(int(s), split=env_cfg.train_split) for s in rng.integers(0, 2**31 - 1, size=episodes)
    ]
    played = collect_episodes(
        envs, ExpertPolicy(), tasks, env_id=env_cfg.id, prompt_format=prompt_format
    )
    for env in envs:
        env.close()
    return [
        (turn.prompt, turn.action, turn.info.get(keys.ADMISSIBLE_ACTIONS))
        for episode in played
        if episode.success
        for turn in episode.turns
    ]


def sft_warmup(policy: HFPolicy, config: Config, prompt_format: PromptFormat) -> dict[str, float]:
    """Train `policy` in place on expert demonstrations; returns loss statistics."""
    sft = config.train.sft_warmup
    demos = expert_demonstrations(config, prompt_format, sft.episodes, seed=config.run.seed + 7919)
    if not demos:
        raise ValueError(
            f"the expert of {config.env.id} solved none of {sft.episodes} tasks; no demonstrations"
        )
    wrap = (
        (lambda a: f"<think></think><action>{a}</action>")
        if prompt_format.require_tags
        else (lambda a: a)
    )
    prompt_ids = [policy.encode_prompt(prompt) for prompt, _, _ in demos]
    response_ids = [policy.encode_response(wrap(action)) for _, action, _ in demos]
    admissible = [list(actions) if actions is not None else None for _, _, actions in demos]
    use_constraint = policy.constrained and all(a is not None for a in admissible)

    parameters = [p for p in policy.model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=sft.lr)
    rng = np.random.default_rng(config.run.seed)
    losses = []
    for _ in range(sft.epochs):
        order = rng.permutation(len(demos))
        for start in range(0, len(order), sft.batch_size):
            batch = order[start : start + sft.batch_size]
            logprobs, _ = policy.score(
                [prompt_ids[i] for i in batch],
                [response_ids[i] for i in batch],
                [admissible[i] for i in batch] if use_constraint else None,
            )
            values, mask = pad_sequences(logprobs)
            loss = -(values * mask).sum() / mask.sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(parameters, config.train.max_grad_norm)
            optimizer.step()
            losses.append(float(loss.detach()))
    return {
        "sft/demonstration_turns": float(len(demos)),
        "sft/loss_first": losses[0],
        "sft/loss_last": float(np.mean(losses[-5:])),
    }
