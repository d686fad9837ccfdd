"""SIGKILL at seeded points while mglkit replaces an output: afterwards the target is the complete old
output or the complete new one, never a mix; the only leftovers are a temporary sibling or a lock file
of the documented names, and the next write to that target removes them. And two writers at once:
one wins cleanly, the other is told who holds the output (or reuses the cache)."""

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import BAD, mglkit

pytestmark = pytest.mark.slow  # real processes, killed
PHASES = ["folder-before-build", "folder-before-swap", "folder-after-swap"]
TRAIN = ["train", *"--trainer dpo --base mglkit:tiny --eval-split 0 --batch-size 4 --samples 0 --output run".split(),
         "--dataset", BAD / "good.jsonl"]  # fmt: skip
LEFTOVER = re.compile(r"^\.(?P<name>[^/]+)\.(new-\d+|lock|\d+\.tmp)$")


def start(args, cwd, phase=None):
    env = {**os.environ, **({"MGLKIT_TEST_KILL_AT": phase} if phase else {})}
    return subprocess.Popen(
        [sys.executable, "-m", "mglkit", *map(str, args)],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def kill_after(process, seconds: float) -> None:
    time.sleep(seconds)
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)
    process.wait(timeout=600)


def signature(path: Path, key_files: tuple[str, ...]) -> tuple | None:
    """What makes an output that output: its key files' contents, if it is complete (else None)."""
    if path.is_file():
        return (path.read_bytes(),)
    marker = path / ".mglkit.json"
    if not marker.is_file() or json.loads(marker.read_text())["status"] != "finished":
        return None
    return tuple((path / name).read_bytes() if (path / name).is_file() else None for name in key_files)


def leftovers(parent: Path, target: str) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name != target and not p.name.startswith(("notes", "src")))


def check_trial(parent, target, old, new, key_files):
    now = signature(parent / target, key_files)
    assert now in (old, new), f"{target} is neither the complete old nor the complete new output"
    for name in leftovers(parent, target):
        match = LEFTOVER.match(name)
        assert match and match["name"] == target, f"unexpected leftover {name}"


TARGETS = {
    # name: (make the old output and return the command that replaces it, the target, its key files)
    "validate": ("clean.jsonl", ()),
    "index": ("idx", ("documents.jsonl",)),
    "export": ("out", ("adapter_model.safetensors", "adapter_config.json")),
}


def prepare(kind: str, parent: Path) -> list:
    if kind == "validate":
        (parent / "src.jsonl").write_bytes((BAD / "good.jsonl").read_bytes() * 50)
        (parent / "clean.jsonl").write_bytes(b"the old clean file\n")
        return ["validate", "src.jsonl", "--out-clean", "clean.jsonl", "--validators", "length"]
    if kind == "index":
        (parent / "notes").mkdir()
        (parent / "notes" / "a.md").write_text("Хархорум хот.\n\nЭрдэнэ Зуу хийд.")
        assert mglkit("index", "notes", "--output", "idx", cwd=parent).returncode == 0
        (parent / "notes" / "b.md").write_text("Богд хаант Монгол Улс 1911 онд байгуулагдсан.")
        return ["index", "notes", "--output", "idx", "--overwrite"]
    src = parent / "src"
    src.mkdir()
    (src / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "mglkit:tiny"}))
    (src / "adapter_model.safetensors").write_bytes(b"old weights")
    assert mglkit("export", "src", "--format", "adapter", "--output", "out", cwd=parent).returncode == 0
    (src / "adapter_model.safetensors").write_bytes(b"new weights")
    return ["export", "src", "--format", "adapter", "--output", "out", "--overwrite"]


def reference_new(kind, tmp_path):
    """The new output, made without a kill (to compare against)."""
    parent = tmp_path / "reference"
    parent.mkdir()
    command = prepare(kind, parent)
    target, key_files = TARGETS[kind]
    assert mglkit(*command, cwd=parent).returncode == 0
    return signature(parent / target, key_files)


