"""Reading runs back, the data behind the plots, `runs` listing and the HTML report (no browser)."""

import contextlib
import json
import os
import re
import struct
import time

import pytest
from conftest import cli

from mglkit.errors import UnusableInputError
from mglkit.locks import acquire_lock, release_lock
from mglkit.outputs import lock_path
from mglkit.plots import PANELS, ReportExtraMissing, panel_lines, plot_run
from mglkit.runlist import list_runs
from mglkit.runlog import load_run, read_metrics, run_status, series

PANEL = {panel.key: panel for panel in PANELS}


def _jsonl(path, rows, tail=""):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows) + tail, encoding="utf-8")


def _train_row(step, loss):
    return {
        "step": step,
        "loss": loss,
        "rewards/chosen": 0.01 * step,
        "rewards/rejected": -0.01 * step,
        "rewards/margins": 0.02 * step,
        "rewards/accuracies": 0.5,
        "learning_rate": 1e-4,
        "grad_norm": 1.5,
    }


def _eval_row(step, loss):
    return {"step": step, "eval_loss": loss, "eval_rewards/accuracies": 0.75, "eval_rewards/margins": 0.3}


def make_run(folder, *, stats=True, marker=None, lr=5e-4, beta=0.1, rows=None, samples=True, benchmarks=None):
    """A run folder shaped as `mglkit train` writes it (settings, statistics, logs)."""
    logs = folder / "training_logs"
    rows = rows if rows is not None else [_train_row(s, 0.7 - 0.01 * s) for s in range(1, 11)] + [_eval_row(10, 0.61)]
    _jsonl(logs / "metrics.jsonl", rows)
    config = {
        "base": "mglkit:tiny",
        "trainer": "dpo",
        "learning_rate": lr,
        "dataset": "data/mgl_history_grpo.jsonl",
        "output": str(folder),
        "options": {"beta": beta, "loss": "sigmoid"},  # the trainer's own settings
    }
    args = {
        "mglkit_version": "0.1.0",
        "config": config,
        "method": f"DPO, sigmoid loss, beta {beta:g}",
        "dataset_path": "data/mgl_history_grpo.jsonl",
        "dataset_sha256": "ab" * 32,
    }
    (folder / "training_args.json").write_text(json.dumps(args))
    if stats:
        stats = {
            "base_model": "mglkit:tiny",
            "trainer": "dpo",
            "total_steps": 10,
            "train_samples": 80,
            "test_samples": 9,
            "avg_loss": 0.6543,
            "eval_loss": 0.61,
            "validation_accuracy": 0.75,
            "training_time": 12.5,
            "tokens_per_second": 4321.5,
            "peak_memory_mb": 812.3,
        }
        if benchmarks:
            stats["benchmarks"] = benchmarks
        (logs / "training_stats.json").write_text(json.dumps(stats))
    if samples:
        _jsonl(
            logs / "sample_generations.jsonl",
            [{"prompt": "Чингис хаан хэдэн онд төрсөн бэ?", "generation": "Өгэдэй ба Түрэг", "reference": "1162"}],
        )
    if marker:
        (folder / ".mglkit.json").write_text(
            json.dumps(
                {
                    "kind": "run",
                    "pid": 1,
                    "started": "2025-01-02T03:04:05+00:00",
                    "finished": None,
                    "mglkit_version": "0.1.0",
                    **marker,
                }
            )
        )
    return folder


# ---- metrics.jsonl


def test_a_resumed_runs_rewound_steps_keep_the_last_attempt(tmp_path):
    first = [_train_row(s, 1.0) for s in range(1, 9)] + [_eval_row(4, 0.9), _eval_row(8, 0.8)]
    first.sort(key=lambda r: (r["step"], "eval_loss" in r))
    resumed = [_train_row(s, 0.5) for s in range(5, 7)] + [_eval_row(6, 0.4)]  # resumed from step 4, then died
    path = tmp_path / "metrics.jsonl"
    _jsonl(path, first + resumed)
    rows, notes = read_metrics(path)
    assert notes == []
    assert series(rows, "loss") == ([1, 2, 3, 4, 5, 6], [1.0] * 4 + [0.5] * 2)  # 7 and 8 of the old attempt gone
    assert series(rows, "eval_loss") == ([4, 6], [0.9, 0.4])  # the old attempt's eval at 8 gone too


