"""mglkit.outputs: nothing is lost, nothing of the user's is deleted or replaced, one writer at a time."""

import json
import os
import stat
import sys
import threading
import time

import pytest

from mglkit.errors import ConfigError, StoppedError
from mglkit.outputs import MARKER, OutputFolder, cache_entry, lock_path, read_marker, write_file, write_text

ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="making a character device needs root (CI runs as root)")


def test_a_file_is_replaced_whole_keeping_its_mode(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    target.chmod(0o640)
    with pytest.raises(RuntimeError), write_file(target, "w") as out:
        out.write("half")
        raise RuntimeError("killed midway")
    assert target.read_text() == "old" and list(tmp_path.iterdir()) == [target]  # nothing half-written
    write_text(target, "new")
    assert target.read_text() == "new" and stat.S_IMODE(target.stat().st_mode) == 0o640


def test_new_files_follow_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        write_text(tmp_path / "new.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new.txt").stat().st_mode) == 0o640


def test_a_symbolic_link_is_followed_not_replaced(tmp_path):
    real, link = tmp_path / "real.txt", tmp_path / "link.txt"
    real.write_text("old")
    link.symlink_to(real)
    write_text(link, "new")
    assert link.is_symlink() and real.read_text() == "new"


def test_a_fifo_is_written_into_never_replaced(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()))
    reader.start()
    write_text(fifo, "through the pipe")
    reader.join(timeout=10)
    assert received == ["through the pipe"] and stat.S_ISFIFO(fifo.stat().st_mode)


@ROOT_ONLY
def test_a_character_device_is_written_into_never_replaced(tmp_path):
    null = tmp_path / "null"
    os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    write_text(null, "discarded")
    assert stat.S_ISCHR(null.stat().st_mode)


def test_a_dead_writers_temporary_file_is_cleared_by_the_next_write(tmp_path):
    target = tmp_path / "clean.jsonl"
    dead = tmp_path / ".clean.jsonl.999999999.tmp"  # no such process
    alive = tmp_path / f".clean.jsonl.{os.getppid()}.tmp"  # a live process may still be writing it
    dead.write_text("torn")
    alive.write_text("busy")
    write_text(target, "{}\n")
    assert not dead.exists() and alive.exists()


def folder(path, **kwargs):
    out = OutputFolder(path, "run", **kwargs)
    out.check()
    return out


def test_a_new_folder_is_written_in_place_and_marked(tmp_path):
    target = tmp_path / "run"
    out = folder(target)
    with out as build:
        assert build == target and read_marker(target)["status"] == "running"
        assert lock_path(target).exists()
        (build / "training_args.json").write_text("{}")
    marker = json.loads((target / MARKER).read_text())
    assert marker["kind"] == "run" and marker["status"] == "finished" and marker["pid"] == os.getpid()
    assert not lock_path(target).exists()  # released and removed


def test_only_mglkits_own_folder_of_the_same_kind_is_replaced(tmp_path):
    mine = tmp_path / "mine"
    (mine / "thesis.tex").parent.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    with pytest.raises(ConfigError, match="is not empty and is not an mglkit run") as error:
        folder(mine, overwrite=True)
    assert "thesis.tex" in str(error.value)
    index = tmp_path / "index"
    index.mkdir()
    (index / MARKER).write_text(json.dumps({"kind": "index", "status": "finished"}))
    with pytest.raises(ConfigError, match="is an mglkit index, not a run"):
        folder(index, overwrite=True)
    assert (mine / "thesis.tex").read_text() == "years of work" and (index / MARKER).exists()


def test_overwrite_builds_beside_and_swaps_when_complete(tmp_path):
    target = tmp_path / "run"
    with folder(target) as build:
        (build / "weights").write_text("old")
    out = folder(target, overwrite=True)
    with pytest.raises(RuntimeError), out as build:
        assert build.name == f".run.new-{os.getpid()}" and (target / "weights").read_text() == "old"
        (build / "weights").write_text("half")
        raise RuntimeError("stopped")
    assert (target / "weights").read_text() == "old"  # the old run stays until a new one is complete
    with folder(target, overwrite=True) as build:
        (build / "weights").write_text("new")
    assert (target / "weights").read_text() == "new" and read_marker(target)["status"] == "finished"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # the stopped sibling and the old run are gone


def test_resume_continues_an_interrupted_replacement(tmp_path):
    target = tmp_path / "run"
    with folder(target) as build:
        (build / "weights").write_text("old")
    with pytest.raises(RuntimeError), folder(target, overwrite=True) as build:
        (build / "progress").write_text("step 10")
        raise RuntimeError("stopped")
    out = folder(target, resume=True)
    assert out.build.name.startswith(".run.new-") and (out.build / "progress").read_text() == "step 10"
    with out:
        pass
    assert (target / "progress").read_text() == "step 10"


def test_refused_places(tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    (data / "pairs.jsonl").write_text("{}")
    for path, source in [(data, data / "pairs.jsonl"), (tmp_path, data / "pairs.jsonl"), (data / "run", data)]:
        with pytest.raises(ConfigError, match="is, holds or is inside the input"):
            folder(path, overwrite=True, inputs=[source])
    monkeypatch.chdir(tmp_path)
    (tmp_path / MARKER).write_text(json.dumps({"kind": "run", "status": "finished"}))
    with pytest.raises(ConfigError, match="is or holds the current folder, your home or /"):
        folder(".", overwrite=True)
    link = tmp_path / "link"
    link.symlink_to(data)
    with pytest.raises(ConfigError, match="is a symbolic link"):
        folder(link, overwrite=True)
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        folder(data / "pairs.jsonl")
    assert (data / "pairs.jsonl").read_text() == "{}"


def test_a_second_writer_is_told_who_holds_the_folder(tmp_path):
    target = tmp_path / "run"
    with folder(target):
        with pytest.raises(StoppedError, match=f"is in use by process {os.getpid()}"):
            with OutputFolder(target, "run", overwrite=True):
                pass


def test_a_cache_entry_is_built_once_and_a_second_builder_waits(tmp_path):
    entry, built, heard = tmp_path / "model", [], []

    def build():
        with cache_entry(entry, lambda f: (f / "ready").is_file(), "the model", heard.append) as tmp:
            if tmp is not None:
                time.sleep(0.3)
                (tmp / "ready").write_text("x")
                built.append(threading.get_ident())

    threads = [threading.Thread(target=build) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(built) == 1 and (entry / "ready").is_file()
    assert heard and all(f"waiting for process {os.getpid()}" in h for h in heard)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


@pytest.mark.skipif(sys.platform != "linux", reason="renameat2 is Linux's")
def test_the_swap_is_one_atomic_exchange(tmp_path):
    from mglkit.locks import exchange as _exchange

    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "x").write_text("a")
    (b / "x").write_text("b")
    assert _exchange(a, b)
    assert (a / "x").read_text() == "b" and (b / "x").read_text() == "a"
