"""router/api/_body.py: one way to decode a body, one shape for its problems."""

from __future__ import annotations

import msgspec
import pytest
from litestar.plugins.problem_details import ProblemDetailsException

from router.api._body import decode_body, decode_json


class Thing(msgspec.Struct, forbid_unknown_fields=True):
    size: int


def _problem(call: object) -> ProblemDetailsException:
    with pytest.raises(ProblemDetailsException) as caught:
        call()  # type: ignore[operator]
    return caught.value


def test_a_valid_body_is_decoded() -> None:
    assert decode_json(b'{"size": 3}', Thing) == Thing(size=3)
    assert decode_body(b"[1]", msgspec.json.decode) == [1]


def test_a_body_that_is_not_json_is_a_400_with_the_fix() -> None:
    exc = _problem(lambda: decode_json(b"{nope", Thing, hint="send {\"size\": 1}"))
    assert exc.status_code == 400 and exc.title == "Malformed JSON"
    assert exc.type_ == "https://leadrouter.dev/problems/malformed-json"
    assert exc.detail.startswith("the body is not valid JSON: ")
    assert exc.detail.endswith(' — send {"size": 1}')
    assert exc.extra is None
    for bad in (b"\"\xff\"", b"[" * 100_000):  # invalid UTF-8, too deep
        assert _problem(lambda b=bad: decode_body(b, msgspec.json.decode)).status_code == 400


def test_the_intake_shape_names_the_field_too() -> None:
    exc = _problem(lambda: decode_body(b"{", msgspec.json.decode, field="$"))
    assert exc.extra == {"errors": [{"path": "$", "message": exc.detail}], "field": "$"}


def test_a_wrong_value_is_a_422_naming_the_path() -> None:
    exc = _problem(lambda: decode_json(b'{"size": "x"}', Thing, title="Invalid thing",
                                       prefix="$.thing"))
    assert (exc.status_code, exc.title) == (422, "Invalid thing")
    assert exc.type_ == "https://leadrouter.dev/problems/validation"
    assert exc.extra == {"errors": [{"path": "$.thing.size",
                                     "message": "Expected `int`, got `str`"}]}
    unknown = _problem(lambda: decode_json(b'{"size": 1, "colour": 2}', Thing))
    assert unknown.extra is not None
    assert unknown.extra["errors"][0]["path"] == "$.colour"


class Box(msgspec.Struct, forbid_unknown_fields=True):
    things: list[Thing]
    label: str | None = None


def test_an_unknown_field_gets_the_closest_name_at_its_path() -> None:
    exc = _problem(lambda: decode_json(b'{"things": [{"size": 1}, {"sise": 2}]}', Box))
    assert exc.extra == {"errors": [{
        "path": "$.things[1].sise",
        "message": "Object contains unknown field `sise` — did you mean `size`?"}]}
    exc = _problem(lambda: decode_json(b'{"things": [], "zzz": 1}', Box))
    assert exc.detail.endswith("the known fields are things, label")
    # without the type, the plain message
    exc = _problem(lambda: decode_body(b'{"sise": 1}', msgspec.json.Decoder(Thing).decode))
    assert exc.detail == "$.sise: Object contains unknown field `sise`"


@pytest.mark.parametrize(("body", "at"), [
    (b'"\\ud800"', 1), (b'["ok", "x\\udbff"]', 9), (b'"\\udc00"', 1),
    (b'"\\ud800\\u0041"', 1), (b'{"a": "\\ud800", "b": 1}', 7),
    (b'"\\ud83d\\ude00 \\ud83d"', 14),
])
def test_a_lone_surrogate_is_named(body: bytes, at: int) -> None:
    exc = _problem(lambda: decode_body(body, msgspec.json.decode))
    assert exc.status_code == 400
    assert "lone UTF-16 surrogate escape \\u" in exc.detail
    assert f" at byte {at} " in exc.detail, exc.detail


def test_escapes_that_are_not_lone_surrogates_keep_msgspec_s_message() -> None:
    # a pair and an escaped backslash are fine JSON
    assert decode_body(b'["\\ud83d\\ude00", "\\\\ud800"]', msgspec.json.decode) == \
        ["\U0001F600", "\\ud800"]
    for body in (b'"\\\\ud800', b'{"a": 1,, "b": "\\ud800"}'):  # cut short; wrong earlier
        exc = _problem(lambda b=body: decode_body(b, msgspec.json.decode))
        assert "surrogate" not in exc.detail, exc.detail
