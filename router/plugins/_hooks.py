"""The hooks of the plugin host and one plugin's implementation of one of them: the hook names
and their exact signatures (from ``leadrouter_sdk.hookspecs``), which arguments an
implementation takes, what ``leadrouter plugins list`` shows of a plugin, and the errors.
router/plugins/host.py is the public face."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import msgspec
from leadrouter_sdk.hookspecs import HookSpecs

from router.plugins._breaker import Breaker
from router.plugins._metrics import NULL_SERIES, Series, series

__all__ = ["HOOKS", "SPEC_ARGS", "DeliveryFailed", "DeliveryRejected", "Impl", "PluginError",
           "PluginInfo", "accepted", "hook_signatures", "short"]

HOOKS = ("enrich", "score", "register_functions", "route", "on_decision", "on_event",
         "shutdown")


class PluginError(RuntimeError):
    """A plugin problem that stops start-up: any plugin failure in strict mode."""


def hook_signatures() -> dict[str, inspect.Signature]:
    """The exact signature of every hookspec (without ``self``), by hook name."""
    out = {}
    for name in HOOKS:
        sig = inspect.signature(getattr(HookSpecs, name))
        params = [p for p in sig.parameters.values() if p.name != "self"]
        out[name] = sig.replace(parameters=params)
    return out


SPEC_ARGS = {name: tuple(sig.parameters) for name, sig in hook_signatures().items()}


class PluginInfo(msgspec.Struct, kw_only=True):
    """One plugin as ``leadrouter plugins list`` and ``GET /v1/plugins`` show it."""

    name: str
    version: str | None
    source: str
    target: str
    hooks: tuple[str, ...] = ()
    status: str = "active"  # active | blocked | disabled | failed
    error: str | None = None
    functions: tuple[str, ...] = ()
    breakers: dict[str, str] = {}  # hook -> closed | open | half_open, only when not closed
    problems: tuple[str, ...] = ()  # non-fatal: a refused expression function...


class Impl:
    """One hook implementation of one plugin, with its breaker and metric children."""

    __slots__ = ("breaker", "fn", "hook", "names", "plugin", "series")

    def __init__(self, plugin: str, hook: str, fn: Callable[..., Any], names: tuple[str, ...],
                 breaker: Breaker, metrics: bool) -> None:
        self.plugin = plugin
        self.hook = hook
        self.fn = fn
        self.names = names
        self.breaker = breaker
        self.series: Series = series(plugin, hook) if metrics else NULL_SERIES


def accepted(fn: Callable[..., Any], hook: str) -> tuple[str, ...]:
    """The hook arguments ``fn`` takes, by name; raises ValueError for unknown ones."""
    spec = SPEC_ARGS[hook]
    params = list(inspect.signature(fn).parameters.values())
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return spec
    names = []
    for p in params:
        if p.kind is p.VAR_POSITIONAL:
            continue
        if p.name in spec:
            if p.kind is p.POSITIONAL_ONLY:
                raise ValueError(f"{hook}(): argument `{p.name}` must not be positional-only "
                                 "(hooks are called by keyword)")
            names.append(p.name)
        elif p.default is p.empty:
            raise ValueError(f"{hook}() has no argument `{p.name}`; it takes "
                             f"{', '.join(spec) or 'no arguments'}")
    return tuple(names)


def short(exc: BaseException) -> str:
    text = str(exc)
    if len(text) > 200:
        text = text[:197] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class DeliveryFailed(Exception):
    """A sink did not take an event (raised, timed out, or is switched off)."""


class DeliveryRejected(DeliveryFailed):
    """A sink refused an event for good (it raised ``PermanentDeliveryError``): the outbox
    dead-letters it at once, with this message as the reason."""
