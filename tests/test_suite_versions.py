"""suite.toml: each suite file's version and SHA-256 are recorded, so reports say what they measured."""

import hashlib
import json
import shutil

import pytest
from conftest import ROOT, mglkit

from mglkit.errors import UnusableInputError
from mglkit.evaluation import EvalReport
from mglkit.suites import load_suite

SUITE = ROOT / "benchmarks"


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_bundled_suite_records_versions_and_hashes():
    suite = load_suite("benchmarks")
    assert set(suite.files) == {"facts.jsonl", "pairs.jsonl", "fluency.jsonl", "retrieval.jsonl"}
    for name, record in suite.files.items():
        assert record["version"], f"benchmarks/suite.toml gives {name} no version"
        assert record["sha256"] == _sha256(SUITE / name)
    assert suite.limited(3).files == suite.files  # a limited run still names the files it drew from


def test_a_folder_without_suite_toml_has_null_versions_and_a_changed_file_a_new_hash(tmp_path):
    shutil.copy(SUITE / "facts.jsonl", tmp_path / "facts.jsonl")
    before = load_suite(str(tmp_path)).files
    assert before == {"facts.jsonl": {"version": None, "sha256": _sha256(SUITE / "facts.jsonl")}}
    lines = (tmp_path / "facts.jsonl").read_text(encoding="utf-8").splitlines()
    (tmp_path / "facts.jsonl").write_text("\n".join(lines[1:]) + "\n", encoding="utf-8")
    (tmp_path / "suite.toml").write_text('[files]\nfacts = "1.1"\n', encoding="utf-8")
    after = load_suite(str(tmp_path)).files["facts.jsonl"]
    assert after["version"] == "1.1" and after["sha256"] != before["facts.jsonl"]["sha256"]


def test_the_report_json_carries_the_suite_files():
    suite = load_suite("benchmarks")
    report = EvalReport(suite.name, ["base"], {}, {}, {}, files=suite.files)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["suite"]["name"] == "benchmarks"
    assert data["suite"]["files"]["facts.jsonl"] == {
        "version": suite.files["facts.jsonl"]["version"],
        "sha256": _sha256(SUITE / "facts.jsonl"),
    }


@pytest.mark.parametrize(
    "manifest, message",
    [
        ("[files]\nfacts = 1.1\n", "key 'facts': the version must be a quoted string"),
        ('[files]\nfact = "1.0"\n', "key 'fact': not a suite part"),
        ('[files]\npairs = "1.0"\n', "key 'pairs': the folder has no pairs.jsonl"),
        ('[versions]\nfacts = "1.0"\n', "unknown entry 'versions'"),
        ('[files]\nfacts = "1.0\n', "not valid TOML"),
    ],
)
def test_a_bad_suite_toml_is_named(tmp_path, manifest, message):
    shutil.copy(SUITE / "facts.jsonl", tmp_path / "facts.jsonl")
    (tmp_path / "suite.toml").write_text(manifest, encoding="utf-8")
    with pytest.raises(UnusableInputError) as caught:
        load_suite(str(tmp_path))
    assert str(tmp_path / "suite.toml") in str(caught.value) and message in str(caught.value)


def test_eval_refuses_a_bad_suite_toml_in_one_line_before_loading_a_model(tmp_path):
    shutil.copy(SUITE / "facts.jsonl", tmp_path / "facts.jsonl")
    (tmp_path / "suite.toml").write_text("[files]\nfacts = 2\n", encoding="utf-8")
    result = mglkit("eval", tmp_path, "--base", "no-such-model-folder")
    assert result.returncode == 2
    assert b"Traceback" not in result.stderr and b"suite.toml" in result.stderr
