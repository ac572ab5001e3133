"""router/intake/mapping.py: how every adapter's ``(name, value)`` pairs become a ``Lead`` —
hostile text cleaned, the configured mapping before the sender's built-in names, transforms and
value tables, unmapped fields kept / dropped / refused, limits enforced, and a bad value refused
under the name the *sender* used."""

from __future__ import annotations

from typing import Any

import pytest

from router.intake.config import FieldMap
from router.intake.mapping import IntakeError, Limits, build_lead, clean_text

LIMITS = Limits()


def lead(pairs: list[tuple[str, Any]], *, mapping: dict[str, FieldMap] | None = None,
         builtin: dict[str, str] | None = None, defaults: dict[str, Any] | None = None,
         unmapped: str = "attributes", limits: Limits = LIMITS, **kw: Any) -> Any:
    return build_lead(pairs, mapping=mapping or {}, builtin=builtin or {},
                      defaults=defaults or {}, unmapped=unmapped, limits=limits, **kw)


def fm(source: str, target: str, *transforms: str, table: dict[str, Any] | None = None,
       default: Any = None) -> FieldMap:
    return FieldMap(source=source, target=target, transforms=transforms, table=table,
                    default=default)


def refused(call: Any) -> IntakeError:
    with pytest.raises(IntakeError) as info:
        call()
    return info.value


def test_clean_text_drops_control_and_bidi_characters_and_normalises() -> None:
    assert clean_text("A\x00n\x1b[31ma\u202e\u200b\ufeff", "f", LIMITS) == "An[31ma"
    assert clean_text("cafe\u0301", "f", LIMITS) == "caf\u00e9"  # NFC
    assert clean_text("line 1\nline 2\ttab", "f", LIMITS) == "line 1\nline 2\ttab"


def test_clean_text_bounds_the_length_and_names_the_field() -> None:
    assert clean_text("x" * 10, "f", Limits(max_value_chars=10)) == "x" * 10
    error = refused(lambda: clean_text("x" * 11, "company", Limits(max_value_chars=10)))
    assert (error.status, error.kind, error.field) == (422, "field-too-long", "company")
    assert error.detail == "`company` is 11 characters long; the limit is 10"
    # control characters do not count against the limit (they are removed first)
    assert clean_text("x" * 10 + "\x00" * 5, "f", Limits(max_value_chars=10)) == "x" * 10


def test_lead_field_names_map_to_themselves_and_builtins_translate() -> None:
    got = lead([("email", " Ana@BigCo.example "), ("firstname", "Ana"), ("numemployees", "1,200")],
               builtin={"firstname": "first_name", "numemployees": "employees"})
    assert (got.email, got.first_name, got.employees) == ("ana@bigco.example", "Ana", 1200)


def test_the_configured_mapping_wins_over_builtin_names() -> None:
    got = lead([("company", "Sender Co"), ("org", "Mapped Co")],
               mapping={"company": fm("company", "attributes.sender_company"),
                        "org": fm("org", "company")})
    assert got.company == "Mapped Co" and got.attributes == {"sender_company": "Sender Co"}


@pytest.mark.parametrize(("transforms", "value", "expected"), [
    (("lower",), "ROUTING", "routing"),
    (("upper",), "de", "DE"),
    (("title",), "jane doe", "Jane Doe"),
    (("digits",), "+1 (555) 010-9999", "15550109999"),
    (("first_line",), "  first\nsecond", "first"),
    (("yes_no",), "Checked", True),
    (("yes_no",), "off", False),
    (("yes_no",), "maybe", "maybe"),
    (("lower", "yes_no"), "YES", True),
])
def test_transforms(transforms: tuple[str, ...], value: str, expected: Any) -> None:
    got = lead([("x", value)], mapping={"x": fm("x", "attributes.x", *transforms)})
    assert got.attributes == {"x": expected}


def test_value_tables_are_case_insensitive_and_defaults_fill_gaps() -> None:
    mapping = {"band": fm("band", "employees", table={"1-10": 10, "1000+": 5000}),
               "src": fm("src", "source", default="web")}
    assert lead([("band", " 1000+ ")], mapping=mapping).employees == 5000
    assert lead([("band", "1000+"), ("src", "")], mapping=mapping).source == "web"
    assert lead([], mapping=mapping).source == "web"  # left out entirely
    assert lead([("src", "ads")], mapping=mapping, defaults={"source": "form:x"}).source == "ads"
    assert lead([], defaults={"source": "form:x"}).source == "form:x"


def test_full_name_splits_and_lenient_numbers_read() -> None:
    got = lead([("name", "Peter Van Gibbons"), ("revenue", "$1.5M"), ("budget", "$50k")],
               builtin={"name": "full_name", "revenue": "annual_revenue"})
    assert (got.first_name, got.last_name) == ("Peter", "Van Gibbons")
    assert (got.annual_revenue, got.budget) == (1_500_000, 50_000)


def test_unmapped_fields_become_attributes_are_dropped_or_refused() -> None:
    pairs = [("email", "a@b.example"), ("favourite colour", "blue"), ("9lives", "x"),
             ("!!!", "gone")]
    assert lead(pairs).attributes == {"favourite_colour": "blue", "_9lives": "x"}
    assert lead(pairs, unmapped="ignore").attributes == {}
    error = refused(lambda: lead(pairs, unmapped="reject"))
    assert (error.status, error.kind, error.field) == (422, "unknown-field", "favourite colour")
    assert "map it in rules/intake.yaml or remove it" in error.detail


def test_ignored_names_and_targets_are_skipped() -> None:
    got = lead([("retURL", "https://x"), ("oid", "00D"), ("email", "a@b.example")],
               builtin={"oid": "ignore"}, ignore=["retURL"])
    assert got.attributes == {}
    assert lead([("x", "1")], mapping={"x": fm("x", "ignore")}).attributes == {}


def test_repeated_values_join_and_structures_become_json_text() -> None:
    got = lead([("interest", ["a", None, "b", 3]), ("meta", {"k": [1, 2]})])
    assert got.attributes == {"interest": "a; b; 3", "meta": '{"k":[1,2]}'}


def test_too_many_fields_is_a_413_naming_the_first_extra_one() -> None:
    pairs = [(f"f{i}", "1") for i in range(4)]
    assert lead(pairs[:3], limits=Limits(max_fields=3)).attributes == {"f0": "1", "f1": "1",
                                                                        "f2": "1"}
    error = refused(lambda: lead(pairs, limits=Limits(max_fields=3), what="form field"))
    assert (error.status, error.kind, error.field) == (413, "too-many-fields", "f3")
    assert error.detail == "more than 3 form fields in one lead — send only the fields you use"


def test_an_over_long_joined_value_is_refused() -> None:
    error = refused(lambda: lead([("tags", ["x" * 6, "y" * 6])], limits=Limits(max_value_chars=10)))
    assert (error.status, error.field, error.kind) == (422, "tags", "field-too-long")


def test_a_bad_value_is_refused_under_the_senders_field_name() -> None:
    error = refused(lambda: lead([("employees_band", "lots")],
                                 mapping={"employees_band": fm("employees_band", "employees")}))
    assert (error.status, error.kind, error.field) == (422, "validation", "employees_band")
    assert error.detail.startswith("`employees_band` (lead field employees): ")
    error = refused(lambda: lead([("Email", "not-an-email")], builtin={"email": "email"}))
    assert error.field == "Email" and "not a valid email address" in error.detail
    error = refused(lambda: lead([("email", "nope")]))
    assert error.field == "email" and error.detail.startswith("`email`: ")
