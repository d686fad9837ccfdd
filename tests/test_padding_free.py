"""Padding-free batches in the dpo loop (training steps, evaluation and the reference pass): the same
per-step losses as padded batches."""

from conftest import ROOT, mglkit, read_metrics

TRAIN = ROOT / "data" / "mgl_history_grpo.jsonl"
ARGS = [
    "--trainer", "dpo", "--base", "mglkit:tiny", "--skip-validation", "--eval-split", "0.25", "--eval-steps", "2",
    "--grad-accum", "2", "--scheduler", "constant", "--warmup-ratio", "0", "--lora-dropout", "0",
    "--precision", "fp32", "--seed", "3", "--samples", "0", "--learning-rate", "1e-3", "--batch-size", "4",
    "--max-steps", "4", "--no-ref-cache", "--no-plots",
]  # fmt: skip
KEYS = ("loss", "rewards/chosen", "rewards/rejected", "eval_loss", "eval_rewards/margins")  # within 1e-5


def test_padding_free_steps_equal_padded_steps(tiny, tmp_path):
    data = tmp_path / "pairs.jsonl"
    lines = TRAIN.read_text(encoding="utf-8").splitlines(keepends=True)
    data.write_text("".join(lines[::7]), encoding="utf-8")  # 30 pairs from all over the file: a spread of lengths
    assert "sequence_ids" in first_batch_layout(tiny, data)  # so the batches are packed
    for name, flags in (("packed", ["--padding-free"]), ("padded", [])):  # padded is the default
        result = mglkit("train", *ARGS, *flags, "--dataset", data, "--output", tmp_path / name)
        assert result.returncode == 0, result.stderr.decode()[-3000:]
    packed, padded = read_metrics(tmp_path / "packed"), read_metrics(tmp_path / "padded")
    assert [m["step"] for m in packed] == [m["step"] for m in padded]
    compared = 0
    for a, b in zip(packed, padded, strict=True):
        for key in KEYS:
            if key in b:
                assert abs(a[key] - b[key]) < 1e-5, (a["step"], key, a[key], b[key])
                compared += 1
        if "logps/chosen" in b:  # sums of ~250 in fp32: equal to their rounding (1e-6 relative)
            assert abs(a["logps/chosen"] - b["logps/chosen"]) < 1e-6 * abs(b["logps/chosen"])
    assert compared == 4 * 3 + 2 * 2  # every train step and both evaluations


def first_batch_layout(tiny, data) -> dict:
    from mglkit.packing import pack_for
    from mglkit.pairs import load_pairs
    from mglkit.preference import collate, tokenize_pairs
    from mglkit.prompts import PromptFormat

    model, tokenizer = tiny
    pairs = tokenize_pairs(list(load_pairs(data))[:4], tokenizer, PromptFormat(chat_template=True))
    return pack_for(model, collate(pairs, tokenizer.pad_token_id))
