"""The validation pipeline: records -> validators -> findings -> report, clean/rejects split.

Findings are streamed to a sink as they are found; the report keeps counts and the first few
findings of each rule, so memory stays flat on files of any size.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

from .config import ValidationConfig
from .errors import ConfigError, UnusableInputError
from .findings import ERROR, INFO, Finding, Tally, ValidationReport
from .mongolian import fix_text
from .outputs import refuse_input, same_file, write_file
from .pairs import TEXT_FIELDS, Pair, Record, display_name, dumps, looks_like_json_array
from .source_chunks import Chunk, LineChunk, json_default, line_chunks
from .sources import Source, SourceSpec, open_data
from .types import Validator

_EXPECTED = 'expected JSONL: one {"prompt", "chosen", "rejected"} object per line'


def validators_for(config: ValidationConfig, pm=None) -> list[Validator]:
    """The validators a file is checked with, each bound to the config (fresh per-file state)."""
    from .plugins import get_plugin_manager

    pm = pm or get_plugin_manager()
    chosen = pm.all("validator") if config.validators is None else [pm.get("validator", n) for n in config.validators]
    return [validator.begin(config) for validator in chosen]


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
    """In a worker: decode and check a chunk, and send back only what the main process lacks, as
    plain tuples (far cheaper to pickle than objects)."""
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
    """Clean and rejects files: each record lands in exactly one; both written whole or not at all
    (rejects always, empty when there are none, so an old file is never left stale)."""

    def __init__(
        self, clean: str | None, rejects: str | None, inputs: list[str], fix: bool, clean_format=None, first=None
    ):
        self.fix = fix
        for option, out in (("--out-clean", clean), ("--out-rejects", rejects)):
            if out is not None:
                refuse_input(out, inputs, option)
        if (
            clean is not None
            and rejects is not None
            and (same_file(clean, rejects) or os.path.realpath(clean) == os.path.realpath(rejects))
        ):
            raise ConfigError("--out-clean and --out-rejects name the same file", hint="give two paths")
        self._stack = contextlib.ExitStack()
        try:
            self.clean = self._open(clean)
            # clean records in the input's own format (source_writers), else as JSONL lines
            self.clean_format = None if clean is None or clean_format is None else clean_format(self.clean, first)
            if self.clean_format is not None:
                self._stack.push(self.clean_format.exit)  # completes the format before the file is renamed
            self.rejects = self._open(rejects)
        except BaseException as exc:  # nothing half-opened is left behind (the clean file's temporary)
            self.close(exc)
            raise

    def _open(self, path: str | None) -> IO[bytes] | None:
        return None if path is None else self._stack.enter_context(write_file(path))

    def write(self, record: Record, errors: list[Finding], chunk: Chunk, index: int) -> None:
        if errors:
            if self.rejects is not None:
                reasons = [_reason(f) for f in errors]
                self.rejects.write(dumps(record.reject_entry(reasons), json_default) + b"\n")
        elif self.clean_format is not None:
            self.clean_format.write(chunk, index, record)
        elif self.clean is not None:
            if self.fix or not record.raw:
                self.clean.write(dumps(record.pair.to_record(), json_default) + b"\n")
            else:
                self.clean.write(record.raw + b"\n")

    def close(self, failed: BaseException | None = None) -> None:
        if failed is None:
            self._stack.close()
        else:
            self._stack.__exit__(type(failed), failed, failed.__traceback__)


def _reason(f: Finding) -> str:
    field = f"{f.field}: " if f.field else ""
    return f"{f.rule}: {field}{f.message}"


def validate_stream(lines: Iterator[tuple[int, bytes]], file: str, config: ValidationConfig, **kwargs):
    """Validate JSONL lines given as (line number, raw bytes); options as for ``validate_chunks``."""
    return validate_chunks(line_chunks(lines, file), file, config, **kwargs)


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
    jobs: int | None = None,
    clean_format: Callable[[IO[bytes], Chunk], Any] | None = None,
) -> ValidationReport:
    """Validate a source's chunks (mglkit.sources). ``clean_format`` wraps the clean file in a writer
    of the input's own format; without it clean records are JSONL."""
    validators = validators_for(config, pm)
    checker = RecordChecker(config, [v for v in validators if v.per_record])
    dataset_wide = [v for v in validators if not v.per_record]
    tally = Tally(file, sink, keep_findings, config.strict)
    if not validators:
        return tally.unusable(
            "no validator is installed or selected, so nothing was checked",
            "check MGLKIT_LOAD_PLUGINS and --validators (see `mglkit plugins`)",
        )
    try:
        first = next(chunks, None)
    except UnusableInputError as exc:  # the source failed as it was read (not UTF-8, truncated...)
        return tally.unusable(str(exc), exc.hint or "check the input")
    problem = _unusable_start(first)
    if problem is not None:
        return tally.unusable(*problem)
    outputs = _Outputs(out_clean, out_rejects, list(inputs), config.fix, clean_format, first)
    try:
        objects = _check_all(checker, dataset_wide, _chain(first, chunks), jobs or config.jobs, tally, outputs)
        if objects == 0:
            outputs.close(UnusableInputError("no records"))
            return tally.unusable(*_why_no_pairs(first))
        for validator in dataset_wide:
            for finding in validator.finish(tally.stats):
                tally.add(finding)
    except UnusableInputError as exc:
        outputs.close(exc)  # neither output is left half-written
        return tally.unusable(str(exc), exc.hint or "check the input")
    except BaseException as exc:
        outputs.close(exc)
        raise
    outputs.close()
    return tally.report()


