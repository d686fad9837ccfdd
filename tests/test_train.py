"""`mglkit train`: both trainers, parity, multi-process, resume, outputs, bad input."""

import json
import math
import signal
import subprocess
import sys
import time

import pytest
from conftest import QUICKSTART, ROOT, mglkit, read_metrics

TRAIN = ROOT / "data" / "mgl_history_grpo.jsonl"
PARITY = [
    "--base", "mglkit:tiny", "--skip-validation", "--eval-split", "0", "--grad-accum", "1",
    "--scheduler", "constant", "--warmup-ratio", "0", "--lora-dropout", "0", "--precision", "fp32",
    "--seed", "7", "--samples", "0", "--learning-rate", "1e-3",
]  # fmt: skip


@pytest.fixture(scope="module")
def eight_pairs(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "eight.jsonl"
    path.write_text("".join(TRAIN.read_text(encoding="utf-8").splitlines(keepends=True)[:8]), encoding="utf-8")
    return path


def train_ok(*args):
    result = mglkit("train", *args)
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    assert b"Traceback" not in result.stderr
    return result


def train_rows(run_dir):
    return [m for m in read_metrics(run_dir) if "loss" in m]


def test_dpo_and_trl_dpo_log_the_same_steps(tiny, eight_pairs, tmp_path):
    for trainer in ("dpo", "trl-dpo"):
        train_ok("--trainer", trainer, *PARITY, "--dataset", eight_pairs, "--batch-size", "8",
                 "--max-steps", "5", "--output", tmp_path / trainer)  # fmt: skip
    ours, theirs = train_rows(tmp_path / "dpo"), train_rows(tmp_path / "trl-dpo")
    assert [m["step"] for m in ours] == [m["step"] for m in theirs] == [1, 2, 3, 4, 5]
    for a, b in zip(ours, theirs, strict=True):
        for key in ("loss", "rewards/chosen", "rewards/rejected"):
            assert a[key] == pytest.approx(b[key], abs=1e-4), (a["step"], key)
    assert ours[-1]["loss"] < ours[0]["loss"] - 0.1  # and something was learnt


def test_two_processes_give_the_same_losses_as_one(tiny, eight_pairs, tmp_path):
    # accelerate 1.15 starts a single process for `--cpu --num_processes 2` unless mpirun is set up;
    # `--multi_gpu` starts torchrun workers, which without CUDA join a gloo CPU process group.
    common = ["--trainer", "dpo", *PARITY, "--dataset", eight_pairs, "--max-steps", "4"]
    train_ok(*common, "--batch-size", "4", "--output", tmp_path / "one")
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
              "-m", "mglkit", "train", *common, "--batch-size", "2", "--output", str(tmp_path / "two")]  # fmt: skip
    result = subprocess.run(launch, capture_output=True, timeout=600)
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    one, two = train_rows(tmp_path / "one"), train_rows(tmp_path / "two")
    assert len(one) == len(two) == 4  # only the main process logs
    for a, b in zip(one, two, strict=True):
        for key in ("loss", "rewards/chosen", "rewards/rejected", "rewards/margins"):
            assert a[key] == pytest.approx(b[key], abs=1e-5), (a["step"], key)


def adapter_tensors(folder):
    from safetensors.torch import load_file

    return load_file(str(folder / "adapter_model.safetensors"))


