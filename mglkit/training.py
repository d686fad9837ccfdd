"""The training pipeline: config -> validate -> split -> model -> trainer plugin -> outputs."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import __version__
from .config import TrainConfig, ValidationConfig
from .errors import ConfigError, MglkitError
from .models import ModelOptions, PromptFormat, generate, load_model, lora_config, lora_parameter_count
from .pairs import load_pairs
from .preference import (
    cut_by_keep_start,
    rendered,
    split_train_eval,
    tokenize_pairs,
    truncate_keep_prompt_end,
)
from .resources import resolve_data_path

log = logging.getLogger("mglkit.train")
SAMPLE_SEED = 0


@dataclass
class TrainResult:
    """What a trainer plugin returns."""

    model: Any  # the PeftModel, with the last weights
    best_adapter: dict | None  # adapter tensors at the best eval loss, when evaluation ran
    best_step: int | None
    optimizer_steps: int
    micro_steps: int
    train_tokens: int
    seconds: float
    peak_memory_mb: float
    is_main: bool = True


@dataclass
class TrainJob:
    """What a trainer plugin receives: everything is loaded, tokenized and decided already."""

    config: TrainConfig
    model: Any  # the base model, without an adapter
    tokenizer: Any
    lora: Any  # peft.LoraConfig
    train: list  # TokenizedPair, untruncated: each trainer truncates by its documented rule
    eval: list
    train_records: list[dict]  # the same pairs as text with the prompt format applied (for TRL)
    eval_records: list[dict]
    run: Run
    precision: str  # fp32, fp16, bf16
    device: str
    resume_from: Path | None = None
    facts_data: bool = False  # prompt trainers: the records come from a facts file (question, aliases)


class Run:
    """A training run's folder, logs and metrics sinks (the ``log_metrics`` hook)."""

    def __init__(self, directory: Path, config: TrainConfig, pm, is_main: bool = True):
        self.dir = directory
        self.logs = directory / "training_logs"
        self.checkpoints = directory / "checkpoints"
        self.config = config
        self.report_to = set(config.report_to)
        self.pm = pm
        self.is_main = is_main
        self.history: list[dict] = []
        self.total_steps = 0
        self.steps_per_epoch = 0
        self.sinks: dict[str, Any] = {}  # state kept by metrics sinks between calls

    def start(self, total_steps: int, steps_per_epoch: int) -> None:
        self.total_steps, self.steps_per_epoch = total_steps, steps_per_epoch
        self.note(f"training: {total_steps} optimizer steps ({steps_per_epoch} per epoch)")

    def log(self, step: int, metrics: dict) -> None:
        if not self.is_main:
            return
        metrics = {k: v for k, v in metrics.items() if isinstance(v, int | float)}
        self.history.append({"step": step, **metrics})
        log.info("step %d: %s", step, ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
        self.pm.hook.log_metrics(run=self, step=step, metrics=metrics)

    def note(self, message: str) -> None:
        if self.is_main:
            log.info(message)
            progress = self.sinks.get("progress")
            if progress is not None:
                progress.note(message)

    def rewind_metrics(self, step: int) -> None:
        """On resume, forget what was logged after the checkpoint: it will be logged again."""
        path = self.logs / "metrics.jsonl"
        if path.is_file():
            kept = [line for line in path.read_text().splitlines() if json.loads(line)["step"] <= step]
            path.write_text("".join(line + "\n" for line in kept))
            self.history = [json.loads(line) for line in kept]


def checkpoint_dirs(folder: Path) -> list[Path]:
    """Complete checkpoints (``step-N``), oldest first."""
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if p.is_dir() and p.name.startswith(("step-", "checkpoint-"))]
    found = [p for p in found if p.name.split("-")[-1].isdigit()]
    return sorted(found, key=lambda p: int(p.name.split("-")[-1]))


