"""Published benchmark formats (Belebele, SIB-200, FLORES-200): suite sources of the built-in
`formats` plugin, read as suites the evaluators score."""

import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import ROOT, cli, cli_json
from mglkit_formats import sib200
from mglkit_formats.readers import SIB200_LABELS, read_belebele, read_flores, read_sib200

from mglkit import EvalContext as Context
from mglkit import models
from mglkit.errors import ConfigError, UnusableInputError
from mglkit.models import load_model
from mglkit.suites import load_suite

FIXTURES = ROOT / "tests" / "suite_formats"
BELEBELE = FIXTURES / "belebele_khk_Cyrl.jsonl"
SIB200 = FIXTURES / "sib200_khk_Cyrl.tsv"
FLORES = FIXTURES / "flores_khk_Cyrl.devtest"


class KnownAnswers:
    """Scores the answers it is told are right high, every other continuation low; records the
    requests, so a test sees the context each choice was scored in."""

    name = "stub"

    def __init__(self, right):
        self.right = set(right)
        self.requests = []

    def prompt(self, question):
        return f"{question}\nХариулт:"

    def loglikelihood(self, requests):
        self.requests += requests
        return [(-1.0 if cont.strip() in self.right else -9.0, 3) for _, cont in requests]

    def generate(self, prompts, max_new_tokens):
        raise AssertionError("items without aliases are not asked to generate")


def evaluator(name):
    from mglkit.plugins import get_plugin_manager

    return get_plugin_manager().get("evaluator", name)


def test_belebele_items_are_facts_with_the_passage_as_context():
    suite = read_belebele(BELEBELE)
    assert suite.name == "belebele:belebele_khk_Cyrl.jsonl" and len(suite.facts) == 5
    assert [f["answer"] for f in suite.facts] == [0, 1, 2, 3, 0]  # correct_answer_num "1".."4"
    first = suite.facts[0]
    assert first["context"].startswith("Чингис хаан 1206 онд") and first["choices"][0] == "1206 онд"
    scorer = KnownAnswers(["1206 онд", "Мянгат, зуут, аравтын", "Орхон", "1992 онд", "Занабазар"])
    result = evaluator("facts").evaluate(scorer, suite, Context(reference=None))
    assert set(result.metrics) == {"acc", "acc_norm"}  # no generation for items without aliases
    assert result.per_item["acc"] == [1.0] * 5
    contexts = [context for context, _ in scorer.requests]
    assert contexts[::4] == [f"{f['context']}\n\n{f['question']}\nХариулт:" for f in suite.facts]
    assert len(contexts) == 20


def test_belebele_malformed_row_names_file_row_and_field():
    with pytest.raises(UnusableInputError) as error:
        read_belebele(FIXTURES / "belebele_bad.jsonl")
    assert error.value.exit_code == 2
    assert str(error.value) == f"{FIXTURES / 'belebele_bad.jsonl'}, line 3, field 'mc_answer3': missing"


def test_a_malformed_suite_row_stops_eval_before_the_model_loads():
    result = cli("eval", f"sib200:{FIXTURES / 'sib200_bad.tsv'}", "benchmarks", "--base", "no/such-model")
    assert result.returncode == 2
    assert f"mglkit: error: {FIXTURES / 'sib200_bad.tsv'}, line 4 (row 3), field 'category'" in result.stderr.decode()


def test_belebele_answer_number_is_checked(tmp_path):
    bad = tmp_path / "b.jsonl"
    lines = BELEBELE.read_text(encoding="utf-8").splitlines()
    lines[1] = lines[1].replace('"correct_answer_num": "2"', '"correct_answer_num": "5"')
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(UnusableInputError, match=r"line 2, field 'correct_answer_num': '5' is not 1, 2, 3 or 4"):
        read_belebele(bad)


def test_belebele_from_the_hubs_parquet(tmp_path):
    import json

    rows = [json.loads(line) for line in BELEBELE.read_text(encoding="utf-8").splitlines()]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "test-00000-of-00001.parquet")
    suite = read_belebele(tmp_path / "test-00000-of-00001.parquet")
    assert [f["answer"] for f in suite.facts] == [0, 1, 2, 3, 0]


def test_sib200_topics_are_scored_by_their_mongolian_labels():
    suite = read_sib200(SIB200)
    assert len(suite.facts) == 8
    assert all(f["choices"] == list(SIB200_LABELS.values()) for f in suite.facts)
    assert [f["choices"][f["answer"]] for f in suite.facts][:2] == ["улс төр", "спорт"]
    quoted = suite.facts[-1]["context"]
    assert quoted == 'Тамирчин "Энэ бол миний амьдралын хамгийн том ялалт" гэж хэлэв.'
    assert suite.facts[0]["id"] == "sib200-101" and suite.facts[0]["period"] == "politics"
    scorer = KnownAnswers(["улс төр"])
    result = evaluator("facts").evaluate(scorer, suite, Context(reference=None))
    assert result.per_item["acc"] == [1.0] + [0.0] * 7  # only the politics row is right
    assert len(scorer.requests) == 8 * 7 and set(result.groups["acc by period"]) == set(SIB200_LABELS)


