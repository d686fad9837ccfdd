"""Every bad invocation found by the adversarial review, as a table: each runs the real command in a
scratch folder whose whole tree is hashed before and after. The only change allowed is the one the
case declares; no case prints a traceback; the exit code follows the scheme."""

import hashlib
import json
import os
import stat
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import BAD, mglkit

pytestmark = pytest.mark.slow  # each case is a real process

GOOD = (BAD / "good.jsonl").read_bytes()
TRAIN = ["train", "--trainer", "dpo", "--base", "mglkit:tiny", "--max-steps", "1", "--samples", "0"]
RUN_MARKER = json.dumps({"kind": "run", "status": "finished"})


def snapshot(root: Path) -> dict[str, str]:
    """Every path under root: a file's hash, a link's target, or the kind of a special file."""
    found = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        key = path.relative_to(root).as_posix()
        if stat.S_ISLNK(info.st_mode):
            found[key] = "link:" + os.readlink(path)
        elif stat.S_ISREG(info.st_mode):
            found[key] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            found[key] = stat.filemode(info.st_mode)[0]
    return found


def files(root: Path, layout: dict[str, bytes | str]) -> None:
    for name, content in layout.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())


def fake_run(name: str) -> dict[str, str]:
    """A run folder as mglkit leaves one (weights need not be real for what is tested here)."""
    return {
        f"{name}/.mglkit.json": RUN_MARKER,
        f"{name}/training_args.json": "{}",
        f"{name}/adapter_config.json": json.dumps({"base_model_name_or_path": "mglkit:tiny"}),
        f"{name}/adapter_model.safetensors": b"weights",
    }


@dataclass
class Case:
    args: list
    code: int
    says: str
    layout: dict = field(default_factory=dict)
    env: dict = field(default_factory=dict)
    may_change: tuple = ()  # paths (relative) the command may write


