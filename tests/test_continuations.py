"""The continuation runner under Monte-Carlo advantages and branch rollouts, played by a
scripted policy in the corridor, so every number it returns can be written down by hand:
the discounted return with the invalid-response penalty, the env steps and policy tokens it
counts, how it ended, and the turns it records."""

from __future__ import annotations

import pytest
from _oracle_envs import DetourCorridor

from creditgym.agents.base import Generation
from creditgym.agents.prompts import PromptFormat
from creditgym.envs import info as keys
from creditgym.rollout.continuations import Continuation, replay_snapshots, run_continuations
from creditgym.trajectory import Episode, Turn

PROMPT_TOKENS, RESPONSE_TOKENS = 4, 2


class Scripted:
    """Answers each continuation with the next response of its script (keyed by `sample`)."""

    def __init__(self, scripts: dict[int, list[str]], jobs: list[Continuation]) -> None:
        self.scripts = {sample: list(lines) for sample, lines in scripts.items()}
        self.jobs = jobs
        self.admissible_seen: list = []
        self.envs_seen: list = []

    def generate(self, prompts, admissible_actions=None, envs=None, **_):
        self.admissible_seen.append(admissible_actions)
        self.envs_seen += envs
        by_env = {id(job.env): job.sample for job in self.jobs if job.env is not None}
        return [
            Generation(
                text=self.scripts[by_env[id(env)]].pop(0),
                token_ids=[7] * RESPONSE_TOKENS,
                logprobs=[-0.5] * RESPONSE_TOKENS,
                prompt_ids=[1] * PROMPT_TOKENS,
            )
            for env in envs
        ]


def _job(sample: int = 0, snapshot=(0, 0), **options) -> Continuation:
    return Continuation(sample=sample, kind="q", snapshot=snapshot, history=[], **options)


def _run(jobs, scripts, gamma=0.5, envs=1, prompt_format=None, env_class=DetourCorridor):
    policy = Scripted(scripts, jobs)
    pool = [env_class(length=2) for _ in range(envs)]
    steps = run_continuations(jobs, policy, prompt_format or PromptFormat(), pool, gamma)
    return steps, policy


def test_the_return_is_discounted_and_an_invalid_response_pays_its_penalty():
    job = _job(invalid_penalty=0.5)
    steps, _ = _run([job], {0: ["dance", "GO EAST", "go east"]})
    # -0.5 (invalid) + 0.5 * 0 + 0.25 * 1 (the door); "GO EAST" is matched to the env's spelling
    assert job.value == pytest.approx(-0.25)
    assert steps == job.steps == 3
    assert job.policy_tokens == 3 * (PROMPT_TOKENS + RESPONSE_TOKENS)
    assert job.terminated is True and job.truncated is False
    assert job.final_info[keys.WON] is True
    assert [action for _, action in job.history][-2:] == ["go east", "go east"]


def test_a_valid_response_pays_no_penalty():
    job = _job(invalid_penalty=0.5)
    _run([job], {0: ["go east", "go east"]}, gamma=1.0)
    assert job.value == pytest.approx(1.0)


def test_a_recorded_continuation_keeps_every_turn_with_the_envs_answer_and_cost_to_go():
    job = _job(record=True, record_cost_to_go=True, invalid_penalty=0.5)
    _run([job], {0: ["dance", "go east", "go east"]})
    assert [turn.reward for turn in job.turns] == [-0.5, 0.0, 1.0]
    assert [turn.valid for turn in job.turns] == [False, True, True]
    assert [(t.cost_to_go, t.next_cost_to_go) for t in job.turns] == [(2, 2), (2, 1), (1, 0)]
    assert [t.next_observation for t in job.turns] == [
        "You are at square 0.",
        "You are at square 1.",
        "You are at square 2.",
    ]
    assert [len(t.response_ids) for t in job.turns] == [RESPONSE_TOKENS] * 3


def test_an_unrecorded_continuation_keeps_no_turns():
    job = _job()
    _run([job], {0: ["go east", "go east"]})
    assert job.turns == [] and job.steps == 2


def test_its_own_budget_cuts_it_as_truncated():
    job = _job(budget=1)
    steps, _ = _run([job], {0: ["go west", "go west"]})
    assert steps == job.steps == 1
    assert job.truncated is True and job.terminated is False


def test_the_envs_time_limit_ends_it_as_truncated():
    job = _job(snapshot=(0, 11))  # the corridor cuts episodes after 12 steps
    _run([job], {0: ["look"]})
    assert job.steps == 1 and job.truncated is True and job.terminated is False


def test_more_jobs_than_envs_run_in_turn_and_every_one_finishes():
    jobs = [_job(sample=i) for i in range(3)]
    steps, _ = _run(
        jobs, {0: ["go east"] * 2, 1: ["look", "go east", "go east"], 2: ["go east"] * 2}
    )
    assert [job.steps for job in jobs] == [2, 3, 2] and steps == 7
    assert all(job.terminated and job.env is None for job in jobs)


