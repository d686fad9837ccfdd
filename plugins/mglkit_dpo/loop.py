"""The DPO training loop: plain PyTorch and accelerate, to be read top to bottom.

The reference model is the policy with its adapter disabled. Its log-probabilities are computed
once, before training (``precompute_ref``; shared out between processes and cached on disk, see
``reference.py``), and the reference forward never runs again.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import asdict, dataclass

import torch

from mglkit import StoppedError, TrainResult, UnusableInputError, peak_memory_mb, sharding
from mglkit.preference import micro_batches_per_epoch, steps_per_epoch, truncate_keep_prompt_end
from mglkit.refcache import timing

from . import engines
from .batches import Batches, MetricsWindow, model_batch, shares
from .checkpoints import load_checkpoint, save_checkpoint
from .losses import dpo_loss
from .reference import Reference, reference_logps

METRICS = (
    "loss",
    "rewards/chosen",
    "rewards/rejected",
    "rewards/accuracies",
    "rewards/margins",
    "logps/chosen",
    "logps/rejected",
)
MAX_BAD_STEPS = 3  # non-finite losses in a row before stopping


@dataclass
class LoopState:
    """Where the loop is. Saved as JSON in every checkpoint, so a resumed run continues exactly."""

    step: int = 0  # optimizer steps taken
    epoch: int = 0
    next_micro: int = 0  # the epoch's next micro-batch
    micro_batches: int = 0  # micro-batches trained on so far
    tokens: int = 0
    best_loss: float | None = None
    best_step: int | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self))


@dataclass
class Loop:
    """What the loop works with, set up once."""

    job: object
    accelerator: engines.Engine  # accelerate's interface over DDP, FSDP2 or DeepSpeed (engines.py)
    model: object
    optimizer: object
    scheduler: object
    train_set: list
    eval_set: list
    ref_train: Reference | None  # reference log-probs of (chosen, rejected), computed once
    ref_eval: Reference | None
    batches: Batches
    per_epoch: int  # micro-batches in an epoch
    epoch_steps: int  # optimizer steps in an epoch
    total: int
    start: float
    best_adapter: dict | None = None  # adapter tensors at the lowest eval loss so far


def train(job) -> TrainResult:
    loop = setup(job)
    state = LoopState()
    if job.resume_from is not None:
        state, loop.best_adapter = load_checkpoint(
            job.resume_from, loop.accelerator, loop.model, loop.optimizer, loop.scheduler, LoopState
        )
    try:
        run_loop(loop, state)
    except KeyboardInterrupt:  # the state is the last completed step's: --resume redoes the interrupted one
        loop.optimizer.zero_grad(set_to_none=True)
        folder = checkpoint(loop, state)
        raise StoppedError(
            f"interrupted at step {state.step}; state saved in {folder}",
            hint=f"continue with: mglkit train ... --output {job.run.dir} --resume",
        ) from None
    except torch.cuda.OutOfMemoryError:
        raise out_of_memory(job.config) from None
    engine, model = loop.accelerator, loop.accelerator.unwrap_model(loop.model)
    stats = engine.stats(loop.model)
    sharded = sharding.is_sharded(model)  # the main process loads the base again to write the outputs
    last = engine.adapter_state(loop.model) if sharded else None
    engine.wait_for_everyone()
    return TrainResult(
        model=None if sharded else model,
        last_adapter=last,
        best_adapter=loop.best_adapter,
        best_step=state.best_step,
        optimizer_steps=state.step,
        micro_steps=state.micro_batches,
        train_tokens=state.tokens,
        seconds=time.perf_counter() - loop.start,
        peak_memory_mb=peak_memory_mb(),
        is_main=engine.is_main_process,
        stats=stats | timing((r.seconds, r.reused) for r in (loop.ref_train, loop.ref_eval) if r is not None),
    )


def setup(job) -> Loop:
    cfg, opts = job.config, job.options
    start = time.perf_counter()  # the reference pass counts as training time, as in TRL
    accelerator = engines.start(job)  # DDP, FSDP2 or DeepSpeed, as the launcher's config asks
    world, model = accelerator.num_processes, accelerator.shard(policy(job))
    train_set = [truncate_keep_prompt_end(p, cfg.max_length)[0] for p in job.train]
    eval_set = [truncate_keep_prompt_end(p, cfg.max_length)[0] for p in job.eval]
    # 1. The plan: one count of steps per epoch, shared with `mglkit train --dry-run`.
    per_epoch = micro_batches_per_epoch(len(train_set), cfg.batch_size, world)
    epoch_steps = steps_per_epoch(len(train_set), cfg.batch_size, cfg.grad_accum, world)
    if per_epoch == 0:  # the loop would have nothing to do, forever
        raise UnusableInputError(
            f"{len(train_set)} training pairs make no batch for {world} processes",
            hint="lower --batch-size or the number of processes",
        )
    total = cfg.max_steps or math.ceil(cfg.epochs * epoch_steps)
    optimizer, scheduler = optimizer_and_schedule(model, cfg, total)
    model, optimizer = accelerator.prepare(model, optimizer)
    # 2. Reference log-probabilities, once, through the engine's model (sharded where it shards).
    ref = accelerator.unwrap_model(model)
    ref_train = reference_logps(ref, train_set, job, accelerator, "train") if opts.precompute_ref else None
    ref_eval = reference_logps(ref, eval_set, job, accelerator, "eval") if eval_set else None
    batches = Batches(train_set, cfg.batch_size, world, accelerator.process_index, cfg.seed, opts.group_by_length)
    job.run.start(total_steps=total, steps_per_epoch=epoch_steps)
    return Loop(
        job,
        accelerator,
        model,
        optimizer,
        scheduler,
        train_set,
        eval_set,
        ref_train,
        ref_eval,
        batches,
        per_epoch,
        epoch_steps,
        total,
        start,
    )


def run_loop(loop: Loop, state: LoopState) -> None:
    cfg, run = loop.job.config, loop.job.run
    window, bad_steps = MetricsWindow(), 0
    loop.model.train()
    while state.step < loop.total:
        # 3. One optimizer step: up to grad_accum micro-batches, never across an epoch's end.
        batches, after = loop.batches.for_step(state.epoch, state.next_micro, cfg.grad_accum, loop.per_epoch)
        metrics, tokens = accumulate(loop, batches)
        # 4. A non-finite loss skips the update; a few in a row stop the run, with a checkpoint.
        if not math.isfinite(metrics["loss"]):
            loop.optimizer.zero_grad(set_to_none=True)
            state.epoch, state.next_micro = after
            bad_steps += 1
            run.note(f"step {state.step + 1}: non-finite loss, update skipped")
            if bad_steps >= MAX_BAD_STEPS:
                raise StoppedError(
                    f"the loss was NaN or infinite for {bad_steps} steps in a row; stopped. "
                    f"Last good state saved in {checkpoint(loop, state)}",
                    hint="lower --learning-rate, or use --precision bf16/fp32 instead of fp16",
                )
            continue
        bad_steps = 0
        metrics |= update(loop)
        state.step, (state.epoch, state.next_micro) = state.step + 1, after
        state.micro_batches += len(batches)
        state.tokens += tokens
        # 5. Log (averaged over --logging-steps), evaluate and keep the best adapter, checkpoint.
        window.add(metrics)
        if state.step % cfg.logging_steps == 0 or state.step == loop.total:
            elapsed = time.perf_counter() - loop.start
            run.log(
                state.step,
                window.mean()
                | {
                    "epoch": state.epoch + state.next_micro / loop.per_epoch,
                    "num_tokens": state.tokens,
                    "tokens_per_second": state.tokens / elapsed,
                },
            )
        if loop.eval_set and (state.step % (cfg.eval_steps or loop.epoch_steps) == 0 or state.step == loop.total):
            evaluate_and_keep_best(loop, state)
        if state.step % (cfg.save_steps or loop.epoch_steps) == 0 and state.step < loop.total:
            checkpoint(loop, state)


def accumulate(loop: Loop, batches: list[list[int]]) -> tuple[dict, int]:
    """Forward and backward each micro-batch (gradients synchronised on the last); the step's metrics."""
    parts, tokens, accelerator = [], 0, loop.accelerator
    pad, opts = loop.job.tokenizer.pad_token_id, loop.job.options
    for i, indices in enumerate(batches):
        with contextlib.nullcontext() if i == len(batches) - 1 else accelerator.no_sync(loop.model):
            loss, per_pair, n_tokens = forward(
                loop.model, loop.train_set, indices, loop.ref_train, pad, opts, accelerator
            )
            accelerator.backward(loss / len(batches))
        parts.append(per_pair)
        tokens += accelerator.gather(n_tokens).sum().item()
    return pair_means(parts, accelerator), tokens


