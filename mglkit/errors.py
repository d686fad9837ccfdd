"""The few errors the CLI turns into one-line messages; anything else keeps its traceback."""


class MglkitError(Exception):
    """A problem the user can fix: printed as one line (plus a hint), never as a traceback."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.hint = hint


class UnusableInputError(MglkitError):
    """The input cannot be validated at all: missing, empty, not JSONL, not UTF-8."""

    exit_code = 2


class PluginError(MglkitError):
    """A plugin failed to load, or two plugins registered the same name."""


class ConfigError(MglkitError):
    """A config file or option is invalid."""

    exit_code = 2
