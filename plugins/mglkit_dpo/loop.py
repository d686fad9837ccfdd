"""The DPO training loop. Reference = the same model with its adapter disabled; its
log-probabilities are computed once before training (by default) and never again."""

from __future__ import annotations

import contextlib
import math
import time

import torch
from accelerate import Accelerator

from mglkit.errors import MglkitError
from mglkit.preference import collate, sequence_logps, truncate_keep_prompt_end
from mglkit.training import TrainResult, checkpoint_dirs, peak_memory_mb

from .losses import dpo_loss

_METRIC_KEYS = ("loss", "rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins",
                "logps/chosen", "logps/rejected")  # fmt: skip
MAX_BAD_STEPS = 3  # non-finite losses in a row before stopping
KEEP_CHECKPOINTS = 2


def train(job) -> TrainResult:
    from peft import get_peft_model, get_peft_model_state_dict
    from transformers import get_scheduler, set_seed

    cfg, run = job.config, job.run
    start = time.perf_counter()  # reference precomputation counts as training time, as in TRL
    precision = {"fp32": "no", "fp16": "fp16", "bf16": "bf16"}[job.precision]
    accelerator = Accelerator(mixed_precision=precision, cpu=job.device == "cpu")
    world, rank = accelerator.num_processes, accelerator.process_index
    set_seed(cfg.seed)  # LoRA init draws from it: the same adapter as TRL's at step 0
    model = get_peft_model(job.model, job.lora)
    if not cfg.keep_dropout:  # as TRL's disable_dropout
        for module in model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    model.to(accelerator.device)
    pad = job.tokenizer.pad_token_id
    train_set = [truncate_keep_prompt_end(p, cfg.max_length)[0] for p in job.train]
    eval_set = [truncate_keep_prompt_end(p, cfg.max_length)[0] for p in job.eval]

    # Reference log-probs, once: the reference forward never runs again.
    def reference(pairs):
        chosen, rejected = torch.zeros(len(pairs)), torch.zeros(len(pairs))
        model.eval()
        with torch.no_grad(), model.disable_adapter(), accelerator.autocast():
            for first in range(0, len(pairs), 2 * cfg.batch_size):
                part = pairs[first : first + 2 * cfg.batch_size]
                logps, _ = sequence_logps(model, _to(collate(part, pad), accelerator.device))
                chosen[first : first + len(part)], rejected[first : first + len(part)] = logps.float().cpu().chunk(2)
        return chosen, rejected

    ref_train = reference(train_set) if cfg.precompute_ref else None
    ref_eval = reference(eval_set) if eval_set else None

    decay = [p for n, p in model.named_parameters() if p.requires_grad and not n.endswith("bias")]
    no_decay = [p for n, p in model.named_parameters() if p.requires_grad and n.endswith("bias")]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.learning_rate,
    )
    global_batch = cfg.batch_size * world
    micro_per_epoch = len(train_set) // global_batch + (len(train_set) % global_batch >= world)
    steps_per_epoch = max(1, math.ceil(micro_per_epoch / cfg.grad_accum))
    total = cfg.max_steps if cfg.max_steps > 0 else math.ceil(cfg.epochs * steps_per_epoch)
    scheduler = get_scheduler(cfg.scheduler, optimizer, math.ceil(total * cfg.warmup_ratio), total)
    model, optimizer = accelerator.prepare(model, optimizer)
    run.start(total_steps=total, steps_per_epoch=steps_per_epoch)

    state = {
        "step": 0,
        "epoch": 0,
        "micro": 0,
        "micro_steps": 0,
        "tokens": 0,
        "best_loss": None,
        "best_step": None,
    }
    best_adapter = None
    if job.resume_from is not None:
        best_adapter = _load_checkpoint(job.resume_from, accelerator.unwrap_model(model), optimizer, scheduler, state)
        run.note(f"resumed from {job.resume_from} at step {state['step']}")

    def batches(epoch):
        """This process's share of each global micro-batch, in a seeded per-epoch order."""
        order = torch.randperm(len(train_set), generator=torch.Generator().manual_seed(cfg.seed + epoch)).tolist()
        if cfg.group_by_length:  # sort within windows of 50 batches: less padding, still shuffled
            window = 50 * global_batch
            order = [i for w in range(0, len(order), window)
                     for i in sorted(order[w : w + window], key=lambda i: -train_set[i].length)]  # fmt: skip
        for micro in range(micro_per_epoch):
            indices = order[micro * global_batch : (micro + 1) * global_batch][rank::world]
            yield micro, indices

    def forward(indices, pairs, ref):
        batch = _to(collate([pairs[i] for i in indices], pad), accelerator.device)
        with accelerator.autocast():
            logps, counts = sequence_logps(model, batch)
        chosen, rejected = logps.chunk(2)
        if ref is not None:
            ref_chosen, ref_rejected = ref[0][indices].to(chosen), ref[1][indices].to(chosen)
        else:
            with torch.no_grad(), accelerator.unwrap_model(model).disable_adapter(), accelerator.autocast():
                ref_chosen, ref_rejected = sequence_logps(model, batch)[0].chunk(2)
        losses, r_chosen, r_rejected = dpo_loss(cfg.loss, cfg.beta, cfg.label_smoothing, chosen, rejected,
                                                ref_chosen, ref_rejected, *counts.chunk(2))  # fmt: skip
        tokens = batch["attention_mask"].sum()
        per_pair = {"loss": losses.detach(), "rewards/chosen": r_chosen, "rewards/rejected": r_rejected,
                    "rewards/accuracies": (r_chosen > r_rejected).float(), "rewards/margins": r_chosen - r_rejected,
                    "logps/chosen": chosen.detach(), "logps/rejected": rejected.detach()}  # fmt: skip
        return losses.mean(), per_pair, tokens

    def pair_means(parts: list[dict]) -> dict:
        """Means over every pair of every process (shares may differ in size: sum, then divide)."""
        keys = list(parts[0])
        sums = torch.stack([torch.cat([p[k].float() for p in parts]).sum() for k in keys])
        count = torch.tensor([float(sum(len(p[keys[0]]) for p in parts))], device=sums.device)
        totals = accelerator.reduce(torch.cat([sums, count]), reduction="sum")
        return {k: (totals[i] / totals[-1]).item() for i, k in enumerate(keys)}

    def evaluate() -> dict:
        model.eval()
        parts = []
        with torch.no_grad():
            for first in range(rank * cfg.batch_size, len(eval_set), global_batch):
                indices = list(range(first, min(first + cfg.batch_size, len(eval_set))))
                parts.append(forward(indices, eval_set, ref_eval)[1])
        if not parts:  # more processes than eval batches: contribute nothing, but join the reduce
            parts = [{k: torch.zeros(0, device=accelerator.device) for k in _METRIC_KEYS}]
        model.train()
        return {f"eval_{k}": v for k, v in pair_means(parts).items()}

    def checkpoint():
        folder = run.checkpoints / f"step-{state['step']}"
        if accelerator.is_main_process:
            _save_checkpoint(folder, accelerator.unwrap_model(model), optimizer, scheduler, state, best_adapter)
            for old in checkpoint_dirs(run.checkpoints)[:-KEEP_CHECKPOINTS]:
                old.rename(old.with_name(old.name + ".old"))
                _remove_tree(old.with_name(old.name + ".old"))
        accelerator.wait_for_everyone()
        return folder

    evaluate_every = cfg.eval_steps or steps_per_epoch
    save_every = cfg.save_steps or steps_per_epoch
    bad_steps = 0
    window: dict = {}
    model.train()
    try:
        while state["step"] < total:
            step_metrics, step_tokens, micro_in_step = [], 0, 0
            step_start = (state["epoch"], state["micro"])
            for micro, indices in batches(state["epoch"]):
                if micro < state["micro"] or not indices:
                    continue
                accumulate = cfg.grad_accum - micro_in_step
                sync = accumulate == 1 or micro == micro_per_epoch - 1
                with accelerator.no_sync(model) if not sync else contextlib.nullcontext():
                    loss, per_pair, tokens = forward(indices, train_set, ref_train)
                    accelerator.backward(loss / min(cfg.grad_accum, micro_per_epoch - micro + micro_in_step))
                step_metrics.append(per_pair)
                step_tokens += accelerator.gather(tokens).sum().item()
                micro_in_step += 1
                state["micro"] = micro + 1
                if sync:
                    break
            else:  # the epoch ran out of micro-batches
                state["epoch"], state["micro"] = state["epoch"] + 1, 0
                if micro_in_step == 0:
                    continue
            if state["micro"] >= micro_per_epoch:
                state["epoch"], state["micro"] = state["epoch"] + 1, 0

            metrics = pair_means(step_metrics)
            if not math.isfinite(metrics["loss"]):  # skip the update; stop after a few in a row
                optimizer.zero_grad(set_to_none=True)
                bad_steps += 1
                run.note(f"step {state['step'] + 1}: non-finite loss, update skipped")
                if bad_steps >= MAX_BAD_STEPS:
                    folder = checkpoint()
                    raise MglkitError(
                        f"the loss was NaN or infinite for {bad_steps} steps in a row; stopped. "
                        f"Last good state saved in {folder}",
                        hint="lower --learning-rate, or use --precision bf16/fp32 instead of fp16",
                    )
                continue
            bad_steps = 0
            grad_norm = accelerator.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            lr = scheduler.get_last_lr()[0]
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            state["step"] += 1
            state["micro_steps"] += micro_in_step
            state["tokens"] += step_tokens

            metrics.update(grad_norm=float(grad_norm), learning_rate=lr)
            for key, value in metrics.items():
                window[key] = window.get(key, 0.0) + value
            window["_n"] = window.get("_n", 0) + 1
            if state["step"] % cfg.logging_steps == 0 or state["step"] == total:
                n = window.pop("_n")
                logged = {k: v / n for k, v in window.items()}
                elapsed = time.perf_counter() - start
                logged.update(epoch=state["epoch"] + state["micro"] / micro_per_epoch,
                              num_tokens=state["tokens"], tokens_per_second=state["tokens"] / elapsed)  # fmt: skip
                run.log(state["step"], logged)
                window = {}
            if eval_set and (state["step"] % evaluate_every == 0 or state["step"] == total):
                result = evaluate()
                run.log(state["step"], result)
                if state["best_loss"] is None or result["eval_loss"] < state["best_loss"]:
                    state["best_loss"], state["best_step"] = result["eval_loss"], state["step"]
                    unwrapped = accelerator.unwrap_model(model)
                    best_adapter = {
                        k: v.detach().cpu().clone() for k, v in get_peft_model_state_dict(unwrapped).items()
                    }
            if state["step"] % save_every == 0 and state["step"] < total:
                checkpoint()
    except KeyboardInterrupt:
        optimizer.zero_grad(set_to_none=True)  # drop a half-accumulated step: resume redoes it
        state["epoch"], state["micro"] = step_start
        folder = checkpoint()
        raise MglkitError(
            f"interrupted at step {state['step']}; state saved in {folder}",
            hint=f"continue with: mglkit train ... --output {run.dir} --resume",
        ) from None
    except torch.cuda.OutOfMemoryError:
        raise MglkitError(
            "CUDA out of memory",
            hint=f"lower --batch-size (now {cfg.batch_size}) and raise --grad-accum to keep the effective batch; "
            f"lower --max-length (now {cfg.max_length}); add --gradient-checkpointing; "
            f"lower --lora-r (now {cfg.lora_r}); or load the base with --quantize 4bit",
        ) from None
    accelerator.wait_for_everyone()
    return TrainResult(
        model=accelerator.unwrap_model(model),
        best_adapter=best_adapter,
        best_step=state["best_step"],
        optimizer_steps=state["step"],
        micro_steps=state["micro_steps"],
        train_tokens=state["tokens"],
        seconds=time.perf_counter() - start,
        peak_memory_mb=peak_memory_mb(),
        is_main=accelerator.is_main_process,
    )


def _to(batch: dict, device) -> dict:
    return {k: v.to(device) for k, v in batch.items()}


def _remove_tree(path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def _save_checkpoint(folder, model, optimizer, scheduler, state, best_adapter) -> None:
    """Adapter weights (safetensors) and resume state, written whole or not at all."""
    from safetensors.torch import save_file

    tmp = folder.with_name(folder.name + ".tmp")
    _remove_tree(tmp)
    model.save_pretrained(tmp, safe_serialization=True)
    if best_adapter is not None:
        save_file(best_adapter, str(tmp / "best_adapter.safetensors"))
    torch.save(
        {
            "state": dict(state),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(),
        },
        tmp / "trainer_state.pt",
    )
    _remove_tree(folder)
    tmp.rename(folder)


def _load_checkpoint(folder, model, optimizer, scheduler, state):
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    saved = torch.load(folder / "trainer_state.pt", weights_only=True, map_location="cpu")
    set_peft_model_state_dict(model, load_file(str(folder / "adapter_model.safetensors")))
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    torch.set_rng_state(saved["torch_rng"])
    state.update(saved["state"])
    best = folder / "best_adapter.safetensors"
    return load_file(str(best)) if best.is_file() else None
