"""Every setting is declared once: the same value is refused from a flag and from a config file,
before anything runs or is written, with a message naming the flag or the file, table and key."""

import pytest
from conftest import cli

from mglkit.config import EvalConfig, TrainConfig, ValidationConfig, load_config, trainer_option_specs
from mglkit.errors import ConfigError
from mglkit.plugins import make_plugin_manager

# (setting, a bad command-line value, the same as TOML, what the message says)
TRAIN = [
    ("beta", "-1", "-1.0", "out of range"),  # would train toward the rejected answers
    ("beta", "0", "0", "out of range"),  # would learn nothing
    ("max_grad_norm", "-1", "-1.0", "out of range"),  # gradient ascent
    ("max_grad_norm", "0", "0.0", "out of range"),  # zeroes every gradient
    ("learning_rate", "nan", "nan", "not a finite number"),
    ("learning_rate", "0", "0.0", "out of range"),
    ("learning_rate", "inf", "inf", "not a finite number"),
    ("epochs", "0", "0", "out of range"),
    ("epochs", "-2", "-2", "out of range"),
    ("epochs", "nan", "nan", "not a finite number"),
    ("epochs", "two", '"two"', "not a number"),
    ("batch_size", "0", "0", "out of range"),
    ("grad_accum", "0", "0", "out of range"),
    ("max_length", "1", "1", "out of range"),
    ("lora_r", "0", "0", "out of range"),
    ("lora_dropout", "1", "1.0", "out of range"),
    ("eval_split", "1.0", "1.0", "out of range"),  # nothing left to train on
    ("eval_split", "-0.1", "-0.1", "out of range"),
    ("warmup_ratio", "1", "1.0", "out of range"),
    ("label_smoothing", "0.5", "0.5", "out of range"),
    ("loss", "sigmod", '"sigmod"', "did you mean 'sigmoid'"),
    ("precision", "fp8", '"fp8"', "is not one of auto, fp32, fp16, bf16"),
    ("num_generations", "1", "1", "out of range"),
    ("temperature", "0", "0.0", "out of range"),
    ("kl_coef", "-0.1", "-0.1", "out of range"),
    ("max_steps", "0", "0", "out of range"),
    ("seed", "-1", "-1", "out of range"),
]
VALIDATE = [
    ("min_cyrillic", "1.5", "1.5", "out of range"),
    ("min_cyrillic", "high", '"high"', "not a number"),
    ("similarity_threshold", "5", "5", "out of range"),
    ("min_pairs", "-3", "-3", "out of range"),
    ("language_detector", "nope", '"nope"', "is not one of signals, lingua"),
    ("jobs", "0", "0", "out of range"),
]


@pytest.fixture(scope="module")
def option_specs():
    return trainer_option_specs(make_plugin_manager().all("trainer"))


def write_config(tmp_path, section, key, value):
    path = tmp_path / "settings.toml"
    path.write_text(f"[{section}]\n{key} = {value}\n")
    return path


@pytest.mark.parametrize(("name", "flag_value", "toml_value", "message"), TRAIN)
def test_train_settings_are_checked_in_files(tmp_path, option_specs, name, flag_value, toml_value, message):
    path = write_config(tmp_path, "train", name, toml_value)
    with pytest.raises(ConfigError) as error:
        load_config(TrainConfig, path, option_specs)
    assert f"{path} [train], key '{name}'" in str(error.value) and message in f"{error.value} {error.value.hint}"


@pytest.mark.parametrize(("name", "flag_value", "toml_value", "message"), TRAIN)
def test_train_settings_are_checked_as_flags_before_anything_is_written(
    tmp_path, name, flag_value, toml_value, message
):
    flag = "--" + name.replace("_", "-")
    result = cli("train", "--base", "mglkit:tiny", "--output", tmp_path / "run", flag, flag_value)
    assert result.returncode == 2, result.stderr
    assert flag.encode() in result.stderr and message.encode() in result.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(("name", "flag_value", "toml_value", "message"), VALIDATE)
def test_validate_settings_are_checked_in_files_and_flags(tmp_path, name, flag_value, toml_value, message):
    path = write_config(tmp_path, "validate", name, toml_value)
    with pytest.raises(ConfigError) as error:
        load_config(ValidationConfig, path)
    assert f"key '{name}'" in str(error.value) and message in f"{error.value} {error.value.hint}"
    result = cli("validate", "--" + name.replace("_", "-"), flag_value, path)
    assert result.returncode == 2 and message.encode() in result.stderr


