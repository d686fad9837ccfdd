"""The evaluation pipeline: suite -> scorers (base, each adapter) -> evaluator plugins -> scores.

A model is loaded once per run: adapters are loaded onto the same base model and switched; the
base column is the same model with adapters disabled.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError, MglkitError
from .mongolian import normalize_for_compare
from .stats import Delta, Score, bootstrap, paired_delta


@dataclass
class EvalResult:
    """One evaluator's scores for one column (model)."""

    evaluator: str
    column: str
    metrics: dict[str, Score]
    per_item: dict[str, list[float]]  # aligned across columns: what paired deltas resample
    items: list[dict] = field(default_factory=list)
    groups: dict[str, dict[str, Score]] = field(default_factory=dict)

    @classmethod
    def from_values(cls, evaluator, column, values: dict[str, list[float]], items, groups=None, seed: int = 0):
        metrics = {name: bootstrap(v, seed) for name, v in values.items()}
        grouped = {
            title: {key: bootstrap(v, seed) for key, v in parts.items() if v} for title, parts in (groups or {}).items()
        }
        return cls(evaluator, column, metrics, values, items, grouped)


@dataclass
class Context:
    reference: object | None  # the base model's scorer, for metrics measured against it
    seed: int = 0
    max_new_tokens: int = 32


@dataclass
class EvalReport:
    suite: str
    columns: list[str]
    results: dict[str, dict[str, EvalResult]]  # evaluator -> column -> result
    deltas: dict[str, dict[str, dict[str, Delta]]]  # evaluator -> column -> metric -> delta vs base
    seconds: dict[str, float]
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "suite": self.suite,
            "columns": self.columns,
            "evaluators": {
                name: {
                    column: {
                        "metrics": {m: s.to_dict() for m, s in r.metrics.items()},
                        "groups": {t: {k: s.to_dict() for k, s in g.items()} for t, g in r.groups.items()},
                        **(
                            {"delta_vs_base": {m: d.to_dict() for m, d in self.deltas[name][column].items()}}
                            if column in self.deltas.get(name, {})
                            else {}
                        ),
                    }
                    for column, r in by_column.items()
                }
                for name, by_column in self.results.items()
            },
            "seconds": self.seconds,
            "warnings": self.warnings,
        }

    def markdown(self) -> str:
        head = "| evaluator | metric | " + " | ".join(self.columns) + " |"
        lines = [head, "|---|---|" + "---:|" * len(self.columns)]
        for name, by_column in self.results.items():
            for metric in _metric_order(by_column):
                cells = []
                for column in self.columns:
                    score = by_column[column].metrics.get(metric)
                    cell = _fmt_score(score) if score else "—"
                    delta = self.deltas.get(name, {}).get(column, {}).get(metric)
                    if delta is not None:
                        cell += f" ({delta.value:+.3f}{'*' if delta.significant else ''})"
                    cells.append(cell)
                lines.append(f"| {name} | {metric} | " + " | ".join(cells) + " |")
        lines.append("")
        lines.append("Values are means with 95% bootstrap intervals; (Δ) is the paired difference from the base "
                     "model, * when its 95% interval excludes zero.")  # fmt: skip
        return "\n".join(lines)


def _fmt_score(score: Score) -> str:
    return f"{score.value:.3f} [{score.low:.3f}, {score.high:.3f}]"


def _metric_order(by_column: dict[str, EvalResult]) -> list[str]:
    names: list[str] = []
    for result in by_column.values():
        names += [m for m in result.metrics if m not in names]
    return names


class CachedScorer:
    """Memoises log-likelihoods, so a base column scored once serves as every adapter's reference."""

    def __init__(self, scorer):
        self.inner = scorer
        self.name = scorer.name
        self._cache: dict = {}

    def prompt(self, question):
        return self.inner.prompt(question)

    def loglikelihood(self, requests):
        missing = [r for r in dict.fromkeys(requests) if r not in self._cache]
        if missing:
            self._cache.update(zip(missing, self.inner.loglikelihood(missing), strict=True))
        return [self._cache[r] for r in requests]

    def generate(self, prompts, max_new_tokens):
        return self.inner.generate(prompts, max_new_tokens)


def _word_matches(word: str, alias: str) -> bool:
    if alias.isdigit():  # a year must be that year: 1206 matches "1206", "1206-д", never "12060"
        return word == alias or (word.startswith(alias) and not word[len(alias)].isdigit())
    # Mongolian adds case endings: "Чингисийн" answers "Чингис", "онд" answers "он"
    return word == alias or (word.startswith(alias) and len(word) - len(alias) <= 4)


