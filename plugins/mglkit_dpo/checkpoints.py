"""Checkpoints of the dpo loop: adapter weights (safetensors), the loop's state (JSON), and the
optimizer, scheduler and random state (torch's format, loaded with ``weights_only=True``)."""

from __future__ import annotations

import json
import pickle
import shutil

import torch

from mglkit import UnusableInputError, checkpoint_dirs

KEEP = 2  # checkpoints kept; older ones are deleted


def save_checkpoint(folder, model, adapter, optimizer_state, scheduler, best_adapter, engine: dict, loop_state: str):
    """Written beside, then renamed into place: a checkpoint folder is always complete. ``adapter`` is
    the adapter by parameter name and ``optimizer_state`` the engine's, both whole (gathered)."""
    from safetensors.torch import save_file

    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True, state_dict=adapter)
    if best_adapter is not None:
        save_file(best_adapter, str(tmp / "best_adapter.safetensors"))
    (tmp / "loop_state.json").write_text(loop_state)
    (tmp / "engine.json").write_text(json.dumps(engine))
    resume = {
        "optimizer": optimizer_state,
        "scheduler": scheduler.state_dict(),
        "torch_rng": torch.get_rng_state(),
    }
    torch.save(resume, tmp / "trainer_state.pt")
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    for old in checkpoint_dirs(folder.parent)[:-KEEP]:
        shutil.rmtree(old)


def load_checkpoint(folder, engine, model, optimizer, scheduler, state_class):
    """Restore the adapter, optimizer, scheduler and random state through the run's engine; returns
    the loop state (a ``state_class``) and the best adapter so far. An incomplete or foreign checkpoint,
    or one written under another engine, is a clear error."""
    from safetensors.torch import load_file

    needed = ("adapter_model.safetensors", "loop_state.json", "trainer_state.pt")
    missing = [name for name in needed if not (folder / name).is_file()]
    if missing:
        raise UnusableInputError(
            f"checkpoint {folder} is incomplete: no {', '.join(missing)}",
            hint="delete that checkpoint folder to resume from the one before it",
        )
    check_engine(folder, engine.describe())
    try:
        with torch.serialization.safe_globals(engine.safe_globals()):
            saved = torch.load(folder / "trainer_state.pt", weights_only=True, map_location="cpu")
        state = state_class(**json.loads((folder / "loop_state.json").read_text()))
        engine.load_state(model, optimizer, load_file(str(folder / "adapter_model.safetensors")), saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        torch.set_rng_state(saved["torch_rng"])
    except (pickle.UnpicklingError, RuntimeError, ValueError, KeyError, TypeError) as exc:
        raise UnusableInputError(
            f"cannot resume from {folder}: {str(exc).splitlines()[0]}",
            hint="it is damaged, or was not written by mglkit's dpo trainer",
        ) from None
    best = folder / "best_adapter.safetensors"
    return state, (load_file(str(best)) if best.is_file() else None)


def check_engine(folder, running: dict) -> None:
    """Optimizer state is kept as the engine keeps it, and the batches a step saw depend on the number
    of processes: resume under the same engine and process count (checkpoints written before engines
    were recorded are plain ones, of any count)."""
    path = folder / "engine.json"
    written = json.loads(path.read_text()) if path.is_file() else {"engine": "none", "format": "plain"}
    same_count = written.get("world_size", running["world_size"]) == running["world_size"]
    if written["format"] != running["format"] or not same_count:
        raise UnusableInputError(
            f"checkpoint {folder} was written under {_said(written)}; this launch is {_said(running)}",
            hint="resume with the launch the run started with (the same accelerate config and process count)",
        )


def _said(engine: dict) -> str:
    count = engine.get("world_size")
    processes = "one process" if count == 1 else f"{count} processes" if count else "processes"
    return processes if engine["format"] == "plain" else f"{engine['engine']} ({engine['format']}) over {processes}"