def test_resume_after_sigkill_ends_with_the_same_weights(tiny, tmp_path):
    args = ["--trainer", "dpo", "--base", "mglkit:tiny", "--eval-split", "0", "--batch-size", "4",
            "--grad-accum", "2", "--max-steps", "16", "--save-steps", "4", "--learning-rate", "5e-4",
            "--precision", "fp32", "--samples", "0", "--max-length", "192"]  # fmt: skip
    train_ok(*args, "--output", tmp_path / "straight")
    killed = tmp_path / "killed"
    process = subprocess.Popen([sys.executable, "-m", "mglkit", "train", *args, "--output", str(killed)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 300
    while not (killed / "checkpoints" / "step-8").is_dir() and process.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL, "the run ended before it could be killed"
    assert not (killed / "adapter_model.safetensors").exists()
    train_ok(*args, "--output", killed, "--resume")
    straight, resumed = adapter_tensors(tmp_path / "straight"), adapter_tensors(killed)
    assert straight.keys() == resumed.keys()
    for name, tensor in straight.items():
        assert (tensor - resumed[name]).abs().max().item() < 1e-5, name
    steps = [m["step"] for m in train_rows(killed)]
    assert steps == list(range(1, 17))  # nothing logged twice, nothing lost


def test_quickstart_learns(quickstart_run):
    rows = train_rows(quickstart_run)
    last_quarter = rows[-max(1, len(rows) // 4) :]
    assert sum(r["rewards/accuracies"] for r in last_quarter) / len(last_quarter) > 0.6
    assert sum(r["rewards/margins"] for r in last_quarter) / len(last_quarter) > 0


def test_run_outputs(quickstart_run):
    run = quickstart_run
    for name in ("adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "training_args.json",
                 "README.md", "last/adapter_model.safetensors", "training_logs/training_stats.json",
                 "training_logs/metrics.jsonl", "training_logs/sample_generations.jsonl",
                 "training_logs/training.log"):  # fmt: skip
        assert (run / name).is_file(), name
    published = [p for p in run.rglob("*") if "checkpoints" not in p.parts]
    assert not [p for p in published if p.suffix in (".bin", ".pt", ".pth", ".pkl", ".pickle")]
    stats = json.loads((run / "training_logs" / "training_stats.json").read_text())
    guide_keys = {"base_model", "total_samples", "train_samples", "test_samples", "epochs", "total_steps",
                  "avg_loss", "mean_reward", "validation_accuracy", "training_time", "model_size_mb"}  # fmt: skip
    assert guide_keys <= stats.keys()
    assert (stats["total_samples"], stats["train_samples"], stats["test_samples"]) == (210, 189, 21)
    assert stats["total_steps"] == 2 * math.ceil(189 / 8) and stats["micro_steps"] == stats["total_steps"]
    assert stats["validation"]["verdict"] == "pass-with-warnings" and stats["validation"]["counts"]["records"] == 210
    marker = json.loads((run / ".mglkit.json").read_text())
    assert marker["kind"] == "run" and marker["status"] == "finished"
    assert 0 <= stats["validation_accuracy"] <= 1 and stats["trainable_parameters"] > 0
    args = json.loads((run / "training_args.json").read_text())
    assert args["prompt_format"] == {"chat_template": True} and args["config"]["base"] == "mglkit:tiny"
    assert args["method"] == "DPO, sigmoid loss, beta 0.1" and args["config"]["options"]["beta"] == 0.1
    card = (run / "README.md").read_text()
    assert "base_model: mglkit:tiny" in card and args["dataset_sha256"] in card
    metrics = read_metrics(run)
    names = set().union(*metrics)
    assert {"loss", "rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins",
            "logps/chosen", "logps/rejected", "learning_rate", "grad_norm", "eval_loss"} <= names  # fmt: skip
    samples = [json.loads(x) for x in (run / "training_logs" / "sample_generations.jsonl").read_text().splitlines()]
    assert len(samples) == 3 and all(s["generation"] for s in samples)
    adapter = json.loads((run / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == "mglkit:tiny" and adapter["r"] == 16


def test_adapter_loads_with_peft_and_generates(quickstart_run, tiny):
    import torch
    from peft import PeftModel

    from mglkit.models import ModelOptions, load_model

    base, tokenizer = load_model("mglkit:tiny", ModelOptions(precision="fp32"))
    model = PeftModel.from_pretrained(base, str(quickstart_run))
    inputs = tokenizer("Чингис хааны тухай ярина уу?", return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=12, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    assert out.shape[1] > inputs["input_ids"].shape[1]
    with model.disable_adapter(), torch.no_grad():
        base_logits = model(**inputs).logits
    assert not torch.allclose(model(**inputs).logits, base_logits)  # the adapter changes the model


def test_generate_command(quickstart_run):
    result = mglkit("generate", "--base", "mglkit:tiny", "--adapter", quickstart_run, "--max-new-tokens", "16",
                    "--temperature", "0", "Их Монгол Улс хэдэн онд байгуулагдсан бэ?")  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().strip()


def test_lora_count_is_peft_count(tiny):
    from peft import get_peft_model

    from mglkit.config import TrainConfig
    from mglkit.models import ModelOptions, load_model, lora_config, lora_parameter_count

    for target in ("q_proj,k_proj,v_proj,o_proj", "all-linear"):
        config = TrainConfig(lora_target=target)
        model, _ = load_model("mglkit:tiny", ModelOptions(precision="fp32"))
        expected, total = lora_parameter_count(model, config)
        peft_model = get_peft_model(model, lora_config(config))
        assert sum(p.numel() for p in peft_model.parameters() if p.requires_grad) == expected
        assert total == sum(p.numel() for n, p in peft_model.named_parameters() if "lora_" not in n)


def test_hub_loading_code_on_a_local_folder(tiny, tmp_path, eight_pairs):
    model, tokenizer = tiny
    folder = tmp_path / "my-model"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    train_ok("--trainer", "dpo", *PARITY[2:], "--base", folder, "--dataset", eight_pairs, "--batch-size", "4",
             "--max-steps", "1", "--output", tmp_path / "run")  # fmt: skip
    adapter = json.loads((tmp_path / "run" / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == str(folder)


def test_dry_run_prints_the_plan_and_writes_nothing(tiny, tmp_path):
    result = mglkit("train", *QUICKSTART, "--output", tmp_path / "run", "--dry-run")
    assert result.returncode == 0, result.stderr.decode()
    out = result.stdout.decode()
    for item in ("optimizer_steps", "trainable_parameters", "memory_estimate_gb", "train_tokens_per_epoch"):
        assert item in out
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_tiny_random_builds_deterministically(tmp_path):
    code = (
        "import sys, torch; from mglkit.models import load_model, ModelOptions;"
        "m, t = load_model('mglkit:tiny-random', ModelOptions(precision='fp32'));"
        "print(sum(p.double().sum().item() for p in m.parameters()), len(t))"
    )
    outputs = []
    for cache in ("a", "b"):
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                env={**__import__("os").environ, "MGLKIT_CACHE": str(tmp_path / cache)})  # fmt: skip
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout.split())
    assert outputs[0] == outputs[1]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--dataset", ROOT / "tests" / "bad_inputs" / "short.jsonl"], 1, b"failed validation"),
        (["--base", "/nonexistent/model-folder"], 2, b"cannot load model '/nonexistent/model-folder'"),
        (["--trainer", "no-such-trainer"], 2, b"unknown trainer 'no-such-trainer'; installed: dpo, trl-dpo"),
        (["--quantize", "4bit"], 2, b"--quantize 4bit needs a CUDA GPU"),
    ],
)
def test_bad_input_is_a_clear_error_and_writes_nothing(tiny, tmp_path, args, code, message):
    options = dict(zip(QUICKSTART[::2], QUICKSTART[1::2], strict=True))
    options.update(dict(zip(args[::2], args[1::2], strict=True)))
    flat = [str(x) for pair in options.items() for x in pair]
    result = mglkit("train", *flat, "--output", tmp_path / "run")
    assert result.returncode == code and message in result.stderr, result.stderr.decode()[-2000:]
    assert b"Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()


def test_output_that_is_a_file_and_resume_that_is_not_a_run(tiny, tmp_path):
    file = tmp_path / "file"
    file.write_text("x")
    result = mglkit("train", *QUICKSTART, "--output", file)
    assert result.returncode == 2 and b"is a file, not a folder" in result.stderr and file.read_text() == "x"
    empty = tmp_path / "not-a-run"
    empty.mkdir()
    result = mglkit("train", *QUICKSTART, "--output", tmp_path / "new", "--resume", empty)
    assert result.returncode == 2 and b"not a run with checkpoints" in result.stderr
    assert b"Traceback" not in result.stderr and list(empty.iterdir()) == []


def test_nan_losses_stop_the_run_with_a_checkpoint(tiny, eight_pairs, tmp_path):
    result = mglkit("train", "--trainer", "dpo", *PARITY[:-1], "1e12", "--dataset", eight_pairs,
                    "--batch-size", "4", "--max-steps", "40", "--max-grad-norm", "1e12",
                    "--output", tmp_path / "run")  # fmt: skip
    assert result.returncode == 3 and b"NaN or infinite" in result.stderr, result.stderr.decode()[-2000:]
    assert list((tmp_path / "run" / "checkpoints").glob("step-*"))


def test_train_with_eval_reports_benchmarks(tiny, eight_pairs, tmp_path):
    suite = tmp_path / "suite"
    suite.mkdir()
    for name in ("pairs.jsonl", "facts.jsonl"):
        lines = (ROOT / "benchmarks" / name).read_text(encoding="utf-8").splitlines(keepends=True)
        (suite / name).write_text("".join(lines[:4]), encoding="utf-8")
    train_ok("--trainer", "dpo", *PARITY, "--dataset", eight_pairs, "--batch-size", "4", "--max-steps", "2",
             "--output", tmp_path / "run", "--eval", suite, "--samples", "1", "--max-new-tokens", "4")  # fmt: skip
    stats = json.loads((tmp_path / "run" / "training_logs" / "training_stats.json").read_text())
    assert set(stats["benchmarks"]["evaluators"]) == {"preference", "facts"}
    assert stats["benchmarks"]["columns"] == ["base", "adapter"]
    card = (tmp_path / "run" / "README.md").read_text()
    assert "## Benchmarks" in card and "| facts | acc |" in card


def test_ctrl_c_saves_a_checkpoint_that_resume_continues(tiny, tmp_path):
    args = ["--trainer", "dpo", "--base", "mglkit:tiny", "--eval-split", "0", "--batch-size", "4",
            "--max-steps", "40", "--learning-rate", "5e-4", "--precision", "fp32", "--samples", "0",
            "--max-length", "192", "--grad-accum", "1"]  # fmt: skip
    out = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-m", "mglkit", "train", *args, "--output", str(out)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    metrics = out / "training_logs" / "metrics.jsonl"
    deadline = time.time() + 300
    while process.poll() is None and time.time() < deadline:
        if metrics.is_file() and len(metrics.read_text().splitlines()) >= 3:
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 3 and b"interrupted at step" in stderr, stderr.decode()[-2000:]
    assert b"Traceback" not in stderr
    (checkpoint,) = (out / "checkpoints").glob("step-*")
    stopped_at = int(checkpoint.name.split("-")[1])
    assert 0 < stopped_at < 40
    train_ok(*args, "--output", out, "--resume")
    assert [m["step"] for m in train_rows(out)] == list(range(1, 41))


def test_beta_is_what_the_dpo_loss_receives(tiny, eight_pairs, tmp_path, monkeypatch):
    import mglkit_dpo.loop

    import mglkit

    seen = []
    real = mglkit_dpo.loop.dpo_loss

    def recording(kind, beta, *args):
        seen.append((kind, beta))
        return real(kind, beta, *args)

    monkeypatch.setattr(mglkit_dpo.loop, "dpo_loss", recording)
    mglkit.train(
        trainer="dpo",
        base="mglkit:tiny",
        dataset=str(eight_pairs),
        skip_validation=True,
        eval_split=0,
        max_steps=1,
        batch_size=4,
        samples=0,
        output=str(tmp_path / "run"),
        beta=0.3,
        loss="hinge",
    )
    assert seen and set(seen) == {("hinge", 0.3)}


def short_run(data, extra: str) -> list:
    """A 4-step dpo run on ``data``, with ``extra`` options."""
    return ["--trainer", "dpo", *PARITY, "--dataset", data, *"--batch-size 2 --max-steps 4".split(), *extra.split()]


def test_damaged_checkpoints_are_clear_errors(tiny, eight_pairs, tmp_path):
    args = short_run(eight_pairs, "--save-steps 1")
    run = tmp_path / "run"
    train_ok(*args, "--output", run)
    (newest,) = sorted(run.glob("checkpoints/step-3"))
    (newest / "trainer_state.pt").unlink()
    result = mglkit("train", *args, "--output", run, "--resume")
    assert result.returncode == 2 and b"is incomplete: no trainer_state.pt" in result.stderr
    import torch

    torch.save({"optimizer": argparse_namespace()}, newest / "trainer_state.pt")  # a pickle of an object
    result = mglkit("train", *args, "--output", run, "--resume")
    assert result.returncode == 2 and b"cannot resume from" in result.stderr and b"Traceback" not in result.stderr
    for item in newest.iterdir():
        item.unlink()
    result = mglkit("train", *args, "--output", run, "--resume")
    assert result.returncode == 2 and b"is incomplete" in result.stderr


def argparse_namespace():
    import argparse

    return argparse.Namespace(code="not a tensor")


def test_a_torn_metrics_line_is_dropped_on_resume(tiny, eight_pairs, tmp_path):
    args = short_run(eight_pairs, "--save-steps 2")
    run = tmp_path / "run"
    train_ok(*args, "--output", run)
    metrics = run / "training_logs" / "metrics.jsonl"
    lines = metrics.read_text().splitlines()
    metrics.write_text("\n".join(lines[:2]) + '\n{"step": 3, "loss": 0.6')  # killed while writing step 3
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["step-2"]
    train_ok(*args, "--output", run, "--resume")
    assert [m["step"] for m in train_rows(run)] == [1, 2, 3, 4]


def test_trl_dpo_resume_needs_a_complete_checkpoint(tiny, eight_pairs, tmp_path):
    args = [
        "--trainer",
        "trl-dpo",
        *PARITY,
        "--dataset",
        eight_pairs,
        "--batch-size",
        "4",
        "--max-steps",
        "2",
        "--save-steps",
        "1",
    ]
    run = tmp_path / "run"
    train_ok(*args, "--output", run)
    checkpoints = sorted((run / "checkpoints").glob("checkpoint-*"))
    assert checkpoints and not list((run / "checkpoints").rglob("*.bin"))  # pickle-free: JSON arguments instead
    assert all((c / "training_args.json").is_file() for c in checkpoints)
    (checkpoints[-1] / "optimizer.pt").unlink()
    result = mglkit("train", *args, "--output", run, "--resume")
    assert result.returncode == 2 and b"is incomplete: no optimizer.pt" in result.stderr


def test_generate_refuses_a_question_that_does_not_fit(tiny):
    question = "Чингис хааны тухай ярина уу? " * 400
    result = mglkit("generate", "--base", "mglkit:tiny", "--max-new-tokens", "8", question)
    assert result.returncode == 2 and b"the question takes" in result.stderr and b"Traceback" not in result.stderr
