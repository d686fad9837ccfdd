"""Retrieval quality: does the index find a passage that answers each question? recall@1,
recall@5 and mean reciprocal rank, where the best-ranked of an item's answering passages counts.
Retrieval does not depend on the model: every column is equal."""

from mglkit import EvalResult, Evaluator

DEPTH = 10


class Retrieval(Evaluator):
    name = "retrieval"
    needs = ("retrieval",)
    description = "recall@1, recall@5 and MRR of the retriever on questions with a known answering passage"

    def evaluate(self, scorer, suite, context) -> EvalResult:
        from mglkit.retrieval import cached_index, default_index

        corpus = suite.path / "corpus"
        if corpus.is_dir():  # a suite may bring its own documents
            index = cached_index(sorted(p for p in corpus.rglob("*") if p.is_file()), f"suite-{suite.name}")
        else:
            index = default_index()
        values = {"recall@1": [], "recall@5": [], "mrr": []}
        items = []
        for item in suite.retrieval:
            found = [doc.id for doc, _ in index.search(item["question"], DEPTH)]
            ranks = [found.index(p) + 1 for p in item["passage_ids"] if p in found]  # any answering passage counts
            rank = min(ranks) if ranks else None
            values["recall@1"].append(float(rank == 1))
            values["recall@5"].append(float(rank is not None and rank <= 5))
            values["mrr"].append(1 / rank if rank else 0.0)
            items.append({"id": item["id"], "rank": rank, "top": found[:5]})
        return EvalResult.from_values(self.name, scorer.name, values, items, seed=context.seed)
