"""Suite sources for published Mongolian benchmarks: ``belebele:PATH``, ``sib200:PATH``, ``flores:PATH``.

Each is a SuiteSource (``prefix``, ``load(path) -> Suite``) registered through ``register_suites``;
``mglkit eval`` expands ``~`` and environment variables in PATH. Register another instance with
another prefix to score SIB-200 with other labels: ``Sib200(labels={...}, prefix="sib200-en:")``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from mglkit import Suite, hookimpl

from .readers import SIB200_LABELS, read_belebele, read_flores, read_sib200


class Belebele:
    name = "belebele"
    description = "Belebele reading comprehension (its JSONL or the Hub's Parquet), scored by the facts evaluator"

    def __init__(self, prefix: str = "belebele:"):
        self.prefix = prefix

    def load(self, path: Path) -> Suite:
        return read_belebele(path)


class Sib200:
    name = "sib200"
    description = "SIB-200 topic classification (its TSV), each topic's label scored by the facts evaluator"

    def __init__(self, labels: Mapping[str, str] | None = None, prefix: str = "sib200:"):
        self.labels = dict(labels or SIB200_LABELS)
        self.prefix = prefix

    def load(self, path: Path) -> Suite:
        return read_sib200(path, self.labels)


class Flores:
    name = "flores"
    description = "FLORES-200 sentences (.dev/.devtest, or the Hub's Parquet) as fluent text for the fluency evaluator"

    def __init__(self, prefix: str = "flores:"):
        self.prefix = prefix

    def load(self, path: Path) -> Suite:
        return read_flores(path)


@hookimpl
def register_suites(register):
    for source in (Belebele(), Sib200(), Flores()):
        register(source)