def test_a_step_logged_again_keeps_its_last_occurrence(tmp_path):
    path = tmp_path / "metrics.jsonl"
    _jsonl(path, [_train_row(1, 0.9), _train_row(2, 0.8), _eval_row(2, 0.7), _train_row(2, 0.6), _eval_row(2, 0.5)])
    rows, _ = read_metrics(path)
    assert series(rows, "loss") == ([1, 2], [0.9, 0.6])
    assert series(rows, "eval_loss") == ([2], [0.5])


def test_a_torn_last_line_is_skipped_with_a_note(tmp_path):
    path = tmp_path / "metrics.jsonl"
    _jsonl(path, [_train_row(1, 0.9), _train_row(2, 0.8)], tail='{"step": 3, "loss": 0.7')
    rows, notes = read_metrics(path)
    assert [r["step"] for r in rows] == [1, 2]
    assert notes == ["metrics.jsonl: the last line is not a complete metrics row (skipped)"]


def test_eval_points_are_aligned_with_the_train_curve_of_their_metric(tmp_path):
    rows = [_train_row(s, 1 / s) for s in range(1, 7)]
    rows[3:3] = [_eval_row(3, 0.4)]  # as a run logs them: after the train row of their step
    run = load_run(make_run(tmp_path / "a", rows=rows + [_eval_row(6, 0.2)]))
    lines = panel_lines(PANEL["loss"], [run])
    train, evals = (next(line for line in lines if line.is_eval is flag) for flag in (False, True))
    assert (train.metric, evals.metric) == ("loss", "loss")
    assert evals.steps == [3, 6] and evals.values == [0.4, 0.2]
    assert set(evals.steps) <= set(train.steps)
    assert evals.color == train.color and evals.style == train.style


def test_runs_overlay_with_a_color_each_and_grpo_reward_functions_expand(tmp_path):
    grpo_rows = [
        {
            "step": s,
            "loss": 0.0,
            "reward": 0.1 * s,
            "reward_std": 0.2,
            "kl": 0.01 * s,
            "rewards/facts/mean": 0.1,
            "rewards/facts/std": 0.3,
            "rewards/mongolian/mean": 0.9,
            "rewards/mongolian/std": 0.05,
            "completions/mean_length": 30.0,
        }
        for s in range(1, 4)
    ]
    dpo = load_run(make_run(tmp_path / "dpo"))
    grpo = load_run(make_run(tmp_path / "grpo", rows=grpo_rows))
    loss = panel_lines(PANEL["loss"], [dpo, grpo])
    assert [line.run for line in loss if not line.is_eval] == ["dpo", "grpo"]
    assert len({line.color for line in loss}) == 2
    functions = panel_lines(PANEL["reward_functions"], [dpo, grpo])
    assert [line.metric for line in functions] == ["rewards/facts/mean", "rewards/mongolian/mean"]
    assert {line.metric for line in panel_lines(PANEL["reward_std"], [grpo])} == {
        "reward_std",
        "rewards/facts/std",
        "rewards/mongolian/std",
    }
    assert panel_lines(PANEL["kl"], [dpo]) == [] and grpo.is_grpo and not dpo.is_grpo


# ---- status and `runs`


@contextlib.contextmanager
def holding(run):
    """The run's lock, held as a writing process holds it."""
    fd = acquire_lock(lock_path(run), wait=False, what=str(run))
    try:
        yield
    finally:
        release_lock(fd, lock_path(run))


def test_status_comes_from_the_marker_and_its_lock(tmp_path):
    run = make_run(tmp_path / "r", marker={"status": "running"})
    assert run_status(run) == "stopped"  # no process holds the lock: it died
    with holding(run):
        assert run_status(run) == "running"
    assert run_status(run) == "stopped"
    (run / ".mglkit.json").write_text(json.dumps({"kind": "run", "status": "finished"}))
    assert run_status(run) == "finished"
    legacy = make_run(tmp_path / "legacy")
    assert run_status(legacy) == "finished"
    (legacy / "training_logs" / "training_stats.json").unlink()
    assert run_status(legacy) == "stopped"


