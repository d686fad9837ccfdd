"""BM25 through bm25s: deterministic, fast, and saved as plain numpy/JSON files."""

from __future__ import annotations

from mglkit import ConfigError
from mglkit.mongolian import tokenize


def _bm25s():
    try:
        import bm25s
    except ImportError:
        raise ConfigError("retrieval needs bm25s", hint="pip install 'mglkit[rag]'") from None
    return bm25s


class BM25Index:
    def __init__(self, engine):
        self.engine = engine
        self.vocab = engine.vocab_dict

    @classmethod
    def build(cls, documents) -> BM25Index:
        engine = _bm25s().BM25()
        # titles count as text: they name the topic a question asks about
        engine.index([tokenize(f"{d.title} {d.text}") for d in documents], show_progress=False)
        return cls(engine)

    @classmethod
    def load(cls, folder) -> BM25Index:
        return cls(_bm25s().BM25.load(str(folder)))

    def save(self, folder) -> None:
        self.engine.save(str(folder))

    def search(self, question: str, k: int) -> list[tuple[int, float]]:
        words = [w for w in tokenize(question) if w in self.vocab]
        if not words:
            return []
        k = min(k, self.engine.scores["num_docs"])
        ids, scores = self.engine.retrieve([words], k=k, show_progress=False)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if s > 0]
