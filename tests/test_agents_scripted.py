"""Scripted policies, the env corpus, and load_policy, on a small household-like env defined
here."""

import random
import subprocess
import sys

import gymnasium as gym
import pytest

import creditgym
from creditgym.agents import ExpertPolicy, Generation, Policy, RandomPolicy, load_policy
from creditgym.envs import info as keys
from creditgym.envs.spaces import text_space
from creditgym.train.corpus import env_corpus, load_tiny

PLACES = ["countertop 1", "diningtable 1", "fridge 1", "cabinet 2"]
ENV_ID = "agentstest/Fetch-v0"


class FetchEnv(gym.Env):
    """Fetch an apple to the dining table; ALFWorld-style text."""

    def __init__(self) -> None:
        self.observation_space = text_space()
        self.action_space = text_space()

    def _info(self, valid: bool = True) -> dict:
        return {
            keys.TASK: "put a apple in diningtable 1.",
            keys.ADMISSIBLE_ACTIONS: self._admissible(),
            keys.ANCHOR: (self.here, self.apple),
            keys.WON: self.apple == "diningtable 1",
            keys.VALID: valid,
            keys.SYMBOLIC_STATE: {},
            keys.EVENTS: [],
        }

    def _admissible(self) -> list[str]:
        actions = [f"go to {place}" for place in PLACES if place != self.here]
        if self.apple == self.here:
            actions.append(f"take apple 1 from {self.here}")
        if self.apple == "hand" and self.here:
            actions.append(f"move apple 1 to {self.here}")
        return actions + ["look"]

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.here, self.apple = "", random.Random(seed).choice(PLACES[2:])
        return "You are in the middle of a room.", self._info()

    def step(self, action):
        if action not in self._admissible():
            return "Nothing happens.", 0.0, False, False, self._info(valid=False)
        if action.startswith("go to "):
            self.here = action[len("go to ") :]
            seen = " you see a apple 1." if self.apple == self.here else " you see nothing."
            observation = f"You arrive at {self.here}. On the {self.here},{seen}"
        elif action.startswith("take "):
            self.apple, observation = "hand", f"You pick up the apple 1 from the {self.here}."
        elif action.startswith("move "):
            self.apple, observation = self.here, f"You move the apple 1 to the {self.here}."
        else:
            observation = f"You are at {self.here or 'the middle of a room'}."
        won = self.apple == "diningtable 1"
        return observation, float(won), won, False, self._info()

    def expert_action(self) -> str:
        if self.apple == "hand":
            return (
                "move apple 1 to diningtable 1"
                if self.here == "diningtable 1"
                else "go to diningtable 1"
            )
        return (
            f"take apple 1 from {self.apple}" if self.here == self.apple else f"go to {self.apple}"
        )


class NoExpertEnv(FetchEnv):
    expert_action = None


creditgym.register(ENV_ID, FetchEnv)


def play(policy, env, steps=10):
    observation, info = env.reset(seed=1)
    for _ in range(steps):
        [generation] = policy.generate([observation], [info[keys.ADMISSIBLE_ACTIONS]], [env])
        observation, _, terminated, _, info = env.step(generation.text)
        if terminated:
            return info[keys.WON]
    return False


def test_expert_solves_the_task():
    assert play(ExpertPolicy(), creditgym.make(ENV_ID))


def test_expert_on_an_env_without_expert_is_a_clear_error():
    with pytest.raises(TypeError, match="NoExpertEnv has no expert_action"):
        ExpertPolicy().generate(["obs"], envs=[NoExpertEnv()])


def test_expert_needs_the_envs():
    with pytest.raises(ValueError, match="needs the env of every prompt"):
        ExpertPolicy().generate(["obs"])


