"""The registry: creditgym ids in Gymnasium's registry, helpful unknown-id errors, and envs
shipped by other packages (through `creditgym.register` or a `creditgym.envs` entry point)."""

import sys
import textwrap

import gymnasium as gym
import pytest

import creditgym
from creditgym.envs import registry
from creditgym.envs.checks import check_text_env

# A complete third-party text env, written as a user would, in a package of its own.
EXTERNAL_ENV = textwrap.dedent(
    '''
    """A corridor: walk east to the door."""
    import gymnasium as gym
    from creditgym.envs import info as keys
    from creditgym.envs.spaces import text_space


    class CorridorEnv(gym.Env):
        """Walk east along a corridor until you reach the door."""

        def __init__(self, length=3, split="train"):
            self.length = length
            self.observation_space = text_space()
            self.action_space = text_space()

        def _info(self, valid=True, events=()):
            return {
                keys.TASK: "reach the door",
                keys.TASK_TYPE: "corridor",
                keys.ADMISSIBLE_ACTIONS: ["go east", "go west"],
                keys.ANCHOR: self.position,
                keys.WON: self.position == self.length,
                keys.VALID: valid,
                keys.SYMBOLIC_STATE: {"position": float(self.position)},
                keys.EVENTS: list(events),
                "expert_action": "go east",
            }

        def reset(self, seed=None, options=None):
            super().reset(seed=seed)
            self.position = 0
            return f"You are at square 0 of {self.length}.", self._info()

        def step(self, action):
            action = str(action).strip().lower()
            if action not in ("go east", "go west"):
                return "Nothing happens.", 0.0, False, False, self._info(valid=False)
            self.position = max(0, self.position + (1 if action == "go east" else -1))
            won = self.position == self.length
            events = ["reached the door"] if won else []
            obs = f"You are at square {self.position}."
            return obs, float(won), won, False, self._info(events=events)

        def expert_action(self):
            return "go east"


    def register_envs():
        import creditgym
        creditgym.register(
            "thirdparty/Corridor-v0", "corridor_pkg:CorridorEnv", description="walk to the door"
        )
    '''
)


@pytest.fixture
def corridor_package(tmp_path, monkeypatch):
    """An installed-looking package `corridor_pkg` that declares a creditgym.envs entry point."""
    (tmp_path / "corridor_pkg.py").write_text(EXTERNAL_ENV)
    dist_info = tmp_path / "corridor_pkg-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: corridor-pkg\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text(
        "[creditgym.envs]\ncorridor = corridor_pkg:register_envs\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_plugins_loaded", False)
    yield
    registry.unregister("thirdparty/Corridor-v0")
    sys.modules.pop("corridor_pkg", None)


def test_unknown_id_error_lists_the_closest_ids():
    with pytest.raises(gym.error.UnregisteredEnv) as error:
        creditgym.make("creditgym/Housework-v0")
    message = str(error.value)
    assert "unknown env id 'creditgym/Housework-v0'" in message
    assert "did you mean 'creditgym/Household-v0'" in message


def test_builtin_single_agent_envs_are_in_gymnasiums_registry_under_the_creditgym_namespace():
    ids = creditgym.list_envs(namespace="creditgym")
    assert "creditgym/Household-v0" in ids
    assert all(env_id.startswith("creditgym/") for env_id in ids)
    single_agent = [env_id for env_id in ids if not registry.is_multi_agent(env_id)]
    assert "creditgym/HouseholdEasy-v0" in single_agent
    assert isinstance(gym.make("creditgym/HouseholdEasy-v0").unwrapped, gym.Env)
    assert all(env_id in gym.envs.registry for env_id in single_agent)
    assert all(creditgym.describe(env_id) for env_id in ids), (
        "every env needs a one-line description"
    )


def test_an_entry_point_plugin_env_is_found_made_checked_and_evaluated(corridor_package):
    assert "thirdparty/Corridor-v0" in creditgym.list_envs()
    assert creditgym.describe("thirdparty/Corridor-v0") == "walk to the door"
    env = creditgym.make("thirdparty/Corridor-v0", length=2)
    check_text_env(env)

    from creditgym.agents.scripted import ExpertPolicy
    from creditgym.measure.evaluate import evaluate

    (result,) = evaluate(
        ExpertPolicy(), "thirdparty/Corridor-v0", ["train"], episodes=4, env_kwargs={"length": 2}
    )
    assert result.success == 1.0 and result.mean_steps == 2.0


def test_register_in_user_code_with_a_class_entry_point_and_default_kwargs(corridor_package):
    import corridor_pkg

    creditgym.list_envs()  # loads the plugin, which registers the id first
    with pytest.warns(UserWarning, match="replacing the registered env 'thirdparty/Corridor-v0'"):
        creditgym.register("thirdparty/Corridor-v0", corridor_pkg.CorridorEnv, length=5)
    env = creditgym.make("thirdparty/Corridor-v0")
    assert env.unwrapped.length == 5
    assert (
        creditgym.describe("thirdparty/Corridor-v0")
        == "Walk east along a corridor until you reach the door."
    )
    assert creditgym.make("thirdparty/Corridor-v0", length=1).unwrapped.length == 1


