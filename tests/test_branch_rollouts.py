"""Branch rollouts (`rollout.branch`): K continuations of the policy from cloned env states.

Tree continuations are new episodes of the parent's group whose first t turns are exact copies
of the parent's; vine continuations only give Monte-Carlo values. Both are counted as env
steps and policy tokens; copied prefixes are not, and are never trained twice.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from _oracle_envs import DetourCorridor
from _oracle_envs import register as register_corridor
from conftest import TINY

import creditgym
from creditgym.agents.base import Generation
from creditgym.agents.scripted import ExpertPolicy, RandomPolicy
from creditgym.config import BranchConfig, ConfigError, load_config
from creditgym.credit import compute_advantages, register_shaper
from creditgym.envs import info as keys
from creditgym.envs.registry import list_envs
from creditgym.rollout import branching
from creditgym.rollout.branching import (
    branch_points,
    branch_rollouts,
    check_branching,
    rollout_counts,
    step_entropy,
    trained_turns,
    zero_copied_prefixes,
)
from creditgym.rollout.collect import PromptFormat, collect_episodes, group_tasks, make_envs
from creditgym.train.corpus import load_tiny
from creditgym.train.trainer import train
from creditgym.trajectory import Episode, Turn

HOUSEHOLD = "creditgym/HouseholdEasy-v0"
WINDOW = PromptFormat(require_tags=False)  # constrained decoding writes the bare action


def _collect(env_id, policy, seeds, group_size, max_turns=0, **env_kwargs):
    envs = make_envs(env_id, len(seeds) * group_size, split="train", **env_kwargs)
    return collect_episodes(
        envs,
        policy,
        group_tasks(seeds, group_size, split="train"),
        env_id=env_id,
        prompt_format=WINDOW,
        max_turns=max_turns,
    )


@pytest.fixture(scope="module")
def tiny_tree():
    """HouseholdEasy with the tiny model: 2 groups of 2, branched K=3 before turns 1 and 3 of
    the first episode of each group."""
    policy = load_tiny(
        [HOUSEHOLD],
        device="cpu",
        vocab_size=512,
        hidden_size=32,
        num_layers=1,
        num_heads=2,
        constrained=True,
        seed=0,
    )
    episodes = _collect(HOUSEHOLD, policy, [5, 6], 2, max_turns=6)
    parents = list(episodes)  # the batch as collected
    branch = BranchConfig(mode="tree", k=3, turns=[1, 3])
    out, cost = branch_rollouts(
        list(episodes),
        policy,
        branch,
        env_id=HOUSEHOLD,
        prompt_format=WINDOW,
        split="train",
        max_turns=6,
    )
    return parents, out, cost


def test_tree_continuation_prefixes_reproduce_the_parent_exactly(tiny_tree):
    parents, out, _ = tiny_tree
    continuations = out[len(parents) :]
    assert continuations, "no continuation was made"
    for episode in continuations:
        t = episode.metadata["branch_prefix_turns"]
        parent = out[episode.metadata["branch_parent"]]
        assert episode.copied_turns == t and t in (1, 3)
        assert episode.group_id == parent.group_id and episode.task_id == parent.task_id
        for copy, original in zip(episode.turns[:t], parent.turns[:t]):
            assert copy is not original  # copied objects: credit details stay per episode
            assert copy.prompt_ids == original.prompt_ids
            assert copy.response_ids == original.response_ids
            assert copy.logprobs == original.logprobs
            assert (copy.observation, copy.action, copy.reward) == (
                original.observation,
                original.action,
                original.reward,
            )
        # the first new turn acts in the parent's state s_t, with its own sample
        first = episode.turns[t]
        assert first.observation == parent.turns[t].observation
        assert first.prompt == parent.turns[t].prompt  # same window of history
        for turn in episode.turns[t:]:
            assert turn.response_ids and len(turn.logprobs) == len(turn.response_ids)
        assert len(episode) <= 6  # the rollout's max_turns holds for continuations too


def test_tree_makes_k_continuations_per_branch_point_of_the_first_episode_per_group(tiny_tree):
    parents, out, cost = tiny_tree
    points = {}
    for episode in out[len(parents) :]:
        key = (episode.metadata["branch_parent"], episode.metadata["branch_prefix_turns"])
        points[key] = points.get(key, 0) + 1
    # the first episode of each group (indices 0 and 2), at the scheduled turns it reached
    expected = {(e, t) for e in (0, 2) for t in (1, 3) if t < len(parents[e])}
    assert set(points) == expected
    assert set(points.values()) == {3}
    assert cost.continuations == 3 * len(expected)


def test_tree_counts_continuation_steps_and_tokens_but_not_copied_prefixes(tiny_tree):
    parents, out, cost = tiny_tree
    continuations = out[len(parents) :]
    new_turns = [turn for e in continuations for turn in e.turns[e.copied_turns :]]
    sampled_turns = [turn for e in parents for turn in e.turns]
    counts = rollout_counts(out)
    assert counts.env_steps == len(sampled_turns) + len(new_turns)
    assert counts.branch_env_steps == len(new_turns) == cost.env_steps
    tokens = [len(turn.prompt_ids) + len(turn.response_ids) for turn in new_turns]
    assert counts.branch_policy_tokens == sum(tokens) == cost.policy_tokens > 0
    assert counts.policy_tokens == sum(
        len(turn.prompt_ids) + len(turn.response_ids) for turn in sampled_turns
    ) + sum(tokens)
    # replays walk each branched episode up to its last branch point, without the policy
    replayed = sum(min(3, len(parents[e]) - 1) + 1 for e in (0, 2))
    assert counts.replay_steps == cost.replay_steps == replayed
    assert counts.branch_episodes == len(continuations)


def _with_logprobs(*turn_logprobs, group=0):
    turns = [
        Turn(observation="o", action=f"a{t}", logprobs=lp) for t, lp in enumerate(turn_logprobs)
    ]
    return Episode(turns=turns, group_id=group)


def test_step_entropy_is_the_mean_token_surprisal():
    assert step_entropy(Turn("o", "a", logprobs=[-1.0, -3.0])) == pytest.approx(2.0)
    assert step_entropy(Turn("o", "a")) == 0.0


def test_entropy_branch_points_are_each_episodes_most_uncertain_turns():
    episodes = [
        _with_logprobs([-0.1], [-2.0, -2.0], [-0.5], [-3.0]),  # surprisal 0.1, 2, 0.5, 3
        _with_logprobs([-1.0], [-1.0]),  # the second of its group: not branched (per_group=1)
        _with_logprobs([-0.2], [-0.1], [-0.2], group=1),  # a tie goes to the earlier turn
    ]
    branch = BranchConfig(mode="tree", at="entropy", count=2)
    assert branch_points(episodes, branch) == [(0, 1), (0, 3), (2, 0), (2, 2)]


def test_scheduled_branch_points_skip_turns_an_episode_does_not_reach():
    episodes = [_with_logprobs([-1.0], [-1.0]), _with_logprobs([-1.0], [-1.0], [-1.0])]
    branch = BranchConfig(mode="tree", turns=[0, 2], per_group=2)
    assert branch_points(episodes, branch) == [(0, 0), (1, 0), (1, 2)]


def test_copied_prefixes_get_zero_advantage_and_leave_the_update():
    parent = _with_logprobs([-1.0], [-1.0], [-1.0])
    child = _with_logprobs([-1.0], [-1.0], [-1.0])
    child.metadata["branch_prefix_turns"] = 2
    advantages = [np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 4.0])]
    zeroed = zero_copied_prefixes([parent, child], advantages)
    assert [a.tolist() for a in zeroed] == [[1.0, 2.0, 3.0], [0.0, 0.0, 4.0]]
    kept, kept_advantages = trained_turns([parent, child], advantages)
    assert [len(e) for e in kept] == [3, 1] and kept[1].turns[0] is child.turns[2]
    assert kept_advantages[1].tolist() == [4.0]
    assert len(child) == 3  # the batch's episode is left whole


# ---- vine: Monte-Carlo values from every turn's state --------------------------------------


def test_vine_values_of_the_expert_are_its_return_and_give_zero_advantage():
    env_id = register_corridor()
    expert = ExpertPolicy()
    episodes = _collect(env_id, expert, [0], 1)
    out, cost = branch_rollouts(
        episodes, expert, BranchConfig(mode="vine", k=2), env_id=env_id, prompt_format=WINDOW
    )
    [episode] = out
    # the expert walks east 4 times and always wins: V(s_t) = 1 (reward 1 at the door)
    assert [t.mc_value for t in episode.turns] == [1.0] * 4
    assert [t.next_mc_value for t in episode.turns] == [1.0, 1.0, 1.0, 0.0]
    advantages = compute_advantages(out, estimator="vine")
    assert advantages[0].tolist() == [0.0] * 4
    # K=2 continuations from each of the 4 states, of 4, 3, 2, 1 steps
    assert cost.env_steps == 2 * (4 + 3 + 2 + 1) and cost.continuations == 8


def test_vine_values_are_the_mean_return_of_the_continuations_and_are_counted():
    env_id = register_corridor()
    policy = RandomPolicy(seed=0)
    episodes = _collect(env_id, policy, [0, 1], 2)
    before = rollout_counts(episodes)
    out, cost = branch_rollouts(
        episodes,
        policy,
        BranchConfig(mode="vine", k=4, gamma=0.9),
        env_id=env_id,
        prompt_format=WINDOW,
    )
    for episode in out:
        values = [t.mc_value for t in episode.turns]
        assert all(0.0 <= v <= 1.0 for v in values)  # discounted success probabilities
        assert [t.next_mc_value for t in episode.turns] == values[1:] + [0.0]
        assert episode.metadata["vine"] == {"k": 4, "gamma": 0.9}
    counts = rollout_counts(out)
    assert counts.env_steps == before.env_steps + cost.env_steps
    assert counts.branch_env_steps == cost.env_steps > 0
    assert counts.replay_steps == sum(len(e) for e in out)  # each episode replayed once


def test_a_vine_value_is_the_mean_of_its_k_continuation_returns(monkeypatch):
    env_id = register_corridor()
    episodes = _collect(env_id, ExpertPolicy(), [0], 1)  # 4 turns

    def returns_by_draw(jobs, *args, **kwargs):  # the k-th draw of every state returns this
        for i, job in enumerate(jobs):
            job.value = [0.0, 1.0, 0.25, 0.75][i % 4]

    monkeypatch.setattr(branching, "_run", returns_by_draw)
    out, _ = branch_rollouts(
        episodes,
        ExpertPolicy(),
        BranchConfig(mode="vine", k=4),
        env_id=env_id,
        prompt_format=WINDOW,
    )
    # mean(0, 1, 0.25, 0.75) = 0.5 from every state (a max would say 1, a first draw 0)
    assert [t.mc_value for t in out[0].turns] == [0.5] * 4


def test_a_value_from_one_step_to_the_door_is_exact():
    """From square 3 of a 4-square corridor the continuation returns are gamma^(steps-1)."""
    env_id = register_corridor()
    turns = []
    env = creditgym.make(env_id)
    observation, info = env.reset(seed=0)
    for _ in range(3):
        turns.append(Turn(observation, "go east", info=info))
        observation, reward, *_ = env.step("go east")
        turns[-1].reward = reward
    episode = Episode(turns=turns, env_id=env_id, metadata={"seed": 0}, truncated=True)
    out, _ = branch_rollouts(
        [episode],
        ExpertPolicy(),
        BranchConfig(mode="vine", k=2, gamma=0.5),
        env_id=env_id,
        prompt_format=WINDOW,
    )
    # the expert needs 4, 3, 2 steps from squares 0, 1, 2: returns 0.5^3, 0.5^2, 0.5
    assert [t.mc_value for t in out[0].turns] == [0.125, 0.25, 0.5]


def test_a_branch_replay_that_differs_says_branch_rollouts_need_a_deterministic_env():
    env_id = register_corridor()
    episodes = _collect(env_id, ExpertPolicy(), [0], 1)
    episodes[0].turns[1].observation = "You are at square 7."
    message = r"turn 1; branch rollouts \(rollout\.branch\) need an env that is deterministic"
    with pytest.raises(ValueError, match=message):
        branch_rollouts(
            episodes,
            ExpertPolicy(),
            BranchConfig(mode="vine", k=1),
            env_id=env_id,
            prompt_format=WINDOW,
        )


# ---- where branching cannot run: clear errors before training ---------------------------------


class _Uncloneable(DetourCorridor):
    supports_state_cloning = False


def _config(tmp_path, *overrides):
    return load_config(
        None,
        TINY
        + [
            "rollout.groups=2",
            "rollout.group_size=2",
            "rollout.max_turns=5",
            "eval.episodes=2",
            "eval.every=0",
            "train.iterations=1",
            "run.log_episodes=4",
            f"run.output_dir={tmp_path / 'run'}",
            *overrides,
        ],
    )


def test_an_env_that_cannot_clone_is_refused_before_training(tmp_path):
    env_id = "tests/UncloneableCorridor-v0"
    if env_id not in list_envs():
        creditgym.register(env_id, _Uncloneable, description="no clone_state (tests)")
    config = _config(tmp_path, f"env.id={env_id}", "rollout.branch.mode=tree")
    with pytest.raises(ConfigError, match="UncloneableCorridor.*cannot clone.*branch.mode=none"):
        train(config)
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_a_multi_agent_env_is_refused(tmp_path):
    config = _config(tmp_path, "env.id=creditgym/CoopHousehold-v0", "rollout.branch.mode=vine")
    with pytest.raises(ConfigError, match="CoopHousehold-v0 is a multi-agent env"):
        check_branching(config)


def test_conversation_context_is_refused(tmp_path):
    config = _config(tmp_path, "rollout.branch.mode=tree", "policy.context=conversation")
    with pytest.raises(ConfigError, match="policy.context=window"):
        check_branching(config)


def test_the_vine_estimator_without_vine_rollouts_is_refused(tmp_path):
    config = _config(tmp_path, "credit.estimator={name: vine}")
    with pytest.raises(ConfigError, match="rollout.branch.mode=vine"):
        check_branching(config)


# ---- one training iteration each ----------------------------------------------------------------


@register_shaper("test_branch_action_length")
def _action_length(episodes, context) -> list[np.ndarray]:
    """A dense reward (len(action) / 100): nonzero advantages, so the update has work."""
    return [np.array([len(turn.action) / 100 for turn in ep.turns]) for ep in episodes]


def _train_one(tmp_path, mode, estimator, *extra):
    config = _config(
        tmp_path,
        f"rollout.branch.mode={mode}",
        "rollout.branch.k=2",
        f"credit.estimator={{name: {estimator}}}",
        *extra,
    )
    train(config)
    rows = [
        json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    return [row for row in rows if "rollout/success" in row][-1]


def test_one_tree_iteration_trains_and_counts_the_continuations(tmp_path):
    row = _train_one(
        tmp_path,
        "tree",
        "tree",
        "rollout.branch.turns=[1]",
        "credit.shapers=[env, test_branch_action_length]",
    )
    # the first episode of each of the 2 groups, branched K=2 before turn 1
    assert row["rollout/branch_episodes"] == 4
    assert row["rollout/branch_env_steps"] > 0
    assert row["env_steps"] >= 4 + row["rollout/branch_env_steps"]  # 4 sampled episodes too
    assert row["rollout/policy_tokens"] > row["rollout/branch_policy_tokens"] > 0
    assert row["update/steps"] == 1  # one optimizer step on the batch (1 epoch, 1 mini-batch)
    # the tree's credit against GRPO's on the same batch is logged (values: test_credit_metrics)
    assert 0.0 <= row["credit/grpo_sign_agreement"] <= 1.0
    records = [
        json.loads(line) for line in (tmp_path / "run" / "episodes.jsonl").read_text().splitlines()
    ]
    # run.log_episodes=4: one whole task, its 2 sampled episodes and their 2 continuations
    assert len(records) == 4 and len({record["task_id"] for record in records}) == 1


def test_one_vine_iteration_trains_on_monte_carlo_values(tmp_path):
    row = _train_one(tmp_path, "vine", "vine")
    assert row["rollout/branch_episodes"] == 0  # vine continuations are not episodes
    assert row["rollout/branch_env_steps"] > 0
    assert row["env_steps"] > row["rollout/branch_env_steps"]
    records = [
        json.loads(line) for line in (tmp_path / "run" / "episodes.jsonl").read_text().splitlines()
    ]
    details = [turn["credit"]["vine"] for record in records for turn in record["turns"]]
    assert details and all(0.0 <= d["value"] <= 1.0 for d in details)


def test_rollout_success_is_of_sampled_episodes_and_continuations_report_apart():
    from creditgym.rollout.branching import branch_metrics
    from creditgym.train.metric_rows import rollout_metrics

    sampled = Episode(turns=[Turn("o", "a"), Turn("o", "b")], success=False)
    continuation = Episode(
        turns=[Turn("o", "a"), Turn("o", "c")],
        success=True,
        metadata={"branch_prefix_turns": 1, "branch_parent": 0},
    )
    metrics = {
        **rollout_metrics([sampled, continuation]),
        **branch_metrics([sampled, continuation]),
    }
    assert metrics["rollout/success"] == 0.0 and metrics["rollout/turns"] == 2.0
    assert metrics["rollout/branch_success"] == 1.0
    assert metrics["rollout/branch_episodes"] == 1.0 and metrics["rollout/branch_env_steps"] == 1.0


def test_a_tree_run_resumed_after_one_iteration_equals_two_straight(tmp_path):
    """Continuations sample from the policy's own generator, which checkpoints carry."""
    from conftest import training_rows

    def config(name, iterations):
        return _config(
            tmp_path / name,
            "rollout.branch.mode=tree",
            "rollout.branch.k=2",
            "rollout.branch.at=entropy",
            "rollout.branch.count=1",
            "credit.estimator={name: tree}",
            f"train.iterations={iterations}",
            "run.save_every=1",
        )

    train(config("straight", 2))
    train(config("resumed", 1))
    train(config("resumed", 2))  # picks up iteration 1
    straight, resumed = (training_rows(tmp_path / name / "run") for name in ("straight", "resumed"))
    assert len(straight) == 2 and resumed == straight
    assert straight[1]["rollout/branch_episodes"] == 4  # 2 groups x 1 turn x K=2