def peak_memory_mb() -> float:
    import resource

    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def get_trainer(name: str, pm):
    trainers = pm.collect("register_trainers")
    if name not in trainers:
        raise ConfigError(f"unknown trainer '{name}'", hint="installed: " + ", ".join(sorted(trainers)))
    return trainers[name].obj


def _validated_pairs(config: TrainConfig, path: Path) -> list:
    if not config.skip_validation:
        from .validation import validate_file

        report = validate_file(path, ValidationConfig(), keep_findings=True)
        if not report.ok:
            errors = [f for f in report.findings if f.severity == "error"]
            first = "; ".join(f"line {f.line}: {f.rule}: {f.message}" for f in errors[:3])
            raise MglkitError(
                f"{path} failed validation ({report.stats.errors} errors): {first}",
                hint=f"see `mglkit validate {path}` (--out-clean writes the valid pairs), or --skip-validation",
            )
    return list(load_pairs(path))


def _prompt_records(config: TrainConfig, path: Path) -> tuple[list[dict], bool]:
    """Records for prompt-only trainers: a facts file (question, choices, answer, aliases) or a pair
    file (validated as for DPO). Every record gets ``question``; the other fields stay for rewards."""
    import orjson

    with open(path, "rb") as handle:
        first = next((line for line in handle if line.strip()), b"")
    try:
        facts_data = "question" in orjson.loads(first)
    except orjson.JSONDecodeError:
        facts_data = False
    if not facts_data:
        pairs = _validated_pairs(config, path)
        records = [{"question": p.prompt, "chosen": p.chosen, "rejected": p.rejected, **_flat(p.extra)} for p in pairs]
        return records, False
    records = []
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            record = orjson.loads(line)
            question, aliases = record.get("question"), record.get("aliases")
            if not isinstance(question, str) or not question.strip():
                raise MglkitError(f"{path}, line {number}, field 'question': missing or empty")
            if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
                raise MglkitError(f"{path}, line {number}, field 'aliases': expected a list of strings")
            choices, answer = record.get("choices") or [], record.get("answer")
            reference = choices[answer] if isinstance(answer, int) and 0 <= answer < len(choices) else aliases[0]
            records.append({"question": question, "aliases": aliases, "reference": reference,
                            "id": str(record.get("id", number)), "period": str(record.get("period", ""))})  # fmt: skip
    return records, True


def _flat(extra: dict) -> dict:
    return {k: v for k, v in extra.items() if isinstance(v, str)}


def _resume_point(config: TrainConfig, output: Path) -> Path | None:
    if config.resume is None:
        return None
    folder = Path(config.resume) if config.resume not in ("", "auto") else output
    points = checkpoint_dirs(folder / "checkpoints") or checkpoint_dirs(folder)
    if not points:
        raise ConfigError(f"--resume {folder}: not a run with checkpoints", hint="give the --output folder of a run")
    return points[-1]


def _prepare_output(config: TrainConfig, overwrite: bool) -> Path:
    output = Path(config.output)
    if not _is_main_process():  # the main process checks and clears; the others only write under it
        return output
    if output.exists() and not output.is_dir():
        raise ConfigError(f"--output {output} is a file", hint="give a folder")
    if config.resume is None and output.is_dir() and any(output.iterdir()):
        if not overwrite:
            raise ConfigError(f"--output {output} is not empty", hint="add --overwrite, or --resume to continue it")
        shutil.rmtree(output)
    return output


