"""Documents to retrieve from, Mongolian-aware tokenisation, and cached indexes.

An index is built by a retriever plugin (``register_retrievers``; the built-in one is BM25) and
saved in a folder with the documents it holds, so answers can cite them.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from .errors import MglkitError
from .resources import bundled

_WORD = re.compile(r"\w+")
# Common case and plural endings, longest first; a stem keeps at least 3 letters. A bare -н or -г
# is left alone: too many stems end in it (хаан, зорилго).
_SUFFIXES = sorted(
    """ын ийн ны ний ий ыг ийг д т аас ээс оос өөс аар ээр оор өөр тай тэй той руу рүү луу лүү
    ууд үүд нууд нүүд чууд чүүд ын ийнх ынх гаас гээс гоос гөөс ад эд од өд""".split(),
    key=len,
    reverse=True,
)


def tokenize(text: str, stem: bool = True) -> list[str]:
    """Lower-cased Cyrillic words without punctuation; ``stem`` strips one common case ending."""
    words = _WORD.findall(text.lower())
    if not stem:
        return words
    out = []
    for word in words:
        for suffix in _SUFFIXES:
            if word.endswith(suffix) and len(word) - len(suffix) >= 3:
                word = word[: -len(suffix)]
                break
        out.append(word)
    return out


@dataclass
class Document:
    id: str
    text: str
    title: str = ""
    source: str = ""


def read_documents(paths: list[str | Path]) -> list[Document]:
    """Text and Markdown files (a paragraph is a document) and JSONL ({"id"?, "title"?, "text"})."""
    docs: list[Document] = []
    for path in map(Path, paths):
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            if not file.is_file():
                raise MglkitError(f"{file}: no such file", hint="give text, Markdown or JSONL files, or folders")
            if file.suffix == ".jsonl":
                docs += _jsonl_documents(file)
            elif file.suffix in (".txt", ".md", ".markdown"):
                paragraphs = [p.strip() for p in re.split(r"\n\s*\n", file.read_text(encoding="utf-8")) if p.strip()]
                docs += [Document(f"{file.stem}-{i + 1}", p, source=str(file)) for i, p in enumerate(paragraphs)]
    if not docs:
        raise MglkitError("no documents found", hint="give .txt, .md or .jsonl files")
    return docs


def _jsonl_documents(file: Path) -> list[Document]:
    docs = []
    for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise MglkitError(f"{file}, line {number}: not valid JSON ({exc.msg})") from None
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise MglkitError(f"{file}, line {number}, field 'text': missing or not a string")
        docs.append(Document(str(record.get("id", f"{file.stem}-{number}")), record["text"],
                             str(record.get("title", "")), str(file)))  # fmt: skip
    return docs


def bundled_corpus() -> list[Path]:
    return sorted(bundled("data/corpus").glob("*.jsonl"))


def get_retriever(name: str = "bm25", pm=None):
    from .plugins import get_plugin_manager

    retrievers = (pm or get_plugin_manager()).collect("register_retrievers")
    if name not in retrievers:
        raise MglkitError(f"no retriever '{name}'", hint="pip install 'mglkit[rag]' for the built-in BM25")
    return retrievers[name].obj


def build_index(paths: list[str | Path], output: str | Path, retriever: str = "bm25", pm=None) -> Path:
    """Index documents into a folder (written whole, then renamed into place)."""
    docs = read_documents(paths)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    try:
        index = get_retriever(retriever, pm).build(docs)
        index.save(tmp)
        (tmp / "documents.jsonl").write_text(
            "".join(json.dumps(asdict(d), ensure_ascii=False) + "\n" for d in docs), encoding="utf-8"
        )
        (tmp / "mglkit_index.json").write_text(json.dumps({"retriever": retriever, "documents": len(docs)}))
        if output.exists():
            shutil.rmtree(output)
        tmp.rename(output)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return output


class Index:
    """A loaded index: ``search(question, k)`` -> [(Document, score)], best first."""

    def __init__(self, folder: str | Path, pm=None):
        folder = Path(folder)
        meta = folder / "mglkit_index.json"
        if not meta.is_file():
            raise MglkitError(f"{folder}: not an mglkit index", hint="build one with: mglkit index FILES --output DIR")
        self.folder = folder
        self.retriever = json.loads(meta.read_text())["retriever"]
        lines = (folder / "documents.jsonl").read_text(encoding="utf-8").splitlines()
        self.documents = [Document(**json.loads(line)) for line in lines]
        self.engine = get_retriever(self.retriever, pm).load(folder)

    def search(self, question: str, k: int = 4) -> list[tuple[Document, float]]:
        return [(self.documents[i], score) for i, score in self.engine.search(question, k)]


def default_index(pm=None) -> Index:
    """The bundled corpus, indexed once and cached (MGLKIT_CACHE) until the corpus changes."""
    from .resources import cache_root

    files = bundled_corpus()
    if not files:
        raise MglkitError("the bundled corpus (data/corpus/) is missing", hint="give --index DIR")
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in files)).hexdigest()[:12]
    folder = cache_root() / f"index-bm25-{digest}"
    if not (folder / "mglkit_index.json").is_file():
        build_index(files, folder, pm=pm)
    return Index(folder, pm)
