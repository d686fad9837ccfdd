"""The ``mglkit`` command: a click group, one exit-code scheme with one-line errors, and command-line
options made from the settings declarations. Each command lives beside its pipeline (``command(pm)``
in the modules named below); plugins add theirs through ``register_commands``.

Exit status, for every command: 0 success; 1 the data or the run failed a check; 2 usage or unusable
input; 3 interrupted or stopped by a guard. Anything else is a bug (``--debug`` shows the traceback).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import sys
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import click

from . import __version__
from .errors import MglkitError
from .settings import Setting

EXIT_HELP = "Exit status: 0 success;{failed} 2 usage or unusable input; 3 interrupted or stopped by a guard."
# name -> (the module whose ``command(pm, name)`` builds it, its one-line help for `mglkit --help`,
# which lists commands without importing them: a test keeps the lines equal to the commands' own)
BUILTIN_COMMANDS = {
    "validate": ("mglkit.validation", "Check preference-pair files (JSONL, Parquet, CSV/TSV, datasets; - reads..."),
    "train": ("mglkit.training", "LoRA DPO of a causal language model on preference pairs (or GRPO with reward..."),
    "eval": ("mglkit.evaluation", "Evaluate a base model and adapters side by side on suites (`benchmarks`, a..."),
    "contamination": (
        "mglkit.contamination_check",
        "Which suite items (facts, pairs, fluency passages) training data states, in...",
    ),
    "export-suite": (
        "mglkit.lm_eval_export",
        "Write a suite's facts as an lm-evaluation-harness task, scored as mglkit...",
    ),
    "generate": ("mglkit.rag", "Answer a question with a base model and, optionally, a trained adapter."),
    "ask": ("mglkit.rag", "Answer a question from retrieved passages, citing them as [1], [2], ..."),
    "index": ("mglkit.retrieval", "Index your own documents (text, Markdown, JSONL) for `mglkit ask --index`."),
    "export": ("mglkit.export", "Merge an adapter into its base model, or write a clean adapter folder to upload."),
    "plugins": ("mglkit.plugins", "List installed plugins, the hooks each implements, what each registers, and..."),
    "report": ("mglkit.html_report", "One self-contained HTML file of runs (curves, settings, samples) and..."),
    "runs": ("mglkit.runlist", "Every mglkit run under DIR (default: runs/ and models/), two levels deep:..."),
}
KEY_LIBRARIES = ("pluggy", "click", "rich", "torch", "transformers", "peft", "trl", "accelerate")
BUG = 70  # EX_SOFTWARE: an exception mglkit did not expect


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
    """Loads plugins before resolving commands; maps every outcome onto the exit-code scheme."""

    debug = bool(os.environ.get("MGLKIT_DEBUG"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._loaded_from = None  # the plugin manager whose commands are in place

    def _pm(self):
        from .plugins import get_plugin_manager

        pm = get_plugin_manager()
        if self._loaded_from is not pm:  # a new manager (tests make them): its warnings and commands
            self._loaded_from = pm
            self.commands = {}
            for error in pm.load_errors:
                click.echo(f"mglkit: warning: {error} (skipped; --strict-plugins makes this fatal)", err=True)
            pm.hook.register_commands(cli=self)
        return pm

    def list_commands(self, ctx):
        self._pm()
        return sorted(set(BUILTIN_COMMANDS) | set(self.commands))

    def get_command(self, ctx, name):
        pm = self._pm()
        if name not in self.commands and name in BUILTIN_COMMANDS:
            self.commands[name] = importlib.import_module(BUILTIN_COMMANDS[name][0]).command(pm, name)
        return self.commands.get(name)

    def format_commands(self, ctx, formatter):
        """The command list of `mglkit --help`, without importing the built-in commands' modules."""
        rows = []
        for name in self.list_commands(ctx):
            if name in self.commands:
                rows.append((name, self.commands[name].get_short_help_str(limit=formatter.width - 6 - len(name))))
            else:
                rows.append((name, BUILTIN_COMMANDS[name][1]))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except BrokenPipeError:  # the reader went away (`| head`): stop quietly (click would say exit 1)
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise click.exceptions.Exit(3) from None

    def main(self, args=None, prog_name=None, standalone_mode=True, **extra):
        code = self._outcome(args, prog_name, **extra)
        if standalone_mode:
            sys.exit(code)
        return code

    def _outcome(self, args, prog_name, **extra) -> int:
        try:
            from .distributed import watch_from_start

            watch_from_start()
            result = super().main(args, prog_name, standalone_mode=False, **extra)
            return result if isinstance(result, int) else 0
        except click.ClickException as exc:
            exc.show()
            return _failed(2, exc.format_message())
        except (click.exceptions.Abort, KeyboardInterrupt):
            click.echo("mglkit: interrupted", err=True)
            return _failed(3, "interrupted")
        except MglkitError as exc:
            click.echo(f"mglkit: error: {exc}", err=True)
            if exc.hint:
                click.echo(f"  hint: {exc.hint}", err=True)
            return _failed(exc.exit_code, str(exc), exc.hint)
        except Exception as exc:
            if _Group.debug:
                _failed(BUG, f"internal error: {type(exc).__name__}: {exc}")
                raise
            click.echo(f"mglkit: internal error: {type(exc).__name__}: {exc}", err=True)
            click.echo("  hint: this is a bug in mglkit or a plugin; --debug shows where", err=True)
            return _failed(BUG, f"internal error: {type(exc).__name__}: {exc}")