def matches_alias(answer: str, aliases: list[str]) -> bool:
    """Whether a generated answer contains one of the aliases (case, punctuation and case endings
    ignored; numbers matched whole)."""
    words = normalize_for_compare(answer).split()
    for alias in aliases:
        target = normalize_for_compare(alias).split()
        if not target:
            continue
        for start in range(len(words) - len(target) + 1):
            if all(_word_matches(w, a) for w, a in zip(words[start : start + len(target)], target, strict=True)):
                return True
    return False


def get_evaluators(names: list[str] | None, suite, pm) -> list:
    registered = pm.collect("register_evaluators")
    if names:
        unknown = [n for n in names if n not in registered]
        if unknown:
            raise ConfigError(f"unknown evaluator '{unknown[0]}'", hint="installed: " + ", ".join(sorted(registered)))
        chosen = [registered[n].obj for n in names]
        for evaluator in chosen:
            missing = [part for part in evaluator.needs if not suite.has(part)]
            if missing:
                raise MglkitError(f"evaluator '{evaluator.name}' needs {missing[0]}.jsonl, which {suite.path} lacks")
        return chosen
    return [item.obj for item in registered.values() if all(suite.has(p) for p in item.obj.needs)]


def overlap_warnings(suite, train_data: str | Path) -> list[str]:
    """Suite items whose wording overlaps the training data (word 3-gram Jaccard >= 0.5)."""
    from .overlap import leaks
    from .pairs import load_pairs

    training = [(f"line {p.line}", text) for p in load_pairs(train_data) for text in (p.prompt, p.chosen)]
    items = [(p.extra.get("id", f"pair {i + 1}"), t) for i, p in enumerate(suite.pairs) for t in (p.prompt, p.chosen)]
    items += [(f["id"], f["question"]) for f in suite.facts]
    items += [(r["id"], r["text"]) for r in suite.fluency if "degraded" not in r]
    found = leaks(items, training)
    return [
        f"{item} overlaps {train_data} {where} (word 3-gram Jaccard {similarity:.2f})"
        for item, where, similarity in found
    ]


def evaluate(
    suite_name: str,
    base: str,
    adapters: list[str] = (),
    evaluators: list[str] | None = None,
    limit: int | None = None,
    seed: int = 0,
    max_new_tokens: int = 32,
    precision: str = "auto",
    batch_size: int = 16,
    train_data: str | None = None,
    model=None,
    tokenizer=None,
    fmt=None,
    pm=None,
) -> EvalReport:
    """Score the base model and each adapter on a suite. ``model`` may be a PeftModel already in
    memory (as at the end of training): its ``default`` adapter is then the one column besides base."""
    from .models import ModelOptions, PromptFormat, load_adapter, load_model, run_format
    from .plugins import get_plugin_manager
    from .scoring import ModelScorer
    from .suites import load_suite

    pm = pm or get_plugin_manager()
    suite = load_suite(suite_name, pm).limited(limit)
    chosen = get_evaluators(evaluators, suite, pm)
    if not chosen:
        raise MglkitError(f"no evaluator applies to {suite.path}")
    warnings = overlap_warnings(suite, train_data) if train_data else []
    names = []
    if model is None:
        model, tokenizer = load_model(base, ModelOptions(precision), pm)
        for i, adapter in enumerate(adapters):
            name = f"adapter{i}"
            model = load_adapter(model, adapter, base, adapter_name=name)  # the first wraps, the others join
            names.append((Path(adapter).name or str(adapter), name, run_format(adapter)))
    else:
        names.append(("adapter", "default", fmt))
    default_fmt = next((f for _, _, f in names if f is not None), None) or PromptFormat(chat_template=True)
    base_scorer = CachedScorer(ModelScorer("base", model, tokenizer, default_fmt, None, batch_size))
    columns = [base_scorer] + [
        CachedScorer(ModelScorer(label, model, tokenizer, f or default_fmt, adapter_name, batch_size))
        for label, adapter_name, f in names
    ]
    results: dict[str, dict[str, EvalResult]] = {}
    seconds: dict[str, float] = {}
    for evaluator in chosen:
        start = time.perf_counter()
        results[evaluator.name] = {}
        for scorer in columns:
            reference = None if scorer is base_scorer else base_scorer
            context = Context(reference=reference, seed=seed, max_new_tokens=max_new_tokens)
            results[evaluator.name][scorer.name] = evaluator.evaluate(scorer, suite, context)
        seconds[evaluator.name] = round(time.perf_counter() - start, 2)
    deltas = {
        name: {
            column: {
                metric: paired_delta(by_column["base"].per_item[metric], values, seed)
                for metric, values in result.per_item.items()
                if metric in by_column["base"].per_item and len(values) == len(by_column["base"].per_item[metric])
            }
            for column, result in by_column.items()
            if column != "base"
        }
        for name, by_column in results.items()
    }
    return EvalReport(suite.name, [s.name for s in columns], results, deltas, seconds, warnings)


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