def test_sib200_labels_are_configurable():
    """Another instance of the suite source, registered under another prefix, scores other labels."""
    english = sib200(labels={category: category for category in SIB200_LABELS}, prefix="sib200-en:")
    suite = english.load(SIB200)
    assert suite.facts[0]["choices"][suite.facts[0]["answer"]] == "politics"
    with pytest.raises(ConfigError, match="share a label"):
        read_sib200(SIB200, labels={"politics": "улс төр", "travel": "улс төр"})


def test_sib200_malformed_row_names_file_row_and_field():
    with pytest.raises(UnusableInputError) as error:
        read_sib200(FIXTURES / "sib200_bad.tsv")
    where = f"{FIXTURES / 'sib200_bad.tsv'}, line 4 (row 3), field 'category'"
    assert str(error.value) == f"{where}: 'sport' is not a SIB-200 category"
    assert "science/technology" in error.value.hint


def test_flores_sentences_are_fluent_passages():
    suite = read_flores(FLORES)
    assert [p["id"] for p in suite.fluency] == [f"flores-{n}" for n in range(1, 6)]
    assert suite.fluency[0]["text"] == "Монгол Улсын нийслэл Улаанбаатар хот Туул голын хөндийд оршдог."
    assert not suite.facts and not suite.pairs


def test_flores_blank_line_is_named():
    with pytest.raises(UnusableInputError, match=r"flores_bad\.devtest, line 3: empty line"):
        read_flores(FIXTURES / "flores_bad.devtest")


def flores_plus_parquet(path, texts):
    """The Hub's openlanguagedata/flores_plus columns."""
    n = len(texts)
    table = pa.table({
        "id": list(range(n)), "iso_639_3": ["khk"] * n, "iso_15924": ["Cyrl"] * n, "glottocode": ["halh1238"] * n,
        "text": texts, "url": ["https://example.org"] * n, "domain": ["wikinews"] * n, "topic": ["science"] * n,
        "has_image": [False] * n, "has_hyperlink": [False] * n, "last_updated": ["1.0"] * n,
    })  # fmt: skip
    pq.write_table(table, path)
    return path


def test_flores_from_the_hubs_parquet(tmp_path):
    texts = FLORES.read_text(encoding="utf-8").splitlines()
    suite = read_flores(flores_plus_parquet(tmp_path / "khk_Cyrl.parquet", texts))
    assert [p["text"] for p in suite.fluency] == texts and suite.fluency[0]["id"] == "flores-0"
    broken = flores_plus_parquet(tmp_path / "bad.parquet", [texts[0], None, texts[2]])
    with pytest.raises(UnusableInputError, match=r"bad\.parquet, row 2, field 'text': missing"):
        read_flores(broken)


def test_suite_sources_are_registered_and_expand_home_and_variables(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("SUITES", "data")
    (tmp_path / "data").mkdir()
    shutil.copy(SIB200, tmp_path / "data" / "test.tsv")
    shutil.copy(BELEBELE, tmp_path / "data" / "khk_Cyrl.jsonl")
    suite = load_suite("sib200:~/$SUITES/test.tsv")
    assert len(suite.facts) == 8 and suite.path == tmp_path / "data" / "test.tsv"
    assert suite.name == "sib200:test.tsv" and suite.files["test.tsv"]["sha256"]
    assert len(load_suite("belebele:$HOME/data/khk_Cyrl.jsonl").facts) == 5
    assert len(load_suite(f"flores:{FLORES}").fluency) == 5
    with pytest.raises(ConfigError, match="no path after 'flores:'"):
        load_suite("flores:")
    with pytest.raises(UnusableInputError, match="no such file"):
        load_suite("belebele:~/data/nope.jsonl")


def test_a_mixed_multi_suite_eval_is_one_table_with_one_model_load(quickstart_run, tmp_path, monkeypatch):
    """`mglkit eval belebele:~/... sib200:... flores:... benchmarks --base B --adapter A`: every suite
    scored by the same model load, in one report whose keys name suite and evaluator."""
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "belebele").mkdir()
    shutil.copy(BELEBELE, tmp_path / "belebele" / "khk_Cyrl.jsonl")
    suites = ["belebele:~/belebele/khk_Cyrl.jsonl", f"sib200:{SIB200}", f"flores:{FLORES}", "benchmarks"]
    loads = []
    monkeypatch.setattr(models, "load_model", lambda *a, **k: loads.append(a) or load_model(*a, **k))
    code, report = cli_json("eval", *suites, "--base", "mglkit:tiny", "--adapter", quickstart_run,
                            "--limit", "3", "--evaluators", "facts,fluency", "--max-new-tokens", "4")  # fmt: skip
    assert code == 0 and len(loads) == 1
    assert report["columns"] == ["base", "run"]
    facts = {key for key in report["evaluators"] if key.endswith("/facts")}
    assert facts == {"belebele:khk_Cyrl.jsonl/facts", "sib200:sib200_khk_Cyrl.tsv/facts", "benchmarks/facts"}
    assert {"flores:flores_khk_Cyrl.devtest/fluency", "benchmarks/fluency"} <= set(report["evaluators"])
    belebele = report["evaluators"]["belebele:khk_Cyrl.jsonl/facts"]
    assert set(belebele["base"]["metrics"]) == {"acc", "acc_norm"}  # no aliases: no generation
    assert 0.0 <= belebele["run"]["metrics"]["acc"]["value"] <= 1.0 and "delta_vs_base" in belebele["run"]
    assert report["suite"]["files"]["belebele:khk_Cyrl.jsonl/khk_Cyrl.jsonl"]["sha256"]
