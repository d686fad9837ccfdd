"""Property-based tests of the JSONL reader and validate: arbitrary bytes and arbitrary JSON values
never crash them, every input line lands in exactly one of clean/rejects, and the exit code follows
the scheme (0 pass, 1 errors, 2 unusable)."""

import json
import os

from conftest import BAD
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mglkit.config import ValidationConfig
from mglkit.findings import exit_code
from mglkit.pairs import iter_records
from mglkit.validation import validate_file

# derandomized under CI: the same examples every run, so a red CI is reproducible
PROFILE = settings(
    max_examples=100,
    deadline=None,
    derandomize=bool(os.environ.get("CI")),
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

GOOD_LINES = [line for line in (BAD / "good.jsonl").read_bytes().splitlines() if line.strip()]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
pair_like = st.fixed_dictionaries(
    {"prompt": json_values | st.text(), "chosen": json_values | st.text(), "rejected": json_values | st.text()},
    optional={"id": json_values, "extra": json_values},
)
lines = st.one_of(
    st.binary(max_size=200).map(lambda b: b.replace(b"\n", b" ").replace(b"\r", b" ")),
    json_values.map(lambda v: json.dumps(v).encode()),
    pair_like.map(lambda v: json.dumps(v, ensure_ascii=False).encode()),
    st.sampled_from(GOOD_LINES),
)


def check_partition(tmp_path, content: bytes):
    source, clean, rejects = tmp_path / "in.jsonl", tmp_path / "clean.jsonl", tmp_path / "rejects.jsonl"
    source.write_bytes(content)
    for out in (clean, rejects):
        out.unlink(missing_ok=True)
    config = ValidationConfig(validators=["length", "cyrillic", "differentiation", "duplicates", "size"])
    report = validate_file(source, config, out_clean=str(clean), out_rejects=str(rejects), keep_findings=True)
    assert exit_code(report.verdict) in (0, 1, 2)
    if report.verdict == "unusable":
        assert not clean.exists() and not rejects.exists()
        return
    kept = clean.read_bytes().splitlines()
    rejected = [json.loads(line)["line"] for line in rejects.read_bytes().splitlines()]
    assert len(kept) + len(rejected) == report.counts["records"]
    assert len(set(rejected)) == len(rejected)
    numbered = {i for i, raw in enumerate(content.split(b"\n"), 1) if raw.strip(b" \t\r\x0b\x0c")}
    assert set(rejected) <= numbered


@PROFILE
@given(st.lists(lines, min_size=1, max_size=30))
def test_every_line_lands_in_exactly_one_of_clean_and_rejects(tmp_path, records):
    check_partition(tmp_path, b"\n".join(records) + b"\n")


@PROFILE
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_crash_validate(tmp_path, content):
    check_partition(tmp_path, content)


@PROFILE
@given(st.lists(st.binary(max_size=120), max_size=20))
def test_the_reader_turns_any_line_into_a_record_or_findings(chunks):
    import io

    for record in iter_records(io.BytesIO(b"\n".join(chunks))):
        has_error = any(f.severity == "error" for f in record.findings)
        assert (record.pair is None) == has_error and record.line >= 1


@PROFILE
@given(st.integers(min_value=2**64, max_value=2**200))
def test_large_integers_survive_byte_exact(tmp_path, big):
    line = GOOD_LINES[0][:-1] + b', "score": ' + str(big).encode() + b"}"
    source = tmp_path / "big.jsonl"
    source.write_bytes(line + b"\n")
    rejects, clean = tmp_path / "rejects.jsonl", tmp_path / "clean.jsonl"
    validate_file(
        source, ValidationConfig(fix=True, validators=["length"]), out_clean=str(clean), out_rejects=str(rejects)
    )
    assert json.loads(clean.read_bytes())["score"] == big  # --fix rewrites the record: the integer stays exact
