"""router/intake/signatures.py: real HMAC signatures as each sender computes them (the signers in
tests/_intake.py are written from the senders' docs, not from this module) are accepted; a
tampered body, a wrong secret, a stale timestamp or a missing header is refused with 401; during
a rotation both secrets are valid. A property test: arbitrary headers only ever refuse."""

from __future__ import annotations

import pytest
from _hostile import FAST, text
from _intake import (
    CRM_SECRET,
    CRM_SECRET_NEXT,
    HUBSPOT_SECRET,
    SEGMENT_SECRET,
    dumps,
    hubspot_headers,
    segment_headers,
    standard_headers,
)
from hypothesis import given
from hypothesis import strategies as st

from router.intake.mapping import IntakeError
from router.intake.signatures import (
    hubspot_uri,
    sign_standard,
    split_secrets,
    verify_hubspot_v3,
    verify_segment,
    verify_standard,
)

BODY = dumps({"contact": {"email": "kim@globex.example"}})
NOW = 1_717_000_000
URL = "https://leads.example.com/v1/sources/hubspot"


def refused(check: object, kind: str) -> IntakeError:
    """``check()`` raises a 401 of ``kind``; returns the error."""
    with pytest.raises(IntakeError) as info:
        check()  # type: ignore[operator]
    assert (info.value.status, info.value.kind) == (401, kind), info.value.detail
    assert info.value.field is None
    return info.value


# -- Standard Webhooks ----------------------------------------------------------------------------


def standard(body: bytes = BODY, *, secrets: list[str] | None = None, msg_id: str = "msg_1",
             ts: int = NOW, now: float = NOW, signature: str | None = None,
             secret: str = CRM_SECRET) -> str:
    headers = standard_headers(BODY, msg_id, secret=secret, ts=ts)
    return verify_standard(secrets or [CRM_SECRET], msg_id=msg_id,
                           timestamp=headers["webhook-timestamp"],
                           signature=signature or headers["webhook-signature"], body=body,
                           now=now, tolerance=300)


def test_standard_webhooks_accepts_a_real_signature_and_returns_the_id() -> None:
    assert standard() == "msg_1"
    # this module's own signer produces exactly what a sender sends
    assert sign_standard(CRM_SECRET, "msg_1", NOW, BODY) == \
        standard_headers(BODY, "msg_1", ts=NOW)["webhook-signature"]


def test_standard_webhooks_refuses_a_tampered_body_or_another_secret() -> None:
    error = refused(lambda: standard(BODY.replace(b"kim", b"eve")), "bad-signature")
    assert "does not match" in error.detail
    refused(lambda: standard(secret=CRM_SECRET_NEXT), "bad-signature")
    refused(lambda: standard(msg_id="msg_2", signature=sign_standard(CRM_SECRET, "msg_1", NOW,
                                                                     BODY)), "bad-signature")


def test_standard_webhooks_rotation_and_several_signatures() -> None:
    # signed with the next key: valid while both are configured
    assert standard(secret=CRM_SECRET_NEXT, secrets=[CRM_SECRET, CRM_SECRET_NEXT]) == "msg_1"
    old = sign_standard(CRM_SECRET, "msg_1", NOW, BODY)
    new = sign_standard(CRM_SECRET_NEXT, "msg_1", NOW, BODY)
    # a sender mid-rotation sends both; one match suffices
    assert standard(secrets=[CRM_SECRET_NEXT], signature=f"{old} {new}") == "msg_1"
    assert standard(secrets=[CRM_SECRET_NEXT], signature=f"v2,xyz {new}") == "msg_1"


def test_standard_webhooks_refuses_stale_or_future_timestamps() -> None:
    assert standard(ts=NOW - 299) == "msg_1"
    error = refused(lambda: standard(ts=NOW - 301), "stale-timestamp")
    assert "tolerance is 300s" in error.detail
    refused(lambda: standard(ts=NOW + 301), "stale-timestamp")
    refused(lambda: verify_standard([CRM_SECRET], msg_id="m", timestamp="yesterday",
                                    signature="v1,x", body=BODY, now=NOW, tolerance=300),
            "stale-timestamp")


def test_standard_webhooks_names_the_missing_headers() -> None:
    error = refused(lambda: verify_standard([CRM_SECRET], msg_id="m", timestamp=None,
                                            signature=None, body=BODY, now=NOW, tolerance=300),
                    "missing-signature")
    assert "webhook-timestamp, webhook-signature" in error.detail
    refused(lambda: verify_standard([CRM_SECRET], msg_id="x" * 256, timestamp=str(NOW),
                                    signature="v1,x", body=BODY, now=NOW, tolerance=300),
            "bad-signature")


# -- HubSpot v3 -----------------------------------------------------------------------------------


