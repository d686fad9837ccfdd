"""The reference log-prob cache: keys that change with every component, exact-key loads, atomic files."""

import dataclasses
import json
import os
import time

import pytest
import torch
from safetensors.torch import save_file

from mglkit.preference import TokenizedPair
from mglkit.refcache import (
    CACHE_FORMAT,
    ReferenceKey,
    cache_file,
    load_reference,
    model_identity,
    save_reference,
    sequences_digest,
)

PAIRS = [TokenizedPair([1, 5, 9], [12, 13, 2], [14, 2]), TokenizedPair([1, 7], [3, 2], [4, 4, 2])]
LOGPS = {"train_chosen": torch.tensor([-3.5, -2.25]), "train_rejected": torch.tensor([-4.0, -6.5])}


@pytest.fixture
def base(tmp_path):
    """A local model folder: config, two safetensors shards and their index."""
    folder = tmp_path / "base"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "mistral", "hidden_size": 8}))
    save_file({"a": torch.zeros(4, 8)}, str(folder / "model-00001-of-00002.safetensors"))
    save_file({"b": torch.zeros(8, 8)}, str(folder / "model-00002-of-00002.safetensors"))
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"a": "1", "b": "2"}}))
    (folder / "README.md").write_text("notes")
    return folder


def key(model, **changes) -> ReferenceKey:
    fields = dict(model=model, sequences=sequences_digest(PAIRS), precision="fp32", quantization=None,
                  attention="sdpa", device_type="cpu")  # fmt: skip
    return ReferenceKey(**{**fields, **changes})


def test_folder_identity_follows_weights_headers_and_config(base):
    first = model_identity(str(base))
    assert model_identity(str(base)) == first
    assert [f["name"] for f in first["files"]] == [
        "config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
        "model.safetensors.index.json",
    ]  # fmt: skip
    (base / "README.md").write_text("other notes")  # not a weight or config file
    assert model_identity(str(base)) == first

    shard = base / "model-00002-of-00002.safetensors"
    os.utime(shard, ns=(shard.stat().st_atime_ns, shard.stat().st_mtime_ns + 1))
    touched = model_identity(str(base))
    assert touched != first
    mtime = shard.stat().st_mtime_ns
    save_file({"c": torch.zeros(8, 8)}, str(shard))  # same size, another tensor name: another header
    os.utime(shard, ns=(mtime, mtime))
    renamed = model_identity(str(base))
    assert renamed != touched and renamed["files"][2]["size"] == touched["files"][2]["size"]
    (base / "config.json").write_text(json.dumps({"model_type": "mistral", "hidden_size": 9}))
    assert model_identity(str(base)) != renamed

    # other values under the same size, mtime and header (a copy made with cp -p): its ctime tells
    before, data, mtime = model_identity(str(base)), bytearray(shard.read_bytes()), shard.stat().st_mtime_ns
    data[-1] ^= 1
    time.sleep(0.05)  # past the clock's tick: ctime is coarse-grained on some filesystems
    shard.write_bytes(bytes(data))
    os.utime(shard, ns=(mtime, mtime))
    assert model_identity(str(base)) != before


def test_hub_identity_needs_the_resolved_commit():
    assert model_identity("org/model-that-is-not-a-folder") is None  # "main" moves: never cached
    assert model_identity("org/model", revision="main", commit="a" * 40) == {
        "hub_id": "org/model", "revision": "main", "commit": "a" * 40,
    }  # fmt: skip


def test_sequences_digest_sees_every_token_and_every_boundary():
    digest = sequences_digest(PAIRS)
    moved = [TokenizedPair([1, 5], [9, 12, 13, 2], [14, 2]), PAIRS[1]]  # same tokens, another prompt cut
    changed = [PAIRS[0], TokenizedPair([1, 7], [3, 2], [4, 5, 2])]
    truncated = [PAIRS[0], TokenizedPair([1, 7], [3, 2], [4, 4])]
    assert len({digest, sequences_digest(moved), sequences_digest(changed), sequences_digest(truncated)}) == 4
    assert sequences_digest(list(reversed(PAIRS))) != digest


def test_saved_logps_load_under_the_same_key_only(tmp_path, base):
    saved = key(model_identity(str(base)))
    folder = tmp_path / "cache"
    path = save_reference(folder, saved, LOGPS)
    assert path == cache_file(folder, saved) and sorted(p.name for p in folder.iterdir()) == [path.name]
    loaded = load_reference(folder, key(model_identity(str(base))))
    assert loaded.keys() == LOGPS.keys() and all(torch.equal(loaded[k], LOGPS[k]) for k in LOGPS)

    stale = {
        "model": model_identity("org/model", commit="b" * 40),
        "sequences": sequences_digest(PAIRS[:1]),
        "precision": "bf16",
        "quantization": "4bit",
        "attention": "eager",
        "device_type": "cuda",
        "extra": {"packed": True},
        "libraries": {**saved.libraries, "transformers": "0.0.0"},
        "cache_format": CACHE_FORMAT + 1,
    }
    assert stale.keys() == {f.name for f in dataclasses.fields(ReferenceKey)}  # every component is tried
    for name, value in stale.items():
        assert load_reference(folder, dataclasses.replace(saved, **{name: value})) is None, name


def test_a_file_whose_stored_key_differs_or_is_damaged_is_a_miss(tmp_path):
    saved = key(model_identity("org/model", commit="c" * 40))
    other = dataclasses.replace(saved, precision="bf16")
    folder = tmp_path / "cache"
    save_reference(folder, saved, LOGPS).rename(cache_file(folder, other))  # right name, wrong contents
    assert load_reference(folder, other) is None
    cache_file(folder, saved).write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    assert load_reference(folder, saved) is None
    save_reference(folder, saved, LOGPS)  # written anew over the damaged file
    assert torch.equal(load_reference(folder, saved)["train_rejected"], LOGPS["train_rejected"])
