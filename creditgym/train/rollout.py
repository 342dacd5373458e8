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

__all__ = ["PromptFormat", "Task", "make_envs", "collect_episodes", "group_tasks"]


@dataclass(frozen=True)
class PromptFormat:
    """How observations become prompts and responses become actions."""

    template: str = "compact"
    history_length: int = 2
    require_tags: bool = False  # False for constrained decoding and scripted policies: bare actions

    def prompt(
        self,
        info: dict,
        observation: str,
        history: Sequence[tuple[str, str]],
        actions: Sequence[str] | None,
    ) -> str:
        """The prompt for one decision: the task from `info`, the observation, recent history."""
        return build_prompt(
            info.get(keys.TASK, ""),
            observation,
            history,
            actions,
            history_length=self.history_length,
            template=self.template,
        )


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


@dataclass
class _Running:
    """Book-keeping for one environment while its episode runs."""

    env: gym.Env
    episode: Episode
    observation: str
    info: dict
    history: list[tuple[str, str]]
    cost_to_go: int | None = None  # the env's oracle steps_to_go() of the current state


def _start(env: gym.Env, env_id: str, task: Task) -> _Running:
    observation, info = env.reset(seed=task.seed)
    episode = Episode(
        env_id=env_id,
        task_id=f"{task.split}:{task.seed}" if task.split else str(task.seed),
        group_id=task.group_id if task.group_id is not None else task.seed,
        task_type=str(info.get(keys.TASK_TYPE, "")),
        metadata={"seed": task.seed, "split": task.split, "task": info.get(keys.TASK, "")},
    )
    return _Running(env, episode, observation, info, [])


def collect_episodes(
    envs: Sequence[gym.Env],
    policy: Policy,
    tasks: Sequence[Task],
    *,
    env_id: str = "",
    prompt_format: PromptFormat = PromptFormat(),
    max_turns: int = 0,
    answer_prefix: str | None = None,
    record_cost_to_go: bool = True,
) -> list[Episode]:
    """Run one episode per task, `len(envs)` at a time, and return them in task order.

    Multi-agent (PettingZoo) envs give one `Episode` per agent per task, task by task.

    Args:
        envs: the environment instances to step (B of them); tasks beyond B wait for a free one.
        policy: any `Policy`; it gets one `generate` call per step for all running envs.
        tasks: what to run; equal seeds give equal start states.
        env_id: recorded in each `Episode`.
        prompt_format: prompt template, history length and the action format.
        max_turns: cut episodes after this many turns (0 = only the env's own budget).
        answer_prefix: for IGPO: a policy whose `generate` takes ``teacher_force`` scores
            ``answer_prefix + info["answer"]`` after every prompt from the prompt's KV cache
            (`Turn.teacher_forced`), which spares the `info_gain` shaper a second prefill.
        record_cost_to_go: ask the env's oracle `steps_to_go()` before and after every turn
            (`Turn.cost_to_go`, `Turn.next_cost_to_go`, hence `Turn.progress`); it costs about
            one more env step per step (nothing for envs without the hook).
    """
    if envs and hasattr(
        envs[0], "possible_agents"
    ):  # PettingZoo ParallelEnvs: one Episode per agent
        from creditgym.train.multiagent import collect_multiagent_episodes

        return collect_multiagent_episodes(
            envs,
            policy,
            tasks,
            env_id=env_id,
            prompt_format=prompt_format,
            max_turns=max_turns,
            record_cost_to_go=record_cost_to_go,
        )
    episodes: list[Episode | None] = [None] * len(tasks)
    pending = list(range(len(tasks)))[::-1]
    running: dict[int, tuple[int, _Running]] = {}  # env slot -> (task index, state)

    def fill_free_slots() -> None:
        for slot, env in enumerate(envs):
            while slot not in running and pending:
                index = pending.pop()
                try:
                    running[slot] = (index, _start(env, env_id, tasks[index]))
                    if record_cost_to_go:
                        running[slot][1].cost_to_go = cost_to_go(env)
                except Exception as error:  # a broken env must not take the run down
                    episodes[index] = _failed_episode(env_id, tasks[index], error)

    fill_free_slots()
    while running:
        slots = sorted(running)
        states = [running[slot][1] for slot in slots]
        admissible = [state.info.get(keys.ADMISSIBLE_ACTIONS) for state in states]
        prompts = [
            prompt_format.prompt(state.info, state.observation, state.history, actions)
            for state, actions in zip(states, admissible)
        ]
        has_all_admissible = all(actions is not None for actions in admissible)
        forced = _answers_to_score(states, answer_prefix, policy)
        generations = policy.generate(
            prompts,
            admissible_actions=admissible if has_all_admissible else None,
            envs=[s.env for s in states],
            **({"teacher_force": forced} if forced else {}),
        )
        parsed_actions = [
            parse_action(generation.text, actions, require_tags=prompt_format.require_tags)
            for actions, generation in zip(admissible, generations)
        ]
        outcomes = _step_all(
            [state.env for state in states], [parsed.action for parsed in parsed_actions]
        )
        for slot, state, prompt, parsed, generation, outcome, pair in zip(
            slots,
            states,
            prompts,
            parsed_actions,
            generations,
            outcomes,
            forced or [None] * len(states),
        ):
            turn = new_turn(state.observation, state.info, prompt, generation, parsed)
            if pair is not None and generation.teacher_forced_logprobs is not None:
                turn.teacher_forced = (*pair, generation.teacher_forced_logprobs)
            episode = state.episode
            if isinstance(
                outcome, BaseException
            ):  # the env (or its worker) broke: the episode fails
                episode.turns.append(turn)
                episode.failed = True
                episode.metadata["error"] = _describe(outcome)
                episodes[running.pop(slot)[0]] = episode
                continue
            observation, reward, terminated, truncated, info = outcome
            turn.reward = float(reward)
            turn.next_info = info
            turn.next_observation = observation
            turn.valid = turn.valid and bool(info.get(keys.VALID, True))
            if record_cost_to_go:
                turn.cost_to_go, state.cost_to_go = state.cost_to_go, cost_to_go(state.env)
                turn.next_cost_to_go = state.cost_to_go
            episode.turns.append(turn)
            state.history.append((state.observation, parsed.action))
            state.observation, state.info = observation, info
            over_budget = max_turns > 0 and len(episode.turns) >= max_turns
            if terminated or truncated or over_budget:
                episode.success = bool(info.get(keys.WON, False))
                episode.terminated = bool(terminated)
                episode.truncated = bool(truncated or (over_budget and not terminated))
                if "score" in info:  # task-specific graded score (WebShop), kept for eval tables
                    episode.metadata["score"] = float(info["score"])
                episodes[running.pop(slot)[0]] = episode
        fill_free_slots()
    return [episode for episode in episodes if episode is not None]


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
