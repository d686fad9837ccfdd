"""Reference log-probs: shared out between processes (each computes its share, all get the whole,
equal to one process), cached on disk under a key that names everything they depend on (a second
run reuses them and trains the same; any change of data, length or precision computes them anew;
two runs at once compute them once), for `dpo` and for `trl-dpo`."""

import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT, cli, read_metrics
from mglkit_dpo.batches import shares

TRAIN = ROOT / "data" / "mgl_history_grpo.jsonl"
LAUNCH = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
          "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]  # fmt: skip
COMMON = [
    "--base", "mglkit:tiny", "--skip-validation", "--eval-split", "0.25", "--grad-accum", "1", "--scheduler",
    "constant", "--warmup-ratio", "0", "--lora-dropout", "0", "--precision", "fp32", "--seed", "7",
    "--samples", "0", "--learning-rate", "1e-3", "--batch-size", "2", "--max-steps", "3", "--max-length", "256",
    "--no-plots",
]  # fmt: skip


@pytest.mark.parametrize(("n", "size", "world"), [(10, 2, 1), (10, 2, 2), (9, 2, 2), (5, 4, 3), (1, 4, 2)])
def test_each_process_takes_every_world_th_batch_and_as_many_forwards(n, size, world):
    taken = [shares(n, size, rank, world) for rank in range(world)]
    assert len({len(t) for t in taken}) == 1  # a sharded model needs every process in every forward
    real = sorted(first for t in taken for first, is_real in t if is_real)
    assert real == list(range(0, n, size))  # the batches one process makes, each once
    assert all(first == 0 for t in taken for first, is_real in t if not is_real)


@pytest.fixture(scope="module")
def pairs_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "twelve.jsonl"
    path.write_text("".join(TRAIN.read_text(encoding="utf-8").splitlines(keepends=True)[:12]), encoding="utf-8")
    return path


def entries(cache):
    """{entry name: tensors} of the reference cache under ``cache``."""
    from safetensors.torch import load_file

    found = {}
    for path in sorted((cache / "reference").glob("*/*.safetensors")):
        found[path.parent.name] = load_file(str(path))
    return found


def train(cache, *args, launch=()):
    """``mglkit train`` with ``cache`` as MGLKIT_CACHE: launched as several processes, else in this
    process (a new process would spend most of a short run importing)."""
    if launch:
        env = {**os.environ, "MGLKIT_CACHE": str(cache)}
        command = [*launch, "-m", "mglkit", "train", *map(str, args)]
        result = subprocess.run(command, capture_output=True, env=env, timeout=600)
    else:
        result = cli("train", *args, env={"MGLKIT_CACHE": str(cache)})
    assert result.returncode == 0, result.stderr.decode()[-3000:]


def reference_notes(run):
    log = (run / "training_logs" / "training.log").read_text(encoding="utf-8")
    return [line.split(" ", 2)[2] for line in log.splitlines() if "reference log-probs of" in line]


def losses(run):
    return [(m["step"], m.get("loss"), m.get("eval_loss")) for m in read_metrics(run)]


def test_two_processes_share_the_reference_pass_and_get_one_process_result(private_cache, pairs_file, tmp_path):
    args = ["--trainer", "dpo", *COMMON, "--dataset", pairs_file]
    train(private_cache, *args, "--output", tmp_path / "two", launch=LAUNCH)
    notes = reference_notes(tmp_path / "two")
    assert len(notes) == 2 and all("by 2 process(es), cached" in n for n in notes), notes
    two = entries(private_cache)
    assert len(two) == 2  # train and eval
    (private_cache / "reference").rename(tmp_path / "two-entries")
    train(private_cache, *args, "--output", tmp_path / "one")
    assert all("by 1 process(es), cached" in n for n in reference_notes(tmp_path / "one"))
    one = entries(private_cache)
    assert one.keys() == two.keys()  # the same keys: the number of processes is not part of them
    for name, tensors in one.items():
        for part in ("chosen", "rejected"):
            assert tensors[part].abs().min() > 0  # every pair computed by some process
            assert tensors[part].tolist() == two[name][part].tolist(), (name, part)


