"""The training pipeline: settings -> data -> split -> model -> tokens -> plan -> trainer -> outputs.

Every setting is checked, and the output folder's rules applied, before anything loads or is written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from . import __version__, distributed, planning, tasks
from .config import TrainConfig
from .errors import ConfigError, UnusableInputError
from .models import ModelOptions, generate, load_model, lora_config
from .outputs import OutputFolder, write_json, write_text
from .pairs import write_jsonl
from .preference import (
    split_train_eval,
)
from .prompts import PromptFormat
from .refcache import base_identity
from .resources import resolve_data_path
from .run import Run, call_safely, checkpoint_dirs
from .sources import HF_PREFIX, SourceSpec, provenance
from .types import TrainJob

SAMPLE_SEED = 0


def trainer_options(trainer, config: TrainConfig, pm) -> SimpleNamespace:
    """The chosen trainer's settings: its defaults, then what the config gives, each checked against
    the trainer's own declaration. A setting of another trainer is an error naming that trainer."""
    specs = {spec.name: spec for spec in trainer.settings}
    values = {name: spec.default for name, spec in specs.items()}
    for name, value in config.options.items():
        spec = specs.get(name)
        if spec is None:
            owners = [t.name for t in pm.all("trainer") if name in {s.name for s in t.settings}]
            where = f"a setting of {', '.join(owners)}" if owners else "not a setting of any installed trainer"
            raise ConfigError(
                f"--{name.replace('_', '-')} is {where}, not of '{trainer.name}'",
                hint="drop it, or choose that trainer with --trainer",
            )
        values[name] = spec.check(value, spec.option)
    options = SimpleNamespace(**values)
    trainer.check(options, config)
    return options


def check_scheduler(name: str) -> None:
    from transformers import SchedulerType

    known = [s.value for s in SchedulerType]
    if name not in known:
        raise ConfigError(f"--scheduler: '{name}' is not a transformers scheduler", hint="one of " + ", ".join(known))


def _check_output(folder: OutputFolder, config: TrainConfig, trainer, options) -> None:
    """The output folder's rules, and that there is something to --resume that this launch can resume
    (main process only)."""
    folder.check()
    if config.resume is not None:
        trainer.check_resume(resume_point(config, folder.build), options, config)


def resume_point(config: TrainConfig, output: Path) -> Path | None:
    if config.resume is None:
        return None
    folder = Path(config.resume) if config.resume != "auto" else output
    points = checkpoint_dirs(folder / "checkpoints") or checkpoint_dirs(folder)
    if not points:
        raise ConfigError(f"--resume {folder}: not a run with checkpoints", hint="give the --output folder of a run")
    return points[-1]


@dataclasses.dataclass
class Prepared:
    """Everything decided and loaded before a run starts."""

    config: TrainConfig
    trainer: Any
    options: SimpleNamespace
    source: SourceSpec  # the training data, as --dataset, --split, --subset and --columns name it
    validation: dict | None  # the data's validation summary, recorded in training_stats.json
    model: Any
    tokenizer: Any
    fmt: PromptFormat
    model_options: ModelOptions
    data: planning.Data
    plan: dict

    @functools.cached_property
    def args(self) -> dict:
        """training_args.json: written when the run starts, so a running run says what it is."""
        return {
            "mglkit_version": __version__,
            "config": dataclasses.asdict(self.config) | {"options": vars(self.options)},
            "method": self.trainer.describe(self.options),
            "prompt_format": self.fmt.to_dict(),
            **provenance(self.source),
        }


def train(config: TrainConfig, pm=None, overwrite: bool = False) -> dict:
    """Run a training job; returns the training statistics (also in training_stats.json), or the plan
    with ``dry_run``."""
    from .plugins import get_plugin_manager

    pm = pm or get_plugin_manager()
    trainer = pm.get("trainer", config.trainer)
    options = trainer_options(trainer, config, pm)
    check_scheduler(config.scheduler)
    engine = distributed.requested_engine()
    if config.quantize and engine in ("fsdp", "deepspeed"):
        raise ConfigError(f"--quantize is not supported under {engine}", hint="QLoRA trains on one GPU, or with DDP")
    source = SourceSpec.named(config.dataset, config)
    folder = OutputFolder(
        config.output, "run", overwrite=overwrite, resume=config.resume is not None, inputs=_local_data(source)
    )
    distributed.on_main(lambda: _check_output(folder, config, trainer, options))
    prepared = prepare(config, trainer, options, source, pm)
    if config.dry_run:
        return prepared.plan
    for name, source in sorted(config.origin.items()):
        if name in ("base", "dataset"):
            tasks.note(f"{name} chosen by {source}: {getattr(config, name)}")
    return _run(prepared, pm, folder)


