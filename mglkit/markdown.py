"""Results as Markdown: the model card of a run and the evaluation table (for model cards and READMEs)."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import subprocess
from pathlib import Path


def _versions() -> dict:
    from . import __version__

    found = {"mglkit": __version__}
    for name in ("torch", "transformers", "peft", "trl", "accelerate"):
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return found


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=Path(__file__).parent
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _cell(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _data(args: dict) -> str:
    """Where the training data came from: its files' sha256, or a Hub dataset's subset and split."""
    parts = [f"{name} `{args[key]}`" for name, key in (("subset", "dataset_subset"), ("split", "dataset_split"))
             if args.get(key)]  # fmt: skip
    if args.get("dataset_sha256"):
        parts.append(f"sha256 `{args['dataset_sha256']}`")
    if args.get("dataset_columns"):
        parts.append("columns " + ", ".join(f"`{f}={c}`" for f, c in args["dataset_columns"].items()))
    return f"`{args['dataset_path']}`" + (f" ({', '.join(parts)})" if parts else "")


def model_card(config, stats: dict, args: dict, benchmarks: str | None = None) -> str:
    rows = "\n".join(f"| `{k}` | {_cell(v)} |" for k, v in dataclasses.asdict(config).items() if k != "origin")
    metrics = "\n".join(f"| {k} | {_cell(v)} |" for k, v in stats.items() if not isinstance(v, dict | list))
    versions = ", ".join(f"{k} {v}" for k, v in _versions().items())
    bench_section = f"\n## Benchmarks (`{config.eval_suite}`)\n\n{benchmarks}\n" if benchmarks else ""
    commit = _git_commit()
    return f"""---
base_model: {config.base}
library_name: peft
language: [mn]
tags: [mglkit, {args["method"].split(",")[0].lower()}, lora, mongolian, history]
---

# LoRA adapter: {Path(config.output).name}

A LoRA adapter for `{config.base}`, trained with mglkit's `{config.trainer}` trainer ({args["method"]})
on Mongolian-history data.

- Data: {_data(args)}, {stats["train_samples"]} training
  and {stats["test_samples"]} evaluation examples.
- Prompt format: {"the tokenizer's chat template" if args["prompt_format"]["chat_template"] else "plain text"}.
- Versions: {versions}{f"; mglkit commit {commit}" if commit else ""}.

## Use

```python
from peft import PeftModel
from transformers import AutoModelForCausalLM

base = AutoModelForCausalLM.from_pretrained("{config.base}")
model = PeftModel.from_pretrained(base, "{config.output}")
```
or `mglkit generate --base {config.base} --adapter {config.output} "Чингис хааны тухай ярина уу?"`.

## Metrics

| metric | value |
|---|---|
{metrics}
{bench_section}
## Configuration

| option | value |
|---|---|
{rows}
"""


def eval_table(report) -> str:
    """The base-vs-adapters table of an EvalReport, with intervals and starred deltas."""
    head = "| evaluator | metric | " + " | ".join(report.columns) + " |"
    lines = [head, "|---|---|" + "---:|" * len(report.columns)]
    for name, by_column in report.results.items():
        for metric in report.metric_names(name):
            cells = []
            for column in report.columns:
                score = by_column[column].metrics.get(metric)
                cell = f"{score.value:.3f} [{score.low:.3f}, {score.high:.3f}]" if score else "—"
                delta = report.deltas.get(name, {}).get(column, {}).get(metric)
                if delta is not None:
                    cell += f" ({delta.value:+.3f}{'*' if delta.significant else ''})"
                cells.append(cell)
            lines.append(f"| {name} | {metric} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        "Values are means with 95% bootstrap intervals; (Δ) is the paired difference from the base "
        "model, * when its 95% interval excludes zero."
    )
    for suite, split in report.splits.items():
        counts = split["counts"]
        lines.append(
            f"`metric[unseen]`: the {counts['unseen']} items of {suite} the training data does not state "
            f"(generalisation, the headline); `metric[seen]`: the {counts['seen']} it states (retention); "
            f"labels from `{split['source']}`."
        )
    return "\n".join(lines)
