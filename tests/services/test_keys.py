"""router/services/keys.py: API keys stored hashed, checked by source and scope, rotated and
revoked (real Valkey)."""

from __future__ import annotations

import pytest

from router.services.keys import ApiKeys, KeyProblem, digest, token_from_headers
from router.state.audit import Actor
from router.state.store import Store

ADMIN = Actor("admin-token")

pytestmark = pytest.mark.anyio


async def test_a_key_is_stored_hashed_and_checked_by_source_and_scope(store: Store) -> None:
    keys = ApiKeys.on(store)
    token, record = await keys.create(source="crm", scopes=["intake"], name="CRM", by=ADMIN)
    assert token.startswith("lrk_") and record.prefix == token[:8]
    assert token not in str(await keys.store.all())  # only its digest is a field
    assert await keys.store.get(digest(token)) == record

    assert (await keys.check(token, source="crm", scope="intake")).id == record.id
    with pytest.raises(KeyProblem) as wrong_source:
        await keys.check(token, source="web", scope="intake")
    assert wrong_source.value.status == 403
    with pytest.raises(KeyProblem) as wrong_scope:
        await keys.check(token, source="crm", scope="admin")
    assert wrong_scope.value.status == 403
    with pytest.raises(KeyProblem) as unknown:
        await keys.check("lrk_" + "x" * 43, source="crm", scope="intake")
    assert unknown.value.status == 401
    with pytest.raises(KeyProblem) as missing:
        await keys.check(None, source="crm", scope="intake")
    assert missing.value.status == 401


async def test_listing_rotation_and_revocation(store: Store) -> None:
    keys = ApiKeys.on(store)
    _, first = await keys.create(source="*", scopes=["admin"], now_ms=1_000, by=ADMIN)
    old_token, second = await keys.create(source="crm", scopes=["intake"], now_ms=2_000, by=ADMIN)
    assert [r.id for r in await keys.all()] == [first.id, second.id]  # oldest first

    rotated = await keys.rotate(second.id, grace_s=60, now_ms=10_000, by=ADMIN)
    assert rotated is not None
    new_token, new, old = rotated
    assert (new.source, new.scopes) == ("crm", ["intake"])
    assert (old.expires_at, old.rotated_to) == (70_000, new.id)
    await keys.check(old_token, source="crm", scope="intake", now_ms=69_999)  # still valid
    with pytest.raises(KeyProblem):
        await keys.check(old_token, source="crm", scope="intake", now_ms=70_000)
    assert await keys.rotate("key_missing", grace_s=60, by=ADMIN) is None

    assert await keys.revoke(new.id, by=ADMIN) is True
    assert await keys.revoke(new.id, by=ADMIN) is False
    with pytest.raises(KeyProblem):
        await keys.check(new_token, source="crm", scope="intake")


def test_the_key_comes_from_either_header() -> None:
    assert token_from_headers({"authorization": "Bearer lrk_abc"}) == "lrk_abc"
    assert token_from_headers({"x-api-key": " lrk_def "}) == "lrk_def"
    assert token_from_headers({"authorization": "Bearer admin-token"}) is None
