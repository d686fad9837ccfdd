"""Positive and negative controls: the evaluators see what training put into the model.

Positive: `dpo` trained on the held-out pairs themselves (deliberately contaminated) must win them:
`reward_accuracy`'s interval lies above 0.5 and `ref_free_accuracy_norm`'s paired delta is positive
and significant; `train --eval benchmarks` warns that the training data holds suite items, naming the
first. Negative: the same pairs with chosen and rejected swapped must lose them: a negative,
significant `ref_free_accuracy_norm` delta. Settings (seed 42, 4 epochs of 8 steps, lr 1e-3) measured
on a shared 2-core machine: +0.217 [0.117, 0.317] and -0.250 [-0.367, -0.150], reward accuracy 1.0
and 0.0 (lr 5e-4 gave +0.083 and -0.067: too close to zero to rely on).
"""

import json
import shutil

import pytest
from conftest import ROOT, mglkit

from mglkit.contamination_check import check
from mglkit.suites import load_suite

PAIRS = ROOT / "benchmarks" / "pairs.jsonl"
CONTROL = (
    "--trainer dpo --base mglkit:tiny --learning-rate 1e-3 --batch-size 8 --grad-accum 1 --epochs 4 "
    "--max-length 256 --seed 42 --eval-split 0 --samples 0 --no-plots"
).split()


def preference(run) -> dict:
    stats = json.loads((run / "training_logs" / "training_stats.json").read_text(encoding="utf-8"))
    return stats["benchmarks"]["evaluators"]["preference"]["adapter"]


def test_training_on_the_held_out_pairs_shows_in_the_evaluation(tiny, tmp_path):
    out = tmp_path / "contaminated"
    result = mglkit("train", *CONTROL, "--dataset", PAIRS, "--eval", "benchmarks", "--output", out)
    assert result.returncode == 0, result.stderr.decode()[-3000:]  # validation passes (a size warning only)
    scores = preference(out)
    assert scores["metrics"]["reward_accuracy"]["ci95"][0] > 0.5
    delta = scores["delta_vs_base"]["ref_free_accuracy_norm"]
    assert delta["value"] > 0 and delta["significant"], delta
    first = check(load_suite("benchmarks"), [str(PAIRS)]).strongest()[0].item_id
    note = "warning: the training data holds"
    log = (out / "training_logs" / "training.log").read_text(encoding="utf-8")
    assert note in log and f"the first: {first} is in the training data: {PAIRS}:" in log
    assert note in result.stderr.decode()


@pytest.fixture
def pairs_only(tmp_path):
    """The held-out pairs alone as a suite: the negative control needs only the preference evaluator."""
    suite = tmp_path / "held-out-pairs"
    suite.mkdir()
    shutil.copy(PAIRS, suite / "pairs.jsonl")
    return suite


def test_training_on_swapped_pairs_shows_as_a_loss(tiny, tmp_path, pairs_only):
    swapped = tmp_path / "swapped.jsonl"
    records = [json.loads(line) for line in PAIRS.read_text(encoding="utf-8").splitlines()]
    for record in records:
        record["chosen"], record["rejected"] = record["rejected"], record["chosen"]
    swapped.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    out = tmp_path / "swapped"
    # the swapped chosen answers are the deliberately bad ones, which validation rejects by design
    result = mglkit("train", *CONTROL, "--dataset", swapped, "--skip-validation", "--eval", pairs_only,
                    "--output", out)  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    delta = preference(out)["delta_vs_base"]["ref_free_accuracy_norm"]
    assert delta["value"] < 0 and delta["significant"], delta
