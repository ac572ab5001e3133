"""The rule-function table of the plugin host: the built-ins plus the expression functions
plugins register (``register_functions``), each checked before the rules may call it."""

from __future__ import annotations

import keyword
from collections.abc import Mapping
from typing import Any

from leadrouter_sdk import ExpressionFunction

from router.engine.functions import BUILTINS, Function
from router.plugins._hooks import Impl, PluginInfo, short
from router.plugins._isolation import Isolation

__all__ = ["FunctionTable"]

_VALUE_TYPES = frozenset({"number", "text", "boolean", "datetime", "any"})


class FunctionTable(Isolation):
    """The expression functions of :class:`router.plugins.host.PluginHost`."""

    infos: dict[str, PluginInfo]
    _impls: dict[str, tuple[Impl, ...]]
    _functions: dict[str, Function] | None
    _function_owner: dict[str, str]

    def functions(self) -> dict[str, Function]:
        """Built-ins plus every valid function plugins register (computed once)."""
        if self._functions is not None:
            return self._functions
        table = dict(BUILTINS)
        for impl in self._impls["register_functions"]:
            info = self.infos[impl.plugin]
            try:
                declared = list(impl.fn(**{}) or ())
            except Exception as exc:
                self._count(impl, "raised")
                self._problem(info, f"plugin {impl.plugin}: register_functions() raised "
                              f"{short(exc)}")
                continue
            names = []
            for fn in declared:
                problem = self._check_function(fn, table)
                if problem:
                    info.problems = (*info.problems, problem)
                    self._problem(info, f"plugin {impl.plugin}: {problem}")
                    continue
                assert isinstance(fn, ExpressionFunction)
                table[fn.name] = Function(name=fn.name, impl=fn.impl, params=fn.params,
                                          returns=fn.returns, doc=fn.doc,
                                          example=fn.example or f"{fn.name}(...)")
                self._function_owner[fn.name] = impl.plugin
                names.append(fn.name)
            info.functions = tuple(names)
            self._count(impl, "ok")
        self._functions = table
        return table

    def _check_function(self, fn: Any, table: Mapping[str, Function]) -> str | None:
        if not isinstance(fn, ExpressionFunction):
            return f"register_functions() returned {type(fn).__name__}, not ExpressionFunction"
        name = fn.name
        if not name.isidentifier() or keyword.iskeyword(name) or name.startswith("_") \
                or name in ("true", "false", "null"):
            return f"function name {name!r} is not a valid rule function name"
        if name in table:
            owner = self._function_owner.get(name, "built-in")
            return f"function {name}() is already defined ({owner}); not registered"
        impl: Any = fn.impl  # Structs are not type-checked when constructed
        if not callable(impl):
            return f"function {name}(): impl is not callable"
        bad = [t for t in (*fn.params, fn.returns) if t not in _VALUE_TYPES]
        if bad:
            return (f"function {name}(): unknown value type {bad[0]!r}; use "
                    f"{', '.join(sorted(_VALUE_TYPES))}")
        return None
