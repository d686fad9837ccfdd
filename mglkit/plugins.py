"""Plugin loading: one pluggy manager, entry points of group ``mglkit``, registries by hook."""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pluggy

from . import hookspecs
from .errors import PluginError

ENTRYPOINT_GROUP = "mglkit"
LOAD_ENV = "MGLKIT_LOAD_PLUGINS"

# Registration hooks and how to name what each registers.
REGISTRATION_HOOKS = {
    "register_validators": "validator",
    "register_trainers": "trainer",
    "register_evaluators": "evaluator",
    "register_model_sources": "model source",
    "register_suites": "suite",
    "register_retrievers": "retriever",
    "register_rewards": "reward",
}


@dataclass
class LoadError:
    plugin: str
    distribution: str | None
    error: str

    def __str__(self) -> str:
        dist = f" (from {self.distribution})" if self.distribution else ""
        return f"plugin '{self.plugin}'{dist} failed to load: {self.error}"


@dataclass
class Registered:
    """Something a plugin registered, and which plugin did."""

    name: str
    obj: Any
    plugin: str


class PluginManager(pluggy.PluginManager):
    def __init__(self) -> None:
        super().__init__("mglkit")
        self.add_hookspecs(hookspecs)
        self.load_errors: list[LoadError] = []
        self.distributions: dict[str, importlib.metadata.Distribution] = {}

    def load_entrypoints(self, allow: set[str] | None = None) -> None:
        """Load every ``mglkit`` entry point (or only those named in ``allow``)."""
        for ep in importlib.metadata.entry_points(group=ENTRYPOINT_GROUP):
            if allow is not None and ep.name not in allow:
                continue
            dist = ep.dist.name if ep.dist else None
            existing = self.get_plugin(ep.name)
            if existing is not None:
                other = self.distributions.get(ep.name)
                raise PluginError(
                    f"two plugins are named '{ep.name}': from {other.name if other else '?'} and from {dist or '?'}",
                    hint="uninstall one of the two distributions",
                )
            try:
                module = ep.load()
            except Exception as exc:  # any import failure of a third-party module
                self.load_errors.append(LoadError(ep.name, dist, f"{type(exc).__name__}: {exc}"))
                continue
            self.register(module, name=ep.name)
            if ep.dist is not None:
                self.distributions[ep.name] = ep.dist
        self.check_pending()

    def raise_load_errors(self) -> None:
        if self.load_errors:
            raise PluginError(
                str(self.load_errors[0]),
                hint="fix or uninstall that plugin, or run without --strict-plugins",
            )

    def version_of(self, plugin_name: str) -> str | None:
        dist = self.distributions.get(plugin_name)
        return dist.version if dist else None

    def collect(self, hook_name: str) -> dict[str, Registered]:
        """Call a registration hook plugin by plugin; a name registered twice is an error."""
        kind = REGISTRATION_HOOKS[hook_name]
        found: dict[str, Registered] = {}
        for impl in getattr(self.hook, hook_name).get_hookimpls():  # in registration order
            for name, obj in _call_register(impl.function):
                if name in found:
                    raise PluginError(
                        f"{kind} '{name}' is registered by two plugins: "
                        f"'{found[name].plugin}' and '{impl.plugin_name}'",
                        hint="uninstall or disable one of them (MGLKIT_LOAD_PLUGINS)",
                    )
                found[name] = Registered(name, obj, impl.plugin_name)
        return found

    def listing(self) -> list[dict[str, Any]]:
        """Each plugin, its version, the hooks it implements and what it registers."""
        registered: dict[str, dict[str, list[str]]] = {}
        for hook_name in REGISTRATION_HOOKS:
            for item in self.collect(hook_name).values():
                kind = hook_name.removeprefix("register_")
                registered.setdefault(item.plugin, {}).setdefault(kind, []).append(item.name)
        rows = []
        for name, plugin in sorted(self.list_name_plugin(), key=lambda np: np[0]):
            hooks = sorted(caller.name for caller in self.get_hookcallers(plugin) or [])
            dist = self.distributions.get(name)
            rows.append(
                {
                    "name": name,
                    "module": getattr(plugin, "__name__", type(plugin).__name__),
                    "distribution": dist.name if dist else None,
                    "version": dist.version if dist else None,
                    "hooks": hooks,
                    "registers": {k: sorted(v) for k, v in registered.get(name, {}).items()},
                }
            )
        return rows


def _call_register(function: Callable) -> list[tuple[str, Any]]:
    items: list[tuple[str, Any]] = []

    def register(obj: Any, name: str | None = None) -> None:
        items.append((name or obj.name, obj))

    function(register=register)
    return items


def allow_list_from_env() -> set[str] | None:
    value = os.environ.get(LOAD_ENV)
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


def make_plugin_manager(entrypoints: bool = True) -> PluginManager:
    """A fresh manager; with ``entrypoints``, every installed plugin (see MGLKIT_LOAD_PLUGINS)."""
    pm = PluginManager()
    if entrypoints:
        pm.load_entrypoints(allow_list_from_env())
    return pm


_pm: PluginManager | None = None


def get_plugin_manager() -> PluginManager:
    """The process-wide manager the CLI and the Python API use (tests may register on it)."""
    global _pm
    if _pm is None:
        _pm = make_plugin_manager()
    return _pm
