import contextlib
import fcntl
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
if os.environ.get("PYTEST_XDIST_WORKER"):  # two workers on two cores: one thread each, and their processes
    os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parent.parent
BAD = Path(__file__).resolve().parent / "bad_inputs"
EXAMPLE_PLUGIN = Path(__file__).resolve().parent / "example_plugin"
BUILTIN_VALIDATORS = "length,cyrillic,language,hygiene,differentiation,duplicates,size"
# Tests that build or load a model, or train, are the slow tier: `pytest -m "not slow"` skips them.
SLOW_FIXTURES = {"tiny", "quickstart_run", "short_run"}


def pytest_collection_modifyitems(items):
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@dataclass
class Outcome:
    returncode: int
    stdout: bytes
    stderr: bytes


def mglkit(*args, input=None, env=None, cwd=None) -> subprocess.CompletedProcess:
    """Run the real CLI in a subprocess, as a user would."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "mglkit", *map(str, args)],
        input=input,
        capture_output=True,
        env=full_env,
        cwd=cwd,
        timeout=600,
    )


@contextlib.contextmanager
def fresh_plugins(env: dict | None = None):
    """A fresh plugin manager for the duration (as a new process would load), under ``env``."""
    import mglkit.plugins

    saved = {key: os.environ.get(key) for key in env or {}}
    os.environ.update(env or {})
    mglkit.plugins._pm = None
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        mglkit.plugins._pm = None


def cli(*args, input=None, env=None) -> Outcome:
    """Run the CLI in this process (click's CliRunner): the same exit codes and streams, no start-up cost."""
    from click.testing import CliRunner

    from mglkit.cli import cli as group

    with fresh_plugins(env):
        result = CliRunner().invoke(group, [str(a) for a in args], input=input, prog_name="mglkit")
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    return Outcome(result.exit_code, result.stdout_bytes, result.stderr_bytes)


def cli_json(*args, **kwargs) -> tuple[int, dict]:
    result = cli(*args, "--json", **kwargs)
    assert b"Traceback" not in result.stderr and result.stdout, result.stderr.decode()
    return result.returncode, json.loads(result.stdout)


@pytest.fixture
def builtin_only():
    """Only the built-in validators load (as MGLKIT_LOAD_PLUGINS=validators would)."""
    with fresh_plugins({"MGLKIT_LOAD_PLUGINS": "validators"}):
        yield


@pytest.fixture(scope="session")
def example_plugin(tmp_path_factory):
    """The third-party example plugin, installed for this test run: its package and a dist-info folder
    on the path, for this process and the subprocesses it starts (no out-of-band pip install)."""
    site = tmp_path_factory.mktemp("site")
    (site / "mglkit_example").symlink_to(EXAMPLE_PLUGIN / "mglkit_example")
    dist = site / "mglkit_example_plugin-0.2.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: mglkit-example-plugin\nVersion: 0.2.0\n")
    (dist / "entry_points.txt").write_text("[mglkit]\nexample = mglkit_example\n")
    sys.path.insert(0, str(site))
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), old]))
    import mglkit.plugins

    mglkit.plugins._pm = None
    yield site
    sys.path.remove(str(site))
    os.environ.pop("PYTHONPATH") if old is None else os.environ.__setitem__("PYTHONPATH", old)
    mglkit.plugins._pm = None


QUICKSTART = (
    "--trainer dpo --base mglkit:tiny --learning-rate 5e-4 --batch-size 8 --grad-accum 1 --epochs 2 --max-length 256"
).split()


@pytest.fixture(scope="session")
def tiny():
    """mglkit:tiny, built once into the cache all test subprocesses share (MGLKIT_CACHE)."""
    from mglkit.models import ModelOptions, load_model

    return load_model("mglkit:tiny", ModelOptions(precision="fp32"))


@pytest.fixture(scope="session")
def quickstart_run(tiny, tmp_path_factory):
    """One run with the README quick start's settings, shared by the tests that read its outputs (and
    by pytest-xdist's workers: the first trains it, the others wait for it)."""
    shared = tmp_path_factory.getbasetemp()
    shared = shared.parent if os.environ.get("PYTEST_XDIST_WORKER") else shared
    out = shared / "quickstart" / "run"
    with open(shared / "quickstart.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out / "training_logs" / "training_stats.json").is_file():
            result = mglkit("train", *QUICKSTART, "--output", out, "--samples", "3", "--max-new-tokens", "24")
            assert result.returncode == 0, result.stderr.decode()[-3000:]
    return out


def read_metrics(run_dir) -> list[dict]:
    lines = (Path(run_dir) / "training_logs" / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


@pytest.fixture
def private_cache(tiny, tmp_path):
    """A cache folder of the test's own (give it to the processes it starts as MGLKIT_CACHE) that shares
    the built mglkit:tiny models of the common one: the reference log-probs in it are this test's alone."""
    from mglkit import cache_root

    folder = tmp_path / "cache"
    folder.mkdir()
    for entry in cache_root().iterdir():
        if entry.name.startswith("tiny") and (entry / "config.json").is_file():
            (folder / entry.name).symlink_to(entry)
    return folder
