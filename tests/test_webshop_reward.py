"""WebShop's reward (arXiv 2207.01206, Eq. 1) on hand-worked purchases.

The goal in every case: a snack bar that is gluten free and low sugar, flavor honey, size
pack of 12, price lower than 30.00 dollars. |U_att| = 2, |U_opt| = 2, so the denominator is
2 + 2 + 1 = 5.
"""

import pytest

from creditgym.envs.webshop.reward import type_reward, webshop_reward

GOAL = dict(
    goal_type="snack bar",
    goal_attributes=("gluten free", "low sugar"),
    goal_options=(("flavor", "honey"), ("size", "pack of 12")),
    price_upper=30.0,
)
PERFECT = dict(
    bought_type="snack bar",
    bought_attributes=("gluten free", "low sugar", "organic"),
    chosen_options={"flavor": "honey", "size": "pack of 12"},
    price=24.99,
)


def reward(**changes) -> float:
    return webshop_reward(**GOAL, **(PERFECT | changes)).reward


def test_everything_matched_earns_one():
    assert reward() == 1.0  # (2 + 2 + 1) / 5


def test_one_of_two_attributes_missing():
    assert reward(bought_attributes=("gluten free", "organic")) == pytest.approx(
        4 / 5
    )  # (1 + 2 + 1) / 5


def test_wrong_option_value_loses_that_option():
    assert reward(chosen_options={"flavor": "honey", "size": "pack of 6"}) == pytest.approx(4 / 5)


def test_unchosen_option_counts_as_unmatched():
    assert reward(chosen_options={"size": "pack of 6"}) == pytest.approx(3 / 5)  # (2 + 0 + 1) / 5


def test_price_over_the_bound_loses_the_price_term():
    assert reward(price=31.99) == pytest.approx(4 / 5)  # (2 + 2 + 0) / 5


def test_price_equal_to_the_bound_is_within_it():
    assert reward(price=30.0) == 1.0


def test_wrong_type_sharing_no_word_earns_zero():
    details = webshop_reward(**GOAL, **(PERFECT | {"bought_type": "potato chips"}))
    assert (details.r_type, details.title_score, details.reward) == (0.0, 0.0, 0.0)


def test_other_type_sharing_a_word_gets_half_type_credit():
    # "protein bar" for "snack bar": title_score = |{bar}| / |{snack, bar}| = 0.5 -> r_type = 0.5
    details = webshop_reward(**GOAL, **(PERFECT | {"bought_type": "protein bar"}))
    assert (details.r_type, details.title_score) == (0.5, 0.5)
    assert details.reward == 0.5  # 0.5 * 5 / 5


def test_type_factor_multiplies_the_partial_score():
    # 0.5 * (1 + 1 + 0) / 5
    assert reward(
        bought_type="protein bar",
        bought_attributes=("gluten free",),
        chosen_options={"flavor": "honey"},
        price=45.99,
    ) == pytest.approx(0.2)


def test_goal_without_options_has_denominator_attributes_plus_one():
    details = webshop_reward(
        goal_type="lip balm",
        goal_attributes=("vegan",),
        goal_options=(),
        price_upper=10.0,
        bought_type="lip balm",
        bought_attributes=("vegan", "oil free"),
        chosen_options={},
        price=12.99,
    )
    assert details.reward == 0.5  # (1 + 0 + 0) / (1 + 0 + 1)


def test_type_reward_thresholds():
    assert type_reward("snack bar", "snack bar") == (1.0, 1.0)
    assert type_reward("eyeshadow palette", "eye cream") == (0.0, 0.0)
    # three goal words, one shared: title_score 1/3 >= 0.1, so the other-type credit 0.5 stays
    assert type_reward("hair mask", "over ear mask") == (0.5, pytest.approx(1 / 3))


def test_details_report_each_term():
    details = webshop_reward(
        **GOAL, **(PERFECT | {"price": 31.99, "chosen_options": {"flavor": "honey"}})
    )
    assert details.as_dict() == {
        "reward": pytest.approx(3 / 5),
        "r_type": 1.0,
        "title_score": 1.0,
        "attributes_matched": 2,
        "attributes_wanted": 2,
        "options_matched": 1,
        "options_wanted": 2,
        "price_ok": False,
    }
