"""The validation pipeline: records -> validators -> findings -> report, clean/rejects split.

Findings are streamed to a sink as they are found; the report keeps counts and the first few
findings of each rule, so memory stays flat on files of any size.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from .atomic import atomic_writer
from .config import ValidationConfig
from .errors import ConfigError, UnusableInputError
from .findings import ERROR, INFO, WARNING, Finding
from .mongolian import fix_text
from .pairs import KNOWN_EXTRA_FIELDS, TEXT_FIELDS, Pair, Record, display_name, looks_like_json_array
from .sources import Chunk, LineChunk, Source, SourceSpec, json_default, line_chunks, open_data, parse_columns

VERDICTS = ("pass", "pass-with-warnings", "fail", "unusable")
EXAMPLES_PER_RULE = 3


class Validator:
    """Base class of validators. One instance is made per file, with the validation config.

    ``check(pair)`` yields findings for one pair. Validators that keep state across pairs
    (duplicates, dataset size) set ``per_record = False``: they then see every pair in file
    order in one process, and ``finish(stats)`` yields their dataset-wide findings.
    """

    name = "validator"
    description = ""
    per_record = True

    def __init__(self, config: ValidationConfig):
        self.config = config

    def check(self, pair: Pair) -> Iterable[Finding]:
        return ()

    def finish(self, stats: Stats) -> Iterable[Finding]:
        return ()

    def finding(
        self,
        pair: Pair | None,
        field: str | None,
        severity: str,
        message: str,
        hint: str | None = None,
        snippet: str | None = None,
        rule: str | None = None,
    ) -> Finding:
        return Finding(
            rule or self.name,
            severity,
            message,
            line=pair.line if pair else None,
            field=field,
            hint=hint,
            snippet=snippet,
            row=pair.row if pair else None,
        )


@dataclass
class Stats:
    records: int = 0  # non-blank lines, rows
    valid: int = 0  # records without errors
    errors: int = 0
    warnings: int = 0
    infos: int = 0


@dataclass
class RuleSummary:
    errors: int = 0
    warnings: int = 0
    infos: int = 0
    examples: list[Finding] = field(default_factory=list)


@dataclass
class ValidationReport:
    file: str
    verdict: str
    stats: Stats
    rules: dict[str, RuleSummary]
    findings: list[Finding] | None  # every finding, unless the caller streamed them elsewhere

    @property
    def counts(self) -> dict[str, int]:
        s = self.stats
        return {"records": s.records, "valid": s.valid, "errors": s.errors, "warnings": s.warnings}

    @property
    def ok(self) -> bool:
        return self.verdict in ("pass", "pass-with-warnings")

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "verdict": self.verdict,
            "counts": self.counts,
            "findings": [f.to_dict() for f in self.findings or []],
        }


def worst_verdict(verdicts: Iterable[str]) -> str:
    return max(verdicts, key=VERDICTS.index, default="pass")


def exit_code(verdict: str) -> int:
    return {"fail": 1, "unusable": 2}.get(verdict, 0)


def validator_classes(pm=None, names: list[str] | None = None) -> list[type[Validator]]:
    from .plugins import get_plugin_manager

    registered = (pm or get_plugin_manager()).collect("register_validators")
    if names is None:
        return [item.obj for item in registered.values()]
    unknown = [n for n in names if n not in registered]
    if unknown:
        raise ConfigError(f"unknown validator '{unknown[0]}'", hint="installed: " + ", ".join(sorted(registered)))
    return [registered[n].obj for n in names]


def _fix_pair(pair: Pair) -> list[Finding]:
    repairs = []
    for name in TEXT_FIELDS:
        fixed, done = fix_text(getattr(pair, name))
        if done:
            pair.set_text(name, fixed)
            repairs += [Finding("fix", INFO, f"fixed: {r}", line=pair.line, field=name) for r in done]
    if repairs and pair.messages is not None:
        for messages in pair.messages.values():
            for message in messages:
                message["content"] = fix_text(message["content"])[0]
    return repairs


class RecordChecker:
    """Parsing, optional repair and the per-record validators: the part that can run in workers."""

    def __init__(self, config: ValidationConfig, validators: list[Validator]):
        self.config = config
        self.validators = validators

    def check(self, record: Record) -> list[Finding]:
        findings = list(record.findings)
        pair = record.pair
        if pair is not None:
            if self.config.fix:
                findings += _fix_pair(pair)
            for validator in self.validators:
                findings.extend(validator.check(pair))
        return findings

    def check_chunk(self, chunk: Chunk) -> list[tuple[Record, list[Finding]]]:
        return [(record, self.check(record)) for record in chunk.records()]


_worker: RecordChecker | None = None  # set before forking; workers inherit it


def _worker_chunk(chunk: Chunk) -> list[tuple]:
    """In a worker: check a chunk and send back only what the main process lacks, as plain
    tuples (far cheaper to pickle than objects)."""
    results = []
    for record, findings in _worker.check_chunk(chunk):
        pair = record.pair
        if pair is None:
            results.append((None, findings or None, record.obj))
        else:
            fields = (pair.prompt, pair.chosen, pair.rejected, pair.extra, pair.messages)
            results.append((fields, findings or None, None))
    return results


def _checked(checker: RecordChecker, chunks: Iterator[Chunk], jobs: int):
    """(chunk, index, record, findings) in file order; with jobs > 1, decoding and per-record checks
    run in forked workers, with a bounded number of chunks in flight so memory stays flat."""
    if jobs <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        for chunk in chunks:
            for i, (record, findings) in enumerate(checker.check_chunk(chunk)):
                yield chunk, i, record, findings
        return
    global _worker
    _worker = checker
    in_flight: deque = deque()
    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        for chunk in chunks:
            in_flight.append((chunk, pool.apply_async(_worker_chunk, (chunk,))))
            if len(in_flight) > 2 * jobs:
                yield from _joined(*in_flight.popleft())
        while in_flight:
            yield from _joined(*in_flight.popleft())


def _joined(chunk: Chunk, result):
    first = chunk.first_row
    for i, (fields, findings, obj) in enumerate(result.get()):
        line, row = chunk.line(i), first + i
        pair = None if fields is None else Pair(*fields[:3], line, fields[3], fields[4], row)
        yield chunk, i, Record(line, chunk.raw(i), pair, (), row, obj=obj), findings or []


class _Outputs:
    """Clean and rejects files, written atomically; each record lands in exactly one."""

    def __init__(self, clean: str | None, rejects: str | None, inputs: list[str], fix: bool, open_clean=None):
        self.fix = fix
        self._stack = []
        for out in (clean, rejects):
            if out is not None:
                _refuse_overwriting_input(out, inputs)
        if clean is not None and rejects is not None and Path(clean).resolve() == Path(rejects).resolve():
            raise ConfigError("--out-clean and --out-rejects name the same file")
        # open_clean: clean records in the input's format (source_writers), else JSONL
        self.clean_writer = open_clean(clean) if open_clean and clean else None
        self.clean = self._open(clean) if self.clean_writer is None else None
        self.rejects = self._open(rejects)

    def _open(self, path: str | None) -> IO[bytes] | None:
        if path is None:
            return None
        context = atomic_writer(path)
        handle = context.__enter__()
        self._stack.append(context)
        return handle

    def write(self, record: Record, errors: list[Finding], origin: tuple[Chunk, int] | None = None) -> None:
        if errors:
            if self.rejects is not None:
                reasons = [_reason(f) for f in errors]
                self.rejects.write(orjson.dumps(record.reject_entry(reasons), default=json_default) + b"\n")
        elif self.clean is not None:
            if self.fix or not record.raw:
                self.clean.write(orjson.dumps(record.pair.to_record(), default=json_default) + b"\n")
            else:
                self.clean.write(record.raw + b"\n")
        elif self.clean_writer is not None:
            self.clean_writer.write(*origin, record)

    def close(self, failed: BaseException | None = None) -> None:
        if self.clean_writer is not None:
            self.clean_writer.close(failed)
            self.clean_writer = None
        for context in reversed(self._stack):
            if failed is None:
                context.__exit__(None, None, None)
            else:
                context.__exit__(type(failed), failed, failed.__traceback__)
        self._stack = []


def _reason(f: Finding) -> str:
    field = f"{f.field}: " if f.field else ""
    return f"{f.rule}: {field}{f.message}"


def _refuse_overwriting_input(out: str, inputs: list[str]) -> None:
    target = Path(out)
    for source in inputs:
        if source == "-":
            continue
        try:
            same = target.exists() and os.path.samefile(target, source)
        except OSError:
            same = False
        if same or target.resolve() == Path(source).resolve():
            raise ConfigError(
                f"refusing to overwrite the input file {source} with {out}",
                hint="write clean/rejects output to another path",
            )


class _Tally:
    def __init__(self, file: str, sink: Callable[[Finding], None] | None, keep: bool, strict: bool = False):
        self.file = file
        self.strict = strict  # warnings count as errors
        self.sink = sink
        self.stats = Stats()
        self.rules: dict[str, RuleSummary] = {}
        self.findings: list[Finding] | None = [] if keep else None

    def add(self, finding: Finding) -> None:
        if finding.file is None:
            finding.file = self.file
        if self.strict and finding.severity == WARNING:
            finding.severity = ERROR
        summary = self.rules.setdefault(finding.rule, RuleSummary())
        if finding.severity == ERROR:
            self.stats.errors += 1
            summary.errors += 1
        elif finding.severity == WARNING:
            self.stats.warnings += 1
            summary.warnings += 1
        else:
            self.stats.infos += 1
            summary.infos += 1
        if len(summary.examples) < EXAMPLES_PER_RULE:
            summary.examples.append(finding)
        if self.findings is not None:
            self.findings.append(finding)
        if self.sink is not None:
            self.sink(finding)

    def report(self, verdict: str | None = None) -> ValidationReport:
        s = self.stats
        if verdict is None:
            verdict = "fail" if s.errors else "pass-with-warnings" if s.warnings else "pass"
        return ValidationReport(self.file, verdict, s, self.rules, self.findings)


def _unusable(tally: _Tally, message: str, hint: str) -> ValidationReport:
    tally.add(Finding("input", ERROR, message, hint=hint))
    return tally.report("unusable")


def validate_stream(lines: Iterator[tuple[int, bytes]], file: str, config: ValidationConfig, **kwargs):
    """Validate JSONL lines given as (line number, raw bytes); options as for ``validate_chunks``."""
    return validate_chunks(line_chunks(lines, file), file, config, **kwargs)


_EXPECTED_JSONL = 'expected JSONL: one {"prompt", "chosen", "rejected"} object per line'


def _unusable_start(first: Chunk | None) -> tuple[str, str] | None:
    """Why a source is unusable from its first chunk on: empty, UTF-16, a JSON array."""
    if first is None:
        return "no records: the file is empty", _EXPECTED_JSONL
    head = first.raw(0)  # a JSONL source's first line; empty for the others
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "the file is UTF-16, not UTF-8", "convert it: iconv -f UTF-16 -t UTF-8 in.jsonl > out.jsonl"
    if looks_like_json_array(head):
        return "the file is a JSON array, not JSONL", "one JSON object per line: jq -c '.[]' in.json > out.jsonl"
    return None


def validate_chunks(
    chunks: Iterator[Chunk],
    file: str,
    config: ValidationConfig,
    *,
    pm=None,
    sink: Callable[[Finding], None] | None = None,
    keep_findings: bool = True,
    out_clean: str | None = None,
    out_rejects: str | None = None,
    inputs: list[str] = (),
    jobs: int = 1,
    open_clean: Callable[[str], Any] | None = None,
) -> ValidationReport:
    """Validate a source's chunks (sources.py). ``open_clean`` opens a writer of clean records in
    the input's format; without it clean records are written as JSONL."""
    validators = [cls(config) for cls in validator_classes(pm, config.validators)]
    checker = RecordChecker(config, [v for v in validators if v.per_record])
    dataset_wide = [v for v in validators if not v.per_record]
    tally = _Tally(file, sink, keep_findings, config.strict)
    first = next(chunks, None)
    unusable = _unusable_start(first)
    if unusable is not None:
        return _unusable(tally, *unusable)
    outputs = _Outputs(out_clean, out_rejects, list(inputs), config.fix, open_clean)
    objects = 0
    try:
        for chunk, index, record, findings in _checked(checker, _chain(first, chunks), jobs):
            tally.stats.records += 1
            if record.pair is not None:
                objects += 1
                for validator in dataset_wide:
                    findings.extend(validator.check(record.pair))
            if chunk.file != file:  # one file of a folder
                record.file = chunk.file
            errors = []
            for finding in findings:
                finding.row, finding.file = finding.row or record.row, finding.file or chunk.file
                tally.add(finding)
                if finding.severity == ERROR:
                    errors.append(finding)
            if not errors:
                tally.stats.valid += 1
            outputs.write(record, errors, (chunk, index))
        if objects == 0:
            outputs.close(UnusableInputError("no records"))
            return _unusable(tally, *_why_no_pairs(first))
        for validator in dataset_wide:
            for finding in validator.finish(tally.stats):
                tally.add(finding)
    except BaseException as exc:
        outputs.close(exc)
        raise
    outputs.close()
    return tally.report()


