"""The same model, data and settings through both trainers: tokens/s and peak memory; padding-free
against padded batches; the reference log-prob cache cold and warm.

    python benchmarks/bench_train.py                 # CPU: a ~20M-parameter Mistral, 64 pairs, 2 epochs, batch 4
    python benchmarks/bench_train.py --device cuda   # GPU: a Mistral-7B-shaped model, bf16, batch 4, length 512
    python benchmarks/bench_train.py --parts cache   # CPU: only the reference cache, cold then warm

Each run is its own process (so peak memory is its own). Weights are random (no hub here: speed does
not depend on them), made on the meta device and materialised where they run. Tokens are real
(unpadded) prompt + completion tokens of chosen and rejected sequences; time runs from the trainer's
start, reference precomputation included. On CPU the model is saved to a folder first and trained
from there, as a user's local model would be (the reference cache knows a base by its files).

1. Trainers (the cache off): `dpo`; `dpo --padding-free`; `trl-dpo` with TRL's defaults (reference
   forward at every step); `trl-dpo` with precompute_ref_log_probs.
2. The reference cache (CPU): two runs of each trainer with the cache on, the first cold, the second
   warm: the reference phase's seconds, whether it was reused, and the whole trainer time of both,
   read from each run's training_logs/training_stats.json. The runs keep their entries in a fresh
   MGLKIT_CACHE of their own (the model is a temporary folder: no earlier entry could match anyway).

On GPU, MFU counts 4 * N FLOPs per token for the policy (forward, and backward to the activations:
the frozen weights get no gradient) plus 2 * N for each reference forward, against the GPU's dense
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
    "20m": dict(hidden_size=512, intermediate_size=1536, num_hidden_layers=6, num_attention_heads=8,
                num_key_value_heads=4),
    "7b": dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
               num_key_value_heads=8, vocab_size=32000),
}  # fmt: skip
# dense bf16 FLOP/s (tera) by the name torch gives the GPU, most specific first
PEAK_TFLOPS = {"H100 PCIe": 756.0, "H200": 989.0, "H100": 989.0, "A100": 312.0}
TOKENIZER = "mglkit:tiny-random"  # the tiny models' tokenizer: built locally, no download


def random_model(shape: dict, tokenizer, device: str, dtype):
    """A Mistral of ``shape`` with random weights, made on the meta device and materialised on
    ``device`` (``to_empty``, then a normal(0, 0.02) init; norms 1): a 7B model takes seconds on a GPU."""
    import torch
    from transformers import MistralConfig, MistralForCausalLM

    config = MistralConfig(**{"vocab_size": len(tokenizer), **shape}, max_position_embeddings=4096,
                           tie_word_embeddings=False, pad_token_id=tokenizer.pad_token_id,
                           eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.bos_token_id)  # fmt: skip
    with torch.device("meta"):
        model = MistralForCausalLM(config).to(dtype)
    model.to_empty(device=device)
    generator = torch.Generator(device=device).manual_seed(0)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.fill_(1.0) if parameter.dim() == 1 else parameter.normal_(0.0, 0.02, generator=generator)
        for module in list(model.modules()):  # rotary tables are buffers to_empty left unset: made anew
            for name, child in list(module.named_children()):
                if "RotaryEmbedding" in type(child).__name__:
                    setattr(module, name, type(child)(config=config).to(device))
    return model


class BenchSource:
    """``bench:SHAPE``: a Mistral of that shape with random weights and the tiny models' tokenizer (a
    ModelSource; mglkit is imported only where it runs, so gpu_check can install it first)."""

    name = prefix = "bench:"
    description = "random Mistral weights of a benchmark's shape"

    def __init__(self, shapes: dict | None = None):
        self.shapes = shapes or SHAPES

    def load(self, name, options):
        from mglkit.models import ModelOptions, load_model

        _, tokenizer = load_model(TOKENIZER, ModelOptions(precision="fp32", device="cpu"))
        model = random_model(self.shapes[name.removeprefix("bench:")], tokenizer, options.device_type, options.dtype)
        model.name_or_path = name
        return model, tokenizer


def worker(spec: dict) -> None:
    """Train each of ``spec["configs"]`` in turn (peak GPU memory counted for each); one JSON line."""
    import gc

    import torch

    from mglkit import hookimpl
    from mglkit.config import TrainConfig
    from mglkit.plugins import get_plugin_manager
    from mglkit.training import train

    steps: list[tuple[int, float, float]] = []  # when each logged step ended, and the tokens trained on by then

    class Plugin:
        @hookimpl
        def register_model_sources(self, register):
            register(BenchSource({**SHAPES, **spec.get("shapes", {})}))

        @hookimpl
        def log_metrics(self, run, step, metrics):
            if "num_tokens" in metrics:
                steps.append((step, time.perf_counter(), metrics["num_tokens"]))

    pm = get_plugin_manager()
    pm.register(Plugin(), name="bench")
    results = []
    for config in spec["configs"]:
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        steps.clear()
        start = time.perf_counter()
        stats = train(TrainConfig(**config), pm=pm, overwrite=True)
        wall = time.perf_counter() - start
        gpu_peak = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None
        results.append({"stats": stats, "wall": wall, "gpu_peak_gb": gpu_peak, "steps": list(steps)})
    print(json.dumps(results, default=str))


def run(spec: dict, env: dict | None = None, timeout: float | None = None) -> list[dict]:
    """Train ``spec["configs"]`` in a fresh process (``worker``); their results."""
    out = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], capture_output=True, text=True,
                         cwd=ROOT, env={**os.environ, **(env or {})}, timeout=timeout)  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-4000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def tokens_per_second(result: dict) -> float:
    stats = result["stats"]
    return stats["train_tokens"] / stats["training_time"]


def save_cpu_model(folder: Path) -> Path:
    """bench:20m saved as a local model folder (fp32), which every CPU run trains from."""
    from mglkit.models import ModelOptions

    model, tokenizer = BenchSource().load("bench:20m", ModelOptions(precision="fp32", device="cpu"))
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


def trainers(base: dict, tmp: Path, repeat: int) -> dict:
    """Best of ``repeat`` runs of each trainer variant, the reference cache off."""
    variants = {
        "dpo": dict(trainer="dpo"),
        "dpo --padding-free": dict(trainer="dpo", padding_free=True),
        "trl-dpo (TRL defaults)": dict(trainer="trl-dpo", precompute_ref=False),
        "trl-dpo (precompute_ref_log_probs)": dict(trainer="trl-dpo", precompute_ref=True),
    }
    rows = {}
    for name, extra in variants.items():
        for i in range(repeat):
            options = {**base.get("options", {}), "ref_cache": False, **extra}
            trainer = options.pop("trainer")
            config = {**base, "trainer": trainer, "options": options, "output": str(tmp / f"run-{len(rows)}-{i}")}
            (result,) = run({"configs": [config]})
            result["tps"] = tokens_per_second(result)
            if name not in rows or result["tps"] > rows[name]["tps"]:
                rows[name] = result
    return rows


def cache_runs(base: dict, tmp: Path, repeat: int) -> dict:
    """Two runs of each trainer with the reference cache on, cold then warm, ``repeat`` times (each
    time in a fresh cache folder); the fastest cold and the fastest warm reference phase of each."""
    rows = {}
    for i in range(repeat):
        env = {"MGLKIT_CACHE": str(tmp / f"cache-{i}")}
        for trainer in ("dpo", "trl-dpo"):
            options = {**base.get("options", {}), "ref_cache": True}
            for phase in ("cold", "warm"):
                output = tmp / f"{trainer}-{phase}-{i}"
                run({"configs": [{**base, "trainer": trainer, "options": options, "output": str(output)}]}, env=env)
                stats = json.loads((output / "training_logs/training_stats.json").read_text(encoding="utf-8"))
                name = f"{trainer}, cache {phase}"
                if name not in rows or stats["reference_seconds"] < rows[name]["reference_seconds"]:
                    rows[name] = stats
    return rows


def print_trainers(rows: dict, cuda: bool) -> None:
    ours = rows["dpo"]["tps"]
    print("| trainer | tokens/s | dpo speed-up | peak RSS (MB) | peak GPU (GB) | MFU |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, row in rows.items():
        stats, mfu = row["stats"], "—"
        if cuda:
            import torch

            ref_passes = 1 if "TRL defaults" in name else 0
            flops = (4 + 2 * ref_passes) * stats["total_parameters"] * row["tps"]
            gpu = torch.cuda.get_device_name()
            peak = next((v for k, v in PEAK_TFLOPS.items() if k in gpu), None)
            mfu = f"{flops / (peak * 1e12):.1%}" if peak else "—"
        gpu_peak = f"{row['gpu_peak_gb']:.1f}" if row["gpu_peak_gb"] else "—"
        rss = f"{stats['peak_memory_mb']:,.0f}" if not cuda else "—"
        print(f"| {name} | {row['tps']:,.0f} | {ours / row['tps']:.2f}x | {rss} | {gpu_peak} | {mfu} |")


def print_cache(rows: dict) -> None:
    print("\n| run | reference phase (s) | reused | trainer time (s) | warm / cold reference |")
    print("|---|---:|---|---:|---:|")
    for name, stats in rows.items():
        cold = rows[name.replace("warm", "cold")]["reference_seconds"]
        share = f"{stats['reference_seconds'] / cold:.2%}" if "warm" in name and cold else ""
        print(f"| {name} | {stats['reference_seconds']:.3f} | {stats['reference_reused']} | "
              f"{stats['training_time']:.1f} | {share} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--pairs", type=int, default=64)
    parser.add_argument("--epochs", type=float, default=2)
    parser.add_argument("--repeat", type=int, default=1, help="best of N runs per trainer")
    parser.add_argument("--parts", default="trainers,cache", help="trainers, cache (CPU only), or both")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.worker:
        worker(json.loads(opts.worker))
        return
    cuda = opts.device == "cuda"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = tmp / "pairs.jsonl"
        lines = (ROOT / "data/mgl_history_grpo.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
        data.write_text("".join(lines[: opts.pairs]), encoding="utf-8")
        model = "bench:7b" if cuda else str(save_cpu_model(tmp / "bench-20m"))
        base = dict(base=model, dataset=str(data), batch_size=4, grad_accum=1, epochs=opts.epochs, max_length=512,
                    lora_r=16, lora_alpha=32, learning_rate=1e-4, eval_split=0, samples=0, save_steps=10_000,
                    precision="bf16" if cuda else "fp32", skip_validation=True, seed=0)  # fmt: skip
        parts = set(opts.parts.split(","))
        rows = trainers(base, tmp, opts.repeat) if "trainers" in parts else {}
        cache = cache_runs(base, tmp, opts.repeat) if "cache" in parts and not cuda else {}
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"device {opts.device}")  # fmt: skip
    if rows:
        print_trainers(rows, cuda)
    if cache:
        print_cache(cache)


if __name__ == "__main__":
    main()