def _failed(code: int, message: str, hint: str | None = None) -> int:
    """The other processes of a distributed run end with this one's message and code."""
    from .distributed import report_failure

    report_failure(code, message, hint)
    return code


@click.group(
    cls=_Group,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=EXIT_HELP.format(failed=" 1 the data or the run failed a check;"),
)
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Show mglkit's version and the key libraries' versions.",
)
@click.option("--strict-plugins", is_flag=True, help="A plugin that fails to load is fatal.")
@click.option("--debug", is_flag=True, help="Show the traceback of an unexpected error (also MGLKIT_DEBUG=1).")
@click.pass_context
def cli(ctx: click.Context, strict_plugins: bool, debug: bool) -> None:
    """mglkit: preference fine-tuning of language models on Mongolian history.

    Validate preference data, train LoRA adapters with DPO or GRPO, evaluate base vs adapters.
    """
    from . import tasks
    from .plugins import get_plugin_manager
    from .report import reporter

    _Group.debug = _Group.debug or debug
    if strict_plugins:
        get_plugin_manager().raise_load_errors()
    ctx.with_resource(tasks.reporting(reporter()))


# Options from the settings declarations -----------------------------------------------------------


class SettingType(click.ParamType):
    """A value checked by its declaration, so flags and config files accept the same things."""

    def __init__(self, spec: Setting):
        self.spec = spec
        self.name = spec.kind.__name__

    def convert(self, value, param, ctx):
        from .errors import ConfigError

        if not isinstance(value, str):
            return value
        try:
            if self.spec.multiple:  # one item per flag: a path may hold a comma
                return self.spec.check([value], self.spec.option)[0]
            return self.spec.parse(value, self.spec.option)
        except ConfigError as exc:
            self.fail(f"{exc}" + (f" ({exc.hint})" if exc.hint else ""), param, ctx)


def setting_options(specs: Iterable[Setting]) -> Callable:
    """Click options for declared settings. Every default is None (not given), so a config file can
    fill what the command line leaves out; help shows the declared default."""
    decorators = []
    for spec in specs:
        if not spec.cli:
            continue
        name = spec.name
        shown = _shown_default(spec)
        help_text = spec.help + (f"  [default: {shown}]" if shown else "")
        if spec.kind is bool:
            flag = spec.option
            decls = [f"{flag}/--no-{flag[2:]}" if spec.default else flag, name]
            decorators.append(click.option(*decls, is_flag=True, default=None, help=help_text))
        else:
            kwargs: dict[str, Any] = {"type": SettingType(spec), "default": None, "help": help_text}
            if spec.multiple:
                kwargs["multiple"] = True
            if spec.bare_value is not None:
                kwargs.update(is_flag=False, flag_value=spec.bare_value)
            decorators.append(click.option(spec.option, name, metavar=_metavar(spec), **kwargs))

    def apply(function):
        for decorator in reversed(decorators):
            function = decorator(function)
        return function

    return apply


def given(values: dict[str, Any], specs: Iterable[Setting]) -> dict[str, Any]:
    """The options the user gave (repeated flags gathered into one list)."""
    out = {}
    for spec in specs:
        value = values.pop(spec.name, None)
        if spec.multiple:
            value = list(value) if value else None
        if value is not None:
            out[spec.name] = value
    return out


def _shown_default(spec: Setting) -> str:
    if spec.default is None or spec.default == [] or spec.default is False:
        return ""
    if isinstance(spec.default, list):
        return ",".join(spec.default)
    return "on" if spec.default is True else str(spec.default)


def _metavar(spec: Setting) -> str:
    if spec.choices and spec.kind is str:
        return "[" + "|".join(spec.choices) + "]"
    return {int: "N", float: "X", list: "A,B", dict: "NAME=X,..."}.get(spec.kind, "TEXT")


def config_option(section: str) -> Callable:
    return click.option(
        "--config",
        "config_file",
        type=click.Path(dir_okay=False),
        help=f"TOML file with a [{section}] table; flags override it "
        f"(default: mglkit.toml, or [tool.mglkit.{section}] in pyproject.toml).",
    )


def exit_help(failed: str | None) -> str:
    """The exit-code line of a command's help; ``failed`` says what exit 1 means for it (None: unused)."""
    return EXIT_HELP.format(failed=f" 1 {failed};" if failed else "")


def main(argv: list[str] | None = None) -> None:
    # library chatter that says nothing to a user of mglkit
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*is deprecated", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*`gradient_checkpointing` is deprecated", category=FutureWarning)
    warnings.filterwarnings("ignore", message="Could not find a config file in mglkit:", category=UserWarning)
    cli.main(args=argv, prog_name="mglkit")
