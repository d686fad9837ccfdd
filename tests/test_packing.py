"""Padding-free batches: pack_batch's layout, and per-sequence log-probs, DPO losses and LoRA
gradients from packed batches equal to those from the padded batch they were packed from."""

import pytest
import torch
from random_models import assert_close_sums, devices, lora_grads, random_batch, random_model, with_lora

from mglkit.logprobs import can_pack, completion_logps, packed_attention_inputs
from mglkit.packing import pack_batch, pack_for, padding_ratio


def test_one_row_holds_every_sequence_in_order():
    batch = random_batch(3, 100, seed=4)
    lengths = batch["attention_mask"].sum(dim=1).tolist()
    packed = pack_batch(batch)
    assert {k: tuple(v.shape) for k, v in packed.items()} == dict.fromkeys(packed, (1, sum(lengths)))
    assert packed["attention_mask"].all()
    starts = [sum(lengths[:i]) for i in range(len(lengths))]
    assert packed["position_ids"][0].tolist() == [p for n in lengths for p in range(n)]
    assert packed["sequence_ids"][0].tolist() == [i for i, n in enumerate(lengths) for _ in range(n)]
    for i, (start, n) in enumerate(zip(starts, lengths, strict=True)):
        assert packed["input_ids"][0, start : start + n].tolist() == batch["input_ids"][i, :n].tolist()
        assert packed["completion_mask"][0, start] == 0  # no label from the sequence before
        assert packed["completion_mask"][0, start + 1 : start + n].tolist() == batch["completion_mask"][i, 1:n].tolist()
    assert padding_ratio(packed["attention_mask"]) == 0 < padding_ratio(batch["attention_mask"])


def test_rows_of_a_given_length_take_each_sequence_once():
    batch = random_batch(8, 100, seed=5)
    longest = int(batch["attention_mask"].sum(dim=1).max())
    packed = pack_batch(batch, row_length=longest)
    real = packed["sequence_ids"] >= 0
    assert sorted(packed["sequence_ids"][real].unique().tolist()) == list(range(16))
    assert real.sum() == batch["attention_mask"].sum() and (real == packed["attention_mask"].bool()).all()
    assert packed["attention_mask"].sum(dim=1).max() <= longest < packed["input_ids"].numel() / 2
    assert len(packed["input_ids"]) < 16  # sequences share rows


@pytest.mark.slow
def test_masked_attention_gets_the_layout_with_fewest_positions():
    model = random_model("mistral-32k", vocab_size=500)
    batch = random_batch(8, 500, seed=6)
    longest = int(batch["attention_mask"].sum(dim=1).max())
    sizes = [batch["input_ids"].numel()] + [
        pack_batch(batch, row_length=f * longest)["input_ids"].numel() for f in (1, 2)
    ]
    packed = pack_for(model, batch)
    assert packed["input_ids"].numel() == min(sizes) < sizes[0] and "sequence_ids" in packed
    even = {k: v[:, :20] for k, v in random_batch(4, 500, lengths=(20, 20)).items()}  # no padding
    assert pack_for(model, even) is even  # nothing to save: the padded batch as it is


@pytest.mark.slow
def test_mixed_window_layers_refuse_sequences_longer_than_the_window():
    model = random_model("qwen2-152k", vocab_size=500, use_sliding_window=True, sliding_window=8, max_window_layers=1)
    batch = random_batch(2, 500)
    packed = pack_batch(batch)
    with pytest.raises(ValueError, match="mixes full and sliding-window"):
        packed_attention_inputs(model, packed["attention_mask"], packed["position_ids"], packed["sequence_ids"])
    assert pack_for(model, batch) is batch  # so pack_for keeps the batch padded
    assert can_pack(model, 8) and not can_pack(model, 9)  # up to the window, one mask serves all layers


def packed_and_padded(model, batch, row_length, **kwargs):
    packed = pack_batch(batch, row_length=row_length)
    return completion_logps(model, **packed, **kwargs), completion_logps(model, **batch, **kwargs)


@pytest.mark.slow
@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize(
    ("shape", "attn", "row_length", "extra"),
    [
        ("mistral-32k", "sdpa", None, {}),
        ("mistral-32k", "eager", None, {}),
        ("mistral-32k", "sdpa", 48, {}),
        ("mistral-32k", "sdpa", None, {"sliding_window": 8}),  # the window reaches inside sequences
        ("qwen2-152k", "sdpa", 64, {}),
    ],
    ids=["sdpa-one-row", "eager-one-row", "sdpa-rows", "sdpa-window-8", "qwen2-152k-rows"],
)
def test_packed_logps_equal_padded(shape, attn, row_length, extra, device):
    model = random_model(shape, attn=attn, **extra).to(device)
    batch = {k: v.to(device) for k, v in random_batch(6, model.config.vocab_size, seed=2).items()}
    with torch.no_grad():
        (packed, packed_counts), (padded, counts) = packed_and_padded(model, batch, row_length, chunk_size=40)
    assert packed_counts.tolist() == counts.tolist()
    assert_close_sums(packed, padded, counts)


@pytest.mark.slow
@pytest.mark.parametrize("row_length", [None, 40])
def test_dpo_loss_and_gradients_equal_padded(row_length):
    from mglkit_dpo.losses import dpo_loss

    model = with_lora(random_model("mistral-32k"))
    model.train()
    batch = random_batch(4, model.config.vocab_size, seed=3)

    def loss_and_grads(batch):
        with torch.no_grad(), model.disable_adapter():
            ref, _ = completion_logps(model, **batch)
        logps, counts = completion_logps(model, **batch, chunk_size=33)
        losses, _, _ = dpo_loss("ipo", 0.1, 0.0, *logps.chunk(2), *ref.chunk(2), *counts.chunk(2))
        model.zero_grad()
        losses.mean().backward()
        return losses.detach(), lora_grads(model)

    padded_loss, padded_grads = loss_and_grads(batch)
    packed_loss, packed_grads = loss_and_grads(pack_batch(batch, row_length=row_length))
    torch.testing.assert_close(packed_loss, padded_loss, atol=1e-5, rtol=0)
    for name, grad in padded_grads.items():
        assert grad.abs().max() > 0, name
        torch.testing.assert_close(packed_grads[name], grad, atol=1e-5, rtol=1e-5, msg=name)
