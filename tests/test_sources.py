"""The data-source layer: every input kind streamed with its positions, through `validate` too."""

import csv
import gzip
import json
import os
import subprocess
import sys
import textwrap
from dataclasses import replace

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard
from conftest import ROOT, cli, cli_json, mglkit

from mglkit import ValidationConfig, load_pairs
from mglkit.errors import ConfigError, MglkitError, UnusableInputError
from mglkit.sources import SourceSpec, iter_pairs, open_data, parse_columns
from mglkit.validation import validate_file

BUNDLED = ROOT / "data" / "mgl_history_grpo.jsonl"
FIELDS = ("prompt", "chosen", "rejected", "id")
CONFIG = ValidationConfig(validators=["length", "cyrillic", "hygiene", "differentiation", "duplicates", "size"])


def mglkit_json(*args, env=None):
    """The CLI in a subprocess (a fresh environment: offline settings, a shadowed library), --json."""
    result = mglkit("validate", "--json", *args, env=env)
    assert b"Traceback" not in result.stderr, result.stderr.decode()
    return result.returncode, json.loads(result.stdout)


def hint(report: dict, finding: dict) -> str:
    """A finding's hint: schema 2 keeps it once, in its rule's table."""
    return report["rules"][finding["rule"]]["hints"][finding["hint"]]


@pytest.fixture(scope="module")
def pairs():
    """Twelve valid pairs of the bundled data, as plain dicts with one column order."""
    records = [json.loads(line) for line in BUNDLED.read_text(encoding="utf-8").splitlines()[:12]]
    return [{k: r[k] for k in FIELDS} for r in records]


def with_bad_row(pairs, at=4):
    """The pairs with row `at` (1-based) holding no 'chosen' text."""
    rows = [dict(p) for p in pairs]
    rows[at - 1]["chosen"] = None
    return rows


def write_jsonl(path, rows, opener=open):
    with opener(path, "wb") as out:
        for row in rows:
            out.write((json.dumps(row, ensure_ascii=False) + "\n").encode())
    return path


def write_zst(path, rows):
    with path.open("wb") as raw, zstandard.ZstdCompressor().stream_writer(raw) as out:
        for row in rows:
            out.write((json.dumps(row, ensure_ascii=False) + "\n").encode())
    return path


def write_csv(path, rows, delimiter=",", encoding="utf-8"):
    with path.open("w", encoding=encoding, newline="") as out:
        writer = csv.writer(out, delimiter=delimiter)
        writer.writerow(rows[0].keys())
        for row in rows:
            # a missing cell where the text is missing: the row is short
            writer.writerow([v for v in row.values() if v is not None])
    return path


def write_parquet(path, rows, **options):
    pq.write_table(pa.Table.from_pylist(rows), path, **options)
    return path


def write_saved(path, rows):
    import datasets

    datasets.Dataset.from_list(rows).save_to_disk(str(path))
    return path


def write_folder(path, rows):
    path.mkdir()
    write_parquet(path / "a.parquet", rows[:6])
    write_csv(path / "b.csv", rows[6:])
    (path / "README.md").write_text("not data\n")
    return path


def write_hub_repo(path, rows):
    """A folder laid out as a Hub dataset repository: data files per split, configs in the README."""
    (path / "data").mkdir(parents=True)
    write_parquet(path / "data" / "train-00000-of-00001.parquet", rows)
    write_parquet(path / "data" / "test-00000-of-00001.parquet", rows[:2])
    (path / "README.md").write_text(
        textwrap.dedent("""\
        ---
        configs:
        - config_name: pairs
          data_files:
          - split: train
            path: data/train-*
          - split: test
            path: data/test-*
        ---
        # Pairs
        """)
    )
    return path


