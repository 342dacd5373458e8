"""One rollout loop for single- and multi-agent envs: the features that used to exist only for
single-agent envs (a reset or step that raises, tracebacks, IGPO answer scoring from the KV
cache, Ray env workers, conversation mode) work on the cooperative household too."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("pettingzoo")

import creditgym  # noqa: E402
from creditgym.agents.prompts import PromptFormat  # noqa: E402
from creditgym.agents.scripted import ExpertPolicy, RandomPolicy  # noqa: E402
from creditgym.rollout.collect import collect_episodes, group_tasks, make_envs  # noqa: E402
from creditgym.train.corpus import load_tiny  # noqa: E402

COOP = "creditgym/CoopHousehold-v0"


class Flaky:
    """A coop env that raises on reset for one seed, or on its `fail_on_step`-th step."""

    def __init__(self, bad_seed: int | None = None, fail_on_step: int = 0, answer: str = ""):
        self.env = creditgym.make(COOP)
        self.possible_agents = self.env.possible_agents
        self.bad_seed, self.fail_on_step, self.answer = bad_seed, fail_on_step, answer
        self.steps = 0

    def __getattr__(self, name):
        return getattr(self.env, name)

    def _with_answer(self, infos):
        if self.answer:
            for info in infos.values():
                info["answer"] = self.answer
        return infos

    def reset(self, seed=None, options=None):
        if seed == self.bad_seed:
            raise RuntimeError("reset exploded")
        self.steps = 0
        observations, infos = self.env.reset(seed=seed)
        return observations, self._with_answer(infos)

    def step(self, actions):
        self.steps += 1
        if self.steps == self.fail_on_step:
            raise RuntimeError("step exploded")
        *rest, infos = self.env.step(actions)
        return (*rest, self._with_answer(infos))


def test_a_reset_that_raises_fails_every_agents_episode_and_the_run_goes_on():
    episodes = collect_episodes(
        [Flaky(bad_seed=2), Flaky(bad_seed=2)], ExpertPolicy(), group_tasks([1, 2], 1), env_id=COOP
    )
    failed = [ep for ep in episodes if ep.failed]
    assert [ep.agent_id for ep in failed] == ["agent_0", "agent_1"]
    assert all("reset exploded" in ep.metadata["error"] for ep in failed)
    assert all(ep.success for ep in episodes if not ep.failed) and len(episodes) == 4


def test_a_step_that_raises_fails_the_team_with_its_traceback():
    episodes = collect_episodes([Flaky(fail_on_step=2)], ExpertPolicy(), group_tasks([1], 1))
    assert [ep.failed for ep in episodes] == [True, True]
    for ep in episodes:
        assert len(ep.turns) == 2
        assert "RuntimeError: step exploded" in ep.metadata["error"]
        assert "Traceback" in ep.metadata["error"]


@pytest.fixture(scope="module")
def coop_policy():
    torch.set_num_threads(1)
    return load_tiny([COOP], constrained=True, device="cpu")


def test_igpo_answers_are_scored_from_the_kv_cache_for_every_agent(coop_policy):
    envs = [Flaky(answer="plate 1"), Flaky(answer="plate 1")]
    episodes = collect_episodes(
        envs, coop_policy, group_tasks([1], 2), answer_prefix="answer[", max_turns=3
    )
    turns = [t for ep in episodes for t in ep.turns]
    assert {ep.agent_id for ep in episodes} == {"agent_0", "agent_1"} and len(turns) == 12
    assert all(t.teacher_forced[:2] == ("answer[", "plate 1") for t in turns)
    targets = [coop_policy._teacher_force_ids("answer[", "plate 1") for _ in turns]
    fresh, _ = coop_policy.score(
        [t.prompt_ids + ids[: len(ids) - n] for t, (ids, n) in zip(turns, targets)],
        [ids[len(ids) - n :] for ids, n in targets],
    )
    for turn, row in zip(turns, fresh):
        np.testing.assert_allclose(turn.teacher_forced[2], row.detach().numpy(), atol=1e-5)


def test_conversation_mode_gives_each_agent_its_own_growing_conversation(coop_policy):
    envs = make_envs(COOP, 2)
    episodes = collect_episodes(
        envs,
        coop_policy,
        group_tasks([1], 2),
        prompt_format=PromptFormat(context="conversation"),
        max_turns=4,
    )
    assert [ep.agent_id for ep in episodes] == ["agent_0", "agent_1"] * 2
    for ep in episodes:
        assert ep.agent_id in coop_policy.tokenizer.decode(ep.turns[0].prompt_ids)
        for turn, after in zip(ep.turns, ep.turns[1:]):
            assert after.prompt_ids[: len(turn.prompt_ids)] == turn.prompt_ids
    turns = [t for ep in episodes for t in ep.turns]
    fresh, _ = coop_policy.score(
        [t.prompt_ids for t in turns],
        [t.response_ids for t in turns],
        [t.info["admissible_actions"] for t in turns],
    )
    for turn, row in zip(turns, fresh):
        np.testing.assert_allclose(turn.logprobs, row.detach().numpy(), atol=1e-5)


def _signature(episodes):
    return [
        (ep.group_id, ep.agent_id, ep.success, ep.failed, [(t.action, t.reward) for t in ep.turns])
        for ep in episodes
    ]


@pytest.mark.slow
def test_ray_workers_step_multi_agent_envs_as_in_process():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        tasks = group_tasks([3, 5], 2)
        for policy in (lambda: RandomPolicy(seed=1), ExpertPolicy):
            local = collect_episodes(make_envs(COOP, 3), policy(), tasks, env_id=COOP)
            remote = collect_episodes(make_envs(COOP, 3, workers=2), policy(), tasks, env_id=COOP)
            assert _signature(remote) == _signature(local)
            assert not any(ep.failed for ep in remote) and len(remote) == 8
        env = "creditgym/HouseholdEasy-v0"  # and conversation mode through workers
        tiny = load_tiny([env], constrained=True, device="cpu")
        runs = []
        for workers in (0, 2):
            tiny.generator.manual_seed(0)
            runs.append(
                collect_episodes(
                    make_envs(env, 3, split="train", workers=workers),
                    tiny,
                    group_tasks([3], 3, split="train"),
                    prompt_format=PromptFormat(context="conversation"),
                    max_turns=5,
                )
            )
        assert _signature(runs[0]) == _signature(runs[1])
    finally:
        ray.shutdown()
