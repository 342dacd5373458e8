"""Which envs the tiny model's tokenizer corpus sweeps when no env is named."""

from __future__ import annotations

import gymnasium as gym
import pytest

from creditgym.envs import registry
from creditgym.train.corpus import corpus_env_ids, env_corpus, tiny_env_corpus

NAMESPACE = "corpustest"


class _Plain(gym.Env):
    """An env that builds with no arguments."""

    observation_space = gym.spaces.Text(64)
    action_space = gym.spaces.Text(64)


class _NeedsGameFile(gym.Env):
    """An env that, like TextWorld-v0, cannot build without a game file."""

    observation_space = gym.spaces.Text(64)
    action_space = gym.spaces.Text(64)

    def __init__(self, game_file: str | None = None) -> None:
        if game_file is None:
            raise ValueError("give a game_file")
        self.game_file = game_file

    def reset(self, *, seed=None, options=None):
        return f"you are in {self.game_file}", {"task": "win", "admissible_actions": ["look"]}

    def step(self, action):
        return "you won", 1.0, True, False, {}


class _NeedsUndeclared(gym.Env):
    """The same, without declaring the requirement at registration."""

    def __init__(self, game_file: str | None = None) -> None:
        if game_file is None:
            raise ValueError("give a game_file")


@pytest.fixture
def three_envs():
    registry.register(f"{NAMESPACE}/Plain-v0", _Plain)
    registry.register(f"{NAMESPACE}/NeedsGameFile-v0", _NeedsGameFile, requires=("game_file",))
    registry.register(f"{NAMESPACE}/NeedsUndeclared-v0", _NeedsUndeclared)
    yield
    for name in ("Plain-v0", "NeedsGameFile-v0", "NeedsUndeclared-v0"):
        registry.unregister(f"{NAMESPACE}/{name}")  # leave the registry as other tests expect


def test_envs_that_need_arguments_are_skipped_with_a_warning_naming_them(three_envs):
    with pytest.warns(UserWarning) as caught:
        assert corpus_env_ids(NAMESPACE) == [f"{NAMESPACE}/Plain-v0"]
    [message] = [str(warning.message) for warning in caught]
    assert f"{NAMESPACE}/NeedsGameFile-v0 (needs game_file)" in message
    assert f"{NAMESPACE}/NeedsUndeclared-v0 (ValueError: give a game_file)" in message


def test_textworld_v0_without_a_game_file_is_not_in_the_sweep():
    with pytest.warns(UserWarning, match="TextWorld-v0"):
        ids = corpus_env_ids("creditgym")
    assert "creditgym/TextWorld-v0" not in ids
    assert "creditgym/HouseholdEasy-v0" in ids


def test_an_env_that_needs_arguments_is_played_with_the_ones_given(three_envs):
    env_id = f"{NAMESPACE}/NeedsGameFile-v0"
    corpus = env_corpus([env_id], episodes_per_env=1, env_kwargs={env_id: {"game_file": "zork"}})
    assert "you are in zork" in corpus


def test_the_tiny_agent_is_cached_per_env_kwargs(three_envs, tmp_path, monkeypatch):
    from creditgym.agents.factory import tiny_agent_dir

    monkeypatch.setenv("CREDITGYM_CACHE", str(tmp_path))
    env_id = f"{NAMESPACE}/NeedsGameFile-v0"
    shape = {"vocab_size": 300, "hidden_size": 16, "num_layers": 1, "num_heads": 2}
    zork, again, other = (
        tiny_agent_dir(tiny_env_corpus([env_id], env_kwargs={env_id: {"game_file": g}}), **shape)
        for g in ("zork", "zork", "anchor")
    )
    assert zork == again != other
    assert (zork / "config.json").exists() and (other / "config.json").exists()
