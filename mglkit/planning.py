"""What a run will do: its data (validated pairs, or a trainer's prompts), the tokens each trainer
sees, and the plan (`mglkit train --dry-run` prints it; the run starts with it)."""

from __future__ import annotations

import dataclasses
import math
import os

from . import distributed
from .config import TrainConfig, ValidationConfig
from .errors import MglkitError, UnusableInputError
from .models import ModelOptions, lora_parameter_count
from .preference import cut_by_keep_start, rendered, steps_per_epoch, tokenize_pairs, truncate_keep_prompt_end
from .sources import SourceSpec, iter_pairs


def validated_pairs(data: SourceSpec | str | os.PathLike, skip_validation: bool = False) -> tuple[list, dict | None]:
    """The pairs of training data (any source), validated with the built-in rules as `mglkit validate`
    does (errors stop the run); and the validation summary that training_stats.json records."""
    spec = data if isinstance(data, SourceSpec) else SourceSpec(str(data))
    summary = None
    if not skip_validation:
        from .validation import validate_file

        report = validate_file(spec, ValidationConfig(), keep_findings=False)
        summary = report.summary()
        command = _validate_command(spec)
        if report.verdict == "unusable":
            raise UnusableInputError(f"{spec.name}: {report.first_error()}", hint=f"see `{command}`")
        if not report.ok:
            raise MglkitError(
                f"{spec.name} failed validation ({report.stats.errors} errors): {report.first_error()}",
                hint=f"see `{command}` (--out-clean writes the valid pairs), or --skip-validation",
            )
    return list(iter_pairs(spec)), summary


def _validate_command(spec: SourceSpec) -> str:
    """`mglkit validate` of the same data, with its split, subset and column mapping."""
    options = {"--split": spec.split, "--subset": spec.subset}
    options["--columns"] = ",".join(f"{k}={v}" for k, v in spec.columns.items()) if spec.columns else None
    return " ".join(["mglkit validate", spec.name] + [f"{k} {v}" for k, v in options.items() if v])


def records(trainer, options, config: TrainConfig, data: SourceSpec) -> tuple[list, dict | None]:
    if trainer.inputs == "prompts":
        return trainer.prompt_records(data, options, config), None
    return validated_pairs(data, config.skip_validation)


@dataclasses.dataclass
class Data:
    train: list  # TokenizedPair (pairs trainers) or nothing
    eval: list
    train_records: list[dict]
    eval_records: list[dict]
    lengths: list[int]  # tokens per training example, for the plan
    cut: int  # examples the trainer's truncation will shorten
    samples: list[tuple[str, str]]  # (question, reference) for the sample generations


def tokenized(trainer, config, tokenizer, fmt, train_items, eval_items) -> Data:
    if trainer.inputs == "prompts":  # prompt trainers sample their own answers
        train_records = [{**r, "prompt": fmt.render(tokenizer, r["question"])} for r in train_items]
        eval_records = [{**r, "prompt": fmt.render(tokenizer, r["question"])} for r in eval_items]
        lengths = [len(tokenizer(r["prompt"])["input_ids"]) + config.max_new_tokens for r in train_records]
        samples = [(r["question"], r.get("chosen") or r.get("reference", "")) for r in eval_items or train_items]
        return Data([], [], train_records, eval_records, lengths, 0, samples)
    train_tok = tokenize_pairs(train_items, tokenizer, fmt)
    eval_tok = tokenize_pairs(eval_items, tokenizer, fmt)
    if trainer.truncation == "keep-start":
        cut = sum(cut_by_keep_start(p, config.max_length) for p in train_tok + eval_tok)
    else:
        cut = sum(truncate_keep_prompt_end(p, config.max_length)[1] for p in train_tok + eval_tok)
    lengths = [len(p.prompt_ids) * 2 + len(p.chosen_ids) + len(p.rejected_ids) for p in train_tok]
    samples = [(p.prompt, p.chosen) for p in eval_items or train_items]
    return Data(
        train_tok,
        eval_tok,
        rendered(train_items, tokenizer, fmt),
        rendered(eval_items, tokenizer, fmt),
        lengths,
        cut,
        samples,
    )


def make_plan(config: TrainConfig, trainer, data: Data, model, options: ModelOptions) -> dict:
    """What a run will do, and a rough memory estimate (weights + LoRA optimizer + activations)."""
    trainable, total = lora_parameter_count(model, config)
    world = distributed.world_size()
    n_train = len(data.train_records)
    per_epoch = steps_per_epoch(n_train, config.batch_size, config.grad_accum, world)
    steps = config.max_steps if config.max_steps else math.ceil(config.epochs * per_epoch)
    bytes_per = {"fp32": 4, "fp16": 2, "bf16": 2}[options.resolved_precision]
    weights = total * (0.55 if config.quantize == "4bit" else bytes_per)
    lora_state = trainable * 16  # fp32 weight, gradient and two Adam moments
    length = min(config.max_length, max(data.lengths, default=0))
    layers = model.config.num_hidden_layers
    activations = 2 * config.batch_size * length * model.config.hidden_size * layers * 34 * bytes_per / 2
    if config.gradient_checkpointing:
        activations /= layers
    return {
        "base_model": config.base,
        "trainer": config.trainer,
        "pairs": n_train + len(data.eval_records),
        "train_pairs": n_train,
        "eval_pairs": len(data.eval_records),
        "train_tokens_per_epoch": sum(data.lengths),
        "truncated_pairs": data.cut,
        "steps_per_epoch": per_epoch,
        "optimizer_steps": steps if per_epoch else 0,
        "effective_batch": config.batch_size * world * config.grad_accum,
        "trainable_parameters": trainable,
        "total_parameters": total,
        "trainable_percent": 100 * trainable / total,
        "precision": options.resolved_precision,
        "memory_estimate_gb": round((weights + lora_state + activations) / 2**30, 2),
    }


def plan_lines(plan: dict) -> list[str]:
    return [
        f"base model: {plan['base_model']} ({plan['precision']}), trainer: {plan['trainer']}",
        f"pairs: {plan['train_pairs']} train / {plan['eval_pairs']} eval; "
        f"{plan['truncated_pairs']} truncated to --max-length",
        f"trainable parameters: {plan['trainable_parameters']:,} of {plan['total_parameters']:,} "
        f"({plan['trainable_percent']:.3f}%)",
        f"optimizer steps: {plan['optimizer_steps']} (effective batch {plan['effective_batch']}), "
        f"memory estimate: {plan['memory_estimate_gb']} GB",
    ]
