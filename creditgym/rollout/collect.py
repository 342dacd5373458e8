"""Rollout collection: B environments stepped in lockstep, one batched `generate` per step.

Every step, the prompts of all still-running environments go to the policy in one call, so a
model policy pays one batched forward pass per turn instead of one per environment. Episodes
that start from the same seed share a `group_id`, which is what group-relative credit (GRPO,
GiGPO) compares within.

One loop plays single-agent Gymnasium envs and multi-agent PettingZoo ``ParallelEnv``s alike:
a single-agent env is one agent, a multi-agent env gives one `Episode` per agent (see
`creditgym.rollout.seats`). So every feature (a reset or step that raises, Ray env workers,
isolated env processes, IGPO's answer scoring from the KV cache, both context modes) works for
both.

An env whose reset or step raises (or whose worker breaks: `creditgym.rollout.failures`) fails
the episode it was playing: ``failed`` is set, ``metadata["error"]`` says what happened and
``metadata["failure"]`` the reason; the other envs play on and the env's slot takes the next task.

Context modes (`PromptFormat.context`): ``window`` builds a fresh prompt of the task and the
last k turns per decision; ``conversation`` keeps each agent's episode as a `Conversation`
(system message, then a user message per observation and an assistant message per response)
that a policy with ``generate_chat`` (`HFPolicy`) extends turn by turn from its KV cache.
"""

from __future__ import annotations

import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym

from creditgym.agents.base import Policy
from creditgym.agents.parsing import ParsedAction, parse_action
from creditgym.agents.prompts import Conversation, PromptFormat
from creditgym.agents.protocols import ChatPolicy, can_teacher_force
from creditgym.envs import info as keys
from creditgym.envs.oracle import cost_to_go
from creditgym.envs.registry import eval_splits, make
from creditgym.rollout.failures import EnvFailure, failure_reason
from creditgym.rollout.seats import Seat, is_multiagent, live_agents
from creditgym.trajectory import Episode, Turn

__all__ = [
    "PromptFormat",
    "RolloutTask",
    "collect_episodes",
    "group_tasks",
    "make_envs",
    "new_turn",
    "prompt_format_for",
]


@dataclass(frozen=True)
class RolloutTask:
    """One episode to run: the reset seed fixes the start state; `group_id` ties a group."""

    seed: int
    group_id: Any = None
    split: str = ""


def group_tasks(seeds: Sequence[int], group_size: int, split: str = "") -> list[RolloutTask]:
    """`group_size` copies of each seed, the copies of one seed forming one group."""
    return [
        RolloutTask(seed, group_id=(split, seed), split=split)
        for seed in seeds
        for _ in range(group_size)
    ]


def prompt_format_for(policy: Any) -> PromptFormat:
    """The `PromptFormat` of a `PolicyConfig` (``config.policy``)."""
    return PromptFormat(
        template=policy.template,
        history_length=policy.history_length,
        # constrained decoding writes the bare action, unless it is a tagged think-act response
        require_tags=not policy.constrained or policy.think,
        context=policy.context,
        think=policy.think,
        invalid_penalty=policy.invalid_penalty,
    )


def make_envs(
    env_id: str,
    count: int,
    split: str | None = None,
    *,
    workers: int = 0,
    isolation: Any = None,
    **kwargs: Any,
) -> list[gym.Env]:
    """`count` instances of a registered env, on `split` when the env family has splits.

    With `workers` > 0 the envs live in that many Ray actors (`creditgym.rollout.workers`); with
    `isolation` (a `creditgym.rollout.isolation.WorkerSettings`) each lives in a worker process
    of its own. For both, the split is passed when the env class names held-out splits
    (``metadata["eval_splits"]``).
    """
    if (workers > 0 or isolation is not None) and split and eval_splits(env_id) != ["all"]:
        kwargs["split"] = split
    if workers > 0:
        from creditgym.rollout.workers import remote_envs

        return remote_envs(env_id, count, workers, **kwargs)
    if isolation is not None:
        from creditgym.rollout.isolation import isolated_envs

        return isolated_envs(env_id, count, isolation, **kwargs)  # type: ignore[return-value]
    if split:
        try:
            return [make(env_id, split=split, **kwargs) for _ in range(count)]
        except TypeError as error:
            if "split" not in str(error):
                raise
    return [make(env_id, **kwargs) for _ in range(count)]


