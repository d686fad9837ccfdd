"""The bundled data: schema, counts, validation, balance, coverage, no leakage, card in sync."""

import importlib.util
import json
import re
from collections import Counter

import pytest
from conftest import BUILTIN_VALIDATORS, ROOT

import mglkit
from mglkit.history import DEGRADATIONS, FLAWS, PERIODS
from mglkit.mongolian import cyrillic_share, matches_alias, normalize_for_compare
from mglkit.overlap import leaks

TRAIN = ROOT / "data" / "mgl_history_grpo.jsonl"
SUITE = ROOT / "benchmarks"


def read(path):
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


@pytest.fixture(scope="module")
def data():
    return {
        "train": read(TRAIN),
        "pairs": read(SUITE / "pairs.jsonl"),
        "facts": read(SUITE / "facts.jsonl"),
        "fluency": read(SUITE / "fluency.jsonl"),
    }


def words(text):
    return len(text.split())


@pytest.mark.parametrize(("name", "minimum"), [("train", 200), ("pairs", 48)])
def test_pair_files_schema(data, name, minimum):
    records = data[name]
    assert len(records) >= minimum
    for r in records:
        assert set(r) == {"id", "period", "flaw", "prompt", "chosen", "rejected"}, r["id"]
        assert r["period"] in PERIODS and r["flaw"] in FLAWS, r["id"]
        assert words(r["prompt"]) >= 5 and 25 <= words(r["chosen"]) <= 80, r["id"]
        assert words(r["rejected"]) >= 10, r["id"]
    assert Counter(r["flaw"] for r in records).keys() == FLAWS.keys()


def test_facts_schema_and_balance(data):
    facts = data["facts"]
    assert len(facts) >= 150
    for f in facts:
        assert set(f) == {"id", "period", "question", "choices", "answer", "aliases", "note"}, f["id"]
        assert f["period"] in PERIODS and len(f["choices"]) == 4 and f["answer"] in range(4), f["id"]
        assert len(set(f["choices"])) == 4 and f["aliases"] and cyrillic_share(f["note"]) < 0.2, f["id"]
        right = f["choices"][f["answer"]].lower()
        assert any(a.lower() in right or right in a.lower() for a in f["aliases"]), f["id"]
        assert all(cyrillic_share(c) >= 0.8 or c.isdigit() for c in f["choices"]), f["id"]
    positions = Counter(f["answer"] for f in facts)
    assert max(positions.values()) - min(positions.values()) <= 1, positions


def test_fluency_schema(data):
    fluent = {r["id"]: r for r in data["fluency"] if "degraded" not in r}
    degraded = [r for r in data["fluency"] if "degraded" in r]
    assert len(fluent) >= 30 and len(degraded) >= 15
    for r in fluent.values():
        assert set(r) == {"id", "period", "text"} and 40 <= words(r["text"]) <= 120, r["id"]
        assert r["period"] in PERIODS and cyrillic_share(r["text"]) == 1.0, r["id"]
    for r in degraded:
        assert set(r) == {"id", "period", "text", "degraded", "source_id"}, r["id"]
        assert r["degraded"] in DEGRADATIONS and r["source_id"] in fluent, r["id"]
        assert fluent[r["source_id"]]["period"] == r["period"]
    kinds = Counter(r["degraded"] for r in degraded)
    assert kinds.keys() == set(DEGRADATIONS) and min(kinds.values()) >= 3


def test_ids_and_questions_are_unique(data):
    ids = [r["id"] for records in data.values() for r in records]
    assert len(ids) == len(set(ids))
    for name, key in (("train", "prompt"), ("pairs", "prompt"), ("facts", "question")):
        texts = [r[key].lower() for r in data[name]]
        assert len(texts) == len(set(texts)), name


def test_every_period_in_every_file(data):
    for name, records in data.items():
        assert {r["period"] for r in records} == set(PERIODS), name


@pytest.mark.parametrize("name", ["train", "pairs"])
def test_pair_files_pass_validate(data, name):
    path = TRAIN if name == "train" else SUITE / "pairs.jsonl"
    config = mglkit.ValidationConfig(validators=BUILTIN_VALIDATORS.split(","))
    report = mglkit.validate(path, config)
    assert report.stats.errors == 0, [f.message for f in report.findings if f.severity == "error"]
    flaws = {i + 1: r["flaw"] for i, r in enumerate(data[name])}
    for f in report.findings:
        intended = (f.rule == "size" and name == "pairs") or (
            f.rule == "language" and f.field == "rejected" and flaws[f.line] == "russian-mix"
        )
        assert intended, f