def _check_all(checker, dataset_wide, chunks, jobs: int, tally: Tally, outputs: _Outputs) -> int:
    """Every record checked, counted and written to clean or rejects; returns how many held a pair."""
    objects = 0
    for chunk, index, record, findings in _checked(checker, chunks, jobs):
        tally.stats.records += 1
        if record.pair is not None:
            objects += 1
            for validator in dataset_wide:
                findings.extend(validator.check(record.pair))
        if chunk.file != tally.file:  # one file of a folder
            record.file = chunk.file
        errors = []
        for finding in findings:
            finding.row = finding.row or record.row
            finding.file = finding.file or record.file
            tally.add(finding)
            if finding.severity == ERROR:
                errors.append(finding)
        if not errors:
            tally.stats.valid += 1
        outputs.write(record, errors, chunk, index)
    return objects


def _unusable_start(first: Chunk | None) -> tuple[str, str] | None:
    """What makes a source unusable from its first record on (an empty file, UTF-16, a JSON array)."""
    if first is None:
        return "no records: the file is empty", _EXPECTED
    head = first.raw(0)  # a JSONL source's first line; empty for the others
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "the file is UTF-16, not UTF-8", "convert it: iconv -f UTF-16 -t UTF-8 in.jsonl > out.jsonl"
    if looks_like_json_array(head):
        return (
            "the file is a JSON array, not JSONL",
            "write one JSON object per line, e.g. jq -c '.[]' in.json > out.jsonl",
        )
    return None


def _why_no_pairs(first: Chunk) -> tuple[str, str]:
    if not isinstance(first, LineChunk):
        return "no usable records: no row holds a pair", "each row needs prompt, chosen and rejected (see --columns)"
    if not _is_utf8(first.raw(0)):
        return "the file is not UTF-8", "re-save it as UTF-8"
    return "no usable records: no line is a JSON object with a pair", _EXPECTED


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _chain(first, rest):
    yield first
    yield from rest


