"""The summed log-probability of each completion, the one computation training and evaluation share.

The full fp32 log-softmax over ``[rows, length, vocab]`` is never built: the decoder runs once, and
the output head is applied only at positions whose next token is a completion token, a chunk of
positions at a time (logsumexp and gather in fp32). With gradients on, each chunk is recomputed in
the backward pass (activation checkpointing), so the backward holds one chunk's logits too.

Batches are padded (``mglkit.preference.collate``) or packed (``mglkit.packing.pack_batch``: several
sequences a row, ``position_ids`` restarting at 0 and ``sequence_ids`` naming each token's sequence).
"""

from __future__ import annotations

import contextlib

CHUNK_SIZE = 512  # completion positions whose logits exist at once (152k vocabulary: ~0.3 GB fp32)

# Model types whose causal-LM forward is `logits = lm_head(decoder(...).last_hidden_state)` and nothing
# else (checked against transformers 5.24's modeling files). Any other model type, or any of these
# with a logit transform in its config, takes the full-logits path, which gives the same numbers.
PLAIN_HEAD_TYPES = frozenset(
    {"llama", "mistral", "ministral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe", "phi", "phi3",
     "gemma", "olmo", "olmo2", "starcoder2", "stablelm"}
)  # fmt: skip
# Config fields that change logits after the head: Gemma 2/3 softcapping, Cohere's logit_scale,
# Granite's logits_scaling, RecurrentGemma's logits_soft_cap.
LOGIT_TRANSFORMS = {"final_logit_softcapping": None, "logit_scale": 1, "logits_scaling": 1, "logits_soft_cap": None}

MASKED_ATTENTION = ("sdpa", "eager")  # implementations that take an explicit 4-D mask


def completion_logps(
    model,
    input_ids,
    attention_mask,
    completion_mask,
    *,
    position_ids=None,
    sequence_ids=None,
    chunk_size: int = CHUNK_SIZE,
):
    """Summed log-probability (fp32) of each sequence's completion tokens, and their counts.

    Labels are ``input_ids`` shifted by one and counted where ``completion_mask`` (shifted the same
    way) is 1. Padded batch (``sequence_ids`` None): one result per row, ``attention_mask`` the usual
    2-D 0/1 mask, ``position_ids`` optional. Packed batch (as ``pack_batch`` returns it): one result
    per sequence, in the order of ``sequence_ids`` (the rows of the padded batch it was packed from);
    attention is confined to each sequence. ``model``: a causal LM, a PEFT model (the active adapter,
    or none inside ``disable_adapter()``), or either wrapped by DDP. Works under autocast and no_grad.
    """
    import torch

    inner = _unwrap(model)
    labels = input_ids[:, 1:]
    counted = completion_mask[:, 1:].bool()
    if sequence_ids is None:
        owners, n_out = torch.arange(len(input_ids), device=input_ids.device)[:, None].expand_as(labels), len(input_ids)
        inputs = {"attention_mask": attention_mask, "position_ids": position_ids}
    else:
        counted &= sequence_ids[:, 1:] == sequence_ids[:, :-1]  # never a label from the next sequence
        owners, n_out = sequence_ids[:, 1:], int(sequence_ids.max()) + 1
        inputs = packed_attention_inputs(inner, attention_mask, position_ids, sequence_ids)
    head = plain_head(inner)
    if head is None:
        logits = model(input_ids=input_ids, **inputs, use_cache=False).logits
        states, head = logits[:, :-1][counted], _identity
    else:
        with _decoder_output(inner.get_decoder()) as captured:
            model(input_ids=input_ids, **inputs, use_cache=False, logits_to_keep=1)
        states = captured[0][:, :-1][counted]
    token_logps = _token_logps(states, labels[counted], head, chunk_size)
    owner = owners[counted]
    sums = torch.zeros(n_out, dtype=torch.float32, device=input_ids.device).index_add(0, owner, token_logps)
    counts = torch.zeros(n_out, dtype=torch.long, device=input_ids.device).index_add(0, owner, torch.ones_like(owner))
    return sums, counts


def plain_head(model):
    """The output head when logits are exactly ``head(final hidden state)``; None otherwise."""
    config = getattr(model, "config", None)
    if config is None or getattr(config, "model_type", None) not in PLAIN_HEAD_TYPES:
        return None
    if any(getattr(config, key, neutral) not in (None, neutral) for key, neutral in LOGIT_TRANSFORMS.items()):
        return None
    get_decoder = getattr(model, "get_decoder", None)
    return model.get_output_embeddings() if get_decoder is not None and get_decoder() is not None else None


