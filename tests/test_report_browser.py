"""The report as a person sees it: two real runs and their evaluation, opened in headless Chromium."""

import importlib.util
import json
import os
from pathlib import Path

import pytest
from conftest import QUICKSTART, mglkit

CHROMIUM = "/usr/bin/chromium"
BROWSER_ARGS = ["--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]


def _unavailable(reason: str):
    """Skip on a developer's machine; under CI a missing or undriveable browser is a failure."""
    if "CI" in os.environ:
        pytest.fail(f"the browser test cannot run under CI: {reason}")
    pytest.skip(reason)


def _check_browser() -> None:
    if importlib.util.find_spec("playwright") is None:
        _unavailable("playwright is not installed (pip install -e '.[dev]')")
    if not Path(CHROMIUM).is_file():
        _unavailable(f"{CHROMIUM} is missing (apt-get install -y chromium)")


def _open(report: Path, screenshot: Path) -> dict:
    """Load the report in Chromium; what a person would notice: console errors, every request,
    the size of each figure, the page's text; and a screenshot."""
    from playwright.sync_api import Error, sync_playwright

    seen = {"errors": [], "requests": []}
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: seen["errors"].append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: seen["errors"].append(str(e)))
            page.on("request", lambda r: seen["requests"].append(r.url))
            page.goto(report.as_uri(), wait_until="load")
            seen["sizes"] = page.eval_on_selector_all(
                "img, svg", "els => els.map(e => { const r = e.getBoundingClientRect(); return [r.width, r.height]; })"
            )
            seen["text"] = page.inner_text("body")
            seen["charset"] = page.evaluate("document.characterSet")
            page.screenshot(path=str(screenshot), full_page=True)
            browser.close()
    except Error as exc:
        _unavailable(f"Chromium could not be driven: {exc}")
    return seen


@pytest.mark.slow
def test_report_of_two_runs_and_their_evaluation_in_a_browser(quickstart_run, tmp_path, capsys):
    _check_browser()
    from mglkit.html_report import write_report

    short = tmp_path / "short"
    train = mglkit("train", *QUICKSTART, "--learning-rate", "1e-3", "--max-steps", "12", "--eval-steps", "4",
                   "--samples", "2", "--max-new-tokens", "16", "--output", short)  # fmt: skip
    assert train.returncode == 0, train.stderr.decode()[-3000:]
    items = tmp_path / "items.jsonl"
    evaluation = mglkit("eval", "benchmarks", "--base", "mglkit:tiny", "--adapter", quickstart_run, "--adapter", short,
                        "--evaluators", "preference,fluency,facts", "--limit", "4", "--max-new-tokens", "16",
                        "--json", "--save-items", items)  # fmt: skip
    assert evaluation.returncode == 0, evaluation.stderr.decode()[-3000:]
    eval_file = tmp_path / "eval.json"
    eval_file.write_bytes(evaluation.stdout)
    report = write_report(tmp_path / "report.html", [quickstart_run, short], [eval_file], [items])

    screenshot = tmp_path / "report.png"
    seen = _open(report, screenshot)
    with capsys.disabled():
        print(f"\nreport screenshot: {screenshot}")
    assert seen["errors"] == []
    assert seen["requests"] == [report.as_uri()]  # the file itself; figures are inline
    assert len(seen["sizes"]) >= 8 and all(w > 0 and h > 0 for w, h in seen["sizes"]), seen["sizes"]
    assert seen["charset"] == "UTF-8"
    text = seen["text"]
    for run in (quickstart_run, short):
        stats = json.loads((run / "training_logs" / "training_stats.json").read_text())
        for key in ("avg_loss", "eval_loss", "validation_accuracy", "tokens_per_second"):
            assert f"{stats[key]:.4g}" in text, key
        assert f"{stats['total_steps']:,}" in text
    data = json.loads(eval_file.read_text())
    for name, by_column in data["evaluators"].items():
        for column, result in by_column.items():
            for metric, score in result["metrics"].items():
                assert f"{score['value']:.4g}" in text, (name, column, metric)
            for metric, delta in result.get("delta_vs_base", {}).items():
                assert f"{delta['value']:+.3f}{'*' if delta['significant'] else ''}" in text, (name, column, metric)
    assert any(letter in text for letter in "өүӨҮ")  # Mongolian answers and questions in the page
    assert screenshot.stat().st_size > 10_000