# kind -> (file name, writer, where the bad 4th row is: line, row, file inside the source)
KINDS = {
    "jsonl": ("p.jsonl", write_jsonl, 4, None),
    "jsonl.gz": ("p.jsonl.gz", lambda p, r: write_jsonl(p, r, gzip.open), 4, None),
    "jsonl.zst": ("p.jsonl.zst", write_zst, 4, None),
    "parquet": ("p.parquet", write_parquet, None, None),
    "csv": ("p.csv", write_csv, 5, None),
    "tsv": ("p.tsv", lambda p, r: write_csv(p, r, "\t"), 5, None),
    "datasets": ("saved", write_saved, None, None),
    "folder": ("folder", write_folder, None, "a.parquet"),
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_reports_its_bad_row(kind, pairs, tmp_path):
    name, write, line, inner = KINDS[kind]
    source = write(tmp_path / name, with_bad_row(pairs))
    report = validate_file(source, CONFIG)
    assert report.verdict == "fail" and report.stats.records == 12 and report.stats.valid == 11
    (bad,) = [f for f in report.findings if f.severity == "error"]
    assert (bad.rule, bad.row, bad.line) == ("format", 4, line)
    assert bad.file == (os.path.join(str(source), inner) if inner else str(source))
    if kind not in ("csv", "tsv", "folder"):
        assert bad.field == "chosen"
    assert bad.to_dict()["row"] == 4


def test_hub_layout_through_load_dataset(pairs, tmp_path):
    """hf: goes through datasets.load_dataset(streaming=True), which reads a local repository
    folder exactly as it reads a Hub one: configs and splits from the README."""
    repo = write_hub_repo(tmp_path / "repo", with_bad_row(pairs, at=2))
    report = validate_file(f"hf:{repo}", replace(CONFIG, subset="pairs", split="train"))
    assert report.file == f"hf:{repo}" and report.stats.records == 12
    (bad,) = [f for f in report.findings if f.severity == "error"]
    assert (bad.row, bad.line, bad.field) == (2, None, "chosen")
    test = validate_file(f"hf:{repo}", ValidationConfig(min_pairs=1, split="test"))
    assert test.stats.records == 2 and test.verdict != "unusable"
    with pytest.raises(MglkitError, match=r"repo, row 2, field 'chosen': field 'chosen' is null"):
        list(load_pairs(f"hf:{repo}", split="test", subset="pairs"))
    with pytest.raises(UnusableInputError, match="has splits test, train|has splits train, test") as error:
        open_data(SourceSpec(f"hf:{repo}"))
    assert "--split" in error.value.hint
    with pytest.raises(UnusableInputError, match="nope"):
        open_data(SourceSpec(f"hf:{repo}", subset="nope"))


def test_uncached_hub_id_offline_is_unusable(tmp_path):
    env = {"HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path)}
    code, report = mglkit_json("hf:mglkit-tests/no-such-dataset", env=env)
    assert code == 2 and report["verdict"] == "unusable"
    (finding,) = report["findings"]
    assert "HF_DATASETS_OFFLINE" in finding["message"] and "not in the local dataset cache" in finding["message"]
    assert "unset HF_DATASETS_OFFLINE" in hint(report, finding)


def test_without_the_prefix_a_name_is_never_a_hub_id(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UnusableInputError, match="no such file"):
        open_data("facebook/belebele")


def test_saved_dataset_dict_needs_a_split(pairs, tmp_path):
    import datasets

    whole = datasets.Dataset.from_list(pairs)
    datasets.DatasetDict({"train": whole, "test": whole.select(range(3))}).save_to_disk(str(tmp_path / "dd"))
    with pytest.raises(UnusableInputError, match="choose one|has splits"):
        open_data(str(tmp_path / "dd"))
    with open_data(SourceSpec(str(tmp_path / "dd"), split="test")) as source:
        assert [r.row for r in source.rows()] == [1, 2, 3]


@pytest.mark.parametrize("kind", ["jsonl.gz", "jsonl.zst"])
def test_damaged_compressed_jsonl_is_unusable(kind, pairs, tmp_path):
    name, write, _, _ = KINDS[kind]
    whole = write(tmp_path / name, pairs).read_bytes()
    (tmp_path / name).write_bytes(whole[: len(whole) // 2])  # cut off mid-stream
    report = validate_file(tmp_path / name, CONFIG)
    assert report.verdict == "unusable" and "cannot read" in report.findings[-1].message


def test_column_mapping(pairs, tmp_path):
    renamed = [{"question": p["prompt"], "good": p["chosen"], "bad": p["rejected"], "id": p["id"]} for p in pairs]
    mapping = "prompt=question,chosen=good,rejected=bad"
    for path in (write_csv(tmp_path / "r.csv", renamed), write_jsonl(tmp_path / "r.jsonl", renamed)):
        report = validate_file(path, replace(CONFIG, columns=mapping))
        assert report.stats.valid == 12, [f.message for f in report.findings]
        assert not [f for f in report.findings if f.rule == "format"]  # no "unknown field 'question'"
        assert [p.chosen for p in load_pairs(path, columns=mapping)] == [p["chosen"] for p in pairs]
    unmapped = validate_file(tmp_path / "r.csv", CONFIG)
    assert unmapped.stats.valid == 0 and unmapped.verdict == "unusable"


def test_column_mapping_mistakes(pairs, tmp_path):
    path = write_parquet(tmp_path / "p.parquet", pairs)
    with pytest.raises(ConfigError, match="not FIELD=COLUMN"):
        parse_columns("prompt:question")
    with pytest.raises(ConfigError, match="'question' is not a record field"):
        parse_columns("question=prompt", ("prompt", "chosen", "rejected"))
    with pytest.raises(ConfigError, match="--columns: 'question' is not a record field"):
        ValidationConfig(columns="question=prompt")
    missing = validate_file(path, replace(CONFIG, columns="prompt=question"))
    assert missing.verdict == "unusable" and "no column 'question'" in missing.findings[0].message
    clash = validate_file(path, replace(CONFIG, columns="chosen=rejected,rejected=id"))
    assert clash.verdict == "unusable" and "has a column 'chosen'" in clash.findings[0].message


def test_csv_quoted_line_breaks_give_line_and_row(pairs, tmp_path):
    rows = [dict(p) for p in pairs]
    rows[1]["chosen"] = rows[1]["chosen"].replace(". ", ".\n", 2)  # row 2 spans three lines
    rows[5]["prompt"] = "Ямар?"  # row 6: too short
    path = write_csv(tmp_path / "q.csv", rows)
    report = validate_file(path, CONFIG)
    short = [f for f in report.findings if f.rule == "length" and f.field == "prompt"]
    assert [(f.line, f.row) for f in short] == [(9, 6)]  # header + row 2's two extra lines
    assert report.stats.records == 12


def test_non_utf8_csv_is_unusable(pairs, tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes(b"prompt,chosen,rejected\n" + "Чингис хаан,хариулт,буруу\n".encode("cp1251"))
    code, report = cli_json("validate", path)
    assert code == 2 and report["verdict"] == "unusable"
    (finding,) = report["findings"]
    assert "line 2: not UTF-8" in finding["message"] and "export it as UTF-8" in hint(report, finding)


def test_outputs_hold_every_record_once(pairs, tmp_path):
    source = write_parquet(tmp_path / "p.parquet", with_bad_row(pairs, at=3))
    clean, rejects = tmp_path / "clean.jsonl", tmp_path / "rejects.jsonl"
    report = validate_file(source, CONFIG, out_clean=str(clean), out_rejects=str(rejects))
    kept = [json.loads(line) for line in clean.read_text().splitlines()]
    (rejected,) = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert report.stats.valid == len(kept) == 11
    assert rejected["row"] == 3 and rejected["line"] is None and rejected["record"]["chosen"] is None
    assert [r["id"] for r in kept] == [p["id"] for i, p in enumerate(pairs) if i != 2]


def test_csv_rejects_keep_the_row_by_column(pairs, tmp_path):
    rows = [dict(p) for p in pairs]
    rows[1]["chosen"] = ""
    source = write_csv(tmp_path / "p.csv", with_bad_row(rows, at=5))
    rejects = tmp_path / "rejects.jsonl"
    validate_file(source, CONFIG, out_rejects=str(rejects))
    empty, short = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert (empty["row"], empty["line"], empty["record"]) == (2, 3, {**rows[1], "chosen": ""})
    assert (short["row"], short["line"]) == (5, 6)
    assert short["record"] == [rows[4][k] for k in ("prompt", "rejected", "id")]  # too few cells: kept as a list


@pytest.mark.parametrize("kind", ["parquet", "csv", "tsv", "jsonl.gz", "jsonl.zst"])
def test_clean_output_in_the_input_format(kind, pairs, tmp_path):
    name, write, _, _ = KINDS[kind]
    source = write(tmp_path / name, with_bad_row(pairs, at=5))
    clean = tmp_path / f"clean-{name}"
    validate_file(source, replace(CONFIG, out_format="input"), out_clean=str(clean))
    with open_data(str(clean)) as out:
        rows = [r.obj for r in out.rows()]
    assert rows == [p for i, p in enumerate(pairs) if i != 4]
    if kind == "parquet":
        assert pq.read_schema(clean).names == list(FIELDS)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_input_format_needs_one_file(pairs, tmp_path):
    folder = write_folder(tmp_path / "folder", pairs)
    with pytest.raises(ConfigError, match="needs one input file"):
        validate_file(folder, replace(CONFIG, out_format="input"), out_clean=str(tmp_path / "c"))


def test_fix_writes_repaired_text_in_the_input_format(pairs, tmp_path):
    rows = [dict(p) for p in pairs]
    rows[0]["prompt"] = rows[0]["prompt"].replace(" ", " \u200b", 1)  # an invisible character
    source = write_parquet(tmp_path / "p.parquet", rows)
    clean = tmp_path / "clean.parquet"
    report = validate_file(source, ValidationConfig(fix=True, out_format="input"), out_clean=str(clean))
    assert any(f.rule == "fix" and f.row == 1 for f in report.findings)
    assert pq.read_table(clean).column("prompt")[0].as_py() == pairs[0]["prompt"]


def test_jobs_give_the_same_report_for_parquet(pairs, tmp_path):
    rows = [dict(p, id=f"{p['id']}-{i}", prompt=f"{p['prompt']} ({i})") for i in range(100) for p in pairs]
    rows[700]["rejected"] = None
    source = write_parquet(tmp_path / "many.parquet", rows, row_group_size=256)
    one, two = (validate_file(source, CONFIG, jobs=jobs) for jobs in (1, 2))
    assert [f.to_dict() for f in one.findings] == [f.to_dict() for f in two.findings]
    assert one.stats == two.stats and one.stats.records == 1200


def test_iter_pairs_names_the_bad_row(pairs, tmp_path):
    source = write_parquet(tmp_path / "p.parquet", with_bad_row(pairs, at=7))
    with pytest.raises(MglkitError, match=r"p\.parquet, row 7, field 'chosen': field 'chosen' is null"):
        list(iter_pairs(str(source)))
    assert [p.row for p in iter_pairs(str(write_parquet(tmp_path / "ok.parquet", pairs)))] == list(range(1, 13))


def test_digest_is_the_files_sha256(pairs, tmp_path):
    import hashlib

    path = write_parquet(tmp_path / "p.parquet", pairs)
    with open_data(str(path)) as source:
        assert source.digest() == hashlib.sha256(path.read_bytes()).hexdigest()
    with open_data(str(write_folder(tmp_path / "f", pairs))) as folder:
        files = [tmp_path / "f" / "a.parquet", tmp_path / "f" / "b.csv"]
        assert folder.files == files
        assert folder.digest() == hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()


def test_bundled_names_and_stdin_still_work():
    with open_data("data/mgl_history_grpo.jsonl") as source:
        assert source.kind == "jsonl" and sum(1 for _ in source.rows()) == 210
    result = mglkit("validate", "--json", "-", input=BUNDLED.read_bytes(), env={"MGLKIT_LOAD_PLUGINS": "validators"})
    assert result.returncode == 0 and json.loads(result.stdout)["counts"]["records"] == 210


def test_parquet_without_pyarrow_is_unusable_with_the_extra_hint(pairs, tmp_path):
    """A pyarrow that cannot be imported, as in a core install."""
    shadow = tmp_path / "shadow" / "pyarrow"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('No module named pyarrow')\n")
    source = write_parquet(tmp_path / "p.parquet", pairs)
    code, report = mglkit_json(source, env={"PYTHONPATH": str(shadow.parent)})
    (finding,) = report["findings"]
    assert code == 2 and "reading Parquet needs pyarrow" in finding["message"]
    assert hint(report, finding) == "pip install 'mglkit[data]'"


def test_the_core_imports_no_data_library():
    import subprocess

    code = "import sys, mglkit.cli, mglkit.validation, mglkit.sources; print(sorted(sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert not {"'pyarrow'", "'datasets'", "'zstandard'"} & set(loaded.strip("[]\n").split(", "))


# The options of `mglkit validate`, from flags and config files alike -------------------------------


def renamed(pairs):
    return [{"question": p["prompt"], "good": p["chosen"], "bad": p["rejected"], "id": p["id"]} for p in pairs]


MAPPING = "prompt=question,chosen=good,rejected=bad"


def test_columns_from_flags_and_config_files_agree(pairs, tmp_path, monkeypatch):
    path = write_parquet(tmp_path / "r.parquet", renamed(with_bad_row(pairs, at=3)))
    flags = ("--validators", "length,cyrillic,hygiene")
    code, report = cli_json("validate", path, "--columns", MAPPING, *flags)
    assert code == 1 and report["counts"] == {"records": 12, "valid": 11, "errors": 1, "warnings": 0}
    (bad,) = [f for f in report["findings"] if f["severity"] == "error"]
    assert (bad["row"], bad["line"], bad["field"], bad["file"]) == (3, None, "chosen", str(path))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mglkit.toml").write_text(f'[validate]\ncolumns = "{MAPPING}"\n')
    assert cli_json("validate", path, *flags) == (code, report)
    (tmp_path / "mglkit.toml").write_text('[validate]\ncolumns = "question=prompt"\n')
    result = cli("validate", path)
    assert result.returncode == 2
    assert b"mglkit.toml [validate], key 'columns': 'question' is not a record field" in result.stderr
    result = cli("validate", path, "--columns", "prompt")
    assert result.returncode == 2 and b"'prompt' is not FIELD=COLUMN" in result.stderr


def test_hf_names_split_and_subset_on_the_command_line(pairs, tmp_path):
    repo = write_hub_repo(tmp_path / "repo", with_bad_row(pairs, at=2))
    code, report = cli_json("validate", f"hf:{repo}", "--subset", "pairs", "--split", "train")
    assert code == 1 and report["file"] == f"hf:{repo}" and report["counts"]["records"] == 12
    code, report = cli_json("validate", f"hf:{repo}")
    assert code == 2 and "--split" in hint(report, report["findings"][0])


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_clean_output_in_the_input_format_from_the_cli(kind, pairs, tmp_path):
    name, write, _, _ = KINDS[kind]
    source = write(tmp_path / name, with_bad_row(pairs, at=2))
    clean, rejects = tmp_path / f"clean-{name}", tmp_path / "rejects.jsonl"
    before = source.read_bytes()
    code, report = cli_json(
        "validate", source, "--out-clean", clean, "--out-rejects", rejects, "--out-format", "input", "--min-pairs", "5"
    )
    assert code == 1 and report["counts"]["valid"] == 11
    with open_data(str(clean)) as out:
        assert [r.obj["id"] for r in out.rows()] == [p["id"] for i, p in enumerate(pairs) if i != 1]
    assert [json.loads(line)["row"] for line in rejects.read_text().splitlines()] == [2]
    link = tmp_path / f"link-{name}"
    link.symlink_to(source)
    for target in (source, link):  # the input, by its name or another: never overwritten
        result = cli("validate", source, "--out-clean", target, "--out-format", "input")
        assert result.returncode == 2 and b"is the input" in result.stderr
    assert source.read_bytes() == before


def test_help_imports_no_data_library():
    """`mglkit --help` and `mglkit validate --help` start without pyarrow, datasets or zstandard."""
    for args in (["--help"], ["validate", "--help"]):
        result = subprocess.run([sys.executable, "-X", "importtime", "-m", "mglkit", *args], capture_output=True)
        assert result.returncode == 0
        imported = {line.split("|")[-1].strip().split(".")[0] for line in result.stderr.decode().splitlines()}
        assert "mglkit" in imported and not imported & {"pyarrow", "datasets", "zstandard"}, args


# train and eval read through the layer too -----------------------------------------------------


def test_training_data_from_any_source(pairs, tmp_path):
    import mglkit

    path = write_parquet(tmp_path / "r.parquet", renamed(pairs))
    found, summary = mglkit.validated_pairs(SourceSpec(str(path), columns=parse_columns(MAPPING)))
    assert [p.chosen for p in found] == [p["chosen"] for p in pairs] and summary["counts"]["records"] == 12
    bad = write_parquet(tmp_path / "bad.parquet", renamed(with_bad_row(pairs, at=5)))
    with pytest.raises(MglkitError, match="row 5: format: field 'chosen' is null") as error:
        mglkit.validated_pairs(SourceSpec(str(bad), columns=parse_columns(MAPPING)))
    assert f"mglkit validate {bad} --columns {MAPPING}" in error.value.hint


def test_a_run_records_the_files_digest_or_the_hub_name(pairs, tmp_path):
    import hashlib

    from mglkit.sources import provenance

    path = write_csv(tmp_path / "p.csv", pairs)
    assert provenance(SourceSpec(str(path))) == {
        "dataset_path": str(path),
        "dataset_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
    }
    repo = write_hub_repo(tmp_path / "repo", pairs)
    assert provenance(SourceSpec(f"hf:{repo}", "train", "pairs")) == {
        "dataset_path": f"hf:{repo}",
        "dataset_sha256": None,
        "dataset_split": "train",
        "dataset_subset": "pairs",
    }


@pytest.mark.slow  # imports TRL
def test_grpo_prompts_from_a_facts_parquet(tmp_path):
    from mglkit_trl.grpo import prompt_records

    from mglkit import TrainConfig, read_jsonl

    facts = [record for _, record in read_jsonl(ROOT / "data" / "facts_train.jsonl")][:5]
    path = write_parquet(tmp_path / "facts.parquet", facts)
    records = prompt_records(SourceSpec(str(path)), TrainConfig())
    assert [r["question"] for r in records] == [f["question"] for f in facts]
    assert records[0]["aliases"] == facts[0]["aliases"]
    broken = write_parquet(tmp_path / "broken.parquet", [facts[0], {**facts[1], "aliases": None}])
    with pytest.raises(UnusableInputError, match=r"broken\.parquet, row 2, field 'aliases'"):
        prompt_records(SourceSpec(str(broken)), TrainConfig())


def test_eval_train_data_and_contamination_read_any_source(pairs, tmp_path):
    from mglkit.contamination import training_texts
    from mglkit.evaluation import contamination
    from mglkit.types import Suite

    path = write_parquet(tmp_path / "train.parquet", pairs)
    texts = training_texts(path)
    assert [t.question for t in texts] == [p["prompt"] for p in pairs] and texts[0].where == f"{path}:1"
    fact = {"id": "f1", "question": pairs[2]["prompt"], "choices": ["а", "б"], "answer": 0, "aliases": []}
    (warning,), (labels,) = contamination([Suite("s", tmp_path, facts=[fact])], [str(path)])
    assert warning.startswith(f"f1 is in the training data: {path}:3 ")  # row 3 of the Parquet file
    assert labels.by_id == {"f1": "seen"}


@pytest.mark.slow
def test_a_run_on_a_hub_dataset_records_its_name_subset_and_split(pairs, tmp_path):
    rows = renamed([dict(p, id=f"{p['id']}-{i}", prompt=f"{p['prompt']} ({i})") for i in range(2) for p in pairs])
    repo = write_hub_repo(tmp_path / "repo", rows)
    run = tmp_path / "run"
    result = mglkit(
        "train", "--trainer", "dpo", "--base", "mglkit:tiny", "--dataset", f"hf:{repo}", "--subset", "pairs",
        "--split", "train", "--columns", MAPPING, "--batch-size", "4", "--grad-accum", "1", "--max-steps", "2",
        "--max-length", "128", "--samples", "1", "--max-new-tokens", "4", "--no-plots", "--output", run,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    args = json.loads((run / "training_args.json").read_text())
    assert (args["dataset_path"], args["dataset_subset"], args["dataset_split"]) == (f"hf:{repo}", "pairs", "train")
    assert args["dataset_sha256"] is None and args["dataset_columns"] == parse_columns(MAPPING)
    card = (run / "README.md").read_text()
    assert f"- Data: `hf:{repo}` (subset `pairs`, split `train`, columns `prompt=question`" in card
    stats = json.loads((run / "training_logs" / "training_stats.json").read_text())
    assert stats["total_samples"] == 24 and stats["validation"]["counts"]["records"] == 24