def train(config: TrainConfig, pm=None, overwrite: bool = False, progress=None) -> dict:
    """Run a training job; returns the training statistics (also in training_stats.json)."""
    from .plugins import get_plugin_manager

    pm = pm or get_plugin_manager()
    trainer = get_trainer(config.trainer, pm)
    data_path = resolve_data_path(config.dataset)
    if config.loss not in ("sigmoid", "ipo", "hinge", "robust"):
        raise ConfigError(f"unknown --loss {config.loss}", hint="sigmoid, ipo, hinge or robust")
    prompts_only = getattr(trainer, "inputs", "pairs") == "prompts"
    if prompts_only:  # GRPO-style trainers sample their own answers: prompts and their records
        records, facts_data = _prompt_records(config, data_path)
    else:
        records, facts_data = _validated_pairs(config, data_path), False
    train_items, eval_items = split_train_eval(records, config.eval_split, config.seed)
    options = ModelOptions(config.precision, trust_remote_code=config.trust_remote_code, quantize=config.quantize)
    model, tokenizer = load_model(config.base, options, pm)
    fmt = PromptFormat(chat_template=config.chat_template and bool(tokenizer.chat_template))
    trainable, total = lora_parameter_count(model, config)
    if prompts_only:
        train_tok, eval_tok, cut = [], [], 0
        train_records = [{**r, "prompt": fmt.render(tokenizer, r["question"])} for r in train_items]
        eval_records = [{**r, "prompt": fmt.render(tokenizer, r["question"])} for r in eval_items]
        lengths = [len(tokenizer(r["prompt"])["input_ids"]) + config.max_new_tokens for r in train_records]
        samples = [(r["question"], r.get("chosen") or r.get("reference", "")) for r in eval_items or train_items]
    else:
        train_tok = tokenize_pairs(train_items, tokenizer, fmt)
        eval_tok = tokenize_pairs(eval_items, tokenizer, fmt)
        train_records, eval_records = rendered(train_items, tokenizer, fmt), rendered(eval_items, tokenizer, fmt)
        keep_start = getattr(trainer, "truncation", "prompt-left") == "keep-start"
        cut = sum(
            cut_by_keep_start(p, config.max_length) if keep_start else truncate_keep_prompt_end(p, config.max_length)[1]
            for p in train_tok + eval_tok
        )
        lengths = [len(p.prompt_ids) * 2 + len(p.chosen_ids) + len(p.rejected_ids) for p in train_tok]
        samples = [(p.prompt, p.chosen) for p in eval_items or train_items]
    plan = _plan(config, len(train_items), len(eval_items), lengths, trainable, total, options, cut, model)
    if config.dry_run:
        return plan
    output = _prepare_output(config, overwrite)
    resume_from = _resume_point(config, output)
    run = Run(output, config, pm, is_main=_is_main_process())
    if run.is_main:
        run.logs.mkdir(parents=True, exist_ok=True)
    handler = _file_log(run) if run.is_main else None
    run.sinks["progress"] = progress
    try:
        for line in _plan_lines(plan):
            run.note(line)
        if resume_from is not None:
            run.rewind_metrics(int(resume_from.name.split("-")[-1]))
        job = TrainJob(
            config=config, model=model, tokenizer=tokenizer, lora=lora_config(config),
            train=train_tok, eval=eval_tok, train_records=train_records, eval_records=eval_records,
            run=run, precision=options.resolved_precision, device=options.device_type, resume_from=resume_from,
            facts_data=facts_data,
        )  # fmt: skip
        result = trainer.train(job)
        if not result.is_main:
            return {}
        return _write_outputs(run, config, result, tokenizer, fmt, plan, data_path, samples, pm)
    finally:
        if handler is not None:
            log.removeHandler(handler)
            handler.close()


def _is_main_process() -> bool:
    import os

    return int(os.environ.get("RANK", "0")) == 0


