"""Normalization and validation of the SDK ``Lead`` type."""

from __future__ import annotations

import math
from typing import Any

import msgspec
import phonenumbers
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from leadrouter_sdk import Lead, decode_lead, lead_from_mapping
from leadrouter_sdk._normalize import normalize_phone

FIELDS = Lead.__struct_fields__


def lead(**fields: Any) -> Lead:
    return decode_lead(msgspec.json.encode(fields))


def error(payload: dict[str, Any] | bytes, *, strict: bool = False) -> str:
    data = payload if isinstance(payload, bytes) else msgspec.json.encode(payload)
    with pytest.raises(msgspec.ValidationError) as info:
        decode_lead(data, strict=strict)
    return str(info.value)


# --- strings ---------------------------------------------------------------------------------


def test_strings_are_trimmed_and_blank_becomes_none() -> None:
    got = lead(city="  Berlin \n", industry="\t", utm_source="", need="  line one\n\nline two  ")
    assert got.city == "Berlin"
    assert got.industry is None
    assert got.utm_source is None
    assert got.need == "line one\n\nline two"  # long text keeps its inner layout


def test_names_title_company_collapse_inner_whitespace() -> None:
    got = lead(
        first_name=" Mary  Ann ",
        last_name="van\u00a0 der\tBerg",
        title="VP   of\nSales",
        company="  Acme   Inc. ",
        city="San   Francisco",
    )
    assert (got.first_name, got.last_name) == ("Mary Ann", "van der Berg")
    assert (got.title, got.company) == ("VP of Sales", "Acme Inc.")
    assert got.city == "San   Francisco"  # only names, title and company are collapsed


def test_direct_construction_normalizes_too() -> None:
    got = Lead(email=" Jane@Example.COM ", country="germany", state="bavaria", first_name=" ")
    assert (got.email, got.country, got.state, got.first_name) == (
        "jane@example.com",
        "DE",
        "BY",
        None,
    )


# --- email -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Jane.Doe@Example.COM", "jane.doe@example.com"),
        ("  jane+leads@sub.example.co.uk ", "jane+leads@sub.example.co.uk"),
        ("o'brien@example.ie", "o'brien@example.ie"),
        ("jürgen@müller.de", "jürgen@müller.de"),
        ("user@xn--mller-kva.de", "user@xn--mller-kva.de"),
        ("   ", None),
    ],
)
def test_email_normalized(raw: str, expected: str | None) -> None:
    assert lead(email=raw).email == expected


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("jane.example.com", "it has no '@'"),
        ("jane@doe@example.com", "more than one '@'"),
        ("@example.com", "nothing comes before the '@'"),
        ("jane@", "nothing comes after the '@'"),
        ("jane@example", "has no dot"),
        ("jane doe@example.com", "part before the '@'"),
        ("jane..doe@example.com", "part before the '@'"),
        ("jane@exa_mple.com", "the domain after the '@'"),
        ("jane@-example.com", "the domain after the '@'"),
        ("jane@example.123", "the domain after the '@'"),
        ("x" * 65 + "@example.com", "longer than 64"),
    ],
)
def test_invalid_email_says_what_is_wrong_without_echoing_it(raw: str, problem: str) -> None:
    message = error({"email": raw})
    assert message.startswith("not a valid email address: ")
    assert problem in message
    assert message.endswith("— send a full address like jane@example.com - at `$.email`")
    assert raw.strip().lower() not in message.split(" — ")[0]  # no personal data in errors


# --- domain ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Acme.com", "acme.com"),
        ("https://www.acme.com/about?x=1#team", "acme.com"),
        ("http://acme.com:8080", "acme.com"),
        ("www.Acme.co.uk/", "acme.co.uk"),
        ("//cdn.acme.com/x", "cdn.acme.com"),
        ("jane@acme.com", "acme.com"),
        ("acme.com.", "acme.com"),
        ("www.com", "www.com"),
        ("N/A", "n/a"),  # not a host name: kept as sent, lower-cased
        ("https://", None),
    ],
)
def test_domain_reduced_to_host_name(raw: str, expected: str | None) -> None:
    assert lead(domain=raw).domain == expected


