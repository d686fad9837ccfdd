"""Mongolian content words for comparing meaning: stems without question and function words, ways of
saying the same thing folded together, and «is this stem here, give or take an ending?» look-ups.

Stems come from :func:`mglkit.mongolian.tokenize` (one case ending stripped), then verb endings and the
«г» a long vowel takes before an ending; the short vowel that Mongolian drops before an ending is
folded (бичиг / бичгийг) when two stems meet. Used by the contamination detector.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache, lru_cache

from .mongolian import tokenize

STOPWORDS = frozenset(
    """бэ вэ уу үү юу юуг юун юунд юугаар хэн хэний хэнийг хэнд хэнээс хэд хэдэн хэдийг хэзээ хаана
    хаашаа хаанаас хэрхэн яаж яагаад ямар ямархуу аль алийг ба болон нь бол юм юмаа байсан байна
    байв байжээ байдаг байгаа энэ тэр эдгээр тэдгээр тэрээр тэрбээр түүний түүнийг түүнд тэдний тэд гэж
    гэдэг гэсэн гэх гэжээ болсон болжээ болов болох мөн ч бөгөөд нэгэн буюу хэмээх зэрэг тухай дээр
    дотор хамт үед үеийн үеэс дараа дараах өмнө хойно хүртэл онд оны он онуудад жил сар сарын өдөр
    дугаар дүгээр хийсэн хийжээ олон анх анхны хоёр нэг руу рүү луу лүү""".split()
)
PRONOUNS = frozenset("тэр тэрээр тэрбээр түүний түүнийг тэд тэдний үүний энэ".split())
# Named things: runs of capitalised words
NAMES = re.compile(r"[А-ЯЁӨҮ][а-яёөүА-ЯЁӨҮ]{2,}(?:[ -][А-ЯЁӨҮ][а-яёөүА-ЯЁӨҮ]{2,})*")

_VOWELS = set("аэиоуөүыеёюяй")
_SENTENCE_END = re.compile(r"(?<=[.!?…])(?<!\b\w\.)\s+")
# Ways of saying the same thing, folded to one word before stemming (died / passed away / was
# killed; was born; founded / was founded; composed / created / wrote a work; script / letters;
# empire / state).
_SAME_MEANING = [
    (re.compile(pattern), word)
    for pattern, word in (
        (r"\bнас бар\w*|\bтаалал төгс\w*|\bөөд бол\w*|\bамь(?:аа)? (?:үрэгд|алд)\w*|\bалагд\w*|\bхөнөөгд\w*", "үхэл"),
        (r"\bмэндэл\w*|\bтөр(?:с|ж|өв|өх)\w*", "мэндэлсэн"),
        (r"\b(?:үүсгэн )?байгуул\w*|\bүндэсл\w*", "байгуулсан"),
        (r"\bзохио\w*|\bбүтээ\w*|\bтуурви\w*", "зохиосон"),
        (r"\bүсэг\w*|\bүсг\w*|\bбичиг\w*|\bбичг\w*", "бичиг"),
        (r"\bгүрэн\w*|\bгүрн\w*", "улс"),
    )
]
# Parts of a hyphenated word («НҮБ-д», «ЮНЕСКО-гийн») that are case endings, not words.
_ENDINGS = frozenset("д т р ын ийн гийн ны ний ыг ийг гийг аас ээс оос өөс гаас гээс тай тэй той".split())
# Verb endings (past, converb, habitual, present) stripped when four letters of stem remain.
_VERB_ENDINGS = sorted(
    """снаас сний сны сан сэн сон сөн жээ чээ лаа лээ лоо лөө даг дэг дог дөг аад ээд оод өөд
    на нэ но нө ж ч в х""".split(),
    key=len,
    reverse=True,
)
_LONG_VOWELS = ("аа", "ээ", "оо", "өө", "уу", "үү", "ай", "эй", "ой", "уй", "үй", "ий")


def sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE_END.split(text.strip()) if s]


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """tokenize's stem of one word; also without «нд» after a vowel (Хүрээнд), the «г» a long vowel
    takes before an ending (хуралдайгаар) and a verb ending."""
    if word.endswith("нд") and len(word) >= 5 and word[-3] in _VOWELS:
        word = word[:-2]
    else:
        word = tokenize(word)[0]
    if len(word) >= 4 and word.endswith("г") and word[-3:-1] in _LONG_VOWELS:
        word = word[:-1]
    for ending in _VERB_ENDINGS:
        if word.endswith(ending) and len(word) - len(ending) >= 4:
            return word[: -len(ending)]
    return word


def stems(text: str) -> frozenset[str]:
    """Content-word stems of a text: no question or function words, case and verb endings stripped."""
    text = text.lower()
    for pattern, word in _SAME_MEANING:
        text = pattern.sub(word, text)
    words = (w for w in tokenize(text, stem=False) if w not in STOPWORDS and w not in _ENDINGS)
    found = (stem(w) for w in words if len(w) > 1 or w.isdigit())
    return frozenset(s for s in found if s not in STOPWORDS and s not in _ENDINGS)


@cache
def _forms(stem: str) -> tuple[str, ...]:
    """The stem and its form with the last short vowel dropped, as Mongolian does before an ending
    (бичиг, бичгийг → бичг), so both forms meet."""
    if len(stem) >= 5 and stem[-1] not in _VOWELS and stem[-2] in _VOWELS and stem[-3] not in _VOWELS:
        return (stem, stem[:-2] + stem[-1])
    return (stem,)


@cache
def _prefixes(stem: str) -> tuple[str, ...]:
    """Shorter forms an ending explains: one letter off a stem of three or more, up to three off
    one of four or more."""
    return tuple(stem[:k] for k in range(len(stem) - 1, 2, -1) if k >= len(stem) - 3 and (k >= 4 or k == len(stem) - 1))


@dataclass(frozen=True)
class Keys:
    """A set of stems, ready for «is this stem here, give or take an ending?»."""

    forms: frozenset[str]
    shorter: frozenset[str]

    def __or__(self, other: Keys) -> Keys:
        return Keys(self.forms | other.forms, self.shorter | other.shorter)

    def has(self, stem: str) -> bool:
        for form in _forms(stem):
            if form in self.forms or form in self.shorter or any(p in self.forms for p in _prefixes(form)):
                return True
        return False


def keys(found: Iterable[str]) -> Keys:
    forms = frozenset(f for stem in found for f in _forms(stem))
    return Keys(forms, frozenset(p for form in forms for p in _prefixes(form)))


def word_matches(word: str, target: str) -> bool:
    """As mglkit.mongolian.matches_alias: a year is that year; a word may carry a case ending."""
    if target.isdigit():
        return word == target or (word.startswith(target) and not word[len(target)].isdigit())
    return word == target or (word.startswith(target) and len(word) - len(target) <= 4)


def in_row(words: tuple[str, ...], target: list[str]) -> bool:
    """Whether the ``target`` words occur one after another in ``words`` (each may carry an ending)."""
    last = len(words) - len(target)
    for start, word in enumerate(words):
        if start > last:
            break
        if word_matches(word, target[0]) and all(
            word_matches(w, t) for w, t in zip(words[start + 1 : start + len(target)], target[1:], strict=True)
        ):
            return True
    return False
