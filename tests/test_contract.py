"""The plugin contract is the public API: plugins use nothing else of the core, every hook is
documented in README with its signature, and the architecture section names every module."""

import ast
import inspect
import re

from conftest import EXAMPLE_PLUGIN, ROOT

import mglkit
from mglkit import hookspecs

README = (ROOT / "README.md").read_text(encoding="utf-8")


def core_imports(path):
    """(line, imported name) for every import of mglkit in a file."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "mglkit")
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "mglkit":
            if node.module == "mglkit":
                yield from ((node.lineno, f"mglkit.{a.name}") for a in node.names)
            else:
                yield node.lineno, node.module


def allowed(name: str) -> bool:
    if name == "mglkit" or name.removeprefix("mglkit.") in mglkit.__all__:
        return True
    return any(name == helper or name.startswith(helper + ".") for helper in mglkit.PLUGIN_HELPERS)


def test_plugins_import_only_the_public_contract_and_the_named_helpers():
    files = sorted((ROOT / "plugins").rglob("*.py")) + sorted(EXAMPLE_PLUGIN.rglob("*.py"))
    assert len(files) > 15
    offending = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for path in files
        for line, name in core_imports(path)
        if not allowed(name)
    ]
    assert offending == []


def test_the_example_plugin_uses_only_the_top_level_contract():
    names = {name for path in EXAMPLE_PLUGIN.rglob("*.py") for _, name in core_imports(path)}
    assert names and all(name.removeprefix("mglkit.") in mglkit.__all__ for name in names)


def test_the_contract_is_exported():
    for name in (
        "Validator",
        "Trainer",
        "Evaluator",
        "ModelSource",
        "Retriever",
        "Reward",
        "Suite",
        "SuiteFolder",
        "SuiteSource",
        "Scorer",
        "TrainJob",
        "TrainResult",
        "EvalContext",
        "EvalResult",
        "Setting",
        "progress",
        "evaluate",
        "train",
        "validate",
        "load_pairs",
        "open_data",
        "SourceSpec",
        "SourceRow",
        "validated_pairs",
    ):
        assert name in mglkit.__all__ and hasattr(mglkit, name), name


def plugin_section() -> str:
    start = README.index("## Writing a plugin")
    return README[start : README.index("\n## ", start + 1)]


def test_every_hook_is_documented_in_readme_with_its_signature():
    section = plugin_section()
    for name in dir(hookspecs):
        hook = getattr(hookspecs, name)
        if not getattr(hook, "mglkit_spec", None):
            continue
        parameters = ", ".join(inspect.signature(hook).parameters)
        assert f"`{name}({parameters})`" in section, f"README's plugin section lacks `{name}({parameters})`"


def architecture_modules() -> set[str]:
    start = README.index("## Architecture")
    section = README[start : README.index("\n## ", start + 1)]
    return set(re.findall(r"^\s*(\S+\.py)\s", section, flags=re.M))


def test_the_architecture_section_names_every_core_module():
    modules = {p.relative_to(ROOT / "mglkit").as_posix() for p in (ROOT / "mglkit").glob("*.py")}
    modules.discard("__main__.py")
    assert architecture_modules() == modules


def test_the_command_list_of_help_matches_the_commands():
    """`mglkit --help` lists the built-in commands from cli.BUILTIN_COMMANDS without importing them."""
    from click.testing import CliRunner

    from mglkit.cli import BUILTIN_COMMANDS, cli
    from mglkit.plugins import get_plugin_manager

    for name, (_, short) in BUILTIN_COMMANDS.items():
        command = cli.get_command(None, name)
        assert command.get_short_help_str(limit=len(short)) == short, name
    listing = CliRunner().invoke(cli, ["--help"]).output
    assert all(name in listing for name in BUILTIN_COMMANDS) and get_plugin_manager()
