"""An example third-party plugin: prompts should be questions."""

from mglkit import Validator, hookimpl
from mglkit.findings import WARNING


class QuestionMark(Validator):
    name = "question-mark"
    description = "prompts end with a question mark"

    def check(self, pair):
        if pair.prompt.rstrip().endswith("?"):
            return ()
        return [
            self.finding(
                pair,
                "prompt",
                WARNING,
                "prompt does not end with '?'",
                hint="phrase the prompt as a question",
            )
        ]


@hookimpl
def register_validators(register):
    register(QuestionMark)
