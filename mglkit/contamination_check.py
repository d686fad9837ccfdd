"""Which items of a suite the user's training data states: the contamination detector
(:mod:`mglkit.contamination`) on a suite and training files, each item with its strongest evidence.
Used by ``mglkit contamination`` and by ``mglkit eval --train-data`` (warnings, seen / unseen labels).

Retrieval questions are not checked: their answers are corpus passages by design, and retrieval does
not depend on the model.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .contamination_data import SPLIT_KINDS, Match, TrainingText
from .types import Suite


@dataclass
class ContaminationReport:
    suite: str
    training: list[str]
    checked: dict[str, int]  # kind -> items checked
    found: dict[str, list[Match]]  # contaminated item id -> its matches, strongest first (in suite order)
    labels: dict[str, str]  # item id -> "seen" | "unseen"
    kinds: dict[str, str]  # item id -> kind

    def strongest(self) -> list[Match]:
        return [matches[0] for matches in self.found.values()]

    def warnings(self) -> list[str]:
        """One line per contaminated item, naming the item and its strongest evidence."""
        return [f"{m.item_id} is in the training data: {m.where} {m.reason} «{m.snippet}»" for m in self.strongest()]

    def to_dict(self) -> dict:
        contaminated = {kind: sum(self.kinds[i] == kind for i in self.found) for kind in self.checked}
        items = [
            {"id": m.item_id, "kind": self.kinds[m.item_id], "training_id": m.training_id, "where": m.where,
             "signal": m.signal, "score": m.score, "reason": m.reason, "snippet": m.snippet,
             "matches": len(self.found[m.item_id])}
            for m in self.strongest()
        ]  # fmt: skip
        return {"suite": self.suite, "training": self.training, "checked": self.checked,
                "contaminated": contaminated, "items": items}  # fmt: skip


def read_training(files: list[str]) -> list[TrainingText]:
    """The training texts of every file (or folder of JSONL files) given; a bundled name such as
    ``data/mgl_history_grpo.jsonl`` works from any folder, as ``--dataset`` does."""
    from .contamination_data import training_texts
    from .resources import resolve_data_path

    return [text for file in files for text in training_texts(resolve_data_path(file))]


def check(suite: Suite, files: list[str], training: list[TrainingText] | None = None) -> ContaminationReport:
    """The suite's facts, pairs and fluent passages against the training files (``training``: their
    texts, when already read)."""
    from .contamination import by_item, detect, items_from_suite, splits

    items = [item for item in items_from_suite(suite) if item.kind in SPLIT_KINDS]
    matches = detect(items, read_training(files) if training is None else training)
    found = by_item(matches)
    labels = {item: split for kind in splits(items, matches).values() for item, split in kind.items()}
    checked = {kind: n for kind in SPLIT_KINDS if (n := sum(item.kind == kind for item in items))}
    order = {item.id: number for number, item in enumerate(items)}
    found = dict(sorted(found.items(), key=lambda pair: order[pair[0]]))
    kinds = {item.id: item.kind for item in items}
    return ContaminationReport(suite.name, [str(f) for f in files], checked, found, labels, kinds)


def command(pm, name: str):
    """``mglkit contamination SUITE --train-data FILE...``"""
    import click

    from .cli import exit_help, given, setting_options
    from .config import EvalConfig
    from .settings import declared

    (spec,) = [s for s in declared(EvalConfig) if s.name == "train_data"]
    spec = dataclasses.replace(
        spec, help="Training data: pairs in any data format, or facts or a corpus as JSONL; repeatable."
    )

    @click.command(name, epilog=exit_help("some suite items are in the training data"))
    @click.argument("suite")
    @setting_options([spec])
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable results.")
    def contamination(suite, as_json, **values):
        """Which suite items (facts, pairs, fluency passages) training data states, in any words."""
        from .suites import load_suite

        files = given(values, [spec]).get("train_data")
        if not files:
            raise click.UsageError("give the training data: --train-data FILE (repeat for several)")
        report = check(load_suite(suite, pm), files)
        if as_json:
            from .report import write_json

            write_json(report.to_dict())
        else:
            from .report import print_contamination

            print_contamination(report)
        return 1 if report.found else 0

    return contamination
