"""HTML form posts over real HTTP: encodings a browser sends, redirects, spam, CORS, limits."""

from __future__ import annotations

import html
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _intake import SECRET_ENV, intake_rules, started
from _service import AUTH, assert_problem, free_port

BROWSER = {"Content-Type": "application/x-www-form-urlencoded",
           "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
           "Origin": "https://www.example.com"}


@pytest.fixture
def service(start_service: Callable[..., Any], tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[httpx.Client]:
    for name, value in SECRET_ENV.items():
        monkeypatch.setenv(name, value)
    port = free_port()
    server = start_service(rules_dir=str(intake_rules(tmp_path / "rules", port=port)))
    with server.client(follow_redirects=False) as client:
        yield client


def web_to_lead(**extra: str) -> dict[str, str]:
    fields = {"first_name": "Grace", "last_name": "Hopper", "email": "grace@navy.example",
              "company": "US Navy", "title": "Rear Admiral", "phone": "+1 415 555 0100",
              "city": "Arlington", "state": "VA", "country": "US", "lead_source": "Web",
              "description": "Wants a demo", "00N5e00000ProdInt": "ENTERPRISE",
              "employees_band": "1000+", "website_url": "", "lr_started": started()}
    fields.update(extra)
    return fields


def lead_of(client: httpx.Client, email: str) -> dict[str, Any]:
    ids = client.get(f"/v1/people/{email}", headers=AUTH).json()["leads"]
    assert len(ids) == 1, ids
    response = client.get(f"/v1/leads/{ids[0]}")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def test_urlencoded_post_redirects_and_routes(service: httpx.Client) -> None:
    body = urllib.parse.urlencode(web_to_lead())
    response = service.post("/v1/forms/contact", content=body, headers=BROWSER)
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "https://www.example.com/thanks"
    assert response.headers["access-control-allow-origin"] == "https://www.example.com"
    assert int(response.headers["ratelimit-remaining"]) >= 0
    decision = lead_of(service, "grace@navy.example")
    assert decision["status"] != "bad_lead"
    assert decision["assignment"]["pool"] == "rr"
    assert decision["score"]["fit"] == 35  # employees 5000 (band) + US


def test_multipart_post_is_accepted(service: httpx.Client) -> None:
    files = {k: (None, v) for k, v in web_to_lead(email="ada@lovelace.example").items()}
    request = service.build_request("POST", "/v1/forms/contact", files=files,
                                    headers={"Origin": "https://www.example.com"})
    assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
    response = service.send(request)
    assert response.status_code == 303, response.text
    assert lead_of(service, "ada@lovelace.example")["status"] != "bad_lead"


def test_json_answer_when_asked(service: httpx.Client) -> None:
    response = service.post("/v1/forms/contact", data=web_to_lead(email="j@son.example"),
                            headers={"Accept": "application/json",
                                     "Origin": "https://www.example.com"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["lead_id"].startswith("ld_") and body["redirect"].startswith("https://")
    assert "score" not in body and "assignment" not in body  # routing stays internal


@pytest.mark.parametrize(("ret", "expected"), [
    ("https://www.example.com/welcome?x=1", "https://www.example.com/welcome?x=1"),
    ("https://evil.example/phish", "https://www.example.com/thanks"),
    ("//evil.example/phish", "https://www.example.com/thanks"),
    ("javascript:alert(1)", "https://www.example.com/thanks"),
    ("https://www.example.com@evil.example/", "https://www.example.com/thanks"),
    ("https://www.example.com.evil.example/", "https://www.example.com/thanks"),
    ("http://www.example.com/", "https://www.example.com/thanks"),
    ("https://www.example.com\\@evil.example", "https://www.example.com/thanks"),
    ("https://www.example.com/\r\nSet-Cookie: x=1", "https://www.example.com/thanks"),
])
def test_ret_url_only_to_allowed_hosts(service: httpx.Client, ret: str, expected: str) -> None:
    n = abs(hash(ret)) % 10**8
    response = service.post("/v1/forms/contact", headers=BROWSER, content=urllib.parse.urlencode(
        web_to_lead(email=f"r{n}@ret.example", retURL=ret)))
    assert response.status_code == 303
    assert response.headers["location"] == expected


def test_honeypot_and_fast_fill_are_spam_not_routed(service: httpx.Client) -> None:
    for email, extra in (("bot1@spam.example", {"website_url": "http://cheap.example"}),
                         ("bot2@spam.example", {"lr_started": started(0.2)}),
                         ("bot3@spam.example", {"lr_started": ""})):
        response = service.post("/v1/forms/contact", headers=BROWSER,
                                content=urllib.parse.urlencode(web_to_lead(email=email, **extra)))
        assert response.status_code == 303  # a bot learns nothing
        decision = lead_of(service, email)
        assert decision["status"] == "bad_lead"
        assert decision["assignment"]["queue"] == "spam"
        assert decision["assignment"]["owner"] is None
        assert decision["sla"]["policy"] is None
        assert any(s["stage"] == "intake" and "spam" in s["detail"]
                   for s in decision["explanation"])


def test_origin_allow_list_and_preflight(service: httpx.Client) -> None:
    response = service.post("/v1/forms/contact", data=web_to_lead(email="o@evil.example"),
                            headers={"Origin": "https://evil.example"})
    body = assert_problem(response, 403)
    assert body["field"] == "Origin"
    assert "access-control-allow-origin" not in response.headers
    ok = service.options("/v1/forms/contact", headers={
        "Origin": "https://www.example.com", "Access-Control-Request-Method": "POST"})
    assert ok.status_code == 204
    assert ok.headers["access-control-allow-origin"] == "https://www.example.com"
    assert "POST" in ok.headers["access-control-allow-methods"]
    bad = service.options("/v1/forms/contact", headers={"Origin": "https://evil.example"})
    assert bad.status_code == 403
    # a form without an origin list accepts posts but never lets scripts read the answer
    response = service.post("/v1/forms/open", data={"email": "x@open.example"},
                            headers={"Origin": "https://anywhere.example"})
    assert response.status_code == 303
    assert "access-control-allow-origin" not in response.headers


def test_a_redirect_is_a_link_not_json(service: httpx.Client) -> None:
    """303 to the thank-you page and to the error page: a tiny HTML page linking the target
    (a client that does not follow redirects can), never ``application/json`` ``null``."""
    ok = service.post("/v1/forms/contact", headers=BROWSER, content=urllib.parse.urlencode(
        web_to_lead(email="link@redirect.example", retURL="https://www.example.com/a?b=1&c=2")))
    bad = service.post("/v1/forms/contact", headers=BROWSER,
                       content=urllib.parse.urlencode(web_to_lead(email="nope")))
    for response in (ok, bad):
        assert response.status_code == 303, response.text
        assert response.headers["content-type"].startswith("text/html"), response.headers
        location = response.headers["location"]
        assert response.text != "null"
        assert f'<a href="{html.escape(location, quote=True)}">' in response.text
    assert ok.headers["location"] == "https://www.example.com/a?b=1&c=2"
    assert "&amp;c=2" in ok.text


def test_invalid_values_name_the_field(service: httpx.Client) -> None:
    json_client = {"Accept": "application/json", "Origin": "https://www.example.com"}
    response = service.post("/v1/forms/contact", data=web_to_lead(email="not-an-email"),
                            headers=json_client)
    body = assert_problem(response, 422)
    assert body["field"] == "email" and "email" in body["detail"]
    response = service.post("/v1/forms/contact", data=web_to_lead(employees_band="lots"),
                            headers=json_client)
    body = assert_problem(response, 422)
    assert body["field"] == "employees_band"  # the sender's name, not the lead field
    # a browser is sent to the form's error page instead
    response = service.post("/v1/forms/contact", headers=BROWSER,
                            content=urllib.parse.urlencode(web_to_lead(email="nope")))
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith("https://www.example.com/contact?bad=1&error=validation")
    assert "field=email" in location


def test_a_lead_nobody_can_reach_is_refused(service: httpx.Client) -> None:
    """Issue 21, item 8: no email and no phone is a 422 naming `email` (browsers: the error
    page); a spam post without them still just sees the thank-you page."""
    json_client = {"Accept": "application/json", "Origin": "https://www.example.com"}
    response = service.post("/v1/forms/contact", data=web_to_lead(email="", phone=""),
                            headers=json_client)
    body = assert_problem(response, 422)
    assert body["type"].endswith("/contact-required") and body["field"] == "email"
    response = service.post("/v1/forms/contact", headers=BROWSER, content=urllib.parse.urlencode(
        web_to_lead(email="", phone="")))
    assert response.status_code == 303
    assert response.headers["location"] == (
        "https://www.example.com/contact?bad=1&error=contact-required&field=email")
    bot = service.post("/v1/forms/contact", headers=BROWSER, content=urllib.parse.urlencode(
        web_to_lead(email="", phone="", website_url="http://cheap.example")))
    assert bot.status_code == 303
    assert bot.headers["location"] == "https://www.example.com/thanks"
    ok = service.post("/v1/forms/contact", data=web_to_lead(email="", phone="+1 555 0100"),
                      headers=json_client)
    assert ok.status_code == 201, ok.text


def test_refusals_are_problems(service: httpx.Client) -> None:
    assert assert_problem(service.post("/v1/forms/nope", data={"email": "a@b.example"}),
                          404)["type"].endswith("unknown-form")
    response = service.post("/v1/forms/contact", json={"email": "a@b.example"},
                            headers={"Origin": "https://www.example.com"})
    assert_problem(response, 415)
    response = service.post("/v1/forms/contact", files={"resume": ("cv.pdf", b"%PDF-1.4")},
                            data={"email": "f@ile.example"},
                            headers={"Origin": "https://www.example.com"})
    assert assert_problem(response, 415)["field"] == "resume"
    many = {f"f{i}": "x" for i in range(300)}
    response = service.post("/v1/forms/contact", data=many,
                            headers={"Origin": "https://www.example.com"})
    assert_problem(response, 413)
    response = service.post("/v1/forms/contact", data=web_to_lead(description="x" * 5000),
                            headers={"Origin": "https://www.example.com",
                                     "Accept": "application/json"})
    assert assert_problem(response, 422)["field"] == "description"
    response = service.post("/v1/forms/contact", content=b"--x\r\nbroken",
                            headers={"Content-Type": "multipart/form-data; boundary=x",
                                     "Origin": "https://www.example.com"})
    assert_problem(response, 400)


def test_latin1_and_control_characters_do_not_lose_the_lead(service: httpx.Client) -> None:
    body = ("first_name=Ren%E9e&last_name=Fran%E7ois&email=renee%40latin.example"
            f"&company=Caf%E9%00%1B%5B31m&lr_started={started()}").encode()
    response = service.post("/v1/forms/contact", content=body,
                            headers={**BROWSER, "Accept": "application/json"})
    assert response.status_code == 201, response.text
    ids = service.get("/v1/people/renee@latin.example", headers=AUTH).json()["leads"]
    assert len(ids) == 1