def update(loop: Loop) -> dict:
    """Clip, step the optimizer and the schedule; the gradient norm and the learning rate used."""
    learning_rate = loop.scheduler.get_last_lr()[0]
    grad_norm = loop.accelerator.step(loop.model, loop.optimizer, loop.job.config.max_grad_norm)
    loop.scheduler.step()
    loop.optimizer.zero_grad(set_to_none=True)
    return {"grad_norm": float(grad_norm), "learning_rate": learning_rate}


def evaluate_and_keep_best(loop: Loop, state: LoopState) -> None:
    job = loop.job
    result = evaluate(
        loop.model,
        loop.eval_set,
        loop.ref_eval,
        job.tokenizer.pad_token_id,
        job.options,
        job.config.batch_size,
        loop.accelerator,
    )
    job.run.log(state.step, result)
    if state.best_loss is None or result["eval_loss"] < state.best_loss:
        state.best_loss, state.best_step = result["eval_loss"], state.step
        loop.best_adapter = loop.accelerator.adapter_state(loop.model)


def policy(job):
    """The base model with a fresh LoRA adapter (the same initialisation as TRL's, from the seed)."""
    from peft import get_peft_model
    from transformers import set_seed

    set_seed(job.config.seed)
    model = get_peft_model(job.model, job.lora)
    if not job.config.keep_dropout:  # as TRL's disable_dropout
        for module in model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
    if job.config.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    return model


