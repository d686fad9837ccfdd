"""Checkpoints of the dpo loop: adapter weights (safetensors), the loop's state (JSON), and the
optimizer, scheduler and random state (torch's format, loaded with ``weights_only=True``)."""

from __future__ import annotations

import json
import pickle
import shutil

import torch

from mglkit import UnusableInputError, checkpoint_dirs

KEEP = 2  # checkpoints kept; older ones are deleted


def save_checkpoint(folder, model, optimizer, scheduler, loop_state: str, best_adapter) -> None:
    """Written beside, then renamed into place: a checkpoint folder is always complete."""
    from safetensors.torch import save_file

    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    if best_adapter is not None:
        save_file(best_adapter, str(tmp / "best_adapter.safetensors"))
    (tmp / "loop_state.json").write_text(loop_state)
    resume = {
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "torch_rng": torch.get_rng_state(),
    }
    torch.save(resume, tmp / "trainer_state.pt")
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    for old in checkpoint_dirs(folder.parent)[:-KEEP]:
        shutil.rmtree(old)


def load_checkpoint(folder, model, optimizer, scheduler, state_class):
    """Restore the adapter, optimizer, scheduler and random state; returns the loop state (a
    ``state_class``) and the best adapter so far. An incomplete or foreign checkpoint is a clear error."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    needed = ("adapter_model.safetensors", "loop_state.json", "trainer_state.pt")
    missing = [name for name in needed if not (folder / name).is_file()]
    if missing:
        raise UnusableInputError(
            f"checkpoint {folder} is incomplete: no {', '.join(missing)}",
            hint="delete that checkpoint folder to resume from the one before it",
        )
    try:
        saved = torch.load(folder / "trainer_state.pt", weights_only=True, map_location="cpu")
        state = state_class(**json.loads((folder / "loop_state.json").read_text()))
        set_peft_model_state_dict(model, load_file(str(folder / "adapter_model.safetensors")))
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        torch.set_rng_state(saved["torch_rng"])
    except (pickle.UnpicklingError, RuntimeError, ValueError, KeyError, TypeError) as exc:
        raise UnusableInputError(
            f"cannot resume from {folder}: {str(exc).splitlines()[0]}",
            hint="it is damaged, or was not written by mglkit's dpo trainer",
        ) from None
    best = folder / "best_adapter.safetensors"
    return state, (load_file(str(best)) if best.is_file() else None)
