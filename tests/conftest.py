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