def test_a_misspelt_or_unknown_key_names_file_table_and_key(tmp_path, option_specs):
    path = write_config(tmp_path, "train", "learnig_rate", "1e-4")
    with pytest.raises(ConfigError, match=r"settings.toml \[train\]: unknown setting 'learnig_rate'") as error:
        load_config(TrainConfig, path, option_specs)
    assert error.value.hint == "did you mean 'learning_rate'?"
    path = write_config(tmp_path, "eval", "adapterz", '["a"]')
    with pytest.raises(ConfigError, match="unknown setting 'adapterz'"):
        load_config(EvalConfig, path)


def test_trust_remote_code_is_a_flag_never_a_config_value(tmp_path, option_specs, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mglkit.toml").write_text('[train]\ntrust_remote_code = true\nbase = "./somemodel"\n')
    with pytest.raises(ConfigError, match="'trust_remote_code' cannot be set in a config file"):
        load_config(TrainConfig, None, option_specs)
    (tmp_path / "pyproject.toml").write_text("[tool.mglkit.train]\ntrust_remote_code = true\n")
    (tmp_path / "mglkit.toml").unlink()
    result = cli("train", "--dry-run")
    assert result.returncode == 2 and b"cannot be set in a config file" in result.stderr


def test_a_config_file_that_chooses_the_base_model_says_so(tmp_path, option_specs, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mglkit.toml").write_text('[train]\nbase = "./somemodel"\nbeta = 0.2\n')
    config = load_config(TrainConfig, None, option_specs, dataset="x.jsonl")
    assert config.origin == {"base": "mglkit.toml [train]"}
    assert config.options == {"beta": 0.2} and config.base == "./somemodel"


def test_a_setting_of_another_trainer_is_refused(tmp_path):
    result = cli("train", "--trainer", "dpo", "--num-generations", "4", "--output", tmp_path / "run")
    assert result.returncode == 2
    assert b"--num-generations is a setting of trl-grpo, not of 'dpo'" in result.stderr
    result = cli("train", "--trainer", "dpo", "--loss", "exo_pair", "--output", tmp_path / "run")
    assert result.returncode == 2 and b"'exo_pair' is not one of sigmoid, ipo, hinge, robust" in result.stderr
    assert not (tmp_path / "run").exists()


def test_cross_setting_checks_of_the_trainers(tmp_path):
    for trainer, args, message in [
        ("dpo", ["--label-smoothing", "0.1"], b"applies to the robust loss"),
        ("trl-dpo", ["--loss", "exo_pair"], b"needs --label-smoothing > 0"),
        ("trl-grpo", ["--length-band", "80,20"], b"need 1 <= LOW <= HIGH"),
        ("trl-grpo", ["--rewards", "facts,nope"], b"unknown reward 'nope'; installed: facts, length"),
        ("trl-grpo", ["--rewards", "facts", "--reward-weights", "length=2"], b"which --rewards leaves out"),
    ]:
        result = cli("train", "--trainer", trainer, *args, "--output", tmp_path / "run")
        assert result.returncode == 2 and message in result.stderr, (trainer, args, result.stderr)
    assert not (tmp_path / "run").exists()


def test_scheduler_and_dataset_are_checked_before_anything_runs(tmp_path):
    result = cli("train", "--trainer", "dpo", "--scheduler", "bogus", "--output", tmp_path / "run")
    assert result.returncode == 2 and b"--scheduler: 'bogus' is not a transformers scheduler" in result.stderr
    result = cli("train", "--trainer", "dpo", "--dataset", "-", "--output", tmp_path / "run")
    assert result.returncode == 2 and b"--dataset -: no such file" in result.stderr
    assert not (tmp_path / "run").exists()


def test_max_grad_norm_none_turns_clipping_off():
    assert TrainConfig(max_grad_norm=None).max_grad_norm is None
    spec = {s.name: s for s in __import__("mglkit.settings").settings.declared(TrainConfig)}["max_grad_norm"]
    assert spec.parse("none", "--max-grad-norm") is None
