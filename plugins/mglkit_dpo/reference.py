"""The dpo loop's reference log-probabilities: the policy with its adapter disabled, computed once,
shared out between the processes and cached on disk (``mglkit.refcache``), so that a later run with
the same base model, data and numerics reads them instead of running the reference forward again."""

from __future__ import annotations

import time
from typing import NamedTuple

import torch

import mglkit
from mglkit import distributed
from mglkit.logprobs import completion_logps
from mglkit.refcache import job_key, reuse_or_compute

from .batches import model_batch, shares


class Reference(NamedTuple):
    """Summed reference log-probs of each pair's chosen and rejected answers, and how they were had."""

    chosen: torch.Tensor
    rejected: torch.Tensor
    seconds: float
    reused: bool


def reference_logps(model, pairs, job, accelerator, name: str) -> Reference:
    """The reference log-probs of ``pairs`` (already truncated as the loop trains on them): from the
    cache when an earlier run left them under the same key, else computed and cached."""
    start = time.perf_counter()
    batch_size, padding_free = job.config.batch_size, job.options.padding_free
    key = job_key(job, model, pairs, trainer="dpo", batch_size=batch_size, padding_free=padding_free)

    def compute() -> dict:
        chosen, rejected = shared_logps(model, pairs, job.tokenizer.pad_token_id, batch_size, padding_free, accelerator)
        return {"chosen": chosen, "rejected": rejected}

    tensors, reused, saved = reuse_or_compute(key, compute)
    seconds = time.perf_counter() - start
    if reused:
        how = f"reused from the cache in {seconds:.2f} s"
    else:
        how = f"computed in {seconds:.1f} s by {distributed.world_size()} process(es)"
        if saved:
            how += ", cached"
        elif key is None:
            how += " (not cached: " + _why_not(job) + ")"
    job.run.note(f"reference log-probs of {len(pairs)} {name} pairs: {how}")
    return Reference(tensors["chosen"], tensors["rejected"], seconds, reused)


def shared_logps(model, pairs, pad: int, batch_size: int, padding_free: bool, accelerator):
    """Summed log-probs of chosen and rejected under the reference, each process computing its share
    of the batches (``shares``: of 2 x batch_size pairs); the shares, zero elsewhere, are summed over
    the processes, so every process ends with all of them."""
    size = 2 * batch_size
    mine = shares(len(pairs), size, distributed.rank(), distributed.world_size())
    logps = torch.zeros(2, len(pairs), device=accelerator.device)
    model.eval()
    total = sum(min(size, len(pairs) - first) for first, real in mine if real)
    show = accelerator.is_main_process
    with mglkit.progress("reference log-probs", total=total, show=show) as task, torch.no_grad():
        with accelerator.unwrap_model(model).disable_adapter(), accelerator.autocast():
            for first, real in mine:
                part = pairs[first : first + size]
                sums, _ = completion_logps(model, **model_batch(model, part, pad, padding_free, accelerator.device))
                if real:
                    logps[:, first : first + len(part)] = sums.float().view(2, len(part))
                    task.advance(len(part))
    distributed.sum_over_processes(logps)
    return logps[0].cpu(), logps[1].cpu()


def _why_not(job) -> str:
    return "--no-ref-cache" if not job.options.ref_cache else f"{job.config.base} has no known identity"
