"""Answer scoring: SQuAD normalisation, exact match and word-set F1, max over aliases.

`normalize_answer` is SQuAD v1.1's ``normalize_answer`` (the official evaluation script):
lower-case, delete punctuation, delete the articles a/an/the, collapse whitespace. F1 is on
word *sets*, as IGPO's reward code computes it (``compute_f1`` in ``info_gain.py``), where SQuAD
counts repeated words; the two differ only when a word repeats.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable

__all__ = ["best_scores", "exact_match", "f1_score", "normalize_answer"]

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalize_answer(text: str) -> str:
    """``"The  Orvel-Tides!"`` -> ``"orveltides"``: lower case, no punctuation, no articles."""
    text = text.lower().translate(_PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, truth: str) -> float:
    """1.0 if the normalised strings are equal, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(truth))


def f1_score(prediction: str, truth: str) -> float:
    """Harmonic mean of precision and recall of the normalised words, as sets."""
    predicted, true = (
        set(normalize_answer(prediction).split()),
        set(normalize_answer(truth).split()),
    )
    common = len(predicted & true)
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(true)
    return 2 * precision * recall / (precision + recall)


def best_scores(prediction: str, truths: Iterable[str]) -> tuple[float, float]:
    """``(em, f1)`` of `prediction`, each the max over the accepted answers `truths`."""
    truths = list(truths)
    if not truths:
        raise ValueError("best_scores needs at least one accepted answer; got none")
    return max(exact_match(prediction, t) for t in truths), max(
        f1_score(prediction, t) for t in truths
    )