def test_random_policy_picks_admissible_actions_reproducibly():
    actions = [["a", "b", "c"], ["d", "e"]] * 20
    first = [g.text for g in RandomPolicy(seed=4).generate(["p"] * 40, actions)]
    second = [g.text for g in RandomPolicy(seed=4).generate(["p"] * 40, actions)]
    assert first == second
    assert all(text in options for text, options in zip(first, actions))
    assert set(first[::2]) == {"a", "b", "c"}


def test_random_policy_needs_admissible_actions():
    with pytest.raises(ValueError, match="needs admissible_actions"):
        RandomPolicy().generate(["p"])


@pytest.mark.parametrize("policy", [ExpertPolicy(), RandomPolicy()])
def test_scripted_policies_have_no_logprobs(policy):
    assert isinstance(policy, Policy)
    with pytest.raises(NotImplementedError, match="no token probabilities"):
        policy.logprobs(["p"], ["a"])


def test_env_corpus_holds_tasks_observations_actions_and_both_prompt_templates():
    corpus = env_corpus([ENV_ID], episodes_per_env=4)
    assert "put a apple in diningtable 1." in corpus
    assert "move apple 1 to diningtable 1" in corpus  # only the expert gets this far reliably
    assert any(text.startswith("task: ") and text.endswith("action:") for text in corpus)
    assert any("<action> </action>" in text for text in corpus)


def test_env_corpus_is_deterministic():
    assert env_corpus([ENV_ID], episodes_per_env=3, seed=5) == env_corpus(
        [ENV_ID], episodes_per_env=3, seed=5
    )


def test_load_policy_builds_scripted_policies():
    assert isinstance(load_policy("expert"), ExpertPolicy)
    assert load_policy("random", seed=3).seed == 3


def test_load_policy_unknown_spec_lists_the_choices():
    with pytest.raises(
        ValueError,
        match=r"unknown policy 'tinny'; did you mean 'tiny'\? choose one of expert, random",
    ):
        load_policy("tinny")


def test_load_policy_tiny_is_built_once_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("CREDITGYM_CACHE", str(tmp_path))
    options = {"vocab_size": 300, "episodes_per_env": 4, "hidden_size": 32, "num_layers": 1}
    policy = load_tiny([ENV_ID], device="cpu", **options)
    [cached] = tmp_path.glob("tiny-*")
    modified = (cached / "config.json").stat().st_mtime_ns
    again = load_tiny([ENV_ID], device="cpu", **options)
    assert list(tmp_path.glob("tiny-*")) == [cached]
    assert (cached / "config.json").stat().st_mtime_ns == modified
    assert policy.constrained and again.model.config.hidden_size == 32
    env = creditgym.make(ENV_ID)
    observation, info = env.reset(seed=1)
    [generation] = policy.generate([observation], [info[keys.ADMISSIBLE_ACTIONS]], [env])
    assert generation.text in info[keys.ADMISSIBLE_ACTIONS]  # constrained: always admissible
    assert env.step(generation.text)[4][keys.VALID]


def test_load_policy_routes_openai_specs_to_the_openai_policy(monkeypatch):
    class FakeOpenAIPolicy:
        def __init__(self, base_url, **kwargs):
            self.base_url, self.kwargs = base_url, kwargs

    module = type(sys)("creditgym.agents.openai_client.policy")
    module.OpenAIPolicy = FakeOpenAIPolicy
    monkeypatch.setitem(sys.modules, "creditgym.agents.openai_client.policy", module)
    policy = load_policy("openai:http://localhost:8000/v1", model="m")
    assert (policy.base_url, policy.kwargs) == ("http://localhost:8000/v1", {"model": "m"})


def test_generation_of_scripted_policies_is_bare_text():
    [generation] = RandomPolicy().generate(["p"], [["look"]])
    assert generation == Generation(text="look")


def test_importing_creditgym_agents_does_not_import_torch():
    code = (
        "import sys, creditgym.agents; print('torch' in sys.modules, 'transformers' in sys.modules)"
    )
    assert subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split() == [
        "False",
        "False",
    ]
