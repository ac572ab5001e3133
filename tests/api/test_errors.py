"""Errors as RFC 9457 problems over real HTTP (router/api/errors.py)."""

from __future__ import annotations

import httpx
from _service import assert_problem


def test_routing_errors_are_problems(api: httpx.Client) -> None:
    for method, path, status in (("GET", "/v1/nothing-here", 404), ("GET", "/v1/leads", 405),
                                 ("PATCH", "/v1/leads/ld_x", 405),
                                 ("PUT", "/v1/rules/evaluate", 405)):
        assert_problem(api.request(method, path), status)
