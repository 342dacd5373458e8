"""The product catalog: a seeded generator, a disk cache and text rendering of products.

A catalog is a handful of numpy arrays of codes into the tables of `world.py` (type, brand,
attributes, offered option values, price), one row per product, so generating a million
products is a few vectorised draws. Text (title, features, description) is rendered from the
codes when a page needs it; nothing per product is stored as a string.

The arrays are written once to ``$CREDITGYM_CACHE/webshop/catalog-<key>.npz`` (default cache
``~/.cache/creditgym``), where ``key`` hashes the generator parameters, the generator version and
the world tables, and reused by every later process.
"""

from __future__ import annotations

import functools
import hashlib
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from creditgym.cache import cache_root
from creditgym.envs.webshop.world import BRANDS, CATEGORIES, world_fingerprint

__all__ = [
    "CatalogParams",
    "Catalog",
    "Product",
    "generate_catalog",
    "load_catalog",
    "cache_root",
    "TYPE_NAMES",
    "ATTRIBUTE_NAMES",
]

#: Bump when the generator's draws change, so stale caches are not reused.
GENERATOR_VERSION = 1

# Flat tables over the nested world: global type / attribute ids index these.
TYPE_NAMES: tuple[str, ...] = tuple(
    t for c in CATEGORIES for _, _, ts in c.subcategories for t in ts
)
TYPE_CATEGORY = np.array(
    [ci for ci, c in enumerate(CATEGORIES) for _, _, ts in c.subcategories for _ in ts]
)
TYPE_SUBCATEGORY: tuple[str, ...] = tuple(
    s for c in CATEGORIES for s, _, ts in c.subcategories for _ in ts
)
TYPE_BASE_PRICE = np.array([p for c in CATEGORIES for _, p, ts in c.subcategories for _ in ts])
ATTRIBUTES_PER_CATEGORY = len(CATEGORIES[0].attributes)
ATTRIBUTE_NAMES: tuple[str, ...] = tuple(a for c in CATEGORIES for a in c.attributes)
MAX_OPTION_VALUES = max(len(v) for c in CATEGORIES for v in c.option_values)

_ASIN_MODULUS = 36**8
_ASIN_MULTIPLIER = 2654435761  # coprime with 36, so index -> ASIN is a bijection
_ASIN_OFFSET = 1_234_567_890
_ASIN_INVERSE = pow(_ASIN_MULTIPLIER, -1, _ASIN_MODULUS)
_BASE36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"

_FEATURE_TEMPLATES = (
    "{attr}: built for everyday use and made to last",
    "{attr}: a favourite of reviewers who asked for exactly this",
    "{attr}: tested by our team before it ships",
    "{attr}: one of the reasons customers come back",
)
_DESCRIPTION_TEMPLATES = (
    "This {style} {type} from {brand} belongs to our {subcategory} range. {feature_line}",
    "Meet the {brand} {type}: a {style} pick in {subcategory}. {feature_line}",
    "{brand} designed this {type} for people who want something {style}. {feature_line}",
)


@dataclass(frozen=True)
class CatalogParams:
    """Parameters of the generator; together with the world tables they fix the catalog.

    Args:
        n_products: number of products (10,000 as WebShop's small setting; up to 1,000,000).
        seed: seed of every draw.
        attributes_per_product: distinct attributes each product has (from its category's 16).
        option_kinds: option kinds each product offers (0, 1 or 2; e.g. colour and size).
        min_option_values: fewest values offered per option kind.
        max_option_values: most values offered per option kind (<= 12).
    """

    n_products: int = 10_000
    seed: int = 0
    attributes_per_product: int = 3
    option_kinds: int = 2
    min_option_values: int = 2
    max_option_values: int = 5

    def __post_init__(self) -> None:
        problems = []
        if not 1 <= self.n_products <= 10_000_000:
            problems.append(f"n_products={self.n_products} (expected 1..10,000,000)")
        if not 1 <= self.attributes_per_product <= ATTRIBUTES_PER_CATEGORY:
            problems.append(
                f"attributes_per_product={self.attributes_per_product} "
                f"(expected 1..{ATTRIBUTES_PER_CATEGORY})"
            )
        if self.option_kinds not in (0, 1, 2):
            problems.append(f"option_kinds={self.option_kinds} (expected 0, 1 or 2)")
        if not 1 <= self.min_option_values <= self.max_option_values <= MAX_OPTION_VALUES:
            problems.append(
                f"min_option_values={self.min_option_values}, "
                f"max_option_values={self.max_option_values} "
                f"(expected 1 <= min <= max <= {MAX_OPTION_VALUES})"
            )
        if problems:
            raise ValueError("invalid webshop catalog parameters: " + "; ".join(problems))

    def key(self) -> str:
        """Cache key: these parameters, the generator version and the world tables."""
        text = repr((GENERATOR_VERSION, world_fingerprint(), sorted(asdict(self).items())))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Product:
    """One product, rendered from the catalog's codes (what an item page shows)."""

    index: int
    asin: str
    product_type: str
    category_path: tuple[str, str, str]  # (category, subcategory, type), WebShop's product_category
    title: str
    price: float
    attributes: tuple[str, ...]
    options: dict[str, tuple[str, ...]]  # option kind -> offered values, in catalog order
    description: str
    features: tuple[str, ...]