def validate_file(source: str | os.PathLike | SourceSpec, config: ValidationConfig, **kwargs) -> ValidationReport:
    """Validate any source (mglkit.sources): a path, a bundled name, ``-`` (standard input), ``hf:org/name``.
    A name is read with the config's ``split``, ``subset`` and ``columns``; clean records are written
    in the config's ``out_format``."""
    spec = source if isinstance(source, SourceSpec) else SourceSpec.named(source, config)
    try:
        with open_data(spec) as opened:
            clean_format = _clean_format(opened, config) if kwargs.get("out_clean") else None
            inputs = [*kwargs.pop("inputs", ()), *map(str, opened.files)] + (["-"] if spec.name == "-" else [])
            return validate_chunks(
                opened.chunks(), opened.name, config, inputs=inputs, clean_format=clean_format, **kwargs
            )
    except UnusableInputError as exc:
        tally = Tally(display_name(spec.name), kwargs.get("sink"), kwargs.get("keep_findings", True))
        return tally.unusable(str(exc), exc.hint or "check the input")


def _clean_format(source: Source, config: ValidationConfig):
    if config.out_format == "jsonl" or source.kind == "jsonl":
        return None
    from .source_writers import clean_writer

    return clean_writer(source, config.fix)


def validate_records(records: Iterable[dict | Pair], config: ValidationConfig, **kwargs) -> ValidationReport:
    """Validate in-memory records (dicts or Pairs); numbered from 1 like lines."""

    def lines():
        for number, item in enumerate(records, 1):
            obj = item.to_record() if isinstance(item, Pair) else item
            yield number, dumps(obj)

    return validate_stream(lines(), "<records>", config, **kwargs)


def command(pm, name: str):
    """``mglkit validate FILE...``"""
    import click

    from .cli import config_option, exit_help, given, setting_options
    from .settings import declared

    specs = declared(ValidationConfig)

    @click.command(name, epilog=exit_help("errors in records or in dataset rules"))
    @click.argument("files", nargs=-1, required=True)
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable report on stdout.")
    @click.option("--out-clean", type=click.Path(dir_okay=False), help="Write records without errors here.")
    @click.option(
        "--out-rejects",
        type=click.Path(dir_okay=False),
        help='Write records with errors here: {"line", "reasons", "record"|"raw"}.',
    )
    @config_option("validate")
    @setting_options(specs)
    def validate(files, as_json, out_clean, out_rejects, config_file, **values):
        """Check preference-pair files (JSONL, Parquet, CSV/TSV, datasets; - reads standard input).

        Inputs: JSONL (also .jsonl.gz, .jsonl.zst), Parquet, CSV/TSV, folders of them, save_to_disk
        folders, and hf:ORG/NAME datasets."""
        from .config import load_config
        from .findings import exit_code, worst_verdict

        if (out_clean or out_rejects) and len(files) > 1:
            raise click.UsageError("--out-clean/--out-rejects take one FILE at a time")
        config = load_config(ValidationConfig, config_file, **given(values, specs))
        outputs = {"out_clean": out_clean, "out_rejects": out_rejects, "inputs": list(files)}
        reports = _report_json(files, config, outputs) if as_json else _report_rich(files, config, outputs)
        return exit_code(worst_verdict(r.verdict for r in reports))

    return validate


def _report_json(files, config, outputs) -> list[ValidationReport]:
    import sys

    from .findings import worst_verdict
    from .report import JsonFindingsWriter

    stream, reports = sys.stdout.buffer, []
    several = len(files) > 1
    if several:
        stream.write(b'{"reports": [\n')
    for i, file in enumerate(files):
        if i:
            stream.write(b",\n")
        writer = JsonFindingsWriter(stream, display_name(file))
        report = validate_file(file, config, sink=writer, keep_findings=False, **outputs)
        writer.close(report)
        reports.append(report)
    if several:
        stream.write(b'\n], "verdict": "' + worst_verdict(r.verdict for r in reports).encode() + b'"}')
    stream.write(b"\n")
    stream.flush()
    return reports


def _report_rich(files, config, outputs) -> list[ValidationReport]:
    from .report import console, print_validation

    out, reports = console(), []
    for file in files:
        report = validate_file(file, config, keep_findings=False, **outputs)
        print_validation(report, out)
        reports.append(report)
    return reports
