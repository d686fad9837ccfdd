"""Chunks: consecutive records of one file, the unit validation hands to a worker.

A chunk decodes itself where it is checked (JSON parsing, CSV cells to fields, Arrow to Python), so
several workers decode in parallel. Every record has a ``row`` (1-based data row of its file); JSONL
and CSV/TSV records also have the physical ``line`` where they start.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from .errors import UnusableInputError
from .findings import ERROR, Finding
from .pairs import Record, decode_line, pair_from_object, parse_record

CHUNK = 512  # records per chunk: what one worker checks in one go


def json_default(value: Any) -> Any:
    """For JSON output: values a Parquet or dataset row may hold that JSON lacks (bytes, decimals, dates)."""
    if isinstance(value, bytes | bytearray | memoryview):
        import base64

        return base64.b64encode(bytes(value)).decode("ascii")
    return str(value)


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

    def original(self, index: int) -> Any:
        """The record as the input holds it (names not mapped), for rejects and same-format output."""
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


def _renamer(columns: Mapping[str, str] | None) -> Callable[[dict, int | None], dict | Finding] | None:
    """Renames a JSONL object's keys by the column mapping; a key that clashes is a format finding."""
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


def mapped_names(names: list[str], columns: Mapping[str, str] | None, file: str) -> list[str]:
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


def arrow_chunks(batches: Iterable, file: str, columns) -> Iterator[Chunk]:
    """Arrow record batches as chunks, the column mapping applied."""
    row, names = 1, None
    for batch in batches:
        if names is None:
            names = mapped_names(batch.schema.names, columns, file)
        if batch.num_rows:
            yield ArrowChunk(file, row, batch, names)
            row += batch.num_rows
