"""Retrieval, `mglkit ask`, the guide's RAG and inference snippets, `mglkit index`, `mglkit export`."""

import json

from conftest import mglkit

from mglkit.mongolian import tokenize

QUESTION = "Монголын ардчилсан хувьсгалын тухай хэлнэ үү?"


def test_mongolian_tokenisation():
    assert tokenize("Чингисийн ХААН, Монголын!") == ["чингис", "хаан", "монгол"]
    assert tokenize("Хархоринд очсон", stem=False) == ["хархоринд", "очсон"]
    assert tokenize("Хархоринд") == ["хархорин"]
    assert tokenize("онд") == ["онд"]  # a stem keeps three letters


def test_recall_at_5_on_the_bundled_corpus():
    from mglkit import EvalContext as Context
    from mglkit.plugins import get_plugin_manager
    from mglkit.suites import load_suite

    suite = load_suite("benchmarks")
    assert len(suite.retrieval) >= 60
    retrieval = get_plugin_manager().get("evaluator", "retrieval")
    result = retrieval.evaluate(type("NoModel", (), {"name": "none"})(), suite, Context(reference=None))
    assert result.metrics["recall@5"].value >= 0.85, result.metrics
    assert result.metrics["recall@1"].value <= result.metrics["recall@5"].value
    assert 0 < result.metrics["mrr"].value <= 1


def test_retrieval_counts_any_of_an_items_passages_and_accepts_passage_id(tmp_path, monkeypatch):
    import pytest

    from mglkit import EvalContext as Context
    from mglkit.errors import MglkitError
    from mglkit.plugins import get_plugin_manager
    from mglkit.suites import load_suite

    monkeypatch.setenv("MGLKIT_CACHE", str(tmp_path / "cache"))
    suite = tmp_path / "two-passages"
    (suite / "corpus").mkdir(parents=True)
    docs = [
        ("hamar", "Данзанравжаа Хамарын хийдэд театр, хүүхдийн сургууль, номын сан байгуулжээ."),
        ("noyon", "Говийн ноён хутагт Данзанравжаа олон дуу, шүлэг зохиосон яруу найрагч юм."),
        ("erdene", "Эрдэнэ Зуу хийдийг Абтай сайн хаан Хархорумын туурийн дэргэд бариулжээ."),
    ]
    lines = [json.dumps({"id": i, "title": "", "text": t}, ensure_ascii=False) for i, t in docs]
    (suite / "corpus" / "docs.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    items = [
        {"id": "both", "question": "Данзанравжаа Хамарын хийдэд юу байгуулсан бэ?", "passage_ids": ["noyon", "hamar"]},
        {"id": "old", "question": "Эрдэнэ Зуу хийдийг хэн бариулсан бэ?", "passage_id": "erdene"},
        {"id": "absent", "question": "Эрдэнэ Зуу хийдийг хэн бариулсан бэ?", "passage_ids": ["nowhere"]},
    ]
    retrieval = suite / "retrieval.jsonl"
    retrieval.write_text("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items), encoding="utf-8")
    evaluator = get_plugin_manager().get("evaluator", "retrieval")
    no_model = type("NoModel", (), {"name": "none"})()
    result = evaluator.evaluate(no_model, load_suite(str(suite)), Context(reference=None))
    assert {i["id"]: i["rank"] for i in result.items} == {"both": 1, "old": 1, "absent": None}

    retrieval.write_text(json.dumps({"id": "none", "question": "Хэн бэ?"}) + "\n", encoding="utf-8")
    with pytest.raises(MglkitError, match="item 1 \\(none\\), field 'passage_ids'"):
        load_suite(str(suite))


def test_the_guides_rag_snippet(quickstart_run, capsys):
    from mglkit.rag import MongolianRAGAgent  # the guide: from mongolian_rag.rag_agent import MongolianRAGAgent

    # Initialize RAG agent with fine-tuned model
    rag_agent = MongolianRAGAgent(model_name=str(quickstart_run), base_model="mglkit:tiny", use_peft=True)

    # Query with improved responses
    response = rag_agent.query(QUESTION)
    print(response)

    printed = capsys.readouterr().out.strip()
    assert printed and printed == response.text
    assert 1 <= len(response.sources) <= 4
    assert all(s.document.text and s.score > 0 for s in response.sources)
    assert [s.number for s in response.sources] == list(range(1, len(response.sources) + 1))


def test_the_guides_inference_snippet(quickstart_run):
    import torch
    from peft import PeftModel

    from mglkit.models import ModelOptions, load_model

    # Load base model and tokenizer (the guide: AutoTokenizer / AutoModelForCausalLM of the hub id)
    base_model, tokenizer = load_model("mglkit:tiny", ModelOptions(precision="fp32"))
    # Load LoRA adapter
    model = PeftModel.from_pretrained(base_model, str(quickstart_run))

    def generate_response(prompt: str, max_length: int = 256) -> str:
        formatted_prompt = f"<|user|>\n{prompt}\n<|assistant|>\n"
        inputs = tokenizer(formatted_prompt, return_tensors="pt", truncation=True, max_length=512)
        with torch.no_grad():
            outputs = model.generate(
                **inputs,
                max_new_tokens=max_length,
                do_sample=True,
                temperature=0.7,
                top_p=0.9,
                pad_token_id=tokenizer.eos_token_id,
            )
        return tokenizer.decode(outputs[0][inputs["input_ids"].shape[1] :], skip_special_tokens=True).strip()

    torch.manual_seed(0)
    response = generate_response("Чингис хааны тухай ярина уу?", max_length=24)
    assert response


def test_ask_json_and_no_retrieval(quickstart_run):
    args = ["ask", QUESTION, "--base", "mglkit:tiny", "--adapter", quickstart_run, "--max-new-tokens", "16"]
    result = mglkit(*args, "--json", "--k", "3")
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    answer = json.loads(result.stdout)
    assert answer["question"] == QUESTION and answer["answer"]
    assert len(answer["sources"]) == 3 and all({"id", "title", "score", "text"} <= s.keys() for s in answer["sources"])
    plain = mglkit(*args, "--no-retrieval", "--json")
    assert json.loads(plain.stdout)["sources"] == []
    human = mglkit(*args)
    assert human.returncode == 0 and b"Sources:" in human.stdout


def test_index_your_own_documents(tiny, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "notes.md").write_text(
        "Эрдэнэ Зуу хийдийг 1585 онд Абтай сайн хаан байгуулжээ.\n\nХархорум хотыг Өгэдэй хаан бариулсан.\n",
        encoding="utf-8",
    )
    (docs / "more.jsonl").write_text(
        json.dumps({"id": "zanabazar", "title": "Занабазар", "text": "Өндөр гэгээн Занабазар 1635 онд төрсөн."},
                   ensure_ascii=False) + "\n", encoding="utf-8")  # fmt: skip
    result = mglkit("index", docs, "--output", tmp_path / "idx")
    assert result.returncode == 0 and b"indexed 3 documents" in result.stdout, result.stderr.decode()
    answer = mglkit("ask", "Эрдэнэ Зуу хийдийг хэн байгуулсан бэ?", "--base", "mglkit:tiny", "--index",
                    tmp_path / "idx", "--k", "1", "--json", "--max-new-tokens", "8")  # fmt: skip
    assert json.loads(answer.stdout)["sources"][0]["id"] == "notes-1"
    bad = mglkit("ask", "асуулт", "--base", "mglkit:tiny", "--index", docs)
    assert bad.returncode == 2 and b"not an mglkit index" in bad.stderr and b"Traceback" not in bad.stderr


def test_export_merged_gives_the_same_logits(quickstart_run, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from mglkit.models import ModelOptions, load_model

    out = tmp_path / "merged"
    result = mglkit("export", quickstart_run, "--format", "merged", "--output", out)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert (out / "config.json").is_file() and list(out.glob("*.safetensors")) and (out / "tokenizer.json").is_file()
    assert not (out / "adapter_config.json").exists()
    merged = AutoModelForCausalLM.from_pretrained(out)
    assert not isinstance(merged, PeftModel)
    base, tokenizer = load_model("mglkit:tiny", ModelOptions(precision="fp32"))
    unmerged = PeftModel.from_pretrained(base, str(quickstart_run))
    inputs = tokenizer("Их Монгол Улс хэдэн онд байгуулагдсан бэ?", return_tensors="pt")
    with torch.no_grad():
        assert torch.allclose(merged(**inputs).logits, unmerged(**inputs).logits, atol=1e-5)


def test_export_adapter_is_clean_and_loads(quickstart_run, tmp_path):
    from peft import PeftModel

    from mglkit.models import ModelOptions, load_model

    out = tmp_path / "adapter"
    assert mglkit("export", quickstart_run, "--format", "adapter", "--output", out).returncode == 0
    names = {p.name for p in out.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "README.md"} <= names
    assert not names & {"checkpoints", "last", "training_logs"} and ".mglkit.json" in names
    base, _ = load_model("mglkit:tiny", ModelOptions(precision="fp32"))
    PeftModel.from_pretrained(base, str(out))
    again = mglkit("export", quickstart_run, "--format", "adapter", "--output", out)
    assert again.returncode == 2 and b"already holds an mglkit export" in again.stderr


def test_export_of_a_bin_adapter_copies_its_weights_and_tokenizer(quickstart_run, tmp_path):
    import shutil

    import torch
    from safetensors.torch import load_file

    source = tmp_path / "bin-adapter"
    source.mkdir()
    for name in ("adapter_config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(quickstart_run / name, source / name)
    weights = load_file(str(quickstart_run / "adapter_model.safetensors"))
    torch.save(weights, source / "adapter_model.bin")  # an adapter saved the old way
    (source / "vocab.json").write_text("{}")
    (source / "merges.txt").write_text("#version: 0.2\n")
    (source / "added_tokens.json").write_text("{}")
    out = tmp_path / "out"
    result = mglkit("export", source, "--format", "adapter", "--output", out)
    assert result.returncode == 0, result.stderr.decode()
    exported = load_file(str(out / "adapter_model.safetensors"))
    assert exported.keys() == weights.keys() and all(torch.equal(exported[k], weights[k]) for k in weights)
    assert {"vocab.json", "merges.txt", "added_tokens.json", "tokenizer.json"} <= {p.name for p in out.iterdir()}
    assert not (out / "adapter_model.bin").exists()  # nothing pickled is published


def test_ask_fits_long_passages_to_the_models_context(tiny, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    long = " ".join(["Эрдэнэ Зуу хийдийг 1585 онд Абтай сайн хаан Хархорумын туурийн дэргэд байгуулжээ."] * 120)
    (docs / "a.md").write_text("\n\n".join([long] * 4), encoding="utf-8")
    assert mglkit("index", docs, "--output", tmp_path / "idx").returncode == 0
    result = mglkit("ask", "Эрдэнэ Зуу хийдийг хэн байгуулсан бэ?", "--base", "mglkit:tiny", "--index",
                    tmp_path / "idx", "--k", "4", "--json", "--max-new-tokens", "16")  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert b"to fit the model's context" in result.stderr
    answer = json.loads(result.stdout)
    assert answer["question"] == "Эрдэнэ Зуу хийдийг хэн байгуулсан бэ?" and len(answer["sources"]) < 4
