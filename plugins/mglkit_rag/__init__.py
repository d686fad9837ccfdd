"""The built-in BM25 retriever (bm25s, extra ``rag``) with Mongolian-aware tokenisation."""

from mglkit import Retriever, hookimpl


class BM25Retriever(Retriever):
    name = "bm25"
    description = "BM25 (bm25s) over lower-cased, punctuation-free, suffix-stripped Mongolian words"

    def build(self, documents):
        from .bm25 import BM25Index

        return BM25Index.build(documents)

    def load(self, folder):
        from .bm25 import BM25Index

        return BM25Index.load(folder)


@hookimpl
def register_retrievers(register):
    register(BM25Retriever())
