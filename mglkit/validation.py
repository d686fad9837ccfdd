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
from typing import IO

from .config import ValidationConfig
from .errors import ConfigError, UnusableInputError
from .findings import ERROR, INFO, Finding, Tally, ValidationReport
from .mongolian import fix_text
from .outputs import refuse_input, same_file, write_file
from .pairs import (
    TEXT_FIELDS,
    Pair,
    Record,
    display_name,
    dumps,
    iter_lines,
    looks_like_json_array,
    open_source,
    parse_record,
)
from .resources import resolve_data_path
from .types import Validator

BATCH = 512
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

    def check_batch(self, batch: list[tuple[int, bytes]]) -> list[tuple[Record, list[Finding]]]:
        out = []
        for line, raw in batch:
            record = parse_record(line, raw)
            out.append((record, self.check(record)))
        return out


_worker: RecordChecker | None = None  # set before forking; workers inherit it


def _worker_batch(batch: list[tuple[int, bytes]]) -> list[tuple]:
    """In a worker: check a batch and send back only what the main process lacks, as plain
    tuples (far cheaper to pickle than objects)."""
    results = []
    for record, findings in _worker.check_batch(batch):
        pair = record.pair
        if pair is None:
            fields = None
        else:
            fields = (pair.prompt, pair.chosen, pair.rejected, pair.extra, pair.messages)
        results.append((fields, findings or None))
    return results


def _batches(lines: Iterator[tuple[int, bytes]]) -> Iterator[list[tuple[int, bytes]]]:
    batch = []
    for item in lines:
        batch.append(item)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _checked(checker: RecordChecker, lines: Iterator[tuple[int, bytes]], jobs: int):
    """(record, findings) in file order; with jobs > 1, per-record checks run in forked workers,
    with a bounded number of batches in flight so memory stays flat."""
    if jobs <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        for batch in _batches(lines):
            yield from checker.check_batch(batch)
        return
    global _worker
    _worker = checker
    in_flight: deque = deque()
    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        for batch in _batches(lines):
            in_flight.append((batch, pool.apply_async(_worker_batch, (batch,))))
            if len(in_flight) > 2 * jobs:
                yield from _joined(*in_flight.popleft())
        while in_flight:
            yield from _joined(*in_flight.popleft())


def _joined(batch, result):
    for (line, raw), (fields, findings) in zip(batch, result.get(), strict=True):
        pair = None if fields is None else Pair(*fields[:3], line, fields[3], fields[4])
        yield Record(line, raw, pair, ()), findings or []


class _Outputs:
    """Clean and rejects files: each record lands in exactly one; both written whole or not at all
    (rejects always, empty when there are none, so an old file is never left stale)."""

    def __init__(self, clean: str | None, rejects: str | None, inputs: list[str], fix: bool):
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
        self.clean = self._open(clean)
        self.rejects = self._open(rejects)

    def _open(self, path: str | None) -> IO[bytes] | None:
        return None if path is None else self._stack.enter_context(write_file(path))

    def write(self, record: Record, errors: list[Finding]) -> None:
        if errors:
            if self.rejects is not None:
                reasons = [_reason(f) for f in errors]
                self.rejects.write(dumps(record.reject_entry(reasons)) + b"\n")
        elif self.clean is not None:
            if self.fix or not record.raw:
                self.clean.write(dumps(record.pair.to_record()) + b"\n")
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


def validate_stream(
    lines: Iterator[tuple[int, bytes]],
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
) -> ValidationReport:
    validators = validators_for(config, pm)
    checker = RecordChecker(config, [v for v in validators if v.per_record])
    dataset_wide = [v for v in validators if not v.per_record]
    tally = Tally(file, sink, keep_findings, config.strict)
    if not validators:
        return tally.unusable(
            "no validator is installed or selected, so nothing was checked",
            "check MGLKIT_LOAD_PLUGINS and --validators (see `mglkit plugins`)",
        )
    first = next(lines, None)
    problem = _unusable_start(first)
    if problem is not None:
        return tally.unusable(*problem)
    outputs = _Outputs(out_clean, out_rejects, list(inputs), config.fix)
    objects = 0
    try:
        for record, findings in _checked(checker, _chain(first, lines), jobs or config.jobs):
            tally.stats.records += 1
            if record.pair is not None:
                objects += 1
                for validator in dataset_wide:
                    findings.extend(validator.check(record.pair))
            errors = []
            for finding in findings:
                tally.add(finding)
                if finding.severity == ERROR:
                    errors.append(finding)
            if not errors:
                tally.stats.valid += 1
            outputs.write(record, errors)
        if objects == 0:
            outputs.close(UnusableInputError("no records"))
            if not _is_utf8(first[1]):
                return tally.unusable("the file is not UTF-8", "re-save it as UTF-8")
            return tally.unusable("no usable records: no line is a JSON object with a pair", _EXPECTED)
        for validator in dataset_wide:
            for finding in validator.finish(tally.stats):
                tally.add(finding)
    except BaseException as exc:
        outputs.close(exc)
        raise
    outputs.close()
    return tally.report()


def _unusable_start(first: tuple[int, bytes] | None) -> tuple[str, str] | None:
    """What makes a file unusable from its first line on (an empty file, UTF-16, a JSON array)."""
    if first is None:
        return "no records: the file is empty", _EXPECTED
    if first[1].startswith((b"\xff\xfe", b"\xfe\xff")):
        return "the file is UTF-16, not UTF-8", "convert it: iconv -f UTF-16 -t UTF-8 in.jsonl > out.jsonl"
    if looks_like_json_array(first[1]):
        return (
            "the file is a JSON array, not JSONL",
            "write one JSON object per line, e.g. jq -c '.[]' in.json > out.jsonl",
        )
    return None


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _chain(first, rest):
    yield first
    yield from rest


def validate_file(source: str | os.PathLike, config: ValidationConfig, **kwargs) -> ValidationReport:
    """Validate a JSONL file (``-``: standard input; a bundled name works from any folder)."""
    name = display_name(source)
    try:
        stream = open_source(source)
    except UnusableInputError as exc:
        return Tally(name, kwargs.get("sink"), kwargs.get("keep_findings", True)).unusable(str(exc), exc.hint or "")
    inputs = list(kwargs.pop("inputs", ())) + [str(source) if str(source) == "-" else str(resolve_data_path(source))]
    with stream:
        return validate_stream(iter_lines(stream), name, config, inputs=inputs, **kwargs)


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
        """Check preference-pair JSONL files (- reads standard input)."""
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
