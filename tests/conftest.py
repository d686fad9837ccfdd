import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
BAD = Path(__file__).resolve().parent / "bad_inputs"
BUILTIN_VALIDATORS = "length,cyrillic,language,hygiene,differentiation,duplicates,size"


def mglkit(*args, input=None, env=None, cwd=None) -> subprocess.CompletedProcess:
    """Run the real CLI in a subprocess, as a user would."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "mglkit", *map(str, args)],
        input=input,
        capture_output=True,
        env=full_env,
        cwd=cwd,
        timeout=300,
    )


def mglkit_json(*args, **kwargs) -> tuple[int, dict]:
    result = mglkit(*args, "--json", **kwargs)
    assert b"Traceback" not in result.stderr, result.stderr.decode()
    return result.returncode, json.loads(result.stdout)


@pytest.fixture
def builtin_only(monkeypatch):
    """Subprocesses load only the built-in plugins (the example plugin adds its own warnings)."""
    monkeypatch.setenv("MGLKIT_LOAD_PLUGINS", "validators")


QUICKSTART = [
    "--trainer", "dpo", "--base", "mglkit:tiny", "--learning-rate", "5e-4", "--batch-size", "8",
    "--grad-accum", "1", "--epochs", "2", "--max-length", "256",
]  # fmt: skip


@pytest.fixture(scope="session")
def tiny():
    """mglkit:tiny, built once into the cache all test subprocesses share (MGLKIT_CACHE)."""
    from mglkit.models import ModelOptions, load_model

    return load_model("mglkit:tiny", ModelOptions(precision="fp32"))


@pytest.fixture(scope="session")
def quickstart_run(tiny, tmp_path_factory):
    """One run with the README quick start's settings, shared by the tests that read its outputs."""
    out = tmp_path_factory.mktemp("quickstart") / "run"
    result = mglkit("train", *QUICKSTART, "--output", out, "--samples", "3", "--max-new-tokens", "24")
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    return out


def read_metrics(run_dir) -> list[dict]:
    lines = (Path(run_dir) / "training_logs" / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]
