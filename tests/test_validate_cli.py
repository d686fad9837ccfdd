"""`mglkit validate` on the bad-input corpus: verdicts, exit codes, rules, lines, fields."""

import base64
import json
import subprocess
import sys

import pytest
from conftest import BAD, ROOT, cli, cli_json

# file -> (verdict, exit code, a finding that must be there: (rule, severity, line, field))
CASES = {
    "good.jsonl": ("pass-with-warnings", 0, ("size", "warning", None, None)),
    "bom_crlf_blank.jsonl": ("pass-with-warnings", 0, ("size", "warning", None, None)),
    "conversational.jsonl": ("pass-with-warnings", 0, ("size", "warning", None, None)),
    "not_json.jsonl": ("fail", 1, ("format", "error", 3, None)),
    "not_object.jsonl": ("fail", 1, ("format", "error", 2, None)),
    "missing_field.jsonl": ("fail", 1, ("format", "error", 4, "rejected")),
    "wrong_type.jsonl": ("fail", 1, ("format", "error", 5, "chosen")),
    "empty_field.jsonl": ("fail", 1, ("format", "error", 6, "chosen")),
    "bad_message.jsonl": ("fail", 1, ("format", "error", 3, "prompt")),
    "unknown_field.jsonl": ("pass-with-warnings", 0, ("format", "warning", 4, "score")),
    "invalid_utf8_line.jsonl": ("fail", 1, ("format", "error", 5, None)),
    "short.jsonl": ("fail", 1, ("length", "error", 2, "prompt")),
    "latin.jsonl": ("fail", 1, ("cyrillic", "error", 3, "chosen")),
    "russian.jsonl": ("fail", 1, ("language", "error", 4, "chosen")),
    "russian_mix_rejected.jsonl": ("pass-with-warnings", 0, ("language", "warning", 5, "rejected")),
    "kazakh.jsonl": ("fail", 1, ("language", "error", 6, "chosen")),
    "invisible.jsonl": ("fail", 1, ("hygiene", "error", 7, "prompt")),
    "homoglyph.jsonl": ("fail", 1, ("hygiene", "error", 8, "chosen")),
    "mojibake.jsonl": ("fail", 1, ("hygiene", "error", 9, "chosen")),
    "non_nfc.jsonl": ("fail", 1, ("hygiene", "error", 10, "chosen")),
    "identical.jsonl": ("fail", 1, ("differentiation", "error", 2, "rejected")),
    "near_identical.jsonl": ("pass-with-warnings", 0, ("differentiation", "warning", 3, "rejected")),
    "duplicates.jsonl": ("fail", 1, ("duplicates", "error", 6, None)),
    "too_few.jsonl": ("fail", 1, ("size", "error", None, None)),
    "utf16.jsonl": ("unusable", 2, ("input", "error", None, None)),
    "array.json": ("unusable", 2, ("input", "error", None, None)),
    "empty.jsonl": ("unusable", 2, ("input", "error", None, None)),
    "blank_only.jsonl": ("unusable", 2, ("input", "error", None, None)),
    "scalar.jsonl": ("unusable", 2, ("input", "error", None, None)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_corpus(name, builtin_only):
    verdict, code, expected = CASES[name]
    returncode, report = cli_json("validate", BAD / name)
    assert (report["verdict"], returncode) == (verdict, code)
    found = {(f["rule"], f["severity"], f["line"], f["field"]) for f in report["findings"]}
    assert expected in found
    assert all(f["file"] == str(BAD / name) for f in report["findings"])
    # the rich report never crashes either, and exits the same way
    human = cli("validate", BAD / name)
    assert human.returncode == code and b"Traceback" not in human.stderr


def test_every_corpus_file_is_covered():
    files = {p.name for p in BAD.iterdir() if p.suffix in (".jsonl", ".json")}
    assert files == set(CASES)


def test_only_the_bad_line_is_flagged(builtin_only):
    _, report = cli_json("validate", BAD / "russian.jsonl")
    lines = {f["line"] for f in report["findings"] if f["line"] is not None}
    assert lines == {4}


def test_line_numbers_count_blank_lines_and_crlf(builtin_only, tmp_path):
    data = (BAD / "bom_crlf_blank.jsonl").read_bytes().split(b"\r\n")
    data[8] = b'{"prompt": "x"}'  # physical line 9, after the two blank lines
    path = tmp_path / "f.jsonl"
    path.write_bytes(b"\r\n".join(data))
    _, report = cli_json("validate", path)
    assert {f["line"] for f in report["findings"] if f["rule"] == "format"} == {9}


def test_changed_date_is_a_legitimate_minimal_pair(builtin_only):
    _, report = cli_json("validate", BAD / "near_identical.jsonl")
    near = [f for f in report["findings"] if f["rule"] == "differentiation"]
    assert [f["line"] for f in near] == [3]  # line 4 differs only in its date
    assert "хэрлэн" in near[0]["message"] and "%" in near[0]["message"]


def test_repeated_prompt_is_a_warning_repeated_pair_an_error(builtin_only):
    _, report = cli_json("validate", BAD / "duplicates.jsonl")
    dup = {(f["line"], f["severity"]) for f in report["findings"] if f["rule"] == "duplicates"}
    assert dup == {(6, "error"), (8, "warning")}


def test_json_counts(builtin_only):
    _, report = cli_json("validate", BAD / "missing_field.jsonl")
    assert report["counts"] == {"records": 12, "valid": 11, "errors": 1, "warnings": 1}


def test_several_files_report_the_worst_verdict(builtin_only):
    code, report = cli_json("validate", BAD / "good.jsonl", BAD / "short.jsonl")
    assert code == 1 and report["verdict"] == "fail"
    assert [r["verdict"] for r in report["reports"]] == ["pass-with-warnings", "fail"]


def test_missing_file_is_unusable(builtin_only, tmp_path):
    code, report = cli_json("validate", tmp_path / "nope.jsonl")
    assert code == 2 and report["verdict"] == "unusable"
    assert "no such file" in report["findings"][0]["message"]


def test_stdin(builtin_only):
    result = cli("validate", "-", "--json", input=(BAD / "short.jsonl").read_bytes())
    report = json.loads(result.stdout)
    assert result.returncode == 1 and report["file"] == "<stdin>"


def test_strict_turns_warnings_into_errors(builtin_only):
    assert cli("validate", BAD / "good.jsonl").returncode == 0
    code, report = cli_json("validate", "--strict", BAD / "good.jsonl")
    assert code == 1 and report["counts"]["warnings"] == 0


def test_thresholds_from_flags_config_file_and_pyproject(builtin_only, tmp_path, monkeypatch):
    good = BAD / "good.jsonl"
    code, report = cli_json("validate", "--min-words-chosen", "100", good)
    assert code == 1 and {f["rule"] for f in report["findings"]} >= {"length"}
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text("[tool.mglkit.validate]\nmin_pairs = 50\n")
    code, report = cli_json("validate", good)
    assert code == 1 and "at least 50 needed" in report["findings"][0]["message"]
    (tmp_path / "mglkit.toml").write_text("[validate]\nmin_pairs = 3\nrecommended_pairs = 5\n")
    code, report = cli_json("validate", good)
    assert code == 0 and report["verdict"] == "pass"
    code, _ = cli_json("validate", "--min-pairs", "20", good)  # flags win
    assert code == 1


def test_bad_config_is_a_clear_error(builtin_only, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mglkit.toml").write_text("[validate]\nmin_wrods_chosen = 3\n")
    result = cli("validate", BAD / "good.jsonl")
    assert result.returncode == 2
    assert b"mglkit.toml [validate]: unknown setting 'min_wrods_chosen'" in result.stderr
    assert b"did you mean 'min_words_chosen'" in result.stderr


def test_clean_and_rejects_partition_every_record(builtin_only, tmp_path):
    source = tmp_path / "mixed.jsonl"
    source.write_bytes(b"".join((BAD / n).read_bytes() for n in ("not_json.jsonl", "invalid_utf8_line.jsonl")))
    clean, rejects = tmp_path / "clean.jsonl", tmp_path / "rejects.jsonl"
    code, report = cli_json(
        "validate", source, "--out-clean", clean, "--out-rejects", rejects, "--validators", "length"
    )  # the two halves repeat each other's pairs
    assert code == 1
    clean_lines = clean.read_bytes().splitlines()
    reject_entries = [json.loads(line) for line in rejects.read_bytes().splitlines()]
    assert len(clean_lines) + len(reject_entries) == report["counts"]["records"] == 24
    assert [e["line"] for e in reject_entries] == [3, 17]
    not_json, not_utf8 = reject_entries
    assert not_json["reasons"][0].startswith("format:")
    original = source.read_bytes().splitlines()
    assert base64.b64decode(not_json["raw"]) == original[2]
    assert base64.b64decode(not_utf8["raw"]) == original[16]  # bytes kept losslessly
    assert set(clean_lines) <= set(original)  # clean records are the input lines, unchanged


def test_rejects_hold_the_parsed_record(builtin_only, tmp_path):
    rejects = tmp_path / "rejects.jsonl"
    cli("validate", BAD / "short.jsonl", "--out-rejects", rejects)
    (entry,) = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert entry["line"] == 2 and entry["record"]["prompt"] == "Чингис хаан?"
    assert any("length" in r for r in entry["reasons"])


def test_refuses_to_overwrite_the_input(builtin_only, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_bytes((BAD / "good.jsonl").read_bytes())
    before = source.read_bytes()
    for target in (source, tmp_path / "." / "in.jsonl", tmp_path / "link.jsonl", tmp_path / "hard.jsonl"):
        if target.name == "link.jsonl":
            target.symlink_to(source)
        elif target.name == "hard.jsonl":
            target.hardlink_to(source)
        result = cli("validate", source, "--out-clean", target)
        assert result.returncode == 2 and b"is the input" in result.stderr, target
        assert source.read_bytes() == before
    with open(source, "rb") as stdin:  # stdin is the file itself: `validate - --out-clean f < f`
        piped = subprocess.run(
            [sys.executable, "-m", "mglkit", "validate", "-", "--out-clean", str(source)],
            stdin=stdin,
            capture_output=True,
        )
    assert piped.returncode == 2 and b"is the input standard input" in piped.stderr
    assert source.read_bytes() == before


def test_refuses_to_overwrite_the_bundled_input_found_by_name(builtin_only, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no data/ here: the name finds the bundled file
    bundled = ROOT / "data" / "mgl_history_grpo.jsonl"
    before = bundled.read_bytes()
    result = cli("validate", "data/mgl_history_grpo.jsonl", "--out-clean", bundled)
    assert result.returncode == 2 and b"is the input" in result.stderr
    assert bundled.read_bytes() == before


def test_unusable_input_writes_no_outputs(builtin_only, tmp_path):
    clean = tmp_path / "clean.jsonl"
    code, _ = cli_json("validate", BAD / "utf16.jsonl", "--out-clean", clean)
    assert code == 2 and not clean.exists()
    assert list(tmp_path.iterdir()) == []  # no temporary files left behind


def test_rejects_file_is_always_written(builtin_only, tmp_path):
    rejects = tmp_path / "rejects.jsonl"
    rejects.write_text("stale\n")
    rejects.chmod(0o640)
    code, _ = cli_json("validate", BAD / "good.jsonl", "--out-rejects", rejects)
    assert code == 0 and rejects.read_text() == ""  # no stale rejects left from an earlier run
    assert rejects.stat().st_mode & 0o777 == 0o640  # a replaced file keeps its mode


def test_fix_repairs_and_lists_every_repair(builtin_only, tmp_path):
    clean, rejects = tmp_path / "clean.jsonl", tmp_path / "rejects.jsonl"
    for name, line in (("homoglyph.jsonl", 8), ("invisible.jsonl", 7), ("non_nfc.jsonl", 10)):
        code, report = cli_json("validate", BAD / name, "--fix", "--out-clean", clean, "--out-rejects", rejects)
        assert code == 0, report
        fixes = [f for f in report["findings"] if f["rule"] == "fix"]
        assert fixes and all(f["line"] == line and f["severity"] == "info" for f in fixes)
        assert not [f for f in report["findings"] if f["rule"] == "hygiene"]
        assert rejects.read_text() == ""
        records = [json.loads(x) for x in clean.read_text().splitlines()]
        assert len(records) == 12
        text = json.dumps(records, ensure_ascii=False)
        assert "\u200b" not in text and "Oнoн" not in text and "\u0306" not in text


def test_jobs_give_the_same_report(builtin_only, tmp_path):
    source = tmp_path / "many.jsonl"
    source.write_bytes(
        b"".join(
            (BAD / n).read_bytes()
            for n in sorted(CASES)
            if n.endswith("l") and n not in ("utf16.jsonl", "bom_crlf_blank.jsonl")
        )
        * 30
    )
    _, one = cli_json("validate", source)
    _, two = cli_json("validate", "--jobs", "2", source)
    assert one == two and one["counts"]["records"] > 1000
