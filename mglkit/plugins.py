"""Plugin loading and the registry: one pluggy manager, the ``mglkit`` entry-point group, and
``pm.get(kind, name)`` / ``pm.all(kind)`` over everything the registration hooks register.

A plugin that fails to import, exits, or implements a hook wrongly is reported in one line and
skipped (``--strict-plugins`` makes it fatal); ``MGLKIT_TRACE_PLUGINS=1`` logs every hook call.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import sys
import time
from dataclasses import dataclass
from typing import Any

import pluggy

from . import hookspecs, types
from .errors import ConfigError, PluginError

ENTRYPOINT_GROUP = "mglkit"
LOAD_ENV = "MGLKIT_LOAD_PLUGINS"
TRACE_ENV = "MGLKIT_TRACE_PLUGINS"

# kind -> (registration hook, the Protocol its objects satisfy)
KINDS: dict[str, tuple[str, tuple[type, ...]]] = {
    "validator": ("register_validators", (types.Validator,)),
    "trainer": ("register_trainers", (types.Trainer,)),
    "evaluator": ("register_evaluators", (types.Evaluator,)),
    "model source": ("register_model_sources", (types.ModelSource,)),
    "suite": ("register_suites", (types.SuiteFolder, types.SuiteSource)),
    "retriever": ("register_retrievers", (types.Retriever,)),
    "reward": ("register_rewards", (types.Reward,)),
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
        self._registry: dict[str, dict[str, Registered]] = {}
        self.tracing = os.environ.get(TRACE_ENV, "") not in ("", "0")

    def register(self, plugin, name=None):
        self._registry.clear()
        name = super().register(plugin, name)
        if self.tracing and name is not None:
            self._trace(plugin)
        return name

    def unregister(self, plugin=None, name=None):
        self._registry.clear()
        return super().unregister(plugin, name)

    def load_entrypoints(self, allow: set[str] | None = None) -> None:
        """Load every ``mglkit`` entry point (or only those named in ``allow``)."""
        seen = set()
        for ep in importlib.metadata.entry_points(group=ENTRYPOINT_GROUP):
            seen.add(ep.name)
            if allow is not None and ep.name not in allow:
                continue
            dist = ep.dist.name if ep.dist else None
            if self.has_plugin(ep.name):
                other = self.distributions.get(ep.name)
                raise PluginError(
                    f"two plugins are named '{ep.name}': from {other.name if other else '?'} and from {dist or '?'}",
                    hint="uninstall one of the two distributions",
                )
            try:
                module = ep.load()
                self.register(module, name=ep.name)
                self._check_hooks(ep.name)
            except (Exception, SystemExit) as exc:  # a plugin must not take mglkit down; Ctrl-C still does
                if self.has_plugin(ep.name):
                    self.unregister(name=ep.name)
                self.load_errors.append(LoadError(ep.name, dist, _describe(exc)))
                continue
            if ep.dist is not None:
                self.distributions[ep.name] = ep.dist
        for name in sorted((allow or set()) - seen):
            self.load_errors.append(LoadError(name, None, f"no installed plugin is named '{name}' ({LOAD_ENV})"))

    def _check_hooks(self, name: str) -> None:
        """A hook implementation whose name matches no hook (a misspelling) is an error of its plugin."""
        for caller in self.get_hookcallers(self.get_plugin(name)) or []:
            if caller.spec is None and not all(impl.optionalhook for impl in caller.get_hookimpls()):
                raise PluginError(f"unknown hook '{caller.name}'")

    def raise_load_errors(self) -> None:
        """--strict-plugins: any plugin that failed to load, or failed to register, is fatal."""
        for kind in KINDS:
            self.collect(kind)
        if self.load_errors:
            raise PluginError(
                str(self.load_errors[0]),
                hint="fix or uninstall that plugin, or run without --strict-plugins",
            )

    def collect(self, kind: str) -> dict[str, Registered]:
        """Everything of one kind, by name: the registration hook called plugin by plugin (cached until
        a plugin is registered or unregistered). A name registered twice is an error naming both."""
        if kind not in self._registry:
            self._registry[kind] = self._call_registration(kind)
        return self._registry[kind]

    def _call_registration(self, kind: str) -> dict[str, Registered]:
        hook_name, protocols = KINDS[kind]
        found: dict[str, Registered] = {}
        for impl in getattr(self.hook, hook_name).get_hookimpls():  # in registration order
            items: list[Any] = []
            try:
                impl.function(*[{"register": items.append}[name] for name in impl.argnames])
            except (Exception, SystemExit) as exc:
                self._plugin_failed(impl.plugin_name, f"{hook_name} raised {_describe(exc)}")
                continue
            for obj in items:
                missing = _missing(obj, protocols)
                if missing:
                    self._plugin_failed(
                        impl.plugin_name,
                        f"its {kind} {getattr(obj, 'name', obj)!r} lacks {', '.join(missing)} "
                        f"(subclass mglkit.{protocols[0].__name__} for the defaults)",
                    )
                    continue
                if obj.name in found:
                    raise PluginError(
                        f"{kind} '{obj.name}' is registered by two plugins: "
                        f"'{found[obj.name].plugin}' and '{impl.plugin_name}'",
                        hint=f"uninstall or disable one of them ({LOAD_ENV})",
                    )
                found[obj.name] = Registered(obj.name, obj, impl.plugin_name)
        return found

    def _plugin_failed(self, plugin: str, error: str) -> None:
        dist = self.distributions.get(plugin)
        failure = LoadError(plugin, dist.name if dist else None, error)
        if str(failure) not in map(str, self.load_errors):
            self.load_errors.append(failure)
            _warn(failure)

    def get(self, kind: str, name: str) -> Any:
        """The registered object of that kind and name, or the one error every lookup gives."""
        found = self.collect(kind)
        if name not in found:
            installed = ", ".join(sorted(found)) or "none"
            raise ConfigError(f"unknown {kind} '{name}'; installed: {installed}", hint="see `mglkit plugins`")
        return found[name].obj

    def all(self, kind: str) -> list[Any]:
        """Every registered object of that kind, in registration order."""
        return [item.obj for item in self.collect(kind).values()]

    def listing(self) -> list[dict[str, Any]]:
        """Each plugin, its version, the hooks it implements and what it registers; broken ones too."""
        registered: dict[str, dict[str, list[str]]] = {}
        for kind, (hook_name, _) in KINDS.items():
            for item in self.collect(kind).values():
                what = registered.setdefault(item.plugin, {}).setdefault(hook_name.removeprefix("register_"), [])
                what.append(item.name)
        errors = {e.plugin: e for e in self.load_errors}
        rows = []
        for name, plugin in sorted(self.list_name_plugin(), key=lambda np: np[0]):
            dist = self.distributions.get(name)
            error = errors.pop(name, None)
            rows.append(
                {
                    "name": name,
                    "module": getattr(plugin, "__name__", type(plugin).__name__),
                    "distribution": dist.name if dist else None,
                    "version": dist.version if dist else None,
                    "hooks": sorted(caller.name for caller in self.get_hookcallers(plugin) or []),
                    "registers": {k: sorted(v) for k, v in registered.get(name, {}).items()},
                    "error": error.error if error else None,
                }
            )
        for error in errors.values():  # plugins that never loaded
            rows.append(
                {
                    "name": error.plugin,
                    "module": None,
                    "distribution": error.distribution,
                    "version": None,
                    "hooks": [],
                    "registers": {},
                    "error": error.error,
                }
            )
        return rows

    def _trace(self, plugin) -> None:
        for caller in self.get_hookcallers(plugin) or []:
            for impl in caller.get_hookimpls():
                if impl.plugin is plugin:
                    impl.function = _traced(impl.function, impl.argnames, caller.name, impl.plugin_name)


def _traced(function, argnames: tuple[str, ...], hook: str, plugin: str):
    @functools.wraps(function)
    def traced(*args):  # pluggy passes hook arguments positionally, in ``argnames`` order
        start = time.perf_counter()
        try:
            return function(*args)
        finally:
            shown = ", ".join(f"{name}={_short(value)}" for name, value in zip(argnames, args, strict=False))
            took = (time.perf_counter() - start) * 1000
            print(f"mglkit: trace: {hook} [{plugin}]({shown}) {took:.2f} ms", file=sys.stderr, flush=True)

    return traced


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _missing(obj: Any, protocols: tuple[type, ...]) -> list[str]:
    if isinstance(obj, type):
        return ["being an instance (register(MyThing()), not the class)"]
    if any(isinstance(obj, protocol) for protocol in protocols):
        return []
    members = sorted(getattr(protocols[0], "__protocol_attrs__", None) or _annotations_and_methods(protocols[0]))
    return [m for m in members if not hasattr(obj, m)] or [f"the shape of {protocols[0].__name__}"]


def _annotations_and_methods(protocol: type) -> set[str]:
    names = set(getattr(protocol, "__annotations__", {}))
    names |= {n for n, v in vars(protocol).items() if callable(v) and not n.startswith("_")}
    return names


def _describe(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return f"it called sys.exit({exc.code!r})"
    return f"{type(exc).__name__}: {exc}"


def _warn(error: LoadError) -> None:
    print(f"mglkit: warning: {error} (skipped; --strict-plugins makes this fatal)", file=sys.stderr)


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
    """The process-wide manager the command line and the Python API use (tests may register on it)."""
    global _pm
    if _pm is None:
        _pm = make_plugin_manager()
    return _pm


def command(pm, name: str):
    """``mglkit plugins``"""
    import click

    @click.command(name)
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable listing.")
    def plugins(as_json: bool):
        """List installed plugins, the hooks each implements, what each registers, and broken ones."""
        rows = pm.listing()
        if as_json:
            from .report import write_json

            write_json({"plugins": rows, "load_errors": [str(e) for e in pm.load_errors]})
        else:
            from .report import print_plugins

            print_plugins(rows, pm.load_errors)
        return 0

    return plugins