# --- country and state -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("US", "US"),
        ("us", "US"),
        ("usa", "US"),
        ("U.S.A.", "US"),
        ("U.S.", "US"),
        ("United States", "US"),
        ("United States of America", "US"),
        ("america", "US"),
        ("United Kingdom", "GB"),
        ("UK", "GB"),
        ("England", "GB"),
        ("GBR", "GB"),
        ("Deutschland", "DE"),
        ("germany", "DE"),
        ("South Korea", "KR"),
        ("Russia", "RU"),
        ("Türkiye", "TR"),
        ("turkey", "TR"),
        ("Côte d'Ivoire", "CI"),
        ("Ivory Coast", "CI"),
        ("The Netherlands", "NL"),
        ("Bosnia & Herzegovina", "BA"),
        ("St. Lucia", "LC"),
        ("Viet Nam", "VN"),
        ("Vietnam", "VN"),
        ("Iran", "IR"),
        ("840", "US"),
    ],
)
def test_country_to_iso_alpha2(raw: str, expected: str) -> None:
    assert lead(country=raw).country == expected


@pytest.mark.parametrize("raw", ["Atlantis", "XX", "Virgin Islands"])
def test_unknown_country_is_an_error_with_a_fix(raw: str) -> None:
    message = error({"country": raw})
    assert message.startswith(f"unknown country {raw!r}")
    assert "use an ISO 3166 code such as US, DE" in message
    assert message.endswith("- at `$.country`")


@pytest.mark.parametrize(
    ("country", "raw", "expected"),
    [
        ("US", "California", "CA"),
        ("US", "ca", "CA"),
        ("US", "US-CA", "CA"),
        ("usa", " new   york ", "NY"),
        ("US", "Washington, D.C.", "DC"),
        ("DE", "Bavaria", "BY"),
        ("DE", "Bayern", "BY"),
        ("DE", "Nordrhein-Westfalen", "NW"),
        ("Canada", "Ontario", "ON"),
        ("CA", "Québec", "QC"),
        ("ES", "Cataluña", "CT"),
        ("GB", "Scotland", "SCT"),
        ("AT", "Vienna", "9"),
        ("MX", "CDMX", "CMX"),
    ],
)
def test_state_to_iso_3166_2_suffix(country: str, raw: str, expected: str) -> None:
    assert lead(country=country, state=raw).state == expected


@pytest.mark.parametrize(
    ("country", "raw", "expected"),
    [
        (None, "California", "California"),  # no country: keep as sent
        (None, "ny", "NY"),  # short codes are upper-cased
        ("US", "Narnia", "Narnia"),  # unknown region: kept, never an error
        ("US", "zz", "ZZ"),
    ],
)
def test_unresolved_state_is_kept(country: str | None, raw: str, expected: str) -> None:
    assert lead(country=country, state=raw).state == expected


def test_full_subdivision_code_fills_in_missing_country() -> None:
    got = lead(state="de-by")
    assert (got.country, got.state) == ("DE", "BY")


# --- phone -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("country", "raw", "expected"),
    [
        ("US", "(415) 555-0100", "+14155550100"),
        ("US", "1-415-555-0100", "+14155550100"),
        ("DE", "+1 415 555 0100", "+14155550100"),
        ("DE", "030 1234567", "+49301234567"),
        ("GB", "020 7946 0958", "+442079460958"),
        (None, "+44 20 7946 0958", "+442079460958"),
        (None, "415 555 0100", "415 555 0100"),  # no country to resolve it against
        ("US", "call me maybe", "call me maybe"),  # never an error
        ("US", "123", "123"),  # impossible number: kept
        ("US", "  ", None),
    ],
)
def test_phone_to_e164_when_possible(country: str | None, raw: str, expected: str | None) -> None:
    assert lead(country=country, phone=raw).phone == expected


_nanp_number = st.tuples(
    st.sampled_from(["", "1", "+1", "1 ", "+1 ", "1-", "+1-", "+1."]),
    st.from_regex(r"[0-9]{3}", fullmatch=True),
    st.sampled_from(["", " ", "-", "."]),
    st.from_regex(r"[0-9]{3}", fullmatch=True),
    st.sampled_from(["", " ", "-", "."]),
    st.from_regex(r"[0-9]{4}", fullmatch=True),
    st.booleans(),
).map(lambda p: f"{p[0]}({p[1]}){p[2]}{p[3]}{p[4]}{p[5]}" if p[6] else "".join(p[:6]))


@given(number=_nanp_number, region=st.sampled_from(["US", "CA", "DE", "GB", None]))
def test_phone_fast_path_agrees_with_phonenumbers(number: str, region: str | None) -> None:
    try:
        parsed = phonenumbers.parse(number, region)
        possible = phonenumbers.is_possible_number(parsed)
    except phonenumbers.NumberParseException:
        possible = False
    fmt = phonenumbers.PhoneNumberFormat.E164
    expected = phonenumbers.format_number(parsed, fmt) if possible else number
    assert normalize_phone(number, region) == expected


