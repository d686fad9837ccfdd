"""Contamination written in other words: which benchmark items the training data already states.

A benchmark item is *seen* when a training text gives it away. Three signals, each explainable:

- ``answer``: the item's correct answer (a facts item's keyed choice or one of its aliases; for a
  preference pair, the key facts its chosen answer has and its rejected answer lacks: years,
  numbers, names) occurs in a training sentence that is about the same thing: that sentence, with
  the training text's question or title, covers enough of the item question's content-word stems.
  Stems come from :func:`mglkit.retrieval.tokenize` (Mongolian case endings stripped), short vowels
  that Mongolian drops before an ending are folded (бичиг / бичгийг), and each stem is weighted by
  how rare it is in the training sentences, so «Занабазар» counts more than «хаан» or «улс».
- ``question``: the item question and a training question share most of their weighted stems.
- ``wording``: most of the item's word 3-grams occur in one training text (:mod:`mglkit.overlap`),
  the older near-duplicate test.

Pure Python on sets and inverted indexes (no torch): fast enough for ``mglkit eval --train-data``.
``data/DATA.md`` describes the design and its precision and recall on a held-out labelled set.
"""

from __future__ import annotations

import bisect
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

import orjson

from .config import DEFAULT_DATASET
from .errors import MglkitError, UnusableInputError
from .mongolian import normalize_for_compare
from .overlap import LEAK_N, ngrams
from .retrieval import tokenize

# Calibrated on tests/data/contamination_pairs.jsonl (tune part); see benchmarks/RESULTS.md.
ANSWER_THRESHOLD = 0.45  # weighted share of the item question's stems the answer's context covers
QUESTION_THRESHOLD = 0.85  # weighted stem similarity of two questions
WORDING_THRESHOLD = 0.5  # share of the item's word 3-grams found in one training text
# A pair's key fact found in more than this share of training sentences («Монгол») proves nothing.
COMMON_SHARE = 0.02

SIGNALS = ("answer", "question", "wording")
BUNDLED_TRAINING = (DEFAULT_DATASET, "data/facts_train.jsonl", "data/corpus")
# The manifest of a suite's seen / unseen items (benchmarks/make_splits.py writes the bundled one).
SPLITS_FILE = "splits.json"
SPLIT_KINDS = ("facts", "pairs", "fluency")

_STOPWORDS = frozenset(
    """бэ вэ уу үү юу юуг юун юунд юугаар хэн хэний хэнийг хэнд хэнээс хэд хэдэн хэдийг хэзээ хаана
    хаашаа хаанаас хэрхэн яаж яагаад ямар ямархуу аль алийг ба болон нь бол юм юмаа байсан байна
    байв байжээ байдаг байгаа энэ тэр эдгээр тэдгээр тэрээр тэрбээр түүний түүнийг түүнд тэдний тэд гэж
    гэдэг гэсэн гэх гэжээ болсон болжээ болов болох мөн ч бөгөөд нэгэн буюу хэмээх зэрэг тухай дээр
    дотор хамт үед үеийн үеэс дараа дараах өмнө хойно хүртэл онд оны он онуудад жил сар сарын өдөр
    дугаар дүгээр хийсэн хийжээ олон анх анхны хоёр нэг руу рүү луу лүү""".split()
)
_ONE_A_LINE = "one JSON object per line"
_PRONOUNS = frozenset("тэр тэрээр тэрбээр түүний түүнийг тэд тэдний үүний энэ".split())
_VOWELS = set("аэиоуөүыеёюяй")
_SENTENCE_END = re.compile(r"(?<=[.!?…])(?<!\b\w\.)\s+")
_NAMES = re.compile(r"[А-ЯЁӨҮ][а-яёөүА-ЯЁӨҮ]{2,}(?:[ -][А-ЯЁӨҮ][а-яёөүА-ЯЁӨҮ]{2,})*")
_NUMBER = re.compile(r"\d+")


