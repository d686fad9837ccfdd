"""The plugin contract: what plugins provide, and what mglkit hands them. Everything here is
re-exported from ``mglkit``; plugins import from there (and from the few helper modules named in
``mglkit.PLUGIN_HELPERS``), never from the pipelines.

Each kind of plugin object is a Protocol. Subclass it to inherit the optional parts (a
``description``, default methods); any object with the required attributes also satisfies it, and
mglkit checks that when the object is registered.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from .findings import ERROR, INFO, WARNING, Finding, Stats
from .pairs import Pair
from .settings import Setting

__all__ = [
    "ERROR",
    "INFO",
    "WARNING",
    "Document",
    "EvalContext",
    "EvalResult",
    "Evaluator",
    "Finding",
    "ModelSource",
    "Pair",
    "Retriever",
    "Reward",
    "RunLog",
    "Scorer",
    "Setting",
    "Stats",
    "Suite",
    "SuiteFolder",
    "SuiteSource",
    "TrainJob",
    "TrainResult",
    "Trainer",
    "Validator",
]


# Validation ------------------------------------------------------------------------------------


@runtime_checkable
class Validator(Protocol):
    """Checks preference pairs. Registered once (an instance); for each file mglkit calls
    ``begin(config)`` and uses the object it returns, so per-file state starts fresh.

    ``check(pair)`` returns findings for one pair. A validator that keeps state across pairs
    (duplicates, dataset size) sets ``per_record = False``: it then sees every pair in file order in
    one process, and ``finish(stats)`` returns its dataset-wide findings. Thresholds come from
    ``self.config`` (a ValidationConfig; a plugin's own settings are ``config.options[name]``).
    """

    name: str
    description: str = ""
    per_record: bool = True
    config: Any = None

    def begin(self, config) -> Validator:
        """This validator bound to one file's config, with fresh state (override to add state)."""
        bound = copy.copy(self)
        bound.config = config
        return bound

    def check(self, pair: Pair) -> Iterable[Finding]:
        return ()

    def finish(self, stats: Stats) -> Iterable[Finding]:
        return ()

    def finding(
        self,
        pair: Pair | None,
        field: str | None,
        severity: str,
        message: str,
        hint: str | None = None,
        snippet: str | None = None,
        rule: str | None = None,
    ) -> Finding:
        """A Finding of this validator's rule, located at the pair's line and row (None: dataset-wide)."""
        line, row = (pair.line, pair.row) if pair else (None, None)
        return Finding(rule or self.name, severity, message, line, field, hint, snippet, row=row)


# Training --------------------------------------------------------------------------------------


@runtime_checkable
class RunLog(Protocol):
    """The run a trainer reports to (mglkit's run folder): metrics, notes, checkpoints."""

    dir: Path
    checkpoints: Path  # where resume state goes; mglkit finds the newest complete ``step-N`` there
    is_main: bool

    def start(self, total_steps: int, steps_per_epoch: int) -> None:
        """Called once the trainer knows how many optimizer steps it will take."""

    def log(self, step: int, metrics: dict[str, float]) -> None:
        """Metrics at an optimizer step, with TRL's names (``loss``, ``rewards/margins``, ``eval_loss``...)."""

    def note(self, message: str) -> None:
        """One line for the log and the terminal."""

    def checkpointed(self, step: int) -> None:
        """Say a checkpoint was saved at ``step`` (the ``run_checkpoint`` hook hears of it)."""


@dataclass
class TrainJob:
    """What a trainer receives: everything is loaded, split, tokenized and decided already."""

    config: Any  # TrainConfig: the core settings
    options: Any  # this trainer's own settings (a namespace of its ``settings``, defaults filled)
    model: Any  # the base model, without an adapter
    tokenizer: Any
    lora: Any  # peft.LoraConfig
    train: list  # TokenizedPair (preference.py), untruncated: each trainer truncates by its rule
    eval: list
    train_records: list[dict]  # the same examples as text, prompt format applied (for TRL)
    eval_records: list[dict]
    run: RunLog
    precision: str  # fp32, fp16, bf16
    device: str  # cpu, cuda
    resume_from: Path | None = None  # the checkpoint folder to continue from
    base_identity: dict | None = None  # who the base model is (mglkit.refcache), for caches keyed by it


@dataclass
class TrainResult:
    """What a trainer returns. ``stats`` adds or overrides keys of training_stats.json (a GRPO
    trainer's mean reward, say; ``engine`` and ``world_size``, the engine and processes it ran on); the
    rest mglkit derives from the logged metrics. A trainer whose model ends sharded (FSDP, ZeRO-3)
    returns ``model=None`` and the last adapter's tensors: the main process loads the base again and
    puts the adapter on it to write the outputs."""

    model: Any  # the PeftModel, with the last weights; None when it is sharded
    best_adapter: dict | None  # adapter tensors at the best eval loss, when evaluation ran
    best_step: int | None
    optimizer_steps: int
    micro_steps: int
    train_tokens: int
    seconds: float
    peak_memory_mb: float
    is_main: bool = True
    stats: dict[str, Any] = field(default_factory=dict)
    last_adapter: dict | None = None  # adapter tensors (PEFT's form) of the last step, when model is None


@runtime_checkable
class Trainer(Protocol):
    """Trains a LoRA adapter: ``mglkit train --trainer NAME``.

    ``inputs`` says what the trainer learns from: ``"pairs"`` (mglkit validates, splits and tokenizes
    preference pairs) or ``"prompts"`` (mglkit calls ``prompt_records``, then splits and renders them).
    ``truncation`` is how the trainer shortens long pairs (mglkit counts them for the plan):
    ``"keep-start"`` cuts the end of prompt + answer, ``"prompt-left"`` trims the prompt's start first.
    ``settings`` declares the trainer's own options (flags and config-file keys beside the core ones).
    """

    name: str
    description: str = ""
    method: str = "DPO"  # what the model card calls the training method
    inputs: str = "pairs"
    truncation: str = "keep-start"
    settings: Sequence[Setting] = ()

    def check(self, options, config) -> None:
        """Raise ConfigError for a combination of settings this trainer cannot run (before anything runs)."""

    def check_resume(self, checkpoint, options, config) -> None:
        """Raise for a checkpoint folder this launch cannot resume (another engine...), before anything is written."""

    def describe(self, options) -> str:
        """The method in one line for the model card, e.g. "DPO, sigmoid loss, beta 0.1"."""
        return self.method

    def prompt_records(self, data, options, config) -> list[dict]:
        """For ``inputs == "prompts"``: the records of the training data, each with a ``question``.
        ``data`` is a SourceSpec (name, split, subset, columns): read it with ``mglkit.open_data``."""
        raise NotImplementedError(f"trainer '{self.name}' reads no prompts")

    def train(self, job: TrainJob) -> TrainResult: ...


# Evaluation ------------------------------------------------------------------------------------


@dataclass
class Suite:
    """A benchmark suite: any of facts (multiple choice), pairs (held-out preference pairs), fluency
    passages and retrieval questions. ``files`` records each file's version and SHA-256."""

    name: str
    path: Path
    facts: list[dict] = field(default_factory=list)
    pairs: list[Pair] = field(default_factory=list)
    fluency: list[dict] = field(default_factory=list)
    retrieval: list[dict] = field(default_factory=list)
    files: dict[str, dict] = field(default_factory=dict)

    def has(self, part: str) -> bool:
        return bool(getattr(self, part))

    def pair_ids(self) -> list[str]:
        """Each pair's id: its ``id`` field, else ``pair-N`` (its place in pairs.jsonl). Evaluators
        name pairs by it in their per-item results (seen / unseen labels are found by it)."""
        return [str(p.extra.get("id", f"pair-{n}")) for n, p in enumerate(self.pairs, 1)]

    def limited(self, limit: int | None) -> Suite:
        if not limit:
            return self
        fluent = [r for r in self.fluency if "degraded" not in r][:limit]
        keep = {r["id"] for r in fluent}
        degraded = [r for r in self.fluency if r.get("source_id") in keep]
        return Suite(
            self.name,
            self.path,
            self.facts[:limit],
            self.pairs[:limit],
            fluent + degraded,
            self.retrieval[:limit],
            self.files,
        )


@dataclass
class SuiteFolder:
    """A named suite: ``register(SuiteFolder("benchmarks", path))`` makes ``mglkit eval benchmarks`` work."""

    name: str
    path: Path
    description: str = ""


@runtime_checkable
class SuiteSource(Protocol):
    """Reads suites of a published format: ``mglkit eval PREFIX:PATH`` calls ``load(PATH)``."""

    name: str
    prefix: str  # e.g. "belebele:"
    description: str = ""

    def load(self, path: Path) -> Suite: ...


@runtime_checkable
class Scorer(Protocol):
    """The model as evaluators see it (lm-evaluation-harness's LM interface)."""

    name: str

    def loglikelihood(self, requests: list[tuple[str, str]]) -> list[tuple[float, int]]:
        """For each (context, continuation): the summed log-probability (nats) of the continuation
        given the context, and its number of tokens. An empty context means the text alone. Tokens are
        split as lm-evaluation-harness splits them: whitespace ending the context is scored with the
        continuation (put ``mglkit.choice_separator(context)`` before an answer choice)."""

    def generate(self, prompts: list[str], max_new_tokens: int) -> list[str]:
        """Greedy answers to questions (the prompt format is the scorer's business)."""

    def prompt(self, question: str) -> str:
        """A question as the model expects it (chat template or plain)."""


@dataclass
class EvalContext:
    """What an evaluator gets besides the scorer and the suite."""

    reference: Scorer | None  # the base model's scorer, for metrics measured against it; None for the base
    seed: int = 0
    max_new_tokens: int = 32


@dataclass
class EvalResult:
    """One evaluator's scores for one column (model)."""

    evaluator: str
    column: str
    metrics: dict[str, Any]  # name -> stats.Score
    per_item: dict[str, list[float]]  # aligned across columns: what paired deltas resample
    # per-item results; each naming its suite item by "id" (in per_item's order) gives seen / unseen splits
    items: list[dict] = field(default_factory=list)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)  # title -> group -> Score

    @classmethod
    def from_values(
        cls,
        evaluator: str,
        column: str,
        values: dict[str, list[float]],
        items: list[dict],
        groups: dict[str, dict[str, list[float]]] | None = None,
        seed: int = 0,
    ) -> EvalResult:
        """Scores with 95% bootstrap intervals from per-item values (and per-group values)."""
        from .stats import bootstrap

        metrics = {name: bootstrap(v, seed) for name, v in values.items()}
        grouped = {
            title: {key: bootstrap(v, seed) for key, v in parts.items() if v} for title, parts in (groups or {}).items()
        }
        return cls(evaluator, column, metrics, values, items, grouped)


