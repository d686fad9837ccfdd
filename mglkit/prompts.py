"""How a question becomes model input: recorded with every run, reused by generate, eval and ask."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .errors import UnusableInputError


@dataclass
class PromptFormat:
    chat_template: bool

    def render(self, tokenizer, prompt: str) -> str:
        if not (self.chat_template and tokenizer.chat_template):
            return prompt
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
        )
        # the tokenizer adds its BOS itself: a BOS written by the template would be doubled
        if tokenizer.bos_token and text.startswith(tokenizer.bos_token):
            text = text[len(tokenizer.bos_token) :]
        return text

    def to_dict(self) -> dict:
        return {"chat_template": self.chat_template}


def run_format(adapter_dir: str | Path) -> PromptFormat | None:
    """The prompt format recorded with a training run, when the folder is (in) one."""
    for folder in (Path(adapter_dir), Path(adapter_dir).parent):
        path = folder / "training_args.json"
        if path.is_file():
            try:
                recorded = json.loads(path.read_text(encoding="utf-8"))["prompt_format"]
                return PromptFormat(chat_template=bool(recorded["chat_template"]))
            except (ValueError, KeyError, TypeError):
                raise UnusableInputError(
                    f"{path}, field 'prompt_format': missing or malformed", hint="the run folder is damaged"
                ) from None
    return None


def choice_separator(prompt: str) -> str:
    """What goes between a prompt and an answer choice scored after it: nothing after whitespace
    (a chat template's final newline), else one space."""
    return "" if not prompt or prompt[-1:].isspace() else " "
