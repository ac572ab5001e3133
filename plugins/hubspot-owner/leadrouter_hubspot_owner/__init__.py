"""leadrouter plugin: write the assigned rep into the HubSpot contact's ``hubspot_owner_id``.

On ``lead.assigned`` and ``lead.reassigned`` (from the durable outbox, at least once) it

1. maps the rep to a HubSpot owner id (``LEADROUTER_HUBSPOT_OWNERS``: ``alice=123,bob=456``);
2. finds the contact: the id the lead came with when it came from HubSpot (external id
   ``hubspot:<portal>:<contact id>``, as ``POST /v1/sources/hubspot`` sets it), else
   ``POST /crm/v3/objects/contacts/search`` for the lead's email (``EQ``);
3. ``PATCH /crm/v3/objects/contacts/{contactId}`` with
   ``{"properties": {"hubspot_owner_id": "<owner id>"}}``;
4. optionally (``LEADROUTER_HUBSPOT_TASKS=true``) ``POST /crm/v3/objects/tasks``: a follow-up
   task for that owner due at the SLA deadline (``hs_timestamp``), associated with the contact
   (HubSpot-defined association type 204, task → contact).

Authentication: a private app's access token (``Authorization: Bearer``), scopes
``crm.objects.contacts.read`` (search) and ``crm.objects.contacts.write`` (update, tasks).
429 and 5xx answers (and network errors, 401/403) are retried through the outbox's backoff,
honouring ``Retry-After``; a rep missing from the map, no matching contact, 404 or 400 are
permanent (the SDK's ``PermanentDeliveryError``): logged with the rep or field to fix and
dead-lettered at once. The contact is found from the event alone (its ``external_id`` /
``email``), so any worker can deliver it. See docs/notifications.md.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

import httpx
from leadrouter_sdk import Event, PluginDisabled, writeback
from leadrouter_sdk.writeback import (
    LeadKeys,
    PermanentError,
    RetryableError,
    parse_map,
    scrub,
)

__all__ = ["HubSpotOwnerPlugin", "PermanentError", "RetryableError", "contact_id_of"]
__version__ = "0.1.0"

TASK_TO_CONTACT: Final = 204  # HUBSPOT_DEFINED association type: task → contact
_EXTERNAL: Final = re.compile(r"hubspot:(?P<portal>\d+):(?P<contact>\d+)")


def contact_id_of(external_id: str | None, portal: str | None = None) -> str | None:
    """The contact id in an external id ``hubspot:<portal>:<contact>`` (of ``portal``, if
    given), else None."""
    match = _EXTERNAL.fullmatch(external_id or "")
    if match is None or (portal and match["portal"] != portal):
        return None
    return match["contact"]


def _flag(text: str | None) -> bool:
    return (text or "").strip().lower() in ("1", "true", "yes", "on")


def _split(text: str | None) -> list[str]:
    return [p.strip() for p in (text or "").split(",") if p.strip()]


def _problem(response: httpx.Response) -> str:
    """HubSpot's error body ``{"status": "error", "message", "category", ...}`` in short."""
    try:
        body: Any = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    if not isinstance(body, dict):
        return f"HTTP {response.status_code}"
    category = body.get("category") or body.get("errorType") or ""
    return scrub(f"HTTP {response.status_code} {category}: {body.get('message', '')}")


