"""Signals about Mongolian Cyrillic text: script share, language, hygiene, normalisation, repair.

Shared by the validators and the evaluators. Everything here is regex or C-level string work:
validating must stay fast, so no per-character Python loops.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# Cyrillic block (Mongolian letters Ө ө Ү ү live in it) and letters of any other script.
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
_NON_CYRILLIC_LETTER = re.compile(r"[^\W\d_\u0400-\u04ff]")
_LETTER = re.compile(r"[^\W\d_]")
_LATIN = re.compile(r"[A-Za-z]")

# Letters that Kazakh writes and Mongolian does not (both write ө and ү).
_KAZAKH_LETTERS = re.compile(r"[әғқңұһіӘҒҚҢҰҺІ]")
_MONGOLIAN_LETTERS = re.compile(r"[өүӨҮ]")

_TRAILING = ".,;:!?»)…\"'"
_RUSSIAN_SUFFIXES = (
    "ство", "ства", "ость", "ости", "ция", "ции", "цию", "ский", "ская", "ское", "ского", "ской",
    "ение", "ения", "ание", "ания",
)  # fmt: skip


def _variants(words: str) -> frozenset[str]:
    """Each word lower-case and capitalised, bare and with trailing punctuation, so that a plain
    ``text.split()`` can be intersected with it without lower-casing or stripping the text."""
    base = [form for w in words.split() for form in (w, w.capitalize())]
    return frozenset(base + [w + p for w in base for p in _TRAILING])


# Frequent words that exist in one language and not the other.
MONGOLIAN_WORDS = _variants(
    "бол юм юмаа нь ба болон байсан байна байв байжээ байгаа юу вэ бэ уу үү энэ тэр тэрээр "
    "онд оны он онуудад хүртэл үед үеэс дээр гэж гэдэг гэсэн болсон болжээ хийсэн хийжээ "
    "түүний тэдний бөгөөд мөн ч хамгийн олон анх анхны хаан хааны улс улсын монгол монголын"
)
RUSSIAN_WORDS = _variants(
    "и в во на что не это был была были было его её она они он также для году года лет после "
    "время этом этот эта как по с со к ко от из за же бы но или уже очень конечно важно потому "
    "тоже который которая которые когда где есть только можно нужно всё все поэтому тогда потом "
    "вообще вообще-то короче каждый каждая люди просто сейчас здесь мы вы я ты год годы"
)


@dataclass(frozen=True, slots=True)
class LanguageVerdict:
    """``lang``: mn, ru, kk, mixed-ru (Mongolian with Russian words) or unknown; ``signal`` says why."""

    lang: str
    signal: str


# Anything outside the Mongolian alphabet, ASCII digits/punctuation and common typographic marks.
_UNUSUAL = re.compile(
    "[^\t\n\r\x20-\x40\x5b-\x60\x7b-\x7e\u0410-\u044f\u0401\u0451\u04e8\u04e9\u04ae\u04af"
    "«»\u2013\u2014\u2026\u201c\u201d\u201e\u2018\u2019№]"
)


def is_plain_text(text: str) -> bool:
    return _UNUSUAL.search(text) is None


def has_cyrillic(text: str) -> bool:
    return _CYRILLIC.search(text) is not None


def letter_count(text: str) -> int:
    return len(_LETTER.findall(text))


def cyrillic_share(text: str) -> float:
    """Share of letters that are Cyrillic (0.0 when the text has no letters)."""
    if not _NON_CYRILLIC_LETTER.search(text):
        return 1.0 if _CYRILLIC.search(text) else 0.0
    other = len(_NON_CYRILLIC_LETTER.findall(text))
    cyrillic = len(_CYRILLIC.findall(text))
    return cyrillic / (cyrillic + other) if cyrillic + other else 0.0


def latin_share(text: str) -> float:
    letters = letter_count(text)
    return len(_LATIN.findall(text)) / letters if letters else 0.0


def _quoted(words) -> str:
    bare = sorted({w.lower().rstrip(_TRAILING) for w in words})
    return ", ".join(f"«{w}»" for w in bare[:5])


def is_russian_word(word: str) -> bool:
    """A frequent Russian word, or a word with a Russian noun or adjective ending."""
    return word in RUSSIAN_WORDS or word.lower().rstrip(_TRAILING).endswith(_RUSSIAN_SUFFIXES)


def kazakh_letter_count(text: str) -> int:
    return len(_KAZAKH_LETTERS.findall(text))


def foreign_language(text: str, words: list[str] | None = None, plain: bool | None = None) -> LanguageVerdict | None:
    """The verdict when the text is Russian, Kazakh or Mongolian mixed with Russian; else None.

    ``words`` (``text.split()``) and ``plain`` (``is_plain_text(text)``) may be passed when the
    caller has them: validators run this on every field of every pair.
    """
    if not (plain if plain is not None else is_plain_text(text)):
        kazakh = _KAZAKH_LETTERS.findall(text)
        if len(kazakh) >= 2:
            return LanguageVerdict("kk", f"Kazakh letters {_quoted(set(kazakh))}")
    if words is None:
        words = text.split()
    russian = RUSSIAN_WORDS.intersection(words)
    if not russian:
        return None
    # only now is it worth looking for Russian noun endings (each distinct word once: long texts repeat)
    russian = russian.union(w for w in set(words) if is_russian_word(w))
    if len(russian) < 2:
        return None
    if _MONGOLIAN_LETTERS.search(text) is None and not MONGOLIAN_WORDS.intersection(words):
        return LanguageVerdict("ru", f"Russian words {_quoted(russian)}, no ө/ү, no Mongolian words")
    return LanguageVerdict("mixed-ru", f"Russian words {_quoted(russian)} in Mongolian text")


def detect_language(text: str, words: list[str] | None = None, plain: bool | None = None) -> LanguageVerdict:
    """Explainable signals: Kazakh-only letters, ө/ү, and frequent words of each language."""
    if words is None:
        words = text.split()
    verdict = foreign_language(text, words, plain)
    if verdict is not None:
        return verdict
    if _MONGOLIAN_LETTERS.search(text) or MONGOLIAN_WORDS.intersection(words):
        return LanguageVerdict("mn", "Mongolian words or letters ө/ү")
    return LanguageVerdict("unknown", "no decisive signal")


_LINGUA = None


def detect_language_lingua(text: str, words=None, plain=None) -> LanguageVerdict:
    """The lingua-language-detector verdict among Mongolian, Russian, Kazakh and English."""
    global _LINGUA
    if _LINGUA is None:
        from .errors import ConfigError

        try:
            from lingua import Language, LanguageDetectorBuilder
        except ImportError as exc:
            raise ConfigError(
                "--language-detector lingua needs lingua-language-detector",
                hint="pip install 'mglkit[lang]'",
            ) from exc
        languages = [Language.MONGOLIAN, Language.RUSSIAN, Language.KAZAKH, Language.ENGLISH]
        _LINGUA = LanguageDetectorBuilder.from_languages(*languages).build()
    language = _LINGUA.detect_language_of(text)
    codes = {"MONGOLIAN": "mn", "RUSSIAN": "ru", "KAZAKH": "kk", "ENGLISH": "en"}
    lang = codes.get(language.name, "unknown") if language else "unknown"
    return LanguageVerdict(lang, f"lingua says {language.name.title() if language else 'nothing'}")


DETECTORS = {"signals": foreign_language, "lingua": detect_language_lingua}

# Hygiene ----------------------------------------------------------------------------------------

# Zero-width and bidi marks, soft hyphen, BOM inside text, C0/C1 controls except tab and newlines.
_INVISIBLE = re.compile(
    "[\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]"
)
_HOMOGLYPHS = {
    "a": "а", "c": "с", "e": "е", "o": "о", "p": "р", "x": "х", "y": "у",
    "A": "А", "B": "В", "C": "С", "E": "Е", "H": "Н", "K": "К", "M": "М",
    "O": "О", "P": "Р", "T": "Т", "X": "Х",
}  # fmt: skip
_HOMOGLYPH_TABLE = str.maketrans(_HOMOGLYPHS)
# A word mixing Cyrillic and Latin letters.
_MIXED_WORD = re.compile(r"\b(?=\w*[\u0400-\u04ff])(?=\w*[A-Za-z])\w+\b")
_MOJIBAKE = re.compile(
    r"[ÐÑ][\u0080-\u00ff\u2018-\u203a\u0152\u0153\u0160\u0161\u0178\u017d\u02c6\u02dc]|Ã[\u0080-\u00bf]|â€"
)
_MULTISPACE = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]{2,}|[\u00a0\u2000-\u200a\u202f\u205f\u3000]")


def invisible_chars(text: str) -> list[str]:
    return _INVISIBLE.findall(text)


def mixed_script_words(text: str) -> list[str]:
    return _MIXED_WORD.findall(text)


def mojibake(text: str) -> list[str]:
    return _MOJIBAKE.findall(text)


def guess_unmojibake(text: str) -> str | None:
    """What double-encoded UTF-8 probably said, when a round trip through cp1252 decodes cleanly."""
    for codec in ("cp1252", "latin-1"):
        try:
            return text.encode(codec).decode("utf-8")
        except UnicodeError:
            continue
    return None


def describe_chars(chars) -> str:
    names = []
    for ch in dict.fromkeys(chars):
        names.append(f"U+{ord(ch):04X} {unicodedata.name(ch, 'control character')}")
    return ", ".join(names[:4])


def fix_text(text: str) -> tuple[str, list[str]]:
    """Apply the safe repairs; return the new text and a description of each repair made."""
    repairs = []
    invisible = invisible_chars(text)
    if invisible:
        text = _INVISIBLE.sub("", text)
        repairs.append(f"removed {len(invisible)} invisible character(s): {describe_chars(invisible)}")
    mixed = mixed_script_words(text)
    if mixed:
        fixed_words = []

        def repair(match: re.Match) -> str:
            word = match.group(0)
            new = word.translate(_HOMOGLYPH_TABLE)
            if new != word and not _LATIN.search(new):
                fixed_words.append(f"{word}→{new}")
                return new
            return word

        text = _MIXED_WORD.sub(repair, text)
        if fixed_words:
            repairs.append("replaced Latin look-alike letters: " + ", ".join(fixed_words[:5]))
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
        repairs.append("normalised to Unicode NFC")
    spaced = _MULTISPACE.sub(" ", text)
    stripped = "\n".join(line.strip() for line in spaced.split("\n")).strip()
    if stripped != text:
        text = stripped
        repairs.append("normalised stray whitespace")
    return text, repairs


# Comparison -------------------------------------------------------------------------------------

_NUMBER = re.compile(r"\d+")


def normalize_for_compare(text: str) -> str:
    """Case, whitespace and punctuation folded away (rapidfuzz's C implementation)."""
    from rapidfuzz.utils import default_process

    return " ".join(default_process(text).split())


def numbers(text: str) -> list[str]:
    return _NUMBER.findall(text)


def _word_matches(word: str, alias: str) -> bool:
    if alias.isdigit():  # a year must be that year: 1206 matches "1206", "1206-д", never "12060"
        return word == alias or (word.startswith(alias) and not word[len(alias)].isdigit())
    # Mongolian adds case endings: "Чингисийн" answers "Чингис", "онд" answers "он"
    return word == alias or (word.startswith(alias) and len(word) - len(alias) <= 4)


def matches_alias(answer: str, aliases: list[str]) -> bool:
    """Whether a generated answer contains one of the aliases (case, punctuation and case endings
    ignored; numbers matched whole)."""
    words = normalize_for_compare(answer).split()
    for alias in aliases:
        target = normalize_for_compare(alias).split()
        if not target:
            continue
        for start in range(len(words) - len(target) + 1):
            if all(_word_matches(w, a) for w, a in zip(words[start : start + len(target)], target, strict=True)):
                return True
    return False


# Words for search ---------------------------------------------------------------------------------

_WORD = re.compile(r"\w+")
# Common case and plural endings, longest first; a stem keeps at least 3 letters. A bare -н or -г
# is left alone: too many stems end in it (хаан, зорилго).
_SUFFIXES = sorted(
    """ын ийн ны ний ий ыг ийг д т аас ээс оос өөс аар ээр оор өөр тай тэй той руу рүү луу лүү
    ууд үүд нууд нүүд чууд чүүд ын ийнх ынх гаас гээс гоос гөөс ад эд од өд""".split(),
    key=len,
    reverse=True,
)


def tokenize(text: str, stem: bool = True) -> list[str]:
    """Lower-cased words without punctuation; ``stem`` strips one common Mongolian case ending."""
    words = _WORD.findall(text.lower())
    if not stem:
        return words
    out = []
    for word in words:
        for suffix in _SUFFIXES:
            if word.endswith(suffix) and len(word) - len(suffix) >= 3:
                word = word[: -len(suffix)]
                break
        out.append(word)
    return out
