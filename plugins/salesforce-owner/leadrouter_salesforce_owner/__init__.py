"""leadrouter plugin: write the assigned rep into the Salesforce Lead's ``OwnerId``.

On ``lead.assigned`` and ``lead.reassigned`` (from the durable outbox, at least once) it

1. maps the rep to a Salesforce user id (``LEADROUTER_SALESFORCE_OWNERS``: ``alice=005...``);
2. gets an access token (``POST {LEADROUTER_SALESFORCE_LOGIN_URL}/services/oauth2/token``) with
   the OAuth 2.0 client credentials flow, or, with ``LEADROUTER_SALESFORCE_AUTH=jwt``, the OAuth
   2.0 JWT bearer flow (an RS256 assertion signed with the connected app's private key:
   ``iss`` the client id, ``sub`` the integration user's username, ``aud`` the login server,
   ``exp`` 3 minutes ahead); cached until ``LEADROUTER_SALESFORCE_TOKEN_TTL`` seconds have
   passed or an API call answers 401 ``INVALID_SESSION_ID``: then it fetches a new one and
   repeats the call once;
3. finds the Lead: its Salesforce id (the lead's external id ``salesforce:<id>`` or a bare
   ``00Q...`` id), else, with ``LEADROUTER_SALESFORCE_EXTERNAL_ID_FIELD``, ``GET
   /services/data/vXX.X/sobjects/Lead/{field}/{value}?fields=Id`` with the lead's external id
   (or its leadrouter lead id);
4. ``PATCH /services/data/vXX.X/sobjects/Lead/{id}`` with ``{"OwnerId": "005..."}`` (204);
5. optionally (``LEADROUTER_SALESFORCE_TASKS=true``) ``POST .../sobjects/Task``: a follow-up
   for the owner on the Lead (``WhoId``), ``ActivityDate`` the SLA deadline's date (UTC) and a
   reminder (``IsReminderSet``, ``ReminderDateTime``) at the deadline.

429, 5xx, 403 ``REQUEST_LIMIT_EXCEEDED``, network errors and token failures are retried
through the outbox's backoff, honouring ``Retry-After``; a rep missing from the map, 404 and
400 (a field Salesforce refuses, e.g. an OwnerId that is no active user) are permanent: logged
with the rep or field to fix and dead-lettered at once (the SDK's ``PermanentDeliveryError``).
The Lead is found from the event alone (its ``external_id``), so any worker can deliver it.
See docs/notifications.md.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

import httpx
import jwt
from leadrouter_sdk import Event, PluginDisabled, writeback
from leadrouter_sdk.writeback import (
    LeadKeys,
    PermanentError,
    RetryableError,
    parse_map,
    scrub,
)

__all__ = ["PermanentError", "RetryableError", "SalesforceOwnerPlugin", "lead_id_of"]
__version__ = "0.1.0"

_LEAD_ID: Final = re.compile(r"00Q[A-Za-z0-9]{12}(?:[A-Za-z0-9]{3})?")
_FIELD: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_JWT_GRANT: Final = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_ASSERTION_LIFETIME: Final = 170  # seconds; Salesforce accepts at most 3 minutes


def _audience(login_url: str) -> str:
    """The JWT ``aud``: Salesforce's authorization server (test.salesforce.com for sandboxes)."""
    host = urllib.parse.urlsplit(login_url).hostname or ""
    sandbox = host == "test.salesforce.com" or ".sandbox.my.salesforce.com" in host
    return "https://test.salesforce.com" if sandbox else "https://login.salesforce.com"


def lead_id_of(external_id: str | None) -> str | None:
    """The Salesforce Lead id in an external id (``salesforce:00Q...`` or ``00Q...``)."""
    text = (external_id or "").removeprefix("salesforce:")
    return text if _LEAD_ID.fullmatch(text) else None


