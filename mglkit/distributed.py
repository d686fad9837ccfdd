"""The little mglkit itself needs of several processes (``accelerate launch``, ``torchrun``, ``srun``):
which process this is, which engine the launcher asked for, a decision the main process takes for
all of them, and one failure that ends every process.

Ranks and the world size come from ``torch.distributed`` once the process group exists (accelerate
reports one process on every rank under DeepSpeed on a CPU-only machine), else from the launcher's
environment. A process that fails says so through the launcher's key-value store; every other
process watches that store and ends within a second with the same one-line message and exit code,
instead of waiting in a collective for a peer that is gone.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

from .errors import ConfigError, MglkitError

POLL_SECONDS = 0.25


def _group():
    """torch.distributed when it is imported and its default group exists (never imports torch)."""
    dist = sys.modules.get("torch.distributed")
    return dist if dist is not None and dist.is_available() and dist.is_initialized() else None


def rank() -> int:
    dist = _group()
    return dist.get_rank() if dist else int(os.environ.get("RANK", "0"))


def world_size() -> int:
    dist = _group()
    return dist.get_world_size() if dist else int(os.environ.get("WORLD_SIZE", "1"))


def is_main() -> bool:
    return rank() == 0


def requested_engine() -> str:
    """The engine the launcher's configuration asks for: ``accelerate launch --config_file`` sets
    ACCELERATE_USE_DEEPSPEED or ACCELERATE_USE_FSDP; several processes without either are DDP."""
    if os.environ.get("ACCELERATE_USE_MEGATRON_LM", "").lower() == "true":
        raise ConfigError("the launcher asks for Megatron-LM, which mglkit does not run",
                          hint="use a config of examples/accelerate/: DDP, FSDP2 or DeepSpeed ZeRO")  # fmt: skip
    if os.environ.get("ACCELERATE_USE_DEEPSPEED", "").lower() == "true":
        return "deepspeed"
    if os.environ.get("ACCELERATE_USE_FSDP", "").lower() == "true":
        return "fsdp"
    return "ddp" if world_size() > 1 else "none"


def resolved_precision(precision: str, device_type: str | None = None) -> str:
    """``--precision auto`` as a run on this machine resolves it: bf16 where supported, else fp16 on a
    GPU, fp32 on the CPU."""
    import torch

    if precision != "auto":
        return precision
    device_type = device_type or ("cuda" if torch.cuda.is_available() else "cpu")
    if device_type != "cuda":
        return "fp32"
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def quiet_deepspeed() -> None:
    """accelerate imports DeepSpeed (mglkit[deepspeed]) whenever a model is saved; on a machine without
    a GPU it then prints "Setting accelerator to CPU" on standard output (into --json output) unless
    told which accelerator there is."""
    import torch

    accelerator = getattr(torch, "accelerator", None)  # CUDA, XPU, MPS...: DeepSpeed finds its own
    if not (accelerator.is_available() if accelerator else torch.cuda.is_available()):
        os.environ.setdefault("DS_ACCELERATOR", "cpu")


def check_engine(asked: str, active: str, trainer: str, why: str = "") -> None:
    """An engine the configuration asks for and that is not the one running is an error, never a
    quiet fallback to another."""
    if asked != active:
        raise ConfigError(
            f"the launcher asks for {asked}, but {trainer} would run {active}" + (f": {why}" if why else ""),
            hint="launch with a config of examples/accelerate/ that this trainer runs here "
            "(on CPU: the dpo trainer for fsdp and deepspeed), or drop the engine from the launch",
        )


def on_main(decide: Callable[[], Any]) -> Any:
    """Run ``decide`` on the main process and give every process its result; when it raises, every
    process raises the same error (so no process waits forever for a main process that gave up)."""
    if world_size() == 1:
        return decide()
    import torch.distributed as dist

    join_group()
    shared: list[Any] = [None]
    if is_main():
        try:
            shared[0] = ("ok", decide())
        except MglkitError as exc:
            shared[0] = ("error", (type(exc), str(exc), exc.hint))
            dist.broadcast_object_list(shared, src=0)
            raise
    dist.broadcast_object_list(shared, src=0)
    status, value = shared[0]
    if status == "error":
        kind, message, hint = value
        raise kind(message, hint=hint)
    return value


def join_group() -> None:
    """The process group the launcher set up (gloo on CPU, NCCL on GPUs); accelerate and DeepSpeed
    reuse it. A process started without a launcher makes a group of its own (FSDP and DeepSpeed need
    one). The failure watch starts with the group."""
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        if "MASTER_ADDR" in os.environ:
            dist.init_process_group(backend)
        else:  # DeepSpeed reads the launcher's variables even for one process
            for name, value in (("RANK", "0"), ("LOCAL_RANK", "0"), ("WORLD_SIZE", "1")):
                os.environ.setdefault(name, value)
            dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{_free_port()}", rank=0, world_size=1)
    _Watch.begin()


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def watch_from_start() -> None:
    """Under a launcher whose agent already holds the store (torchrun, accelerate launch), watch for
    another process's failure from the start: a process that fails before the group is formed (a
    machine without the data) must not leave the others waiting to form it."""
    if world_size() > 1 and os.environ.get("TORCHELASTIC_USE_AGENT_STORE", "").lower() == "true":
        _Watch.begin()


def report_failure(code: int, message: str, hint: str | None) -> None:
    """This process is ending with ``code``: tell the others (the first failure is the one reported)."""
    watch = _Watch.current
    if watch is not None and code != 0:
        watch.publish(code, message, hint)


class _Watch(threading.Thread):
    """Watches the launcher's store for another process's failure; ends this process when one appears."""

    current: _Watch | None = None

    def __init__(self, store):
        super().__init__(name="mglkit-failure-watch", daemon=True)
        self.store, self.lock = store, threading.Lock()
        self.rank, self.world = rank(), world_size()
        attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")  # a restarted group starts afresh
        self.key, self.count = f"mglkit/failure/{attempt}", f"mglkit/failures/{attempt}"
        self.failing = False
        self.stopping = threading.Event()

    @classmethod
    def begin(cls) -> None:
        if cls.current is not None or world_size() == 1 or "MASTER_ADDR" not in os.environ:
            return
        from datetime import timedelta

        from torch.distributed import TCPStore

        try:  # a client of its own: the process group's store stays the main thread's
            store = TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), is_master=False,
                             timeout=timedelta(seconds=30))  # fmt: skip
        except (RuntimeError, ValueError) as exc:
            where = f"{os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']}"
            hint = "check MASTER_ADDR and MASTER_PORT, and that the main machine is up"
            raise ConfigError(f"cannot reach the launcher's store at {where}: {exc}", hint=hint) from None
        cls.current = cls(store)
        cls.current.start()
        # let go of the store before the interpreter ends: a thread still inside it aborts the process
        atexit.register(cls.current.stop)

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=5)

    def publish(self, code: int, message: str, hint: str | None) -> None:
        with self.lock:
            self.failing = True
            try:
                if self.store.add(self.count, 1) == 1:
                    report = {"rank": self.rank, "code": code, "message": message, "hint": hint}
                    self.store.set(self.key, json.dumps(report))
            except RuntimeError:  # the store is gone with its host: the launcher ends the rest
                pass

    def run(self) -> None:
        while not self.stopping.wait(POLL_SECONDS):
            try:
                if not self.store.check([self.key]):
                    continue
                report = json.loads(self.store.get(self.key))
            except RuntimeError:  # the store's host ended: nothing more to watch
                return
            with self.lock:
                if self.failing:
                    return
                self.end(report)

    def end(self, report: dict) -> None:
        line = f"mglkit: error: {report['message']} (process {report['rank']} of {self.world} failed)"
        if report.get("hint"):
            line += f"\n  hint: {report['hint']}"
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
        # this process may be blocked in a collective with the failed one: nothing else would end it
        os._exit(report["code"])


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def join() -> None:
    """Join the launcher's process group when there are several processes (nothing otherwise): the
    collectives below need it, and on GPUs it gives this process its own device."""
    if world_size() > 1:
        join_group()


def device_map():
    """Where a hub model is loaded on GPUs: spread over all of them for one process, whole on this
    process's own GPU when a launcher started several (each holds a copy)."""
    return {"": local_rank()} if world_size() > 1 else "auto"


def barrier() -> None:
    """Wait until every process is here."""
    if world_size() > 1:
        import torch.distributed as dist

        join_group()
        dist.barrier()


def broadcast(value: Any) -> Any:
    """The main process's ``value`` on every process (a picklable object)."""
    if world_size() == 1:
        return value
    import torch.distributed as dist

    join_group()
    shared = [value if is_main() else None]
    dist.broadcast_object_list(shared, src=0)
    return shared[0]


def all_gather(value: Any) -> list[Any]:
    """Every process's ``value`` (a picklable object), in rank order."""
    if world_size() == 1:
        return [value]
    import torch.distributed as dist

    join_group()
    gathered: list[Any] = [None] * world_size()
    dist.all_gather_object(gathered, value)
    return gathered


def sum_over_processes(tensor):
    """``tensor`` summed element-wise over every process, in place (on GPUs it must be on this
    process's device). Shares computed apart, zero elsewhere, add up to the whole exactly."""
    if world_size() > 1:
        import torch.distributed as dist

        join_group()
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor
