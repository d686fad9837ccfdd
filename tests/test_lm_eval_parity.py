"""lm-evaluation-harness parity: the exported facts task, run by the real `lm_eval`, gives every choice
the log-likelihood mglkit gives it, and the same acc / acc_norm per item."""

import copy
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mglkit.lm_eval_export import TASK, export_lm_eval
from mglkit.models import PromptFormat
from mglkit.scoring import ModelScorer
from mglkit.suites import load_suite

pytestmark = pytest.mark.slow
TOLERANCE = 1e-4
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


class Recording:
    """A real scorer that keeps the requests the facts evaluator sent and the answers it got."""

    def __init__(self, inner):
        self.inner, self.name, self.calls = inner, inner.name, []

    def prompt(self, question):
        return self.inner.prompt(question)

    def loglikelihood(self, requests):
        results = self.inner.loglikelihood(requests)
        self.calls += zip(requests, results, strict=True)
        return results

    def generate(self, prompts, max_new_tokens):
        return self.inner.generate(prompts, max_new_tokens)


@pytest.fixture(scope="module")
def hf_folder(tiny, tmp_path_factory):
    """mglkit:tiny as a plain Hugging Face model folder, as an lm-eval user would have it."""
    model, tokenizer = tiny
    folder = tmp_path_factory.mktemp("tiny-hf")
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


def _hflm(model, tokenizer):
    from lm_eval.models.huggingface import HFLM

    return HFLM(pretrained=model, tokenizer=tokenizer, batch_size=4)


def _lm_eval_loglikelihoods(lm, requests):
    from lm_eval.api.instance import Instance

    instances = [Instance("loglikelihood", {}, request, i) for i, request in enumerate(requests)]
    return [ll for ll, _ in lm.loglikelihood(instances, disable_tqdm=True)]


def _without_bos(tokenizer):
    """The same tokenizer, but one that adds no BOS (as GPT-2's and Qwen's add none)."""
    from tokenizers import processors

    plain = copy.deepcopy(tokenizer)
    plain.backend_tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    return plain


def test_log_likelihoods_equal_lm_eval_on_tricky_requests(tiny):
    """Trailing whitespace, a chat prompt's final newline, an empty context, a context that already
    starts with the BOS: mglkit's ModelScorer and lm-eval's HFLM score the same tokens."""
    model, tokenizer = tiny
    chat = PromptFormat(chat_template=True).render(tokenizer, "Монгол Улсын нийслэл хаана вэ?")
    requests = [
        ("Монгол Улсын нийслэл хаана вэ?", " Улаанбаатар"),
        (chat, "Улаанбаатар"),
        ("Нийслэл нь  ", "Улаанбаатар хот"),
        ("", "Чингис хаан 1206 онд хаан ширээнд суув."),
        ("<s>Их Монгол Улс", " байгуулагдав"),
    ]
    plain = _without_bos(tokenizer)
    assert tokenizer("а")["input_ids"][0] == tokenizer.bos_token_id != plain("а")["input_ids"][0]
    for tok in (tokenizer, plain):
        ours = [ll for ll, _ in ModelScorer("base", model, tok, PromptFormat(False)).loglikelihood(requests)]
        theirs = _lm_eval_loglikelihoods(_hflm(model, tok), requests)
        for request, mine, lm_evals in zip(requests, ours, theirs, strict=True):
            assert mine == pytest.approx(lm_evals, abs=TOLERANCE), request


def _samples(output: Path) -> dict[str, dict]:
    (path,) = output.rglob(f"samples_{TASK}_*.jsonl")
    samples = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return {sample["doc"]["id"]: sample for sample in samples}


def _best(values: list[float]) -> tuple[int, bool]:
    """The index of the largest value, and whether it beats the runner-up by more than TOLERANCE."""
    ranked = sorted(values, reverse=True)
    return values.index(ranked[0]), ranked[0] - ranked[1] > TOLERANCE


def test_exported_suite_run_by_lm_eval_matches_mglkit(tiny, hf_folder, tmp_path):
    from mglkit import EvalContext as Context
    from mglkit.plugins import get_plugin_manager

    if not shutil.which("lm_eval", path=str(Path(sys.executable).parent)):
        pytest.fail("lm_eval is not installed: pip install -e '.[lm-eval]'")
    model, tokenizer = tiny
    suite = load_suite("benchmarks")  # all 150 items: lm_eval's start-up, not the items, takes the time
    scorer = Recording(ModelScorer("base", model, tokenizer, PromptFormat(chat_template=True)))
    facts = get_plugin_manager().get("evaluator", "facts")
    result = facts.evaluate(scorer, suite, Context(reference=None, max_new_tokens=1))

    export = export_lm_eval(suite, tmp_path / "export", prompt=scorer.prompt, prompt_source="mglkit:tiny's template")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    command = [
        str(Path(sys.executable).parent / "lm_eval"), "run", "--model", "hf",
        "--model_args", f"pretrained={hf_folder},dtype=float32", "--tasks", TASK, "--include_path", str(export),
        "--batch_size", "16", "--log_samples", "--output_path", str(tmp_path / "lm-eval-out"),
    ]  # fmt: skip
    start = time.perf_counter()
    run = subprocess.run(command, cwd=elsewhere, env={**os.environ, **OFFLINE}, capture_output=True, timeout=900)
    seconds = time.perf_counter() - start
    assert run.returncode == 0, run.stderr.decode()[-4000:]
    samples = _samples(tmp_path / "lm-eval-out")
    assert set(samples) == {fact["id"] for fact in suite.facts}

    ours_by_text = {context + continuation: ll for (context, continuation), (ll, _) in scorer.calls}
    compared = {"acc": 0, "acc_norm": 0}
    for fact, item in zip(suite.facts, result.items, strict=True):
        sample = samples[fact["id"]]
        texts = [args["arg_0"] + args["arg_1"] for args in sample["arguments"].values()]
        ours = [ours_by_text[text] for text in texts]  # lm-eval scored the very texts mglkit scored
        theirs = [float(ll) for ll, _ in sample["filtered_resps"]]
        assert ours == pytest.approx(theirs, abs=TOLERANCE), fact["id"]
        normed = [ll / len(choice) for ll, choice in zip(ours, fact["choices"], strict=True)]
        for metric, values, picked in (("acc", ours, item["picked"]), ("acc_norm", normed, item["picked_norm"])):
            best, clear = _best(values)
            assert best == picked
            if clear:
                assert sample[metric] == float(picked == fact["answer"]), (fact["id"], metric)
                compared[metric] += 1
    print(f"\nlm_eval ran {len(suite.facts)} items in {seconds:.0f} s; per-item metrics compared: {compared}")
    assert min(compared.values()) >= 0.9 * len(suite.facts), compared
