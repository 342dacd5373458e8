"""Supervised warm start: maximise the policy's log-likelihood of expert actions.

Expert demonstrations come from the environment's own planner (`expert_action`) played
through the same rollout collector and prompts as RL, so the warm-started policy sees exactly
the prompts it will see later. The loss is the token mean of -log pi(action token) under the
same distribution the policy samples from (constrained to admissible actions if it is).
In ``conversation`` mode the demonstrations are tokenised as the policy's own conversations
(`_Demonstrator`), and an episode's turns are scored in one pass over the conversation
(`_sequences`), as the RL update scores them.

With ``sft_warmup.noise`` > 0 the demonstrations are DART's (Laskey et al., 2017): each step
plays a random admissible action with that probability, and every turn is labelled with the
expert's action in the state it was taken from. A policy trained only on the expert's own
path has never seen a state off it (holding the wrong object, one receptacle too far); the
noisy ones show it how to get back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from creditgym.agents.base import Generation
from creditgym.agents.hf.policy import HFPolicy
from creditgym.agents.parsing import format_response
from creditgym.agents.scripted import ExpertPolicy
from creditgym.config import Config
from creditgym.envs import info as keys
from creditgym.rollout.collect import PromptFormat, RolloutTask, collect_episodes, make_envs
from creditgym.train.units import group_turns

__all__ = ["expert_demonstrations", "sft_warmup"]


class _Demonstrator:
    """The env's expert as a policy; in a conversation its actions are tokenised as `policy`
    would sample them.

    With `noise` > 0 a random admissible action is played instead with that probability. The
    expert's own choice in every state is kept in `labels`, keyed by what the policy will be
    trained on there (the prompt text, or in a conversation the context ids).
    """

    def __init__(
        self, policy: HFPolicy | None, prompt_format: PromptFormat, noise: float, seed: int
    ) -> None:
        self.policy, self.prompt_format, self.expert = policy, prompt_format, ExpertPolicy()
        self.noise, self.rng = noise, np.random.default_rng(seed)
        self.labels: dict[Any, str] = {}

    def _play(
        self,
        states: Sequence[Any],
        admissible_actions: Sequence[Sequence[str] | None] | None,
        envs: Sequence[Any] | None,
    ) -> list[Generation]:
        """The expert's move for each state (prompt or context ids), noised as configured."""
        moves = self.expert.generate([""] * len(states), admissible_actions, envs)
        for row, (state, move) in enumerate(zip(states, moves)):
            self.labels[state] = move.text
            actions = admissible_actions[row] if admissible_actions is not None else None
            if actions and self.noise > 0 and self.rng.random() < self.noise:
                move.text = str(actions[self.rng.integers(len(actions))])
        return moves

    def generate(
        self,
        prompts: Sequence[str],
        admissible_actions: Sequence[Sequence[str] | None] | None = None,
        envs: Sequence[Any] | None = None,
        **_: Any,
    ) -> list[Generation]:
        return self._play(prompts, admissible_actions, envs)

    def generate_chat(
        self,
        conversations: Sequence[Any],
        admissible_actions: Sequence[Sequence[str] | None] | None = None,
        envs: Sequence[Any] | None = None,
        **_: Any,
    ) -> list[Generation]:
        if self.policy is None:  # no tokeniser: the demonstrations are the transcripts' text
            prompts = [conversation.transcript() for conversation in conversations]
            return self._play(prompts, admissible_actions, envs)
        chat, policy = self.policy.chat_tokens(), self.policy
        for conversation in conversations:
            if conversation.state is None:
                conversation.state = chat.start(conversation.messages[0])
            chat.sync(conversation.state, conversation.messages, policy.eos_token_id)
        contexts = [tuple(c.state.context()) for c in conversations]
        moves = self._play(contexts, admissible_actions, envs)
        out = []
        for conversation, context, move in zip(conversations, contexts, moves):
            ids = _response_ids(policy, self.prompt_format, move.text)
            conversation.state.pending = ids
            text = format_response(move.text) if self.prompt_format.require_tags else move.text
            out.append(Generation(text, ids, [0.0] * len(ids), prompt_ids=list(context)))
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
    noise: float = 0.0,
) -> list:
    """(prompt, expert action, admissible actions, prompt ids) of every turn of `episodes`
    expert episodes; the prompt ids (in ``conversation`` mode, with `policy`) are the
    conversation's as the policy tokenises it, else empty.

    Without `noise` only won episodes count. With it, each step plays a random admissible
    action with probability `noise` and every turn of every episode is kept, labelled with the
    action the expert would have taken there (DART).
    """
    env_cfg = config.env
    envs = make_envs(env_cfg.id, min(64, episodes), split=env_cfg.train_split, **env_cfg.kwargs)
    rng = np.random.default_rng(seed)
    tasks = [
        RolloutTask(int(s), split=env_cfg.train_split)
        for s in rng.integers(0, 2**31 - 1, size=episodes)
    ]
    conversation = prompt_format.context == "conversation" and policy is not None
    demonstrator = _Demonstrator(policy, prompt_format, noise, seed)
    played = collect_episodes(
        envs,
        demonstrator,
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
            demonstrator.labels[tuple(turn.prompt_ids) if conversation else turn.prompt],
            turn.info.get(keys.ADMISSIBLE_ACTIONS),
            turn.prompt_ids if conversation else [],
        )
        for episode in played
        if episode.success or noise > 0
        for turn in episode.turns
    ]