def test_a_second_run_reuses_the_cache_and_any_change_computes_anew(private_cache, pairs_file, tmp_path):
    args = ["--trainer", "dpo", *COMMON, "--dataset", pairs_file]
    train(private_cache, *args, "--output", tmp_path / "first")
    train(private_cache, *args, "--output", tmp_path / "again")
    assert all("cached" in n for n in reference_notes(tmp_path / "first"))
    assert all("reused from the cache" in n for n in reference_notes(tmp_path / "again"))
    assert losses(tmp_path / "again") == losses(tmp_path / "first")  # exactly: the same numbers
    stats = json.loads((tmp_path / "again" / "training_logs" / "training_stats.json").read_text())
    assert stats["reference_reused"] is True and stats["reference_seconds"] >= 0
    assert len(entries(private_cache)) == 2

    fewer = tmp_path / "eleven.jsonl"
    fewer.write_text("".join(pairs_file.read_text(encoding="utf-8").splitlines(keepends=True)[:11]), encoding="utf-8")
    changes = {"data": ["--dataset", fewer], "max length": ["--max-length", "96"], "precision": ["--precision", "bf16"]}
    for i, (what, change) in enumerate(changes.items()):  # (batch size, padding-free... : tests/test_refcache.py)
        run = tmp_path / f"changed-{i}"
        fresh = [sys.executable] if what == "precision" else []  # accelerate sets a process's precision once
        train(private_cache, *args, *change, "--max-steps", "1", "--output", run, launch=fresh)
        notes = reference_notes(run)
        assert len(notes) == 2 and not any("reused" in n for n in notes), what
    count = len(entries(private_cache))
    assert count == 2 + 2 * len(changes)
    train(private_cache, *args, "--no-ref-cache", "--max-steps", "1", "--output", tmp_path / "off")
    assert all("not cached: --no-ref-cache" in n for n in reference_notes(tmp_path / "off"))
    assert len(entries(private_cache)) == count


def test_two_runs_at_once_compute_the_reference_once(private_cache, tmp_path):
    args = ["--trainer", "dpo", *COMMON, "--dataset", TRAIN, "--eval-split", "0", "--max-steps", "1"]
    env = {**os.environ, "MGLKIT_CACHE": str(private_cache)}
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "mglkit", "train", *map(str, args), "--output", str(tmp_path / name)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
        )  # fmt: skip
        for name in ("a", "b")
    ]
    for run in runs:
        assert run.wait(timeout=600) == 0, run.stderr.read().decode()[-3000:]
    notes = reference_notes(tmp_path / "a") + reference_notes(tmp_path / "b")
    assert len(notes) == 2 and sum("reused from the cache" in n for n in notes) == 1, notes
    assert len(entries(private_cache)) == 1


def test_trl_dpo_takes_its_reference_columns_from_the_cache(private_cache, pairs_file, tmp_path):
    args = ["--trainer", "trl-dpo", *COMMON, "--dataset", pairs_file]
    train(private_cache, *args, "--output", tmp_path / "first")
    train(private_cache, *args, "--output", tmp_path / "again")
    assert [("computed by TRL" in n) for n in reference_notes(tmp_path / "first")] == [True, True]
    assert [("reused from the cache" in n) for n in reference_notes(tmp_path / "again")] == [True, True]
    assert losses(tmp_path / "again") == losses(tmp_path / "first")
    keys = [key_of(path) for path in (private_cache / "reference").glob("*/*.safetensors")]
    assert len(keys) == 2 and all(key["extra"]["trainer"] == "trl-dpo" for key in keys)  # apart from dpo's


def key_of(path) -> dict:
    from safetensors import safe_open

    from mglkit.refcache import METADATA_KEY

    with safe_open(str(path), framework="pt") as handle:
        return json.loads(handle.metadata()[METADATA_KEY])


def test_base_identity_of_a_model_source_a_folder_and_a_hub_id(tmp_path):
    from types import SimpleNamespace

    from mglkit.refcache import base_identity

    def loaded(commit):
        return SimpleNamespace(config=SimpleNamespace(_commit_hash=commit))

    assert base_identity("mglkit:no-such-model", loaded(None)) is None  # a source name with no folder
    assert base_identity("org/model", loaded(None)) is None  # a hub id without its commit: a branch moves
    assert base_identity("org/model", loaded("a" * 40)) == {"hub_id": "org/model", "revision": None, "commit": "a" * 40}
    (tmp_path / "config.json").write_text("{}")
    assert base_identity(str(tmp_path), loaded(None))["folder"] == str(tmp_path.resolve())
