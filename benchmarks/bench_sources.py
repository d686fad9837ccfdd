"""`mglkit validate` on Parquet against the same records as JSONL: throughput and peak RSS.

    python benchmarks/bench_sources.py [--pairs 1000000] [--repeat 1]

Generates realistic pairs as bench_validate.py does (sentences of the bundled data recombined, ~1%
faults), keeps the records that are JSON objects, and writes them twice: as JSONL and as Parquet
with row groups of 64k rows. Runs the real CLI in subprocesses with --jobs 1 and 2 and prints a
Markdown table. Goals: Parquet at >= 80 % of the JSONL throughput, peak RSS < 300 MB.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_validate import generate, run  # noqa: E402

ROW_GROUP = 65_536


def write_both(generated: Path, jsonl: Path, parquet: Path) -> int:
    """The generated records that are JSON objects, as JSONL and as Parquet, a row group at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([(name, pa.string()) for name in ("prompt", "chosen", "rejected", "id")])
    count = 0
    with generated.open("rb") as lines, jsonl.open("wb") as out, pq.ParquetWriter(parquet, schema) as writer:
        group = []
        for line in lines:
            try:
                group.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                continue  # the generator's broken lines: no Parquet row can hold them
            if len(group) == ROW_GROUP:
                count += _flush(group, out, writer, schema)
                group = []
        count += _flush(group, out, writer, schema)
    return count


def _flush(group: list[dict], out, writer, schema) -> int:
    import pyarrow as pa

    if group:
        out.write(b"".join(orjson.dumps(r) + b"\n" for r in group))
        writer.write_table(pa.Table.from_pylist(group, schema=schema), row_group_size=ROW_GROUP)
    return len(group)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=1, help="runs of each, interleaved; the best is kept")
    opts = parser.parse_args()
    mglkit = [sys.executable, "-m", "mglkit", "validate", "--json"]
    best: dict[tuple[str, int], tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        generated, jsonl, parquet = Path(tmp, "gen.jsonl"), Path(tmp, "pairs.jsonl"), Path(tmp, "pairs.parquet")
        generate(generated, opts.pairs, seed=3)
        n = write_both(generated, jsonl, parquet)
        generated.unlink()
        for _ in range(opts.repeat):  # interleaved, so a busy moment of the machine hits both formats
            for jobs in (1, 2):
                for path in (jsonl, parquet):
                    wall, rss = run([*mglkit, "--jobs", str(jobs), str(path)], 1)
                    old_wall, old_rss = best.get((path.suffix, jobs), (float("inf"), 0.0))
                    best[path.suffix, jobs] = (min(wall, old_wall), max(rss, old_rss))
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print("| measure | throughput | peak RSS |\n|---|---|---|")
    for jobs in (1, 2):
        for suffix in (".jsonl", ".parquet"):
            wall, rss = best[suffix, jobs]
            print(f"| {suffix[1:]} {n:,} pairs --jobs {jobs} | {n / wall:,.0f} pairs/s | {rss:.0f} MB |")
        ratio = best[".jsonl", jobs][0] / best[".parquet", jobs][0]
        print(f"| Parquet / JSONL throughput, --jobs {jobs} | {ratio:.0%} (goal >= 80 %) | goal < 300 MB |")


if __name__ == "__main__":
    main()
