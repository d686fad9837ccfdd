"""mglkit on one CUDA GPU, checked and measured by one command (under 5 minutes on an H100/H200); a
JSON summary at the end, also written to --out after every part (a timeout keeps what was done).

    bash benchmarks/gpu_wheels.sh                                      # here: the wheels, into .whl/
    python3 benchmarks/gpu_check.py --wheels .whl --out gpu_check.json   # there: install them, run all
    python3 benchmarks/gpu_check.py --wheels .whl --only qlora,fsdp      # rerun failed parts alone
    python benchmarks/gpu_check.py --device cpu --small                # the CPU-runnable parts, tiny sizes

Parts (``--only``; all by default). Weights are random, made on the meta device and materialised on
the GPU (``to_empty``, then initialised there); the tokenizer is mglkit:tiny-random's (built locally).
- parity: dpo and trl-dpo train the same random ~0.2B Mistral on bundled pairs, bf16, 8 steps: each
  step's loss and rewards agree within PARITY_TOLERANCE (on CPU, fp32: 1e-4, as tests/test_train.py).
- bench: a Mistral-7B-shaped model (bf16), batch 4, sequences of 512 tokens, LoRA r 16 on q/k/v/o,
  30 steps, through dpo and trl-dpo (precompute_ref_log_probs, mglkit's default): tokens/s over the
  whole run and steady (after the first 5 steps), peak GPU memory, MFU = 4 N (policy tokens/s) / peak,
  N the base's parameters, the peak dense bf16 FLOP/s by the GPU's name (bench_train.PEAK_TFLOPS:
  H200 and H100 SXM 989 TFLOP/s).
- padding: dpo on the 7B shape at the bundled data's spread of lengths, padding-free on and off.
- qlora: a random ~0.2B Mistral saved as a folder, loaded in 4 bits (bitsandbytes) by `mglkit train
  --quantize 4bit`: 5 steps, the adapter saved, loaded again onto a 4-bit base, greedy generation.
- fsdp, zero2: `accelerate launch --config_file examples/accelerate/... --num_processes 1 -m mglkit
  train` on that folder, 3 steps: smoke tests of the engines' configs, fsdp through dpo and trl-dpo
  (accelerate applies FSDP to TRL's trainer on GPUs only, so this is where it is exercised).
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
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_train import PEAK_TFLOPS, SHAPES, random_model, run  # noqa: E402

PARTS = ("parity", "bench", "padding", "qlora", "fsdp", "zero2")
MID = dict(hidden_size=1024, intermediate_size=2816, num_hidden_layers=8, num_attention_heads=16,
           num_key_value_heads=8, vocab_size=32000)  # fmt: skip
SMALL = dict(hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)
PARITY_TOLERANCE = {"cuda": {"loss": 0.02, "rewards": 0.05}, "cpu": {"loss": 1e-4, "rewards": 1e-4}}
ENGINE_CONFIGS = {"fsdp": ("*fsdp*.y*ml",), "zero2": ("*zero2*.y*ml", "*zero-2*.y*ml", "*zero_2*.y*ml")}
TRAIN = ROOT / "data" / "mgl_history_grpo.jsonl"
WARM_STEPS = 5  # steps before the steady rate is measured


class Skipped(Exception):
    pass


class Check:
    """What the parts share: the device, sizes, data files and the saved model folder."""

    def __init__(self, device: str, small: bool, tmp: Path):
        self.device, self.small, self.tmp = device, small, tmp
        self.cuda = device == "cuda"
        self.precision = "bf16" if self.cuda else "fp32"
        self.shapes = {"7b": SMALL, "mid": SMALL} if small else {"7b": SHAPES["7b"], "mid": MID}
        self.steps = {"parity": 8, "bench": 4 if small else 30, "padding": 4 if small else 20}
        self._folder: Path | None = None

    def config(self, trainer: str, model: str, data: Path, steps: int, name: str, **options) -> dict:
        return dict(trainer=trainer, base=model, dataset=str(data), batch_size=4, grad_accum=1, max_steps=steps,
                    max_length=512, lora_r=16, lora_alpha=32, lora_dropout=0.0, learning_rate=5e-4, eval_split=0,
                    samples=0, save_steps=10_000, logging_steps=1, precision=self.precision, skip_validation=True,
                    seed=0, scheduler="constant", warmup_ratio=0.0, output=str(self.tmp / name),
                    options={"ref_cache": False, **options})  # fmt: skip

    def train(self, shape: str, data: Path, steps: int, runs: dict[str, tuple[str, dict]]) -> dict[str, dict]:
        """``runs``: output name -> (trainer, its options); trained one after the other in one process."""
        configs = [self.config(trainer, f"bench:{shape}", data, steps, name, **options)
                   for name, (trainer, options) in runs.items()]  # fmt: skip
        return dict(zip(runs, run({"configs": configs, "shapes": self.shapes}, timeout=600), strict=True))

    def pairs(self, n: int, long: bool = False) -> Path:
        """n bundled pairs; ``long``: each answer 8 bundled answers joined, so every sequence fills 512 tokens."""
        path = self.tmp / f"pairs-{n}-{'long' if long else 'bundled'}.jsonl"
        records = [json.loads(line) for line in TRAIN.read_text(encoding="utf-8").splitlines()]
        with path.open("w", encoding="utf-8") as out:
            for i in range(n):
                record = dict(records[i % len(records)])
                if long:
                    for part in ("chosen", "rejected"):
                        record[part] = " ".join(records[(i + k) % len(records)][part] for k in range(8))
                out.write(json.dumps({k: record[k] for k in ("prompt", "chosen", "rejected")}, ensure_ascii=False))
                out.write("\n")
        return path

    def folder(self) -> Path:
        """The ~0.2B random model saved as a local model folder (bf16), made once."""
        if self._folder is None:
            folder = self.tmp / "mid-model"
            worker_run({"save": str(folder), "shape": self.shapes["mid"], "device": self.device})
            self._folder = folder
        return self._folder


def metrics(run_dir: Path) -> list[dict]:
    lines = (run_dir / "training_logs" / "metrics.jsonl").read_text().splitlines()
    return [row for row in map(json.loads, lines) if "loss" in row]


def steady(steps: list) -> float | None:
    """Tokens/s between the end of step WARM_STEPS and the last step (num_tokens counts up)."""
    if len(steps) <= WARM_STEPS:
        return None
    (_, t0, n0), (_, t1, n1) = steps[WARM_STEPS - 1], steps[-1]
    return (n1 - n0) / (t1 - t0)


def peak_tflops() -> tuple[str, float | None]:
    import torch

    name = torch.cuda.get_device_name()
    return name, next((v for k, v in PEAK_TFLOPS.items() if k in name), None)


def parity(check: Check) -> dict:
    data = check.pairs(32)
    check.train("mid", data, check.steps["parity"], {f"parity-{t}": (t, {}) for t in ("dpo", "trl-dpo")})
    rows = {trainer: metrics(check.tmp / f"parity-{trainer}") for trainer in ("dpo", "trl-dpo")}
    tolerance = PARITY_TOLERANCE[check.device]
    worst = {}
    for key, limit in (("loss", "loss"), ("rewards/chosen", "rewards"), ("rewards/rejected", "rewards")):
        worst[key] = max(abs(a[key] - b[key]) for a, b in zip(rows["dpo"], rows["trl-dpo"], strict=True))
        worst[key + " ok"] = worst[key] <= tolerance[limit]
    ok = len(rows["dpo"]) == check.steps["parity"] and all(v for k, v in worst.items() if k.endswith(" ok"))
    losses = {trainer: [round(r["loss"], 5) for r in found] for trainer, found in rows.items()}
    return {"status": "ok" if ok else "failed", "tolerance": tolerance, "max_abs_difference": worst, "losses": losses}


def throughput(result: dict) -> dict:
    stats = result["stats"]
    row = {
        "tokens_per_second": round(stats["train_tokens"] / stats["training_time"], 1),
        "steady_tokens_per_second": steady(result["steps"]),
        "training_seconds": round(stats["training_time"], 2),
        "reference_seconds": stats.get("reference_seconds"),
        "peak_gpu_gb": round(result["gpu_peak_gb"], 2) if result["gpu_peak_gb"] else None,
        "parameters": stats["total_parameters"],
    }
    if row["steady_tokens_per_second"]:
        row["steady_tokens_per_second"] = round(row["steady_tokens_per_second"], 1)
    return row


def bench(check: Check) -> dict:
    data = check.pairs(4 * check.steps["bench"], long=True)
    results = check.train("7b", data, check.steps["bench"], {t: (t, {}) for t in ("dpo", "trl-dpo")})
    rows = {trainer: throughput(result) for trainer, result in results.items()}
    out = {"status": "ok", "trainers": rows}
    if check.cuda:
        gpu, peak = peak_tflops()
        out |= {"gpu": gpu, "peak_bf16_tflops": peak}
        for row in rows.values():
            tps = row["steady_tokens_per_second"] or row["tokens_per_second"]
            row["mfu"] = round(4 * row["parameters"] * tps / (peak * 1e12), 4) if peak else None
    ours, theirs = (rows[t]["steady_tokens_per_second"] or rows[t]["tokens_per_second"] for t in ("dpo", "trl-dpo"))
    out["dpo_speedup"] = round(ours / theirs, 3)
    return out


def padding(check: Check) -> dict:
    data = check.pairs(4 * check.steps["padding"])
    runs = {"padding-free": ("dpo", {"padding_free": True}), "padded": ("dpo", {"padding_free": False})}
    rows = {name: throughput(result) for name, result in check.train("7b", data, check.steps["padding"], runs).items()}
    rate = {k: v["steady_tokens_per_second"] or v["tokens_per_second"] for k, v in rows.items()}
    return {"status": "ok", "runs": rows, "padding_free_speedup": round(rate["padding-free"] / rate["padded"], 3)}


def qlora(check: Check) -> dict:
    if not check.cuda:
        raise Skipped("needs CUDA (bitsandbytes)")
    folder, out = check.folder(), check.tmp / "qlora"
    result = mglkit("train", "--trainer", "dpo", "--base", folder, "--quantize", "4bit", "--max-steps", "5",
                    "--batch-size", "4", "--grad-accum", "1", "--dataset", check.pairs(32), "--eval-split", "0",
                    "--skip-validation", "--samples", "0", "--output", out, "--learning-rate", "5e-4")  # fmt: skip
    if result.returncode != 0:
        return {"status": "failed", "error": result.stderr[-2000:]}
    loaded = worker_run({"generate": str(out), "base": str(folder)})
    losses = [round(r["loss"], 4) for r in metrics(out)]
    ok = len(losses) == 5 and loaded["four_bit_layers"] > 0 and loaded["finite_logits"]
    return {"status": "ok" if ok else "failed", "losses": losses, **loaded}


def engine(check: Check, part: str) -> dict:
    if not check.cuda:
        raise Skipped("needs CUDA")
    folder = ROOT / "examples" / "accelerate"
    found = sorted(p for pattern in ENGINE_CONFIGS[part] for p in folder.glob(pattern))
    if not found:
        return {"status": "missing", "why": f"no {part} config in {folder} (is the engines work merged?)"}
    config = found[0]
    # trl-dpo under FSDP is checked here only: accelerate applies FSDP to TRL's trainer on GPUs alone
    trainers = ("dpo", "trl-dpo") if part == "fsdp" else ("dpo",)
    runs = {trainer: engine_run(check, config, trainer, check.tmp / f"engine-{part}-{trainer}") for trainer in trainers}
    ok = all(r["status"] == "ok" for r in runs.values())
    return {"status": "ok" if ok else "failed", "config": str(config.relative_to(ROOT)), "trainers": runs}


def engine_run(check: Check, config: Path, trainer: str, out: Path) -> dict:
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config), "--num_processes",
              "1", "-m", "mglkit", "train", "--trainer", trainer, "--base", str(check.folder()), "--max-steps", "3",
              "--batch-size", "2", "--grad-accum", "1", "--dataset", str(check.pairs(16)), "--eval-split", "0",
              "--skip-validation", "--samples", "0", "--output", str(out), "--precision", "bf16"]  # fmt: skip
    result = subprocess.run(launch, capture_output=True, text=True, cwd=ROOT, timeout=600)
    stats_file = out / "training_logs" / "training_stats.json"
    if result.returncode != 0 or not stats_file.is_file():
        return {"status": "failed", "returncode": result.returncode, "error": result.stderr[-2000:]}
    stats = json.loads(stats_file.read_text())
    recorded = {k: stats[k] for k in ("engine", "world_size", "parameter_bytes_per_process") if k in stats}
    return {"status": "ok", **recorded, "losses": [round(r["loss"], 4) for r in metrics(out)]}


def mglkit(*args) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "mglkit", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=600)


def worker_run(spec: dict) -> dict:
    out = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], capture_output=True, text=True,
                         cwd=ROOT, timeout=600)  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def worker(spec: dict) -> None:
    """In a fresh process: save a random model as a folder, or load a trained adapter and generate."""
    import torch

    from mglkit.models import ModelOptions, generate, load_adapter, load_model
    from mglkit.prompts import PromptFormat

    if "save" in spec:
        _, tokenizer = load_model("mglkit:tiny-random", ModelOptions(precision="fp32", device="cpu"))
        dtype = torch.bfloat16 if spec["device"] == "cuda" else torch.float32
        model = random_model(spec["shape"], tokenizer, spec["device"], dtype)
        model.save_pretrained(spec["save"], safe_serialization=True)
        tokenizer.save_pretrained(spec["save"])
        print(json.dumps({"saved": spec["save"]}))
        return
    model, tokenizer = load_model(spec["base"], ModelOptions(precision="bf16", quantize="4bit"))
    model = load_adapter(model, spec["generate"], spec["base"])
    layers = sum("4bit" in type(m).__name__ for m in model.modules())
    fmt = PromptFormat(chat_template=True)
    question = "Чингис хаан хэдэн онд төрсөн бэ?"
    answer = generate(model, tokenizer, [question], fmt, 16, temperature=0.0)[0]
    # the random model's 32k vocabulary outruns the tokenizer's 3k: its greedy tokens mostly have no text
    # (an empty answer), so what must hold is finite logits
    with torch.no_grad():
        logits = model(**tokenizer(question, return_tensors="pt").to(model.device)).logits[0, -1]
    first = tokenizer.convert_ids_to_tokens(int(logits.argmax()))
    peak = torch.cuda.max_memory_allocated() / 2**30
    print(json.dumps({"four_bit_layers": layers, "finite_logits": bool(torch.isfinite(logits).all()),
                      "first_token": first, "answer": answer, "peak_gpu_gb": round(peak, 2)}))  # fmt: skip


def install(wheels: Path) -> None:
    """Install the wheels into a folder of their own and start again with it on the path."""
    site = Path(tempfile.gettempdir()) / "mglkit-gpu-check-site"
    files = sorted(str(p) for p in wheels.glob("*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                    "--no-cache-dir", "--upgrade", "--target", str(site), *files], check=True)  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}
    argv = [a for i, a in enumerate(sys.argv) if a != "--wheels" and (i == 0 or sys.argv[i - 1] != "--wheels")]
    os.execve(sys.executable, [sys.executable, *argv], env)


def machine(device: str) -> dict:
    import importlib.metadata as metadata

    import torch

    names = ("torch", "transformers", "peft", "accelerate", "trl", "datasets", "bitsandbytes", "deepspeed", "mglkit")
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    gpu = torch.cuda.get_device_name() if device == "cuda" else None
    return {"python": platform.python_version(), "gpu": gpu, "cpus": os.cpu_count(), "versions": versions}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(PARTS), help="comma-separated parts: " + ",".join(PARTS))
    parser.add_argument("--out", type=Path, help="also write the JSON summary here (after every part)")
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--small", action="store_true", help="tiny shapes and few steps (to try it on a CPU)")
    parser.add_argument("--wheels", type=Path, help="install these wheels first (from gpu_wheels.sh)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(json.loads(args.worker))
    if args.wheels:
        return install(args.wheels)
    chosen = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = [p for p in chosen if p not in PARTS]
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)}: choose from {', '.join(PARTS)}")
    summary = {"machine": machine(args.device), "device": args.device, "small": args.small, "parts": {}}
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        check = Check(args.device, args.small, Path(tmp))
        for part in chosen:
            summary["parts"][part] = run_part(check, part)
            if args.out:
                args.out.write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    print(json.dumps(summary, indent=2, ensure_ascii=False))


def run_part(check: Check, part: str) -> dict:
    steps = {"parity": parity, "bench": bench, "padding": padding, "qlora": qlora}
    start = time.perf_counter()
    try:
        result = steps[part](check) if part in steps else engine(check, part)
    except Skipped as why:
        result = {"status": "skipped", "why": str(why)}
    except Exception as exc:  # a failed part is reported, and the others still run
        result = {"status": "failed", "error": f"{type(exc).__name__}: {str(exc)[-2000:]}"}
    result["seconds"] = round(time.perf_counter() - start, 1)
    print(f"gpu_check: {part}: {result['status']} in {result['seconds']} s", file=sys.stderr, flush=True)
    return result


if __name__ == "__main__":
    main()
