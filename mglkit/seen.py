"""Seen / unseen: every evaluator's metrics on the items the training data states (``seen``: retention)
and on the rest (``unseen``: generalisation, the headline number), side by side.

The labels come from the suite's committed manifest (``splits.json``, as the bundled suite has) or,
when the user names training data, from the contamination detector run on it. The split is generic:
an evaluator takes part when each of its per-item results (``EvalResult.items``) names a labelled
item by ``id`` and a metric's per-item values follow those items; then ``metric[unseen]`` and
``metric[seen]`` join its metrics (and the paired deltas, computed from per-item values).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .types import EvalResult, Suite

SPLITS = ("unseen", "seen")


@dataclass
class Labels:
    """Each item's split ({item id: "seen" | "unseen"}) and where the labels come from."""

    by_id: dict[str, str]
    source: str

    def to_dict(self) -> dict:
        counts = {split: sum(label == split for label in self.by_id.values()) for split in SPLITS}
        return {"source": self.source, "counts": counts}


def suite_labels(suite: Suite, computed: dict[str, str] | None = None, source: str = "") -> Labels | None:
    """The labels ``computed`` from the user's training data when given, else those of the suite's
    manifest for the items it holds (``--limit`` keeps a few), else None (no split)."""
    from .contamination_data import SPLITS_FILE, load_splits

    if computed is not None:
        return Labels(computed, source)
    committed = load_splits(suite.path)
    if committed is None:
        return None
    present = {f["id"] for f in suite.facts} | set(suite.pair_ids()) | {p["id"] for p in suite.fluency}
    return Labels({i: label for i, label in committed.items() if i in present}, f"{suite.name}/{SPLITS_FILE}")


def split_name(metric: str, split: str) -> str:
    return f"{metric}[{split}]"


def with_splits(result: EvalResult, labels: Labels | None, seed: int = 0) -> EvalResult:
    """``result`` with each item-aligned metric also on the unseen and the seen items (a split with
    no items is left out); unchanged when its items are not all labelled."""
    from .stats import bootstrap

    ids = [item.get("id") for item in result.items]
    if labels is None or not ids or not all(i in labels.by_id for i in ids):
        return result
    metrics, per_item = {}, {}
    for metric, score in result.metrics.items():
        metrics[metric] = score
        values = result.per_item.get(metric)
        if values is None:
            continue
        per_item[metric] = values
        if len(values) != len(ids):
            continue
        for split in SPLITS:
            part = [v for v, i in zip(values, ids, strict=True) if labels.by_id[i] == split]
            if part:
                metrics[split_name(metric, split)] = bootstrap(part, seed)
                per_item[split_name(metric, split)] = part
    per_item.update({k: v for k, v in result.per_item.items() if k not in per_item})
    return dataclasses.replace(result, metrics=metrics, per_item=per_item)
