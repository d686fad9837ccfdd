"""`mglkit export-suite SUITE --format lm-eval --output DIR [--base MODEL] [--no-chat-template]`: the
command around export_lm_eval; with --base the prompts are rendered exactly as `mglkit eval --base`
renders them (the parity with lm_eval itself is tests/test_lm_eval_parity.py)."""

import json

from conftest import cli

from mglkit import choice_separator
from mglkit.lm_eval_export import PROVENANCE, TASK
from mglkit.suites import load_suite


def docs(folder):
    return [json.loads(line) for line in (folder / f"{TASK}.jsonl").read_text(encoding="utf-8").splitlines()]


def test_export_suite_writes_the_task_with_plain_questions_by_default(tmp_path):
    out = tmp_path / "task"
    result = cli("export-suite", "benchmarks", "--format", "lm-eval", "--output", out)
    assert result.returncode == 0, result.stderr.decode()
    assert f"--include_path {out} --tasks {TASK}" in result.stdout.decode()
    facts = load_suite("benchmarks").facts
    assert [d["context"] for d in docs(out)] == [f["question"] + " " for f in facts]
    assert json.loads((out / PROVENANCE).read_text())["prompt"] == "no template (the plain question)"
    again = cli("export-suite", "benchmarks", "--format", "lm-eval", "--output", out)
    assert again.returncode == 2 and b"already holds an mglkit lm-eval task" in again.stderr
    assert cli("export-suite", "benchmarks", "--format", "lm-eval", "--output", out, "--overwrite").returncode == 0


def test_usage_errors_and_a_foreign_folder_are_refused_before_a_model_loads(tmp_path):
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "mine.txt").write_text("keep me")
    # the output is checked first: the missing model is never looked for
    result = cli("export-suite", "benchmarks", "--format", "lm-eval", "--output", foreign, "--overwrite",
                 "--base", tmp_path / "no-such-model")  # fmt: skip
    assert result.returncode == 2 and b"is not empty and is not an mglkit lm-eval task" in result.stderr
    assert (foreign / "mine.txt").read_text() == "keep me"
    assert cli("export-suite", "benchmarks", "--output", tmp_path / "x").returncode == 2  # --format is required
    assert cli("export-suite", "benchmarks", "--format", "csv", "--output", tmp_path / "x").returncode == 2
    assert not (tmp_path / "x").exists()


def test_with_base_the_prompts_are_those_mglkit_eval_scores(tiny, tmp_path):
    from mglkit.prompts import PromptFormat
    from mglkit.scoring import ModelScorer

    model, tokenizer = tiny
    facts = load_suite("benchmarks").facts
    out = tmp_path / "chat"
    result = cli("export-suite", "benchmarks", "--format", "lm-eval", "--output", out, "--base", "mglkit:tiny")
    assert result.returncode == 0, result.stderr.decode()
    # what `mglkit eval --base mglkit:tiny` scores each choice after: the base column's prompt, its separator
    scorer = ModelScorer("base", model, tokenizer, PromptFormat(chat_template=True))
    expected = [scorer.prompt(f["question"]) + choice_separator(scorer.prompt(f["question"])) for f in facts]
    assert [d["context"] for d in docs(out)] == expected and expected[0] != facts[0]["question"] + " "
    assert "chat template of `mglkit:tiny`" in json.loads((out / PROVENANCE).read_text())["prompt"]
    plain = tmp_path / "plain"
    result = cli("export-suite", "benchmarks", "--format", "lm-eval", "--output", plain, "--base", "mglkit:tiny",
                 "--no-chat-template")  # fmt: skip
    assert result.returncode == 0 and [d["context"] for d in docs(plain)] == [f["question"] + " " for f in facts]
    missing = cli("export-suite", "benchmarks", "--format", "lm-eval", "--output", tmp_path / "x",
                  "--base", tmp_path / "no-such-model")  # fmt: skip
    assert missing.returncode == 2 and b"cannot load model" in missing.stderr and b"Traceback" not in missing.stderr
    assert not (tmp_path / "x").exists()
