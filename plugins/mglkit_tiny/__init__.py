"""``mglkit:tiny``: a small Mistral-architecture model built locally from the bundled data.

``mglkit:tiny`` is briefly pre-trained on training text only (never on ``benchmarks/``);
``mglkit:tiny-random`` has the same tokenizer and shape with untrained weights.
"""

from mglkit import ConfigError, ModelSource, hookimpl

PREFIX = "mglkit:"
VARIANTS = ("tiny", "tiny-random")


class TinySource(ModelSource):
    """Model source for ``mglkit:tiny`` and ``mglkit:tiny-random``."""

    name = PREFIX
    prefix = PREFIX
    description = "a few-million-parameter Mistral-shaped model built and cached locally"

    def names(self) -> list[str]:
        return [PREFIX + v for v in VARIANTS]

    def load(self, name: str, options):
        from .build import load

        variant = name.removeprefix(PREFIX)
        if variant not in VARIANTS:
            raise ConfigError(f"unknown model '{name}'", hint="built-in: " + ", ".join(self.names()))
        return load(variant, options)

    def folder(self, name: str):
        """Where the built model lies: caches keyed by the base model (reference log-probs) know it by
        that folder's files."""
        from .build import model_dir

        variant = name.removeprefix(PREFIX)
        return model_dir(variant) if variant in VARIANTS else None


@hookimpl
def register_model_sources(register):
    register(TinySource())
