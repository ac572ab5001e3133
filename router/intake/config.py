"""The intake configuration: the ``forms:`` and ``sources:`` sections (``rules/intake.yaml``).

Pure data, like the rest of the rules: loaded with the rules directory (same position-keeping
YAML loader, same ``file:line: message — fix`` errors, same all-or-nothing reloads) and
compiled into an immutable :class:`IntakeConfig` the HTTP layer reads. Secrets never live in
rule files: a source names the environment variable that holds them (``secret_env``).
"""

from __future__ import annotations

import difflib
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Final, Literal, NamedTuple

import msgspec
from leadrouter_sdk import Lead

from router.engine import Document, RuleError, Section
from router.engine.schema import parse_duration
from router.intake.outcome_map import OutcomeMap, OutcomesSpec, compile_outcomes, funnel_stages
from router.intake.policy import DEFAULT as DEFAULT_POLICY
from router.intake.policy import LeadPolicy, compile_leads

__all__ = [
    "SOURCE_TYPES",
    "FieldMap",
    "FormConfig",
    "IntakeConfig",
    "RateSpec",
    "SourceConfig",
    "compile_intake",
    "parse_rate",
]

SOURCE_TYPES: Final = ("hubspot", "segment", "json")
AUTH_METHODS: Final = ("api_key", "standard_webhooks", "hubspot_v3", "segment_signature")
TRANSFORMS: Final = ("lower", "upper", "title", "digits", "yes_no", "first_line")
LEAD_FIELDS: Final = frozenset(f for f in Lead.__struct_fields__ if f != "attributes")
SPECIAL_TARGETS: Final = ("ignore", "full_name")
_ATTR: Final = re.compile(r"^attributes\.([A-Za-z_][A-Za-z0-9_.-]{0,63})$")
_ID: Final = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_RATE: Final = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*(s|sec|second|m|min|minute|h|hour|d|day)s?\s*$")
_UNITS: Final = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60,
                 "h": 3600, "hour": 3600, "d": 86400, "day": 86400}

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Url = Annotated[str, msgspec.Meta(max_length=2000)]


class RateSpec(msgspec.Struct, frozen=True):
    """``limit`` requests per ``period`` seconds (a burst of ``limit`` is allowed)."""

    limit: int
    period: int

    def __str__(self) -> str:
        return f"{self.limit}/{self.period}s"


def parse_rate(text: str | int) -> RateSpec:
    """``"10/min"``, ``"600/minute"``, ``"5/10s"``, ``"1000/h"``, ``"20000/day"``."""
    m = _RATE.match(str(text))
    if not m:
        raise ValueError(f"{text!r} is not a rate such as 10/min, 600/h or 5/10s")
    limit, count, unit = int(m.group(1)), int(m.group(2) or 1), m.group(3)
    if limit < 1 or count < 1:
        raise ValueError(f"{text!r}: the limit and the period must be positive")
    return RateSpec(limit, count * _UNITS[unit])


# -- the YAML shape ---------------------------------------------------------------------------


