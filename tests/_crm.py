"""Local CRM servers for the owner write-back plugins' tests: real HTTP on loopback.

:class:`FakeApi` is a threaded ``http.server`` that records every request and answers through a
handler; ``fail_next`` forces answers (a 429 with ``Retry-After``, a 503), ``stop``/``start``
make an outage on the same port. :class:`HubSpot` and :class:`Salesforce` implement the
documented contract of the endpoints the plugins call and answer 400 to any request whose shape
differs from it (unknown or missing fields, wrong types), so a test passes only if the plugin
sends what the vendor documents:

* HubSpot CRM v3: ``POST /crm/v3/objects/contacts/search``, ``PATCH
  /crm/v3/objects/contacts/{id}``, ``POST /crm/v3/objects/tasks`` (private-app bearer token);
* Salesforce REST v60.0: ``POST /services/oauth2/token`` (client credentials, or the JWT bearer
  flow: the RS256 assertion verified with the public key the test made: iss, sub, aud, exp
  within 3 minutes), ``GET
  /services/data/vXX.X/sobjects/Lead/{field}/{value}``, ``PATCH .../sobjects/Lead/{id}``,
  ``POST .../sobjects/Task``; tokens can be revoked (401 ``INVALID_SESSION_ID``).
"""

from __future__ import annotations

import collections
import datetime as dt
import itertools
import json
import re
import threading
import time
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from _service import free_port

Answer = tuple[int, dict[str, str], Any]


class Recorded:
    def __init__(self, method: str, target: str, headers: dict[str, str], body: bytes) -> None:
        parsed = urllib.parse.urlsplit(target)
        self.method, self.path = method, parsed.path
        self.query = dict(urllib.parse.parse_qsl(parsed.query))
        self.headers, self.body, self.at = headers, body, time.monotonic()
        self.status = 0

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return dict(urllib.parse.parse_qsl(self.body.decode()))


