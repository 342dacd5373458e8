"""Supervised warm start: maximise the policy's log-likelihood of expert actions.

Expert demonstrations come from the environment's own planner (`expert_action`) played
through the same rollout collector and prompts as RL, so the warm-started policy sees exactly
the prompts it will see later. The loss is the token mean of -log pi(action token) under the
same distribution the policy samples from (constrained to admissible actions if it is).
In ``conversation`` mode the demonstrations are tokenised as the policy's own conversations
(`_Demonstrator`), each turn after the whole episode so far.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from creditgym.agents.base import Generation
from creditgym.agents.hf import HFPolicy
from creditgym.agents.parsing import format_response
from creditgym.agents.scripted import ExpertPolicy
from creditgym.config import Config
from creditgym.envs import info as keys
from creditgym.train.losses import pad_sequences
from creditgym.train.rollout import PromptFormat, RolloutTask, collect_episodes, make_envs

__all__ = ["expert_demonstrations", "sft_warmup"]


class _Demonstrator:
    """The expert, whose actions in a conversation are tokenised as `policy` would sample them."""

    def __init__(self, policy: HFPolicy, prompt_format: PromptFormat) -> None:
        self.policy, self.prompt_format, self.expert = policy, prompt_format, ExpertPolicy()

    def generate(self, prompts: Sequence[str], *args: Any, **kwargs: Any) -> list[Generation]:
        return self.expert.generate(prompts, *args, **kwargs)

    def generate_chat(
        self,
        conversations: Sequence[Any],
        admissible_actions: Sequence[Sequence[str] | None] | None = None,
        envs: Sequence[Any] | None = None,
        **_: Any,
    ) -> list[Generation]:
        chat, policy = self.policy.chat_tokens(), self.policy
        moves = self.expert.generate([""] * len(conversations), admissible_actions, envs)
        out = []
        for conversation, move in zip(conversations, moves):
            if conversation.state is None:
                conversation.state = chat.start(conversation.messages[0])
            chat.sync(conversation.state, conversation.messages, policy.eos_token_id)
            ids = _response_ids(policy, self.prompt_format, move.text)
            conversation.state.pending = ids
            text = format_response(move.text) if self.prompt_format.require_tags else move.text
            prompt_ids = conversation.state.context()
            out.append(Generation(text, ids, [0.0] * len(ids), prompt_ids=prompt_ids))
        return out


def _response_ids(policy: HFPolicy, prompt_format: PromptFormat, action: str) -> list[int]:
    """The expert action as the policy's response: bare, tagged, or as think-act pieces."""
    if policy.think:
        return policy.encode_think_act(action)
    return policy.encode_response(format_response(action) if prompt_format.require_tags else action)


def expert_demonstrations(
    config: Config,
    prompt_format: PromptFormat,
    episodes: int,
    seed: int,
    policy: HFPolicy | None = None,
) -> list:
    """(prompt, action, admissible actions, prompt ids) of every turn of `episodes` expert
    episodes; the prompt ids (in ``conversation`` mode, with `policy`) are the conversation's
    as the policy tokenises it, else empty."""
    env_cfg = config.env
    envs = make_envs(env_cfg.id, min(64, episodes), split=env_cfg.train_split, **env_cfg.kwargs)
    rng = np.random.default_rng(seed)
    tasks = [
        RolloutTask(int(s), split=env_cfg.train_split)
        for s in rng.integers(0, 2**31 - 1, size=episodes)
    ]
    conversation = prompt_format.context == "conversation" and policy is not None
    played = collect_episodes(
        envs,
        _Demonstrator(policy, prompt_format) if conversation else ExpertPolicy(),
        tasks,
        env_id=env_cfg.id,
        prompt_format=prompt_format,
        record_cost_to_go=False,
    )
    for env in envs:
        env.close()
    return [
        (
            turn.prompt,
            turn.action,
            turn.info.get(keys.ADMISSIBLE_ACTIONS),
            turn.prompt_ids if conversation else [],
        )
        for episode in played
        if episode.success
        for turn in episode.turns
    ]


def sft_warmup(policy: HFPolicy, config: Config, prompt_format: PromptFormat) -> dict[str, float]:
    """Train `policy` in place on expert demonstrations; returns loss statistics."""
    sft = config.train.sft_warmup
    demos = expert_demonstrations(
        config, prompt_format, sft.episodes, seed=config.run.seed + 7919, policy=policy
    )
    if not demos:
        raise ValueError(
            f"the expert of {config.env.id} solved none of {sft.episodes} tasks; no demonstrations"
        )
    prompt_ids = [ids or policy.encode_prompt(prompt) for prompt, _, _, ids in demos]
    response_ids = [_response_ids(policy, prompt_format, action) for _, action, _, _ in demos]
    admissible = [list(actions) if actions is not None else None for _, _, actions, _ in demos]
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
