"""Shopping goals: a target product, the instruction written from it, and train/valid/test splits.

Following WebShop's synthetic goals (``web_agent_site/engine/goal.py``), a goal names the
target's product type, 1-3 of its attributes, one offered value per option kind, and a price
bound drawn the way WebShop draws it: from the next four multiples of $10 above the target's
price, two are sampled and the larger is the bound. Instructions read like WebShop's:

    i need a snack bar that is gluten free and low sugar with flavor: honey, and size:
    pack of 12, and price lower than 30.00 dollars

Splits partition the *target products* (a seeded permutation: 10% test, 10% valid, 80%
train), so no test target is ever a training target. Goal ``k`` of a split is built from the
split's ``k``-th target with its own seeded generator: the same (catalog, split, k) always
gives the same goal.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from creditgym.envs.webshop.catalog import Catalog

__all__ = ["Goal", "SPLITS", "split_targets", "make_goal", "suggested_query", "price_upper_bound"]

SPLITS = ("train", "valid", "test")
_SPLIT_FRACTIONS = {"test": (0.0, 0.1), "valid": (0.1, 0.2), "train": (0.2, 1.0)}
_TEMPLATES = (
    "i need {article}{desc}",
    "i am looking for {article}{desc}",
    "i want to buy {article}{desc}",
    "find me {article}{desc}",
)
NO_PRICE_BOUND = 1_000_000.0


@dataclass(frozen=True)
class Goal:
    """What the shopper wants. ``product`` is the catalog index of the target it was written from;
    any product with the same type, attributes, option values and price in bound earns reward 1."""

    split: str
    index: int
    product: int
    asin: str
    product_type: str
    category_path: tuple[str, str, str]
    attributes: tuple[str, ...]
    options: tuple[tuple[str, str], ...]  # (kind, value) pairs, in the catalog's kind order
    price_upper: float
    instruction: str


@functools.lru_cache(maxsize=32)
def _split_targets(n_products: int, seed: int, split: str) -> np.ndarray:
    order = np.random.default_rng([seed, 7]).permutation(n_products)
    lo, hi = _SPLIT_FRACTIONS[split]
    return order[int(lo * n_products) : int(hi * n_products)]


def split_targets(catalog: Catalog, split: str) -> np.ndarray:
    """Catalog indices of the target products of a split (disjoint across splits)."""
    if split not in SPLITS:
        raise ValueError(f"unknown webshop split {split!r}; expected one of {SPLITS}")
    targets = _split_targets(len(catalog), catalog.params.seed, split)
    if len(targets) == 0:
        raise ValueError(
            f"split {split!r} of a {len(catalog)}-product catalog has no targets; "
            "use a catalog of at least 10 products"
        )
    return targets


def price_upper_bound(price: float, rng: np.random.Generator) -> float:
    """WebShop's bound: the larger of two draws from the next four multiples of 10 above `price`."""
    above = [10.0 * i for i in range(1, 100) if 10.0 * i > price][:4]
    if len(above) < 2:
        return NO_PRICE_BOUND
    return float(max(rng.choice(above, size=2, replace=False)))


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def make_goal(
    catalog: Catalog, split: str, index: int, goal_attributes: tuple[int, int] = (1, 3)
) -> Goal:
    """Goal `index` (taken modulo the split's size) of `split`.

    Args:
        catalog: the products.
        split: "train", "valid" or "test".
        index: which goal; every index >= 0 is valid.
        goal_attributes: (fewest, most) attributes the instruction names.
    """
    targets = split_targets(catalog, split)
    product = int(targets[index % len(targets)])
    rng = np.random.default_rng([catalog.params.seed, SPLITS.index(split), index])

    owned = catalog.attribute_names(product)
    lo, hi = min(goal_attributes[0], len(owned)), min(goal_attributes[1], len(owned))
    n_attributes = int(rng.integers(lo, hi + 1))
    attributes = tuple(
        owned[i] for i in sorted(rng.choice(len(owned), size=n_attributes, replace=False))
    )
    options = tuple(
        (kind, values[int(rng.integers(len(values)))])
        for kind, values in catalog.options(product).items()
    )
    price_upper = price_upper_bound(catalog.price(product), rng)

    product_type = catalog.product_type(product)
    plural = product_type.endswith("s") and not product_type.endswith("ss")
    desc = f"{product_type} that {'are' if plural else 'is'} {_join(list(attributes))}"
    if options:
        desc += " with " + ", and ".join(f"{kind}: {value}" for kind, value in options)
    if price_upper < NO_PRICE_BOUND:
        desc += f", and price lower than {price_upper:.2f} dollars"
    template = _TEMPLATES[int(rng.integers(len(_TEMPLATES)))]
    article = "" if plural else "an " if product_type[0] in "aeiou" else "a "
    return Goal(
        split=split,
        index=index,
        product=product,
        asin=catalog.asin(product),
        product_type=product_type,
        category_path=catalog.category_path(product),
        attributes=attributes,
        options=options,
        price_upper=price_upper,
        instruction=template.format(article=article, desc=desc),
    )


def suggested_query(goal: Goal) -> str:
    """The search the env offers among admissible actions (and the expert types): the
    instruction's key terms, i.e. its attributes, product type and option values."""
    return " ".join([*goal.attributes, goal.product_type, *(value for _, value in goal.options)])