@dataclass(frozen=True)
class Item:
    """A benchmark item as the detector sees it. ``answers``: what a training text may state (any
    one for a facts item; ``required`` of them for a pair's key facts); ``text``: the wording the
    near-duplicate test compares (a pair's chosen answer, a fluency passage)."""

    id: str
    kind: str
    question: str
    answers: tuple[str, ...] = ()
    required: int = 1
    text: str = ""


@dataclass(frozen=True)
class TrainingText:
    """One training record: ``question`` is a pair's prompt, a facts question or a passage title;
    ``answer`` a chosen answer, a keyed choice with its aliases, or a passage. ``kind``: pairs, facts
    or corpus (a passage title is not a question, so the question signal skips passages)."""

    id: str
    where: str
    question: str
    answer: str
    kind: str = ""


@dataclass(frozen=True)
class Match:
    """Evidence that ``training_id`` (at ``where``) gives item ``item_id`` away."""

    item_id: str
    training_id: str
    where: str
    reason: str
    score: float
    signal: str


# Items and training texts -----------------------------------------------------------------------


def fact_item(record: dict) -> Item:
    """A facts item ({"id", "question", "choices", "answer", "aliases"}): the keyed choice or an alias."""
    keyed = record["choices"][record["answer"]]
    return Item(str(record["id"]), "facts", record["question"], tuple(dict.fromkeys([keyed, *record["aliases"]])))


def pair_item(item_id: str, prompt: str, chosen: str, rejected: str) -> Item:
    """A preference pair: its key facts are what ``chosen`` says and ``rejected`` does not."""
    facts = key_facts(prompt, chosen, rejected)
    return Item(item_id, "pairs", prompt, facts, 1 if len(facts) <= 2 else 2, chosen)


def key_facts(prompt: str, chosen: str, rejected: str) -> tuple[str, ...]:
    """Numbers and names (runs of capitalised words inside a sentence, as stems) in ``chosen`` that
    neither ``rejected`` nor ``prompt`` has: for a wrong-date pair the right date, for a vague pair
    its facts."""
    elsewhere = set(_NUMBER.findall(rejected)) | set(_NUMBER.findall(prompt))
    others = _keys(stems(f"{prompt} {rejected}"))
    facts = [n for n in _NUMBER.findall(chosen) if n not in elsewhere]
    for sentence in _sentences(chosen):
        for run in _NAMES.finditer(sentence):
            words = run.group().split()[1 if run.start() == 0 else 0 :]
            name = [_stem(w.lower()) for w in words]
            if name and not all(others.has(w) for w in name):
                facts.append(" ".join(name))
    return tuple(dict.fromkeys(facts))


def items_from_suite(suite) -> list[Item]:
    """Facts, preference pairs, retrieval questions and fluent passages of a loaded suite."""
    items = [fact_item(r) for r in suite.facts]
    for pair in suite.pairs:
        pair_id = str(pair.extra.get("id", f"pairs:{pair.line}"))
        items.append(pair_item(pair_id, pair.prompt, pair.chosen, pair.rejected))
    items += [Item(str(r["id"]), "retrieval", r["question"]) for r in suite.retrieval]
    items += [Item(str(r["id"]), "fluency", "", text=r["text"]) for r in suite.fluency if "degraded" not in r]
    return items


def training_texts(path: str | Path) -> list[TrainingText]:
    """A preference-pair file, a facts file (question, choices/answer, aliases) or a corpus JSONL
    ({"id", "title", "text"}), told apart by their fields; a folder means its *.jsonl files."""
    from .sources import not_jsonl

    if not_jsonl(path):  # Parquet, CSV, a save_to_disk folder, hf:...: pairs, through mglkit.sources
        return _pair_texts(path)
    path = Path(path)
    files = sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
    if not files or not files[0].is_file():
        raise UnusableInputError(f"{path}: no such file", hint="give a training JSONL file or a folder of them")
    texts: list[TrainingText] = []
    for file in files:
        records = list(_jsonl(file))
        if not records:
            raise UnusableInputError(f"{file}: no records", hint=_ONE_A_LINE)
        if "prompt" in records[0][1]:
            texts += _pair_texts(file)
        else:
            texts += [_record_text(file, line, record) for line, record in records]
    return texts