def test_runs_lists_runs_two_levels_deep_with_status_and_numbers(tmp_path):
    make_run(tmp_path / "done", marker={"status": "finished"}, benchmarks=EVAL)
    make_run(tmp_path / "dead", marker={"status": "running"}, stats=False)
    live = make_run(tmp_path / "group" / "live", marker={"status": "running"}, stats=False)
    make_run(tmp_path / "old", lr=1e-3)
    make_run(tmp_path / "group" / "deeper" / "too-deep")
    (tmp_path / "not-a-run").mkdir()
    with holding(live):
        summaries = list_runs([tmp_path], sort="name")
    by_name = {s.name: s for s in summaries}
    assert list(by_name) == ["dead", "done", "group/live", "old"]
    assert {n: s.status for n, s in by_name.items()} == {
        "dead": "stopped",
        "done": "finished",
        "group/live": "running",
        "old": "finished",
    }
    done = by_name["done"]
    assert (done.base, done.trainer, done.steps, done.eval_loss, done.best_eval_loss, done.reward_accuracy) == (
        "mglkit:tiny",
        "dpo",
        10,
        0.61,
        0.61,
        0.75,
    )
    assert done.date == "2025-01-02T03:04:05+00:00"
    assert done.benchmarks == {"facts/acc": 0.4375}  # the adapter's headline number
    assert by_name["dead"].steps == 10  # from its metrics: it wrote no statistics
    json.dumps([s.to_dict() for s in summaries])
    with pytest.raises(UnusableInputError):
        list_runs([tmp_path], sort="colour")
    with pytest.raises(UnusableInputError):
        list_runs([tmp_path / "nowhere"])


# ---- plots and the report


def _png_size(path):
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


def test_plot_run_writes_a_png_per_panel_with_data(tmp_path):
    run = make_run(tmp_path / "a")
    start = time.perf_counter()
    written = plot_run(run)
    print(f"plot_run: {len(written)} PNGs in {time.perf_counter() - start:.2f} s")
    assert [p.name for p in written] == [
        "loss.png",
        "rewards.png",
        "margins.png",
        "accuracies.png",
        "learning_rate.png",
        "grad_norm.png",
    ]
    assert all(_png_size(p)[0] > 300 for p in written)
    assert sorted(os.listdir(run / "training_logs" / "plots")) == sorted(p.name for p in written)  # no temp files


def test_without_the_report_extra_plotting_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "matplotlib", None)  # as if not installed
    with pytest.raises(ReportExtraMissing) as error:
        plot_run(make_run(tmp_path / "a"))
    assert error.value.hint == "pip install 'mglkit[report]'" and error.value.exit_code == 2


EVAL = {
    "suite": "benchmarks",
    "columns": ["base", "a"],
    "seconds": {"facts": 1.5},
    "warnings": [],
    "evaluators": {
        "facts": {
            "base": {
                "metrics": {"acc": {"value": 0.25, "ci95": [0.1, 0.4], "n": 20}},
                "groups": {"acc by period": {"chinggis": {"value": 0.5, "ci95": [0.0, 1.0], "n": 2}}},
            },
            "a": {
                "metrics": {"acc": {"value": 0.4375, "ci95": [0.2, 0.6], "n": 20}},
                "groups": {"acc by period": {"chinggis": {"value": 1.0, "ci95": [1.0, 1.0], "n": 2}}},
                "delta_vs_base": {"acc": {"value": 0.1875, "ci95": [0.05, 0.3], "significant": True}},
            },
        }
    },
}


