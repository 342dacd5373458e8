"""Compute budgets: `train.max_env_steps` and `train.max_policy_tokens` stop a run after the
iteration that reaches them (evaluated and checkpointed like a last iteration), the counters
count only what was played, and resume carries them on."""

import json

import pytest
from conftest import household_config, training_rows

from creditgym.train.checkpoint import TrainerState
from creditgym.train.metric_rows import policy_tokens
from creditgym.train.trainer import train
from creditgym.trajectory import Episode, Turn


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Four iterations with no budget: the counters a budgeted run must stop on."""
    tmp_path = tmp_path_factory.mktemp("budget")
    train(household_config(tmp_path, "reference", "train.iterations=4"))
    return training_rows(tmp_path / "reference")


def _turn(prompt: int, response: int) -> Turn:
    return Turn(observation="o", action="a", prompt_ids=[1] * prompt, response_ids=[2] * response)


def test_policy_tokens_count_prompt_and_response_of_played_turns_only():
    plain = Episode(turns=[_turn(10, 3), _turn(20, 4)])
    # a branch continuation: its first turn is a copy of the parent's, generated once already
    branch = Episode(turns=[_turn(10, 3), _turn(12, 5)], metadata={"branch_prefix_turns": 1})
    assert policy_tokens([plain]) == (10 + 3) + (20 + 4)
    assert policy_tokens([plain, branch]) == 37 + (12 + 5)


def test_counters_grow_every_iteration_by_what_the_batch_played(reference):
    steps = [row["env_steps"] for row in reference]
    tokens = [row["policy_tokens"] for row in reference]
    per_iteration = [row["rollout/policy_tokens"] for row in reference]
    assert all(b > a for a, b in zip([0, *steps], steps))
    # each turn's prompt holds at least the observation: more tokens than env steps
    assert all(t > s for t, s in zip(tokens, steps))
    assert [b - a for a, b in zip([0, *tokens], tokens)] == per_iteration


def test_env_step_budget_stops_after_the_iteration_that_reaches_it(tmp_path, reference):
    budget = reference[1]["env_steps"] + 1  # more than 2 iterations played: the 3rd reaches it
    result = train(
        household_config(tmp_path, "steps", "train.iterations=10", f"train.max_env_steps={budget}")
    )
    assert result.iterations == 3
    assert result.env_steps == reference[2]["env_steps"] >= budget
    assert training_rows(tmp_path / "steps") == reference[:3]  # the budget changes nothing before
    # evaluated and checkpointed as a last iteration (save_every=2 would skip iteration 3)
    assert result.final and result.final[0].agent == "policy @ iteration 3"
    assert result.checkpoint.name == "iter_000003"


def test_policy_token_budget_reached_exactly_stops_there(tmp_path, reference):
    budget = reference[1]["policy_tokens"]
    result = train(
        household_config(
            tmp_path, "tokens", "train.iterations=10", f"train.max_policy_tokens={budget}"
        )
    )
    assert result.iterations == 2
    assert training_rows(tmp_path / "tokens") == reference[:2]


def test_resume_keeps_the_counters_and_a_spent_budget_trains_no_more(tmp_path, reference):
    train(household_config(tmp_path, "resumed", "train.iterations=2"))
    saved = json.loads(
        (tmp_path / "resumed/checkpoints/iter_000002/trainer_state.json").read_text()
    )
    assert saved["policy_tokens"] == reference[1]["policy_tokens"]
    budget = reference[3]["policy_tokens"]
    overrides = ("train.iterations=10", f"train.max_policy_tokens={budget}")
    resumed = train(household_config(tmp_path, "resumed", *overrides))
    assert resumed.iterations == 4
    assert training_rows(tmp_path / "resumed") == reference  # counters continued, not restarted
    again = train(household_config(tmp_path, "resumed", *overrides))
    assert again.iterations == 4 and training_rows(tmp_path / "resumed") == reference


def test_checkpoints_from_before_the_token_counter_resume_at_zero():
    assert TrainerState(**{"iteration": 3, "env_steps": 90}).policy_tokens == 0