class _Item(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class MappingSpec(_Item):
    to: Name
    transform: list[str] | str | None = None
    map: dict[str, str | int | float | bool | None] | None = None
    default: str | int | float | bool | None = None


class FormSpec(_Item):
    thank_you: Url
    redirect_hosts: list[Name] = []
    origins: list[Url] = []
    error_url: Url | None = None
    honeypot: Name | None = None
    min_fill_seconds: Annotated[float, msgspec.Meta(ge=0, le=3600)] | None = None
    fill_time_field: Name = "lr_started"
    rate_limit: str | None = None
    source: Name | None = None
    defaults: dict[str, str | int | float | bool] = {}
    fields: dict[str, Name | MappingSpec] = {}
    unmapped: Literal["attributes", "ignore", "reject"] = "attributes"
    description: str | None = None


class SourceSpec(_Item):
    type: Literal["hubspot", "segment", "json"] | None = None
    auth: list[str] | None = None
    secret_env: Name | None = None
    rate_limit: str | None = None
    tolerance: str | int = "5m"
    source: Name | None = None
    defaults: dict[str, str | int | float | bool] = {}
    fields: dict[str, Name | MappingSpec] = {}
    unmapped: Literal["attributes", "ignore", "reject"] | None = None
    route_on: list[Name] = []
    events: bool = True
    external_id_repeat: Literal["reject", "duplicate", "update"] | None = None
    outcomes: OutcomesSpec | None = None  # deliveries that are outcomes (outcome_map.py)
    description: str | None = None


# -- compiled ---------------------------------------------------------------------------------


class FieldMap(msgspec.Struct, frozen=True, kw_only=True):
    """How one sender field becomes a lead field: target, transforms, value table, default."""

    source: str
    target: str  # a Lead field, "attributes.<name>", "ignore" or "full_name"
    transforms: tuple[str, ...] = ()
    table: dict[str, Any] | None = None
    default: Any = None


class FormConfig(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    thank_you: str
    redirect_hosts: frozenset[str]
    origins: frozenset[str]
    error_url: str | None
    honeypot: str | None
    min_fill_seconds: float | None
    fill_time_field: str
    rate_limit: RateSpec | None
    source: str
    defaults: dict[str, Any]
    fields: dict[str, FieldMap]
    unmapped: str


class SourceConfig(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    type: str
    auth: tuple[str, ...]
    secret_env: str | None
    rate_limit: RateSpec | None
    tolerance: int
    source: str
    defaults: dict[str, Any]
    fields: dict[str, FieldMap]
    unmapped: str
    route_on: frozenset[str]
    events: bool
    external_id_repeat: str | None = None  # its own `leads.external_id_repeat` (policy.py)
    outcomes: OutcomeMap | None = None  # router/intake/outcome_map.py


class IntakeConfig(msgspec.Struct, frozen=True, kw_only=True):
    forms: dict[str, FormConfig] = {}
    sources: dict[str, SourceConfig] = {}
    leads: LeadPolicy = DEFAULT_POLICY  # the ``leads:`` section (router/intake/policy.py)


EMPTY: Final = IntakeConfig()

_DEFAULT_AUTH: Final = {"hubspot": ("hubspot_v3",), "segment": ("segment_signature",),
                        "json": ("api_key",)}
_NEEDS_SECRET: Final = frozenset({"standard_webhooks", "hubspot_v3", "segment_signature"})


def _suggest(word: str, options: Any) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`?" if close else f"use one of: {', '.join(options)}"


def _field_maps(doc: Document, path: tuple[str | int, ...], fields: Mapping[str, Any],
                errors: list[RuleError], owner: str) -> dict[str, FieldMap]:
    out: dict[str, FieldMap] = {}
    for name, given in fields.items():
        where = (*path, "fields", name)
        spec = MappingSpec(to=given) if isinstance(given, str) else given
        target = spec.to
        if target not in LEAD_FIELDS and target not in SPECIAL_TARGETS and not _ATTR.match(
                target):
            errors.append(doc.error(where, f"`{target}` is not a lead field", rule=owner,
                                    fix=_suggest(target, sorted(LEAD_FIELDS)) +
                                    " (or attributes.<name>, full_name, ignore)"))
            continue
        transforms = [spec.transform] if isinstance(spec.transform, str) else \
            list(spec.transform or ())
        bad = [t for t in transforms if t not in TRANSFORMS]
        if bad:
            errors.append(doc.error(where, f"unknown transform `{bad[0]}`", rule=owner,
                                    fix=_suggest(bad[0], TRANSFORMS)))
            continue
        table = {k.strip().lower(): v for k, v in spec.map.items()} if spec.map else None
        out[name] = FieldMap(source=name, target=target, transforms=tuple(transforms),
                             table=table, default=spec.default)
    return out


def _defaults(doc: Document, path: tuple[str | int, ...], defaults: Mapping[str, Any],
              errors: list[RuleError], owner: str) -> dict[str, Any]:
    out = {}
    for name, value in defaults.items():
        if name not in LEAD_FIELDS and not _ATTR.match(name):
            errors.append(doc.error((*path, "defaults", name), f"`{name}` is not a lead field",
                                    rule=owner, fix=_suggest(name, sorted(LEAD_FIELDS))))
        else:
            out[name] = value
    return out


def _rate(doc: Document, path: tuple[str | int, ...], text: str | None,
          errors: list[RuleError], owner: str) -> RateSpec | None:
    if text is None:
        return None
    try:
        return parse_rate(text)
    except ValueError as exc:
        errors.append(doc.error((*path, "rate_limit"), str(exc), rule=owner,
                                fix="write e.g. 10/min"))
        return None


class _Shared(NamedTuple):
    fields: dict[str, FieldMap]
    defaults: dict[str, Any]
    rate: RateSpec | None


def _shared(doc: Document, path: tuple[str | int, ...], spec: FormSpec | SourceSpec,
            errors: list[RuleError], owner: str) -> _Shared:
    """What forms and sources both have, checked: field maps, defaults and rate limit."""
    return _Shared(_field_maps(doc, path, spec.fields, errors, owner),
                   _defaults(doc, path, spec.defaults, errors, owner),
                   _rate(doc, path, spec.rate_limit, errors, owner))


def _https_or_local(url: str) -> bool:
    parts = urllib.parse.urlsplit(url)
    return bool(parts.netloc) and (parts.scheme == "https" or (
        parts.scheme == "http" and parts.hostname in ("localhost", "127.0.0.1", "::1")))


def _form(doc: Document, path: tuple[str | int, ...], form_id: str, spec: FormSpec,
          errors: list[RuleError]) -> FormConfig | None:
    n = len(errors)
    for key, url in (("thank_you", spec.thank_you), ("error_url", spec.error_url)):
        if url is not None and not _https_or_local(url):
            errors.append(doc.error((*path, key), f"`{url}` is not an absolute https URL",
                                    rule=form_id, fix="write e.g. https://www.example.com/thanks"))
    origins = set()
    for i, origin in enumerate(spec.origins):
        parts = urllib.parse.urlsplit(origin)
        if not _https_or_local(origin) or parts.path not in ("", "/") or parts.query:
            errors.append(doc.error((*path, "origins", i), f"`{origin}` is not an origin",
                                    rule=form_id,
                                    fix="write scheme and host only: https://www.example.com"))
        origins.add(f"{parts.scheme}://{parts.netloc}".lower())
    hosts = {h.strip().lower().rstrip(".") for h in spec.redirect_hosts}
    thanks_host = urllib.parse.urlsplit(spec.thank_you).hostname
    if thanks_host:
        hosts.add(thanks_host)
    fields, defaults, rate = _shared(doc, path, spec, errors, form_id)
    if len(errors) > n:
        return None
    return FormConfig(
        id=form_id, thank_you=spec.thank_you, redirect_hosts=frozenset(hosts),
        origins=frozenset(origins), error_url=spec.error_url, honeypot=spec.honeypot,
        min_fill_seconds=spec.min_fill_seconds, fill_time_field=spec.fill_time_field,
        rate_limit=rate, source=spec.source or f"form:{form_id}", defaults=defaults,
        fields=fields, unmapped=spec.unmapped)


def _source(doc: Document, path: tuple[str | int, ...], source_id: str, spec: SourceSpec,
            errors: list[RuleError], stages: Sequence[str] = ()) -> SourceConfig | None:
    n = len(errors)
    kind = spec.type or (source_id if source_id in SOURCE_TYPES else None)
    if kind is None:
        errors.append(doc.error(path, f"source `{source_id}` needs a `type`", rule=source_id,
                                fix=f"add `type: json` (types: {', '.join(SOURCE_TYPES)})"))
        return None
    auth = tuple(spec.auth) if spec.auth is not None else _DEFAULT_AUTH[kind]
    for i, method in enumerate(auth):
        if method not in AUTH_METHODS:
            errors.append(doc.error((*path, "auth", i), f"unknown auth method `{method}`",
                                    rule=source_id, fix=_suggest(method, AUTH_METHODS)))
    if not auth:
        errors.append(doc.error((*path, "auth"), "a source needs at least one auth method",
                                rule=source_id, fix="e.g. auth: [api_key]"))
    if _NEEDS_SECRET.intersection(auth) and not spec.secret_env:
        errors.append(doc.error(path, "signature checks need `secret_env`", rule=source_id,
                                fix="name the environment variable holding the secret, e.g. "
                                    f"secret_env: LEADROUTER_SECRET_{source_id.upper()}"))
    tolerance = 300
    try:
        tolerance = parse_duration(spec.tolerance)
    except ValueError as exc:
        errors.append(doc.error((*path, "tolerance"), str(exc), rule=source_id,
                                fix="write e.g. 5m"))
    fields, defaults, rate = _shared(doc, path, spec, errors, source_id)
    outcomes = None if spec.outcomes is None else compile_outcomes(
        doc, path, spec.outcomes, kind, stages, errors, source_id)
    if len(errors) > n:
        return None
    return SourceConfig(
        id=source_id, type=kind, auth=auth, secret_env=spec.secret_env, rate_limit=rate,
        tolerance=tolerance, source=spec.source or source_id, defaults=defaults, fields=fields,
        unmapped=spec.unmapped or ("ignore" if kind != "json" else "attributes"),
        route_on=frozenset(spec.route_on), events=spec.events,
        external_id_repeat=spec.external_id_repeat, outcomes=outcomes)


def compile_intake(values: Mapping[str, Section], errors: list[RuleError]) -> IntakeConfig:
    """Compile the ``forms``, ``sources`` and ``leads`` sections (as the rules loader read them).

    The engine's :class:`~router.engine.SectionCompiler` for ``Ruleset.intake``: whoever loads
    rules for the service passes it to ``load_directory(..., intake=compile_intake)``.
    """
    forms: dict[str, FormConfig] = {}
    sources: dict[str, SourceConfig] = {}
    stages = funnel_stages(values["funnel"][2] if "funnel" in values else None)
    for section in ("forms", "sources"):
        if section not in values:
            continue
        doc, path, value = values[section]
        if value is None:
            continue
        if not isinstance(value, dict):
            errors.append(doc.error(path, f"`{section}` must map ids to settings",
                                    fix=f"write `{section}:` then `  my-id: {{...}}`"))
            continue
        for key, item in value.items():
            ident, where = str(key), (*path, key)
            if not _ID.match(ident):
                errors.append(doc.error(where, f"`{ident}` is not a valid id",
                                        fix="use lower-case letters, digits, '-' and '_' "
                                            "(it is part of the URL)"))
                continue
            if section == "forms":
                form_spec: FormSpec | None = doc.decode(where, item, FormSpec, errors, rule=ident)
                form = None if form_spec is None else _form(doc, where, ident, form_spec, errors)
                if form is not None:
                    forms[ident] = form
            else:
                spec: SourceSpec | None = doc.decode(where, item, SourceSpec, errors, rule=ident)
                source = None if spec is None else _source(doc, where, ident, spec, errors,
                                                           stages)
                if source is not None:
                    sources[ident] = source
    policy = compile_leads(*values["leads"], errors) if "leads" in values else DEFAULT_POLICY
    return IntakeConfig(forms=forms, sources=sources, leads=policy)