class Catalog:
    """The generated products as arrays (n = number of products):

    ``type_id (n,)``, ``brand (n,)``, ``style (n,)``, ``attributes (n, attributes_per_product)``
    global attribute ids, ``option_mask (n, 2)`` bit v set when value v of option kind k is
    offered (0 when the product lacks kind k), ``price_cents (n,)``.
    """

    def __init__(self, params: CatalogParams, arrays: dict[str, np.ndarray]):
        self.params = params
        self.type_id = arrays["type_id"]
        self.brand = arrays["brand"]
        self.style = arrays["style"]
        self.attributes = arrays["attributes"]
        self.option_mask = arrays["option_mask"]
        self.price_cents = arrays["price_cents"]

    def __len__(self) -> int:
        return len(self.type_id)

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "type_id": self.type_id,
            "brand": self.brand,
            "style": self.style,
            "attributes": self.attributes,
            "option_mask": self.option_mask,
            "price_cents": self.price_cents,
        }

    # --- ids ---------------------------------------------------------------------------------
    def asin(self, index: int) -> str:
        """Amazon-style id of a product, e.g. ``B0K3X9Q2ZL``; a bijection of its index."""
        code = (index * _ASIN_MULTIPLIER + _ASIN_OFFSET) % _ASIN_MODULUS
        digits = []
        for _ in range(8):
            code, digit = divmod(code, 36)
            digits.append(_BASE36[digit])
        return "B0" + "".join(reversed(digits))

    def index_of(self, asin: str) -> int | None:
        """Product index of an id (any case), or None when no product has it."""
        asin = asin.strip().upper()
        if (
            len(asin) != 10
            or not asin.startswith("B0")
            or any(ch not in _BASE36 for ch in asin[2:])
        ):
            return None
        index = (int(asin[2:], 36) - _ASIN_OFFSET) * _ASIN_INVERSE % _ASIN_MODULUS
        return index if index < len(self) else None

    # --- fields ------------------------------------------------------------------------------
    def product_type(self, index: int) -> str:
        return TYPE_NAMES[self.type_id[index]]

    def category_path(self, index: int) -> tuple[str, str, str]:
        type_id = self.type_id[index]
        return (
            CATEGORIES[TYPE_CATEGORY[type_id]].name,
            TYPE_SUBCATEGORY[type_id],
            TYPE_NAMES[type_id],
        )

    def price(self, index: int) -> float:
        return int(self.price_cents[index]) / 100

    def attribute_names(self, index: int) -> tuple[str, ...]:
        return tuple(ATTRIBUTE_NAMES[a] for a in self.attributes[index])

    def options(self, index: int) -> dict[str, tuple[str, ...]]:
        category = CATEGORIES[TYPE_CATEGORY[self.type_id[index]]]
        offered = {}
        for kind, values, mask in zip(
            category.option_kinds, category.option_values, self.option_mask[index]
        ):
            if mask:
                offered[kind] = tuple(v for bit, v in enumerate(values) if int(mask) >> bit & 1)
        return offered

    def title(self, index: int) -> str:
        attributes = self.attribute_names(index)[:2]
        style = CATEGORIES[TYPE_CATEGORY[self.type_id[index]]].styles[self.style[index]]
        name = f"{BRANDS[self.brand[index]]} {style} {self.product_type(index)}".title()
        return f"{name} - {', '.join(a.title() for a in attributes)}"

    def features(self, index: int) -> tuple[str, ...]:
        return tuple(
            _FEATURE_TEMPLATES[(index + k) % len(_FEATURE_TEMPLATES)].format(attr=attr.upper())
            for k, attr in enumerate(self.attribute_names(index))
        )

    def description(self, index: int) -> str:
        category, subcategory, product_type = self.category_path(index)
        style = CATEGORIES[TYPE_CATEGORY[self.type_id[index]]].styles[self.style[index]]
        attributes = self.attribute_names(index)
        feature_line = (
            f"It is {', '.join(attributes[:-1])} and {attributes[-1]}."
            if len(attributes) > 1
            else f"It is {attributes[0]}."
        )
        template = _DESCRIPTION_TEMPLATES[index % len(_DESCRIPTION_TEMPLATES)]
        return template.format(
            style=style,
            type=product_type,
            brand=BRANDS[self.brand[index]],
            subcategory=subcategory,
            feature_line=feature_line,
        )

    def product(self, index: int) -> Product:
        return Product(
            index=index,
            asin=self.asin(index),
            product_type=self.product_type(index),
            category_path=self.category_path(index),
            title=self.title(index),
            price=self.price(index),
            attributes=self.attribute_names(index),
            options=self.options(index),
            description=self.description(index),
            features=self.features(index),
        )


