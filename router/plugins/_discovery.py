"""Finding plugins: installed distributions' entry points and modules named in settings.

An entry point in group ``leadrouter`` (``name = "package.module:Object"``) names the plugin;
a module named in ``LEADROUTER_PLUGINS`` (``package.module`` or ``package.module:Object``) is
named by that text. The object loaded may be a module or an instance (registered as is) or a
class (instantiated without arguments: plugins read their configuration from the environment).
A module with no ``@hookimpl`` functions of its own stands for the one class in it whose methods
are hook implementations (the way docs/plugins.md writes a plugin); with none or several such
classes it fails, saying to name one: ``package.module:ClassName``.
Nothing here raises for a broken plugin: each candidate carries its status and error.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import traceback
from collections.abc import Collection, Iterable
from typing import Any

import msgspec
from leadrouter_sdk import PluginDisabled
from leadrouter_sdk.hookspecs import PROJECT

__all__ = ["Candidate", "discover", "instantiate", "split_names"]


class Candidate(msgspec.Struct, kw_only=True):
    name: str
    source: str  # "entry point" | "settings" | "registered"
    target: str  # what was loaded: "package.module:Object"
    obj: Any = None
    version: str | None = None
    distribution: str | None = None
    status: str = "active"  # active | blocked | disabled | failed
    error: str | None = None


def split_names(text: str | Iterable[str] | None) -> list[str]:
    """``"a, b,,c"`` → ``["a", "b", "c"]``."""
    if text is None:
        return []
    items = text.split(",") if isinstance(text, str) else list(text)
    return [item.strip() for item in items if item and item.strip()]


def _failure(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" ({frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


def instantiate(obj: Any) -> Any:
    """A class is instantiated (no arguments); modules and instances are used as they are."""
    return obj() if inspect.isclass(obj) else obj


class _NotAPlugin(ValueError):
    """A module named as a plugin that holds no plugin this code can pick by itself."""


_MARK = f"{PROJECT}_impl"  # the attribute pluggy's ``hookimpl`` marker sets


def _has_hookimpls(obj: Any) -> bool:
    return any(callable(value) and hasattr(value, _MARK)
               for value in (getattr(obj, n, None) for n in dir(obj) if not n.startswith("__")))


def _resolve_module(candidate: Candidate, module: Any) -> Any:
    """``module`` itself if it has hook implementations, else the one class defined in it (or
    in its package) that has some; raises _NotAPlugin saying what to write instead."""
    if _has_hookimpls(module):
        return module
    name = module.__name__
    classes = sorted({cls for _, cls in inspect.getmembers(module, inspect.isclass)
                      if (cls.__module__ == name or cls.__module__.startswith(name + "."))
                      and _has_hookimpls(cls)}, key=lambda c: c.__name__)
    text = candidate.target.partition(":")[0]
    if len(classes) == 1:
        candidate.target = f"{text}:{classes[0].__name__}"
        return classes[0]
    if classes:
        names = " or ".join(f"`{text}:{c.__name__}`" for c in classes)
        raise _NotAPlugin(f"module {text} has several plugin classes: name one, write {names}")
    raise _NotAPlugin(f"module {text} has no @hookimpl functions or classes with @hookimpl "
                      "methods: mark its hooks with leadrouter_sdk.hookimpl, or name the "
                      f"plugin object, `{text}:ClassName`")


def _load(candidate: Candidate, loader: Any) -> Candidate:
    try:
        obj = loader()
        if inspect.ismodule(obj):
            obj = _resolve_module(candidate, obj)
        candidate.obj = instantiate(obj)
    except PluginDisabled as exc:
        candidate.status, candidate.error = "disabled", str(exc) or "disabled"
    except _NotAPlugin as exc:
        candidate.status, candidate.error = "failed", str(exc)
    except Exception as exc:
        candidate.status, candidate.error = "failed", _failure(exc)
    return candidate


def _import_target(target: str) -> Any:
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    obj: Any = module
    for part in filter(None, attr.split(".")):
        obj = getattr(obj, part)
    return obj


def discover(*, entry_points: bool = True, modules: Iterable[str] = (),
             block: Collection[str] = ()) -> list[Candidate]:
    """Every plugin candidate, entry points (by name) first, then ``modules`` in order.

    ``block`` holds plugin names (entry-point names or module texts); ``*`` blocks every
    entry point (modules named in settings are still loaded: naming one is opting in).
    """
    found: list[Candidate] = []
    seen: set[str] = set()
    if entry_points:
        eps = sorted(importlib.metadata.entry_points(group=PROJECT), key=lambda e: e.name)
        for ep in eps:
            if ep.name in seen:  # the same distribution found twice on sys.path
                continue
            seen.add(ep.name)
            dist = ep.dist
            candidate = Candidate(name=ep.name, source="entry point", target=ep.value,
                                  version=dist.version if dist else None,
                                  distribution=dist.name if dist else None)
            if ep.name in block or "*" in block:
                candidate.status, candidate.error = "blocked", "in LEADROUTER_PLUGINS_BLOCK"
                found.append(candidate)
                continue
            found.append(_load(candidate, ep.load))
    for target in modules:
        if target in seen:
            continue
        seen.add(target)
        candidate = Candidate(name=target, source="settings", target=target)
        if target in block:
            candidate.status, candidate.error = "blocked", "in LEADROUTER_PLUGINS_BLOCK"
            found.append(candidate)
            continue
        found.append(_load(candidate, lambda t=target: _import_target(t)))
    for candidate in found:
        if candidate.version is None and candidate.obj is not None:
            candidate.version = _version_of(candidate.obj)
    return found


def _version_of(obj: Any) -> str | None:
    version = getattr(obj, "__version__", None)
    if isinstance(version, str):
        return version
    module = obj if inspect.ismodule(obj) else inspect.getmodule(type(obj))
    version = getattr(module, "__version__", None)
    return version if isinstance(version, str) else None