class HubSpotOwnerPlugin(writeback.WriteBack):
    """The plugin. Arguments default to the ``LEADROUTER_HUBSPOT_*`` environment variables."""

    name = "hubspot-owner"
    channel = "hubspot"
    owners_setting = "LEADROUTER_HUBSPOT_OWNERS"

    def __init__(self, token: str | None = None, owners: Mapping[str, str] | None = None, *,
                 base_url: str | None = None, tasks: bool | None = None,
                 portal: str | None = None, events: Iterable[str] | None = None,
                 timeout: float | None = None, inline_wait: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        env = os.environ
        self.token = token if token is not None else env.get("LEADROUTER_HUBSPOT_TOKEN", "")
        if not self.token:
            raise PluginDisabled("no HubSpot token: set LEADROUTER_HUBSPOT_TOKEN to a private "
                                 "app's access token")
        mapping = owners if owners is not None else parse_map(
            env.get("LEADROUTER_HUBSPOT_OWNERS"))
        if not mapping:
            raise PluginDisabled("no owner map: set LEADROUTER_HUBSPOT_OWNERS=rep=owner_id,...")
        self.base_url = (base_url or env.get("LEADROUTER_HUBSPOT_BASE_URL")
                         or "https://api.hubapi.com").rstrip("/")
        self.tasks = tasks if tasks is not None else _flag(env.get("LEADROUTER_HUBSPOT_TASKS"))
        self.portal = portal if portal is not None else env.get("LEADROUTER_HUBSPOT_PORTAL_ID")
        super().__init__(
            owners=mapping,
            events=events if events is not None else _split(env.get("LEADROUTER_HUBSPOT_EVENTS")),
            timeout=timeout if timeout is not None else float(
                env.get("LEADROUTER_HUBSPOT_TIMEOUT") or 5.0),
            inline_wait=inline_wait if inline_wait is not None else float(
                env.get("LEADROUTER_HUBSPOT_INLINE_WAIT") or 2.0),
            clock=clock)

    def _headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}", "content-type": "application/json"}

    async def _call(self, method: str, path: str, what: str, body: Any) -> httpx.Response:
        response = await self.send(method, f"{self.base_url}{path}", what, json=body,
                                   headers=self._headers())
        if response.status_code in (401, 403):
            raise RetryableError(f"{what}: {_problem(response)}: check LEADROUTER_HUBSPOT_TOKEN "
                                 "and the private app's scopes (crm.objects.contacts.read, "
                                 "crm.objects.contacts.write)")
        return response

    async def find_contact(self, lead_id: str, keys: LeadKeys) -> str:
        known = contact_id_of(keys.external_id, self.portal)
        if known:
            return known
        if not keys.email:
            raise PermanentError(f"lead {lead_id} has neither a HubSpot contact id "
                                 "(external id hubspot:<portal>:<id>) nor an email")
        body = {"filterGroups": [{"filters": [
                    {"propertyName": "email", "operator": "EQ", "value": keys.email}]}],
                "properties": ["email", "hubspot_owner_id"], "limit": 1}
        response = await self._call("POST", "/crm/v3/objects/contacts/search",
                                    "contact search", body)
        if response.status_code != 200:
            raise PermanentError(f"contact search for lead {lead_id}: {_problem(response)}")
        results = response.json().get("results") or []
        if not results:
            raise PermanentError(f"no HubSpot contact has the email of lead {lead_id}: "
                                 "create the contact or route it from HubSpot")
        return str(results[0]["id"])

    async def write(self, event: Event, rep: str) -> str:
        owner_id = self.owner_ref(rep)
        keys = self.keys(event)
        contact = await self.find_contact(event.lead_id, keys)
        if self.once(event, "owner"):
            response = await self._call(
                "PATCH", f"/crm/v3/objects/contacts/{contact}", "contact update",
                {"properties": {"hubspot_owner_id": owner_id}})
            if response.status_code == 404:
                raise PermanentError(f"HubSpot contact {contact} (lead {event.lead_id}) does "
                                     "not exist: it was deleted or merged")
            if response.status_code != 200:
                raise PermanentError(
                    f"HubSpot refused hubspot_owner_id={owner_id} (rep {rep!r}) on contact "
                    f"{contact}: {_problem(response)}; check the rep's owner id in "
                    "LEADROUTER_HUBSPOT_OWNERS")
            self.did(event, "owner")
        return (f"contact {contact} owner {owner_id} (rep {rep})"
                + await self.follow_up(event, contact, owner_id, "task"))

    async def create_task(self, event: Event, contact: str, owner_id: str,
                          due: dt.datetime) -> str:
        body = {"properties": {
                    "hs_timestamp": due.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                    "hs_task_subject": "Follow up on your new lead",
                    "hs_task_body": f"Routed by leadrouter (lead {event.lead_id}); contact "
                                    "the lead before this task is due.",
                    "hs_task_status": "NOT_STARTED",
                    "hs_task_priority": "HIGH",
                    "hs_task_type": "TODO",
                    "hubspot_owner_id": owner_id},
                "associations": [{"to": {"id": contact}, "types": [
                    {"associationCategory": "HUBSPOT_DEFINED",
                     "associationTypeId": TASK_TO_CONTACT}]}]}
        response = await self._call("POST", "/crm/v3/objects/tasks", "task create", body)
        if response.status_code not in (200, 201):
            raise PermanentError(f"HubSpot refused the follow-up task for contact {contact}: "
                                 f"{_problem(response)}")
        return str(response.json().get("id", "?"))
