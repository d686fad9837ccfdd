"""Reading data files as chunks: JSONL (plain, ``.gz``, ``.zst``), CSV/TSV and Parquet, each streamed.

Parquet goes through pyarrow and zstd through zstandard (extra: data), imported only when such a
file is read; CSV through the standard library's csv module, each line decoded on its own so a byte
that is not UTF-8 is named by its line.
"""

from __future__ import annotations

import importlib
import io
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from .errors import UnusableInputError
from .pairs import iter_lines
from .source_chunks import CHUNK, Chunk, CsvChunk, arrow_chunks, line_chunks, mapped_names

DATA_HINT = "pip install 'mglkit[data]'"
SUFFIXES = {
    ".parquet": "parquet", ".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl",
    ".gz": "jsonl.gz", ".zst": "jsonl.zst", ".zstd": "jsonl.zst",
}  # fmt: skip


def file_kind(path: Path) -> str:
    """The format a file is read as, by its suffix; anything unknown is read as JSONL."""
    return SUFFIXES.get(path.suffix.lower(), "jsonl")


def need(module: str, what: str, file: str):
    """Import a library of the data extra, or say which one is missing and how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise UnusableInputError(f"{file}: reading {what} needs {module.split('.')[0]}", hint=DATA_HINT) from None


def file_chunks(path: Path, kind: str, file: str, columns) -> Iterator[Chunk]:
    """The chunks of one file of ``kind`` (see ``file_kind``); ``file`` is the name findings give."""
    if kind == "parquet":
        yield from arrow_chunks(_parquet_batches(path, file), file, columns)
    elif kind in ("csv", "tsv"):
        yield from _csv_chunks(path, file, "," if kind == "csv" else "\t", columns)
    else:
        # a damaged or truncated compressed stream fails as it is read
        damaged = (OSError, EOFError) + ((need("zstandard", "", file).ZstdError,) if kind == "jsonl.zst" else ())
        with _open_jsonl(path, kind, file) as stream:
            try:
                yield from line_chunks(iter_lines(stream), file, columns)
            except damaged as exc:
                raise UnusableInputError(f"{file}: cannot read: {exc}", hint="check the file") from None


# JSONL, compressed or not ----------------------------------------------------------------------


def _open_jsonl(path: Path, kind: str, file: str) -> IO[bytes]:
    if kind == "jsonl.gz":
        import gzip

        return gzip.open(path, "rb")
    if kind == "jsonl.zst":
        return io.BufferedReader(_ZstdReader(path, need("zstandard", "zstd-compressed JSONL", file)))
    return path.open("rb")


class _ZstdReader(io.RawIOBase):
    """zstd frames, decompressed as they are read. A stream that ends inside a frame is an error:
    zstandard's own stream reader stops there without one, and the records after would be lost."""

    def __init__(self, path: Path, zstandard):
        self._file = path.open("rb")
        self._new = zstandard.ZstdDecompressor().decompressobj
        self._frame = self._new()
        self._pending = b""
        self._read_any = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._pending:
            block = self._file.read(1 << 20)
            if not block:
                if self._read_any and not self._frame.eof:
                    raise EOFError("the zstd stream ends inside a frame: the file is truncated")
                return 0
            self._read_any = True
            self._pending = self._decompress(block)
        size = min(len(buffer), len(self._pending))
        buffer[:size], self._pending = self._pending[:size], self._pending[size:]
        return size

    def _decompress(self, block: bytes) -> bytes:
        out = []
        while block:
            if self._frame.eof:  # the next frame of a multi-frame file
                self._frame = self._new()
            out.append(self._frame.decompress(block))
            block = self._frame.unused_data if self._frame.eof else b""
        return b"".join(out)

    def close(self) -> None:
        self._file.close()
        super().close()


# CSV and TSV ------------------------------------------------------------------------------------


def _decoded_lines(stream: IO[bytes], file: str) -> Iterator[str]:
    """Lines as text, each decoded on its own, so a byte that is not UTF-8 is found on its line."""
    for number, raw in enumerate(stream, 1):
        try:
            yield raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            raise UnusableInputError(
                f"{file}, line {number}: not UTF-8 (byte 0x{raw[exc.start : exc.start + 1].hex()})",
                hint="export it as UTF-8 (a spreadsheet's 'CSV UTF-8'), or convert it: iconv -f CP1251 -t UTF-8",
            ) from None


def _csv_chunks(path: Path, file: str, delimiter: str, columns) -> Iterator[Chunk]:
    import csv

    with path.open("rb") as stream:
        reader = csv.reader(_decoded_lines(stream, file), delimiter=delimiter)
        try:
            header = next(reader, None)
            if header is None:
                return
            if len(set(header)) < len(header):
                raise UnusableInputError(f"{file}: the header repeats a column name", hint="name each column once")
            names = mapped_names(header, columns, file)
            rows, row, start = [], 1, reader.line_num + 1
            for cells in reader:
                if cells:  # a blank line is no row
                    rows.append((start, cells))
                    if len(rows) == CHUNK:
                        yield CsvChunk(file, row, header, names, rows)
                        row, rows = row + CHUNK, []
                start = reader.line_num + 1
        except csv.Error as exc:
            raise UnusableInputError(f"{file}, line {reader.line_num}: {exc}", hint="check the quoting") from None
    if rows:
        yield CsvChunk(file, row, header, names, rows)


# Parquet ----------------------------------------------------------------------------------------


def _parquet_batches(path: Path, file: str) -> Iterator:
    pq = need("pyarrow.parquet", "Parquet", file)
    import pyarrow as pa

    try:
        # read through a small buffer, on this thread: a whole 64k-row group is never held at once
        parquet = pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20)
        yield from parquet.iter_batches(batch_size=CHUNK, use_threads=False)
    except (pa.ArrowException, OSError) as exc:
        raise UnusableInputError(f"{file}: not a readable Parquet file ({exc})", hint="check the file") from None