def bundled_training() -> list[TrainingText]:
    """The training data mglkit ships: preference pairs, GRPO facts and the RAG corpus."""
    from .resources import bundled

    return [text for relative in BUNDLED_TRAINING for text in training_texts(bundled(relative))]


def _jsonl(file: Path):
    for number, raw in enumerate(file.read_bytes().splitlines(), 1):
        if not raw.strip():
            continue
        try:
            record = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise UnusableInputError(f"{file}, line {number}: not valid JSON ({exc})", hint=_ONE_A_LINE) from None
        if not isinstance(record, dict):
            raise UnusableInputError(f"{file}, line {number}: not a JSON object", hint=_ONE_A_LINE)
        yield number, record


def _pair_texts(file: Path | str) -> list[TrainingText]:
    from .pairs import load_pairs

    try:
        pairs = list(load_pairs(file))
    except MglkitError as exc:
        raise UnusableInputError(str(exc), hint=exc.hint) from None
    name = Path(file).name
    return [TrainingText(str(p.extra.get("id", f"{name}:{p.line or p.row}")), f"{file}:{p.line or p.row}", p.prompt,
                         p.chosen, "pairs") for p in pairs]  # fmt: skip


def _record_text(file: Path, line: int, record: dict) -> TrainingText:
    where, name = f"{file}:{line}", str(record.get("id", f"{file.name}:{line}"))
    if isinstance(record.get("text"), str):
        return TrainingText(name, where, str(record.get("title", "")), record["text"], "corpus")
    question = record.get("question")
    choices, keyed, aliases = record.get("choices"), record.get("answer"), record.get("aliases", [])
    keyed_ok = isinstance(choices, list) and isinstance(keyed, int) and 0 <= keyed < len(choices)
    answer = [choices[keyed]] if keyed_ok else []
    if not isinstance(question, str) or not isinstance(aliases, list) or not answer + aliases:
        raise UnusableInputError(
            f"{file}, line {line}: neither a pair, a facts item nor a passage",
            hint='pairs have "prompt"/"chosen"/"rejected", facts "question"/"choices"/"answer"/"aliases", '
            'passages "text"',
        )
    return TrainingText(name, where, question, "; ".join(str(a) for a in dict.fromkeys(answer + aliases)), "facts")


# Text analysis ----------------------------------------------------------------------------------

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


def _sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE_END.split(text.strip()) if s]


@lru_cache(maxsize=65536)
def _stem(word: str) -> str:
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
    words = (w for w in tokenize(text, stem=False) if w not in _STOPWORDS and w not in _ENDINGS)
    found = (_stem(w) for w in words if len(w) > 1 or w.isdigit())
    return frozenset(s for s in found if s not in _STOPWORDS and s not in _ENDINGS)


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
class _Keys:
    """A set of stems, ready for «is this stem here, give or take an ending?»."""

    forms: frozenset[str]
    shorter: frozenset[str]

    def __or__(self, other: _Keys) -> _Keys:
        return _Keys(self.forms | other.forms, self.shorter | other.shorter)

    def has(self, stem: str) -> bool:
        for form in _forms(stem):
            if form in self.forms or form in self.shorter or any(p in self.forms for p in _prefixes(form)):
                return True
        return False


def _keys(found: Iterable[str]) -> _Keys:
    forms = frozenset(f for stem in found for f in _forms(stem))
    return _Keys(forms, frozenset(p for form in forms for p in _prefixes(form)))


def _word_matches(word: str, target: str) -> bool:
    # as mglkit.mongolian.matches_alias: a year is that year; a word may carry a case ending
    if target.isdigit():
        return word == target or (word.startswith(target) and not word[len(target)].isdigit())
    return word == target or (word.startswith(target) and len(word) - len(target) <= 4)


def _in_row(words: tuple[str, ...], target: list[str]) -> bool:
    last = len(words) - len(target)
    for start, word in enumerate(words):
        if start > last:
            break
        if _word_matches(word, target[0]) and all(
            _word_matches(w, t) for w, t in zip(words[start + 1 : start + len(target)], target[1:], strict=True)
        ):
            return True
    return False


