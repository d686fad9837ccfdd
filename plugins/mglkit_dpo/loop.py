"""The DPO training loop: plain PyTorch and accelerate, to be read top to bottom.

The reference model is the policy with its adapter disabled. Its log-probabilities are computed
once, before training (``precompute_ref``), and the reference forward never runs again.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import asdict, dataclass

import torch
from accelerate import Accelerator

from mglkit import StoppedError, TrainResult, UnusableInputError, peak_memory_mb
from mglkit.preference import collate, micro_batches_per_epoch, steps_per_epoch, truncate_keep_prompt_end

from .checkpoints import load_checkpoint, save_checkpoint
from .losses import dpo_loss

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


def train(job) -> TrainResult:
    cfg, opts, run = job.config, job.options, job.run
    start = time.perf_counter()  # the reference pass counts as training time, as in TRL
    precision = {"fp32": "no", "fp16": "fp16", "bf16": "bf16"}[job.precision]
    accelerator = Accelerator(mixed_precision=precision, cpu=job.device == "cpu")
    world = accelerator.num_processes
    model = policy(job)
    train_set = [truncate_keep_prompt_end(p, cfg.max_length)[0] for p in job.train]
    eval_set = [truncate_keep_prompt_end(p, cfg.max_length)[0] for p in job.eval]
    pad = job.tokenizer.pad_token_id

    # 1. Reference log-probabilities, once.
    model.to(accelerator.device)
    ref_train = reference_logps(model, train_set, pad, cfg.batch_size, accelerator) if opts.precompute_ref else None
    ref_eval = reference_logps(model, eval_set, pad, cfg.batch_size, accelerator) if eval_set else None

    # 2. The plan: one count of steps per epoch, shared with `mglkit train --dry-run`.
    per_epoch = micro_batches_per_epoch(len(train_set), cfg.batch_size, world)
    epoch_steps = steps_per_epoch(len(train_set), cfg.batch_size, cfg.grad_accum, world)
    if per_epoch == 0:
        raise UnusableInputError(
            f"{len(train_set)} training pairs make no batch for {world} processes",
            hint="lower --batch-size or the number of processes",
        )
    total = cfg.max_steps or math.ceil(cfg.epochs * epoch_steps)
    optimizer, scheduler = optimizer_and_schedule(model, cfg, total)
    model, optimizer = accelerator.prepare(model, optimizer)
    run.start(total_steps=total, steps_per_epoch=epoch_steps)

    state, best_adapter = LoopState(), None
    if job.resume_from is not None:
        state, best_adapter = load_checkpoint(
            job.resume_from, accelerator.unwrap_model(model), optimizer, scheduler, LoopState
        )
    batches = Batches(train_set, cfg.batch_size, world, accelerator.process_index, cfg.seed, opts.group_by_length)
    window = MetricsWindow()
    bad_steps = 0
    model.train()
    try:
        while state.step < total:
            # 3. One optimizer step: up to grad_accum micro-batches, never across an epoch's end.
            step_batches, after = batches.for_step(state.epoch, state.next_micro, cfg.grad_accum, per_epoch)
            parts, tokens = [], 0
            for i, indices in enumerate(step_batches):
                last = i == len(step_batches) - 1
                with contextlib.nullcontext() if last else accelerator.no_sync(model):
                    loss, per_pair, n_tokens = forward(model, train_set, indices, ref_train, pad, opts, accelerator)
                    accelerator.backward(loss / len(step_batches))
                parts.append(per_pair)
                tokens += accelerator.gather(n_tokens).sum().item()
            metrics = pair_means(parts, accelerator)

            # 4. A non-finite loss skips the update; a few in a row stop the run, with a checkpoint.
            if not math.isfinite(metrics["loss"]):
                optimizer.zero_grad(set_to_none=True)
                state.epoch, state.next_micro = after
                bad_steps += 1
                run.note(f"step {state.step + 1}: non-finite loss, update skipped")
                if bad_steps >= MAX_BAD_STEPS:
                    folder = checkpoint(run, state, accelerator, model, optimizer, scheduler, best_adapter)
                    raise StoppedError(
                        f"the loss was NaN or infinite for {bad_steps} steps in a row; stopped. "
                        f"Last good state saved in {folder}",
                        hint="lower --learning-rate, or use --precision bf16/fp32 instead of fp16",
                    )
                continue
            bad_steps = 0
            clip = cfg.max_grad_norm if cfg.max_grad_norm is not None else math.inf
            grad_norm = accelerator.clip_grad_norm_(model.parameters(), clip)
            metrics.update(grad_norm=float(grad_norm), learning_rate=scheduler.get_last_lr()[0])
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            state.step += 1
            state.epoch, state.next_micro = after
            state.micro_batches += len(step_batches)
            state.tokens += tokens

            # 5. Log (averaged over --logging-steps), evaluate and keep the best adapter, checkpoint.
            window.add(metrics)
            if state.step % cfg.logging_steps == 0 or state.step == total:
                elapsed = time.perf_counter() - start
                run.log(
                    state.step,
                    window.mean()
                    | {
                        "epoch": state.epoch + state.next_micro / per_epoch,
                        "num_tokens": state.tokens,
                        "tokens_per_second": state.tokens / elapsed,
                    },
                )
            if eval_set and (state.step % (cfg.eval_steps or epoch_steps) == 0 or state.step == total):
                result = evaluate(model, eval_set, ref_eval, pad, opts, cfg.batch_size, accelerator)
                run.log(state.step, result)
                if state.best_loss is None or result["eval_loss"] < state.best_loss:
                    state.best_loss, state.best_step = result["eval_loss"], state.step
                    best_adapter = adapter_state(accelerator.unwrap_model(model))
            if state.step % (cfg.save_steps or epoch_steps) == 0 and state.step < total:
                checkpoint(run, state, accelerator, model, optimizer, scheduler, best_adapter)
    except KeyboardInterrupt:  # the state is the last completed step's: --resume redoes the interrupted one
        optimizer.zero_grad(set_to_none=True)
        folder = checkpoint(run, state, accelerator, model, optimizer, scheduler, best_adapter)
        raise StoppedError(
            f"interrupted at step {state.step}; state saved in {folder}",
            hint=f"continue with: mglkit train ... --output {run.dir} --resume",
        ) from None
    except torch.cuda.OutOfMemoryError:
        raise out_of_memory(cfg) from None
    accelerator.wait_for_everyone()
    return TrainResult(
        model=accelerator.unwrap_model(model),
        best_adapter=best_adapter,
        best_step=state.best_step,
        optimizer_steps=state.step,
        micro_steps=state.micro_batches,
        train_tokens=state.tokens,
        seconds=time.perf_counter() - start,
        peak_memory_mb=peak_memory_mb(),
        is_main=accelerator.is_main_process,
    )


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
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.learning_rate,
    )
    return optimizer, get_scheduler(cfg.scheduler, optimizer, math.ceil(total * cfg.warmup_ratio), total)


class Batches:
    """Which pairs each micro-batch holds: a seeded order per epoch, this process's share of it."""

    def __init__(self, pairs, batch_size: int, world: int, rank: int, seed: int, group_by_length: bool):
        self.pairs, self.batch_size, self.world, self.rank = pairs, batch_size, world, rank
        self.seed, self.group_by_length = seed, group_by_length

    def order(self, epoch: int) -> list[int]:
        order = torch.randperm(len(self.pairs), generator=torch.Generator().manual_seed(self.seed + epoch)).tolist()
        if self.group_by_length:  # sorted within windows of 50 batches: less padding, still shuffled
            window = 50 * self.batch_size * self.world
            order = [
                i
                for w in range(0, len(order), window)
                for i in sorted(order[w : w + window], key=lambda i: -self.pairs[i].length)
            ]
        return order

    def for_step(self, epoch: int, micro: int, grad_accum: int, per_epoch: int):
        """This process's micro-batches for the next optimizer step, and the position after it."""
        order, size = self.order(epoch), self.batch_size * self.world
        count = min(grad_accum, per_epoch - micro)
        batches = [order[m * size : (m + 1) * size][self.rank :: self.world] for m in range(micro, micro + count)]
        after = (epoch + 1, 0) if micro + count == per_epoch else (epoch, micro + count)
        return batches, after


