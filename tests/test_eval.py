"""`mglkit eval`: evaluators on known-by-construction cases, the command end to end, bad input."""

import json
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT, mglkit

from mglkit import EvalContext as Context
from mglkit import Pair, Suite
from mglkit.mongolian import matches_alias

SUITE = ROOT / "benchmarks"


class StubScorer:
    """Hand-set log-likelihoods by continuation text; generation returns fixed answers."""

    def __init__(self, name, lls, answers=()):
        self.name, self.lls, self.answers = name, lls, list(answers)

    def prompt(self, question):
        return f"Q: {question}\nA:"

    def loglikelihood(self, requests):
        return [(self.lls[cont.strip()], max(1, len(cont.split()))) for _, cont in requests]

    def generate(self, prompts, max_new_tokens):
        return (self.answers + [""] * len(prompts))[: len(prompts)]


def evaluator(name):
    from mglkit.plugins import get_plugin_manager

    return get_plugin_manager().get("evaluator", name)


def test_acc_and_acc_norm_as_lm_evaluation_harness_defines_them():
    facts = [
        {"id": "a", "period": "p1", "question": "q1", "choices": ["аа", "ббббббббб"], "answer": 1, "aliases": ["x"]},
        {"id": "b", "period": "p2", "question": "q2", "choices": ["вв", "гг"], "answer": 0, "aliases": ["1206"]},
    ]
    # item a: the long right choice has the lower total log-likelihood but the higher per character
    scorer = StubScorer("m", {"аа": -3.0, "ббббббббб": -9.0, "вв": -1.0, "гг": -2.0}, ["1206 онд", "мэдэхгүй"])
    result = evaluator("facts").evaluate(scorer, Suite("s", SUITE, facts=facts), Context(reference=None))
    assert result.per_item["acc"] == [0.0, 1.0] and result.metrics["acc"].value == 0.5
    assert result.per_item["acc_norm"] == [1.0, 1.0] and result.metrics["acc_norm"].value == 1.0
    assert result.per_item["generation_match"] == [0.0, 0.0]
    assert set(result.groups["acc by period"]) == {"p1", "p2"}


def test_preference_reward_accuracy_against_the_reference():
    pairs = [Pair("асуулт нэг", "сайн", "муу", 1), Pair("асуулт хоёр", "зөв", "буруу", 2)]
    policy = StubScorer("adapter", {"сайн": -1.0, "муу": -5.0, "зөв": -4.0, "буруу": -3.0})
    reference = StubScorer("base", {"сайн": -2.0, "муу": -2.0, "зөв": -4.0, "буруу": -4.0})
    result = evaluator("preference").evaluate(policy, Suite("s", SUITE, pairs=pairs), Context(reference=reference))
    assert result.per_item["ref_free_accuracy"] == [1.0, 0.0]
    assert result.per_item["reward_margin"] == pytest.approx([0.1 * (1 + 3), 0.1 * (0 - 1)])
    assert result.per_item["reward_accuracy"] == [1.0, 0.0]
    base = evaluator("preference").evaluate(reference, Suite("s", SUITE, pairs=pairs), Context(reference=None))
    assert "reward_accuracy" not in base.metrics  # the base has no reference but itself


@pytest.mark.parametrize("answer", ["1206", "1206 он", "1206 онд", "Их Монгол Улс 1206 онд.", "(1206-д)"])
def test_alias_matches_year_forms(answer):
    assert matches_alias(answer, ["1206"])


@pytest.mark.parametrize(
    ("answer", "aliases", "expected"),
    [
        ("1206 онд байгуулагдсан", ["1206 он"], True),
        ("ЧИНГИС ХААН!", ["Чингис хаан"], True),
        ("Чингис хааны үед", ["Чингис хаан"], True),
        ("12060 онд", ["1206"], False),
        ("1260 онд", ["1206"], False),
        ("Хубилай", ["Чингис"], False),
    ],
)
def test_alias_matching(answer, aliases, expected):
    assert matches_alias(answer, aliases) is expected


def test_every_kind_of_degraded_passage_scores_below_fluent_text_on_tiny(tiny):
    from mglkit.prompts import PromptFormat
    from mglkit.scoring import ModelScorer
    from mglkit.suites import load_suite

    model, tokenizer = tiny
    suite = load_suite("benchmarks")
    suite.pairs = suite.pairs[:2]  # a couple of generations are enough here
    scorer = ModelScorer("tiny", model, tokenizer, PromptFormat(chat_template=True))
    result = evaluator("fluency").evaluate(scorer, suite, Context(reference=None, max_new_tokens=8))
    by_kind = result.groups["score by kind"]
    assert set(by_kind) == {"fluent", "repetition", "russian", "latin", "shuffled"}
    for kind in ("repetition", "russian", "latin", "shuffled"):
        assert by_kind[kind].value < by_kind["fluent"].value, kind
    assert "ranked_correctly" in result.metrics
    # bits per character alone would prefer the looping passages: the combined score is needed
    assert result.groups["bpc by kind"]["repetition"].value < result.groups["bpc by kind"]["fluent"].value


