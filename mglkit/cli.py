"""The ``mglkit`` command: parse, call a pipeline, render. Kept thin on purpose."""

from __future__ import annotations

import importlib.metadata
import sys

import click

from . import __version__
from .errors import MglkitError
from .plugins import get_plugin_manager

KEY_LIBRARIES = ("pluggy", "click", "rich", "torch", "transformers", "peft", "trl", "accelerate")


def _versions() -> str:
    lines = [f"mglkit {__version__}", f"python {sys.version.split()[0]}"]
    for name in KEY_LIBRARIES:
        try:
            lines.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            lines.append(f"{name} not installed")
    return "\n".join(lines)


def _print_version(ctx: click.Context, _param, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(_versions())
        ctx.exit()


class _Group(click.Group):
    """Loads plugins before listing or resolving commands, so plugin commands appear."""

    _loaded = False

    def _load(self) -> None:
        if not _Group._loaded:
            _Group._loaded = True
            pm = get_plugin_manager()
            for error in pm.load_errors:
                click.echo(f"mglkit: warning: {error} (skipped; --strict-plugins makes this fatal)", err=True)
            pm.hook.register_commands(cli=self)

    def list_commands(self, ctx):
        self._load()
        return super().list_commands(ctx)

    def get_command(self, ctx, name):
        self._load()
        return super().get_command(ctx, name)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Show mglkit's version and the key libraries' versions.",
)
@click.option("--strict-plugins", is_flag=True, help="A plugin that fails to load is fatal.")
def cli(strict_plugins: bool) -> None:
    """mglkit: preference fine-tuning of language models on Mongolian history.

    Validate preference data, train LoRA adapters with DPO, evaluate base vs adapter.
    """
    if strict_plugins:
        get_plugin_manager().raise_load_errors()


@cli.command()
@click.argument("files", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable report on stdout.")
@click.option("--out-clean", type=click.Path(dir_okay=False), help="Write records without errors here.")
@click.option(
    "--out-rejects",
    type=click.Path(dir_okay=False),
    help='Write records with errors here: {"line", "reasons", "record"|"raw"}.',
)
@click.option(
    "--fix",
    is_flag=True,
    default=None,
    help="Repair invisible characters, Latin look-alikes, NFC and whitespace first.",
)
@click.option("--strict", is_flag=True, default=None, help="Treat warnings as errors.")
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    help="Worker processes for per-record checks.",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    help="TOML config ([validate] table); default: mglkit.toml or [tool.mglkit.validate].",
)
@click.option("--min-words-prompt", type=click.IntRange(0), help="Default 5.")
@click.option("--min-words-chosen", type=click.IntRange(0), help="Default 20.")
@click.option("--min-words-rejected", type=click.IntRange(0), help="Default 10.")
@click.option("--min-cyrillic", type=click.FloatRange(0, 1), help="Share of letters; default 0.8.")
@click.option(
    "--similarity-threshold",
    type=click.FloatRange(0, 1),
    help="Near-identical chosen/rejected warning at or above this; default 0.9.",
)
@click.option("--min-pairs", type=click.IntRange(0), help="Fewer valid pairs is an error; default 10.")
@click.option("--recommended-pairs", type=click.IntRange(0), help="Fewer is a warning; default 100.")
@click.option(
    "--language-detector",
    type=click.Choice(["signals", "lingua"]),
    help="signals (default, fast, explainable) or lingua (extra: lang).",
)
@click.option("--validators", help="Comma-separated validator names to run (default: all).")
def validate(files, as_json, out_clean, out_rejects, fix, strict, jobs, config_file, validators, **thresholds) -> None:
    """Check preference-pair JSONL files (- reads standard input).

    Exit status: 0 no errors, 1 errors, 2 unusable input.
    """
    from .config import load_validation_config
    from .pairs import display_name
    from .validation import validate_file, worst_verdict

    if (out_clean or out_rejects) and len(files) > 1:
        raise click.UsageError("--out-clean/--out-rejects take one FILE at a time")
    config = load_validation_config(
        config_file,
        fix=fix,
        strict=strict,
        validators=[v.strip() for v in validators.split(",") if v.strip()] if validators else None,
        **thresholds,
    )
    outputs = {"out_clean": out_clean, "out_rejects": out_rejects, "inputs": list(files)}
    reports = []
    if as_json:
        from .report import JsonFindingsWriter

        stream = sys.stdout.buffer
        several = len(files) > 1
        if several:
            stream.write(b'{"reports": [\n')
        for i, file in enumerate(files):
            if i:
                stream.write(b",\n")
            writer = JsonFindingsWriter(stream, display_name(file))
            report = validate_file(file, config, sink=writer, keep_findings=False, jobs=jobs, **outputs)
            writer.close(report)
            reports.append(report)
        verdict = worst_verdict(r.verdict for r in reports)
        if several:
            stream.write(b'\n], "verdict": "' + verdict.encode() + b'"}')
        stream.write(b"\n")
        stream.flush()
    else:
        from .report import console, print_validation

        out = console()
        for file in files:
            report = validate_file(file, config, keep_findings=False, jobs=jobs, **outputs)
            print_validation(report, out)
            reports.append(report)
        verdict = worst_verdict(r.verdict for r in reports)
    sys.exit(_exit_code(verdict))


