"""Settings declared once: type, default, range, choices and help. Command-line flags (see cli.py)
and config-file checks are both made from these declarations, so they cannot disagree.

A pipeline's config is a dataclass whose fields are declared with :func:`setting`; a plugin declares
its own settings as :class:`Setting` objects (``Trainer.settings``), with the same metadata.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError


@dataclass(frozen=True)
class Setting:
    """One setting. Lists and tables are comma-separated on the command line (``a,b``, ``a=1,b=2``).
    Numeric bounds are inclusive unless ``*_open``."""

    name: str
    kind: type  # int, float, str, bool, list (of names), dict (of numbers: name=1.5,other=2)
    default: Any
    help: str
    choices: tuple[str, ...] | None = None
    min: float | None = None
    max: float | None = None
    min_open: bool = False
    max_open: bool = False
    optional: bool = False  # None is a valid value (meaning: see help)
    none_word: str | None = None  # a command-line word meaning None, e.g. "none" for no clipping
    flag: str | None = None  # the command-line flag, when it is not --name-with-dashes
    bare_value: str | None = None  # the value of the flag given without one (``--resume``)
    multiple: bool = False  # a list given by repeating the flag (``--adapter A --adapter B``)
    cli: bool = True  # has a command-line flag
    in_file: bool = True  # may be set in a config file (trust comes only from the command line)
    # checks what a type and range cannot say (``value, where``; raises ConfigError naming ``where``)
    check_value: Callable[[Any, str], None] | None = dataclasses.field(default=None, compare=False)

    @property
    def option(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")

    def describe_range(self) -> str:
        if self.choices:
            return "one of " + ", ".join(self.choices)
        low = None if self.min is None else f"{'>' if self.min_open else '>='} {self.min:g}"
        high = None if self.max is None else f"{'<' if self.max_open else '<='} {self.max:g}"
        return " and ".join(x for x in (low, high) if x) or ""

    def check(self, value: Any, where: str) -> Any:
        """The value, checked and normalised (an int where a float is wanted becomes a float);
        anything else is a ConfigError naming ``where`` (a flag, or a file, table and key)."""
        if value is None:
            if self.optional:
                return None
            raise ConfigError(f"{where}: a value is required", hint=self._hint())
        value = self._typed(value, where)
        if self.kind in (int, float):
            self._in_range(value, where)
        elif self.choices and self.kind is str and value not in self.choices:
            raise ConfigError(f"{where}: '{value}' is not {self.describe_range()}", hint=self._near(value))
        elif self.choices and self.kind is list:
            for item in value:
                if item not in self.choices:
                    raise ConfigError(f"{where}: '{item}' is not {self.describe_range()}", hint=self._near(item))
        if self.check_value is not None:
            self.check_value(value, where)
        return value

    def parse(self, text: str, where: str) -> Any:
        """A command-line word as a checked value."""
        if self.none_word is not None and text.strip().lower() == self.none_word:
            return self.check(None, where)
        try:
            if self.kind is int:
                value: Any = int(text)
            elif self.kind is float:
                value = float(text)
            elif self.kind is list:
                value = [part.strip() for part in text.split(",") if part.strip()]
            elif self.kind is dict:
                value = {name.strip(): float(number) for name, number in (part.split("=") for part in text.split(","))}
            elif self.kind is bool:
                value = {"true": True, "false": False}[text.strip().lower()]
            else:
                value = text
        except (ValueError, KeyError):
            raise ConfigError(f"{where}: '{text}' is not {_KIND_NAMES[self.kind]}", hint=self._hint()) from None
        return self.check(value, where)

    def _typed(self, value: Any, where: str) -> Any:
        kind = self.kind
        if kind is float and type(value) is int:
            value = float(value)
        elif kind is list and isinstance(value, str):  # "a,b" in a config file, as on the command line
            value = [part.strip() for part in value.split(",") if part.strip()]
        ok = type(value) is kind if kind in (int, bool) else isinstance(value, kind)
        if kind is list and ok:
            ok = all(isinstance(item, str) for item in value)
        if kind is dict and ok:  # a table of numbers, such as reward weights
            ok = all(type(v) in (int, float) and math.isfinite(v) for v in value.values())
        if not ok:
            raise ConfigError(f"{where}: {value!r} is not {_KIND_NAMES[kind]}", hint=self._hint())
        if kind is float and not math.isfinite(value):
            raise ConfigError(f"{where}: {value} is not a finite number", hint=self._hint())
        return value

    def _in_range(self, value: float, where: str) -> None:
        low_bad = self.min is not None and (value <= self.min if self.min_open else value < self.min)
        high_bad = self.max is not None and (value >= self.max if self.max_open else value > self.max)
        if low_bad or high_bad:
            raise ConfigError(f"{where}: {value:g} is out of range (must be {self.describe_range()})", hint=self.help)

    def _hint(self) -> str:
        wanted = self.describe_range()
        text = f"{_KIND_NAMES[self.kind]}{', ' + wanted if wanted else ''}"
        if self.none_word:
            text += f", or '{self.none_word}'"
        return f"{self.option}: {text}. {self.help}"

    def _near(self, value: str) -> str:
        close = difflib.get_close_matches(str(value), self.choices or (), n=1)
        return f"did you mean '{close[0]}'?" if close else self._hint()


_KIND_NAMES = {
    int: "a whole number",
    float: "a number",
    str: "a string",
    bool: "true or false",
    list: "a list of names",
    dict: "a table",
}


def setting(kind: type, default: Any, help: str, **details: Any) -> Any:
    """A dataclass field declared as a setting: ``batch_size: int = setting(int, 4, "Per device.", min=1)``."""
    factory = dataclasses.MISSING
    if isinstance(default, list | dict):
        factory, default = (lambda value=default: type(value)(value)), dataclasses.MISSING
    metadata = {"setting": dict(kind=kind, help=help, **details)}
    return dataclasses.field(default=default, default_factory=factory, metadata=metadata)


def declared(config_class) -> list[Setting]:
    """The settings of a config dataclass, in field order."""
    found = []
    for f in dataclasses.fields(config_class):
        if "setting" in f.metadata:
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            found.append(Setting(f.name, default=default, **f.metadata["setting"]))
    return found


def check_config(config, where: str = "") -> None:
    """Check every declared field of a config object (called from its ``__post_init__``)."""
    for spec in declared(type(config)):
        value = spec.check(getattr(config, spec.name), f"{where}{spec.option}")
        object.__setattr__(config, spec.name, value)


def checked_table(specs: Iterable[Setting], table: dict[str, Any], source: str) -> dict[str, Any]:
    """Values of a config-file table, each checked; an unknown or mistyped key names file, table and key."""
    by_name = {spec.name: spec for spec in specs}
    values = {}
    for key, value in table.items():
        name = key.replace("-", "_")
        spec = by_name.get(name)
        if spec is None:
            close = difflib.get_close_matches(name, by_name, n=1)
            raise ConfigError(
                f"{source}: unknown setting '{key}'",
                hint=f"did you mean '{close[0]}'?" if close else "known settings: " + ", ".join(sorted(by_name)),
            )
        if not spec.in_file:
            raise ConfigError(
                f"{source}: '{key}' cannot be set in a config file",
                hint=f"it is accepted only on the command line ({spec.option}), so a file cannot turn it on for you",
            )
        values[name] = spec.check(value, f"{source}, key '{key}'")
    return values


def _read_toml(path: Path) -> dict[str, Any]:
    import tomllib

    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def find_table(section: str, config_file: str | os.PathLike | None = None) -> tuple[dict, str]:
    """The ``[section]`` table in force and where it came from: ``--config FILE``; else ``mglkit.toml``
    in the working directory; else ``[tool.mglkit.section]`` in ``pyproject.toml``; else nothing."""
    if config_file is not None:
        path = Path(config_file)
        data = _read_toml(path)
        if section in data:
            return _table(data[section], f"{path} [{section}]")
        nested = data.get("tool", {}).get("mglkit", {})
        return _table(nested.get(section, {}), f"{path} [tool.mglkit.{section}]")
    local = Path("mglkit.toml")
    if local.is_file():
        return _table(_read_toml(local).get(section, {}), f"{local} [{section}]")
    pyproject = Path("pyproject.toml")
    if pyproject.is_file():
        table = _read_toml(pyproject).get("tool", {}).get("mglkit", {}).get(section)
        if table is not None:
            return _table(table, f"{pyproject} [tool.mglkit.{section}]")
    return {}, "defaults"


def _table(value: Any, source: str) -> tuple[dict, str]:
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: expected a table", hint="write the settings as key = value lines under it")
    return value, source
