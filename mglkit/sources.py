"""Data sources: a name the user gives, streamed as records that carry their position.

A name is ``-`` (JSONL on standard input), ``hf:ORG/NAME`` (a Hugging Face dataset, with a split
and a subset), or a path: a bundled name such as ``data/mgl_history_grpo.jsonl``, a file (JSONL,
``.jsonl.gz``, ``.jsonl.zst``, Parquet, CSV, TSV; any other suffix is read as JSONL), a
``datasets.save_to_disk`` folder, or a folder of such files. Without the prefix a name is never a
Hub id. Nothing is loaded whole: files are read line by line or batch by batch.

Records come in chunks, consecutive rows of one file: the unit validation hands to a worker. A
chunk decodes itself (JSON parsing, Arrow to Python) where it is checked, so several workers decode
in parallel. Every record has a ``row`` (1-based data row of its file); JSONL and CSV/TSV records
also have the physical ``line`` where they start. pyarrow, datasets and zstandard (extra: data) are
imported only by the sources that need them.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from .errors import ConfigError, MglkitError, UnusableInputError
from .findings import ERROR, Finding, position
from .pairs import Pair, Record, decode_line, display_name, iter_lines, pair_from_object

CHUNK = 512  # records per chunk: what one worker checks in one go
DATA_HINT = "pip install 'mglkit[data]'"
HF_PREFIX = "hf:"
_TRUE = ("1", "true", "yes", "on")
_SUFFIXES = {
    ".parquet": "parquet", ".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl",
    ".gz": "jsonl.gz", ".zst": "jsonl.zst", ".zstd": "jsonl.zst",
}  # fmt: skip


@dataclass(frozen=True)
class SourceSpec:
    """What the user named: ``name`` (path, bundled name, ``-`` or ``hf:org/name``), the ``split``
    and ``subset`` of a dataset, and ``columns``, record field -> the column that holds it."""

    name: str
    split: str | None = None
    subset: str | None = None
    columns: Mapping[str, str] | None = None


@dataclass(slots=True)
class SourceRow:
    """One decoded record: its fields (columns renamed) and where it is."""

    obj: dict[str, Any]
    file: str
    row: int
    line: int | None

    def where(self, field: str | None = None) -> str:
        named = f", field '{field}'" if field else ""
        return f"{self.file}, {position(self.line, self.row)}{named}"


def parse_columns(text: str | None, fields: Iterable[str] | None = None) -> dict[str, str] | None:
    """``"prompt=question,chosen=good"`` -> ``{"prompt": "question", "chosen": "good"}``; ``fields``
    limits the names on the left (what a record needs), so a pair written backwards is caught."""
    if not text or not text.strip():
        return None
    allowed = None if fields is None else set(fields)
    columns: dict[str, str] = {}
    for part in text.split(","):
        field, sep, column = (s.strip() for s in part.partition("="))
        if not sep or not field or not column:
            raise ConfigError(f"--columns: '{part.strip()}' is not FIELD=COLUMN", hint="e.g. prompt=question")
        if allowed is not None and field not in allowed:
            raise ConfigError(
                f"--columns: '{field}' is not a record field", hint="fields: " + ", ".join(sorted(allowed))
            )
        if field in columns or column in columns.values():
            raise ConfigError(f"--columns: '{field}={column}' repeats a field or a column")
        columns[field] = column
    return columns


def json_default(value: Any) -> Any:
    """For orjson: values a Parquet or dataset row may hold that JSON lacks (bytes, decimals)."""
    if isinstance(value, bytes | bytearray | memoryview):
        import base64

        return base64.b64encode(bytes(value)).decode("ascii")
    return str(value)


# ---------------------------------------------------------------- chunks


class Chunk:
    """Consecutive records of one file, from ``first_row`` on."""

    __slots__ = ("file", "first_row")

    def __init__(self, file: str, first_row: int):
        self.file = file
        self.first_row = first_row

    def line(self, index: int) -> int | None:
        return None

    def raw(self, index: int) -> bytes:
        return b""

    def decoded(self) -> list[dict | Finding]:
        """Each record as a dict with the fields renamed, or the format finding that stops it."""
        raise NotImplementedError

    def records(self) -> list[Record]:
        """Each record parsed into a pair (or its format findings), with its row and line."""
        out = []
        for i, item in enumerate(self.decoded()):
            line, row = self.line(i), self.first_row + i
            if type(item) is dict:
                record = pair_from_object(item, line, self.raw(i), row)
                if record.pair is None:
                    record.obj = self.original(i)
            else:
                record = Record(line, self.raw(i), None, [item], row, obj=self.original(i))
            out.append(record)
        return out

    def original(self, index: int) -> Any:
        """The record as the input holds it (names not mapped), for rejects and same-format output."""
        raise NotImplementedError


def _renamer(columns: Mapping[str, str] | None) -> Callable[[dict, int | None], dict | Finding] | None:
    if not columns:
        return None
    fields = {column: field for field, column in columns.items()}

    def rename(obj: dict, line: int | None) -> dict | Finding:
        out = {fields.get(k, k): v for k, v in obj.items()}
        if len(out) < len(obj):
            clash = next(f for f in fields.values() if f in obj and f not in fields)
            return Finding("format", ERROR, f"the record has a field '{clash}' and --columns maps "
                           f"'{columns[clash]}' to it", line=line, field=clash,
                           hint="map another column, or rename one")  # fmt: skip
        return out

    return rename


class LineChunk(Chunk):
    """JSONL lines, parsed where they are checked."""

    __slots__ = ("lines", "columns")

    def __init__(self, file: str, first_row: int, lines: list[tuple[int, bytes]], columns=None):
        super().__init__(file, first_row)
        self.lines = lines
        self.columns = columns

    def line(self, index: int) -> int:
        return self.lines[index][0]

    def raw(self, index: int) -> bytes:
        return self.lines[index][1]

    def original(self, index: int) -> Any:
        return None  # the raw line is kept instead

    def decoded(self) -> list[dict | Finding]:
        rename = _renamer(self.columns)
        out = []
        for line, raw in self.lines:
            obj = decode_line(line, raw)
            out.append(rename(obj, line) if rename and type(obj) is dict else obj)
        return out

    def records(self) -> list[Record]:
        if self.columns:
            return super().records()
        from .pairs import parse_record

        first = self.first_row
        return [parse_record(line, raw, first + i) for i, (line, raw) in enumerate(self.lines)]


class CsvChunk(Chunk):
    """CSV/TSV rows as cell lists, made into records where they are checked."""

    __slots__ = ("header", "names", "rows")

    def __init__(self, file: str, first_row: int, header: list[str], names: list[str], rows: list):
        super().__init__(file, first_row)
        self.header = header  # the input's own column names
        self.names = names  # after the column mapping
        self.rows = rows  # (line, cells)

    def line(self, index: int) -> int:
        return self.rows[index][0]

    def cells(self, index: int) -> list[str]:
        return self.rows[index][1]

    def original(self, index: int) -> dict[str, str] | list[str]:
        cells = self.rows[index][1]
        return dict(zip(self.header, cells, strict=True)) if len(cells) == len(self.header) else cells

    def decoded(self) -> list[dict | Finding]:
        names, width = self.names, len(self.names)
        out: list[dict | Finding] = []
        for line, cells in self.rows:
            if len(cells) == width:
                out.append(dict(zip(names, cells, strict=True)))
            else:
                out.append(Finding("format", ERROR, f"the row has {len(cells)} fields, the header {width}", line=line,
                                   hint="quote fields that hold the delimiter, a quote or a line break"))  # fmt: skip
        return out


class ArrowChunk(Chunk):
    """An Arrow record batch (Parquet, datasets), converted to Python where it is checked."""

    __slots__ = ("batch", "names")

    def __init__(self, file: str, first_row: int, batch, names: list[str]):
        super().__init__(file, first_row)
        self.batch = batch  # the input's own column names
        self.names = names  # after the column mapping

    def original(self, index: int) -> dict:
        return self.batch.slice(index, 1).to_pylist()[0]

    def decoded(self) -> list[dict | Finding]:
        return self.batch.rename_columns(self.names).to_pylist()


# ---------------------------------------------------------------- readers


def line_chunks(lines: Iterable[tuple[int, bytes]], file: str, columns=None) -> Iterator[LineChunk]:
    """(line number, raw JSONL line) pairs, as chunks."""
    chunk, row = [], 1
    for item in lines:
        chunk.append(item)
        if len(chunk) == CHUNK:
            yield LineChunk(file, row, chunk, columns)
            row, chunk = row + CHUNK, []
    if chunk:
        yield LineChunk(file, row, chunk, columns)


def _mapped_names(names: list[str], columns: Mapping[str, str] | None, file: str) -> list[str]:
    """Column names after the mapping; a mapped column that is missing, or a clash, is unusable input."""
    if not columns:
        return list(names)
    fields = {column: field for field, column in columns.items()}
    missing = [c for c in fields if c not in names]
    if missing:
        raise UnusableInputError(
            f"{file}: no column '{missing[0]}' (named in --columns)", hint="columns: " + ", ".join(names)
        )
    clash = next((n for n in names if n in columns and n not in fields), None)
    if clash is not None:
        raise UnusableInputError(
            f"{file}: has a column '{clash}' and --columns maps '{columns[clash]}' to it",
            hint="map another column, or rename one",
        )
    return [fields.get(n, n) for n in names]


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
            names = _mapped_names(header, columns, file)
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


def _arrow_chunks(batches: Iterable, file: str, columns) -> Iterator[Chunk]:
    row, names = 1, None
    for batch in batches:
        if names is None:
            names = _mapped_names(batch.schema.names, columns, file)
        if batch.num_rows:
            yield ArrowChunk(file, row, batch, names)
            row += batch.num_rows


def _need(module: str, what: str, file: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise UnusableInputError(f"{file}: reading {what} needs {module.split('.')[0]}", hint=DATA_HINT) from None


def _parquet_batches(path: Path, file: str) -> Iterator:
    pq = _need("pyarrow.parquet", "Parquet", file)
    import pyarrow as pa

    try:
        # read through a small buffer, on this thread: a whole 64k-row group is never held at once
        parquet = pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20)
        yield from parquet.iter_batches(batch_size=CHUNK, use_threads=False)
    except (pa.ArrowException, OSError) as exc:
        raise UnusableInputError(f"{file}: not a readable Parquet file ({exc})", hint="check the file") from None


def _table_batches(tables: Iterable) -> Iterator:
    for table in tables:
        yield from table.to_batches(max_chunksize=CHUNK)


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


def _open_jsonl(path: Path, kind: str, file: str) -> IO[bytes]:
    if kind == "jsonl.gz":
        import gzip

        return gzip.open(path, "rb")
    if kind == "jsonl.zst":
        return io.BufferedReader(_ZstdReader(path, _need("zstandard", "zstd-compressed JSONL", file)))
    return path.open("rb")


def _file_chunks(path: Path, kind: str, file: str, columns) -> Iterator[Chunk]:
    if kind == "parquet":
        yield from _arrow_chunks(_parquet_batches(path, file), file, columns)
    elif kind in ("csv", "tsv"):
        yield from _csv_chunks(path, file, "," if kind == "csv" else "\t", columns)
    else:
        # a damaged or truncated compressed stream fails as it is read
        damaged = (OSError, EOFError) + ((_need("zstandard", "", file).ZstdError,) if kind == "jsonl.zst" else ())
        with _open_jsonl(path, kind, file) as stream:
            try:
                yield from line_chunks(iter_lines(stream), file, columns)
            except damaged as exc:
                raise UnusableInputError(f"{file}: cannot read: {exc}", hint="check the file") from None


# ---------------------------------------------------------------- sources


class Source:
    """An opened source. ``chunks()`` streams it (once); ``rows()`` gives decoded rows; ``files``
    are the local files read (outputs must not replace them); ``kind`` names the format."""

    def __init__(self, name: str, kind: str, chunks: Callable[[], Iterator[Chunk]], files: list[Path] = ()):
        self.name = name
        self.kind = kind
        self.files = list(files)
        self._chunks = chunks
        self._open: list[Iterator] = []

    def chunks(self) -> Iterator[Chunk]:
        chunks = self._chunks()
        self._open.append(chunks)
        return chunks

    def rows(self) -> Iterator[SourceRow]:
        """Decoded rows in order; the first malformed one raises UnusableInputError naming it."""
        for chunk in self.chunks():
            for i, item in enumerate(chunk.decoded()):
                line, row = chunk.line(i), chunk.first_row + i
                if type(item) is not dict:
                    where = SourceRow({}, chunk.file, row, line).where(item.field)
                    raise UnusableInputError(f"{where}: {item.message}", hint=item.hint)
                yield SourceRow(item, chunk.file, row, line)

    def digest(self) -> str | None:
        """sha256 of the files read, in order (a single file: its own sha256); None for a Hub stream."""
        if not self.files:
            return None
        import hashlib

        digest = hashlib.sha256()
        for path in self.files:
            with path.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
        return digest.hexdigest()

    def close(self) -> None:
        for chunks in self._open:
            chunks.close()  # runs the readers' finally blocks: files closed
        self._open = []

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def file_kind(path: Path) -> str:
    suffix = path.suffix.lower()
    return _SUFFIXES.get(suffix, "jsonl")


def open_data(spec: SourceSpec | str) -> Source:
    """Open what the user named; a missing path, a missing library or an unknown dataset is
    UnusableInputError (exit 2) with a hint. Reading errors later are UnusableInputError too."""
    if isinstance(spec, str):
        spec = SourceSpec(spec)
    name, columns = spec.name, spec.columns
    if name.startswith(HF_PREFIX):
        return _hub_source(spec)
    if name == "-":
        return Source("<stdin>", "jsonl", lambda: line_chunks(iter_lines(sys.stdin.buffer), "<stdin>", columns))
    from .resources import resolve_data_path

    path = resolve_data_path(name)
    if path.is_dir():
        return _folder_source(path, spec)
    if not path.exists():
        raise UnusableInputError(f"{path}: no such file", hint="check the path")
    if not os.access(path, os.R_OK):
        raise UnusableInputError(f"{path}: cannot read: permission denied")
    kind = file_kind(path)
    file = display_name(name)
    return Source(file, kind, lambda: _file_chunks(path, kind, file, columns), [path])


def _data_files(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in _SUFFIXES
    )


def _folder_source(folder: Path, spec: SourceSpec) -> Source:
    if (folder / "dataset_dict.json").is_file() or (folder / "state.json").is_file():
        return _saved_dataset_source(folder, spec)
    files = _data_files(folder)
    if not files:
        nested = any(p.is_dir() and _data_files(p) for p in folder.iterdir())
        hint = f"a folder laid out as a Hub dataset is read with hf:{spec.name}" if nested else "give a data file"
        raise UnusableInputError(f"{folder}: no data files (.jsonl, .parquet, .csv, .tsv, ...)", hint=hint)

    def chunks() -> Iterator[Chunk]:
        for path in files:
            yield from _file_chunks(path, file_kind(path), os.path.join(spec.name, path.name), spec.columns)

    return Source(display_name(spec.name), "folder", chunks, files)


def _pick_split(splits: list[str], spec: SourceSpec) -> str:
    if spec.split is not None:
        if spec.split not in splits:
            raise UnusableInputError(f"{spec.name}: no split '{spec.split}'", hint="splits: " + ", ".join(splits))
        return spec.split
    if len(splits) == 1:
        return splits[0]
    raise UnusableInputError(f"{spec.name}: has splits {', '.join(splits)}", hint="choose one with --split")


def _saved_dataset_source(folder: Path, spec: SourceSpec) -> Source:
    datasets = _need("datasets", "a save_to_disk folder", spec.name)
    try:
        dataset = datasets.load_from_disk(str(folder))
    except (FileNotFoundError, ValueError, OSError) as exc:
        raise UnusableInputError(f"{spec.name}: not a readable datasets folder ({exc})") from None
    if isinstance(dataset, datasets.DatasetDict):
        dataset = dataset[_pick_split(list(dataset), spec)]
    file = display_name(spec.name)

    def chunks() -> Iterator[Chunk]:
        tables = dataset.with_format("arrow").iter(batch_size=CHUNK)
        yield from _arrow_chunks(_table_batches(tables), file, spec.columns)

    return Source(file, "datasets", chunks, sorted(folder.rglob("*.arrow")))


def _hub_source(spec: SourceSpec) -> Source:
    repo = spec.name[len(HF_PREFIX) :]
    datasets = _need("datasets", "a Hugging Face dataset", spec.name)
    options = {"split": spec.split} if spec.split else {}
    try:
        dataset = datasets.load_dataset(repo, spec.subset, streaming=True, **options)
    except ConnectionError as exc:
        offline = [v for v in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE") if os.environ.get(v, "").lower() in _TRUE]
        if offline:
            raise UnusableInputError(
                f"{spec.name}: not in the local dataset cache, and {offline[0]}=1 forbids downloading it",
                hint=f"unset {' and '.join(offline)} to download it once, or give a local path",
            ) from None
        raise UnusableInputError(f"{spec.name}: cannot load: {exc}", hint="check the name and the network") from None
    except (FileNotFoundError, ValueError) as exc:
        raise UnusableInputError(f"{spec.name}: cannot load: {exc}", hint="check the name, subset and split") from None
    except Exception as exc:  # datasets raises its own errors for unknown or gated repositories
        if not type(exc).__module__.startswith(("datasets", "huggingface_hub")):
            raise
        raise UnusableInputError(f"{spec.name}: cannot load: {exc}", hint="check the name and your access") from None
    if isinstance(dataset, datasets.IterableDatasetDict):
        dataset = dataset[_pick_split(list(dataset), spec)]
    parts = [p for p in (spec.subset, spec.split) if p]
    file = spec.name + (f" ({', '.join(parts)})" if parts else "")

    def chunks() -> Iterator[Chunk]:
        try:
            yield from _arrow_chunks(_table_batches(dataset.with_format("arrow").iter(batch_size=CHUNK)), file,
                                     spec.columns)  # fmt: skip
        except (ConnectionError, FileNotFoundError) as exc:
            raise UnusableInputError(f"{file}: cannot read: {exc}", hint="check the network or the cache") from None

    return Source(file, "hf", chunks)


# ---------------------------------------------------------------- pairs for training


def iter_pairs(spec: SourceSpec | str) -> Iterator[Pair]:
    """The pairs of any source, in order (as ``load_pairs`` for JSONL); the first record that holds
    no pair raises MglkitError naming file, line or row, and field."""
    with open_data(spec) as source:
        for chunk in source.chunks():
            for record in chunk.records():
                error = next((f for f in record.findings if f.severity == ERROR), None)
                if error is not None:
                    where = SourceRow({}, chunk.file, record.row, record.line).where(error.field)
                    raise MglkitError(f"{where}: {error.message}", hint=error.hint)
                yield record.pair
