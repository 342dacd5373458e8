"""Model-free baselines: the env's own expert and a uniform random agent.

Both ignore the prompt and answer with a bare action (parse with ``require_tags=False``).
They have no token probabilities, so `logprobs` raises `NotImplementedError`.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import numpy as np

from creditgym.agents.base import Generation

__all__ = ["ExpertPolicy", "RandomPolicy"]


def _no_logprobs(name: str) -> NotImplementedError:
    return NotImplementedError(
        f"{name} is scripted and has no token probabilities; score continuations with a model "
        "policy (HFPolicy) instead"
    )


class ExpertPolicy:
    """Asks each env's scripted solver for its next action (``env.unwrapped.expert_action()``).

    With `epsilon` > 0 it is an epsilon-noisy expert (``expert:eps=0.5``): each turn, with
    probability `epsilon`, it picks uniformly among the admissible actions instead (seeded), a
    behaviour policy that makes both optimal and wasted steps, for measuring credit.
    """

    require_tags = False

    def __init__(self, epsilon: float = 0.0, seed: int = 0) -> None:
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"expert: eps={epsilon} must be a probability in [0, 1]")
        self.epsilon = epsilon
        self.seed = seed
        self.rng = random.Random(seed)

    def generate(
        self,
        prompts: Sequence[str],
        admissible_actions: Sequence[Sequence[str] | None] | None = None,
        envs: Sequence[Any] | None = None,
    ) -> list[Generation]:
        if envs is None or len(envs) != len(prompts):
            raise ValueError(
                f"ExpertPolicy needs the env of every prompt (envs=[...], one per prompt); got "
                f"{'none' if envs is None else len(envs)} for {len(prompts)} prompts"
            )
        generations = []
        for index, env in enumerate(envs):
            if self.epsilon > 0 and self.rng.random() < self.epsilon:
                actions = admissible_actions[index] if admissible_actions is not None else None
                if actions:  # free-text envs (no admissible list) always get the expert's move
                    generations.append(Generation(text=str(self.rng.choice(list(actions)))))
                    continue
            expert = getattr(getattr(env, "unwrapped", env), "expert_action", None)
            if not callable(expert):
                raise TypeError(
                    f"{type(getattr(env, 'unwrapped', env)).__name__} has no expert_action() "
                    "method, so the 'expert' policy cannot play it; choose an env family that "
                    "ships an expert"
                )
            generations.append(Generation(text=str(expert())))
        return generations

    def logprobs(self, prompts: Sequence[str], continuations: Sequence[str]) -> list[np.ndarray]:
        raise _no_logprobs("ExpertPolicy")

    def __repr__(self) -> str:
        return (
            f"ExpertPolicy(epsilon={self.epsilon}, seed={self.seed})"
            if self.epsilon
            else "ExpertPolicy()"
        )


class RandomPolicy:
    """Picks uniformly among each prompt's admissible actions; seeded."""

    require_tags = False

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.rng = random.Random(seed)

    def generate(
        self,
        prompts: Sequence[str],
        admissible_actions: Sequence[Sequence[str] | None] | None = None,
        envs: Sequence[Any] | None = None,
    ) -> list[Generation]:
        if admissible_actions is None or len(admissible_actions) != len(prompts):
            raise ValueError(
                "RandomPolicy picks among the admissible actions, so it needs admissible_actions "
                "(one non-empty list per prompt)"
            )
        generations = []
        for actions in admissible_actions:
            if not actions:
                generations.append(
                    Generation(text="", error="no admissible actions to choose from")
                )
            else:
                generations.append(Generation(text=str(self.rng.choice(list(actions)))))
        return generations

    def logprobs(self, prompts: Sequence[str], continuations: Sequence[str]) -> list[np.ndarray]:
        raise _no_logprobs("RandomPolicy")

    def __repr__(self) -> str:
        return f"RandomPolicy(seed={self.seed})"