def test_no_benchmark_item_leaks_from_training(data):
    training = [(r["id"], r[k]) for r in data["train"] for k in ("prompt", "chosen")]
    suite = [(r["id"], r[k]) for r in data["pairs"] for k in ("prompt", "chosen")]
    suite += [(r["id"], r["question"]) for r in data["facts"]]
    suite += [(r["id"], r["text"]) for r in data["fluency"] if "degraded" not in r]
    assert leaks(suite, training) == []
    train_prompts = {r["prompt"].lower() for r in data["train"]}
    assert not train_prompts & {r["prompt"].lower() for r in data["pairs"]}


def test_leak_measure_catches_a_paraphrase(data):
    chosen = data["train"][0]["chosen"]
    paraphrase = chosen.replace(".", ",", 1)
    assert leaks([("x", paraphrase)], [("t", chosen)])


def test_data_card_tables_match_the_files():
    spec = importlib.util.spec_from_file_location("update_card", ROOT / "data" / "update_card.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    card = (ROOT / "data" / "DATA.md").read_text(encoding="utf-8")
    assert module.card_with_tables(card) == card, "run: python data/update_card.py"


@pytest.fixture(scope="module")
def extra():
    return {
        "corpus": read(ROOT / "data" / "corpus" / "passages.jsonl"),
        "retrieval": read(SUITE / "retrieval.jsonl"),
        "facts_train": read(ROOT / "data" / "facts_train.jsonl"),
    }


def test_corpus(extra):
    corpus = extra["corpus"]
    assert len(corpus) >= 150 and {r["period"] for r in corpus} == set(PERIODS)
    assert len({r["id"] for r in corpus}) == len(corpus)
    for r in corpus:
        assert set(r) == {"id", "period", "title", "text"} and r["title"], r["id"]
        assert 60 <= words(r["text"]) <= 200 and cyrillic_share(r["text"]) >= 0.9, r["id"]


def test_retrieval_questions_name_real_passages(extra):
    ids = {r["id"] for r in extra["corpus"]}
    questions = extra["retrieval"]
    assert len(questions) >= 60 and {r["period"] for r in questions} == set(PERIODS)
    assert all(r["passage_ids"] and set(r["passage_ids"]) <= ids and words(r["question"]) >= 5 for r in questions)
    assert len({r["question"] for r in questions}) == len(questions)


def test_training_facts_are_disjoint_from_the_benchmark(data, extra):
    train = extra["facts_train"]
    assert len(train) >= 150 and {r["period"] for r in train} == set(PERIODS)
    for f in train:
        assert set(f) == {"id", "period", "question", "choices", "answer", "aliases", "note"}, f["id"]
        assert len(f["choices"]) == 4 and f["answer"] in range(4) and f["aliases"], f["id"]
    benchmark = [set(f["question"].lower().split()) for f in data["facts"]]
    for f in train:
        mine = set(f["question"].lower().split())
        closest = max(len(mine & other) / len(mine | other) for other in benchmark)
        assert closest < 0.6, (f["id"], f["question"])
    assert not {f["id"] for f in train} & {f["id"] for f in data["facts"]}


def test_no_benchmark_item_leaks_from_the_corpus(data, extra):
    corpus = [(r["id"], r["text"]) for r in extra["corpus"]]
    suite = [(r["id"], r[k]) for r in data["pairs"] for k in ("prompt", "chosen")]
    suite += [(r["id"], r["question"]) for r in data["facts"]]
    suite += [(r["id"], r["text"]) for r in data["fluency"] if "degraded" not in r]
    assert leaks(suite, corpus) == []


# Corrections from the audit (issue 13): each test fails if its error comes back ----------------------


def texts_of(data, extra):
    """(where, text) for every text the bundled files hold, notes included."""
    for name, records in {**data, **extra}.items():
        for r in records:
            for field in ("title", "text", "prompt", "chosen", "rejected", "question", "note"):
                if isinstance(r.get(field), str):
                    yield f"{name} {r['id']} {field}", r.get("title", "") + " " + r[field]


def sentences(text):
    return re.split(r"(?<=[.!?])(?<!\b\w\.)\s+", text)  # not after an initial: «П. Очирбат»


def test_bagabandi_beat_ochirbat_in_1997_and_gonchigdorj_in_2001(data, extra):
    for where, text in texts_of(data, extra):
        for sentence in sentences(text):
            assert not ("1997" in sentence and re.search("Гончигдорж|Gonchigdorj", sentence)), where
    passage = next(r["text"] for r in extra["corpus"] if r["id"] == "democracy-p08")
    assert any("1997" in s and "Очирбат" in s for s in sentences(passage))
    assert any("2001" in s and "Гончигдорж" in s for s in sentences(passage))


def test_the_secret_historys_count_of_commanders_is_unambiguous(data):
    fact = next(f for f in data["facts"] if f["id"] == "facts-chinggis-04")
    assert "нууц товчоо" in fact["question"].lower() and fact["choices"][fact["answer"]] == "95"
    assert "88" not in fact["choices"]  # the Secret History's list names 88 people


def test_kuchlug_is_called_a_naiman_not_eight_nobles(data):
    question = next(f["question"] for f in data["facts"] if f["id"] == "facts-khitan-08")
    assert "Найман" in question and "найман ноён" not in question


def test_the_lamas_honorific_is_not_used_for_sukhbaatar_or_natsagdorj(data, extra):
    for where, text in texts_of(data, extra):
        for sentence in sentences(text):
            if "таалал төгс" in sentence:
                assert not re.search("Сүхбаатар|Нацагдорж", sentence), where


def test_shar_moron_is_the_xar_moron_and_the_yellow_river_is_named_huanghe(data, extra):
    for where, text in texts_of(data, extra):
        for sentence in sentences(text):
            if "Шар мөр" in sentence:
                assert "Ляо гол" in sentence, (where, sentence)


def test_both_danzanravjaa_passages_answer_the_danzanravjaa_questions(extra):
    about = {r["id"] for r in extra["corpus"] if "Данзанравжаа" in r["title"]}
    assert len(about) == 2
    asked = [r for r in extra["retrieval"] if "Данзанравжаа" in r["question"]]
    assert asked and all(set(r["passage_ids"]) == about for r in asked)


# Ordinary words, or names of something else the same answers mention, make wrong answers match.
AMBIGUOUS_ALIASES = {"төв", "баруун", "зүүн", "ач", "ес", "наян", "баян", "бэрх", "юань"}


@pytest.mark.parametrize("name", ["facts", "facts_train"])
def test_no_alias_is_a_word_of_a_wrong_choice_or_of_the_question(data, extra, name):
    for f in {**data, **extra}[name]:
        wrong = [c for i, c in enumerate(f["choices"]) if i != f["answer"]]
        for alias in f["aliases"]:
            assert not matches_alias(f["question"], [alias]), (f["id"], alias, "in the question")
            assert not any(matches_alias(choice, [alias]) for choice in wrong), (f["id"], alias, wrong)
            assert normalize_for_compare(alias) not in AMBIGUOUS_ALIASES, (f["id"], alias)


def changed_numbers(record):
    """The (chosen, rejected) numbers a wrong-date pair changes; None when more than numbers differ."""
    chosen, rejected = record["chosen"].split(), record["rejected"].split()
    if len(chosen) != len(rejected):
        return None
    changes = set()
    for a, b in zip(chosen, rejected, strict=True):
        if a != b:
            if re.sub(r"\d", "", a) != re.sub(r"\d", "", b) and {a, b} != {"дугаар", "дүгээр"}:
                return None
            if re.sub(r"\d", "", a) == re.sub(r"\d", "", b):
                changes.add((a, b))
    return changes


def test_wrong_date_pairs_change_dates_only_and_the_card_names_those_changing_two(data):
    pairs = [r for name in ("train", "pairs") for r in data[name] if r["flaw"] == "wrong-date"]
    changes = {r["id"]: changed_numbers(r) for r in pairs}
    assert all(changes.values()), [i for i, c in changes.items() if not c]
    two = {i for i, c in changes.items() if len(c) > 1}
    card = (ROOT / "data" / "DATA.md").read_text(encoding="utf-8")
    claim = card[card.index("Most change one date") : card.index("Other flaws")]
    assert set(re.findall(r"`([\w-]+-\d\d)`", claim)) == two
