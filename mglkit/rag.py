"""Retrieval-augmented answers: retrieve passages, ask the model to answer from them, cite them.

from mglkit.rag import MongolianRAGAgent
agent = MongolianRAGAgent(model_name="runs/quickstart", base_model="mglkit:tiny", use_peft=True)
print(agent.query("Монголын ардчилсан хувьсгалын тухай хэлнэ үү?"))
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from . import tasks
from .config import DEFAULT_BASE
from .errors import ConfigError
from .models import ModelOptions, generate, load_adapter, load_model
from .prompts import PromptFormat, run_format
from .retrieval import Index, default_index
from .types import Document

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
        return {
            "number": self.number,
            "id": d.id,
            "title": d.title,
            "score": self.score,
            "cited": self.cited,
            "text": d.text,
        }


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
        from .models import adapter_base

        recorded = adapter_base(model_name) if use_peft else None  # a damaged adapter fails before any loading
        self.index = index if isinstance(index, Index) or index is None else Index(index)
        name = (base_model or recorded) if use_peft else model_name
        self.fmt = (run_format(model_name) if use_peft else None) or PromptFormat(chat_template=True)
        self.model, self.tokenizer = load_model(name, ModelOptions(precision))
        if use_peft:
            self.model = load_adapter(self.model, model_name, name)
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
        sources = fit_sources(
            question, sources, self.tokenizer, self.fmt, room(self.model, self.tokenizer, self.max_new_tokens)
        )
        prompt = build_prompt(question, sources)
        (text,) = generate(
            self.model, self.tokenizer, [prompt], self.fmt, self.max_new_tokens, temperature=self.temperature, seed=seed
        )
        cited = {int(n) for n in _CITATION.findall(text)}
        for source in sources:
            source.cited = source.number in cited
        return Answer(text, question, sources)


def room(model, tokenizer, max_new_tokens: int) -> int:
    """Prompt tokens the model can take and still generate ``max_new_tokens``."""
    limits = [getattr(model.config, "max_position_embeddings", None), getattr(tokenizer, "model_max_length", None)]
    context = min(n for n in limits if isinstance(n, int) and 0 < n < 10**8) if any(limits) else 10**8
    return context - max_new_tokens


def _tokens(text: str, tokenizer, fmt: PromptFormat) -> int:
    return len(tokenizer(fmt.render(tokenizer, text))["input_ids"])


def fit_question(question: str, tokenizer, fmt: PromptFormat, budget: int) -> None:
    used = _tokens(question, tokenizer, fmt)
    if used > budget:
        raise ConfigError(
            f"the question takes {used} tokens; with --max-new-tokens the model's context leaves {budget}",
            hint="shorten the question, or lower --max-new-tokens",
        )


def fit_sources(question: str, sources: list[Source], tokenizer, fmt: PromptFormat, budget: int) -> list[Source]:
    """Drop the weakest passages, then shorten the last one, until the prompt fits; never the question."""
    fit_question(question, tokenizer, fmt, budget)
    kept = list(sources)
    while kept and _tokens(build_prompt(question, kept), tokenizer, fmt) > budget:
        if len(kept) > 1:
            tasks.note(f"ask: left out passage [{kept[-1].number}] to fit the model's context")
            kept.pop()
            continue
        last = kept[0]
        words = last.document.text.split()
        while words and _tokens(build_prompt(question, [_shortened(last, words)]), tokenizer, fmt) > budget:
            words = words[: len(words) * 3 // 4]
        if not words:
            tasks.note(f"ask: left out passage [{last.number}]: no room beside the question")
            return []
        tasks.note(f"ask: shortened passage [{last.number}] to {len(words)} words to fit the model's context")
        kept = [_shortened(last, words)]
    return kept


def _shortened(source: Source, words: list[str]) -> Source:
    document = Document(source.document.id, " ".join(words) + " …", source.document.title, source.document.source)
    return Source(source.number, document, source.score, source.cited)


def command(pm, name: str):
    """``mglkit generate`` and ``mglkit ask``."""
    return {"generate": _generate_command, "ask": _ask_command}[name](name)


def _generate_command(name: str):
    import click

    from .cli import exit_help

    @click.command(name, epilog=exit_help(None))
    @click.argument("question", nargs=-1, required=True)
    @click.option("--base", default=DEFAULT_BASE, show_default=True, help="Base model.")
    @click.option("--adapter", type=click.Path(exists=True, file_okay=False), help="A run or adapter folder.")
    @click.option("--max-new-tokens", type=click.IntRange(1), default=256, show_default=True)
    @click.option("--temperature", type=click.FloatRange(0), default=0.7, show_default=True, help="0: greedy.")
    @click.option("--top-p", type=click.FloatRange(0, 1, min_open=True), default=0.9, show_default=True)
    @click.option("--seed", type=click.IntRange(0), default=0, show_default=True)
    @click.option("--precision", type=click.Choice(["auto", "fp32", "fp16", "bf16"]), default="auto")
    @click.option("--no-chat-template", is_flag=True, help="Plain-text prompt (default: as the run recorded).")
    @click.option("--trust-remote-code", is_flag=True, help="Run the model folder's own Python code.")
    def generate_command(
        question,
        base,
        adapter,
        max_new_tokens,
        temperature,
        top_p,
        seed,
        precision,
        no_chat_template,
        trust_remote_code,
    ):
        """Answer a question with a base model and, optionally, a trained adapter."""
        from .models import adapter_base

        if adapter:
            adapter_base(adapter)  # a damaged adapter fails before any loading
        fmt = (run_format(adapter) if adapter else None) or PromptFormat(chat_template=True)
        if no_chat_template:
            fmt = PromptFormat(chat_template=False)
        model, tokenizer = load_model(base, ModelOptions(precision, trust_remote_code=trust_remote_code))
        if adapter:
            model = load_adapter(model, adapter, base)
        text = " ".join(question)
        fit_question(text, tokenizer, fmt, room(model, tokenizer, max_new_tokens))
        (answer,) = generate(model, tokenizer, [text], fmt, max_new_tokens, temperature, top_p, seed)
        click.echo(answer)
        return 0

    return generate_command


def _ask_command(name: str):
    import click

    from .cli import exit_help

    @click.command(name, epilog=exit_help(None))
    @click.argument("question", nargs=-1, required=True)
    @click.option("--base", default=DEFAULT_BASE, show_default=True, help="Base model.")
    @click.option("--adapter", type=click.Path(exists=True, file_okay=False), help="A run or adapter folder.")
    @click.option("--k", type=click.IntRange(1), default=4, show_default=True, help="Passages to retrieve.")
    @click.option(
        "--index",
        "index_dir",
        type=click.Path(exists=True, file_okay=False),
        help="An index from `mglkit index` (default: the bundled Mongolian history corpus).",
    )
    @click.option("--no-retrieval", is_flag=True, help="Answer from the model alone.")
    @click.option("--json", "as_json", is_flag=True, help="Answer, sources and scores as JSON.")
    @click.option("--max-new-tokens", type=click.IntRange(1), default=128, show_default=True)
    @click.option("--temperature", type=click.FloatRange(0), default=0.0, show_default=True)
    @click.option("--precision", type=click.Choice(["auto", "fp32", "fp16", "bf16"]), default="auto")
    def ask(question, base, adapter, k, index_dir, no_retrieval, as_json, max_new_tokens, temperature, precision):
        """Answer a question from retrieved passages, citing them as [1], [2], ..."""
        agent = MongolianRAGAgent(
            adapter or base,
            base_model=base,
            use_peft=adapter is not None,
            k=k,
            index=index_dir,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            precision=precision,
        )
        answer = agent.query(" ".join(question), retrieval=not no_retrieval)
        if as_json:
            from .report import write_json

            write_json(answer.to_dict())
            return 0
        click.echo(answer.text)
        if answer.sources:
            click.echo("\nSources:")
            for source in answer.sources:
                mark = "*" if source.cited else " "
                click.echo(
                    f" {mark}[{source.number}] {source.document.title or source.document.id} "
                    f"({source.document.id}, score {source.score:.2f})"
                )
        return 0

    return ask
