"""Padding-free batches against padded ones: time of a dpo training micro-step (policy forward and
backward through LoRA) at the padding ratios of real and wider length spreads.

    python benchmarks/bench_padding.py                       # CPU, a ~20M-parameter Mistral (bench_train's)
    python benchmarks/bench_padding.py --device cuda         # GPU: a ~1B-parameter Mistral, bf16 autocast

Length spreads: ``bundled`` is data/mgl_history_grpo.jsonl tokenized with mglkit:tiny's tokenizer
(its chat template, max length 512, mglkit's truncation); ``wide`` is synthetic: prompts of 8-64
tokens, completions log-uniform from 16 to 448. Batches are drawn as the dpo loop draws them
(shuffled, ``--batch-size`` pairs: chosen rows then rejected rows). Layouts per batch: ``padded``
(collate), ``1 row`` (everything packed into one row, block-causal mask), ``rows x1`` and
``rows x2`` (packed into rows of at most 1 or 2 times the longest sequence). Each cell is the
median over batches of that layout's step, and its share of the padded batch's positions; layouts
are interleaved batch by batch so the machine's load falls on all of them alike.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_train import SHAPES  # noqa: E402  (the same CPU model as the training benchmark)

SHAPES = {"cpu": SHAPES["20m"], "cuda": dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=8,
                                 num_attention_heads=16, num_key_value_heads=8)}  # fmt: skip
LAYOUTS = ("padded", "1 row", "rows x1", "rows x2")


def bundled_pairs(tokenizer_name: str, max_length: int):
    from mglkit.models import ModelOptions, PromptFormat, load_model
    from mglkit.pairs import load_pairs
    from mglkit.preference import tokenize_pairs, truncate_keep_prompt_end

    _, tokenizer = load_model(tokenizer_name, ModelOptions(precision="fp32", device="cpu"))
    pairs = tokenize_pairs(list(load_pairs(ROOT / "data/mgl_history_grpo.jsonl")), tokenizer, PromptFormat(True))
    return [truncate_keep_prompt_end(p, max_length)[0] for p in pairs], len(tokenizer)


def wide_pairs(n: int, vocab: int, seed: int = 0):
    from mglkit.preference import TokenizedPair

    rng = random.Random(seed)

    def ids(k):
        return [rng.randrange(3, vocab) for _ in range(k)]

    def completion():
        return ids(round(math.exp(rng.uniform(math.log(16), math.log(448)))))

    return [TokenizedPair(ids(rng.randint(8, 64)), completion(), completion()) for _ in range(n)]


def layouts(batch: dict) -> dict:
    from mglkit.packing import pack_batch

    longest = int(batch["attention_mask"].sum(dim=1).max())
    return {"padded": batch, "1 row": pack_batch(batch), "rows x1": pack_batch(batch, row_length=longest),
            "rows x2": pack_batch(batch, row_length=2 * longest)}  # fmt: skip


def make_model(device: str, vocab: int):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import MistralConfig, MistralForCausalLM

    torch.manual_seed(0)
    config = MistralConfig(**SHAPES[device], vocab_size=vocab, max_position_embeddings=4096, sliding_window=None,
                           tie_word_embeddings=False, attn_implementation="sdpa")  # fmt: skip
    with torch.device(device):
        model = MistralForCausalLM(config)
    lora = LoraConfig(r=16, lora_alpha=32, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"])
    return get_peft_model(model, lora).train()


def step_seconds(model, batch: dict, device: str) -> float:
    import torch

    from mglkit.logprobs import completion_logps

    batch = {k: v.to(device) for k, v in batch.items()}
    autocast = torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda")
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    with autocast:
        logps, _ = completion_logps(model, **batch)
    logps.sum().backward()
    if device == "cuda":
        torch.cuda.synchronize()
    model.zero_grad(set_to_none=True)
    return time.perf_counter() - start


def measure(model, pairs, args) -> dict:
    """Per layout: the median step time and the positions computed, over the spread's batches."""
    from mglkit.packing import padding_ratio
    from mglkit.preference import collate

    order = list(range(len(pairs)))
    random.Random(args.seed).shuffle(order)
    groups = [order[i : i + args.batch_size] for i in range(0, len(order), args.batch_size)]
    groups = [g for g in groups if len(g) == args.batch_size][: args.batches]
    times: dict[str, list[float]] = {name: [] for name in LAYOUTS}
    positions = dict.fromkeys(LAYOUTS, 0)
    padding = []
    for number, group in enumerate(groups):
        batch = collate([pairs[i] for i in group], pad_id=0)
        padding.append(padding_ratio(batch["attention_mask"]))
        for name, laid_out in layouts(batch).items():
            if number == 0:
                step_seconds(model, laid_out, args.device)  # warm-up
            times[name].append(step_seconds(model, laid_out, args.device))
            positions[name] += laid_out["input_ids"].numel()
    return {"batches": len(groups), "padding": statistics.mean(padding),
            "seconds": {name: statistics.median(t) for name, t in times.items()}, "positions": positions}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--spreads", nargs="+", default=["bundled", "wide"], choices=["bundled", "wide"])
    parser.add_argument("--tokenizer", default="mglkit:tiny")
    parser.add_argument("--batch-size", type=int, default=8, help="pairs per micro-batch (2x rows)")
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    bundled, vocab = bundled_pairs(args.tokenizer, args.max_length)
    spreads = {"bundled": bundled, "wide": wide_pairs(len(bundled), vocab, args.seed)}
    model = make_model(args.device, vocab)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"device {args.device}, batch {args.batch_size} pairs")  # fmt: skip
    print("| spread | batches | padding | padded s/step | " + " | ".join(LAYOUTS[1:]) + " |")
    print("|---|---:|---:|---:|" + "---:|" * (len(LAYOUTS) - 1))
    for name in args.spreads:
        r = measure(model, spreads[name], args)
        base, padded_positions = r["seconds"]["padded"], r["positions"]["padded"]
        packed = [f"{r['seconds'][k]:.3f} s, {base / r['seconds'][k]:.2f}x, "
                  f"{r['positions'][k] / padded_positions:.0%} of positions" for k in LAYOUTS[1:]]  # fmt: skip
        print(f"| {name} | {r['batches']} | {r['padding']:.0%} | {base:.3f} | " + " | ".join(packed) + " |", flush=True)


if __name__ == "__main__":
    main()
