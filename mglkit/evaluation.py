"""The evaluation pipeline: suites -> scorers (the base, each adapter) -> evaluator plugins -> scores.

The model is loaded once per run: adapters are loaded onto the same base model and switched, and the
base column is that model with its adapters disabled.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from . import distributed, tasks
from .config import EvalConfig
from .errors import ConfigError, UnusableInputError
from .seen import Labels, suite_labels, with_splits
from .stats import Delta, paired_delta
from .types import EvalContext, EvalResult, Suite


@dataclass
class EvalReport:
    suite: str
    columns: list[str]
    results: dict[str, dict[str, EvalResult]]  # evaluator -> column -> result
    deltas: dict[str, dict[str, dict[str, Delta]]]  # evaluator -> column -> metric -> delta vs base
    seconds: dict[str, float]
    warnings: list[str] = field(default_factory=list)
    files: dict[str, dict] = field(default_factory=dict)  # suite file -> {"version", "sha256"}
    splits: dict[str, dict] = field(default_factory=dict)  # suite -> where seen / unseen labels came from, counts

    def metric_names(self, evaluator: str) -> list[str]:
        names: list[str] = []
        for result in self.results[evaluator].values():
            names += [m for m in result.metrics if m not in names]
        return names

    def to_dict(self) -> dict:
        return {
            "suite": {"name": self.suite, "files": self.files},
            "columns": self.columns,
            "evaluators": {
                name: {column: self._column(name, column, result) for column, result in by_column.items()}
                for name, by_column in self.results.items()
            },
            "splits": self.splits,
            "seconds": self.seconds,
            "warnings": self.warnings,
        }

    def _column(self, name: str, column: str, result: EvalResult) -> dict:
        data = {
            "metrics": {m: s.to_dict() for m, s in result.metrics.items()},
            "groups": {t: {k: s.to_dict() for k, s in g.items()} for t, g in result.groups.items()},
        }
        if column in self.deltas.get(name, {}):
            data["delta_vs_base"] = {m: d.to_dict() for m, d in self.deltas[name][column].items()}
        return data

    def markdown(self) -> str:
        from .markdown import eval_table

        return eval_table(self)


def evaluators_for(names: list[str] | None, suite: Suite, pm, several: bool = False) -> list:
    """The evaluators asked for, else every one that applies. With one suite each one asked for must
    find its parts in it; with several, each suite gets those whose parts it has."""
    if not names:
        return [e for e in pm.all("evaluator") if all(suite.has(p) for p in e.needs)]
    chosen = [pm.get("evaluator", n) for n in names]
    for evaluator in chosen:
        missing = [part for part in evaluator.needs if not suite.has(part)]
        if missing and not several:
            raise UnusableInputError(f"evaluator '{evaluator.name}' needs {missing[0]}.jsonl, which {suite.path} lacks")
    return [e for e in chosen if all(suite.has(p) for p in e.needs)]


def contamination(suites: list[Suite], train_data: list[str]) -> tuple[list[str], list[Labels | None]]:
    """Warnings (one per suite item the training data states) and each suite's seen / unseen labels:
    from the detector on ``train_data`` when given, else from the suite's manifest."""
    from .contamination_check import check, read_training

    if not train_data:
        return [], [suite_labels(suite) for suite in suites]
    training = read_training(train_data)
    warnings, labels = [], []
    for suite in suites:
        report = check(suite, train_data, training)
        warnings += report.warnings()
        labels.append(suite_labels(suite, report.labels, "--train-data " + ", ".join(train_data)))
    return warnings, labels


def _columns(config: EvalConfig, model, tokenizer, fmt, batch_size: int, pm) -> list:
    """The scorers: the base first, then one per adapter (or the adapter already in ``model``)."""
    from .models import ModelOptions, adapter_base, load_adapter, load_model
    from .prompts import PromptFormat, run_format
    from .scoring import CachedScorer, ModelScorer

    names = []
    sharded = model is None and distributed.world_size() > 1  # every process evaluates, each a share
    if model is None:
        distributed.join()  # before loading: on GPUs each process takes its own
        for adapter in config.adapters:  # a damaged adapter fails before the model loads
            adapter_base(adapter)
        formats = [run_format(adapter) for adapter in config.adapters]
        model, tokenizer = load_model(config.base, ModelOptions(config.precision), pm)
        for i, adapter in enumerate(config.adapters):
            model = load_adapter(model, adapter, config.base, adapter_name=f"adapter{i}")  # the first wraps
            names.append((Path(adapter).name or str(adapter), f"adapter{i}", formats[i]))
    else:
        names.append(("adapter", "default", fmt))
    default_fmt = next((f for _, _, f in names if f is not None), None) or PromptFormat(chat_template=True)
    base = CachedScorer(ModelScorer("base", model, tokenizer, default_fmt, None, batch_size, sharded))
    labels = [label for label, _, _ in names]
    if len(set(labels)) < len(labels):
        raise ConfigError(
            f"two adapters are named alike ({', '.join(labels)})", hint="give folders with distinct names"
        )
    return [base] + [
        CachedScorer(ModelScorer(label, model, tokenizer, f or default_fmt, adapter, batch_size, sharded))
        for label, adapter, f in names
    ]


