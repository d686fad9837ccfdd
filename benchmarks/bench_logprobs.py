"""Peak memory and time of completion log-probabilities: the full log-softmax (``full_logps`` in
tests/random_models.py, mglkit's computation before) against the chunked ``completion_logps``.

    python benchmarks/bench_logprobs.py                         # CPU, vocabularies 32k and 152k
    python benchmarks/bench_logprobs.py --device cuda           # GPU: torch's allocator statistics
    python benchmarks/bench_logprobs.py --max-gb 8              # skip cases estimated above 8 GB

A Mistral-shaped model with random weights and a small hidden size (the head dominates), fp32,
``--rows`` sequences of ``--length`` tokens, the last three quarters of each a completion. Two
modes: ``reference`` (no_grad, as the reference pass) and ``train`` (LoRA on q/v, forward and
backward). Each case runs in a fresh process. CPU peak: the process's resident-set high-water mark
(VmHWM, reset through /proc/self/clear_refs just before the case), minus the resident set then —
tracemalloc does not see torch's allocations. GPU peak: torch.cuda.max_memory_allocated minus the
allocation before the case.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the plain computation lives with the tests, as their oracle
VOCABS = (32000, 151936)


def build(args):
    import torch
    from transformers import MistralConfig, MistralForCausalLM

    torch.manual_seed(0)
    config = MistralConfig(vocab_size=args.vocab, hidden_size=args.hidden, intermediate_size=2 * args.hidden,
                           num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, sliding_window=None,
                           max_position_embeddings=max(4096, args.length), tie_word_embeddings=False)  # fmt: skip
    with torch.device(args.device):
        model = MistralForCausalLM(config)
        input_ids = torch.randint(1, args.vocab, (args.rows, args.length))
        completion = torch.zeros_like(input_ids)
    completion[:, args.length // 4 :] = 1
    batch = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids), "completion_mask": completion}
    if args.mode == "train":
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=8, target_modules=["q_proj", "v_proj"]))
        model.train()
    else:
        model.eval()
    return model, batch


def run_case(args) -> dict:
    """One measurement, in this process."""
    import torch
    from random_models import full_logps

    from mglkit.logprobs import completion_logps

    model, batch = build(args)

    def compute():
        if args.method == "plain":
            return full_logps(model, batch)[0]
        return completion_logps(model, **batch, chunk_size=args.chunk_size)[0]

    context = torch.no_grad() if args.mode == "reference" else torch.enable_grad()
    with context:  # one warm-up pass, then the measured pass
        compute().sum().backward() if args.mode == "train" else compute()
    model.zero_grad(set_to_none=True)
    baseline = _memory_now(args.device)
    start = time.perf_counter()
    with context:
        logps = compute()
        if args.mode == "train":
            logps.sum().backward()
    seconds = time.perf_counter() - start
    peak = _peak_since_reset(args.device) - baseline
    return {"peak_mb": round(peak / 2**20), "seconds": round(seconds, 3), "logps_sum": float(logps.sum())}


def _memory_now(device: str) -> int:
    """Resets the high-water mark, and returns the memory in use now."""
    import gc

    import torch

    gc.collect()
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        return torch.cuda.memory_allocated()
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current resident set
    return _status_kb("VmRSS") * 1024


def _peak_since_reset(device: str) -> int:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated()
    return _status_kb("VmHWM") * 1024


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def estimated_gb(args, vocab: int, method: str, mode: str) -> float:
    """A rough upper estimate: fp32 logits and their log-softmax (and their gradients in training)."""
    positions = args.rows * args.length if method == "plain" else min(args.chunk_size, args.rows * args.length)
    copies = (2 if mode == "reference" else 5) if method == "plain" else 4
    return positions * vocab * 4 * copies / 2**30


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--vocab", type=int, nargs="+", default=list(VOCABS))
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--length", type=int, default=1024)
    parser.add_argument("--rows", type=int, default=16)
    parser.add_argument("--chunk-size", type=int, default=512)
    parser.add_argument("--modes", nargs="+", default=["reference", "train"], choices=["reference", "train"])
    parser.add_argument("--max-gb", type=float, default=None, help="skip cases estimated to need more")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--case", nargs=3, metavar=("VOCAB", "METHOD", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        args.vocab, args.method, args.mode = int(args.case[0]), args.case[1], args.case[2]
        print(json.dumps(run_case(args)))
        return
    results = []
    print("| vocab | mode | method | peak MB | seconds | sum of logps |\n|---:|---|---|---:|---:|---:|")
    for vocab in args.vocab:
        for mode in args.modes:
            for method in ("plain", "chunked"):
                row = {"vocab": vocab, "mode": mode, "method": method}
                estimate = estimated_gb(args, vocab, method, mode)
                if args.max_gb is not None and estimate > args.max_gb:
                    row["skipped"] = f"estimated {estimate:.1f} GB > --max-gb {args.max_gb:g}"
                else:
                    row.update(_subprocess_case(args, vocab, method, mode))
                results.append(row)
                cells = ("skipped: " + row["skipped"], "", "") if "skipped" in row else (
                    f"{row['peak_mb']:,}", f"{row['seconds']:.2f}", f"{row['logps_sum']:.2f}")  # fmt: skip
                print(f"| {vocab:,} | {mode} | {method} | " + " | ".join(cells) + " |", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"settings": _settings(args), "results": results}, indent=1))


def _subprocess_case(args, vocab: int, method: str, mode: str) -> dict:
    command = [sys.executable, __file__, "--case", str(vocab), method, mode, "--device", args.device,
               "--hidden", str(args.hidden), "--length", str(args.length), "--rows", str(args.rows),
               "--chunk-size", str(args.chunk_size)]  # fmt: skip
    # every block of 64 KiB or more mapped and unmapped on its own: the resident set follows the tensors
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env)
    if done.returncode != 0:
        return {"skipped": "failed: " + (done.stderr.strip().splitlines() or ["?"])[-1][:200]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _settings(args) -> dict:
    import platform

    return {"device": args.device, "hidden": args.hidden, "length": args.length, "rows": args.rows,
            "chunk_size": args.chunk_size, "machine": platform.machine(),
            "python": platform.python_version()}  # fmt: skip


if __name__ == "__main__":
    main()
