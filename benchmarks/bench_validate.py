"""Speed of `mglkit validate`: start-up, a 200-pair file, 200k pairs/s, peak RSS on 1M pairs, and
one 10 MB pair (time must be linear in the input: the similarity check is bounded).

    python benchmarks/bench_validate.py [--pairs 200000] [--big 1000000] [--repeat 3] [--long-mb 10]

Generates realistic pairs from the bundled training data (sentences recombined, dates changed,
~1% faults of every kind), runs the real CLI in subprocesses, prints a Markdown table.
Budgets on the reference machine (2 cores): --help < 0.3 s, 200 pairs < 0.6 s,
>= 30,000 pairs/s, peak RSS < 300 MB on 1M pairs, a 10 MB pair < 5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TRAIN = ROOT / "data" / "mgl_history_grpo.jsonl"
RUSSIAN = "Это было очень важное событие в истории государства, и все об этом знают."


def _sentences(texts):
    out = []
    for text in texts:
        out += [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if len(s.split()) >= 4]
    return out


def generate(path: Path, n: int, seed: int = 0) -> None:
    """n pairs: unique prompts, 2-4 sentence answers, ~1% faults (russian, latin look-alikes,
    invisible characters, short answers, duplicates, broken JSON)."""
    rng = random.Random(seed)
    records = [json.loads(line) for line in TRAIN.open(encoding="utf-8")]
    prompts = [r["prompt"] for r in records]
    sentences = _sentences(r["chosen"] for r in records)
    with path.open("w", encoding="utf-8") as out:
        previous = None
        for i in range(n):
            chosen = " ".join(rng.sample(sentences, rng.randint(2, 4)))
            rejected = re.sub(r"\d{3,4}", lambda m: str(int(m.group()) + rng.randint(1, 60)), chosen)
            if rejected == chosen:
                rejected = " ".join(rng.sample(sentences, 2))
            record = {
                "prompt": f"{rng.choice(prompts)} ({i + 1}-р асуулт)",
                "chosen": chosen,
                "rejected": rejected,
                "id": f"gen-{i}",
            }
            fault = rng.random()
            if fault < 0.002:
                record["chosen"] = RUSSIAN + " " + RUSSIAN
            elif fault < 0.004:
                record["chosen"] = chosen.replace("о", "o", 2)
            elif fault < 0.006:
                record["prompt"] = record["prompt"].replace(" ", " \u200b", 1)
            elif fault < 0.008:
                record["rejected"] = "Мэдэхгүй."
            elif fault < 0.009 and previous:
                record = previous
            elif fault < 0.010:
                out.write('{"prompt": "тасарсан мөр\n')
                continue
            previous = record
            out.write(json.dumps(record, ensure_ascii=False) + "\n")


def long_pair(path: Path, megabytes: float) -> None:
    """One pair whose chosen and rejected answers are each ``megabytes`` / 2 of Mongolian text and
    differ only near their ends (the worst case for a similarity check)."""
    records = [json.loads(line) for line in TRAIN.open(encoding="utf-8")]
    text = " ".join(r["chosen"] for r in records)
    chosen = (text + " ") * int(megabytes * 2**20 / 2 / len(text.encode()) + 1)
    record = {"prompt": records[0]["prompt"], "chosen": chosen, "rejected": chosen[:-200] + " Өөр төгсгөл."}
    path.write_text(json.dumps(record, ensure_ascii=False) + "\n", encoding="utf-8")


def run(args: list[str], repeat: int) -> tuple[float, float]:
    """Best wall time over `repeat` runs, and the peak RSS (MB) of the child."""
    best, peak = float("inf"), 0.0
    for _ in range(repeat):
        code = (
            "import resource, subprocess, sys, time;"
            "t = time.perf_counter();"
            "subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL);"
            "w = time.perf_counter() - t;"
            "print(w, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)"
        )
        # built-in validators only: an installed plugin must not change the figures
        env = {**os.environ, "MGLKIT_LOAD_PLUGINS": "validators"}
        out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env)
        wall, rss = map(float, out.stdout.split())
        best, peak = min(best, wall), max(peak, rss)
    return best, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=200_000)
    parser.add_argument("--big", type=int, default=1_000_000, help="0 skips the RSS run")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--long-mb", type=float, default=10, help="size of the one long pair; 0 skips it")
    opts = parser.parse_args()
    mglkit = [sys.executable, "-m", "mglkit"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        small, mid, big = Path(tmp, "small.jsonl"), Path(tmp, "mid.jsonl"), Path(tmp, "big.jsonl")
        generate(small, 200)
        generate(mid, opts.pairs, seed=1)
        wall, _ = run([*mglkit, "--help"], opts.repeat)
        rows.append(("mglkit --help", f"{wall:.3f} s", "< 0.3 s"))
        wall, _ = run([*mglkit, "validate", str(TRAIN)], opts.repeat)
        rows.append((f"validate bundled data ({TRAIN.name})", f"{wall:.3f} s", "< 0.6 s"))
        wall, _ = run([*mglkit, "validate", str(small)], opts.repeat)
        rows.append(("validate 200 generated pairs", f"{wall:.3f} s", "< 0.6 s"))
        for jobs in (1, 2):
            wall, rss = run([*mglkit, "validate", "--json", "--jobs", str(jobs), str(mid)], opts.repeat)
            rows.append(
                (
                    f"validate {opts.pairs:,} pairs --jobs {jobs}",
                    f"{opts.pairs / wall:,.0f} pairs/s ({wall:.2f} s, {rss:.0f} MB)",
                    ">= 30,000 pairs/s",
                )
            )
        if opts.long_mb:
            long = Path(tmp, "long.jsonl")
            long_pair(long, opts.long_mb)
            wall, rss = run([*mglkit, "validate", "--json", str(long)], opts.repeat)
            size = long.stat().st_size / 2**20
            rows.append((f"validate one {size:.0f} MB pair", f"{wall:.2f} s ({rss:.0f} MB)", "< 5 s"))
        if opts.big:
            generate(big, opts.big, seed=2)
            for jobs in (1, 2):
                wall, rss = run([*mglkit, "validate", "--json", "--jobs", str(jobs), str(big)], 1)
                rows.append(
                    (
                        f"validate {opts.big:,} pairs --jobs {jobs}",
                        f"peak RSS {rss:.0f} MB ({opts.big / wall:,.0f} pairs/s)",
                        "< 300 MB",
                    )
                )
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print("| measure | result | budget |\n|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