def optimizer_and_schedule(model, cfg, total: int):
    from transformers import get_scheduler

    decay = [p for n, p in model.named_parameters() if p.requires_grad and not n.endswith("bias")]
    no_decay = [p for n, p in model.named_parameters() if p.requires_grad and n.endswith("bias")]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    # no empty group: DeepSpeed drops them, and the schedule would then count one group too many
    optimizer = torch.optim.AdamW([g for g in groups if g["params"]], lr=cfg.learning_rate)
    return optimizer, get_scheduler(cfg.scheduler, optimizer, math.ceil(total * cfg.warmup_ratio), total)


def forward(model, pairs, indices, ref, pad, opts, accelerator):
    """The DPO loss of a micro-batch (chosen and rejected through one forward), per-pair metrics, tokens."""
    from mglkit.logprobs import completion_logps

    batch = model_batch(model, [pairs[i] for i in indices], pad, opts.padding_free, accelerator.device)
    with accelerator.autocast():
        logps, counts = completion_logps(model, **batch)
    chosen, rejected = logps.chunk(2)
    if ref is not None:
        ref_chosen, ref_rejected = ref[0][indices].to(chosen), ref[1][indices].to(chosen)
    else:
        with torch.no_grad(), accelerator.unwrap_model(model).disable_adapter(), accelerator.autocast():
            ref_chosen, ref_rejected = completion_logps(model, **batch)[0].chunk(2)
    losses, r_chosen, r_rejected = dpo_loss(
        opts.loss, opts.beta, opts.label_smoothing, chosen, rejected, ref_chosen, ref_rejected, *counts.chunk(2)
    )
    per_pair = {
        "loss": losses.detach(),
        "rewards/chosen": r_chosen,
        "rewards/rejected": r_rejected,
        "rewards/accuracies": (r_chosen > r_rejected).float(),
        "rewards/margins": r_chosen - r_rejected,
        "logps/chosen": chosen.detach(),
        "logps/rejected": rejected.detach(),
    }
    return losses.mean(), per_pair, batch["attention_mask"].sum()


def pair_means(parts: list[dict], accelerator) -> dict:
    """Means over every pair of every process (shares may differ in size: sum, then divide)."""
    sums = torch.stack([torch.cat([p[k].float() for p in parts]).sum() for k in METRICS])
    count = torch.tensor([float(sum(len(p["loss"]) for p in parts))], device=sums.device)
    totals = accelerator.reduce(torch.cat([sums, count]), reduction="sum")
    return {k: (totals[i] / totals[-1]).item() for i, k in enumerate(METRICS)}


def evaluate(model, eval_set, ref_eval, pad, opts, batch_size: int, accelerator) -> dict:
    model.eval()
    parts, rank, world = [], accelerator.process_index, accelerator.num_processes
    with torch.no_grad():
        for first, real in shares(len(eval_set), batch_size, rank, world):  # as many forwards on every process
            indices = list(range(first, min(first + batch_size, len(eval_set))))
            per_pair = forward(model, eval_set, indices, ref_eval, pad, opts, accelerator)[1]
            if real:
                parts.append(per_pair)
    if not parts:  # more processes than eval batches: contribute nothing, but join the reduce
        parts = [{k: torch.zeros(0, device=accelerator.device) for k in METRICS}]
    model.train()
    return {f"eval_{k}": v for k, v in pair_means(parts, accelerator).items()}


def checkpoint(loop: Loop, state: LoopState):
    """Every process gives its share (the adapter and optimizer state, gathered whole); the main one writes."""
    folder, engine = loop.job.run.checkpoints / f"step-{state.step}", loop.accelerator
    adapter, optimizer = engine.trainable_state(loop.model), engine.optimizer_state(loop.model, loop.optimizer)
    if engine.is_main_process:
        model = engine.unwrap_model(loop.model)
        saved = (adapter, optimizer, loop.scheduler, loop.best_adapter, engine.describe())
        save_checkpoint(folder, model, *saved, state.to_json())
    engine.wait_for_everyone()
    loop.job.run.checkpointed(state.step)
    return folder


def out_of_memory(cfg):
    from mglkit import MglkitError

    return MglkitError(
        "CUDA out of memory",
        hint=f"lower --batch-size (now {cfg.batch_size}) and raise --grad-accum to keep the effective batch; "
        f"lower --max-length (now {cfg.max_length}); add --gradient-checkpointing; "
        f"lower --lora-r (now {cfg.lora_r}); or load the base with --quantize 4bit",
    )