def _file_log(run: Run) -> logging.Handler:
    handler = logging.FileHandler(run.logs / "training.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    return handler


def _plan(config, n_train, n_eval, lengths, trainable, total, options, cut, model) -> dict:
    """What a run will do, and a rough memory estimate (weights + LoRA optimizer + activations)."""
    import os

    world = int(os.environ.get("WORLD_SIZE", "1"))
    global_batch = config.batch_size * world
    micro = math.ceil(n_train / global_batch)
    per_epoch = max(1, math.ceil(micro / config.grad_accum))
    steps = config.max_steps if config.max_steps > 0 else math.ceil(config.epochs * per_epoch)
    tokens = sum(lengths)
    bytes_per = {"fp32": 4, "fp16": 2, "bf16": 2}[options.resolved_precision]
    weights = total * (0.55 if config.quantize == "4bit" else bytes_per)
    lora_state = trainable * 16  # fp32 weight, gradient and two Adam moments
    hidden = model.config.hidden_size
    layers = model.config.num_hidden_layers
    length = min(config.max_length, max(lengths, default=0))
    activations = 2 * config.batch_size * length * hidden * layers * 34 * bytes_per / 2
    if config.gradient_checkpointing:
        activations /= layers
    return {
        "base_model": config.base,
        "trainer": config.trainer,
        "pairs": n_train + n_eval,
        "train_pairs": n_train,
        "eval_pairs": n_eval,
        "train_tokens_per_epoch": tokens,
        "truncated_pairs": cut,
        "optimizer_steps": steps,
        "micro_steps": micro * math.ceil(steps / per_epoch) if config.max_steps <= 0 else steps * config.grad_accum,
        "effective_batch": global_batch * config.grad_accum,
        "trainable_parameters": trainable,
        "total_parameters": total,
        "trainable_percent": 100 * trainable / total,
        "precision": options.resolved_precision,
        "memory_estimate_gb": round((weights + lora_state + activations) / 2**30, 2),
    }


def _plan_lines(plan: dict) -> list[str]:
    return [
        f"base model: {plan['base_model']} ({plan['precision']}), trainer: {plan['trainer']}",
        f"pairs: {plan['train_pairs']} train / {plan['eval_pairs']} eval; "
        f"{plan['truncated_pairs']} truncated to --max-length",
        f"trainable parameters: {plan['trainable_parameters']:,} of {plan['total_parameters']:,} "
        f"({plan['trainable_percent']:.3f}%)",
        f"optimizer steps: {plan['optimizer_steps']} (effective batch {plan['effective_batch']}), "
        f"memory estimate: {plan['memory_estimate_gb']} GB",
    ]


def _save_adapter(model, folder: Path, tokenizer, state: dict | None = None) -> None:
    """Adapter weights (safetensors), config and tokenizer, written whole or not at all."""
    from peft import set_peft_model_state_dict

    if state is not None:
        set_peft_model_state_dict(model, state)
    tmp = folder.with_name(f".{folder.name}.tmp") if folder.name else folder / ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    folder.mkdir(parents=True, exist_ok=True)
    for item in tmp.iterdir():
        item.replace(folder / item.name)
    tmp.rmdir()


def _write_outputs(run, config, result, tokenizer, fmt, plan, data_path, samples, pm) -> dict:
    from .atomic import atomic_writer
    from .pairs import write_jsonl

    model = result.model
    _save_adapter(model, run.dir / "last", tokenizer)
    _save_adapter(model, run.dir, tokenizer, result.best_adapter)  # the best by eval loss, else the last
    train_logs = [h for h in run.history if "loss" in h]
    rewards = [h["reward"] for h in train_logs if "reward" in h]  # GRPO: the mean total reward of a step
    evals = [h for h in run.history if "eval_loss" in h]
    at_best = next((h for h in evals if h["step"] == result.best_step), evals[-1] if evals else None)
    samples = samples[: config.samples]
    answers = generate(model, tokenizer, [q for q, _ in samples], fmt, config.max_new_tokens, seed=SAMPLE_SEED)
    write_jsonl(
        ({"prompt": q, "generation": a, "reference": ref} for (q, ref), a in zip(samples, answers, strict=True)),
        run.logs / "sample_generations.jsonl",
    )
    adapter_file = run.dir / "adapter_model.safetensors"
    stats = {
        "base_model": config.base,
        "total_samples": plan["pairs"],
        "train_samples": plan["train_pairs"],
        "test_samples": plan["eval_pairs"],
        "epochs": config.epochs,
        "total_steps": result.optimizer_steps,
        "micro_steps": result.micro_steps,
        "avg_loss": sum(h["loss"] for h in train_logs) / len(train_logs) if train_logs else None,
        "mean_reward": at_best["eval_rewards/margins"] if at_best else _last_quarter_mean(rewards),
        "validation_accuracy": at_best["eval_rewards/accuracies"] if at_best else None,
        "eval_loss": at_best["eval_loss"] if at_best else None,
        "best_step": result.best_step,
        "training_time": round(result.seconds, 2),
        "model_size_mb": round(adapter_file.stat().st_size / 2**20, 3),
        "trainer": config.trainer,
        "trainable_parameters": plan["trainable_parameters"],
        "total_parameters": plan["total_parameters"],
        "trainable_percent": plan["trainable_percent"],
        "train_tokens": result.train_tokens,
        "tokens_per_second": result.train_tokens / result.seconds if result.seconds else None,
        "peak_memory_mb": round(result.peak_memory_mb, 1),
        "truncated_pairs": plan["truncated_pairs"],
        "final_train": train_logs[-1] if train_logs else None,
    }
    benchmarks = None
    if config.eval_suite:
        from .evaluation import evaluate

        run.note(f"evaluating base vs adapter on {config.eval_suite}")
        report = evaluate(
            config.eval_suite, config.base, model=model, tokenizer=tokenizer, fmt=fmt, seed=config.seed, pm=pm
        )
        stats["benchmarks"] = report.to_dict()
        benchmarks = report.markdown()
    args = {
        "mglkit_version": __version__,
        "config": dataclasses.asdict(config),
        "prompt_format": fmt.to_dict(),
        "dataset_sha256": _sha256(data_path),
        "dataset_path": str(data_path),
    }
    with atomic_writer(run.dir / "training_args.json", "w") as out:
        json.dump(args, out, indent=2, ensure_ascii=False)
    with atomic_writer(run.logs / "training_stats.json", "w") as out:
        json.dump(stats, out, indent=2, ensure_ascii=False)
    with atomic_writer(run.dir / "README.md", "w") as out:
        out.write(model_card(config, stats, args, benchmarks))
    run.note(f"saved the adapter to {run.dir} (last weights in {run.dir / 'last'})")
    return stats


def _last_quarter_mean(values: list[float]) -> float | None:
    if not values:
        return None
    tail = values[-max(1, len(values) // 4) :]
    return sum(tail) / len(tail)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=Path(__file__).parent
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _versions() -> dict:
    import importlib.metadata

    names = ("torch", "transformers", "peft", "trl", "accelerate")
    found = {}
    for name in names:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return {"mglkit": __version__, **found}


def model_card(config: TrainConfig, stats: dict, args: dict, benchmarks: str | None = None) -> str:
    def fmt(value):
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    rows = "\n".join(f"| `{k}` | {fmt(v)} |" for k, v in dataclasses.asdict(config).items())
    metrics = "\n".join(f"| {k} | {fmt(v)} |" for k, v in stats.items() if not isinstance(v, dict))
    versions = ", ".join(f"{k} {v}" for k, v in _versions().items())
    bench_section = f"\n## Benchmarks (`{config.eval_suite}`)\n\n{benchmarks}\n" if benchmarks else ""
    if "reward" in (stats.get("final_train") or {}):  # a GRPO run
        method = (f"GRPO, rewards {config.rewards or 'by data'}, {config.num_generations} answers per prompt, "
                  f"KL coefficient {config.kl_coef}")  # fmt: skip
    else:
        method = f"DPO, `{config.loss}` loss, beta {config.beta}"
    commit = _git_commit()
    return f"""---
base_model: {config.base}
library_name: peft
language: [mn]
tags: [mglkit, dpo, lora, mongolian, history]
---

# LoRA adapter: {Path(config.output).name}

A LoRA adapter for `{config.base}`, trained with mglkit's `{config.trainer}` trainer ({method})
on Mongolian-history data.

- Data: `{args["dataset_path"]}` (sha256 `{args["dataset_sha256"]}`), {stats["train_samples"]} training
  and {stats["test_samples"]} evaluation pairs.
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
