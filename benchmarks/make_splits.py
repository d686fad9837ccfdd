"""Writes benchmarks/splits.json: each bundled benchmark item ``seen`` or ``unseen`` against the bundled
training data (preference pairs, GRPO facts, RAG corpus), as mglkit.contamination judges it. A test
keeps the file in sync with the data and the detector.

python benchmarks/make_splits.py
"""

import hashlib
import json
from pathlib import Path

from mglkit import contamination
from mglkit.outputs import write_text
from mglkit.suites import load_suite

ROOT = Path(__file__).resolve().parent.parent
SUITE = ROOT / "benchmarks"
# Named by the audit of issue 13 as given away by the training data: seen whatever the detector says.
AUDITED_SEEN = (
    "facts-buddhism-02",
    "facts-buddhism-08",
    "facts-bogd-khaan-05",
    "facts-bogd-khaan-07",
    "facts-revolution-06",
    "facts-culture-01",
    "pairs-culture-01",
)


def sha256(path: Path) -> str:
    files = sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
    return hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()


def manifest() -> dict:
    items = contamination.items_from_suite(load_suite(str(SUITE)))
    matches = contamination.detect(items, contamination.bundled_training())
    labels = contamination.splits(items, matches, AUDITED_SEEN)
    labelled = {item for kind in labels.values() for item in kind}
    evidence = {
        item: [f"{m.training_id}: {m.signal} {m.score}" for m in found[:3]]
        for item, found in contamination.by_item(matches).items()
        if item in labelled
    }
    return {
        "generated_by": "python benchmarks/make_splits.py",
        "detector": {
            "answer_threshold": contamination.ANSWER_THRESHOLD,
            "question_threshold": contamination.QUESTION_THRESHOLD,
            "wording_threshold": contamination.WORDING_THRESHOLD,
        },
        "training": {name: sha256(ROOT / name) for name in contamination.BUNDLED_TRAINING},
        "suite": {f"benchmarks/{kind}.jsonl": sha256(SUITE / f"{kind}.jsonl") for kind in contamination.SPLIT_KINDS},
        "always_seen": list(AUDITED_SEEN),
        "counts": {
            kind: {split: list(found.values()).count(split) for split in ("seen", "unseen")}
            for kind, found in labels.items()
        },
        "splits": labels,
        "evidence": evidence,
    }


def text(data: dict) -> str:
    return json.dumps(data, ensure_ascii=False, indent=1) + "\n"


if __name__ == "__main__":
    write_text(SUITE / contamination.SPLITS_FILE, text(manifest()))
