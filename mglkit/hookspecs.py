"""The plugin contract: every hook mglkit calls, in one file.

A registration hook receives ``register``: call it once per object you provide, ``register(obj)``;
the object's ``name`` names it, and it must satisfy the Protocol of its kind (``mglkit.types``).
mglkit always calls hooks with keyword arguments.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("mglkit")
hookimpl = pluggy.HookimplMarker("mglkit")

Register = Callable[[Any], None]


@hookspec
def register_validators(register: Register) -> None:
    """Register Validator objects for ``mglkit validate`` and the check before training; each file
    gets a fresh ``validator.begin(config)``."""


@hookspec
def register_trainers(register: Register) -> None:
    """Register Trainer objects for ``mglkit train --trainer NAME``; their ``settings`` become options."""


@hookspec
def register_evaluators(register: Register) -> None:
    """Register Evaluator objects; ``mglkit eval`` runs each whose ``needs`` the suite has."""


@hookspec
def register_model_sources(register: Register) -> None:
    """Register ModelSource objects: base-model names starting with their ``prefix`` load through them."""


@hookspec
def register_suites(register: Register) -> None:
    """Register SuiteFolder objects (a named suite folder) and SuiteSource objects (``PREFIX:PATH``
    suites of a published format) for ``mglkit eval``."""


@hookspec
def register_rewards(register: Register) -> None:
    """Register Reward objects for GRPO (``--rewards NAME,...``)."""


@hookspec
def register_retrievers(register: Register) -> None:
    """Register Retriever objects for ``mglkit index`` and ``mglkit ask``."""


@hookspec
def log_metrics(run: Any, step: int, metrics: dict[str, float]) -> None:
    """Receive the metrics a training run logged at an optimizer step (after mglkit wrote them to
    ``training_logs/metrics.jsonl``): a metrics sink such as W&B."""


@hookspec
def run_checkpoint(run: Any, step: int) -> None:
    """Called after a trainer saved a checkpoint at an optimizer step (plots of the run so far...). A
    failing implementation is reported and never fails the run."""


@hookspec
def run_finished(run: Any) -> None:
    """Called once a training run's outputs are written (``run.dir``, ``run.logs``): plots, uploads,
    notifications. A failing implementation is reported and never fails the run."""


@hookspec
def register_commands(cli: Any) -> None:
    """Add commands to the ``mglkit`` click group (``cli.command()``)."""
