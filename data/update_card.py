"""Rewrites the count tables of data/DATA.md from the bundled files (a test keeps them in sync).

python data/update_card.py
"""

import json
import re
from collections import Counter
from pathlib import Path

from mglkit.history import FLAWS, PERIODS

ROOT = Path(__file__).resolve().parent.parent
CARD = ROOT / "data" / "DATA.md"
FILES = {
    "train pairs": "data/mgl_history_grpo.jsonl",
    "held-out pairs": "benchmarks/pairs.jsonl",
    "facts": "benchmarks/facts.jsonl",
    "fluency": "benchmarks/fluency.jsonl",
    "corpus": "data/corpus/passages.jsonl",
    "retrieval": "benchmarks/retrieval.jsonl",
    "facts_train": "data/facts_train.jsonl",
}
START, END = "<!-- tables:start -->", "<!-- tables:end -->"


def read(relative: str) -> list[dict]:
    with (ROOT / relative).open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def tables() -> str:
    data = {name: read(path) for name, path in FILES.items()}
    fluent = [r for r in data["fluency"] if "degraded" not in r]
    degraded = [r for r in data["fluency"] if "degraded" in r]
    columns = ["train pairs", "held-out pairs", "facts", "fluent passages", "degraded passages", "corpus",
               "retrieval", "facts_train"]  # fmt: skip
    counts = {
        "train pairs": Counter(r["period"] for r in data["train pairs"]),
        "held-out pairs": Counter(r["period"] for r in data["held-out pairs"]),
        "facts": Counter(r["period"] for r in data["facts"]),
        "fluent passages": Counter(r["period"] for r in fluent),
        "degraded passages": Counter(r["period"] for r in degraded),
        "corpus": Counter(r["period"] for r in data["corpus"]),
        "retrieval": Counter(r["period"] for r in data["retrieval"]),
        "facts_train": Counter(r["period"] for r in data["facts_train"]),
    }
    lines = ["| period | slug | " + " | ".join(columns) + " |", "|---|---|" + "---:|" * len(columns)]
    for slug, (english, _) in PERIODS.items():
        lines.append(f"| {english} | `{slug}` | " + " | ".join(str(counts[c][slug]) for c in columns) + " |")
    lines.append("| **total** | | " + " | ".join(f"**{sum(counts[c].values())}**" for c in columns) + " |")
    flaws = {name: Counter(r["flaw"] for r in data[name]) for name in ("train pairs", "held-out pairs")}
    lines += ["", "| flaw of `rejected` | meaning | train pairs | held-out pairs |", "|---|---|---:|---:|"]
    for flaw, meaning in FLAWS.items():
        train, held_out = flaws["train pairs"][flaw], flaws["held-out pairs"][flaw]
        lines.append(f"| `{flaw}` | {meaning} | {train} | {held_out} |")
    kinds = Counter(r["degraded"] for r in degraded)
    lines += ["", "| degradation | passages |", "|---|---:|"]
    lines += [f"| `{kind}` | {n} |" for kind, n in sorted(kinds.items())]
    positions = Counter(r["answer"] for r in data["facts"])
    lines += ["", "| correct choice in facts.jsonl | 0 | 1 | 2 | 3 |", "|---|---:|---:|---:|---:|"]
    lines.append("| items | " + " | ".join(str(positions[i]) for i in range(4)) + " |")
    return "\n".join(lines)


def card_with_tables(card: str) -> str:
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)
    return pattern.sub(lambda _: f"{START}\n{tables()}\n{END}", card)


if __name__ == "__main__":
    CARD.write_text(card_with_tables(CARD.read_text(encoding="utf-8")), encoding="utf-8")
