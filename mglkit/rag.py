"""Retrieval-augmented answers: retrieve passages, ask the model to answer from them, cite them.

from mglkit.rag import MongolianRAGAgent
agent = MongolianRAGAgent(model_name="runs/quickstart", base_model="mglkit:tiny", use_peft=True)
print(agent.query("Монголын ардчилсан хувьсгалын тухай хэлнэ үү?"))
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .models import ModelOptions, PromptFormat, generate, load_adapter, load_model, run_format
from .retrieval import Document, Index, default_index

INSTRUCTION = (
    "Доорх эх сурвалжуудад тулгуурлан асуултад монгол хэлээр хариулна уу. "
    "Ашигласан эх сурвалжийнхаа дугаарыг [1] гэх мэтээр заана уу."
)
_CITATION = re.compile(r"\[(\d+)\]")


@dataclass
class Source:
    number: int
    document: Document
    score: float
    cited: bool = False

    def to_dict(self) -> dict:
        d = self.document
        return {"number": self.number, "id": d.id, "title": d.title, "score": self.score, "cited": self.cited,
                "text": d.text}  # fmt: skip


@dataclass
class Answer:
    """The generated text and the sources it was given; ``str(answer)`` is the text."""

    text: str
    question: str
    sources: list[Source] = field(default_factory=list)

    def __str__(self) -> str:
        return self.text

    def to_dict(self) -> dict:
        return {"question": self.question, "answer": self.text, "sources": [s.to_dict() for s in self.sources]}


def build_prompt(question: str, sources: list[Source]) -> str:
    if not sources:
        return question
    passages = "\n".join(f"[{s.number}] {s.document.title}: {s.document.text}".replace(" : ", ": ") for s in sources)
    return f"{INSTRUCTION}\n\n{passages}\n\nАсуулт: {question}"


class MongolianRAGAgent:
    """The original guide's agent: ``model_name`` is the adapter folder when ``use_peft``, else a
    model; ``base_model`` the base it was trained on; ``query(question)`` returns an Answer."""

    def __init__(
        self,
        model_name: str,
        base_model: str | None = None,
        use_peft: bool = False,
        k: int = 4,
        index: str | Index | None = None,
        max_new_tokens: int = 128,
        temperature: float = 0.0,
        precision: str = "auto",
    ):
        if use_peft and base_model is None:
            from .models import adapter_base

            base_model = adapter_base(model_name)
        name = base_model if use_peft else model_name
        self.model, self.tokenizer = load_model(name, ModelOptions(precision))
        self.fmt = PromptFormat(chat_template=True)
        if use_peft:
            self.model = load_adapter(self.model, model_name, name)
            self.fmt = run_format(model_name) or self.fmt
        self.index = index if isinstance(index, Index) or index is None else Index(index)
        self.k = k
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature

    def retrieve(self, question: str) -> list[Source]:
        if self.k <= 0:
            return []
        if self.index is None:
            self.index = default_index()
        hits = self.index.search(question, self.k)
        return [Source(i + 1, doc, score) for i, (doc, score) in enumerate(hits)]

    def query(self, question: str, retrieval: bool = True, seed: int = 0) -> Answer:
        sources = self.retrieve(question) if retrieval else []
        prompt = build_prompt(question, sources)
        (text,) = generate(self.model, self.tokenizer, [prompt], self.fmt, self.max_new_tokens,
                           temperature=self.temperature, seed=seed)  # fmt: skip
        cited = {int(n) for n in _CITATION.findall(text)}
        for source in sources:
            source.cited = source.number in cited
        return Answer(text, question, sources)
