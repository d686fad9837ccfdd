"""Clean records written back in the input's own format (``validate --out-format input``):
compressed JSONL as its lines, CSV/TSV as its cells under its header, Parquet as its rows with its
schema. A writer wraps the file ``mglkit.outputs.write_file`` opened (atomic, modes kept, devices
written into); ``exit`` completes the format before that file is renamed into place. With ``--fix``
the repaired texts replace the originals in the columns that hold them."""

from __future__ import annotations

from collections.abc import Callable
from typing import IO, Any

from .errors import ConfigError
from .pairs import TEXT_FIELDS, Record, dumps
from .source_chunks import Chunk, CsvChunk, json_default
from .sources import Source


class _Writer:
    """Clean records of one format into ``handle``; ``first`` is the source's first chunk (its
    header or schema is written even when no record is clean)."""

    def __init__(self, handle: IO[bytes], fix: bool, first: Chunk):
        self.handle = handle
        self.fix = fix

    def write(self, chunk: Chunk, index: int, record: Record) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        """Complete the format (a footer, a compressed stream's end)."""

    def release(self) -> None:
        """After a failure: free what the format holds; the file itself is discarded."""

    def exit(self, kind, error, traceback) -> bool:
        """For an ExitStack: finish on success, release on failure; never swallows an error."""
        if error is None:
            self.finish()
        else:
            self.release()
        return False


def _texts(record: Record, fix: bool) -> dict[str, Any] | None:
    """Repaired field values to put back, by field name; None when the input row stands as it is."""
    if not fix:
        return None
    pair = record.pair
    messages = pair.messages or {}
    return {name: messages.get(name, getattr(pair, name)) for name in TEXT_FIELDS}


class _CompressedJsonl(_Writer):
    def __init__(self, handle: IO[bytes], fix: bool, first: Chunk, kind: str):
        super().__init__(handle, fix, first)
        if kind == "jsonl.gz":
            import gzip

            self.stream = gzip.GzipFile(fileobj=handle, mode="wb", mtime=0)
        else:
            import zstandard

            self.stream = zstandard.ZstdCompressor().stream_writer(handle, closefd=False)

    def write(self, chunk: Chunk, index: int, record: Record) -> None:
        if self.fix or not record.raw:
            self.stream.write(dumps(record.pair.to_record(), json_default) + b"\n")
        else:
            self.stream.write(record.raw + b"\n")

    def finish(self) -> None:
        self.stream.close()  # writes the stream's end; the handle stays open

    release = finish


class _Csv(_Writer):
    def __init__(self, handle: IO[bytes], fix: bool, first: CsvChunk, delimiter: str):
        super().__init__(handle, fix, first)
        import csv
        import io

        self.text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
        self.writer = csv.writer(self.text, delimiter=delimiter, lineterminator="\n")
        self.writer.writerow(first.header)

    def write(self, chunk: CsvChunk, index: int, record: Record) -> None:
        cells = chunk.cells(index)
        texts = _texts(record, self.fix)
        if texts is not None:
            cells = [texts.get(name, cell) for name, cell in zip(chunk.names, cells, strict=True)]
        self.writer.writerow(cells)

    def finish(self) -> None:
        self.text.flush()
        self.text.detach()  # the handle belongs to write_file, which closes it

    release = finish


class _Parquet(_Writer):
    """Clean rows of each chunk are gathered and written as one batch of the input's schema."""

    def __init__(self, handle: IO[bytes], fix: bool, first: Chunk):
        super().__init__(handle, fix, first)
        self.schema = first.batch.schema
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
            self.writer = pq.ParquetWriter(self.handle, self.schema)
        if self.rows:
            self.writer.write_batch(batch.take(pa.array(self.rows, pa.int64())))
        else:
            self.writer.write_batch(pa.RecordBatch.from_pylist(self.fixed, schema=batch.schema))
        self.rows, self.fixed = [], []

    def finish(self) -> None:
        self._flush()
        if self.writer is None:  # no clean row: a valid file of no rows
            import pyarrow.parquet as pq

            self.writer = pq.ParquetWriter(self.handle, self.schema)
        self.writer.close()

    def release(self) -> None:
        if self.writer is not None:
            self.writer.close()


def clean_writer(source: Source, fix: bool) -> Callable[[IO[bytes], Chunk], _Writer]:
    """What wraps the clean file to write ``source``'s records in its own format; a source that is
    not one file of such a format (a folder, a datasets folder, ``hf:``) is a ConfigError."""
    kind = source.kind
    if kind in ("jsonl.gz", "jsonl.zst"):
        return lambda handle, first: _CompressedJsonl(handle, fix, first, kind)
    if kind in ("csv", "tsv"):
        return lambda handle, first: _Csv(handle, fix, first, "," if kind == "csv" else "\t")
    if kind == "parquet":
        return lambda handle, first: _Parquet(handle, fix, first)
    raise ConfigError(
        f"{source.name}: --out-format input needs one input file, not a {kind} source",
        hint="write the clean records as JSONL (--out-format jsonl)",
    )
