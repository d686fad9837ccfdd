"""Per-record rules: lengths, Cyrillic share, language, hygiene, chosen vs rejected.

These run on every pair of files with millions of lines, so they return plain lists, share
``pair.words()`` and skip script checks when ``pair.is_plain()`` says nothing can fire.
"""

from __future__ import annotations

import unicodedata

from rapidfuzz.distance import Indel
from rapidfuzz.utils import default_process

from mglkit import ERROR, INFO, TEXT_FIELDS, WARNING, Validator
from mglkit.mongolian import (
    DETECTORS,
    cyrillic_share,
    describe_chars,
    guess_unmojibake,
    has_cyrillic,
    invisible_chars,
    mixed_script_words,
    mojibake,
    normalize_for_compare,
    numbers,
)

SNIPPET = 60
COMPARED = 4000  # characters of chosen and rejected compared for similarity (Indel is quadratic)


def snippet(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= SNIPPET else text[: SNIPPET - 1] + "…"


def _excerpt(text: str) -> str:
    """The whole text, or its start and end when it is too long to compare fully."""
    return text if len(text) <= COMPARED else text[: COMPARED // 2] + text[-COMPARED // 2 :]


def learned_severity(field: str) -> str:
    """What the model learns to answer (prompt, chosen) must be clean; rejected may be worse."""
    return WARNING if field == "rejected" else ERROR


class Length(Validator):
    name = "length"
    description = "enough words in prompt, chosen and rejected"

    def check(self, pair):
        found = []
        for field in TEXT_FIELDS:
            words, need = len(pair.words(field)), self.config.min_words(field)
            if words < need:
                found.append(
                    self.finding(
                        pair,
                        field,
                        ERROR,
                        f"{words} words, at least {need} needed",
                        hint=f"write a fuller {field}",
                        snippet=snippet(getattr(pair, field)),
                    )
                )
        return found


class Cyrillic(Validator):
    name = "cyrillic"
    description = "most letters of every field are Cyrillic"

    def check(self, pair):
        found = []
        plain = pair.is_plain()
        need = self.config.min_cyrillic
        for field in TEXT_FIELDS:
            text = getattr(pair, field)
            if plain and has_cyrillic(text):
                continue
            share = cyrillic_share(text)
            if share < need:
                found.append(
                    self.finding(
                        pair,
                        field,
                        ERROR,
                        f"{share:.0%} of letters are Cyrillic, at least {need:.0%} needed",
                        hint="write Mongolian in Cyrillic (Ө ө Ү ү included)",
                        snippet=snippet(text),
                    )
                )
        return found


class Language(Validator):
    name = "language"
    description = "Mongolian, not Russian or Kazakh"
    _verdicts = {
        "ru": "Russian, not Mongolian",
        "kk": "Kazakh, not Mongolian",
        "mixed-ru": "Mongolian mixed with Russian",
    }

    def begin(self, config):
        bound = super().begin(config)
        bound.detect = DETECTORS[config.language_detector]
        return bound

    def check(self, pair):
        found = []
        plain = pair.is_plain() or None  # True settles it; False: ask again field by field
        for field in TEXT_FIELDS:
            text = getattr(pair, field)
            verdict = self.detect(text, pair.words(field), plain)
            if verdict is None or verdict.lang in ("mn", "unknown"):
                continue
            severity = learned_severity(field)
            message = self._verdicts.get(verdict.lang, f"language looks like '{verdict.lang}'")
            hint = "answer in Mongolian" if severity == ERROR else "fine for a deliberately bad answer"
            found.append(
                self.finding(pair, field, severity, f"{message} ({verdict.signal})", hint=hint, snippet=snippet(text))
            )
        return found


class Hygiene(Validator):
    name = "hygiene"
    description = "no invisible characters, Latin look-alikes, mojibake or non-NFC text"

    def check(self, pair):
        if pair.is_plain():
            return ()
        found = []
        for field in TEXT_FIELDS:
            text = getattr(pair, field)
            severity = learned_severity(field)
            if chars := invisible_chars(text):
                found.append(
                    self.finding(
                        pair,
                        field,
                        severity,
                        f"{len(chars)} invisible or control character(s): {describe_chars(chars)}",
                        hint="remove them (mglkit validate --fix does)",
                        snippet=snippet(text),
                    )
                )
            if words := mixed_script_words(text):
                found.append(
                    self.finding(
                        pair,
                        field,
                        severity,
                        f"Latin letters inside Cyrillic words: {', '.join(dict.fromkeys(words[:5]))}",
                        hint="use Cyrillic letters (mglkit validate --fix replaces look-alikes)",
                        snippet=snippet(text),
                    )
                )
            if bits := mojibake(text):
                guess = guess_unmojibake(text)
                was = f"; probably meant «{snippet(guess)}»" if guess else ""
                found.append(
                    self.finding(
                        pair,
                        field,
                        ERROR,
                        f"mojibake (UTF-8 decoded twice): {' '.join(bits[:4])}{was}",
                        hint="re-read the source as UTF-8, or repair it with ftfy",
                        snippet=snippet(text),
                    )
                )
            if not unicodedata.is_normalized("NFC", text):
                found.append(
                    self.finding(
                        pair,
                        field,
                        severity,
                        "text is not in Unicode NFC form",
                        hint="normalise to NFC (mglkit validate --fix does)",
                    )
                )
        return found


class Differentiation(Validator):
    name = "differentiation"
    description = "chosen and rejected really differ"

    def check(self, pair):
        # Texts that differ in a number (a changed date: a legitimate minimal pair) can be
        # neither identical nor flagged, and that test is cheaper than any similarity.
        cutoff = self.config.similarity_threshold
        a, b = len(pair.chosen), len(pair.rejected)
        if 2 * min(a, b) < cutoff * 0.9 * (a + b):  # even equal prefixes could not be that similar
            return ()
        if numbers(pair.chosen) != numbers(pair.rejected):
            return ()
        found = []
        if max(a, b) > COMPARED:
            found.append(
                self.finding(
                    pair,
                    "rejected",
                    INFO,
                    f"chosen and rejected are longer than {COMPARED:,} "
                    f"characters: similarity compared on their first and last {COMPARED // 2:,}",
                )
            )
        x, y = _excerpt(pair.chosen), _excerpt(pair.rejected)
        if Indel.normalized_similarity(x, y, processor=default_process, score_cutoff=min(cutoff, 0.99)) == 0:
            return found
        chosen, rejected = normalize_for_compare(pair.chosen), normalize_for_compare(pair.rejected)
        if chosen == rejected:
            return [
                self.finding(
                    pair,
                    "rejected",
                    ERROR,
                    "chosen and rejected are identical (ignoring case, spaces, punctuation)",
                    hint="a preference pair needs a worse rejected answer",
                )
            ]
        similarity = Indel.normalized_similarity(_excerpt(chosen), _excerpt(rejected))
        if similarity < cutoff:
            return found
        a, b = chosen.split(), rejected.split()
        in_a, in_b = set(a), set(b)
        only_a = [w for w in a if w not in in_b][:4]
        only_b = [w for w in b if w not in in_a][:4]
        return found + [
            self.finding(
                pair,
                "rejected",
                WARNING,
                f"chosen and rejected are {similarity:.0%} similar; they differ in: "
                f"{' '.join(only_a) or '—'} / {' '.join(only_b) or '—'}",
                hint=f"near-identical pairs teach little (similarity_threshold {cutoff:.2f}); a changed number is fine",
            )
        ]
