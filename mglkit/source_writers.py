"""Clean records written back in the input's own format (``validate --out-format input``):
compressed JSONL as its lines, CSV/TSV as its cells under its header, Parquet as its rows with
its schema. Each output is written atomically (a temporary file beside it, then a rename); with
``--fix`` the repaired texts replace the originals in the columns that hold them."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import IO, Any

import orjson

from .atomic import atomic_writer
from .errors import ConfigError
from .pairs import TEXT_FIELDS, Record
from .sources import Chunk, CsvChunk, Source, json_default


class _Output:
    """One output file; ``_finish`` completes the format, ``_abandon`` drops it after a failure."""

    def __init__(self, path: str):
        self._context = atomic_writer(path)
        self.handle: IO[bytes] = self._context.__enter__()

    def write(self, chunk: Chunk, index: int, record: Record) -> None:
        raise NotImplementedError

    def _finish(self) -> None:
        pass

    def _abandon(self) -> None:
        pass

    def close(self, failed: BaseException | None = None) -> None:
        if failed is None:
            try:
                self._finish()
            except BaseException as exc:
                failed = exc
        if failed is None:
            self._context.__exit__(None, None, None)
            return
        with contextlib.suppress(Exception):
            self._abandon()
        self._context.__exit__(type(failed), failed, failed.__traceback__)


def _texts(record: Record, fix: bool) -> dict[str, Any] | None:
    """Repaired field values to put back, by field name; None when the input row stands as it is."""
    if not fix:
        return None
    pair = record.pair
    messages = pair.messages or {}
    return {name: messages.get(name, getattr(pair, name)) for name in TEXT_FIELDS}


class _CompressedJsonl(_Output):
    def __init__(self, path: str, kind: str, fix: bool):
        super().__init__(path)
        self.fix = fix
        if kind == "jsonl.gz":
            import gzip

            self.stream = gzip.GzipFile(fileobj=self.handle, mode="wb", mtime=0)
        else:
            import zstandard

            self.stream = zstandard.ZstdCompressor().stream_writer(self.handle, closefd=False)

    def write(self, chunk: Chunk, index: int, record: Record) -> None:
        if self.fix or not record.raw:
            self.stream.write(orjson.dumps(record.pair.to_record(), default=json_default) + b"\n")
        else:
            self.stream.write(record.raw + b"\n")

    def _finish(self) -> None:
        self.stream.close()

    _abandon = _finish


class _Csv(_Output):
    def __init__(self, path: str, delimiter: str, fix: bool):
        super().__init__(path)
        import csv
        import io

        self.fix = fix
        self.text = io.TextIOWrapper(self.handle, encoding="utf-8", newline="")
        self.writer = csv.writer(self.text, delimiter=delimiter, lineterminator="\n")
        self.header_written = False

    def write(self, chunk: CsvChunk, index: int, record: Record) -> None:
        if not self.header_written:
            self.writer.writerow(chunk.header)
            self.header_written = True
        cells = chunk.cells(index)
        texts = _texts(record, self.fix)
        if texts is not None:
            cells = [texts.get(name, cell) for name, cell in zip(chunk.names, cells, strict=True)]
        self.writer.writerow(cells)

    def _finish(self) -> None:
        self.text.flush()
        self.text.detach()  # the atomic writer closes the file

    _abandon = _finish


class _Parquet(_Output):
    """Clean rows of each chunk are gathered and written as one batch of the input's schema."""

    def __init__(self, path: str, fix: bool):
        super().__init__(path)
        self.fix = fix
        self.writer = None
        self.chunk: Chunk | None = None
        self.rows: list[int] = []
        self.fixed: list[dict] = []

    def write(self, chunk: Chunk, index: int, record: Record) -> None:
        if chunk is not self.chunk:
            self._flush()
            self.chunk = chunk
        texts = _texts(record, self.fix)
        if texts is None:
            self.rows.append(index)
        else:
            row = chunk.original(index)
            for name, column in zip(chunk.names, chunk.batch.schema.names, strict=True):
                if name in texts:
                    row[column] = texts[name]
            self.fixed.append(row)

    def _flush(self) -> None:
        if self.chunk is None or not (self.rows or self.fixed):
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        batch = self.chunk.batch
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.handle, batch.schema)
        if self.rows:
            self.writer.write_batch(batch.take(pa.array(self.rows, pa.int64())))
        else:
            self.writer.write_batch(pa.RecordBatch.from_pylist(self.fixed, schema=batch.schema))
        self.rows, self.fixed = [], []

    def _finish(self) -> None:
        self._flush()
        if self.writer is not None:
            self.writer.close()

    def _abandon(self) -> None:
        if self.writer is not None:
            self.writer.close()


def clean_writer(source: Source, fix: bool) -> Callable[[str], _Output]:
    """A function that opens the clean output for ``source`` in its own format; formats without
    a single input file (a folder, a datasets folder, ``hf:``) are written as JSONL instead."""
    kind = source.kind
    if kind in ("jsonl.gz", "jsonl.zst"):
        return lambda path: _CompressedJsonl(path, kind, fix)
    if kind in ("csv", "tsv"):
        return lambda path: _Csv(path, "," if kind == "csv" else "\t", fix)
    if kind == "parquet":
        return lambda path: _Parquet(path, fix)
    raise ConfigError(
        f"{source.name}: --out-format input needs one input file, not a {kind} source",
        hint="write the clean records as JSONL (--out-format jsonl)",
    )
