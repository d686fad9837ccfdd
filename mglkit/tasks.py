"""Progress of long tasks, for plugins and the core alike: ``with mglkit.progress("building", total=300)
as task: task.advance()``. The command line shows it (a bar with ETA on a terminal, a line per phase
otherwise); from Python, nothing is shown unless a reporter is installed. Plugins never import rich."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Protocol

log = logging.getLogger("mglkit")


class Task(Protocol):
    def advance(self, amount: float = 1) -> None:
        """Count ``amount`` more units done."""

    def update(self, completed: float | None = None, total: float | None = None, info: str | None = None) -> None:
        """Set what is done, the total, or the short text shown beside the bar."""


class Reporter(Protocol):
    def start(self, description: str, total: float | None) -> Task: ...

    def finish(self, task: Task) -> None: ...

    def note(self, message: str) -> None: ...


class _Silent:
    """The reporter when nobody installed one: notes go to the ``mglkit`` logger, bars nowhere."""

    def start(self, description, total):
        log.info("%s", description)
        return self

    def finish(self, task):
        pass

    def note(self, message):
        log.info("%s", message)

    def advance(self, amount=1):
        pass

    def update(self, completed=None, total=None, info=None):
        pass


_reporter: Reporter = _Silent()


@contextlib.contextmanager
def progress(description: str, total: float | None = None, show: bool = True) -> Iterator[Task]:
    """A task shown while the block runs (``total=None``: a spinner, no ETA). ``show=False`` gives a
    task that shows nothing (the other processes of a distributed run)."""
    reporter = _reporter if show else _Silent()
    task = reporter.start(description, total)
    try:
        yield task
    finally:
        reporter.finish(task)


def note(message: str) -> None:
    """One line for the user (above any bar)."""
    _reporter.note(message)


@contextlib.contextmanager
def reporting(reporter: Reporter) -> Iterator[None]:
    """Show progress through ``reporter`` while the block runs (the command line installs one)."""
    global _reporter
    previous, _reporter = _reporter, reporter
    try:
        yield
    finally:
        _reporter = previous