#: The agent name of a single-agent env (`Episode.agent_id`'s default).
SOLO = "agent"


@dataclass
class _Agent:
    """Book-keeping for one agent while its episode runs."""

    episode: Episode
    observation: str
    info: dict
    history: list[tuple[str, str]] = field(default_factory=list)  # window mode
    conversation: Conversation | None = None  # conversation mode


@dataclass
class _Running:
    """One environment while its task runs: its agents (one for a single-agent env)."""

    env: Any
    index: int  # the task's position in `tasks`
    agents: dict[str, _Agent]
    live: list[str]  # agents still acting
    multi: bool
    cost_to_go: int | None = None  # the env's oracle steps_to_go() of the current state


def _start(
    env: Any, env_id: str, task: RolloutTask, index: int, prompt_format: PromptFormat
) -> _Running:
    multi = is_multiagent(env)
    if multi:
        observations, infos = env.reset(seed=task.seed)
    else:
        observation, info = env.reset(seed=task.seed)
        observations, infos = {SOLO: observation}, {SOLO: info}
    group = task.group_id if task.group_id is not None else task.seed
    agents = {}
    for name, observation in observations.items():
        info = infos[name]
        metadata = {"seed": task.seed, "split": task.split, "task": info.get(keys.TASK, "")}
        if multi:  # the agents of one rollout share its team return (LaRe decomposes it)
            metadata["team_rollout"] = index
        episode = Episode(
            env_id=env_id,
            task_id=f"{task.split}:{task.seed}" if task.split else str(task.seed),
            group_id=(group, name) if multi else group,
            agent_id=name,
            task_type=str(info.get(keys.TASK_TYPE, "")),
            metadata=metadata,
        )
        agent = _Agent(episode, observation, info)
        if prompt_format.context == "conversation":
            actions = info.get(keys.ADMISSIBLE_ACTIONS)
            agent.conversation = Conversation(
                [
                    prompt_format.system_message(info),
                    prompt_format.user_message(observation, actions),
                ]
            )
        agents[name] = agent
    return _Running(env, index, agents, list(agents), multi)


