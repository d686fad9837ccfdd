"""Ship a trained adapter: merged into the base weights, or as a clean adapter folder. The output
follows every rule of an mglkit output folder (see mglkit.outputs)."""

from __future__ import annotations

import shutil
from pathlib import Path

from . import tasks
from .errors import UnusableInputError
from .models import ModelOptions, adapter_base, load_adapter, load_model
from .outputs import OutputFolder, write_text

CARD_FILES = ("README.md", "training_args.json")
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
    "vocab.txt",
    "tokenizer.model",
    "spiece.model",
    "chat_template.jinja",
    "chat_template.json",
)


def _folder(adapter_dir, output, overwrite: bool) -> OutputFolder:
    folder = OutputFolder(output, "export", overwrite=overwrite, inputs=[adapter_dir])
    folder.check()
    return folder


def export_merged(adapter_dir, output, base: str | None = None, dtype: str = "fp32", overwrite=False) -> Path:
    """A standard Hugging Face model folder (safetensors shards, config, tokenizer, generation
    config, card) that ``AutoModelForCausalLM.from_pretrained`` loads without peft."""
    base = base or adapter_base(adapter_dir)
    if not base:
        raise UnusableInputError(f"{adapter_dir}: the adapter does not name its base model", hint="give --base")
    folder = _folder(adapter_dir, output, overwrite)
    with tasks.progress(f"merging {Path(adapter_dir).name} into {base}"):
        model, tokenizer = load_model(base, ModelOptions(precision=dtype, device="cpu"))
        merged = load_adapter(model, adapter_dir, base).merge_and_unload()
    merged.config._name_or_path = f"{base} + {Path(adapter_dir).name} (merged)"
    with folder as build, tasks.progress(f"writing {folder.path}"):
        merged.save_pretrained(build, safe_serialization=True, max_shard_size="2GB")
        tokenizer.save_pretrained(build)
        write_text(build / "README.md", _card(adapter_dir, base, dtype))
    return folder.path


def export_adapter(adapter_dir, output, overwrite=False) -> Path:
    """A self-contained adapter folder: weights (safetensors; a ``.bin`` is converted), config,
    tokenizer, card; no logs or checkpoints. An adapter without weights is refused."""
    source = Path(adapter_dir)
    adapter_base(source)  # fails clearly when this is not an adapter folder
    weights = source / "adapter_model.safetensors"
    pickled = source / "adapter_model.bin"
    if not weights.is_file() and not pickled.is_file():
        raise UnusableInputError(
            f"{source}: no adapter weights (adapter_model.safetensors or .bin)",
            hint="give a run folder or an adapter folder with its weights",
        )
    folder = _folder(adapter_dir, output, overwrite)
    with folder as build:
        if weights.is_file():
            shutil.copy2(weights, build / weights.name)
        else:
            _convert(pickled, build / "adapter_model.safetensors")
        for name in ("adapter_config.json", *CARD_FILES, *TOKENIZER_FILES):
            if (source / name).is_file():
                shutil.copy2(source / name, build / name)
    return folder.path


def _convert(pickled: Path, target: Path) -> None:
    """A torch-format adapter as safetensors, read with ``weights_only`` (no code runs)."""
    import pickle

    import torch
    from safetensors.torch import save_file

    try:
        state = torch.load(pickled, weights_only=True, map_location="cpu")
    except (pickle.UnpicklingError, RuntimeError, EOFError) as exc:
        raise UnusableInputError(
            f"{pickled}: not a plain tensor file ({str(exc).splitlines()[0]})",
            hint="mglkit loads weights only, never code",
        ) from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UnusableInputError(f"{pickled}: not a dictionary of tensors")
    save_file({k: v.contiguous() for k, v in state.items()}, str(target))


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


def command(pm, name: str):
    """``mglkit export ADAPTER --format merged|adapter --output OUT``"""
    import click

    from .cli import exit_help

    @click.command(name, epilog=exit_help(None))
    @click.argument("adapter", type=click.Path(exists=True, file_okay=False))
    @click.option("--format", "fmt", type=click.Choice(["merged", "adapter"]), required=True)
    @click.option("--output", "-o", required=True, type=click.Path(file_okay=False))
    @click.option("--base", help="Base model (default: the one the adapter records).")
    @click.option(
        "--dtype",
        type=click.Choice(["fp32", "fp16", "bf16"]),
        default="fp32",
        show_default=True,
        help="Weights of a merged model.",
    )
    @click.option("--overwrite", is_flag=True, help="Replace an mglkit export in --output (never anything else).")
    def export(adapter, fmt, output, base, dtype, overwrite):
        """Merge an adapter into its base model, or write a clean adapter folder to upload."""
        if fmt == "merged":
            folder = export_merged(adapter, output, base, dtype, overwrite)
        else:
            folder = export_adapter(adapter, output, overwrite)
        click.echo(f"wrote {folder}")
        return 0

    return export
