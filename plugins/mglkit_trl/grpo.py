"""``trl-grpo``: TRL's GRPOTrainer with LoRA and mglkit's reward plugins; prompts from a pair file
(validated as for DPO) or a facts file (question, choices, answer, aliases)."""

from __future__ import annotations

import math
import time

from mglkit import ConfigError, MglkitError, UnusableInputError, get_plugin_manager, open_data, validated_pairs

from .trainer import Bridge, run, shared_args


def check_options(options) -> None:
    """The settings TRL would only trip over mid-run."""
    try:
        low, high = (int(x) for x in options.length_band.split(","))
    except ValueError:
        raise ConfigError(
            f"--length-band {options.length_band}: expected LOW,HIGH (words)", hint="e.g. 20,80"
        ) from None
    if not 1 <= low <= high:
        raise ConfigError(f"--length-band {options.length_band}: need 1 <= LOW <= HIGH", hint="e.g. 20,80")
    pm = get_plugin_manager()
    for name in (options.rewards or []) + list(options.reward_weights or {}):
        pm.get("reward", name)  # an unknown name is the registry's one error
    unused = set(options.reward_weights or {}) - set(options.rewards or options.reward_weights or {})
    if unused:
        raise ConfigError(
            f"--reward-weights names {', '.join(sorted(unused))}, which --rewards leaves out",
            hint="weigh only the rewards you use",
        )


def prompt_records(data, config) -> list[dict]:
    """Every record gets ``question``; the other fields stay for the rewards. ``data`` (a SourceSpec)
    holds preference pairs, or facts (question, aliases, choices/answer) when its first record has
    a question."""
    if not _holds_facts(data):
        pairs, _ = validated_pairs(data, config.skip_validation)
        return [
            {
                "question": p.prompt,
                "chosen": p.chosen,
                "rejected": p.rejected,
                **{k: v for k, v in p.extra.items() if isinstance(v, str)},
            }
            for p in pairs
        ]
    with open_data(data) as source:
        return [_fact(row) for row in source.rows()]


def _holds_facts(data) -> bool:
    """Whether the first record is a facts item; a malformed one is left to the pairs' validation."""
    with open_data(data) as source:
        for chunk in source.chunks():
            first = chunk.decoded()[0]
            return isinstance(first, dict) and "question" in first
    return False


def _fact(row) -> dict:
    record = row.obj
    question = record.get("question")
    if not isinstance(question, str) or not question.strip():
        raise UnusableInputError(f"{row.where('question')}: missing or empty")
    aliases = record.get("aliases")
    if not isinstance(aliases, list) or not aliases or not all(isinstance(a, str) for a in aliases):
        raise UnusableInputError(f"{row.where('aliases')}: expected a list of strings")
    choices, answer = record.get("choices") or [], record.get("answer")
    reference = choices[answer] if isinstance(answer, int) and 0 <= answer < len(choices) else aliases[0]
    return {
        "question": question,
        "aliases": aliases,
        "reference": str(reference),
        "id": str(record.get("id", row.line or row.row)),
        "period": str(record.get("period", "")),
    }


def selected_rewards(options, facts_data: bool) -> list[tuple[object, float]]:
    """(reward, weight) pairs, each reward configured from the trainer's settings."""
    pm = get_plugin_manager()
    names = options.rewards or (
        ["facts", "mongolian", "length"] if facts_data else ["preference", "mongolian", "length"]
    )
    weights = options.reward_weights or {}
    return [(pm.get("reward", name).configure(options), float(weights.get(name, 1.0))) for name in names]


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


def _mean_reward(bridge) -> dict:
    """training_stats.json's mean_reward for GRPO: the mean total reward of the last quarter of steps."""
    rewards = [h["reward"] for h in bridge.run.history if "reward" in h]
    tail = rewards[-max(1, len(rewards) // 4) :]
    return {"mean_reward": sum(tail) / len(tail) if tail else None}


def train(job):
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    cfg, opts = job.config, job.options
    rewards = selected_rewards(opts, facts_data=any("aliases" in r for r in job.train_records))
    args = GRPOConfig(
        **shared_args(job),
        per_device_train_batch_size=cfg.batch_size * opts.num_generations,  # completions: prompts x group
        num_generations=opts.num_generations,
        max_completion_length=cfg.max_new_tokens,
        temperature=opts.temperature,
        beta=opts.kl_coef,
        reward_weights=[w for _, w in rewards],
        eval_strategy="no",
    )
    bridge = Bridge(job.run)
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
    return run(trainer, job, bridge, start, stats=_mean_reward)
