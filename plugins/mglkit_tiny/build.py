"""Build, cache and load the tiny model: a byte-level BPE tokenizer trained on the bundled training
text, a small Mistral model, and a short language-model pre-training on that same text."""

from __future__ import annotations

import hashlib
import json
import math
import time
from pathlib import Path

import mglkit
from mglkit import TrainConfig, bundled, cache_root, load_pairs, read_jsonl
from mglkit.outputs import cache_entry

BUILD_VERSION = 1
SEED = 1206
VOCAB = 3000
SEQ_LEN = 128
BATCH = 16
PRETRAIN_STEPS = 300  # about 65 s on 2 cores; a fixed count keeps the build deterministic
LEARNING_RATE = 3e-3

USER, ASSISTANT, SYSTEM = "<|user|>", "<|assistant|>", "<|system|>"
# The same prompt shape as the original guide's generate_response, as a real chat template.
CHAT_TEMPLATE = (
    "{% for m in messages %}"
    "{% if m['role'] == 'system' %}<|system|>\n{{ m['content'] }}\n"
    "{% elif m['role'] == 'user' %}<|user|>\n{{ m['content'] }}\n"
    "{% elif m['role'] == 'assistant' %}<|assistant|>\n{{ m['content'] }}{{ eos_token }}\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
MODEL_CONFIG = dict(
    hidden_size=192,
    intermediate_size=512,
    num_hidden_layers=4,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=1024,
    rope_theta=10000.0,
    tie_word_embeddings=True,
    sliding_window=None,
)


def training_texts() -> tuple[list[tuple[str, str]], list[str]]:
    """(prompt, chosen answer) pairs of the training file, and passages of data/corpus/ if present.
    Never benchmarks/: the evaluation must see text the model has not."""
    pairs = [(p.prompt, p.chosen) for p in load_pairs(bundled(TrainConfig().dataset))]
    passages = []
    corpus = bundled("data/corpus")
    if corpus.is_dir():
        for path in sorted(corpus.glob("*.jsonl")):
            passages += [record["text"] for _, record in read_jsonl(path)]
        passages += [p.read_text(encoding="utf-8") for p in sorted(corpus.glob("*.txt"))]
    return pairs, passages


def _fingerprint(pairs, passages) -> str:
    digest = hashlib.sha256(json.dumps([BUILD_VERSION, SEED, VOCAB, MODEL_CONFIG, pairs, passages]).encode())
    return digest.hexdigest()[:12]


def model_dir(variant: str) -> Path:
    pairs, passages = training_texts()
    return cache_root() / f"{variant}-{_fingerprint(pairs, passages)}"


def load(variant: str, options):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = model_dir(variant)
    ready = lambda folder: (folder / "config.json").is_file()  # noqa: E731
    with cache_entry(path, ready, f"mglkit:{variant}", on_wait=mglkit.note) as build_dir:
        if build_dir is not None:
            build(variant, build_dir)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=options.dtype)
    # recorded in adapter configs as the base model, so an adapter names what it was trained on
    model.config._name_or_path = model.name_or_path = f"mglkit:{variant}"
    return model, tokenizer


def build(variant: str, folder: Path) -> None:
    """Build the model into ``folder`` (a cache entry being made: mglkit renames it into place)."""
    mglkit.note(f"building mglkit:{variant} once (about a minute on 2 cores); it is cached in {cache_root()}")
    pairs, passages = training_texts()
    tokenizer = train_tokenizer(pairs, passages)
    model = init_model(tokenizer)
    info = {"variant": variant, "seed": SEED, "build_version": BUILD_VERSION}
    if variant == "tiny":
        info.update(pretrain(model, tokenizer, pairs, passages))
    model.config._name_or_path = f"mglkit:{variant}"
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    (folder / "mglkit_build.json").write_text(json.dumps(info, indent=2))


def train_tokenizer(pairs, passages):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    texts = [t for pair in pairs for t in pair] + passages
    specials = ["<s>", "</s>", "<pad>", USER, ASSISTANT, SYSTEM]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A $B", special_tokens=[("<s>", tokenizer.token_to_id("<s>"))]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        additional_special_tokens=[USER, ASSISTANT, SYSTEM],
        chat_template=CHAT_TEMPLATE,
        model_max_length=MODEL_CONFIG["max_position_embeddings"],
    )


def init_model(tokenizer):
    import torch
    from transformers import MistralConfig, MistralForCausalLM

    torch.manual_seed(SEED)
    config = MistralConfig(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **MODEL_CONFIG,
    )
    return MistralForCausalLM(config)


def pretrain(model, tokenizer, pairs, passages) -> dict:
    """Next-token pre-training on packed training text."""
    import torch

    def prompt(question: str) -> str:
        messages = [{"role": "user", "content": question}]
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    texts = [prompt(question) + answer + tokenizer.eos_token for question, answer in pairs]
    texts += [passage + tokenizer.eos_token for passage in passages]
    ids = [i for text in texts for i in tokenizer(text)["input_ids"]]
    blocks = torch.tensor(ids[: len(ids) // SEQ_LEN * SEQ_LEN]).view(-1, SEQ_LEN)
    generator = torch.Generator().manual_seed(SEED)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=0.01)

    def lr_at(step: int) -> float:
        warmup = 20
        if step < warmup:
            return (step + 1) / warmup
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, step / PRETRAIN_STEPS)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_at)
    model.train()
    start, losses = time.perf_counter(), []
    with mglkit.progress("pre-training mglkit:tiny", total=PRETRAIN_STEPS) as task:
        while len(losses) < PRETRAIN_STEPS:
            _epoch(model, blocks, generator, optimizer, scheduler, losses, task)
    model.eval()
    return {
        "pretrain_steps": len(losses),
        "pretrain_tokens": len(losses) * BATCH * SEQ_LEN,
        "corpus_tokens": len(ids),
        "first_loss": round(losses[0], 4),
        "final_loss": round(sum(losses[-10:]) / len(losses[-10:]), 4),
        "pretrain_seconds": round(time.perf_counter() - start, 1),
    }


def _epoch(model, blocks, generator, optimizer, scheduler, losses, task) -> None:
    """One pass over the shuffled blocks (or what is left of the pre-training steps)."""
    import torch

    order = torch.randperm(len(blocks), generator=generator)
    for first in range(0, len(order) - BATCH + 1, BATCH):
        batch = blocks[order[first : first + BATCH]]
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        task.update(completed=len(losses), info=f"loss {losses[-1]:.3f}")
        if len(losses) >= PRETRAIN_STEPS:
            break
