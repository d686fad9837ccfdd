"""The reference log-probabilities of a run, kept on disk under a key that names everything they
depend on, so a later run with the same base, data and numerics skips the reference forward.

A key is reused only when every component is equal (the file holds its components, checked on
load besides the file name): the base model's identity, the tokenized sequences, precision,
quantization, attention implementation, device type, the torch and transformers versions, anything
the caller adds in ``extra`` (e.g. padded or packed batches), and ``CACHE_FORMAT``. Files are
safetensors, written whole or not at all, one entry a folder under ``cache_root()/reference``,
built under the entry's lock (``reuse_or_compute``: a second run with the same key waits, then reuses).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import struct
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .outputs import write_file

CACHE_FORMAT = 1  # bump when the file layout or the log-prob computation changes
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
DESCRIBING_FILES = ("config.json", "model.safetensors.index.json", "pytorch_model.bin.index.json")
METADATA_KEY = "mglkit.refcache"


def model_identity(name: str, *, revision: str | None = None, commit: str | None = None) -> dict | None:
    """Who the base model is, without reading its weights.

    A local folder: each weight file's name, size and modification time, the header of each
    safetensors file (names, dtypes, shapes, offsets) and the configuration files' contents. A hub
    id: the id, the revision asked for and the commit it resolved to (``model.config._commit_hash``
    after ``from_pretrained``); without a commit the identity is unknown (a branch moves), and so is
    a model-source name that is not a folder: None, and the caller does not cache.
    """
    folder = Path(name)
    if folder.is_dir():
        return {"folder": str(folder.resolve()), "files": _folder_files(folder)}
    if commit is None:
        return None
    return {"hub_id": name, "revision": revision, "commit": commit}


def base_identity(name: str, model, pm=None) -> dict | None:
    """The identity of a run's base model: for a model-source name (``mglkit:tiny``), the folder its
    source says the weights load from (an optional ``folder(name)`` method; none: unknown); for a
    local folder, its files; for a hub id, the commit it was loaded at (``config._commit_hash``)."""
    from .models import find_model_source

    source = find_model_source(name, pm)
    if source is not None:
        locate = getattr(source, "folder", None)
        folder = locate(name) if locate is not None else None
        return model_identity(str(folder)) if folder is not None and Path(folder).is_dir() else None
    return model_identity(name, commit=getattr(getattr(model, "config", None), "_commit_hash", None))


def _folder_files(folder: Path) -> list[dict]:
    files = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if path.suffix not in WEIGHT_SUFFIXES and path.name not in DESCRIBING_FILES:
            continue
        stat = path.stat()
        # ctime and inode too: a copy that kept size and mtime (cp -p, rsync -a) still changes them
        entry = {"name": path.relative_to(folder).as_posix(), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
                 "ctime_ns": stat.st_ctime_ns, "inode": stat.st_ino}  # fmt: skip
        if path.suffix == ".safetensors":
            entry["header_sha256"] = _sha256(safetensors_header(path))
        elif path.name in DESCRIBING_FILES:
            entry["sha256"] = _sha256(path.read_bytes())
        files.append(entry)
    return files


def safetensors_header(path: Path) -> bytes:
    """The JSON header of a safetensors file (an 8-byte little-endian length, then the header)."""
    with path.open("rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            return prefix
        (length,) = struct.unpack("<Q", prefix)
        return handle.read(min(length, 100_000_000))


def sequences_digest(pairs) -> str:
    """A hash of the token ids the reference sees (``TokenizedPair``s after truncation): the
    tokenizer, chat template, truncation rule and max length all show up in it."""
    digest = hashlib.sha256()
    for pair in pairs:
        for ids in (pair.prompt_ids, pair.chosen_ids, pair.rejected_ids):
            digest.update(struct.pack(f"<Q{len(ids)}q", len(ids), *ids))
    return digest.hexdigest()


@dataclass(frozen=True)
class ReferenceKey:
    model: dict  # model_identity(...)
    sequences: str  # sequences_digest(...)
    precision: str  # fp32 / bf16 / fp16
    quantization: str | None  # None or "4bit"
    attention: str  # mglkit.logprobs.attention_implementation(model)
    device_type: str  # cpu / cuda / ...
    extra: dict = field(default_factory=dict)
    libraries: dict = field(default_factory=lambda: _library_versions())
    cache_format: int = CACHE_FORMAT

    def components(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    def digest(self) -> str:
        return _sha256(self.components().encode())


def job_key(job, model, pairs, **extra) -> ReferenceKey | None:
    """The key of a trainer's reference log-probs of ``pairs`` (``TokenizedPair``s as the reference
    sees them) for a TrainJob; ``extra`` names whatever else of the trainer changes them (batch size,
    padding-free batches, truncation). None, so nothing is cached, under ``--no-ref-cache`` or when
    the base model's identity is unknown."""
    from .logprobs import attention_implementation

    if not getattr(job.options, "ref_cache", False) or job.base_identity is None:
        return None
    return ReferenceKey(
        model=job.base_identity,
        sequences=sequences_digest(pairs),
        precision=job.precision,
        quantization=job.config.quantize,
        attention=attention_implementation(model),
        device_type=job.device,
        extra=extra,
    )


