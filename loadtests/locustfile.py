"""A realistic traffic mix for leadrouter (locust).

    uv run --group load locust -f loadtests/locustfile.py --host http://127.0.0.1:8080

or headless with a summary, see loadtests/README.md (``run_locust.py``). Users, by weight:

* ``WebFormVisitor`` (8): a web form posts one lead (``POST /v1/leads``); 1 in 20 is a
  browser retry of the same submission with the same ``Idempotency-Key`` (answered 200 from the
  stored decision); sometimes the visitor's sales rep opens the decision (``GET /v1/leads/{id}``).
* ``MarketingAutomation`` (1): a marketing-automation sync posts a batch of 25 leads
  (``POST /v1/leads:batch``) with external ids, a tenth of which were already sent.
* ``SalesRep`` (1): a rep works their leads — accepts one (``POST /v1/leads/{id}/accept``) when
  the service has that endpoint, otherwise opens it (``GET /v1/leads/{id}``) — and records
  engagement (``POST /v1/events``) when the service has that endpoint.

Endpoints that do not exist yet are detected once from ``/schema/openapi.json`` at start and
their tasks are skipped (the summary says which). ``LOCUST_RATE`` (requests per second per
user, set by run_locust.py) switches every user to a constant throughput (open-ish loop, used
for the soak); without it users send as fast as answers come (closed loop, maximum throughput).
"""

from __future__ import annotations

import json
import os
import random
import uuid
from collections import deque
from typing import Any

from locust import FastHttpUser, between, constant_throughput, events, task

COUNTRIES = [("US", ["CA", "WA", "OR", "NY", "TX", "MA"]), ("CA", ["ON", "BC"]),
             ("GB", [None]), ("DE", [None]), ("FR", [None]), ("IN", [None]), ("BR", [None]),
             ("AU", [None]), ("JP", [None])]
DOMAINS = ["acme-corp.example", "globex.example", "initech.example", "umbrella.example",
           "gmail.com", "yahoo.com", "mailinator.com", "hooli.example", "stark.example"]
TITLES = ["VP Sales", "Head of Marketing", "CTO", "Software Engineer", "Director of IT",
          "Student", "Chief Revenue Officer", "Marketing Manager", "Founder", "Analyst"]
INDUSTRIES = ["software", "manufacturing", "retail", "finance", "healthcare", "education"]

RATE = float(os.environ.get("LOCUST_RATE", "0") or 0)
# Lead ids the service returned, shared by the users of this locust process (bounded).
# The last few hundred only: a rep opens a lead soon after it arrived (and the soak runs with a
# short retention, after which older leads are gone: 404).
RECENT: deque[tuple[str, str | None]] = deque(maxlen=200)  # (lead id, owner)
AVAILABLE: set[str] = set()  # "POST /v1/leads/{lead_id}/accept", "POST /v1/events", ...


def wait_time_for(default: Any) -> Any:
    return constant_throughput(RATE) if RATE > 0 else default


def a_lead(rng: random.Random, **extra: Any) -> dict[str, Any]:
    country, states = rng.choice(COUNTRIES)
    n = rng.randrange(10**9)
    lead: dict[str, Any] = {
        "email": f"person{n}@{rng.choice(DOMAINS)}",
        "first_name": rng.choice(["Ana", "Bo", "Chen", "Dee", "Eli"]),
        "last_name": rng.choice(["Smith", "Garcia", "Okafor", "Kim"]),
        "title": rng.choice(TITLES),
        "company": rng.choice(["Acme", "Globex", "Initech", "Hooli"]),
        "employees": int(rng.lognormvariate(5, 1.8)),
        "industry": rng.choice(INDUSTRIES),
        "country": country,
        "budget": rng.choice([0, 5000, 20000, 50000, 100000, 250000]),
        "timeline_days": rng.choice([7, 30, 90, 180, 365]),
        "source": rng.choice(["web", "webinar", "paid_search", "partner"]),
        "utm_source": rng.choice(["google", "linkedin", "newsletter"]),
    }
    state = rng.choice(states)
    if state:
        lead["state"] = state
    lead.update(extra)
    return lead


