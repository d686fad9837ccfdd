"""`mglkit contamination SUITE --train-data FILE...`: exit 0 when no item is in the training data, 1 with
each contaminated item and its strongest evidence, 2 on unusable input; JSON and the terminal report."""

import json
import os

import pytest
from conftest import ROOT, cli, cli_json

PAIRS = ROOT / "data" / "mgl_history_grpo.jsonl"
GRPO_FACTS = ROOT / "data" / "facts_train.jsonl"


def line_of(path, record_id):
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if json.loads(line).get("id") == record_id:
            return number
    raise AssertionError(record_id)


def test_contaminated_items_are_listed_with_their_strongest_match_and_exit_1():
    code, report = cli_json("contamination", "benchmarks", "--train-data", PAIRS)
    assert code == 1
    assert report["suite"] == "benchmarks" and report["training"] == [str(PAIRS)]
    assert report["checked"] == {"facts": 172, "pairs": 60, "fluency": 30}  # retrieval is not checked
    by_id = {item["id"]: item for item in report["items"]}
    assert report["contaminated"]["facts"] == sum(i["kind"] == "facts" for i in report["items"]) > 0
    zanabazar = by_id["facts-buddhism-08"]  # the audit's example: the year 1723 in a training answer
    assert zanabazar["training_id"] == "buddhism-14" and zanabazar["signal"] == "answer"
    assert zanabazar["where"] == f"{PAIRS}:{line_of(PAIRS, 'buddhism-14')}"
    assert "«1723»" in zanabazar["reason"] and "1723" in zanabazar["snippet"] and 0.45 <= zanabazar["score"] <= 1
    assert by_id["pairs-culture-01"]["training_id"] == "yuan-05"
    order = [item["id"] for item in report["items"]]
    assert order.index("facts-buddhism-08") < order.index("pairs-culture-01")  # the suite's order


def test_no_contamination_exits_0_and_several_files_are_read():
    code, report = cli_json("contamination", "benchmarks", "--train-data", GRPO_FACTS)
    assert code == 0 and report["items"] == [] and report["contaminated"] == {"facts": 0, "pairs": 0, "fluency": 0}
    code, both = cli_json("contamination", "benchmarks", "--train-data", GRPO_FACTS, "--train-data", PAIRS)
    assert code == 1 and both["training"] == [str(GRPO_FACTS), str(PAIRS)]
    assert len(both["items"]) == len(cli_json("contamination", "benchmarks", "--train-data", PAIRS)[1]["items"])


def test_the_terminal_report_names_item_file_line_evidence_and_counts():
    result = cli("contamination", "benchmarks", "--train-data", PAIRS)
    text = result.stdout.decode()
    assert result.returncode == 1
    squeezed = "".join(text.split())  # however the terminal's width wrapped it
    assert f"facts-buddhism-08{PAIRS}:{line_of(PAIRS, 'buddhism-14')}(answer" in squeezed
    assert "states«1723»aboutthesamething:«" in squeezed
    assert "items in the training data (facts " in text and "pairs " in text
    clean = cli("contamination", "benchmarks", "--train-data", GRPO_FACTS)
    assert clean.returncode == 0 and "no item in the training data" in clean.stdout.decode()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), b"give the training data: --train-data FILE"),
        (("--train-data", "missing.jsonl"), b"missing.jsonl: no such file"),
        (("--train-data", "BAD"), b"bad.jsonl, line 2: not valid JSON"),
        (("--train-data", "FIFOS"), b"z.jsonl: not a regular file"),  # read, it would block forever
    ],
)
def test_unusable_input_exits_2_in_one_line(tmp_path, args, message):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "Монгол"}\n{not json\n', encoding="utf-8")
    fifos = tmp_path / "fifos"
    fifos.mkdir()
    (fifos / "a.jsonl").write_bytes(PAIRS.read_bytes())
    os.mkfifo(fifos / "z.jsonl")
    args = tuple({"BAD": str(bad), "FIFOS": str(fifos)}.get(a, a) for a in args)
    result = cli("contamination", "benchmarks", *args)
    assert result.returncode == 2 and message in result.stderr and b"Traceback" not in result.stderr
    result = cli("contamination", tmp_path / "no-suite", "--train-data", PAIRS)
    assert result.returncode == 2 and b"Traceback" not in result.stderr


def test_a_bundled_training_file_is_found_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, report = cli_json("contamination", "benchmarks", "--train-data", "data/mgl_history_grpo.jsonl")
    assert code == 1 and report["items"][0]["where"].startswith(f"{PAIRS}:")