def packed_attention_inputs(model, attention_mask, position_ids, sequence_ids) -> dict:
    """Model inputs that confine attention to each packed sequence, for the model's attention kind.

    sdpa and eager get an explicit block-causal 4-D mask: transformers 5.24 passes a 4-D mask through
    unchanged, and builds its own packed-sequence mask from ``position_ids`` only when no mask and no
    cache are given (so ``use_cache`` left on silently lets sequences see each other). Flash attention
    gets ``position_ids`` alone, from which transformers derives ``cu_seqlens`` (varlen kernels).
    """
    import torch

    implementation = attention_implementation(model)
    if "flash" in implementation:
        if len(sequence_ids) != 1 or not bool(attention_mask.all()):
            raise ValueError("flash attention takes a packed batch as one row without padding (pack_batch's default)")
        return {"position_ids": position_ids}
    if implementation not in MASKED_ATTENTION:
        raise ValueError(f"packed batches need sdpa, eager or flash attention; the model uses {implementation!r}")
    window = _sliding_window(model.config, int(position_ids.max()) + 1)
    allowed = block_causal_mask(sequence_ids, position_ids, window)
    if implementation == "eager":  # eager adds the mask to the scores; sdpa takes booleans
        dtype = model.get_input_embeddings().weight.dtype
        allowed = torch.zeros(allowed.shape, dtype=dtype, device=allowed.device).masked_fill(
            ~allowed, torch.finfo(dtype).min
        )
    return {"attention_mask": allowed, "position_ids": position_ids}


def attention_implementation(model) -> str:
    """The attention kind transformers dispatches to for this model (sdpa, eager, flash_attention_2, ...)."""
    return _unwrap(model).config._attn_implementation or "eager"


def block_causal_mask(sequence_ids, position_ids, window: int | None = None):
    """``[rows, 1, length, length]`` booleans, True where a query may attend to a key: the same
    sequence, not later, and within ``window`` positions when given. Padding (sequence id -1) sees
    padding only, so no query row is empty."""
    import torch

    index = torch.arange(sequence_ids.shape[1], device=sequence_ids.device)
    allowed = (sequence_ids[:, :, None] == sequence_ids[:, None, :]) & (index[:, None] >= index[None, :])
    if window is not None:
        allowed &= (position_ids[:, :, None] - position_ids[:, None, :]) < window
    return allowed[:, None]


def can_pack(model, longest: int) -> bool:
    """Whether packed sequences of up to ``longest`` tokens give this model's padded-batch results."""
    implementation = attention_implementation(model)
    if "flash" in implementation:
        return True
    return implementation in MASKED_ATTENTION and _one_mask_serves(_unwrap(model).config, longest)


def _one_mask_serves(config, longest: int) -> bool:
    """No sliding window reaches inside a sequence, or every layer has the same window."""
    window = getattr(config, "sliding_window", None)
    if not window or longest <= window:
        return True
    return set(getattr(config, "layer_types", None) or ["sliding_attention"]) == {"sliding_attention"}


def _sliding_window(config, longest: int) -> int | None:
    """The window every attention layer applies, or None where no window reaches a sequence."""
    if not _one_mask_serves(config, longest):
        raise ValueError(
            f"this model mixes full and sliding-window ({config.sliding_window}) attention layers and a packed "
            f"sequence is {longest} tokens long; one mask cannot serve both: use padded batches"
        )
    window = getattr(config, "sliding_window", None)
    return window if window and longest > window else None


def _unwrap(model):
    """The model inside DDP-like wrappers (which keep it as ``.module``)."""
    import torch

    while isinstance(getattr(model, "module", None), torch.nn.Module):
        model = model.module
    return model


@contextlib.contextmanager
def _decoder_output(decoder):
    """Collects the decoder's final hidden state (after its last norm) as it is computed."""
    captured = []

    def keep(module, args, output):
        captured.append(output.last_hidden_state if hasattr(output, "last_hidden_state") else output[0])

    handle = decoder.register_forward_hook(keep)
    try:
        yield captured
    finally:
        handle.remove()


def _identity(states):
    return states


def _chunk_logps(head, states, labels):
    logits = head(states).float()
    return logits.gather(1, labels[:, None]).squeeze(1) - logits.logsumexp(dim=1)


def _token_logps(states, labels, head, chunk_size: int):
    """log p(label) for each row of ``states`` ([tokens, hidden], or logits with the identity head)."""
    import torch
    from torch.utils.checkpoint import checkpoint

    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, not {chunk_size}")
    parts = []
    for start in range(0, len(states), chunk_size):
        part = (states[start : start + chunk_size], labels[start : start + chunk_size])
        if torch.is_grad_enabled():  # recompute the chunk's logits in backward instead of keeping them
            parts.append(checkpoint(_chunk_logps, head, *part, use_reentrant=False))
        else:
            parts.append(_chunk_logps(head, *part))
    return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.float32, device=states.device)