# The training side, indexed once ----------------------------------------------------------------


@dataclass(frozen=True)
class _Unit:
    """A sentence of a training text; its question or title is a unit of its own (``head``)."""

    record: int
    text: str
    words: tuple[str, ...]
    stems: frozenset[str]
    keys: _Keys
    head: bool


class _Index:
    """Training texts cut into sentences, with stem frequencies and the look-ups the signals need."""

    def __init__(self, training: list[TrainingText]):
        self.units: list[_Unit] = []
        self.heads: list[frozenset[str]] = []
        self.head_keys: list[_Keys] = []
        self.whole: list[_Keys] = []
        self.postings: dict[str, set[int]] = defaultdict(set)
        self.head_postings: dict[str, set[int]] = defaultdict(set)
        self.gram_postings: dict[tuple, set[int]] = defaultdict(set)
        for number, text in enumerate(training):
            self._add(number, text)
        self.vocab = sorted(self.postings)
        self.df = Counter(stem for unit in self.units for stem in unit.stems)
        self.size = max(1, len(self.units))
        self._weights: dict[str, float] = {}

    def _add(self, number: int, text: TrainingText) -> None:
        first = len(self.units)
        parts = [(text.question, True)] + [(s, False) for s in _sentences(text.answer)]
        for sentence, head in parts:
            found = stems(sentence)
            unit = _Unit(number, sentence, tuple(normalize_for_compare(sentence).split()), found, _keys(found), head)
            for word in unit.words:
                self.postings[word].add(len(self.units))
            self.units.append(unit)
        self.heads.append(self.units[first].stems)
        self.head_keys.append(self.units[first].keys)
        self.whole.append(_keys(s for unit in self.units[first:] for s in unit.stems))
        if text.kind != "corpus":
            for stem in self.heads[-1]:
                self.head_postings[stem].add(number)
        for gram in ngrams(text.question) | ngrams(text.answer):
            self.gram_postings[gram].add(number)

    def weight(self, stem: str) -> float:
        """Rare stems weigh more (inverse sentence frequency)."""
        if stem not in self._weights:
            self._weights[stem] = math.log(1 + self.size / (1 + self.df.get(stem, 0)))
        return self._weights[stem]

    def coverage(self, wanted: frozenset[str], context: _Keys) -> float:
        """Weighted share of the ``wanted`` stems that ``context`` has."""
        total = sum(self.weight(s) for s in wanted)
        return sum(self.weight(s) for s in wanted if context.has(s)) / total if total else 0.0

    def occurrences(self, answer: str) -> list[int]:
        """Units where the answer's words occur in a row (a word may carry a case ending)."""
        target = normalize_for_compare(answer).split()
        if not target:
            return []
        found: set[int] = set()
        for word in self.vocab[bisect.bisect_left(self.vocab, target[0]) :]:
            if not word.startswith(target[0]):
                break
            if not _word_matches(word, target[0]):
                continue
            units = self.postings[word]
            found.update(units if len(target) == 1 else (u for u in units if _in_row(self.units[u].words, target)))
        return sorted(found)

    def context(self, number: int) -> _Keys:
        """What an answer in this unit is said about: the sentence and its text's question or title;
        the whole text when the question or title itself holds the answer; also the sentence before
        one that opens with a pronoun."""
        unit = self.units[number]
        if unit.head:
            return self.whole[unit.record]
        context = unit.keys | self.head_keys[unit.record]
        previous = self.units[number - 1]
        if unit.words and unit.words[0] in _PRONOUNS and not previous.head and previous.record == unit.record:
            context |= previous.keys
        return context


# The signals ------------------------------------------------------------------------------------


def _question_stems(item: Item) -> frozenset[str]:
    """The item question's stems, without those of its own answers."""
    own = _keys(stems(" ".join(item.answers)))
    return frozenset(s for s in stems(item.question) if not own.has(s))


