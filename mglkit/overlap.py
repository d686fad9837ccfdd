"""Word n-gram overlap between texts: how leaked benchmark items are found."""

from __future__ import annotations

from collections.abc import Iterable

from .mongolian import normalize_for_compare

# A benchmark text whose word 3-grams have a Jaccard similarity of 0.5 or more with a training
# text is counted as leaked (near-duplicate wording, not just a shared topic).
LEAK_N = 3
LEAK_THRESHOLD = 0.5


def ngrams(text: str, n: int = LEAK_N) -> frozenset[tuple[str, ...]]:
    words = normalize_for_compare(text).split()
    return frozenset(tuple(words[i : i + n]) for i in range(len(words) - n + 1))


def jaccard(a: frozenset, b: frozenset) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


def leaks(
    texts: Iterable[tuple[str, str]], training: Iterable[tuple[str, str]], threshold: float = LEAK_THRESHOLD
) -> list[tuple[str, str, float]]:
    """(text id, training id, similarity) for every text too close to a training text."""
    train = [(tid, ngrams(text)) for tid, text in training]
    found = []
    for item_id, text in texts:
        grams = ngrams(text)
        for train_id, train_grams in train:
            similarity = jaccard(grams, train_grams)
            if similarity >= threshold:
                found.append((item_id, train_id, similarity))
    return found
