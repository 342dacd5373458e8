"""The credit API: shapers and estimators picked by name, options checked, context passed on."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import episode
from omegaconf import OmegaConf

from creditgym.credit import (
    CreditConfigError,
    CreditContext,
    check_credit_config,
    compute_advantages,
    list_estimators,
    list_shapers,
    register_estimator,
    register_shaper,
    shape_rewards,
)


@register_estimator("test_last_turn_only")
def last_turn_only(episodes, turn_rewards, *, value: float = 1.0):
    """A user's estimator: `value` on each episode's last turn, 0 elsewhere."""
    out = []
    for rewards in turn_rewards:
        advantage = np.zeros(len(rewards))
        advantage[-1:] = value
        out.append(advantage)
    return out


@register_shaper("test_bonus")
def bonus_from_context(episodes, context, *, per_turn: bool = False):
    """A user's shaper reading an outside value from the context."""
    bonus = context.require("bonus", needed_by="shaper 'test_bonus'")
    return [
        np.full(len(e.turns), bonus) if per_turn else np.eye(1, len(e.turns), 0)[0] * bonus
        for e in episodes
    ]


def test_built_ins_are_registered():
    assert {"grpo", "gigpo"} <= set(list_estimators())
    assert "env" in list_shapers()


def test_user_estimator_is_picked_by_name_with_its_options():
    episodes = [episode([0, 0, 1]), episode([1])]
    advantages = compute_advantages(
        episodes, estimator={"name": "test_last_turn_only", "value": 2.5}
    )
    assert [a.tolist() for a in advantages] == [[0.0, 0.0, 2.5], [2.5]]


def test_shaper_outputs_are_summed():
    episodes = [episode([1, 2]), episode([3])]
    rewards = shape_rewards(episodes, ["env", {"name": "env", "scale": 2.0}])
    assert [r.tolist() for r in rewards] == [[3.0, 6.0], [9.0]]


def test_shaper_gets_outside_things_through_the_context():
    episodes = [episode([0, 0]), episode([0])]
    context = CreditContext(extras={"bonus": 0.5})
    rewards = shape_rewards(episodes, [{"name": "test_bonus", "per_turn": True}], context)
    assert [r.tolist() for r in rewards] == [[0.5, 0.5], [0.5]]


def test_shaper_missing_its_context_says_what_to_pass():
    with pytest.raises(
        ValueError, match=r"needs `bonus`.*CreditContext\(extras=\{'bonus': \.\.\.\}\)"
    ):
        shape_rewards([episode([0])], ["test_bonus"])


def test_shapers_never_see_failed_episodes_which_get_zero_rewards():
    seen = []

    @register_shaper("test_spy")
    def spy(episodes, context):
        seen.extend(episodes)
        return [np.ones(len(e.turns)) for e in episodes]

    ok, crashed = episode([0, 0]), episode([0, 0, 0], failed=True)
    rewards = shape_rewards([crashed, ok], ["test_spy"])
    assert seen == [ok]
    assert [r.tolist() for r in rewards] == [[0.0, 0.0, 0.0], [1.0, 1.0]]


def test_unknown_estimator_lists_the_registered_ones_and_suggests_the_closest():
    with pytest.raises(CreditConfigError) as error:
        compute_advantages([episode([1])], estimator="gipgo")
    message = str(error.value)
    assert "unknown estimator 'gipgo'" in message
    assert "did you mean 'gigpo'" in message
    assert "gigpo, grpo" in message and "register_estimator" in message


def test_unknown_shaper_is_an_error():
    with pytest.raises(CreditConfigError, match=r"unknown shaper 'evn'; did you mean 'env'"):
        compute_advantages([episode([1])], shapers=["evn"])


def test_unknown_option_names_the_option_and_the_valid_ones():
    with pytest.raises(CreditConfigError) as error:
        compute_advantages([episode([1])], estimator={"name": "gigpo", "gama": 0.9})
    message = str(error.value)
    assert "unknown option 'gama' for estimator 'gigpo'; did you mean 'gamma'?" in message
    assert "valid options: gamma, step_weight, normalization, invalid_penalty" in message


def test_unknown_shaper_option_is_an_error():
    with pytest.raises(
        CreditConfigError, match=r"unknown option 'scaling' for shaper 'env'.*valid options: scale"
    ):
        shape_rewards([episode([1])], [{"name": "env", "scaling": 2}])


def test_mapping_without_a_name_is_an_error_showing_the_form():
    with pytest.raises(CreditConfigError, match=r"has no 'name'; write e.g. \{name: gigpo"):
        check_credit_config(estimator={"gamma": 0.9})


def test_empty_shaper_list_is_an_error():
    with pytest.raises(CreditConfigError, match="no turn-reward shapers"):
        check_credit_config(shapers=[], estimator="grpo")


def test_estimator_returning_the_wrong_shape_is_an_error_naming_it():
    @register_estimator("test_bad_shape")
    def bad(episodes, turn_rewards):
        return [np.zeros(1) for _ in episodes]

    with pytest.raises(
        ValueError, match=r"estimator 'test_bad_shape' returned shape \(1,\) for episode 0"
    ):
        compute_advantages([episode([1, 1])], estimator="test_bad_shape")


def test_registering_a_function_with_an_option_lacking_a_default_is_refused():
    with pytest.raises(TypeError, match="need defaults"):
        register_estimator("test_no_default")(lambda episodes, turn_rewards, gamma: [])


def test_config_block_from_yaml_is_accepted_as_is():
    config = OmegaConf.create(
        "credit: {shapers: [env], estimator: {name: gigpo, gamma: 0.95, step_weight: 1.0}}"
    ).credit
    episodes = [episode([0, 1], anchors=["s", "t"]), episode([0, 0], anchors=["s", "u"])]
    advantages = compute_advantages(episodes, shapers=config.shapers, estimator=config.estimator)
    direct = compute_advantages(
        episodes, ["env"], {"name": "gigpo", "gamma": 0.95, "step_weight": 1.0}
    )
    assert np.allclose(np.concatenate(advantages), np.concatenate(direct))
