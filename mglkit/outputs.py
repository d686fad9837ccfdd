"""Everything mglkit writes goes through here, so that nothing is lost and nothing of the user's is
ever deleted or replaced.

- Files (``write_file``) appear whole or not at all: written beside the target, then renamed over it.
  A target that exists and is not a regular file (a device, a FIFO, a socket) is written into, never
  replaced; a symbolic link is followed; new files get ``0o666 & ~umask``, a replaced file keeps its mode.
- Folders (``OutputFolder``) are mglkit's only if they carry its marker, ``.mglkit.json`` (or, for
  folders older than the marker, the file their kind always had). ``overwrite`` replaces only mglkit's
  own folder of the same kind: the new one is built beside it, in ``.NAME.new-PID/``, and swapped in
  when complete. While a process writes a folder it holds an exclusive lock on ``.NAME.lock`` beside it.
- Caches (``cache_entry``) are built beside their place and renamed into it; a second process waits.
- ``refuse_input`` compares files, not the names the user typed.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import signal
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from .errors import ConfigError, MglkitError
from .locks import BusyError, acquire_lock, alive, exchange, holder, release_lock, umask

MARKER = ".mglkit.json"
# what identified each kind of folder before the marker existed
LEGACY_FILES = {"run": "training_args.json", "index": "mglkit_index.json"}
KILL_ENV = "MGLKIT_TEST_KILL_AT"  # tests only: SIGKILL this process at the named phase


def fault_point(phase: str) -> None:
    """Where the fault-injection tests kill mglkit (``MGLKIT_TEST_KILL_AT=phase``); nothing otherwise."""
    if os.environ.get(KILL_ENV) == phase:
        os.kill(os.getpid(), signal.SIGKILL)


# Files ------------------------------------------------------------------------------------------


@contextlib.contextmanager
def write_file(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Write ``path`` whole or not at all (see the module's rules)."""
    target = Path(path)
    try:
        info = target.stat()  # follows links: /dev/null, a FIFO, /proc/self/fd/1 are what they point to
    except FileNotFoundError:
        info = None
    if info is not None and not stat.S_ISREG(info.st_mode):
        if stat.S_ISDIR(info.st_mode):
            raise ConfigError(f"{target} is a folder", hint="give a file path")
        with open(target, mode) as handle:  # a device or a pipe: written into, never replaced
            yield handle
        return
    real = Path(os.path.realpath(target))
    try:
        real.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot write {target}: {exc.strerror}", hint="choose a writable place") from None
    _clear_stale_temporaries(real)
    tmp = real.parent / f".{real.name}.{os.getpid()}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError as exc:
        raise ConfigError(f"cannot write {target}: {exc.strerror}", hint="choose a writable place") from None
    try:
        os.fchmod(fd, stat.S_IMODE(info.st_mode) if info is not None else 0o666 & ~umask())
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        fault_point("file-before-rename")
        os.replace(tmp, real)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _clear_stale_temporaries(target: Path) -> None:
    """The temporary files of writers of ``target`` that died (their process id names them)."""
    for tmp in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):
        pid = tmp.name[len(target.name) + 2 : -len(".tmp")]
        if pid.isdigit() and not alive(int(pid)):
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


def write_json(path: str | os.PathLike, data) -> None:
    with write_file(path, "w") as out:
        json.dump(data, out, indent=2, ensure_ascii=False)
        out.write("\n")


def write_text(path: str | os.PathLike, text: str) -> None:
    with write_file(path, "w") as out:
        out.write(text)


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two names are one file (links, hard links and path variants included); ``-`` is stdin."""
    try:
        first = os.fstat(0) if str(a) == "-" else os.stat(a)
        second = os.fstat(0) if str(b) == "-" else os.stat(b)
    except OSError:
        return False
    return (first.st_dev, first.st_ino) == (second.st_dev, second.st_ino)


def refuse_input(target: str | os.PathLike, inputs: Iterable[str | os.PathLike], option: str) -> None:
    """A ConfigError when writing ``target`` would overwrite one of ``inputs``."""
    for source in inputs:
        if same_file(target, source) and stat.S_ISREG(os.stat(target).st_mode):
            name = "standard input" if str(source) == "-" else str(source)
            raise ConfigError(f"{option} {target} is the input {name}", hint="write the output to another path")


# Folders ----------------------------------------------------------------------------------------


def read_marker(folder: Path) -> dict | None:
    """The marker of an mglkit folder; for older folders, one made from their kind's file; else None."""
    try:
        marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
        return marker if isinstance(marker, dict) and isinstance(marker.get("kind"), str) else None
    except (OSError, ValueError):
        pass
    for kind, name in LEGACY_FILES.items():
        if (folder / name).is_file():
            return {"kind": kind, "status": "finished", "legacy": True}
    return None