def test_eval_end_to_end_json(quickstart_run, tmp_path):
    items = tmp_path / "items.jsonl"
    result = mglkit("eval", "benchmarks", "--base", "mglkit:tiny", "--adapter", quickstart_run, "--json",
                    "--limit", "6", "--max-new-tokens", "8", "--save-items", items)  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    report = json.loads(result.stdout)
    assert report["columns"] == ["base", quickstart_run.name]
    assert set(report["evaluators"]) == {"preference", "fluency", "facts", "retrieval"}
    for name, columns in report["evaluators"].items():
        assert set(columns) == {"base", quickstart_run.name}, name
        for column in columns.values():
            for score in column["metrics"].values():
                low, high = score["ci95"]
                assert low <= score["value"] <= high
    adapter = report["evaluators"]["preference"][quickstart_run.name]
    assert "reward_accuracy" in adapter["metrics"] and "delta_vs_base" in adapter
    # seen / unseen from the bundled manifest, side by side, with paired deltas; none for retrieval
    assert report["splits"]["benchmarks"]["source"] == "benchmarks/splits.json"
    facts = report["evaluators"]["facts"][quickstart_run.name]
    assert {"acc[unseen]", "acc[seen]"} <= set(facts["metrics"]) and "acc[unseen]" in facts["delta_vs_base"]
    assert facts["metrics"]["acc[unseen]"]["n"] + facts["metrics"]["acc[seen]"]["n"] == facts["metrics"]["acc"]["n"]
    assert not any("[" in m for m in report["evaluators"]["retrieval"]["base"]["metrics"])
    lines = [json.loads(line) for line in items.read_text().splitlines()]
    assert {line["evaluator"] for line in lines} == {"preference", "fluency", "facts", "retrieval"}
    markdown = mglkit("eval", "benchmarks", "--base", "mglkit:tiny", "--adapter", quickstart_run, "--markdown",
                      "--limit", "2", "--evaluators", "facts", "--max-new-tokens", "4")  # fmt: skip
    assert markdown.returncode == 0 and b"| facts | acc |" in markdown.stdout


def test_train_data_in_the_suite_is_a_warning_per_item_and_the_seen_split(tiny, tmp_path):
    suite = tmp_path / "leaky"
    suite.mkdir()
    train = (ROOT / "data" / "mgl_history_grpo.jsonl").read_text(encoding="utf-8").splitlines()
    (suite / "pairs.jsonl").write_text("\n".join(train[:3]) + "\n", encoding="utf-8")
    result = mglkit("eval", suite, "--base", "mglkit:tiny", "--json", "--evaluators", "preference",
                    "--train-data", ROOT / "data" / "mgl_history_grpo.jsonl")  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    report = json.loads(result.stdout)
    first = json.loads(train[0])["id"]
    assert len(report["warnings"]) == 3 and report["warnings"][0].startswith(f"{first} is in the training data: ")
    assert report["splits"]["leaky"]["counts"] == {"unseen": 0, "seen": 3}
    metrics = report["evaluators"]["preference"]["base"]["metrics"]
    assert "ref_free_accuracy[seen]" in metrics and "ref_free_accuracy[unseen]" not in metrics  # no unseen item


def test_bad_suites_and_foreign_adapters_are_clear_errors(quickstart_run, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = mglkit("eval", empty, "--base", "mglkit:tiny")
    assert (
        result.returncode == 2 and b"none of facts.jsonl, pairs.jsonl, fluency.jsonl, retrieval.jsonl" in result.stderr
    )
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "facts.jsonl").write_text('{"id": "x", "question": "q", "choices": ["a", "b"]}\n')
    result = mglkit("eval", broken, "--base", "mglkit:tiny")
    assert result.returncode == 2 and b"facts.jsonl, line 1, field 'answer'" in result.stderr
    foreign = tmp_path / "foreign"
    shutil.copytree(quickstart_run, foreign, ignore=shutil.ignore_patterns("checkpoints", "last", "training_*"))
    config = json.loads((foreign / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = "mglkit:tiny-random"
    (foreign / "adapter_config.json").write_text(json.dumps(config))
    result = mglkit("eval", "benchmarks", "--base", "mglkit:tiny", "--adapter", foreign, "--limit", "1")
    assert result.returncode == 2 and b"was trained on 'mglkit:tiny-random', not 'mglkit:tiny'" in result.stderr
    for r in (result,):
        assert b"Traceback" not in r.stderr


def test_metrics_are_evaluate_modules_loadable_offline(tmp_path):
    code = (
        "import evaluate, mglkit.metrics as m\n"
        "p = evaluate.load(str(m.path('mongolian_purity'))).compute(data=['Монгол улс', 'Mongol uls'])\n"
        "r = evaluate.load(str(m.path('repetition'))).compute(data=['а б в а б в а б в'])\n"
        "b = evaluate.load(str(m.path('bits_per_character'))).compute(data=['абв'], log_likelihood=[-3.0])\n"
        "print(p['per_text'], r['repeated_3gram_rate'], round(b['bits_per_character'], 4))\n"
    )
    env = {**__import__("os").environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["[1.0,", "0.0]", "1.0", "1.4427"]
