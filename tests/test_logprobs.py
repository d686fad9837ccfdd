"""completion_logps: the chunked computation equals the full log-softmax one (``full_logps``, mglkit's
computation before it) in values and gradients, for plain and PEFT models, with and without the
adapter, and falls back where the head is not plain."""

import pytest
import torch
from random_models import (
    assert_close_sums,
    devices,
    full_logps,
    lora_grads,
    random_batch,
    random_model,
    with_lora,
)

from mglkit.logprobs import completion_logps, plain_head

pytestmark = pytest.mark.slow


def assert_same(batch, model, chunk_size):
    with torch.no_grad():
        want, want_counts = full_logps(model, batch)
        got, counts = completion_logps(model, **batch, chunk_size=chunk_size)
    assert got.dtype == torch.float32 and counts.tolist() == want_counts.tolist()
    assert_close_sums(got, want.float(), counts)
    return got


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("shape", ["mistral-32k", "qwen2-152k"])
def test_equals_full_log_softmax_on_real_shapes(shape, device):
    model = random_model(shape).to(device)
    assert plain_head(model) is model.lm_head
    batch = {k: v.to(device) for k, v in random_batch(6, model.config.vocab_size).items()}
    assert batch["attention_mask"].float().mean() < 0.9  # rows of different lengths: padding matters
    for chunk_size in (3, 37, 4096):  # a few positions, several chunks, everything in one chunk
        assert_same(batch, model, chunk_size)


def test_equals_full_log_softmax_on_tiny(tiny):
    from mglkit.models import PromptFormat
    from mglkit.pairs import load_pairs
    from mglkit.preference import collate, tokenize_pairs
    from mglkit.resources import bundled

    model, tokenizer = tiny
    pairs = list(load_pairs(bundled("data/mgl_history_grpo.jsonl")))[:8]
    pairs = tokenize_pairs(pairs, tokenizer, PromptFormat(True))
    logps = assert_same(collate(pairs, tokenizer.pad_token_id), model.eval(), chunk_size=100)
    assert torch.isfinite(logps).all() and (logps < 0).all()


@pytest.mark.parametrize("device", devices())
def test_peft_adapter_on_and_off(device):
    base = random_model("mistral-32k")
    batch = random_batch(4, base.config.vocab_size)
    with torch.no_grad():
        plain, _ = completion_logps(base, **batch)
    model = with_lora(base).to(device)
    batch = {k: v.to(device) for k, v in batch.items()}
    adapted = assert_same(batch, model, chunk_size=50)
    with model.disable_adapter():
        reference = assert_same(batch, model, chunk_size=50)
    torch.testing.assert_close(reference.cpu(), plain, atol=1e-5, rtol=1e-6)
    assert (adapted - reference).abs().max() > 1e-2  # the adapter was really on


@pytest.mark.parametrize("shape", ["mistral-32k", "qwen2-152k"])
def test_lora_gradients_equal_the_full_computation(shape):
    model = with_lora(random_model(shape))
    model.train()
    batch = random_batch(4, model.config.vocab_size)
    weights = torch.linspace(-1.0, 1.0, 8)  # a loss that weighs rows differently, as DPO does

    def gradients(compute):
        model.zero_grad()
        (compute()[0] * weights).sum().backward()
        return lora_grads(model)

    want = gradients(lambda: full_logps(model, batch))
    got = gradients(lambda: completion_logps(model, **batch, chunk_size=29))
    assert want.keys() == got.keys() and len(want) == 12
    for name in want:
        assert want[name].abs().max() > 0, name
        torch.testing.assert_close(got[name], want[name], atol=1e-5, rtol=1e-5, msg=name)


@pytest.mark.parametrize("device", devices())
def test_autocast_matches_the_full_computation_under_autocast(device):
    model = with_lora(random_model("mistral-32k")).to(device)
    batch = {k: v.to(device) for k, v in random_batch(4, model.config.vocab_size).items()}
    with torch.no_grad(), torch.autocast(device, dtype=torch.bfloat16):
        want, _ = full_logps(model, batch)
        got, _ = completion_logps(model, **batch, chunk_size=64)
    # bf16 head outputs: both round the same logits, per-token differences stay at bf16's resolution
    torch.testing.assert_close(got, want.float(), atol=0.05, rtol=1e-3)


def test_falls_back_where_logits_are_transformed_after_the_head():
    model = random_model("gemma2-softcap", attn="eager")
    assert plain_head(model) is None  # final_logit_softcapping
    batch = random_batch(3, model.config.vocab_size)
    assert_same(batch, model, chunk_size=16)
    plain = random_model("mistral-32k")
    plain.config.logits_scaling = 4.0  # a plain model type with a logit transform in its config
    assert plain_head(plain) is None


def test_completion_free_rows_give_zero():
    model = random_model("mistral-32k")
    batch = random_batch(2, model.config.vocab_size)
    batch["completion_mask"][1] = 0
    with torch.no_grad():
        sums, counts = completion_logps(model, **batch)
    assert sums[1] == 0 and counts[1] == 0 and counts[0] > 0