@events.test_start.add_listener
def discover_endpoints(environment: Any, **_: Any) -> None:
    """Which optional endpoints the service under test has (from its OpenAPI document)."""
    import urllib.request

    host = environment.host or "http://127.0.0.1:8080"
    try:
        with urllib.request.urlopen(f"{host}/schema/openapi.json", timeout=10) as response:
            paths = json.load(response).get("paths", {})
    except OSError:
        paths = {}
    for path, ops in paths.items():
        for method in ops:
            AVAILABLE.add(f"{method.upper()} {path}")


def has(endpoint: str) -> bool:
    return endpoint in AVAILABLE


class WebFormVisitor(FastHttpUser):
    weight = 8
    wait_time = wait_time_for(between(0, 0))

    def on_start(self) -> None:
        self.rng = random.Random()
        self.last: tuple[str, str] | None = None  # (idempotency key, body) of the last post

    @task(20)
    def submit_form(self) -> None:
        if self.last is not None and self.rng.random() < 0.05:
            key, body = self.last  # the browser retries the same submission
        else:
            key, body = str(uuid.uuid4()), json.dumps(a_lead(self.rng))
        self.last = (key, body)
        with self.client.post("/v1/leads", data=body, name="POST /v1/leads",
                              headers={"Content-Type": "application/json",
                                       "Idempotency-Key": key},
                              catch_response=True) as response:
            if response.status_code in (200, 201):
                decision = response.json()
                RECENT.append((decision["lead_id"], decision["assignment"]["owner"]))
                response.success()
            else:
                response.failure(f"{response.status_code}: {response.text[:200]}")

    @task(1)
    def rep_opens_decision(self) -> None:
        if RECENT:
            self.client.get(f"/v1/leads/{self.rng.choice(RECENT)[0]}",
                            name="GET /v1/leads/{lead_id}")


class MarketingAutomation(FastHttpUser):
    weight = 1
    wait_time = wait_time_for(between(0, 0))

    def on_start(self) -> None:
        self.rng = random.Random()
        self.sent: deque[str] = deque(maxlen=1000)

    @task
    def sync_batch(self) -> None:
        leads, fresh = [], []
        resend = list(self.sent)
        for _ in range(25):
            if resend and self.rng.random() < 0.1:
                # Re-sent by the sync (from an earlier batch, answered by now): deduplicated.
                external = resend.pop(self.rng.randrange(len(resend)))
            else:
                external = f"mk-{uuid.uuid4().hex}"
                fresh.append(external)
            leads.append(a_lead(self.rng, external_id=external, source="marketing_automation"))
        with self.client.post("/v1/leads:batch", json={"leads": leads},
                              name="POST /v1/leads:batch", catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"{response.status_code}: {response.text[:200]}")
                return
            body = response.json()
            self.sent.extend(fresh)
            if body.get("failed"):
                response.failure(f"{body['failed']} item(s) failed in the batch")
            else:
                response.success()


class SalesRep(FastHttpUser):
    weight = 1
    wait_time = wait_time_for(between(0, 0))

    def on_start(self) -> None:
        self.rng = random.Random()

    @task(3)
    def work_a_lead(self) -> None:
        if not RECENT:
            return
        lead_id, owner = self.rng.choice(RECENT)
        if owner and has("POST /v1/leads/{lead_id}/accept"):
            # The owner accepts (again, sometimes: repeating an accept is harmless).
            with self.client.post(f"/v1/leads/{lead_id}/accept", json={"rep": owner},
                                  name="POST /v1/leads/{lead_id}/accept",
                                  catch_response=True) as response:
                # 409: reassigned meanwhile — expected in a random mix.
                if response.status_code in (200, 409):
                    response.success()
                else:
                    response.failure(f"{response.status_code}: {response.text[:200]}")
        else:
            self.client.get(f"/v1/leads/{lead_id}", name="GET /v1/leads/{lead_id}")

    @task(2)
    def engagement_event(self) -> None:
        if not has("POST /v1/events"):
            return
        event = {"email": f"person{self.rng.randrange(10**9)}@acme-corp.example",
                 "event": self.rng.choice(["page_view", "demo_requested", "pricing_viewed"]),
                 "messageId": str(uuid.uuid4())}
        self.client.post("/v1/events", json=event, name="POST /v1/events")
