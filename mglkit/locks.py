"""The operating-system pieces of safe writing: exclusive locks that name their holder, whether a
process is alive, and swapping two folders in one atomic step."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from .errors import StoppedError


class BusyError(StoppedError):
    """Another process is writing the same output."""


def umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def acquire_lock(path: Path, *, wait: bool, what: str, on_wait: Callable[[str], None] | None = None) -> int:
    """An exclusive lock on ``path`` (created if need be), holding this process's id. Without ``wait``,
    a lock held elsewhere is a BusyError naming the process; with it, ``on_wait`` hears once who holds it."""
    told = False
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666 & ~umask())
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            if not wait:
                os.close(fd)
                raise BusyError(
                    f"{what} is in use by process {holder}", hint="wait for it to finish, or choose another output"
                ) from None
            if on_wait is not None and not told:
                on_wait(f"waiting for process {holder}, which is writing {what}")
                told = True
            fcntl.flock(fd, fcntl.LOCK_EX)
        try:  # the holder may have removed the file as it let go: then lock the new one
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())
            return fd
        os.close(fd)
        time.sleep(0.01)


def _holder(fd: int) -> str:
    # A holder writes its id just after taking the lock: give it a moment rather than answer "?"
    for _ in range(50):
        try:
            pid = os.pread(fd, 32, 0).decode().strip()
        except OSError:
            return "?"
        if pid:
            return pid
        time.sleep(0.01)
    return "?"


def held(path: Path) -> bool:
    """Whether a live process holds the lock at ``path``."""
    return holder(path) is not None


def holder(path: Path) -> int | None:
    """The live process holding the lock at ``path``, if any (read from the process id it wrote;
    probing with flock could make a writer trying at that instant fail)."""
    try:
        pid = path.read_text().strip()
    except OSError:
        return None
    return int(pid) if pid.isdigit() and alive(int(pid)) else None


def release_lock(fd: int, path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    os.close(fd)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2); False where the system cannot."""
    if sys.platform != "linux":
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(b))
