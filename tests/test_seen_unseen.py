"""Seen / unseen in every eval report: labels from the suite's manifest or from the detector on the
user's training data, metrics split by item id (generic over evaluators), paired deltas per split, and
the split in the JSON, the rich table, the Markdown table and the HTML report. Stub scorers: no model."""

import io
import json

import pytest
from conftest import ROOT
from test_eval import StubScorer, evaluator

from mglkit import EvalContext, EvalResult, Pair, Suite
from mglkit.contamination import SPLITS_FILE, items_from_suite, load_splits
from mglkit.errors import UnusableInputError
from mglkit.evaluation import EvalReport, _deltas, contamination
from mglkit.seen import Labels, suite_labels, with_splits
from mglkit.suites import load_suite

SUITE = ROOT / "benchmarks"
FACTS = [
    {"id": f"f{i}", "period": "p", "question": f"q{i}", "choices": [f"right{i}", f"wrong{i}"], "answer": 0,
     "aliases": [f"right{i}"]}
    for i in range(4)
]  # fmt: skip
LABELS = Labels({"f0": "seen", "f1": "unseen", "f2": "unseen", "f3": "seen"}, "a test")


def facts_result(lls, column="base"):
    scorer = StubScorer(column, lls)
    return evaluator("facts").evaluate(scorer, Suite("s", SUITE, facts=FACTS), EvalContext(reference=None))


# f0 and f2 right for the base; all four right for the adapter
BASE = {"right0": -1.0, "wrong0": -2.0, "right1": -3.0, "wrong1": -1.0, "right2": -1.0, "wrong2": -2.0,
        "right3": -3.0, "wrong3": -1.0}  # fmt: skip
ADAPTER = {f"right{i}": -1.0 for i in range(4)} | {f"wrong{i}": -2.0 for i in range(4)}


def test_each_item_aligned_metric_is_also_reported_on_unseen_and_seen_items():
    result = with_splits(facts_result(BASE), LABELS)
    assert list(result.metrics)[:3] == ["acc", "acc[unseen]", "acc[seen]"]
    assert result.per_item["acc[unseen]"] == [0.0, 1.0] and result.per_item["acc[seen]"] == [1.0, 0.0]
    assert result.metrics["acc[unseen]"].n == 2 and result.metrics["acc[unseen]"].value == 0.5
    assert {"acc_norm[seen]", "generation_match[unseen]"} <= set(result.metrics)
    assert result.groups == facts_result(BASE).groups  # groups are the evaluator's own


def test_no_split_without_labels_or_when_items_are_not_all_labelled():
    plain = facts_result(BASE)
    assert with_splits(plain, None) is plain
    assert with_splits(plain, Labels({"f0": "seen"}, "partial")) is plain
    # fluency-shaped results: items without ids (generations), values not one per item
    odd = EvalResult.from_values("x", "base", {"m": [1.0, 0.0, 1.0]}, [{"id": "f0"}, {"generation": "..."}])
    assert with_splits(odd, LABELS) is odd
    # a metric whose values do not follow the items stays whole; an empty split is left out
    mixed = EvalResult.from_values("x", "base", {"m": [1.0, 0.0], "other": [0.5]}, [{"id": "f1"}, {"id": "f2"}])
    split = with_splits(mixed, LABELS)
    assert list(split.metrics) == ["m", "m[unseen]", "other"] and split.per_item["other"] == [0.5]


def test_paired_deltas_are_computed_on_each_split():
    results = {"facts": {"base": with_splits(facts_result(BASE), LABELS),
                         "a": with_splits(facts_result(ADAPTER, "a"), LABELS)}}  # fmt: skip
    deltas = _deltas(results, seed=0)["facts"]["a"]
    assert deltas["acc[unseen]"].value == 0.5 and deltas["acc[seen]"].value == 0.5 and deltas["acc"].value == 0.5


def report_with_splits():
    results = {"facts": {"base": with_splits(facts_result(BASE), LABELS),
                         "a": with_splits(facts_result(ADAPTER, "a"), LABELS)}}  # fmt: skip
    return EvalReport("s", ["base", "a"], results, _deltas(results, 0), {"facts": 0.1}, splits={"s": LABELS.to_dict()})


def test_the_split_is_in_the_json_the_rich_table_and_the_markdown():
    from rich.console import Console

    report = report_with_splits()
    data = json.loads(json.dumps(report.to_dict()))
    assert data["splits"] == {"s": {"source": "a test", "counts": {"unseen": 2, "seen": 2}}}
    adapter = data["evaluators"]["facts"]["a"]
    assert adapter["metrics"]["acc[unseen]"]["n"] == 2 and "acc[seen]" in adapter["delta_vs_base"]
    markdown = report.markdown()
    assert "| facts | acc[unseen] | 0.500 [" in markdown and "| facts | acc[seen] |" in markdown
    assert "`metric[unseen]`: the 2 items of s the training data does not state" in markdown
    out = Console(file=io.StringIO(), width=200, highlight=False)
    from mglkit.report import print_eval

    print_eval(report, out)
    text = out.file.getvalue()
    assert "acc[unseen]" in text and "acc_norm[seen]" in text  # brackets are not taken for markup
    assert "metric[unseen] on the 2 items" in text and "labels from a test" in text


