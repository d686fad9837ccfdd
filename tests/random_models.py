"""Small random causal LMs shaped like real ones (built from a config, no download) and random
DPO batches laid out as the dpo trainer lays them out, for the log-probability and packing tests."""

import random

import torch

from mglkit.preference import TokenizedPair, collate

SHAPES = {
    # Mistral-7B's vocabulary and head layout, Qwen2's 152k vocabulary with tied embeddings
    "mistral-32k": ("MistralConfig", dict(vocab_size=32000, tie_word_embeddings=False, sliding_window=None)),
    "qwen2-152k": ("Qwen2Config", dict(vocab_size=151936, tie_word_embeddings=True)),
    "gemma2-softcap": ("Gemma2Config", dict(vocab_size=4000, final_logit_softcapping=30.0, head_dim=16)),
}
SMALL = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)


def random_model(shape: str, attn: str = "sdpa", seed: int = 0, **overrides):
    import transformers

    config_class, fields = SHAPES[shape]
    config = getattr(transformers, config_class)(**{**SMALL, **fields, **overrides}, attn_implementation=attn)
    torch.manual_seed(seed)
    return transformers.AutoModelForCausalLM.from_config(config).eval()


def random_pairs(n: int, vocab: int, seed: int = 0, lengths=(3, 40)) -> list[TokenizedPair]:
    rng = random.Random(seed)

    def ids(k):
        return [rng.randrange(1, vocab) for _ in range(k)]

    return [TokenizedPair(ids(rng.randint(1, 12)), ids(rng.randint(*lengths)), ids(rng.randint(*lengths)))
            for _ in range(n)]  # fmt: skip


def random_batch(n: int, vocab: int, seed: int = 0, **kwargs) -> dict:
    """A padded dpo batch: n chosen rows, then n rejected rows, right-padded with id 0."""
    return collate(random_pairs(n, vocab, seed, **kwargs), pad_id=0)


def full_logps(model, batch: dict):
    """The plain computation (the full fp32 log-softmax), as mglkit had it: the oracle."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False).logits
    logps = torch.log_softmax(logits[:, :-1].float(), dim=-1).gather(2, batch["input_ids"][:, 1:, None]).squeeze(-1)
    mask = batch["completion_mask"][:, 1:]
    return (logps * mask).sum(dim=1), mask.sum(dim=1)


def with_lora(model, seed: int = 1):
    """A LoRA adapter whose B matrices are random too, so the adapter changes the outputs."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"], init_lora_weights=False)
    return get_peft_model(model, lora)


def lora_grads(model) -> dict:
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


def devices() -> list[str]:
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def assert_close_sums(got, want, counts):
    """Within 1e-5 per completion token (fp32 sums of ~40 tokens at -log(152k) each carry ~1e-5 of
    rounding from the summation order alone), and within 1e-6 relative."""
    torch.testing.assert_close(got / counts.clamp(min=1), want / counts.clamp(min=1), atol=1e-5, rtol=0)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-6)
