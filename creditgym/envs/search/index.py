"""BM25 search over a corpus (``bm25s``), built once per corpus and cached on disk.

The index lives in ``$CREDITGYM_CACHE/search/bm25-v<INDEX_VERSION>-<WorldParams.key()>``
(``~/.cache/creditgym`` when the variable is unset), laid out like the WebShop env's product
index: bm25s's own files plus a ``creditgym.json`` marker written last, the directory saved
under a temporary name and renamed, so concurrent processes never load half an index.

Tokens are lower-cased runs of letters and digits minus a short stop-word list; no stemming
(names are invented, so stemming would only merge unrelated names). Scores are bm25s's default
(Lucene BM25, k1=1.5, b=0.75). Ties go to the lower passage id, so a query always returns the
same list.

``bm25s`` is the optional extra ``search`` (``pip install 'creditgym[search]'``); it is
imported only when an index is built or loaded.
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

from creditgym.cache import cache_root
from creditgym.envs.search.corpus import Corpus
from creditgym.envs.search.world import WorldParams

__all__ = ["INDEX_VERSION", "SearchIndex", "cache_root", "load_index", "tokenize"]

INDEX_VERSION = 1
_TOKEN = re.compile(r"[a-z0-9]+")
_STOPWORDS = frozenset(
    "a an and are as at be by did do does for from how in is it its of on or that the this to was "
    "were what when where which who whom whose why with".split()
)


def tokenize(text: str) -> list[str]:
    return [token for token in _TOKEN.findall(text.lower()) if token not in _STOPWORDS]


def _bm25s():
    try:
        import bm25s
    except ImportError:
        raise ImportError(
            "the search env retrieves with bm25s, which is not installed; install it with "
            "`pip install 'creditgym[search]'` (or `pip install bm25s`)"
        ) from None
    return bm25s


class SearchIndex:
    """Top-k BM25 retrieval over one corpus; holds the loaded bm25s index."""

    def __init__(self, retriever, n_passages: int) -> None:
        self._retriever = retriever
        self._vocab: dict[str, int] = retriever.vocab_dict
        self.n_passages = n_passages

    def search(self, query: str, k: int) -> list[int]:
        """Ids of the best `k` passages for `query`, best first; only passages sharing a
        token with the query (so possibly fewer than `k`, or none)."""
        token_ids = [self._vocab[token] for token in tokenize(query) if token in self._vocab]
        if not token_ids or k <= 0:
            return []
        scores = self._retriever.get_scores_from_ids(token_ids)[: self.n_passages]  # (n_passages,)
        order = np.argsort(-scores, kind="stable")[:k]  # stable: ties keep the lower id first
        return [int(i) for i in order if scores[i] > 0]


def _build(corpus: Corpus, path: Path) -> None:
    """Index `corpus` and save it as directory `path`, atomically."""
    bm25s = _bm25s()
    retriever = bm25s.BM25()
    retriever.index(
        [tokenize(passage.indexed_text()) for passage in corpus.passages], show_progress=False
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=path.parent, prefix=path.name + ".tmp"))
    try:
        retriever.save(str(staging), show_progress=False)
        marker = {"n_passages": len(corpus.passages), "index_version": INDEX_VERSION}
        (staging / "creditgym.json").write_text(json.dumps(marker))
        try:
            os.replace(staging, path)
        except OSError:  # another process saved the same index first; it is identical
            pass
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _marker_matches(path: Path, corpus: Corpus) -> bool:
    try:
        marker = json.loads((path / "creditgym.json").read_text())
    except (OSError, ValueError):
        return False
    return marker.get("n_passages") == len(corpus.passages)


def load_index(
    corpus: Corpus, params: WorldParams, cache_dir: str | os.PathLike | None = None
) -> SearchIndex:
    """The BM25 index of `corpus` (the corpus of `params`), from the disk cache; built and
    saved on first use. Cached in the process too, per parameters and cache directory."""
    root = Path(cache_dir) if cache_dir is not None else cache_root()
    return _load(params, str(root), corpus)


@functools.lru_cache(maxsize=8)
def _load(params: WorldParams, root: str, corpus: Corpus) -> SearchIndex:
    path = Path(root) / "search" / f"bm25-v{INDEX_VERSION}-{params.key()}"
    if not _marker_matches(path, corpus):
        shutil.rmtree(path, ignore_errors=True)  # a stale or broken index: rebuild it
        _build(corpus, path)
    retriever = _bm25s().BM25.load(str(path), show_progress=False, verbosity=0)
    return SearchIndex(retriever, len(corpus.passages))