def generate_catalog(params: CatalogParams) -> Catalog:
    """Draw a catalog with numpy (about a second per million products)."""
    rng = np.random.default_rng([params.seed, GENERATOR_VERSION])
    n = params.n_products
    type_id = rng.integers(len(TYPE_NAMES), size=n).astype(np.int16)
    category = TYPE_CATEGORY[type_id]

    # Distinct attributes per product: the first columns of a random permutation of 16 slots.
    local = np.argsort(rng.random((n, ATTRIBUTES_PER_CATEGORY)), axis=1)[
        :, : params.attributes_per_product
    ]
    attributes = (category[:, None] * ATTRIBUTES_PER_CATEGORY + local).astype(np.int16)

    # Offered option values: a random subset (of random size) of each kind's values, as bits.
    n_values = np.array([[len(v) for v in c.option_values] for c in CATEGORIES])[category]  # (n, 2)
    option_mask = np.zeros((n, 2), dtype=np.uint16)
    for kind in range(params.option_kinds):
        keys = rng.random((n, MAX_OPTION_VALUES))
        keys[np.arange(MAX_OPTION_VALUES)[None, :] >= n_values[:, kind, None]] = (
            np.inf
        )  # absent values
        ranks = np.argsort(np.argsort(keys, axis=1), axis=1)
        count = rng.integers(params.min_option_values, params.max_option_values + 1, size=n)
        chosen = ranks < np.minimum(count, n_values[:, kind])[:, None]
        option_mask[:, kind] = (chosen * (1 << np.arange(MAX_OPTION_VALUES))).sum(axis=1)

    # Prices: lognormal around the subcategory's base price, ending in .99 as shops like.
    dollars = TYPE_BASE_PRICE[type_id] * rng.lognormal(0.0, 0.45, size=n)
    price_cents = (np.clip(np.floor(dollars), 1, 899) * 100 + 99).astype(np.int32)

    arrays = {
        "type_id": type_id,
        "brand": rng.integers(len(BRANDS), size=n).astype(np.int16),
        "style": rng.integers(len(CATEGORIES[0].styles), size=n).astype(np.int8),
        "attributes": attributes,
        "option_mask": option_mask,
        "price_cents": price_cents,
    }
    return Catalog(params, arrays)


def atomic_save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write to a temporary file and rename, so concurrent processes never read half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp.npz")
    os.close(handle)
    try:
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load_catalog(params: CatalogParams, cache_dir: str | os.PathLike | None = None) -> Catalog:
    """The catalog for `params`, from the disk cache (generated and written on first use)."""
    root = Path(cache_dir) if cache_dir is not None else cache_root()
    return _load_catalog(params, str(root))


@functools.lru_cache(maxsize=8)
def _load_catalog(params: CatalogParams, root: str) -> Catalog:
    path = Path(root) / "webshop" / f"catalog-{params.key()}.npz"
    if path.exists():
        with np.load(path) as stored:
            return Catalog(params, {name: stored[name] for name in stored.files})
    catalog = generate_catalog(params)
    atomic_save_npz(path, catalog.arrays())
    return catalog