CASES = {
    # 1. nothing mglkit did not create is deleted or replaced
    "index over its own sources": Case(
        ["index", "notes", "--output", "notes"],
        2,
        "is, holds or is inside the input",
        {"notes/a.md": "Эрдэнэ Зуу хийд 1585 онд байгуулагдсан."},
    ),
    "index into the current folder": Case(
        ["index", "notes", "--output", ".", "--overwrite"],
        2,
        "is, holds or is inside the input",
        {"notes/a.md": "Хархорум хот."},
    ),
    "index into a user's folder": Case(
        ["index", "notes", "--output", "mine", "--overwrite"],
        2,
        "is not empty and is not an mglkit index",
        {"notes/a.md": "Хархорум хот.", "mine/a.txt": "mine"},
    ),
    "train over a folder of the user's": Case(
        [*TRAIN, "--output", "thesis", "--overwrite"],
        2,
        "is not empty and is not an mglkit run",
        {"thesis/ch1.tex": "years"},
    ),
    "train over the current folder": Case(
        [*TRAIN, "--output", ".", "--overwrite"], 2, "is not empty and is not", {"notes.txt": "mine"}
    ),
    "train over its dataset": Case(
        [*TRAIN, "--dataset", "pairs.jsonl", "--output", "pairs.jsonl", "--overwrite"],
        2,
        "is a file, not a folder",
        {"pairs.jsonl": GOOD},
    ),
    "overwrite with a bad setting": Case(
        [*TRAIN, "--output", "run", "--overwrite", "--learning-rate", "-1"], 2, "--learning-rate", fake_run("run")
    ),
    "overwrite through a link": Case(
        [*TRAIN, "--output", "link", "--overwrite"], 2, "is a symbolic link", fake_run("run")
    ),
    "export over its parent": Case(
        ["export", "runs/a", "--format", "adapter", "--output", "runs", "--overwrite"],
        2,
        "is, holds or is inside the input",
        fake_run("runs/a"),
    ),
    "export over its source": Case(
        ["export", "runs/a", "--format", "adapter", "--output", "runs/a", "--overwrite"],
        2,
        "is, holds or is inside the input",
        fake_run("runs/a"),
    ),
    "export without weights": Case(
        ["export", "ad", "--format", "adapter", "--output", "out"],
        2,
        "no adapter weights",
        {"ad/adapter_config.json": "{}"},
    ),
    "index somewhere unwritable": Case(
        ["index", "notes", "--output", "/proc/mglkit-index"], 2, "cannot write there", {"notes/a.md": "Хархорум хот."}
    ),
    # 3. nobody's code runs unless the user asked on the command line
    "trust from mglkit.toml": Case(
        [*TRAIN, "--output", "run"],
        2,
        "cannot be set in a config file",
        {"mglkit.toml": '[train]\ntrust_remote_code = true\nbase = "./model"\n'},
    ),
    "trust from pyproject.toml": Case(
        ["train", "--dry-run"],
        2,
        "cannot be set in a config file",
        {"pyproject.toml": "[tool.mglkit.train]\ntrust_remote_code = true\n"},
    ),
    # 4. no hang, no traceback, honest exit codes
    "one pair left for nothing": Case(
        [*TRAIN, "--dataset", "one.jsonl", "--skip-validation", "--output", "run"],
        2,
        "no pairs left for training",
        {"one.jsonl": GOOD.splitlines()[0] + b"\n"},
    ),
    "eval split takes everything": Case(
        [*TRAIN, "--dataset", "d.jsonl", "--eval-split", "0.99", "--output", "run"],
        2,
        "no pairs left for training",
        {"d.jsonl": GOOD},
    ),
    "allow-list of no plugin": Case(
        ["validate", "pairs.jsonl"],
        2,
        "no validator is installed or selected",
        {"pairs.jsonl": GOOD},
        {"MGLKIT_LOAD_PLUGINS": "garbage"},
    ),
    "malformed adapter config (generate)": Case(
        ["generate", "--base", "mglkit:tiny", "--adapter", "ad", "q"],
        2,
        "adapter_config.json: not valid JSON",
        {"ad/adapter_config.json": "{"},
    ),
    "list-shaped adapter config (eval)": Case(
        ["eval", "benchmarks", "--base", "mglkit:tiny", "--adapter", "ad"],
        2,
        "'base_model_name_or_path': malformed",
        {"ad/adapter_config.json": "[]"},
    ),
    "malformed adapter config (ask)": Case(
        ["ask", "q", "--base", "mglkit:tiny", "--adapter", "ad"],
        2,
        "not valid JSON",
        {"ad/adapter_config.json": '{"base_model_name_or_path":'},
    ),
    "learning rate nan": Case([*TRAIN, "--learning-rate", "nan", "--output", "run"], 2, "not a finite number"),
    "epochs nan": Case([*TRAIN, "--epochs", "nan", "--output", "run"], 2, "not a finite number"),
    "unknown scheduler": Case([*TRAIN, "--scheduler", "bogus", "--output", "run"], 2, "not a transformers scheduler"),
    "dataset from stdin": Case([*TRAIN, "--dataset", "-", "--output", "run"], 2, "--dataset -: no such file"),
    "binary text to index": Case(
        ["index", "notes", "--output", "idx"], 2, "not UTF-8 text", {"notes/blob.txt": b"\xff\xfe\x00\x81binary"}
    ),
    "documents with no words": Case(
        ["index", "notes", "--output", "idx"], 2, "no documents with words", {"notes/a.md": "!!! ???\n\n---\n"}
    ),
    "resume of a folder with no checkpoints": Case(
        [*TRAIN, "--output", "new", "--resume", "empty"], 2, "not a run with checkpoints", {"empty/.keep": ""}
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_invocation(name, tmp_path):
    case = CASES[name]
    files(tmp_path, case.layout)
    if name == "overwrite through a link":
        (tmp_path / "link").symlink_to(tmp_path / "run")
    before = snapshot(tmp_path)
    result = mglkit(*case.args, cwd=tmp_path, env=case.env)
    stderr = result.stderr.decode()
    assert result.returncode == case.code, stderr
    assert case.says in stderr + result.stdout.decode(), stderr
    assert "Traceback" not in stderr and "internal error" not in stderr
    after = snapshot(tmp_path)
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    assert changed <= set(case.may_change), changed


@pytest.mark.skipif(os.geteuid() != 0, reason="making a character device needs root (CI runs as root)")
def test_rejects_into_a_character_device_write_into_it(tmp_path):
    null = tmp_path / "null"
    os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    (tmp_path / "short.jsonl").write_bytes((BAD / "short.jsonl").read_bytes())
    result = mglkit("validate", "short.jsonl", "--out-rejects", "null", "--out-clean", "/proc/self/fd/1", cwd=tmp_path)
    assert result.returncode == 1 and stat.S_ISCHR(null.stat().st_mode)
    assert result.stdout.count(b'"prompt"') >= 11  # the clean records went to standard output, through the link


def test_rejects_into_a_fifo_reach_its_reader(tmp_path):
    fifo = tmp_path / "rejects"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE)
    result = mglkit("validate", BAD / "short.jsonl", "--out-rejects", fifo)
    out, _ = reader.communicate(timeout=60)
    assert result.returncode == 1 and json.loads(out)["line"] == 2 and stat.S_ISFIFO(fifo.stat().st_mode)


def test_a_closed_standard_output_is_exit_3():
    big = b"".join([GOOD] * 200)
    shell = f"{sys.executable} -m mglkit validate - --json | head -c 10 > /dev/null; exit ${{PIPESTATUS[0]}}"
    result = subprocess.run(["bash", "-c", shell], input=big, capture_output=True, timeout=120)
    assert result.returncode == 3 and b"Traceback" not in result.stderr, result.stderr


def test_json_reports_stay_proportional_to_the_findings(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"prompt": "x"}\n' * 5000)
    result = mglkit("validate", bad, "--json")
    report = json.loads(result.stdout)
    assert report["schema"] == 2 and len(report["findings"]) == 2 * 5000 + 1  # two missing fields a line, and size
    hints = report["rules"]["format"]["hints"]
    assert hints == ["each record needs prompt, chosen and rejected"]
    assert all(f["hint"] == 0 for f in report["findings"] if f["rule"] == "format")
    assert len(result.stdout) < 300 * len(report["findings"])


@pytest.mark.parametrize("damage", ["truncated", "extra key", "missing", "reordered"])
def test_a_tampered_index_is_refused(tmp_path, damage):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.md").write_text("Эрдэнэ Зуу хийд 1585 онд.\n\nХархорум хот Өгэдэй хааны үед.\n\nГурав.")
    assert mglkit("index", "notes", "--output", "idx", cwd=tmp_path).returncode == 0
    docs = tmp_path / "idx" / "documents.jsonl"
    lines = docs.read_text().splitlines()
    if damage == "truncated":
        docs.write_text("\n".join(lines[:-1]) + "\n")
    elif damage == "extra key":
        record = json.loads(lines[0]) | {"extra": 1}
        docs.write_text("\n".join([json.dumps(record, ensure_ascii=False), *lines[1:]]) + "\n")
    elif damage == "missing":
        docs.unlink()
    else:
        docs.write_text("\n".join(reversed(lines)) + "\n")
    result = mglkit("ask", "Эрдэнэ Зуу?", "--base", "mglkit:tiny", "--index", "idx", cwd=tmp_path)
    assert result.returncode == 2 and b"do not match its manifest" in result.stderr
    assert b"mglkit index" in result.stderr and b"Traceback" not in result.stderr


def test_an_index_is_replaced_only_with_overwrite_and_only_if_it_is_one(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.md").write_text("Хархорум хот.")
    assert mglkit("index", "notes", "--output", "idx", cwd=tmp_path).returncode == 0
    again = mglkit("index", "notes", "--output", "idx", cwd=tmp_path)
    assert again.returncode == 2 and b"already holds an mglkit index" in again.stderr
    (tmp_path / "notes" / "b.md").write_text("Эрдэнэ Зуу.")
    assert mglkit("index", "notes", "--output", "idx", "--overwrite", cwd=tmp_path).returncode == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx", "notes"]
