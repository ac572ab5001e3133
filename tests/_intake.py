"""Helpers for the intake tests: a rules directory with forms and sources, signers, payloads."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

from _service import write_rules

from router.engine.loader import load_texts
from router.intake.config import IntakeConfig, compile_intake

HUBSPOT_SECRET = "hs-client-secret-0123456789"
SEGMENT_SECRET = "segment-shared-secret"
CRM_SECRET = "whsec_" + base64.b64encode(b"crm-signing-key-32-bytes-long!!!").decode()
CRM_SECRET_NEXT = "whsec_" + base64.b64encode(b"the-next-crm-signing-key-rotated").decode()
SECRET_ENV = {"LR_TEST_HUBSPOT_SECRET": HUBSPOT_SECRET, "LR_TEST_SEGMENT_SECRET": SEGMENT_SECRET,
              "LR_TEST_CRM_SECRET": f"{CRM_SECRET} {CRM_SECRET_NEXT}"}

INTAKE = """\
forms:
  contact:
    thank_you: https://www.example.com/thanks
    redirect_hosts: [www.example.com]
    origins: [https://www.example.com, http://127.0.0.1:{port}]
    error_url: https://www.example.com/contact?bad=1
    honeypot: website_url
    min_fill_seconds: 2
    rate_limit: {form_rate}
    source: web
    fields:
      00N5e00000ProdInt: {{to: attributes.product_interest, transform: lower}}
      employees_band: {{to: employees, map: {{"1-10": 10, "1000+": 5000}}}}
  open:
    thank_you: http://127.0.0.1:{port}/thanks
    rate_limit: 1000/min
sources:
  hubspot:
    secret_env: LR_TEST_HUBSPOT_SECRET
    rate_limit: 1000/min
  segment:
    secret_env: LR_TEST_SEGMENT_SECRET
    rate_limit: 1000/min
  crm:
    type: json
    auth: [api_key, standard_webhooks]
    secret_env: LR_TEST_CRM_SECRET
    rate_limit: {crm_rate}
    fields:
      contact.email: email
      contact.first: first_name
      account.size: employees
      account.country: country
"""


def intake_rules(directory: Path, *, port: int = 8080, form_rate: str = "1000/min",
                 crm_rate: str = "1000/min") -> Path:
    write_rules(directory, {"intake.yaml": INTAKE.format(port=port, form_rate=form_rate,
                                                         crm_rate=crm_rate)})
    return directory


def intake_config(text: str | None = None) -> IntakeConfig:
    """The compiled ``forms:``/``sources:`` of ``text`` (default :data:`INTAKE`, as served by
    :func:`intake_rules`), loaded like the service loads them; raises ``RulesetError``."""
    if text is None:
        text = INTAKE.format(port=8080, form_rate="1000/min", crm_rate="1000/min")
    config: IntakeConfig = load_texts({"intake.yaml": text}, intake=compile_intake).intake
    return config


def started(seconds_ago: float = 30) -> str:
    """The lr_started value a page would have set ``seconds_ago``."""
    return str(int((time.time() - seconds_ago) * 1000))


def hubspot_headers(url: str, body: bytes, *, secret: str = HUBSPOT_SECRET,
                    ts_ms: int | None = None, method: str = "POST") -> dict[str, str]:
    ts = str(ts_ms if ts_ms is not None else int(time.time() * 1000))
    mac = hmac.new(secret.encode(), method.encode() + url.encode() + body + ts.encode(),
                   hashlib.sha256).digest()
    return {"Content-Type": "application/json", "X-HubSpot-Signature-v3":
            base64.b64encode(mac).decode(), "X-HubSpot-Request-Timestamp": ts}


def segment_headers(body: bytes, secret: str = SEGMENT_SECRET) -> dict[str, str]:
    return {"Content-Type": "application/json",
            "X-Signature": hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()}


def standard_headers(body: bytes, msg_id: str, *, secret: str = CRM_SECRET,
                     ts: int | None = None) -> dict[str, str]:
    stamp = ts if ts is not None else int(time.time())
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return {"Content-Type": "application/json", "webhook-id": msg_id,
            "webhook-timestamp": str(stamp),
            "webhook-signature": "v1," + base64.b64encode(mac).decode()}


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


# A Forms v3 submission, as HubSpot documents it.
HUBSPOT_FORM = {
    "submittedAt": "1717000000000",
    "fields": [
        {"objectTypeId": "0-1", "name": "email", "value": "ana.lima@bigco.example"},
        {"objectTypeId": "0-1", "name": "firstname", "value": "Ana"},
        {"objectTypeId": "0-1", "name": "lastname", "value": "Lima"},
        {"objectTypeId": "0-1", "name": "company", "value": "BigCo"},
        {"objectTypeId": "0-1", "name": "numemployees", "value": "5,000"},
        {"objectTypeId": "0-1", "name": "country", "value": "United States"},
    ],
    "context": {"hutk": "ce7f2a1c0b8b4a8f9e1d2c3b4a5f6e7d", "pageUri": "https://www.example.com/demo",
                "pageName": "Book a demo"},
    "legalConsentOptions": {"consent": {"consentToProcess": True, "text": "I agree"}},
}


def hubspot_events(portal: int = 62515, contact: int = 12345,
                   email: str = "new.contact@acme.example",
                   base_event: int = 100) -> list[dict[str, Any]]:
    """A contact.creation delivery with its initial property changes (HubSpot's shape)."""
    common = {"portalId": portal, "appId": 1160452, "occurredAt": 1717000000000,
              "attemptNumber": 0, "objectId": contact, "changeSource": "CRM"}
    return [
        {**common, "eventId": base_event, "subscriptionId": 1, "subscriptionType":
         "contact.creation", "changeFlag": "CREATED"},
        {**common, "eventId": base_event + 1, "subscriptionId": 2, "subscriptionType":
         "contact.propertyChange", "propertyName": "email", "propertyValue": email},
        {**common, "eventId": base_event + 2, "subscriptionId": 2, "subscriptionType":
         "contact.propertyChange", "propertyName": "numemployees", "propertyValue": "2500"},
        {**common, "eventId": base_event + 3, "subscriptionId": 3, "subscriptionType":
         "deal.creation", "objectId": 999},
    ]


SEGMENT_IDENTIFY = {
    "type": "identify", "messageId": "ajs-next-1717000000000-4f1d", "userId": "u_97980cfea0067",
    "anonymousId": "507f191e810c19729de860ea",
    "traits": {"email": "peter@initech.example", "firstName": "Peter", "lastName": "Gibbons",
               "title": "VP Engineering", "company": {"name": "Initech", "employee_count": 1200,
                                                      "industry": "Software"},
               "address": {"city": "Austin", "state": "TX", "country": "US"}},
    "context": {"ip": "8.8.8.8", "campaign": {"name": "spring", "source": "google",
                                              "medium": "cpc"}},
    "timestamp": "2024-05-29T16:00:00.000Z", "sentAt": "2024-05-29T16:00:00.100Z",
}
SEGMENT_TRACK = {
    "type": "track", "messageId": "ajs-next-1717000000001-9a2b", "userId": "u_97980cfea0067",
    "event": "Demo Requested", "properties": {"plan": "enterprise"},
    "context": {"traits": {"email": "peter@initech.example"}},
    "timestamp": "2024-05-29T16:01:00.000Z",
}
