"""A generated lead dataset with a known ground truth, for the calibration and tuning tests
(tests/services/test_tune.py) and docs/outcomes.md's worked example.

Each lead has traits the shipped rules (rules/scoring.yaml) score. Whether it converts is
drawn from ``BASE`` times the multiplier of each planted trait it has (:data:`PLANTED`, the
rule that scores the trait → its true rate ratio), independently of everything else — so the
true lift of a planted rule is exactly its multiplier, and every other rule's is 1. With
``noise=True`` every lead converts with the same probability: no rule matters.

Leads go through ``POST /v1/leads`` (concurrently); outcomes through ``POST
/v1/leads/{id}/outcome``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

PLANTED = {"bant.timeline.immediate": 4.0, "fit.country.core": 2.5,
           "bant.authority.executive": 2.5}
BASE = 0.04
NOISE_RATE = 0.35
AUTH = {"Authorization": "Bearer test-admin-token"}


@dataclass
class Planted:
    body: dict[str, Any]
    converts: bool
    won: bool
    lead_id: str = ""
    grade: str | None = None
    rules: frozenset[str] = frozenset()


def dataset(n: int, *, seed: int, noise: bool = False) -> list[Planted]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        core = rnd.random() < 0.5
        immediate = rnd.random() < 0.3
        executive = rnd.random() < 0.3
        body: dict[str, Any] = {
            "email": f"pat{i}@company{i}-{seed}.io", "first_name": "Pat", "last_name": "Lee",
            "company": f"Company {i}",
            "country": rnd.choice(["US", "DE", "GB"]) if core else rnd.choice(
                ["FR", "BR", "JP", "IN"]),
            "title": "VP Sales" if executive else rnd.choice(
                ["Director of Marketing", "Sales Manager", "Analyst", None]),
            "timeline_days": 10 if immediate else rnd.choice([None, 250]),
            "employees": rnd.choice([None, 30, 120, 500, 3000]),
            "budget": rnd.choice([None, 3000, 10000, 50000, 200000]),
            "industry": rnd.choice([None, "Software", "Education", "Retail"]),
            "need": rnd.choice([None, "We need to replace our lead routing spreadsheet soon"]),
        }
        p = BASE
        for hit, rule in ((core, "fit.country.core"), (immediate, "bant.timeline.immediate"),
                          (executive, "bant.authority.executive")):
            if hit:
                p *= PLANTED[rule]
        if noise:
            p = NOISE_RATE
        converts = rnd.random() < p
        won = converts and rnd.random() < 0.2
        out.append(Planted(body={k: v for k, v in body.items() if v is not None},
                           converts=converts, won=won))
    return out


async def _post_all(url: str, items: Sequence[tuple[str, dict[str, Any]]],
                    concurrency: int) -> list[httpx.Response]:
    sem = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60, headers=AUTH) as client:
        async def one(path: str, body: dict[str, Any]) -> httpx.Response:
            async with sem:
                return await client.post(path, json=body)

        return await asyncio.gather(*(one(p, b) for p, b in items))


def post_leads(url: str, leads: list[Planted], *, concurrency: int = 12) -> None:
    """Route every lead through the API; fills each one's id, grade and scoring rules."""
    done = asyncio.run(_post_all(url, [("/v1/leads", p.body) for p in leads], concurrency))
    for planted, response in zip(leads, done, strict=True):
        assert response.status_code == 201, response.text[:300]
        decision = response.json()
        planted.lead_id = decision["lead_id"]
        planted.grade = decision["score"]["grade"]
        planted.rules = frozenset(c["rule"] for c in decision["score"]["contributions"])


def post_outcomes(url: str, leads: list[Planted], *, concurrency: int = 12) -> None:
    """``opportunity`` for each converted lead (and ``won`` for some), ``lost`` for a third
    of the others — through the outcome API."""
    at = dt.datetime.now(dt.UTC).isoformat()
    items = []
    for i, p in enumerate(leads):
        if p.converts:
            items.append((f"/v1/leads/{p.lead_id}/outcome", {"stage": "opportunity", "at": at}))
            if p.won:
                items.append((f"/v1/leads/{p.lead_id}/outcome",
                              {"stage": "won", "at": at, "amount": "30000", "currency": "USD"}))
        elif i % 3 == 0:
            items.append((f"/v1/leads/{p.lead_id}/outcome",
                          {"stage": "lost", "at": at, "reason": "no budget"}))
    done = asyncio.run(_post_all(url, items, concurrency))
    for response in done:
        assert response.status_code in (200, 201), response.text[:300]

