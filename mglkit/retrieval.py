"""Documents to retrieve from, and indexes over them.

An index is built by a retriever plugin (``register_retrievers``; the built-in one is BM25) and saved
in a folder with the documents it holds, so answers can cite them; its manifest records how many
documents it holds and their hash, checked whenever the index is loaded.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict
from pathlib import Path

from .errors import UnusableInputError
from .mongolian import tokenize  # noqa: F401  (the words retrievers index; re-exported for plugins)
from .outputs import OutputFolder, cache_entry
from .pairs import read_jsonl
from .resources import bundled
from .types import Document

MANIFEST = "mglkit_index.json"
TEXT_SUFFIXES = (".txt", ".md", ".markdown")


def read_documents(paths: list[str | Path]) -> list[Document]:
    """Text and Markdown files (a paragraph is a document) and JSONL ({"id"?, "title"?, "text"})."""
    docs: list[Document] = []
    for path in map(Path, paths):
        if not path.exists():
            raise UnusableInputError(f"{path}: no such file or folder", hint="give text, Markdown or JSONL files")
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            if file.suffix == ".jsonl":
                docs += _jsonl_documents(file)
            elif file.suffix in TEXT_SUFFIXES:
                docs += _text_documents(file)
    if not docs:
        raise UnusableInputError("no documents with words found", hint="give .txt, .md or .jsonl files with text")
    return docs


def _text_documents(file: Path) -> list[Document]:
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UnusableInputError(f"{file}: not UTF-8 text (byte {exc.start})", hint="re-save it as UTF-8") from None
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if tokenize(p)]
    return [Document(f"{file.stem}-{i + 1}", p, source=str(file)) for i, p in enumerate(paragraphs)]


def _jsonl_documents(file: Path) -> list[Document]:
    docs = []
    for number, record in read_jsonl(file):
        if not isinstance(record.get("text"), str):
            raise UnusableInputError(f"{file}, line {number}, field 'text': missing or not a string")
        if tokenize(record["text"]):
            docs.append(
                Document(
                    str(record.get("id", f"{file.stem}-{number}")),
                    record["text"],
                    str(record.get("title", "")),
                    str(file),
                )
            )
    return docs


def bundled_corpus() -> list[Path]:
    return sorted(bundled("data/corpus").glob("*.jsonl"))


def _documents_hash(lines: bytes) -> str:
    return hashlib.sha256(lines).hexdigest()


def write_index(docs: list[Document], folder: Path, retriever: str, pm=None) -> None:
    """The index, its documents and its manifest, into a folder (being built, or a cache entry)."""
    from .plugins import get_plugin_manager

    index = (pm or get_plugin_manager()).get("retriever", retriever).build(docs)
    index.save(folder)
    lines = "".join(json.dumps(asdict(d), ensure_ascii=False) + "\n" for d in docs).encode()
    (folder / "documents.jsonl").write_bytes(lines)
    manifest = {"retriever": retriever, "documents": len(docs), "documents_sha256": _documents_hash(lines)}
    (folder / MANIFEST).write_text(json.dumps(manifest))


def build_index(
    paths: list[str | Path], output: str | Path, retriever: str = "bm25", overwrite: bool = False, pm=None
) -> Path:
    """`mglkit index`: every rule of an mglkit output folder applies (see mglkit.outputs)."""
    from .plugins import get_plugin_manager

    pm = pm or get_plugin_manager()
    pm.get("retriever", retriever)
    folder = OutputFolder(output, "index", overwrite=overwrite, inputs=paths)
    folder.check()
    docs = read_documents(paths)
    with folder as build:
        write_index(docs, build, retriever, pm)
    return folder.path


class Index:
    """A loaded index: ``search(question, k)`` -> [(Document, score)], best first."""

    def __init__(self, folder: str | Path, pm=None):
        from .plugins import get_plugin_manager

        self.folder = Path(folder)
        manifest = self._manifest()
        lines = (self.folder / "documents.jsonl").read_bytes() if (self.folder / "documents.jsonl").is_file() else b""
        if _documents_hash(lines) != manifest.get("documents_sha256") or lines.count(b"\n") != manifest.get(
            "documents"
        ):
            raise UnusableInputError(
                f"{self.folder}: its documents do not match its manifest (changed or damaged)",
                hint="rebuild it with: mglkit index SOURCES --output DIR --overwrite",
            )
        self.documents = [Document(**json.loads(line)) for line in lines.decode().splitlines()]
        self.engine = (pm or get_plugin_manager()).get("retriever", manifest["retriever"]).load(self.folder)

    def _manifest(self) -> dict:
        path = self.folder / MANIFEST
        try:
            manifest = json.loads(path.read_text())
        except (OSError, ValueError):
            raise UnusableInputError(
                f"{self.folder}: not an mglkit index", hint="build one with: mglkit index FILES --output DIR"
            ) from None
        if not isinstance(manifest, dict) or not isinstance(manifest.get("retriever"), str):
            raise UnusableInputError(f"{path}: malformed", hint="rebuild it with mglkit index --overwrite")
        return manifest

    def search(self, question: str, k: int = 4) -> list[tuple[Document, float]]:
        return [(self.documents[i], score) for i, score in self.engine.search(question, k)]


def cached_index(paths: list[Path], name: str, pm=None) -> Index:
    """An index of these files, built once into the cache (MGLKIT_CACHE) and rebuilt when they change."""
    from . import tasks
    from .resources import cache_root

    digest = hashlib.sha256(b"".join(p.read_bytes() for p in paths)).hexdigest()[:12]
    folder = cache_root() / f"index-{name}-bm25-{digest}"
    with cache_entry(folder, lambda f: (f / MANIFEST).is_file(), f"the index of {name}", tasks.note) as build:
        if build is not None:
            with tasks.progress(f"indexing {name}"):
                write_index(read_documents(paths), build, "bm25", pm)
    return Index(folder, pm)


def default_index(pm=None) -> Index:
    """The bundled corpus, indexed once and cached until the corpus changes."""
    files = bundled_corpus()
    if not files:
        raise UnusableInputError("the bundled corpus (data/corpus/) is missing", hint="give --index DIR")
    return cached_index(files, "corpus", pm)


def command(pm, name: str):
    """``mglkit index PATH... --output DIR``"""
    import click

    from .cli import exit_help

    @click.command(name, epilog=exit_help(None))
    @click.argument("paths", nargs=-1, required=True)
    @click.option("--output", "-o", required=True, type=click.Path(file_okay=False), help="Index folder to write.")
    @click.option("--retriever", default="bm25", show_default=True, help="A registered retriever.")
    @click.option("--overwrite", is_flag=True, help="Replace an mglkit index in --output (never anything else).")
    def index(paths, output, retriever, overwrite):
        """Index your own documents (text, Markdown, JSONL) for `mglkit ask --index`."""
        folder = build_index(list(paths), output, retriever, overwrite, pm)
        click.echo(f"indexed {len(Index(folder, pm).documents)} documents into {folder}")
        return 0

    return index
