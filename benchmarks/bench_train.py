"""The same model, data and settings through both trainers: tokens/s and peak memory.

    python benchmarks/bench_train.py                 # CPU: a ~20M-parameter Mistral, 64 pairs, 2 epochs, batch 4
    python benchmarks/bench_train.py --device cuda   # GPU: a Mistral-7B-shaped model, bf16, batch 4, length 512

Three runs, each in its own process (so peak memory is its own): `dpo` (mglkit's loop), `trl-dpo`
with TRL's defaults (reference forward at every step), and `trl-dpo` with
precompute_ref_log_probs=True. Weights are random (no hub here): speed does not depend on them.
Tokens are real (unpadded) prompt + completion tokens of chosen and rejected sequences; time runs
from the trainer's start, reference precomputation included. Peak RSS is each run's own. On GPU,
MFU counts 4 * N FLOPs per token for the policy (forward, and backward to the activations: the
frozen weights get no gradient) plus 2 * N for each reference forward, against the GPU's dense
bf16 peak.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHAPES = {
    "cpu": dict(hidden_size=512, intermediate_size=1536, num_hidden_layers=6, num_attention_heads=8,
                num_key_value_heads=4),
    "cuda": dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                 num_key_value_heads=8, vocab_size=32000),
}  # fmt: skip
PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}  # dense bf16


class BenchSource:
    """``bench:cpu`` / ``bench:cuda``: a Mistral of that shape with random weights and the tiny tokenizer."""

    name = prefix = "bench:"

    def load(self, name, options):
        import torch
        from transformers import MistralConfig, MistralForCausalLM

        from mglkit.models import ModelOptions, load_model

        _, tokenizer = load_model("mglkit:tiny-random", ModelOptions(precision="fp32"))
        shape = dict(SHAPES[name.removeprefix("bench:")])
        shape.setdefault("vocab_size", len(tokenizer))
        torch.manual_seed(0)
        config = MistralConfig(**shape, max_position_embeddings=4096, tie_word_embeddings=False,
                               pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                               bos_token_id=tokenizer.bos_token_id)  # fmt: skip
        with torch.device(options.device_type):
            model = MistralForCausalLM(config).to(options.dtype)
        model.name_or_path = name
        return model, tokenizer


def worker(spec: dict) -> None:
    import torch

    from mglkit import hookimpl
    from mglkit.config import TrainConfig
    from mglkit.plugins import get_plugin_manager
    from mglkit.training import train

    class Plugin:
        @hookimpl
        def register_model_sources(self, register):
            register(BenchSource())

    pm = get_plugin_manager()
    pm.register(Plugin(), name="bench")
    config = TrainConfig(**spec["config"])
    start = time.perf_counter()
    stats = train(config, pm=pm, overwrite=True)
    wall = time.perf_counter() - start
    gpu_peak = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None
    print(json.dumps({"stats": stats, "wall": wall, "gpu_peak_gb": gpu_peak}, default=str))


def run(spec: dict) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(spec)], capture_output=True, text=True, cwd=ROOT
    )
    if out.returncode != 0:
        raise SystemExit(out.stderr[-4000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--pairs", type=int, default=64)
    parser.add_argument("--epochs", type=float, default=2)
    parser.add_argument("--repeat", type=int, default=1, help="best of N runs per trainer")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.worker:
        worker(json.loads(opts.worker))
        return
    cuda = opts.device == "cuda"
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "pairs.jsonl"
        lines = (ROOT / "data/mgl_history_grpo.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
        data.write_text("".join(lines[: opts.pairs]), encoding="utf-8")
        base = dict(base=f"bench:{opts.device}", dataset=str(data), batch_size=4, grad_accum=1,
                    epochs=opts.epochs, max_length=512, lora_r=16, lora_alpha=32, learning_rate=1e-4,
                    eval_split=0, samples=0, save_steps=10_000, precision="bf16" if cuda else "fp32",
                    skip_validation=True, seed=0)  # fmt: skip
        variants = {
            "dpo": dict(trainer="dpo", precompute_ref=True),
            "trl-dpo (TRL defaults)": dict(trainer="trl-dpo", precompute_ref=False),
            "trl-dpo (precompute_ref_log_probs)": dict(trainer="trl-dpo", precompute_ref=True),
        }
        rows = {}
        for name, extra in variants.items():
            best = None
            for i in range(opts.repeat):
                config = {**base, **extra, "output": str(Path(tmp) / f"run-{len(rows)}-{i}")}
                result = run({"config": config})
                stats = result["stats"]
                tps = stats["train_tokens"] / stats["training_time"]
                if best is None or tps > best["tps"]:
                    best = {"tps": tps, **result}
            rows[name] = best
    ours = rows["dpo"]["tps"]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"device {opts.device}")  # fmt: skip
    print("| trainer | tokens/s | dpo speed-up | peak RSS (MB) | peak GPU (GB) | MFU |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, row in rows.items():
        stats = row["stats"]
        mfu = "—"
        if cuda:
            import torch

            n = stats["total_parameters"]
            ref_passes = 0 if "precompute" in name or name == "dpo" else 1
            flops = (4 + 2 * ref_passes) * n * row["tps"]
            peak = next((v for k, v in PEAK_TFLOPS.items() if k in torch.cuda.get_device_name()), None)
            mfu = f"{flops / (peak * 1e12):.1%}" if peak else "—"
        gpu = f"{row['gpu_peak_gb']:.1f}" if row["gpu_peak_gb"] else "—"
        rss = stats["peak_memory_mb"] if not cuda else "—"
        print(f"| {name} | {row['tps']:,.0f} | {ours / row['tps']:.2f}x | {rss:,.0f} | {gpu} | {mfu} |")


if __name__ == "__main__":
    main()