def _names(question: str) -> list[frozenset[str]]:
    """The named things a question names: runs of capitalised words, each as its stems."""
    return [stems(run.group()) for run in _NAMES.finditer(question) if stems(run.group())]


def _answer_matches(item: Item, wanted: frozenset[str], index: _Index, threshold: float) -> dict:
    """Per training record: (score, answer, unit) when it states ``required`` of the item's answers
    in sentences about the item question."""
    best: dict[int, dict[str, tuple[float, int]]] = defaultdict(dict)
    names = _names(item.question)
    others = wanted - {s for name in names for s in name}
    for answer in item.answers:
        units = index.occurrences(answer)
        if item.kind == "pairs" and len(units) > COMMON_SHARE * index.size:
            continue
        for unit in units:
            context = index.context(unit)
            score = index.coverage(wanted, context)
            if len(names) >= 2 and all(all(map(context.has, name)) for name in names) and any(map(context.has, others)):
                score = max(score, threshold)  # names every named thing the question names, and more
            record = index.units[unit].record
            if score > best[record].get(answer, (-1.0, 0))[0]:
                best[record][answer] = (score, unit)
    found = {}
    for record, per_answer in best.items():
        ranked = sorted(((score, answer, unit) for answer, (score, unit) in per_answer.items()), reverse=True)
        if len(ranked) >= item.required and ranked[item.required - 1][0] >= threshold:
            found[record] = ranked[item.required - 1]
    return found


def _question_matches(wanted: frozenset[str], index: _Index, threshold: float) -> dict[int, float]:
    """Training questions that share most of the weighted stems both ways. Such a question has one
    of the item's three rarest stems (missing all three would cost more than the threshold allows),
    so only those are compared."""
    rarest = sorted(wanted, key=lambda s: (index.df.get(s, 0), s))[:3]
    found = {}
    wanted_keys = _keys(wanted)
    for record in {r for stem in rarest for r in index.head_postings.get(stem, ())}:
        head = index.heads[record]
        similarity = min(index.coverage(wanted, _keys(head)), index.coverage(head, wanted_keys))
        if similarity >= threshold:
            found[record] = similarity
    return found


def _wording_matches(item: Item, index: _Index, threshold: float) -> dict[int, float]:
    """Training texts holding most of the word 3-grams of the item's passage or chosen answer."""
    grams = ngrams(item.text)
    shared = Counter(r for gram in grams for r in index.gram_postings.get(gram, ()))
    return {r: count / len(grams) for r, count in shared.items() if count / len(grams) >= threshold}


def detect(
    items: Iterable[Item],
    training: list[TrainingText],
    threshold: float = ANSWER_THRESHOLD,
    question_threshold: float = QUESTION_THRESHOLD,
    wording_threshold: float = WORDING_THRESHOLD,
) -> list[Match]:
    """Every (item, training text) where a signal fires, with the strongest signal: the answer
    stated about the same thing, else the same question, else the same wording."""
    index = _Index(training)
    matches = []
    for item in items:
        wanted = _question_stems(item)
        answered = _answer_matches(item, wanted, index, threshold) if item.answers and wanted else {}
        asked = _question_matches(wanted, index, question_threshold) if wanted else {}
        worded = _wording_matches(item, index, wording_threshold) if item.text else {}
        for record in sorted(set(answered) | set(asked) | set(worded)):
            matches.append(_match(item, training[record], index, answered.get(record), asked.get(record),
                                  worded.get(record)))  # fmt: skip
    return matches


def _match(item: Item, text: TrainingText, index: _Index, answered, asked, worded) -> Match:
    if answered:
        score, answer, unit = answered
        reason = f"states «{answer}» about the same thing: «{_snippet(index.units[unit].text)}»"
        return Match(item.id, text.id, text.where, reason, round(score, 3), "answer")
    if asked:
        return Match(item.id, text.id, text.where, f"asks the same question: «{_snippet(text.question)}»",
                     round(asked, 3), "question")  # fmt: skip
    reason = f"{worded:.0%} of its word {LEAK_N}-grams are in this text"
    return Match(item.id, text.id, text.where, reason, round(worded, 3), "wording")


