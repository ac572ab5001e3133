"""Signed action links, the pure part (router/services/action_links.py): every field of a
token is covered by the signature, rotation accepts the previous secret only until its grace
time, expiry, and the links an outbox event gets on its way to a sink."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import msgspec
import pytest
from leadrouter_sdk import Event

from router.services.action_links import (
    ActionLinks,
    LinkClaims,
    LinkRefused,
    LinkSigner,
    signer_of,
)
from router.settings import Settings, SettingsError
from router.state import Store

pytestmark = pytest.mark.anyio

SECRET = "s3cret-action-link-key-0123456789"
OLD = "the-previous-secret-0123456789ab"
T0 = dt.datetime(2026, 3, 4, 15, 0, tzinfo=dt.UTC)
CLAIMS = LinkClaims("ld_01ABC", "alice", "accept", int((T0 + dt.timedelta(hours=1))
                                                       .timestamp()), "lid-1")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _payload(token: str) -> list[Any]:
    part = token.split(".", maxsplit=1)[0]
    decoded: list[Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


def _refused(signer: LinkSigner, token: str, now: dt.datetime = T0) -> str:
    with pytest.raises(LinkRefused) as info:
        signer.verify(token, now)
    return info.value.kind


def test_a_token_round_trips_and_names_lead_rep_action_expiry_and_link() -> None:
    signer = LinkSigner(SECRET)
    token = signer.sign(CLAIMS)
    assert signer.verify(token, T0) == CLAIMS
    assert _payload(token) == ["ld_01ABC", "alice", "accept", CLAIMS.exp, "lid-1"]
    assert all(c.isalnum() or c in "-_." for c in token)  # URL-safe as is


@pytest.mark.parametrize("index,value", [(0, "ld_OTHER"), (1, "bob"), (2, "reject"),
                                         (2, "any"), (3, 4_102_444_800), (4, "lid-2")])
def test_changing_any_field_breaks_the_signature(index: int, value: Any) -> None:
    signer = LinkSigner(SECRET)
    token = signer.sign(CLAIMS)
    fields = _payload(token)
    fields[index] = value
    forged = f"{_b64(json.dumps(fields).encode())}.{token.split('.')[1]}"
    assert _refused(signer, forged) == "forged"


@pytest.mark.parametrize("mangle", [
    lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # another mac
    lambda t: t.split(".")[0],  # no mac
    lambda t: t.split(".")[0] + ".",  # empty mac
    lambda t: "." + t.split(".")[1],  # no payload
    lambda t: t.replace(".", "!"),
    lambda t: "not a token at all",
    lambda t: t + "x" * 3000,
    lambda t: "%%%." + t.split(".")[1],
])
def test_mangled_tokens_are_refused_as_forged(mangle: Any) -> None:
    signer = LinkSigner(SECRET)
    assert _refused(signer, mangle(signer.sign(CLAIMS))) == "forged"


def test_a_token_signed_with_another_secret_is_forged() -> None:
    assert _refused(LinkSigner(SECRET), LinkSigner(OLD).sign(CLAIMS)) == "forged"


def test_a_genuine_token_with_an_invalid_payload_is_refused() -> None:
    signer = LinkSigner(SECRET)
    payload = _b64(b'["ld", "alice", "delete", 1, "x"]')  # signed, but no such action
    token = f"{payload}.{_b64(signer._mac(signer._key, payload))}"
    assert _refused(signer, token) == "forged"


def test_expiry() -> None:
    signer = LinkSigner(SECRET)
    token = signer.sign(CLAIMS)
    assert signer.verify(token, CLAIMS.expires_at - dt.timedelta(seconds=1)) == CLAIMS
    assert _refused(signer, token, CLAIMS.expires_at) == "expired"
    assert _refused(signer, token, CLAIMS.expires_at + dt.timedelta(days=3)) == "expired"


def test_rotation_accepts_the_previous_secret_until_its_grace_time() -> None:
    until = T0 + dt.timedelta(minutes=30)
    old_token = LinkSigner(OLD).sign(CLAIMS)
    rotated = LinkSigner(SECRET, previous=OLD, previous_until=until)
    assert rotated.verify(old_token, T0) == CLAIMS
    assert rotated.verify(rotated.sign(CLAIMS), T0) == CLAIMS  # new links: the new secret
    assert _refused(LinkSigner(OLD), rotated.sign(CLAIMS)) == "forged"
    assert _refused(rotated, old_token, until) == "forged"  # the grace is over
    assert _refused(LinkSigner(SECRET), old_token) == "forged"  # no previous secret at all


def test_settings_make_the_signer_and_refuse_weak_or_unclear_ones() -> None:
    assert signer_of(Settings()) is None
    signer = signer_of(Settings(action_secret=SECRET, action_secret_previous=OLD,
                                action_secret_previous_until="2026-03-04T15:30:00"))
    assert signer is not None and signer.previous_until == T0 + dt.timedelta(minutes=30)
    with pytest.raises(SettingsError, match="LEADROUTER_ACTION_SECRET is too short"):
        signer_of(Settings(action_secret="short"))
    with pytest.raises(SettingsError, match="PREVIOUS_UNTIL must be an ISO-8601"):
        signer_of(Settings(action_secret=SECRET, action_secret_previous=OLD))
    got = Settings.from_env({"LEADROUTER_ACTION_LINK_MARGIN": "2h",
                             "LEADROUTER_SLA_WARN_BEFORE": "5m"})
    assert (got.action_link_margin, got.sla_warn_before) == (7200, 300)


# --- links on outbox events (making them reads nothing from Redis) ---------------------------


@pytest.fixture
def links_on(store: Store) -> Callable[..., ActionLinks]:
    def make(now: dt.datetime = T0, **settings: Any) -> ActionLinks:
        values: dict[str, Any] = {"action_secret": SECRET,
                                  "public_url": "https://leads.example/x/"}
        values.update(settings)
        return ActionLinks(settings=Settings(**values), store=store, clock=lambda: now)

    return make


def _event(etype: str = "lead.assigned", **data: Any) -> Event:
    base: dict[str, Any] = {"owner": "alice", "pool": "rr", "state": "assigned",
                            "due_at": T0 + dt.timedelta(minutes=10)}
    base.update(data)
    return Event(id="1733400000000-0", type=etype, lead_id="ld_01ABC", at=T0,
                 data={k: v for k, v in base.items() if v is not None})


async def test_events_for_a_rep_get_three_links_that_expire_after_the_deadline(
        links_on: Callable[..., ActionLinks]) -> None:
    links = links_on()
    event = links.enrich(_event())
    got = event.data["links"]
    assert set(got) == {"accept", "contacted", "reject", "expires_at"}
    assert got["expires_at"] == "2026-03-05T15:10:00Z"  # due + the default margin (1 day)
    signer = links.signer
    assert signer is not None
    for action in ("accept", "contacted", "reject"):
        assert got[action].startswith("https://leads.example/x/a/")
        claims = signer.verify(got[action].rsplit("/", 1)[1], T0)
        assert (claims.lead, claims.rep, claims.action) == ("ld_01ABC", "alice", action)
    # the same event (another sink, a redelivery) renders the same links: one use spends both
    assert links.enrich(_event()).data["links"] == got
    other = links.enrich(msgspec.structs.replace(_event(), id="1733400000001-0"))
    assert other.data["links"]["accept"] != got["accept"]


async def test_which_events_get_links(links_on: Callable[..., ActionLinks]) -> None:
    links = links_on()
    for etype in ("lead.assigned", "lead.reassigned", "lead.rerouted", "sla.warning"):
        assert "links" in links.enrich(_event(etype)).data, etype
    for etype in ("lead.queued", "lead.accepted", "lead.recycled", "lead.requeued"):
        assert "links" not in links.enrich(_event(etype)).data, etype
    assert "links" not in links.enrich(_event(owner=None, queue="triage")).data
    notified = {"event": "breached", "data": {"action": "notify"}}
    assert "links" in links.enrich(_event("lead.breached", entry=notified)).data
    final = {"event": "breached", "data": {"action": "final:notify"}}
    assert "links" in links.enrich(_event("lead.breached", entry=final)).data
    moved = {"event": "breached", "data": {"action": "reassign"}}
    assert "links" not in links.enrich(_event("lead.breached", entry=moved)).data
    # no secret: events go as they are
    assert "links" not in links_on(action_secret=None).enrich(_event()).data


async def test_link_lifetime_without_an_sla_and_after_a_passed_deadline(
        links_on: Callable[..., ActionLinks]) -> None:
    links = links_on(action_link_lifetime=3600, action_link_margin=600)
    assert links.enrich(_event(due_at=None)).data["links"]["expires_at"] == \
        "2026-03-04T16:00:00Z"
    late = links.enrich(_event("sla.warning", due_at=T0 - dt.timedelta(hours=2)))
    assert late.data["links"]["expires_at"] == "2026-03-04T15:10:00Z"  # now + margin


async def test_startup_note_says_when_links_are_off_or_point_at_a_guess(
        links_on: Callable[..., ActionLinks]) -> None:
    off = links_on(action_secret=None)
    assert "LEADROUTER_ACTION_SECRET" in (off.startup_note() or "")
    with pytest.raises(LinkRefused):
        off.links("ld", "alice", None)
    guessed = links_on(public_url=None, port=9000)
    assert "http://127.0.0.1:9000" in (guessed.startup_note() or "")
    assert links_on().startup_note() is None
