"""Sources read through the ``datasets`` library (extra: data): a ``save_to_disk`` folder, and a Hub
dataset named ``hf:ORG/NAME`` (streamed with ``load_dataset(streaming=True)``, with a split and a
subset). Both are read as Arrow batches of ``CHUNK`` rows, never whole.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from .errors import UnusableInputError
from .pairs import display_name
from .source_chunks import CHUNK, Chunk, arrow_chunks
from .source_files import need
from .sources import HF_PREFIX, Source, SourceSpec

_TRUE = ("1", "true", "yes", "on")


def pick_split(splits: list[str], spec: SourceSpec) -> str:
    if spec.split is not None:
        if spec.split not in splits:
            raise UnusableInputError(f"{spec.name}: no split '{spec.split}'", hint="splits: " + ", ".join(splits))
        return spec.split
    if len(splits) == 1:
        return splits[0]
    raise UnusableInputError(f"{spec.name}: has splits {', '.join(splits)}", hint="choose one with --split")


def _batches(tables: Iterable) -> Iterator:
    for table in tables:
        yield from table.to_batches(max_chunksize=CHUNK)


def saved_dataset_source(folder: Path, spec: SourceSpec) -> Source:
    """A ``datasets.save_to_disk`` folder (a Dataset, or a DatasetDict and its split)."""
    datasets = need("datasets", "a save_to_disk folder", spec.name)
    try:
        dataset = datasets.load_from_disk(str(folder))
    except (FileNotFoundError, ValueError, OSError) as exc:
        raise UnusableInputError(f"{spec.name}: not a readable datasets folder ({exc})") from None
    if isinstance(dataset, datasets.DatasetDict):
        dataset = dataset[pick_split(list(dataset), spec)]
    file = display_name(spec.name)

    def chunks() -> Iterator[Chunk]:
        tables = dataset.with_format("arrow").iter(batch_size=CHUNK)
        yield from arrow_chunks(_batches(tables), file, spec.columns)

    return Source(file, "datasets", chunks, sorted(folder.rglob("*.arrow")))


def hub_source(spec: SourceSpec) -> Source:
    """``hf:ORG/NAME`` through ``datasets.load_dataset(streaming=True)``: the Hub, its local cache,
    or a local folder laid out as a Hub dataset repository."""
    repo = spec.name[len(HF_PREFIX) :]
    datasets = need("datasets", "a Hugging Face dataset", spec.name)
    options = {"split": spec.split} if spec.split else {}
    try:
        dataset = datasets.load_dataset(repo, spec.subset, streaming=True, **options)
    except ConnectionError as exc:
        raise _unreachable(spec, exc) from None
    except (FileNotFoundError, ValueError) as exc:
        raise UnusableInputError(f"{spec.name}: cannot load: {exc}", hint="check the name, subset and split") from None
    except Exception as exc:  # datasets raises its own errors for unknown or gated repositories
        if not type(exc).__module__.startswith(("datasets", "huggingface_hub")):
            raise
        raise UnusableInputError(f"{spec.name}: cannot load: {exc}", hint="check the name and your access") from None
    if isinstance(dataset, datasets.IterableDatasetDict):
        dataset = dataset[pick_split(list(dataset), spec)]
    file = spec.name

    def chunks() -> Iterator[Chunk]:
        try:
            tables = dataset.with_format("arrow").iter(batch_size=CHUNK)
            yield from arrow_chunks(_batches(tables), file, spec.columns)
        except (ConnectionError, FileNotFoundError) as exc:
            raise UnusableInputError(f"{file}: cannot read: {exc}", hint="check the network or the cache") from None

    return Source(file, "hf", chunks)


def _unreachable(spec: SourceSpec, exc: Exception) -> UnusableInputError:
    """Not cached and not downloadable: say which setting forbids the download, if one does."""
    offline = [v for v in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE") if os.environ.get(v, "").lower() in _TRUE]
    if offline:
        return UnusableInputError(
            f"{spec.name}: not in the local dataset cache, and {offline[0]}=1 forbids downloading it",
            hint=f"unset {' and '.join(offline)} to download it once, or give a local path",
        )
    return UnusableInputError(f"{spec.name}: cannot load: {exc}", hint="check the name and the network")