def reuse_or_compute(key: ReferenceKey | None, compute: Callable[[], dict]) -> tuple[dict, bool, bool]:
    """The tensors saved under ``key`` by an earlier run, else ``compute()``'s (saved under it); whether
    they were reused; and whether this process saved them. ``key`` None: computed, never saved.

    Every process calls this, and ``compute`` (which may share the work out between them) returns
    the same tensors on each. The main process looks the key up and writes the entry, holding the
    entry's lock from the look-up to the write: a second run with the same key waits, then reuses.
    A cache folder that cannot be written is a note, and the run goes on without it.
    """
    from . import distributed
    from .outputs import cache_entry
    from .resources import cache_root
    from .tasks import note

    if key is None:
        return compute(), False, False
    folder = cache_root() / "reference" / key.digest()
    with contextlib.ExitStack() as stack:
        build, found = None, None
        if distributed.is_main():
            ready = lambda entry: load_reference(entry, key) is not None  # noqa: E731
            try:
                build = stack.enter_context(cache_entry(folder, ready, "reference log-probs", on_wait=note))
                found = load_reference(folder, key) if build is None else None
            except OSError as exc:
                note(f"reference log-probs are not cached: {folder.parent}: {exc.strerror}")
                stack.close()
                build = None
        found = distributed.broadcast(found)
        if found is not None:
            return found, True, False
        tensors = compute()
        if build is not None:
            save_reference(build, key, tensors)
        return tensors, False, build is not None


def timing(passes) -> dict:
    """What training_stats.json records of a run's reference passes, each (seconds, reused)."""
    passes = list(passes)
    if not passes:
        return {}
    return {"reference_seconds": round(sum(s for s, _ in passes), 3), "reference_reused": all(r for _, r in passes)}


def cache_file(folder: str | Path, key: ReferenceKey) -> Path:
    return Path(folder) / f"reference-{key.digest()}.safetensors"


def save_reference(folder: str | Path, key: ReferenceKey, logps: dict) -> Path:
    """Write ``logps`` (name -> tensor, e.g. ``chosen``/``rejected`` of the train and eval sets)."""
    from safetensors.torch import save

    tensors = {name: value.detach().cpu().contiguous() for name, value in logps.items()}
    target = cache_file(folder, key)
    with write_file(target) as handle:
        handle.write(save(tensors, metadata={METADATA_KEY: key.components()}))
    return target


def load_reference(folder: str | Path, key: ReferenceKey) -> dict | None:
    """The tensors saved under exactly this key, or None (missing, another key, or unreadable)."""
    from safetensors import SafetensorError
    from safetensors.torch import safe_open

    path = cache_file(folder, key)
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as handle:
            if (handle.metadata() or {}).get(METADATA_KEY) != key.components():
                return None
            return {name: handle.get_tensor(name) for name in handle.keys()}
    except (SafetensorError, OSError, ValueError):  # a damaged file is a miss, and is written anew
        return None


def _library_versions() -> dict:
    import torch
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
