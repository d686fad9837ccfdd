"""An example third-party plugin: prompts should be questions. It uses only mglkit's public contract."""

from mglkit import WARNING, Validator, hookimpl


class QuestionMark(Validator):
    name = "question-mark"
    description = "prompts end with a question mark"

    def check(self, pair):
        if pair.prompt.rstrip().endswith("?"):
            return ()
        return [self.finding(pair, "prompt", WARNING, "prompt does not end with '?'",
                             hint="phrase the prompt as a question")]  # fmt: skip


@hookimpl
def register_validators(register):
    register(QuestionMark())