# --- numbers and other lenient decoding ------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1,200", 1200),
        ("  300 ", 300),
        ("300", 300),
        ("50k", 50_000),
        ("50K", 50_000),
        ("1.5M", 1_500_000),
        ("$50,000", 50_000),
        ("€1.2m", 1_200_000),
        ("USD 2,500", 2500),
        ("1 000 000", 1_000_000),
        ("2.5 million", 2_500_000),
        ("1bn", 1_000_000_000),
        ("5000+", 5000),
        ("1e3", 1000),
        (42, 42),
    ],
)
def test_amounts_from_text(raw: str | int, expected: int) -> None:
    got = lead(budget=raw, annual_revenue=raw)
    assert got.budget == got.annual_revenue == float(expected)
    assert lead_from_mapping({"budget": raw}).budget == float(expected)
    if expected <= 100_000_000:
        assert lead(employees=raw).employees == expected
        assert lead_from_mapping({"employees": raw}).employees == expected


def test_fractional_amounts_for_float_fields() -> None:
    assert lead(budget="12.5k").budget == 12_500.0
    assert lead(budget="0.5").budget == 0.5
    assert lead(employees="1.1k").employees == 1100  # exact: no float rounding on the way


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b'{"budget": 1e999}', "budget must be a finite number"),
        (b'{"budget": 1e999, "employees": "1,200"}', "finite number — send an amount like 50000"),
        (b'{"attributes": {"a": 1e999}, "employees": "1,200"}', "attribute 'a' is not a finite"),
    ],
)
def test_json_overflow_is_reported_against_the_field(payload: bytes, expected: str) -> None:
    message = error(payload)
    assert expected in message
    assert "- at `$.budget`" in message or "- at `$.attributes`" in message


@pytest.mark.parametrize("field", ["employees", "budget"])
def test_absurdly_long_numbers_are_validation_errors(field: str) -> None:
    assert error({field: "9" * 5000}).endswith(f"- at `$.{field}`")
    assert error({field: "1" * 5000 + ".5k"}).endswith(f"- at `$.{field}`")


@pytest.mark.parametrize(
    ("field", "raw", "expected"),
    [
        (
            "employees",
            "lots",
            "Expected a whole number such as 1200, 1,200 or 1.2k - at `$.employees`",
        ),
        ("employees", "1,20", "Expected a whole number"),
        ("employees", "1.200.000", "Expected a whole number"),
        ("employees", "-5", "Expected `int` >= 0 - at `$.employees`"),
        ("employees", "10-50", "Expected a whole number"),
        ("employees", "1.5", "Expected `int | null`, got `float` - at `$.employees`"),
        ("employees", 10**9, "Expected `int` <= 100000000 - at `$.employees`"),
        ("timeline_days", "soon", "- at `$.timeline_days`"),
        (
            "budget",
            "a lot",
            "Expected an amount such as 50000, 50,000, $50k or 1.5M - at `$.budget`",
        ),
        ("budget", "-$5", "Expected `float` >= 0.0 - at `$.budget`"),
        (
            "budget",
            "inf",
            "budget must be a finite number — send an amount like 50000 - at `$.budget`",
        ),
        ("annual_revenue", "nan", "- at `$.annual_revenue`"),
        ("annual_revenue", "9" * 400, "Expected an amount such as"),
        ("consent", "maybe", "Expected `bool | null`, got `str` - at `$.consent`"),
    ],
)
def test_bad_numbers_report_the_field(field: str, raw: Any, expected: str) -> None:
    assert expected in error({field: raw})
    with pytest.raises(msgspec.ValidationError, match=f"at `\\$.{field}`"):
        lead_from_mapping({field: raw})


def test_strict_decoding_accepts_no_text_numbers() -> None:
    assert decode_lead(b'{"employees": 1200}', strict=True).employees == 1200
    assert error({"employees": "1,200"}, strict=True) == (
        "Expected `int | null`, got `str` - at `$.employees`"
    )
    assert error({"email": "nope"}, strict=True).endswith("- at `$.email`")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("yes", True), ("No", False), ("on", True), ("true", True), ("0", False), (True, True)],
)
def test_consent_words(raw: str | bool, expected: bool) -> None:
    assert lead(consent=raw).consent is expected


def test_numbers_sent_for_text_fields_become_text() -> None:
    got = lead(postal_code=94103, external_id=12345, phone=4155550100, country="US")
    assert (got.postal_code, got.external_id, got.phone) == ("94103", "12345", "+14155550100")
    assert error({"postal_code": 94103}, strict=True).endswith("- at `$.postal_code`")


