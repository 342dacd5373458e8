"""Rollouts of PettingZoo `ParallelEnv`s: one policy for every agent, one `Episode` per agent.

Each step, the prompts of every live agent of every running env go to the policy in one
batched `generate` (the agent's name is in its task line, so one shared policy can tell the
roles apart); each env then steps with its agents' actions together. An agent's turns form
its own `Episode` (``agent_id`` set), with the team reward on its turns and ``group_id`` =
(the task's group, the agent), so group-relative credit compares an agent with itself across
the rollouts of one task, and per-turn credit (GiGPO's anchors, LaRe's factors) can tell the
agents' contributions apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from creditgym.agents.base import Policy
from creditgym.agents.parsing import parse_action
from creditgym.envs import info as keys
from creditgym.envs.oracle import cost_to_go
from creditgym.trajectory import Episode

__all__ = ["collect_multiagent_episodes"]


@dataclass
class _Seat:
    """One agent of one env, as scripted policies see it (`seat.unwrapped.expert_action()`)."""

    env: Any
    agent: str

    @property
    def unwrapped(self) -> _Seat:
        return self

    def expert_action(self) -> str:
        return self.env.expert_actions()[self.agent]


@dataclass
class _Agent:
    episode: Episode
    observation: str
    info: dict
    history: list[tuple[str, str]] = field(default_factory=list)


def _start(env: Any, env_id: str, task: Any, rollout: int) -> dict[str, _Agent]:
    observations, infos = env.reset(seed=task.seed)
    group = task.group_id if task.group_id is not None else task.seed
    return {
        agent: _Agent(
            Episode(
                env_id=env_id,
                task_id=f"{task.split}:{task.seed}" if task.split else str(task.seed),
                group_id=(group, agent),
                agent_id=agent,
                task_type=str(infos[agent].get(keys.TASK_TYPE, "")),
                # the agents of one rollout share its team return (LaRe decomposes it over them)
                metadata={
                    "seed": task.seed,
                    "split": task.split,
                    "task": infos[agent].get(keys.TASK, ""),
                    "team_rollout": rollout,
                },
            ),
            observations[agent],
            infos[agent],
        )
        for agent in env.agents
    }


def collect_multiagent_episodes(
    envs: Sequence[Any],
    policy: Policy,
    tasks: Sequence[Any],
    *,
    env_id: str = "",
    prompt_format: Any = None,
    max_turns: int = 0,
    record_cost_to_go: bool = True,
) -> list[Episode]:
    """Run one multi-agent episode per task, `len(envs)` at a time; return every agent's
    `Episode`, task by task (agents in the env's order). With `record_cost_to_go`, every
    agent's turn carries the team's oracle `steps_to_go()` before and after the step."""
    from creditgym.train.rollout import PromptFormat, new_turn

    prompt_format = prompt_format or PromptFormat()
    finished: list[list[Episode] | None] = [None] * len(tasks)
    pending = list(range(len(tasks)))[::-1]
    running: dict[int, tuple[int, dict[str, _Agent]]] = {}

    def fill_free_slots() -> None:
        for slot, env in enumerate(envs):
            if slot not in running and pending:
                index = pending.pop()
                running[slot] = (index, _start(env, env_id, tasks[index], rollout=index))

    fill_free_slots()
    while running:
        seats = [
            (slot, name, agent)
            for slot in sorted(running)
            for name, agent in running[slot][1].items()
            if name in envs[slot].agents  # PettingZoo envs may retire agents early
        ]
        admissible = [agent.info.get(keys.ADMISSIBLE_ACTIONS) for _, _, agent in seats]
        prompts = [
            prompt_format.prompt(agent.info, agent.observation, agent.history, actions)
            for (_, _, agent), actions in zip(seats, admissible)
        ]
        has_all = all(actions is not None for actions in admissible)
        generations = policy.generate(
            prompts,
            admissible_actions=admissible if has_all else None,
            envs=[_Seat(envs[slot], name) for slot, name, _ in seats],
        )
        actions_of: dict[int, dict[str, str]] = {}
        turns = []
        for (slot, name, agent), prompt, actions, generation in zip(
            seats, prompts, admissible, generations
        ):
            parsed = parse_action(generation.text, actions, require_tags=prompt_format.require_tags)
            actions_of.setdefault(slot, {})[name] = parsed.action
            turns.append(new_turn(agent.observation, agent.info, prompt, generation, parsed))
        results: dict[int, Any] = {}
        team_cost: dict[int, tuple[int | None, int | None]] = {}  # the team's oracle d(s), d(s')
        for slot, actions in actions_of.items():
            before = cost_to_go(envs[slot]) if record_cost_to_go else None
            try:
                results[slot] = envs[slot].step(actions)
            except Exception as error:  # a broken env fails its agents' episodes, not the run
                results[slot] = error
            team_cost[slot] = (before, cost_to_go(envs[slot]) if record_cost_to_go else None)
        for (slot, name, agent), turn in zip(seats, turns):
            if isinstance(results[slot], BaseException):
                agent.episode.turns.append(turn)
                agent.episode.failed = True
                agent.episode.metadata["error"] = f"{type(results[slot]).__name__}: {results[slot]}"
                continue
            observations, rewards, terminations, truncations, infos = results[slot]
            turn.reward = float(rewards[name])
            turn.next_info = infos[name]
            turn.next_observation = observations[name]
            turn.valid = turn.valid and bool(infos[name].get(keys.VALID, True))
            turn.cost_to_go, turn.next_cost_to_go = team_cost[slot]
            agent.episode.turns.append(turn)
            agent.history.append((agent.observation, turn.action))
            agent.observation, agent.info = observations[name], infos[name]
        for slot in list(actions_of):
            index, agents = running[slot]
            if isinstance(results[slot], BaseException):
                finished[index] = [agent.episode for agent in agents.values()]
                del running[slot]
                continue
            _, _, terminations, truncations, infos = results[slot]
            over_budget = (
                max_turns > 0 and len(next(iter(agents.values())).episode.turns) >= max_turns
            )
            if envs[slot].agents and not over_budget:
                continue
            for name, agent in agents.items():
                info = infos.get(name, agent.info)
                ended = bool(terminations.get(name, True))
                agent.episode.success = bool(info.get(keys.WON, False))
                agent.episode.terminated = ended
                agent.episode.truncated = bool(
                    truncations.get(name, False) or (over_budget and not ended)
                )
            finished[index] = [agent.episode for agent in agents.values()]
            del running[slot]
        fill_free_slots()
    return [episode for episodes in finished if episodes for episode in episodes]
