"""The contamination detector: its calibration floor, the audit's examples, clean look-alikes, the
bundled seen / unseen manifest, GRPO prompts that give nothing away, and the input formats."""

import importlib.util
import json
import subprocess
import sys
import time

import pytest
from conftest import ROOT

from mglkit import contamination
from mglkit.contamination import Item, TrainingText, detect, items_from_suite, key_facts, stems, training_texts
from mglkit.errors import UnusableInputError
from mglkit.suites import load_suite

LABELLED = ROOT / "tests" / "data" / "contamination_pairs.jsonl"
# The numbers benchmarks/RESULTS.md records (precision, recall): the detector must not fall below them.
RECORDED = {"tune": (0.952, 0.975), "heldout": (0.909, 0.869)}


@pytest.fixture(scope="module")
def bundled():
    items = {item.id: item for item in items_from_suite(load_suite(str(ROOT / "benchmarks")))}
    training = contamination.bundled_training()
    return items, training, detect(items.values(), training)


def found(matches):
    return {(m.item_id, m.training_id) for m in matches}


def test_the_labelled_set_has_its_parts():
    examples = [json.loads(line) for line in LABELLED.read_text(encoding="utf-8").splitlines()]
    sizes = {(e["split"], e["label"]) for e in examples}
    assert sizes == {(s, label) for s in ("tune", "heldout") for label in ("contaminated", "clean")}
    for split, least in (("tune", 40), ("heldout", 20)):
        for label in ("contaminated", "clean"):
            assert sum(e["split"] == split and e["label"] == label for e in examples) >= least
    groups = {split: {e["id"].rsplit("-", 1)[0] for e in examples if e["split"] == split} for split in RECORDED}
    assert not groups["tune"] & groups["heldout"]  # no item is in both parts


@pytest.mark.parametrize("split", sorted(RECORDED))
def test_the_detector_reaches_its_recorded_precision_and_recall(split):
    result = contamination.calibrate(LABELLED, split)
    precision, recall = RECORDED[split]
    assert result.precision >= precision and result.recall >= recall, result


# From the audit (issue 13): benchmark items a training text gives away in other words.
AUDIT = [
    ("facts-buddhism-08", "buddhism-14"),  # Zanabazar died in 1723 ↔ "Занабазар хэзээ, хаана таалал төгссөн бэ?"
    ("facts-culture-01", "buddhism-11"),  # who made the Soyombo script
    ("facts-buddhism-02", "buddhism-01"),  # where Altan Khan met Sonam Gyatso
    ("facts-bogd-khaan-05", "bogd-khaan-08"),  # the 1919 abolition of autonomy
    ("facts-bogd-khaan-07", "bogd-khaan-09"),  # Sando, the last amban
    ("facts-revolution-06", "revolution-02"),  # Sükhbaatar born 1893, a wrong-date pair 1893 vs 1899
    ("pairs-culture-01", "yuan-05"),  # who made the square script, and when
]


def test_the_audits_examples_are_caught(bundled):
    _, _, matches = bundled
    assert set(AUDIT) <= found(matches)


def test_the_old_grpo_prompts_the_audit_named_are_caught(bundled):
    items, _, _ = bundled
    old = [
        TrainingText("1913", "", "1913 оны Монгол, Төвдийн гэрээнд Төвдийн талаас гарын үсэг зурсан буриад гаралтай "
                     "лам хэн бэ?", "Агваан Доржиев; Доржиев", "facts"),
        TrainingText("1640", "", "Их цааз хуулийг баталсан 1640 оны чуулганд оролцсон Халхын Засагт хан хэн бэ?",
                     "Субудай", "facts"),
        TrainingText("Tümed", "", "1571 оны эвлэрлээр Мин улс Түмэдийн Алтан хаанд ямар цол олгосон бэ?",
                     "Шүньи ван; Шүньи", "facts"),
    ]  # fmt: skip
    wanted = {"facts-bogd-khaan-06": "1913", "facts-culture-03": "1640", "facts-northern-yuan-05": "Tümed"}
    assert found(detect([items[i] for i in wanted], old)) == set(wanted.items())