class _ScoredCorridor(DetourCorridor):
    """The corridor with a graded score in its info (as WebShop has), for continuations."""

    def _info(self, valid: bool = True) -> dict:
        return {**super()._info(valid), "score": self.square / self.length}


SCORED = "tests/ScoredCorridor-v0"


def test_a_tree_continuation_is_an_episode_of_its_parents_task_ending_its_own_way():
    if SCORED not in list_envs():
        creditgym.register(SCORED, _ScoredCorridor, description="corridor with a score (tests)")
    parents = _collect(SCORED, RandomPolicy(seed=1), [0], 2, length=4, max_steps=3)
    for parent in parents:
        parent.task_type = "corridor"
    out, cost = branch_rollouts(
        list(parents),
        ExpertPolicy(),
        BranchConfig(mode="tree", k=2, turns=[1], per_group=1),
        env_id=SCORED,
        prompt_format=WINDOW,
        split="train",
        env_kwargs={"length": 4, "max_steps": 30},  # room for the expert's whole walk
    )
    continuations = out[len(parents) :]
    assert len(continuations) == cost.continuations == 2
    parent = parents[0]
    square = int(parent.turns[1].observation.split()[-1].rstrip("."))
    for episode in continuations:
        assert (episode.env_id, episode.agent_id, episode.task_type) == (
            parent.env_id,
            parent.agent_id,
            "corridor",
        )
        # no turn limit (max_turns=0): the expert walks from s_1 all the way to the door
        assert len(episode) - episode.copied_turns == 4 - square
        assert episode.success is True and episode.terminated is True
        assert episode.truncated is False
        assert episode.metadata["score"] == 1.0  # its own final score, not the parent's
        assert "branch_cost" not in episode.metadata
    assert parent.metadata["branch_cost"] == {"replay_steps": 2}  # s_0, s_1 replayed
    assert cost.replay_steps == 2
    assert cost.policy_tokens == 0  # a scripted policy spends no tokens
    assert cost.env_steps == sum(len(e) - e.copied_turns for e in continuations)


