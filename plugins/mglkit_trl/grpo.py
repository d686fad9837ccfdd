"""``trl-grpo``: TRL's GRPOTrainer with LoRA and mglkit's reward plugins."""

from __future__ import annotations

import math
import time

from mglkit.errors import ConfigError, MglkitError

from .trainer import _Bridge, run, shared_args


def selected_rewards(config, pm, facts_data: bool) -> list[tuple[object, float]]:
    """(reward, weight) pairs from --rewards and --reward-weights (or the config file)."""
    registered = pm.collect("register_rewards")
    names = config.rewards or ("facts,mongolian,length" if facts_data else "preference,mongolian,length")
    names = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in names if n not in registered]
    if unknown:
        raise ConfigError(f"unknown reward '{unknown[0]}'", hint="installed: " + ", ".join(sorted(registered)))
    weights = config.reward_weights or {}
    if isinstance(weights, str):
        try:
            weights = {k.strip(): float(v) for k, v in (part.split("=") for part in weights.split(",") if part)}
        except ValueError:
            raise ConfigError(f"--reward-weights {config.reward_weights}: expected name=weight,...") from None
    rewards = []
    for name in names:
        reward = registered[name].obj
        if hasattr(reward, "configure"):
            reward = reward.configure(config)
        rewards.append((reward, float(weights.get(name, 1.0))))
    return rewards


def as_reward_function(reward):
    """TRL's reward-function shape around one of ours; a failing or NaN reward is a clear error."""

    def function(prompts, completions, **columns):
        values = []
        for i, (prompt, completion) in enumerate(zip(prompts, completions, strict=True)):
            record = {k: v[i] for k, v in columns.items() if isinstance(v, list) and len(v) == len(prompts)}
            question = record.get("question", prompt)
            try:
                value = float(reward(question, completion, record))
            except Exception as exc:
                raise MglkitError(
                    f"reward '{reward.name}' failed on the prompt «{question[:80]}»: {type(exc).__name__}: {exc}",
                    hint="fix the reward plugin, or leave it out of --rewards",
                ) from None
            if not math.isfinite(value):
                raise MglkitError(
                    f"reward '{reward.name}' returned {value} for the prompt «{question[:80]}»",
                    hint="a reward must return a finite number",
                )
            values.append(value)
        return values

    function.__name__ = reward.name
    return function


def train(job):
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    cfg = job.config
    rewards = selected_rewards(cfg, job.run.pm, job.facts_data)
    args = GRPOConfig(
        **shared_args(job),
        per_device_train_batch_size=cfg.batch_size * cfg.num_generations,  # completions: prompts x group
        num_generations=cfg.num_generations,
        max_completion_length=cfg.max_new_tokens,
        temperature=cfg.temperature,
        beta=cfg.kl_coef,
        reward_weights=[w for _, w in rewards],
        eval_strategy="no",
    )
    bridge = _Bridge(job.run)
    start = time.perf_counter()
    trainer = GRPOTrainer(
        model=job.model,
        reward_funcs=[as_reward_function(r) for r, _ in rewards],
        args=args,
        train_dataset=Dataset.from_list(job.train_records),
        processing_class=job.tokenizer,
        peft_config=job.lora,
        callbacks=[bridge],
    )
    return run(trainer, job, bridge, start)