def by_item(matches: Iterable[Match]) -> dict[str, list[Match]]:
    """The matches of each item, strongest signal and score first (for per-item warnings)."""
    grouped: dict[str, list[Match]] = defaultdict(list)
    for match in matches:
        grouped[match.item_id].append(match)
    for found in grouped.values():
        found.sort(key=lambda m: (SIGNALS.index(m.signal), -m.score))
    return dict(grouped)


def splits(
    items: Iterable[Item], matches: Iterable[Match], always_seen: Iterable[str] = ()
) -> dict[str, dict[str, str]]:
    """Per kind (facts, pairs, fluency), each item's split: ``seen`` when a training text gives it
    away (or it is in ``always_seen``), else ``unseen``. Retrieval items have no split: their
    answers are corpus passages by design."""
    seen = {m.item_id for m in matches} | set(always_seen)
    labelled: dict[str, dict[str, str]] = {kind: {} for kind in SPLIT_KINDS}
    for item in items:
        if item.kind in labelled:
            labelled[item.kind][item.id] = "seen" if item.id in seen else "unseen"
    return labelled


def load_splits(suite_path: str | Path) -> dict[str, str] | None:
    """A suite's committed seen / unseen labels ({item id: "seen" | "unseen"}), or None without a manifest."""
    path = Path(suite_path) / SPLITS_FILE
    if not path.is_file():
        return None
    try:
        manifest = orjson.loads(path.read_bytes())
        return {item: split for kind in SPLIT_KINDS for item, split in manifest["splits"][kind].items()}
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        hint = "regenerate it: python benchmarks/make_splits.py"
        raise UnusableInputError(f"{path}: not a splits manifest", hint=hint) from None


def _snippet(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# Calibration ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Calibration:
    """The detector on a labelled set: counts, and the examples it got wrong."""

    true_positives: int
    false_positives: int
    false_negatives: int
    true_negatives: int
    wrong: tuple[str, ...]

    @property
    def precision(self) -> float:
        flagged = self.true_positives + self.false_positives
        return self.true_positives / flagged if flagged else 1.0

    @property
    def recall(self) -> float:
        positives = self.true_positives + self.false_negatives
        return self.true_positives / positives if positives else 1.0


def calibrate(path: str | Path, split: str, **thresholds: float) -> Calibration:
    """Score a labelled set (tests/data/contamination_pairs.jsonl): each line holds an item, a
    training text and whether the text gives the item away; ``split`` is ``tune`` or ``heldout``."""
    examples = [record for _, record in _jsonl(Path(path)) if record["split"] == split]
    items = {_group(e["id"]): _labelled_item(_group(e["id"]), e["item"]) for e in examples}
    training = [_labelled_training(e["id"], e["training"]) for e in examples]
    found = {(m.item_id, m.training_id) for m in detect(items.values(), training, **thresholds)}
    counts: Counter = Counter()
    wrong = []
    for example in examples:
        flagged = (_group(example["id"]), example["id"]) in found
        truth = example["label"] == "contaminated"
        counts[(flagged, truth)] += 1
        if flagged != truth:
            wrong.append(example["id"])
    return Calibration(counts[(True, True)], counts[(True, False)], counts[(False, True)], counts[(False, False)],
                       tuple(wrong))  # fmt: skip


def _group(example_id: str) -> str:
    return example_id.rsplit("-", 1)[0]


def _labelled_item(item_id: str, record: dict) -> Item:
    if record["kind"] == "pairs":
        return pair_item(item_id, record["prompt"], record["chosen"], record["rejected"])
    return Item(item_id, "facts", record["question"], tuple(record["answers"]))


def _labelled_training(text_id: str, record: dict) -> TrainingText:
    if record["kind"] == "pairs":
        return TrainingText(text_id, text_id, record["prompt"], record["chosen"], "pairs")
    if record["kind"] == "facts":
        return TrainingText(text_id, text_id, record["question"], "; ".join(record["answers"]), "facts")
    return TrainingText(text_id, text_id, record["title"], record["text"], "corpus")
