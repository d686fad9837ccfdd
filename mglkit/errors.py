"""The few errors the command line turns into one-line messages, each with its exit code; anything
else is a bug and keeps its traceback (shown with --debug)."""


class MglkitError(Exception):
    """A problem the user can fix, printed as one line (plus a hint): the data or the run failed a check."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.hint = hint


class UnusableInputError(MglkitError):
    """An input cannot be used at all: missing, empty, malformed, not UTF-8."""

    exit_code = 2


class ConfigError(MglkitError):
    """A setting, option or config file is invalid."""

    exit_code = 2


class PluginError(MglkitError):
    """A plugin failed to load, or two plugins registered the same name."""

    exit_code = 2


class StoppedError(MglkitError):
    """Interrupted (Ctrl-C), or stopped by a guard: the NaN guard, an output in use by another process."""

    exit_code = 3
