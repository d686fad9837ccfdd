"""Preference pairs as token ids: tokenization (the same as TRL's), truncation, the train/eval
split, the batch plan of an epoch, and batching — shared by the pipeline and the trainers."""

from __future__ import annotations

import random
from dataclasses import dataclass

from .prompts import PromptFormat


@dataclass(slots=True)
class TokenizedPair:
    prompt_ids: list[int]
    chosen_ids: list[int]
    rejected_ids: list[int]

    @property
    def length(self) -> int:
        return len(self.prompt_ids) + max(len(self.chosen_ids), len(self.rejected_ids))


def rendered(pairs, tokenizer, fmt: PromptFormat) -> list[dict]:
    """Plain-text records with the prompt format applied: what TRL tokenizes itself."""
    return [{"prompt": fmt.render(tokenizer, p.prompt), "chosen": p.chosen, "rejected": p.rejected} for p in pairs]


def common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def tokenize_pairs(pairs, tokenizer, fmt: PromptFormat) -> list[TokenizedPair]:
    """prompt, prompt + completion + EOS tokenized as TRL does, split where they diverge."""
    eos = tokenizer.eos_token or ""
    out = []
    for record in rendered(pairs, tokenizer, fmt):
        prompt = tokenizer(record["prompt"])["input_ids"]
        chosen = tokenizer(record["prompt"] + _with_eos(record["chosen"], eos))["input_ids"]
        rejected = tokenizer(record["prompt"] + _with_eos(record["rejected"], eos))["input_ids"]
        cut = min(common_prefix(prompt, chosen), common_prefix(prompt, rejected))
        out.append(TokenizedPair(prompt[:cut], chosen[cut:], rejected[cut:]))
    return out


def _with_eos(text: str, eos: str) -> str:
    return text if text.endswith(eos) else text + eos


def truncate_keep_prompt_end(pair: TokenizedPair, max_length: int) -> tuple[TokenizedPair, bool]:
    """mglkit's rule: trim the prompt from the left first (its end, the question, matters most),
    then the completions' ends. Returns the pair and whether anything was cut."""
    longest = max(len(pair.chosen_ids), len(pair.rejected_ids))
    if len(pair.prompt_ids) + longest <= max_length:
        return pair, False
    keep_prompt = max(max_length - longest, min(len(pair.prompt_ids), max_length // 2))
    prompt = pair.prompt_ids[len(pair.prompt_ids) - keep_prompt :]
    room = max_length - len(prompt)
    return TokenizedPair(prompt, pair.chosen_ids[:room], pair.rejected_ids[:room]), True


def cut_by_keep_start(pair: TokenizedPair, max_length: int) -> bool:
    """Whether TRL's keep_start truncation (cut the end of prompt + completion) touches this pair."""
    return pair.length > max_length


def split_train_eval(items: list, eval_split: float, seed: int) -> tuple[list, list]:
    """A deterministic split: 120 pairs at 0.1 give 108 / 12, as in the original guide."""
    if eval_split <= 0:
        return list(items), []
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    n_eval = max(1, round(len(items) * eval_split))
    chosen = set(order[:n_eval])
    return [x for i, x in enumerate(items) if i not in chosen], [x for i, x in enumerate(items) if i in chosen]


def micro_batches_per_epoch(n_pairs: int, batch_size: int, world: int = 1) -> int:
    """Global micro-batches in an epoch: every process takes ``batch_size`` pairs of each. A last,
    short batch runs when it gives every process a pair at least (else a process would wait forever
    in the gradient sync); its leftover pairs are left out of that epoch."""
    global_batch = batch_size * world
    return n_pairs // global_batch + (n_pairs % global_batch >= world)


def steps_per_epoch(n_pairs: int, batch_size: int, grad_accum: int, world: int = 1) -> int:
    """Optimizer steps in an epoch (the last one may accumulate fewer micro-batches): the one count
    the plan and the dpo loop share. 0 when the epoch has no batch at all."""
    micro = micro_batches_per_epoch(n_pairs, batch_size, world)
    return -(-micro // grad_accum)


def collate(pairs: list[TokenizedPair], pad_id: int):
    """One right-padded batch: all chosen sequences, then all rejected (one forward for both)."""
    import torch

    sequences = [p.prompt_ids + p.chosen_ids for p in pairs] + [p.prompt_ids + p.rejected_ids for p in pairs]
    masks = [[0] * len(p.prompt_ids) + [1] * len(p.chosen_ids) for p in pairs]
    masks += [[0] * len(p.prompt_ids) + [1] * len(p.rejected_ids) for p in pairs]
    width = max(len(s) for s in sequences)
    input_ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(sequences), width), dtype=torch.long)
    completion = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, (seq, mask) in enumerate(zip(sequences, masks, strict=True)):
        input_ids[row, : len(seq)] = torch.tensor(seq)
        attention[row, : len(seq)] = 1
        completion[row, : len(mask)] = torch.tensor(mask)
    return {"input_ids": input_ids, "attention_mask": attention, "completion_mask": completion}


def dpo_settings(losses: tuple[str, ...]) -> list:
    """The settings every DPO trainer declares (each with the losses it implements)."""
    from .settings import Setting

    return [
        Setting(
            "beta",
            float,
            0.1,
            "DPO's beta: how strongly the policy is tied to the reference (> 0).",
            min=0,
            min_open=True,
        ),  # fmt: skip
        Setting("loss", str, "sigmoid", "The DPO loss.", choices=losses),
        Setting("label_smoothing", float, 0.0, "Robust DPO's label-flip probability.", min=0, max=0.5, max_open=True),
        Setting("precompute_ref", bool, True, "Reference log-probs once before training (off: every step)."),
        Setting(
            "ref_cache",
            bool,
            True,
            "Keep precomputed reference log-probs on disk and reuse them when base model, data and numerics match.",
        ),
    ]
