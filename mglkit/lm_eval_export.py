"""A suite's facts as an lm-evaluation-harness task, scored exactly as mglkit's facts evaluator scores them.

``export_lm_eval`` writes a folder that ``lm_eval --include_path DIR --tasks mglkit_facts`` runs from
any working directory:

    mglkit_facts.yaml    the task: multiple choice, acc and acc_norm (lm-eval's own definitions, which
                         mglkit's facts evaluator follows)
    mglkit_facts.jsonl   one document per item: the rendered prompt (``context``), the choices, the answer
    utils.py             loads the documents from beside the YAML (a relative ``data_files`` path would
                         be read from the working directory)
    README.md            how to run it, and what it was rendered for
    mglkit_export.json   provenance: suite, file version and SHA-256, prompt rendering, task name

Why the numbers agree. mglkit's facts evaluator scores each item as the requests
(prompt, separator + choice); lm-eval scores (context, target_delimiter + choice). The document's
context is prompt + separator and the target delimiter is empty, so both score the same text; and
``mglkit.scoring.encode_pair`` splits the text into context and continuation tokens as lm-eval's HFLM
does (whitespace ending the context is scored with the choice), with the same BOS handling, so
both compute the same log-likelihoods. acc_norm divides by the choice's length in characters in both.

The prompt is rendered here, once, by the function given (a model's chat template, or the plain
question): run the task with that model, without lm-eval's ``--apply_chat_template`` and with
``--num_fewshot 0``, or the prompts are not mglkit's.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from .errors import ConfigError, UnusableInputError
from .outputs import OutputFolder, write_text
from .prompts import choice_separator

TASK = "mglkit_facts"
PROVENANCE = "mglkit_export.json"  # where the task came from

_LOADER = '''"""Loads this task's documents from the file beside it, whatever the working directory.
Written by mglkit's export-suite."""

import json
from pathlib import Path

import datasets


def load_docs(**_metadata):
    path = Path(__file__).with_name({data!r})
    with path.open(encoding="utf-8") as handle:
        docs = [json.loads(line) for line in handle if line.strip()]
    return datasets.DatasetDict({{"test": datasets.Dataset.from_list(docs)}})