def test_a_broken_plugin_warns_with_its_name_and_does_not_break_other_envs(tmp_path, monkeypatch):
    dist_info = tmp_path / "broken_pkg-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-pkg\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text(
        "[creditgym.envs]\nbroken = no_such_module:register\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_plugins_loaded", False)
    with pytest.warns(UserWarning, match="creditgym env plugin 'broken'"):
        ids = creditgym.list_envs()
    assert "creditgym/Household-v0" in ids


def test_eval_splits_come_from_the_env_class_and_default_to_all_seeds():
    assert registry.eval_splits("creditgym/HouseholdEasy-v0") == ["valid_seen", "valid_unseen"]
    assert registry.eval_splits("creditgym/WebShopEasy-v0") == ["valid", "test"]
    assert registry.eval_splits("creditgym/SearchQAEasy-v0") == ["valid", "test"]
    assert registry.eval_splits("creditgym/MiniHackRoom-v0") == ["all"]  # games have no splits
    with pytest.raises(gym.error.UnregisteredEnv):
        registry.eval_splits("creditgym/Nope-v0")


MULTI_AGENT_IDS = [
    "creditgym/CoopHousehold-v0",
    "creditgym/CoopHousehold3-v0",
    "creditgym/MPESpread-v0",
]


@pytest.mark.parametrize("env_id", MULTI_AGENT_IDS)
def test_multi_agent_envs_are_built_by_creditgym_make_and_gymnasium_make_points_there(env_id):
    pytest.importorskip("pettingzoo")
    assert registry.is_multi_agent(env_id)
    from pettingzoo import ParallelEnv

    if env_id.endswith("MPESpread-v0"):
        pytest.importorskip("mpe2")
    assert isinstance(creditgym.make(env_id), ParallelEnv)
    with pytest.raises(gym.error.Error, match=rf"use creditgym.make\('{env_id}'\)"):
        gym.make(env_id)


def test_registering_over_an_existing_id_warns_and_replaces_it():
    from creditgym.envs.household.env import HouseholdEnv

    creditgym.register("thirdparty/Twice-v0", HouseholdEnv, description="first")
    try:
        with pytest.warns(UserWarning, match="replacing the registered env 'thirdparty/Twice-v0'"):
            creditgym.register("thirdparty/Twice-v0", HouseholdEnv, description="second")
        assert creditgym.describe("thirdparty/Twice-v0") == "second"
        assert creditgym.list_envs(namespace="thirdparty").count("thirdparty/Twice-v0") == 1
    finally:
        registry.unregister("thirdparty/Twice-v0")
    assert "thirdparty/Twice-v0" not in creditgym.list_envs()
    assert "thirdparty/Twice-v0" not in gym.envs.registry


def test_a_multi_agent_class_registered_in_user_code_goes_to_creditgyms_registry_only():
    pytest.importorskip("pettingzoo")
    from creditgym.envs.coop.env import CoopHouseholdEnv

    creditgym.register("thirdparty/Team-v0", CoopHouseholdEnv, agents=3, receptacles=5)
    try:
        assert registry.is_multi_agent("thirdparty/Team-v0")
        assert creditgym.make("thirdparty/Team-v0").possible_agents[-1] == "agent_2"
        with pytest.raises(gym.error.Error, match="creditgym.make"):
            gym.make("thirdparty/Team-v0")
    finally:
        registry.unregister("thirdparty/Team-v0")


def test_envs_that_need_an_argument_declare_it():
    assert registry.required_kwargs("creditgym/TextWorld-v0") == ("game_file",)
    assert registry.required_kwargs("creditgym/HouseholdEasy-v0") == ()


def test_make_kwargs_are_checked_against_the_constructor_without_building_the_env():
    registry.check_make_kwargs("creditgym/HouseholdEasy-v0", {"max_steps": 5, "split": "train"})
    with pytest.raises(TypeError, match="takes no keyword argument 'max_step'.*'max_steps'"):
        registry.check_make_kwargs("creditgym/HouseholdEasy-v0", {"max_step": 5})
    with pytest.raises(TypeError, match="'bogus_kw'"):
        registry.check_make_kwargs("creditgym/CoopHousehold-v0", {"bogus_kw": 1})


def test_an_entry_point_naming_a_multi_agent_class_registers_it_without_building_it(
    tmp_path, monkeypatch
):
    pytest.importorskip("pettingzoo")
    dist_info = tmp_path / "team_pkg-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: team-pkg\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text(
        "[creditgym.envs]\nthirdparty/Team-v0 = creditgym.envs.coop.env:CoopHouseholdEnv\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_plugins_loaded", False)
    try:
        assert "thirdparty/Team-v0" in creditgym.list_envs()
        assert registry.is_multi_agent("thirdparty/Team-v0")
        assert creditgym.make("thirdparty/Team-v0").possible_agents == ["agent_0", "agent_1"]
        with pytest.raises(gym.error.Error, match="creditgym.make"):
            gym.make("thirdparty/Team-v0")
    finally:
        registry.unregister("thirdparty/Team-v0")