# --- attributes ------------------------------------------------------------------------------


def test_attributes_keys_and_text_values_trimmed() -> None:
    got = lead(
        attributes={" plan ": " pro ", "seats": 25, "trial": True, "note": "  ", "x.y-z": 1.5}
    )
    assert got.attributes == {"plan": "pro", "seats": 25, "trial": True, "note": None, "x.y-z": 1.5}


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ({"utm source": 1}, "attribute name 'utm source' is not allowed — use 1-64 letters"),
        ({"1st": 1}, "attribute name '1st' is not allowed"),
        ({"": 1}, "attribute name '' is not allowed"),
        ({"a" * 65: 1}, "is not allowed"),
        (
            {"plan": 1, " plan": 2},
            "attribute 'plan' is sent twice (names are trimmed) — send it once",
        ),
        ({"big": 2**70}, "attribute 'big' does not fit in 64 bits — send it as text"),
        ({"nested": {"a": 1}}, "got `object` - at `$.attributes[...]`"),
        ({f"k{i}": i for i in range(101)}, "Expected `object` of length <= 100"),
    ],
)
def test_attribute_errors(attributes: dict[str, Any], expected: str) -> None:
    message = error({"attributes": attributes})
    assert expected in message
    assert "- at `$.attributes" in message


def test_attribute_limits_hold_for_direct_construction() -> None:
    with pytest.raises(ValueError, match="too many attributes"):
        Lead(attributes={f"k{i}": i for i in range(101)})
    with pytest.raises(ValueError, match="not a finite number"):
        Lead(attributes={"x": math.inf})


# --- errors outside the helpers --------------------------------------------------------------


def test_plain_msgspec_decoding_validates_and_names_the_field() -> None:
    with pytest.raises(
        msgspec.ValidationError, match=r"^not a valid email address: .*example\.com$"
    ):
        msgspec.json.decode(b'{"email": "jane"}', type=Lead)

    class Batch(msgspec.Struct):
        leads: list[Lead]

    with pytest.raises(
        msgspec.ValidationError, match=r"^unknown country 'Mars'.* - at `\$.leads\[1\]`$"
    ):
        msgspec.json.decode(b'{"leads": [{}, {"country": "Mars"}]}', type=Batch)


def test_direct_construction_raises_value_error() -> None:
    with pytest.raises(ValueError, match="not a valid email address"):
        Lead(email="jane")


def test_other_decoding_errors() -> None:
    assert error(b"[1, 2]") == "Expected `object`, got `array`"
    assert error({"fax": "1"}) == "Object contains unknown field `fax`"
    assert "Expected `str` of length <= 256 - at `$.city`" in error({"city": "x" * 300})
    with pytest.raises(msgspec.ValidationError, match="Expected `object`, got `array`"):
        lead_from_mapping([1, 2])  # type: ignore[arg-type]
    with pytest.raises(msgspec.DecodeError, match="truncated"):
        decode_lead(b'{"email": ')


# --- round trip and idempotency --------------------------------------------------------------

TYPICAL = {
    "email": "Jane.Doe@Acme.com",
    "first_name": "Jane",
    "last_name": "Doe",
    "title": "VP  of Sales",
    "phone": "(415) 555-0100",
    "company": "Acme Inc",
    "domain": "https://www.acme.com/",
    "employees": "1,200",
    "industry": "Software",
    "country": "United States",
    "state": "California",
    "city": "San Francisco",
    "postal_code": "94103",
    "budget": "$50k",
    "timeline_days": 60,
    "consent": True,
    "utm_source": "google",
    "attributes": {"plan": "pro", "seats": 25},
}


def test_round_trip() -> None:
    got = lead(**TYPICAL)
    assert got == Lead(
        email="jane.doe@acme.com",
        first_name="Jane",
        last_name="Doe",
        title="VP of Sales",
        phone="+14155550100",
        company="Acme Inc",
        domain="acme.com",
        employees=1200,
        industry="Software",
        country="US",
        state="CA",
        city="San Francisco",
        postal_code="94103",
        budget=50000.0,
        timeline_days=60,
        consent=True,
        utm_source="google",
        attributes={"plan": "pro", "seats": 25},
    )
    encoded = msgspec.json.encode(got)
    assert decode_lead(encoded, strict=True) == got
    assert msgspec.json.encode(decode_lead(encoded)) == encoded
    assert lead_from_mapping(msgspec.to_builtins(got)) == got
    assert msgspec.msgpack.decode(msgspec.msgpack.encode(got), type=Lead) == got
    assert msgspec.json.encode(Lead()) == b"{}"