def _local_data(source: SourceSpec) -> list[Path]:
    """The file or folder of local training data (a run folder must not be or hold it); none for hf:."""
    if source.name.startswith(HF_PREFIX):
        return []
    path = resolve_data_path(source.name)
    if source.name == "-" or not path.exists():
        raise UnusableInputError(
            f"--dataset {source.name}: no such file or folder",
            hint="give a data file, a folder of them, or hf:ORG/NAME",
        )
    return [path]


def prepare(config: TrainConfig, trainer, options, source: SourceSpec, pm) -> Prepared:
    """Data, split, model, tokens and the plan; a plan that cannot run is an error, before any writing."""
    records, validation = planning.records(trainer, options, config, source)
    train_items, eval_items = split_train_eval(records, config.eval_split, config.seed)
    if not train_items:
        raise ConfigError(
            f"no pairs left for training: {len(records)} in {source.name}, "
            f"{len(eval_items)} held out by --eval-split {config.eval_split}",
            hint="lower --eval-split or add pairs",
        )
    model_options = ModelOptions(
        config.precision,
        trust_remote_code=config.trust_remote_code,
        quantize=config.quantize,
        keep_on_cpu=distributed.requested_engine() in ("fsdp", "deepspeed"),
    )
    model, tokenizer = load_model(config.base, model_options, pm)
    fmt = PromptFormat(chat_template=config.chat_template and bool(tokenizer.chat_template))
    data = planning.tokenized(trainer, config, tokenizer, fmt, train_items, eval_items)
    plan = planning.make_plan(config, trainer, data, model, model_options)
    if plan["optimizer_steps"] == 0 and not config.dry_run:
        raise ConfigError(
            f"the plan has 0 optimizer steps ({plan['train_pairs']} training pairs, "
            f"--batch-size {config.batch_size}, {distributed.world_size()} processes)",
            hint="lower --batch-size, or add pairs",
        )
    return Prepared(config, trainer, options, source, validation, model, tokenizer, fmt, model_options, data, plan)


def _run(prepared: Prepared, pm, folder: OutputFolder) -> dict:
    config = prepared.config
    with contextlib.ExitStack() as stack:
        # the main process takes the folder's lock and says where every process writes
        build = Path(distributed.on_main(lambda: str(stack.enter_context(folder))))
        run = Run(build, config, pm, is_main=distributed.is_main())
        stack.callback(run.close)
        run.open()
        if run.is_main:
            write_json(run.dir / "training_args.json", prepared.args)
        for line in planning.plan_lines(prepared.plan):
            run.note(line)
        resume_from = resume_point(config, build)
        if resume_from is not None:
            run.rewind(int(resume_from.name.split("-")[-1]))
            run.note(f"resuming from {resume_from}")
        data, options = prepared.data, prepared.model_options
        job = TrainJob(
            config=config,
            options=prepared.options,
            model=prepared.model,
            tokenizer=prepared.tokenizer,
            lora=lora_config(config),
            train=data.train,
            eval=data.eval,
            train_records=data.train_records,
            eval_records=data.eval_records,
            run=run,
            precision=options.resolved_precision,
            device=options.device_type,
            resume_from=resume_from,
            base_identity=base_identity(config.base, prepared.model, pm),
        )
        result = prepared.trainer.train(job)
        if result.model is None:  # sharded: every process lets go of its part before the base comes back
            job.model = prepared.model = None
            _release_memory()
            distributed.barrier()
        if not result.is_main:
            return {}
        if result.model is None:
            result.model = whole_model(prepared, job.lora, result.last_adapter, pm)
        stats = write_outputs(run, prepared, result, pm)
    run.dir = folder.path  # a replacement was built beside and is now swapped into place
    call_safely(pm, "run_finished", run=run)
    return stats


def whole_model(prepared: Prepared, lora, adapter: dict, pm):
    """A sharded run's model, whole in the main process: the base loaded again (over all the machine's
    GPUs: it may not fit on one), the adapter put on it."""
    from peft import get_peft_model, set_peft_model_state_dict

    options = dataclasses.replace(prepared.model_options, keep_on_cpu=False, spread=True)
    model = get_peft_model(load_model(prepared.config.base, options, pm)[0], lora)
    set_peft_model_state_dict(model, adapter)
    return model.eval()


