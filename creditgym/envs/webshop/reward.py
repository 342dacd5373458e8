"""WebShop's purchase reward (Yao et al. 2022, arXiv 2207.01206, Section 3.2, Eq. 1).

    r = r_type * (|U_att ∩ Y_att| + |U_opt ∩ Y_opt| + 1[y_price <= u_price])
                / (|U_att| + |U_opt| + 1)

U is the goal (attributes U_att, option values U_opt, price bound u_price) and Y the bought
product (its attributes, the options chosen on its item page, its price). The paper's code is
``get_reward`` in ``web_agent_site/engine/goal.py``. Where we differ, and why:

* Attribute match. The code fuzzy-matches each goal attribute against the product's attribute
  list (token-set ratio > 85) and falls back to substring search in title, bullets and
  description. Our products carry exact attribute strings, and their texts mention only their
  own attributes, so an exact set membership gives the same count.
* Option match. The code counts chosen option values found among the goal's values (exact for
  size, fuzzy otherwise), with the same text fallback. We count goal (kind, value) pairs whose
  kind was set to that value; option values never appear in our product texts.
* Type match (``get_type_reward``). The code sets r_type = 1 if the search query matches, or
  two levels of the category path match, or title_score > 0.2; else 0.5; then 0.1 if
  title_score < 0.1 and 0 if title_score == 0, where title_score is the share of the goal
  name's nouns (spaCy) found in the bought name. Our types are exact, so r_type = 1 only for
  the goal's own type and 0.5 for another type (the code would give a near-miss such as
  "protein bar" for "snack bar" full credit); title_score is the share of the goal *type's*
  words in the bought type's words (our type names are the nouns of our titles; brands and
  style words are left out), with the code's 0.1 and 0 thresholds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

__all__ = ["RewardDetails", "type_reward", "webshop_reward", "purchase_reward"]


@dataclass(frozen=True)
class RewardDetails:
    reward: float
    r_type: float
    title_score: float
    attributes_matched: int
    attributes_wanted: int
    options_matched: int
    options_wanted: int
    price_ok: bool

    def as_dict(self) -> dict[str, float | int | bool]:
        return asdict(self)


def type_reward(bought_type: str, goal_type: str) -> tuple[float, float]:
    """(r_type, title_score) of buying a `bought_type` when `goal_type` was asked for."""
    goal_words = set(goal_type.split())
    title_score = len(set(bought_type.split()) & goal_words) / len(goal_words)
    r_type = 1.0 if bought_type == goal_type else 0.5
    if title_score < 0.1:
        r_type = 0.1
    if title_score == 0.0:
        r_type = 0.0
    return r_type, title_score


def webshop_reward(
    *,
    goal_type: str,
    goal_attributes: tuple[str, ...],
    goal_options: tuple[tuple[str, str], ...],
    price_upper: float,
    bought_type: str,
    bought_attributes: tuple[str, ...],
    chosen_options: Mapping[str, str],
    price: float,
) -> RewardDetails:
    """Eq. 1 for one purchase; every argument is a plain value so tests can hand-work cases."""
    r_type, title_score = type_reward(bought_type, goal_type)
    attributes_matched = len(set(goal_attributes) & set(bought_attributes))
    options_matched = sum(chosen_options.get(kind) == value for kind, value in goal_options)
    price_ok = price <= price_upper
    total = (attributes_matched + options_matched + int(price_ok)) / (
        len(goal_attributes) + len(goal_options) + 1
    )
    return RewardDetails(
        reward=r_type * total,
        r_type=r_type,
        title_score=title_score,
        attributes_matched=attributes_matched,
        attributes_wanted=len(goal_attributes),
        options_matched=options_matched,
        options_wanted=len(goal_options),
        price_ok=price_ok,
    )


def purchase_reward(catalog, goal, index: int, chosen_options: Mapping[str, str]) -> RewardDetails:
    """Eq. 1 for buying catalog product `index` with `chosen_options` towards `goal`
    (a `catalog.Catalog` and a `goals.Goal`)."""
    return webshop_reward(
        goal_type=goal.product_type,
        goal_attributes=goal.attributes,
        goal_options=goal.options,
        price_upper=goal.price_upper,
        bought_type=catalog.product_type(index),
        bought_attributes=catalog.attribute_names(index),
        chosen_options=chosen_options,
        price=catalog.price(index),
    )
