"""Which envs the tiny model's tokenizer corpus sweeps when no env is named."""

from __future__ import annotations

import gymnasium as gym
import pytest

from creditgym.agents.tokenizer import corpus_env_ids
from creditgym.envs import registry

NAMESPACE = "corpustest"


class _Plain(gym.Env):
    """An env that builds with no arguments."""

    observation_space = gym.spaces.Text(64)
    action_space = gym.spaces.Text(64)


class _NeedsGameFile(gym.Env):
    """An env that, like TextWorld-v0, cannot build without a game file."""

    def __init__(self, game_file: str | None = None) -> None:
        if game_file is None:
            raise ValueError("give a game_file")


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