def reference_logps(model, pairs, pad: int, batch_size: int, accelerator):
    """Summed log-probs of chosen and rejected under the reference (the adapter disabled)."""
    from mglkit.logprobs import completion_logps

    chosen, rejected = torch.zeros(len(pairs)), torch.zeros(len(pairs))
    model.eval()
    with torch.no_grad(), model.disable_adapter(), accelerator.autocast():
        for first in range(0, len(pairs), 2 * batch_size):
            part = pairs[first : first + 2 * batch_size]
            logps, _ = completion_logps(model, **_to(collate(part, pad), accelerator.device))
            chosen[first : first + len(part)], rejected[first : first + len(part)] = logps.float().cpu().chunk(2)
    return chosen, rejected


def forward(model, pairs, indices, ref, pad, opts, accelerator):
    """The DPO loss of a micro-batch (chosen and rejected through one forward), per-pair metrics, tokens."""
    from mglkit.logprobs import completion_logps

    batch = _to(collate([pairs[i] for i in indices], pad), accelerator.device)
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
        for first in range(rank * batch_size, len(eval_set), batch_size * world):
            indices = list(range(first, min(first + batch_size, len(eval_set))))
            parts.append(forward(model, eval_set, indices, ref_eval, pad, opts, accelerator)[1])
    if not parts:  # more processes than eval batches: contribute nothing, but join the reduce
        parts = [{k: torch.zeros(0, device=accelerator.device) for k in METRICS}]
    model.train()
    return {f"eval_{k}": v for k, v in pair_means(parts, accelerator).items()}


class MetricsWindow:
    """Metrics of the steps since the last log line, averaged when logged."""

    def __init__(self):
        self.sums: dict[str, float] = {}
        self.count = 0

    def add(self, metrics: dict) -> None:
        for key, value in metrics.items():
            self.sums[key] = self.sums.get(key, 0.0) + value
        self.count += 1

    def mean(self) -> dict:
        mean = {k: v / self.count for k, v in self.sums.items()}
        self.sums, self.count = {}, 0
        return mean


def adapter_state(model) -> dict:
    from peft import get_peft_model_state_dict

    return {k: v.detach().cpu().clone() for k, v in get_peft_model_state_dict(model).items()}


def checkpoint(run, state, accelerator, model, optimizer, scheduler, best_adapter):
    folder = run.checkpoints / f"step-{state.step}"
    if accelerator.is_main_process:
        save_checkpoint(folder, accelerator.unwrap_model(model), optimizer, scheduler, state.to_json(), best_adapter)
    accelerator.wait_for_everyone()
    return folder


def out_of_memory(cfg):
    from mglkit import MglkitError

    return MglkitError(
        "CUDA out of memory",
        hint=f"lower --batch-size (now {cfg.batch_size}) and raise --grad-accum to keep the effective batch; "
        f"lower --max-length (now {cfg.max_length}); add --gradient-checkpointing; "
        f"lower --lora-r (now {cfg.lora_r}); or load the base with --quantize 4bit",
    )


def _to(batch: dict, device) -> dict:
    return {k: v.to(device) for k, v in batch.items()}