def collect_episodes(
    envs: Sequence[Any],
    policy: Policy,
    tasks: Sequence[RolloutTask],
    *,
    env_id: str = "",
    prompt_format: PromptFormat = PromptFormat(),
    max_turns: int = 0,
    answer_prefix: str | None = None,
    record_cost_to_go: bool = True,
) -> list[Episode]:
    """Run one episode per task, `len(envs)` at a time, and return them in task order.

    Multi-agent (PettingZoo) envs give one `Episode` per agent per task, task by task (agents
    in the env's order).

    Args:
        envs: the environment instances to step (B of them); tasks beyond B wait for a free one.
        policy: any `Policy`; it gets one `generate` call per step for all running agents (in
            ``conversation`` mode `generate_chat` where it has one).
        tasks: what to run; equal seeds give equal start states.
        env_id: recorded in each `Episode`.
        prompt_format: template, context mode, history length and the response format.
        max_turns: cut episodes after this many turns (0 = only the env's own budget).
        answer_prefix: for information gains: a policy whose `generate` takes
            ``teacher_force`` scores ``answer_prefix + info["answer"]`` after every prompt from
            the prompt's KV cache (`Turn.teacher_forced`), which spares the shaper a second
            prefill.
        record_cost_to_go: ask the env's oracle `steps_to_go()` before and after every turn
            (`Turn.cost_to_go`, `Turn.next_cost_to_go`, hence `Turn.progress`; the team's for
            multi-agent envs); it costs about one more env step per step (nothing for envs
            without the hook).
    """
    finished: list[list[Episode] | None] = [None] * len(tasks)
    pending = list(range(len(tasks)))[::-1]
    running: dict[int, _Running] = {}  # env slot -> its task's state

    def fill_free_slots() -> None:
        for slot, env in enumerate(envs):
            while slot not in running and pending:
                index = pending.pop()
                try:
                    running[slot] = _start(env, env_id, tasks[index], index, prompt_format)
                    if record_cost_to_go:
                        running[slot].cost_to_go = cost_to_go(env)
                except Exception as error:  # a broken env must not take the run down
                    finished[index] = _failed_episodes(env, env_id, tasks[index], error)

    fill_free_slots()
    while running:
        seats = [(slot, name) for slot in sorted(running) for name in running[slot].live]
        agents = [running[slot].agents[name] for slot, name in seats]
        admissible = [agent.info.get(keys.ADMISSIBLE_ACTIONS) for agent in agents]
        forced = _answers_to_score(agents, answer_prefix, policy)
        prompts, generations = _generate(
            policy,
            agents,
            admissible,
            [running[s].env if not running[s].multi else Seat(running[s].env, n) for s, n in seats],
            forced,
            prompt_format,
        )
        parsed_actions = [
            parse_action(generation.text, actions, require_tags=prompt_format.require_tags)
            for actions, generation in zip(admissible, generations)
        ]
        turns = []
        actions_of: dict[int, dict[str, str]] = {}
        for (slot, name), agent, prompt, parsed, generation, pair in zip(
            seats, agents, prompts, parsed_actions, generations, forced or [None] * len(seats)
        ):
            turn = new_turn(agent.observation, agent.info, prompt, generation, parsed)
            if pair is not None and generation.teacher_forced_logprobs is not None:
                turn.teacher_forced = (*pair, generation.teacher_forced_logprobs)
            turns.append(turn)
            actions_of.setdefault(slot, {})[name] = parsed.action
        slots = list(actions_of)
        outcomes = _step_all(
            [running[slot].env for slot in slots],
            [actions_of[slot] if running[slot].multi else actions_of[slot][SOLO] for slot in slots],
        )
        outcome_of = dict(zip(slots, outcomes))
        for (slot, name), turn, parsed in zip(seats, turns, parsed_actions):
            _record(running[slot], name, turn, parsed, outcome_of[slot], prompt_format)
        for slot in slots:
            state = running[slot]
            if record_cost_to_go and not isinstance(outcome_of[slot], BaseException):
                before, state.cost_to_go = state.cost_to_go, cost_to_go(state.env)
                for name in actions_of[slot]:
                    turn = state.agents[name].episode.turns[-1]
                    turn.cost_to_go, turn.next_cost_to_go = before, state.cost_to_go
            if _finish(state, outcome_of[slot], max_turns):
                finished[state.index] = [agent.episode for agent in state.agents.values()]
                del running[slot]
        fill_free_slots()
    return [episode for episodes in finished if episodes for episode in episodes]


def _generate(
    policy: Policy,
    agents: Sequence[_Agent],
    admissible: Sequence[Sequence[str] | None],
    envs: Sequence[Any],
    forced: Sequence[tuple[str, str] | None] | None,
    prompt_format: PromptFormat,
) -> tuple[list[str], list[Any]]:
    """One batched call to the policy for every live agent; returns the prompts (as text) too."""
    options: dict[str, Any] = {
        "admissible_actions": admissible if all(a is not None for a in admissible) else None,
        "envs": envs,
    }
    if forced:
        options["teacher_force"] = forced
    if prompt_format.context == "conversation":
        conversations = [agent.conversation for agent in agents]
        prompts = [conversation.transcript() for conversation in conversations]
        if isinstance(policy, ChatPolicy):
            return prompts, policy.generate_chat(conversations, **options)
        return prompts, policy.generate(prompts, **options)
    prompts = [
        prompt_format.prompt(agent.info, agent.observation, agent.history, actions)
        for agent, actions in zip(agents, admissible)
    ]
    return prompts, policy.generate(prompts, **options)


