"""Product search: a BM25 index (``bm25s``) over each product's title, features, description
and option values, built once per catalog and cached on disk.

WebShop searches with Pyserini's BM25 and shows the top 50 hits, ten per page; so do we.
Tokens are lower-cased runs of letters and digits (so "pack of 12" keeps "12" and "usb c"
keeps "c"), minus a short stop-word list; no stemming. Ties in score go to the lower catalog
index, so a query always returns the same list.

``bm25s`` is the optional extra ``search`` (``pip install creditgym[search]``); it is imported
only when an index is built or loaded.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np

from creditgym.envs.webshop.catalog import Catalog, cache_root

__all__ = ["SearchEngine", "load_search_engine", "tokenize", "product_document", "MAX_RESULTS"]

MAX_RESULTS = 50
INDEX_VERSION = 1
_TOKEN = re.compile(r"[a-z0-9]+")
STOPWORDS = frozenset(
    "a an and are as at be by for from i in is it its of on or our that the this to was with "
    "who want need looking find me buy".split()
)


def tokenize(text: str) -> list[str]:
    return [token for token in _TOKEN.findall(text.lower()) if token not in STOPWORDS]


def product_document(catalog: Catalog, index: int) -> str:
    """The text a product is indexed by."""
    values = [value for offered in catalog.options(index).values() for value in offered]
    return " ".join(
        [catalog.title(index), *catalog.features(index), catalog.description(index), *values]
    )


def _import_bm25s():
    try:
        import bm25s
    except ImportError:
        raise ImportError(
            "the webshop env searches with bm25s, which is not installed; "
            "install it with `pip install 'creditgym[search]'` (or `pip install bm25s`)"
        ) from None
    return bm25s


class SearchEngine:
    """Top-`k` BM25 search over one catalog. Holds the loaded index."""

    def __init__(self, retriever, n_products: int):
        self._retriever = retriever
        self._vocab: dict[str, int] = retriever.vocab_dict
        self.n_products = n_products

    def search(self, query: str, k: int = MAX_RESULTS) -> list[int]:
        """Catalog indices of the best `k` products for `query`, best first; only products
        sharing at least one token with the query are returned."""
        token_ids = [self._vocab[token] for token in tokenize(query) if token in self._vocab]
        if not token_ids:
            return []
        scores = self._retriever.get_scores_from_ids(token_ids)[: self.n_products]  # (n_products,)
        k = min(k, int(np.count_nonzero(scores > 0)))
        if k == 0:
            return []
        top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
        # Sort by score, then by index, so ties (and the cut at k) are deterministic.
        threshold = scores[top].min()
        candidates = np.flatnonzero(scores >= threshold)
        order = np.lexsort((candidates, -scores[candidates]))
        return [int(i) for i in candidates[order][:k]]


def build_index(catalog: Catalog, path: Path) -> None:
    """Index every product of `catalog` and save it under directory `path` (atomically)."""
    bm25s = _import_bm25s()
    corpus_tokens = [tokenize(product_document(catalog, i)) for i in range(len(catalog))]
    retriever = bm25s.BM25()
    retriever.index(corpus_tokens, show_progress=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=path.name + ".tmp"))
    try:
        retriever.save(str(tmp), show_progress=False)
        (tmp / "creditgym.json").write_text(
            json.dumps({"n_products": len(catalog), "version": INDEX_VERSION})
        )
        try:
            os.replace(tmp, path)
        except OSError:  # another process saved the same index first; theirs is as good
            pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load_search_engine(
    catalog: Catalog, cache_dir: str | os.PathLike | None = None
) -> SearchEngine:
    """The search engine of `catalog`, from the disk cache (built and saved on first use)."""
    root = Path(cache_dir) if cache_dir is not None else cache_root()
    return _load_search_engine(catalog.params, str(root), catalog)


@functools.lru_cache(maxsize=8)
def _load_search_engine(params, root: str, catalog: Catalog) -> SearchEngine:
    path = Path(root) / "webshop" / f"bm25-v{INDEX_VERSION}-{params.key()}"
    if not (path / "creditgym.json").exists():
        build_index(catalog, path)
    bm25s = _import_bm25s()
    retriever = bm25s.BM25.load(str(path), show_progress=False, verbosity=0)
    return SearchEngine(retriever, len(catalog))
