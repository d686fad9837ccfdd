"""mglkit's built-in validators, registered through the same entry point group as any plugin."""

from mglkit import hookimpl

from .dataset import Duplicates, Size
from .text import Cyrillic, Differentiation, Hygiene, Language, Length

VALIDATORS = (Length, Cyrillic, Language, Hygiene, Differentiation, Duplicates, Size)


@hookimpl
def register_validators(register):
    for validator in VALIDATORS:
        register(validator())
