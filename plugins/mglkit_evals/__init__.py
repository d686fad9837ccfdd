"""mglkit's built-in evaluators and the bundled ``benchmarks`` suite."""

from mglkit import SuiteFolder, bundled, hookimpl

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
    register(SuiteFolder("benchmarks", bundled("benchmarks"), "Mongolian history: held-out pairs, facts, fluency"))
