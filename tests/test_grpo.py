"""`mglkit train --trainer trl-grpo`: reward plugins, their order on known answers, errors, learning."""

import json

import pytest
from conftest import ROOT, fresh_plugins, mglkit, read_metrics

from mglkit import Reward, hookimpl
from mglkit.errors import MglkitError
from mglkit.plugins import get_plugin_manager

CHOSEN = (
    "Тэмүжин 1206 онд Онон голын эхэнд болсон их хуралдайгаар Чингис хаан цолтой хаан ширээнд суусан. "
    "Тэрээр монгол аймгуудыг нэгтгэн Их Монгол Улсыг байгуулсан."
)
RECORD = {
    "chosen": CHOSEN,
    "rejected": "Их Монгол Улсыг 1260 онд Хубилай хаан байгуулсан.",
    "aliases": ["1206"],
}
RUSSIAN = "Монгольское государство было основано в 1206 году, когда Тэмуджин объединил все племена."


def rewards():
    return {reward.name: reward for reward in get_plugin_manager().all("reward")}


@pytest.mark.parametrize("name", ["mongolian", "preference"])
def test_mongolian_answer_beats_russian_beats_empty(name):
    reward = rewards()[name]
    good, russian, empty = (reward("асуулт", text, RECORD) for text in (CHOSEN, RUSSIAN, ""))
    assert good > russian > empty, (good, russian, empty)


def test_facts_reward_needs_the_alias():
    reward = rewards()["facts"]
    assert reward("q", "Их Монгол Улс 1206 онд байгуулагдсан.", RECORD) == 1.0
    assert reward("q", "Их Монгол Улс 1260 онд байгуулагдсан.", RECORD) == 0.0


def test_length_band():
    from types import SimpleNamespace

    reward = rewards()["length"].configure(SimpleNamespace(length_band="5,10"))
    inside, empty, rambling = "үг " * 7, "", "үг " * 40
    assert reward("q", inside, {}) == 1.0
    assert reward("q", inside, {}) > reward("q", empty, {}) and reward("q", inside, {}) > reward("q", rambling, {})


def test_rewards_are_listed_by_plugins():
    _, listing = __import__("conftest").cli_json("plugins")
    rewarders = [p for p in listing["plugins"] if "rewards" in p["registers"]]
    assert rewarders[0]["registers"]["rewards"] == ["facts", "length", "mongolian", "preference"]


class Broken(Reward):
    name = "broken"

    def __init__(self, value=None):
        self.value = value

    def __call__(self, prompt, completion, record):
        if self.value is None:
            raise ZeroDivisionError("division by zero")
        return self.value


class BrokenRewards:
    __name__ = "broken_rewards"

    @hookimpl
    def register_rewards(self, register):
        register(Broken())
        register(Nan())


class Nan(Broken):
    name = "nan"

    def __init__(self):
        super().__init__(float("nan"))


@pytest.fixture
def broken_rewards():
    with fresh_plugins():
        pm = get_plugin_manager()
        pm.register(BrokenRewards(), name="broken-rewards")
        yield pm


@pytest.mark.parametrize(("reward", "message"), [("broken", "ZeroDivisionError"), ("nan", "returned nan")])
def test_a_failing_reward_is_a_clear_error(tiny, broken_rewards, tmp_path, reward, message):
    import mglkit

    with pytest.raises(MglkitError) as error:
        mglkit.train(trainer="trl-grpo", base="mglkit:tiny", rewards=[reward], max_steps=1, batch_size=2,
                     num_generations=2, max_new_tokens=4, samples=0, output=str(tmp_path / "run"), eval_split=0,
                     skip_validation=True)  # fmt: skip
    text = str(error.value)
    assert f"reward '{reward}'" in text and message in text and "prompt «" in text


def test_grpo_learns_a_reward_with_room_to_improve(tiny, tmp_path):
    out = tmp_path / "run"
    result = mglkit("train", "--trainer", "trl-grpo", "--base", "mglkit:tiny", "--rewards", "length",
                    "--length-band", "2,8", "--learning-rate", "1e-2", "--batch-size", "4", "--num-generations", "8",
                    "--grad-accum", "1", "--max-steps", "30", "--max-new-tokens", "32", "--warmup-ratio", "0",
                    "--scheduler", "constant", "--seed", "3", "--kl-coef", "0", "--samples", "1",
                    "--output", out)  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    rows = [m for m in read_metrics(out) if "reward" in m]
    assert (
        len(rows) == 30 and {"rewards/length/mean", "rewards/length/std", "completions/mean_length"} <= rows[0].keys()
    )
    first, last = [r["rewards/length/mean"] for r in rows[:4]], [r["rewards/length/mean"] for r in rows[-8:]]
    assert sum(last) / 8 > sum(first) / 4 + 0.2
    stats = json.loads((out / "training_logs" / "training_stats.json").read_text())
    assert stats["trainer"] == "trl-grpo" and stats["total_steps"] == 30 and stats["mean_reward"] > 0
    assert "GRPO, rewards length, 8 answers per prompt" in (out / "README.md").read_text()
    from peft import PeftModel

    from mglkit.models import ModelOptions, load_model

    base, _ = load_model("mglkit:tiny", ModelOptions(precision="fp32"))
    PeftModel.from_pretrained(base, str(out))


def test_grpo_on_the_training_facts_with_kl(tiny, tmp_path):
    out = tmp_path / "run"
    result = mglkit("train", "--trainer", "trl-grpo", "--base", "mglkit:tiny", "--dataset",
                    ROOT / "data" / "facts_train.jsonl", "--rewards", "facts,mongolian", "--reward-weights",
                    "facts=2,mongolian=0.5", "--max-steps", "2", "--batch-size", "2", "--num-generations", "2",
                    "--max-new-tokens", "8", "--samples", "1", "--output", out)  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    rows = [m for m in read_metrics(out) if "reward" in m]
    assert {"rewards/facts/mean", "rewards/mongolian/mean", "kl"} <= rows[-1].keys()
    sample = json.loads((out / "training_logs" / "sample_generations.jsonl").read_text().splitlines()[0])
    assert sample["prompt"] and sample["reference"]