class _TokenExpert(ExpertPolicy):
    """The expert, spending 2 prompt + 3 response tokens per decision (as a model would)."""

    def generate(self, prompts, admissible_actions=None, envs=None):
        generations = super().generate(prompts, admissible_actions, envs)
        for generation in generations:
            generation.prompt_ids, generation.token_ids = [0, 0], [1, 1, 1]
        return generations


class _TerseCorridor(DetourCorridor):
    """The corridor whose info says neither whether the agent won nor whether its action was
    valid (``refuse``: it says every action was invalid)."""

    refuse = False

    def _info(self, valid: bool = True) -> dict:
        info = super()._info(valid)
        del info[keys.WON], info[keys.VALID]
        if self.refuse:
            info[keys.VALID] = False
        return info


class _RefusingCorridor(_TerseCorridor):
    refuse = True


def _register(env_id, cls):
    if env_id not in list_envs():
        creditgym.register(env_id, cls, description="corridor variant (tests)")
    return env_id


def test_vine_continuations_stop_at_the_rollouts_turn_limit_and_count_their_tokens():
    env_id = register_corridor()
    episodes = _collect(env_id, _TokenExpert(), [0], 1, max_turns=3)  # squares 0, 1, 2: no win
    out, cost = branch_rollouts(
        episodes,
        _TokenExpert(),
        BranchConfig(mode="vine", k=2),
        env_id=env_id,
        prompt_format=WINDOW,
        max_turns=3,
    )
    # from s_t a continuation has 3 - t turns: it ends on square 3, one short of the door
    assert [t.mc_value for t in out[0].turns] == [0.0, 0.0, 0.0]
    # K=2 continuations of 3, 2, 1 steps, 5 tokens a step, charged to the episode
    assert out[0].metadata["branch_cost"] == {
        "env_steps": 12,
        "policy_tokens": 60,
        "replay_steps": 3,
    }
    assert (cost.env_steps, cost.policy_tokens, cost.continuations) == (12, 60, 6)


