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
def validate(
    files, as_json, out_clean, out_rejects, fix, strict, jobs, config_file, validators, **thresholds
) -> None:
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
