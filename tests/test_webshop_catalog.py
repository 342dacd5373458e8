"""The catalog generator and its disk cache, goals and splits, and the BM25 search."""

import numpy as np
import pytest

from creditgym.envs.webshop import catalog as catalog_module
from creditgym.envs.webshop import search as search_module
from creditgym.envs.webshop.catalog import CatalogParams, generate_catalog, load_catalog
from creditgym.envs.webshop.goals import (
    SPLITS,
    make_goal,
    price_upper_bound,
    split_targets,
    suggested_query,
)
from creditgym.envs.webshop.search import (
    MAX_RESULTS,
    load_search_engine,
    product_document,
    tokenize,
)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("webshop-cache"))


@pytest.fixture(scope="module")
def catalog(cache_dir):
    return load_catalog(CatalogParams(n_products=2000, seed=3), cache_dir)


def test_same_parameters_generate_the_same_catalog():
    a, b = (
        generate_catalog(CatalogParams(n_products=500)),
        generate_catalog(CatalogParams(n_products=500)),
    )
    assert all(np.array_equal(a.arrays()[k], b.arrays()[k]) for k in a.arrays())
    c = generate_catalog(CatalogParams(n_products=500, seed=1))
    assert not np.array_equal(a.type_id, c.type_id)


def test_catalog_is_written_once_and_read_back(tmp_path, monkeypatch):
    monkeypatch.setenv("CREDITGYM_CACHE", str(tmp_path))
    params = CatalogParams(n_products=321, seed=9)
    first = load_catalog(params)
    files = list((tmp_path / "webshop").glob("catalog-*.npz"))
    assert [f.name for f in files] == [f"catalog-{params.key()}.npz"]
    catalog_module._load_catalog.cache_clear()
    monkeypatch.setattr(
        catalog_module, "generate_catalog", lambda p: pytest.fail("regenerated a cached catalog")
    )
    again = load_catalog(params)
    assert np.array_equal(first.price_cents, again.price_cents) and np.array_equal(
        first.option_mask, again.option_mask
    )


def test_cache_key_depends_on_every_parameter():
    base = CatalogParams()
    keys = {
        base.key(),
        CatalogParams(n_products=9_999).key(),
        CatalogParams(seed=1).key(),
        CatalogParams(attributes_per_product=2).key(),
        CatalogParams(option_kinds=1).key(),
        CatalogParams(max_option_values=6).key(),
    }
    assert len(keys) == 6


def test_bad_parameters_name_the_field_and_range():
    with pytest.raises(ValueError, match=r"option_kinds=3 \(expected 0, 1 or 2\)"):
        CatalogParams(option_kinds=3)


def test_products_follow_the_parameters(catalog):
    assert len(catalog) == 2000
    for index in range(0, 2000, 97):
        product = catalog.product(index)
        assert len(set(product.attributes)) == 3
        assert len(product.options) == 2 and all(2 <= len(v) <= 5 for v in product.options.values())
        assert product.category_path[2] == product.product_type
        assert f"{product.price:.2f}".endswith(".99") and product.price < 900
        assert product.product_type in product.title.lower()


def test_product_ids_round_trip(catalog):
    ids = [catalog.asin(i) for i in range(len(catalog))]
    assert len(set(ids)) == len(ids) and all(len(i) == 10 and i.startswith("B0") for i in ids)
    assert [catalog.index_of(i.lower()) for i in ids[:50]] == list(range(50))
    assert catalog.index_of("B0NOTANID!") is None and catalog.index_of("shampoo") is None


def test_splits_have_disjoint_targets(catalog):
    targets = {split: set(split_targets(catalog, split).tolist()) for split in SPLITS}
    assert (len(targets["train"]), len(targets["valid"]), len(targets["test"])) == (1600, 200, 200)
    assert not (targets["train"] & targets["test"]) and not (targets["train"] & targets["valid"])
    assert not (targets["valid"] & targets["test"])


def test_goal_is_deterministic_and_drawn_from_its_target(catalog):
    goal = make_goal(catalog, "test", 11)
    assert goal == make_goal(catalog, "test", 11)
    assert goal.product in set(split_targets(catalog, "test").tolist())
    assert set(goal.attributes) <= set(catalog.attribute_names(goal.product))
    offered = catalog.options(goal.product)
    assert all(value in offered[kind] for kind, value in goal.options)
    assert goal.price_upper >= catalog.price(goal.product)


def test_instruction_names_type_attributes_options_and_price(catalog):
    for index in range(30):
        goal = make_goal(catalog, "train", index)
        text = goal.instruction
        assert goal.product_type in text and all(a in text for a in goal.attributes)
        assert all(f"{kind}: {value}" in text for kind, value in goal.options)
        assert text.endswith(f", and price lower than {goal.price_upper:.2f} dollars")
        assert 1 <= len(goal.attributes) <= 3


def test_price_bound_is_one_of_the_three_larger_of_the_next_four_tens():
    rng = np.random.default_rng(0)
    bounds = {price_upper_bound(23.99, rng) for _ in range(200)}
    assert bounds == {
        40.0,
        50.0,
        60.0,
    }  # next four tens: 30, 40, 50, 60; the larger of two is never 30
    assert price_upper_bound(985.0, rng) == 1_000_000.0  # fewer than two tens left: no bound


def test_tokenizer_keeps_numbers_and_drops_stop_words():
    assert tokenize("Pack of 12, USB-C and 1.7 fl oz") == [
        "pack",
        "12",
        "usb",
        "c",
        "1",
        "7",
        "fl",
        "oz",
    ]


def test_search_returns_at_most_fifty_products_sharing_a_query_word(catalog, cache_dir):
    engine = load_search_engine(catalog, cache_dir)
    hits = engine.search("shampoo")
    assert 0 < len(hits) <= MAX_RESULTS
    assert all("shampoo" in tokenize(product_document(catalog, i)) for i in hits)
    assert engine.search("qqqzzz") == [] and engine.search("") == []
    assert len(engine.search("free")) == MAX_RESULTS


def test_search_is_deterministic_and_ranks_the_target_first_for_its_own_title(catalog, cache_dir):
    engine = load_search_engine(catalog, cache_dir)
    query = suggested_query(make_goal(catalog, "test", 0))
    assert engine.search(query) == engine.search(query)
    assert engine.search(catalog.title(123))[0] == 123


def test_search_index_is_saved_and_reloaded(catalog, cache_dir, monkeypatch):
    before = load_search_engine(catalog, cache_dir).search("vegan lip balm")
    search_module._load_search_engine.cache_clear()
    monkeypatch.setattr(
        search_module, "build_index", lambda *a: pytest.fail("rebuilt a cached index")
    )
    assert load_search_engine(catalog, cache_dir).search("vegan lip balm") == before