def _why_no_pairs(first: Chunk) -> tuple[str, str]:
    if not isinstance(first, LineChunk):
        return "no usable records: no row holds a pair", "each row needs prompt, chosen and rejected (see --columns)"
    if not _is_utf8(first.raw(0)):
        return "the file is not UTF-8", "re-save it as UTF-8"
    return "no usable records: no line is a JSON object with a pair", _EXPECTED_JSONL


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _chain(first, rest):
    yield first
    yield from rest


def validate_file(
    source: str | os.PathLike | SourceSpec,
    config: ValidationConfig,
    *,
    split: str | None = None,
    subset: str | None = None,
    columns: Mapping[str, str] | str | None = None,
    out_format: str = "jsonl",
    **kwargs,
) -> ValidationReport:
    """Validate any source (sources.py): a path, a bundled name, ``-``, ``hf:org/name``. ``columns``
    maps record fields to the source's columns (``"prompt=question,..."`` or a dict); ``out_format``
    is ``"jsonl"`` (clean records as JSONL) or ``"input"`` (in the input file's format)."""
    if out_format not in ("jsonl", "input"):
        raise ConfigError(f"unknown output format '{out_format}'", hint="jsonl or input")
    if not isinstance(source, SourceSpec):
        if isinstance(columns, str):
            columns = parse_columns(columns, TEXT_FIELDS + tuple(sorted(KNOWN_EXTRA_FIELDS)))
        source = SourceSpec(str(source), split, subset, columns)
    try:
        with open_data(source) as opened:
            open_clean = _clean_opener(opened, out_format, config.fix) if kwargs.get("out_clean") else None
            inputs = [*kwargs.pop("inputs", ()), *map(str, opened.files)]
            return validate_chunks(opened.chunks(), opened.name, config, inputs=inputs, open_clean=open_clean, **kwargs)
    except UnusableInputError as exc:
        tally = _Tally(display_name(source.name), kwargs.get("sink"), kwargs.get("keep_findings", True))
        return _unusable(tally, str(exc), exc.hint or "check the input")


def _clean_opener(source: Source, out_format: str, fix: bool) -> Callable[[str], Any] | None:
    if out_format == "jsonl" or source.kind == "jsonl":
        return None
    from .source_writers import clean_writer

    return clean_writer(source, fix)


def validate_records(records: Iterable[dict | Pair], config: ValidationConfig, **kwargs) -> ValidationReport:
    """Validate in-memory records (dicts or Pairs); numbered from 1 like lines."""

    def lines():
        for number, item in enumerate(records, 1):
            obj = item.to_record() if isinstance(item, Pair) else item
            yield number, orjson.dumps(obj)

    return validate_stream(lines(), "<records>", config, **kwargs)