def test_a_tree_continuation_keeps_its_parents_details_and_records_its_own_ending():
    env_id = _register("tests/TerseCorridor-v0", _TerseCorridor)
    parents = _collect(env_id, _TokenExpert(), [0], 1, max_turns=3)
    parent = parents[0]
    parent.agent_id = "walker"
    parent.metadata.update(score=0.5, notes={"tags": ["a"]})
    out, cost = branch_rollouts(
        list(parents),
        _TokenExpert(),
        BranchConfig(mode="tree", k=2, turns=[1]),
        env_id=env_id,
        prompt_format=WINDOW,
        split="train",
        max_turns=3,
    )
    continuations = out[1:]
    assert len(continuations) == 2
    for episode in continuations:
        assert episode.agent_id == "walker"
        # its own ending: cut by the turn limit on square 3, no win in the env's info
        assert (episode.success, episode.terminated, episode.truncated) == (False, False, True)
        assert episode.metadata == {
            "seed": 0,
            "split": "train",
            "task": "reach the door",
            "notes": {"tags": ["a"]},  # the parent's details, but not its score
            "branch_prefix_turns": 1,
            "branch_parent": 0,
        }
        assert episode.metadata["notes"] is not parent.metadata["notes"]  # a deep copy
        new = episode.turns[1:]
        assert [(t.cost_to_go, t.next_cost_to_go) for t in new] == [(3, 2), (2, 1)]
        assert [t.valid for t in new] == [True, True]  # no validity in the info: valid
        assert [t.next_info[keys.ANCHOR] for t in new] == [2, 3]
    # 2 continuations of 2 steps, 5 tokens a step
    assert (cost.env_steps, cost.policy_tokens, cost.replay_steps) == (4, 20, 2)
    assert branching.branch_metrics(out) == {
        "rollout/branch_env_steps": 4.0,
        "rollout/branch_policy_tokens": 20.0,
        "rollout/branch_episodes": 2.0,
        "rollout/branch_success": 0.0,
        "rollout/replay_steps": 2.0,
    }