def _read_key(env: Mapping[str, str]) -> str:
    """The PEM private key: LEADROUTER_SALESFORCE_PRIVATE_KEY, or the file named by
    LEADROUTER_SALESFORCE_PRIVATE_KEY_FILE."""
    if env.get("LEADROUTER_SALESFORCE_PRIVATE_KEY"):
        return env["LEADROUTER_SALESFORCE_PRIVATE_KEY"]
    path = env.get("LEADROUTER_SALESFORCE_PRIVATE_KEY_FILE")
    if not path:
        return ""
    with open(path, encoding="ascii") as handle:
        return handle.read()


def _flag(text: str | None) -> bool:
    return (text or "").strip().lower() in ("1", "true", "yes", "on")


def _split(text: str | None) -> list[str]:
    return [p.strip() for p in (text or "").split(",") if p.strip()]


def _errors(response: httpx.Response) -> tuple[set[str], set[str], str]:
    """Salesforce's error body ``[{"message", "errorCode", "fields"}]``: codes, fields, text."""
    try:
        body: Any = response.json()
    except ValueError:
        return set(), set(), f"HTTP {response.status_code}"
    items = body if isinstance(body, list) else [body] if isinstance(body, dict) else []
    codes = {str(i.get("errorCode") or i.get("error") or "") for i in items
             if isinstance(i, dict)} - {""}
    fields = {str(f) for i in items if isinstance(i, dict) for f in i.get("fields") or ()}
    text = "; ".join(f"{i.get('errorCode') or i.get('error')}: "
                     f"{i.get('message') or i.get('error_description') or ''}"
                     for i in items if isinstance(i, dict))
    return codes, fields, scrub(f"HTTP {response.status_code} {text}")


