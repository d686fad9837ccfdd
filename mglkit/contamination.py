"""Contamination written in other words: which benchmark items the training data already states.

A benchmark item is *seen* when a training text gives it away. Three signals, each explainable:

- ``answer``: the item's correct answer (a facts item's keyed choice or one of its aliases; for a
  preference pair, the key facts its chosen answer has and its rejected answer lacks: years,
  numbers, names) occurs in a training sentence that is about the same thing: that sentence, with
  the training text's question or title, covers enough of the item question's content-word stems
  (:mod:`mglkit.stemming`), each stem weighted by how rare it is in the training sentences, so
  «Занабазар» counts more than «хаан» or «улс».
- ``question``: the item question and a training question share most of their weighted stems.
- ``wording``: most of the item's word 3-grams occur in one training text (:mod:`mglkit.overlap`),
  the older near-duplicate test.

Pure Python on sets and inverted indexes (no torch): fast enough for ``mglkit eval --train-data``.
Items, training texts, matches and seen / unseen labels are :mod:`mglkit.contamination_data`'s,
re-exported here. ``data/DATA.md`` describes the design and its precision and recall on a held-out
labelled set.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .contamination_data import (
    BUNDLED_TRAINING,
    SPLIT_KINDS,
    SPLITS_FILE,
    Item,
    Match,
    TrainingText,
    bundled_training,
    fact_item,
    items_from_suite,
    key_facts,
    load_splits,
    pair_item,
    splits,
    training_texts,
)
from .mongolian import normalize_for_compare
from .overlap import LEAK_N, ngrams
from .pairs import read_jsonl
from .stemming import NAMES, PRONOUNS, Keys, in_row, keys, sentences, stems, word_matches

__all__ = [
    "ANSWER_THRESHOLD", "BUNDLED_TRAINING", "COMMON_SHARE", "QUESTION_THRESHOLD", "SIGNALS", "SPLITS_FILE",
    "SPLIT_KINDS", "WORDING_THRESHOLD", "Calibration", "Item", "Match", "TrainingText", "bundled_training", "by_item",
    "calibrate", "detect", "fact_item", "items_from_suite", "key_facts", "load_splits", "pair_item", "splits", "stems",
    "training_texts",
]  # fmt: skip

# Calibrated on tests/data/contamination_pairs.jsonl (tune part); see benchmarks/RESULTS.md.
ANSWER_THRESHOLD = 0.45  # weighted share of the item question's stems the answer's context covers
QUESTION_THRESHOLD = 0.85  # weighted stem similarity of two questions
WORDING_THRESHOLD = 0.5  # share of the item's word 3-grams found in one training text
# A pair's key fact found in more than this share of training sentences («Монгол») proves nothing.
COMMON_SHARE = 0.02

SIGNALS = ("answer", "question", "wording")


# The training side, indexed once ----------------------------------------------------------------


@dataclass(frozen=True)
class _Unit:
    """A sentence of a training text; its question or title is a unit of its own (``head``)."""

    record: int
    text: str
    words: tuple[str, ...]
    stems: frozenset[str]
    keys: Keys
    head: bool


class _Index:
    """Training texts cut into sentences, with stem frequencies and the look-ups the signals need."""

    def __init__(self, training: list[TrainingText]):
        self.units: list[_Unit] = []
        self.heads: list[frozenset[str]] = []
        self.head_keys: list[Keys] = []
        self.whole: list[Keys] = []
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
        parts = [(text.question, True)] + [(s, False) for s in sentences(text.answer)]
        for sentence, head in parts:
            found = stems(sentence)
            unit = _Unit(number, sentence, tuple(normalize_for_compare(sentence).split()), found, keys(found), head)
            for word in unit.words:
                self.postings[word].add(len(self.units))
            self.units.append(unit)
        self.heads.append(self.units[first].stems)
        self.head_keys.append(self.units[first].keys)
        self.whole.append(keys(s for unit in self.units[first:] for s in unit.stems))
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

    def coverage(self, wanted: frozenset[str], context: Keys) -> float:
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
            if not word_matches(word, target[0]):
                continue
            units = self.postings[word]
            found.update(units if len(target) == 1 else (u for u in units if in_row(self.units[u].words, target)))
        return sorted(found)

    def context(self, number: int) -> Keys:
        """What an answer in this unit is said about: the sentence and its text's question or title;
        the whole text when the question or title itself holds the answer; also the sentence before
        one that opens with a pronoun."""
        unit = self.units[number]
        if unit.head:
            return self.whole[unit.record]
        context = unit.keys | self.head_keys[unit.record]
        previous = self.units[number - 1]
        if unit.words and unit.words[0] in PRONOUNS and not previous.head and previous.record == unit.record:
            context |= previous.keys
        return context


# The signals ------------------------------------------------------------------------------------


def _question_stems(item: Item) -> frozenset[str]:
    """The item question's stems, without those of its own answers."""
    own = keys(stems(" ".join(item.answers)))
    return frozenset(s for s in stems(item.question) if not own.has(s))


def _names(question: str) -> list[frozenset[str]]:
    """The named things a question names: runs of capitalised words, each as its stems."""
    return [stems(run.group()) for run in NAMES.finditer(question) if stems(run.group())]


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
    wanted_keys = keys(wanted)
    for record in {r for stem in rarest for r in index.head_postings.get(stem, ())}:
        head = index.heads[record]
        similarity = min(index.coverage(wanted, keys(head)), index.coverage(head, wanted_keys))
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
        return Match(item.id, text.id, text.where, f"states «{answer}» about the same thing", round(score, 3),
                     "answer", _snippet(index.units[unit].text))  # fmt: skip
    if asked:
        return Match(item.id, text.id, text.where, "asks the same question", round(asked, 3), "question",
                     _snippet(text.question))  # fmt: skip
    reason = f"{worded:.0%} of its word {LEAK_N}-grams are in this text"
    return Match(item.id, text.id, text.where, reason, round(worded, 3), "wording", _snippet(text.answer))


def by_item(matches: Iterable[Match]) -> dict[str, list[Match]]:
    """The matches of each item, strongest signal and score first (for per-item warnings)."""
    grouped: dict[str, list[Match]] = defaultdict(list)
    for match in matches:
        grouped[match.item_id].append(match)
    for found in grouped.values():
        found.sort(key=lambda m: (SIGNALS.index(m.signal), -m.score))
    return dict(grouped)


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
    examples = [record for _, record in read_jsonl(path) if record["split"] == split]
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
