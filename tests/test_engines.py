"""The engines `mglkit train` runs on beyond one process, for real on 2 CPU processes (gloo): FSDP2,
DeepSpeed ZeRO-2 and ZeRO-3, two machines on loopback, a failing process, and the launches refused."""

import json
import os
import socket
import subprocess
import sys
import time

import pytest
from conftest import ROOT, cli, mglkit
from test_train import PARITY, adapter_tensors, train_ok, train_rows

pytestmark = pytest.mark.xdist_group("engines")  # its runs are shared by its tests: one worker trains them once

CONFIGS = ROOT / "examples" / "accelerate"
LAUNCH = [sys.executable, "-m", "accelerate.commands.launch"]
DDP = ["--multi_gpu", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
STEPS = ["--trainer", "dpo", *PARITY, "--max-steps", "4"]

# A validator that rejects every pair on process 1 only (RANK is the launcher's), and a checkpoint
# hook that kills its process at a step the environment names: installed on PYTHONPATH for the launch.
TEST_PLUGIN = """
import os, signal

from mglkit import ERROR, Validator, hookimpl


class FailsOnProcessOne(Validator):
    name = "fails-on-process-one"
    description = "an error on process 1 only"

    def check(self, pair):
        if os.environ.get("RANK") != "1":
            return ()
        return [self.finding(pair, "prompt", ERROR, "rejected on process 1", hint="a test plugin")]


@hookimpl
def register_validators(register):
    if os.environ.get("FAIL_ON_PROCESS_ONE"):
        register(FailsOnProcessOne())


@hookimpl
def run_checkpoint(run, step):
    if str(step) == os.environ.get("KILL_AT_STEP"):
        os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Eight pairs for the runs; 24 for a run that validates (validation wants at least 10)."""
    folder = tmp_path_factory.mktemp("data")
    lines = (ROOT / "data" / "mgl_history_grpo.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    (folder / "eight.jsonl").write_text("".join(lines[:8]), encoding="utf-8")
    (folder / "pairs.jsonl").write_text("".join(lines[:24]), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def one_process(tiny, data, tmp_path_factory):
    """The run every engine must reproduce: one process, a batch of 4 (2 processes take 2 each)."""
    out = tmp_path_factory.mktemp("one") / "run"
    train_ok(*STEPS, "--dataset", data / "eight.jsonl", "--batch-size", "4", "--output", out)
    return out


@pytest.fixture(scope="module")
def test_plugin(tmp_path_factory):
    site = tmp_path_factory.mktemp("site")
    (site / "mglkit_enginetest.py").write_text(TEST_PLUGIN)
    dist = site / "mglkit_enginetest-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: mglkit-enginetest\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[mglkit]\nenginetest = mglkit_enginetest\n")
    return site


def launch(engine: list, *args, env=None, timeout=600):
    """`accelerate launch ENGINE -m mglkit train ARGS` with 2 processes; the finished process."""
    command = [*LAUNCH, *engine, "--num_processes", "2", "-m", "mglkit", "train", *map(str, args)]
    return subprocess.run(command, capture_output=True, timeout=timeout, env={**os.environ, **(env or {})})


def launch_ok(engine: list, *args, env=None):
    result = launch(engine, *args, env=env)
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    return result


def stats(run) -> dict:
    return json.loads((run / "training_logs" / "training_stats.json").read_text())


def assert_same_training(run, reference):
    """Per-step losses and rewards equal (fp32, 1e-5), and the saved adapter to 0.1 % of each tensor's
    norm. Not elementwise to 1e-5: the summation order of a gradient average moves a few near-zero
    gradients, which Adam divides by their own size, so one element of DDP's adapter already differs
    from one process's by 1.05e-5 (0.0005 % of the norm); a wrong average or a lost step is 10-100 %."""
    ours, theirs = train_rows(run), train_rows(reference)
    assert [m["step"] for m in ours] == [m["step"] for m in theirs] == [1, 2, 3, 4]
    for a, b in zip(ours, theirs, strict=True):
        for key in ("loss", "rewards/chosen", "rewards/rejected", "rewards/margins"):
            assert a[key] == pytest.approx(b[key], abs=1e-5), (a["step"], key)
    mine, whole = adapter_tensors(run), adapter_tensors(reference)
    assert mine.keys() == whole.keys()
    for name, tensor in whole.items():
        assert ((tensor - mine[name]).norm() / tensor.norm()).item() < 1e-3, name


@pytest.fixture(scope="module")
def fsdp_run(one_process, data, test_plugin, tmp_path_factory):
    """An FSDP run killed after its step-2 checkpoint, refused a resume under one process (another
    engine), then resumed under FSDP to its end: the run and the refusal."""
    out = tmp_path_factory.mktemp("fsdp") / "run"
    args = [*STEPS, "--dataset", data / "eight.jsonl", "--batch-size", "2", "--save-steps", "2", "--output", out]
    fsdp = ["--config_file", CONFIGS / "fsdp.yaml"]
    killed = launch(fsdp, *args, env={"PYTHONPATH": str(test_plugin), "KILL_AT_STEP": "2"})
    assert killed.returncode != 0 and (out / "checkpoints" / "step-2").is_dir()
    assert not (out / "adapter_model.safetensors").exists()
    before = tree(out)
    refused = mglkit("train", *args, "--resume")
    assert tree(out) == before  # refused before anything was written
    launch_ok(fsdp, *args, "--resume")
    return out, refused


def tree(folder) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_fsdp_trains_as_one_process_with_half_the_parameters_each(fsdp_run, one_process):
    run, _ = fsdp_run
    assert_same_training(run, one_process)  # steps 1-2 before the kill, 3-4 after the resume
    recorded, alone = stats(run), stats(one_process)
    assert (recorded["engine"], recorded["world_size"]) == ("fsdp", 2)
    assert (alone["engine"], alone["world_size"]) == ("none", 1)
    whole = alone["parameter_bytes_per_process"][0]
    assert [b / whole for b in recorded["parameter_bytes_per_process"]] == pytest.approx([0.5, 0.5], abs=0.01)


def test_an_fsdp_checkpoint_resumes_under_fsdp_only(fsdp_run):
    run, refused = fsdp_run
    assert refused.returncode == 2 and b"Traceback" not in refused.stderr, refused.stderr.decode()
    said = f"checkpoint {run / 'checkpoints' / 'step-2'} was written under fsdp (fsdp) over 2 processes; "
    assert (said + "this launch is one process").encode() in refused.stderr


SHARDING_PROBE = """
import json, os, sys
from types import SimpleNamespace

from peft import LoraConfig, get_peft_model
from torch.distributed.tensor import DTensor

from mglkit.models import ModelOptions, load_model
from mglkit_dpo import engines

model = load_model("mglkit:tiny", ModelOptions("fp32", keep_on_cpu=True))[0]
model = get_peft_model(model, LoraConfig(r=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
engine = engines.start(SimpleNamespace(device="cpu", precision="fp32"))
model = engine.shard(model)
layers = engines.decoder_layers(model, set())
share = [
    [(isinstance(p, DTensor), p.to_local().numel() / p.numel()) for p in layer.parameters()] for layer in layers
]
with open(os.path.join(sys.argv[1], f"rank{engine.process_index}.json"), "w") as out:
    json.dump({"engine": engine.name, "world": engine.num_processes, "layers": share}, out)
"""


def test_fsdp_shards_every_decoder_layer_in_halves(tiny, tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text(SHARDING_PROBE)
    command = [*LAUNCH, "--config_file", str(CONFIGS / "fsdp.yaml"), "--num_processes", "2", str(probe), str(tmp_path)]
    result = subprocess.run(command, capture_output=True, timeout=300)
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    for rank in (0, 1):
        seen = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert (seen["engine"], seen["world"]) == ("fsdp", 2)
        assert len(seen["layers"]) == tiny[0].config.num_hidden_layers
        for layer in seen["layers"]:
            assert all(is_shard for is_shard, _ in layer)
            local, whole = sum(f for _, f in layer), len(layer)  # each parameter's share, averaged
            assert local / whole == pytest.approx(0.5, abs=0.05)


@pytest.mark.parametrize("stage", [2, 3])
def test_deepspeed_zero_trains_as_one_process(stage, one_process, data, tmp_path):
    out = tmp_path / "run"
    launch_ok(["--config_file", CONFIGS / f"zero{stage}.yaml"], *STEPS, "--dataset", data / "eight.jsonl",
              "--batch-size", "2", "--output", out, env={"DS_ACCELERATOR": "cpu"})  # fmt: skip
    assert_same_training(out, one_process)
    recorded = stats(out)
    assert (recorded["engine"], recorded["world_size"], recorded["zero_stage"]) == ("deepspeed", 2, stage)
    whole = stats(one_process)["parameter_bytes_per_process"][0]
    held = [b / whole for b in recorded["parameter_bytes_per_process"]]
    assert held == pytest.approx([0.5, 0.5] if stage == 3 else [1, 1], abs=0.02)  # ZeRO-3 shards parameters


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def two_machines(*args, cwd=(None, None)) -> list:
    """`accelerate launch` as machines 0 and 1 of two on loopback, one process each, running
    `mglkit train ARGS` (machine R in ``cwd[R]``); each launcher's exit code and standard error."""
    port = str(free_port())
    machine = ["--multi_gpu", "--num_processes", "2", "--num_machines", "2", "--main_process_ip", "127.0.0.1",
               "--main_process_port", port, "--mixed_precision", "no", "--dynamo_backend", "no"]  # fmt: skip
    launchers = [
        subprocess.Popen(
            [*LAUNCH, *machine, "--machine_rank", str(rank), "-m", "mglkit", "train", *map(str, args)],
            cwd=cwd[rank],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for rank in (0, 1)
    ]
    outcomes = []
    for launcher in launchers:
        err = launcher.communicate(timeout=600)[1].decode()
        outcomes.append((launcher.returncode, err))
    return outcomes


def test_two_machines_on_loopback_train_as_one_process(one_process, data, tmp_path):
    out = tmp_path / "run"
    for code, err in two_machines(*STEPS, "--dataset", data / "eight.jsonl", "--batch-size", "2", "--output", out):
        assert code == 0, err[-3000:]
    assert_same_training(out, one_process)
    assert (stats(out)["engine"], stats(out)["world_size"]) == ("ddp", 2)


def test_a_machine_that_fails_before_the_group_forms_ends_the_other(one_process, data, tmp_path):
    """The second machine lacks the data: it fails before the process group exists, and the first,
    waiting to form it, ends too instead of waiting for the group's 30-minute timeout."""
    (tmp_path / "main").mkdir()
    (tmp_path / "other").mkdir()
    (tmp_path / "main" / "pairs.jsonl").write_bytes((data / "eight.jsonl").read_bytes())
    started = time.monotonic()
    machines = two_machines(*STEPS, "--dataset", "pairs.jsonl", "--batch-size", "2", "--output", tmp_path / "run",
                            cwd=(tmp_path / "main", tmp_path / "other"))  # fmt: skip
    errors = [err for _, err in machines]
    assert time.monotonic() - started < 60, errors  # start-up included
    assert all(code != 0 for code, _ in machines), errors
    said = "--dataset pairs.jsonl: no such file or folder"
    assert f"mglkit: error: {said}" in errors[1] and f"mglkit: error: {said} (process 1 of 2 failed)" in errors[0]
    assert not (tmp_path / "run").exists()


def test_a_failing_process_ends_every_process_with_its_message(tiny, data, test_plugin, tmp_path):
    started = time.monotonic()
    result = launch(DDP, "--trainer", "dpo", "--base", "mglkit:tiny", "--dataset", data / "pairs.jsonl",
                    "--max-steps", "2", "--output", tmp_path / "run", timeout=120,
                    env={"PYTHONPATH": str(test_plugin), "FAIL_ON_PROCESS_ONE": "1"})  # fmt: skip
    elapsed, err = time.monotonic() - started, result.stderr.decode()
    assert result.returncode == 1, err[-3000:]
    # process 1 says why; process 0, which passed validation, ends with the same line and says whose it is
    lines = [line for line in err.splitlines() if line.startswith("mglkit: error:")]
    assert len(lines) == 2 and all("fails-on-process-one: rejected on process 1" in line for line in lines)
    assert sum(line.endswith("(process 1 of 2 failed)") for line in lines) == 1
    assert "exitcode  : 1" in err  # the launcher's summary: a process ended with the failure's code
    assert elapsed < 60  # start-up included; the processes end within a second or two of the failure
    assert not (tmp_path / "run").exists()


FSDP2 = {"ACCELERATE_USE_FSDP": "true", "FSDP_VERSION": "2"}


@pytest.mark.parametrize(
    ("trainer", "env", "says"),
    [
        ("trl-dpo", {"ACCELERATE_USE_FSDP": "true"}, "the launcher asks for fsdp, but trl-dpo would run ddp"),
        ("trl-grpo", {"ACCELERATE_USE_DEEPSPEED": "true"}, "asks for deepspeed, but trl-grpo would run ddp"),
        ("dpo", {"ACCELERATE_USE_FSDP": "true", "FSDP_VERSION": "1"}, "the dpo trainer runs FSDP2"),
        ("dpo", {**FSDP2, "FSDP_AUTO_WRAP_POLICY": "SIZE_BASED_WRAP"}, "shards per decoder layer"),
        ("dpo", {**FSDP2, "FSDP_ACTIVATION_CHECKPOINTING": "true"}, "sets fsdp_activation_checkpointing, which"),
        ("dpo", {**FSDP2, "FSDP_RESHARD_AFTER_FORWARD": "SHARD_GRAD_OP"}, "FSDP2 takes true or false"),
        (
            "dpo",
            {"ACCELERATE_USE_DEEPSPEED": "true", "ACCELERATE_DEEPSPEED_ZERO3_INIT": "true"},
            "sets zero3_init_flag",
        ),
        ("dpo", {"ACCELERATE_USE_MEGATRON_LM": "true"}, "asks for Megatron-LM, which mglkit does not run"),
    ],
)
def test_an_engine_that_would_not_run_as_asked_is_refused(trainer, env, says, tmp_path):
    result = cli("train", "--trainer", trainer, "--base", "mglkit:tiny", "--output", tmp_path / "run", env=env)
    assert result.returncode == 2, result.stderr.decode()
    assert says in result.stderr.decode()
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ({}, None),  # accelerate inserts a gradient_accumulation_steps of 1: not the user's, no contradiction
        ({"gradient_accumulation_steps": "auto", "bf16": {"enabled": "auto"}}, None),
        ({"gradient_accumulation_steps": 4}, "sets gradient_accumulation_steps to 4; mglkit's settings make it 8"),
        ({"fp16": {"enabled": True}}, "sets fp16.enabled to True; mglkit's settings make it False"),
        ({"scheduler": {"type": "WarmupLR", "params": {"warmup_num_steps": "auto"}}}, "has a scheduler section"),
        ({"optimizer": {"type": "AdamW"}}, "has a optimizer section"),
    ],
)
def test_a_deepspeed_config_file_says_only_what_it_says(given, says, tmp_path, monkeypatch):
    from types import SimpleNamespace

    from mglkit_dpo.zero import deepspeed_config

    from mglkit import ConfigError

    config = tmp_path / "ds.json"
    config.write_text(json.dumps({"zero_optimization": {"stage": 2}, **given}))
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    monkeypatch.setenv("ACCELERATE_DEEPSPEED_CONFIG_FILE", str(config))
    settings = SimpleNamespace(batch_size=2, grad_accum=8, max_grad_norm=1.0)
    if says is None:
        made = deepspeed_config(settings, "fp32", 2)
        assert (made["gradient_accumulation_steps"], made["train_batch_size"]) == (8, 32)
        assert made["bf16"] == made["fp16"] == {"enabled": False}
    else:
        with pytest.raises(ConfigError, match=says):
            deepspeed_config(settings, "fp32", 2)


def test_a_deepspeed_config_that_contradicts_the_settings_is_refused(tmp_path):
    config = tmp_path / "ds.json"
    config.write_text(json.dumps({"train_micro_batch_size_per_gpu": 3, "zero_optimization": {"stage": 2}}))
    env = {"ACCELERATE_USE_DEEPSPEED": "true", "ACCELERATE_DEEPSPEED_CONFIG_FILE": str(config), "DS_ACCELERATOR": "cpu"}
    result = cli("train", "--trainer", "dpo", "--base", "mglkit:tiny", "--batch-size", "2",
                 "--output", tmp_path / "run", env=env)  # fmt: skip
    assert result.returncode == 2, result.stderr.decode()
    assert "sets train_micro_batch_size_per_gpu to 3; mglkit's settings make it 2" in result.stderr.decode()
    assert not (tmp_path / "run").exists()