class SalesforceOwnerPlugin(writeback.WriteBack):
    """The plugin. Arguments default to the ``LEADROUTER_SALESFORCE_*`` environment variables."""

    name = "salesforce-owner"
    channel = "salesforce"
    owners_setting = "LEADROUTER_SALESFORCE_OWNERS"

    def __init__(self, login_url: str | None = None, client_id: str | None = None,
                 client_secret: str | None = None, owners: Mapping[str, str] | None = None, *,
                 api_version: str | None = None, external_id_field: str | None = None,
                 tasks: bool | None = None, events: Iterable[str] | None = None,
                 timeout: float | None = None, inline_wait: float | None = None,
                 auth: str | None = None, username: str | None = None,
                 private_key: str | None = None, audience: str | None = None,
                 token_ttl: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        env = os.environ
        self.login_url = (login_url or env.get("LEADROUTER_SALESFORCE_LOGIN_URL", "")).rstrip("/")
        self.client_id = client_id or env.get("LEADROUTER_SALESFORCE_CLIENT_ID", "")
        self.client_secret = client_secret or env.get("LEADROUTER_SALESFORCE_CLIENT_SECRET", "")
        self.auth = (auth or env.get("LEADROUTER_SALESFORCE_AUTH") or "client_credentials").lower()
        if self.auth not in ("client_credentials", "jwt"):
            raise ValueError("LEADROUTER_SALESFORCE_AUTH must be client_credentials or jwt")
        self.username = username or env.get("LEADROUTER_SALESFORCE_USERNAME", "")
        self.private_key = private_key or _read_key(env)
        self.audience = audience or env.get("LEADROUTER_SALESFORCE_AUDIENCE") or _audience(
            self.login_url)
        self.token_ttl = token_ttl if token_ttl is not None else float(
            env.get("LEADROUTER_SALESFORCE_TOKEN_TTL") or 3600)
        if self.auth == "jwt":
            if not (self.login_url and self.client_id and self.username and self.private_key):
                raise PluginDisabled("JWT bearer flow not configured: set "
                                     "LEADROUTER_SALESFORCE_LOGIN_URL, _CLIENT_ID, _USERNAME and "
                                     "_PRIVATE_KEY_FILE (the connected app's certificate key)")
        elif not (self.login_url and self.client_id and self.client_secret):
            raise PluginDisabled("not configured: set LEADROUTER_SALESFORCE_LOGIN_URL (your My "
                                 "Domain URL), LEADROUTER_SALESFORCE_CLIENT_ID and "
                                 "LEADROUTER_SALESFORCE_CLIENT_SECRET (or "
                                 "LEADROUTER_SALESFORCE_AUTH=jwt)")
        if not self.login_url.startswith(("https://", "http://")):
            raise ValueError("LEADROUTER_SALESFORCE_LOGIN_URL must be a URL, e.g. "
                             "https://acme.my.salesforce.com")
        mapping = owners if owners is not None else parse_map(
            env.get("LEADROUTER_SALESFORCE_OWNERS"))
        if not mapping:
            raise PluginDisabled("no owner map: set LEADROUTER_SALESFORCE_OWNERS=rep=005...,...")
        self.api_version = (api_version or env.get("LEADROUTER_SALESFORCE_API_VERSION")
                            or "60.0").removeprefix("v")
        field = external_id_field if external_id_field is not None else env.get(
            "LEADROUTER_SALESFORCE_EXTERNAL_ID_FIELD", "")
        if field and not _FIELD.fullmatch(field):
            raise ValueError(f"LEADROUTER_SALESFORCE_EXTERNAL_ID_FIELD {field!r} is not a field "
                             "API name (e.g. Leadrouter_Id__c)")
        self.external_id_field = field or None
        self.tasks = tasks if tasks is not None else _flag(env.get("LEADROUTER_SALESFORCE_TASKS"))
        self._token: tuple[str, str] | None = None  # (access token, instance URL)
        self._token_at = 0.0
        self.token_fetches = 0
        super().__init__(
            owners=mapping,
            events=events if events is not None else _split(
                env.get("LEADROUTER_SALESFORCE_EVENTS")),
            timeout=timeout if timeout is not None else float(
                env.get("LEADROUTER_SALESFORCE_TIMEOUT") or 5.0),
            inline_wait=inline_wait if inline_wait is not None else float(
                env.get("LEADROUTER_SALESFORCE_INLINE_WAIT") or 2.0),
            clock=clock)

    def assertion(self, now: float | None = None) -> str:
        """The JWT bearer flow's assertion: RS256 over iss, sub, aud and exp (≤ 3 min)."""
        issued = int(time.time() if now is None else now)
        claims = {"iss": self.client_id, "sub": self.username, "aud": self.audience,
                  "exp": issued + _ASSERTION_LIFETIME}
        return jwt.encode(claims, self.private_key, algorithm="RS256")

    async def token(self) -> tuple[str, str]:
        """(access token, instance URL): cached (up to the token TTL), else a new one by the
        configured flow (client credentials, or the JWT bearer flow)."""
        if self._token is not None and self.clock() - self._token_at < self.token_ttl:
            return self._token
        # Deliveries run concurrently (sink_concurrency): one fetches, the others wait for it
        # and take its token (checked again under the lock) instead of fetching their own.
        async with self.credentials_lock():
            if self._token is not None and self.clock() - self._token_at < self.token_ttl:
                return self._token
            return await self._fetch_token()

    async def _fetch_token(self) -> tuple[str, str]:
        if self.auth == "jwt":
            form = {"grant_type": _JWT_GRANT, "assertion": self.assertion()}
            fix = ("check LEADROUTER_SALESFORCE_CLIENT_ID, _USERNAME and _PRIVATE_KEY_FILE (the "
                   "key of the certificate uploaded to the connected app), and that the user is "
                   "pre-authorized (profile or permission set on the app)")
        else:
            form = {"grant_type": "client_credentials", "client_id": self.client_id,
                    "client_secret": self.client_secret}
            fix = ("check LEADROUTER_SALESFORCE_CLIENT_ID / _CLIENT_SECRET and that the "
                   "connected app enables the client credentials flow with a run-as user")
        response = await self.send(
            "POST", f"{self.login_url}/services/oauth2/token", "token request", data=form)
        self.token_fetches += 1
        if response.status_code != 200:
            _, _, text = _errors(response)
            raise RetryableError(f"token request: {text}: {fix}")
        body = response.json()
        self._token = (str(body["access_token"]),
                       str(body.get("instance_url") or self.login_url).rstrip("/"))
        self._token_at = self.clock()
        return self._token

    async def _call(self, method: str, path: str, what: str, **kwargs: Any) -> httpx.Response:
        """A REST call under ``/services/data/vXX.X``; on 401 a new token and one more try."""
        for attempt in (1, 2):
            access, instance = await self.token()
            response = await self.send(
                method, f"{instance}/services/data/v{self.api_version}{path}", what,
                headers={"authorization": f"Bearer {access}"}, **kwargs)
            if response.status_code != 401:
                break
            if self._token is not None and self._token[0] == access:
                # INVALID_SESSION_ID: expired or revoked (unless a delivery beside this one
                # has already replaced the token it used)
                self._token = None
            if attempt == 2:
                raise RetryableError(f"{what}: {_errors(response)[2]} right after a new token")
        codes, _, text = _errors(response)
        if response.status_code == 403 and "REQUEST_LIMIT_EXCEEDED" in codes:
            raise RetryableError(f"{what}: {text}")
        return response

    async def find_lead(self, event: Event, keys: LeadKeys) -> str:
        known = lead_id_of(keys.external_id)
        if known:
            return known
        field = self.external_id_field
        if not field:
            raise PermanentError(f"lead {event.lead_id} has no Salesforce Lead id (external id "
                                 "salesforce:00Q... ) and LEADROUTER_SALESFORCE_EXTERNAL_ID_FIELD "
                                 "is not set")
        value = urllib.parse.quote(keys.external_id or event.lead_id, safe="")
        response = await self._call("GET", f"/sobjects/Lead/{field}/{value}", "lead lookup",
                                    params={"fields": "Id"})
        if response.status_code != 200:
            raise PermanentError(f"no single Lead with {field} = the external id of lead "
                                 f"{event.lead_id}: {_errors(response)[2]}")
        return str(response.json()["Id"])

    async def write(self, event: Event, rep: str) -> str:
        owner_id = self.owner_ref(rep)
        # with an external id field, a lead without identifiers is looked up by its lead id
        keys = self.keys(event, required=not self.external_id_field)
        lead = await self.find_lead(event, keys)
        if self.once(event, "owner"):
            response = await self._call("PATCH", f"/sobjects/Lead/{lead}", "lead update",
                                        json={"OwnerId": owner_id})
            _, fields, text = _errors(response)
            if response.status_code == 404:
                raise PermanentError(f"Salesforce Lead {lead} (lead {event.lead_id}) does not "
                                     f"exist: {text}")
            if response.status_code not in (200, 204):
                named = ", ".join(sorted(fields)) or "OwnerId"
                raise PermanentError(
                    f"Salesforce refused {named} (OwnerId={owner_id}, rep {rep!r}) on Lead "
                    f"{lead}: {text}; check the rep's user id in LEADROUTER_SALESFORCE_OWNERS "
                    "and that the integration user may edit Lead.OwnerId")
            self.did(event, "owner")
        return (f"Lead {lead} OwnerId {owner_id} (rep {rep})"
                + await self.follow_up(event, lead, owner_id, "Task"))

    async def create_task(self, event: Event, lead: str, owner_id: str, due: dt.datetime) -> str:
        body = {"Subject": "Follow up on your new lead", "WhoId": lead, "OwnerId": owner_id,
                "ActivityDate": due.date().isoformat(), "IsReminderSet": True,
                "ReminderDateTime": due.isoformat(timespec="milliseconds").replace(
                    "+00:00", "Z"),
                "Status": "Not Started", "Priority": "High",
                "Description": f"Routed by leadrouter (lead {event.lead_id}); contact the lead "
                               "before the SLA deadline."}
        response = await self._call("POST", "/sobjects/Task", "task create", json=body)
        if response.status_code != 201:
            raise PermanentError(f"Salesforce refused the follow-up Task on Lead {lead}: "
                                 f"{_errors(response)[2]}")
        return str(response.json().get("id", "?"))
