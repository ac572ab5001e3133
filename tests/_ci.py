"""Optional tools and packages that some tests need: outside CI a missing one skips those tests
(with the reason); in CI (``CI=true``) it fails them, because .ci/run installs everything and a
silently skipped check is no check."""

from __future__ import annotations

import functools
import importlib
import os
from collections.abc import Callable
from types import ModuleType
from typing import Any, NoReturn, TypeVar, cast

import pytest

__all__ = ["in_ci", "needs", "require_module", "unavailable"]

F = TypeVar("F", bound=Callable[..., Any])


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def unavailable(message: str) -> NoReturn:
    """Skip (anywhere, module level included) — or fail in CI — because ``message``."""
    if in_ci():
        pytest.fail(f"{message} (CI=true: a missing dependency fails instead of skipping)",
                    pytrace=False)
    pytest.skip(message, allow_module_level=True)


def require_module(name: str, reason: str) -> ModuleType:
    """``pytest.importorskip`` that fails in CI: the module, or skip/fail with ``reason``."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        unavailable(f"{reason} ({exc})")


def needs(missing: str | None) -> Callable[[F], F]:
    """Decorate a test that needs something: ``missing`` says what is not there (None: all
    is). Outside CI the test is skipped with that reason; in CI it fails with it."""

    def decorate(test: F) -> F:
        if missing is None:
            return test
        if not in_ci():
            return cast(F, pytest.mark.skip(reason=missing)(test))

        @functools.wraps(test)
        def fail(*args: Any, **kwargs: Any) -> None:
            unavailable(missing)

        return cast(F, fail)

    return decorate
