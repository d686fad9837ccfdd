"""Stand-alone text metrics, published as Hugging Face ``evaluate`` modules (loadable offline with
``evaluate.load(str(mglkit.metrics.path("mongolian_purity")))``) and computed by plain functions
that the modules and mglkit's evaluators share."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

from ..mongolian import cyrillic_share, is_russian_word, kazakh_letter_count, latin_share

HERE = Path(__file__).resolve().parent
MODULES = ("mongolian_purity", "repetition", "bits_per_character")


def path(name: str) -> Path:
    """The folder of an evaluate module, for ``evaluate.load(str(path(name)))``."""
    if name not in MODULES:
        raise KeyError(name)
    return HERE / name


def load(name: str):
    import evaluate

    return evaluate.load(str(path(name)))


def purity(text: str) -> dict:
    """Mongolian purity of a text: Cyrillic share of letters, minus Russian words and Kazakh letters."""
    words = text.split()
    russian = sum(1 for w in words if is_russian_word(w))
    letters = sum(ch.isalpha() for ch in text)
    russian_share = russian / len(words) if words else 0.0
    kazakh_share = kazakh_letter_count(text) / letters if letters else 0.0
    cyrillic = cyrillic_share(text)
    return {
        "purity": cyrillic * (1 - russian_share) * (1 - kazakh_share),
        "cyrillic": cyrillic,
        "russian": russian_share,
        "latin": latin_share(text),
        "kazakh": kazakh_share,
    }


def repetition(text: str) -> dict:
    """distinct-1 and distinct-2 (unique / all n-grams) and the share of word 3-grams seen twice or more."""
    words = text.lower().split()

    def grams(n):
        return [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]

    def distinct(n):
        g = grams(n)
        return len(set(g)) / len(g) if g else 1.0

    trigrams = grams(3)
    counts = Counter(trigrams)
    repeated = sum(c for c in counts.values() if c > 1) / len(trigrams) if trigrams else 0.0
    return {"distinct_1": distinct(1), "distinct_2": distinct(2), "repeated_3gram_rate": repeated}


def bits_per_character(text: str, log_likelihood: float) -> float:
    """Bits per character of a text from its total log-likelihood in nats: comparable across tokenizers."""
    return -log_likelihood / math.log(2) / max(1, len(text))


def mean(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else float("nan")
