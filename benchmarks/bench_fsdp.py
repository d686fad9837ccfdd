"""FSDP against DDP at 2 CPU processes: the parameter bytes each process holds (the proof that FSDP
shards) and each process's peak resident set (for information).

    python benchmarks/bench_fsdp.py                  # a ~100M-parameter Mistral, 3 steps under each engine
    python benchmarks/bench_fsdp.py --repeat 2 --json fsdp.json

The model is bench_train's random Mistral at ~100M parameters (12 layers, hidden 768), with the
tiny models' tokenizer (vocabulary kept), saved to a temporary folder that every run trains from.
Each engine runs ``mglkit train --trainer dpo`` under ``accelerate launch`` with 2 processes: DDP
(``--multi_gpu``, gloo) and FSDP (``examples/accelerate/fsdp.yaml``: the dpo trainer applies FSDP2
per decoder layer). Parameter bytes per process are what the run records in
training_stats.json (``parameter_bytes_per_process``, LoRA included). Peak RSS is each worker's own
``ru_maxrss`` at its exit: this script is what accelerate launches (``--worker``), running mglkit's
CLI in-process and writing its peak on the way out. It covers the whole process: every process loads
the whole base before FSDP shards it, and at the end the main process of a sharded run loads the base
again to write its outputs, so on CPU the peak hides most of the sharding's saving.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_train import BenchSource  # noqa: E402  (the same random Mistral, at another size)

SHAPE = dict(hidden_size=768, intermediate_size=2816, num_hidden_layers=12, num_attention_heads=12,
             num_key_value_heads=4)  # fmt: skip
LAUNCHERS = {
    "ddp": ["--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
            "--dynamo_backend", "no"],
    "fsdp": ["--config_file", str(ROOT / "examples/accelerate/fsdp.yaml"), "--num_processes", "2"],
}  # fmt: skip


def worker(rss_dir: str, argv: list[str]) -> None:
    """One launched process: mglkit's CLI, then this process's peak RSS in ``rss_dir/rank-N.json``."""
    from mglkit.cli import main

    try:
        main(argv)
    finally:
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        rank = os.environ.get("RANK", "0")
        Path(rss_dir, f"rank-{rank}.json").write_text(json.dumps({"rank": int(rank), "peak_rss_mb": peak_mb}))


def save_model(folder: Path) -> tuple[Path, int]:
    from mglkit.models import ModelOptions

    model, tokenizer = BenchSource({"100m": SHAPE}).load("bench:100m", ModelOptions(precision="fp32", device="cpu"))
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder, sum(p.numel() for p in model.parameters())


def train_args(opts, model: Path, data: Path, output: Path) -> list[str]:
    return ["train", "--trainer", "dpo", "--base", str(model), "--dataset", str(data), "--output", str(output),
            "--max-steps", str(opts.steps), "--batch-size", "1", "--grad-accum", "1", "--max-length",
            str(opts.max_length), "--precision", "fp32", "--eval-split", "0", "--samples", "0", "--no-plots",
            "--save-steps", "100000", "--no-ref-cache", "--skip-validation", "--seed", "0"]  # fmt: skip


def launch(engine: str, opts, model: Path, data: Path, folder: Path) -> dict:
    """One 2-process run under ``engine``: its recorded stats, each process's peak RSS, the wall time."""
    rss_dir, output = folder / "rss", folder / "run"
    rss_dir.mkdir(parents=True)
    command = [sys.executable, "-m", "accelerate.commands.launch", *LAUNCHERS[engine], str(Path(__file__).resolve()),
               "--worker", str(rss_dir), *train_args(opts, model, data, output)]  # fmt: skip
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=opts.timeout)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{engine} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    stats = json.loads((output / "training_logs/training_stats.json").read_text(encoding="utf-8"))
    peaks = sorted((json.loads(p.read_text()) for p in rss_dir.glob("rank-*.json")), key=lambda r: r["rank"])
    return {
        "engine": stats["engine"],
        "world_size": stats["world_size"],
        "parameter_bytes_per_process": stats["parameter_bytes_per_process"],
        "peak_rss_mb_per_process": [round(p["peak_rss_mb"]) for p in peaks],
        "main_peak_mb_at_loop_end": stats.get("peak_memory_mb"),
        "training_time": stats["training_time"],
        "wall": round(wall, 1),
    }


def print_table(results: dict, parameters: int) -> None:
    ddp = results["ddp"]["parameter_bytes_per_process"]
    print(f"\nmodel: {parameters / 1e6:.1f}M parameters, fp32 ({parameters * 4 / 2**20:,.0f} MiB)")
    print("| engine | parameter bytes per process (MiB) | / DDP | peak RSS per process (MB) | trainer time (s) |")
    print("|---|---|---:|---|---:|")
    for name, row in results.items():
        held = row["parameter_bytes_per_process"]
        ratio = " / ".join(f"{b / d:.3f}" for b, d in zip(held, ddp, strict=True))
        mib = " / ".join(f"{b / 2**20:,.1f}" for b in held)
        rss = " / ".join(f"{r:,}" for r in row["peak_rss_mb_per_process"])
        print(f"| {name} ({row['engine']}, {row['world_size']} processes) | {mib} | {ratio} | {rss} | "
              f"{row['training_time']:.1f} |")  # fmt: skip


def main() -> None:
    if sys.argv[1:2] == ["--worker"]:
        worker(sys.argv[2], sys.argv[3:])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=8, help="bundled pairs (the reference pass covers them all)")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--max-length", type=int, default=96)
    parser.add_argument("--engines", default="ddp,fsdp")
    parser.add_argument("--repeat", type=int, default=1, help="best (lowest peak RSS) of N runs per engine")
    parser.add_argument("--timeout", type=float, default=1200)
    parser.add_argument("--json", type=Path, help="also write the results here")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = tmp / "pairs.jsonl"
        lines = (ROOT / "data/mgl_history_grpo.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
        data.write_text("".join(lines[: opts.pairs]), encoding="utf-8")
        model, parameters = save_model(tmp / "bench-100m")
        results = {}
        for i in range(opts.repeat):
            for engine in opts.engines.split(","):
                row = launch(engine, opts, model, data, tmp / f"{engine}-{i}")
                best = results.get(engine)
                if best is None or max(row["peak_rss_mb_per_process"]) < max(best["peak_rss_mb_per_process"]):
                    results[engine] = row
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(json.dumps(results, indent=1))
    if "ddp" in results:
        print_table(results, parameters)
    if opts.json:
        opts.json.write_text(json.dumps({"parameters": parameters, "settings": vars(opts) | {"json": str(opts.json)},
                                         "results": results}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