def evaluate(
    config: EvalConfig | None = None, *, model=None, tokenizer=None, fmt=None, pm=None, **settings
) -> EvalReport:
    """Score the base model and each adapter on the suites: ``mglkit.evaluate(suites=["benchmarks"],
    base="mglkit:tiny", adapters=["runs/x"])``. ``model`` may be a PeftModel already in memory (as at
    the end of training): its ``default`` adapter is then the one column besides the base."""
    from .plugins import get_plugin_manager
    from .suites import load_suite

    config = config or EvalConfig(**settings)
    pm = pm or get_plugin_manager()
    suites = [load_suite(name, pm).limited(config.limit) for name in config.suites]
    chosen = [(suite, evaluators_for(config.evaluators, suite, pm, len(suites) > 1)) for suite in suites]
    for suite, evaluators in chosen:
        if not evaluators:
            raise UnusableInputError(f"no evaluator applies to {suite.path}", hint="see `mglkit plugins`")
    unused = sorted(set(config.evaluators or ()) - {e.name for _, evaluators in chosen for e in evaluators})
    if unused:
        raise UnusableInputError(f"evaluator '{unused[0]}' applies to none of the suites", hint="see `mglkit plugins`")
    warnings, labels = contamination(suites, config.train_data)
    columns = _columns(config, model, tokenizer, fmt, config.batch_size, pm)
    several = len(suites) > 1
    results: dict[str, dict[str, EvalResult]] = {}
    seconds: dict[str, float] = {}
    for (suite, evaluators), split in zip(chosen, labels, strict=True):
        for evaluator in evaluators:
            key = f"{suite.name}/{evaluator.name}" if several else evaluator.name
            start = time.perf_counter()
            results[key] = {}
            with tasks.progress(f"eval {key}", total=len(columns), show=distributed.is_main()) as task:
                for scorer in columns:
                    reference = None if scorer is columns[0] else columns[0]
                    context = EvalContext(reference, seed=config.seed, max_new_tokens=config.max_new_tokens)
                    result = evaluator.evaluate(scorer, suite, context)
                    results[key][scorer.name] = with_splits(result, split, config.seed)
                    task.advance()
            seconds[key] = round(time.perf_counter() - start, 2)
    files = {
        f"{suite.name}/{name}" if several else name: info for suite in suites for name, info in suite.files.items()
    }
    name = "+".join(s.name for s in suites)
    splits = {suite.name: split.to_dict() for suite, split in zip(suites, labels, strict=True) if split is not None}
    deltas = _deltas(results, config.seed)
    return EvalReport(name, [s.name for s in columns], results, deltas, seconds, warnings, files, splits)


def _deltas(results: dict[str, dict[str, EvalResult]], seed: int) -> dict:
    """Each adapter's paired difference from the base, per metric with aligned items."""
    out: dict = {}
    for name, by_column in results.items():
        base = by_column["base"].per_item
        out[name] = {
            column: {
                metric: paired_delta(base[metric], values, seed)
                for metric, values in result.per_item.items()
                if metric in base and len(values) == len(base[metric])
            }
            for column, result in by_column.items()
            if column != "base"
        }
    return out


def item_records(report: EvalReport):
    """Per-item results, each naming its evaluator and column (what ``--save-items`` writes)."""
    return (
        {"evaluator": name, "column": column, **item}
        for name, by_column in report.results.items()
        for column, result in by_column.items()
        for item in result.items
    )


def save_items(report: EvalReport, path: str | Path) -> None:
    from .pairs import write_jsonl

    write_jsonl(item_records(report), path)


def command(pm, name: str):
    """``mglkit eval SUITE...``"""
    import click

    from .cli import config_option, exit_help, given, setting_options
    from .settings import declared

    specs = declared(EvalConfig)

    @click.command(name, epilog=exit_help(None))
    @click.argument("suites", nargs=-1, required=True)
    @setting_options(specs)
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable results.")
    @click.option("--markdown", is_flag=True, help="A Markdown table (for model cards).")
    @click.option("--save-items", "items_file", type=click.Path(dir_okay=False), help="Per-item results as JSONL.")
    @click.option("--html", "html_file", type=click.Path(dir_okay=False),
                  help="Also write the evaluation as one self-contained HTML file (extra: report).")  # fmt: skip
    @config_option("eval")
    def eval_command(suites, as_json, markdown, items_file, html_file, config_file, **values):
        """Evaluate a base model and adapters side by side on suites (`benchmarks`, a folder, PREFIX:PATH)."""
        from .config import load_config
        from .outputs import refuse_input

        config = load_config(EvalConfig, config_file, suites=list(suites), **given(values, specs))
        inputs = list(config.train_data)
        for option, target in (("--save-items", items_file), ("--html", html_file)):
            if target:
                refuse_input(target, inputs, option)
        if html_file:
            from .plots import require

            require("jinja2")  # a missing extra fails now, not after the evaluation
        report = evaluate(config, pm=pm)
        if not distributed.is_main():  # launched as several processes: the main one speaks for all
            return 0
        if items_file:
            save_items(report, items_file)
        if html_file:
            from .html_report import write_report

            title = f"mglkit eval: {report.suite}"
            write_report(html_file, evals=[report.to_dict()], items=[list(item_records(report))], title=title)
        if as_json:
            from .report import write_json

            write_json(report.to_dict())
        elif markdown:
            click.echo(report.markdown())
        else:
            from .report import print_eval

            print_eval(report)
        return 0

    return eval_command