class FakeApi:
    """A recording HTTP server on 127.0.0.1 answering through ``handle(request)``."""

    def __init__(self, handle: Callable[[Recorded], Answer]) -> None:
        self.handle = handle
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.requests: list[Recorded] = []
        self.forced: collections.deque[Answer] = collections.deque()
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    def fail_next(self, n: int, status: int = 503, headers: dict[str, str] | None = None,
                  body: Any = None) -> None:
        for _ in range(n):
            self.forced.append((status, headers or {}, body))

    def _answer(self, request: Recorded) -> Answer:
        with self.lock:
            self.requests.append(request)
            if self.forced:
                return self.forced.popleft()
            return self.handle(request)

    def start(self) -> FakeApi:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                size = int(self.headers.get("content-length") or 0)
                request = Recorded(self.command, self.path,
                                   {k.lower(): v for k, v in self.headers.items()},
                                   self.rfile.read(size))
                status, headers, body = api._answer(request)
                request.status = status
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                if data:
                    self.send_header("content-type", "application/json;charset=UTF-8")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _any

            def log_message(self, *args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def __enter__(self) -> FakeApi:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_for(self, predicate: Callable[[list[Recorded]], bool],
                 timeout: float = 10.0) -> list[Recorded]:
        """Poll until ``predicate(requests)`` holds; the requests so far."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                seen = list(self.requests)
            if predicate(seen):
                return seen
            if time.monotonic() > deadline:
                raise AssertionError(f"not seen within {timeout}s: "
                                     f"{[(r.method, r.path, r.status) for r in seen]}")
            time.sleep(0.01)

    def calls(self, method: str, prefix: str, status: int | None = None) -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests if r.method == method and r.path.startswith(prefix)
                    and (status is None or r.status == status)]


def _iso(text: Any) -> bool:
    try:
        dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


# -- HubSpot ------------------------------------------------------------------------------------

def _hs_error(status: int, category: str, message: str) -> Answer:
    return status, {}, {"status": "error", "message": message, "correlationId": "c0ffee",
                        "category": category}


class HubSpot:
    """HubSpot CRM v3 contacts and tasks, as documented, in memory."""

    TASK_PROPERTIES = frozenset({"hs_timestamp", "hs_task_subject", "hs_task_body",
                                 "hs_task_status", "hs_task_priority", "hs_task_type",
                                 "hubspot_owner_id"})

    def __init__(self, token: str, owners: set[str], contacts: dict[str, str]) -> None:
        self.token, self.owners = token, owners
        self.contacts = {cid: {"email": mail, "hubspot_owner_id": ""}
                         for cid, mail in contacts.items()}
        self.tasks: list[dict[str, Any]] = []
        self.api = FakeApi(self.handle)
        self._ids = itertools.count(9000)

    def handle(self, r: Recorded) -> Answer:
        if r.headers.get("authorization") != f"Bearer {self.token}":
            return _hs_error(401, "INVALID_AUTHENTICATION", "Authentication credentials not found")
        if not r.headers.get("content-type", "").startswith("application/json"):
            return _hs_error(415, "VALIDATION_ERROR", "content-type must be application/json")
        body = r.json()
        if r.method == "POST" and r.path == "/crm/v3/objects/contacts/search":
            return self.search(body)
        match = re.fullmatch(r"/crm/v3/objects/contacts/(\d+)", r.path)
        if r.method == "PATCH" and match:
            return self.update(match[1], body)
        if r.method == "POST" and r.path == "/crm/v3/objects/tasks":
            return self.create_task(body)
        return _hs_error(404, "OBJECT_NOT_FOUND", f"no route {r.method} {r.path}")

    def _contact(self, cid: str) -> dict[str, Any]:
        return {"id": cid, "properties": dict(self.contacts[cid]),
                "createdAt": "2024-01-01T00:00:00.000Z", "updatedAt": "2024-05-01T00:00:00.000Z",
                "archived": False}

    def search(self, body: Any) -> Answer:
        if set(body) - {"filterGroups", "properties", "limit", "after", "sorts", "query"}:
            return _hs_error(400, "VALIDATION_ERROR", f"unknown fields {sorted(body)}")
        groups = body.get("filterGroups")
        if not isinstance(groups, list) or not groups or not isinstance(body.get("limit", 10), int):
            return _hs_error(400, "VALIDATION_ERROR", "filterGroups must be a non-empty list")
        found = []
        for group in groups:
            filters = group["filters"]
            for f in filters:
                if set(f) != {"propertyName", "operator", "value"} or f["operator"] != "EQ":
                    return _hs_error(400, "VALIDATION_ERROR", f"bad filter {f}")
            found += [cid for cid, props in self.contacts.items()
                      if all(props.get(f["propertyName"]) == f["value"] for f in filters)]
        results = [self._contact(cid) for cid in found][: body.get("limit", 10)]
        return 200, {}, {"total": len(found), "results": results}

    def update(self, cid: str, body: Any) -> Answer:
        if set(body) != {"properties"} or not isinstance(body["properties"], dict):
            return _hs_error(400, "VALIDATION_ERROR", "body must be {\"properties\": {...}}")
        if cid not in self.contacts:
            return _hs_error(404, "OBJECT_NOT_FOUND", "resource not found")
        props = body["properties"]
        owner = props.get("hubspot_owner_id")
        if not isinstance(owner, str) or owner not in self.owners:
            return _hs_error(400, "VALIDATION_ERROR", f"Property values were not valid: "
                             f"{owner!r} is not a valid owner id (hubspot_owner_id)")
        self.contacts[cid].update(props)
        return 200, {}, self._contact(cid)

    def create_task(self, body: Any) -> Answer:
        props, assoc = body.get("properties"), body.get("associations")
        if set(body) - {"properties", "associations"} or not isinstance(props, dict):
            return _hs_error(400, "VALIDATION_ERROR", "body must have properties")
        if set(props) - self.TASK_PROPERTIES or not _iso(props.get("hs_timestamp")):
            return _hs_error(400, "VALIDATION_ERROR", f"bad task properties {sorted(props)}")
        for a in assoc or ():
            types = a.get("types")
            if set(a) != {"to", "types"} or set(a["to"]) != {"id"} or not types or any(
                    set(t) != {"associationCategory", "associationTypeId"}
                    or t["associationCategory"] not in ("HUBSPOT_DEFINED", "USER_DEFINED",
                                                        "INTEGRATOR_DEFINED")
                    or not isinstance(t["associationTypeId"], int) for t in types):
                return _hs_error(400, "VALIDATION_ERROR", f"bad association {a}")
            if a["to"]["id"] not in self.contacts:
                return _hs_error(400, "VALIDATION_ERROR", "association target not found")
        task = {"id": str(next(self._ids)), "properties": props, "associations": assoc}
        self.tasks.append(task)
        return 201, {}, {"id": task["id"], "properties": props,
                         "createdAt": "2024-05-01T00:00:00.000Z",
                         "updatedAt": "2024-05-01T00:00:00.000Z", "archived": False}


# -- Salesforce ---------------------------------------------------------------------------------

def _sf_error(status: int, code: str, message: str, fields: list[str] | None = None) -> Answer:
    item: dict[str, Any] = {"message": message, "errorCode": code}
    if fields is not None:
        item["fields"] = fields
    return status, {}, [item]


class Salesforce:
    """The Salesforce OAuth token endpoint and REST sobjects Lead and Task, in memory."""

    TASK_FIELDS = frozenset({"Subject", "WhoId", "OwnerId", "ActivityDate", "IsReminderSet",
                             "ReminderDateTime", "Status", "Priority", "Description"})

    def __init__(self, client_id: str, client_secret: str, users: set[str],
                 leads: dict[str, dict[str, str]], *, jwt_key: Any = None,
                 username: str = "integration@acme.example",
                 audience: str = "https://login.salesforce.com") -> None:
        self.client_id, self.client_secret, self.users = client_id, client_secret, users
        self.jwt_key, self.username, self.audience = jwt_key, username, audience
        self.assertions: list[dict[str, Any]] = []
        self.leads = {lid: {"OwnerId": "005000000000001", **fields}
                      for lid, fields in leads.items()}
        self.tasks: list[dict[str, Any]] = []
        self.valid: set[str] = set()
        self.issued = 0
        self.api = FakeApi(self.handle)

    def revoke_tokens(self) -> None:
        self.valid.clear()

    def handle(self, r: Recorded) -> Answer:
        if r.path == "/services/oauth2/token":
            return self.token(r)
        if r.headers.get("authorization", "").removeprefix("Bearer ") not in self.valid:
            return _sf_error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        match = re.fullmatch(r"/services/data/v(\d+)\.0/sobjects/(\w+)(?:/([^/]+))?(?:/([^/]+))?",
                             r.path)
        if not match or int(match[1]) < 60:
            return _sf_error(404, "NOT_FOUND", "The requested resource does not exist")
        obj, a, b = match[2], match[3], match[4]
        if obj == "Lead" and r.method == "GET" and a and b:
            return self.by_external_id(a, urllib.parse.unquote(b), r.query)
        if obj == "Lead" and r.method == "PATCH" and a and not b:
            return self.update(a, r.json())
        if obj == "Task" and r.method == "POST" and not a:
            return self.create_task(r.json())
        return _sf_error(404, "NOT_FOUND", "The requested resource does not exist")

    def jwt_bearer(self, form: dict[str, str]) -> str | None:
        """None if the assertion is valid (signature, iss, sub, aud, exp ≤ 3 min), else why."""
        import jwt

        if set(form) != {"grant_type", "assertion"}:
            return f"unexpected parameters {sorted(form)}"
        try:
            claims = jwt.decode(form["assertion"], self.jwt_key, algorithms=["RS256"],
                                audience=self.audience, issuer=self.client_id,
                                options={"require": ["iss", "sub", "aud", "exp"]})
        except jwt.PyJWTError as exc:
            return f"invalid assertion: {exc}"
        self.assertions.append(claims)
        if claims["sub"] != self.username:
            return "user hasn't approved this consumer"
        if claims["exp"] - time.time() > 180:
            return "expiration time is more than 3 minutes away"
        return None

    def token(self, r: Recorded) -> Answer:
        form = r.form()
        if (r.method == "POST" and self.jwt_key is not None
                and form.get("grant_type") == "urn:ietf:params:oauth:grant-type:jwt-bearer"):
            problem = self.jwt_bearer(form)
            if problem is not None:
                return 400, {}, {"error": "invalid_grant", "error_description": problem}
            return self._issue()
        if r.method != "POST" or form.get("grant_type") != "client_credentials":
            return 400, {}, {"error": "unsupported_grant_type", "error_description": "grant type"}
        if (form.get("client_id"), form.get("client_secret")) != (self.client_id,
                                                                  self.client_secret):
            return 400, {}, {"error": "invalid_client", "error_description": "invalid client"}
        return self._issue()

    def _issue(self) -> Answer:
        self.issued += 1
        token = f"00Dxx0000001gPL!tok{self.issued}"
        self.valid.add(token)
        return 200, {}, {"access_token": token, "instance_url": self.api.url,
                         "id": f"{self.api.url}/id/00Dxx0000001gPLEAY/005xx000001X8Uz",
                         "token_type": "Bearer", "issued_at": str(int(time.time() * 1000)),
                         "signature": "c2lnbmF0dXJl"}

    def by_external_id(self, field: str, value: str, query: dict[str, str]) -> Answer:
        hits = [lid for lid, f in self.leads.items() if f.get(field) == value]
        if not hits:
            return _sf_error(404, "NOT_FOUND", "The requested resource does not exist")
        if len(hits) > 1:
            return 300, {}, [f"/services/data/v60.0/sobjects/Lead/{h}" for h in hits]
        wanted = query.get("fields", "Id").split(",")
        return 200, {}, {"attributes": {"type": "Lead",
                                        "url": f"/services/data/v60.0/sobjects/Lead/{hits[0]}"},
                         **{f: (hits[0] if f == "Id" else self.leads[hits[0]].get(f))
                            for f in wanted}}

    def update(self, lid: str, body: Any) -> Answer:
        if lid not in self.leads:
            return _sf_error(404, "NOT_FOUND", "The requested resource does not exist")
        if set(body) != {"OwnerId"}:
            return _sf_error(400, "INVALID_FIELD", f"No such column on entity 'Lead': {body}")
        if body["OwnerId"] not in self.users:
            return _sf_error(400, "FIELD_INTEGRITY_EXCEPTION",
                             "Owner ID: id value of incorrect type", ["OwnerId"])
        self.leads[lid]["OwnerId"] = body["OwnerId"]
        return 204, {}, None

    def create_task(self, body: Any) -> Answer:
        unknown = set(body) - self.TASK_FIELDS
        if unknown:
            return _sf_error(400, "INVALID_FIELD", f"No such column {sorted(unknown)} on Task")
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(body.get("ActivityDate"))) or not _iso(
                body.get("ReminderDateTime")) or not isinstance(body.get("IsReminderSet"), bool):
            return _sf_error(400, "JSON_PARSER_ERROR", "Cannot deserialize date/boolean")
        if body.get("WhoId") not in self.leads or body.get("OwnerId") not in self.users:
            return _sf_error(400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
        self.tasks.append(body)
        return 201, {}, {"id": f"00T{len(self.tasks):012d}", "success": True, "errors": []}