def _exit_code(verdict: str) -> int:
    from .validation import exit_code

    return exit_code(verdict)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable listing.")
def plugins(as_json: bool) -> None:
    """List installed plugins, the hooks each implements and what each registers."""
    pm = get_plugin_manager()
    rows = pm.listing()
    if as_json:
        from .report import write_json

        write_json({"plugins": rows, "load_errors": [str(e) for e in pm.load_errors]})
    else:
        from .report import print_plugins

        print_plugins(rows, pm.load_errors)


def _train_options(function):
    """The options of `mglkit train`, each mapped onto TrainConfig."""
    options = [
        click.option(
            "--base",
            help="Base model: hub id, local folder, or mglkit:tiny. Default mistralai/Mistral-7B-Instruct-v0.2.",
        ),
        click.option("--dataset", help="Preference pairs (JSONL). Default data/mgl_history_grpo.jsonl."),
        click.option("--output", help="Run folder. Default models/mgl_history_grpo_adapter."),
        click.option("--trainer", help="A registered trainer: trl-dpo (default) or dpo."),
        click.option("--batch-size", type=click.IntRange(1), help="Per device. Default 4."),
        click.option("--learning-rate", type=float, help="Default 5e-6 (meant for 7B models)."),
        click.option("--epochs", type=float, help="Default 2."),
        click.option("--max-length", type=click.IntRange(8), help="Tokens of prompt + answer. Default 512."),
        click.option("--lora-r", type=click.IntRange(1), help="Default 16."),
        click.option("--lora-alpha", type=click.IntRange(1), help="Default 32."),
        click.option("--lora-dropout", type=click.FloatRange(0, 1), help="Default 0.05."),
        click.option("--lora-target", help="Module names, comma-separated, or all-linear. Default q,k,v,o_proj."),
        click.option("--grad-accum", type=click.IntRange(1), help="Gradient accumulation steps. Default 8."),
        click.option("--beta", type=float, help="DPO beta. Default 0.1."),
        click.option("--loss", type=click.Choice(["sigmoid", "ipo", "hinge", "robust"]), help="Default sigmoid."),
        click.option(
            "--label-smoothing",
            type=click.FloatRange(0, 0.5, max_open=True),
            help="Robust DPO's label-flip probability. Default 0.",
        ),
        click.option("--warmup-ratio", type=click.FloatRange(0, 1, max_open=True), help="Default 0.1."),
        click.option("--scheduler", help="Any transformers scheduler (cosine, linear, constant...). Default cosine."),
        click.option("--weight-decay", type=float, help="Default 0."),
        click.option("--max-grad-norm", type=float, help="Default 1.0."),
        click.option("--eval-split", type=click.FloatRange(0, 1, max_open=True), help="Default 0.1; 0: no eval."),
        click.option("--eval-steps", type=click.IntRange(1), help="Default: every epoch."),
        click.option("--save-steps", type=click.IntRange(1), help="Default: every epoch."),
        click.option("--max-steps", type=int, help="Optimizer steps; overrides --epochs."),
        click.option("--seed", type=int, help="Default 42."),
        click.option(
            "--precision",
            type=click.Choice(["auto", "fp32", "fp16", "bf16"]),
            help="auto: bf16 where supported, else fp16 on GPU, fp32 on CPU.",
        ),
        click.option("--quantize", type=click.Choice(["4bit"]), help="QLoRA through bitsandbytes (CUDA)."),
        click.option(
            "--report-to",
            multiple=True,
            type=click.Choice(["wandb", "tensorboard"]),
            help="Extra metrics sinks (jsonl and the terminal always).",
        ),
        click.option("--samples", type=click.IntRange(0), help="Sample generations written at the end. Default 8."),
        click.option("--max-new-tokens", type=click.IntRange(1), help="For sample generations. Default 96."),
        click.option("--logging-steps", type=click.IntRange(1), help="Default 1."),
        click.option(
            "--eval", "eval_suite", help="At the end, evaluate base vs adapter on this suite (e.g. benchmarks)."
        ),
        click.option("--num-generations", type=click.IntRange(2), help="GRPO: answers sampled per prompt. Default 4."),
        click.option("--temperature", type=click.FloatRange(0, min_open=True), help="GRPO: sampling. Default 1.0."),
        click.option("--kl-coef", type=click.FloatRange(0), help="GRPO: KL coefficient. Default 0.04."),
        click.option("--rewards", help="GRPO: comma-separated rewards (facts, mongolian, length, preference)."),
        click.option("--reward-weights", help="GRPO: name=weight,... Default 1 each."),
        click.option("--length-band", help="GRPO: words the length reward wants, LOW,HIGH. Default 20,80."),
        click.option(
            "--resume",
            is_flag=False,
            flag_value="auto",
            default=None,
            help="Continue a run from its last checkpoint (default: the --output folder).",
        ),
        click.option("--gradient-checkpointing", is_flag=True, default=None),
        click.option("--compile", is_flag=True, default=None, help="torch.compile the model."),
        click.option("--no-chat-template", "no_chat_template", is_flag=True, help="Plain-text prompts."),
        click.option("--trust-remote-code", is_flag=True, default=None),
        click.option("--keep-dropout", is_flag=True, default=None, help="Keep the model's dropout (both trainers)."),
        click.option(
            "--precompute-ref/--no-precompute-ref",
            default=None,
            help="Reference log-probs once before training (default on).",
        ),
        click.option("--group-by-length", is_flag=True, default=None, help="dpo: batch similar lengths together."),
        click.option("--skip-validation", is_flag=True, default=None),
        click.option("--dry-run", is_flag=True, default=None, help="Validate and print the plan; train nothing."),
        click.option("--use-wandb", is_flag=True, help="Alias of --report-to wandb."),
        click.option("--overwrite", is_flag=True, help="Replace a non-empty --output folder."),
        click.option(
            "--config",
            "config_file",
            type=click.Path(dir_okay=False),
            help="TOML file with a [train] table; flags override it.",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


@cli.command()
@_train_options
def train(config_file, no_chat_template, use_wandb, report_to, overwrite, **options) -> None:
    """LoRA DPO of a causal language model on preference pairs (or GRPO with reward plugins)."""
    from .config import load_train_config
    from .report import TrainingProgress, print_plan, print_training_summary
    from .training import train as run_training

    sinks = set(report_to) | ({"wandb"} if use_wandb else set())
    config = load_train_config(
        config_file,
        chat_template=False if no_chat_template else None,
        report_to=sorted(sinks) or None,
        **options,
    )
    if config.dry_run:
        print_plan(run_training(config))
        return
    with TrainingProgress() as progress:
        stats = run_training(config, overwrite=overwrite, progress=progress)
    if stats:
        print_training_summary(stats)


@cli.command()
@click.argument("question", nargs=-1, required=True)
@click.option("--base", default="mistralai/Mistral-7B-Instruct-v0.2", show_default=True)
@click.option("--adapter", type=click.Path(exists=True, file_okay=False), help="A run or adapter folder.")
@click.option("--max-new-tokens", type=click.IntRange(1), default=256, show_default=True)
@click.option("--temperature", type=click.FloatRange(0), default=0.7, show_default=True, help="0: greedy.")
@click.option("--top-p", type=click.FloatRange(0, 1), default=0.9, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--precision", type=click.Choice(["auto", "fp32", "fp16", "bf16"]), default="auto")
@click.option("--no-chat-template", is_flag=True, help="Plain-text prompt (default: as the run recorded).")
@click.option("--trust-remote-code", is_flag=True)
def generate(question, base, adapter, max_new_tokens, temperature, top_p, seed, precision, no_chat_template,
             trust_remote_code) -> None:  # fmt: skip
    """Answer a question with a base model and, optionally, a trained adapter."""
    from .models import (
        ModelOptions,
        PromptFormat,
        load_adapter,
        load_model,
        run_format,
    )
    from .models import (
        generate as generate_answers,
    )

    model, tokenizer = load_model(base, ModelOptions(precision, trust_remote_code=trust_remote_code))
    fmt = (run_format(adapter) if adapter else None) or PromptFormat(chat_template=True)
    if no_chat_template:
        fmt = PromptFormat(chat_template=False)
    if adapter:
        model = load_adapter(model, adapter, base)
    (answer,) = generate_answers(model, tokenizer, [" ".join(question)], fmt, max_new_tokens, temperature, top_p, seed)
    click.echo(answer)


@cli.command(name="eval")
@click.argument("suite")
@click.option("--base", default="mistralai/Mistral-7B-Instruct-v0.2", show_default=True, help="Base model.")
@click.option("--adapter", "adapters", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="A run folder or adapter folder; repeat for several columns.")  # fmt: skip
@click.option("--evaluators", help="Comma-separated evaluator names (default: all that apply to the suite).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable results.")
@click.option("--markdown", is_flag=True, help="A Markdown table (for model cards).")
@click.option("--limit", type=click.IntRange(1), help="At most N items of each suite file.")
@click.option("--save-items", type=click.Path(dir_okay=False), help="Per-item results as JSONL.")
@click.option("--seed", type=int, default=0, show_default=True, help="Bootstrap seed.")
@click.option("--max-new-tokens", type=click.IntRange(1), default=32, show_default=True,
              help="Length of generated answers.")  # fmt: skip
@click.option("--train-data", type=click.Path(exists=True, dir_okay=False),
              help="Warn when suite items overlap this training file.")  # fmt: skip
@click.option("--precision", type=click.Choice(["auto", "fp32", "fp16", "bf16"]), default="auto")
@click.option("--batch-size", type=click.IntRange(1), default=16, show_default=True)
def eval_command(suite, base, adapters, evaluators, as_json, markdown, limit, save_items, seed, max_new_tokens,
                 train_data, precision, batch_size) -> None:  # fmt: skip
    """Evaluate a base model and adapters side by side on a suite (`benchmarks` or a folder)."""
    from .evaluation import evaluate
    from .evaluation import save_items as write_items

    names = [n.strip() for n in evaluators.split(",") if n.strip()] if evaluators else None
    report = evaluate(suite, base, list(adapters), names, limit, seed, max_new_tokens, precision, batch_size,
                      train_data)  # fmt: skip
    if save_items:
        write_items(report, save_items)
    if as_json:
        from .report import write_json

        write_json(report.to_dict())
    elif markdown:
        click.echo(report.markdown())
    else:
        from .report import print_eval

        print_eval(report)


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--output", "-o", required=True, type=click.Path(file_okay=False), help="Index folder to write.")
@click.option("--retriever", default="bm25", show_default=True, help="A registered retriever.")
def index(paths, output, retriever) -> None:
    """Index your own documents (text, Markdown, JSONL) for `mglkit ask --index`."""
    from .retrieval import Index, build_index

    folder = build_index(list(paths), output, retriever)
    click.echo(f"indexed {len(Index(folder).documents)} documents into {folder}")


@cli.command()
@click.argument("question", nargs=-1, required=True)
@click.option("--base", default="mistralai/Mistral-7B-Instruct-v0.2", show_default=True)
@click.option("--adapter", type=click.Path(exists=True, file_okay=False), help="A run or adapter folder.")
@click.option("--k", type=click.IntRange(1), default=4, show_default=True, help="Passages to retrieve.")
@click.option("--index", "index_dir", type=click.Path(exists=True, file_okay=False),
              help="An index from `mglkit index` (default: the bundled Mongolian history corpus).")  # fmt: skip
@click.option("--no-retrieval", is_flag=True, help="Answer from the model alone.")
@click.option("--json", "as_json", is_flag=True, help="Answer, sources and scores as JSON.")
@click.option("--max-new-tokens", type=click.IntRange(1), default=128, show_default=True)
@click.option("--temperature", type=click.FloatRange(0), default=0.0, show_default=True)
@click.option("--precision", type=click.Choice(["auto", "fp32", "fp16", "bf16"]), default="auto")
def ask(question, base, adapter, k, index_dir, no_retrieval, as_json, max_new_tokens, temperature, precision) -> None:
    """Answer a question from retrieved passages, citing them as [1], [2], ..."""
    from .rag import MongolianRAGAgent

    agent = MongolianRAGAgent(adapter or base, base_model=base, use_peft=adapter is not None, k=k,
                              index=index_dir, max_new_tokens=max_new_tokens, temperature=temperature,
                              precision=precision)  # fmt: skip
    answer = agent.query(" ".join(question), retrieval=not no_retrieval)
    if as_json:
        from .report import write_json

        write_json(answer.to_dict())
        return
    click.echo(answer.text)
    if answer.sources:
        click.echo("\nSources:")
        for source in answer.sources:
            mark = "*" if source.cited else " "
            click.echo(f" {mark}[{source.number}] {source.document.title or source.document.id} "
                       f"({source.document.id}, score {source.score:.2f})")  # fmt: skip


@cli.command()
@click.argument("adapter", type=click.Path(exists=True, file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["merged", "adapter"]), required=True)
@click.option("--output", "-o", required=True, type=click.Path(file_okay=False))
@click.option("--base", help="Base model (default: the one the adapter records).")
@click.option("--dtype", type=click.Choice(["fp32", "fp16", "bf16"]), default="fp32", show_default=True,
              help="Weights of a merged model.")  # fmt: skip
@click.option("--overwrite", is_flag=True, help="Replace an existing --output folder.")
def export(adapter, fmt, output, base, dtype, overwrite) -> None:
    """Merge an adapter into its base model, or write a clean adapter folder to upload."""
    from .export import export_adapter, export_merged

    if fmt == "merged":
        folder = export_merged(adapter, output, base, dtype, overwrite)
    else:
        folder = export_adapter(adapter, output, overwrite)
    click.echo(f"wrote {folder}")


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="mglkit", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2 if isinstance(exc, click.UsageError) else exc.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except MglkitError as exc:
        click.echo(f"mglkit: error: {exc}", err=True)
        if exc.hint:
            click.echo(f"  hint: {exc.hint}", err=True)
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        sys.exit(1)