'''


def lm_eval_docs(facts: list[dict], prompt: Callable[[str], str]) -> list[dict]:
    """One lm-eval document per fact: ``context`` is what mglkit's facts evaluator scores each choice
    after (the prompt and its separator), ``choices`` and ``answer`` as in the suite."""
    docs = []
    for fact in facts:
        rendered = prompt(fact["question"])
        docs.append(
            {
                "id": fact["id"],
                "period": fact.get("period"),
                "question": fact["question"],
                "context": rendered + choice_separator(rendered),
                "choices": list(fact["choices"]),
                "answer": fact["answer"],
            }
        )
    return docs


def export_lm_eval(
    suite,
    output: str | Path,
    prompt: Callable[[str], str] | None = None,
    prompt_source: str = "no template (the plain question)",
    task: str = TASK,
    overwrite: bool = False,
) -> Path:
    """Write ``suite``'s facts as the lm-evaluation-harness task ``task`` into the folder ``output``
    (the rules of every mglkit output folder apply: see mglkit.outputs). ``prompt`` renders a question
    as the model sees it (``ModelScorer.prompt``, or ``lambda q: fmt.render(tokenizer, q)``; default:
    the question as it is); ``prompt_source`` says what it was, for the folder's README."""
    if not suite.facts:
        raise UnusableInputError(f"{suite.path}: no facts.jsonl to export", hint="the lm-eval export covers facts")
    if not task.isidentifier():
        raise ConfigError(f"task name '{task}' is not a plain identifier", hint="letters, digits and _ only")
    folder = _folder(suite, output, overwrite)
    folder.check()
    docs = lm_eval_docs(suite.facts, prompt or (lambda question: question))
    version = suite.files.get("facts.jsonl", {}).get("version")
    with folder as build:
        data = f"{task}.jsonl"
        write_text(build / data, "".join(json.dumps(doc, ensure_ascii=False) + "\n" for doc in docs))
        write_text(build / "utils.py", _LOADER.format(data=data))
        write_text(build / f"{task}.yaml", _yaml(task, version, suite.name))
        write_text(build / "README.md", _readme(task, suite.name, len(docs), prompt_source))
        provenance = {"format": "lm-eval", "task": task, "suite": {"name": suite.name, "files": suite.files},
                      "items": len(docs), "prompt": prompt_source}  # fmt: skip
        write_text(build / PROVENANCE, json.dumps(provenance, ensure_ascii=False, indent=2) + "\n")
    return folder.path


def _folder(suite, output: str | Path, overwrite: bool) -> OutputFolder:
    return OutputFolder(output, "lm-eval task", overwrite=overwrite, inputs=[suite.path])


def model_prompt(base: str, chat_template: bool = True, pm=None) -> tuple[Callable[[str], str], str]:
    """How ``mglkit eval --base BASE`` renders a question (the model's tokenizer and, unless
    ``chat_template`` is off, its chat template), and those words for the task's README."""
    from .models import load_tokenizer
    from .prompts import PromptFormat

    tokenizer = load_tokenizer(base, pm)
    fmt = PromptFormat(chat_template=chat_template)
    if chat_template and tokenizer.chat_template:
        source = f"the chat template of `{base}`, as `mglkit eval --base {base}` renders it"
    else:
        source = f"no template (the plain question, as `mglkit eval --base {base}` gives it to that model)"
    return (lambda question: fmt.render(tokenizer, question)), source


def command(pm, name: str):
    """``mglkit export-suite SUITE --format lm-eval --output DIR [--base MODEL]``"""
    import click

    from .cli import exit_help

    @click.command(name, epilog=exit_help(None))
    @click.argument("suite")
    @click.option("--format", "fmt", type=click.Choice(["lm-eval"]), required=True,
                  help="lm-eval: the facts as an lm-evaluation-harness task.")  # fmt: skip
    @click.option("--output", "-o", required=True, type=click.Path(file_okay=False), help="The task folder.")
    @click.option("--base", help="Render the prompts as `mglkit eval --base MODEL` does (its tokenizer and chat "
                  "template); default: the plain question.")  # fmt: skip
    @click.option("--no-chat-template", is_flag=True, help="With --base: the plain question, no chat template.")
    @click.option("--overwrite", is_flag=True, help="Replace an mglkit lm-eval task in --output (never anything else).")
    def export_suite(suite, fmt, output, base, no_chat_template, overwrite):
        """Write a suite's facts as an lm-evaluation-harness task, scored as mglkit scores them."""
        from .suites import load_suite

        loaded = load_suite(suite, pm)
        _folder(loaded, output, overwrite).check()  # before a model is loaded
        rendering = model_prompt(base, not no_chat_template, pm) if base else ()  # else the plain question
        folder = export_lm_eval(loaded, output, *rendering, overwrite=overwrite)
        click.echo(f"wrote {folder}; run it: lm_eval --model hf --model_args pretrained=MODEL --include_path {folder} "
                   f"--tasks {TASK} --num_fewshot 0")  # fmt: skip
        return 0

    return export_suite


def _yaml(task: str, version: str | None, suite: str) -> str:
    # lm-eval reports a task's version with its results: the facts file's version from suite.toml
    metadata = f"metadata:\n  version: {json.dumps(version)}\n" if version else ""
    return f"""# mglkit's facts suite ({suite}) as an lm-evaluation-harness task; written by mglkit export-suite.
# The context is the prompt exactly as mglkit renders it, with the separator mglkit puts before a
# choice; so the target delimiter is empty. Run with --num_fewshot 0 and without --apply_chat_template.
task: {task}
custom_dataset: !function utils.load_docs
test_split: test
output_type: multiple_choice
doc_to_text: context
doc_to_choice: choices
doc_to_target: answer
target_delimiter: ""
num_fewshot: 0
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
{metadata}"""


def _readme(task: str, suite: str, items: int, prompt_source: str) -> str:
    return f"""# {task}: mglkit's facts suite for lm-evaluation-harness

{items} multiple-choice items of the mglkit suite `{suite}`, written by `mglkit export-suite`. Each
item's prompt was rendered with {prompt_source}; evaluate the model it was rendered for:

```
lm_eval --model hf --model_args pretrained=MODEL_FOLDER,dtype=float32 \\
  --include_path THIS_FOLDER --tasks {task} --num_fewshot 0
```

Do not add `--apply_chat_template`: the prompts already carry the model's template. `acc` picks the
choice with the highest log-likelihood, `acc_norm` the highest log-likelihood per character of the
choice: the same numbers as `mglkit eval {suite} --evaluators facts` reports for that model (its
intervals aside). `mglkit_export.json` names the suite files' versions and SHA-256.
"""