# The same person or event, another fact: none of these training texts states the item's answer.
LOOK_ALIKES = [
    ("facts-buddhism-08", "buddhism-08"),  # Zanabazar's death year ↔ his birth year
    ("facts-empire-05", "empire-07"),  # Möngke's death ↔ his election in 1251
    ("facts-yuan-01", "yuan-02"),  # Khubilai's death ↔ his enthronement in 1260
    ("facts-qing-02", "qing-04"),  # Galdan's death year ↔ "he died the next year" after Zuunmod
    ("facts-revolution-06", "revolution-08"),  # Sükhbaatar's birth ↔ the People's Government in July 1921
    ("facts-socialist-03", "socialist-14"),  # the year of Gürragchaa's flight ↔ war on Japan in 1945
]


def test_clean_look_alikes_are_not_caught(bundled):
    _, _, matches = bundled
    assert not set(LOOK_ALIKES) & found(matches)


def test_grpo_prompts_state_no_benchmark_answer(bundled):
    items, _, _ = bundled
    scored = [item for item in items.values() if item.kind in ("facts", "pairs")]
    assert detect(scored, training_texts(ROOT / "data" / "facts_train.jsonl")) == []


def load_make_splits():
    spec = importlib.util.spec_from_file_location("make_splits", ROOT / "benchmarks" / "make_splits.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_splits_manifest_is_in_sync_with_the_data_and_the_detector():
    module = load_make_splits()
    committed = (ROOT / "benchmarks" / contamination.SPLITS_FILE).read_text(encoding="utf-8")
    assert module.text(module.manifest()) == committed, "run: python benchmarks/make_splits.py"


def test_the_audited_items_are_seen_and_enough_stay_unseen():
    assert load_make_splits().AUDITED_SEEN == (
        "facts-buddhism-02",
        "facts-buddhism-08",
        "facts-bogd-khaan-05",
        "facts-bogd-khaan-07",
        "facts-revolution-06",
        "facts-culture-01",
        "pairs-culture-01",
    )
    labels = contamination.load_splits(ROOT / "benchmarks")
    assert all(labels[i] == "seen" for i in load_make_splits().AUDITED_SEEN)
    suite = load_suite(str(ROOT / "benchmarks"))
    assert set(labels) == {f["id"] for f in suite.facts} | {p.extra["id"] for p in suite.pairs} | {
        r["id"] for r in suite.fluency if "degraded" not in r
    }
    assert sum(labels[f["id"]] == "unseen" for f in suite.facts) >= 100
    assert sum(labels[p.extra["id"]] == "unseen" for p in suite.pairs) >= 40


def test_load_splits_without_a_manifest_and_with_a_broken_one(tmp_path):
    assert contamination.load_splits(tmp_path) is None
    (tmp_path / contamination.SPLITS_FILE).write_text("{}", encoding="utf-8")
    with pytest.raises(UnusableInputError, match="not a splits manifest"):
        contamination.load_splits(tmp_path)


def test_detection_on_the_bundled_data_takes_seconds_and_imports_no_torch(bundled):
    items, training, _ = bundled
    start = time.perf_counter()
    detect(items.values(), training)
    assert time.perf_counter() - start < 30  # about 2 s on a quiet machine; generous for a shared one
    code = "import sys, mglkit.contamination; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


def test_key_facts_are_what_chosen_says_and_rejected_does_not():
    chosen = "Тогоонтөмөр 1333 онд Юань улсын хаан ширээнд суусан. Түүний үед Мин улсын Жу Юаньжан босчээ."
    rejected = "Тогоонтөмөр 1323 онд Юань улсын хаан ширээнд суусан. Түүний үед Мин улсын Жу Юаньжан босчээ."
    assert key_facts("Тогоонтөмөр хэзээ хаан болсон бэ?", chosen, rejected) == ("1333",)
    names = key_facts("Жа лам гэж хэн бэ?", "Тэр 1912 онд Нийслэл Хүрээнд ирсэн.", "Тэр нэгэн лам байсан.")
    assert names == ("1912", "нийслэл хүрээ")


def test_stems_fold_endings_vowel_drop_and_ways_of_saying_died():
    assert stems("бичгийг") == stems("бичиг") == {"бичиг"}
    assert stems("Нийслэл Хүрээнд") == {"нийслэл", "хүрээ"}
    assert stems("нас барсан") == stems("таалал төгссөн") == stems("амь үрэгдсэн") == {"үхэл"}
    assert stems("Занабазар хэдэн онд төрсөн бэ?") == stems("Занабазар мэндэлжээ") == {"занабазар", "мэндэл"}


def test_a_question_asked_again_and_a_copied_text_are_caught():
    item = Item("q", "facts", "Соёмбо бичгийг хэн зохиосон бэ?")
    passage = "Хүннүгийн язгууртны булшнуудаас хятад лакан эдлэл, алс баруун нутгаас ирсэн нэхмэл олдсон нь тэдний "
    text = Item("w", "fluency", "", text=passage + "худалдааны харилцааг гэрчилдэг.")
    training = [
        TrainingText("asked", "", "Соёмбо үсгийг хэн бүтээсэн бэ?", "Өндөр гэгээн", "pairs"),
        TrainingText("copied", "", "", passage + "өргөн харилцааг харуулдаг.", "corpus"),
    ]
    matches = {(m.item_id, m.training_id): m.signal for m in detect([item, text], training)}
    assert matches == {("q", "asked"): "question", ("w", "copied"): "wording"}


def write(path, records):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def test_training_texts_reads_pairs_facts_and_passages(tmp_path):
    pair = {"prompt": "Занабазар хэзээ төрсөн бэ?", "chosen": "Занабазар 1635 онд төрсөн.", "rejected": "Мэдэхгүй."}
    fact = {"id": "f1", "question": "Соёмбо бичгийг хэн зохиосон бэ?", "choices": ["Занабазар", "Пагва"],
            "answer": 0, "aliases": ["Өндөр гэгээн"]}  # fmt: skip
    write(tmp_path / "pairs.jsonl", [pair])
    write(tmp_path / "facts.jsonl", [fact])
    (tmp_path / "corpus").mkdir()
    corpus = write(tmp_path / "corpus" / "a.jsonl", [{"id": "p1", "title": "Занабазар", "text": "Занабазар 1723 онд."}])
    texts = training_texts(tmp_path / "pairs.jsonl") + training_texts(tmp_path / "facts.jsonl")
    texts += training_texts(corpus.parent)
    assert [(t.kind, t.question, t.answer) for t in texts] == [
        ("pairs", pair["prompt"], pair["chosen"]),
        ("facts", fact["question"], "Занабазар; Өндөр гэгээн"),
        ("corpus", "Занабазар", "Занабазар 1723 онд."),
    ]
    assert texts[0].where.endswith("pairs.jsonl:1") and texts[2].id == "p1"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"text": "а"}\n{not json\n', r"bad\.jsonl, line 2: not valid JSON"),
        ('{"question": "Хэн бэ?"}\n', r"bad\.jsonl, line 1: neither a pair, a facts item nor a passage"),
        ('{"prompt": "Хэн бэ?", "chosen": 3, "rejected": "б"}\n', r"bad\.jsonl, line 1"),
        ("\n", r"bad\.jsonl: no records"),
    ],
)
def test_unusable_training_files_are_named_with_their_line(tmp_path, content, message):
    (tmp_path / "bad.jsonl").write_text(content, encoding="utf-8")
    with pytest.raises(UnusableInputError, match=message):
        training_texts(tmp_path / "bad.jsonl")
    with pytest.raises(UnusableInputError, match="no such file"):
        training_texts(tmp_path / "missing.jsonl")