def _hand_over_state(source: torch.optim.Optimizer, target: torch.optim.Optimizer) -> None:
    """Copy `source`'s per-parameter state into `target` (the same parameter objects)."""
    for group in target.param_groups:
        for parameter in group["params"]:
            if parameter in source.state:
                target.state[parameter] = {
                    name: value.clone() if torch.is_tensor(value) else value
                    for name, value in source.state[parameter].items()
                }


@dataclass
class _Sequence:
    """Demonstration turns read in one pass: `ids` holds each turn's prompt and labelled
    response, `spans` where the responses lie, `admissible` each turn's actions."""

    ids: list[int]
    spans: list[tuple[int, int]] = field(default_factory=list)
    admissible: list[list[str] | None] = field(default_factory=list)


def _span_count(sequence: _Sequence) -> int:
    return len(sequence.spans)


def _sequences(
    prompt_ids: Sequence[list[int]],
    response_ids: Sequence[list[int]],
    admissible: Sequence[list[str] | None],
) -> list[_Sequence]:
    """Consecutive turns as few sequences as their prompts allow: a turn joins the previous
    turn's sequence when its prompt extends that turn's prompt and label, as a conversation's
    does wherever the expert's move was the one played. A conversation's warm start then reads
    each episode about once instead of once per turn; window prompts stay one turn each."""
    sequences: list[_Sequence] = []
    for prompt, response, actions in zip(prompt_ids, response_ids, admissible):
        if not sequences or list(prompt[: len(sequences[-1].ids)]) != sequences[-1].ids:
            sequences.append(_Sequence([]))
        sequence = sequences[-1]
        sequence.ids = [*prompt, *response]
        sequence.spans.append((len(prompt), len(sequence.ids)))
        sequence.admissible.append(actions)
    return sequences


def sft_warmup(
    policy: HFPolicy,
    config: Config,
    prompt_format: PromptFormat,
    *,
    hand_over_to: torch.optim.Optimizer | None = None,
) -> dict[str, float]:
    """Train `policy` in place on expert demonstrations; returns loss statistics.

    With `hand_over_to` (RL's AdamW, over the same parameters) the warm start's optimizer state
    (first and second moments, step counts) is copied into it, so RL's first steps are scaled
    by gradient statistics already gathered instead of a fresh state's (``train.
    carry_sft_optimizer``); its learning rate and weight decay stay RL's own."""
    sft = config.train.sft_warmup
    demos = expert_demonstrations(
        config,
        prompt_format,
        sft.episodes,
        seed=config.run.seed + 7919,
        policy=policy,
        noise=sft.noise,
    )
    if not demos:
        raise ValueError(
            f"the expert of {config.env.id} solved none of {sft.episodes} tasks; no demonstrations"
        )
    prompt_ids = [ids or policy.encode_prompt(prompt) for prompt, _, _, ids in demos]
    response_ids = [_response_ids(policy, prompt_format, action) for _, action, _, _ in demos]
    admissible = [list(actions) if actions is not None else None for _, _, actions, _ in demos]
    use_constraint = policy.constrained and all(a is not None for a in admissible)
    sequences = _sequences(prompt_ids, response_ids, admissible)

    parameters = [p for p in policy.model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=sft.lr)
    rng = np.random.default_rng(config.run.seed)
    losses = []
    for _ in range(sft.epochs):
        shuffled = [sequences[i] for i in rng.permutation(len(sequences))]
        for batch in group_turns(shuffled, sft.batch_size, _span_count):
            # one optimizer step per batch, in length-grouped micro-batches that bound memory
            tokens = sum(end - start for unit in batch for start, end in unit.spans)
            optimizer.zero_grad(set_to_none=True)
            loss_sum = 0.0
            by_length = sorted(batch, key=lambda unit: len(unit.ids))
            for micro in group_turns(by_length, config.train.micro_batch_turns, _span_count):
                logprobs, _ = policy.score_spans(
                    [unit.ids for unit in micro],
                    [unit.spans for unit in micro],
                    [unit.admissible for unit in micro] if use_constraint else None,
                )
                loss = -sum(span.sum() for row in logprobs for span in row) / tokens
                loss.backward()
                loss_sum += float(loss.detach())
            torch.nn.utils.clip_grad_norm_(parameters, config.train.max_grad_norm)
            optimizer.step()
            losses.append(loss_sum)
    if hand_over_to is not None:
        _hand_over_state(optimizer, hand_over_to)
    return {
        "sft/demonstration_turns": float(len(demos)),
        "sft/loss_first": losses[0],
        "sft/loss_last": float(np.mean(losses[-5:])),
    }
