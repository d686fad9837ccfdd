"""How long `mglkit report` and the end-of-run plots take, and how large the report is.

    python benchmarks/bench_report.py RUN [RUN ...] [--eval FILE.json ...] [--items FILE.jsonl ...]

Each measurement is a fresh process, as a user's command (or the end of a training run, for the
plots) would be: the Python start and matplotlib's import are in the time. The report is written to
a temporary folder; the plots to each run's `training_logs/plots/`.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(code: str) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of a fresh process running ``code``: on a shared
    machine the CPU time says more than the wall time."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def summary(times: list[tuple[float, float]]) -> str:
    walls, cpus = [w for w, _ in times], [c for _, c in times]
    return (
        f"best {min(walls):.2f} s wall, {min(cpus):.2f} s CPU (of {len(times)}: "
        + ", ".join(f"{w:.2f}/{c:.2f}" for w, c in times)
        + ")"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--eval", dest="evals", action="append", default=[], type=Path)
    parser.add_argument("--items", action="append", default=[], type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    output = Path(tempfile.mkdtemp()) / "report.html"
    call = (
        "from mglkit.html_report import write_report; "
        f"write_report({str(output)!r}, {[str(r) for r in args.runs]!r}, {[str(e) for e in args.evals]!r}, "
        f"{[str(i) for i in args.items]!r})"
    )
    steps = [sum(1 for _ in open(r / "training_logs" / "metrics.jsonl", encoding="utf-8")) for r in args.runs]
    print(f"{len(args.runs)} runs ({', '.join(map(str, steps))} metric rows), {len(args.evals)} evals, "
          f"{len(args.items)} item files; {os.cpu_count()} CPUs")  # fmt: skip
    report = [timed(call) for _ in range(args.repeat)]
    print(f"report: {summary(report)}; {output.stat().st_size / 1024:.0f} KiB")
    for run in args.runs:
        plots = [timed(f"from mglkit.plots import plot_run; plot_run({str(run)!r})") for _ in range(args.repeat)]
        print(f"plot_run {run}: {summary(plots)}")


if __name__ == "__main__":
    main()
