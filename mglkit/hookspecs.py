"""The plugin contract: every hook mglkit calls, in one file.

Registration hooks receive a ``register`` callable; call it once per thing you provide.
mglkit always calls hooks with keyword arguments.
"""

import pluggy

hookspec = pluggy.HookspecMarker("mglkit")
hookimpl = pluggy.HookimplMarker("mglkit")


@hookspec
def register_validators(register):
    """Register Validator classes: ``register(MyValidator)``; one instance is made per file."""


@hookspec
def register_trainers(register):
    """Register Trainer objects (``name``, ``train(job) -> result``) for ``mglkit train --trainer``."""


@hookspec
def register_evaluators(register):
    """Register Evaluator objects (``name``, suite parts needed, ``evaluate(scorer, suite)``)."""


@hookspec
def register_model_sources(register):
    """Register ModelSource objects (a name ``prefix``, ``load(name, options)`` -> model, tokenizer)."""


@hookspec
def register_suites(register):
    """Register named benchmark suites: ``register(name, path)`` for a folder shaped like a suite."""


@hookspec
def register_rewards(register):
    """Register rewards for GRPO: objects with ``name`` and ``__call__(prompt, completion, record) -> float``;
    ``record`` holds the dataset record's other fields (chosen, rejected, aliases...)."""


@hookspec
def register_retrievers(register):
    """Register Retriever objects (``name``, ``build(documents) -> index``, ``load(folder) -> index``)."""


@hookspec
def log_metrics(run, step, metrics):
    """Receive a dict of metrics logged by a training run at a given optimizer step."""


@hookspec
def register_commands(cli):
    """Add extra commands to the ``mglkit`` click group."""
