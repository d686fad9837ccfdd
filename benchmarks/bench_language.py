"""How often the default language signals and lingua-language-detector agree, and how fast each is.

    python benchmarks/bench_language.py      (needs the `lang` extra)

Every field of the bundled pair files and of the bad-input corpus is classified by both. The
signals say ru / kk / mixed-ru / mn / unknown; lingua says mn / ru / kk / en. They "agree" when
both call the text Mongolian (signals: mn, unknown or mixed-ru), or both call it the same
other language.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from mglkit.mongolian import detect_language, detect_language_lingua
from mglkit.pairs import TEXT_FIELDS, iter_records, open_source

ROOT = Path(__file__).resolve().parent.parent
SETS = {
    "bundled data (train + held-out pairs)": [
        ROOT / "data/mgl_history_grpo.jsonl",
        ROOT / "benchmarks/pairs.jsonl",
    ],
    "bad-input corpus": sorted((ROOT / "tests/bad_inputs").glob("*.jsonl")),
}


def texts(paths):
    for path in paths:
        with open_source(path) as stream:
            for record in iter_records(stream):
                if record.pair is not None:
                    yield from (getattr(record.pair, f) for f in TEXT_FIELDS)


def same(signals: str, lingua: str) -> bool:
    mongolian = {"mn", "unknown", "mixed-ru"}
    return (signals in mongolian and lingua == "mn") or signals == lingua


def main() -> None:
    detect_language_lingua("Монгол")  # build the detector outside the timing
    print("| texts | fields | agree | disagreements (signals → lingua) | signals /s | lingua /s |")
    print("|---|---:|---:|---|---:|---:|")
    for name, paths in SETS.items():
        items = list(texts(paths))
        start = time.perf_counter()
        ours = [detect_language(t).lang for t in items]
        t_ours = time.perf_counter() - start
        start = time.perf_counter()
        theirs = [detect_language_lingua(t).lang for t in items]
        t_lingua = time.perf_counter() - start
        agree = sum(same(a, b) for a, b in zip(ours, theirs, strict=True))
        differ = Counter(f"{a} → {b}" for a, b in zip(ours, theirs, strict=True) if not same(a, b))
        shown = ", ".join(f"{k}: {v}" for k, v in differ.most_common()) or "—"
        print(f"| {name} | {len(items)} | {agree / len(items):.1%} | {shown} | "
              f"{len(items) / t_ours:,.0f} | {len(items) / t_lingua:,.0f} |")  # fmt: skip


if __name__ == "__main__":
    main()