def test_branch_metrics_of_a_batch_without_continuations_are_zero():
    env_id = register_corridor()
    episodes = _collect(env_id, _TokenExpert(), [0], 1)
    assert branching.branch_metrics(episodes) == {
        "rollout/branch_env_steps": 0.0,
        "rollout/branch_policy_tokens": 0.0,
        "rollout/branch_episodes": 0.0,
        "rollout/branch_success": 0.0,
        "rollout/replay_steps": 0.0,
    }


def test_a_continuation_turn_the_env_calls_invalid_is_recorded_invalid():
    env_id = _register("tests/RefusingCorridor-v0", _RefusingCorridor)
    parents = _collect(env_id, ExpertPolicy(), [0], 1, max_turns=2)
    out, _ = branch_rollouts(
        list(parents),
        ExpertPolicy(),
        BranchConfig(mode="tree", k=1, turns=[0]),
        env_id=env_id,
        prompt_format=WINDOW,
        split="train",
        max_turns=2,
    )
    # the expert's "go east" parses as valid, but the env's info says invalid
    assert [t.valid for t in out[1].turns] == [False, False]


def test_a_continuation_winning_on_its_last_allowed_turn_is_terminated_not_truncated():
    env_id = register_corridor()
    parents = _collect(env_id, ExpertPolicy(), [0], 1, max_turns=4)  # wins on turn 4
    out, _ = branch_rollouts(
        list(parents),
        ExpertPolicy(),
        BranchConfig(mode="tree", k=1, turns=[1]),
        env_id=env_id,
        prompt_format=WINDOW,
        split="train",
        max_turns=4,
    )
    [continuation] = out[1:]
    # from square 1 the door is 3 steps away, the continuation's whole budget
    assert len(continuation) == 4
    assert (continuation.success, continuation.terminated, continuation.truncated) == (
        True,
        True,
        False,
    )


