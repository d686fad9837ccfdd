"""Our settings onto TRL's configs; TRL's logs into our run; the best adapter kept; checkpoints kept
pickle-free (TRL's ``training_args.bin`` becomes ``training_args.json``)."""

from __future__ import annotations

import time
from pathlib import Path

from transformers import PrinterCallback, TrainerCallback

from mglkit import MglkitError, StoppedError, TrainResult, UnusableInputError, distributed, peak_memory_mb

# what Trainer needs to resume exactly (a LoRA checkpoint)
RESUME_FILES = ("adapter_model.safetensors", "optimizer.pt", "scheduler.pt", "trainer_state.json", "rng_state.pth")


class Bridge(TrainerCallback):
    """Forwards TRL's logs to the run, keeps the adapter with the lowest eval loss, and replaces each
    checkpoint's pickled arguments with JSON."""

    def __init__(self, run):
        self.run = run
        self.best_loss = None
        self.best_step = None
        self.best_adapter = None
        self.tokens = 0
        self.micro_steps = 0

    def on_substep_end(self, args, state, control, **kwargs):
        self.micro_steps += 1

    def on_step_end(self, args, state, control, **kwargs):
        self.micro_steps += 1

    def on_train_begin(self, args, state, control, **kwargs):
        per_epoch = max(1, round(state.max_steps / max(1, state.num_train_epochs)))
        self.run.start(total_steps=state.max_steps, steps_per_epoch=per_epoch)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "train_runtime" not in logs:
            self.tokens = int(logs.get("num_tokens", self.tokens))
            self.run.log(state.global_step, logs)

    def on_evaluate(self, args, state, control, metrics=None, model=None, **kwargs):
        from peft import get_peft_model_state_dict

        loss = (metrics or {}).get("eval_loss")
        if loss is not None and (self.best_loss is None or loss < self.best_loss):
            self.best_loss, self.best_step = loss, state.global_step
            self.best_adapter = {k: v.detach().cpu().clone() for k, v in get_peft_model_state_dict(model).items()}

    def on_save(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        pickled = folder / "training_args.bin"
        if pickled.is_file():
            (folder / "training_args.json").write_text(args.to_json_string())
            pickled.unlink()
        self.run.checkpointed(state.global_step)


def shared_args(job) -> dict:
    """TrainingArguments both TRL trainers take from our settings the same way."""
    cfg = job.config
    saving = {"save_strategy": "steps", "save_steps": cfg.save_steps} if cfg.save_steps else {"save_strategy": "epoch"}
    return dict(
        output_dir=str(job.run.checkpoints),
        gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.learning_rate,
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps or -1,
        lr_scheduler_type=cfg.scheduler,
        warmup_steps=cfg.warmup_ratio,  # a float below 1 is a ratio of the total steps
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm if cfg.max_grad_norm is not None else 0.0,  # 0: Trainer does not clip
        optim="adamw_torch",
        disable_dropout=not cfg.keep_dropout,
        seed=cfg.seed,
        bf16=job.precision == "bf16",  # TRL 1.16 asks for bf16 by default, also on CPU
        fp16=job.precision == "fp16",
        use_cpu=job.device == "cpu",
        gradient_checkpointing=cfg.gradient_checkpointing,  # TRL's default is on
        logging_steps=cfg.logging_steps,
        save_total_limit=2,
        report_to=[],
        disable_tqdm=True,
        **saving,
    )


def check_resumable(folder: Path | None) -> None:
    if folder is None:
        return
    missing = [name for name in RESUME_FILES if not (folder / name).is_file()]
    if missing:
        raise UnusableInputError(
            f"checkpoint {folder} is incomplete: no {', '.join(missing)}",
            hint="delete it to resume from the one before, or train anew with --overwrite",
        )


def run(trainer, job, bridge, start: float, stats=None) -> TrainResult:
    """Train (or resume), turning Ctrl-C and CUDA out-of-memory into clear messages."""
    import torch

    trainer.remove_callback(PrinterCallback)  # our sinks print; TRL's printer would repeat every log
    engine = engine_stats(trainer.accelerator)
    distributed.check_engine(distributed.requested_engine(), engine["engine"], job.config.trainer)
    check_resumable(job.resume_from)
    try:
        trainer.train(resume_from_checkpoint=str(job.resume_from) if job.resume_from else None)
    except KeyboardInterrupt:
        trainer._save_checkpoint(trainer.model, trial=None)
        raise StoppedError(
            f"interrupted at step {trainer.state.global_step}; state saved in {job.run.checkpoints}",
            hint=f"continue with: mglkit train ... --output {job.run.dir} --resume",
        ) from None
    except torch.cuda.OutOfMemoryError:
        cfg = job.config
        raise MglkitError(
            "CUDA out of memory",
            hint=f"lower --batch-size (now {cfg.batch_size}) and raise --grad-accum; lower --max-length "
            f"(now {cfg.max_length}); add --gradient-checkpointing; lower --lora-r; or --quantize 4bit",
        ) from None
    return TrainResult(
        model=trainer.model,
        best_adapter=bridge.best_adapter,
        best_step=bridge.best_step,
        optimizer_steps=trainer.state.global_step,
        micro_steps=bridge.micro_steps,
        train_tokens=bridge.tokens,
        seconds=time.perf_counter() - start,
        peak_memory_mb=peak_memory_mb(),
        is_main=trainer.accelerator.is_main_process,
        stats=engine | (stats(bridge) if stats else {}),
    )


def engine_stats(accelerator) -> dict:
    """The engine accelerate runs TRL's trainer on, in mglkit's names, and its processes."""
    kind = accelerator.distributed_type.name
    engine = {"FSDP": "fsdp", "DEEPSPEED": "deepspeed", "NO": "none"}.get(kind, "ddp")
    return {"engine": engine, "world_size": accelerator.num_processes}


def train(job) -> TrainResult:
    from datasets import Dataset
    from trl import DPOConfig

    from mglkit.refcache import timing

    from .reference import cached_dpo_trainer

    cfg, opts = job.config, job.options
    every = {"eval_strategy": "no"}
    if job.eval:
        every = (
            {"eval_strategy": "steps", "eval_steps": cfg.eval_steps} if cfg.eval_steps else {"eval_strategy": "epoch"}
        )
    args = DPOConfig(
        **shared_args(job),
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size,
        beta=opts.beta,
        loss_type=[opts.loss],
        label_smoothing=opts.label_smoothing,
        max_length=cfg.max_length,
        truncation_mode="keep_start",
        precompute_ref_log_probs=opts.precompute_ref,
        torch_compile=cfg.compile,
        dataloader_num_workers=0,
        **every,
    )
    bridge = Bridge(job.run)
    start = time.perf_counter()  # TRL tokenizes and precomputes reference log-probs while constructing
    trainer = cached_dpo_trainer(
        job,
        model=job.model,
        args=args,
        train_dataset=Dataset.from_list(job.train_records),
        eval_dataset=Dataset.from_list(job.eval_records) if job.eval_records else None,
        processing_class=job.tokenizer,
        peft_config=job.lora,
        callbacks=[bridge],
    )
    return run(trainer, job, bridge, start, stats=lambda _: timing(trainer.mglkit_reference))