_text = st.text(max_size=40) | st.text(alphabet=st.characters(max_codepoint=0x3000), max_size=300)
_json_scalar = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _text
)
_samples: dict[str, st.SearchStrategy[Any]] = {
    "email": st.sampled_from(["Jane@Example.com", " a@b.co ", "x@y", "İ@example.com", "a@b.İo"]),
    "domain": st.sampled_from(["https://www.Acme.com/x", "www.www.a.io", "n/a", "İ.com", "a:b@c"]),
    "country": st.sampled_from(["us", "Germany", "U.K.", "CA", "Atlantis", "ß", " "]),
    "state": st.sampled_from(["California", "ca", "US-CA", "Bavaria", "ß", "ǆ", "ﬃ", "on"]),
    "phone": st.sampled_from(["(415) 555-0100", "+49 30 1234567", "030 1234567", "+1", "x"]),
    "employees": st.sampled_from(["1,200", "50k", " 7 ", "1.5", "1e3", "9" * 30]),
    "budget": st.sampled_from(["$50,000", "1.5M", "inf", "-nan", "1e400", "0.1"]),
    "consent": st.sampled_from(["yes", "off", "1", "", "TRUE"]),
}


@st.composite
def lead_objects(draw: st.DrawFn) -> dict[str, Any]:
    keys = draw(st.lists(st.sampled_from(FIELDS), unique=True, max_size=len(FIELDS)))
    obj: dict[str, Any] = {}
    for key in keys:
        if key == "attributes":
            obj[key] = draw(
                st.dictionaries(
                    _text, _json_scalar | st.lists(_json_scalar, max_size=2), max_size=5
                )
            )
        elif key in _samples:
            obj[key] = draw(_samples[key] | _json_scalar)
        else:
            obj[key] = draw(_json_scalar)
    return obj


_short_text = st.text(max_size=256) | st.text(
    alphabet=" \t\n\x00\x1f\u00a0\u2028İßǆﬃaZ-@.:/", max_size=30
)
_ATTR_NAME = r"[ ]?[A-Za-z_][A-Za-z0-9_.-]{0,10}[ ]?"


@st.composite
def plausible_leads(draw: st.DrawFn) -> dict[str, Any]:
    """Mostly well-typed objects, so that most of them decode and idempotency gets exercised."""
    keys = draw(st.lists(st.sampled_from(FIELDS), unique=True, max_size=len(FIELDS)))
    obj: dict[str, Any] = {}
    for key in keys:
        if key in ("employees", "timeline_days"):
            obj[key] = draw(st.integers(0, 36_500) | _samples["employees"])
        elif key in ("budget", "annual_revenue"):
            obj[key] = draw(st.floats(0, 1e15) | _samples["budget"])
        elif key == "consent":
            obj[key] = draw(st.booleans() | _samples["consent"])
        elif key == "attributes":
            obj[key] = draw(
                st.dictionaries(
                    st.from_regex(_ATTR_NAME, fullmatch=True),
                    st.none()
                    | st.booleans()
                    | st.integers(-(2**63), 2**63 - 1)
                    | st.floats(allow_nan=False, allow_infinity=False)
                    | _short_text,
                    max_size=5,
                )
            )
        else:
            obj[key] = draw(_samples.get(key, _short_text) | _short_text)
    return obj


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(obj=lead_objects() | plausible_leads(), strict=st.booleans())
def test_hostile_input_only_raises_validation_error(obj: dict[str, Any], strict: bool) -> None:
    data = msgspec.json.encode(obj)
    try:
        got = decode_lead(data, strict=strict)
    except msgspec.ValidationError as exc:
        assert str(exc)
        return
    # normalizing a normalized lead changes nothing, whichever way it is re-created
    encoded = msgspec.json.encode(got)
    assert decode_lead(encoded, strict=True) == got
    assert lead_from_mapping(msgspec.to_builtins(got)) == got
    assert msgspec.structs.replace(got) == got
    assert Lead(**msgspec.structs.asdict(got)) == got


@settings(max_examples=200, deadline=None)
@given(obj=lead_objects() | plausible_leads())
def test_mapping_input_only_raises_validation_error(obj: dict[str, Any]) -> None:
    try:
        got = lead_from_mapping(obj)
    except msgspec.ValidationError:
        return
    assert lead_from_mapping(msgspec.to_builtins(got)) == got