def test_tree_branch_points_skip_failed_episodes_and_continuations():
    failed = _with_logprobs([-1.0], [-1.0])
    failed.failed = True
    continuation = _with_logprobs([-1.0], [-1.0])
    continuation.metadata.update(branch_prefix_turns=1, branch_parent=2)
    sampled = _with_logprobs([-1.0], [-1.0])
    branch = BranchConfig(mode="tree", turns=[1], per_group=1)
    assert branch_points([failed, continuation, sampled], branch) == [(2, 1)]


class _SplitCorridor(DetourCorridor):
    """The corridor one square longer on its ``test`` split."""

    def __init__(self, split: str = "train", length: int = 4, max_steps: int = 12) -> None:
        super().__init__(length + (split == "test"), max_steps)


def test_continuations_play_in_envs_of_the_rollouts_split_and_kwargs():
    env_id = _register("tests/SplitCorridor-v0", _SplitCorridor)
    envs = make_envs(env_id, 1, split="test", length=1)  # 2 squares to the door
    episodes = collect_episodes(
        envs,
        ExpertPolicy(),
        group_tasks([0], 1, split="test"),
        env_id=env_id,
        prompt_format=WINDOW,
    )
    assert len(episodes[0]) == 2
    _, cost = branch_rollouts(
        episodes,
        ExpertPolicy(),
        BranchConfig(mode="vine", k=1),
        env_id=env_id,
        prompt_format=WINDOW,
        split="test",
        env_kwargs={"length": 1},
    )
    # from s_0 and s_1 the expert walks 2 and 1 steps (a longer corridor would take more)
    assert cost.env_steps == 3


