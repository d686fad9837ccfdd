"""mglkit's built-in evaluators and the bundled ``benchmarks`` suite."""

from mglkit import hookimpl
from mglkit.resources import bundled

from .facts import Facts
from .fluency import Fluency
from .preference import Preference
from .retrieval import Retrieval


@hookimpl
def register_evaluators(register):
    for evaluator in (Preference(), Fluency(), Facts(), Retrieval()):
        register(evaluator)


@hookimpl
def register_suites(register):
    register(bundled("benchmarks"), name="benchmarks")
