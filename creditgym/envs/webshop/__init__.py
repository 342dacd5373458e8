"""WebShop-style shopping: search a generated catalog, open items, choose options, buy.

Importing this package registers the presets:

* ``creditgym/WebShopEasy-v0``: 500 products, 2 attributes each, one option kind with 2-3
  values, instructions naming 1 attribute, 5 results per page, 10 steps (the expert needs 4).
  Small enough for a tiny model trained from scratch on CPU.
* ``creditgym/WebShop-v0``: 10,000 products, instructions naming 1-3 attributes and up to two
  option values, 15 steps as in WebShop.
* ``creditgym/WebShop100k-v0``: as WebShop-v0 over 100,000 products.

The first use of a catalog generates it and builds its BM25 index (about a second for 10k
products, six for 100k), both cached on disk for later runs.
"""

from creditgym.envs.registry import register
from creditgym.envs.webshop.env import WebShopEnv

__all__ = ["WebShopEnv"]

_ENTRY_POINT = "creditgym.envs.webshop.env:WebShopEnv"

register(
    "creditgym/WebShopEasy-v0",
    _ENTRY_POINT,
    description="WebShop-style shopping, easy: 500 products, 1 attribute, 1 option, 10 steps.",
    n_products=500,
    attributes_per_product=2,
    option_kinds=1,
    min_option_values=2,
    max_option_values=3,
    goal_attributes=(1, 1),
    results_per_page=5,
    max_steps=10,
)
register(
    "creditgym/WebShop-v0",
    _ENTRY_POINT,
    description="WebShop-style shopping: find and buy what an instruction asks for (10k products).",
    n_products=10_000,
    max_steps=15,
)
register(
    "creditgym/WebShop100k-v0",
    _ENTRY_POINT,
    description="WebShop-style shopping over a 100k-product catalog.",
    n_products=100_000,
    max_steps=15,
)