def _release_memory() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def save_adapter(model, folder: Path, tokenizer, state: dict | None = None) -> None:
    """Adapter weights (safetensors), config and tokenizer, written beside and moved into ``folder``."""
    import shutil
    import tempfile

    from peft import set_peft_model_state_dict

    if state is not None:
        set_peft_model_state_dict(model, state)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".adapter.", dir=folder))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        for item in tmp.iterdir():
            item.replace(folder / item.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_outputs(run, prepared: Prepared, result, pm) -> dict:
    from .markdown import model_card
    from .run import training_stats

    model, tokenizer, fmt = result.model, prepared.tokenizer, prepared.fmt
    save_adapter(model, run.dir / "last", tokenizer)
    save_adapter(model, run.dir, tokenizer, result.best_adapter)  # the best by eval loss, else the last
    samples = prepared.data.samples[: run.config.samples]
    answers = generate(model, tokenizer, [q for q, _ in samples], fmt, run.config.max_new_tokens, seed=SAMPLE_SEED)
    write_jsonl(
        ({"prompt": q, "generation": a, "reference": ref} for (q, ref), a in zip(samples, answers, strict=True)),
        run.logs / "sample_generations.jsonl",
    )
    stats = training_stats(run, prepared.plan, result, prepared.validation)
    benchmarks = None
    if run.config.eval_suite:
        benchmarks = _evaluate_at_end(run, model, tokenizer, fmt, pm, prepared.source, stats)
    args = prepared.args
    write_json(run.dir / "training_args.json", args)
    write_json(run.logs / "training_stats.json", stats)
    write_text(run.dir / "README.md", model_card(run.config, stats, args, benchmarks))
    final = Path(os.path.abspath(run.config.output))  # where the run lands; run.dir may be its build sibling
    run.note(f"saved the adapter to {final} (last weights in {final / 'last'})")
    return stats


def _evaluate_at_end(run, model, tokenizer, fmt, pm, source: SourceSpec, stats) -> str:
    from .config import EvalConfig
    from .evaluation import evaluate

    config = run.config
    run.note(f"evaluating base vs adapter on {config.eval_suite}")
    eval_config = EvalConfig(
        suites=[config.eval_suite], base=config.base, seed=config.seed, train_data=_by_name(source)
    )
    report = evaluate(eval_config, model=model, tokenizer=tokenizer, fmt=fmt, pm=pm)
    if report.warnings:  # one per suite item the training data states (the contamination detector's)
        run.note(
            f"warning: the training data holds {len(report.warnings)} items of {config.eval_suite} (their scores "
            f"are the [seen] rows); the first: {report.warnings[0]}"
        )
    stats["benchmarks"] = report.to_dict()
    return report.markdown()


def _by_name(source: SourceSpec) -> list[str]:
    """The training data as eval's --train-data names it: a name alone (a split or a column mapping
    cannot be named there, so such data is not checked for contamination)."""
    if source.split or source.subset or source.columns:
        return []
    return [source.name if source.name.startswith(HF_PREFIX) else str(resolve_data_path(source.name))]


def api_config(config: TrainConfig | None, options: dict[str, Any]) -> TrainConfig:
    """``mglkit.train(base=..., beta=0.2)``: core fields as they are, the rest as trainer settings."""
    if config is not None:
        return config
    core = {f.name for f in dataclasses.fields(TrainConfig)}
    extra = {k: v for k, v in options.items() if k not in core}
    return TrainConfig(**{k: v for k, v in options.items() if k in core}, options=extra)


def command(pm, name: str):
    """``mglkit train``: the core settings and every installed trainer's own."""
    import click

    from .cli import config_option, exit_help, given, setting_options
    from .config import load_config, trainer_option_specs
    from .settings import declared

    core = declared(TrainConfig)
    plugin_specs = trainer_option_specs(pm.all("trainer"))
    trainers = ", ".join(t.name for t in pm.all("trainer"))

    @click.command(name, epilog=exit_help("the data failed validation, or the run failed"))
    @setting_options(core)
    @setting_options(plugin_specs.values())
    @click.option("--use-wandb", is_flag=True, help="Alias of --report-to wandb.")
    @click.option(
        "--overwrite",
        is_flag=True,
        help="Replace an mglkit run in --output (it stays until the new "
        "one is complete); never a folder mglkit did not make.",
    )
    @config_option("train")
    def train_command(config_file, use_wandb, overwrite, **values):
        """LoRA DPO of a causal language model on preference pairs (or GRPO with reward plugins)."""
        from .report import TrainingDisplay, print_plan, print_training_summary

        options = given(values, list(plugin_specs.values()))
        chosen = given(values, core)
        if use_wandb:
            chosen["report_to"] = sorted(set(chosen.get("report_to", [])) | {"wandb"})
        config = load_config(TrainConfig, config_file, plugin_specs, options=options, **chosen)
        if config.dry_run:
            print_plan(train(config, pm))
            return 0
        pm.register(display := TrainingDisplay(), name="mglkit-terminal")
        try:
            stats = train(config, pm, overwrite=overwrite)
        finally:
            pm.unregister(display)
        if stats:
            print_training_summary(stats)
        return 0

    train_command.help += f"\n\nTrainers installed: {trainers}."
    return train_command