@runtime_checkable
class Evaluator(Protocol):
    """Scores a model on the parts of a suite it ``needs`` (e.g. ``("facts",)``)."""

    name: str
    needs: tuple[str, ...]
    description: str = ""

    def evaluate(self, scorer: Scorer, suite: Suite, context: EvalContext) -> EvalResult: ...


# Models, retrieval, rewards --------------------------------------------------------------------


@runtime_checkable
class ModelSource(Protocol):
    """Loads models named with a prefix (``mglkit:tiny``) instead of a hub id or a folder.

    Optionally, ``folder(name) -> Path | None``: the local folder the weights load from. Caches keyed
    by the base model (the reference log-probs) know a model by that folder's files; without one,
    nothing of the model is cached.
    """

    name: str
    prefix: str
    description: str = ""

    def load(self, name: str, options) -> tuple[Any, Any]:
        """(model, tokenizer) for ``name``; ``options`` has ``dtype``, ``device_type`` and ``precision``."""


@dataclass
class Document:
    """A passage to retrieve."""

    id: str
    text: str
    title: str = ""
    source: str = ""


@runtime_checkable
class Retriever(Protocol):
    """Builds and loads search indexes over Documents. An index has ``save(folder)`` and
    ``search(question, k) -> [(document position, score)]``, best first."""

    name: str
    description: str = ""

    def build(self, documents: list[Document]) -> Any: ...

    def load(self, folder: Path) -> Any: ...


@runtime_checkable
class Reward(Protocol):
    """A GRPO reward: ``reward(prompt, completion, record) -> float`` (``record`` holds the data
    record's other fields: chosen, rejected, aliases...). ``configure(options)`` returns the reward
    set up from the trainer's settings (the length reward reads ``length_band``)."""

    name: str

    def __call__(self, prompt: str, completion: str, record: dict) -> float: ...

    def configure(self, options) -> Reward:
        return self
