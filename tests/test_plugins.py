"""The plugin system: entry points, allow-list, load failures, name clashes, listing."""

import json
import textwrap

import pytest
from conftest import BAD, mglkit, mglkit_json

import mglkit as api
from mglkit import Validator, hookimpl, hookspecs
from mglkit.errors import PluginError
from mglkit.findings import ERROR
from mglkit.plugins import get_plugin_manager, make_plugin_manager


class NoChinggis(Validator):
    name = "no-chinggis"

    def check(self, pair):
        if "Чингис" in pair.chosen:
            return [self.finding(pair, "chosen", ERROR, "mentions Chinggis")]
        return ()


class InProcessPlugin:
    __name__ = "in_process_plugin"

    @hookimpl
    def register_validators(self, register):
        register(NoChinggis)


@pytest.fixture
def in_process_plugin():
    pm = get_plugin_manager()
    pm.register(InProcessPlugin(), name="in-process")
    yield
    pm.unregister(name="in-process")


def test_every_hook_is_documented():
    hooks = [getattr(hookspecs, n) for n in dir(hookspecs) if n.startswith(("register_", "log_"))]
    assert {h.__name__ for h in hooks} == {
        "register_validators",
        "register_trainers",
        "register_evaluators",
        "register_model_sources",
        "register_suites",
        "register_retrievers",
        "register_rewards",
        "log_metrics",
        "register_commands",
    }
    assert all(h.__doc__ and h.__doc__.strip() for h in hooks)


def test_registered_plugin_is_used_and_unregistered(in_process_plugin):
    report = api.validate(BAD / "good.jsonl")
    assert {f.rule for f in report.findings} >= {"no-chinggis"}
    assert get_plugin_manager().get_plugin("in-process") is not None


def test_plugin_is_gone_after_the_fixture():
    report = api.validate(BAD / "good.jsonl")
    assert "no-chinggis" not in {f.rule for f in report.findings}


def test_builtins_and_the_third_party_plugin_are_listed():
    code, listing = mglkit_json("plugins")
    plugins = {p["name"]: p for p in listing["plugins"]}
    builtins = plugins["validators"]
    assert builtins["distribution"] == "mglkit" and builtins["hooks"] == ["register_validators"]
    assert set(builtins["registers"]["validators"]) == {
        "length",
        "cyrillic",
        "language",
        "hygiene",
        "differentiation",
        "duplicates",
        "size",
    }
    example = plugins["example"]
    assert example["distribution"] == "mglkit-example-plugin" and example["version"] == "0.2.0"
    assert example["registers"] == {"validators": ["question-mark"]}
    human = mglkit("plugins")
    assert human.returncode == 0 and b"question-mark" in human.stdout


def test_third_party_validator_reports_in_validate(tmp_path):
    path = tmp_path / "statement.jsonl"
    lines = (BAD / "good.jsonl").read_text(encoding="utf-8").splitlines()
    record = json.loads(lines[1])
    record["prompt"] = record["prompt"].replace("?", ".")
    lines[1] = json.dumps(record, ensure_ascii=False)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    _, report = mglkit_json("validate", path)
    assert ("question-mark", 2, "prompt") in {(f["rule"], f["line"], f["field"]) for f in report["findings"]}


def test_allow_list_env():
    _, none = mglkit_json("plugins", env={"MGLKIT_LOAD_PLUGINS": ""})
    assert none["plugins"] == []
    _, only = mglkit_json("plugins", env={"MGLKIT_LOAD_PLUGINS": "example"})
    assert [p["name"] for p in only["plugins"]] == ["example"]


@pytest.fixture
def broken_plugin(tmp_path, monkeypatch):
    """A distribution on the path whose entry point names a module that fails to import."""
    dist = tmp_path / "broken_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[mglkit]\nbroken = broken_mglkit_plugin\n")
    (tmp_path / "broken_mglkit_plugin.py").write_text("import a_module_that_does_not_exist\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_a_broken_plugin_is_named_and_the_others_still_load(broken_plugin):
    result = mglkit("validate", BAD / "short.jsonl")
    assert result.returncode == 1  # validation still ran, with the built-ins
    assert b"[length]" in result.stdout.replace(b"\n", b" ") or b"length" in result.stdout
    errors = [line for line in result.stderr.decode().splitlines() if "broken" in line]
    assert len(errors) == 1
    assert "plugin 'broken' (from broken-plugin) failed to load: ModuleNotFoundError" in errors[0]
    assert b"Traceback" not in result.stderr
    pm = make_plugin_manager()
    assert [e.plugin for e in pm.load_errors] == ["broken"] and pm.get_plugin("validators")


def test_strict_plugins_makes_a_broken_plugin_fatal(broken_plugin):
    result = mglkit("--strict-plugins", "validate", BAD / "good.jsonl")
    assert result.returncode == 1 and b"failed to load" in result.stderr
    assert result.stdout == b""


def test_two_plugins_registering_one_name_is_an_error_naming_both():
    class Twin:
        __name__ = "twin"

        @hookimpl
        def register_validators(self, register):
            register(NoChinggis)

    pm = make_plugin_manager(entrypoints=False)
    pm.register(InProcessPlugin(), name="first-plugin")
    pm.register(Twin(), name="second-plugin")
    with pytest.raises(
        PluginError, match="'no-chinggis' is registered by two plugins: 'first-plugin' and 'second-plugin'"
    ):
        pm.collect("register_validators")


def test_plugin_name_clash_from_cli(tmp_path, monkeypatch):
    plugin = tmp_path / "clash_plugin.py"
    plugin.write_text(
        textwrap.dedent("""
        from mglkit import hookimpl
        from mglkit_validators.text import Length

        @hookimpl
        def register_validators(register):
            register(Length)
    """)
    )
    dist = tmp_path / "clash_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: clash-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[mglkit]\nclash = clash_plugin\n")
    result = mglkit("validate", BAD / "good.jsonl", env={"PYTHONPATH": str(tmp_path)})
    assert result.returncode == 1
    assert b"validator 'length' is registered by two plugins" in result.stderr
    assert b"'clash'" in result.stderr and b"'validators'" in result.stderr
