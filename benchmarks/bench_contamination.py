"""The contamination detector: precision and recall on the labelled set, and its speed.

    python benchmarks/bench_contamination.py [--repeat 3]

Precision and recall come from tests/data/contamination_pairs.jsonl: each example is a benchmark-
style item with a training text that states its answer (contaminated) or one on the same topic
that does not (clean). The thresholds were chosen on the ``tune`` part; the ``heldout`` part,
written at the same time, is the estimate to quote. Speed: the bundled suite (facts, held-out
pairs, retrieval questions, fluent passages) against the bundled training data (preference pairs,
GRPO facts, RAG corpus), best of ``--repeat`` runs, reading the files included.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from mglkit import contamination
from mglkit.suites import load_suite

ROOT = Path(__file__).resolve().parent.parent
LABELLED = ROOT / "tests" / "data" / "contamination_pairs.jsonl"


def quality() -> None:
    print("| labelled part | contaminated / clean | precision | recall | missed | wrongly flagged |")
    print("|---|---:|---:|---:|---|---|")
    for split in ("heldout", "tune"):
        result = contamination.calibrate(LABELLED, split)
        positives = result.true_positives + result.false_negatives
        negatives = result.true_negatives + result.false_positives
        missed = ", ".join(w for w in result.wrong if w.endswith("-c")) or "—"
        flagged = ", ".join(w for w in result.wrong if w.endswith("-n")) or "—"
        print(f"| {split} | {positives} / {negatives} | {result.precision:.3f} | {result.recall:.3f} | {missed} "
              f"| {flagged} |")  # fmt: skip


def speed(repeat: int) -> None:
    times, matches, items, training = [], [], [], []
    for _ in range(repeat):
        start = time.perf_counter()
        items = contamination.items_from_suite(load_suite(str(ROOT / "benchmarks")))
        training = contamination.bundled_training()
        matches = contamination.detect(items, training)
        times.append(time.perf_counter() - start)
    seen = {m.item_id for m in matches}
    print(f"\n{len(items)} items against {len(training)} training texts: {min(times):.2f} s (best of {repeat}), "
          f"{len(matches)} matches, {len(seen)} items given away")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    quality()
    speed(args.repeat)


if __name__ == "__main__":
    main()