def test_the_html_report_draws_the_split_rows():
    from mglkit.html_report import render_report

    html = render_report([], [report_with_splits().to_dict()])  # the suite as eval JSON gives it: name and files
    assert "acc[unseen]" in html and "acc[seen]" in html and "suite <code>s</code>" in html
    assert "on the 2 items the training data does not state" in html and "labels from <code>a test</code>" in html


def test_the_bundled_suite_takes_its_labels_from_its_manifest():
    suite = load_suite("benchmarks")
    labels = suite_labels(suite)
    committed = json.loads((SUITE / SPLITS_FILE).read_text(encoding="utf-8"))["counts"]
    assert labels.source == f"benchmarks/{SPLITS_FILE}"
    assert labels.to_dict()["counts"] == {s: sum(k[s] for k in committed.values()) for s in ("unseen", "seen")}
    few = suite_labels(suite.limited(3))
    assert len(few.by_id) == 9  # 3 facts, 3 pairs, 3 fluent passages: counts follow --limit
    assert few.by_id == {i: load_splits(SUITE)[i] for i in few.by_id}


def test_a_suite_without_a_manifest_has_no_split(tmp_path):
    (tmp_path / "facts.jsonl").write_text((SUITE / "facts.jsonl").read_text(encoding="utf-8"), encoding="utf-8")
    assert suite_labels(load_suite(str(tmp_path))) is None
    warnings, labels = contamination([load_suite(str(tmp_path))], [])
    assert warnings == [] and labels == [None]


def test_pairs_without_an_id_are_named_alike_by_the_evaluator_and_the_detector():
    pairs = [Pair("Занабазар хэзээ төрсөн бэ?", "1635 онд.", "1723 онд.", 1), Pair("Хэн бэ?", "а", "б", 2, {"id": "x"})]
    suite = Suite("s", SUITE, pairs=pairs)
    assert suite.pair_ids() == ["pair-1", "x"]
    result = evaluator("preference").evaluate(StubScorer("m", {"1635 онд.": -1, "1723 онд.": -2, "а": -1, "б": -2}),
                                              suite, EvalContext(reference=None))  # fmt: skip
    assert [item["id"] for item in result.items] == [item.id for item in items_from_suite(suite)] == ["pair-1", "x"]


def test_train_data_gives_one_warning_per_item_and_the_split_for_that_data(tmp_path):
    train = (ROOT / "data" / "mgl_history_grpo.jsonl").read_text(encoding="utf-8").splitlines()
    leaky = tmp_path / "leaky"
    leaky.mkdir()
    records = [{k: v for k, v in json.loads(line).items() if k != "id"} for line in train[:3]]
    clean = {"prompt": "Монголын анхны сансрын нисгэгч хэн бэ?", "chosen": "Жүгдэрдэмидийн Гүррагчаа 1981 онд.",
             "rejected": "Мэдэхгүй."}  # fmt: skip
    (leaky / "pairs.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records + [clean]))
    suite = load_suite(str(leaky))
    warnings, (labels,) = contamination([suite], [str(ROOT / "data" / "mgl_history_grpo.jsonl")])
    assert len(warnings) == 3 and all(" is in the training data: " in w and "mgl_history_grpo.jsonl:" in w
                                      for w in warnings)  # fmt: skip
    assert warnings[0].startswith(f"{suite.pair_ids()[0]} is in the training data: ")
    assert labels.by_id == {"pair-1": "seen", "pair-2": "seen", "pair-3": "seen", "pair-4": "unseen"}
    assert labels.source.startswith("--train-data ")
    # the bundled suite against the user's data: the detector's labels replace the manifest's
    _, (bundled,) = contamination([load_suite("benchmarks")], [str(leaky / "pairs.jsonl")])
    assert bundled.source != suite_labels(load_suite("benchmarks")).source
    with pytest.raises(UnusableInputError, match="no such file"):
        contamination([suite], [str(tmp_path / "missing.jsonl")])


def test_the_runs_listing_takes_the_unseen_number_as_the_headline():
    from mglkit.runlist import _headlines

    evaluators = report_with_splits().to_dict()["evaluators"]
    assert _headlines({"benchmarks": {"evaluators": evaluators}}) == {"facts/acc[unseen]": 1.0}
