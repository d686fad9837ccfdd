"""``trl-grpo``: TRL's GRPOTrainer with LoRA and mglkit's reward plugins; prompts from a pair file
(validated as for DPO) or a facts file (question, choices, answer, aliases)."""

from __future__ import annotations

import math
import time

import orjson

from mglkit import ConfigError, MglkitError, UnusableInputError, get_plugin_manager, validated_pairs

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


def prompt_records(path, config) -> list[dict]:
    """Every record gets ``question``; the other fields stay for the rewards."""
    with open(path, "rb") as handle:
        first = next((line for line in handle if line.strip()), b"")
    try:
        facts_data = "question" in orjson.loads(first)
    except (orjson.JSONDecodeError, TypeError):
        facts_data = False
    if not facts_data:
        pairs, _ = validated_pairs(path, config.skip_validation)
        return [
            {
                "question": p.prompt,
                "chosen": p.chosen,
                "rejected": p.rejected,
                **{k: v for k, v in p.extra.items() if isinstance(v, str)},
            }
            for p in pairs
        ]
    return [_fact(record, path, number) for number, record in _lines(path)]


def _lines(path):
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, 1):
            if line.strip():
                try:
                    yield number, orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    raise UnusableInputError(f"{path}, line {number}: not valid JSON ({exc})") from None


def _fact(record, path, number) -> dict:
    if not isinstance(record, dict):
        raise UnusableInputError(f"{path}, line {number}: not a JSON object")
    question = record.get("question")
    if not isinstance(question, str) or not question.strip():
        raise UnusableInputError(f"{path}, line {number}, field 'question': missing or empty")
    aliases = record.get("aliases")
    if not isinstance(aliases, list) or not aliases or not all(isinstance(a, str) for a in aliases):
        raise UnusableInputError(f"{path}, line {number}, field 'aliases': expected a list of strings")
    choices, answer = record.get("choices") or [], record.get("answer")
    reference = choices[answer] if isinstance(answer, int) and 0 <= answer < len(choices) else aliases[0]
    return {
        "question": question,
        "aliases": aliases,
        "reference": str(reference),
        "id": str(record.get("id", number)),
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
