"""The expression checker's function calls: arity, options and argument kinds of every rule
function, and the special forms (``matches``, ``hit``, ``count``, ``last``, ``days_since``)
that compile to more than a call (mixed into the builder of router/engine/expr.py)."""

from __future__ import annotations

import ast

from router.engine._expr_nodes import (
    MAX_DAYS,
    MAX_LITERAL_TEXT,
    BuilderBase,
    Typed,
    env_get,
    helper_call,
    suggest,
)
from router.engine.functions import ANY, BOOL, NUM, STR, TIME, Function, Matcher

__all__ = ["DERIVED_CALLS", "CallBuilder"]

# Calls whose result build_env computes once per lead anyway: (function, argument) -> name.
DERIVED_CALLS = {
    ("is_free_email", "email"): "free_email",
    ("is_disposable_email", "email"): "disposable_email",
    ("domain", "email"): "email_domain",
    ("region", "country"): "region",
}


def _arg_name(node: ast.Call) -> str | None:
    if len(node.args) == 1 and isinstance(node.args[0], ast.Name):
        return node.args[0].id
    return None


class CallBuilder(BuilderBase):
    """Calls of rule functions, checked against their declared parameters."""

    def _Call(self, node: ast.Call, depth: int) -> Typed:
        if not isinstance(node.func, ast.Name):
            raise self.fail(node, "only plain function calls are allowed",
                            "call a rule function by name, e.g. lower(title)")
        name = node.func.id
        fn = self.scope.functions.get(name)
        if fn is None:
            hint = suggest(name, self.scope.functions)
            raise self.fail(node, f"unknown function `{name}`",
                            f"did you mean `{hint}`?" if hint else
                            "see docs/rules.md for the function list")
        if any(isinstance(a, ast.Starred) for a in node.args):
            raise self.fail(node, "`*` unpacking is not allowed", f"example: {fn.example}")
        if len(node.args) != len(fn.params):
            raise self.fail(node, f"{name}() takes {len(fn.params)} argument(s), "
                            f"got {len(node.args)}", f"example: {fn.example}")
        for kw in node.keywords:
            if kw.arg is None or kw.arg not in fn.keywords:
                raise self.fail(node, f"{name}() has no option `{kw.arg}`",
                                f"example: {fn.example}")
        missing = set(fn.keywords) - {kw.arg for kw in node.keywords}
        if missing:
            raise self.fail(node, f"{name}() needs {', '.join(sorted(missing))}=",
                            f"example: {fn.example}")
        special = getattr(self, f"_fn_{name}", None) if fn.special else None
        if special is not None:
            typed: Typed = special(node, fn, depth)
            return typed
        derived = DERIVED_CALLS.get((name, _arg_name(node) or ""))
        if derived is not None and derived in self.scope.names:
            # build_env already computed this per lead (e.g. is_free_email(email)).
            self.names.add(derived)
            return Typed(env_get(derived), fn.returns, f"{name}()",
                          self.scope.domains.get(f"{name}()"))
        args = [self.build(a, depth) for a in node.args]
        for arg, want in zip(args, fn.params, strict=True):
            if want != ANY and arg.type not in (ANY, want):
                raise self.fail(node, f"{name}() expects {want}, got {arg.label or arg.type} "
                                f"({arg.type})", f"example: {fn.example}")
        domain = self.scope.domains.get(f"{name}()")
        return Typed(helper_call(f"_fn_{name}", *[a.node for a in args]), fn.returns, f"{name}()",
                      domain)

    def _literal_text(self, node: ast.Call, fn: Function, index: int = 0) -> str:
        arg = node.args[index]
        if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
            raise self.fail(node, f"{fn.name}() needs a text literal here",
                            f"example: {fn.example}")
        return arg.value

    def _fn_matches(self, node: ast.Call, fn: Function, depth: int) -> Typed:
        text = self.build(node.args[0], depth)
        if text.type not in (STR, ANY):
            raise self.fail(node, f"matches() expects text, got {text.label or text.type} "
                            f"({text.type})", f"example: {fn.example}")
        pattern = self._literal_text(node, fn, 1)
        if len(pattern) > MAX_LITERAL_TEXT:
            raise self.fail(node, "regular expression is too long", "simplify the pattern")
        try:
            matcher = Matcher(pattern)
        except Exception as exc:  # re2.error, but the binding raises a few kinds
            detail = exc.args[0] if exc.args else exc
            if isinstance(detail, bytes):
                detail = detail.decode("utf-8", "replace")
            raise self.fail(node, f"invalid regular expression: {detail}",
                            "RE2 syntax: no backreferences or lookaround") from None
        # Inline memo lookup, RE2 only on a miss: `(m if (m := memo.get(x)) is not None else
        # test(x))`. Only for simple subjects, which are cheap and pure to evaluate twice.
        # The Matcher itself is kept among the constants too: the fused ruleset function finds
        # it there and answers every pattern on the same field with one RE2 call (MatchSet).
        self.const(matcher)
        call = ast.Call(func=self.const(matcher.test), args=[text.node], keywords=[])
        if not isinstance(text.node, ast.Subscript | ast.Name):
            return Typed(call, BOOL, "matches()")
        temp = f"_r{self.prefix}_{len(self.constants)}"
        get = ast.Call(func=ast.Attribute(value=self.const(matcher.memo), attr="get",
                                          ctx=ast.Load()), args=[text.node], keywords=[])
        walrus = ast.NamedExpr(target=ast.Name(id=temp, ctx=ast.Store()), value=get)
        test = ast.Compare(left=walrus, ops=[ast.IsNot()], comparators=[ast.Constant(value=None)])
        return Typed(ast.IfExp(test=test, body=ast.Name(id=temp, ctx=ast.Load()), orelse=call),
                      BOOL, "matches()")

    def _fn_hit(self, node: ast.Call, fn: Function, depth: int) -> Typed:
        rule = self._literal_text(node, fn)
        if self.scope.hit_ids is None:
            raise self.fail(node, f"hit() is not available in {self.scope.stage} rules",
                            "use hit() in qualification, routing or SLA rules")
        if rule not in self.scope.hit_ids:
            hint = suggest(rule, self.scope.hit_ids)
            raise self.fail(node, f'hit("{rule}"): no scoring rule has that id',
                            f'did you mean "{hint}"?' if hint else "use a scoring rule id")
        self.names.add("_hits")
        return Typed(ast.Compare(left=ast.Constant(value=rule), ops=[ast.In()],
                                  comparators=[env_get("_hits")]), BOOL, f'hit("{rule}")')

    def _fn_count(self, node: ast.Call, fn: Function, depth: int) -> Typed:
        event = self._literal_text(node, fn)
        days = node.keywords[0].value
        if not (isinstance(days, ast.Constant) and type(days.value) is int
                and 1 <= days.value <= MAX_DAYS):
            raise self.fail(node, f"count(): days must be a whole number from 1 to {MAX_DAYS}",
                            f"example: {fn.example}")
        self.windows.add((event, days.value))
        key = ast.Tuple(elts=[ast.Constant(value=event), ast.Constant(value=days.value)],
                        ctx=ast.Load())
        get = ast.Call(func=ast.Attribute(value=env_get("_counts"), attr="get", ctx=ast.Load()),
                       args=[key, ast.Constant(value=0)], keywords=[])
        return Typed(get, NUM, f'count("{event}")', nonnull=True)

    def _fn_last(self, node: ast.Call, fn: Function, depth: int) -> Typed:
        event = self._literal_text(node, fn)
        self.last_events.add(event)
        get = ast.Call(func=ast.Attribute(value=env_get("_last"), attr="get", ctx=ast.Load()),
                       args=[ast.Constant(value=event)], keywords=[])
        return Typed(get, TIME, f'last("{event}")')

    def _fn_days_since(self, node: ast.Call, fn: Function, depth: int) -> Typed:
        when = self.build(node.args[0], depth)
        if when.type not in (TIME, ANY):
            raise self.fail(node, f"days_since() expects a datetime, got {when.type}",
                            f"example: {fn.example}")
        self.names.add("now")
        return Typed(helper_call("_fn_days_since", when.node, env_get("now")), NUM, "days_since()")
