"""mglkit: evaluation-first preference fine-tuning of language models on Mongolian history."""

from __future__ import annotations

__version__ = "0.1.0"

from .config import ValidationConfig, load_validation_config
from .findings import Finding
from .hookspecs import hookimpl
from .pairs import Pair, load_pairs
from .validation import ValidationReport, Validator


def validate(source, config: ValidationConfig | None = None, **kwargs) -> ValidationReport:
    """Validate a JSONL path (``-`` for stdin) or an iterable of records/Pairs."""
    import os

    from .validation import validate_file, validate_records

    config = config or ValidationConfig()
    if isinstance(source, str | os.PathLike):
        return validate_file(source, config, **kwargs)
    return validate_records(source, config, **kwargs)


def train(config=None, **options):
    """Train a LoRA adapter with DPO: ``mglkit.train(base="mglkit:tiny", trainer="dpo", ...)``
    takes the options of ``mglkit train`` (or a TrainConfig); returns the training statistics."""
    from .config import TrainConfig
    from .training import train as run_training

    overwrite = options.pop("overwrite", False)
    return run_training(config or TrainConfig(**options), overwrite=overwrite)


__all__ = [
    "Finding",
    "Pair",
    "ValidationConfig",
    "ValidationReport",
    "Validator",
    "__version__",
    "hookimpl",
    "load_pairs",
    "load_validation_config",
    "train",
    "validate",
]
