"""mglkit: evaluation-first preference fine-tuning of language models on Mongolian history.

The public API: the three pipelines (``validate``, ``train``, ``evaluate``), reading pairs, and the
plugin contract (``mglkit.types``). Plugins import from here and from the helper modules named in
``PLUGIN_HELPERS``, nothing else of the core.
"""

from __future__ import annotations

__version__ = "0.2.0"

from .config import EvalConfig, TrainConfig, ValidationConfig
from .errors import ConfigError, MglkitError, PluginError, StoppedError, UnusableInputError
from .findings import ValidationReport
from .hookspecs import hookimpl
from .pairs import TEXT_FIELDS, load_pairs, read_jsonl
from .plugins import get_plugin_manager
from .prompts import choice_separator
from .resources import bundled, cache_root
from .sources import SourceRow, SourceSpec, open_data
from .tasks import note, progress
from .types import (
    ERROR,
    INFO,
    WARNING,
    Document,
    EvalContext,
    EvalResult,
    Evaluator,
    Finding,
    ModelSource,
    Pair,
    Retriever,
    Reward,
    RunLog,
    Scorer,
    Setting,
    Stats,
    Suite,
    SuiteFolder,
    SuiteSource,
    Trainer,
    TrainJob,
    TrainResult,
    Validator,
)

# modules of the core that plugins may import besides this one
PLUGIN_HELPERS = ("mglkit.preference", "mglkit.logprobs", "mglkit.mongolian", "mglkit.metrics", "mglkit.outputs",
                  "mglkit.retrieval", "mglkit.plots", "mglkit.packing", "mglkit.refcache",
                  "mglkit.distributed", "mglkit.sharding")  # fmt: skip


def validate(source, config: ValidationConfig | None = None, **kwargs) -> ValidationReport:
    """Validate a JSONL path (``-`` for stdin) or an iterable of records/Pairs."""
    import os

    from .validation import validate_file, validate_records

    config = config or ValidationConfig()
    if isinstance(source, str | os.PathLike):
        return validate_file(source, config, **kwargs)
    return validate_records(source, config, **kwargs)


def train(config: TrainConfig | None = None, *, overwrite: bool = False, **options) -> dict:
    """Train a LoRA adapter: ``mglkit.train(base="mglkit:tiny", trainer="dpo", beta=0.2, output="runs/x")``
    takes the settings of ``mglkit train`` (or a TrainConfig); returns the training statistics."""
    from .training import api_config
    from .training import train as run_training

    return run_training(api_config(config, options), overwrite=overwrite)


def evaluate(config: EvalConfig | None = None, **settings):
    """Score a base model and adapters: ``mglkit.evaluate(suites=["benchmarks"], base="mglkit:tiny",
    adapters=["runs/x"])`` (or an EvalConfig); returns an EvalReport (``.to_dict()``, ``.markdown()``)."""
    from .evaluation import evaluate as run_evaluation

    return run_evaluation(config, **settings)


def validated_pairs(data, skip_validation: bool = False) -> tuple[list[Pair], dict | None]:
    """Training data's pairs (a name or a SourceSpec), validated as `mglkit train` does (errors
    raise), and the validation summary."""
    from .planning import validated_pairs as run

    return run(data, skip_validation)


def checkpoint_dirs(folder):
    """Complete ``step-N`` / ``checkpoint-N`` folders under ``folder``, oldest first."""
    from .run import checkpoint_dirs as find

    return find(folder)


def peak_memory_mb() -> float:
    """Peak memory of this process: allocated GPU memory on CUDA, else the resident set."""
    from .run import peak_memory_mb as peak

    return peak()


__all__ = [
    "ConfigError", "Document", "ERROR", "EvalConfig", "EvalContext", "EvalResult", "Evaluator", "Finding", "INFO",
    "MglkitError", "ModelSource", "PLUGIN_HELPERS", "Pair", "PluginError", "Retriever", "Reward", "RunLog", "Scorer",
    "Setting", "SourceRow", "SourceSpec", "Stats", "StoppedError", "Suite", "SuiteFolder", "SuiteSource",
    "TEXT_FIELDS", "TrainConfig", "TrainJob", "TrainResult", "Trainer", "UnusableInputError", "ValidationConfig",
    "ValidationReport", "Validator", "WARNING", "__version__", "bundled", "cache_root", "checkpoint_dirs",
    "choice_separator", "evaluate", "get_plugin_manager", "hookimpl", "load_pairs", "note", "open_data",
    "peak_memory_mb", "progress", "read_jsonl", "train", "validate", "validated_pairs",
]  # fmt: skip
