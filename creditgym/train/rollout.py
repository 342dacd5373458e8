"""Rollout collection: B environments stepped in lockstep, one batched `generate` per step.

Every step, the prompts of all still-running environments go to the policy in one call, so a
model policy pays one batched forward pass per turn instead of one per environment. Episodes
that start from the same seed share a `group_id`, which is what group-relative credit (GRPO,
GiGPO) compares within.
"""

from __future__ import annotations

import inspect
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym

from creditgym.agents.base import Policy
from creditgym.agents.parsing import parse_action
from creditgym.agents.prompts import build_prompt
from creditgym.envs import info as keys
from creditgym.envs.oracle import cost_to_go
from creditgym.envs.registry import eval_splits, make
from creditgym.trajectory import Episode, Turn

__all__ = ["PromptFormat", "Task", "make_envs", "collect_episodes", "group_tasks", "new_turn"]

@dataclass(frozen=True)
class Task:
    """One episode to run: the reset seed fixes the start state; `group_id` ties a group."""

    seed: int
    group_id: Any = None
    split: str = ""


def group_tasks(seeds: Sequence[int], group_size: int, split: str = "") -> list[Task]:
    """`group_size` copies of each seed, the copies of one seed forming one group."""
    return [
        Task(seed, group_id=(split, seed), split=split) for seed in seeds for _ in range(group_size)
    ]


def make_envs(
    env_id: str, count: int, split: str | None = None, *, workers: int = 0, **kwargs: Any
) -> list[gym.Env]:
    """`count` instances of a registered env, on `split` when the env family has splits.

    With `workers` > 0 the envs live in that many Ray actors (`creditgym.train.workers`); the
    split is passed when the env class declares held-out splits (``metadata["eval_splits"]``).
    """
    if workers > 0:
        from creditgym.train.workers import remote_envs

        if split and eval_splits(env_id) != ["all"]:
            kwargs["split"] = split
        return remote_envs(env_id, count, workers, **kwargs)
    if split:
        try:
            return [make(env_id, split=split, **kwargs) for _ in range(count)]
        except TypeError as error:
            if "split" not in str(error):
                raise
    return [make(env_id, **kwargs) for _ in range(count)]


#CORE#

def new_turn(observation: str, info: dict, prompt: str, generation: Any, parsed: Any) -> Turn:
    """The `Turn` of one decision, before the env's answer (reward, next info) is filled in."""
    return Turn(
        observation=observation,
        action=parsed.action,
        info=info,
        prompt=prompt,
        response=generation.text,
        prompt_ids=list(generation.prompt_ids),
        response_ids=list(generation.token_ids),
        logprobs=list(generation.logprobs),
        valid=parsed.valid and generation.error is None,
    )


def _answers_to_score(
    states: Sequence[_Running], answer_prefix: str | None, policy: Policy
) -> list[tuple[str, str] | None] | None:
    """Per running env, ``(answer_prefix, ground-truth answer)`` to teacher-force, if asked and supported."""
    if (
        answer_prefix is None
        or "teacher_force" not in inspect.signature(policy.generate).parameters
    ):
        return None
    answers = [state.info.get(keys.ANSWER) for state in states]
    return [(answer_prefix, a) if isinstance(a, str) and a else None for a in answers]


def _step_all(envs: Sequence[Any], actions: Sequence[str]) -> list[tuple | BaseException]:
    """Step every env; envs in Ray workers (`step_async`) are all dispatched before any is awaited.

    An env that raises gives its exception in place of the step's result.
    """
    started = []
    for env, action in zip(envs, actions):
        try:
            started.append(env.step_async(action) if hasattr(env, "step_async") else None)
        except Exception as error:
            started.append(error)
    outcomes: list[tuple | BaseException] = []
    for env, action, handle in zip(envs, actions, started):
        try:
            if isinstance(handle, BaseException):
                raise handle
            outcomes.append(env.step_wait(handle) if handle is not None else env.step(action))
        except Exception as error:
            outcomes.append(error)
    return outcomes


def _describe(error: BaseException) -> str:
    trace = "".join(traceback.format_exception(type(error), error, error.__traceback__, limit=3))
    return f"{type(error).__name__}: {error}\n{trace}"


def _failed_episode(env_id: str, task: Task, error: BaseException) -> Episode:
    return Episode(
        env_id=env_id,
        task_id=str(task.seed),
        group_id=task.group_id if task.group_id is not None else task.seed,
        failed=True,
        metadata={"seed": task.seed, "split": task.split, "error": _describe(error)},
    )