def _write_marker(folder: Path, kind: str, status: str, started: str) -> None:
    from . import __version__

    finished = _now() if status != "running" else None
    write_json(
        folder / MARKER,
        {
            "kind": kind,
            "status": status,
            "pid": os.getpid(),
            "started": started,
            "finished": finished,
            "mglkit_version": __version__,
        },
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def lock_path(folder: Path) -> Path:
    folder = Path(os.path.abspath(folder))
    return folder.parent / f".{folder.name}.lock"


def _protected() -> list[Path]:
    places = [Path.cwd(), Path.home(), Path("/")]
    return [Path(os.path.realpath(p)) for p in places]


def _related(a: Path, b: Path) -> bool:
    """a is b, inside it, or holds it."""
    return a == b or a in b.parents or b in a.parents


class OutputFolder:
    """An output folder of one ``kind`` (run, index, export...), written under a lock::

    out = OutputFolder(path, "run", overwrite=True, inputs=[dataset])
    out.check()            # every rule, before anything on disk changes
    with out as build:     # the folder to write into (in place, or the sibling that replaces it)
        ...
    """

    def __init__(
        self,
        path: str | os.PathLike,
        kind: str,
        *,
        overwrite: bool = False,
        resume: bool = False,
        inputs: Iterable[str | os.PathLike] = (),
        option: str = "--output",
    ):
        self.path = Path(os.path.abspath(path))
        self.kind = kind
        self.overwrite = overwrite
        self.resume = resume
        self.inputs = [Path(os.path.realpath(p)) for p in inputs if str(p) != "-"]
        self.option = option
        self.mode = "new"  # new, resume (in place), replace (build beside, then swap)
        self.build: Path = self.path
        self._lock: int | None = None
        self._started = _now()

    # the rules --------------------------------------------------------------------------------

    def check(self) -> None:
        """Decide how the folder will be written, or raise a ConfigError naming the folder."""
        path, name = self.path, f"{self.option} {self.path}"
        if path.is_symlink() and (self.overwrite or path.exists()):
            raise ConfigError(f"{name} is a symbolic link", hint="give the folder it points to, or a new folder")
        if path.exists() and not path.is_dir():
            raise ConfigError(f"{name} is a file, not a folder", hint="give a folder")
        real = Path(os.path.realpath(path))
        for source in self.inputs:
            if _related(real, source):
                raise ConfigError(f"{name} is, holds or is inside the input {source}", hint="write elsewhere")
        if not path.is_dir() or not any(path.iterdir()):
            self.mode, self.build = "new", path
            return
        marker = read_marker(path)
        maker = holder(lock_path(path)) if marker is None and self._lock is None else None
        if maker is not None:  # another mglkit process is making it: its marker may not be written yet
            hint = "wait for it to finish, or choose another output"
            raise BusyError(f"{path} is in use by process {maker}", hint=hint)
        if marker is None:
            shown = ", ".join(sorted(p.name for p in path.iterdir())[:5])
            raise ConfigError(
                f"{name} is not empty and is not an mglkit {self.kind} (it holds {shown}...)",
                hint="mglkit replaces only folders it made; choose a new folder",
            )
        if marker["kind"] != self.kind:
            raise ConfigError(f"{name} is an mglkit {marker['kind']}, not a {self.kind}", hint="choose another folder")
        if self.resume:
            self.mode, self.build = "resume", self._stale_build() or path
        elif self.overwrite:
            if any(real == place or real in place.parents for place in _protected()):
                raise ConfigError(
                    f"{name} is or holds the current folder, your home or /",
                    hint="replace it from another folder, or remove it yourself",
                )
            self.mode, self.build = "replace", path.parent / f".{path.name}.new-{os.getpid()}"
        else:
            raise ConfigError(
                f"{name} already holds an mglkit {self.kind}",
                hint="add --overwrite to replace it (it stays until the new one is complete)"
                + (", or --resume to continue it" if self.kind == "run" else ""),
            )

    def _stale_build(self) -> Path | None:
        """The sibling of an interrupted replacement, which --resume continues."""
        for sibling in sorted(self.path.parent.glob(f".{self.path.name}.new-*")):
            marker = read_marker(sibling)
            if marker is not None and marker["kind"] == self.kind:
                return sibling
        return None

    # writing ----------------------------------------------------------------------------------

    def __enter__(self) -> Path:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._lock = acquire_lock(lock_path(self.path), wait=False, what=f"{self.path}")
        except OSError as exc:
            raise ConfigError(
                f"{self.option} {self.path}: cannot write there: {exc.strerror}", hint="choose a writable place"
            ) from None
        try:
            self.check()  # again, under the lock: another process may have written meanwhile
            self._clear_leftovers()
            fault_point("folder-before-build")
            self.build.mkdir(parents=True, exist_ok=True)
            _write_marker(self.build, self.kind, "running", self._started)
        except OSError as exc:
            self._release()
            raise ConfigError(
                f"{self.option} {self.path}: cannot write there: {exc.strerror}", hint="choose a writable place"
            ) from None
        except BaseException:
            self._release()
            raise
        return self.build

    def __exit__(self, kind, error, traceback) -> bool:
        try:
            if error is None:
                _write_marker(self.build, self.kind, "finished", self._started)
                if self.build != self.path:
                    self._swap()
            elif self.build.is_dir():
                _write_marker(self.build, self.kind, "stopped", self._started)
        finally:
            self._release()
        return False

    def _swap(self) -> None:
        fault_point("folder-before-swap")
        if exchange(self.build, self.path):  # one atomic step: the target is old or new, never neither
            fault_point("folder-after-swap")
            remove_owned(self.build, self.kind)
            return
        old = self.path.parent / f".{self.path.name}.old-{os.getpid()}"
        os.rename(self.path, old)
        fault_point("folder-between-renames")
        os.rename(self.build, self.path)
        remove_owned(old, self.kind)

    def _clear_leftovers(self) -> None:
        """What a killed writer of this target left: its sibling (unless resumed) and temporary files."""
        parent, name = self.path.parent, self.path.name
        for old in parent.glob(f".{name}.old-*"):  # a swap killed between its two renames
            if not self.path.exists():
                os.rename(old, self.path)
            elif read_marker(old) is not None:
                remove_owned(old, self.kind)
        for sibling in parent.glob(f".{name}.new-*"):
            if sibling != self.build and read_marker(sibling) is not None:
                remove_owned(sibling, self.kind)

    def _release(self) -> None:
        if self._lock is not None:
            release_lock(self._lock, lock_path(self.path))
            self._lock = None


def remove_owned(folder: Path, kind: str) -> None:
    """Delete a folder mglkit made (its marker says so); anything else is left alone."""
    marker = read_marker(folder)
    if marker is None or marker["kind"] != kind:
        raise MglkitError(f"refusing to delete {folder}: it is not an mglkit {kind}")
    shutil.rmtree(folder)


# Locks and caches -------------------------------------------------------------------------------


@contextlib.contextmanager
def cache_entry(
    folder: Path, ready: Callable[[Path], bool], what: str, on_wait: Callable[[str], None] | None = None
) -> Iterator[Path | None]:
    """Build a cache entry once: yields None when ``ready(folder)`` (reuse it), else a temporary folder
    to build in, renamed into place when the block ends. Another builder of it waits for this one."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    lock = acquire_lock(lock_path(folder), wait=True, what=what, on_wait=on_wait)
    try:
        if ready(folder):
            yield None
            return
        if folder.exists():  # a damaged entry: mglkit's own cache, rebuilt
            shutil.rmtree(folder)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
        try:
            yield tmp
            try:
                os.rename(tmp, folder)
            except OSError:  # a writer that takes no lock (an older mglkit) finished it first
                if not ready(folder):
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    finally:
        release_lock(lock, lock_path(folder))
