"""Ship a trained adapter: merged into the base weights, or as a clean adapter folder."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from .errors import ConfigError, MglkitError
from .models import ModelOptions, adapter_base, load_adapter, load_model

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "README.md", "training_args.json")


def _into_place(tmp: Path, output: Path) -> None:
    if output.exists():
        shutil.rmtree(output)
    tmp.rename(output)


def _target(output: str | Path, overwrite: bool) -> tuple[Path, Path]:
    output = Path(output)
    if output.exists() and (not output.is_dir() or (any(output.iterdir()) and not overwrite)):
        raise ConfigError(f"--output {output} exists", hint="choose a new folder or add --overwrite")
    output.parent.mkdir(parents=True, exist_ok=True)
    return output, Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))


def export_merged(adapter_dir, output, base: str | None = None, dtype: str = "fp32", overwrite=False) -> Path:
    """A standard Hugging Face model folder (safetensors shards, config, tokenizer, generation
    config, card) that ``AutoModelForCausalLM.from_pretrained`` loads without peft."""
    base = base or adapter_base(adapter_dir)
    if not base:
        raise MglkitError(f"{adapter_dir}: the adapter does not name its base model", hint="give --base")
    output, tmp = _target(output, overwrite)
    try:
        model, tokenizer = load_model(base, ModelOptions(precision=dtype, device="cpu"))
        merged = load_adapter(model, adapter_dir, base).merge_and_unload()
        merged.config._name_or_path = f"{base} + {Path(adapter_dir).name} (merged)"
        merged.save_pretrained(tmp, safe_serialization=True, max_shard_size="2GB")
        tokenizer.save_pretrained(tmp)
        (tmp / "README.md").write_text(_card(adapter_dir, base, dtype), encoding="utf-8")
        _into_place(tmp, output)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return output


def export_adapter(adapter_dir, output, overwrite=False) -> Path:
    """A self-contained adapter folder: weights, config, tokenizer, card; no logs or checkpoints."""
    source = Path(adapter_dir)
    adapter_base(source)  # fails clearly when this is not an adapter folder
    output, tmp = _target(output, overwrite)
    try:
        for item in source.iterdir():
            keep = item.name in ADAPTER_FILES or item.name.startswith(("tokenizer", "special_tokens", "chat_template"))
            if item.is_file() and keep:
                shutil.copy2(item, tmp / item.name)
        _into_place(tmp, output)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return output


def _card(adapter_dir, base, dtype) -> str:
    return f"""---
base_model: {base}
language: [mn]
tags: [mglkit, dpo, mongolian, history, merged]
---

# Merged model

`{base}` with the LoRA adapter `{Path(adapter_dir).name}` merged into its weights ({dtype}), by mglkit's
`export`. Loads with `AutoModelForCausalLM.from_pretrained(...)`; no peft needed. The adapter's own
card, with its training data and metrics, is in the adapter folder.
"""
