"""Base model + tokenizer + LoRA: a Hugging Face id or local path, or a model-source plugin."""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import distributed
from .errors import ConfigError, UnusableInputError
from .prompts import PromptFormat


@dataclass
class ModelOptions:
    precision: str = "auto"
    device: str = "auto"  # auto: cuda when available
    trust_remote_code: bool = False
    quantize: str | None = None  # "4bit"
    keep_on_cpu: bool = False  # a sharding engine (FSDP, DeepSpeed) moves each process's shard itself
    spread: bool = False  # over all the machine's GPUs even under a launcher (a sharded run's outputs)

    @property
    def device_type(self) -> str:
        import torch

        if self.device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        return self.device

    @property
    def resolved_precision(self) -> str:
        """auto: bf16 where supported, else fp16 on GPU, fp32 on CPU."""
        return distributed.resolved_precision(self.precision, self.device_type)

    @property
    def dtype(self):
        import torch

        return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[self.resolved_precision]


def find_model_source(name: str, pm=None):
    from .plugins import get_plugin_manager

    return next((s for s in (pm or get_plugin_manager()).all("model source") if name.startswith(s.prefix)), None)


def load_model(name: str, options: ModelOptions | None = None, pm=None) -> tuple[Any, Any]:
    """(model, tokenizer) for a model-source name (``mglkit:tiny``), a hub id or a local folder."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # mglkit shows its own progress
    distributed.quiet_deepspeed()
    options = options or ModelOptions()
    source = find_model_source(name, pm)
    if options.quantize:
        _four_bit(options)  # fails clearly without CUDA or bitsandbytes
        if source is not None:
            raise ConfigError(f"--quantize is for large hub models, not {name}", hint="drop --quantize")
    if source is not None:
        model, tokenizer = source.load(name, options)
    else:
        model, tokenizer = _load_hf(name, options)
    if tokenizer.pad_token is None:  # batching needs one; the eos token never trains as padding
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    if options.device_type != "cpu" and not options.keep_on_cpu and getattr(model, "hf_device_map", None) is None:
        model.to(options.device_type)
    return model, tokenizer


def _load_hf(name: str, options: ModelOptions):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs: dict[str, Any] = {"dtype": options.dtype, "trust_remote_code": options.trust_remote_code}
    if options.device_type == "cuda" and not options.keep_on_cpu:
        kwargs["device_map"] = "auto" if options.spread else distributed.device_map()
    if options.quantize == "4bit":
        kwargs["quantization_config"] = _four_bit(options)
    with _loading(name):
        tokenizer = AutoTokenizer.from_pretrained(name, trust_remote_code=options.trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(name, **kwargs)
    return model, tokenizer


def load_tokenizer(name: str, pm=None) -> Any:
    """A model's tokenizer (what renders its prompts), without a hub model's weights; a model
    source (``mglkit:tiny``) loads both."""
    source = find_model_source(name, pm)
    if source is not None:
        return source.load(name, ModelOptions(precision="fp32", device="cpu"))[1]
    from transformers import AutoTokenizer

    with _loading(name):
        return AutoTokenizer.from_pretrained(name)


@contextmanager
def _loading(name: str):
    """A model that cannot be loaded is unusable input, said in one line."""
    try:
        yield
    except OSError as exc:
        local = Path(name).exists()
        raise UnusableInputError(
            f"cannot load model '{name}': {str(exc).splitlines()[0]}",
            hint="check the folder" if local else "give a local model folder, a reachable hub id, or mglkit:tiny",
        ) from None
    except ValueError as exc:
        if "trust_remote_code" in str(exc):
            raise ConfigError(f"model '{name}' ships its own code", hint="rerun with --trust-remote-code") from None
        raise UnusableInputError(
            f"cannot load model '{name}': {str(exc).splitlines()[0]}",
            hint="check the model folder's config and weights",
        ) from None


def _four_bit(options: ModelOptions):
    import torch

    if options.device_type != "cuda" or not torch.cuda.is_available():
        raise ConfigError(
            "--quantize 4bit needs a CUDA GPU (bitsandbytes)",
            hint="drop --quantize on CPU; a tiny model trains fine in fp32",
        )
    try:
        import bitsandbytes  # noqa: F401
        from transformers import BitsAndBytesConfig
    except ImportError:
        raise ConfigError("--quantize 4bit needs bitsandbytes", hint="pip install 'mglkit[qlora]'") from None
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=options.dtype,
    )


def lora_config(config):
    from peft import LoraConfig

    return LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=config.lora_targets(),
        bias="none",
        task_type="CAUSAL_LM",
    )


def lora_parameter_count(model, config) -> tuple[int, int]:
    """(trainable LoRA parameters, all parameters of the base model), counted without building
    the adapter: r * (in + out) for every targeted linear layer, as PEFT creates them."""
    import torch

    targets = config.lora_targets()
    total = sum(p.numel() for p in model.parameters())
    output_layer = model.get_output_embeddings()
    trainable = 0
    for name, module in model.named_modules():
        if not isinstance(module, torch.nn.Linear) or module is output_layer:
            continue
        if targets == "all-linear" or name.rsplit(".", 1)[-1] in targets:
            trainable += config.lora_r * (module.in_features + module.out_features)
    if trainable == 0:
        raise ConfigError(
            f"--lora-target {config.lora_target} matches no linear layer of this model",
            hint="use all-linear, or names such as q_proj,v_proj",
        )
    return trainable, total


def adapter_base(adapter_dir: str | Path) -> str | None:
    """The base model an adapter folder names (``base_model_name_or_path``)."""
    config = Path(adapter_dir) / "adapter_config.json"
    if not config.is_file():
        raise UnusableInputError(
            f"{adapter_dir}: no adapter_config.json", hint="give a run folder or an adapter folder"
        )
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise UnusableInputError(f"{config}: not valid JSON ({exc})", hint="the adapter folder is damaged") from None
    base = data.get("base_model_name_or_path") if isinstance(data, dict) else None
    if not isinstance(data, dict) or not isinstance(base, str | None):
        raise UnusableInputError(
            f"{config}, field 'base_model_name_or_path': malformed", hint="the adapter folder is damaged"
        )
    return base


def load_adapter(model, adapter_dir: str | Path, base_name: str, adapter_name: str = "default"):
    """The base model with a trained LoRA adapter (or one more adapter, on a PeftModel); an adapter of
    another base model is refused."""
    from peft import PeftModel

    recorded = adapter_base(adapter_dir)
    if recorded and recorded != base_name and Path(recorded).name != Path(base_name).name:
        raise ConfigError(
            f"{adapter_dir} was trained on '{recorded}', not '{base_name}'",
            hint=f"use --base {recorded}",
        )
    try:
        if isinstance(model, PeftModel):
            model.load_adapter(str(adapter_dir), adapter_name=adapter_name)
            return model
        return PeftModel.from_pretrained(model, str(adapter_dir), adapter_name=adapter_name)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:  # missing weights, shapes of another model...
        raise UnusableInputError(
            f"{adapter_dir}: cannot load the adapter: {str(exc).splitlines()[0]}",
            hint="give a run folder or an adapter folder made for this base model",
        ) from None


def generate(
    model,
    tokenizer,
    prompts: list[str],
    fmt: PromptFormat,
    max_new_tokens: int = 128,
    temperature: float = 0.7,
    top_p: float = 0.9,
    seed: int = 0,
    batch_size: int = 8,
) -> list[str]:
    """Answers to ``prompts`` (the guide's generate_response, batched, left-padded)."""
    import torch

    device = next(model.parameters()).device
    torch.manual_seed(seed)
    answers = []
    model.eval()
    for first in range(0, len(prompts), batch_size):
        texts = [fmt.render(tokenizer, p) for p in prompts[first : first + batch_size]]
        inputs = tokenizer(texts, return_tensors="pt", padding=True, padding_side="left").to(device)
        with torch.no_grad():
            out = model.generate(
                **inputs,
                max_new_tokens=max_new_tokens,
                do_sample=temperature > 0,
                temperature=temperature if temperature > 0 else None,
                top_p=top_p if temperature > 0 else None,
                pad_token_id=tokenizer.pad_token_id,
            )
        new = out[:, inputs["input_ids"].shape[1] :]
        answers += [a.strip() for a in tokenizer.batch_decode(new, skip_special_tokens=True)]
    return answers
