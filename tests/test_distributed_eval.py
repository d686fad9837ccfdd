"""`mglkit eval` launched as several processes: the items are shared out and gathered, only the main
process prints, and the result is the one a single process gives."""

import json
import subprocess
import sys

from conftest import cli

LAUNCH = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
          "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]  # fmt: skip


def without_times(report: dict) -> dict:
    return {k: v for k, v in report.items() if k != "seconds"}


def test_two_processes_evaluate_as_one(quickstart_run, tmp_path):
    args = ["eval", "benchmarks", "--base", "mglkit:tiny", "--adapter", str(quickstart_run), "--limit", "12",
            "--max-new-tokens", "8", "--precision", "fp32", "--batch-size", "4", "--json"]  # fmt: skip
    one = cli(*args, "--save-items", tmp_path / "one.jsonl")  # in this process: no start-up cost
    assert one.returncode == 0, one.stderr.decode()[-3000:]
    two = subprocess.run([*LAUNCH, "-m", "mglkit", *args, "--save-items", str(tmp_path / "two.jsonl")],
                         capture_output=True, timeout=600)  # fmt: skip
    assert two.returncode == 0, two.stderr.decode()[-3000:]
    report = json.loads(two.stdout)  # one document: only the main process printed
    assert without_times(report) == without_times(json.loads(one.stdout))
    assert (tmp_path / "two.jsonl").read_text() == (tmp_path / "one.jsonl").read_text()
    assert set(report["evaluators"]) >= {"preference", "fluency", "facts"}


def test_scorer_shares_out_batches_between_processes(tiny, tmp_path):
    script = tmp_path / "score.py"
    script.write_text(SCORING)
    result = subprocess.run([*LAUNCH, str(script)], capture_output=True, timeout=600)
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    ranks = [json.loads(line) for line in result.stdout.decode().splitlines() if line.startswith("{")]
    assert sorted(r["rank"] for r in ranks) == [0, 1]
    assert ranks[0]["scores"] == ranks[1]["scores"] and ranks[0]["answers"] == ranks[1]["answers"]
    assert ranks[0]["scores"] == ranks[0]["alone"] and ranks[0]["answers"] == ranks[0]["alone_answers"]
    assert sum(r["forwards"] for r in ranks) == ranks[0]["alone_forwards"] > 2  # each did a share, not all


SCORING = """
import json
from mglkit import distributed
from mglkit.models import ModelOptions, load_model
from mglkit.prompts import PromptFormat
from mglkit.scoring import ModelScorer

distributed.join()
model, tokenizer = load_model("mglkit:tiny", ModelOptions(precision="fp32"))
forwards = [0]
model.register_forward_hook(lambda *args: forwards.__setitem__(0, forwards[0] + 1))
requests = [("Монгол Улсын нийслэл", " Улаанбаатар" * (i % 5 + 1)) for i in range(11)]
prompts = ["Чингис хаан хэдэн онд төрсөн бэ?", "Их Монгол Улс хэдэн онд байгуулагдсан бэ?"] * 5
fmt = PromptFormat(chat_template=True)
shared = ModelScorer("base", model, tokenizer, fmt, batch_size=2, sharded=True)
scores = shared.loglikelihood(requests)
mine = forwards[0]
answers = shared.generate(prompts, 4)
alone = ModelScorer("base", model, tokenizer, fmt, batch_size=2)
forwards[0] = 0
alone_scores = alone.loglikelihood(requests)
alone_forwards = forwards[0]
alone_answers = alone.generate(prompts, 4)
print(json.dumps({"rank": distributed.rank(), "scores": scores, "answers": answers, "forwards": mine,
                  "alone": alone_scores, "alone_answers": alone_answers,
                  "alone_forwards": alone_forwards}), flush=True)
"""