@pytest.mark.parametrize("kind", sorted(TARGETS))
def test_sigkill_while_replacing_leaves_old_or_new(kind, tmp_path):
    rng = random.Random(f"faults-{kind}")
    target, key_files = TARGETS[kind]
    new = reference_new(kind, tmp_path)
    phases = ["file-before-rename"] if kind == "validate" else PHASES
    trials = [(phase, None) for phase in phases] + [(None, rng.uniform(0.3, 2.5)) for _ in range(7 - len(phases))]
    for number, (phase, delay) in enumerate(trials):
        parent = tmp_path / f"trial{number}"
        parent.mkdir()
        command = prepare(kind, parent)
        old = signature(parent / target, key_files)
        process = start(command, parent, phase)
        if delay is None:
            assert process.wait(timeout=600) == -signal.SIGKILL, process.stderr.read().decode()
        else:
            kill_after(process, delay)
        check_trial(parent, target, old, new, key_files)
        # the next write to that target clears what the killed one left
        result = mglkit(*command, cwd=parent)
        assert result.returncode == 0, result.stderr.decode()
        assert signature(parent / target, key_files) == new and leftovers(parent, target) == []


def test_sigkill_while_training_over_a_run_leaves_old_or_new(tiny, tmp_path):
    args = [*TRAIN, "--max-steps", "2", "--precision", "fp32"]
    key_files = ("adapter_model.safetensors",)
    parent = tmp_path / "reference"
    parent.mkdir()
    assert mglkit(*args, "--seed", "1", cwd=parent).returncode == 0
    old = signature(parent / "run", key_files)
    shutil.copytree(parent / "run", tmp_path / "old-run")  # each trial starts from a copy: a run costs seconds
    assert mglkit(*args, "--seed", "2", "--overwrite", cwd=parent).returncode == 0
    new = signature(parent / "run", key_files)
    assert old != new
    rng = random.Random("faults-train")
    for number, (phase, delay) in enumerate([(p, None) for p in PHASES] + [(None, rng.uniform(4, 12))]):
        trial = tmp_path / f"trial{number}"
        trial.mkdir()
        shutil.copytree(tmp_path / "old-run", trial / "run")
        process = start([*args, "--seed", "2", "--overwrite"], trial, phase)
        if delay is None:
            assert process.wait(timeout=600) == -signal.SIGKILL
        else:
            kill_after(process, delay)
        check_trial(trial, "run", old, new, key_files)
    result = mglkit(*args, "--seed", "2", "--overwrite", cwd=trial)  # and the next run clears the leftovers
    assert result.returncode == 0 and signature(trial / "run", key_files) == new and leftovers(trial, "run") == []


def test_two_trains_into_one_output(tiny, tmp_path):
    args = [*TRAIN, "--max-steps", "3"]
    processes = [start(args, tmp_path) for _ in range(2)]
    outcomes = sorted((p.wait(timeout=600), p.stderr.read().decode()) for p in processes)
    assert outcomes[0][0] == 0 and outcomes[1][0] in (2, 3), outcomes
    assert "in use by process" in outcomes[1][1] or "already holds an mglkit run" in outcomes[1][1]
    steps = [
        json.loads(line)["step"] for line in (tmp_path / "run/training_logs/metrics.jsonl").read_text().splitlines()
    ]
    assert steps == [1, 2, 3]  # one run's metrics, nothing mixed
    assert json.loads((tmp_path / "run/.mglkit.json").read_text())["status"] == "finished"


def test_three_writers_of_one_index_and_of_one_cache(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.md").write_text("Хархорум хот.\n\nЭрдэнэ Зуу хийд.")
    processes = [start(["index", "notes", "--output", "idx"], tmp_path) for _ in range(3)]
    codes = sorted(p.wait(timeout=600) for p in processes)
    assert codes[0] == 0 and all(code in (2, 3) for code in codes[1:]), codes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx", "notes"]
    cache = tmp_path / "cache"
    code = "from mglkit.retrieval import default_index; print(len(default_index().documents))"
    env = {**os.environ, "MGLKIT_CACHE": str(cache)}
    builders = [
        subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(3)
    ]
    counts = {b.communicate(timeout=600)[0] for b in builders}
    assert all(b.returncode == 0 for b in builders) and len(counts) == 1
    assert [p.name for p in cache.iterdir()] == [next(cache.glob("index-*")).name]  # one entry, nothing left over


def test_two_exports_into_one_output(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "mglkit:tiny"}))
    (src / "adapter_model.safetensors").write_bytes(b"w" * 50_000_000)  # big enough to overlap
    processes = [start(["export", "src", "--format", "adapter", "--output", "out"], tmp_path) for _ in range(2)]
    outcomes = sorted((p.wait(timeout=600), p.stderr.read().decode()) for p in processes)
    assert outcomes[0][0] == 0 and outcomes[1][0] in (2, 3), outcomes
    assert (tmp_path / "out" / "adapter_model.safetensors").stat().st_size == 50_000_000
