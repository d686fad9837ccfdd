"""The lm-evaluation-harness export: what it writes, and the output-folder rules (no model needed;
the parity with the real lm_eval is tests/test_lm_eval_parity.py, slow tier)."""

import json

import pytest
from conftest import ROOT

from mglkit import choice_separator
from mglkit.errors import ConfigError, MglkitError
from mglkit.lm_eval_export import PROVENANCE, TASK, export_lm_eval, lm_eval_docs
from mglkit.suites import load_suite

SUITE = ROOT / "benchmarks"


def _chat(question: str) -> str:
    return f"<|user|>\n{question}\n<|assistant|>\n"


def test_documents_hold_the_text_mglkit_scores_before_each_choice():
    facts = load_suite("benchmarks").facts[:3]
    for render, separator in ((_chat, ""), (lambda q: q, " ")):
        docs = lm_eval_docs(facts, render)
        for fact, doc in zip(facts, docs, strict=True):
            prompt = render(fact["question"])
            assert choice_separator(prompt) == separator
            # lm-eval scores context + "" + choice; the facts evaluator scores prompt, separator + choice
            assert doc["context"] == prompt + separator
            assert (doc["choices"], doc["answer"], doc["id"]) == (fact["choices"], fact["answer"], fact["id"])


def test_export_writes_a_task_folder_that_names_its_suite(tmp_path):
    suite = load_suite("benchmarks")
    out = export_lm_eval(suite.limited(5), tmp_path / "task", prompt=_chat, prompt_source="a test template")
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{TASK}.yaml", f"{TASK}.jsonl", "utils.py", "README.md", PROVENANCE, ".mglkit.json"]
    )
    docs = [json.loads(line) for line in (out / f"{TASK}.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [d["id"] for d in docs] == [f["id"] for f in suite.facts[:5]]
    assert "Хань улсын" in (out / f"{TASK}.jsonl").read_text(encoding="utf-8")  # Cyrillic kept readable
    task = (out / f"{TASK}.yaml").read_text(encoding="utf-8")
    version = suite.files["facts.jsonl"]["version"]
    expected = ["output_type: multiple_choice", 'target_delimiter: ""', "custom_dataset: !function utils.load_docs",
                "doc_to_text: context", "- metric: acc_norm", f'version: "{version}"']  # fmt: skip
    assert all(line in task for line in expected), task
    assert f"Path(__file__).with_name('{TASK}.jsonl')" in (out / "utils.py").read_text()
    provenance = json.loads((out / PROVENANCE).read_text())
    assert provenance["suite"]["files"]["facts.jsonl"]["sha256"] == suite.files["facts.jsonl"]["sha256"]
    assert provenance["items"] == 5 and provenance["prompt"] == "a test template"
    assert "a test template" in (out / "README.md").read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["task"]  # nothing left beside it


def test_output_folder_rules(tmp_path):
    suite = load_suite("benchmarks").limited(2)
    out = export_lm_eval(suite, tmp_path / "task")
    with pytest.raises(ConfigError, match="already holds an mglkit lm-eval task"):
        export_lm_eval(suite, out)
    export_lm_eval(load_suite("benchmarks").limited(3), out, overwrite=True)  # its own folder: replaced whole
    assert len((out / f"{TASK}.jsonl").read_text().splitlines()) == 3
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "mine.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="is not empty and is not an mglkit lm-eval task"):
        export_lm_eval(suite, foreign, overwrite=True)
    assert (foreign / "mine.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes", "task"]


def test_a_suite_without_facts_or_a_bad_task_name_is_refused(tmp_path):
    (tmp_path / "suite").mkdir()
    (tmp_path / "suite" / "fluency.jsonl").write_text((SUITE / "fluency.jsonl").read_text(encoding="utf-8"))
    with pytest.raises(MglkitError, match="no facts.jsonl"):
        export_lm_eval(load_suite(str(tmp_path / "suite")), tmp_path / "out")
    with pytest.raises(MglkitError, match="not a plain identifier"):
        export_lm_eval(load_suite("benchmarks"), tmp_path / "out", task="mglkit facts")
    assert not (tmp_path / "out").exists()