def hubspot(body: bytes = BODY, *, url: str = URL, signed_url: str = URL,
            secret: str = HUBSPOT_SECRET, ts_ms: int = NOW * 1000, now: float = NOW,
            secrets: list[str] | None = None) -> str:
    headers = hubspot_headers(signed_url, BODY, secret=secret, ts_ms=ts_ms)
    return verify_hubspot_v3(secrets or [HUBSPOT_SECRET], method="post", uri=url, body=body,
                             timestamp=headers["X-HubSpot-Request-Timestamp"],
                             signature=headers["X-HubSpot-Signature-v3"], now=now,
                             tolerance=300)


def test_hubspot_accepts_a_real_signature_and_returns_it() -> None:
    signature = hubspot_headers(URL, BODY, ts_ms=NOW * 1000)["X-HubSpot-Signature-v3"]
    assert hubspot() == signature
    assert hubspot(secret="old", secrets=["old", HUBSPOT_SECRET]) == hubspot_headers(
        URL, BODY, secret="old", ts_ms=NOW * 1000)["X-HubSpot-Signature-v3"]


def test_hubspot_refuses_a_tampered_body_url_or_secret() -> None:
    refused(lambda: hubspot(BODY + b" "), "bad-signature")
    error = refused(lambda: hubspot(url=URL.replace("leads.", "other.")), "bad-signature")
    assert "public URL" in error.detail  # the fix when a proxy changes the URL
    refused(lambda: hubspot(secret="not-the-client-secret"), "bad-signature")


def test_hubspot_timestamps_are_milliseconds_within_the_tolerance() -> None:
    assert hubspot(ts_ms=(NOW - 290) * 1000)
    refused(lambda: hubspot(ts_ms=(NOW - 310) * 1000), "stale-timestamp")
    refused(lambda: hubspot(ts_ms=NOW), "stale-timestamp")  # seconds are 54 years old in ms
    refused(lambda: verify_hubspot_v3([HUBSPOT_SECRET], method="POST", uri=URL, body=BODY,
                                      timestamp=None, signature="x", now=NOW, tolerance=300),
            "missing-signature")


def test_hubspot_signs_the_uri_with_some_escapes_decoded() -> None:
    escaped = "https://leads.example.com/v1/sources/hubspot?a=b%3Ac%2Fd%40e%20f"
    assert hubspot_uri(escaped) == "https://leads.example.com/v1/sources/hubspot?a=b:c/d@e%20f"
    assert hubspot_uri("x%3a%2f") == "x:/"  # case-insensitive, as HubSpot decodes
    # HubSpot signs the decoded form; the request arrives escaped
    assert hubspot(url=escaped, signed_url=hubspot_uri(escaped))


# -- Segment --------------------------------------------------------------------------------------


def test_segment_accepts_the_hex_sha1_of_the_body() -> None:
    signature = segment_headers(BODY)["X-Signature"]
    assert verify_segment([SEGMENT_SECRET], body=BODY, signature=signature) == signature
    assert verify_segment(["old", SEGMENT_SECRET], body=BODY,
                          signature=signature.upper()) == signature  # hex in either case


def test_segment_refuses_a_tampered_body_a_wrong_secret_or_no_header() -> None:
    signature = segment_headers(BODY)["X-Signature"]
    refused(lambda: verify_segment([SEGMENT_SECRET], body=BODY[:-1], signature=signature),
            "bad-signature")
    refused(lambda: verify_segment(["other"], body=BODY, signature=signature), "bad-signature")
    refused(lambda: verify_segment([SEGMENT_SECRET], body=BODY, signature=""),
            "missing-signature")


def test_secrets_from_one_variable_split_on_spaces_and_commas() -> None:
    assert split_secrets(f"{CRM_SECRET} {CRM_SECRET_NEXT}") == [CRM_SECRET, CRM_SECRET_NEXT]
    assert split_secrets(" a,b\n c ") == ["a", "b", "c"]
    assert split_secrets(None) == split_secrets("") == []


@FAST
@given(st.one_of(st.none(), text), st.one_of(st.none(), text), st.one_of(st.none(), text),
       st.binary(max_size=200))
def test_signature_checks_only_refuse(a: str | None, b: str | None, c: str | None,
                                      body: bytes) -> None:
    for check in (
        lambda: verify_standard(["whsec_" + "QUJD" * 8, "plain"], msg_id=a, timestamp=b,
                                signature=c, body=body, now=1e9, tolerance=300),
        lambda: verify_hubspot_v3(["s"], method="POST", uri=a or "", body=body, timestamp=b,
                                  signature=c, now=1e9, tolerance=300),
        lambda: verify_segment(["s"], body=body, signature=a),
    ):
        with pytest.raises(IntakeError) as info:
            check()
        assert info.value.status == 401