TAGGED = "<think>the door is east</think><action>go east</action>"


def test_tags_are_required_when_the_prompt_format_says_so():
    job = _job(invalid_penalty=1.0)
    _run(
        [job],
        {0: ["go east", TAGGED, TAGGED]},
        gamma=1.0,
        prompt_format=PromptFormat(require_tags=True, think=False),
    )
    assert job.value == pytest.approx(0.0)  # the bare first answer is invalid: -1 + 1
    assert job.steps == 3


class _NoActions(DetourCorridor):
    def _info(self, valid: bool = True) -> dict:
        info = super()._info(valid)
        del info[keys.ADMISSIBLE_ACTIONS]
        return info


def test_the_policy_is_unconstrained_when_an_env_lists_no_admissible_actions():
    job = _job()
    _, policy = _run([job], {0: ["go east", "go east"]}, env_class=_NoActions)
    assert policy.admissible_seen == [None, None]


def test_the_policy_sees_the_admissible_actions_when_every_env_lists_them():
    job = _job()
    _, policy = _run([job], {0: ["go east", "go east"]})
    assert policy.admissible_seen[0] == [["go east", "go west", "look"]]


def _episode(actions: list[str]) -> Episode:
    observations = [f"You are at square {square}." for square in (0, 1, 2)]
    turns = [Turn(observation=o, action=a, reward=0.0) for o, a in zip(observations, actions)]
    return Episode(turns=turns, metadata={"seed": 0})


def test_replay_snapshots_give_the_states_before_and_after_each_wanted_turn():
    found = replay_snapshots(
        DetourCorridor(length=2),
        _episode(["go east", "go east"]),
        [0, 1],
        needed_by="Monte-Carlo advantages",
    )
    assert found == {0: ((0, 0), (1, 1)), 1: ((1, 1), None)}  # turn 1 reached the door


def test_replay_snapshots_refuse_an_env_that_does_not_replay_the_episode():
    episode = _episode(["go east", "go east"])
    episode.turns[1].observation = "somewhere else"
    with pytest.raises(ValueError, match="deterministic under its reset seed"):
        replay_snapshots(DetourCorridor(length=2), episode, [1], needed_by="Monte-Carlo advantages")


class _CountingCorridor(DetourCorridor):
    def step(self, action):
        self.calls = getattr(self, "calls", 0) + 1
        return super().step(action)


def test_replay_stops_after_the_last_wanted_turn():
    env = _CountingCorridor(length=3)
    episode = _episode(["go east", "go east", "go east"])
    assert (
        replay_snapshots(env, episode, [], needed_by="Monte-Carlo advantages") == {}
        and getattr(env, "calls", 0) == 0
    )
    replay_snapshots(env, episode, [0], needed_by="Monte-Carlo advantages")
    assert env.calls == 1


def test_a_replay_that_differs_names_the_episode_the_turn_and_what_needs_it():
    episode = _episode(["go east", "go east"])
    episode.task_id, episode.env_id = "task-3", "tests/DetourCorridor-v0"
    episode.turns[1].observation = "somewhere else"
    with pytest.raises(ValueError) as error:
        replay_snapshots(DetourCorridor(length=2), episode, [1], needed_by="branch rollouts")
    assert str(error.value) == (
        "replaying episode task-3 of tests/DetourCorridor-v0 from its seed gave a different "
        "observation at turn 1; branch rollouts need an env that is deterministic under "
        "its reset seed"
    )


class _OracleCountingCorridor(DetourCorridor):
    """Counts the oracle queries (a served env's are round trips that can fail)."""

    def steps_to_go(self) -> int:
        self.asked = getattr(self, "asked", 0) + 1
        return super().steps_to_go()

    def clone_state(self):
        self.cloned = getattr(self, "cloned", 0) + 1
        return super().clone_state()


def test_the_oracle_cost_to_go_is_asked_only_for_turns_recorded_with_it():
    jobs = [
        _job(0, record=True),  # turns recorded without cost-to-go
        _job(1, record_cost_to_go=True),  # nothing recorded
        _job(2),
    ]
    _, policy = _run(
        jobs,
        {0: ["go east"] * 2, 1: ["go east"] * 2, 2: ["go east"] * 2},
        envs=3,
        env_class=_OracleCountingCorridor,
    )
    assert all(job.steps == 2 for job in jobs)
    envs = {id(env): env for env in policy.envs_seen}
    assert [getattr(env, "asked", 0) for env in envs.values()] == [0, 0, 0]


def test_replay_clones_only_the_states_it_was_asked_for():
    env = _OracleCountingCorridor(length=2)
    replay_snapshots(env, _episode(["go east", "go east"]), [1], needed_by="Monte-Carlo advantages")
    assert env.cloned == 1  # s_1; turn 1 reaches the door, so there is no s_2
