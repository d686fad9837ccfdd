"""Scorers: a Hugging Face causal LM (with one of its loaded LoRA adapters active, or none) as
evaluators see it — the contract's Scorer, lm-evaluation-harness's LM interface."""

from __future__ import annotations

import contextlib

from . import distributed
from .logprobs import completion_logps
from .models import generate
from .prompts import PromptFormat

GENERATE_BATCH = 8  # prompts generated together (left-padded)


class ModelScorer:
    """``sharded``: several processes (``accelerate launch``, ``torchrun``) evaluate together. Each takes
    every world-th batch of the ones a single process would make (so every answer is what one
    process would give), and all of them get every answer."""

    def __init__(
        self,
        name,
        model,
        tokenizer,
        fmt: PromptFormat,
        adapter: str | None = None,
        batch_size: int = 16,
        sharded: bool = False,
    ):
        self.name = name
        self.model = model
        self.tokenizer = tokenizer
        self.fmt = fmt
        self.adapter = adapter
        self.batch_size = batch_size
        self.sharded = sharded

    def _active(self):
        if self.adapter is None:
            disable = getattr(self.model, "disable_adapter", None)
            return disable() if disable is not None else contextlib.nullcontext()
        self.model.set_adapter(self.adapter)
        return contextlib.nullcontext()

    def prompt(self, question: str) -> str:
        return self.fmt.render(self.tokenizer, question)

    def loglikelihood(self, requests):
        import torch

        tok = self.tokenizer
        encoded = [encode_pair(tok, context, continuation) for context, continuation in requests]
        order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i][0]))  # batches of similar length
        batches = [order[first : first + self.batch_size] for first in range(0, len(order), self.batch_size)]
        results: dict[int, tuple[float, int]] = {}
        device = next(self.model.parameters()).device
        self.model.eval()
        with torch.no_grad(), self._active():
            for rows in self._mine(batches):
                width = max(len(encoded[i][0]) for i in rows)
                ids = torch.full((len(rows), width), tok.pad_token_id, dtype=torch.long)
                mask = torch.zeros((len(rows), width), dtype=torch.long)
                target = torch.zeros((len(rows), width), dtype=torch.long)
                for r, i in enumerate(rows):
                    whole, cut = encoded[i]
                    ids[r, : len(whole)] = torch.tensor(whole)
                    mask[r, : len(whole)] = 1
                    target[r, cut : len(whole)] = 1
                sums, counts = completion_logps(self.model, ids.to(device), mask.to(device), target.to(device))
                for r, i in enumerate(rows):
                    results[i] = (sums[r].item(), int(counts[r].item()))
        results = self._gathered(results)
        return [results[i] for i in range(len(encoded))]

    def generate(self, prompts, max_new_tokens):
        batches = [(first, prompts[first : first + GENERATE_BATCH]) for first in range(0, len(prompts), GENERATE_BATCH)]
        answers: dict[int, str] = {}
        with self._active():
            for first, part in self._mine(batches):
                for i, answer in enumerate(
                    generate(self.model, self.tokenizer, part, self.fmt, max_new_tokens, temperature=0.0,
                             batch_size=GENERATE_BATCH)
                ):  # fmt: skip
                    answers[first + i] = answer
        answers = self._gathered(answers)
        return [answers[i] for i in range(len(prompts))]

    def _mine(self, batches: list) -> list:
        return batches[distributed.rank() :: distributed.world_size()] if self.sharded else batches

    def _gathered(self, found: dict) -> dict:
        if not self.sharded:
            return found
        return {i: value for part in distributed.all_gather(found) for i, value in part.items()}


class CachedScorer:
    """Memoises log-likelihoods, so a base column scored once serves as every adapter's reference."""

    def __init__(self, scorer):
        self.inner = scorer
        self.name = scorer.name
        self._cache: dict = {}

    def prompt(self, question):
        return self.inner.prompt(question)

    def loglikelihood(self, requests):
        missing = [r for r in dict.fromkeys(requests) if r not in self._cache]
        if missing:
            self._cache.update(zip(missing, self.inner.loglikelihood(missing), strict=True))
        return [self._cache[r] for r in requests]

    def generate(self, prompts, max_new_tokens):
        return self.inner.generate(prompts, max_new_tokens)


def encode_pair(tokenizer, context: str, continuation: str) -> tuple[list[int], int]:
    """(token ids of context + continuation, index of the first scored token), exactly as
    lm-evaluation-harness's HFLM splits a request (``loglikelihood`` and ``_encode_pair``), so both
    score the same tokens of the same text:

    - whitespace ending the context is scored with the continuation, and the continuation is the
      whole text's tokens beyond the context's own token count;
    - a text that already starts with the BOS string gets no second BOS;
    - an empty context conditions on the BOS (the EOS where there is none), and every token of the
      text is scored.
    """
    prefix = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    if not context:
        text = tokenizer(continuation, add_special_tokens=False)["input_ids"]
        return (text, 1) if text[:1] == [prefix] else ([prefix, *text], 1)
    marker = tokenizer.decode(prefix) if prefix is not None else None

    def ids(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=not (marker and text.startswith(marker)))["input_ids"]

    return ids(context + continuation), max(1, len(ids(context.rstrip())))
