"""The plugin system: entry points, the registry, allow-list, broken plugins, name clashes, listing."""

import json
import textwrap

import pytest
from conftest import BAD, cli, cli_json, fresh_plugins, mglkit

import mglkit as api
from mglkit import ERROR, Validator, hookimpl, hookspecs
from mglkit.errors import ConfigError, PluginError
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
        register(NoChinggis())


@pytest.fixture
def in_process_plugin():
    with fresh_plugins():
        pm = get_plugin_manager()
        pm.register(InProcessPlugin(), name="in-process")
        yield pm
        pm.unregister(name="in-process")


def test_every_hook_has_a_docstring_and_types():
    hooks = [getattr(hookspecs, n) for n in dir(hookspecs) if getattr(getattr(hookspecs, n), "mglkit_spec", None)]
    assert {h.__name__ for h in hooks} == {
        *("register_validators", "register_trainers", "register_evaluators", "register_model_sources"),
        *("register_suites", "register_retrievers", "register_rewards", "register_commands"),
        *("log_metrics", "run_checkpoint", "run_finished"),
    }
    assert all(h.__doc__ and h.__doc__.strip() and h.__annotations__ for h in hooks)


def test_a_registered_plugin_is_used_and_then_gone(in_process_plugin):
    report = api.validate(BAD / "good.jsonl")
    assert "no-chinggis" in {f.rule for f in report.findings}
    in_process_plugin.unregister(name="in-process")
    report = api.validate(BAD / "good.jsonl")
    assert "no-chinggis" not in {f.rule for f in report.findings}
    in_process_plugin.register(InProcessPlugin(), name="in-process")  # for the fixture to unregister


def test_registry_get_and_all_and_the_one_unknown_error():
    pm = make_plugin_manager()
    assert pm.get("trainer", "dpo").name == "dpo"
    assert [t.name for t in pm.all("trainer")] == ["dpo", "trl-dpo", "trl-grpo"]
    with pytest.raises(ConfigError) as error:
        pm.get("trainer", "no-such")
    assert str(error.value) == "unknown trainer 'no-such'; installed: dpo, trl-dpo, trl-grpo"
    assert error.value.hint == "see `mglkit plugins`"


def test_builtins_and_the_third_party_plugin_are_listed(example_plugin):
    code, listing = cli_json("plugins")
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
    assert example["registers"] == {"validators": ["question-mark"]} and example["error"] is None
    human = cli("plugins")
    assert human.returncode == 0 and b"question-mark" in human.stdout


def test_third_party_validator_reports_in_validate(example_plugin, tmp_path):
    path = tmp_path / "statement.jsonl"
    lines = (BAD / "good.jsonl").read_text(encoding="utf-8").splitlines()
    record = json.loads(lines[1])
    record["prompt"] = record["prompt"].replace("?", ".")
    lines[1] = json.dumps(record, ensure_ascii=False)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    _, report = cli_json("validate", path)
    assert ("question-mark", 2, "prompt") in {(f["rule"], f["line"], f["field"]) for f in report["findings"]}
    # and in a real process, found through its entry point like any installed plugin
    result = mglkit("validate", path, "--json")
    assert b'"rule":"question-mark"' in result.stdout


def test_allow_list_env(example_plugin):
    _, none = cli_json("plugins", env={"MGLKIT_LOAD_PLUGINS": ""})
    assert none["plugins"] == []
    _, only = cli_json("plugins", env={"MGLKIT_LOAD_PLUGINS": "example"})
    assert [p["name"] for p in only["plugins"]] == ["example"]


def test_an_allow_list_of_unknown_names_warns_and_validate_is_unusable():
    result = cli("validate", BAD / "good.jsonl", env={"MGLKIT_LOAD_PLUGINS": "valdators"})
    assert result.returncode == 2, result.stderr
    assert b"no installed plugin is named 'valdators'" in result.stderr
    assert b"no validator is installed or selected" in result.stdout


def install(site, name, code):
    """A one-module distribution named ``name`` on the path ``site``, with an mglkit entry point."""
    (site / f"{name}.py").write_text(textwrap.dedent(code))
    dist = site / f"{name}-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name.replace('_', '-')}\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[mglkit]\n{name.removesuffix('_plugin')} = {name}\n")


BROKEN = {
    "missing_plugin": ("import a_module_that_does_not_exist\n", "ModuleNotFoundError"),
    "exiting_plugin": ("import sys\nsys.exit(3)\n", "it called sys.exit(3)"),
    "misspelt_plugin": (
        "from mglkit import hookimpl\n\n@hookimpl\ndef register_validatorz(register):\n    pass\n",
        "unknown hook 'register_validatorz'",
    ),
    "raising_plugin": (
        "from mglkit import hookimpl\n\n@hookimpl\ndef register_validators(register):\n    1 / 0\n",
        "register_validators raised ZeroDivisionError",
    ),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_a_broken_plugin_is_named_in_one_line_and_the_others_still_work(name, tmp_path, monkeypatch):
    code, message = BROKEN[name]
    install(tmp_path, name, code)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.syspath_prepend(str(tmp_path))
    result = mglkit("validate", BAD / "short.jsonl")
    assert result.returncode == 1, result.stderr  # validation still ran, with the built-ins
    lines = [line for line in result.stderr.decode().splitlines() if name.removesuffix("_plugin") in line]
    assert len(lines) == 1 and message in lines[0], result.stderr.decode()
    assert b"Traceback" not in result.stderr
    listing = json.loads(mglkit("plugins", "--json").stdout)
    broken = [p for p in listing["plugins"] if p["name"] == name.removesuffix("_plugin")]
    assert broken and message in broken[0]["error"]
    strict = mglkit("--strict-plugins", "validate", BAD / "good.jsonl")
    assert strict.returncode == 2 and b"failed to load" in strict.stderr and strict.stdout == b""


def test_two_plugins_registering_one_name_is_an_error_naming_both():
    class Twin:
        __name__ = "twin"

        @hookimpl
        def register_validators(self, register):
            register(NoChinggis())

    pm = make_plugin_manager(entrypoints=False)
    pm.register(InProcessPlugin(), name="first-plugin")
    pm.register(Twin(), name="second-plugin")
    with pytest.raises(PluginError, match="'no-chinggis' is registered by two plugins: 'first-plugin' and 'second"):
        pm.collect("validator")


def test_a_class_registered_instead_of_an_instance_is_reported():
    class ClassRegistrar:
        __name__ = "class_registrar"

        @hookimpl
        def register_validators(self, register):
            register(NoChinggis)

    pm = make_plugin_manager(entrypoints=False)
    pm.register(ClassRegistrar(), name="classes")
    assert pm.all("validator") == []
    assert "being an instance" in pm.load_errors[0].error


def test_trace_logs_each_hook_call(capfd):
    with fresh_plugins({"MGLKIT_TRACE_PLUGINS": "1"}):
        get_plugin_manager().all("trainer")
    err = capfd.readouterr().err
    assert "mglkit: trace: register_trainers [dpo](register=" in err and " ms" in err


def test_ctrl_c_while_a_plugin_loads_is_exit_3_in_one_line(tmp_path, monkeypatch):
    install(tmp_path, "sleepy_plugin", "raise KeyboardInterrupt\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    result = mglkit("validate", BAD / "good.jsonl")
    assert result.returncode == 3 and result.stderr.decode().strip() == "mglkit: interrupted"
