"""The Python API: mglkit.validate and mglkit.load_pairs."""

import subprocess
import sys

import pytest
from conftest import BAD, BUILTIN_VALIDATORS

import mglkit
from mglkit.errors import MglkitError

BUILTINS = BUILTIN_VALIDATORS.split(",")


def test_validate_a_path_returns_a_report():
    report = mglkit.validate(BAD / "short.jsonl", mglkit.ValidationConfig(validators=BUILTINS))
    assert isinstance(report, mglkit.ValidationReport)
    assert report.verdict == "fail" and not report.ok
    assert report.counts == {"records": 12, "valid": 11, "errors": 1, "warnings": 1}
    assert report.rules["length"].errors == 1 and report.rules["length"].examples[0].line == 2
    as_dict = report.to_dict()
    assert as_dict["findings"][0]["file"] == str(BAD / "short.jsonl")
    assert report.summary()["rules"]["length"] == {"errors": 1, "warnings": 0, "infos": 0}
    assert report.first_error() == "line 2: length: 2 words, at least 5 needed"


def test_validate_records_in_memory():
    pairs = list(mglkit.load_pairs(BAD / "good.jsonl"))
    assert len(pairs) == 12 and pairs[0].line == 1
    records = [p.to_record() for p in pairs]
    records[3]["rejected"] = records[3]["chosen"]
    report = mglkit.validate(records, mglkit.ValidationConfig(validators=BUILTINS))
    assert [(f.rule, f.line) for f in report.findings if f.severity == "error"] == [("differentiation", 4)]
    assert records[3]["rejected"] == records[3]["chosen"]  # the input is not modified


def test_conversational_records_keep_their_form():
    pairs = list(mglkit.load_pairs(BAD / "conversational.jsonl"))
    assert pairs[0].messages is not None and pairs[0].to_record()["chosen"][0]["role"] == "assistant"
    implicit = pairs[-1]
    assert implicit.prompt.endswith("суусан бэ?") and implicit.chosen.startswith("Тэмүжин")


def test_load_pairs_names_file_line_and_field():
    with pytest.raises(MglkitError) as error:
        list(mglkit.load_pairs(BAD / "missing_field.jsonl"))
    assert str(error.value).startswith(f"{BAD / 'missing_field.jsonl'}, line 4, field 'rejected':")
    assert error.value.hint


def test_settings_are_checked_when_a_config_is_made():
    with pytest.raises(mglkit.ConfigError, match="--min-cyrillic: 1.5 is out of range"):
        mglkit.ValidationConfig(min_cyrillic=1.5)
    with pytest.raises(mglkit.ConfigError, match="--beta"):
        mglkit.train(base="mglkit:tiny", trainer="dpo", beta=-1, output="/nonexistent/never-written")


def test_validating_imports_no_torch_or_transformers():
    code = (
        "import sys, mglkit.cli\n"
        f"try:\n    mglkit.cli.main(['validate', '--fix', '{BAD / 'good.jsonl'}'])\n"
        "except SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'transformers', 'trl', 'peft', 'datasets') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip().splitlines()[-1] == "[]"
