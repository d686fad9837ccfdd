"""TRL's reference log-probs through mglkit's cache.

TRL 1.16's DPOTrainer (``precompute_ref_log_probs``) computes them while it is constructed, in
``_precompute_ref_logps(dataset, name, batch_size)``, and trains on the ``ref_chosen_logps`` /
``ref_rejected_logps`` columns that returns (its collator passes them on). It keeps them between
runs only for a file-backed dataset, and ours are in memory, so every run computed them again.
``CachedDPOTrainer`` gives TRL those columns from mglkit's cache (``mglkit.refcache``), or caches
what TRL computed. TRL offers no public way to skip its computation: this overrides that method,
and tests/test_reference.py checks that a second run reuses the first's values and trains the same.
"""

from __future__ import annotations

import time

from mglkit.preference import TokenizedPair
from mglkit.refcache import job_key, reuse_or_compute

# DPOConfig fields that change the reference log-probs TRL computes (besides the tokens themselves)
REFERENCE_ARGS = ("max_length", "truncation_mode", "ld_alpha", "padding_free", "pad_to_multiple_of")


def cached_dpo_trainer(job, **kwargs):
    """TRL's DPOTrainer, built with ``kwargs``, taking its reference log-probs from mglkit's cache."""
    from trl import DPOTrainer

    class CachedDPOTrainer(DPOTrainer):
        def __init__(self, **kwargs):
            self.mglkit_reference = []  # (seconds, reused) of each precomputation, for training_stats.json
            super().__init__(**kwargs)

        def _precompute_ref_logps(self, dataset, name, batch_size):
            return precompute_cached(self, super()._precompute_ref_logps, job, dataset, name, batch_size)

    return CachedDPOTrainer(**kwargs)


def precompute_cached(trainer, precompute, job, dataset, name: str, batch_size: int):
    """``dataset`` with TRL's reference columns: the cached ones, else ``precompute``'s (then cached)."""
    import torch
    import trl

    start = time.perf_counter()
    columns = (dataset[name] for name in ("prompt_ids", "chosen_ids", "rejected_ids"))
    pairs = [TokenizedPair(*ids) for ids in zip(*columns, strict=True)]
    settings = {field: getattr(trainer.args, field, None) for field in REFERENCE_ARGS}
    key = job_key(job, trainer.model, pairs, trainer="trl-dpo", trl=trl.__version__, batch_size=batch_size, **settings)
    done = {}

    def compute() -> dict:
        done["dataset"] = computed = precompute(dataset, name, batch_size)
        return {part: torch.tensor(computed[f"ref_{part}_logps"]) for part in ("chosen", "rejected")}

    tensors, reused, _ = reuse_or_compute(key, compute)
    seconds = time.perf_counter() - start
    trainer.mglkit_reference.append((seconds, reused))
    how = f"reused from the cache in {seconds:.2f} s" if reused else f"computed by TRL in {seconds:.1f} s"
    job.run.note(f"reference log-probs of {len(pairs)} {name} pairs: {how}" + ("" if key else " (not cached)"))
    if not reused:
        return done["dataset"]
    return dataset.add_column("ref_chosen_logps", tensors["chosen"].tolist()).add_column(
        "ref_rejected_logps", tensors["rejected"].tolist()
    )
