"""Padding-free batches: the sequences of a padded batch laid end to end, each with its own position
ids (from 0) and its row of the padded batch as its sequence id, so attention can be confined to it
(``mglkit.logprobs.completion_logps`` builds the mask, or lets flash attention use ``cu_seqlens``)."""

from __future__ import annotations

PAD_SEQUENCE = -1  # the sequence id of padding at the end of a packed row


def pack_batch(batch: dict, *, row_length: int | None = None) -> dict:
    """Pack a padded batch (``input_ids``, ``attention_mask``, ``completion_mask``, as
    ``mglkit.preference.collate`` makes it; left or right padding) without padding between sequences.

    ``row_length`` None: one row holding every sequence in order (what flash attention's varlen
    kernels want). A number: rows of at most that many tokens (at least the longest sequence),
    filled first-fit in decreasing length, right-padded to the longest row — with an explicit mask,
    attention costs grow with the square of a row's length, so rows about as long as the longest
    sequence keep them near the padded batch's.

    Returns ``input_ids``, ``attention_mask`` (1 on real tokens), ``completion_mask`` (0 on each
    sequence's first token, which has no label in its own sequence), ``position_ids`` and
    ``sequence_ids`` (the padded batch's row; -1 on padding), all ``[rows, width]`` long tensors.
    """
    import torch

    real = batch["attention_mask"].bool()
    lengths = real.sum(dim=1).tolist()
    rows = _fill_rows(lengths, row_length)
    width = max(sum(lengths[i] for i in row) for row in rows)
    out = {key: torch.zeros((len(rows), width), dtype=torch.long) for key in _KEYS}
    out["sequence_ids"].fill_(PAD_SEQUENCE)
    for r, row in enumerate(rows):
        at = 0
        for i in row:
            n, end = lengths[i], at + lengths[i]
            out["input_ids"][r, at:end] = batch["input_ids"][i][real[i]]
            out["completion_mask"][r, at:end] = batch["completion_mask"][i][real[i]]
            out["completion_mask"][r, at] = 0
            out["position_ids"][r, at:end] = torch.arange(n)
            out["sequence_ids"][r, at:end] = i
            out["attention_mask"][r, at:end] = 1
            at = end
        out["position_ids"][r, at:] = torch.arange(width - at)  # padding: a causal run of its own
    return {key: value.to(batch["input_ids"].device) for key, value in out.items()}


def pack_for(model, batch: dict) -> dict:
    """The layout of ``batch`` that suits the model's attention. Flash attention: one packed row (its
    varlen kernels skip the other sequences). An explicit mask (sdpa, eager) costs the square of a
    row's length, so: whichever of the padded batch and rows of at most 1 or 2 times the longest
    sequence computes the fewest positions (the padded batch itself where packing saves nothing, or
    where one mask cannot serve the model: sliding-window layers beside full ones, other kernels)."""
    from .logprobs import attention_implementation, can_pack

    longest = int(batch["attention_mask"].sum(dim=1).max())
    if not can_pack(model, longest):
        return batch
    if "flash" in attention_implementation(model):
        return pack_batch(batch)
    layouts = [batch, *(pack_batch(batch, row_length=factor * longest) for factor in (1, 2))]
    return min(layouts, key=lambda layout: layout["input_ids"].numel())


_KEYS = ("input_ids", "attention_mask", "completion_mask", "position_ids", "sequence_ids")


def _fill_rows(lengths: list[int], row_length: int | None) -> list[list[int]]:
    """Which sequences go in which row: all in one, or first-fit decreasing into rows of a capacity."""
    if row_length is None:
        return [list(range(len(lengths)))]
    capacity = max(row_length, max(lengths))
    rows: list[list[int]] = []
    room: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        slot = next((r for r, free in enumerate(room) if free >= lengths[i]), None)
        if slot is None:
            rows.append([])
            room.append(capacity)
            slot = len(rows) - 1
        rows[slot].append(i)
        room[slot] -= lengths[i]
    return rows


def padding_ratio(attention_mask) -> float:
    """The share of a padded batch's positions that are padding."""
    return 1.0 - float(attention_mask.float().mean())