def test_report_is_one_self_contained_file_and_says_what_is_missing(tmp_path):
    from mglkit.html_report import write_report

    finished = make_run(tmp_path / "a")
    stopped = make_run(tmp_path / "b", stats=False, lr=1e-3, beta=0.2, rows=[_train_row(1, 0.7)], samples=False)
    (tmp_path / "eval.json").write_text(json.dumps(EVAL))
    items = tmp_path / "items.jsonl"
    _jsonl(
        items,
        [
            {"evaluator": "facts", "column": c, "id": "facts-chinggis-01", "generation": g, "generation_match": m}
            for c, g, m in (("base", "Тэмүжин", False), ("a", "1162 онд", True))
        ],
        tail='{"evaluator": "fac',
    )
    out = write_report(tmp_path / "out" / "report.html", [finished, stopped], [tmp_path / "eval.json"], [items])
    html = out.read_text(encoding="utf-8")
    assert "<script" not in html
    assert not re.search(r'(src|href)="(?!data:|#)', html) and not re.search(r"url\((?!#)", html)  # nothing loaded
    assert html.count("<svg") >= 6 + 2  # curves, the forest plot and the period bars
    assert "not drawn" not in html  # acc differs between the columns
    assert "0.6543" in html and "4,322" not in html and "4322" in html  # avg_loss, tokens/s (4 digits)
    assert "0.4375" in html and "+0.188*" in html  # the adapter's acc and its starred delta
    assert "Чингис хаан хэдэн онд төрсөн бэ?" in html and "1162 онд" in html and "✓ matches" in html
    assert "learning_rate" in html and ">beta<" in html  # differ between the runs; beta is the trainer's own
    assert "dpo: DPO, sigmoid loss, beta 0.1" in html and "None loss" not in html
    assert "no training_stats.json: the run stopped early" in html
    assert "recorded no validation summary" in html
    assert not list((tmp_path / "out").glob(".*.tmp"))


def test_the_report_never_lands_inside_a_run_it_reads(tmp_path):
    run = make_run(tmp_path / "a")
    metrics = run / "training_logs" / "metrics.jsonl"
    before = metrics.read_bytes()
    result = cli("report", run, "--output", metrics)
    assert result.returncode == 2 and b"is inside the run" in result.stderr
    assert metrics.read_bytes() == before


def test_report_without_eval_or_metrics_says_so(tmp_path):
    from mglkit.html_report import render_report

    run = tmp_path / "fresh"
    (run / "training_logs").mkdir(parents=True)
    (run / ".mglkit.json").write_text(json.dumps({"kind": "run", "status": "running"}))
    html = render_report([run])
    assert "No training metrics logged yet" in html and "No evaluation yet" in html
    assert "No per-item generations given" in html


def test_report_refuses_a_folder_that_is_no_run_and_a_missing_eval(tmp_path):
    from mglkit.html_report import render_report

    (tmp_path / "photos").mkdir()
    with pytest.raises(UnusableInputError, match="not an mglkit run"):
        render_report([tmp_path / "photos"])
    with pytest.raises(UnusableInputError, match="no such file"):
        render_report([], [tmp_path / "eval.json"])
    (tmp_path / "other.json").write_text('{"verdict": "pass"}')
    with pytest.raises(UnusableInputError, match="not `mglkit eval --json` output"):
        render_report([], [tmp_path / "other.json"])


def test_an_evaluation_alone_as_eval_html_writes_it(tmp_path):
    from mglkit.html_report import render_report

    same = {"metrics": {"mrr": {"value": 0.99, "ci95": [0.97, 1.0], "n": 60}}}
    data = {
        "suite": "benchmarks",
        "columns": ["base", "a"],
        "evaluators": {
            "retrieval": {"base": same, "a": same},
            "preference": {"a": {"metrics": {"reward_accuracy": {"value": 0.53, "ci95": [0.4, 0.67], "n": 60}}}},
        },
    }
    items = [
        {"evaluator": "fluency", "column": c, "prompt": "Чингис хааны тухай ярина уу?", "generation": g}
        for c, g in (("base", "Монгол Улс"), ("a", "Тэмүжин 1162 онд төрсөн."))
    ]
    html = render_report(evals=[data], items=[items])
    assert html.count("<svg") == 1  # the adapter's reward accuracy; retrieval's equal mrr stays in the table
    assert "Equal in every column, so not drawn: mrr." in html
    assert "Тэмүжин 1162 онд төрсөн." in html and "No run folder given" in html
