"""The reference log-probabilities of a run, kept on disk under a key that names everything they
depend on, so a later run with the same base, data and numerics skips the reference forward.

A key is reused only when every component is equal (the file holds its components, checked on
load besides the file name): the base model's identity, the tokenized sequences, precision,
quantization, attention implementation, device type, the torch and transformers versions, anything
the caller adds in ``extra`` (e.g. padded or packed batches), and ``CACHE_FORMAT``. Files are
safetensors, written whole or not at all. Locking and ``--no-ref-cache`` are the caller's.
"""

from __future__ import annotations

import hashlib
import json
import struct
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


def _folder_files(folder: Path) -> list[dict]:
    files = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if path.suffix not in WEIGHT_SUFFIXES and path.name not in DESCRIBING_FILES:
            continue
        stat = path.stat()
        entry = {"name": path.relative_to(folder).as_posix(), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
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