def _record(
    state: _Running,
    name: str,
    turn: Turn,
    parsed: ParsedAction,
    outcome: tuple | BaseException,
    prompt_format: PromptFormat,
) -> None:
    """Put the env's answer to one agent's action into its turn, episode and context."""
    agent = state.agents[name]
    episode = agent.episode
    episode.turns.append(turn)
    if isinstance(outcome, BaseException):  # the env (or its worker) broke: the episode fails
        _mark_failed(episode, outcome)
        return
    observations, rewards, _, _, infos = _per_agent(state, outcome)
    observation, info = observations.get(name, agent.observation), infos.get(name, agent.info)
    turn.reward = float(rewards.get(name, 0.0))
    if not parsed.valid and prompt_format.invalid_penalty:
        turn.reward -= prompt_format.invalid_penalty
    turn.next_info = info
    turn.next_observation = observation
    turn.valid = turn.valid and bool(info.get(keys.VALID, True))
    agent.history.append((agent.observation, turn.action))
    if agent.conversation is not None:
        agent.conversation.messages.append({"role": "assistant", "content": turn.response})
        agent.conversation.messages.append(
            prompt_format.user_message(observation, info.get(keys.ADMISSIBLE_ACTIONS))
        )
    agent.observation, agent.info = observation, info


def _per_agent(state: _Running, outcome: tuple) -> tuple[dict, dict, dict, dict, dict]:
    """A step's result as per-agent dicts (a single-agent env's under `SOLO`)."""
    if state.multi:
        return outcome
    return tuple({SOLO: value} for value in outcome)  # type: ignore[return-value]


def _finish(state: _Running, outcome: tuple | BaseException, max_turns: int) -> bool:
    """Whether the env's task is over after this step; if so, close its agents' episodes."""
    if isinstance(outcome, BaseException):
        for agent in state.agents.values():
            if not agent.episode.failed:  # agents that had retired fail with their team
                _mark_failed(agent.episode, outcome)
        return True
    _, _, terminations, truncations, infos = _per_agent(state, outcome)
    over_budget = max_turns > 0 and len(state.agents[state.live[0]].episode.turns) >= max_turns
    if state.multi:
        state.live = live_agents(state.env, state.live, terminations, truncations)
    else:
        state.live = [] if terminations[SOLO] or truncations[SOLO] else state.live
    if state.live and not over_budget:
        return False
    for name, agent in state.agents.items():
        info = infos.get(name, agent.info)
        ended = bool(terminations.get(name, True))
        agent.episode.success = bool(info.get(keys.WON, False))
        agent.episode.terminated = ended
        agent.episode.truncated = bool(truncations.get(name, False) or (over_budget and not ended))
        if "score" in info:  # task-specific graded score (WebShop), kept for eval tables
            agent.episode.metadata["score"] = float(info["score"])
    return True


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
    agents: Sequence[_Agent], answer_prefix: str | None, policy: Policy
) -> list[tuple[str, str] | None] | None:
    """Per live agent, ``(answer_prefix, ground-truth answer)`` to teacher-force, if asked and
    the policy supports it."""
    if answer_prefix is None or not can_teacher_force(policy):
        return None
    answers = [agent.info.get(keys.ANSWER) for agent in agents]
    return [(answer_prefix, a) if isinstance(a, str) and a else None for a in answers]


def _step_all(envs: Sequence[Any], actions: Sequence[Any]) -> list[tuple | BaseException]:
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


def _mark_failed(episode: Episode, error: BaseException) -> None:
    """Fail `episode` for `error`: the reason (`creditgym.rollout.failures`) and what happened."""
    episode.failed = True
    episode.metadata["error"] = _describe(error)
    episode.metadata["failure"] = failure_reason(error)


def _describe(error: BaseException) -> str:
    if isinstance(error, EnvFailure):  # says what happened; our own traceback would be noise
        return str(error)
    trace = "".join(traceback.format_exception(type(error), error, error.__traceback__, limit=3))
    return f"{type(error).__name__}: {error}\n{trace}"


def _failed_episodes(
    env: Any, env_id: str, task: RolloutTask, error: BaseException
) -> list[Episode]:
    """The episodes of a task whose env failed to reset: one per agent, marked failed."""
    group = task.group_id if task.group_id is not None else task.seed
    names = list(env.possible_agents) if is_multiagent(env) else [SOLO]
    return [
        Episode(
            env_id=env_id,
            task_id=str(task.seed),
            group_id=(group, name) if is_multiagent(env) else group,
            agent_id=name,
            failed=True,
            metadata={
                "seed": task.seed,
                "split": task.split,
                "error": _describe(error),
                "failure": failure_reason(error),
            },
        )
        for name in names
    ]
