"""Suite sources for published Mongolian benchmarks: ``belebele:PATH``, ``sib200:PATH``, ``flores:PATH``.

Each is a SuiteSource (``prefix``, ``load(path) -> Suite``) registered through ``register_suites``;
``mglkit eval`` expands ``~`` and environment variables in PATH. Register another with another
prefix to score SIB-200 with other labels: ``register(sib200(labels={...}, prefix="sib200-en:"))``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from mglkit import Suite, hookimpl

from .readers import read_belebele, read_flores, read_sib200


@dataclass(frozen=True)
class FormatSource:
    """A published format read as a suite by ``read``."""

    name: str
    prefix: str
    description: str
    read: Callable[[Path], Suite]

    def load(self, path: Path) -> Suite:
        return self.read(path)


def belebele(prefix: str = "belebele:") -> FormatSource:
    description = "Belebele reading comprehension (its JSONL or the Hub's Parquet), scored by the facts evaluator"
    return FormatSource("belebele", prefix, description, read_belebele)


def sib200(labels: Mapping[str, str] | None = None, prefix: str = "sib200:") -> FormatSource:
    """SIB-200 with its topics' labels in Mongolian, or the ``labels`` given (category -> label)."""
    description = "SIB-200 topic classification (its TSV), each topic's label scored by the facts evaluator"
    return FormatSource("sib200", prefix, description, lambda path: read_sib200(path, labels))


def flores(prefix: str = "flores:") -> FormatSource:
    description = "FLORES-200 sentences (.dev/.devtest, or the Hub's Parquet) as fluent text for the fluency evaluator"
    return FormatSource("flores", prefix, description, read_flores)


@hookimpl
def register_suites(register):
    for source in (belebele(), sib200(), flores()):
        register(source)