class _Flyer:
    """Answers "fly", which no corridor accepts."""

    require_tags = False

    def generate(self, prompts, admissible_actions=None, envs=None):
        return [Generation(text="fly") for _ in prompts]


PENALISED = PromptFormat(require_tags=False, invalid_penalty=0.25)


def test_vine_continuations_pay_the_invalid_response_penalty():
    env_id = register_corridor()
    episodes = _collect(env_id, ExpertPolicy(), [0], 1, max_turns=2)
    out, _ = branch_rollouts(
        episodes,
        _Flyer(),
        BranchConfig(mode="vine", k=1),
        env_id=env_id,
        prompt_format=PENALISED,
        max_turns=2,
    )
    # 2 and 1 invalid turns from s_0 and s_1, 0.25 each
    assert [t.mc_value for t in out[0].turns] == [-0.5, -0.25]


def test_tree_continuation_turns_pay_the_invalid_response_penalty():
    env_id = register_corridor()
    parents = _collect(env_id, ExpertPolicy(), [0], 1, max_turns=2)
    out, _ = branch_rollouts(
        list(parents),
        _Flyer(),
        BranchConfig(mode="tree", k=1, turns=[0]),
        env_id=env_id,
        prompt_format=PENALISED,
        split="train",
        max_turns=2,
    )
    assert [t.reward for t in out[1].turns] == [-0.25, -0.25]


class _PromptRecorder(ExpertPolicy):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[list[str]] = []

    def generate(self, prompts, admissible_actions=None, envs=None):
        self.calls.append(list(prompts))
        return super().generate(prompts, admissible_actions, envs)


def test_a_vine_continuation_from_s_t_sees_the_parents_history_before_t():
    env_id = register_corridor()
    episodes = _collect(env_id, ExpertPolicy(), [0], 1, max_turns=3)
    policy = _PromptRecorder()
    branch_rollouts(
        episodes,
        policy,
        BranchConfig(mode="vine", k=1),
        env_id=env_id,
        prompt_format=WINDOW,
        max_turns=3,
    )
    # the first step of the continuations from s_0, s_1, s_2 (all in one batch)
    assert policy.calls[0] == [turn.prompt for turn in episodes[0].turns]
